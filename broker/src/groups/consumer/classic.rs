//! Classic members inside a consumer group, and online migration between the protocols
//! (Kafka 4's `group.consumer.migration.policy`): a ConsumerGroupHeartbeat joining a classic
//! group with members upgrades it (`upgrade`); the classic members then stay, served by
//! JoinGroup/SyncGroup/Heartbeat/LeaveGroup through the consumer group's state machine, their
//! partitions given by the server-side assignor in SyncGroup and their rebalances signalled
//! by REBALANCE_IN_PROGRESS on Heartbeat; when the last consumer-protocol member leaves a
//! group of classic members, it turns classic again (`downgrade`) and rebalances.
//! Runs on the coordinator's shard, inside its groups borrow. Invariants: a classic member's
//! generation is its member epoch; the embedded consumer protocol is parsed with bounds, and
//! an unparsable one refuses the migration (GROUP_ID_NOT_FOUND, as Kafka).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::{
    HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::ResponseError;

use super::assignor::Assignment;
use super::reconcile::{MemberState, Reconciled};
use super::{ConsumerGroup, ConsumerMember};
use crate::groups::coordinator::sb;
use crate::groups::group::{Group, GroupState, Member};
use crate::groups::MigrationPolicy;
use crate::metadata::Catalog;

/// What a classic member brings besides its subscription: its session timeout and protocols.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ClassicMember {
    pub session_timeout_ms: i32,
    pub protocols: Vec<(String, Bytes)>,
}

// ---------------------------------------------------------------- embedded consumer protocol

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }
    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn count(&mut self, min_item_bytes: usize) -> Option<usize> {
        let n = usize::try_from(self.i32()?).ok()?;
        (n <= self.0.len() / min_item_bytes.max(1)).then_some(n)
    }
    fn string(&mut self) -> Option<String> {
        let n = usize::try_from(self.i16()?).ok()?;
        Some(std::str::from_utf8(self.take(n)?).ok()?.to_owned())
    }
    fn skip_bytes(&mut self) -> Option<()> {
        let n = self.i32()?;
        if n >= 0 {
            self.take(n as usize)?;
        }
        Some(())
    }
    fn topic_partitions(&mut self) -> Option<Vec<(String, Vec<i32>)>> {
        let n = self.count(6)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let topic = self.string()?;
            let m = self.count(4)?;
            let mut ps = Vec::with_capacity(m);
            for _ in 0..m {
                ps.push(self.i32()?);
            }
            out.push((topic, ps));
        }
        Some(out)
    }
}

/// Partitions by topic name, as the embedded consumer protocol carries them.
type NamedPartitions = Vec<(String, Vec<i32>)>;

/// ConsumerProtocolSubscription: (topics, owned partitions (v1+)).
pub(crate) fn parse_subscription(b: &[u8]) -> Option<(Vec<String>, NamedPartitions)> {
    let mut c = Cursor(b);
    let version = c.i16()?;
    if version < 0 {
        return None;
    }
    let n = c.count(2)?;
    let mut topics = Vec::with_capacity(n);
    for _ in 0..n {
        topics.push(c.string()?);
    }
    c.skip_bytes()?;
    let owned = if version >= 1 {
        c.topic_partitions()?
    } else {
        Vec::new()
    };
    Some((topics, owned))
}

/// ConsumerProtocolAssignment: the assigned partitions by topic name.
pub(crate) fn parse_assignment(b: &[u8]) -> Option<Vec<(String, Vec<i32>)>> {
    if b.is_empty() {
        return Some(Vec::new());
    }
    let mut c = Cursor(b);
    if c.i16()? < 0 {
        return None;
    }
    c.topic_partitions()
}

/// ConsumerProtocolAssignment v0 (every client reads it): partitions by name, no user data.
fn encode_assignment(cg: &ConsumerGroup, a: &Assignment) -> Bytes {
    let mut out = Vec::new();
    out.extend_from_slice(&0i16.to_be_bytes());
    let named: Vec<(&str, &BTreeSet<i32>)> = a
        .iter()
        .filter_map(|(id, ps)| cg.topic_name(id).map(|n| (n, ps)))
        .collect();
    out.extend_from_slice(&(named.len() as i32).to_be_bytes());
    for (name, ps) in named {
        out.extend_from_slice(&(name.len() as i16).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(ps.len() as i32).to_be_bytes());
        for p in ps {
            out.extend_from_slice(&p.to_be_bytes());
        }
    }
    out.extend_from_slice(&(-1i32).to_be_bytes());
    Bytes::from(out)
}

fn by_ids(cg: &ConsumerGroup, named: &[(String, Vec<i32>)]) -> Assignment {
    let mut out = Assignment::new();
    for (name, ps) in named {
        if let Some((id, _)) = cg.topics.get(name) {
            out.entry(*id).or_default().extend(ps.iter().copied());
        }
    }
    out
}

