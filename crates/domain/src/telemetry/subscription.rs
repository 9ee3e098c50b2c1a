//! Client metrics subscriptions: the CLIENT_METRICS config resources
//! (`kafka-configs.sh --entity-type client-metrics`), checked as Kafka's
//! `ClientMetricsConfigs` checks them, and what a client instance gets from
//! the ones that match it (Kafka's `ClientMetricsManager.createClientInstance`).

use std::collections::BTreeMap;

use regex::Regex;
use sluice_protocol::ResponseError;
use uuid::Uuid;

/// The prefix list of metrics a subscription asks for.
pub const METRICS_CONFIG: &str = "metrics";
/// How often a matched client pushes, in milliseconds.
pub const INTERVAL_MS_CONFIG: &str = "interval.ms";
/// The client selectors, `name=regex` each.
pub const MATCH_CONFIG: &str = "match";
/// The config names of a client metrics resource, in the order DescribeConfigs lists them.
pub const CONFIG_NAMES: [&str; 3] = [INTERVAL_MS_CONFIG, MATCH_CONFIG, METRICS_CONFIG];
/// `metrics=*`: every metric.
pub const ALL_SUBSCRIBED_METRICS: &str = "*";
/// Kafka's `ClientMetricsConfigs.INTERVAL_MS_DEFAULT`: 5 minutes.
pub const INTERVAL_MS_DEFAULT: i32 = 5 * 60 * 1000;
const INTERVAL_MS_MIN: i32 = 100;
const INTERVAL_MS_MAX: i32 = 3_600_000;

/// The client attributes a `match` entry may select on.
pub const MATCH_PARAMS: [&str; 6] = [
    "client_instance_id",
    "client_id",
    "client_software_name",
    "client_software_version",
    "client_source_address",
    "client_source_port",
];

/// A refused config change: Kafka's error code and message.
pub type ConfigError = (ResponseError, String);

/// Kafka's `ConfigDef` LIST parsing: comma separated, items trimmed, an
/// empty (or blank) value is the empty list.
pub fn parse_list(value: &str) -> Vec<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Vec::new();
    }
    trimmed.split(',').map(|s| s.trim().to_string()).collect()
}

/// The built-in value of a client metrics config, as DescribeConfigs shows it.
pub fn default_value(name: &str) -> Option<String> {
    match name {
        INTERVAL_MS_CONFIG => Some(INTERVAL_MS_DEFAULT.to_string()),
        MATCH_CONFIG | METRICS_CONFIG => Some(String::new()),
        _ => None,
    }
}

/// One subscription, parsed.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub name: String,
    pub metrics: Vec<String>,
    pub interval_ms: i32,
    /// (client attribute, pattern that must match all of it).
    pub matches: Vec<(String, Regex)>,
}

/// Checks the configs of subscription `name` as Kafka's
/// `ClientMetricsConfigs.validate` does, and parses them.
pub fn parse(name: &str, configs: &BTreeMap<String, String>) -> Result<Subscription, ConfigError> {
    if name.is_empty() {
        return Err((ResponseError::InvalidRequest, "Subscription name can't be empty".into()));
    }
    if let Some(key) = configs.keys().find(|k| !CONFIG_NAMES.contains(&k.as_str())) {
        return Err((ResponseError::InvalidRequest, format!("Unknown client metrics configuration: {key}")));
    }
    let interval_ms = match configs.get(INTERVAL_MS_CONFIG) {
        None => INTERVAL_MS_DEFAULT,
        Some(v) => {
            let parsed: i32 = v.trim().parse().map_err(|_| {
                (
                    ResponseError::InvalidConfig,
                    format!("Invalid value {v} for configuration {INTERVAL_MS_CONFIG}: Not a number of type INT"),
                )
            })?;
            if !(INTERVAL_MS_MIN..=INTERVAL_MS_MAX).contains(&parsed) {
                return Err((
                    ResponseError::InvalidRequest,
                    format!(
                        "Invalid value {parsed} for {INTERVAL_MS_CONFIG}, interval must be between 100 and 3600000 (1 hour)"
                    ),
                ));
            }
            parsed
        }
    };
    let metrics = configs.get(METRICS_CONFIG).map(|v| parse_list(v)).unwrap_or_default();
    let patterns = configs.get(MATCH_CONFIG).map(|v| parse_list(v)).unwrap_or_default();
    let matches = parse_matches(&patterns)?;
    Ok(Subscription { name: name.to_string(), metrics, interval_ms, matches })
}

