//! Client quotas as Kafka models them.
//!
//! * [`QuotaKey`] names the quotas (`producer_byte_rate`, `consumer_byte_rate`,
//!   `request_percentage`, `controller_mutation_rate` for user/client-id
//!   entities, `connection_creation_rate` for IP entities) and checks values
//!   the way the controller's `ClientQuotaControlManager` does.
//! * [`QuotaEntity`] is a quota entity: a user and/or a client-id, or an IP,
//!   each either named or the default. [`QuotaEntity::from_wire`] parses the
//!   `(entity_type, entity_name)` list of the AlterClientQuotas request.
//! * [`ClientQuotas`] is the durable map entity → (key → value): AlterClientQuotas
//!   ([`ClientQuotas::alter_batch`], [`ClientQuotas::alter`]), DescribeClientQuotas
//!   ([`ClientQuotas::describe`], the `ClientQuotasImage` filter semantics),
//!   a line-oriented text encoding, and the broker-side resolution of which
//!   quota applies to a connection ([`ClientQuotas::quota_for`], the
//!   precedence of Kafka's `ClientQuotaManager`; [`ClientQuotas::ip_quota`]).
//! * [`RateSampler`] is one quota sensor: Kafka's windowed `Rate` over a
//!   `SampledStat` (`quota.window.num` 11 samples of `quota.window.size.seconds`
//!   1 s) and the throttle time of `QuotaUtils.throttleTime`.
//! * [`TokenBucket`] is the sensor behind `controller_mutation_rate`
//!   (Kafka's `TokenBucket` stat and `ControllerMutationQuotaManager`).
//!
//! Nothing here reads a clock: every time is a parameter in milliseconds.

use crate::text::{percent_decode, percent_encode};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Kafka's `UNSUPPORTED_VERSION` error code: DescribeClientQuotas with an
/// entity type other than `user`, `client-id` or `ip`.
pub const UNSUPPORTED_VERSION: i16 = 35;

/// Kafka's `INVALID_REQUEST` error code, which every other quota validation
/// failure maps to.
pub const INVALID_REQUEST: i16 = 42;

/// Kafka's `POLICY_VIOLATION` error code: an AlterClientQuotas request that
/// would write more than [`MAX_RECORDS_PER_ALTER`] records.
pub const POLICY_VIOLATION: i16 = 44;

/// The message Kafka sends with [`POLICY_VIOLATION`] when a whole request
/// fails (the error's default message).
pub const POLICY_VIOLATION_MESSAGE: &str = "Request parameters do not satisfy the configured policy.";

/// The most quota records one AlterClientQuotas request may produce (the
/// controller's `MAX_RECORDS_PER_USER_OP`).
pub const MAX_RECORDS_PER_ALTER: usize = 10_000;

/// The `user` entity type.
pub const ENTITY_USER: &str = "user";

/// The `client-id` entity type.
pub const ENTITY_CLIENT_ID: &str = "client-id";

/// The `ip` entity type.
pub const ENTITY_IP: &str = "ip";

/// DescribeClientQuotas match type: the entity type must be present with
/// exactly this (non-null) name.
pub const MATCH_TYPE_EXACT: i8 = 0;

/// DescribeClientQuotas match type: the entity type must be present as the
/// default entity (null name).
pub const MATCH_TYPE_DEFAULT: i8 = 1;

/// DescribeClientQuotas match type: the entity type must be present, with
/// any name or as the default.
pub const MATCH_TYPE_SPECIFIED: i8 = 2;

/// `quota.window.num`'s default: 10 whole windows plus the current one.
pub const DEFAULT_QUOTA_WINDOW_NUM: u32 = 11;

/// `quota.window.size.seconds`'s default, in milliseconds.
pub const DEFAULT_QUOTA_WINDOW_MS: u64 = 1_000;

/// How long a quota sensor may go without a record before Kafka drops it
/// (one hour); see [`RateSampler::is_expired`].
pub const INACTIVE_SENSOR_EXPIRATION_MS: u64 = 3_600_000;

/// The most samples a [`RateSampler`] or [`TokenBucket`] accepts; larger
/// configurations are clamped so memory stays bounded.
pub const MAX_QUOTA_WINDOW_NUM: u32 = 4_096;

/// A quota validation failure, with the Kafka error code and message a
/// response carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaError {
    /// Kafka error code: [`INVALID_REQUEST`], [`UNSUPPORTED_VERSION`] or
    /// [`POLICY_VIOLATION`].
    pub error_code: i16,
    /// The message Kafka gives for the failure.
    pub message: String,
}

impl QuotaError {
    fn invalid_request(message: impl Into<String>) -> Self {
        QuotaError { error_code: INVALID_REQUEST, message: message.into() }
    }
}

impl fmt::Display for QuotaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for QuotaError {}

/// The Java type a quota's config key is declared with, which decides the
/// values it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueType {
    Int,
    Long,
    Double,
}

/// A quota name (Kafka's `QuotaConfig` override keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QuotaKey {
    /// `producer_byte_rate`: produce bytes per second (a whole number).
    ProducerByteRate,
    /// `consumer_byte_rate`: fetch bytes per second (a whole number).
    ConsumerByteRate,
    /// `request_percentage`: request handler and network thread time, in
    /// percent of one thread per quota window.
    RequestPercentage,
    /// `controller_mutation_rate`: partitions created or deleted per second.
    ControllerMutationRate,
    /// `connection_creation_rate`: connections accepted per second from one
    /// IP (a whole number); only for `ip` entities.
    ConnectionCreationRate,
}

impl QuotaKey {
    /// Every key, in declaration order.
    pub const VALUES: &'static [QuotaKey] = &[
        QuotaKey::ProducerByteRate,
        QuotaKey::ConsumerByteRate,
        QuotaKey::RequestPercentage,
        QuotaKey::ControllerMutationRate,
        QuotaKey::ConnectionCreationRate,
    ];

    /// The key's config name, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaKey::ProducerByteRate => "producer_byte_rate",
            QuotaKey::ConsumerByteRate => "consumer_byte_rate",
            QuotaKey::RequestPercentage => "request_percentage",
            QuotaKey::ControllerMutationRate => "controller_mutation_rate",
            QuotaKey::ConnectionCreationRate => "connection_creation_rate",
        }
    }

    /// The key named `name` (exact, case-sensitive), if there is one.
    pub fn parse(name: &str) -> Option<QuotaKey> {
        QuotaKey::VALUES.iter().copied().find(|k| k.as_str() == name)
    }

    /// Whether the key belongs to `ip` entities (only
    /// `connection_creation_rate` does) rather than user/client-id ones.
    pub fn is_ip_key(self) -> bool {
        self == QuotaKey::ConnectionCreationRate
    }

    fn value_type(self) -> ValueType {
        match self {
            QuotaKey::ProducerByteRate | QuotaKey::ConsumerByteRate => ValueType::Long,
            QuotaKey::RequestPercentage | QuotaKey::ControllerMutationRate => ValueType::Double,
            QuotaKey::ConnectionCreationRate => ValueType::Int,
        }
    }
}

impl fmt::Display for QuotaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name of one component of a quota entity: a specific name, or the
/// default entity (a null name on the wire, `<default>` in Kafka's tools).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntityName {
    /// The default entity, applying to every name without its own quota.
    Default,
    /// One specific name.
    Named(String),
}

impl EntityName {
    /// The wire form: `None` for the default entity.
    pub fn as_wire(&self) -> Option<&str> {
        match self {
            EntityName::Default => None,
            EntityName::Named(name) => Some(name),
        }
    }

    /// The name for a wire value (`None` is the default entity).
    pub fn from_wire(name: Option<&str>) -> EntityName {
        match name {
            None => EntityName::Default,
            Some(name) => EntityName::Named(name.to_owned()),
        }
    }

    fn named(name: &str) -> EntityName {
        EntityName::Named(name.to_owned())
    }
}

/// A client quota entity: a user and/or a client-id, or an IP. Each present
/// component is a specific name or the default; an absent component is not
/// part of the entity (so `user=alice` alone differs from `user=alice,
/// client-id=<default>`).
///
/// Valid entities have at least one component, and `ip` never combined with
/// the others; [`QuotaEntity::validate`] checks this with Kafka's errors.
/// Ordering is by user, then client-id, then IP, absent first.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QuotaEntity {
    /// The `user` component (the principal's name).
    pub user: Option<EntityName>,
    /// The `client-id` component.
    pub client_id: Option<EntityName>,
    /// The `ip` component.
    pub ip: Option<EntityName>,
}

impl QuotaEntity {
    /// A user/client-id entity; both `None` gives the (invalid) empty entity.
    pub fn new(user: Option<EntityName>, client_id: Option<EntityName>) -> QuotaEntity {
        QuotaEntity { user, client_id, ip: None }
    }

    /// The entity of one named user.
    pub fn user(name: &str) -> QuotaEntity {
        QuotaEntity::new(Some(EntityName::named(name)), None)
    }

    /// The default user entity.
    pub fn default_user() -> QuotaEntity {
        QuotaEntity::new(Some(EntityName::Default), None)
    }

    /// The entity of one named client-id.
    pub fn client_id(name: &str) -> QuotaEntity {
        QuotaEntity::new(None, Some(EntityName::named(name)))
    }

    /// The default client-id entity.
    pub fn default_client_id() -> QuotaEntity {
        QuotaEntity::new(None, Some(EntityName::Default))
    }

    /// A user + client-id entity; `None` for either means that component's
    /// default.
    pub fn user_client_id(user: Option<&str>, client_id: Option<&str>) -> QuotaEntity {
        QuotaEntity::new(Some(EntityName::from_wire(user)), Some(EntityName::from_wire(client_id)))
    }

    /// An IP entity; `None` is the default IP entity.
    pub fn ip(ip: Option<&str>) -> QuotaEntity {
        QuotaEntity { user: None, client_id: None, ip: Some(EntityName::from_wire(ip)) }
    }

    /// Whether this is an IP entity.
    pub fn is_ip(&self) -> bool {
        self.ip.is_some()
    }

    /// Parses the entity of one AlterClientQuotas entry: `(entity_type,
    /// entity_name)` pairs, `None` naming the default entity. As in Kafka the
    /// pairs first go into a map, so a repeated type keeps its last name;
    /// then the checks of `ClientQuotaControlManager` apply, in its order
    /// (empty entity, unknown type, empty name, `ip` combined with another
    /// type, an `ip` name that is not an IP address).
    pub fn from_wire(entries: &WireEntity<'_>) -> Result<QuotaEntity, QuotaError> {
        let raw = RawEntity::collect(entries);
        raw.validate()
    }

    /// Checks a hand-built entity the way [`QuotaEntity::from_wire`] checks a
    /// parsed one.
    pub fn validate(&self) -> Result<(), QuotaError> {
        let entries = self.wire_entries();
        let raw = RawEntity::collect(&entries);
        raw.validate().map(|_| ())
    }

    /// The `(entity_type, entity_name)` pairs as Kafka lists them in
    /// responses (the iteration order of its `HashMap`: `client-id` before
    /// `user`; `ip` last).
    pub fn wire_entries(&self) -> Vec<(&'static str, Option<&str>)> {
        let mut out = Vec::with_capacity(3);
        if let Some(name) = &self.client_id {
            out.push((ENTITY_CLIENT_ID, name.as_wire()));
        }
        if let Some(name) = &self.user {
            out.push((ENTITY_USER, name.as_wire()));
        }
        if let Some(name) = &self.ip {
            out.push((ENTITY_IP, name.as_wire()));
        }
        out
    }

    /// The component of type `entity_type`: `None` if absent, `Some(None)`
    /// for the default, `Some(Some(name))` for a name.
    fn component(&self, entity_type: &str) -> Option<Option<&str>> {
        let name = match entity_type {
            ENTITY_USER => self.user.as_ref(),
            ENTITY_CLIENT_ID => self.client_id.as_ref(),
            ENTITY_IP => self.ip.as_ref(),
            _ => None,
        };
        name.map(EntityName::as_wire)
    }

