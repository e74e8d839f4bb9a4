//! The transaction coordinator on the wire (issue 11), with Kafka's error codes and never a
//! hang or a closed connection: InitProducerId with a transactional id, AddPartitionsToTxn,
//! EndTxn, transactional Produce verification, fencing, sequence checks, the timeout abort and
//! recovery after a restart (clean stop, kill -9, and a PrepareCommit left in the log).

mod common;

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::Broker;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use weir_client::blocking::Client;
use weir_protocol::builder::BatchBuilder;
use weir_protocol::record_batch::Compression;

const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;
const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
const PRODUCER_FENCED: i16 = 90;
const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const OPERATION_NOT_ATTEMPTED: i16 = 55;
const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// (error, producer id, epoch) of InitProducerId v4.
fn init(c: &mut Client, txn_id: &str, timeout_ms: i32) -> (i16, i64, i16) {
    init_known(c, txn_id, timeout_ms, -1, -1)
}

/// InitProducerId v4 with the producer id and epoch the client had (KIP-360).
fn init_known(c: &mut Client, txn_id: &str, timeout_ms: i32, pid: i64, epoch: i16) -> (i16, i64, i16) {
    let req = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(s(txn_id))))
        .with_transaction_timeout_ms(timeout_ms)
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch);
    let r = c.call_at(4, req).unwrap();
    (r.error_code, r.producer_id.0, r.producer_epoch)
}

/// Per-partition codes of AddPartitionsToTxn at `version`.
fn add(
    c: &mut Client,
    version: i16,
    txn_id: &str,
    pid: i64,
    epoch: i16,
    topic: &str,
    parts: &[i32],
) -> Vec<i16> {
    let req = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(s(txn_id)))
        .with_v3_and_below_producer_id(ProducerId(pid))
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partitions(parts.to_vec())]);
    let r = c.call_at(version, req).unwrap();
    r.results_by_topic_v3_and_below
        .iter()
        .flat_map(|t| t.results_by_partition.iter().map(|p| p.partition_error_code))
        .collect()
}

fn end(c: &mut Client, version: i16, txn_id: &str, pid: i64, epoch: i16, commit: bool) -> i16 {
    let req = EndTxnRequest::default()
        .with_transactional_id(TransactionalId(s(txn_id)))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_committed(commit);
    c.call_at(version, req)
        .map(|r| r.error_code)
        .unwrap_or_else(|e| panic!("EndTxn v{version}: {e}"))
}

#[derive(Debug)]
struct Described {
    code: i16,
    state: String,
    pid: i64,
    epoch: i16,
    partitions: Vec<(String, i32)>,
}

fn describe(c: &mut Client, txn_id: &str) -> Described {
    let req = DescribeTransactionsRequest::default().with_transactional_ids(vec![TransactionalId(s(txn_id))]);
    let r = c.call_at(0, req).unwrap();
    let t = &r.transaction_states[0];
    Described {
        code: t.error_code,
        state: t.transaction_state.to_string(),
        pid: t.producer_id.0,
        epoch: t.producer_epoch,
        partitions: t
            .topics
            .iter()
            .flat_map(|d| d.partitions.iter().map(|p| (d.topic.0.to_string(), *p)))
            .collect(),
    }
}

/// Three records from `pid`/`epoch` at `seq`, with the transactional bit set
/// (the builder makes idempotent batches: set bit 4 and recompute the CRC).
fn txn_batch(pid: i64, epoch: i16, seq: i32) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None).with_producer(pid, epoch, seq);
    for i in 0..3 {
        b.push(1_000, None, Some(format!("{}", seq + i).as_bytes()), &[]);
    }
    let mut out = BytesMut::new();
    b.finish_into(&mut out).unwrap();
    let attributes = i16::from_be_bytes([out[21], out[22]]) | (1 << 4);
    out[21..23].copy_from_slice(&attributes.to_be_bytes());
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out.freeze()
}

