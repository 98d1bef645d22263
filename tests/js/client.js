#!/usr/bin/env node
// kafkajs 2.2.4 driven by the Python client-compatibility tests (tests/clients/).
//
// Usage: node client.js <op>   with a JSON request on stdin; prints one JSON reply on stdout.
// Binary keys, values and header values travel as base64 strings (null stays null), so the
// tests can compare exact bytes. kafkajs logs go to stderr only, keeping stdout parseable.
//
// Ops: produce, consume, consume-group, create-topics, delete-topics, list-topics, offsets, offsets-by-time,
//      api-versions.
'use strict'

const { Kafka, CompressionTypes, logLevel } = require('kafkajs')

const b64 = (buf) => (buf == null ? null : Buffer.from(buf).toString('base64'))
const unb64 = (s) => (s == null ? null : Buffer.from(s, 'base64'))

// Everything fails fast: a broken broker should fail the test, never hang it.
function makeKafka(req) {
  return new Kafka({
    clientId: req.clientId || 'fastlog-kafkajs-test',
    brokers: req.brokers,
    connectionTimeout: 3000,
    requestTimeout: req.requestTimeout || 10000,
    retry: { retries: req.retries ?? 3, initialRetryTime: 100, maxRetryTime: 1000 },
    logLevel: logLevel[(process.env.KAFKAJS_LOG_LEVEL || 'ERROR').toUpperCase()],
    logCreator: () => ({ namespace, level, label, log }) => {
      process.stderr.write(`[kafkajs ${label}] ${namespace}: ${JSON.stringify(log)}\n`)
    },
  })
}

const CODECS = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
}

function encodeHeaders(pairs) {
  // kafkajs takes headers as an object; a repeated key is given as an array of values.
  const headers = {}
  for (const [k, v] of pairs || []) {
    const value = unb64(v)
    if (headers[k] === undefined) headers[k] = value
    else if (Array.isArray(headers[k])) headers[k].push(value)
    else headers[k] = [headers[k], value]
  }
  return headers
}

function decodeHeaders(obj) {
  const pairs = []
  for (const [k, v] of Object.entries(obj || {})) {
    for (const value of Array.isArray(v) ? v : [v]) pairs.push([k, b64(value)])
  }
  return pairs
}

async function produce(req) {
  // Each call to send() is one request; messages given to one call to one partition form
  // one batch, so the offset of message i is baseOffset + i.
  const kafka = makeKafka(req)
  const producer = kafka.producer({
    idempotent: !!req.idempotent,
    maxInFlightRequests: req.idempotent ? 1 : undefined,
    allowAutoTopicCreation: req.allowAutoTopicCreation ?? true,
    createPartitioner: () => ({ partitionMetadata, message }) => message.partition ?? 0,
  })
  await producer.connect()
  const results = []
  try {
    for (const batch of req.batches) {
      const messages = batch.messages.map((m) => ({
        key: unb64(m.key),
        value: unb64(m.value),
        headers: encodeHeaders(m.headers),
        partition: m.partition ?? batch.partition ?? 0,
        timestamp: m.timestamp == null ? undefined : String(m.timestamp),
      }))
      const meta = await producer.send({
        topic: req.topic,
        messages,
        acks: req.acks ?? -1,
        timeout: 10000,
        compression: CODECS[req.compression || 'none'],
      })
      results.push(
        meta.map((m) => ({
          topic: m.topicName,
          partition: m.partition,
          errorCode: m.errorCode,
          baseOffset: Number(m.baseOffset),
          logAppendTime: Number(m.logAppendTime),
          logStartOffset: m.logStartOffset == null ? null : Number(m.logStartOffset),
        }))
      )
    }
  } finally {
    await producer.disconnect()
  }
  return { results }
}

function privateCluster(kafka) {
  // kafkajs's only public consumer joins a group; reading one partition from an offset
  // (like librdkafka's assign()) goes through the client's own Cluster and Broker.fetch,
  // which decode record batches with the same code the group consumer uses.
  const sym = Object.getOwnPropertySymbols(kafka).find(
    (s) => s.description === 'private:Kafka:createCluster'
  )
  return kafka[sym]({ allowAutoTopicCreation: false, isolationLevel: 1 })
}

async function consume(req) {
  const kafka = makeKafka(req)
  const cluster = privateCluster(kafka)
  await cluster.connect()
  const records = []
  let highWatermark = null
  try {
    await cluster.addTargetTopic(req.topic)
    const deadline = Date.now() + (req.timeoutMs || 10000)
    let offset = BigInt(req.offset || 0)
    while (records.length < req.count && Date.now() < deadline) {
      const leaders = cluster.findLeaderForPartitions(req.topic, [req.partition])
      const nodeId = Object.keys(leaders)[0]
      const broker = await cluster.findBroker({ nodeId })
      const response = await broker.fetch({
        replicaId: -1,
        isolationLevel: 1,
        maxWaitTime: 500,
        minBytes: 1,
        maxBytes: req.maxBytes || 1048576,
        topics: [
          {
            topic: req.topic,
            partitions: [
              { partition: req.partition, fetchOffset: offset.toString(), maxBytes: req.maxBytes || 1048576 },
            ],
          },
        ],
      })
      for (const topic of response.responses) {
        for (const p of topic.partitions) {
          if (p.errorCode !== 0) throw new Error(`fetch error code ${p.errorCode}`)
          highWatermark = Number(p.highWatermark)
          for (const m of p.messages) {
            // A fetch returns whole batches; records before the asked offset are skipped,
            // as the group consumer does.
            if (m.isControlRecord || BigInt(m.offset) < offset) continue
            records.push({
              offset: Number(m.offset),
              timestamp: Number(m.timestamp),
              key: b64(m.key),
              value: b64(m.value),
              headers: decodeHeaders(m.headers),
            })
          }
        }
      }
      if (records.length) offset = BigInt(records[records.length - 1].offset) + 1n
      // Like the other drivers, stop at the end of the log instead of waiting for more.
      if (highWatermark !== null && offset >= BigInt(highWatermark)) break
    }
  } finally {
    await cluster.disconnect()
  }
  return { records: records.slice(0, req.count), highWatermark }
}

