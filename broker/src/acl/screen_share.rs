//! The share-group APIs' checks (KIP-932, as Kafka's KafkaApis makes them):
//! READ on the group to heartbeat, fetch and acknowledge, plus READ on each
//! topic fetched or acknowledged; DESCRIBE on the group to describe it;
//! DESCRIBE on the group and each topic to describe its start offsets; READ on
//! the group and topics to alter them; DELETE on the group and READ on the
//! topics to delete them. ShareFetch and ShareAcknowledge name topics by id:
//! an id the catalog does not know is left to the handler (UNKNOWN_TOPIC_ID).

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::screen::{take_denied, Screened, GROUP_DENIED, TOPIC_DENIED};
use super::Access;
use crate::metadata::acl::op;
use crate::metadata::Catalog;

/// The share-group APIs (`screen.rs` routes only them here).
pub fn screen(a: &Access, catalog: &Catalog, body: RequestKind) -> Screened {
    use RequestKind as In;
    match body {
        In::ShareGroupHeartbeat(r) => heartbeat(a, r),
        In::ShareFetch(r) => share_fetch(a, catalog, r),
        In::ShareAcknowledge(r) => share_acknowledge(a, catalog, r),
        In::ShareGroupDescribe(r) => describe(a, r),
        In::DescribeShareGroupOffsets(r) => describe_offsets(a, r),
        In::AlterShareGroupOffsets(r) => alter_offsets(a, r),
        In::DeleteShareGroupOffsets(r) => delete_offsets(a, r),
        other => Screened::Pass(other, None),
    }
}

fn group_allowed(a: &Access, api: &str, operation: i8, group: &str) -> bool {
    let ok = a.allows_group(operation, group);
    if !ok {
        let name = if operation == op::READ {
            "READ"
        } else if operation == op::DELETE {
            "DELETE"
        } else {
            "DESCRIBE"
        };
        a.log_denied(api, &format!("{name} on group {group}"));
    }
    ok
}

fn heartbeat(a: &Access, r: ShareGroupHeartbeatRequest) -> Screened {
    if group_allowed(a, "ShareGroupHeartbeat", op::READ, &r.group_id) {
        return Screened::Pass(RequestKind::ShareGroupHeartbeat(r), None);
    }
    let resp = ShareGroupHeartbeatResponse::default().with_error_code(GROUP_DENIED);
    Screened::Deny(ResponseKind::ShareGroupHeartbeat(resp))
}

/// Whether the topic with this id may be read; unknown ids pass (the handler
/// answers them).
fn id_readable(a: &Access, catalog: &Catalog, id: uuid::Uuid) -> bool {
    catalog
        .topic_by_id(id)
        .is_none_or(|t| a.allows_topic(op::READ, &t.name))
}

fn log_denied_id(a: &Access, api: &str, catalog: &Catalog, id: uuid::Uuid) {
    let name = catalog.topic_by_id(id).map(|t| t.name.as_str()).unwrap_or("?");
    a.log_denied(api, &format!("READ on topic {name}"));
}

/// ShareFetch: READ on the group (else the whole answer is 30), READ on each
/// topic (else its partitions get 29, and 29 for their acknowledgements too).
fn share_fetch(a: &Access, catalog: &Catalog, mut r: ShareFetchRequest) -> Screened {
    use share_fetch_response::{PartitionData, ShareFetchableTopicResponse};
    let group = r.group_id.as_ref().map(|g| g.0.to_string()).unwrap_or_default();
    if !group_allowed(a, "ShareFetch", op::READ, &group) {
        let resp = ShareFetchResponse::default().with_error_code(GROUP_DENIED);
        return Screened::Deny(ResponseKind::ShareFetch(resp));
    }
    let denied = take_denied(&mut r.topics, |t| id_readable(a, catalog, t.topic_id));
    if denied.is_empty() {
        return Screened::Pass(RequestKind::ShareFetch(r), None);
    }
    log_denied_id(a, "ShareFetch", catalog, denied[0].topic_id);
    let refused: Vec<ShareFetchableTopicResponse> = denied
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let acked = !p.acknowledgement_batches.is_empty();
                    PartitionData::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(TOPIC_DENIED)
                        .with_acknowledge_error_code(if acked { TOPIC_DENIED } else { 0 })
                })
                .collect();
            ShareFetchableTopicResponse::default()
                .with_topic_id(t.topic_id)
                .with_partitions(partitions)
        })
        .collect();
    let patch = move |resp: &mut ResponseKind| {
        if let ResponseKind::ShareFetch(resp) = resp {
            resp.responses.extend(refused);
        }
    };
    Screened::Pass(RequestKind::ShareFetch(r), Some(Box::new(patch)))
}

