//! Transactions on the partition log: appending commit and abort markers, the
//! last stable offset (LSO), the aborted transactions a read_committed fetch
//! needs, and rebuilding producer and transaction state on open.
//!
//! Runs on the partition's shard, like the rest of `PartitionLog`. Invariants:
//! a marker is checked and its offset assigned in one synchronous step (the
//! same critical section as data appends), so it ends exactly the transaction
//! it was checked against; LSO <= log end offset and sits at a batch boundary
//! (it is a transaction's first batch's base offset, or the end); an abort's
//! index entry is pushed to the segment holding its marker, in offset order.

use bytes::Bytes;
use weir_protocol::control::{
    encode_marker, marker_type, MarkerFields, CONTROL_TYPE_ABORT, CONTROL_TYPE_COMMIT,
};
use weir_protocol::record_batch::{header, BatchHeader, ATTR_CONTROL};

use super::partition::{producer_batch, PartitionLog, State};
use super::producers::{AbortedTxn, MarkerVerdict, ProducerStates};
use super::segment::now_ms;
use super::{producer_snapshot, txn_index, AppendResult, LogError, Offset};

/// Bytes per read while rebuilding producer state from the log's tail.
const REBUILD_READ_BYTES: usize = 1024 * 1024;

/// What the coordinator asks a partition to write: the end of one producer's
/// transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarker {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    pub coordinator_epoch: i32,
}

impl PartitionLog {
    /// Append `m` as a control batch through the ordinary append path. `None`:
    /// the producer has no ongoing transaction here, nothing was written (a
    /// marker sent again). A marker epoch below the producer's is refused
    /// (`StaleEpoch`); a higher one becomes the producer's epoch.
    pub async fn append_marker(&self, m: TxnMarker) -> Result<Option<AppendResult>, LogError> {
        if self.marker_verdict(&m)? == MarkerVerdict::NoTransaction {
            return Ok(None);
        }
        let timestamp_ms = now_ms();
        let fields = MarkerFields {
            producer_id: m.producer_id,
            producer_epoch: m.producer_epoch,
            commit: m.commit,
            coordinator_epoch: m.coordinator_epoch,
            timestamp_ms,
        };
        let bytes = Bytes::copy_from_slice(&encode_marker(&fields));
        let info = self.admit(&bytes).await?;
        // Checked again: another marker may have ended it while this one waited.
        if self.marker_verdict(&m)? == MarkerVerdict::NoTransaction {
            return Ok(None);
        }
        let st = self.shared.state.borrow_mut();
        let appended = self.commit(st, bytes, &info, |st, base, _| {
            let ended =
                st.producers
                    .record_marker(m.producer_id, m.producer_epoch, m.commit, base, timestamp_ms);
            if let Some(aborted) = ended {
                st.active().aborted.push(aborted);
            }
        });
        Ok(Some(appended))
    }

    fn marker_verdict(&self, m: &TxnMarker) -> Result<MarkerVerdict, LogError> {
        let st = self.shared.state.borrow();
        st.check_usable()?;
        Ok(st.producers.check_marker(m.producer_id, m.producer_epoch)?)
    }

    /// min(first offset of any ongoing transaction, log end offset): what a
    /// read_committed consumer may see. O(log n) in the ongoing transactions.
    pub fn last_stable_offset(&self) -> Offset {
        let st = self.shared.state.borrow();
        lso(&st)
    }

    /// Append to `out` every aborted transaction overlapping [`from`, `upper`)
    /// (Kafka's collectAbortedTxns), in marker order.
    pub fn aborted_txns(&self, from: Offset, upper: Offset, out: &mut Vec<AbortedTxn>) {
        let st = self.shared.state.borrow();
        let first = st
            .segments
            .partition_point(|s| s.base_offset <= from)
            .saturating_sub(1);
        txn_index::collect(st.segments.range(first..), from, upper, out);
    }