// ---------------------------------------------------------------- upgrade and downgrade

/// Turns a classic group with members into a consumer group (Kafka's convertToConsumerGroup):
/// each member keeps its partitions at an epoch equal to the generation, which becomes the
/// group and assignment epoch. Waiting JoinGroup/SyncGroup calls get REBALANCE_IN_PROGRESS.
pub(crate) fn upgrade(
    group: &mut Group,
    catalog: &Catalog,
    policy: MigrationPolicy,
    now: Instant,
) -> Result<(), String> {
    if !policy.upgrade() {
        return Err("the online upgrade is disabled".into());
    }
    if group.protocol_type.as_deref() != Some("consumer") {
        return Err("the group does not use the consumer embedded protocol".into());
    }
    let protocol = group.protocol_name.clone().unwrap_or_default();
    let generation = group.generation_id;
    let mut cg = ConsumerGroup {
        group_epoch: generation,
        assignment_epoch: generation,
        ..ConsumerGroup::default()
    };
    let mut parsed = Vec::new();
    for m in &group.members {
        let metadata = m.metadata_for(&protocol).or(m.protocols.first().map(|p| &p.1));
        let (topics, _) = metadata
            .and_then(|b| parse_subscription(b))
            .ok_or("malformed embedded consumer protocol")?;
        let assigned = parse_assignment(&m.assignment).ok_or("malformed embedded consumer assignment")?;
        parsed.push((topics, assigned));
    }
    for (m, (topics, _)) in group.members.iter().zip(&parsed) {
        cg.members
            .insert(m.member_id.clone(), classic_member(m, topics, generation, now));
    }
    cg.topics = super::heartbeat::resolve_topics(&cg, catalog);
    for (m, (_, assigned)) in group.members.iter().zip(&parsed) {
        let assigned = by_ids(&cg, assigned);
        cg.target.insert(m.member_id.clone(), assigned.clone());
        cg.members.get_mut(&m.member_id).expect("inserted").r.assigned = assigned;
    }
    cg.dirty_members = cg.members.keys().cloned().collect();
    cg.dirty_group = true;
    for member in &mut group.members {
        if let Some(tx) = member.join_waiter.take() {
            let _ = tx.try_send(crate::groups::rebalance::join_error(
                ResponseError::RebalanceInProgress,
                &member.member_id,
            ));
        }
        if let Some(tx) = member.sync_waiter.take() {
            let _ = tx.try_send(crate::groups::rebalance::sync_error(
                ResponseError::RebalanceInProgress,
            ));
        }
    }
    group.members.clear();
    group.pending_members.clear();
    group.state = GroupState::Empty;
    group.leader_id = None;
    group.protocol_type = None;
    group.protocol_name = None;
    group.rebalance_deadline = None;
    group.join_not_before = None;
    group.scan_after = None;
    group.consumer = Some(Box::new(cg));
    Ok(())
}

fn classic_member(m: &Member, topics: &[String], epoch: i32, now: Instant) -> ConsumerMember {
    let mut member = ConsumerMember {
        member_id: m.member_id.clone(),
        instance_id: m.group_instance_id.clone(),
        rack_id: None,
        client_id: m.client_id.clone(),
        client_host: m.client_host.clone(),
        rebalance_timeout_ms: m.rebalance_timeout_ms,
        topic_names: topics.iter().cloned().collect(),
        regex: None,
        assignor: None,
        r: Reconciled {
            state: MemberState::Stable,
            epoch,
            previous_epoch: epoch,
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
        },
        session_deadline: now,
        revocation_deadline: None,
        classic: Some(ClassicMember {
            session_timeout_ms: m.session_timeout_ms,
            protocols: m.protocols.clone(),
        }),
    };
    member.touch(now, m.session_timeout_ms);
    member
}

/// Whether removing `leaving` leaves only classic members (at least one) and the policy
/// allows a downgrade (Kafka's validateOnlineDowngradeWithFencedMember).
pub(crate) fn downgrades_without(cg: &ConsumerGroup, leaving: &[String], policy: MigrationPolicy) -> bool {
    let rest: Vec<&ConsumerMember> = cg
        .members
        .values()
        .filter(|m| !leaving.contains(&m.member_id))
        .collect();
    policy.downgrade()
        && !rest.is_empty()
        && rest.len() < cg.members.len()
        && rest.iter().all(|m| m.classic.is_some())
}

/// Whether the group should turn classic: members left, all classic, the policy allows it.
pub(crate) fn should_downgrade(cg: &ConsumerGroup, policy: MigrationPolicy) -> bool {
    policy.downgrade()
        && !cg.members.is_empty()
        && cg.members.len() <= crate::groups::GROUP_MEMBERS_MAX
        && cg.members.values().all(|m| m.classic.is_some())
}

