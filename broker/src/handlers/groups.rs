//! Consumer-group APIs: each request goes to the coordinator shard of its
//! group (`groups::group_to_shard`), locally or over the mesh. FindCoordinator
//! names that shard's broker in zero-hop mode, or the single broker otherwise.
//! OffsetCommit partitions of topics or partitions the catalog does not have
//! are answered UNKNOWN_TOPIC_OR_PARTITION here, before the coordinator sees
//! the request, as Kafka's request handler does.

use std::net::SocketAddr;
use std::rc::Rc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    BrokerId, DescribeGroupsRequest, DescribeGroupsResponse, FindCoordinatorRequest, FindCoordinatorResponse,
    ListGroupsRequest, ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest,
    OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::groups::{group_to_shard, FetchedOffset};
use crate::groups_glue::{execute, GroupAnswer, GroupCall};
use crate::metadata::Catalog;
use crate::shard::messages::{ShardRequest, ShardResponse};
use crate::shard::Shard;

const KEY_TYPE_GROUP: i8 = 0;

/// Run `call` on the coordinator shard of `group_id`.
pub async fn call(shard: &Rc<Shard>, group_id: &str, call: GroupCall) -> Result<GroupAnswer, i16> {
    let owner = group_to_shard(group_id, shard.count);
    match call {
        GroupCall::Commit(req, version) => commit(shard, owner, req, version).await,
        call => call_on(shard, owner, call).await,
    }
}

