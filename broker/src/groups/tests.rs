//! Coordinator tests: each runs a real glommio executor and drives `GroupCoordinator` with
//! kafka_protocol request structs, on the real filesystem (tempdirs on ext4 here).

use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use glommio::timer::sleep;
use glommio::{LocalExecutorBuilder, Placement};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::*;

fn run<G, F>(test: G)
where
    G: FnOnce() -> F + Send + 'static,
    F: Future<Output = ()> + 'static,
{
    LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(1 << 20)
        .spawn(test)
        .expect("executor starts")
        .join()
        .expect("test body completes");
}

fn test_config() -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay_ms: 50,
        min_session_timeout_ms: 10,
        max_session_timeout_ms: 60_000,
        timer_tick_ms: 5,
        ..GroupConfig::default()
    }
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// ConsumerProtocolSubscription v0: version, topics, user data (null).
fn subscription(topics: &[&str]) -> Bytes {
    let mut b = Vec::new();
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for t in topics {
        b.extend_from_slice(&(t.len() as i16).to_be_bytes());
        b.extend_from_slice(t.as_bytes());
    }
    b.extend_from_slice(&(-1i32).to_be_bytes());
    Bytes::from(b)
}

fn join_req(
    group: &str,
    member_id: &str,
    instance: Option<&str>,
    protocols: &[(&str, Bytes)],
) -> JoinGroupRequest {
    let mut r = JoinGroupRequest::default();
    r.group_id = GroupId(s(group));
    r.member_id = s(member_id);
    r.group_instance_id = instance.map(s);
    r.session_timeout_ms = 10_000;
    r.rebalance_timeout_ms = 300;
    r.protocol_type = s("consumer");
    r.protocols = protocols
        .iter()
        .map(|(name, meta)| {
            let mut p = JoinGroupRequestProtocol::default();
            p.name = s(name);
            p.metadata = meta.clone();
            p
        })
        .collect();
    r
}

fn sync_req(
    group: &str,
    generation: i32,
    member_id: &str,
    assignments: &[(&str, &[u8])],
) -> SyncGroupRequest {
    let mut r = SyncGroupRequest::default();
    r.group_id = GroupId(s(group));
    r.generation_id = generation;
    r.member_id = s(member_id);
    r.assignments = assignments
        .iter()
        .map(|(m, a)| {
            let mut x = SyncGroupRequestAssignment::default();
            x.member_id = s(m);
            x.assignment = Bytes::copy_from_slice(a);
            x
        })
        .collect();
    r
}

fn heartbeat_req(group: &str, generation: i32, member_id: &str) -> HeartbeatRequest {
    let mut r = HeartbeatRequest::default();
    r.group_id = GroupId(s(group));
    r.generation_id = generation;
    r.member_id = s(member_id);
    r
}

fn commit_req(
    group: &str,
    generation: i32,
    member_id: &str,
    offsets: &[(&str, i32, i64)],
) -> OffsetCommitRequest {
    let mut r = OffsetCommitRequest::default();
    r.group_id = GroupId(s(group));
    r.generation_id_or_member_epoch = generation;
    r.member_id = s(member_id);
    for (topic, partition, offset) in offsets {
        let mut p = OffsetCommitRequestPartition::default();
        p.partition_index = *partition;
        p.committed_offset = *offset;
        p.committed_metadata = Some(s("meta"));
        let mut t = OffsetCommitRequestTopic::default();
        t.name = TopicName(s(topic));
        t.partitions.push(p);
        r.topics.push(t);
    }
    r
}

fn commit_codes(r: &OffsetCommitResponse) -> Vec<i16> {
    r.topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}

async fn fetch_all(c: &GroupCoordinator, group: &str) -> Vec<(String, i32, i64)> {
    let fetched = c.offset_fetch_group(group, None).await.expect("fetch");
    fetched
        .into_iter()
        .map(|f| (f.topic, f.partition, f.offset))
        .collect()
}

/// KIP-394 first join: asks for a member id and checks the MEMBER_ID_REQUIRED answer.
async fn member_id_for(c: &GroupCoordinator, group: &str, protocols: &[(&str, Bytes)]) -> String {
    let r = c.join_group(join_req(group, "", None, protocols), 5).await;
    assert_eq!(r.error_code, ResponseError::MemberIdRequired.code());
    assert!(!r.member_id.is_empty());
    r.member_id.as_str().to_owned()
}

