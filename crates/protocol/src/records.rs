//! The records of a RecordBatch v2, decoded and rebuilt, for the log cleaner
//! and the key check of produce on compacted topics.
//!
//! Sluice owns this codec rather than going through a generic one because the
//! cleaner must keep what Kafka keeps of a batch it rewrites: the base offset,
//! the last offset delta (the producer's last sequence), the producer fields
//! and each kept record's bytes as they were.
//!
//! ```text
//! record: length varint (of what follows), attributes i8, timestamp_delta varlong,
//!         offset_delta varint, key_length varint (-1: null), key,
//!         value_length varint (-1: null), value, headers_count varint,
//!         headers: [key_length varint, key, value_length varint (-1: null), value]
//! ```
//!
//! Varints are zigzag-encoded, at most 5 bytes for an int and 10 for a long,
//! as Kafka's `ByteUtils` reads them. A record's timestamp is the batch's base
//! timestamp plus its delta; its offset is the base offset plus its delta.

use std::ops::Range;

use sluice_core::constants::{BATCH_HEADER_BYTES, BATCH_LENGTH_PREFIX_BYTES, BATCH_RECORDS_MAX};

use crate::batch::{
    BatchHeader, ATTR_COMPRESSION_MASK, ATTR_CONTROL, ATTR_DELETE_HORIZON, ATTR_TIMESTAMP_LOG_APPEND,
    ATTR_TRANSACTIONAL, COMPRESSION_CODEC_MAX, OFFSET_ATTRIBUTES, OFFSET_BASE_OFFSET, OFFSET_BASE_SEQUENCE,
    OFFSET_BASE_TIMESTAMP, OFFSET_BATCH_LENGTH, OFFSET_CRC, OFFSET_LAST_OFFSET_DELTA, OFFSET_LEADER_EPOCH,
    OFFSET_MAGIC, OFFSET_MAX_TIMESTAMP, OFFSET_PRODUCER_EPOCH, OFFSET_PRODUCER_ID, OFFSET_RECORDS_COUNT,
};
use crate::compression;

/// Fewest bytes one record takes: its length and six one-byte fields
/// (attributes, both deltas, null key, null value, no headers).
const RECORD_BYTES_MIN: usize = 7;
/// Kafka's `RecordBatch.NO_TIMESTAMP`.
const NO_TIMESTAMP: i64 = -1;
/// The attribute bits Kafka writes (`DefaultRecordBatch.computeAttributes`); the rest are unused.
const ATTR_KNOWN: i16 =
    ATTR_COMPRESSION_MASK | ATTR_TIMESTAMP_LOG_APPEND | ATTR_TRANSACTIONAL | ATTR_CONTROL | ATTR_DELETE_HORIZON;

/// Why the records of a batch could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordsError {
    /// Fewer bytes than a header, or than the batch's length field says.
    #[error("record batch is truncated")]
    Truncated,
    #[error("corrupt record batch: {0}")]
    Corrupt(&'static str),
    #[error("unknown compression codec {0}")]
    UnknownCodec(i16),
    /// The records inflate (or, uncompressed, amount) to more than the bound.
    #[error("records inflate past {bytes_max} bytes")]
    TooLarge { bytes_max: usize },
    #[error("cannot decompress {codec} records: {reason}")]
    Decompress { codec: &'static str, reason: String },
    #[error("cannot compress {codec} records: {reason}")]
    Compress { codec: &'static str, reason: String },
    #[error("records to keep must be ascending indexes below {count}")]
    BadKeep { count: usize },
    #[error("a rebuilt batch of {0} bytes is larger than a batch can be")]
    Oversized(usize),
}

/// Where one record lies in [`DecodedBatch::records`] (or, for
/// [`keyless_records`], in the batch), and its fixed fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordView {
    /// The whole record, its length varint included.
    pub bytes: Range<usize>,
    pub attributes: i8,
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    /// `None`: a null key.
    pub key: Option<Range<usize>>,
    /// `None`: a null value, a tombstone.
    pub value: Option<Range<usize>>,
}

impl RecordView {
    pub fn offset(&self, base_offset: i64) -> i64 {
        base_offset.wrapping_add(self.offset_delta as i64)
    }
    /// The record's timestamp (Kafka adds as Java does: wrapping).
    pub fn timestamp(&self, base_timestamp: i64) -> i64 {
        base_timestamp.wrapping_add(self.timestamp_delta)
    }
}

/// One batch with its records uncompressed and located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedBatch {
    pub header: BatchHeader,
    /// The uncompressed record bytes.
    pub records: Vec<u8>,
    /// Each record, in batch order.
    pub views: Vec<RecordView>,
}

