//! Every limit and default of the broker in one place, unit last in each name.
//!
//! Defaults that Kafka also has carry Kafka's value and name it; limits that
//! only bound Sluice's own memory say what they bound.

/// Default for `socket.request.max.bytes`: largest request frame accepted (Kafka: 100 MiB).
pub const FRAME_BYTES_MAX_DEFAULT: usize = 100 * 1024 * 1024;
/// Smallest frame: api_key(2) + api_version(2) + correlation_id(4).
pub const FRAME_BYTES_MIN: usize = 8;
/// Requests read from one connection and not yet answered; reading pauses when reached.
pub const INFLIGHT_REQUESTS_PER_CONNECTION_MAX: usize = 32;
/// Frame body bytes allocated before any of them arrive (larger bodies grow as
/// they arrive): covers typical produce requests without reallocating.
pub const FRAME_BODY_PREALLOC_BYTES_MAX: usize = 1024 * 1024;
/// Bytes a connection asks the socket for at a time when a frame's size is not yet known.
pub const CONNECTION_READ_CHUNK_BYTES: usize = 64 * 1024;
/// Responses smaller than this are copied into the connection's write buffer;
/// larger record chunks are written to the socket as they are.
pub const CONNECTION_WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// Depth of each bounded channel between two shards.
pub const MESH_CHANNEL_DEPTH: usize = 1024;
/// Shards one broker runs at most.
pub const SHARDS_MAX: usize = 256;
/// Highest CPU number (exclusive) a `--cpus` list may name.
pub const CPUS_MAX: usize = 4096;

/// Direct-I/O alignment of segment writes and reads.
pub const DMA_ALIGNMENT_BYTES: u64 = 4096;
/// Longest `spin.before.park.us` accepted: 10 ms of polling is already a busy core.
pub const SPIN_BEFORE_PARK_US_MAX: u64 = 10_000;
/// Memory glommio reserves per shard for io_uring registered buffers.
pub const IO_MEMORY_BYTES_PER_SHARD: usize = 10 * 1024 * 1024;

/// Default for `segment.bytes` / `log.segment.bytes` (Kafka: 1 GiB).
pub const SEGMENT_BYTES_DEFAULT: u64 = 1024 * 1024 * 1024;
/// Smallest `segment.bytes` accepted (Kafka: 1 MiB... 14 bytes in theory; we keep a sane floor).
pub const SEGMENT_BYTES_MIN: u64 = 1024 * 1024;
/// Largest `segment.bytes`: positions in the offset index are 32-bit.
pub const SEGMENT_BYTES_MAX: u64 = i32::MAX as u64;
/// Default for `index.interval.bytes` (Kafka: 4096).
pub const INDEX_INTERVAL_BYTES_DEFAULT: u64 = 4096;
/// Default for `max.message.bytes` (Kafka: 1048588).
pub const MESSAGE_BYTES_MAX_DEFAULT: u64 = 1_048_588;
/// Recently appended bytes kept in memory per partition to serve tail reads.
pub const TAIL_CACHE_BYTES_PER_PARTITION_MAX: usize = 4 * 1024 * 1024;
/// Recently appended bytes kept by all of a shard's partitions together; past
/// it the partitions appended to least recently lose theirs first.
pub const TAIL_CACHE_BYTES_PER_SHARD_MAX: usize = 256 * 1024 * 1024;
/// Memory a shard keeps for batches read from disk (its batch cache), all its
/// partitions together; least recently used out first.
pub const BATCH_CACHE_BYTES_PER_SHARD_MAX: usize = 128 * 1024 * 1024;
/// Bytes one disk read of a partition asks for at least: a sequential
/// reader's next fetches are served from what it brought, and the next such
/// read (the read-ahead) starts while they are.
pub const READ_AHEAD_BYTES: usize = 2 * 1024 * 1024;
/// Bytes one partition read from disk returns at most, whatever the client asks.
pub const FETCH_READ_BYTES_PER_PARTITION_MAX: usize = 16 * 1024 * 1024;
/// Default and upper bound for a whole fetch response's record bytes.
pub const FETCH_RESPONSE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Longest a fetch may wait for data, whatever `max_wait_ms` says.
pub const FETCH_WAIT_MS_MAX: u64 = 30_000;

