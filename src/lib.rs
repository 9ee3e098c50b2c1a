//! Sluice: a Kafka-wire-compatible message broker, thread-per-core on glommio.
//!
//! # Layout
//!
//! Crates, bottom to top (each depends only on those above it in this list):
//! `sluice-core`, `sluice-protocol`, `sluice-storage`, `sluice-security`,
//! `sluice-domain`, `sluice-runtime`, and this one. See ARCHITECTURE.md.
//!
//! - [`broker`]: process start and stop: shard pool, mesh, clean-shutdown marker.
//! - [`config`]: CLI, `SLUICE_*` environment and properties file into one `BrokerConfig`;
//!   per-topic configs under Kafka's names.
//! - [`constants`]: every limit and default, unit last.
//! - [`protocol`]: frames, request/response headers, advertised API versions,
//!   RecordBatch v2 read in place, the zero-copy Fetch response encoder.
//! - [`server`]: each shard's listeners (SO_REUSEPORT; PLAINTEXT, TLS, SASL)
//!   and their connections; a connection lives on the shard that accepted it.
//! - [`security`]: principals, ACLs and the authorizer, SASL mechanisms, TLS settings.
//! - [`handlers`]: one module per Kafka API, all of the same shape.
//! - [`router`]: the cross-shard mesh and the envelopes carried on it.
//! - [`shard`]: the per-core context; owner-side handling of routed work.
//! - [`metadata`]: the topic catalog; its controller (writer) lives on shard 0,
//!   every shard holds a read-only snapshot with the partition→shard table.
//! - [`storage`]: partition logs of O_DIRECT segments, indexes, the writer task
//!   (group commit), the tail cache and each partition's producer state (dedup,
//!   open transactions, aborted index); a partition lives on its owning shard only.
//! - [`group`]: the consumer group coordinator and committed offsets; a group
//!   lives on the shard owning its offsets partition (`hash(group) % 50`, then `% shards`).
//! - [`txn`]: producer ids (allocated by shard 0) and the transaction
//!   coordinator; a transactional id lives on the shard owning its transaction
//!   state partition (`hash(id) % 50`, then `% shards`).
//! - [`tune`]: `sluice tune check`, the host settings the broker depends on
//!   (runs before and apart from any shard).

pub mod admin;
pub mod broker;
pub mod cluster;
pub mod handlers;
pub mod registry;
pub mod server;
pub mod tune;

pub use sluice_core::{clock, config, constants};
pub use sluice_domain::{group, metadata, txn};
pub use sluice_protocol as protocol;
pub use sluice_runtime::{metrics, peers, router, shard};
pub use sluice_security as security;
pub use sluice_storage as storage;