    fn component_count(&self) -> usize {
        usize::from(self.user.is_some()) + usize::from(self.client_id.is_some()) + usize::from(self.ip.is_some())
    }
}

/// Kafka's `ClientQuotaEntity.toString`, e.g.
/// `ClientQuotaEntity(entries={client-id=app, user=null})`.
impl fmt::Display for QuotaEntity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = self.wire_entries();
        f.write_str(&RawEntity::collect(&entries).java_string())
    }
}

/// An entity as a request carries it: distinct types in first-seen order,
/// each with its last name, plus the number of pairs the request had (the
/// initial capacity of Kafka's map, which decides its iteration order).
struct RawEntity<'a> {
    entries: Vec<(&'a str, Option<&'a str>)>,
    capacity: usize,
}

impl<'a> RawEntity<'a> {
    fn collect(pairs: &[(&'a str, Option<&'a str>)]) -> RawEntity<'a> {
        let mut entries: Vec<(&'a str, Option<&'a str>)> = Vec::with_capacity(pairs.len().min(8));
        let mut index: HashMap<&'a str, usize> = HashMap::new();
        for &(entity_type, name) in pairs {
            match index.get(entity_type) {
                Some(&i) => {
                    if let Some(entry) = entries.get_mut(i) {
                        entry.1 = name;
                    }
                }
                None => {
                    index.insert(entity_type, entries.len());
                    entries.push((entity_type, name));
                }
            }
        }
        RawEntity { entries, capacity: pairs.len() }
    }

    /// The entries in Kafka's iteration order.
    fn java_ordered(&self) -> Vec<(&'a str, Option<&'a str>)> {
        let keys: Vec<&str> = self.entries.iter().map(|e| e.0).collect();
        java_hash_map_order(&keys, self.capacity).into_iter().filter_map(|i| self.entries.get(i).copied()).collect()
    }

    /// Java's `AbstractMap.toString` inside `ClientQuotaEntity(entries=…)`.
    fn java_string(&self) -> String {
        let mut out = String::from("ClientQuotaEntity(entries={");
        for (i, (entity_type, name)) in self.java_ordered().into_iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(entity_type);
            out.push('=');
            out.push_str(name.unwrap_or("null"));
        }
        out.push_str("})");
        out
    }

    /// The identity Kafka compares entities by (map equality).
    fn identity(&self) -> Vec<(String, Option<String>)> {
        let mut id: Vec<(String, Option<String>)> =
            self.entries.iter().map(|&(t, n)| (t.to_owned(), n.map(str::to_owned))).collect();
        id.sort();
        id
    }

    /// `validateEntity` then `configKeysForEntityType`.
    fn validate(&self) -> Result<QuotaEntity, QuotaError> {
        if self.entries.is_empty() {
            return Err(QuotaError::invalid_request("Invalid empty client quota entity"));
        }
        let mut entity = QuotaEntity::new(None, None);
        for (entity_type, name) in self.java_ordered() {
            let slot = match entity_type {
                ENTITY_USER => &mut entity.user,
                ENTITY_CLIENT_ID => &mut entity.client_id,
                ENTITY_IP => &mut entity.ip,
                other => {
                    return Err(QuotaError::invalid_request(format!("Unhandled client quota entity type: {other}")))
                }
            };
            *slot = Some(EntityName::from_wire(name));
            if name == Some("") {
                return Err(QuotaError::invalid_request(format!("Empty {entity_type} not supported")));
            }
        }
        if let Some(ip) = &entity.ip {
            if entity.user.is_some() || entity.client_id.is_some() {
                // Kafka's message lacks the space between "should" and "not".
                return Err(QuotaError::invalid_request(
                    "Invalid quota entity combination, IP entity shouldnot be combined with User or ClientId",
                ));
            }
            if let EntityName::Named(name) = ip {
                if parse_ip_entity(name).is_none() {
                    return Err(QuotaError::invalid_request(format!("{name} is not a valid IP or resolvable host.")));
                }
            }
        } else if entity.user.is_none() && entity.client_id.is_none() {
            return Err(QuotaError::invalid_request("Invalid empty client quota entity"));
        }
        Ok(entity)
    }
}

/// Parses an IP entity name the way Java's `InetAddress.getByName` reads a
/// literal: an IPv4 address, or an IPv6 address optionally in brackets and
/// optionally with a numeric `%scope`. IPv4-mapped IPv6 addresses become
/// IPv4, as Java makes them. Anything else would need a DNS lookup.
fn parse_ip_entity(name: &str) -> Option<IpAddr> {
    let (host, bracketed) = match name.strip_prefix('[') {
        Some(rest) => (rest.strip_suffix(']')?, true),
        None => (name, false),
    };
    if let Ok(v4) = host.parse::<Ipv4Addr>() {
        return (!bracketed).then_some(IpAddr::V4(v4));
    }
    let address = match host.split_once('%') {
        Some((address, scope)) if !scope.is_empty() && scope.bytes().all(|b| b.is_ascii_digit()) => address,
        Some(_) => return None,
        None => host,
    };
    address.parse::<Ipv6Addr>().ok().map(|v6| IpAddr::V6(v6).to_canonical())
}

/// Java's `String.hashCode` (over UTF-16 code units).
fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(i32::from(unit)))
}

/// The order in which a `java.util.HashMap` built with
/// `new HashMap<>(initial_capacity)` and filled with the distinct `keys`
/// (in this order) iterates them, as indices into `keys`: by bucket, and in
/// insertion order within a bucket, after the table has grown as Java grows
/// it (on the load factor, and when a bucket of 8+ keys would become a tree
/// in a table under 64 buckets). A bucket that does become a tree (9+ keys
/// with colliding hashes in a table of 64+) keeps insertion order here.
/// Memory is linear in `keys`, whatever the capacity.
fn java_hash_map_order(keys: &[&str], initial_capacity: usize) -> Vec<usize> {
    const MAX_CAPACITY: usize = 1 << 30;
    const TREEIFY_THRESHOLD: usize = 8;
    const MIN_TREEIFY_CAPACITY: usize = 64;
    let hashes: Vec<usize> = keys
        .iter()
        .map(|k| {
            let h = java_string_hash(k) as u32;
            (h ^ (h >> 16)) as usize
        })
        .collect();
    let threshold = |cap: usize| cap / 4 * 3 + (cap % 4) * 3 / 4;
    let grow = |cap: usize| if cap >= MAX_CAPACITY { cap } else { cap * 2 };
    let chain_lengths = |inserted: &[usize], cap: usize| {
        let mut lengths: HashMap<usize, usize> = HashMap::new();
        for h in inserted {
            *lengths.entry(h & (cap - 1)).or_default() += 1;
        }
        lengths
    };
    let mut capacity = initial_capacity.clamp(1, MAX_CAPACITY).checked_next_power_of_two().unwrap_or(MAX_CAPACITY);
    let mut lengths: HashMap<usize, usize> = HashMap::new();
    for (size, hash) in (1..).zip(&hashes) {
        let chain = lengths.entry(hash & (capacity - 1)).or_default();
        let before = *chain;
        *chain += 1;
        let mut grown = false;
        if before >= TREEIFY_THRESHOLD && capacity < MIN_TREEIFY_CAPACITY {
            capacity = grow(capacity);
            grown = true;
        }
        if size > threshold(capacity) {
            capacity = grow(capacity);
            grown = true;
        }
        if grown {
            lengths = chain_lengths(hashes.get(..size).unwrap_or(&hashes), capacity);
        }
    }
    let mut order: Vec<usize> = (0..hashes.len()).collect();
    order.sort_by_key(|&i| hashes.get(i).map_or(0, |h| h & (capacity - 1)));
    order
}

/// Kafka's `Double.equals`: bitwise, with every NaN equal to every NaN.
fn java_double_equals(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

/// Checks one quota value for `key` the way `validateQuotaKeyValue` does:
/// it must be greater than 0, and whole and in range for integral keys.
/// (NaN passes every comparison, as it does in Kafka.)
fn validate_value(key: QuotaKey, value: f64) -> Result<(), QuotaError> {
    let name = key.as_str();
    if value <= 0.0 {
        return Err(QuotaError::invalid_request(format!("Quota {name} must be greater than 0")));
    }
    let (max, article, type_name) = match key.value_type() {
        ValueType::Double => return Ok(()),
        ValueType::Int => (f64::from(i32::MAX), "an", "INT"),
        // Java widens Long.MAX_VALUE to the double 2^63.
        ValueType::Long => (9_223_372_036_854_775_808.0, "a", "LONG"),
    };
    if value > max {
        return Err(QuotaError::invalid_request(format!(
            "Proposed value for {name} is too large for {article} {type_name}."
        )));
    }
    if (value % 1.0).abs() > 1e-6 {
        return Err(QuotaError::invalid_request(format!("{name} cannot be a fractional value.")));
    }
    Ok(())
}

/// The metric tags Kafka's `ClientQuotaManager` keys a quota sensor by: the
/// user and client-id the sensor is shared across, `""` meaning "any".
///
/// `(user, "")` is one sensor for all clients of a user (user-level quotas),
/// `("", client_id)` one for a client-id across users (client-id-level
/// quotas), `(user, client_id)` one per pair (user + client-id quotas,
/// including the defaults). Keep one [`RateSampler`] per key and quota name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QuotaSensorKey {
    /// The `user` tag, or `""`.
    pub user: String,
    /// The `client-id` tag, or `""`.
    pub client_id: String,
}

/// Kafka's sensor-name suffix: `user:client-id`.
impl fmt::Display for QuotaSensorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.user, self.client_id)
    }
}

/// The quota that applies to a connection, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedQuota {
    /// The quota value.
    pub value: f64,
    /// The entity the value is configured on.
    pub entity: QuotaEntity,
    /// The sensor the connection's usage is recorded in.
    pub sensor: QuotaSensorKey,
}

/// The outcome for one distinct entity of an AlterClientQuotas request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterOutcome {
    /// The entity as the response echoes it: `(entity_type, entity_name)` in
    /// Kafka's map order, a repeated type collapsed to its last name.
    pub entity: Vec<(String, Option<String>)>,
    /// Success, or the error for this entity.
    pub result: Result<(), QuotaError>,
}

/// A quota entity in wire form: `(entity_type, entity_name)` pairs, `None`
/// naming the default entity.
pub type WireEntity<'a> = [(&'a str, Option<&'a str>)];

/// Quota operations in wire form: `(key, value)` pairs, `None` removing the
/// key.
pub type WireOps<'a> = [(&'a str, Option<f64>)];

/// One entry of an AlterClientQuotas request.
pub type WireAlteration<'a> = (&'a WireEntity<'a>, &'a WireOps<'a>);

/// Described entities with their values, as DescribeClientQuotas returns
/// them.
pub type DescribedQuotas = Vec<(QuotaEntity, Vec<(QuotaKey, f64)>)>;

/// A planned change to one quota: a new value, or `None` to remove it.
type QuotaChange = (QuotaKey, Option<f64>);

/// The durable client quotas: entity → (key → value). Entities without any
/// value are not kept. Iteration is in entity order, then key order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientQuotas {
    entities: BTreeMap<QuotaEntity, BTreeMap<QuotaKey, f64>>,
}

impl ClientQuotas {
    /// No quotas.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of entities with at least one quota.
    pub fn len(&self) -> usize {
        self.entities.len()
    }

    /// Whether no quota is set.
    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    /// The quotas set on `entity`.
    pub fn get(&self, entity: &QuotaEntity) -> Option<&BTreeMap<QuotaKey, f64>> {
        self.entities.get(entity)
    }

