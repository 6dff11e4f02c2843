'use strict'
// kafkajs scenario: topics, producers, consumer groups, committed offsets
// and the admin API, in five phases run by tests/clients_kafkajs.rs with a
// broker restart between the second and the third:
//
//   node groups_offsets_admin.js produce-consume BOOTSTRAP TOPIC T0
//   node groups_offsets_admin.js two-members     BOOTSTRAP TOPIC T0
//   node groups_offsets_admin.js resume          BOOTSTRAP TOPIC T0
//   node groups_offsets_admin.js admin           BOOTSTRAP TOPIC T0
//   node groups_offsets_admin.js by-timestamp    BOOTSTRAP TOPIC T0
//
// TOPIC is fresh for the run; T0 (ms) is the CreateTime of record 0 of each
// partition (record i has T0 + i s, see lib.js). Two groups read TOPIC:
// TOPIC-each-message (eachMessage, autoCommit) and TOPIC-each-batch
// (eachBatch, manual commitOffsets before the restart); two-members uses a
// topic and a group of its own (TOPIC-shared, TOPIC-shared-group).
//
// Every partition of TOPIC holds records 0..9 after produce-consume (0..4
// from a plain producer, 5..9 from an idempotent producer, gzip) and 0..13
// after resume (10..13 from a new idempotent producer).

const { AssignerProtocol, CompressionTypes } = require('kafkajs')
const {
  assert,
  client,
  consumeExactly,
  consumedView,
  expectRange,
  fetchOffsets,
  log,
  offsetsByPartition,
  producer,
  records,
  rejection,
  runScenario,
  sortByPartition,
  topicOffsets,
  topicOffsetsByTimestamp,
} = require('./lib')

const PARTITIONS = [0, 1, 2]
const FIRST_PHASE_RECORDS = 10
const ALL_RECORDS = 14
/** Offsets the eachBatch group commits by hand before the restart, by partition. */
const MANUAL_COMMITS = { 0: '3', 1: '4', 2: '5' }

const [phase, bootstrap, topic, t0Arg] = process.argv.slice(2)
const t0 = Number(t0Arg)
const eachMessageGroup = `${topic}-each-message`
const eachBatchGroup = `${topic}-each-batch`
const kafka = client(bootstrap, `weir-kafkajs-${phase}`)

/** Sends records from..to of every partition in one request; checks the acknowledgements. */
async function produceRange(sender, from, to, options = {}) {
  const messages = PARTITIONS.flatMap(partition => records(topic, partition, from, to, t0))
  const acks = await sender.send({ topic, messages, acks: -1, ...options })
  assert.deepStrictEqual(
    sortByPartition(acks).map(({ topicName, partition, errorCode, baseOffset }) => ({ topicName, partition, errorCode, baseOffset })),
    PARTITIONS.map(partition => ({ topicName: topic, partition, errorCode: 0, baseOffset: String(from) })),
    `acknowledgements of records ${from}..${to}`
  )
  log(`produced records ${from}..${to} of every partition`)
}

/** Records fromByPartition[p]..to of every partition p, read at their offsets. */
function expectFrom(fromByPartition, to) {
  return expectRange(topic, PARTITIONS.map(p => [p, Number(fromByPartition[p]), to]), t0)
}

/** { partition: String(value) } for every partition (offsets as kafkajs gives them). */
function everyPartition(value) {
  return Object.fromEntries(PARTITIONS.map(p => [p, String(value)]))
}

async function fetchGroupOffsets(admin, groupId, groupTopic = topic) {
  return offsetsByPartition(await fetchOffsets(admin, groupId, groupTopic), groupTopic)
}

