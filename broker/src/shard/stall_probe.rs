//! Stall diagnosis, off unless `WEIR_STALL_MS` is set (a threshold in ms; issue 13).
//! Two instruments per shard:
//! - glommio's stall detector: a task queue that runs past the preempt timer plus the
//!   threshold is interrupted by a signal and its backtrace logged (`StallLog`), which
//!   names the task that kept the executor busy;
//! - a lag probe task that sleeps 1 ms in a loop and, when it wakes more than the
//!   threshold late, logs how the late interval was spent, read from the thread's
//!   scheduler statistics (`/proc/thread-self/schedstat`): running on the CPU (Weir's
//!   own work on the executor), waiting on the run queue (preempted by other threads:
//!   not Weir's), or neither (blocked: a blocking syscall or a late reactor wake-up).
//!
//! Each shard owns its probe (runs on the shard's executor, `!Send` state). The probe
//! costs one timer and one `pread` per millisecond, so it stays off by default.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// The environment variable naming the threshold in milliseconds.
pub const ENV: &str = "WEIR_STALL_MS";
/// How often the lag probe wakes.
const TICK: Duration = Duration::from_millis(1);

/// The threshold from `WEIR_STALL_MS`, when set to a positive number.
pub fn threshold() -> Option<Duration> {
    let ms: u64 = std::env::var(ENV).ok()?.trim().parse().ok()?;
    (ms > 0).then(|| Duration::from_millis(ms))
}

/// glommio's stall handler with our threshold. Its report (queue, overage, the
/// backtrace) is resolved to symbols and logged on the `weir-stall-log`
/// thread, never on the executor: resolving on the executor (glommio's own
/// way) put the instrument's cost into the stalls it measured. In a debug
/// build, two shards' reports resolving at once held one shard blocked
/// 3.2 s on the symbolizer's lock while the other spent 0.97 s on the CPU
/// decompressing line tables (perf, 2026-12-03).
#[derive(Debug)]
pub struct StallLog {
    pub threshold: Duration,
}

/// A stall report on its way to the resolving thread.
struct Report {
    executor: usize,
    queue: String,
    budget: Duration,
    overage: Duration,
    trace: backtrace::Backtrace,
}

/// Reports waiting to be resolved; past this many, more are dropped (counted
/// in the next logged report).
const REPORTS_QUEUED_MAX: usize = 64;
/// Reports dropped since the last one logged.
static DROPPED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The resolving thread's queue, started with the first report.
fn resolver() -> &'static std::sync::mpsc::SyncSender<Report> {
    static RESOLVER: std::sync::OnceLock<std::sync::mpsc::SyncSender<Report>> = std::sync::OnceLock::new();
    RESOLVER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Report>(REPORTS_QUEUED_MAX);
        let spawned = std::thread::Builder::new()
            .name("weir-stall-log".into())
            .spawn(move || {
                for mut r in rx {
                    let started = Instant::now();
                    r.trace.resolve();
                    let dropped = DROPPED.swap(0, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(
                        target: "glommio::executor::stall",
                        executor = r.executor,
                        queue = %r.queue,
                        overage_us = r.overage.as_micros() as u64,
                        budget_us = r.budget.as_micros() as u64,
                        resolve_us = started.elapsed().as_micros() as u64,
                        dropped,
                        "task queue went over budget; backtrace:\n{:?}",
                        r.trace
                    );
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "stall log: no resolving thread; reports are dropped");
        }
        tx
    })
}

impl glommio::StallDetectionHandler for StallLog {
    fn threshold(&self, _: glommio::TaskQueueHandle, _: Duration) -> Option<Duration> {
        Some(self.threshold)
    }

