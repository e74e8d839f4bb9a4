//! A scrape's view of one shard: `Collect` is a mesh task that runs on the shard
//! it is sent to and copies that shard's counters, its partitions' gauges and
//! its groups' committed offsets into a `ShardSnapshot` (plain `Send` data).
//! The shard that serves `/metrics` gathers one per shard and renders them
//! (`exposition.rs`); nothing is shared between shards while they run.

use std::rc::Rc;

use crate::handlers::ShardContext;
use crate::metrics::Buckets;
use crate::metrics::{self as counters, Flow, API_KEY_SLOTS};
use crate::shard::Task;

/// One partition's gauges and intake, from its owning shard.
#[derive(Clone, Debug)]
pub struct PartitionSample {
    pub topic: String,
    pub partition: i32,
    pub size_bytes: u64,
    pub segments: usize,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub bytes_in: u64,
    pub records_in: u64,
    /// The writer failed and the log waits to be reopened.
    pub failed: bool,
    pub reopen_failures: u32,
}

#[derive(Clone, Debug)]
pub struct ShardSnapshot {
    pub shard: usize,
    /// (API key, latency histogram) for every API this shard answered.
    pub requests: Vec<(i16, Buckets)>,
    /// ((API key, error code), count).
    pub errors: Vec<((i16, i16), u64)>,
    pub bytes_in: u64,
    pub records_in: u64,
    pub bytes_out: u64,
    pub records_out: u64,
    /// (topic, partition, what fetches answered here carried).
    pub out: Vec<(String, i32, Flow)>,
    pub fsync_latency_us: Buckets,
    pub group_commit_bytes: Buckets,
    pub syncfs_latency_us: Buckets,
    pub reads_cached: u64,
    pub reads_file: u64,
    pub fetch_wakeups: u64,
    pub read_ahead_started: u64,
    pub read_ahead_hits: u64,
    /// Sealed-segment descriptors held by the shard's cache, and its limit.
    pub open_segment_files: [u64; 2],
    pub connections: usize,
    pub in_flight: i64,
    /// Client-quota throttle time ordered, ms: [produce, fetch].
    pub throttle_ms: [u64; 2],
    /// Produce partitions past their backlog bound: [rejected, throttled].
    pub backlog: [u64; 2],
    pub timers: TimerSample,
    /// Envelopes queued towards each peer shard, and calls awaiting answers.
    pub mesh_queued: Vec<(usize, usize)>,
    pub mesh_pending_calls: usize,
    pub partitions: Vec<PartitionSample>,
    /// (group, topic, partition, committed offset) of the groups this shard coordinates.
    pub committed: Vec<(String, String, i32, i64)>,
}

/// The timer store (delayed delivery): records pending, records fired
/// (durably appended), lateness in ms and the part of it spent waiting for
/// the FIRE sync, produce parts refused when full.
#[derive(Clone, Debug)]
pub struct TimerSample {
    pub pending: u64,
    pub fired: u64,
    pub lateness_ms: Buckets,
    pub sync_wait_ms: Buckets,
    pub refused: u64,
}

impl TimerSample {
    fn of(on: &ShardContext, m: &counters::ShardCounters) -> Self {
        let store = on.timers();
        Self {
            pending: store.as_ref().map_or(0, |t| t.pending() as u64),
            fired: store.as_ref().map_or(0, |t| t.fired_total.get()),
            lateness_ms: m.timer_lateness_ms.snapshot(),
            sync_wait_ms: m.timer_sync_wait_ms.snapshot(),
            refused: m.timers_refused.get(),
        }
    }
}

/// Sent to every shard by a scrape.
pub struct Collect;

impl Task<ShardContext> for Collect {
    type Output = ShardSnapshot;

    async fn run(self, on: Rc<ShardContext>) -> ShardSnapshot {
        let mut snap = counters::with(|m| ShardSnapshot {
            shard: on.id,
            requests: (0..API_KEY_SLOTS)
                .filter(|&k| m.request_latency_us[k].count() > 0)
                .map(|k| (k as i16, m.request_latency_us[k].snapshot()))
                .collect(),
            errors: m.errors.borrow().iter().map(|(k, v)| (*k, *v)).collect(),
            bytes_in: m.bytes_in.get(),
            records_in: m.records_in.get(),
            bytes_out: m.bytes_out.get(),
            records_out: m.records_out.get(),
            out: m
                .out_by_partition
                .borrow()
                .iter()
                .flat_map(|(t, parts)| parts.iter().map(move |(p, f)| (t.clone(), *p, *f)))
                .collect(),
            fsync_latency_us: m.fsync_latency_us.snapshot(),
            group_commit_bytes: m.group_commit_bytes.snapshot(),
            syncfs_latency_us: m.syncfs_latency_us.snapshot(),
            reads_cached: m.reads_cached.get(),
            reads_file: m.reads_file.get(),
            fetch_wakeups: m.fetch_wakeups.get(),
            read_ahead_started: m.read_ahead_started.get(),
            read_ahead_hits: m.read_ahead_hits.get(),
            open_segment_files: [m.open_segment_files[0].get(), m.open_segment_files[1].get()],
            connections: on.connections.get(),
            in_flight: m.in_flight.get(),
            throttle_ms: [m.throttle_ms[0].get(), m.throttle_ms[1].get()],
            backlog: [m.backlog[0].get(), m.backlog[1].get()],
            timers: TimerSample::of(&on, m),
            mesh_queued: Vec::new(),
            mesh_pending_calls: 0,
            partitions: Vec::new(),
            committed: Vec::new(),
        });
        let (queued, pending) = on.mesh.depths();
        snap.mesh_queued = queued
            .into_iter()
            .enumerate()
            .filter_map(|(peer, q)| q.map(|q| (peer, q)))
            .collect();
        snap.mesh_pending_calls = pending;
        snap.partitions = on
            .partitions
            .named()
            .into_iter()
            .map(|(topic, partition, log)| {
                let (reopen_failures, _) = on.partitions.reopen_state(&topic, partition);
                PartitionSample {
                    size_bytes: log.size_bytes(),
                    segments: log.segment_count(),
                    high_watermark: log.log_end_offset().0,
                    log_start_offset: log.log_start_offset().0,
                    bytes_in: log.stats.bytes_in.get(),
                    records_in: log.stats.records_in.get(),
                    failed: log.failure().is_some(),
                    reopen_failures,
                    topic,
                    partition,
                }
            })
            .collect();
        snap.committed = on.groups().map(|g| g.committed_offsets()).unwrap_or_default();
        snap
    }
}