async function consumeGroup(req) {
  // kafkajs's public consumer: joins req.groupId, subscribes from the beginning, commits.
  const kafka = makeKafka(req)
  const consumer = kafka.consumer({
    groupId: req.groupId,
    sessionTimeout: 10000,
    heartbeatInterval: 1000,
    maxWaitTimeInMs: 200,
    retry: { retries: 3 },
  })
  const records = []
  await consumer.connect()
  try {
    await consumer.subscribe({ topics: [req.topic], fromBeginning: true })
    await new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`only ${records.length} of ${req.count} records in time`)),
        req.timeoutMs || 20000
      )
      consumer.on(consumer.events.CRASH, (e) => {
        clearTimeout(timer)
        reject(e.payload.error)
      })
      consumer
        .run({
          autoCommit: true,
          eachMessage: async ({ partition, message }) => {
            records.push({
              partition,
              offset: Number(message.offset),
              timestamp: Number(message.timestamp),
              key: b64(message.key),
              value: b64(message.value),
              headers: decodeHeaders(message.headers),
            })
            if (records.length >= req.count) {
              clearTimeout(timer)
              resolve()
            }
          },
        })
        .catch(reject)
    })
    // What the group committed, read back through the admin API.
    const admin = kafka.admin()
    await admin.connect()
    try {
      await consumer.commitOffsets([]) // no-op flush; autoCommit commits on stop as well
      await consumer.stop()
      const [committed] = await admin.fetchOffsets({ groupId: req.groupId, topics: [req.topic] })
      return {
        records,
        committed: committed.partitions.map((p) => ({ partition: p.partition, offset: Number(p.offset) })),
      }
    } finally {
      await admin.disconnect()
    }
  } finally {
    await consumer.disconnect()
  }
}

async function withAdmin(req, fn) {
  const admin = makeKafka(req).admin()
  await admin.connect()
  try {
    return await fn(admin)
  } finally {
    await admin.disconnect()
  }
}

const ops = {
  produce,
  consume,
  'consume-group': consumeGroup,
  'create-topics': (req) =>
    withAdmin(req, async (admin) => ({
      created: await admin.createTopics({
        topics: req.topics.map((t) => ({
          topic: t.topic,
          numPartitions: t.numPartitions,
          replicationFactor: t.replicationFactor ?? 1,
          configEntries: Object.entries(t.configs || {}).map(([name, value]) => ({ name, value })),
        })),
        timeout: 10000,
        waitForLeaders: true,
      }),
    })),
  'delete-topics': (req) =>
    withAdmin(req, async (admin) => {
      await admin.deleteTopics({ topics: req.topics, timeout: 10000 })
      return { deleted: req.topics }
    }),
  'list-topics': (req) =>
    withAdmin(req, async (admin) => {
      const names = await admin.listTopics()
      const meta = await admin.fetchTopicMetadata({ topics: names })
      return {
        topics: Object.fromEntries(meta.topics.map((t) => [t.name, t.partitions.length])),
      }
    }),
  offsets: (req) =>
    withAdmin(req, async (admin) => ({
      offsets: (await admin.fetchTopicOffsets(req.topic)).map((o) => ({
        partition: o.partition,
        low: Number(o.low),
        high: Number(o.high),
      })),
    })),
  'offsets-by-time': (req) =>
    withAdmin(req, async (admin) => ({
      offsets: (await admin.fetchTopicOffsetsByTimestamp(req.topic, req.timestamp)).map((o) => ({
        partition: o.partition,
        offset: Number(o.offset),
      })),
    })),
  'api-versions': async (req) => {
    const cluster = privateCluster(makeKafka(req))
    await cluster.connect()
    try {
      const broker = await cluster.findBroker({ nodeId: String(cluster.getNodeIds()[0]) })
      return { versions: broker.versions }
    } finally {
      await cluster.disconnect()
    }
  },
}

async function main() {
  const op = process.argv[2]
  if (!ops[op]) {
    process.stderr.write(`unknown op ${op}; one of ${Object.keys(ops).join(', ')}\n`)
    process.exit(2)
  }
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  const req = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  const reply = await ops[op](req)
  // Exit only once the reply is flushed: stdout is a pipe, and process.exit() would cut a
  // large reply short.
  await new Promise((resolve) => process.stdout.write(JSON.stringify(reply) + '\n', resolve))
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`kafkajs ${process.argv[2]} failed: ${err.name}: ${err.message}\n`)
    // Retries exhausted (cause) and per-topic admin failures (errors) wrap the protocol error.
    const root = err.cause || (Array.isArray(err.errors) && err.errors[0]) || err
    if (root.type) process.stderr.write(`  type=${root.type} code=${root.code}\n`)
    process.exit(1)
  }
)
