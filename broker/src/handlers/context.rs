//! What one shard's handlers work with: its identity and end of the mesh (for
//! the runtime), the partitions it owns, its group and transaction coordinators, and the state
//! the network layer shares with it (stop flag, connection count). One per
//! shard, behind `Rc`, touched only on that shard's executor.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use crate::acl::{Access, Authorizer};
use crate::config::ServeArgs;
use crate::groups::call::{execute, GroupCall};
use crate::groups::GroupCoordinator;
use crate::log::LogError;
use crate::metadata::producer_ids::ProducerIds;
use crate::metadata::Catalog;
use crate::partitions::Partitions;
use crate::shard::{Mesh, Runtime};
use crate::share::session::Sessions;
use crate::share::ShareState;
use crate::timer::TimerStore;
use crate::txn::TxnCoordinator;

pub struct ShardContext {
    pub id: usize,
    pub count: usize,
    pub args: Arc<ServeArgs>,
    pub mesh: Mesh<ShardContext>,
    pub partitions: Rc<Partitions>,
    /// Notified once, at shutdown: long-polling fetches end at once. (Appends
    /// wake only the fetches of their partition: `PartitionLog::listen_for_data`.)
    pub stop_event: event_listener::Event,
    /// Serialises catalog changes on shard 0 across their awaits.
    pub admin_lock: glommio::sync::Semaphore,
    pub stopping: Cell<bool>,
    pub connections: Cell<usize>,
    /// The catalog's client quotas as this shard matches them, and its rate sensors.
    pub quotas: crate::quota::ShardQuotas,
    /// The floors of the bounded-backlog partitions this shard owns (backlog.rs).
    pub backlog: crate::handlers::backlog::ShardBacklog,
    /// The group coordinator for the groups that hash to this shard; set once
    /// at start-up, after the partitions are open.
    groups: RefCell<Option<Rc<GroupCoordinator>>>,
    /// Shard 0 only: the producer-id allocator, set once at start-up.
    producer_ids: RefCell<Option<Rc<ProducerIds>>>,
    /// The transaction coordinator for the transactional ids that hash to this
    /// shard; set once at start-up.
    txns: RefCell<Option<Rc<TxnCoordinator>>>,
    /// The share-partitions of the partitions this shard owns; set once at start-up.
    share: RefCell<Option<Rc<ShareState>>>,
    /// The timer store of delayed records for this shard's partitions; set once at start-up.
    timers: RefCell<Option<Rc<TimerStore>>>,
    /// The share sessions of the members whose connections this shard serves.
    pub share_sessions: RefCell<Sessions>,
    /// The catalog's ACLs compiled for checks, rebuilt by `apply_catalog`.
    acls: RefCell<Rc<Authorizer>>,
}

impl Runtime for ShardContext {
    fn shard_id(&self) -> usize {
        self.id
    }

    fn shard_count(&self) -> usize {
        self.count
    }

    fn mesh(&self) -> &Mesh<Self> {
        &self.mesh
    }
}

impl ShardContext {
    pub fn new(args: Arc<ServeArgs>, count: usize, mesh: Mesh<ShardContext>) -> Self {
        let id = mesh.me();
        Self {
            id,
            count,
            partitions: Rc::new(Partitions::new(id, count, args.data_dir.clone())),
            args,
            mesh,
            stop_event: event_listener::Event::new(),
            admin_lock: glommio::sync::Semaphore::new(1),
            stopping: Cell::new(false),
            connections: Cell::new(0),
            quotas: crate::quota::ShardQuotas::new(),
            backlog: crate::handlers::backlog::ShardBacklog::default(),
            groups: RefCell::new(None),
            producer_ids: RefCell::new(None),
            txns: RefCell::new(None),
            share: RefCell::new(None),
            timers: RefCell::new(None),
            share_sessions: RefCell::new(Sessions::default()),
            acls: RefCell::new(Rc::new(Authorizer::default())),
        }
    }

    pub fn groups(&self) -> Option<Rc<GroupCoordinator>> {
        self.groups.borrow().clone()
    }

    pub fn set_groups(&self, coordinator: Rc<GroupCoordinator>) {
        assert!(self.groups.borrow().is_none(), "the coordinator is opened once");
        *self.groups.borrow_mut() = Some(coordinator);
    }

    pub fn txns(&self) -> Option<Rc<TxnCoordinator>> {
        self.txns.borrow().clone()
    }

    pub fn set_txns(&self, coordinator: Rc<TxnCoordinator>) {
        assert!(self.txns.borrow().is_none(), "the coordinator is opened once");
        *self.txns.borrow_mut() = Some(coordinator);
    }

    pub fn share(&self) -> Option<Rc<ShareState>> {
        self.share.borrow().clone()
    }

    pub fn set_share(&self, state: Rc<ShareState>) {
        assert!(self.share.borrow().is_none(), "the share state is opened once");
        *self.share.borrow_mut() = Some(state);
    }

    pub fn timers(&self) -> Option<Rc<TimerStore>> {
        self.timers.borrow().clone()
    }

    pub fn set_timers(&self, store: Rc<TimerStore>) {
        assert!(self.timers.borrow().is_none(), "the timer store is opened once");
        *self.timers.borrow_mut() = Some(store);
    }

    pub fn producer_ids(&self) -> Option<Rc<ProducerIds>> {
        self.producer_ids.borrow().clone()
    }

    pub fn set_producer_ids(&self, ids: ProducerIds) {
        assert_eq!(self.id, 0, "shard 0 allocates producer ids");
        *self.producer_ids.borrow_mut() = Some(Rc::new(ids));
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        self.partitions.catalog()
    }

    /// Adopt `next` (open new partitions, delete removed ones) and drop the
    /// committed offsets and read counters of topics that are gone.
    pub async fn apply_catalog(&self, next: Arc<Catalog>) -> Result<(), LogError> {
        self.quotas.apply(&next.quotas);
        let acls = Authorizer::new(&next.acls, &self.args.super_users);
        *self.acls.borrow_mut() = Rc::new(acls);
        let removed = self.partitions.apply(next).await?;
        // Every shard answers fetches, so every shard holds read counters by name.
        crate::metrics::with(|m| removed.iter().for_each(|t| m.forget_topic(t)));
        if let Some(share) = self.share() {
            if let Err(e) = share.forget(|k| removed.contains(&k.1)).await {
                tracing::error!(shard = self.id, error = %e, "forgetting share state of deleted topics failed");
            }
        }
        if let Some(groups) = self.groups() {
            for topic in removed {
                execute(&groups, GroupCall::RemoveTopic(topic)).await;
            }
        }
        Ok(())
    }

    /// Who is asking on a connection from `peer`, for the checks of one
    /// request (`principal` `None`: no SASL, nothing is checked).
    pub fn access(&self, principal: Option<Rc<str>>, peer: std::net::SocketAddr) -> Access {
        Access {
            authz: self.acls.borrow().clone(),
            principal,
            peer,
        }
    }

    /// Close the group coordinator and every local log (flush, clean-shutdown
    /// markers).
    pub async fn close(&self) {
        if let Some(groups) = self.groups() {
            if let Err(e) = groups.close().await {
                tracing::error!(shard = self.id, error = %e, "closing the group coordinator failed");
            }
        }
        if let Some(txns) = self.txns() {
            txns.close().await;
        }
        if let Some(share) = self.share() {
            share.close().await;
        }
        if let Some(timers) = self.timers() {
            timers.close().await;
        }
        self.partitions.close_all().await;
    }
}
