package dev.weir.tests.clients;

import static dev.weir.tests.clients.Kit.checkEq;
import static dev.weir.tests.clients.Kit.get;
import static dev.weir.tests.clients.Kit.log;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.header.internals.RecordHeaders;

/**
 * Exactly-once with the Java client's transactional producer.
 *
 * <pre>Transactions BOOTSTRAP</pre>
 *
 * Consume-transform-produce: an application reads 20 input records in a
 * group (read_committed) and writes one output record per input in
 * transactions that also commit the group's offsets
 * (sendOffsetsToTransaction with the consumer's group metadata). Its first
 * transaction (inputs at offsets 0-4 of each partition) commits, its second
 * (offsets 5-9) aborts. A read_committed reader sees exactly the first
 * transaction's output, a read_uncommitted one both; the group's committed
 * offsets are the first transaction's. A second instance of the application
 * (same transactional id, same group, now with group.protocol=consumer)
 * resumes at offset 5 and commits the rest, after which read_committed shows
 * every input transformed exactly once.
 *
 * Fencing: a second producer with the same transactional id aborts the first
 * one's open transaction, whose commit then fails with ProducerFencedException.
 */
public final class Transactions {
    static final String IN = "txn-in", OUT = "txn-out", FENCE = "txn-fence", GROUP = "txn-app", TXN_ID = "txn-app";
    static final int PARTITIONS = 2, INPUTS = 20;
    /** Record timestamps: recent (Kafka's retention deletes week-old records), in whole seconds. */
    static final long T = System.currentTimeMillis() / 1000 * 1000 - 60_000;

    public static void main(String[] args) {
        Kit.run("Transactions", () -> {
            try (Admin admin = Kit.admin(args[0])) {
                new Transactions(args[0], admin).run();
            }
        });
    }

    final String bootstrap;
    final Admin admin;

    Transactions(String bootstrap, Admin admin) {
        this.bootstrap = bootstrap;
        this.admin = admin;
    }

    void run() {
        Kit.createTopic(admin, IN, PARTITIONS);
        Kit.createTopic(admin, OUT, PARTITIONS);
        Kit.createTopic(admin, FENCE, 1);
        try (KafkaProducer<String, String> producer = Kit.producer(bootstrap)) {
            for (int i = 0; i < INPUTS; i++) {
                Kit.send(producer, new ProducerRecord<>(IN, i % PARTITIONS, T + i, "in-" + i, "input-" + i));
            }
        }
        Kit.step("consume-transform-produce", this::consumeTransformProduce);
        Kit.step("fencing", this::fencing);
    }

    void consumeTransformProduce() {
        List<Kit.Rec> firstHalf = new ArrayList<>(), secondHalf = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer = appConsumer("classic");
             KafkaProducer<String, String> producer = Kit.producer(bootstrap, "transactional.id", TXN_ID)) {
            producer.initTransactions();
            consumer.subscribe(List.of(IN));
            for (Kit.Rec record : Kit.consume(consumer, INPUTS, 0, "input")) {
                (record.offset() < 5 ? firstHalf : secondHalf).add(record);
            }
            transform(producer, consumer, firstHalf, true);
            transform(producer, consumer, secondHalf, false);
        }
        List<Kit.Rec> committedOutput = outputs(firstHalf, 0);
        checkEq(offsets(5), committedOffsets(), "group offsets after one committed and one aborted transaction");
        Kit.checkRecords(committedOutput, readOutput("read_committed", committedOutput.size()),
                "read_committed output");
        List<Kit.Rec> everything = new ArrayList<>(committedOutput);
        everything.addAll(outputs(secondHalf, 6)); // after the first transaction's COMMIT marker
        Kit.checkRecords(everything, readOutput("read_uncommitted", everything.size()), "read_uncommitted output");