/// Kafka's `parseMatchingPatterns`: `param=regex`, exactly one `=`, a known
/// param, a pattern that compiles. A later entry for the same param wins.
fn parse_matches(patterns: &[String]) -> Result<Vec<(String, Regex)>, ConfigError> {
    let illegal = |p: &str| (ResponseError::InvalidConfig, format!("Illegal client matching pattern: {p}"));
    let mut out: Vec<(String, Regex)> = Vec::new();
    for pattern in patterns {
        // Java's split drops trailing empty strings: "a=b=" is two parts, "a=" one.
        let mut parts: Vec<&str> = pattern.split('=').collect();
        while parts.len() > 1 && parts.last().is_some_and(|p| p.is_empty()) {
            parts.pop();
        }
        let [param, value] = parts[..] else { return Err(illegal(pattern)) };
        let param = param.trim();
        if !MATCH_PARAMS.contains(&param) {
            return Err(illegal(pattern));
        }
        // Java's `Matcher.matches`: the whole attribute must match.
        let regex = Regex::new(&format!("^(?:{})$", value.trim())).map_err(|_| illegal(pattern))?;
        out.retain(|(p, _)| p != param);
        out.push((param.to_string(), regex));
    }
    Ok(out)
}

/// What identifies a client to the `match` selectors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientAttributes {
    pub client_instance_id: Uuid,
    pub client_id: String,
    pub software_name: Option<String>,
    pub software_version: Option<String>,
    pub source_address: String,
    pub source_port: u16,
}

impl ClientAttributes {
    fn get(&self, param: &str) -> Option<String> {
        match param {
            "client_instance_id" => Some(java_uuid_string(self.client_instance_id)),
            "client_id" => Some(self.client_id.clone()),
            "client_software_name" => self.software_name.clone(),
            "client_software_version" => self.software_version.clone(),
            "client_source_address" => Some(self.source_address.clone()),
            "client_source_port" => Some(self.source_port.to_string()),
            _ => None,
        }
    }

    /// Whether every selector of `subscription` matches (no selector matches every client).
    pub fn matches(&self, subscription: &Subscription) -> bool {
        subscription.matches.iter().all(|(param, regex)| self.get(param).is_some_and(|v| regex.is_match(&v)))
    }
}

/// A Kafka `Uuid` as Kafka prints it: URL-safe base64 without padding.
pub fn java_uuid_string(id: Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// What a client instance is subscribed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribed {
    /// The metric prefixes, in the order Kafka sends them; `["*"]` for all.
    pub metrics: Vec<String>,
    pub push_interval_ms: i32,
    pub subscription_id: i32,
}

/// The subscriptions matching `client`, merged as Kafka merges them: the
/// union of their metrics (only `*` when one asks for all), the shortest
/// interval (the default when none matches), and the id that names the set.
pub fn subscribe(subscriptions: &[Subscription], client: &ClientAttributes) -> Subscribed {
    let mut push_interval_ms = INTERVAL_MS_DEFAULT;
    let mut inserted: Vec<String> = Vec::new();
    let mut all = false;
    for s in subscriptions.iter().filter(|s| client.matches(s)) {
        all |= s.metrics.iter().any(|m| m == ALL_SUBSCRIBED_METRICS);
        // Kafka keeps each subscription's metrics in a HashSet of their own.
        for m in java_hash_set_order(&s.metrics) {
            if !inserted.contains(&m) {
                inserted.push(m);
            }
        }
        push_interval_ms = push_interval_ms.min(s.interval_ms);
    }
    let metrics = if all { vec![ALL_SUBSCRIBED_METRICS.to_string()] } else { java_hash_set_order(&inserted) };
    let subscription_id = subscription_id(&metrics, push_interval_ms, client.client_instance_id);
    Subscribed { metrics, push_interval_ms, subscription_id }
}

/// Kafka's `computeSubscriptionId`: CRC-32C of the metric set as Java prints
/// it followed by the interval, XORed with the instance id's `hashCode`.
pub fn subscription_id(metrics: &[String], push_interval_ms: i32, client_instance_id: Uuid) -> i32 {
    let text = format!("[{}]{push_interval_ms}", metrics.join(", "));
    let crc = crc32c::crc32c(text.as_bytes()) as i32;
    crc ^ java_uuid_hash(client_instance_id)
}

/// Kafka's `Uuid.hashCode`.
fn java_uuid_hash(id: Uuid) -> i32 {
    let (msb, lsb) = id.as_u64_pair();
    let h = (msb ^ lsb) as i64;
    ((h >> 32) as i32) ^ (h as i32)
}

