package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// codec is a compression codec, with the id record batches carry for it.
type codec struct {
	name  string
	id    uint8
	codec kgo.CompressionCodec
}

var codecs = []codec{
	{"none", 0, kgo.NoCompression()},
	{"gzip", 1, kgo.GzipCompression()},
	{"snappy", 2, kgo.SnappyCompression()},
	{"lz4", 3, kgo.Lz4Compression()},
	{"zstd", 4, kgo.ZstdCompression()},
}

const roundTripRecords = 400

// roundTripRecord is record i of the round trip: keys repeat (so partitions
// get several records per key), some keys and values are null or empty, some
// values are large and compressible, some random, and headers vary in number.
func roundTripRecord(c codec, i int, rng *rand.Rand) *kgo.Record {
	r := &kgo.Record{Key: []byte(fmt.Sprintf("%s-key-%02d", c.name, i%37))}
	switch {
	case i%29 == 0:
		r.Key = nil
	case i%31 == 0:
		r.Key = []byte{}
	}
	switch {
	case i%23 == 0:
		r.Value = nil
	case i%19 == 0:
		r.Value = []byte{}
	case i%10 == 0:
		r.Value = []byte(strings.Repeat(fmt.Sprintf("large compressible value %d of %s; ", i, c.name), 300))
	case i%7 == 0:
		r.Value = make([]byte, 2000)
		rng.Read(r.Value)
	default:
		r.Value = []byte(fmt.Sprintf("value %d of the %s round trip", i, c.name))
	}
	r.Headers = []kgo.RecordHeader{{Key: "seq", Value: []byte(fmt.Sprint(i))}, {Key: "codec", Value: []byte(c.name)}}
	if i%5 == 0 {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: "null-header", Value: nil}, kgo.RecordHeader{Key: "seq", Value: []byte("again")})
	}
	if i%9 == 0 {
		r.Headers = nil
	}
	return r
}

// checkRoundTrip produces keyed records with one codec to a topic of its own,
// reads them back from the start and compares each partition's records
// (offset, key, value, headers, timestamp, the batch's codec) in order.
func checkRoundTrip(ctx context.Context, e *env, c codec) error {
	topic := e.name("codec-" + c.name)
	if err := createTopic(ctx, e, topic, 3, nil); err != nil {
		return err
	}
	producer, err := kgo.NewClient(e.opts("producer-"+c.name,
		kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchCompression(c.codec),
		// Each half goes out as one batch per partition.
		kgo.ProducerLinger(100*time.Millisecond),
	)...)
	if err != nil {
		return err
	}
	defer producer.Close()

	rng := rand.New(rand.NewSource(int64(c.id) + 1))
	records := make([]*kgo.Record, roundTripRecords)
	for i := range records {
		records[i] = roundTripRecord(c, i, rng)
	}
	// Two halves, so the partitions get more than one batch each.
	half := len(records) / 2
	if err := produceSync(ctx, producer, records[:half]...); err != nil {
		return err
	}
	if err := produceSync(ctx, producer, records[half:]...); err != nil {
		return err
	}

	want := byPartition(records)
	for p, rs := range want {
		for j, r := range rs {
			if r.Offset != int64(j) {
				return fmt.Errorf("partition %d: produce acknowledged offsets %v, want 0..%d in order", p, offsets(rs), len(rs)-1)
			}
		}
	}

	got, err := consumeAll(ctx, e, "consumer-"+c.name, topic, len(records), time.Second)
	if err != nil {
		return err
	}
	if len(got) != len(records) {
		return fmt.Errorf("consumed %d records, produced %d", len(got), len(records))
	}
	// The broker keeps the producer's compression (compression.type=producer):
	// most records come back in batches compressed with the codec produced.
	withCodec := 0
	for _, r := range got {
		if r.Attrs.CompressionType() == c.id {
			withCodec++
		}
	}
	if withCodec < len(got)/2 {
		return fmt.Errorf("only %d of %d records were fetched from batches compressed with %s (id %d)", withCodec, len(got), c.name, c.id)
	}
	have := byPartition(got)
	for p, ws := range want {
		hs := have[p]
		if len(hs) != len(ws) {
			return fmt.Errorf("partition %d: consumed %d records, produced %d", p, len(hs), len(ws))
		}
		for j := range ws {
			if err := sameRecord(ws[j], hs[j], c); err != nil {
				return fmt.Errorf("partition %d, record %d: %w", p, j, err)
			}
		}
	}
	return nil
}

// byPartition groups records by partition, each group in the order given
// (which for records from one poll loop is offset order).
func byPartition(records []*kgo.Record) map[int32][]*kgo.Record {
	out := make(map[int32][]*kgo.Record)
	for _, r := range records {
		out[r.Partition] = append(out[r.Partition], r)
	}
	for _, rs := range out {
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].Offset < rs[j].Offset })
	}
	return out
}

func offsets(rs []*kgo.Record) []int64 {
	out := make([]int64, len(rs))
	for i, r := range rs {
		out[i] = r.Offset
	}
	return out
}

// sameBytes compares two byte fields, telling null apart from empty.
func sameBytes(a, b []byte) bool {
	return (a == nil) == (b == nil) && bytes.Equal(a, b)
}

func show(b []byte) string {
	if b == nil {
		return "null"
	}
	if len(b) > 40 {
		return fmt.Sprintf("%q... (%d bytes)", b[:40], len(b))
	}
	return fmt.Sprintf("%q", b)
}

func sameRecord(want, got *kgo.Record, c codec) error {
	switch {
	case want.Offset != got.Offset:
		return fmt.Errorf("offset %d, want %d", got.Offset, want.Offset)
	case !sameBytes(want.Key, got.Key):
		return fmt.Errorf("offset %d: key %s, want %s", got.Offset, show(got.Key), show(want.Key))
	case !sameBytes(want.Value, got.Value):
		return fmt.Errorf("offset %d: value %s, want %s", got.Offset, show(got.Value), show(want.Value))
	case want.Timestamp.UnixMilli() != got.Timestamp.UnixMilli():
		return fmt.Errorf("offset %d: timestamp %d, want %d", got.Offset, got.Timestamp.UnixMilli(), want.Timestamp.UnixMilli())
	case got.Attrs.CompressionType() != c.id && got.Attrs.CompressionType() != 0:
		// 0 is allowed: franz-go sends a batch that does not shrink uncompressed.
		return fmt.Errorf("offset %d: fetched from a batch with compression %d, produced with %d (%s)",
			got.Offset, got.Attrs.CompressionType(), c.id, c.name)
	case len(want.Headers) != len(got.Headers):
		return fmt.Errorf("offset %d: %d headers, want %d", got.Offset, len(got.Headers), len(want.Headers))
	}
	for i := range want.Headers {
		w, g := want.Headers[i], got.Headers[i]
		if w.Key != g.Key || !sameBytes(w.Value, g.Value) {
			return fmt.Errorf("offset %d: header %d is %q=%s, want %q=%s", got.Offset, i, g.Key, show(g.Value), w.Key, show(w.Value))
		}
	}
	return nil
}
