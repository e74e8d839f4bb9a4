//! The administration APIs' checks (Kafka's KafkaApis and AclApis): per topic
//! CREATE (or CREATE on the cluster), DELETE, ALTER, DESCRIBE_CONFIGS and
//! ALTER_CONFIGS; per group DESCRIBE and DELETE; per transactional id
//! DESCRIBE; on the cluster DESCRIBE for DescribeAcls, DescribeLogDirs and
//! DescribeUserScramCredentials, ALTER for CreateAcls, DeleteAcls,
//! AlterUserScramCredentials and ElectLeaders.

use kafka_protocol::messages::*;

use super::screen::{
    authorized_operations, take_denied, Screened, CLUSTER_DENIED, GROUP_DENIED, TOPIC_DENIED, TXN_DENIED,
};
use super::Access;
use crate::metadata::acl::{op, resource};

/// Take the items of `$req.$field` that `$allowed` refuses out of the request
/// and add `$make(item)` for each to the response's `$out` list.
macro_rules! per_item {
    ($a:expr, $api:literal, $variant:ident, $req:ident . $field:ident, $allowed:expr, $name:expr, $out:ident, $make:expr) => {{
        let mut req = $req;
        let denied = take_denied(&mut req.$field, $allowed);
        if denied.is_empty() {
            return Screened::Pass(RequestKind::$variant(req), None);
        }
        $a.log_denied($api, &$name(&denied[0]));
        let patch = move |resp: &mut ResponseKind| {
            if let ResponseKind::$variant(resp) = resp {
                resp.$out.extend(denied.into_iter().map($make));
            }
        };
        Screened::Pass(RequestKind::$variant(req), Some(Box::new(patch)))
    }};
}

pub fn screen(a: &Access, body: RequestKind, version: i16) -> Screened {
    use RequestKind as In;
    match body {
        In::DescribeGroups(r) => describe_groups(a, r),
        In::ConsumerGroupDescribe(r) => consumer_group_describe(a, r),
        In::DeleteGroups(r) => per_item!(
            a,
            "DeleteGroups",
            DeleteGroups,
            r.groups_names,
            |g| a.allows_group(op::DELETE, g),
            |g: &GroupId| format!("DELETE on group {}", g.0),
            results,
            |g| delete_groups_response::DeletableGroupResult::default()
                .with_group_id(g)
                .with_error_code(GROUP_DENIED)
        ),
        In::DescribeTransactions(r) => per_item!(
            a,
            "DescribeTransactions",
            DescribeTransactions,
            r.transactional_ids,
            |t| a.allows_txn(op::DESCRIBE, t),
            |t: &TransactionalId| format!("DESCRIBE on transactional id {}", t.0),
            transaction_states,
            |t| describe_transactions_response::TransactionState::default()
                .with_transactional_id(t)
                .with_error_code(TXN_DENIED)
        ),
        In::OffsetDelete(r) => offset_delete(a, r),
        other => listings(a, other, version),
    }
}

/// The listings: left to the handler, then filtered to what the principal may describe.
fn listings(a: &Access, body: RequestKind, version: i16) -> Screened {
    use RequestKind as In;
    match body {
        In::ListGroups(r) => {
            let a = a.clone();
            let patch = move |resp: &mut ResponseKind| {
                if let ResponseKind::ListGroups(resp) = resp {
                    if !a.allows_cluster(op::DESCRIBE) {
                        resp.groups.retain(|g| a.allows_group(op::DESCRIBE, &g.group_id));
                    }
                }
            };
            Screened::Pass(In::ListGroups(r), Some(Box::new(patch)))
        }
        In::ListTransactions(r) => {
            let a = a.clone();
            let patch = move |resp: &mut ResponseKind| {
                if let ResponseKind::ListTransactions(resp) = resp {
                    resp.transaction_states
                        .retain(|t| a.allows_txn(op::DESCRIBE, &t.transactional_id));
                }
            };
            Screened::Pass(In::ListTransactions(r), Some(Box::new(patch)))
        }
        other => topics(a, other, version),
    }
}

/// DescribeGroups: DESCRIBE on each group (else 30 for it); the described
/// groups' authorized operations are the principal's when asked for (v3+).
fn describe_groups(a: &Access, r: DescribeGroupsRequest) -> Screened {
    super::screen::describe_groups_screen!(a, r, DescribeGroups, groups, describe_groups_response)
}

