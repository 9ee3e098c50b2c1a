//! Small files written whole and made durable, and the one checksummed format
//! of the broker's small state files.
//!
//! A write goes to `<name>.tmp`, is fdatasync'd, renamed over the target, and
//! the directory is fsynced: a crash leaves the old file or the new one, never
//! a torn one. Every step is asynchronous (io_uring, or glommio's blocking
//! thread for rename, unlink and truncate), so none blocks the shard's thread.
//! Two writes of the same file must not overlap (they share the temporary name).
//!
//! Checked files (the catalog, `producer_ids`, producer snapshots,
//! `recovery-point`, `log-start-offset`) are a body of text lines followed by
//! one trailer line, `crc <8 hex digits>\n`, the CRC-32 (IEEE) of the body.
//! The catalog and the producer snapshots were written this way before, byte
//! for byte. The one-line files used to carry the checksum at the end of their
//! only line, `<body> <8 hex digits>\n`; [`unseal`] still reads that form, and
//! the two cannot be confused: a file in the current form whose body is one
//! line has two lines.
//!
//! The reads here are plain blocking reads, for opening partitions and for
//! start-up, never for the append or write path.

use std::io::Read;
use std::path::{Path, PathBuf};

use glommio::io::{DmaFile, OpenOptions};
use glommio::GlommioError;

use super::StorageError;
use sluice_core::constants::DMA_ALIGNMENT_BYTES;

/// Bytes of the trailer line: `crc ` + 8 hex digits + `\n`.
const TRAILER_BYTES: usize = 13;

fn align_up(v: u64) -> u64 {
    v.div_ceil(DMA_ALIGNMENT_BYTES) * DMA_ALIGNMENT_BYTES
}

/// `<dir>/<name>.tmp` for `<dir>/<name>`: one temporary name per target file.
fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Writes `bytes` as the whole content of `path`, atomically and durably.
pub async fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let tmp = temporary_path(path);
    let err = |what: &str, e: GlommioError<()>| StorageError::io(&format!("{what} {}", tmp.display()), e);
    let file: DmaFile = OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .truncate(true)
        .dma_open(&tmp)
        .await
        .map_err(|e| err("create", e))?;
    if !bytes.is_empty() {
        let mut buf = file.alloc_dma_buffer(align_up(bytes.len() as u64) as usize);
        buf.as_bytes_mut()[..bytes.len()].copy_from_slice(bytes);
        buf.as_bytes_mut()[bytes.len()..].fill(0);
        file.write_at(buf, 0).await.map_err(|e| err("write", e))?;
    }
    file.truncate(bytes.len() as u64).await.map_err(|e| err("truncate", e))?;
    file.fdatasync().await.map_err(|e| err("fdatasync", e))?;
    file.close().await.map_err(|e| err("close", e))?;
    glommio::io::rename(&tmp, path).await.map_err(|e| err("rename", e))?;
    sync_dir(path.parent().unwrap_or(Path::new("."))).await
}

/// fsyncs a directory so that entries created or renamed in it survive a crash.
pub async fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    let d = glommio::io::Directory::open(dir)
        .await
        .map_err(|e| StorageError::io(&format!("open dir {}", dir.display()), e))?;
    d.sync().await.map_err(|e| StorageError::io(&format!("fsync dir {}", dir.display()), e))?;
    d.close().await.map_err(|e| StorageError::io("close dir", e))
}

/// Reads a whole small file, refusing files larger than `bytes_max`.
pub fn read_bounded(path: &Path, bytes_max: u64) -> std::io::Result<Option<Vec<u8>>> {
    let file = match std::fs::File::open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        other => other?,
    };
    let mut bytes = Vec::new();
    file.take(bytes_max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > bytes_max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is more than {bytes_max} bytes", path.display()),
        ));
    }
    Ok(Some(bytes))
}

/// A checked file's bytes: `body` and its checksum trailer line. The body is
/// whole text lines (empty, or ending with a newline).
pub fn seal(body: &[u8]) -> Vec<u8> {
    assert!(body.is_empty() || body.ends_with(b"\n"), "a checked file's body is whole lines");
    let mut bytes = Vec::with_capacity(body.len() + TRAILER_BYTES);
    bytes.extend_from_slice(body);
    bytes.extend_from_slice(format!("crc {:08x}\n", crc32fast::hash(body)).as_bytes());
    bytes
}

