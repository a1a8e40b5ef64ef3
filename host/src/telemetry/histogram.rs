//! A lock-free histogram with fixed buckets: one atomic add per observation,
//! encoded as a Prometheus histogram at scrape time.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Latency buckets in seconds: 100 µs .. 30 s.
pub const LATENCY_SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// Batch-size buckets in events: 1 .. 16384.
pub const BATCH_EVENTS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0,
    16384.0,
];

/// Observations are kept in millionths of the unit (µs for seconds) in the
/// sum, so the sum stays an integer atomic.
const SUM_SCALE: f64 = 1_000_000.0;

#[derive(Debug)]
pub struct AtomicHistogram {
    bounds: &'static [f64],
    /// One count per bound, plus the `+Inf` bucket (not cumulative).
    counts: Box<[AtomicU64]>,
    sum_micros: AtomicU64,
}

/// A consistent-enough copy of a histogram (each field read atomically).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistogramSnapshot {
    pub sum: f64,
    pub count: u64,
    /// `(upper bound, cumulative count)`, `+Inf` last.
    pub buckets: Vec<(f64, u64)>,
}

impl AtomicHistogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn latency() -> Self {
        Self::new(LATENCY_SECONDS)
    }

    pub fn batch_events() -> Self {
        Self::new(BATCH_EVENTS)
    }

    pub fn observe(&self, value: f64) {
        self.observe_n(value, 1);
    }

    /// Records `n` observations of `value` at once.
    pub fn observe_n(&self, value: f64, n: u64) {
        if n == 0 {
            return;
        }
        let value = if value.is_finite() {
            value.max(0.0)
        } else {
            0.0
        };
        let i = self.bounds.partition_point(|b| *b < value);
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(n, Relaxed);
        }
        self.sum_micros
            .fetch_add((value * SUM_SCALE) as u64 * n, Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut total = 0u64;
        let mut buckets = Vec::with_capacity(self.counts.len());
        for (i, c) in self.counts.iter().enumerate() {
            total += c.load(Relaxed);
            buckets.push((self.bounds.get(i).copied().unwrap_or(f64::INFINITY), total));
        }
        HistogramSnapshot {
            sum: self.sum_micros.load(Relaxed) as f64 / SUM_SCALE,
            count: total,
            buckets,
        }
    }
}

impl HistogramSnapshot {
    /// What was observed since `earlier` (a snapshot of the same histogram).
    pub fn since(&self, earlier: &HistogramSnapshot) -> HistogramSnapshot {
        let buckets = self
            .buckets
            .iter()
            .enumerate()
            .map(|(i, &(b, c))| (b, c - earlier.buckets.get(i).map_or(0, |e| e.1.min(c))))
            .collect();
        HistogramSnapshot {
            sum: (self.sum - earlier.sum).max(0.0),
            count: self.count.saturating_sub(earlier.count),
            buckets,
        }
    }

    /// Adds `other` (same bounds) into this one.
    pub fn merge(&mut self, other: &HistogramSnapshot) {
        if self.buckets.is_empty() {
            *self = other.clone();
            return;
        }
        self.sum += other.sum;
        self.count += other.count;
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            mine.1 += theirs.1;
        }
    }

    /// The `q` quantile (0..1), interpolated within its bucket as Prometheus'
    /// `histogram_quantile` does; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * self.count as f64;
        let mut prev = (0.0, 0u64);
        for &(bound, cum) in &self.buckets {
            if cum as f64 >= rank {
                if bound.is_infinite() {
                    return Some(prev.0);
                }
                let inside = (cum - prev.1) as f64;
                let frac = if inside > 0.0 {
                    (rank - prev.1 as f64) / inside
                } else {
                    1.0
                };
                return Some(prev.0 + (bound - prev.0) * frac);
            }
            prev = (bound, cum);
        }
        Some(prev.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_bounds_inclusive() {
        let h = AtomicHistogram::new(&[1.0, 2.0, 4.0]);
        h.observe(1.0);
        h.observe(1.5);
        h.observe_n(3.0, 2);
        h.observe(100.0);
        let s = h.snapshot();
        assert_eq!(s.count, 5);
        assert_eq!(
            s.buckets,
            vec![(1.0, 1), (2.0, 2), (4.0, 4), (f64::INFINITY, 5)]
        );
        assert!((s.sum - 108.5).abs() < 1e-6, "{}", s.sum);
    }

    #[test]
    fn quantile_interpolates_within_the_bucket() {
        let h = AtomicHistogram::new(&[1.0, 2.0]);
        h.observe_n(1.5, 10);
        let s = h.snapshot();
        assert_eq!(s.quantile(0.5), Some(1.5));
        assert_eq!(s.quantile(1.0), Some(2.0));
        assert_eq!(AtomicHistogram::latency().snapshot().quantile(0.99), None);
    }
}
