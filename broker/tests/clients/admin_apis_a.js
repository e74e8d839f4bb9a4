// kafkajs admin (default configuration) for DeleteGroups and DescribeCluster, run by
// broker/tests/admin_apis_a.rs.
//
// Usage: node admin_apis_a.js BOOTSTRAP GROUP...
// Deletes each GROUP in its own deleteGroups call and describes the cluster; prints one JSON
// object: per group null or the error code the broker answered, the groups listed after, and
// describeCluster's answer.
'use strict'

const { Kafka, logLevel } = require('kafkajs')

async function main () {
  const [bootstrap, ...groups] = process.argv.slice(2)
  const kafka = new Kafka({ clientId: 'weir-admin-apis-a', brokers: [bootstrap], logLevel: logLevel.NOTHING })
  const admin = kafka.admin()
  await admin.connect()
  const deleted = {}
  for (const group of groups) {
    try {
      await admin.deleteGroups([group])
      deleted[group] = null
    } catch (e) {
      const failed = (e.groups || []).find(g => g.groupId === group)
      deleted[group] = failed ? failed.errorCode : `${e.name}: ${e.message}`
    }
  }
  const listed = (await admin.listGroups()).groups.map(g => g.groupId).sort()
  const cluster = await admin.describeCluster()
  await admin.disconnect()
  console.log(JSON.stringify({ deleted, listed, cluster }))
}

main().catch(e => { console.error(e); process.exit(1) })
