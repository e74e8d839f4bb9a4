//! Open files are bounded (issue 13): a partition keeps only its active segment's file
//! open; sealed segments are read through a per-shard LRU of at most
//! `--max-open-segment-files` descriptors. This test gives a one-shard broker a cache
//! of 4, writes a partition of about 30 segments, reads it all back from offset 0 (in
//! order), and counts the broker's descriptors in /proc/<pid>/fd: they may grow by
//! the cache's 4 (and the new active segment's), not by one per segment as before.
//! Then the same after a kill -9 and restart: recovery holds no sealed segment open.

mod common;

use std::time::{Duration, Instant};

use common::Broker;

const CACHE: usize = 4;
/// Segments roll every 64 KiB; each batch is ~9 KiB.
const BATCHES: usize = 220;
const PER_BATCH: usize = 300;

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count()
}

/// Wait for the count to settle at or below `bound` (an evicted descriptor is closed
/// on the executor's next I/O cycle); returns the last count.
fn settled_fds(pid: u32, bound: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let n = open_fds(pid);
        if n <= bound || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every record from offset 0: (offset, key) in the order the broker returned them.
fn read_all(broker: &Broker) -> Vec<(i64, String)> {
    let mut c = broker.client();
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let (hw, records) = c.fetch("t", 0, offset, 64 * 1024, 100).unwrap();
        for (o, k, _) in common::decode(&records) {
            if o >= offset {
                out.push((o, k));
                offset = o + 1;
            }
        }
        if offset >= hw {
            return out;
        }
    }
}

#[test]
fn given_a_partition_of_many_segments_when_read_from_the_start_should_hold_no_more_than_the_cache() {
    let cache = CACHE.to_string();
    let mut broker = Broker::start(&["--shards", "1", "--max-open-segment-files", &cache]);
    let mut c = broker.client();
    c.create_topic("t", 1, &[("segment.bytes", "65536")]).unwrap();
    let before = open_fds(broker.pid());
    for i in 0..BATCHES {
        let batch = common::batch(
            i * PER_BATCH,
            PER_BATCH,
            weir_protocol::record_batch::Compression::None,
        );
        c.produce("t", 0, batch, -1).unwrap();
    }
    let segments = std::fs::read_dir(broker.data_dir().join("t-0"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".log")
        })
        .count();
    assert!(segments >= 20, "{segments} segments");
    let expected: Vec<(i64, String)> = (0..BATCHES * PER_BATCH)
        .map(|i| (i as i64, format!("key-{i}")))
        .collect();
    // The client's own connection and one more for read_all's.
    let bound = before + CACHE + 1;
    assert_eq!(read_all(&broker), expected, "every record, in order");
    let after = settled_fds(broker.pid(), bound);
    assert!(
        after <= bound,
        "{after} descriptors after reading {segments} segments (before: {before}, cache {CACHE})"
    );

    drop(c);
    broker.kill();
    broker.start_again();
    let started = open_fds(broker.pid());
    assert!(
        started < before + segments / 2,
        "recovery opened every segment: {started} descriptors"
    );
    assert_eq!(
        read_all(&broker),
        expected,
        "every record, in order, after kill -9"
    );
    let after = settled_fds(broker.pid(), started + CACHE + 1);
    assert!(
        after <= started + CACHE + 1,
        "{after} descriptors after restart (at start: {started})"
    );
}
