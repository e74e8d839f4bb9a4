//! Idempotent and transactional producer state of one partition: per producer
//! id, its epoch, the sequence ranges and offsets of its last `BATCHES_KEPT`
//! batches, and the first offset of its ongoing transaction, as Kafka's
//! ProducerStateManager keeps them. The log consults it inside the append's
//! critical section (no await between the check and the offset assignment), so
//! a retried batch is answered with the offsets it got the first time and is
//! never stored twice, and a marker ends exactly the transaction it names.
//!
//! Owned by the partition's log, so only its shard touches it. Invariants: per
//! producer, the kept batches are in append order with consecutive sequences
//! (modulo i32 wrap); `ongoing` holds exactly the (first offset, id) of the
//! producers whose `txn_first_offset` is set, so the first unstable offset is
//! its minimum (O(log n)); a producer with an ongoing transaction is never
//! expired or evicted; the number of producers is bounded by `PRODUCERS_MAX`
//! (plus those in a transaction) and by expiry (`expire`). A crash never leaves
//! it describing batches the log lost: it is rebuilt on open from a snapshot
//! at or below the recovered end.

use std::collections::{BTreeSet, HashMap, VecDeque};

use super::Offset;

/// Kafka keeps the last five batches per producer: a client has at most five
/// requests in flight per partition with idempotence on.
pub const BATCHES_KEPT: usize = 5;
/// Producers tracked per partition before the least recently used is dropped
/// (it then counts as unknown: its next batch is accepted at any sequence, as
/// Kafka accepts a producer whose state expired).
pub const PRODUCERS_MAX: usize = 65_536;

/// Kafka's default `producer.id.expiration.ms` (one day): a producer with no
/// batch for this long is forgotten, and its next batch is taken at any sequence.
pub const PRODUCER_ID_EXPIRATION_MS: i64 = 24 * 60 * 60 * 1000;

/// What a batch says about its producer (RecordBatch v2 header fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    pub producer_id: i64,
    pub epoch: i16,
    pub first_sequence: i32,
    /// `last_offset_delta` of the batch: the last sequence is first + this.
    pub last_offset_delta: i32,
    /// The batch's max timestamp, for expiry.
    pub timestamp_ms: i64,
    /// Attribute bit 4: the batch belongs to a transaction.
    pub transactional: bool,
}

impl ProducerBatch {
    pub fn last_sequence(&self) -> i32 {
        next_sequence(self.first_sequence, self.last_offset_delta)
    }
}

/// Sequence numbers wrap from i32::MAX to 0 (Kafka's DefaultRecordBatch).
fn next_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

/// One stored batch of a producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredBatch {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub base_offset: Offset,
    pub last_offset: Offset,
}

#[derive(Debug, Clone)]
pub(super) struct Producer {
    pub epoch: i16,
    pub batches: VecDeque<StoredBatch>,
    pub last_timestamp_ms: i64,
    /// First offset of the producer's ongoing transaction (Kafka's
    /// `currentTxnFirstOffset`).
    pub txn_first_offset: Option<Offset>,
}

/// An aborted transaction, as the `.txnindex` files and Fetch carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: Offset,
    /// The offset of the abort marker.
    pub last_offset: Offset,
    /// The partition's last stable offset once this transaction ended: no
    /// transaction ongoing then started below it. Lets a fetch stop scanning.
    pub last_stable_offset: Offset,
}

/// The verdict on a transaction marker before it is appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerVerdict {
    Append,
    /// The producer has no ongoing transaction here: nothing to end (a marker
    /// the coordinator sends again after a crash), write nothing.
    NoTransaction,
}

/// One producer as DescribeProducers shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerView {
    pub producer_id: i64,
    pub epoch: i16,
    pub last_sequence: i32,
    pub last_timestamp_ms: i64,
    /// First offset of its ongoing transaction, if one is.
    pub txn_first_offset: Option<Offset>,
}

/// The verdict on a batch before it is appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Store it.
    Append,
    /// Already stored: answer with these offsets, store nothing.
    Duplicate(StoredBatch),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SequenceError {
    #[error("producer {producer_id}: epoch {epoch} is older than the current {current}")]
    StaleEpoch {
        producer_id: i64,
        epoch: i16,
        current: i16,
    },
    #[error("producer {producer_id}: sequence {got} where {expected} was expected")]
    OutOfOrder {
        producer_id: i64,
        got: i32,
        expected: i32,
    },
    #[error("producer {producer_id}: a non-transactional batch inside its ongoing transaction")]
    InvalidTxnState { producer_id: i64 },
}

