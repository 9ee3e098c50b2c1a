//! A node of a cluster, configured with KRaft's names: `process.roles`,
//! `controller.quorum.voters`, `controller.listener.names` and the
//! `CONTROLLER` listener among `listeners`, `broker.session.timeout.ms`,
//! `broker.heartbeat.interval.ms`.
//!
//! Without `controller.quorum.voters` the broker is a single node, as the
//! embedded default is, and `process.roles` is read and not used (Kafka 4's
//! `controller.quorum.bootstrap.servers` is refused unless it names one
//! server of a combined node, Kafka's standalone configuration). With it the
//! node is either a voter of the metadata quorum and a broker
//! (`process.roles=broker,controller`, Kafka's combined mode), or a broker
//! alone (`process.roles=broker`) that follows the quorum's log as an
//! observer: how a cluster grows past its voters. A broker alone serves other
//! brokers (replica fetches, transaction requests) on the listener
//! `inter.broker.listener.name` names (by default the one named after
//! `security.inter.broker.protocol`, `PLAINTEXT`); a combined node serves
//! them on its controller listener.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};

use super::listeners::controller_listener;
use super::{from_file, invalid, ConfigError, SecurityProtocol};
use crate::constants::{
    BROKER_HEARTBEAT_INTERVAL_MS_DEFAULT, BROKER_SESSION_TIMEOUT_MS_DEFAULT, CLUSTER_BROKERS_MAX, QUORUM_VOTERS_MAX,
    REPLICA_LAG_TIME_MAX_MS_DEFAULT,
};

/// The keys this module reads.
pub const KEYS: &[&str] = &[
    "process.roles",
    "controller.quorum.voters",
    "controller.listener.names",
    "broker.session.timeout.ms",
    "broker.heartbeat.interval.ms",
    "default.replication.factor",
    "replica.lag.time.max.ms",
    "inter.broker.listener.name",
    "security.inter.broker.protocol",
];

/// One voter of `controller.quorum.voters`: `id@host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voter {
    pub id: i32,
    pub host: String,
    pub port: u16,
}

/// The node's place in a cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Every voter of the metadata quorum, this node among them, by id.
    pub voters: Vec<Voter>,
    /// `controller.quorum.voters` as given (the cluster id is derived from it).
    pub voters_text: String,
    /// The controller listener's name (`controller.listener.names`' first).
    pub controller_listener: String,
    /// Where this node's controller listener binds: a voter's; `None` on a
    /// broker alone (`process.roles=broker`), which follows the quorum.
    pub controller_bind: Option<SocketAddr>,
    /// The listener other brokers send their requests to (replica fetches,
    /// transaction markers): the controller listener on a voter,
    /// `inter.broker.listener.name` on a broker alone.
    pub inter_broker_listener: String,
    /// How long a broker may go unheard before the quorum's leader fences it.
    pub broker_session_timeout_ms: u64,
    /// How often a broker tells the quorum's leader it is alive.
    pub broker_heartbeat_interval_ms: u64,
    /// Partitions created without a replication factor get this many replicas.
    pub default_replication_factor: i16,
    /// A follower that has not caught up with its leader for this long
    /// leaves the in-sync replicas.
    pub replica_lag_time_max_ms: u64,
}

/// Parses `controller.quorum.voters`: `id@host:port,...`.
pub fn parse_voters(text: &str) -> Result<Vec<Voter>, ConfigError> {
    const KEY: &str = "controller.quorum.voters";
    let mut voters: Vec<Voter> = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (id, address) =
            entry.split_once('@').ok_or_else(|| invalid(KEY, format!("expected id@host:port, got {entry:?}")))?;
        let id: i32 = id.trim().parse().map_err(|_| invalid(KEY, format!("bad node id in {entry:?}")))?;
        if id < 0 {
            return Err(invalid(KEY, format!("node id in {entry:?} is negative")));
        }
        let (host, port) =
            address.rsplit_once(':').ok_or_else(|| invalid(KEY, format!("expected id@host:port, got {entry:?}")))?;
        let port: u16 = port.parse().map_err(|_| invalid(KEY, format!("bad port in {entry:?}")))?;
        let host = host.trim_matches(|c| c == '[' || c == ']').to_string();
        if host.is_empty() || port == 0 {
            return Err(invalid(KEY, format!("{entry:?} needs a host and a port")));
        }
        if voters.iter().any(|v| v.id == id) {
            return Err(invalid(KEY, format!("node {id} is named twice")));
        }
        voters.push(Voter { id, host, port });
    }
    if voters.is_empty() {
        return Err(invalid(KEY, "names no voter"));
    }
    if voters.len() > QUORUM_VOTERS_MAX {
        return Err(invalid(KEY, format!("at most {QUORUM_VOTERS_MAX} voters")));
    }
    voters.sort_by_key(|v| v.id);
    Ok(voters)
}

