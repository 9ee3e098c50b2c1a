//! The log cleaner's broker configs, under Kafka's names (`log.cleaner.*`),
//! read from the config file; all but `log.cleaner.enable` can also be
//! changed at runtime ([`super::dynamic`]), checked by the same code.
//!
//! Sluice runs one cleaner task per shard, each compacting the partitions its
//! shard owns; `log.cleaner.threads` is validated and reported (DescribeConfigs)
//! as Kafka does but does not change that count. The per-topic compaction
//! configs (`min.cleanable.dirty.ratio` and friends) are in [`super::topic`];
//! their broker defaults (`log.cleaner.min.cleanable.ratio`, ...) are topic
//! defaults like `log.retention.ms`.

use std::collections::{BTreeMap, BTreeSet};

use super::topic::{int, long, refused, ConfigDouble, ConfigKind};
use super::{invalid, ConfigError};
use crate::constants::{
    CLEANER_BACKOFF_MS_DEFAULT, CLEANER_DEDUPE_BUFFER_BYTES_DEFAULT, CLEANER_DEDUPE_BUFFER_BYTES_PER_THREAD_MIN,
    CLEANER_DEDUPE_BUFFER_LOAD_FACTOR_DEFAULT, CLEANER_IO_BUFFER_BYTES_DEFAULT,
    CLEANER_IO_BYTES_PER_SECOND_MAX_DEFAULT, CLEANER_THREADS_DEFAULT,
};

pub const ENABLE: &str = "log.cleaner.enable";
pub const THREADS: &str = "log.cleaner.threads";
pub const IO_MAX_BYTES_PER_SECOND: &str = "log.cleaner.io.max.bytes.per.second";
pub const DEDUPE_BUFFER_SIZE: &str = "log.cleaner.dedupe.buffer.size";
pub const IO_BUFFER_LOAD_FACTOR: &str = "log.cleaner.io.buffer.load.factor";
pub const IO_BUFFER_SIZE: &str = "log.cleaner.io.buffer.size";
pub const BACKOFF_MS: &str = "log.cleaner.backoff.ms";

/// Every cleaner key of the config file.
pub const KEYS: [&str; 7] =
    [ENABLE, THREADS, IO_MAX_BYTES_PER_SECOND, DEDUPE_BUFFER_SIZE, IO_BUFFER_LOAD_FACTOR, IO_BUFFER_SIZE, BACKOFF_MS];

/// The log cleaner's settings, validated; Kafka's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct CleanerConfig {
    /// `log.cleaner.enable`: whether the shards run their cleaners at all. Off,
    /// topics with `cleanup.policy=compact` are never compacted and grow.
    pub enable: bool,
    /// `log.cleaner.threads` (at least 1): validated and reported only; each
    /// shard runs one cleaner for its own partitions, whatever the value.
    pub threads: usize,
    /// `log.cleaner.io.max.bytes.per.second`: the bytes all cleaners together
    /// may read plus write per second, on average; `f64::MAX` (the default)
    /// or `f64::INFINITY`: unthrottled.
    pub io_max_bytes_per_second: f64,
    /// `log.cleaner.dedupe.buffer.size`: bytes of the key maps (key hash to
    /// latest offset) of all cleaners together; each shard's map gets
    /// [`CleanerConfig::dedupe_buffer_bytes_per_shard`].
    pub dedupe_buffer_size: u64,
    /// `log.cleaner.io.buffer.load.factor`: how full a key map may get before
    /// a cleaning pass stops adding segments to it, in (0, 1].
    pub io_buffer_load_factor: f64,
    /// `log.cleaner.io.buffer.size`: bytes of the read and write buffers of all
    /// cleaners together (Kafka gives each thread its share, half to read and
    /// half to write; buffers grow as a larger batch needs).
    pub io_buffer_size: usize,
    /// `log.cleaner.backoff.ms`: how long a shard's cleaner sleeps when none
    /// of its partitions is cleanable.
    pub backoff_ms: u64,
    /// The keys above that the config file set; DescribeConfigs reports them
    /// as static broker configs and the rest as defaults.
    pub configured: BTreeSet<&'static str>,
}

impl Default for CleanerConfig {
    fn default() -> Self {
        CleanerConfig {
            enable: true,
            threads: CLEANER_THREADS_DEFAULT,
            io_max_bytes_per_second: CLEANER_IO_BYTES_PER_SECOND_MAX_DEFAULT,
            dedupe_buffer_size: CLEANER_DEDUPE_BUFFER_BYTES_DEFAULT,
            io_buffer_load_factor: CLEANER_DEDUPE_BUFFER_LOAD_FACTOR_DEFAULT,
            io_buffer_size: CLEANER_IO_BUFFER_BYTES_DEFAULT,
            backoff_ms: CLEANER_BACKOFF_MS_DEFAULT,
            configured: BTreeSet::new(),
        }
    }
}

