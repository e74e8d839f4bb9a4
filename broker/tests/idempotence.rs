//! Idempotent producers with real clients (issue 11, first part): kafka-python's default
//! producer (idempotence is on by default in 3.x, and needs InitProducerId), confluent-kafka,
//! aiokafka and kafkajs with idempotence on. Each sends the values 0..N to partition 0 of a topic the
//! broker auto-creates (one partition), and the test reads the partition back and compares
//! the values with 0..N in offset order: every record exactly once, in send order.
//!
//! The kill tests SIGKILL the broker each time another quarter of the records is handed to
//! the client (three kills; batches are in flight, some written but not yet acknowledged)
//! and start it again on the same ports. The clients retry what was
//! not acknowledged with the same producer id and sequence numbers; the broker must answer
//! a retry of a batch it had already stored with that batch's offsets (rebuilding producer
//! state from its snapshot and the log's tail), never store it twice.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::{venv_python, Broker};
use weir_protocol::builder::BatchBuilder;
use weir_protocol::record_batch::Compression;

const CLIENTS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients");
/// Longest a client process may run before the test kills it and fails.
const CLIENT_DEADLINE: Duration = Duration::from_secs(180);

enum Client {
    KafkaPythonDefault,
    Confluent,
    Aiokafka,
    Kafkajs,
}

fn spawn(client: &Client, broker: &Broker, topic: &str, count: usize) -> Child {
    let count = count.to_string();
    let mut cmd = match client {
        Client::KafkaPythonDefault | Client::Confluent | Client::Aiokafka => {
            let mut cmd = Command::new(venv_python("confluent_kafka, kafka, crc32c, aiokafka"));
            let name = match client {
                Client::Confluent => "confluent",
                Client::Aiokafka => "aiokafka",
                _ => "kafka-python",
            };
            cmd.arg(format!("{CLIENTS_DIR}/idem_producer.py")).arg(name);
            cmd
        }
        Client::Kafkajs => {
            let modules = PathBuf::from(CLIENTS_DIR).join("node_modules/kafkajs");
            assert!(
                modules.is_dir(),
                "{} is missing: run `make test-deps` (or `make test`)",
                modules.display()
            );
            let mut cmd = Command::new("node");
            cmd.arg(format!("{CLIENTS_DIR}/idem_producer.js"));
            cmd
        }
    };
    cmd.args([&broker.addr(), topic, &count])
        .current_dir(CLIENTS_DIR)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("client starts")
}

/// Kill the broker and start it again each time the client prints "mark"; returns how
/// many kills there were. The client's stdout is drained to its end.
fn kill_at_marks(child: &mut Child, broker: &mut Broker) -> usize {
    let stdout = child.stdout.take().expect("piped stdout");
    let mut kills = 0;
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if line.trim() == "mark" {
            broker.kill();
            broker.start_again();
            kills += 1;
        }
    }
    kills
}

