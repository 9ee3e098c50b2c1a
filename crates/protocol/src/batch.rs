//! Kafka RecordBatch v2 (magic 2), read in place.
//!
//! The broker never decodes records on the produce or fetch path: it checks a
//! batch's header and CRC-32C, patches the base offset (and the timestamp for
//! `LogAppendTime` topics) where the batch lies, and stores the bytes as sent.
//! (Compacted topics are the exception: their produce checks every record has
//! a key, with [`crate::records`].)
//!
//! ```text
//! 0  base_offset i64        8  batch_length i32      12 partition_leader_epoch i32
//! 16 magic i8               17 crc u32 (CRC-32C of bytes 21..end)
//! 21 attributes i16         23 last_offset_delta i32 27 base_timestamp i64
//! 35 max_timestamp i64      43 producer_id i64       51 producer_epoch i16
//! 53 base_sequence i32      57 records_count i32     61 records...
//! ```

use sluice_core::constants::{BATCH_HEADER_BYTES, BATCH_LENGTH_PREFIX_BYTES};

pub(crate) const OFFSET_BASE_OFFSET: usize = 0;
pub(crate) const OFFSET_BATCH_LENGTH: usize = 8;
pub(crate) const OFFSET_LEADER_EPOCH: usize = 12;
pub(crate) const OFFSET_MAGIC: usize = 16;
pub(crate) const OFFSET_CRC: usize = 17;
pub(crate) const OFFSET_ATTRIBUTES: usize = 21;
pub(crate) const OFFSET_LAST_OFFSET_DELTA: usize = 23;
pub(crate) const OFFSET_BASE_TIMESTAMP: usize = 27;
pub(crate) const OFFSET_MAX_TIMESTAMP: usize = 35;
pub(crate) const OFFSET_PRODUCER_ID: usize = 43;
pub(crate) const OFFSET_PRODUCER_EPOCH: usize = 51;
pub(crate) const OFFSET_BASE_SEQUENCE: usize = 53;
pub(crate) const OFFSET_RECORDS_COUNT: usize = 57;

pub(crate) const ATTR_COMPRESSION_MASK: i16 = 0x07;
pub(crate) const ATTR_TIMESTAMP_LOG_APPEND: i16 = 0x08;
pub const ATTR_TRANSACTIONAL: i16 = 0x10;
pub const ATTR_CONTROL: i16 = 0x20;
/// KIP-534: the base timestamp is the time after which the log cleaner may
/// remove the batch's tombstones (or, for a marker, the marker itself).
pub(crate) const ATTR_DELETE_HORIZON: i16 = 0x40;
/// Highest compression codec id Kafka defines (zstd).
pub(crate) const COMPRESSION_CODEC_MAX: i16 = 4;

/// Why a batch was refused; each maps to one Kafka error code in the handler.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Length, magic, CRC or counts do not hold: CORRUPT_MESSAGE.
    #[error("corrupt record batch: {0}")]
    Corrupt(&'static str),
    /// A client sent a control batch: INVALID_RECORD.
    #[error("clients may not write control batches")]
    ControlBatch,
    /// Unknown compression codec: UNSUPPORTED_COMPRESSION_TYPE.
    #[error("unknown compression codec {0}")]
    UnsupportedCompression(i16),
    /// One batch is larger than the topic's `max.message.bytes`: MESSAGE_TOO_LARGE.
    #[error("batch of {0} bytes exceeds max.message.bytes")]
    TooLarge(usize),
}

