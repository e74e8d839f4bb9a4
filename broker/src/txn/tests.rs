//! State machine and transaction log: transitions as Kafka's, encode/decode,
//! torn tails, compaction on open.

use std::collections::HashMap;

use super::record::{decode_record, encode_record, scan, TxnRecord, FILE_MAGIC};
use super::state::{TxnError, TxnMetadata, TxnState, EPOCH_MAX};
use super::store::{snapshot, Sync, TxnStore, FILE_NAME};

fn tp(t: &str, p: i32) -> (String, i32) {
    (t.to_string(), p)
}

#[test]
fn given_an_empty_txn_when_partitions_are_added_should_go_ongoing_and_end_through_prepare() {
    let m = TxnMetadata::new(7, 60_000, 1);
    let ongoing = m.add(&[tp("a", 0)], &[], 5).unwrap().unwrap();
    assert_eq!(ongoing.state, TxnState::Ongoing);
    assert_eq!(ongoing.start_ms, 5);
    assert!(
        ongoing.add(&[tp("a", 0)], &[], 6).unwrap().is_none(),
        "already added"
    );
    let prepared = ongoing.end(true, 7).unwrap().unwrap();
    assert_eq!(prepared.state, TxnState::PrepareCommit);
    assert_eq!(prepared.add(&[tp("b", 0)], &[], 8), Err(TxnError::Concurrent));
    assert_eq!(prepared.end(true, 8), Err(TxnError::Concurrent));
    assert_eq!(prepared.end(false, 8), Err(TxnError::InvalidState));
    let done = prepared.complete(9);
    assert_eq!(done.state, TxnState::CompleteCommit);
    assert!(done.partitions.is_empty());
    assert_eq!(done.end(true, 10), Ok(None), "a retried commit succeeds");
    assert_eq!(done.end(false, 10), Err(TxnError::InvalidState));
}

#[test]
fn given_no_transaction_when_ended_should_be_invalid_txn_state() {
    let m = TxnMetadata::new(7, 60_000, 1);
    assert_eq!(m.end(true, 2), Err(TxnError::InvalidState));
    assert_eq!(m.end(false, 2), Err(TxnError::InvalidState));
}

#[test]
fn given_a_producer_when_checked_should_tell_unknown_from_fenced() {
    let m = TxnMetadata::new(7, 60_000, 1).bump(60_000, 2).unwrap();
    assert_eq!(m.epoch, 1);
    assert_eq!(m.check_producer(8, 1), Err(TxnError::UnknownProducer));
    assert_eq!(m.check_producer(7, 0), Err(TxnError::Fenced));
    assert_eq!(m.check_producer(7, 1), Ok(()));
    assert_eq!(TxnError::Fenced.code(true), 90);
    assert_eq!(TxnError::Fenced.code(false), 47);
}

#[test]
fn given_an_ongoing_txn_when_fenced_should_prepare_abort_at_the_next_epoch() {
    let m = TxnMetadata::new(7, 60_000, 1)
        .add(&[tp("a", 0)], &[], 2)
        .unwrap()
        .unwrap();
    let aborting = m.fence_and_abort(3);
    assert_eq!((aborting.state, aborting.epoch), (TxnState::PrepareAbort, 1));
    assert_eq!(aborting.complete(4).state, TxnState::CompleteAbort);
}

#[test]
fn given_an_exhausted_epoch_when_bumped_should_ask_for_a_new_producer_id() {
    let mut m = TxnMetadata::new(7, 60_000, 1);
    m.epoch = EPOCH_MAX;
    assert!(m.bump(60_000, 2).is_none());
}

fn sample() -> TxnMetadata {
    let mut m = TxnMetadata::new(42, 30_000, 100);
    m = m
        .add(&[tp("t", 1), tp("u", 0)], &["g".to_string()], 200)
        .unwrap()
        .unwrap();
    m
}

#[test]
fn given_records_when_encoded_should_decode_to_the_same() {
    for record in [
        TxnRecord::State {
            txn_id: "tx".into(),
            meta: sample(),
        },
        TxnRecord::Remove { txn_id: "tx".into() },
    ] {
        let mut out = Vec::new();
        encode_record(&record, &mut out);
        assert_eq!(decode_record(&out[8..]), Some(record));
    }
}

#[test]
fn given_garbage_when_decoded_should_not_panic() {
    for len in 0..64 {
        let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 1) as u8).collect();
        let _ = decode_record(&junk);
        let _ = scan(&junk);
    }
}

