//! Retention and DeleteRecords. The log start offset only moves forward; when
//! a client moves it (DeleteRecords) it is made durable in `log-start-offset`
//! before the answer. Closed segments wholly below it, older than
//! `retention.ms` or beyond `retention.bytes` leave the log oldest first, and
//! their files are removed once the log no longer refers to them.

use std::path::Path;

use super::Log;
use crate::storage::StorageError;

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
                if !st.config.cleanup_policy.split(',').any(|p| p.trim() == "delete") || st.segments.len() < 2 {
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
                st.segments.len() >= 2 && st.segments[0].next_offset <= st.log_start_offset
            };
            if !below {
                return;
            }
            self.delete_oldest_segment();
        }
    }

    /// Drops the oldest segment from the log, then removes its files.
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
        segment.remove_files();
    }
}

pub(super) fn read_log_start(dir: &Path) -> Option<i64> {
    let text = std::fs::read_to_string(dir.join("log-start-offset")).ok()?;
    let (value, crc) = text.trim().split_once(' ')?;
    (crc32fast::hash(value.as_bytes()) == u32::from_str_radix(crc, 16).ok()?).then(|| value.parse().ok())?
}

async fn write_log_start(dir: &Path, offset: i64) -> Result<(), StorageError> {
    let value = offset.to_string();
    let text = format!("{value} {:08x}\n", crc32fast::hash(value.as_bytes()));
    crate::storage::file::write_atomically(&dir.join("log-start-offset"), text.as_bytes()).await
}
