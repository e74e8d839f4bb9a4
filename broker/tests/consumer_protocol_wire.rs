//! KIP-848 ConsumerGroupHeartbeat and ConsumerGroupDescribe on the wire, against a 2-shard
//! broker in zero-hop mode (requests go to the bootstrap port and are forwarded to the group's
//! coordinator shard): incremental reconciliation between two members (a partition moves only
//! after its owner revoked it), member epochs, and bad input (bad epochs, unknown members,
//! invalid regex, unknown assignor, a classic group with members), each answered with Kafka's
//! error code while the broker keeps serving and nothing changes on disk; membership surviving
//! a kill -9; static members leaving with -2 and coming back; a classic member inside a
//! consumer group after an online upgrade, across a restart, until the downgrade.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use common::Broker;
use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, GroupId,
    OffsetCommitRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;
use weir_client::blocking::Client;

const FLAGS: &[&str] = &["--shards", "2", "--group-initial-rebalance-delay-ms", "100"];

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn topic_id(c: &mut Client, topic: &str) -> Uuid {
    let m = c.metadata(Some(&[topic])).unwrap();
    m.topics
        .iter()
        .find(|t| t.name.as_deref().map(|n| n.as_str()) == Some(topic))
        .unwrap()
        .topic_id
}

struct Beat<'a> {
    group: &'a str,
    member: &'a str,
    epoch: i32,
    topics: Option<&'a [&'a str]>,
    regex: Option<&'a str>,
    assignor: Option<&'a str>,
    owned: Option<Vec<(Uuid, Vec<i32>)>>,
    instance: Option<&'a str>,
}

impl<'a> Beat<'a> {
    fn join(group: &'a str, member: &'a str, topics: &'a [&'a str]) -> Self {
        Beat {
            group,
            member,
            epoch: 0,
            topics: Some(topics),
            regex: None,
            assignor: None,
            owned: Some(Vec::new()),
            instance: None,
        }
    }

    fn at(group: &'a str, member: &'a str, epoch: i32, owned: Option<Vec<(Uuid, Vec<i32>)>>) -> Self {
        Beat {
            group,
            member,
            epoch,
            topics: None,
            regex: None,
            assignor: None,
            owned,
            instance: None,
        }
    }

    /// With a group instance id (a static member) when `is_static`.
    fn with(mut self, is_static: bool, instance: &'a str) -> Self {
        self.instance = is_static.then_some(instance);
        self
    }

    fn send(&self, c: &mut Client) -> ConsumerGroupHeartbeatResponse {
        let mut r = ConsumerGroupHeartbeatRequest::default();
        r.group_id = GroupId(s(self.group));
        r.member_id = s(self.member);
        r.member_epoch = self.epoch;
        r.rebalance_timeout_ms = if self.epoch == 0 { 30_000 } else { -1 };
        r.subscribed_topic_names = self.topics.map(|ts| ts.iter().map(|t| TopicName(s(t))).collect());
        r.subscribed_topic_regex = self.regex.map(s);
        r.server_assignor = self.assignor.map(s);
        r.instance_id = self.instance.map(s);
        r.topic_partitions = self.owned.as_ref().map(|o| {
            o.iter()
                .map(|(id, ps)| {
                    let mut tp = TopicPartitions::default();
                    tp.topic_id = *id;
                    tp.partitions = ps.clone();
                    tp
                })
                .collect()
        });
        c.call_at(1, r).unwrap()
    }
}

/// The assignment in a heartbeat response, by topic id; None if the response had none.
fn assigned(r: &ConsumerGroupHeartbeatResponse) -> Option<BTreeMap<Uuid, Vec<i32>>> {
    r.assignment.as_ref().map(|a| {
        a.topic_partitions
            .iter()
            .map(|tp| {
                let mut ps = tp.partitions.clone();
                ps.sort_unstable();
                (tp.topic_id, ps)
            })
            .collect()
    })
}

fn ok(r: &ConsumerGroupHeartbeatResponse) -> &ConsumerGroupHeartbeatResponse {
    assert_eq!(r.error_code, 0, "heartbeat failed: {:?}", r.error_message);
    r
}