    /// One quota value set on `entity`.
    pub fn value(&self, entity: &QuotaEntity, key: QuotaKey) -> Option<f64> {
        self.entities.get(entity).and_then(|values| values.get(&key)).copied()
    }

    /// Every entity with its quotas, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&QuotaEntity, &BTreeMap<QuotaKey, f64>)> + '_ {
        self.entities.iter()
    }

    /// Sets (`Some`) or removes (`None`) one value without any check, as
    /// replaying a stored quota record does; an entity left without values
    /// is dropped.
    pub fn replay(&mut self, entity: &QuotaEntity, key: QuotaKey, value: Option<f64>) {
        match value {
            Some(value) => {
                self.entities.entry(entity.clone()).or_default().insert(key, value);
            }
            None => {
                if let Some(values) = self.entities.get_mut(entity) {
                    values.remove(&key);
                    if values.is_empty() {
                        self.entities.remove(entity);
                    }
                }
            }
        }
    }

    /// Checks an alteration of one parsed entity without applying it. `ops`
    /// are `(key, value)` pairs, `None` removing the key. Kafka's checks, in
    /// its order: a repeated key fails the whole entity (with Kafka's
    /// "Ignoring duplicate entity" message), then the entity, then each op
    /// (removals are never checked; a removal of an unset or unknown key does
    /// nothing).
    pub fn validate_alter(&self, entity: &QuotaEntity, ops: &WireOps<'_>) -> Result<(), QuotaError> {
        self.plan_alter(entity, ops).map(|_| ())
    }

    /// Checks and applies an alteration of one parsed entity; nothing changes
    /// on error. See [`ClientQuotas::validate_alter`].
    pub fn alter(&mut self, entity: &QuotaEntity, ops: &WireOps<'_>) -> Result<(), QuotaError> {
        let changes = self.plan_alter(entity, ops)?;
        for (key, value) in changes {
            self.replay(entity, key, value);
        }
        Ok(())
    }

    fn plan_alter(&self, entity: &QuotaEntity, ops: &[(&str, Option<f64>)]) -> Result<Vec<QuotaChange>, QuotaError> {
        let entries = entity.wire_entries();
        let raw = RawEntity::collect(&entries);
        if has_duplicate_key(ops) {
            return Err(duplicate_entity(&raw));
        }
        raw.validate()?;
        self.plan_ops(entity, ops)
    }

    /// The changes `ops` make to the validated `entity` (unchanged values
    /// and removals of unset keys produce none).
    fn plan_ops(&self, entity: &QuotaEntity, ops: &[(&str, Option<f64>)]) -> Result<Vec<QuotaChange>, QuotaError> {
        let current = self.entities.get(entity);
        let keys: Vec<&str> = ops.iter().map(|op| op.0).collect();
        let mut changes = Vec::new();
        for i in java_hash_map_order(&keys, ops.len()) {
            let Some(&(name, value)) = ops.get(i) else {
                continue;
            };
            let key = QuotaKey::parse(name).filter(|k| k.is_ip_key() == entity.is_ip());
            let current_value = key.and_then(|k| current.and_then(|c| c.get(&k)).copied());
            match (key, value) {
                (Some(key), None) => {
                    if current_value.is_some() {
                        changes.push((key, None));
                    }
                }
                (None, None) => {}
                (None, Some(_)) => {
                    return Err(QuotaError::invalid_request(format!("Invalid configuration key {name}")))
                }
                (Some(key), Some(value)) => {
                    validate_value(key, value)?;
                    if !current_value.is_some_and(|c| java_double_equals(c, value)) {
                        changes.push((key, Some(value)));
                    }
                }
            }
        }
        Ok(changes)
    }

    /// Handles the entries of one AlterClientQuotas request as Kafka's
    /// controller does, applying them unless `validate_only`.
    ///
    /// Each alteration is `(entity pairs, ops)` in wire form. Returns one
    /// outcome per distinct entity, in first-seen order. As in Kafka, an
    /// entity whose ops repeat a key, or that appeared earlier in the
    /// request, fails with "Ignoring duplicate entity …" — and the changes of
    /// an earlier valid occurrence are still applied. A failed entity changes
    /// nothing. `Err` fails the whole request: more than
    /// [`MAX_RECORDS_PER_ALTER`] changes ([`POLICY_VIOLATION`] with
    /// [`POLICY_VIOLATION_MESSAGE`], for every entry of the request); nothing
    /// is applied then.
    pub fn alter_batch(
        &mut self,
        alterations: &[WireAlteration<'_>],
        validate_only: bool,
    ) -> Result<Vec<AlterOutcome>, QuotaError> {
        let mut outcomes: Vec<AlterOutcome> = Vec::new();
        let mut seen: HashMap<Vec<(String, Option<String>)>, usize> = HashMap::new();
        let mut pending: Vec<(QuotaEntity, Vec<QuotaChange>)> = Vec::new();
        let mut records = 0usize;
        for &(entity_pairs, ops) in alterations {
            let raw = RawEntity::collect(entity_pairs);
            let identity = raw.identity();
            let duplicate_key = has_duplicate_key(ops);
            if let Some(&index) = seen.get(&identity) {
                if let Some(outcome) = outcomes.get_mut(index) {
                    outcome.result = Err(duplicate_entity(&raw));
                }
                continue;
            }
            let result = if duplicate_key {
                Err(duplicate_entity(&raw))
            } else {
                match raw.validate().and_then(|entity| {
                    let changes = self.plan_ops(&entity, ops)?;
                    Ok((entity, changes))
                }) {
                    Ok((entity, changes)) => {
                        records = records.saturating_add(changes.len());
                        if records > MAX_RECORDS_PER_ALTER {
                            return Err(QuotaError {
                                error_code: POLICY_VIOLATION,
                                message: POLICY_VIOLATION_MESSAGE.to_owned(),
                            });
                        }
                        pending.push((entity, changes));
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            };
            seen.insert(identity, outcomes.len());
            outcomes.push(AlterOutcome {
                entity: raw.java_ordered().into_iter().map(|(t, n)| (t.to_owned(), n.map(str::to_owned))).collect(),
                result,
            });
        }
        if !validate_only {
            for (entity, changes) in pending {
                for (key, value) in changes {
                    self.replay(&entity, key, value);
                }
            }
        }
        Ok(outcomes)
    }

    /// DescribeClientQuotas: the entities matching the filter, in entity
    /// order, each with its values in key order.
    ///
    /// `components` are `(entity_type, match_type, match)`:
    /// [`MATCH_TYPE_EXACT`] needs the type present with the name `match`,
    /// [`MATCH_TYPE_DEFAULT`] needs it present as the default,
    /// [`MATCH_TYPE_SPECIFIED`] needs it present with any name or as the
    /// default. With `strict`, an entity must also have no other component.
    /// No components match every entity (none, if strict).
    ///
    /// Errors as Kafka's: an empty or repeated type, a `match` given with
    /// DEFAULT/SPECIFIED or missing with EXACT, an unknown match type, and
    /// `ip` combined with `user` or `client-id` are [`INVALID_REQUEST`]; a
    /// type other than `user`, `client-id` or `ip` is [`UNSUPPORTED_VERSION`].
    pub fn describe(
        &self,
        components: &[(&str, i8, Option<&str>)],
        strict: bool,
    ) -> Result<DescribedQuotas, QuotaError> {
        let mut exact: Vec<(&str, Option<&str>)> = Vec::new();
        let mut specified: Vec<&str> = Vec::new();
        for &(entity_type, match_type, name) in components {
            if entity_type.is_empty() {
                return Err(QuotaError::invalid_request("Invalid empty entity type."));
            }
            if exact.iter().any(|e| e.0 == entity_type) || specified.contains(&entity_type) {
                return Err(QuotaError::invalid_request(format!(
                    "Entity type {entity_type} cannot appear more than once in the filter."
                )));
            }
            if ![ENTITY_IP, ENTITY_USER, ENTITY_CLIENT_ID].contains(&entity_type) {
                return Err(QuotaError {
                    error_code: UNSUPPORTED_VERSION,
                    message: format!("Unsupported entity type {entity_type}"),
                });
            }
            match match_type {
                MATCH_TYPE_EXACT => match name {
                    Some(name) => exact.push((entity_type, Some(name))),
                    None => {
                        return Err(QuotaError::invalid_request(
                            "Request specified MATCH_TYPE_EXACT, but set match string to null.",
                        ))
                    }
                },
                MATCH_TYPE_DEFAULT => {
                    if name.is_some() {
                        return Err(QuotaError::invalid_request(
                            "Request specified MATCH_TYPE_DEFAULT, but also specified a match string.",
                        ));
                    }
                    exact.push((entity_type, None));
                }
                MATCH_TYPE_SPECIFIED => {
                    if name.is_some() {
                        return Err(QuotaError::invalid_request(
                            "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string.",
                        ));
                    }
                    specified.push(entity_type);
                }
                other => {
                    return Err(QuotaError::invalid_request(format!("Unknown match type {other}")));
                }
            }
        }
        let mentions = |t: &str| exact.iter().any(|e| e.0 == t) || specified.contains(&t);
        if mentions(ENTITY_IP) && (mentions(ENTITY_USER) || mentions(ENTITY_CLIENT_ID)) {
            return Err(QuotaError::invalid_request(
                "Invalid entity filter component combination. IP filter component should not be used with user or clientId filter component.",
            ));
        }
        let matches = |entity: &QuotaEntity| {
            (!strict || entity.component_count() == exact.len() + specified.len())
                && exact.iter().all(|&(t, name)| entity.component(t) == Some(name))
                && specified.iter().all(|t| entity.component(t).is_some())
        };
        Ok(self
            .entities
            .iter()
            .filter(|(entity, _)| matches(entity))
            .map(|(entity, values)| (entity.clone(), values.iter().map(|(k, v)| (*k, *v)).collect()))
            .collect())
    }

    /// The quota `key` that applies to a connection of `user` (the
    /// principal's name) with `client_id`, or `None` if none does (Kafka
    /// then imposes no limit).
    ///
    /// Precedence, most specific first, as Kafka's `ClientQuotaManager`:
    /// user + client-id, user + default client-id, user, default user +
    /// client-id, default user + default client-id, default user, client-id,
    /// default client-id. Only entities that set `key` take part. As in
    /// Kafka, the level is chosen by the sensor's tags: an empty `user` or
    /// `client_id` disables the levels that need it (an empty client-id never
    /// gets a user + client-id quota).
    pub fn quota_for(&self, user: &str, client_id: &str, key: QuotaKey) -> Option<ResolvedQuota> {
        let sensor = self.sensor_key(user, client_id, key);
        let (value, entity) = self.quota_for_sensor(&sensor, key)?;
        Some(ResolvedQuota { value, entity, sensor })
    }

    /// The sensor Kafka records `user`/`client_id`'s usage of `key` in
    /// (its `quotaMetricTags`), whether or not a quota applies.
    pub fn sensor_key(&self, user: &str, client_id: &str, key: QuotaKey) -> QuotaSensorKey {
        let has = |u: Option<EntityName>, c: Option<EntityName>| self.has_quota(u, c, key);
        let named = EntityName::named;
        let (u, c) =
            if has(Some(named(user)), Some(named(client_id))) || has(Some(named(user)), Some(EntityName::Default)) {
                (user, client_id)
            } else if has(Some(named(user)), None) {
                (user, "")
            } else if has(Some(EntityName::Default), Some(named(client_id)))
                || has(Some(EntityName::Default), Some(EntityName::Default))
            {
                (user, client_id)
            } else if has(Some(EntityName::Default), None) {
                (user, "")
            } else {
                ("", client_id)
            };
        QuotaSensorKey { user: u.to_owned(), client_id: c.to_owned() }
    }

    /// The quota for a sensor (Kafka's `quotaLimit` of its tags): the value
    /// and the entity it is set on.
    pub fn quota_for_sensor(&self, sensor: &QuotaSensorKey, key: QuotaKey) -> Option<(f64, QuotaEntity)> {
        let user = || Some(EntityName::named(&sensor.user));
        let client = || Some(EntityName::named(&sensor.client_id));
        let default = || Some(EntityName::Default);
        let candidates: Vec<(Option<EntityName>, Option<EntityName>)> =
            match (sensor.user.is_empty(), sensor.client_id.is_empty()) {
                (false, false) => {
                    vec![(user(), client()), (user(), default()), (default(), client()), (default(), default())]
                }
                (false, true) => vec![(user(), None), (default(), None)],
                (true, false) => vec![(None, client()), (None, default())],
                (true, true) => Vec::new(),
            };
        candidates.into_iter().find_map(|(u, c)| {
            let entity = QuotaEntity::new(u, c);
            let value = self.value(&entity, key)?;
            Some((value, entity))
        })
    }

    fn has_quota(&self, user: Option<EntityName>, client_id: Option<EntityName>, key: QuotaKey) -> bool {
        self.value(&QuotaEntity::new(user, client_id), key).is_some()
    }

    /// The `connection_creation_rate` for connections from `ip`: the IP's own
    /// quota, else the default IP's, else `None` (no limit). Entity names
    /// are compared as addresses, so `::1` matches `0:0:0:0:0:0:0:1`. Kafka
    /// truncates the value to an `int`.
    pub fn ip_quota(&self, ip: IpAddr) -> Option<(f64, QuotaEntity)> {
        let key = QuotaKey::ConnectionCreationRate;
        let ip = ip.to_canonical();
        let exact = QuotaEntity::ip(Some(&ip.to_string()));
        if let Some(value) = self.value(&exact, key) {
            return Some((value, exact));
        }
        let found = self.entities.iter().take_while(|(e, _)| e.user.is_none() && e.client_id.is_none()).find_map(
            |(e, values)| match &e.ip {
                Some(EntityName::Named(name)) if parse_ip_entity(name) == Some(ip) => {
                    values.get(&key).map(|v| (*v, e.clone()))
                }
                _ => None,
            },
        );
        if found.is_some() {
            return found;
        }
        let default = QuotaEntity::ip(None);
        self.value(&default, key).map(|value| (value, default))
    }

    /// Encodes every entity as one line (no terminator):
    ///
    /// `user:alice client-id producer_byte_rate=1048576 request_percentage=50`
    ///
    /// Fields are separated by one space: the entity's components in the
    /// order user, client-id, ip — `type:name` for a name, the bare type for
    /// the default — then `key=value` per quota. Names are percent-encoded
    /// (`%`, `=`, space, control characters, DEL and every non-ASCII byte
    /// become `%XX`), so any string round-trips, the empty one included.
    /// Values use Rust's shortest round-trip form (`inf` and `NaN` included).
    pub fn encode_lines(&self) -> Vec<String> {
        self.entities.iter().map(|(entity, values)| encode_line(entity, values)).collect()
    }

    /// Adds one line written by [`ClientQuotas::encode_lines`] (a trailing
    /// `\n` or `\r\n` is ignored); values for an entity already present are
    /// merged, a repeated key keeping its last value. Refuses malformed
    /// fields, repeated components, an entity without components or with
    /// `ip` combined with another type, a line without values, and a key
    /// that does not belong to the entity's kind. Names are not re-checked:
    /// whatever [`ClientQuotas::replay`] stored round-trips.
    pub fn decode_line(&mut self, line: &str) -> Result<(), String> {
        let (entity, values) = decode_line(line)?;
        for (key, value) in values {
            self.replay(&entity, key, Some(value));
        }
        Ok(())
    }

    /// Every line of [`ClientQuotas::encode_lines`], each ending in `\n`.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for line in self.encode_lines() {
            out.push_str(&line);
            out.push('\n');
        }
        out
    }

    /// Parses [`ClientQuotas::to_text`]'s output; blank lines are skipped.
    /// The error names the 1-based line that failed.
    pub fn from_text(text: &str) -> Result<ClientQuotas, String> {
        let mut quotas = ClientQuotas::new();
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            quotas.decode_line(line).map_err(|e| format!("line {}: {e}", index + 1))?;
        }
        Ok(quotas)
    }
}

