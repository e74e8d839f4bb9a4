//! Which fetched batches a consumer counts: read_committed filtering and
//! control batches.
//!
//! Kafka's consumer algorithm (its Fetcher's CompletedFetch): a read_committed
//! Fetch answer lists, per partition, the aborted transactions that overlap
//! the fetched range as (producer id, first offset). Walking the batches in
//! offset order, a producer's transaction counts as aborted from the first
//! batch that reaches its first offset; that producer's transactional data
//! batches are dropped until its ABORT marker, which ends the aborted
//! transaction. Control batches (COMMIT/ABORT markers) are never records, in
//! either isolation level.
//!
//! Owned by one fetch loop, reset per partition per Fetch answer. Invariants:
//! every batch of a partition's answer passes through `verdict` in offset
//! order (also those before the consumer's position, so the state follows the
//! log); `reset` reuses both vectors, so nothing is allocated per batch or per
//! record once they have grown to the longest aborted list a broker sent.

use kafka_protocol::messages::fetch_response::AbortedTransaction;
use weir_protocol::control::{marker_type, CONTROL_TYPE_ABORT};
use weir_protocol::record_batch::{BatchHeader, ATTR_CONTROL, ATTR_TRANSACTIONAL};

/// What a consumer does with one fetched batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Data to count (and parse, in e2e or --check-order).
    Keep,
    /// read_committed: data of an aborted transaction, dropped.
    Aborted,
    /// A transaction marker: never a record.
    Control,
}

pub struct BatchFilter {
    read_committed: bool,
    /// Aborted transactions not reached yet as (first offset, producer id),
    /// highest first offset first: the next one to reach is at the end.
    pending: Vec<(i64, i64)>,
    /// Producers whose aborted transaction the walk is inside.
    aborted: Vec<i64>,
}

impl BatchFilter {
    pub fn new(read_committed: bool) -> Self {
        Self {
            read_committed,
            pending: Vec::new(),
            aborted: Vec::new(),
        }
    }

    /// Start a partition's answer with its aborted transactions.
    pub fn reset(&mut self, aborted: Option<&[AbortedTransaction]>) {
        self.pending.clear();
        self.aborted.clear();
        if self.read_committed {
            let list = aborted.unwrap_or_default();
            self.pending
                .extend(list.iter().map(|t| (t.first_offset, t.producer_id.0)));
            self.pending.sort_unstable_by(|a, b| b.cmp(a));
        }
    }

