'use strict'
// Helpers shared by the kafkajs scenarios (tests/clients_kafkajs.rs runs
// them): a kafkajs client for the broker under test, the deterministic
// records the scenarios produce (so any phase can recompute exactly what a
// partition must hold), a bounded consumer-group read that checks every
// record as it arrives, and small assertion helpers.
//
// Logging: kafkajs' own log lines and the scenario's progress go to stderr
// (stdout is kept for the final result line). KAFKAJS_LOG_LEVEL=DEBUG (read
// by kafkajs itself) shows every request with its API key and version.

const assert = require('node:assert/strict')
const { Kafka, Partitioners, logLevel } = require('kafkajs')

/** Upper bound for one consumer group read (joins wait for the rebalance). */
const CONSUME_TIMEOUT_MS = 120000

function log(message) {
  process.stderr.write(`${new Date().toISOString()} [scenario] ${message}\n`)
}

/** kafkajs log lines as JSON on stderr, never stdout. */
const stderrLogCreator = () => ({ namespace, label, log: entry }) => {
  const { timestamp, message, ...extra } = entry
  process.stderr.write(`${timestamp} [kafkajs ${label}] ${namespace}: ${message} ${JSON.stringify(extra)}\n`)
}

/** A kafkajs client of the broker at `bootstrap` (host:port). */
function client(bootstrap, clientId) {
  return new Kafka({
    clientId,
    brokers: [bootstrap],
    logLevel: logLevel.WARN,
    logCreator: stderrLogCreator,
    // The machine running the tests is shared and noisy: generous bounds.
    connectionTimeout: 10000,
    requestTimeout: 60000,
    retry: { initialRetryTime: 200, retries: 8, maxRetryTime: 5000 },
  })
}

/** A producer that only ever writes to the partitions the records name. */
function producer(kafka, options = {}) {
  return kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, ...options })
}

/**
 * The record number `index` of `partition` of `topic`: keyed, with headers
 * (one of them repeated) and a CreateTime of `t0 + index` seconds. Every
 * fifth record has a null value (a tombstone), so nulls survive too.
 */
function record(topic, partition, index, t0) {
  return {
    partition,
    key: `key-${partition}-${index}`,
    value: index % 5 === 4 ? null : `value ${topic}/${partition}/${index} ${'#'.repeat((index * 7) % 40)}`,
    headers: { 'record-id': `${partition}:${index}`, repeated: ['first', `second-${index}`] },
    timestamp: String(t0 + index * 1000),
  }
}

/** Records `from`..`to` (exclusive) of one partition. */
function records(topic, partition, from, to, t0) {
  const out = []
  for (let index = from; index < to; index++) out.push(record(topic, partition, index, t0))
  return out
}

/** A produced record as a consumer must see it at `offset` (strings, nulls kept). */
function expectedView(sent, offset) {
  return {
    offset: String(offset),
    key: sent.key,
    value: sent.value,
    headers: sent.headers,
    timestamp: sent.timestamp,
  }
}

function bufferToString(buffer) {
  return buffer == null ? null : buffer.toString('utf8')
}

/** What kafkajs delivered, in the same shape as `expectedView`. */
function consumedView(message) {
  const headers = {}
  for (const [name, value] of Object.entries(message.headers || {})) {
    headers[name] = Array.isArray(value) ? value.map(bufferToString) : bufferToString(value)
  }
  return {
    offset: message.offset,
    key: bufferToString(message.key),
    value: bufferToString(message.value),
    headers,
    timestamp: message.timestamp,
  }
}

/**
 * Joins `groupId`, subscribed to `topic`, and reads until every partition
 * of `expected` (partition -> array of expectedView, in offset order) got
 * exactly its records. Each record is checked when it arrives: it must be
 * the next expected one of its partition (so a record missing, repeated,
 * out of order or from elsewhere fails at once). Then `whileRunning(consumer)`
 * runs, still in the group, and the consumer disconnects (leaving the
 * group). Bounded by CONSUME_TIMEOUT_MS.
 *
 * options.mode: 'eachMessage' (default) or 'eachBatch'; options.run and
 * options.consumer are passed to consumer.run() and kafka.consumer().
 */
