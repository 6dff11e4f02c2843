package dev.weir.tests.clients;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Helpers shared by the Java client scenarios: client construction, checks
 * that fail the program with a clear message, synchronous produce, and
 * bounded consume loops. Every wait is bounded: a scenario that does not get
 * what it expects within {@link #TIMEOUT} fails instead of hanging.
 */
final class Kit {
    /** Upper bound for one admin call, one send, or one consume-until loop. */
    static final Duration TIMEOUT = Duration.ofSeconds(90);
    /** One poll of a consume loop. */
    static final Duration POLL = Duration.ofMillis(100);

    private Kit() {}

    /** A failed expectation: the program prints it and exits 1. */
    static final class CheckFailed extends RuntimeException {
        CheckFailed(String message) {
            super(message);
        }
    }

    static void check(boolean condition, String what) {
        if (!condition) throw new CheckFailed(what);
    }

    static void checkEq(Object expected, Object actual, String what) {
        if (!java.util.Objects.equals(expected, actual)) {
            throw new CheckFailed(what + ":\n  expected " + expected + "\n  actual   " + actual);
        }
    }

    static void log(String format, Object... args) {
        System.out.println(String.format(format, args));
        System.out.flush();
    }

    /** The value of an admin future, its cause rethrown as is on failure. */
    static <T> T get(KafkaFuture<T> future) {
        try {
            return future.get(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            throw new RuntimeException("admin call failed: " + e.getCause(), e.getCause());
        } catch (Exception e) {
            throw new RuntimeException(e);
        }
    }

    /** Asserts the future fails with exactly this exception type. */
    static void expectError(KafkaFuture<?> future, Class<? extends Throwable> type, String what) {
        try {
            Object value = future.get(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
            throw new CheckFailed(what + ": expected " + type.getSimpleName() + ", succeeded with " + value);
        } catch (ExecutionException e) {
            check(type.isInstance(e.getCause()),
                    what + ": expected " + type.getSimpleName() + ", got " + e.getCause());
            log("%s: %s as expected", what, type.getSimpleName());
        } catch (CheckFailed e) {
            throw e;
        } catch (Exception e) {
            throw new RuntimeException(what, e);
        }
    }

    /** Runs {@code action} and asserts it throws this exception type. */
    static void expectThrows(Class<? extends Throwable> type, String what, Runnable action) {
        try {
            action.run();
        } catch (Throwable e) {
            check(type.isInstance(e), what + ": expected " + type.getSimpleName() + ", got " + e);
            log("%s: %s as expected", what, type.getSimpleName());
            return;
        }
        throw new CheckFailed(what + ": expected " + type.getSimpleName() + ", nothing was thrown");
    }

    /** A config map from alternating keys and values. */
    static Map<String, Object> config(String bootstrap, Object... keysAndValues) {
        Map<String, Object> config = new HashMap<>();
        config.put("bootstrap.servers", bootstrap);
        for (int i = 0; i < keysAndValues.length; i += 2) {
            config.put((String) keysAndValues[i], keysAndValues[i + 1]);
        }
        return config;
    }

    static Admin admin(String bootstrap) {
        return Admin.create(config(bootstrap, "default.api.timeout.ms", (int) TIMEOUT.toMillis()));
    }

    /** A producer with the client's defaults (idempotence on, acks=all) plus {@code extra}. */
    static KafkaProducer<String, String> producer(String bootstrap, Object... extra) {
        Map<String, Object> config = config(bootstrap, extra);
        config.put("delivery.timeout.ms", (int) TIMEOUT.toMillis());
        config.put("max.block.ms", (int) TIMEOUT.toMillis());
        return new KafkaProducer<>(config, new StringSerializer(), new StringSerializer());
    }

    /**
     * A consumer in {@code group} (null: no group) using the given group
     * protocol ("classic" or "consumer"), starting at the earliest offset
     * when the group has no commit, never committing on its own.
     */
    static KafkaConsumer<String, String> consumer(String bootstrap, String group, String protocol, Object... extra) {
        Map<String, Object> config = config(bootstrap, extra);
        if (group != null) {
            config.put("group.id", group);
            config.put("group.protocol", protocol);
        }
        config.put("auto.offset.reset", "earliest");
        config.put("enable.auto.commit", false);
        config.put("default.api.timeout.ms", (int) TIMEOUT.toMillis());
        return new KafkaConsumer<>(config, new StringDeserializer(), new StringDeserializer());
    }

    static void createTopic(Admin admin, String topic, int partitions) {
        get(admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all());
    }

    /** Sends one record and waits for its acknowledgement. */
    static RecordMetadata send(KafkaProducer<String, String> producer, ProducerRecord<String, String> record) {
        try {
            return producer.send(record).get(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            throw new RuntimeException("send to " + record.topic() + " failed: " + e.getCause(), e.getCause());
        } catch (Exception e) {
            throw new RuntimeException(e);
        }
    }

    /** A record as read back, in a form that compares exactly. */
    record Rec(String topic, int partition, long offset, long timestamp, String key, String value,
            List<String> headers) {
        static Rec of(ConsumerRecord<String, String> record) {
            check(record.timestampType() == TimestampType.CREATE_TIME,
                    "timestamp type of " + record + " should be CreateTime");
            return new Rec(record.topic(), record.partition(), record.offset(), record.timestamp(), record.key(),
                    record.value(), Kit.headers(record.headers()));
        }

        TopicPartition topicPartition() {
            return new TopicPartition(topic, partition);
        }
    }

    /** Headers in order as "key=value" ("key" alone for a null value). */
    static List<String> headers(Iterable<Header> headers) {
        List<String> out = new ArrayList<>();
        for (Header header : headers) {
            out.add(header.value() == null ? header.key()
                    : header.key() + "=" + new String(header.value(), StandardCharsets.UTF_8));
        }
        return out;
    }

    /**
     * Polls until exactly {@code count} records arrived (failing after
     * {@link #TIMEOUT} or on more than {@code count}), then polls
     * {@code settlePolls} more times to catch records beyond the count.
     */
    static List<Rec> consume(KafkaConsumer<String, String> consumer, int count, int settlePolls, String what) {
        List<Rec> records = new ArrayList<>();
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        int extraPolls = 0;
        while (records.size() < count || extraPolls++ < settlePolls) {
            check(System.nanoTime() < deadline,
                    what + ": " + records.size() + " of " + count + " records after " + TIMEOUT);
            for (ConsumerRecord<String, String> record : consumer.poll(POLL)) records.add(Rec.of(record));
            check(records.size() <= count, what + ": more than " + count + " records: " + records);
        }
        return records;
    }

    /** A map ordered by topic, then partition (for readable messages and exact comparisons). */
    static <V> TreeMap<TopicPartition, V> partitionMap() {
        return new TreeMap<>(Comparator.comparing(TopicPartition::topic).thenComparing(TopicPartition::partition));
    }

    /** Records per partition, in the order they were read. */
    static Map<TopicPartition, List<Rec>> byPartition(Collection<Rec> records) {
        Map<TopicPartition, List<Rec>> out = partitionMap();
        for (Rec record : records) out.computeIfAbsent(record.topicPartition(), tp -> new ArrayList<>()).add(record);
        return out;
    }

    /** Exact comparison, partition by partition, order within each partition included. */
    static void checkRecords(Collection<Rec> expected, Collection<Rec> actual, String what) {
        Map<TopicPartition, List<Rec>> want = byPartition(expected);
        Map<TopicPartition, List<Rec>> got = byPartition(actual);
        checkEq(want.keySet(), got.keySet(), what + ": partitions read");
        for (TopicPartition tp : want.keySet()) checkEq(want.get(tp), got.get(tp), what + ": records of " + tp);
        log("%s: %d records exactly as expected in %s", what, actual.size(), want.keySet());
    }

    /** Steps that failed so far (see {@link #step}). */
    private static final List<String> failedSteps = new ArrayList<>();

    /**
     * Runs one step of a scenario; a failure is reported and remembered, and
     * the scenario goes on with its next step (so one run shows every
     * difference), but the program exits 1 in the end.
     */
    static void step(String name, ThrowingRunnable body) {
        try {
            body.run();
        } catch (Throwable e) {
            System.out.flush();
            System.err.println("STEP FAILED: " + name + ": " + e.getMessage());
            e.printStackTrace();
            failedSteps.add(name + ": " + e.getMessage());
        }
    }

    /** Runs a scenario's main body: a failed check, step or exception exits 1 with its message. */
    static void run(String name, ThrowingRunnable body) {
        try {
            body.run();
        } catch (Throwable e) {
            System.out.flush();
            System.err.println(name + " FAILED: " + e.getMessage());
            e.printStackTrace();
            System.exit(1);
        }
        if (!failedSteps.isEmpty()) {
            System.err.println(name + " FAILED in " + failedSteps.size() + " step(s):");
            failedSteps.forEach(failure -> System.err.println("  " + failure));
            System.exit(1);
        }
        log("%s: OK", name);
        System.exit(0);
    }

    interface ThrowingRunnable {
        void run() throws Exception;
    }
}
