//! The recovery scan of a segment file's bytes after a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::storage::recovery::scan_chunk;

fuzz_target!(|data: &[u8]| {
    let scan = scan_chunk(data, None);
    assert!(scan.consumed <= data.len());
    let mut end = 0;
    for (at, header) in &scan.batches {
        assert_eq!(*at, end, "valid batches tile the prefix");
        end = at + header.size_bytes;
    }
    assert_eq!(end, scan.consumed);
});
