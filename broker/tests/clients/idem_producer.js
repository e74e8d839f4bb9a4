// An idempotent kafkajs producer, run by broker/tests/idempotence.rs.
//
// Usage: node idem_producer.js BOOTSTRAP TOPIC COUNT
// Sends the values "0".."COUNT-1" to partition 0 in order, 500 per send() (kafkajs's
// idempotent producer allows one request in flight), prints "mark" after each quarter,
// and "sent COUNT errors E" at the end. Exits 0 when every send resolved.
'use strict'

const { Kafka, logLevel } = require('kafkajs')

async function main () {
  const [bootstrap, topic, countText] = process.argv.slice(2)
  const count = Number(countText)
  const kafka = new Kafka({
    clientId: 'weir-idem-test',
    brokers: [bootstrap],
    logLevel: logLevel.ERROR,
    retry: { retries: 10 }
  })
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  const perSend = 500
  for (let first = 0; first < count; first += perSend) {
    const messages = []
    for (let i = first; i < Math.min(first + perSend, count); i++) {
      messages.push({ partition: 0, value: String(i) })
    }
    await producer.send({ topic, messages })
    const quarter = Math.floor(count / 4)
    const done = first + perSend
    if (Math.floor(done / quarter) > Math.floor(first / quarter) && done < count) console.log('mark')
  }
  await producer.disconnect()
  console.log(`sent ${count} errors 0`)
}

main().catch(e => { console.error('failed', e); process.exit(1) })
