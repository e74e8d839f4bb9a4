//! Share groups' record state (KIP-932, "queues"): for every (group, topic, partition) this
//! shard owns, the share-partition (`partition`) and its durable log (`store`); the share
//! sessions of the connections this shard serves live in `session`. Share-group membership
//! is the group coordinator's (`groups::share`). Owned by one shard: the owner of the
//! topic-partition (ShareFetch/ShareAcknowledge reach it as `Task`s, like Fetch).
//! Invariants: a state change that hands records out (acquisition) or settles them
//! (acknowledgement) is fdatasync'd before the response leaves; at most
//! `SHARE_PARTITIONS_PER_SHARD_MAX` share-partitions per shard, each bounded by
//! `group.share.partition.max.record.locks`; a dead letter (REJECT, delivery limit, TTL)
//! stays in the window until its move to the dead-letter topic is durable (`handlers/share_dead_letter.rs`);
//! the share-partitions that may hold one are listed (`pending_dead_letters`, bounded like the
//! share-partitions) for the shard's background mover.

pub mod partition;
pub mod session;
pub mod store;
pub mod ttl;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use partition::{
    AckBatch, AckError, AcquiredRun, ArchiveReason, ArchivedRecord, Change, Limits, SharePartition,
};
use store::{Key, ShareRecord, ShareStore, StoreError};

/// Share-partitions one shard keeps: a fetch for a new one past it is refused.
pub const SHARE_PARTITIONS_PER_SHARD_MAX: usize = 10_000;
/// The share-state file is compacted once past this size (and twice its last snapshot).
pub const COMPACT_BYTES: u64 = 64 * 1024 * 1024;

/// The share-group flags (Kafka's broker configs of the same names).
#[derive(Clone, Copy, Debug)]
pub struct ShareConfig {
    pub limits: Limits,
    /// share.auto.offset.reset = earliest (Kafka's default is latest).
    pub start_at_earliest: bool,
    pub heartbeat_interval_ms: i32,
    pub session_timeout_ms: i32,
}

impl Default for ShareConfig {
    fn default() -> Self {
        Self {
            limits: Limits {
                max_locks: 2000,
                delivery_limit: 5,
                lock: Duration::from_millis(30_000),
            },
            start_at_earliest: false,
            heartbeat_interval_ms: 5_000,
            session_timeout_ms: 45_000,
        }
    }
}

/// What one shard knows about one share-partition, for describe and the CLI.
#[derive(Clone, Debug)]
pub struct PartitionSummary {
    pub start_offset: i64,
    pub end_offset: i64,
    pub in_flight: usize,
}

pub struct ShareState {
    pub config: ShareConfig,
    /// Notified when records settle or are released (the window may have room again, or
    /// records are available): long-polling ShareFetches wait on it besides appends.
    pub released: event_listener::Event,
    /// Notified when a record becomes a dead letter: wakes the background mover.
    pub dead_letter: event_listener::Event,
    /// Share-partitions that may hold dead letters not yet moved.
    pending_dead_letters: RefCell<std::collections::BTreeSet<Key>>,
    parts: RefCell<HashMap<Key, SharePartition>>,
    store: Rc<ShareStore>,
}

impl ShareState {
    /// Opens the shard's share-state file and rebuilds every share-partition from it.
    pub async fn open(dir: &Path, config: ShareConfig) -> Result<Rc<Self>, StoreError> {
        let (store, records) = ShareStore::open(dir, COMPACT_BYTES).await?;
        let mut parts: HashMap<Key, SharePartition> = HashMap::new();
        for r in records {
            match r {
                ShareRecord::States { key, spso, changes } => {
                    let p = parts.entry(key).or_insert_with(|| SharePartition::new(spso));
                    p.advance_to(spso);
                    for (o, s, c) in changes {
                        p.restore(o, s, c, &config.limits);
                    }
                }
                ShareRecord::Reset { key, spso } => {
                    parts.entry(key).or_default().reset(spso);
                }
                ShareRecord::Forget { key } => {
                    parts.remove(&key);
                }
                ShareRecord::DeadLetterFloor { key, floor } => {
                    let d = &mut parts.entry(key).or_default().dead_letter;
                    d.floor = (floor >= 0).then_some(floor);
                }
            }
        }
        for p in parts.values_mut() {
            p.settle();
            // A move may have appended its copies before the crash: look before copying.
            p.dead_letter.scan = p.dead_letter.floor.is_some();
        }
        if !parts.is_empty() {
            tracing::info!(share_partitions = parts.len(), "share state restored");
        }
        let pending = parts
            .iter()
            .filter(|(_, p)| p.has_dead_letters())
            .map(|(k, _)| k.clone())
            .collect();
        Ok(Rc::new(Self {
            config,
            released: event_listener::Event::new(),
            dead_letter: event_listener::Event::new(),
            pending_dead_letters: RefCell::new(pending),
            parts: RefCell::new(parts),
            store,
        }))
    }

