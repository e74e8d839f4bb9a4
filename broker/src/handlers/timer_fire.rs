//! The firing task of one shard's timer store (`crate::timer`; here because it
//! appends through `ShardContext`). Records are ARMED up to `LEAD_MS` before
//! they are due: cut into fired batches (`timer::batch`), given their producer
//! sequences, and their FIRE intents written; the intents' fdatasync runs in
//! the background. A batch is RELEASED (appended to its partition) once its
//! last record is due and its FIRE is durable, so the sync is off the due
//! path whenever it takes less than `LEAD_MS`. Runs on the owning shard only.
//!
//! Invariants: per partition, armed batches form a queue in due order and in
//! sequence order, and are appended front first; a batch is never appended
//! before its last record is due (never early) nor before its FIRE is durable
//! (exactly once across a crash: `TimerStore::open` resolves open FIREs from
//! the partition's sequence, and an unappended one only re-arms its records at
//! their stored due times). A record added with a due time before the tail of
//! its partition's queue cancels the queue from the first batch due after it
//! (DONE 0, then re-armed), so a partition still fires in due order; the DONE
//! precedes any FIRE reusing those sequences in the journal. Such a partition
//! is then armed only when due (as if `LEAD_MS` were 0) for `UNORDERED_MS`, so
//! a producer of short random delays cannot make every round re-arm the window.
//! Bounded: at most `ARMED_RECORDS_MAX` records (armed or held back) and
//! `ARMED_BYTES_MAX` bytes armed.

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use event_listener::Event;
use weir_protocol::records::{records, Record};

use super::ShardContext;
use crate::log::PartitionLog;
use crate::partitions::Ownership;
use crate::timer::batch::{build, gather, Due, Group, Reads, RETRY_MS};
use crate::timer::{producer_id, TimerStore};

/// Records are armed this long before they are due: longer than a FIRE
/// fdatasync takes (p99 well under this on the machines measured, see
/// docs/benchmarks.md), short enough that little is held in memory.
const LEAD_MS: i64 = 200;
const ARMED_RECORDS_MAX: usize = 20_000;
const ARMED_BYTES_MAX: usize = 32 << 20;
const DECOMPRESSED_MAX_BYTES: usize = 64 << 20;
/// A partition that got a record due before its armed batches is armed only
/// when due for this long.
const UNORDERED_MS: i64 = 2_000;
/// Dead journal segments are looked for at most this often.
const CLEANUP_MS: i64 = 1_000;

fn now_ms() -> i64 {
    crate::txn::now_ms()
}

/// A fired batch waiting for its due time and its FIRE's sync.
struct Armed {
    fire: u64,
    /// `None`: the partition is gone (dropped at release, no sequence used).
    log: Option<Rc<PartitionLog>>,
    seq: i32,
    items: Vec<Due>,
    bytes: Option<Bytes>,
    /// The last record's due time.
    release: i64,
    /// The journal point after which its FIRE is durable.
    end: u64,
    /// Its own sync, for the sync-wait metric.
    sync: Rc<SyncTimes>,
}

impl Armed {
    /// Sequence numbers it takes.
    fn sequences(&self) -> i32 {
        if self.bytes.is_some() {
            self.items.len() as i32
        } else {
            0
        }
    }
    fn size(&self) -> usize {
        self.bytes.as_ref().map_or(0, Bytes::len)
    }
}

type Key = (Rc<str>, i32);

/// When one background sync started and finished (ms since the epoch).
#[derive(Default)]
struct SyncTimes {
    started: Cell<i64>,
    done: Cell<Option<i64>>,
}

impl SyncTimes {
    /// How long past `due` a record waited for this sync (`advanced_at`:
    /// when a later sync made it durable, if this one has not finished).
    fn wait_past(&self, due: i64, now: i64, advanced_at: i64) -> i64 {
        let done = self.done.get().unwrap_or(advanced_at).min(now);
        // A record due before its sync began (after a restart) waited for
        // the sync only from its start.
        (done - due.max(self.started.get())).max(0)
    }
}

/// What the background syncs report.
#[derive(Default)]
struct Synced {
    durable: Cell<u64>,
    /// When `durable` last advanced (ms): a bound on when a batch became
    /// durable through a later sync that finished before its own.
    advanced_at: Cell<i64>,
    wake: Event,
}

struct Firing {
    shard: Rc<ShardContext>,
    store: Rc<TimerStore>,
    queues: HashMap<Key, VecDeque<Armed>>,
    /// Records armed or held back, and armed bytes.
    records: usize,
    bytes: usize,
    synced: Rc<Synced>,
    /// Partitions armed only when due, until the time given.
    unordered: HashMap<Key, i64>,
    /// Records of those partitions taken early, waiting for their due time.
    held: BinaryHeap<Reverse<Due>>,
}

