//! What a shard's clients have used against their quotas: one windowed rate
//! per quota and sensor (Kafka shares a sensor among the connections that
//! resolve to the same user and client-id tags), and one token bucket per
//! sensor for `controller_mutation_rate`. A shard measures only its own
//! connections; a client with one connection (librdkafka, the Java client per
//! broker) is measured whole.

use std::collections::HashMap;

use sluice_core::constants::QUOTA_SENSORS_PER_SHARD_MAX;
use sluice_security::quota::{QuotaKey, QuotaSensorKey, RateSampler, TokenBucket};

/// A shard's quota sensors.
#[derive(Default)]
pub struct QuotaUsage {
    rates: HashMap<(QuotaKey, QuotaSensorKey), RateSampler>,
    mutations: HashMap<QuotaSensorKey, TokenBucket>,
}

impl QuotaUsage {
    /// The rate sensor of `key` for `sensor`, made on first use.
    pub fn rate(&mut self, key: QuotaKey, sensor: QuotaSensorKey, now_ms: u64) -> &mut RateSampler {
        if self.rates.len() >= QUOTA_SENSORS_PER_SHARD_MAX && !self.rates.contains_key(&(key, sensor.clone())) {
            // Kafka drops sensors idle for an hour; past the bound the idle ones go first, then all.
            self.rates.retain(|_, s| !s.is_expired(now_ms));
            if self.rates.len() >= QUOTA_SENSORS_PER_SHARD_MAX {
                tracing::warn!(sensors = self.rates.len(), "quota sensors at their bound; starting them afresh");
                self.rates.clear();
            }
        }
        self.rates.entry((key, sensor)).or_default()
    }

    /// The `controller_mutation_rate` bucket of `sensor`, made on first use.
    pub fn mutations(&mut self, sensor: QuotaSensorKey) -> &mut TokenBucket {
        if self.mutations.len() >= QUOTA_SENSORS_PER_SHARD_MAX && !self.mutations.contains_key(&sensor) {
            self.mutations.clear();
        }
        self.mutations.entry(sensor).or_default()
    }
}
