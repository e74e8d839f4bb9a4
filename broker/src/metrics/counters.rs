//! One shard's counters, kept in a thread-local: a shard is one executor thread,
//! so thread-local is shard-local. The hot path pays a TLS access and a `Cell`
//! add per request or batch, never per record, and takes no lock. Only the
//! shard's own executor writes them; a scrape reads them through a mesh task that
//! runs on that shard (`snapshot.rs`), so there is nothing to synchronise.
//! Counters only grow; a partition's share lives with its log (`PartitionStats`)
//! and, for reads, here by name, because the shard that answers a fetch is the
//! one that knows what the client finally got.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use super::histogram::{Histogram, LATENCY_US, LATENESS_MS, SIZE_BYTES};

/// Kafka's API keys stay below this; a larger one is counted under the last slot.
pub const API_KEY_SLOTS: usize = 128;

/// Bytes and records a partition took in or gave out.
#[derive(Default, Clone, Copy, Debug)]
pub struct Flow {
    pub bytes: u64,
    pub records: u64,
    pub batches: u64,
}

impl Flow {
    fn add(&mut self, bytes: u64, records: u64) {
        self.bytes += bytes;
        self.records += records;
        self.batches += 1;
    }
}

pub struct ShardCounters {
    /// Per API key: time from a request's decode to its answer, in microseconds.
    pub request_latency_us: Vec<Histogram>,
    /// Per (API key, error code): partitions or requests answered with that error.
    pub errors: RefCell<HashMap<(i16, i16), u64>>,
    pub bytes_in: Cell<u64>,
    pub records_in: Cell<u64>,
    pub bytes_out: Cell<u64>,
    pub records_out: Cell<u64>,
    /// Per topic, per partition: what fetches answered by this shard carried.
    pub out_by_partition: RefCell<HashMap<String, HashMap<i32, Flow>>>,
    pub fsync_latency_us: Histogram,
    /// Bytes each fdatasync made durable (one group commit).
    pub group_commit_bytes: Histogram,
    /// syncfs of a data filesystem by the shard-wide interval sync (`log/shard_sync.rs`).
    pub syncfs_latency_us: Histogram,
    /// Log reads served from the tail cache, and from the segment files.
    pub reads_cached: Cell<u64>,
    pub reads_file: Cell<u64>,
    /// Segment-file reads started ahead of a sequential reader, and file reads
    /// answered from one (`log/read_ahead.rs`).
    pub read_ahead_started: Cell<u64>,
    pub read_ahead_hits: Cell<u64>,
    /// Sealed-segment descriptors the shard's cache holds, and its limit
    /// (`log/file_cache.rs`): gauges, set on every change.
    pub open_segment_files: [Cell<u64>; 2],
    /// Long-polling fetches woken by new data in one of their partitions.
    pub fetch_wakeups: Cell<u64>,
    /// Requests decoded and not yet answered, on this shard's connections.
    pub in_flight: Cell<i64>,
    /// Milliseconds of client-quota throttling ordered: [produce, fetch].
    pub throttle_ms: [Cell<u64>; 2],
    /// Produce partitions past their backlog bound: [rejected, throttled].
    pub backlog: [Cell<u64>; 2],
    /// Delayed records: how late each was appended to its partition, in ms.
    pub timer_lateness_ms: Histogram,
    /// Delayed records: how much of that lateness was spent waiting for the
    /// FIRE intent's fdatasync, in ms (0 when it was durable by due).
    pub timer_sync_wait_ms: Histogram,
    /// Delayed produce parts refused because the shard's timer store was full.
    pub timers_refused: Cell<u64>,
}

impl ShardCounters {
    fn new() -> Self {
        Self {
            request_latency_us: (0..API_KEY_SLOTS).map(|_| Histogram::new(LATENCY_US)).collect(),
            errors: RefCell::new(HashMap::new()),
            bytes_in: Cell::new(0),
            records_in: Cell::new(0),
            bytes_out: Cell::new(0),
            records_out: Cell::new(0),
            out_by_partition: RefCell::new(HashMap::new()),
            fsync_latency_us: Histogram::new(LATENCY_US),
            group_commit_bytes: Histogram::new(SIZE_BYTES),
            syncfs_latency_us: Histogram::new(LATENCY_US),
            reads_cached: Cell::new(0),
            reads_file: Cell::new(0),
            read_ahead_started: Cell::new(0),
            read_ahead_hits: Cell::new(0),
            open_segment_files: [Cell::new(0), Cell::new(0)],
            fetch_wakeups: Cell::new(0),
            in_flight: Cell::new(0),
            throttle_ms: [Cell::new(0), Cell::new(0)],
            backlog: [Cell::new(0), Cell::new(0)],
            timer_lateness_ms: Histogram::new(LATENESS_MS),
            timer_sync_wait_ms: Histogram::new(LATENESS_MS),
            timers_refused: Cell::new(0),
        }
    }