/// A view of one batch's header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// Whole batch size, including base_offset and batch_length.
    pub size_bytes: usize,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl BatchHeader {
    /// Reads the header at the start of `b`, or `None` if `b` is shorter than a
    /// header or its length field is impossible. Does not check the CRC.
    pub fn parse(b: &[u8]) -> Option<BatchHeader> {
        if b.len() < BATCH_HEADER_BYTES {
            return None;
        }
        let batch_length = i32_at(b, OFFSET_BATCH_LENGTH);
        if batch_length < (BATCH_HEADER_BYTES - BATCH_LENGTH_PREFIX_BYTES) as i32 {
            return None;
        }
        Some(BatchHeader {
            base_offset: i64_at(b, OFFSET_BASE_OFFSET),
            size_bytes: BATCH_LENGTH_PREFIX_BYTES + batch_length as usize,
            partition_leader_epoch: i32_at(b, OFFSET_LEADER_EPOCH),
            magic: b[OFFSET_MAGIC] as i8,
            attributes: i16_at(b, OFFSET_ATTRIBUTES),
            last_offset_delta: i32_at(b, OFFSET_LAST_OFFSET_DELTA),
            base_timestamp: i64_at(b, OFFSET_BASE_TIMESTAMP),
            max_timestamp: i64_at(b, OFFSET_MAX_TIMESTAMP),
            producer_id: i64_at(b, OFFSET_PRODUCER_ID),
            producer_epoch: i16_at(b, OFFSET_PRODUCER_EPOCH),
            base_sequence: i32_at(b, OFFSET_BASE_SEQUENCE),
            records_count: i32_at(b, OFFSET_RECORDS_COUNT),
        })
    }

    /// Offset of the batch's last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }
    pub fn compression(&self) -> i16 {
        self.attributes & ATTR_COMPRESSION_MASK
    }
    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & ATTR_TIMESTAMP_LOG_APPEND != 0
    }
    /// The delete horizon the log cleaner set (KIP-534): the base timestamp
    /// when the "has delete horizon" attribute is set.
    pub fn delete_horizon_ms(&self) -> Option<i64> {
        (self.attributes & ATTR_DELETE_HORIZON != 0).then_some(self.base_timestamp)
    }
}

/// What the owner needs to know of each batch of a validated produce chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSummary {
    /// Where the batch starts inside the chunk.
    pub position: usize,
    pub size_bytes: usize,
    /// Records the batch takes in the offset space (last_offset_delta + 1).
    pub offset_count: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
}

/// Checks every batch of a produce chunk: complete lengths, magic 2, CRC-32C,
/// sane counts, a known codec and no control batches. Returns one summary per
/// batch; an error means nothing of the chunk may be written.
pub fn validate_chunk(chunk: &[u8], batch_bytes_max: usize) -> Result<Vec<BatchSummary>, BatchError> {
    validate(chunk, batch_bytes_max, false)
}

/// As [`validate_chunk`], for what a follower fetched from its leader:
/// control batches (transaction markers) are part of the log it copies.
pub fn validate_replica_chunk(chunk: &[u8], batch_bytes_max: usize) -> Result<Vec<BatchSummary>, BatchError> {
    validate(chunk, batch_bytes_max, true)
}

