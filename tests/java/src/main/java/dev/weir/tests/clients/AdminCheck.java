package dev.weir.tests.clients;

import static dev.weir.tests.clients.Kit.check;
import static dev.weir.tests.clients.Kit.checkEq;
import static dev.weir.tests.clients.Kit.expectError;
import static dev.weir.tests.clients.Kit.get;
import static dev.weir.tests.clients.Kit.log;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.OptionalLong;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Supplier;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.CreateTopicsOptions;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.FinalizedVersionRange;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.ListGroupsOptions;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.ListTransactionsOptions;
import org.apache.kafka.clients.admin.ListTopicsOptions;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.admin.TopicListing;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.GroupType;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicCollection;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.GroupIdNotFoundException;
import org.apache.kafka.common.errors.GroupNotEmptyException;
import org.apache.kafka.common.errors.GroupSubscribedToTopicException;
import org.apache.kafka.common.errors.InvalidPartitionsException;
import org.apache.kafka.common.errors.InvalidReplicationFactorException;
import org.apache.kafka.common.errors.InvalidTopicException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicIdException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;

/**
 * The Admin client's calls against one fresh broker, each result checked
 * exactly: cluster, topics (create and its errors, list, describe by name
 * and id, add partitions, delete), configs, consumer groups and their
 * offsets, list offsets by spec, producers and transactions.
 *
 * <pre>AdminCheck BOOTSTRAP</pre>
 */
public final class AdminCheck {
    static final String TOPIC_A = "admin-a", TOPIC_B = "admin-b", GROUP = "admin-group", TXN_ID = "admin-txn";
    /** Record timestamps: recent (Kafka's retention deletes week-old records), in whole seconds. */
    static final long T = System.currentTimeMillis() / 1000 * 1000 - 60_000;

    public static void main(String[] args) {
        Kit.run("AdminCheck", () -> {
            try (Admin admin = Kit.admin(args[0])) {
                new AdminCheck(args[0], admin).run();
            }
        });
    }

    final String bootstrap;
    final Admin admin;
    Node node;

    AdminCheck(String bootstrap, Admin admin) {
        this.bootstrap = bootstrap;
        this.admin = admin;
    }

    void run() {
        cluster();
        Uuid idA = createTopics();
        Kit.step("describe topics", () -> describeTopics(idA));
        Kit.step("create partitions", this::createPartitions);
        Kit.step("describe configs", this::configs);
        Kit.step("consumer groups", this::groups);
        Kit.step("list offsets", this::listOffsets);
        Kit.step("describe producers", this::describeProducers);
        Kit.step("transactions", this::transactions);
        Kit.step("delete topics", () -> deleteTopics(idA));
    }

    void cluster() {
        DescribeClusterResult cluster = admin.describeCluster();
        Collection<Node> nodes = get(cluster.nodes());
        checkEq(1, nodes.size(), "number of nodes");
        node = nodes.iterator().next();
        checkEq(bootstrap, node.host() + ":" + node.port(), "node address");
        checkEq(node, get(cluster.controller()), "controller");
        String clusterId = get(cluster.clusterId());
        check(clusterId != null && !clusterId.isEmpty(), "cluster id " + clusterId);
        log("cluster %s: node %s", clusterId, node);
    }

