//! Offsets by timestamp (ListOffsets): the first segment whose largest
//! timestamp reaches the target, its time index for where to start, then a
//! scan of whole batches from there.

use bytes::Bytes;

use super::read::ReadPlan;
use super::Log;
use crate::StorageError;
use sluice_core::constants::FETCH_READ_BYTES_PER_PARTITION_MAX;
use sluice_protocol::batch;

impl Log {
    /// `(timestamp, offset)` of the first record whose timestamp is at least
    /// `target`; `None` when every record is older.
    pub async fn offset_for_timestamp(&self, target: i64) -> Result<Option<(i64, i64)>, StorageError> {
        // Segments from the first whose largest timestamp reaches the target: a
        // cleaned batch keeps its largest timestamp when the record holding it
        // went, so the first candidate may hold no such record.
        let plans: Vec<ReadPlan> = {
            let st = self.state.borrow();
            let Some(first) = st.segments.iter().position(|s| s.max_timestamp >= target && s.synced_bytes > 0) else {
                return Ok(None);
            };
            st.segments[first..]
                .iter()
                .enumerate()
                .filter(|(_, s)| s.max_timestamp >= target && s.synced_bytes > 0)
                .map(|(i, s)| {
                    let position = if i == 0 { s.index.lookup(s.time_index.scan_start(target)) as u64 } else { 0 };
                    ReadPlan { file: s.file.clone(), segment_base: s.base_offset(), position, end: s.synced_bytes }
                })
                .collect()
        };
        for plan in plans {
            if let Some(found) = scan_for_timestamp(&plan, target).await? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// `(timestamp, offset)` of the first record holding the log's largest
    /// timestamp (ListOffsets' max timestamp): the record's own offset, as
    /// Kafka answers since 3.8 (KAFKA-16310), not its batch's base offset.
    pub async fn max_timestamp(&self) -> Result<Option<(i64, i64)>, StorageError> {
        let largest = {
            let st = self.state.borrow();
            st.segments
                .iter()
                .filter(|s| s.max_timestamp >= 0 && s.synced_bytes > 0)
                .map(|s| (s.max_timestamp, s.offset_of_max_timestamp))
                // The first segment reaching it, as Kafka takes.
                .fold(None, |best: Option<(i64, i64)>, s| if best.is_some_and(|b| b.0 >= s.0) { best } else { Some(s) })
        };
        let Some((timestamp, batch_offset)) = largest else {
            return Ok(None);
        };
        // No record is newer, so the first at or after it is the first at it;
        // a cleaned batch may have lost that record but kept the timestamp.
        Ok(Some(self.offset_for_timestamp(timestamp).await?.unwrap_or((timestamp, batch_offset))))
    }
}

/// `(timestamp, offset)` of the first record at or after `target` in a segment, from `plan.position`.
async fn scan_for_timestamp(plan: &ReadPlan, target: i64) -> Result<Option<(i64, i64)>, StorageError> {
    let mut position = plan.position;
    while position < plan.end {
        let want = ((plan.end - position) as usize).min(FETCH_READ_BYTES_PER_PARTITION_MAX);
        let read = plan.file.file.read_at(position, want).await.map_err(|e| StorageError::io("read segment", e))?;
        let mut last_end = 0;
        for (at, header) in batch::headers(&read) {
            last_end = at + header.size_bytes;
            if header.max_timestamp >= target && header.records_count > 0 {
                let batch_bytes = Bytes::copy_from_slice(&read[at..at + header.size_bytes]);
                let found = batch::first_record_at_or_after(batch_bytes, target).map_err(StorageError::Corrupt)?;
                if let Some((offset, timestamp)) = found {
                    return Ok(Some((timestamp, offset)));
                }
            }
        }
        if last_end == 0 {
            break;
        }
        position += last_end as u64;
    }
    Ok(None)
}