async function produceConsume(admin) {
  // Topic creation, and Kafka's answer for a topic that exists already
  // (TOPIC_ALREADY_EXISTS, which kafkajs reports as `false`), whatever the
  // partition count asked.
  const spec = { topic, numPartitions: PARTITIONS.length, replicationFactor: 1 }
  assert.equal(await admin.createTopics({ topics: [spec] }), true, 'createTopics of a new topic')
  assert.equal(await admin.createTopics({ topics: [spec] }), false, 'createTopics of an existing topic')
  assert.equal(await admin.createTopics({ topics: [{ ...spec, numPartitions: 5 }] }), false, 'createTopics of an existing topic, other partition count')
  // A replication factor a single broker cannot give is refused.
  const invalid = await rejection(
    admin.createTopics({ topics: [{ topic: `${topic}-rf2`, numPartitions: 1, replicationFactor: 2 }] }),
    'createTopics with replication factor 2 on one broker'
  )
  assert.deepStrictEqual((invalid.errors || []).map(e => [e.topic, e.type]), [[`${topic}-rf2`, 'INVALID_REPLICATION_FACTOR']], `createTopics error: ${invalid}`)

  const cluster = await admin.describeCluster()
  assert.equal(cluster.brokers.length, 1, `describeCluster: ${JSON.stringify(cluster)}`)
  const [broker] = cluster.brokers
  assert.equal(`${broker.host}:${broker.port}`, bootstrap, 'the broker advertises the address the client bootstrapped from')
  const metadata = await admin.fetchTopicMetadata({ topics: [topic] })
  assert.deepStrictEqual(
    metadata.topics.map(t => ({
      name: t.name,
      partitions: sortByPartition(
        t.partitions.map(p => ({ partition: p.partitionId, errorCode: p.partitionErrorCode, leader: p.leader, replicas: p.replicas, isr: p.isr, offlineReplicas: p.offlineReplicas }))
      ),
    })),
    [
      {
        name: topic,
        partitions: PARTITIONS.map(partition => ({ partition, errorCode: 0, leader: broker.nodeId, replicas: [broker.nodeId], isr: [broker.nodeId], offlineReplicas: [] })),
      },
    ],
    'fetchTopicMetadata'
  )
  const topics = await admin.listTopics()
  assert.ok(topics.includes(topic) && !topics.includes(`${topic}-rf2`), `listTopics: ${topics}`)

  // Records 0..4 from a plain producer, 5..9 from an idempotent one (gzip,
  // two requests, so its sequence numbers continue across them).
  const plain = producer(kafka)
  await plain.connect()
  await produceRange(plain, 0, 5)
  await plain.disconnect()
  const idempotent = producer(kafka, { idempotent: true, maxInFlightRequests: 1 })
  await idempotent.connect()
  await produceRange(idempotent, 5, 8, { compression: CompressionTypes.GZIP })
  await produceRange(idempotent, 8, FIRST_PHASE_RECORDS, { compression: CompressionTypes.GZIP })
  await idempotent.disconnect()

  // eachMessage with autoCommit: everything, in order; the group is Stable
  // with this one member while it runs; the commit covers everything read.
  await consumeExactly(kafka, {
    groupId: eachMessageGroup,
    topic,
    expected: expectFrom(everyPartition(0), FIRST_PHASE_RECORDS),
    whileRunning: async () => {
      const { groups } = await admin.describeGroups([eachMessageGroup])
      assert.equal(groups.length, 1)
      const [group] = groups
      assert.deepStrictEqual(
        { groupId: group.groupId, errorCode: group.errorCode, state: group.state, protocolType: group.protocolType, protocol: group.protocol, members: group.members.length },
        { groupId: eachMessageGroup, errorCode: 0, state: 'Stable', protocolType: 'consumer', protocol: 'RoundRobinAssigner', members: 1 },
        `describeGroups of a running group: ${JSON.stringify(group)}`
      )
      assert.equal(group.members[0].clientId, 'weir-kafkajs-produce-consume')
    },
  })
  assert.deepStrictEqual(await fetchGroupOffsets(admin, eachMessageGroup), everyPartition(FIRST_PHASE_RECORDS), 'offsets autocommitted by eachMessage')

  // eachBatch without autoCommit: everything read, then a manual commit of
  // other offsets (with metadata) while still in the group.
  await consumeExactly(kafka, {
    groupId: eachBatchGroup,
    topic,
    mode: 'eachBatch',
    run: { autoCommit: false },
    expected: expectFrom(everyPartition(0), FIRST_PHASE_RECORDS),
    whileRunning: async consumer => {
      await consumer.commitOffsets(PARTITIONS.map(partition => ({ topic, partition, offset: MANUAL_COMMITS[partition], metadata: `manual-${partition}` })))
    },
  })
  const fetched = await fetchOffsets(admin, eachBatchGroup, topic)
  assert.deepStrictEqual(
    sortByPartition(fetched[0].partitions),
    PARTITIONS.map(partition => ({ partition, offset: MANUAL_COMMITS[partition], metadata: `manual-${partition}` })),
    'offsets committed by hand (autoCommit off: nothing else committed)'
  )

  // Both groups exist, are empty now, and are listed as consumer groups.
  const { groups: described } = await admin.describeGroups([eachMessageGroup, eachBatchGroup])
  assert.deepStrictEqual(
    described.map(g => ({ groupId: g.groupId, errorCode: g.errorCode, state: g.state, protocolType: g.protocolType, members: g.members })).sort((a, b) => a.groupId.localeCompare(b.groupId)),
    [eachBatchGroup, eachMessageGroup].map(groupId => ({ groupId, errorCode: 0, state: 'Empty', protocolType: 'consumer', members: [] })),
    'describeGroups of groups whose consumers left'
  )
  const { groups: listed } = await admin.listGroups()
  for (const groupId of [eachMessageGroup, eachBatchGroup]) {
    assert.deepStrictEqual(listed.filter(g => g.groupId === groupId), [{ groupId, protocolType: 'consumer' }], `listGroups: ${JSON.stringify(listed)}`)
  }
}

