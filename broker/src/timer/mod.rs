//! The per-shard timer store of delayed delivery (docs/queues.md): delayed
//! batches wait here, for the partitions this shard owns, until their records
//! are due; `handlers/timer_fire.rs` then appends them to the partition. Durable in a journal
//! (`crate::journal`, records in `frame`); in memory only a min-heap of
//! (due, entry, record index) and one small entry per stored batch: the record
//! bytes stay on disk and are read back at fire time.
//!
//! Exactly once across kill -9: before a fired batch is appended, a FIRE
//! frame naming its records and its producer sequence is made durable (the
//! firing task writes FIREs up to its lead time before the records are due, so
//! the sync is done by then); the batch goes to the partition under this
//! shard's own producer id at that sequence; DONE follows once the partition
//! has it durably. A FIRE may also be cancelled before its append (DONE 0, its
//! records pending again) and its sequences reused by a later FIRE: the DONE
//! is written first, so a durable later FIRE implies a durable cancel. On
//! open, a FIRE without DONE is resolved by the partition's idempotent-producer
//! state: if the partition's last sequence for our producer id covers the
//! FIRE, it was appended; otherwise its records are pending again at their
//! ADD due times (so a FIRE written ahead never makes a record early).
//! Invariants: a record is in at most one of {heap, an unresolved FIRE}; a
//! segment is deleted only with every segment below it, and only when none of
//! its ADD records is pending and none of its FIREs unresolved.

pub mod batch;
pub mod frame;

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::path::Path;
use std::rc::Rc;

use event_listener::Event;

use crate::journal::{Journal, JournalError, Location};
use frame::Frame;

/// Journal segments roll at this size.
pub const SEGMENT_BYTES: u64 = 64 << 20;
/// The timer store's producer id on shard `n` is `PRODUCER_ID_BASE - n`: far
/// above any id the allocator hands out.
pub const PRODUCER_ID_BASE: i64 = i64::MAX - 1;
pub const PRODUCER_EPOCH: i16 = 0;

pub fn producer_id(shard: usize) -> i64 {
    PRODUCER_ID_BASE - shard as i64
}

/// (entry id, record index) pairs.
pub type Items = Vec<(u64, u32)>;
/// A FIRE to write: topic, partition, base sequence, records.
pub type Intent = (Rc<str>, i32, i32, Items);
type ReplayEntry = (Location, Rc<str>, i32, Vec<i64>, Vec<bool>);
type ReplayFire = (u32, Rc<str>, i32, i32, Items);

/// One stored batch.
struct Entry {
    /// The batch bytes in the journal.
    batch: Location,
    topic: Rc<str>,
    partition: i32,
    /// Records not yet appended (pending or in an unresolved FIRE).
    remaining: u32,
}

/// A FIRE written, its DONE not yet.
pub struct InFlight {
    segment: u32,
    items: Vec<(u64, u32)>,
}

pub struct TimerStore {
    journal: Rc<Journal>,
    pub shard: usize,
    heap: RefCell<BinaryHeap<Reverse<(i64, u64, u32)>>>,
    entries: RefCell<HashMap<u64, Entry>>,
    fires: RefCell<HashMap<u64, InFlight>>,
    /// Per segment: pending ADD records plus unresolved FIREs it holds.
    live: RefCell<BTreeMap<u32, u64>>,
    next_entry: Cell<u64>,
    next_fire: Cell<u64>,
    /// Notified when a timer is added: the firing task re-reads the next due time.
    pub added: Event,
    pub fired_total: Cell<u64>,
    /// Per partition with armed batches: the last armed due time (set by the
    /// firing task).
    armed_tail: RefCell<HashMap<Rc<str>, HashMap<i32, i64>>>,
    /// Partitions that got a record due before their armed tail: the
    /// earliest such due. One entry per partition.
    stale: RefCell<HashMap<(Rc<str>, i32), i64>>,
}

/// What the journal replay found, before the partitions are consulted.
#[derive(Default)]
struct Replay {
    entries: HashMap<u64, ReplayEntry>,
    fires: HashMap<u64, ReplayFire>,
    max_entry: u64,
    max_fire: u64,
    unreadable: usize,
}

