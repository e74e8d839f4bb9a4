//! GroupCoordinator: one shard's groups, Heartbeat and LeaveGroup, and the timer that expires
//! sessions and ends rebalances (JoinGroup/SyncGroup live in `rebalance`, offsets in `offsets`).
//! Owned by one shard (`Rc`, `!Send`). Never holds a RefCell borrow across an `.await`:
//! waiting JoinGroup/SyncGroup calls park on a one-slot local channel that the state machine
//! fills when the rebalance step completes, or drops when the member is removed.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse, LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::consumer::ConsumerGroup;
use super::group::{Group, GroupState};
use super::rebalance::{join_error, sync_error};
use super::store::{OffsetStore, StoreRecord};
use super::{GroupConfig, GroupError, NAME_BYTES_MAX};

/// See [`GroupCoordinator::offsets_file_stats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffsetsFileStats {
    pub file_bytes: u64,
    /// fdatasync calls for appends (group commit makes this smaller than the commit count).
    pub flush_count: u64,
    pub compaction_count: u64,
}

/// One shard's group coordinator. Create with [`GroupCoordinator::open`].
pub struct GroupCoordinator {
    pub(super) config: GroupConfig,
    pub(super) store: Rc<OffsetStore>,
    pub(super) groups: RefCell<HashMap<String, Group>>,
    pub(super) closed: Cell<bool>,
    member_counter: Cell<u64>,
}

pub(super) fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub(super) fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

impl GroupCoordinator {
    /// Opens the shard's offsets file in `dir` (replaying it, truncating a torn tail),
    /// restores the groups it describes and starts the group timer.
    pub async fn open(dir: PathBuf, config: GroupConfig) -> Result<Rc<Self>, GroupError> {
        assert!(
            config.min_session_timeout_ms <= config.max_session_timeout_ms,
            "session bounds"
        );
        assert!(config.timer_tick_ms > 0, "timer_tick_ms must be positive");
        assert!(
            config.min_session_timeout_ms > 0,
            "session timeouts must be positive"
        );
        let store = OffsetStore::open(&dir, config.offsets_file_compact_bytes).await?;
        let now = Instant::now();
        let mut groups = HashMap::new();
        {
            let state = store.state();
            for (id, stored) in &state.groups {
                groups.insert(id.clone(), Group::from_stored(id.clone(), stored, now));
            }
            for (id, image) in &state.consumer {
                let mut group = Group::new(id.clone(), wall_ms());
                group.consumer = Some(Box::new(ConsumerGroup::from_image(
                    image,
                    now,
                    config.consumer_session_timeout_ms,
                )));
                groups.insert(id.clone(), group);
            }
            for (id, offsets) in &state.offsets {
                let newest_ms = offsets.values().map(|o| o.commit_timestamp_ms).max().unwrap_or(0);
                groups
                    .entry(id.clone())
                    .or_insert_with(|| Group::new(id.clone(), newest_ms));
            }
        }
        let this = Rc::new(Self {
            config,
            store,
            groups: RefCell::new(groups),
            closed: Cell::new(false),
            member_counter: Cell::new(0),
        });
        Self::spawn_timer(Rc::downgrade(&this), this.config.clone());
        Ok(this)
    }

    fn spawn_timer(weak: Weak<Self>, config: GroupConfig) {
        let tick = Duration::from_millis(config.timer_tick_ms);
        let retention_every = Duration::from_millis(config.offsets_retention_check_interval_ms);
        glommio::spawn_local(async move {
            let mut last_retention = Instant::now();
            loop {
                glommio::timer::sleep(tick).await;
                let Some(this) = weak.upgrade() else { break };
                if this.closed.get() {
                    break;
                }
                let now = Instant::now();
                this.on_tick(now);
                if now.duration_since(last_retention) >= retention_every {
                    last_retention = now;
                    this.expire_groups(wall_ms());
                }
            }
        })
        .detach();
    }

    /// Expires sessions and pending member ids, ends rebalances whose time is up.
    pub(super) fn on_tick(&self, now: Instant) {
        let mut persist = Vec::new();
        let mut changed = false;
        let mut groups = self.groups.borrow_mut();
        for group in groups.values_mut() {
            if group.consumer.is_some() {
                changed |= self.consumer_tick(group, now, &mut persist);
                continue;
            }
            if group.share.is_some() {
                changed |= Self::share_tick(group, now);
                continue;
            }
            let idle = group.members.is_empty() && group.pending_members.is_empty();
            // A Stable group has nothing due before its earliest deadline (heartbeats only
            // push deadlines later), so most ticks skip it without looking at its members.
            let not_due = group.state == GroupState::Stable && group.scan_after.is_some_and(|t| now < t);
            if (idle && group.state == GroupState::Empty) || not_due {
                continue;
            }
            let state_before = group.state;
            let pending_before = group.pending_members.len();
            group.pending_members.retain(|(_, deadline)| *deadline > now);
            let expired: Vec<String> = group
                .members
                .iter()
                .filter(|m| m.heartbeat_deadline <= now && m.join_waiter.is_none() && m.sync_waiter.is_none())
                .map(|m| m.member_id.clone())
                .collect();
            changed |= !expired.is_empty() || pending_before != group.pending_members.len();
            for member_id in expired {
                tracing::info!(group = %group.group_id, member = %member_id, "session expired");
                self.remove_member(group, &member_id, now, &mut persist);
            }
            self.try_complete_join(group, now, &mut persist);
            changed |= state_before != group.state;
            group.scan_after = (group.state == GroupState::Stable)
                .then(|| {
                    group
                        .members
                        .iter()
                        .map(|m| m.heartbeat_deadline)
                        .chain(group.pending_members.iter().map(|p| p.1))
                        .min()
                })
                .flatten();
        }
        if changed {
            self.drop_dead_groups(&mut groups, &mut persist);
        }
        drop(groups);
        self.persist(persist);
    }

