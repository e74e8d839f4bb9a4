// The compatibility suite's kafkajs side, run by broker/tests/compat.rs: every operation of
// issue 12 through kafkajs's admin, producer and consumer in their default configuration,
// with the same expectations as compat.py (the Python clients' side).
//
// Usage: node compat.js BOOTSTRAP [main|restart]
// Prints one JSON line per operation: {client, op, result: "ok"|"fail"|"n/a", detail}.
'use strict'

const { Kafka, logLevel, ConfigResourceTypes, AssignerProtocol } = require('kafkajs')

const CLIENT = 'kafkajs'
const TAG = 'kjs'
const NA = 'n/a (client has no API)'
const TS_BASE = 1700000000000
const KEYS = Array.from({ length: 10 }, (_, i) => `key-${i}`)
const RETENTION_MS = '3600000'
const BROKER_RETENTION_MS = '86400000' // compat.rs runs the broker with --retention-ms 86400000
const SOURCES = { 1: 'DYNAMIC_TOPIC_CONFIG', 4: 'STATIC_BROKER_CONFIG', 5: 'DEFAULT_CONFIG' }

class NotAvailable extends Error {}

function expect (got, want, what) {
  const [g, w] = [JSON.stringify(got), JSON.stringify(want)]
  if (g !== w) throw new Error(`${what}: expected ${w}, got ${g}`)
}

function check (cond, what) {
  if (!cond) throw new Error(what)
}

class Client {
  constructor (bootstrap) {
    this.kafka = new Kafka({ clientId: 'weir-compat', brokers: [bootstrap], logLevel: logLevel.NOTHING })
    this.admin = this.kafka.admin()
  }

  async createTopic (topic, numPartitions) {
    check(await this.admin.createTopics({ topics: [{ topic, numPartitions }], waitForLeaders: true }), 'created')
    return this.partitionCount(topic)
  }

  async partitionCount (topic) {
    const md = await this.admin.fetchTopicMetadata({ topics: [topic] })
    return md.topics[0].partitions.length
  }

  // messages: kafkajs messages; the [partition, offset] of each, in order.
  async produce (topic, messages) {
    const p = this.kafka.producer()
    await p.connect()
    // One send: one batch per partition, as the time lookup wants.
    const acks = await p.send({ topic, messages })
    await p.disconnect()
    const next = Object.fromEntries(acks.map(a => [a.partition, Number(a.baseOffset)]))
    return messages.map(m => {
      const part = m.partition !== undefined ? m.partition : partitionOf(acks, m)
      return [part, next[part]++]
    })
  }

  // Runs a group consumer from the beginning until `count` records arrive; the
  // [partition, key, value] of each, in arrival order. The consumer stays (this.member).
  async consume (topic, groupId, count) {
    const c = this.kafka.consumer({ groupId })
    await c.connect()
    await c.subscribe({ topics: [topic], fromBeginning: true })
    const got = []
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => resolve(), 15000)
      c.run({
        eachMessage: async ({ partition, message }) => {
          got.push([partition, String(message.key || ''), String(message.value)])
          if (got.length >= count) { clearTimeout(timer); resolve() }
        }
      }).catch(reject)
    })
    this.member = c
    return got
  }

  async offset (topic, partition, which) {
    const o = (await this.admin.fetchTopicOffsets(topic)).find(x => x.partition === partition)
    return Number(o[which])
  }

  async describeConfigs (type, name) {
    const d = await this.admin.describeConfigs({ includeSynonyms: false, resources: [{ type, name }] })
    return Object.fromEntries(d.resources[0].configEntries.map(e => [e.configName, [e.configValue, SOURCES[e.configSource] || e.configSource]]))
  }
}

// kafkajs's send answers per partition; a keyed message's partition is the one the
// default partitioner picked, which compat.js recovers by producing keys one at a time.
function partitionOf (acks, m) {
  check(acks.length === 1, `one partition per send for ${m.key}`)
  return acks[0].partition
}