/// Partitions one topic may have.
pub const PARTITIONS_PER_TOPIC_MAX: i32 = 10_000;
/// Partitions one DescribeTopicPartitions answer lists at most, whatever the
/// client asks (Kafka's `max.request.partition.size.limit` default).
pub const DESCRIBE_TOPIC_PARTITIONS_PER_RESPONSE_MAX: i32 = 2000;
/// Partitions one broker may host in all.
pub const PARTITIONS_PER_BROKER_MAX: usize = 100_000;
/// Topic name length limit (Kafka: 249).
pub const TOPIC_NAME_BYTES_MAX: usize = 249;
/// Bytes of the broker's catalog file, read whole at start.
pub const CATALOG_FILE_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// Default for `num.partitions` (Kafka: 1).
pub const NUM_PARTITIONS_DEFAULT: i32 = 1;

/// Size of a record batch header up to and including `records_count`.
pub const BATCH_HEADER_BYTES: usize = 61;
/// Bytes before `batch_length` is known: base_offset(8) + batch_length(4).
pub const BATCH_LENGTH_PREFIX_BYTES: usize = 12;

const _: () = assert!(FRAME_BYTES_MIN >= 8);
const _: () = assert!(SEGMENT_BYTES_MIN <= SEGMENT_BYTES_DEFAULT);
const _: () = assert!(SEGMENT_BYTES_DEFAULT <= SEGMENT_BYTES_MAX);
const _: () = assert!(MESSAGE_BYTES_MAX_DEFAULT <= FETCH_READ_BYTES_PER_PARTITION_MAX as u64);
const _: () = assert!(SEGMENT_BYTES_MIN.is_multiple_of(DMA_ALIGNMENT_BYTES));
const _: () = assert!(FETCH_READ_BYTES_PER_PARTITION_MAX <= FETCH_RESPONSE_BYTES_MAX);
const _: () = assert!(READ_AHEAD_BYTES <= FETCH_READ_BYTES_PER_PARTITION_MAX);
const _: () = assert!(READ_AHEAD_BYTES.is_multiple_of(DMA_ALIGNMENT_BYTES as usize));
const _: () = assert!(BATCH_CACHE_BYTES_PER_SHARD_MAX >= 4 * FETCH_READ_BYTES_PER_PARTITION_MAX);
const _: () = assert!(FETCH_RESPONSE_BYTES_MAX < FRAME_BYTES_MAX_DEFAULT);
const _: () = assert!(TAIL_CACHE_BYTES_PER_PARTITION_MAX as u64 >= MESSAGE_BYTES_MAX_DEFAULT);
const _: () = assert!(TAIL_CACHE_BYTES_PER_SHARD_MAX >= 16 * TAIL_CACHE_BYTES_PER_PARTITION_MAX);
const _: () = assert!(BATCH_LENGTH_PREFIX_BYTES < BATCH_HEADER_BYTES);

/// Batches remembered per producer for duplicate detection (Kafka: 5, matching
/// `max.in.flight.requests.per.connection` of idempotent producers).
pub const PRODUCER_BATCHES_RETAINED: usize = 5;
/// Producers whose state one partition keeps; the least recently active goes first.
pub const PRODUCERS_PER_PARTITION_MAX: usize = 10_000;
/// `producer.id.expiration.ms` default: a partition forgets a producer idle
/// this long with no transaction open there (Kafka: 1 day).
pub const PRODUCER_ID_EXPIRATION_MS_DEFAULT: i32 = 86_400_000;
/// Longest wait between two looks for expired producers (Kafka's
/// `producer.id.expiration.check.interval.ms` default, 10 minutes); a shorter
/// `producer.id.expiration.ms` is looked for as often as it is long.
pub const PRODUCER_EXPIRATION_CHECK_INTERVAL_MS_MAX: u64 = 600_000;
/// Producer ids reserved on disk at a time by the allocator.
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;
/// Producer-state snapshots kept per partition.
pub const PRODUCER_SNAPSHOTS_RETAINED: usize = 2;
/// Bytes of a producer-state snapshot read at open: every producer's line
/// (at most 512 bytes each) and the aborted-transaction index. A larger one
/// is ignored and the state is rebuilt from the log.
pub const PRODUCER_SNAPSHOT_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Bytes of a one-line state file (`recovery-point`, `log-start-offset`).
pub const LINE_FILE_BYTES_MAX: u64 = 4096;

const _: () = assert!(PRODUCERS_PER_PARTITION_MAX as u64 * 512 < PRODUCER_SNAPSHOT_BYTES_MAX);

