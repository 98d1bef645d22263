#!/usr/bin/env node
// kafkajs 2.2.4 beyond produce/consume, driven by tests/clients/test_compat_kafkajs.py.
//
// Usage: node compat.js <scenario> <bootstrap> <topic-prefix>; prints one JSON object on stdout.
// Each step's result (or {error: <kafkajs error type>}) is recorded under its label, so the
// Python test states exactly what it expects from every call. kafkajs logs go to stderr.
//
// Scenarios: admin, groups, consumer, producer, transaction.
'use strict'

const {
  Kafka,
  CompressionTypes,
  CompressionCodecs,
  ConfigResourceTypes,
  AclResourceTypes,
  AclOperationTypes,
  AclPermissionTypes,
  ResourcePatternTypes,
  logLevel,
} = require('kafkajs')

// Codecs kafkajs does not build in come from their npm packages (package.json); lz4 is an
// optional dependency (a native build), so it may be missing.
const codecs = ['none', 'gzip']
try {
  CompressionCodecs[CompressionTypes.Snappy] = require('kafkajs-snappy')
  codecs.push('snappy')
} catch (e) {}
try {
  const LZ4Codec = require('kafkajs-lz4')
  CompressionCodecs[CompressionTypes.LZ4] = new LZ4Codec().codec
  codecs.push('lz4')
} catch (e) {}
const CODEC = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
}

const [scenario, bootstrap, prefix] = process.argv.slice(2)
const kafka = new Kafka({
  clientId: 'fastlog-compat',
  brokers: [bootstrap],
  connectionTimeout: 3000,
  requestTimeout: 10000,
  retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 },
  logLevel: logLevel[(process.env.KAFKAJS_LOG_LEVEL || 'NOTHING').toUpperCase()],
})
const out = {}

// The Kafka error under kafkajs's wrappers (retrier, aggregate and per-partition errors)
function describeError(e) {
  let inner = e
  for (let i = 0; i < 5; i++) {
    const next =
      inner.originalError ||
      inner.cause ||
      (inner.errors && inner.errors[0]) ||
      (inner.partitions && inner.partitions[0] && inner.partitions[0].error) ||
      (inner.groups && inner.groups[0] && inner.groups[0].error)
    if (!next || next === inner) break
    inner = next
  }
  return { error: inner.type || inner.name, message: String(inner.message) }
}

const T0 = Date.now()
const timings = {}
async function attempt(label, fn) {
  timings[label] = Date.now() - T0
  try {
    out[label] = await fn()
  } catch (e) {
    out[label] = describeError(e)
  }
  return out[label]
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

async function waitFor(pred, ms = 15000) {
  const deadline = Date.now() + ms
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('timed out waiting')
    await sleep(20)
  }
}

const byPartition = (offs) =>
  Object.fromEntries(offs.map((o) => [o.partition, o.offset ?? o]))

async function produceValues(topic, partition, values, extra = {}) {
  const p = kafka.producer({ allowAutoTopicCreation: false })
  await p.connect()
  try {
    return await p.send({
      topic,
      acks: -1,
      messages: values.map((v) => ({ value: v, partition, ...extra })),
    })
  } finally {
    await p.disconnect()
  }
}

