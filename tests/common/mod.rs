//! Starts the real `sluice` binary on an ephemeral port with a fresh data
//! directory, and talks to it over TCP: with the `rdkafka` crate, and with raw
//! Kafka frames for protocol-level checks.
#![allow(dead_code)]

pub mod clients;
pub mod http;
pub mod kafka;
pub mod net;
pub mod secure;
pub mod tls;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, ProduceRequest, ProduceResponse, RequestHeader, ResponseHeader, TopicName,
    TransactionalId,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// A running broker; killed when dropped.
pub struct Broker {
    pub port: u16,
    pub data_dir: PathBuf,
    child: Option<Child>,
    log_path: PathBuf,
}

pub fn fresh_data_dir(name: &str) -> PathBuf {
    let n = NEXT_DIR.fetch_add(1, Ordering::SeqCst);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The broker binary under test: this build's, or `SLUICE_BIN` (the
/// sanitizer script points it at an instrumented build).
pub fn sluice_bin() -> PathBuf {
    std::env::var_os("SLUICE_BIN").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_sluice")))
}

/// The port a broker listens on, from its log line `listening ... addr=HOST:PORT`
/// (the first listener's: `listener=PLAINTEXT` unless the test named others).
fn listening_port(log: &str) -> Option<u16> {
    listener_port_in(log, None)
}

/// The port of the listener called `name` (any listener for `None`), from the log.
fn listener_port_in(log: &str, name: Option<&str>) -> Option<u16> {
    log.lines()
        .map(strip_ansi)
        .filter(|line| line.contains("listening"))
        .filter(|line| name.is_none_or(|n| line.contains(&format!("listener={n} "))))
        .find_map(|line| {
            let addr = line.split("addr=").nth(1)?.split_whitespace().next()?;
            addr.rsplit(':').next()?.parse().ok()
        })
}

/// The admin HTTP port, from the log line naming `admin_addr=HOST:PORT`.
fn admin_port(log: &str) -> Option<u16> {
    log.lines().map(strip_ansi).find_map(|line| {
        let addr = line.split("admin_addr=").nth(1)?.split_whitespace().next()?;
        addr.rsplit(':').next()?.parse().ok()
    })
}

/// The schema registry's port, from the log line naming `schema_registry_addr=HOST:PORT`.
fn schema_registry_port(log: &str) -> Option<u16> {
    log.lines().map(strip_ansi).find_map(|line| {
        let addr = line.split("schema_registry_addr=").nth(1)?.split_whitespace().next()?;
        addr.rsplit(':').next()?.parse().ok()
    })
}

/// `text` without ANSI colour codes (the broker colours its log on a terminal only).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // An SGR sequence: ESC [ ... m
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Broker {
    /// Starts a broker with `shards` shards and extra flags on a new data dir.
    pub fn start(name: &str, shards: usize, extra: &[&str]) -> Broker {
        Broker::start_in(fresh_data_dir(name), shards, extra)
    }

    /// Starts a broker on an existing data dir. It binds a port of its
    /// choosing (port 0) and the test reads it from the log, so no port is
    /// picked here and released for another process to take first.
    pub fn start_in(data_dir: PathBuf, shards: usize, extra: &[&str]) -> Broker {
        Broker::start_listening(data_dir, shards, "127.0.0.1:0", extra)
    }

    /// Starts a broker with the given `--listen` value (Kafka's `listeners`);
    /// [`Broker::bootstrap`] is then the first listener's address.
    pub fn start_listening(data_dir: PathBuf, shards: usize, listeners: &str, extra: &[&str]) -> Broker {
        let mut command = Command::new(sluice_bin());
        command
            .arg("serve")
            .args(["--listen", listeners, "--admin-listen", "127.0.0.1:0", "--schema-registry-listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--shards", &shards.to_string()])
            .args(extra);
        let n = NEXT_DIR.fetch_add(1, Ordering::SeqCst);
        let log_path = data_dir.with_extension(format!("{n}.log"));
        Broker::launch(command, None, data_dir, log_path, Duration::from_secs(20))
    }

    /// Runs `command` (which starts a broker keeping its data in `data_dir`)
    /// with its output in `log_path`, and waits until its log says it listens
    /// (on `port`, or for `None` on any port) and it accepts connections there.
    /// A known port counts only once this broker's own log names it, so a
    /// listener of another process on that port is never taken for this broker.
    pub fn launch(
        mut command: Command,
        port: Option<u16>,
        data_dir: PathBuf,
        log_path: PathBuf,
        ready_within: Duration,
    ) -> Broker {
        let log = std::fs::File::create(&log_path).unwrap();
        let child = command
            .env("SLUICE_LOG", std::env::var("SLUICE_TEST_LOG").unwrap_or_else(|_| "info".into()))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start sluice");
        let mut broker = Broker { port: port.unwrap_or(0), data_dir, child: Some(child), log_path };
        broker.wait_ready(ready_within);
        broker
    }

    fn wait_ready(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        let expected = self.port;
        while Instant::now() < deadline {
            let listening = listening_port(&self.log()).filter(|&port| expected == 0 || port == expected);
            if let Some(port) = listening {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() && self.admin_ready() {
                    self.port = port;
                    return;
                }
            }
            if !self.alive() {
                panic!("sluice exited before listening; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("sluice did not start; log:\n{}", self.log());
    }

    /// Whether the admin listener, where there is one, says the broker is
    /// ready: every shard takes connections on every listener.
    fn admin_ready(&self) -> bool {
        let Some(port) = admin_port(&self.log()) else { return true };
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return false };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let request = b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let mut answer = Vec::new();
        stream.write_all(request).is_ok()
            && stream.read_to_end(&mut answer).is_ok()
            && answer.starts_with(b"HTTP/1.1 200")
    }

    /// The port of the listener called `name` (e.g. `SASL_SSL`).
    pub fn listener_port(&self, name: &str) -> u16 {
        listener_port_in(&self.log(), Some(name)).unwrap_or_else(|| panic!("no listener {name} in:\n{}", self.log()))
    }

    /// `127.0.0.1:PORT` of the listener called `name`.
    pub fn listener(&self, name: &str) -> String {
        format!("127.0.0.1:{}", self.listener_port(name))
    }

    /// The broker's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT` of the broker's schema registry.
    pub fn schema_registry_url(&self) -> String {
        let port = schema_registry_port(&self.log()).expect("the broker's log names its schema registry address");
        format!("http://127.0.0.1:{port}")
    }

    /// `http://127.0.0.1:PORT` of the broker's admin listener.
    pub fn admin_url(&self) -> String {
        let port = admin_port(&self.log()).expect("the broker's log names its admin address");
        format!("http://127.0.0.1:{port}")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Why a client program run against this broker failed, bounded so that a
    /// test's failure message shows it whole: its exit status, its standard
    /// output, the end of its standard error without librdkafka's log lines
    /// (where a traceback or an exception is), and the end of the broker's
    /// log. Everything the program printed is kept in a file named here.
    pub fn client_failure(&self, what: &str, output: &std::process::Output) -> String {
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let n = NEXT_DIR.fetch_add(1, Ordering::SeqCst);
        let kept = self.log_path.with_extension(format!("{n}.client.txt"));
        let _ = std::fs::write(&kept, format!("stdout:\n{stdout}\nstderr:\n{stderr}"));
        let last = |text: &str, lines: usize| {
            let kept: Vec<&str> = text.lines().filter(|l| !l.starts_with('%')).collect();
            kept[kept.len().saturating_sub(lines)..].join("\n")
        };
        format!(
            "{what} failed ({}):\nstdout (end):\n{}\nstderr (end, librdkafka's log lines left out):\n{}\n\
             broker log (end; whole: {}):\n{}\neverything the client printed: {}",
            output.status,
            last(&stdout, 60),
            last(&stderr, 60),
            self.log_path.display(),
            last(&self.log(), 80),
            kept.display()
        )
    }

    /// How many segment (`.log`) files the partition directory `partition_dir`
    /// (such as `"topic-0"`) holds.
    pub fn log_segments(&self, partition_dir: &str) -> usize {
        std::fs::read_dir(self.data_dir.join(partition_dir))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "log"))
            .count()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// SIGTERM, then waits: a clean stop exits 0. Returns the data dir.
    pub fn stop(self) -> PathBuf {
        self.stop_with(libc::SIGTERM)
    }

    /// Sends `signal` (SIGTERM or SIGINT) and waits for a clean exit.
    pub fn stop_with(mut self, signal: i32) -> PathBuf {
        let mut child = self.child.take().expect("running");
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(child.id() as i32, signal) };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "sluice exited with {status}; log:\n{}", self.log());
                break;
            }
            assert!(Instant::now() < deadline, "sluice did not stop; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        self.data_dir.clone()
    }

    pub fn kill(mut self) -> PathBuf {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.data_dir.clone()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A raw Kafka connection for protocol-level tests.
pub struct Raw {
    pub stream: TcpStream,
    correlation: i32,
}

impl Raw {
    pub fn connect(broker: &Broker) -> Raw {
        Raw::connect_to(&broker.bootstrap())
    }

    /// A connection to `HOST:PORT` (another listener of a broker).
    pub fn connect_to(address: &str) -> Raw {
        let stream = TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Raw { stream, correlation: 0 }
    }

    /// Logs in with SASL/PLAIN (SaslHandshake v1, then SaslAuthenticate v2);
    /// returns SaslAuthenticate's error code and message.
    pub fn sasl_plain(&mut self, user: &str, password: &str) -> (i16, Option<String>) {
        use kafka_protocol::messages::{
            SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
        };
        let handshake: SaslHandshakeResponse = self.call(
            ApiKey::SaslHandshake,
            1,
            &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
        );
        assert_eq!(handshake.error_code, 0, "PLAIN handshake refused: {handshake:?}");
        let token = format!("\0{user}\0{password}");
        let answer: SaslAuthenticateResponse = self.call(
            ApiKey::SaslAuthenticate,
            2,
            &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token.into_bytes())),
        );
        (answer.error_code, answer.error_message.map(|m| m.to_string()))
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Sends a request frame and returns the correlation id used.
    pub fn send<T: Encodable>(&mut self, api: ApiKey, version: i16, body: &T) -> i32 {
        self.correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("raw-test")));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header.encode(&mut buf, api.request_header_version(version)).unwrap();
        body.encode(&mut buf, version).unwrap();
        let len = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        self.stream.write_all(&buf).unwrap();
        self.correlation
    }

    /// Reads one response frame; `None` if the broker closed the connection.
    pub fn read_frame(&mut self) -> Option<Bytes> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).ok()?;
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut body).ok()?;
        Some(Bytes::from(body))
    }

    /// Reads and decodes a response for `api` at `version`, checking the correlation id.
    pub fn receive<T: Decodable>(&mut self, api: ApiKey, version: i16, correlation: i32) -> T {
        let mut frame = self.read_frame().expect("broker closed the connection");
        let header = ResponseHeader::decode(&mut frame, api.response_header_version(version)).unwrap();
        assert_eq!(header.correlation_id, correlation);
        let body = T::decode(&mut frame, version).unwrap();
        assert_eq!(frame.remaining(), 0, "trailing bytes in {api:?} v{version} response");
        body
    }

    pub fn call<Req: Encodable, Resp: Decodable>(&mut self, api: ApiKey, version: i16, body: &Req) -> Resp {
        let c = self.send(api, version, body);
        self.receive(api, version, c)
    }

    /// Produce (v9, acks=all) of `records` to one partition: its (error code, base offset).
    pub fn produce(&mut self, topic: &str, partition: i32, records: impl Into<Bytes>) -> (i16, i64) {
        self.produce_with(&produce_request(topic, partition, -1, records))
    }

    /// Produce (v9, acks=all) of `records` to one partition in the transaction
    /// of `transactional_id`: its (error code, base offset).
    pub fn produce_transactional(
        &mut self,
        transactional_id: &str,
        topic: &str,
        partition: i32,
        records: impl Into<Bytes>,
    ) -> (i16, i64) {
        let transactional_id = TransactionalId(StrBytes::from_string(transactional_id.to_string()));
        self.produce_with(&produce_request(topic, partition, -1, records).with_transactional_id(Some(transactional_id)))
    }

    /// Sends `request` (Produce v9, which must want a response) and returns the
    /// first partition's (error code, base offset).
    pub fn produce_with(&mut self, request: &ProduceRequest) -> (i16, i64) {
        let response: ProduceResponse = self.call(ApiKey::Produce, 9, request);
        let p = &response.responses[0].partition_responses[0];
        (p.error_code, p.base_offset)
    }

    /// Whether the broker closed the connection (EOF or reset) within the read timeout.
    pub fn closed_by_broker(&mut self) -> bool {
        let mut buf = [0u8; 1024];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}

