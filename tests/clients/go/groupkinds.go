package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// produceSpread produces n records to topic, record i to partition i mod
// partitions, and fails on the first error.
func produceSpread(ctx context.Context, e *env, who, topic string, partitions, from, n int) error {
	cl, err := kgo.NewClient(e.opts(who, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	records := make([]*kgo.Record, n)
	for i := range records {
		k := from + i
		records[i] = &kgo.Record{Partition: int32(k % partitions), Key: []byte(fmt.Sprintf("k%d", k)), Value: []byte(fmt.Sprintf("record %d", k))}
	}
	return produceSync(ctx, cl, records...)
}

// consumedOnceAndCommitted checks that every record below each partition's
// end offset was delivered exactly once, and that the group's committed
// offsets reach the log end.
func consumedOnceAndCommitted(ctx context.Context, e *env, topic, group string, seen *seenRecords) error {
	ends, err := e.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("ListOffsets (end): %w", err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	if err := waitFor(ctx, "every produced record to be consumed", func() (bool, string) {
		return int64(seen.distinct()) == total, fmt.Sprintf("%d of %d distinct records consumed", seen.distinct(), total)
	}); err != nil {
		return err
	}
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
		return fmt.Errorf("records consumed twice: %v", dups)
	}
	return waitFor(ctx, "the group's committed offsets to reach the log end", func() (bool, string) {
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
	})
}

// splitEvenly waits until the two members own half of all partitions each,
// together all of them.
func splitEvenly(ctx context.Context, m1, m2 *member, partitions int) error {
	return waitFor(ctx, "the partitions to split evenly between the two members", func() (bool, string) {
		o1, _, _, _ := m1.state()
		o2, _, _, _ := m2.state()
		union := append(slices.Clone(o1), o2...)
		slices.Sort(union)
		return len(o1) == partitions/2 && len(o2) == partitions/2 && len(slices.Compact(union)) == partitions, m1.String() + "; " + m2.String()
	})
}

// isRange reports whether owned is the first or the second half of the
// partitions, as the range assignor splits one topic between two members.
func isRange(owned []int32, partitions int) bool {
	half := int32(partitions / 2)
	if len(owned) != int(half) {
		return false
	}
	for i, p := range owned {
		if p != owned[0]+int32(i) {
			return false
		}
	}
	return owned[0] == 0 || owned[0] == half
}

func allPartitions(n int) []int32 {
	all := make([]int32, n)
	for i := range all {
		all[i] = int32(i)
	}
	return all
}

// checkEagerGroup: two consumers with the range balancer, the classic eager
// protocol. When the second joins, the first is revoked every partition it
// owned (not only those that move), and the two end up with a contiguous
// half each; when the second leaves, the first is revoked its half and gets
// all of them back. Every record is consumed once and committed.
func checkEagerGroup(ctx context.Context, e *env) error {
	topic, group := e.name("eager"), e.name("eager-group")
	if err := createTopic(ctx, e, topic, groupPartitions, nil); err != nil {
		return err
	}
	if err := produceSpread(ctx, e, "eager-producer", topic, groupPartitions, 0, 10*groupPartitions); err != nil {
		return err
	}
	seen := &seenRecords{count: map[[2]int64]int{}, by: map[string]int{}}
	all := allPartitions(groupPartitions)
	eager := kgo.Balancers(kgo.RangeBalancer())

	m1, err := startMember(e, "eager-1", group, topic, seen, eager)
	if err != nil {
		return err
	}
	defer m1.leave()
	if err := waitFor(ctx, "the first consumer to own all partitions and consume the first records", func() (bool, string) {
		owned, _, _, _ := m1.state()
		return slices.Equal(owned, all) && seen.distinct() >= 10*groupPartitions, m1.String()
	}); err != nil {
		return err
	}

	m2, err := startMember(e, "eager-2", group, topic, seen, eager)
	if err != nil {
		return err
	}
	m2Closed := false
	defer func() {
		if !m2Closed {
			m2.leave()
		}
	}()
	if err := splitEvenly(ctx, m1, m2, groupPartitions); err != nil {
		return err
	}
	o1, revoked1, lost1, errs1 := m1.state()
	o2, _, lost2, errs2 := m2.state()
	slices.Sort(revoked1)
	if len(lost1) > 0 || len(lost2) > 0 || len(errs1) > 0 || len(errs2) > 0 {
		return fmt.Errorf("partitions lost or consumer errors in the rebalance: %s; %s", m1, m2)
	}
	if !slices.Equal(revoked1, all) {
		return fmt.Errorf("eager rebalance: the first consumer was revoked %v, want every partition it owned, %v", revoked1, all)
	}
	if !isRange(o1, groupPartitions) || !isRange(o2, groupPartitions) {
		return fmt.Errorf("the range assignor splits one topic into contiguous halves; the members own %v and %v", o1, o2)
	}
	if err := describeGroup(ctx, e, group, "range", map[string][]int32{"franzgo-eager-1": o1, "franzgo-eager-2": o2}, topic); err != nil {
		return err
	}
	if err := produceSpread(ctx, e, "eager-producer", topic, groupPartitions, 10*groupPartitions, 10*groupPartitions); err != nil {
		return err
	}
	if err := waitFor(ctx, "both consumers to consume after the split", func() (bool, string) {
		return seen.distinct() == 20*groupPartitions && seen.of("eager-2") >= 5*groupPartitions, m1.String() + "; " + m2.String()
	}); err != nil {
		return err
	}

	m2.leave()
	m2Closed = true
	if err := waitFor(ctx, "the first consumer to own all partitions again", func() (bool, string) {
		owned, _, _, _ := m1.state()
		return slices.Equal(owned, all), m1.String()
	}); err != nil {
		return err
	}
	_, revokedAfter, lostAfter, errs1 := m1.state()
	if len(lostAfter) > 0 || len(errs1) > 0 || len(revokedAfter) != len(revoked1)+len(o1) {
		return fmt.Errorf("when the second consumer left, the first should be revoked its %d partitions (eager) and lose none: %s", len(o1), m1)
	}
	if err := produceSpread(ctx, e, "eager-producer", topic, groupPartitions, 20*groupPartitions, 2*groupPartitions); err != nil {
		return err
	}
	return consumedOnceAndCommitted(ctx, e, topic, group, seen)
}

// checkStaticMembership: two consumers with instance ids. One is closed (a
// static member does not leave) and started again with the same instance id
// within the session timeout: it gets its partitions back with no rebalance
// (the generation stays, the other member is revoked nothing), and
// DescribeGroups shows the instance ids. Then the admin removes both by
// instance id (LeaveGroup) and the group is Empty.
func checkStaticMembership(ctx context.Context, e *env) error {
	const partitions = 4
	topic, group := e.name("static"), e.name("static-group")
	if err := createTopic(ctx, e, topic, partitions, nil); err != nil {
		return err
	}
	if err := produceSpread(ctx, e, "static-producer", topic, partitions, 0, 10*partitions); err != nil {
		return err
	}
	seen := &seenRecords{count: map[[2]int64]int{}, by: map[string]int{}}
	id1, id2 := e.name("static-1"), e.name("static-2")
	opts := func(id string) []kgo.Opt {
		return []kgo.Opt{kgo.Balancers(kgo.RangeBalancer()), kgo.InstanceID(id)}
	}
	m1, err := startMember(e, "static-1", group, topic, seen, opts(id1)...)
	if err != nil {
		return err
	}
	defer m1.leave()
	m2, err := startMember(e, "static-2", group, topic, seen, opts(id2)...)
	if err != nil {
		return err
	}
	if err := splitEvenly(ctx, m1, m2, partitions); err != nil {
		m2.leave()
		return err
	}
	if err := waitFor(ctx, "the first records to be consumed", func() (bool, string) {
		return seen.distinct() == 10*partitions, fmt.Sprintf("%d of %d", seen.distinct(), 10*partitions)
	}); err != nil {
		m2.leave()
		return err
	}
	_, gen1 := m1.cl.GroupMetadata()
	memberID2, gen2 := m2.cl.GroupMetadata()
	owned2, _, _, _ := m2.state()
	_, revokedBefore, _, _ := m1.state()
	if gen1 != gen2 || gen1 < 1 {
		return fmt.Errorf("the two members are in generations %d and %d", gen1, gen2)
	}
	groups, err := e.adm.DescribeGroups(ctx, group)
	if err != nil {
		return fmt.Errorf("DescribeGroups: %w", err)
	}
	var instances []string
	for _, m := range groups[group].Members {
		if m.InstanceID != nil {
			instances = append(instances, *m.InstanceID)
		}
	}
	slices.Sort(instances)
	if !slices.Equal(instances, []string{id1, id2}) {
		return fmt.Errorf("DescribeGroups shows instance ids %v, want %v", instances, []string{id1, id2})
	}

	// Closed: a static member stays in the group until its session times out.
	m2.leave()
	time.Sleep(2 * time.Second)
	groups, err = e.adm.DescribeGroups(ctx, group)
	if err != nil {
		return fmt.Errorf("DescribeGroups: %w", err)
	}
	if g := groups[group]; g.State != "Stable" || len(g.Members) != 2 {
		return fmt.Errorf("after the static member closed, the group is %q with %d members; want Stable with 2 (no leave)", g.State, len(g.Members))
	}
	if err := produceSpread(ctx, e, "static-producer", topic, partitions, 10*partitions, 10*partitions); err != nil {
		return err
	}
	m2, err = startMember(e, "static-2", group, topic, seen, opts(id2)...)
	if err != nil {
		return err
	}
	defer m2.leave()
	if err := waitFor(ctx, "the restarted static member to get its partitions back and consume", func() (bool, string) {
		owned, _, _, _ := m2.state()
		return slices.Equal(owned, owned2) && seen.distinct() == 20*partitions, m2.String()
	}); err != nil {
		return err
	}
	newMemberID, genAfter := m2.cl.GroupMetadata()
	_, gen1After := m1.cl.GroupMetadata()
	_, revokedAfter, lostAfter, _ := m1.state()
	if genAfter != gen1 || gen1After != gen1 {
		return fmt.Errorf("the static member's return changed the generation from %d to %d (other member: %d): a rebalance", gen1, genAfter, gen1After)
	}
	if len(revokedAfter) != len(revokedBefore) || len(lostAfter) > 0 {
		return fmt.Errorf("the other member was revoked or lost partitions when the static member returned: %s", m1)
	}
	if newMemberID == memberID2 {
		return fmt.Errorf("the returning static member kept member id %s; the coordinator gives it a new one", memberID2)
	}

	// Both close (staying members), and the admin removes them by instance id.
	m1.leave()
	m2.leave()
	left, err := e.adm.LeaveGroup(ctx, kadm.LeaveGroup(group).InstanceIDs(id1, id2).Reason("franz-go check"))
	if err != nil {
		return fmt.Errorf("LeaveGroup: %w", err)
	}
	if err := left.Error(); err != nil || len(left) != 2 {
		return fmt.Errorf("LeaveGroup of both instance ids: %d answers, %v", len(left), err)
	}
	return waitFor(ctx, "the group to be Empty once the admin removed both members", func() (bool, string) {
		groups, err := e.adm.DescribeGroups(ctx, group)
		if err != nil {
			return false, err.Error()
		}
		g := groups[group]
		return g.State == "Empty" && len(g.Members) == 0, fmt.Sprintf("state %q, %d members", g.State, len(g.Members))
	})
}

// checkConsumerProtocol: two consumers with the KIP-848 protocol
// (ServerSideBalancer, the broker's range assignor). ConsumerGroupDescribe
// shows the group with both members and their assignments; the second
// joining takes half of the partitions and leaving gives them back, with
// every record consumed once and committed.
func checkConsumerProtocol(ctx context.Context, e *env) error {
	topic, group := e.name("kip848"), e.name("kip848-group")
	if err := createTopic(ctx, e, topic, groupPartitions, nil); err != nil {
		return err
	}
	if err := produceSpread(ctx, e, "kip848-producer", topic, groupPartitions, 0, 10*groupPartitions); err != nil {
		return err
	}
	seen := &seenRecords{count: map[[2]int64]int{}, by: map[string]int{}}
	all := allPartitions(groupPartitions)
	nextGen := []kgo.Opt{kgo.Balancers(kgo.RangeBalancer()), kgo.ServerSideBalancer()}

	m1, err := startMember(e, "kip848-1", group, topic, seen, nextGen...)
	if err != nil {
		return err
	}
	defer m1.leave()
	if err := waitFor(ctx, "the first member to own all partitions and consume", func() (bool, string) {
		owned, _, _, _ := m1.state()
		return slices.Equal(owned, all) && seen.distinct() >= 10*groupPartitions, m1.String()
	}); err != nil {
		return err
	}
	m2, err := startMember(e, "kip848-2", group, topic, seen, nextGen...)
	if err != nil {
		return err
	}
	m2Closed := false
	defer func() {
		if !m2Closed {
			m2.leave()
		}
	}()
	if err := splitEvenly(ctx, m1, m2, groupPartitions); err != nil {
		return err
	}
	o1, revoked1, lost1, errs1 := m1.state()
	o2, _, lost2, errs2 := m2.state()
	slices.Sort(revoked1)
	if len(lost1) > 0 || len(lost2) > 0 || len(errs1) > 0 || len(errs2) > 0 {
		return fmt.Errorf("partitions lost or consumer errors: %s; %s", m1, m2)
	}
	if !slices.Equal(revoked1, o2) {
		return fmt.Errorf("the first member was revoked %v, want only what moved to the second, %v", revoked1, o2)
	}
	if !isRange(o1, groupPartitions) || !isRange(o2, groupPartitions) {
		return fmt.Errorf("the broker's range assignor splits one topic into contiguous halves; the members own %v and %v", o1, o2)
	}
	if err := waitFor(ctx, "ConsumerGroupDescribe to show both members as they see themselves", func() (bool, string) {
		described, err := e.adm.DescribeConsumerGroups(ctx, group)
		if err != nil {
			return false, fmt.Sprintf("ConsumerGroupDescribe: %v", err)
		}
		g := described[group]
		if g.Err != nil || g.State != "Stable" || g.AssignorName != "range" || len(g.Members) != 2 || g.Epoch < 2 || g.AssignmentEpoch != g.Epoch {
			return false, fmt.Sprintf("state %q, assignor %q, %d members, epoch %d, assignment epoch %d, err %v",
				g.State, g.AssignorName, len(g.Members), g.Epoch, g.AssignmentEpoch, g.Err)
		}
		want := map[string][]int32{"franzgo-kip848-1": o1, "franzgo-kip848-2": o2}
		var diffs []string
		for _, m := range g.Members {
			var ps []int32
			for p := range m.Assignment[topic] {
				ps = append(ps, p)
			}
			slices.Sort(ps)
			if !slices.Equal(ps, want[m.ClientID]) || !slices.Equal(m.SubscribedTopics, []string{topic}) || m.MemberEpoch != g.Epoch {
				diffs = append(diffs, fmt.Sprintf("member %s (client %s, epoch %d, subscribed %v) assigned %v, it owns %v",
					m.MemberID, m.ClientID, m.MemberEpoch, m.SubscribedTopics, ps, want[m.ClientID]))
			}
		}
		return len(diffs) == 0, fmt.Sprint(diffs)
	}); err != nil {
		return err
	}
	if err := produceSpread(ctx, e, "kip848-producer", topic, groupPartitions, 10*groupPartitions, 10*groupPartitions); err != nil {
		return err
	}
	if err := waitFor(ctx, "both members to consume", func() (bool, string) {
		return seen.distinct() == 20*groupPartitions && seen.of("kip848-2") >= 5*groupPartitions, m1.String() + "; " + m2.String()
	}); err != nil {
		return err
	}
	m2.leave()
	m2Closed = true
	if err := waitFor(ctx, "the first member to own all partitions again", func() (bool, string) {
		owned, _, _, _ := m1.state()
		return slices.Equal(owned, all), m1.String()
	}); err != nil {
		return err
	}
	if err := produceSpread(ctx, e, "kip848-producer", topic, groupPartitions, 20*groupPartitions, 2*groupPartitions); err != nil {
		return err
	}
	return consumedOnceAndCommitted(ctx, e, topic, group, seen)
}

// checkGroupMigration: Kafka 4's online migration. A classic member
// (cooperative-sticky) owns every partition; a member of the KIP-848 protocol
// joining converts the group to a consumer group and the two share the
// partitions; when that member leaves, the group is classic again and the
// first member takes every partition back. Every record is consumed once and
// committed.
func checkGroupMigration(ctx context.Context, e *env) error {
	topic, group := e.name("migration"), e.name("migration-group")
	if err := createTopic(ctx, e, topic, groupPartitions, nil); err != nil {
		return err
	}
	if err := produceSpread(ctx, e, "migration-producer", topic, groupPartitions, 0, 10*groupPartitions); err != nil {
		return err
	}
	seen := &seenRecords{count: map[[2]int64]int{}, by: map[string]int{}}
	all := allPartitions(groupPartitions)
	classic, err := startMember(e, "migration-classic", group, topic, seen, kgo.Balancers(kgo.CooperativeStickyBalancer()))
	if err != nil {
		return err
	}
	defer classic.leave()
	if err := waitFor(ctx, "the classic member to own all partitions and consume", func() (bool, string) {
		owned, _, _, _ := classic.state()
		return slices.Equal(owned, all) && seen.distinct() >= 10*groupPartitions, classic.String()
	}); err != nil {
		return err
	}
	modern, err := startMember(e, "migration-modern", group, topic, seen, kgo.Balancers(kgo.RangeBalancer()), kgo.ServerSideBalancer())
	if err != nil {
		return err
	}
	modernClosed := false
	defer func() {
		if !modernClosed {
			modern.leave()
		}
	}()
	if err := waitFor(ctx, "the classic and the consumer-protocol member to share the partitions", func() (bool, string) {
		o1, _, _, _ := classic.state()
		o2, _, _, _ := modern.state()
		union := append(slices.Clone(o1), o2...)
		slices.Sort(union)
		return len(o1) > 0 && len(o2) > 0 && len(o1)+len(o2) == groupPartitions && len(slices.Compact(union)) == groupPartitions,
			classic.String() + "; " + modern.String()
	}); err != nil {
		return err
	}
	described, err := e.adm.DescribeConsumerGroups(ctx, group)
	if err != nil {
		return fmt.Errorf("ConsumerGroupDescribe: %w", err)
	}
	if g := described[group]; g.Err != nil || len(g.Members) != 2 {
		return fmt.Errorf("the upgraded group should be a consumer group of two members: %d members, err %v", len(g.Members), g.Err)
	}
	if err := produceSpread(ctx, e, "migration-producer", topic, groupPartitions, 10*groupPartitions, 10*groupPartitions); err != nil {
		return err
	}
	if err := waitFor(ctx, "both members to consume", func() (bool, string) {
		return seen.distinct() == 20*groupPartitions && seen.of("migration-modern") > 0, classic.String() + "; " + modern.String()
	}); err != nil {
		return err
	}
	modern.leave()
	modernClosed = true
	if err := waitFor(ctx, "the classic member to own all partitions of the classic group again", func() (bool, string) {
		owned, _, _, _ := classic.state()
		groups, err := e.adm.DescribeGroups(ctx, group)
		if err != nil {
			return false, fmt.Sprintf("DescribeGroups: %v", err)
		}
		g := groups[group]
		return slices.Equal(owned, all) && g.State == "Stable" && g.ProtocolType == "consumer",
			fmt.Sprintf("%s; classic group state %q, protocol type %q", classic, g.State, g.ProtocolType)
	}); err != nil {
		return err
	}
	if _, _, lost, errs := classic.state(); len(lost) > 0 || len(errs) > 0 {
		return fmt.Errorf("partitions lost or consumer errors: %s", classic)
	}
	if err := produceSpread(ctx, e, "migration-producer", topic, groupPartitions, 20*groupPartitions, 2*groupPartitions); err != nil {
		return err
	}
	return consumedOnceAndCommitted(ctx, e, topic, group, seen)
}