    /// The verdict on the next batch of the partition (`header` is its header).
    pub fn verdict(&mut self, batch: &[u8], header: &BatchHeader) -> Verdict {
        let attributes = header.attributes.get();
        let control = attributes & ATTR_CONTROL != 0;
        let producer_id = header.producer_id.get();
        if self.read_committed && producer_id >= 0 {
            let last = header.base_offset.get() + i64::from(header.last_offset_delta.get());
            while let Some(&(first, aborted_producer)) = self.pending.last() {
                if first > last {
                    break;
                }
                self.pending.pop();
                if !self.aborted.contains(&aborted_producer) {
                    self.aborted.push(aborted_producer);
                }
            }
            if control {
                if marker_type(batch) == Some(CONTROL_TYPE_ABORT) {
                    self.aborted.retain(|&p| p != producer_id);
                }
            } else if attributes & ATTR_TRANSACTIONAL != 0 && self.aborted.contains(&producer_id) {
                return Verdict::Aborted;
            }
        }
        if control {
            Verdict::Control
        } else {
            Verdict::Keep
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::messages::ProducerId;
    use weir_protocol::builder::BatchBuilder;
    use weir_protocol::control::{encode_marker, MarkerFields};
    use weir_protocol::record_batch::{self, set_base_offset, Compression};

    use super::*;

    /// A data batch of `records` records at `base` by `producer` (-1: none).
    fn data(base: i64, records: usize, producer: i64, transactional: bool) -> Vec<u8> {
        let mut b = BatchBuilder::new(Compression::None).with_producer(producer, 0, 0);
        b.set_transactional(transactional);
        for _ in 0..records {
            b.push(1, None, Some(b"value"), &[]);
        }
        let mut out = BytesMut::new();
        b.finish_into(&mut out).unwrap();
        set_base_offset(&mut out, base);
        out.to_vec()
    }

    /// A COMMIT (1) or ABORT (0) marker of `producer` at `offset`, as the
    /// broker's coordinator writes it.
    fn marker(offset: i64, producer: i64, kind: i16) -> Vec<u8> {
        let mut out = encode_marker(&MarkerFields {
            producer_id: producer,
            producer_epoch: 0,
            commit: kind == 1,
            coordinator_epoch: 0,
            timestamp_ms: 1,
        });
        set_base_offset(&mut out, offset);
        out.to_vec()
    }

    fn aborted(list: &[(i64, i64)]) -> Vec<AbortedTransaction> {
        list.iter()
            .map(|&(producer, first)| {
                AbortedTransaction::default()
                    .with_producer_id(ProducerId(producer))
                    .with_first_offset(first)
            })
            .collect()
    }

    fn verdicts(filter: &mut BatchFilter, batches: &[Vec<u8>]) -> Vec<Verdict> {
        batches
            .iter()
            .map(|b| filter.verdict(b, record_batch::header(b).unwrap()))
            .collect()
    }

    /// Producers 7 (committed) and 9 (aborted) interleaved, then 9 again in a
    /// committed transaction, and a non-transactional batch in between.
    fn interleaved_log() -> Vec<Vec<u8>> {
        vec![
            data(0, 2, 7, true),   // 7: committed txn
            data(2, 3, 9, true),   // 9: aborted txn starts at 2
            data(5, 1, -1, false), // plain producer
            data(6, 2, 7, true),   // 7 again
            data(8, 1, 9, true),   // 9, still aborted
            marker(9, 7, 1),       // COMMIT 7
            marker(10, 9, 0),      // ABORT 9
            data(11, 4, 9, true),  // 9: a new, committed txn
            marker(15, 9, 1),      // COMMIT 9
        ]
    }

    #[test]
    fn given_interleaved_producers_when_read_committed_should_drop_only_the_aborted_transaction() {
        use Verdict::{Aborted, Control, Keep};
        let mut f = BatchFilter::new(true);
        let list = aborted(&[(9, 2)]);
        f.reset(Some(&list));
        let v = verdicts(&mut f, &interleaved_log());
        assert_eq!(
            v,
            vec![Keep, Aborted, Keep, Keep, Aborted, Control, Control, Keep, Control]
        );
    }

    #[test]
    fn given_two_aborted_transactions_out_of_order_when_read_committed_should_drop_both() {
        use Verdict::{Aborted, Control, Keep};
        let log = vec![
            data(0, 1, 4, true),
            data(1, 1, 5, true),
            marker(2, 4, 0),
            data(3, 1, 5, true),
            marker(4, 5, 0),
            data(5, 1, 4, true),
        ];
        let mut f = BatchFilter::new(true);
        // The broker's list is not promised in offset order.
        let list = aborted(&[(5, 1), (4, 0)]);
        f.reset(Some(&list));
        let v = verdicts(&mut f, &log);
        assert_eq!(v, vec![Aborted, Aborted, Control, Aborted, Control, Keep]);
        // The next answer starts clean: no aborted list, nothing dropped.
        f.reset(None);
        assert_eq!(verdicts(&mut f, &log[5..]), vec![Keep]);
    }

    #[test]
    fn given_read_uncommitted_when_filtering_should_keep_aborted_data_and_skip_only_markers() {
        use Verdict::{Control, Keep};
        let mut f = BatchFilter::new(false);
        let list = aborted(&[(9, 2)]);
        f.reset(Some(&list));
        let v = verdicts(&mut f, &interleaved_log());
        assert_eq!(
            v,
            vec![Keep, Keep, Keep, Keep, Keep, Control, Control, Keep, Control]
        );
    }
}
