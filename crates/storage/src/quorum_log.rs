//! The metadata quorum's durable log: what the Raft library asks to keep
//! before its messages go out, as opaque byte strings.
//!
//! `<dir>/log` is a sequence of frames `[u32 length][u32 crc32c][payload]`
//! (big-endian), each appended and fdatasync'd before `append` returns. The
//! reader of the frames gives them meaning (a Raft entry whose index is at or
//! below one already read replaces that suffix), so the file is only ever
//! appended to. A torn or corrupt tail (a crash mid-append) is cut at the
//! first frame that fails its length or checksum: nothing past it was
//! acknowledged, because `append` had not returned.
//!
//! `<dir>/hard-state` (term, vote, commit) is a checked file written whole
//! (`file::write_checked`).

use std::path::{Path, PathBuf};

use glommio::io::{BufferedFile, OpenOptions};

use crate::file::{read_bounded, read_checked, write_checked};
use crate::StorageError;
use sluice_core::constants::{QUORUM_FRAME_BYTES_MAX, QUORUM_LOG_BYTES_MAX, QUORUM_STATE_BYTES_MAX};

/// Bytes before each frame's payload: length and CRC-32C.
const FRAME_HEADER_BYTES: usize = 8;

/// The open log, positioned at its end.
pub struct QuorumLog {
    dir: PathBuf,
    file: BufferedFile,
    end: u64,
}

/// What a reopened log holds.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Every intact frame's payload, in the order appended.
    pub frames: Vec<Vec<u8>>,
    /// The last hard state stored, if any.
    pub hard_state: Option<Vec<u8>>,
    /// Bytes of torn or corrupt tail that were cut.
    pub cut_bytes: u64,
}

/// Splits `bytes` into intact frames; the second value is where they end.
pub fn parse_frames(bytes: &[u8]) -> (Vec<Vec<u8>>, usize) {
    let mut frames = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= FRAME_HEADER_BYTES {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_be_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
        if len > QUORUM_FRAME_BYTES_MAX || bytes.len() - at - FRAME_HEADER_BYTES < len {
            break;
        }
        let payload = &bytes[at + FRAME_HEADER_BYTES..at + FRAME_HEADER_BYTES + len];
        if crc32c::crc32c(payload) != crc {
            break;
        }
        frames.push(payload.to_vec());
        at += FRAME_HEADER_BYTES + len;
    }
    (frames, at)
}

/// One frame as stored.
pub fn encode_frame(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_be_bytes());
    out.extend_from_slice(payload);
}

/// Checked files hold text lines: the hard state is one line of hex.
fn to_hex_line(bytes: &[u8]) -> Vec<u8> {
    let mut line: Vec<u8> = bytes.iter().flat_map(|b| format!("{b:02x}").into_bytes()).collect();
    line.push(b'\n');
    line
}

fn from_hex_line(line: &[u8]) -> Option<Vec<u8>> {
    let hex = line.strip_suffix(b"\n")?;
    if hex.len() % 2 != 0 {
        return None;
    }
    hex.chunks(2).map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()).collect()
}

impl QuorumLog {
    /// Opens (or creates) the log in `dir`, cutting a torn tail.
    pub async fn open(dir: &Path) -> Result<(QuorumLog, Recovered), StorageError> {
        std::fs::create_dir_all(dir).map_err(|e| StorageError::io(&format!("create {}", dir.display()), e))?;
        let path = dir.join("log");
        let bytes = read_bounded(&path, QUORUM_LOG_BYTES_MAX)
            .map_err(|e| StorageError::io(&format!("read {}", path.display()), e))?
            .unwrap_or_default();
        let (frames, good) = parse_frames(&bytes);
        let cut_bytes = (bytes.len() - good) as u64;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .buffered_open(&path)
            .await
            .map_err(|e| StorageError::io(&format!("open {}", path.display()), e))?;
        if cut_bytes > 0 {
            tracing::warn!(path = %path.display(), cut_bytes, "quorum log: cutting a torn tail");
            file.truncate(good as u64)
                .await
                .map_err(|e| StorageError::io(&format!("truncate {}", path.display()), e))?;
            file.fdatasync().await.map_err(|e| StorageError::io(&format!("fdatasync {}", path.display()), e))?;
        }
        let hard_state = match read_checked(&dir.join("hard-state"), QUORUM_STATE_BYTES_MAX)? {
            None => None,
            Some(body) => Some(from_hex_line(&body).ok_or_else(|| {
                StorageError::Corrupt(format!("{}: not one line of hex", dir.join("hard-state").display()))
            })?),
        };
        let log = QuorumLog { dir: dir.to_path_buf(), file, end: good as u64 };
        Ok((log, Recovered { frames, hard_state, cut_bytes }))
    }