async function consumeExactly(kafka, { groupId, topic, expected, fromBeginning = true, mode = 'eachMessage', run = {}, consumer: consumerOptions = {}, whileRunning = async () => {} }) {
  const consumer = kafka.consumer({ groupId, ...consumerOptions })
  const received = new Map([...expected.keys()].map(partition => [partition, []]))
  const total = [...expected.values()].reduce((sum, list) => sum + list.length, 0)
  let count = 0
  let settle
  const done = new Promise((resolve, reject) => {
    settle = { resolve, reject }
  })
  done.catch(() => {}) // handled by the race below, even if it fails early
  if (total === 0) settle.resolve()

  const accept = (partition, message) => {
    const list = received.get(partition)
    if (list === undefined) {
      throw new Error(`${groupId}: record from unexpected partition ${topic}/${partition} at offset ${message.offset}`)
    }
    const wanted = expected.get(partition)
    const got = consumedView(message)
    if (list.length >= wanted.length) {
      throw new Error(`${groupId}: ${topic}/${partition}: record beyond the expected ${wanted.length}: ${JSON.stringify(got)}`)
    }
    assert.deepStrictEqual(got, wanted[list.length], `${groupId}: ${topic}/${partition}: record #${list.length} read`)
    list.push(got)
    count += 1
    if (count === total) settle.resolve()
  }
  // A wrong record fails the scenario (instead of kafkajs retrying the batch).
  const guarded = fn => async payload => {
    try {
      await fn(payload)
    } catch (error) {
      settle.reject(error)
    }
  }

  const runOptions =
    mode === 'eachBatch'
      ? {
          eachBatch: guarded(async ({ batch, resolveOffset, heartbeat }) => {
            for (const message of batch.messages) {
              accept(batch.partition, message)
              resolveOffset(message.offset)
            }
            await heartbeat()
          }),
        }
      : { eachMessage: guarded(async ({ partition, message }) => accept(partition, message)) }

  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => {
      const counts = [...expected.keys()].map(p => `${p}: ${received.get(p).length}/${expected.get(p).length}`)
      reject(new Error(`${groupId}: read (received/expected) ${counts.join(', ')} of ${topic} in ${CONSUME_TIMEOUT_MS} ms`))
    }, CONSUME_TIMEOUT_MS)
  })
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    // kafkajs restarts a consumer that ran out of retries on a retriable
    // error (e.g. NOT_COORDINATOR from a broker still loading its groups).
    if (payload.restart) log(`${groupId}: consumer restarts after: ${payload.error}`)
    else settle.reject(new Error(`${groupId}: consumer crashed: ${payload.error}`))
  })

  try {
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning })
    await consumer.run({ ...run, ...runOptions })
    await Promise.race([done, timeout])
    await whileRunning(consumer)
  } finally {
    clearTimeout(timer)
    await consumer.disconnect()
  }
  log(`${groupId}: read exactly ${total} records of ${topic} (${mode})`)
  return received
}

/** expected map for consumeExactly: partition -> records from..to as read at offsets from.. */
function expectRange(topic, ranges, t0) {
  return new Map(
    ranges.map(([partition, from, to]) => [partition, records(topic, partition, from, to, t0).map((sent, i) => expectedView(sent, from + i))])
  )
}

/**
 * `fn()`, tried again (up to 20 times, 500 ms apart) while it fails with an
 * error kafkajs marks retriable. For the admin calls kafkajs does not retry
 * itself, such as fetchOffsets or fetchTopicOffsets, which a broker that just
 * started may answer with NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS or
 * NOT_LEADER_OR_FOLLOWER (Kafka does, while it takes its partitions back).
 */
async function retrying(what, fn) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn()
    } catch (error) {
      if (!error.retriable || attempt === 20) throw error
      log(`${what}: ${error.message} (attempt ${attempt}), trying again`)
      await new Promise(resolve => setTimeout(resolve, 500))
    }
  }
}

/** admin.fetchOffsets of one group and topic, retried (see `retrying`). */
function fetchOffsets(admin, groupId, topic, options = {}) {
  return retrying(`fetchOffsets(${groupId})`, () => admin.fetchOffsets({ groupId, topics: [topic], ...options }))
}

/** admin.fetchTopicOffsets, by partition, retried (kafkajs gives up at once on NOT_LEADER_OR_FOLLOWER). */
async function topicOffsets(admin, topic) {
  return sortByPartition(await retrying(`fetchTopicOffsets(${topic})`, () => admin.fetchTopicOffsets(topic)))
}

/** admin.fetchTopicOffsetsByTimestamp, by partition, retried like topicOffsets. */
async function topicOffsetsByTimestamp(admin, topic, timestamp) {
  return sortByPartition(await retrying(`fetchTopicOffsetsByTimestamp(${topic})`, () => admin.fetchTopicOffsetsByTimestamp(topic, timestamp)))
}

/** fetchOffsets' answer reduced to { partition: offset } for one topic. */
function offsetsByPartition(fetched, topic) {
  const entry = fetched.find(t => t.topic === topic)
  assert.ok(entry, `fetchOffsets has no entry for ${topic}: ${JSON.stringify(fetched)}`)
  return Object.fromEntries(entry.partitions.map(p => [p.partition, p.offset]))
}

function sortByPartition(list) {
  return [...list].sort((a, b) => a.partition - b.partition)
}

/** Awaits `promise` and returns the error it rejects with (fails if it resolves). */
async function rejection(promise, what) {
  try {
    const value = await promise
    assert.fail(`${what}: expected an error, got ${JSON.stringify(value)}`)
  } catch (error) {
    if (error instanceof assert.AssertionError) throw error
    return error
  }
}

/** Runs `main` and exits 0 with "ok" on stdout, or 1 with the error on stderr. */
function runScenario(main) {
  main()
    .then(() => {
      process.stdout.write('ok\n')
      process.exit(0)
    })
    .catch(error => {
      process.stderr.write(`SCENARIO FAILED: ${error && error.stack ? error.stack : error}\n`)
      if (error && error.errors) process.stderr.write(`caused by: ${JSON.stringify(error.errors)}\n`)
      process.exit(1)
    })
}

module.exports = {
  assert,
  client,
  consumeExactly,
  consumedView,
  expectRange,
  expectedView,
  fetchOffsets,
  log,
  offsetsByPartition,
  producer,
  record,
  records,
  rejection,
  retrying,
  runScenario,
  sortByPartition,
  topicOffsets,
  topicOffsetsByTimestamp,
}
