//! Exactly-once: producer ids and the transaction coordinator. Each
//! partition's producer state (dedup, open transactions, aborted index) is
//! kept with its log, in [`sluice_storage::producer_state`], as Kafka does.
//!
//! - [`producer_ids`]: the allocator of broker-unique producer ids, on shard 0.
//! - [`coordinator`]: the transaction coordinator of one shard. Transactional
//!   ids hash (Java's `String.hashCode`, as Kafka does) onto
//!   `TXN_PARTITIONS` transaction state partitions; partition `n` is owned by
//!   shard `n % shards`, which keeps its transactions durable in
//!   `<data-dir>/__transaction_state-<n>/`.

pub mod coordinator;
pub mod producer_ids;
pub mod state;

use coordinator::TxnState;
use sluice_core::constants::TXN_PARTITIONS;
use sluice_protocol::{ResponseError, TopicPartition};

/// The transaction state partition of a transactional id.
pub fn txn_partition(transactional_id: &str) -> usize {
    crate::group::partition_for(transactional_id, TXN_PARTITIONS)
}

/// The shard coordinating a transactional id.
pub fn coordinator_shard(transactional_id: &str, shards: usize) -> usize {
    txn_partition(transactional_id) % shards
}

/// One transaction as ListTransactions and DescribeTransactions show it.
#[derive(Debug, Clone)]
pub struct TxnListing {
    pub transactional_id: String,
    pub producer_id: i64,
    pub epoch: i16,
    pub state: TxnState,
    pub timeout_ms: i32,
    pub start_ms: i64,
    pub partitions: Vec<TopicPartition>,
    /// Groups whose offsets the transaction commits.
    pub groups: Vec<String>,
}

/// Checks that `producer_id` and `epoch` are a transactional id's current ones.
pub fn check_producer(current: (i64, i16), producer_id: i64, epoch: i16) -> Result<(), ResponseError> {
    if current.0 != producer_id {
        return Err(ResponseError::InvalidProducerIdMapping);
    }
    if current.1 != epoch {
        return Err(ResponseError::ProducerFenced);
    }
    Ok(())
}

impl TxnListing {
    /// Whether `producer_id` at `epoch` has this transaction open and `added`
    /// says the partitions or group in question are part of it (KIP-890).
    pub fn check_open(&self, producer_id: i64, epoch: i16, added: bool) -> Result<(), ResponseError> {
        check_producer((self.producer_id, self.epoch), producer_id, epoch)?;
        if self.state != TxnState::Ongoing || !added {
            return Err(ResponseError::InvalidTxnState);
        }
        Ok(())
    }
}
