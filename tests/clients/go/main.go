// Command franzgo checks a running Sluice broker with franz-go (its kgo
// client and kadm admin client), an independent Kafka client written in Go:
//
//	franzgo [-suite S] [-only CHECK,...] [-timeout D] [-admin URL] [-registry URL] [-state FILE] [-secure FILE] HOST:PORT
//
// The suites: "main" (the default) against a plain broker, whose admin HTTP
// address -admin names and schema registry -registry; "before-kill" and "after-kill", run before and after
// the broker is killed with SIGKILL and started again on its data, sharing
// what was acknowledged through the -state file; "secure" against a broker
// with SASL, TLS and ACLs, described by the -secure file (HOST:PORT is then
// its SASL_PLAINTEXT listener, where the PLAIN admin logs in).
//
// It runs the checks in order and prints "ok <check>" for each that passes.
// The first failure prints "FAIL <check>: <reason>" and exits 1; a check that
// runs past its time limit fails the same way, and the whole run is bounded by
// -timeout (exit 2), so it never hangs. Topic and group names carry a per-run
// suffix, so the program can be run again against the same broker.
//
// FRANZGO_LOG=debug|info|warn|error sets franz-go's own logging (on stderr;
// warn by default).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// logOut takes notes that are not failures.
var logOut = os.Stderr

// env is what every check gets: the broker's address, an admin client, and a
// suffix that keeps this run's names apart from other runs'.
type env struct {
	bootstrap   string
	run         string
	adm         *kadm.Client
	admCl       *kgo.Client
	logLevel    kgo.LogLevel
	adminURL    string // the broker's admin HTTP address (main suite)
	registryURL string // the broker's schema registry address (main suite)
	statePath   string // what before-kill leaves for after-kill
	secure      *secureConfig
	auth        []kgo.Opt // how the admin client logs in (secure suite)
}

// name is a topic or group name unique to this run.
func (e *env) name(base string) string { return "franzgo-" + base + "-" + e.run }

// opts are the options every client of the checks starts from, plus extra.
func (e *env) opts(who string, extra ...kgo.Opt) []kgo.Opt {
	base := []kgo.Opt{
		kgo.SeedBrokers(e.bootstrap),
		kgo.ClientID("franzgo-" + who),
		kgo.RetryTimeout(60 * time.Second),
		kgo.RequestTimeoutOverhead(20 * time.Second),
		kgo.WithLogger(kgo.BasicLogger(os.Stderr, e.logLevel, func() string {
			return time.Now().Format("15:04:05.000") + " [" + who + "] "
		})),
	}
	return append(base, extra...)
}

// check is one named check and how long it may take.
type check struct {
	name    string
	timeout time.Duration
	run     func(ctx context.Context, e *env) error
}

func checks(suite string) []check {
	switch suite {
	case "before-kill":
		return []check{{"restart/produce-and-commit-before-kill", 3 * time.Minute, checkBeforeKill}}
	case "after-kill":
		return []check{
			{"restart/acked-records-survive-kill-9", 2 * time.Minute, checkAckedSurvive},
			{"restart/committed-offsets-survive-kill-9", 2 * time.Minute, checkCommittedSurvive},
		}
	case "secure":
		return secureChecks()
	case "main":
	default:
		return nil
	}
	var list []check
	for _, codec := range codecs {
		list = append(list, check{"roundtrip/" + codec.name, 2 * time.Minute, func(ctx context.Context, e *env) error {
			return checkRoundTrip(ctx, e, codec)
		}})
	}
	list = append(list,
		check{"group/cooperative-sticky", 5 * time.Minute, checkCooperativeGroup},
		check{"group/eager-range", 5 * time.Minute, checkEagerGroup},
		check{"group/static-membership", 3 * time.Minute, checkStaticMembership},
		check{"group/consumer-protocol", 5 * time.Minute, checkConsumerProtocol},
		check{"group/online-migration", 5 * time.Minute, checkGroupMigration},
		check{"txn/group-transact-session", 5 * time.Minute, checkTransactSession},
		check{"txn/v2", 3 * time.Minute, checkTransactionsV2},
		check{"kadm/list-describe-transactions", 2 * time.Minute, checkListDescribeTransactions},
		check{"telemetry/push", 2 * time.Minute, checkTelemetry},
	)
	list = append(list, (&adminState{}).checks()...)
	list = append(list, registryChecks()...)
	return append(list,
		check{"kadm/describe-quorum", time.Minute, checkDescribeQuorum},
		check{"kadm/describe-update-features", 2 * time.Minute, checkFeatures},
	)
}

