//! Catalog changes (create and delete topics, add partitions, SASL users, client quotas). They run on shard 0, the only
//! catalog writer, one at a time (`admin_lock`): the new catalog is saved
//! (durable) and then applied on every shard before the client hears about
//! it, so a Produce right after CreateTopics finds its log. Other shards send
//! their change to shard 0 as an `Admin` task; shard 0 sends each peer an
//! `ApplyCatalog` task.

use std::rc::Rc;
use std::sync::Arc;

use kafka_protocol::ResponseError;

use super::metadata::advertised_broker_count;
use super::ShardContext;
use crate::limits;
use crate::metadata::catalog::{random_id, validate_topic_name, Placement};
use crate::metadata::{store, Catalog, TopicConfig};
use crate::shard::{run_on, Task};

pub enum AdminRequest {
    CreateTopics {
        topics: Vec<NewTopic>,
        validate_only: bool,
    },
    DeleteTopics {
        names: Vec<String>,
    },
    /// AlterConfigs and IncrementalAlterConfigs for topics (`alter_configs.rs`).
    AlterConfigs {
        changes: Vec<super::alter_configs::TopicChange>,
        validate_only: bool,
    },
    /// CreatePartitions (`create_partitions.rs`).
    CreatePartitions {
        topics: Vec<super::create_partitions::Growth>,
        validate_only: bool,
    },
    /// AlterUserScramCredentials (`users.rs`).
    AlterUsers {
        changes: Vec<super::users::UserChange>,
    },
    /// AlterClientQuotas (`client_quotas.rs`).
    AlterQuotas {
        changes: Vec<super::client_quotas::QuotaChange>,
    },
}

#[derive(Debug, Clone)]
pub struct NewTopic {
    pub name: String,
    /// -1: the broker default.
    pub partitions: i32,
    pub replication_factor: i16,
    /// CreateTopics' explicit replica assignment: (partition index, broker
    /// ids), as the client sent it; empty when none was given.
    pub assignments: Vec<(i32, Vec<i32>)>,
    pub configs: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone)]
pub struct TopicOutcome {
    pub name: String,
    pub id: [u8; 16],
    pub partitions: i32,
    pub replication_factor: i16,
    pub error_code: i16,
    pub error_message: Option<String>,
}

/// A catalog change, for shard 0.
pub struct Admin(pub AdminRequest);

/// Adopt this catalog (open new partitions, delete removed ones), from shard 0.
pub struct ApplyCatalog(pub Arc<Catalog>);

impl Task<ShardContext> for ApplyCatalog {
    type Output = ();

    async fn run(self, shard: Rc<ShardContext>) {
        if let Err(e) = shard.apply_catalog(self.0).await {
            tracing::error!(shard = shard.id, error = %e, "applying the catalog failed");
        }
    }
}

/// Run a catalog change on shard 0 and return its outcome per topic (none
/// when shard 0 cannot be reached).
pub async fn admin(shard: &Rc<ShardContext>, req: AdminRequest) -> Vec<TopicOutcome> {
    run_on(shard, 0, Admin(req)).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "admin forward failed");
        Vec::new()
    })
}

impl Task<ShardContext> for Admin {
    type Output = Vec<TopicOutcome>;

    async fn run(self, shard: Rc<ShardContext>) -> Vec<TopicOutcome> {
        assert_eq!(shard.id, 0, "only shard 0 writes the catalog");
        let _permit = shard
            .admin_lock
            .acquire_permit(1)
            .await
            .expect("admin lock never closes");
        let before = shard.catalog();
        let (next, outcomes) = match self.0 {
            AdminRequest::CreateTopics {
                topics,
                validate_only,
            } => create(&shard, &before, topics, validate_only),
            AdminRequest::DeleteTopics { names } => delete(&before, names),
            AdminRequest::CreatePartitions {
                topics,
                validate_only,
            } => super::create_partitions::grow(&shard, &before, topics, validate_only),
            AdminRequest::AlterConfigs {
                changes,
                validate_only,
            } => super::alter_configs::apply_changes(&shard, &before, changes, validate_only),
            AdminRequest::AlterUsers { changes } => super::users::apply(&before, changes),
            AdminRequest::AlterQuotas { changes } => super::client_quotas::apply(&before, changes),
        };
        if next.version == before.version {
            return outcomes;
        }
        let Err(e) = publish(&shard, next).await else {
            return outcomes;
        };
        tracing::error!(error = %crate::error::chain(&e), "saving the catalog failed");
        outcomes
            .into_iter()
            .map(|o| TopicOutcome {
                error_code: ResponseError::KafkaStorageError.code(),
                error_message: Some(e.to_string()),
                ..o
            })
            .collect()
    }
}

