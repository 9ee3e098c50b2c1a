//! DescribeConfigs (v1-4): topic configs with their sources and synonyms
//! (topic override, dynamic broker configs, static broker default, built-in
//! default), and the broker's own configs (the topic defaults and
//! `log.cleaner.*` among them) with theirs; describing the broker resource
//! "" shows the cluster-wide dynamic defaults only, as Kafka does. Client
//! metrics subscriptions (type 16) show `interval.ms`, `match` and `metrics`.

use std::rc::Rc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::access::Access;
use crate::config::dynamic::{self, BrokerScope, DynamicConfigs, EffectiveConfig};
use crate::config::topic::{ConfigDef, ConfigKind, TopicConfig, TOPIC_CONFIG_DEFS};
use crate::config::{broker_synonyms, BrokerConfig, CleanerConfig, BROKER_SYNONYMS};
use crate::protocol::ResponseError;
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::Shard;

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
pub const RESOURCE_CLIENT_METRICS: i8 = 16;

/// `config_source` values (Kafka's `DescribeConfigsResponse.ConfigSource`).
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DYNAMIC_BROKER: i8 = 2;
const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;
const SOURCE_CLIENT_METRICS: i8 = 7;

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

/// A synonym: (name, value, source).
type Synonym = (String, String, i8);

struct Entry {
    name: String,
    /// `None`: not set and no default, as Kafka shows `log.retention.ms`.
    value: Option<String>,
    source: i8,
    kind: ConfigKind,
    read_only: bool,
    synonyms: Vec<Synonym>,
}

/// What the broker configs are made of: the static config, the dynamic
/// configs as stored, and what they make together.
struct BrokerView<'a> {
    broker: &'a BrokerConfig,
    dynamic: &'a DynamicConfigs,
    effective: EffectiveConfig,
}

