//! One share-partition (KIP-932): the share-partition start offset (SPSO) and the state of
//! every record in the in-flight window [SPSO, SPEO). Pure logic over a caller-supplied
//! `now`, no I/O; owned by the `ShareState` of the shard that owns the topic-partition.
//! Invariants: the window never holds more than `max_locks` records (so every structure here
//! is bounded); the first record of a non-empty window is Available or Acquired (acknowledged
//! and archived records at the front move the SPSO on); an Acquired record has an owner and a
//! lock deadline, no other state has either; delivery counts only grow.

use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The largest `--group-share-partition-max-record-locks` accepted: replay never builds a
/// window past it, whatever the flag is now.
pub const WINDOW_MAX: usize = 1_000_000;

/// Kafka's RecordState values (the numbers are also the on-disk encoding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordState {
    Available = 0,
    Acquired = 1,
    Acknowledged = 2,
    Archived = 4,
    /// Weir's own: archived, its dead-letter move not yet done (`ArchiveReason` by value).
    /// It holds the SPSO back, so the move is durable before the record leaves the window.
    DeadLetterRejected = 5,
    DeadLetterLimit = 6,
    DeadLetterExpired = 7,
}

impl RecordState {
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::Available),
            1 => Some(Self::Acquired),
            2 => Some(Self::Acknowledged),
            4 => Some(Self::Archived),
            5 => Some(Self::DeadLetterRejected),
            6 => Some(Self::DeadLetterLimit),
            7 => Some(Self::DeadLetterExpired),
            _ => None,
        }
    }

    pub fn dead_letter(reason: ArchiveReason) -> Self {
        match reason {
            ArchiveReason::Rejected => Self::DeadLetterRejected,
            ArchiveReason::DeliveryLimit => Self::DeadLetterLimit,
            ArchiveReason::Expired => Self::DeadLetterExpired,
        }
    }

    /// Why a record waits for its dead-letter move, if it does.
    pub fn dead_letter_reason(self) -> Option<ArchiveReason> {
        match self {
            Self::DeadLetterRejected => Some(ArchiveReason::Rejected),
            Self::DeadLetterLimit => Some(ArchiveReason::DeliveryLimit),
            Self::DeadLetterExpired => Some(ArchiveReason::Expired),
            _ => None,
        }
    }
}

/// Acknowledgement types of ShareFetch/ShareAcknowledge (KIP-932; RENEW is KIP-1222).
pub const ACK_GAP: i8 = 0;
pub const ACK_ACCEPT: i8 = 1;
pub const ACK_RELEASE: i8 = 2;
pub const ACK_REJECT: i8 = 3;
pub const ACK_RENEW: i8 = 4;

/// Why a record was archived: the place a dead-letter move hooks in (`ArchivedRecord`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveReason {
    Rejected,
    DeliveryLimit,
    /// Past its TTL (`weir-ttl-ms` or `message.ttl.ms`) when it was to be acquired.
    Expired,
}

impl ArchiveReason {
    /// The `weir-dlq-reason` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rejected => "rejected",
            Self::DeliveryLimit => "delivery-limit",
            Self::Expired => "expired",
        }
    }
}

/// A record that just became Archived by REJECT or by the delivery-count limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArchivedRecord {
    pub offset: i64,
    pub delivery_count: u16,
    pub reason: ArchiveReason,
}

#[derive(Clone, Debug)]
struct InFlight {
    state: RecordState,
    delivery_count: u16,
    owner: Option<Rc<str>>,
    lock_deadline: Option<Instant>,
}

/// The limits a share-partition works under (broker flags).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// group.share.partition.max.record.locks: the bound on the in-flight window.
    pub max_locks: usize,
    /// group.share.delivery.count.limit
    pub delivery_limit: u16,
    /// group.share.record.lock.duration.ms
    pub lock: Duration,
}

/// One changed record, for the durable log: (offset, state, delivery count).
pub type Change = (i64, RecordState, u16);

/// An acquired run for the ShareFetch response: first, last, delivery count.
pub type AcquiredRun = (i64, i64, u16);

