//! The bottom of Sluice: every limit and default ([`constants`]), the broker
//! and topic configuration ([`config`]), the one wall clock ([`clock`]) and
//! the per-shard metric cells ([`metrics`]).
//! It depends on no other Sluice crate.

pub mod clock;
pub mod config;
pub mod constants;
pub mod metrics;
