//! No per-record allocation on the produce and fetch paths: the heap
//! allocations of appending and reading the same number of batches must not
//! grow with the records in them. A counting global allocator counts the
//! calls made on the test's executor thread (glommio's other threads and the
//! test harness are not counted).
//!
//! Covered: batch validation (`record_batch::validate`, the produce handler's
//! check), the queue-header framing walk (`queue_headers::might_carry`, run on
//! every uncompressed produce batch), `PartitionLog::append`, and `PartitionLog::read` from the tail cache
//! and, after a reopen, from the segment file on both file read paths (copy and
//! DMA buffer, `FileReadPath`).

use std::cell::Cell;

use bytes::{Bytes, BytesMut};
use glommio::{LocalExecutorBuilder, Placement};
use weir_broker::log::{FileReadPath, FlushPolicy, LogConfig, Offset, PartitionLog};
use weir_protocol::builder::BatchBuilder;
use weir_protocol::queue_headers;
use weir_protocol::record_batch::{self, Compression};

struct CountingAlloc;

thread_local! {
    // `const` and `Cell<u64>`: no lazy initialisation and no destructor, so
    // the allocator may touch it without allocating or recursing.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|a| a.set(a.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|a| a.set(a.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

const BATCHES: usize = 200;

/// `BATCHES` batches of `records` records each, about 16 KiB per batch
/// whatever the record count, built before anything is counted.
fn batches(records: usize) -> Vec<Bytes> {
    let value = vec![0xa5u8; 16 * 1024 / records];
    let mut builder = BatchBuilder::new(Compression::None);
    (0..BATCHES)
        .map(|_| {
            for r in 0..records {
                builder.push(1_700_000_000_000 + r as i64, Some(b"k"), Some(&value), &[]);
            }
            let mut out = BytesMut::new();
            builder.finish_into(&mut out).expect("batch");
            out.freeze()
        })
        .collect()
}

/// Allocations of each step, for batches of `records` records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counts {
    validate: u64,
    header_scan: u64,
    append: u64,
    read_cache: u64,
    read_file: u64,
    read_file_dma: u64,
}

async fn count(records: usize, dir: std::path::PathBuf) -> Counts {
    let input = batches(records);
    let config = LogConfig {
        flush: FlushPolicy::Interval {
            ms: 60_000,
            bytes: u64::MAX,
        },
        tail_cache_bytes: 64 << 20,
        ..LogConfig::default()
    };
    let log = PartitionLog::open(dir.clone(), config.clone()).await.unwrap();
    // Warm up: the first append opens the segment and sizes the buffers.
    log.append(input[0].clone()).await.unwrap();

    let before = allocations();
    for b in &input[1..] {
        record_batch::validate(b).expect("valid batch");
    }
    let validate = allocations() - before;

    let before = allocations();
    for b in &input[1..] {
        assert!(!queue_headers::might_carry(b), "no record has a header");
    }
    let header_scan = allocations() - before;

    let before = allocations();
    for b in &input[1..] {
        log.append(b.clone()).await.unwrap();
    }
    let append = allocations() - before;
    log.flush().await.unwrap();

    let before = allocations();
    let read = log.read(Offset(0), 64 << 20).await.unwrap();
    let read_cache = allocations() - before;
    assert!(
        read.from_cache && read.batches.len() == BATCHES,
        "{}",
        read.batches.len()
    );
    drop(read);
    log.close().await.unwrap();

    let log = PartitionLog::open(dir, config).await.unwrap();
    let before = allocations();
    let read = log.read(Offset(0), 64 << 20).await.unwrap();
    let read_file = allocations() - before;
    assert!(
        !read.from_cache && read.batches.len() == BATCHES,
        "{}",
        read.batches.len()
    );
    drop(read);
    let before = allocations();
    let read = log
        .read_with(Offset(0), 64 << 20, FileReadPath::Dma)
        .await
        .unwrap();
    let read_file_dma = allocations() - before;
    assert!(
        !read.from_cache && read.batches.len() == BATCHES,
        "{}",
        read.batches.len()
    );
    drop(read);
    log.close().await.unwrap();
    Counts {
        validate,
        header_scan,
        append,
        read_cache,
        read_file,
        read_file_dma,
    }
}

#[test]
fn given_batches_of_1_and_of_64_records_when_appended_and_read_should_allocate_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let (one, many) = LocalExecutorBuilder::new(Placement::Unbound)
        .spawn({
            let root = dir.path().to_path_buf();
            move || async move {
                let one = count(1, root.join("one")).await;
                let many = count(64, root.join("many")).await;
                (one, many)
            }
        })
        .unwrap()
        .join()
        .unwrap();
    eprintln!("allocations for {BATCHES} batches: 1 record each {one:?}; 64 records each {many:?}");
    assert_eq!(one.validate, 0, "validation allocates");
    assert_eq!(many.validate, 0, "validation allocates");
    assert_eq!(one.header_scan, 0, "the header scan allocates");
    assert_eq!(many.header_scan, 0, "the header scan allocates");
    // Per batch the log may allocate a little (index entries, cache bookkeeping);
    // per record nothing: 64 times the records may not add a single allocation per
    // batch. A small slack absorbs a buffer growth landing in one run, not the other.
    let slack = 8;
    assert!(many.append <= one.append + slack, "append: {one:?} vs {many:?}");
    assert!(
        many.read_cache <= one.read_cache + slack,
        "cache read: {one:?} vs {many:?}"
    );
    assert!(
        many.read_file <= one.read_file + slack,
        "file read: {one:?} vs {many:?}"
    );
    assert!(
        many.read_file_dma <= one.read_file_dma + slack,
        "file read, DMA path: {one:?} vs {many:?}"
    );
    // And the per-batch cost stays small: under 4 allocations per batch appended and
    // read (the measured figures are in the test's output).
    assert!(one.append < 4 * BATCHES as u64, "{one:?}");
    assert!(one.read_cache + one.read_file < 4 * BATCHES as u64, "{one:?}");
    assert!(one.read_file_dma < 2 * BATCHES as u64, "{one:?}");
}
