//! Topic administration: CreateTopics, DeleteTopics (run on shard 0, the only
//! catalog writer, then broadcast) and DescribeConfigs (any shard, read-only).
//! A change is durable (catalog saved) and applied on every shard before the
//! client hears about it, so a Produce right after CreateTopics finds its log.

use std::rc::Rc;
use std::sync::Arc;

use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    DescribeConfigsRequest, DescribeConfigsResponse, TopicName,
};
use kafka_protocol::ResponseError;

use crate::limits;
use crate::metadata::catalog::{random_id, validate_topic_name};
use crate::metadata::{store, Catalog, TopicConfig};
use crate::shard::messages::{
    AdminRequest, AdminResponse, NewTopic, ShardRequest, ShardResponse, TopicOutcome,
};
use crate::shard::Shard;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// DescribeConfigs config_source: 1 = topic config, 5 = default.
const SOURCE_DEFAULT: i8 = 5;

/// Run an admin change on shard 0 and return its outcome.
pub async fn admin(shard: &Rc<Shard>, req: AdminRequest) -> Vec<TopicOutcome> {
    let answer = if shard.id == 0 {
        admin_on_shard0(shard, req).await
    } else {
        match shard.mesh.call(0, ShardRequest::Admin(req)).await {
            Ok(ShardResponse::Admin(a)) => a,
            Ok(_) => unreachable!("admin answers with Admin"),
            Err(e) => {
                tracing::warn!(error = %e, "admin forward failed");
                return Vec::new();
            }
        }
    };
    let AdminResponse::Topics(outcomes) = answer;
    outcomes
}

pub async fn admin_on_shard0(shard: &Rc<Shard>, req: AdminRequest) -> AdminResponse {
    assert_eq!(shard.id, 0, "only shard 0 writes the catalog");
    let _permit = shard
        .admin_lock
        .acquire_permit(1)
        .await
        .expect("admin lock never closes");
    let before = shard.catalog();
    let (next, outcomes) = match req {
        AdminRequest::CreateTopics {
            topics,
            validate_only,
        } => create(shard, &before, topics, validate_only),
        AdminRequest::DeleteTopics { names } => delete(&before, names),
    };
    if next.version != before.version {
        if let Err(e) = publish(shard, next).await {
            tracing::error!(error = %crate::error::chain(&e), "saving the catalog failed");
            let failed = outcomes
                .into_iter()
                .map(|o| TopicOutcome {
                    error_code: ResponseError::KafkaStorageError.code(),
                    error_message: Some(e.to_string()),
                    ..o
                })
                .collect();
            return AdminResponse::Topics(failed);
        }
    }
    AdminResponse::Topics(outcomes)
}

fn outcome(
    name: &str,
    id: [u8; 16],
    partitions: i32,
    error: Option<(ResponseError, String)>,
) -> TopicOutcome {
    TopicOutcome {
        name: name.to_string(),
        id,
        partitions,
        error_code: error.as_ref().map_or(0, |(e, _)| e.code()),
        error_message: error.map(|(_, m)| m),
    }
}

fn create(
    shard: &Shard,
    before: &Catalog,
    topics: Vec<NewTopic>,
    validate_only: bool,
) -> (Catalog, Vec<TopicOutcome>) {
    let mut next = before.clone();
    let mut outcomes = Vec::with_capacity(topics.len());
    for t in topics {
        let partitions = if t.partitions == -1 {
            shard.args.default_partitions
        } else {
            t.partitions
        };
        match check_new_topic(shard, &next, &t, partitions) {
            Err(e) => outcomes.push(outcome(&t.name, [0; 16], partitions, Some(e))),
            Ok(config) => {
                let id = random_id();
                if !validate_only {
                    next = next.with_topic(&t.name, id, partitions, config, shard.count);
                }
                outcomes.push(outcome(&t.name, id, partitions, None));
            }
        }
    }
    (next, outcomes)
}

fn check_new_topic(
    shard: &Shard,
    catalog: &Catalog,
    t: &NewTopic,
    partitions: i32,
) -> Result<TopicConfig, (ResponseError, String)> {
    validate_topic_name(&t.name).map_err(|m| (ResponseError::InvalidTopicException, m))?;
    if catalog.topic(&t.name).is_some() {
        return Err((
            ResponseError::TopicAlreadyExists,
            format!("topic '{}' already exists", t.name),
        ));
    }
    if !(1..=limits::PARTITIONS_PER_TOPIC_MAX).contains(&partitions) {
        let m = format!("partitions must be 1..={}", limits::PARTITIONS_PER_TOPIC_MAX);
        return Err((ResponseError::InvalidPartitions, m));
    }
    if !matches!(t.replication_factor, -1 | 1) {
        let m = "a single-node broker supports replication factor 1".to_string();
        return Err((ResponseError::InvalidReplicationFactor, m));
    }
    let mut config = TopicConfig::defaults(&shard.args);
    for (name, value) in &t.configs {
        if let Some(v) = value {
            config
                .set(name, v)
                .map_err(|m| (ResponseError::InvalidConfig, m))?;
        }
    }
    Ok(config)
}

