package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// adminState is what the kadm checks share: they run in order, each on what
// the ones before it left.
type adminState struct {
	a, b    string // topics: a (3, then 5 partitions) and b (2 partitions)
	aID     kadm.TopicID
	group   string
	base    int64 // the timestamp the list-offsets records are relative to
	bCounts map[int32]int64
}

func (s *adminState) checks() []check {
	const limit = 2 * time.Minute
	return []check{
		{"kadm/create-topics", limit, s.createTopics},
		{"kadm/list-describe-topics", limit, s.listTopics},
		{"kadm/describe-configs", limit, s.describeConfigs},
		{"kadm/alter-configs", limit, s.alterConfigs},
		{"kadm/create-partitions", limit, s.createPartitions},
		{"kadm/list-offsets", limit, s.listOffsets},
		{"kadm/delete-records", limit, s.deleteRecords},
		{"kadm/list-describe-groups", 3 * time.Minute, s.groups},
		{"kadm/offset-fetch", limit, s.offsetFetch},
		{"kadm/delete-topics", limit, s.deleteTopics},
	}
}

func (s *adminState) createTopics(ctx context.Context, e *env) error {
	s.a, s.b, s.group = e.name("admin-a"), e.name("admin-b"), e.name("admin-group")
	resps, err := e.adm.CreateTopics(ctx, 3, 1, map[string]*string{
		"retention.ms":      kadm.StringPtr("3600000"),
		"max.message.bytes": kadm.StringPtr("2000000"),
	}, s.a)
	if err != nil {
		return fmt.Errorf("CreateTopics %s: %w", s.a, err)
	}
	r := resps[s.a]
	if r.Err != nil || r.NumPartitions != 3 || r.ReplicationFactor != 1 {
		return fmt.Errorf("CreateTopics %s answered err %v (%s), %d partitions, replication factor %d; want no error, 3, 1",
			s.a, r.Err, r.ErrMessage, r.NumPartitions, r.ReplicationFactor)
	}
	if r.ID == (kadm.TopicID{}) {
		return fmt.Errorf("CreateTopics %s answered no topic id", s.a)
	}
	s.aID = r.ID
	for k, want := range map[string]string{"retention.ms": "3600000", "max.message.bytes": "2000000"} {
		c, ok := r.Configs[k]
		if !ok || c.MaybeValue() != want || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
			return fmt.Errorf("CreateTopics %s answered config %s = %q (present %v, source %v); want %q from DYNAMIC_TOPIC_CONFIG",
				s.a, k, c.MaybeValue(), ok, c.Source, want)
		}
	}
	if err := createTopic(ctx, e, s.b, 2, map[string]*string{"cleanup.policy": kadm.StringPtr("delete")}); err != nil {
		return err
	}

	// What Kafka refuses: an existing name, a replication factor above the
	// broker count, no partitions, a config value of the wrong type.
	refusals := []struct {
		what       string
		topic      string
		partitions int32
		rf         int16
		configs    map[string]*string
		want       error
	}{
		{"an existing topic", s.a, 1, 1, nil, kerr.TopicAlreadyExists},
		{"replication factor 3 on one broker", e.name("admin-rf3"), 1, 3, nil, kerr.InvalidReplicationFactor},
		{"0 partitions", e.name("admin-p0"), 0, 1, nil, kerr.InvalidPartitions},
		{"retention.ms=soon", e.name("admin-badconfig"), 1, 1, map[string]*string{"retention.ms": kadm.StringPtr("soon")}, kerr.InvalidConfig},
	}
	for _, c := range refusals {
		resps, err := e.adm.CreateTopics(ctx, c.partitions, c.rf, c.configs, c.topic)
		if err != nil {
			return fmt.Errorf("CreateTopics (%s): %w", c.what, err)
		}
		if r := resps[c.topic]; !errIs(r.Err, c.want) {
			return fmt.Errorf("CreateTopics of %s answered %s (%s), want %s", c.what, errName(r.Err), r.ErrMessage, errName(c.want))
		}
	}
	return nil
}

