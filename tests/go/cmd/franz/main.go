// Command franz drives a broker with franz-go (kgo and kadm), one phase per
// invocation; the Rust test (tests/clients_go.rs) restarts the broker
// between phases. Every phase checks exact records, offsets and admin
// answers and prints a final "PASS <phase>" line; any mismatch prints
// "FAIL: ..." and exits 1.
//
//	franz groups-before-restart BOOTSTRAP TOPIC GROUP classic|consumer
//	franz groups-after-restart  BOOTSTRAP TOPIC GROUP classic|consumer
//	franz txn-before-restart    BOOTSTRAP TOPIC TRANSACTIONAL_ID
//	franz txn-after-restart     BOOTSTRAP TOPIC TRANSACTIONAL_ID
//	franz eos                   BOOTSTRAP INPUT_TOPIC OUTPUT_TOPIC GROUP TRANSACTIONAL_ID
//	franz admin                 BOOTSTRAP TOPIC GROUP
//
// The group protocol is the classic one (JoinGroup/SyncGroup, kgo's
// default cooperative-sticky balancer) or KIP-848's "consumer" protocol
// (ConsumerGroupHeartbeat, the broker's range assignor).
//
// WEIR_GO_CLIENT_DEBUG=1 turns on kgo's debug log (every request) on stderr.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	sc "weir.dev/clienttests/internal/scenario"
)

const (
	// Partitions of the consumer group scenario's topic.
	groupPartitions = 3
	// Records produced before the restart (10 per partition) and after it
	// (6 more per partition).
	recordsBeforeRestart = 30
	recordsAfterRestart  = 48
	tag                  = "franz-go"
)

func main() {
	if len(os.Args) < 2 {
		sc.Failf("usage: franz PHASE BOOTSTRAP ARGS... (see the source)")
	}
	phase, args := os.Args[1], os.Args[2:]
	need := func(n int) {
		if len(args) != n {
			sc.Failf("%s takes %d arguments, got %q", phase, n, args)
		}
	}
	switch phase {
	case "groups-before-restart":
		need(4)
		groupsBeforeRestart(args[0], args[1], args[2], groupProtocol(args[3]))
	case "groups-after-restart":
		need(4)
		groupsAfterRestart(args[0], args[1], args[2], groupProtocol(args[3]))
	case "txn-before-restart":
		need(3)
		txnBeforeRestart(args[0], args[1], args[2])
	case "txn-after-restart":
		need(3)
		txnAfterRestart(args[0], args[1], args[2])
	case "eos":
		need(5)
		eos(args[0], args[1], args[2], args[3], args[4])
	case "admin":
		need(3)
		admin(args[0], args[1], args[2])
	default:
		sc.Failf("unknown phase %q", phase)
	}
	sc.Step("PASS %s", phase)
}

