//! `sluice-perf`: load against any Kafka-compatible broker (Sluice or Apache
//! Kafka) through librdkafka, so the same tool drives both.
//!
//! Modes: `produce` (throughput and acknowledgement latency), `consume`
//! (catch-up reads from the beginning), `e2e` (produce and consume at once;
//! latency from the producer's intended send time to the consumer's receipt),
//! `roundtrip` (one record at a time to partition 0: sent, then received by a
//! consumer long-polling it, before the next is sent; the latency of each
//! round trip, what a trading user measures first).
//! With `--rate`, records are sent on a fixed schedule and latency is measured
//! from each record's intended send time, so a stalled broker cannot hide its
//! stall (coordinated omission corrected). Results: a table, JSON with
//! `--json`, and with `--png` a chart of per-second latency percentiles and
//! throughput.

mod chart;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use hdrhistogram::Histogram;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

#[derive(Debug, Clone, Parser)]
#[command(name = "sluice-perf", about = "Load generator for Kafka-compatible brokers")]
struct Args {
    /// Workload file (`key = value` lines with these flags' long names); flags override it.
    #[arg(long)]
    workload: Option<String>,
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// produce, consume, e2e or roundtrip.
    #[arg(long, default_value = "produce")]
    mode: String,
    #[arg(long, default_value = "perf")]
    topic: String,
    #[arg(long, default_value_t = 16)]
    partitions: i32,
    /// Replicas of each partition of the topic this tool creates.
    #[arg(long, default_value_t = 1)]
    replication_factor: i32,
    #[arg(long, default_value_t = 1024)]
    record_size: usize,
    /// Records per second in all; 0 sends as fast as the client can.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Seconds measured, after the warm-up.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Seconds of load before measuring starts.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    #[arg(long, default_value_t = 1)]
    producers: usize,
    /// all, 1 or 0.
    #[arg(long, default_value = "all")]
    acks: String,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    compression: String,
    #[arg(long, default_value_t = 1)]
    linger_ms: u64,
    #[arg(long, default_value_t = 131_072)]
    batch_size: usize,
    /// Distinct keys; 0 sends records without keys.
    #[arg(long, default_value_t = 0)]
    keys: u64,
    /// Write the results as JSON to this file.
    #[arg(long)]
    json: Option<String>,
    /// Topic configs for the topic this tool creates, as name=value (repeatable).
    #[arg(long = "topic-config")]
    topic_configs: Vec<String>,
    /// Label printed with the results (e.g. the broker's name).
    #[arg(long, default_value = "")]
    label: String,
    /// Draw per-second latency percentiles (p50, p99, p99.9) and throughput into this PNG file.
    #[arg(long)]
    png: Option<String>,
    /// librdkafka settings for every client, as name=value (repeatable), e.g.
    /// `-X security.protocol=SSL -X ssl.ca.location=ca.pem`.
    #[arg(short = 'X', long = "client-config")]
    client_configs: Vec<String>,
    /// The broker's process id (same machine): its CPU time over the measured
    /// window is reported, with MB moved per broker CPU-second.
    #[arg(long)]
    broker_pid: Option<u32>,
}

/// A librdkafka config with the bootstrap address and every `-X` setting.
fn base_config(args: &Args) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &args.bootstrap);
    for setting in &args.client_configs {
        let (k, v) = setting.split_once('=').expect("-X name=value");
        c.set(k, v);
    }
    c
}

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// Largest latency recorded (µs); longer ones are clamped to it.
const LATENCY_US_MAX: u64 = 60_000_000;
/// Significant digits of the whole run's histogram and of each second's.
const HISTOGRAM_DIGITS: u8 = 3;
const HISTOGRAM_PER_SECOND_DIGITS: u8 = 2;

/// One second of measurements.
struct Second {
    records: u64,
    latency: Histogram<u64>,
}

/// Shared measurements: a latency histogram (µs) and, per second, counts and latencies.
struct Stats {
    latency: Mutex<Histogram<u64>>,
    timeline: Mutex<BTreeMap<u64, Second>>,
    records: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    /// Errors by kind (the client's message), so that a count is never unexplained.
    error_kinds: Mutex<BTreeMap<String, u64>>,
    measuring: AtomicBool,
    started: Instant,
    /// Nanoseconds from `started` to the start of measuring: per-second figures count from there.
    measure_offset_ns: AtomicU64,
}