/// Kafka 4's dynamic quorum (KIP-853) names the controllers it starts from in
/// `controller.quorum.bootstrap.servers`. A combined node naming only
/// itself there (Kafka's standalone `server.properties`) is a single node;
/// a broker alone, or a node naming several, wants a cluster that Sluice
/// forms from `controller.quorum.voters` only: refused, so that it never
/// starts as a single node of its own by mistake.
fn refuse_dynamic_quorum(file: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    const KEY: &str = "controller.quorum.bootstrap.servers";
    let Some(servers) = file.get(KEY) else { return Ok(()) };
    let broker_alone = file
        .get("process.roles")
        .is_some_and(|roles| !roles.split(',').any(|r| r.trim().eq_ignore_ascii_case("controller")));
    let named = servers.split(',').filter(|s| !s.trim().is_empty()).count();
    if broker_alone || named > 1 {
        return Err(invalid(
            KEY,
            "a Sluice cluster is formed from controller.quorum.voters (id@host:port of every voter, the \
             same on every node); the dynamic quorum's bootstrap servers are not supported",
        ));
    }
    Ok(())
}

impl Voter {
    /// The voter's address, resolved now.
    pub fn address(&self) -> std::io::Result<SocketAddr> {
        (self.host.as_str(), self.port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::other(format!("{}:{} resolves to nothing", self.host, self.port)))
    }
}

/// The cluster settings of the file, or `None` for a single node.
pub fn resolve(
    listeners: &str,
    node_id: i32,
    file: &BTreeMap<String, String>,
) -> Result<Option<ClusterConfig>, ConfigError> {
    let Some(voters_text) = file.get("controller.quorum.voters") else {
        refuse_dynamic_quorum(file)?;
        return Ok(None);
    };
    let voters = parse_voters(voters_text)?;
    let roles: Vec<String> = file
        .get("process.roles")
        .map(|t| t.split(',').map(|r| r.trim().to_ascii_lowercase()).filter(|r| !r.is_empty()).collect())
        .unwrap_or_default();
    for role in &roles {
        if role != "broker" && role != "controller" {
            return Err(invalid("process.roles", format!("unknown role {role:?}: broker and controller are")));
        }
    }
    let controller = roles.iter().any(|r| r == "controller");
    if !roles.iter().any(|r| r == "broker") {
        return Err(invalid(
            "process.roles",
            "a node of a Sluice cluster is a broker (process.roles=broker,controller for a voter of the \
             metadata quorum, process.roles=broker for a broker that follows it); controllers alone are \
             not supported",
        ));
    }
    if node_id as usize >= CLUSTER_BROKERS_MAX {
        return Err(invalid("node.id", format!("a cluster node's id is below {CLUSTER_BROKERS_MAX}")));
    }
    let voter = voters.iter().any(|v| v.id == node_id);
    if controller && !voter {
        return Err(invalid("controller.quorum.voters", format!("node.id {node_id} is not one of the voters")));
    }
    if !controller && voter {
        return Err(invalid(
            "node.id",
            format!("{node_id} is a voter of controller.quorum.voters; a broker alone has an id of its own"),
        ));
    }
    let (controller_listener, controller_bind, inter_broker_listener) = if controller {
        let Some((name, protocol, bind)) = controller_listener(listeners, file)? else {
            return Err(invalid(
                "controller.listener.names",
                "a controller names its controller listener (controller.listener.names=CONTROLLER, \
                 with CONTROLLER://host:port among listeners)",
            ));
        };
        if protocol != SecurityProtocol::Plaintext {
            return Err(invalid(
                "listener.security.protocol.map",
                format!("the controller listener {name} is PLAINTEXT; {} is not supported on it", protocol.name()),
            ));
        }
        (name.clone(), Some(bind), name)
    } else {
        (broker_controller_listener(listeners, file)?, None, inter_broker_listener(listeners, file)?)
    };
    let broker_session_timeout_ms =
        from_file(file, "broker.session.timeout.ms")?.unwrap_or(BROKER_SESSION_TIMEOUT_MS_DEFAULT);
    let broker_heartbeat_interval_ms =
        from_file(file, "broker.heartbeat.interval.ms")?.unwrap_or(BROKER_HEARTBEAT_INTERVAL_MS_DEFAULT);
    if broker_heartbeat_interval_ms == 0 || broker_heartbeat_interval_ms >= broker_session_timeout_ms {
        return Err(invalid(
            "broker.heartbeat.interval.ms",
            format!("must be at least 1 and below broker.session.timeout.ms ({broker_session_timeout_ms})"),
        ));
    }
    let default_replication_factor: i64 = from_file(file, "default.replication.factor")?.unwrap_or(1);
    // Checked against the brokers registered when a topic is created, as Kafka does.
    if !(1..=CLUSTER_BROKERS_MAX as i64).contains(&default_replication_factor) {
        return Err(invalid("default.replication.factor", format!("must be 1..={CLUSTER_BROKERS_MAX}")));
    }
    let replica_lag_time_max_ms =
        from_file(file, "replica.lag.time.max.ms")?.unwrap_or(REPLICA_LAG_TIME_MAX_MS_DEFAULT);
    if replica_lag_time_max_ms == 0 {
        return Err(invalid("replica.lag.time.max.ms", "must be at least 1"));
    }
    Ok(Some(ClusterConfig {
        voters,
        voters_text: voters_text.clone(),
        controller_listener,
        controller_bind,
        inter_broker_listener,
        broker_session_timeout_ms,
        broker_heartbeat_interval_ms,
        default_replication_factor: default_replication_factor as i16,
        replica_lag_time_max_ms,
    }))
}

