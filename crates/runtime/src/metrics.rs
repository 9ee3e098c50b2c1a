//! A shard's metrics: plain cells its own thread updates (requests per API
//! and their latencies, bytes and records in and out, connections, calls to
//! other shards, and its logs' I/O), and the `Send` snapshot the admin
//! listener gathers from every shard at scrape time. Nothing here is shared
//! between threads, so counting costs no atomic and no lock.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use sluice_core::metrics::{
    buckets, Buckets, Counter, Gauge, Histogram, Snapshot, WindowedHistogram, BATCH_SIZE_BUCKETS, LATENCY_BUCKETS_US,
};
use sluice_domain::txn::coordinator::TxnCounts;
use sluice_storage::metrics::IoMetrics;

/// API keys below this are counted (Kafka's are below 100).
pub const API_KEYS_COUNTED: usize = 128;

/// Where one request's time went, as Kafka's RequestMetrics splits it.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestTimes {
    /// From the frame read whole to the handler starting.
    pub queue: Duration,
    /// The handler, including any wait for an fdatasync or a long poll.
    pub local: Duration,
    /// From the answer being ready to its turn to be written (answers go out in request order).
    pub response_queue: Duration,
    /// Writing the answer to the socket.
    pub send: Duration,
}

impl RequestTimes {
    pub fn total(&self) -> Duration {
        self.queue + self.local + self.response_queue + self.send
    }
}

/// One API's requests on one shard.
#[derive(Debug, Default)]
pub struct ApiMetrics {
    pub requests: Counter,
    pub total: WindowedHistogram,
    pub queue: Histogram,
    pub local: Histogram,
    pub response_queue: Histogram,
    pub send: Histogram,
}

/// Everything one shard counts.
#[derive(Debug, Default)]
pub struct ShardMetrics {
    /// Shared with this shard's logs.
    pub io: Rc<IoMetrics>,
    apis: RefCell<Vec<Option<Rc<ApiMetrics>>>>,
    pub messages_in: Counter,
    pub bytes_in: Counter,
    pub messages_out: Counter,
    pub bytes_out: Counter,
    /// Partitions produced to, and those whose append failed (Kafka counts per partition too).
    pub produce_requests: Counter,
    pub failed_produce_requests: Counter,
    pub fetch_requests: Counter,
    pub failed_fetch_requests: Counter,
    pub connections_accepted: Counter,
    pub connections_refused: Counter,
    pub connections_open: Gauge,
    /// TLS handshakes that failed or timed out (a plaintext client on a TLS port, an untrusted certificate).
    pub tls_handshakes_failed: Counter,
    /// Logins refused: wrong password, unknown user, a certificate mapping to no principal.
    pub authentications_failed: Counter,
    /// Logins that succeeded (SASL; re-authentications count too).
    pub authentications_succeeded: Counter,
    /// Calls sent to other shards over the mesh.
    pub mesh_calls: Counter,
    /// Followers' replica-fetch connections served on this shard, the owner
    /// of the partition they fetch (handed over by the shard that accepted them).
    pub replica_connections: Counter,
    /// From a mesh message's send to its arrival here (calls and answers), in microseconds.
    pub mesh_hop_us: Histogram,
    /// Time the executor spent running tasks or polling I/O, in microseconds.
    busy_us: Cell<u64>,
    /// Busy share of the last whole second.
    busy_last_second: Cell<f64>,
}

impl ShardMetrics {
    /// Records one answered request of `api_key`.
    pub fn record_request(&self, api_key: i16, times: RequestTimes) {
        let Some(api) = self.api(api_key) else { return };
        api.requests.inc();
        api.total.record_duration(times.total());
        api.queue.record_duration(times.queue);
        api.local.record_duration(times.local);
        api.response_queue.record_duration(times.response_queue);
        api.send.record_duration(times.send);
    }

    fn api(&self, api_key: i16) -> Option<Rc<ApiMetrics>> {
        let index = usize::try_from(api_key).ok().filter(|k| *k < API_KEYS_COUNTED)?;
        let mut apis = self.apis.borrow_mut();
        if apis.len() <= index {
            apis.resize(index + 1, None);
        }
        Some(apis[index].get_or_insert_with(Default::default).clone())
    }

    /// Called once a second by the shard: closes the latency window and
    /// takes the executor's busy time (glommio hands it out once).
    pub fn tick(&self, second: Duration) {
        for api in self.apis.borrow().iter().flatten() {
            api.total.rotate();
        }
        let busy = self.take_busy();
        self.busy_last_second.set((busy.as_secs_f64() / second.as_secs_f64()).min(1.0));
    }

    fn take_busy(&self) -> Duration {
        let busy = glommio::executor().executor_stats().total_runtime();
        self.busy_us.set(self.busy_us.get() + busy.as_micros() as u64);
        busy
    }