/// ConsumerGroupDescribe: as DescribeGroups, for KIP-848 groups.
fn consumer_group_describe(a: &Access, r: ConsumerGroupDescribeRequest) -> Screened {
    super::screen::describe_groups_screen!(
        a,
        r,
        ConsumerGroupDescribe,
        group_ids,
        consumer_group_describe_response
    )
}

/// DescribeTopicPartitions: DESCRIBE on each named topic (else 29 for it); an
/// all-topics answer leaves out what the principal may not describe. Each
/// topic's authorized operations are the principal's.
fn describe_topic_partitions(a: &Access, mut r: DescribeTopicPartitionsRequest) -> Screened {
    use describe_topic_partitions_response::DescribeTopicPartitionsResponseTopic as T;
    let denied = take_denied(&mut r.topics, |t| a.allows_topic(op::DESCRIBE, &t.name));
    if let Some(first) = denied.first() {
        a.log_denied(
            "DescribeTopicPartitions",
            &format!("DESCRIBE on topic {}", first.name.0),
        );
    }
    let all_topics = r.topics.is_empty() && denied.is_empty();
    let a = a.clone();
    let patch = move |resp: &mut ResponseKind| {
        let ResponseKind::DescribeTopicPartitions(resp) = resp else {
            return;
        };
        let describable = |t: &T| t.name.as_ref().is_none_or(|n| a.allows_topic(op::DESCRIBE, n));
        if all_topics {
            resp.topics.retain(describable);
        }
        for t in resp.topics.iter_mut().filter(|t| t.error_code == 0) {
            if let Some(name) = t.name.as_ref() {
                t.topic_authorized_operations = authorized_operations(&a, resource::TOPIC, name);
            }
        }
        let refused = |t: describe_topic_partitions_request::TopicRequest| {
            T::default().with_name(Some(t.name)).with_error_code(TOPIC_DENIED)
        };
        resp.topics.extend(denied.into_iter().map(refused));
    };
    Screened::Pass(RequestKind::DescribeTopicPartitions(r), Some(Box::new(patch)))
}

fn offset_delete(a: &Access, r: OffsetDeleteRequest) -> Screened {
    use offset_delete_response::{OffsetDeleteResponsePartition as P, OffsetDeleteResponseTopic as T};
    if !a.allows_group(op::DELETE, &r.group_id) {
        a.log_denied("OffsetDelete", &format!("DELETE on group {}", r.group_id.0));
        let resp = OffsetDeleteResponse::default().with_error_code(GROUP_DENIED);
        return Screened::Deny(ResponseKind::OffsetDelete(resp));
    }
    per_item!(
        a,
        "OffsetDelete",
        OffsetDelete,
        r.topics,
        |t| a.allows_topic(op::READ, &t.name),
        |t: &offset_delete_request::OffsetDeleteRequestTopic| format!("READ on topic {}", t.name.0),
        topics,
        |t: offset_delete_request::OffsetDeleteRequestTopic| {
            let parts = t
                .partitions
                .iter()
                .map(|p| {
                    P::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(TOPIC_DENIED)
                })
                .collect();
            T::default().with_name(t.name).with_partitions(parts)
        }
    )
}

/// Topic administration.
fn topics(a: &Access, body: RequestKind, version: i16) -> Screened {
    use RequestKind as In;
    let named = |what: &'static str| move |n: &str| format!("{what} on topic {n}");
    match body {
        In::CreateTopics(r) => {
            let cluster = a.allows_cluster(op::CREATE);
            per_item!(
                a,
                "CreateTopics",
                CreateTopics,
                r.topics,
                |t| cluster || a.allows_topic(op::CREATE, &t.name),
                |t: &create_topics_request::CreatableTopic| named("CREATE")(&t.name),
                topics,
                |t: create_topics_request::CreatableTopic| {
                    create_topics_response::CreatableTopicResult::default()
                        .with_name(t.name)
                        .with_error_code(TOPIC_DENIED)
                        .with_num_partitions(-1)
                        .with_replication_factor(-1)
                }
            )
        }
        In::DeleteTopics(r) if version < 6 => per_item!(
            a,
            "DeleteTopics",
            DeleteTopics,
            r.topic_names,
            |t| a.allows_topic(op::DELETE, t),
            |t: &TopicName| named("DELETE")(t),
            responses,
            |t| delete_topics_response::DeletableTopicResult::default()
                .with_name(Some(t))
                .with_error_code(TOPIC_DENIED)
        ),
        In::DeleteTopics(r) => per_item!(
            a,
            "DeleteTopics",
            DeleteTopics,
            r.topics,
            |t| t.name.as_ref().is_none_or(|n| a.allows_topic(op::DELETE, n)),
            |t: &delete_topics_request::DeleteTopicState| named("DELETE")(
                t.name.as_ref().map_or("?", |n| n.as_str())
            ),
            responses,
            |t: delete_topics_request::DeleteTopicState| {
                delete_topics_response::DeletableTopicResult::default()
                    .with_name(t.name)
                    .with_topic_id(t.topic_id)
                    .with_error_code(TOPIC_DENIED)
            }
        ),
        other => more_topics(a, other, version),
    }
}

