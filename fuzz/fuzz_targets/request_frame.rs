//! A request frame body (header and body) as the broker reads it after the
//! length prefix: header parsing, then the body decoded for its API and
//! version, for every API key and version Sluice serves.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::protocol::frame::{decode_request_body, parse_request};

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = parse_request(bytes::Bytes::copy_from_slice(data)) {
        let _ = decode_request_body(frame.api_key, frame.header.request_api_version, frame.body);
    }
});