pub(super) fn outcome(
    name: &str,
    id: [u8; 16],
    (partitions, replication_factor): (i32, usize),
    error: Option<(ResponseError, String)>,
) -> TopicOutcome {
    TopicOutcome {
        name: name.to_string(),
        id,
        partitions,
        replication_factor: i16::try_from(replication_factor).unwrap_or(i16::MAX),
        error_code: error.as_ref().map_or(0, |(e, _)| e.code()),
        error_message: error.map(|(_, m)| m),
    }
}

fn create(
    shard: &ShardContext,
    before: &Catalog,
    topics: Vec<NewTopic>,
    validate_only: bool,
) -> (Catalog, Vec<TopicOutcome>) {
    let mut next = before.clone();
    let mut outcomes = Vec::with_capacity(topics.len());
    for t in topics {
        match check_new_topic(shard, &next, &t) {
            Err(e) => outcomes.push(outcome(&t.name, [0; 16], (-1, 0), Some(e))),
            Ok((config, placement)) => {
                let id = random_id();
                let shape = (placement.partitions(), placement.replication_factor());
                if !validate_only {
                    next = next.with_topic(&t.name, id, placement, config, shard.count);
                }
                outcomes.push(outcome(&t.name, id, shape, None));
            }
        }
    }
    (next, outcomes)
}

pub(super) type Refusal = (ResponseError, String);

fn check_new_topic(
    shard: &ShardContext,
    catalog: &Catalog,
    t: &NewTopic,
) -> Result<(TopicConfig, Placement), Refusal> {
    validate_topic_name(&t.name).map_err(|m| (ResponseError::InvalidTopicException, m))?;
    if catalog.topic(&t.name).is_some() {
        return Err((
            ResponseError::TopicAlreadyExists,
            format!("topic '{}' already exists", t.name),
        ));
    }
    let brokers = advertised_broker_count(shard);
    let placement = if t.assignments.is_empty() {
        let partitions = if t.partitions == -1 {
            shard.args.default_partitions
        } else {
            t.partitions
        };
        check_partition_count(partitions)?;
        // Up to the advertised broker count, so clients that size the factor
        // from Metadata's brokers work; there is still one copy on disk.
        let replication_factor = match t.replication_factor {
            -1 => 1,
            rf if rf >= 1 && rf as usize <= brokers => rf as usize,
            rf => {
                let m = format!(
                    "replication factor {rf}: this broker advertises {brokers} broker id(s), so 1..={brokers} (one copy is kept on disk whatever the factor)"
                );
                return Err((ResponseError::InvalidReplicationFactor, m));
            }
        };
        Placement::Balanced {
            partitions,
            replication_factor,
        }
    } else {
        Placement::Assigned {
            replicas: check_assignment(t, brokers)?,
            owner_is_first_id: !shard.args.single_address,
        }
    };
    let mut config = TopicConfig::defaults(&shard.args.topic_defaults());
    for (name, value) in &t.configs {
        if let Some(v) = value {
            config
                .set(name, v)
                .map_err(|m| (ResponseError::InvalidConfig, m))?;
        }
    }
    Ok((config, placement))
}

pub(super) fn check_partition_count(partitions: i32) -> Result<(), Refusal> {
    if (1..=limits::PARTITIONS_PER_TOPIC_MAX).contains(&partitions) {
        return Ok(());
    }
    let m = format!("partitions must be 1..={}", limits::PARTITIONS_PER_TOPIC_MAX);
    Err((ResponseError::InvalidPartitions, m))
}

