//! A rolling-window byte rate, as Kafka's `Rate` over a `SampledStat` with the
//! client-quota settings (quota.window.num = 11 samples of
//! quota.window.size.seconds = 1): the sum of the retained samples divided by
//! the time they span, counted as at least 10 windows. A sample whose last
//! event is 11 windows old is dropped. Two departures from Kafka, both so that
//! a client held to its quota moves at the quota (docs/operations.md,
//! "Quotas"): the span is `max(elapsed, 10 windows)` where Kafka pads to 10
//! whole windows plus the current partial one, and the throttle time accounts
//! for samples that age out before it ends. Owned by one shard.

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

    /// The samples still in the window at `t`: a sample goes when its last
    /// event is `SAMPLES` windows old (Kafka's `purgeObsoleteSamples`).
    fn live(&self, t: u64) -> impl Iterator<Item = &Sample> + '_ {
        self.samples[..self.used]
            .iter()
            .filter(move |s| t.saturating_sub(s.last_event_ms) < SAMPLES * WINDOW_MS)
    }

    /// (bytes retained at `t`, start of the oldest sample retained)
    fn retained(&self, t: u64) -> Option<(f64, u64)> {
        let oldest = self.live(t).map(|s| s.start_ms).min()?;
        Some((self.live(t).map(|s| s.value).sum(), oldest))
    }

    /// The span the rate divides by at `t`, in ms: from the oldest retained
    /// sample's start, at least `SAMPLES - 1` whole windows.
    pub fn window_ms(&self, t: u64) -> u64 {
        let oldest = self.retained(t).map_or(t, |(_, oldest)| oldest);
        t.saturating_sub(oldest).max((SAMPLES - 1) * WINDOW_MS)
    }

    /// Bytes per second over the window at `t`.
    pub fn measure(&self, t: u64) -> f64 {
        let total = self.retained(t).map_or(0.0, |(total, _)| total);
        total * 1000.0 / self.window_ms(t) as f64
    }

    /// Record `bytes` and return the throttle time in ms: 0 within `limit`
    /// bytes/s, else the time until the measured rate is back at `limit` if
    /// nothing more is recorded. Without a sample ageing out meanwhile that is
    /// Kafka's `(observed - limit) / limit * window`; a sample that ages out
    /// first shortens the window and its bytes leave it, and the time is
    /// computed on from there (Kafka's formula alone lets a client run about
    /// one window in ten over its quota).
    pub fn record_and_throttle(&mut self, bytes: f64, limit: f64, now_ms: u64) -> u64 {
        self.record(bytes, now_ms);
        if self.measure(now_ms) <= limit {
            return 0;
        }
        let mut t = now_ms;
        // Each turn lets at least one sample age out: at most SLOTS turns.
        for _ in 0..=SLOTS {
            let Some((total, oldest)) = self.retained(t) else {
                break;
            };
            let span_needed = (total * 1000.0 / limit).ceil().max(0.0) as u64;
            let due = if span_needed <= (SAMPLES - 1) * WINDOW_MS {
                t
            } else {
                t.max(oldest.saturating_add(span_needed))
            };
            let next_expiry = self
                .live(t)
                .map(|s| s.last_event_ms + SAMPLES * WINDOW_MS)
                .min()
                .unwrap_or(u64::MAX);
            if due < next_expiry {
                return due - now_ms;
            }
            t = next_expiry;
        }
        t - now_ms
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
        // 10 windows' worth at once is within the limit; more is not.
        assert_eq!(r.record_and_throttle(100.0, 10.0, t), 0);
        let throttle = r.record_and_throttle(10.0, 10.0, t + 1);
        // 110 bytes at 10 bytes/s span 11 s from the first: 10.999 s from here
        // (Kafka's padded window would grow meanwhile and say 1 s).
        assert_eq!(throttle, 10_999);
    }

    #[test]
    fn given_samples_ageing_out_when_throttled_should_wait_until_the_rate_is_back() {
        let mut r = Rate::new();
        // 5 bytes/s for 11 s, then a burst: the old samples leave the window
        // before the burst is paid off, so the wait is longer than Kafka's formula.
        for s in 0..11 {
            r.record(5.0, s * 1000);
        }
        let now = 11_000;
        let t = r.record_and_throttle(200.0, 10.0, now);
        assert!(r.measure(now + t) <= 10.0 + 1e-9, "{t}");
        assert!(r.measure(now + t - 1) > 10.0, "{t}");
    }

    #[test]
    fn given_a_steady_sender_when_it_obeys_throttles_should_average_the_limit() {
        // A sender 10x faster than its quota, obeying every throttle: any 10 s
        // from its start, and the long run, average the quota within 2%.
        let (mut r, limit) = (Rate::new(), 1000.0);
        let (mut now, start) = (5_000u64, 5_000u64);
        let mut sends = Vec::new();
        while now < start + 60_000 {
            let t = r.record_and_throttle(100.0, limit, now);
            sends.push(now);
            now += t.max(10);
        }
        let rate = |from: u64, to: u64| {
            let n = sends.iter().filter(|&&s| s >= from && s < to).count();
            n as f64 * 100.0 * 1000.0 / (to - from) as f64
        };
        for (from, to) in [(start, start + 10_000), (start, start + 60_000)] {
            let got = rate(from, to);
            assert!((got - limit).abs() / limit < 0.02, "{from}..{to}: {got}");
        }
    }

    #[test]
    fn given_an_idle_sensor_when_eleven_windows_pass_should_forget_old_samples() {
        let mut r = Rate::new();
        r.record(1000.0, 0);
        // 500 ms in: counted as 10 windows.
        assert!((r.measure(500) - 100.0).abs() < 1e-9);
        assert_eq!(r.measure(11_000), 0.0);
        r.record(-1000.0, 11_000);
        assert!(r.measure(11_001) <= 0.0);
    }
}
