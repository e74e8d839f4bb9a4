//! Pure routing: which shard owns a partition, and splitting a request's
//! parts by owner. Deterministic and side-effect free, so it is unit-tested.

use crate::metadata::TopicMeta;

/// The owner of `partition` of a topic looked up in the catalog (None: no such
/// topic or partition). Handlers look a request's topic up once, not per partition.
pub fn owner_of(topic: Option<&TopicMeta>, partition: i32, shard_count: usize) -> Option<usize> {
    topic?.owner(partition, shard_count)
}

/// Group `parts` by owning shard, keeping each group's order. Index `s` of the
/// result holds the parts for shard `s`.
pub fn split_by_owner<T>(parts: Vec<(usize, T)>, shard_count: usize) -> Vec<Vec<T>> {
    let mut by_shard: Vec<Vec<T>> = (0..shard_count).map(|_| Vec::new()).collect();
    for (shard, part) in parts {
        assert!(shard < shard_count, "owner {shard} out of range");
        by_shard[shard].push(part);
    }
    by_shard
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::catalog::{random_id, Placement};
    use crate::metadata::Catalog;

    fn partition_owner(catalog: &Catalog, topic: &str, partition: i32, shard_count: usize) -> Option<usize> {
        owner_of(catalog.topic(topic), partition, shard_count)
    }
    use crate::metadata::test_topic_config;

    #[test]
    fn given_parts_of_two_shards_when_split_should_keep_order_per_shard() {
        let split = split_by_owner(vec![(1, 'a'), (0, 'b'), (1, 'c')], 2);
        assert_eq!(split, vec![vec!['b'], vec!['a', 'c']]);
    }

    #[test]
    fn given_a_catalog_when_routing_should_name_an_owner_only_for_existing_partitions() {
        let placement = Placement::Balanced {
            partitions: 4,
            replication_factor: 1,
        };
        let catalog =
            Catalog::new("c".into()).with_topic("t", random_id(), placement, test_topic_config(), 2);
        let owners: Vec<Option<usize>> = (0..4).map(|p| partition_owner(&catalog, "t", p, 2)).collect();
        assert!(owners.iter().all(|o| matches!(o, Some(0 | 1))), "{owners:?}");
        assert!(
            owners.contains(&Some(0)) && owners.contains(&Some(1)),
            "both shards own some: {owners:?}"
        );
        for p in 0..4 {
            assert_eq!(
                partition_owner(&catalog, "t", p, 2),
                owners[p as usize],
                "deterministic"
            );
        }
        assert_eq!(partition_owner(&catalog, "t", 4, 2), None);
        assert_eq!(partition_owner(&catalog, "t", -1, 2), None);
        assert_eq!(partition_owner(&catalog, "missing", 0, 2), None);
    }
}
