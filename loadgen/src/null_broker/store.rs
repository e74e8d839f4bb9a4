//! The null broker's memory of what it was sent (`--store`, tests only):
//! per partition the batches with their offsets, served back to Fetch and
//! ListOffsets, optionally stored out of order (`reorder_every`). A Fetch with
//! nothing to read waits until a Produce stores something for it (a long poll,
//! as a broker's), so an `e2e` run against it measures the generator's and the
//! machine's own latency floor.
//!
//! Memory is bounded per partition: past `STORED_BYTES_MAX` the oldest batches
//! are dropped, and a Fetch below what is kept starts at the oldest kept batch.

use std::collections::HashMap;
use std::collections::VecDeque;
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::FetchRequest;
use weir_protocol::record_batch::{self, BatchWalker};

use super::{topic_key, State};

/// Bytes kept per partition: an e2e run at 100 MB/s keeps its last ~2.5 s,
/// far more than a caught-up consumer lags.
const STORED_BYTES_MAX: usize = 256 * 1024 * 1024;

/// One partition's batches (base offsets rewritten), with `store`.
#[derive(Default)]
pub(super) struct StoredLog {
    pub(super) next_offset: i64,
    /// (base offset, last offset, batch) in offset order.
    batches: VecDeque<(i64, i64, Bytes)>,
    bytes: usize,
    received: u64,
}

impl StoredLog {
    fn push(&mut self, batch: &[u8]) {
        let delta = record_batch::header(batch).map_or(0, |h| i64::from(h.last_offset_delta.get()));
        let mut bytes = BytesMut::from(batch);
        bytes[..8].copy_from_slice(&self.next_offset.to_be_bytes());
        let last = self.next_offset + delta;
        self.bytes += bytes.len();
        self.batches.push_back((self.next_offset, last, bytes.freeze()));
        self.next_offset = last + 1;
        while self.bytes > STORED_BYTES_MAX && self.batches.len() > 1 {
            let (_, _, dropped) = self.batches.pop_front().expect("more than one batch");
            self.bytes -= dropped.len();
        }
    }

    fn pop(&mut self) -> Option<(i64, i64, Bytes)> {
        let popped = self.batches.pop_back();
        if let Some((_, _, bytes)) = &popped {
            self.bytes -= bytes.len();
        }
        popped
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
            log.pop()
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
    drop(logs);
    state.grown.notify_all();
}

/// Wait until a stored partition of the Fetch has records at its offset, at
/// most `wait`.
pub(super) fn wait_for_data(state: &State, req: &FetchRequest, wait: Duration) {
    let deadline = Instant::now() + wait;
    let mut logs = state.logs.lock().unwrap_or_else(|p| p.into_inner());
    while !has_data(&logs, req) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        logs = match state.grown.wait_timeout(logs, left) {
            Ok((guard, _)) => guard,
            Err(poisoned) => poisoned.into_inner().0,
        };
    }
}

fn has_data(logs: &MutexGuard<'_, HashMap<(u128, i32), StoredLog>>, req: &FetchRequest) -> bool {
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
    // Batches are in offset order: find the first that ends at or after `offset`.
    let first = log.batches.partition_point(|(_, last, _)| *last < offset);
    for (_, _, bytes) in log.batches.range(first..) {
        if !out.is_empty() && out.len() + bytes.len() > max_bytes.max(0) as usize {
            break;
        }
        out.extend_from_slice(bytes);
    }
    out.freeze()
}