// ------------------------------------------------------------------------------ admin
async function admin() {
  const a = kafka.admin()
  await a.connect()
  const t = `${prefix}-adm`
  await attempt('validateOnly', () =>
    // waitForLeaders would wait for metadata of a topic validateOnly does not create
    a.createTopics({ validateOnly: true, waitForLeaders: false, topics: [{ topic: t, numPartitions: 2 }] })
  )
  await attempt('afterValidateOnly', () => a.listTopics().then((ts) => ts.includes(t)))
  await attempt('validateOnlyBad', () =>
    a.createTopics({
      validateOnly: true,
      waitForLeaders: false,
      topics: [{ topic: t, configEntries: [{ name: 'cleanup.policy', value: 'sometimes' }] }],
    })
  )
  await attempt('create', () =>
    a.createTopics({
      waitForLeaders: true,
      topics: [
        {
          topic: t,
          numPartitions: 2,
          replicationFactor: 1,
          configEntries: [
            { name: 'cleanup.policy', value: 'compact' },
            { name: 'max.message.bytes', value: '30000' },
          ],
        },
      ],
    })
  )
  await attempt('assigned', () =>
    a
      .createTopics({
        topics: [{ topic: `${t}-ra`, replicaAssignment: [{ partition: 0, replicas: [0] }, { partition: 1, replicas: [0] }] }],
      })
      .then(() => a.fetchTopicMetadata({ topics: [`${t}-ra`] }))
      .then((m) => m.topics[0].partitions.map((p) => [p.partitionId, p.replicas]).sort((x, y) => x[0] - y[0]))
  )
  await attempt('assignedBadBroker', () =>
    a.createTopics({ topics: [{ topic: `${t}-rb`, replicaAssignment: [{ partition: 0, replicas: [7] }] }] })
  )
  await attempt('configs', () =>
    a
      .describeConfigs({
        includeSynonyms: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: t }],
      })
      .then((r) =>
        Object.fromEntries(
          r.resources[0].configEntries
            .filter((c) => ['cleanup.policy', 'max.message.bytes', 'retention.ms'].includes(c.configName))
            .map((c) => [c.configName, [c.configValue, c.isDefault]])
        )
      )
  )
  await attempt('brokerConfigs', () =>
    a
      .describeConfigs({
        includeSynonyms: false,
        resources: [{ type: ConfigResourceTypes.BROKER, name: '0', configNames: ['num.partitions'] }],
      })
      .then((r) => r.resources[0].configEntries.map((c) => c.configName))
  )
  await attempt('alterValidateOnly', () =>
    a
      .alterConfigs({
        validateOnly: true,
        resources: [
          { type: ConfigResourceTypes.TOPIC, name: t, configEntries: [{ name: 'retention.ms', value: '1000' }] },
        ],
      })
      .then(() =>
        a.describeConfigs({
          includeSynonyms: false,
          resources: [{ type: ConfigResourceTypes.TOPIC, name: t, configNames: ['retention.ms'] }],
        })
      )
      .then((r) => r.resources[0].configEntries[0].configValue)
  )
  await attempt('grow', () => a.createPartitions({ topicPartitions: [{ topic: t, count: 4 }] }))
  await attempt('shrink', () => a.createPartitions({ topicPartitions: [{ topic: t, count: 2 }] }))
  await attempt('metadata', () =>
    a.fetchTopicMetadata({ topics: [t] }).then((m) =>
      m.topics[0].partitions
        .map((p) => [p.partitionId, p.leader, p.replicas, p.isr, p.partitionErrorCode])
        .sort((x, y) => x[0] - y[0])
    )
  )
  // Timestamps 1000 ms apart, in the past, on partition 3 (a partition createPartitions added)
  const base = Date.now() - 100000
  const p = kafka.producer({ allowAutoTopicCreation: false })
  await p.connect()
  for (let i = 0; i < 5; i++) {
    await p.send({
      topic: t,
      messages: [{ key: `k${i}`, value: `v${i}`, partition: 3, timestamp: String(base + i * 1000) }],
    })
  }
  await p.disconnect()
  await attempt('offsets', () =>
    a.fetchTopicOffsets(t).then((o) =>
      o.map((x) => [x.partition, x.low, x.high, x.offset]).sort((x, y) => x[0] - y[0])
    )
  )
  await attempt('byTimestamp', () =>
    a.fetchTopicOffsetsByTimestamp(t, base + 2500).then((o) => byPartition(o))
  )
  await attempt('byTimestampLate', () =>
    a.fetchTopicOffsetsByTimestamp(t, base + 999999).then((o) => byPartition(o))
  )
  await attempt('byTimestampNone', () => a.fetchTopicOffsetsByTimestamp(t).then((o) => byPartition(o)))
  // Kafka refuses DeleteRecords on a compacted topic
  await attempt('deleteRecordsCompacted', () =>
    a.deleteTopicRecords({ topic: t, partitions: [{ partition: 3, offset: '2' }] })
  )
  await attempt('alter', () =>
    a.alterConfigs({
      validateOnly: false,
      resources: [
        { type: ConfigResourceTypes.TOPIC, name: t, configEntries: [{ name: 'cleanup.policy', value: 'delete' }] },
      ],
    })
  )
  await attempt('deleteRecords', () =>
    a
      .deleteTopicRecords({ topic: t, partitions: [{ partition: 3, offset: '2' }] })
      .then(() => a.fetchTopicOffsets(t))
      .then((o) => o.filter((x) => x.partition === 3).map((x) => [x.low, x.high])[0])
  )
  await attempt('deleteRecordsPastEnd', () =>
    a.deleteTopicRecords({ topic: t, partitions: [{ partition: 3, offset: '99' }] })
  )
  await attempt('deleteRecordsToEnd', () =>
    a
      .deleteTopicRecords({ topic: t, partitions: [{ partition: 3, offset: '-1' }] })
      .then(() => a.fetchTopicOffsets(t))
      .then((o) => o.filter((x) => x.partition === 3).map((x) => [x.low, x.high])[0])
  )
  await attempt('synonyms', () =>
    a
      .describeConfigs({
        includeSynonyms: true,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: t, configNames: ['segment.bytes'] }],
      })
      .then((r) =>
        r.resources[0].configEntries[0].configSynonyms.map((c) => [c.configName, c.configValue, c.configSource])
      )
  )
  await attempt('reassign', () =>
    a
      .alterPartitionReassignments({ topics: [{ topic: t, partitionAssignment: [{ partition: 0, replicas: [0] }] }] })
      .then(() => a.listPartitionReassignments({ topics: [{ topic: t, partitions: [0, 1] }] }))
  )
  // no ACLs: kafkajs sees the API is not offered and says so at once
  await attempt('createAcls', () =>
    a.createAcls({
      acl: [
        {
          resourceType: AclResourceTypes.TOPIC,
          resourceName: t,
          resourcePatternType: ResourcePatternTypes.LITERAL,
          principal: 'User:bob',
          host: '*',
          operation: AclOperationTypes.ALL,
          permissionType: AclPermissionTypes.DENY,
        },
      ],
    })
  )
  await attempt('deleteTopics', () =>
    a.deleteTopics({ topics: [t, `${t}-ra`] }).then(() => a.listTopics())
      .then((ts) => ts.filter((x) => x.startsWith(prefix)))
  )
  // last: kafkajs keeps an unknown topic among its target topics, failing later refreshes
  await attempt('metadataMissing', () => a.fetchTopicMetadata({ topics: [`${prefix}-nosuch`] }))
  await a.disconnect()
}

