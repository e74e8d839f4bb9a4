//! AlterConfigs and IncrementalAlterConfigs for topic resources. The change is a
//! catalog change on shard 0 under `admin_lock` (`admin.rs`): saved durably, then
//! applied on every shard, where open logs adopt the new config live
//! (`Partitions::apply` -> `PartitionLog::set_config`). AlterConfigs replaces a
//! topic's whole config (names not given return to the broker default, as in
//! Kafka); IncrementalAlterConfigs applies SET and DELETE (back to the default)
//! operations to the current one. Broker resources are refused: Weir's broker
//! config is the static `weir serve` command line.

use std::collections::HashSet;
use std::rc::Rc;

use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest, AlterConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::ResponseError;

use super::admin::{admin, outcome, AdminRequest, Refusal, TopicOutcome};
use super::ShardContext;
use crate::metadata::{Catalog, TopicConfig};

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// One operation on one config name.
#[derive(Debug, Clone)]
pub enum Op {
    Set(String),
    /// Back to the broker default.
    Delete,
}

/// A topic's config change, for shard 0.
#[derive(Debug, Clone)]
pub struct TopicChange {
    pub name: String,
    pub ops: Vec<(String, Op)>,
    /// AlterConfigs: start from the defaults, not the current config.
    pub replace_all: bool,
}

/// One resource's answer: (error code, message).
type Answer = (i16, Option<String>);

/// Checks that need no catalog: the resource type, duplicate names, op codes.
fn precheck(resource_type: i8, names: &[&str], ops: &[i8]) -> Result<(), Refusal> {
    match resource_type {
        RESOURCE_TOPIC => {}
        RESOURCE_BROKER => {
            let m = "broker configs are the static `weir serve` flags and cannot be altered at runtime";
            return Err((ResponseError::InvalidRequest, m.into()));
        }
        other => {
            let m = format!("unsupported resource type {other}");
            return Err((ResponseError::InvalidRequest, m));
        }
    }
    let mut seen = HashSet::new();
    if !names.iter().all(|n| seen.insert(*n)) {
        let m = "Error due to duplicate config keys";
        return Err((ResponseError::InvalidRequest, m.into()));
    }
    for (name, op) in names.iter().zip(ops) {
        match *op {
            OP_SET | OP_DELETE => {}
            OP_APPEND | OP_SUBTRACT => {
                let m = format!("Config value append/subtract is not allowed for config key: {name}");
                return Err((ResponseError::InvalidConfig, m));
            }
            other => {
                return Err((
                    ResponseError::InvalidRequest,
                    format!("unknown config operation {other}"),
                ))
            }
        }
    }
    Ok(())
}

/// Send the changes that passed `precheck` to shard 0; answers in request order.
async fn run(
    shard: &Rc<ShardContext>,
    pre: Vec<Result<TopicChange, Refusal>>,
    validate_only: bool,
) -> Vec<Answer> {
    let changes: Vec<TopicChange> = pre.iter().filter_map(|p| p.as_ref().ok().cloned()).collect();
    let mut outcomes = if changes.is_empty() {
        Vec::new()
    } else {
        admin(
            shard,
            AdminRequest::AlterConfigs {
                changes,
                validate_only,
            },
        )
        .await
    }
    .into_iter();
    pre.into_iter()
        .map(|p| match p {
            Err((e, m)) => (e.code(), Some(m)),
            Ok(_) => match outcomes.next() {
                Some(o) => (o.error_code, o.error_message),
                None => (ResponseError::RequestTimedOut.code(), None),
            },
        })
        .collect()
}

pub async fn incremental(
    shard: &Rc<ShardContext>,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let pre = req
        .resources
        .iter()
        .map(|r| {
            let names: Vec<&str> = r.configs.iter().map(|c| c.name.as_str()).collect();
            let codes: Vec<i8> = r.configs.iter().map(|c| c.config_operation).collect();
            precheck(r.resource_type, &names, &codes)?;
            let ops = r
                .configs
                .iter()
                .map(|c| {
                    let op = match (c.config_operation, &c.value) {
                        (OP_SET, Some(v)) => Op::Set(v.to_string()),
                        (OP_SET, None) => Op::Set(String::new()),
                        _ => Op::Delete,
                    };
                    (c.name.to_string(), op)
                })
                .collect();
            Ok(TopicChange {
                name: r.resource_name.to_string(),
                ops,
                replace_all: false,
            })
        })
        .collect();
    let answers = run(shard, pre, req.validate_only).await;
    let responses = req
        .resources
        .iter()
        .zip(answers)
        .map(|(r, (code, message))| {
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(message.map(Into::into))
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone())
        })
        .collect();
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