#[derive(Debug, Default, Clone)]
pub struct ProducerStates {
    pub(super) producers: HashMap<i64, Producer>,
    /// (first offset, producer id) of every ongoing transaction, ordered.
    pub(super) ongoing: BTreeSet<(Offset, i64)>,
}

impl ProducerStates {
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Check `batch` against its producer's state, Kafka's rules: an older
    /// epoch is refused; a newer epoch must start at sequence 0 (unless the
    /// producer is unknown here: its state may have expired); within an epoch
    /// a batch equal to one of the last five is a duplicate, and any other must
    /// follow the last one's sequence.
    pub fn check(&self, batch: &ProducerBatch) -> Result<Verdict, SequenceError> {
        let Some(p) = self.producers.get(&batch.producer_id) else {
            return Ok(Verdict::Append);
        };
        if batch.epoch < p.epoch {
            return Err(SequenceError::StaleEpoch {
                producer_id: batch.producer_id,
                epoch: batch.epoch,
                current: p.epoch,
            });
        }
        if !batch.transactional && p.txn_first_offset.is_some() {
            return Err(SequenceError::InvalidTxnState {
                producer_id: batch.producer_id,
            });
        }
        if batch.epoch > p.epoch || p.batches.is_empty() {
            // A new epoch, or the first batch after a marker bumped the epoch.
            if batch.first_sequence != 0 {
                return Err(SequenceError::OutOfOrder {
                    producer_id: batch.producer_id,
                    got: batch.first_sequence,
                    expected: 0,
                });
            }
            return Ok(Verdict::Append);
        }
        let last_sequence = batch.last_sequence();
        if let Some(stored) = p
            .batches
            .iter()
            .find(|b| b.first_sequence == batch.first_sequence && b.last_sequence == last_sequence)
        {
            return Ok(Verdict::Duplicate(*stored));
        }
        match p.batches.back() {
            Some(last) if batch.first_sequence != next_sequence(last.last_sequence, 1) => {
                Err(SequenceError::OutOfOrder {
                    producer_id: batch.producer_id,
                    got: batch.first_sequence,
                    expected: next_sequence(last.last_sequence, 1),
                })
            }
            _ => Ok(Verdict::Append),
        }
    }

    /// Remember a batch that was appended at `base_offset..=last_offset`.
    pub fn record(&mut self, batch: &ProducerBatch, base_offset: Offset, last_offset: Offset) {
        if !self.producers.contains_key(&batch.producer_id) && self.producers.len() >= PRODUCERS_MAX {
            self.evict_oldest();
        }
        let p = self
            .producers
            .entry(batch.producer_id)
            .or_insert_with(|| Producer {
                epoch: batch.epoch,
                batches: VecDeque::with_capacity(BATCHES_KEPT),
                last_timestamp_ms: batch.timestamp_ms,
                txn_first_offset: None,
            });
        if batch.transactional && p.txn_first_offset.is_none() {
            p.txn_first_offset = Some(base_offset);
            self.ongoing.insert((base_offset, batch.producer_id));
        }
        if batch.epoch != p.epoch {
            p.epoch = batch.epoch;
            p.batches.clear();
        }
        if p.batches.len() == BATCHES_KEPT {
            p.batches.pop_front();
        }
        p.batches.push_back(StoredBatch {
            first_sequence: batch.first_sequence,
            last_sequence: batch.last_sequence(),
            base_offset,
            last_offset,
        });
        p.last_timestamp_ms = p.last_timestamp_ms.max(batch.timestamp_ms);
    }

    fn evict_oldest(&mut self) {
        let oldest = self
            .producers
            .iter()
            .filter(|(_, p)| p.txn_first_offset.is_none())
            .min_by_key(|(_, p)| p.last_timestamp_ms)
            .map(|(id, _)| *id);
        if let Some(id) = oldest {
            self.producers.remove(&id);
        }
    }

