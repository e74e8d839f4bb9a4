//! The drain's main loop: join the group, read the assigned partitions'
//! offsets from the database, fetch, map, pace, write, and recover from a
//! lost broker, a lost database or a rebalance.
//!
//! Runs on the main thread. Invariants: the database's `next_offset` is the
//! only truth about where a partition resumes (`Pos::db`, reloaded after any
//! failed or fenced transaction and after every rebalance); a transaction
//! carries at most `batch_limit()` rows; fetched data waiting to be written is
//! bounded by one fetch per partition.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use weir_protocol::record_batch::{self, BatchWalker};
use weir_protocol::records;

use crate::group::Membership;
use crate::rate::{Aimd, TokenBucket};
use crate::rows::{raw_row, DeadLetter};
use crate::sink::{self, Batch, Mode, Outcome, Sink};
use crate::source::{self, Source};
use crate::status::Reporter;

/// Set by SIGTERM/SIGINT: finish the transaction in flight, leave, exit.
pub static STOP: AtomicBool = AtomicBool::new(false);
/// A decompressed batch may not exceed this.
const DECOMPRESSED_MAX_BYTES: usize = 64 << 20;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct Settings {
    pub batch_rows: usize,
    pub rows_per_sec: Option<u64>,
    pub target_p99: Option<Duration>,
    pub max_wait_ms: i32,
    pub fetch_max_bytes: i32,
    pub start_latest: bool,
    pub exit_when_idle: Option<Duration>,
}

/// Where a partition stands: `db` is the stored `next_offset`, `read` where
/// the next fetch starts (ahead of `db` only after retention deleted records
/// the drain had not read).
#[derive(Debug, Clone, Copy)]
struct Pos {
    db: i64,
    read: i64,
}

pub struct Drain {
    settings: Settings,
    source: Source,
    sink: Sink,
    group: Membership,
    status: Reporter,
    assigned: Vec<i32>,
    pos: BTreeMap<i32, Pos>,
    loaded: bool,
    buffers: HashMap<i32, Bytes>,
    high_watermarks: HashMap<i32, i64>,
    bucket: Option<TokenBucket>,
    aimd: Option<Aimd>,
    latencies: Histogram<u64>,
    last_report: Instant,
    last_commit: Instant,
    last_rows: Instant,
    scratch: Vec<u8>,
    /// The partition a batch starts with turns round, so a backlog drains
    /// from every partition alike.
    turn: usize,
    /// The database committed offsets the group has not been told of.
    kafka_behind: bool,
}

impl Drain {
    pub fn new(settings: Settings, source: Source, sink: Sink, group: Membership, status: Reporter) -> Self {
        // 500 ms of burst: after a round slowed by a slow commit (or a busy
        // machine) the next transactions catch up, so the cap is also the
        // rate a backlog drains at; in a 10 s window the burst is 5%.
        let burst = settings.rows_per_sec.map(|r| (r / 2).max(1));
        let bucket = settings
            .rows_per_sec
            .zip(burst)
            .map(|(r, b)| TokenBucket::new(r, b, Instant::now()));
        let aimd = settings
            .target_p99
            .map(|t| Aimd::new(t, 100.min(settings.batch_rows), 10, settings.batch_rows));
        Self {
            settings,
            source,
            sink,
            group,
            status,
            assigned: Vec::new(),
            pos: BTreeMap::new(),
            loaded: false,
            buffers: HashMap::new(),
            high_watermarks: HashMap::new(),
            bucket,
            aimd,
            // 1 µs to an hour; `saturating_record` clamps to these bounds.
            latencies: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"),
            last_report: Instant::now(),
            last_commit: Instant::now(),
            last_rows: Instant::now(),
            scratch: Vec::new(),
            turn: 0,
            kafka_behind: false,
        }
    }

    /// Rows one transaction may carry now: under a cap, 100 ms worth, or
    /// more when tokens piled up while a round was slow.
    fn batch_limit(&mut self) -> usize {
        let mut limit = self.settings.batch_rows;
        if let Some(a) = &self.aimd {
            limit = limit.min(a.size());
        }
        if let (Some(r), Some(b)) = (self.settings.rows_per_sec, self.bucket.as_mut()) {
            let tenth = (r / 10).max(1);
            let cap = tenth.max(b.available(Instant::now()));
            limit = limit.min(usize::try_from(cap).unwrap_or(usize::MAX));
        }
        limit.max(1)
    }

