package dev.weir.tests;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.lang.reflect.Method;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import org.apache.kafka.clients.consumer.ConsumerPartitionAssignor;
import org.apache.kafka.clients.consumer.internals.ConsumerProtocol;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.message.AddOffsetsToTxnRequestData;
import org.apache.kafka.common.message.AddOffsetsToTxnResponseData;
import org.apache.kafka.common.message.AddPartitionsToTxnRequestData;
import org.apache.kafka.common.message.AddPartitionsToTxnRequestData.AddPartitionsToTxnTopic;
import org.apache.kafka.common.message.AddPartitionsToTxnRequestData.AddPartitionsToTxnTopicCollection;
import org.apache.kafka.common.message.AddPartitionsToTxnRequestData.AddPartitionsToTxnTransaction;
import org.apache.kafka.common.message.AddPartitionsToTxnRequestData.AddPartitionsToTxnTransactionCollection;
import org.apache.kafka.common.message.AddPartitionsToTxnResponseData;
import org.apache.kafka.common.message.AlterConfigsRequestData;
import org.apache.kafka.common.message.AlterConfigsResponseData;
import org.apache.kafka.common.message.ApiVersionsRequestData;
import org.apache.kafka.common.message.ApiVersionsResponseData;
import org.apache.kafka.common.message.ConsumerGroupDescribeRequestData;
import org.apache.kafka.common.message.ConsumerGroupDescribeResponseData;
import org.apache.kafka.common.message.ConsumerGroupHeartbeatRequestData;
import org.apache.kafka.common.message.ConsumerGroupHeartbeatResponseData;
import org.apache.kafka.common.message.CreatePartitionsRequestData;
import org.apache.kafka.common.message.CreatePartitionsRequestData.CreatePartitionsTopic;
import org.apache.kafka.common.message.CreatePartitionsRequestData.CreatePartitionsTopicCollection;
import org.apache.kafka.common.message.CreatePartitionsResponseData;
import org.apache.kafka.common.message.CreateTopicsRequestData;
import org.apache.kafka.common.message.CreateTopicsRequestData.CreatableTopic;
import org.apache.kafka.common.message.CreateTopicsRequestData.CreatableTopicCollection;
import org.apache.kafka.common.message.CreateTopicsRequestData.CreatableTopicConfig;
import org.apache.kafka.common.message.CreateTopicsRequestData.CreatableTopicConfigCollection;
import org.apache.kafka.common.message.CreateTopicsResponseData;
import org.apache.kafka.common.message.CreateTopicsResponseData.CreatableTopicResult;
import org.apache.kafka.common.message.DeleteGroupsRequestData;
import org.apache.kafka.common.message.DeleteGroupsResponseData;
import org.apache.kafka.common.message.DeleteRecordsRequestData;
import org.apache.kafka.common.message.DeleteRecordsResponseData;
import org.apache.kafka.common.message.DeleteTopicsRequestData;
import org.apache.kafka.common.message.DeleteTopicsRequestData.DeleteTopicState;
import org.apache.kafka.common.message.DeleteTopicsResponseData;
import org.apache.kafka.common.message.DescribeClusterRequestData;
import org.apache.kafka.common.message.DescribeClusterResponseData;
import org.apache.kafka.common.message.DescribeConfigsRequestData;
import org.apache.kafka.common.message.DescribeConfigsRequestData.DescribeConfigsResource;
import org.apache.kafka.common.message.DescribeConfigsResponseData;
import org.apache.kafka.common.message.DescribeTopicPartitionsRequestData;
import org.apache.kafka.common.message.DescribeTopicPartitionsResponseData;
import org.apache.kafka.common.message.DescribeGroupsRequestData;
import org.apache.kafka.common.message.DescribeGroupsResponseData;
import org.apache.kafka.common.message.DescribeProducersRequestData;
import org.apache.kafka.common.message.DescribeProducersResponseData;
import org.apache.kafka.common.message.DescribeTransactionsRequestData;
import org.apache.kafka.common.message.DescribeTransactionsResponseData;
import org.apache.kafka.common.message.EndTxnRequestData;
import org.apache.kafka.common.message.EndTxnResponseData;
import org.apache.kafka.common.message.FetchRequestData;
import org.apache.kafka.common.message.FetchResponseData;
import org.apache.kafka.common.message.FindCoordinatorRequestData;
import org.apache.kafka.common.message.FindCoordinatorResponseData;
import org.apache.kafka.common.message.HeartbeatRequestData;
import org.apache.kafka.common.message.HeartbeatResponseData;
import org.apache.kafka.common.message.IncrementalAlterConfigsRequestData;
import org.apache.kafka.common.message.IncrementalAlterConfigsResponseData;
import org.apache.kafka.common.message.InitProducerIdRequestData;
import org.apache.kafka.common.message.InitProducerIdResponseData;
import org.apache.kafka.common.message.JoinGroupRequestData;
import org.apache.kafka.common.message.JoinGroupRequestData.JoinGroupRequestProtocol;
import org.apache.kafka.common.message.JoinGroupRequestData.JoinGroupRequestProtocolCollection;
import org.apache.kafka.common.message.JoinGroupResponseData;
import org.apache.kafka.common.message.LeaveGroupRequestData;
import org.apache.kafka.common.message.LeaveGroupResponseData;
import org.apache.kafka.common.message.ListGroupsRequestData;
import org.apache.kafka.common.message.ListGroupsResponseData;
import org.apache.kafka.common.message.ListOffsetsRequestData;
import org.apache.kafka.common.message.ListOffsetsResponseData;
import org.apache.kafka.common.message.ListTransactionsRequestData;
import org.apache.kafka.common.message.ListTransactionsResponseData;
import org.apache.kafka.common.message.MetadataRequestData;
import org.apache.kafka.common.message.MetadataResponseData;
import org.apache.kafka.common.message.OffsetCommitRequestData;
import org.apache.kafka.common.message.OffsetCommitResponseData;
import org.apache.kafka.common.message.OffsetDeleteRequestData;
import org.apache.kafka.common.message.OffsetDeleteRequestData.OffsetDeleteRequestTopic;
import org.apache.kafka.common.message.OffsetDeleteRequestData.OffsetDeleteRequestTopicCollection;
import org.apache.kafka.common.message.OffsetDeleteResponseData;
import org.apache.kafka.common.message.OffsetFetchRequestData;
import org.apache.kafka.common.message.OffsetFetchResponseData;
import org.apache.kafka.common.message.ProduceRequestData;
import org.apache.kafka.common.message.ProduceRequestData.TopicProduceData;
import org.apache.kafka.common.message.ProduceRequestData.TopicProduceDataCollection;
import org.apache.kafka.common.message.ProduceResponseData;
import org.apache.kafka.common.message.RequestHeaderData;
import org.apache.kafka.common.message.ResponseHeaderData;
import org.apache.kafka.common.message.SyncGroupRequestData;
import org.apache.kafka.common.message.SyncGroupResponseData;
import org.apache.kafka.common.message.TxnOffsetCommitRequestData;
import org.apache.kafka.common.message.TxnOffsetCommitResponseData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.ApiMessage;
import org.apache.kafka.common.protocol.ByteBufferAccessor;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.protocol.Message;
import org.apache.kafka.common.protocol.ObjectSerializationCache;
import org.apache.kafka.common.record.MemoryRecords;
import org.apache.kafka.common.record.MutableRecordBatch;
import org.apache.kafka.common.record.Record;
import org.apache.kafka.common.record.RecordBatch;
import org.apache.kafka.common.record.SimpleRecord;
import org.apache.kafka.common.utils.Utils;

/**
 * The version sweep: every (API key, version) a broker advertises, spoken
 * and decoded by Kafka's own generated protocol code.
 *
 * <p>Over a plain socket: ApiVersions first (the table of keys and version
 * ranges), then, for every advertised key this program knows (weir's APIs)
 * and every version in its range, a well-formed request with real content,
 * built with Kafka's {@code *RequestData} classes (only fields that exist in
 * that version) and written with the request header version Kafka uses for
 * it. Each response frame is parsed with the response header version
 * ({@code ApiKeys.responseHeaderVersion}), its correlation id checked, and
 * its body decoded by Kafka's generated response class at that version,
 * which must consume exactly the frame (no byte left, no exception). The
 * requests drive each handler's success path (topics created and filled
 * first, real group members and generations, real producer ids and open
 * transactions), and every error code in every response must be in the
 * set expected for that request (NONE, except where a comment says why).
 *
 * <p>Also checked: an ApiVersions request above the advertised maximum gets
 * a v0 UNSUPPORTED_VERSION answer with the table; Produce v0-v2 (advertised
 * because librdkafka needs them, KAFKA-18659) close the connection without
 * an answer, as Kafka 4 does; Produce acks=0 gets no response.
 *
 * <p>Prints one line per (API, version): OK, or FAIL and why; keys the
 * broker advertises that weir does not implement are listed as SKIP. Exits
 * 1 if anything failed. Usage: {@code VersionSweep HOST:PORT}.
 */
public final class VersionSweep {

    /** Upper bound for one response (a JoinGroup waits for the group's initial rebalance delay, 3 s). */
    private static final int RESPONSE_TIMEOUT_MS = 60_000;
    /** Upper bound for waiting until a new topic or a coordinator is usable. */
    private static final long READY_TIMEOUT_MS = 60_000;
    private static final long READY_POLL_MS = 100;
    private static final String CLIENT_ID = "weir-version-sweep";
    /** Session and rebalance timeouts of the classic members: long enough to outlive the sweep. */
    private static final int SESSION_TIMEOUT_MS = 300_000;
    /** Transaction timeout: the transactions left open must outlive the sweep. */
    private static final int TXN_TIMEOUT_MS = 300_000;
    /**
     * First record timestamp (the start of the run, whole seconds: recent,
     * so Kafka's 7-day retention keeps the records); record i of a data
     * partition has BASE_TS + 1000 * i.
     */
    private static final long BASE_TS = System.currentTimeMillis() / 1000 * 1000;
    /** Highest transactional request versions of a Kafka client without KIP-890 part 2. */
    private static final short ADD_PARTITIONS_CLIENT_MAX = 3;
    private static final short PRODUCE_TXN_V1_MAX = 11;
    private static final short END_TXN_V1_MAX = 4;
    private static final short TXN_OFFSET_COMMIT_V1_MAX = 4;

    private static final Set<Errors> NONE = EnumSet.of(Errors.NONE);
    /**
     * What a coordinator answers while the partition of a group or
     * transactional id is not led or loaded yet (Kafka, for seconds after
     * its internal topics are created); clients retry on them.
     */
    private static final Set<Errors> COORDINATOR_NOT_READY = EnumSet.of(Errors.NOT_COORDINATOR,
        Errors.COORDINATOR_LOAD_IN_PROGRESS, Errors.COORDINATOR_NOT_AVAILABLE);

    /**
     * The APIs the sweep builds requests for (weir's), in the order they are
     * swept: creating topics and data before reading them, joining groups
     * before committing, deleting last.
     */
    private final Map<ApiKeys, VersionCase> sweeps = new LinkedHashMap<>();

    private final String host;
    private final int port;
    /** Unique per run, so the sweep can also run against a long-lived broker. */
    private final String run = "sweep-" + Uuid.randomUuid().toString().substring(0, 8);
    private final Map<ApiKeys, short[]> advertised = new TreeMap<>();
    private ApiVersionsResponseData table;
    private int failures;
    private int passes;

    // State from the setup, read by the sweeps.
    private int nodeId;
    /** Two partitions: p0 holds 3 records, p1 holds 2 (see {@link #setUp}). */
    private final String dataTopic = run + "-data";
    /** One partition, written by the Produce sweep. */
    private final String produceTopic = run + "-produce";
    /** One partition, written by transactions. */
    private final String txnTopic = run + "-txn";
    /**
     * One partition holding, in order: 2 plain records (offsets 0-1), a
     * committed transaction's 2 records (2-3) and its marker (4), an
     * aborted transaction's record (5) and its marker (6), 1 plain record
     * (7). See {@link #setUpTransactionalData}.
     */
    private final String txnFetchTopic = run + "-txn-fetch";
    private final List<SimpleRecord> txnFetchRecords = new ArrayList<>();
    private static final List<Long> TXN_FETCH_DATA_OFFSETS = List.of(0L, 1L, 2L, 3L, 5L, 7L);
    private static final long TXN_FETCH_END = 8;
    private static final long TXN_FETCH_ABORTED_FIRST_OFFSET = 5;
    private Producer txnFetchAborter;
    /** Grows by one partition per CreatePartitions version. */
    private final String partitionsTopic = run + "-partitions";
    private final Map<String, Uuid> topicIds = new HashMap<>();
    private final Map<Integer, List<SimpleRecord>> dataRecords = new HashMap<>();
    /** The classic group SyncGroup, Heartbeat, OffsetCommit... use. */
    private final String classicGroup = run + "-classic";
    private Joined classic;
    private byte[] subscription;
    private byte[] assignment;
    private final String txnGroup = run + "-txn-group";