    /// Every producer this partition knows, for DescribeProducers: id, epoch,
    /// the last sequence stored and the last batch's timestamp.
    pub fn view(&self) -> Vec<ProducerView> {
        let mut out: Vec<ProducerView> = self
            .producers
            .iter()
            .map(|(id, p)| ProducerView {
                producer_id: *id,
                epoch: p.epoch,
                // -1 (Kafka's NO_SEQUENCE) after a marker started a new epoch.
                last_sequence: p.batches.back().map_or(-1, |b| b.last_sequence),
                last_timestamp_ms: p.last_timestamp_ms,
                txn_first_offset: p.txn_first_offset,
            })
            .collect();
        out.sort_unstable_by_key(|v| v.producer_id);
        out
    }

    /// Forget producers whose last batch is older than `max_age_ms`
    /// (`producer.id.expiration.ms`).
    pub fn expire(&mut self, now_ms: i64, max_age_ms: i64) {
        self.producers.retain(|_, p| {
            p.txn_first_offset.is_some() || now_ms.saturating_sub(p.last_timestamp_ms) < max_age_ms
        });
    }

    /// The first offset of the oldest ongoing transaction: the last stable
    /// offset is this or the log end, whichever is lower.
    pub fn first_unstable_offset(&self) -> Option<Offset> {
        self.ongoing.first().map(|(offset, _)| *offset)
    }

    /// Check a marker of `producer_id` at `epoch` (Kafka's appendEndTxnMarker):
    /// an epoch below the producer's is fenced; no ongoing transaction means
    /// there is nothing to end.
    pub fn check_marker(&self, producer_id: i64, epoch: i16) -> Result<MarkerVerdict, SequenceError> {
        let Some(p) = self.producers.get(&producer_id) else {
            return Ok(MarkerVerdict::NoTransaction);
        };
        if epoch < p.epoch {
            return Err(SequenceError::StaleEpoch {
                producer_id,
                epoch,
                current: p.epoch,
            });
        }
        Ok(match p.txn_first_offset {
            Some(_) => MarkerVerdict::Append,
            None => MarkerVerdict::NoTransaction,
        })
    }

    /// Remember a marker appended at `offset`: the producer's transaction ends,
    /// a higher epoch becomes its epoch (fencing older data; its next batch
    /// starts at sequence 0). An abort answers the entry for the aborted index.
    /// Called only after `check_marker` said `Append` (or while rebuilding
    /// from the log, where a marker without a transaction is skipped).
    pub fn record_marker(
        &mut self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        offset: Offset,
        timestamp_ms: i64,
    ) -> Option<AbortedTxn> {
        let p = self.producers.get_mut(&producer_id)?;
        if epoch > p.epoch {
            p.epoch = epoch;
            p.batches.clear();
        }
        p.last_timestamp_ms = p.last_timestamp_ms.max(timestamp_ms);
        let first_offset = p.txn_first_offset.take()?;
        self.ongoing.remove(&(first_offset, producer_id));
        if commit {
            return None;
        }
        // Kafka's lastStableOffset(completedTxn): the oldest other ongoing one.
        let last_stable_offset = self.first_unstable_offset().unwrap_or(offset.next());
        Some(AbortedTxn {
            producer_id,
            first_offset,
            last_offset: offset,
            last_stable_offset,
        })
    }