/// An explicit replica assignment, checked with Kafka's (KRaft) rules and
/// messages: partition count and factor come from it, so both must be -1;
/// partitions 0, 1, 2, ... in order; each a non-empty list of advertised broker
/// ids (`0..brokers`) without repeats, all lists the same length.
fn check_assignment(t: &NewTopic, brokers: usize) -> Result<Vec<Vec<u32>>, Refusal> {
    if t.replication_factor != -1 {
        let m = "A manual partition assignment was specified, but replication factor was not set to -1.";
        return Err((ResponseError::InvalidReplicationFactor, m.into()));
    }
    if t.partitions != -1 {
        let m = "A manual partition assignment was specified, but numPartitions was not set to -1.";
        return Err((ResponseError::InvalidPartitions, m.into()));
    }
    let partitions = i32::try_from(t.assignments.len()).unwrap_or(i32::MAX);
    check_partition_count(partitions)?;
    let invalid = |m: String| (ResponseError::InvalidReplicaAssignment, m);
    let mut out: Vec<Vec<u32>> = Vec::with_capacity(t.assignments.len());
    for (expected, (index, ids)) in t.assignments.iter().enumerate() {
        if *index != expected as i32 {
            return Err(invalid(
                "partitions should be a consecutive 0-based integer sequence".into(),
            ));
        }
        if ids.is_empty() {
            return Err(invalid(
                "The manual partition assignment includes an empty replica list.".into(),
            ));
        }
        let mut replicas: Vec<u32> = Vec::with_capacity(ids.len());
        for &id in ids {
            let advertised = u32::try_from(id).ok().filter(|id| (*id as usize) < brokers);
            let Some(id) = advertised else {
                return Err(invalid(format!(
                    "The manual partition assignment includes broker {id}, but no such broker is registered (broker ids are 0..{brokers})."
                )));
            };
            if replicas.contains(&id) {
                return Err(invalid(format!(
                    "The manual partition assignment includes the broker {id} more than once."
                )));
            }
            replicas.push(id);
        }
        if let Some(first) = out.first().filter(|f| f.len() != replicas.len()) {
            return Err(invalid(format!(
                "The manual partition assignment includes a partition with {} replica(s), but this is not consistent with previous partitions, which have {} replica(s).",
                replicas.len(),
                first.len()
            )));
        }
        out.push(replicas);
    }
    Ok(out)
}

fn delete(before: &Catalog, names: Vec<String>) -> (Catalog, Vec<TopicOutcome>) {
    let mut next = before.clone();
    let mut outcomes = Vec::with_capacity(names.len());
    for name in names {
        match next.topic(&name).map(|t| (t.id, t.partition_count())) {
            Some((id, partitions)) => {
                next = next.without_topic(&name);
                outcomes.push(outcome(&name, id, (partitions, 0), None));
            }
            None => {
                let e = (
                    ResponseError::UnknownTopicOrPartition,
                    format!("no topic '{name}'"),
                );
                outcomes.push(outcome(&name, [0; 16], (0, 0), Some(e)));
            }
        }
    }
    (next, outcomes)
}

/// Make `next` durable, then have every shard apply it (shard 0 last sees no
/// difference: it applies first, then the others in turn).
pub(super) async fn publish(shard: &Rc<ShardContext>, next: Catalog) -> Result<(), store::StoreError> {
    store::save(&shard.args.data_dir, &next).await?;
    let next = Arc::new(next);
    if let Err(e) = shard.apply_catalog(next.clone()).await {
        tracing::error!(error = %e, "shard 0 could not apply the catalog");
    }
    for peer in 1..shard.count {
        if let Err(e) = shard.mesh.call(peer, ApplyCatalog(next.clone())).await {
            tracing::error!(peer, error = %e, "a shard could not apply the catalog");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assigned(partitions: i32, replication_factor: i16, lists: &[(i32, &[i32])]) -> NewTopic {
        NewTopic {
            name: "t".into(),
            partitions,
            replication_factor,
            assignments: lists.iter().map(|(p, ids)| (*p, ids.to_vec())).collect(),
            configs: Vec::new(),
        }
    }

    #[test]
    fn given_explicit_assignments_when_checked_should_follow_kafkas_rules() {
        let ok = check_assignment(&assigned(-1, -1, &[(0, &[1, 0]), (1, &[0, 1])]), 2);
        assert_eq!(ok, Ok(vec![vec![1, 0], vec![0, 1]]));
        let code = |t: NewTopic, brokers| check_assignment(&t, brokers).unwrap_err().0;
        use ResponseError::*;
        assert_eq!(code(assigned(2, -1, &[(0, &[0])]), 2), InvalidPartitions);
        assert_eq!(code(assigned(-1, 1, &[(0, &[0])]), 2), InvalidReplicationFactor);
        for (lists, brokers) in [
            (&[(1, &[0][..])][..], 2),       // does not start at 0
            (&[(0, &[0]), (2, &[1])], 2),    // gap
            (&[(0, &[])], 2),                // empty list
            (&[(0, &[2])], 2),               // not advertised
            (&[(0, &[-1])], 2),              // negative id
            (&[(0, &[1])], 1),               // single-address: only 0
            (&[(0, &[1, 1])], 2),            // repeated
            (&[(0, &[0]), (1, &[0, 1])], 2), // uneven
        ] {
            assert_eq!(
                code(assigned(-1, -1, lists), brokers),
                InvalidReplicaAssignment,
                "{lists:?}"
            );
        }
    }
}