/// A Produce request of `records` (a record batch) to one partition, with
/// `acks` and a 5 s timeout.
pub fn produce_request(topic: &str, partition: i32, acks: i16, records: impl Into<Bytes>) -> ProduceRequest {
    ProduceRequest::default().with_acks(acks).with_timeout_ms(5000).with_topic_data(vec![TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
        .with_partition_data(vec![PartitionProduceData::default()
            .with_index(partition)
            .with_records(Some(records.into()))])])
}

/// A Fetch request for `topic` at (partition, offset) `partitions`, up to
/// 1 MiB each, that waits up to `max_wait_ms` for at least one byte
/// (`min_bytes` 1).
pub fn fetch_request(topic: &str, partitions: &[(i32, i64)], max_wait_ms: i32) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(
                partitions
                    .iter()
                    .map(|(p, o)| {
                        FetchPartition::default()
                            .with_partition(*p)
                            .with_fetch_offset(*o)
                            .with_partition_max_bytes(1 << 20)
                    })
                    .collect(),
            )])
}

/// Waits until `done` returns true, checking every 50 ms; panics, naming
/// `what`, if it has not within `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Builds an uncompressed RecordBatch v2 with the given values.
pub fn record_batch(values: &[&[u8]], timestamp: i64) -> BytesMut {
    idempotent_batch(-1, -1, -1, values, timestamp)
}

