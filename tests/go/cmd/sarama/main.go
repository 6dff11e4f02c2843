// Command sarama drives a broker with IBM/sarama (ClusterAdmin,
// SyncProducer, ConsumerGroup), one phase per invocation; the Rust test
// (tests/clients_go.rs) restarts the broker between phases. Every phase
// checks exact records, offsets and admin answers and prints a final
// "PASS <phase>" line; any mismatch prints "FAIL: ..." and exits 1.
//
//	sarama groups-before-restart BOOTSTRAP TOPIC GROUP
//	sarama groups-after-restart  BOOTSTRAP TOPIC GROUP
//
// SARAMA_KAFKA_VERSION (default 3.6.0) is the Kafka version sarama is
// configured for. sarama's Logger writes to stderr; WEIR_GO_CLIENT_DEBUG=1
// adds its debug log.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"

	sc "weir.dev/clienttests/internal/scenario"
)

const (
	partitions = 3
	// Records produced before the restart (10 per partition) and after it
	// (6 more per partition).
	recordsBeforeRestart = 30
	recordsAfterRestart  = 48
	tag                  = "sarama"
)

// version is the Kafka version sarama speaks (SARAMA_KAFKA_VERSION, e.g.
// 2.8.0; default 3.6.0): it picks each request's version from it.
var version = sarama.V3_6_0_0

func main() {
	if v := os.Getenv("SARAMA_KAFKA_VERSION"); v != "" {
		parsed, err := sarama.ParseKafkaVersion(v)
		sc.Check(err, "SARAMA_KAFKA_VERSION")
		version = parsed
	}
	if len(os.Args) != 5 {
		sc.Failf("usage: sarama groups-before-restart|groups-after-restart BOOTSTRAP TOPIC GROUP")
	}
	phase, bootstrap, topic, group := os.Args[1], os.Args[2], os.Args[3], os.Args[4]
	sarama.Logger = log.New(os.Stderr, "[sarama] ", log.Ltime|log.Lmicroseconds)
	if sc.Debug() {
		sarama.DebugLogger = log.New(os.Stderr, "[sarama debug] ", log.Ltime|log.Lmicroseconds)
	}
	switch phase {
	case "groups-before-restart":
		groupsBeforeRestart(bootstrap, topic, group)
	case "groups-after-restart":
		groupsAfterRestart(bootstrap, topic, group)
	default:
		sc.Failf("unknown phase %q", phase)
	}
	sc.Step("PASS %s", phase)
}

// newConfig: the protocol versions of `version` (sarama picks each
// request's version from it), bounded retries and timeouts.
func newConfig() *sarama.Config {
	config := sarama.NewConfig()
	config.Version = version
	config.ClientID = "weir-sarama-test"
	config.Net.DialTimeout = sc.OpTimeout
	config.Net.ReadTimeout = sc.OpTimeout
	config.Net.WriteTimeout = sc.OpTimeout
	config.Metadata.Retry.Max = 20
	config.Metadata.Retry.Backoff = 250 * time.Millisecond
	config.Admin.Timeout = sc.OpTimeout
	config.Admin.Retry.Max = 20
	config.Admin.Retry.Backoff = 250 * time.Millisecond
	return config
}

func newAdmin(bootstrap string) sarama.ClusterAdmin {
	admin, err := sarama.NewClusterAdmin([]string{bootstrap}, newConfig())
	sc.Check(err, "NewClusterAdmin")
	return admin
}

func groupsBeforeRestart(bootstrap, topic, group string) {
	admin := newAdmin(bootstrap)
	defer admin.Close()

	broker := onlyBroker(admin, bootstrap)
	segmentBytes := "1048576"
	err := admin.CreateTopic(topic, &sarama.TopicDetail{
		NumPartitions:     partitions,
		ReplicationFactor: 1,
		ConfigEntries:     map[string]*string{"segment.bytes": &segmentBytes},
	}, false)
	sc.Check(err, "CreateTopic %s", topic)
	sc.Step("created %s with %d partitions", topic, partitions)
	expectTopicAlreadyExists(admin, topic)
	expectListedTopic(admin, topic, broker)
	expectTopicConfigs(admin, topic)
	expectUnknownTopicConfigs(admin, topic+"-does-not-exist")
	expectCommitted(admin, group, topic, map[int32]int64{0: -1, 1: -1, 2: -1})

	records := sc.Records(tag, 0, recordsBeforeRestart, partitions)
	produce(bootstrap, topic, records)
	expectStartAndEndOffsets(bootstrap, topic, recordsBeforeRestart)

	consumeInGroup(bootstrap, admin, topic, group, records)
	expectCommitted(admin, group, topic, sc.EndOffsets(recordsBeforeRestart, partitions))
}