#[test]
fn given_two_members_when_the_second_joins_should_move_partitions_only_after_revocation() {
    let broker = Broker::start(FLAGS);
    let mut c = broker.client();
    c.create_topic("rt", 4, &[]).unwrap();
    let t = topic_id(&mut c, "rt");

    let a = ok(&Beat::join("rg", "member-a", &["rt"]).send(&mut c)).clone();
    assert_eq!(a.member_epoch, 1);
    assert_eq!(assigned(&a), Some(BTreeMap::from([(t, vec![0, 1, 2, 3])])));

    let b = ok(&Beat::join("rg", "member-b", &["rt"]).send(&mut c)).clone();
    assert_eq!(b.member_epoch, 2, "b joins at the new group epoch");
    assert_eq!(
        assigned(&b),
        Some(BTreeMap::new()),
        "a still holds every partition: b waits"
    );

    // a learns it must give up two partitions; its epoch stays 1 until it has.
    let a2 = ok(&Beat::at("rg", "member-a", 1, Some(vec![(t, vec![0, 1, 2, 3])])).send(&mut c)).clone();
    assert_eq!(a2.member_epoch, 1);
    let kept = assigned(&a2).expect("new assignment sent")[&t].clone();
    assert_eq!(kept.len(), 2);

    // b still gets nothing while a owns them.
    let b2 = ok(&Beat::at("rg", "member-b", 2, None).send(&mut c)).clone();
    assert!(assigned(&b2).is_none_or(|a| a.is_empty()), "{b2:?}");

    // a reports the revocation: it moves to epoch 2, then b gets the other two.
    let a3 = ok(&Beat::at("rg", "member-a", 1, Some(vec![(t, kept.clone())])).send(&mut c)).clone();
    assert_eq!(a3.member_epoch, 2);
    let b3 = ok(&Beat::at("rg", "member-b", 2, None).send(&mut c)).clone();
    let got = assigned(&b3).expect("b's assignment changed")[&t].clone();
    let mut all: Vec<i32> = kept.iter().chain(&got).copied().collect();
    all.sort_unstable();
    assert_eq!(all, vec![0, 1, 2, 3], "b gets exactly what a gave up");

    // ConsumerGroupDescribe shows both, Stable.
    let mut d = ConsumerGroupDescribeRequest::default();
    d.group_ids = vec![GroupId(s("rg")), GroupId(s("nope"))];
    let r = c.call_at(1, d).unwrap();
    let g = &r.groups[0];
    assert_eq!(
        (
            g.error_code,
            g.group_state.as_str(),
            g.group_epoch,
            g.assignment_epoch
        ),
        (0, "Stable", 2, 2)
    );
    assert_eq!(g.assignor_name.as_str(), "uniform");
    assert_eq!(g.members.len(), 2);
    for m in &g.members {
        assert_eq!(m.member_epoch, 2);
        assert_eq!(m.assignment.topic_partitions[0].partitions.len(), 2);
        assert_eq!(m.assignment.topic_partitions[0].topic_name.as_str(), "rt");
    }
    assert_eq!(r.groups[1].error_code, ResponseError::GroupIdNotFound.code());

    // Leaving with epoch -1 answers -1 and frees a's partitions for b.
    let leave = ok(&Beat::at("rg", "member-a", -1, None).send(&mut c)).clone();
    assert_eq!(leave.member_epoch, -1);
    let b4 = ok(&Beat::at("rg", "member-b", 2, Some(vec![(t, got.clone())])).send(&mut c)).clone();
    assert_eq!(b4.member_epoch, 3);
    assert_eq!(assigned(&b4), Some(BTreeMap::from([(t, vec![0, 1, 2, 3])])));
}

fn dir_sizes(dir: &Path, out: &mut BTreeMap<String, u64>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            dir_sizes(&p, out);
        } else {
            out.insert(p.display().to_string(), e.metadata().unwrap().len());
        }
    }
}

fn code(r: &ConsumerGroupHeartbeatResponse) -> i16 {
    r.error_code
}