impl DecodedBatch {
    pub fn key(&self, view: &RecordView) -> Option<&[u8]> {
        view.key.clone().map(|r| &self.records[r])
    }
    pub fn value(&self, view: &RecordView) -> Option<&[u8]> {
        view.value.clone().map(|r| &self.records[r])
    }
}

/// Reads the fields of records within `b`, never past its end.
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn byte(&mut self) -> Result<u8, RecordsError> {
        let byte = *self.b.get(self.at).ok_or(RecordsError::Corrupt("record cut short"))?;
        self.at += 1;
        Ok(byte)
    }

    /// A zigzag varint of at most 5 bytes; bits past 32 are dropped, as Java does.
    fn varint(&mut self) -> Result<i32, RecordsError> {
        let mut value = 0u32;
        for shift in (0..35).step_by(7) {
            let byte = self.byte()?;
            value |= ((byte & 0x7f) as u32).wrapping_shl(shift);
            if byte & 0x80 == 0 {
                return Ok((value >> 1) as i32 ^ -((value & 1) as i32));
            }
        }
        Err(RecordsError::Corrupt("varint longer than 5 bytes"))
    }

    /// A zigzag varlong of at most 10 bytes; bits past 64 are dropped, as Java does.
    fn varlong(&mut self) -> Result<i64, RecordsError> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let byte = self.byte()?;
            value |= ((byte & 0x7f) as u64).wrapping_shl(shift);
            if byte & 0x80 == 0 {
                return Ok((value >> 1) as i64 ^ -((value & 1) as i64));
            }
        }
        Err(RecordsError::Corrupt("varlong longer than 10 bytes"))
    }

    fn skip(&mut self, len: usize) -> Result<Range<usize>, RecordsError> {
        let end = self.at.checked_add(len).filter(|&end| end <= self.b.len());
        let end = end.ok_or(RecordsError::Corrupt("field length exceeds its record"))?;
        let range = self.at..end;
        self.at = end;
        Ok(range)
    }

    /// A length-prefixed field where -1 means null.
    fn nullable(&mut self, what: &'static str) -> Result<Option<Range<usize>>, RecordsError> {
        match self.varint()? {
            -1 => Ok(None),
            len if len < -1 => Err(RecordsError::Corrupt(what)),
            len => self.skip(len as usize).map(Some),
        }
    }
}

fn varint_len(value: i32) -> usize {
    varlong_len(value as i64)
}

fn varlong_len(value: i64) -> usize {
    let zigzag = ((value << 1) ^ (value >> 63)) as u64;
    (64 - zigzag.leading_zeros() as usize).max(1).div_ceil(7)
}

fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push((zigzag as u8) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

fn put_varint(out: &mut Vec<u8>, value: i32) {
    let mut zigzag = ((value << 1) ^ (value >> 31)) as u32;
    while zigzag >= 0x80 {
        out.push((zigzag as u8) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

/// Reads the record starting at `at` in `b`.
fn parse_record(b: &[u8], at: usize) -> Result<RecordView, RecordsError> {
    let mut length = Cursor { b, at };
    let len = length.varint()?;
    let len = usize::try_from(len).map_err(|_| RecordsError::Corrupt("negative record length"))?;
    let end = length.at.checked_add(len).filter(|&end| end <= b.len());
    let end = end.ok_or(RecordsError::Corrupt("record length exceeds the batch"))?;
    // Fields are read within the record's own length.
    let mut c = Cursor { b: &b[..end], at: length.at };
    let attributes = c.byte()? as i8;
    let timestamp_delta = c.varlong()?;
    let offset_delta = c.varint()?;
    let key = c.nullable("negative key length")?;
    let value = c.nullable("negative value length")?;
    let headers = c.varint()?;
    if headers < 0 {
        return Err(RecordsError::Corrupt("negative header count"));
    }
    // Each header reads at least two bytes or fails, so a lying count ends at the record's end.
    for _ in 0..headers {
        let key_len = usize::try_from(c.varint()?).map_err(|_| RecordsError::Corrupt("negative header key length"))?;
        c.skip(key_len)?;
        c.nullable("negative header value length")?;
    }
    if c.at != end {
        return Err(RecordsError::Corrupt("record length does not match its fields"));
    }
    Ok(RecordView { bytes: at..end, attributes, timestamp_delta, offset_delta, key, value })
}

/// Reads exactly `count` records filling all of `b`, calling `each` with each one's index.
fn walk(b: &[u8], count: usize, mut each: impl FnMut(usize, RecordView)) -> Result<(), RecordsError> {
    let mut at = 0usize;
    for i in 0..count {
        let view = parse_record(b, at)?;
        at = view.bytes.end;
        each(i, view);
    }
    if at != b.len() {
        return Err(RecordsError::Corrupt("bytes remain after the last record"));
    }
    Ok(())
}

/// The header and the (maybe compressed) record bytes of the batch at the
/// start of `batch`, after checking what can be checked before inflating.
fn split_batch(batch: &[u8]) -> Result<(BatchHeader, &[u8]), RecordsError> {
    if batch.len() < BATCH_HEADER_BYTES {
        return Err(RecordsError::Truncated);
    }
    let header = BatchHeader::parse(batch).ok_or(RecordsError::Corrupt("batch length is shorter than a header"))?;
    if header.size_bytes > batch.len() {
        return Err(RecordsError::Truncated);
    }
    if header.magic != 2 {
        return Err(RecordsError::Corrupt("magic byte is not 2"));
    }
    if header.compression() > COMPRESSION_CODEC_MAX {
        return Err(RecordsError::UnknownCodec(header.compression()));
    }
    if header.records_count < 0 {
        return Err(RecordsError::Corrupt("negative record count"));
    }
    if header.records_count as usize > BATCH_RECORDS_MAX {
        return Err(RecordsError::Corrupt("too many records in one batch"));
    }
    Ok((header, &batch[BATCH_HEADER_BYTES..header.size_bytes]))
}

/// The record count, if `records_bytes` can hold that many records.
fn count_within(header: &BatchHeader, records_bytes: usize) -> Result<usize, RecordsError> {
    let count = header.records_count as usize;
    if count.saturating_mul(RECORD_BYTES_MIN) > records_bytes {
        return Err(RecordsError::Corrupt("record count exceeds the batch's bytes"));
    }
    Ok(count)
}

/// Decodes one whole batch as stored (its CRC is checked elsewhere):
/// inflates its records, at most `bytes_max` bytes of them, and locates
/// exactly `records_count` records, every length checked against the bytes.
pub fn decode(batch: &[u8], bytes_max: usize) -> Result<DecodedBatch, RecordsError> {
    let (header, payload) = split_batch(batch)?;
    let records = compression::decompress(header.compression(), payload, bytes_max)?;
    let count = count_within(&header, records.len())?;
    let mut views = Vec::with_capacity(count);
    walk(&records, count, |_, view| views.push(view))?;
    Ok(DecodedBatch { header, records, views })
}

/// Indexes (within the batch) of the records of `batch` whose key is null.
/// An uncompressed batch is read where it lies; a compressed one is inflated
/// first, at most `bytes_max` bytes.
pub fn keyless_records(batch: &[u8], bytes_max: usize) -> Result<Vec<i32>, RecordsError> {
    let mut keyless = Vec::new();
    walk_batch(batch, bytes_max, |_, i, view| {
        if view.key.is_none() {
            keyless.push(i as i32);
        }
    })?;
    Ok(keyless)
}

/// (index in the batch, offset as sent, timestamp) of each record of
/// `batch`, inflated first if compressed (at most `bytes_max` bytes).
pub fn record_timestamps(batch: &[u8], bytes_max: usize) -> Result<Vec<(i32, i64, i64)>, RecordsError> {
    let mut times = Vec::new();
    walk_batch(batch, bytes_max, |header, i, view| {
        let timestamp = header.base_timestamp.wrapping_add(view.timestamp_delta);
        times.push((i as i32, view.offset(header.base_offset), timestamp));
    })?;
    Ok(times)
}

/// Calls `note` with the header, index and view of each record of `batch`:
/// an uncompressed batch is read where it lies, a compressed one is inflated
/// first; either way at most `bytes_max` bytes of records.
fn walk_batch(
    batch: &[u8],
    bytes_max: usize,
    mut note: impl FnMut(&BatchHeader, usize, RecordView),
) -> Result<(), RecordsError> {
    let (header, payload) = split_batch(batch)?;
    let mut note = |i: usize, view: RecordView| note(&header, i, view);
    if header.compression() == compression::NONE {
        if payload.len() > bytes_max {
            return Err(RecordsError::TooLarge { bytes_max });
        }
        walk(payload, count_within(&header, payload.len())?, &mut note)
    } else {
        let records = compression::decompress(header.compression(), payload, bytes_max)?;
        walk(&records, count_within(&header, records.len())?, &mut note)
    }
}

/// The fields of a batch header that [`write_batch`] writes.
struct HeaderFields {
    base_offset: i64,
    partition_leader_epoch: i32,
    attributes: i16,
    last_offset_delta: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    records_count: i32,
}

/// A batch of magic 2 with `fields` and `payload` after the header, its length and CRC-32C set.
fn write_batch(fields: &HeaderFields, payload: &[u8]) -> Result<Vec<u8>, RecordsError> {
    let size = BATCH_HEADER_BYTES + payload.len();
    let length = i32::try_from(size - BATCH_LENGTH_PREFIX_BYTES).map_err(|_| RecordsError::Oversized(size))?;
    let mut b = vec![0u8; BATCH_HEADER_BYTES];
    let mut put = |at: usize, bytes: &[u8]| b[at..at + bytes.len()].copy_from_slice(bytes);
    put(OFFSET_BASE_OFFSET, &fields.base_offset.to_be_bytes());
    put(OFFSET_BATCH_LENGTH, &length.to_be_bytes());
    put(OFFSET_LEADER_EPOCH, &fields.partition_leader_epoch.to_be_bytes());
    put(OFFSET_MAGIC, &[2]);
    put(OFFSET_ATTRIBUTES, &fields.attributes.to_be_bytes());
    put(OFFSET_LAST_OFFSET_DELTA, &fields.last_offset_delta.to_be_bytes());
    put(OFFSET_BASE_TIMESTAMP, &fields.base_timestamp.to_be_bytes());
    put(OFFSET_MAX_TIMESTAMP, &fields.max_timestamp.to_be_bytes());
    put(OFFSET_PRODUCER_ID, &fields.producer_id.to_be_bytes());
    put(OFFSET_PRODUCER_EPOCH, &fields.producer_epoch.to_be_bytes());
    put(OFFSET_BASE_SEQUENCE, &fields.base_sequence.to_be_bytes());
    put(OFFSET_RECORDS_COUNT, &fields.records_count.to_be_bytes());
    b.reserve_exact(payload.len());
    b.extend_from_slice(payload);
    let crc = crc32c::crc32c(&b[OFFSET_ATTRIBUTES..]);
    b[OFFSET_CRC..OFFSET_CRC + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(b)
}

/// Writes `record` (a whole record, validated by [`decode`]) with its
/// timestamp delta replaced by `timestamp_delta`, its length recomputed.
fn put_with_timestamp_delta(out: &mut Vec<u8>, record: &[u8], timestamp_delta: i64) -> Result<(), RecordsError> {
    let mut c = Cursor { b: record, at: 0 };
    c.varint()?;
    let attributes = c.byte()?;
    c.varlong()?;
    let rest = &record[c.at..];
    let len = 1 + varlong_len(timestamp_delta) + rest.len();
    let len = i32::try_from(len).map_err(|_| RecordsError::Oversized(len))?;
    out.reserve(varint_len(len) + len as usize);
    put_varint(out, len);
    out.push(attributes);
    put_varlong(out, timestamp_delta);
    out.extend_from_slice(rest);
    Ok(())
}

/// A new batch holding only the records of `batch` at indexes `keep`
/// (ascending), as Kafka's cleaner writes one (`MemoryRecords.filterTo`):
/// the same base offset, partition leader epoch, attributes, last offset
/// delta (so the producer's last sequence survives), max timestamp and
/// producer fields; `keep.len()` records, compressed with the batch's own
/// codec, and a new CRC. Kept records are copied byte for byte.
///
/// With `delete_horizon_ms`, the batch gets that delete horizon (KIP-534):
/// the attribute bit is set, the base timestamp becomes the horizon and each
/// record's timestamp delta is re-encoded against it, so record timestamps do
/// not change. Without, a horizon the batch has is kept as it is.
pub fn rebuild(batch: &DecodedBatch, keep: &[usize], delete_horizon_ms: Option<i64>) -> Result<Vec<u8>, RecordsError> {
    let count = batch.views.len();
    let ascending = keep.windows(2).all(|w| w[0] < w[1]);
    if !ascending || keep.last().is_some_and(|&last| last >= count) {
        return Err(RecordsError::BadKeep { count });
    }
    let header = &batch.header;
    let mut body = Vec::with_capacity(keep.iter().map(|&i| batch.views[i].bytes.len() + 8).sum());
    for &i in keep {
        let view = &batch.views[i];
        let record = &batch.records[view.bytes.clone()];
        match delete_horizon_ms {
            None => body.extend_from_slice(record),
            Some(horizon) => {
                let delta = view.timestamp(header.base_timestamp).wrapping_sub(horizon);
                put_with_timestamp_delta(&mut body, record, delta)?;
            }
        }
    }
    let payload = compression::compress(header.compression(), &body)?;
    let mut attributes = header.attributes & ATTR_KNOWN;
    let mut base_timestamp = header.base_timestamp;
    if let Some(horizon) = delete_horizon_ms {
        attributes |= ATTR_DELETE_HORIZON;
        base_timestamp = horizon;
    }
    let fields = HeaderFields {
        base_offset: header.base_offset,
        partition_leader_epoch: header.partition_leader_epoch,
        attributes,
        last_offset_delta: header.last_offset_delta,
        base_timestamp,
        max_timestamp: header.max_timestamp,
        producer_id: header.producer_id,
        producer_epoch: header.producer_epoch,
        base_sequence: header.base_sequence,
        records_count: keep.len() as i32,
    };
    write_batch(&fields, &payload)
}

/// The header-only batch Kafka's cleaner leaves in place of a batch whose
/// records all went but whose producer sequence must survive
/// (`DefaultRecordBatch.writeEmptyHeader`): no records, no compression, no
/// delete horizon; timestamp type, transactional and control kept; the same
/// base offset, last offset delta, producer fields and partition leader
/// epoch; the base timestamp -1 (`NO_TIMESTAMP`) and the max timestamp kept.
pub fn empty_batch(header: &BatchHeader) -> Vec<u8> {
    let fields = HeaderFields {
        base_offset: header.base_offset,
        partition_leader_epoch: header.partition_leader_epoch,
        attributes: header.attributes & (ATTR_TIMESTAMP_LOG_APPEND | ATTR_TRANSACTIONAL | ATTR_CONTROL),
        last_offset_delta: header.last_offset_delta,
        base_timestamp: NO_TIMESTAMP,
        max_timestamp: header.max_timestamp,
        producer_id: header.producer_id,
        producer_epoch: header.producer_epoch,
        base_sequence: header.base_sequence,
        records_count: 0,
    };
    write_batch(&fields, &[]).expect("a header-only batch fits its length field")
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    use super::*;
    use crate::batch::{control_batch, crc_matches, patch_offset_and_epoch};

    const CODECS: [(i16, Compression); 5] = [
        (compression::NONE, Compression::None),
        (compression::GZIP, Compression::Gzip),
        (compression::SNAPPY, Compression::Snappy),
        (compression::LZ4, Compression::Lz4),
        (compression::ZSTD, Compression::Zstd),
    ];
    const BOUND: usize = 1 << 20;
    const BASE_OFFSET: i64 = 1000;
    const BASE_SEQUENCE: i32 = 40;

    /// Six records: keys, null keys, null values (tombstones), headers, and
    /// timestamps out of order.
    fn sample_records() -> Vec<Record> {
        let timestamps =
            [1_700_000_000_500, 1_700_000_000_100, 1_700_000_000_900, 1_700_000_000_300, 5, 1_700_000_000_000];
        (0..6)
            .map(|i| {
                let mut record = Record {
                    transactional: false,
                    control: false,
                    delete_horizon: false,
                    partition_leader_epoch: 7,
                    producer_id: 99,
                    producer_epoch: 3,
                    timestamp_type: TimestampType::Creation,
                    offset: BASE_OFFSET + i,
                    sequence: BASE_SEQUENCE + i as i32,
                    timestamp: timestamps[i as usize],
                    key: (i % 3 != 1).then(|| Bytes::from(format!("key-{i}"))),
                    value: (i != 3).then(|| Bytes::from(format!("value-{i}-").repeat(i as usize * 40 + 1))),
                    headers: Default::default(),
                };
                if i % 2 == 0 {
                    record.headers.insert(StrBytes::from_static_str("h"), Some(Bytes::from(format!("hv{i}"))));
                    record.headers.insert(StrBytes::from_static_str("null"), None);
                }
                record
            })
            .collect()
    }

    fn encode(records: &[Record], compression: Compression) -> Vec<u8> {
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(&mut buf, records, &RecordEncodeOptions { version: 2, compression }).unwrap();
        buf.to_vec()
    }

    fn kafka_decode(batch: &[u8]) -> Vec<Record> {
        RecordBatchDecoder::decode(&mut Bytes::copy_from_slice(batch)).unwrap().records
    }

    fn same_record(got: &Record, want: &Record) {
        assert_eq!(
            (got.offset, got.timestamp, got.sequence, &got.key, &got.value, &got.headers),
            (want.offset, want.timestamp, want.sequence, &want.key, &want.value, &want.headers)
        );
        assert_eq!((got.producer_id, got.producer_epoch), (99, 3));
    }

    #[test]
    fn decodes_batches_kafka_protocol_encodes_with_every_codec() {
        let records = sample_records();
        for (codec, compression) in CODECS {
            let batch = encode(&records, compression);
            let decoded = decode(&batch, BOUND).unwrap();
            assert_eq!(decoded.header.compression(), codec);
            assert_eq!(decoded.views.len(), records.len());
            for (view, want) in decoded.views.iter().zip(&records) {
                assert_eq!(view.offset(decoded.header.base_offset), want.offset);
                assert_eq!(view.timestamp(decoded.header.base_timestamp), want.timestamp);
                assert_eq!(decoded.key(view), want.key.as_deref());
                assert_eq!(decoded.value(view), want.value.as_deref());
            }
            assert_eq!(keyless_records(&batch, BOUND).unwrap(), vec![1, 4], "codec {codec}");
        }
    }

    #[test]
    fn rebuilding_every_record_round_trips_with_every_codec() {
        let records = sample_records();
        for (codec, compression) in CODECS {
            let batch = encode(&records, compression);
            let decoded = decode(&batch, BOUND).unwrap();
            let all: Vec<usize> = (0..records.len()).collect();
            let rebuilt = rebuild(&decoded, &all, None).unwrap();
            if codec == compression::NONE {
                assert_eq!(rebuilt, batch, "an uncompressed batch rebuilt whole is the same bytes");
            }
            let again = decode(&rebuilt, BOUND).unwrap();
            assert_eq!(again.records, decoded.records, "codec {codec}");
            assert_eq!(again.views, decoded.views);
            assert_eq!(again.header, BatchHeader { size_bytes: rebuilt.len(), ..decoded.header });
            assert!(crc_matches(&rebuilt, &again.header));
            for (got, want) in kafka_decode(&rebuilt).iter().zip(&records) {
                same_record(got, want);
            }
        }
    }

    #[test]
    fn rebuilding_a_subset_keeps_offsets_sequences_and_record_bytes() {
        let records = sample_records();
        let keep = [1usize, 3, 4];
        for (codec, compression) in CODECS {
            let mut batch = encode(&records, compression);
            patch_offset_and_epoch(&mut batch, BASE_OFFSET, 12);
            let decoded = decode(&batch, BOUND).unwrap();
            let rebuilt = rebuild(&decoded, &keep, None).unwrap();
            let header = BatchHeader::parse(&rebuilt).unwrap();
            assert_eq!(header.size_bytes, rebuilt.len());
            assert!(crc_matches(&rebuilt, &header));
            assert_eq!(header.base_offset, BASE_OFFSET);
            assert_eq!(header.partition_leader_epoch, 12);
            assert_eq!(header.last_offset_delta, 5, "the last offset delta of the original");
            assert_eq!(header.records_count, 3);
            assert_eq!(header.compression(), codec);
            assert_eq!(header.attributes, decoded.header.attributes);
            let unchanged =
                |h: &BatchHeader| (h.base_timestamp, h.max_timestamp, h.producer_id, h.producer_epoch, h.base_sequence);
            assert_eq!(unchanged(&header), unchanged(&decoded.header));
            let again = decode(&rebuilt, BOUND).unwrap();
            for (view, &i) in again.views.iter().zip(&keep) {
                let original = &decoded.views[i];
                assert_eq!(again.records[view.bytes.clone()], decoded.records[original.bytes.clone()], "same bytes");
            }
            let got = kafka_decode(&rebuilt);
            assert_eq!(got.len(), keep.len());
            for (got, &i) in got.iter().zip(&keep) {
                same_record(got, &records[i]);
            }
            assert_eq!(keyless_records(&rebuilt, BOUND).unwrap(), vec![0, 2]);
            // Nothing kept: a batch of no records, still readable.
            let none = rebuild(&decoded, &[], None).unwrap();
            assert_eq!(decode(&none, BOUND).unwrap().views, vec![]);
        }
    }

    #[test]
    fn a_delete_horizon_moves_the_base_timestamp_not_the_record_timestamps() {
        let records = sample_records();
        let horizon = 1_700_086_400_000;
        for (codec, compression) in CODECS {
            let decoded = decode(&encode(&records, compression), BOUND).unwrap();
            assert_eq!(decoded.header.delete_horizon_ms(), None);
            let keep = [0usize, 3, 5];
            let rebuilt = rebuild(&decoded, &keep, Some(horizon)).unwrap();
            let header = BatchHeader::parse(&rebuilt).unwrap();
            assert!(crc_matches(&rebuilt, &header));
            assert_eq!(header.delete_horizon_ms(), Some(horizon), "codec {codec}");
            assert_eq!(header.base_timestamp, horizon);
            assert_eq!(header.attributes, decoded.header.attributes | ATTR_DELETE_HORIZON);
            assert_eq!(header.max_timestamp, decoded.header.max_timestamp);
            let got = kafka_decode(&rebuilt);
            for (got, &i) in got.iter().zip(&keep) {
                same_record(got, &records[i]);
                assert!(got.delete_horizon);
            }
            // Rebuilt again without a horizon: the one it has stays.
            let again = decode(&rebuilt, BOUND).unwrap();
            let kept = rebuild(&again, &[1], None).unwrap();
            assert_eq!(BatchHeader::parse(&kept).unwrap().delete_horizon_ms(), Some(horizon));
            same_record(&kafka_decode(&kept)[0], &records[3]);
            // A later horizon replaces it; the timestamps still hold.
            let later = rebuild(&again, &[0, 2], Some(horizon + 1)).unwrap();
            let got = kafka_decode(&later);
            assert_eq!(BatchHeader::parse(&later).unwrap().base_timestamp, horizon + 1);
            same_record(&got[0], &records[0]);
            same_record(&got[1], &records[5]);
        }
    }

    #[test]
    fn timestamp_deltas_of_every_size_are_re_encoded() {
        let mut records = sample_records();
        records[0].timestamp = 0;
        records[1].timestamp = i64::MAX / 2;
        records[2].timestamp = 1 << 40;
        let decoded = decode(&encode(&records, Compression::None), BOUND).unwrap();
        for horizon in [0, -1, 1, 63, 64, 1 << 20, i64::MAX / 2, -(1 << 50)] {
            let rebuilt = rebuild(&decoded, &[0, 1, 2, 5], Some(horizon)).unwrap();
            let got = kafka_decode(&rebuilt);
            for (got, i) in got.iter().zip([0, 1, 2, 5]) {
                same_record(got, &records[i]);
            }
        }
        for v in [0i64, 1, -1, 63, -64, 64, i32::MAX as i64, i32::MIN as i64, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            assert_eq!(out.len(), varlong_len(v));
            assert_eq!(Cursor { b: &out, at: 0 }.varlong(), Ok(v));
            if let Ok(v) = i32::try_from(v) {
                let mut out = Vec::new();
                put_varint(&mut out, v);
                assert_eq!(out.len(), varint_len(v));
                assert_eq!(Cursor { b: &out, at: 0 }.varint(), Ok(v));
            }
        }
    }

    #[test]
    fn keep_must_be_ascending_and_in_range() {
        let decoded = decode(&encode(&sample_records(), Compression::None), BOUND).unwrap();
        for keep in [&[2usize, 1][..], &[1, 1], &[6], &[0, 9]] {
            assert_eq!(rebuild(&decoded, keep, None), Err(RecordsError::BadKeep { count: 6 }));
        }
    }

    #[test]
    fn empty_batch_is_kafkas_empty_header() {
        let records: Vec<Record> = sample_records()
            .into_iter()
            .map(|r| Record { transactional: true, timestamp_type: TimestampType::Creation, ..r })
            .collect();
        let mut batch = encode(&records, Compression::Zstd);
        patch_offset_and_epoch(&mut batch, 500, 9);
        crate::batch::patch_log_append_time(&mut batch, 1_800_000_000_000);
        let original = decode(&rebuild(&decode(&batch, BOUND).unwrap(), &[0], Some(77)).unwrap(), BOUND).unwrap();
        let empty = empty_batch(&original.header);
        assert_eq!(empty.len(), BATCH_HEADER_BYTES);
        let h = BatchHeader::parse(&empty).unwrap();
        assert!(crc_matches(&empty, &h));
        assert_eq!((h.base_offset, h.last_offset_delta, h.last_offset()), (500, 5, 505));
        assert_eq!((h.partition_leader_epoch, h.magic, h.records_count), (9, 2, 0));
        assert_eq!((h.producer_id, h.producer_epoch, h.base_sequence), (99, 3, BASE_SEQUENCE));
        assert_eq!((h.base_timestamp, h.max_timestamp), (-1, 1_800_000_000_000));
        assert_eq!(h.compression(), compression::NONE);
        assert_eq!(h.delete_horizon_ms(), None, "Kafka writes an empty header without a horizon");
        assert!(h.is_transactional() && h.is_log_append_time() && !h.is_control());
        assert_eq!(h.attributes, ATTR_TRANSACTIONAL | ATTR_TIMESTAMP_LOG_APPEND);
        assert_eq!(decode(&empty, BOUND).unwrap().views, vec![]);
        assert!(kafka_decode(&empty).is_empty());

        let marker = BatchHeader::parse(&control_batch(5, 1, true, 0, 10)).unwrap();
        let h = BatchHeader::parse(&empty_batch(&marker)).unwrap();
        assert!(h.is_control() && h.is_transactional());
        assert_eq!((h.last_offset_delta, h.max_timestamp, h.base_sequence), (0, 10, -1));
    }

    #[test]
    fn keyless_records_of_control_and_uncompressed_batches() {
        assert_eq!(keyless_records(&control_batch(5, 1, true, 0, 10), BOUND).unwrap(), Vec::<i32>::new());
        let batch = crate::batch::test_support::batch(0, 4);
        assert_eq!(keyless_records(&batch, BOUND).unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(keyless_records(&batch, 10), Err(RecordsError::TooLarge { bytes_max: 10 }));
        let compressed = encode(&sample_records(), Compression::Gzip);
        assert_eq!(keyless_records(&compressed, 100), Err(RecordsError::TooLarge { bytes_max: 100 }));
    }

    /// Sets the record count of `batch` (the CRC is not this codec's business).
    fn with_count(batch: &[u8], count: i32) -> Vec<u8> {
        let mut b = batch.to_vec();
        b[OFFSET_RECORDS_COUNT..OFFSET_RECORDS_COUNT + 4].copy_from_slice(&count.to_be_bytes());
        b
    }

    #[test]
    fn counts_that_do_not_match_the_records_are_refused() {
        let batch = encode(&sample_records(), Compression::None);
        let corrupt = |b: &[u8]| matches!(decode(b, BOUND), Err(RecordsError::Corrupt(_)));
        assert!(corrupt(&with_count(&batch, 5)), "bytes remain");
        assert!(corrupt(&with_count(&batch, 7)), "a record missing");
        assert!(corrupt(&with_count(&batch, -1)));
        assert!(corrupt(&with_count(&batch, i32::MAX)));
        assert!(corrupt(&with_count(&batch, BATCH_RECORDS_MAX as i32 + 1)));
        let compressed = encode(&sample_records(), Compression::Lz4);
        assert!(corrupt(&with_count(&compressed, 1_000_000)), "more records than bytes");
        assert_eq!(decode(&batch[..60], BOUND), Err(RecordsError::Truncated));
        assert_eq!(decode(&batch[..batch.len() - 1], BOUND), Err(RecordsError::Truncated));
        let mut magic = batch.clone();
        magic[OFFSET_MAGIC] = 1;
        assert_eq!(decode(&magic, BOUND), Err(RecordsError::Corrupt("magic byte is not 2")));
        let mut codec = batch.clone();
        codec[OFFSET_ATTRIBUTES + 1] |= 7;
        assert_eq!(decode(&codec, BOUND), Err(RecordsError::UnknownCodec(7)));
    }

    /// A small deterministic generator (xorshift64*), for garbage.
    struct Garbage(u64);
    impl Garbage {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len).map(|_| self.next() as u8).collect()
        }
    }

    /// Runs every reader over `b`; none may panic (errors are fine).
    fn read_all_ways(b: &[u8]) {
        if let Ok(decoded) = decode(b, BOUND) {
            let all: Vec<usize> = (0..decoded.views.len()).collect();
            let _ = rebuild(&decoded, &all, Some(123));
            let _ = rebuild(&decoded, &all, None);
            let _ = empty_batch(&decoded.header);
        }
        let _ = keyless_records(b, BOUND);
    }

    #[test]
    fn garbage_never_panics() {
        let mut rng = Garbage(0x5eed_1234_abcd_0001);
        for (_, compression) in CODECS {
            let batch = encode(&sample_records(), compression);
            // Every truncation, with the length field lying or telling the truth.
            for len in 0..batch.len() {
                read_all_ways(&batch[..len]);
                let mut cut = batch[..len].to_vec();
                if len >= BATCH_LENGTH_PREFIX_BYTES {
                    cut[OFFSET_BATCH_LENGTH..OFFSET_BATCH_LENGTH + 4]
                        .copy_from_slice(&((len - BATCH_LENGTH_PREFIX_BYTES) as i32).to_be_bytes());
                }
                read_all_ways(&cut);
            }
            // Every byte flipped or set to extremes, one at a time.
            for at in 0..batch.len() {
                for value in [batch[at] ^ 0xff, batch[at] ^ 0x01, 0x80, 0x7f, 0x00, 0xff] {
                    let mut bad = batch.clone();
                    bad[at] = value;
                    read_all_ways(&bad);
                }
            }
            // Random record bytes behind a believable header.
            for _ in 0..300 {
                let len = (rng.next() % 400) as usize;
                let mut bad = batch[..BATCH_HEADER_BYTES].to_vec();
                bad.extend(rng.bytes(len));
                let length = (bad.len() - BATCH_LENGTH_PREFIX_BYTES) as i32;
                bad[OFFSET_BATCH_LENGTH..OFFSET_BATCH_LENGTH + 4].copy_from_slice(&length.to_be_bytes());
                let count = (rng.next() % 16) as i32;
                read_all_ways(&with_count(&bad, count));
            }
        }
        // Wholly random bytes.
        for _ in 0..2000 {
            let len = (rng.next() % 200) as usize;
            read_all_ways(&rng.bytes(len));
        }
        // Varints that never end, and records whose fields claim too much.
        let mut endless = crate::batch::test_support::batch(0, 1)[..BATCH_HEADER_BYTES].to_vec();
        endless.extend([0xffu8; 20]);
        let len = (endless.len() - BATCH_LENGTH_PREFIX_BYTES) as i32;
        endless[OFFSET_BATCH_LENGTH..OFFSET_BATCH_LENGTH + 4].copy_from_slice(&len.to_be_bytes());
        assert!(matches!(decode(&endless, BOUND), Err(RecordsError::Corrupt(_))));
    }
}
