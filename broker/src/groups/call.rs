//! A consumer-group request as one value (`GroupCall`) that can travel to the
//! coordinator shard of its group, its answer (`GroupAnswer`), and running it
//! on that shard's coordinator (`execute`). Payloads are the kafka-protocol
//! request and response structs (`Bytes`-backed, `Send`), moved without
//! copying. Runs only on the coordinator's own shard.

use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse,
    SyncGroupRequest, SyncGroupResponse, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};
use std::rc::Rc;
use std::sync::Arc;

use kafka_protocol::messages::consumer_group_describe_response::DescribedGroup as ConsumerDescribedGroup;
use kafka_protocol::messages::share_group_describe_response::DescribedGroup as ShareDescribedGroup;
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::messages::{ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse};

use super::consumer::Caller;
use crate::metadata::Catalog;

use super::{FetchedOffset, GroupCoordinator};

pub enum GroupCall {
    Join {
        req: JoinGroupRequest,
        version: i16,
        client_id: String,
        client_host: String,
    },
    Sync(SyncGroupRequest, i16),
    Heartbeat(HeartbeatRequest, i16),
    Leave(LeaveGroupRequest, i16),
    Commit(OffsetCommitRequest, i16),
    FetchOffsets {
        group_id: String,
        topics: Option<Vec<(String, Vec<i32>)>>,
        require_stable: bool,
        /// OffsetFetch v9+: the member id and epoch a KIP-848 member sends.
        member: Option<(String, i32)>,
    },
    TxnCommit(TxnOffsetCommitRequest),
    /// The end of a transaction: commit or drop the producer's pending offsets.
    CompleteTxn {
        group_id: String,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    },
    List {
        states: Vec<String>,
        types: Vec<String>,
    },
    /// KIP-848 ConsumerGroupHeartbeat, with the sender's catalog snapshot to resolve topics.
    ConsumerHeartbeat {
        req: Box<ConsumerGroupHeartbeatRequest>,
        version: i16,
        catalog: Arc<Catalog>,
        client_id: String,
        client_host: String,
    },
    /// ConsumerGroupDescribe for one group.
    ConsumerDescribe {
        group_id: String,
    },
    /// ShareGroupHeartbeat, with the sender's catalog snapshot to resolve topics.
    ShareHeartbeat {
        req: Box<ShareGroupHeartbeatRequest>,
        catalog: Arc<Catalog>,
        client_id: String,
        client_host: String,
    },
    ShareDescribe {
        group_id: String,
    },
    /// Whether a member is in a share group (a ShareFetch opening a session).
    ShareMemberKnown {
        group_id: String,
        member_id: String,
    },
    Describe {
        group_id: String,
    },
    DeleteOffsets(OffsetDeleteRequest),
    /// DeleteGroups for one group.
    Delete {
        group_id: String,
    },
    Reset {
        group_id: String,
        offsets: Vec<(String, i32, i64)>,
    },
    RemoveTopic(String),
}

pub enum GroupAnswer {
    Join(JoinGroupResponse),
    Sync(SyncGroupResponse),
    Heartbeat(HeartbeatResponse),
    Leave(LeaveGroupResponse),
    Commit(OffsetCommitResponse),
    FetchOffsets(Result<Vec<FetchedOffset>, i16>),
    TxnCommit(TxnOffsetCommitResponse),
    CompleteTxn(Result<(), i16>),
    List(Vec<ListedGroup>),
    Describe(Box<DescribedGroup>),
    ConsumerHeartbeat(Box<ConsumerGroupHeartbeatResponse>),
    ConsumerDescribe(Box<ConsumerDescribedGroup>),
    ShareHeartbeat(Box<ShareGroupHeartbeatResponse>),
    ShareDescribe(Box<ShareDescribedGroup>),
    ShareMemberKnown(bool),
    DeleteOffsets(OffsetDeleteResponse),
    Delete(Result<(), i16>),
    Reset(Result<(), i16>),
    Done,
}

