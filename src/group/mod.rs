//! Consumer groups: the classic group protocol's coordinator and committed
//! offsets.
//!
//! Every group id hashes (Java's `String.hashCode`, as Kafka does) onto one
//! of `OFFSETS_PARTITIONS` internal offsets partitions; offsets partition `n`
//! is owned by shard `n % shards`, which runs the coordinator for every group
//! on it and keeps their state durable in `<data-dir>/__consumer_offsets-<n>/`.
//!
//! - [`classic`]: one group's membership state machine (joins, rebalances,
//!   sessions), a plain type that takes the time as a parameter.
//! - [`clock`]: the time as the coordinator reads it and hands it down.
//! - [`coordinator`]: the shard's coordinator around it: waiting requests,
//!   durability, the sweep, committed offsets.
//! - [`store`]: the checkpoint + journal of one offsets partition.

pub mod classic;
pub mod clock;
pub mod coordinator;
pub mod store;

use crate::constants::OFFSETS_PARTITIONS;

/// Java's `String.hashCode` of `s`.
fn java_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

/// Kafka's `abs(hashCode) % partitions` for an internal topic's key.
pub fn partition_for(key: &str, partitions: usize) -> usize {
    let h = java_hash(key);
    // Kafka's Utils.abs maps i32::MIN to 0.
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs as usize % partitions
}

/// The offsets partition of a group.
pub fn offsets_partition(group_id: &str) -> usize {
    partition_for(group_id, OFFSETS_PARTITIONS)
}

/// The shard coordinating a group.
pub fn coordinator_shard(group_id: &str, shards: usize) -> usize {
    offsets_partition(group_id) % shards
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_java() {
        // "hello".hashCode() == 99162322 in Java.
        assert_eq!(java_hash("hello"), 99_162_322);
        assert_eq!(java_hash(""), 0);
        assert_eq!(offsets_partition("hello"), 99_162_322 % 50);
        assert!(coordinator_shard("any-group", 3) < 3);
    }
}

use kafka_protocol::messages::{
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse,
    SyncGroupRequest, SyncGroupResponse,
};

use crate::protocol::ResponseError;
use coordinator::{FetchedOffsets, GroupCoordinator, GroupDescription};
use store::CommittedOffset;

/// Group work routed to the coordinating shard.
#[derive(Debug)]
pub enum GroupCall {
    Join {
        version: i16,
        request: JoinGroupRequest,
        client_host: String,
        client_id: String,
    },
    Sync {
        version: i16,
        request: SyncGroupRequest,
    },
    Heartbeat {
        request: HeartbeatRequest,
    },
    Leave {
        version: i16,
        request: LeaveGroupRequest,
    },
    Commit {
        group_id: String,
        generation: i32,
        member_id: String,
        instance_id: Option<String>,
        offsets: Vec<(String, i32, CommittedOffset)>,
    },
    FetchOffsets {
        group_id: String,
        wanted: Option<Vec<(String, Vec<i32>)>>,
    },
    List,
    Describe {
        group_id: String,
    },
    Delete {
        group_id: String,
    },
    DeleteOffsets {
        group_id: String,
        partitions: Vec<(String, i32)>,
    },
    TxnCommit {
        group_id: String,
        producer_id: i64,
        generation: i32,
        member_id: String,
        instance_id: Option<String>,
        offsets: Vec<(String, i32, CommittedOffset)>,
    },
    TxnEnd {
        group_id: String,
        producer_id: i64,
        commit: bool,
    },
    /// Which of these partitions have offsets pending in an open transaction.
    PendingOffsets {
        group_id: String,
        partitions: Vec<(String, i32)>,
    },
}

/// Per-partition outcomes of a commit or offset delete, or an error for the whole group.
pub type PartitionResults = Result<Vec<Result<(), ResponseError>>, ResponseError>;

/// The coordinator's answer to a [`GroupCall`].
#[derive(Debug)]
pub enum GroupReply {
    Join(JoinGroupResponse),
    Sync(SyncGroupResponse),
    Heartbeat(HeartbeatResponse),
    Leave(LeaveGroupResponse),
    Commit(PartitionResults),
    Offsets(Result<FetchedOffsets, ResponseError>),
    List(Vec<(String, String, &'static str)>),
    Describe(Option<GroupDescription>),
    Delete(Result<(), ResponseError>),
    DeleteOffsets(PartitionResults),
    TxnCommit(PartitionResults),
    TxnEnd(Result<(), ResponseError>),
    PendingOffsets(Vec<bool>),
}

impl GroupCoordinator {
    /// Runs one routed group call.
    pub async fn serve(&self, call: GroupCall) -> GroupReply {
        match call {
            GroupCall::Join { version, request, client_host, client_id } => {
                GroupReply::Join(self.join(version, request, client_host, client_id).await)
            }
            GroupCall::Sync { version, request } => GroupReply::Sync(self.sync(version, request).await),
            GroupCall::Heartbeat { request } => GroupReply::Heartbeat(self.heartbeat(request)),
            GroupCall::Leave { version, request } => GroupReply::Leave(self.leave(version, request).await),
            GroupCall::Commit { group_id, generation, member_id, instance_id, offsets } => GroupReply::Commit(
                self.commit(&group_id, generation, &member_id, instance_id.as_deref(), offsets).await,
            ),
            GroupCall::FetchOffsets { group_id, wanted } => GroupReply::Offsets(self.fetch_offsets(&group_id, wanted)),
            GroupCall::List => GroupReply::List(self.list()),
            GroupCall::Describe { group_id } => GroupReply::Describe(self.describe(&group_id)),
            GroupCall::Delete { group_id } => GroupReply::Delete(self.delete(&group_id).await),
            GroupCall::DeleteOffsets { group_id, partitions } => {
                GroupReply::DeleteOffsets(self.delete_offsets(&group_id, partitions).await)
            }
            GroupCall::TxnCommit { group_id, producer_id, generation, member_id, instance_id, offsets } => {
                GroupReply::TxnCommit(
                    self.txn_commit(&group_id, producer_id, generation, &member_id, instance_id.as_deref(), offsets)
                        .await,
                )
            }
            GroupCall::TxnEnd { group_id, producer_id, commit } => {
                GroupReply::TxnEnd(self.txn_end(&group_id, producer_id, commit).await)
            }
            GroupCall::PendingOffsets { group_id, partitions } => GroupReply::PendingOffsets(
                partitions.iter().map(|(t, p)| self.has_pending_offset(&group_id, t, *p)).collect(),
            ),
        }
    }
}
