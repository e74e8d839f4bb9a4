//! Ordering (issue 18): the records one producer sends to a partition are stored in the
//! order it sent them, whatever the client, the routing mode or the acks. Kafka processes the
//! requests of one connection in order; a broker that runs them concurrently lets an append
//! that waits (a large batch waiting for room under the partition's unwritten-bytes bound)
//! be overtaken by a later, smaller one.
//!
//! Each test starts a 2-shard broker (so single-address mode really forwards, and one
//! connection reaches partitions on both shards), creates a topic of 1, 2 or 8 partitions, and
//! runs one producer, in its client's default configuration, over a plan of records of mixed
//! sizes (100 B to 900 KB, sent as fast as the client takes them, so many requests are in
//! flight). Record i's value starts with "i:". The test then reads every partition back from
//! offset 0 and checks that the numbers are strictly increasing: it counts inversions (a
//! number smaller than the one before it) and compares the whole sequence with the plan's,
//! never sorted sets. With acks=0 nothing reports a loss, so only the order of what arrived
//! is checked.
//!
//! Clients: confluent-kafka and kafka-python (tests/clients/order_producer.py, from the
//! .venv that `make test-deps` makes), kafkajs (tests/clients/order_producer.js, from
//! tests/clients/node_modules) and the project's own client (pipelined Produce requests on
//! one connection). docs/reliability.md ("Ordering") has the cases, what triggers the bug
//! and the inversions measured before the fix.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::Broker;
use weir_client::blocking::Client;
use weir_protocol::builder::BatchBuilder;
use weir_protocol::record_batch::{BatchWalker, Compression};

/// Smallest and largest record values. 900 KB stays under every client's default request
/// and message limits (librdkafka message.max.bytes 1,000,000; kafka-python
/// max_request_size 1 MiB) and the broker's default max.message.bytes (1,048,588).
const RECORD_BYTES_MIN: usize = 100;
const RECORD_BYTES_MAX: usize = 900_000;
/// Longest a client process may run before the test kills it and fails.
const CLIENT_DEADLINE: Duration = Duration::from_secs(120);
/// Topic configs that slow the partition's disk writer down: 64 KiB segments make it roll to
/// a new segment for nearly every batch. For clients that send slower than the writer
/// writes (kafkajs checksums in JavaScript): without this their bytes rarely pile up to the
/// 8 MiB that makes an append wait, so a reordering broker passed kafkajs about half the time.
const SLOW_WRITER: &[(&str, &str)] = &[("segment.bytes", "65536")];
/// The staging bound these cases were sized for: an append waits once a partition holds
/// 8 MiB its writer has not written (pinned here whatever the default becomes), and a
/// waiting append is where a reordering broker shows itself.
const STAGING_BYTES: &str = "8388608";
/// Bytes per Fetch when reading back: more than the largest batch, so each fetch moves on.
const FETCH_BYTES: i32 = 8 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Routing {
    /// The default: every shard is advertised as its own broker.
    ZeroHop,
    /// One advertised address; requests for partitions on the other shard are forwarded.
    SingleAddress,
}

fn start(routing: Routing) -> Broker {
    match routing {
        Routing::ZeroHop => Broker::start(&["--shards", "2", "--unwritten-bytes-max", STAGING_BYTES]),
        Routing::SingleAddress => Broker::start(&[
            "--shards",
            "2",
            "--single-address",
            "--unwritten-bytes-max",
            STAGING_BYTES,
        ]),
    }
}

/// xorshift64: a fixed plan per seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// (partition, value size) of each record, in send order. Sizes mix small records with large
/// ones (about a tenth of 500-900 KB, which carry most of the bytes: a large batch waiting
/// for room is what a smaller later one overtakes). Partitions come in runs of 1-8 records
/// so clients that batch per partition build batches of several records too.
fn plan(seed: u64, records: usize, partitions: i32) -> Vec<(i32, usize)> {
    plan_with(seed, records, partitions, 1)
}

