//! Retention and DeleteRecords. The log start offset only moves forward; when
//! a client moves it (DeleteRecords) it is made durable in `log-start-offset`
//! before the answer. Closed segments wholly below it, older than
//! `retention.ms` or beyond `retention.bytes` leave the log oldest first; the
//! janitor removes their files once the log no longer refers to them.

use std::path::Path;

use super::Log;
use crate::{file, StorageError};
use sluice_core::constants::LINE_FILE_BYTES_MAX;

/// The file holding the log start offset set by DeleteRecords.
const LOG_START_FILE: &str = "log-start-offset";

impl Log {
    /// Moves the log start offset to `offset` (-1: the high watermark), as
    /// DeleteRecords asks; it is made durable before the answer, and whole
    /// segments below it are deleted. Returns the new log start offset.
    pub async fn delete_records(&self, offset: i64) -> Result<i64, StorageError> {
        let (start, high_watermark) = {
            let st = self.state.borrow();
            (st.log_start_offset, st.high_watermark)
        };
        let target = if offset == -1 { high_watermark } else { offset };
        if target < 0 || target > high_watermark {
            return Err(StorageError::OffsetOutOfRange { offset, start, end: high_watermark });
        }
        if target <= start {
            return Ok(start);
        }
        write_log_start(&self.dir, target).await?;
        {
            let mut st = self.state.borrow_mut();
            st.log_start_offset = st.log_start_offset.max(target);
        }
        self.delete_segments_below_start();
        Ok(self.log_start_offset())
    }

    /// Deletes closed segments that retention no longer keeps, oldest first:
    /// older than `retention.ms` (by their largest timestamp), beyond
    /// `retention.bytes`, or wholly below the log start offset. The active
    /// segment is never deleted, nor anything from the middle of the log.
    pub fn enforce_retention(&self, now_ms: i64) -> usize {
        let mut deleted = 0;
        loop {
            let delete = {
                let st = self.state.borrow();
                if !st.config.deletes() || st.segments.len() < 2 || st.swapping {
                    break;
                }
                let oldest = &st.segments[0];
                if oldest.synced_bytes < oldest.size_bytes {
                    break;
                }
                let expired = st.config.retention_ms >= 0
                    && oldest.max_timestamp >= 0
                    && oldest.max_timestamp < now_ms - st.config.retention_ms;
                let total: u64 = st.segments.iter().map(|s| s.size_bytes).sum();
                let oversize =
                    st.config.retention_bytes >= 0 && total - oldest.size_bytes >= st.config.retention_bytes as u64;
                let below_start = oldest.next_offset <= st.log_start_offset;
                expired || oversize || below_start
            };
            if !delete {
                break;
            }
            self.delete_oldest_segment();
            deleted += 1;
        }
        deleted
    }

    fn delete_segments_below_start(&self) {
        loop {
            let below = {
                let st = self.state.borrow();
                st.segments.len() >= 2 && st.segments[0].next_offset <= st.log_start_offset && !st.swapping
            };
            if !below {
                return;
            }
            self.delete_oldest_segment();
        }
    }

    /// Drops the oldest segment from the log, then queues its files for removal.
    fn delete_oldest_segment(&self) {
        let mut st = self.state.borrow_mut();
        assert!(st.segments.len() >= 2, "the active segment is never deleted");
        let segment = st.segments.remove(0);
        let new_start = st.segments[0].base_offset();
        st.log_start_offset = st.log_start_offset.max(new_start);
        let start = st.log_start_offset;
        st.producers.drop_aborted_below(start);
        st.cache.drop_below(start);
        drop(st);
        tracing::info!(dir = %self.dir.display(), base = segment.base_offset(), "segment deleted by retention");
        self.janitor.remove_segment(segment.file);
    }
}

/// The log start offset in `dir`'s `log-start-offset`; `None` if there is
/// none, or it is damaged (then the first segment's base is the start).
/// Makes `offset` the log start offset of the log in `dir`, durably.
pub(super) async fn write_log_start(dir: &Path, offset: i64) -> Result<(), StorageError> {
    file::write_checked(&dir.join(LOG_START_FILE), format!("{offset}\n").as_bytes()).await
}