// newClient is a kgo client of the broker at `bootstrap` with kgo's logger
// on stderr (warnings, or everything with WEIR_GO_CLIENT_DEBUG=1).
func newClient(bootstrap string, opts ...kgo.Opt) *kgo.Client {
	level := kgo.LogLevelWarn
	if sc.Debug() {
		level = kgo.LogLevelDebug
	}
	base := []kgo.Opt{
		kgo.SeedBrokers(bootstrap),
		kgo.ClientID("weir-franz-go-test"),
		kgo.WithLogger(kgo.BasicLogger(os.Stderr, level, func() string {
			return time.Now().Format("15:04:05.000 ")
		})),
		// Bounded retries: a broker that keeps failing a request fails the
		// phase instead of hanging it.
		kgo.RetryTimeout(sc.OpTimeout),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	sc.Check(err, "create kgo client")
	return cl
}

// newAdmin is a kadm client whose cached metadata is at most 10 ms old
// (kadm answers ListTopics and the offset listings from it).
func newAdmin(bootstrap string) *kadm.Client {
	return kadm.NewClient(newClient(bootstrap, kgo.MetadataMinAge(10*time.Millisecond)))
}

// --- consumer group scenario ----------------------------------------------

// groupProtocol is "classic" or "consumer" (KIP-848).
type groupProtocol string

func (p groupProtocol) check() groupProtocol {
	if p != "classic" && p != "consumer" {
		sc.Failf("group protocol %q: expected classic or consumer", string(p))
	}
	return p
}

func groupsBeforeRestart(bootstrap, topic, group string, protocol groupProtocol) {
	protocol.check()
	adm := newAdmin(bootstrap)
	defer adm.Close()

	broker := onlyBroker(adm)
	createTopic(adm, topic, groupPartitions, map[string]*string{"segment.bytes": kmsg.StringPtr("1048576")})
	sc.Step("created %s with %d partitions", topic, groupPartitions)
	expectTopicAlreadyExists(adm, topic)
	expectListedTopic(adm, topic, groupPartitions, broker)
	expectTopicConfigs(adm, topic)
	expectUnknownTopicConfigs(adm, topic+"-does-not-exist")

	// Before any commit the group has no offsets at all.
	expectCommitted(adm, group, topic, nil)

	records := sc.Records(tag, 0, recordsBeforeRestart, groupPartitions)
	produce(bootstrap, topic, records)
	expectStartAndEndOffsets(adm, topic, groupPartitions, recordsBeforeRestart)

	consumer := consumeInGroup(bootstrap, topic, group, protocol, records)
	expectStableGroup(adm, group, topic, groupPartitions, protocol)
	consumer.Close() // leaves the group
	expectEmptyGroup(adm, group, protocol)
	expectCommitted(adm, group, topic, sc.EndOffsets(recordsBeforeRestart, groupPartitions))
}

func groupsAfterRestart(bootstrap, topic, group string, protocol groupProtocol) {
	protocol.check()
	adm := newAdmin(bootstrap)
	defer adm.Close()

	broker := onlyBroker(adm)
	expectListedTopic(adm, topic, groupPartitions, broker)
	expectTopicAlreadyExists(adm, topic)
	expectTopicConfigs(adm, topic)
	expectEmptyGroup(adm, group, protocol)
	expectCommitted(adm, group, topic, sc.EndOffsets(recordsBeforeRestart, groupPartitions))
	expectStartAndEndOffsets(adm, topic, groupPartitions, recordsBeforeRestart)

	records := sc.Records(tag, recordsBeforeRestart, recordsAfterRestart, groupPartitions)
	produce(bootstrap, topic, records)
	expectStartAndEndOffsets(adm, topic, groupPartitions, recordsAfterRestart)

	// The group resumes at its commits: exactly the records produced after
	// the restart, none of the earlier ones.
	consumer := consumeInGroup(bootstrap, topic, group, protocol, records)
	expectStableGroup(adm, group, topic, groupPartitions, protocol)
	consumer.Close()
	expectEmptyGroup(adm, group, protocol)
	expectCommitted(adm, group, topic, sc.EndOffsets(recordsAfterRestart, groupPartitions))
}

// onlyBroker checks ListBrokers names exactly the one broker at 127.0.0.1
// and returns its node id.
func onlyBroker(adm *kadm.Client) int32 {
	ctx, cancel := sc.Ctx()
	defer cancel()
	brokers, err := adm.ListBrokers(ctx)
	sc.Check(err, "ListBrokers")
	sc.Expect(len(brokers) == 1, "ListBrokers: %d brokers, expected 1: %+v", len(brokers), brokers)
	sc.Expect(brokers[0].Host == "127.0.0.1", "ListBrokers: host %q, expected 127.0.0.1", brokers[0].Host)
	return brokers[0].NodeID
}

func createTopic(adm *kadm.Client, topic string, partitions int32, configs map[string]*string) {
	ctx, cancel := sc.Ctx()
	defer cancel()
	resps, err := adm.CreateTopics(ctx, partitions, 1, configs, topic)
	sc.Check(err, "CreateTopics %s", topic)
	resp, err := resps.On(topic, nil)
	sc.Check(err, "CreateTopics %s: no response for the topic", topic)
	sc.Check(resp.Err, "CreateTopics %s (%s)", topic, resp.ErrMessage)
	sc.Expect(resp.NumPartitions == partitions, "CreateTopics %s: %d partitions in the response, expected %d",
		topic, resp.NumPartitions, partitions)
	sc.Expect(resp.ReplicationFactor == 1, "CreateTopics %s: replication factor %d, expected 1", topic, resp.ReplicationFactor)
	sc.Expect(resp.ID != (kadm.TopicID{}), "CreateTopics %s: no topic id", topic)
}

// expectTopicAlreadyExists creates `topic` again: TOPIC_ALREADY_EXISTS.
func expectTopicAlreadyExists(adm *kadm.Client, topic string) {
	ctx, cancel := sc.Ctx()
	defer cancel()
	resps, err := adm.CreateTopics(ctx, groupPartitions, 1, nil, topic)
	sc.Check(err, "CreateTopics %s again", topic)
	resp, err := resps.On(topic, nil)
	sc.Check(err, "CreateTopics %s again: no response for the topic", topic)
	sc.Expect(errors.Is(resp.Err, kerr.TopicAlreadyExists),
		"CreateTopics of existing %s: error %v (%s), expected TOPIC_ALREADY_EXISTS", topic, resp.Err, resp.ErrMessage)
	sc.Step("CreateTopics of existing %s: %v", topic, resp.Err)
}

// expectListedTopic checks ListTopics (all topics, internal ones filtered)
// has `topic` with `partitions` partitions, each led by `broker`, which is
// also its only replica and in-sync replica. Kafka's brokers learn of a new
// topic shortly after CreateTopics answered, so this waits (bounded) until
// the topic is listed.
func expectListedTopic(adm *kadm.Client, topic string, partitions int, broker int32) {
	deadline := time.Now().Add(sc.OpTimeout)
	var topics kadm.TopicDetails
	for {
		ctx, cancel := sc.Ctx()
		var err error
		topics, err = adm.ListTopics(ctx)
		cancel()
		sc.Check(err, "ListTopics")
		if _, ok := topics[topic]; ok || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	sc.Check(topics.Error(), "ListTopics: topic error")
	detail, ok := topics[topic]
	sc.Expect(ok, "ListTopics does not list %s after %v: %v", topic, sc.OpTimeout, topics.Names())
	sc.Expect(!detail.IsInternal, "ListTopics: %s is marked internal", topic)
	sc.Expect(!slices.Contains(topics.Names(), "__consumer_offsets"), "ListTopics lists internal __consumer_offsets")
	sc.Expect(len(detail.Partitions) == partitions, "ListTopics: %s has %d partitions, expected %d",
		topic, len(detail.Partitions), partitions)
	for p := int32(0); p < int32(partitions); p++ {
		pd, ok := detail.Partitions[p]
		sc.Expect(ok, "ListTopics: %s has no partition %d", topic, p)
		sc.Check(pd.Err, "ListTopics: %s/%d", topic, p)
		sc.Expect(pd.Leader == broker && slices.Equal(pd.Replicas, []int32{broker}) && slices.Equal(pd.ISR, []int32{broker}),
			"ListTopics: %s/%d leader %d replicas %v isr %v, expected broker %d everywhere",
			topic, p, pd.Leader, pd.Replicas, pd.ISR, broker)
	}
	sc.Step("ListTopics: %s with %d partitions on broker %d", topic, partitions, broker)
}

// expectTopicConfigs checks DescribeConfigs of the topic: segment.bytes is
// the value given at creation, as a topic override; cleanup.policy is
// Kafka's default.
func expectTopicConfigs(adm *kadm.Client, topic string) {
	ctx, cancel := sc.Ctx()
	defer cancel()
	configs, err := adm.DescribeTopicConfigs(ctx, topic)
	sc.Check(err, "DescribeTopicConfigs %s", topic)
	rc, err := configs.On(topic, nil)
	sc.Check(err, "DescribeTopicConfigs %s: no answer for the topic", topic)
	sc.Check(rc.Err, "DescribeTopicConfigs %s (%s)", topic, rc.ErrMessage)
	byKey := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		byKey[c.Key] = c
	}
	segment, ok := byKey["segment.bytes"]
	sc.Expect(ok && segment.Value != nil && *segment.Value == "1048576" && segment.Source == kmsg.ConfigSourceDynamicTopicConfig,
		"DescribeTopicConfigs %s: segment.bytes = %s, expected 1048576 from DYNAMIC_TOPIC_CONFIG", topic, describeConfig(segment, ok))
	cleanup, ok := byKey["cleanup.policy"]
	sc.Expect(ok && cleanup.Value != nil && *cleanup.Value == "delete",
		"DescribeTopicConfigs %s: cleanup.policy = %s, expected delete", topic, describeConfig(cleanup, ok))
}

func describeConfig(c kadm.Config, present bool) string {
	if !present {
		return "(missing)"
	}
	value := "null"
	if c.Value != nil {
		value = *c.Value
	}
	return fmt.Sprintf("%q (source %v)", value, c.Source)
}

func expectUnknownTopicConfigs(adm *kadm.Client, topic string) {
	ctx, cancel := sc.Ctx()
	defer cancel()
	configs, err := adm.DescribeTopicConfigs(ctx, topic)
	sc.Check(err, "DescribeTopicConfigs %s", topic)
	rc, err := configs.On(topic, nil)
	sc.Check(err, "DescribeTopicConfigs %s: no answer for the topic", topic)
	sc.Expect(errors.Is(rc.Err, kerr.UnknownTopicOrPartition),
		"DescribeTopicConfigs of missing %s: error %v, expected UNKNOWN_TOPIC_OR_PARTITION", topic, rc.Err)
}

// expectStartAndEndOffsets: ListStartOffsets 0 and ListEndOffsets
// `produced / partitions` on every partition.
func expectStartAndEndOffsets(adm *kadm.Client, topic string, partitions, produced int) {
	ctx, cancel := sc.Ctx()
	defer cancel()
	starts, err := adm.ListStartOffsets(ctx, topic)
	sc.Check(err, "ListStartOffsets %s", topic)
	ends, err := adm.ListEndOffsets(ctx, topic)
	sc.Check(err, "ListEndOffsets %s", topic)
	wantEnds := sc.EndOffsets(produced, partitions)
	for p := int32(0); p < int32(partitions); p++ {
		start, ok := starts.Lookup(topic, p)
		sc.Expect(ok && start.Err == nil && start.Offset == 0, "ListStartOffsets %s/%d: %+v, expected 0", topic, p, start)
		end, ok := ends.Lookup(topic, p)
		sc.Expect(ok && end.Err == nil && end.Offset == wantEnds[p], "ListEndOffsets %s/%d: %+v, expected %d",
			topic, p, end, wantEnds[p])
	}
	sc.Expect(len(starts[topic]) == partitions && len(ends[topic]) == partitions,
		"ListStart/EndOffsets %s: %d/%d partitions, expected %d", topic, len(starts[topic]), len(ends[topic]), partitions)
}

// produce sends `records` with kgo's defaults (idempotent, acks=all) in one
// ProduceSync call (many in flight), each to its partition, and checks each
// acknowledged offset.
func produce(bootstrap, topic string, records []sc.Record) {
	cl := newClient(bootstrap, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()))
	defer cl.Close()
	ctx, cancel := sc.Ctx()
	defer cancel()
	produceSyncExactly(ctx, cl.ProduceSync, topic, records)
	sc.Step("produced %d records to %s (idempotent, acks=all)", len(records), topic)
}