/// (member id, group instance id, protocols) of one JoinGroup.
type Joiner = (String, Option<String>, Vec<(&'static str, Bytes)>);

/// Joins every (member id, instance, protocols) concurrently and returns the responses in order.
async fn join_all(c: &Rc<GroupCoordinator>, group: &str, joiners: Vec<Joiner>) -> Vec<JoinGroupResponse> {
    let tasks: Vec<_> = joiners
        .into_iter()
        .map(|(id, instance, protocols)| {
            let c = Rc::clone(c);
            let req = join_req(group, &id, instance.as_deref(), &protocols);
            glommio::spawn_local(async move { c.join_group(req, 5).await })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await);
    }
    out
}

/// Syncs every member concurrently; the leader assigns "a-<member id>" to each member.
async fn sync_all(
    c: &Rc<GroupCoordinator>,
    group: &str,
    joins: &[JoinGroupResponse],
) -> Vec<SyncGroupResponse> {
    let leader = joins.iter().find(|j| j.leader == j.member_id).expect("a leader");
    let plan: Vec<(String, Vec<u8>)> = leader
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.as_str().to_owned(),
                format!("a-{}", m.member_id.as_str()).into_bytes(),
            )
        })
        .collect();
    let tasks: Vec<_> = joins
        .iter()
        .map(|j| {
            let assignments: Vec<(&str, &[u8])> = if j.leader == j.member_id {
                plan.iter().map(|(m, a)| (m.as_str(), a.as_slice())).collect()
            } else {
                Vec::new()
            };
            let req = sync_req(group, j.generation_id, &j.member_id, &assignments);
            let c = Rc::clone(c);
            glommio::spawn_local(async move { c.sync_group(req, 5).await })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await);
    }
    out
}

/// Forms a Stable group of `n` dynamic consumers subscribed to `topics`; returns the joins.
async fn form_group(
    c: &Rc<GroupCoordinator>,
    group: &str,
    n: usize,
    topics: &[&str],
) -> Vec<JoinGroupResponse> {
    let protocols = vec![("range", subscription(topics))];
    let mut joiners = Vec::new();
    for _ in 0..n {
        joiners.push((member_id_for(c, group, &protocols).await, None, protocols.clone()));
    }
    let joins = join_all(c, group, joiners).await;
    let syncs = sync_all(c, group, &joins).await;
    assert!(syncs.iter().all(|r| r.error_code == 0), "sync ok: {syncs:?}");
    assert_eq!(c.group_state(group), Some(GroupState::Stable));
    joins
}

fn tempdir() -> tempfile::TempDir {
    // Same ext4 device as /work here (checked with df): real fdatasync, real rename.
    tempfile::tempdir().expect("tempdir")
}

// ------------------------------------------------------------------ routing

#[test]
fn given_group_ids_when_routing_should_be_deterministic_in_range_and_spread() {
    let mut hits = [0usize; 4];
    for i in 0..1000 {
        let id = format!("group-{i}");
        let shard = group_to_shard(&id, 4);
        assert_eq!(shard, group_to_shard(&id, 4));
        hits[shard] += 1;
    }
    assert!(hits.iter().all(|&h| h > 150), "spread: {hits:?}");
    assert_eq!(group_to_shard("anything", 1), 0);
}

// ------------------------------------------------------------------ membership

#[test]
fn given_join_v4_without_member_id_when_joining_should_require_member_id_then_accept_it() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        let protocols = [("range", subscription(&["t"]))];
        let id = member_id_for(&c, "g", &protocols).await;
        assert_eq!(c.group_state("g"), Some(GroupState::Empty));
        let r = c.join_group(join_req("g", &id, None, &protocols), 5).await;
        assert_eq!(r.error_code, 0);
        assert_eq!(r.member_id.as_str(), id);
        assert_eq!(r.leader.as_str(), id);
        assert_eq!(r.generation_id, 1);
        assert_eq!(r.protocol_name.as_deref(), Some("range"));
        // A made-up member id is refused.
        let r = c.join_group(join_req("g", "made-up", None, &protocols), 5).await;
        assert_eq!(r.error_code, ResponseError::UnknownMemberId.code());
        // v3 clients get an id straight away, without the extra round trip.
        let r = c.join_group(join_req("g2", "", None, &protocols), 3).await;
        assert_eq!(r.error_code, 0);
        assert!(!r.member_id.is_empty());
        c.close().await.unwrap();
    });
}

#[test]
fn given_three_members_when_joining_together_should_form_one_generation_and_relay_assignments() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        let protocols: Vec<Vec<(&str, Bytes)>> = (0..3)
            .map(|i| vec![("range", Bytes::from(format!("meta-{i}")))])
            .collect();
        let mut joiners = Vec::new();
        for p in &protocols {
            joiners.push((member_id_for(&c, "g", p).await, None, p.clone()));
        }
        let ids: Vec<String> = joiners.iter().map(|j| j.0.clone()).collect();
        let joins = join_all(&c, "g", joiners).await;
        assert!(joins.iter().all(|j| j.error_code == 0 && j.generation_id == 1));
        assert!(joins.iter().all(|j| j.leader == joins[0].leader));
        let leader = joins.iter().find(|j| j.leader == j.member_id).unwrap();
        let mut seen: Vec<(String, Bytes)> = leader
            .members
            .iter()
            .map(|m| (m.member_id.as_str().to_owned(), m.metadata.clone()))
            .collect();
        seen.sort();
        let mut expected: Vec<(String, Bytes)> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), Bytes::from(format!("meta-{i}"))))
            .collect();
        expected.sort();
        assert_eq!(seen, expected, "the leader sees every member's metadata");
        assert!(joins
            .iter()
            .filter(|j| j.leader != j.member_id)
            .all(|j| j.members.is_empty()));
        assert_eq!(c.group_state("g"), Some(GroupState::CompletingRebalance));
        let syncs = sync_all(&c, "g", &joins).await;
        for (join, sync) in joins.iter().zip(&syncs) {
            assert_eq!(sync.error_code, 0);
            assert_eq!(
                sync.assignment,
                Bytes::from(format!("a-{}", join.member_id.as_str()))
            );
        }
        assert_eq!(c.group_state("g"), Some(GroupState::Stable));
        let described = c.describe_group("g");
        assert_eq!(described.group_state.as_str(), "Stable");
        assert_eq!(described.members.len(), 3);
        assert_eq!(described.protocol_data.as_str(), "range");
        c.close().await.unwrap();
    });
}