    Uuid createTopics() {
        CreateTopicsResult created = admin.createTopics(List.of(
                new NewTopic(TOPIC_A, 3, (short) 1).configs(Map.of("segment.ms", "3600000")),
                new NewTopic(TOPIC_B, 1, (short) 1)));
        get(created.all());
        checkEq(List.of(3, 1, 1, 1),
                List.of(get(created.numPartitions(TOPIC_A)), get(created.replicationFactor(TOPIC_A)),
                        get(created.numPartitions(TOPIC_B)), get(created.replicationFactor(TOPIC_B))),
                "partitions and replication factors in the CreateTopics response");
        checkEq("3600000", get(created.config(TOPIC_A)).get("segment.ms").value(), "segment.ms in the response");
        Uuid idA = get(created.topicId(TOPIC_A));
        check(!idA.equals(Uuid.ZERO_UUID) && !idA.equals(get(created.topicId(TOPIC_B))), "distinct topic ids");

        expectError(admin.createTopics(List.of(new NewTopic(TOPIC_A, 3, (short) 1))).all(),
                TopicExistsException.class, "create an existing topic");
        expectError(admin.createTopics(List.of(new NewTopic("admin-zero", 0, (short) 1))).all(),
                InvalidPartitionsException.class, "create with 0 partitions");
        expectError(admin.createTopics(List.of(new NewTopic("admin-rf", 1, (short) 2))).all(),
                InvalidReplicationFactorException.class, "create with replication factor 2 on one broker");
        expectError(admin.createTopics(List.of(new NewTopic("bad name!", 1, (short) 1))).all(),
                InvalidTopicException.class, "create with an invalid name");
        get(admin.createTopics(List.of(new NewTopic("admin-validated", 2, (short) 1)),
                new CreateTopicsOptions().validateOnly(true)).all());

        awaitTopics(Set.of(TOPIC_A, TOPIC_B));
        return idA;
    }

    void describeTopics(Uuid idA) {
        TopicDescription a = describe(TOPIC_A, 3);
        checkEq(List.of(TOPIC_A, false, idA), List.of(a.name(), a.isInternal(), a.topicId()), "name, internal, id");
        checkEq(expectedPartitions(3), partitionsOf(a), "partitions of " + TOPIC_A);
        expectError(admin.describeTopics(List.of("admin-none")).allTopicNames(),
                UnknownTopicOrPartitionException.class, "describe an unknown topic");
        Kit.step("describe topics by id", () -> {
            TopicDescription byId = get(admin.describeTopics(TopicCollection.ofTopicIds(List.of(idA))).allTopicIds())
                    .get(idA);
            checkEq(List.of(TOPIC_A, partitionsOf(a)), List.of(byId.name(), partitionsOf(byId)), "described by id");
            expectError(admin.describeTopics(TopicCollection.ofTopicIds(List.of(Uuid.randomUuid()))).allTopicIds(),
                    UnknownTopicIdException.class, "describe an unknown topic id");
        });
    }

    /** TOPIC_A grows from 3 to 5 partitions; shrinking, keeping the count or an unknown topic are refused. */
    void createPartitions() {
        get(admin.createPartitions(Map.of(TOPIC_A, NewPartitions.increaseTo(5))).all());
        describe(TOPIC_A, 5);
        expectError(admin.createPartitions(Map.of(TOPIC_A, NewPartitions.increaseTo(2))).all(),
                InvalidPartitionsException.class, "decrease the partition count");
        expectError(admin.createPartitions(Map.of(TOPIC_A, NewPartitions.increaseTo(5))).all(),
                InvalidPartitionsException.class, "keep the partition count");
        expectError(admin.createPartitions(Map.of("admin-none", NewPartitions.increaseTo(2))).all(),
                UnknownTopicOrPartitionException.class, "add partitions to an unknown topic");
    }

    /**
     * Topic configs: value, source and type of the ones weir knows; broker
     * configs: value and type of a few both brokers have (their sources
     * differ by setup: the reference broker's server.properties sets some).
     */
    void configs() {
        ConfigResource topic = new ConfigResource(ConfigResource.Type.TOPIC, TOPIC_A);
        ConfigResource broker = new ConfigResource(ConfigResource.Type.BROKER, Integer.toString(node.id()));
        Map<ConfigResource, Config> configs = get(admin.describeConfigs(List.of(topic, broker)).all());
        Kit.step("topic configs", () -> checkEq(new TreeMap<>(Map.of(
                        "cleanup.policy", "delete DEFAULT_CONFIG LIST",
                        "max.message.bytes", "1048588 DEFAULT_CONFIG INT",
                        "message.timestamp.type", "CreateTime DEFAULT_CONFIG STRING",
                        "segment.bytes", "1073741824 DEFAULT_CONFIG INT",
                        "segment.ms", "3600000 DYNAMIC_TOPIC_CONFIG LONG")),
                entries(configs.get(topic), true), "topic configs (value, source, type)"));
        Kit.step("broker configs", () -> checkEq(new TreeMap<>(Map.of(
                        "auto.create.topics.enable", "true BOOLEAN",
                        "broker.id", node.id() + " INT",
                        "log.segment.bytes", "1073741824 INT",
                        "message.max.bytes", "1048588 INT",
                        "num.partitions", "1 INT")),
                entries(configs.get(broker), false), "broker configs (value, type)"));
        expectError(admin.describeConfigs(List.of(new ConfigResource(ConfigResource.Type.TOPIC, "admin-none"))).all(),
                UnknownTopicOrPartitionException.class, "describe configs of an unknown topic");
    }