/// `offsets.topic.num.partitions`: internal partitions that groups hash onto (Kafka: 50).
pub const OFFSETS_PARTITIONS: usize = 50;
/// `transaction.state.log.num.partitions`: internal partitions that transactional ids hash onto (Kafka: 50).
pub const TXN_PARTITIONS: usize = 50;
/// `transaction.max.timeout.ms` default: longest transaction a producer may ask for (Kafka: 15 minutes).
pub const TXN_TIMEOUT_MS_MAX_DEFAULT: i32 = 900_000;
/// `transactional.id.expiration.ms` default: the coordinator forgets a
/// transactional id idle this long with no transaction open (Kafka: 7 days).
pub const TXN_ID_EXPIRATION_MS_DEFAULT: i32 = 604_800_000;
/// Transactional ids one shard's sweep forgets at most, in one journal write
/// per transaction state partition; the rest wait for the next sweep.
pub const TXN_IDS_EXPIRED_PER_SWEEP_MAX: usize = 1_000;
/// Partitions one transaction may span (bounds a transaction's persisted state).
pub const TXN_PARTITIONS_MAX: usize = 10_000;
/// Groups whose offsets one transaction may commit.
pub const TXN_GROUPS_MAX: usize = 100;
/// Journal length past which an offsets partition writes a checkpoint and starts anew.
pub const OFFSETS_JOURNAL_BYTES_MAX: usize = 1024 * 1024;
/// Largest encoded offsets record (a group's metadata with all its members).
pub const OFFSETS_RECORD_BYTES_MAX: usize = 64 * 1024 * 1024;
/// `offsets.commit.timeout.ms`: how long a cluster's coordinator waits for the
/// in-sync replicas of its internal partition to confirm a write (Kafka: 5 s).
pub const OFFSETS_COMMIT_TIMEOUT_MS: u64 = 5_000;
/// Bytes one read of a cluster's internal partition asks for while its
/// coordinator loads it (`offsets.load.buffer.size`, Kafka: 5 MiB).
pub const OFFSETS_LOAD_READ_BYTES: usize = 5 * 1024 * 1024;
/// `offsets.topic.replication.factor` and `transaction.state.log.replication.factor`
/// (Kafka: 3): the internal topics of a cluster get this many replicas, or one
/// per voter when there are fewer.
pub const INTERNAL_TOPIC_REPLICATION_FACTOR: usize = 3;
/// `offsets.topic.segment.bytes` (Kafka: 100 MiB).
pub const INTERNAL_TOPIC_SEGMENT_BYTES: u64 = 100 * 1024 * 1024;
/// `offset.metadata.max.bytes` (Kafka: 4096).
pub const OFFSET_METADATA_BYTES_MAX: usize = 4096;
/// `group.min.session.timeout.ms` and `group.max.session.timeout.ms` (Kafka: 6 s and 30 min).
pub const GROUP_SESSION_TIMEOUT_MS_MIN: i32 = 6_000;
pub const GROUP_SESSION_TIMEOUT_MS_MAX: i32 = 1_800_000;
/// `group.max.size`: members one group may have.
pub const GROUP_MEMBERS_MAX: usize = 10_000;
/// `group.consumer.session.timeout.ms` default (Kafka: 45 s).
pub const GROUP_CONSUMER_SESSION_TIMEOUT_MS_DEFAULT: u64 = 45_000;
/// `group.consumer.heartbeat.interval.ms` default (Kafka: 5 s).
pub const GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS_DEFAULT: u64 = 5_000;
/// `group.consumer.max.size` default: members one consumer group may have.
pub const GROUP_CONSUMER_MAX_SIZE_DEFAULT: usize = 200;
/// `group.consumer.assignors` default: the server assignors, the first the default one.
pub const GROUP_CONSUMER_ASSIGNORS_DEFAULT: &str = "uniform,range";
/// Longest `subscribed_topic_regex` accepted.
pub const GROUP_CONSUMER_REGEX_BYTES_MAX: usize = 4096;
/// Compiled size one subscription regex may take.
pub const GROUP_CONSUMER_REGEX_COMPILED_BYTES_MAX: usize = 1024 * 1024;
/// Topic names one member may subscribe to by name.
pub const GROUP_CONSUMER_SUBSCRIBED_TOPICS_MAX: usize = 10_000;
const _: () = assert!(GROUP_CONSUMER_MAX_SIZE_DEFAULT <= GROUP_MEMBERS_MAX);
const _: () = assert!(GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS_DEFAULT < GROUP_CONSUMER_SESSION_TIMEOUT_MS_DEFAULT);
/// How often each shard looks for expired members and offsets, timed-out
/// transactions and transactions whose markers are not all written yet.
pub const GROUP_SWEEP_INTERVAL_MS: u64 = 200;
/// `offsets.retention.minutes` default (Kafka: 7 days).
pub const OFFSETS_RETENTION_MINUTES_DEFAULT: u64 = 7 * 24 * 60;
/// `group.initial.rebalance.delay.ms` default (Kafka: 3 s).
pub const GROUP_INITIAL_REBALANCE_DELAY_MS_DEFAULT: u64 = 3_000;
/// `log.retention.check.interval.ms` default (Kafka: 5 minutes).
pub const LOG_RETENTION_CHECK_INTERVAL_MS_DEFAULT: u64 = 300_000;
/// Synced bytes of an active segment between two recovery points: bounds what
/// recovery re-reads after a crash.
pub const RECOVERY_CHECKPOINT_BYTES: u64 = 64 * 1024 * 1024;
/// Period of each shard's background work (recovery points, retention checks).
pub const BACKGROUND_TICK_MS: u64 = 200;
/// How long a stopping broker waits for in-flight requests before syncing and exiting.
pub const STOP_DRAIN_MS_MAX: u64 = 5_000;

