//! Request frames in, response frames out.
//!
//! A frame is a 4-byte big-endian length and that many bytes. The length is
//! checked against `socket.request.max.bytes` before anything is allocated for
//! the body; the request header (v1, or v2 with tagged fields) is decoded by
//! `kafka-protocol` and its errors are wrapped here.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

use sluice_core::constants::FRAME_BYTES_MIN;

/// Why a frame could not be turned into a request.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame length {0} is negative")]
    NegativeLength(i32),
    #[error("frame length {length} exceeds socket.request.max.bytes {max}")]
    TooLarge { length: usize, max: usize },
    #[error("frame of {0} bytes is shorter than a request header")]
    TooShort(usize),
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
    #[error("request header does not decode: {0}")]
    Header(String),
    #[error("{api:?} v{version} body does not decode: {reason}")]
    Body { api: ApiKey, version: i16, reason: String },
}

/// Reads the frame length from 4 bytes and checks it against `frame_bytes_max`.
pub fn frame_length(prefix: [u8; 4], frame_bytes_max: usize) -> Result<usize, FrameError> {
    let length = i32::from_be_bytes(prefix);
    if length < 0 {
        return Err(FrameError::NegativeLength(length));
    }
    let length = length as usize;
    if length > frame_bytes_max {
        return Err(FrameError::TooLarge { length, max: frame_bytes_max });
    }
    if length < FRAME_BYTES_MIN {
        return Err(FrameError::TooShort(length));
    }
    Ok(length)
}

/// A request with its header decoded and its body still encoded.
#[derive(Debug)]
pub struct RequestFrame {
    pub api_key: ApiKey,
    pub header: RequestHeader,
    pub body: Bytes,
}

/// The fixed start of every request header, readable whatever the version.
#[derive(Debug, Clone, Copy)]
pub struct HeaderPrefix {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

impl HeaderPrefix {
    pub fn parse(frame: &[u8]) -> Result<HeaderPrefix, FrameError> {
        if frame.len() < FRAME_BYTES_MIN {
            return Err(FrameError::TooShort(frame.len()));
        }
        Ok(HeaderPrefix {
            api_key: i16::from_be_bytes([frame[0], frame[1]]),
            api_version: i16::from_be_bytes([frame[2], frame[3]]),
            correlation_id: i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]),
        })
    }
}

/// Splits a frame body into its decoded header and the encoded request body.
/// The header version follows from the api key and version, as in Kafka.
pub fn parse_request(mut frame: Bytes) -> Result<RequestFrame, FrameError> {
    let prefix = HeaderPrefix::parse(&frame)?;
    let api_key = ApiKey::try_from(prefix.api_key).map_err(|_| FrameError::UnknownApiKey(prefix.api_key))?;
    let header_version = api_key.request_header_version(prefix.api_version);
    let header = RequestHeader::decode(&mut frame, header_version).map_err(|e| FrameError::Header(e.to_string()))?;
    Ok(RequestFrame { api_key, header, body: frame })
}

/// Decodes a request body of a known type.
pub fn decode_body<T: Decodable>(api: ApiKey, version: i16, body: &mut Bytes) -> Result<T, FrameError> {
    T::decode(body, version).map_err(|e| FrameError::Body { api, version, reason: e.to_string() })
}

/// Decodes a request body of any served API and version, as the dispatcher
/// would; for fuzzing and checks that need no handler.
pub fn decode_request_body(api: ApiKey, version: i16, mut body: Bytes) -> Result<(), FrameError> {
    if !super::versions::accepts(api, version) {
        return Err(FrameError::Body { api, version, reason: "unsupported version".into() });
    }
    kafka_protocol::messages::RequestKind::decode(api, &mut body, version).map(|_| ()).map_err(|e| FrameError::Body {
        api,
        version,
        reason: e.to_string(),
    })
}

/// An encoded response: the frame length, header and body, possibly in
/// several chunks so that stored record bytes are written without copying.
#[derive(Debug, Default)]
pub struct ResponseFrame {
    pub chunks: Vec<Bytes>,
}

impl ResponseFrame {
    pub fn len_bytes(&self) -> usize {
        self.chunks.iter().map(Bytes::len).sum()
    }
}

/// Writes the response header for `api_key` at `version` into `buf`.
pub fn encode_response_header(buf: &mut BytesMut, api_key: ApiKey, version: i16, correlation_id: i32) {
    let header_version = api_key.response_header_version(version);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(buf, header_version)
        .expect("response headers always encode");
}

/// Encodes a whole response frame whose body is one `kafka-protocol` message.
pub fn encode_response<T: Encodable>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> Result<ResponseFrame, FrameError> {
    let body_error = |e: anyhow::Error| FrameError::Body { api: api_key, version, reason: e.to_string() };
    let size = body.compute_size(version).map_err(body_error)?;
    let mut buf = BytesMut::with_capacity(size + 16);
    buf.put_i32(0);
    encode_response_header(&mut buf, api_key, version, correlation_id);
    body.encode(&mut buf, version).map_err(body_error)?;
    let length = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&length.to_be_bytes());
    Ok(ResponseFrame { chunks: vec![buf.freeze()] })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ApiVersionsRequest;
    use kafka_protocol::protocol::StrBytes;

    #[test]
    fn frame_length_bounds() {
        assert!(matches!(frame_length((-1i32).to_be_bytes(), 100), Err(FrameError::NegativeLength(-1))));
        assert!(matches!(frame_length(101i32.to_be_bytes(), 100), Err(FrameError::TooLarge { .. })));
        assert!(matches!(frame_length(3i32.to_be_bytes(), 100), Err(FrameError::TooShort(3))));
        assert_eq!(frame_length(100i32.to_be_bytes(), 100).unwrap(), 100);
    }

    #[test]
    fn parses_flexible_header_and_leaves_body() {
        let header = RequestHeader::default()
            .with_request_api_key(ApiKey::ApiVersions as i16)
            .with_request_api_version(3)
            .with_correlation_id(42)
            .with_client_id(Some(StrBytes::from_static_str("t")));
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("x"))
            .with_client_software_version(StrBytes::from_static_str("1"));
        let mut buf = BytesMut::new();
        header.encode(&mut buf, 2).unwrap();
        request.encode(&mut buf, 3).unwrap();
        let mut frame = parse_request(buf.freeze()).unwrap();
        assert_eq!(frame.api_key, ApiKey::ApiVersions);
        assert_eq!(frame.header.correlation_id, 42);
        let decoded: ApiVersionsRequest = decode_body(frame.api_key, 3, &mut frame.body).unwrap();
        assert_eq!(decoded, request);
    }

    #[test]
    fn unknown_api_key_and_truncated_header_are_errors() {
        let mut b = vec![0x7f, 0x00, 0, 0, 0, 0, 0, 1];
        assert!(matches!(parse_request(Bytes::from(b.clone())), Err(FrameError::UnknownApiKey(_))));
        b[0] = 0;
        b[1] = 3; // Metadata v0, header v1: client id length missing
        assert!(matches!(parse_request(Bytes::from(b)), Err(FrameError::Header(_))));
        assert!(parse_request(Bytes::from_static(&[0, 1])).is_err());
    }
}