/// Turns a consumer group of classic members back into a classic group (Kafka's
/// convertToClassicGroup): generation = group epoch, each member's partitions serialized as
/// its assignment; the caller then prepares a rebalance so the members rejoin.
pub(crate) fn downgrade(group: &mut Group, now: Instant) {
    let Some(cg) = group.consumer.take() else {
        return;
    };
    group.generation_id = cg.group_epoch;
    group.protocol_type = Some("consumer".into());
    for m in cg.members.values() {
        let classic = m.classic.clone().expect("checked by should_downgrade");
        let mut member = Member {
            member_id: m.member_id.clone(),
            group_instance_id: m.instance_id.clone(),
            client_id: m.client_id.clone(),
            client_host: m.client_host.clone(),
            session_timeout_ms: classic.session_timeout_ms,
            rebalance_timeout_ms: m.rebalance_timeout_ms,
            protocols: classic.protocols,
            assignment: encode_assignment(&cg, &m.r.assigned),
            heartbeat_deadline: now,
            join_waiter: None,
            sync_waiter: None,
        };
        member.touch(now);
        group.members.push(member);
    }
    group.protocol_name = group.select_protocol();
    group.leader_id = group.members.first().map(|m| m.member_id.clone());
    group.state = GroupState::Stable;
}

// ---------------------------------------------------------------- classic APIs

fn join_response(error: ResponseError, member_id: &str) -> JoinGroupResponse {
    crate::groups::rebalance::join_error(error, member_id)
}

/// JoinGroup of a classic member into a consumer group (Kafka's
/// classicGroupJoinToConsumerGroup): the member is added or updated, the target recomputed if
/// its subscription changed, and it reconciles with the partitions its subscription says it
/// still owns. Answered at once: no leader, no member list (the server assigns).
pub(crate) fn join(
    cg: &mut ConsumerGroup,
    req: &JoinGroupRequest,
    member_id: &str,
    caller: (&str, &str),
    now: Instant,
) -> JoinGroupResponse {
    if req.protocol_type.as_str() != "consumer" {
        return join_response(ResponseError::InconsistentGroupProtocol, member_id);
    }
    let protocols: Vec<(String, Bytes)> = req
        .protocols
        .iter()
        .map(|p| (p.name.as_str().to_owned(), p.metadata.clone()))
        .collect();
    let Some((topics, owned)) = protocols.first().and_then(|(_, m)| parse_subscription(m)) else {
        return join_response(ResponseError::InconsistentGroupProtocol, member_id);
    };
    if !cg.members.contains_key(member_id) {
        if cg.members.len() >= crate::groups::GROUP_MEMBERS_MAX {
            return join_response(ResponseError::GroupMaxSizeReached, member_id);
        }
        let m = Member {
            member_id: member_id.to_owned(),
            group_instance_id: req.group_instance_id.as_deref().map(str::to_owned),
            client_id: caller.0.to_owned(),
            client_host: caller.1.to_owned(),
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms: req.rebalance_timeout_ms.max(req.session_timeout_ms),
            protocols: protocols.clone(),
            assignment: Bytes::new(),
            heartbeat_deadline: now,
            join_waiter: None,
            sync_waiter: None,
        };
        let mut member = classic_member(&m, &[], 0, now);
        member.r = Reconciled::joining();
        cg.members.insert(member_id.to_owned(), member);
        cg.dirty_members.insert(member_id.to_owned());
    }
    let names: BTreeSet<String> = topics.into_iter().collect();
    let member = cg.members.get_mut(member_id).expect("present");
    let changed = member.topic_names != names;
    let classic = ClassicMember {
        session_timeout_ms: req.session_timeout_ms,
        protocols,
    };
    if changed || member.classic.as_ref() != Some(&classic) {
        cg.dirty_members.insert(member_id.to_owned());
    }
    member.topic_names = names;
    member.classic = Some(classic);
    member.touch(now, req.session_timeout_ms);
    if changed {
        cg.bump_epoch();
    }
    if cg.group_epoch > cg.assignment_epoch {
        cg.compute_target();
    }
    let owned = by_ids(cg, &owned);
    super::heartbeat::reconcile_member(cg, member_id, Some(&owned), now);
    let member = &cg.members[member_id];
    let mut r = JoinGroupResponse::default();
    r.member_id = sb(member_id);
    r.generation_id = member.r.epoch;
    r.protocol_type = Some(sb("consumer"));
    r.protocol_name = member
        .classic
        .as_ref()
        .and_then(|c| c.protocols.first())
        .map(|p| sb(&p.0));
    r.leader = sb("");
    r
}

