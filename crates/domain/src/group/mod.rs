//! Consumer groups: the classic and the consumer (KIP-848) group protocols'
//! coordinator, and committed offsets.
//!
//! Every group id hashes (Java's `String.hashCode`, as Kafka does) onto one
//! of `OFFSETS_PARTITIONS` internal offsets partitions; offsets partition `n`
//! is owned by shard `n % shards`, which runs the coordinator for every group
//! on it and keeps their state durable: on a single node in
//! `<data-dir>/__consumer_offsets-<n>/`, on a cluster as records of the
//! replicated partition `__consumer_offsets-<n>` while this broker leads it.
//!
//! - [`classic`]: one group's membership state machine (joins, rebalances,
//!   sessions), a plain type that takes the time as a parameter.
//! - [`consumer`]: one group of KIP-848's consumer protocol (server-side
//!   assignment, epochs, incremental reconciliation), a plain type too,
//!   journalled as a group record plus one record per member.
//! - [`clock`]: the time as the coordinator reads it and hands it down.
//! - [`coordinator`]: the shard's coordinator around it: waiting requests,
//!   durability, the sweep, committed offsets.
//! - [`store`]: the checkpoint + journal of one offsets partition.
//! - [`backing`]: where an internal partition's state is made durable (those
//!   files, or a replicated partition's records) and which partitions a shard holds.

pub mod backing;
pub mod classic;
pub mod clock;
pub mod consumer;
pub mod coordinator;
pub mod store;

use sluice_core::constants::OFFSETS_PARTITIONS;

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

/// Per-partition outcomes of a commit or offset delete, or an error for the whole group.
pub type PartitionResults = Result<Vec<Result<(), sluice_protocol::ResponseError>>, sluice_protocol::ResponseError>;

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
