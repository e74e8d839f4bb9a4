//! The run: bootstrap on a temporary executor, plan tasks onto shards, start
//! one pinned executor per shard, aggregate their per-second intervals on the
//! main thread (live progress), and assemble the final `Report`.
//!
//! The main thread never touches a shard's state: it only receives intervals
//! through a bounded channel and reads `Shared` atomics.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::{LocalExecutorBuilder, Placement};

use crate::cli::{Keys, Mode, RunConfig, StartFrom};
use crate::client::cluster::{bootstrap_all, list_offsets, topic_names, Cluster, EARLIEST, LATEST};
use crate::client::conn::Connection;
use crate::client::ClientError;
use crate::machine::{cpu_seconds, Machine};
use crate::report::{Aggregate, Report, Window};
use crate::shard::{now_ns, shard_main, ShardMsg, ShardPlan, Shared, TaskPlan};
use crate::stats::Interval;

/// Intervals the main thread may lag behind by before shards fold them.
const CHANNEL_INTERVALS_MAX: usize = 4096;
/// Leave this long after start for shards to connect before the clock starts.
const START_DELAY_MS: u64 = 200;
/// The main thread gives up on shards that neither report nor finish: the
/// run's own length plus this (connect/request timeouts are far shorter).
const SHARD_SILENCE_MS_MAX: u64 = 60_000;

/// Why a run could not complete.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Client(#[from] ClientError),
    #[error("cannot start shard executor: {0}")]
    Executor(String),
}

/// Run the generator; returns the report (also when records failed: the
/// caller decides the exit code from `report.failed()`).
pub fn run(cfg: RunConfig) -> Result<Report, RunError> {
    let cpu_start = cpu_seconds();
    let (cluster, offsets) = bootstrap_blocking(&cfg)?;
    let plans = plan(&cfg, &cluster, &offsets);
    let shared = Arc::new(Shared::default());
    shared.producers_running.store(cfg.producers, Ordering::Release);
    let (tx, rx) = sync_channel::<ShardMsg>(CHANNEL_INTERVALS_MAX);
    let run_start_ns = now_ns() + START_DELAY_MS * 1_000_000;
    let mut handles = Vec::new();
    for shard_plan in plans {
        let (cfg2, cluster2, shared2, tx2) = (cfg.clone(), cluster.clone(), shared.clone(), tx.clone());
        let shard = shard_plan.shard;
        let handle = LocalExecutorBuilder::new(Placement::Fixed(crate::machine::allowed_cpu(shard)))
            .name(&format!("loadgen-{shard}"))
            .spawn(move || shard_main(cfg2, cluster2, shard_plan, shared2, run_start_ns, tx2))
            .map_err(|e| RunError::Executor(e.to_string()))?;
        handles.push(handle);
    }
    drop(tx);
    let aggregate = aggregate(&cfg, &shared, &rx, handles.len());
    for h in handles {
        let _ = h.join();
    }
    let end_ns = now_ns();
    let cpu_used = cpu_seconds() - cpu_start;
    let window = Window {
        run_start_ns,
        produce_end_ns: shared.produce_end_ns.load(Ordering::Acquire),
        consume_end_ns: shared.consume_end_ns.load(Ordering::Acquire),
        end_ns,
        interrupted_by: crate::signals::received(),
    };
    let mut report = Report::build(&cfg, &cluster, Machine::probe(), aggregate, window, cpu_used);
    // A run that failed midway (a broker gone, a fatal error) still reports
    // what it measured until then; the caller writes it, then fails.
    report.failed_with = shared.failure();
    Ok(report)
}

/// Per partition: (first offset to fetch, end offset at start).
pub type StartOffsets = BTreeMap<i32, (i64, i64)>;

/// Bootstrap and (for consumers) offsets, on a throwaway executor.
fn bootstrap_blocking(cfg: &RunConfig) -> Result<(Cluster, StartOffsets), RunError> {
    let cfg = cfg.clone();
    let handle = LocalExecutorBuilder::new(Placement::Unbound)
        .name("loadgen-bootstrap")
        .spawn(move || async move { bootstrap_async(&cfg).await })
        .map_err(|e| RunError::Executor(e.to_string()))?;
    let result = handle.join().map_err(|e| RunError::Executor(e.to_string()))?;
    Ok(result?)
}

async fn bootstrap_async(cfg: &RunConfig) -> Result<(Cluster, StartOffsets), ClientError> {
    let timeout = Duration::from_millis(cfg.request_timeout_ms);
    let conn = Connection::connect(&cfg.bootstrap, timeout, 1).await?;
    let create = cfg.create.then_some(cfg.partitions);
    let names = topic_names(&cfg.topic, cfg.topics);
    let cluster = bootstrap_all(&conn, &names, create).await?;
    let mut offsets = BTreeMap::new();
    if cfg.consumers == 0 {
        return Ok((cluster, offsets));
    }
    for (&broker, addr) in &cluster.brokers {
        let led: Vec<i32> = cluster
            .topic()
            .partitions
            .iter()
            .filter(|p| p.leader == broker)
            .map(|p| p.index)
            .collect();
        if led.is_empty() {
            continue;
        }
        let leader = Connection::connect(addr, timeout, 1).await?;
        let start_ts = if cfg.from == StartFrom::Earliest {
            EARLIEST
        } else {
            LATEST
        };
        let (topic, isolation) = (&cluster.topic().name, cfg.isolation.wire());
        let starts = list_offsets(&leader, topic, &led, start_ts, isolation).await?;
        let ends = list_offsets(&leader, topic, &led, LATEST, isolation).await?;
        for ((p, start), (_, end)) in starts.into_iter().zip(ends) {
            offsets.insert(p, (start, end));
        }
    }
    Ok((cluster, offsets))
}