    pub fn request_done(&self, api_key: i16, micros: u64) {
        let slot = usize::try_from(api_key).unwrap_or(0).min(API_KEY_SLOTS - 1);
        self.request_latency_us[slot].record(micros);
    }

    pub fn error(&self, api_key: i16, code: i16) {
        if code != 0 {
            *self.errors.borrow_mut().entry((api_key, code)).or_insert(0) += 1;
        }
    }

    pub fn appended(&self, bytes: u64, records: u64) {
        add(&self.bytes_in, bytes);
        add(&self.records_in, records);
    }

    /// A fetch answer's share for one partition. The map is keyed by name so a
    /// lookup needs no allocation; a partition's entry is made on its first fetch.
    pub fn fetched(&self, topic: &str, partition: i32, bytes: u64, records: u64) {
        add(&self.bytes_out, bytes);
        add(&self.records_out, records);
        let mut map = self.out_by_partition.borrow_mut();
        if let Some(parts) = map.get_mut(topic) {
            parts.entry(partition).or_default().add(bytes, records);
        } else {
            let mut flow = Flow::default();
            flow.add(bytes, records);
            map.insert(topic.to_owned(), HashMap::from([(partition, flow)]));
        }
    }

    /// Forget the read counters of a topic that was deleted.
    pub fn forget_topic(&self, topic: &str) {
        self.out_by_partition.borrow_mut().remove(topic);
    }

    pub fn synced(&self, micros: u64, bytes: u64) {
        self.fsync_latency_us.record(micros);
        self.group_commit_bytes.record(bytes);
    }

    pub fn fs_synced(&self, micros: u64) {
        self.syncfs_latency_us.record(micros);
    }

    pub fn fetch_woken(&self) {
        add(&self.fetch_wakeups, 1);
    }

    /// A client-quota throttle of `ms` (produce or fetch quota).
    pub fn throttled(&self, fetch: bool, ms: u64) {
        add(&self.throttle_ms[usize::from(fetch)], ms);
    }

    /// A produce partition past its backlog bound: rejected, or throttled.
    pub fn backlog_refused(&self, throttled: bool) {
        add(&self.backlog[usize::from(throttled)], 1);
    }

    /// A delayed record appended `late_ms` after its due time.
    pub fn timer_fired(&self, late_ms: i64, sync_wait_ms: i64) {
        self.timer_lateness_ms.record(late_ms.max(0) as u64);
        self.timer_sync_wait_ms.record(sync_wait_ms.max(0) as u64);
    }

    pub fn timers_refused(&self) {
        add(&self.timers_refused, 1);
    }

    pub fn read_ahead_started(&self) {
        add(&self.read_ahead_started, 1);
    }

    pub fn segment_files(&self, open: usize, limit: usize) {
        self.open_segment_files[0].set(open as u64);
        self.open_segment_files[1].set(limit as u64);
    }

    pub fn read_ahead_hit(&self) {
        add(&self.read_ahead_hits, 1);
    }

    pub fn read_served(&self, from_cache: bool) {
        add(
            if from_cache {
                &self.reads_cached
            } else {
                &self.reads_file
            },
            1,
        );
    }
}

fn add(cell: &Cell<u64>, n: u64) {
    cell.set(cell.get().wrapping_add(n));
}

thread_local! {
    static SHARD: ShardCounters = ShardCounters::new();
}

/// Run `f` with this thread's (this shard's) counters.
pub fn with<R>(f: impl FnOnce(&ShardCounters) -> R) -> R {
    SHARD.with(f)
}

/// Decrements the in-flight gauge when a request's task ends, however it ends.
pub struct InFlight(());

impl InFlight {
    pub fn enter() -> Self {
        with(|m| m.in_flight.set(m.in_flight.get() + 1));
        Self(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        with(|m| m.in_flight.set(m.in_flight.get() - 1));
    }
}

/// Records in a RecordBatch v2, from its header (`records_count` at byte 57);
/// 0 for anything shorter.
pub fn batch_records(batch: &[u8]) -> u64 {
    const RECORDS_COUNT_AT: usize = 57;
    batch
        .get(RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4)
        .map_or(0, |b| u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
}