#[test]
fn given_members_with_different_preferences_when_selecting_should_pick_a_common_protocol_by_votes() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        let m = Bytes::from_static(b"m");
        let prefs: Vec<Vec<(&'static str, Bytes)>> = vec![
            vec![
                ("range", m.clone()),
                ("roundrobin", m.clone()),
                ("sticky", m.clone()),
            ],
            vec![("roundrobin", m.clone()), ("range", m.clone())],
            vec![
                ("roundrobin", m.clone()),
                ("range", m.clone()),
                ("sticky", m.clone()),
            ],
        ];
        let mut joiners = Vec::new();
        for p in &prefs {
            joiners.push((member_id_for(&c, "g", p).await, None, p.clone()));
        }
        let joins = join_all(&c, "g", joiners).await;
        // "sticky" is not supported by member 2; "roundrobin" has two first-choice votes.
        assert!(
            joins
                .iter()
                .all(|j| j.protocol_name.as_deref() == Some("roundrobin")),
            "{joins:?}"
        );
        // A joiner supporting none of the group's protocols is refused.
        let r = c
            .join_group(join_req("g", "", None, &[("cooperative-sticky", m.clone())]), 5)
            .await;
        assert_eq!(r.error_code, ResponseError::InconsistentGroupProtocol.code());
        c.close().await.unwrap();
    });
}

#[test]
fn given_stable_group_when_a_member_leaves_should_rebalance_into_a_new_generation() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        let joins = form_group(&c, "g", 2, &["t"]).await;
        let generation = joins[0].generation_id;
        let (stay, go) = (&joins[0].member_id, &joins[1].member_id);
        let mut leave = LeaveGroupRequest::default();
        leave.group_id = GroupId(s("g"));
        let mut who = MemberIdentity::default();
        who.member_id = go.clone();
        leave.members.push(who);
        let r = c.leave_group(leave, 4).await;
        assert_eq!(r.error_code, 0);
        assert_eq!(r.members[0].error_code, 0);
        assert_eq!(c.group_state("g"), Some(GroupState::PreparingRebalance));
        let hb = c.heartbeat(heartbeat_req("g", generation, stay), 4).await;
        assert_eq!(hb.error_code, ResponseError::RebalanceInProgress.code());
        let protocols = [("range", subscription(&["t"]))];
        let r = c.join_group(join_req("g", stay, None, &protocols), 5).await;
        assert_eq!(r.error_code, 0);
        assert_eq!(r.generation_id, generation + 1);
        assert_eq!(r.leader, r.member_id);
        assert_eq!(r.members.len(), 1);
        // The departed member is gone for good.
        let hb = c.heartbeat(heartbeat_req("g", generation + 1, go), 4).await;
        assert_eq!(hb.error_code, ResponseError::UnknownMemberId.code());
        let hb = c.heartbeat(heartbeat_req("g", generation, stay), 4).await;
        assert_eq!(hb.error_code, ResponseError::IllegalGeneration.code());
        c.close().await.unwrap();
    });
}

#[test]
fn given_member_that_stops_heartbeating_when_session_times_out_should_expire_and_rebalance() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        let protocols = vec![("range", subscription(&["t"]))];
        let mut joiners = Vec::new();
        for _ in 0..2 {
            joiners.push((
                member_id_for(&c, "g", &protocols).await,
                None::<String>,
                protocols.clone(),
            ));
        }
        let reqs: Vec<JoinGroupRequest> = joiners
            .iter()
            .map(|(id, _, p)| {
                let mut r = join_req("g", id, None, p);
                r.session_timeout_ms = 200;
                r
            })
            .collect();
        let tasks: Vec<_> = reqs
            .into_iter()
            .map(|r| {
                let c = Rc::clone(&c);
                glommio::spawn_local(async move { c.join_group(r, 5).await })
            })
            .collect();
        let mut joins = Vec::new();
        for t in tasks {
            joins.push(t.await);
        }
        sync_all(&c, "g", &joins).await;
        let generation = joins[0].generation_id;
        let alive = joins[0].member_id.clone();
        let mut code = 0;
        for _ in 0..20 {
            sleep(Duration::from_millis(40)).await;
            code = c
                .heartbeat(heartbeat_req("g", generation, &alive), 4)
                .await
                .error_code;
            if code != 0 {
                break;
            }
        }
        assert_eq!(
            code,
            ResponseError::RebalanceInProgress.code(),
            "the silent member expired"
        );
        let r = c.join_group(join_req("g", &alive, None, &protocols), 5).await;
        assert_eq!(r.generation_id, generation + 1);
        assert_eq!(r.members.len(), 1);
        c.close().await.unwrap();
    });
}

