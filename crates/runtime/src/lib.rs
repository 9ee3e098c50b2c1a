//! The shard runtime: each core's [`shard::Shard`] (its catalog snapshot,
//! partitions and coordinators), the [`router`] mesh between shards, and the
//! typed shard client ([`shard::client`]) every cross-shard call goes through,
//! and each shard's [`metrics`].

pub mod metrics;
pub mod peers;
pub mod quota;
pub mod router;
pub mod shard;