/// Fire due records until the shard stops. Armed batches left at a stop keep
/// their FIREs open: the next open finds them unappended and re-arms them.
pub async fn run(shard: Rc<ShardContext>, store: Rc<TimerStore>) {
    let mut f = Firing {
        shard,
        store,
        queues: HashMap::new(),
        records: 0,
        bytes: 0,
        synced: Rc::new(Synced::default()),
        unordered: HashMap::new(),
        held: BinaryHeap::new(),
    };
    let mut cleaned = now_ms();
    loop {
        if f.shard.stopping.get() {
            return;
        }
        // Listen before looking: an add or a sync in between wakes us.
        let added = f.store.added.listen();
        let synced = f.synced.wake.listen();
        for (topic, partition, due) in f.store.take_stale() {
            let key = (topic, partition);
            f.unordered.insert(key.clone(), now_ms() + UNORDERED_MS);
            f.cancel_after(&key, due, None).await;
        }
        f.release().await;
        let now = now_ms();
        let room = f.records < ARMED_RECORDS_MAX && f.bytes < ARMED_BYTES_MAX;
        let next_due = f.store.next_due();
        let held = f.held.peek().map(|Reverse(d)| d.0);
        if (room && next_due.is_some_and(|d| d <= now + LEAD_MS)) || held.is_some_and(|d| d <= now) {
            f.arm(now).await;
            continue;
        }
        if now - cleaned >= CLEANUP_MS {
            f.store.delete_dead_segments().await;
            f.unordered.retain(|_, until| *until > now);
            cleaned = now;
        }
        let durable = f.synced.durable.get();
        let release = f
            .queues
            .values()
            .filter_map(|q| q.front().filter(|a| a.end <= durable).map(|a| a.release))
            .min();
        let arm = next_due.filter(|_| room).map(|d| d - LEAD_MS);
        let wake = [release, arm, held].into_iter().flatten().min();
        let wait = wake.map_or(1_000, |t| t - now_ms());
        if wait <= 0 {
            continue;
        }
        futures_lite::future::or(
            added,
            futures_lite::future::or(synced, async {
                glommio::timer::sleep(Duration::from_millis(wait.min(1_000) as u64)).await;
            }),
        )
        .await;
    }
}

impl Firing {
    fn set_tail(&self, key: &Key) {
        let tail = self.queues.get(key).and_then(|q| q.back()).map(|a| a.release);
        self.store.set_armed_tail(&key.0, key.1, tail);
    }