func (s *adminState) listTopics(ctx context.Context, e *env) error {
	meta, err := e.adm.BrokerMetadata(ctx)
	if err != nil {
		return fmt.Errorf("Metadata: %w", err)
	}
	if len(meta.Brokers) != 1 {
		return fmt.Errorf("Metadata lists %d brokers, want 1", len(meta.Brokers))
	}
	node := meta.Brokers[0].NodeID
	all, err := e.adm.ListTopics(ctx)
	if err != nil {
		return fmt.Errorf("Metadata (all topics): %w", err)
	}
	for name, partitions := range map[string]int{s.a: 3, s.b: 2} {
		t, ok := all[name]
		if !ok {
			return fmt.Errorf("Metadata of all topics does not list %s (it lists %v)", name, all.Names())
		}
		if err := topicShape(t, partitions, node); err != nil {
			return err
		}
	}
	for name, t := range all {
		if t.IsInternal {
			return fmt.Errorf("ListTopics (internal topics filtered) still lists internal topic %s", name)
		}
	}
	one, err := e.adm.ListTopics(ctx, s.a)
	if err != nil {
		return fmt.Errorf("Metadata (%s): %w", s.a, err)
	}
	if len(one) != 1 || one[s.a].ID != s.aID {
		return fmt.Errorf("Metadata for %s alone answered %v with id %v, want only it with id %v", s.a, one.Names(), one[s.a].ID, s.aID)
	}
	missing := e.name("admin-missing")
	if err := expectNoTopic(ctx, e, missing, "a topic that does not exist"); err != nil {
		return err
	}
	return nil
}

// expectNoTopic asks the broker itself (kadm answers from the client's
// metadata cache) for topic, without auto-creation, and checks it answers
// UNKNOWN_TOPIC_OR_PARTITION.
func expectNoTopic(ctx context.Context, e *env, topic, what string) error {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	req.AllowAutoTopicCreation = false
	resp, err := req.RequestWith(ctx, e.admCl)
	if err != nil {
		return fmt.Errorf("Metadata (%s): %w", topic, err)
	}
	for _, t := range resp.Topics {
		if t.Topic != nil && *t.Topic == topic {
			if err := kerr.ErrorForCode(t.ErrorCode); !errIs(err, kerr.UnknownTopicOrPartition) {
				return fmt.Errorf("Metadata v%d for %s (%s, no auto-creation) answered %s with %d partitions, want UNKNOWN_TOPIC_OR_PARTITION",
					req.GetVersion(), what, topic, errName(err), len(t.Partitions))
			}
			return nil
		}
	}
	return fmt.Errorf("Metadata for %s (%s) did not answer for it", what, topic)
}

// topicShape checks t has partitions 0..n-1, each led by node with replicas
// and ISR [node], and no errors.
func topicShape(t kadm.TopicDetail, n int, node int32) error {
	if t.Err != nil {
		return fmt.Errorf("topic %s: %w", t.Topic, t.Err)
	}
	if len(t.Partitions) != n {
		return fmt.Errorf("topic %s has %d partitions, want %d", t.Topic, len(t.Partitions), n)
	}
	for i := range int32(n) {
		p, ok := t.Partitions[i]
		if !ok || p.Err != nil || p.Leader != node || !slices.Equal(p.Replicas, []int32{node}) || !slices.Equal(p.ISR, []int32{node}) {
			return fmt.Errorf("topic %s partition %d: present %v, err %v, leader %d, replicas %v, isr %v; want leader, replicas and isr node %d",
				t.Topic, i, ok, p.Err, p.Leader, p.Replicas, p.ISR, node)
		}
	}
	return nil
}

// topicConfig describes topic's configs and returns the one called key.
func topicConfig(ctx context.Context, e *env, topic, key string) (kadm.Config, error) {
	rcs, err := e.adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return kadm.Config{}, fmt.Errorf("DescribeConfigs %s: %w", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		return kadm.Config{}, fmt.Errorf("DescribeConfigs %s: %v %v (%s)", topic, err, rc.Err, rc.ErrMessage)
	}
	for _, c := range rc.Configs {
		if c.Key == key {
			return c, nil
		}
	}
	return kadm.Config{}, fmt.Errorf("DescribeConfigs %s has no %s", topic, key)
}

