//! Idempotent producers through the real log: retries answered with their first
//! offsets, gaps and fenced epochs refused, and the state surviving a clean
//! close and a crash across segment rolls (snapshot plus tail scan).

use bytes::Bytes;

use super::producers::SequenceError;
use super::test_support::{batch, data_dir, run, small_config};
use super::{LogError, Offset, PartitionLog};

/// A batch of `records` records from producer `pid` at `epoch`, first sequence `seq`.
fn idempotent(records: usize, pid: i64, epoch: i16, seq: i32) -> Bytes {
    let mut b = batch(records, 300, 1_000, seq as u8).to_vec();
    b[43..51].copy_from_slice(&pid.to_be_bytes());
    b[51..53].copy_from_slice(&epoch.to_be_bytes());
    b[53..57].copy_from_slice(&seq.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(b)
}

/// Two producers, 3 records per batch, `count` batches each, interleaved.
/// Returns each batch's (pid, first sequence, base offset).
async fn append_two_producers(log: &PartitionLog, count: i32) -> Vec<(i64, i32, Offset)> {
    let mut out = Vec::new();
    for i in 0..count {
        for pid in [11, 12] {
            let a = log.append(idempotent(3, pid, 0, i * 3)).await.expect("append");
            out.push((pid, i * 3, a.base_offset));
        }
    }
    out
}

/// The last five batches of each producer, retried, get their first offsets and
/// store nothing; the next in sequence appends; a gap and an old epoch are refused.
async fn check_retries(log: &PartitionLog, appended: &[(i64, i32, Offset)], count: i32) {
    let end = log.log_end_offset();
    for &(pid, seq, base) in appended.iter().rev().take(10) {
        let again = log.append(idempotent(3, pid, 0, seq)).await.expect("retry");
        assert_eq!(again.base_offset, base, "producer {pid} seq {seq}");
    }
    assert_eq!(log.log_end_offset(), end, "retries stored nothing");
    let gap = log.append(idempotent(1, 11, 0, count * 3 + 1)).await;
    assert!(
        matches!(gap, Err(LogError::Sequence(SequenceError::OutOfOrder { .. }))),
        "{gap:?}"
    );
    log.append(idempotent(1, 11, 1, 0))
        .await
        .expect("a new epoch starts at 0");
    let stale = log.append(idempotent(1, 11, 0, count * 3)).await;
    assert!(
        matches!(stale, Err(LogError::Sequence(SequenceError::StaleEpoch { .. }))),
        "{stale:?}"
    );
    let next = log
        .append(idempotent(1, 12, 0, count * 3))
        .await
        .expect("next in sequence");
    assert_eq!(next.base_offset, end.next());
}

#[test]
fn given_idempotent_batches_when_retried_after_a_clean_reopen_should_answer_first_offsets() {
    let dir = data_dir();
    let path = dir.path().join("p0");
    run(async move {
        let log = PartitionLog::open(path.clone(), small_config())
            .await
            .expect("open");
        let appended = append_two_producers(&log, 30).await;
        assert!(log.segment_count() > 3, "rolled: {}", log.segment_count());
        log.close().await.expect("close");
        let log = PartitionLog::open(path, small_config()).await.expect("reopen");
        check_retries(&log, &appended, 30).await;
        log.close().await.expect("close");
    });
}

#[test]
fn given_idempotent_batches_when_retried_after_a_crash_should_answer_first_offsets() {
    let dir = data_dir();
    let path = dir.path().join("p0");
    let appended = run({
        let path = path.clone();
        async move {
            let log = PartitionLog::open(path, small_config()).await.expect("open");
            let appended = append_two_producers(&log, 30).await;
            log.flush().await.expect("flush");
            // Let the roll snapshots' blocking-pool writes finish, then crash.
            glommio::timer::sleep(std::time::Duration::from_millis(200)).await;
            drop(log);
            appended
        }
    });
    run(async move {
        let log = PartitionLog::open(path, small_config()).await.expect("reopen");
        check_retries(&log, &appended, 30).await;
        log.close().await.expect("close");
    });
}

#[test]
fn given_a_snapshot_past_the_recovered_end_when_opening_should_delete_it_not_trust_it() {
    let dir = data_dir();
    let path = dir.path().join("p0");
    run(async move {
        let log = PartitionLog::open(path.clone(), small_config())
            .await
            .expect("open");
        let appended = append_two_producers(&log, 4).await;
        log.close().await.expect("close");
        // A snapshot from a future the crash took away: producer 11's batches at wrong offsets.
        let mut stale = super::producers::ProducerStates::default();
        let b = super::producers::ProducerBatch {
            producer_id: 11,
            epoch: 0,
            first_sequence: 0,
            last_offset_delta: 2,
            timestamp_ms: 1_000,
            transactional: false,
        };
        stale.record(&b, Offset(5_000), Offset(5_002));
        let end = appended.last().unwrap().2.plus(3);
        let future = path.join(format!("{:020}.producers", end.0 + 100));
        std::fs::write(&future, stale.encode(Offset(end.0 + 100))).unwrap();
        let log = PartitionLog::open(path.clone(), small_config())
            .await
            .expect("reopen");
        let names: Vec<_> = std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            !future.exists(),
            "the snapshot past the end is gone: {names:?} end {end:?}"
        );
        let again = log.append(idempotent(3, 11, 0, 0)).await.expect("retry");
        assert_eq!(
            again.base_offset, appended[0].2,
            "answered from the log, not the stale snapshot"
        );
        log.close().await.expect("close");
    });
}

#[test]
fn given_a_clean_close_without_idempotent_producers_when_reopening_should_scan_nothing() {
    let dir = data_dir();
    let path = dir.path().join("p0");
    run(async move {
        let log = PartitionLog::open(path.clone(), small_config())
            .await
            .expect("open");
        for i in 0..5 {
            log.append(batch(3, 300, 1_000, i)).await.expect("plain append");
        }
        let end = log.log_end_offset();
        log.close().await.expect("close");
        // The clean close left a snapshot at the log end, so opening reads no batch.
        assert!(path.join(format!("{:020}.producers", end.0)).exists());
        let log = PartitionLog::open(path, small_config()).await.expect("reopen");
        assert!(log.producers().is_empty());
        log.close().await.expect("close");
    });
}
