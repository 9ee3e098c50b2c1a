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
                    ReadPlan { file: s.file.clone(), position, end: s.synced_bytes }
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

    /// The largest timestamp in the log and the offset of the batch holding it.
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        let st = self.state.borrow();
        st.segments
            .iter()
            .filter(|s| s.max_timestamp >= 0 && s.synced_bytes > 0)
            .max_by_key(|s| s.max_timestamp)
            .map(|s| (s.max_timestamp, s.offset_of_max_timestamp))
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
