//! Log compaction, as Kafka's log cleaner does it, run by each shard for the
//! partitions it owns (in a low-priority task queue, so produce and fetch
//! come first).
//!
//! - [`Cleaner`]: the shard's cleaner: picks the dirtiest compacted log whose
//!   pass is due and cleans it (`Log::clean`, in `log/compaction.rs`).
//! - [`offset_map`]: the key map of a pass, fixed memory, collision-safe.
//! - [`filter`]: Kafka's rules for what a clean keeps, batch by batch.
//! - [`throttle`]: the cleaner's I/O rate limit.
//! - [`swap`]: the crash-safe swap of a cleaned segment, and its recovery.

pub mod filter;
pub mod offset_map;
pub mod swap;
pub mod throttle;

use std::rc::Rc;

use crate::log::{CleanReport, Log};
use crate::StorageError;
use offset_map::OffsetMap;
use throttle::Throttle;

/// How a shard's cleaner runs (from the broker's `log.cleaner.*` settings).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CleanerSettings {
    /// Memory of this shard's key map.
    pub key_map_bytes: usize,
    /// Share of the key map's slots that may be filled.
    pub load_factor: f64,
    /// Cleaner reads and writes per second on this shard.
    pub io_bytes_per_second_max: f64,
    /// Bytes of one cleaner read or write.
    pub io_bytes: usize,
}

/// One shard's cleaner. The key map is allocated at the first pass.
pub struct Cleaner {
    settings: CleanerSettings,
    map: Option<OffsetMap>,
    throttle: Throttle,
}

impl Cleaner {
    pub fn new(settings: CleanerSettings) -> Cleaner {
        Cleaner { settings, map: None, throttle: Throttle::new(settings.io_bytes_per_second_max) }
    }

    /// The settings the cleaner runs with.
    pub fn settings(&self) -> CleanerSettings {
        self.settings
    }

    /// New settings (dynamic broker configs), taken between passes: the
    /// throttle starts over at the new rate, and the key map is dropped so
    /// that the next pass allocates it at the new size.
    pub fn reconfigure(&mut self, settings: CleanerSettings) {
        if settings.key_map_bytes != self.settings.key_map_bytes || settings.load_factor != self.settings.load_factor {
            self.map = None;
        }
        self.settings = settings;
        self.throttle = Throttle::new(settings.io_bytes_per_second_max);
    }

    /// The log among `logs` most in need of a clean whose pass is due.
    pub fn dirtiest(logs: &[Rc<Log>], now_ms: i64) -> Option<Rc<Log>> {
        logs.iter()
            .filter_map(|log| log.cleanable(now_ms).filter(|c| c.due).map(|c| (c.dirty_ratio, log)))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, log)| log.clone())
    }

    /// Cleans `log` once.
    pub async fn clean(&mut self, log: &Log, now_ms: i64) -> Result<CleanReport, StorageError> {
        let settings = self.settings;
        let map = self.map.get_or_insert_with(|| OffsetMap::with_bytes(settings.key_map_bytes, settings.load_factor));
        log.clean(map, &mut self.throttle, settings.io_bytes, now_ms).await
    }
}