// produceSyncExactly produces `records` with one ProduceSync call and checks
// each was acknowledged at its expected partition and offset.
func produceSyncExactly(ctx context.Context, produceSync func(context.Context, ...*kgo.Record) kgo.ProduceResults,
	topic string, records []sc.Record) {
	sent := toKgo(topic, records)
	index := map[*kgo.Record]int{}
	for i, r := range sent {
		index[r] = i
	}
	results := produceSync(ctx, sent...)
	sc.Expect(len(results) == len(records), "ProduceSync: %d results for %d records", len(results), len(records))
	// Results come in completion order: match them by record.
	for _, result := range results {
		i, ok := index[result.Record]
		sc.Expect(ok, "ProduceSync returned a record it was not given")
		want := records[i]
		sc.Check(result.Err, "produce record %d to %s", want.Index, topic)
		sc.Expect(result.Record.Partition == want.Partition && result.Record.Offset == want.Offset,
			"record %d acknowledged at %s/%d@%d, expected partition %d offset %d",
			want.Index, topic, result.Record.Partition, result.Record.Offset, want.Partition, want.Offset)
	}
}

func toKgo(topic string, records []sc.Record) []*kgo.Record {
	out := make([]*kgo.Record, len(records))
	for i, r := range records {
		headers := make([]kgo.RecordHeader, len(r.Headers))
		for j, h := range r.Headers {
			headers[j] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
		}
		out[i] = &kgo.Record{Topic: topic, Partition: r.Partition, Key: r.Key, Value: r.Value, Headers: headers}
	}
	return out
}

func fromKgo(r *kgo.Record) sc.Consumed {
	headers := make([]sc.Header, len(r.Headers))
	for i, h := range r.Headers {
		headers[i] = sc.Header{Key: h.Key, Value: h.Value}
	}
	return sc.Consumed{Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value, Headers: headers}
}

// pollExactly polls `cl` until `checker` has every expected record, failing
// on any unexpected one or after sc.ConsumeTimeout.
func pollExactly(cl *kgo.Client, topic string, checker *sc.Checker) {
	ctx, cancel := context.WithTimeout(context.Background(), sc.ConsumeTimeout)
	defer cancel()
	var fetchErrors []string
	for !checker.Done() {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			sc.Failf("consuming %s: got %s after %v; fetch errors: %v", topic, checker.Progress(), sc.ConsumeTimeout, fetchErrors)
		}
		fetches.EachError(func(t string, p int32, err error) {
			if len(fetchErrors) < 20 {
				fetchErrors = append(fetchErrors, fmt.Sprintf("%s/%d: %v", t, p, err))
			}
		})
		fetches.EachRecord(func(r *kgo.Record) {
			sc.Check(checker.Add(r.Topic, fromKgo(r)), "consumed record")
		})
	}
}