/// Topic administration beyond create and delete.
fn more_topics(a: &Access, body: RequestKind, version: i16) -> Screened {
    use RequestKind as In;
    let named = |what: &'static str| move |n: &str| format!("{what} on topic {n}");
    match body {
        In::CreatePartitions(r) => per_item!(
            a,
            "CreatePartitions",
            CreatePartitions,
            r.topics,
            |t| a.allows_topic(op::ALTER, &t.name),
            |t: &create_partitions_request::CreatePartitionsTopic| named("ALTER")(&t.name),
            results,
            |t: create_partitions_request::CreatePartitionsTopic| {
                create_partitions_response::CreatePartitionsTopicResult::default()
                    .with_name(t.name)
                    .with_error_code(TOPIC_DENIED)
            }
        ),
        In::DeleteRecords(r) => per_item!(
            a,
            "DeleteRecords",
            DeleteRecords,
            r.topics,
            |t| a.allows_topic(op::DELETE, &t.name),
            |t: &delete_records_request::DeleteRecordsTopic| named("DELETE")(&t.name),
            topics,
            |t: delete_records_request::DeleteRecordsTopic| {
                use delete_records_response::{
                    DeleteRecordsPartitionResult as P, DeleteRecordsTopicResult as T,
                };
                let parts = t
                    .partitions
                    .iter()
                    .map(|p| {
                        P::default()
                            .with_partition_index(p.partition_index)
                            .with_low_watermark(-1)
                            .with_error_code(TOPIC_DENIED)
                    })
                    .collect();
                T::default().with_name(t.name).with_partitions(parts)
            }
        ),
        other => topic_reads(a, other, version),
    }
}

/// Reading a topic's producers and partitions.
fn topic_reads(a: &Access, body: RequestKind, version: i16) -> Screened {
    use RequestKind as In;
    let named = |what: &'static str| move |n: &str| format!("{what} on topic {n}");
    match body {
        In::DescribeProducers(r) => per_item!(
            a,
            "DescribeProducers",
            DescribeProducers,
            r.topics,
            |t| a.allows_topic(op::READ, &t.name),
            |t: &describe_producers_request::TopicRequest| named("READ")(&t.name),
            topics,
            |t: describe_producers_request::TopicRequest| {
                use describe_producers_response::{PartitionResponse as P, TopicResponse as T};
                let parts = t
                    .partition_indexes
                    .iter()
                    .map(|p| {
                        P::default()
                            .with_partition_index(*p)
                            .with_error_code(TOPIC_DENIED)
                    })
                    .collect();
                T::default().with_name(t.name).with_partitions(parts)
            }
        ),
        In::DescribeTopicPartitions(r) => describe_topic_partitions(a, r),
        other => configs(a, other, version),
    }
}

/// Whether a config resource may be touched: topics (2) by name, brokers (4)
/// and broker loggers (8) through the cluster; and the error when not.
fn config_access(a: &Access, operation: i8, rtype: i8, name: &str) -> Result<(), i16> {
    let (ok, code) = match rtype {
        2 => (a.allows_topic(operation, name), TOPIC_DENIED),
        16 => (a.allows_group(operation, name), GROUP_DENIED),
        _ => (a.allows_cluster(operation), CLUSTER_DENIED),
    };
    if ok {
        Ok(())
    } else {
        Err(code)
    }
}

