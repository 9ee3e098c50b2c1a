//! The Fetch response (v4-17), encoded by hand so that stored record bytes go
//! to the socket as they are: the framing is encoded into one buffer and each
//! partition's record chunks are placed between its pieces, never copied.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use uuid::Uuid;

use super::frame::{encode_response_header, ResponseFrame};

/// One partition of a fetch response.
#[derive(Debug, Clone, Default)]
pub struct FetchPartitionOut {
    pub partition_index: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// `(producer id, first offset)` of aborted transactions among the
    /// records, for read_committed fetches; `None` is sent as null.
    pub aborted_transactions: Option<Vec<(i64, i64)>>,
    /// Consecutive whole batches, in offset order.
    pub records: Vec<Bytes>,
    /// For a follower replica's fetch whose log diverged from the leader's:
    /// `(epoch, end offset)` of the last epoch they share (v12+, tagged field 0).
    pub diverging_epoch: Option<(i32, i64)>,
}

impl FetchPartitionOut {
    pub fn records_bytes(&self) -> usize {
        self.records.iter().map(Bytes::len).sum()
    }
}

/// One topic of a fetch response; `name` for v4-12, `topic_id` for v13+.
#[derive(Debug, Clone, Default)]
pub struct FetchTopicOut {
    pub name: String,
    pub topic_id: Uuid,
    pub partitions: Vec<FetchPartitionOut>,
}

/// A whole fetch response body.
#[derive(Debug, Clone, Default)]
pub struct FetchResponseOut {
    pub throttle_time_ms: i32,
    pub error_code: i16,
    pub session_id: i32,
    pub topics: Vec<FetchTopicOut>,
}

