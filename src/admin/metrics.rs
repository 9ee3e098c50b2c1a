//! `GET /metrics`: every shard's snapshot, gathered at scrape time through
//! the shard client, added up and written in Prometheus's text format by
//! `prometheus-client`. Series carry a `shard` label (sum them for the
//! broker); names follow Kafka's metrics where Kafka has one (see README).

use std::collections::HashMap;
use std::rc::Rc;

use kafka_protocol::messages::ApiKey;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::metrics::ShardSnapshot;
use crate::shard::Shard;
use sluice_core::metrics::{Buckets, BATCH_SIZE_BUCKETS, LATENCY_BUCKETS_US};

/// Everything one scrape reports; plain data, encoded after the gather.
#[derive(Debug)]
pub struct Scrape {
    pub shards: Vec<ShardSnapshot>,
    /// Shards that did not answer.
    pub missing: Vec<usize>,
    pub partitions_enabled: bool,
    pub uptime_seconds: f64,
    /// Client telemetry (KIP-714) from the controller's shard; `None` if it did not answer.
    pub telemetry: Option<Telemetry>,
}

/// The client instances that asked for telemetry subscriptions, and the broker's counts.
#[derive(Debug, Clone)]
pub struct Telemetry {
    pub clients: Vec<sluice_domain::telemetry::ClientSnapshot>,
    pub counters: sluice_domain::telemetry::TelemetryCounters,
}

/// Asks the controller's shard for the client instances it knows (expired ones dropped first).
pub async fn telemetry(shard: &Rc<Shard>) -> Option<Telemetry> {
    let now_ms = crate::handlers::get_telemetry_subscriptions::now_ms();
    shard
        .on_controller(move |s: Rc<Shard>| async move {
            let mut telemetry = s.telemetry.borrow_mut();
            telemetry.expire(now_ms);
            Telemetry { clients: telemetry.snapshot(), counters: telemetry.counters }
        })
        .await
        .ok()
}

/// Asks every shard for its snapshot.
pub async fn gather(shard: &Rc<Shard>, started: std::time::Instant) -> Scrape {
    let answers = shard.on_every_shard(|s| async move { s.snapshot() }).await;
    let mut scrape = Scrape {
        shards: Vec::new(),
        missing: Vec::new(),
        partitions_enabled: shard.config.metrics_partitions_enable,
        uptime_seconds: started.elapsed().as_secs_f64(),
        telemetry: telemetry(shard).await,
    };
    for (id, answer) in answers.into_iter().enumerate() {
        match answer {
            Ok(snapshot) => scrape.shards.push(snapshot),
            Err(_) => scrape.missing.push(id),
        }
    }
    scrape
}

/// The scrape in the Prometheus text format (0.0.4), or OpenMetrics when
/// `openmetrics`; returns the body and its content type.
pub fn encode(scrape: Scrape, openmetrics: bool) -> (String, &'static str) {
    let mut registry = Registry::with_prefix("sluice");
    registry.register_collector(Box::new(scrape));
    let mut out = String::new();
    if openmetrics {
        prometheus_client::encoding::text::encode(&mut out, &registry).expect("writing to a String cannot fail");
        (out, "application/openmetrics-text; version=1.0.0; charset=utf-8")
    } else {
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
            .expect("writing to a String cannot fail");
        (out, prometheus_client::encoding::prometheus_text::CONTENT_TYPE)
    }
}

type Labels = Vec<(&'static str, String)>;
/// A metric family read off each API's numbers: name, help and the field.
type ApiFamily = (&'static str, &'static str, fn(&crate::metrics::ApiSnapshot) -> &Buckets);
/// A per-partition gauge: name, help and the field.
type PartitionFamily = (&'static str, &'static str, fn(&crate::metrics::PartitionSnapshot) -> i64);

/// Buckets as the encoder takes them: (upper bound scaled by `scale`, count
/// in that bucket), ending with +Inf; the encoder makes them cumulative.
fn scaled(b: &Buckets, bounds: &[u64], scale: f64) -> Vec<(f64, u64)> {
    let uppers = bounds.iter().map(|u| *u as f64 * scale).chain([f64::INFINITY]);
    uppers.zip(b.per_bucket.iter().copied()).collect()
}

/// Writes one metric family at a time.
struct Families<'a>(DescriptorEncoder<'a>);