fn validate(chunk: &[u8], batch_bytes_max: usize, control_allowed: bool) -> Result<Vec<BatchSummary>, BatchError> {
    if chunk.is_empty() {
        return Err(BatchError::Corrupt("no record batches"));
    }
    let mut summaries = Vec::with_capacity((chunk.len() / BATCH_HEADER_BYTES).min(64));
    let mut position = 0usize;
    while position < chunk.len() {
        let rest = &chunk[position..];
        if rest.len() < BATCH_LENGTH_PREFIX_BYTES {
            return Err(BatchError::Corrupt("truncated batch header"));
        }
        let header = BatchHeader::parse(rest).ok_or(BatchError::Corrupt("batch header too short"))?;
        if header.size_bytes > rest.len() {
            return Err(BatchError::Corrupt("batch length exceeds the bytes sent"));
        }
        if header.magic != 2 {
            return Err(BatchError::Corrupt("magic byte is not 2"));
        }
        if header.size_bytes > batch_bytes_max {
            return Err(BatchError::TooLarge(header.size_bytes));
        }
        let stored_crc = i32_at(rest, OFFSET_CRC) as u32;
        if crc32c::crc32c(&rest[OFFSET_ATTRIBUTES..header.size_bytes]) != stored_crc {
            return Err(BatchError::Corrupt("CRC-32C mismatch"));
        }
        if header.records_count <= 0 {
            return Err(BatchError::Corrupt("batch has no records"));
        }
        if header.last_offset_delta != header.records_count - 1 {
            return Err(BatchError::Corrupt("last offset delta does not match the record count"));
        }
        // Each record takes at least 7 bytes; a count the bytes cannot hold is a lie.
        let records_bytes = header.size_bytes - BATCH_HEADER_BYTES;
        if header.compression() == 0 && header.records_count as usize > records_bytes / 7 {
            return Err(BatchError::Corrupt("record count exceeds the batch's bytes"));
        }
        if header.records_count as usize > sluice_core::constants::BATCH_RECORDS_MAX {
            return Err(BatchError::Corrupt("too many records in one batch"));
        }
        if header.compression() > COMPRESSION_CODEC_MAX {
            return Err(BatchError::UnsupportedCompression(header.compression()));
        }
        if header.is_control() && !control_allowed {
            return Err(BatchError::ControlBatch);
        }
        summaries.push(BatchSummary {
            position,
            size_bytes: header.size_bytes,
            offset_count: header.last_offset_delta as i64 + 1,
            max_timestamp: header.max_timestamp,
            producer_id: header.producer_id,
        });
        position += header.size_bytes;
    }
    Ok(summaries)
}

