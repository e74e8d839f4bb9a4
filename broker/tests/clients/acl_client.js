// kafkajs ACL administration over SASL_PLAINTEXT SCRAM-SHA-512, run by broker/tests/acl.rs.
//
// Usage: node acl_client.js BOOTSTRAP USER PASSWORD TOPIC PRINCIPAL
// admin.createAcls: PRINCIPAL may READ TOPIC (literal) and DESCRIBE topics prefixed "TOPIC-";
// then admin.describeAcls with a MATCH filter for topic "TOPIC-x" and with an ANY filter
// for the name TOPIC (the literal binding only), and admin.deleteAcls of the prefixed one. Prints one JSON object with what each call returned.
'use strict'

const { Kafka, logLevel, AclResourceTypes, AclOperationTypes, AclPermissionTypes, ResourcePatternTypes } = require('kafkajs')

async function main () {
  const [bootstrap, username, password, topic, principal] = process.argv.slice(2)
  const kafka = new Kafka({
    clientId: 'weir-acl',
    brokers: [bootstrap],
    sasl: { mechanism: 'scram-sha-512', username, password },
    logLevel: logLevel.NOTHING,
    retry: { retries: 2 }
  })
  const admin = kafka.admin()
  await admin.connect()
  const acl = (name, pattern, operation) => ({
    resourceType: AclResourceTypes.TOPIC,
    resourceName: name,
    resourcePatternType: pattern,
    principal,
    host: '*',
    operation,
    permissionType: AclPermissionTypes.ALLOW
  })
  const out = {}
  try {
    out.created = await admin.createAcls({
      acl: [
        acl(topic, ResourcePatternTypes.LITERAL, AclOperationTypes.READ),
        acl(`${topic}-`, ResourcePatternTypes.PREFIXED, AclOperationTypes.DESCRIBE)
      ]
    })
    const describe = async (resourceName, resourcePatternType) => {
      const d = await admin.describeAcls({
        resourceType: AclResourceTypes.TOPIC,
        resourceName,
        resourcePatternType,
        principal,
        host: '*',
        operation: AclOperationTypes.ANY,
        permissionType: AclPermissionTypes.ANY
      })
      return d.resources.map(r => ({
        name: r.resourceName,
        pattern: r.resourcePatternType,
        acls: r.acls.map(a => [a.principal, a.host, a.operation, a.permissionType])
      })).sort((a, b) => a.name.localeCompare(b.name))
    }
    // MATCH: the bindings that apply to topic "TOPIC-x" (the prefixed one, not the literal).
    out.matched = await describe(`${topic}-x`, ResourcePatternTypes.MATCH)
    out.described = await describe(topic, ResourcePatternTypes.ANY)
    const deleted = await admin.deleteAcls({
      filters: [{
        resourceType: AclResourceTypes.TOPIC,
        resourceName: `${topic}-`,
        resourcePatternType: ResourcePatternTypes.PREFIXED,
        principal,
        host: '*',
        operation: AclOperationTypes.ANY,
        permissionType: AclPermissionTypes.ANY
      }]
    })
    out.deleted = deleted.filterResponses.map(f => ({
      errorCode: f.errorCode,
      matching: f.matchingAcls.map(m => [m.resourceName, m.operation])
    }))
  } catch (e) {
    out.error = e.type || e.name
    out.message = e.message
  }
  await admin.disconnect()
  console.log(JSON.stringify(out))
}

main().catch(e => {
  console.log(JSON.stringify({ error: e.name, message: e.message }))
  process.exitCode = 1
})