/// Why an acknowledgement was refused (the whole request for this partition, as Kafka does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckError {
    /// INVALID_RECORD_STATE: an offset not acquired by this member.
    InvalidRecordState,
    /// INVALID_REQUEST: malformed batch (bad type, bad lengths, reversed range).
    InvalidRequest,
}

/// One acknowledgement batch as the wire carries it.
pub struct AckBatch<'a> {
    pub first: i64,
    pub last: i64,
    pub types: &'a [i8],
}

/// Where this share-partition's dead-letter moves stand (`share::dead_letter`).
#[derive(Default, Debug)]
pub struct DeadLetterProgress {
    /// The dead-letter partition's end offset logged before the first copy of the moves
    /// still open: a copy of an open move can only be at or past it.
    pub floor: Option<i64>,
    /// A move is running (one at a time per share-partition).
    pub busy: bool,
    /// Copies may already be there (after a restart or a failed append): look first.
    pub scan: bool,
}

#[derive(Default)]
pub struct SharePartition {
    spso: i64,
    window: VecDeque<InFlight>,
    pub dead_letter: DeadLetterProgress,
}

impl SharePartition {
    pub fn new(spso: i64) -> Self {
        Self {
            spso,
            window: VecDeque::new(),
            dead_letter: DeadLetterProgress::default(),
        }
    }

    pub fn start_offset(&self) -> i64 {
        self.spso
    }

    /// The share-partition end offset: the first offset never acquired.
    pub fn end_offset(&self) -> i64 {
        self.spso + self.window.len() as i64
    }

    /// Records currently Acquired (the "in flight" of `weir share-group describe`).
    pub fn acquired_count(&self) -> usize {
        self.window
            .iter()
            .filter(|r| r.state == RecordState::Acquired)
            .count()
    }

    /// Every non-available record of the window and the SPSO, for a snapshot.
    pub fn snapshot(&self) -> Vec<Change> {
        (self.spso..)
            .zip(&self.window)
            .map(|(o, r)| (o, r.state, r.delivery_count))
            .collect()
    }

    /// The first offset worth reading for a fetch: the first Available one, else the SPEO.
    pub fn first_available(&self) -> i64 {
        let i = self
            .window
            .iter()
            .position(|r| r.state == RecordState::Available)
            .unwrap_or(self.window.len());
        self.spso + i as i64
    }

    /// Whether an acquisition would find something: an Available record in the window, or
    /// records past it in the log (ending at `log_end`) and room for them.
    pub fn can_acquire(&self, log_end: i64, max_locks: usize) -> bool {
        let first = self.first_available();
        first < self.end_offset() || (first < log_end && self.window.len() < max_locks)
    }

