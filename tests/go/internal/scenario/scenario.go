// Package scenario holds what the Go client programs share: the records a
// scenario produces (derived from their index alone, so any phase can
// recompute them), a checker that accepts exactly those records in
// per-partition order and nothing else, and small helpers to fail loudly.
package scenario

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// OpTimeout bounds every single client operation (admin call, produce,
// commit).
const OpTimeout = 30 * time.Second

// ConsumeTimeout bounds reading back everything a phase expects, including
// joining the group (Kafka and weir delay a new group's first rebalance by
// 3 s).
const ConsumeTimeout = 90 * time.Second

// Header is one record header.
type Header struct {
	Key   string
	Value []byte
}

// Record is one record a scenario produces, with where it must land.
type Record struct {
	Index     int
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []Header
}

// Records returns records [from, to) of a scenario tagged `tag` on a topic
// with `partitions` partitions. Record i goes to partition i % partitions;
// as every phase produces a multiple of `partitions` records, in index order,
// record i lands at offset i / partitions (the topic holds nothing else).
//
// Headers are ordered and include a repeated key and an empty value, so the
// check covers header order, duplicates and empty values.
func Records(tag string, from, to, partitions int) []Record {
	out := make([]Record, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, Record{
			Index:     i,
			Partition: int32(i % partitions),
			Offset:    int64(i / partitions),
			Key:       fmt.Appendf(nil, "%s-key-%04d", tag, i),
			// Values of different lengths, some over a few hundred bytes.
			Value: fmt.Appendf(nil, "%s-value-%04d-%s", tag, i, strings.Repeat("v", (i*37)%500)),
			Headers: []Header{
				{Key: "index", Value: fmt.Appendf(nil, "%d", i)},
				{Key: "client", Value: []byte(tag)},
				{Key: "dup", Value: []byte("first")},
				{Key: "dup", Value: []byte("second")},
				{Key: "empty", Value: []byte{}},
			},
		})
	}
	return out
}

// Consumed is one record as a client returned it.
type Consumed struct {
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []Header
}

// Checker accepts exactly the expected records: each partition's records
// must arrive in offset order, at their offsets, with their exact keys,
// values and headers; anything else (a gap, a repeat, an unknown record) is
// an error.
type Checker struct {
	topic    string
	expected map[int32][]Record
	next     map[int32]int
	total    int
	received int
}

// NewChecker expects `records` on `topic`.
func NewChecker(topic string, records []Record) *Checker {
	c := &Checker{topic: topic, expected: map[int32][]Record{}, next: map[int32]int{}}
	for _, r := range records {
		c.expected[r.Partition] = append(c.expected[r.Partition], r)
	}
	c.total = len(records)
	return c
}

// Add checks one consumed record against the next one expected on its
// partition.
func (c *Checker) Add(topic string, got Consumed) error {
	if topic != c.topic {
		return fmt.Errorf("record from topic %q, expected only %q", topic, c.topic)
	}
	want := c.expected[got.Partition]
	n := c.next[got.Partition]
	if n >= len(want) {
		return fmt.Errorf("%s/%d: unexpected record at offset %d (key %q) after all %d expected ones",
			topic, got.Partition, got.Offset, got.Key, len(want))
	}
	w := want[n]
	if got.Offset != w.Offset {
		return fmt.Errorf("%s/%d: record #%d of the partition has offset %d, expected %d (key %q, expected key %q)",
			topic, got.Partition, n, got.Offset, w.Offset, got.Key, w.Key)
	}
	if !bytes.Equal(got.Key, w.Key) {
		return fmt.Errorf("%s/%d@%d: key %q, expected %q", topic, got.Partition, got.Offset, got.Key, w.Key)
	}
	if !bytes.Equal(got.Value, w.Value) {
		return fmt.Errorf("%s/%d@%d: value %q, expected %q", topic, got.Partition, got.Offset, got.Value, w.Value)
	}
	if !headersEqual(got.Headers, w.Headers) {
		return fmt.Errorf("%s/%d@%d: headers %s, expected %s",
			topic, got.Partition, got.Offset, FormatHeaders(got.Headers), FormatHeaders(w.Headers))
	}
	c.next[got.Partition] = n + 1
	c.received++
	return nil
}

// Done says whether every expected record arrived.
func (c *Checker) Done() bool { return c.received == c.total }

// Progress describes (received/expected) per partition.
func (c *Checker) Progress() string {
	parts := make([]int, 0, len(c.expected))
	for p := range c.expected {
		parts = append(parts, int(p))
	}
	sort.Ints(parts)
	var b strings.Builder
	for _, p := range parts {
		fmt.Fprintf(&b, " p%d=%d/%d", p, c.next[int32(p)], len(c.expected[int32(p)]))
	}
	return strings.TrimSpace(b.String())
}

func headersEqual(a, b []Header) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

// FormatHeaders renders headers for error messages.
func FormatHeaders(hs []Header) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = fmt.Sprintf("%s=%q", h.Key, h.Value)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// EndOffsets is what each partition's high watermark must be once records
// [0, to) of a scenario were produced to a topic of `partitions` partitions.
func EndOffsets(to, partitions int) map[int32]int64 {
	out := map[int32]int64{}
	for p := 0; p < partitions; p++ {
		out[int32(p)] = int64(to / partitions)
	}
	return out
}

// Failf prints the failure and exits 1.
func Failf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "FAIL: "+format+"\n", args...)
	fmt.Printf("FAIL: "+format+"\n", args...)
	os.Exit(1)
}

// Check fails with `what` when err is not nil.
func Check(err error, what string, args ...any) {
	if err != nil {
		Failf("%s: %v", fmt.Sprintf(what, args...), err)
	}
}

// Expect fails with the message when the condition does not hold.
func Expect(cond bool, format string, args ...any) {
	if !cond {
		Failf(format, args...)
	}
}

// Step prints a progress line to stdout (the Rust test checks the final
// "PASS" line).
func Step(format string, args ...any) {
	fmt.Printf(format+"\n", args...)
}

// Eventually calls `check` until it returns nil, at most for OpTimeout
// (pausing 50 ms between calls), and fails with its last error otherwise.
// For states a broker reaches asynchronously: Kafka answers EndTxn once
// the outcome is logged, before the COMMIT/ABORT markers are written, so the
// end offsets and the transaction's Complete* state follow shortly after.
func Eventually(what string, check func() error) {
	deadline := time.Now().Add(OpTimeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			Failf("%s (still after %v): %v", what, OpTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Ctx returns a context bounded by OpTimeout.
func Ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), OpTimeout)
}

// Debug says whether verbose client logs were asked for
// (WEIR_GO_CLIENT_DEBUG=1).
func Debug() bool { return os.Getenv("WEIR_GO_CLIENT_DEBUG") == "1" }
