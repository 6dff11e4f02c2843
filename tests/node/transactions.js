'use strict'
// kafkajs scenario: transactions committed and aborted, read with
// readUncommitted=false (and, for contrast, true), in two phases run by
// tests/clients_kafkajs.rs with a broker restart in between:
//
//   node transactions.js write BOOTSTRAP TOPIC T0
//   node transactions.js read  BOOTSTRAP TOPIC T0
//
// One transactional producer (transactionalId TOPIC-txn) writes to the two
// partitions of TOPIC (records from lib.js, by index):
//
//   transaction 1, committed: p0 records 0..2, p1 records 0..1, and the
//                             offsets { p0: 3, p1: 2 } of group TOPIC-txn-offsets
//   transaction 2, aborted:   p0 records 3..4, p1 records 2..3, and the
//                             offsets { p0: 5, p1: 4 } of that group
//   transaction 3, committed: p0 record 5,     p1 record 4
//   transaction 4, committed, after the restart by a new producer with the
//                             same transactionalId: p0 record 6
//
// Each transaction ends with a control record (COMMIT or ABORT marker) in
// every partition it wrote, which takes an offset, so the records sit at:
//
//   p0: 0 1 2 [C3] 3@4 4@5 [A6] 5@7 [C8] 6@9 [C10]
//   p1: 0 1 [C2] 2@3 3@4 [A5] 4@6 [C7]

const {
  assert,
  client,
  consumeExactly,
  expectedView,
  fetchOffsets,
  log,
  offsetsByPartition,
  producer,
  record,
  runScenario,
  sortByPartition,
  topicOffsets,
} = require('./lib')

const [phase, bootstrap, topic, t0Arg] = process.argv.slice(2)
const t0 = Number(t0Arg)
const offsetsGroup = `${topic}-txn-offsets`
const kafka = client(bootstrap, `weir-kafkajs-txn-${phase}`)

/** [partition, record index, offset] of every transactional record, by transaction. */
const TRANSACTIONS = {
  committed1: [[0, 0, 0], [0, 1, 1], [0, 2, 2], [1, 0, 0], [1, 1, 1]],
  aborted2: [[0, 3, 4], [0, 4, 5], [1, 2, 3], [1, 3, 4]],
  committed3: [[0, 5, 7], [1, 4, 6]],
  committed4: [[0, 6, 9]],
}
const COMMITTED_GROUP_OFFSETS = { 0: '3', 1: '2' }
const ABORTED_GROUP_OFFSETS = { 0: '5', 1: '4' }

/** What a consumer must read: partition -> expectedView list, in offset order. */
function expected(transactionNames) {
  const byPartition = new Map([[0, []], [1, []]])
  for (const name of transactionNames) {
    for (const [partition, index, offset] of TRANSACTIONS[name]) {
      byPartition.get(partition).push(expectedView(record(topic, partition, index, t0), offset))
    }
  }
  for (const list of byPartition.values()) list.sort((a, b) => Number(a.offset) - Number(b.offset))
  return byPartition
}

/** One transaction: its records (one send), optionally group offsets, then commit or abort. */
async function transaction(txProducer, name, { commit, groupOffsets }) {
  const txn = await txProducer.transaction()
  const messages = TRANSACTIONS[name].map(([partition, index]) => record(topic, partition, index, t0))
  const acks = await txn.send({ topic, messages })
  assert.deepStrictEqual(
    sortByPartition(acks).map(({ partition, errorCode, baseOffset }) => ({ partition, errorCode, baseOffset })),
    [0, 1]
      .filter(p => TRANSACTIONS[name].some(([partition]) => partition === p))
      .map(partition => ({ partition, errorCode: 0, baseOffset: String(TRANSACTIONS[name].find(([p]) => p === partition)[2]) })),
    `${name}: acknowledgements`
  )
  if (groupOffsets) {
    await txn.sendOffsets({
      consumerGroupId: offsetsGroup,
      topics: [{ topic, partitions: Object.entries(groupOffsets).map(([partition, offset]) => ({ partition: Number(partition), offset })) }],
    })
  }
  await (commit ? txn.commit() : txn.abort())
  log(`${name}: ${commit ? 'committed' : 'aborted'}`)
}

function transactionalProducer() {
  return producer(kafka, { transactionalId: `${topic}-txn`, idempotent: true, maxInFlightRequests: 1 })
}

/** Reads TOPIC from the beginning in a new group; checks exactly what it gets. */
async function readAll(groupId, readUncommitted, transactionNames) {
  await consumeExactly(kafka, { groupId, topic, consumer: { readUncommitted }, expected: expected(transactionNames) })
}

async function write(admin) {
  assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions: 2, replicationFactor: 1 }] }), true)
  // No offsets committed for the group yet. Asked first, and retried, as
  // kafkajs does not retry a TxnOffsetCommit answered NOT_COORDINATOR by a
  // broker whose group coordinator is still loading (Kafka, just started).
  assert.deepStrictEqual(offsetsByPartition(await fetchOffsets(admin, offsetsGroup, topic), topic), { 0: '-1', 1: '-1' }, 'group offsets before any transaction')
  const txProducer = transactionalProducer()
  await txProducer.connect()
  await transaction(txProducer, 'committed1', { commit: true, groupOffsets: COMMITTED_GROUP_OFFSETS })
  await transaction(txProducer, 'aborted2', { commit: false, groupOffsets: ABORTED_GROUP_OFFSETS })
  await transaction(txProducer, 'committed3', { commit: true })
  await txProducer.disconnect()

  await readAll(`${topic}-read-committed-1`, false, ['committed1', 'committed3'])
  await readAll(`${topic}-read-uncommitted`, true, ['committed1', 'aborted2', 'committed3'])
  await checkOffsets(admin, { 0: '9', 1: '8' })
}

async function read(admin) {
  // Everything survived the restart: the committed records only, the
  // committed group offsets only.
  await checkOffsets(admin, { 0: '9', 1: '8' })
  await readAll(`${topic}-read-committed-2`, false, ['committed1', 'committed3'])
  // The transactional id carries on after the restart (a new producer
  // epoch), and its next transaction is read.
  const txProducer = transactionalProducer()
  await txProducer.connect()
  await transaction(txProducer, 'committed4', { commit: true })
  await txProducer.disconnect()
  await readAll(`${topic}-read-committed-3`, false, ['committed1', 'committed3', 'committed4'])
  await checkOffsets(admin, { 0: '11', 1: '8' })
}

/** End offsets (every transaction ended, so no open one holds them back) and the group's offsets. */
async function checkOffsets(admin, ends) {
  assert.deepStrictEqual(
    await topicOffsets(admin, topic),
    [0, 1].map(partition => ({ partition, offset: ends[partition], high: ends[partition], low: '0' })),
    'fetchTopicOffsets'
  )
  assert.deepStrictEqual(
    offsetsByPartition(await fetchOffsets(admin, offsetsGroup, topic), topic),
    COMMITTED_GROUP_OFFSETS,
    'group offsets sent in transactions: the committed ones only'
  )
}

const phases = { write, read }

runScenario(async () => {
  assert.ok(phases[phase] && bootstrap && topic && Number.isSafeInteger(t0), `usage: transactions.js ${Object.keys(phases).join('|')} BOOTSTRAP TOPIC T0`)
  const admin = kafka.admin()
  await admin.connect()
  try {
    await phases[phase](admin)
  } finally {
    await admin.disconnect()
  }
  log(`phase ${phase} done`)
})