fn commit(c: &mut Client, group: &str, member: &str, epoch: i32) -> i16 {
    let mut r = OffsetCommitRequest::default();
    r.group_id = GroupId(s(group));
    r.member_id = s(member);
    r.generation_id_or_member_epoch = epoch;
    let mut p = OffsetCommitRequestPartition::default();
    p.partition_index = 0;
    p.committed_offset = 1;
    let mut t = OffsetCommitRequestTopic::default();
    t.name = TopicName(s("bt"));
    t.partitions = vec![p];
    r.topics = vec![t];
    c.call_at(9, r).unwrap().topics[0].partitions[0].error_code
}

/// Offset commits to a consumer group are checked against the member epoch (m1 is at 1).
fn commits_are_checked(c: &mut Client) {
    assert_eq!(commit(c, "bg", "m1", 0), ResponseError::StaleMemberEpoch.code());
    assert_eq!(commit(c, "bg", "ghost", 1), ResponseError::UnknownMemberId.code());
    assert_eq!(
        commit(c, "bg", "", -1),
        ResponseError::UnknownMemberId.code(),
        "admin commit to a non-empty group"
    );
}

#[test]
fn given_bad_heartbeats_when_sent_should_get_kafkas_errors_change_nothing_and_keep_serving() {
    // With online migration disabled, a heartbeat for a classic group with members is refused
    // (GROUP_ID_NOT_FOUND, as Kafka); the default, bidirectional, converts it
    // (consumer_protocol.rs has the real-client migration test).
    let mut flags = FLAGS.to_vec();
    flags.extend(["--group-consumer-migration-policy", "disabled"]);
    let broker = Broker::start(&flags);
    let mut c = broker.client();
    c.create_topic("bt", 2, &[]).unwrap();
    let t = topic_id(&mut c, "bt");
    let joined = ok(&Beat::join("bg", "m1", &["bt"]).send(&mut c)).clone();
    assert_eq!(joined.member_epoch, 1);
    // A classic group with a member.
    let subscription = Bytes::from_static(&[0, 0, 0, 0, 0, 1, 0, 2, b'b', b't', 0, 0, 0, 0]);
    c.join_group("classic", "", 30_000, &[("range", subscription)])
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut before = BTreeMap::new();
    dir_sizes(&broker.data_dir(), &mut before);

    let unknown = Beat::at("bg", "nobody", 1, None).send(&mut c);
    assert_eq!(code(&unknown), ResponseError::UnknownMemberId.code());
    let ahead = Beat::at("bg", "m1", 7, None).send(&mut c);
    assert_eq!(code(&ahead), ResponseError::FencedMemberEpoch.code());
    let behind = Beat::at("bg", "m1", 1, Some(vec![(t, vec![0, 1])])).send(&mut c);
    assert_eq!(code(&behind), 0, "the current epoch is fine");
    let mut bad_regex = Beat::join("bg", "m2", &[]);
    bad_regex.topics = None;
    bad_regex.regex = Some("b(t");
    assert_eq!(
        code(&bad_regex.send(&mut c)),
        ResponseError::InvalidRegularExpression.code()
    );
    let mut bad_assignor = Beat::join("bg", "m3", &["bt"]);
    bad_assignor.assignor = Some("sticky");
    assert_eq!(
        code(&bad_assignor.send(&mut c)),
        ResponseError::UnsupportedAssignor.code()
    );
    let mut no_subscription = Beat::join("bg", "m4", &[]);
    no_subscription.topics = None;
    assert_eq!(
        code(&no_subscription.send(&mut c)),
        ResponseError::InvalidRequest.code()
    );
    let no_member_id = Beat::join("bg", "", &["bt"]).send(&mut c);
    assert_eq!(
        code(&no_member_id),
        ResponseError::InvalidRequest.code(),
        "v1 needs a client member id"
    );
    let classic = Beat::join("classic", "m5", &["bt"]).send(&mut c);
    assert_eq!(code(&classic), ResponseError::GroupIdNotFound.code());
    let left = Beat::at("nosuchgroup", "m6", -1, None).send(&mut c);
    assert_eq!(code(&left), ResponseError::GroupIdNotFound.code());
    commits_are_checked(&mut c);

    let mut after = BTreeMap::new();
    dir_sizes(&broker.data_dir(), &mut after);
    assert_eq!(before, after, "refused requests wrote nothing");
    // Still serving, and the group is intact: m1 alone, with both partitions.
    let d = ok(&Beat::at("bg", "m1", 1, Some(vec![(t, vec![0, 1])])).send(&mut c)).clone();
    assert_eq!(d.member_epoch, 1);
    assert_eq!(
        commit(&mut c, "bg", "m1", 1),
        0,
        "a commit at the member's epoch is accepted"
    );
    c.metadata(None).unwrap();
}