impl Families<'_> {
    fn counter<V: prometheus_client::encoding::EncodeCounterValue>(
        &mut self,
        name: &str,
        help: &str,
        rows: impl IntoIterator<Item = (Labels, V)>,
    ) -> std::fmt::Result {
        let mut family = self.0.encode_descriptor(name, help, None, MetricType::Counter)?;
        for (labels, value) in rows {
            family.encode_family(&labels)?.encode_counter::<NoLabelSet, _, u64>(&value, None)?;
        }
        Ok(())
    }

    fn gauge<V: prometheus_client::encoding::EncodeGaugeValue>(
        &mut self,
        name: &str,
        help: &str,
        rows: impl IntoIterator<Item = (Labels, V)>,
    ) -> std::fmt::Result {
        let mut family = self.0.encode_descriptor(name, help, None, MetricType::Gauge)?;
        for (labels, value) in rows {
            family.encode_family(&labels)?.encode_gauge(&value)?;
        }
        Ok(())
    }

    fn histogram<'h>(
        &mut self,
        name: &str,
        help: &str,
        bounds: &[u64],
        scale: f64,
        rows: impl IntoIterator<Item = (Labels, &'h Buckets)>,
    ) -> std::fmt::Result {
        let mut family = self.0.encode_descriptor(name, help, None, MetricType::Histogram)?;
        for (labels, b) in rows {
            let buckets = scaled(b, bounds, scale);
            family.encode_family(&labels)?.encode_histogram::<NoLabelSet>(b.sum * scale, b.count, &buckets, None)?;
        }
        Ok(())
    }
}

fn shard_label(s: &ShardSnapshot) -> Labels {
    vec![("shard", s.shard.to_string())]
}

fn api_name(api_key: i16) -> String {
    ApiKey::try_from(api_key).map(|k| format!("{k:?}")).unwrap_or_else(|_| api_key.to_string())
}