    /** The configs of {@code config} named in the expected maps above, as "value [source] type". */
    static Map<String, String> entries(Config config, boolean withSource) {
        Set<String> names = Set.of("cleanup.policy", "max.message.bytes", "message.timestamp.type", "segment.bytes",
                "segment.ms", "auto.create.topics.enable", "broker.id", "log.segment.bytes", "message.max.bytes",
                "num.partitions");
        Map<String, String> out = new TreeMap<>();
        for (ConfigEntry e : config.entries()) {
            if (names.contains(e.name())) {
                out.put(e.name(), e.value() + (withSource ? " " + e.source() : "") + " " + e.type());
            }
        }
        return out;
    }

    /** A classic group on TOPIC_A: listed, described, its offsets listed, altered and deleted, then the group. */
    void groups() {
        TopicPartition p0 = new TopicPartition(TOPIC_A, 0), p1 = new TopicPartition(TOPIC_A, 1);
        try (KafkaProducer<String, String> producer = Kit.producer(bootstrap)) {
            for (int i = 0; i < 10; i++) Kit.send(producer, new ProducerRecord<>(TOPIC_A, i % 5, "k" + i, "v" + i));
        }
        Map<TopicPartition, Long> consumed = Kit.partitionMap();
        try (KafkaConsumer<String, String> consumer = Kit.consumer(bootstrap, GROUP, "classic")) {
            consumer.subscribe(List.of(TOPIC_A));
            Kit.consume(consumer, 10, 0, "group read").forEach(r -> consumed.merge(r.topicPartition(), 1L, Long::sum));
            consumer.commitSync();
            String member = consumer.groupMetadata().memberId();

            checkEq(List.of(listing(GroupState.STABLE)),
                    get(admin.listGroups(ListGroupsOptions.forConsumerGroups()).all()), "listGroups (consumer groups)");
            ConsumerGroupDescription group = get(admin.describeConsumerGroups(List.of(GROUP)).all()).get(GROUP);
            checkEq(List.of(GroupType.CLASSIC, GroupState.STABLE, "range", node, 1, member, consumer.assignment()),
                    List.of(group.type(), group.groupState(), group.partitionAssignor(), group.coordinator(),
                            group.members().size(), group.members().iterator().next().consumerId(),
                            group.members().iterator().next().assignment().topicPartitions()),
                    "describeConsumerGroups of the active group (type, state, assignor, coordinator, members)");
            expectError(admin.deleteConsumerGroupOffsets(GROUP, Set.of(p0)).partitionResult(p0),
                    GroupSubscribedToTopicException.class, "delete offsets of a subscribed topic");
            expectError(admin.deleteConsumerGroups(List.of(GROUP)).all(), GroupNotEmptyException.class,
                    "delete an active group");
        }
        ConsumerGroupDescription empty = get(admin.describeConsumerGroups(List.of(GROUP)).all()).get(GROUP);
        checkEq(List.of(GroupState.EMPTY, 0), List.of(empty.groupState(), empty.members().size()),
                "describeConsumerGroups after the member left");
        checkEq(List.of(listing(GroupState.EMPTY)), get(admin.listGroups().all()), "listGroups (all types)");
        checkEq(consumed, committed(GROUP), "listConsumerGroupOffsets");

        get(admin.alterConsumerGroupOffsets(GROUP, Map.of(p0, new OffsetAndMetadata(1, "rewound"))).all());
        Map<TopicPartition, OffsetAndMetadata> offsets =
                get(admin.listConsumerGroupOffsets(GROUP).partitionsToOffsetAndMetadata());
        checkEq(List.of(1L, "rewound"), List.of(offsets.get(p0).offset(), offsets.get(p0).metadata()),
                "p0 after alterConsumerGroupOffsets");
        get(admin.deleteConsumerGroupOffsets(GROUP, Set.of(p1)).all());
        consumed.put(p0, 1L);
        consumed.remove(p1);
        checkEq(consumed, committed(GROUP), "offsets after alter and delete");

        get(admin.deleteConsumerGroups(List.of(GROUP)).all());
        checkEq(List.of(), get(admin.listGroups().all()), "listGroups after deleteConsumerGroups");
        checkEq(Map.of(), committed(GROUP), "offsets of the deleted group");
        expectError(admin.deleteConsumerGroups(List.of(GROUP)).all(), GroupIdNotFoundException.class,
                "delete a deleted group");
        expectError(admin.describeConsumerGroups(List.of(GROUP)).all(), GroupIdNotFoundException.class,
                "describe a deleted group");
    }