// consumeInGroup joins `group` (no auto-commit) with `protocol`, reads
// exactly `records` from where the group's commits say, commits, and
// returns the client still in the group.
func consumeInGroup(bootstrap, topic, group string, protocol groupProtocol, records []sc.Record) *kgo.Client {
	opts := []kgo.Opt{
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}
	if protocol == "consumer" {
		opts = append(opts, kgo.ServerSideBalancer(), kgo.Balancers(kgo.RangeBalancer()))
	}
	cl := newClient(bootstrap, opts...)
	pollExactly(cl, topic, sc.NewChecker(topic, records))
	ctx, cancel := sc.Ctx()
	defer cancel()
	sc.Check(cl.CommitUncommittedOffsets(ctx), "commit offsets of %s", group)
	sc.Step("group %s (%s protocol) consumed exactly %d records and committed", group, protocol, len(records))
	return cl
}

// coordinatorNotReady: the errors Kafka answers group requests with while
// its group coordinator is not ready (__consumer_offsets just created, or
// being loaded after a restart); a client retries them.
func coordinatorNotReady(err error) bool {
	return errors.Is(err, kerr.CoordinatorNotAvailable) || errors.Is(err, kerr.NotCoordinator) ||
		errors.Is(err, kerr.CoordinatorLoadInProgress)
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

// expectCommitted checks FetchOffsets of the group: exactly `want` on
// `topic` (none at all when `want` is nil), and no other topic.
func expectCommitted(adm *kadm.Client, group, topic string, want map[int32]int64) {
	var offsets kadm.OffsetResponses
	untilCoordinatorReady("FetchOffsets "+group, func() error {
		ctx, cancel := sc.Ctx()
		defer cancel()
		var err error
		offsets, err = adm.FetchOffsets(ctx, group)
		if err == nil {
			err = offsets.Error()
		}
		return err
	})
	got := map[int32]int64{}
	offsets.Each(func(o kadm.OffsetResponse) {
		sc.Expect(o.Topic == topic, "FetchOffsets %s: offset for unexpected topic %s/%d", group, o.Topic, o.Partition)
		got[o.Partition] = o.At
	})
	if want == nil {
		want = map[int32]int64{}
	}
	sc.Expect(fmt.Sprint(got) == fmt.Sprint(want), "FetchOffsets %s: %v, expected %v", group, got, want)
	sc.Step("group %s committed offsets: %v", group, got)
}

// describeGroup describes one group (retrying while its coordinator is not
// ready).
func describeGroup(adm *kadm.Client, group string) kadm.DescribedGroup {
	var g kadm.DescribedGroup
	untilCoordinatorReady("DescribeGroups "+group, func() error {
		ctx, cancel := sc.Ctx()
		defer cancel()
		described, err := adm.DescribeGroups(ctx, group)
		if err != nil {
			return err
		}
		g, err = described.On(group, nil)
		sc.Check(err, "DescribeGroups %s: no answer for the group", group)
		return g.Err
	})
	return g
}

// expectStableGroup: the group has one member, subscribed to `topic` and
// assigned every partition of it. Classic groups are described with
// DescribeGroups (protocol type consumer, kgo's cooperative-sticky
// balancer), KIP-848 groups with ConsumerGroupDescribe (range assignor,
// assignment = target assignment, member epoch = group epoch).
func expectStableGroup(adm *kadm.Client, group, topic string, partitions int, protocol groupProtocol) {
	want := make([]int32, partitions)
	for p := range want {
		want[p] = int32(p)
	}
	if protocol == "consumer" {
		g := describeConsumerGroup(adm, group)
		sc.Expect(g.State == "Stable" && g.AssignorName == "range" && g.AssignmentEpoch == g.Epoch,
			"ConsumerGroupDescribe %s: state %q assignor %q epoch %d assignment epoch %d, expected Stable range and equal epochs",
			group, g.State, g.AssignorName, g.Epoch, g.AssignmentEpoch)
		sc.Expect(len(g.Members) == 1, "ConsumerGroupDescribe %s: %d members, expected 1", group, len(g.Members))
		m := g.Members[0]
		sc.Expect(slices.Equal(m.SubscribedTopics, []string{topic}) && m.MemberEpoch == g.Epoch,
			"ConsumerGroupDescribe %s: member subscribed to %v at epoch %d, expected [%s] at the group's epoch %d",
			group, m.SubscribedTopics, m.MemberEpoch, topic, g.Epoch)
		for name, set := range map[string]kadm.TopicsSet{"assignment": m.Assignment, "target assignment": m.TargetAssignment} {
			got := slices.Sorted(slices.Values(set.Sorted()[0].Partitions))
			sc.Expect(len(set) == 1 && slices.Equal(got, want), "ConsumerGroupDescribe %s: member %s %v, expected %s %v",
				group, name, set, topic, want)
		}
		return
	}
	g := describeGroup(adm, group)
	sc.Expect(g.State == "Stable" && g.ProtocolType == "consumer" && g.Protocol == "cooperative-sticky",
		"DescribeGroups %s: state %q protocol type %q protocol %q, expected Stable consumer cooperative-sticky",
		group, g.State, g.ProtocolType, g.Protocol)
	sc.Expect(len(g.Members) == 1, "DescribeGroups %s: %d members, expected 1", group, len(g.Members))
	member := g.Members[0]
	joined, ok := member.Join.AsConsumer()
	sc.Expect(ok && slices.Equal(joined.Topics, []string{topic}), "DescribeGroups %s: member subscribed to %+v, expected [%s]",
		group, joined, topic)
	assigned, ok := member.Assigned.AsConsumer()
	sc.Expect(ok && len(assigned.Topics) == 1 && assigned.Topics[0].Topic == topic,
		"DescribeGroups %s: member assigned %+v, expected %s", group, assigned, topic)
	got := slices.Sorted(slices.Values(assigned.Topics[0].Partitions))
	sc.Expect(slices.Equal(got, want), "DescribeGroups %s: assigned partitions %v, expected %v", group, got, want)
}

// expectEmptyGroup: the group is Empty, without members.
func expectEmptyGroup(adm *kadm.Client, group string, protocol groupProtocol) {
	if protocol == "consumer" {
		g := describeConsumerGroup(adm, group)
		sc.Expect(g.State == "Empty" && len(g.Members) == 0,
			"ConsumerGroupDescribe %s: state %q with %d members, expected Empty with none", group, g.State, len(g.Members))
		return
	}
	g := describeGroup(adm, group)
	sc.Expect(g.State == "Empty" && len(g.Members) == 0, "DescribeGroups %s: state %q with %d members, expected Empty with none",
		group, g.State, len(g.Members))
}

// describeConsumerGroup describes one KIP-848 group (retrying while its
// coordinator is not ready).
func describeConsumerGroup(adm *kadm.Client, group string) kadm.DescribedConsumerGroup {
	var g kadm.DescribedConsumerGroup
	untilCoordinatorReady("DescribeConsumerGroups "+group, func() error {
		ctx, cancel := sc.Ctx()
		defer cancel()
		described, err := adm.DescribeConsumerGroups(ctx, group)
		if err != nil {
			return err
		}
		var ok bool
		g, ok = described[group]
		sc.Expect(ok, "DescribeConsumerGroups %s: no answer for the group", group)
		return g.Err
	})
	return g
}

// --- transactions ----------------------------------------------------------

const (
	txnPartitions = 2
	// Records per transaction: two per partition, so each transaction
	// takes 3 offsets per partition (2 records and its COMMIT or ABORT
	// marker).
	txnRecords = 2 * txnPartitions
	txnTag     = "franz-go-txn"
)

// txnBatch returns the records of transaction number `n` (0-based) of the
// scenario, at the offsets they take: transaction n occupies offsets
// 3n..3n+2 of each partition.
func txnBatch(n int) []sc.Record {
	records := sc.Records(txnTag, n*txnRecords, (n+1)*txnRecords, txnPartitions)
	for i := range records {
		records[i].Offset = int64(3*n + i/txnPartitions)
	}
	return records
}

// runTransaction produces `records` in one transaction of `cl` and ends it
// with a commit or an abort.
func runTransaction(cl *kgo.Client, topic string, records []sc.Record, commit bool) {
	sc.Check(cl.BeginTransaction(), "BeginTransaction")
	ctx, cancel := sc.Ctx()
	defer cancel()
	produceSyncExactly(ctx, cl.ProduceSync, topic, records)
	end := kgo.TryAbort
	if commit {
		end = kgo.TryCommit
	}
	sc.Check(cl.EndTransaction(ctx, end), "EndTransaction(commit=%v)", commit)
	sc.Step("transaction of %d records ended, commit=%v", len(records), commit)
}

func transactionalProducer(bootstrap, txnID string) *kgo.Client {
	return newClient(bootstrap,
		kgo.TransactionalID(txnID),
		kgo.TransactionTimeout(60*time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)
}

// readPartitions reads `topic` from offset 0 with a direct (groupless)
// consumer at the given isolation level and checks it returns exactly
// `records`.
func readPartitions(bootstrap, topic string, isolation kgo.IsolationLevel, records []sc.Record) {
	start := map[int32]kgo.Offset{}
	for p := int32(0); p < txnPartitions; p++ {
		start[p] = kgo.NewOffset().At(0)
	}
	cl := newClient(bootstrap,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}),
		kgo.FetchIsolationLevel(isolation),
	)
	defer cl.Close()
	pollExactly(cl, topic, sc.NewChecker(topic, records))
}