/// `plan` with `large_tenths` tenths of the records 500-900 KB (the rest shared out as in
/// `plan`).
fn plan_with(seed: u64, records: usize, partitions: i32, large_tenths: u64) -> Vec<(i32, usize)> {
    let mut rng = Rng(seed | 1);
    let mut out = Vec::with_capacity(records);
    let mut partition = 0;
    let mut run_left = 0;
    while out.len() < records {
        if run_left == 0 {
            partition = rng.below(partitions as u64) as i32;
            run_left = 1 + rng.below(8);
        }
        run_left -= 1;
        let size = match rng.below(10) {
            n if n >= 10 - large_tenths => {
                500_000 + rng.below((RECORD_BYTES_MAX - 500_000) as u64 + 1) as usize
            }
            0..=2 => RECORD_BYTES_MIN + rng.below(900) as usize,
            3..=5 => 1_000 + rng.below(19_000) as usize,
            _ => 100_000 + rng.below(300_000) as usize,
        };
        out.push((partition, size));
    }
    out
}

fn write_plan(broker: &Broker, plan: &[(i32, usize)]) -> PathBuf {
    let path = broker.dir.path().join("plan.txt");
    let text: String = plan.iter().map(|(p, s)| format!("{p} {s}\n")).collect();
    std::fs::write(&path, text).unwrap();
    path
}

/// The value of record `seq`: "seq:" padded with 'x' to `size`.
fn value(seq: usize, size: usize) -> Vec<u8> {
    let mut v = format!("{seq}:").into_bytes();
    v.resize(size.max(v.len()), b'x');
    v
}

/// The sequence number before ':' in a value.
fn seq_of(value: &[u8]) -> u64 {
    let end = value.iter().position(|&b| b == b':').expect("value holds 'seq:'");
    std::str::from_utf8(&value[..end])
        .unwrap()
        .parse()
        .expect("a number before ':'")
}

/// Every partition's sequence numbers in offset order, read from offset 0 to the high
/// watermark.
fn read_back(broker: &Broker, topic: &str, partitions: i32) -> Vec<Vec<u64>> {
    let mut client = broker.client();
    let mut scratch = Vec::new();
    (0..partitions)
        .map(|p| {
            let mut seqs = Vec::new();
            let mut offset = 0i64;
            loop {
                let (hw, records) = client.fetch(topic, p, offset, FETCH_BYTES, 100).unwrap();
                if offset >= hw {
                    break;
                }
                for range in BatchWalker::new(&records) {
                    weir_protocol::records::for_each_record(&records[range], &mut scratch, 64 << 20, |r| {
                        if r.offset >= offset {
                            assert_eq!(r.offset, offset, "partition {p}: offsets are dense");
                            seqs.push(seq_of(r.value.expect("a value")));
                            offset += 1;
                        }
                    })
                    .unwrap();
                }
            }
            seqs
        })
        .collect()
}

/// Sum of the partitions' high watermarks.
fn stored(broker: &Broker, topic: &str, partitions: i32) -> usize {
    let mut client = broker.client();
    (0..partitions)
        .map(|p| client.list_offset(topic, p, -1).unwrap().0 as usize)
        .sum()
}

/// acks=0 has no answer to wait for: wait until all records are stored, or the count stops
/// moving for 2 s.
fn wait_stored(broker: &Broker, topic: &str, partitions: i32, expected: usize) -> usize {
    let mut last = (stored(broker, topic, partitions), Instant::now());
    while last.0 < expected && last.1.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(100));
        let now = stored(broker, topic, partitions);
        if now != last.0 {
            last = (now, Instant::now());
        }
    }
    last.0
}

/// Inversions (a number smaller than the one before it) of one partition, and where the
/// first is.
fn inversions(seqs: &[u64]) -> (usize, Option<usize>) {
    let at: Vec<usize> = (1..seqs.len()).filter(|&i| seqs[i] < seqs[i - 1]).collect();
    (at.len(), at.first().copied())
}