/// The body of a checked file, once its checksum matches: the bytes before the
/// trailer line, or, for a one-line file of the earlier form, the line before
/// its last space.
pub fn unseal(bytes: &[u8]) -> Result<&[u8], &'static str> {
    let (body, stored) = split_trailer(bytes).or_else(|| split_earlier(bytes)).ok_or("no checksum")?;
    if crc32fast::hash(body) != stored {
        return Err("checksum mismatch");
    }
    Ok(body)
}

/// `<body>crc <8 hex>\n`, the body empty or ending with a newline.
fn split_trailer(bytes: &[u8]) -> Option<(&[u8], u32)> {
    let (body, trailer) = bytes.split_at(bytes.len().checked_sub(TRAILER_BYTES)?);
    let hex = trailer.strip_prefix(b"crc ")?.strip_suffix(b"\n")?;
    if !(body.is_empty() || body.ends_with(b"\n")) {
        return None;
    }
    Some((body, parse_hex(hex)?))
}

/// `<body> <8 hex>\n` on a single line: `producer_ids`, `recovery-point` and
/// `log-start-offset` as written before the trailer line.
fn split_earlier(bytes: &[u8]) -> Option<(&[u8], u32)> {
    let line = bytes.strip_suffix(b"\n")?;
    if line.contains(&b'\n') {
        return None;
    }
    let space = line.iter().rposition(|b| *b == b' ')?;
    Some((&line[..space], parse_hex(&line[space + 1..])?))
}

/// Eight lowercase hex digits, as written: another spelling is a damaged byte.
fn parse_hex(hex: &[u8]) -> Option<u32> {
    if hex.len() != 8 || !hex.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)) {
        return None;
    }
    u32::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
}

/// Writes `body` as a checked file (see [`seal`]), atomically and durably.
pub async fn write_checked(path: &Path, body: &[u8]) -> Result<(), StorageError> {
    write_atomically(path, &seal(body)).await
}

/// Reads a checked file of at most `bytes_max` bytes and returns its body;
/// `None` if there is no such file, `Corrupt` if it fails its checksum.
pub fn read_checked(path: &Path, bytes_max: u64) -> Result<Option<Vec<u8>>, StorageError> {
    let bytes = match read_bounded(path, bytes_max) {
        Ok(None) => return Ok(None),
        Ok(Some(bytes)) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => return Err(StorageError::Corrupt(e.to_string())),
        Err(e) => return Err(StorageError::io(&format!("read {}", path.display()), e)),
    };
    let body = unseal(&bytes).map_err(|why| StorageError::Corrupt(format!("{}: {why}", path.display())))?;
    debug_assert_eq!(body.as_ptr(), bytes.as_ptr(), "the body starts the file");
    let body_bytes = body.len();
    let mut bytes = bytes;
    bytes.truncate(body_bytes);
    Ok(Some(bytes))
}

fn is_not_found(e: &GlommioError<()>) -> bool {
    match e {
        GlommioError::IoError(e) | GlommioError::EnhancedIoError { source: e, .. } => {
            e.kind() == std::io::ErrorKind::NotFound
        }
        _ => false,
    }
}

/// Removes a file through glommio's blocking thread; a missing file is not an error.
pub async fn remove_if_exists(path: &Path) -> Result<(), StorageError> {
    match glommio::io::remove(path).await {
        Err(e) if !is_not_found(&e) => Err(StorageError::io(&format!("remove {}", path.display()), e)),
        _ => Ok(()),
    }
}

