//! A shard: one core's executor state. Owns the partition logs assigned to it
//! (only this shard touches their files), its catalog snapshot, its end of the
//! mesh and its connections. Shared nothing: other shards reach these logs
//! only by mesh calls, which the owner asserts on arrival.

pub mod mesh;
pub mod messages;
pub mod router;
pub mod watchdog;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::ServeArgs;
use crate::groups::GroupCoordinator;
use crate::log::{LogError, PartitionLog};
use crate::metadata::Catalog;
use mesh::Mesh;
use messages::{ShardRequest, ShardResponse};

/// A fenced partition (its writer failed: disk full, I/O error) is reopened at most
/// this often after its first failure, so a disk that stays broken costs one recovery
/// scan per interval, not one per produce request. Each failed reopen doubles the
/// interval up to REOPEN_INTERVAL_MS_MAX (a persistent cause such as EMFILE would
/// otherwise log two lines a second forever).
const REOPEN_INTERVAL_MS: u64 = 1000;
const REOPEN_INTERVAL_MS_MAX: u64 = 60_000;

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

pub struct Shard {
    pub id: usize,
    pub count: usize,
    pub args: Arc<ServeArgs>,
    pub mesh: Mesh,
    catalog: RefCell<Arc<Catalog>>,
    logs: RefCell<HashMap<String, TopicLogs>>,
    /// Notified after every append on this shard: long-polling fetches wait on it.
    pub appended: event_listener::Event,
    /// Serialises catalog changes on shard 0 across their awaits.
    pub admin_lock: glommio::sync::Semaphore,
    pub stopping: Cell<bool>,
    pub connections: Cell<usize>,
    /// The group coordinator for the groups that hash to this shard; set once
    /// at start-up, after the partitions are open.
    groups: RefCell<Option<Rc<GroupCoordinator>>>,
    /// Per fenced partition: last reopen attempt, whether one is running, and how many
    /// failed in a row; bounded by the partitions this shard owns.
    reopens: RefCell<HashMap<(String, i32), Reopen>>,
}

impl Shard {
    pub fn new(args: Arc<ServeArgs>, count: usize, mesh: Mesh) -> Self {
        Self {
            id: mesh.me(),
            count,
            args,
            mesh,
            catalog: RefCell::new(Arc::new(Catalog::default())),
            logs: RefCell::new(HashMap::new()),
            appended: event_listener::Event::new(),
            admin_lock: glommio::sync::Semaphore::new(1),
            stopping: Cell::new(false),
            connections: Cell::new(0),
            groups: RefCell::new(None),
            reopens: RefCell::new(HashMap::new()),
        }
    }

    pub fn groups(&self) -> Option<Rc<GroupCoordinator>> {
        self.groups.borrow().clone()
    }

    pub fn set_groups(&self, coordinator: Rc<GroupCoordinator>) {
        assert!(self.groups.borrow().is_none(), "the coordinator is opened once");
        *self.groups.borrow_mut() = Some(coordinator);
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.borrow().clone()
    }

    /// The local log of `topic`/`partition`, if this shard owns it.
    pub fn log(&self, topic: &str, partition: i32) -> Option<Rc<PartitionLog>> {
        self.logs
            .borrow()
            .get(topic)
            .and_then(|t| t.partitions.get(&partition))
            .cloned()
    }

    pub fn all_logs(&self) -> Vec<Rc<PartitionLog>> {
        self.logs
            .borrow()
            .values()
            .flat_map(|t| t.partitions.values().cloned())
            .collect()
    }

    pub fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.args.data_dir.join(format!("{topic}-{partition}"))
    }

    /// Adopt `next`: open the partitions newly assigned here, delete those
    /// whose topic is gone (or was re-created with a new id). Opening runs
    /// recovery, so this is also the start-up path.
    pub async fn apply_catalog(&self, next: Arc<Catalog>) -> Result<(), LogError> {
        let stale: Vec<(String, Rc<PartitionLog>)> = {
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
        };
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
            tracing::info!(shard = self.id, topic = %name, "deleting partition log");
            log.delete().await?;
        }
        if let Some(groups) = self.groups() {
            for topic in removed_topics {
                crate::groups_glue::execute(&groups, crate::groups_glue::GroupCall::RemoveTopic(topic)).await;
            }
        }
        for topic in next.topics.values() {
            for p in 0..topic.partition_count() {
                if topic.owner(p, self.count) != Some(self.id) || self.log(&topic.name, p).is_some() {
                    continue;
                }
                let log =
                    PartitionLog::open(self.partition_dir(&topic.name, p), topic.config.log_config()).await?;
                let mut logs = self.logs.borrow_mut();
                let entry = logs.entry(topic.name.clone()).or_insert_with(|| TopicLogs {
                    id: topic.id,
                    partitions: HashMap::new(),
                });
                entry.partitions.insert(p, log);
            }
        }
        Ok(())
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
                        shard = self.id,
                        topic,
                        partition,
                        "reopened a failed partition log"
                    );
                }
                true
            }
            Err(e) => {
                tracing::warn!(shard = self.id, topic, partition, error = %crate::error::chain(&e), "reopening a failed partition log failed");
                false
            }
        }
    }

    /// Serve a call that arrived over the mesh.
    pub async fn handle_remote(self: &Rc<Self>, body: ShardRequest) -> ShardResponse {
        use crate::handlers;
        match body {
            ShardRequest::Produce { parts } => {
                ShardResponse::Produce(handlers::produce::append_local(self, parts).await)
            }
            ShardRequest::AwaitDurable { parts } => {
                ShardResponse::Produce(handlers::produce::durable_local(self, parts).await)
            }
            ShardRequest::Fetch { wait, parts } => {
                ShardResponse::Fetch(handlers::fetch::fetch_local(self, wait, parts).await)
            }
            ShardRequest::ListOffsets { parts } => {
                ShardResponse::ListOffsets(handlers::list_offsets::list_local(self, parts).await)
            }
            ShardRequest::ApplyCatalog(catalog) => {
                if let Err(e) = self.apply_catalog(catalog).await {
                    tracing::error!(shard = self.id, error = %e, "applying the catalog failed");
                }
                ShardResponse::Applied
            }
            ShardRequest::Admin(req) => {
                ShardResponse::Admin(handlers::topics::admin_on_shard0(self, req).await)
            }
            ShardRequest::Group(call) => {
                // Mesh calls are received only after start-up opened the coordinator.
                let coordinator = self.groups().expect("coordinator opened before the mesh listens");
                ShardResponse::Group(Box::new(crate::groups_glue::execute(&coordinator, *call).await))
            }
        }
    }

    /// Close every local log (flush, clean-shutdown markers) and the group
    /// coordinator.
    pub async fn close_logs(&self) {
        if let Some(groups) = self.groups() {
            if let Err(e) = groups.close().await {
                tracing::error!(shard = self.id, error = %e, "closing the group coordinator failed");
            }
        }
        for log in self.all_logs() {
            if let Err(e) = log.close().await {
                tracing::error!(shard = self.id, error = %e, "closing a partition log failed");
            }
        }
    }
}