#[test]
fn given_rebalance_when_a_member_does_not_rejoin_in_time_should_complete_without_it() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        let joins = form_group(&c, "g", 2, &["t"]).await;
        let generation = joins[0].generation_id;
        let leader = joins
            .iter()
            .find(|j| j.leader == j.member_id)
            .unwrap()
            .member_id
            .clone();
        let other = joins
            .iter()
            .find(|j| j.leader != j.member_id)
            .unwrap()
            .member_id
            .clone();
        // The leader rejoins (that alone starts a rebalance); the other only heartbeats, so the
        // rebalance ends at the largest rebalance timeout (300 ms), without it.
        let req = join_req("g", &leader, None, &[("range", subscription(&["t"]))]);
        let started = std::time::Instant::now();
        let c2 = Rc::clone(&c);
        let pending = glommio::spawn_local(async move { c2.join_group(req, 5).await });
        sleep(Duration::from_millis(20)).await;
        assert_eq!(c.group_state("g"), Some(GroupState::PreparingRebalance));
        let hb = c.heartbeat(heartbeat_req("g", generation, &other), 4).await;
        assert_eq!(
            hb.error_code,
            ResponseError::RebalanceInProgress.code(),
            "told to rejoin"
        );
        let r = pending.await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(250),
            "waited for the straggler: {waited:?}"
        );
        assert_eq!(
            (r.error_code, r.generation_id, r.members.len()),
            (0, generation + 1, 1)
        );
        let hb = c.heartbeat(heartbeat_req("g", generation + 1, &other), 4).await;
        assert_eq!(
            hb.error_code,
            ResponseError::UnknownMemberId.code(),
            "the straggler was removed"
        );
        c.close().await.unwrap();
    });
}

#[test]
fn given_stable_static_group_when_member_restarts_with_same_instance_id_should_not_rebalance() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        let protocols = vec![("range", subscription(&["t"]))];
        let joiners = vec![
            (String::new(), Some("instance-a".to_owned()), protocols.clone()),
            (String::new(), Some("instance-b".to_owned()), protocols.clone()),
        ];
        let joins = join_all(&c, "g", joiners).await;
        assert!(
            joins.iter().all(|j| j.error_code == 0),
            "static members skip MEMBER_ID_REQUIRED"
        );
        sync_all(&c, "g", &joins).await;
        let generation = joins[0].generation_id;
        let follower = joins.iter().find(|j| j.leader != j.member_id).unwrap();
        let instance = if follower.member_id == joins[0].member_id {
            "instance-a"
        } else {
            "instance-b"
        };
        let r = c
            .join_group(join_req("g", "", Some(instance), &protocols), 5)
            .await;
        assert_eq!(r.error_code, 0);
        assert_eq!(r.generation_id, generation, "no new generation");
        assert_ne!(r.member_id, follower.member_id);
        assert_eq!(c.group_state("g"), Some(GroupState::Stable));
        let sync = c
            .sync_group(sync_req("g", generation, &r.member_id, &[]), 5)
            .await;
        assert_eq!(
            sync.assignment,
            Bytes::from(format!("a-{}", follower.member_id.as_str()))
        );
        // The old incarnation is fenced.
        let mut hb = heartbeat_req("g", generation, &follower.member_id);
        hb.group_instance_id = Some(s(instance));
        assert_eq!(
            c.heartbeat(hb, 4).await.error_code,
            ResponseError::FencedInstanceId.code()
        );
        let leader = joins.iter().find(|j| j.leader == j.member_id).unwrap();
        assert_eq!(
            c.heartbeat(heartbeat_req("g", generation, &leader.member_id), 4)
                .await
                .error_code,
            0
        );
        c.close().await.unwrap();
    });
}

#[test]
fn given_bad_requests_when_joining_should_answer_with_kafka_errors() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        let protocols = [("range", Bytes::new())];
        let mut r = join_req("g", "", None, &protocols);
        r.session_timeout_ms = 5;
        assert_eq!(
            c.join_group(r, 5).await.error_code,
            ResponseError::InvalidSessionTimeout.code()
        );
        let r = join_req("", "", None, &protocols);
        assert_eq!(
            c.join_group(r, 5).await.error_code,
            ResponseError::InvalidGroupId.code()
        );
        let r = join_req("g", "", None, &[]);
        assert_eq!(
            c.join_group(r, 5).await.error_code,
            ResponseError::InconsistentGroupProtocol.code()
        );
        let hb = c.heartbeat(heartbeat_req("nope", 1, "m"), 4).await;
        assert_eq!(hb.error_code, ResponseError::UnknownMemberId.code());
        let sync = c.sync_group(sync_req("nope", 1, "m", &[]), 5).await;
        assert_eq!(sync.error_code, ResponseError::UnknownMemberId.code());
        c.close().await.unwrap();
    });
}