/// Sets the base offset and leader epoch of the batch at the start of `batch`.
/// Both lie outside the CRC, so the CRC stays valid.
pub fn patch_offset_and_epoch(batch: &mut [u8], base_offset: i64, leader_epoch: i32) {
    batch[OFFSET_BASE_OFFSET..OFFSET_BASE_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
    batch[OFFSET_LEADER_EPOCH..OFFSET_LEADER_EPOCH + 4].copy_from_slice(&leader_epoch.to_be_bytes());
}

/// Marks the batch as `LogAppendTime` with `timestamp_ms` as its max timestamp,
/// as Kafka does for topics with `message.timestamp.type=LogAppendTime`, and
/// recomputes the CRC that covers both fields.
pub fn patch_log_append_time(batch: &mut [u8], timestamp_ms: i64) {
    let attributes = i16_at(batch, OFFSET_ATTRIBUTES) | ATTR_TIMESTAMP_LOG_APPEND;
    batch[OFFSET_ATTRIBUTES..OFFSET_ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[OFFSET_MAX_TIMESTAMP..OFFSET_MAX_TIMESTAMP + 8].copy_from_slice(&timestamp_ms.to_be_bytes());
    let size = BATCH_LENGTH_PREFIX_BYTES + i32_at(batch, OFFSET_BATCH_LENGTH) as usize;
    let crc = crc32c::crc32c(&batch[OFFSET_ATTRIBUTES..size]);
    batch[OFFSET_CRC..OFFSET_CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Control record types of a transaction marker.
const CONTROL_TYPE_ABORT: i16 = 0;
const CONTROL_TYPE_COMMIT: i16 = 1;

/// Builds the control batch Kafka writes to end a transaction in a partition
/// (one record; key: version 0 and type, value: version 0 and coordinator
/// epoch). Its base offset is patched when it is appended.
pub fn control_batch(producer_id: i64, epoch: i16, commit: bool, coordinator_epoch: i32, timestamp_ms: i64) -> Vec<u8> {
    let kind = if commit { CONTROL_TYPE_COMMIT } else { CONTROL_TYPE_ABORT };
    let mut record = vec![0u8, 0, 0]; // attributes, timestamp delta 0, offset delta 0 (zigzag varints)
    record.push(4 << 1); // key length 4
    record.extend_from_slice(&0i16.to_be_bytes());
    record.extend_from_slice(&kind.to_be_bytes());
    record.push(6 << 1); // value length 6
    record.extend_from_slice(&0i16.to_be_bytes());
    record.extend_from_slice(&coordinator_epoch.to_be_bytes());
    record.push(0); // no headers
    let mut b = vec![0u8; BATCH_HEADER_BYTES];
    b.push((record.len() as u8) << 1);
    b.extend_from_slice(&record);
    let len = (b.len() - BATCH_LENGTH_PREFIX_BYTES) as i32;
    b[OFFSET_BATCH_LENGTH..OFFSET_BATCH_LENGTH + 4].copy_from_slice(&len.to_be_bytes());
    b[OFFSET_LEADER_EPOCH..OFFSET_LEADER_EPOCH + 4].copy_from_slice(&(-1i32).to_be_bytes());
    b[OFFSET_MAGIC] = 2;
    b[OFFSET_ATTRIBUTES..OFFSET_ATTRIBUTES + 2].copy_from_slice(&(ATTR_CONTROL | ATTR_TRANSACTIONAL).to_be_bytes());
    b[OFFSET_BASE_TIMESTAMP..OFFSET_BASE_TIMESTAMP + 8].copy_from_slice(&timestamp_ms.to_be_bytes());
    b[OFFSET_MAX_TIMESTAMP..OFFSET_MAX_TIMESTAMP + 8].copy_from_slice(&timestamp_ms.to_be_bytes());
    b[OFFSET_PRODUCER_ID..OFFSET_PRODUCER_ID + 8].copy_from_slice(&producer_id.to_be_bytes());
    b[OFFSET_PRODUCER_EPOCH..OFFSET_PRODUCER_EPOCH + 2].copy_from_slice(&epoch.to_be_bytes());
    b[OFFSET_BASE_SEQUENCE..OFFSET_BASE_SEQUENCE + 4].copy_from_slice(&(-1i32).to_be_bytes());
    b[OFFSET_RECORDS_COUNT..OFFSET_RECORDS_COUNT + 4].copy_from_slice(&1i32.to_be_bytes());
    let crc = crc32c::crc32c(&b[OFFSET_ATTRIBUTES..]);
    b[OFFSET_CRC..OFFSET_CRC + 4].copy_from_slice(&crc.to_be_bytes());
    b
}

/// Reads a zigzag varint (at most 10 bytes) at `*at`.
fn varint_at(b: &[u8], at: &mut usize) -> Option<i64> {
    let mut value = 0u64;
    for shift in (0..70).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        value |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return Some((value >> 1) as i64 ^ -((value & 1) as i64));
        }
    }
    None
}

/// The marker of a stored control batch: `(commit, coordinator epoch)`, or
/// `None` if the batch is not an uncompressed transaction marker.
pub fn control_marker(batch: &[u8]) -> Option<(bool, i32)> {
    let header = BatchHeader::parse(batch)?;
    if !header.is_control() || header.compression() != 0 || batch.len() < header.size_bytes {
        return None;
    }
    let b = &batch[..header.size_bytes];
    let mut at = BATCH_HEADER_BYTES;
    let _length = varint_at(b, &mut at)?;
    at += 1; // attributes
    let _timestamp_delta = varint_at(b, &mut at)?;
    let _offset_delta = varint_at(b, &mut at)?;
    let key_len = usize::try_from(varint_at(b, &mut at)?).ok()?;
    if key_len < 4 || at + key_len > b.len() {
        return None;
    }
    let kind = i16_at(b, at + 2);
    at += key_len;
    let value_len = usize::try_from(varint_at(b, &mut at)?).unwrap_or(0);
    let coordinator_epoch = if value_len >= 6 && at + value_len <= b.len() { i32_at(b, at + 2) } else { -1 };
    match kind {
        CONTROL_TYPE_COMMIT => Some((true, coordinator_epoch)),
        CONTROL_TYPE_ABORT => Some((false, coordinator_epoch)),
        _ => None,
    }
}

/// Checks the CRC of a stored batch (recovery and index rebuilds).
pub fn crc_matches(batch: &[u8], header: &BatchHeader) -> bool {
    batch.len() >= header.size_bytes
        && crc32c::crc32c(&batch[OFFSET_ATTRIBUTES..header.size_bytes]) == i32_at(batch, OFFSET_CRC) as u32
}

/// Walks consecutive batch headers in `bytes`, stopping at the first incomplete one.
pub fn headers(bytes: &[u8]) -> impl Iterator<Item = (usize, BatchHeader)> + '_ {
    let mut position = 0usize;
    std::iter::from_fn(move || {
        let header = BatchHeader::parse(bytes.get(position..)?)?;
        if position + header.size_bytes > bytes.len() {
            return None;
        }
        let at = position;
        position += header.size_bytes;
        Some((at, header))
    })
}

/// The offset and timestamp of the first record of a stored batch whose
/// timestamp is at least `target` (ListOffsets by time). Decodes the batch,
/// decompressing if needed; used off the produce and fetch paths only.
pub fn first_record_at_or_after(mut batch: bytes::Bytes, target: i64) -> Result<Option<(i64, i64)>, String> {
    let header = BatchHeader::parse(&batch).ok_or("batch header too short")?;
    if header.is_log_append_time() {
        // Every record of a LogAppendTime batch carries the batch's max timestamp.
        return Ok((header.max_timestamp >= target).then_some((header.base_offset, header.max_timestamp)));
    }
    let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut batch).map_err(|e| e.to_string())?;
    Ok(set.records.iter().find(|r| r.timestamp >= target).map(|r| (r.offset, r.timestamp)))
}

