//! Pure routing: which shard owns a partition, and splitting a request's
//! parts by owner. Deterministic and side-effect free, so it is unit-tested.

use crate::metadata::Catalog;

/// The owner of `topic`/`partition` in `catalog`, or None if it does not exist.
pub fn partition_owner(catalog: &Catalog, topic: &str, partition: i32, shard_count: usize) -> Option<usize> {
    catalog.topic(topic)?.owner(partition, shard_count)
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

    #[test]
    fn given_parts_of_two_shards_when_split_should_keep_order_per_shard() {
        let split = split_by_owner(vec![(1, 'a'), (0, 'b'), (1, 'c')], 2);
        assert_eq!(split, vec![vec!['b'], vec!['a', 'c']]);
    }
}
