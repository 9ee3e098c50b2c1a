package main

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const groupPartitions = 6

// seenRecords counts deliveries of each (partition, offset) across consumers.
type seenRecords struct {
	mu     sync.Mutex
	count  map[[2]int64]int
	by     map[string]int // deliveries per consumer
	dups   []string
	closed bool
}

func (s *seenRecords) add(who string, r *kgo.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := [2]int64{int64(r.Partition), r.Offset}
	s.count[k]++
	s.by[who]++
	if s.count[k] > 1 && len(s.dups) < 20 {
		s.dups = append(s.dups, fmt.Sprintf("%s got partition %d offset %d again", who, r.Partition, r.Offset))
	}
}

func (s *seenRecords) distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.count)
}

func (s *seenRecords) of(who string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.by[who]
}

// member is one group consumer: the partitions it owns according to its
// assign/revoke/lost callbacks, and everything it was ever revoked or lost.
type member struct {
	name    string
	topic   string
	cl      *kgo.Client
	seen    *seenRecords
	stop    atomic.Bool
	done    chan struct{}
	mu      sync.Mutex
	owned   map[int32]bool
	revoked []int32
	lost    []int32
	errs    []string
	left    sync.Once
}

func (m *member) onAssigned(_ context.Context, _ *kgo.Client, a map[string][]int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range a[m.topic] {
		m.owned[p] = true
	}
}

func (m *member) onRevoked(_ context.Context, cl *kgo.Client, r map[string][]int32) {
	m.mu.Lock()
	for _, p := range r[m.topic] {
		delete(m.owned, p)
		m.revoked = append(m.revoked, p)
	}
	m.mu.Unlock()
	// What was processed is committed before the partitions go.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		m.fault("commit on revoke: %v", err)
	}
}

func (m *member) onLost(_ context.Context, _ *kgo.Client, l map[string][]int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range l[m.topic] {
		delete(m.owned, p)
		m.lost = append(m.lost, p)
	}
}

func (m *member) fault(format string, args ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.errs = append(m.errs, fmt.Sprintf(format, args...))
}

// state is (owned partitions sorted, revoked so far, lost so far, errors).
func (m *member) state() (owned, revoked, lost []int32, errs []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for p := range m.owned {
		owned = append(owned, p)
	}
	slices.Sort(owned)
	return owned, slices.Clone(m.revoked), slices.Clone(m.lost), slices.Clone(m.errs)
}

func (m *member) String() string {
	owned, revoked, lost, errs := m.state()
	return fmt.Sprintf("%s owns %v (revoked so far %v, lost %v, errors %v, consumed %d)", m.name, owned, revoked, lost, errs, m.seen.of(m.name))
}

// startMember joins group and consumes in a loop: poll, record, commit, then
// allow a rebalance (BlockRebalanceOnPoll), so nothing processed is left
// uncommitted when partitions move.
// extra chooses the balancer and anything else the group needs.
func startMember(e *env, name, group, topic string, seen *seenRecords, extra ...kgo.Opt) (*member, error) {
	m := &member{name: name, topic: topic, seen: seen, done: make(chan struct{}), owned: map[int32]bool{}}
	opts := []kgo.Opt{
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxWait(500 * time.Millisecond),
		kgo.SessionTimeout(30 * time.Second),
		kgo.RebalanceTimeout(60 * time.Second),
		kgo.HeartbeatInterval(time.Second),
		kgo.OnPartitionsAssigned(m.onAssigned),
		kgo.OnPartitionsRevoked(m.onRevoked),
		kgo.OnPartitionsLost(m.onLost),
	}
	cl, err := kgo.NewClient(e.opts(name, append(opts, extra...)...)...)
	if err != nil {
		return nil, err
	}
	m.cl = cl
	go func() {
		defer close(m.done)
		for !m.stop.Load() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			fs := cl.PollFetches(ctx)
			cancel()
			if fs.IsClientClosed() {
				cl.AllowRebalance()
				return
			}
			if err := fetchErr(fs); err != nil {
				m.fault("poll: %v", err)
			}
			fs.EachRecord(func(r *kgo.Record) { seen.add(name, r) })
			if len(fs.Records()) > 0 {
				commitCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				if err := cl.CommitUncommittedOffsets(commitCtx); err != nil {
					m.fault("commit: %v", err)
				}
				cancel()
			}
			cl.AllowRebalance()
		}
	}()
	return m, nil
}

// leave stops the consume loop (which commits what it processed) and closes
// the client, which leaves the group.
func (m *member) leave() {
	m.left.Do(func() {
		m.stop.Store(true)
		<-m.done
		m.cl.Close()
	})
}