    pub fn fsyncs(&self) -> u64 {
        self.store.syncs()
    }

    /// Where a record becomes a dead letter by REJECT or by the delivery-count limit: it
    /// waits in its DeadLetter state for `handlers::share_dead_letter::drive` (run by the next
    /// ShareFetch of the share-partition, or by the shard's background mover, woken here),
    /// which copies it to the dead-letter topic or just archives it.
    fn on_archived(&self, key: &Key, archived: &[ArchivedRecord]) {
        for a in archived {
            tracing::debug!(group = %key.0, topic = %key.1, partition = key.2, offset = a.offset,
                delivery_count = a.delivery_count, reason = ?a.reason, "share record archived");
        }
        if !archived.is_empty() {
            self.note_dead_letters(key);
        }
    }

    /// Lists `key` for the background mover and wakes it.
    fn note_dead_letters(&self, key: &Key) {
        if self.pending_dead_letters.borrow_mut().insert(key.clone()) {
            self.dead_letter.notify(usize::MAX);
        }
    }

    /// The share-partitions that may hold dead letters, taken off the list: the mover puts
    /// back (`still_pending`) those it could not finish.
    pub fn take_pending_dead_letters(&self) -> Vec<Key> {
        std::mem::take(&mut *self.pending_dead_letters.borrow_mut())
            .into_iter()
            .collect()
    }

    /// Whether `key` still holds dead letters; if so it goes back on the list (not woken).
    pub fn still_pending(&self, key: &Key) -> bool {
        let pending = self
            .parts
            .borrow()
            .get(key)
            .is_some_and(SharePartition::has_dead_letters);
        if pending {
            self.pending_dead_letters.borrow_mut().insert(key.clone());
        }
        pending
    }

    /// Whether the share-partition exists or may be created (bound).
    pub fn admit(&self, key: &Key) -> bool {
        let parts = self.parts.borrow();
        parts.contains_key(key) || parts.len() < SHARE_PARTITIONS_PER_SHARD_MAX
    }

    /// Creates the share-partition at `log_start`/`log_end` (share.auto.offset.reset) if new,
    /// moves it past a log start that overtook it, and releases expired locks. Returns the
    /// first offset to read from.
    pub fn prepare(&self, key: &Key, log_start: i64, log_end: i64, now: Instant) -> i64 {
        let mut parts = self.parts.borrow_mut();
        let start = if self.config.start_at_earliest {
            log_start
        } else {
            log_end
        };
        let p = parts
            .entry(key.clone())
            .or_insert_with(|| SharePartition::new(start));
        if p.start_offset() < log_start {
            p.advance_to(log_start);
        }
        let mut archived = Vec::new();
        p.expire(now, &self.config.limits, &mut archived);
        self.on_archived(key, &archived);
        p.first_available()
    }

    /// Acquires for `member` within `offsets`; the changes to log come back as a record.
    pub fn acquire(
        &self,
        key: &Key,
        member: &Rc<str>,
        offsets: std::ops::Range<i64>,
        max_records: usize,
        now: Instant,
        expired: &[i64],
    ) -> (Vec<AcquiredRun>, Option<ShareRecord>) {
        let mut parts = self.parts.borrow_mut();
        let Some(p) = parts.get_mut(key) else {
            return (Vec::new(), None);
        };
        let mut changes = Vec::new();
        let runs = p.acquire(
            member,
            offsets,
            max_records,
            now,
            &self.config.limits,
            expired,
            &mut changes,
        );
        let record = states_record(key, p, changes);
        drop(parts);
        if !expired.is_empty() {
            self.note_dead_letters(key);
        }
        (runs, record)
    }