/// Run `call` on this shard's coordinator.
pub async fn execute(coordinator: &Rc<GroupCoordinator>, call: GroupCall) -> GroupAnswer {
    match call {
        GroupCall::Join {
            req,
            version,
            client_id,
            client_host,
        } => GroupAnswer::Join(
            coordinator
                .join_group_from(req, version, &client_id, &client_host)
                .await,
        ),
        GroupCall::Sync(req, v) => GroupAnswer::Sync(coordinator.sync_group(req, v).await),
        GroupCall::Heartbeat(req, v) => GroupAnswer::Heartbeat(coordinator.heartbeat(req, v).await),
        GroupCall::Leave(req, v) => GroupAnswer::Leave(coordinator.leave_group(req, v).await),
        GroupCall::Commit(req, v) => GroupAnswer::Commit(coordinator.offset_commit(req, v).await),
        GroupCall::FetchOffsets {
            group_id,
            topics,
            require_stable,
            member,
        } => GroupAnswer::FetchOffsets(
            coordinator
                .offset_fetch_group(&group_id, topics, require_stable, member)
                .await
                .map_err(|e| e.code()),
        ),
        GroupCall::TxnCommit(req) => GroupAnswer::TxnCommit(coordinator.txn_offset_commit(req).await),
        GroupCall::CompleteTxn {
            group_id,
            producer_id,
            producer_epoch,
            commit,
        } => GroupAnswer::CompleteTxn(
            coordinator
                .complete_txn(&group_id, producer_id, producer_epoch, commit)
                .await
                .map_err(|e| e.code()),
        ),
        GroupCall::List { states, types } => GroupAnswer::List(coordinator.list_groups(&states, &types)),
        GroupCall::Describe { group_id } => {
            GroupAnswer::Describe(Box::new(coordinator.describe_group(&group_id)))
        }
        call @ (GroupCall::ConsumerHeartbeat { .. } | GroupCall::ConsumerDescribe { .. }) => {
            execute_consumer(coordinator, call).await
        }
        call @ (GroupCall::ShareHeartbeat { .. }
        | GroupCall::ShareDescribe { .. }
        | GroupCall::ShareMemberKnown { .. }) => execute_consumer(coordinator, call).await,
        GroupCall::DeleteOffsets(req) => GroupAnswer::DeleteOffsets(coordinator.offset_delete(req).await),
        GroupCall::Delete { group_id } => {
            GroupAnswer::Delete(coordinator.delete_group(&group_id).await.map_err(|e| e.code()))
        }
        GroupCall::Reset { group_id, offsets } => GroupAnswer::Reset(
            coordinator
                .reset_offsets(&group_id, offsets)
                .await
                .map_err(|e| e.code()),
        ),
        GroupCall::RemoveTopic(topic) => {
            if let Err(e) = coordinator.remove_topic(&topic).await {
                tracing::warn!(%topic, error = %e, "removing a deleted topic's offsets failed");
            }
            GroupAnswer::Done
        }
    }
}

/// The KIP-848 and share-group membership calls (a KIP-848 heartbeat waits for its changes
/// to be durable; share-group membership is kept in memory).
async fn execute_consumer(coordinator: &Rc<GroupCoordinator>, call: GroupCall) -> GroupAnswer {
    match call {
        GroupCall::ConsumerHeartbeat {
            req,
            version,
            catalog,
            client_id,
            client_host,
        } => {
            let caller = Caller {
                client_id: &client_id,
                client_host: &client_host,
            };
            let response = coordinator
                .consumer_heartbeat(&req, version, &catalog, &caller)
                .await;
            GroupAnswer::ConsumerHeartbeat(Box::new(response))
        }
        GroupCall::ConsumerDescribe { group_id } => {
            GroupAnswer::ConsumerDescribe(Box::new(coordinator.consumer_describe(&group_id)))
        }
        GroupCall::ShareHeartbeat {
            req,
            catalog,
            client_id,
            client_host,
        } => {
            let caller = Caller {
                client_id: &client_id,
                client_host: &client_host,
            };
            GroupAnswer::ShareHeartbeat(Box::new(coordinator.share_heartbeat(&req, &catalog, &caller)))
        }
        GroupCall::ShareDescribe { group_id } => {
            GroupAnswer::ShareDescribe(Box::new(coordinator.share_describe(&group_id)))
        }
        GroupCall::ShareMemberKnown { group_id, member_id } => {
            GroupAnswer::ShareMemberKnown(coordinator.share_member_known(&group_id, &member_id))
        }
        _ => unreachable!("only consumer and share calls come here"),
    }
}
