//! Whole-file writes made durable: write to a temporary name, fdatasync,
//! rename over the target, fsync the directory. A crash leaves the old or the
//! new file, never a torn one.

use std::path::Path;

use glommio::io::{DmaFile, OpenOptions};

use super::StorageError;
use crate::constants::DMA_ALIGNMENT_BYTES;

fn align_up(v: u64) -> u64 {
    v.div_ceil(DMA_ALIGNMENT_BYTES) * DMA_ALIGNMENT_BYTES
}

/// Writes `bytes` as the whole content of `path`, atomically and durably.
pub async fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let tmp = path.with_extension("tmp");
    let err = |what: &str, e: glommio::GlommioError<()>| StorageError::io(&format!("{what} {}", tmp.display()), e);
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
    std::fs::rename(&tmp, path).map_err(|e| StorageError::io(&format!("rename {}", tmp.display()), e))?;
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
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
        Ok(m) if m.len() > bytes_max => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is {} bytes, more than {bytes_max}", path.display(), m.len()),
        )),
        Ok(_) => std::fs::read(path).map(Some),
    }
}