func groupsAfterRestart(bootstrap, topic, group string) {
	admin := newAdmin(bootstrap)
	defer admin.Close()

	broker := onlyBroker(admin, bootstrap)
	expectListedTopic(admin, topic, broker)
	expectTopicAlreadyExists(admin, topic)
	expectTopicConfigs(admin, topic)
	expectEmptyGroup(admin, group)
	expectCommitted(admin, group, topic, sc.EndOffsets(recordsBeforeRestart, partitions))
	expectStartAndEndOffsets(bootstrap, topic, recordsBeforeRestart)

	records := sc.Records(tag, recordsBeforeRestart, recordsAfterRestart, partitions)
	produce(bootstrap, topic, records)
	expectStartAndEndOffsets(bootstrap, topic, recordsAfterRestart)

	// The group resumes at its commits: exactly the records produced after
	// the restart, none of the earlier ones.
	consumeInGroup(bootstrap, admin, topic, group, records)
	expectCommitted(admin, group, topic, sc.EndOffsets(recordsAfterRestart, partitions))
}

// onlyBroker checks DescribeCluster names exactly one broker, at
// `bootstrap` (127.0.0.1:PORT), and returns its id.
func onlyBroker(admin sarama.ClusterAdmin, bootstrap string) int32 {
	brokers, _, err := admin.DescribeCluster()
	sc.Check(err, "DescribeCluster")
	sc.Expect(len(brokers) == 1, "DescribeCluster: %d brokers, expected 1", len(brokers))
	sc.Expect(brokers[0].Addr() == bootstrap, "DescribeCluster: broker at %s, expected %s", brokers[0].Addr(), bootstrap)
	return brokers[0].ID()
}

func expectTopicAlreadyExists(admin sarama.ClusterAdmin, topic string) {
	err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false)
	sc.Expect(errors.Is(err, sarama.ErrTopicAlreadyExists),
		"CreateTopic of existing %s: error %v, expected TOPIC_ALREADY_EXISTS", topic, err)
	sc.Step("CreateTopic of existing %s: %v", topic, err)
}