// expectTxnEndOffsets: the end offset (read_uncommitted) and the last
// stable offset (read_committed) of every partition are 3 per transaction
// (waiting for Kafka's asynchronous markers, see sc.Eventually).
func expectTxnEndOffsets(adm *kadm.Client, topic string, transactions int) {
	want := map[int32]int64{}
	for p := int32(0); p < txnPartitions; p++ {
		want[p] = int64(3 * transactions)
	}
	expectEndOffsets(adm, topic, want)
}

// expectEndOffsets: ListEndOffsets and ListCommittedOffsets of `topic` are
// both exactly `want` (no transaction is open), once Kafka wrote its
// markers.
func expectEndOffsets(adm *kadm.Client, topic string, want map[int32]int64) {
	for name, list := range map[string]func(context.Context, ...string) (kadm.ListedOffsets, error){
		"ListEndOffsets":       adm.ListEndOffsets,
		"ListCommittedOffsets": adm.ListCommittedOffsets,
	} {
		sc.Eventually(fmt.Sprintf("%s %s", name, topic), func() error {
			ctx, cancel := sc.Ctx()
			defer cancel()
			ends, err := list(ctx, topic)
			if err != nil {
				return err
			}
			got := map[int32]int64{}
			var partitionErr error
			ends.Each(func(o kadm.ListedOffset) {
				if o.Err != nil {
					partitionErr = fmt.Errorf("%s/%d: %w", topic, o.Partition, o.Err)
				}
				got[o.Partition] = o.Offset
			})
			if partitionErr != nil {
				return partitionErr
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				return fmt.Errorf("%v, expected %v", got, want)
			}
			return nil
		})
	}
}

// Transactions 0 and 2 commit, 1 aborts: read_committed sees 0 and 2,
// read_uncommitted sees all three.
func txnBeforeRestart(bootstrap, topic, txnID string) {
	adm := newAdmin(bootstrap)
	defer adm.Close()
	createTopic(adm, topic, txnPartitions, nil)

	cl := transactionalProducer(bootstrap, txnID)
	runTransaction(cl, topic, txnBatch(0), true)
	runTransaction(cl, topic, txnBatch(1), false)
	runTransaction(cl, topic, txnBatch(2), true)
	cl.Close()

	expectTxnEndOffsets(adm, topic, 3)
	readPartitions(bootstrap, topic, kgo.ReadCommitted(), slices.Concat(txnBatch(0), txnBatch(2)))
	sc.Step("read_committed: exactly the 2 committed transactions")
	readPartitions(bootstrap, topic, kgo.ReadUncommitted(), slices.Concat(txnBatch(0), txnBatch(1), txnBatch(2)))
	sc.Step("read_uncommitted: all 3 transactions")
	expectTransactionState(adm, txnID, "CompleteCommit")
}

