//! The hot paths allocate nothing per record: iterating a batch's records with a
//! warm scratch buffer, and a warm `BatchBuilder` encoding batch after batch.
//! Measured with a counting global allocator (allocation calls on this thread).

mod support {
    #[allow(
        dead_code,
        reason = "shared test support; this binary counts allocations only"
    )]
    pub mod alloc;
}

use bytes::BytesMut;
use support::alloc::allocation_count;
use weir_protocol::builder::BatchBuilder;
use weir_protocol::record_batch::Compression;
use weir_protocol::records::for_each_record;

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];
const DECOMPRESSED_MAX_BYTES: usize = 4 << 20;

fn push_records(builder: &mut BatchBuilder, count: usize, value: &[u8]) {
    for i in 0..count {
        let key = (i as u64).to_be_bytes();
        builder.push(
            i as i64,
            Some(&key),
            Some(value),
            &[(b"h", Some(b"v")), (b"n", None)],
        );
    }
}

fn batch(codec: Compression, count: usize) -> BytesMut {
    let mut builder = BatchBuilder::new(codec);
    builder.set_compress_only_if_smaller(false);
    push_records(
        &mut builder,
        count,
        b"a value that compresses, a value that compresses",
    );
    let mut out = BytesMut::new();
    builder.finish_into(&mut out).unwrap();
    out
}

#[test]
fn given_an_allocation_when_counted_should_be_seen() {
    assert_eq!(allocation_count(|| drop(std::hint::black_box(vec![1u8; 10]))), 1);
}

#[test]
fn given_a_warm_scratch_when_records_are_iterated_should_not_allocate_per_record() {
    for codec in CODECS {
        let (small, large) = (batch(codec, 10), batch(codec, 2000));
        let mut scratch = Vec::with_capacity(DECOMPRESSED_MAX_BYTES);
        let mut seen = 0usize;
        let mut count_for = |bytes: &[u8]| {
            allocation_count(|| {
                let n = for_each_record(bytes, &mut scratch, DECOMPRESSED_MAX_BYTES, |r| {
                    seen += r.value.map_or(0, <[u8]>::len) + r.headers.iter().count();
                })
                .unwrap();
                assert!(n == 10 || n == 2000);
            })
        };
        let (small_count, large_count) = (count_for(&small), count_for(&large));
        assert!(seen > 0);
        // A codec may set up its decoder per batch (a few allocations); a
        // per-record allocation would add ~2000 here.
        assert!(
            large_count <= small_count + 4,
            "{codec:?}: {small_count} vs {large_count} allocations"
        );
        // Measured: only gzip sets up a decoder per batch (2 allocations). The
        // zstd decoder context is malloc'd by libzstd (per batch), which this
        // Rust-level allocator cannot see.
        if codec != Compression::Gzip {
            assert_eq!(
                large_count, 0,
                "{codec:?}: iteration with a warm scratch must not allocate"
            );
        }
    }
}

#[test]
fn given_a_warm_builder_when_encoding_more_batches_should_not_allocate_per_record() {
    let value = vec![b'x'; 100];
    for codec in CODECS {
        let mut builder = BatchBuilder::new(codec);
        let mut out = BytesMut::with_capacity(1 << 20);
        push_records(&mut builder, 500, &value);
        builder.finish_into(&mut out).unwrap();
        let count = allocation_count(|| {
            for _ in 0..3 {
                out.clear();
                push_records(&mut builder, 500, &value);
                builder.finish_into(&mut out).unwrap();
            }
        });
        assert_eq!(count, 0, "{codec:?}: a warm builder should not allocate");
    }
}