/// Java's `String.hashCode` (over UTF-16 code units).
fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The iteration order of a `java.util.HashSet` holding `items` (added in
/// this order, duplicates dropped): by bucket of the table the set grew to,
/// ties in insertion order, as long as no bucket turns into a tree (eight
/// colliding names, which real metric prefixes never are).
fn java_hash_set_order(items: &[String]) -> Vec<String> {
    let mut unique: Vec<String> = Vec::with_capacity(items.len());
    for i in items {
        if !unique.contains(i) {
            unique.push(i.clone());
        }
    }
    let mut capacity = 16usize;
    while unique.len() > capacity * 3 / 4 {
        capacity *= 2;
    }
    let bucket = |s: &String| {
        let h = java_string_hash(s) as u32;
        ((h ^ (h >> 16)) as usize) & (capacity - 1)
    };
    unique.sort_by_key(bucket);
    unique
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn validation_follows_kafka() {
        let ok = parse("s", &configs(&[("metrics", "a, b"), ("interval.ms", "1000"), ("match", "client_id=x.*")]));
        let ok = ok.unwrap();
        assert_eq!(ok.metrics, ["a", "b"]);
        assert_eq!(ok.interval_ms, 1000);
        let code = |c: &[(&str, &str)]| parse("s", &configs(c)).unwrap_err().0;
        assert_eq!(code(&[("nope", "1")]), ResponseError::InvalidRequest);
        assert_eq!(code(&[("interval.ms", "99")]), ResponseError::InvalidRequest);
        assert_eq!(code(&[("interval.ms", "3600001")]), ResponseError::InvalidRequest);
        assert_eq!(code(&[("interval.ms", "x")]), ResponseError::InvalidConfig);
        assert_eq!(code(&[("match", "client_id")]), ResponseError::InvalidConfig);
        assert_eq!(code(&[("match", "hostname=a")]), ResponseError::InvalidConfig);
        assert_eq!(code(&[("match", "client_id=(")]), ResponseError::InvalidConfig);
        assert_eq!(code(&[("match", "client_id=a=b")]), ResponseError::InvalidConfig);
        assert_eq!(parse("", &configs(&[])).unwrap_err().0, ResponseError::InvalidRequest);
        assert!(parse("s", &configs(&[("match", "")])).unwrap().matches.is_empty());
    }

    #[test]
    fn matching_needs_every_selector_to_match_the_whole_value() {
        let s = parse("s", &configs(&[("match", "client_id=prod-.*,client_software_name=apache-kafka-java")])).unwrap();
        let mut client = ClientAttributes {
            client_id: "prod-1".into(),
            software_name: Some("apache-kafka-java".into()),
            ..Default::default()
        };
        assert!(client.matches(&s));
        client.client_id = "xprod-1".into();
        assert!(!client.matches(&s), "a partial match is no match");
        client.client_id = "prod-1".into();
        client.software_name = None;
        assert!(!client.matches(&s), "a missing attribute matches nothing");
        assert!(client.matches(&parse("all", &configs(&[])).unwrap()));
    }

    #[test]
    fn subscribing_merges_matched_subscriptions() {
        let a = parse("a", &configs(&[("metrics", "org.apache.kafka.producer."), ("interval.ms", "2000")])).unwrap();
        let b = parse("b", &configs(&[("metrics", "org.apache.kafka.consumer."), ("interval.ms", "1000")])).unwrap();
        let none = parse("c", &configs(&[("metrics", "*"), ("match", "client_id=other")])).unwrap();
        let client = ClientAttributes { client_id: "me".into(), ..Default::default() };
        let got = subscribe(&[a.clone(), b, none.clone()], &client);
        assert_eq!(got.push_interval_ms, 1000);
        assert_eq!(got.metrics.len(), 2);
        let nothing = subscribe(std::slice::from_ref(&none), &client);
        assert_eq!((nothing.metrics.len(), nothing.push_interval_ms), (0, INTERVAL_MS_DEFAULT));
        let all = parse("d", &configs(&[("metrics", "*,x")])).unwrap();
        assert_eq!(subscribe(&[a, all], &client).metrics, ["*"]);
    }

    #[test]
    fn subscription_id_is_kafkas() {
        // Kafka: Crc32C("[]300000") XOR Uuid(0, 0).hashCode() (which is 0).
        let expected = crc32c::crc32c(b"[]300000") as i32;
        assert_eq!(subscription_id(&[], 300_000, Uuid::nil()), expected);
        let id = Uuid::from_u64_pair(1 << 32, 5);
        assert_eq!(subscription_id(&[], 300_000, id), expected ^ (1 ^ 5));
        // Java: "a".hashCode() = 97, "b" = 98: buckets 1 and 2 of 16.
        assert_eq!(java_hash_set_order(&["b".into(), "a".into()]), ["a", "b"]);
        assert_eq!(java_string_hash("org"), 110_308);
    }

    #[test]
    fn uuid_prints_as_kafka_does() {
        assert_eq!(java_uuid_string(Uuid::nil()), "AAAAAAAAAAAAAAAAAAAAAA");
        let id = Uuid::from_u64_pair(u64::MAX, u64::MAX);
        assert_eq!(java_uuid_string(id), "_____________________w");
    }
}
