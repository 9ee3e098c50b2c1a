//! The Kafka wire protocol: frames, headers, the API versions Sluice serves,
//! and RecordBatch v2 read in place.

pub mod batch;
pub mod fetch_response;
pub mod frame;
pub mod versions;

pub use kafka_protocol::error::ResponseError;
pub use kafka_protocol::messages::ApiKey;