impl Stats {
    fn new() -> Arc<Stats> {
        Arc::new(Stats {
            latency: Mutex::new(
                Histogram::new_with_bounds(1, LATENCY_US_MAX, HISTOGRAM_DIGITS).expect("histogram bounds"),
            ),
            timeline: Mutex::new(BTreeMap::new()),
            records: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            error_kinds: Mutex::new(BTreeMap::new()),
            measuring: AtomicBool::new(false),
            started: Instant::now(),
            measure_offset_ns: AtomicU64::new(0),
        })
    }

    fn record(&self, latency_us: Option<u64>, bytes: usize) {
        if !self.measuring.load(Ordering::Relaxed) {
            return;
        }
        self.records.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        let latency_us = latency_us.map(|l| l.clamp(1, LATENCY_US_MAX));
        if let Some(l) = latency_us {
            let _ = self.latency.lock().unwrap().record(l);
        }
        let since_measure_ns =
            (self.started.elapsed().as_nanos() as u64).saturating_sub(self.measure_offset_ns.load(Ordering::Relaxed));
        let second = since_measure_ns / 1_000_000_000;
        let mut timeline = self.timeline.lock().unwrap();
        let entry = timeline.entry(second).or_insert_with(|| Second {
            records: 0,
            latency: Histogram::new_with_bounds(1, LATENCY_US_MAX, HISTOGRAM_PER_SECOND_DIGITS)
                .expect("histogram bounds"),
        });
        entry.records += 1;
        if let Some(l) = latency_us {
            let _ = entry.latency.record(l);
        }
    }

    fn error(&self, kind: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        *self.error_kinds.lock().unwrap().entry(kind).or_insert(0) += 1;
    }

    fn start_measuring(&self) {
        self.measure_offset_ns.store(self.started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.measuring.store(true, Ordering::Relaxed);
    }

    /// The whole seconds measured (`seconds_max` of them), with their latency percentiles.
    fn seconds(&self, seconds_max: u64) -> Vec<chart::SecondPoint> {
        let timeline = self.timeline.lock().unwrap();
        timeline
            .range(..seconds_max)
            .map(|(s, second)| {
                let h = &second.latency;
                let q = |p: f64| h.value_at_quantile(p) as f64 / 1000.0;
                chart::SecondPoint {
                    second: *s,
                    records: second.records,
                    latency_ms: (!h.is_empty()).then(|| [q(0.50), q(0.99), q(0.999)]),
                }
            })
            .collect()
    }
}

struct Acks(Arc<Stats>);
impl ClientContext for Acks {}
impl ProducerContext for Acks {
    type DeliveryOpaque = Box<(u64, usize)>;
    fn delivery(&self, result: &DeliveryResult<'_>, opaque: Self::DeliveryOpaque) {
        let (intended_us, bytes) = *opaque;
        match result {
            Ok(_) => self.0.record(Some(now_us().saturating_sub(intended_us)), bytes),
            Err((e, _)) => self.0.error(e.to_string()),
        }
    }
}

fn producer_config(args: &Args) -> ClientConfig {
    let mut c = base_config(args);
    c.set("acks", &args.acks)
        .set("compression.codec", &args.compression)
        .set("linger.ms", args.linger_ms.to_string())
        .set("batch.size", args.batch_size.to_string())
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("enable.idempotence", "false");
    c
}

/// One producer thread: sends `rate` records/s (0: unthrottled) until `stop`.
fn run_producer(args: Args, rate: u64, stats: Arc<Stats>, stop: Arc<AtomicBool>, id: usize) {
    let producer: BaseProducer<Acks> =
        producer_config(&args).create_with_context(Acks(stats.clone())).expect("create producer");
    let mut payload = vec![b'x'; args.record_size.max(8)];
    let start = Instant::now();
    let mut sent: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        // `checked_div` is `None` for rate 0: unthrottled.
        let intended = if let Some(due_ns) = (sent * 1_000_000_000).checked_div(rate) {
            let due = start + Duration::from_nanos(due_ns);
            let now = Instant::now();
            if due > now {
                producer.poll(Duration::ZERO);
                std::thread::sleep((due - now).min(Duration::from_millis(1)));
                continue;
            }
            // Latency counts from when the record was due, not when it went out.
            now_us().saturating_sub((now - due).as_micros() as u64)
        } else {
            now_us()
        };
        payload[..8].copy_from_slice(&intended.to_be_bytes());
        let key = (args.keys > 0).then(|| format!("key-{}", (sent + id as u64 * 7919) % args.keys));
        let mut record: BaseRecord<'_, String, [u8], Box<(u64, usize)>> =
            BaseRecord::with_opaque_to(&args.topic, Box::new((intended, payload.len()))).payload(&payload[..]);
        if let Some(k) = &key {
            record = record.key(k);
        }
        match producer.send(record) {
            Ok(()) => sent += 1,
            Err((_, _)) => {
                producer.poll(Duration::from_millis(1));
            }
        }
        if sent.is_multiple_of(256) {
            producer.poll(Duration::ZERO);
        }
    }
    let _ = producer.flush(Duration::from_secs(30));
}

