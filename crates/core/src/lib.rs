//! The bottom of Sluice: every limit and default ([`constants`]), the broker
//! and topic configuration ([`config`]) and the one wall clock ([`clock`]).
//! It depends on no other Sluice crate.

pub mod clock;
pub mod config;
pub mod constants;
