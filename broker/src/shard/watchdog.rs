//! The shard watchdog: every shard ticks a heartbeat from its executor (the
//! a task of its own, every `HEARTBEAT_INTERVAL_MS`); one plain thread, outside
//! every executor, checks the heartbeats. A shard silent for more than
//! `STALL_MS` is logged as an error with its last tick, counted, and nudged:
//! a message on its nudge channel wakes its executor from another thread, the
//! same path a mesh message takes. A shard that is merely busy (a long task
//! that never yields) is reported the same way, which is worth knowing too.
//!
//! Shared state is atomics only; the watchdog thread never touches shard state.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a healthy shard ticks.
pub const HEARTBEAT_INTERVAL_MS: u64 = 50;
/// Silence after which a shard counts as stalled.
pub const STALL_MS: u64 = 1_000;
/// How often the watchdog thread looks.
const CHECK_INTERVAL_MS: u64 = 100;
const _: () = assert!(
    HEARTBEAT_INTERVAL_MS * 4 <= STALL_MS,
    "a healthy shard must tick several times per stall window"
);

/// Heartbeats and stall counters of every shard, shared by the shards (write their
/// own slot) and the watchdog thread (reads all).
pub struct Heartbeats {
    started: Instant,
    /// Milliseconds since `started` of each shard's last tick.
    last_tick_ms: Vec<AtomicU64>,
    /// Stalls seen since start, per shard (for the metrics endpoint to export).
    stalls: Vec<AtomicU64>,
    nudges: Vec<flume::Sender<()>>,
    stop: AtomicBool,
    /// Per shard: partitions open and listening, not yet stopping (`/health`).
    ready: Vec<AtomicBool>,
}

/// A shard's end of its nudge channel: a task awaiting it is all a nudge needs.
pub type NudgeReceiver = flume::Receiver<()>;

impl Heartbeats {
    pub fn new(shard_count: usize) -> (Arc<Self>, Vec<NudgeReceiver>) {
        let (nudges, receivers): (Vec<_>, Vec<_>) = (0..shard_count).map(|_| flume::bounded(1)).unzip();
        let beats = Arc::new(Self {
            started: Instant::now(),
            last_tick_ms: (0..shard_count).map(|_| AtomicU64::new(0)).collect(),
            stalls: (0..shard_count).map(|_| AtomicU64::new(0)).collect(),
            nudges,
            stop: AtomicBool::new(false),
            ready: (0..shard_count).map(|_| AtomicBool::new(false)).collect(),
        });
        (beats, receivers)
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Called by shard `shard` on its own executor.
    pub fn tick(&self, shard: usize) {
        self.last_tick_ms[shard].store(self.now_ms(), Ordering::Relaxed);
    }

    /// Shard `shard` has stopped on purpose: its silence is no stall.
    pub fn retire(&self, shard: usize) {
        // now - MAX saturates to 0 ms of silence.
        self.last_tick_ms[shard].store(u64::MAX, Ordering::Relaxed);
    }

    /// Stalls seen so far on `shard`.
    pub fn stall_count(&self, shard: usize) -> u64 {
        self.stalls[shard].load(Ordering::Relaxed)
    }

    /// Stalls seen so far, per shard.
    pub fn stall_counts(&self) -> Vec<u64> {
        self.stalls.iter().map(|s| s.load(Ordering::Relaxed)).collect()
    }

    /// Shard `shard` serves (or, with `false`, has begun to stop).
    pub fn set_ready(&self, shard: usize, ready: bool) {
        self.ready[shard].store(ready, Ordering::Relaxed);
    }

    pub fn readiness(&self) -> Vec<bool> {
        self.ready.iter().map(|r| r.load(Ordering::Relaxed)).collect()
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// One look at every shard; `stalled[i]` remembers an ongoing stall so each
    /// is logged and counted once, and its end is logged too.
    fn check(&self, stalled: &mut [bool]) {
        let now_ms = self.now_ms();
        for (shard, last) in self.last_tick_ms.iter().enumerate() {
            let last_ms = last.load(Ordering::Relaxed);
            let silent_ms = now_ms.saturating_sub(last_ms);
            if silent_ms > STALL_MS {
                if !stalled[shard] {
                    stalled[shard] = true;
                    self.stalls[shard].fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        shard,
                        silent_ms,
                        last_tick_ms = last_ms,
                        "shard stalled: no heartbeat for over {STALL_MS} ms; nudging its executor"
                    );
                }
                // Full means a nudge is already waiting to be seen: one is enough.
                let _ = self.nudges[shard].try_send(());
            } else if stalled[shard] {
                stalled[shard] = false;
                tracing::warn!(shard, "shard ticking again after a stall");
            }
        }
    }
}

/// Start the watchdog thread. It ends after `Heartbeats::stop`.
pub fn spawn(beats: Arc<Heartbeats>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("weir-watchdog".into())
        .spawn(move || {
            let mut stalled = vec![false; beats.last_tick_ms.len()];
            // Shards start ticking once they are up; give start-up the first window.
            for last in &beats.last_tick_ms {
                last.store(beats.now_ms(), Ordering::Relaxed);
            }
            while !beats.stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(CHECK_INTERVAL_MS));
                beats.check(&mut stalled);
            }
        })
}