// ----------------------------------------------------------------------------- groups
async function groups() {
  const a = kafka.admin()
  await a.connect()
  const t = `${prefix}-grp`
  const groupId = `${prefix}-group`
  await a.createTopics({ waitForLeaders: true, topics: [{ topic: t, numPartitions: 2 }] })
  await produceValues(t, 0, ['a0', 'a1', 'a2', 'a3'])
  await produceValues(t, 1, ['b0', 'b1'])

  const consumer = kafka.consumer({ groupId, heartbeatInterval: 500, sessionTimeout: 10000, maxWaitTimeInMs: 200 })
  await consumer.connect()
  await consumer.subscribe({ topics: [t], fromBeginning: true })
  const seen = []
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      seen.push([partition, Number(message.offset)])
    },
  })
  await waitFor(() => seen.length >= 6)
  await consumer.commitOffsets([
    { topic: t, partition: 0, offset: '4' },
    { topic: t, partition: 1, offset: '2' },
  ])
  out.seen = seen.length
  await attempt('listGroups', () =>
    a.listGroups().then((r) => r.groups.filter((g) => g.groupId === groupId))
  )
  await attempt('describeGroups', () =>
    a.describeGroups([groupId]).then((r) =>
      r.groups.map((g) => ({
        groupId: g.groupId,
        state: g.state,
        protocolType: g.protocolType,
        protocol: g.protocol,
        members: g.members.length,
        errorCode: g.errorCode,
      }))
    )
  )
  const fetchOffsets = () =>
    a
      .fetchOffsets({ groupId, topics: [t] })
      .then((r) => r[0].partitions.map((p) => [p.partition, p.offset]).sort((x, y) => x[0] - y[0]))
  await attempt('fetchOffsets', fetchOffsets)
  // kafkajs refuses these itself while the group has members; deleteGroups asks the broker
  await attempt('deleteNonEmpty', () => a.deleteGroups([groupId]))
  await consumer.disconnect()
  await attempt('describeEmpty', () => a.describeGroups([groupId]).then((r) => r.groups[0].state))
  // (each of these runs a consumer inside kafkajs that waits one fetch, maxWaitTime 5 s)
  await attempt('resetEarliest', () => a.resetOffsets({ groupId, topic: t, earliest: true }).then(fetchOffsets))
  await attempt('setOffsets', () =>
    a.setOffsets({ groupId, topic: t, partitions: [{ partition: 0, offset: '1' }] }).then(fetchOffsets)
  )
  // a new member of the group resumes from the offsets set by the admin
  const again = kafka.consumer({ groupId, heartbeatInterval: 500, sessionTimeout: 10000, maxWaitTimeInMs: 200 })
  await again.connect()
  await again.subscribe({ topics: [t], fromBeginning: true })
  const resumed = []
  await again.run({
    eachMessage: async ({ partition, message }) => {
      resumed.push([partition, Number(message.offset), String(message.value)])
    },
  })
  await waitFor(() => resumed.length >= 3)
  await sleep(300) // nothing else may arrive
  out.resumed = resumed.sort((x, y) => x[0] - y[0] || x[1] - y[1])
  await again.disconnect()
  await attempt('delete', () => a.deleteGroups([groupId]))
  await attempt('fetchAfterDelete', fetchOffsets)
  await attempt('deleteMissing', () => a.deleteGroups([groupId]))
  await a.disconnect()
}

