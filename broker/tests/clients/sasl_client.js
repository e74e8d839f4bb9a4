// kafkajs with TLS and SASL SCRAM-SHA-512, run by broker/tests/sasl.rs.
//
// Usage: node sasl_client.js BOOTSTRAP CA_FILE USER PASSWORD TOPIC COUNT
// Produces COUNT records (value "v<i>") to partition i % partitions of TOPIC, consumes them
// back from the beginning with a fresh group and prints one JSON object: per partition the
// values in consumption order, or {error: name} when the connection is refused (wrong password).
'use strict'

const fs = require('fs')
const { Kafka, logLevel } = require('kafkajs')

async function main () {
  const [bootstrap, ca, username, password, topic, countText] = process.argv.slice(2)
  const count = Number(countText)
  const kafka = new Kafka({
    clientId: 'weir-sasl',
    brokers: [bootstrap],
    ssl: { ca: [fs.readFileSync(ca, 'utf-8')] },
    sasl: { mechanism: 'scram-sha-512', username, password },
    logLevel: logLevel.NOTHING,
    retry: { retries: 2 }
  })
  const admin = kafka.admin()
  try {
    await admin.connect()
  } catch (e) {
    console.log(JSON.stringify({ error: e.name, message: e.message }))
    return
  }
  const meta = await admin.fetchTopicMetadata({ topics: [topic] })
  const partitions = meta.topics[0].partitions.length
  const cluster = await admin.describeCluster()
  await admin.disconnect()
  const producer = kafka.producer()
  await producer.connect()
  for (let i = 0; i < count; i++) {
    await producer.send({ topic, messages: [{ value: `v${i}`, partition: i % partitions }] })
  }
  await producer.disconnect()
  const consumer = kafka.consumer({ groupId: `g-${topic}-${Date.now()}` })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const consumed = {}
  let n = 0
  await new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, 30000)
    consumer.run({
      eachMessage: async ({ partition, message }) => {
        (consumed[partition] = consumed[partition] || []).push(message.value.toString())
        n += 1
        if (n >= count) { clearTimeout(timer); resolve() }
      }
    }).catch(reject)
  })
  await consumer.disconnect()
  const brokers = cluster.brokers.map(b => [b.nodeId, b.host, b.port]).sort()
  console.log(JSON.stringify({ consumed, brokers }))
}

main().catch(e => { console.log(JSON.stringify({ error: e.name, message: e.message })); process.exit(0) })