func main() {
	only := flag.String("only", "", "comma-separated check names (or name prefixes) to run; all by default")
	total := flag.Duration("timeout", 20*time.Minute, "limit on the whole run")
	list := flag.Bool("list", false, "print the check names and exit")
	suite := flag.String("suite", "main", "which checks: main, before-kill, after-kill or secure")
	adminURL := flag.String("admin", "", "the broker's admin HTTP address, http://HOST:PORT")
	registryURL := flag.String("registry", "", "the broker's schema registry address, http://HOST:PORT")
	statePath := flag.String("state", "", "the file before-kill writes and after-kill reads")
	securePath := flag.String("secure", "", "the JSON file describing the secured broker (secure suite)")
	flag.Parse()
	if *list {
		for _, c := range checks(*suite) {
			fmt.Println(c.name)
		}
		return
	}
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: franzgo [-only CHECK,...] [-timeout D] HOST:PORT")
		os.Exit(64)
	}

	watchdog := time.AfterFunc(*total, func() {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		fmt.Printf("FAIL run: not finished within %s\n", *total)
		fmt.Fprintf(os.Stderr, "goroutines at the time limit:\n%s\n", buf[:n])
		os.Exit(2)
	})
	defer watchdog.Stop()

	e := &env{
		bootstrap:   flag.Arg(0),
		run:         fmt.Sprintf("%x", time.Now().UnixNano()&0xffffffffff),
		logLevel:    logLevel(os.Getenv("FRANZGO_LOG")),
		adminURL:    *adminURL,
		registryURL: *registryURL,
		statePath:   *statePath,
	}
	if *suite == "secure" {
		sc, err := readSecureConfig(*securePath)
		if err != nil {
			fail("setup", err)
		}
		e.secure = sc
		e.auth = []kgo.Opt{kgo.SASL(plain.Auth{User: sc.AdminUser, Pass: sc.AdminPassword}.AsMechanism())}
	}
	admCl, err := kgo.NewClient(e.opts("admin", e.auth...)...)
	if err != nil {
		fail("setup", err)
	}
	defer admCl.Close()
	e.admCl = admCl
	e.adm = kadm.NewClient(admCl)
	e.adm.SetTimeoutMillis(30_000)

	var selected []check
	for _, c := range checks(*suite) {
		if wanted(*only, c.name) {
			selected = append(selected, c)
		}
	}
	if len(selected) == 0 {
		fail("setup", fmt.Errorf("no check of suite %q matches -only %q", *suite, *only))
	}
	for _, c := range selected {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		err := c.run(ctx, e)
		if err == nil && ctx.Err() != nil {
			err = fmt.Errorf("ran past its time limit of %s", c.timeout)
		}
		cancel()
		if err != nil {
			fail(c.name, err)
		}
		fmt.Printf("ok %s (%.1fs)\n", c.name, time.Since(start).Seconds())
	}
}

func wanted(only, name string) bool {
	if only == "" {
		return true
	}
	for _, w := range strings.Split(only, ",") {
		if w != "" && strings.HasPrefix(name, w) {
			return true
		}
	}
	return false
}

func fail(name string, err error) {
	fmt.Printf("FAIL %s: %v\n", name, err)
	os.Exit(1)
}

func logLevel(s string) kgo.LogLevel {
	switch strings.ToLower(s) {
	case "debug":
		return kgo.LogLevelDebug
	case "info":
		return kgo.LogLevelInfo
	case "error":
		return kgo.LogLevelError
	case "none":
		return kgo.LogLevelNone
	}
	return kgo.LogLevelWarn
}

// waitFor polls cond every 100ms until it holds, or fails with what it last
// reported once ctx is done.
func waitFor(ctx context.Context, what string, cond func() (bool, string)) error {
	var last string
	for {
		ok, state := cond()
		if ok {
			return nil
		}
		last = state
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out waiting for %s; last seen: %s", what, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// createTopic creates topic with partitions (replication factor 1) and configs,
// and checks the broker's answer.
func createTopic(ctx context.Context, e *env, topic string, partitions int32, configs map[string]*string) error {
	resp, err := e.adm.CreateTopic(ctx, partitions, 1, configs, topic)
	if err != nil {
		return fmt.Errorf("CreateTopics %s: %w (%s)", topic, err, resp.ErrMessage)
	}
	if resp.NumPartitions != partitions {
		return fmt.Errorf("CreateTopics %s answered %d partitions, want %d", topic, resp.NumPartitions, partitions)
	}
	return nil
}

// produceSync produces records and fails on the first error.
func produceSync(ctx context.Context, cl *kgo.Client, records ...*kgo.Record) error {
	if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	return nil
}

// consumeAll reads topic from the start with a plain (groupless) consumer
// until want records arrived, and returns them. More than want is an error
// noticed by the caller (it reads for linger longer once want arrived).
func consumeAll(ctx context.Context, e *env, who, topic string, want int, linger time.Duration, extra ...kgo.Opt) ([]*kgo.Record, error) {
	opts := append([]kgo.Opt{
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500 * time.Millisecond),
	}, extra...)
	cl, err := kgo.NewClient(e.opts(who, opts...)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var got []*kgo.Record
	var lingerUntil time.Time
	for {
		if len(got) >= want {
			if lingerUntil.IsZero() {
				lingerUntil = time.Now().Add(linger)
			}
			if !time.Now().Before(lingerUntil) {
				return got, nil
			}
		}
		pollCtx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pollCtx)
		cancel()
		if err := fetchErr(fs); err != nil {
			return got, fmt.Errorf("fetch %s: %w", topic, err)
		}
		got = append(got, fs.Records()...)
		if ctx.Err() != nil {
			return got, fmt.Errorf("consumed %d of %d records of %s before the time limit", len(got), want, topic)
		}
	}
}

// fetchErr is the first real error in fs (a poll's own deadline is none).
func fetchErr(fs kgo.Fetches) error {
	var first error
	fs.EachError(func(t string, p int32, err error) {
		if first == nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			first = fmt.Errorf("%s[%d]: %w", t, p, err)
		}
	})
	return first
}

// errIs reports whether err is the Kafka error want (nil matches nil).
func errIs(err, want error) bool {
	if want == nil {
		return err == nil
	}
	return errors.Is(err, want)
}

func errName(err error) string {
	if err == nil {
		return "no error"
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message
	}
	return err.Error()
}