        // The application again: it must resume at the aborted transaction's inputs.
        try (KafkaConsumer<String, String> consumer = appConsumer("consumer");
             KafkaProducer<String, String> producer = Kit.producer(bootstrap, "transactional.id", TXN_ID)) {
            producer.initTransactions();
            consumer.subscribe(List.of(IN));
            List<Kit.Rec> resumed = Kit.consume(consumer, secondHalf.size(), 5, "resumed input");
            Kit.checkRecords(secondHalf, resumed, "inputs read again after the abort");
            transform(producer, consumer, resumed, true);
        }
        committedOutput.addAll(outputs(secondHalf, 12)); // after the ABORT marker at 11
        checkEq(offsets(10), committedOffsets(), "group offsets after the second instance's commit");
        Kit.checkRecords(committedOutput, readOutput("read_committed", committedOutput.size()),
                "read_committed output, every input once");
    }

    /** One transaction: an output per input, the inputs' offsets committed with it (or not: aborted). */
    void transform(KafkaProducer<String, String> producer, KafkaConsumer<String, String> consumer, List<Kit.Rec> inputs,
            boolean commit) {
        producer.beginTransaction();
        Map<TopicPartition, OffsetAndMetadata> offsets = Kit.partitionMap();
        for (Kit.Rec in : inputs) {
            RecordHeaders headers = new RecordHeaders();
            headers.add("from-offset", GroupFlow.bytes(Long.toString(in.offset())));
            Kit.send(producer, new ProducerRecord<>(OUT, in.partition(), in.timestamp(), in.key(), "out-" + in.value(),
                    headers));
            offsets.put(in.topicPartition(), new OffsetAndMetadata(in.offset() + 1));
        }
        producer.sendOffsetsToTransaction(offsets, consumer.groupMetadata());
        if (commit) {
            producer.commitTransaction();
        } else {
            producer.abortTransaction();
        }
        awaitComplete(TXN_ID);
        log("transaction of %d outputs %s, offsets %s", inputs.size(), commit ? "committed" : "aborted", offsets);
    }

    /**
     * Waits (bounded) until the transaction's markers are written: Kafka
     * answers EndTxn once PrepareCommit/PrepareAbort is stored (transactions
     * v2) and writes the markers after.
     */
    void awaitComplete(String transactionalId) {
        AdminCheck.until("transaction " + transactionalId + " complete",
                () -> get(admin.describeTransactions(List.of(transactionalId)).description(transactionalId)).state(),
                state -> state == TransactionState.COMPLETE_COMMIT || state == TransactionState.COMPLETE_ABORT);
    }

    /** The outputs of {@code inputs}, the first of each partition at {@code firstOffset}. */
    static List<Kit.Rec> outputs(List<Kit.Rec> inputs, long firstOffset) {
        List<Kit.Rec> out = new ArrayList<>();
        Map<TopicPartition, Long> next = Kit.partitionMap();
        for (Kit.Rec in : inputs) {
            long offset = next.merge(in.topicPartition(), 1L, Long::sum) - 1 + firstOffset;
            out.add(new Kit.Rec(OUT, in.partition(), offset, in.timestamp(), in.key(), "out-" + in.value(),
                    List.of("from-offset=" + in.offset())));
        }
        return out;
    }

    /** Every output record visible at this isolation level; the end offsets are checked too. */
    List<Kit.Rec> readOutput(String isolation, int count) {
        try (KafkaConsumer<String, String> reader = Kit.consumer(bootstrap, null, null, "isolation.level", isolation)) {
            List<TopicPartition> partitions = List.of(new TopicPartition(OUT, 0), new TopicPartition(OUT, 1));
            reader.assign(partitions);
            reader.seekToBeginning(partitions);
            Map<TopicPartition, Long> ends = Kit.partitionMap();
            ends.putAll(reader.endOffsets(partitions));
            Map<TopicPartition, Long> highWatermarks = Kit.partitionMap();
            get(admin.listOffsets(Map.of(partitions.get(0), OffsetSpec.latest(),
                    partitions.get(1), OffsetSpec.latest())).all())
                    .forEach((tp, info) -> highWatermarks.put(tp, info.offset()));
            checkEq(highWatermarks, ends, isolation + " end offsets (no transaction is open)");
            return Kit.consume(reader, count, 5, isolation + " output");
        }
    }

    KafkaConsumer<String, String> appConsumer(String protocol) {
        return Kit.consumer(bootstrap, GROUP, protocol, "isolation.level", "read_committed");
    }

    Map<TopicPartition, Long> offsets(long offset) {
        Map<TopicPartition, Long> out = Kit.partitionMap();
        for (int p = 0; p < PARTITIONS; p++) out.put(new TopicPartition(IN, p), offset);
        return out;
    }

    Map<TopicPartition, Long> committedOffsets() {
        Map<TopicPartition, Long> out = Kit.partitionMap();
        get(admin.listConsumerGroupOffsets(GROUP).partitionsToOffsetAndMetadata())
                .forEach((tp, o) -> out.put(tp, o.offset()));
        return out;
    }

    void fencing() {
        TopicPartition fence = new TopicPartition(FENCE, 0);
        KafkaProducer<String, String> first = Kit.producer(bootstrap, "transactional.id", "txn-fenced");
        try {
            first.initTransactions();
            first.beginTransaction();
            Kit.send(first, new ProducerRecord<>(FENCE, 0, T, "k", "from the fenced producer"));
            try (KafkaProducer<String, String> second = Kit.producer(bootstrap, "transactional.id", "txn-fenced")) {
                second.initTransactions(); // aborts the first producer's open transaction
                Kit.expectThrows(ProducerFencedException.class, "commit of the fenced producer",
                        first::commitTransaction);
                second.beginTransaction();
                Kit.send(second, new ProducerRecord<>(FENCE, 0, T + 1, "k", "from the new producer"));
                second.commitTransaction();
            }
        } finally {
            first.close();
        }
        Kit.Rec fenced = new Kit.Rec(FENCE, 0, 0, T, "k", "from the fenced producer", List.of());
        Kit.Rec winner = new Kit.Rec(FENCE, 0, 2, T + 1, "k", "from the new producer", List.of()); // after ABORT at 1
        Kit.checkRecords(List.of(winner), readAll(fence, "read_committed", 1), "read_committed after fencing");
        Kit.checkRecords(List.of(fenced, winner), readAll(fence, "read_uncommitted", 2),
                "read_uncommitted after fencing");
    }

    List<Kit.Rec> readAll(TopicPartition tp, String isolation, int count) {
        try (KafkaConsumer<String, String> reader = Kit.consumer(bootstrap, null, null, "isolation.level", isolation)) {
            reader.assign(List.of(tp));
            reader.seekToBeginning(List.of(tp));
            return Kit.consume(reader, count, 5, isolation + " " + tp);
        }
    }
}
