//! The checks in front of the handlers, per API as Kafka's KafkaApis makes
//! them: parts of a request the principal may not touch are taken out before
//! the handler runs and answered with the API's authorization error (29, 30,
//! 31 or 53) in its response; a request refused as a whole gets the API's error
//! response without reaching the handler. Produce and Fetch (the hot path)
//! have their own entry points; `screen` covers the rest, the topic APIs here,
//! groups and transactions in `screen_groups.rs`, administration in
//! `screen_admin.rs`, share groups in `screen_share.rs`. Nothing here runs for an unrestricted `Access`.

use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse},
    metadata_response::MetadataResponseTopic,
    offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult},
    FetchRequest, ListOffsetsRequest, MetadataRequest, OffsetForLeaderEpochRequest, ProduceRequest,
    ProduceResponse, RequestKind, ResponseKind,
};

use super::Access;
use crate::metadata::acl::{op, resource, CLUSTER_NAME};
use crate::metadata::Catalog;

pub const TOPIC_DENIED: i16 = 29;
pub const GROUP_DENIED: i16 = 30;
pub const CLUSTER_DENIED: i16 = 31;
pub const TXN_DENIED: i16 = 53;

/// The three group describes (DescribeGroups, ConsumerGroupDescribe,
/// ShareGroupDescribe): DESCRIBE on each group, else 30 for it; the described
/// groups' authorized operations are the principal's when the request asks.
/// A macro because the three use distinct generated types of the same shape.
macro_rules! describe_groups_screen {
    ($a:expr, $r:expr, $variant:ident, $ids:ident, $resp_mod:ident) => {{
        use $crate::acl::screen::{authorized_operations, take_denied, GROUP_DENIED};
        use $crate::metadata::acl::{op, resource};
        let (a, mut r) = ($a, $r);
        let denied = take_denied(&mut r.$ids, |g| a.allows_group(op::DESCRIBE, g));
        if let Some(first) = denied.first() {
            a.log_denied(stringify!($variant), &format!("DESCRIBE on group {}", first.0));
        }
        let operations = r.include_authorized_operations;
        let a = a.clone();
        let patch = move |resp: &mut ResponseKind| {
            let ResponseKind::$variant(resp) = resp else {
                return;
            };
            if operations {
                for g in resp.groups.iter_mut().filter(|g| g.error_code == 0) {
                    g.authorized_operations = authorized_operations(&a, resource::GROUP, &g.group_id);
                }
            }
            let refused = |g| {
                $resp_mod::DescribedGroup::default()
                    .with_group_id(g)
                    .with_error_code(GROUP_DENIED)
            };
            resp.groups.extend(denied.into_iter().map(refused));
        };
        Screened::Pass(RequestKind::$variant(r), Some(Box::new(patch)))
    }};
}
pub(crate) use describe_groups_screen;

/// Adds the refused parts to the handler's response.
pub type Patch = Box<dyn FnOnce(&mut ResponseKind)>;

pub enum Screened {
    /// Run the handler on what is left, then apply the patch if any.
    Pass(RequestKind, Option<Patch>),
    /// Refused as a whole: this is the answer.
    Deny(ResponseKind),
}

/// The items `allowed` refuses, taken out of `items` (order kept); no
/// allocation when all are allowed.
pub fn take_denied<T>(items: &mut Vec<T>, allowed: impl Fn(&T) -> bool) -> Vec<T> {
    if items.iter().all(&allowed) {
        return Vec::new();
    }
    let (keep, denied): (Vec<T>, Vec<T>) = std::mem::take(items).into_iter().partition(|t| allowed(t));
    *items = keep;
    denied
}

/// Produce: WRITE on the transactional id of a transactional request (else the
/// whole request gets 53), WRITE on each topic (else its partitions get 29).
/// `Err` is the whole answer; `Ok` the refused topics' entries to add.
pub fn produce(a: &Access, req: &mut ProduceRequest) -> Result<Vec<TopicProduceResponse>, ProduceResponse> {
    let error = |code: i16, partitions: Vec<i32>| {
        partitions
            .into_iter()
            .map(|p| {
                PartitionProduceResponse::default()
                    .with_index(p)
                    .with_error_code(code)
                    .with_base_offset(-1)
                    .with_log_append_time_ms(-1)
                    .with_log_start_offset(-1)
            })
            .collect()
    };
    let topic = |t: kafka_protocol::messages::produce_request::TopicProduceData, code| {
        let partitions = t.partition_data.iter().map(|p| p.index).collect();
        TopicProduceResponse::default()
            .with_name(t.name)
            .with_topic_id(t.topic_id)
            .with_partition_responses(error(code, partitions))
    };
    if let Some(id) = req.transactional_id.as_ref() {
        if !a.allows_txn(op::WRITE, id) {
            a.log_denied("Produce", &format!("WRITE on transactional id {}", id.0));
            let all = std::mem::take(&mut req.topic_data);
            let responses = all.into_iter().map(|t| topic(t, TXN_DENIED)).collect();
            return Err(ProduceResponse::default().with_responses(responses));
        }
    }
    let denied = take_denied(&mut req.topic_data, |t| a.allows_topic(op::WRITE, &t.name));
    if let Some(first) = denied.first() {
        a.log_denied("Produce", &format!("WRITE on topic {}", first.name.0));
    }
    Ok(denied.into_iter().map(|t| topic(t, TOPIC_DENIED)).collect())
}

