//! The cleaner's I/O rate limit (`log.cleaner.io.max.bytes.per.second`):
//! after each read or write the cleaner waits long enough that its bytes over
//! the current window stay under the rate.

use std::time::{Duration, Instant};

/// Window after which the count starts again.
const WINDOW: Duration = Duration::from_secs(1);

pub struct Throttle {
    bytes_per_second: f64,
    window_start: Instant,
    bytes: f64,
}

impl Throttle {
    /// A limit of `bytes_per_second` (infinite or huge: no limit).
    pub fn new(bytes_per_second: f64) -> Throttle {
        Throttle { bytes_per_second, window_start: Instant::now(), bytes: 0.0 }
    }

    /// How long to wait after `bytes` more, at `now`.
    fn delay(&mut self, bytes: usize, now: Instant) -> Option<Duration> {
        if !self.bytes_per_second.is_finite() || self.bytes_per_second >= 1e300 {
            return None;
        }
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed >= WINDOW {
            self.window_start = now;
            self.bytes = 0.0;
        }
        self.bytes += bytes as f64;
        let due = Duration::from_secs_f64(self.bytes / self.bytes_per_second.max(1.0));
        let elapsed = now.saturating_duration_since(self.window_start);
        (due > elapsed).then(|| due - elapsed)
    }

    /// Accounts for `bytes` of cleaner I/O, sleeping if over the rate.
    pub async fn charge(&mut self, bytes: usize) {
        if let Some(wait) = self.delay(bytes, Instant::now()) {
            glommio::timer::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_only_past_the_rate() {
        let mut t = Throttle::new(1000.0);
        let start = t.window_start;
        assert_eq!(t.delay(500, start), Some(Duration::from_millis(500)));
        let later = start + Duration::from_millis(600);
        assert_eq!(t.delay(100, later), None, "600 bytes in 600 ms");
        assert!(t.delay(400, later).unwrap() >= Duration::from_millis(399));
        let mut unlimited = Throttle::new(f64::MAX);
        assert_eq!(unlimited.delay(usize::MAX, Instant::now()), None);
    }
}