/// Assign producers and consumers to shards round-robin, and partitions to
/// tasks: disjoint subsets when possible; with keys every producer covers all
/// partitions so a key always maps to the same partition.
pub fn plan(cfg: &RunConfig, cluster: &Cluster, offsets: &StartOffsets) -> Vec<ShardPlan> {
    let n = cluster.slots.len();
    let mut plans: Vec<ShardPlan> = (0..cfg.threads)
        .map(|shard| ShardPlan {
            shard,
            producers: Vec::new(),
            consumers: Vec::new(),
        })
        .collect();
    for index in 0..cfg.producers {
        let partitions: Vec<i32> = match cfg.keys {
            Keys::Uniform(_) => (0..n as i32).collect(),
            Keys::None if cfg.producers <= n => (index..n).step_by(cfg.producers).map(|p| p as i32).collect(),
            Keys::None => vec![(index % n) as i32],
        };
        plans[index % cfg.threads].producers.push(TaskPlan {
            index,
            partitions,
            start_offsets: Vec::new(),
            end_offsets: Vec::new(),
        });
    }
    for index in 0..cfg.consumers.min(n) {
        let partitions: Vec<i32> = (index..n)
            .step_by(cfg.consumers.min(n))
            .map(|p| p as i32)
            .collect();
        let start_offsets = partitions
            .iter()
            .map(|p| offsets.get(p).map_or(0, |o| o.0))
            .collect();
        let end_offsets = if cfg.to_end {
            partitions
                .iter()
                .map(|p| offsets.get(p).map_or(0, |o| o.1))
                .collect()
        } else {
            Vec::new()
        };
        plans[index % cfg.threads].consumers.push(TaskPlan {
            index,
            partitions,
            start_offsets,
            end_offsets,
        });
    }
    plans
}

/// Which seconds every shard has reported (or finished before).
struct Progress {
    last_second: Vec<Option<u64>>,
    done: Vec<bool>,
}

impl Progress {
    fn complete(&self, second: u64) -> bool {
        (0..self.done.len()).all(|i| self.done[i] || self.last_second[i].is_some_and(|l| l >= second))
    }
}

/// Receive intervals until every shard is done; merge each second over the
/// shards, fold it into the aggregate once complete, and print progress.
fn aggregate(cfg: &RunConfig, shared: &Shared, rx: &Receiver<ShardMsg>, shards: usize) -> Aggregate {
    let mut agg = Aggregate::new(cfg.warmup_ms);
    let mut pending: BTreeMap<u64, Interval> = BTreeMap::new();
    let mut seen = Progress {
        last_second: vec![None; shards],
        done: vec![false; shards],
    };
    let tty = std::io::stderr().is_terminal();
    let mut last_heard = Instant::now();
    let silence_ms = cfg.duration_ms.unwrap_or(0) + cfg.warmup_ms + SHARD_SILENCE_MS_MAX;
    while seen.done.iter().any(|d| !d) {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(ShardMsg::Interval { shard, interval }) => {
                last_heard = Instant::now();
                let second = interval.second;
                seen.last_second[shard] = Some(seen.last_second[shard].map_or(second, |l| l.max(second)));
                pending
                    .entry(second)
                    .or_insert_with(|| Interval::new(second))
                    .merge(&interval);
            }
            Ok(ShardMsg::Done { shard }) => seen.done[shard] = true,
            Err(RecvTimeoutError::Timeout) => {
                if last_heard.elapsed() > Duration::from_millis(silence_ms) {
                    shared.fail("shards stopped reporting (hung?)".to_string());
                    break;
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if crate::signals::received().is_some() && !shared.stopped() {
            // Shards see the stop flag at their next batch or fetch, send
            // what they measured and finish: the report covers it.
            shared.request_stop();
        }
        while let Some(entry) = pending.first_entry() {
            if !seen.complete(*entry.key()) {
                break;
            }
            let iv = entry.remove();
            agg.add_second(&iv);
            if !cfg.quiet {
                progress(&iv, &agg.all, cfg, tty);
            }
        }
    }
    for iv in pending.into_values() {
        agg.add_second(&iv);
    }
    if tty && !cfg.quiet {
        eprintln!();
    }
    agg
}

/// One line: this second's rates, and p99 over the run so far.
fn progress(iv: &Interval, so_far: &Interval, cfg: &RunConfig, tty: bool) {
    let p99_ms = |h: &hdrhistogram::Histogram<u64>| {
        if h.is_empty() {
            "-".to_string()
        } else {
            format!("{:.2}", h.value_at_quantile(0.99) as f64 / 1e3)
        }
    };
    let warm = if iv.second < cfg.warmup_ms.div_ceil(1000) {
        " (warmup)"
    } else {
        ""
    };
    let line = format!(
        "[{:>4}s] produced {:>9} rec/s {:>8.1} payload MB/s p99 so far {:>7} ms | consumed {:>9} rec/s {:>8.1} payload MB/s e2e p99 so far {:>7} ms | errors {}{}",
        iv.second,
        iv.acked_records,
        iv.acked_payload_bytes as f64 / 1e6,
        p99_ms(&so_far.produce_record_us),
        iv.consumed_records,
        iv.consumed_payload_bytes as f64 / 1e6,
        p99_ms(&so_far.e2e_us),
        iv.errors.values().sum::<u64>(),
        warm,
    );
    let mut err = std::io::stderr().lock();
    if tty {
        let _ = write!(err, "\r\x1b[2K{line}");
    } else {
        let _ = writeln!(err, "{line}");
    }
    let _ = err.flush();
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Produce => "produce",
            Mode::Consume => "consume",
            Mode::E2e => "e2e",
        }
    }
}
