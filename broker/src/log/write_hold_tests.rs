//! The write hold (`write_hold.rs`) on real files: a partly filled chunk stays in
//! memory for the hold once input runs dry, readable all the while; a full chunk, a
//! sync that is due (acks=all) and a close write at once; a lone batch and no hold
//! write at once.

use std::time::{Duration, Instant};

use super::test_support::{append_many, data_dir, read_to_end, run};
use super::write_hold::set_thread_hold;
use super::{FileReadPath, LogConfig, Offset, PartitionLog};

fn written_end(log: &PartitionLog) -> Offset {
    log.shared.state.borrow().written_end_offset
}

/// Polls until the writer has written everything appended, or `limit` passed.
async fn written_within(log: &PartitionLog, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    while written_end(log) < log.log_end_offset() {
        if started.elapsed() > limit {
            return None;
        }
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
    Some(started.elapsed())
}

#[test]
fn given_a_hold_when_input_runs_dry_should_write_the_chunk_only_after_the_hold_and_serve_reads_meanwhile() {
    let dir = data_dir();
    let path = dir.path().join("p0");
    let appended = run({
        let path = path.clone();
        async move {
            set_thread_hold(Duration::from_millis(400));
            let log = PartitionLog::open(path, LogConfig::default())
                .await
                .expect("open");
            let appended = append_many(&log, 3, 500).await;
            let started = Instant::now();
            glommio::timer::sleep(Duration::from_millis(100)).await;
            // Nothing forced a write: the chunk is held (unless this thread was away
            // for the whole hold, which the elapsed check allows for).
            if started.elapsed() < Duration::from_millis(300) {
                // (The first batch may have gone alone: a hold starts with the second
                // of two batches less than a hold apart.)
                assert!(written_end(&log) < log.log_end_offset(), "held, not written");
            }
            let read = read_to_end(&log, 0, 1 << 20, FileReadPath::Copy, |_, _| {}).await;
            assert_eq!(read, appended, "held batches are readable, in order");
            let waited = written_within(&log, Duration::from_secs(30)).await;
            assert!(waited.is_some(), "the hold ended and the chunk was written");
            appended
        }
    });
    run(async move {
        set_thread_hold(Duration::from_millis(400));
        // Reopened after a drop without close: what was written is on the file.
        let log = PartitionLog::open(path, LogConfig::default())
            .await
            .expect("reopen");
        assert_eq!(log.log_end_offset(), Offset(9));
        let read = read_to_end(&log, 0, 1 << 20, FileReadPath::Copy, |_, _| {}).await;
        assert_eq!(read, appended);
    });
}

#[test]
fn given_a_long_hold_when_a_sync_is_wanted_or_a_chunk_fills_should_write_at_once() {
    let dir = data_dir();
    run({
        let path = dir.path().join("p0");
        async move {
            let hold = Duration::from_secs(60);
            set_thread_hold(hold);
            let log = PartitionLog::open(path.clone(), LogConfig::default())
                .await
                .expect("open");
            // acks=all: the sync writes the held chunk; it does not wait for the hold.
            append_many(&log, 2, 500).await;
            let started = Instant::now();
            log.flush().await.expect("flush");
            assert!(started.elapsed() < hold / 2, "a sync wanted ended the hold");
            assert_eq!(log.durable_end_offset(), log.log_end_offset());
            // More than a chunk (1 MiB): the full chunk is written without a sync.
            let before = written_end(&log);
            append_many(&log, 20, 21_800).await;
            let waited = written_within_some(&log, before, hold / 2).await;
            assert!(waited, "a full chunk was written during the hold");
            // A close writes what is held.
            let last = log.log_end_offset();
            let started = Instant::now();
            log.close().await.expect("close");
            assert!(started.elapsed() < hold / 2, "a close ended the hold");
            let log = PartitionLog::open(path, LogConfig::default())
                .await
                .expect("reopen");
            assert_eq!(log.log_end_offset(), last, "the close wrote the held chunk");
        }
    });
}

/// Polls until the writer has written past `before`, or `limit` passed.
async fn written_within_some(log: &PartitionLog, before: Offset, limit: Duration) -> bool {
    let started = Instant::now();
    while written_end(log) <= before {
        if started.elapsed() > limit {
            return false;
        }
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
    true
}

#[test]
fn given_a_partition_fed_now_and_then_when_a_batch_comes_alone_should_write_it_at_once() {
    let dir = data_dir();
    run({
        let path = dir.path().join("p0");
        async move {
            set_thread_hold(Duration::from_secs(60));
            let log = PartitionLog::open(path, LogConfig::default())
                .await
                .expect("open");
            append_many(&log, 1, 500).await;
            // Within the 60 s hold: one batch alone is not held.
            let waited = written_within(&log, Duration::from_secs(20)).await;
            assert!(
                waited.is_some(),
                "a lone batch is written without waiting out the hold"
            );
        }
    });
}

#[test]
fn given_no_hold_when_input_runs_dry_should_write_at_once() {
    let dir = data_dir();
    run({
        let path = dir.path().join("p0");
        async move {
            set_thread_hold(Duration::ZERO);
            let log = PartitionLog::open(path, LogConfig::default())
                .await
                .expect("open");
            append_many(&log, 3, 500).await;
            // Generous for a loaded machine; with a hold of a minute it would not pass.
            let waited = written_within(&log, Duration::from_secs(20)).await;
            assert!(waited.is_some(), "written without a hold");
        }
    });
}