impl Collector for Scrape {
    fn encode(&self, encoder: DescriptorEncoder) -> std::fmt::Result {
        let mut f = Families(encoder);
        let shards = &self.shards;
        let per_shard = |value: fn(&ShardSnapshot) -> u64| shards.iter().map(move |s| (shard_label(s), value(s)));

        let info = prometheus_client::metrics::info::Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]);
        info.encode(f.0.encode_descriptor("build", "The running Sluice version.", None, info.metric_type())?)?;
        f.gauge("uptime_seconds", "Seconds since the broker started.", [(Labels::new(), self.uptime_seconds)])?;
        let up = shards.iter().map(|s| (shard_label(s), 1i64));
        let down = self.missing.iter().map(|id| (vec![("shard", id.to_string())], 0i64));
        f.gauge("shard_up", "1 if the shard answered this scrape.", up.chain(down))?;

        f.counter("messages_in", "Records appended (Kafka: MessagesInPerSec).", per_shard(|s| s.counters.messages_in))?;
        f.counter(
            "bytes_in",
            "Record batch bytes appended (Kafka: BytesInPerSec).",
            per_shard(|s| s.counters.bytes_in),
        )?;
        f.counter("messages_out", "Records sent to fetchers.", per_shard(|s| s.counters.messages_out))?;
        f.counter(
            "bytes_out",
            "Record batch bytes sent to fetchers (Kafka: BytesOutPerSec).",
            per_shard(|s| s.counters.bytes_out),
        )?;
        f.counter(
            "produce_requests",
            "Partition appends asked for (Kafka: TotalProduceRequestsPerSec).",
            per_shard(|s| s.counters.produce_requests),
        )?;
        f.counter(
            "failed_produce_requests",
            "Partition appends that failed (Kafka: FailedProduceRequestsPerSec).",
            per_shard(|s| s.counters.failed_produce_requests),
        )?;
        f.counter(
            "fetch_requests",
            "Partition reads asked for (Kafka: TotalFetchRequestsPerSec).",
            per_shard(|s| s.counters.fetch_requests),
        )?;
        f.counter(
            "failed_fetch_requests",
            "Partition reads that failed (Kafka: FailedFetchRequestsPerSec).",
            per_shard(|s| s.counters.failed_fetch_requests),
        )?;

        let apis = || shards.iter().flat_map(|s| s.counters.apis.iter().map(move |a| (s.shard, a)));
        let api_labels =
            |shard: usize, api_key: i16| vec![("shard", shard.to_string()), ("request", api_name(api_key))];
        f.counter(
            "requests",
            "Requests answered, per API (Kafka: RequestMetrics RequestsPerSec).",
            apis().map(|(s, a)| (api_labels(s, a.api_key), a.requests)),
        )?;
        let latency: [ApiFamily; 5] = [
            (
                "request_total_time_seconds",
                "From the request read whole to its answer written (Kafka: TotalTimeMs).",
                |a| &a.total,
            ),
            (
                "request_queue_time_seconds",
                "From the request read whole to its handler starting (Kafka: RequestQueueTimeMs).",
                |a| &a.queue,
            ),
            (
                "request_local_time_seconds",
                "The handler, including its fdatasync or long-poll wait (Kafka: LocalTimeMs + RemoteTimeMs).",
                |a| &a.local,
            ),
            (
                "response_queue_time_seconds",
                "From the answer ready to its turn on the connection (Kafka: ResponseQueueTimeMs).",
                |a| &a.response_queue,
            ),
            ("response_send_time_seconds", "Writing the answer to the socket (Kafka: ResponseSendTimeMs).", |a| {
                &a.send
            }),
        ];
        for (name, help, pick) in latency {
            f.histogram(
                name,
                help,
                &LATENCY_BUCKETS_US,
                1e-6,
                apis().map(|(s, a)| (api_labels(s, a.api_key), pick(a))),
            )?;
        }

        f.histogram(
            "log_flush_time_seconds",
            "fdatasync of segment files (Kafka: LogFlushRateAndTimeMs).",
            &LATENCY_BUCKETS_US,
            1e-6,
            shards.iter().map(|s| (shard_label(s), &s.counters.sync_us)),
        )?;
        f.histogram(
            "log_write_time_seconds",
            "O_DIRECT writes of segment files, one per run of appends.",
            &LATENCY_BUCKETS_US,
            1e-6,
            shards.iter().map(|s| (shard_label(s), &s.counters.write_us)),
        )?;
        f.histogram(
            "mesh_hop_time_seconds",
            "From a message's send on one shard to its arrival on another (calls and their answers).",
            &LATENCY_BUCKETS_US,
            1e-6,
            shards.iter().map(|s| (shard_label(s), &s.counters.mesh_hop_us)),
        )?;
        f.histogram(
            "log_flush_batch_appends",
            "Appends acknowledged by one fdatasync (group commit).",
            &BATCH_SIZE_BUCKETS,
            1.0,
            shards.iter().map(|s| (shard_label(s), &s.counters.sync_batch_appends)),
        )?;
        f.counter(
            "dma_write_bytes",
            "Bytes written to segments with O_DIRECT (whole blocks).",
            per_shard(|s| s.counters.io_write_bytes),
        )?;
        f.counter(
            "dma_read_bytes",
            "Bytes read from segments with O_DIRECT.",
            per_shard(|s| s.counters.io_read_bytes),
        )?;
        f.counter(
            "tail_cache_reads",
            "Partition reads served from the tail cache.",
            per_shard(|s| s.counters.cache_reads),
        )?;
        f.counter("disk_reads", "Partition reads that went to disk.", per_shard(|s| s.counters.disk_reads))?;
        f.counter(
            "batch_cache_reads",
            "Partition reads served from the shard's batch cache of earlier disk reads.",
            per_shard(|s| s.counters.batch_cache_reads),
        )?;
        f.counter(
            "read_ahead_reads",
            "Disk reads started ahead of a sequential reader.",
            per_shard(|s| s.counters.read_ahead_reads),
        )?;
        f.gauge(
            "batch_cache_bytes",
            "Bytes of batches read from disk that the shard keeps.",
            per_shard(|s| s.counters.batch_cache_bytes),
        )?;
        f.gauge(
            "tail_cache_bytes",
            "Bytes of recently appended batches the shard's partitions keep to serve tail reads.",
            per_shard(|s| s.counters.tail_cache_bytes),
        )?;
        f.counter(
            "cleaner_passes",
            "Cleaning passes of compacted partitions finished.",
            per_shard(|s| s.counters.cleaner_passes),
        )?;
        f.counter(
            "cleaner_removed_bytes",
            "Bytes cleaning passes removed from compacted partitions.",
            per_shard(|s| s.counters.cleaner_bytes_removed),
        )?;
        f.counter(
            "cleaner_failures",
            "Cleaning passes that failed; the partition is not cleaned again until a restart.",
            per_shard(|s| s.counters.cleaner_failures),
        )?;

        f.counter("mesh_calls", "Calls sent to other shards.", per_shard(|s| s.counters.mesh_calls))?;
        f.counter(
            "replica_connections",
            "Followers' replica-fetch connections served on the shard that owns their partition.",
            per_shard(|s| s.counters.replica_connections),
        )?;
        f.gauge("mesh_calls_pending", "Calls to other shards awaiting their answer.", per_shard(|s| s.calls_pending))?;
        f.counter(
            "shard_busy_seconds",
            "Time the shard's executor ran tasks or polled I/O; its rate is the busy share.",
            shards.iter().map(|s| (shard_label(s), s.counters.busy_us as f64 / 1e6)),
        )?;
        f.gauge(
            "request_bytes_held",
            "Request bytes read and not yet answered; reading pauses at the shard's budget.",
            per_shard(|s| s.request_bytes_held),
        )?;
        f.gauge(
            "connections",
            "Client connections open (Kafka: connection-count).",
            per_shard(|s| s.counters.connections_open),
        )?;
        f.counter(
            "connections_accepted",
            "Client connections accepted (Kafka: connection-creation-total).",
            per_shard(|s| s.counters.connections_accepted),
        )?;
        f.counter(
            "connections_refused",
            "Client connections closed at once because max.connections was reached.",
            per_shard(|s| s.counters.connections_refused),
        )?;
        f.counter(
            "tls_handshakes_failed",
            "TLS handshakes that failed or timed out (Kafka: failed-authentication-total counts these too).",
            per_shard(|s| s.counters.tls_handshakes_failed),
        )?;
        f.counter(
            "authentications_failed",
            "Logins refused (Kafka: failed-authentication-total).",
            per_shard(|s| s.counters.authentications_failed),
        )?;
        f.counter(
            "authentications_succeeded",
            "SASL logins and re-logins accepted (Kafka: successful-authentication-total).",
            per_shard(|s| s.counters.authentications_succeeded),
        )?;

        f.gauge("partitions", "Partitions the shard owns.", per_shard(|s| s.partitions.len() as u64))?;
        f.gauge(
            "log_size_bytes",
            "Bytes of the shard's partition logs (Kafka: Log Size, summed).",
            per_shard(|s| s.partitions.iter().map(|p| p.size_bytes).sum()),
        )?;
        f.gauge("groups", "Consumer groups the shard coordinates.", per_shard(|s| s.groups))?;
        f.gauge("transactions_open", "Transactions ongoing or prepared.", per_shard(|s| s.txns.open))?;
        f.counter("transactions_committed", "Transactions committed since start.", per_shard(|s| s.txns.committed))?;
        f.counter("transactions_aborted", "Transactions aborted since start.", per_shard(|s| s.txns.aborted))?;

        // Group lag is against the partition's high watermark, as Kafka's tools report it.
        let high_watermarks: HashMap<(&str, i32), i64> = shards
            .iter()
            .flat_map(|s| s.partitions.iter().map(|p| ((p.topic.as_str(), p.partition), p.high_watermark)))
            .collect();
        let group_rows = || {
            shards.iter().flat_map(|s| s.group_offsets.iter()).map(|o| {
                let labels = vec![
                    ("group", o.group.clone()),
                    ("topic", o.topic.clone()),
                    ("partition", o.partition.to_string()),
                ];
                (labels, o)
            })
        };
        f.gauge(
            "group_committed_offset",
            "A group's committed offset of a partition.",
            group_rows().map(|(l, o)| (l, o.offset)),
        )?;
        f.gauge(
            "group_lag",
            "High watermark minus the group's committed offset (Kafka: records-lag as kafka-consumer-groups.sh shows it).",
            group_rows().filter_map(|(l, o)| {
                high_watermarks.get(&(o.topic.as_str(), o.partition)).map(|hw| (l, (hw - o.offset).max(0)))
            }),
        )?;

        if let Some(t) = &self.telemetry {
            encode_telemetry(&mut f, t)?;
        }

        if self.partitions_enabled {
            let partition_rows = || {
                shards.iter().flat_map(|s| {
                    s.partitions.iter().map(move |p| {
                        let labels = vec![
                            ("shard", s.shard.to_string()),
                            ("topic", p.topic.clone()),
                            ("partition", p.partition.to_string()),
                        ];
                        (labels, p)
                    })
                })
            };
            let per_partition: [PartitionFamily; 6] = [
                ("partition_log_start_offset", "First offset of the partition (Kafka: LogStartOffset).", |p| {
                    p.log_start_offset
                }),
                ("partition_log_end_offset", "Offset the next record gets (Kafka: LogEndOffset).", |p| {
                    p.log_end_offset
                }),
                ("partition_high_watermark", "Offset up to which records are synced and readable.", |p| {
                    p.high_watermark
                }),
                ("partition_last_stable_offset", "Offset below which no transaction is open.", |p| {
                    p.last_stable_offset
                }),
                ("partition_size_bytes", "Bytes of the partition's segments (Kafka: Size).", |p| p.size_bytes as i64),
                ("partition_segments", "Segments of the partition (Kafka: NumLogSegments).", |p| p.segments as i64),
            ];
            for (name, help, pick) in per_partition {
                f.gauge(name, help, partition_rows().map(|(l, p)| (l, pick(p))))?;
            }
        }
        Ok(())
    }
}

