// kafkajs transactions, run by broker/tests/transactions.rs.
//
// Usage: node txn_client.js BOOTSTRAP TOPIC
// Commits c0..c9, aborts a0..a9, commits c10..c19 on partition 0 (kafkajs's
// transactional producer as its docs configure it: idempotent, one request in
// flight), then reads partition 0 from the start with a read_committed consumer
// (kafkajs's default) and a read_uncommitted one, and checks both see exactly
// what they should, in offset order. Prints "ok"; exits 1 otherwise.
'use strict'

const { Kafka, logLevel } = require('kafkajs')

const IDLE_MS = 2000
const READ_TIMEOUT_MS = 60000

function values (prefix, from, to) {
  const out = []
  for (let i = from; i < to; i++) out.push(`${prefix}${i}`)
  return out
}

async function sendTxn (producer, topic, vals, commit) {
  const txn = await producer.transaction()
  await txn.send({ topic, messages: vals.map(v => ({ partition: 0, value: v })) })
  if (commit) await txn.commit()
  else await txn.abort()
}

async function read (kafka, topic, readUncommitted, atLeast) {
  const consumer = kafka.consumer({ groupId: `weir-read-${process.pid}-${Date.now()}-${readUncommitted}`, readUncommitted })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const out = []
  let last = Date.now()
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      if (partition === 0) { out.push(message.value.toString()); last = Date.now() }
    }
  })
  const start = Date.now()
  while (Date.now() - start < READ_TIMEOUT_MS) {
    await new Promise(resolve => setTimeout(resolve, 200))
    if (out.length >= atLeast && Date.now() - last > IDLE_MS) break
  }
  await consumer.disconnect()
  return out
}

function expect (what, got, want) {
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    throw new Error(`${what}: read ${got.length} ${JSON.stringify(got.slice(0, 12))}, want ${want.length} ${JSON.stringify(want.slice(0, 12))}`)
  }
}

async function main () {
  const [bootstrap, topic] = process.argv.slice(2)
  const kafka = new Kafka({ clientId: 'weir-txn-test', brokers: [bootstrap], logLevel: logLevel.ERROR })
  const producer = kafka.producer({ transactionalId: 'weir-kafkajs', idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  const c1 = values('c', 0, 10)
  const a = values('a', 0, 10)
  const c2 = values('c', 10, 20)
  await sendTxn(producer, topic, c1, true)
  await sendTxn(producer, topic, a, false)
  await sendTxn(producer, topic, c2, true)
  await producer.disconnect()
  expect('kafkajs read_committed', await read(kafka, topic, false, 20), c1.concat(c2))
  expect('kafkajs read_uncommitted', await read(kafka, topic, true, 30), c1.concat(a, c2))
  console.log('ok')
}

main().catch(e => { console.error('failed', e); process.exit(1) })