impl Replay {
    fn visit(&mut self, loc: Location, payload: &[u8]) {
        match frame::decode(payload) {
            Some(Frame::Add {
                id,
                topic,
                partition,
                dues,
                batch_at,
            }) => {
                let dues: Vec<i64> = frame::dues(dues).collect();
                let batch = Location {
                    segment: loc.segment,
                    offset: loc.offset + batch_at as u64,
                    len: loc.len - batch_at as u32,
                };
                let done = vec![false; dues.len()];
                self.entries
                    .insert(id, (batch, topic.into(), partition, dues, done));
                self.max_entry = self.max_entry.max(id + 1);
            }
            Some(Frame::Fire {
                id,
                topic,
                partition,
                base_sequence,
                items,
            }) => {
                let items = frame::items(items).collect();
                self.fires
                    .insert(id, (loc.segment, topic.into(), partition, base_sequence, items));
                self.max_fire = self.max_fire.max(id + 1);
            }
            Some(Frame::Done { fire, appended }) => {
                if let Some(f) = self.fires.remove(&fire) {
                    if appended {
                        self.mark_done(&f.4);
                    }
                }
            }
            None => self.unreadable += 1,
        }
    }

    fn mark_done(&mut self, items: &[(u64, u32)]) {
        for (entry, index) in items {
            if let Some(e) = self.entries.get_mut(entry) {
                if let Some(d) = e.4.get_mut(*index as usize) {
                    *d = true;
                }
            }
        }
    }
}

impl TimerStore {
    /// Open the store in `dir` and resolve FIREs left unresolved by a crash,
    /// asking `last_sequence(topic, partition)` for the partition's last
    /// sequence of our producer id (`None`: unknown, or the partition is gone).
    /// Call after this shard's partitions are open.
    pub async fn open(
        dir: &Path,
        shard: usize,
        last_sequence: impl Fn(&str, i32) -> Option<i32>,
    ) -> Result<Rc<Self>, JournalError> {
        let mut replay = Replay::default();
        let journal = Journal::open(dir, SEGMENT_BYTES, |loc, p| replay.visit(loc, p)).await?;
        if replay.unreadable > 0 {
            tracing::warn!(
                shard,
                frames = replay.unreadable,
                "timer store: frames of an unknown kind skipped"
            );
        }
        let mut resolutions = Vec::new();
        let fires = std::mem::take(&mut replay.fires);
        let mut fire_ids: Vec<_> = fires.into_iter().collect();
        fire_ids.sort_unstable_by_key(|(id, _)| *id);
        for (id, (_, topic, partition, base_sequence, items)) in fire_ids {
            let last = base_sequence.saturating_add(items.len() as i32 - 1);
            let appended = last_sequence(&topic, partition).is_some_and(|s| s >= last);
            if appended {
                replay.mark_done(&items);
            }
            resolutions.push(frame::encode_done(id, appended));
        }
        if !resolutions.is_empty() {
            tracing::info!(
                shard,
                fires = resolutions.len(),
                "timer store: resolved FIREs a stop left open"
            );
            let refs: Vec<&[u8]> = resolutions.iter().map(Vec::as_slice).collect();
            journal.append(&refs, true).await?;
        }
        let store = Self {
            journal,
            shard,
            heap: RefCell::new(BinaryHeap::new()),
            entries: RefCell::new(HashMap::new()),
            fires: RefCell::new(HashMap::new()),
            live: RefCell::new(BTreeMap::new()),
            next_entry: Cell::new(replay.max_entry),
            next_fire: Cell::new(replay.max_fire),
            added: Event::new(),
            fired_total: Cell::new(0),
            armed_tail: RefCell::new(HashMap::new()),
            stale: RefCell::new(HashMap::new()),
        };
        store.adopt(replay);
        let store = Rc::new(store);
        store.delete_dead_segments().await;
        tracing::info!(shard, pending = store.pending(), "timer store open");
        Ok(store)
    }

    fn adopt(&self, replay: Replay) {
        let mut heap = self.heap.borrow_mut();
        let mut entries = self.entries.borrow_mut();
        let mut live = self.live.borrow_mut();
        for (id, (batch, topic, partition, dues, done)) in replay.entries {
            let mut remaining = 0u32;
            for (index, (due, done)) in dues.iter().zip(&done).enumerate() {
                if !done {
                    heap.push(Reverse((*due, id, index as u32)));
                    remaining += 1;
                }
            }
            if remaining > 0 {
                *live.entry(batch.segment).or_default() += u64::from(remaining);
                entries.insert(
                    id,
                    Entry {
                        batch,
                        topic,
                        partition,
                        remaining,
                    },
                );
            }
        }
    }

    /// Records waiting (not yet appended).
    pub fn pending(&self) -> usize {
        self.heap.borrow().len()
    }

    pub fn next_due(&self) -> Option<i64> {
        self.heap.borrow().peek().map(|Reverse((due, _, _))| *due)
    }

