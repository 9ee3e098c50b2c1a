//! Record batches read back for a person to look at (the console's message
//! browser), off the hot path. Decompression is `sluice-protocol`'s, bounded,
//! so a small batch that inflates to gigabytes is refused, not expanded.

use bytes::Bytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use serde_json::{json, Value};

use crate::protocol::{batch, compression};

/// Bytes one batch may inflate to.
pub const DECOMPRESSED_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Bytes of one key, value or header value shown; the rest is cut.
pub const SHOWN_BYTES_PER_FIELD_MAX: usize = 64 * 1024;
/// Bytes of keys and values one page shows at most (it ends early past it).
pub const SHOWN_BYTES_PER_PAGE_MAX: usize = 4 * 1024 * 1024;

/// A key, value or header value as the console shows it: the text when it is
/// UTF-8, and always the hex, of at most `SHOWN_BYTES_PER_FIELD_MAX` bytes.
fn bytes_json(bytes: Option<&Bytes>) -> Value {
    let Some(b) = bytes else { return Value::Null };
    let shown = &b[..b.len().min(SHOWN_BYTES_PER_FIELD_MAX)];
    let text = match std::str::from_utf8(shown) {
        Ok(text) => Some(text),
        // Cut inside a character: the text up to it.
        Err(e) if shown.len() < b.len() && e.error_len().is_none() => {
            std::str::from_utf8(&shown[..e.valid_up_to()]).ok()
        }
        Err(_) => None,
    };
    json!({
        "text": text,
        "hex": shown.iter().map(|x| format!("{x:02x}")).collect::<String>(),
        "size": b.len(),
        "truncated": shown.len() < b.len(),
    })
}

fn shown_bytes(r: &kafka_protocol::records::Record) -> usize {
    let field = |b: Option<&Bytes>| b.map_or(0, |b| b.len().min(SHOWN_BYTES_PER_FIELD_MAX));
    field(r.key.as_ref()) + field(r.value.as_ref()) + r.headers.values().map(|v| field(v.as_ref())).sum::<usize>()
}

/// Inflates a batch's records for the decoder, at most `DECOMPRESSED_BYTES_MAX` bytes.
pub(crate) fn decompress(data: &mut Bytes, codec: Compression) -> anyhow::Result<Bytes> {
    let data = std::mem::take(data);
    if codec == Compression::None {
        return Ok(data);
    }
    Ok(Bytes::from(compression::decompress(codec as i16, &data, DECOMPRESSED_BYTES_MAX)?))
}

/// The records of `chunks` (whole batches) from `from` on, at most `limit`
/// and about `SHOWN_BYTES_PER_PAGE_MAX` of keys and values, and the offset
/// after the last record or batch looked at.
pub fn decode(chunks: &[Bytes], from: i64, limit: usize, out: &mut Vec<Value>, shown: &mut usize) -> i64 {
    let mut next = from;
    for chunk in chunks {
        for (position, header) in batch::headers(chunk) {
            if out.len() >= limit {
                return next;
            }
            let mut one = chunk.slice(position..position + header.size_bytes);
            let last = header.last_offset();
            match RecordBatchDecoder::decode_with_custom_compression(&mut one, Some(decompress)) {
                Ok(set) => {
                    for record in set.records.iter().filter(|r| r.offset >= from) {
                        if out.len() >= limit || *shown >= SHOWN_BYTES_PER_PAGE_MAX {
                            return record.offset;
                        }
                        *shown += shown_bytes(record);
                        out.push(record_json(record));
                    }
                }
                Err(e) => out.push(json!({
                    "offset": header.base_offset,
                    "error": format!("batch of offsets {}..={last} not shown: {e}", header.base_offset),
                })),
            }
            next = next.max(last + 1);
        }
    }
    next
}

fn record_json(r: &kafka_protocol::records::Record) -> Value {
    // A control record's key is (version: i16, type: i16); type 0 aborts, 1 commits.
    let control =
        r.control.then(|| match r.key.as_ref().filter(|k| k.len() >= 4).map(|k| i16::from_be_bytes([k[2], k[3]])) {
            Some(1) => "COMMIT",
            Some(0) => "ABORT",
            _ => "UNKNOWN",
        });
    let headers: Vec<Value> =
        r.headers.iter().map(|(k, v)| json!({ "key": k.to_string(), "value": bytes_json(v.as_ref()) })).collect();
    json!({
        "offset": r.offset,
        "timestamp": r.timestamp,
        "timestamp_type": match r.timestamp_type {
            kafka_protocol::records::TimestampType::Creation => "CreateTime",
            kafka_protocol::records::TimestampType::LogAppend => "LogAppendTime",
        },
        "key": if r.control { Value::Null } else { bytes_json(r.key.as_ref()) },
        "value": if r.control { Value::Null } else { bytes_json(r.value.as_ref()) },
        "headers": headers,
        "producer_id": r.producer_id,
        "producer_epoch": r.producer_epoch,
        "transactional": r.transactional,
        "control": control,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_fields_are_cut_and_say_so() {
        // The cut falls inside a two-byte character: the text stops before it.
        let long = Bytes::from(format!("a{}", "é".repeat(SHOWN_BYTES_PER_FIELD_MAX)));
        let shown = bytes_json(Some(&long));
        assert_eq!(shown["truncated"], true);
        assert_eq!(shown["size"], long.len());
        assert_eq!(shown["text"].as_str().unwrap().len(), SHOWN_BYTES_PER_FIELD_MAX - 1);
        assert_eq!(shown["hex"].as_str().unwrap().len(), 2 * SHOWN_BYTES_PER_FIELD_MAX);
        assert_eq!(bytes_json(Some(&Bytes::from_static(b"ok")))["truncated"], false);
    }

    #[test]
    fn inflation_past_the_bound_is_refused() {
        let zeros = vec![0u8; DECOMPRESSED_BYTES_MAX + 1];
        let mut packed = Bytes::from(compression::compress(compression::GZIP, &zeros).unwrap());
        assert!(packed.len() < 64 * 1024);
        assert!(decompress(&mut packed, Compression::Gzip).is_err());
        let mut small = Bytes::from(compression::compress(compression::ZSTD, b"hello").unwrap());
        assert_eq!(&decompress(&mut small, Compression::Zstd).unwrap()[..], b"hello");
        let mut framed = Bytes::from(compression::compress(compression::SNAPPY, b"snappy").unwrap());
        assert_eq!(&decompress(&mut framed, Compression::Snappy).unwrap()[..], b"snappy");
    }
}