// Log compaction: the compaction topic configs' defaults and the cleaner's
// broker configs (`log.cleaner.*`), all with Kafka's values.

/// Default for `message.timestamp.after.max.ms` / `log.message.timestamp.after.max.ms`
/// (Kafka 4.1: 1 hour): a `CreateTime` record further in the future is refused.
pub const MESSAGE_TIMESTAMP_AFTER_MAX_MS_DEFAULT: i64 = 3600 * 1000;
/// Default for `delete.retention.ms` / `log.cleaner.delete.retention.ms` (Kafka: 1 day).
pub const DELETE_RETENTION_MS_DEFAULT: i64 = 24 * 3600 * 1000;
/// Default for `min.cleanable.dirty.ratio` / `log.cleaner.min.cleanable.ratio` (Kafka: 0.5).
pub const MIN_CLEANABLE_DIRTY_RATIO_DEFAULT: f64 = 0.5;
/// Default for `min.compaction.lag.ms` / `log.cleaner.min.compaction.lag.ms` (Kafka: 0).
pub const MIN_COMPACTION_LAG_MS_DEFAULT: i64 = 0;
/// Default for `max.compaction.lag.ms` / `log.cleaner.max.compaction.lag.ms` (Kafka: Long.MAX_VALUE, no bound).
pub const MAX_COMPACTION_LAG_MS_DEFAULT: i64 = i64::MAX;
/// `log.cleaner.threads` default (Kafka: 1). Sluice runs one cleaner per shard whatever it says.
pub const CLEANER_THREADS_DEFAULT: usize = 1;
/// `log.cleaner.io.max.bytes.per.second` default (Kafka: Double.MAX_VALUE, unthrottled).
pub const CLEANER_IO_BYTES_PER_SECOND_MAX_DEFAULT: f64 = f64::MAX;
/// `log.cleaner.dedupe.buffer.size` default: the cleaners' key maps, all shards together (Kafka: 128 MiB).
pub const CLEANER_DEDUPE_BUFFER_BYTES_DEFAULT: u64 = 128 * 1024 * 1024;
/// Kafka refuses a `log.cleaner.dedupe.buffer.size` of this or less per `log.cleaner.threads`.
pub const CLEANER_DEDUPE_BUFFER_BYTES_PER_THREAD_MIN: u64 = 1024 * 1024;
/// `log.cleaner.io.buffer.load.factor` default: how full a key map may get (Kafka: 0.9).
pub const CLEANER_DEDUPE_BUFFER_LOAD_FACTOR_DEFAULT: f64 = 0.9;
/// `log.cleaner.io.buffer.size` default: the cleaners' read and write buffers (Kafka: 512 KiB).
pub const CLEANER_IO_BUFFER_BYTES_DEFAULT: usize = 512 * 1024;
/// `log.cleaner.backoff.ms` default: a cleaner's sleep when nothing is cleanable (Kafka: 15 s).
pub const CLEANER_BACKOFF_MS_DEFAULT: u64 = 15_000;

