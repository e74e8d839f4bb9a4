//! The group and transaction APIs' checks (Kafka's KafkaApis): READ on the
//! group to join, sync, heartbeat, leave and commit; DESCRIBE on it to find
//! its coordinator, fetch offsets and describe it; DELETE to delete it or its
//! offsets; WRITE on the transactional id for every transaction API, READ on
//! the topics whose offsets are committed.

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::screen::{take_denied, Patch, Screened, GROUP_DENIED, TOPIC_DENIED, TXN_DENIED};
use super::Access;
use crate::metadata::acl::op;

fn pass(body: RequestKind, patch: Option<Patch>) -> Screened {
    Screened::Pass(body, patch)
}

pub fn screen(a: &Access, body: RequestKind, version: i16) -> Screened {
    use RequestKind as In;
    use ResponseKind as Out;
    let group = |api: &str, g: &str| {
        let ok = a.allows_group(op::READ, g);
        if !ok {
            a.log_denied(api, &format!("READ on group {g}"));
        }
        ok
    };
    match body {
        In::JoinGroup(r) if !group("JoinGroup", &r.group_id) => Screened::Deny(Out::JoinGroup(
            JoinGroupResponse::default().with_error_code(GROUP_DENIED),
        )),
        In::SyncGroup(r) if !group("SyncGroup", &r.group_id) => Screened::Deny(Out::SyncGroup(
            SyncGroupResponse::default().with_error_code(GROUP_DENIED),
        )),
        In::Heartbeat(r) if !group("Heartbeat", &r.group_id) => Screened::Deny(Out::Heartbeat(
            HeartbeatResponse::default().with_error_code(GROUP_DENIED),
        )),
        In::LeaveGroup(r) if !group("LeaveGroup", &r.group_id) => Screened::Deny(Out::LeaveGroup(
            LeaveGroupResponse::default().with_error_code(GROUP_DENIED),
        )),
        In::ConsumerGroupHeartbeat(r) if !group("ConsumerGroupHeartbeat", &r.group_id) => {
            let resp = ConsumerGroupHeartbeatResponse::default().with_error_code(GROUP_DENIED);
            Screened::Deny(Out::ConsumerGroupHeartbeat(resp))
        }
        In::OffsetCommit(r) => offset_commit(a, r),
        In::OffsetFetch(r) => offset_fetch(a, r, version),
        In::FindCoordinator(r) => find_coordinator(a, r, version),
        In::InitProducerId(r) => init_producer_id(a, r),
        other => txn(a, other, version),
    }
}

fn offset_commit(a: &Access, mut r: OffsetCommitRequest) -> Screened {
    use offset_commit_response::{OffsetCommitResponsePartition as P, OffsetCommitResponseTopic as T};
    let topic = |t: offset_commit_request::OffsetCommitRequestTopic, code: i16| {
        let parts = t
            .partitions
            .iter()
            .map(|p| {
                P::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(code)
            })
            .collect();
        T::default()
            .with_name(t.name)
            .with_topic_id(t.topic_id)
            .with_partitions(parts)
    };
    if !a.allows_group(op::READ, &r.group_id) {
        a.log_denied("OffsetCommit", &format!("READ on group {}", r.group_id.0));
        let topics = r.topics.into_iter().map(|t| topic(t, GROUP_DENIED)).collect();
        return Screened::Deny(ResponseKind::OffsetCommit(
            OffsetCommitResponse::default().with_topics(topics),
        ));
    }
    let denied = take_denied(&mut r.topics, |t| a.allows_topic(op::READ, &t.name));
    if denied.is_empty() {
        return pass(RequestKind::OffsetCommit(r), None);
    }
    a.log_denied("OffsetCommit", &format!("READ on topic {}", denied[0].name.0));
    let patch = move |resp: &mut ResponseKind| {
        if let ResponseKind::OffsetCommit(resp) = resp {
            resp.topics
                .extend(denied.into_iter().map(|t| topic(t, TOPIC_DENIED)));
        }
    };
    pass(RequestKind::OffsetCommit(r), Some(Box::new(patch)))
}