// --------------------------------------------------------------------------- consumer
async function consumerScenario() {
  const a = kafka.admin()
  await a.connect()
  const t = `${prefix}-cons`
  await a.createTopics({ waitForLeaders: true, topics: [{ topic: t, numPartitions: 2 }] })
  await produceValues(t, 0, Array.from({ length: 10 }, (_, i) => `p0-${i}`))
  await produceValues(t, 1, Array.from({ length: 4 }, (_, i) => `p1-${i}`))

  // seek, pause and resume with eachMessage
  const groupId = `${prefix}-seek`
  const c = kafka.consumer({ groupId, heartbeatInterval: 500, maxWaitTimeInMs: 200 })
  await c.connect()
  await c.subscribe({ topics: [t], fromBeginning: true })
  const got = []
  const offsetsOf = (part, from = 0) => got.slice(from).filter(([p]) => p === part).map(([, o]) => o)
  await c.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      got.push([partition, Number(message.offset)])
    },
  })
  await waitFor(() => offsetsOf(0).includes(9) && offsetsOf(1).includes(3))
  out.first = { p0: offsetsOf(0), p1: offsetsOf(1) }
  // paused: new records of partition 1 are not delivered, partition 0 goes on
  c.pause([{ topic: t, partitions: [1] }])
  out.paused = c.paused()
  await produceValues(t, 1, ['p1-4', 'p1-5'])
  await produceValues(t, 0, ['p0-10'])
  await waitFor(() => offsetsOf(0).includes(10))
  await sleep(500)
  out.p1WhilePaused = offsetsOf(1)
  // seek (only allowed once run() started): partition 0 is read again from 7
  let mark = got.length
  c.seek({ topic: t, partition: 0, offset: '7' })
  await waitFor(() => offsetsOf(0, mark).includes(10))
  out.afterSeek = offsetsOf(0, mark)
  mark = got.length
  c.resume([{ topic: t, partitions: [1] }])
  await waitFor(() => offsetsOf(1, mark).includes(5))
  out.afterResume = offsetsOf(1, mark)
  await c.disconnect()

  // eachBatch with manual resolveOffset and commitOffsetsIfNecessary: process half of
  // partition 0's batch, commit, stop; the group then resumes at the first unresolved offset
  const batchGroup = `${prefix}-batch`
  // (autoCommit on with no interval/threshold: commitOffsetsIfNecessary commits every time
  // it is called, here once; with autoCommit off it would not commit at all)
  const b = kafka.consumer({ groupId: batchGroup, heartbeatInterval: 500, maxWaitTimeInMs: 200 })
  await b.connect()
  await b.subscribe({ topics: [t], fromBeginning: true })
  const batches = []
  let done = false
  await b.run({
    eachBatchAutoResolve: false,
    eachBatch: async ({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning }) => {
      if (done || batch.partition !== 0) return
      const offsets = batch.messages.map((m) => Number(m.offset))
      batches.push({ first: batch.firstOffset(), last: batch.lastOffset(), hw: batch.highWatermark, offsets })
      for (const m of batch.messages) {
        if (!isRunning() || Number(m.offset) >= 5) break
        resolveOffset(m.offset)
        await heartbeat()
      }
      await commitOffsetsIfNecessary()
      done = true
    },
  })
  await waitFor(() => done)
  out.batches = batches
  await b.disconnect()
  await attempt('batchCommitted', () =>
    a
      .fetchOffsets({ groupId: batchGroup, topics: [t] })
      .then((r) => r[0].partitions.map((p) => [p.partition, p.offset]).sort((x, y) => x[0] - y[0]))
  )
  await a.disconnect()
}