/// ShareAcknowledge: READ on the group, then READ on each topic.
fn share_acknowledge(a: &Access, catalog: &Catalog, mut r: ShareAcknowledgeRequest) -> Screened {
    use share_acknowledge_response::{PartitionData, ShareAcknowledgeTopicResponse};
    let group = r.group_id.as_ref().map(|g| g.0.to_string()).unwrap_or_default();
    if !group_allowed(a, "ShareAcknowledge", op::READ, &group) {
        let resp = ShareAcknowledgeResponse::default().with_error_code(GROUP_DENIED);
        return Screened::Deny(ResponseKind::ShareAcknowledge(resp));
    }
    let denied = take_denied(&mut r.topics, |t| id_readable(a, catalog, t.topic_id));
    if denied.is_empty() {
        return Screened::Pass(RequestKind::ShareAcknowledge(r), None);
    }
    log_denied_id(a, "ShareAcknowledge", catalog, denied[0].topic_id);
    let refused: Vec<ShareAcknowledgeTopicResponse> = denied
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    PartitionData::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(TOPIC_DENIED)
                })
                .collect();
            ShareAcknowledgeTopicResponse::default()
                .with_topic_id(t.topic_id)
                .with_partitions(partitions)
        })
        .collect();
    let patch = move |resp: &mut ResponseKind| {
        if let ResponseKind::ShareAcknowledge(resp) = resp {
            resp.responses.extend(refused);
        }
    };
    Screened::Pass(RequestKind::ShareAcknowledge(r), Some(Box::new(patch)))
}

/// ShareGroupDescribe: DESCRIBE on each group (else 30 for it); the described
/// groups' authorized operations are the principal's when asked for.
fn describe(a: &Access, r: ShareGroupDescribeRequest) -> Screened {
    super::screen::describe_groups_screen!(a, r, ShareGroupDescribe, group_ids, share_group_describe_response)
}

/// DescribeShareGroupOffsets: DESCRIBE on each group (else 30 for it), and
/// DESCRIBE on each topic: named topics the principal may not describe get 29
/// per partition; an all-topics answer leaves them out.
fn describe_offsets(a: &Access, mut r: DescribeShareGroupOffsetsRequest) -> Screened {
    use describe_share_group_offsets_response::{
        DescribeShareGroupOffsetsResponseGroup as G, DescribeShareGroupOffsetsResponsePartition as P,
        DescribeShareGroupOffsetsResponseTopic as T,
    };
    let denied_groups = take_denied(&mut r.groups, |g| a.allows_group(op::DESCRIBE, &g.group_id));
    if let Some(first) = denied_groups.first() {
        a.log_denied(
            "DescribeShareGroupOffsets",
            &format!("DESCRIBE on group {}", first.group_id.0),
        );
    }
    // Per group still asked for: the named topics refused, as response entries.
    let mut refused_topics: Vec<(GroupId, Vec<T>)> = Vec::new();
    for g in r.groups.iter_mut() {
        let Some(topics) = g.topics.as_mut() else { continue };
        let denied = take_denied(topics, |t| a.allows_topic(op::DESCRIBE, &t.topic_name));
        if let Some(first) = denied.first() {
            a.log_denied(
                "DescribeShareGroupOffsets",
                &format!("DESCRIBE on topic {}", first.topic_name.0),
            );
            let entries = denied
                .into_iter()
                .map(|t| {
                    let parts = t
                        .partitions
                        .iter()
                        .map(|p| {
                            P::default()
                                .with_partition_index(*p)
                                .with_start_offset(-1)
                                .with_error_code(TOPIC_DENIED)
                        })
                        .collect();
                    T::default().with_topic_name(t.topic_name).with_partitions(parts)
                })
                .collect();
            refused_topics.push((g.group_id.clone(), entries));
        }
    }
    let a = a.clone();
    let patch = move |resp: &mut ResponseKind| {
        let ResponseKind::DescribeShareGroupOffsets(resp) = resp else {
            return;
        };
        for g in resp.groups.iter_mut() {
            g.topics.retain(|t| a.allows_topic(op::DESCRIBE, &t.topic_name));
            if let Some((_, entries)) = refused_topics.iter_mut().find(|(id, _)| *id == g.group_id) {
                g.topics.append(entries);
            }
        }
        resp.groups.extend(denied_groups.into_iter().map(|g| {
            G::default()
                .with_group_id(g.group_id)
                .with_error_code(GROUP_DENIED)
                .with_error_message(Some(StrBytes::from_static_str("Group authorization failed.")))
        }));
    };
    Screened::Pass(RequestKind::DescribeShareGroupOffsets(r), Some(Box::new(patch)))
}