// After the restart the aborted transaction is still skipped; a new
// producer with the same transactional id commits a 4th transaction.
func txnAfterRestart(bootstrap, topic, txnID string) {
	adm := newAdmin(bootstrap)
	defer adm.Close()
	expectTxnEndOffsets(adm, topic, 3)
	readPartitions(bootstrap, topic, kgo.ReadCommitted(), slices.Concat(txnBatch(0), txnBatch(2)))
	sc.Step("read_committed after restart: exactly the 2 committed transactions")
	expectTransactionState(adm, txnID, "CompleteCommit")

	cl := transactionalProducer(bootstrap, txnID)
	runTransaction(cl, topic, txnBatch(3), true)
	cl.Close()
	expectTxnEndOffsets(adm, topic, 4)
	readPartitions(bootstrap, topic, kgo.ReadCommitted(), slices.Concat(txnBatch(0), txnBatch(2), txnBatch(3)))
	sc.Step("read_committed: exactly the 3 committed transactions")
	expectTransactionState(adm, txnID, "CompleteCommit")
}

// expectTransactionState: DescribeTransactions shows `state` and no
// partitions (waiting for Kafka's asynchronous completion, see
// sc.Eventually).
func expectTransactionState(adm *kadm.Client, txnID, state string) {
	sc.Eventually("DescribeTransactions "+txnID, func() error {
		ctx, cancel := sc.Ctx()
		defer cancel()
		described, err := adm.DescribeTransactions(ctx, txnID)
		if err != nil {
			return err
		}
		txn, ok := described[txnID]
		if !ok {
			return fmt.Errorf("no answer for %s", txnID)
		}
		if txn.Err != nil {
			return txn.Err
		}
		if txn.State != state || len(txn.Topics) != 0 {
			return fmt.Errorf("state %q topics %v, expected %s and none", txn.State, txn.Topics, state)
		}
		return nil
	})
}

// --- exactly-once consume-transform-produce ---------------------------------

// eos copies every record of `input` to `output` through a
// GroupTransactSession (the input offsets are committed inside each
// transaction), then checks `output` read_committed holds exactly one copy of
// each and the group's commits are the input's end offsets.
func eos(bootstrap, input, output, group, txnID string) {
	adm := newAdmin(bootstrap)
	defer adm.Close()
	createTopic(adm, input, txnPartitions, nil)
	createTopic(adm, output, txnPartitions, nil)
	const total = 40
	inputRecords := sc.Records(txnTag+"-in", 0, total, txnPartitions)
	produce(bootstrap, input, inputRecords)

	level := kgo.LogLevelWarn
	if sc.Debug() {
		level = kgo.LogLevelDebug
	}
	session, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(bootstrap),
		kgo.WithLogger(kgo.BasicLogger(os.Stderr, level, nil)),
		kgo.RetryTimeout(sc.OpTimeout),
		kgo.TransactionalID(txnID),
		kgo.TransactionTimeout(60*time.Second),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(input),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	sc.Check(err, "NewGroupTransactSession")
	// Each record is copied to the same partition of the output with its
	// key, value and headers; transactions are whatever each poll returned.
	checker := sc.NewChecker(input, inputRecords)
	deadline := time.Now().Add(sc.ConsumeTimeout)
	transactions := 0
	// Each committed transaction ends with one COMMIT marker (one offset)
	// in every output partition it wrote to.
	markers := map[int32]int64{}
	for !checker.Done() {
		sc.Expect(time.Now().Before(deadline), "eos: copied %s after %v", checker.Progress(), sc.ConsumeTimeout)
		// At most 7 records per poll, so the copy takes several
		// transactions.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		fetches := session.PollRecords(ctx, 7)
		cancel()
		var copies []*kgo.Record
		fetches.EachRecord(func(r *kgo.Record) {
			sc.Check(checker.Add(r.Topic, fromKgo(r)), "eos: input record")
			copies = append(copies, &kgo.Record{Topic: output, Partition: r.Partition, Key: r.Key, Value: r.Value, Headers: r.Headers})
		})
		if len(copies) == 0 {
			continue
		}
		sc.Check(session.Begin(), "eos: Begin")
		ctx, cancel = sc.Ctx()
		sc.Check(session.ProduceSync(ctx, copies...).FirstErr(), "eos: produce copies")
		committed, err := session.End(ctx, kgo.TryCommit)
		cancel()
		sc.Check(err, "eos: End")
		sc.Expect(committed, "eos: transaction %d was not committed (no rebalance should happen)", transactions)
		transactions++
		written := map[int32]bool{}
		for _, r := range copies {
			written[r.Partition] = true
		}
		for p := range written {
			markers[p]++
		}
	}
	session.Close()
	sc.Step("eos: copied %d records in %d transactions", total, transactions)

	// Each output partition holds its copies plus one marker per
	// transaction that wrote to it: its end offset proves no record was
	// written twice.
	wantEnds := map[int32]int64{}
	for _, r := range inputRecords {
		wantEnds[r.Partition]++
	}
	for p, n := range markers {
		wantEnds[p] += n
	}
	readOutput(bootstrap, output, inputRecords, wantEnds)
	expectCommitted(adm, group, input, sc.EndOffsets(total, txnPartitions))
}

