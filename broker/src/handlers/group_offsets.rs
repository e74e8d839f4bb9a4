//! The offset APIs of consumer groups. OffsetCommit partitions of topics or
//! partitions the catalog does not have are answered UNKNOWN_TOPIC_OR_PARTITION
//! here, before the coordinator sees the request, as Kafka's request handler
//! does; the rest go to the group's coordinator shard (`groups::call`).
//! OffsetFetch v0-7 names one group, v8+ several, each sent to its coordinator.

use std::rc::Rc;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use kafka_protocol::ResponseError;

use super::groups::call;
use super::ShardContext;
use crate::groups::call::{GroupAnswer, GroupCall};
use crate::groups::FetchedOffset;
use crate::metadata::Catalog;

/// OffsetCommit. A coordinator that cannot be reached answers every partition
/// COORDINATOR_NOT_AVAILABLE (retriable), as Kafka does.
pub async fn offset_commit(
    shard: &Rc<ShardContext>,
    req: OffsetCommitRequest,
    version: i16,
) -> OffsetCommitResponse {
    let group_id = req.group_id.0.to_string();
    let (known_req, unknown) = split_unknown_partitions(&shard.catalog(), req);
    let nothing_left = known_req.topics.is_empty() && unknown.iter().any(|(_, slots)| !slots.is_empty());
    let coordinator = if nothing_left {
        OffsetCommitResponse::default()
    } else {
        let sent = every_partition(&known_req);
        match call(shard, &group_id, GroupCall::Commit(known_req, version)).await {
            Ok(GroupAnswer::Commit(r)) => r,
            Ok(_) => unreachable!("Commit answers Commit"),
            Err(code) => failed_commit(sent, code),
        }
    };
    merge_unknown_partitions(coordinator, unknown)
}

/// The request's topics and partitions, to answer them all with one error.
fn every_partition(req: &OffsetCommitRequest) -> Vec<(TopicName, Vec<i32>)> {
    req.topics
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect()
}

fn failed_commit(sent: Vec<(TopicName, Vec<i32>)>, code: i16) -> OffsetCommitResponse {
    let topics = sent
        .into_iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|p| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p)
                        .with_error_code(code)
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// Per request topic, its name and its partitions in order: `Some(index)` for one the
/// catalog lacks, `None` for one left in the returned request (whose topics keep their
/// order and drop those with no partition left).
type Unknown = Vec<(TopicName, Vec<Option<i32>>)>;

fn split_unknown_partitions(
    catalog: &Catalog,
    mut req: OffsetCommitRequest,
) -> (OffsetCommitRequest, Unknown) {
    let mut unknown = Vec::with_capacity(req.topics.len());
    for topic in &mut req.topics {
        let partitions = catalog
            .topic(topic.name.as_str())
            .map_or(0, |t| t.partition_count());
        let slots = topic
            .partitions
            .iter()
            .map(|p| (!(0..partitions).contains(&p.partition_index)).then_some(p.partition_index))
            .collect();
        topic
            .partitions
            .retain(|p| (0..partitions).contains(&p.partition_index));
        unknown.push((topic.name.clone(), slots));
    }
    req.topics.retain(|t| !t.partitions.is_empty());
    (req, unknown)
}

fn merge_unknown_partitions(coordinator: OffsetCommitResponse, unknown: Unknown) -> OffsetCommitResponse {
    let throttle_time_ms = coordinator.throttle_time_ms;
    let mut answered = coordinator.topics.into_iter();
    let topics = unknown
        .into_iter()
        .map(|(name, slots)| {
            // A topic with a known partition was sent on, and is answered in order.
            let known = slots
                .iter()
                .any(Option::is_none)
                .then(|| answered.next())
                .flatten();
            let mut known_partitions = known.map(|t| t.partitions).unwrap_or_default().into_iter();
            let mut out = OffsetCommitResponseTopic::default().with_name(name);
            for slot in slots {
                match slot {
                    Some(index) => {
                        out.partitions.push(
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(index)
                                .with_error_code(ResponseError::UnknownTopicOrPartition.code()),
                        );
                    }
                    None => out.partitions.extend(known_partitions.next()),
                }
            }
            out
        })
        .collect();
    OffsetCommitResponse::default()
        .with_throttle_time_ms(throttle_time_ms)
        .with_topics(topics)
}

/// OffsetFetch: v0-7 name one group, v8+ several; each goes to its coordinator.
pub async fn offset_fetch(
    shard: &Rc<ShardContext>,
    req: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    if version < 8 {
        return offset_fetch_one(shard, req, version).await;
    }
    let mut groups = Vec::with_capacity(req.groups.len());
    for g in req.groups {
        let topics = g.topics.map(|ts| {
            ts.into_iter()
                .map(|t| (t.name.0.to_string(), t.partition_indexes))
                .collect()
        });
        let group_id = g.group_id.clone();
        // v9+: a KIP-848 member names itself; the coordinator checks it against the group.
        let member = (version >= 9)
            .then(|| (g.member_id.as_deref().unwrap_or("").to_owned(), g.member_epoch))
            .filter(|(id, epoch)| !id.is_empty() || *epoch >= 0);
        let (code, offsets) = fetch_group(
            shard,
            g.group_id.0.to_string(),
            topics,
            req.require_stable,
            member,
        )
        .await;
        let topics = group_by_topic(offsets)
            .into_iter()
            .map(|(name, parts)| {
                let partitions = parts
                    .into_iter()
                    .map(|o| {
                        OffsetFetchResponsePartitions::default()
                            .with_partition_index(o.partition)
                            .with_committed_offset(o.offset)
                            .with_committed_leader_epoch(o.leader_epoch)
                            .with_metadata(Some(o.metadata.into()))
                            .with_error_code(o.error_code)
                    })
                    .collect();
                OffsetFetchResponseTopics::default()
                    .with_name(TopicName(name.into()))
                    .with_partitions(partitions)
            })
            .collect();
        groups.push(
            OffsetFetchResponseGroup::default()
                .with_group_id(group_id)
                .with_topics(topics)
                .with_error_code(code),
        );
    }
    OffsetFetchResponse::default().with_groups(groups)
}

