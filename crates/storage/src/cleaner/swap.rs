//! Putting a cleaned segment in place of the segments it was made from, so
//! that a crash at any moment leaves either the old segments or the new one:
//!
//! 1. The cleaned bytes are written to `<base>.cleaned` (O_DIRECT), synced.
//! 2. It is renamed `<base>.swap` and the directory synced: from here on the
//!    clean is decided, and recovery finishes it.
//! 3. The old segments' index files are removed and their `.log` files
//!    renamed `.log.deleted`, and the directory synced.
//! 4. The new indexes are written, then `<base>.swap` is renamed over
//!    `<base>.log` and the directory synced.
//!
//! The log's janitor then closes each old segment and removes its
//! `.log.deleted` off the shard's thread (freeing a large file's blocks is
//! slow). On open, [`recover`] removes `.cleaned` and `.log.deleted` files
//! and finishes every `.swap`: segments within its offsets are removed and it
//! becomes `<base>.log`, whose indexes are then rebuilt by a scan.

use std::path::{Path, PathBuf};

use crate::segment::Segment;
use crate::{file, segment_file_stem, StorageError};

pub fn cleaned_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{}.cleaned", segment_file_stem(base_offset)))
}
pub fn swap_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{}.swap", segment_file_stem(base_offset)))
}
/// Where a replaced segment's `.log` goes until the log's janitor removes it.
pub fn retired_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{}.log.deleted", segment_file_stem(base_offset)))
}
pub fn log_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{}.log", segment_file_stem(base_offset)))
}

/// The `.log`, `.index` and `.timeindex` paths of the segment at `base_offset`.
pub fn segment_paths(dir: &Path, base_offset: i64) -> [PathBuf; 3] {
    let log = log_path(dir, base_offset);
    [log.with_extension("index"), log.with_extension("timeindex"), log]
}

/// `<20 digits>.<extension>` → the base offset.
fn base_of(path: &Path, extension: &str) -> Option<i64> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(extension)?.strip_suffix('.')?;
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit())).then(|| stem.parse().ok()).flatten()
}

fn list(dir: &Path, extension: &str) -> Result<Vec<i64>, StorageError> {
    let mut bases: Vec<i64> = std::fs::read_dir(dir)
        .map_err(|e| StorageError::io(&format!("list {}", dir.display()), e))?
        .filter_map(|entry| entry.ok().and_then(|e| base_of(&e.path(), extension)))
        .collect();
    bases.sort_unstable();
    Ok(bases)
}

/// Removes cut-short cleans and finishes decided ones, before the segments are opened.
pub async fn recover(dir: &Path, index_interval_bytes: u64) -> Result<(), StorageError> {
    if !dir.exists() {
        return Ok(());
    }
    let mut changed = false;
    for base in list(dir, "log.deleted")? {
        file::remove_if_exists(&retired_path(dir, base)).await?;
        changed = true;
    }
    for base in list(dir, "cleaned")? {
        tracing::info!(dir = %dir.display(), base, "removing a clean cut short");
        file::remove_if_exists(&cleaned_path(dir, base)).await?;
        changed = true;
    }
    let swaps = list(dir, "swap")?;
    if !swaps.is_empty() {
        let logs = list(dir, "log")?;
        for base in swaps {
            let swap = swap_path(dir, base);
            // Its end offset, from a scan (it was synced whole before its rename).
            let scanned = Segment::open(&swap, base, false, None, index_interval_bytes).await?;
            let end = scanned.next_offset;
            drop(scanned);
            tracing::info!(dir = %dir.display(), base, end, "finishing a segment swap left by a crash");
            for old in logs.iter().filter(|b| **b >= base && **b < end.max(base + 1)) {
                for path in segment_paths(dir, *old) {
                    file::remove_if_exists(&path).await?;
                }
            }
            file::sync_dir(dir).await?;
            glommio::io::rename(&swap, &log_path(dir, base))
                .await
                .map_err(|e| StorageError::io(&format!("rename {}", swap.display()), e))?;
            changed = true;
        }
    }
    if changed {
        file::sync_dir(dir).await?;
    }
    Ok(())
}
