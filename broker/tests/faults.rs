//! Fault injection on the partition log, end to end: stop the broker, damage the files
//! in DATA_DIR/<topic>-<partition>/ (torn write, bit flip, zeroed blocks, missing or
//! corrupt index, missing clean-shutdown marker), restart, and read everything back
//! through the Kafka protocol. Recovery must cut exactly at the damage, rebuild what
//! it needs, log one line per cut, and serve every record before the damage.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::Broker;
use weir_client::blocking::Client;
use weir_protocol::builder::BatchBuilder;
use weir_protocol::record_batch::{validate, BatchWalker, Compression};

const TOPIC: &str = "faults";
/// Records per produced batch and padding per record: ~4 KiB batches, so 64 KiB
/// segments hold ~15 batches and the active segment always holds several.
const RECORDS_PER_BATCH: usize = 16;
const PADDING_BYTES: usize = 240;
const BATCH_COUNT: usize = 70;
/// Marker the log writes on a clean close (broker/src/log/partition.rs).
const SHUTDOWN_STATE_FILE: &str = ".shutdown-state";
const CUT_LINE: &str = "recovery cut";

fn record_value(i: usize) -> Vec<u8> {
    let mut v = format!("value-{i}-").into_bytes();
    v.resize(v.len() + PADDING_BYTES, b'a' + (i % 26) as u8);
    v
}

fn build(first: usize) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None);
    for i in first..first + RECORDS_PER_BATCH {
        b.push(
            1_700_000_000_000 + i as i64,
            Some(format!("key-{i}").as_bytes()),
            Some(&record_value(i)),
            &[],
        );
    }
    let mut out = BytesMut::new();
    b.finish_into(&mut out).unwrap();
    out.freeze()
}

/// A broker with `BATCH_COUNT` acks=all batches in a 1-partition topic of 64 KiB segments,
/// stopped cleanly.
fn stopped_broker_with_data() -> Broker {
    let mut broker = Broker::start(&["--shards", "1"]);
    let mut c = broker.client();
    c.create_topic(TOPIC, 1, &[("segment.bytes", "65536")]).unwrap();
    for n in 0..BATCH_COUNT {
        let base = c.produce(TOPIC, 0, build(n * RECORDS_PER_BATCH), -1).unwrap();
        assert_eq!(base, (n * RECORDS_PER_BATCH) as i64);
    }
    broker.stop();
    broker
}

fn partition_dir(broker: &Broker) -> PathBuf {
    broker.data_dir().join(format!("{TOPIC}-0"))
}

/// The segment `.log` files, oldest first.
fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    assert!(logs.len() >= 3, "the data spans several segments: {logs:?}");
    logs
}

/// (position, size, base offset) of every batch in a segment file (std::fs: test only).
fn batches_of(path: &Path) -> Vec<(usize, usize, i64)> {
    let bytes = std::fs::read(path).unwrap();
    let mut walker = BatchWalker::new(&bytes);
    let out: Vec<_> = walker
        .by_ref()
        .map(|r| (r.start, r.len(), validate(&bytes[r]).unwrap().base_offset))
        .collect();
    assert_eq!(
        walker.position(),
        bytes.len(),
        "an undamaged segment is whole batches"
    );
    out
}

/// Read the whole partition through Fetch: every batch passes its CRC and every record
/// is the one produced at its offset. Returns the log end offset.
fn read_all(c: &mut Client) -> i64 {
    let end = c.list_offset(TOPIC, 0, -1).unwrap().0;
    let mut next = 0i64;
    let mut scratch = Vec::new();
    while next < end {
        let (_, bytes) = c.fetch(TOPIC, 0, next, 1 << 20, 0).unwrap();
        let before = next;
        for range in BatchWalker::new(&bytes) {
            let batch = &bytes[range];
            let info = validate(batch).expect("served batches pass their CRC");
            if info.last_offset() < next {
                continue;
            }
            assert_eq!(info.base_offset, next, "contiguous offsets");
            weir_protocol::records::for_each_record(batch, &mut scratch, 1 << 24, |r| {
                let i = r.offset as usize;
                assert_eq!(r.key, Some(format!("key-{i}").as_bytes()));
                assert_eq!(r.value, Some(&record_value(i)[..]));
            })
            .unwrap();
            next = info.last_offset() + 1;
        }
        assert!(next > before, "log readable past {next} (end {end})");
    }
    end
}

