package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const txnInputRecords = 240

// checkTransactSession: consume-transform-produce with GroupTransactSession.
// Every third transaction is aborted on purpose (its output must never be
// read committed, and its input is consumed again); a read_committed reader
// of the output then sees exactly one copy of each input record, a
// read_uncommitted reader sees the aborted copies as well, and the group's
// committed offsets are the input's log end.
func checkTransactSession(ctx context.Context, e *env) error {
	in, out, group := e.name("txn-in"), e.name("txn-out"), e.name("eos-group")
	for _, t := range []string{in, out} {
		if err := createTopic(ctx, e, t, 3, nil); err != nil {
			return err
		}
	}
	producer, err := kgo.NewClient(e.opts("txn-input-producer", kgo.DefaultProduceTopic(in))...)
	if err != nil {
		return err
	}
	inputs := make([]*kgo.Record, txnInputRecords)
	for i := range inputs {
		inputs[i] = &kgo.Record{Key: []byte(fmt.Sprintf("in-%03d", i)), Value: []byte(fmt.Sprintf("input %d", i))}
	}
	err = produceSync(ctx, producer, inputs...)
	producer.Close()
	if err != nil {
		return err
	}

	sess, err := kgo.NewGroupTransactSession(e.opts("eos",
		kgo.TransactionalID(e.name("eos")),
		kgo.TransactionTimeout(60*time.Second),
		kgo.DefaultProduceTopic(out),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(in),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.SessionTimeout(30*time.Second),
		kgo.RebalanceTimeout(60*time.Second),
	)...)
	if err != nil {
		return err
	}
	defer sess.Close()

	committedInputs := map[string]bool{}
	var txns, commits, aborts, failedCommits, abortedOutputs int
	for len(committedInputs) < txnInputRecords {
		if ctx.Err() != nil {
			return fmt.Errorf("%d of %d inputs processed in committed transactions before the time limit (%d transactions, %d aborted)",
				len(committedInputs), txnInputRecords, txns, aborts)
		}
		pollCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fs := sess.PollRecords(pollCtx, 50)
		cancel()
		if err := fetchErr(fs); err != nil {
			return fmt.Errorf("poll: %w", err)
		}
		records := fs.Records()
		if len(records) == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			return fmt.Errorf("begin transaction: %w", err)
		}
		txns++
		var mu sync.Mutex
		var produceErrs []error
		for _, r := range records {
			sess.Produce(ctx, &kgo.Record{
				Key:   r.Key,
				Value: []byte("processed " + string(r.Value)),
				Headers: []kgo.RecordHeader{
					{Key: "source", Value: []byte(fmt.Sprintf("%d@%d", r.Partition, r.Offset))},
					{Key: "txn", Value: []byte(fmt.Sprint(txns))},
				},
			}, func(_ *kgo.Record, err error) {
				if err != nil {
					mu.Lock()
					produceErrs = append(produceErrs, err)
					mu.Unlock()
				}
			})
		}
		// Flushed first, so an aborted transaction's records are in the log
		// (and read_uncommitted must return them).
		if err := sess.Client().Flush(ctx); err != nil {
			return fmt.Errorf("flush transaction %d: %w", txns, err)
		}
		abort := txns%3 == 2
		try := kgo.TryCommit
		if abort {
			try = kgo.TryAbort
		}
		committed, err := sess.End(ctx, try)
		if err != nil {
			return fmt.Errorf("end transaction %d (commit %v): %w", txns, !abort, err)
		}
		mu.Lock()
		errs := errors.Join(produceErrs...)
		mu.Unlock()
		switch {
		case abort && committed:
			return fmt.Errorf("transaction %d was ended with an abort but reported committed", txns)
		case abort:
			if errs != nil {
				return fmt.Errorf("transaction %d (to be aborted): a produce failed: %w", txns, errs)
			}
			aborts++
			abortedOutputs += len(records)
		case !committed:
			// A rebalance or a broker answer made the session abort; its
			// input is consumed again. Allowed, but counted.
			failedCommits++
			abortedOutputs += len(records)
		default:
			if errs != nil {
				return fmt.Errorf("transaction %d committed although a produce failed: %w", txns, errs)
			}
			commits++
			for _, r := range records {
				k := string(r.Key)
				if committedInputs[k] {
					return fmt.Errorf("input %s (partition %d offset %d) was processed again in committed transaction %d", k, r.Partition, r.Offset, txns)
				}
				committedInputs[k] = true
			}
		}
	}
	if aborts == 0 {
		return fmt.Errorf("no transaction was aborted (%d transactions): the check did not exercise aborts", txns)
	}
	fmt.Fprintf(logOut, "txn: %d transactions: %d committed, %d aborted on purpose, %d commits the session turned into aborts; %d records written in aborted transactions\n",
		txns, commits, aborts, failedCommits, abortedOutputs)

	// The group's committed offsets are the input's end offsets.
	inEnds, err := e.adm.ListEndOffsets(ctx, in)
	if err != nil {
		return fmt.Errorf("ListOffsets (end) of the input: %w", err)
	}
	groupOffsets, err := e.adm.FetchOffsets(ctx, group)
	if err != nil {
		return fmt.Errorf("OffsetFetch: %w", err)
	}
	var diffs []string
	inEnds.Each(func(o kadm.ListedOffset) {
		c, ok := groupOffsets.Lookup(in, o.Partition)
		if !ok || c.Err != nil || c.At != o.Offset {
			diffs = append(diffs, fmt.Sprintf("partition %d: committed %d (present %v, err %v), end %d", o.Partition, c.At, ok, c.Err, o.Offset))
		}
	})
	if len(diffs) > 0 {
		return fmt.Errorf("group offsets after the last transaction differ from the input's end offsets: %s", strings.Join(diffs, "; "))
	}

	// With no transaction open, the last stable offsets are the high watermarks.
	outEnds, err := e.adm.ListEndOffsets(ctx, out)
	if err != nil {
		return fmt.Errorf("ListOffsets (end) of the output: %w", err)
	}
	outStable, err := e.adm.ListCommittedOffsets(ctx, out)
	if err != nil {
		return fmt.Errorf("ListOffsets (read_committed) of the output: %w", err)
	}
	diffs = nil
	outEnds.Each(func(o kadm.ListedOffset) {
		s, ok := outStable.Lookup(out, o.Partition)
		if !ok || s.Err != nil || s.Offset != o.Offset {
			diffs = append(diffs, fmt.Sprintf("partition %d: last stable offset %d (err %v), high watermark %d", o.Partition, s.Offset, s.Err, o.Offset))
		}
	})
	if len(diffs) > 0 {
		return fmt.Errorf("output's read_committed end offsets differ from its high watermarks with no transaction open: %s", strings.Join(diffs, "; "))
	}

	// read_committed: each input exactly once, nothing from an aborted transaction.
	got, err := consumeAll(ctx, e, "txn-read-committed", out, txnInputRecords, 2*time.Second, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return err
	}
	copies := map[string]int{}
	for _, r := range got {
		copies[string(r.Key)]++
		if !r.Attrs.IsTransactional() {
			return fmt.Errorf("output record %s at %d@%d is not in a transactional batch", r.Key, r.Partition, r.Offset)
		}
	}
	var wrong []string
	for _, in := range inputs {
		if n := copies[string(in.Key)]; n != 1 {
			wrong = append(wrong, fmt.Sprintf("%s: %d copies", in.Key, n))
		}
	}
	if len(got) != txnInputRecords || len(wrong) > 0 {
		if len(wrong) > 10 {
			wrong = append(wrong[:10], "...")
		}
		return fmt.Errorf("read_committed consumer of the output read %d records for %d inputs (%d transactions, %d aborted on purpose, %d failed commits): %v",
			len(got), txnInputRecords, txns, aborts, failedCommits, wrong)
	}

	// read_uncommitted also returns the aborted transactions' records.
	all, err := consumeAll(ctx, e, "txn-read-uncommitted", out, txnInputRecords+abortedOutputs, 2*time.Second, kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	if err != nil {
		return err
	}
	if len(all) != txnInputRecords+abortedOutputs {
		return fmt.Errorf("read_uncommitted consumer of the output read %d records, want %d committed + %d aborted", len(all), txnInputRecords, abortedOutputs)
	}
	return nil
}