    /// Append every armed batch that is due and durable, front first.
    async fn release(&mut self) {
        let now = now_ms();
        let durable = self.synced.durable.get();
        let ready = |a: &Armed| a.release <= now && a.end <= durable;
        let keys: Vec<Key> = self
            .queues
            .iter()
            .filter(|(_, q)| q.front().is_some_and(ready))
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            while let Some(a) = self
                .queues
                .get_mut(&key)
                .filter(|q| q.front().is_some_and(ready))
                .and_then(VecDeque::pop_front)
            {
                self.records -= a.items.len();
                self.bytes -= a.size();
                if !self.append(&key, a, now).await {
                    // The sequences after a failed append are void.
                    self.cancel_after(&key, i64::MIN, Some(now + RETRY_MS)).await;
                }
            }
            if self.queues.get(&key).is_some_and(VecDeque::is_empty) {
                self.queues.remove(&key);
            }
            self.set_tail(&key);
        }
    }

    /// Append one released batch; false if the append failed (its records
    /// are put back for a retry).
    async fn append(&self, key: &Key, a: Armed, now: i64) -> bool {
        let store = &self.store;
        let (Some(log), Some(bytes)) = (a.log, a.bytes) else {
            tracing::warn!(
                shard = store.shard,
                topic = %key.0,
                partition = key.1,
                records = a.items.len(),
                "timer store: dropping records of a deleted partition or unreadable batch"
            );
            store.finish_fire(a.fire, true).await;
            return true;
        };
        if let Some((first, _, _)) = a.items.first() {
            tracing::debug!(
                shard = store.shard,
                records = a.items.len(),
                late_ms = now - first,
                "firing"
            );
        }
        match log.append(bytes).await {
            Ok(appended) => {
                // What the disk's sync cost each record past its due time:
                // the part of its lateness the shard could not have avoided.
                let advanced_at = self.synced.advanced_at.get();
                store.fired(
                    a.items
                        .iter()
                        .map(|(due, _, _)| (now - due, a.sync.wait_past(*due, now, advanced_at))),
                );
                let (store, fire) = (store.clone(), a.fire);
                glommio::spawn_local(async move {
                    match log.wait_durable(appended.last_offset).await {
                        Ok(()) => store.finish_fire(fire, true).await,
                        // Left open: the next open resolves it from the partition.
                        Err(e) => tracing::warn!(shard = store.shard, error = %e, "timer store: fired batch not durable"),
                    }
                })
                .detach();
                true
            }
            Err(e) => {
                tracing::warn!(shard = store.shard, topic = %key.0, partition = key.1, error = %e, "timer store: append of a fired batch failed; retrying");
                store.finish_fire(a.fire, false).await;
                for (_, entry, index) in a.items {
                    store.put_back(&[(entry, index)], now + RETRY_MS);
                }
                false
            }
        }
    }

    /// Cancel a partition's armed batches from the first one due after
    /// `after` to its end: DONE 0, records back in the heap at their due time
    /// (or at `retry_at`).
    async fn cancel_after(&mut self, key: &Key, after: i64, retry_at: Option<i64>) {
        let Some(q) = self.queues.get_mut(key) else {
            return;
        };
        let cut = q.iter().position(|a| a.release > after).unwrap_or(q.len());
        let cancelled: Vec<Armed> = q.drain(cut..).collect();
        if q.is_empty() {
            self.queues.remove(key);
        }
        self.set_tail(key);
        for a in cancelled {
            self.records -= a.items.len();
            self.bytes -= a.size();
            self.store.finish_fire(a.fire, false).await;
            for (due, entry, index) in a.items {
                self.store
                    .put_back(&[(entry, index)], retry_at.map_or(due, |r| r.max(due)));
            }
        }
    }

    /// Take what is due within `LEAD_MS`, cut it into batches and write their
    /// FIREs; their sync runs in the background.
    async fn arm(&mut self, now: i64) {
        let room = ARMED_RECORDS_MAX.saturating_sub(self.records);
        let mut due = if room > 0 && self.bytes < ARMED_BYTES_MAX {
            self.store.take_due(now + LEAD_MS, room)
        } else {
            Vec::new()
        };
        self.hold_back(&mut due, now);
        // Raise the tails now: a record added while this round reads and
        // writes cancels what it must once the round is queued.
        let mut raised: HashSet<Key> = HashSet::new();
        for (due, entry, _) in &due {
            if let Some((_, topic, partition)) = self.store.entry(*entry) {
                self.store.raise_armed_tail(&topic, partition, *due);
                raised.insert((topic, partition));
            }
        }
        let (groups, mut reads, rest) = gather(&self.store, due).await;
        for (due, entry, index) in rest {
            self.store.put_back(&[(entry, index)], due);
        }
        let planned = self.plan(groups, &mut reads, now);
        drop(reads);
        let intents: Vec<_> = planned
            .iter()
            .map(|(key, a)| {
                let items = a.items.iter().map(|(_, e, i)| (*e, *i)).collect();
                (key.0.clone(), key.1, a.seq, items)
            })
            .collect();
        let written = if intents.is_empty() {
            Ok((Vec::new(), 0))
        } else {
            self.store.write_fires(&intents).await
        };
        let (ids, end) = match written {
            Ok(written) => written,
            Err(e) => {
                tracing::error!(shard = self.shard.id, error = %e, "timer store: writing FIRE failed");
                for (_, a) in planned {
                    for (due, entry, index) in a.items {
                        self.store.put_back(&[(entry, index)], due.max(now + RETRY_MS));
                    }
                }
                for key in &raised {
                    self.set_tail(key);
                }
                return;
            }
        };
        if ids.is_empty() {
            for key in &raised {
                self.set_tail(key);
            }
            return;
        }
        let sync = self.sync_in_background(end);
        for ((key, mut a), fire) in planned.into_iter().zip(ids) {
            a.fire = fire;
            a.end = end;
            a.sync = sync.clone();
            self.records += a.items.len();
            self.bytes += a.size();
            self.queues.entry(key).or_default().push_back(a);
        }
        for key in &raised {
            self.set_tail(key);
        }
    }

    /// Keep records of unordered partitions that are not yet due out of this
    /// round (held back), and bring in held ones that are due; `due` stays in
    /// due order.
    fn hold_back(&mut self, due: &mut Vec<Due>, now: i64) {
        let before = due.len();
        if !self.unordered.is_empty() {
            due.retain(|d| {
                if d.0 <= now {
                    return true;
                }
                let Some((_, topic, partition)) = self.store.entry(d.1) else {
                    return true;
                };
                if self
                    .unordered
                    .get(&(topic, partition))
                    .is_some_and(|until| *until > now)
                {
                    self.held.push(Reverse(*d));
                    return false;
                }
                true
            });
            self.records += before - due.len();
        }
        let mut joined = false;
        while let Some(Reverse(d)) = self.held.peek().copied() {
            if d.0 > now {
                break;
            }
            self.held.pop();
            self.records -= 1;
            due.push(d);
            joined = true;
        }
        if joined {
            due.sort_unstable();
        }
    }

    /// Make the journal durable up to `end`, then wake the loop; the times
    /// returned get when it started and finished.
    fn sync_in_background(&self, end: u64) -> Rc<SyncTimes> {
        let (store, synced) = (self.store.clone(), self.synced.clone());
        let times = Rc::new(SyncTimes::default());
        times.started.set(now_ms());
        let at = times.clone();
        glommio::spawn_local(async move {
            let started = std::time::Instant::now();
            match store.wait_durable(end).await {
                Ok(()) => {
                    tracing::debug!(
                        shard = store.shard,
                        sync_ms = started.elapsed().as_secs_f64() * 1e3,
                        "timer store: FIREs durable"
                    );
                    let now = now_ms();
                    at.done.set(Some(now));
                    if end > synced.durable.get() {
                        synced.durable.set(end);
                        synced.advanced_at.set(now);
                    }
                    synced.wake.notify(usize::MAX);
                }
                Err(e) => tracing::error!(shard = store.shard, error = %e, "timer store: FIRE sync failed"),
            }
        })
        .detach();
        times
    }

    /// Cut each partition's due records into batches, their sequences running
    /// on from the partition's armed queue (or its log).
    fn plan(&self, groups: Vec<Group>, reads: &mut Reads, now: i64) -> Vec<(Key, Armed)> {
        let pid = producer_id(self.store.shard);
        let mut views: HashMap<u64, Vec<Record<'_>>> = HashMap::new();
        for (id, (batch, scratch)) in reads.iter_mut() {
            match records(batch, scratch, DECOMPRESSED_MAX_BYTES)
                .and_then(|r| r.collect::<Result<Vec<_>, _>>())
            {
                Ok(r) => {
                    views.insert(*id, r);
                }
                Err(e) => {
                    tracing::error!(shard = self.shard.id, entry = id, error = %e, "timer store: a stored batch is unreadable")
                }
            }
        }
        let mut out = Vec::new();
        for g in groups {
            let key: Key = (g.topic.clone(), g.partition);
            let log = match self.shard.partitions.owned(&g.topic, g.partition) {
                Ok(log) => Some(log),
                Err(Ownership::Unknown) => None,
                Err(Ownership::Elsewhere(owner)) => {
                    tracing::warn!(shard = self.shard.id, owner, topic = %g.topic, "timer store: partition owned elsewhere; retrying later");
                    for (_, entry, index) in g.items {
                        self.store.put_back(&[(entry, index)], now + 1_000);
                    }
                    continue;
                }
            };
            let queued = self.queues.get(&key).and_then(|q| q.back());
            let mut seq = match queued {
                Some(a) => a.seq.wrapping_add(a.sequences()),
                None => log
                    .as_ref()
                    .and_then(|l| l.last_sequence(pid))
                    .map_or(0, |s| s.wrapping_add(1)),
            };
            for (items, bytes) in build(&g.items, &views, pid, seq, now) {
                let a = Armed {
                    fire: 0,
                    log: log.clone(),
                    seq,
                    release: items.iter().map(|d| d.0).max().unwrap_or(now),
                    items,
                    bytes,
                    end: 0,
                    sync: Rc::default(),
                };
                seq = seq.wrapping_add(a.sequences());
                out.push((key.clone(), a));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::SyncTimes;

    fn times(started: i64, done: Option<i64>) -> SyncTimes {
        let t = SyncTimes::default();
        t.started.set(started);
        t.done.set(done);
        t
    }

    #[test]
    fn sync_wait_counts_only_the_sync_past_due() {
        // Armed 200 ms ahead, durable 50 ms before due: no wait.
        assert_eq!(times(800, Some(950)).wait_past(1_000, 1_001, 0), 0);
        // A 498 ms sync armed 200 ms ahead: 298 ms past due.
        assert_eq!(times(800, Some(1_298)).wait_past(1_000, 1_303, 0), 298);
        // Due while the broker was down: only the sync after the restart counts.
        assert_eq!(times(5_000, Some(5_040)).wait_past(1_000, 5_041, 0), 40);
        // Made durable by a later sync that finished first.
        assert_eq!(times(800, None).wait_past(1_000, 1_200, 1_100), 100);
        // Never past the append itself.
        assert_eq!(times(800, Some(1_500)).wait_past(1_000, 1_200, 0), 200);
    }
}
