package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// brokerMetrics fetches the broker's /metrics text from its admin address.
func brokerMetrics(ctx context.Context, e *env) (string, error) {
	if e.adminURL == "" {
		return "", fmt.Errorf("this check needs the broker's admin address (-admin)")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.adminURL+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("GET /metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /metrics: status %d, %v", resp.StatusCode, err)
	}
	return string(body), nil
}

// metricSum adds up the samples of metric name whose labels include all of
// labels (`key="value"` pairs) in Prometheus text.
func metricSum(text, name string, labels ...string) float64 {
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		matches := true
		for _, l := range labels {
			if !strings.Contains(line, l) {
				matches = false
			}
		}
		fields := strings.Fields(line)
		if v, err := strconv.ParseFloat(fields[len(fields)-1], 64); matches && err == nil {
			sum += v
		}
	}
	return sum
}

func requestCount(text, api string) float64 {
	return metricSum(text, "sluice_requests_total", `request="`+api+`"`)
}

// checkTransactionsV2: with transaction.version 2 finalized, franz-go runs
// KIP-890 part 2 transactions: each EndTxn bumps the producer epoch (read
// back with ProducerID), the client never sends AddPartitionsToTxn (the
// broker adds partitions as they are produced to, counted by the broker's
// own request metrics), and read_committed sees exactly the committed
// transactions' records.
func checkTransactionsV2(ctx context.Context, e *env) error {
	topic := e.name("txn-v2")
	if err := createTopic(ctx, e, topic, 3, nil); err != nil {
		return err
	}
	cl, err := kgo.NewClient(e.opts("txn-v2",
		kgo.TransactionalID(e.name("txn-v2")),
		kgo.TransactionTimeout(30*time.Second),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	// franz-go learns the finalized features from its connections and opts
	// into KIP-890 part 2 when it notices transaction.version 2, at the
	// latest when its first transaction ends; the checked transactions
	// come after that one.
	if err := cl.BeginTransaction(); err != nil {
		return fmt.Errorf("begin the first transaction: %w", err)
	}
	if err := produceSync(ctx, cl, &kgo.Record{Partition: 0, Key: []byte("first"), Value: []byte("v2")}); err != nil {
		return err
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return fmt.Errorf("end the first transaction: %w", err)
	}
	committed := 1
	pid, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		return fmt.Errorf("InitProducerId: %w", err)
	}
	before, err := brokerMetrics(ctx, e)
	if err != nil {
		return err
	}
	const txns = 4
	for i := range txns {
		if err := cl.BeginTransaction(); err != nil {
			return fmt.Errorf("begin transaction %d: %w", i, err)
		}
		var records []*kgo.Record
		for p := range 3 {
			records = append(records, &kgo.Record{Partition: int32(p), Key: []byte(fmt.Sprintf("t%d-p%d", i, p)), Value: []byte("v2")})
		}
		if err := produceSync(ctx, cl, records...); err != nil {
			return fmt.Errorf("transaction %d: %w", i, err)
		}
		commit := i != 1
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			return fmt.Errorf("end transaction %d (commit %v): %w", i, commit, err)
		}
		if commit {
			committed += len(records)
		}
		gotPID, gotEpoch, err := cl.ProducerID(ctx)
		if err != nil {
			return fmt.Errorf("producer id after transaction %d: %w", i, err)
		}
		if gotPID != pid || gotEpoch != epoch+int16(i)+1 {
			return fmt.Errorf("after transaction %d the producer is id %d epoch %d; KIP-890 bumps the epoch with each EndTxn: want id %d epoch %d",
				i, gotPID, gotEpoch, pid, epoch+int16(i)+1)
		}
	}
	described, err := e.adm.DescribeTransactions(ctx, e.name("txn-v2"))
	if err != nil {
		return fmt.Errorf("DescribeTransactions: %w", err)
	}
	if d := described[e.name("txn-v2")]; d.Err != nil || d.ProducerID != pid || d.ProducerEpoch != epoch+txns || d.State != "CompleteCommit" {
		return fmt.Errorf("DescribeTransactions: producer %d epoch %d state %q (err %v); want %d, %d, CompleteCommit",
			d.ProducerID, d.ProducerEpoch, d.State, d.Err, pid, epoch+txns)
	}
	after, err := brokerMetrics(ctx, e)
	if err != nil {
		return err
	}
	if n := requestCount(after, "AddPartitionsToTxn") - requestCount(before, "AddPartitionsToTxn"); n != 0 {
		return fmt.Errorf("the client sent %v AddPartitionsToTxn requests; under transaction.version 2 the broker adds partitions itself", n)
	}
	if n := requestCount(after, "EndTxn") - requestCount(before, "EndTxn"); n < txns {
		return fmt.Errorf("the broker counted %v EndTxn requests for %d transactions", n, txns)
	}
	got, err := consumeAll(ctx, e, "txn-v2-reader", topic, committed, 2*time.Second, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return err
	}
	for _, r := range got {
		if strings.HasPrefix(string(r.Key), "t1-") {
			return fmt.Errorf("read_committed returned %s from the aborted transaction", r.Key)
		}
	}
	if len(got) != committed {
		return fmt.Errorf("read_committed returned %d records, want the %d committed", len(got), committed)
	}
	return nil
}