const _: () = assert!(CLEANER_DEDUPE_BUFFER_BYTES_DEFAULT > CLEANER_DEDUPE_BUFFER_BYTES_PER_THREAD_MIN);

/// Bytes of request frames a shard holds at once (read, not yet answered);
/// reading from sockets pauses while it is spent (backpressure).
pub const REQUEST_BYTES_PER_SHARD_MAX: usize = 256 * 1024 * 1024;
/// Default for `max.connections`: client connections the broker accepts at once.
pub const CONNECTIONS_MAX_DEFAULT: usize = 10_000;
/// Default for `connections.max.idle.ms` (Kafka: 10 minutes).
pub const CONNECTION_IDLE_MS_DEFAULT: u64 = 600_000;

const _: () = assert!(FRAME_BYTES_MAX_DEFAULT <= REQUEST_BYTES_PER_SHARD_MAX);
const _: () = assert!(INFLIGHT_REQUESTS_PER_CONNECTION_MAX >= 5, "idempotent producers pipeline 5 requests");
/// Records one batch may declare (a compressed batch cannot be checked against its bytes).
pub const BATCH_RECORDS_MAX: usize = 1 << 20;

// Log compaction (each shard cleans the compacted partitions it owns).
/// Bytes a stored batch may inflate to when the cleaner (or a check of a
/// compacted topic's keys) decodes it; a batch past it is refused, not expanded.
pub const DECOMPRESSED_BATCH_BYTES_MAX: usize = 64 * 1024 * 1024;

// Every uncompressed batch the broker accepts (at most the largest `max.message.bytes`) fits.
const _: () = assert!(DECOMPRESSED_BATCH_BYTES_MAX >= FETCH_READ_BYTES_PER_PARTITION_MAX);

// The admin HTTP listener (metrics, health, web console). It runs on one
// shard in a low-priority task queue; every limit below keeps a slow or
// hostile client from holding more than its share.

/// `admin.listeners` default: loopback only, Redpanda's admin port.
pub const ADMIN_LISTEN_DEFAULT: &str = "127.0.0.1:9644";
/// `schema.registry.listeners` default: loopback only, Confluent Schema Registry's port.
pub const SCHEMA_REGISTRY_LISTEN_DEFAULT: &str = "127.0.0.1:8081";
/// Bytes of a schema registry request's body: a schema with its references' names.
pub const SCHEMA_REGISTRY_REQUEST_BODY_BYTES_MAX: usize = 1024 * 1024;
/// Records of `_schemas` read per catch-up step (its reads are bounded like a fetch).
pub const SCHEMA_REGISTRY_READ_BYTES_MAX: i32 = 4 * 1024 * 1024;
/// Schema ids a shard remembers as valid for broker-side schema id
/// validation (`confluent.value.schema.validation`); past it the oldest are forgotten.
pub const SCHEMA_ID_VALIDATED_ENTRIES_MAX: usize = 4096;
/// How long a shard trusts a schema id it found valid before asking the
/// registry again (a version deleted since is refused after at most this).
pub const SCHEMA_ID_VALIDATED_TTL_MS: u64 = 30_000;
/// Admin HTTP connections open at once; more are closed on accept.
pub const ADMIN_CONNECTIONS_MAX: usize = 64;
/// Bytes of an admin request's line and headers (hyper's smallest read buffer is 8 KiB).
pub const ADMIN_REQUEST_HEAD_BYTES_MAX: usize = 16 * 1024;
/// Bytes of an admin request's body (the console's actions send small JSON).
pub const ADMIN_REQUEST_BODY_BYTES_MAX: usize = 64 * 1024;
/// Each read or write on an admin connection must progress within this.
pub const ADMIN_IO_TIMEOUT_MS: u64 = 10_000;
/// An admin connection is closed after this long, kept alive or not.
pub const ADMIN_CONNECTION_LIFETIME_MS: u64 = 120_000;
/// Records the console shows per page of a partition.
pub const CONSOLE_RECORDS_MAX: usize = 500;
/// Bytes of a partition the console reads for one page.
pub const CONSOLE_READ_BYTES_MAX: usize = 4 * 1024 * 1024;