/// Builds an uncompressed RecordBatch v2 of an idempotent producer.
pub fn idempotent_batch(
    producer_id: i64,
    epoch: i16,
    base_sequence: i32,
    values: &[&[u8]],
    timestamp: i64,
) -> BytesMut {
    producer_batch(producer_id, epoch, base_sequence, values, timestamp, false)
}

/// Builds an uncompressed RecordBatch v2 of a producer, transactional or not.
#[allow(dead_code)]
pub fn producer_batch(
    producer_id: i64,
    epoch: i16,
    base_sequence: i32,
    values: &[&[u8]],
    timestamp: i64,
    transactional: bool,
) -> BytesMut {
    let batch = values.iter().enumerate().fold(sluice::protocol::builder::BatchBuilder::new(), |batch, (i, v)| {
        batch.record(None, Some(Bytes::copy_from_slice(v)), timestamp + i as i64)
    });
    batch.producer(producer_id, epoch, base_sequence, transactional).build().expect("a batch of test records")
}

/// Creates a topic with the rdkafka admin client and checks it succeeded.
pub async fn create_topic(bootstrap: &str, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
    let admin = kafka::admin(bootstrap);
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let results = admin.create_topics(&[topic], &AdminOptions::new()).await.expect("create topics");
    for r in results {
        r.expect("topic created");
    }
}

