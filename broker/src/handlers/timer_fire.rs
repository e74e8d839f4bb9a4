//! The firing task of one shard's timer store (`crate::timer`; here because it appends
//! through `ShardContext`): sleeps until the next record is
//! due (or a timer is added, or 1 s passed), then appends the due records to
//! their partitions as new batches, in due order, under the store's producer
//! id. One round at a time per shard, so a partition's fired batches reach it
//! in sequence order. Bounded: a round takes at most `ROUND_RECORDS_MAX`
//! records and reads at most `ROUND_READ_BYTES_MAX` of stored batches.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use bytes::BytesMut;
use weir_protocol::builder::BatchBuilder;
use weir_protocol::record_batch::Compression;
use weir_protocol::records::{records, Record};

use super::ShardContext;
use crate::log::PartitionLog;
use crate::partitions::Ownership;
use crate::timer::{producer_id, Items, TimerStore, PRODUCER_EPOCH};

const ROUND_RECORDS_MAX: usize = 20_000;
const ROUND_READ_BYTES_MAX: u64 = 16 << 20;
/// A fired batch is cut at about this size.
const FIRED_BATCH_BYTES: usize = 512 << 10;
const DECOMPRESSED_MAX_BYTES: usize = 64 << 20;
/// A record whose append failed is tried again this much later.
const RETRY_MS: i64 = 200;

fn now_ms() -> i64 {
    crate::txn::now_ms()
}

/// Fire due records until the shard stops.
pub async fn run(shard: Rc<ShardContext>, store: Rc<TimerStore>) {
    loop {
        if shard.stopping.get() {
            return;
        }
        // Listen before reading the next due time: an add in between wakes us.
        let added = store.added.listen();
        let now = now_ms();
        match store.next_due() {
            Some(due) if due <= now => {
                fire_round(&shard, &store, now).await;
                store.delete_dead_segments().await;
            }
            next => {
                let wait = next.map_or(1_000, |due| (due - now).clamp(1, 1_000));
                futures_lite::future::or(added, async {
                    glommio::timer::sleep(Duration::from_millis(wait as u64)).await;
                })
                .await;
            }
        }
    }
}

/// One partition's share of a round: chunks of (items, batch bytes).
struct Group {
    topic: Rc<str>,
    partition: i32,
    items: Vec<(i64, u64, u32)>,
}

/// Records cut into one fired batch, and its bytes (`None`: unreadable, dropped).
type Chunk = (Items, Option<bytes::Bytes>);
/// A chunk with where it goes: log (`None`: partition deleted), topic,
/// partition, base sequence, records, bytes.
type Planned = (
    Option<Rc<PartitionLog>>,
    Rc<str>,
    i32,
    i32,
    Items,
    Option<bytes::Bytes>,
);

/// The stored batches a round needs, read once each.
type Reads = HashMap<u64, (Vec<u8>, Vec<u8>)>;

async fn fire_round(shard: &Rc<ShardContext>, store: &Rc<TimerStore>, now: i64) {
    let due = store.take_due(now, ROUND_RECORDS_MAX);
    if let Some((first, _, _)) = due.first() {
        tracing::debug!(
            shard = shard.id,
            records = due.len(),
            late_ms = now_ms() - first,
            "firing"
        );
    }
    let (groups, reads, rest) = gather(store, due).await;
    for (due, entry, index) in rest {
        store.put_back(&[(entry, index)], due);
    }
    let mut reads = reads;
    let chunks = plan(shard, store, groups, &mut reads, now);
    if chunks.is_empty() {
        return;
    }
    let intents: Vec<_> = chunks
        .iter()
        .map(|(_, t, p, s, items, _)| (t.clone(), *p, *s, items.clone()))
        .collect();
    let ids = match store.begin_fires(&intents).await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::error!(shard = shard.id, error = %e, "timer store: writing FIRE failed");
            for (_, _, _, _, items, _) in chunks {
                store.put_back(&items, now + RETRY_MS);
            }
            return;
        }
    };
    for (id, (log, topic, partition, _, items, bytes)) in ids.into_iter().zip(chunks) {
        append_chunk(store, log, &topic, partition, id, items, bytes, now).await;
    }
}