/// Client telemetry: the broker's counts (Kafka's `client-metrics` group)
/// and the latest value of every series each client instance pushed.
fn encode_telemetry(f: &mut Families<'_>, t: &Telemetry) -> std::fmt::Result {
    let c = &t.counters;
    let none = || Labels::new();
    f.gauge(
        "client_telemetry_instances",
        "Client instances with telemetry state (Kafka: client-metrics instance-count).",
        [(none(), t.clients.len() as u64)],
    )?;
    f.counter("client_telemetry_pushes", "PushTelemetry requests accepted.", [(none(), c.pushes_accepted)])?;
    f.counter(
        "client_telemetry_unknown_subscription_requests",
        "Pushes refused with UNKNOWN_SUBSCRIPTION_ID (Kafka: unknown-subscription-request).",
        [(none(), c.unknown_subscription_requests)],
    )?;
    f.counter(
        "client_telemetry_throttled_requests",
        "Telemetry requests refused as earlier than the push interval (Kafka: throttle).",
        [(none(), c.throttled_requests)],
    )?;
    f.counter(
        "client_telemetry_errors",
        "Pushes whose payload could not be decompressed or decoded (Kafka: plugin-error).",
        [(none(), c.export_errors)],
    )?;
    f.counter(
        "client_telemetry_series_dropped",
        "Pushed series not kept: past the per-client or broker-wide series bound.",
        [(none(), c.series_dropped)],
    )?;
    let rows = t.clients.iter().flat_map(|client| {
        client.series.iter().map(move |(name, attributes, value)| {
            let labels = vec![
                ("client_instance_id", client.client_instance_id.clone()),
                ("client_id", client.client_id.clone()),
                ("client_software_name", client.software_name.clone()),
                ("name", name.clone()),
                ("attributes", attributes.clone()),
            ];
            (labels, *value)
        })
    });
    f.gauge(
        "client_metric",
        "The latest value a client pushed of a metric (KIP-714; sums are per push interval, delta temporality).",
        rows,
    )
}
