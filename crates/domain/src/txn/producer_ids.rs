//! Broker-unique producer ids, handed out by shard 0. Ids are reserved on
//! disk a block at a time (`__sluice/producer_ids` holds the first id not yet
//! reserved), so no id is ever handed out twice, across restarts and crashes.

use std::cell::Cell;
use std::path::{Path, PathBuf};

use sluice_core::constants::PRODUCER_ID_BLOCK_SIZE;
use sluice_storage::file::{read_bounded, unseal, write_checked};

pub struct ProducerIdAllocator {
    path: PathBuf,
    next: Cell<i64>,
    /// First id past the reserved block.
    reserved_end: Cell<i64>,
}

fn decode(bytes: &[u8]) -> Option<i64> {
    std::str::from_utf8(unseal(bytes).ok()?).ok()?.trim().parse().ok()
}

impl ProducerIdAllocator {
    pub fn load(meta_dir: &Path) -> Result<ProducerIdAllocator, String> {
        let path = meta_dir.join("producer_ids");
        let start = match read_bounded(&path, 4096).map_err(|e| format!("{}: {e}", path.display()))? {
            None => 0,
            Some(bytes) => decode(&bytes).ok_or_else(|| format!("{} is damaged", path.display()))?,
        };
        Ok(ProducerIdAllocator { path, next: Cell::new(start), reserved_end: Cell::new(start) })
    }

    /// The next producer id; reserves a new block on disk when the current one is used up.
    pub async fn allocate(&self) -> Result<i64, String> {
        if self.next.get() >= self.reserved_end.get() {
            let end = self.next.get() + PRODUCER_ID_BLOCK_SIZE;
            write_checked(&self.path, format!("{end}\n").as_bytes()).await.map_err(|e| e.to_string())?;
            self.reserved_end.set(end);
        }
        let id = self.next.get();
        self.next.set(id + 1);
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn decode_checks_the_crc() {
        let text = format!("2000 {:08x}\n", crc32fast::hash(b"2000"));
        assert_eq!(super::decode(text.as_bytes()), Some(2000));
        assert_eq!(super::decode(b"2000 00000000\n"), None);
        assert_eq!(super::decode(&sluice_storage::file::seal(b"3000\n")), Some(3000));
    }
}