/// A broker alone's `controller.listener.names`: Kafka requires it, and
/// that it is not one of the broker's own listeners.
fn broker_controller_listener(listeners: &str, file: &BTreeMap<String, String>) -> Result<String, ConfigError> {
    let Some(name) = file
        .get("controller.listener.names")
        .and_then(|t| t.split(',').map(|n| n.trim().to_ascii_uppercase()).find(|n| !n.is_empty()))
    else {
        return Err(invalid(
            "controller.listener.names",
            "a broker names the listener it reaches the controllers on (controller.listener.names=CONTROLLER)",
        ));
    };
    if controller_listener(listeners, file).is_ok_and(|l| l.is_some()) {
        return Err(invalid(
            "controller.listener.names",
            format!("{name} is one of the listeners; a broker alone (process.roles=broker) has no controller listener"),
        ));
    }
    Ok(name)
}

/// A broker alone's listener for other brokers: `inter.broker.listener.name`,
/// or the listener named after `security.inter.broker.protocol`
/// (`PLAINTEXT` by default), as Kafka picks it. It must be PLAINTEXT: the
/// requests brokers send each other carry no TLS or SASL.
fn inter_broker_listener(listeners: &str, file: &BTreeMap<String, String>) -> Result<String, ConfigError> {
    let (key, name) = match file.get("inter.broker.listener.name") {
        Some(name) => ("inter.broker.listener.name", name.trim().to_ascii_uppercase()),
        None => (
            "security.inter.broker.protocol",
            file.get("security.inter.broker.protocol")
                .map_or("PLAINTEXT".to_string(), |p| p.trim().to_ascii_uppercase()),
        ),
    };
    let map = super::listeners::protocol_map(file.get("listener.security.protocol.map"))?;
    let Some((_, host, port)) =
        super::listeners::parse_endpoints("listeners", listeners)?.into_iter().find(|(n, _, _)| *n == name)
    else {
        return Err(invalid(key, format!("{name} is not one of the listeners")));
    };
    let (protocol, _) = super::listeners::protocol_and_bind(&map, &name, &host, port)?;
    if protocol != SecurityProtocol::Plaintext {
        return Err(invalid(
            key,
            format!("the inter-broker listener {name} is PLAINTEXT; {} is not supported on it", protocol.name()),
        ));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    const LISTENERS: &str = "PLAINTEXT://:9092,CONTROLLER://127.0.0.1:9093";

    fn combined(voters: &str) -> BTreeMap<String, String> {
        file(&[
            ("process.roles", "broker,controller"),
            ("controller.quorum.voters", voters),
            ("controller.listener.names", "CONTROLLER"),
            ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"),
        ])
    }

    #[test]
    fn without_voters_the_node_is_single() {
        let f = file(&[("process.roles", "broker,controller")]);
        assert!(resolve(LISTENERS, 1, &f).unwrap().is_none());
    }

    #[test]
    fn a_dynamic_quorum_is_refused_unless_it_is_a_single_node() {
        let standalone =
            file(&[("process.roles", "broker,controller"), ("controller.quorum.bootstrap.servers", "localhost:9093")]);
        assert!(resolve(LISTENERS, 1, &standalone).unwrap().is_none());
        let three = file(&[
            ("process.roles", "broker,controller"),
            ("controller.quorum.bootstrap.servers", "a:9093,b:9093,c:9093"),
        ]);
        assert!(resolve(LISTENERS, 1, &three).unwrap_err().to_string().contains("controller.quorum.voters"));
        let broker = file(&[("process.roles", "broker"), ("controller.quorum.bootstrap.servers", "localhost:9093")]);
        assert!(resolve(LISTENERS, 4, &broker)
            .unwrap_err()
            .to_string()
            .contains("controller.quorum.bootstrap.servers"));
    }

    #[test]
    fn a_kraft_combined_node_is_read() {
        let c =
            resolve(LISTENERS, 2, &combined("3@localhost:9095, 1@localhost:9093,2@localhost:9094")).unwrap().unwrap();
        assert_eq!(c.voters.iter().map(|v| v.id).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(c.voters[0], Voter { id: 1, host: "localhost".into(), port: 9093 });
        assert_eq!(c.controller_listener, "CONTROLLER");
        assert_eq!(c.controller_bind, Some("127.0.0.1:9093".parse().unwrap()));
        assert_eq!(c.inter_broker_listener, "CONTROLLER");
        assert_eq!(c.broker_session_timeout_ms, 9_000);
        assert_eq!(c.broker_heartbeat_interval_ms, 2_000);
    }

    #[test]
    fn bad_settings_are_refused_with_their_key() {
        let err = |f: BTreeMap<String, String>, node: i32| resolve(LISTENERS, node, &f).unwrap_err().to_string();
        assert!(err(combined("1@localhost:9093"), 2).contains("node.id 2 is not one of the voters"));
        assert!(err(combined("1@localhost"), 1).contains("controller.quorum.voters"));
        assert!(err(combined("1@localhost:9093,1@localhost:9094"), 1).contains("named twice"));
        assert!(err(combined("x@localhost:9093"), 1).contains("bad node id"));
        let mut f = combined("1@localhost:9093");
        f.insert("process.roles".into(), "controller".into());
        assert!(err(f, 1).contains("process.roles"));
        let mut f = combined("1@localhost:9093");
        f.remove("controller.listener.names");
        assert!(err(f, 1).contains("controller.listener.names"));
        let mut f = combined("1@localhost:9093");
        f.insert("default.replication.factor".into(), "0".into());
        assert!(err(f, 1).contains("default.replication.factor"));
        let mut f = combined("1@localhost:9093");
        f.insert("replica.lag.time.max.ms".into(), "0".into());
        assert!(err(f, 1).contains("replica.lag.time.max.ms"));
        let mut f = combined("1@localhost:9093");
        f.insert("broker.heartbeat.interval.ms".into(), "9000".into());
        assert!(err(f, 1).contains("broker.heartbeat.interval.ms"));
        let f = combined("1@localhost:9093");
        assert!(resolve("PLAINTEXT://:9092", 1, &f).unwrap_err().to_string().contains("not one of the listeners"));
    }

    fn broker_alone() -> BTreeMap<String, String> {
        let mut f = combined("1@localhost:9093,2@localhost:9094,3@localhost:9095");
        f.insert("process.roles".into(), "broker".into());
        f
    }

    #[test]
    fn a_broker_alone_follows_the_voters_and_serves_brokers_on_its_plaintext_listener() {
        let c = resolve("PLAINTEXT://:9092", 4, &broker_alone()).unwrap().unwrap();
        assert_eq!(c.voters.len(), 3);
        assert_eq!(c.controller_bind, None);
        assert_eq!(c.controller_listener, "CONTROLLER");
        assert_eq!(c.inter_broker_listener, "PLAINTEXT");
        let mut f = broker_alone();
        f.insert(
            "listener.security.protocol.map".into(),
            "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,REPL:PLAINTEXT".into(),
        );
        f.insert("inter.broker.listener.name".into(), "REPL".into());
        let c = resolve("PLAINTEXT://:9092,REPL://:9096", 4, &f).unwrap().unwrap();
        assert_eq!(c.inter_broker_listener, "REPL");
    }

    #[test]
    fn a_broker_alone_is_refused_what_kafka_refuses() {
        let err = |listeners: &str, f: BTreeMap<String, String>, node: i32| {
            resolve(listeners, node, &f).unwrap_err().to_string()
        };
        // Its id is its own, not a voter's.
        assert!(err("PLAINTEXT://:9092", broker_alone(), 2).contains("is a voter"));
        // It has no controller listener of its own, but names the controllers'.
        assert!(err(LISTENERS, broker_alone(), 4).contains("has no controller listener"));
        let mut f = broker_alone();
        f.remove("controller.listener.names");
        assert!(err("PLAINTEXT://:9092", f, 4).contains("controller.listener.names"));
        // Its inter-broker listener exists and is PLAINTEXT.
        let mut f = broker_alone();
        f.insert("inter.broker.listener.name".into(), "REPL".into());
        assert!(err("PLAINTEXT://:9092", f, 4).contains("REPL is not one of the listeners"));
        let mut f = broker_alone();
        f.insert("listener.security.protocol.map".into(), "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SECURE:SSL".into());
        f.insert("inter.broker.listener.name".into(), "SECURE".into());
        assert!(err("PLAINTEXT://:9092,SECURE://:9093", f, 4).contains("not supported"));
        // A controller alone is not supported.
        let mut f = broker_alone();
        f.insert("process.roles".into(), "controller".into());
        assert!(err("PLAINTEXT://:9092", f, 4).contains("controllers alone are not supported"));
    }
}