/// Read everything back and check it: per partition, the numbers strictly increase, and
/// (unless `acks0`) they are exactly the plan's for that partition, in send order.
fn check(broker: &Broker, topic: &str, partitions: i32, plan: &[(i32, usize)], acks0: bool, what: &str) {
    let got = read_back(broker, topic, partitions);
    let mut problems = Vec::new();
    let mut total_inversions = 0;
    for (p, seqs) in got.iter().enumerate() {
        let expected: Vec<u64> = plan
            .iter()
            .enumerate()
            .filter(|(_, (part, _))| *part == p as i32)
            .map(|(seq, _)| seq as u64)
            .collect();
        let (count, first) = inversions(seqs);
        total_inversions += count;
        if let Some(i) = first {
            problems.push(format!(
                "partition {p}: {count} inversions in {} records, the first at offset {i} ({} after {})",
                seqs.len(),
                seqs[i],
                seqs[i - 1]
            ));
        } else if seqs.windows(2).any(|w| w[1] == w[0]) {
            problems.push(format!("partition {p}: a record stored twice"));
        } else if !acks0 && *seqs != expected {
            problems.push(format!(
                "partition {p}: {} records stored, {} sent",
                seqs.len(),
                expected.len()
            ));
        }
    }
    let arrived: usize = got.iter().map(Vec::len).sum();
    eprintln!(
        "{what}: {arrived} of {} records stored, {total_inversions} inversions",
        plan.len()
    );
    assert!(
        problems.is_empty(),
        "{what}: records out of send order ({total_inversions} inversions in total):\n{}",
        problems.join("\n")
    );
}

/// A client process, killed if the test ends (or panics) first.
struct ClientProcess {
    child: Option<Child>,
    stderr: PathBuf,
}

impl ClientProcess {
    fn spawn(mut cmd: Command, broker: &Broker, name: &str) -> Self {
        let stderr = broker.dir.path().join(format!("{name}.err"));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("{name} starts: {e}"));
        Self {
            child: Some(child),
            stderr,
        }
    }

    /// Wait for a clean exit; fail with its stderr otherwise.
    fn finish(mut self, broker: &Broker) {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + CLIENT_DEADLINE;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "client did not finish in {CLIENT_DEADLINE:?}; its stderr:\n{}\nbroker log:\n{}",
                    std::fs::read_to_string(&self.stderr).unwrap_or_default(),
                    broker.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let err = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        assert!(status.success(), "client failed ({status}); its stderr:\n{err}");
    }
}

impl Drop for ClientProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn python() -> PathBuf {
    // crc32c: without it kafka-python checksums in pure Python (~3 MB/s).
    common::venv_python("confluent_kafka, kafka, crc32c")
}

fn clients_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients"))
}

#[derive(Clone, Copy, Debug)]
enum PyClient {
    Confluent,
    KafkaPython,
}

/// Run the Python producer over `plan` and check what was stored.
fn python_case(
    client: PyClient,
    routing: Routing,
    partitions: i32,
    acks: Option<&str>,
    plan: &[(i32, usize)],
) {
    python_case_with(client, routing, partitions, acks, plan, &[]);
}

/// `python_case` into a topic with `topic_configs`.
fn python_case_with(
    client: PyClient,
    routing: Routing,
    partitions: i32,
    acks: Option<&str>,
    plan: &[(i32, usize)],
    topic_configs: &[(&str, &str)],
) {
    let broker = start(routing);
    let topic = "ordered";
    broker
        .client()
        .create_topic(topic, partitions, topic_configs)
        .unwrap();
    let plan_path = write_plan(&broker, plan);
    let name = match client {
        PyClient::Confluent => "confluent",
        PyClient::KafkaPython => "kafka-python",
    };
    let mut cmd = Command::new(python());
    cmd.arg(clients_dir().join("order_producer.py"))
        .args(["--client", name, "--bootstrap", &broker.addr(), "--topic", topic])
        .arg("--plan")
        .arg(&plan_path);
    if let Some(acks) = acks {
        cmd.args(["--acks", acks]);
    }
    let started = Instant::now();
    ClientProcess::spawn(cmd, &broker, name).finish(&broker);
    let acks0 = acks == Some("0");
    if acks0 {
        wait_stored(&broker, topic, partitions, plan.len());
    }
    let what = format!(
        "{name} acks={} {routing:?} {partitions} partition(s), {} records in {:?}",
        acks.unwrap_or("default"),
        plan.len(),
        started.elapsed()
    );
    check(&broker, topic, partitions, plan, acks0, &what);
}

fn node() -> (PathBuf, PathBuf) {
    let script = clients_dir().join("order_producer.js");
    let ok = clients_dir().join("node_modules/kafkajs").is_dir()
        && Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "node or {}/node_modules/kafkajs is missing: run `make test-deps` (or `make test`)",
        clients_dir().display()
    );
    (PathBuf::from("node"), script)
}