/// A consumer of every partition from the beginning; with `e2e`, latency is
/// the receipt time minus the send time carried in each record.
fn run_consumer(args: Args, stats: Arc<Stats>, stop: Arc<AtomicBool>, e2e: bool) {
    let consumer: BaseConsumer = base_config(&args)
        .set("group.id", "sluice-perf")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("create consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..args.partitions {
        tpl.add_partition_offset(&args.topic, p, if e2e { Offset::End } else { Offset::Beginning }).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let payload = m.payload().unwrap_or_default();
                let latency = (e2e && payload.len() >= 8).then(|| {
                    let sent = u64::from_be_bytes(payload[..8].try_into().unwrap());
                    now_us().saturating_sub(sent)
                });
                stats.record(latency, payload.len());
            }
            Some(Err(e)) => stats.error(e.to_string()),
            None => {}
        }
    }
}

/// One record at a time: sent to partition 0, then polled by a consumer of
/// that partition until it arrives; the time between is one round trip.
fn run_roundtrip(args: Args, stats: Arc<Stats>, stop: Arc<AtomicBool>) {
    let producer: BaseProducer = producer_config(&args)
        .set("linger.ms", "0")
        .set("socket.nagle.disable", "true")
        .create()
        .expect("create producer");
    let consumer: BaseConsumer = base_config(&args)
        .set("group.id", "sluice-perf-roundtrip")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "500")
        .set("fetch.min.bytes", "1")
        .set("socket.nagle.disable", "true")
        .create()
        .expect("create consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&args.topic, 0, Offset::End).unwrap();
    consumer.assign(&tpl).unwrap();
    // Let the consumer find its position before the first record.
    let settle = Instant::now() + Duration::from_secs(1);
    while Instant::now() < settle {
        let _ = consumer.poll(Duration::from_millis(50));
    }
    let mut payload = vec![b'x'; args.record_size.max(8)];
    let mut sequence: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        sequence += 1;
        payload[..8].copy_from_slice(&sequence.to_be_bytes());
        let sent = Instant::now();
        let record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&args.topic).partition(0).payload(&payload[..]);
        if let Err((e, _)) = producer.send(record) {
            stats.error(e.to_string());
            producer.poll(Duration::from_millis(10));
            continue;
        }
        let deadline = sent + Duration::from_secs(10);
        loop {
            producer.poll(Duration::ZERO);
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    let got = m.payload().and_then(|p| p.get(..8)).map(|b| u64::from_be_bytes(b.try_into().unwrap()));
                    if got == Some(sequence) {
                        stats.record(Some(sent.elapsed().as_micros() as u64), payload.len());
                        break;
                    }
                }
                Some(Err(e)) => stats.error(e.to_string()),
                None => {}
            }
            if stop.load(Ordering::Relaxed) {
                break;
            }
            if Instant::now() > deadline {
                stats.error("round trip not completed within 10 s".to_string());
                break;
            }
        }
    }
    let _ = producer.flush(Duration::from_secs(10));
}

