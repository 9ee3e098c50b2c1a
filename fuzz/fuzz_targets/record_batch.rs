//! Record batches as a produce request carries them: validation, header
//! walking, the (bounded) decompression ListOffsets-by-time may do, and the
//! transaction-marker reading that replays stored control batches.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::protocol::batch::{control_marker, first_record_at_or_after, headers, validate_chunk};

fuzz_target!(|data: &[u8]| {
    let _ = control_marker(data);
    if validate_chunk(data, 1 << 20).is_ok() {
        for (at, header) in headers(data) {
            let batch = bytes::Bytes::copy_from_slice(&data[at..at + header.size_bytes]);
            let _ = first_record_at_or_after(batch, 0);
        }
    }
});