/// Cut each partition's due records into fired batches with their sequences.
fn plan(
    shard: &ShardContext,
    store: &TimerStore,
    groups: Vec<Group>,
    reads: &mut Reads,
    now: i64,
) -> Vec<Planned> {
    let pid = producer_id(store.shard);
    // (log, topic, partition, base sequence, items, batch bytes)
    let mut chunks = Vec::new();
    let mut views: HashMap<u64, Vec<Record<'_>>> = HashMap::new();
    for (id, (batch, scratch)) in reads.iter_mut() {
        match records(batch, scratch, DECOMPRESSED_MAX_BYTES).and_then(|r| r.collect::<Result<Vec<_>, _>>()) {
            Ok(r) => {
                views.insert(*id, r);
            }
            Err(e) => {
                tracing::error!(shard = shard.id, entry = id, error = %e, "timer store: a stored batch is unreadable")
            }
        }
    }
    for g in groups {
        let log = match shard.partitions.owned(&g.topic, g.partition) {
            Ok(log) => Some(log),
            Err(Ownership::Unknown) => None,
            Err(Ownership::Elsewhere(owner)) => {
                tracing::warn!(shard = shard.id, owner, topic = %g.topic, "timer store: partition owned elsewhere; retrying later");
                for (_, entry, index) in g.items {
                    store.put_back(&[(entry, index)], now + 1_000);
                }
                continue;
            }
        };
        let mut seq = log
            .as_ref()
            .and_then(|l| l.last_sequence(pid))
            .map_or(0, |s| s.wrapping_add(1));
        for (items, bytes) in build(&g.items, &views, pid, seq) {
            let n = if bytes.is_some() { items.len() as i32 } else { 0 };
            chunks.push((log.clone(), g.topic.clone(), g.partition, seq, items, bytes));
            seq = seq.wrapping_add(n);
        }
    }
    chunks
}

#[allow(clippy::too_many_arguments)]
async fn append_chunk(
    store: &Rc<TimerStore>,
    log: Option<Rc<crate::log::PartitionLog>>,
    topic: &str,
    partition: i32,
    id: u64,
    items: Vec<(u64, u32)>,
    bytes: Option<bytes::Bytes>,
    now: i64,
) {
    let (Some(log), Some(bytes)) = (log, bytes) else {
        tracing::warn!(
            shard = store.shard,
            topic,
            partition,
            records = items.len(),
            "timer store: dropping records of a deleted partition or unreadable batch"
        );
        store.finish_fire(id, true).await;
        return;
    };
    match log.append(bytes).await {
        Ok(a) => {
            let store = store.clone();
            glommio::spawn_local(async move {
                match log.wait_durable(a.last_offset).await {
                    Ok(()) => store.finish_fire(id, true).await,
                    // Left open: the next open resolves it from the partition.
                    Err(e) => tracing::warn!(shard = store.shard, error = %e, "timer store: fired batch not durable"),
                }
            })
            .detach();
        }
        Err(e) => {
            tracing::warn!(shard = store.shard, topic, partition, error = %e, "timer store: append of a fired batch failed; retrying");
            store.finish_fire(id, false).await;
            store.put_back(&items, now + RETRY_MS);
        }
    }
}

/// Group the due records by partition (keeping due order) and read their
/// stored batches; what does not fit this round's read budget comes back as
/// the third value.
async fn gather(store: &TimerStore, due: Vec<(i64, u64, u32)>) -> (Vec<Group>, Reads, Vec<(i64, u64, u32)>) {
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
    taken: Vec<(u64, u32)>,
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

/// Cut a partition's due records into batches of about `FIRED_BATCH_BYTES`,
/// under the store's producer id from sequence `seq`. A chunk whose records
/// cannot be read has no bytes (it is dropped with a log line) and uses no
/// sequence numbers.
fn build(items: &[(i64, u64, u32)], views: &HashMap<u64, Vec<Record<'_>>>, pid: i64, seq: i32) -> Vec<Chunk> {
    let mut cut = Cut {
        builder: BatchBuilder::new(Compression::None),
        taken: Vec::new(),
        pid,
        seq,
        out: Vec::new(),
    };
    let mut headers: Vec<(&[u8], Option<&[u8]>)> = Vec::new();
    for (_, entry, index) in items {
        let Some(record) = views.get(entry).and_then(|r| r.get(*index as usize)) else {
            cut.finish();
            cut.out.push((vec![(*entry, *index)], None));
            continue;
        };
        headers.clear();
        headers.extend(record.headers.iter());
        cut.builder
            .push(record.timestamp_ms, record.key, record.value, &headers);
        cut.taken.push((*entry, *index));
        if cut.builder.estimated_size_bytes() >= FIRED_BATCH_BYTES {
            cut.finish();
        }
    }
    cut.finish();
    cut.out
}