    private VersionSweep(String host, int port) {
        this.host = host;
        this.port = port;
        sweeps.put(ApiKeys.API_VERSIONS, this::apiVersions);
        sweeps.put(ApiKeys.CREATE_TOPICS, this::createTopics);
        sweeps.put(ApiKeys.METADATA, this::metadata);
        sweeps.put(ApiKeys.DESCRIBE_CLUSTER, this::describeCluster);
        sweeps.put(ApiKeys.DESCRIBE_TOPIC_PARTITIONS, this::describeTopicPartitions);
        sweeps.put(ApiKeys.PRODUCE, this::produce);
        sweeps.put(ApiKeys.FETCH, this::fetch);
        sweeps.put(ApiKeys.LIST_OFFSETS, this::listOffsets);
        sweeps.put(ApiKeys.DESCRIBE_CONFIGS, this::describeConfigs);
        sweeps.put(ApiKeys.ALTER_CONFIGS, this::alterConfigs);
        sweeps.put(ApiKeys.INCREMENTAL_ALTER_CONFIGS, this::incrementalAlterConfigs);
        sweeps.put(ApiKeys.DELETE_RECORDS, this::deleteRecords);
        sweeps.put(ApiKeys.CREATE_PARTITIONS, this::createPartitions);
        sweeps.put(ApiKeys.DELETE_TOPICS, this::deleteTopics);
        sweeps.put(ApiKeys.FIND_COORDINATOR, this::findCoordinator);
        sweeps.put(ApiKeys.JOIN_GROUP, this::joinGroup);
        sweeps.put(ApiKeys.SYNC_GROUP, this::syncGroup);
        sweeps.put(ApiKeys.HEARTBEAT, this::heartbeat);
        sweeps.put(ApiKeys.OFFSET_COMMIT, this::offsetCommit);
        sweeps.put(ApiKeys.OFFSET_FETCH, this::offsetFetch);
        sweeps.put(ApiKeys.DESCRIBE_GROUPS, this::describeGroups);
        sweeps.put(ApiKeys.LIST_GROUPS, this::listGroups);
        sweeps.put(ApiKeys.OFFSET_DELETE, this::offsetDelete);
        sweeps.put(ApiKeys.LEAVE_GROUP, this::leaveGroup);
        sweeps.put(ApiKeys.DELETE_GROUPS, this::deleteGroups);
        sweeps.put(ApiKeys.CONSUMER_GROUP_HEARTBEAT, this::consumerGroupHeartbeat);
        sweeps.put(ApiKeys.CONSUMER_GROUP_DESCRIBE, this::consumerGroupDescribe);
        sweeps.put(ApiKeys.INIT_PRODUCER_ID, this::initProducerId);
        sweeps.put(ApiKeys.ADD_PARTITIONS_TO_TXN, this::addPartitionsToTxn);
        sweeps.put(ApiKeys.ADD_OFFSETS_TO_TXN, this::addOffsetsToTxn);
        sweeps.put(ApiKeys.TXN_OFFSET_COMMIT, this::txnOffsetCommit);
        sweeps.put(ApiKeys.END_TXN, this::endTxn);
        sweeps.put(ApiKeys.DESCRIBE_PRODUCERS, this::describeProducers);
        sweeps.put(ApiKeys.DESCRIBE_TRANSACTIONS, this::describeTransactions);
        sweeps.put(ApiKeys.LIST_TRANSACTIONS, this::listTransactions);
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 1 || !args[0].contains(":")) {
            System.err.println("usage: VersionSweep HOST:PORT");
            System.exit(2);
        }
        String[] hostPort = args[0].split(":");
        VersionSweep sweep = new VersionSweep(hostPort[0], Integer.parseInt(hostPort[1]));
        System.exit(sweep.runAll() ? 0 : 1);
    }

    private boolean runAll() throws Exception {
        readTable();
        for (Map.Entry<ApiKeys, short[]> entry : advertised.entrySet()) {
            if (!sweeps.containsKey(entry.getKey())) {
                short[] range = entry.getValue();
                System.out.printf("SKIP %s (key %d) v%d-v%d: not one of weir's APIs%n",
                    entry.getKey().name, entry.getKey().id, range[0], range[1]);
            }
        }
        for (ApiKeys api : sweeps.keySet()) {
            if (!advertised.containsKey(api)) {
                failures++;
                System.out.printf("%s: FAIL not advertised%n", api.name);
            }
        }
        try {
            setUp();
        } catch (Throwable error) {
            System.out.println("SETUP FAIL " + describe(error));
            error.printStackTrace();
            return false;
        }
        for (Map.Entry<ApiKeys, VersionCase> entry : sweeps.entrySet()) {
            ApiKeys api = entry.getKey();
            short[] range = advertised.get(api);
            if (range == null) {
                continue;
            }
            boolean parallel = api == ApiKeys.JOIN_GROUP || api == ApiKeys.LEAVE_GROUP;
            if (parallel) {
                sweepParallel(api, range, entry.getValue());
            } else {
                for (short version = range[0]; version <= range[1]; version++) {
                    final short v = version;
                    report(api, v, () -> entry.getValue().run(v));
                }
            }
            extraChecks(api);
        }
        System.out.printf("%d OK, %d FAILED%n", passes, failures);
        return failures == 0;
    }

    /** Checks beyond one request per version, run after an API's sweep. */
    private void extraChecks(ApiKeys api) {
        if (api == ApiKeys.API_VERSIONS) {
            short above = (short) (maxVersion(api) + 1);
            reportNamed("ApiVersions v" + above + " (above the advertised max)", () -> apiVersionsAboveMax(above));
        } else if (api == ApiKeys.PRODUCE) {
            reportNamed("Produce acks=0 (no response)", this::produceAcksZero);
            reportNamed("Produce read back (every record the sweep produced)", this::produceReadBack);
        }
    }

    // ---------------------------------------------------------------- running

    /** One (API, version): returns a note for the OK line, or throws. */
    @FunctionalInterface
    interface VersionCase {
        String run(short version) throws Exception;
    }

    @FunctionalInterface
    interface Check {
        String run() throws Exception;
    }

    private void report(ApiKeys api, short version, Check check) {
        reportNamed(api.name + " v" + version, check);
    }

    private synchronized void reportNamed(String label, Check check) {
        try {
            String note = check.run();
            passes++;
            System.out.printf("%-40s OK%s%n", label, note == null || note.isEmpty() ? "" : "  (" + note + ")");
        } catch (Throwable error) {
            failures++;
            System.out.printf("%-40s FAIL %s%n", label, describe(error));
        }
        System.out.flush();
    }

    /**
     * Runs every version at once, each on its own connection, and reports
     * them in version order: for APIs whose success path needs a fresh
     * classic group, whose first join waits for the broker's initial
     * rebalance delay (3 s by default, in Kafka and weir).
     */
    private void sweepParallel(ApiKeys api, short[] range, VersionCase body) {
        ExecutorService pool = Executors.newFixedThreadPool(range[1] - range[0] + 1);
        try {
            Map<Short, Future<String>> futures = new TreeMap<>();
            for (short version = range[0]; version <= range[1]; version++) {
                final short v = version;
                futures.put(v, pool.submit(() -> body.run(v)));
            }
            for (Map.Entry<Short, Future<String>> entry : futures.entrySet()) {
                report(api, entry.getKey(), () -> {
                    try {
                        return entry.getValue().get(2L * RESPONSE_TIMEOUT_MS, TimeUnit.MILLISECONDS);
                    } catch (ExecutionException e) {
                        throw e.getCause() instanceof Exception ex ? ex : e;
                    } catch (TimeoutException e) {
                        throw new SweepFailure("no result within " + 2 * RESPONSE_TIMEOUT_MS + " ms");
                    }
                });
            }
        } finally {
            pool.shutdownNow();
        }
    }

    private static String describe(Throwable error) {
        if (error instanceof SweepFailure) {
            return error.getMessage();
        }
        if (error instanceof EOFException) {
            return "connection closed by the broker (" + error.getMessage() + ")";
        }
        if (error instanceof SocketTimeoutException) {
            return "no response within " + RESPONSE_TIMEOUT_MS + " ms";
        }
        StackTraceElement where = error.getStackTrace().length > 0 ? error.getStackTrace()[0] : null;
        return error + (where == null ? "" : " at " + where);
    }

    /** A failed expectation (the message says what was expected and what came). */
    static final class SweepFailure extends RuntimeException {
        SweepFailure(String message) {
            super(message);
        }
    }

    private static void check(boolean condition, String format, Object... args) {
        if (!condition) {
            throw new SweepFailure(String.format(format, args));
        }
    }

    private static <T> void checkEq(T actual, T expected, String what) {
        if (!java.util.Objects.equals(actual, expected)) {
            throw new SweepFailure(what + ": expected " + expected + ", got " + actual);
        }
    }

    private short maxVersion(ApiKeys api) {
        return advertised.get(api)[1];
    }

    private short minVersion(ApiKeys api) {
        return advertised.get(api)[0];
    }

    /** The version a helper call uses: the highest advertised, at most `cap`. */
    private short helperVersion(ApiKeys api, int cap) {
        short version = (short) Math.min(maxVersion(api), cap);
        check(version >= minVersion(api), "%s: no advertised version at or below %d", api.name, cap);
        return version;
    }

    private short helperVersion(ApiKeys api) {
        return maxVersion(api);
    }

    // ------------------------------------------------------------ connection

    /** One TCP connection speaking Kafka's framing; requests answered in order. */
    static final class Conn implements AutoCloseable {
        private final Socket socket;
        private final DataInputStream in;
        private final DataOutputStream out;
        private int nextCorrelationId = 1;

        Conn(String host, int port) throws IOException {
            socket = new Socket();
            socket.connect(new InetSocketAddress(host, port), RESPONSE_TIMEOUT_MS);
            socket.setSoTimeout(RESPONSE_TIMEOUT_MS);
            socket.setTcpNoDelay(true);
            in = new DataInputStream(socket.getInputStream());
            out = new DataOutputStream(socket.getOutputStream());
        }

        /** Writes one request (header version as Kafka's client uses); returns its correlation id. */
        int send(ApiKeys api, short version, ApiMessage body) throws IOException {
            int correlationId = nextCorrelationId++;
            short headerVersion = api.requestHeaderVersion(version);
            RequestHeaderData header = new RequestHeaderData()
                .setRequestApiKey(api.id)
                .setRequestApiVersion(version)
                .setCorrelationId(correlationId);
            if (headerVersion >= 1) {
                header.setClientId(CLIENT_ID);
            }
            ObjectSerializationCache cache = new ObjectSerializationCache();
            int size = header.size(cache, headerVersion) + body.size(cache, version);
            ByteBuffer buffer = ByteBuffer.allocate(4 + size);
            buffer.putInt(size);
            ByteBufferAccessor accessor = new ByteBufferAccessor(buffer);
            header.write(accessor, cache, headerVersion);
            body.write(accessor, cache, version);
            check(!buffer.hasRemaining(), "%s v%d: request encoded short of its size", api.name, version);
            sendRaw(buffer.array());
            return correlationId;
        }

        void sendRaw(byte[] frame) throws IOException {
            out.write(frame);
            out.flush();
        }

        /** Reads one response frame (without its size). */
        byte[] readFrame() throws IOException {
            int size;
            try {
                size = in.readInt();
            } catch (EOFException e) {
                throw new EOFException("before a response");
            }
            check(size >= 4 && size <= 64 << 20, "response frame size %d", size);
            byte[] frame = new byte[size];
            try {
                in.readFully(frame);
            } catch (EOFException e) {
                throw new EOFException("in the middle of a " + size + "-byte response frame");
            }
            return frame;
        }

        /**
         * Reads the response to `correlationId`: header of the version Kafka
         * uses, body decoded by Kafka's class at `version`, which must use
         * exactly the whole frame.
         */
        ApiMessage receive(ApiKeys api, short version, int correlationId) throws IOException {
            byte[] frame = readFrame();
            return decodeResponse(api, version, correlationId, frame);
        }

        @SuppressWarnings("unchecked")
        <T extends ApiMessage> T call(ApiKeys api, short version, ApiMessage request) throws IOException {
            int correlationId = send(api, version, request);
            return (T) receive(api, version, correlationId);
        }

        @Override
        public void close() throws IOException {
            socket.close();
        }
    }

    static ApiMessage decodeResponse(ApiKeys api, short version, int correlationId, byte[] frame) {
        ByteBuffer buffer = ByteBuffer.wrap(frame);
        ByteBufferAccessor accessor = new ByteBufferAccessor(buffer);
        short headerVersion = api.responseHeaderVersion(version);
        ResponseHeaderData header;
        try {
            header = new ResponseHeaderData(accessor, headerVersion);
        } catch (RuntimeException e) {
            throw new SweepFailure(String.format("%s v%d: response header v%d of a %d-byte frame does not decode: %s",
                api.name, version, headerVersion, frame.length, e));
        }
        check(header.correlationId() == correlationId, "%s v%d: response correlation id %d, expected %d",
            api.name, version, header.correlationId(), correlationId);
        int bodyStart = buffer.position();
        ApiMessage body = api.messageType.newResponse();
        try {
            body.read(accessor, version);
        } catch (RuntimeException e) {
            throw new SweepFailure(String.format("%s v%d: the %d-byte response body does not decode: %s",
                api.name, version, frame.length - bodyStart, e));
        }
        check(!buffer.hasRemaining(), "%s v%d: the response body decodes in %d of its %d bytes (%d left over)",
            api.name, version, buffer.position() - bodyStart, frame.length - bodyStart, buffer.remaining());
        return body;
    }

    private Conn connect() throws IOException {
        return new Conn(host, port);
    }

    /** A request on a fresh connection. */
    private <T extends ApiMessage> T call(ApiKeys api, short version, ApiMessage request) throws IOException {
        try (Conn conn = connect()) {
            return conn.call(api, version, request);
        }
    }

    // ------------------------------------------------------------ error codes

    /**
     * Every error code in a response, by path (fields named errorCode or
     * ...ErrorCode, in every nested struct and array), found through the
     * generated classes' accessors.
     */
    static Map<String, Short> errorCodes(Message message) {
        Map<String, Short> codes = new LinkedHashMap<>();
        collectErrorCodes(message, message.getClass().getSimpleName(), codes);
        return codes;
    }

    private static void collectErrorCodes(Object node, String path, Map<String, Short> codes) {
        if (node instanceof Message message) {
            for (Method method : message.getClass().getMethods()) {
                if (method.getParameterCount() != 0 || method.getDeclaringClass() != message.getClass()) {
                    continue;
                }
                String name = method.getName();
                if (name.equals("duplicate") || name.equals("unknownTaggedFields")) {
                    continue;
                }
                Class<?> type = method.getReturnType();
                boolean errorCode = type == short.class && (name.equals("errorCode") || name.endsWith("ErrorCode"));
                boolean nested = Message.class.isAssignableFrom(type) || Collection.class.isAssignableFrom(type);
                if (!errorCode && !nested) {
                    continue;
                }
                Object value;
                try {
                    value = method.invoke(message);
                } catch (ReflectiveOperationException e) {
                    throw new IllegalStateException(e);
                }
                if (errorCode) {
                    codes.put(path + "." + name, (Short) value);
                } else if (value instanceof Collection<?> elements) {
                    int index = 0;
                    for (Object element : elements) {
                        collectErrorCodes(element, path + "." + name + "[" + index++ + "]", codes);
                    }
                } else if (value != null) {
                    collectErrorCodes(value, path + "." + name, codes);
                }
            }
        }
    }

    /** Asserts every error code in `response` is in `allowed`; returns the non-NONE ones seen. */
    private static Set<Errors> expectErrors(Message response, Set<Errors> allowed) {
        List<String> unexpected = new ArrayList<>();
        Set<Errors> seen = new TreeSet<>();
        for (Map.Entry<String, Short> entry : errorCodes(response).entrySet()) {
            Errors error = Errors.forCode(entry.getValue());
            if (!allowed.contains(error)) {
                unexpected.add(entry.getKey() + "=" + entry.getValue() + " " + error.name());
            } else if (error != Errors.NONE) {
                seen.add(error);
            }
        }
        if (!unexpected.isEmpty()) {
            String text = response.toString();
            throw new SweepFailure("unexpected error codes " + unexpected + " (expected " + allowed + ") in "
                + (text.length() > 800 ? text.substring(0, 800) + "..." : text));
        }
        return seen;
    }

    private static Set<Errors> expectNone(Message response) {
        return expectErrors(response, NONE);
    }

    // ------------------------------------------------------------------ setup

    /** ApiVersions v0 (every broker answers it) for the table the sweep walks. */
    private void readTable() throws IOException {
        ApiVersionsResponseData response = call(ApiKeys.API_VERSIONS, (short) 0, new ApiVersionsRequestData());
        checkEq(Errors.forCode(response.errorCode()), Errors.NONE, "ApiVersions v0 error");
        table = response;
        for (ApiVersionsResponseData.ApiVersion api : response.apiKeys()) {
            if (!ApiKeys.hasId(api.apiKey())) {
                System.out.printf("SKIP unknown key %d v%d-v%d%n", api.apiKey(), api.minVersion(), api.maxVersion());
                continue;
            }
            advertised.put(ApiKeys.forId(api.apiKey()), new short[] {api.minVersion(), api.maxVersion()});
        }
    }

    /**
     * Topics with known content, the node id, the coordinators, and the
     * classic group the group APIs use; all through the highest advertised
     * versions.
     */
    private void setUp() throws Exception {
        createTopic(dataTopic, 2);
        createTopic(produceTopic, 1);
        createTopic(txnTopic, 1);
        createTopic(partitionsTopic, 1);
        createTopic(txnFetchTopic, 1);
        readMetadata();
        // The data topic: 3 records in p0 (two batches), 2 in p1 (one batch).
        dataRecords.put(0, new ArrayList<>());
        dataRecords.put(1, new ArrayList<>());
        produceData(0, 0, 2);
        produceData(0, 2, 1);
        produceData(1, 0, 2);
        waitForCoordinator((byte) 0, classicGroup);
        waitForCoordinator((byte) 1, run + "-txn-probe");
        waitForCoordinatorsLoaded();
        subscription = toArray(ConsumerProtocol.serializeSubscription(
            new ConsumerPartitionAssignor.Subscription(List.of(dataTopic))));
        assignment = toArray(ConsumerProtocol.serializeAssignment(new ConsumerPartitionAssignor.Assignment(
            List.of(new TopicPartition(dataTopic, 0), new TopicPartition(dataTopic, 1)))));
        setUpTransactionalData();
        try (Conn conn = connect()) {
            classic = joinNew(conn, classicGroup, helperVersion(ApiKeys.JOIN_GROUP));
        }
    }

    /**
     * Fills the txn-fetch topic (layout at {@link #txnFetchTopic}) with
     * transactions as a pre-KIP-890 client runs them, then waits (bounded)
     * until its last stable offset reaches the end: Kafka writes the
     * markers after answering EndTxn.
     */
    private void setUpTransactionalData() throws Exception {
        for (int i = 0; i < 6; i++) {
            txnFetchRecords.add(new SimpleRecord(BASE_TS + i, bytes("txn-fetch-key-" + i), bytes("txn-fetch-" + i)));
        }
        short produceVersion = helperVersion(ApiKeys.PRODUCE, PRODUCE_TXN_V1_MAX);
        ProduceResponseData plain = call(ApiKeys.PRODUCE, produceVersion, produceRequestById(produceVersion,
            txnFetchTopic, 0, MemoryRecords.withRecords(Compression.NONE, txnFetchRecords.get(0), txnFetchRecords.get(1)),
            (short) -1, null));
        expectNone(plain);
        runTransaction(run + "-fetch-commit", true, txnFetchRecords.get(2), txnFetchRecords.get(3));
        txnFetchAborter = runTransaction(run + "-fetch-abort", false, txnFetchRecords.get(4));
        ProduceResponseData last = call(ApiKeys.PRODUCE, produceVersion, produceRequestById(produceVersion,
            txnFetchTopic, 0, MemoryRecords.withRecords(Compression.NONE, txnFetchRecords.get(5)), (short) -1, null));
        expectNone(last);
        checkEq(last.responses().iterator().next().partitionResponses().get(0).baseOffset(), TXN_FETCH_END - 1,
            "offset of the last txn-fetch record");
        checkEq(waitForStable(txnFetchTopic), TXN_FETCH_END, "end of " + txnFetchTopic);
    }

    /**
     * Waits (bounded) until the last stable offset of partition 0 of
     * `topic` reaches its end (Kafka writes transaction markers after
     * answering EndTxn; weir before); returns that offset.
     */
    private long waitForStable(String topic) throws Exception {
        long deadline = System.currentTimeMillis() + READY_TIMEOUT_MS;
        short version = helperVersion(ApiKeys.LIST_OFFSETS);
        while (true) {
            ListOffsetsResponseData stable = call(ApiKeys.LIST_OFFSETS, version,
                listOffsetsRequest(version, (byte) 1, topic, Map.of(0, -1L)));
            expectNone(stable);
            long stableOffset = stable.topics().get(0).partitions().get(0).offset();
            long end = latestOffset(topic, 0);
            if (stableOffset == end) {
                return end;
            }
            check(System.currentTimeMillis() < deadline, "last stable offset of %s is %d after %d ms, end %d",
                topic, stableOffset, READY_TIMEOUT_MS, end);
            Thread.sleep(READY_POLL_MS);
        }
    }

    /** One transaction of one batch into the txn-fetch topic, committed or aborted. */
    private Producer runTransaction(String transactionalId, boolean commit, SimpleRecord... records) throws Exception {
        Producer producer = initProducer(transactionalId);
        addPartitions(transactionalId, producer, txnFetchTopic);
        short produceVersion = helperVersion(ApiKeys.PRODUCE, PRODUCE_TXN_V1_MAX);
        ProduceResponseData produced = call(ApiKeys.PRODUCE, produceVersion, produceRequestById(produceVersion,
            txnFetchTopic, 0, MemoryRecords.withTransactionalRecords(Compression.NONE, producer.id(), producer.epoch(),
                0, records), (short) -1, transactionalId));
        expectNone(produced);
        EndTxnResponseData ended = call(ApiKeys.END_TXN, helperVersion(ApiKeys.END_TXN, END_TXN_V1_MAX),
            new EndTxnRequestData().setTransactionalId(transactionalId).setProducerId(producer.id())
                .setProducerEpoch(producer.epoch()).setCommitted(commit));
        expectNone(ended);
        waitForStable(txnFetchTopic);
        return producer;
    }

    /** Creates a topic (CreateTopics at the highest version) and waits until Metadata shows its leaders. */
    private void createTopic(String name, int partitions) throws Exception {
        short version = helperVersion(ApiKeys.CREATE_TOPICS);
        CreateTopicsRequestData request = new CreateTopicsRequestData()
            .setTopics(new CreatableTopicCollection(List.of(new CreatableTopic()
                .setName(name).setNumPartitions(partitions).setReplicationFactor((short) 1)).iterator()))
            .setTimeoutMs(30_000);
        CreateTopicsResponseData response = call(ApiKeys.CREATE_TOPICS, version, request);
        expectNone(response);
        CreatableTopicResult result = response.topics().find(name);
        check(result != null, "CreateTopics %s: no result for it", name);
        if (version >= 7) {
            topicIds.put(name, result.topicId());
        }
        waitForTopic(name, partitions);
    }

    /** Polls Metadata (bounded) until every partition of `name` has a leader. */
    private void waitForTopic(String name, int partitions) throws Exception {
        long deadline = System.currentTimeMillis() + READY_TIMEOUT_MS;
        String last = "";
        while (true) {
            MetadataResponseData response = call(ApiKeys.METADATA, helperVersion(ApiKeys.METADATA), metadataRequest(
                helperVersion(ApiKeys.METADATA), List.of(name), false));
            MetadataResponseData.MetadataResponseTopic topic = response.topics().find(name);
            if (topic != null && topic.errorCode() == 0 && topic.partitions().size() == partitions
                && topic.partitions().stream().allMatch(p -> p.errorCode() == 0 && p.leaderId() >= 0)) {
                if (!Uuid.ZERO_UUID.equals(topic.topicId())) {
                    topicIds.put(name, topic.topicId());
                }
                return;
            }
            last = String.valueOf(topic);
            check(System.currentTimeMillis() < deadline, "topic %s not ready within %d ms: %s", name,
                READY_TIMEOUT_MS, last);
            Thread.sleep(READY_POLL_MS);
        }
    }

    private void readMetadata() throws Exception {
        short version = helperVersion(ApiKeys.METADATA);
        MetadataResponseData response = call(ApiKeys.METADATA, version, metadataRequest(version,
            List.of(dataTopic), false));
        expectNone(response);
        check(response.brokers().size() == 1, "Metadata: expected one broker, got %s", response.brokers());
        nodeId = response.brokers().iterator().next().nodeId();
    }

    /** Appends records [from, from + count) of data partition `partition` in one batch. */
    private void produceData(int partition, int from, int count) throws Exception {
        List<SimpleRecord> records = new ArrayList<>();
        for (int i = from; i < from + count; i++) {
            records.add(new SimpleRecord(BASE_TS + 1000L * i,
                bytes("key-" + partition + "-" + i), bytes("value-" + partition + "-" + i),
                new Header[] {new RecordHeader("h", bytes("header-" + i))}));
        }
        short version = helperVersion(ApiKeys.PRODUCE);
        ProduceResponseData response = call(ApiKeys.PRODUCE, version, produceRequestById(version, dataTopic, partition,
            MemoryRecords.withRecords(Compression.NONE, records.toArray(new SimpleRecord[0])), (short) -1, null));
        expectNone(response);
        long base = response.responses().iterator().next().partitionResponses().get(0).baseOffset();
        checkEq(base, (long) from, "setup produce base offset of " + dataTopic + "/" + partition);
        dataRecords.get(partition).addAll(records);
    }

    /** FindCoordinator until it answers NONE (Kafka creates its internal topic on the first request). */
    private void waitForCoordinator(byte keyType, String key) throws Exception {
        short version = helperVersion(ApiKeys.FIND_COORDINATOR);
        long deadline = System.currentTimeMillis() + READY_TIMEOUT_MS;
        while (true) {
            FindCoordinatorResponseData response = call(ApiKeys.FIND_COORDINATOR, version,
                findCoordinatorRequest(version, keyType, List.of(key)));
            short code = version >= 4 ? response.coordinators().get(0).errorCode() : response.errorCode();
            if (code == 0) {
                return;
            }
            check(System.currentTimeMillis() < deadline, "coordinator of key type %d not available within %d ms: %s",
                keyType, READY_TIMEOUT_MS, response);
            Thread.sleep(READY_POLL_MS);
        }
    }

    /**
     * Waits (bounded) until every partition of `__consumer_offsets` and
     * `__transaction_state` is led and loaded, and producer ids are handed
     * out: Kafka does this for seconds after creating its internal topics
     * (answering NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS meanwhile),
     * and fetches its first block of producer ids from the controller.
     * Clients retry on those; the sweep waits here once, so that each
     * request it checks gets the answer of a ready broker.
     */
    private void waitForCoordinatorsLoaded() throws Exception {
        long deadline = System.currentTimeMillis() + READY_TIMEOUT_MS;
        while (true) {
            InitProducerIdResponseData producerId = call(ApiKeys.INIT_PRODUCER_ID,
                helperVersion(ApiKeys.INIT_PRODUCER_ID), new InitProducerIdRequestData()
                    .setTransactionalId(null).setTransactionTimeoutMs(TXN_TIMEOUT_MS));
            if (producerId.errorCode() == 0) {
                break;
            }
            check(COORDINATOR_NOT_READY.contains(Errors.forCode(producerId.errorCode()))
                && System.currentTimeMillis() < deadline, "no producer id within %d ms: %s", READY_TIMEOUT_MS, producerId);
            Thread.sleep(READY_POLL_MS);
        }
        // The first group request creates weir's __consumer_offsets (Kafka's
        // is created by FindCoordinator), the first transactional one its
        // __transaction_state.
        call(ApiKeys.DESCRIBE_GROUPS, helperVersion(ApiKeys.DESCRIBE_GROUPS),
            new DescribeGroupsRequestData().setGroups(List.of(classicGroup)));
        initProducer(run + "-probe");
        List<String> groups = keysForEveryPartition("__consumer_offsets", "-group-probe-");
        List<String> transactionalIds = keysForEveryPartition("__transaction_state", "-txn-probe-");
        while (true) {
            DescribeGroupsResponseData described = call(ApiKeys.DESCRIBE_GROUPS, helperVersion(ApiKeys.DESCRIBE_GROUPS),
                new DescribeGroupsRequestData().setGroups(groups));
            DescribeTransactionsResponseData transactions = call(ApiKeys.DESCRIBE_TRANSACTIONS,
                helperVersion(ApiKeys.DESCRIBE_TRANSACTIONS),
                new DescribeTransactionsRequestData().setTransactionalIds(transactionalIds));
            ListGroupsResponseData listed = call(ApiKeys.LIST_GROUPS, helperVersion(ApiKeys.LIST_GROUPS),
                new ListGroupsRequestData());
            ListTransactionsResponseData listedTransactions = call(ApiKeys.LIST_TRANSACTIONS,
                helperVersion(ApiKeys.LIST_TRANSACTIONS), new ListTransactionsRequestData());
            boolean ready = true;
            for (Message response : List.of(described, transactions, listed, listedTransactions)) {
                for (short code : errorCodes(response).values()) {
                    ready &= !COORDINATOR_NOT_READY.contains(Errors.forCode(code));
                }
            }
            if (ready) {
                return;
            }
            check(System.currentTimeMillis() < deadline, "coordinators not loaded within %d ms: %s %s",
                READY_TIMEOUT_MS, described, transactions);
            Thread.sleep(READY_POLL_MS);
        }
    }

    /**
     * One key per partition of the internal topic `topic`, placed as Kafka
     * and weir place groups and transactional ids: abs(hashCode) % partitions.
     */
    private List<String> keysForEveryPartition(String topic, String infix) throws Exception {
        short version = helperVersion(ApiKeys.METADATA);
        MetadataResponseData metadata = call(ApiKeys.METADATA, version, metadataRequest(version, List.of(topic), false));
        MetadataResponseData.MetadataResponseTopic internal = metadata.topics().find(topic);
        check(internal != null && internal.errorCode() == 0 && !internal.partitions().isEmpty(),
            "internal topic %s not in Metadata: %s", topic, internal);
        check(internal.isInternal(), "%s is not marked internal in Metadata", topic);
        int partitions = internal.partitions().size();
        Map<Integer, String> keys = new TreeMap<>();
        for (int i = 0; keys.size() < partitions && i < 1_000_000; i++) {
            String key = run + infix + i;
            keys.putIfAbsent(Utils.abs(key.hashCode()) % partitions, key);
        }
        check(keys.size() == partitions, "no key found for every partition of %s", topic);
        return new ArrayList<>(keys.values());
    }

    // ------------------------------------------------------- request builders

    private ProduceRequestData produceRequestById(short version, String topic, int partition, MemoryRecords records,
                                                  short acks, String transactionalId) {
        return produceRequest(version, topic, topicIds.get(topic), partition, records, acks, transactionalId);
    }

    /** Produce v13+ names the topic by id, earlier versions by name. */
    private static ProduceRequestData produceRequest(short version, String topic, Uuid topicId, int partition,
                                                     MemoryRecords records, short acks, String transactionalId) {
        TopicProduceData data = new TopicProduceData()
            .setPartitionData(List.of(new ProduceRequestData.PartitionProduceData()
                .setIndex(partition).setRecords(records)));
        if (version >= 13) {
            check(topicId != null, "no topic id known for %s", topic);
            data.setTopicId(topicId);
        } else {
            data.setName(topic);
        }
        return new ProduceRequestData()
            .setTransactionalId(transactionalId)
            .setAcks(acks)
            .setTimeoutMs(30_000)
            .setTopicData(new TopicProduceDataCollection(List.of(data).iterator()));
    }

    private static MetadataRequestData metadataRequest(short version, List<String> topics, boolean autoCreate) {
        MetadataRequestData request = new MetadataRequestData().setTopics(new ArrayList<>());
        for (String topic : topics) {
            request.topics().add(new MetadataRequestData.MetadataRequestTopic().setName(topic));
        }
        if (version >= 4) {
            request.setAllowAutoTopicCreation(autoCreate);
        }
        return request;
    }

    private static FindCoordinatorRequestData findCoordinatorRequest(short version, byte keyType, List<String> keys) {
        FindCoordinatorRequestData request = new FindCoordinatorRequestData();
        if (version >= 1) {
            request.setKeyType(keyType);
        }
        if (version >= 4) {
            request.setCoordinatorKeys(keys);
        } else {
            request.setKey(keys.get(0));
        }
        return request;
    }

    /** A classic member: its group, id and generation. */
    record Joined(String group, String memberId, int generation) {
    }

    private JoinGroupRequestData joinRequest(short version, String group, String memberId) {
        JoinGroupRequestData request = new JoinGroupRequestData()
            .setGroupId(group)
            .setSessionTimeoutMs(SESSION_TIMEOUT_MS)
            .setMemberId(memberId)
            .setProtocolType("consumer")
            .setProtocols(new JoinGroupRequestProtocolCollection(List.of(
                new JoinGroupRequestProtocol().setName("range").setMetadata(subscription)).iterator()));
        if (version >= 1) {
            request.setRebalanceTimeoutMs(SESSION_TIMEOUT_MS);
        }
        if (version >= 8) {
            request.setReason("version sweep");
        }
        return request;
    }

    /**
     * Joins `group` (new, empty) as its only member at `version`: v4+ first
     * gets MEMBER_ID_REQUIRED and its member id (KIP-394), then joins with
     * it; the answer comes after the initial rebalance delay.
     */
    private Joined joinNew(Conn conn, String group, short version) throws IOException {
        String memberId = "";
        if (version >= 4) {
            JoinGroupResponseData first = conn.call(ApiKeys.JOIN_GROUP, version, joinRequest(version, group, ""));
            // Expected: a new member must rejoin with the id it was given (KIP-394).
            expectErrors(first, EnumSet.of(Errors.MEMBER_ID_REQUIRED));
            checkEq(Errors.forCode(first.errorCode()), Errors.MEMBER_ID_REQUIRED, "first JoinGroup error");
            check(!first.memberId().isEmpty(), "MEMBER_ID_REQUIRED without a member id");
            memberId = first.memberId();
        }
        JoinGroupResponseData response = conn.call(ApiKeys.JOIN_GROUP, version, joinRequest(version, group, memberId));
        expectNone(response);
        check(!response.memberId().isEmpty(), "JoinGroup: empty member id");
        if (version >= 4) {
            checkEq(response.memberId(), memberId, "JoinGroup member id");
        }
        checkEq(response.leader(), response.memberId(), "JoinGroup leader (the only member)");
        checkEq(response.protocolName(), "range", "JoinGroup protocol name");
        if (version >= 7) {
            checkEq(response.protocolType(), "consumer", "JoinGroup protocol type");
        }
        check(response.generationId() >= 1, "JoinGroup generation %d", response.generationId());
        checkEq(response.members().size(), 1, "JoinGroup members (given to the leader)");
        JoinGroupResponseData.JoinGroupResponseMember member = response.members().get(0);
        checkEq(member.memberId(), response.memberId(), "JoinGroup member's id");
        check(Arrays.equals(member.metadata(), subscription), "JoinGroup member metadata differs from the subscription");
        return new Joined(group, response.memberId(), response.generationId());
    }

    // ------------------------------------------------------------ ApiVersions

    private String apiVersions(short version) throws Exception {
        ApiVersionsRequestData request = new ApiVersionsRequestData();
        if (version >= 3) {
            request.setClientSoftwareName(CLIENT_ID).setClientSoftwareVersion("1.0");
        }
        ApiVersionsResponseData response = call(ApiKeys.API_VERSIONS, version, request);
        expectNone(response);
        checkEq(versionTable(response), versionTable(table), "ApiVersions table");
        return "";
    }

    private static Map<Short, String> versionTable(ApiVersionsResponseData response) {
        Map<Short, String> versions = new TreeMap<>();
        for (ApiVersionsResponseData.ApiVersion api : response.apiKeys()) {
            versions.put(api.apiKey(), api.minVersion() + "-" + api.maxVersion());
        }
        return versions;
    }

    /**
     * ApiVersions above the advertised maximum (body written as v3, as a
     * newer client does): Kafka answers in v0 with UNSUPPORTED_VERSION and a
     * table holding only ApiVersions' own range, so the client can retry
     * with a version both speak.
     */
    private String apiVersionsAboveMax(short version) throws Exception {
        ApiVersionsRequestData body = new ApiVersionsRequestData()
            .setClientSoftwareName(CLIENT_ID).setClientSoftwareVersion("1.0");
        RequestHeaderData header = new RequestHeaderData()
            .setRequestApiKey(ApiKeys.API_VERSIONS.id).setRequestApiVersion(version)
            .setCorrelationId(42).setClientId(CLIENT_ID);
        ObjectSerializationCache cache = new ObjectSerializationCache();
        int size = header.size(cache, (short) 2) + body.size(cache, (short) 3);
        ByteBuffer buffer = ByteBuffer.allocate(4 + size);
        buffer.putInt(size);
        ByteBufferAccessor accessor = new ByteBufferAccessor(buffer);
        header.write(accessor, cache, (short) 2);
        body.write(accessor, cache, (short) 3);
        try (Conn conn = connect()) {
            conn.sendRaw(buffer.array());
            ApiVersionsResponseData response = (ApiVersionsResponseData)
                decodeResponse(ApiKeys.API_VERSIONS, (short) 0, 42, conn.readFrame());
            // Expected: the version is above what the broker speaks.
            expectErrors(response, EnumSet.of(Errors.UNSUPPORTED_VERSION));
            checkEq(Errors.forCode(response.errorCode()), Errors.UNSUPPORTED_VERSION, "error");
            short[] range = advertised.get(ApiKeys.API_VERSIONS);
            checkEq(versionTable(response), Map.of(ApiKeys.API_VERSIONS.id, range[0] + "-" + range[1]),
                "table in the v0 answer (ApiVersions only, as Kafka)");
        }
        return "v0 UNSUPPORTED_VERSION with ApiVersions' range";
    }

    // ----------------------------------------------------------- CreateTopics

    private String createTopics(short version) throws Exception {
        String name = run + "-create-v" + version;
        CreatableTopicConfigCollection configs = new CreatableTopicConfigCollection();
        configs.add(new CreatableTopicConfig().setName("segment.bytes").setValue("1048576"));
        CreateTopicsRequestData request = new CreateTopicsRequestData()
            .setTopics(new CreatableTopicCollection(List.of(new CreatableTopic()
                .setName(name).setNumPartitions(2).setReplicationFactor((short) 1).setConfigs(configs)).iterator()))
            .setTimeoutMs(30_000);
        if (version >= 1) {
            request.setValidateOnly(false);
        }
        CreateTopicsResponseData response = call(ApiKeys.CREATE_TOPICS, version, request);
        expectNone(response);
        CreatableTopicResult result = response.topics().find(name);
        check(result != null && response.topics().size() == 1, "CreateTopics results: %s", response.topics());
        if (version >= 5) {
            checkEq(result.numPartitions(), 2, "numPartitions");
            checkEq(result.replicationFactor(), (short) 1, "replicationFactor");
            String segmentBytes = result.configs().stream().filter(c -> c.name().equals("segment.bytes"))
                .map(CreateTopicsResponseData.CreatableTopicConfigs::value).findFirst().orElse(null);
            checkEq(segmentBytes, "1048576", "segment.bytes in the returned configs");
        }
        if (version >= 7) {
            check(!Uuid.ZERO_UUID.equals(result.topicId()), "CreateTopics v7+: no topic id");
        }
        waitForTopic(name, 2);
        return "";
    }

    // --------------------------------------------------------------- Metadata

    /**
     * The data topic by name, and a new topic auto-created by this request
     * (Kafka's default allows it; from v4 the request says so).
     */
    private String metadata(short version) throws Exception {
        String auto = run + "-auto-v" + version;
        MetadataRequestData request = metadataRequest(version, List.of(dataTopic, auto), true);
        if (version >= 8) {
            request.setIncludeTopicAuthorizedOperations(false);
            if (version <= 10) {
                request.setIncludeClusterAuthorizedOperations(false);
            }
        }
        MetadataResponseData response = call(ApiKeys.METADATA, version, request);
        MetadataResponseData.MetadataResponseTopic data = response.topics().find(dataTopic);
        check(data != null, "Metadata: %s missing", dataTopic);
        expectNone(data);
        checkEq(response.brokers().size(), 1, "brokers");
        MetadataResponseData.MetadataResponseBroker broker = response.brokers().iterator().next();
        checkEq(broker.nodeId(), nodeId, "broker node id");
        checkEq(broker.host(), host, "broker host");
        checkEq(broker.port(), port, "broker port");
        if (version >= 1) {
            checkEq(response.controllerId(), nodeId, "controller id");
            checkEq(data.isInternal(), false, "isInternal");
        }
        checkEq(data.partitions().size(), 2, "partitions of " + dataTopic);
        for (MetadataResponseData.MetadataResponsePartition partition : data.partitions()) {
            checkEq(partition.leaderId(), nodeId, "leader of partition " + partition.partitionIndex());
            checkEq(partition.replicaNodes(), List.of(nodeId), "replicas");
            checkEq(partition.isrNodes(), List.of(nodeId), "isr");
        }
        if (version >= 10) {
            checkEq(data.topicId(), topicIds.get(dataTopic), "topic id");
        }
        MetadataResponseData.MetadataResponseTopic created = response.topics().find(auto);
        check(created != null, "Metadata: auto-created %s missing", auto);
        // Expected: Kafka answers UNKNOWN_TOPIC_OR_PARTITION (or
        // LEADER_NOT_AVAILABLE) while the topic it was asked for is being
        // created; weir creates it before answering. Either way it must
        // exist right after (waitForTopic asks without auto-creation).
        Set<Errors> seen = expectErrors(created,
            EnumSet.of(Errors.NONE, Errors.LEADER_NOT_AVAILABLE, Errors.UNKNOWN_TOPIC_OR_PARTITION));
        checkEq(response.topics().size(), 2, "topics in the answer");
        waitForTopic(auto, 1);

        // Every topic: an empty list in v0, null from v1.
        MetadataRequestData everything = metadataRequest(version, List.of(), false);
        if (version >= 1) {
            everything.setTopics(null);
        }
        MetadataResponseData all = call(ApiKeys.METADATA, version, everything);
        expectNone(all);
        for (String name : List.of(dataTopic, produceTopic, auto)) {
            check(all.topics().find(name) != null, "Metadata of every topic lacks %s", name);
        }
        checkEq(all.topics().find(dataTopic).partitions().size(), 2, "partitions of " + dataTopic + " (every topic)");
        if (version >= 1) {
            checkEq(all.topics().find("__consumer_offsets").isInternal(), true, "__consumer_offsets internal");
        }
        return (seen.isEmpty() ? "" : "auto-created topic: " + seen + ", ") + all.topics().size() + " topics in all";
    }

    // -------------------------------------- DescribeCluster, DescribeTopicPartitions

    private String describeCluster(short version) throws Exception {
        DescribeClusterRequestData request = new DescribeClusterRequestData().setIncludeClusterAuthorizedOperations(false);
        if (version >= 1) {
            request.setEndpointType((byte) 1); // brokers
        }
        if (version >= 2) {
            request.setIncludeFencedBrokers(true);
        }
        DescribeClusterResponseData response = call(ApiKeys.DESCRIBE_CLUSTER, version, request);
        expectNone(response);
        if (version >= 1) {
            checkEq(response.endpointType(), (byte) 1, "endpoint type");
        }
        check(response.clusterId() != null && !response.clusterId().isEmpty(), "no cluster id");
        checkEq(response.controllerId(), nodeId, "controller id");
        checkEq(response.brokers().size(), 1, "brokers");
        DescribeClusterResponseData.DescribeClusterBroker broker = response.brokers().iterator().next();
        checkEq(broker.brokerId(), nodeId, "broker id");
        checkEq(broker.host(), host, "broker host");
        checkEq(broker.port(), port, "broker port");
        if (version >= 2) {
            checkEq(broker.isFenced(), false, "fenced");
        }
        return "";
    }

    private String describeTopicPartitions(short version) throws Exception {
        DescribeTopicPartitionsResponseData response = call(ApiKeys.DESCRIBE_TOPIC_PARTITIONS, version,
            new DescribeTopicPartitionsRequestData().setTopics(List.of(
                new DescribeTopicPartitionsRequestData.TopicRequest().setName(dataTopic))));
        expectNone(response);
        checkEq(response.topics().size(), 1, "topics");
        DescribeTopicPartitionsResponseData.DescribeTopicPartitionsResponseTopic topic =
            response.topics().iterator().next();
        checkEq(topic.name(), dataTopic, "topic");
        checkEq(topic.topicId(), topicIds.get(dataTopic), "topic id");
        checkEq(topic.partitions().size(), 2, "partitions");
        for (int i = 0; i < 2; i++) {
            DescribeTopicPartitionsResponseData.DescribeTopicPartitionsResponsePartition partition =
                topic.partitions().get(i);
            checkEq(partition.partitionIndex(), i, "partition index");
            checkEq(partition.leaderId(), nodeId, "leader");
            checkEq(partition.replicaNodes(), List.of(nodeId), "replicas");
            checkEq(partition.isrNodes(), List.of(nodeId), "isr");
        }
        check(response.nextCursor() == null, "next cursor %s (everything fits)", response.nextCursor());
        return "";
    }

    // ---------------------------------------------------------------- Produce

    /** The next offset of the produce topic (every accepted batch is counted). */
    private long produceNext;
    private final List<SimpleRecord> produced = new ArrayList<>();

    private String produce(short version) throws Exception {
        if (version < 3) {
            return produceOldFormat(version);
        }
        List<SimpleRecord> records = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            records.add(new SimpleRecord(BASE_TS + version * 10L + i, bytes("produce-v" + version + "-" + i),
                bytes("value-v" + version + "-" + i), new Header[] {new RecordHeader("v", bytes("" + version))}));
        }
        // acks=1 on odd versions, -1 (all) on even ones.
        short acks = (short) (version % 2 == 1 ? 1 : -1);
        ProduceResponseData response = call(ApiKeys.PRODUCE, version, produceRequestById(version, produceTopic, 0,
            MemoryRecords.withRecords(Compression.NONE, records.toArray(new SimpleRecord[0])), acks, null));
        expectNone(response);
        checkEq(response.responses().size(), 1, "topics in the answer");
        ProduceResponseData.TopicProduceResponse topic = response.responses().iterator().next();
        if (version >= 13) {
            checkEq(topic.topicId(), topicIds.get(produceTopic), "topic id");
        } else {
            checkEq(topic.name(), produceTopic, "topic");
        }
        checkEq(topic.partitionResponses().size(), 1, "partitions in the answer");
        ProduceResponseData.PartitionProduceResponse partition = topic.partitionResponses().get(0);
        checkEq(partition.index(), 0, "partition");
        checkEq(partition.baseOffset(), produceNext, "base offset");
        checkEq(partition.logAppendTimeMs(), -1L, "logAppendTime (CreateTime topic)");
        if (version >= 5) {
            checkEq(partition.logStartOffset(), 0L, "logStartOffset");
        }
        if (version >= 8) {
            checkEq(partition.recordErrors().size(), 0, "record errors");
        }
        produceNext += records.size();
        produced.addAll(records);
        return "acks=" + acks;
    }

    /**
     * Produce v0-v2 (message format v0/v1), written by hand (Kafka 4's
     * classes no longer speak them): Kafka 4 advertises them only because
     * librdkafka needs them in the table (KAFKA-18659) and closes the
     * connection without an answer when they are used.
     */
    private String produceOldFormat(short version) throws Exception {
        byte magic = version == 0 ? RecordBatch.MAGIC_VALUE_V0 : RecordBatch.MAGIC_VALUE_V1;
        MemoryRecords records = MemoryRecords.withRecords(magic, Compression.NONE,
            new SimpleRecord(BASE_TS, bytes("old-key"), bytes("old-value")));
        byte[] recordBytes = new byte[records.sizeInBytes()];
        records.buffer().duplicate().get(recordBytes);
        byte[] client = bytes(CLIENT_ID);
        byte[] topic = bytes(produceTopic);
        int size = 2 + 2 + 4 + 2 + client.length // header v1
            + 2 + 4 + 4 + 2 + topic.length + 4 + 4 + 4 + recordBytes.length;
        ByteBuffer frame = ByteBuffer.allocate(4 + size);
        frame.putInt(size);
        frame.putShort(ApiKeys.PRODUCE.id).putShort(version).putInt(7);
        frame.putShort((short) client.length).put(client);
        frame.putShort((short) -1).putInt(30_000); // acks, timeout
        frame.putInt(1).putShort((short) topic.length).put(topic); // one topic
        frame.putInt(1).putInt(0).putInt(recordBytes.length).put(recordBytes); // partition 0
        check(!frame.hasRemaining(), "Produce v%d: frame size miscounted", version);
        try (Conn conn = connect()) {
            conn.sendRaw(frame.array());
            byte[] answer;
            try {
                answer = conn.readFrame();
            } catch (EOFException expected) {
                return "connection closed without an answer, as Kafka 4 does";
            }
            throw new SweepFailure("answered with a " + answer.length + "-byte frame; Kafka 4 closes the connection");
        }
    }

    /**
     * acks=0 at the highest version: no response (the next frame on the
     * connection answers the request after it), and the batch is stored.
     */
    private String produceAcksZero() throws Exception {
        short version = helperVersion(ApiKeys.PRODUCE);
        SimpleRecord record = new SimpleRecord(BASE_TS + 999, bytes("acks0-key"), bytes("acks0-value"));
        try (Conn conn = connect()) {
            conn.send(ApiKeys.PRODUCE, version, produceRequestById(version, produceTopic, 0,
                MemoryRecords.withRecords(Compression.NONE, record), (short) 0, null));
            int next = conn.send(ApiKeys.API_VERSIONS, (short) 0, new ApiVersionsRequestData());
            // The frame after the acks=0 produce must be the ApiVersions answer.
            ApiVersionsResponseData response = (ApiVersionsResponseData)
                conn.receive(ApiKeys.API_VERSIONS, (short) 0, next);
            expectNone(response);
        }
        produceNext += 1;
        produced.add(record);
        // The append of an acks=0 batch is not acknowledged: wait (bounded) for it.
        long deadline = System.currentTimeMillis() + READY_TIMEOUT_MS;
        while (latestOffset(produceTopic, 0) != produceNext) {
            check(System.currentTimeMillis() < deadline, "acks=0 batch not visible within %d ms (end offset %d, expected %d)",
                READY_TIMEOUT_MS, latestOffset(produceTopic, 0), produceNext);
            Thread.sleep(READY_POLL_MS);
        }
        return "";
    }

    private long latestOffset(String topic, int partition) throws Exception {
        short version = helperVersion(ApiKeys.LIST_OFFSETS);
        ListOffsetsResponseData response = call(ApiKeys.LIST_OFFSETS, version, listOffsetsRequest(version, (byte) 0,
            topic, Map.of(partition, -1L)));
        expectNone(response);
        return response.topics().get(0).partitions().get(0).offset();
    }

    /** Everything the Produce sweep wrote, read back exactly (nothing from Produce v0-v2). */
    private String produceReadBack() throws Exception {
        List<Record> records = fetchAll(produceTopic, 0, 0, produceNext);
        checkEq(records.size(), produced.size(), "records read back");
        for (int i = 0; i < records.size(); i++) {
            checkEq((long) records.get(i).offset(), (long) i, "offset");
            expectRecord(records.get(i), produced.get(i), produceTopic + " offset " + i);
        }
        return records.size() + " records";
    }

    private static void expectRecord(Record actual, SimpleRecord expected, String where) {
        checkEq(actual.timestamp(), expected.timestamp(), where + " timestamp");
        checkEq(string(actual.key()), string(expected.key()), where + " key");
        checkEq(string(actual.value()), string(expected.value()), where + " value");
        List<String> actualHeaders = new ArrayList<>();
        for (Header header : actual.headers()) {
            actualHeaders.add(header.key() + "=" + new String(header.value(), StandardCharsets.UTF_8));
        }
        List<String> expectedHeaders = new ArrayList<>();
        for (Header header : expected.headers()) {
            expectedHeaders.add(header.key() + "=" + new String(header.value(), StandardCharsets.UTF_8));
        }
        checkEq(actualHeaders, expectedHeaders, where + " headers");
    }

    // ------------------------------------------------------------------ Fetch

    private FetchRequestData fetchRequest(short version, byte isolation, String topic, Map<Integer, Long> offsets) {
        FetchRequestData.FetchTopic fetchTopic = new FetchRequestData.FetchTopic().setPartitions(new ArrayList<>());
        if (version >= 13) {
            fetchTopic.setTopicId(topicIds.get(topic));
        } else {
            fetchTopic.setTopic(topic);
        }
        for (Map.Entry<Integer, Long> entry : offsets.entrySet()) {
            fetchTopic.partitions().add(new FetchRequestData.FetchPartition()
                .setPartition(entry.getKey()).setFetchOffset(entry.getValue()).setPartitionMaxBytes(1 << 20));
        }
        FetchRequestData request = new FetchRequestData()
            .setMaxWaitMs(500)
            .setMinBytes(1)
            .setMaxBytes(4 << 20)
            .setIsolationLevel(isolation)
            .setTopics(List.of(fetchTopic));
        if (version >= 7) {
            // A sessionless full fetch (no KIP-227 session is created).
            request.setSessionId(0).setSessionEpoch(-1);
        }
        return request;
    }

    /** Reads [from, end) of one partition with Fetch at the highest version. */
    private List<Record> fetchAll(String topic, int partition, long from, long end) throws Exception {
        short version = helperVersion(ApiKeys.FETCH);
        List<Record> records = new ArrayList<>();
        long offset = from;
        for (int round = 0; round < 100 && offset < end; round++) {
            FetchResponseData response = call(ApiKeys.FETCH, version,
                fetchRequest(version, (byte) 0, topic, Map.of(partition, offset)));
            expectNone(response);
            for (Record record : ((MemoryRecords) response.responses().get(0).partitions().get(0).records()).records()) {
                if (record.offset() >= offset && record.offset() < end) {
                    records.add(record);
                }
            }
            offset = from + records.size();
        }
        return records;
    }

    /**
     * Both data partitions: p0 from 0 (3 records in two batches), p1 from 1
     * (its batch holds offsets 0-1: offset 0 is skipped as clients do).
     * read_committed on odd versions (no transactions: same data).
     */
    private String fetch(short version) throws Exception {
        byte isolation = (byte) (version % 2);
        Map<Integer, Long> offsets = new TreeMap<>(Map.of(0, 0L, 1, 1L));
        FetchResponseData response = call(ApiKeys.FETCH, version, fetchRequest(version, isolation, dataTopic, offsets));
        expectNone(response);
        if (version >= 7) {
            checkEq(response.sessionId(), 0, "session id of a sessionless fetch");
        }
        checkEq(response.responses().size(), 1, "topics in the answer");
        FetchResponseData.FetchableTopicResponse topic = response.responses().get(0);
        if (version >= 13) {
            checkEq(topic.topicId(), topicIds.get(dataTopic), "topic id");
        } else {
            checkEq(topic.topic(), dataTopic, "topic");
        }
        checkEq(topic.partitions().size(), 2, "partitions in the answer");
        for (FetchResponseData.PartitionData partition : topic.partitions()) {
            int index = partition.partitionIndex();
            List<SimpleRecord> expected = dataRecords.get(index);
            String where = dataTopic + "/" + index;
            checkEq(partition.highWatermark(), (long) expected.size(), where + " high watermark");
            checkEq(partition.lastStableOffset(), (long) expected.size(), where + " last stable offset");
            if (version >= 5) {
                checkEq(partition.logStartOffset(), 0L, where + " log start offset");
            }
            check(partition.abortedTransactions() == null || partition.abortedTransactions().isEmpty(),
                "%s aborted transactions %s", where, partition.abortedTransactions());
            if (version >= 11) {
                checkEq(partition.preferredReadReplica(), -1, where + " preferred read replica");
            }
            long from = offsets.get(index);
            List<Record> records = new ArrayList<>();
            for (Record record : ((MemoryRecords) partition.records()).records()) {
                if (record.offset() >= from) {
                    records.add(record);
                }
            }
            checkEq(records.size(), expected.size() - (int) from, where + " records from offset " + from);
            for (Record record : records) {
                expectRecord(record, expected.get((int) record.offset()), where + " offset " + record.offset());
            }
        }
        fetchTransactional(version);
        fetchAtEnd(version);
        if (version >= 7) {
            fetchSession(version);
        }
        return (isolation == 1 ? "read_committed" : "read_uncommitted")
            + ", transactions read_committed, empty fetch at the end" + (version >= 7 ? ", fetch session" : "");
    }

    /**
     * read_committed over the txn-fetch topic: every batch up to the last
     * stable offset comes back (the client drops aborted data), with the
     * aborted transaction listed.
     */
    private void fetchTransactional(short version) throws Exception {
        FetchResponseData response = call(ApiKeys.FETCH, version,
            fetchRequest(version, (byte) 1, txnFetchTopic, Map.of(0, 0L)));
        expectNone(response);
        FetchResponseData.PartitionData partition = response.responses().get(0).partitions().get(0);
        String where = txnFetchTopic + "/0 read_committed";
        checkEq(partition.highWatermark(), TXN_FETCH_END, where + " high watermark");
        checkEq(partition.lastStableOffset(), TXN_FETCH_END, where + " last stable offset");
        check(partition.abortedTransactions() != null && partition.abortedTransactions().size() == 1,
            "%s: aborted transactions %s, expected one", where, partition.abortedTransactions());
        FetchResponseData.AbortedTransaction aborted = partition.abortedTransactions().get(0);
        checkEq(aborted.producerId(), txnFetchAborter.id(), where + " aborted producer id");
        checkEq(aborted.firstOffset(), TXN_FETCH_ABORTED_FIRST_OFFSET, where + " aborted first offset");
        List<Long> offsets = new ArrayList<>();
        List<Long> controlOffsets = new ArrayList<>();
        int index = 0;
        for (MutableRecordBatch batch : ((MemoryRecords) partition.records()).batches()) {
            for (Record record : batch) {
                if (batch.isControlBatch()) {
                    controlOffsets.add(record.offset());
                } else {
                    offsets.add(record.offset());
                    check(index < txnFetchRecords.size(), "%s: more data records than produced", where);
                    expectRecord(record, txnFetchRecords.get(index++), where + " offset " + record.offset());
                }
            }
        }
        checkEq(offsets, TXN_FETCH_DATA_OFFSETS, where + " data offsets");
        checkEq(controlOffsets, List.of(4L, 6L), where + " marker offsets");
    }

    /** A partition fetched at its end: no records (after at most max wait), no error. */
    private void fetchAtEnd(short version) throws Exception {
        FetchRequestData request = fetchRequest(version, (byte) 0, dataTopic, Map.of(1, 2L)).setMaxWaitMs(100);
        FetchResponseData response = call(ApiKeys.FETCH, version, request);
        expectNone(response);
        FetchResponseData.PartitionData partition = response.responses().get(0).partitions().get(0);
        checkEq(partition.highWatermark(), 2L, "high watermark of data p1");
        checkEq(partition.records() == null ? 0 : partition.records().sizeInBytes(), 0, "bytes at the end of p1");
    }

    /**
     * KIP-227: a full fetch opening a session (epoch 0) at the end of data
     * p0 gets a session id and p0 (no records); an incremental fetch (epoch
     * 1) naming no partitions answers only changed ones (none: nothing was
     * appended); epoch -1 closes the session.
     */
    private void fetchSession(short version) throws Exception {
        try (Conn conn = connect()) {
            FetchRequestData open = fetchRequest(version, (byte) 0, dataTopic, Map.of(0, 3L)).setSessionEpoch(0)
                .setMaxWaitMs(100);
            FetchResponseData opened = conn.call(ApiKeys.FETCH, version, open);
            expectNone(opened);
            check(opened.sessionId() != 0, "no session id for a fetch opening a session");
            checkEq(opened.responses().size(), 1, "topics in the session's full fetch");
            checkEq(opened.responses().get(0).partitions().get(0).highWatermark(), 3L, "high watermark of p0");
            FetchRequestData incremental = fetchRequest(version, (byte) 0, dataTopic, Map.of())
                .setTopics(List.of()).setSessionId(opened.sessionId()).setSessionEpoch(1).setMaxWaitMs(100);
            FetchResponseData next = conn.call(ApiKeys.FETCH, version, incremental);
            expectNone(next);
            checkEq(next.sessionId(), opened.sessionId(), "session id of the incremental fetch");
            checkEq(next.responses().size(), 0, "topics in an incremental fetch without changes");
            FetchRequestData close = fetchRequest(version, (byte) 0, dataTopic, Map.of())
                .setTopics(List.of()).setSessionId(opened.sessionId()).setSessionEpoch(-1).setMaxWaitMs(100);
            FetchResponseData closed = conn.call(ApiKeys.FETCH, version, close);
            expectNone(closed);
        }
    }

    // ------------------------------------------------------------ ListOffsets

    private static ListOffsetsRequestData listOffsetsRequest(short version, byte isolation, String topic,
                                                             Map<Integer, Long> timestamps) {
        ListOffsetsRequestData.ListOffsetsTopic listTopic = new ListOffsetsRequestData.ListOffsetsTopic()
            .setName(topic).setPartitions(new ArrayList<>());
        for (Map.Entry<Integer, Long> entry : new TreeMap<>(timestamps).entrySet()) {
            listTopic.partitions().add(new ListOffsetsRequestData.ListOffsetsPartition()
                .setPartitionIndex(entry.getKey()).setTimestamp(entry.getValue()));
        }
        ListOffsetsRequestData request = new ListOffsetsRequestData().setReplicaId(-1).setTopics(List.of(listTopic));
        if (version >= 2) {
            request.setIsolationLevel(isolation);
        }
        if (version >= 10) {
            request.setTimeoutMs(30_000);
        }
        return request;
    }

    /**
     * Two requests on existing partitions: latest of p0 and a timestamp
     * lookup in p1; earliest of p0 and (v7+) max timestamp of p1.
     */
    private String listOffsets(short version) throws Exception {
        byte isolation = (byte) (version % 2);
        long secondOfP1 = dataRecords.get(1).get(1).timestamp();
        ListOffsetsResponseData first = call(ApiKeys.LIST_OFFSETS, version, listOffsetsRequest(version, isolation,
            dataTopic, Map.of(0, -1L, 1, secondOfP1)));
        expectNone(first);
        Map<Integer, ListOffsetsResponseData.ListOffsetsPartitionResponse> answers = partitionsOf(first);
        checkEq(answers.get(0).offset(), 3L, "latest offset of p0");
        checkEq(answers.get(0).timestamp(), -1L, "timestamp of a latest lookup");
        checkEq(answers.get(1).offset(), 1L, "offset of p1's second timestamp");
        checkEq(answers.get(1).timestamp(), secondOfP1, "timestamp found in p1");

        long p1Query = version >= 7 ? -3L : -1L; // -3: MAX_TIMESTAMP (KIP-734)
        ListOffsetsResponseData second = call(ApiKeys.LIST_OFFSETS, version, listOffsetsRequest(version, isolation,
            dataTopic, Map.of(0, -2L, 1, p1Query)));
        expectNone(second);
        answers = partitionsOf(second);
        checkEq(answers.get(0).offset(), 0L, "earliest offset of p0");
        if (version >= 7) {
            checkEq(answers.get(1).offset(), 1L, "offset of p1's max timestamp");
            checkEq(answers.get(1).timestamp(), secondOfP1, "max timestamp of p1");
        } else {
            checkEq(answers.get(1).offset(), 2L, "latest offset of p1");
        }
        return "";
    }

    private static Map<Integer, ListOffsetsResponseData.ListOffsetsPartitionResponse> partitionsOf(
        ListOffsetsResponseData response) {
        checkEq(response.topics().size(), 1, "topics in the answer");
        Map<Integer, ListOffsetsResponseData.ListOffsetsPartitionResponse> partitions = new TreeMap<>();
        for (ListOffsetsResponseData.ListOffsetsPartitionResponse partition : response.topics().get(0).partitions()) {
            partitions.put(partition.partitionIndex(), partition);
        }
        checkEq(partitions.keySet(), Set.of(0, 1), "partitions in the answer");
        return partitions;
    }

    // -------------------------------------------------------- DescribeConfigs

    /** The data topic (all configs) and the broker (one config); synonyms on even versions. */
    private String describeConfigs(short version) throws Exception {
        DescribeConfigsRequestData request = new DescribeConfigsRequestData().setResources(List.of(
            new DescribeConfigsResource().setResourceType((byte) 2).setResourceName(dataTopic)
                .setConfigurationKeys(null),
            new DescribeConfigsResource().setResourceType((byte) 4).setResourceName(String.valueOf(nodeId))
                .setConfigurationKeys(List.of("message.max.bytes"))));
        if (version >= 1) {
            request.setIncludeSynonyms(version % 2 == 0);
        }
        if (version >= 3) {
            request.setIncludeDocumentation(true);
        }
        DescribeConfigsResponseData response = call(ApiKeys.DESCRIBE_CONFIGS, version, request);
        expectNone(response);
        checkEq(response.results().size(), 2, "results");
        DescribeConfigsResponseData.DescribeConfigsResult topic = response.results().get(0);
        checkEq(topic.resourceName(), dataTopic, "first result");
        check(topic.configs().stream().anyMatch(c -> c.name().equals("segment.bytes") && c.value() != null),
            "topic configs lack segment.bytes: %s", topic.configs());
        DescribeConfigsResponseData.DescribeConfigsResult broker = response.results().get(1);
        checkEq(broker.resourceName(), String.valueOf(nodeId), "second result");
        checkEq(broker.configs().size(), 1, "broker configs asked for");
        checkEq(broker.configs().get(0).name(), "message.max.bytes", "broker config");
        return "";
    }

    // ------------------------------------------ AlterConfigs, IncrementalAlterConfigs

    /** A topic of its own whose configs the config sweeps change (created on first use). */
    private final String configsTopic = run + "-configs";
    private boolean configsTopicCreated;

    private void ensureConfigsTopic() throws Exception {
        if (!configsTopicCreated) {
            createTopic(configsTopic, 1);
            configsTopicCreated = true;
        }
    }

    /** The named configs of a topic as "name=value SOURCE" (DescribeConfigs at the highest version). */
    private List<String> topicConfigs(String topic, String... names) throws Exception {
        short version = helperVersion(ApiKeys.DESCRIBE_CONFIGS);
        DescribeConfigsResponseData response = call(ApiKeys.DESCRIBE_CONFIGS, version, new DescribeConfigsRequestData()
            .setResources(List.of(new DescribeConfigsResource().setResourceType((byte) 2).setResourceName(topic)
                .setConfigurationKeys(List.of(names)))));
        expectNone(response);
        checkEq(response.results().size(), 1, "DescribeConfigs results");
        Map<String, String> found = new TreeMap<>();
        for (DescribeConfigsResponseData.DescribeConfigsResourceResult config : response.results().get(0).configs()) {
            found.put(config.name(), config.name() + "=" + config.value() + " " + configSource(config.configSource()));
        }
        List<String> out = new ArrayList<>();
        for (String name : names) {
            out.add(found.get(name));
        }
        return out;
    }

    private static String configSource(byte source) {
        return switch (source) {
            case 1 -> "DYNAMIC_TOPIC_CONFIG";
            case 4 -> "STATIC_BROKER_CONFIG";
            case 5 -> "DEFAULT_CONFIG";
            default -> "source " + source;
        };
    }

    /**
     * A validateOnly AlterConfigs (nothing changes), then the real one:
     * the topic's whole set becomes retention.ms (one value per version)
     * and segment.bytes, read back with DescribeConfigs.
     */
    private String alterConfigs(short version) throws Exception {
        ensureConfigsTopic();
        List<String> before = topicConfigs(configsTopic, "retention.ms", "segment.bytes");
        String retention = Long.toString(3_600_000L + version);
        AlterConfigsResponseData validated = call(ApiKeys.ALTER_CONFIGS, version,
            alterConfigsRequest(configsTopic, true, "retention.ms", "1", "segment.bytes", "2097152"));
        expectNone(validated);
        checkEq(topicConfigs(configsTopic, "retention.ms", "segment.bytes"), before, "configs after validateOnly");
        AlterConfigsResponseData response = call(ApiKeys.ALTER_CONFIGS, version,
            alterConfigsRequest(configsTopic, false, "retention.ms", retention, "segment.bytes", "1048576"));
        expectNone(response);
        checkEq(response.responses().size(), 1, "results");
        AlterConfigsResponseData.AlterConfigsResourceResponse result = response.responses().get(0);
        checkEq(result.resourceName(), configsTopic, "result resource");
        checkEq(result.resourceType(), (byte) 2, "result resource type");
        checkEq(topicConfigs(configsTopic, "retention.ms", "segment.bytes"), List.of(
            "retention.ms=" + retention + " DYNAMIC_TOPIC_CONFIG", "segment.bytes=1048576 DYNAMIC_TOPIC_CONFIG"),
            "configs after AlterConfigs");
        return "retention.ms=" + retention;
    }

    private static AlterConfigsRequestData alterConfigsRequest(String topic, boolean validateOnly,
                                                               String... namesAndValues) {
        AlterConfigsRequestData.AlterableConfigCollection configs = new AlterConfigsRequestData.AlterableConfigCollection();
        for (int i = 0; i < namesAndValues.length; i += 2) {
            configs.add(new AlterConfigsRequestData.AlterableConfig()
                .setName(namesAndValues[i]).setValue(namesAndValues[i + 1]));
        }
        AlterConfigsRequestData.AlterConfigsResourceCollection resources =
            new AlterConfigsRequestData.AlterConfigsResourceCollection();
        resources.add(new AlterConfigsRequestData.AlterConfigsResource()
            .setResourceType((byte) 2).setResourceName(topic).setConfigs(configs));
        return new AlterConfigsRequestData().setResources(resources).setValidateOnly(validateOnly);
    }

    /**
     * SET retention.ms (one value per version), DELETE segment.bytes and
     * APPEND delete to cleanup.policy in one request, read back with
     * DescribeConfigs; then a validateOnly SET that changes nothing.
     */
    private String incrementalAlterConfigs(short version) throws Exception {
        ensureConfigsTopic();
        String retention = Long.toString(7_200_000L + version);
        IncrementalAlterConfigsResponseData response = call(ApiKeys.INCREMENTAL_ALTER_CONFIGS, version,
            incrementalAlterConfigsRequest(configsTopic, false,
                new String[] {"retention.ms", "0", retention},
                new String[] {"segment.bytes", "1", null},
                new String[] {"cleanup.policy", "2", "delete"}));
        expectNone(response);
        checkEq(response.responses().size(), 1, "results");
        IncrementalAlterConfigsResponseData.AlterConfigsResourceResponse result = response.responses().get(0);
        checkEq(result.resourceName(), configsTopic, "result resource");
        checkEq(result.resourceType(), (byte) 2, "result resource type");
        List<String> expected = List.of("retention.ms=" + retention + " DYNAMIC_TOPIC_CONFIG",
            "segment.bytes=1073741824 DEFAULT_CONFIG", "cleanup.policy=delete DYNAMIC_TOPIC_CONFIG");
        checkEq(topicConfigs(configsTopic, "retention.ms", "segment.bytes", "cleanup.policy"), expected,
            "configs after IncrementalAlterConfigs");
        IncrementalAlterConfigsResponseData validated = call(ApiKeys.INCREMENTAL_ALTER_CONFIGS, version,
            incrementalAlterConfigsRequest(configsTopic, true, new String[] {"retention.ms", "0", "1"}));
        expectNone(validated);
        checkEq(topicConfigs(configsTopic, "retention.ms", "segment.bytes", "cleanup.policy"), expected,
            "configs after validateOnly");
        return "retention.ms=" + retention;
    }

    /** Operations as {name, operation (0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT), value}. */
    private static IncrementalAlterConfigsRequestData incrementalAlterConfigsRequest(String topic, boolean validateOnly,
                                                                                     String[]... operations) {
        IncrementalAlterConfigsRequestData.AlterableConfigCollection configs =
            new IncrementalAlterConfigsRequestData.AlterableConfigCollection();
        for (String[] operation : operations) {
            configs.add(new IncrementalAlterConfigsRequestData.AlterableConfig().setName(operation[0])
                .setConfigOperation(Byte.parseByte(operation[1])).setValue(operation[2]));
        }
        IncrementalAlterConfigsRequestData.AlterConfigsResourceCollection resources =
            new IncrementalAlterConfigsRequestData.AlterConfigsResourceCollection();
        resources.add(new IncrementalAlterConfigsRequestData.AlterConfigsResource()
            .setResourceType((byte) 2).setResourceName(topic).setConfigs(configs));
        return new IncrementalAlterConfigsRequestData().setResources(resources).setValidateOnly(validateOnly);
    }

    // ---------------------------------------------------------- DeleteRecords

    /** A topic of its own (one partition), filled on first use with two records per DeleteRecords version. */
    private final String deleteRecordsTopic = run + "-delete-records";
    private boolean deleteRecordsTopicFilled;

    /** The records before 2 * (version - min + 1) are deleted: the log start offset grows by two per version. */
    private String deleteRecords(short version) throws Exception {
        short first = minVersion(ApiKeys.DELETE_RECORDS);
        long end = 2L * (maxVersion(ApiKeys.DELETE_RECORDS) - first + 1) + 1;
        if (!deleteRecordsTopicFilled) {
            createTopic(deleteRecordsTopic, 1);
            List<SimpleRecord> records = new ArrayList<>();
            for (int i = 0; i < end; i++) {
                records.add(new SimpleRecord(BASE_TS + i, bytes("dr-key-" + i), bytes("dr-value-" + i)));
            }
            short produceVersion = helperVersion(ApiKeys.PRODUCE);
            ProduceResponseData produced = call(ApiKeys.PRODUCE, produceVersion, produceRequestById(produceVersion,
                deleteRecordsTopic, 0, MemoryRecords.withRecords(Compression.NONE, records.toArray(new SimpleRecord[0])),
                (short) -1, null));
            expectNone(produced);
            checkEq(latestOffset(deleteRecordsTopic, 0), end, "end of " + deleteRecordsTopic);
            deleteRecordsTopicFilled = true;
        }
        long before = 2L * (version - first + 1);
        DeleteRecordsResponseData response = call(ApiKeys.DELETE_RECORDS, version, new DeleteRecordsRequestData()
            .setTimeoutMs(30_000)
            .setTopics(List.of(new DeleteRecordsRequestData.DeleteRecordsTopic().setName(deleteRecordsTopic)
                .setPartitions(List.of(new DeleteRecordsRequestData.DeleteRecordsPartition()
                    .setPartitionIndex(0).setOffset(before))))));
        expectNone(response);
        checkEq(response.topics().size(), 1, "topics in the answer");
        DeleteRecordsResponseData.DeleteRecordsTopicResult topic = response.topics().iterator().next();
        checkEq(topic.name(), deleteRecordsTopic, "topic");
        checkEq(topic.partitions().size(), 1, "partitions in the answer");
        DeleteRecordsResponseData.DeleteRecordsPartitionResult partition = topic.partitions().iterator().next();
        checkEq(partition.partitionIndex(), 0, "partition");
        checkEq(partition.lowWatermark(), before, "low watermark");
        short listVersion = helperVersion(ApiKeys.LIST_OFFSETS);
        ListOffsetsResponseData earliest = call(ApiKeys.LIST_OFFSETS, listVersion,
            listOffsetsRequest(listVersion, (byte) 0, deleteRecordsTopic, Map.of(0, -2L)));
        expectNone(earliest);
        checkEq(earliest.topics().get(0).partitions().get(0).offset(), before, "earliest offset after DeleteRecords");
        checkEq(latestOffset(deleteRecordsTopic, 0), end, "latest offset after DeleteRecords");
        return "log start " + before;
    }

    // ------------------------------------------------------- CreatePartitions

    /** The partitions topic grows by one per version: 1 -> 2 at the lowest version. */
    private String createPartitions(short version) throws Exception {
        int count = version - minVersion(ApiKeys.CREATE_PARTITIONS) + 2;
        CreatePartitionsRequestData request = new CreatePartitionsRequestData()
            .setTopics(new CreatePartitionsTopicCollection(List.of(new CreatePartitionsTopic()
                .setName(partitionsTopic).setCount(count).setAssignments(null)).iterator()))
            .setTimeoutMs(30_000)
            .setValidateOnly(false);
        CreatePartitionsResponseData response = call(ApiKeys.CREATE_PARTITIONS, version, request);
        expectNone(response);
        checkEq(response.results().size(), 1, "results");
        checkEq(response.results().get(0).name(), partitionsTopic, "result topic");
        waitForTopic(partitionsTopic, count);
        return count + " partitions";
    }

    // ----------------------------------------------------------- DeleteTopics

    /** A topic of its own per version; v6+ deletes one by name and one by topic id. */
    private String deleteTopics(short version) throws Exception {
        String name = run + "-delete-v" + version;
        String byId = run + "-delete-by-id-v" + version;
        createTopic(name, 1);
        DeleteTopicsRequestData request = new DeleteTopicsRequestData().setTimeoutMs(30_000);
        if (version >= 6) {
            createTopic(byId, 1);
            request.setTopics(List.of(new DeleteTopicState().setName(name),
                new DeleteTopicState().setName(null).setTopicId(topicIds.get(byId))));
        } else {
            request.setTopicNames(List.of(name));
        }
        DeleteTopicsResponseData response = call(ApiKeys.DELETE_TOPICS, version, request);
        expectNone(response);
        checkEq(response.responses().size(), version >= 6 ? 2 : 1, "results");
        for (DeleteTopicsResponseData.DeletableTopicResult result : response.responses()) {
            if (version >= 6 && result.topicId().equals(topicIds.get(byId))) {
                check(result.name() == null || result.name().equals(byId), "name of the topic deleted by id: %s",
                    result.name());
            } else {
                checkEq(result.name(), name, "deleted topic");
            }
        }
        return version >= 6 ? "one by name, one by topic id" : "";
    }

    // -------------------------------------------------------- FindCoordinator

    /** A group key, or a transactional id on versions 2 and 5 (key type from v1, batched from v4). */
    private String findCoordinator(short version) throws Exception {
        byte keyType = (byte) (version == 2 || version == 5 ? 1 : 0);
        List<String> keys = version >= 4 ? List.of(classicGroup, run + "-other") : List.of(classicGroup);
        FindCoordinatorResponseData response = call(ApiKeys.FIND_COORDINATOR, version,
            findCoordinatorRequest(version, keyType, keys));
        expectNone(response);
        if (version >= 4) {
            checkEq(response.coordinators().size(), keys.size(), "coordinators");
            for (int i = 0; i < keys.size(); i++) {
                FindCoordinatorResponseData.Coordinator coordinator = response.coordinators().get(i);
                checkEq(coordinator.key(), keys.get(i), "coordinator key");
                checkEq(coordinator.nodeId(), nodeId, "coordinator node");
                checkEq(coordinator.host(), host, "coordinator host");
                checkEq(coordinator.port(), port, "coordinator port");
            }
        } else {
            checkEq(response.nodeId(), nodeId, "coordinator node");
            checkEq(response.host(), host, "coordinator host");
            checkEq(response.port(), port, "coordinator port");
        }
        return keyType == 1 ? "transaction key" : "group key";
    }

    // ---------------------------------------------------------- classic group

    /** A new group per version, joined by a new member (all versions at once: each waits for the initial delay). */
    private String joinGroup(short version) throws Exception {
        try (Conn conn = connect()) {
            Joined joined = joinNew(conn, run + "-join-v" + version, version);
            return "generation " + joined.generation() + (version >= 4 ? ", after MEMBER_ID_REQUIRED" : "");
        }
    }

    /** The classic group's leader hands out (and gets back) its assignment. */
    private String syncGroup(short version) throws Exception {
        SyncGroupRequestData request = new SyncGroupRequestData()
            .setGroupId(classicGroup)
            .setGenerationId(classic.generation())
            .setMemberId(classic.memberId())
            .setAssignments(List.of(new SyncGroupRequestData.SyncGroupRequestAssignment()
                .setMemberId(classic.memberId()).setAssignment(assignment)));
        if (version >= 5) {
            request.setProtocolType("consumer").setProtocolName("range");
        }
        SyncGroupResponseData response = call(ApiKeys.SYNC_GROUP, version, request);
        expectNone(response);
        check(Arrays.equals(response.assignment(), assignment), "SyncGroup: assignment differs from the one sent");
        if (version >= 5) {
            checkEq(response.protocolType(), "consumer", "protocol type");
            checkEq(response.protocolName(), "range", "protocol name");
        }
        return "";
    }

    private String heartbeat(short version) throws Exception {
        HeartbeatResponseData response = call(ApiKeys.HEARTBEAT, version, new HeartbeatRequestData()
            .setGroupId(classicGroup).setGenerationId(classic.generation()).setMemberId(classic.memberId()));
        expectNone(response);
        return "";
    }

    /** Last offsets committed per "topic/partition" in the classic group. */
    private final Map<String, Long> committed = new TreeMap<>();

    /** Commits by the member of the classic group: both data partitions and the produce topic. */
    private String offsetCommit(short version) throws Exception {
        long base = version * 100L;
        Map<String, Long> offsets = new TreeMap<>(Map.of(dataTopic + "/0", base + 1, dataTopic + "/1", base + 2,
            produceTopic + "/0", base + 3));
        OffsetCommitRequestData request = new OffsetCommitRequestData()
            .setGroupId(classicGroup)
            .setGenerationIdOrMemberEpoch(classic.generation())
            .setMemberId(classic.memberId())
            .setTopics(List.of(
                new OffsetCommitRequestData.OffsetCommitRequestTopic().setName(dataTopic).setPartitions(List.of(
                    commitPartition(0, base + 1, version), commitPartition(1, base + 2, version))),
                new OffsetCommitRequestData.OffsetCommitRequestTopic().setName(produceTopic).setPartitions(List.of(
                    commitPartition(0, base + 3, version)))));
        OffsetCommitResponseData response = call(ApiKeys.OFFSET_COMMIT, version, request);
        expectNone(response);
        int partitions = response.topics().stream().mapToInt(t -> t.partitions().size()).sum();
        checkEq(partitions, 3, "partitions in the answer");
        committed.putAll(offsets);
        return "";
    }

    private static OffsetCommitRequestData.OffsetCommitRequestPartition commitPartition(int partition, long offset,
                                                                                        short version) {
        return new OffsetCommitRequestData.OffsetCommitRequestPartition()
            .setPartitionIndex(partition).setCommittedOffset(offset).setCommittedMetadata("v" + version);
    }

    /**
     * The classic group's commits: by topic on odd versions, all topics
     * (null, v2+) on even ones; v8+ through the batched groups array.
     */
    private String offsetFetch(short version) throws Exception {
        boolean all = version >= 2 && version % 2 == 0;
        OffsetFetchRequestData request = new OffsetFetchRequestData();
        if (version >= 8) {
            OffsetFetchRequestData.OffsetFetchRequestGroup group = new OffsetFetchRequestData.OffsetFetchRequestGroup()
                .setGroupId(classicGroup)
                .setTopics(all ? null : List.of(
                    new OffsetFetchRequestData.OffsetFetchRequestTopics().setName(dataTopic).setPartitionIndexes(List.of(0, 1)),
                    new OffsetFetchRequestData.OffsetFetchRequestTopics().setName(produceTopic).setPartitionIndexes(List.of(0))));
            request.setGroups(List.of(group));
        } else {
            request.setGroupId(classicGroup).setTopics(all ? null : List.of(
                new OffsetFetchRequestData.OffsetFetchRequestTopic().setName(dataTopic).setPartitionIndexes(List.of(0, 1)),
                new OffsetFetchRequestData.OffsetFetchRequestTopic().setName(produceTopic).setPartitionIndexes(List.of(0))));
        }
        if (version >= 7) {
            request.setRequireStable(true);
        }
        OffsetFetchResponseData response = call(ApiKeys.OFFSET_FETCH, version, request);
        expectNone(response);
        checkEq(fetchedOffsets(response, version), committed, "committed offsets");
        return all ? "all topics" : "by topic";
    }

    /** "topic/partition" -> committed offset, from either response layout. */
    private static Map<String, Long> fetchedOffsets(OffsetFetchResponseData response, short version) {
        Map<String, Long> offsets = new TreeMap<>();
        if (version >= 8) {
            checkEq(response.groups().size(), 1, "groups in the answer");
            for (OffsetFetchResponseData.OffsetFetchResponseTopics topic : response.groups().get(0).topics()) {
                for (OffsetFetchResponseData.OffsetFetchResponsePartitions p : topic.partitions()) {
                    offsets.put(topic.name() + "/" + p.partitionIndex(), p.committedOffset());
                }
            }
        } else {
            for (OffsetFetchResponseData.OffsetFetchResponseTopic topic : response.topics()) {
                for (OffsetFetchResponseData.OffsetFetchResponsePartition p : topic.partitions()) {
                    offsets.put(topic.name() + "/" + p.partitionIndex(), p.committedOffset());
                }
            }
        }
        return offsets;
    }

    private String describeGroups(short version) throws Exception {
        DescribeGroupsRequestData request = new DescribeGroupsRequestData().setGroups(List.of(classicGroup));
        if (version >= 3) {
            request.setIncludeAuthorizedOperations(false);
        }
        DescribeGroupsResponseData response = call(ApiKeys.DESCRIBE_GROUPS, version, request);
        expectNone(response);
        checkEq(response.groups().size(), 1, "groups");
        DescribeGroupsResponseData.DescribedGroup group = response.groups().get(0);
        checkEq(group.groupId(), classicGroup, "group id");
        checkEq(group.groupState(), "Stable", "state");
        checkEq(group.protocolType(), "consumer", "protocol type");
        checkEq(group.protocolData(), "range", "protocol");
        checkEq(group.members().size(), 1, "members");
        DescribeGroupsResponseData.DescribedGroupMember member = group.members().get(0);
        checkEq(member.memberId(), classic.memberId(), "member id");
        checkEq(member.clientId(), CLIENT_ID, "client id");
        checkEq(member.clientHost(), "/127.0.0.1", "client host");
        check(Arrays.equals(member.memberMetadata(), subscription), "member metadata differs from the subscription");
        check(Arrays.equals(member.memberAssignment(), assignment), "member assignment differs from the one synced");
        return "";
    }

    /** v4+ filters by state (Stable), v5+ by type (classic). */
    private String listGroups(short version) throws Exception {
        ListGroupsRequestData request = new ListGroupsRequestData();
        if (version >= 4) {
            request.setStatesFilter(List.of("Stable"));
        }
        if (version >= 5) {
            request.setTypesFilter(List.of("classic"));
        }
        ListGroupsResponseData response = call(ApiKeys.LIST_GROUPS, version, request);
        expectNone(response);
        ListGroupsResponseData.ListedGroup group = response.groups().stream()
            .filter(g -> g.groupId().equals(classicGroup)).findFirst()
            .orElseThrow(() -> new SweepFailure(classicGroup + " not listed in " + response.groups()));
        checkEq(group.protocolType(), "consumer", "protocol type");
        if (version >= 4) {
            checkEq(group.groupState(), "Stable", "state");
            for (ListGroupsResponseData.ListedGroup listed : response.groups()) {
                check(listed.groupState().equalsIgnoreCase("Stable"), "%s listed in state %s (filtered on Stable)",
                    listed.groupId(), listed.groupState());
            }
        }
        if (version >= 5) {
            checkEq(group.groupType().toLowerCase(), "classic", "type");
        }
        return response.groups().size() + " groups";
    }

    /** The produce topic's offset (the group does not subscribe to it), then OffsetFetch shows none. */
    private String offsetDelete(short version) throws Exception {
        OffsetDeleteRequestTopicCollection topics = new OffsetDeleteRequestTopicCollection();
        topics.add(new OffsetDeleteRequestTopic().setName(produceTopic).setPartitions(List.of(
            new OffsetDeleteRequestData.OffsetDeleteRequestPartition().setPartitionIndex(0))));
        OffsetDeleteResponseData response = call(ApiKeys.OFFSET_DELETE, version,
            new OffsetDeleteRequestData().setGroupId(classicGroup).setTopics(topics));
        expectNone(response);
        checkEq(response.topics().size(), 1, "topics in the answer");
        committed.remove(produceTopic + "/0");
        short fetchVersion = helperVersion(ApiKeys.OFFSET_FETCH);
        OffsetFetchRequestData fetch = new OffsetFetchRequestData();
        if (fetchVersion >= 8) {
            fetch.setGroups(List.of(new OffsetFetchRequestData.OffsetFetchRequestGroup().setGroupId(classicGroup)
                .setTopics(List.of(new OffsetFetchRequestData.OffsetFetchRequestTopics().setName(produceTopic)
                    .setPartitionIndexes(List.of(0))))));
        } else {
            fetch.setGroupId(classicGroup).setTopics(List.of(new OffsetFetchRequestData.OffsetFetchRequestTopic()
                .setName(produceTopic).setPartitionIndexes(List.of(0))));
        }
        OffsetFetchResponseData after = call(ApiKeys.OFFSET_FETCH, fetchVersion, fetch);
        expectNone(after);
        checkEq(fetchedOffsets(after, fetchVersion), Map.of(produceTopic + "/0", -1L), "offsets after OffsetDelete");
        return "";
    }

    /** A new member of a new group per version leaves it (joined at the highest JoinGroup version). */
    private String leaveGroup(short version) throws Exception {
        try (Conn conn = connect()) {
            Joined joined = joinNew(conn, run + "-leave-v" + version, helperVersion(ApiKeys.JOIN_GROUP));
            LeaveGroupRequestData request = new LeaveGroupRequestData().setGroupId(joined.group());
            if (version >= 3) {
                LeaveGroupRequestData.MemberIdentity member = new LeaveGroupRequestData.MemberIdentity()
                    .setMemberId(joined.memberId());
                if (version >= 5) {
                    member.setReason("version sweep");
                }
                request.setMembers(List.of(member));
            } else {
                request.setMemberId(joined.memberId());
            }
            LeaveGroupResponseData response = conn.call(ApiKeys.LEAVE_GROUP, version, request);
            expectNone(response);
            if (version >= 3) {
                checkEq(response.members().size(), 1, "members in the answer");
                checkEq(response.members().get(0).memberId(), joined.memberId(), "member id");
            }
        }
        return "";
    }

    /** An empty group per version, holding an offset committed outside any generation. */
    private String deleteGroups(short version) throws Exception {
        String group = run + "-delete-group-v" + version;
        short commitVersion = helperVersion(ApiKeys.OFFSET_COMMIT);
        OffsetCommitResponseData commit = call(ApiKeys.OFFSET_COMMIT, commitVersion, new OffsetCommitRequestData()
            .setGroupId(group)
            .setGenerationIdOrMemberEpoch(-1)
            .setMemberId("")
            .setTopics(List.of(new OffsetCommitRequestData.OffsetCommitRequestTopic().setName(dataTopic)
                .setPartitions(List.of(commitPartition(0, 1, version))))));
        expectNone(commit);
        DeleteGroupsResponseData response = call(ApiKeys.DELETE_GROUPS, version,
            new DeleteGroupsRequestData().setGroupsNames(List.of(group)));
        expectNone(response);
        checkEq(response.results().size(), 1, "results");
        checkEq(response.results().iterator().next().groupId(), group, "deleted group");
        return "";
    }

    // ---------------------------------------------------------------- KIP-848

    private ConsumerGroupHeartbeatRequestData joiningHeartbeat(short version, String group) {
        ConsumerGroupHeartbeatRequestData request = new ConsumerGroupHeartbeatRequestData()
            .setGroupId(group)
            // v1+: the member generates its id (KIP-1082); v0: the broker does.
            .setMemberId(version >= 1 ? Uuid.randomUuid().toString() : "")
            .setMemberEpoch(0)
            .setRebalanceTimeoutMs(30_000)
            .setSubscribedTopicNames(List.of(dataTopic))
            .setTopicPartitions(List.of());
        return request;
    }

    /** "topicId:partition" set of an assignment. */
    private static Set<String> assigned(ConsumerGroupHeartbeatResponseData.Assignment assignment) {
        Set<String> partitions = new TreeSet<>();
        for (ConsumerGroupHeartbeatResponseData.TopicPartitions tp : assignment.topicPartitions()) {
            for (int partition : tp.partitions()) {
                partitions.add(tp.topicId() + ":" + partition);
            }
        }
        return partitions;
    }

    /** A new group per version: join (epoch 0), heartbeat at the given epoch, leave (epoch -1). */
    private String consumerGroupHeartbeat(short version) throws Exception {
        String group = run + "-cgh-v" + version;
        Uuid data = topicIds.get(dataTopic);
        Set<String> all = new TreeSet<>(List.of(data + ":0", data + ":1"));
        try (Conn conn = connect()) {
            ConsumerGroupHeartbeatRequestData join = joiningHeartbeat(version, group);
            ConsumerGroupHeartbeatResponseData joined = conn.call(ApiKeys.CONSUMER_GROUP_HEARTBEAT, version, join);
            expectNone(joined);
            if (version >= 1) {
                checkEq(joined.memberId(), join.memberId(), "member id (chosen by the member)");
            }
            check(joined.memberId() != null && !joined.memberId().isEmpty(), "no member id");
            check(joined.memberEpoch() >= 1, "member epoch %d after joining", joined.memberEpoch());
            check(joined.heartbeatIntervalMs() > 0, "heartbeat interval %d", joined.heartbeatIntervalMs());
            Set<String> assignment = joined.assignment() == null ? Set.of() : assigned(joined.assignment());

            ConsumerGroupHeartbeatResponseData beat = conn.call(ApiKeys.CONSUMER_GROUP_HEARTBEAT, version,
                new ConsumerGroupHeartbeatRequestData().setGroupId(group).setMemberId(joined.memberId())
                    .setMemberEpoch(joined.memberEpoch()));
            expectNone(beat);
            checkEq(beat.memberId(), joined.memberId(), "member id");
            check(beat.memberEpoch() >= joined.memberEpoch(), "member epoch went from %d to %d",
                joined.memberEpoch(), beat.memberEpoch());
            if (beat.assignment() != null) {
                assignment = assigned(beat.assignment());
            }
            checkEq(assignment, all, "assignment of the only member");

            ConsumerGroupHeartbeatResponseData left = conn.call(ApiKeys.CONSUMER_GROUP_HEARTBEAT, version,
                new ConsumerGroupHeartbeatRequestData().setGroupId(group).setMemberId(joined.memberId())
                    .setMemberEpoch(-1));
            expectNone(left);
            checkEq(left.memberEpoch(), -1, "member epoch after leaving");
            return "epoch " + beat.memberEpoch();
        }
    }

    private String cgdGroup;
    private String cgdMember;

    /** One KIP-848 group with one member (joined once), described at each version. */
    private String consumerGroupDescribe(short version) throws Exception {
        if (cgdGroup == null) {
            String group = run + "-cgd";
            short heartbeatVersion = helperVersion(ApiKeys.CONSUMER_GROUP_HEARTBEAT);
            ConsumerGroupHeartbeatResponseData joined = call(ApiKeys.CONSUMER_GROUP_HEARTBEAT, heartbeatVersion,
                joiningHeartbeat(heartbeatVersion, group));
            expectNone(joined);
            cgdGroup = group;
            cgdMember = joined.memberId();
        }
        ConsumerGroupDescribeResponseData response = call(ApiKeys.CONSUMER_GROUP_DESCRIBE, version,
            new ConsumerGroupDescribeRequestData().setGroupIds(List.of(cgdGroup)).setIncludeAuthorizedOperations(false));
        expectNone(response);
        checkEq(response.groups().size(), 1, "groups");
        ConsumerGroupDescribeResponseData.DescribedGroup group = response.groups().get(0);
        checkEq(group.groupId(), cgdGroup, "group id");
        check(Set.of("stable", "assigning", "reconciling").contains(group.groupState().toLowerCase()),
            "group state %s", group.groupState());
        check(group.groupEpoch() >= 1, "group epoch %d", group.groupEpoch());
        checkEq(group.members().size(), 1, "members");
        ConsumerGroupDescribeResponseData.Member member = group.members().get(0);
        checkEq(member.memberId(), cgdMember, "member id");
        checkEq(member.subscribedTopicNames(), List.of(dataTopic), "subscribed topics");
        return group.groupState() + ", assignor " + group.assignorName();
    }

    // ----------------------------------------------------------- transactions

    /** A producer id and epoch. */
    record Producer(long id, short epoch) {
    }

    /**
     * A producer id for a helper (not a swept request): retried, as clients
     * do, while the transactional id's coordinator is not ready.
     */
    private Producer initProducer(String transactionalId) throws Exception {
        short version = helperVersion(ApiKeys.INIT_PRODUCER_ID);
        long deadline = System.currentTimeMillis() + READY_TIMEOUT_MS;
        while (true) {
            InitProducerIdResponseData response = call(ApiKeys.INIT_PRODUCER_ID, version,
                new InitProducerIdRequestData().setTransactionalId(transactionalId)
                    .setTransactionTimeoutMs(TXN_TIMEOUT_MS));
            if (!COORDINATOR_NOT_READY.contains(Errors.forCode(response.errorCode()))
                || System.currentTimeMillis() >= deadline) {
                expectNone(response);
                return new Producer(response.producerId(), response.producerEpoch());
            }
            Thread.sleep(READY_POLL_MS);
        }
    }

    private void addPartitions(String transactionalId, Producer producer, String topic) throws Exception {
        short version = helperVersion(ApiKeys.ADD_PARTITIONS_TO_TXN, ADD_PARTITIONS_CLIENT_MAX);
        AddPartitionsToTxnResponseData response = call(ApiKeys.ADD_PARTITIONS_TO_TXN, version,
            new AddPartitionsToTxnRequestData()
                .setV3AndBelowTransactionalId(transactionalId)
                .setV3AndBelowProducerId(producer.id())
                .setV3AndBelowProducerEpoch(producer.epoch())
                .setV3AndBelowTopics(txnTopics(topic)));
        expectNone(response);
    }

    private static AddPartitionsToTxnTopicCollection txnTopics(String topic) {
        AddPartitionsToTxnTopicCollection topics = new AddPartitionsToTxnTopicCollection();
        topics.add(new AddPartitionsToTxnTopic().setName(topic).setPartitions(List.of(0)));
        return topics;
    }

    /**
     * Each version: an idempotent producer id (null transactional id), a new
     * transactional id (epoch 0), and the same id again (epoch 1, same
     * producer id: the previous instance is fenced).
     */
    private String initProducerId(short version) throws Exception {
        InitProducerIdResponseData idempotent = call(ApiKeys.INIT_PRODUCER_ID, version, new InitProducerIdRequestData()
            .setTransactionalId(null).setTransactionTimeoutMs(TXN_TIMEOUT_MS));
        expectNone(idempotent);
        check(idempotent.producerId() >= 0, "idempotent producer id %d", idempotent.producerId());
        checkEq(idempotent.producerEpoch(), (short) 0, "idempotent producer epoch");

        String transactionalId = run + "-ipid-v" + version;
        InitProducerIdRequestData request = new InitProducerIdRequestData()
            .setTransactionalId(transactionalId).setTransactionTimeoutMs(TXN_TIMEOUT_MS);
        InitProducerIdResponseData first = call(ApiKeys.INIT_PRODUCER_ID, version, request);
        expectNone(first);
        check(first.producerId() >= 0, "transactional producer id %d", first.producerId());
        checkEq(first.producerEpoch(), (short) 0, "first epoch of a new transactional id");
        InitProducerIdResponseData second = call(ApiKeys.INIT_PRODUCER_ID, version, request);
        expectNone(second);
        checkEq(second.producerId(), first.producerId(), "producer id of the second instance");
        checkEq(second.producerEpoch(), (short) 1, "epoch of the second instance");
        if (version < 3) {
            return "";
        }
        // v3+ (KIP-360): the producer names its current id and epoch to
        // get the next epoch.
        InitProducerIdResponseData resumed = call(ApiKeys.INIT_PRODUCER_ID, version, new InitProducerIdRequestData()
            .setTransactionalId(transactionalId).setTransactionTimeoutMs(TXN_TIMEOUT_MS)
            .setProducerId(second.producerId()).setProducerEpoch(second.producerEpoch()));
        expectNone(resumed);
        checkEq(resumed.producerId(), first.producerId(), "producer id after resuming");
        checkEq(resumed.producerEpoch(), (short) 2, "epoch after resuming");
        return "resumed with its producer id and epoch";
    }

    /**
     * v0-v3 (clients) add the txn topic to a new transaction; v4+ (brokers,
     * batched) verify that it was added (verifyOnly, as a partition leader
     * does before accepting a transactional batch).
     */
    private String addPartitionsToTxn(short version) throws Exception {
        String transactionalId = run + "-apt-v" + version;
        Producer producer = initProducer(transactionalId);
        AddPartitionsToTxnRequestData request = new AddPartitionsToTxnRequestData();
        if (version >= 4) {
            addPartitions(transactionalId, producer, txnTopic);
            AddPartitionsToTxnTransactionCollection transactions = new AddPartitionsToTxnTransactionCollection();
            transactions.add(new AddPartitionsToTxnTransaction()
                .setTransactionalId(transactionalId)
                .setProducerId(producer.id())
                .setProducerEpoch(producer.epoch())
                .setVerifyOnly(true)
                .setTopics(txnTopics(txnTopic)));
            request.setTransactions(transactions);
        } else {
            request.setV3AndBelowTransactionalId(transactionalId)
                .setV3AndBelowProducerId(producer.id())
                .setV3AndBelowProducerEpoch(producer.epoch())
                .setV3AndBelowTopics(txnTopics(txnTopic));
        }
        AddPartitionsToTxnResponseData response = call(ApiKeys.ADD_PARTITIONS_TO_TXN, version, request);
        expectNone(response);
        if (version >= 4) {
            checkEq(response.resultsByTransaction().size(), 1, "transactions in the answer");
            AddPartitionsToTxnResponseData.AddPartitionsToTxnResult result =
                response.resultsByTransaction().iterator().next();
            checkEq(result.transactionalId(), transactionalId, "transactional id");
            checkEq(result.topicResults().size(), 1, "topics in the answer");
        } else {
            checkEq(response.resultsByTopicV3AndBelow().size(), 1, "topics in the answer");
            checkEq(response.resultsByTopicV3AndBelow().iterator().next().resultsByPartition().size(), 1,
                "partitions in the answer");
        }
        return version >= 4 ? "verifyOnly" : "";
    }

    private String addOffsetsToTxn(short version) throws Exception {
        String transactionalId = run + "-aot-v" + version;
        Producer producer = initProducer(transactionalId);
        AddOffsetsToTxnResponseData response = call(ApiKeys.ADD_OFFSETS_TO_TXN, version, new AddOffsetsToTxnRequestData()
            .setTransactionalId(transactionalId).setProducerId(producer.id()).setProducerEpoch(producer.epoch())
            .setGroupId(txnGroup));
        expectNone(response);
        return "";
    }

    /**
     * Offsets committed in a transaction. Up to v4 the group is added first
     * (AddOffsetsToTxn); v5 is the KIP-890 part 2 version, which adds it
     * implicitly.
     */
    private String txnOffsetCommit(short version) throws Exception {
        String transactionalId = run + "-toc-v" + version;
        Producer producer = initProducer(transactionalId);
        if (version <= TXN_OFFSET_COMMIT_V1_MAX) {
            AddOffsetsToTxnResponseData added = call(ApiKeys.ADD_OFFSETS_TO_TXN,
                helperVersion(ApiKeys.ADD_OFFSETS_TO_TXN), new AddOffsetsToTxnRequestData()
                    .setTransactionalId(transactionalId).setProducerId(producer.id())
                    .setProducerEpoch(producer.epoch()).setGroupId(txnGroup));
            expectNone(added);
        }
        TxnOffsetCommitRequestData.TxnOffsetCommitRequestPartition partition =
            new TxnOffsetCommitRequestData.TxnOffsetCommitRequestPartition()
                .setPartitionIndex(0).setCommittedOffset(2).setCommittedMetadata("txn-v" + version);
        TxnOffsetCommitRequestData request = new TxnOffsetCommitRequestData()
            .setTransactionalId(transactionalId)
            .setGroupId(txnGroup)
            .setProducerId(producer.id())
            .setProducerEpoch(producer.epoch())
            .setTopics(List.of(new TxnOffsetCommitRequestData.TxnOffsetCommitRequestTopic()
                .setName(dataTopic).setPartitions(List.of(partition))));
        if (version >= 3) {
            request.setGenerationId(-1).setMemberId("").setGroupInstanceId(null);
        }
        TxnOffsetCommitResponseData response = call(ApiKeys.TXN_OFFSET_COMMIT, version, request);
        expectNone(response);
        checkEq(response.topics().size(), 1, "topics in the answer");
        checkEq(response.topics().get(0).partitions().size(), 1, "partitions in the answer");
        return "";
    }

    /**
     * A transaction with a batch in the txn topic, committed on even
     * versions and aborted on odd ones. Up to v4 the partition is added
     * first (AddPartitionsToTxn) and the batch produced at v11 or lower; v5
     * (KIP-890 part 2) produces at the highest version, which adds the
     * partition implicitly, and EndTxn returns the bumped epoch.
     */
    private String endTxn(short version) throws Exception {
        String transactionalId = run + "-end-v" + version;
        Producer producer = initProducer(transactionalId);
        boolean v2 = version > END_TXN_V1_MAX;
        short produceVersion;
        if (v2) {
            produceVersion = helperVersion(ApiKeys.PRODUCE);
        } else {
            addPartitions(transactionalId, producer, txnTopic);
            produceVersion = helperVersion(ApiKeys.PRODUCE, PRODUCE_TXN_V1_MAX);
        }
        MemoryRecords records = MemoryRecords.withTransactionalRecords(Compression.NONE, producer.id(),
            producer.epoch(), 0, new SimpleRecord(BASE_TS, bytes("txn-key-v" + version), bytes("txn-value")));
        ProduceResponseData produced = call(ApiKeys.PRODUCE, produceVersion,
            produceRequestById(produceVersion, txnTopic, 0, records, (short) -1, transactionalId));
        expectNone(produced);
        boolean commit = version % 2 == 0;
        EndTxnResponseData response = call(ApiKeys.END_TXN, version, new EndTxnRequestData()
            .setTransactionalId(transactionalId).setProducerId(producer.id()).setProducerEpoch(producer.epoch())
            .setCommitted(commit));
        expectNone(response);
        if (version >= 5) {
            checkEq(response.producerId(), producer.id(), "producer id after EndTxn");
            checkEq(response.producerEpoch(), (short) (producer.epoch() + 1), "epoch after EndTxn (bumped)");
        }
        return commit ? "commit" : "abort";
    }

    /** An idempotent producer's two-record batch in the produce topic, as the partition reports it. */
    private String describeProducers(short version) throws Exception {
        Producer producer = initProducer(null);
        SimpleRecord[] records = {
            new SimpleRecord(BASE_TS + 7, bytes("idem-0"), bytes("v")),
            new SimpleRecord(BASE_TS + 8, bytes("idem-1"), bytes("v"))};
        short produceVersion = helperVersion(ApiKeys.PRODUCE);
        ProduceResponseData produced = call(ApiKeys.PRODUCE, produceVersion, produceRequestById(produceVersion,
            produceTopic, 0, MemoryRecords.withIdempotentRecords(Compression.NONE, producer.id(), producer.epoch(), 0,
                records), (short) -1, null));
        expectNone(produced);
        DescribeProducersResponseData response = call(ApiKeys.DESCRIBE_PRODUCERS, version,
            new DescribeProducersRequestData().setTopics(List.of(new DescribeProducersRequestData.TopicRequest()
                .setName(produceTopic).setPartitionIndexes(List.of(0)))));
        expectNone(response);
        checkEq(response.topics().size(), 1, "topics in the answer");
        checkEq(response.topics().get(0).partitions().size(), 1, "partitions in the answer");
        DescribeProducersResponseData.ProducerState state = response.topics().get(0).partitions().get(0)
            .activeProducers().stream().filter(p -> p.producerId() == producer.id()).findFirst()
            .orElseThrow(() -> new SweepFailure("producer " + producer.id() + " not among the active producers"));
        checkEq(state.producerEpoch(), (int) producer.epoch(), "epoch");
        checkEq(state.lastSequence(), 1, "last sequence");
        checkEq(state.lastTimestamp(), BASE_TS + 8, "last timestamp");
        checkEq(state.currentTxnStartOffset(), -1L, "open transaction start");
        return "";
    }

    private String openTxnId;
    private Producer openTxnProducer;

    /** An open transaction (partition added, nothing produced) for DescribeTransactions and ListTransactions. */
    private void ensureOpenTransaction() throws Exception {
        if (openTxnId == null) {
            String transactionalId = run + "-open";
            Producer producer = initProducer(transactionalId);
            addPartitions(transactionalId, producer, txnTopic);
            openTxnId = transactionalId;
            openTxnProducer = producer;
        }
    }

    private String describeTransactions(short version) throws Exception {
        ensureOpenTransaction();
        DescribeTransactionsResponseData response = call(ApiKeys.DESCRIBE_TRANSACTIONS, version,
            new DescribeTransactionsRequestData().setTransactionalIds(List.of(openTxnId)));
        expectNone(response);
        checkEq(response.transactionStates().size(), 1, "transactions in the answer");
        DescribeTransactionsResponseData.TransactionState state = response.transactionStates().get(0);
        checkEq(state.transactionalId(), openTxnId, "transactional id");
        checkEq(state.transactionState(), "Ongoing", "state");
        checkEq(state.producerId(), openTxnProducer.id(), "producer id");
        checkEq(state.producerEpoch(), openTxnProducer.epoch(), "producer epoch");
        checkEq(state.transactionTimeoutMs(), TXN_TIMEOUT_MS, "timeout");
        checkEq(state.topics().size(), 1, "topics of the transaction");
        DescribeTransactionsResponseData.TopicData topic = state.topics().iterator().next();
        checkEq(topic.topic(), txnTopic, "topic of the transaction");
        checkEq(topic.partitions(), List.of(0), "partitions of the transaction");
        return "";
    }

    /** Filtered by state and producer id; v1+ by duration, v2+ by transactional id pattern. */
    private String listTransactions(short version) throws Exception {
        ensureOpenTransaction();
        ListTransactionsRequestData request = new ListTransactionsRequestData()
            .setStateFilters(List.of("Ongoing"))
            .setProducerIdFilters(List.of(openTxnProducer.id()));
        if (version >= 1) {
            request.setDurationFilter(0);
        }
        if (version >= 2) {
            request.setTransactionalIdPattern(openTxnId);
        }
        ListTransactionsResponseData response = call(ApiKeys.LIST_TRANSACTIONS, version, request);
        expectNone(response);
        checkEq(response.unknownStateFilters(), List.of(), "unknown state filters");
        checkEq(response.transactionStates().size(), 1, "transactions listed");
        ListTransactionsResponseData.TransactionState state = response.transactionStates().get(0);
        checkEq(state.transactionalId(), openTxnId, "transactional id");
        checkEq(state.producerId(), openTxnProducer.id(), "producer id");
        checkEq(state.transactionState(), "Ongoing", "state");
        return "";
    }

    // ---------------------------------------------------------------- helpers

    private static byte[] bytes(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    private static String string(ByteBuffer buffer) {
        if (buffer == null) {
            return null;
        }
        byte[] bytes = new byte[buffer.remaining()];
        buffer.duplicate().get(bytes);
        return new String(bytes, StandardCharsets.UTF_8);
    }

    private static byte[] toArray(ByteBuffer buffer) {
        byte[] bytes = new byte[buffer.remaining()];
        buffer.duplicate().get(bytes);
        return bytes;
    }
}