#[cfg(any(test, feature = "test-support"))]
pub mod test_support {
    use super::*;

    /// Builds an uncompressed batch of `count` records with one-byte values.
    pub fn batch(base_timestamp: i64, count: i32) -> Vec<u8> {
        let mut records = Vec::new();
        for i in 0..count {
            // length, attributes, timestamp delta, offset delta, key -1, value len 1, value, headers 0
            let body = [0u8, (i * 2) as u8, (i * 2) as u8, 1, 2, b'v', 0];
            records.push((body.len() * 2) as u8);
            records.extend_from_slice(&body);
        }
        let mut b = vec![0u8; BATCH_HEADER_BYTES];
        b.extend_from_slice(&records);
        let len = (b.len() - BATCH_LENGTH_PREFIX_BYTES) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        b[12..16].copy_from_slice(&(-1i32).to_be_bytes());
        b[16] = 2;
        b[23..27].copy_from_slice(&(count - 1).to_be_bytes());
        b[27..35].copy_from_slice(&base_timestamp.to_be_bytes());
        b[35..43].copy_from_slice(&(base_timestamp + count as i64 - 1).to_be_bytes());
        b[43..51].copy_from_slice(&(-1i64).to_be_bytes());
        b[51..53].copy_from_slice(&(-1i16).to_be_bytes());
        b[53..57].copy_from_slice(&(-1i32).to_be_bytes());
        b[57..61].copy_from_slice(&count.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::batch;
    use super::*;

    #[test]
    fn valid_chunk_of_two_batches() {
        let mut chunk = batch(1000, 3);
        let second = batch(2000, 2);
        chunk.extend_from_slice(&second);
        let s = validate_chunk(&chunk, 1 << 20).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].offset_count, 3);
        assert_eq!(s[1].position, chunk.len() - second.len());
        assert_eq!(s[1].max_timestamp, 2001);
    }