// expectConfig checks topic's config key has value want and, if dynamic, that
// it is set on the topic (DYNAMIC_TOPIC_CONFIG); otherwise that it is not.
func expectConfig(ctx context.Context, e *env, topic, key, want string, dynamic bool) error {
	c, err := topicConfig(ctx, e, topic, key)
	if err != nil {
		return err
	}
	isDynamic := c.Source == kmsg.ConfigSourceDynamicTopicConfig
	defaultish := c.Source == kmsg.ConfigSourceDefaultConfig || c.Source == kmsg.ConfigSourceStaticBrokerConfig
	if c.MaybeValue() != want || (dynamic && !isDynamic) || (!dynamic && !defaultish) {
		wantSource := "DEFAULT_CONFIG or STATIC_BROKER_CONFIG"
		if dynamic {
			wantSource = "DYNAMIC_TOPIC_CONFIG"
		}
		return fmt.Errorf("%s of %s is %q from source %v; want %q from %s", key, topic, c.MaybeValue(), c.Source, want, wantSource)
	}
	return nil
}

func (s *adminState) describeConfigs(ctx context.Context, e *env) error {
	for _, c := range []struct {
		topic, key, value string
		dynamic           bool
	}{
		{s.a, "retention.ms", "3600000", true},
		{s.a, "max.message.bytes", "2000000", true},
		{s.a, "cleanup.policy", "delete", false},
		{s.b, "cleanup.policy", "delete", true},
		{s.b, "retention.ms", "604800000", false},
	} {
		if err := expectConfig(ctx, e, c.topic, c.key, c.value, c.dynamic); err != nil {
			return err
		}
	}
	if _, err := topicConfig(ctx, e, s.a, "segment.bytes"); err != nil {
		return err
	}
	missing := e.name("admin-missing")
	rcs, err := e.adm.DescribeTopicConfigs(ctx, missing)
	if err == nil {
		var rc kadm.ResourceConfig
		rc, err = rcs.On(missing, nil)
		if err == nil {
			err = rc.Err
		}
	}
	if !errIs(err, kerr.UnknownTopicOrPartition) {
		return fmt.Errorf("DescribeConfigs of a topic that does not exist answered %s, want UNKNOWN_TOPIC_OR_PARTITION", errName(err))
	}
	return nil
}

func alter(ctx context.Context, e *env, topic string, configs ...kadm.AlterConfig) error {
	resps, err := e.adm.AlterTopicConfigs(ctx, configs, topic)
	if err != nil {
		return fmt.Errorf("IncrementalAlterConfigs %s: %w", topic, err)
	}
	r, err := resps.On(topic, nil)
	if err != nil {
		return fmt.Errorf("IncrementalAlterConfigs %s: %w", topic, err)
	}
	if r.Err != nil {
		return fmt.Errorf("IncrementalAlterConfigs %s: %w (%s)", topic, r.Err, r.ErrMessage)
	}
	return nil
}

func (s *adminState) alterConfigs(ctx context.Context, e *env) error {
	if err := alter(ctx, e, s.a,
		kadm.AlterConfig{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("7200000")},
		kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "max.message.bytes"},
		kadm.AlterConfig{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: kadm.StringPtr("compact")},
	); err != nil {
		return err
	}
	for _, c := range []struct {
		key, value string
		dynamic    bool
	}{
		{"retention.ms", "7200000", true},
		{"max.message.bytes", "1048588", false},
		{"cleanup.policy", "delete,compact", true},
	} {
		if err := expectConfig(ctx, e, s.a, c.key, c.value, c.dynamic); err != nil {
			return fmt.Errorf("after set/delete/append: %w", err)
		}
	}
	if err := alter(ctx, e, s.a, kadm.AlterConfig{Op: kadm.SubtractConfig, Name: "cleanup.policy", Value: kadm.StringPtr("compact")}); err != nil {
		return err
	}
	if err := expectConfig(ctx, e, s.a, "cleanup.policy", "delete", true); err != nil {
		return fmt.Errorf("after subtract: %w", err)
	}
	// A value of the wrong type is refused and changes nothing.
	err := alter(ctx, e, s.a, kadm.AlterConfig{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("later")})
	if !errors.Is(err, kerr.InvalidConfig) {
		return fmt.Errorf("IncrementalAlterConfigs retention.ms=later answered %v, want INVALID_CONFIG", err)
	}
	return expectConfig(ctx, e, s.a, "retention.ms", "7200000", true)
}

