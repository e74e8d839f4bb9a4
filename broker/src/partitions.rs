//! The partition logs one shard owns, and its snapshot of the catalog they
//! follow. Only the owning shard touches these logs (`PartitionLog` is `!Send`);
//! other shards reach them with tasks over the mesh. Invariants: a log is open
//! here iff the catalog snapshot assigns its partition to this shard (between
//! `apply` calls); a fenced log (failed writer) is reopened at most once per
//! backoff interval, one reopen at a time.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::log::{LogError, PartitionLog};
use crate::metadata::Catalog;

/// A fenced partition (its writer failed: disk full, I/O error) is reopened at most
/// this often after its first failure, so a disk that stays broken costs one recovery
/// scan per interval, not one per produce request. Each failed reopen doubles the
/// interval up to REOPEN_INTERVAL_MS_MAX (a persistent cause such as EMFILE would
/// otherwise log two lines a second forever).
const REOPEN_INTERVAL_MS: u64 = 1000;
const REOPEN_INTERVAL_MS_MAX: u64 = 60_000;

/// Partitions opened (or closed) at once at start-up and stop: enough to overlap
/// their disk waits, few enough that their buffers and ring entries stay small.
const OPEN_CONCURRENCY: usize = 64;

/// Reopen state of one fenced partition.
#[derive(Clone, Copy)]
struct Reopen {
    at: Instant,
    running: bool,
    failures: u32,
}

/// The open logs of one topic on this shard, keyed by partition.
struct TopicLogs {
    id: [u8; 16],
    partitions: HashMap<i32, Rc<PartitionLog>>,
}

/// Whether this shard may serve a partition, per its catalog snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// Not in the catalog (never created, or deleted meanwhile).
    Unknown,
    /// Another shard owns it: the request was routed on an older catalog.
    Elsewhere(usize),
}

pub struct Partitions {
    shard: usize,
    shard_count: usize,
    data_dir: PathBuf,
    catalog: RefCell<Arc<Catalog>>,
    logs: RefCell<HashMap<String, TopicLogs>>,
    /// Per fenced partition: last reopen attempt, whether one is running, and how many
    /// failed in a row; bounded by the partitions this shard owns.
    reopens: RefCell<HashMap<(String, i32), Reopen>>,
}

impl Partitions {
    pub fn new(shard: usize, shard_count: usize, data_dir: PathBuf) -> Self {
        Self {
            shard,
            shard_count,
            data_dir,
            catalog: RefCell::new(Arc::new(Catalog::default())),
            logs: RefCell::new(HashMap::new()),
            reopens: RefCell::new(HashMap::new()),
        }
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.borrow().clone()
    }

    /// The local log of `topic`/`partition`, if this shard has it open.
    pub fn log(&self, topic: &str, partition: i32) -> Option<Rc<PartitionLog>> {
        self.logs
            .borrow()
            .get(topic)
            .and_then(|t| t.partitions.get(&partition))
            .cloned()
    }

    /// The log a task was sent for, or why this shard cannot serve it. A task
    /// routed here on an older catalog (the topic was deleted or re-created
    /// meanwhile) is refused, never served from a log this shard does not own.
    pub fn owned(&self, topic: &str, partition: i32) -> Result<Rc<PartitionLog>, Ownership> {
        if let Some(log) = self.log(topic, partition) {
            return Ok(log);
        }
        let owner = self
            .catalog()
            .topic(topic)
            .and_then(|t| t.owner(partition, self.shard_count));
        match owner {
            Some(other) if other != self.shard => {
                tracing::warn!(
                    shard = self.shard,
                    topic,
                    partition,
                    owner = other,
                    "task for a partition another shard owns"
                );
                Err(Ownership::Elsewhere(other))
            }
            _ => Err(Ownership::Unknown),
        }
    }

    pub fn all(&self) -> Vec<Rc<PartitionLog>> {
        self.logs
            .borrow()
            .values()
            .flat_map(|t| t.partitions.values().cloned())
            .collect()
    }

    /// Every open log with its topic and partition.
    pub fn named(&self) -> Vec<(String, i32, Rc<PartitionLog>)> {
        self.logs
            .borrow()
            .iter()
            .flat_map(|(topic, t)| {
                t.partitions
                    .iter()
                    .map(|(p, log)| (topic.clone(), *p, log.clone()))
            })
            .collect()
    }