    /// Appends `payloads` as frames and makes them durable. A failure is
    /// final: the caller stops using the log.
    pub async fn append(&mut self, payloads: &[Vec<u8>]) -> Result<(), StorageError> {
        if payloads.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(payloads.iter().map(|p| p.len() + FRAME_HEADER_BYTES).sum());
        for payload in payloads {
            if payload.len() > QUORUM_FRAME_BYTES_MAX {
                return Err(StorageError::Failed(format!(
                    "quorum log: a frame of {} bytes is over {QUORUM_FRAME_BYTES_MAX}",
                    payload.len()
                )));
            }
            encode_frame(payload, &mut buf);
        }
        if self.end + buf.len() as u64 > QUORUM_LOG_BYTES_MAX {
            return Err(StorageError::Failed(format!("quorum log: full at {QUORUM_LOG_BYTES_MAX} bytes")));
        }
        let len = buf.len() as u64;
        let written = self.file.write_at(buf, self.end).await.map_err(|e| StorageError::io("quorum log: write", e))?;
        if written as u64 != len {
            return Err(StorageError::Failed(format!("quorum log: short write ({written} of {len} bytes)")));
        }
        self.file.fdatasync().await.map_err(|e| StorageError::io("quorum log: fdatasync", e))?;
        self.end += len;
        Ok(())
    }

    /// Stores the hard state whole and durably.
    pub async fn store_hard_state(&self, bytes: &[u8]) -> Result<(), StorageError> {
        write_checked(&self.dir.join("hard-state"), &to_hex_line(bytes)).await
    }

    /// Bytes in the log file.
    pub fn len_bytes(&self) -> u64 {
        self.end
    }
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
        let dir = std::env::temp_dir().join(format!("sluice-quorum-log-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn appended_frames_and_hard_state_read_back() {
        let dir = temp_dir("roundtrip");
        run(move || async move {
            let (mut log, recovered) = QuorumLog::open(&dir).await.unwrap();
            assert!(recovered.frames.is_empty() && recovered.hard_state.is_none());
            log.append(&[b"one".to_vec(), b"two".to_vec()]).await.unwrap();
            log.append(&[vec![7; 5000]]).await.unwrap();
            log.store_hard_state(&[0, 1, 0xfe, b'\n']).await.unwrap();
            drop(log);
            let (log, recovered) = QuorumLog::open(&dir).await.unwrap();
            assert_eq!(recovered.frames, vec![b"one".to_vec(), b"two".to_vec(), vec![7; 5000]]);
            assert_eq!(recovered.hard_state.as_deref(), Some(&[0, 1, 0xfe, b'\n'][..]));
            assert_eq!(recovered.cut_bytes, 0);
            assert_eq!(log.len_bytes(), 3 * 8 + 3 + 3 + 5000);
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }

    #[test]
    fn a_torn_tail_is_cut_and_appends_go_on_after_the_last_intact_frame() {
        let dir = temp_dir("torn");
        run(move || async move {
            let (mut log, _) = QuorumLog::open(&dir).await.unwrap();
            log.append(&[b"kept".to_vec(), b"torn".to_vec()]).await.unwrap();
            drop(log);
            let path = dir.join("log");
            let bytes = std::fs::read(&path).unwrap();
            std::fs::write(&path, &bytes[..bytes.len() - 2]).unwrap();
            let (mut log, recovered) = QuorumLog::open(&dir).await.unwrap();
            assert_eq!(recovered.frames, vec![b"kept".to_vec()]);
            assert_eq!(recovered.cut_bytes, 10);
            log.append(&[b"next".to_vec()]).await.unwrap();
            drop(log);
            let (_, recovered) = QuorumLog::open(&dir).await.unwrap();
            assert_eq!(recovered.frames, vec![b"kept".to_vec(), b"next".to_vec()]);
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }

    #[test]
    fn a_flipped_bit_ends_the_intact_frames() {
        let mut bytes = Vec::new();
        encode_frame(b"first", &mut bytes);
        let second = bytes.len();
        encode_frame(b"second", &mut bytes);
        encode_frame(b"third", &mut bytes);
        bytes[second + FRAME_HEADER_BYTES + 1] ^= 0x10;
        let (frames, end) = parse_frames(&bytes);
        assert_eq!(frames, vec![b"first".to_vec()]);
        assert_eq!(end, second);
    }

    #[test]
    fn a_length_over_the_limit_is_not_allocated() {
        let mut bytes = vec![0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
        bytes.extend_from_slice(&[0; 64]);
        let (frames, end) = parse_frames(&bytes);
        assert!(frames.is_empty());
        assert_eq!(end, 0);
    }
}