#[test]
fn given_a_regex_subscription_when_a_matching_topic_is_created_should_assign_it_at_the_next_heartbeat() {
    let broker = Broker::start(FLAGS);
    let mut c = broker.client();
    c.create_topic("re-a", 2, &[]).unwrap();
    c.create_topic("other", 2, &[]).unwrap();
    let a = topic_id(&mut c, "re-a");
    let mut join = Beat::join("xg", "rx", &[]);
    join.topics = None;
    join.regex = Some("re-.*");
    join.assignor = Some("range");
    let r = ok(&join.send(&mut c)).clone();
    assert_eq!(
        assigned(&r),
        Some(BTreeMap::from([(a, vec![0, 1])])),
        "only the matching topic"
    );
    let epoch = r.member_epoch;

    c.create_topic("re-b", 3, &[]).unwrap();
    let b = topic_id(&mut c, "re-b");
    let r2 = ok(&Beat::at("xg", "rx", epoch, Some(vec![(a, vec![0, 1])])).send(&mut c)).clone();
    assert_eq!(r2.member_epoch, epoch + 1, "a new matching topic bumps the epoch");
    assert_eq!(
        assigned(&r2),
        Some(BTreeMap::from([(a, vec![0, 1]), (b, vec![0, 1, 2])]))
    );

    let mut d = ConsumerGroupDescribeRequest::default();
    d.group_ids = vec![GroupId(s("xg"))];
    let g = c.call_at(1, d).unwrap().groups.remove(0);
    assert_eq!(g.assignor_name.as_str(), "range");
    assert_eq!(
        g.members[0]
            .subscribed_topic_regex
            .as_ref()
            .map(|r| r.to_string())
            .as_deref(),
        Some("re-.*")
    );
}

/// What ConsumerGroupDescribe says of a group: epochs, state, and per member (id, epoch,
/// assignment, target).
type Described = (i32, i32, String, Vec<(String, i32, Vec<i32>, Vec<i32>)>);

fn describe(c: &mut Client, group: &str) -> Described {
    let mut d = ConsumerGroupDescribeRequest::default();
    d.group_ids = vec![GroupId(s(group))];
    let g = c.call_at(1, d).unwrap().groups.remove(0);
    assert_eq!(g.error_code, 0, "describe {group}: {:?}", g.error_message);
    let parts = |a: &kafka_protocol::messages::consumer_group_describe_response::Assignment| {
        let mut ps: Vec<i32> = a
            .topic_partitions
            .iter()
            .flat_map(|t| t.partitions.clone())
            .collect();
        ps.sort_unstable();
        ps
    };
    let members = g
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.to_string(),
                m.member_epoch,
                parts(&m.assignment),
                parts(&m.target_assignment),
            )
        })
        .collect();
    (
        g.group_epoch,
        g.assignment_epoch,
        g.group_state.to_string(),
        members,
    )
}

