//! CreatePartitions: grow a topic's partition count. The catalog change runs
//! on shard 0 under `admin_lock` like CreateTopics (`admin.rs`): new
//! partitions are appended after the existing ones, which keep their owners
//! (so a key keeps its partition while the count is unchanged for it), are
//! placed on shards as at creation, and are opened by their owners when the
//! saved catalog is applied. Checks and messages follow Kafka's (KRaft)
//! `ReplicationControlManager.createPartitions`.

use std::collections::HashSet;
use std::rc::Rc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse, TopicName};
use kafka_protocol::ResponseError;

use super::admin::{admin, check_partition_count, outcome, AdminRequest, Refusal, TopicOutcome};
use super::metadata::advertised_broker_count;
use super::ShardContext;
use crate::metadata::Catalog;

/// One topic of a CreatePartitions request, for shard 0.
#[derive(Debug, Clone)]
pub struct Growth {
    pub name: String,
    /// The total partition count wanted.
    pub count: i32,
    /// Broker ids per new partition, as the client sent them (`None`: none).
    pub assignments: Option<Vec<Vec<i32>>>,
}

pub async fn handle(shard: &Rc<ShardContext>, req: CreatePartitionsRequest) -> CreatePartitionsResponse {
    // Kafka answers every copy of a repeated topic with INVALID_REQUEST and
    // changes none of them.
    let mut seen = HashSet::new();
    let repeated: HashSet<String> = req
        .topics
        .iter()
        .filter(|t| !seen.insert(t.name.0.to_string()))
        .map(|t| t.name.0.to_string())
        .collect();
    let topics: Vec<Growth> = req
        .topics
        .iter()
        .filter(|t| !repeated.contains(t.name.0.as_str()))
        .map(|t| Growth {
            name: t.name.0.to_string(),
            count: t.count,
            assignments: t.assignments.as_ref().map(|a| {
                a.iter()
                    .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                    .collect()
            }),
        })
        .collect();
    let outcomes = if topics.is_empty() {
        Vec::new()
    } else {
        let validate_only = req.validate_only;
        admin(
            shard,
            AdminRequest::CreatePartitions {
                topics,
                validate_only,
            },
        )
        .await
    };
    let mut results: Vec<CreatePartitionsTopicResult> = outcomes
        .into_iter()
        .map(|o| {
            CreatePartitionsTopicResult::default()
                .with_name(TopicName(o.name.into()))
                .with_error_code(o.error_code)
                .with_error_message(o.error_message.map(Into::into))
        })
        .collect();
    let mut answered = HashSet::new();
    for t in &req.topics {
        let name = t.name.0.to_string();
        if repeated.contains(&name) && answered.insert(name.clone()) {
            results.push(
                CreatePartitionsTopicResult::default()
                    .with_name(TopicName(name.into()))
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some("Duplicate topic name.".to_string().into())),
            );
        }
    }
    CreatePartitionsResponse::default().with_results(results)
}

/// Shard 0's part: check each topic against `before` (and the topics grown
/// before it in the same request) and derive the next catalog.
pub fn grow(
    shard: &ShardContext,
    before: &Catalog,
    topics: Vec<Growth>,
    validate_only: bool,
) -> (Catalog, Vec<TopicOutcome>) {
    let mut next = before.clone();
    let mut outcomes = Vec::with_capacity(topics.len());
    let brokers = advertised_broker_count(shard);
    for g in topics {
        match check_growth(&next, &g, brokers) {
            Err(e) => outcomes.push(outcome(&g.name, [0; 16], (-1, 0), Some(e))),
            Ok((id, replicas)) => {
                if !validate_only {
                    let zero_hop = !shard.args.single_address;
                    next = next.with_more_partitions(&g.name, replicas, zero_hop, shard.count);
                }
                outcomes.push(outcome(&g.name, id, (g.count, 0), None));
            }
        }
    }
    (next, outcomes)
}