    static GroupListing listing(GroupState state) {
        return new GroupListing(GROUP, Optional.of(GroupType.CLASSIC), "consumer", Optional.of(state));
    }

    /** The group's committed offsets, as listConsumerGroupOffsets gives them. */
    Map<TopicPartition, Long> committed(String group) {
        Map<TopicPartition, Long> out = Kit.partitionMap();
        get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata())
                .forEach((tp, o) -> out.put(tp, o.offset()));
        return out;
    }

    /** Four records on TOPIC_B with timestamps out of order, found by every OffsetSpec. */
    void listOffsets() {
        TopicPartition b0 = new TopicPartition(TOPIC_B, 0);
        long[] timestamps = {T + 1000, T + 3000, T + 2000, T + 500};
        try (KafkaProducer<String, String> producer = Kit.producer(bootstrap)) {
            for (long ts : timestamps) Kit.send(producer, new ProducerRecord<>(TOPIC_B, 0, ts, "k", "v"));
        }
        Map<String, OffsetSpec> specs = Map.of("earliest", OffsetSpec.earliest(), "latest", OffsetSpec.latest(),
                "max timestamp", OffsetSpec.maxTimestamp(), "timestamp T+2500", OffsetSpec.forTimestamp(T + 2500),
                "timestamp T", OffsetSpec.forTimestamp(T), "timestamp T+5000", OffsetSpec.forTimestamp(T + 5000));
        Map<String, List<Object>> found = new TreeMap<>();
        specs.forEach((name, spec) -> {
            ListOffsetsResultInfo info = get(admin.listOffsets(Map.of(b0, spec)).partitionResult(b0));
            found.put(name, List.of(info.offset(), info.timestamp(), info.leaderEpoch()));
        });
        Optional<Integer> epoch0 = Optional.of(0);
        checkEq(new TreeMap<>(Map.of("earliest", List.of(0L, -1L, epoch0), "latest", List.of(4L, -1L, epoch0),
                "max timestamp", List.of(1L, T + 3000, epoch0), "timestamp T+2500", List.of(1L, T + 3000, epoch0),
                "timestamp T", List.of(0L, T + 1000, epoch0), "timestamp T+5000", List.of(-1L, -1L, Optional.empty()))),
                found, "listOffsets (offset, timestamp, leader epoch) per spec");
    }

    /** The idempotent producer of {@link #listOffsets}'s records. */
    void describeProducers() {
        TopicPartition b0 = new TopicPartition(TOPIC_B, 0);
        List<ProducerState> producers = get(admin.describeProducers(List.of(b0)).partitionResult(b0)).activeProducers();
        checkEq(1, producers.size(), "producers of " + b0 + ": " + producers);
        ProducerState producer = producers.get(0);
        check(producer.producerId() >= 0, "producer id " + producer.producerId());
        checkEq(List.of(0, 3, T + 500, OptionalLong.empty(), OptionalInt.empty()),
                List.of(producer.producerEpoch(), producer.lastSequence(), producer.lastTimestamp(),
                        producer.currentTransactionStartOffset(), producer.coordinatorEpoch()),
                "describeProducers (epoch, last sequence, last timestamp, transaction start, coordinator epoch)");
    }

    /** An open, then committed transaction on TOPIC_B, seen by list/describeTransactions and describeProducers. */
    void transactions() {
        TopicPartition b0 = new TopicPartition(TOPIC_B, 0);
        FinalizedVersionRange tv = get(admin.describeFeatures().featureMetadata()).finalizedFeatures()
                .get("transaction.version");
        // Transactions v2 (KIP-890) bump the producer epoch at every commit or abort.
        int epochBumpPerTransaction = tv != null && tv.maxVersionLevel() >= 2 ? 1 : 0;
        log("transaction.version %s: epoch bump per transaction %d", tv, epochBumpPerTransaction);
        try (KafkaProducer<String, String> producer = Kit.producer(bootstrap, "transactional.id", TXN_ID)) {
            producer.initTransactions();
            producer.beginTransaction();
            Kit.send(producer, new ProducerRecord<>(TOPIC_B, 0, T + 600, "k", "in a transaction"));

            TransactionDescription open = get(admin.describeTransactions(List.of(TXN_ID)).description(TXN_ID));
            long pid = open.producerId();
            int epoch = open.producerEpoch();
            checkEq(List.of(node.id(), TransactionState.ONGOING, 60000L, Set.of(b0), true),
                    List.of(open.coordinatorId(), open.state(), open.transactionTimeoutMs(), open.topicPartitions(),
                            open.transactionStartTimeMs().isPresent()),
                    "describeTransactions of the open transaction (coordinator, state, timeout, partitions, start)");
            checkEq(List.of(new TransactionListing(TXN_ID, pid, TransactionState.ONGOING)),
                    List.copyOf(get(admin.listTransactions().all())), "listTransactions");
            checkEq(List.of(TXN_ID), transactionalIds(inState(TransactionState.ONGOING)),
                    "listTransactions in state Ongoing");
            checkEq(List.of(), transactionalIds(inState(TransactionState.COMPLETE_COMMIT)),
                    "listTransactions in state CompleteCommit");
            checkEq(List.of(TXN_ID), transactionalIds(new ListTransactionsOptions().filterProducerIds(List.of(pid))),
                    "listTransactions of its producer id");
            checkEq(List.of(), transactionalIds(new ListTransactionsOptions().filterOnDuration(3_600_000)),
                    "listTransactions running for an hour or more");
            ProducerState state = producerState(b0, pid);
            checkEq(List.of(epoch, 0, T + 600, OptionalLong.of(4)),
                    List.of(state.producerEpoch(), state.lastSequence(), state.lastTimestamp(),
                            state.currentTransactionStartOffset()),
                    "describeProducers of the open transaction (epoch, last sequence, last timestamp, start offset)");

            producer.commitTransaction();
            // Kafka answers EndTxn once PrepareCommit is stored (transactions v2) and writes the markers after.
            TransactionDescription done = until("transaction " + TXN_ID + " complete",
                    () -> get(admin.describeTransactions(List.of(TXN_ID)).description(TXN_ID)),
                    d -> d.state() != TransactionState.PREPARE_COMMIT);
            Kit.step("describeTransactions after the commit", () -> checkEq(
                    List.of(TransactionState.COMPLETE_COMMIT, pid, epoch + epochBumpPerTransaction, Set.of(),
                            open.transactionStartTimeMs()),
                    List.of(done.state(), done.producerId(), done.producerEpoch(), done.topicPartitions(),
                            done.transactionStartTimeMs()),
                    "describeTransactions after the commit (state, producer, epoch, partitions, start)"));
            checkEq(OptionalLong.empty(), producerState(b0, pid).currentTransactionStartOffset(),
                    "transaction start offset after the commit");
            checkEq(6L, get(admin.listOffsets(Map.of(b0, OffsetSpec.latest())).partitionResult(b0)).offset(),
                    "end offset after the record and its commit marker");
        }
    }

    static ListTransactionsOptions inState(TransactionState state) {
        return new ListTransactionsOptions().filterStates(List.of(state));
    }

    List<String> transactionalIds(ListTransactionsOptions options) {
        return get(admin.listTransactions(options).all()).stream().map(TransactionListing::transactionalId).toList();
    }

    ProducerState producerState(TopicPartition tp, long pid) {
        return get(admin.describeProducers(List.of(tp)).partitionResult(tp)).activeProducers().stream()
                .filter(p -> p.producerId() == pid).findFirst()
                .orElseThrow(() -> new Kit.CheckFailed("producer " + pid + " not described on " + tp));
    }

    void deleteTopics(Uuid idA) {
        get(admin.deleteTopics(List.of(TOPIC_B)).all());
        awaitTopics(Set.of(TOPIC_A));
        expectError(admin.deleteTopics(List.of(TOPIC_B)).all(), UnknownTopicOrPartitionException.class,
                "delete a deleted topic");
        get(admin.deleteTopics(TopicCollection.ofTopicIds(List.of(idA))).all());
        awaitTopics(Set.of());
        Map<String, Boolean> internal = new TreeMap<>();
        for (TopicListing listing : get(admin.listTopics(new ListTopicsOptions().listInternal(true)).listings())) {
            internal.put(listing.name(), listing.isInternal());
        }
        checkEq(Map.of("__consumer_offsets", true, "__transaction_state", true), internal,
                "listTopics with internal topics");
    }

    /** Partitions as "P: leader L, replicas [..], isr [..]": all on the one node. */
    List<String> expectedPartitions(int count) {
        List<String> out = new ArrayList<>();
        for (int p = 0; p < count; p++) {
            out.add(p + ": leader " + node.id() + ", replicas [" + node.id() + "], isr [" + node.id() + "]");
        }
        return out;
    }

    static List<String> partitionsOf(TopicDescription description) {
        List<String> out = new ArrayList<>();
        for (TopicPartitionInfo p : description.partitions()) {
            out.add(p.partition() + ": leader " + p.leader().id() + ", replicas " + ids(p.replicas()) + ", isr "
                    + ids(p.isr()));
        }
        return out;
    }

    static List<Integer> ids(List<Node> nodes) {
        return nodes.stream().map(Node::id).toList();
    }

    /** Describes a topic, waiting (bounded) until it shows {@code partitions} partitions, checking them. */
    TopicDescription describe(String topic, int partitions) {
        TopicDescription description = until("describe " + topic + " with " + partitions + " partitions",
                () -> get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic),
                d -> d.partitions().size() == partitions);
        checkEq(expectedPartitions(partitions), partitionsOf(description), "partitions of " + topic);
        return description;
    }

    /** Waits (bounded) until listTopics shows exactly these topics (internal ones excluded). */
    void awaitTopics(Set<String> topics) {
        until("listTopics " + topics, () -> get(admin.listTopics().names()), topics::equals);
        log("listTopics: %s", topics);
    }

    /**
     * Calls {@code call} until its result passes {@code done} (bounded):
     * Kafka's brokers learn about topic changes from the controller a few
     * milliseconds after the call that made them returned.
     */
    static <T> T until(String what, Supplier<T> call, java.util.function.Predicate<T> done) {
        long deadline = System.nanoTime() + Kit.TIMEOUT.toNanos();
        while (true) {
            T value;
            try {
                value = call.get();
            } catch (RuntimeException e) {
                if (!(e.getCause() instanceof UnknownTopicOrPartitionException)) throw e;
                value = null;
            }
            if (value != null && done.test(value)) return value;
            check(System.nanoTime() < deadline, what + ": last result " + value);
            GroupFlow.sleep(100);
        }
    }
}