    /// Queues group-metadata records; their durability is not awaited (offset commits and
    /// the leader's assignments, in `sync_group`, are answered only after fdatasync).
    pub(super) fn persist(&self, records: Vec<StoreRecord>) {
        if records.is_empty() {
            return;
        }
        if let Err(e) = self.store.append_nowait(records) {
            tracing::warn!(error = %e, "group metadata not persisted");
        }
    }

    /// Forgets Empty groups that have no members, no pending joins and no offsets left.
    pub(super) fn drop_dead_groups(
        &self,
        groups: &mut HashMap<String, Group>,
        persist: &mut Vec<StoreRecord>,
    ) {
        let state = self.store.state();
        groups.retain(|id, g| {
            // A share group stays listed while empty (its record state lives on, on the
            // partitions' shards), as Kafka keeps it; bounded by GROUPS_PER_SHARD_MAX.
            let dead = g.state == GroupState::Empty
                && g.share.is_none()
                && !g.has_consumer_members()
                && g.members.is_empty()
                && g.pending_members.is_empty()
                && !state.offsets.contains_key(id)
                && !state.pending.contains_key(id);
            if dead && (state.groups.contains_key(id) || state.consumer.contains_key(id)) {
                persist.push(StoreRecord::GroupDelete { group: id.clone() });
            }
            !dead
        });
    }

    pub(super) fn new_member_id(&self, client_id: &str) -> String {
        let n = self.member_counter.get() + 1;
        self.member_counter.set(n);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let prefix = if client_id.is_empty() {
            "consumer"
        } else {
            client_id
        };
        let prefix = truncate_utf8(prefix, NAME_BYTES_MAX - 40);
        format!("{prefix}-{nanos:016x}-{n:08x}")
    }

    // ------------------------------------------------------------ Heartbeat, LeaveGroup

    pub async fn heartbeat(&self, req: HeartbeatRequest, _version: i16) -> HeartbeatResponse {
        let mut r = HeartbeatResponse::default();
        if let Err(e) = self.heartbeat_now(&req) {
            r.error_code = e.code();
        }
        r
    }

