//! Rate control: the hard cap (`--rows-per-sec`, a token bucket) and the
//! adaptive batch size (`--target-p99-ms`, AIMD on the transaction latency).
//!
//! Owned by the drain's main thread. Invariants: the bucket never lets more
//! than `rate * t + burst` rows through in any span `t`; the AIMD size stays in
//! `[min, max]`. Both are deterministic given the times and latencies fed to
//! them, so the tests drive them with made-up clocks.

use std::time::{Duration, Instant};

/// A token bucket in rows. Rows are taken before the transaction that
/// writes them, so the committed rate can run ahead of the cap by at most
/// `burst` rows (the drain uses 500 ms at the cap, so a round slowed by a
/// slow commit can catch up).
///
/// It also counts the allowance the drain could not use while it had rows to
/// write (`unused`): tokens that overflowed the burst because a transaction,
/// a fetch or the machine was slow. A window that falls short of the cap by
/// more than the burst has that much unused allowance to show for it, and
/// nothing else can make it fall short.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
    /// Overflow since the last `acquire` or `idle`.
    overflow: f64,
    /// Overflow while busy, from the first `acquire` on.
    unused: f64,
    busy: bool,
}

impl TokenBucket {
    pub fn new(rows_per_sec: u64, burst: u64, now: Instant) -> Self {
        Self {
            rate: rows_per_sec as f64,
            burst: burst.max(1) as f64,
            // Start empty: a drain that starts on a backlog would otherwise
            // write a burst at once, above the cap for that first window.
            tokens: 0.0,
            at: now,
            overflow: 0.0,
            unused: 0.0,
            busy: false,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        let filled = self.tokens + elapsed * self.rate;
        self.overflow += (filled - self.burst).max(0.0);
        self.tokens = filled.min(self.burst);
        self.at = now;
    }

    /// Nothing to write: the overflow since the last `acquire` was idle
    /// time, not lost allowance.
    pub fn idle(&mut self, now: Instant) {
        self.refill(now);
        self.overflow = 0.0;
    }

    /// Rows the cap allowed while the drain had rows to write but could not
    /// write them (beyond the burst), since its first batch.
    pub fn unused(&self) -> u64 {
        self.unused as u64
    }

    /// Rows that may go now (at most `burst`).
    pub fn available(&mut self, now: Instant) -> u64 {
        self.refill(now);
        self.tokens.max(0.0) as u64
    }

    /// How long to wait before `rows` may go (zero: take them now).
    pub fn wait_for(&mut self, rows: u64, now: Instant) -> Duration {
        self.refill(now);
        let need = (rows as f64).min(self.burst) - self.tokens;
        if need <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(need / self.rate)
    }

    /// Take `rows` (after `wait_for` said zero).
    pub fn take(&mut self, rows: u64, now: Instant) {
        self.refill(now);
        self.tokens -= (rows as f64).min(self.burst);
    }

    /// A batch is ready: the overflow since the last one was allowance lost
    /// while busy (before the first batch the drain was joining).
    fn batch_ready(&mut self, now: Instant) {
        self.refill(now);
        if self.busy {
            self.unused += self.overflow;
        }
        self.overflow = 0.0;
        self.busy = true;
    }

    /// Block the calling thread until `rows` may go, then take them.
    pub fn acquire(&mut self, rows: u64) {
        self.batch_ready(Instant::now());
        loop {
            let wait = self.wait_for(rows, Instant::now());
            if wait.is_zero() {
                self.take(rows, Instant::now());
                return;
            }
            std::thread::sleep(wait);
        }
    }
}

/// Additive increase, multiplicative decrease of the batch size, judged
/// once per window of `window` transactions by the window's p99 latency.
#[derive(Debug)]
pub struct Aimd {
    target_us: u64,
    size: usize,
    min: usize,
    max: usize,
    step: usize,
    window: usize,
    /// This window's latencies, microseconds (at most `window`).
    latencies: Vec<u64>,
}

impl Aimd {
    pub fn new(target: Duration, start: usize, min: usize, max: usize) -> Self {
        let min = min.max(1);
        Self {
            target_us: target.as_micros().try_into().unwrap_or(u64::MAX),
            size: start.clamp(min, max),
            min,
            max,
            step: (max / 50).max(1),
            window: 10,
            latencies: Vec::with_capacity(10),
        }
    }