#[test]
fn given_waiting_join_when_coordinator_closes_should_answer_coordinator_not_available() {
    run(|| async {
        let dir = tempdir();
        let config = GroupConfig {
            initial_rebalance_delay_ms: 10_000,
            ..test_config()
        };
        let c = GroupCoordinator::open(dir.path().into(), config).await.unwrap();
        let c2 = Rc::clone(&c);
        let req = join_req("g", "", None, &[("range", Bytes::new())]);
        let pending = glommio::spawn_local(async move { c2.join_group(req, 3).await });
        sleep(Duration::from_millis(20)).await;
        assert_eq!(
            c.group_state("g"),
            Some(GroupState::PreparingRebalance),
            "held by the initial delay"
        );
        c.close().await.unwrap();
        assert_eq!(
            pending.await.error_code,
            ResponseError::CoordinatorNotAvailable.code()
        );
        let r = c
            .offset_commit(commit_req("simple", -1, "", &[("t", 0, 1)]), 8)
            .await;
        assert_eq!(
            commit_codes(&r),
            vec![ResponseError::CoordinatorNotAvailable.code()]
        );
    });
}

#[test]
fn given_commit_during_completing_rebalance_or_with_huge_metadata_when_committing_should_refuse() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        let protocols = vec![("range", subscription(&["t"]))];
        let id = member_id_for(&c, "g", &protocols).await;
        let joined = c.join_group(join_req("g", &id, None, &protocols), 5).await;
        assert_eq!(c.group_state("g"), Some(GroupState::CompletingRebalance));
        let r = c
            .offset_commit(commit_req("g", joined.generation_id, &id, &[("t", 0, 1)]), 8)
            .await;
        assert_eq!(commit_codes(&r), vec![ResponseError::RebalanceInProgress.code()]);
        let mut req = commit_req("simple", -1, "", &[("t", 0, 1)]);
        req.topics[0].partitions[0].committed_metadata = Some(s(&"x".repeat(OFFSET_METADATA_BYTES_MAX + 1)));
        let r = c.offset_commit(req, 8).await;
        assert_eq!(
            commit_codes(&r),
            vec![ResponseError::OffsetMetadataTooLarge.code()]
        );
        assert_eq!(fetch_all(&c, "simple").await, vec![]);
        c.close().await.unwrap();
    });
}

// ------------------------------------------------------------------ offsets

#[test]
fn given_committed_offsets_when_coordinator_reopens_should_still_have_offsets_and_group() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        let joins = form_group(&c, "g", 2, &["t"]).await;
        let (generation, member) = (joins[0].generation_id, joins[0].member_id.as_str().to_owned());
        let r = c
            .offset_commit(
                commit_req("g", generation, &member, &[("t", 0, 42), ("t", 1, 7)]),
                8,
            )
            .await;
        assert_eq!(commit_codes(&r), vec![0, 0]);
        let r = c
            .offset_commit(commit_req("simple", -1, "", &[("u", 3, 99)]), 8)
            .await;
        assert_eq!(commit_codes(&r), vec![0]);
        let r = c
            .offset_commit(commit_req("g", generation + 5, &member, &[("t", 0, 1)]), 8)
            .await;
        assert_eq!(commit_codes(&r), vec![ResponseError::IllegalGeneration.code()]);
        c.close().await.unwrap();
        drop(c);

        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        assert_eq!(
            fetch_all(&c, "g").await,
            vec![("t".into(), 0, 42), ("t".into(), 1, 7)]
        );
        assert_eq!(fetch_all(&c, "simple").await, vec![("u".into(), 3, 99)]);
        let some = c
            .offset_fetch_group("g", Some(vec![("t".into(), vec![0, 5])]))
            .await
            .unwrap();
        assert_eq!((some[0].offset, some[0].metadata.as_str()), (42, "meta"));
        assert_eq!(some[1].offset, -1);
        // Group metadata came back too: the members may keep heartbeating.
        assert_eq!(c.group_state("g"), Some(GroupState::Stable));
        assert_eq!(
            c.heartbeat(heartbeat_req("g", generation, &member), 4)
                .await
                .error_code,
            0
        );
        let listed: Vec<String> = c
            .list_groups(&[])
            .iter()
            .map(|l| l.group_id.as_str().to_owned())
            .collect();
        assert_eq!(listed, vec!["g".to_owned(), "simple".to_owned()]);
        let empty_only = c.list_groups(&["empty".to_owned()]);
        assert_eq!(empty_only.len(), 1);
        c.close().await.unwrap();
    });
}