func (s *adminState) createPartitions(ctx context.Context, e *env) error {
	resps, err := e.adm.CreatePartitions(ctx, 2, s.a)
	if err != nil {
		return fmt.Errorf("CreatePartitions %s +2: %w", s.a, err)
	}
	if r := resps[s.a]; r.Err != nil {
		return fmt.Errorf("CreatePartitions %s +2: %w (%s)", s.a, r.Err, r.ErrMessage)
	}
	meta, err := e.adm.BrokerMetadata(ctx)
	if err != nil {
		return err
	}
	node := meta.Brokers[0].NodeID
	if err := waitFor(ctx, s.a+" to have 5 partitions", func() (bool, string) {
		ts, err := e.adm.ListTopics(ctx, s.a)
		if err != nil {
			return false, err.Error()
		}
		err = topicShape(ts[s.a], 5, node)
		return err == nil, fmt.Sprint(err)
	}); err != nil {
		return err
	}
	resps, err = e.adm.UpdatePartitions(ctx, 4, s.a)
	if err != nil {
		return fmt.Errorf("CreatePartitions %s to 4: %w", s.a, err)
	}
	if r := resps[s.a]; !errIs(r.Err, kerr.InvalidPartitions) {
		return fmt.Errorf("CreatePartitions from 5 down to 4 answered %s (%s), want INVALID_PARTITIONS", errName(r.Err), r.ErrMessage)
	}
	return nil
}

// The list-offsets records, all on partition 0 of a: record i at base+i s,
// but record 6 at base+20 s, so the greatest timestamp is not the last one's.
func (s *adminState) timestamp(i int) int64 {
	if i == 6 {
		return s.base + 20_000
	}
	return s.base + int64(i)*1000
}

func (s *adminState) listOffsets(ctx context.Context, e *env) error {
	s.base = time.Now().Add(-time.Hour).UnixMilli()
	producer, err := kgo.NewClient(e.opts("admin-producer", kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		return err
	}
	defer producer.Close()
	var records []*kgo.Record
	for i := range 10 {
		records = append(records, &kgo.Record{
			Topic: s.a, Partition: 0, Timestamp: time.UnixMilli(s.timestamp(i)),
			Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("timed %d", i)),
		})
	}
	if err := produceSync(ctx, producer, records...); err != nil {
		return err
	}

	type want struct {
		offset, timestamp int64 // timestamp -2: not checked
	}
	expect := func(what string, got kadm.ListedOffsets, listErr error, p0 want, others int64) error {
		if listErr != nil {
			return fmt.Errorf("ListOffsets (%s): %w", what, listErr)
		}
		if err := got.Error(); err != nil {
			return fmt.Errorf("ListOffsets (%s): %w", what, err)
		}
		for p := range int32(5) {
			o, ok := got.Lookup(s.a, p)
			w := want{others, -2}
			if p == 0 {
				w = p0
			}
			if !ok || o.Offset != w.offset || (w.timestamp != -2 && o.Timestamp != w.timestamp) {
				return fmt.Errorf("ListOffsets (%s) of %s partition %d answered offset %d timestamp %d (present %v); want offset %d timestamp %d",
					what, s.a, p, o.Offset, o.Timestamp, ok, w.offset, w.timestamp)
			}
		}
		return nil
	}
	got, err := e.adm.ListStartOffsets(ctx, s.a)
	if err := expect("earliest", got, err, want{0, -2}, 0); err != nil {
		return err
	}
	got, err = e.adm.ListEndOffsets(ctx, s.a)
	if err := expect("latest", got, err, want{10, -2}, 0); err != nil {
		return err
	}
	got, err = e.adm.ListOffsetsAfterMilli(ctx, s.base-1, s.a)
	if err := expect("timestamp before the first", got, err, want{0, s.timestamp(0)}, 0); err != nil {
		return err
	}
	got, err = e.adm.ListOffsetsAfterMilli(ctx, s.base+3500, s.a)
	if err := expect("timestamp between records 3 and 4", got, err, want{4, s.timestamp(4)}, 0); err != nil {
		return err
	}
	got, err = e.adm.ListOffsetsAfterMilli(ctx, s.base+10_000, s.a)
	if err := expect("timestamp only record 6 reaches", got, err, want{6, s.timestamp(6)}, 0); err != nil {
		return err
	}
	// After every record: no offset (-1), which kadm turns into the end offset.
	got, err = e.adm.ListOffsetsAfterMilli(ctx, s.base+60_000, s.a)
	if err := expect("timestamp after every record", got, err, want{10, -2}, 0); err != nil {
		return err
	}
	got, err = e.adm.ListMaxTimestampOffsets(ctx, s.a)
	if err != nil {
		return fmt.Errorf("ListOffsets (max timestamp): %w", err)
	}
	if o, _ := got.Lookup(s.a, 0); o.Err != nil || o.Offset != 6 || o.Timestamp != s.timestamp(6) {
		return fmt.Errorf("ListOffsets (max timestamp) of %s partition 0 answered offset %d timestamp %d err %v; want offset 6 timestamp %d",
			s.a, o.Offset, o.Timestamp, o.Err, s.timestamp(6))
	}
	return nil
}