/// SyncGroup of a classic member in a consumer group: its assigned partitions, serialized.
pub(crate) fn sync(cg: &mut ConsumerGroup, req: &SyncGroupRequest, now: Instant) -> SyncGroupResponse {
    let error = |e: ResponseError| crate::groups::rebalance::sync_error(e);
    let Some(member) = cg.members.get_mut(req.member_id.as_str()) else {
        return error(ResponseError::UnknownMemberId);
    };
    let Some(classic) = member.classic.as_ref() else {
        return error(ResponseError::UnknownMemberId);
    };
    if req.generation_id != member.r.epoch {
        return error(ResponseError::IllegalGeneration);
    }
    if req.protocol_type.as_deref().is_some_and(|t| t != "consumer") {
        return error(ResponseError::InconsistentGroupProtocol);
    }
    let timeout = classic.session_timeout_ms;
    member.touch(now, timeout);
    let member = &cg.members[req.member_id.as_str()];
    let mut r = SyncGroupResponse::default();
    r.protocol_type = Some(sb("consumer"));
    r.protocol_name = req.protocol_name.clone();
    r.assignment = encode_assignment(cg, &member.r.assigned);
    r
}

/// Heartbeat of a classic member in a consumer group: REBALANCE_IN_PROGRESS when it must
/// rejoin (the group epoch moved, it must revoke, or partitions it waits for are free).
pub(crate) fn heartbeat(
    cg: &mut ConsumerGroup,
    req: &HeartbeatRequest,
    now: Instant,
) -> Result<(), ResponseError> {
    let holders = cg.holders();
    let member_id = req.member_id.as_str();
    let member = cg.members.get(member_id).ok_or(ResponseError::UnknownMemberId)?;
    let classic = member.classic.as_ref().ok_or(ResponseError::UnknownMemberId)?;
    if req.generation_id != member.r.epoch {
        return Err(ResponseError::IllegalGeneration);
    }
    let timeout = classic.session_timeout_ms;
    let empty = Assignment::new();
    let target = cg.target.get(member_id).unwrap_or(&empty);
    let freed = target.iter().any(|(t, ps)| {
        ps.iter().any(|p| {
            !member.r.assigned.get(t).is_some_and(|a| a.contains(p)) && !holders.contains_key(&(*t, *p))
        })
    });
    let rejoin = member.r.epoch < cg.group_epoch
        || member.r.state == MemberState::UnrevokedPartitions
        || (member.r.state == MemberState::UnreleasedPartitions && freed);
    cg.members
        .get_mut(member_id)
        .expect("present")
        .touch(now, timeout);
    if rejoin {
        return Err(ResponseError::RebalanceInProgress);
    }
    Ok(())
}

/// The session timeout a member's deadline uses.
pub(crate) fn session_timeout(member: &ConsumerMember, consumer_ms: i32) -> Duration {
    let ms = member
        .classic
        .as_ref()
        .map_or(consumer_ms, |c| c.session_timeout_ms);
    Duration::from_millis(ms.max(0) as u64)
}

impl crate::groups::GroupCoordinator {
    /// After a consumer-protocol member left or expired: if only classic members remain and
    /// the policy allows, the group turns classic and rebalances (its members get
    /// REBALANCE_IN_PROGRESS and rejoin through the classic state machine).
    pub(in crate::groups) fn maybe_downgrade(
        &self,
        group: &mut Group,
        now: Instant,
        records: &mut Vec<crate::groups::store::StoreRecord>,
    ) {
        let policy = self.config.consumer_migration_policy;
        if !group
            .consumer
            .as_deref()
            .is_some_and(|cg| should_downgrade(cg, policy))
        {
            return;
        }
        tracing::info!(group = %group.group_id, "downgrading consumer group to classic");
        downgrade(group, now);
        self.prepare_rebalance(group, now);
        records.push(crate::groups::store::StoreRecord::ConsumerGroup {
            group: group.group_id.clone(),
            value: None,
        });
        records.push(crate::groups::store::StoreRecord::Group {
            group: group.group_id.clone(),
            value: group.to_stored(),
        });
    }

    /// JoinGroup into a consumer group: a new member first gets an id (MEMBER_ID_REQUIRED
    /// from v4, as Kafka), then joins as a classic member (`consumer::classic::join`).
    pub(in crate::groups) fn classic_join_in_consumer_group(
        &self,
        group: &mut Group,
        req: &JoinGroupRequest,
        version: i16,
        joiner: &crate::groups::rebalance::Joiner,
        now: Instant,
    ) -> JoinGroupResponse {
        let mut member_id = joiner.member_id.clone();
        if member_id.is_empty() {
            member_id = self.new_member_id(&joiner.client_id);
            if version >= 4 {
                return join_response(ResponseError::MemberIdRequired, &member_id);
            }
        }
        let cg = group.consumer.as_deref_mut().expect("checked by the caller");
        let caller = (joiner.client_id.as_str(), joiner.client_host.as_str());
        join(cg, req, &member_id, caller, now)
    }
}
