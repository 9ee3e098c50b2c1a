//! Coming back after a crash: the segments are reopened (the last one
//! rescanned from its recovery point, or from its start), an empty segment a
//! crash left past the end of the data is dropped, and while the log runs a
//! recovery point is written now and then so that the rescan stays short.
//! The batch-by-batch validity scan itself is `storage::recovery`.

use std::path::Path;

use super::Log;
use crate::segment::{RecoveryPoint, Segment};
use crate::{file, segment_file_stem, StorageError};
use sluice_core::config::TopicConfig;
use sluice_core::constants::LINE_FILE_BYTES_MAX;

/// The file holding the active segment's last recovery point.
const RECOVERY_POINT_FILE: &str = "recovery-point";

pub(super) fn parse_segment_base(path: &Path) -> Option<i64> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".log")?;
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit())).then(|| stem.parse().ok()).flatten()
}

/// Opens the segments in `dir` (creating the directory and a first segment
/// if there are none), recovering the last one when the broker did not stop
/// cleanly.
pub(super) async fn open_segments(dir: &Path, config: &TopicConfig, clean: bool) -> Result<Vec<Segment>, StorageError> {
    std::fs::create_dir_all(dir).map_err(|e| StorageError::io(&format!("create {}", dir.display()), e))?;
    crate::cleaner::swap::recover(dir, config.index_interval_bytes).await?;
    let mut bases: Vec<i64> = std::fs::read_dir(dir)
        .map_err(|e| StorageError::io(&format!("list {}", dir.display()), e))?
        .filter_map(|entry| entry.ok().and_then(|e| parse_segment_base(&e.path())))
        .collect();
    bases.sort_unstable();
    let mut segments = Vec::with_capacity(bases.len().max(1));
    let recovery = read_recovery_point(dir);
    for (i, base) in bases.iter().enumerate() {
        let path = dir.join(format!("{}.log", segment_file_stem(*base)));
        // Only the last segment can have an unsynced tail after a crash,
        // or the one before it when the last is still empty (below). A
        // segment opened as clean still has any bytes after its last valid
        // batch cut, so a short tail there is handled either way.
        let segment_clean = clean || i + 1 < bases.len();
        let segment = Segment::open(&path, *base, segment_clean, recovery, config.index_interval_bytes).await?;
        segments.push(segment);
    }
    // A roll creates the next segment before the previous one's last
    // writes land (the writer seals a segment before writing the next).
    // A crash in between leaves the previous segment ending below the new
    // one's base, and the new one empty: drop it, so offsets stay dense
    // and the previous segment is active again.
    while let [.., previous, last] = &segments[..] {
        if last.size_bytes > 0 || previous.next_offset >= last.base_offset() {
            break;
        }
        tracing::warn!(
            dir = %dir.display(), end = previous.next_offset, next_base = last.base_offset(),
            "empty segment past the end of the log after a crash; removing it"
        );
        let dropped = segments.pop().expect("two segments");
        // Removed before the log runs: a later roll creates this base again.
        for path in dropped.file.paths() {
            file::remove_if_exists(&path).await?;
        }
        // A recovery point names a segment by its base; a later segment
        // could be created at the same base and must not inherit it.
        if recovery.is_some_and(|r| r.segment_base == dropped.base_offset()) {
            remove_recovery_point(dir).await?;
        }
        file::sync_dir(dir).await?;
    }
    if segments.is_empty() {
        segments.push(Segment::create(dir, 0).await?);
        file::sync_dir(dir).await?;
    }
    let closed = segments.len() - 1;
    for segment in &mut segments[..closed] {
        segment.sealed = true;
    }
    Ok(segments)
}

/// The recovery point in `dir`; `None` if there is none or it is damaged
/// (then the last segment is scanned whole after a crash).
fn read_recovery_point(dir: &Path) -> Option<RecoveryPoint> {
    match file::read_checked(&dir.join(RECOVERY_POINT_FILE), LINE_FILE_BYTES_MAX) {
        Ok(body) => RecoveryPoint::decode(&body?),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "recovery point ignored");
            None
        }
    }
}

/// Removes the recovery point: the indexes written at a clean close, or a
/// dropped segment, make it stale.
pub(super) async fn remove_recovery_point(dir: &Path) -> Result<(), StorageError> {
    file::remove_if_exists(&dir.join(RECOVERY_POINT_FILE)).await
}

