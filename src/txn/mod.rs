//! Producer ids and per-partition producer state for idempotent producers.
//!
//! - [`producer_state`]: each partition's table of producers and their last
//!   five batches' sequence numbers (dedup and ordering), snapshotted to disk.
//! - [`producer_ids`]: the allocator of broker-unique producer ids, on shard 0.

pub mod producer_ids;
pub mod producer_state;