    /// Rebuild producer and transaction state: the newest snapshot within the
    /// log, the `.txnindex` entries below it, then the batches after it. Without
    /// a snapshot, from the active segment's start (one is written at every
    /// roll, so older segments only lack one when they predate it or a crash hit
    /// between roll and snapshot: their producers then count as unknown, as
    /// Kafka treats expired ones).
    pub(super) async fn rebuild_producers(&self) -> Result<(), LogError> {
        let (start, end, active_base, bases) = {
            let mut st = self.shared.state.borrow_mut();
            let bases: Vec<Offset> = st.segments.iter().map(|s| s.base_offset).collect();
            (
                st.log_start_offset(),
                st.next_offset,
                st.active().base_offset,
                bases,
            )
        };
        let dir = self.shared.dir.clone();
        let snapshot = producer_snapshot::latest(dir.clone(), start, end).await;
        let (scan_from, mut states) = snapshot.unwrap_or((active_base, ProducerStates::default()));
        let loaded = txn_index::load_all(dir, bases).await;
        {
            // Entries at or past the scan start come back from the scan; an
            // unsealed segment's file may be stale there.
            let mut st = self.shared.state.borrow_mut();
            for (segment, entries) in st.segments.iter_mut().zip(loaded) {
                segment.aborted = entries
                    .into_iter()
                    .filter(|e| e.last_offset < scan_from)
                    .collect();
            }
        }
        self.scan_producers(scan_from, end, &mut states).await?;
        tracing::debug!(dir = %self.shared.dir.display(), from = scan_from.0, to = end.0, producers = states.len(), "producer state rebuilt");
        self.shared.state.borrow_mut().producers = states;
        Ok(())
    }

    /// Replay the batches in [`at`, `end`) into `states` and the segments'
    /// aborted lists.
    async fn scan_producers(
        &self,
        mut at: Offset,
        end: Offset,
        states: &mut ProducerStates,
    ) -> Result<(), LogError> {
        while at < end {
            let read = self.read(at, REBUILD_READ_BYTES).await?;
            if read.batches.is_empty() {
                break;
            }
            let mut st = self.shared.state.borrow_mut();
            // `read` validated every batch it took from the file (CRC included): the
            // header (and a marker's key) is all that is needed here.
            for batch in &read.batches {
                let h = header(batch)?;
                let base = Offset(h.base_offset.get());
                let last = base.plus(h.last_offset_delta.get());
                if last < at {
                    continue;
                }
                replay(&mut st, states, h, batch, base, last);
                at = last.next();
            }
        }
        Ok(())
    }
}

/// Replay one stored batch: a data batch updates its producer, a commit or
/// abort marker ends its producer's transaction.
fn replay(
    st: &mut State,
    states: &mut ProducerStates,
    h: &BatchHeader,
    batch: &[u8],
    base: Offset,
    last: Offset,
) {
    if h.attributes.get() & ATTR_CONTROL == 0 {
        if let Some(p) = producer_batch(h) {
            states.record(&p, base, last);
        }
        return;
    }
    let commit = match marker_type(batch) {
        Some(CONTROL_TYPE_COMMIT) => true,
        Some(CONTROL_TYPE_ABORT) => false,
        _ => return, // another control type: no transaction ends
    };
    let (pid, epoch, ts) = (h.producer_id.get(), h.producer_epoch.get(), h.max_timestamp.get());
    if let Some(aborted) = states.record_marker(pid, epoch, commit, base, ts) {
        let i = st
            .segments
            .partition_point(|s| s.base_offset <= base)
            .saturating_sub(1);
        let segment = &mut st.segments[i];
        // Entries loaded from a sealed segment's file may already hold it.
        if segment
            .aborted
            .last()
            .is_none_or(|e| e.last_offset < aborted.last_offset)
        {
            segment.aborted.push(aborted);
        }
    }
}

pub(super) fn lso(st: &State) -> Offset {
    st.producers
        .first_unstable_offset()
        .map_or(st.next_offset, |o| o.min(st.next_offset))
}