    /// Store one delayed batch whose records are due at `dues`; returns once
    /// it is written (not synced) with the point `wait_durable` takes.
    pub async fn add(
        &self,
        topic: &str,
        partition: i32,
        dues: &[i64],
        batch: &[u8],
    ) -> Result<u64, JournalError> {
        let id = self.next_entry.get();
        self.next_entry.set(id + 1);
        let mut payload = Vec::new();
        let batch_at = frame::encode_add(id, topic, partition, dues, batch, &mut payload);
        let (locations, end) = self.journal.append_unsynced(&[&payload]).await?;
        let loc = locations[0];
        let batch = Location {
            segment: loc.segment,
            offset: loc.offset + batch_at as u64,
            len: loc.len - batch_at as u32,
        };
        *self.live.borrow_mut().entry(loc.segment).or_default() += dues.len() as u64;
        self.entries.borrow_mut().insert(
            id,
            Entry {
                batch,
                topic: topic.into(),
                partition,
                remaining: dues.len() as u32,
            },
        );
        let mut heap = self.heap.borrow_mut();
        for (index, due) in dues.iter().enumerate() {
            heap.push(Reverse((*due, id, index as u32)));
        }
        drop(heap);
        if let Some(first) = dues.iter().min() {
            self.note_if_stale(topic, partition, *first);
        }
        self.added.notify(usize::MAX);
        Ok(end)
    }

    /// A record of `topic`/`partition` due at `due` was added: if the
    /// partition has armed batches due later, they must be re-armed after it.
    fn note_if_stale(&self, topic: &str, partition: i32, due: i64) {
        let tails = self.armed_tail.borrow();
        let Some((topic, parts)) = tails.get_key_value(topic) else {
            return;
        };
        if parts.get(&partition).is_some_and(|tail| *tail > due) {
            let mut stale = self.stale.borrow_mut();
            let earliest = stale.entry((topic.clone(), partition)).or_insert(due);
            *earliest = (*earliest).min(due);
        }
    }

    /// The partitions whose armed batches a new record precedes (see `add`).
    pub fn take_stale(&self) -> Vec<(Rc<str>, i32, i64)> {
        self.stale
            .borrow_mut()
            .drain()
            .map(|((topic, partition), due)| (topic, partition, due))
            .collect()
    }

    /// The firing task's view of a partition's armed queue: its last due
    /// time, or `None` when nothing is armed.
    pub fn set_armed_tail(&self, topic: &Rc<str>, partition: i32, tail: Option<i64>) {
        let mut tails = self.armed_tail.borrow_mut();
        match tail {
            Some(t) => {
                tails.entry(topic.clone()).or_default().insert(partition, t);
            }
            None => {
                if let Some(parts) = tails.get_mut(&**topic) {
                    parts.remove(&partition);
                    if parts.is_empty() {
                        tails.remove(&**topic);
                    }
                }
            }
        }
    }

    /// Records of a partition up to `due` are being armed.
    pub fn raise_armed_tail(&self, topic: &Rc<str>, partition: i32, due: i64) {
        let mut tails = self.armed_tail.borrow_mut();
        let tail = tails
            .entry(topic.clone())
            .or_default()
            .entry(partition)
            .or_insert(due);
        *tail = (*tail).max(due);
    }

    /// Return once the journal is durable up to `end` (from `add`).
    pub async fn wait_durable(&self, end: u64) -> Result<(), JournalError> {
        self.journal.sync_to(end).await
    }

    /// Pop up to `max` records due by `now`, in due order.
    pub fn take_due(&self, now: i64, max: usize) -> Vec<(i64, u64, u32)> {
        let mut heap = self.heap.borrow_mut();
        let mut out = Vec::new();
        while out.len() < max {
            match heap.peek() {
                Some(Reverse((due, _, _))) if *due <= now => {
                    out.push(heap.pop().expect("peeked").0);
                }
                _ => break,
            }
        }
        out
    }

    /// Put records back (their append failed or must wait).
    pub fn put_back(&self, items: &[(u64, u32)], due: i64) {
        let mut heap = self.heap.borrow_mut();
        for (entry, index) in items {
            heap.push(Reverse((due, *entry, *index)));
        }
    }

    /// Where an entry's batch is, and its partition.
    pub fn entry(&self, id: u64) -> Option<(Location, Rc<str>, i32)> {
        self.entries
            .borrow()
            .get(&id)
            .map(|e| (e.batch, e.topic.clone(), e.partition))
    }

    pub async fn read(&self, loc: Location) -> Result<Vec<u8>, JournalError> {
        self.journal.read(loc).await
    }