/// Run the kafkajs producer (default configuration: acks=-1) over `plan`, into a topic with
/// `SLOW_WRITER` configs, and check.
fn kafkajs_case(routing: Routing, partitions: i32, plan: &[(i32, usize)]) {
    let broker = start(routing);
    let topic = "ordered";
    broker
        .client()
        .create_topic(topic, partitions, SLOW_WRITER)
        .unwrap();
    let plan_path = write_plan(&broker, plan);
    let (node, script) = node();
    let mut cmd = Command::new(node);
    cmd.arg(script).arg(broker.addr()).arg(topic).arg(&plan_path);
    let started = Instant::now();
    ClientProcess::spawn(cmd, &broker, "kafkajs").finish(&broker);
    let what = format!(
        "kafkajs acks=default {routing:?} {partitions} partition(s), {} records in {:?}",
        plan.len(),
        started.elapsed()
    );
    check(&broker, topic, partitions, plan, false, &what);
}

/// One record per batch, as the own client sends it.
fn own_batch(seq: usize, size: usize) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None);
    b.push(0, None, Some(&value(seq, size)), &[]);
    let mut out = BytesMut::new();
    b.finish_into(&mut out).unwrap();
    out.freeze()
}

/// The project's own client on ONE connection pipelines one Produce per record, `window`
/// unanswered at a time (all of them with acks=0). It connects to the bootstrap address, or
/// with `other_shard` (zero-hop mode) to the port of the shard that does not own partition 0,
/// so that partition's requests are forwarded.
fn own_client_case(
    routing: Routing,
    other_shard: bool,
    partitions: i32,
    acks: i16,
    window: usize,
    plan: &[(i32, usize)],
    topic_configs: &[(&str, &str)],
) {
    let broker = start(routing);
    let topic = "ordered";
    broker
        .client()
        .create_topic(topic, partitions, topic_configs)
        .unwrap();
    let addr = if other_shard {
        let m = broker.client().metadata(Some(&[topic])).unwrap();
        let owner = m.topics[0]
            .partitions
            .iter()
            .find(|p| p.partition_index == 0)
            .unwrap()
            .leader_id
            .0;
        format!("127.0.0.1:{}", broker.shard_port_base + u16::from(owner == 0))
    } else {
        broker.addr()
    };
    // Built first, so the requests leave as fast as the socket takes them.
    let batches: Vec<Bytes> = plan
        .iter()
        .enumerate()
        .map(|(seq, &(_, size))| own_batch(seq, size))
        .collect();
    let mut client = Client::connect(addr.as_str(), Duration::from_secs(30)).unwrap();
    let started = Instant::now();
    let mut unanswered = 0;
    for (&(partition, _), batch) in plan.iter().zip(batches) {
        client.send_produce(topic, partition, batch, acks).unwrap();
        if acks != 0 {
            unanswered += 1;
            if unanswered == window {
                client.receive_produce().unwrap();
                unanswered -= 1;
            }
        }
    }
    for _ in 0..unanswered {
        client.receive_produce().unwrap();
    }
    if acks == 0 {
        wait_stored(&broker, topic, partitions, plan.len());
    }
    let what = format!(
        "own client acks={acks} {routing:?} via {addr} {partitions} partition(s), {} records in {:?}",
        plan.len(),
        started.elapsed()
    );
    check(&broker, topic, partitions, plan, acks == 0, &what);
}

// Which cases fail on a broker that reorders: a request waits only when a partition's
// unwritten bytes would pass 8 MiB. With acks=1 or 0 the answer comes at the append, so the
// bytes pile up whenever the client outruns the disk writer; with acks=all only unanswered
// requests can, so those cases put many large records on one or two partitions (the broker
// reads at most --in-flight-max, 64, requests of a connection at a time).

// confluent-kafka (librdkafka: default acks=all, up to 1,000,000 requests in flight,
// batches up to 1 MB).

#[test]
fn given_confluent_kafka_defaults_and_one_partition_in_zero_hop_mode_when_mixed_sizes_are_produced_should_store_them_in_send_order(
) {
    python_case(PyClient::Confluent, Routing::ZeroHop, 1, None, &plan(1, 250, 1));
}