fn has_duplicate_key(ops: &[(&str, Option<f64>)]) -> bool {
    let mut keys: Vec<&str> = ops.iter().map(|op| op.0).collect();
    keys.sort_unstable();
    keys.windows(2).any(|w| w[0] == w[1])
}

fn duplicate_entity(raw: &RawEntity<'_>) -> QuotaError {
    QuotaError::invalid_request(format!("Ignoring duplicate entity {}", raw.java_string()))
}

fn encode_line(entity: &QuotaEntity, values: &BTreeMap<QuotaKey, f64>) -> String {
    let mut out = String::new();
    let components = [(ENTITY_USER, &entity.user), (ENTITY_CLIENT_ID, &entity.client_id), (ENTITY_IP, &entity.ip)];
    for (entity_type, name) in components {
        let Some(name) = name else { continue };
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(entity_type);
        if let EntityName::Named(name) = name {
            out.push(':');
            percent_encode(name, &mut out);
        }
    }
    for (key, value) in values {
        out.push(' ');
        out.push_str(key.as_str());
        out.push('=');
        out.push_str(&value.to_string());
    }
    out
}

fn decode_line(line: &str) -> Result<(QuotaEntity, Vec<(QuotaKey, f64)>), String> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut entity = QuotaEntity::new(None, None);
    let mut values = Vec::new();
    for field in line.split(' ') {
        if let Some((key, value)) = field.split_once('=') {
            let key = QuotaKey::parse(key).ok_or_else(|| format!("unknown quota key {key:?}"))?;
            let value: f64 = value.parse().map_err(|_| format!("bad value {value:?} for {key}"))?;
            values.push((key, value));
            continue;
        }
        if !values.is_empty() {
            return Err(format!("entity component {field:?} after the values"));
        }
        let (entity_type, name) = match field.split_once(':') {
            Some((t, encoded)) => {
                let name = percent_decode(encoded).map_err(|e| format!("{t} name: {e}"))?;
                (t, EntityName::Named(name))
            }
            None => (field, EntityName::Default),
        };
        let slot = match entity_type {
            ENTITY_USER => &mut entity.user,
            ENTITY_CLIENT_ID => &mut entity.client_id,
            ENTITY_IP => &mut entity.ip,
            other => return Err(format!("unknown entity type {other:?}")),
        };
        if slot.is_some() {
            return Err(format!("entity type {entity_type} given twice"));
        }
        *slot = Some(name);
    }
    if entity.component_count() == 0 {
        return Err("no entity components".to_owned());
    }
    if entity.is_ip() && entity.component_count() > 1 {
        return Err("ip combined with user or client-id".to_owned());
    }
    if values.is_empty() {
        return Err("no quota values".to_owned());
    }
    if let Some((key, _)) = values.iter().find(|(k, _)| k.is_ip_key() != entity.is_ip()) {
        return Err(format!("quota {key} does not apply to {entity}"));
    }
    Ok((entity, values))
}

/// Converts a caller's millisecond time to Java's signed `long`.
fn to_java_ms(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// Java's `Math.round(double)`: half rounds up, NaN gives 0, out-of-range
/// values saturate.
fn java_round(x: f64) -> i64 {
    if x.is_nan() {
        return 0;
    }
    let floor = x.floor();
    let rounded = if x - floor >= 0.5 { floor + 1.0 } else { floor };
    // `as` saturates at the bounds of i64.
    rounded as i64
}

/// One sample of a [`RateSampler`] (Kafka's `SampledStat.Sample`).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    event_count: u64,
    start_ms: i64,
    last_event_ms: i64,
    value: f64,
}

impl Sample {
    fn new(now: i64) -> Sample {
        Sample { event_count: 0, start_ms: now, last_event_ms: now, value: 0.0 }
    }
}

/// One quota sensor: Kafka's `Rate` over a `WindowedSum`, with its quota
/// check and throttle time.
///
/// Values fall into samples of `window_ms` each; `num_samples` samples
/// (plus one overlapping the oldest edge) are kept. The rate is the sum of
/// retained samples over the elapsed time since the oldest sample started,
/// counted as at least `num_samples - 1` whole windows (so a new sensor
/// averages over 10 s by default, not over the first milliseconds). Samples
/// whose last event is `num_samples * window_ms` old are discarded.
///
/// Times are milliseconds from any fixed origin; time moving backwards is
/// tolerated as Kafka tolerates it.
#[derive(Debug, Clone, PartialEq)]
pub struct RateSampler {
    num_samples: u32,
    window_ms: i64,
    samples: Vec<Sample>,
    current: usize,
    last_record_ms: Option<i64>,
}

impl Default for RateSampler {
    fn default() -> Self {
        RateSampler::new(DEFAULT_QUOTA_WINDOW_NUM, DEFAULT_QUOTA_WINDOW_MS)
    }
}

impl RateSampler {
    /// A sampler of `num_samples` windows (`quota.window.num`, clamped to
    /// 1..=[`MAX_QUOTA_WINDOW_NUM`]) of `window_ms` each
    /// (`quota.window.size.seconds` × 1000, at least 1).
    pub fn new(num_samples: u32, window_ms: u64) -> Self {
        let num_samples = num_samples.clamp(1, MAX_QUOTA_WINDOW_NUM);
        RateSampler {
            num_samples,
            window_ms: to_java_ms(window_ms).max(1),
            samples: Vec::new(),
            current: 0,
            last_record_ms: None,
        }
    }

    /// The length of one sample window, in milliseconds.
    pub fn window_ms(&self) -> u64 {
        self.window_ms.unsigned_abs()
    }

    /// The number of sample windows.
    pub fn num_samples(&self) -> u32 {
        self.num_samples
    }

    /// The most that can be recorded at once without certainly being
    /// throttled: `quota × (num_samples − 1) × window` (Kafka's
    /// `getMaxValueInQuotaWindow`, which bounds fetch sizes).
    pub fn max_value_in_quota_window(&self, quota: f64) -> f64 {
        quota * f64::from(self.num_samples - 1) * (self.window_ms as f64 / 1000.0)
    }

    /// Records `value` at `now_ms` (negative values undo earlier records, as
    /// Kafka's `unrecordQuotaSensor` does).
    pub fn record(&mut self, now_ms: u64, value: f64) {
        let now = to_java_ms(now_ms);
        self.last_record_ms = Some(now);
        let window_ms = self.window_ms;
        let complete = self.current_sample(now).is_some_and(|s| now.saturating_sub(s.start_ms) >= window_ms);
        if complete {
            self.advance(now);
        }
        if let Some(sample) = self.samples.get_mut(self.current) {
            sample.value += value;
            sample.event_count = sample.event_count.saturating_add(1);
            sample.last_event_ms = now;
        }
    }

