//! The records of the metadata log: every change to the cluster's state is
//! one of these, committed by the quorum and applied in log order on every
//! node. Stored as JSON, one record per Raft entry.

use serde::{Deserialize, Serialize};

/// One way clients and brokers reach a broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The listener's name (`PLAINTEXT`, `CONTROLLER`, ...).
    pub name: String,
    pub host: String,
    pub port: u16,
    /// The listener's security protocol, by Kafka's name.
    pub protocol: String,
}

/// A change to the cluster's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MetadataRecord {
    /// A broker (re)started and joins the cluster: a new incarnation, and a
    /// new broker epoch (the record's log index). It stays fenced until the
    /// leader has heard from this incarnation.
    RegisterBroker {
        id: i32,
        /// Random per start of the process: a restart is told apart from a
        /// late message of the previous run.
        incarnation: String,
        endpoints: Vec<Endpoint>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rack: Option<String>,
        /// The endpoint (by listener name) other brokers send their
        /// requests to; a voter's registration before brokers alone
        /// existed names none, and means its controller listener.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inter_broker: Option<String>,
    },
    /// The leader stopped hearing from the broker's incarnation.
    FenceBroker { id: i32, epoch: u64 },
    /// The leader hears from the broker's incarnation again.
    UnfenceBroker { id: i32, epoch: u64 },
    /// A topic and where its partitions live. A topic of that name already
    /// in the log wins: this record then changes nothing.
    CreateTopic {
        name: String,
        /// The topic id (a UUID).
        id: String,
        /// Each partition's replicas, the leader first, by partition index.
        partitions: Vec<Vec<i32>>,
        /// The topic's config overrides.
        configs: Vec<(String, String)>,
    },
    /// Removes the topic, if it still has this id.
    DeleteTopic { name: String, id: String },
    /// Replaces the topic's config overrides, if it still has this id.
    SetTopicConfigs { name: String, id: String, configs: Vec<(String, String)> },
    /// The cluster's security state (ACLs, SCRAM credentials, quotas) in
    /// its stored text form, replacing the one of version `base`; a record
    /// made from an older version changes nothing (its proposer is told).
    SetSecurity { base: u64, text: String },
    /// Adds partitions after the topic's last, if it still has this id and
    /// as many partitions as `after`.
    CreatePartitions { name: String, id: String, after: usize, partitions: Vec<Vec<i32>> },
    /// A broker stopping (controlled shutdown): fenced as a quiet broker
    /// is, its leaderships moved to other in-sync replicas at once, and not
    /// unfenced again until it registers anew.
    ShutdownBroker { id: i32, epoch: u64 },
    /// An operator's election of `leader` (ElectLeaders, preferred): applied
    /// only while `leader` is a live in-sync replica that does not lead yet.
    ElectLeader { name: String, id: String, partition: i32, leader: i32 },
    /// A partition leader's change of its in-sync replicas (Kafka's
    /// AlterPartition): applied only while `leader_epoch` is still the
    /// partition's, and only to replicas of it that include its leader.
    AlterIsr { name: String, id: String, partition: i32, leader_epoch: i32, isr: Vec<i32> },
    /// An operator's reassignment of a partition to `target` replicas
    /// (AlterPartitionReassignments), or the cancellation of the one in
    /// progress (`None`).
    ReassignPartition { name: String, id: String, partition: i32, target: Option<Vec<i32>> },
    /// A broker's replica of a partition failed (a write or fsync error, a
    /// full disk): it leaves the in-sync set, hands the leadership over if
    /// it led, and does not rejoin until the broker restarts (`epoch`: the
    /// incarnation whose replica failed).
    ReplicaFailed { name: String, id: String, partition: i32, broker: i32, epoch: u64 },
}

impl MetadataRecord {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("records always serialize")
    }

    pub fn decode(bytes: &[u8]) -> Result<MetadataRecord, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registration_written_before_inter_broker_listeners_still_reads() {
        let old = r#"{"type":"RegisterBroker","id":1,"incarnation":"a","endpoints":[]}"#;
        let record = MetadataRecord::decode(old.as_bytes()).unwrap();
        assert!(matches!(record, MetadataRecord::RegisterBroker { inter_broker: None, .. }), "{record:?}");
    }

    #[test]
    fn records_round_trip_as_json() {
        let records = [
            MetadataRecord::RegisterBroker {
                id: 2,
                incarnation: "a1".into(),
                endpoints: vec![Endpoint {
                    name: "PLAINTEXT".into(),
                    host: "localhost".into(),
                    port: 9092,
                    protocol: "PLAINTEXT".into(),
                }],
                rack: None,
                inter_broker: Some("PLAINTEXT".into()),
            },
            MetadataRecord::FenceBroker { id: 2, epoch: 7 },
            MetadataRecord::UnfenceBroker { id: 2, epoch: 7 },
            MetadataRecord::CreateTopic {
                name: "t".into(),
                id: "6ba7b810-9dad-11d1-80b4-00c04fd430c8".into(),
                partitions: vec![vec![1], vec![2]],
                configs: vec![("cleanup.policy".into(), "compact".into())],
            },
            MetadataRecord::DeleteTopic { name: "t".into(), id: "6ba7b810-9dad-11d1-80b4-00c04fd430c8".into() },
            MetadataRecord::SetTopicConfigs { name: "t".into(), id: "x".into(), configs: Vec::new() },
            MetadataRecord::CreatePartitions { name: "t".into(), id: "x".into(), after: 2, partitions: vec![vec![3]] },
            MetadataRecord::AlterIsr {
                name: "t".into(),
                id: "x".into(),
                partition: 1,
                leader_epoch: 4,
                isr: vec![1, 3],
            },
            MetadataRecord::ReassignPartition {
                name: "t".into(),
                id: "x".into(),
                partition: 0,
                target: Some(vec![2, 3]),
            },
            MetadataRecord::ReassignPartition { name: "t".into(), id: "x".into(), partition: 0, target: None },
            MetadataRecord::ReplicaFailed { name: "t".into(), id: "x".into(), partition: 0, broker: 2, epoch: 9 },
        ];
        for record in records {
            assert_eq!(MetadataRecord::decode(&record.encode()).unwrap(), record);
        }
        assert!(MetadataRecord::decode(br#"{"type":"Nonsense"}"#).is_err());
    }
}
