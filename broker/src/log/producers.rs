//! Idempotent-producer state of one partition: per producer id, its epoch and
//! the sequence ranges and offsets of its last `BATCHES_KEPT` batches, as Kafka
//! keeps them. The log consults it inside the append's critical section (no
//! await between the check and the offset assignment), so a retried batch is
//! answered with the offsets it got the first time and is never stored twice.
//!
//! Owned by the partition's log, so only its shard touches it. Invariants: per
//! producer, the kept batches are in append order with consecutive sequences
//! (modulo i32 wrap); the number of producers is bounded by `PRODUCERS_MAX` and
//! by expiry (`expire`). A crash never leaves it describing batches the log lost:
//! it is rebuilt on open from a snapshot at or below the recovered end.

use std::collections::{HashMap, VecDeque};

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
struct Producer {
    epoch: i16,
    batches: VecDeque<StoredBatch>,
    last_timestamp_ms: i64,
}

/// One producer as DescribeProducers shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerView {
    pub producer_id: i64,
    pub epoch: i16,
    pub last_sequence: i32,
    pub last_timestamp_ms: i64,
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
}

#[derive(Debug, Default, Clone)]
pub struct ProducerStates {
    producers: HashMap<i64, Producer>,
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
        if batch.epoch > p.epoch {
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
            });
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
            .filter_map(|(id, p)| {
                let last = p.batches.back()?;
                Some(ProducerView {
                    producer_id: *id,
                    epoch: p.epoch,
                    last_sequence: last.last_sequence,
                    last_timestamp_ms: p.last_timestamp_ms,
                })
            })
            .collect();
        out.sort_unstable_by_key(|v| v.producer_id);
        out
    }

    /// Forget producers whose last batch is older than `max_age_ms`
    /// (`producer.id.expiration.ms`).
    pub fn expire(&mut self, now_ms: i64, max_age_ms: i64) {
        self.producers
            .retain(|_, p| now_ms.saturating_sub(p.last_timestamp_ms) < max_age_ms);
    }
}

/// Snapshot file layout: magic, u32 producer count, then per producer: i64 id,
/// i16 epoch, i64 last timestamp, u8 batch count, per batch i32 first and last
/// sequence, i64 base and last offset; last, a u32 CRC-32C of everything before.
const SNAPSHOT_MAGIC: &[u8; 8] = b"WEIRPRS1";
const PRODUCER_BYTES: usize = 8 + 2 + 8 + 1;
const BATCH_BYTES: usize = 4 + 4 + 8 + 8;

impl ProducerStates {
    /// The state as a snapshot file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let batches: usize = self.producers.values().map(|p| p.batches.len()).sum();
        let mut out =
            Vec::with_capacity(8 + 4 + self.producers.len() * PRODUCER_BYTES + batches * BATCH_BYTES + 4);
        out.extend_from_slice(SNAPSHOT_MAGIC);
        out.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        for (id, p) in &self.producers {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&p.epoch.to_be_bytes());
            out.extend_from_slice(&p.last_timestamp_ms.to_be_bytes());
            out.push(p.batches.len() as u8);
            for b in &p.batches {
                out.extend_from_slice(&b.first_sequence.to_be_bytes());
                out.extend_from_slice(&b.last_sequence.to_be_bytes());
                out.extend_from_slice(&b.base_offset.0.to_be_bytes());
                out.extend_from_slice(&b.last_offset.0.to_be_bytes());
            }
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Parse a snapshot; `None` for anything damaged (a torn or foreign file).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
        if crc32c::crc32c(body) != u32::from_be_bytes(crc.try_into().ok()?) {
            return None;
        }
        let mut r = Reader(body.strip_prefix(SNAPSHOT_MAGIC)?);
        let count = r.u32()? as usize;
        let mut producers = HashMap::with_capacity(count.min(PRODUCERS_MAX));
        for _ in 0..count {
            let id = r.i64()?;
            let epoch = r.i16()?;
            let last_timestamp_ms = r.i64()?;
            let kept = usize::from(r.u8()?);
            if kept > BATCHES_KEPT {
                return None;
            }
            let mut batches = VecDeque::with_capacity(kept);
            for _ in 0..kept {
                batches.push_back(StoredBatch {
                    first_sequence: r.i32()?,
                    last_sequence: r.i32()?,
                    base_offset: Offset(r.i64()?),
                    last_offset: Offset(r.i64()?),
                });
            }
            let producer = Producer {
                epoch,
                batches,
                last_timestamp_ms,
            };
            producers.insert(id, producer);
        }
        r.0.is_empty().then_some(Self { producers })
    }
}

/// Big-endian fields off the front of a slice; `None` past its end.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }
    fn i16(&mut self) -> Option<i16> {
        self.take().map(i16::from_be_bytes)
    }
    fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_be_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_be_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_be_bytes)
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
        let bytes = states.encode();
        let back = ProducerStates::decode(&bytes).expect("decodes");
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
            assert!(ProducerStates::decode(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        flipped[20] ^= 0x40;
        assert!(ProducerStates::decode(&flipped).is_none());
    }
}