/// OffsetFetch v0-7: one group.
async fn offset_fetch_one(
    shard: &Rc<ShardContext>,
    req: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    let topics = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let stable = version >= 7 && req.require_stable;
    let (code, offsets) = fetch_group(shard, req.group_id.0.to_string(), topics, stable, None).await;
    let topics = group_by_topic(offsets)
        .into_iter()
        .map(|(name, parts)| {
            let partitions = parts
                .into_iter()
                .map(|o| {
                    OffsetFetchResponsePartition::default()
                        .with_partition_index(o.partition)
                        .with_committed_offset(o.offset)
                        .with_committed_leader_epoch(if version >= 5 { o.leader_epoch } else { -1 })
                        .with_metadata(Some(o.metadata.into()))
                        .with_error_code(o.error_code)
                })
                .collect();
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(name.into()))
                .with_partitions(partitions)
        })
        .collect();
    let response = OffsetFetchResponse::default().with_topics(topics);
    if version >= 2 {
        response.with_error_code(code)
    } else {
        response
    }
}

async fn fetch_group(
    shard: &Rc<ShardContext>,
    group_id: String,
    topics: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
    member: Option<(String, i32)>,
) -> (i16, Vec<FetchedOffset>) {
    let owner_call = GroupCall::FetchOffsets {
        group_id: group_id.clone(),
        topics,
        require_stable,
        member,
    };
    match call(shard, &group_id, owner_call).await {
        Ok(GroupAnswer::FetchOffsets(Ok(offsets))) => (0, offsets),
        Ok(GroupAnswer::FetchOffsets(Err(code))) | Err(code) => (code, Vec::new()),
        Ok(_) => unreachable!("FetchOffsets answers FetchOffsets"),
    }
}

fn group_by_topic(offsets: Vec<FetchedOffset>) -> Vec<(String, Vec<FetchedOffset>)> {
    let mut out: Vec<(String, Vec<FetchedOffset>)> = Vec::new();
    for o in offsets {
        match out.iter_mut().find(|(t, _)| *t == o.topic) {
            Some((_, v)) => v.push(o),
            None => out.push((o.topic.clone(), vec![o])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };

    use super::*;
    use crate::metadata::catalog::{random_id, Placement};

    fn request(topics: &[(&str, &[i32])]) -> OffsetCommitRequest {
        let topics = topics
            .iter()
            .map(|(name, parts)| {
                OffsetCommitRequestTopic::default()
                    .with_name(TopicName(name.to_string().into()))
                    .with_partitions(
                        parts
                            .iter()
                            .map(|p| OffsetCommitRequestPartition::default().with_partition_index(*p))
                            .collect(),
                    )
            })
            .collect();
        OffsetCommitRequest::default().with_topics(topics)
    }

    /// What the coordinator answers: every partition it was given, error 0.
    fn coordinator(req: &OffsetCommitRequest) -> OffsetCommitResponse {
        let topics = req
            .topics
            .iter()
            .map(|t| {
                OffsetCommitResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                OffsetCommitResponsePartition::default()
                                    .with_partition_index(p.partition_index)
                            })
                            .collect(),
                    )
            })
            .collect();
        OffsetCommitResponse::default().with_topics(topics)
    }

    fn flat(r: &OffsetCommitResponse) -> Vec<(String, i32, i16)> {
        r.topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(move |p| (t.name.to_string(), p.partition_index, p.error_code))
            })
            .collect()
    }

    #[test]
    fn given_unknown_topics_and_partitions_when_committing_should_answer_them_unknown_in_request_order() {
        let config = crate::metadata::test_topic_config();
        let placement = Placement::Balanced {
            partitions: 2,
            replication_factor: 1,
        };
        let catalog = Catalog::new("c".into()).with_topic("known", random_id(), placement, config, 1);
        let req = request(&[
            ("nope", &[0]),
            ("known", &[2, 0, -1, 1]),
            ("nope2", &[]),
            ("x", &[5]),
        ]);
        let (sent, unknown) = split_unknown_partitions(&catalog, req);
        assert_eq!(
            flat(&coordinator(&sent)),
            vec![("known".into(), 0, 0), ("known".into(), 1, 0)]
        );
        let merged = merge_unknown_partitions(coordinator(&sent), unknown);
        let unknown_code = ResponseError::UnknownTopicOrPartition.code();
        assert_eq!(
            flat(&merged),
            vec![
                ("nope".into(), 0, unknown_code),
                ("known".into(), 2, unknown_code),
                ("known".into(), 0, 0),
                ("known".into(), -1, unknown_code),
                ("known".into(), 1, 0),
                ("x".into(), 5, unknown_code),
            ]
        );
        let names: Vec<String> = merged.topics.iter().map(|t| t.name.to_string()).collect();
        assert_eq!(names, vec!["nope", "known", "nope2", "x"]);
    }
}