    /// Applies acknowledgements; the record to log on success.
    pub fn acknowledge(
        &self,
        key: &Key,
        member: &str,
        batches: &[AckBatch<'_>],
        now: Instant,
    ) -> Result<Option<ShareRecord>, AckError> {
        let mut parts = self.parts.borrow_mut();
        let p = parts.get_mut(key).ok_or(AckError::InvalidRecordState)?;
        let mut archived = Vec::new();
        let mut changes = Vec::new();
        p.acknowledge(
            member,
            batches,
            now,
            &self.config.limits,
            &mut archived,
            &mut changes,
        )?;
        self.on_archived(key, &archived);
        self.released.notify(usize::MAX);
        Ok(states_record(key, p, changes))
    }

    /// Starts a dead-letter move of `key` if records wait for one and none is running:
    /// up to `max` of them, the logged floor, and whether copies may already exist.
    pub fn begin_dead_letters(&self, key: &Key, max: usize) -> Option<DeadLetterWork> {
        let mut parts = self.parts.borrow_mut();
        let p = parts.get_mut(key)?;
        if p.dead_letter.busy || !p.has_dead_letters() {
            return None;
        }
        p.dead_letter.busy = true;
        Some(DeadLetterWork {
            records: p.dead_letters(max),
            floor: p.dead_letter.floor,
            scan: p.dead_letter.scan,
        })
    }

    /// The floor logged before the first copy of a move.
    pub fn set_dead_letter_floor(&self, key: &Key, floor: i64) {
        if let Some(p) = self.parts.borrow_mut().get_mut(key) {
            p.dead_letter.floor = Some(floor);
        }
    }

    /// Ends a move: `done` records are archived; after a failure the next move looks for
    /// copies first. The records to log (the floor cleared once no move is open).
    pub fn end_dead_letters(&self, key: &Key, done: &[i64], failed: bool) -> Vec<ShareRecord> {
        let mut parts = self.parts.borrow_mut();
        let Some(p) = parts.get_mut(key) else {
            return Vec::new();
        };
        let mut changes = Vec::new();
        p.dead_lettered(done, &mut changes);
        p.dead_letter.busy = false;
        p.dead_letter.scan |= failed;
        let mut out: Vec<ShareRecord> = states_record(key, p, changes).into_iter().collect();
        if !p.has_dead_letters() && p.dead_letter.floor.take().is_some() {
            p.dead_letter.scan = false;
            out.push(ShareRecord::DeadLetterFloor {
                key: key.clone(),
                floor: -1,
            });
        }
        self.released.notify(usize::MAX);
        out
    }

    /// Releases every lock `member` holds on `key` (its share session ended).
    pub fn release_member(&self, key: &Key, member: &str) -> Option<ShareRecord> {
        let mut parts = self.parts.borrow_mut();
        let p = parts.get_mut(key)?;
        let mut archived = Vec::new();
        let mut changes = Vec::new();
        p.release_member(member, &self.config.limits, &mut archived, &mut changes);
        self.on_archived(key, &archived);
        self.released.notify(usize::MAX);
        states_record(key, p, changes)
    }

    /// Whether a fetch could acquire from `key` now, the log spanning [`log_start`, `log_end`).
    /// A share-partition not created yet (never fetched) would start at `log_start` or
    /// `log_end` (share.auto.offset.reset, as `prepare` does).
    pub fn can_acquire(&self, key: &Key, log_start: i64, log_end: i64) -> bool {
        match self.parts.borrow().get(key) {
            Some(p) => p.can_acquire(log_end, self.config.limits.max_locks),
            None => self.config.start_at_earliest && log_start < log_end && self.admit(key),
        }
    }

    /// The earliest lock deadline among `keys`.
    pub fn next_deadline<'a>(&self, keys: impl Iterator<Item = &'a Key>) -> Option<Instant> {
        let parts = self.parts.borrow();
        keys.filter_map(|k| parts.get(k).and_then(SharePartition::next_deadline))
            .min()
    }

    pub fn summary(&self, key: &Key) -> Option<PartitionSummary> {
        self.parts.borrow().get(key).map(|p| PartitionSummary {
            start_offset: p.start_offset(),
            end_offset: p.end_offset(),
            in_flight: p.acquired_count(),
        })
    }

    /// Every share-partition of `group` on this shard.
    pub fn group_partitions(&self, group: &str) -> Vec<(String, i32, PartitionSummary)> {
        let parts = self.parts.borrow();
        let mut out: Vec<_> = parts
            .iter()
            .filter(|(k, _)| k.0 == group)
            .map(|(k, p)| {
                let s = PartitionSummary {
                    start_offset: p.start_offset(),
                    end_offset: p.end_offset(),
                    in_flight: p.acquired_count(),
                };
                (k.1.clone(), k.2, s)
            })
            .collect();
        out.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        out
    }

