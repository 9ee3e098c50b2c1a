//! What the shards of one broker share besides the mesh: the request to
//! stop, the broker-wide connection count and the drain barrier. One
//! `Lifecycle` per broker, handed to every shard, so several brokers can run
//! in one process.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The shared state of one broker's shards.
#[derive(Debug, Default)]
pub struct Lifecycle {
    stopping: AtomicBool,
    connections: AtomicUsize,
    drained_shards: AtomicUsize,
    listening_shards: AtomicUsize,
    /// Shards whose partitions are open (their first catalog applied).
    opened_shards: AtomicUsize,
    address: OnceLock<SocketAddr>,
}

impl Lifecycle {
    /// Asks every shard to stop: no new connections or requests.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Counts a connection against `max` (`max.connections`, broker-wide);
    /// `false` when the broker is full.
    pub fn take_connection(&self, max: usize) -> bool {
        let before = self.connections.fetch_add(1, Ordering::AcqRel);
        if before >= max {
            self.connections.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// A connection counted by [`Lifecycle::take_connection`] closed.
    pub fn release_connection(&self) {
        self.connections.fetch_sub(1, Ordering::AcqRel);
    }

    /// A shard has opened its partitions.
    pub fn shard_opened(&self) {
        self.opened_shards.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether `shards` shards have opened their partitions, so that a
    /// request routed to any of them finds its partitions.
    pub fn all_opened(&self, shards: usize) -> bool {
        self.opened_shards.load(Ordering::Acquire) >= shards
    }

    /// A shard has bound every listener and takes connections; `address` is
    /// its first listener's (every shard binds the same ones).
    pub fn shard_listening(&self, address: SocketAddr) {
        let _ = self.address.set(address);
        self.listening_shards.fetch_add(1, Ordering::AcqRel);
    }

    /// The address of the first listener, once a shard listens.
    pub fn address(&self) -> Option<SocketAddr> {
        self.address.get().copied()
    }

    /// How many shards accept connections.
    pub fn listening_shards(&self) -> usize {
        self.listening_shards.load(Ordering::Acquire)
    }

    /// This shard answered its in-flight requests; returns how many shards have.
    pub fn shard_drained(&self) -> usize {
        self.drained_shards.fetch_add(1, Ordering::AcqRel) + 1
    }

    pub fn drained_shards(&self) -> usize {
        self.drained_shards.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_bounded_and_released() {
        let lifecycle = Lifecycle::default();
        assert!(lifecycle.take_connection(2));
        assert!(lifecycle.take_connection(2));
        assert!(!lifecycle.take_connection(2));
        lifecycle.release_connection();
        assert!(lifecycle.take_connection(2));
    }

    #[test]
    fn brokers_do_not_share_a_stop() {
        let (a, b) = (Lifecycle::default(), Lifecycle::default());
        a.stop();
        assert!(a.stopping() && !b.stopping());
        assert_eq!(a.shard_drained(), 1);
        assert_eq!(b.drained_shards(), 0);
    }
}