    /// The batch size to use now.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Record one transaction's latency; at the end of a window, adjust.
    pub fn observe(&mut self, latency: Duration) {
        let us = latency.as_micros().try_into().unwrap_or(u64::MAX);
        self.latencies.push(us);
        if self.latencies.len() < self.window {
            return;
        }
        self.latencies.sort_unstable();
        // The nearest-rank p99: of 10 samples, the largest.
        let rank = (self.latencies.len() * 99).div_ceil(100);
        let p99 = self.latencies[rank.max(1) - 1];
        self.latencies.clear();
        if p99 <= self.target_us {
            self.size = (self.size + self.step).min(self.max);
        } else {
            self.size = (self.size / 2).max(self.min);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_cap_when_rows_are_taken_for_ten_seconds_should_pass_the_cap_plus_one_burst() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(2000, 200, t0);
        let (mut now, mut passed) = (t0, 0u64);
        while now < t0 + Duration::from_secs(10) {
            let wait = bucket.wait_for(150, now);
            if wait.is_zero() {
                bucket.take(150, now);
                passed += 150;
            } else {
                now += wait;
            }
        }
        assert!((19_800..=20_200).contains(&passed), "{passed}");
    }

    #[test]
    fn given_a_slow_round_when_rows_wait_should_count_the_allowance_past_the_burst_as_unused() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut bucket = TokenBucket::new(2000, 1000, t0);
        // Joining for 3 s before the first batch: not counted.
        bucket.batch_ready(at(3));
        bucket.take(1000, at(3));
        assert_eq!(bucket.unused(), 0);
        // A 2 s commit: 4000 rows allowed, 1000 kept as burst, 3000 lost.
        bucket.batch_ready(at(5));
        assert_eq!(bucket.unused(), 3000);
        bucket.take(1000, at(5));
        // Idle for a minute, then a batch: idle time is not lost allowance.
        bucket.idle(at(65));
        bucket.batch_ready(at(65));
        assert_eq!(bucket.unused(), 3000);
    }

    #[test]
    fn given_latency_under_target_when_observed_should_grow_additively_then_halve_when_over() {
        let mut a = Aimd::new(Duration::from_millis(50), 100, 10, 5000);
        for _ in 0..10 {
            a.observe(Duration::from_millis(5));
        }
        assert_eq!(a.size(), 200);
        for _ in 0..9 {
            a.observe(Duration::from_millis(5));
        }
        a.observe(Duration::from_millis(80));
        assert_eq!(a.size(), 100, "one slow transaction in ten is above p99");
        for _ in 0..100 {
            a.observe(Duration::from_millis(500));
        }
        assert_eq!(a.size(), 10, "never below the minimum");
    }

    #[test]
    fn given_latency_that_grows_with_size_when_controlled_should_settle_near_the_target() {
        // A model database: 1 ms plus 0.1 ms per row; target 50 ms => ~490 rows.
        let mut a = Aimd::new(Duration::from_millis(50), 10, 10, 5000);
        let mut sizes = Vec::new();
        for _ in 0..2000 {
            let latency = Duration::from_micros(1000 + 100 * a.size() as u64);
            a.observe(latency);
            sizes.push(a.size());
        }
        let tail = &sizes[1000..];
        let max = *tail.iter().max().unwrap();
        let min = *tail.iter().min().unwrap();
        assert!(max <= 590, "{max}");
        assert!(min >= 240, "{min}");
    }
}
