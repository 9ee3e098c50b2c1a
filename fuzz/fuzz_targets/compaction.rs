//! A stored batch as the log cleaner reads it: record decoding with bounded
//! decompression, the key check of compacted topics, Kafka's cleaning rules
//! over it, and the rebuilt batches, which must decode to the records kept.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use sluice::protocol::batch::{crc_matches, BatchHeader};
use sluice::protocol::records::{decode, empty_batch, keyless_records, rebuild};
use sluice::storage::cleaner::filter::{BatchFilter, Verdict};
use sluice::storage::cleaner::offset_map::{OffsetMap, SLOT_BYTES};

const BYTES_MAX: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let _ = keyless_records(data, BYTES_MAX);
    let Ok(decoded) = decode(data, BYTES_MAX) else { return };
    // Every other record, with and without a delete horizon.
    let keep: Vec<usize> = (0..decoded.views.len()).step_by(2).collect();
    for horizon in [None, Some(decoded.header.max_timestamp.saturating_add(1))] {
        if let Ok(rebuilt) = rebuild(&decoded, &keep, horizon) {
            let header = BatchHeader::parse(&rebuilt).expect("a rebuilt batch has a header");
            assert!(crc_matches(&rebuilt, &header));
            let again = decode(&rebuilt, BYTES_MAX).expect("a rebuilt batch decodes");
            assert_eq!(again.views.len(), keep.len());
            for (view, i) in again.views.iter().zip(&keep) {
                let original = &decoded.views[*i];
                assert_eq!(again.key(view), decoded.key(original));
                assert_eq!(again.value(view), decoded.value(original));
                assert_eq!(view.offset(header.base_offset), original.offset(decoded.header.base_offset));
            }
        }
    }
    let empty = empty_batch(&decoded.header);
    assert!(decode(&empty, BYTES_MAX).is_ok_and(|d| d.views.is_empty()));
    // The cleaning rules, with a key map that has every other key at a later offset.
    let mut map = OffsetMap::with_bytes(SLOT_BYTES * 64, 0.5);
    for view in decoded.views.iter().skip(1).step_by(2) {
        if let Some(key) = decoded.key(view) {
            map.put(key, view.offset(decoded.header.base_offset).saturating_add(1));
        }
    }
    let producers = HashMap::new();
    let mut filter = BatchFilter::new(&map, i64::MAX, 0, 1000, Vec::new(), &producers, BYTES_MAX);
    if let Ok(Verdict::Replace(bytes)) = filter.filter(data, true) {
        assert!(decode(&bytes, BYTES_MAX).is_ok());
    }
});
