//! Share-group membership and inspection: ShareGroupHeartbeat (76) and ShareGroupDescribe (77)
//! on the group's coordinator shard (`groups::share`), and DescribeShareGroupOffsets (90),
//! which asks each partition's owner shard for its share-partition start offset (`crate::share`).
//! An unreachable coordinator answers COORDINATOR_NOT_AVAILABLE, which clients retry.
//! DescribeShareGroupOffsets v0 has no field for the records in flight or the log end, so each
//! partition carries them as Weir tagged fields (`TAG_IN_FLIGHT`, `TAG_LOG_END`: i64, big
//! endian), which other clients skip as unknown tagged fields; `weir share-group describe`
//! reads them.

use std::rc::Rc;

use kafka_protocol::messages::describe_share_group_offsets_response::{
    DescribeShareGroupOffsetsResponseGroup as OffGroup,
    DescribeShareGroupOffsetsResponsePartition as OffPart,
    DescribeShareGroupOffsetsResponseTopic as OffTopic,
};
use kafka_protocol::messages::share_group_describe_response::DescribedGroup;
use kafka_protocol::messages::{
    DescribeShareGroupOffsetsRequest, DescribeShareGroupOffsetsResponse, ShareGroupDescribeRequest,
    ShareGroupDescribeResponse, ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::groups::{call, client_host, on_coordinator};
use super::ShardContext;
use crate::groups::call::{GroupAnswer, GroupCall};
use crate::shard::router::{owner_of, split_by_owner};
use crate::shard::{fan_out, Task};
use crate::share::PartitionSummary;

/// Weir's tagged field on a DescribeShareGroupOffsets partition: records Acquired now.
pub const TAG_IN_FLIGHT: i32 = 10_000;
/// Weir's tagged field on a DescribeShareGroupOffsets partition: the log end offset.
pub const TAG_LOG_END: i32 = 10_001;

pub async fn heartbeat(
    shard: &Rc<ShardContext>,
    req: ShareGroupHeartbeatRequest,
    client_id: String,
    peer: std::net::SocketAddr,
) -> ShareGroupHeartbeatResponse {
    let group_id = req.group_id.0.to_string();
    let beat = GroupCall::ShareHeartbeat {
        req: Box::new(req),
        catalog: shard.catalog(),
        client_id,
        client_host: client_host(peer),
    };
    let pick = |a| match a {
        GroupAnswer::ShareHeartbeat(r) => Some(*r),
        _ => None,
    };
    on_coordinator(shard, &group_id, beat, pick, |code| {
        ShareGroupHeartbeatResponse::default()
            .with_error_code(code)
            .with_member_epoch(-1)
    })
    .await
}

pub async fn describe(
    shard: &Rc<ShardContext>,
    req: ShareGroupDescribeRequest,
) -> ShareGroupDescribeResponse {
    let req_operations = req.include_authorized_operations;
    let mut groups = Vec::with_capacity(req.group_ids.len());
    for id in req.group_ids {
        let group_id = id.0.to_string();
        let ask = GroupCall::ShareDescribe {
            group_id: group_id.clone(),
        };
        match call(shard, &group_id, ask).await {
            Ok(GroupAnswer::ShareDescribe(d)) => groups.push(*d),
            Ok(_) => unreachable!("ShareDescribe answers ShareDescribe"),
            Err(code) => groups.push(DescribedGroup::default().with_group_id(id).with_error_code(code)),
        }
    }
    if req_operations {
        // Without ACLs every group operation is allowed; with them the ACL
        // screen replaces this with the principal's own (acl/screen_share.rs).
        for g in groups.iter_mut().filter(|g| g.error_code == 0) {
            g.authorized_operations = crate::handlers::metadata::GROUP_AUTHORIZED_OPERATIONS;
        }
    }
    ShareGroupDescribeResponse::default().with_groups(groups)
}

/// Share-partition summaries from one owner shard: (slot, summary if the group has state).
pub struct SummaryTask {
    pub group: String,
    pub parts: Vec<(usize, String, i32)>,
}

impl Task<ShardContext> for SummaryTask {
    type Output = Vec<(usize, Option<PartitionSummary>, i64)>;

    async fn run(self, shard: Rc<ShardContext>) -> Self::Output {
        let share = shard.share();
        self.parts
            .into_iter()
            .map(|(i, topic, p)| {
                let end = shard
                    .partitions
                    .owned(&topic, p)
                    .map_or(-1, |log| log.log_end_offset().0);
                let s = share
                    .as_ref()
                    .and_then(|s| s.summary(&(self.group.clone(), topic, p)));
                (i, s, end)
            })
            .collect()
    }
}

/// The share-partitions of `group` on every shard, with their log end offsets (for lag).
pub struct GroupPartitionsTask {
    pub group: String,
}

impl Task<ShardContext> for GroupPartitionsTask {
    type Output = Vec<(String, i32, PartitionSummary, i64)>;

    async fn run(self, shard: Rc<ShardContext>) -> Self::Output {
        let Some(share) = shard.share() else {
            return Vec::new();
        };
        share
            .group_partitions(&self.group)
            .into_iter()
            .map(|(t, p, s)| {
                let end = shard
                    .partitions
                    .owned(&t, p)
                    .map_or(-1, |log| log.log_end_offset().0);
                (t, p, s, end)
            })
            .collect()
    }
}

/// Every share-partition of `group` in the broker: (topic, partition, summary, log end).
pub async fn group_partitions(
    shard: &Rc<ShardContext>,
    group: &str,
) -> Vec<(String, i32, PartitionSummary, i64)> {
    let work: Vec<Vec<()>> = (0..shard.count).map(|_| vec![()]).collect();
    let answers = fan_out(shard, work, |_| GroupPartitionsTask {
        group: group.to_owned(),
    })
    .await;
    let mut out: Vec<_> = answers
        .into_iter()
        .filter_map(|(_, a)| a.ok())
        .flatten()
        .collect();
    out.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    out
}

async fn describe_group_offsets(
    shard: &Rc<ShardContext>,
    group: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> Vec<OffTopic> {
    let catalog = shard.catalog();
    let topics = match topics {
        Some(t) => t,
        None => {
            let mut by_topic: Vec<(String, Vec<i32>)> = Vec::new();
            for (t, p, _, _) in group_partitions(shard, group).await {
                match by_topic.iter_mut().find(|x| x.0 == t) {
                    Some(x) => x.1.push(p),
                    None => by_topic.push((t, vec![p])),
                }
            }
            by_topic
        }
    };
    let mut slots: Vec<(usize, usize, i32)> = Vec::new();
    let mut work = Vec::new();
    let mut out: Vec<OffTopic> = Vec::new();
    for (ti, (name, partitions)) in topics.into_iter().enumerate() {
        let meta = catalog.topic(&name);
        let mut t = OffTopic::default()
            .with_topic_name(TopicName(StrBytes::from_string(name.clone())))
            .with_topic_id(meta.map(|m| m.uuid()).unwrap_or_default());
        for (pi, p) in partitions.into_iter().enumerate() {
            let mut part = OffPart::default()
                .with_partition_index(p)
                .with_start_offset(-1)
                .with_leader_epoch(-1);
            match owner_of(meta, p, shard.count) {
                Some(owner) => {
                    work.push((owner, (slots.len(), name.clone(), p)));
                    slots.push((ti, pi, p));
                }
                None => part = part.with_error_code(ResponseError::UnknownTopicOrPartition.code()),
            }
            t.partitions.push(part);
        }
        out.push(t);
    }
    let answers = fan_out(shard, split_by_owner(work, shard.count), |parts| SummaryTask {
        group: group.to_owned(),
        parts,
    })
    .await;
    for (i, summary, end) in answers.into_iter().filter_map(|(_, a)| a.ok()).flatten() {
        let (ti, pi, _) = slots[i];
        let part = &mut out[ti].partitions[pi];
        let tag = |v: i64| bytes::Bytes::copy_from_slice(&v.to_be_bytes());
        part.unknown_tagged_fields.insert(TAG_LOG_END, tag(end));
        if let Some(s) = summary {
            part.start_offset = s.start_offset;
            part.unknown_tagged_fields
                .insert(TAG_IN_FLIGHT, tag(s.in_flight as i64));
        }
    }
    out
}

/// DescribeShareGroupOffsets (v0): the SPSO of each asked (or every) share-partition; -1 where
/// the group has no state yet, as Kafka answers.
pub async fn describe_offsets(
    shard: &Rc<ShardContext>,
    req: DescribeShareGroupOffsetsRequest,
) -> DescribeShareGroupOffsetsResponse {
    let mut groups = Vec::with_capacity(req.groups.len().min(1000));
    for g in req.groups.into_iter().take(1000) {
        let id = g.group_id.0.to_string();
        let topics = g.topics.map(|ts| {
            ts.into_iter()
                .map(|t| (t.topic_name.0.to_string(), t.partitions))
                .collect()
        });
        let topics = describe_group_offsets(shard, &id, topics).await;
        groups.push(OffGroup::default().with_group_id(g.group_id).with_topics(topics));
    }
    DescribeShareGroupOffsetsResponse::default().with_groups(groups)
}