    /// The lowest start offset (SPSO) of any share group on each of
    /// `partitions` (`None`: no share group reads it), for the backlog bound
    /// (handlers/backlog.rs): records below it are settled, those above still wait.
    pub fn lowest_start(&self, partitions: &[(String, i32)]) -> Vec<Option<i64>> {
        let parts = self.parts.borrow();
        let mut out = vec![None; partitions.len()];
        for ((_, topic, partition), p) in parts.iter() {
            let start = p.start_offset();
            if start < 0 {
                continue;
            }
            if let Some(i) = partitions.iter().position(|(t, n)| t == topic && n == partition) {
                out[i] = Some(out[i].map_or(start, |o: i64| o.min(start)));
            }
        }
        out
    }

    /// Every group with share state on this shard.
    pub fn groups(&self) -> Vec<String> {
        let mut g: Vec<String> = self.parts.borrow().keys().map(|k| k.0.clone()).collect();
        g.sort();
        g.dedup();
        g
    }

    /// An admin reset of the SPSO (AlterShareGroupOffsets), durable before it returns.
    pub async fn reset(&self, key: Key, spso: i64) -> Result<(), StoreError> {
        if !self.admit(&key) {
            return Err(StoreError::Io("too many share-partitions".into()));
        }
        self.parts
            .borrow_mut()
            .entry(key.clone())
            .or_default()
            .reset(spso);
        self.commit(vec![ShareRecord::Reset { key, spso }]).await
    }

    /// Forgets share-partitions (topic deleted, offsets deleted), durably.
    pub async fn forget(&self, matches: impl Fn(&Key) -> bool) -> Result<(), StoreError> {
        let gone: Vec<Key> = self
            .parts
            .borrow()
            .keys()
            .filter(|k| matches(k))
            .cloned()
            .collect();
        if gone.is_empty() {
            return Ok(());
        }
        {
            let mut parts = self.parts.borrow_mut();
            gone.iter().for_each(|k| {
                parts.remove(k);
            });
        }
        self.commit(gone.into_iter().map(|key| ShareRecord::Forget { key }).collect())
            .await
    }

    /// Makes `records` durable (group commit), compacting the file when it has grown.
    pub async fn commit(&self, records: Vec<ShareRecord>) -> Result<(), StoreError> {
        let ticket = self.stage(records)?;
        self.durable(ticket).await
    }

    /// Queues `records` behind every change made before (the log's order is the memory's)
    /// without waiting: a ShareFetch stages its acknowledgements so that they share the
    /// acquisition's fdatasync. `durable` waits for them.
    pub fn stage(&self, records: Vec<ShareRecord>) -> Result<Option<u64>, StoreError> {
        self.store.stage(&records)
    }

    pub async fn durable(&self, ticket: Option<u64>) -> Result<(), StoreError> {
        let Some(ticket) = ticket else {
            return Ok(());
        };
        self.store.wait(ticket).await?;
        if self.store.wants_compaction() {
            let snapshot = self.snapshot();
            self.store.compact(snapshot).await?;
        }
        Ok(())
    }

    fn snapshot(&self) -> Vec<ShareRecord> {
        self.parts
            .borrow()
            .iter()
            .flat_map(|(key, p)| {
                [
                    ShareRecord::Reset {
                        key: key.clone(),
                        spso: p.start_offset(),
                    },
                    ShareRecord::States {
                        key: key.clone(),
                        spso: p.start_offset(),
                        changes: p.snapshot(),
                    },
                    ShareRecord::DeadLetterFloor {
                        key: key.clone(),
                        floor: p.dead_letter.floor.unwrap_or(-1),
                    },
                ]
            })
            .collect()
    }

    pub async fn close(&self) {
        self.store.close().await;
    }
}

/// One dead-letter move's input (`ShareState::begin_dead_letters`).
pub struct DeadLetterWork {
    /// (offset, reason, delivery count), in offset order.
    pub records: Vec<(i64, ArchiveReason, u16)>,
    pub floor: Option<i64>,
    pub scan: bool,
}

fn states_record(key: &Key, p: &SharePartition, changes: Vec<Change>) -> Option<ShareRecord> {
    (!changes.is_empty()).then(|| ShareRecord::States {
        key: key.clone(),
        spso: p.start_offset(),
        changes,
    })
}

#[cfg(test)]
mod tests;