/// OffsetFetch: DESCRIBE on the group(s); offsets of topics without DESCRIBE
/// are left out of an all-topics answer and get 29 when named (Kafka).
fn offset_fetch(a: &Access, mut r: OffsetFetchRequest, version: i16) -> Screened {
    use offset_fetch_response::OffsetFetchResponseGroup;
    if version < 8 && !a.allows_group(op::DESCRIBE, &r.group_id) {
        a.log_denied("OffsetFetch", &format!("DESCRIBE on group {}", r.group_id.0));
        return Screened::Deny(ResponseKind::OffsetFetch(offset_fetch_denied(r, version)));
    }
    let denied = take_denied(&mut r.groups, |g| a.allows_group(op::DESCRIBE, &g.group_id));
    if let Some(g) = denied.first() {
        a.log_denied("OffsetFetch", &format!("DESCRIBE on group {}", g.group_id.0));
    }
    let named = r.topics.is_some();
    let a = a.clone();
    let patch = move |resp: &mut ResponseKind| {
        let ResponseKind::OffsetFetch(resp) = resp else {
            return;
        };
        let ok = |n: &str| a.allows_topic(op::DESCRIBE, n);
        if named {
            for t in resp.topics.iter_mut().filter(|t| !ok(&t.name)) {
                for p in &mut t.partitions {
                    (p.error_code, p.committed_offset, p.metadata) = (TOPIC_DENIED, -1, None);
                }
            }
        } else {
            resp.topics.retain(|t| ok(&t.name));
        }
        for g in &mut resp.groups {
            g.topics.retain(|t| ok(&t.name));
        }
        resp.groups.extend(denied.into_iter().map(|g| {
            OffsetFetchResponseGroup::default()
                .with_group_id(g.group_id)
                .with_error_code(GROUP_DENIED)
        }));
    };
    pass(RequestKind::OffsetFetch(r), Some(Box::new(patch)))
}

/// OffsetFetch v1-7 refused: the error at the top, and (v1 has no top-level
/// error) on each partition asked for.
fn offset_fetch_denied(r: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    use offset_fetch_response::{OffsetFetchResponsePartition as P, OffsetFetchResponseTopic as T};
    let topics = r
        .topics
        .unwrap_or_default()
        .into_iter()
        .map(|t| {
            let parts = t
                .partition_indexes
                .iter()
                .map(|p| {
                    P::default()
                        .with_partition_index(*p)
                        .with_committed_offset(-1)
                        .with_error_code(GROUP_DENIED)
                })
                .collect();
            T::default().with_name(t.name).with_partitions(parts)
        })
        .collect();
    let resp = OffsetFetchResponse::default().with_topics(topics);
    if version >= 2 {
        resp.with_error_code(GROUP_DENIED)
    } else {
        resp
    }
}

/// FindCoordinator: DESCRIBE on the group (key type 0) or transactional id (1).
fn find_coordinator(a: &Access, mut r: FindCoordinatorRequest, version: i16) -> Screened {
    let txn = r.key_type == 1;
    let allowed = |k: &StrBytes| {
        if txn {
            a.allows_txn(op::DESCRIBE, k)
        } else {
            a.allows_group(op::DESCRIBE, k)
        }
    };
    let code = if txn { TXN_DENIED } else { GROUP_DENIED };
    if version < 4 {
        if allowed(&r.key) {
            return pass(RequestKind::FindCoordinator(r), None);
        }
        a.log_denied("FindCoordinator", &format!("DESCRIBE on {}", r.key));
        let resp = FindCoordinatorResponse::default()
            .with_error_code(code)
            .with_node_id(BrokerId(-1))
            .with_port(-1);
        return Screened::Deny(ResponseKind::FindCoordinator(resp));
    }
    let denied = take_denied(&mut r.coordinator_keys, |k| allowed(k));
    if denied.is_empty() {
        return pass(RequestKind::FindCoordinator(r), None);
    }
    a.log_denied("FindCoordinator", &format!("DESCRIBE on {}", denied[0]));
    let patch = move |resp: &mut ResponseKind| {
        let ResponseKind::FindCoordinator(resp) = resp else {
            return;
        };
        resp.coordinators.extend(denied.into_iter().map(|k| {
            find_coordinator_response::Coordinator::default()
                .with_key(k)
                .with_node_id(BrokerId(-1))
                .with_port(-1)
                .with_error_code(code)
        }));
    };
    pass(RequestKind::FindCoordinator(r), Some(Box::new(patch)))
}

/// InitProducerId: WRITE on the transactional id, or for an idempotent
/// producer IDEMPOTENT_WRITE on the cluster or WRITE on some topic (KIP-679).
fn init_producer_id(a: &Access, r: InitProducerIdRequest) -> Screened {
    let (allowed, code, what) = match r.transactional_id.as_ref() {
        Some(id) => (
            a.allows_txn(op::WRITE, id),
            TXN_DENIED,
            "WRITE on the transactional id",
        ),
        None => {
            let some_topic = a.principal.as_deref().is_some_and(|p| {
                a.authz
                    .allows_some(p, a.host(), op::WRITE, crate::metadata::acl::resource::TOPIC)
            });
            let ok = a.allows_cluster(op::IDEMPOTENT_WRITE) || some_topic;
            (
                ok,
                super::screen::CLUSTER_DENIED,
                "IDEMPOTENT_WRITE on the cluster",
            )
        }
    };
    if allowed {
        return pass(RequestKind::InitProducerId(r), None);
    }
    a.log_denied("InitProducerId", what);
    let resp = InitProducerIdResponse::default()
        .with_error_code(code)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    Screened::Deny(ResponseKind::InitProducerId(resp))
}