/// OffsetCommit: partitions the catalog does not know get UNKNOWN_TOPIC_OR_PARTITION and
/// are not stored (the check is on this shard's catalog snapshot, which is enough: a
/// partition created or deleted meanwhile is a race the client cannot tell apart either).
/// The rest go to the coordinator; its answers are merged back in the request's order.
async fn commit(
    shard: &Rc<Shard>,
    owner: usize,
    req: OffsetCommitRequest,
    version: i16,
) -> Result<GroupAnswer, i16> {
    let (known_req, unknown) = split_unknown_partitions(&shard.catalog(), req);
    let nothing_left = known_req.topics.is_empty() && unknown.iter().any(|(_, slots)| !slots.is_empty());
    let coordinator = if nothing_left {
        OffsetCommitResponse::default()
    } else {
        match call_on(shard, owner, GroupCall::Commit(known_req, version)).await? {
            GroupAnswer::Commit(r) => r,
            _ => unreachable!("Commit answers Commit"),
        }
    };
    Ok(GroupAnswer::Commit(merge_unknown_partitions(
        coordinator,
        unknown,
    )))
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

pub async fn call_on(shard: &Rc<Shard>, owner: usize, call: GroupCall) -> Result<GroupAnswer, i16> {
    if owner == shard.id {
        let coordinator = shard
            .groups()
            .ok_or(ResponseError::CoordinatorNotAvailable.code())?;
        return Ok(execute(&coordinator, call).await);
    }
    match shard.mesh.call(owner, ShardRequest::Group(Box::new(call))).await {
        Ok(ShardResponse::Group(answer)) => Ok(*answer),
        Ok(_) => unreachable!("group calls answer with Group"),
        Err(e) => {
            tracing::warn!(owner, error = %e, "group forward failed");
            Err(ResponseError::CoordinatorNotAvailable.code())
        }
    }
}

/// The (node id, host, port) clients should use for shard `s`.
fn node_of(shard: &Shard, s: usize) -> (i32, String, i32) {
    let host = shard.args.advertised_host();
    if shard.args.single_address {
        (0, host, i32::from(shard.args.listen.port()))
    } else {
        (s as i32, host, i32::from(shard.args.shard_port(s)))
    }
}

pub fn find_coordinator(
    shard: &Shard,
    req: &FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let answer = |key: &StrBytes| -> (i16, Option<String>, (i32, String, i32)) {
        if req.key_type != KEY_TYPE_GROUP {
            let m = "transactions are not supported".to_string();
            return (
                ResponseError::CoordinatorNotAvailable.code(),
                Some(m),
                (-1, String::new(), -1),
            );
        }
        (0, None, node_of(shard, group_to_shard(key, shard.count)))
    };
    if version >= 4 {
        let coordinators = req
            .coordinator_keys
            .iter()
            .map(|key| {
                let (code, message, (node, host, port)) = answer(key);
                Coordinator::default()
                    .with_key(key.clone())
                    .with_node_id(BrokerId(node))
                    .with_host(host.into())
                    .with_port(port)
                    .with_error_code(code)
                    .with_error_message(message.map(Into::into))
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let (code, message, (node, host, port)) = answer(&req.key);
    let response = FindCoordinatorResponse::default()
        .with_error_code(code)
        .with_node_id(BrokerId(node))
        .with_host(host.into())
        .with_port(port);
    if version >= 1 {
        response.with_error_message(message.map(Into::into))
    } else {
        response
    }
}

/// OffsetFetch: v0-7 name one group, v8+ several; each goes to its coordinator.
pub async fn offset_fetch(shard: &Rc<Shard>, req: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    if version < 8 {
        let topics = req.topics.map(|ts| {
            ts.into_iter()
                .map(|t| (t.name.0.to_string(), t.partition_indexes))
                .collect()
        });
        let (code, offsets) = fetch_group(shard, req.group_id.0.to_string(), topics).await;
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
                    })
                    .collect();
                OffsetFetchResponseTopic::default()
                    .with_name(TopicName(name.into()))
                    .with_partitions(partitions)
            })
            .collect();
        let response = OffsetFetchResponse::default().with_topics(topics);
        return if version >= 2 {
            response.with_error_code(code)
        } else {
            response
        };
    }
    let mut groups = Vec::with_capacity(req.groups.len());
    for g in req.groups {
        let topics = g.topics.map(|ts| {
            ts.into_iter()
                .map(|t| (t.name.0.to_string(), t.partition_indexes))
                .collect()
        });
        let group_id = g.group_id.clone();
        let (code, offsets) = fetch_group(shard, g.group_id.0.to_string(), topics).await;
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

async fn fetch_group(
    shard: &Rc<Shard>,
    group_id: String,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> (i16, Vec<FetchedOffset>) {
    let owner_call = GroupCall::FetchOffsets {
        group_id: group_id.clone(),
        topics,
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

pub async fn list_groups(shard: &Rc<Shard>, req: ListGroupsRequest) -> ListGroupsResponse {
    let states: Vec<String> = req.states_filter.iter().map(ToString::to_string).collect();
    let mut groups = Vec::new();
    let mut error_code = 0;
    for owner in 0..shard.count {
        match call_on(
            shard,
            owner,
            GroupCall::List {
                states: states.clone(),
            },
        )
        .await
        {
            Ok(GroupAnswer::List(g)) => groups.extend(g),
            Ok(_) => unreachable!("List answers List"),
            Err(code) => error_code = code,
        }
    }
    groups.sort_by(|a, b| a.group_id.as_str().cmp(b.group_id.as_str()));
    ListGroupsResponse::default()
        .with_error_code(error_code)
        .with_groups(groups)
}

pub async fn describe_groups(shard: &Rc<Shard>, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let mut groups = Vec::with_capacity(req.groups.len());
    for id in req.groups {
        let group_id = id.0.to_string();
        match call(
            shard,
            &group_id,
            GroupCall::Describe {
                group_id: group_id.clone(),
            },
        )
        .await
        {
            Ok(GroupAnswer::Describe(d)) => groups.push(*d),
            Ok(_) => unreachable!("Describe answers Describe"),
            Err(code) => groups.push(
                kafka_protocol::messages::describe_groups_response::DescribedGroup::default()
                    .with_group_id(id)
                    .with_error_code(code),
            ),
        }
    }
    DescribeGroupsResponse::default().with_groups(groups)
}

/// The host part of a peer address, for DescribeGroups' client_host.
pub fn client_host(peer: SocketAddr) -> String {
    format!("/{}", peer.ip())
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };

    use super::*;
    use crate::metadata::catalog::{random_id, Placement};
    use crate::metadata::TopicConfig;

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
        let config = TopicConfig {
            segment_bytes: 1 << 20,
            segment_ms: -1,
            retention_ms: -1,
            retention_bytes: -1,
            flush_messages: i64::MAX,
            flush_ms: 1000,
            max_message_bytes: 1 << 20,
            compression_type: crate::metadata::topic_config::CompressionType::Producer,
        };
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