const _: () = assert!(ADMIN_REQUEST_HEAD_BYTES_MAX >= 8 * 1024, "hyper's read buffer is at least 8 KiB");

// Security: listeners, TLS, SASL, ACLs.

/// The listener when none is configured: one PLAINTEXT listener on the loopback.
pub const LISTENERS_DEFAULT: &str = "PLAINTEXT://127.0.0.1:9092";
/// Listeners one broker serves.
pub const LISTENERS_MAX: usize = 16;
/// Kafka's `sasl.server.max.receive.size`: the largest frame a connection may
/// send before it has authenticated.
pub const SASL_RECEIVE_BYTES_MAX_DEFAULT: usize = 512 * 1024;
/// A TLS handshake, or a SASL exchange from connect to authenticated, must finish within this.
pub const AUTHENTICATION_MS_MAX: u64 = 10_000;
/// After a failed login the broker waits this long before answering, so that
/// password guessing over one connection is slow (Kafka's `connection.failed.authentication.delay.ms` is 100).
pub const FAILED_AUTHENTICATION_DELAY_MS: u64 = 100;
/// Failed logins logged per shard per second; the rest are only counted.
pub const FAILED_AUTHENTICATION_LOGS_PER_SECOND_MAX: u32 = 5;
/// How often certificate and key files are checked for changes (reloaded without restart).
pub const TLS_RELOAD_CHECK_MS: u64 = 5_000;
/// Largest PEM file (keystore, truststore) read.
pub const PEM_FILE_BYTES_MAX: u64 = 1024 * 1024;
/// ACL bindings one broker stores.
pub const ACLS_MAX: usize = 100_000;
/// SCRAM users one broker stores.
pub const SCRAM_USERS_MAX: usize = 100_000;
/// Largest security state file (ACLs, SCRAM credentials, quotas).
pub const SECURITY_FILE_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Quota sensors (rates per user and client id) one shard keeps.
pub const QUOTA_SENSORS_PER_SHARD_MAX: usize = 100_000;
/// A throttle time is reported and applied up to this long (Kafka's field is an int32 of ms).
pub const THROTTLE_MS_MAX: u64 = 60 * 60 * 1000;

/// Client instances whose telemetry state the broker keeps (Kafka's
/// `ClientMetricsManager` cache size); the least recently seen goes first.
pub const TELEMETRY_CLIENTS_MAX: usize = 16_384;
/// Metric series (a metric name and its point attributes) kept per client instance.
pub const TELEMETRY_SERIES_PER_CLIENT_MAX: usize = 1_024;
/// Metric series kept for all client instances together.
pub const TELEMETRY_SERIES_MAX: usize = 65_536;
/// Bytes of a metric name, attribute text or client label kept; longer ones are cut.
pub const TELEMETRY_LABEL_BYTES_MAX: usize = 256;
/// Kafka's `telemetry.max.bytes` default: the largest push, compressed or not.
pub const TELEMETRY_MAX_BYTES_DEFAULT: usize = 1024 * 1024;
/// A client instance is forgotten this long after its last request at the
/// least, or three push intervals when longer (Kafka's cache expiry).
pub const TELEMETRY_EXPIRY_MS_MIN: u64 = 60_000;
/// Client metrics subscriptions (CLIENT_METRICS config resources) one broker stores.
pub const CLIENT_METRICS_SUBSCRIPTIONS_MAX: usize = 1_024;

const _: () = assert!(TELEMETRY_SERIES_PER_CLIENT_MAX <= TELEMETRY_SERIES_MAX);

