//! Sluice's coordinators, each a plain type that owns its durable state and
//! reaches the rest of the broker only through a trait its caller implements
//! (`metadata::controller::CatalogSink`, `txn::coordinator::TxnEnv`): no
//! shard, mesh or socket in sight, so each can be built and tested alone.
//!
//! - [`metadata`]: the topic catalog; its controller (the only writer) runs
//!   on shard 0, every shard holds a read-only snapshot with the
//!   partition→shard table.
//! - [`group`]: the consumer group coordinator and committed offsets; a group
//!   lives on the shard owning its offsets partition (`hash(group) % 50`, then `% shards`).
//! - [`txn`]: producer ids (allocated by the controller) and the transaction
//!   coordinator; a transactional id lives on the shard owning its transaction
//!   state partition (`hash(id) % 50`, then `% shards`).
//! - [`telemetry`]: client metrics subscriptions and what clients push
//!   (KIP-714), on the controller's shard.

pub mod group;
pub mod metadata;
pub mod telemetry;
pub mod txn;