// expectListedTopic checks ListTopics has `topic` with its partition
// count, replication factor and segment.bytes override, and DescribeTopics
// shows each partition led by `broker`, its only replica and in-sync
// replica. Kafka's brokers learn of a new topic shortly after CreateTopics
// answered, so this waits (bounded) until the topic is listed.
func expectListedTopic(admin sarama.ClusterAdmin, topic string, broker int32) {
	deadline := time.Now().Add(sc.OpTimeout)
	var topics map[string]sarama.TopicDetail
	for {
		var err error
		topics, err = admin.ListTopics()
		sc.Check(err, "ListTopics")
		if _, ok := topics[topic]; ok || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	detail, ok := topics[topic]
	sc.Expect(ok, "ListTopics does not list %s after %v", topic, sc.OpTimeout)
	segment := detail.ConfigEntries["segment.bytes"]
	sc.Expect(detail.NumPartitions == partitions && detail.ReplicationFactor == 1 && segment != nil && *segment == "1048576",
		"ListTopics: %s has %d partitions, replication factor %d, segment.bytes %v; expected %d, 1, 1048576",
		topic, detail.NumPartitions, detail.ReplicationFactor, segment, partitions)

	metadata, err := admin.DescribeTopics([]string{topic})
	sc.Check(err, "DescribeTopics %s", topic)
	sc.Expect(len(metadata) == 1 && metadata[0].Name == topic, "DescribeTopics %s: %d topics", topic, len(metadata))
	sc.Expect(errors.Is(metadata[0].Err, sarama.ErrNoError), "DescribeTopics %s: %v", topic, metadata[0].Err)
	sc.Expect(!metadata[0].IsInternal, "DescribeTopics: %s is marked internal", topic)
	sc.Expect(len(metadata[0].Partitions) == partitions, "DescribeTopics %s: %d partitions", topic, len(metadata[0].Partitions))
	for _, pm := range metadata[0].Partitions {
		sc.Expect(errors.Is(pm.Err, sarama.ErrNoError) && pm.Leader == broker &&
			slices.Equal(pm.Replicas, []int32{broker}) && slices.Equal(pm.Isr, []int32{broker}),
			"DescribeTopics %s/%d: error %v leader %d replicas %v isr %v, expected broker %d everywhere",
			topic, pm.ID, pm.Err, pm.Leader, pm.Replicas, pm.Isr, broker)
	}
	sc.Step("ListTopics/DescribeTopics: %s with %d partitions on broker %d", topic, partitions, broker)
}

// expectTopicConfigs: segment.bytes is the creation's topic override,
// cleanup.policy Kafka's default.
func expectTopicConfigs(admin sarama.ClusterAdmin, topic string) {
	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	sc.Check(err, "DescribeConfig %s", topic)
	byName := map[string]sarama.ConfigEntry{}
	for _, e := range entries {
		byName[e.Name] = e
	}
	segment, ok := byName["segment.bytes"]
	sc.Expect(ok && segment.Value == "1048576" && segment.Source == sarama.SourceTopic && !segment.Default,
		"DescribeConfig %s: segment.bytes %+v, expected 1048576 from the topic", topic, segment)
	cleanup, ok := byName["cleanup.policy"]
	sc.Expect(ok && cleanup.Value == "delete", "DescribeConfig %s: cleanup.policy %+v, expected delete", topic, cleanup)
}

func expectUnknownTopicConfigs(admin sarama.ClusterAdmin, topic string) {
	_, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	sc.Expect(errors.Is(err, sarama.ErrUnknownTopicOrPartition),
		"DescribeConfig of missing %s: error %v, expected UNKNOWN_TOPIC_OR_PARTITION", topic, err)
}

// expectStartAndEndOffsets: oldest offset 0 and newest `produced /
// partitions` on every partition (ListOffsets through sarama's Client).
func expectStartAndEndOffsets(bootstrap, topic string, produced int) {
	client, err := sarama.NewClient([]string{bootstrap}, newConfig())
	sc.Check(err, "NewClient")
	defer client.Close()
	wantEnds := sc.EndOffsets(produced, partitions)
	for p := int32(0); p < partitions; p++ {
		oldest, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		sc.Check(err, "GetOffset %s/%d oldest", topic, p)
		newest, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		sc.Check(err, "GetOffset %s/%d newest", topic, p)
		sc.Expect(oldest == 0 && newest == wantEnds[p], "%s/%d: offsets [%d, %d), expected [0, %d)",
			topic, p, oldest, newest, wantEnds[p])
	}
}

// produce sends `records` with an idempotent SyncProducer (acks=all,
// zstd-compressed batches), in one SendMessages call, each to its
// partition, and checks each acknowledged offset.
func produce(bootstrap, topic string, records []sc.Record) {
	config := newConfig()
	config.Producer.Idempotent = true
	config.Producer.RequiredAcks = sarama.WaitForAll
	config.Producer.Return.Successes = true
	config.Producer.Return.Errors = true
	config.Producer.Retry.Max = 10
	config.Producer.Partitioner = sarama.NewManualPartitioner
	config.Producer.Compression = sarama.CompressionZSTD
	config.Net.MaxOpenRequests = 1 // required by sarama for idempotence
	producer, err := sarama.NewSyncProducer([]string{bootstrap}, config)
	sc.Check(err, "NewSyncProducer (idempotent)")
	defer func() { sc.Check(producer.Close(), "close producer") }()

	messages := make([]*sarama.ProducerMessage, len(records))
	for i, r := range records {
		headers := make([]sarama.RecordHeader, len(r.Headers))
		for j, h := range r.Headers {
			headers[j] = sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value}
		}
		messages[i] = &sarama.ProducerMessage{
			Topic:     topic,
			Partition: r.Partition,
			Key:       sarama.ByteEncoder(r.Key),
			Value:     sarama.ByteEncoder(r.Value),
			Headers:   headers,
		}
	}
	sc.Check(producer.SendMessages(messages), "SendMessages of %d records to %s", len(messages), topic)
	for i, m := range messages {
		want := records[i]
		sc.Expect(m.Partition == want.Partition && m.Offset == want.Offset,
			"record %d acknowledged at %s/%d@%d, expected partition %d offset %d",
			want.Index, topic, m.Partition, m.Offset, want.Partition, want.Offset)
	}
	sc.Step("produced %d records to %s (idempotent, acks=all)", len(records), topic)
}