fn ensure_topic(args: &Args) {
    let admin: AdminClient<DefaultClientContext> = base_config(args).create().expect("admin client");
    let rt = std::thread::spawn({
        let args = args.clone();
        move || {
            let mut topic =
                NewTopic::new(&args.topic, args.partitions, TopicReplication::Fixed(args.replication_factor));
            for config in &args.topic_configs {
                let (k, v) = config.split_once('=').expect("--topic-config name=value");
                topic = topic.set(k, v);
            }
            futures_block_on(admin.create_topics(&[topic], &AdminOptions::new()))
        }
    });
    // An existing topic is fine: the load goes to it.
    let _ = rt.join();
}

/// Runs a future to completion on this thread (the admin client needs no runtime of its own).
fn futures_block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct ThreadWaker(std::thread::Thread);
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park_timeout(Duration::from_millis(10));
    }
}

fn apply_workload(args: &mut Args) {
    let Some(path) = args.workload.clone() else { return };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let cli: Vec<String> = std::env::args().skip(1).collect();
    let mut argv = vec!["sluice-perf".to_string()];
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (k, v) = line.split_once('=').unwrap_or_else(|| panic!("{path}: expected key = value, got {line:?}"));
        let flag = format!("--{}", k.trim().replace('_', "-"));
        if cli.contains(&flag) {
            continue;
        }
        argv.push(flag);
        argv.push(v.trim().to_string());
    }
    // Flags given on the command line win over the file.
    argv.extend(cli);
    *args = Args::parse_from(argv);
    args.workload = None;
}

fn main() {
    let mut args = Args::parse();
    apply_workload(&mut args);
    let stats = Stats::new();
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    if args.mode != "consume" {
        ensure_topic(&args);
    }
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    match args.mode.as_str() {
        "produce" | "e2e" => {
            let e2e = args.mode == "e2e";
            if e2e {
                let (a, s, st) = (args.clone(), stats.clone(), stop.clone());
                threads.push(std::thread::spawn(move || run_consumer(a, s, st, true)));
                std::thread::sleep(Duration::from_secs(1));
            }
            // Producers do not record in e2e mode: the consumer measures.
            let producer_stats = if e2e { Stats::new() } else { stats.clone() };
            if e2e {
                producer_stats.measuring.store(false, Ordering::Relaxed);
            }
            for id in 0..args.producers.max(1) {
                let (a, s, st) = (args.clone(), producer_stats.clone(), stop.clone());
                let rate = args.rate / args.producers.max(1) as u64;
                let core = cores.get(id % cores.len().max(1)).copied();
                threads.push(std::thread::spawn(move || {
                    if let Some(core) = core {
                        core_affinity::set_for_current(core);
                    }
                    run_producer(a, rate, s, st, id)
                }));
            }
        }
        "consume" => {
            let (a, s, st) = (args.clone(), stats.clone(), stop.clone());
            threads.push(std::thread::spawn(move || run_consumer(a, s, st, false)));
        }
        "roundtrip" => {
            let (a, s, st) = (args.clone(), stats.clone(), stop.clone());
            threads.push(std::thread::spawn(move || run_roundtrip(a, s, st)));
        }
        other => panic!("unknown mode {other}: produce, consume, e2e or roundtrip"),
    }
    std::thread::sleep(Duration::from_secs(args.warmup));
    let cpu_start = args.broker_pid.map(cpu_seconds);
    let measure_start = Instant::now();
    stats.start_measuring();
    std::thread::sleep(Duration::from_secs(args.duration));
    stats.measuring.store(false, Ordering::Relaxed);
    let elapsed = measure_start.elapsed().as_secs_f64();
    let broker_cpu_s = args.broker_pid.map(cpu_seconds).zip(cpu_start).map(|(end, start)| end - start);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    report(&args, &stats, elapsed, broker_cpu_s);
}