func (s *adminState) deleteRecords(ctx context.Context, e *env) error {
	var os kadm.Offsets
	os.AddOffset(s.a, 0, 5, -1)
	resps, err := e.adm.DeleteRecords(ctx, os)
	if err != nil {
		return fmt.Errorf("DeleteRecords: %w", err)
	}
	r, ok := resps.Lookup(s.a, 0)
	if !ok || r.Err != nil || r.LowWatermark != 5 {
		return fmt.Errorf("DeleteRecords %s partition 0 before 5 answered low watermark %d, err %v (present %v); want 5", s.a, r.LowWatermark, r.Err, ok)
	}
	starts, err := e.adm.ListStartOffsets(ctx, s.a)
	if err != nil {
		return fmt.Errorf("ListOffsets (earliest): %w", err)
	}
	if o, _ := starts.Lookup(s.a, 0); o.Offset != 5 || o.Err != nil {
		return fmt.Errorf("after DeleteRecords, the log start offset of %s partition 0 is %d (err %v), want 5", s.a, o.Offset, o.Err)
	}
	got, err := consumeAll(ctx, e, "admin-after-delete", s.a, 5, time.Second)
	if err != nil {
		return err
	}
	if len(got) != 5 || got[0].Partition != 0 || got[0].Offset != 5 || string(got[0].Key) != "5" {
		return fmt.Errorf("after DeleteRecords, reading %s from the start returned %d records starting at %d@%d; want 5 starting at 0@5", s.a, len(got), got[0].Partition, got[0].Offset)
	}

	var beyond kadm.Offsets
	beyond.AddOffset(s.a, 0, 11, -1)
	resps, err = e.adm.DeleteRecords(ctx, beyond)
	if err != nil {
		return fmt.Errorf("DeleteRecords beyond the end: %w", err)
	}
	if r, _ := resps.Lookup(s.a, 0); !errIs(r.Err, kerr.OffsetOutOfRange) {
		return fmt.Errorf("DeleteRecords before 11 of a partition that ends at 10 answered %s, want OFFSET_OUT_OF_RANGE", errName(r.Err))
	}
	return nil
}