/// On shard `shard`'s executor, first thing: the heartbeat task (so start-up,
/// which can take a while, ticks too) and the task a nudge wakes (waking is its
/// whole job). Both end with the executor.
pub fn start_on_shard(shard: usize, beats: Arc<Heartbeats>, nudges: NudgeReceiver) {
    glommio::spawn_local(async move {
        loop {
            beats.tick(shard);
            glommio::timer::sleep(Duration::from_millis(HEARTBEAT_INTERVAL_MS)).await;
        }
    })
    .detach();
    glommio::spawn_local(async move { while nudges.recv_async().await.is_ok() {} }).detach();
    if let Some(after_ms) = injected_panic_ms(shard) {
        glommio::spawn_local(async move {
            glommio::timer::sleep(Duration::from_millis(after_ms)).await;
            tracing::warn!(shard, "fault injection: panicking on this shard's executor");
            panic!("fault injection: WEIR_FAULT_PANIC_SHARD={shard}");
        })
        .detach();
    }
    if let Some(stall_ms) = injected_stall_ms(shard) {
        glommio::spawn_local(async move {
            glommio::timer::sleep(Duration::from_secs(1)).await;
            tracing::warn!(shard, stall_ms, "fault injection: blocking this shard's executor");
            // Deliberately blocking: the stall the watchdog must report.
            std::thread::sleep(Duration::from_millis(stall_ms));
        })
        .detach();
    }
}

/// Fault injection for the end-to-end tests, never set in production; both variables
/// read `<shard>:<ms>` and act on that shard's executor once:
/// - `WEIR_FAULT_STALL_SHARD` blocks it for `ms`, 1 s after start (the watchdog's test);
/// - `WEIR_FAULT_PANIC_SHARD` panics it `ms` after start (a shard's death: `server.rs`,
///   `abort_on_panic`).
fn injected_stall_ms(shard: usize) -> Option<u64> {
    injected_ms("WEIR_FAULT_STALL_SHARD", shard)
}

fn injected_panic_ms(shard: usize) -> Option<u64> {
    injected_ms("WEIR_FAULT_PANIC_SHARD", shard)
}

/// The milliseconds of fault `var` if it names `shard`.
fn injected_ms(var: &str, shard: usize) -> Option<u64> {
    let spec = std::env::var(var).ok()?;
    let (which, ms) = spec.split_once(':')?;
    (which.parse::<usize>().ok()? == shard).then_some(())?;
    ms.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_silent_shard_when_checked_should_count_one_stall_and_nudge_it() {
        let (beats, rx) = Heartbeats::new(2);
        let mut stalled = vec![false; 2];
        beats.tick(0);
        beats.tick(1);
        beats.check(&mut stalled);
        assert_eq!((beats.stall_count(0), beats.stall_count(1)), (0, 0));
        std::thread::sleep(Duration::from_millis(STALL_MS + 100));
        beats.tick(0);
        beats.check(&mut stalled);
        beats.check(&mut stalled);
        assert_eq!(beats.stall_count(0), 0, "shard 0 ticked");
        assert_eq!(beats.stall_count(1), 1, "one stall, counted once");
        assert!(rx[1].try_recv().is_ok(), "the stalled shard was nudged");
        assert!(rx[0].try_recv().is_err(), "the healthy one was not");
        beats.tick(1);
        beats.check(&mut stalled);
        assert!(!stalled[1], "the stall ended with the tick");
    }
}