/// (error, base offset) of a Produce v9 with `txn_id` (None: not transactional).
fn produce(c: &mut Client, txn_id: Option<&str>, topic: &str, partition: i32, batch: Bytes) -> (i16, i64) {
    let req = ProduceRequest::default()
        .with_transactional_id(txn_id.map(|t| TransactionalId(s(t))))
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(s(topic)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch))])]);
    let r = c.call_at(9, req).unwrap();
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn given_unknown_producers_or_bad_requests_when_sent_should_get_kafkas_errors() {
    let broker = Broker::start(&["--shards", "2"]);
    let mut c = broker.client();
    c.create_topic("t", 2, &[]).unwrap();
    assert_eq!(
        add(&mut c, 3, "never", 5, 0, "t", &[0]),
        vec![INVALID_PRODUCER_ID_MAPPING]
    );
    assert_eq!(end(&mut c, 3, "never", 5, 0, true), INVALID_PRODUCER_ID_MAPPING);
    assert_eq!(init(&mut c, "tx", 900_001).0, INVALID_TRANSACTION_TIMEOUT);
    let (code, pid, epoch) = init(&mut c, "tx", 60_000);
    assert_eq!((code, epoch), (0, 0));
    // KIP-360: a known producer bumps its own epoch; another epoch or id is fenced; an
    // unknown transactional id is created whatever producer id the client had.
    assert_eq!(init_known(&mut c, "tx", 60_000, pid, 3).0, PRODUCER_FENCED);
    assert_eq!(init_known(&mut c, "tx", 60_000, pid + 100, 0).0, PRODUCER_FENCED);
    let (code, pid, epoch) = init_known(&mut c, "tx", 60_000, pid, 0);
    assert_eq!((code, epoch), (0, 1));
    assert_eq!(init_known(&mut c, "kip360", 60_000, 999_999, 4).0, 0);
    assert_eq!(
        end(&mut c, 3, "tx", pid, epoch, true),
        INVALID_TXN_STATE,
        "no transaction"
    );
    assert_eq!(
        add(&mut c, 3, "tx", pid + 1, epoch, "t", &[0]),
        vec![INVALID_PRODUCER_ID_MAPPING]
    );
    assert_eq!(
        add(&mut c, 3, "tx", pid, epoch, "t", &[0, 7]),
        vec![OPERATION_NOT_ATTEMPTED, UNKNOWN_TOPIC_OR_PARTITION]
    );
    assert_eq!(describe(&mut c, "nope").code, TRANSACTIONAL_ID_NOT_FOUND);
    // A transactional batch without a transactional id.
    assert_eq!(
        produce(&mut c, None, "t", 0, txn_batch(pid, epoch, 0)).0,
        42,
        "INVALID_REQUEST"
    );
    let fc = FindCoordinatorRequest::default()
        .with_key(s("tx"))
        .with_key_type(1);
    let r = c.call_at(3, fc).unwrap();
    assert_eq!(r.error_code, 0);
    assert!(r.port > 0);
    let fc = FindCoordinatorRequest::default()
        .with_key_type(1)
        .with_coordinator_keys(vec![s("tx"), s("other")]);
    let r = c.call_at(4, fc).unwrap();
    assert_eq!(r.coordinators.len(), 2);
    assert!(r.coordinators.iter().all(|k| k.error_code == 0 && k.port > 0));
}