fn configs(a: &Access, body: RequestKind, version: i16) -> Screened {
    use RequestKind as In;
    let code = |operation, rtype, name: &str| config_access(a, operation, rtype, name).err().unwrap_or(0);
    let what = |rtype: i8, name: &str| format!("configs of resource type {rtype} {name}");
    // The patches outlive this call: they check again with their own handle.
    let owned = a.clone();
    let denied =
        move |operation, rtype, name: &str| config_access(&owned, operation, rtype, name).err().unwrap_or(0);
    match body {
        In::DescribeConfigs(r) => per_item!(
            a,
            "DescribeConfigs",
            DescribeConfigs,
            r.resources,
            |c| code(op::DESCRIBE_CONFIGS, c.resource_type, &c.resource_name) == 0,
            |c: &describe_configs_request::DescribeConfigsResource| what(c.resource_type, &c.resource_name),
            results,
            |c: describe_configs_request::DescribeConfigsResource| {
                describe_configs_response::DescribeConfigsResult::default()
                    .with_error_code(denied(op::DESCRIBE_CONFIGS, c.resource_type, &c.resource_name))
                    .with_resource_type(c.resource_type)
                    .with_resource_name(c.resource_name)
            }
        ),
        In::AlterConfigs(r) => per_item!(
            a,
            "AlterConfigs",
            AlterConfigs,
            r.resources,
            |c| code(op::ALTER_CONFIGS, c.resource_type, &c.resource_name) == 0,
            |c: &alter_configs_request::AlterConfigsResource| what(c.resource_type, &c.resource_name),
            responses,
            |c: alter_configs_request::AlterConfigsResource| {
                alter_configs_response::AlterConfigsResourceResponse::default()
                    .with_error_code(denied(op::ALTER_CONFIGS, c.resource_type, &c.resource_name))
                    .with_resource_type(c.resource_type)
                    .with_resource_name(c.resource_name)
            }
        ),
        In::IncrementalAlterConfigs(r) => per_item!(
            a,
            "IncrementalAlterConfigs",
            IncrementalAlterConfigs,
            r.resources,
            |c| code(op::ALTER_CONFIGS, c.resource_type, &c.resource_name) == 0,
            |c: &incremental_alter_configs_request::AlterConfigsResource| what(
                c.resource_type,
                &c.resource_name
            ),
            responses,
            |c: incremental_alter_configs_request::AlterConfigsResource| {
                incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                    .with_error_code(denied(op::ALTER_CONFIGS, c.resource_type, &c.resource_name))
                    .with_resource_type(c.resource_type)
                    .with_resource_name(c.resource_name)
            }
        ),
        other => cluster(a, other, version),
    }
}

/// The APIs checked against the cluster resource: refused as a whole.
fn cluster(a: &Access, body: RequestKind, version: i16) -> Screened {
    use RequestKind as In;
    use ResponseKind as Out;
    let (operation, api) = match &body {
        In::CreateAcls(_) => (op::ALTER, "CreateAcls"),
        In::DeleteAcls(_) => (op::ALTER, "DeleteAcls"),
        In::DescribeAcls(_) => (op::DESCRIBE, "DescribeAcls"),
        In::AlterUserScramCredentials(_) => (op::ALTER, "AlterUserScramCredentials"),
        In::DescribeUserScramCredentials(_) => (op::DESCRIBE, "DescribeUserScramCredentials"),
        In::ElectLeaders(_) => (op::ALTER, "ElectLeaders"),
        In::DescribeLogDirs(_) => (op::DESCRIBE, "DescribeLogDirs"),
        In::DescribeClientQuotas(_) => (op::DESCRIBE_CONFIGS, "DescribeClientQuotas"),
        In::AlterClientQuotas(_) => (op::ALTER_CONFIGS, "AlterClientQuotas"),
        In::DescribeCluster(_) => return describe_cluster(a, body),
        _ => return Screened::Pass(body, None),
    };
    if a.allows_cluster(operation) {
        return Screened::Pass(body, None);
    }
    a.log_denied(api, "the cluster");
    let e = CLUSTER_DENIED;
    Screened::Deny(match body {
        In::CreateAcls(r) => Out::CreateAcls(
            CreateAclsResponse::default().with_results(
                r.creations
                    .iter()
                    .map(|_| create_acls_response::AclCreationResult::default().with_error_code(e))
                    .collect(),
            ),
        ),
        In::DeleteAcls(r) => Out::DeleteAcls(
            DeleteAclsResponse::default().with_filter_results(
                r.filters
                    .iter()
                    .map(|_| delete_acls_response::DeleteAclsFilterResult::default().with_error_code(e))
                    .collect(),
            ),
        ),
        In::DescribeAcls(_) => Out::DescribeAcls(DescribeAclsResponse::default().with_error_code(e)),
        In::AlterUserScramCredentials(r) => Out::AlterUserScramCredentials(
            AlterUserScramCredentialsResponse::default().with_results(
                r.upsertions
                    .iter()
                    .map(|u| u.name.clone())
                    .chain(r.deletions.iter().map(|d| d.name.clone()))
                    .map(|user| {
                        alter_user_scram_credentials_response::AlterUserScramCredentialsResult::default()
                            .with_user(user)
                            .with_error_code(e)
                    })
                    .collect(),
            ),
        ),
        In::DescribeUserScramCredentials(_) => Out::DescribeUserScramCredentials(
            DescribeUserScramCredentialsResponse::default().with_error_code(e),
        ),
        In::ElectLeaders(r) => Out::ElectLeaders(elect_leaders_denied(r, version)),
        body @ (In::DescribeClientQuotas(_) | In::AlterClientQuotas(_)) => quotas_denied(body, e),
        _ => Out::DescribeLogDirs(DescribeLogDirsResponse::default().with_error_code(e)),
    })
}