/// Fetch: READ on each topic (named, or by id from v13: an unknown id is left
/// to the handler); the refused topics' entries to add to the response.
pub fn fetch(a: &Access, catalog: &Catalog, req: &mut FetchRequest) -> Vec<FetchableTopicResponse> {
    let name = |t: &kafka_protocol::messages::fetch_request::FetchTopic| -> Option<String> {
        if !t.topic.0.is_empty() {
            return Some(t.topic.0.to_string());
        }
        catalog.topic_by_id(t.topic_id).map(|m| m.name.clone())
    };
    let denied = take_denied(&mut req.topics, |t| {
        if t.topic.0.is_empty() {
            name(t).is_none_or(|n| a.allows_topic(op::READ, &n))
        } else {
            a.allows_topic(op::READ, &t.topic)
        }
    });
    if let Some(first) = denied.first() {
        let n = name(first).unwrap_or_default();
        a.log_denied("Fetch", &format!("READ on topic {n}"));
    }
    denied
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    PartitionData::default()
                        .with_partition_index(p.partition)
                        .with_error_code(TOPIC_DENIED)
                        .with_high_watermark(-1)
                        .with_last_stable_offset(-1)
                        .with_log_start_offset(-1)
                })
                .collect();
            FetchableTopicResponse::default()
                .with_topic(t.topic)
                .with_topic_id(t.topic_id)
                .with_partitions(partitions)
        })
        .collect()
}

/// Every API but Produce and Fetch.
pub fn screen(a: &Access, catalog: &Catalog, body: RequestKind, version: i16) -> Screened {
    use RequestKind as In;
    match body {
        RequestKind::Metadata(r) => metadata(a, catalog, r),
        RequestKind::ListOffsets(r) => list_offsets(a, r),
        RequestKind::OffsetForLeaderEpoch(r) => offset_for_leader_epoch(a, r),
        share @ (In::ShareGroupHeartbeat(_)
        | In::ShareFetch(_)
        | In::ShareAcknowledge(_)
        | In::ShareGroupDescribe(_)
        | In::DescribeShareGroupOffsets(_)
        | In::AlterShareGroupOffsets(_)
        | In::DeleteShareGroupOffsets(_)) => super::screen_share::screen(a, catalog, share),
        other => super::screen_groups::screen(a, other, version),
    }
}

/// Metadata: DESCRIBE on each topic. Refused topics are left out of an
/// all-topics answer and get 29 when named; a named topic that does not exist
/// is auto-created only with CREATE on the cluster or the topic.
fn metadata(a: &Access, catalog: &Catalog, mut r: MetadataRequest) -> Screened {
    let all_topics = r.topics.is_none();
    let can_create_any = a.allows_cluster(op::CREATE);
    let mut denied_names = Vec::new();
    if let Some(topics) = r.topics.as_mut() {
        let create = r.allow_auto_topic_creation;
        let refused = take_denied(topics, |t| {
            let Some(name) = t.name.as_ref() else {
                return true;
            };
            let missing = create && catalog.topic(name).is_none();
            a.allows_topic(op::DESCRIBE, name)
                && (!missing || can_create_any || a.allows_topic(op::CREATE, name))
        });
        denied_names = refused.into_iter().filter_map(|t| t.name).collect();
    }
    if let Some(first) = denied_names.first() {
        a.log_denied("Metadata", &format!("DESCRIBE or CREATE on topic {}", first.0));
    }
    let a = a.clone();
    let patch = move |resp: &mut ResponseKind| {
        let ResponseKind::Metadata(m) = resp else { return };
        let refused =
            |t: &MetadataResponseTopic| t.name.as_ref().is_some_and(|n| !a.allows_topic(op::DESCRIBE, n));
        if all_topics {
            m.topics.retain(|t| !refused(t));
        } else {
            for t in m.topics.iter_mut().filter(|t| refused(t)) {
                *t = denied_topic(t.name.clone());
            }
        }
        m.topics
            .extend(denied_names.into_iter().map(|n| denied_topic(Some(n))));
        for t in m
            .topics
            .iter_mut()
            .filter(|t| t.topic_authorized_operations != i32::MIN)
        {
            if let Some(name) = t.name.as_ref().filter(|_| t.error_code == 0) {
                t.topic_authorized_operations = authorized_operations(&a, resource::TOPIC, name);
            }
        }
        if m.cluster_authorized_operations != i32::MIN && a.allows_cluster(op::DESCRIBE) {
            m.cluster_authorized_operations = authorized_operations(&a, resource::CLUSTER, CLUSTER_NAME);
        } else {
            m.cluster_authorized_operations = i32::MIN;
        }
    };
    Screened::Pass(RequestKind::Metadata(r), Some(Box::new(patch)))
}