pub async fn alter(shard: &Rc<ShardContext>, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let pre = req
        .resources
        .iter()
        .map(|r| {
            let names: Vec<&str> = r.configs.iter().map(|c| c.name.as_str()).collect();
            precheck(r.resource_type, &names, &vec![OP_SET; names.len()])?;
            let ops = r
                .configs
                .iter()
                .map(|c| {
                    let op = c.value.as_ref().map_or(Op::Delete, |v| Op::Set(v.to_string()));
                    (c.name.to_string(), op)
                })
                .collect();
            Ok(TopicChange {
                name: r.resource_name.to_string(),
                ops,
                replace_all: true,
            })
        })
        .collect();
    let answers = run(shard, pre, req.validate_only).await;
    let responses = req
        .resources
        .iter()
        .zip(answers)
        .map(|(r, (code, message))| {
            alter_configs_response::AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(message.map(Into::into))
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone())
        })
        .collect();
    AlterConfigsResponse::default().with_responses(responses)
}

/// Shard 0's part: the next catalog and one outcome per change, in order.
pub fn apply_changes(
    shard: &ShardContext,
    before: &Catalog,
    changes: Vec<TopicChange>,
    validate_only: bool,
) -> (Catalog, Vec<TopicOutcome>) {
    let defaults = TopicConfig::defaults(&shard.args.topic_defaults());
    let mut next = before.clone();
    let mut outcomes = Vec::with_capacity(changes.len());
    for c in changes {
        match changed_config(&next, &defaults, &c) {
            Err(e) => outcomes.push(outcome(&c.name, [0; 16], (-1, 0), Some(e))),
            Ok((id, config)) => {
                if !validate_only {
                    next = next.with_topic_config(&c.name, config);
                }
                outcomes.push(outcome(&c.name, id, (0, 0), None));
            }
        }
    }
    (next, outcomes)
}

fn changed_config(
    catalog: &Catalog,
    defaults: &TopicConfig,
    c: &TopicChange,
) -> Result<([u8; 16], TopicConfig), Refusal> {
    let Some(topic) = catalog.topic(&c.name) else {
        let m = format!("no topic '{}'", c.name);
        return Err((ResponseError::UnknownTopicOrPartition, m));
    };
    let mut config = if c.replace_all {
        defaults.clone()
    } else {
        topic.config.clone()
    };
    for (name, op) in &c.ops {
        let value = match op {
            Op::Set(v) => v.clone(),
            Op::Delete => defaults.get(name).ok_or_else(|| {
                (
                    ResponseError::InvalidConfig,
                    format!("Unknown topic config name: {name}"),
                )
            })?,
        };
        config
            .set(name, &value)
            .map_err(|m| (ResponseError::InvalidConfig, m))?;
    }
    Ok((topic.id, config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::catalog::{random_id, Placement};

    #[test]
    fn given_changes_when_checked_should_answer_with_kafkas_codes_and_keep_other_configs() {
        let placement = Placement::Balanced {
            partitions: 1,
            replication_factor: 1,
        };
        let defaults = crate::metadata::test_topic_config();
        let c = Catalog::new("c".into()).with_topic("t", random_id(), placement, defaults.clone(), 1);
        let change = |ops: Vec<(&str, Op)>, replace_all| TopicChange {
            name: "t".into(),
            ops: ops.into_iter().map(|(n, o)| (n.to_string(), o)).collect(),
            replace_all,
        };
        let set = |v: &str| Op::Set(v.into());
        let (_, cfg) =
            changed_config(&c, &defaults, &change(vec![("retention.ms", set("5000"))], false)).unwrap();
        assert_eq!(cfg.retention_ms, 5000);
        let c = c.with_topic_config("t", cfg);
        let (_, cfg) =
            changed_config(&c, &defaults, &change(vec![("segment.ms", set("9000"))], false)).unwrap();
        assert_eq!(
            (cfg.retention_ms, cfg.segment_ms),
            (5000, 9000),
            "incremental keeps the rest"
        );
        let (_, cfg) =
            changed_config(&c, &defaults, &change(vec![("segment.ms", set("9000"))], true)).unwrap();
        assert_eq!(
            cfg.retention_ms, defaults.retention_ms,
            "AlterConfigs replaces the whole set"
        );
        let (_, cfg) =
            changed_config(&c, &defaults, &change(vec![("retention.ms", Op::Delete)], false)).unwrap();
        assert_eq!(cfg.retention_ms, defaults.retention_ms);
        let code = |ops| changed_config(&c, &defaults, &change(ops, false)).unwrap_err().0;
        assert_eq!(
            code(vec![("retention.ms", set("-7"))]),
            ResponseError::InvalidConfig
        );
        assert_eq!(code(vec![("no.such", set("1"))]), ResponseError::InvalidConfig);
        assert_eq!(code(vec![("no.such", Op::Delete)]), ResponseError::InvalidConfig);
        assert_eq!(
            precheck(RESOURCE_BROKER, &[], &[]).unwrap_err().0,
            ResponseError::InvalidRequest
        );
        assert_eq!(
            precheck(RESOURCE_TOPIC, &["a", "a"], &[0, 0]).unwrap_err().0,
            ResponseError::InvalidRequest
        );
        assert_eq!(
            precheck(RESOURCE_TOPIC, &["a"], &[OP_APPEND]).unwrap_err().0,
            ResponseError::InvalidConfig
        );
        assert_eq!(
            precheck(RESOURCE_TOPIC, &["a"], &[9]).unwrap_err().0,
            ResponseError::InvalidRequest
        );
    }
}
