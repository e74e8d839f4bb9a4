//! A fixed-bucket histogram for one shard: `record` is a short scan over a
//! static bound list and two `Cell` adds, no allocation, no atomics (a shard's
//! counters are touched by its own executor only). The scrape copies the
//! counts out (`Buckets`) and renders them as Prometheus cumulative buckets.

use std::cell::Cell;

/// Latencies in microseconds: 50 us to 10 s.
pub const LATENCY_US: &[u64] = &[
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 10_000_000,
];
/// Delayed records' lateness (append time - due time) in milliseconds: 1 ms to 1 min.
pub const LATENESS_MS: &[u64] = &[1, 2, 5, 10, 20, 50, 100, 250, 500, 1_000, 5_000, 60_000];
/// Sizes in bytes: 4 KiB to 64 MiB.
pub const SIZE_BYTES: &[u64] = &[
    4_096, 16_384, 65_536, 262_144, 1_048_576, 4_194_304, 16_777_216, 67_108_864,
];

pub struct Histogram {
    bounds: &'static [u64],
    /// One count per bound, plus the overflow (+Inf) bucket; not cumulative.
    counts: Box<[Cell<u64>]>,
    sum: Cell<u64>,
}

impl Histogram {
    pub fn new(bounds: &'static [u64]) -> Self {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]), "bounds ascend");
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| Cell::new(0)).collect(),
            sum: Cell::new(0),
        }
    }

    pub fn record(&self, value: u64) {
        let i = self
            .bounds
            .iter()
            .position(|&b| value <= b)
            .unwrap_or(self.bounds.len());
        self.counts[i].set(self.counts[i].get() + 1);
        self.sum.set(self.sum.get().wrapping_add(value));
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().map(Cell::get).sum()
    }

    pub fn snapshot(&self) -> Buckets {
        Buckets {
            bounds: self.bounds,
            counts: self.counts.iter().map(Cell::get).collect(),
            sum: self.sum.get(),
        }
    }
}

/// A histogram's counts at one moment, `Send` for the trip to the scraping shard.
#[derive(Clone, Debug)]
pub struct Buckets {
    pub bounds: &'static [u64],
    pub counts: Vec<u64>,
    pub sum: u64,
}

impl Buckets {
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Add another shard's counts of the same histogram.
    pub fn merge(&mut self, other: &Buckets) {
        debug_assert_eq!(self.bounds, other.bounds);
        self.counts
            .iter_mut()
            .zip(&other.counts)
            .for_each(|(a, b)| *a += b);
        self.sum = self.sum.wrapping_add(other.sum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_values_on_and_past_the_bounds_when_recorded_should_land_in_the_first_bucket_that_holds_them() {
        let h = Histogram::new(&[10, 100]);
        for v in [0, 10, 11, 100, 101, 5_000] {
            h.record(v);
        }
        let s = h.snapshot();
        assert_eq!(s.counts, vec![2, 2, 2]);
        assert_eq!(s.sum, 5_222);
        assert_eq!(h.count(), 6);
        let mut twice = s.clone();
        twice.merge(&s);
        assert_eq!(twice.counts, vec![4, 4, 4]);
        assert_eq!(twice.count(), 12);
    }
}