/// Restart, check the log ends at `expected_end`, read all of it, then append and read
/// again (the log stays writable after a cut). Returns the broker for further checks.
fn restart_and_check(broker: &mut Broker, expected_end: i64, cut_lines: usize) {
    broker.start_again();
    let mut c = broker.client();
    assert_eq!(read_all(&mut c), expected_end, "recovery cut at the damage");
    let log = broker.log();
    assert_eq!(
        log.matches(CUT_LINE).count(),
        cut_lines,
        "one line per cut; log:\n{log}"
    );
    let next = expected_end as usize;
    assert_eq!(c.produce(TOPIC, 0, build(next), -1).unwrap(), expected_end);
    assert_eq!(read_all(&mut c), expected_end + RECORDS_PER_BATCH as i64);
    // And once more across a clean restart, through the indexes written at close.
    broker.stop();
    broker.start_again();
    let mut c = Client::connect(broker.addr(), Duration::from_secs(5)).unwrap();
    assert_eq!(read_all(&mut c), expected_end + RECORDS_PER_BATCH as i64);
}

fn seed() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    let seed = std::env::var("WEIR_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| now.map_or(7, |d| d.as_nanos() as u64));
    eprintln!("fault seed {seed} (set WEIR_FAULT_SEED to replay)");
    seed
}

/// What a crash before the active segment's first index checkpoint leaves: no
/// clean-shutdown marker and no index files for the active segment, so recovery
/// validates all of it. (After a checkpoint, recovery trusts the bytes below it,
/// which were durable when it was written: `log::segment_files_tests`.)
fn crash_like(dir: &Path) {
    std::fs::remove_file(dir.join(SHUTDOWN_STATE_FILE)).expect("a clean stop leaves the shutdown state");
    let active = segments(dir).pop().unwrap();
    for ext in ["index", "timeindex"] {
        let _ = std::fs::remove_file(active.with_extension(ext));
    }
}

#[test]
fn given_a_torn_last_write_when_restarted_should_cut_at_the_torn_batch_and_serve_the_rest() {
    let mut broker = stopped_broker_with_data();
    let dir = partition_dir(&broker);
    let active = segments(&dir).pop().unwrap();
    let batches = batches_of(&active);
    let len = std::fs::metadata(&active).unwrap().len() as usize;
    // Cut somewhere inside the last batch (never at its end: that would be no damage).
    let (position, size, base) = *batches.last().unwrap();
    let cut = position + 1 + (seed() as usize % (size - 1));
    assert!(cut < len);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&active)
        .unwrap()
        .set_len(cut as u64)
        .unwrap();
    crash_like(&dir);
    restart_and_check(&mut broker, base, 1);
}

#[test]
fn given_a_bit_flip_in_the_tail_when_restarted_should_cut_at_the_flipped_batch() {
    let mut broker = stopped_broker_with_data();
    let dir = partition_dir(&broker);
    let active = segments(&dir).pop().unwrap();
    let batches = batches_of(&active);
    let seed = seed();
    let (position, size, base) = batches[batches.len() - 1 - (seed as usize % batches.len().min(4))];
    // From the magic byte on: base offset and length are checked by position, and the
    // partition leader epoch (bytes 12..16) is outside the CRC by Kafka's design.
    let at = position + 16 + ((seed >> 8) as usize % (size - 16));
    let mut bytes = std::fs::read(&active).unwrap();
    bytes[at] ^= 1 << ((seed >> 40) % 8);
    std::fs::write(&active, &bytes).unwrap();
    crash_like(&dir);
    restart_and_check(&mut broker, base, 1);
}