    /// Run until STOP (or idle, with `exit_when_idle`). Err only for what a
    /// retry cannot fix.
    pub fn run(mut self) -> Result<(), String> {
        let result = self.run_loop();
        self.commit_to_kafka(true);
        self.status.update(|s| s.state = "stopped");
        self.group.leave();
        self.status.stop();
        result
    }

    fn run_loop(&mut self) -> Result<(), String> {
        let mut backoff = BACKOFF_MIN;
        while !STOP.load(Ordering::Acquire) {
            let step = self.step();
            match step {
                Ok(true) => backoff = BACKOFF_MIN,
                Ok(false) => {
                    if self.idle_done() {
                        return Ok(());
                    }
                }
                Err(Step::Fatal(e)) => return Err(e),
                Err(Step::Retry(e)) => {
                    self.note_error(&e);
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
            self.report();
        }
        Ok(())
    }

    /// One round: (re)join if asked, load offsets if needed, fetch, write.
    /// Ok(true) when a transaction committed.
    fn step(&mut self) -> Result<bool, Step> {
        if self.group.needs_rejoin() {
            self.status.update(|s| s.state = "joining");
            let parts = self.group.join(&mut self.source).map_err(Step::Retry)?;
            eprintln!(
                "weir-drain: generation {} assigned partitions {parts:?}",
                self.group.generation()
            );
            self.assigned = parts;
            self.loaded = false;
        }
        if !self.loaded {
            self.load_positions()?;
        }
        self.status.update(|s| s.state = "running");
        if self.buffers.values().all(Bytes::is_empty) {
            self.fetch()?;
        }
        let batch = self.next_batch()?;
        if batch.advance.is_empty() {
            if let Some(b) = self.bucket.as_mut() {
                b.idle(Instant::now());
            }
            // Idle: the group's offsets catch up with the database's now.
            self.commit_to_kafka(false);
            return Ok(false);
        }
        self.last_rows = Instant::now();
        if let Some(b) = self.bucket.as_mut() {
            b.acquire(batch.rows() as u64 + batch.dead.len() as u64);
            let unused = b.unused();
            self.status.update(|s| s.cap_unused_rows = unused);
        }
        self.write(&batch)?;
        Ok(true)
    }

    fn load_positions(&mut self) -> Result<(), Step> {
        self.buffers.clear();
        self.pos.clear();
        let stored = self
            .sink
            .read_offsets(&self.assigned)
            .map_err(|e| self.db_failed(&e))?;
        for &p in &self.assigned.clone() {
            let db = match stored.get(&p) {
                Some(&o) => o,
                None => {
                    let at = if self.settings.start_latest {
                        source::LATEST
                    } else {
                        source::EARLIEST
                    };
                    let start = self.source.list_offset(p, at).map_err(Step::Retry)?;
                    self.sink.init_offset(p, start).map_err(|e| self.db_failed(&e))?
                }
            };
            self.pos.insert(p, Pos { db, read: db });
        }
        self.loaded = true;
        let (parts, generation) = (self.assigned.clone(), self.group.generation());
        self.status.update(|s| {
            s.partitions = parts;
            s.generation = generation;
        });
        Ok(())
    }

    fn fetch(&mut self) -> Result<(), Step> {
        let positions: Vec<(i32, i64)> = self.pos.iter().map(|(&p, pos)| (p, pos.read)).collect();
        if positions.is_empty() {
            std::thread::sleep(Duration::from_millis(
                u64::try_from(self.settings.max_wait_ms).unwrap_or(500),
            ));
            return Ok(());
        }
        let fetched = self
            .source
            .fetch(
                &positions,
                self.settings.max_wait_ms,
                self.settings.fetch_max_bytes,
            )
            .map_err(Step::Retry)?;
        for f in fetched {
            match f.error_code {
                0 => {
                    self.high_watermarks.insert(f.partition, f.high_watermark);
                    self.buffers.insert(f.partition, f.records);
                }
                source::OFFSET_OUT_OF_RANGE => self.out_of_range(f.partition)?,
                code => {
                    self.source.reset();
                    return Err(Step::Retry(format!(
                        "fetch partition {}: {}",
                        f.partition,
                        weir_client::error_name(code)
                    )));
                }
            }
        }
        Ok(())
    }

    /// The stored offset is outside the log. Below its start: retention
    /// deleted records before the drain read them; go on from the start (and
    /// say so). Above its end: wait, the broker may still be recovering.
    fn out_of_range(&mut self, partition: i32) -> Result<(), Step> {
        let earliest = self
            .source
            .list_offset(partition, source::EARLIEST)
            .map_err(Step::Retry)?;
        let Some(pos) = self.pos.get_mut(&partition) else {
            return Ok(());
        };
        if pos.read < earliest {
            eprintln!(
                "weir-drain: partition {partition}: offsets {}..{earliest} were deleted before they were drained; going on from {earliest}",
                pos.read
            );
            pos.read = earliest;
            return Ok(());
        }
        Err(Step::Retry(format!(
            "partition {partition}: stored offset {} is past the log's end",
            pos.read
        )))
    }

    /// Rows from the fetched data, up to the batch limit, partitions in turn.
    fn next_batch(&mut self) -> Result<Batch, Step> {
        let limit = self.batch_limit();
        let mut batch = Batch::default();
        let mut order = self.assigned.clone();
        if !order.is_empty() {
            self.turn = (self.turn + 1) % order.len();
            order.rotate_left(self.turn);
        }
        for p in order {
            let Some(pos) = self.pos.get(&p).copied() else {
                continue;
            };
            let Some(buf) = self.buffers.remove(&p).filter(|b| !b.is_empty()) else {
                continue;
            };
            let (next, full) = self.take_records(p, &buf, pos.read, limit, &mut batch)?;
            if full {
                self.buffers.insert(p, buf);
            }
            if next != pos.db {
                batch.advance.push((p, pos.db, next));
            }
            if batch.rows() + batch.dead.len() >= limit {
                break;
            }
        }
        Ok(batch)
    }

    /// Append the records of `buf` from offset `from` to `batch` until it
    /// holds `limit` rows: (the offset after the last one taken, whether the
    /// limit stopped it).
    fn take_records(
        &mut self,
        partition: i32,
        buf: &Bytes,
        from: i64,
        limit: usize,
        batch: &mut Batch,
    ) -> Result<(i64, bool), Step> {
        let mut next = from;
        for range in BatchWalker::new(buf) {
            let bytes = &buf[range];
            let info = record_batch::validate(bytes).map_err(|e| self.corrupt(partition, &e))?;
            if info.last_offset() < next {
                continue;
            }
            if !info.is_control() {
                let iter = records::records(bytes, &mut self.scratch, DECOMPRESSED_MAX_BYTES)
                    .map_err(|e| Step::Retry(format!("partition {partition}: {e}")))?;
                for record in iter {
                    let r = record.map_err(|e| Step::Retry(format!("partition {partition}: {e}")))?;
                    if r.offset < next {
                        continue;
                    }
                    if batch.rows() + batch.dead.len() >= limit {
                        return Ok((next, true));
                    }
                    match &self.sink.mode {
                        Mode::Raw => batch.raw.push(raw_row(partition, &r)),
                        Mode::Json { mapping, .. } => match mapping.map(partition, &r) {
                            Ok(row) => batch.json.push(row),
                            Err(reason) => batch.dead.push(DeadLetter::of(partition, &r, reason)),
                        },
                    }
                    next = r.offset + 1;
                }
            }
            next = next.max(info.last_offset() + 1);
        }
        Ok((next, false))
    }

    fn corrupt(&mut self, partition: i32, e: &record_batch::BatchError) -> Step {
        self.buffers.clear();
        Step::Retry(format!("partition {partition}: bad batch from the broker: {e}"))
    }
}

/// Why a round did not complete.
pub enum Step {
    /// Logged, then retried after a backoff.
    Retry(String),
    /// The drain exits with this message.
    Fatal(String),
}

impl Drain {
    fn write(&mut self, batch: &Batch) -> Result<(), Step> {
        let started = Instant::now();
        let outcome = self.sink.write(batch).map_err(|e| self.db_failed(&e))?;
        let latency = started.elapsed();
        match outcome {
            Outcome::Committed { rejected } => {
                for &(p, _, next) in &batch.advance {
                    self.pos.insert(p, Pos { db: next, read: next });
                }
                self.latencies
                    .saturating_record(latency.as_micros().try_into().unwrap_or(u64::MAX).max(1));
                if let Some(a) = self.aimd.as_mut() {
                    a.observe(latency);
                }
                let (rows, dead) = (
                    (batch.rows() - rejected) as u64,
                    (batch.dead.len() + rejected) as u64,
                );
                self.status.update(|s| {
                    s.rows += rows;
                    s.dead_letters += dead;
                    s.transactions += 1;
                    s.txn_busy += latency;
                });
                self.kafka_behind = true;
                self.commit_to_kafka(false);
                Ok(())
            }
            Outcome::Fenced(parts) => {
                eprintln!(
                    "weir-drain: partitions {parts:?}: another drain advanced their offsets; reloading them"
                );
                self.status.update(|s| s.fenced += 1);
                self.loaded = false;
                Ok(())
            }
        }
    }

    /// A database error: fatal if a retry cannot fix it; otherwise reconnect
    /// (with backoff) and reload the offsets, since a commit that failed
    /// midway may or may not have landed.
    fn db_failed(&mut self, e: &postgres::Error) -> Step {
        let message = format!("PostgreSQL: {}", sink::describe(e));
        if sink::is_fatal(e) {
            return Step::Fatal(message);
        }
        self.note_error(&message);
        self.status.update(|s| {
            s.db_errors += 1;
            s.state = "db-retry";
        });
        let mut backoff = BACKOFF_MIN;
        while let Err(e) = self.sink.reconnect() {
            if STOP.load(Ordering::Acquire) {
                break;
            }
            self.note_error(&format!("PostgreSQL reconnect: {}", sink::describe(&e)));
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
        self.loaded = false;
        Step::Retry(message)
    }

    /// OffsetCommit to the group at most once a second (or now, with `force`).
    fn commit_to_kafka(&mut self, force: bool) {
        if !self.kafka_behind || !force && self.last_commit.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.last_commit = Instant::now();
        self.kafka_behind = false;
        let offsets: Vec<(i32, i64)> = self.pos.iter().map(|(&p, pos)| (p, pos.db)).collect();
        if let Err(e) = self.group.commit(&offsets) {
            self.kafka_behind = true;
            self.note_error(&e);
        }
    }

    fn note_error(&mut self, e: &str) {
        eprintln!("weir-drain: {e}");
        let e = e.to_string();
        self.status.update(|s| s.last_error = Some(e));
    }

    fn lag(&self) -> i64 {
        self.pos
            .iter()
            .map(|(p, pos)| (self.high_watermarks.get(p).copied().unwrap_or(pos.db) - pos.db).max(0))
            .sum()
    }

    fn idle_done(&mut self) -> bool {
        let Some(idle) = self.settings.exit_when_idle else {
            return false;
        };
        let done = self.loaded && self.lag() == 0 && self.last_rows.elapsed() >= idle;
        if done {
            self.commit_to_kafka(true);
        }
        done
    }

    fn report(&mut self) {
        if self.last_report.elapsed() < Duration::from_millis(500) {
            return;
        }
        self.last_report = Instant::now();
        let h = &self.latencies;
        let latency = if h.is_empty() {
            (0, 0, 0)
        } else {
            (h.value_at_quantile(0.5), h.value_at_quantile(0.99), h.max())
        };
        self.latencies.reset();
        let (lag, batch_rows) = (self.lag(), self.batch_limit());
        self.status.update(|s| {
            s.lag = lag;
            s.batch_rows = batch_rows;
            if latency.2 > 0 {
                s.latency_us = latency;
            }
        });
    }
}
