//! KIP-848 consumer-group APIs: ConsumerGroupHeartbeat (68) and ConsumerGroupDescribe (69).
//! Each group's request runs on its coordinator shard (`groups::group_to_shard`), like the
//! classic group APIs; the heartbeat carries this shard's catalog snapshot so the coordinator
//! resolves subscribed names and regexes to topic ids. An unreachable coordinator answers
//! COORDINATOR_NOT_AVAILABLE, which clients retry.

use std::net::SocketAddr;
use std::rc::Rc;

use kafka_protocol::messages::consumer_group_describe_response::DescribedGroup;
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse,
};

use super::groups::{call, client_host, on_coordinator};
use super::ShardContext;
use crate::groups::call::{GroupAnswer, GroupCall};

pub async fn heartbeat(
    shard: &Rc<ShardContext>,
    req: ConsumerGroupHeartbeatRequest,
    version: i16,
    client_id: String,
    peer: SocketAddr,
) -> ConsumerGroupHeartbeatResponse {
    let group_id = req.group_id.0.to_string();
    let beat = GroupCall::ConsumerHeartbeat {
        req: Box::new(req),
        version,
        catalog: shard.catalog(),
        client_id,
        client_host: client_host(peer),
    };
    let pick = |a| match a {
        GroupAnswer::ConsumerHeartbeat(r) => Some(*r),
        _ => None,
    };
    on_coordinator(shard, &group_id, beat, pick, |code| {
        ConsumerGroupHeartbeatResponse::default()
            .with_error_code(code)
            .with_member_epoch(-1)
    })
    .await
}

pub async fn describe(
    shard: &Rc<ShardContext>,
    req: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let req_operations = req.include_authorized_operations;
    let mut groups = Vec::with_capacity(req.group_ids.len());
    for id in req.group_ids {
        let group_id = id.0.to_string();
        let describe = GroupCall::ConsumerDescribe {
            group_id: group_id.clone(),
        };
        match call(shard, &group_id, describe).await {
            Ok(GroupAnswer::ConsumerDescribe(d)) => groups.push(*d),
            Ok(_) => unreachable!("ConsumerDescribe answers ConsumerDescribe"),
            Err(code) => groups.push(DescribedGroup::default().with_group_id(id).with_error_code(code)),
        }
    }
    if req_operations {
        // Without ACLs every group operation is allowed; with them the ACL
        // screen replaces this with the principal's own (acl/screen_admin.rs).
        for g in groups.iter_mut().filter(|g| g.error_code == 0) {
            g.authorized_operations = crate::handlers::metadata::GROUP_AUTHORIZED_OPERATIONS;
        }
    }
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}