#[test]
fn given_zeroed_tail_blocks_when_restarted_should_cut_at_the_first_zeroed_batch() {
    let mut broker = stopped_broker_with_data();
    let dir = partition_dir(&broker);
    let active = segments(&dir).pop().unwrap();
    let batches = batches_of(&active);
    let mut bytes = std::fs::read(&active).unwrap();
    // Blocks allocated but never written by a crash read back as zeros.
    let blocks = 1 + seed() as usize % 3;
    let from = (bytes.len().saturating_sub(blocks * 4096)) / 4096 * 4096;
    bytes[from..].fill(0);
    std::fs::write(&active, &bytes).unwrap();
    let (_, _, first_damaged_base) = *batches.iter().find(|(p, s, _)| p + s > from).unwrap();
    crash_like(&dir);
    restart_and_check(&mut broker, first_damaged_base, 1);
}

#[test]
fn given_missing_or_corrupt_index_files_when_restarted_should_rebuild_them_and_serve_everything() {
    let mut broker = stopped_broker_with_data();
    let dir = partition_dir(&broker);
    let logs = segments(&dir);
    let index = |log: &Path, ext: &str| log.with_extension(ext);
    // A sealed segment loses its index, another gets garbage, the active one both.
    std::fs::remove_file(index(&logs[0], "index")).unwrap();
    std::fs::remove_file(index(&logs[0], "timeindex")).unwrap();
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(index(&logs[1], "index"), &garbage).unwrap();
    std::fs::write(index(&logs[1], "timeindex"), &garbage[..1000]).unwrap();
    let active = logs.last().unwrap();
    std::fs::write(index(active, "index"), &garbage[..800]).unwrap();
    let _ = std::fs::remove_file(index(active, "timeindex"));
    restart_and_check(&mut broker, (BATCH_COUNT * RECORDS_PER_BATCH) as i64, 0);
    assert!(index(&logs[0], "index").exists(), "the missing index is rebuilt");
    let rebuilt = broker.log().matches("rebuilding them by a scan").count();
    assert_eq!(rebuilt, 2, "one line per rebuilt sealed segment");
    // A fetch into the middle of each repaired segment lands on the right batch.
    let mut c = broker.client();
    for log in &logs[..2] {
        let batches = batches_of(log);
        let (_, _, base) = batches[batches.len() / 2];
        let (_, bytes) = c.fetch(TOPIC, 0, base + 3, 1 << 16, 0).unwrap();
        let first = BatchWalker::new(&bytes).next().expect("a batch");
        assert_eq!(validate(&bytes[first]).unwrap().base_offset, base);
    }
}

#[test]
fn given_a_missing_clean_shutdown_marker_when_restarted_should_scan_and_serve_everything() {
    let mut broker = stopped_broker_with_data();
    crash_like(&partition_dir(&broker));
    restart_and_check(&mut broker, (BATCH_COUNT * RECORDS_PER_BATCH) as i64, 0);
}

/// A size-limited tmpfs mounted over a directory, unmounted (lazily: the broker may
/// still hold files) on drop. `None`, with the reason printed, where mounting is not
/// permitted.
struct SmallFs {
    dir: PathBuf,
}

impl SmallFs {
    fn mount(dir: &Path, size: &str) -> Option<SmallFs> {
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(SmallFs {
                dir: dir.to_path_buf(),
            }),
            Ok(o) => {
                eprintln!(
                    "SKIPPED disk-full test: mount tmpfs failed: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED disk-full test: cannot run mount: {e}");
                None
            }
        }
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}

fn code_of(e: weir_client::blocking::ClientError) -> i16 {
    match e {
        weir_client::blocking::ClientError::Kafka { code, .. } => code,
        other => panic!("expected a Kafka error code, got {other:?}"),
    }
}

/// Read `[0, end)` of `topic`-0 and check every record against `expected` (offset -> index).
fn read_back(c: &mut Client, topic: &str, acked: &[(i64, usize)]) {
    let mut scratch = Vec::new();
    for &(offset, first) in acked {
        let (_, bytes) = c.fetch(topic, 0, offset, 1 << 20, 0).unwrap();
        let range = BatchWalker::new(&bytes)
            .next()
            .expect("an acked batch is readable");
        let batch = &bytes[range];
        assert_eq!(validate(batch).unwrap().base_offset, offset);
        let mut i = first;
        weir_protocol::records::for_each_record(batch, &mut scratch, 1 << 24, |r| {
            assert_eq!(r.value, Some(&record_value(i)[..]), "record {i} intact");
            i += 1;
        })
        .unwrap();
    }
}

