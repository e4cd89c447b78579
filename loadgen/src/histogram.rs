//! A log-linear latency histogram in microseconds: 128 buckets per power of two (under 1 %
//! error), lock-free so every reader task records into the same one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Whole microseconds, as the histogram and the load messages count time.
pub fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// The histogram; see the module documentation.
pub struct Histogram {
    buckets: Vec<AtomicU64>,
    max: AtomicU64,
}

const SUB_BUCKET_BITS: u32 = 7;
const SUB_BUCKETS: u64 = 1 << SUB_BUCKET_BITS;

impl Histogram {
    pub fn new() -> Self {
        Self {
            buckets: (0..(64 * SUB_BUCKETS)).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }

    fn index(micros: u64) -> usize {
        if micros < SUB_BUCKETS {
            return micros as usize;
        }
        let exponent = 63 - u64::from(micros.leading_zeros());
        let shift = exponent - u64::from(SUB_BUCKET_BITS);
        let sub = (micros >> shift) - SUB_BUCKETS;
        ((shift + 1) * SUB_BUCKETS + sub) as usize
    }

    /// The lowest value that falls in bucket `index`.
    fn value_at(index: usize) -> u64 {
        let index = index as u64;
        if index < SUB_BUCKETS {
            return index;
        }
        let shift = index / SUB_BUCKETS - 1;
        (SUB_BUCKETS + index % SUB_BUCKETS) << shift
    }

    pub fn record_duration(&self, took: Duration) {
        self.record(micros(took));
    }

    pub fn record(&self, micros: u64) {
        if let Some(bucket) = self.buckets.get(Self::index(micros)) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.max.fetch_max(micros, Ordering::Relaxed);
    }

    pub fn percentile(&self, fraction: f64) -> u64 {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return 0;
        }
        let wanted = ((total as f64) * fraction).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (index, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= wanted {
                return Self::value_at(index);
            }
        }
        self.max.load(Ordering::Relaxed)
    }

    /// The largest value recorded.
    pub fn max(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_within_one_percent() {
        for value in [
            0, 1, 127, 128, 129, 1000, 4321, 65_432, 1_234_567, 98_765_432,
        ] {
            let low = Histogram::value_at(Histogram::index(value));
            assert!(low <= value, "{value} -> {low}");
            assert!(
                (value - low) as f64 <= value as f64 / 100.0,
                "{value} -> {low}"
            );
        }
    }

    #[test]
    fn percentiles_come_from_the_recorded_values() {
        let histogram = Histogram::new();
        for micros in 1..=1000 {
            histogram.record(micros);
        }
        assert!((495..=500).contains(&histogram.percentile(0.5)));
        assert!((980..=990).contains(&histogram.percentile(0.99)));
        assert_eq!(histogram.max(), 1000);
    }
}