#[test]
fn given_torn_tail_in_offsets_file_when_reopening_should_keep_valid_prefix_and_truncate() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        for i in 0..3 {
            let r = c
                .offset_commit(commit_req("simple", -1, "", &[("t", i, 100 + i as i64)]), 8)
                .await;
            assert_eq!(commit_codes(&r), vec![0]);
        }
        c.close().await.unwrap();
        drop(c);
        let path = dir.path().join(store::FILE_NAME);
        let good = std::fs::read(&path).unwrap();
        // A torn append: half a frame header and some body bytes.
        let mut torn = good.clone();
        torn.extend_from_slice(&[0, 0, 0, 40, 1, 2, 3, 4, 5, 6]);
        std::fs::write(&path, &torn).unwrap();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        assert_eq!(fetch_all(&c, "simple").await.len(), 3);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            good.len() as u64,
            "tail truncated"
        );
        let r = c
            .offset_commit(commit_req("simple", -1, "", &[("t", 9, 9)]), 8)
            .await;
        assert_eq!(commit_codes(&r), vec![0]);
        c.close().await.unwrap();
        drop(c);
        // A flipped bit in the last record: its CRC fails, the record is dropped.
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        assert_eq!(fetch_all(&c, "simple").await.len(), 3);
        c.close().await.unwrap();
    });
}

#[test]
fn given_not_our_file_when_opening_should_refuse_without_truncating() {
    run(|| async {
        let dir = tempdir();
        let path = dir.path().join(store::FILE_NAME);
        std::fs::write(&path, b"something else entirely").unwrap();
        let result = GroupCoordinator::open(dir.path().into(), test_config()).await;
        assert!(matches!(result, Err(GroupError::Corrupt { .. })));
        assert_eq!(std::fs::read(&path).unwrap(), b"something else entirely");
    });
}

#[test]
fn given_many_concurrent_commits_when_flushing_should_share_fdatasyncs() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        let commit_count = 200;
        let tasks: Vec<_> = (0..commit_count)
            .map(|i| {
                let c = Rc::clone(&c);
                glommio::spawn_local(async move {
                    c.offset_commit(commit_req("simple", -1, "", &[("t", i, i as i64)]), 8)
                        .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(commit_codes(&t.await), vec![0]);
        }
        let stats = c.offsets_file_stats();
        assert!(
            stats.flush_count < commit_count as u64 / 4,
            "group commit: {stats:?}"
        );
        assert_eq!(fetch_all(&c, "simple").await.len(), commit_count as usize);
        c.close().await.unwrap();
    });
}

#[test]
fn given_file_past_compaction_bound_when_committing_should_compact_and_keep_latest_offsets() {
    run(|| async {
        let dir = tempdir();
        let config = GroupConfig {
            offsets_file_compact_bytes: 4096,
            ..test_config()
        };
        let c = GroupCoordinator::open(dir.path().into(), config.clone())
            .await
            .unwrap();
        for i in 0..300 {
            let r = c
                .offset_commit(commit_req("simple", -1, "", &[("t", i % 3, i as i64)]), 8)
                .await;
            assert_eq!(commit_codes(&r), vec![0]);
        }
        let stats = c.offsets_file_stats();
        assert!(stats.compaction_count > 0, "{stats:?}");
        assert!(stats.file_bytes < 8192, "{stats:?}");
        c.close().await.unwrap();
        drop(c);
        assert!(!dir.path().join("group-offsets.log.compact").exists());
        let c = GroupCoordinator::open(dir.path().into(), config).await.unwrap();
        assert_eq!(
            fetch_all(&c, "simple").await,
            vec![("t".into(), 0, 297), ("t".into(), 1, 298), ("t".into(), 2, 299)]
        );
        c.close().await.unwrap();
    });
}

#[test]
fn given_empty_group_past_retention_when_timer_runs_should_expire_offsets_but_keep_live_groups() {
    run(|| async {
        let dir = tempdir();
        let config = GroupConfig {
            offsets_retention_ms: 150,
            offsets_retention_check_interval_ms: 20,
            ..test_config()
        };
        let c = GroupCoordinator::open(dir.path().into(), config.clone())
            .await
            .unwrap();
        let joins = form_group(&c, "live", 1, &["t"]).await;
        let (generation, member) = (joins[0].generation_id, joins[0].member_id.as_str().to_owned());
        let r = c
            .offset_commit(commit_req("live", generation, &member, &[("t", 0, 5)]), 8)
            .await;
        assert_eq!(commit_codes(&r), vec![0]);
        let r = c
            .offset_commit(commit_req("idle", -1, "", &[("t", 0, 5)]), 8)
            .await;
        assert_eq!(commit_codes(&r), vec![0]);
        for _ in 0..8 {
            sleep(Duration::from_millis(50)).await;
            assert_eq!(
                c.heartbeat(heartbeat_req("live", generation, &member), 4)
                    .await
                    .error_code,
                0
            );
        }
        assert_eq!(fetch_all(&c, "idle").await, vec![]);
        assert_eq!(c.group_state("idle"), None);
        assert_eq!(fetch_all(&c, "live").await, vec![("t".into(), 0, 5)]);
        c.close().await.unwrap();
        drop(c);
        let c = GroupCoordinator::open(dir.path().into(), config).await.unwrap();
        assert_eq!(fetch_all(&c, "idle").await, vec![], "expiry is durable");
        c.close().await.unwrap();
    });
}

