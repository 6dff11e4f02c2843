package dev.weir.tests.clients;

import static dev.weir.tests.clients.Kit.check;
import static dev.weir.tests.clients.Kit.checkEq;
import static dev.weir.tests.clients.Kit.get;
import static dev.weir.tests.clients.Kit.log;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.GroupType;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.utils.Utils;

/**
 * Produce, consume in a group, commit, and resume after a broker restart.
 *
 * <pre>
 * GroupFlow BOOTSTRAP classic|consumer first  TOPIC GROUP BASE_TIMESTAMP
 * GroupFlow BOOTSTRAP classic|consumer resume TOPIC GROUP BASE_TIMESTAMP
 * </pre>
 *
 * {@code first} creates TOPIC (3 partitions) with Admin.createTopics,
 * produces records 0..59 with a default producer (idempotent, acks=all),
 * checking each acknowledgement's partition (the client's murmur2 of the
 * key) and offset, reads them all back in GROUP with the given group
 * protocol, checks them exactly and commits. {@code resume} (after a broker
 * restart) checks the committed offsets survived, produces records 60..104,
 * reads them with a new consumer in the same group (exactly those: nothing
 * re-read, nothing missing) and commits; then two consumers join the group,
 * split the partitions between them, and read records 105..134 each from
 * its own partitions only.
 *
 * Record i is fully determined by i: key, value, timestamp (BASE_TIMESTAMP
 * + i; the same recent time for every phase, as Kafka's time-based
 * retention deletes records a week old and refuses records an hour ahead),
 * headers (with a repeated key and a null value), partition and offset, so
 * each phase knows exactly what the others wrote.
 */
public final class GroupFlow {
    static final int PARTITIONS = 3;
    static final int FIRST = 60, SECOND = 45, SHARED = 30;

    public static void main(String[] args) {
        String bootstrap = args[0], protocol = args[1], phase = args[2], topic = args[3], group = args[4];
        long baseTimestamp = Long.parseLong(args[5]);
        Kit.run("GroupFlow " + protocol + " " + phase, () -> {
            try (Admin admin = Kit.admin(bootstrap)) {
                GroupFlow flow = new GroupFlow(bootstrap, protocol, topic, group, baseTimestamp, admin);
                switch (phase) {
                    case "first" -> flow.first();
                    case "resume" -> flow.resume();
                    default -> throw new IllegalArgumentException("phase " + phase);
                }
            }
        });
    }

    final String bootstrap, protocol, topic, group;
    final long baseTimestamp;
    final Admin admin;

    GroupFlow(String bootstrap, String protocol, String topic, String group, long baseTimestamp, Admin admin) {
        this.bootstrap = bootstrap;
        this.protocol = protocol;
        this.topic = topic;
        this.group = group;
        this.baseTimestamp = baseTimestamp;
        this.admin = admin;
    }

    void first() {
        Kit.createTopic(admin, topic, PARTITIONS);
        produce(0, FIRST);
        try (KafkaConsumer<String, String> consumer = consumer()) {
            consumer.subscribe(List.of(topic));
            Kit.checkRecords(expected(0, FIRST), Kit.consume(consumer, FIRST, 5, "first read"), "first read");
            awaitGroup(Map.of(consumer.groupMetadata().memberId(), consumer.assignment()));
            commitAndCheck(consumer, FIRST);
        }
    }

    void resume() {
        checkEq(offsetsAfter(FIRST), committedByAdmin(), "committed offsets after the restart");
        produce(FIRST, FIRST + SECOND);
        try (KafkaConsumer<String, String> consumer = consumer()) {
            consumer.subscribe(List.of(topic));
            Kit.checkRecords(expected(FIRST, FIRST + SECOND), Kit.consume(consumer, SECOND, 5, "resumed read"),
                    "resumed read");
            commitAndCheck(consumer, FIRST + SECOND);
        }
        shared(FIRST + SECOND, FIRST + SECOND + SHARED);
    }

    /**
     * Two members split the partitions; only then are records [from, to)
     * produced, so each is read once, by the member owning its partition.
     */
    void shared(int from, int to) {
        try (KafkaConsumer<String, String> a = consumer(); KafkaConsumer<String, String> b = consumer()) {
            a.subscribe(List.of(topic));
            b.subscribe(List.of(topic));
            long deadline = System.nanoTime() + Kit.TIMEOUT.toNanos();
            while (!split(a.assignment(), b.assignment())) {
                check(System.nanoTime() < deadline,
                        "two members did not split the partitions: " + a.assignment() + " / " + b.assignment());
                check(a.poll(Kit.POLL).isEmpty() && b.poll(Kit.POLL).isEmpty(), "records read before any was produced");
            }
            log("shared: partitions split %s / %s", a.assignment(), b.assignment());
            awaitGroup(Map.of(a.groupMetadata().memberId(), a.assignment(),
                    b.groupMetadata().memberId(), b.assignment()));
            produce(from, to);
            List<Kit.Rec> readByA = new ArrayList<>(), readByB = new ArrayList<>();
            deadline = System.nanoTime() + Kit.TIMEOUT.toNanos();
            while (readByA.size() + readByB.size() < to - from) {
                check(System.nanoTime() < deadline, "shared read: " + (readByA.size() + readByB.size()) + " of "
                        + (to - from) + " records");
                a.poll(Kit.POLL).forEach(record -> readByA.add(Kit.Rec.of(record)));
                b.poll(Kit.POLL).forEach(record -> readByB.add(Kit.Rec.of(record)));
            }
            readByA.forEach(r -> check(a.assignment().contains(r.topicPartition()), "A read another's " + r));
            readByB.forEach(r -> check(b.assignment().contains(r.topicPartition()), "B read another's " + r));
            List<Kit.Rec> all = new ArrayList<>(readByA);
            all.addAll(readByB);
            Kit.checkRecords(expected(from, to), all, "shared read");
            a.commitSync();
            b.commitSync();
        }
        checkEq(offsetsAfter(to), committedByAdmin(), "committed offsets after the shared read");
    }

