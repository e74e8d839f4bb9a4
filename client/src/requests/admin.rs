//! Administrative requests of the `weir` CLI: ListGroups, DescribeGroups,
//! DeleteGroups, DeleteTopics, DescribeConfigs, CreatePartitions, DeleteRecords,
//! IncrementalAlterConfigs.
//!
//! Pure; any thread. DeleteTopics's shape changes inside our version range
//! and takes the negotiated version.

use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteTopicsRequest, DescribeConfigsRequest, DescribeGroupsRequest, GroupId,
    ListGroupsRequest,
};

use super::{sb, topic_name};

/// The first DeleteTopics version that lists topics as structs (with ids).
const DELETE_TOPICS_STATES_MIN: i16 = 6;
/// DescribeConfigs resource type of a topic.
const RESOURCE_TYPE_TOPIC: i8 = 2;

pub fn list_groups() -> ListGroupsRequest {
    ListGroupsRequest::default()
}

pub fn describe_group(group_id: &str) -> DescribeGroupsRequest {
    DescribeGroupsRequest::default().with_groups(vec![GroupId(sb(group_id))])
}

pub fn delete_group(group_id: &str) -> DeleteGroupsRequest {
    DeleteGroupsRequest::default().with_groups_names(vec![GroupId(sb(group_id))])
}

/// DeleteTopics for one topic by name at the negotiated `version`.
pub fn delete_topic(name: &str, version: i16, timeout_ms: i32) -> DeleteTopicsRequest {
    let req = DeleteTopicsRequest::default().with_timeout_ms(timeout_ms);
    if version >= DELETE_TOPICS_STATES_MIN {
        req.with_topics(vec![DeleteTopicState::default().with_name(Some(topic_name(name)))])
    } else {
        req.with_topic_names(vec![topic_name(name)])
    }
}

/// DescribeConfigs for every config of one topic.
pub fn topic_configs(name: &str) -> DescribeConfigsRequest {
    DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
        .with_resource_type(RESOURCE_TYPE_TOPIC)
        .with_resource_name(sb(name))
        // None asks for every config; the default (an empty list) asks for none.
        .with_configuration_keys(None)])
}

/// CreatePartitions: grow `name` to `count` partitions, placed by the broker.
pub fn create_partitions(
    name: &str,
    count: i32,
    timeout_ms: i32,
) -> kafka_protocol::messages::CreatePartitionsRequest {
    use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
    kafka_protocol::messages::CreatePartitionsRequest::default()
        .with_timeout_ms(timeout_ms)
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(topic_name(name))
            .with_count(count)
            .with_assignments(None)])
}

/// DeleteRecords: delete `partition`'s records before `offset` (-1: the high watermark).
pub fn delete_records(
    name: &str,
    partition: i32,
    offset: i64,
    timeout_ms: i32,
) -> kafka_protocol::messages::DeleteRecordsRequest {
    use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
    kafka_protocol::messages::DeleteRecordsRequest::default()
        .with_timeout_ms(timeout_ms)
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(topic_name(name))
            .with_partitions(vec![DeleteRecordsPartition::default()
                .with_partition_index(partition)
                .with_offset(offset)])])
}

/// IncrementalAlterConfigs for one topic: SET each `(key, value)`, DELETE (back to
/// the default) each key of `delete`.
pub fn alter_topic_configs(
    name: &str,
    set: &[(&str, &str)],
    delete: &[&str],
) -> kafka_protocol::messages::IncrementalAlterConfigsRequest {
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    const SET: i8 = 0;
    const DELETE: i8 = 1;
    let configs = set
        .iter()
        .map(|(k, v)| {
            AlterableConfig::default()
                .with_name(sb(k))
                .with_config_operation(SET)
                .with_value(Some(sb(v)))
        })
        .chain(delete.iter().map(|k| {
            AlterableConfig::default()
                .with_name(sb(k))
                .with_config_operation(DELETE)
                .with_value(None)
        }))
        .collect();
    kafka_protocol::messages::IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(RESOURCE_TYPE_TOPIC)
            .with_resource_name(sb(name))
            .with_configs(configs),
    ])
}