    fn stall(&self, detection: glommio::StallDetection<'_>) {
        let report = Report {
            executor: detection.executor(),
            queue: detection.queue_name().to_string(),
            budget: detection.budget(),
            overage: detection.overage(),
            trace: detection.into_trace(),
        };
        if resolver().try_send(report).is_err() {
            DROPPED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Where a late interval went, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub on_cpu_ns: u64,
    pub run_queue_ns: u64,
    pub blocked_ns: u64,
}

impl Split {
    /// `wall` split by the deltas of the thread's CPU time and run-queue wait; what
    /// neither explains was spent blocked (or asleep past the deadline).
    pub fn of(wall_ns: u64, on_cpu_ns: u64, run_queue_ns: u64) -> Self {
        Self {
            on_cpu_ns,
            run_queue_ns,
            blocked_ns: wall_ns.saturating_sub(on_cpu_ns + run_queue_ns),
        }
    }

    /// Whose stall it was: preemption when waiting for the CPU dominates.
    pub fn cause(&self) -> &'static str {
        let max = self.on_cpu_ns.max(self.run_queue_ns).max(self.blocked_ns);
        if max == self.run_queue_ns {
            "preempted"
        } else if max == self.on_cpu_ns {
            "busy"
        } else {
            "blocked"
        }
    }
}

/// Parse `/proc/<tid>/schedstat`: "<ns on cpu> <ns waiting on a run queue> <slices>".
pub fn parse_schedstat(text: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(text).ok()?;
    let mut fields = text.split_ascii_whitespace().map(str::parse::<u64>);
    Some((fields.next()?.ok()?, fields.next()?.ok()?))
}

struct SchedStat {
    file: std::fs::File,
}

impl SchedStat {
    fn open() -> Option<Self> {
        std::fs::File::open("/proc/thread-self/schedstat")
            .ok()
            .map(|file| Self { file })
    }

    /// One `pread` of a procfs file: no disk, microseconds.
    fn read(&self) -> Option<(u64, u64)> {
        let mut buf = [0u8; 96];
        // SAFETY: `buf` is ours and writable for its length; the fd is open.
        let n = unsafe { libc::pread(self.file.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        let n = usize::try_from(n).ok()?;
        parse_schedstat(&buf[..n])
    }
}

/// Run until `stop` resolves (`glommio::spawn_local` it on each shard).
pub async fn run(shard: usize, threshold: Duration, stop: event_listener::EventListener) {
    let probe = async {
        // Opened on the shard's thread: "thread-self" is the executor thread.
        let Some(stat) = SchedStat::open() else {
            tracing::warn!(shard, "stall probe: no /proc/thread-self/schedstat; off");
            return;
        };
        let (mut counts, mut worst) = ([0u64; 3], Duration::ZERO);
        let mut last = (Instant::now(), stat.read().unwrap_or_default());
        loop {
            let due = Instant::now() + TICK;
            glommio::timer::sleep(TICK).await;
            let now = Instant::now();
            let Some(sample) = stat.read() else { return };
            let late = now.saturating_duration_since(due);
            if late > threshold {
                let wall = now.duration_since(last.0).as_nanos() as u64;
                let split = Split::of(wall, sample.0 - last.1 .0, sample.1 - last.1 .1);
                let cause = split.cause();
                counts[["busy", "preempted", "blocked"]
                    .iter()
                    .position(|c| *c == cause)
                    .unwrap_or(2)] += 1;
                worst = worst.max(late);
                tracing::warn!(
                    shard,
                    late_us = late.as_micros() as u64,
                    on_cpu_us = split.on_cpu_ns / 1_000,
                    run_queue_us = split.run_queue_ns / 1_000,
                    blocked_us = split.blocked_ns / 1_000,
                    cause,
                    busy = counts[0],
                    preempted = counts[1],
                    blocked = counts[2],
                    worst_us = worst.as_micros() as u64,
                    "stall probe: shard woke late"
                );
            }
            last = (now, sample);
        }
    };
    futures_lite::future::or(probe, stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_schedstat_text_should_read_cpu_and_run_queue_ns() {
        assert_eq!(parse_schedstat(b"123 456 7\n"), Some((123, 456)));
        assert_eq!(parse_schedstat(b"123\n"), None);
        assert_eq!(parse_schedstat(b"x 1 2"), None);
    }

    #[test]
    fn given_a_late_interval_should_blame_what_took_most_of_it() {
        assert_eq!(Split::of(10_000, 8_000, 1_000).cause(), "busy");
        assert_eq!(Split::of(10_000, 1_000, 8_000).cause(), "preempted");
        let blocked = Split::of(10_000, 1_000, 1_000);
        assert_eq!((blocked.blocked_ns, blocked.cause()), (8_000, "blocked"));
    }
}