fn put_unsigned_varint(buf: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        buf.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn put_array_len(buf: &mut BytesMut, flexible: bool, len: usize) {
    if flexible {
        put_unsigned_varint(buf, len as u32 + 1);
    } else {
        buf.put_i32(len as i32);
    }
}

fn put_string(buf: &mut BytesMut, flexible: bool, s: &str) {
    if flexible {
        put_unsigned_varint(buf, s.len() as u32 + 1);
    } else {
        buf.put_i16(s.len() as i16);
    }
    buf.put_slice(s.as_bytes());
}

impl FetchResponseOut {
    /// Encodes the frame (length, header, body) for `version` (4-18; v18's
    /// response is v17's).
    pub fn encode(&self, version: i16, correlation_id: i32) -> ResponseFrame {
        assert!((4..=18).contains(&version), "fetch v{version} is not served");
        let flexible = version >= 12;
        let mut chunks: Vec<Bytes> = Vec::with_capacity(2 + self.topics.len() * 4);
        let mut buf = BytesMut::with_capacity(256);
        encode_response_header(&mut buf, ApiKey::Fetch, version, correlation_id);
        buf.put_i32(self.throttle_time_ms);
        if version >= 7 {
            buf.put_i16(self.error_code);
            buf.put_i32(self.session_id);
        }
        put_array_len(&mut buf, flexible, self.topics.len());
        for topic in &self.topics {
            if version >= 13 {
                buf.put_slice(topic.topic_id.as_bytes());
            } else {
                put_string(&mut buf, flexible, &topic.name);
            }
            put_array_len(&mut buf, flexible, topic.partitions.len());
            for p in &topic.partitions {
                buf.put_i32(p.partition_index);
                buf.put_i16(p.error_code);
                buf.put_i64(p.high_watermark);
                buf.put_i64(p.last_stable_offset);
                if version >= 5 {
                    buf.put_i64(p.log_start_offset);
                }
                if let Some(aborted) = &p.aborted_transactions {
                    put_array_len(&mut buf, flexible, aborted.len());
                    for (producer_id, first_offset) in aborted {
                        buf.put_i64(*producer_id);
                        buf.put_i64(*first_offset);
                        if flexible {
                            put_unsigned_varint(&mut buf, 0); // aborted transaction tagged fields
                        }
                    }
                } else if flexible {
                    put_unsigned_varint(&mut buf, 0);
                } else {
                    buf.put_i32(-1);
                }
                if version >= 11 {
                    buf.put_i32(-1); // preferred_read_replica
                }
                let records_bytes = p.records_bytes();
                if flexible {
                    put_unsigned_varint(&mut buf, records_bytes as u32 + 1);
                } else {
                    buf.put_i32(records_bytes as i32);
                }
                if records_bytes > 0 {
                    chunks.push(buf.split().freeze());
                    chunks.extend(p.records.iter().filter(|c| !c.is_empty()).cloned());
                }
                if let Some((epoch, end_offset)) = p.diverging_epoch.filter(|_| flexible) {
                    put_unsigned_varint(&mut buf, 1); // one tagged field
                    put_unsigned_varint(&mut buf, 0); // tag 0: diverging_epoch
                    put_unsigned_varint(&mut buf, 4 + 8 + 1);
                    buf.put_i32(epoch);
                    buf.put_i64(end_offset);
                    put_unsigned_varint(&mut buf, 0); // its tagged fields
                } else if flexible {
                    put_unsigned_varint(&mut buf, 0); // partition tagged fields
                }
            }
            if flexible {
                put_unsigned_varint(&mut buf, 0); // topic tagged fields
            }
        }
        if flexible {
            put_unsigned_varint(&mut buf, 0); // response tagged fields
        }
        chunks.push(buf.freeze());
        let length: usize = chunks.iter().map(Bytes::len).sum();
        let mut frame = Vec::with_capacity(chunks.len() + 1);
        frame.push(Bytes::copy_from_slice(&(length as i32).to_be_bytes()));
        frame.extend(chunks);
        ResponseFrame { chunks: frame }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{FetchResponse, ResponseHeader};
    use kafka_protocol::protocol::Decodable;

    fn sample() -> FetchResponseOut {
        FetchResponseOut {
            throttle_time_ms: 0,
            error_code: 0,
            session_id: 0,
            topics: vec![FetchTopicOut {
                name: "orders".into(),
                topic_id: Uuid::from_u128(7),
                partitions: vec![
                    FetchPartitionOut {
                        partition_index: 3,
                        high_watermark: 10,
                        last_stable_offset: 10,
                        log_start_offset: 0,
                        records: vec![Bytes::from_static(b"abc"), Bytes::from_static(b"defg")],
                        aborted_transactions: Some(vec![(77, 3), (78, 5)]),
                        ..Default::default()
                    },
                    FetchPartitionOut {
                        partition_index: 4,
                        error_code: 1,
                        diverging_epoch: Some((5, 1234)),
                        ..Default::default()
                    },
                ],
            }],
        }
    }

    /// The hand encoder must agree with the generated decoder at every version.
    #[test]
    fn matches_generated_codec_at_every_version() {
        for version in 4..=18i16 {
            let frame = sample().encode(version, 99);
            let mut all = BytesMut::new();
            for c in &frame.chunks {
                all.put_slice(c);
            }
            let mut all = all.freeze();
            let length = i32::from_be_bytes(all[..4].try_into().unwrap()) as usize;
            assert_eq!(length, all.len() - 4);
            let _ = all.split_to(4);
            let header_version = ApiKey::Fetch.response_header_version(version);
            let header = ResponseHeader::decode(&mut all, header_version).unwrap();
            assert_eq!(header.correlation_id, 99);
            let decoded = FetchResponse::decode(&mut all, version).unwrap();
            assert!(all.is_empty(), "v{version} left {} bytes", all.len());
            let topic = &decoded.responses[0];
            if version >= 13 {
                assert_eq!(topic.topic_id, Uuid::from_u128(7));
            } else {
                assert_eq!(topic.topic.0.as_str(), "orders");
            }
            assert_eq!(topic.partitions[0].records.as_deref(), Some(&b"abcdefg"[..]));
            assert_eq!(topic.partitions[0].high_watermark, 10);
            let aborted = topic.partitions[0].aborted_transactions.as_ref().unwrap();
            assert_eq!(aborted.len(), 2);
            assert_eq!((aborted[1].producer_id.0, aborted[1].first_offset), (78, 5));
            assert!(topic.partitions[1].aborted_transactions.is_none());
            assert_eq!(topic.partitions[1].error_code, 1);
            assert_eq!(topic.partitions[1].records.as_deref(), Some(&b""[..]));
            let diverging = &topic.partitions[1].diverging_epoch;
            let expected = if version >= 12 { (5, 1234) } else { (-1, -1) };
            assert_eq!((diverging.epoch, diverging.end_offset), expected);
        }
    }

    #[test]
    fn record_chunks_are_not_copied() {
        let chunk = Bytes::from(vec![7u8; 4096]);
        let mut out = sample();
        out.topics[0].partitions[0].records = vec![chunk.clone()];
        let frame = out.encode(12, 1);
        assert!(frame.chunks.iter().any(|c| c.as_ptr() == chunk.as_ptr()));
    }
}
