//! Metric primitives for one shard: plain cells read and written only by the
//! shard's own thread, so counting on the hot path takes no atomic and no
//! lock. Whoever wants the numbers asks the shard for a snapshot (plain,
//! `Send` copies) and adds the shards' snapshots up.

use std::cell::{Cell, RefCell};
use std::time::Duration;

/// Largest value a histogram tells apart; larger ones count as this.
pub const HISTOGRAM_VALUE_MAX: u64 = 60_000_000;
/// Two significant digits: values are kept to within 1%, in ~20 KiB per histogram.
const HISTOGRAM_SIGNIFICANT_DIGITS: u8 = 2;

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(Cell<u64>);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.set(self.0.get().wrapping_add(n));
    }

    pub fn inc(&self) {
        self.add(1);
    }

    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(Cell<i64>);

impl Gauge {
    pub fn add(&self, n: i64) {
        self.0.set(self.0.get() + n);
    }

    pub fn get(&self) -> i64 {
        self.0.get()
    }
}

/// The distribution of values recorded so far (HdrHistogram), e.g. latencies
/// in microseconds or batch sizes.
pub type Snapshot = hdrhistogram::Histogram<u64>;

/// An empty histogram with the bounds every Sluice histogram uses, so any two
/// can be added up.
pub fn empty_snapshot() -> Snapshot {
    Snapshot::new_with_bounds(1, HISTOGRAM_VALUE_MAX, HISTOGRAM_SIGNIFICANT_DIGITS).expect("constant bounds are valid")
}

/// Adds `from` into `into`; both have the bounds of [`empty_snapshot`].
pub fn merge(into: &mut Snapshot, from: &Snapshot) {
    // Same bounds on both sides: adding never needs a value `into` cannot hold.
    let _ = into.add(from);
}

/// Upper bounds of latency buckets, in microseconds (10 µs to 30 s).
pub const LATENCY_BUCKETS_US: [u64; 20] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000, 30_000_000,
];
/// Upper bounds of batch-size buckets (appends per fdatasync).
pub const BATCH_SIZE_BUCKETS: [u64; 11] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/// A histogram as Prometheus buckets: counts per bucket (one per bound, then
/// one above the last), the sum and the count of the values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buckets {
    pub per_bucket: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

/// Sorts `h`'s values into buckets with upper bounds `bounds`, in one pass
/// over the values it holds (not over its whole range), so it stays cheap
/// enough for the shard that owns the histogram.
pub fn buckets(h: &Snapshot, bounds: &[u64]) -> Buckets {
    let mut per_bucket = vec![0; bounds.len() + 1];
    let mut sum = 0.0;
    for v in h.iter_recorded() {
        let value = h.median_equivalent(v.value_iterated_to());
        let n = v.count_at_value();
        per_bucket[bounds.partition_point(|b| *b < value)] += n;
        sum += value as f64 * n as f64;
    }
    Buckets { per_bucket, sum, count: h.len() }
}

/// A histogram of values; values above [`HISTOGRAM_VALUE_MAX`] count as it.
#[derive(Debug)]
pub struct Histogram(RefCell<Snapshot>);

impl Default for Histogram {
    fn default() -> Self {
        Histogram(RefCell::new(empty_snapshot()))
    }
}

impl Histogram {
    pub fn record(&self, value: u64) {
        self.0.borrow_mut().saturating_record(value.max(1));
    }

    /// Records a duration in microseconds.
    pub fn record_duration(&self, elapsed: Duration) {
        self.record(elapsed.as_micros().min(u64::MAX as u128) as u64);
    }

    pub fn snapshot(&self) -> Snapshot {
        self.0.borrow().clone()
    }
}

/// A histogram that also keeps the values of the last whole interval (a
/// second, rotated by the shard's ticker), for live percentiles.
#[derive(Debug, Default)]
pub struct WindowedHistogram {
    all: Histogram,
    current: Histogram,
    last: Histogram,
}

impl WindowedHistogram {
    pub fn record_duration(&self, elapsed: Duration) {
        self.all.record_duration(elapsed);
        self.current.record_duration(elapsed);
    }

    /// Ends the current interval: it becomes the last one.
    pub fn rotate(&self) {
        let mut current = self.current.0.borrow_mut();
        let mut last = self.last.0.borrow_mut();
        std::mem::swap(&mut *current, &mut *last);
        current.reset();
    }

    pub fn snapshot(&self) -> Snapshot {
        self.all.snapshot()
    }

    /// The values of the last whole interval.
    pub fn last_interval(&self) -> Snapshot {
        self.last.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_keep_values_within_one_percent_and_merge() {
        let h = Histogram::default();
        for v in 1..=1000 {
            h.record(v);
        }
        h.record(u64::MAX);
        let mut all = empty_snapshot();
        merge(&mut all, &h.snapshot());
        merge(&mut all, &h.snapshot());
        assert_eq!(all.len(), 2002);
        let p50 = all.value_at_quantile(0.5);
        assert!((495..=505).contains(&p50), "p50 {p50}");
        assert!(all.max() >= HISTOGRAM_VALUE_MAX * 99 / 100);
    }

    #[test]
    fn buckets_count_each_value_once_under_its_bound() {
        let h = Histogram::default();
        for v in [50, 100, 150, 2_000, 2_000, 40_000_000] {
            h.record(v);
        }
        let b = buckets(&h.snapshot(), &[100, 1_000, 10_000]);
        assert_eq!(b.per_bucket, [2, 1, 2, 1]);
        assert_eq!(b.count, 6);
        let exact = (50 + 100 + 150 + 4_000 + 40_000_000) as f64;
        assert!((b.sum - exact).abs() / exact < 0.01, "sum {}", b.sum);
    }

    #[test]
    fn the_window_holds_only_the_last_interval() {
        let h = WindowedHistogram::default();
        h.record_duration(Duration::from_micros(100));
        assert_eq!(h.last_interval().len(), 0);
        h.rotate();
        h.record_duration(Duration::from_micros(300));
        assert_eq!(h.last_interval().len(), 1);
        assert_eq!(h.snapshot().len(), 2);
        h.rotate();
        assert!(h.last_interval().value_at_quantile(1.0) >= 297);
        h.rotate();
        assert_eq!(h.last_interval().len(), 0);
    }
}