// checkListDescribeTransactions: a transaction left open is listed (by
// state and by producer id) and described with its
// partitions, producer and timeout; once committed it is described as
// CompleteCommit with no partitions, and no longer listed as Ongoing.
func checkListDescribeTransactions(ctx context.Context, e *env) error {
	topic, txnID := e.name("txn-listed"), e.name("txn-listed")
	if err := createTopic(ctx, e, topic, 2, nil); err != nil {
		return err
	}
	cl, err := kgo.NewClient(e.opts("txn-listed",
		kgo.TransactionalID(txnID),
		kgo.TransactionTimeout(45*time.Second),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.BeginTransaction(); err != nil {
		return err
	}
	if err := produceSync(ctx, cl, &kgo.Record{Partition: 0, Value: []byte("a")}, &kgo.Record{Partition: 1, Value: []byte("b")}); err != nil {
		return err
	}
	pid, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		return err
	}

	listed, err := e.adm.ListTransactions(ctx, nil, []string{"Ongoing"})
	if err != nil {
		return fmt.Errorf("ListTransactions (Ongoing): %w", err)
	}
	if l, ok := listed[txnID]; !ok || l.ProducerID != pid || l.State != "Ongoing" {
		return fmt.Errorf("ListTransactions (Ongoing) lists %s as %+v (present %v); want producer %d, Ongoing", txnID, l, ok, pid)
	}
	listed, err = e.adm.ListTransactions(ctx, []int64{pid}, nil)
	if err != nil {
		return fmt.Errorf("ListTransactions (producer id): %w", err)
	}
	if names := listed.TransactionalIDs(); !slices.Equal(names, []string{txnID}) {
		return fmt.Errorf("ListTransactions filtered by producer id %d lists %v, want only %s", pid, names, txnID)
	}
	listed, err = e.adm.ListTransactions(ctx, nil, []string{"CompleteAbort"})
	if err != nil {
		return fmt.Errorf("ListTransactions (CompleteAbort): %w", err)
	}
	if _, ok := listed[txnID]; ok {
		return fmt.Errorf("ListTransactions (CompleteAbort) lists the open transaction %s", txnID)
	}
	described, err := e.adm.DescribeTransactions(ctx, txnID)
	if err != nil {
		return fmt.Errorf("DescribeTransactions: %w", err)
	}
	d := described[txnID]
	var parts []int32
	for p := range d.Topics[topic] {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	if d.Err != nil || d.State != "Ongoing" || d.ProducerID != pid || d.ProducerEpoch != epoch || d.TimeoutMillis != 45_000 ||
		!slices.Equal(parts, []int32{0, 1}) || len(d.Topics) != 1 || d.StartTimestamp <= 0 {
		return fmt.Errorf("DescribeTransactions of the open transaction: %+v; want Ongoing, producer %d epoch %d, timeout 45000, partitions 0 and 1 of %s, a start time",
			d, pid, epoch, topic)
	}

	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	described, err = e.adm.DescribeTransactions(ctx, txnID, e.name("no-such-txn"))
	if err != nil {
		return fmt.Errorf("DescribeTransactions: %w", err)
	}
	if d := described[txnID]; d.Err != nil || d.State != "CompleteCommit" || len(d.Topics) != 0 {
		return fmt.Errorf("DescribeTransactions after the commit: %+v; want CompleteCommit with no partitions", d)
	}
	if d := described[e.name("no-such-txn")]; !errIs(d.Err, kerr.TransactionalIDNotFound) {
		return fmt.Errorf("DescribeTransactions of an unknown transactional id: %v, want TRANSACTIONAL_ID_NOT_FOUND", errName(d.Err))
	}
	listed, err = e.adm.ListTransactions(ctx, nil, []string{"Ongoing"})
	if err != nil {
		return fmt.Errorf("ListTransactions (Ongoing): %w", err)
	}
	if _, ok := listed[txnID]; ok {
		return fmt.Errorf("ListTransactions (Ongoing) still lists %s after its commit", txnID)
	}
	return nil
}