    /// Write FIRE intents (not synced): `fires` are (topic, partition, base
    /// sequence, items). Returns their ids, in order, and the point
    /// `wait_durable` takes to make them durable; nothing they name may be
    /// appended before that.
    pub async fn write_fires(&self, fires: &[Intent]) -> Result<(Vec<u64>, u64), JournalError> {
        let mut payloads = Vec::with_capacity(fires.len());
        let mut ids = Vec::with_capacity(fires.len());
        for (topic, partition, seq, items) in fires {
            let id = self.next_fire.get();
            self.next_fire.set(id + 1);
            let mut p = Vec::new();
            frame::encode_fire(id, topic, *partition, *seq, items, &mut p);
            payloads.push(p);
            ids.push(id);
        }
        let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
        let (locations, end) = self.journal.append_unsynced(&refs).await?;
        let mut live = self.live.borrow_mut();
        let mut in_flight = self.fires.borrow_mut();
        for ((id, loc), (_, _, _, items)) in ids.iter().zip(&locations).zip(fires) {
            *live.entry(loc.segment).or_default() += 1;
            in_flight.insert(
                *id,
                InFlight {
                    segment: loc.segment,
                    items: items.clone(),
                },
            );
        }
        Ok((ids, end))
    }

    /// Records appended to their partition `late_ms` after their due time.
    /// Count fired records: (lateness, the part of it spent waiting for the
    /// FIRE's sync), in ms.
    pub fn fired(&self, late_ms: impl Iterator<Item = (i64, i64)>) {
        crate::metrics::with(|m| late_ms.for_each(|(l, s)| m.timer_fired(l, s)));
    }

    /// Resolve a FIRE: `appended` (its records are delivered, their entries
    /// shrink) or cancelled (the caller put its records back).
    pub async fn finish_fire(&self, fire: u64, appended: bool) {
        let done = frame::encode_done(fire, appended);
        // Lazy: a lost DONE is rebuilt on open from the partition's sequence.
        if let Err(e) = self.journal.append(&[&done], false).await {
            tracing::error!(shard = self.shard, error = %e, "timer store: writing DONE failed");
            return;
        }
        let Some(f) = self.fires.borrow_mut().remove(&fire) else {
            return;
        };
        let mut live = self.live.borrow_mut();
        let dec = |live: &mut BTreeMap<u32, u64>, segment: u32, n: u64| {
            if let Some(c) = live.get_mut(&segment) {
                *c = c.saturating_sub(n);
            }
        };
        dec(&mut live, f.segment, 1);
        if appended {
            let mut entries = self.entries.borrow_mut();
            for (entry, _) in &f.items {
                if let Some(e) = entries.get_mut(entry) {
                    dec(&mut live, e.batch.segment, 1);
                    e.remaining -= 1;
                    if e.remaining == 0 {
                        entries.remove(entry);
                    }
                }
            }
            self.fired_total
                .set(self.fired_total.get() + f.items.len() as u64);
        }
    }

    /// Delete the longest prefix of sealed segments nothing refers to.
    pub async fn delete_dead_segments(&self) {
        let active = self.journal.active_segment();
        let first_live = {
            let mut live = self.live.borrow_mut();
            live.retain(|_, n| *n > 0);
            live.keys().next().copied().unwrap_or(active).min(active)
        };
        if let Err(e) = self.journal.delete_below(first_live).await {
            tracing::warn!(shard = self.shard, error = %e, "timer store: deleting segments failed");
        }
    }

    pub async fn close(&self) {
        self.journal.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::test_support::{data_dir, run};

    #[test]
    fn given_an_armed_partition_when_a_record_due_before_its_tail_is_added_should_report_it_stale() {
        let tmp = data_dir();
        let dir = tmp.path().join("t");
        run(async move {
            let store = TimerStore::open(&dir, 0, |_, _| None).await.unwrap();
            let topic: Rc<str> = "t".into();
            store.raise_armed_tail(&topic, 0, 1_000);
            store.raise_armed_tail(&topic, 0, 900);
            store.add("t", 1, &[10], b"x").await.unwrap();
            store.add("t", 0, &[1_000, 2_000], b"x").await.unwrap();
            assert!(
                store.take_stale().is_empty(),
                "other partition, or not before the tail"
            );
            store.add("t", 0, &[2_000, 700], b"x").await.unwrap();
            store.add("t", 0, &[800], b"x").await.unwrap();
            assert_eq!(store.take_stale(), vec![(topic.clone(), 0, 700)]);
            assert!(store.take_stale().is_empty(), "taken once");
            store.set_armed_tail(&topic, 0, None);
            store.add("t", 0, &[5], b"x").await.unwrap();
            assert!(store.take_stale().is_empty(), "nothing armed");
            store.close().await;
        });
    }
}
