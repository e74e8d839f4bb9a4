//! Consumer-group APIs: each request goes to the coordinator shard of its
//! group (`groups::group_to_shard`) as a `GroupTask`, run there on the
//! coordinator (`groups::call`). FindCoordinator names that shard's broker (for
//! a group, or a transactional id: `txn::txn_to_shard`) in
//! zero-hop mode, or the single broker otherwise. A coordinator that cannot be
//! reached answers COORDINATOR_NOT_AVAILABLE, which clients retry. The offset
//! APIs (OffsetCommit, OffsetFetch) are in `group_offsets.rs`. DeleteGroups
//! deletes each group on its coordinator, durably, before answering.

use std::net::SocketAddr;
use std::rc::Rc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{
    BrokerId, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest, ListGroupsResponse,
    OffsetDeleteRequest, OffsetDeleteResponse, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::ShardContext;
use crate::groups::call::{execute, GroupAnswer, GroupCall};
use crate::groups::group_to_shard;
use crate::shard::{run_on, Task};
use crate::txn::txn_to_shard;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

/// A group call for the coordinator shard of its group.
pub struct GroupTask(pub GroupCall);

impl Task<ShardContext> for GroupTask {
    type Output = Result<GroupAnswer, i16>;

    async fn run(self, shard: Rc<ShardContext>) -> Result<GroupAnswer, i16> {
        let coordinator = shard
            .groups()
            .ok_or(ResponseError::CoordinatorNotAvailable.code())?;
        Ok(execute(&coordinator, self.0).await)
    }
}

/// Run `call` on the coordinator shard of `group_id`.
pub async fn call(shard: &Rc<ShardContext>, group_id: &str, call: GroupCall) -> Result<GroupAnswer, i16> {
    call_on(shard, group_to_shard(group_id, shard.count), call).await
}

/// Run `call` on shard `owner`'s coordinator.
pub async fn call_on(shard: &Rc<ShardContext>, owner: usize, call: GroupCall) -> Result<GroupAnswer, i16> {
    run_on(shard, owner, GroupTask(call)).await.unwrap_or_else(|e| {
        tracing::warn!(owner, error = %e, "group forward failed");
        Err(ResponseError::CoordinatorNotAvailable.code())
    })
}

/// Run `call` on its group's coordinator and take out the answer `pick`
/// expects; `failed` builds the response for an unreachable coordinator.
pub(super) async fn on_coordinator<R>(
    shard: &Rc<ShardContext>,
    group_id: &str,
    group_call: GroupCall,
    pick: fn(GroupAnswer) -> Option<R>,
    failed: fn(i16) -> R,
) -> R {
    match call(shard, group_id, group_call).await {
        Ok(answer) => pick(answer).expect("each group call answers its own kind"),
        Err(code) => failed(code),
    }
}

pub async fn join_group(
    shard: &Rc<ShardContext>,
    req: JoinGroupRequest,
    version: i16,
    client_id: String,
    peer: SocketAddr,
) -> JoinGroupResponse {
    let group_id = req.group_id.0.to_string();
    let client_host = client_host(peer);
    let join = GroupCall::Join {
        req,
        version,
        client_id,
        client_host,
    };
    let pick = |a| match a {
        GroupAnswer::Join(r) => Some(r),
        _ => None,
    };
    on_coordinator(shard, &group_id, join, pick, |code| {
        JoinGroupResponse::default().with_error_code(code)
    })
    .await
}

pub async fn sync_group(shard: &Rc<ShardContext>, req: SyncGroupRequest, version: i16) -> SyncGroupResponse {
    let group_id = req.group_id.0.to_string();
    let pick = |a| match a {
        GroupAnswer::Sync(r) => Some(r),
        _ => None,
    };
    on_coordinator(shard, &group_id, GroupCall::Sync(req, version), pick, |code| {
        SyncGroupResponse::default().with_error_code(code)
    })
    .await
}

pub async fn heartbeat(shard: &Rc<ShardContext>, req: HeartbeatRequest, version: i16) -> HeartbeatResponse {
    let group_id = req.group_id.0.to_string();
    let pick = |a| match a {
        GroupAnswer::Heartbeat(r) => Some(r),
        _ => None,
    };
    on_coordinator(
        shard,
        &group_id,
        GroupCall::Heartbeat(req, version),
        pick,
        |code| HeartbeatResponse::default().with_error_code(code),
    )
    .await
}

pub async fn leave_group(
    shard: &Rc<ShardContext>,
    req: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let group_id = req.group_id.0.to_string();
    let pick = |a| match a {
        GroupAnswer::Leave(r) => Some(r),
        _ => None,
    };
    on_coordinator(shard, &group_id, GroupCall::Leave(req, version), pick, |code| {
        LeaveGroupResponse::default().with_error_code(code)
    })
    .await
}

pub async fn offset_delete(shard: &Rc<ShardContext>, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let group_id = req.group_id.0.to_string();
    let pick = |a| match a {
        GroupAnswer::DeleteOffsets(r) => Some(r),
        _ => None,
    };
    on_coordinator(shard, &group_id, GroupCall::DeleteOffsets(req), pick, |code| {
        OffsetDeleteResponse::default().with_error_code(code)
    })
    .await
}

/// The (node id, host, port) clients should use for shard `s` (on the TLS
/// listener when `tls`).
fn node_of(shard: &ShardContext, s: usize, tls: bool) -> (i32, String, i32) {
    let host = shard.args.advertised_host();
    if shard.args.single_address {
        (0, host, i32::from(shard.args.advertised_port(None, tls)))
    } else {
        (
            s as i32,
            host,
            i32::from(shard.args.advertised_port(Some(s), tls)),
        )
    }
}

pub fn find_coordinator(
    shard: &ShardContext,
    req: &FindCoordinatorRequest,
    version: i16,
    tls: bool,
) -> FindCoordinatorResponse {
    let answer = |key: &StrBytes| -> (i16, Option<String>, (i32, String, i32)) {
        match req.key_type {
            KEY_TYPE_GROUP => (0, None, node_of(shard, group_to_shard(key, shard.count), tls)),
            KEY_TYPE_TRANSACTION => (0, None, node_of(shard, txn_to_shard(key, shard.count), tls)),
            other => (
                ResponseError::InvalidRequest.code(),
                Some(format!("unknown coordinator key type {other}")),
                (-1, String::new(), -1),
            ),
        }
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

/// ListGroups. Admin clients send it to every node of the metadata and merge the
/// answers, so a connection to one shard's advertised port (zero-hop mode) lists
/// only the groups that shard coordinates: each group once. On the bootstrap
/// address, or in single-address mode (one node), every shard's groups.
pub async fn list_groups(
    shard: &Rc<ShardContext>,
    req: ListGroupsRequest,
    node: Option<usize>,
) -> ListGroupsResponse {
    let states: Vec<String> = req.states_filter.iter().map(ToString::to_string).collect();
    let types: Vec<String> = req.types_filter.iter().map(ToString::to_string).collect();
    let mut groups = Vec::new();
    let mut error_code = 0;
    let owners = match node {
        Some(s) => s..s + 1,
        None => 0..shard.count,
    };
    for owner in owners {
        match call_on(
            shard,
            owner,
            GroupCall::List {
                states: states.clone(),
                types: types.clone(),
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

pub async fn describe_groups(shard: &Rc<ShardContext>, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let req_operations = req.include_authorized_operations;
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
    DescribeGroupsResponse::default().with_groups(groups)
}

/// DeleteGroups: each group on its coordinator, in the client's order. Unknown
/// groups get GROUP_ID_NOT_FOUND, groups with members NON_EMPTY_GROUP (Kafka's
/// codes); an unreachable coordinator COORDINATOR_NOT_AVAILABLE.
pub async fn delete_groups(shard: &Rc<ShardContext>, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(req.groups_names.len());
    for id in req.groups_names {
        let group_id = id.0.to_string();
        let delete = GroupCall::Delete {
            group_id: group_id.clone(),
        };
        let code = match call(shard, &group_id, delete).await {
            Ok(GroupAnswer::Delete(result)) => result.err().unwrap_or(0),
            Ok(_) => unreachable!("Delete answers Delete"),
            Err(code) => code,
        };
        results.push(
            DeletableGroupResult::default()
                .with_group_id(id)
                .with_error_code(code),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}

/// The host part of a peer address, for DescribeGroups' client_host.
pub fn client_host(peer: SocketAddr) -> String {
    format!("/{}", peer.ip())
}
