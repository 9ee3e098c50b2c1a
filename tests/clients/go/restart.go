package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	restartPartitions = 3
	restartRecords    = 600
	restartConsumed   = 240 // how many the group consumes and commits before the kill
)

// restartState is what before-kill acknowledged and committed, for after-kill.
type restartState struct {
	Topic string `json:"topic"`
	Group string `json:"group"`
	// Acked maps "partition/offset" to the value the broker acknowledged there.
	Acked     map[string]string `json:"acked"`
	Committed map[int32]int64   `json:"committed"`
}

func ackKey(partition int32, offset int64) string { return fmt.Sprintf("%d/%d", partition, offset) }

// checkBeforeKill produces with acks=all (franz-go's default, idempotent),
// noting where each acknowledged record landed; a group member consumes
// part of the topic and commits; the committed offsets are read back with
// OffsetFetch. All of it goes to the -state file; the broker is then killed
// with SIGKILL.
func checkBeforeKill(ctx context.Context, e *env) error {
	if e.statePath == "" {
		return fmt.Errorf("no -state file")
	}
	st := restartState{Topic: e.name("durable"), Group: e.name("durable-group"), Acked: map[string]string{}, Committed: map[int32]int64{}}
	if err := createTopic(ctx, e, st.Topic, restartPartitions, nil); err != nil {
		return err
	}
	producer, err := kgo.NewClient(e.opts("durable-producer",
		kgo.DefaultProduceTopic(st.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)...)
	if err != nil {
		return err
	}
	defer producer.Close()
	records := make([]*kgo.Record, restartRecords)
	for i := range records {
		records[i] = &kgo.Record{Partition: int32(i % restartPartitions), Value: []byte(fmt.Sprintf("durable %d", i))}
	}
	results := producer.ProduceSync(ctx, records...)
	if err := results.FirstErr(); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	for _, r := range results {
		st.Acked[ackKey(r.Record.Partition, r.Record.Offset)] = string(r.Record.Value)
	}
	if len(st.Acked) != restartRecords {
		return fmt.Errorf("%d distinct positions acknowledged for %d records", len(st.Acked), restartRecords)
	}

	consumer, err := kgo.NewClient(e.opts("durable-consumer",
		kgo.ConsumerGroup(st.Group),
		kgo.ConsumeTopics(st.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.Balancers(kgo.RangeBalancer()),
		kgo.FetchMaxWait(500*time.Millisecond),
	)...)
	if err != nil {
		return err
	}
	var consumed []*kgo.Record
	for len(consumed) < restartConsumed && ctx.Err() == nil {
		pollCtx, cancel := context.WithTimeout(ctx, time.Second)
		fs := consumer.PollRecords(pollCtx, restartConsumed-len(consumed))
		cancel()
		if err := fetchErr(fs); err != nil {
			consumer.Close()
			return fmt.Errorf("poll: %w", err)
		}
		consumed = append(consumed, fs.Records()...)
	}
	if len(consumed) != restartConsumed {
		consumer.Close()
		return fmt.Errorf("consumed %d records, want %d", len(consumed), restartConsumed)
	}
	err = consumer.CommitRecords(ctx, consumed...)
	consumer.Close()
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	want := map[int32]int64{}
	for _, r := range consumed {
		want[r.Partition] = max(want[r.Partition], r.Offset+1)
	}
	committed, err := e.adm.FetchOffsets(ctx, st.Group)
	if err != nil {
		return fmt.Errorf("OffsetFetch: %w", err)
	}
	for p, at := range want {
		c, ok := committed.Lookup(st.Topic, p)
		if !ok || c.Err != nil || c.At != at {
			return fmt.Errorf("partition %d: committed %d (present %v, err %v), the consumer committed %d", p, c.At, ok, c.Err, at)
		}
		st.Committed[p] = at
	}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return os.WriteFile(e.statePath, data, 0o644)
}

func readRestartState(e *env) (*restartState, error) {
	data, err := os.ReadFile(e.statePath)
	if err != nil {
		return nil, fmt.Errorf("the state of before-kill: %w", err)
	}
	var st restartState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, err
	}
	if len(st.Acked) != restartRecords || len(st.Committed) == 0 {
		return nil, fmt.Errorf("the state of before-kill holds %d acknowledged records and %d committed offsets", len(st.Acked), len(st.Committed))
	}
	return &st, nil
}

// checkAckedSurvive: after the SIGKILL and a restart on the same data, every
// acknowledged record is read back at the offset it was acknowledged at,
// with its value, and the end offsets are exactly what was acknowledged.
func checkAckedSurvive(ctx context.Context, e *env) error {
	st, err := readRestartState(e)
	if err != nil {
		return err
	}
	got, err := consumeAll(ctx, e, "durable-reader", st.Topic, restartRecords, time.Second)
	if err != nil {
		return err
	}
	seen := map[string]string{}
	for _, r := range got {
		seen[ackKey(r.Partition, r.Offset)] = string(r.Value)
	}
	var wrong []string
	for k, v := range st.Acked {
		if seen[k] != v && len(wrong) < 10 {
			wrong = append(wrong, fmt.Sprintf("%s: read %q, acknowledged %q", k, seen[k], v))
		}
	}
	slices.Sort(wrong)
	if len(wrong) > 0 || len(got) != restartRecords {
		return fmt.Errorf("after the kill, %d records read for %d acknowledged; differences: %v", len(got), restartRecords, wrong)
	}
	ends, err := e.adm.ListEndOffsets(ctx, st.Topic)
	if err != nil {
		return fmt.Errorf("ListOffsets (end): %w", err)
	}
	for p := range int32(restartPartitions) {
		o, ok := ends.Lookup(st.Topic, p)
		if !ok || o.Err != nil || o.Offset != restartRecords/restartPartitions {
			return fmt.Errorf("partition %d ends at %d (err %v) after the kill, want %d", p, o.Offset, o.Err, restartRecords/restartPartitions)
		}
	}
	return nil
}

// checkCommittedSurvive: after the SIGKILL and a restart, OffsetFetch
// answers the offsets committed before it, and a new member of the group
// resumes there: it consumes exactly the records after them.
func checkCommittedSurvive(ctx context.Context, e *env) error {
	st, err := readRestartState(e)
	if err != nil {
		return err
	}
	committed, err := e.adm.FetchOffsets(ctx, st.Group)
	if err != nil {
		return fmt.Errorf("OffsetFetch: %w", err)
	}
	for p, at := range st.Committed {
		c, ok := committed.Lookup(st.Topic, p)
		if !ok || c.Err != nil || c.At != at {
			return fmt.Errorf("partition %d: OffsetFetch after the kill answers %d (present %v, err %v), committed before it %d", p, c.At, ok, c.Err, at)
		}
	}
	want := restartRecords - restartConsumed
	seen := &seenRecords{count: map[[2]int64]int{}, by: map[string]int{}}
	m, err := startMember(e, "durable-resume", st.Group, st.Topic, seen, kgo.Balancers(kgo.RangeBalancer()))
	if err != nil {
		return err
	}
	defer m.leave()
	if err := waitFor(ctx, "the resumed member to consume the records after the committed offsets", func() (bool, string) {
		return seen.distinct() >= want, fmt.Sprintf("%d of %d", seen.distinct(), want)
	}); err != nil {
		return err
	}
	time.Sleep(time.Second)
	seen.mu.Lock()
	defer seen.mu.Unlock()
	if len(seen.count) != want || len(seen.dups) > 0 {
		return fmt.Errorf("the resumed member consumed %d records (duplicates %v), want the %d after the committed offsets", len(seen.count), seen.dups, want)
	}
	for k := range seen.count {
		if k[1] < st.Committed[int32(k[0])] {
			return fmt.Errorf("the resumed member consumed partition %d offset %d, below the committed %d", k[0], k[1], st.Committed[int32(k[0])])
		}
	}
	return nil
}