/// The client quota APIs refused as a whole (every entry of an alteration).
fn quotas_denied(body: RequestKind, e: i16) -> ResponseKind {
    match body {
        RequestKind::AlterClientQuotas(r) => {
            let entries = (r.entries.into_iter())
                .map(|entry| {
                    let entity = (entry.entity.into_iter())
                        .map(|d| {
                            alter_client_quotas_response::EntityData::default()
                                .with_entity_type(d.entity_type)
                                .with_entity_name(d.entity_name)
                        })
                        .collect();
                    alter_client_quotas_response::EntryData::default()
                        .with_error_code(e)
                        .with_entity(entity)
                })
                .collect();
            ResponseKind::AlterClientQuotas(AlterClientQuotasResponse::default().with_entries(entries))
        }
        _ => ResponseKind::DescribeClientQuotas(
            DescribeClientQuotasResponse::default()
                .with_error_code(e)
                .with_error_message(Some(kafka_protocol::protocol::StrBytes::from_static_str(
                    "Cluster authorization failed.",
                ))),
        ),
    }
}

/// DescribeCluster needs no permission; its authorized operations are the
/// principal's, and only for one that may DESCRIBE the cluster (Kafka).
fn describe_cluster(a: &Access, body: RequestKind) -> Screened {
    use crate::metadata::acl::{resource, CLUSTER_NAME};
    let a = a.clone();
    let patch = move |resp: &mut ResponseKind| {
        let ResponseKind::DescribeCluster(resp) = resp else {
            return;
        };
        if resp.cluster_authorized_operations == i32::MIN {
            return;
        }
        resp.cluster_authorized_operations = if a.allows_cluster(op::DESCRIBE) {
            super::screen::authorized_operations(&a, resource::CLUSTER, CLUSTER_NAME)
        } else {
            i32::MIN
        };
    };
    Screened::Pass(body, Some(Box::new(patch)))
}

/// ElectLeaders refused: v1+ says so at the top, v0 only per partition (Kafka).
fn elect_leaders_denied(r: ElectLeadersRequest, version: i16) -> ElectLeadersResponse {
    use elect_leaders_response::{PartitionResult, ReplicaElectionResult};
    let results = r
        .topic_partitions
        .unwrap_or_default()
        .into_iter()
        .map(|t| {
            let parts = t
                .partitions
                .iter()
                .map(|p| {
                    PartitionResult::default()
                        .with_partition_id(*p)
                        .with_error_code(CLUSTER_DENIED)
                })
                .collect();
            ReplicaElectionResult::default()
                .with_topic(t.topic)
                .with_partition_result(parts)
        })
        .collect();
    let resp = ElectLeadersResponse::default().with_replica_election_results(results);
    if version >= 1 {
        resp.with_error_code(CLUSTER_DENIED)
    } else {
        resp
    }
}