/**
 * Two members of one group share a topic of its own (TOPIC-shared, empty
 * until both are in the group, so no record is read before the partitions
 * are split): the broker's join/sync round gives each a disjoint part and
 * describeGroups shows the same split; each record is read once by one of
 * them. When one member leaves, the other gets every partition and reads
 * exactly the records written after that, starting at the offsets the
 * leaver committed.
 */
async function twoMembers(admin) {
  const shared = `${topic}-shared`
  const groupId = `${shared}-group`
  assert.equal(await admin.createTopics({ topics: [{ topic: shared, numPartitions: PARTITIONS.length, replicationFactor: 1 }] }), true)
  const members = ['one', 'two'].map(name => ({ name, consumer: kafka.consumer({ groupId }), assignment: null, memberId: null, read: 0 }))
  // Next record index expected per partition, whichever member reads it:
  // a record repeated, skipped or out of order fails at once.
  const next = Object.fromEntries(PARTITIONS.map(p => [p, 0]))
  let failure = null
  for (const member of members) {
    member.consumer.on(member.consumer.events.GROUP_JOIN, ({ payload }) => {
      member.assignment = [...(payload.memberAssignment[shared] || [])].sort((a, b) => a - b)
      member.memberId = payload.memberId
      log(`${groupId}: member ${member.name} assigned ${JSON.stringify(member.assignment)}`)
    })
    member.consumer.on(member.consumer.events.CRASH, ({ payload }) => {
      if (payload.restart) log(`${groupId}: member ${member.name} restarts after: ${payload.error}`)
      else failure = failure || new Error(`member ${member.name} crashed: ${payload.error}`)
    })
    await member.consumer.connect()
    await member.consumer.subscribe({ topics: [shared], fromBeginning: true })
    await member.consumer.run({
      eachMessage: async ({ partition, message }) => {
        try {
          const index = next[partition]
          assert.deepStrictEqual(consumedView(message), expectRange(shared, [[partition, index, index + 1]], t0).get(partition)[0], `${shared}/${partition} read by ${member.name}`)
          next[partition] = index + 1
          member.read += 1
        } catch (error) {
          failure = failure || error
        }
      },
    })
  }
  const until = async (what, condition) => {
    const deadline = Date.now() + 120000
    while (!condition()) {
      if (failure) throw failure
      assert.ok(Date.now() < deadline, `${groupId}: ${what} within 120 s (assignments ${JSON.stringify(members.map(m => m.assignment))}, next ${JSON.stringify(next)})`)
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    if (failure) throw failure
  }
  const split = () =>
    members.every(m => m.assignment && m.assignment.length > 0) &&
    JSON.stringify([...members[0].assignment, ...members[1].assignment].sort((a, b) => a - b)) === JSON.stringify(PARTITIONS)
  await until('partitions split between the two members', split)

  const { groups } = await admin.describeGroups([groupId])
  assert.equal(groups[0].state, 'Stable', `describeGroups: ${JSON.stringify(groups[0])}`)
  const described = groups[0].members
    .map(m => ({ memberId: m.memberId, partitions: [...(AssignerProtocol.MemberAssignment.decode(m.memberAssignment).assignment[shared] || [])].sort((a, b) => a - b) }))
    .sort((a, b) => a.memberId.localeCompare(b.memberId))
  assert.deepStrictEqual(
    described,
    members.map(m => ({ memberId: m.memberId, partitions: m.assignment })).sort((a, b) => a.memberId.localeCompare(b.memberId)),
    'describeGroups shows the assignment each member got'
  )

  const sharedProducer = producer(kafka)
  await sharedProducer.connect()
  const produceShared = async (from, to) => {
    const acks = await sharedProducer.send({ topic: shared, messages: PARTITIONS.flatMap(p => records(shared, p, from, to, t0)) })
    assert.deepStrictEqual(sortByPartition(acks).map(a => [a.partition, a.errorCode, a.baseOffset]), PARTITIONS.map(p => [p, 0, String(from)]))
  }
  await produceShared(0, 4)
  await until('every record read once', () => PARTITIONS.every(p => next[p] === 4))
  for (const member of members) {
    assert.equal(member.read, 4 * member.assignment.length, `member ${member.name} read exactly the records of its partitions`)
  }

  // Member two leaves; member one takes every partition over.
  const [one, two] = members
  await two.consumer.disconnect()
  await until('member one assigned every partition', () => JSON.stringify(one.assignment) === JSON.stringify(PARTITIONS))
  await produceShared(4, 8)
  await until('the records written after the rebalance read once', () => PARTITIONS.every(p => next[p] === 8))
  await sharedProducer.disconnect()
  await one.consumer.disconnect()
  assert.deepStrictEqual(await fetchGroupOffsets(admin, groupId, shared), everyPartition(8), `${groupId}: committed offsets`)
  log(`${groupId}: two members, then one, read every record once`)
}

async function resume(admin) {
  // After the restart: 4 more records per partition from a new idempotent producer.
  const idempotent = producer(kafka, { idempotent: true, maxInFlightRequests: 1 })
  await idempotent.connect()
  await produceRange(idempotent, FIRST_PHASE_RECORDS, ALL_RECORDS)
  await idempotent.disconnect()

  // Both groups resume exactly at their committed offsets. The eachBatch
  // group now autocommits, and fetches at most 256 bytes per partition
  // (less than a batch: the broker still returns the first batch whole).
  await consumeExactly(kafka, { groupId: eachMessageGroup, topic, expected: expectFrom(everyPartition(FIRST_PHASE_RECORDS), ALL_RECORDS) })
  await consumeExactly(kafka, {
    groupId: eachBatchGroup,
    topic,
    mode: 'eachBatch',
    consumer: { maxBytesPerPartition: 256 },
    expected: expectFrom(MANUAL_COMMITS, ALL_RECORDS),
  })
  for (const groupId of [eachMessageGroup, eachBatchGroup]) {
    assert.deepStrictEqual(await fetchGroupOffsets(admin, groupId), everyPartition(ALL_RECORDS), `${groupId}: offsets committed after resuming`)
  }

  // Log start and end offsets.
  assert.deepStrictEqual(
    await topicOffsets(admin, topic),
    PARTITIONS.map(partition => ({ partition, offset: String(ALL_RECORDS), high: String(ALL_RECORDS), low: '0' })),
    'fetchTopicOffsets'
  )
}

/**
 * fetchTopicOffsetsByTimestamp (ListOffsets by timestamp): the first offset
 * whose record has a CreateTime at or after the timestamp; record i of each
 * partition has T0 + i s. Records 5..9 are inside gzip batches: the answer
 * is the record's own offset, not its batch's first offset.
 */
async function offsetsByTimestamp(admin) {
  const byTimestamp = timestamp => topicOffsetsByTimestamp(admin, topic, timestamp)
  for (const [timestamp, offset] of [
    [t0 - 60000, 0], // before everything: the first record
    [t0, 0],
    [t0 + 2000, 2], // exactly record 2 (inside the plain producer's batch)
    [t0 + 6000, 6], // exactly record 6 (second of the gzip batch 5..7)
    [t0 + 7000, 7], // exactly record 7 (last of the gzip batch 5..7)
    [t0 + 7500, 8], // between records: the next one
    [t0 + 9000, 9], // second of the gzip batch 8..9
    [t0 + 12000, 12], // written after the restart
    [t0 + 13000, 13],
    [t0 + 13001, ALL_RECORDS], // after everything: kafkajs answers with the end offset
  ]) {
    assert.deepStrictEqual(await byTimestamp(timestamp), PARTITIONS.map(partition => ({ partition, offset: String(offset) })), `fetchTopicOffsetsByTimestamp(T0 + ${timestamp - t0} ms)`)
  }
}

async function adminPhase(admin) {
  // resetOffsets to the earliest offset: kafkajs commits the special
  // offset -2, which the broker stores as given; fetchOffsets({
  // resolveOffsets }) turns it into offset 0 (and commits that); the group
  // reads everything again.
  await admin.resetOffsets({ groupId: eachMessageGroup, topic, earliest: true })
  assert.deepStrictEqual(await fetchGroupOffsets(admin, eachMessageGroup), everyPartition(-2), 'offsets after resetOffsets(earliest)')
  const resolved = await fetchOffsets(admin, eachMessageGroup, topic, { resolveOffsets: true })
  assert.deepStrictEqual(offsetsByPartition(resolved, topic), everyPartition(0), 'fetchOffsets resolving the reset offsets')
  assert.deepStrictEqual(await fetchGroupOffsets(admin, eachMessageGroup), everyPartition(0), 'offsets after resetOffsets + resolveOffsets')
  await consumeExactly(kafka, { groupId: eachMessageGroup, topic, expected: expectFrom(everyPartition(0), ALL_RECORDS) })

  // setOffsets to chosen offsets; the group reads exactly from there.
  const chosen = { 0: '12', 1: '0', 2: '13' }
  await admin.setOffsets({ groupId: eachBatchGroup, topic, partitions: PARTITIONS.map(partition => ({ partition, offset: chosen[partition] })) })
  assert.deepStrictEqual(await fetchGroupOffsets(admin, eachBatchGroup), chosen, 'offsets after setOffsets')
  await consumeExactly(kafka, { groupId: eachBatchGroup, topic, mode: 'eachBatch', expected: expectFrom(chosen, ALL_RECORDS) })

  // deleteGroups: the three empty groups go; they are gone from
  // listGroups, and a group that never existed is reported as such.
  const sharedGroup = `${topic}-shared-group`
  const deleted = await admin.deleteGroups([eachMessageGroup, eachBatchGroup, sharedGroup])
  assert.deepStrictEqual(
    deleted.map(({ groupId, errorCode }) => ({ groupId, errorCode })).sort((a, b) => a.groupId.localeCompare(b.groupId)),
    [eachBatchGroup, eachMessageGroup, sharedGroup].map(groupId => ({ groupId, errorCode: 0 })),
    'deleteGroups'
  )
  const { groups: listed } = await admin.listGroups()
  assert.deepStrictEqual(listed.filter(g => g.groupId.startsWith(topic)), [], 'listGroups after deleteGroups')
  const { groups: described } = await admin.describeGroups([eachMessageGroup])
  assert.deepStrictEqual(
    described.map(g => ({ groupId: g.groupId, state: g.state, members: g.members })),
    [{ groupId: eachMessageGroup, state: 'Dead', members: [] }],
    'describeGroups of a deleted group'
  )
  const missing = await rejection(admin.deleteGroups([`${topic}-never-existed`]), 'deleteGroups of an unknown group')
  assert.deepStrictEqual(
    (missing.groups || []).map(g => ({ groupId: g.groupId, error: g.error && g.error.type })),
    [{ groupId: `${topic}-never-existed`, error: 'GROUP_ID_NOT_FOUND' }],
    `deleteGroups of an unknown group: ${missing}`
  )

  // deleteTopics (the two members' topic): it is gone, the other stays.
  // Kafka's metadata follows its controller shortly after the answer, so
  // listTopics is asked until the topic is gone (bounded).
  await admin.deleteTopics({ topics: [`${topic}-shared`] })
  const deadline = Date.now() + 30000
  let topics = await admin.listTopics()
  while (topics.includes(`${topic}-shared`) && Date.now() < deadline) {
    await new Promise(resolve => setTimeout(resolve, 200))
    topics = await admin.listTopics()
  }
  assert.ok(!topics.includes(`${topic}-shared`) && topics.includes(topic), `listTopics 30 s after deleteTopics: ${topics}`)
}

const phases = { 'produce-consume': produceConsume, 'two-members': twoMembers, resume, admin: adminPhase, 'by-timestamp': offsetsByTimestamp }

runScenario(async () => {
  assert.ok(phases[phase] && bootstrap && topic && Number.isSafeInteger(t0), `usage: groups_offsets_admin.js ${Object.keys(phases).join('|')} BOOTSTRAP TOPIC T0`)
  const admin = kafka.admin()
  await admin.connect()
  try {
    await phases[phase](admin)
  } finally {
    await admin.disconnect()
  }
  log(`phase ${phase} done`)
})