    static boolean split(Set<TopicPartition> a, Set<TopicPartition> b) {
        Set<TopicPartition> union = new HashSet<>(a);
        union.addAll(b);
        return !a.isEmpty() && !b.isEmpty() && union.size() == a.size() + b.size() && union.size() == PARTITIONS;
    }

    /**
     * Waits (bounded) until the group's description shows it stable with
     * exactly these members and assignments, of the expected group type.
     */
    void awaitGroup(Map<String, Set<TopicPartition>> members) {
        GroupType type = protocol.equals("consumer") ? GroupType.CONSUMER : GroupType.CLASSIC;
        long deadline = System.nanoTime() + Kit.TIMEOUT.toNanos();
        while (true) {
            ConsumerGroupDescription description = get(admin.describeConsumerGroups(List.of(group)).describedGroups()
                    .get(group));
            Map<String, Set<TopicPartition>> described = new HashMap<>();
            for (MemberDescription member : description.members()) {
                described.put(member.consumerId(), member.assignment().topicPartitions());
            }
            if (description.groupState() == GroupState.STABLE && described.equals(members)) {
                checkEq(type, description.type(), "group type");
                checkEq(false, description.isSimpleConsumerGroup(), "simple consumer group");
                log("group %s: %s, %s, members %s", group, description.type(), description.groupState(), described);
                return;
            }
            check(System.nanoTime() < deadline, "group never described as stable with members " + members
                    + "; last description " + description);
            sleep(200);
        }
    }

    void commitAndCheck(KafkaConsumer<String, String> consumer, int produced) {
        consumer.commitSync();
        Map<TopicPartition, Long> committed = Kit.partitionMap();
        consumer.committed(partitions()).forEach((tp, offset) -> committed.put(tp, offset.offset()));
        checkEq(offsetsAfter(produced), committed, "offsets the consumer sees committed");
    }

    Map<TopicPartition, Long> committedByAdmin() {
        Map<TopicPartition, Long> committed = Kit.partitionMap();
        get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata())
                .forEach((tp, offset) -> committed.put(tp, offset.offset()));
        return committed;
    }

    KafkaConsumer<String, String> consumer() {
        return Kit.consumer(bootstrap, group, protocol);
    }

    /** Produces records [from, to), checking each acknowledgement. */
    void produce(int from, int to) {
        List<Kit.Rec> expected = expected(0, to);
        try (KafkaProducer<String, String> producer = Kit.producer(bootstrap)) {
            for (int i = from; i < to; i++) {
                Kit.Rec record = expected.get(i);
                RecordHeaders headers = new RecordHeaders();
                headers.add("index", bytes(Integer.toString(i)));
                headers.add("trace", bytes("a"));
                headers.add("trace", bytes("b"));
                headers.add("nullable", null);
                RecordMetadata metadata = Kit.send(producer,
                        new ProducerRecord<>(topic, null, record.timestamp(), record.key(), record.value(), headers));
                checkEq(List.of(record.partition(), record.offset(), record.timestamp()),
                        List.of(metadata.partition(), metadata.offset(), metadata.timestamp()),
                        "acknowledgement of record " + i + " (partition, offset, timestamp)");
            }
        }
        log("produced records %d..%d", from, to - 1);
    }

    /** Records [from, to) as they must be read back. */
    List<Kit.Rec> expected(int from, int to) {
        List<Kit.Rec> records = new ArrayList<>();
        int[] nextOffset = new int[PARTITIONS];
        for (int i = 0; i < to; i++) {
            String key = String.format("key-%03d", i);
            int partition = Utils.toPositive(Utils.murmur2(bytes(key))) % PARTITIONS;
            long offset = nextOffset[partition]++;
            if (i < from) continue;
            records.add(new Kit.Rec(topic, partition, offset, baseTimestamp + i, key, String.format("value-%03d", i),
                    List.of("index=" + i, "trace=a", "trace=b", "nullable")));
        }
        return records;
    }

    /** Each partition's end offset once records [0, produced) are written. */
    Map<TopicPartition, Long> offsetsAfter(int produced) {
        Map<TopicPartition, Long> offsets = Kit.partitionMap();
        for (TopicPartition tp : partitions()) offsets.put(tp, 0L);
        for (Kit.Rec record : expected(0, produced)) offsets.merge(record.topicPartition(), 1L, Long::sum);
        return offsets;
    }

    Set<TopicPartition> partitions() {
        Set<TopicPartition> partitions = new HashSet<>();
        for (int p = 0; p < PARTITIONS; p++) partitions.add(new TopicPartition(topic, p));
        return partitions;
    }

    static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            throw new RuntimeException(e);
        }
    }
}
