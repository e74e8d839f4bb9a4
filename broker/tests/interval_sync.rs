//! The shard-wide `flush.ms` sync (`log/shard_sync.rs`) on a real ext4 filesystem:
//! acks=1 data of many partitions becomes durable within a few flush intervals through
//! syncfs, not one fdatasync per partition, and what it reported durable survives a
//! power cut (`common::loop_disk`: only what the block device received is kept, so
//! segment sizes from extending O_DIRECT writes survive only if the syncfs committed
//! them). Needs root for the loop device; skips (saying why) without it.

mod common;

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::loop_disk::LoopDisk;
use glommio::{LocalExecutorBuilder, Placement};
use weir_broker::log::{FlushPolicy, LogConfig, Offset, PartitionLog};
use weir_protocol::builder::BatchBuilder;
use weir_protocol::record_batch::{validate, Compression};

const PARTITIONS: usize = 100;
const BATCHES: usize = 3;
const FLUSH_MS: u64 = 100;

fn run<T: 'static>(fut: impl std::future::Future<Output = T> + 'static) -> T {
    LocalExecutorBuilder::new(Placement::Unbound)
        .make()
        .expect("executor")
        .run(fut)
}

fn config() -> LogConfig {
    LogConfig {
        // No byte bound: only the interval may sync.
        flush: FlushPolicy::Interval {
            ms: FLUSH_MS,
            bytes: u64::MAX,
        },
        ..LogConfig::default()
    }
}

/// The value of batch `round` of partition `partition` (one record).
fn value(partition: usize, round: usize) -> Vec<u8> {
    format!("p{partition}-b{round}").into_bytes()
}

fn batch(partition: usize, round: usize) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    b.push(now_ms, None, Some(&value(partition, round)), &[]);
    let mut out = BytesMut::new();
    b.finish_into(&mut out).expect("batch");
    out.freeze()
}

fn partition_dir(root: &Path, partition: usize) -> PathBuf {
    root.join(format!("t-{partition}"))
}

/// Write one batch per round to each partition (acks=1: nobody waits for durability),
/// wait until every partition's durable offset reached its end, and cut the power with
/// the logs still open. Returns the fdatasyncs and syncfs calls the wait took.
fn write_and_cut(mut disk: LoopDisk, root: PathBuf) -> (LoopDisk, u64, u64) {
    run(async move {
        let mut logs: Vec<Rc<PartitionLog>> = Vec::new();
        for p in 0..PARTITIONS {
            logs.push(
                PartitionLog::open(partition_dir(&root, p), config())
                    .await
                    .expect("open"),
            );
        }
        let counts =
            || weir_broker::metrics::with(|m| (m.fsync_latency_us.count(), m.syncfs_latency_us.count()));
        let before = counts();
        for round in 0..BATCHES {
            for (p, log) in logs.iter().enumerate() {
                log.append(batch(p, round)).await.expect("append");
            }
        }
        let deadline = Instant::now() + Duration::from_millis(FLUSH_MS * 30);
        loop {
            let behind = logs
                .iter()
                .filter(|l| l.durable_end_offset() < l.log_end_offset())
                .count();
            if behind == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{behind} of {PARTITIONS} partitions not durable after 30 flush intervals"
            );
            glommio::timer::sleep(Duration::from_millis(10)).await;
        }
        let after = counts();
        // The power goes while the logs are open: no close, no clean-shutdown sync.
        disk.power_cut();
        drop(logs);
        (disk, after.0 - before.0, after.1 - before.1)
    })
}

/// Every partition holds its batches, in order, at offsets 0, 1, 2.
fn read_back(root: PathBuf) {
    run(async move {
        for p in 0..PARTITIONS {
            let log = PartitionLog::open(partition_dir(&root, p), config())
                .await
                .expect("reopen");
            assert_eq!(
                log.log_end_offset(),
                Offset(BATCHES as i64),
                "partition {p} lost records that were reported durable"
            );
            let mut offset = 0;
            let mut scratch = Vec::new();
            while offset < BATCHES as i64 {
                let result = log.read(Offset(offset), 1 << 20).await.expect("read");
                assert!(!result.batches.is_empty(), "partition {p}: nothing at {offset}");
                for b in &result.batches {
                    let info = validate(b).expect("valid batch");
                    assert_eq!(info.base_offset, offset, "partition {p}: batches out of order");
                    let round = offset as usize;
                    let mut records = 0;
                    weir_protocol::records::for_each_record(b, &mut scratch, 1 << 20, |r| {
                        assert_eq!(
                            r.value,
                            Some(&value(p, round)[..]),
                            "partition {p}, batch {round}"
                        );
                        records += 1;
                    })
                    .expect("records decode");
                    assert_eq!(records, 1, "partition {p}, batch {round}");
                    offset = info.last_offset() + 1;
                }
            }
            log.close().await.expect("close");
        }
    });
}

/// A partition that synced on its own (the byte bound) and then got a small write:
/// the small write is made durable by the next interval sync, not left for a later
/// own sync that may never come.
#[test]
fn given_a_partition_that_synced_on_its_own_when_a_small_batch_follows_should_sync_it_within_flush_ms() {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("weir-interval-sync-own");
    std::fs::create_dir_all(&base).expect("test dir");
    let dir = tempfile::tempdir_in(&base).expect("temp dir");
    let path = dir.path().join("p0");
    run(async move {
        let config = LogConfig {
            flush: FlushPolicy::Interval { ms: 50, bytes: 4096 },
            ..LogConfig::default()
        };
        let log = PartitionLog::open(path, config).await.expect("open");
        let big = {
            let mut b = BatchBuilder::new(Compression::None);
            b.push(0, None, Some(&[7u8; 8192]), &[]);
            let mut out = BytesMut::new();
            b.finish_into(&mut out).expect("batch");
            out.freeze()
        };
        log.append(big).await.expect("append");
        // The byte bound makes the appender fdatasync on its own.
        for _ in 0..200 {
            if log.durable_end_offset() == Offset(1) {
                break;
            }
            glommio::timer::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(log.durable_end_offset(), Offset(1), "the byte bound synced");
        log.append(batch(0, 1)).await.expect("append");
        for _ in 0..200 {
            if log.durable_end_offset() == Offset(2) {
                break;
            }
            glommio::timer::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            log.durable_end_offset(),
            Offset(2),
            "the small batch waited 2 s for its interval sync"
        );
        log.close().await.expect("close");
    });
    drop(dir);
}

#[test]
fn given_many_partitions_with_flush_ms_when_the_power_is_cut_after_the_interval_sync_should_keep_every_record(
) {
    let mount = Path::new(env!("CARGO_TARGET_TMPDIR")).join("weir-interval-sync");
    let disk = match LoopDisk::create(&mount, 256) {
        Ok(disk) => disk,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let root = mount.join("data");
    std::fs::create_dir_all(&root).expect("data dir");
    let (disk, fdatasyncs, syncfs) = write_and_cut(disk, root.clone());
    eprintln!("{PARTITIONS} partitions durable with {fdatasyncs} fdatasyncs and {syncfs} syncfs calls");
    assert!(
        fdatasyncs < (PARTITIONS / 10) as u64,
        "{fdatasyncs} fdatasyncs for {PARTITIONS} partitions: the interval sync is per partition"
    );
    assert!(syncfs >= 1, "the interval sync runs syncfs");
    read_back(root);
    drop(disk);
}