/// AlterShareGroupOffsets: READ on the group (else the whole answer is 30),
/// READ on each topic (else its partitions get 29).
fn alter_offsets(a: &Access, mut r: AlterShareGroupOffsetsRequest) -> Screened {
    use alter_share_group_offsets_response::{
        AlterShareGroupOffsetsResponsePartition as P, AlterShareGroupOffsetsResponseTopic as T,
    };
    if !group_allowed(a, "AlterShareGroupOffsets", op::READ, &r.group_id) {
        let resp = AlterShareGroupOffsetsResponse::default().with_error_code(GROUP_DENIED);
        return Screened::Deny(ResponseKind::AlterShareGroupOffsets(resp));
    }
    let denied = take_denied(&mut r.topics, |t| a.allows_topic(op::READ, &t.topic_name));
    if denied.is_empty() {
        return Screened::Pass(RequestKind::AlterShareGroupOffsets(r), None);
    }
    a.log_denied(
        "AlterShareGroupOffsets",
        &format!("READ on topic {}", denied[0].topic_name.0),
    );
    let refused: Vec<T> = denied
        .into_iter()
        .map(|t| {
            let parts = t
                .partitions
                .iter()
                .map(|p| {
                    P::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(TOPIC_DENIED)
                })
                .collect();
            T::default().with_topic_name(t.topic_name).with_partitions(parts)
        })
        .collect();
    let patch = move |resp: &mut ResponseKind| {
        if let ResponseKind::AlterShareGroupOffsets(resp) = resp {
            resp.responses.extend(refused);
        }
    };
    Screened::Pass(RequestKind::AlterShareGroupOffsets(r), Some(Box::new(patch)))
}

/// DeleteShareGroupOffsets: DELETE on the group (else the whole answer is 30),
/// READ on each topic (else 29 for it).
fn delete_offsets(a: &Access, mut r: DeleteShareGroupOffsetsRequest) -> Screened {
    use delete_share_group_offsets_response::DeleteShareGroupOffsetsResponseTopic as T;
    if !group_allowed(a, "DeleteShareGroupOffsets", op::DELETE, &r.group_id) {
        let resp = DeleteShareGroupOffsetsResponse::default().with_error_code(GROUP_DENIED);
        return Screened::Deny(ResponseKind::DeleteShareGroupOffsets(resp));
    }
    let denied = take_denied(&mut r.topics, |t| a.allows_topic(op::READ, &t.topic_name));
    if denied.is_empty() {
        return Screened::Pass(RequestKind::DeleteShareGroupOffsets(r), None);
    }
    a.log_denied(
        "DeleteShareGroupOffsets",
        &format!("READ on topic {}", denied[0].topic_name.0),
    );
    let refused: Vec<T> = denied
        .into_iter()
        .map(|t| {
            T::default()
                .with_topic_name(t.topic_name)
                .with_error_code(TOPIC_DENIED)
                .with_error_message(Some(StrBytes::from_static_str("Topic authorization failed.")))
        })
        .collect();
    let patch = move |resp: &mut ResponseKind| {
        if let ResponseKind::DeleteShareGroupOffsets(resp) = resp {
            resp.responses.extend(refused);
        }
    };
    Screened::Pass(RequestKind::DeleteShareGroupOffsets(r), Some(Box::new(patch)))
}
