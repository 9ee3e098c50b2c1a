package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// checkTelemetry: the admin makes a client-metrics subscription (an
// IncrementalAlterConfigs of a CLIENT_METRICS resource) for producer metrics
// of the client id franzgo-telemetry, every second; a franz-go producer with
// that client id then pushes its metrics (KIP-714), and the broker shows them
// on its /metrics page as that client's, with franz-go's software name.
func checkTelemetry(ctx context.Context, e *env) error {
	clientID := "franzgo-telemetry-" + e.run
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType = kmsg.ConfigResourceTypeClientMetrics
	res.ResourceName = e.name("telemetry")
	for k, v := range map[string]string{
		"metrics":     "org.apache.kafka.producer.",
		"interval.ms": "1000",
		"match":       "client_id=" + clientID,
	} {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name = k
		c.Value = kmsg.StringPtr(v)
		c.Op = kmsg.IncrementalAlterConfigOpSet
		res.Configs = append(res.Configs, c)
	}
	req.Resources = append(req.Resources, res)
	resp, err := req.RequestWith(ctx, e.admCl)
	if err != nil {
		return fmt.Errorf("IncrementalAlterConfigs (client metrics): %w", err)
	}
	if len(resp.Resources) != 1 || resp.Resources[0].ErrorCode != 0 {
		return fmt.Errorf("IncrementalAlterConfigs (client metrics) answered %+v", resp.Resources)
	}

	topic := e.name("telemetry")
	if err := createTopic(ctx, e, topic, 1, nil); err != nil {
		return err
	}
	cl, err := kgo.NewClient(append(e.opts("telemetry", kgo.DefaultProduceTopic(topic)), kgo.ClientID(clientID))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		if err := produceSync(ctx, cl, &kgo.Record{Value: []byte("measured")}); err != nil {
			return err
		}
		text, err := brokerMetrics(ctx, e)
		if err != nil {
			return err
		}
		var pushed []string
		for _, line := range strings.Split(text, "\n") {
			if strings.HasPrefix(line, "sluice_client_metric{") && strings.Contains(line, `client_id="`+clientID+`"`) {
				pushed = append(pushed, line)
			}
		}
		if len(pushed) > 0 {
			var named, software bool
			for _, line := range pushed {
				named = named || strings.Contains(line, `name="org.apache.kafka.producer.`)
				// The name franz-go gives in ApiVersions (v3+).
				software = software || strings.Contains(line, `client_software_name="kgo"`)
				if strings.Contains(line, `name="org.apache.kafka.consumer.`) {
					return fmt.Errorf("a metric outside the subscription was shown: %s", line)
				}
			}
			if !named || !software {
				return fmt.Errorf("the pushed metrics are not franz-go's producer metrics: %v", pushed)
			}
			fmt.Fprintf(logOut, "telemetry: %d metric samples shown for %s\n", len(pushed), clientID)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the broker never showed metrics pushed by %s", clientID)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// describeQuorum sends DescribeQuorum for the metadata log's partition.
func describeQuorum(ctx context.Context, e *env) (*kmsg.DescribeQuorumResponseTopicPartition, *kmsg.DescribeQuorumResponse, error) {
	req := kmsg.NewPtrDescribeQuorumRequest()
	t := kmsg.NewDescribeQuorumRequestTopic()
	t.Topic = "__cluster_metadata"
	p := kmsg.NewDescribeQuorumRequestTopicPartition()
	p.Partition = 0
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, e.admCl)
	if err != nil {
		return nil, nil, fmt.Errorf("DescribeQuorum: %w", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, nil, fmt.Errorf("DescribeQuorum: %w", err)
	}
	if len(resp.Topics) != 1 || resp.Topics[0].Topic != "__cluster_metadata" || len(resp.Topics[0].Partitions) != 1 {
		return nil, nil, fmt.Errorf("DescribeQuorum answered topics %+v", resp.Topics)
	}
	part := &resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(part.ErrorCode); err != nil {
		return nil, nil, fmt.Errorf("DescribeQuorum partition: %w", err)
	}
	return part, resp, nil
}

// checkDescribeQuorum (what kafka-metadata-quorum.sh sends): the leader is
// the controller Metadata names, it is the only voter with its log end at
// the high watermark, its node entry lists the listener the client uses, and
// the high watermark moves by one when a topic is created.
func checkDescribeQuorum(ctx context.Context, e *env) error {
	meta, err := e.adm.BrokerMetadata(ctx)
	if err != nil {
		return fmt.Errorf("Metadata: %w", err)
	}
	part, resp, err := describeQuorum(ctx, e)
	if err != nil {
		return err
	}
	if part.LeaderID != meta.Controller || len(part.CurrentVoters) != 1 || part.CurrentVoters[0].ReplicaID != part.LeaderID ||
		part.CurrentVoters[0].LogEndOffset != part.HighWatermark || len(part.Observers) != 0 {
		return fmt.Errorf("DescribeQuorum: leader %d (Metadata's controller %d), voters %+v, observers %+v, high watermark %d",
			part.LeaderID, meta.Controller, part.CurrentVoters, part.Observers, part.HighWatermark)
	}
	host, port, _ := net.SplitHostPort(e.bootstrap)
	var listed []string
	found := false
	for _, n := range resp.Nodes {
		for _, l := range n.Listeners {
			listed = append(listed, fmt.Sprintf("%d %s %s:%d", n.NodeID, l.Name, l.Host, l.Port))
			found = found || (n.NodeID == part.LeaderID && l.Host == host && strconv.Itoa(int(l.Port)) == port)
		}
	}
	if !found {
		return fmt.Errorf("DescribeQuorum's nodes %v do not list the leader at %s", listed, e.bootstrap)
	}
	if err := createTopic(ctx, e, e.name("quorum"), 1, nil); err != nil {
		return err
	}
	return waitFor(ctx, "the quorum's high watermark to count the topic creation", func() (bool, string) {
		after, _, err := describeQuorum(ctx, e)
		if err != nil {
			return false, err.Error()
		}
		return after.HighWatermark == part.HighWatermark+1 && after.CurrentVoters[0].LogEndOffset == after.HighWatermark,
			fmt.Sprintf("high watermark %d, was %d", after.HighWatermark, part.HighWatermark)
	})
}

// features reads the supported and finalized features from ApiVersions (what
// the admin client's describeFeatures reads).
func features(ctx context.Context, e *env) (supported map[string][2]int16, finalized map[string]int16, epoch int64, err error) {
	req := kmsg.NewPtrApiVersionsRequest()
	req.ClientSoftwareName = "franzgo"
	req.ClientSoftwareVersion = "1"
	resp, err := req.RequestWith(ctx, e.admCl)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("ApiVersions: %w", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, nil, 0, fmt.Errorf("ApiVersions: %w", err)
	}
	supported, finalized = map[string][2]int16{}, map[string]int16{}
	for _, f := range resp.SupportedFeatures {
		supported[f.Name] = [2]int16{f.MinVersion, f.MaxVersion}
	}
	for _, f := range resp.FinalizedFeatures {
		if f.MinVersionLevel != f.MaxVersionLevel && f.Name != "metadata.version" {
			return nil, nil, 0, fmt.Errorf("finalized feature %s has levels %d..%d", f.Name, f.MinVersionLevel, f.MaxVersionLevel)
		}
		finalized[f.Name] = f.MaxVersionLevel
	}
	return supported, finalized, resp.FinalizedFeaturesEpoch, nil
}

// checkFeatures (what kafka-features.sh sends): ApiVersions describes the
// supported and finalized features; UpdateFeatures validates a downgrade
// without applying it, applies a downgrade and an upgrade of
// transaction.version (each moving the finalized epoch), and refuses a level
// beyond what is supported with INVALID_UPDATE_VERSION. transaction.version
// is left where it was.
func checkFeatures(ctx context.Context, e *env) error {
	supported, finalized, epoch, err := features(ctx, e)
	if err != nil {
		return err
	}
	const tv = "transaction.version"
	if supported[tv] != [2]int16{0, 2} || finalized[tv] != 2 || supported["group.version"] != [2]int16{0, 1} || finalized["metadata.version"] < 1 || epoch < 0 {
		return fmt.Errorf("features: supported %v, finalized %v (epoch %d); want transaction.version 0..2 finalized at 2, group.version 0..1, a metadata.version",
			supported, finalized, epoch)
	}
	update := func(validateOnly bool, level int16, upgradeType int8) error {
		res, err := e.adm.UpdateFeatures(ctx, validateOnly, kadm.FeatureUpdate{Feature: tv, MaxVersionLevel: level, UpgradeType: upgradeType})
		if err != nil {
			return err
		}
		if r, ok := res[tv]; !ok {
			return fmt.Errorf("UpdateFeatures answered nothing for %s: %v", tv, res)
		} else {
			return r.Err
		}
	}
	expect := func(what string, level int16, epochAbove int64) (int64, error) {
		_, finalized, epoch, err := features(ctx, e)
		if err != nil {
			return 0, err
		}
		if finalized[tv] != level || epoch <= epochAbove {
			return 0, fmt.Errorf("after %s: %s finalized at %d (epoch %d, was %d); want %d and a newer epoch", what, tv, finalized[tv], epoch, epochAbove, level)
		}
		return epoch, nil
	}
	if err := update(true, 1, 2); err != nil {
		return fmt.Errorf("UpdateFeatures (validate only, downgrade to 1): %w", err)
	}
	if _, finalized, epochNow, err := features(ctx, e); err != nil || finalized[tv] != 2 || epochNow != epoch {
		return fmt.Errorf("a validate-only update changed %s to %d (epoch %d to %d, err %v)", tv, finalized[tv], epoch, epochNow, err)
	}
	if err := update(false, 1, 2); err != nil {
		return fmt.Errorf("UpdateFeatures (downgrade to 1): %w", err)
	}
	epoch, err = expect("the downgrade", 1, epoch)
	if err != nil {
		return err
	}
	if err := update(false, 3, 1); !errIs(err, kerr.InvalidUpdateVersion) {
		return fmt.Errorf("UpdateFeatures to %s 3 (unsupported): %s, want INVALID_UPDATE_VERSION", tv, errName(err))
	}
	if err := update(false, 2, 1); err != nil {
		return fmt.Errorf("UpdateFeatures (upgrade to 2): %w", err)
	}
	_, err = expect("the upgrade", 2, epoch)
	return err
}