impl BrokerView<'_> {
    /// Kafka's synonyms of broker config `name` (its `configSynonyms`): over
    /// every spelling in `names`, this broker's dynamic values, the
    /// cluster-wide dynamic defaults, the static values, the built-in
    /// defaults, each where set, from the first of `name` itself on.
    fn synonyms(
        &self,
        name: &str,
        names: &[&str],
        static_of: impl Fn(&str) -> Option<String>,
        default_of: impl Fn(&str) -> Option<String>,
    ) -> Vec<Synonym> {
        let own = BrokerScope::Broker(self.broker.node_id);
        let mut all = Vec::new();
        for (scope, source) in
            [(own, SOURCE_DYNAMIC_BROKER), (BrokerScope::ClusterDefault, SOURCE_DYNAMIC_DEFAULT_BROKER)]
        {
            all.extend(
                names.iter().filter_map(|n| self.dynamic.get(scope, n).map(|v| (n.to_string(), v.to_string(), source))),
            );
        }
        all.extend(names.iter().filter_map(|n| static_of(n).map(|v| (n.to_string(), v, SOURCE_STATIC_BROKER))));
        all.extend(names.iter().filter_map(|n| default_of(n).map(|v| (n.to_string(), v, SOURCE_DEFAULT))));
        let from = all.iter().position(|(n, _, _)| n == name).unwrap_or(all.len());
        all.split_off(from)
    }

    /// The synonyms of a broker config with one spelling.
    fn single_synonyms(&self, name: &str, static_value: Option<String>, default: String) -> Vec<Synonym> {
        self.synonyms(name, &[name], |_| static_value.clone(), |_| Some(default.clone()))
    }

    /// The synonyms of `key`, one of the broker spellings of topic config `def`'s default.
    fn topic_default_synonyms(&self, def: &ConfigDef, key: &str) -> Vec<Synonym> {
        let Some(first) = def.broker_name else { return Vec::new() };
        let names = broker_synonyms(first);
        let static_of = |n: &str| self.broker.static_topic_defaults.get(n).cloned();
        // Kafka's default belongs to one spelling: the first, unless another has it.
        let default_of = |n: &str| match BROKER_SYNONYMS.iter().find(|s| s.key == n) {
            Some(synonym) => synonym.default.map(str::to_string),
            None if names.len() > 1 => None,
            None => Some(TopicConfig::default().value_of(def.name).unwrap_or_default()),
        };
        self.synonyms(key, &names, static_of, default_of)
    }

    /// Every topic config with its value, source and synonyms (see [`unset_extension`]).
    fn topic_entries(&self, config: &TopicConfig) -> Vec<Entry> {
        TOPIC_CONFIG_DEFS
            .iter()
            .map(|def| {
                let mut synonyms = Vec::new();
                if let Some(v) = config.overrides.get(def.name) {
                    synonyms.push((def.name.to_string(), v.clone(), SOURCE_TOPIC));
                }
                if let Some(first) = def.broker_name {
                    synonyms.extend(self.topic_default_synonyms(def, first));
                }
                // A config no broker config sets (Kafka's remote-storage and
                // throttle configs) and the topic does not: Kafka's default.
                Entry {
                    name: def.name.to_string(),
                    value: Some(config.value_of(def.name).unwrap_or_default()),
                    source: synonyms.first().map_or(SOURCE_DEFAULT, |s| s.2),
                    kind: def.kind,
                    read_only: false,
                    synonyms,
                }
            })
            .collect()
    }

    /// Every config of this broker, with its source and synonyms.
    fn broker_entries(&self) -> Vec<Entry> {
        let broker = self.broker;
        let fixed = |name: &str, value: String, kind| Entry {
            synonyms: vec![(name.to_string(), value.clone(), SOURCE_STATIC_BROKER)],
            name: name.to_string(),
            value: Some(value),
            source: SOURCE_STATIC_BROKER,
            kind,
            read_only: true,
        };
        let mut entries = vec![
            fixed("node.id", broker.node_id.to_string(), ConfigKind::Int),
            fixed(
                "listeners",
                broker.listeners.iter().map(|l| format!("{}://{}", l.name, l.bind)).collect::<Vec<_>>().join(","),
                ConfigKind::String,
            ),
            fixed(
                "advertised.listeners",
                broker
                    .listeners
                    .iter()
                    .map(|l| format!("{}://{}:{}", l.name, l.advertised_host, l.advertised_port))
                    .collect::<Vec<_>>()
                    .join(","),
                ConfigKind::String,
            ),
            fixed(
                "listener.security.protocol.map",
                broker
                    .listeners
                    .iter()
                    .map(|l| format!("{}:{}", l.name, l.protocol.name()))
                    .collect::<Vec<_>>()
                    .join(","),
                ConfigKind::String,
            ),
            fixed(
                "authorizer.class.name",
                if broker.security.authorizer.enabled { crate::config::listeners::STANDARD_AUTHORIZER } else { "" }
                    .into(),
                ConfigKind::String,
            ),
            fixed("super.users", broker.security.authorizer.super_users.join(";"), ConfigKind::String),
            fixed(
                "allow.everyone.if.no.acl.found",
                broker.security.authorizer.allow_everyone_if_no_acl_found.to_string(),
                ConfigKind::Boolean,
            ),
            fixed("sasl.server.max.receive.size", broker.security.sasl_receive_bytes_max.to_string(), ConfigKind::Int),
            fixed("connections.max.reauth.ms", broker.security.connections_max_reauth_ms.to_string(), ConfigKind::Long),
            fixed("log.dirs", broker.data_dir.display().to_string(), ConfigKind::String),
        ];
        // Static configs with a Kafka default: DEFAULT_CONFIG while at it,
        // STATIC_BROKER_CONFIG once set to something else.
        use crate::constants as k;
        let with_defaults = [
            ("offsets.topic.num.partitions", k::OFFSETS_PARTITIONS.to_string(), "50".to_string(), ConfigKind::Int),
            (
                "num.partitions",
                broker.num_partitions.to_string(),
                k::NUM_PARTITIONS_DEFAULT.to_string(),
                ConfigKind::Int,
            ),
            (
                "auto.create.topics.enable",
                broker.auto_create_topics_enable.to_string(),
                true.to_string(),
                ConfigKind::Boolean,
            ),
            (
                "socket.request.max.bytes",
                broker.socket_request_max_bytes.to_string(),
                k::FRAME_BYTES_MAX_DEFAULT.to_string(),
                ConfigKind::Int,
            ),
            (
                "offsets.retention.minutes",
                broker.offsets_retention_minutes.to_string(),
                k::OFFSETS_RETENTION_MINUTES_DEFAULT.to_string(),
                ConfigKind::Int,
            ),
            (
                "group.initial.rebalance.delay.ms",
                broker.group_initial_rebalance_delay_ms.to_string(),
                k::GROUP_INITIAL_REBALANCE_DELAY_MS_DEFAULT.to_string(),
                ConfigKind::Int,
            ),
            (
                "log.retention.check.interval.ms",
                broker.log_retention_check_interval_ms.to_string(),
                k::LOG_RETENTION_CHECK_INTERVAL_MS_DEFAULT.to_string(),
                ConfigKind::Long,
            ),
        ];
        // KIP-848's group configs Sluice uses, static as in Kafka; a value
        // other than Kafka's default was set at start-up.
        let (groups, kafka) = (&broker.consumer_groups, crate::config::ConsumerGroupConfig::default());
        let group_configs = [
            ("group.consumer.session.timeout.ms", groups.session_timeout_ms, kafka.session_timeout_ms, ConfigKind::Int),
            (
                "group.consumer.heartbeat.interval.ms",
                groups.heartbeat_interval_ms,
                kafka.heartbeat_interval_ms,
                ConfigKind::Int,
            ),
            ("group.consumer.max.size", groups.max_size as u64, kafka.max_size as u64, ConfigKind::Int),
        ]
        .map(|(name, value, default, kind)| (name, value.to_string(), default.to_string(), kind))
        .into_iter()
        .chain([(
            "group.consumer.assignors",
            groups.assignors.join(","),
            kafka.assignors.join(","),
            ConfigKind::List,
        )]);
        for (name, value, default, kind) in with_defaults.into_iter().chain(group_configs) {
            let static_value = (value != default).then(|| value.clone());
            let synonyms = self.single_synonyms(name, static_value, default);
            entries.push(Entry {
                name: name.to_string(),
                value: Some(value),
                source: synonyms[0].2,
                kind,
                read_only: true,
                synonyms,
            });
        }
        // Each spelling of each topic default; one not set shows no value, as in Kafka.
        for def in TOPIC_CONFIG_DEFS {
            let Some(first) = def.broker_name else { continue };
            for key in broker_synonyms(first) {
                let synonyms = self.topic_default_synonyms(def, key);
                let kind = BROKER_SYNONYMS.iter().find(|s| s.key == key).map_or(def.kind, |s| s.kind);
                entries.push(Entry {
                    name: key.to_string(),
                    value: synonyms.first().map(|(_, v, _)| v.clone()),
                    source: synonyms.first().map_or(SOURCE_DEFAULT, |s| s.2),
                    kind,
                    read_only: !dynamic::is_dynamic(key),
                    synonyms,
                });
            }
        }
        let builtin = CleanerConfig::default();
        for key in crate::config::cleaner::KEYS {
            let static_value = broker.cleaner.configured.contains(key).then(|| broker.cleaner.value_of(key));
            let synonyms = self.single_synonyms(key, static_value.flatten(), builtin.value_of(key).unwrap_or_default());
            entries.push(Entry {
                name: key.to_string(),
                value: Some(self.effective.cleaner.value_of(key).unwrap_or_default()),
                source: synonyms[0].2,
                kind: CleanerConfig::kind_of(key).unwrap_or(ConfigKind::String),
                read_only: !dynamic::is_dynamic(key),
                synonyms,
            });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        entries.dedup_by(|a, b| a.name == b.name);
        entries
    }

    /// The resource "": the cluster-wide dynamic defaults, as stored.
    fn cluster_default_entries(&self) -> Vec<Entry> {
        self.dynamic
            .cluster_default
            .iter()
            .map(|(name, value)| Entry {
                name: name.clone(),
                value: Some(value.clone()),
                source: SOURCE_DYNAMIC_DEFAULT_BROKER,
                kind: dynamic::kind_of(name).unwrap_or(ConfigKind::String),
                read_only: !dynamic::is_dynamic(name),
                synonyms: vec![(name.clone(), value.clone(), SOURCE_DYNAMIC_DEFAULT_BROKER)],
            })
            .collect()
    }
}

