//! The recovery scan's core, over bytes: which batches at the start of a
//! buffer are valid (complete, magic 2, CRC-32C intact, offsets increasing).
//! Pure, so that it can be unit-tested and fuzzed apart from any file.

use sluice_protocol::batch::{self, BatchHeader};

/// The valid batches at the start of a buffer.
#[derive(Debug, Default)]
pub struct ChunkScan {
    /// Bytes covered by the valid batches.
    pub consumed: usize,
    /// Each valid batch's position and header, in order.
    pub batches: Vec<(usize, BatchHeader)>,
}

/// Scans `bytes` from the start and stops at the first batch that is
/// incomplete, not magic 2, fails its CRC, or does not start at or after
/// `next_offset` (the offset after the previous valid batch, if any).
pub fn scan_chunk(bytes: &[u8], next_offset: Option<i64>) -> ChunkScan {
    let mut scan = ChunkScan::default();
    let mut next = next_offset;
    while let Some(header) = BatchHeader::parse(&bytes[scan.consumed..]) {
        let rest = &bytes[scan.consumed..];
        if header.magic != 2 || header.size_bytes > rest.len() || header.last_offset_delta < 0 {
            break;
        }
        if next.is_some_and(|n| header.base_offset < n) {
            break;
        }
        if !batch::crc_matches(rest, &header) {
            break;
        }
        scan.batches.push((scan.consumed, header));
        scan.consumed += header.size_bytes;
        next = Some(header.last_offset() + 1);
    }
    scan
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_protocol::batch::{patch_offset_and_epoch, test_support::batch};

    fn log(batches: usize) -> Vec<u8> {
        let mut bytes = Vec::new();
        for i in 0..batches {
            let mut b = batch(i as i64, 2);
            patch_offset_and_epoch(&mut b, 2 * i as i64, 0);
            bytes.extend_from_slice(&b);
        }
        bytes
    }

    #[test]
    fn stops_at_torn_corrupt_or_backwards_batches() {
        let bytes = log(5);
        assert_eq!(scan_chunk(&bytes, None).batches.len(), 5);
        assert_eq!(scan_chunk(&bytes[..bytes.len() - 1], None).batches.len(), 4);
        let mut corrupt = bytes.clone();
        let one = bytes.len() / 5;
        corrupt[2 * one + 70] ^= 1;
        let scan = scan_chunk(&corrupt, None);
        assert_eq!(scan.batches.len(), 2);
        assert_eq!(scan.consumed, 2 * one);
        // Offsets must not go back.
        assert_eq!(scan_chunk(&bytes, Some(100)).batches.len(), 0);
        assert_eq!(scan_chunk(&[0u8; 300], None).batches.len(), 0);
    }
}
