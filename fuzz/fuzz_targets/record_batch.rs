//! Record batches as a produce request carries them: validation, header
//! walking, and the (bounded) decompression ListOffsets-by-time may do.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::protocol::batch::{first_record_at_or_after, headers, validate_chunk};

fuzz_target!(|data: &[u8]| {
    if validate_chunk(data, 1 << 20).is_ok() {
        for (at, header) in headers(data) {
            let batch = bytes::Bytes::copy_from_slice(&data[at..at + header.size_bytes]);
            let _ = first_record_at_or_after(batch, 0);
        }
    }
});
