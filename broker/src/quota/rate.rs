//! A rolling-window byte rate, as Kafka's `Rate` over a `SampledStat` with the
//! client-quota settings (quota.window.num = 11 samples of
//! quota.window.size.seconds = 1): the sum of the retained samples divided by
//! the time they span, counted as at least 10 whole windows. A sample whose
//! last event is 11 windows old is reset. Owned by one connection's shard.

/// quota.window.num: 10 whole windows and the current one.
pub const SAMPLES: u64 = 11;
/// quota.window.size.seconds, in milliseconds.
pub const WINDOW_MS: u64 = 1000;

#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    start_ms: u64,
    last_event_ms: u64,
    value: f64,
}

impl Sample {
    fn reset(&mut self, now_ms: u64) {
        *self = Sample {
            start_ms: now_ms,
            last_event_ms: now_ms,
            value: 0.0,
        };
    }
}

/// One extra slot, as Kafka keeps, for the sample overlapping the window's start.
const SLOTS: usize = SAMPLES as usize + 1;

#[derive(Debug, Clone)]
pub struct Rate {
    samples: [Sample; SLOTS],
    /// Slots in use (they fill in turn, then wrap).
    used: usize,
    current: usize,
}

impl Rate {
    pub fn new() -> Self {
        Self {
            samples: [Sample::default(); SLOTS],
            used: 0,
            current: 0,
        }
    }

    /// Add `value` (may be negative: Kafka's "unrecord") at `now_ms`.
    pub fn record(&mut self, value: f64, now_ms: u64) {
        if self.used == 0 {
            self.samples[0].reset(now_ms);
            self.used = 1;
        } else if now_ms.saturating_sub(self.samples[self.current].start_ms) >= WINDOW_MS {
            self.current = (self.current + 1) % SLOTS;
            self.used = self.used.max(self.current + 1);
            self.samples[self.current].reset(now_ms);
        }
        let s = &mut self.samples[self.current];
        s.value += value;
        s.last_event_ms = now_ms;
    }

    fn purge(&mut self, now_ms: u64) {
        for s in &mut self.samples[..self.used] {
            if now_ms.saturating_sub(s.last_event_ms) >= SAMPLES * WINDOW_MS {
                s.reset(now_ms);
            }
        }
    }

    /// The span the rate divides by, in ms: from the oldest sample's start,
    /// at least `SAMPLES - 1` whole windows (Kafka's `Rate.windowSize`).
    pub fn window_ms(&mut self, now_ms: u64) -> u64 {
        self.purge(now_ms);
        let oldest = self.samples[..self.used]
            .iter()
            .map(|s| s.start_ms)
            .min()
            .unwrap_or(now_ms);
        let mut elapsed = now_ms.saturating_sub(oldest);
        let full = elapsed / WINDOW_MS;
        if full < SAMPLES - 1 {
            elapsed += (SAMPLES - 1 - full) * WINDOW_MS;
        }
        elapsed.max(1)
    }

    /// Bytes per second over the retained window.
    pub fn measure(&mut self, now_ms: u64) -> f64 {
        let window = self.window_ms(now_ms);
        let total: f64 = self.samples[..self.used].iter().map(|s| s.value).sum();
        total * 1000.0 / window as f64
    }

    /// Record `bytes` and return the throttle time in ms: 0 within `limit`
    /// bytes/s, else Kafka's `(observed - limit) / limit * window`, the delay
    /// that brings the rate back to the limit if nothing more is recorded.
    pub fn record_and_throttle(&mut self, bytes: f64, limit: f64, now_ms: u64) -> u64 {
        self.record(bytes, now_ms);
        let observed = self.measure(now_ms);
        if observed <= limit {
            return 0;
        }
        let window = self.window_ms(now_ms) as f64;
        ((observed - limit) / limit * window).round() as u64
    }

    /// The last time anything was recorded (for dropping idle sensors).
    pub fn last_event_ms(&self) -> u64 {
        self.samples[..self.used]
            .iter()
            .map(|s| s.last_event_ms)
            .max()
            .unwrap_or(0)
    }
}

impl Default for Rate {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_burst_when_measured_should_divide_by_at_least_ten_windows() {
        let mut r = Rate::new();
        let t = 1_000_000;
        // 10 windows' worth at once is within the limit; one byte more is not.
        assert_eq!(r.record_and_throttle(100.0, 10.0, t), 0);
        let throttle = r.record_and_throttle(10.0, 10.0, t + 1);
        // (110/10.001 - 10) / 10 * 10.001 s, about 1 s: the time to pay the excess off.
        assert_eq!(throttle, 999);
    }

    #[test]
    fn given_a_steady_sender_when_it_obeys_throttles_should_average_the_limit() {
        let (mut r, limit) = (Rate::new(), 1000.0);
        let (mut now, mut sent, start) = (5_000u64, 0.0, 5_000u64);
        while now < start + 60_000 {
            let t = r.record_and_throttle(100.0, limit, now);
            sent += 100.0;
            now += t.max(1);
        }
        let rate = sent * 1000.0 / (now - start) as f64;
        assert!((rate - limit).abs() / limit < 0.1, "{rate}");
    }

    #[test]
    fn given_an_idle_sensor_when_eleven_windows_pass_should_forget_old_samples() {
        let mut r = Rate::new();
        r.record(1000.0, 0);
        // 500 ms in: counted as 10.5 windows.
        assert!((r.measure(500) - 1000.0 / 10.5).abs() < 1e-9);
        assert_eq!(r.measure(11_000), 0.0);
        r.record(-1000.0, 11_000);
        assert!(r.measure(11_001) <= 0.0);
    }
}
