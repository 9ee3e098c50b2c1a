//! Record batches built from keys and values: what the broker writes of its
//! own (the schema registry's `_schemas` records), and what tests and
//! benches produce. `kafka-protocol`'s encoder writes them as a client
//! would; the produce and fetch paths never build a batch.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

/// One v2 batch (`CreateTime`) of records, in the order they are added.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    /// (key, value, timestamp) of each record; `None`: null.
    records: Vec<(Option<Bytes>, Option<Bytes>, i64)>,
    compression: Compression,
    producer_id: i64,
    producer_epoch: i16,
    /// The first record's sequence; -1 without an idempotent producer.
    base_sequence: i32,
    transactional: bool,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        BatchBuilder {
            records: Vec::new(),
            compression: Compression::None,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
        }
    }
}

impl BatchBuilder {
    pub fn new() -> BatchBuilder {
        BatchBuilder::default()
    }

    /// The batch's records compressed with `compression`.
    pub fn compression(mut self, compression: Compression) -> BatchBuilder {
        self.compression = compression;
        self
    }

    /// Written by an idempotent (or, if `transactional`, transactional)
    /// producer, its first record numbered `base_sequence`.
    pub fn producer(mut self, id: i64, epoch: i16, base_sequence: i32, transactional: bool) -> BatchBuilder {
        (self.producer_id, self.producer_epoch, self.base_sequence, self.transactional) =
            (id, epoch, base_sequence, transactional);
        self
    }

    /// Adds one record; `None` is a null key or value.
    pub fn record(mut self, key: Option<Bytes>, value: Option<Bytes>, timestamp_ms: i64) -> BatchBuilder {
        self.records.push((key, value, timestamp_ms));
        self
    }

    /// The batch's bytes.
    pub fn build(self) -> Result<BytesMut, String> {
        let records: Vec<Record> = self
            .records
            .into_iter()
            .enumerate()
            .map(|(i, (key, value, timestamp))| Record {
                transactional: self.transactional,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: self.producer_id,
                producer_epoch: self.producer_epoch,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                timestamp,
                // The encoder puts records whose offset minus sequence agree in
                // one batch and takes the first's sequence as its base (-1: none).
                sequence: self.base_sequence.wrapping_add(i as i32),
                key,
                value,
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions { version: 2, compression: self.compression };
        RecordBatchEncoder::encode(&mut buf, &records, &options).map_err(|e| format!("encoding records: {e}"))?;
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{validate_chunk, BatchHeader};
    use crate::records::decode;

    #[test]
    fn one_batch_of_every_record_as_added() {
        let built = BatchBuilder::new()
            .record(Some(Bytes::from_static(b"k")), Some(Bytes::from_static(b"v0")), 1_000)
            .record(None, Some(Bytes::from_static(b"v1")), 1_001)
            .record(Some(Bytes::from_static(b"k")), None, 999)
            .build()
            .unwrap();
        let summaries = validate_chunk(&built, built.len()).unwrap();
        assert_eq!(summaries.len(), 1, "one batch");
        let header = BatchHeader::parse(&built).unwrap();
        assert_eq!((header.records_count, header.producer_id, header.base_sequence), (3, -1, -1));
        // kafka-protocol's encoder bases the batch on its earliest timestamp.
        assert_eq!((header.base_timestamp, header.max_timestamp), (999, 1_001));
        let batch = decode(&built, 1 << 20).unwrap();
        let fields: Vec<_> = batch.views.iter().map(|v| (batch.key(v), batch.value(v))).collect();
        assert_eq!(fields, [(Some(&b"k"[..]), Some(&b"v0"[..])), (None, Some(&b"v1"[..])), (Some(&b"k"[..]), None)]);
    }

    #[test]
    fn producer_fields_and_compression() {
        let built = BatchBuilder::new()
            .record(None, Some(Bytes::from_static(b"a")), 5)
            .record(None, Some(Bytes::from_static(b"b")), 6)
            .producer(42, 3, 10, true)
            .compression(Compression::Zstd)
            .build()
            .unwrap();
        let header = BatchHeader::parse(&built).unwrap();
        assert_eq!((header.producer_id, header.producer_epoch, header.base_sequence), (42, 3, 10));
        assert!(header.is_transactional());
        assert_eq!(header.compression(), crate::compression::ZSTD);
        assert_eq!(decode(&built, 1 << 20).unwrap().views.len(), 2);
    }
}
