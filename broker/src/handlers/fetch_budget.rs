//! A fetch's byte budget across the shards that own its partitions: each
//! owner's share before the reads, and the cut of the joined answer to the
//! client's max after them. Pure functions, used by `fetch.rs` on the shard
//! serving the connection. Invariant: the shares sum to at most the fetch's
//! max when its partitions ask for more, so the cut drops only a batch an
//! owner's first partition with data carried past its share (KIP-74: the first
//! batch may exceed the max, later ones may not).

use super::fetch::FetchPartResult;

/// The bytes one owner shard may read for a fetch whose parts on that shard ask
/// for `asked` (their partition maxes) out of `all_asked` on every owner. Owners
/// read in parallel and the answer is then cut to `max_bytes` in request order:
/// when the maxes sum past it, each owner reading the whole `max_bytes` reads
/// more than can be sent, and a partition cut away has spent its read-ahead (the
/// next one starts past what was read), so its next fetch reads the disk again
/// behind the queue. Measured with `--single-address`, one consumer catching up on
/// 8 partitions asking 8 MiB each on two shards: 652-803 MB/s before, 1,068-1,372
/// after (docs/benchmarks.md, "Catch-up reads: the client's ceiling, and a starved
/// partition"). So each owner gets its share, in proportion to what its parts ask;
/// the shares sum to at most `max_bytes`. When everything asked fits, or one
/// owner reads alone, it gets all of `max_bytes`.
pub(super) fn owner_budget(asked: usize, all_asked: usize, max_bytes: usize) -> usize {
    if all_asked <= max_bytes {
        return max_bytes;
    }
    // u128: max_bytes (at most 55 MiB) times a sum of per-part maxes cannot overflow it.
    (max_bytes as u128 * asked as u128 / all_asked as u128) as usize
}

/// Shards answer with up to max_bytes each; keep the client's total bound by
/// dropping whole batches past it (the first batch always stays, KIP-74).
pub(super) fn trim_to_max_bytes(results: &mut [FetchPartResult], max_bytes: usize) {
    let mut used = 0usize;
    for r in results.iter_mut() {
        let mut keep = 0;
        for b in &r.batches {
            if used > 0 && used + b.len() > max_bytes {
                break;
            }
            used += b.len();
            keep += 1;
        }
        if keep < r.batches.len() {
            r.batches.truncate(keep);
            r.contiguous = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_owners_asking_more_than_the_fetch_max_when_sharing_should_sum_to_at_most_the_max() {
        const MAX: usize = 57_671_680;
        // Everything asked fits, or one owner alone: the whole max each.
        assert_eq!(owner_budget(4 << 20, 8 << 20, MAX), MAX);
        assert_eq!(owner_budget(64 << 20, 64 << 20, MAX), MAX);
        // Eight partitions of 8 MiB on two shards, four each: half each.
        assert_eq!(owner_budget(32 << 20, 64 << 20, MAX), MAX / 2);
        // Uneven owners, awkward sums: in proportion, never more than the max together.
        for split in [(1, 6), (3, 4), (5, 2), (7, 0)] {
            for part_max in [1usize, 1_000_003, 8 << 20] {
                let (a, b) = (split.0 * part_max, split.1 * part_max);
                let (sa, sb) = (owner_budget(a, a + b, MAX), owner_budget(b, a + b, MAX));
                if a + b <= MAX {
                    assert_eq!((sa, sb), (MAX, MAX), "{split:?} x {part_max}: all fits");
                    continue;
                }
                assert!(sa + sb <= MAX, "{split:?} x {part_max}: {sa} + {sb}");
                assert!(
                    sa + sb + 2 >= MAX,
                    "{split:?} x {part_max}: {sa} + {sb} wastes the max"
                );
            }
        }
        assert_eq!(
            owner_budget(0, 64 << 20, MAX),
            0,
            "an owner asked for nothing reads nothing"
        );
    }
}