// groups: a consumer in a group over b; the group as ListGroups and
// DescribeGroups show it while the consumer is in it and after it left.
func (s *adminState) groups(ctx context.Context, e *env) error {
	producer, err := kgo.NewClient(e.opts("admin-producer-b", kgo.DefaultProduceTopic(s.b), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		return err
	}
	s.bCounts = map[int32]int64{0: 3, 1: 4}
	for p, n := range s.bCounts {
		for i := range n {
			if err := produceSync(ctx, producer, &kgo.Record{Partition: p, Value: []byte(fmt.Sprint(i))}); err != nil {
				producer.Close()
				return err
			}
		}
	}
	producer.Close()

	consumer, err := kgo.NewClient(e.opts("admin-group-member",
		kgo.ConsumerGroup(s.group),
		kgo.ConsumeTopics(s.b),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(500*time.Millisecond),
	)...)
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			consumer.Close()
		}
	}()
	consumed := 0
	for consumed < 7 {
		pollCtx, cancel := context.WithTimeout(ctx, time.Second)
		fs := consumer.PollFetches(pollCtx)
		cancel()
		if err := fetchErr(fs); err != nil {
			return fmt.Errorf("group consumer: %w", err)
		}
		consumed += len(fs.Records())
		if ctx.Err() != nil {
			return fmt.Errorf("the group consumer read %d of 7 records before the time limit", consumed)
		}
	}
	if err := consumer.CommitUncommittedOffsets(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}

	if err := waitFor(ctx, "ListGroups to list the group as a Stable consumer group", func() (bool, string) {
		listed, err := e.adm.ListGroups(ctx)
		if err != nil {
			return false, err.Error()
		}
		g, ok := listed[s.group]
		return ok && g.State == "Stable" && g.ProtocolType == "consumer", fmt.Sprintf("%+v (listed %v)", g, ok)
	}); err != nil {
		return err
	}
	if err := listedIn(ctx, e, s.group, []string{"Stable"}, true); err != nil {
		return err
	}
	if err := listedIn(ctx, e, s.group, []string{"Empty"}, false); err != nil {
		return err
	}
	if err := waitFor(ctx, "DescribeGroups to show the member and its assignment", func() (bool, string) {
		groups, err := e.adm.DescribeGroups(ctx, s.group)
		if err != nil {
			return false, err.Error()
		}
		g := groups[s.group]
		if g.Err != nil || g.State != "Stable" || g.ProtocolType != "consumer" || g.Protocol != "cooperative-sticky" || len(g.Members) != 1 {
			return false, fmt.Sprintf("state %q protocol type %q protocol %q members %d err %v", g.State, g.ProtocolType, g.Protocol, len(g.Members), g.Err)
		}
		m := g.Members[0]
		assigned := g.AssignedPartitions()
		ok := m.ClientID == "franzgo-admin-group-member" && m.MemberID != "" && assigned.Lookup(s.b, 0) && assigned.Lookup(s.b, 1) && len(assigned[s.b]) == 2
		return ok, fmt.Sprintf("member %s client %s assigned %v", m.MemberID, m.ClientID, assigned)
	}); err != nil {
		return err
	}

	consumer.Close()
	closed = true
	if err := waitFor(ctx, "the group to be Empty once its member left", func() (bool, string) {
		groups, err := e.adm.DescribeGroups(ctx, s.group)
		if err != nil {
			return false, err.Error()
		}
		g := groups[s.group]
		return g.Err == nil && g.State == "Empty" && len(g.Members) == 0, fmt.Sprintf("state %q members %d err %v", g.State, len(g.Members), g.Err)
	}); err != nil {
		return err
	}
	if err := listedIn(ctx, e, s.group, []string{"Empty"}, true); err != nil {
		return err
	}
	return listedIn(ctx, e, s.group, []string{"Stable", "PreparingRebalance", "CompletingRebalance"}, false)
}

// listedIn checks whether ListGroups filtered by states lists group.
func listedIn(ctx context.Context, e *env, group string, states []string, want bool) error {
	listed, err := e.adm.ListGroups(ctx, states...)
	if err != nil {
		return fmt.Errorf("ListGroups %v: %w", states, err)
	}
	if _, ok := listed[group]; ok != want {
		return fmt.Errorf("ListGroups filtered by states %v lists %s: %v, want %v (it lists %v)", states, group, ok, want, listed.Groups())
	}
	return nil
}

