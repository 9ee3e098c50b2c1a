//! The Kafka wire protocol: frames, headers, the API versions Sluice serves,
//! RecordBatch v2 read in place, and its records decoded and rebuilt off the
//! hot path (compacted topics), and batches built for the broker's own writes.

pub mod batch;
pub mod builder;
pub mod compression;
pub mod fetch_response;
pub mod frame;
pub mod records;
pub mod versions;

pub use kafka_protocol::error::ResponseError;

/// A partition of a topic, by the topic's name.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition { topic: topic.into(), partition }
    }
}

/// The special timestamps a ListOffsets request may ask for instead of a time.
pub mod offset_spec {
    /// The next offset to be written (the high watermark, or the last stable
    /// offset for read_committed).
    pub const LATEST: i64 = -1;
    /// The log start offset.
    pub const EARLIEST: i64 = -2;
    /// The offset of the record with the highest timestamp (v7+).
    pub const MAX_TIMESTAMP: i64 = -3;
    /// The first offset on local storage (v8+; every offset is local here).
    pub const EARLIEST_LOCAL: i64 = -4;
}
pub use kafka_protocol::messages::ApiKey;