fn wait_success(mut child: Child, what: &str) {
    let deadline = Instant::now() + CLIENT_DEADLINE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                std::io::Read::read_to_string(&mut e, &mut err).ok();
            }
            assert!(status.success(), "{what} exited with {status}: {err}");
            return;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("{what} did not finish within {CLIENT_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Partition 0's values in offset order.
fn read_values(broker: &Broker, topic: &str) -> Vec<u64> {
    let out = Command::new(venv_python("confluent_kafka"))
        .arg(format!("{CLIENTS_DIR}/read_values.py"))
        .args([&broker.addr(), topic])
        .output()
        .expect("reader runs");
    assert!(
        out.status.success(),
        "read_values failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.parse().expect("a number"))
        .collect()
}

/// Every value 0..count exactly once, in order; on failure say how many are duplicated,
/// missing or out of place.
fn assert_exactly_once_in_order(values: &[u64], count: usize) {
    if values.iter().copied().eq(0..count as u64) {
        return;
    }
    let mut seen = std::collections::HashSet::new();
    let duplicates = values.iter().filter(|v| !seen.insert(**v)).count();
    let missing = (0..count as u64).filter(|v| !seen.contains(v)).count();
    let inversions = values.windows(2).filter(|w| w[1] < w[0]).count();
    panic!(
        "{} values read for {count} sent: {duplicates} duplicates, {missing} missing, {inversions} inversions",
        values.len()
    );
}

fn run(client: Client, count: usize, kill_at_quarters: bool) {
    let mut broker = Broker::start(&["--shards", "2"]);
    let topic = "idem";
    let mut child = spawn(&client, &broker, topic, count);
    if kill_at_quarters {
        assert_eq!(
            kill_at_marks(&mut child, &mut broker),
            3,
            "a kill at each quarter"
        );
    }
    wait_success(child, "the producer");
    let values = read_values(&broker, topic);
    assert_exactly_once_in_order(&values, count);
}

#[test]
fn given_kafka_pythons_default_producer_when_sending_should_deliver_every_record_once_in_order() {
    run(Client::KafkaPythonDefault, 10_000, false);
}

#[test]
fn given_idempotent_confluent_kafka_when_the_broker_is_killed_three_times_should_store_every_record_once_in_order(
) {
    run(Client::Confluent, 100_000, true);
}

#[test]
fn given_kafka_pythons_default_producer_when_the_broker_is_killed_three_times_should_store_every_record_once_in_order(
) {
    run(Client::KafkaPythonDefault, 30_000, true);
}

#[test]
fn given_idempotent_aiokafka_when_the_broker_is_killed_three_times_should_store_every_record_once_in_order() {
    run(Client::Aiokafka, 30_000, true);
}

#[test]
fn given_idempotent_kafkajs_when_the_broker_is_killed_three_times_should_store_every_record_once_in_order() {
    run(Client::Kafkajs, 30_000, true);
}

/// Three records from producer `pid` at `epoch`, first sequence `seq`.
fn idempotent_batch(pid: i64, epoch: i16, seq: i32) -> bytes::Bytes {
    let mut b = BatchBuilder::new(Compression::None).with_producer(pid, epoch, seq);
    for i in 0..3 {
        b.push(1_000, None, Some(format!("{}", seq + i).as_bytes()), &[]);
    }
    let mut out = BytesMut::new();
    b.finish_into(&mut out).unwrap();
    out.freeze()
}

#[test]
fn given_idempotent_batches_on_the_wire_when_retried_out_of_sequence_or_fenced_should_get_kafkas_answers() {
    let mut broker = Broker::start(&["--shards", "2"]);
    let mut c = broker.client();
    c.create_topic("seq", 1, &[]).unwrap();
    let (pid, epoch) = c.init_producer_id().unwrap();
    let (other, _) = c.init_producer_id().unwrap();
    assert_ne!(pid, other, "every InitProducerId gets its own id");
    let produce = |c: &mut weir_client::blocking::Client, epoch, seq| {
        c.produce("seq", 0, idempotent_batch(pid, epoch, seq), -1)
            .map_err(|e| e.code())
    };
    assert_eq!(produce(&mut c, epoch, 0), Ok(0));
    assert_eq!(produce(&mut c, epoch, 0), Ok(0), "a retry gets its first offset");
    assert_eq!(produce(&mut c, epoch, 3), Ok(3));
    assert_eq!(
        produce(&mut c, epoch, 9),
        Err(Some(45)),
        "OUT_OF_ORDER_SEQUENCE_NUMBER"
    );
    assert_eq!(produce(&mut c, epoch + 1, 0), Ok(6), "a new epoch starts at 0");
    assert_eq!(produce(&mut c, epoch, 6), Err(Some(47)), "INVALID_PRODUCER_EPOCH");
    broker.kill();
    broker.start_again();
    let mut c = broker.client();
    assert_eq!(
        produce(&mut c, epoch + 1, 0),
        Ok(6),
        "a retry after kill -9 gets its first offset"
    );
    assert_eq!(produce(&mut c, epoch + 1, 3), Ok(9));
    let (after, _) = c.init_producer_id().unwrap();
    assert!(
        after > other,
        "ids are not reused after a restart: {after} after {other}"
    );
}
