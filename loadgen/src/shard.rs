//! One shard: a pinned glommio executor running this shard's producer and
//! consumer tasks over its own connections, and a ticker that ships one
//! `Interval` of measurements to the main thread per second.
//!
//! `ShardCtx` is shard-local (Rc/RefCell, never crosses threads); `Shared` is
//! the only cross-shard state: atomics and a first-failure slot. Nothing here
//! blocks the executor: the channel to the main thread is used with try_send.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::ApiKey;

use crate::cli::RunConfig;
use crate::client::cluster::Cluster;
use crate::client::conn::Connection;
use crate::client::ClientError;
use crate::stats::Interval;

/// Wall-clock nanoseconds since the Unix epoch: comparable across shards and
/// processes on one machine, which end-to-end stamps need.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// State every shard sees.
#[derive(Debug, Default)]
pub struct Shared {
    pub acked_records: AtomicU64,
    pub consumed_records: AtomicU64,
    pub producers_running: AtomicUsize,
    /// When the last producer / consumer finished (wall ns): throughput
    /// denominators, so an e2e drain does not dilute produce throughput.
    pub produce_end_ns: AtomicU64,
    pub consume_end_ns: AtomicU64,
    stop: AtomicBool,
    failure: Mutex<Option<String>>,
}

impl Shared {
    /// Record the first fatal error and stop every shard.
    pub fn fail(&self, message: String) {
        let mut slot = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(message);
        }
        self.stop.store(true, Ordering::Release);
    }

    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    pub fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// What a shard tells the main thread.
#[derive(Debug)]
pub enum ShardMsg {
    Interval { shard: usize, interval: Box<Interval> },
    Done { shard: usize },
}

/// The partitions of one producer or consumer task.
#[derive(Debug, Clone)]
pub struct TaskPlan {
    pub index: usize,
    pub partitions: Vec<i32>,
    /// Consumers: first offset to fetch, per partition (same order).
    pub start_offsets: Vec<i64>,
    /// Consumers with --to-end: stop when reaching these.
    pub end_offsets: Vec<i64>,
}

/// Everything a shard is given at start.
#[derive(Debug, Clone)]
pub struct ShardPlan {
    pub shard: usize,
    pub producers: Vec<TaskPlan>,
    pub consumers: Vec<TaskPlan>,
}

/// Shard-local context shared by its tasks.
pub struct ShardCtx {
    pub shard: usize,
    pub cfg: RunConfig,
    pub cluster: Cluster,
    pub shared: Arc<Shared>,
    pub run_start_ns: u64,
    /// Producer connections, one per broker, shared by this shard's producers.
    /// Consumers open their own: a broker serves a connection's requests in
    /// order, so a long-polling Fetch would stall Produce answers behind it.
    pub conns: BTreeMap<i32, Connection>,
    pub stats: RefCell<Interval>,
    /// Produce requests sent and not yet settled (acked, failed, or given up).
    pub outstanding: Cell<usize>,
}

impl ShardCtx {
    pub fn conn_for(&self, partition: i32) -> &Connection {
        &self.conns[&self.cluster.leader(partition)]
    }

    /// The run's end (wall ns), if bounded by time: warmup plus duration.
    pub fn end_ns(&self) -> Option<u64> {
        self.cfg
            .duration_ms
            .map(|d| self.run_start_ns + (self.cfg.warmup_ms + d) * 1_000_000)
    }
}

/// Connect to every broker that leads a partition of `tasks`.
pub async fn connect_all(
    cfg: &RunConfig,
    cluster: &Cluster,
    tasks: &[TaskPlan],
) -> Result<BTreeMap<i32, Connection>, ClientError> {
    let mut conns = BTreeMap::new();
    let timeout = Duration::from_millis(cfg.request_timeout_ms);
    for task in tasks {
        for &p in &task.partitions {
            let leader = cluster.leader(p);
            if conns.contains_key(&leader) {
                continue;
            }
            let conn = Connection::connect(&cluster.brokers[&leader], timeout, cfg.max_in_flight).await?;
            if !cluster.topic().has_topic_id() {
                // Without a topic id, only name-based versions can address it.
                conn.cap_version(ApiKey::Produce, 12);
                conn.cap_version(ApiKey::Fetch, 12);
            }
            conns.insert(leader, conn);
        }
    }
    Ok(conns)
}

/// The body of one shard's executor.
pub async fn shard_main(
    cfg: RunConfig,
    cluster: Cluster,
    plan: ShardPlan,
    shared: Arc<Shared>,
    run_start_ns: u64,
    tx: SyncSender<ShardMsg>,
) {
    let conns = match connect_all(&cfg, &cluster, &plan.producers).await {
        Ok(c) => c,
        Err(e) => {
            shared.fail(format!("shard {}: {e}", plan.shard));
            let _ = tx.try_send(ShardMsg::Done { shard: plan.shard });
            return;
        }
    };
    let ctx = Rc::new(ShardCtx {
        shard: plan.shard,
        cfg,
        cluster,
        shared,
        run_start_ns,
        conns,
        stats: RefCell::new(Interval::new(0)),
        outstanding: Cell::new(0),
    });
    glommio::spawn_local(ticker(ctx.clone(), tx.clone())).detach();
    let mut tasks = Vec::new();
    for p in plan.producers {
        tasks.push(glommio::spawn_local(crate::producer::run_producer(
            ctx.clone(),
            p,
        )));
    }
    for c in plan.consumers {
        tasks.push(glommio::spawn_local(crate::consumer::run_consumer(
            ctx.clone(),
            c,
        )));
    }
    for t in tasks {
        t.await;
    }
    let last = ctx.stats.replace(Interval::new(0));
    send_interval(&ctx, &tx, last);
    let _ = tx.try_send(ShardMsg::Done { shard: ctx.shard });
}

/// Ship the current interval at every whole second since the run start.
async fn ticker(ctx: Rc<ShardCtx>, tx: SyncSender<ShardMsg>) {
    let mut second = 0u64;
    loop {
        let target_ns = ctx.run_start_ns + (second + 1) * 1_000_000_000;
        let now = now_ns();
        if target_ns > now {
            glommio::timer::sleep(Duration::from_nanos(target_ns - now)).await;
        }
        second += 1;
        let done = ctx.stats.replace(Interval::new(second));
        send_interval(&ctx, &tx, done);
    }
}

/// Never block: if the main thread lags, fold the interval back in.
fn send_interval(ctx: &ShardCtx, tx: &SyncSender<ShardMsg>, interval: Interval) {
    let msg = ShardMsg::Interval {
        shard: ctx.shard,
        interval: Box::new(interval),
    };
    if let Err(TrySendError::Full(ShardMsg::Interval { interval, .. })) = tx.try_send(msg) {
        ctx.stats.borrow_mut().merge(&interval);
    }
}
