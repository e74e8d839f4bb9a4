//! The null broker's memory of what it was sent (`--store`, tests only):
//! per partition the batches with their offsets, served back to Fetch and
//! ListOffsets, optionally stored out of order (`reorder_every`).
//!
//! Nothing bounds the memory: a test's few thousand records only.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::FetchRequest;
use weir_protocol::record_batch::{self, BatchWalker};

use super::{topic_key, State};

/// One partition's batches (base offsets rewritten), with `store`.
#[derive(Default)]
pub(super) struct StoredLog {
    pub(super) next_offset: i64,
    /// (base offset, last offset, batch) in offset order.
    batches: Vec<(i64, i64, Bytes)>,
    received: u64,
}

impl StoredLog {
    fn push(&mut self, batch: &[u8]) {
        let delta = record_batch::header(batch).map_or(0, |h| i64::from(h.last_offset_delta.get()));
        let mut bytes = BytesMut::from(batch);
        bytes[..8].copy_from_slice(&self.next_offset.to_be_bytes());
        let last = self.next_offset + delta;
        self.batches.push((self.next_offset, last, bytes.freeze()));
        self.next_offset = last + 1;
    }
}

/// Append every batch of `records` (already validated) to its log.
pub(super) fn store(state: &State, key: (u128, i32), records: &[u8]) {
    let mut logs = state.logs.lock().unwrap_or_else(|p| p.into_inner());
    let log = logs.entry(key).or_default();
    for range in BatchWalker::new(records) {
        log.received += 1;
        let every = state.cfg.reorder_every;
        let held = if every > 0 && log.received.is_multiple_of(every) {
            log.batches.pop()
        } else {
            None
        };
        if let Some((base, _, _)) = &held {
            log.next_offset = *base;
        }
        log.push(&records[range]);
        if let Some((_, _, bytes)) = held {
            log.push(&bytes);
        }
    }
}

/// Whether a stored partition of the Fetch has records at its offset.
pub(super) fn has_data(state: &State, req: &FetchRequest) -> bool {
    let logs = state.logs.lock().unwrap_or_else(|p| p.into_inner());
    req.topics.iter().any(|t| {
        let topic = topic_key(&t.topic.0, t.topic_id.as_u128());
        t.partitions.iter().any(|p| {
            logs.get(&(topic, p.partition))
                .is_some_and(|l| l.next_offset > p.fetch_offset)
        })
    })
}

/// Whole batches from the one holding `offset`, up to `max_bytes` (at least one).
pub(super) fn read(log: &StoredLog, offset: i64, max_bytes: i32) -> Bytes {
    let mut out = BytesMut::new();
    for (_, _, bytes) in log.batches.iter().filter(|(_, last, _)| *last >= offset) {
        if !out.is_empty() && out.len() + bytes.len() > max_bytes.max(0) as usize {
            break;
        }
        out.extend_from_slice(bytes);
    }
    out.freeze()
}
