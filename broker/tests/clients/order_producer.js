// One kafkajs producer in its default configuration, run by broker/tests/ordering.rs.
//
// Usage: node order_producer.js BOOTSTRAP TOPIC PLAN
// Reads PLAN (one line "partition size" per record, in send order) and calls send() for
// record i, whose value is "i:" padded with "x" to its size, without awaiting the previous
// send, so many requests are in flight at once (kafkajs's maxInFlightRequests is unlimited by
// default; its default acks is -1, all). The broker must store each partition's records in
// send order: the test reads them back and checks the numbers before ':'.
// Exits 0 when every send resolved, 1 with the first errors on stderr otherwise.
'use strict'

const fs = require('fs')
const { Kafka, logLevel } = require('kafkajs')

async function main () {
  const [bootstrap, topic, planPath] = process.argv.slice(2)
  const plan = fs.readFileSync(planPath, 'ascii').split('\n').filter(l => l.trim())
    .map(l => l.trim().split(/\s+/).map(Number))
  const kafka = new Kafka({ clientId: 'weir-order-test', brokers: [bootstrap], logLevel: logLevel.ERROR })
  const producer = kafka.producer()
  await producer.connect()
  const sends = plan.map(([partition, size], seq) => {
    const head = Buffer.from(`${seq}:`)
    const value = Buffer.alloc(Math.max(size, head.length), 'x')
    head.copy(value)
    return producer.send({ topic, messages: [{ partition, value }] })
  })
  const results = await Promise.allSettled(sends)
  const errors = results.filter(r => r.status === 'rejected').map(r => String(r.reason))
  await producer.disconnect()
  errors.slice(0, 10).forEach(e => console.error('error', e))
  console.error(`sent ${plan.length} records, ${errors.length} errors`)
  process.exit(errors.length ? 1 : 0)
}

main().catch(e => { console.error('failed', e); process.exit(1) })