/// A client metrics subscription's configs: each of Kafka's three, as set
/// or at its default (an unknown name shows the defaults, as in Kafka).
fn client_metrics_entries(configs: Option<&std::collections::BTreeMap<String, String>>) -> Vec<Entry> {
    use sluice_domain::telemetry::subscription::{self, CONFIG_NAMES, INTERVAL_MS_CONFIG};
    CONFIG_NAMES
        .iter()
        .map(|name| {
            let kind = if *name == INTERVAL_MS_CONFIG { ConfigKind::Int } else { ConfigKind::List };
            let set = configs.and_then(|c| c.get(*name));
            let value = match set {
                Some(v) if kind == ConfigKind::List => subscription::parse_list(v).join(","),
                Some(v) => v.trim().to_string(),
                None => subscription::default_value(name).unwrap_or_default(),
            };
            let synonyms =
                set.map(|_| vec![(name.to_string(), value.clone(), SOURCE_CLIENT_METRICS)]).unwrap_or_default();
            let source = if set.is_some() { SOURCE_CLIENT_METRICS } else { SOURCE_DEFAULT };
            Entry { name: name.to_string(), value: Some(value), source, kind, read_only: false, synonyms }
        })
        .collect()
}

pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let version = ctx.version();
    let catalog = shard.catalog();
    let access = Access::of(shard, ctx);
    let view = BrokerView {
        broker: &shard.config,
        dynamic: &catalog.broker_configs,
        effective: shard.config.with_stored_dynamic(&catalog.broker_configs).0,
    };
    let results = request
        .resources
        .iter()
        .map(|resource| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let denied = |code: ResponseError| {
                result
                    .clone()
                    .with_error_code(code.code())
                    .with_error_message(Some(s("Authorization failed.".to_string())))
            };
            let entries = match resource.resource_type {
                RESOURCE_TOPIC if !access.topic(AclOperation::DescribeConfigs, resource.resource_name.as_str()) => {
                    return denied(ResponseError::TopicAuthorizationFailed)
                }
                RESOURCE_BROKER | RESOURCE_CLIENT_METRICS if !access.cluster(AclOperation::DescribeConfigs) => {
                    return denied(ResponseError::ClusterAuthorizationFailed)
                }
                RESOURCE_CLIENT_METRICS if resource.resource_name.is_empty() => {
                    return result
                        .with_error_code(ResponseError::InvalidRequest.code())
                        .with_error_message(Some(s("Client metrics subscription name must not be empty")))
                }
                RESOURCE_CLIENT_METRICS => {
                    client_metrics_entries(catalog.client_metrics.get(resource.resource_name.as_str()))
                }
                RESOURCE_TOPIC => match catalog.topic(resource.resource_name.as_str()) {
                    Some(topic) => view.topic_entries(&topic.config),
                    None => {
                        return result
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_error_message(Some(s(format!("Topic {} does not exist.", resource.resource_name))))
                    }
                },
                RESOURCE_BROKER => {
                    let name = resource.resource_name.as_str();
                    let node_id = shard.config.node_id;
                    let refused = match name.parse::<i32>() {
                        _ if name.is_empty() => None,
                        Ok(id) if id == node_id => None,
                        Ok(_) => Some(format!(
                            "Unexpected broker id, expected {node_id} or empty string, but received {name}"
                        )),
                        Err(_) => Some(format!("Broker id must be an integer, but it is: {name}")),
                    };
                    if let Some(message) = refused {
                        return result
                            .with_error_code(ResponseError::InvalidRequest.code())
                            .with_error_message(Some(s(message)));
                    }
                    if name.is_empty() {
                        view.cluster_default_entries()
                    } else {
                        view.broker_entries()
                    }
                }
                other => {
                    return result
                        .with_error_code(ResponseError::InvalidRequest.code())
                        .with_error_message(Some(s(format!("Resource type {other} is not supported."))))
                }
            };
            let keys: Option<Vec<&str>> =
                resource.configuration_keys.as_ref().map(|k| k.iter().map(|k| k.as_str()).collect());
            let configs = entries
                .into_iter()
                .filter(|e| match keys.as_ref() {
                    Some(k) => k.contains(&e.name.as_str()),
                    None => !unset_extension(e),
                })
                .map(|e| {
                    let mut c = DescribeConfigsResourceResult::default()
                        .with_name(s(e.name))
                        .with_value(e.value.map(s))
                        .with_read_only(e.read_only)
                        .with_config_source(e.source);
                    if request.include_synonyms {
                        c = c.with_synonyms(
                            e.synonyms
                                .into_iter()
                                .map(|(n, v, src)| {
                                    DescribeConfigsSynonym::default()
                                        .with_name(s(n))
                                        .with_value(Some(s(v)))
                                        .with_source(src)
                                })
                                .collect(),
                        );
                    }
                    if version >= 3 {
                        c = c.with_config_type(e.kind as i8);
                    }
                    c
                })
                .collect();
            result.with_configs(configs)
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

/// A config beyond Kafka's that the topic does not set: left out of a full
/// listing (`kafka-configs --describe --all` shows what Kafka shows), given
/// when asked for by name.
fn unset_extension(entry: &Entry) -> bool {
    entry.source == SOURCE_DEFAULT && crate::config::topic::def_of(&entry.name).is_some_and(ConfigDef::extension)
}
