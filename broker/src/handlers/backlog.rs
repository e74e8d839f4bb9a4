//! Bounded backlog (`backlog.bytes.max`, `backlog.records.max`,
//! `backlog.policy`; docs/peak-shaving.md). A partition's backlog is what lies
//! between its floor and the end of its log; the floor is the lowest offset any
//! consumer group committed for it, or any share group's start offset, or the
//! log start when no group has either. Past the bound a Produce is refused
//! (`reject`) or accepted with a throttle time (`throttle`).
//!
//! Each shard keeps the floors of the bounded partitions it owns
//! (`ShardBacklog`), refreshed every `REFRESH_MS` by asking every shard's group
//! coordinator (`LowestCommitted`, over the mesh: no lock is shared) and its own
//! share state. Nothing is stored: at start-up the first refresh recomputes the
//! floors from the groups' durable offsets. The produce check (`check`) is one
//! map probe and a few comparisons per partition, nothing per record; with no
//! bounded topic it is one catalog lookup.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use kafka_protocol::ResponseError;

use super::{Refused, ShardContext};
use crate::log::{Offset, PartitionLog};
use crate::metadata::topic_config::{BacklogPolicy, QueueConfig};
use crate::shard::{run_on, Task};

/// How often the floors are refreshed: a commit frees room at most this late.
pub const REFRESH_MS: u64 = 250;
/// A throttled Produce waits at least this long: enough to slow a client that
/// sends small requests back to back.
pub const THROTTLE_MIN_MS: u64 = 100;
/// Added throttle per whole bound the backlog is over it.
pub const THROTTLE_PER_BOUND_MS: u64 = 1_000;
/// The longest throttle one answer carries. A muted connection delays the
/// requests a client already pipelined on it, each by up to this much, and all
/// three clients time a request out after 30 s (request.timeout.ms, kafkajs's
/// requestTimeout): a few pipelined requests must still fit.
pub const THROTTLE_MAX_MS: u64 = 5_000;

/// One partition's backlog now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backlog {
    /// The slowest group's offset (`None`: no group, the log start counts).
    pub floor: Option<i64>,
    pub records: u64,
    /// From the offset index: at most one index interval above the exact count.
    pub bytes: u64,
}

/// The floors of the bounded partitions this shard owns, by topic and partition.
#[derive(Default)]
pub struct ShardBacklog {
    floors: RefCell<HashMap<String, HashMap<i32, i64>>>,
}

impl ShardBacklog {
    /// The backlog of `log` as the last refresh saw its floor.
    pub fn of(&self, topic: &str, partition: i32, log: &PartitionLog) -> Backlog {
        let floor = self
            .floors
            .borrow()
            .get(topic)
            .and_then(|p| p.get(&partition).copied());
        measure(log, floor)
    }

    fn replace(&self, next: HashMap<String, HashMap<i32, i64>>) {
        *self.floors.borrow_mut() = next;
    }
}

fn measure(log: &PartitionLog, floor: Option<i64>) -> Backlog {
    let start = log.log_start_offset().0;
    let end = log.log_end_offset().0;
    let from = floor.map_or(start, |f| f.clamp(start, end));
    Backlog {
        floor,
        records: u64::try_from(end - from).unwrap_or(0),
        bytes: log.bytes_from(Offset(from)),
    }
}

/// The produce check for one partition's `batch_bytes`/`batch_records`:
/// `Ok(throttle_ms)` (0 within the bound) or the refusal of `reject`.
/// `reject` refuses what would end past the bound, so the stored backlog never
/// exceeds it; `throttle` accepts and answers with a throttle time that grows
/// with the overshoot.
pub fn check(
    shard: &ShardContext,
    queue: &QueueConfig,
    (topic, partition): (&str, i32),
    log: &PartitionLog,
    (batch_bytes, batch_records): (u64, u64),
) -> Result<i32, Refused> {
    let (bytes_max, records_max) = queue.backlog_bounds();
    if bytes_max.is_none() && records_max.is_none() {
        return Ok(0);
    }
    let now = shard.backlog.of(topic, partition, log);
    let after_bytes = now.bytes + batch_bytes;
    let after_records = now.records + batch_records;
    let over_bytes = bytes_max.filter(|m| after_bytes > *m);
    let over_records = records_max.filter(|m| after_records > *m);
    if over_bytes.is_none() && over_records.is_none() {
        return Ok(0);
    }
    match queue.backlog_policy {
        BacklogPolicy::Reject => {
            let message = match (over_bytes, over_records) {
                (Some(max), _) => format!(
                    "backlog of topic {topic} partition {partition} is {} bytes, over backlog.bytes.max {max} with this batch of {batch_bytes} bytes (policy reject)",
                    now.bytes
                ),
                (None, max) => format!(
                    "backlog of topic {topic} partition {partition} is {} records, over backlog.records.max {} with this batch of {batch_records} (policy reject)",
                    now.records,
                    max.unwrap_or_default()
                ),
            };
            crate::metrics::with(|m| m.backlog_refused(false));
            Err(Refused {
                code: REJECT_ERROR.code(),
                message: Some(message),
            })
        }
        BacklogPolicy::Throttle => {
            // The overshoot in whole bounds, the larger of the two measures.
            let ratio =
                |after: u64, max: Option<u64>| max.map_or(0.0, |m| after.saturating_sub(m) as f64 / m as f64);
            let over = ratio(after_bytes, over_bytes).max(ratio(after_records, over_records));
            let ms = (THROTTLE_MIN_MS as f64 + over * THROTTLE_PER_BOUND_MS as f64)
                .min(THROTTLE_MAX_MS as f64) as u64;
            crate::metrics::with(|m| m.backlog_refused(true));
            Ok(i32::try_from(ms).unwrap_or(i32::MAX))
        }
    }
}

