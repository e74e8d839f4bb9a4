//! Criterion micro-benchmarks of the RecordBatch v2 codecs: CRC validation (with
//! a bare crc32c pass beside it as the ceiling), record iteration over
//! uncompressed and lz4 batches, the builder, and the produce path's queue-header
//! pre-check (`queue_headers::might_carry`, with the byte search it replaced). Pure CPU, no I/O; all inputs
//! are built in memory before timing. Run: `cargo bench -p weir-benches --bench protocol`.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use weir_protocol::builder::BatchBuilder;
use weir_protocol::queue_headers;
use weir_protocol::record_batch::{self, Compression, CRC_START};
use weir_protocol::records::for_each_record;

/// A typical small event: 16-byte key, ~200-byte JSON-ish value, one header.
const VALUE_BYTES: usize = 200;
/// Decompression bound for the parse benches: Kafka's default max message size.
const DECOMPRESSED_MAX_BYTES: usize = 1024 * 1024 + 1024 * 64;

fn value(i: usize) -> Vec<u8> {
    let mut v = format!(
        "{{\"id\":{i},\"user\":\"user-{}\",\"event\":\"click\",\"payload\":\"",
        i % 977
    )
    .into_bytes();
    let mut state = i as u64 | 1;
    while v.len() < VALUE_BYTES - 2 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        v.push(b'a' + (state % 16) as u8);
    }
    v.extend_from_slice(b"\"}");
    v
}

/// One batch of about `target_bytes` (uncompressed records) with `codec`.
fn batch(target_bytes: usize, codec: Compression) -> (Vec<u8>, usize) {
    let mut builder = BatchBuilder::new(codec);
    builder.set_compress_only_if_smaller(false);
    let mut i = 0;
    while builder.estimated_size_bytes() < target_bytes {
        let key = format!("key-{i:012}");
        builder.push(
            1_700_000_000_000 + i as i64,
            Some(key.as_bytes()),
            Some(&value(i)),
            &[(b"source", Some(b"bench"))],
        );
        i += 1;
    }
    let mut out = BytesMut::new();
    builder.finish_into(&mut out).unwrap();
    (out.to_vec(), i)
}

fn bench_validate(c: &mut Criterion) {
    let mut group = c.benchmark_group("validate");
    for (label, size) in [("1KiB", 1024), ("16KiB", 16 * 1024), ("1MiB", 1024 * 1024)] {
        let (bytes, _) = batch(size, Compression::None);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(BenchmarkId::new("crc32c_baseline", label), &bytes, |b, bytes| {
            b.iter(|| crc32c::crc32c(black_box(&bytes[CRC_START..])))
        });
        group.bench_with_input(BenchmarkId::new("validate", label), &bytes, |b, bytes| {
            b.iter(|| record_batch::validate(black_box(bytes)).unwrap())
        });
    }
    group.finish();
}

fn bench_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    let mut scratch = Vec::with_capacity(DECOMPRESSED_MAX_BYTES);
    for (label, size) in [("16KiB", 16 * 1024), ("1MiB", 1024 * 1024)] {
        for codec in [Compression::None, Compression::Lz4] {
            let (bytes, records) = batch(size, codec);
            group.throughput(Throughput::Elements(records as u64));
            let id = BenchmarkId::new(format!("{codec:?}").to_lowercase(), label);
            group.bench_with_input(id, &bytes, |b, bytes| {
                b.iter(|| {
                    let mut value_bytes = 0usize;
                    let n = for_each_record(black_box(bytes), &mut scratch, DECOMPRESSED_MAX_BYTES, |r| {
                        value_bytes += r.value.map_or(0, <[u8]>::len) + r.headers.iter().count();
                    })
                    .unwrap();
                    (n, value_bytes)
                })
            });
        }
    }
    group.finish();
}

fn bench_build(c: &mut Criterion) {
    let mut group = c.benchmark_group("build");
    const RECORDS: usize = 80; // ~16 KiB of records
    let keys: Vec<String> = (0..RECORDS).map(|i| format!("key-{i:012}")).collect();
    let values: Vec<Vec<u8>> = (0..RECORDS).map(value).collect();
    group.throughput(Throughput::Elements(RECORDS as u64));
    for codec in [
        Compression::None,
        Compression::Lz4,
        Compression::Zstd,
        Compression::Snappy,
        Compression::Gzip,
    ] {
        let mut builder = BatchBuilder::new(codec);
        let mut out = BytesMut::with_capacity(64 * 1024);
        group.bench_function(
            BenchmarkId::new(format!("{codec:?}").to_lowercase(), "16KiB"),
            |b| {
                b.iter(|| {
                    out.clear();
                    for (i, (key, value)) in keys.iter().zip(&values).enumerate() {
                        builder.push(
                            i as i64,
                            Some(key.as_bytes()),
                            Some(value),
                            &[(b"source", Some(b"bench"))],
                        );
                    }
                    builder.finish_into(&mut out).unwrap();
                    out.len()
                })
            },
        );
    }
    group.finish();
}

/// The load generator's produce shape: 1 KiB alphanumeric values, no key, no
/// headers, batches of 64 KiB (its default) and 1 MiB.
fn loadgen_batch(target_bytes: usize) -> Vec<u8> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let value: Vec<u8> = (0..1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ALPHABET[(state % ALPHABET.len() as u64) as usize]
        })
        .collect();
    let mut builder = BatchBuilder::new(Compression::None);
    let mut i = 0;
    while builder.estimated_size_bytes() + value.len() < target_bytes {
        builder.push(1_700_000_000_000 + i, None, Some(&value), &[]);
        i += 1;
    }
    let mut out = BytesMut::new();
    builder.finish_into(&mut out).unwrap();
    out.to_vec()
}

fn bench_header_scan(c: &mut Criterion) {
    let mut group = c.benchmark_group("header_scan");
    let inputs = [
        ("64KiB-1KiB-records", loadgen_batch(64 * 1024)),
        ("1MiB-1KiB-records", loadgen_batch(1024 * 1024)),
        (
            "16KiB-200B-records-1-header",
            batch(16 * 1024, Compression::None).0,
        ),
    ];
    for (label, bytes) in &inputs {
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(BenchmarkId::new("memmem_weir", label), bytes, |b, bytes| {
            b.iter(|| memchr::memmem::find(black_box(bytes), b"weir-").is_some())
        });
        group.bench_with_input(BenchmarkId::new("might_carry", label), bytes, |b, bytes| {
            b.iter(|| queue_headers::might_carry(black_box(bytes)))
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_validate,
    bench_parse,
    bench_build,
    bench_header_scan
);
criterion_main!(benches);