    /// Rebuild `ongoing` from the producers (after decoding a snapshot).
    pub(super) fn index_ongoing(&mut self) {
        self.ongoing = self
            .producers
            .iter()
            .filter_map(|(id, p)| p.txn_first_offset.map(|o| (o, *id)))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(producer_id: i64, epoch: i16, first_sequence: i32, records: i32) -> ProducerBatch {
        ProducerBatch {
            producer_id,
            epoch,
            first_sequence,
            last_offset_delta: records - 1,
            timestamp_ms: 1_000,
            transactional: false,
        }
    }

    /// Append `b` at `*next` if the state says so; returns the verdict.
    fn append(
        states: &mut ProducerStates,
        next: &mut i64,
        b: ProducerBatch,
    ) -> Result<Verdict, SequenceError> {
        let verdict = states.check(&b)?;
        if verdict == Verdict::Append {
            let base = Offset(*next);
            *next += i64::from(b.last_offset_delta) + 1;
            states.record(&b, base, Offset(*next - 1));
        }
        Ok(verdict)
    }

    #[test]
    fn given_a_retried_batch_when_checked_should_answer_its_first_offsets_and_store_nothing() {
        let (mut states, mut next) = (ProducerStates::default(), 0);
        assert_eq!(
            append(&mut states, &mut next, batch(7, 0, 0, 3)),
            Ok(Verdict::Append)
        );
        assert_eq!(
            append(&mut states, &mut next, batch(7, 0, 3, 2)),
            Ok(Verdict::Append)
        );
        let again = append(&mut states, &mut next, batch(7, 0, 0, 3));
        let expected = StoredBatch {
            first_sequence: 0,
            last_sequence: 2,
            base_offset: Offset(0),
            last_offset: Offset(2),
        };
        assert_eq!(again, Ok(Verdict::Duplicate(expected)));
        assert_eq!(next, 5, "the duplicate was not stored");
    }

    #[test]
    fn given_a_gap_or_an_old_epoch_when_checked_should_refuse_with_kafkas_errors() {
        let (mut states, mut next) = (ProducerStates::default(), 0);
        append(&mut states, &mut next, batch(7, 1, 0, 3)).unwrap();
        let gap = append(&mut states, &mut next, batch(7, 1, 4, 1));
        assert_eq!(
            gap,
            Err(SequenceError::OutOfOrder {
                producer_id: 7,
                got: 4,
                expected: 3
            })
        );
        let stale = append(&mut states, &mut next, batch(7, 0, 3, 1));
        assert!(matches!(stale, Err(SequenceError::StaleEpoch { current: 1, .. })));
        // A new epoch starts again at sequence 0, and only there.
        assert!(append(&mut states, &mut next, batch(7, 2, 5, 1)).is_err());
        assert_eq!(
            append(&mut states, &mut next, batch(7, 2, 0, 1)),
            Ok(Verdict::Append)
        );
        // A producer this partition does not know is taken at any sequence.
        assert_eq!(
            append(&mut states, &mut next, batch(9, 0, 42, 1)),
            Ok(Verdict::Append)
        );
    }

    #[test]
    fn given_more_than_five_batches_when_the_oldest_is_retried_should_no_longer_know_it() {
        let (mut states, mut next) = (ProducerStates::default(), 0);
        for i in 0..6 {
            append(&mut states, &mut next, batch(1, 0, i, 1)).unwrap();
        }
        // Batch 0 fell out of the window: it is out of order now, not a duplicate.
        assert!(matches!(
            states.check(&batch(1, 0, 0, 1)),
            Err(SequenceError::OutOfOrder { .. })
        ));
        assert!(matches!(
            states.check(&batch(1, 0, 1, 1)),
            Ok(Verdict::Duplicate(_))
        ));
    }

    #[test]
    fn given_sequences_near_the_maximum_when_appending_should_wrap_to_zero() {
        let (mut states, mut next) = (ProducerStates::default(), 0);
        append(&mut states, &mut next, batch(3, 0, i32::MAX - 1, 2)).unwrap();
        assert_eq!(batch(3, 0, i32::MAX - 1, 2).last_sequence(), i32::MAX);
        assert_eq!(
            append(&mut states, &mut next, batch(3, 0, 0, 1)),
            Ok(Verdict::Append)
        );
        assert_eq!(batch(3, 0, i32::MAX, 3).last_sequence(), 1);
    }

    #[test]
    fn given_idle_producers_when_expiring_should_forget_only_those_past_the_age() {
        let (mut states, mut next) = (ProducerStates::default(), 0);
        append(&mut states, &mut next, batch(1, 0, 0, 2)).unwrap();
        append(&mut states, &mut next, batch(2, 0, 0, 2)).unwrap();
        states.expire(1_000 + 9, 10);
        assert_eq!(states.len(), 2, "younger than the age: kept");
        states.expire(1_000 + 10, 10);
        assert!(states.is_empty());
    }

    #[test]
    fn given_a_state_when_snapshotted_should_read_back_equal_and_refuse_damage() {
        let (mut states, mut next) = (ProducerStates::default(), 0);
        for i in 0..7 {
            append(&mut states, &mut next, batch(1, 2, i * 3, 3)).unwrap();
        }
        append(&mut states, &mut next, batch(5, 0, 0, 1)).unwrap();
        let bytes = states.encode(Offset(24));
        let back = ProducerStates::decode(&bytes, Offset(24)).expect("decodes");
        assert!(
            ProducerStates::decode(&bytes, Offset(12)).is_none(),
            "the file of another offset (a reused inode whose renames a power cut lost)"
        );
        assert_eq!(back.len(), 2);
        for probe in [
            batch(1, 2, 18, 3),
            batch(1, 2, 21, 1),
            batch(5, 0, 0, 1),
            batch(1, 1, 0, 1),
        ] {
            assert_eq!(back.check(&probe), states.check(&probe), "{probe:?}");
        }
        for cut in [0, 3, 12, bytes.len() - 1] {
            assert!(
                ProducerStates::decode(&bytes[..cut], Offset(24)).is_none(),
                "cut at {cut}"
            );
        }
        let mut flipped = bytes.clone();
        flipped[20] ^= 0x40;
        assert!(ProducerStates::decode(&flipped, Offset(24)).is_none());
        // Version 2: the same without the offset field.
        let mut v2 = b"WEIRPRS2".to_vec();
        v2.extend_from_slice(&bytes[16..bytes.len() - 4]);
        let crc = crc32c::crc32c(&v2);
        v2.extend_from_slice(&crc.to_be_bytes());
        let back = ProducerStates::decode(&v2, Offset(12)).expect("version 2 decodes at any offset");
        assert_eq!(back.view(), states.view());
    }

    #[test]
    fn given_ongoing_transactions_when_snapshotted_should_keep_them_and_still_read_version_1() {
        let (mut states, mut next) = (ProducerStates::default(), 0);
        let txn = |pid, seq| ProducerBatch {
            transactional: true,
            ..batch(pid, 0, seq, 2)
        };
        append(&mut states, &mut next, txn(1, 0)).unwrap();
        append(&mut states, &mut next, txn(2, 0)).unwrap();
        append(&mut states, &mut next, txn(1, 2)).unwrap();
        append(&mut states, &mut next, batch(3, 0, 0, 1)).unwrap();
        assert_eq!(states.first_unstable_offset(), Some(Offset(0)));
        let back = ProducerStates::decode(&states.encode(Offset(9)), Offset(9)).expect("decodes");
        assert_eq!(back.view(), states.view());
        assert_eq!(back.first_unstable_offset(), Some(Offset(0)));
        let mut back = back;
        assert!(
            back.record_marker(1, 0, true, Offset(7), 1_000).is_none(),
            "a commit"
        );
        assert_eq!(back.first_unstable_offset(), Some(Offset(2)), "producer 2's txn");
        // Version 1: one producer, one batch, no transaction field.
        let mut v1 = b"WEIRPRS1".to_vec();
        v1.extend_from_slice(&1u32.to_be_bytes());
        v1.extend_from_slice(&5i64.to_be_bytes());
        v1.extend_from_slice(&2i16.to_be_bytes());
        v1.extend_from_slice(&1_000i64.to_be_bytes());
        v1.push(1);
        for field in [0i32, 2] {
            v1.extend_from_slice(&field.to_be_bytes());
        }
        for field in [10i64, 12] {
            v1.extend_from_slice(&field.to_be_bytes());
        }
        let crc = crc32c::crc32c(&v1);
        v1.extend_from_slice(&crc.to_be_bytes());
        let old = ProducerStates::decode(&v1, Offset(13)).expect("version 1 decodes");
        assert_eq!(old.first_unstable_offset(), None);
        assert!(matches!(old.check(&batch(5, 2, 0, 3)), Ok(Verdict::Duplicate(_))));
    }

    #[test]
    fn given_a_producer_in_a_transaction_when_expiring_should_keep_it_until_the_marker() {
        let (mut states, mut next) = (ProducerStates::default(), 0);
        let txn = ProducerBatch {
            transactional: true,
            ..batch(1, 0, 0, 1)
        };
        append(&mut states, &mut next, txn).unwrap();
        append(&mut states, &mut next, batch(2, 0, 0, 1)).unwrap();
        states.expire(1_000_000, 10);
        assert_eq!(
            states.len(),
            1,
            "only the idle producer without a transaction went"
        );
        assert_eq!(states.check_marker(1, 0), Ok(MarkerVerdict::Append));
        let aborted = states
            .record_marker(1, 0, false, Offset(1), 1_000)
            .expect("an abort");
        assert_eq!(
            (aborted.first_offset, aborted.last_stable_offset),
            (Offset(0), Offset(2))
        );
        assert_eq!(states.check_marker(1, 0), Ok(MarkerVerdict::NoTransaction));
        states.expire(1_000_000, 10);
        assert!(states.is_empty(), "expires once the transaction ended");
    }
}
