package dev.weir.tests.clients;

import static dev.weir.tests.clients.Kit.check;
import static dev.weir.tests.clients.Kit.checkEq;
import static dev.weir.tests.clients.Kit.get;
import static dev.weir.tests.clients.Kit.log;

import java.io.DataInputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.AlterConfigOp.OpType;
import org.apache.kafka.clients.admin.AlterConfigsOptions;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.DescribeConfigsOptions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.InvalidConfigurationException;
import org.apache.kafka.common.errors.InvalidRequestException;
import org.apache.kafka.common.errors.OffsetOutOfRangeException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.message.AlterConfigsRequestData;
import org.apache.kafka.common.message.AlterConfigsResponseData;
import org.apache.kafka.common.message.DeleteRecordsRequestData;
import org.apache.kafka.common.message.DeleteRecordsResponseData;
import org.apache.kafka.common.message.RequestHeaderData;
import org.apache.kafka.common.message.ResponseHeaderData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.ApiMessage;
import org.apache.kafka.common.protocol.ByteBufferAccessor;
import org.apache.kafka.common.protocol.ObjectSerializationCache;

/**
 * Topic configs changed at runtime, retention and DeleteRecords, through the
 * Java Admin client (and, for what it no longer sends, Kafka's own request
 * classes over a socket): every answer is checked exactly against what Kafka
 * 4.1 answers (values, sources, synonyms, error types and messages).
 *
 * <pre>TopicConfigs BOOTSTRAP MODE TARGET</pre>
 *
 * MODE: configs (describe, incremental and legacy alter, validateOnly,
 * errors), static (a broker started with log.retention.ms and
 * log.retention.bytes set), retention (retention.ms and retention.bytes
 * changed on live topics delete old segments), delete-records (then
 * after-restart, run once the broker restarted). TARGET: weir or kafka;
 * only the checks of configs Kafka has and weir refuses depend on it.
 */
public final class TopicConfigs {
    /** Partition records: recent timestamps (set by the producer). */
    static final int BIG_VALUE_BYTES = 16 * 1024;
    static final long RETENTION_WAIT_MS = 120_000;

    final String bootstrap;
    final Admin admin;
    final boolean weir;

    TopicConfigs(String bootstrap, Admin admin, boolean weir) {
        this.bootstrap = bootstrap;
        this.admin = admin;
        this.weir = weir;
    }

    public static void main(String[] args) {
        String mode = args[1];
        String target = args[2];
        Kit.run("TopicConfigs " + mode + " " + target, () -> {
            try (Admin admin = Kit.admin(args[0])) {
                TopicConfigs test = new TopicConfigs(args[0], admin, target.equals("weir"));
                switch (mode) {
                    case "configs" -> test.configs();
                    case "static" -> test.staticBrokerSettings();
                    case "retention" -> test.retention();
                    case "delete-records" -> test.deleteRecords();
                    case "after-restart" -> test.afterRestart();
                    default -> throw new IllegalArgumentException("unknown mode " + mode);
                }
            }
        });
    }

    // ------------------------------------------------------------ helpers

    static ConfigResource topicResource(String topic) {
        return new ConfigResource(ConfigResource.Type.TOPIC, topic);
    }

    Config describe(String topic, boolean synonyms) {
        ConfigResource resource = topicResource(topic);
        return get(admin.describeConfigs(List.of(resource), new DescribeConfigsOptions().includeSynonyms(synonyms))
                .all()).get(resource);
    }

    /**
     * One config as "value SOURCE TYPE [flags] [synonym=value SOURCE, ...]",
     * flags being default, read-only and sensitive when set.
     */
    static String show(ConfigEntry entry) {
        if (entry == null) return null;
        StringBuilder out = new StringBuilder();
        out.append(entry.value()).append(' ').append(entry.source()).append(' ').append(entry.type());
        if (entry.isDefault()) out.append(" default");
        if (entry.isReadOnly()) out.append(" read-only");
        if (entry.isSensitive()) out.append(" sensitive");
        List<String> synonyms = new ArrayList<>();
        for (ConfigEntry.ConfigSynonym synonym : entry.synonyms()) {
            synonyms.add(synonym.name() + "=" + synonym.value() + " " + synonym.source());
        }
        return out.append(' ').append(synonyms).toString();
    }

    /** The named configs of {@code topic} as {@link #show} prints them. */
    Map<String, String> shown(String topic, boolean synonyms, String... names) {
        Config config = describe(topic, synonyms);
        Map<String, String> out = new TreeMap<>();
        for (String name : names) out.put(name, show(config.get(name)));
        return out;
    }

    /** The topic's own configs (source DYNAMIC_TOPIC_CONFIG): name -> value. */
    Map<String, String> overrides(String topic) {
        Map<String, String> out = new TreeMap<>();
        for (ConfigEntry entry : describe(topic, false).entries()) {
            if (entry.source() == ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG) out.put(entry.name(), entry.value());
        }
        return out;
    }

    static Map<String, String> map(String... keysAndValues) {
        Map<String, String> out = new TreeMap<>();
        for (int i = 0; i < keysAndValues.length; i += 2) out.put(keysAndValues[i], keysAndValues[i + 1]);
        return out;
    }

    static AlterConfigOp op(OpType type, String name, String value) {
        return new AlterConfigOp(new ConfigEntry(name, value), type);
    }

    KafkaFuture<Void> alter(String topic, boolean validateOnly, AlterConfigOp... ops) {
        return admin.incrementalAlterConfigs(Map.of(topicResource(topic), List.of(ops)),
                new AlterConfigsOptions().validateOnly(validateOnly)).all();
    }

