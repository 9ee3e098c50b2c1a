//! The schema registry's logic, without I/O: what Confluent Schema
//! Registry's REST API does to subjects, versions, ids, compatibility
//! levels and modes, as a state machine fed by the records of the compacted
//! `_schemas` topic (in Confluent's own record format, so a `_schemas`
//! topic carries over). The broker writes each change as a record through
//! its produce path and applies it here once it is durable; at start-up it
//! replays the topic from the beginning.
//!
//! - [`records`]: `_schemas` keys and values.
//! - [`state`]: the registry, its queries, and the records each change writes.
//! - [`schema`]: schema types, parsing and the compatibility rules of each.
//! - [`api`]: Confluent's REST API: requests parsed, answered.
//! - [`error`]: Confluent's error codes.
//! - [`wire`]: the schema id before a serialized key or value.

pub mod api;
pub mod error;
pub mod records;
pub mod schema;
pub mod state;
pub mod wire;

pub use error::RegistryError;
pub use schema::{Compatibility, Mode, Reference, SchemaType};
pub use state::Registry;
