//! Coordinator tests: each runs a real glommio executor and drives `GroupCoordinator` with
//! kafka_protocol request structs, on the real filesystem (tempdirs on ext4 here).
//! This file holds the shared helpers; the tests are in `membership`, `offsets` and `codec`.

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
    let _deadline = crate::deadline::arm(
        crate::deadline::this_test(),
        crate::log::test_support::EXECUTOR_TEST_DEADLINE,
    );
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
    let fetched = c
        .offset_fetch_group(group, None, false, None)
        .await
        .expect("fetch");
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

mod codec;
mod membership;
mod offsets;
