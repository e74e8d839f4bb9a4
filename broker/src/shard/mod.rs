//! A shard: one core's executor state. Owns the partition logs assigned to it
//! (only this shard touches their files), its catalog snapshot, its end of the
//! mesh and its connections. Shared nothing: other shards reach these logs
//! only by mesh calls, which the owner asserts on arrival.

pub mod mesh;
pub mod messages;
pub mod router;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use crate::config::ServeArgs;
use crate::groups::GroupCoordinator;
use crate::log::{LogError, PartitionLog};
use crate::metadata::Catalog;
use mesh::Mesh;
use messages::{ShardRequest, ShardResponse};

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

    /// Serve a call that arrived over the mesh.
    pub async fn handle_remote(self: &Rc<Self>, body: ShardRequest) -> ShardResponse {
        use crate::handlers;
        match body {
            ShardRequest::Produce { acks, parts } => {
                ShardResponse::Produce(handlers::produce::produce_local(self, acks, parts).await)
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
                ShardResponse::Group(crate::groups_glue::execute(&coordinator, call).await)
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