    /// Whether the sensor has had no record for more than
    /// [`INACTIVE_SENSOR_EXPIRATION_MS`] at `now_ms`, so Kafka would drop it
    /// (and start a fresh one on next use). A sampler never recorded into is
    /// not expired.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.last_record_ms
            .is_some_and(|last| to_java_ms(now_ms).saturating_sub(last) > to_java_ms(INACTIVE_SENSOR_EXPIRATION_MS))
    }

    /// The observed rate per second at `now_ms`.
    pub fn rate(&mut self, now_ms: u64) -> f64 {
        let now = to_java_ms(now_ms);
        self.purge_obsolete(now);
        let total: f64 = self.samples.iter().map(|s| s.value).sum();
        let window = self.window_size(now);
        total / (window as f64 / 1000.0)
    }

    /// The time span the rate at `now_ms` is computed over, in milliseconds
    /// (Kafka's `Rate.windowSize`).
    pub fn window_size_ms(&mut self, now_ms: u64) -> u64 {
        self.window_size(to_java_ms(now_ms)).unsigned_abs()
    }

    /// How long to throttle at `now_ms` under `quota` (per second): 0 while
    /// the rate is at most `quota`, else `(rate − quota) / quota × window`,
    /// rounded — the delay that brings the rate back to the quota if nothing
    /// more is recorded (`QuotaUtils.throttleTime`). Kafka applies this
    /// uncapped to byte-rate quotas; the response field is an `int32`, so
    /// callers clamp it. A NaN quota never throttles.
    pub fn throttle_time_ms(&mut self, now_ms: u64, quota: f64) -> u64 {
        let rate = self.rate(now_ms);
        if rate <= quota || quota.is_nan() {
            return 0;
        }
        let window = self.window_size(to_java_ms(now_ms));
        let throttle = (rate - quota) / quota * window as f64;
        java_round(throttle).max(0).unsigned_abs()
    }

    /// [`RateSampler::throttle_time_ms`] capped at `max_ms`
    /// (`QuotaUtils.boundedThrottleTime`). Kafka caps `request_percentage`
    /// and IP connection-rate throttles at one window ([`RateSampler::window_ms`]).
    pub fn bounded_throttle_time_ms(&mut self, now_ms: u64, quota: f64, max_ms: u64) -> u64 {
        self.throttle_time_ms(now_ms, quota).min(max_ms)
    }

    /// Records `value` at `now_ms` and then returns the throttle time under
    /// `quota`, as Kafka's `recordAndGetThrottleTimeMs` (the value counts
    /// even when the client is throttled).
    pub fn record_and_throttle_time_ms(&mut self, now_ms: u64, value: f64, quota: f64) -> u64 {
        self.record(now_ms, value);
        self.throttle_time_ms(now_ms, quota)
    }

    fn current_sample(&mut self, now: i64) -> Option<&Sample> {
        if self.samples.is_empty() {
            self.samples.push(Sample::new(now));
        }
        self.samples.get(self.current)
    }

    fn advance(&mut self, now: i64) {
        let max_samples = self.num_samples as usize + 1;
        self.current = (self.current + 1) % max_samples;
        if self.current >= self.samples.len() {
            self.current = self.samples.len();
            self.samples.push(Sample::new(now));
        } else if let Some(sample) = self.samples.get_mut(self.current) {
            *sample = Sample::new(now);
        }
    }

    fn purge_obsolete(&mut self, now: i64) {
        let expire_age = i64::from(self.num_samples).saturating_mul(self.window_ms);
        for sample in &mut self.samples {
            if now.saturating_sub(sample.last_event_ms) >= expire_age {
                *sample = Sample::new(now);
            }
        }
    }

    fn window_size(&mut self, now: i64) -> i64 {
        self.purge_obsolete(now);
        if self.samples.is_empty() {
            self.samples.push(Sample::new(now));
        }
        let oldest = self.samples.iter().map(|s| s.start_ms).min().unwrap_or(now);
        let mut elapsed = now.saturating_sub(oldest);
        let full_windows = elapsed / self.window_ms;
        let min_full_windows = i64::from(self.num_samples) - 1;
        if full_windows < min_full_windows {
            elapsed = elapsed.saturating_add((min_full_windows - full_windows).saturating_mul(self.window_ms));
        }
        elapsed.max(1)
    }
}

/// The sensor behind `controller_mutation_rate`: Kafka's `TokenBucket`.
///
/// The bucket refills at `quota` tokens per second up to a burst of
/// `quota × num_samples × window`; each mutation (a partition created or
/// deleted) takes one token, and the quota is exhausted while the balance
/// is below zero. It starts empty with its last refill at time 0, as
/// Kafka's does, so with epoch-millisecond times it is full on first use.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBucket {
    num_samples: u32,
    window_ms: i64,
    tokens: f64,
    last_update_ms: i64,
}

impl Default for TokenBucket {
    fn default() -> Self {
        TokenBucket::new(DEFAULT_QUOTA_WINDOW_NUM, DEFAULT_QUOTA_WINDOW_MS)
    }
}

impl TokenBucket {
    /// A bucket for `controller.quota.window.num` windows (clamped to
    /// 1..=[`MAX_QUOTA_WINDOW_NUM`]) of `window_ms` each (at least 1).
    pub fn new(num_samples: u32, window_ms: u64) -> Self {
        TokenBucket {
            num_samples: num_samples.clamp(1, MAX_QUOTA_WINDOW_NUM),
            window_ms: to_java_ms(window_ms).max(1),
            tokens: 0.0,
            last_update_ms: 0,
        }
    }

    /// The token balance at `now_ms` under `quota` (refilled first).
    pub fn tokens(&mut self, now_ms: u64, quota: f64) -> f64 {
        self.refill(to_java_ms(now_ms), quota);
        self.tokens
    }

    /// Takes `value` tokens at `now_ms` under `quota`, even if that drives
    /// the balance negative.
    pub fn record(&mut self, now_ms: u64, value: f64, quota: f64) {
        let burst = self.refill(to_java_ms(now_ms), quota);
        self.tokens = burst.min(self.tokens - value);
    }

    /// The strict quota (CreateTopics v6+, CreatePartitions v3+,
    /// DeleteTopics v5+): if the balance at `now_ms` is already negative the
    /// mutation is refused with the throttle time `round(−tokens / quota ×
    /// 1000)` (which may round to 0: Kafka still refuses); otherwise `value`
    /// is taken, however negative that leaves the balance.
    pub fn try_record(&mut self, now_ms: u64, value: f64, quota: f64) -> Result<(), u64> {
        let tokens = self.tokens(now_ms, quota);
        if tokens < 0.0 {
            return Err(Self::throttle_for(tokens, quota));
        }
        self.record(now_ms, value, quota);
        Ok(())
    }

    /// The permissive quota (older request versions): `value` is always
    /// taken; the return is the throttle time the balance then calls for.
    pub fn record_permissive(&mut self, now_ms: u64, value: f64, quota: f64) -> u64 {
        self.record(now_ms, value, quota);
        self.throttle_time_ms(now_ms, quota)
    }

    /// The time for a negative balance at `now_ms` to refill to zero under
    /// `quota`, in milliseconds; 0 if the balance is not negative.
    pub fn throttle_time_ms(&mut self, now_ms: u64, quota: f64) -> u64 {
        let tokens = self.tokens(now_ms, quota);
        if tokens < 0.0 {
            Self::throttle_for(tokens, quota)
        } else {
            0
        }
    }

    fn throttle_for(tokens: f64, quota: f64) -> u64 {
        java_round(-tokens / quota * 1000.0).max(0).unsigned_abs()
    }

