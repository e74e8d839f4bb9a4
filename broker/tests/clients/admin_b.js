// kafkajs admin (default configuration) against Weir, run by broker/tests/admin_apis_b.rs.
//
// Usage: node admin_b.js BOOTSTRAP TOPIC
// TOPIC exists with 1 partition and 5 records in partition 0. Grows it to 3 partitions
// (createPartitions), checks a smaller count is refused with INVALID_PARTITIONS, deletes
// the records before offset 3 (deleteTopicRecords) and checks fetchTopicOffsets' low
// watermark, sets retention.ms (alterConfigs) and reads it back (describeConfigs), and
// checks an invalid value is refused. Prints "ok"; exits 1 otherwise.
'use strict'

const { Kafka, logLevel, ConfigResourceTypes } = require('kafkajs')

function check (cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`)
}

async function refusedWith (promise, type) {
  try {
    await promise
  } catch (e) {
    const seen = e.type || (e.errors && e.errors[0] && e.errors[0].type) || String(e)
    check(JSON.stringify(e).includes(type) || String(seen).includes(type), `expected ${type}, got ${seen}: ${e}`)
    return
  }
  throw new Error(`expected ${type}, got success`)
}

async function main () {
  const [bootstrap, topic] = process.argv.slice(2)
  const kafka = new Kafka({ clientId: 'weir-admin-b', brokers: [bootstrap], logLevel: logLevel.NOTHING })
  const admin = kafka.admin()
  await admin.connect()
  try {
    await admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] })
    const md = await admin.fetchTopicMetadata({ topics: [topic] })
    check(md.topics[0].partitions.length === 3, `3 partitions, got ${md.topics[0].partitions.length}`)
    await refusedWith(admin.createPartitions({ topicPartitions: [{ topic, count: 2 }] }), 'INVALID_PARTITIONS')

    await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '3' }] })
    const offsets = await admin.fetchTopicOffsets(topic)
    const p0 = offsets.find(o => o.partition === 0)
    check(p0.low === '3' && p0.high === '5', `low 3 high 5, got ${JSON.stringify(p0)}`)

    await admin.alterConfigs({
      validateOnly: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'retention.ms', value: '86400000' }] }]
    })
    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms'] }]
    })
    const entry = described.resources[0].configEntries.find(c => c.configName === 'retention.ms')
    check(entry && entry.configValue === '86400000', `retention.ms 86400000, got ${JSON.stringify(entry)}`)
    await refusedWith(admin.alterConfigs({
      validateOnly: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'retention.ms', value: 'soon' }] }]
    }), 'INVALID_CONFIG')
  } finally {
    await admin.disconnect()
  }
  console.log('ok')
}

main().catch(e => {
  console.error(e)
  process.exit(1)
})
