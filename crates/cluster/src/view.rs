//! What every shard knows of the cluster: a snapshot the controller loop
//! publishes when the quorum or the brokers change, read by Metadata,
//! DescribeCluster and DescribeQuorum.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::state::{Broker, TopicState};

/// One voter of the metadata quorum (or an observer: host and port empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoterView {
    pub node: i32,
    pub host: String,
    pub port: u16,
    /// Its log end as the leader knows it; `None` on a node that does not lead.
    pub matched: Option<u64>,
}

/// The cluster as this node sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterView {
    pub node_id: i32,
    /// The controller listener's name (`controller.listener.names`).
    pub controller_listener: String,
    /// The quorum's leader (the active controller), if known.
    pub leader: Option<i32>,
    /// The quorum's term (the metadata leader epoch).
    pub term: u64,
    /// The highest committed index (the metadata high watermark).
    pub committed: u64,
    /// This node's last log index.
    pub last_index: u64,
    pub voters: Vec<VoterView>,
    /// Brokers that follow the quorum without voting, as the leader last
    /// heard from them (`matched`: the last index each had); empty on a
    /// node that does not lead.
    pub observers: Vec<VoterView>,
    /// Every registered broker, fenced or not, by id.
    pub brokers: Vec<Broker>,
    /// Changes of the security state so far.
    pub security_version: u64,
    /// Every topic, by name.
    pub topics: Arc<BTreeMap<String, TopicState>>,
}

impl ClusterView {
    /// The broker coordinating the keys (group ids, transactional ids)
    /// that hash to partition `partition` of the internal topic `topic`
    /// (`__consumer_offsets`, `__transaction_state`): that partition's
    /// leader, where the coordinator's state is. `None` while the topic does
    /// not exist or the partition has no leader.
    pub fn coordinator(&self, topic: &str, partition: usize) -> Option<i32> {
        let leader = self.topics.get(topic)?.partitions.get(partition)?.leader;
        (leader >= 0).then_some(leader)
    }

    /// The leader of `topic`'s partition `partition`, if it has one.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        let state = self.topics.get(topic)?.partitions.get(usize::try_from(partition).ok()?)?;
        (state.leader >= 0).then_some(state.leader)
    }

    /// Brokers clients may use.
    pub fn live_brokers(&self) -> impl Iterator<Item = &Broker> {
        self.brokers.iter().filter(|b| !b.fenced)
    }
}