const ops = {
  CreateTopics: async c => {
    expect(await c.createTopic(`${TAG}-basic`, 2), 2, 'partitions after CreateTopics')
    return '2 partitions'
  },
  Produce: async c => {
    const got = await c.produce(`${TAG}-basic`, [0, 1, 2, 3, 4].map(i => ({ value: `v${i}`, partition: 0 })))
    expect(got, [0, 1, 2, 3, 4].map(i => [0, i]), '[partition, offset] per record')
    return 'offsets 0-4'
  },
  Fetch: async c => {
    // kafkajs reads only through a group; this one also commits (next op checks it).
    const got = await c.consume(`${TAG}-basic`, `${TAG}-g`, 5)
    expect(got.map(r => r[2]), ['v0', 'v1', 'v2', 'v3', 'v4'], 'values in order')
    return '5 records in order'
  },
  'OffsetCommit (group member)': async c => {
    let committed
    for (let i = 0; i < 50; i++) {
      const o = await c.admin.fetchOffsets({ groupId: `${TAG}-g`, topics: [`${TAG}-basic`] })
      committed = o[0].partitions.find(p => p.partition === 0).offset
      if (committed === '5') break
      await new Promise(resolve => setTimeout(resolve, 200))
    }
    expect(committed, '5', 'committed offset (auto-commit)')
    return 'committed 5'
  },
  ListGroups: async c => {
    const mine = (await c.admin.listGroups()).groups.map(g => g.groupId).filter(g => g.startsWith(`${TAG}-`))
    expect(mine, [`${TAG}-g`], "this client's groups, each once")
    return 'group listed once'
  },
  DescribeGroups: async c => {
    const g = (await c.admin.describeGroups([`${TAG}-g`])).groups[0]
    const parts = g.members.flatMap(m => {
      const a = AssignerProtocol.MemberAssignment.decode(m.memberAssignment)
      return a.assignment[`${TAG}-basic`] || []
    }).sort()
    expect({ state: g.state.toUpperCase(), members: g.members.length, partitions: parts },
      { state: 'STABLE', members: 1, partitions: [0, 1] }, 'group')
    await c.member.disconnect()
    return 'Stable, 1 member with partitions 0-1'
  },
  CreatePartitions: async c => {
    const topic = `${TAG}-grow`
    await c.createTopic(topic, 2)
    const before = []
    for (const k of KEYS) before.push((await c.produce(topic, [{ key: k, value: k }]))[0][0])
    await c.admin.createPartitions({ topicPartitions: [{ topic, count: 4 }] })
    expect(await c.partitionCount(topic), 4, 'partitions after CreatePartitions')
    const got = await c.consume(topic, `${TAG}-grow-reader`, KEYS.length)
    await c.member.disconnect()
    // The records already written stay where they were, in order per partition.
    for (const p of [0, 1]) {
      const want = KEYS.filter((k, i) => before[i] === p)
      expect(got.filter(r => r[0] === p).map(r => r[1]), want, `records of partition ${p}`)
      expect(await c.offset(topic, p, 'high'), want.length, `end of partition ${p}`)
    }
    await c.admin.deleteGroups([`${TAG}-grow-reader`])
    return '2 -> 4; keyed records kept their partitions'
  },
  'DeleteRecords + ListOffsets earliest': async c => {
    const topic = `${TAG}-dr`
    await c.createTopic(topic, 1)
    await c.produce(topic, Array.from({ length: 10 }, (_, i) => ({ value: `d${i}`, partition: 0 })))
    await c.admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '4' }] })
    expect(await c.offset(topic, 0, 'low'), 4, 'ListOffsets earliest')
    return 'earliest 4'
  },
  DeleteGroups: async c => {
    const groupId = `${TAG}-gdel`
    await c.admin.setOffsets({ groupId, topic: `${TAG}-basic`, partitions: [{ partition: 0, offset: '1' }] })
    check((await c.admin.listGroups()).groups.some(g => g.groupId === groupId), `${groupId} listed before deletion`)
    await c.admin.deleteGroups([groupId])
    check(!(await c.admin.listGroups()).groups.some(g => g.groupId === groupId), `${groupId} listed after deletion`)
    return 'deleted'
  },
  AlterConfigs: async c => {
    const topic = `${TAG}-basic`
    await c.admin.alterConfigs({
      validateOnly: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'retention.ms', value: RETENTION_MS }] }]
    })
    expect((await c.describeConfigs(ConfigResourceTypes.TOPIC, topic))['retention.ms'], [RETENTION_MS, 'DYNAMIC_TOPIC_CONFIG'], 'retention.ms')
    return `retention.ms=${RETENTION_MS}`
  },
  IncrementalAlterConfigs: async () => { throw new NotAvailable() },
  'DescribeConfigs topic': async c => {
    const seen = await c.describeConfigs(ConfigResourceTypes.TOPIC, `${TAG}-dr`)
    expect(seen['retention.ms'][0], BROKER_RETENTION_MS, 'retention.ms')
    expect(seen['cleanup.policy'], ['delete', 'DEFAULT_CONFIG'], 'cleanup.policy')
    return 'defaults with sources'
  },
  'DescribeConfigs broker': async c => {
    const seen = await c.describeConfigs(ConfigResourceTypes.BROKER, '0')
    expect(seen['log.retention.ms'], [BROKER_RETENTION_MS, 'STATIC_BROKER_CONFIG'], 'log.retention.ms')
    expect(seen['num.partitions'], ['1', 'DEFAULT_CONFIG'], 'num.partitions')
    return 'serve flags under Kafka names'
  },
  DescribeCluster: async c => {
    const d = await c.admin.describeCluster()
    expect([d.controller, d.brokers.map(b => b.nodeId).sort()], [0, [0, 1]], 'controller and nodes')
    check(d.clusterId, 'a cluster id')
    return '2 brokers, controller 0'
  },
  DescribeLogDirs: async () => { throw new NotAvailable() },
  ElectLeaders: async () => { throw new NotAvailable() },
  'ListOffsets by timestamp': async c => {
    const topic = `${TAG}-ts`
    await c.createTopic(topic, 1)
    await c.produce(topic, Array.from({ length: 10 }, (_, i) => ({ value: `t${i}`, partition: 0, timestamp: String(TS_BASE + 10 * i) })))
    const at = async ts => Number((await c.admin.fetchTopicOffsetsByTimestamp(topic, ts))[0].offset)
    expect(await at(TS_BASE + 45), 5, 'offset for a time between records 5 and 6')
    expect(await at(TS_BASE), 0, "offset for the first record's time")
    return 'record-granular'
  },
  OffsetForLeaderEpoch: async () => { throw new NotAvailable() },
  DescribeTopicPartitions: async () => { throw new NotAvailable() }
}

const restartOps = {
  'Configs survive a restart': async c => {
    const seen = await c.describeConfigs(ConfigResourceTypes.TOPIC, `${TAG}-basic`)
    expect(seen['retention.ms'][0], RETENTION_MS, 'retention.ms')
    return 'the change kept'
  }
}

async function main () {
  const [bootstrap, phase = 'main'] = process.argv.slice(2)
  const c = new Client(bootstrap)
  await c.admin.connect()
  for (const [op, fn] of Object.entries(phase === 'main' ? ops : restartOps)) {
    const line = { client: CLIENT, op }
    try {
      Object.assign(line, { result: 'ok', detail: await fn(c) })
    } catch (e) {
      const na = e instanceof NotAvailable
      Object.assign(line, { result: na ? 'n/a' : 'fail', detail: na ? NA : String(e).slice(0, 400) })
    }
    console.log(JSON.stringify(line))
  }
  await c.admin.disconnect()
}

main().catch(e => { console.error(e); process.exit(1) })