fn double(key: &str, text: &str) -> Result<f64, String> {
    ConfigDouble::parse(text).map(ConfigDouble::get).ok_or_else(|| refused(key, text, "Not a number of type DOUBLE"))
}

/// Kafka's refusal of `log.cleaner.threads` below 1.
pub const THREADS_AT_LEAST_ONE: &str = "Log cleaner threads should be at least 1";
/// Kafka's refusal of a key map under 1 MiB per cleaner thread.
pub const DEDUPE_PER_THREAD: &str = "log.cleaner.dedupe.buffer.size must be at least 1MB per cleaner thread.";

impl CleanerConfig {
    /// The cleaner keys of a config file, validated as Kafka does; absent keys keep their defaults.
    pub fn from_file(file: &BTreeMap<String, String>) -> Result<CleanerConfig, ConfigError> {
        let mut c = CleanerConfig::default();
        for key in KEYS {
            let Some(text) = file.get(key) else { continue };
            c.set(key, text).map_err(|reason| invalid(key, reason))?;
            c.configured.insert(key);
        }
        c.check().map_err(|(key, reason)| invalid(key, reason))?;
        Ok(c)
    }

    /// Sets one cleaner key from its text, checked on its own as Kafka checks
    /// its type and range (and, where Kafka takes anything, refusing what
    /// would stop or break the cleaners); refused with Kafka's message
    /// (`Invalid value X for configuration K: ...`). The checks between keys
    /// are [`CleanerConfig::check`]'s.
    pub fn set(&mut self, key: &str, text: &str) -> Result<(), String> {
        match key {
            ENABLE => {
                self.enable = match text.trim().to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(refused(key, text, "Expected value to be either true or false")),
                }
            }
            // Kafka's range starts at 0; fewer than 1 thread is refused by `check`.
            THREADS => self.threads = int(key, text, 0, i32::MAX as i64)? as usize,
            IO_MAX_BYTES_PER_SECOND => {
                // Kafka takes any double; zero or less would stop the cleaners for good.
                let rate = double(key, text)?;
                if rate <= 0.0 {
                    return Err(refused(key, text.trim(), "Value must be more than 0"));
                }
                self.io_max_bytes_per_second = rate;
            }
            // Checked against the threads by `check`; a negative size fails there.
            DEDUPE_BUFFER_SIZE => self.dedupe_buffer_size = long(key, text, i64::MIN, i64::MAX)?.max(0) as u64,
            IO_BUFFER_LOAD_FACTOR => {
                // Kafka takes any double; outside (0, 1] a key map is either never used or overfilled.
                let factor = double(key, text)?;
                if !(factor > 0.0 && factor <= 1.0) {
                    return Err(refused(key, text.trim(), "Value must be more than 0 and at most 1"));
                }
                self.io_buffer_load_factor = factor;
            }
            IO_BUFFER_SIZE => self.io_buffer_size = int(key, text, 0, i32::MAX as i64)? as usize,
            BACKOFF_MS => self.backoff_ms = long(key, text, 0, i64::MAX)? as u64,
            _ => return Err(format!("Unknown log cleaner config name: {key}")),
        }
        Ok(())
    }

    /// The checks between the cleaner's keys, as Kafka makes them: at least
    /// one thread, and at least 1 MiB of key map per thread. The key to
    /// blame, and Kafka's message.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.threads < 1 {
            return Err((THREADS, THREADS_AT_LEAST_ONE.to_string()));
        }
        if self.dedupe_buffer_size / self.threads as u64 <= CLEANER_DEDUPE_BUFFER_BYTES_PER_THREAD_MIN {
            return Err((DEDUPE_BUFFER_SIZE, DEDUPE_PER_THREAD.to_string()));
        }
        Ok(())
    }

    /// Bytes of one shard's key map: `log.cleaner.dedupe.buffer.size` shared by the shards.
    pub fn dedupe_buffer_bytes_per_shard(&self, shards: usize) -> u64 {
        self.dedupe_buffer_size / shards.max(1) as u64
    }

    /// The DescribeConfigs type of a cleaner key.
    pub fn kind_of(key: &str) -> Option<ConfigKind> {
        Some(match key {
            ENABLE => ConfigKind::Boolean,
            THREADS | IO_BUFFER_SIZE => ConfigKind::Int,
            IO_MAX_BYTES_PER_SECOND | IO_BUFFER_LOAD_FACTOR => ConfigKind::Double,
            DEDUPE_BUFFER_SIZE | BACKOFF_MS => ConfigKind::Long,
            _ => return None,
        })
    }

    /// The value of a cleaner key, as Kafka's DescribeConfigs prints it.
    pub fn value_of(&self, key: &str) -> Option<String> {
        Some(match key {
            ENABLE => self.enable.to_string(),
            THREADS => self.threads.to_string(),
            IO_MAX_BYTES_PER_SECOND => ConfigDouble::new(self.io_max_bytes_per_second).to_string(),
            DEDUPE_BUFFER_SIZE => self.dedupe_buffer_size.to_string(),
            IO_BUFFER_LOAD_FACTOR => ConfigDouble::new(self.io_buffer_load_factor).to_string(),
            IO_BUFFER_SIZE => self.io_buffer_size.to_string(),
            BACKOFF_MS => self.backoff_ms.to_string(),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_are_kafkas_and_print_as_kafka_does() {
        let c = CleanerConfig::from_file(&BTreeMap::new()).unwrap();
        assert_eq!(c, CleanerConfig::default());
        assert!(c.enable);
        assert_eq!(
            (c.threads, c.dedupe_buffer_size, c.io_buffer_size, c.backoff_ms),
            (1, 134_217_728, 524_288, 15_000)
        );
        assert_eq!(c.io_max_bytes_per_second, f64::MAX);
        assert_eq!(c.io_buffer_load_factor, 0.9);
        let printed: Vec<String> = KEYS.iter().map(|k| c.value_of(k).unwrap()).collect();
        assert_eq!(
            printed,
            ["true", "1", "1.7976931348623157E308", "134217728", "0.9", "524288", "15000"].map(String::from)
        );
        assert!(c.configured.is_empty());
        assert!(KEYS.iter().all(|k| CleanerConfig::kind_of(k).is_some()));
        assert_eq!(c.dedupe_buffer_bytes_per_shard(4), 32 * 1024 * 1024);
    }

    #[test]
    fn file_values_are_read_and_validated() {
        let c = CleanerConfig::from_file(&file(&[
            ("log.cleaner.enable", "FALSE"),
            ("log.cleaner.threads", "2"),
            ("log.cleaner.io.max.bytes.per.second", "1048576"),
            ("log.cleaner.dedupe.buffer.size", "16777216"),
            ("log.cleaner.io.buffer.load.factor", "0.75"),
            ("log.cleaner.io.buffer.size", "0"),
            ("log.cleaner.backoff.ms", "0"),
        ]))
        .unwrap();
        assert!(!c.enable);
        assert_eq!((c.threads, c.dedupe_buffer_size, c.io_buffer_size, c.backoff_ms), (2, 16 << 20, 0, 0));
        assert_eq!((c.io_max_bytes_per_second, c.io_buffer_load_factor), (1_048_576.0, 0.75));
        assert_eq!(c.value_of(IO_MAX_BYTES_PER_SECOND).as_deref(), Some("1048576.0"));
        assert_eq!(c.configured.len(), 7);

        let refused = |k: &str, v: &str| CleanerConfig::from_file(&file(&[(k, v)])).unwrap_err().to_string();
        assert_eq!(refused(THREADS, "0"), "log.cleaner.threads: Log cleaner threads should be at least 1");
        assert!(refused(ENABLE, "yes").contains("true or false"));
        assert!(refused(IO_MAX_BYTES_PER_SECOND, "0").contains("more than 0"));
        assert!(refused(IO_MAX_BYTES_PER_SECOND, "NaN").contains("Not a number of type DOUBLE"));
        assert!(refused(IO_BUFFER_LOAD_FACTOR, "1.5").contains("at most 1"));
        assert!(refused(IO_BUFFER_LOAD_FACTOR, "0").contains("more than 0"));
        assert!(refused(IO_BUFFER_SIZE, "-1").contains("at least 0"));
        assert!(refused(BACKOFF_MS, "-1").contains("at least 0"));
        assert_eq!(
            refused(BACKOFF_MS, "soon"),
            "log.cleaner.backoff.ms: Invalid value soon for configuration log.cleaner.backoff.ms: \
             Not a number of type LONG"
        );
        assert!(refused(DEDUPE_BUFFER_SIZE, "1048576").contains("at least 1MB per cleaner thread"));
        assert!(refused(DEDUPE_BUFFER_SIZE, "-5").contains("at least 1MB per cleaner thread"));
        // Kafka's check is per thread: 4 MiB for 4 threads is refused, for 2 accepted.
        let four = file(&[(DEDUPE_BUFFER_SIZE, "4194304"), (THREADS, "4")]);
        assert!(CleanerConfig::from_file(&four).is_err());
        let two = file(&[(DEDUPE_BUFFER_SIZE, "4194304"), (THREADS, "2")]);
        assert_eq!(CleanerConfig::from_file(&two).unwrap().dedupe_buffer_size, 4 << 20);
        assert_eq!(
            CleanerConfig::from_file(&file(&[(IO_MAX_BYTES_PER_SECOND, "Infinity")])).unwrap().io_max_bytes_per_second,
            f64::INFINITY
        );
    }
}