#[test]
fn given_a_full_disk_when_producing_should_answer_storage_error_keep_reads_and_resume_when_space_returns() {
    let mut broker = Broker::start(&["--shards", "1"]);
    broker.stop();
    let data = broker.data_dir();
    std::fs::remove_dir_all(&data).unwrap();
    let Some(_fs) = SmallFs::mount(&data, "8m") else {
        return;
    };
    broker.start_again();
    let mut c = broker.client();
    c.create_topic("full", 1, &[("segment.bytes", "1048576")])
        .unwrap();
    // Most of the space goes to a filler file we can delete later (std::fs: test only).
    let filler = data.join("filler");
    std::fs::write(&filler, vec![1u8; 5 * 1024 * 1024]).unwrap();
    let mut acked = Vec::new();
    let mut next = 0usize;
    let code = loop {
        match c.produce("full", 0, build(next), -1) {
            Ok(offset) => acked.push((offset, next)),
            Err(e) => break code_of(e),
        }
        next += RECORDS_PER_BATCH;
        assert!(next < 100_000, "the disk never filled");
    };
    assert_eq!(code, 56, "KAFKA_STORAGE_ERROR on a full disk");
    eprintln!("disk full after {} acked batches", acked.len());
    // Small batches: zero-ahead pads the log's extending writes. The pads must not cost
    // the data its room: the write that found no room for its zeros went again without them.
    assert!(
        broker.log().contains("no room for a zero-ahead pad"),
        "the full disk was met by a padded write; log:\n{}",
        broker.log()
    );
    // Reads keep working and nothing acked is damaged, while still full.
    let mut reader = broker.client();
    read_back(&mut reader, "full", &acked);
    assert_eq!(code_of(c.produce("full", 0, build(next), -1).unwrap_err()), 56);
    // Space returns: appends resume (the fenced log is reopened, at most once a second).
    std::fs::remove_file(&filler).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let resumed = loop {
        match c.produce("full", 0, build(next), -1) {
            Ok(offset) => break offset,
            Err(e) => assert_eq!(code_of(e), 56),
        }
        assert!(
            std::time::Instant::now() < deadline,
            "appends never resumed after space returned"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    acked.push((resumed, next));
    read_back(&mut reader, "full", &acked);
    // And everything acked survives a restart.
    broker.stop();
    broker.start_again();
    read_back(&mut broker.client(), "full", &acked);
    broker.stop();
}

#[test]
fn given_a_bit_flip_in_a_sealed_segment_when_read_should_refuse_that_batch_and_serve_the_others() {
    // Recovery trusts sealed segments (their index is loaded, not re-scanned): the reader's
    // CRC check is what keeps a rotted batch from ever reaching a consumer.
    let mut broker = stopped_broker_with_data();
    let dir = partition_dir(&broker);
    let sealed = segments(&dir).remove(0);
    let batches = batches_of(&sealed);
    let seed = seed();
    let victim = 1 + seed as usize % (batches.len() - 2);
    let (position, size, base) = batches[victim];
    let mut bytes = std::fs::read(&sealed).unwrap();
    bytes[position + 61 + (seed >> 8) as usize % (size - 61)] ^= 0x10;
    std::fs::write(&sealed, &bytes).unwrap();
    broker.start_again();
    let mut c = broker.client();
    let e = c.fetch(TOPIC, 0, base, 1 << 20, 0).unwrap_err();
    assert_eq!(code_of(e), 56, "a corrupt stored batch is refused, never served");
    let (next_base, next_records) = (batches[victim + 1].2, RECORDS_PER_BATCH as i64);
    let (_, after) = c.fetch(TOPIC, 0, next_base, 1 << 16, 0).unwrap();
    let first = BatchWalker::new(&after)
        .next()
        .expect("the batch after the damage is served");
    let info = validate(&after[first]).unwrap();
    assert_eq!(
        (info.base_offset, info.last_offset() + 1),
        (next_base, next_base + next_records)
    );
    assert!(broker.log().contains("corrupt"), "the refusal is logged");
}