    /// Refills to `now`, returning the burst size.
    fn refill(&mut self, now: i64, quota: f64) -> f64 {
        let burst = f64::from(self.num_samples) * (self.window_ms as f64 / 1000.0) * quota;
        let elapsed_s = now.saturating_sub(self.last_update_ms) as f64 / 1000.0;
        self.tokens = burst.min(self.tokens + quota * elapsed_s);
        self.last_update_ms = now;
        burst
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000;

    fn err(code: i16, message: &str) -> QuotaError {
        QuotaError { error_code: code, message: message.to_owned() }
    }

    fn invalid(message: &str) -> QuotaError {
        err(INVALID_REQUEST, message)
    }

    #[test]
    fn keys_round_trip_their_names() {
        for &key in QuotaKey::VALUES {
            assert_eq!(QuotaKey::parse(key.as_str()), Some(key));
        }
        assert_eq!(QuotaKey::parse("Producer_Byte_Rate"), None);
        assert_eq!(QuotaKey::parse(""), None);
        assert!(QuotaKey::ConnectionCreationRate.is_ip_key());
        assert!(!QuotaKey::RequestPercentage.is_ip_key());
    }

    #[test]
    fn values_are_checked_as_kafka_checks_them() {
        let check = validate_value;
        assert_eq!(
            check(QuotaKey::ProducerByteRate, 0.0),
            Err(invalid("Quota producer_byte_rate must be greater than 0"))
        );
        assert_eq!(
            check(QuotaKey::RequestPercentage, -1.5),
            Err(invalid("Quota request_percentage must be greater than 0"))
        );
        assert_eq!(
            check(QuotaKey::ConsumerByteRate, 10.5),
            Err(invalid("consumer_byte_rate cannot be a fractional value."))
        );
        // Within 1e-6 of a whole number counts as whole.
        assert_eq!(check(QuotaKey::ConsumerByteRate, 10.000_000_1), Ok(()));
        assert_eq!(
            check(QuotaKey::ProducerByteRate, 1e19),
            Err(invalid("Proposed value for producer_byte_rate is too large for a LONG."))
        );
        assert_eq!(check(QuotaKey::ProducerByteRate, 9_223_372_036_854_775_808.0), Ok(()));
        assert_eq!(
            check(QuotaKey::ProducerByteRate, f64::INFINITY),
            Err(invalid("Proposed value for producer_byte_rate is too large for a LONG."))
        );
        assert_eq!(
            check(QuotaKey::ConnectionCreationRate, 2_147_483_648.0),
            Err(invalid("Proposed value for connection_creation_rate is too large for an INT."))
        );
        assert_eq!(check(QuotaKey::ConnectionCreationRate, 2_147_483_647.0), Ok(()));
        assert_eq!(check(QuotaKey::RequestPercentage, 0.25), Ok(()));
        assert_eq!(check(QuotaKey::ControllerMutationRate, f64::INFINITY), Ok(()));
        // NaN fails no comparison, so Kafka accepts it for every key.
        for &key in QuotaKey::VALUES {
            assert_eq!(check(key, f64::NAN), Ok(()));
        }
    }

    #[test]
    fn wire_entities_parse_with_kafkas_checks() {
        assert_eq!(QuotaEntity::from_wire(&[("user", Some("alice"))]), Ok(QuotaEntity::user("alice")));
        assert_eq!(
            QuotaEntity::from_wire(&[("client-id", None), ("user", None)]),
            Ok(QuotaEntity::user_client_id(None, None))
        );
        assert_eq!(QuotaEntity::from_wire(&[("ip", None)]), Ok(QuotaEntity::ip(None)));
        // A repeated type keeps its last name, as Kafka's map does.
        assert_eq!(QuotaEntity::from_wire(&[("user", Some("a")), ("user", Some("b"))]), Ok(QuotaEntity::user("b")));
        assert_eq!(QuotaEntity::from_wire(&[]), Err(invalid("Invalid empty client quota entity")));
        assert_eq!(
            QuotaEntity::from_wire(&[("user", Some("u")), ("foo", Some("bar"))]),
            Err(invalid("Unhandled client quota entity type: foo"))
        );
        assert_eq!(QuotaEntity::from_wire(&[("", None)]), Err(invalid("Unhandled client quota entity type: ")));
        assert_eq!(QuotaEntity::from_wire(&[("user", Some(""))]), Err(invalid("Empty user not supported")));
        // Kafka's map iterates client-id before user.
        assert_eq!(
            QuotaEntity::from_wire(&[("user", Some("")), ("client-id", Some(""))]),
            Err(invalid("Empty client-id not supported"))
        );
        let combination =
            invalid("Invalid quota entity combination, IP entity shouldnot be combined with User or ClientId");
        assert_eq!(QuotaEntity::from_wire(&[("user", Some("u")), ("ip", Some("1.2.3.4"))]), Err(combination.clone()));
        assert_eq!(QuotaEntity::from_wire(&[("client-id", None), ("ip", None)]), Err(combination));
        assert_eq!(
            QuotaEntity::from_wire(&[("ip", Some("example.invalid"))]),
            Err(invalid("example.invalid is not a valid IP or resolvable host."))
        );
        for ip in ["10.0.0.1", "::1", "[fe80::1]", "fe80::1%3", "::ffff:10.0.0.1"] {
            assert!(QuotaEntity::from_wire(&[("ip", Some(ip))]).is_ok(), "{ip}");
        }
        for ip in ["[10.0.0.1]", "10.0.0", "fe80::1%", "1.2.3.4%1", "[]"] {
            assert!(QuotaEntity::from_wire(&[("ip", Some(ip))]).is_err(), "{ip}");
        }
        assert_eq!(QuotaEntity::new(None, None).validate(), Err(invalid("Invalid empty client quota entity")));
    }

    #[test]
    fn entities_print_and_list_like_kafka() {
        let e = QuotaEntity::user_client_id(None, Some("c1"));
        assert_eq!(e.to_string(), "ClientQuotaEntity(entries={client-id=c1, user=null})");
        assert_eq!(e.wire_entries(), vec![("client-id", Some("c1")), ("user", None)]);
        assert_eq!(QuotaEntity::ip(Some("::1")).to_string(), "ClientQuotaEntity(entries={ip=::1})");
    }

    #[test]
    fn java_hash_map_order_matches_the_jvm() {
        // The orders a JVM's HashMap (OpenJDK 17) iterates the same inserts in.
        let order = |cap: usize, keys: &[&str]| -> Vec<String> {
            java_hash_map_order(keys, cap).into_iter().map(|i| keys[i].to_owned()).collect()
        };
        assert_eq!(order(2, &["user", "client-id"]), ["client-id", "user"]);
        assert_eq!(order(3, &["user", "client-id", "ip"]), ["client-id", "user", "ip"]);
        assert_eq!(order(13, &["user", "client-id", "ip"]), ["ip", "client-id", "user"]);
        assert_eq!(
            order(4, &["producer_byte_rate", "consumer_byte_rate", "request_percentage", "controller_mutation_rate"]),
            ["producer_byte_rate", "consumer_byte_rate", "controller_mutation_rate", "request_percentage"]
        );
        assert_eq!(
            order(4, &["request_percentage", "foo", "producer_byte_rate", "consumer_byte_rate"]),
            ["producer_byte_rate", "consumer_byte_rate", "request_percentage", "foo"]
        );
        assert_eq!(order(1, &["foo", "user", "bar"]), ["user", "bar", "foo"]);
        assert_eq!(
            order(0, &["zeta", "alpha", "user", "client-id", "ip", "foo", "bar", "baz", "qux"]),
            ["zeta", "bar", "qux", "alpha", "ip", "foo", "baz", "client-id", "user"]
        );
        // Nine keys with one hash code: the long bucket forces resizes.
        let keys = [
            "user",
            "x1",
            "AaAaAaAa",
            "BBAaAaAa",
            "AaBBAaAa",
            "BBBBAaAa",
            "AaAaBBAa",
            "BBAaBBAa",
            "AaBBBBAa",
            "BBBBBBAa",
            "AaAaAaBB",
            "client-id",
            "y",
        ];
        assert_eq!(
            order(2, &keys),
            [
                "AaAaAaAa",
                "BBAaAaAa",
                "AaBBAaAa",
                "BBBBAaAa",
                "AaAaBBAa",
                "BBAaBBAa",
                "AaBBBBAa",
                "BBBBBBAa",
                "AaAaAaBB",
                "client-id",
                "x1",
                "y",
                "user"
            ]
        );
        assert!(java_hash_map_order(&[], 0).is_empty());
        assert_eq!(java_string_hash("名前"), 0x540D_u16 as i32 * 31 + 0x524D);
    }

    #[test]
    fn java_round_matches_math_round() {
        assert_eq!(java_round(2.5), 3);
        assert_eq!(java_round(2_099.999_999_9), 2100);
        assert_eq!(java_round(-2.5), -2);
        assert_eq!(java_round(f64::NAN), 0);
        assert_eq!(java_round(1e300), i64::MAX);
        assert_eq!(java_round(f64::NEG_INFINITY), i64::MIN);
    }

    #[test]
    fn alter_sets_replaces_and_removes() {
        let mut q = ClientQuotas::new();
        let alice = QuotaEntity::user("alice");
        q.alter(&alice, &[("producer_byte_rate", Some(1024.0)), ("request_percentage", Some(12.5))]).unwrap();
        assert_eq!(q.len(), 1);
        assert_eq!(q.value(&alice, QuotaKey::ProducerByteRate), Some(1024.0));
        assert_eq!(q.value(&alice, QuotaKey::RequestPercentage), Some(12.5));
        // Removing an unset or unknown key is a no-op, not an error.
        q.alter(&alice, &[("consumer_byte_rate", None), ("no_such_key", None)]).unwrap();
        q.alter(&alice, &[("producer_byte_rate", Some(2048.0)), ("request_percentage", None)]).unwrap();
        assert_eq!(q.get(&alice).map(BTreeMap::len), Some(1));
        assert_eq!(q.value(&alice, QuotaKey::ProducerByteRate), Some(2048.0));
        q.alter(&alice, &[("producer_byte_rate", None)]).unwrap();
        assert!(q.is_empty());
        // An alteration with only removals of unset keys leaves no entity.
        q.alter(&QuotaEntity::default_user(), &[("producer_byte_rate", None)]).unwrap();
        assert!(q.is_empty());
    }

    #[test]
    fn alter_rejects_as_kafka_does_and_changes_nothing() {
        let mut q = ClientQuotas::new();
        let e = QuotaEntity::user_client_id(Some("u"), Some("c"));
        q.alter(&e, &[("consumer_byte_rate", Some(100.0))]).unwrap();
        let before = q.clone();
        assert_eq!(
            q.alter(&e, &[("consumer_byte_rate", Some(5.0)), ("consumer_byte_rate", None)]),
            Err(invalid("Ignoring duplicate entity ClientQuotaEntity(entries={client-id=c, user=u})"))
        );
        assert_eq!(
            q.alter(&e, &[("consumer_byte_rate", Some(200.0)), ("producer_byte_rate", Some(-1.0))]),
            Err(invalid("Quota producer_byte_rate must be greater than 0"))
        );
        assert_eq!(
            q.alter(&e, &[("connection_creation_rate", Some(5.0))]),
            Err(invalid("Invalid configuration key connection_creation_rate"))
        );
        assert_eq!(q.alter(&e, &[("foo", Some(5.0))]), Err(invalid("Invalid configuration key foo")));
        assert_eq!(
            q.alter(&QuotaEntity::ip(None), &[("producer_byte_rate", Some(5.0))]),
            Err(invalid("Invalid configuration key producer_byte_rate"))
        );
        assert_eq!(
            q.alter(&QuotaEntity::user(""), &[("producer_byte_rate", Some(5.0))]),
            Err(invalid("Empty user not supported"))
        );
        // Kafka checks ops in its map's order, not the request's.
        assert_eq!(
            q.validate_alter(
                &e,
                &[
                    ("request_percentage", Some(0.0)),
                    ("foo", Some(1.0)),
                    ("producer_byte_rate", Some(1.5)),
                    ("consumer_byte_rate", Some(1.0)),
                ]
            ),
            Err(invalid("producer_byte_rate cannot be a fractional value."))
        );
        assert_eq!(q, before);
        q.alter(&QuotaEntity::ip(Some("10.1.2.3")), &[("connection_creation_rate", Some(30.0))]).unwrap();
        assert_eq!(q.len(), 2);
    }

    fn pairs<'a>(entity: &'a [(&'a str, Option<&'a str>)]) -> &'a [(&'a str, Option<&'a str>)] {
        entity
    }

    #[test]
    fn alter_batch_follows_the_controller() {
        let mut q = ClientQuotas::new();
        let user_a = [("user", Some("a"))];
        let bad = [("user", Some("b")), ("ip", None)];
        let set = [("producer_byte_rate", Some(10.0))];
        let set_other = [("producer_byte_rate", Some(20.0))];
        let outcomes = q
            .alter_batch(
                &[(pairs(&user_a), &set[..]), (pairs(&bad), &set[..]), (pairs(&user_a), &set_other[..])],
                false,
            )
            .unwrap();
        assert_eq!(outcomes.len(), 2);
        assert_eq!(outcomes[0].entity, vec![("user".to_owned(), Some("a".to_owned()))]);
        assert_eq!(outcomes[0].result, Err(invalid("Ignoring duplicate entity ClientQuotaEntity(entries={user=a})")));
        assert_eq!(outcomes[1].result.as_ref().map_err(|e| e.error_code), Err(INVALID_REQUEST));
        // The first occurrence's change still lands, as in Kafka.
        assert_eq!(q.value(&QuotaEntity::user("a"), QuotaKey::ProducerByteRate), Some(10.0));
        assert_eq!(q.len(), 1);

        let default_client = [("client-id", None)];
        let outcomes = q.alter_batch(&[(pairs(&default_client), &set[..])], true).unwrap();
        assert_eq!(outcomes[0].result, Ok(()));
        assert_eq!(q.len(), 1, "validate_only applies nothing");

        let dup_keys = [("consumer_byte_rate", Some(1.0)), ("consumer_byte_rate", Some(2.0))];
        let odd = [("user", Some("x")), ("foo", Some("y"))];
        let outcomes = q.alter_batch(&[(pairs(&odd), &dup_keys[..])], false).unwrap();
        assert_eq!(
            outcomes[0].result,
            Err(invalid("Ignoring duplicate entity ClientQuotaEntity(entries={user=x, foo=y})"))
        );
    }

    #[test]
    fn alter_batch_is_bounded() {
        let names: Vec<String> = (0..2_501).map(|i| format!("user-{i}")).collect();
        let entities: Vec<[(&str, Option<&str>); 1]> = names.iter().map(|n| [("user", Some(n.as_str()))]).collect();
        let ops = [
            ("producer_byte_rate", Some(1.0)),
            ("consumer_byte_rate", Some(1.0)),
            ("request_percentage", Some(1.0)),
            ("controller_mutation_rate", Some(1.0)),
        ];
        let batch: Vec<WireAlteration<'_>> = entities.iter().map(|e| (&e[..], &ops[..])).collect();
        let mut q = ClientQuotas::new();
        assert_eq!(q.alter_batch(&batch, false), Err(err(POLICY_VIOLATION, POLICY_VIOLATION_MESSAGE)));
        assert!(q.is_empty());
        let outcomes = q.alter_batch(&batch[..2_500], false).unwrap();
        assert!(outcomes.iter().all(|o| o.result.is_ok()));
        assert_eq!(q.len(), 2_500);
    }

    fn describe_fixture() -> ClientQuotas {
        let mut q = ClientQuotas::new();
        let set = |q: &mut ClientQuotas, e: QuotaEntity| {
            let ops: &[(&str, Option<f64>)] = if e.is_ip() {
                &[("connection_creation_rate", Some(5.0))]
            } else {
                &[("producer_byte_rate", Some(100.0))]
            };
            q.alter(&e, ops).unwrap();
        };
        set(&mut q, QuotaEntity::user("alice"));
        set(&mut q, QuotaEntity::default_user());
        set(&mut q, QuotaEntity::user_client_id(Some("alice"), Some("app")));
        set(&mut q, QuotaEntity::user_client_id(Some("alice"), None));
        set(&mut q, QuotaEntity::user_client_id(None, None));
        set(&mut q, QuotaEntity::client_id("app"));
        set(&mut q, QuotaEntity::default_client_id());
        set(&mut q, QuotaEntity::ip(Some("10.0.0.1")));
        set(&mut q, QuotaEntity::ip(None));
        q
    }

    fn described(q: &ClientQuotas, components: &[(&str, i8, Option<&str>)], strict: bool) -> Vec<QuotaEntity> {
        q.describe(components, strict).unwrap().into_iter().map(|(e, _)| e).collect()
    }

    #[test]
    fn describe_filters_like_the_metadata_image() {
        let q = describe_fixture();
        assert_eq!(described(&q, &[], false).len(), 9);
        assert!(described(&q, &[], true).is_empty());
        assert_eq!(
            described(&q, &[("user", MATCH_TYPE_EXACT, Some("alice"))], false),
            vec![
                QuotaEntity::user("alice"),
                QuotaEntity::user_client_id(Some("alice"), None),
                QuotaEntity::user_client_id(Some("alice"), Some("app")),
            ]
        );
        assert_eq!(described(&q, &[("user", MATCH_TYPE_EXACT, Some("alice"))], true), vec![QuotaEntity::user("alice")]);
        assert_eq!(
            described(&q, &[("user", MATCH_TYPE_DEFAULT, None)], false),
            vec![QuotaEntity::default_user(), QuotaEntity::user_client_id(None, None)]
        );
        assert_eq!(
            described(&q, &[("client-id", MATCH_TYPE_DEFAULT, None)], true),
            vec![QuotaEntity::default_client_id()]
        );
        // SPECIFIED matches names and the default alike.
        assert_eq!(
            described(&q, &[("client-id", MATCH_TYPE_SPECIFIED, None)], true),
            vec![QuotaEntity::default_client_id(), QuotaEntity::client_id("app")]
        );
        assert_eq!(
            described(&q, &[("user", MATCH_TYPE_SPECIFIED, None), ("client-id", MATCH_TYPE_DEFAULT, None)], true),
            vec![QuotaEntity::user_client_id(None, None), QuotaEntity::user_client_id(Some("alice"), None),]
        );
        assert_eq!(
            described(&q, &[("ip", MATCH_TYPE_SPECIFIED, None)], false),
            vec![QuotaEntity::ip(None), QuotaEntity::ip(Some("10.0.0.1"))]
        );
        assert!(described(&q, &[("user", MATCH_TYPE_EXACT, Some("bob"))], false).is_empty());
        let values = q.describe(&[("ip", MATCH_TYPE_EXACT, Some("10.0.0.1"))], true).unwrap();
        assert_eq!(values[0].1, vec![(QuotaKey::ConnectionCreationRate, 5.0)]);
    }

    #[test]
    fn describe_rejects_bad_filters_like_kafka() {
        let q = describe_fixture();
        let check = |components: &[(&str, i8, Option<&str>)], expected: QuotaError| {
            assert_eq!(q.describe(components, false), Err(expected));
        };
        check(&[("", MATCH_TYPE_DEFAULT, None)], invalid("Invalid empty entity type."));
        check(
            &[("user", MATCH_TYPE_DEFAULT, None), ("user", MATCH_TYPE_EXACT, Some("a"))],
            invalid("Entity type user cannot appear more than once in the filter."),
        );
        check(&[("group", MATCH_TYPE_SPECIFIED, None)], err(UNSUPPORTED_VERSION, "Unsupported entity type group"));
        check(
            &[("user", MATCH_TYPE_EXACT, None)],
            invalid("Request specified MATCH_TYPE_EXACT, but set match string to null."),
        );
        check(
            &[("user", MATCH_TYPE_DEFAULT, Some("a"))],
            invalid("Request specified MATCH_TYPE_DEFAULT, but also specified a match string."),
        );
        check(
            &[("user", MATCH_TYPE_SPECIFIED, Some("a"))],
            invalid("Request specified MATCH_TYPE_SPECIFIED, but also specified a match string."),
        );
        check(&[("user", 7, None)], invalid("Unknown match type 7"));
        check(
            &[("ip", MATCH_TYPE_SPECIFIED, None), ("client-id", MATCH_TYPE_DEFAULT, None)],
            invalid(
                "Invalid entity filter component combination. IP filter component should not be used with user or clientId filter component.",
            ),
        );
    }

    #[test]
    fn text_encoding_round_trips_awkward_names() {
        let awkward = [
            "",
            " ",
            "%",
            "%41",
            "=",
            "a=b",
            ":",
            "a:b",
            "*",
            "<default>",
            "ü",
            "名前",
            "tab\there",
            "line\nbreak",
            "trailing ",
            "\u{7f}",
            "emoji 🦀",
        ];
        let mut q = ClientQuotas::new();
        for (i, name) in awkward.iter().enumerate() {
            let value = 1.0 + i as f64;
            q.replay(&QuotaEntity::user(name), QuotaKey::ProducerByteRate, Some(value));
            q.replay(&QuotaEntity::client_id(name), QuotaKey::RequestPercentage, Some(value / 3.0));
            q.replay(&QuotaEntity::user_client_id(Some(name), None), QuotaKey::ConsumerByteRate, Some(value));
        }
        q.replay(&QuotaEntity::ip(Some("::1")), QuotaKey::ConnectionCreationRate, Some(9.0));
        q.replay(&QuotaEntity::ip(None), QuotaKey::ConnectionCreationRate, Some(f64::INFINITY));
        q.replay(&QuotaEntity::default_user(), QuotaKey::ControllerMutationRate, Some(1e-300));
        q.replay(&QuotaEntity::default_user(), QuotaKey::ProducerByteRate, Some(f64::NAN));

        let lines = q.encode_lines();
        assert_eq!(lines.len(), q.len());
        for line in &lines {
            assert!(line.bytes().all(|b| b.is_ascii_graphic() || b == b' '), "{line:?}");
        }
        let decoded = ClientQuotas::from_text(&q.to_text()).unwrap();
        assert_eq!(decoded.len(), q.len());
        for ((e1, v1), (e2, v2)) in q.iter().zip(decoded.iter()) {
            assert_eq!(e1, e2);
            assert_eq!(v1.len(), v2.len());
            for ((k1, x1), (k2, x2)) in v1.iter().zip(v2.iter()) {
                assert_eq!(k1, k2);
                assert!(java_double_equals(*x1, *x2), "{e1} {k1}: {x1} vs {x2}");
            }
        }
        let mut one = ClientQuotas::new();
        let entity = QuotaEntity::user_client_id(Some("a b%=é"), None);
        one.alter(&entity, &[("producer_byte_rate", Some(5.0)), ("request_percentage", Some(0.5))]).unwrap();
        one.alter(&QuotaEntity::ip(None), &[("connection_creation_rate", Some(3.0))]).unwrap();
        assert_eq!(
            one.encode_lines(),
            [
                "ip connection_creation_rate=3",
                "user:a%20b%25%3D%C3%A9 client-id producer_byte_rate=5 request_percentage=0.5",
            ]
        );
    }

    #[test]
    fn decode_refuses_malformed_lines() {
        let mut q = ClientQuotas::new();
        for line in [
            "",
            "producer_byte_rate=1",
            "user:a",
            "user:a bogus=1",
            "user:a producer_byte_rate=x",
            "group:a producer_byte_rate=1",
            "user:a user:b producer_byte_rate=1",
            "user:a producer_byte_rate=1 client-id:b",
            "user:%zz producer_byte_rate=1",
            "user:%FF producer_byte_rate=1",
            "user:a  producer_byte_rate=1",
            "user:a producer_byte_rate=1 ",
            "ip:10.0.0.1 user:a connection_creation_rate=1",
            "ip:10.0.0.1 producer_byte_rate=1",
            "user:a connection_creation_rate=1",
            "user:a\tb producer_byte_rate=1",
        ] {
            assert!(q.decode_line(line).is_err(), "{line:?}");
        }
        assert!(q.is_empty());
        q.decode_line("user:a producer_byte_rate=1\r\n").unwrap();
        q.decode_line("user:a producer_byte_rate=2 consumer_byte_rate=3").unwrap();
        assert_eq!(q.value(&QuotaEntity::user("a"), QuotaKey::ProducerByteRate), Some(2.0));
        assert_eq!(q.len(), 1);
        assert!(ClientQuotas::from_text("user:a producer_byte_rate=1\n\nnope\n").unwrap_err().starts_with("line 3:"));
    }

    fn set(q: &mut ClientQuotas, entity: QuotaEntity, value: Option<f64>) {
        q.alter(&entity, &[("producer_byte_rate", value)]).unwrap();
    }

    fn resolved(q: &ClientQuotas, user: &str, client: &str) -> Option<(f64, QuotaEntity, (String, String))> {
        q.quota_for(user, client, QuotaKey::ProducerByteRate)
            .map(|r| (r.value, r.entity, (r.sensor.user, r.sensor.client_id)))
    }

    fn key(user: &str, client: &str) -> (String, String) {
        (user.to_owned(), client.to_owned())
    }

    #[test]
    fn precedence_walks_all_eight_levels() {
        let levels = [
            QuotaEntity::user_client_id(Some("u"), Some("c")),
            QuotaEntity::user_client_id(Some("u"), None),
            QuotaEntity::user("u"),
            QuotaEntity::user_client_id(None, Some("c")),
            QuotaEntity::user_client_id(None, None),
            QuotaEntity::default_user(),
            QuotaEntity::client_id("c"),
            QuotaEntity::default_client_id(),
        ];
        let sensors = [
            key("u", "c"),
            key("u", "c"),
            key("u", ""),
            key("u", "c"),
            key("u", "c"),
            key("u", ""),
            key("", "c"),
            key("", "c"),
        ];
        let mut q = ClientQuotas::new();
        for (i, entity) in levels.iter().enumerate() {
            set(&mut q, entity.clone(), Some(1000.0 * (i + 1) as f64));
        }
        // Other keys never shadow: only entities setting the key count.
        q.alter(&QuotaEntity::user_client_id(Some("u"), Some("c")), &[("consumer_byte_rate", Some(1.0))]).unwrap();
        for (i, entity) in levels.iter().enumerate() {
            assert_eq!(
                resolved(&q, "u", "c"),
                Some((1000.0 * (i + 1) as f64, entity.clone(), sensors[i].clone())),
                "level {}",
                i + 1
            );
            set(&mut q, entity.clone(), None);
        }
        assert_eq!(resolved(&q, "u", "c"), None);
        assert_eq!(q.quota_for("u", "c", QuotaKey::ConsumerByteRate).map(|r| r.value), Some(1.0));
        assert_eq!(
            q.sensor_key("u", "c", QuotaKey::ProducerByteRate),
            QuotaSensorKey { user: String::new(), client_id: "c".to_owned() }
        );
    }

    #[test]
    fn empty_names_follow_kafkas_tag_rules() {
        let mut q = ClientQuotas::new();
        set(&mut q, QuotaEntity::user_client_id(Some("u"), None), Some(10.0));
        // An empty client-id selects user + <default> client-id, but the
        // tags ("u", "") then resolve at the user level, where nothing is set.
        assert_eq!(
            q.sensor_key("u", "", QuotaKey::ProducerByteRate),
            QuotaSensorKey { user: "u".to_owned(), client_id: String::new() }
        );
        assert_eq!(resolved(&q, "u", ""), None);
        set(&mut q, QuotaEntity::default_client_id(), Some(20.0));
        assert_eq!(resolved(&q, "", "c").map(|r| r.0), Some(20.0));
        assert_eq!(resolved(&q, "", ""), None);
    }

    /// Kafka's `ClientQuotaManagerTest.testQuotaConfigPrecedence`, replayed
    /// with one sampler per sensor and a clock that never moves.
    #[test]
    fn kafka_precedence_scenario_throttles_the_same_clients() {
        let mut q = ClientQuotas::new();
        let mut sensors: HashMap<QuotaSensorKey, RateSampler> = HashMap::new();
        let mut check = |q: &ClientQuotas, user: &str, client: &str, bound: f64, value: f64, throttled: bool| {
            let r = q.quota_for(user, client, QuotaKey::ProducerByteRate).unwrap();
            assert_eq!(r.value, bound, "{user}/{client}");
            let sampler = sensors.entry(r.sensor).or_default();
            let throttle = sampler.record_and_throttle_time_ms(T0, value * 11.0, r.value);
            assert_eq!(throttle > 0, throttled, "{user}/{client}: {throttle}");
        };
        set(&mut q, QuotaEntity::default_user(), Some(1000.0));
        set(&mut q, QuotaEntity::default_client_id(), Some(2000.0));
        set(&mut q, QuotaEntity::user_client_id(None, None), Some(3000.0));
        set(&mut q, QuotaEntity::user("userA"), Some(4000.0));
        set(&mut q, QuotaEntity::user_client_id(Some("userA"), Some("client1")), Some(5000.0));
        set(&mut q, QuotaEntity::user("userB"), Some(6000.0));
        set(&mut q, QuotaEntity::user_client_id(Some("userB"), Some("client1")), Some(7000.0));
        set(&mut q, QuotaEntity::user_client_id(Some("userB"), None), Some(8000.0));
        set(&mut q, QuotaEntity::user("userC"), Some(10000.0));
        set(&mut q, QuotaEntity::client_id("client1"), Some(9000.0));

        check(&q, "userA", "client1", 5000.0, 4500.0, false);
        check(&q, "userA", "client2", 4000.0, 4500.0, true);
        check(&q, "userA", "client3", 4000.0, 0.0, true);
        check(&q, "userA", "client1", 5000.0, 0.0, false);
        check(&q, "userB", "client1", 7000.0, 8000.0, true);
        check(&q, "userB", "client2", 8000.0, 7000.0, false);
        check(&q, "userB", "client3", 8000.0, 7000.0, false);
        check(&q, "userD", "client1", 3000.0, 3500.0, true);
        check(&q, "userD", "client2", 3000.0, 2500.0, false);
        check(&q, "userE", "client1", 3000.0, 2500.0, false);

        set(&mut q, QuotaEntity::user_client_id(None, None), None);
        check(&q, "userD", "client1", 1000.0, 0.0, false);
        check(&q, "userE", "client4", 1000.0, 1500.0, true);
        check(&q, "userF", "client4", 1000.0, 800.0, false);
        check(&q, "userF", "client5", 1000.0, 800.0, true);

        set(&mut q, QuotaEntity::default_user(), None);
        check(&q, "userF", "client4", 2000.0, 0.0, false);
        check(&q, "userF", "client5", 2000.0, 0.0, false);
        check(&q, "userF", "client5", 2000.0, 2500.0, true);
        check(&q, "userG", "client5", 2000.0, 0.0, true);

        set(&mut q, QuotaEntity::user("userA"), Some(8000.0));
        set(&mut q, QuotaEntity::user_client_id(Some("userA"), Some("client1")), Some(10000.0));
        check(&q, "userA", "client2", 8000.0, 0.0, false);
        check(&q, "userA", "client2", 8000.0, 4500.0, true);
        check(&q, "userA", "client1", 10000.0, 0.0, false);
        check(&q, "userA", "client1", 10000.0, 6000.0, true);
        set(&mut q, QuotaEntity::user_client_id(Some("userA"), Some("client1")), None);
        check(&q, "userA", "client6", 8000.0, 0.0, true);
        set(&mut q, QuotaEntity::user_client_id(Some("userA"), Some("client6")), Some(11000.0));
        check(&q, "userA", "client6", 11000.0, 8500.0, false);
        set(&mut q, QuotaEntity::user_client_id(Some("userA"), None), Some(12000.0));
        set(&mut q, QuotaEntity::user_client_id(Some("userA"), Some("client6")), None);
        check(&q, "userA", "client6", 12000.0, 4000.0, true);
    }

    #[test]
    fn ip_quotas_resolve_by_address_then_default() {
        let mut q = ClientQuotas::new();
        let rate = |v: f64| [("connection_creation_rate", Some(v))];
        q.alter(&QuotaEntity::ip(Some("0:0:0:0:0:0:0:1")), &rate(5.0)).unwrap();
        q.alter(&QuotaEntity::ip(Some("10.0.0.1")), &rate(6.0)).unwrap();
        q.alter(&QuotaEntity::user("u"), &[("producer_byte_rate", Some(1.0))]).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(q.ip_quota(ip("::1")).map(|r| r.0), Some(5.0));
        assert_eq!(q.ip_quota(ip("10.0.0.1")).map(|r| r.0), Some(6.0));
        assert_eq!(q.ip_quota(ip("::ffff:10.0.0.1")).map(|r| r.0), Some(6.0));
        assert_eq!(q.ip_quota(ip("10.0.0.2")), None);
        q.alter(&QuotaEntity::ip(None), &rate(7.0)).unwrap();
        assert_eq!(q.ip_quota(ip("10.0.0.2")), Some((7.0, QuotaEntity::ip(None))));
    }

    /// Kafka's `ClientQuotaManagerTest.testQuotaViolation`.
    #[test]
    fn sampler_reproduces_kafkas_quota_violation_test() {
        let mut s = RateSampler::default();
        let mut now = T0;
        for _ in 0..10 {
            assert_eq!(s.record_and_throttle_time_ms(now, 400.0, 500.0), 0);
            now += 1000;
        }
        now += 500;
        // (400 * 10 + 2300) / 10.5 s = 600 B/s; (600 - 500) / 500 * 10.5 s.
        assert_eq!(s.record_and_throttle_time_ms(now, 2300.0, 500.0), 2100);
        assert!((s.rate(now) - 600.0).abs() < 1e-9);
        assert_eq!(s.window_size_ms(now), 10_500);
        now += 2100;
        for _ in 0..10 {
            s.record(now, 400.0);
            now += 1000;
        }
        assert_eq!(s.record_and_throttle_time_ms(now, 0.0, 500.0), 0);
    }

    #[test]
    fn steady_rate_under_quota_never_throttles() {
        let mut s = RateSampler::default();
        let mut now = T0;
        for _ in 0..600 {
            // 900 B every 100 ms = 9000 B/s under a 10000 B/s quota.
            assert_eq!(s.record_and_throttle_time_ms(now, 900.0, 10_000.0), 0);
            now += 100;
        }
        assert!((s.rate(now) - 9000.0).abs() < 1000.0);
    }

    #[test]
    fn burst_twice_over_quota_throttles_about_a_window() {
        // One burst of twice what the 10-window span allows, on a new sensor:
        // 20000 B over the assumed 10 s = 2000 B/s against 1000 B/s, so the
        // delay is (2000 - 1000) / 1000 * 10 s.
        let mut s = RateSampler::default();
        assert_eq!(s.record_and_throttle_time_ms(T0, 20_000.0, 1000.0), 10_000);
        // A client sustaining twice the quota is held back by the whole span.
        let mut s = RateSampler::default();
        let mut now = T0;
        let mut throttle = 0;
        for _ in 0..30 {
            throttle = s.record_and_throttle_time_ms(now, 2000.0, 1000.0);
            now += 1000;
        }
        assert!((10_000..=12_000).contains(&throttle), "{throttle}");
        assert_eq!(s.bounded_throttle_time_ms(now - 1000, 1000.0, 1000), 1000);
    }

    #[test]
    fn rate_decays_as_windows_pass() {
        let mut s = RateSampler::default();
        s.record(T0, 11_000.0);
        let first = s.rate(T0);
        assert_eq!(first, 1100.0);
        assert_eq!(s.rate(T0 + 5_000), 11_000.0 / 10.0);
        // Past ten windows the elapsed time dominates.
        assert_eq!(s.rate(T0 + 10_999), 11_000.0 / 10.999);
        // Eleven windows after its last event the sample is dropped.
        assert_eq!(s.rate(T0 + 11_000), 0.0);
        assert_eq!(s.throttle_time_ms(T0 + 11_000, 1.0), 0);
        // A fresh sample after the gap starts the ten-window floor again.
        s.record(T0 + 20_000, 100.0);
        assert_eq!(s.window_size_ms(T0 + 20_000), 10_000);
        assert_eq!(s.rate(T0 + 20_000), 10.0);
    }

    #[test]
    fn sampler_ring_reuses_slots_and_keeps_the_overlapping_sample() {
        let mut s = RateSampler::default();
        // Slot 0 starts at T0 and last sees an event at T0 + 999.
        s.record(T0, 1.0);
        s.record(T0 + 999, 1.0);
        for k in 1..=11 {
            s.record(T0 + k * 1000, 1.0);
        }
        assert_eq!(s.samples.len(), 12);
        // Slot 0 is not obsolete yet and still counts, from its start: the
        // span exceeds eleven windows.
        assert_eq!(s.window_size_ms(T0 + 11_500), 11_500);
        assert_eq!(s.rate(T0 + 11_500), 13.0 / 11.5);
        // The next window reuses slot 0; slot 1 has expired.
        s.record(T0 + 12_000, 1.0);
        assert_eq!(s.samples.len(), 12);
        assert_eq!(s.rate(T0 + 12_000), 11.0 / 10.0);
    }

    #[test]
    fn sampler_survives_hostile_input() {
        let mut s = RateSampler::new(0, 0);
        assert_eq!(s.num_samples(), 1);
        assert_eq!(s.window_ms(), 1);
        s.record(u64::MAX, f64::MAX);
        s.record(0, f64::MAX);
        s.record(5, f64::NAN);
        let _ = s.rate(u64::MAX);
        let _ = s.throttle_time_ms(3, 1.0);
        let mut s = RateSampler::new(u32::MAX, u64::MAX);
        assert_eq!(s.num_samples(), MAX_QUOTA_WINDOW_NUM);
        s.record(10, 1e308);
        assert_eq!(s.throttle_time_ms(10, f64::NAN), 0);
        assert_eq!(s.throttle_time_ms(10, f64::INFINITY), 0);
        let huge = s.throttle_time_ms(10, f64::MIN_POSITIVE);
        assert!(huge > 0);
        // Time going backwards, as Kafka tolerates it.
        let mut s = RateSampler::default();
        s.record(T0, 1000.0);
        assert_eq!(s.window_size_ms(T0 - 500), 9_500);
        assert_eq!(RateSampler::default().max_value_in_quota_window(100.0), 1000.0);
        assert!(!RateSampler::default().is_expired(u64::MAX));
        assert!(!s.is_expired(T0 + INACTIVE_SENSOR_EXPIRATION_MS));
        assert!(s.is_expired(T0 + INACTIVE_SENSOR_EXPIRATION_MS + 1));
    }

    #[test]
    fn token_bucket_strict_and_permissive() {
        let quota = 10.0;
        let mut b = TokenBucket::default();
        // Full on first use: 11 windows × 1 s × 10/s.
        assert_eq!(b.tokens(T0, quota), 110.0);
        assert_eq!(b.try_record(T0, 150.0, quota), Ok(()), "accepted while not exhausted");
        assert_eq!(b.tokens(T0, quota), -40.0);
        assert_eq!(b.try_record(T0, 1.0, quota), Err(4000), "refused, -(-40)/10 s");
        assert_eq!(b.tokens(T0 + 1000, quota), -30.0);
        assert_eq!(b.try_record(T0 + 3999, 1.0, quota), Err(1), "still negative");
        assert_eq!(b.throttle_time_ms(T0 + 4000, quota), 0);
        assert_eq!(b.try_record(T0 + 4000, 5.0, quota), Ok(()));
        let mut b = TokenBucket::default();
        assert_eq!(b.record_permissive(T0, 120.0, quota), 1000);
        assert_eq!(b.tokens(T0 + 100_000, quota), 110.0);
        // A balance barely below zero is refused even though the delay
        // rounds to 0 ms.
        let mut b = TokenBucket::default();
        assert_eq!(b.try_record(T0, 11_000.000_4, 1000.0), Ok(()));
        assert_eq!(b.try_record(T0, 1.0, 1000.0), Err(0));
        let mut b = TokenBucket::new(0, 0);
        b.record(u64::MAX, f64::INFINITY, f64::NAN);
        assert_eq!(b.throttle_time_ms(0, f64::NAN), 0);
    }
}
