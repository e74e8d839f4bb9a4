//! Consumer-group APIs: each request goes to the coordinator shard of its
//! group (`groups::group_to_shard`), locally or over the mesh. FindCoordinator
//! names that shard's broker in zero-hop mode, or the single broker otherwise.

use std::net::SocketAddr;
use std::rc::Rc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    BrokerId, DescribeGroupsRequest, DescribeGroupsResponse, FindCoordinatorRequest, FindCoordinatorResponse,
    ListGroupsRequest, ListGroupsResponse, OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::groups::{group_to_shard, FetchedOffset};
use crate::groups_glue::{execute, GroupAnswer, GroupCall};
use crate::shard::messages::{ShardRequest, ShardResponse};
use crate::shard::Shard;

const KEY_TYPE_GROUP: i8 = 0;

/// Run `call` on the coordinator shard of `group_id`.
pub async fn call(shard: &Rc<Shard>, group_id: &str, call: GroupCall) -> Result<GroupAnswer, i16> {
    let owner = group_to_shard(group_id, shard.count);
    call_on(shard, owner, call).await
}

pub async fn call_on(shard: &Rc<Shard>, owner: usize, call: GroupCall) -> Result<GroupAnswer, i16> {
    if owner == shard.id {
        let coordinator = shard
            .groups()
            .ok_or(ResponseError::CoordinatorNotAvailable.code())?;
        return Ok(execute(&coordinator, call).await);
    }
    match shard.mesh.call(owner, ShardRequest::Group(call)).await {
        Ok(ShardResponse::Group(answer)) => Ok(answer),
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
