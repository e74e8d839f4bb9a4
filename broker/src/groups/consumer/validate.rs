//! The checks of a ConsumerGroupHeartbeat that need no group state (Kafka's
//! throwIfConsumerGroupHeartbeatRequestIsInvalid): field sizes, epochs, the subscription, the
//! assignor name and the regex. Pure; used by `heartbeat` on the coordinator's shard.
//! Invariant: a request that passes is within every bound the group state relies on.

use kafka_protocol::messages::ConsumerGroupHeartbeatRequest;
use kafka_protocol::ResponseError;

use super::assignor::ASSIGNORS;
use super::{OWNED_PARTITIONS_MAX, SUBSCRIBED_TOPICS_MAX};
use crate::groups::NAME_BYTES_MAX;

pub(super) const LEAVE_STATIC_EPOCH: i32 = -2;

/// A refused heartbeat: Kafka's code and its message.
pub(super) type Refusal = (ResponseError, String);

pub(super) fn refuse<T>(error: ResponseError, message: impl Into<String>) -> Result<T, Refusal> {
    Err((error, message.into()))
}

/// The request's checks that need no group state.
pub(super) fn validate(
    req: &ConsumerGroupHeartbeatRequest,
    version: i16,
) -> Result<Option<regex::Regex>, Refusal> {
    let too_long = |s: &str| s.len() > NAME_BYTES_MAX;
    if req.group_id.is_empty() || too_long(&req.group_id) {
        return refuse(ResponseError::InvalidRequest, "GroupId can't be empty.");
    }
    if too_long(&req.member_id)
        || req.instance_id.as_deref().is_some_and(too_long)
        || req.rack_id.as_deref().is_some_and(too_long)
    {
        return refuse(
            ResponseError::InvalidRequest,
            "MemberId, InstanceId or RackId too long.",
        );
    }
    if version >= 1 && req.member_id.is_empty() {
        return refuse(ResponseError::InvalidRequest, "MemberId can't be empty.");
    }
    if req.instance_id.as_deref() == Some("") || req.rack_id.as_deref() == Some("") {
        return refuse(
            ResponseError::InvalidRequest,
            "InstanceId and RackId can't be empty.",
        );
    }
    validate_epoch(req)?;
    validate_subscription(req)
}

fn validate_epoch(req: &ConsumerGroupHeartbeatRequest) -> Result<(), Refusal> {
    let epoch = req.member_epoch;
    if epoch < LEAVE_STATIC_EPOCH || (epoch == LEAVE_STATIC_EPOCH && req.instance_id.is_none()) {
        return refuse(
            ResponseError::InvalidRequest,
            format!("Invalid MemberEpoch {epoch}."),
        );
    }
    if (epoch > 0 || epoch == -1) && req.member_id.is_empty() {
        return refuse(ResponseError::InvalidRequest, "MemberId can't be empty.");
    }
    if epoch == 0 {
        if req.rebalance_timeout_ms == -1 {
            return refuse(
                ResponseError::InvalidRequest,
                "RebalanceTimeoutMs must be provided in first request.",
            );
        }
        if req.subscribed_topic_names.is_none() && req.subscribed_topic_regex.is_none() {
            return refuse(
                ResponseError::InvalidRequest,
                "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.",
            );
        }
        if req.topic_partitions.as_ref().is_none_or(|t| !t.is_empty()) {
            return refuse(
                ResponseError::InvalidRequest,
                "TopicPartitions must be empty when (re-)joining.",
            );
        }
    }
    Ok(())
}

fn validate_subscription(req: &ConsumerGroupHeartbeatRequest) -> Result<Option<regex::Regex>, Refusal> {
    let too_long = |s: &str| s.len() > NAME_BYTES_MAX;
    let names = req.subscribed_topic_names.as_deref().unwrap_or_default();
    if names.len() > SUBSCRIBED_TOPICS_MAX || names.iter().any(|n| too_long(n)) {
        return refuse(ResponseError::InvalidRequest, "SubscribedTopicNames too large.");
    }
    let owned: usize = req
        .topic_partitions
        .iter()
        .flatten()
        .map(|t| t.partitions.len())
        .sum();
    if owned > OWNED_PARTITIONS_MAX {
        return refuse(ResponseError::InvalidRequest, "TopicPartitions too large.");
    }
    if let Some(name) = req.server_assignor.as_deref() {
        if !ASSIGNORS.contains(&name) {
            return refuse(
                ResponseError::UnsupportedAssignor,
                format!("ServerAssignor {name} is not supported. Supported assignors: uniform, range."),
            );
        }
    }
    match req.subscribed_topic_regex.as_deref() {
        None => Ok(None),
        Some(re) if too_long(re) => refuse(
            ResponseError::InvalidRegularExpression,
            "SubscribedTopicRegex too long.",
        ),
        Some(re) => regex::Regex::new(&format!("^(?:{re})$")).map(Some).map_err(|e| {
            (
                ResponseError::InvalidRegularExpression,
                format!("SubscribedTopicRegex {re} is invalid: {e}"),
            )
        }),
    }
}