/// Joins a and b to `group` on `topic` (4 partitions) and reconciles to a stable split;
/// returns the group epoch. `instance` gives static members instance ids "i-a", "i-b".
fn two_stable_members(c: &mut Client, group: &str, topics: &[&str], t: Uuid, instance: bool) -> i32 {
    ok(&Beat::join(group, "member-a", topics)
        .with(instance, "i-a")
        .send(c));
    let b = ok(&Beat::join(group, "member-b", topics)
        .with(instance, "i-b")
        .send(c))
    .clone();
    let epoch = b.member_epoch;
    // a revokes two partitions, then b claims them.
    let a = ok(&Beat::at(group, "member-a", 1, Some(vec![(t, vec![0, 1, 2, 3])]))
        .with(instance, "i-a")
        .send(c))
    .clone();
    let kept: Vec<i32> = assigned(&a).unwrap()[&t].clone();
    ok(&Beat::at(group, "member-a", 1, Some(vec![(t, kept.clone())]))
        .with(instance, "i-a")
        .send(c));
    let b2 = ok(&Beat::at(group, "member-b", epoch, Some(vec![]))
        .with(instance, "i-b")
        .send(c))
    .clone();
    let b_parts = assigned(&b2).unwrap()[&t].clone();
    assert_eq!(kept.len() + b_parts.len(), 4, "a {kept:?} b {b_parts:?}");
    let (_, _, state, _) = describe(c, group);
    assert_eq!(state, "Stable");
    epoch
}

#[test]
fn given_consumer_group_members_when_the_broker_is_killed_and_restarted_should_keep_members_epochs_and_assignments(
) {
    let mut broker = Broker::start(FLAGS);
    let mut c = broker.client();
    c.create_topic("pt", 4, &[]).unwrap();
    let t = topic_id(&mut c, "pt");
    let epoch = two_stable_members(&mut c, "pg", &["pt"], t, false);
    // A third member mid-reconciliation: it waits for partitions the others still hold.
    let joined = ok(&Beat::join("pg", "member-c", &["pt"]).send(&mut c)).clone();
    assert_eq!(joined.member_epoch, epoch + 1);
    let before = describe(&mut c, "pg");
    assert_eq!(before.3.len(), 3);

    broker.kill();
    broker.start_again();
    let mut c = broker.client();
    assert_eq!(describe(&mut c, "pg"), before, "the group is reloaded as it was");
    // a and b heartbeat with their epochs: no UNKNOWN_MEMBER_ID, no fencing.
    for (id, epoch, parts, _) in &before.3 {
        if id == "member-c" {
            continue;
        }
        let r = ok(&Beat::at("pg", id, *epoch, Some(vec![(t, parts.clone())])).send(&mut c)).clone();
        assert!(
            r.member_epoch >= *epoch,
            "{id} continues at {} (was {epoch})",
            r.member_epoch
        );
    }
    let after = describe(&mut c, "pg");
    assert_eq!(after.0, before.0, "no rebalance: the group epoch did not move");
    let (_, _, _, members) = after;
    let union: usize = members.iter().map(|m| m.2.len()).sum();
    assert!(union <= 4, "no partition owned twice: {members:?}");
}