/// Removes a directory and everything in it on glommio's blocking thread,
/// so that the shard's thread goes on serving meanwhile.
pub async fn remove_dir_all(dir: &Path) -> Result<(), StorageError> {
    let owned = dir.to_path_buf();
    glommio::executor()
        .spawn_blocking(move || std::fs::remove_dir_all(owned))
        .await
        .map_err(|e| StorageError::io(&format!("remove {}", dir.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<F, Fut>(f: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        glommio::LocalExecutorBuilder::default().spawn(f).unwrap().join().unwrap();
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sluice-file-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The trailer as the catalog and producer snapshots wrote it before this module did.
    fn earlier_trailer_line(body: &str) -> String {
        format!("{body}crc {:08x}\n", crc32fast::hash(body.as_bytes()))
    }

    /// The one-line form of `producer_ids`, `recovery-point` and `log-start-offset` before.
    fn earlier_one_line(value: &str) -> String {
        format!("{value} {:08x}\n", crc32fast::hash(value.as_bytes()))
    }

    #[test]
    fn checked_files_round_trip() {
        run(|| async {
            let dir = temp_dir("round-trip");
            let path = dir.join("state");
            for body in ["", "1\n", "sluice-catalog 1\ntopic a 00000000-0000-0000-0000-000000000000 0\n"] {
                write_checked(&path, body.as_bytes()).await.unwrap();
                assert_eq!(read_checked(&path, 4096).unwrap().as_deref(), Some(body.as_bytes()));
                assert_eq!(std::fs::read(&path).unwrap(), seal(body.as_bytes()));
            }
            assert!(!temporary_path(&path).exists(), "the temporary file was renamed");
            assert_eq!(read_checked(&dir.join("missing"), 4096).unwrap(), None);
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }

    #[test]
    fn every_corrupted_byte_is_refused() {
        let sealed = seal(b"sluice-producers 2\n7 0 0:4:100:104 -1 1000 -1\n");
        for at in 0..sealed.len() {
            for flip in [0x01u8, 0x20, 0x80] {
                let mut bad = sealed.clone();
                bad[at] ^= flip;
                assert!(unseal(&bad).is_err(), "byte {at} xor {flip:#x} accepted");
            }
        }
        let one_line = earlier_one_line("0 4096 100 1234 96").into_bytes();
        for at in 0..one_line.len() {
            let mut bad = one_line.clone();
            bad[at] ^= 0x01;
            assert!(unseal(&bad).is_err(), "byte {at} of the one-line form accepted");
        }
    }

    #[test]
    fn every_truncation_is_refused() {
        for sealed in [seal(b"6000\n"), seal(b"a\nb\n"), earlier_one_line("6000").into_bytes()] {
            for len in 0..sealed.len() {
                assert!(unseal(&sealed[..len]).is_err(), "{len} of {} bytes accepted", sealed.len());
            }
        }
        run(|| async {
            let dir = temp_dir("truncated");
            let path = dir.join("log-start-offset");
            write_checked(&path, b"6000\n").await.unwrap();
            let len = std::fs::metadata(&path).unwrap().len();
            std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 1).unwrap();
            assert!(matches!(read_checked(&path, 4096), Err(StorageError::Corrupt(_))));
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }

    #[test]
    fn a_file_larger_than_its_bound_is_refused() {
        let dir = temp_dir("bound");
        let path = dir.join("big");
        std::fs::write(&path, seal(&b"x\n".repeat(100))).unwrap();
        assert!(matches!(read_checked(&path, 100), Err(StorageError::Corrupt(_))));
        assert!(read_checked(&path, 4096).unwrap().is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The catalog and producer snapshots were already written with the
    /// trailer line: the new files are the same bytes.
    #[test]
    fn the_trailer_line_is_the_catalogs_and_snapshots_earlier_format() {
        for body in
            ["sluice-catalog 1\ntopic orders 6f1c1a52-1d0e-4b8e-9e51-2f4b8f0f7a10 0,1\n", "sluice-producers 2\n"]
        {
            assert_eq!(seal(body.as_bytes()), earlier_trailer_line(body).into_bytes());
            assert_eq!(unseal(earlier_trailer_line(body).as_bytes()).unwrap(), body.as_bytes());
        }
    }

    /// `producer_ids`, `log-start-offset` and `recovery-point` files written
    /// before the trailer line still read.
    #[test]
    fn one_line_files_of_the_earlier_form_still_read() {
        for value in ["2000", "6000", "0 4096 100 1234 96", "-1"] {
            let earlier = earlier_one_line(value);
            assert_eq!(unseal(earlier.as_bytes()).unwrap(), value.as_bytes());
        }
        assert!(unseal(b"2000 00000000\n").is_err());
        // The earlier form is one line only: a second line means the current form.
        let two_lines = format!("x\n{}", earlier_one_line("2000"));
        assert!(unseal(two_lines.as_bytes()).is_err());
    }

    #[test]
    fn removals_are_asynchronous_and_idempotent() {
        run(|| async {
            let dir = temp_dir("remove");
            std::fs::create_dir_all(dir.join("partition-0")).unwrap();
            std::fs::write(dir.join("partition-0/00000000000000000000.log"), b"x").unwrap();
            std::fs::write(dir.join("file"), b"x").unwrap();
            remove_if_exists(&dir.join("file")).await.unwrap();
            remove_if_exists(&dir.join("file")).await.unwrap();
            assert!(!dir.join("file").exists());
            remove_dir_all(&dir.join("partition-0")).await.unwrap();
            assert!(!dir.join("partition-0").exists());
            remove_dir_all(&dir).await.unwrap();
        });
    }
}
