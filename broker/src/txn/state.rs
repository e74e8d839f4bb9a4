//! One transactional id's metadata and Kafka's transition rules for it (after
//! TransactionMetadata.scala), as pure functions: no I/O, no clock. The
//! coordinator (`coordinator.rs`) asks these for the next state, logs it, and only
//! then installs it. Invariants: Prepare* always leads to the matching Complete*;
//! the partition and group sets are empty outside Ongoing/Prepare*; the epoch
//! only grows for one producer id.

use std::collections::BTreeSet;

/// Kafka's TransactionState (Dead is a removed entry here, not a state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
}

impl TxnState {
    pub fn code(self) -> u8 {
        match self {
            Self::Empty => 0,
            Self::Ongoing => 1,
            Self::PrepareCommit => 2,
            Self::PrepareAbort => 3,
            Self::CompleteCommit => 4,
            Self::CompleteAbort => 5,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::Empty,
            1 => Self::Ongoing,
            2 => Self::PrepareCommit,
            3 => Self::PrepareAbort,
            4 => Self::CompleteCommit,
            5 => Self::CompleteAbort,
            _ => return None,
        })
    }

    /// The names ListTransactions and DescribeTransactions use (Kafka's `stateName`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::Ongoing => "Ongoing",
            Self::PrepareCommit => "PrepareCommit",
            Self::PrepareAbort => "PrepareAbort",
            Self::CompleteCommit => "CompleteCommit",
            Self::CompleteAbort => "CompleteAbort",
        }
    }

    pub fn is_prepare(self) -> bool {
        matches!(self, Self::PrepareCommit | Self::PrepareAbort)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TxnMetadata {
    pub producer_id: i64,
    pub epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<(String, i32)>,
    pub groups: BTreeSet<String>,
    /// Wall clock (ms) the current transaction started; -1 outside one.
    pub start_ms: i64,
    pub update_ms: i64,
}

/// Why a transactional request was refused; the wire code depends on the API
/// version for fencing (KIP-588), see `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnError {
    /// Unknown transactional id, or a producer id that is not its current one.
    UnknownProducer,
    /// An older epoch of the right producer id: a zombie.
    Fenced,
    /// A Prepare* or a log write of this id is in flight: the client retries.
    Concurrent,
    InvalidState,
    /// The shard's storage failed or its table is full: retriable.
    Unavailable,
}

impl TxnError {
    /// `fenced_as_producer_fenced`: the request version knows PRODUCER_FENCED (90);
    /// older ones get INVALID_PRODUCER_EPOCH (47), as Kafka converts them.
    pub fn code(self, fenced_as_producer_fenced: bool) -> i16 {
        use kafka_protocol::ResponseError as E;
        match self {
            Self::UnknownProducer => E::InvalidProducerIdMapping.code(),
            Self::Fenced if fenced_as_producer_fenced => E::ProducerFenced.code(),
            Self::Fenced => E::InvalidProducerEpoch.code(),
            Self::Concurrent => E::ConcurrentTransactions.code(),
            Self::InvalidState => E::InvalidTxnState.code(),
            Self::Unavailable => E::CoordinatorNotAvailable.code(),
        }
    }
}

/// Highest epoch a producer id is used with; the next bump takes a new id
/// (Kafka: Short.MaxValue - 1, leaving MaxValue for fencing bumps).
pub const EPOCH_MAX: i16 = i16::MAX - 1;

impl TxnMetadata {
    pub fn new(producer_id: i64, timeout_ms: i32, now_ms: i64) -> Self {
        Self {
            producer_id,
            epoch: 0,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            groups: BTreeSet::new(),
            start_ms: -1,
            update_ms: now_ms,
        }
    }

    /// The producer of a request must be this id's current (producer id, epoch).
    pub fn check_producer(&self, producer_id: i64, epoch: i16) -> Result<(), TxnError> {
        if producer_id != self.producer_id {
            return Err(TxnError::UnknownProducer);
        }
        if epoch != self.epoch {
            return Err(TxnError::Fenced);
        }
        Ok(())
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: the next metadata to log, or `None`
    /// when everything is already in the ongoing transaction (nothing to write).
    pub fn add(
        &self,
        partitions: &[(String, i32)],
        groups: &[String],
        now_ms: i64,
    ) -> Result<Option<TxnMetadata>, TxnError> {
        match self.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => return Err(TxnError::Concurrent),
            TxnState::Ongoing
                if partitions.iter().all(|p| self.partitions.contains(p))
                    && groups.iter().all(|g| self.groups.contains(g)) =>
            {
                return Ok(None)
            }
            _ => {}
        }
        let mut next = self.clone();
        if next.state != TxnState::Ongoing {
            next.start_ms = now_ms;
            next.partitions.clear();
            next.groups.clear();
        }
        next.state = TxnState::Ongoing;
        next.partitions.extend(partitions.iter().cloned());
        next.groups.extend(groups.iter().cloned());
        next.update_ms = now_ms;
        Ok(Some(next))
    }

    /// EndTxn: `Ok(Some(prepared))` to log and complete, `Ok(None)` for a retry of
    /// the outcome already reached (Kafka answers it with success).
    pub fn end(&self, commit: bool, now_ms: i64) -> Result<Option<TxnMetadata>, TxnError> {
        match (self.state, commit) {
            (TxnState::Ongoing, _) => {
                let mut next = self.clone();
                next.state = if commit {
                    TxnState::PrepareCommit
                } else {
                    TxnState::PrepareAbort
                };
                next.update_ms = now_ms;
                Ok(Some(next))
            }
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(None),
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => Err(TxnError::Concurrent),
            _ => Err(TxnError::InvalidState),
        }
    }

    /// Prepare* → Complete*: the transaction's sets are cleared.
    pub fn complete(&self, now_ms: i64) -> TxnMetadata {
        let mut next = self.clone();
        next.state = match self.state {
            TxnState::PrepareCommit => TxnState::CompleteCommit,
            _ => TxnState::CompleteAbort,
        };
        next.partitions.clear();
        next.groups.clear();
        next.start_ms = -1;
        next.update_ms = now_ms;
        next
    }

    /// An Ongoing transaction aborted by the coordinator (timeout, a new
    /// InitProducerId, recovery): PrepareAbort at a bumped epoch, which fences the
    /// producer at the partitions through the markers. An exhausted epoch aborts as is.
    pub fn fence_and_abort(&self, now_ms: i64) -> TxnMetadata {
        let mut next = self.clone();
        next.epoch = next.epoch.saturating_add(1);
        next.state = TxnState::PrepareAbort;
        next.update_ms = now_ms;
        next
    }

    /// InitProducerId on a settled id (Empty / Complete*): the next epoch, or
    /// `None` when the epoch is exhausted and a new producer id is needed.
    pub fn bump(&self, timeout_ms: i32, now_ms: i64) -> Option<TxnMetadata> {
        debug_assert!(!matches!(self.state, TxnState::Ongoing) && !self.state.is_prepare());
        if self.epoch >= EPOCH_MAX {
            return None;
        }
        let mut next = self.clone();
        next.epoch += 1;
        next.timeout_ms = timeout_ms;
        next.state = TxnState::Empty;
        next.update_ms = now_ms;
        Some(next)
    }
}