#[test]
fn given_a_static_member_when_it_leaves_with_epoch_minus_two_and_rejoins_should_get_its_partitions_back() {
    // Long enough that the steps before b's leave finish inside one session on a loaded
    // 2-vCPU CI machine: with 3 s, one run's heartbeats took 1-2 s each under a parallel
    // build and b expired before it could leave.
    let broker = Broker::start(&["--shards", "2", "--group-consumer-session-timeout-ms", "8000"]);
    let mut c = broker.client();
    c.create_topic("st", 4, &[]).unwrap();
    let t = topic_id(&mut c, "st");
    let epoch = two_stable_members(&mut c, "sg", &["st"], t, true);
    let (_, _, _, members) = describe(&mut c, "sg");
    let b_parts = members.iter().find(|m| m.0 == "member-b").unwrap().2.clone();
    let a_parts = members.iter().find(|m| m.0 == "member-a").unwrap().2.clone();

    let left = ok(&Beat::at("sg", "member-b", -2, None)
        .with(true, "i-b")
        .send(&mut c))
    .clone();
    assert_eq!(left.member_epoch, -2);
    let a = ok(
        &Beat::at("sg", "member-a", epoch, Some(vec![(t, a_parts.clone())]))
            .with(true, "i-a")
            .send(&mut c),
    )
    .clone();
    assert_eq!((a.member_epoch, assigned(&a)), (epoch, None), "a is not moved");
    let (group_epoch, _, _, members) = describe(&mut c, "sg");
    assert_eq!(group_epoch, epoch, "a static leave does not bump the group epoch");
    assert!(
        members.contains(&("member-b".into(), -2, b_parts.clone(), b_parts.clone())),
        "{members:?}"
    );

    // Another process takes the instance id back: same partitions, same epoch, nobody moved.
    let mut rejoin = Beat::join("sg", "member-b2", &["st"]);
    rejoin.instance = Some("i-b");
    let b2 = ok(&rejoin.send(&mut c)).clone();
    assert_eq!(b2.member_epoch, epoch);
    assert_eq!(assigned(&b2), Some(BTreeMap::from([(t, b_parts.clone())])));
    // While b2 holds it, the instance id is not free.
    let mut thief = Beat::join("sg", "member-b3", &["st"]);
    thief.instance = Some("i-b");
    assert_eq!(
        code(&thief.send(&mut c)),
        ResponseError::UnreleasedInstanceId.code()
    );
    let zombie = Beat::at("sg", "member-b", epoch, None)
        .with(true, "i-b")
        .send(&mut c);
    assert_eq!(code(&zombie), ResponseError::FencedInstanceId.code());

    // Gone for longer than the session timeout: removed, a gets everything.
    ok(&Beat::at("sg", "member-b2", -2, None)
        .with(true, "i-b")
        .send(&mut c));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(25);
    loop {
        let a = ok(
            &Beat::at("sg", "member-a", epoch, Some(vec![(t, a_parts.clone())]))
                .with(true, "i-a")
                .send(&mut c),
        )
        .clone();
        if a.member_epoch > epoch {
            assert_eq!(assigned(&a), Some(BTreeMap::from([(t, vec![0, 1, 2, 3])])));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "b2 never expired");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let (_, _, _, members) = describe(&mut c, "sg");
    assert_eq!(members.len(), 1, "{members:?}");
}

/// ConsumerProtocolAssignment v0 of one topic.
fn assignment_bytes(topic: &str, parts: &[i32]) -> Bytes {
    let mut b = vec![0, 0, 0, 0, 0, 1];
    b.extend_from_slice(&(topic.len() as i16).to_be_bytes());
    b.extend_from_slice(topic.as_bytes());
    b.extend_from_slice(&(parts.len() as i32).to_be_bytes());
    parts.iter().for_each(|p| b.extend_from_slice(&p.to_be_bytes()));
    b.extend_from_slice(&(-1i32).to_be_bytes());
    Bytes::from(b)
}

/// The partitions of a one-topic ConsumerProtocolAssignment (none if it has no topic).
fn assignment_parts(b: &[u8]) -> Vec<i32> {
    let int = |at: usize| i32::from_be_bytes(b[at..at + 4].try_into().unwrap());
    if b.len() < 6 || int(2) == 0 {
        return Vec::new();
    }
    let name_len = i16::from_be_bytes([b[6], b[7]]) as usize;
    let at = 8 + name_len;
    (0..int(at) as usize).map(|i| int(at + 4 + 4 * i)).collect()
}

fn rebalancing(r: Result<(), weir_client::blocking::ClientError>) -> bool {
    matches!(r, Err(e) if e.code() == Some(ResponseError::RebalanceInProgress.code()))
}

#[test]
fn given_a_classic_member_when_a_kip848_member_joins_should_serve_it_through_the_consumer_group_across_a_restart_and_downgrade_when_the_kip848_member_leaves(
) {
    let mut broker = Broker::start(FLAGS);
    let mut c = broker.client();
    c.create_topic("mt", 4, &[]).unwrap();
    let t = topic_id(&mut c, "mt");
    let sub = Bytes::from_static(&[0, 0, 0, 0, 0, 1, 0, 2, b'm', b't', 0xff, 0xff, 0xff, 0xff]);
    let joined = c.join_group("mg", "", 30_000, &[("range", sub.clone())]).unwrap();
    let me = joined.member_id.clone();
    c.sync_group(
        "mg",
        &joined,
        &[(me.clone(), assignment_bytes("mt", &[0, 1, 2, 3]))],
    )
    .unwrap();
    let g = joined.generation_id;

    // The upgrade: the KIP-848 member waits for the partitions the classic member holds.
    let k = ok(&Beat::join("mg", "kip", &["mt"]).send(&mut c)).clone();
    assert_eq!(k.member_epoch, g + 1);
    assert_eq!(assigned(&k), Some(BTreeMap::new()));
    assert!(
        rebalancing(c.heartbeat("mg", g, &me)),
        "the classic member must rejoin"
    );
    let rejoined = c
        .join_group("mg", &me, 30_000, &[("range", sub.clone())])
        .unwrap();
    assert_eq!(rejoined.generation_id, g + 1);
    assert!(
        rejoined.members.is_empty() && !rejoined.is_leader(),
        "the server assigns"
    );
    let mine = assignment_parts(&c.sync_group("mg", &rejoined, &[]).unwrap());
    assert_eq!(mine.len(), 2, "{mine:?}");
    c.heartbeat("mg", g + 1, &me).unwrap();
    let k2 = ok(&Beat::at("mg", "kip", g + 1, Some(vec![])).send(&mut c)).clone();
    let theirs = assigned(&k2).unwrap()[&t].clone();
    let mut all: Vec<i32> = mine.iter().chain(&theirs).copied().collect();
    all.sort_unstable();
    assert_eq!(all, vec![0, 1, 2, 3]);

    // Both kinds of member survive a kill -9.
    broker.kill();
    broker.start_again();
    let mut c = broker.client();
    c.heartbeat("mg", g + 1, &me).unwrap();
    let k3 = ok(&Beat::at("mg", "kip", g + 1, Some(vec![(t, theirs.clone())])).send(&mut c)).clone();
    assert_eq!(k3.member_epoch, g + 1);
    let (_, _, _, members) = describe(&mut c, "mg");
    assert_eq!(members.len(), 2, "{members:?}");

    // The KIP-848 member leaves: the group is classic again and rebalances.
    ok(&Beat::at("mg", "kip", -1, None).send(&mut c));
    assert!(rebalancing(c.heartbeat("mg", g + 1, &me)));
    let classic = c.join_group("mg", &me, 30_000, &[("range", sub)]).unwrap();
    assert!(
        classic.is_leader() && classic.generation_id > g + 1,
        "a classic rebalance"
    );
    let mut d = ConsumerGroupDescribeRequest::default();
    d.group_ids = vec![GroupId(s("mg"))];
    let g = c.call_at(1, d).unwrap().groups.remove(0);
    assert_eq!(
        g.error_code,
        ResponseError::GroupIdNotFound.code(),
        "no longer a consumer group"
    );
}

/// Run by hand: `cargo test -p weir-broker --test consumer_protocol_wire measure -- --ignored
/// --nocapture`. The cost of durable membership: a heartbeat that changes nothing writes
/// nothing; one that changes the member (here a join, then a leave) waits for an fdatasync.
#[test]
#[ignore = "measurement, run by hand"]
fn measure_heartbeat_latency_with_and_without_a_durable_change() {
    let broker = Broker::start(FLAGS);
    let mut c = broker.client();
    c.create_topic("lt", 4, &[]).unwrap();
    let t = topic_id(&mut c, "lt");
    let r = ok(&Beat::join("lg", "steady", &["lt"]).send(&mut c)).clone();
    let n = 300;
    let start = std::time::Instant::now();
    for _ in 0..n {
        ok(&Beat::at("lg", "steady", r.member_epoch, Some(vec![(t, vec![0, 1, 2, 3])])).send(&mut c));
    }
    let plain = start.elapsed() / n;
    let start = std::time::Instant::now();
    for i in 0..n {
        let id = format!("churn-{i}");
        let mut join = Beat::join("lg2", &id, &["lt"]);
        join.topics = Some(&["lt"]);
        ok(&join.send(&mut c));
        ok(&Beat::at("lg2", &id, -1, None).send(&mut c));
    }
    let changing = start.elapsed() / (2 * n);
    eprintln!("plain heartbeat {plain:?}, heartbeat with a durable change {changing:?} (mean of {n})");
}