    /// Failed reopens in a row of a fenced partition, and whether one is running now.
    pub fn reopen_state(&self, topic: &str, partition: i32) -> (u32, bool) {
        self.reopens
            .borrow()
            .get(&(topic.to_owned(), partition))
            .map_or((0, false), |r| (r.failures, r.running))
    }

    fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.data_dir.join(format!("{topic}-{partition}"))
    }

    /// Adopt `next`: open the partitions newly assigned here, give open ones
    /// their topic's current config, delete those
    /// whose topic is gone (or was re-created with a new id). Opening runs
    /// recovery, so this is also the start-up path. Returns the names of the
    /// topics that are gone, for the group coordinator to forget.
    pub async fn apply(&self, next: Arc<Catalog>) -> Result<Vec<String>, LogError> {
        let stale = self.detach_removed(&next);
        let removed_topics: Vec<String> = {
            let before = self.catalog.borrow();
            before
                .topics
                .values()
                .filter(|t| next.topic(&t.name).is_none_or(|n| n.id != t.id))
                .map(|t| t.name.clone())
                .collect()
        };
        *self.catalog.borrow_mut() = next.clone();
        for (name, log) in stale {
            tracing::info!(shard = self.shard, topic = %name, "deleting partition log");
            log.delete().await?;
        }
        let mut to_open = Vec::new();
        for topic in next.topics.values() {
            for p in 0..topic.partition_count() {
                if topic.owner(p, self.shard_count) != Some(self.shard) {
                    continue;
                }
                if let Some(log) = self.log(&topic.name, p) {
                    // AlterConfigs: an open log follows its topic's config live.
                    log.set_config(topic.config.log_config())?;
                    continue;
                }
                to_open.push((topic, p));
            }
        }
        // Opening waits on the disk a dozen times per partition (recovery, indexes,
        // producer snapshot); one at a time, 10,000 partitions took 7.6 s to start.
        // A bounded number at once overlaps those waits.
        for chunk in to_open.chunks(OPEN_CONCURRENCY) {
            let tasks: Vec<_> = chunk
                .iter()
                .map(|(topic, p)| {
                    let (dir, config) = (self.partition_dir(&topic.name, *p), topic.config.log_config());
                    glommio::spawn_local(PartitionLog::open(dir, config))
                })
                .collect();
            let mut first_error = None;
            for (task, (topic, p)) in tasks.into_iter().zip(chunk) {
                // Every task of the chunk is awaited, so none is cancelled half-open.
                match task.await {
                    Ok(log) => {
                        let mut logs = self.logs.borrow_mut();
                        let entry = logs.entry(topic.name.clone()).or_insert_with(|| TopicLogs {
                            id: topic.id,
                            partitions: HashMap::new(),
                        });
                        entry.partitions.insert(*p, log);
                    }
                    Err(e) => first_error = first_error.or(Some(e)),
                }
            }
            if let Some(e) = first_error {
                return Err(e);
            }
        }
        Ok(removed_topics)
    }

    /// Take out the logs whose topic `next` no longer has (or has under a new id).
    fn detach_removed(&self, next: &Catalog) -> Vec<(String, Rc<PartitionLog>)> {
        let mut logs = self.logs.borrow_mut();
        let gone: Vec<String> = logs
            .iter()
            .filter(|(name, t)| next.topic(name).is_none_or(|m| m.id != t.id))
            .map(|(name, _)| name.clone())
            .collect();
        gone.into_iter()
            .flat_map(|name| {
                let t = logs.remove(&name).expect("listed above");
                t.partitions.into_values().map(move |l| (name.clone(), l))
            })
            .collect()
    }

    /// Make a fenced partition writable again once the cause clears (ENOSPC after
    /// space is freed): close it and open it afresh, which runs crash recovery (keeps
    /// every durable batch, cuts the unwritten tail). Rate-limited, one at a time.
    pub async fn reopen_if_failed(self: Rc<Self>, topic: String, partition: i32) {
        let key = (topic, partition);
        let failures = {
            let mut reopens = self.reopens.borrow_mut();
            let failures = reopens.get(&key).map_or(0, |e| e.failures);
            let interval_ms = (REOPEN_INTERVAL_MS << failures.min(16)).min(REOPEN_INTERVAL_MS_MAX);
            if let Some(last) = reopens.get(&key) {
                if last.running || last.at.elapsed() < Duration::from_millis(interval_ms) {
                    return;
                }
            }
            let running = Reopen {
                at: Instant::now(),
                running: true,
                failures,
            };
            reopens.insert(key.clone(), running);
            failures
        };
        let reopened = self.reopen(&key.0, key.1).await;
        let failures = if reopened { 0 } else { failures + 1 };
        if let Some(entry) = self.reopens.borrow_mut().get_mut(&key) {
            *entry = Reopen {
                at: Instant::now(),
                running: false,
                failures,
            };
        }
    }

    /// Returns whether the partition is usable afterwards.
    async fn reopen(&self, topic: &str, partition: i32) -> bool {
        let Some(old) = self.log(topic, partition).filter(|l| l.failure().is_some()) else {
            return true;
        };
        let Some(config) = self.catalog().topic(topic).map(|t| t.config.log_config()) else {
            return true;
        };
        // The writer is gone already; close only marks the log closed (no marker).
        let _ = old.close().await;
        match PartitionLog::open(self.partition_dir(topic, partition), config).await {
            Ok(log) => {
                let mut logs = self.logs.borrow_mut();
                let slot = logs.get_mut(topic).and_then(|t| t.partitions.get_mut(&partition));
                if let Some(slot) = slot.filter(|s| Rc::ptr_eq(s, &old)) {
                    *slot = log;
                    tracing::warn!(
                        shard = self.shard,
                        topic,
                        partition,
                        "reopened a failed partition log"
                    );
                }
                true
            }
            Err(e) => {
                tracing::warn!(shard = self.shard, topic, partition, error = %crate::error::chain(&e), "reopening a failed partition log failed");
                false
            }
        }
    }

    /// Close every log: flush, clean-shutdown markers. A bounded number at once,
    /// as in `apply` (one at a time, 10,000 partitions took 17 s to stop).
    pub async fn close_all(&self) {
        let all = self.all();
        for chunk in all.chunks(OPEN_CONCURRENCY) {
            let closing = chunk.iter().map(|log| {
                let log = Rc::clone(log);
                glommio::spawn_local(async move { log.close().await })
            });
            let tasks: Vec<_> = closing.collect();
            for task in tasks {
                if let Err(e) = task.await {
                    tracing::error!(shard = self.shard, error = %e, "closing a partition log failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::test_support::{data_dir, run};
    use crate::metadata::catalog::{random_id, Placement};
    use crate::metadata::test_topic_config;

    #[test]
    fn given_a_catalog_when_a_task_names_a_partition_should_serve_only_those_this_shard_owns() {
        let dir = data_dir();
        let path = dir.path().to_path_buf();
        run(async move {
            let placement = Placement::Balanced {
                partitions: 4,
                replication_factor: 1,
            };
            let catalog =
                Catalog::new("c".into()).with_topic("t", random_id(), placement, test_topic_config(), 2);
            let owners: Vec<Option<usize>> =
                (0..4).map(|p| catalog.topic("t").unwrap().owner(p, 2)).collect();
            let mine = Partitions::new(0, 2, path);
            mine.apply(Arc::new(catalog)).await.unwrap();
            for (p, owner) in owners.iter().enumerate() {
                let served = mine.owned("t", p as i32);
                match owner {
                    Some(0) => assert!(served.is_ok(), "partition {p} is ours"),
                    Some(other) => {
                        assert_eq!(served.err(), Some(Ownership::Elsewhere(*other)), "partition {p}")
                    }
                    None => unreachable!("four partitions exist"),
                }
            }
            assert_eq!(mine.owned("t", 9).err(), Some(Ownership::Unknown));
            // The topic deleted between routing and arrival: unknown, not a panic.
            let removed = mine.apply(Arc::new(Catalog::new("c".into()))).await.unwrap();
            assert_eq!(removed, vec!["t".to_string()]);
            assert_eq!(mine.owned("t", 0).err(), Some(Ownership::Unknown));
            assert!(mine.all().is_empty());
        });
    }
}