fn delete(before: &Catalog, names: Vec<String>) -> (Catalog, Vec<TopicOutcome>) {
    let mut next = before.clone();
    let mut outcomes = Vec::with_capacity(names.len());
    for name in names {
        match next.topic(&name).map(|t| (t.id, t.partition_count())) {
            Some((id, partitions)) => {
                next = next.without_topic(&name);
                outcomes.push(outcome(&name, id, partitions, None));
            }
            None => {
                let e = (
                    ResponseError::UnknownTopicOrPartition,
                    format!("no topic '{name}'"),
                );
                outcomes.push(outcome(&name, [0; 16], 0, Some(e)));
            }
        }
    }
    (next, outcomes)
}

/// Make `next` durable, then have every shard apply it (shard 0 last sees no
/// difference: it applies first, then the others in turn).
async fn publish(shard: &Rc<Shard>, next: Catalog) -> Result<(), store::StoreError> {
    store::save(&shard.args.data_dir, &next).await?;
    let next = Arc::new(next);
    if let Err(e) = shard.apply_catalog(next.clone()).await {
        tracing::error!(error = %e, "shard 0 could not apply the catalog");
    }
    for peer in 1..shard.count {
        if let Err(e) = shard
            .mesh
            .call(peer, ShardRequest::ApplyCatalog(next.clone()))
            .await
        {
            tracing::error!(peer, error = %e, "a shard could not apply the catalog");
        }
    }
    Ok(())
}

pub async fn create_topics(shard: &Rc<Shard>, req: CreateTopicsRequest) -> CreateTopicsResponse {
    let topics = req
        .topics
        .iter()
        .map(|t| NewTopic {
            name: t.name.0.to_string(),
            partitions: t.num_partitions,
            replication_factor: t.replication_factor,
            configs: t
                .configs
                .iter()
                .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
                .collect(),
        })
        .collect();
    let outcomes = admin(
        shard,
        AdminRequest::CreateTopics {
            topics,
            validate_only: req.validate_only,
        },
    )
    .await;
    let catalog = shard.catalog();
    let results = outcomes
        .into_iter()
        .map(|o| {
            let configs = catalog.topic(&o.name).map(|t| {
                crate::metadata::topic_config::CONFIG_NAMES
                    .iter()
                    .filter_map(|n| {
                        t.config.get(n).map(|v| {
                            CreatableTopicConfigs::default()
                                .with_name((*n).to_string().into())
                                .with_value(Some(v.into()))
                                .with_config_source(SOURCE_DEFAULT)
                        })
                    })
                    .collect()
            });
            CreatableTopicResult::default()
                .with_name(TopicName(o.name.into()))
                .with_topic_id(uuid::Uuid::from_bytes(o.id))
                .with_error_code(o.error_code)
                .with_error_message(o.error_message.map(Into::into))
                .with_num_partitions(if o.error_code == 0 { o.partitions } else { -1 })
                .with_replication_factor(if o.error_code == 0 { 1 } else { -1 })
                .with_configs(configs)
        })
        .collect();
    CreateTopicsResponse::default().with_topics(results)
}

pub async fn delete_topics(
    shard: &Rc<Shard>,
    req: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let catalog = shard.catalog();
    let mut unknown_ids = Vec::new();
    let names: Vec<String> = if version >= 6 {
        req.topics
            .iter()
            .filter_map(|t| match (&t.name, catalog.topic_by_id(t.topic_id)) {
                (Some(n), _) => Some(n.0.to_string()),
                (None, Some(m)) => Some(m.name.clone()),
                (None, None) => {
                    unknown_ids.push(t.topic_id);
                    None
                }
            })
            .collect()
    } else {
        req.topic_names.iter().map(|n| n.0.to_string()).collect()
    };
    let outcomes = admin(shard, AdminRequest::DeleteTopics { names }).await;
    let mut responses: Vec<DeletableTopicResult> = outcomes
        .into_iter()
        .map(|o| {
            DeletableTopicResult::default()
                .with_name(Some(TopicName(o.name.into())))
                .with_topic_id(uuid::Uuid::from_bytes(o.id))
                .with_error_code(o.error_code)
                .with_error_message(o.error_message.map(Into::into))
        })
        .collect();
    responses.extend(unknown_ids.into_iter().map(|id| {
        DeletableTopicResult::default()
            .with_topic_id(id)
            .with_error_code(ResponseError::UnknownTopicId.code())
    }));
    DeleteTopicsResponse::default().with_responses(responses)
}

pub fn describe_configs(shard: &Shard, req: &DescribeConfigsRequest) -> DescribeConfigsResponse {
    let catalog = shard.catalog();
    let results = req
        .resources
        .iter()
        .map(|r| {
            let base = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            match r.resource_type {
                RESOURCE_TOPIC => match catalog.topic(&r.resource_name) {
                    Some(t) => {
                        let wanted = |n: &str| {
                            r.configuration_keys
                                .as_ref()
                                .is_none_or(|keys| keys.iter().any(|k| k.as_str() == n))
                        };
                        let configs = crate::metadata::topic_config::CONFIG_NAMES
                            .iter()
                            .filter(|n| wanted(n))
                            .filter_map(|n| {
                                t.config.get(n).map(|v| {
                                    DescribeConfigsResourceResult::default()
                                        .with_name((*n).to_string().into())
                                        .with_value(Some(v.into()))
                                        .with_config_source(SOURCE_DEFAULT)
                                })
                            })
                            .collect();
                        base.with_configs(configs)
                    }
                    None => base
                        .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                        .with_error_message(Some("unknown topic".to_string().into())),
                },
                RESOURCE_BROKER => base,
                _ => base
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some("unsupported resource type".to_string().into())),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}