#[test]
fn given_offsets_of_a_deleted_topic_when_removing_topic_should_drop_them_durably() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        for group in ["a", "b"] {
            let r = c
                .offset_commit(commit_req(group, -1, "", &[("gone", 0, 1), ("kept", 0, 2)]), 8)
                .await;
            assert_eq!(commit_codes(&r), vec![0, 0]);
        }
        let r = c
            .offset_commit(commit_req("only-gone", -1, "", &[("gone", 1, 1)]), 8)
            .await;
        assert_eq!(commit_codes(&r), vec![0]);
        c.remove_topic("gone").await.unwrap();
        assert_eq!(fetch_all(&c, "a").await, vec![("kept".into(), 0, 2)]);
        assert_eq!(
            c.group_state("only-gone"),
            None,
            "a group left with nothing is forgotten"
        );
        c.close().await.unwrap();
        drop(c);
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        assert_eq!(fetch_all(&c, "b").await, vec![("kept".into(), 0, 2)]);
        assert_eq!(fetch_all(&c, "only-gone").await, vec![]);
        c.close().await.unwrap();
    });
}

fn delete_req(group: &str, topics: &[(&str, i32)]) -> OffsetDeleteRequest {
    let mut r = OffsetDeleteRequest::default();
    r.group_id = GroupId(s(group));
    for (topic, partition) in topics {
        let mut t = OffsetDeleteRequestTopic::default();
        t.name = TopicName(s(topic));
        let mut p = OffsetDeleteRequestPartition::default();
        p.partition_index = *partition;
        t.partitions.push(p);
        r.topics.push(t);
    }
    r
}

#[test]
fn given_live_group_subscribed_to_topic_when_deleting_offsets_should_refuse_that_topic_only() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        let joins = form_group(&c, "g", 1, &["subscribed"]).await;
        let (generation, member) = (joins[0].generation_id, joins[0].member_id.as_str().to_owned());
        let offsets = [("subscribed", 0, 1), ("old", 0, 2)];
        let r = c
            .offset_commit(commit_req("g", generation, &member, &offsets), 8)
            .await;
        assert_eq!(commit_codes(&r), vec![0, 0]);
        let r = c
            .offset_delete(delete_req("g", &[("subscribed", 0), ("old", 0)]))
            .await;
        assert_eq!(r.error_code, 0);
        assert_eq!(
            r.topics[0].partitions[0].error_code,
            ResponseError::GroupSubscribedToTopic.code()
        );
        assert_eq!(r.topics[1].partitions[0].error_code, 0);
        assert_eq!(fetch_all(&c, "g").await, vec![("subscribed".into(), 0, 1)]);
        let reset = c.reset_offsets("g", vec![("subscribed".into(), 0, 0)]).await;
        assert_eq!(reset, Err(ResponseError::NonEmptyGroup));
        let r = c.offset_delete(delete_req("unknown", &[("x", 0)])).await;
        assert_eq!(r.error_code, ResponseError::GroupIdNotFound.code());
        // Once the group is empty, reset and delete are allowed.
        let mut leave = LeaveGroupRequest::default();
        leave.group_id = GroupId(s("g"));
        leave.member_id = s(&member);
        assert_eq!(c.leave_group(leave, 1).await.error_code, 0);
        assert_eq!(c.group_state("g"), Some(GroupState::Empty));
        c.reset_offsets("g", vec![("subscribed".into(), 0, 0)])
            .await
            .unwrap();
        assert_eq!(fetch_all(&c, "g").await, vec![("subscribed".into(), 0, 0)]);
        let r = c.offset_delete(delete_req("g", &[("subscribed", 0)])).await;
        assert_eq!(r.topics[0].partitions[0].error_code, 0);
        assert_eq!(fetch_all(&c, "g").await, vec![]);
        c.close().await.unwrap();
    });
}

#[test]
fn given_live_group_of_other_protocol_type_when_deleting_offsets_should_answer_non_empty_group() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        let mut r = join_req("conn", "", None, &[("p", Bytes::new())]);
        r.protocol_type = s("connect");
        let joined = c.join_group(r, 3).await;
        assert_eq!(joined.error_code, 0);
        let r = c.offset_delete(delete_req("conn", &[("t", 0)])).await;
        assert_eq!(r.error_code, ResponseError::NonEmptyGroup.code());
        c.close().await.unwrap();
    });
}

// ------------------------------------------------------------------ store codec

mod codec {
    use proptest::prelude::*;

    use super::super::record::{
        self as store, CommittedOffset, StoreRecord, StoreState, StoredGroup, StoredMember,
    };