    fn heartbeat_now(&self, req: &HeartbeatRequest) -> Result<(), ResponseError> {
        if self.closed.get() {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        let mut groups = self.groups.borrow_mut();
        let group = groups
            .get_mut(req.group_id.as_str())
            .ok_or(ResponseError::UnknownMemberId)?;
        let member_id = req.member_id.as_str();
        if let Some(cg) = group.consumer.as_deref_mut() {
            return super::consumer::classic::heartbeat(cg, req, Instant::now());
        }
        if group.is_fenced(member_id, req.group_instance_id.as_deref()) {
            return Err(ResponseError::FencedInstanceId);
        }
        if group.state == GroupState::Empty || group.member(member_id).is_none() {
            return Err(ResponseError::UnknownMemberId);
        }
        if req.generation_id != group.generation_id {
            return Err(ResponseError::IllegalGeneration);
        }
        group
            .member_mut(member_id)
            .expect("checked")
            .touch(Instant::now());
        if group.state == GroupState::PreparingRebalance {
            return Err(ResponseError::RebalanceInProgress);
        }
        Ok(())
    }

    pub async fn leave_group(&self, req: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
        let mut r = LeaveGroupResponse::default();
        if self.closed.get() {
            r.error_code = ResponseError::CoordinatorNotAvailable.code();
            return r;
        }
        let leaving: Vec<(String, Option<String>)> = if version <= 2 {
            vec![(req.member_id.as_str().to_owned(), None)]
        } else {
            req.members
                .iter()
                .map(|m| {
                    (
                        m.member_id.as_str().to_owned(),
                        m.group_instance_id.as_deref().map(str::to_owned),
                    )
                })
                .collect()
        };
        let now = Instant::now();
        let mut persist = Vec::new();
        let mut groups = self.groups.borrow_mut();
        for (member_id, instance_id) in leaving {
            let result = match groups.get_mut(req.group_id.as_str()) {
                None => Err(ResponseError::UnknownMemberId),
                Some(group) => self.leave_one(group, &member_id, instance_id.as_deref(), now, &mut persist),
            };
            let code = result.err().map_or(0, |e| e.code());
            if version <= 2 {
                r.error_code = code;
            } else {
                let mut m = MemberResponse::default();
                m.member_id = sb(&member_id);
                m.group_instance_id = instance_id.as_deref().map(sb);
                m.error_code = code;
                r.members.push(m);
            }
        }
        self.drop_dead_groups(&mut groups, &mut persist);
        drop(groups);
        self.persist(persist);
        r
    }

    fn leave_one(
        &self,
        group: &mut Group,
        member_id: &str,
        instance_id: Option<&str>,
        now: Instant,
        persist: &mut Vec<StoreRecord>,
    ) -> Result<(), ResponseError> {
        if let Some(cg) = group.consumer.as_deref_mut() {
            // A classic member of a consumer group leaving (after an online upgrade).
            let id = match instance_id {
                Some(instance) => cg
                    .static_member(instance)
                    .map(|m| m.member_id.clone())
                    .ok_or(ResponseError::UnknownMemberId)?,
                None => member_id.to_owned(),
            };
            if !cg.remove_member(&id) {
                return Err(ResponseError::UnknownMemberId);
            }
            persist.extend(cg.take_records(&group.group_id));
            return Ok(());
        }
        let target = match instance_id {
            Some(instance) => {
                let found = group
                    .member_by_instance(instance)
                    .ok_or(ResponseError::UnknownMemberId)?;
                if !member_id.is_empty() && found.member_id != member_id {
                    return Err(ResponseError::FencedInstanceId);
                }
                found.member_id.clone()
            }
            None => {
                if let Some(index) = group.pending_members.iter().position(|(id, _)| id == member_id) {
                    group.pending_members.swap_remove(index);
                    return Ok(());
                }
                group
                    .member(member_id)
                    .ok_or(ResponseError::UnknownMemberId)?
                    .member_id
                    .clone()
            }
        };
        self.remove_member(group, &target, now, persist);
        Ok(())
    }

    /// Removes a member (its waiting calls resolve with UNKNOWN_MEMBER_ID) and rebalances.
    pub(super) fn remove_member(
        &self,
        group: &mut Group,
        member_id: &str,
        now: Instant,
        persist: &mut Vec<StoreRecord>,
    ) {
        group.members.retain(|m| m.member_id != member_id);
        if group.is_leader(member_id) {
            group.leader_id = group.members.first().map(|m| m.member_id.clone());
        }
        if matches!(group.state, GroupState::Stable | GroupState::CompletingRebalance) {
            self.prepare_rebalance(group, now);
        }
        self.try_complete_join(group, now, persist);
    }

    /// Current state of a group, `None` if this shard does not know it.
    pub fn group_state(&self, group_id: &str) -> Option<GroupState> {
        self.groups.borrow().get(group_id).map(|g| g.state)
    }

    /// The offsets file's size and activity since open, for tests and metrics.
    pub fn offsets_file_stats(&self) -> OffsetsFileStats {
        OffsetsFileStats {
            file_bytes: self.store.file_bytes(),
            flush_count: self.store.flushes(),
            compaction_count: self.store.compactions(),
        }
    }

    /// Every committed offset this shard holds, as (group, topic, partition, offset),
    /// for the consumer-lag metrics.
    pub fn committed_offsets(&self) -> Vec<(String, String, i32, i64)> {
        let state = self.store.state();
        state
            .offsets
            .iter()
            .flat_map(|(group, offsets)| {
                offsets
                    .iter()
                    .map(move |((topic, partition), c)| (group.clone(), topic.clone(), *partition, c.offset))
            })
            .collect()
    }

    /// The lowest offset any group on this shard committed for each of
    /// `partitions` (`None`: none did), for the backlog bound (handlers/backlog.rs).
    /// Costs one map probe per group and partition asked about.
    pub fn lowest_committed(&self, partitions: &[(String, i32)]) -> Vec<Option<i64>> {
        let state = self.store.state();
        let mut out = vec![None; partitions.len()];
        for offsets in state.offsets.values() {
            for (slot, key) in out.iter_mut().zip(partitions) {
                if let Some(c) = offsets.get(key).filter(|c| c.offset >= 0) {
                    *slot = Some(slot.map_or(c.offset, |o: i64| o.min(c.offset)));
                }
            }
        }
        out
    }

    /// Fails every waiting call with COORDINATOR_NOT_AVAILABLE, waits for queued records to
    /// become durable and closes the offsets file.
    pub async fn close(&self) -> Result<(), GroupError> {
        self.closed.set(true);
        for group in self.groups.borrow_mut().values_mut() {
            for member in &mut group.members {
                if let Some(tx) = member.join_waiter.take() {
                    let _ = tx.try_send(join_error(
                        ResponseError::CoordinatorNotAvailable,
                        &member.member_id,
                    ));
                }
                if let Some(tx) = member.sync_waiter.take() {
                    let _ = tx.try_send(sync_error(ResponseError::CoordinatorNotAvailable));
                }
            }
        }
        self.store.close().await
    }
}

/// The longest prefix of `s` of at most `bytes_max` bytes that ends on a char boundary.
pub(super) fn truncate_utf8(s: &str, bytes_max: usize) -> &str {
    let mut end = s.len().min(bytes_max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