    /** Asserts the future fails with exactly this exception type and message. */
    static void expectFailure(KafkaFuture<?> future, Class<? extends Throwable> type, String message, String what) {
        Throwable cause;
        try {
            Object value = future.get(Kit.TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
            throw new Kit.CheckFailed(what + ": expected " + type.getSimpleName() + ", succeeded with " + value);
        } catch (ExecutionException e) {
            cause = e.getCause();
        } catch (Kit.CheckFailed e) {
            throw e;
        } catch (Exception e) {
            throw new RuntimeException(what, e);
        }
        checkEq(type.getSimpleName(), cause.getClass().getSimpleName(), what + ": error (message: "
                + cause.getMessage() + ")");
        // A different message is reported, and the scenario goes on.
        Kit.step(what + ": message", () -> checkEq(message, cause.getMessage(), what + ": error message"));
        log("%s: %s: %s", what, type.getSimpleName(), cause.getMessage());
    }

    /** A check of what Kafka shows that does not change the topic: reported, and the scenario goes on. */
    static void soft(String what, Kit.ThrowingRunnable check) {
        Kit.step(what, check);
    }

    long offset(TopicPartition partition, OffsetSpec spec) {
        return get(admin.listOffsets(Map.of(partition, spec)).partitionResult(partition)).offset();
    }

    /** "earliest..latest" of one partition. */
    String offsets(TopicPartition partition) {
        return offset(partition, OffsetSpec.earliest()) + ".." + offset(partition, OffsetSpec.latest());
    }

    /** Sends all records, then waits for every acknowledgement; returns their offsets. */
    static List<Long> sendAll(KafkaProducer<String, String> producer, List<ProducerRecord<String, String>> records) {
        List<Future<RecordMetadata>> futures = new ArrayList<>();
        for (ProducerRecord<String, String> record : records) futures.add(producer.send(record));
        List<Long> offsets = new ArrayList<>();
        for (Future<RecordMetadata> future : futures) {
            try {
                offsets.add(future.get(Kit.TIMEOUT.toMillis(), TimeUnit.MILLISECONDS).offset());
            } catch (ExecutionException e) {
                throw new RuntimeException("send failed: " + e.getCause(), e.getCause());
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        }
        return offsets;
    }

    /** A value of exactly {@link #BIG_VALUE_BYTES} ASCII characters, different per record. */
    static String bigValue(int i) {
        StringBuilder out = new StringBuilder(BIG_VALUE_BYTES);
        long x = 0x9E3779B97F4A7C15L * (i + 1);
        while (out.length() < BIG_VALUE_BYTES) {
            x ^= x << 13;
            x ^= x >>> 7;
            x ^= x << 17;
            out.append((char) ('a' + Math.floorMod(x, 26)));
        }
        return out.toString();
    }

    /** Offsets and "key=value" of the records a consumer read, values shortened to their index. */
    static List<String> summary(List<Kit.Rec> records) {
        List<String> out = new ArrayList<>();
        for (Kit.Rec r : records) out.add(r.partition() + "@" + r.offset() + " " + r.key() + "=" + r.value());
        return out;
    }

    // ----------------------------------------------------------- raw requests

    /**
     * One request over a fresh connection with Kafka's generated classes (for
     * AlterConfigs, which the Admin client no longer sends, and for
     * DeleteRecords answers the Admin client retries instead of returning).
     */
    @SuppressWarnings("unchecked")
    <T extends ApiMessage> T call(ApiKeys api, short version, ApiMessage body) throws IOException {
        String[] hostPort = bootstrap.split(":");
        try (Socket socket = new Socket()) {
            socket.connect(new InetSocketAddress(hostPort[0], Integer.parseInt(hostPort[1])), 30_000);
            socket.setSoTimeout((int) Kit.TIMEOUT.toMillis());
            short headerVersion = api.requestHeaderVersion(version);
            RequestHeaderData header = new RequestHeaderData().setRequestApiKey(api.id).setRequestApiVersion(version)
                    .setCorrelationId(42).setClientId("topic-configs");
            ObjectSerializationCache cache = new ObjectSerializationCache();
            int size = header.size(cache, headerVersion) + body.size(cache, version);
            ByteBuffer frame = ByteBuffer.allocate(4 + size).putInt(size);
            ByteBufferAccessor writer = new ByteBufferAccessor(frame);
            header.write(writer, cache, headerVersion);
            body.write(writer, cache, version);
            socket.getOutputStream().write(frame.array());
            DataInputStream in = new DataInputStream(socket.getInputStream());
            byte[] answer = new byte[in.readInt()];
            in.readFully(answer);
            ByteBuffer buffer = ByteBuffer.wrap(answer);
            ByteBufferAccessor reader = new ByteBufferAccessor(buffer);
            ResponseHeaderData responseHeader = new ResponseHeaderData(reader, api.responseHeaderVersion(version));
            checkEq(42, responseHeader.correlationId(), api.name + " v" + version + " correlation id");
            ApiMessage response = api.messageType.newResponse();
            response.read(reader, version);
            checkEq(0, buffer.remaining(), api.name + " v" + version + " bytes left after the response body");
            return (T) response;
        }
    }

    /** A legacy AlterConfigs of one topic: the whole set of its configs, from alternating names and values. */
    static AlterConfigsRequestData legacyAlter(String topic, boolean validateOnly, String... namesAndValues) {
        AlterConfigsRequestData.AlterableConfigCollection configs = new AlterConfigsRequestData.AlterableConfigCollection();
        for (int i = 0; i < namesAndValues.length; i += 2) {
            configs.add(new AlterConfigsRequestData.AlterableConfig().setName(namesAndValues[i])
                    .setValue(namesAndValues[i + 1]));
        }
        AlterConfigsRequestData.AlterConfigsResourceCollection resources =
                new AlterConfigsRequestData.AlterConfigsResourceCollection();
        resources.add(new AlterConfigsRequestData.AlterConfigsResource().setResourceType(ConfigResource.Type.TOPIC.id())
                .setResourceName(topic).setConfigs(configs));
        return new AlterConfigsRequestData().setResources(resources).setValidateOnly(validateOnly);
    }

    /** AlterConfigs at `version`: asserts the error code, and (softly) the message. */
    void expectLegacy(short version, AlterConfigsRequestData request, String topic, int code, String message,
            String what) throws IOException {
        String result = legacyAlterResult(version, request, topic);
        String[] codeAndMessage = result.split(" ", 2);
        checkEq(Integer.toString(code), codeAndMessage[0], what + ": error code (result " + result + ")");
        soft(what + ": message", () -> checkEq(message, codeAndMessage[1], what + ": error message"));
    }

    /** AlterConfigs at `version`: the one result as "ERROR_CODE message". */
    String legacyAlterResult(short version, AlterConfigsRequestData request, String topic) throws IOException {
        AlterConfigsResponseData response = call(ApiKeys.ALTER_CONFIGS, version, request);
        checkEq(1, response.responses().size(), "AlterConfigs results");
        AlterConfigsResponseData.AlterConfigsResourceResponse result = response.responses().get(0);
        checkEq(topic, result.resourceName(), "AlterConfigs result resource");
        checkEq(ConfigResource.Type.TOPIC.id(), result.resourceType(), "AlterConfigs result resource type");
        return result.errorCode() + " " + result.errorMessage();
    }

    /** DeleteRecords v2 of one partition: "ERROR_CODE lowWatermark". */
    String rawDeleteRecords(String topic, int partition, long offset) throws IOException {
        DeleteRecordsResponseData response = call(ApiKeys.DELETE_RECORDS, (short) 2, new DeleteRecordsRequestData()
                .setTimeoutMs(30_000)
                .setTopics(List.of(new DeleteRecordsRequestData.DeleteRecordsTopic().setName(topic)
                        .setPartitions(List.of(new DeleteRecordsRequestData.DeleteRecordsPartition()
                                .setPartitionIndex(partition).setOffset(offset))))));
        checkEq(1, response.topics().size(), "DeleteRecords topics");
        DeleteRecordsResponseData.DeleteRecordsTopicResult result = response.topics().iterator().next();
        checkEq(topic, result.name(), "DeleteRecords topic");
        checkEq(1, result.partitions().size(), "DeleteRecords partitions");
        DeleteRecordsResponseData.DeleteRecordsPartitionResult p = result.partitions().iterator().next();
        checkEq(partition, p.partitionIndex(), "DeleteRecords partition");
        return p.errorCode() + " " + p.lowWatermark();
    }

    // ------------------------------------------------------------- configs

    static final String CONFIGS = "tc-configs";

    void configs() {
        CreateTopicsResult created = admin.createTopics(List.of(new NewTopic(CONFIGS, 1, (short) 1).configs(Map.of(
                "retention.ms", "3600000", "retention.bytes", "10485760", "segment.bytes", "1048576"))));
        get(created.all());
        Kit.step("createTopics returns the topic's configs", () -> {
            Config config = get(created.config(CONFIGS));
            checkEq("3600000 DYNAMIC_TOPIC_CONFIG", config.get("retention.ms").value() + " "
                    + config.get("retention.ms").source(), "retention.ms in the CreateTopics answer");
            checkEq("1048576 DYNAMIC_TOPIC_CONFIG", config.get("segment.bytes").value() + " "
                    + config.get("segment.bytes").source(), "segment.bytes in the CreateTopics answer");
            checkEq("delete DEFAULT_CONFIG", config.get("cleanup.policy").value() + " "
                    + config.get("cleanup.policy").source(), "cleanup.policy in the CreateTopics answer");
        });
        Kit.step("describe with synonyms after create", () -> checkEq(map(
                "cleanup.policy", "delete DEFAULT_CONFIG LIST default [log.cleanup.policy=delete DEFAULT_CONFIG]",
                "max.message.bytes", "1048588 DEFAULT_CONFIG INT default [message.max.bytes=1048588 DEFAULT_CONFIG]",
                "message.timestamp.type", "CreateTime DEFAULT_CONFIG STRING default "
                        + "[log.message.timestamp.type=CreateTime DEFAULT_CONFIG]",
                "retention.bytes", "10485760 DYNAMIC_TOPIC_CONFIG LONG [retention.bytes=10485760 DYNAMIC_TOPIC_CONFIG, "
                        + "log.retention.bytes=-1 DEFAULT_CONFIG]",
                "retention.ms", "3600000 DYNAMIC_TOPIC_CONFIG LONG [retention.ms=3600000 DYNAMIC_TOPIC_CONFIG]",
                "segment.bytes", "1048576 DYNAMIC_TOPIC_CONFIG INT [segment.bytes=1048576 DYNAMIC_TOPIC_CONFIG, "
                        + "log.segment.bytes=1073741824 DEFAULT_CONFIG]",
                "segment.ms", "604800000 DEFAULT_CONFIG LONG default []"),
                shown(CONFIGS, true, "cleanup.policy", "max.message.bytes", "message.timestamp.type", "retention.bytes",
                        "retention.ms", "segment.bytes", "segment.ms"),
                "configs of " + CONFIGS + " (with synonyms)"));
        Kit.step("describe without synonyms", () -> {
            Config config = describe(CONFIGS, false);
            for (ConfigEntry entry : config.entries()) {
                checkEq(List.of(), entry.synonyms(), "synonyms of " + entry.name() + " when not asked for");
            }
            checkEq(map("retention.bytes", "10485760", "retention.ms", "3600000", "segment.bytes", "1048576"),
                    overrides(CONFIGS), "overrides of " + CONFIGS);
        });
        Kit.step("incremental SET and DELETE", this::incrementalSetDelete);
        Kit.step("APPEND and SUBTRACT", this::appendSubtract);
        Kit.step("validateOnly changes nothing", this::validateOnly);
        Kit.step("invalid values are refused, atomically", this::invalidValues);
        Kit.step("configs Kafka has that weir refuses", this::unsupportedConfigs);
        Kit.step("unknown topic", this::unknownTopic);
        Kit.step("createTopics with invalid configs", this::createInvalid);
        Kit.step("legacy AlterConfigs replaces the whole set", this::legacyAlterConfigs);
        // Kafka's bounds (last: a value one broker takes and the other does not changes the topic).
        Kit.step("segment.bytes below 1 MiB is refused", () -> expectFailure(
                alter(CONFIGS, false, op(OpType.SET, "segment.bytes", "1048575")), InvalidConfigurationException.class,
                "Invalid value 1048575 for configuration segment.bytes: Value must be at least 1048576",
                "SET segment.bytes=1048575"));
        Kit.step("max.message.bytes=0 is taken", () -> {
            get(alter(CONFIGS, false, op(OpType.SET, "max.message.bytes", "0")));
            checkEq("0", overrides(CONFIGS).get("max.message.bytes"), "max.message.bytes after SET 0");
            get(alter(CONFIGS, false, op(OpType.DELETE, "max.message.bytes", null)));
        });
    }

    void incrementalSetDelete() {
        get(alter(CONFIGS, false, op(OpType.SET, "retention.ms", "1000")));
        soft("described after SET", () -> checkEq(map(
                "retention.ms", "1000 DYNAMIC_TOPIC_CONFIG LONG [retention.ms=1000 DYNAMIC_TOPIC_CONFIG]"),
                shown(CONFIGS, true, "retention.ms"), "retention.ms after SET 1000"));
        checkEq(map("retention.bytes", "10485760", "retention.ms", "1000", "segment.bytes", "1048576"),
                overrides(CONFIGS), "overrides after SET retention.ms");
        get(alter(CONFIGS, false, op(OpType.SET, "retention.bytes", "2097152"), op(OpType.SET, "segment.ms", "3600000"),
                op(OpType.SET, "max.message.bytes", "2000000"), op(OpType.SET, "message.timestamp.type", "LogAppendTime")));
        checkEq(map("max.message.bytes", "2000000", "message.timestamp.type", "LogAppendTime", "retention.bytes",
                "2097152", "retention.ms", "1000", "segment.bytes", "1048576", "segment.ms", "3600000"),
                overrides(CONFIGS), "overrides after SET of four configs at once");
        get(alter(CONFIGS, false, op(OpType.DELETE, "retention.ms", null), op(OpType.DELETE, "max.message.bytes", null),
                op(OpType.DELETE, "message.timestamp.type", null)));
        checkEq(map("retention.bytes", "2097152", "segment.bytes", "1048576", "segment.ms", "3600000"),
                overrides(CONFIGS), "overrides after DELETE of three");
        soft("described after DELETE", () -> checkEq(map("retention.ms", "604800000 DEFAULT_CONFIG LONG default []",
                "segment.ms", "3600000 DYNAMIC_TOPIC_CONFIG LONG [segment.ms=3600000 DYNAMIC_TOPIC_CONFIG]"),
                shown(CONFIGS, true, "retention.ms", "segment.ms"), "retention.ms back to its default"));
        // Deleting what is not set (even an unknown name) succeeds and changes nothing.
        get(alter(CONFIGS, false, op(OpType.DELETE, "retention.ms", null)));
        soft("DELETE of an unknown config name succeeds",
                () -> get(alter(CONFIGS, false, op(OpType.DELETE, "no.such.config", null))));
        checkEq(map("retention.bytes", "2097152", "segment.bytes", "1048576", "segment.ms", "3600000"),
                overrides(CONFIGS), "overrides after DELETE of configs not set");
        // Kafka has no lower bound on retention.bytes (anything below 0 means unlimited).
        get(alter(CONFIGS, false, op(OpType.SET, "retention.bytes", "-5"), op(OpType.SET, "retention.ms", "-1")));
        checkEq(map("retention.bytes", "-5", "retention.ms", "-1", "segment.bytes", "1048576", "segment.ms", "3600000"),
                overrides(CONFIGS), "retention.bytes=-5 and retention.ms=-1 accepted");
        get(alter(CONFIGS, false, op(OpType.SET, "retention.bytes", "2097152"), op(OpType.DELETE, "retention.ms", null),
                op(OpType.DELETE, "segment.ms", null)));
        checkEq(map("retention.bytes", "2097152", "segment.bytes", "1048576"), overrides(CONFIGS),
                "overrides after SET and DELETE in one request");
    }

    void appendSubtract() {
        expectFailure(alter(CONFIGS, false, op(OpType.APPEND, "retention.ms", "5")), InvalidConfigurationException.class,
                "Can't APPEND to key retention.ms because its type is not LIST.", "APPEND to retention.ms");
        expectFailure(alter(CONFIGS, false, op(OpType.SUBTRACT, "segment.bytes", "5")),
                InvalidConfigurationException.class, "Can't SUBTRACT to key segment.bytes because its type is not LIST.",
                "SUBTRACT from segment.bytes");
        checkEq(map("retention.bytes", "2097152", "segment.bytes", "1048576"), overrides(CONFIGS),
                "overrides after the refused APPEND and SUBTRACT");
        // cleanup.policy is a list: APPEND adds a value that is not there yet, SUBTRACT removes it.
        get(alter(CONFIGS, false, op(OpType.APPEND, "cleanup.policy", "delete")));
        soft("described after APPEND", () -> checkEq(map("cleanup.policy", "delete DYNAMIC_TOPIC_CONFIG LIST "
                + "[cleanup.policy=delete DYNAMIC_TOPIC_CONFIG, log.cleanup.policy=delete DEFAULT_CONFIG]"),
                shown(CONFIGS, true, "cleanup.policy"), "cleanup.policy after APPEND delete to its default"));
        get(alter(CONFIGS, false, op(OpType.APPEND, "cleanup.policy", "delete")));
        checkEq("delete", overrides(CONFIGS).get("cleanup.policy"), "cleanup.policy after APPEND of a value it has");
        get(alter(CONFIGS, false, op(OpType.SUBTRACT, "cleanup.policy", "delete")));
        checkEq("", overrides(CONFIGS).get("cleanup.policy"), "cleanup.policy after SUBTRACT delete (empty list)");
        get(alter(CONFIGS, false, op(OpType.SUBTRACT, "cleanup.policy", "delete")));
        checkEq("", overrides(CONFIGS).get("cleanup.policy"), "SUBTRACT of a value the list does not have");
        get(alter(CONFIGS, false, op(OpType.DELETE, "cleanup.policy", null)));
        checkEq(map("retention.bytes", "2097152", "segment.bytes", "1048576"), overrides(CONFIGS),
                "overrides after DELETE cleanup.policy");
    }

    void validateOnly() {
        get(alter(CONFIGS, true, op(OpType.SET, "retention.ms", "2000"), op(OpType.DELETE, "retention.bytes", null)));
        checkEq(map("retention.bytes", "2097152", "segment.bytes", "1048576"), overrides(CONFIGS),
                "overrides after a validateOnly SET and DELETE");
        expectFailure(alter(CONFIGS, true, op(OpType.SET, "retention.ms", "abc")), InvalidConfigurationException.class,
                "Invalid value abc for configuration retention.ms: Not a number of type LONG",
                "validateOnly of an invalid value");
        expectFailure(alter(CONFIGS, true, op(OpType.APPEND, "retention.ms", "1")), InvalidConfigurationException.class,
                "Can't APPEND to key retention.ms because its type is not LIST.", "validateOnly APPEND to retention.ms");
    }

    void invalidValues() {
        String[][] cases = {
            {"retention.ms", "abc", "Invalid value abc for configuration retention.ms: Not a number of type LONG"},
            {"retention.ms", "-5", "Invalid value -5 for configuration retention.ms: Value must be at least -1"},
            {"retention.ms", "", "Invalid value  for configuration retention.ms: Not a number of type LONG"},
            {"retention.bytes", "1.5", "Invalid value 1.5 for configuration retention.bytes: Not a number of type LONG"},
            {"segment.bytes", "100", "Invalid value 100 for configuration segment.bytes: Value must be at least 1048576"},
            {"segment.ms", "0", "Invalid value 0 for configuration segment.ms: Value must be at least 1"},
            {"max.message.bytes", "-1", "Invalid value -1 for configuration max.message.bytes: Value must be at least 0"},
            {"cleanup.policy", "bogus",
                "Invalid value bogus for configuration cleanup.policy: String must be one of: compact, delete"},
            {"message.timestamp.type", "logappendtime", "Invalid value logappendtime for configuration "
                + "message.timestamp.type: String must be one of: CreateTime, LogAppendTime"},
            {"no.such.config", "1", "Unknown topic config name: no.such.config"},
        };
        for (String[] c : cases) {
            Kit.step("SET " + c[0] + "=" + c[1], () -> expectFailure(alter(CONFIGS, false, op(OpType.SET, c[0], c[1])),
                    InvalidConfigurationException.class, c[2], "SET " + c[0] + "=" + c[1]));
        }
        // One invalid config fails the whole resource: the valid one is not applied.
        expectFailure(alter(CONFIGS, false, op(OpType.SET, "retention.ms", "1000"), op(OpType.SET, "segment.bytes", "100")),
                InvalidConfigurationException.class,
                "Invalid value 100 for configuration segment.bytes: Value must be at least 1048576",
                "a valid and an invalid SET together");
        expectFailure(alter(CONFIGS, false, op(OpType.SET, "retention.ms", "1000"), op(OpType.SET, "retention.ms", "2000")),
                InvalidRequestException.class, "Error due to duplicate config keys", "the same config twice");
        expectFailure(alter(CONFIGS, false, op(OpType.SET, "retention.ms", null)), InvalidRequestException.class,
                "Null value not supported for : retention.ms", "SET with a null value");
        checkEq(map("retention.bytes", "2097152", "segment.bytes", "1048576"), overrides(CONFIGS),
                "overrides after the refused changes");
    }

    /** Topic configs Kafka has and weir refuses (weir's answer is its own; Kafka's is checked as it is). */
    void unsupportedConfigs() {
        String[][] cases = {
            {"flush.messages", "1"}, {"min.insync.replicas", "1"}, {"unclean.leader.election.enable", "true"}};
        for (String[] c : cases) {
            KafkaFuture<Void> result = alter(CONFIGS, false, op(OpType.SET, c[0], c[1]));
            if (weir) {
                Kit.expectError(result, InvalidConfigurationException.class, "weir refuses SET " + c[0]);
            } else {
                get(result);
                checkEq(c[1], overrides(CONFIGS).get(c[0]), c[0] + " after SET (Kafka)");
                get(alter(CONFIGS, false, op(OpType.DELETE, c[0], null)));
            }
        }
        checkEq(map("retention.bytes", "2097152", "segment.bytes", "1048576"), overrides(CONFIGS),
                "overrides after the unsupported configs");
    }

    void unknownTopic() {
        expectFailure(alter("tc-none", false, op(OpType.SET, "retention.ms", "1000")),
                UnknownTopicOrPartitionException.class, "The topic 'tc-none' does not exist.",
                "incrementalAlterConfigs of an unknown topic");
        expectFailure(alter("tc-none", true, op(OpType.SET, "retention.ms", "1000")),
                UnknownTopicOrPartitionException.class, "The topic 'tc-none' does not exist.",
                "validateOnly incrementalAlterConfigs of an unknown topic");
        expectFailure(admin.describeConfigs(List.of(topicResource("tc-none"))).all(),
                UnknownTopicOrPartitionException.class, "", "describeConfigs of an unknown topic");
    }

    void createInvalid() {
        expectFailure(admin.createTopics(List.of(new NewTopic("tc-create-bad", 1, (short) 1)
                .configs(Map.of("retention.ms", "abc")))).all(), InvalidConfigurationException.class,
                "Invalid value abc for configuration retention.ms: Not a number of type LONG",
                "createTopics with retention.ms=abc");
        expectFailure(admin.createTopics(List.of(new NewTopic("tc-create-unknown", 1, (short) 1)
                .configs(Map.of("no.such.config", "1")))).all(), InvalidConfigurationException.class,
                "Unknown topic config name: no.such.config", "createTopics with an unknown config");
        KafkaFuture<Void> flush = admin.createTopics(List.of(new NewTopic("tc-create-flush", 1, (short) 1)
                .configs(Map.of("flush.messages", "1")))).all();
        if (weir) {
            Kit.expectError(flush, InvalidConfigurationException.class, "weir refuses createTopics with flush.messages");
        } else {
            get(flush);
        }
        Map<String, ?> topics = get(admin.listTopics().namesToListings());
        check(!topics.containsKey("tc-create-bad") && !topics.containsKey("tc-create-unknown"),
                "topics refused for their configs were created: " + topics.keySet());
    }

    void legacyAlterConfigs() throws IOException {
        String topic = "tc-legacy";
        get(admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1).configs(Map.of(
                "retention.bytes", "10485760", "segment.bytes", "1048576")))).all());
        for (short version = 0; version <= 2; version++) {
            checkEq("0 null", legacyAlterResult(version, legacyAlter(topic, true, "retention.ms", "7200000"), topic),
                    "AlterConfigs v" + version + " validateOnly");
        }
        checkEq(map("retention.bytes", "10485760", "segment.bytes", "1048576"), overrides(topic),
                "overrides after validateOnly AlterConfigs");
        // The request's set replaces the topic's: what it leaves out goes back to the default.
        checkEq("0 null", legacyAlterResult((short) 0, legacyAlter(topic, false, "retention.ms", "7200000",
                "segment.bytes", "2097152"), topic), "AlterConfigs v0");
        checkEq(map("retention.ms", "7200000", "segment.bytes", "2097152"), overrides(topic), "overrides after v0");
        checkEq("0 null", legacyAlterResult((short) 1, legacyAlter(topic, false, "retention.ms", "7200000"), topic),
                "AlterConfigs v1");
        checkEq(map("retention.ms", "7200000"), overrides(topic), "overrides after v1");
        checkEq("0 null", legacyAlterResult((short) 2, legacyAlter(topic, false, "cleanup.policy", "delete",
                "retention.bytes", "4194304"), topic), "AlterConfigs v2");
        checkEq(map("cleanup.policy", "delete", "retention.bytes", "4194304"), overrides(topic), "overrides after v2");
        expectLegacy((short) 2, legacyAlter(topic, false, "retention.ms", "abc"), topic, 40,
                "Invalid value abc for configuration retention.ms: Not a number of type LONG",
                "AlterConfigs with retention.ms=abc");
        expectLegacy((short) 2, legacyAlter(topic, false, "retention.ms", "-5", "segment.bytes", "2097152"), topic, 40,
                "Invalid value -5 for configuration retention.ms: Value must be at least -1",
                "AlterConfigs with retention.ms=-5 and a valid config");
        expectLegacy((short) 1, legacyAlter(topic, false, "no.such.config", "1"), topic, 40,
                "Unknown topic config name: no.such.config", "AlterConfigs with an unknown config");
        expectLegacy((short) 2, legacyAlter(topic, false, "retention.ms", null), topic, 42,
                "Null value not supported for : retention.ms", "AlterConfigs with a null value");
        expectLegacy((short) 2, legacyAlter("tc-none", false, "retention.ms", "1"), "tc-none", 3,
                "The topic 'tc-none' does not exist.", "AlterConfigs of an unknown topic");
        expectLegacy((short) 0, legacyAlter("tc-none", true, "retention.ms", "1"), "tc-none", 3,
                "The topic 'tc-none' does not exist.", "validateOnly AlterConfigs of an unknown topic");
        if (weir) {
            check(legacyAlterResult((short) 2, legacyAlter(topic, false, "flush.messages", "1"), topic).startsWith("40 "),
                    "weir refuses AlterConfigs with flush.messages with INVALID_CONFIG");
        }
        checkEq(map("cleanup.policy", "delete", "retention.bytes", "4194304"), overrides(topic),
                "overrides after the refused AlterConfigs");
        // An empty set removes every override.
        checkEq("0 null", legacyAlterResult((short) 2, legacyAlter(topic, false), topic), "AlterConfigs of no config");
        checkEq(map(), overrides(topic), "overrides after AlterConfigs of no config");
        expectLegacy((short) 2, legacyAlter(topic, false, "retention.ms", "1", "retention.ms", "2"), topic, 42,
                "Error due to duplicate config keys", "AlterConfigs with the same config twice");
        checkEq(map(), overrides(topic), "overrides after AlterConfigs with the same config twice");
    }

    // ------------------------------------------------------ static settings

    /** A broker started with log.retention.ms=86400000 and log.retention.bytes=1073741824. */
    void staticBrokerSettings() {
        String plain = "tc-static-plain", own = "tc-static-own";
        get(admin.createTopics(List.of(new NewTopic(plain, 1, (short) 1), new NewTopic(own, 1, (short) 1).configs(
                Map.of("retention.ms", "3600000", "retention.bytes", "10485760")))).all());
        Map<String, String> broker = map(
                "retention.bytes", "1073741824 STATIC_BROKER_CONFIG LONG [log.retention.bytes=1073741824 "
                        + "STATIC_BROKER_CONFIG, log.retention.bytes=-1 DEFAULT_CONFIG]",
                "retention.ms", "86400000 STATIC_BROKER_CONFIG LONG [log.retention.ms=86400000 STATIC_BROKER_CONFIG, "
                        + "log.retention.hours=168 DEFAULT_CONFIG]",
                "segment.bytes", "1073741824 DEFAULT_CONFIG INT default [log.segment.bytes=1073741824 DEFAULT_CONFIG]");
        Kit.step("a topic without overrides", () -> checkEq(broker,
                shown(plain, true, "retention.bytes", "retention.ms", "segment.bytes"), "configs of " + plain));
        Kit.step("a topic with overrides", () -> checkEq(map(
                "retention.bytes", "10485760 DYNAMIC_TOPIC_CONFIG LONG [retention.bytes=10485760 DYNAMIC_TOPIC_CONFIG, "
                        + "log.retention.bytes=1073741824 STATIC_BROKER_CONFIG, log.retention.bytes=-1 DEFAULT_CONFIG]",
                "retention.ms", "3600000 DYNAMIC_TOPIC_CONFIG LONG [retention.ms=3600000 DYNAMIC_TOPIC_CONFIG, "
                        + "log.retention.ms=86400000 STATIC_BROKER_CONFIG, log.retention.hours=168 DEFAULT_CONFIG]"),
                shown(own, true, "retention.bytes", "retention.ms"), "configs of " + own));
        Kit.step("without synonyms", () -> checkEq(map(
                "retention.bytes", "1073741824 STATIC_BROKER_CONFIG LONG []",
                "retention.ms", "86400000 STATIC_BROKER_CONFIG LONG []"),
                shown(plain, false, "retention.bytes", "retention.ms"), "configs of " + plain + " without synonyms"));
        Kit.step("DELETE goes back to the broker's setting", () -> {
            get(alter(own, false, op(OpType.DELETE, "retention.ms", null), op(OpType.DELETE, "retention.bytes", null)));
            checkEq(broker, shown(own, true, "retention.bytes", "retention.ms", "segment.bytes"),
                    "configs of " + own + " after DELETE");
        });
    }

    // ------------------------------------------------------------ retention

    static final int BIG_RECORDS = 384; // 6 MiB of values: six 1 MiB segments or more

    /** Produces BIG_RECORDS records of BIG_VALUE_BYTES to partition 0 of `topic`; returns the end offset. */
    long produceBig(String topic) {
        List<ProducerRecord<String, String>> records = new ArrayList<>();
        for (int i = 0; i < BIG_RECORDS; i++) records.add(new ProducerRecord<>(topic, 0, "big-" + i, bigValue(i)));
        try (KafkaProducer<String, String> producer = Kit.producer(bootstrap, "linger.ms", 0)) {
            List<Long> offsets = sendAll(producer, records);
            for (int i = 0; i < offsets.size(); i++) checkEq((long) i, offsets.get(i), "offset of big-" + i);
        }
        TopicPartition partition = new TopicPartition(topic, 0);
        checkEq("0.." + BIG_RECORDS, offsets(partition), "offsets of " + topic + " after producing");
        return BIG_RECORDS;
    }

    /** Polls the earliest offset until `done` holds (at most RETENTION_WAIT_MS); returns it. */
    long waitForEarliest(TopicPartition partition, java.util.function.LongPredicate done, String what)
            throws InterruptedException {
        long deadline = System.currentTimeMillis() + RETENTION_WAIT_MS;
        long earliest = offset(partition, OffsetSpec.earliest());
        while (!done.test(earliest)) {
            check(System.currentTimeMillis() < deadline, what + ": earliest offset of " + partition + " is still "
                    + earliest + " after " + RETENTION_WAIT_MS + " ms (latest " + offset(partition, OffsetSpec.latest())
                    + ")");
            Thread.sleep(250);
            earliest = offset(partition, OffsetSpec.earliest());
        }
        log("%s: earliest offset of %s is %d", what, partition, earliest);
        return earliest;
    }

    /** The records a new consumer (auto.offset.reset=earliest) reads from partition 0: each must be record i. */
    void checkReadFrom(String topic, long from, long end) {
        try (KafkaConsumer<String, String> consumer = Kit.consumer(bootstrap, topic + "-reader", "classic")) {
            consumer.subscribe(List.of(topic));
            List<Kit.Rec> records = Kit.consume(consumer, (int) (end - from), 3, "reading " + topic);
            for (int i = 0; i < records.size(); i++) {
                Kit.Rec record = records.get(i);
                long offset = from + i;
                checkEq(offset, record.offset(), "offset of record " + i + " read from " + topic);
                checkEq("big-" + offset, record.key(), "key at offset " + offset);
                check(bigValue((int) offset).equals(record.value()), "value at offset " + offset + " differs");
            }
            log("read %s exactly from %d to %d", topic, from, end);
        }
    }

    void retention() throws Exception {
        String byTime = "tc-retention-ms", bySize = "tc-retention-bytes";
        get(admin.createTopics(List.of(
                new NewTopic(byTime, 1, (short) 1).configs(Map.of("segment.bytes", "1048576", "retention.ms", "3600000")),
                new NewTopic(bySize, 1, (short) 1).configs(Map.of("segment.bytes", "1048576")))).all());
        Kit.step("retention.ms lowered on a live topic", () -> {
            long end = produceBig(byTime);
            TopicPartition partition = new TopicPartition(byTime, 0);
            get(alter(byTime, false, op(OpType.SET, "retention.ms", "1000")));
            // Every record is older than a second soon: first the closed
            // segments go, then (Kafka rolls an expired active segment) all.
            waitForEarliest(partition, earliest -> earliest > 0, "retention.ms=1000, first deletion");
            waitForEarliest(partition, earliest -> earliest == end, "retention.ms=1000, every record");
            checkEq(end + ".." + end, offsets(partition), "offsets after retention deleted everything");
            // Retention off again: a new record stays, and is what a new consumer reads.
            get(alter(byTime, false, op(OpType.SET, "retention.ms", "-1")));
            try (KafkaProducer<String, String> producer = Kit.producer(bootstrap)) {
                RecordMetadata sent = Kit.send(producer, new ProducerRecord<>(byTime, 0, "big-" + end, bigValue((int) end)));
                checkEq(end, sent.offset(), "offset of the record after retention");
            }
            checkReadFrom(byTime, end, end + 1);
        });
        Kit.step("retention.bytes lowered on a live topic", () -> {
            long end = produceBig(bySize);
            TopicPartition partition = new TopicPartition(bySize, 0);
            get(alter(bySize, false, op(OpType.SET, "retention.bytes", "2097152")));
            // Whole segments go, oldest first, as long as what stays is at
            // least retention.bytes: less than retention.bytes + one segment stays.
            long maxKept = (2097152L + 1048576L) / BIG_VALUE_BYTES;
            long earliest = waitForEarliest(partition, e -> end - e < maxKept, "retention.bytes=2097152");
            check(end - earliest >= 2097152L / (BIG_VALUE_BYTES + 128), "retention.bytes=2097152 kept only "
                    + (end - earliest) + " records of " + BIG_VALUE_BYTES + " bytes");
            checkEq(end, offset(partition, OffsetSpec.latest()), "latest offset after retention.bytes");
            checkReadFrom(bySize, earliest, end);
        });
    }

    // ------------------------------------------------------- DeleteRecords

    static final String RECORDS = "tc-records";
    static final TopicPartition P0 = new TopicPartition(RECORDS, 0), P1 = new TopicPartition(RECORDS, 1);

    /** Records key-P-I = value-P-I, I from 0: 10 in partition 0, 5 in partition 1. */
    void deleteRecords() throws Exception {
        get(admin.createTopics(List.of(new NewTopic(RECORDS, 2, (short) 1).configs(Map.of(
                "retention.ms", "86400000", "segment.bytes", "1048576")))).all());
        List<ProducerRecord<String, String>> records = new ArrayList<>();
        for (int i = 0; i < 10; i++) records.add(new ProducerRecord<>(RECORDS, 0, "key-0-" + i, "value-0-" + i));
        for (int i = 0; i < 5; i++) records.add(new ProducerRecord<>(RECORDS, 1, "key-1-" + i, "value-1-" + i));
        try (KafkaProducer<String, String> producer = Kit.producer(bootstrap)) {
            sendAll(producer, records);
        }
        checkEq("0..10", offsets(P0), "offsets of p0");
        checkEq("0..5", offsets(P1), "offsets of p1");
        get(alter(RECORDS, false, op(OpType.SET, "retention.bytes", "1073741824"), op(OpType.SET, "segment.ms", "3600000"),
                op(OpType.DELETE, "segment.bytes", null)));

        Kit.step("deleteRecords before 4", () -> {
            checkEq(4L, get(admin.deleteRecords(Map.of(P0, RecordsToDelete.beforeOffset(4))).lowWatermarks().get(P0))
                    .lowWatermark(), "low watermark after deleting before 4");
            checkEq("4..10", offsets(P0), "offsets of p0 after deleting before 4");
        });
        Kit.step("deleteRecords below the log start offset", () -> {
            checkEq(4L, get(admin.deleteRecords(Map.of(P0, RecordsToDelete.beforeOffset(2))).lowWatermarks().get(P0))
                    .lowWatermark(), "low watermark after deleting before 2 (already deleted)");
            checkEq("4..10", offsets(P0), "offsets of p0 after deleting before 2");
        });
        Kit.step("deleteRecords beyond the high watermark", () -> {
            expectFailure(admin.deleteRecords(Map.of(P0, RecordsToDelete.beforeOffset(11))).lowWatermarks().get(P0),
                    OffsetOutOfRangeException.class,
                    "The requested offset is not within the range of offsets maintained by the server.",
                    "deleteRecords before 11 (high watermark 10)");
            checkEq("4..10", offsets(P0), "offsets of p0 after the refused delete");
        });
        Kit.step("deleteRecords before -1 (the high watermark)", () -> {
            checkEq(5L, get(admin.deleteRecords(Map.of(P1, RecordsToDelete.beforeOffset(-1))).lowWatermarks().get(P1))
                    .lowWatermark(), "low watermark after deleting before -1");
            checkEq("5..5", offsets(P1), "offsets of p1 after deleting before -1");
        });
        Kit.step("DeleteRecords errors the Admin client retries", () -> {
            checkEq("1 -1", rawDeleteRecords(RECORDS, 1, -2), "DeleteRecords before -2");
            checkEq("1 -1", rawDeleteRecords(RECORDS, 0, 11), "DeleteRecords before 11");
            checkEq("0 4", rawDeleteRecords(RECORDS, 0, 3), "DeleteRecords before 3 (log start 4)");
            checkEq("3 -1", rawDeleteRecords(RECORDS, 2, 1), "DeleteRecords of partition 2 (of 2)");
            checkEq("3 -1", rawDeleteRecords("tc-none", 0, 1), "DeleteRecords of an unknown topic");
        });
        Kit.step("a new consumer starts at the log start offset", () -> checkGroupReads("tc-records-before-restart"));
        Kit.step("a consumer positioned before the log start offset is reset to it", () -> {
            try (KafkaConsumer<String, String> consumer = Kit.consumer(bootstrap, null, null)) {
                consumer.assign(List.of(P0));
                consumer.seek(P0, 1);
                List<Kit.Rec> read = Kit.consume(consumer, 6, 3, "reading p0 from offset 1");
                checkEq(List.of("0@4 key-0-4=value-0-4", "0@5 key-0-5=value-0-5", "0@6 key-0-6=value-0-6",
                        "0@7 key-0-7=value-0-7", "0@8 key-0-8=value-0-8", "0@9 key-0-9=value-0-9"), summary(read),
                        "records read after seeking to 1");
            }
        });
    }

    /** A consumer of a new group (auto.offset.reset=earliest) reads p0 from 4 and nothing of p1. */
    void checkGroupReads(String group) {
        try (KafkaConsumer<String, String> consumer = Kit.consumer(bootstrap, group, "classic")) {
            consumer.subscribe(List.of(RECORDS));
            List<Kit.Rec> read = Kit.consume(consumer, 6, 5, "group " + group);
            checkEq(List.of("0@4 key-0-4=value-0-4", "0@5 key-0-5=value-0-5", "0@6 key-0-6=value-0-6",
                    "0@7 key-0-7=value-0-7", "0@8 key-0-8=value-0-8", "0@9 key-0-9=value-0-9"), summary(read),
                    "records group " + group + " read");
            checkEq(Map.of(P0, 10L, P1, 5L), Map.of(P0, consumer.position(P0), P1, consumer.position(P1)),
                    "positions of group " + group);
        }
    }

    /** After a broker restart: the configs and log start offsets of {@link #deleteRecords} are still there. */
    void afterRestart() throws Exception {
        Kit.step("configs survive a restart", () -> checkEq(map("retention.bytes", "1073741824", "retention.ms",
                "86400000", "segment.ms", "3600000"), overrides(RECORDS), "overrides of " + RECORDS + " after restart"));
        Kit.step("log start offsets survive a restart", () -> {
            checkEq("4..10", offsets(P0), "offsets of p0 after restart");
            checkEq("5..5", offsets(P1), "offsets of p1 after restart");
        });
        Kit.step("a new consumer starts at the log start offset after a restart",
                () -> checkGroupReads("tc-records-after-restart"));
        Kit.step("deleteRecords after a restart", () -> {
            checkEq(7L, get(admin.deleteRecords(Map.of(P0, RecordsToDelete.beforeOffset(7))).lowWatermarks().get(P0))
                    .lowWatermark(), "low watermark after deleting before 7");
            checkEq("7..10", offsets(P0), "offsets of p0 after deleting before 7");
        });
        Kit.step("appends after a restart continue at the end", () -> {
            try (KafkaProducer<String, String> producer = Kit.producer(bootstrap)) {
                checkEq(10L, Kit.send(producer, new ProducerRecord<>(RECORDS, 0, "key-0-10", "value-0-10")).offset(),
                        "offset of the record produced after restart");
                checkEq(5L, Kit.send(producer, new ProducerRecord<>(RECORDS, 1, "key-1-5", "value-1-5")).offset(),
                        "offset of the record produced to p1 after restart");
            }
            try (KafkaConsumer<String, String> consumer = Kit.consumer(bootstrap, "tc-records-last", "classic")) {
                consumer.subscribe(List.of(RECORDS));
                List<Kit.Rec> read = Kit.consume(consumer, 5, 5, "group tc-records-last");
                List<String> got = summary(read);
                got.sort(null);
                checkEq(List.of("0@10 key-0-10=value-0-10", "0@7 key-0-7=value-0-7", "0@8 key-0-8=value-0-8",
                        "0@9 key-0-9=value-0-9", "1@5 key-1-5=value-1-5"), got, "records after restart and delete");
            }
        });
    }
}