    #[test]
    fn rejects_bad_crc_magic_length_and_counts() {
        let good = batch(0, 2);
        let mut bad_crc = good.clone();
        *bad_crc.last_mut().unwrap() ^= 1;
        assert_eq!(validate_chunk(&bad_crc, 1 << 20), Err(BatchError::Corrupt("CRC-32C mismatch")));
        let mut bad_magic = good.clone();
        bad_magic[16] = 1;
        assert!(matches!(validate_chunk(&bad_magic, 1 << 20), Err(BatchError::Corrupt(_))));
        assert!(matches!(validate_chunk(&good[..good.len() - 1], 1 << 20), Err(BatchError::Corrupt(_))));
        assert!(matches!(validate_chunk(&good[..5], 1 << 20), Err(BatchError::Corrupt(_))));
        let mut lying_len = good.clone();
        lying_len[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(validate_chunk(&lying_len, 1 << 20), Err(BatchError::Corrupt(_))));
        assert_eq!(validate_chunk(&good, 10), Err(BatchError::TooLarge(good.len())));
        assert!(validate_chunk(&[], 1 << 20).is_err());
    }

    #[test]
    fn patching_keeps_crc_valid() {
        let mut b = batch(5, 4);
        patch_offset_and_epoch(&mut b, 1234, 0);
        let h = BatchHeader::parse(&b).unwrap();
        assert_eq!(h.base_offset, 1234);
        assert_eq!(h.last_offset(), 1237);
        assert!(crc_matches(&b, &h));
        patch_log_append_time(&mut b, 99);
        let h = BatchHeader::parse(&b).unwrap();
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp, 99);
        assert!(crc_matches(&b, &h));
    }

    #[test]
    fn finds_first_record_by_timestamp() {
        let mut b = batch(1000, 5);
        patch_offset_and_epoch(&mut b, 40, 0);
        let b = bytes::Bytes::from(b);
        assert_eq!(first_record_at_or_after(b.clone(), 1002), Ok(Some((42, 1002))));
        assert_eq!(first_record_at_or_after(b.clone(), 0), Ok(Some((40, 1000))));
        assert_eq!(first_record_at_or_after(b, 2000), Ok(None));
    }

    #[test]
    fn control_batches_are_refused_from_clients_and_copied_by_followers() {
        let marker = control_batch(7, 1, true, 0, 1_000);
        assert!(matches!(validate_chunk(&marker, 1 << 20), Err(BatchError::ControlBatch)));
        let summaries = validate_replica_chunk(&marker, 1 << 20).expect("a follower copies markers");
        assert_eq!((summaries.len(), summaries[0].offset_count, summaries[0].producer_id), (1, 1, 7));
    }

    #[test]
    fn control_batches_decode_as_kafka_markers() {
        let mut b = control_batch(77, 3, true, 5, 1_700_000_000_000);
        patch_offset_and_epoch(&mut b, 10, 0);
        let h = BatchHeader::parse(&b).unwrap();
        assert!(h.is_control() && h.is_transactional() && crc_matches(&b, &h));
        assert_eq!((h.producer_id, h.producer_epoch, h.base_offset, h.records_count), (77, 3, 10, 1));
        assert_eq!(control_marker(&b), Some((true, 5)));
        assert_eq!(control_marker(&control_batch(1, 0, false, 0, 0)), Some((false, 0)));
        // The generated decoder agrees that this is one control record.
        let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut bytes::Bytes::from(b)).unwrap();
        assert_eq!(set.records.len(), 1);
        assert!(set.records[0].control);
        assert_eq!(set.records[0].key.as_deref(), Some(&[0u8, 0, 0, 1][..]));
        assert_eq!(control_marker(&batch(0, 1)), None);
    }

    #[test]
    fn headers_stop_at_incomplete_batch() {
        let mut bytes = batch(0, 1);
        let first = bytes.len();
        bytes.extend_from_slice(&batch(0, 2));
        bytes.truncate(bytes.len() - 3);
        let all: Vec<_> = headers(&bytes).collect();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].1.size_bytes, first);
    }
}