    /// The earliest lock deadline, for a waiting fetch to wake at.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.window.iter().filter_map(|r| r.lock_deadline).min()
    }

    /// Moves the SPSO to `offset` (log start moved past it, or an admin reset), dropping the
    /// window below it; a reset past the SPEO empties the window.
    pub fn advance_to(&mut self, offset: i64) {
        while self.spso < offset {
            if self.window.pop_front().is_none() {
                self.spso = offset;
                return;
            }
            self.spso += 1;
        }
    }

    /// An admin reset (AlterShareGroupOffsets): the window starts over at `offset`.
    pub fn reset(&mut self, offset: i64) {
        self.window.clear();
        self.spso = offset;
    }

    fn compact_front(&mut self) {
        while self
            .window
            .front()
            .is_some_and(|r| matches!(r.state, RecordState::Acknowledged | RecordState::Archived))
        {
            self.window.pop_front();
            self.spso += 1;
        }
    }

    /// A lock given up (RELEASE, expiry, member gone): back to Available, or Archived at the
    /// delivery limit.
    fn release_one(r: &mut InFlight, offset: i64, limits: &Limits, archived: &mut Vec<ArchivedRecord>) {
        r.owner = None;
        r.lock_deadline = None;
        if r.delivery_count >= limits.delivery_limit {
            r.state = RecordState::DeadLetterLimit;
            archived.push(ArchivedRecord {
                offset,
                delivery_count: r.delivery_count,
                reason: ArchiveReason::DeliveryLimit,
            });
        } else {
            r.state = RecordState::Available;
        }
    }

    /// Releases the locks that expired by `now`. Not logged: a restart releases acquired
    /// records the same way (see `restore`).
    pub fn expire(&mut self, now: Instant, limits: &Limits, archived: &mut Vec<ArchivedRecord>) -> bool {
        let mut any = false;
        for (o, r) in (self.spso..).zip(self.window.iter_mut()) {
            if r.state == RecordState::Acquired && r.lock_deadline.is_some_and(|d| d <= now) {
                Self::release_one(r, o, limits, archived);
                any = true;
            }
        }
        self.compact_front();
        any
    }

    /// Releases every lock `member` holds (its share session closed).
    pub fn release_member(
        &mut self,
        member: &str,
        limits: &Limits,
        archived: &mut Vec<ArchivedRecord>,
        changes: &mut Vec<Change>,
    ) {
        for (o, r) in (self.spso..).zip(self.window.iter_mut()) {
            if r.state == RecordState::Acquired && r.owner.as_deref() == Some(member) {
                Self::release_one(r, o, limits, archived);
                changes.push((o, r.state, r.delivery_count));
            }
        }
        self.compact_front();
    }

    /// Acquires for `member` the Available records and the new ones in `offsets` (what
    /// the log read returned), at most `max_records`, without growing the window past
    /// `max_locks`. Records in `expired` (sorted: past their TTL) are not acquired but wait
    /// for their dead-letter move. Returns the acquired runs; `changes` gets what to log.
    #[allow(clippy::too_many_arguments)]
    pub fn acquire(
        &mut self,
        member: &Rc<str>,
        offsets: std::ops::Range<i64>,
        max_records: usize,
        now: Instant,
        limits: &Limits,
        expired: &[i64],
        changes: &mut Vec<Change>,
    ) -> Vec<AcquiredRun> {
        let mut runs: Vec<AcquiredRun> = Vec::new();
        let mut taken = 0usize;
        let deadline = now + limits.lock;
        let mut o = offsets.start.max(self.spso);
        while o < offsets.end && taken < max_records {
            let i = (o - self.spso) as usize;
            if i == self.window.len() {
                if self.window.len() >= limits.max_locks {
                    break;
                }
                self.window.push_back(InFlight {
                    state: RecordState::Available,
                    delivery_count: 0,
                    owner: None,
                    lock_deadline: None,
                });
            }
            let r = &mut self.window[i];
            if r.state == RecordState::Available && expired.binary_search(&o).is_ok() {
                r.state = RecordState::DeadLetterExpired;
                changes.push((o, r.state, r.delivery_count));
            } else if r.state == RecordState::Available {
                r.state = RecordState::Acquired;
                r.delivery_count = r.delivery_count.saturating_add(1);
                r.owner = Some(member.clone());
                r.lock_deadline = Some(deadline);
                changes.push((o, r.state, r.delivery_count));
                taken += 1;
                match runs.last_mut() {
                    Some(run) if run.1 + 1 == o && run.2 == r.delivery_count => run.1 = o,
                    _ => runs.push((o, o, r.delivery_count)),
                }
            }
            o += 1;
        }
        runs
    }

    /// Applies `member`'s acknowledgements. All batches are checked first: one offset that is
    /// not Acquired by `member` refuses them all (INVALID_RECORD_STATE), so nothing half-applies.
    pub fn acknowledge(
        &mut self,
        member: &str,
        batches: &[AckBatch<'_>],
        now: Instant,
        limits: &Limits,
        archived: &mut Vec<ArchivedRecord>,
        changes: &mut Vec<Change>,
    ) -> Result<(), AckError> {
        for b in batches {
            let n = b.last - b.first + 1;
            if b.first > b.last || b.types.is_empty() || (b.types.len() != 1 && b.types.len() as i64 != n) {
                return Err(AckError::InvalidRequest);
            }
            if b.types.iter().any(|t| !(ACK_GAP..=ACK_RENEW).contains(t)) {
                return Err(AckError::InvalidRequest);
            }
            if b.first < self.spso || b.last >= self.end_offset() {
                return Err(AckError::InvalidRecordState);
            }
            for o in b.first..=b.last {
                let r = &self.window[(o - self.spso) as usize];
                if r.state != RecordState::Acquired || r.owner.as_deref() != Some(member) {
                    return Err(AckError::InvalidRecordState);
                }
            }
        }
        for b in batches {
            for o in b.first..=b.last {
                let t = if b.types.len() == 1 {
                    b.types[0]
                } else {
                    b.types[(o - b.first) as usize]
                };
                let r = &mut self.window[(o - self.spso) as usize];
                match t {
                    ACK_ACCEPT => {
                        r.state = RecordState::Acknowledged;
                        r.owner = None;
                        r.lock_deadline = None;
                    }
                    ACK_GAP => {
                        r.state = RecordState::Archived;
                        r.owner = None;
                        r.lock_deadline = None;
                    }
                    ACK_RELEASE => Self::release_one(r, o, limits, archived),
                    ACK_REJECT => {
                        r.state = RecordState::DeadLetterRejected;
                        r.owner = None;
                        r.lock_deadline = None;
                        archived.push(ArchivedRecord {
                            offset: o,
                            delivery_count: r.delivery_count,
                            reason: ArchiveReason::Rejected,
                        });
                    }
                    _ => {
                        // RENEW: the record stays this member's, under a fresh lock.
                        r.lock_deadline = Some(now + limits.lock);
                        continue;
                    }
                }
                changes.push((o, r.state, r.delivery_count));
            }
        }
        self.compact_front();
        Ok(())
    }

    /// Replays one logged record state (start-up). Acquired records come back Available (or
    /// Archived at the delivery limit) with their delivery count: nobody holds a lock after a
    /// restart. Offsets below the SPSO are done; offsets past the window extend it.
    pub fn restore(&mut self, offset: i64, state: RecordState, delivery_count: u16, limits: &Limits) {
        if offset < self.spso {
            return;
        }
        let i = (offset - self.spso) as usize;
        if i >= WINDOW_MAX {
            return; // past any window a broker builds (the flag's maximum): stays bounded
        }
        while self.window.len() <= i {
            self.window.push_back(InFlight {
                state: RecordState::Available,
                delivery_count: 0,
                owner: None,
                lock_deadline: None,
            });
        }
        let state = match state {
            RecordState::Acquired if delivery_count >= limits.delivery_limit => RecordState::DeadLetterLimit,
            RecordState::Acquired => RecordState::Available,
            s => s,
        };
        let r = &mut self.window[i];
        r.state = state;
        r.delivery_count = r.delivery_count.max(delivery_count);
    }

    /// After a replay: drop the finished front.
    pub fn settle(&mut self) {
        self.compact_front();
    }

    /// Up to `max` records waiting for their dead-letter move: (offset, reason, count).
    pub fn dead_letters(&self, max: usize) -> Vec<(i64, ArchiveReason, u16)> {
        (self.spso..)
            .zip(&self.window)
            .filter_map(|(o, r)| r.state.dead_letter_reason().map(|why| (o, why, r.delivery_count)))
            .take(max)
            .collect()
    }

    /// Whether any record waits for its dead-letter move.
    pub fn has_dead_letters(&self) -> bool {
        self.window.iter().any(|r| r.state.dead_letter_reason().is_some())
    }

    /// The dead-letter moves of `offsets` are done (durable copies, or none wanted): Archived.
    pub fn dead_lettered(&mut self, offsets: &[i64], changes: &mut Vec<Change>) {
        for &o in offsets {
            let Some(r) = usize::try_from(o - self.spso)
                .ok()
                .and_then(|i| self.window.get_mut(i))
            else {
                continue;
            };
            if r.state.dead_letter_reason().is_some() {
                r.state = RecordState::Archived;
                changes.push((o, r.state, r.delivery_count));
            }
        }
        self.compact_front();
    }
}
