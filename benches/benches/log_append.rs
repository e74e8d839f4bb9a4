//! Raw glommio DMA writer vs `PartitionLog::append`, same bytes, one run, with ratios.
//!
//! Cases: 1 MiB and 16 KiB batches without per-batch fsync (one fdatasync at the end
//! for both), and 16 KiB batches with a sync every 64 KiB (raw: write + fdatasync;
//! log: append x4 + wait_durable). Prints MB/s (10^6 B/s), log/raw ratio and CPU
//! seconds per GB (getrusage, whole process). Data dir: target/bench-data (ext4).
//! `WEIR_BENCH_MB` scales the bytes per case (default 256 no-sync, 64 synced).

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use glommio::io::OpenOptions;
use glommio::{LocalExecutorBuilder, Placement};
use weir_broker::log::{direct_io_probe, FlushPolicy, LogConfig, Offset, PartitionLog};

const WRITE_BYTES: usize = 1024 * 1024;
const IN_FLIGHT_MAX: usize = 4;
const SYNC_EVERY_BYTES: usize = 64 * 1024;
const BLOCK_BYTES: usize = 4096;
const ROUNDS: usize = 3;

/// Counts heap allocations so the table can show allocations per batch appended.
struct CountingAlloc;
static ALLOCATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn allocations() -> u64 {
    ALLOCATIONS.load(std::sync::atomic::Ordering::Relaxed)
}

/// One valid uncompressed v2 batch of `total_bytes` (a single record, big value).
fn template_batch(total_bytes: usize) -> Vec<u8> {
    let value_bytes = total_bytes - 61 - 12; // header + record framing (3-byte value varint)
    let mut record = BytesMut::new();
    record.put_u8(0);
    record.put_u8(0); // timestamp delta 0
    record.put_u8(0); // offset delta 0
    record.put_u8(1); // key -1 (zigzag)
    put_varint(&mut record, value_bytes as i64);
    record.put_bytes(0xa5, value_bytes);
    record.put_u8(0); // no headers
    let mut out = BytesMut::new();
    out.put_i64(0);
    out.put_i32(0); // length, patched
    out.put_i32(0);
    out.put_i8(2);
    out.put_u32(0);
    out.put_i16(0);
    out.put_i32(0);
    out.put_i64(1_700_000_000_000);
    out.put_i64(1_700_000_000_000);
    out.put_i64(-1);
    out.put_i16(-1);
    out.put_i32(-1);
    out.put_i32(1);
    put_varint(&mut out, record.len() as i64);
    out.put_slice(&record);
    let len = (out.len() - 12) as i32;
    out[8..12].copy_from_slice(&len.to_be_bytes());
    let crc = crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out.to_vec()
}

fn put_varint(out: &mut BytesMut, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.put_u8((zigzag as u8 & 0x7f) | 0x80);
        zigzag >>= 7;
    }
    out.put_u8(zigzag as u8);
}

fn crc32c(bytes: &[u8]) -> u32 {
    // Bitwise CRC-32C: only for the template, outside timing.
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Uniquely owned copies, as a network read would deliver them (built before timing).
fn batches(template: &[u8], total_bytes: usize) -> Vec<Bytes> {
    (0..total_bytes / template.len())
        .map(|_| Bytes::copy_from_slice(template))
        .collect()
}

fn cpu_seconds() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

#[derive(Clone, Copy)]
struct Sample {
    mb_s: f64,
    cpu_s_per_gb: f64,
    allocations_per_batch: f64,
}

async fn measure<F: std::future::Future<Output = usize>>(batch_bytes: usize, f: F) -> Sample {
    let (t0, c0, a0) = (Instant::now(), cpu_seconds(), allocations());
    let bytes = f.await as f64;
    let (secs, cpu, allocs) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0, allocations() - a0);
    Sample {
        mb_s: bytes / secs / 1e6,
        cpu_s_per_gb: cpu / (bytes / 1e9),
        allocations_per_batch: allocs as f64 / (bytes / batch_bytes as f64),
    }
}

