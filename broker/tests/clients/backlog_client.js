// The backlog bound through kafkajs's default producer, run by broker/tests/backlog.rs.
//
// Usage: node backlog_client.js BOOTSTRAP TOPIC COUNT SIZE PER_SEND
// Sends COUNT values "i:" padded to SIZE bytes to partition 0, PER_SEND messages per
// awaited send(), in order. Stops at the first send that rejects and reports it: the
// error's name, type (Kafka's error name), retriable flag and message, and how long that
// send took (kafkajs retries retriable errors, so a slow rejection means it retried).
// Prints one JSON object: {sent, elapsed_ms, error|null}.
'use strict'

const { Kafka, logLevel } = require('kafkajs')

async function main () {
  const [bootstrap, topic, count, size, perSend] = process.argv.slice(2)
  const kafka = new Kafka({ clientId: 'weir-backlog-test', brokers: [bootstrap], logLevel: logLevel.NOTHING })
  const producer = kafka.producer()
  await producer.connect()
  const start = Date.now()
  let sent = 0
  let error = null
  while (sent < Number(count) && !error) {
    const messages = []
    for (let i = sent; i < Math.min(sent + Number(perSend), Number(count)); i++) {
      const head = Buffer.from(`${i}:`)
      const value = Buffer.alloc(Math.max(Number(size), head.length), 'x')
      head.copy(value)
      messages.push({ partition: 0, value })
    }
    const t0 = Date.now()
    try {
      await producer.send({ topic, messages })
      sent += messages.length
    } catch (e) {
      const cause = e.cause || e
      error = {
        name: e.name,
        type: cause.type || null,
        retriable: cause.retriable === undefined ? null : cause.retriable,
        message: String(e.message),
        latency_ms: Date.now() - t0
      }
    }
  }
  const elapsed = Date.now() - start
  await producer.disconnect()
  console.log(JSON.stringify({ sent, elapsed_ms: elapsed, error }))
}

main().catch(e => { console.error('failed', e); process.exit(1) })