/// A small ext4 file system, loop-mounted, so the disk really fills up.
pub struct SmallDisk {
    pub mount: std::path::PathBuf,
    image: std::path::PathBuf,
}

impl SmallDisk {
    pub fn new(name: &str, megabytes: u64) -> SmallDisk {
        let base = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
        let image = base.with_extension("img");
        let mount = base.join("mnt");
        std::fs::create_dir_all(&mount).unwrap();
        let run = |cmd: &mut Command| {
            let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
            assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        run(Command::new("truncate").arg("-s").arg(format!("{megabytes}M")).arg(&image));
        run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image));
        run(Command::new("mount").args(["-o", "loop"]).arg(&image).arg(&mount));
        SmallDisk { mount, image }
    }

    /// Takes every free block (root's reserve too, as a broker running as
    /// root may use it) with files of its own, so that the next write that
    /// needs a new block fails with ENOSPC.
    pub fn fill(&self) {
        use std::os::fd::AsRawFd;
        let mut n = 0;
        let mut chunk_bytes: i64 = 1 << 30;
        while chunk_bytes >= 4096 {
            let path = self.mount.join(format!("filler-{n}"));
            let file = std::fs::File::create(&path).unwrap();
            // SAFETY: fallocate(2) on a file this function just created and holds open.
            if unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, chunk_bytes) } == 0 {
                n += 1;
            } else {
                drop(file);
                std::fs::remove_file(&path).unwrap();
                chunk_bytes /= 2;
            }
        }
    }

    /// Gives back what [`SmallDisk::fill`] took.
    pub fn free_up(&self) {
        for entry in std::fs::read_dir(&self.mount).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("filler-")) {
                std::fs::remove_file(path).unwrap();
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: a broker still running on it (a test that failed) lets go when it is killed.
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
        let _ = std::fs::remove_file(&self.image);
    }
}