pub(super) fn read_log_start(dir: &Path) -> Option<i64> {
    match file::read_checked(&dir.join(LOG_START_FILE), LINE_FILE_BYTES_MAX) {
        Ok(body) => std::str::from_utf8(&body?).ok()?.trim().parse().ok(),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "log start offset ignored");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{append, check_reads, log_files, open, run, small_config, temp_dir};
    use super::*;

    #[test]
    fn retention_drops_the_oldest_segments_then_their_files() {
        run(|| async {
            let dir = temp_dir("retention");
            let config = sluice_core::config::TopicConfig { retention_bytes: 16 * 1024, ..small_config() };
            let log = open(&dir, config, false).await;
            for i in 0..400 {
                append(&log, 3, 1000 + i).await;
            }
            let before = log_files(&dir);
            assert!(before >= 4, "{before} segments");
            // The clock is 0: only retention.bytes applies.
            let deleted = log.enforce_retention(0);
            assert!(deleted >= 1 && deleted < before, "{deleted} of {before}");
            let start = log.log_start_offset();
            assert!(start > 0);
            assert_eq!(start, log.state.borrow().segments[0].base_offset());
            assert!(log.size_bytes() <= 16 * 1024 + 8192);
            // The log no longer refers to them; the janitor removes the files later.
            assert_eq!(log_files(&dir), before, "no removal on the caller's path");
            assert!(matches!(log.read(start - 1, 1 << 20, false).await, Err(StorageError::OffsetOutOfRange { .. })));
            log.janitor.drain().await;
            assert_eq!(log_files(&dir), before - deleted);
            assert_eq!(log.enforce_retention(0), 0, "the rest is within retention.bytes");
            log.close().await.unwrap();
            let log = open(&dir, small_config(), true).await;
            assert_eq!(log.log_start_offset(), start);
            for offset in start..1200 {
                assert!(!log.read(offset, 1, false).await.unwrap().chunks.is_empty(), "offset {offset}");
            }
            log.close().await.unwrap();
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }

    #[test]
    fn delete_records_moves_the_log_start_durably() {
        run(|| async {
            let dir = temp_dir("delete-records");
            let log = open(&dir, small_config(), false).await;
            for i in 0..200 {
                append(&log, 3, 1000 + i).await;
            }
            assert!(matches!(log.delete_records(601).await, Err(StorageError::OffsetOutOfRange { .. })));
            assert_eq!(log.delete_records(301).await.unwrap(), 301);
            assert_eq!(log.delete_records(100).await.unwrap(), 301, "the start never moves back");
            let first_base = log.state.borrow().segments[0].base_offset();
            assert!(first_base > 0 && first_base <= 301, "segments below the start are gone: {first_base}");
            assert!(matches!(log.read(300, 1 << 20, false).await, Err(StorageError::OffsetOutOfRange { .. })));
            // A crash (no close): the start offset was durable before the answer.
            log.janitor.drain().await;
            let reopened = open(&dir, small_config(), false).await;
            assert_eq!(reopened.log_start_offset(), 301);
            check_reads_from(&reopened, 301, 600).await;
            drop(log);
            reopened.close().await.unwrap();
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }

    async fn check_reads_from(log: &Log, start: i64, end: i64) {
        let first = log.read(start, 1, false).await.unwrap();
        let header = sluice_protocol::batch::BatchHeader::parse(&first.chunks[0]).unwrap();
        assert!(header.base_offset <= start && start <= header.last_offset());
        assert_eq!(log.log_end_offset(), end);
    }

    /// `log-start-offset` as written before checked files had a trailer line.
    #[test]
    fn a_log_start_offset_file_of_the_earlier_form_is_read() {
        run(|| async {
            let dir = temp_dir("log-start-earlier");
            let log = open(&dir, small_config(), false).await;
            for i in 0..20 {
                append(&log, 3, 1000 + i).await;
            }
            log.close().await.unwrap();
            let earlier = format!("42 {:08x}\n", crc32fast::hash(b"42"));
            std::fs::write(dir.join(LOG_START_FILE), earlier).unwrap();
            let log = open(&dir, small_config(), true).await;
            assert_eq!(log.log_start_offset(), 42);
            check_reads_from(&log, 42, 60).await;
            log.close().await.unwrap();
            // A damaged file is ignored, as before: the start is the first segment's base.
            std::fs::write(dir.join(LOG_START_FILE), b"42 00000000\n").unwrap();
            let log = open(&dir, small_config(), true).await;
            assert_eq!(log.log_start_offset(), 0);
            check_reads(&log, 60).await;
            log.close().await.unwrap();
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }
}
