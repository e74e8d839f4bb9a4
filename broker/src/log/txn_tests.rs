//! Transactions through the real log: begin, commit and abort by markers, the
//! last stable offset with interleaved producers, fencing by a higher-epoch
//! marker, repeated markers, the aborted index across a crash with a torn
//! tail, and retention removing `.txnindex` files.

use bytes::Bytes;

use super::producers::{AbortedTxn, SequenceError};
use super::test_support::{batch, data_dir, run, small_config};
use super::{LogConfig, LogError, Offset, PartitionLog, TxnMarker};

/// A batch of `records` records from producer `pid` at `epoch`, first
/// sequence `seq`, transactional when `txn`; its values are filled with `fill`.
fn producer_batch(records: usize, pid: i64, epoch: i16, seq: i32, txn: bool, fill: u8) -> Bytes {
    let mut b = batch(records, 300, 1_000, fill).to_vec();
    if txn {
        b[21..23].copy_from_slice(&0x10i16.to_be_bytes());
    }
    b[43..51].copy_from_slice(&pid.to_be_bytes());
    b[51..53].copy_from_slice(&epoch.to_be_bytes());
    b[53..57].copy_from_slice(&seq.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(b)
}

fn marker(pid: i64, epoch: i16, commit: bool) -> TxnMarker {
    TxnMarker {
        producer_id: pid,
        producer_epoch: epoch,
        commit,
        coordinator_epoch: 0,
    }
}

/// Append `m`, expecting it to be written; its offset.
async fn end_txn(log: &PartitionLog, m: TxnMarker) -> Offset {
    let a = log.append_marker(m).await.expect("marker").expect("written");
    assert_eq!(a.base_offset, a.last_offset, "one record");
    a.base_offset
}

/// Every batch's (base offset, producer id, control) from `from` on, in log order.
async fn read_all(log: &PartitionLog, from: Offset) -> Vec<(i64, i64, bool)> {
    let mut out = Vec::new();
    let mut at = from;
    while at < log.log_end_offset() {
        let read = log.read(at, 1 << 20).await.expect("read");
        for b in &read.batches {
            let h = weir_protocol::record_batch::header(b).expect("header");
            let control = h.attributes.get() & 0x20 != 0;
            out.push((h.base_offset.get(), h.producer_id.get(), control));
            at = Offset(h.base_offset.get()).plus(h.last_offset_delta.get()).next();
        }
    }
    out
}

fn aborted(log: &PartitionLog, from: i64, upper: i64) -> Vec<AbortedTxn> {
    let mut out = Vec::new();
    log.aborted_txns(Offset(from), Offset(upper), &mut out);
    out
}

#[test]
fn given_a_transaction_when_committed_or_aborted_should_move_the_lso_and_index_only_aborts() {
    let dir = data_dir();
    let path = dir.path().join("p0");
    run(async move {
        let log = PartitionLog::open(path, small_config()).await.expect("open");
        log.append(batch(1, 10, 1_000, 0)).await.expect("plain");
        assert_eq!(log.last_stable_offset(), Offset(1), "no transaction: the log end");
        let first = log
            .append(producer_batch(2, 7, 0, 0, true, 1))
            .await
            .expect("txn data");
        log.append(producer_batch(2, 7, 0, 2, true, 2))
            .await
            .expect("txn data");
        assert_eq!(
            log.last_stable_offset(),
            first.base_offset,
            "the txn's first offset"
        );
        assert_eq!(log.producers()[0].txn_first_offset, Some(Offset(1)));
        let commit = end_txn(&log, marker(7, 0, true)).await;
        assert_eq!(log.last_stable_offset(), commit.next());
        assert!(aborted(&log, 0, 100).is_empty(), "a commit is not indexed");
        // Same epoch: the sequence continues across transactions.
        let second = log
            .append(producer_batch(1, 7, 0, 4, true, 3))
            .await
            .expect("txn 2");
        let abort = end_txn(&log, marker(7, 0, false)).await;
        let want = AbortedTxn {
            producer_id: 7,
            first_offset: second.base_offset,
            last_offset: abort,
            last_stable_offset: abort.next(),
        };
        assert_eq!(aborted(&log, 0, abort.next().0), vec![want]);
        assert!(
            aborted(&log, abort.next().0, 100).is_empty(),
            "ends before the range"
        );
        let order = read_all(&log, Offset(0)).await;
        let want_order = vec![
            (0, -1, false),
            (1, 7, false),
            (3, 7, false),
            (5, 7, true),
            (6, 7, false),
            (7, 7, true),
        ];
        assert_eq!(order, want_order, "batches in append order");
        // A non-transactional batch inside a transaction is refused (Kafka's INVALID_TXN_STATE).
        log.append(producer_batch(1, 7, 0, 5, true, 4))
            .await
            .expect("txn 3");
        let plain = log.append(producer_batch(1, 7, 0, 6, false, 5)).await;
        assert!(
            matches!(
                plain,
                Err(LogError::Sequence(SequenceError::InvalidTxnState { .. }))
            ),
            "{plain:?}"
        );
        log.close().await.expect("close");
    });
}

#[test]
fn given_two_interleaved_producers_when_they_end_should_hold_the_lso_at_the_oldest_open_one() {
    let dir = data_dir();
    let path = dir.path().join("p0");
    run(async move {
        let log = PartitionLog::open(path, small_config()).await.expect("open");
        let a = log
            .append(producer_batch(1, 1, 0, 0, true, 1))
            .await
            .expect("a")
            .base_offset;
        let b = log
            .append(producer_batch(1, 2, 0, 0, true, 2))
            .await
            .expect("b")
            .base_offset;
        log.append(producer_batch(1, 1, 0, 1, true, 3))
            .await
            .expect("a again");
        log.append(batch(1, 10, 1_000, 4)).await.expect("plain");
        assert_eq!(log.last_stable_offset(), a);
        let b_end = end_txn(&log, marker(2, 0, false)).await;
        assert_eq!(log.last_stable_offset(), a, "a still open");
        let entry = aborted(&log, 0, 100);
        assert_eq!(entry.len(), 1);
        assert_eq!(entry[0].last_stable_offset, a, "a was open when b aborted");
        assert_eq!((entry[0].first_offset, entry[0].last_offset), (b, b_end));
        end_txn(&log, marker(1, 0, true)).await;
        assert_eq!(log.last_stable_offset(), log.log_end_offset());
        log.close().await.expect("close");
    });
}

#[test]
fn given_a_higher_epoch_abort_when_the_old_epoch_writes_should_fence_it_and_restart_sequences() {
    let dir = data_dir();
    let path = dir.path().join("p0");
    run(async move {
        let log = PartitionLog::open(path, small_config()).await.expect("open");
        log.append(producer_batch(2, 9, 3, 0, true, 1))
            .await
            .expect("txn");
        end_txn(&log, marker(9, 4, false)).await;
        assert_eq!(
            log.producers()[0].epoch,
            4,
            "the marker's epoch is the producer's now"
        );
        let zombie = log.append(producer_batch(1, 9, 3, 2, true, 2)).await;
        assert!(
            matches!(zombie, Err(LogError::Sequence(SequenceError::StaleEpoch { .. }))),
            "{zombie:?}"
        );
        let late = log.append(producer_batch(1, 9, 4, 2, true, 3)).await;
        assert!(
            matches!(
                late,
                Err(LogError::Sequence(SequenceError::OutOfOrder { expected: 0, .. }))
            ),
            "{late:?}"
        );
        log.append(producer_batch(1, 9, 4, 0, true, 4))
            .await
            .expect("new epoch at 0");
        let stale_marker = log.append_marker(marker(9, 3, true)).await;
        assert!(
            matches!(
                stale_marker,
                Err(LogError::Sequence(SequenceError::StaleEpoch { .. }))
            ),
            "{stale_marker:?}"
        );
        log.close().await.expect("close");
    });
}

#[test]
fn given_a_marker_sent_again_when_no_transaction_is_open_should_write_nothing() {
    let dir = data_dir();
    let path = dir.path().join("p0");
    run(async move {
        let log = PartitionLog::open(path, small_config()).await.expect("open");
        assert_eq!(
            log.append_marker(marker(5, 0, true)).await.expect("unknown"),
            None
        );
        log.append(producer_batch(1, 5, 0, 0, true, 1))
            .await
            .expect("txn");
        end_txn(&log, marker(5, 0, false)).await;
        let end = log.log_end_offset();
        assert_eq!(log.append_marker(marker(5, 0, false)).await.expect("again"), None);
        assert_eq!(
            log.append_marker(marker(5, 1, true)).await.expect("other kind"),
            None
        );
        assert_eq!(log.log_end_offset(), end, "nothing written");
        assert_eq!(aborted(&log, 0, 100).len(), 1);
        log.close().await.expect("close");
    });
}

/// Producer 1 aborts in the first segment, producer 2 stays open across a
/// roll, producer 4 aborts in the active segment, producer 3 commits last.
async fn crash_scenario(log: &PartitionLog) -> (Offset, Offset, Offset) {
    for seq in 0..3 {
        log.append(producer_batch(3, 1, 0, seq * 3, true, 1))
            .await
            .expect("p1");
    }
    end_txn(log, marker(1, 0, false)).await;
    let p2 = log
        .append(producer_batch(1, 2, 0, 0, true, 2))
        .await
        .expect("p2")
        .base_offset;
    for i in 0..24 {
        log.append(batch(3, 300, 1_000, i)).await.expect("plain");
    }
    assert!(log.segment_count() > 1, "rolled");
    let p4 = log
        .append(producer_batch(1, 4, 0, 0, true, 4))
        .await
        .expect("p4")
        .base_offset;
    let p4_end = end_txn(log, marker(4, 0, false)).await;
    log.append(producer_batch(1, 3, 0, 0, true, 3)).await.expect("p3");
    end_txn(log, marker(3, 0, true)).await;
    let _ = p4;
    (p2, p4, p4_end)
}

#[test]
fn given_a_crash_with_a_torn_tail_when_reopening_should_rebuild_open_transactions_and_aborts() {
    let dir = data_dir();
    let path = dir.path().join("p0");
    let (p2, p4, p4_end, active_base, active_end) = run({
        let path = path.clone();
        async move {
            let log = PartitionLog::open(path, small_config()).await.expect("open");
            let (p2, p4, p4_end) = crash_scenario(&log).await;
            log.flush().await.expect("flush");
            // Let the roll snapshots' blocking-pool writes finish, then crash.
            glommio::timer::sleep(std::time::Duration::from_millis(200)).await;
            let (base, end) = {
                let st = log.shared.state.borrow();
                let active = st.segments.back().expect("active");
                (active.base_offset, active.end)
            };
            drop(log);
            (p2, p4, p4_end, base, end)
        }
    });
    // Tear producer 3's commit marker (the last batch) in half.
    let segment = path.join(format!("{:020}.log", active_base.0));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .expect("segment");
    file.set_len(active_end.0 - 40).expect("truncate");
    assert!(
        path.join(format!("{:020}.txnindex", 0)).exists(),
        "the sealed segment's index"
    );
    run(async move {
        let log = PartitionLog::open(path, small_config()).await.expect("reopen");
        assert_eq!(log.last_stable_offset(), p2, "producer 2 still open");
        let p3 = log
            .producers()
            .into_iter()
            .find(|p| p.producer_id == 3)
            .expect("p3");
        assert!(
            p3.txn_first_offset.is_some(),
            "the torn commit reopened producer 3's txn"
        );
        let all = aborted(&log, 0, log.log_end_offset().0);
        let ids: Vec<i64> = all.iter().map(|a| a.producer_id).collect();
        assert_eq!(ids, vec![1, 4], "in marker order");
        assert_eq!((all[0].first_offset, all[0].last_offset), (Offset(0), Offset(9)));
        assert_eq!((all[1].first_offset, all[1].last_offset), (p4, p4_end));
        assert_eq!(all[1].last_stable_offset, p2);
        // The rebuilt state goes on: producer 3 commits again.
        end_txn(&log, marker(3, 0, true)).await;
        log.close().await.expect("close");
        let log = PartitionLog::open(log.shared.dir.clone(), small_config())
            .await
            .expect("clean reopen");
        let ids: Vec<i64> = aborted(&log, 0, log.log_end_offset().0)
            .iter()
            .map(|a| a.producer_id)
            .collect();
        assert_eq!(ids, vec![1, 4], "the same after a clean close");
        log.close().await.expect("close");
    });
}

#[test]
fn given_retention_when_deleting_a_segment_should_delete_its_txnindex_and_entries() {
    let dir = data_dir();
    let path = dir.path().join("p0");
    run(async move {
        let config = LogConfig {
            retention_bytes: Some(1),
            ..small_config()
        };
        let log = PartitionLog::open(path.clone(), config).await.expect("open");
        log.append(producer_batch(1, 1, 0, 0, true, 1))
            .await
            .expect("txn");
        end_txn(&log, marker(1, 0, false)).await;
        for i in 0..24 {
            log.append(batch(3, 300, 1_000, i)).await.expect("plain");
        }
        log.flush().await.expect("flush");
        let index = path.join(format!("{:020}.txnindex", 0));
        assert!(index.exists(), "written at the roll");
        assert_eq!(aborted(&log, 0, 5).len(), 1);
        let deleted = log.enforce_retention(i64::MAX / 2).await.expect("retention");
        assert!(deleted > 0);
        assert!(!index.exists(), "deleted with its segment");
        assert!(aborted(&log, 0, log.log_end_offset().0).is_empty());
        log.close().await.expect("close");
    });
}
