//! ElectLeaders: a no-op, since every partition has exactly one copy and its
//! owning shard is always its leader and its preferred replica. Answered from
//! the accepting shard's catalog, as Kafka's controller answers: a named
//! partition that exists gets ELECTION_NOT_NEEDED (84) for both election types
//! (the preferred replica already leads; an unclean election needs a
//! leaderless partition), NONE in v0 (which predates that code, KIP-460); an
//! unknown one UNKNOWN_TOPIC_OR_PARTITION. A cluster-wide request (null
//! partitions) lists only partitions where an election ran: none.

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};
use kafka_protocol::ResponseError;

use super::ShardContext;
use crate::shard::router::owner_of;

const PREFERRED: i8 = 0;
const UNCLEAN: i8 = 1;

pub fn handle(shard: &ShardContext, req: ElectLeadersRequest, version: i16) -> ElectLeadersResponse {
    // v0 has no election type field: it decodes as 0, preferred.
    if !matches!(req.election_type, PREFERRED | UNCLEAN) {
        return ElectLeadersResponse::default().with_error_code(ResponseError::InvalidRequest.code());
    }
    let Some(topics) = req.topic_partitions else {
        return ElectLeadersResponse::default();
    };
    let not_needed = if version == 0 {
        0
    } else {
        ResponseError::ElectionNotNeeded.code()
    };
    let catalog = shard.catalog();
    let results = topics
        .into_iter()
        .map(|t| {
            let meta = catalog.topic(t.topic.as_str());
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let code = match owner_of(meta, p, shard.count) {
                        Some(_) => not_needed,
                        None => ResponseError::UnknownTopicOrPartition.code(),
                    };
                    PartitionResult::default()
                        .with_partition_id(p)
                        .with_error_code(code)
                })
                .collect();
            ReplicaElectionResult::default()
                .with_topic(t.topic)
                .with_partition_result(partitions)
        })
        .collect();
    ElectLeadersResponse::default().with_replica_election_results(results)
}