    fn record() -> impl Strategy<Value = StoreRecord> {
        let name = "[a-c]{1,3}";
        prop_oneof![
            (name, name, 0..4i32, any::<i64>(), "[ -~]{0,8}").prop_map(
                |(group, topic, partition, offset, metadata)| {
                    StoreRecord::Commit {
                        group,
                        topic,
                        partition,
                        value: CommittedOffset {
                            offset,
                            leader_epoch: -1,
                            metadata,
                            commit_timestamp_ms: 7,
                        },
                    }
                }
            ),
            (name, name, 0..4i32).prop_map(|(group, topic, partition)| StoreRecord::Delete {
                group,
                topic,
                partition
            }),
            (name, 0..3usize, any::<i32>()).prop_map(|(group, n, generation_id)| StoreRecord::Group {
                group,
                value: StoredGroup {
                    protocol_type: "consumer".into(),
                    protocol_name: Some("range".into()),
                    generation_id,
                    leader_id: (n > 0).then(|| "m0".into()),
                    state_timestamp_ms: 1,
                    members: (0..n)
                        .map(|i| StoredMember {
                            member_id: format!("m{i}"),
                            group_instance_id: (i == 1).then(|| "static".into()),
                            client_id: "c".into(),
                            client_host: "/127.0.0.1".into(),
                            session_timeout_ms: 10,
                            rebalance_timeout_ms: 20,
                            subscription: bytes::Bytes::from(vec![i as u8; i]),
                            assignment: bytes::Bytes::from_static(b"a"),
                        })
                        .collect(),
                },
            }),
            name.prop_map(|group| StoreRecord::GroupDelete { group }),
        ]
    }

    fn image(records: &[StoreRecord]) -> (Vec<u8>, Vec<usize>) {
        let mut out = b"WEIRGRP1".to_vec();
        let mut ends = vec![out.len()];
        for r in records {
            store::encode_record(r, &mut out);
            ends.push(out.len());
        }
        (out, ends)
    }

    fn replay(records: &[StoreRecord]) -> StoreState {
        let mut state = StoreState::default();
        records.iter().cloned().for_each(|r| state.apply(r));
        state
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn given_records_when_scanning_any_prefix_should_replay_exactly_the_whole_records(
            records in proptest::collection::vec(record(), 0..12),
            cut in any::<prop::sample::Index>(),
        ) {
            let (bytes, ends) = image(&records);
            let path = std::path::Path::new("mem");
            let full = store::scan(&bytes, path).unwrap();
            prop_assert_eq!(full.valid_bytes, bytes.len());
            prop_assert_eq!(&full.state.offsets, &replay(&records).offsets);
            prop_assert_eq!(&full.state.groups, &replay(&records).groups);
            let cut_at = 8 + cut.index(bytes.len() - 7);
            let whole = ends.iter().filter(|&&e| e <= cut_at).count() - 1;
            let partial = store::scan(&bytes[..cut_at], path).unwrap();
            prop_assert_eq!(partial.valid_bytes, ends[whole]);
            prop_assert_eq!(&partial.state.offsets, &replay(&records[..whole]).offsets);
            prop_assert_eq!(partial.state.offset_count, replay(&records[..whole]).offset_count);
        }
    }
}

#[test]
fn given_consumer_subscription_bytes_when_parsing_should_return_topics_and_reject_garbage() {
    assert_eq!(
        group::parse_subscription_topics(&subscription(&["a", "bc"])),
        Some(vec!["a".into(), "bc".into()])
    );
    assert_eq!(
        group::parse_subscription_topics(&[0, 0, 0x7f, 0xff, 0xff, 0xff]),
        None
    );
    assert_eq!(group::parse_subscription_topics(&[0]), None);
}

/// Not a pass/fail test: prints commit latency and group-commit throughput on this disk.
/// `cargo test -p weir-broker --lib groups::tests::measure -- --ignored --nocapture`
#[test]
#[ignore = "measurement, run by hand"]
fn measure_offset_commit_latency_and_group_commit() {
    run(|| async {
        let dir = tempdir();
        let c = GroupCoordinator::open(dir.path().into(), test_config())
            .await
            .unwrap();
        let sequential_count = 500u32;
        let started = std::time::Instant::now();
        for i in 0..sequential_count {
            let r = c
                .offset_commit(commit_req("seq", -1, "", &[("t", (i % 8) as i32, i as i64)]), 8)
                .await;
            assert_eq!(commit_codes(&r), vec![0]);
        }
        let per_commit = started.elapsed() / sequential_count;
        let before = c.offsets_file_stats().flush_count;
        let concurrent_count = 5000u32;
        let started = std::time::Instant::now();
        let tasks: Vec<_> = (0..concurrent_count)
            .map(|i| {
                let c = Rc::clone(&c);
                glommio::spawn_local(async move {
                    c.offset_commit(commit_req("conc", -1, "", &[("t", (i % 64) as i32, i as i64)]), 8)
                        .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(commit_codes(&t.await), vec![0]);
        }
        let elapsed = started.elapsed();
        let flushes = c.offsets_file_stats().flush_count - before;
        println!("sequential: {sequential_count} commits, {per_commit:?} per commit (one fdatasync each)");
        println!(
            "concurrent: {concurrent_count} commits in {elapsed:?} = {:.0} commits/s, {flushes} fdatasyncs",
            f64::from(concurrent_count) / elapsed.as_secs_f64()
        );
        c.close().await.unwrap();
    });
}