// The cluster: the metadata quorum (Raft) and its transport between nodes.
/// Bytes of one quorum log frame or transport frame (one Raft message or entry).
pub const QUORUM_FRAME_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Bytes of one metadata record; a change that would make a larger one
/// (a security state with very many ACLs or users) is refused, never
/// written. Well below the frame limit, which also carries Raft's headers.
pub const QUORUM_RECORD_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Bytes of the quorum log file; past it the node stops taking metadata changes.
pub const QUORUM_LOG_BYTES_MAX: u64 = 1024 * 1024 * 1024;
/// Bytes of the quorum's hard state file.
pub const QUORUM_STATE_BYTES_MAX: u64 = 4096;
/// One Raft tick; the election and heartbeat timeouts count these.
pub const QUORUM_TICK_MS: u64 = 100;
/// Ticks without a leader's word before a voter stands for election
/// (randomised by the library between this and twice this).
pub const QUORUM_ELECTION_TICKS: usize = 10;
/// Ticks between a leader's heartbeats.
pub const QUORUM_HEARTBEAT_TICKS: usize = 2;
/// Messages waiting to go to one peer; past it the oldest are dropped
/// (Raft resends what a peer did not get).
pub const QUORUM_PEER_QUEUE_MAX: usize = 4096;
/// Inbound quorum messages waiting for the controller loop.
pub const QUORUM_INBOX_MAX: usize = 4096;
/// How long connecting to a peer may take.
pub const QUORUM_CONNECT_TIMEOUT_MS: u64 = 2_000;
/// Bytes of committed metadata records a voter sends an observer (a broker
/// that is not a voter) in one answer; one record is always sent whole.
pub const OBSERVER_FETCH_BYTES_MAX: usize = 1024 * 1024;
/// How often an observer asks a voter for new committed records.
pub const OBSERVER_FETCH_INTERVAL_MS: u64 = 100;
/// How long an observer waits for a voter's answer before it tries another.
pub const OBSERVER_FETCH_TIMEOUT_MS: u64 = 3_000;

const _: () = assert!(OBSERVER_FETCH_BYTES_MAX + 64 <= QUORUM_FRAME_BYTES_MAX);
const _: () = assert!(QUORUM_RECORD_BYTES_MAX + 64 <= QUORUM_FRAME_BYTES_MAX);
/// How long a request one broker sends another (WriteTxnMarkers,
/// AddPartitionsToTxn) may take, connection included, before it counts as failed.
pub const PEER_CALL_TIMEOUT_MS: u64 = 10_000;
/// Largest answer to such a request.
pub const PEER_RESPONSE_BYTES_MAX: usize = 1024 * 1024;
/// Wait between attempts to connect to a peer that refused.
pub const QUORUM_RECONNECT_BACKOFF_MS: u64 = 200;
/// `broker.session.timeout.ms` default (Kafka's): a broker not heard from
/// this long is fenced.
pub const BROKER_SESSION_TIMEOUT_MS_DEFAULT: u64 = 9_000;
/// `broker.heartbeat.interval.ms` default (Kafka's).
pub const BROKER_HEARTBEAT_INTERVAL_MS_DEFAULT: u64 = 2_000;
/// `replica.lag.time.max.ms` default (Kafka's): a follower not caught up
/// this long leaves the in-sync replicas.
pub const REPLICA_LAG_TIME_MAX_MS_DEFAULT: u64 = 30_000;
/// How often a leader looks for followers that fell behind.
pub const REPLICA_LAG_CHECK_MS: u64 = 1_000;
/// How often DeleteRecords on a replicated partition looks whether the
/// followers' log start offsets have caught up with the leader's.
pub const DELETE_RECORDS_POLL_MS: u64 = 10;
/// Bytes a follower asks for in one fetch (Kafka's `replica.fetch.max.bytes`
/// is 1 MiB per partition; one batch is always sent whole).
pub const REPLICA_FETCH_BYTES_MAX: usize = 8 * 1024 * 1024;
/// What a follower's fetch response may hold beyond its records (headers, fields).
pub const REPLICA_FETCH_RESPONSE_OVERHEAD_BYTES: usize = 64 * 1024;
/// How long a follower's fetch waits at the leader for new records.
pub const REPLICA_FETCH_WAIT_MS: u64 = 500;
/// Wait before a follower fetches again after an error.
pub const REPLICA_FETCH_BACKOFF_MS: u64 = 200;
/// How long a follower waits for the leader's answer to one fetch before it
/// drops the connection and opens another (Kafka's `replica.socket.timeout.ms`):
/// a leader that is paused, or a network that drops packets without a reset,
/// never closes the connection.
pub const REPLICA_SOCKET_TIMEOUT_MS: u64 = 30_000;
/// How long a stopping cluster node waits for its leaderships to move away.
pub const CONTROLLED_SHUTDOWN_MS_MAX: u64 = 5_000;
/// How often a stopping node proposes its shutdown until the log has it.
pub const CONTROLLED_SHUTDOWN_RETRY_MS: u64 = 500;
/// Voters in `controller.quorum.voters`.
pub const QUORUM_VOTERS_MAX: usize = 9;
/// Brokers a cluster registers.
pub const CLUSTER_BROKERS_MAX: usize = 1024;