impl Log {
    /// Writes a recovery point for the active segment (its indexes up to the
    /// synced position, then where that is) once enough was synced since the
    /// last one, so that recovery after a crash re-reads only what follows.
    pub async fn maybe_checkpoint(&self, min_new_bytes: u64) -> Result<(), StorageError> {
        let (point, index, time_index, file) = {
            let st = self.state.borrow();
            let active = st.segments.last().expect("a log always has a segment");
            if active.corrupt_at.is_some() || active.synced_bytes < st.checkpointed_bytes + min_new_bytes.max(1) {
                return Ok(());
            }
            // Synced bytes end at the synced offset's batch boundary.
            let point = RecoveryPoint {
                segment_base: active.base_offset(),
                position: active.synced_bytes,
                next_offset: st.synced_offset,
                max_timestamp: active.max_timestamp,
                offset_of_max_timestamp: active.offset_of_max_timestamp,
            };
            let relative = (st.synced_offset - active.base_offset()).clamp(0, u32::MAX as i64) as u32;
            (
                point,
                active.index.prefix_bytes(active.synced_bytes).to_vec(),
                active.time_index.prefix_bytes(relative).to_vec(),
                active.file.clone(),
            )
        };
        if point.next_offset < point.segment_base {
            return Ok(());
        }
        file::write_atomically(&file.index_path(), &index).await?;
        file::write_atomically(&file.time_index_path(), &time_index).await?;
        file::write_checked(&self.dir.join(RECOVERY_POINT_FILE), &point.encode()).await?;
        self.state.borrow_mut().checkpointed_bytes = point.position;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{append, check_reads, open, run, temp_dir};
    use super::*;
    use crate::log::{AckLevel, AppendError};
    use sluice_protocol::batch::{test_support::batch, validate_chunk};

    #[test]
    fn torn_tail_is_cut_at_the_last_valid_batch() {
        run(|| async {
            let dir = temp_dir("torn");
            let log = open(&dir, TopicConfig::default(), false).await;
            for i in 0..5 {
                append(&log, 2, i).await;
            }
            log.close().await.unwrap();
            let path = dir.join("00000000000000000000.log");
            let good_len = std::fs::metadata(&path).unwrap().len();
            // Half a batch after the last whole one, as a crash mid-write leaves it.
            let mut torn = batch(99, 4);
            torn.truncate(torn.len() / 2);
            let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
            std::io::Write::write_all(&mut f, &torn).unwrap();
            drop(f);
            let log = open(&dir, TopicConfig::default(), false).await;
            assert_eq!(log.log_end_offset(), 10);
            assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len);
            assert_eq!(append(&log, 1, 7).await.base_offset, 10);
            check_reads(&log, 11).await;
            log.close().await.unwrap();
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }

    /// A roll creates the next segment before the previous one's last writes
    /// land: a crash in between leaves that segment short and an empty one
    /// starting past its end. Recovery must not leave the gap.
    #[test]
    fn a_crash_between_a_roll_and_the_previous_segments_last_write_leaves_no_gap() {
        run(|| async {
            let dir = temp_dir("roll-crash");
            let log = open(&dir, TopicConfig::default(), false).await;
            for i in 0..5 {
                append(&log, 2, i).await;
            }
            log.close().await.unwrap();
            let path = dir.join("00000000000000000000.log");
            let len = std::fs::metadata(&path).unwrap().len();
            // The last batch (offsets 8-9) never reached the disk, but the
            // next segment (base 10) was created.
            let batch_len = batch(4, 2).len() as u64;
            std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len - batch_len).unwrap();
            for name in ["00000000000000000000.index", "00000000000000000000.timeindex"] {
                let _ = std::fs::remove_file(dir.join(name));
            }
            std::fs::File::create(dir.join("00000000000000000010.log")).unwrap();
            let log = open(&dir, TopicConfig::default(), false).await;
            assert_eq!(log.log_end_offset(), 8, "the log ends where the data ends");
            assert!(!dir.join("00000000000000000010.log").exists(), "the empty segment past the gap is gone");
            assert_eq!(append(&log, 3, 7).await.base_offset, 8);
            check_reads(&log, 11).await;
            log.close().await.unwrap();
            let log = open(&dir, TopicConfig::default(), true).await;
            assert_eq!(log.log_end_offset(), 11);
            check_reads(&log, 11).await;
            log.close().await.unwrap();
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }

    fn flip_byte(path: &Path, at: u64) {
        use std::io::{Read, Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
        let mut b = [0u8; 1];
        f.seek(SeekFrom::Start(at)).unwrap();
        f.read_exact(&mut b).unwrap();
        f.seek(SeekFrom::Start(at)).unwrap();
        f.write_all(&[b[0] ^ 0xff]).unwrap();
    }

    #[test]
    fn mid_log_corruption_is_reported_not_truncated() {
        run(|| async {
            let dir = temp_dir("corrupt");
            let log = open(&dir, TopicConfig::default(), false).await;
            for i in 0..50 {
                append(&log, 2, i).await;
            }
            log.close().await.unwrap();
            let path = dir.join("00000000000000000000.log");
            let len = std::fs::metadata(&path).unwrap().len();
            // Batch 25 of 50 (offsets 50 and 51): flip a byte of its records.
            let batch_len = len / 50;
            flip_byte(&path, 25 * batch_len + 70);
            let log = open(&dir, TopicConfig::default(), false).await;
            assert_eq!(std::fs::metadata(&path).unwrap().len(), len, "valid data after the bad batch is kept");
            check_reads(&log, 50).await;
            assert!(matches!(log.read(50, 1 << 20, false).await, Err(StorageError::Corrupt(_))));
            assert!(matches!(
                log.read(70, 1 << 20, false).await,
                Err(StorageError::Corrupt(_)) | Err(StorageError::OffsetOutOfRange { .. })
            ));
            let chunk = batch(1, 1);
            let summaries = validate_chunk(&chunk, 1 << 20).unwrap();
            assert!(matches!(
                log.append(&bytes::Bytes::copy_from_slice(&chunk), &summaries, AckLevel::Synced).await,
                Err(AppendError::Storage(StorageError::Failed(_)))
            ));
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }

    fn small_config_large_segments() -> TopicConfig {
        TopicConfig { index_interval_bytes: 256, ..TopicConfig::default() }
    }

    /// Appends 300 batches, writes a recovery point, appends 100 more and
    /// "crashes" (no close); the caller then damages a batch before the point.
    async fn crash_after_a_recovery_point(dir: &Path) -> std::rc::Rc<Log> {
        let log = open(dir, small_config_large_segments(), false).await;
        for i in 0..300 {
            append(&log, 2, i).await;
        }
        log.maybe_checkpoint(1).await.unwrap();
        for i in 300..400 {
            append(&log, 2, i).await;
        }
        log
    }

    fn damage_batch_10(dir: &Path) {
        let path = dir.join("00000000000000000000.log");
        let batch_len = std::fs::metadata(&path).unwrap().len() / 400;
        flip_byte(&path, 10 * batch_len + 70);
    }

    #[test]
    fn recovery_starts_at_the_recovery_point() {
        run(|| async {
            let dir = temp_dir("recovery-point");
            let log = crash_after_a_recovery_point(&dir).await;
            // A scan from the recovery point does not read the damage again.
            damage_batch_10(&dir);
            let reopened = open(&dir, small_config_large_segments(), false).await;
            assert_eq!(reopened.log_end_offset(), 800);
            assert!(!reopened.read(700, 1 << 20, false).await.unwrap().chunks.is_empty());
            drop(log);
            reopened.close().await.unwrap();
            // Without a recovery point the whole segment is scanned and the damage is found.
            let rescanned = open(&dir, small_config_large_segments(), false).await;
            assert!(matches!(rescanned.read(60, 1 << 20, false).await, Err(StorageError::Corrupt(_))));
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }

    /// A `recovery-point` written before checked files had a trailer line
    /// (`<five numbers> <crc>` on one line) still starts the scan.
    #[test]
    fn a_recovery_point_of_the_earlier_form_is_used() {
        run(|| async {
            let dir = temp_dir("recovery-point-earlier");
            let log = crash_after_a_recovery_point(&dir).await;
            let body = read_checked_text(&dir);
            let fields = body.trim();
            let earlier = format!("{fields} {:08x}\n", crc32fast::hash(fields.as_bytes()));
            std::fs::write(dir.join(RECOVERY_POINT_FILE), earlier).unwrap();
            damage_batch_10(&dir);
            let reopened = open(&dir, small_config_large_segments(), false).await;
            assert_eq!(reopened.log_end_offset(), 800);
            assert!(!reopened.read(60, 1 << 20, false).await.unwrap().chunks.is_empty(), "scan began past the damage");
            drop(log);
            reopened.close().await.unwrap();
            assert!(!dir.join(RECOVERY_POINT_FILE).exists(), "a clean close removes the recovery point");
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }

    fn read_checked_text(dir: &Path) -> String {
        let body = file::read_checked(&dir.join(RECOVERY_POINT_FILE), LINE_FILE_BYTES_MAX).unwrap().unwrap();
        let text = String::from_utf8(body).unwrap();
        assert!(RecoveryPoint::decode(text.as_bytes()).is_some(), "{text:?}");
        text
    }
}
