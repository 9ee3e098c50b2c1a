//! The compression codecs of record batches (attributes bits 0-2), as Kafka's
//! Java client and librdkafka write and read them.
//!
//! Decompression is bounded: more than `bytes_max` inflated bytes is an
//! error, found without inflating more than `bytes_max + 1` bytes, so a small
//! batch that inflates to gigabytes is refused, not expanded.

use std::io::{Read, Write};

use crate::records::RecordsError;

pub const NONE: i16 = 0;
pub const GZIP: i16 = 1;
pub const SNAPPY: i16 = 2;
pub const LZ4: i16 = 3;
pub const ZSTD: i16 = 4;

/// The xerial framing of snappy-java's `SnappyOutputStream`, which Kafka's
/// Java client and librdkafka write: magic, version 1, compatible version 1.
const XERIAL_HEADER: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
/// The part of the xerial header that identifies it.
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
/// Input bytes per xerial block (snappy-java's default block size).
const XERIAL_BLOCK_INPUT_BYTES: usize = 32 * 1024;
/// Kafka's default zstd level.
const ZSTD_LEVEL: i32 = 3;

/// The codec's name, for messages.
pub fn codec_name(codec: i16) -> &'static str {
    match codec {
        NONE => "none",
        GZIP => "gzip",
        SNAPPY => "snappy",
        LZ4 => "lz4",
        ZSTD => "zstd",
        _ => "unknown",
    }
}

fn decompress_error(codec: i16, e: impl std::fmt::Display) -> RecordsError {
    RecordsError::Decompress { codec: codec_name(codec), reason: e.to_string() }
}

fn compress_error(codec: i16, e: impl std::fmt::Display) -> RecordsError {
    RecordsError::Compress { codec: codec_name(codec), reason: e.to_string() }
}

/// Inflates `data` compressed with `codec` (0 none, 1 gzip, 2 snappy, 3 lz4,
/// 4 zstd). More than `bytes_max` inflated bytes is [`RecordsError::TooLarge`].
pub fn decompress(codec: i16, data: &[u8], bytes_max: usize) -> Result<Vec<u8>, RecordsError> {
    match codec {
        NONE => {
            if data.len() > bytes_max {
                return Err(RecordsError::TooLarge { bytes_max });
            }
            Ok(data.to_vec())
        }
        GZIP => read_bounded(codec, flate2::read::GzDecoder::new(data), data.len(), bytes_max),
        SNAPPY => snappy_decompress(data, bytes_max),
        LZ4 => {
            let decoder = lz4::Decoder::new(data).map_err(|e| decompress_error(codec, e))?;
            read_bounded(codec, decoder, data.len(), bytes_max)
        }
        ZSTD => {
            let decoder = zstd::stream::read::Decoder::new(data).map_err(|e| decompress_error(codec, e))?;
            read_bounded(codec, decoder, data.len(), bytes_max)
        }
        other => Err(RecordsError::UnknownCodec(other)),
    }
}

/// Reads all of `reader`, failing once it yields more than `bytes_max` bytes.
fn read_bounded(codec: i16, reader: impl Read, input_len: usize, bytes_max: usize) -> Result<Vec<u8>, RecordsError> {
    // A guess at the inflated size that never allocates past the bound up front.
    let mut out = Vec::with_capacity(input_len.saturating_mul(4).min(bytes_max).min(1 << 20));
    reader.take(bytes_max as u64 + 1).read_to_end(&mut out).map_err(|e| decompress_error(codec, e))?;
    if out.len() > bytes_max {
        return Err(RecordsError::TooLarge { bytes_max });
    }
    Ok(out)
}

/// Snappy as Kafka clients write it: xerial framing (the header, then blocks
/// of [u32 BE length][raw snappy block]), or one raw snappy block. Each
/// block's inflated length is read from its header and the total checked
/// against the bound before anything is inflated.
fn snappy_decompress(data: &[u8], bytes_max: usize) -> Result<Vec<u8>, RecordsError> {
    let cut = || decompress_error(SNAPPY, "cut xerial block");
    let blocks: Vec<&[u8]> = if data.starts_with(XERIAL_MAGIC) && data.len() >= XERIAL_HEADER.len() {
        let mut blocks = Vec::new();
        let mut at = XERIAL_HEADER.len();
        while at < data.len() {
            let len_bytes: [u8; 4] = data.get(at..at + 4).ok_or_else(cut)?.try_into().map_err(|_| cut())?;
            let len = u32::from_be_bytes(len_bytes) as usize;
            let start = at + 4;
            let end = start.checked_add(len).ok_or_else(cut)?;
            blocks.push(data.get(start..end).ok_or_else(cut)?);
            at = end;
        }
        blocks
    } else {
        vec![data]
    };
    let mut total = 0usize;
    for block in &blocks {
        total = total.saturating_add(snap::raw::decompress_len(block).map_err(|e| decompress_error(SNAPPY, e))?);
        if total > bytes_max {
            return Err(RecordsError::TooLarge { bytes_max });
        }
    }
    let mut out = vec![0u8; total];
    let mut at = 0usize;
    let mut decoder = snap::raw::Decoder::new();
    for block in blocks {
        let written = decoder.decompress(block, &mut out[at..]).map_err(|e| decompress_error(SNAPPY, e))?;
        at += written;
    }
    out.truncate(at);
    Ok(out)
}

