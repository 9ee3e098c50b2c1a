//! Producer-state snapshots: `<20-digit offset>.snapshot` holds the producer
//! table as of that offset, written at each segment roll and at close. On
//! open the newest intact snapshot at or below the log end is loaded and the
//! batches after it are replayed. Only the newest
//! `PRODUCER_SNAPSHOTS_RETAINED` are kept; older ones go to the janitor, so
//! writing a snapshot never lists or unlinks files on the append path.

use std::path::{Path, PathBuf};

use super::Log;
use crate::producer_state::ProducerStateTable;
use crate::segment::Segment;
use crate::{file, segment_file_stem, StorageError};
use sluice_core::constants::{
    FETCH_READ_BYTES_PER_PARTITION_MAX, PRODUCER_SNAPSHOTS_RETAINED, PRODUCER_SNAPSHOT_BYTES_MAX,
};
use sluice_protocol::batch;

fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{}.snapshot", segment_file_stem(offset)))
}

/// Whether `path` names a producer snapshot.
pub(super) fn is_snapshot(path: &Path) -> bool {
    snapshot_offset(path).is_some()
}

fn snapshot_offset(path: &Path) -> Option<i64> {
    let stem = path.file_name()?.to_str()?.strip_suffix(".snapshot")?;
    (stem.len() == 20).then(|| stem.parse().ok()).flatten()
}

impl Log {
    /// Writes the producer state as of `offset` (its encoded body), then
    /// queues the snapshots older than the newest few for removal.
    pub(super) async fn write_snapshot(&self, offset: i64, body: &[u8]) -> Result<(), StorageError> {
        file::write_checked(&snapshot_path(&self.dir, offset), body).await?;
        let stale: Vec<PathBuf> = {
            let mut st = self.state.borrow_mut();
            let offsets = &mut st.snapshot_offsets;
            if let Err(at) = offsets.binary_search(&offset) {
                offsets.insert(at, offset);
            }
            let keep_from = offsets.len().saturating_sub(PRODUCER_SNAPSHOTS_RETAINED);
            offsets.drain(..keep_from).map(|o| snapshot_path(&self.dir, o)).collect()
        };
        if !stale.is_empty() {
            self.janitor.remove_files(stale);
        }
        Ok(())
    }
}

/// Rebuilds the producer table: the newest intact snapshot at or below the
/// log end, then every batch after it. Snapshots past the log end (the log
/// was cut after a crash) are removed. Returns the table and the offsets of
/// the snapshots left on disk, oldest first.
pub(super) async fn load_producers(
    dir: &Path,
    segments: &[Segment],
    log_end: i64,
) -> Result<(ProducerStateTable, Vec<i64>), StorageError> {
    let mut offsets: Vec<i64> = std::fs::read_dir(dir)
        .map_err(|e| StorageError::io("list snapshots", e))?
        .filter_map(|e| e.ok().and_then(|e| snapshot_offset(&e.path())))
        .collect();
    offsets.sort_unstable();
    for offset in offsets.iter().filter(|o| **o > log_end) {
        // Removed before the log runs: a later roll may write this name again.
        if let Err(e) = file::remove_if_exists(&snapshot_path(dir, *offset)).await {
            tracing::warn!(error = %e, "cannot remove a snapshot past the log end");
        }
    }
    offsets.retain(|o| *o <= log_end);
    let mut start = (ProducerStateTable::default(), segments.first().map(|s| s.base_offset()).unwrap_or(0));
    for offset in offsets.iter().rev() {
        let path = snapshot_path(dir, *offset);
        match file::read_checked(&path, PRODUCER_SNAPSHOT_BYTES_MAX) {
            Ok(body) => {
                if let Some(table) = body.and_then(|b| ProducerStateTable::decode(&b)) {
                    start = (table, *offset);
                    break;
                }
                tracing::warn!(path = %path.display(), "damaged producer snapshot ignored");
            }
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "damaged producer snapshot ignored"),
        }
    }
    let (mut table, from) = start;
    for segment in segments.iter().filter(|s| s.next_offset > from) {
        let relative = (from - segment.base_offset()).clamp(0, u32::MAX as i64) as u32;
        let mut position = segment.index.lookup(relative) as u64;
        while position < segment.synced_bytes {
            let want = ((segment.synced_bytes - position) as usize).min(FETCH_READ_BYTES_PER_PARTITION_MAX);
            let read =
                segment.file.file.read_at(position, want).await.map_err(|e| StorageError::io("read segment", e))?;
            let mut consumed = 0;
            for (at, header) in batch::headers(&read) {
                consumed = at + header.size_bytes;
                if header.last_offset() >= from {
                    table.replay(&header, &read[at..at + header.size_bytes]);
                }
            }
            if consumed == 0 {
                break;
            }
            position += consumed as u64;
        }
    }
    Ok((table, offsets))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{append, open, run, small_config, temp_dir};
    use super::*;

    fn snapshot_files(dir: &Path) -> Vec<i64> {
        let mut offsets: Vec<i64> =
            std::fs::read_dir(dir).unwrap().filter_map(|e| snapshot_offset(&e.unwrap().path())).collect();
        offsets.sort_unstable();
        offsets
    }

    #[test]
    fn only_the_newest_snapshots_are_kept() {
        run(|| async {
            let dir = temp_dir("snapshots");
            let log = open(&dir, small_config(), false).await;
            for i in 0..400 {
                append(&log, 3, 1000 + i).await;
            }
            log.janitor.drain().await;
            let kept = snapshot_files(&dir);
            assert_eq!(kept.len(), PRODUCER_SNAPSHOTS_RETAINED, "{kept:?}");
            assert_eq!(kept, log.state.borrow().snapshot_offsets);
            let last_base = log.state.borrow().segments.last().unwrap().base_offset();
            assert_eq!(kept.last(), Some(&last_base), "the newest is the last roll's");
            log.close().await.unwrap();
            let kept = snapshot_files(&dir);
            assert_eq!(kept.len(), PRODUCER_SNAPSHOTS_RETAINED);
            assert_eq!(kept.last(), Some(&1200), "close snapshots the log end");
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }

    /// A snapshot as written before the checked-file helper (the same bytes:
    /// body, then `crc <hex>`), and one past the log end, which is removed.
    #[test]
    fn snapshots_written_before_are_loaded() {
        run(|| async {
            let dir = temp_dir("snapshot-earlier");
            std::fs::create_dir_all(&dir).unwrap();
            let body = "sluice-producers 2\n7 3 0:4:0:4 -1 1000 -1\n";
            let earlier = format!("{body}crc {:08x}\n", crc32fast::hash(body.as_bytes()));
            std::fs::write(snapshot_path(&dir, 0), &earlier).unwrap();
            std::fs::write(snapshot_path(&dir, 100), &earlier).unwrap();
            let log = open(&dir, small_config(), true).await;
            let expected = crate::producer_state::ProducerInfo {
                producer_id: 7,
                epoch: 3,
                last_sequence: 4,
                last_timestamp: 1000,
                coordinator_epoch: -1,
                txn_first_offset: -1,
            };
            assert_eq!(log.producer_states(), vec![expected]);
            assert_eq!(snapshot_files(&dir), vec![0], "the snapshot past the log end is gone");
            log.close().await.unwrap();
            assert_eq!(std::fs::read(snapshot_path(&dir, 0)).unwrap(), earlier.as_bytes(), "same bytes as before");
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }
}