/// The topic id and, per new partition, its broker ids (empty: placed as at
/// creation), or Kafka's refusal.
fn check_growth(catalog: &Catalog, g: &Growth, brokers: usize) -> Result<([u8; 16], Vec<Vec<u32>>), Refusal> {
    let Some(topic) = catalog.topic(&g.name) else {
        let m = format!(
            "This server does not host this topic-partition: no topic '{}'",
            g.name
        );
        return Err((ResponseError::UnknownTopicOrPartition, m));
    };
    let current = topic.partition_count();
    if g.count < current {
        let m = format!(
            "Topic currently has {current} partitions, which is higher than the requested {}.",
            g.count
        );
        return Err((ResponseError::InvalidPartitions, m));
    }
    if g.count == current {
        let m = format!("Topic already has {current} partition(s).");
        return Err((ResponseError::InvalidPartitions, m));
    }
    check_partition_count(g.count)?;
    let added = (g.count - current) as usize;
    let Some(lists) = &g.assignments else {
        return Ok((topic.id, vec![Vec::new(); added]));
    };
    if lists.len() != added {
        let m = format!(
            "Attempted to add {added} additional partition(s), but only {} assignment(s) were specified.",
            lists.len()
        );
        return Err((ResponseError::InvalidReplicaAssignment, m));
    }
    let factor = topic.replication_factor();
    let replicas = lists
        .iter()
        .map(|ids| check_list(ids, brokers, factor))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((topic.id, replicas))
}

/// One new partition's broker ids, with the rules CreateTopics applies to an
/// explicit assignment (`admin.rs`): advertised ids, no repeats, and as many
/// as the topic's replication factor.
fn check_list(ids: &[i32], brokers: usize, factor: usize) -> Result<Vec<u32>, Refusal> {
    let invalid = |m: String| (ResponseError::InvalidReplicaAssignment, m);
    if ids.is_empty() {
        return Err(invalid(
            "The manual partition assignment includes an empty replica list.".into(),
        ));
    }
    let mut out: Vec<u32> = Vec::with_capacity(ids.len());
    for &id in ids {
        let Some(id) = u32::try_from(id).ok().filter(|id| (*id as usize) < brokers) else {
            return Err(invalid(format!(
                "The manual partition assignment includes broker {id}, but no such broker is registered (broker ids are 0..{brokers})."
            )));
        };
        if out.contains(&id) {
            return Err(invalid(format!(
                "The manual partition assignment includes the broker {id} more than once."
            )));
        }
        out.push(id);
    }
    if out.len() != factor {
        return Err(invalid(format!(
            "The manual partition assignment includes a partition with {} replica(s), but this is not consistent with previous partitions, which have {factor} replica(s).",
            out.len()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::catalog::{random_id, Placement};

    fn catalog() -> Catalog {
        let placement = Placement::Balanced {
            partitions: 2,
            replication_factor: 1,
        };
        Catalog::new("c".into()).with_topic(
            "t",
            random_id(),
            placement,
            crate::metadata::test_topic_config(),
            2,
        )
    }

    fn growth(count: i32, assignments: Option<Vec<Vec<i32>>>) -> Growth {
        Growth {
            name: "t".into(),
            count,
            assignments,
        }
    }

    #[test]
    fn given_counts_and_assignments_when_checked_should_answer_with_kafkas_codes() {
        let c = catalog();
        let code = |g: Growth| check_growth(&c, &g, 2).map(|(_, r)| r).map_err(|e| e.0);
        use ResponseError::*;
        assert_eq!(code(growth(4, None)), Ok(vec![Vec::new(), Vec::new()]));
        assert_eq!(code(growth(2, None)), Err(InvalidPartitions));
        assert_eq!(code(growth(1, None)), Err(InvalidPartitions));
        assert_eq!(code(growth(-1, None)), Err(InvalidPartitions));
        assert_eq!(code(growth(i32::MAX, None)), Err(InvalidPartitions));
        let mut unknown = growth(3, None);
        unknown.name = "nope".into();
        assert_eq!(code(unknown), Err(UnknownTopicOrPartition));
        assert_eq!(code(growth(3, Some(vec![vec![1]]))), Ok(vec![vec![1]]));
        for bad in [
            vec![],
            vec![vec![2]],
            vec![vec![0], vec![1]],
            vec![vec![0, 1]],
            vec![vec![-1]],
        ] {
            assert_eq!(
                code(growth(3, Some(bad.clone()))),
                Err(InvalidReplicaAssignment),
                "{bad:?}"
            );
        }
    }
}