#[test]
fn given_a_transaction_when_committed_or_aborted_should_verify_produce_and_record_the_outcome() {
    let broker = Broker::start(&["--shards", "2"]);
    let mut c = broker.client();
    c.create_topic("t", 3, &[]).unwrap();
    let (_, pid, epoch) = init(&mut c, "happy", 60_000);
    assert_eq!(add(&mut c, 3, "happy", pid, epoch, "t", &[0, 1]), vec![0, 0]);
    let d = describe(&mut c, "happy");
    assert_eq!((d.state.as_str(), d.pid, d.epoch), ("Ongoing", pid, epoch));
    assert_eq!(d.partitions, vec![("t".to_string(), 0), ("t".to_string(), 1)]);
    assert_eq!(
        produce(&mut c, Some("happy"), "t", 0, txn_batch(pid, epoch, 0)),
        (0, 0)
    );
    assert_eq!(
        produce(&mut c, Some("happy"), "t", 2, txn_batch(pid, epoch, 0)).0,
        INVALID_TXN_STATE,
        "a partition not added"
    );
    assert_eq!(
        produce(&mut c, Some("happy"), "t", 0, txn_batch(pid, epoch, 9)).0,
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    assert_eq!(end(&mut c, 3, "happy", pid, epoch, true), 0);
    let d = describe(&mut c, "happy");
    assert_eq!(d.state, "CompleteCommit");
    assert!(d.partitions.is_empty());
    assert_eq!(
        end(&mut c, 3, "happy", pid, epoch, true),
        0,
        "a retried commit succeeds"
    );
    assert_eq!(
        produce(&mut c, Some("happy"), "t", 0, txn_batch(pid, epoch, 3)).0,
        INVALID_TXN_STATE,
        "no transaction is ongoing"
    );
    assert_eq!(add(&mut c, 3, "happy", pid, epoch, "t", &[2]), vec![0]);
    assert_eq!(end(&mut c, 3, "happy", pid, epoch, false), 0);
    assert_eq!(describe(&mut c, "happy").state, "CompleteAbort");
    assert_eq!(end(&mut c, 3, "happy", pid, epoch, true), INVALID_TXN_STATE);
    let list = c
        .call_at(1, ListTransactionsRequest::default().with_duration_filter(-1))
        .unwrap();
    assert!(
        list.transaction_states
            .iter()
            .any(|t| t.transactional_id.0.as_str() == "happy"
                && t.transaction_state.as_str() == "CompleteAbort")
    );
    let list = c
        .call_at(
            0,
            ListTransactionsRequest::default().with_state_filters(vec![s("Ongoing"), s("Bogus")]),
        )
        .unwrap();
    assert!(list.transaction_states.is_empty());
    assert_eq!(list.unknown_state_filters, vec![s("Bogus")]);
}

#[test]
fn given_a_second_init_when_the_first_producer_continues_should_fence_it() {
    let broker = Broker::start(&["--shards", "2"]);
    let mut c = broker.client();
    c.create_topic("z", 1, &[]).unwrap();
    let (_, pid, old) = init(&mut c, "zombie", 60_000);
    assert_eq!(add(&mut c, 3, "zombie", pid, old, "z", &[0]), vec![0]);
    assert_eq!(
        produce(&mut c, Some("zombie"), "z", 0, txn_batch(pid, old, 0)).0,
        0
    );
    let (code, pid2, new) = init(&mut c, "zombie", 60_000);
    assert_eq!(code, 0);
    assert_eq!(pid2, pid);
    assert!(
        new > old + 1,
        "the ongoing transaction was aborted at a fencing epoch: {new}"
    );
    let d = describe(&mut c, "zombie");
    assert_eq!((d.state.as_str(), d.epoch), ("Empty", new));
    assert_eq!(
        add(&mut c, 3, "zombie", pid, old, "z", &[0]),
        vec![PRODUCER_FENCED]
    );
    assert_eq!(
        add(&mut c, 1, "zombie", pid, old, "z", &[0]),
        vec![INVALID_PRODUCER_EPOCH]
    );
    assert_eq!(end(&mut c, 3, "zombie", pid, old, true), PRODUCER_FENCED);
    assert_eq!(
        produce(&mut c, Some("zombie"), "z", 0, txn_batch(pid, old, 3)).0,
        INVALID_PRODUCER_EPOCH
    );
    assert_eq!(add(&mut c, 3, "zombie", pid, new, "z", &[0]), vec![0]);
    assert_eq!(end(&mut c, 3, "zombie", pid, new, true), 0);
}

#[test]
fn given_a_transaction_past_its_timeout_when_the_timer_runs_should_abort_and_fence_it() {
    let broker = Broker::start(&["--shards", "2"]);
    let mut c = broker.client();
    c.create_topic("slow", 1, &[]).unwrap();
    let (_, pid, epoch) = init(&mut c, "slow", 1_000);
    assert_eq!(add(&mut c, 3, "slow", pid, epoch, "slow", &[0]), vec![0]);
    wait_for("the timeout abort", || {
        describe(&mut c, "slow").state == "CompleteAbort"
    });
    assert_eq!(describe(&mut c, "slow").epoch, epoch + 1);
    assert_eq!(end(&mut c, 3, "slow", pid, epoch, true), PRODUCER_FENCED);
}

/// Append one PrepareCommit record of `txn_id` to its shard's log (the format in docs/format.md).
fn append_prepare_commit(broker: &Broker, txn_id: &str, pid: i64, epoch: i16, topic: &str) {
    let shard = crc32c::crc32c(txn_id.as_bytes()) % 2;
    let path = broker
        .data_dir()
        .join("__transactions")
        .join(format!("shard-{shard}"))
        .join("transactions.log");
    let mut body = vec![1u8];
    body.extend_from_slice(&(txn_id.len() as u16).to_be_bytes());
    body.extend_from_slice(txn_id.as_bytes());
    body.extend_from_slice(&pid.to_be_bytes());
    body.extend_from_slice(&epoch.to_be_bytes());
    body.extend_from_slice(&60_000i32.to_be_bytes());
    body.push(2); // PrepareCommit
    body.extend_from_slice(&1i64.to_be_bytes());
    body.extend_from_slice(&1i64.to_be_bytes());
    body.extend_from_slice(&1u32.to_be_bytes());
    body.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    body.extend_from_slice(topic.as_bytes());
    body.extend_from_slice(&0i32.to_be_bytes());
    body.extend_from_slice(&0u32.to_be_bytes());
    let mut image = std::fs::read(&path).unwrap();
    image.extend_from_slice(&(body.len() as u32).to_be_bytes());
    image.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    image.extend_from_slice(&body);
    std::fs::write(&path, image).unwrap();
}

#[test]
fn given_unfinished_transactions_when_the_broker_restarts_should_complete_or_abort_them() {
    let mut broker = Broker::start(&["--shards", "2"]);
    let mut c = broker.client();
    c.create_topic("r", 1, &[]).unwrap();
    let (_, pid, epoch) = init(&mut c, "ongoing", 60_000);
    assert_eq!(add(&mut c, 3, "ongoing", pid, epoch, "r", &[0]), vec![0]);
    let (_, pid_c, epoch_c) = init(&mut c, "committed", 60_000);
    assert_eq!(add(&mut c, 3, "committed", pid_c, epoch_c, "r", &[0]), vec![0]);
    assert_eq!(end(&mut c, 3, "committed", pid_c, epoch_c, true), 0);
    drop(c);
    broker.kill();
    broker.start_again();
    let mut c = broker.client();
    wait_for("recovery's abort", || {
        describe(&mut c, "ongoing").state == "CompleteAbort"
    });
    assert_eq!(describe(&mut c, "ongoing").epoch, epoch + 1, "fenced");
    assert_eq!(describe(&mut c, "committed").state, "CompleteCommit");
    let (_, pid_p, epoch_p) = init(&mut c, "prepared", 60_000);
    drop(c);
    broker.stop();
    append_prepare_commit(&broker, "prepared", pid_p, epoch_p, "r");
    broker.start_again();
    let mut c = broker.client();
    wait_for("recovery's commit", || {
        describe(&mut c, "prepared").state == "CompleteCommit"
    });
    let d = describe(&mut c, "prepared");
    assert_eq!((d.pid, d.epoch), (pid_p, epoch_p));
    // The recovered id works on.
    assert_eq!(add(&mut c, 3, "prepared", pid_p, epoch_p, "r", &[0]), vec![0]);
    assert_eq!(end(&mut c, 3, "prepared", pid_p, epoch_p, false), 0);
}

fn add_offsets(c: &mut Client, txn_id: &str, pid: i64, epoch: i16, group: &str) -> i16 {
    let req = AddOffsetsToTxnRequest::default()
        .with_transactional_id(TransactionalId(s(txn_id)))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_group_id(GroupId(s(group)));
    c.call_at(3, req).unwrap().error_code
}

fn txn_commit(c: &mut Client, txn_id: &str, pid: i64, epoch: i16, group: &str, offset: i64) -> i16 {
    use kafka_protocol::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    let req = TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(s(txn_id)))
        .with_group_id(GroupId(s(group)))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_generation_id(-1)
        .with_topics(vec![TxnOffsetCommitRequestTopic::default()
            .with_name(TopicName(s("o")))
            .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)])]);
    c.call_at(3, req).unwrap().topics[0].partitions[0].error_code
}