// checkCooperativeGroup: two consumers with the cooperative-sticky balancer
// over a 6-partition topic while a producer keeps producing. The first alone
// owns every partition; when the second joins they split 3/3 and the first
// is revoked only the partitions that move; when the second leaves the first
// owns all six again. Every record is consumed exactly once and the group's
// committed offsets end at the log end.
func checkCooperativeGroup(ctx context.Context, e *env) error {
	topic, group := e.name("coop"), e.name("coop-group")
	if err := createTopic(ctx, e, topic, groupPartitions, nil); err != nil {
		return err
	}
	producer, err := kgo.NewClient(e.opts("coop-producer",
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)...)
	if err != nil {
		return err
	}
	defer producer.Close()
	var produced atomic.Int64
	record := func() *kgo.Record {
		n := produced.Add(1) - 1
		return &kgo.Record{
			Partition: int32(n % groupPartitions),
			Key:       []byte(fmt.Sprintf("k%d", n)),
			Value:     []byte(fmt.Sprintf("record %d", n)),
		}
	}
	for range 10 * groupPartitions {
		if err := produceSync(ctx, producer, record()); err != nil {
			return err
		}
	}

	seen := &seenRecords{count: map[[2]int64]int{}, by: map[string]int{}}
	all := []int32{0, 1, 2, 3, 4, 5}

	coop := kgo.Balancers(kgo.CooperativeStickyBalancer())
	c1, err := startMember(e, "coop-1", group, topic, seen, coop)
	if err != nil {
		return err
	}
	c1Closed := false
	defer func() {
		if !c1Closed {
			c1.leave()
		}
	}()
	if err := waitFor(ctx, "the first consumer to own all partitions and consume the first records", func() (bool, string) {
		owned, _, _, _ := c1.state()
		return slices.Equal(owned, all) && seen.distinct() >= 10*groupPartitions, c1.String()
	}); err != nil {
		return err
	}

	// A producer keeps producing through both rebalances.
	stopProducing := make(chan struct{})
	producing := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stopProducing:
				producing <- nil
				return
			case <-time.After(20 * time.Millisecond):
			}
			if err := produceSync(ctx, producer, record()); err != nil {
				producing <- err
				return
			}
		}
	}()
	producerStopped := false
	stopProducer := func() error {
		if producerStopped {
			return nil
		}
		producerStopped = true
		close(stopProducing)
		return <-producing
	}
	defer stopProducer()

	c2, err := startMember(e, "coop-2", group, topic, seen, coop)
	if err != nil {
		return err
	}
	c2Closed := false
	defer func() {
		if !c2Closed {
			c2.leave()
		}
	}()
	if err := waitFor(ctx, "the partitions to split 3/3", func() (bool, string) {
		o1, _, _, _ := c1.state()
		o2, _, _, _ := c2.state()
		union := append(slices.Clone(o1), o2...)
		slices.Sort(union)
		return len(o1) == 3 && len(o2) == 3 && slices.Equal(union, all), c1.String() + "; " + c2.String()
	}); err != nil {
		return err
	}
	o1, revoked1, lost1, errs1 := c1.state()
	o2, _, lost2, errs2 := c2.state()
	slices.Sort(revoked1)
	if len(lost1) > 0 || len(lost2) > 0 {
		return fmt.Errorf("partitions were lost (not revoked) in the rebalance: %s; %s", c1, c2)
	}
	if !slices.Equal(revoked1, o2) {
		return fmt.Errorf("cooperative rebalance: the first consumer was revoked %v, want exactly the partitions that moved to the second, %v (it keeps %v)", revoked1, o2, o1)
	}
	if len(errs1) > 0 || len(errs2) > 0 {
		return fmt.Errorf("consumer errors: %v %v", errs1, errs2)
	}
	if err := describeGroup(ctx, e, group, "cooperative-sticky", map[string][]int32{"franzgo-coop-1": o1, "franzgo-coop-2": o2}, topic); err != nil {
		return err
	}
	before1, before2 := seen.of("coop-1"), seen.of("coop-2")
	if err := waitFor(ctx, "both consumers to consume after the split", func() (bool, string) {
		return seen.of("coop-1") > before1 && seen.of("coop-2") > before2, c1.String() + "; " + c2.String()
	}); err != nil {
		return err
	}

	// The second leaves: the first gets its partitions back and loses none.
	c2.leave()
	c2Closed = true
	if err := waitFor(ctx, "the first consumer to own all partitions again", func() (bool, string) {
		owned, _, _, _ := c1.state()
		return slices.Equal(owned, all), c1.String()
	}); err != nil {
		return err
	}
	_, revokedAfter, lostAfter, errs1 := c1.state()
	if len(revokedAfter) != len(revoked1) || len(lostAfter) > 0 || len(errs1) > 0 {
		return fmt.Errorf("when the second consumer left, the first lost or was revoked partitions, or failed: %s", c1)
	}
	before1 = seen.of("coop-1")
	if err := waitFor(ctx, "the first consumer to consume after taking over", func() (bool, string) {
		return seen.of("coop-1") > before1+2*groupPartitions, c1.String()
	}); err != nil {
		return err
	}

	if err := stopProducer(); err != nil {
		return fmt.Errorf("background producer: %w", err)
	}
	total := int(produced.Load())
	ends, err := e.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("ListOffsets (end): %w", err)
	}
	var sum int64
	ends.Each(func(o kadm.ListedOffset) { sum += o.Offset })
	if sum != int64(total) {
		return fmt.Errorf("the partitions' end offsets add up to %d, but %d records were produced", sum, total)
	}
	if err := waitFor(ctx, "every produced record to be consumed", func() (bool, string) {
		return seen.distinct() == total, fmt.Sprintf("%d of %d distinct records consumed; %s", seen.distinct(), total, c1)
	}); err != nil {
		return err
	}
	// Every (partition, offset) below each end was delivered, once.
	seen.mu.Lock()
	var missing []string
	ends.Each(func(o kadm.ListedOffset) {
		for off := int64(0); off < o.Offset; off++ {
			if seen.count[[2]int64{int64(o.Partition), off}] == 0 && len(missing) < 10 {
				missing = append(missing, fmt.Sprintf("%d@%d", o.Partition, off))
			}
		}
	})
	dups := slices.Clone(seen.dups)
	seen.mu.Unlock()
	if len(missing) > 0 {
		return fmt.Errorf("records never consumed (partition@offset): %v", missing)
	}
	if len(dups) > 0 {
		return fmt.Errorf("records consumed twice across the rebalances: %v", dups)
	}
	if err := waitFor(ctx, "the group's committed offsets to reach the log end", func() (bool, string) {
		committed, err := e.adm.FetchOffsets(ctx, group)
		if err != nil {
			return false, fmt.Sprintf("OffsetFetch: %v", err)
		}
		var diffs []string
		ends.Each(func(o kadm.ListedOffset) {
			c, ok := committed.Lookup(topic, o.Partition)
			if !ok || c.Err != nil || c.At != o.Offset {
				diffs = append(diffs, fmt.Sprintf("partition %d committed %d (err %v), end %d", o.Partition, c.At, c.Err, o.Offset))
			}
		})
		return len(diffs) == 0, fmt.Sprint(diffs)
	}); err != nil {
		return err
	}

	fmt.Fprintf(logOut, "group: %d records, consumed by coop-1 %d, by coop-2 %d; coop-1 was revoked %v when coop-2 joined\n",
		total, seen.of("coop-1"), seen.of("coop-2"), revoked1)

	c1.leave()
	c1Closed = true
	return waitFor(ctx, "the group to be Empty after both left", func() (bool, string) {
		groups, err := e.adm.DescribeGroups(ctx, group)
		if err != nil {
			return false, err.Error()
		}
		g := groups[group]
		return g.Err == nil && g.State == "Empty" && len(g.Members) == 0, fmt.Sprintf("state %q, %d members, err %v", g.State, len(g.Members), g.Err)
	})
}