/// The baseline: copy into 1 MiB DMA buffers, `IN_FLIGHT_MAX` write_at in flight; with
/// `sync_every`, write what is buffered (tail block padded, rewritten next time) and
/// fdatasync every that many bytes.
async fn raw_write(path: &Path, input: Vec<Bytes>, sync_every: Option<usize>) -> usize {
    let file = Rc::new(
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .dma_open(path)
            .await
            .unwrap(),
    );
    let mut tasks = std::collections::VecDeque::new();
    let (mut buf, mut filled, mut position, mut since_sync, mut total) =
        (file.alloc_dma_buffer(WRITE_BYTES), 0, 0u64, 0, 0);
    for batch in input {
        let mut rest = &batch[..];
        total += rest.len();
        since_sync += rest.len();
        while !rest.is_empty() {
            let n = (WRITE_BYTES - filled).min(rest.len());
            buf.as_bytes_mut()[filled..filled + n].copy_from_slice(&rest[..n]);
            filled += n;
            rest = &rest[n..];
            if filled == WRITE_BYTES {
                let (f, b, p) = (
                    file.clone(),
                    std::mem::replace(&mut buf, file.alloc_dma_buffer(WRITE_BYTES)),
                    position,
                );
                tasks.push_back(glommio::spawn_local(
                    async move { f.write_at(b, p).await.unwrap() },
                ));
                position += WRITE_BYTES as u64;
                filled = 0;
                if tasks.len() >= IN_FLIGHT_MAX {
                    tasks.pop_front().unwrap().await;
                }
            }
        }
        if sync_every.is_some_and(|every| since_sync >= every) {
            for t in tasks.drain(..) {
                t.await;
            }
            let aligned = filled.next_multiple_of(BLOCK_BYTES);
            let mut out = file.alloc_dma_buffer(aligned);
            out.as_bytes_mut()[..filled].copy_from_slice(&buf.as_bytes()[..filled]);
            out.as_bytes_mut()[filled..].fill(0);
            file.write_at(out, position).await.unwrap();
            file.fdatasync().await.unwrap();
            let keep = filled / BLOCK_BYTES * BLOCK_BYTES;
            buf.as_bytes_mut().copy_within(keep..filled, 0);
            position += keep as u64;
            filled -= keep;
            since_sync = 0;
        }
    }
    for t in tasks.drain(..) {
        t.await;
    }
    if filled > 0 {
        let aligned = filled.next_multiple_of(BLOCK_BYTES);
        buf.as_bytes_mut()[filled..aligned].fill(0);
        buf.trim_to_size(aligned);
        file.write_at(buf, position).await.unwrap();
    }
    file.fdatasync().await.unwrap();
    total
}

async fn log_write(dir: PathBuf, input: Vec<Bytes>, sync_every: Option<usize>, preallocate: bool) -> usize {
    let config = LogConfig {
        segment_bytes: 256 * 1024 * 1024,
        flush: FlushPolicy::Interval {
            ms: 60_000,
            bytes: u64::MAX,
        },
        preallocate,
        ..LogConfig::default()
    };
    let log = PartitionLog::open(dir, config).await.unwrap();
    let (mut total, mut since_sync) = (0, 0);
    for batch in input {
        total += batch.len();
        since_sync += batch.len();
        let result = log.append(batch).await.unwrap();
        if sync_every.is_some_and(|every| since_sync >= every) {
            log.wait_durable(result.last_offset).await.unwrap();
            since_sync = 0;
        }
    }
    log.flush().await.unwrap();
    assert!(log.durable_end_offset() == log.log_end_offset() && log.log_end_offset() > Offset(0));
    log.close().await.unwrap();
    total
}

struct Case {
    name: &'static str,
    batch_bytes: usize,
    sync_every: Option<usize>,
    total_bytes: usize,
}

