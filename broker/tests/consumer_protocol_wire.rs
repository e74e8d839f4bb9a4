//! KIP-848 ConsumerGroupHeartbeat and ConsumerGroupDescribe on the wire, against a 2-shard
//! broker in zero-hop mode (requests go to the bootstrap port and are forwarded to the group's
//! coordinator shard): incremental reconciliation between two members (a partition moves only
//! after its owner revoked it), member epochs, and bad input (bad epochs, unknown members,
//! invalid regex, unknown assignor, a classic group with members), each answered with Kafka's
//! error code while the broker keeps serving and nothing changes on disk.

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
        }
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
    let broker = Broker::start(FLAGS);
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