#[test]
fn given_confluent_kafka_acks_1_and_eight_partitions_in_zero_hop_mode_when_mixed_sizes_are_produced_should_store_them_in_send_order(
) {
    python_case(
        PyClient::Confluent,
        Routing::ZeroHop,
        8,
        Some("1"),
        &plan(2, 500, 8),
    );
}

#[test]
fn given_confluent_kafka_acks_1_and_one_partition_in_single_address_mode_when_mixed_sizes_are_produced_should_store_them_in_send_order(
) {
    python_case(
        PyClient::Confluent,
        Routing::SingleAddress,
        1,
        Some("1"),
        &plan(3, 250, 1),
    );
}

#[test]
fn given_confluent_kafka_defaults_and_two_partitions_on_one_forwarding_connection_when_mixed_sizes_are_produced_should_store_them_in_send_order(
) {
    // Single-address mode: one connection, one partition on each shard.
    python_case(
        PyClient::Confluent,
        Routing::SingleAddress,
        2,
        None,
        &plan_with(4, 200, 2, 5),
    );
}

#[test]
fn given_confluent_kafka_acks_0_and_eight_partitions_on_one_forwarding_connection_when_mixed_sizes_are_produced_should_store_what_arrives_in_send_order(
) {
    // Spread over 8 partitions, acks=0 found 0-33 inversions a run without SLOW_WRITER.
    python_case_with(
        PyClient::Confluent,
        Routing::SingleAddress,
        8,
        Some("0"),
        &plan(5, 500, 8),
        SLOW_WRITER,
    );
}

// kafka-python (default acks=1, at most 5 requests of at most 1 MiB in flight per
// connection). Pure Python, it sends at ~25-50 MB/s here, slower than the disk writer, so
// it never fills the 8 MiB bound and these pass even on a broker that reorders; they check
// that its default producer (less idempotence, see order_producer.py) keeps its order.

#[test]
fn given_kafka_python_defaults_and_eight_partitions_in_zero_hop_mode_when_mixed_sizes_are_produced_should_store_them_in_send_order(
) {
    python_case(PyClient::KafkaPython, Routing::ZeroHop, 8, None, &plan(6, 200, 8));
}

#[test]
fn given_kafka_python_defaults_and_one_partition_in_single_address_mode_when_mixed_sizes_are_produced_should_store_them_in_send_order(
) {
    python_case(
        PyClient::KafkaPython,
        Routing::SingleAddress,
        1,
        None,
        &plan(7, 150, 1),
    );
}

// kafkajs (default acks=-1, no limit on requests in flight, one request per send(); it
// checksums in JavaScript, so only one partition gets enough bytes in flight).

#[test]
fn given_kafkajs_defaults_and_one_partition_in_zero_hop_mode_when_mixed_sizes_are_produced_should_store_them_in_send_order(
) {
    kafkajs_case(Routing::ZeroHop, 1, &plan_with(8, 400, 1, 5));
}

// Not in single-address mode: there kafkajs 2.2.4 itself writes the request of its last
// record (399 of 400) before that of the one before (strace of its writev calls), every run,
// so the broker cannot keep the send order (docs/reliability.md, "Ordering").

// The project's own client: one connection, pipelined.

#[test]
fn given_the_own_client_with_acks_1_on_one_forwarding_connection_when_mixed_sizes_are_pipelined_should_store_them_in_send_order(
) {
    own_client_case(Routing::SingleAddress, false, 2, 1, 64, &plan(10, 400, 2), &[]);
}

#[test]
fn given_the_own_client_with_acks_all_on_the_other_shards_port_in_zero_hop_mode_when_mixed_sizes_are_pipelined_should_store_them_in_send_order(
) {
    // Only partition 0's requests are forwarded; 128 unanswered at a time (the broker reads 64),
    // half of them 500-900 KB, well over the partition's 8 MiB of unwritten bytes; SLOW_WRITER
    // because under heavy load from other processes it once found no inversion without it.
    own_client_case(
        Routing::ZeroHop,
        true,
        1,
        -1,
        128,
        &plan_with(11, 300, 1, 5),
        SLOW_WRITER,
    );
}

#[test]
fn given_the_own_client_with_acks_0_when_mixed_sizes_are_pipelined_should_store_what_arrives_in_send_order() {
    own_client_case(Routing::SingleAddress, false, 1, 0, 0, &plan(12, 250, 1), &[]);
}