/// (error, offset) of partition o/0 in `group`, OffsetFetch v7.
fn fetch_offset(c: &mut Client, group: &str, require_stable: bool) -> (i16, i64) {
    use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(s("o")))
            .with_partition_indexes(vec![0])]))
        .with_require_stable(require_stable);
    let r = c.call_at(7, req).unwrap();
    let p = &r.topics[0].partitions[0];
    (p.error_code, p.committed_offset)
}

#[test]
fn given_transactional_offsets_when_the_transaction_ends_should_be_visible_only_after_commit() {
    const UNSTABLE_OFFSET_COMMIT: i16 = 88;
    let mut broker = Broker::start(&["--shards", "2"]);
    let mut c = broker.client();
    c.create_topic("o", 1, &[]).unwrap();
    let (_, pid, epoch) = init(&mut c, "offs", 60_000);
    assert_eq!(
        txn_commit(&mut c, "offs", pid, epoch, "g1", 5),
        INVALID_TXN_STATE,
        "group not added"
    );
    assert_eq!(add(&mut c, 3, "offs", pid, epoch, "o", &[0]), vec![0]);
    assert_eq!(add_offsets(&mut c, "offs", pid, epoch, "g1"), 0);
    assert_eq!(txn_commit(&mut c, "offs", pid, epoch, "g1", 42), 0);
    assert_eq!(fetch_offset(&mut c, "g1", true), (UNSTABLE_OFFSET_COMMIT, -1));
    assert_eq!(
        fetch_offset(&mut c, "g1", false),
        (0, -1),
        "pending offsets are invisible"
    );
    assert_eq!(end(&mut c, 3, "offs", pid, epoch, true), 0);
    assert_eq!(fetch_offset(&mut c, "g1", true), (0, 42));
    assert_eq!(add_offsets(&mut c, "offs", pid, epoch, "g1"), 0);
    assert_eq!(txn_commit(&mut c, "offs", pid, epoch, "g1", 99), 0);
    assert_eq!(end(&mut c, 3, "offs", pid, epoch, false), 0);
    assert_eq!(
        fetch_offset(&mut c, "g1", true),
        (0, 42),
        "aborted offsets are dropped"
    );
    // Pending offsets of a transaction cut by kill -9 are dropped by recovery's abort.
    assert_eq!(add_offsets(&mut c, "offs", pid, epoch, "g1"), 0);
    assert_eq!(txn_commit(&mut c, "offs", pid, epoch, "g1", 77), 0);
    drop(c);
    broker.kill();
    broker.start_again();
    let mut c = broker.client();
    wait_for("recovery's abort", || {
        describe(&mut c, "offs").state == "CompleteAbort"
    });
    assert_eq!(fetch_offset(&mut c, "g1", true), (0, 42));
    assert_eq!(txn_commit(&mut c, "offs", pid, epoch, "g1", 78), PRODUCER_FENCED);
}