// --------------------------------------------------------------------------- producer
async function producerScenario() {
  const a = kafka.admin()
  await a.connect()
  const topics = [`${prefix}-pa`, `${prefix}-pb`]
  await a.createTopics({ waitForLeaders: true, topics: topics.map((topic) => ({ topic, numPartitions: 1 })) })
  const p = kafka.producer({ allowAutoTopicCreation: false })
  await p.connect()
  out.codecs = codecs
  const sent = {}
  for (const acks of [0, 1, -1]) {
    for (const codec of codecs) {
      const label = `acks${acks}-${codec}`
      await attempt(label, () =>
        p
          .sendBatch({
            acks,
            compression: CODEC[codec],
            topicMessages: topics.map((topic) => ({
              topic,
              messages: Array.from({ length: 3 }, (_, i) => ({
                key: `${label}-k${i}`,
                value: `${label}-${topic}-${i}-` + 'x'.repeat(100),
                headers: { h: `${i}` },
              })),
            })),
          })
          .then((r) => r.map((m) => [m.topicName, m.partition, m.errorCode, m.baseOffset]))
      )
      for (const topic of topics) sent[topic] = (sent[topic] || 0) + 3
    }
  }
  await p.disconnect()
  await attempt('offsets', async () => {
    const res = {}
    for (const topic of topics) res[topic] = (await a.fetchTopicOffsets(topic))[0].high
    return res
  })
  out.sent = sent
  // read everything back through kafkajs's own group consumer
  const c = kafka.consumer({ groupId: `${prefix}-prod-read`, maxWaitTimeInMs: 200 })
  await c.connect()
  await c.subscribe({ topics, fromBeginning: true })
  const got = []
  await c.run({
    eachMessage: async ({ topic, message }) => {
      got.push([topic, Number(message.offset), String(message.key), String(message.value), String(message.headers.h)])
    },
  })
  await waitFor(() => got.length >= sent[topics[0]] + sent[topics[1]])
  await c.disconnect()
  out.read = got.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : x[1] - y[1]))
  await a.disconnect()
}

// ------------------------------------------------------------------------ transaction
// Transactions are not supported: the transactional producer must fail at once, not retry.
async function transaction() {
  const start = Date.now()
  const p = kafka.producer({ transactionalId: `${prefix}-tx`, idempotent: true, maxInFlightRequests: 1 })
  await p.connect()
  await attempt('transaction', () => p.transaction().then(() => 'began'))
  out.ms = Date.now() - start
  await p.disconnect()
  // the broker still answers
  const a = kafka.admin()
  await a.connect()
  await attempt('after', () =>
    a.createTopics({ topics: [{ topic: `${prefix}-after`, numPartitions: 1 }] })
  )
  await a.disconnect()
}

const SCENARIOS = { admin, groups, consumer: consumerScenario, producer: producerScenario, transaction }

;(async () => {
  await SCENARIOS[scenario]()
  if (process.env.COMPAT_TIMINGS) out.timings = timings
  process.stdout.write(JSON.stringify(out))
})().catch((e) => {
  process.stderr.write(String(e.stack || e) + '\n' + JSON.stringify(out))
  process.exit(1)
})
