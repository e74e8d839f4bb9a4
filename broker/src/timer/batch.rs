//! Turning due records into fired batches (`handlers/timer_fire.rs` calls
//! these): read the stored batches a set of due records needs, and cut one
//! partition's due records into uncompressed batches under the store's
//! producer id. Pure apart from the journal reads; used only by the owning
//! shard's firing task.
//!
//! Invariants: records keep the order given (due order); a batch never holds
//! records whose due times differ by more than `SPAN_MS` unless they are
//! already due, so releasing a batch at its last record's due time keeps
//! every record on time to within `SPAN_MS` and never early.

use std::collections::HashMap;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use weir_protocol::builder::BatchBuilder;
use weir_protocol::record_batch::Compression;
use weir_protocol::records::Record;

use super::{TimerStore, PRODUCER_EPOCH};

/// A round reads at most this much of stored batches.
pub const ROUND_READ_BYTES_MAX: u64 = 16 << 20;
/// A fired batch is cut at about this size.
pub const FIRED_BATCH_BYTES: usize = 512 << 10;
/// Records due within this many ms of each other may share a fired batch
/// (released at the latest of them).
pub const SPAN_MS: i64 = 1;
/// A record whose read failed is tried again this much later.
pub const RETRY_MS: i64 = 200;

/// (due, entry id, record index).
pub type Due = (i64, u64, u32);

/// One partition's share of a round, in due order.
pub struct Group {
    pub topic: Rc<str>,
    pub partition: i32,
    pub items: Vec<Due>,
}

/// Records cut into one fired batch, and its bytes (`None`: unreadable, dropped).
pub type Chunk = (Vec<Due>, Option<Bytes>);

/// The stored batches a round needs, read once each: (bytes, decompression scratch).
pub type Reads = HashMap<u64, (Vec<u8>, Vec<u8>)>;

/// Group the due records by partition (keeping due order) and read their
/// stored batches; what does not fit the read budget comes back as the third
/// value (to be put back).
pub async fn gather(store: &TimerStore, due: Vec<Due>) -> (Vec<Group>, Reads, Vec<Due>) {
    let mut groups: Vec<Group> = Vec::new();
    let mut reads: Reads = HashMap::new();
    let mut rest = Vec::new();
    let mut read_bytes = 0u64;
    for (due, entry, index) in due {
        if !rest.is_empty() {
            rest.push((due, entry, index));
            continue;
        }
        let Some((loc, topic, partition)) = store.entry(entry) else {
            continue;
        };
        if let std::collections::hash_map::Entry::Vacant(slot) = reads.entry(entry) {
            if read_bytes > 0 && read_bytes + u64::from(loc.len) > ROUND_READ_BYTES_MAX {
                rest.push((due, entry, index));
                continue;
            }
            read_bytes += u64::from(loc.len);
            match store.read(loc).await {
                Ok(bytes) => {
                    slot.insert((bytes, Vec::new()));
                }
                Err(e) => {
                    tracing::error!(shard = store.shard, error = %e, "timer store: reading a stored batch failed");
                    rest.push((due + RETRY_MS, entry, index));
                    continue;
                }
            }
        }
        match groups
            .iter_mut()
            .find(|g| g.partition == partition && g.topic == topic)
        {
            Some(g) => g.items.push((due, entry, index)),
            None => groups.push(Group {
                topic,
                partition,
                items: vec![(due, entry, index)],
            }),
        }
    }
    (groups, reads, rest)
}

/// A fired batch being built and the records it holds.
struct Cut {
    builder: BatchBuilder,
    taken: Vec<Due>,
    /// Records due after this start a new batch.
    until: i64,
    pid: i64,
    seq: i32,
    out: Vec<Chunk>,
}

impl Cut {
    fn finish(&mut self) {
        if self.taken.is_empty() {
            return;
        }
        self.builder.set_producer(self.pid, PRODUCER_EPOCH, self.seq);
        let mut buf = BytesMut::new();
        let bytes = self.builder.finish_into(&mut buf).ok().map(|()| buf.freeze());
        if bytes.is_some() {
            self.seq = self.seq.wrapping_add(self.taken.len() as i32);
        }
        self.out.push((std::mem::take(&mut self.taken), bytes));
        self.builder.clear();
    }
}

/// Cut a partition's due records into batches of about `FIRED_BATCH_BYTES`
/// whose dues lie within `SPAN_MS` of each other (or of `now`), under producer
/// id `pid` from sequence `seq`. A chunk whose records cannot be read has no
/// bytes (it is dropped with a log line) and uses no sequence numbers.
pub fn build(
    items: &[Due],
    views: &HashMap<u64, Vec<Record<'_>>>,
    pid: i64,
    seq: i32,
    now: i64,
) -> Vec<Chunk> {
    let mut cut = Cut {
        builder: BatchBuilder::new(Compression::None),
        taken: Vec::new(),
        until: i64::MIN,
        pid,
        seq,
        out: Vec::new(),
    };
    let mut headers: Vec<(&[u8], Option<&[u8]>)> = Vec::new();
    for &(due, entry, index) in items {
        let Some(record) = views.get(&entry).and_then(|r| r.get(index as usize)) else {
            cut.finish();
            cut.out.push((vec![(due, entry, index)], None));
            continue;
        };
        if due > cut.until {
            cut.finish();
        }
        if cut.taken.is_empty() {
            cut.until = due.max(now).saturating_add(SPAN_MS);
        }
        headers.clear();
        headers.extend(record.headers.iter());
        cut.builder
            .push(record.timestamp_ms, record.key, record.value, &headers);
        cut.taken.push((due, entry, index));
        if cut.builder.estimated_size_bytes() >= FIRED_BATCH_BYTES {
            cut.finish();
        }
    }
    cut.finish();
    cut.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_protocol::records::records;

    fn stored(n: usize) -> Vec<u8> {
        let mut b = BatchBuilder::new(Compression::None);
        for i in 0..n {
            b.push(1, None, Some(format!("v{i}").as_bytes()), &[]);
        }
        let mut out = BytesMut::new();
        b.finish_into(&mut out).unwrap();
        out.to_vec()
    }

    #[test]
    fn given_spread_dues_when_built_should_cut_by_span_but_keep_past_dues_together() {
        let batch = stored(6);
        let mut scratch = Vec::new();
        let views: HashMap<u64, Vec<Record<'_>>> = [(
            7u64,
            records(&batch, &mut scratch, 1 << 20)
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap(),
        )]
        .into();
        let now = 1_000;
        // Three past dues share a batch; 1_001 is within the span of now; 1_005 and
        // 1_006 share one; 1_010 is alone.
        let items = [
            (10, 7, 0),
            (500, 7, 1),
            (1_000, 7, 2),
            (1_005, 7, 3),
            (1_006, 7, 4),
            (1_010, 7, 5),
        ];
        let chunks = build(&items, &views, 99, 40, now);
        let sizes: Vec<usize> = chunks.iter().map(|c| c.0.len()).collect();
        assert_eq!(sizes, vec![3, 2, 1]);
        let last_dues: Vec<i64> = chunks.iter().map(|c| c.0.last().unwrap().0).collect();
        assert_eq!(last_dues, vec![1_000, 1_006, 1_010]);
        // Sequences run on from 40 across the batches.
        let seqs: Vec<i32> = chunks
            .iter()
            .map(|c| {
                weir_protocol::record_batch::header(c.1.as_ref().unwrap())
                    .unwrap()
                    .base_sequence
                    .get()
            })
            .collect();
        assert_eq!(seqs, vec![40, 43, 45]);
    }
}