func (s *adminState) offsetFetch(ctx context.Context, e *env) error {
	fetched, err := e.adm.FetchOffsets(ctx, s.group)
	if err != nil {
		return fmt.Errorf("OffsetFetch %s: %w", s.group, err)
	}
	for p, n := range s.bCounts {
		o, ok := fetched.Lookup(s.b, p)
		if !ok || o.Err != nil || o.At != n {
			return fmt.Errorf("OffsetFetch %s: %s partition %d committed %d (present %v, err %v); the member committed %d", s.group, s.b, p, o.At, ok, o.Err, n)
		}
	}
	// An admin commit to the group, now Empty (generation -1, no member).
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: s.b, Partition: 0, At: 1, LeaderEpoch: -1, Metadata: "rewound by kadm"})
	if err := e.adm.CommitAllOffsets(ctx, s.group, os); err != nil {
		return fmt.Errorf("OffsetCommit to the empty group: %w", err)
	}
	fetched, err = e.adm.FetchOffsets(ctx, s.group)
	if err != nil {
		return fmt.Errorf("OffsetFetch %s: %w", s.group, err)
	}
	if o, _ := fetched.Lookup(s.b, 0); o.At != 1 || o.Metadata != "rewound by kadm" || o.Err != nil {
		return fmt.Errorf("after the admin commit, OffsetFetch answered %s partition 0 at %d with metadata %q (err %v); want 1, %q", s.b, o.At, o.Metadata, o.Err, "rewound by kadm")
	}
	if o, _ := fetched.Lookup(s.b, 1); o.At != s.bCounts[1] {
		return fmt.Errorf("after the admin commit to partition 0, partition 1's offset changed to %d (was %d)", o.At, s.bCounts[1])
	}
	none, err := e.adm.FetchOffsets(ctx, e.name("admin-no-such-group"))
	if err != nil {
		return fmt.Errorf("OffsetFetch of a group that does not exist: %w", err)
	}
	if len(none) != 0 {
		return fmt.Errorf("OffsetFetch of a group that does not exist answered offsets %v, want none", none)
	}

	// Deleting the group removes it and its offsets.
	deleted, err := e.adm.DeleteGroup(ctx, s.group)
	if err != nil || deleted.Err != nil {
		return fmt.Errorf("DeleteGroups %s: %v %v (%s)", s.group, err, deleted.Err, deleted.ErrMessage)
	}
	if err := listedIn(ctx, e, s.group, nil, false); err != nil {
		return err
	}
	fetched, err = e.adm.FetchOffsets(ctx, s.group)
	if err != nil {
		return fmt.Errorf("OffsetFetch of the deleted group: %w", err)
	}
	if len(fetched) != 0 {
		return fmt.Errorf("OffsetFetch of the deleted group still answers offsets %v", fetched)
	}
	return nil
}

func (s *adminState) deleteTopics(ctx context.Context, e *env) error {
	resps, err := e.adm.DeleteTopics(ctx, s.a, s.b)
	if err != nil {
		return fmt.Errorf("DeleteTopics: %w", err)
	}
	for _, t := range []string{s.a, s.b} {
		if r := resps[t]; r.Err != nil {
			return fmt.Errorf("DeleteTopics %s: %w (%s)", t, r.Err, r.ErrMessage)
		}
	}
	if err := waitFor(ctx, "the deleted topics to be gone from Metadata", func() (bool, string) {
		all, err := e.adm.ListTopics(ctx)
		if err != nil {
			return false, err.Error()
		}
		_, hasA := all[s.a]
		_, hasB := all[s.b]
		return !hasA && !hasB, fmt.Sprintf("still listed: %s %v, %s %v", s.a, hasA, s.b, hasB)
	}); err != nil {
		return err
	}
	if err := expectNoTopic(ctx, e, s.a, "a deleted topic"); err != nil {
		return err
	}
	again, err := e.adm.DeleteTopic(ctx, s.a)
	if err == nil {
		err = again.Err
	}
	if !errIs(err, kerr.UnknownTopicOrPartition) {
		return fmt.Errorf("deleting %s again answered %s, want UNKNOWN_TOPIC_OR_PARTITION", s.a, errName(err))
	}
	return nil
}