/// Sanity: every writer put all the bytes on disk (raw may end with zero padding).
fn check_sizes(dir: &Path, total_bytes: usize) {
    let raw = std::fs::metadata(dir.join("raw.bin")).unwrap().len() as usize;
    assert!(
        raw >= total_bytes && raw < total_bytes + BLOCK_BYTES,
        "raw wrote {raw}"
    );
    for log in ["log", "log-pre"] {
        let logs = std::fs::read_dir(dir.join(log))
            .unwrap()
            .map(|e| e.unwrap().path());
        let sum: u64 = logs
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .map(|p| p.metadata().unwrap().len())
            .sum();
        assert_eq!(sum as usize, total_bytes, "{log} wrote {sum}");
    }
}

fn median(mut v: Vec<Sample>) -> Sample {
    v.sort_by(|a, b| a.mb_s.total_cmp(&b.mb_s));
    v[v.len() / 2]
}

async fn run_case(root: &Path, case: &Case) {
    let template = template_batch(case.batch_bytes);
    let (mut raw, mut log, mut log_pre) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let dir = root.join(format!("{}-{round}", case.name));
        std::fs::create_dir_all(&dir).unwrap();
        // Alternate the order: on a shared, noisy disk whoever runs first must not win.
        for which in [0, 1, 2] {
            let which = if round % 2 == 0 { which } else { 2 - which };
            let input = batches(&template, case.total_bytes);
            match which {
                0 => raw.push(
                    measure(
                        case.batch_bytes,
                        raw_write(&dir.join("raw.bin"), input, case.sync_every),
                    )
                    .await,
                ),
                1 => log.push(
                    measure(
                        case.batch_bytes,
                        log_write(dir.join("log"), input, case.sync_every, false),
                    )
                    .await,
                ),
                _ => log_pre.push(
                    measure(
                        case.batch_bytes,
                        log_write(dir.join("log-pre"), input, case.sync_every, true),
                    )
                    .await,
                ),
            }
        }
        check_sizes(&dir, case.total_bytes / template.len() * template.len());
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let (raw, log, log_pre) = (median(raw), median(log), median(log_pre));
    println!(
        "| {:<28} | {:>8.0} | {:>8.0} | {:>5.2} | {:>12.0} | {:>5.2} | {:>6.2} | {:>6.2} | {:>6.2} | {:>5.2} | {:>5.2} |",
        case.name,
        raw.mb_s,
        log.mb_s,
        log.mb_s / raw.mb_s,
        log_pre.mb_s,
        log_pre.mb_s / raw.mb_s,
        raw.cpu_s_per_gb,
        log.cpu_s_per_gb,
        log_pre.cpu_s_per_gb,
        raw.allocations_per_batch,
        log.allocations_per_batch
    );
}

fn main() {
    let scale_mb: usize = std::env::var("WEIR_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data/log_append");
    std::fs::create_dir_all(&root).unwrap();
    let cases = [
        Case {
            name: "1 MiB batches, no sync",
            batch_bytes: 1 << 20,
            sync_every: None,
            total_bytes: scale_mb << 20,
        },
        Case {
            name: "16 KiB batches, no sync",
            batch_bytes: 16 << 10,
            sync_every: None,
            total_bytes: scale_mb << 20,
        },
        Case {
            name: "16 KiB batches, sync/64 KiB",
            batch_bytes: 16 << 10,
            sync_every: Some(SYNC_EVERY_BYTES),
            total_bytes: (scale_mb / 4) << 20,
        },
    ];
    LocalExecutorBuilder::new(Placement::Fixed(0))
        .make()
        .unwrap()
        .run(async move {
            direct_io_probe(&root).await.unwrap();
            println!("median of {ROUNDS} rounds; MB/s = 10^6 B/s; CPU = user+sys s per GB (whole process)");
            println!("| case | raw MB/s | log MB/s | log/raw | log+prealloc MB/s | ratio | raw CPU/GB | log CPU/GB | prealloc CPU/GB | raw allocs/batch | log allocs/batch |");
            println!("|---|---|---|---|---|---|---|---|---|---|---|");
            for case in &cases {
                run_case(&root, case).await;
            }
        });
}