#[test]
fn given_a_torn_tail_when_scanned_should_keep_the_whole_records() {
    let mut image = FILE_MAGIC.to_vec();
    let first = TxnRecord::State {
        txn_id: "a".into(),
        meta: sample(),
    };
    encode_record(&first, &mut image);
    let whole = image.len();
    encode_record(&TxnRecord::Remove { txn_id: "a".into() }, &mut image);
    let torn = &image[..image.len() - 1];
    let s = scan(torn).unwrap();
    assert!(s.torn);
    assert_eq!(s.valid_bytes, whole);
    assert_eq!(s.txns.get("a"), Some(&sample()));
    let s = scan(&image).unwrap();
    assert!(!s.torn && s.txns.is_empty());
}

#[test]
fn given_a_flipped_byte_when_scanned_should_stop_there() {
    let mut image = FILE_MAGIC.to_vec();
    encode_record(
        &TxnRecord::State {
            txn_id: "a".into(),
            meta: sample(),
        },
        &mut image,
    );
    let last = image.len() - 1;
    image[last] ^= 0xff;
    let s = scan(&image).unwrap();
    assert!(s.torn && s.txns.is_empty());
    assert_eq!(s.valid_bytes, FILE_MAGIC.len());
    assert!(scan(b"NOTOURS!xxxx").is_err());
}

#[test]
fn given_a_log_when_reopened_should_replay_truncate_and_compact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let mut image = FILE_MAGIC.to_vec();
    for i in 0..200 {
        let mut meta = sample();
        meta.epoch = i;
        let record = TxnRecord::State {
            txn_id: "a".into(),
            meta,
        };
        encode_record(&record, &mut image);
    }
    image.extend_from_slice(&[1, 2, 3]);
    std::fs::write(&path, &image).unwrap();
    let ex = glommio::LocalExecutorBuilder::default().make().unwrap();
    let dir_path = dir.path().to_path_buf();
    let txns = ex.run(async move {
        let (store, txns) = TxnStore::open(&dir_path, 1 << 20).await.unwrap();
        assert!(store.file_bytes() < 200, "compacted to one record");
        let record = TxnRecord::Remove { txn_id: "a".into() };
        store.append(&[record], Sync::Durable).await.unwrap();
        store.close().await;
        txns
    });
    assert_eq!(txns.get("a").map(|m| m.epoch), Some(199));
    let s = scan(&std::fs::read(&path).unwrap()).unwrap();
    assert!(!s.torn && s.txns.is_empty());
    let live: HashMap<String, TxnMetadata> = [("b".to_string(), sample())].into();
    assert_eq!(scan(&snapshot(&live)).unwrap().txns, live);
}

/// Many concurrent durable appends (sharing syncs) and lazy ones, then a
/// compaction in the middle: after a reopen every id has its last state.
#[test]
fn given_concurrent_durable_and_lazy_appends_with_a_compaction_when_reopened_should_hold_every_last_state() {
    let dir = tempfile::tempdir().unwrap();
    let dir_path = dir.path().to_path_buf();
    let ex = glommio::LocalExecutorBuilder::default().make().unwrap();
    let want: HashMap<String, TxnMetadata> = ex.run(async move {
        let (store, _) = TxnStore::open(&dir_path, 1 << 20).await.unwrap();
        let live = std::rc::Rc::new(std::cell::RefCell::new(HashMap::new()));
        let mut tasks = Vec::new();
        for i in 0..40u16 {
            let (s, l) = (store.clone(), live.clone());
            tasks.push(glommio::spawn_local(async move {
                let (store, live) = (s, l);
                let mut meta = sample();
                meta.epoch = i as i16;
                let id = format!("t{i}");
                let record = TxnRecord::State {
                    txn_id: id.clone(),
                    meta: meta.clone(),
                };
                let sync = if i % 3 == 0 { Sync::Lazy } else { Sync::Durable };
                store.append(&[record], sync).await.unwrap();
                live.borrow_mut().insert(id, meta);
            }));
            if i == 20 {
                let (s, l) = (store.clone(), live.clone());
                tasks.push(glommio::spawn_local(async move {
                    s.compact(|| l.borrow().clone()).await.unwrap();
                }));
            }
        }
        for t in tasks {
            t.await;
        }
        // One durable append makes the lazy ones before it durable too.
        let last = TxnRecord::State {
            txn_id: "last".into(),
            meta: sample(),
        };
        store.append(&[last], Sync::Durable).await.unwrap();
        live.borrow_mut().insert("last".into(), sample());
        store.close().await;
        let want = live.borrow().clone();
        want
    });
    let dir_path = dir.path().to_path_buf();
    let ex = glommio::LocalExecutorBuilder::default().make().unwrap();
    let got = ex.run(async move {
        let (store, txns) = TxnStore::open(&dir_path, 1 << 20).await.unwrap();
        store.close().await;
        txns
    });
    assert_eq!(got, want);
}