// handler checks every claimed message, marks it, and once all expected
// records arrived commits the marked offsets and closes `done`.
type handler struct {
	mu      sync.Mutex
	checker *sc.Checker
	failure error
	done    chan struct{}
	once    sync.Once
}

func (h *handler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *handler) ConsumeClaim(session sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		headers := make([]sc.Header, len(msg.Headers))
		for i, hd := range msg.Headers {
			headers[i] = sc.Header{Key: string(hd.Key), Value: hd.Value}
		}
		consumed := sc.Consumed{Partition: msg.Partition, Offset: msg.Offset, Key: msg.Key, Value: msg.Value, Headers: headers}
		// Marked under the lock: when the last record completes the set,
		// every other one is already marked, so the commit covers all.
		h.mu.Lock()
		if err := h.checker.Add(msg.Topic, consumed); err != nil && h.failure == nil {
			h.failure = err
		}
		session.MarkMessage(msg, "")
		complete := h.checker.Done()
		h.mu.Unlock()
		if complete {
			// Synchronous: the commit is answered before Commit returns
			// (errors go to the group's Errors channel).
			session.Commit()
			h.once.Do(func() { close(h.done) })
		}
	}
	return nil
}

// consumeInGroup joins `group` with a sarama ConsumerGroup (range
// assignor, no auto-commit), reads exactly `records` from where the
// group's commits say, commits, checks DescribeConsumerGroups while the
// member is in the group and after it left.
func consumeInGroup(bootstrap string, admin sarama.ClusterAdmin, topic, group string, records []sc.Record) {
	config := newConfig()
	config.Consumer.Offsets.Initial = sarama.OffsetOldest
	config.Consumer.Offsets.AutoCommit.Enable = false
	config.Consumer.Return.Errors = true
	consumer, err := sarama.NewConsumerGroup([]string{bootstrap}, group, config)
	sc.Check(err, "NewConsumerGroup %s", group)

	var groupErrors []string
	var errorsMu sync.Mutex
	errorsDone := make(chan struct{})
	go func() {
		defer close(errorsDone)
		for err := range consumer.Errors() {
			errorsMu.Lock()
			groupErrors = append(groupErrors, err.Error())
			errorsMu.Unlock()
		}
	}()

	h := &handler{checker: sc.NewChecker(topic, records), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	consumeDone := make(chan error, 1)
	go func() {
		// Consume returns at each rebalance: join again until cancelled
		// (bounded by the deadline below).
		for ctx.Err() == nil {
			if err := consumer.Consume(ctx, []string{topic}, h); err != nil {
				consumeDone <- err
				return
			}
		}
		consumeDone <- nil
	}()

	select {
	case <-h.done:
	case err := <-consumeDone:
		cancel()
		sc.Failf("consumer group %s stopped: %v; errors: %v", group, err, groupErrors)
	case <-time.After(sc.ConsumeTimeout):
		h.mu.Lock()
		progress := h.checker.Progress()
		h.mu.Unlock()
		errorsMu.Lock()
		defer errorsMu.Unlock()
		sc.Failf("consuming %s in group %s: got %s after %v; group errors: %v", topic, group, progress, sc.ConsumeTimeout, groupErrors)
	}
	h.mu.Lock()
	sc.Check(h.failure, "consumed record")
	h.mu.Unlock()
	expectStableGroup(admin, group, topic)

	cancel()
	select {
	case err := <-consumeDone:
		sc.Check(err, "Consume of group %s", group)
	case <-time.After(sc.OpTimeout):
		sc.Failf("Consume of group %s did not return %v after cancel", group, sc.OpTimeout)
	}
	sc.Check(consumer.Close(), "close consumer group %s (LeaveGroup)", group)
	<-errorsDone
	sc.Expect(len(groupErrors) == 0, "consumer group %s reported errors: %v", group, groupErrors)
	sc.Step("group %s consumed exactly %d records and committed", group, len(records))
	expectEmptyGroup(admin, group)
}

// coordinatorNotReady: the errors Kafka answers group requests with while
// its group coordinator is not ready (__consumer_offsets just created, or
// being loaded after a restart); a client retries them. sarama's admin
// retries only some of them, for some requests.
func coordinatorNotReady(err error) bool {
	return errors.Is(err, sarama.ErrNotCoordinatorForConsumer) ||
		errors.Is(err, sarama.ErrOffsetsLoadInProgress) ||
		errors.Is(err, sarama.ErrConsumerCoordinatorNotAvailable)
}

// untilCoordinatorReady retries `call` (bounded, sc.Eventually) while it
// fails with coordinatorNotReady; any other error fails the phase.
func untilCoordinatorReady(what string, call func() error) {
	sc.Eventually(what, func() error {
		err := call()
		if err != nil && !coordinatorNotReady(err) {
			sc.Failf("%s: %v", what, err)
		}
		return err
	})
}

// describeGroup describes `group` (retrying while its coordinator is not
// ready).
func describeGroup(admin sarama.ClusterAdmin, group string) *sarama.GroupDescription {
	var description *sarama.GroupDescription
	untilCoordinatorReady("DescribeConsumerGroups "+group, func() error {
		described, err := admin.DescribeConsumerGroups([]string{group})
		if err != nil {
			return err
		}
		sc.Expect(len(described) == 1 && described[0].GroupId == group, "DescribeConsumerGroups %s: %d groups", group, len(described))
		description = described[0]
		if errors.Is(description.Err, sarama.ErrNoError) {
			return nil
		}
		return description.Err
	})
	return description
}

// expectStableGroup: one member of the classic consumer protocol (range
// assignor), subscribed to `topic` and assigned all its partitions.
func expectStableGroup(admin sarama.ClusterAdmin, group, topic string) {
	g := describeGroup(admin, group)
	sc.Expect(g.State == "Stable" && g.ProtocolType == "consumer" && g.Protocol == "range",
		"DescribeConsumerGroups %s: state %q protocol type %q protocol %q, expected Stable consumer range",
		group, g.State, g.ProtocolType, g.Protocol)
	sc.Expect(len(g.Members) == 1, "DescribeConsumerGroups %s: %d members, expected 1", group, len(g.Members))
	for id, member := range g.Members {
		metadata, err := member.GetMemberMetadata()
		sc.Check(err, "member %s metadata", id)
		sc.Expect(slices.Equal(metadata.Topics, []string{topic}), "member %s subscribed to %v, expected [%s]", id, metadata.Topics, topic)
		assignment, err := member.GetMemberAssignment()
		sc.Check(err, "member %s assignment", id)
		got := slices.Sorted(slices.Values(assignment.Topics[topic]))
		sc.Expect(len(assignment.Topics) == 1 && slices.Equal(got, []int32{0, 1, 2}),
			"member %s assigned %v, expected %s [0 1 2]", id, assignment.Topics, topic)
	}
}

func expectEmptyGroup(admin sarama.ClusterAdmin, group string) {
	g := describeGroup(admin, group)
	sc.Expect(g.State == "Empty" && len(g.Members) == 0, "DescribeConsumerGroups %s: state %q with %d members, expected Empty with none",
		group, g.State, len(g.Members))
	var groups map[string]string
	untilCoordinatorReady("ListConsumerGroups", func() error {
		var err error
		groups, err = admin.ListConsumerGroups()
		return err
	})
	sc.Expect(groups[group] == "consumer", "ListConsumerGroups: %s has protocol type %q, expected consumer (all: %v)",
		group, groups[group], groups)
}

// expectCommitted checks ListConsumerGroupOffsets of every partition of
// `topic`: exactly `want` (-1 where nothing was committed).
func expectCommitted(admin sarama.ClusterAdmin, group, topic string, want map[int32]int64) {
	var resp *sarama.OffsetFetchResponse
	untilCoordinatorReady("ListConsumerGroupOffsets "+group, func() error {
		var err error
		resp, err = admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1, 2}})
		return err
	})
	got := map[int32]int64{}
	for p := int32(0); p < partitions; p++ {
		block := resp.GetBlock(topic, p)
		sc.Expect(block != nil, "ListConsumerGroupOffsets %s: no answer for %s/%d", group, topic, p)
		sc.Expect(errors.Is(block.Err, sarama.ErrNoError), "ListConsumerGroupOffsets %s %s/%d: %v", group, topic, p, block.Err)
		got[p] = block.Offset
	}
	sc.Expect(fmt.Sprint(got) == fmt.Sprint(want), "ListConsumerGroupOffsets %s: %v, expected %v", group, got, want)
	sc.Step("group %s committed offsets: %v", group, got)
}
