//! Client telemetry (KIP-714): the client metrics subscriptions stored in
//! the catalog ([`subscription`]), the state of each client instance that
//! asks for them, and the latest value of each metric it pushed, decoded
//! from OTLP ([`otlp`]).
//!
//! One [`ClientMetricsManager`] per broker, on the controller's shard:
//! GetTelemetrySubscriptions and PushTelemetry are sent there, and the admin
//! listener (same shard) reads it. It owns no clock: every call is given
//! `now_ms`, so its rules (Kafka's `ClientMetricsManager` and
//! `ClientMetricsInstance`) are tested here alone.
//!
//! Bounds: [`TELEMETRY_CLIENTS_MAX`] instances (the least recently seen is
//! dropped), [`TELEMETRY_SERIES_PER_CLIENT_MAX`] series per instance and
//! [`TELEMETRY_SERIES_MAX`] in all (new series past them are dropped and
//! counted), pushes no larger than `telemetry.max.bytes` before and after
//! decompression, and instances forgotten after max(60 s, 3 push intervals)
//! without a request, as Kafka does.

pub mod otlp;
pub mod subscription;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use sluice_core::constants::{
    TELEMETRY_CLIENTS_MAX, TELEMETRY_EXPIRY_MS_MIN, TELEMETRY_LABEL_BYTES_MAX, TELEMETRY_SERIES_MAX,
    TELEMETRY_SERIES_PER_CLIENT_MAX,
};
use sluice_protocol::{compression, ResponseError};
use uuid::Uuid;

pub use subscription::{ClientAttributes, Subscribed, Subscription};

/// The compression types a client may push with, in the broker's order of
/// preference (Kafka's `SUPPORTED_COMPRESSION_TYPES`: zstd, lz4, gzip, snappy).
pub const ACCEPTED_COMPRESSION_TYPES: [i8; 4] = [4, 3, 1, 2];

/// A refused telemetry request: Kafka's error code and message.
pub type TelemetryError = (ResponseError, String);

/// The subscription configs as the catalog stores them: name -> config -> value.
pub type SubscriptionConfigs = BTreeMap<String, BTreeMap<String, String>>;

/// What GetTelemetrySubscriptions answers.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionsAnswer {
    pub error: Option<TelemetryError>,
    pub client_instance_id: Uuid,
    pub subscribed: Subscribed,
    pub telemetry_max_bytes: i32,
}

/// A PushTelemetry request's fields.
#[derive(Debug, Clone)]
pub struct Push<'a> {
    pub client_instance_id: Uuid,
    pub subscription_id: i32,
    pub terminating: bool,
    pub compression_type: i8,
    pub metrics: &'a [u8],
}

/// The latest value of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub value: f64,
    pub kind: otlp::PointKind,
    pub updated_ms: u64,
}

/// One client instance's state (Kafka's `ClientMetricsInstance`) and metrics.
#[derive(Debug, Clone)]
struct Instance {
    attributes: ClientAttributes,
    subscribed: Subscribed,
    subscription_version: u64,
    last_get_ms: u64,
    last_push_ms: u64,
    terminating: bool,
    last_error: Option<ResponseError>,
    last_seen_ms: u64,
    expires_ms: u64,
    /// The client's own resource attributes from its last push.
    resource: Vec<(String, String)>,
    /// (metric name, point attributes) -> latest value.
    series: BTreeMap<(String, String), Series>,
    pushes: u64,
    last_push_accepted_ms: Option<u64>,
}

impl Instance {
    /// Kafka's `maybeUpdateGetRequestTimestamp`.
    fn get_allowed(&mut self, now_ms: u64) -> bool {
        let last = self.last_get_ms.max(self.last_push_ms);
        if now_ms.saturating_sub(last) >= self.subscribed.push_interval_ms as u64 {
            self.last_get_ms = now_ms;
            return true;
        }
        false
    }

