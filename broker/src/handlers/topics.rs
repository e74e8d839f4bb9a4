//! Topic APIs: CreateTopics and DeleteTopics (their catalog change runs on
//! shard 0, see `admin.rs`) and DescribeConfigs (any shard, read-only).

use std::rc::Rc;

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

use super::admin::{admin, AdminRequest, NewTopic};
use super::ShardContext;
use crate::metadata::TopicConfig;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// DescribeConfigs config_source: 1 = topic config, 4 = static broker config, 5 = default.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

/// What a topic created now gets (from the running broker's flags) and what it would get
/// from the flags' declared defaults.
struct Defaults {
    broker: TopicConfig,
    flags: TopicConfig,
}

impl Defaults {
    fn of(shard: &ShardContext) -> Self {
        Self {
            broker: TopicConfig::defaults(&shard.args.topic_defaults()),
            flags: TopicConfig::defaults(&super::broker_configs::flag_topic_defaults()),
        }
    }
}

/// A topic config's source as DescribeConfigs reports it, as Kafka: a value other than what
/// a topic created now would get is the topic's own; one inherited from a `weir serve` flag
/// set to something other than the flag's default is STATIC_BROKER_CONFIG; else the default.
/// (A value set equal to the inherited one cannot be told apart: the catalog keeps values,
/// not requests.)
fn config_source(config: &TopicConfig, defaults: &Defaults, name: &str) -> i8 {
    let value = config.get(name);
    if value != defaults.broker.get(name) {
        SOURCE_TOPIC
    } else if value != defaults.flags.get(name) {
        SOURCE_STATIC_BROKER
    } else {
        SOURCE_DEFAULT
    }
}

pub async fn create_topics(shard: &Rc<ShardContext>, req: CreateTopicsRequest) -> CreateTopicsResponse {
    let topics = req
        .topics
        .iter()
        .map(|t| NewTopic {
            name: t.name.0.to_string(),
            partitions: t.num_partitions,
            replication_factor: t.replication_factor,
            assignments: t
                .assignments
                .iter()
                .map(|a| (a.partition_index, a.broker_ids.iter().map(|b| b.0).collect()))
                .collect(),
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
    let defaults = Defaults::of(shard);
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
                                .with_config_source(config_source(&t.config, &defaults, n))
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
                .with_replication_factor(if o.error_code == 0 {
                    o.replication_factor
                } else {
                    -1
                })
                .with_configs(configs)
        })
        .collect();
    CreateTopicsResponse::default().with_topics(results)
}

pub async fn delete_topics(
    shard: &Rc<ShardContext>,
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

/// A broker resource name Kafka accepts: empty (the broker's defaults) or an
/// advertised broker id (a name Kafka's broker answers INVALID_REQUEST for otherwise).
fn is_advertised_broker(shard: &ShardContext, name: &str) -> bool {
    let count = super::metadata::advertised_broker_count(shard);
    name.is_empty() || name.parse::<usize>().is_ok_and(|id| id < count)
}

pub fn describe_configs(shard: &ShardContext, req: &DescribeConfigsRequest) -> DescribeConfigsResponse {
    let catalog = shard.catalog();
    let defaults = Defaults::of(shard);
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
                                        .with_config_source(config_source(&t.config, &defaults, n))
                                })
                            })
                            .collect();
                        base.with_configs(configs)
                    }
                    None => base
                        .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                        .with_error_message(Some("unknown topic".to_string().into())),
                },
                RESOURCE_BROKER if !is_advertised_broker(shard, &r.resource_name) => base
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(
                        format!("unexpected broker id {:?}", r.resource_name.as_str()).into(),
                    )),
                RESOURCE_BROKER => {
                    let keys: Option<Vec<String>> = r
                        .configuration_keys
                        .as_ref()
                        .map(|k| k.iter().map(ToString::to_string).collect());
                    base.with_configs(super::broker_configs::describe(&shard.args, keys.as_deref()))
                }
                _ => base
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some("unsupported resource type".to_string().into())),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}