/// Run a real client's transactional producer (tests/clients/txn_producer.py): a commit
/// with offset 5 for its group, then an abort with offset 9; the group keeps 5.
fn real_client(client: &str) {
    let python = common::venv_python("confluent_kafka, kafka, aiokafka");
    let broker = Broker::start(&["--shards", "2"]);
    let mut c = broker.client();
    c.create_topic("o", 1, &[]).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/txn_producer.py");
    let group = format!("{client}-group");
    let out = std::process::Command::new(python)
        .args([script, client, &broker.addr(), "o", &group])
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}\nbroker log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        broker.log()
    );
    assert_eq!(stdout.trim(), "done");
    assert_eq!(
        fetch_offset(&mut c, &group, true),
        (0, 5),
        "the aborted offset 9 is dropped"
    );
    let d = describe(&mut c, &format!("{client}-txn"));
    assert_eq!(d.state, "CompleteAbort");
}

#[test]
fn given_confluent_kafkas_transactional_producer_when_it_commits_and_aborts_should_keep_only_the_commit() {
    real_client("confluent");
}

#[test]
fn given_kafka_pythons_transactional_producer_when_it_commits_and_aborts_should_keep_only_the_commit() {
    real_client("kafka-python");
}

#[test]
fn given_aiokafkas_transactional_producer_when_it_commits_and_aborts_should_keep_only_the_commit() {
    real_client("aiokafka");
}