/// Compresses `data` with `codec` so that Kafka's Java client and librdkafka
/// read it: gzip; snappy in xerial framing with 32 KiB of input per block;
/// an LZ4 frame of independent 64 KiB blocks without checksums; zstd level 3.
pub fn compress(codec: i16, data: &[u8]) -> Result<Vec<u8>, RecordsError> {
    match codec {
        NONE => Ok(data.to_vec()),
        GZIP => {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(data).map_err(|e| compress_error(codec, e))?;
            encoder.finish().map_err(|e| compress_error(codec, e))
        }
        SNAPPY => {
            let mut out = Vec::with_capacity(XERIAL_HEADER.len() + snap::raw::max_compress_len(data.len()) + 64);
            out.extend_from_slice(XERIAL_HEADER);
            let mut encoder = snap::raw::Encoder::new();
            for block in data.chunks(XERIAL_BLOCK_INPUT_BYTES) {
                let compressed = encoder.compress_vec(block).map_err(|e| compress_error(codec, e))?;
                out.extend_from_slice(&(compressed.len() as u32).to_be_bytes());
                out.extend_from_slice(&compressed);
            }
            Ok(out)
        }
        LZ4 => {
            // Kafka's Lz4BlockInputStream refuses dependent blocks.
            let mut encoder = lz4::EncoderBuilder::new()
                .block_size(lz4::BlockSize::Max64KB)
                .block_mode(lz4::BlockMode::Independent)
                .block_checksum(lz4::liblz4::BlockChecksum::NoBlockChecksum)
                .checksum(lz4::ContentChecksum::NoChecksum)
                .level(0)
                .build(Vec::with_capacity(data.len() / 2 + 64))
                .map_err(|e| compress_error(codec, e))?;
            encoder.write_all(data).map_err(|e| compress_error(codec, e))?;
            let (out, result) = encoder.finish();
            result.map_err(|e| compress_error(codec, e))?;
            Ok(out)
        }
        ZSTD => zstd::bulk::compress(data, ZSTD_LEVEL).map_err(|e| compress_error(codec, e)),
        other => Err(RecordsError::UnknownCodec(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8 ^ (i / 1000) as u8).collect()
    }

    #[test]
    fn every_codec_round_trips() {
        for codec in [NONE, GZIP, SNAPPY, LZ4, ZSTD] {
            for len in [0, 1, 100, XERIAL_BLOCK_INPUT_BYTES, 3 * XERIAL_BLOCK_INPUT_BYTES + 17, 200_000] {
                let data = sample(len);
                let packed = compress(codec, &data).unwrap();
                assert_eq!(decompress(codec, &packed, len).unwrap(), data, "{} of {len} bytes", codec_name(codec));
                if len > 0 {
                    let refused = decompress(codec, &packed, len - 1);
                    assert_eq!(refused, Err(RecordsError::TooLarge { bytes_max: len - 1 }), "{}", codec_name(codec));
                }
            }
        }
        assert_eq!(compress(5, b"x"), Err(RecordsError::UnknownCodec(5)));
        assert_eq!(decompress(7, b"x", 10), Err(RecordsError::UnknownCodec(7)));
    }

    #[test]
    fn snappy_is_xerial_framed_in_32_kib_blocks() {
        let data = sample(XERIAL_BLOCK_INPUT_BYTES + 1);
        let packed = compress(SNAPPY, &data).unwrap();
        assert_eq!(&packed[..16], XERIAL_HEADER);
        let first = u32::from_be_bytes(packed[16..20].try_into().unwrap()) as usize;
        let block = &packed[20..20 + first];
        assert_eq!(snap::raw::decompress_len(block).unwrap(), XERIAL_BLOCK_INPUT_BYTES);
        let second = u32::from_be_bytes(packed[20 + first..24 + first].try_into().unwrap()) as usize;
        assert_eq!(packed.len(), 24 + first + second);
        // A raw block (no framing) is read too.
        let raw = snap::raw::Encoder::new().compress_vec(b"snappy").unwrap();
        assert_eq!(decompress(SNAPPY, &raw, 100).unwrap(), b"snappy");
        // A cut frame is an error, not a panic.
        assert!(decompress(SNAPPY, &packed[..packed.len() - 3], 1 << 20).is_err());
        assert!(decompress(SNAPPY, &packed[..18], 1 << 20).is_err());
    }

    #[test]
    fn lz4_frame_has_independent_64_kib_blocks_and_no_checksums() {
        let packed = compress(LZ4, &sample(1000)).unwrap();
        assert_eq!(&packed[..4], &0x184D2204u32.to_le_bytes(), "LZ4 frame magic");
        // FLG: version 01, block independence, no block checksum, no content size, no content checksum.
        assert_eq!(packed[4], 0b0110_0000);
        // BD: 64 KiB blocks.
        assert_eq!(packed[5], 4 << 4);
    }

    #[test]
    fn inflation_past_the_bound_is_refused_early() {
        let zeros = vec![0u8; 8 << 20];
        for codec in [GZIP, SNAPPY, LZ4, ZSTD] {
            let packed = compress(codec, &zeros).unwrap();
            assert!(packed.len() < zeros.len() / 10);
            assert_eq!(decompress(codec, &packed, 1 << 20), Err(RecordsError::TooLarge { bytes_max: 1 << 20 }));
        }
    }

    #[test]
    fn garbage_is_an_error() {
        for codec in [GZIP, SNAPPY, LZ4, ZSTD] {
            for garbage in
                [&b""[..], b"\x00", b"not compressed at all", b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01\xff"]
            {
                // Empty input may inflate to nothing for some codecs; it must not panic.
                let _ = decompress(codec, garbage, 1 << 20);
            }
            assert!(decompress(codec, b"not compressed at all", 1 << 20).is_err(), "{}", codec_name(codec));
        }
    }
}