// describeGroup checks DescribeGroups against the members' own view: Stable,
// the consumer protocol with the assignor protocol, and each client's
// partitions (want is keyed by client id).
func describeGroup(ctx context.Context, e *env, group, protocol string, want map[string][]int32, topic string) error {
	return waitFor(ctx, "DescribeGroups to show the group as its members see it", func() (bool, string) {
		groups, err := e.adm.DescribeGroups(ctx, group)
		if err != nil {
			return false, err.Error()
		}
		g := groups[group]
		if g.Err != nil || g.State != "Stable" || g.ProtocolType != "consumer" || g.Protocol != protocol || len(g.Members) != len(want) {
			return false, fmt.Sprintf("state %q, protocol type %q, protocol %q, %d members, err %v", g.State, g.ProtocolType, g.Protocol, len(g.Members), g.Err)
		}
		var diffs []string
		for _, m := range g.Members {
			a, ok := m.Assigned.AsConsumer()
			if !ok {
				return false, fmt.Sprintf("member %s: assignment is not a consumer assignment", m.MemberID)
			}
			var ps []int32
			for _, t := range a.Topics {
				if t.Topic == topic {
					ps = append(ps, t.Partitions...)
				}
			}
			sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
			w, ok := want[m.ClientID]
			if !ok || !slices.Equal(ps, w) {
				diffs = append(diffs, fmt.Sprintf("member %s (client %s) assigned %v, it owns %v", m.MemberID, m.ClientID, ps, w))
			}
		}
		return len(diffs) == 0, fmt.Sprint(diffs)
	})
}