    /// A copy of the counters (the caller adds the partitions, groups and transactions).
    pub fn snapshot(&self) -> CountersSnapshot {
        self.take_busy();
        let apis = self
            .apis
            .borrow()
            .iter()
            .enumerate()
            .filter_map(|(key, api)| api.as_ref().map(|api| (key as i16, api)))
            .map(|(api_key, api)| {
                let latency = |h: Snapshot| buckets(&h, &LATENCY_BUCKETS_US);
                ApiSnapshot {
                    api_key,
                    requests: api.requests.get(),
                    total: latency(api.total.snapshot()),
                    total_last_second: LIVE_LATENCY_API_KEYS.contains(&api_key).then(|| api.total.last_interval()),
                    queue: latency(api.queue.snapshot()),
                    local: latency(api.local.snapshot()),
                    response_queue: latency(api.response_queue.snapshot()),
                    send: latency(api.send.snapshot()),
                }
            })
            .collect();
        CountersSnapshot {
            apis,
            messages_in: self.messages_in.get(),
            bytes_in: self.bytes_in.get(),
            messages_out: self.messages_out.get(),
            bytes_out: self.bytes_out.get(),
            produce_requests: self.produce_requests.get(),
            failed_produce_requests: self.failed_produce_requests.get(),
            fetch_requests: self.fetch_requests.get(),
            failed_fetch_requests: self.failed_fetch_requests.get(),
            connections_accepted: self.connections_accepted.get(),
            connections_refused: self.connections_refused.get(),
            tls_handshakes_failed: self.tls_handshakes_failed.get(),
            authentications_failed: self.authentications_failed.get(),
            authentications_succeeded: self.authentications_succeeded.get(),
            connections_open: self.connections_open.get().max(0) as u64,
            mesh_calls: self.mesh_calls.get(),
            replica_connections: self.replica_connections.get(),
            busy_us: self.busy_us.get(),
            busy_last_second: self.busy_last_second.get(),
            io_write_bytes: self.io.write_bytes.get(),
            io_read_bytes: self.io.read_bytes.get(),
            sync_us: buckets(&self.io.sync_us.snapshot(), &LATENCY_BUCKETS_US),
            write_us: buckets(&self.io.write_us.snapshot(), &LATENCY_BUCKETS_US),
            mesh_hop_us: buckets(&self.mesh_hop_us.snapshot(), &LATENCY_BUCKETS_US),
            sync_batch_appends: buckets(&self.io.sync_batch_appends.snapshot(), &BATCH_SIZE_BUCKETS),
            cache_reads: self.io.cache_reads.get(),
            disk_reads: self.io.disk_reads.get(),
            batch_cache_reads: self.io.batch_cache_reads.get(),
            read_ahead_reads: self.io.read_ahead_reads.get(),
            // The cache is the shard's, not the counters': filled in by the shard.
            batch_cache_bytes: 0,
            tail_cache_bytes: 0,
            cleaner_passes: self.io.cleaner_passes.get(),
            cleaner_bytes_removed: self.io.cleaner_bytes_removed.get(),
            cleaner_failures: self.io.cleaner_failures.get(),
        }
    }
}

/// APIs whose last second of latencies travels whole in a snapshot, for the
/// console's live percentiles: Produce and Fetch.
pub const LIVE_LATENCY_API_KEYS: [i16; 2] = [0, 1];

/// One API's numbers on one shard: latencies in microseconds, in the
/// buckets of `LATENCY_BUCKETS_US`, and for the APIs of
/// `LIVE_LATENCY_API_KEYS` the last second's values whole (for the console's
/// percentiles).
#[derive(Debug, Clone)]
pub struct ApiSnapshot {
    pub api_key: i16,
    pub requests: u64,
    pub total: Buckets,
    pub total_last_second: Option<Snapshot>,
    pub queue: Buckets,
    pub local: Buckets,
    pub response_queue: Buckets,
    pub send: Buckets,
}

/// A shard's counters at one moment.
#[derive(Debug, Clone)]
pub struct CountersSnapshot {
    pub apis: Vec<ApiSnapshot>,
    pub messages_in: u64,
    pub bytes_in: u64,
    pub messages_out: u64,
    pub bytes_out: u64,
    pub produce_requests: u64,
    pub failed_produce_requests: u64,
    pub fetch_requests: u64,
    pub failed_fetch_requests: u64,
    pub connections_accepted: u64,
    pub connections_refused: u64,
    pub tls_handshakes_failed: u64,
    pub authentications_failed: u64,
    pub authentications_succeeded: u64,
    pub connections_open: u64,
    pub mesh_calls: u64,
    pub replica_connections: u64,
    pub busy_us: u64,
    pub busy_last_second: f64,
    pub io_write_bytes: u64,
    pub io_read_bytes: u64,
    /// In the buckets of `LATENCY_BUCKETS_US`.
    pub sync_us: Buckets,
    /// In the buckets of `LATENCY_BUCKETS_US`.
    pub write_us: Buckets,
    /// In the buckets of `LATENCY_BUCKETS_US`.
    pub mesh_hop_us: Buckets,
    /// In the buckets of `BATCH_SIZE_BUCKETS`.
    pub sync_batch_appends: Buckets,
    pub cache_reads: u64,
    pub disk_reads: u64,
    pub batch_cache_reads: u64,
    pub read_ahead_reads: u64,
    /// Bytes the shard's batch cache holds.
    pub batch_cache_bytes: u64,
    /// Bytes the shard's partitions keep of what they appended last.
    pub tail_cache_bytes: u64,
    pub cleaner_passes: u64,
    pub cleaner_bytes_removed: u64,
    pub cleaner_failures: u64,
}

/// One partition a shard owns, at one moment.
#[derive(Debug, Clone)]
pub struct PartitionSnapshot {
    pub topic: String,
    pub partition: i32,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub size_bytes: u64,
    pub segments: usize,
}

/// A group's committed offset for one partition.
#[derive(Debug, Clone)]
pub struct GroupOffsetSnapshot {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// Everything the admin side wants of one shard, gathered in one call.
#[derive(Debug, Clone)]
pub struct ShardSnapshot {
    pub shard: usize,
    pub counters: CountersSnapshot,
    /// Bytes of request frames held by this shard's connections (backpressure).
    pub request_bytes_held: u64,
    /// Calls to other shards waiting for their answer.
    pub calls_pending: u64,
    pub partitions: Vec<PartitionSnapshot>,
    pub group_offsets: Vec<GroupOffsetSnapshot>,
    pub groups: u64,
    pub txns: TxnCounts,
}