/// Kafka's operations per resource type that `authorized_operations` fields list.
const TOPIC_OPERATIONS: [i8; 8] = [
    op::READ,
    op::WRITE,
    op::CREATE,
    op::DELETE,
    op::ALTER,
    op::DESCRIBE,
    op::DESCRIBE_CONFIGS,
    op::ALTER_CONFIGS,
];
const GROUP_OPERATIONS: [i8; 3] = [op::READ, op::DESCRIBE, op::DELETE];
const CLUSTER_OPERATIONS: [i8; 7] = [
    op::CREATE,
    op::ALTER,
    op::DESCRIBE,
    op::CLUSTER_ACTION,
    op::DESCRIBE_CONFIGS,
    op::ALTER_CONFIGS,
    op::IDEMPOTENT_WRITE,
];

/// The bitfield (bit n for operation code n) of what the principal may do on
/// the resource, as Kafka's `authorized_operations` fields.
pub fn authorized_operations(a: &Access, rtype: i8, name: &str) -> i32 {
    let ops: &[i8] = match rtype {
        resource::CLUSTER => &CLUSTER_OPERATIONS,
        resource::GROUP => &GROUP_OPERATIONS,
        _ => &TOPIC_OPERATIONS,
    };
    ops.iter()
        .filter(|o| a.allows(**o, rtype, name))
        .fold(0, |bits, o| bits | 1 << o)
}

fn denied_topic(name: Option<kafka_protocol::messages::TopicName>) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(name)
        .with_error_code(TOPIC_DENIED)
}

/// ListOffsets: DESCRIBE on each topic.
fn list_offsets(a: &Access, mut r: ListOffsetsRequest) -> Screened {
    let denied = take_denied(&mut r.topics, |t| a.allows_topic(op::DESCRIBE, &t.name));
    if denied.is_empty() {
        return Screened::Pass(RequestKind::ListOffsets(r), None);
    }
    a.log_denied("ListOffsets", &format!("DESCRIBE on topic {}", denied[0].name.0));
    let patch = move |resp: &mut ResponseKind| {
        let ResponseKind::ListOffsets(resp) = resp else {
            return;
        };
        resp.topics.extend(denied.into_iter().map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(TOPIC_DENIED)
                        .with_timestamp(-1)
                        .with_offset(-1)
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        }));
    };
    Screened::Pass(RequestKind::ListOffsets(r), Some(Box::new(patch)))
}

/// OffsetForLeaderEpoch: DESCRIBE on each topic (or CLUSTER_ACTION, which
/// only brokers hold).
fn offset_for_leader_epoch(a: &Access, mut r: OffsetForLeaderEpochRequest) -> Screened {
    let cluster = a.allows_cluster(op::CLUSTER_ACTION);
    let denied = take_denied(&mut r.topics, |t| {
        cluster || a.allows_topic(op::DESCRIBE, &t.topic)
    });
    if denied.is_empty() {
        return Screened::Pass(RequestKind::OffsetForLeaderEpoch(r), None);
    }
    a.log_denied(
        "OffsetForLeaderEpoch",
        &format!("DESCRIBE on topic {}", denied[0].topic.0),
    );
    let patch = move |resp: &mut ResponseKind| {
        let ResponseKind::OffsetForLeaderEpoch(resp) = resp else {
            return;
        };
        resp.topics.extend(denied.into_iter().map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_error_code(TOPIC_DENIED)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1)
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions)
        }));
    };
    Screened::Pass(RequestKind::OffsetForLeaderEpoch(r), Some(Box::new(patch)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn given_the_codes_when_compared_with_kafkas_should_match() {
        use kafka_protocol::ResponseError as E;
        assert_eq!(E::TopicAuthorizationFailed.code(), super::TOPIC_DENIED);
        assert_eq!(E::GroupAuthorizationFailed.code(), super::GROUP_DENIED);
        assert_eq!(E::ClusterAuthorizationFailed.code(), super::CLUSTER_DENIED);
        assert_eq!(E::TransactionalIdAuthorizationFailed.code(), super::TXN_DENIED);
    }
}