/// The transaction APIs: WRITE on the transactional id (53), READ on the
/// group for offsets (30).
fn txn(a: &Access, body: RequestKind, version: i16) -> Screened {
    use RequestKind as In;
    use ResponseKind as Out;
    let write = |api: &str, id: &str| {
        let ok = a.allows_txn(op::WRITE, id);
        if !ok {
            a.log_denied(api, &format!("WRITE on transactional id {id}"));
        }
        ok
    };
    match body {
        In::EndTxn(r) if !write("EndTxn", &r.transactional_id) => {
            Screened::Deny(Out::EndTxn(EndTxnResponse::default().with_error_code(TXN_DENIED)))
        }
        In::AddOffsetsToTxn(r) => {
            let code = if !write("AddOffsetsToTxn", &r.transactional_id) {
                TXN_DENIED
            } else if !a.allows_group(op::READ, &r.group_id) {
                a.log_denied("AddOffsetsToTxn", &format!("READ on group {}", r.group_id.0));
                GROUP_DENIED
            } else {
                return pass(In::AddOffsetsToTxn(r), None);
            };
            Screened::Deny(Out::AddOffsetsToTxn(
                AddOffsetsToTxnResponse::default().with_error_code(code),
            ))
        }
        In::AddPartitionsToTxn(r) if version < 4 => add_partitions(a, r),
        In::TxnOffsetCommit(r) => txn_offset_commit(a, r),
        other => super::screen_admin::screen(a, other, version),
    }
}

fn add_partitions(a: &Access, r: AddPartitionsToTxnRequest) -> Screened {
    use add_partitions_to_txn_response::{
        AddPartitionsToTxnPartitionResult as P, AddPartitionsToTxnTopicResult as T,
    };
    let txn_ok = a.allows_txn(op::WRITE, &r.v3_and_below_transactional_id);
    let topics_ok = r
        .v3_and_below_topics
        .iter()
        .all(|t| a.allows_topic(op::WRITE, &t.name));
    if txn_ok && topics_ok {
        return pass(RequestKind::AddPartitionsToTxn(r), None);
    }
    a.log_denied("AddPartitionsToTxn", "WRITE on the transactional id or a topic");
    // As Kafka: the refused topics' partitions get their error, the others
    // OPERATION_NOT_ATTEMPTED (55).
    let results = r
        .v3_and_below_topics
        .iter()
        .map(|t| {
            let code = match (txn_ok, a.allows_topic(op::WRITE, &t.name)) {
                (false, _) => TXN_DENIED,
                (true, false) => TOPIC_DENIED,
                (true, true) => 55,
            };
            let parts = t
                .partitions
                .iter()
                .map(|p| {
                    P::default()
                        .with_partition_index(*p)
                        .with_partition_error_code(code)
                })
                .collect();
            T::default()
                .with_name(t.name.clone())
                .with_results_by_partition(parts)
        })
        .collect();
    let resp = AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results);
    Screened::Deny(ResponseKind::AddPartitionsToTxn(resp))
}

fn txn_offset_commit(a: &Access, mut r: TxnOffsetCommitRequest) -> Screened {
    use txn_offset_commit_response::{
        TxnOffsetCommitResponsePartition as P, TxnOffsetCommitResponseTopic as T,
    };
    let topic = |t: txn_offset_commit_request::TxnOffsetCommitRequestTopic, code: i16| {
        let parts = t
            .partitions
            .iter()
            .map(|p| {
                P::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(code)
            })
            .collect();
        T::default().with_name(t.name).with_partitions(parts)
    };
    let whole = if !a.allows_txn(op::WRITE, &r.transactional_id) {
        Some((TXN_DENIED, "WRITE on the transactional id"))
    } else if !a.allows_group(op::READ, &r.group_id) {
        Some((GROUP_DENIED, "READ on the group"))
    } else {
        None
    };
    if let Some((code, what)) = whole {
        a.log_denied("TxnOffsetCommit", what);
        let topics = r.topics.into_iter().map(|t| topic(t, code)).collect();
        let resp = TxnOffsetCommitResponse::default().with_topics(topics);
        return Screened::Deny(ResponseKind::TxnOffsetCommit(resp));
    }
    let denied = take_denied(&mut r.topics, |t| a.allows_topic(op::READ, &t.name));
    if denied.is_empty() {
        return pass(RequestKind::TxnOffsetCommit(r), None);
    }
    a.log_denied("TxnOffsetCommit", &format!("READ on topic {}", denied[0].name.0));
    let patch = move |resp: &mut ResponseKind| {
        if let ResponseKind::TxnOffsetCommit(resp) = resp {
            resp.topics
                .extend(denied.into_iter().map(|t| topic(t, TOPIC_DENIED)));
        }
    };
    pass(RequestKind::TxnOffsetCommit(r), Some(Box::new(patch)))
}
