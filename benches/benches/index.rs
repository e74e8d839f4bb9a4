//! Criterion micro-benchmark of the sparse offset index lookup and the time index
//! lookup, sized like a full default segment (1 GiB, an entry every 4 KiB).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use weir_broker::log::{IndexEntry, OffsetIndex, TimeIndex, TimeIndexEntry};

/// 1 GiB segment / 4 KiB index interval.
const ENTRY_COUNT: u32 = 262_144;

fn lookups(c: &mut Criterion) {
    let mut index = OffsetIndex::default();
    let mut time_index = TimeIndex::default();
    for i in 1..=ENTRY_COUNT {
        index.push(IndexEntry {
            relative_offset: i * 16,
            position: i * 4096,
        });
        time_index.maybe_push(TimeIndexEntry {
            timestamp: i64::from(i) * 10,
            relative_offset: i * 16,
        });
    }
    // A cheap LCG spreads lookups over the whole index (cache misses like a real fetch).
    let mut seed = 0x9e37_79b9_u32;
    let mut next = move || {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        seed % (ENTRY_COUNT * 16)
    };
    c.bench_function("offset_index_lookup_262k_entries", |b| {
        b.iter(|| black_box(index.lookup(black_box(next()))))
    });
    c.bench_function("time_index_lookup_262k_entries", |b| {
        b.iter(|| black_box(time_index.lookup(black_box(i64::from(next())))))
    });
}

criterion_group!(benches, lookups);
criterion_main!(benches);