    /// Kafka's `maybeUpdatePushRequestTimestamp`: the first push after a
    /// GetTelemetrySubscriptions is always in time (clients add jitter).
    fn push_allowed(&mut self, now_ms: u64) -> bool {
        let allowed = self.last_get_ms > self.last_push_ms
            || now_ms.saturating_sub(self.last_push_ms) >= self.subscribed.push_interval_ms as u64;
        if allowed {
            self.last_push_ms = now_ms;
        }
        allowed
    }
}

/// What the admin listener shows of one client instance.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientSnapshot {
    pub client_instance_id: String,
    pub client_id: String,
    pub software_name: String,
    pub software_version: String,
    pub source_address: String,
    pub push_interval_ms: i32,
    pub subscribed_metrics: Vec<String>,
    pub pushes: u64,
    pub last_push_ms: Option<u64>,
    pub terminating: bool,
    pub resource: Vec<(String, String)>,
    /// (metric name, point attributes, latest value), by name.
    pub series: Vec<(String, String, f64)>,
}

/// What the broker counts about telemetry (Kafka's `client-metrics` group).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TelemetryCounters {
    pub pushes_accepted: u64,
    pub unknown_subscription_requests: u64,
    pub throttled_requests: u64,
    pub export_errors: u64,
    pub series_dropped: u64,
}

/// The broker's client metrics state.
#[derive(Debug)]
pub struct ClientMetricsManager {
    telemetry_max_bytes: usize,
    /// The configs the subscriptions were parsed from (compared by pointer).
    source: Arc<SubscriptionConfigs>,
    subscriptions: Vec<Subscription>,
    subscription_version: u64,
    instances: HashMap<Uuid, Instance>,
    series_total: usize,
    pub counters: TelemetryCounters,
}