/// What `reject` answers: POLICY_VIOLATION is not retriable, so librdkafka,
/// kafka-python and kafkajs fail the send at once and report the broker's
/// error message (docs/peak-shaving.md has the comparison).
pub const REJECT_ERROR: ResponseError = ResponseError::PolicyViolation;

/// Ask a shard's group coordinator for the lowest committed offsets of some
/// partitions.
pub struct LowestCommittedOf(pub Vec<(String, i32)>);

impl Task<ShardContext> for LowestCommittedOf {
    type Output = Vec<Option<i64>>;

    async fn run(self, shard: Rc<ShardContext>) -> Vec<Option<i64>> {
        match shard.groups() {
            Some(g) => g.lowest_committed(&self.0),
            None => vec![None; self.0.len()],
        }
    }
}

/// Refresh this shard's floors every `REFRESH_MS` until the shard stops.
pub async fn refresh_loop(shard: Rc<ShardContext>) {
    loop {
        refresh(&shard).await;
        glommio::timer::sleep(Duration::from_millis(REFRESH_MS)).await;
        if shard.stopping.get() {
            return;
        }
    }
}

/// The bounded partitions this shard owns, then their floors from every
/// shard's groups and this shard's share groups. A shard that cannot answer
/// leaves its groups out this round (logged): the floor may read high for one
/// round, never forever.
pub async fn refresh(shard: &Rc<ShardContext>) {
    let wanted = bounded_partitions(shard);
    if wanted.is_empty() {
        shard.backlog.replace(HashMap::new());
        return;
    }
    let mut lowest: Vec<Option<i64>> = match shard.share() {
        Some(share) => share.lowest_start(&wanted),
        None => vec![None; wanted.len()],
    };
    let calls = (0..shard.count).map(|owner| {
        let (shard, task) = (shard.clone(), LowestCommittedOf(wanted.clone()));
        glommio::spawn_local(async move { (owner, run_on(&shard, owner, task).await) })
    });
    let calls: Vec<_> = calls.collect();
    for call in calls {
        match call.await {
            (_, Ok(answer)) => {
                for (slot, offset) in lowest.iter_mut().zip(answer) {
                    if let Some(o) = offset {
                        *slot = Some(slot.map_or(o, |s| s.min(o)));
                    }
                }
            }
            (owner, Err(e)) => tracing::warn!(owner, error = %e, "backlog floor query failed"),
        }
    }
    let mut next: HashMap<String, HashMap<i32, i64>> = HashMap::new();
    for ((topic, partition), floor) in wanted.into_iter().zip(lowest) {
        if let Some(floor) = floor {
            next.entry(topic).or_default().insert(partition, floor);
        }
    }
    shard.backlog.replace(next);
}

/// Partitions of topics with a backlog bound that this shard has open.
fn bounded_partitions(shard: &ShardContext) -> Vec<(String, i32)> {
    let catalog = shard.catalog();
    let mut out = Vec::new();
    for (name, meta) in &catalog.topics {
        let (bytes, records) = meta.config.queue.backlog_bounds();
        if bytes.is_none() && records.is_none() {
            continue;
        }
        for partition in 0..meta.partition_shards.len() {
            let partition = partition as i32;
            if shard.partitions.log(name, partition).is_some() {
                out.push((name.clone(), partition));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_the_reject_error_should_not_be_retriable() {
        assert!(!REJECT_ERROR.is_retriable());
    }
}
