//! The time as the group coordinator sees it. The coordinator reads the
//! clock once per operation ([`Now::system`]) and hands that reading to the
//! group state machine ([`super::classic`]), which never reads a clock itself;
//! tests build readings and move them forward by hand.

use std::time::{Duration, Instant};

/// One reading of the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time: sessions, rebalance deadlines, expiry of handed-out member ids.
    pub instant: Instant,
    /// Wall-clock milliseconds since the Unix epoch: what is persisted (when a
    /// group became empty) and compared with commit timestamps.
    pub wall_ms: i64,
}

impl Now {
    /// The system clock, now. The only place the group coordinator reads it.
    pub fn system() -> Now {
        Now { instant: Instant::now(), wall_ms: sluice_core::clock::now_ms() }
    }

    /// This reading moved `elapsed` later, on both clocks.
    pub fn after(self, elapsed: Duration) -> Now {
        Now { instant: self.instant + elapsed, wall_ms: self.wall_ms + elapsed.as_millis() as i64 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_moves_both_clocks_together() {
        let start = Now::system();
        let later = start.after(Duration::from_millis(1_500));
        assert_eq!(later.instant.duration_since(start.instant), Duration::from_millis(1_500));
        assert_eq!(later.wall_ms - start.wall_ms, 1_500);
    }
}