fn cut(mut text: String) -> String {
    if text.len() > TELEMETRY_LABEL_BYTES_MAX {
        let mut end = TELEMETRY_LABEL_BYTES_MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

impl ClientMetricsManager {
    pub fn new(telemetry_max_bytes: usize) -> ClientMetricsManager {
        ClientMetricsManager {
            telemetry_max_bytes,
            source: Arc::default(),
            subscriptions: Vec::new(),
            subscription_version: 0,
            instances: HashMap::new(),
            series_total: 0,
            counters: TelemetryCounters::default(),
        }
    }

    /// Adopts the catalog's subscriptions if they changed: every instance is
    /// then re-evaluated on its next request, as Kafka's subscription version does.
    pub fn update_subscriptions(&mut self, configs: &Arc<SubscriptionConfigs>) {
        if Arc::ptr_eq(&self.source, configs) {
            return;
        }
        let mut parsed = Vec::with_capacity(configs.len());
        for (name, values) in configs.iter() {
            match subscription::parse(name, values) {
                Ok(s) => parsed.push(s),
                // Checked when stored; a stored one that no longer parses is skipped.
                Err((_, e)) => tracing::error!(subscription = %name, error = %e, "client metrics subscription ignored"),
            }
        }
        self.source = configs.clone();
        self.subscriptions = parsed;
        self.subscription_version += 1;
    }

    /// Instances known.
    pub fn instances(&self) -> usize {
        self.instances.len()
    }

    /// Kafka's `clientInstance`: the instance, created (or re-evaluated
    /// after a subscription change) from `attributes`, its expiry pushed on.
    fn instance(&mut self, id: Uuid, attributes: ClientAttributes, now_ms: u64) -> &mut Instance {
        let version = self.subscription_version;
        let stale = self.instances.get(&id).is_none_or(|i| i.subscription_version < version);
        if stale {
            if !self.instances.contains_key(&id) && self.instances.len() >= TELEMETRY_CLIENTS_MAX {
                self.evict_least_recent();
            }
            let attributes = match self.instances.get(&id) {
                Some(existing) => existing.attributes.clone(),
                None => ClientAttributes { client_instance_id: id, ..attributes },
            };
            let subscribed = subscription::subscribe(&self.subscriptions, &attributes);
            let instance = self.instances.entry(id).or_insert_with(|| Instance {
                attributes: attributes.clone(),
                subscribed: subscribed.clone(),
                subscription_version: version,
                last_get_ms: 0,
                last_push_ms: 0,
                terminating: false,
                last_error: None,
                last_seen_ms: now_ms,
                expires_ms: now_ms,
                resource: Vec::new(),
                series: BTreeMap::new(),
                pushes: 0,
                last_push_accepted_ms: None,
            });
            // Re-evaluated: a new Kafka instance (timestamps and error reset), the metrics kept.
            instance.subscribed = subscribed;
            instance.subscription_version = version;
            instance.last_get_ms = 0;
            instance.last_push_ms = 0;
            instance.terminating = false;
            instance.last_error = None;
        }
        let instance = self.instances.get_mut(&id).expect("inserted above");
        let expiry = TELEMETRY_EXPIRY_MS_MIN.max(3 * instance.subscribed.push_interval_ms as u64);
        instance.last_seen_ms = now_ms;
        instance.expires_ms = now_ms + expiry;
        instance
    }

    fn evict_least_recent(&mut self) {
        if let Some(id) = self.instances.iter().min_by_key(|(_, i)| i.last_seen_ms).map(|(id, _)| *id) {
            self.remove(&id);
        }
    }

    fn remove(&mut self, id: &Uuid) {
        if let Some(instance) = self.instances.remove(id) {
            self.series_total -= instance.series.len();
        }
    }

    /// Forgets the instances whose expiry passed.
    pub fn expire(&mut self, now_ms: u64) {
        let expired: Vec<Uuid> =
            self.instances.iter().filter(|(_, i)| i.expires_ms <= now_ms).map(|(id, _)| *id).collect();
        for id in expired {
            self.remove(&id);
        }
    }

    /// GetTelemetrySubscriptions: a zero id gets a new one; asking again
    /// before the push interval passed is THROTTLING_QUOTA_EXCEEDED, unless
    /// the last push was refused for its subscription id or compression.
    pub fn get_subscriptions(
        &mut self,
        now_ms: u64,
        client_instance_id: Uuid,
        attributes: ClientAttributes,
    ) -> SubscriptionsAnswer {
        self.expire(now_ms);
        let id = if client_instance_id.is_nil() { self.new_instance_id() } else { client_instance_id };
        let telemetry_max_bytes = self.telemetry_max_bytes.min(i32::MAX as usize) as i32;
        let instance = self.instance(id, attributes, now_ms);
        let exempt = matches!(
            instance.last_error,
            Some(ResponseError::UnknownSubscriptionId | ResponseError::UnsupportedCompressionType)
        );
        if !instance.get_allowed(now_ms) && !exempt {
            self.counters.throttled_requests += 1;
            let message = format!(
                "Request from the client [{}] arrived before the next push interval time",
                subscription::java_uuid_string(client_instance_id)
            );
            return SubscriptionsAnswer {
                error: Some((ResponseError::ThrottlingQuotaExceeded, message)),
                client_instance_id: Uuid::nil(),
                subscribed: Subscribed { metrics: Vec::new(), push_interval_ms: 0, subscription_id: 0 },
                telemetry_max_bytes: 0,
            };
        }
        instance.last_error = None;
        SubscriptionsAnswer {
            error: None,
            client_instance_id: id,
            subscribed: instance.subscribed.clone(),
            telemetry_max_bytes,
        }
    }

    fn new_instance_id(&self) -> Uuid {
        loop {
            let id = Uuid::new_v4();
            if !self.instances.contains_key(&id) {
                return id;
            }
        }
    }

    /// PushTelemetry, checked in Kafka's order (terminated, too early,
    /// subscription id, compression type, size), then decompressed and
    /// decoded; the latest value of each series is kept.
    pub fn push(&mut self, now_ms: u64, push: Push<'_>, attributes: ClientAttributes) -> Result<(), TelemetryError> {
        self.expire(now_ms);
        let id = push.client_instance_id;
        let id_text = subscription::java_uuid_string(id);
        // Kafka's reserved ids: zero and the metadata topic's id (1).
        if id.is_nil() || id == Uuid::from_u64_pair(0, 1) {
            let message = format!("Invalid request from the client [{id_text}], invalid client instance id");
            return Err((ResponseError::InvalidRequest, message));
        }
        let max_bytes = self.telemetry_max_bytes;
        let instance = self.instance(id, attributes, now_ms);
        let checked = Self::check_push(instance, &push, now_ms, max_bytes, &id_text);
        instance.terminating = push.terminating;
        if let Err((code, message)) = checked {
            instance.last_error = Some(code);
            match code {
                ResponseError::ThrottlingQuotaExceeded => self.counters.throttled_requests += 1,
                ResponseError::UnknownSubscriptionId => self.counters.unknown_subscription_requests += 1,
                _ => {}
            }
            return Err((code, message));
        }
        if !push.metrics.is_empty() {
            let decoded = compression::decompress(i16::from(push.compression_type), push.metrics, max_bytes)
                .map_err(|e| match e {
                    sluice_protocol::records::RecordsError::TooLarge { .. } => ResponseError::TelemetryTooLarge,
                    _ => ResponseError::InvalidRecord,
                })
                .and_then(|bytes| {
                    otlp::decode(&bytes, TELEMETRY_SERIES_PER_CLIENT_MAX).map_err(|_| ResponseError::InvalidRecord)
                });
            let (decoded, dropped) = match decoded {
                Ok(d) => d,
                Err(code) => {
                    self.counters.export_errors += 1;
                    let instance = self.instances.get_mut(&id).expect("looked up above");
                    instance.last_error = Some(code);
                    return Err((code, code.to_string()));
                }
            };
            self.counters.series_dropped += dropped as u64;
            self.store(id, decoded, now_ms);
        }
        let instance = self.instances.get_mut(&id).expect("looked up above");
        instance.last_error = None;
        instance.pushes += 1;
        instance.last_push_accepted_ms = Some(now_ms);
        self.counters.pushes_accepted += 1;
        Ok(())
    }

    fn check_push(
        instance: &mut Instance,
        push: &Push<'_>,
        now_ms: u64,
        max_bytes: usize,
        id: &str,
    ) -> Result<(), TelemetryError> {
        if instance.terminating {
            let message = format!(
                "Client [{id}] sent the previous request with state terminating to TRUE, can not acceptany requests after that"
            );
            return Err((ResponseError::InvalidRequest, message));
        }
        if !instance.push_allowed(now_ms) && !push.terminating {
            let message = format!("Request from the client [{id}] arrived before the next push interval time");
            return Err((ResponseError::ThrottlingQuotaExceeded, message));
        }
        if push.subscription_id != instance.subscribed.subscription_id {
            return Err((
                ResponseError::UnknownSubscriptionId,
                format!("Unknown client subscription id for the client [{id}]"),
            ));
        }
        if !(0..=4).contains(&push.compression_type) {
            let message = format!(
                "Unknown compression type [{}] is received in telemetry request from [{id}]",
                push.compression_type
            );
            return Err((ResponseError::UnsupportedCompressionType, message));
        }
        if push.metrics.len() > max_bytes {
            let message =
                format!("Telemetry request from [{id}] is larger than the maximum allowed size [{max_bytes}]");
            return Err((ResponseError::TelemetryTooLarge, message));
        }
        Ok(())
    }

    fn store(&mut self, id: Uuid, decoded: otlp::Decoded, now_ms: u64) {
        let Some(instance) = self.instances.get_mut(&id) else { return };
        instance.resource = decoded.resource.into_iter().take(64).map(|(k, v)| (cut(k), cut(v))).collect();
        let mut dropped = 0u64;
        for point in decoded.points {
            let key = (cut(point.name), cut(point.attributes));
            let series = Series { value: point.value, kind: point.kind, updated_ms: now_ms };
            if let Some(existing) = instance.series.get_mut(&key) {
                *existing = series;
            } else if instance.series.len() < TELEMETRY_SERIES_PER_CLIENT_MAX
                && self.series_total < TELEMETRY_SERIES_MAX
            {
                instance.series.insert(key, series);
                self.series_total += 1;
            } else {
                dropped += 1;
            }
        }
        self.counters.series_dropped += dropped;
    }

    /// Every instance, by client id then instance id.
    pub fn snapshot(&self) -> Vec<ClientSnapshot> {
        let mut clients: Vec<ClientSnapshot> = self
            .instances
            .iter()
            .map(|(id, i)| ClientSnapshot {
                client_instance_id: subscription::java_uuid_string(*id),
                client_id: i.attributes.client_id.clone(),
                software_name: i.attributes.software_name.clone().unwrap_or_default(),
                software_version: i.attributes.software_version.clone().unwrap_or_default(),
                source_address: i.attributes.source_address.clone(),
                push_interval_ms: i.subscribed.push_interval_ms,
                subscribed_metrics: i.subscribed.metrics.clone(),
                pushes: i.pushes,
                last_push_ms: i.last_push_accepted_ms,
                terminating: i.terminating,
                resource: i.resource.clone(),
                series: i.series.iter().map(|((n, a), s)| (n.clone(), a.clone(), s.value)).collect(),
            })
            .collect();
        clients.sort_by(|a, b| (&a.client_id, &a.client_instance_id).cmp(&(&b.client_id, &b.client_instance_id)));
        clients
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's clock is the wall clock: a first request is never early.
    const T0: u64 = 1_700_000_000_000;

    fn configs(subs: &[(&str, &[(&str, &str)])]) -> Arc<SubscriptionConfigs> {
        Arc::new(
            subs.iter()
                .map(|(n, c)| (n.to_string(), c.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()))
                .collect(),
        )
    }

    fn client(id: &str) -> ClientAttributes {
        ClientAttributes { client_id: id.into(), software_name: Some("apache-kafka-java".into()), ..Default::default() }
    }

    fn manager() -> ClientMetricsManager {
        let mut m = ClientMetricsManager::new(1024 * 1024);
        m.update_subscriptions(&configs(&[(
            "producers",
            &[("metrics", "org.apache.kafka.producer."), ("interval.ms", "1000")],
        )]));
        m
    }

    fn push(id: Uuid, subscription_id: i32, metrics: &[u8]) -> Push<'_> {
        Push { client_instance_id: id, subscription_id, terminating: false, compression_type: 0, metrics }
    }

    #[test]
    fn a_new_client_gets_an_id_and_its_subscription() {
        let mut m = manager();
        let answer = m.get_subscriptions(T0 + 1_000, Uuid::nil(), client("p"));
        assert!(answer.error.is_none());
        assert!(!answer.client_instance_id.is_nil());
        assert_eq!(answer.subscribed.metrics, ["org.apache.kafka.producer."]);
        assert_eq!(answer.subscribed.push_interval_ms, 1000);
        assert_eq!(answer.telemetry_max_bytes, 1024 * 1024);
        let again = m.get_subscriptions(T0 + 1_500, answer.client_instance_id, client("p"));
        assert_eq!(again.error.unwrap().0, ResponseError::ThrottlingQuotaExceeded);
        let later = m.get_subscriptions(T0 + 2_000, answer.client_instance_id, client("p"));
        assert!(later.error.is_none());
    }

    #[test]
    fn no_match_is_no_metrics_at_the_default_interval() {
        let mut m = ClientMetricsManager::new(1024);
        m.update_subscriptions(&configs(&[("only", &[("metrics", "*"), ("match", "client_id=other")])]));
        let answer = m.get_subscriptions(T0, Uuid::nil(), client("p"));
        assert!(answer.subscribed.metrics.is_empty());
        assert_eq!(answer.subscribed.push_interval_ms, subscription::INTERVAL_MS_DEFAULT);
    }

    #[test]
    fn pushes_are_checked_in_kafkas_order_and_stored() {
        let mut m = manager();
        let got = m.get_subscriptions(T0 + 10_000, Uuid::nil(), client("p"));
        let id = got.client_instance_id;
        let sub = got.subscribed.subscription_id;
        let payload = otlp::tests::sample("p");
        assert_eq!(
            m.push(T0 + 10_100, push(id, sub ^ 1, &payload), client("p")).unwrap_err().0,
            ResponseError::UnknownSubscriptionId
        );
        // The get after an unknown subscription id is not throttled.
        let got = m.get_subscriptions(T0 + 10_200, id, client("p"));
        assert!(got.error.is_none());
        // As Kafka: that get does not reset the push clock, so the next push waits an interval.
        assert_eq!(
            m.push(T0 + 10_300, push(id, sub, &payload), client("p")).unwrap_err().0,
            ResponseError::ThrottlingQuotaExceeded
        );
        m.push(T0 + 11_200, push(id, sub, &payload), client("p")).unwrap();
        assert_eq!(
            m.push(T0 + 11_300, push(id, sub, &payload), client("p")).unwrap_err().0,
            ResponseError::ThrottlingQuotaExceeded
        );
        m.push(T0 + 12_300, push(id, sub, &payload), client("p")).unwrap();
        let snapshot = m.snapshot();
        assert_eq!(snapshot.len(), 1);
        assert_eq!(snapshot[0].client_id, "p");
        assert_eq!(snapshot[0].pushes, 2);
        assert!(snapshot[0]
            .series
            .iter()
            .any(|(n, _, v)| n == "org.apache.kafka.producer.record.queue.time.max" && *v == 12.5));
        let bad_codec = Push { compression_type: 9, ..push(id, sub, &payload) };
        assert_eq!(
            m.push(T0 + 13_400, bad_codec, client("p")).unwrap_err().0,
            ResponseError::UnsupportedCompressionType
        );
        assert_eq!(
            m.push(T0 + 14_500, push(id, sub, &[0xff; 8]), client("p")).unwrap_err().0,
            ResponseError::InvalidRecord
        );
        let last = Push { terminating: true, ..push(id, sub, &payload) };
        m.push(T0 + 15_600, last.clone(), client("p")).unwrap();
        assert_eq!(m.push(T0 + 20_000, last, client("p")).unwrap_err().0, ResponseError::InvalidRequest);
    }

    #[test]
    fn too_large_before_and_after_decompression() {
        let mut m = ClientMetricsManager::new(64);
        m.update_subscriptions(&configs(&[("all", &[("metrics", "*")])]));
        let got = m.get_subscriptions(T0, Uuid::nil(), client("p"));
        let (id, sub) = (got.client_instance_id, got.subscribed.subscription_id);
        let big = vec![0u8; 65];
        assert_eq!(m.push(T0 + 1, push(id, sub, &big), client("p")).unwrap_err().0, ResponseError::TelemetryTooLarge);
        let zipped = compression::compress(compression::GZIP, &[0u8; 1000]).unwrap();
        assert!(zipped.len() <= 64);
        let _ = m.get_subscriptions(T0 + 400_000, id, client("p"));
        let gz = Push { compression_type: 1, ..push(id, sub, &zipped) };
        assert_eq!(m.push(T0 + 400_001, gz, client("p")).unwrap_err().0, ResponseError::TelemetryTooLarge);
    }

    #[test]
    fn a_subscription_change_reevaluates_and_instances_expire() {
        let mut m = manager();
        let got = m.get_subscriptions(T0, Uuid::nil(), client("p"));
        m.update_subscriptions(&configs(&[("producers", &[("metrics", "*"), ("interval.ms", "500")])]));
        let again = m.get_subscriptions(T0 + 100, got.client_instance_id, client("p"));
        assert!(again.error.is_none(), "a changed subscription is answered at once");
        assert_eq!(again.subscribed.metrics, ["*"]);
        assert_ne!(again.subscribed.subscription_id, got.subscribed.subscription_id);
        assert_eq!(m.instances(), 1);
        m.expire(T0 + 100 + TELEMETRY_EXPIRY_MS_MIN);
        assert_eq!(m.instances(), 0);
    }

    #[test]
    fn a_push_for_an_unknown_instance_is_an_unknown_subscription() {
        let mut m = manager();
        let id = Uuid::new_v4();
        assert_eq!(m.push(T0 + 5, push(id, 42, &[]), client("p")).unwrap_err().0, ResponseError::UnknownSubscriptionId);
        assert_eq!(
            m.push(T0 + 5, push(Uuid::nil(), 42, &[]), client("p")).unwrap_err().0,
            ResponseError::InvalidRequest
        );
    }
}