// readOutput checks the end offsets of `topic` (read_uncommitted and
// read_committed: no transaction is open) are `wantEnds`, then reads it
// read_committed from the start and checks each partition holds exactly
// the keys, values and headers of `records` on it, in order.
func readOutput(bootstrap, topic string, records []sc.Record, wantEnds map[int32]int64) {
	adm := newAdmin(bootstrap)
	defer adm.Close()
	expectEndOffsets(adm, topic, wantEnds)

	start := map[int32]kgo.Offset{}
	for p := int32(0); p < txnPartitions; p++ {
		start[p] = kgo.NewOffset().At(0)
	}
	cl := newClient(bootstrap,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	defer cl.Close()
	wanted := map[int32][]sc.Record{}
	for _, r := range records {
		wanted[r.Partition] = append(wanted[r.Partition], r)
	}
	got := map[int32]int{}
	lastOffset := map[int32]int64{}
	received := 0
	pollCtx, pollCancel := context.WithTimeout(context.Background(), sc.ConsumeTimeout)
	defer pollCancel()
	for received < len(records) {
		fetches := cl.PollFetches(pollCtx)
		sc.Expect(pollCtx.Err() == nil, "reading %s: %d of %d records after %v", topic, received, len(records), sc.ConsumeTimeout)
		fetches.EachRecord(func(r *kgo.Record) {
			n := got[r.Partition]
			want := wanted[r.Partition]
			sc.Expect(n < len(want), "%s/%d@%d: unexpected extra record %q", topic, r.Partition, r.Offset, r.Key)
			last, seen := lastOffset[r.Partition]
			sc.Expect(r.Offset < wantEnds[r.Partition] && (!seen || r.Offset > last),
				"%s/%d: record at offset %d after %d, end offset %d", topic, r.Partition, r.Offset, last, wantEnds[r.Partition])
			lastOffset[r.Partition] = r.Offset
			// Offsets depend on where markers fell: compare the rest.
			w := want[n]
			c := fromKgo(r)
			c.Offset = w.Offset
			sc.Check(sc.NewChecker(topic, []sc.Record{w}).Add(r.Topic, c), "copied record")
			got[r.Partition] = n + 1
			received++
		})
	}
	sc.Step("read_committed %s: exactly one copy of each of the %d records", topic, len(records))
}

// --- more of kadm ----------------------------------------------------------

// admin exercises kadm calls beyond the group scenario on a 2-partition
// topic holding 3 records per partition with known timestamps (record i:
// partition i % 2, CreateTime 1_700_000_000_000 + i s): DescribeProducers,
// ListOffsets by max timestamp and by time, admin offset commits, Lag,
// ListGroups, DeleteOffsets, DeleteGroups, CreatePartitions, DeleteTopics,
// DescribeConfigs of the broker and of the cluster-wide defaults.
func admin(bootstrap, topic, group string) {
	adm := newAdmin(bootstrap)
	defer adm.Close()
	broker := onlyBroker(adm)
	createTopic(adm, topic, 2, nil)
	expectListedTopic(adm, topic, 2, broker)

	const base = int64(1_700_000_000_000)
	records := sc.Records(tag+"-admin", 0, 6, 2)
	cl := newClient(bootstrap, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := sc.Ctx()
	defer cancel()
	for i, r := range toKgo(topic, records) {
		// One at a time: one batch (one sequence number) per record.
		r.Timestamp = time.UnixMilli(base + int64(i)*1000)
		sc.Check(cl.ProduceSync(ctx, r).FirstErr(), "produce record %d", i)
	}
	cl.Close()

	// One idempotent producer per partition, 3 batches of one record each:
	// last sequence 2, no open transaction.
	producers, err := adm.DescribeProducers(ctx, kadm.TopicsSet{topic: {0: {}, 1: {}}})
	sc.Check(err, "DescribeProducers")
	var producerIDs []int64
	for p := int32(0); p < 2; p++ {
		dp, ok := producers[topic].Partitions[p]
		sc.Expect(ok, "DescribeProducers: no answer for %s/%d", topic, p)
		sc.Check(dp.Err, "DescribeProducers %s/%d", topic, p)
		sc.Expect(len(dp.ActiveProducers) == 1, "DescribeProducers %s/%d: %d producers, expected 1", topic, p, len(dp.ActiveProducers))
		ap := dp.ActiveProducers.Sorted()[0]
		sc.Expect(ap.ProducerID >= 0 && ap.ProducerEpoch == 0 && ap.LastSequence == 2 &&
			ap.LastTimestamp == base+int64(4+p)*1000 && ap.CurrentTxnStartOffset == -1,
			"DescribeProducers %s/%d: %+v, expected epoch 0, last sequence 2, last timestamp %d, no transaction",
			topic, p, ap, base+int64(4+p)*1000)
		producerIDs = append(producerIDs, ap.ProducerID)
	}
	sc.Expect(producerIDs[0] == producerIDs[1], "DescribeProducers: producer ids %v, expected one producer", producerIDs)

	// ListOffsets: max timestamp, first offset at or after a time, and a
	// time after every record (kadm then reports the end offset).
	expectListed(adm, "ListMaxTimestampOffsets", topic, map[int32][2]int64{0: {2, base + 4000}, 1: {2, base + 5000}},
		func(ctx context.Context) (kadm.ListedOffsets, error) { return adm.ListMaxTimestampOffsets(ctx, topic) })
	expectListed(adm, "ListOffsetsAfterMilli(+2.5 s)", topic, map[int32][2]int64{0: {2, base + 4000}, 1: {1, base + 3000}},
		func(ctx context.Context) (kadm.ListedOffsets, error) {
			return adm.ListOffsetsAfterMilli(ctx, base+2500, topic)
		})
	expectListed(adm, "ListOffsetsAfterMilli(future)", topic, map[int32][2]int64{0: {3, -1}, 1: {3, -1}},
		func(ctx context.Context) (kadm.ListedOffsets, error) {
			return adm.ListOffsetsAfterMilli(ctx, base+3_600_000, topic)
		})

	// Offsets committed by an admin (no member, generation -1).
	commits := kadm.Offsets{}
	commits.AddOffset(topic, 0, 2, -1)
	commits.AddOffset(topic, 1, 1, -1)
	untilCoordinatorReady("CommitOffsets "+group, func() error {
		ctx, cancel := sc.Ctx()
		defer cancel()
		return adm.CommitAllOffsets(ctx, group, commits)
	})
	expectCommitted(adm, group, topic, map[int32]int64{0: 2, 1: 1})
	lags, err := adm.Lag(ctx, group)
	sc.Check(err, "Lag")
	lag := lags[group]
	sc.Check(lag.Error(), "Lag %s", group)
	sc.Expect(lag.State == "Empty", "Lag %s: state %q, expected Empty", group, lag.State)
	for p, want := range map[int32]int64{0: 1, 1: 2} {
		l := lag.Lag[topic][p]
		sc.Expect(l.Err == nil && l.Lag == want && l.End.Offset == 3, "Lag %s %s/%d: %+v, expected lag %d to end offset 3",
			group, topic, p, l, want)
	}
	listed, err := adm.ListGroups(ctx)
	sc.Check(err, "ListGroups")
	lg, ok := listed[group]
	sc.Expect(ok && lg.State == "Empty" && lg.ProtocolType == "" && lg.GroupType == "classic",
		"ListGroups: %s %+v, expected an Empty classic group without protocol type", group, lg)

	// OffsetDelete of one partition, then DeleteGroups (and of a group
	// that does not exist).
	deleted, err := adm.DeleteOffsets(ctx, group, kadm.TopicsSet{topic: {0: {}}})
	sc.Check(err, "DeleteOffsets")
	sc.Check(deleted.Error(), "DeleteOffsets %s/0", topic)
	expectCommitted(adm, group, topic, map[int32]int64{1: 1})
	missingGroup := group + "-does-not-exist"
	groupsDeleted, err := adm.DeleteGroups(ctx, group, missingGroup)
	sc.Check(err, "DeleteGroups")
	sc.Check(groupsDeleted[group].Err, "DeleteGroups %s", group)
	sc.Expect(errors.Is(groupsDeleted[missingGroup].Err, kerr.GroupIDNotFound),
		"DeleteGroups %s: %v, expected GROUP_ID_NOT_FOUND", missingGroup, groupsDeleted[missingGroup].Err)
	expectCommitted(adm, group, topic, nil)

	// CreatePartitions: one more, and for a topic that does not exist.
	missingTopic := topic + "-does-not-exist"
	added, err := adm.CreatePartitions(ctx, 1, topic)
	sc.Check(err, "CreatePartitions")
	sc.Check(added[topic].Err, "CreatePartitions %s (%s)", topic, added[topic].ErrMessage)
	addedMissing, err := adm.CreatePartitions(ctx, 1, missingTopic)
	sc.Check(err, "CreatePartitions")
	sc.Expect(errors.Is(addedMissing[missingTopic].Err, kerr.UnknownTopicOrPartition),
		"CreatePartitions %s: %v, expected UNKNOWN_TOPIC_OR_PARTITION", missingTopic, addedMissing[missingTopic].Err)
	sc.Eventually("ListTopics after CreatePartitions", func() error {
		ctx, cancel := sc.Ctx()
		defer cancel()
		topics, err := adm.ListTopics(ctx, topic)
		if err == nil && len(topics[topic].Partitions) != 3 {
			err = fmt.Errorf("%s has %d partitions, expected 3", topic, len(topics[topic].Partitions))
		}
		return err
	})
	// The new partition is empty; the others keep their records.
	expectEndOffsets(adm, topic, map[int32]int64{0: 3, 1: 3, 2: 0})

	// Broker configs: weir's node, and the cluster-wide dynamic defaults
	// (resource name ""), of which Kafka reports only configs set
	// dynamically for the whole cluster.
	brokerConfigs, err := adm.DescribeBrokerConfigs(ctx, broker)
	sc.Check(err, "DescribeBrokerConfigs %d", broker)
	rc, err := brokerConfigs.On(fmt.Sprint(broker), nil)
	sc.Check(err, "DescribeBrokerConfigs %d: no answer for the broker", broker)
	sc.Check(rc.Err, "DescribeBrokerConfigs %d", broker)
	byKey := map[string]string{}
	for _, c := range rc.Configs {
		if c.Value != nil {
			byKey[c.Key] = *c.Value
		}
	}
	sc.Expect(byKey["message.max.bytes"] == "1048588" && byKey["auto.create.topics.enable"] == "true" && byKey["num.partitions"] == "1",
		"DescribeBrokerConfigs %d: message.max.bytes %q auto.create.topics.enable %q num.partitions %q, expected 1048588 true 1",
		broker, byKey["message.max.bytes"], byKey["auto.create.topics.enable"], byKey["num.partitions"])
	clusterConfigs, err := adm.DescribeBrokerConfigs(ctx)
	sc.Check(err, "DescribeBrokerConfigs (cluster defaults)")
	for _, rc := range clusterConfigs {
		sc.Check(rc.Err, "DescribeBrokerConfigs (cluster defaults)")
		for _, c := range rc.Configs {
			sc.Expect(c.Source == kmsg.ConfigSourceDynamicDefaultBrokerConfig,
				"DescribeConfigs of the cluster-wide broker defaults (resource name %q): %s = %s, expected only DYNAMIC_DEFAULT_BROKER_CONFIG entries",
				rc.Name, c.Key, describeConfig(c, true))
		}
	}

	// DeleteTopics (and of a topic that does not exist); the topic is
	// gone from ListTopics once Kafka's broker applied the deletion.
	topicsDeleted, err := adm.DeleteTopics(ctx, topic, missingTopic)
	sc.Check(err, "DeleteTopics")
	sc.Check(topicsDeleted[topic].Err, "DeleteTopics %s", topic)
	sc.Expect(errors.Is(topicsDeleted[missingTopic].Err, kerr.UnknownTopicOrPartition),
		"DeleteTopics %s: %v, expected UNKNOWN_TOPIC_OR_PARTITION", missingTopic, topicsDeleted[missingTopic].Err)
	sc.Eventually("ListTopics after DeleteTopics", func() error {
		ctx, cancel := sc.Ctx()
		defer cancel()
		topics, err := adm.ListTopics(ctx)
		if err == nil && slices.Contains(topics.Names(), topic) {
			err = fmt.Errorf("%s is still listed", topic)
		}
		return err
	})
}

// expectListed checks a ListOffsets variant returns exactly `want`
// (partition -> {offset, timestamp}) for `topic`.
func expectListed(adm *kadm.Client, name, topic string, want map[int32][2]int64,
	list func(context.Context) (kadm.ListedOffsets, error)) {
	ctx, cancel := sc.Ctx()
	defer cancel()
	listed, err := list(ctx)
	sc.Check(err, "%s %s", name, topic)
	got := map[int32][2]int64{}
	listed.Each(func(o kadm.ListedOffset) {
		sc.Check(o.Err, "%s %s/%d", name, topic, o.Partition)
		got[o.Partition] = [2]int64{o.Offset, o.Timestamp}
	})
	sc.Expect(fmt.Sprint(got) == fmt.Sprint(want), "%s %s: {offset timestamp} %v, expected %v", name, topic, got, want)
}