/// User plus system CPU seconds used so far by process `pid` (`/proc/PID/stat`).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_else(|e| panic!("broker {pid}: {e}"));
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime: fields 14 and 15 of the line, 12 and 13 after the name (0-based 11 and 12).
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / per_second
}

fn report(args: &Args, stats: &Stats, elapsed: f64, broker_cpu_s: Option<f64>) {
    let h = stats.latency.lock().unwrap();
    let records = stats.records.load(Ordering::Relaxed);
    let bytes = stats.bytes.load(Ordering::Relaxed);
    let rps = records as f64 / elapsed;
    let mbps = bytes as f64 / elapsed / 1_000_000.0;
    let q = |p: f64| if h.is_empty() { 0.0 } else { h.value_at_quantile(p) as f64 / 1000.0 };
    let latencies = [
        ("p50", q(0.50)),
        ("p90", q(0.90)),
        ("p99", q(0.99)),
        ("p99.9", q(0.999)),
        ("p99.99", q(0.9999)),
        ("max", if h.is_empty() { 0.0 } else { h.max() as f64 / 1000.0 }),
    ];
    println!("{} mode={} records={} errors={}", args.label, args.mode, records, stats.errors.load(Ordering::Relaxed));
    for (kind, count) in stats.error_kinds.lock().unwrap().iter() {
        println!("  errors:     {count} x {kind}");
    }
    println!("  throughput: {rps:.0} records/s, {mbps:.1} MB/s");
    // MB the broker moved per CPU-second it used in the same window.
    let efficiency = broker_cpu_s.map(|cpu| (cpu, if cpu > 0.0 { bytes as f64 / 1_000_000.0 / cpu } else { 0.0 }));
    if let Some((cpu, mb_per_cpu_s)) = efficiency {
        println!("  broker CPU: {cpu:.2} s, {mb_per_cpu_s:.1} MB per CPU-second");
    }
    let cpu_json = efficiency
        .map(|(cpu, mb)| format!("\"broker_cpu_s\":{cpu:.3},\"mb_per_broker_cpu_s\":{mb:.3},"))
        .unwrap_or_default();
    if !h.is_empty() {
        let line: Vec<String> = latencies.iter().map(|(n, v)| format!("{n} {v:.2} ms")).collect();
        println!("  latency:    {}", line.join(", "));
    }
    // Records counted after the last whole second (while stopping) are left out of the timeline.
    let seconds = stats.seconds(args.duration);
    if let Some(path) = &args.json {
        let timeline: Vec<String> = seconds.iter().map(|p| format!("[{},{}]", p.second, p.records)).collect();
        let timeline_ms: Vec<String> = seconds
            .iter()
            .filter_map(|p| p.latency_ms.map(|[p50, p99, p999]| format!("[{},{p50:.3},{p99:.3},{p999:.3}]", p.second)))
            .collect();
        let lat: Vec<String> = latencies.iter().map(|(n, v)| format!("\"{n}_ms\":{v:.3}")).collect();
        let kinds: Vec<String> =
            stats.error_kinds.lock().unwrap().iter().map(|(kind, count)| format!("{kind:?}:{count}")).collect();
        let json = format!(
            "{{\"label\":\"{}\",\"mode\":\"{}\",\"records\":{records},\"records_per_sec\":{rps:.1},\"mb_per_sec\":{mbps:.3},{cpu_json}\"errors\":{},\"error_kinds\":{{{}}},{},\"timeline\":[{}],\"timeline_latency_ms\":[{}]}}\n",
            args.label,
            args.mode,
            stats.errors.load(Ordering::Relaxed),
            kinds.join(","),
            lat.join(","),
            timeline.join(","),
            timeline_ms.join(",")
        );
        std::fs::write(path, json).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    if let Some(path) = &args.png {
        if seconds.is_empty() {
            eprintln!("--png: nothing was measured, no chart written to {path}");
            return;
        }
        let title = format!(
            "{} {} {} ({} partitions, {} B records)",
            args.label, args.mode, args.topic, args.partitions, args.record_size
        );
        match chart::draw(path, title.trim(), &seconds) {
            Ok(()) => println!("  chart:      {path}"),
            Err(e) => eprintln!("--png {path}: {e}"),
        }
    }
}
