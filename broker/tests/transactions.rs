//! Transactions with real clients, each in its default configuration plus a transactional
//! id (issue 11): confluent-kafka (commit and abort seen by read_committed and
//! read_uncommitted readers, an open transaction holding read_committed at the last stable
//! offset, consume-transform-produce with send_offsets_to_transaction over 3 partitions, a
//! zombie fenced by a new instance, kill -9 of the broker mid-transaction and mid-commit),
//! aiokafka and kafkajs (commit and abort), and `weir txn list|describe` on a transaction
//! left open. The client scripts check what they read back in offset order and print "ok".

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{venv_python, Broker};
use weir_client::requests::txn::TxnId;

const CLIENTS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients");
/// Longest a client process may run before the test kills it and fails.
const CLIENT_DEADLINE: Duration = Duration::from_secs(240);

fn python(broker: &Broker, scenario: &str, args: &[&str]) -> Child {
    Command::new(venv_python("confluent_kafka, aiokafka"))
        .arg(format!("{CLIENTS_DIR}/txn_client.py"))
        .arg(scenario)
        .arg(broker.addr())
        .args(args)
        .current_dir(CLIENTS_DIR)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("client starts")
}

/// Wait for the client; its stdout's last line must start with "ok" (or be the crash
/// scenario's JSON with "ok": true). Returns stdout.
fn finish(mut child: Child, what: &str, mut stdout: String) -> String {
    let deadline = Instant::now() + CLIENT_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("{what} did not finish within {CLIENT_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if let Some(mut out) = child.stdout.take() {
        out.read_to_string(&mut stdout).ok();
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut err).ok();
    }
    let last = stdout.lines().last().unwrap_or("");
    assert!(
        status.success() && (last.starts_with("ok") || last.contains("\"ok\": true")),
        "{what} exited with {status}\nstdout: {stdout}\nstderr: {err}"
    );
    stdout
}

fn run_python(broker: &Broker, scenario: &str, args: &[&str]) -> String {
    let child = python(broker, scenario, args);
    finish(child, scenario, String::new())
}

#[test]
fn given_confluent_transactions_when_committed_and_aborted_should_show_read_committed_only_the_committed_ones(
) {
    let broker = Broker::start(&["--shards", "2"]);
    broker.client().create_topic("txn-ca", 1, &[]).unwrap();
    run_python(&broker, "confluent-commit-abort", &["txn-ca"]);
}

#[test]
fn given_consume_transform_produce_over_three_partitions_should_write_each_input_once_and_commit_offsets_with_it(
) {
    let broker = Broker::start(&["--shards", "2"]);
    let mut c = broker.client();
    c.create_topic("ctp-in", 3, &[]).unwrap();
    c.create_topic("ctp-out", 3, &[]).unwrap();
    let out = run_python(&broker, "confluent-ctp", &["ctp-in", "ctp-out"]);
    println!("{out}");
}

#[test]
fn given_a_second_producer_with_the_same_transactional_id_should_fence_the_first() {
    let broker = Broker::start(&["--shards", "2"]);
    broker.client().create_topic("txn-zombie", 1, &[]).unwrap();
    let out = run_python(&broker, "confluent-zombie", &["txn-zombie"]);
    println!("{out}");
}

#[test]
fn given_the_broker_killed_mid_transaction_and_mid_commit_should_show_each_transaction_whole_or_not_at_all() {
    let mut broker = Broker::start(&["--shards", "2"]);
    broker.client().create_topic("txn-crash", 2, &[]).unwrap();
    let mut child = python(&broker, "confluent-crash", &["txn-crash", "40"]);
    let stdout = child.stdout.take().expect("piped stdout");
    let mut seen = String::new();
    let mut kills = 0;
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if line.trim() == "mark" {
            broker.kill();
            broker.start_again();
            kills += 1;
        } else {
            seen.push_str(&line);
            seen.push('\n');
        }
    }
    let out = finish(child, "confluent-crash", seen);
    println!("{out}");
    assert_eq!(kills, 2, "a kill mid-transaction and one mid-commit");
}

#[test]
fn given_aiokafka_transactions_when_committed_and_aborted_should_show_read_committed_only_the_committed_ones()
{
    let broker = Broker::start(&["--shards", "2"]);
    broker.client().create_topic("txn-aio", 1, &[]).unwrap();
    run_python(&broker, "aiokafka-commit-abort", &["txn-aio"]);
}

#[test]
fn given_kafkajs_transactions_when_committed_and_aborted_should_show_read_committed_only_the_committed_ones()
{
    let broker = Broker::start(&["--shards", "2"]);
    broker.client().create_topic("txn-kjs", 1, &[]).unwrap();
    let modules = PathBuf::from(CLIENTS_DIR).join("node_modules/kafkajs");
    assert!(
        modules.is_dir(),
        "{} is missing: run `make test-deps` (or `make test`)",
        modules.display()
    );
    let child = Command::new("node")
        .arg(format!("{CLIENTS_DIR}/txn_client.js"))
        .args([&broker.addr(), "txn-kjs"])
        .current_dir(CLIENTS_DIR)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node starts");
    finish(child, "kafkajs", String::new());
}

#[test]
fn given_an_open_transaction_when_listed_and_described_should_show_its_state_producer_and_partitions() {
    let broker = Broker::start(&["--shards", "2"]);
    let mut c = broker.client();
    c.create_topic("txn-cli", 2, &[]).unwrap();
    let (pid, epoch) = c.init_txn_producer_id("cli-txn", 60_000).unwrap();
    let id = TxnId {
        transactional_id: "cli-txn",
        producer_id: pid,
        producer_epoch: epoch,
    };
    let added = c
        .add_partitions_to_txn(id, &[("txn-cli", 0), ("txn-cli", 1)])
        .unwrap();
    assert!(added.iter().all(|p| p.2 == 0), "{added:?}");

    let list = broker.weir(&["txn", "list"]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(list.status.success(), "{list:?}");
    let row = text.lines().find(|l| l.starts_with("cli-txn")).expect("listed");
    assert!(
        row.contains(&pid.to_string()) && row.contains("Ongoing"),
        "{text}"
    );

    let describe = broker.weir(&["txn", "describe", "cli-txn", "no-such-txn"]);
    let text = String::from_utf8_lossy(&describe.stdout);
    assert!(describe.status.success(), "{describe:?}");
    let row = text
        .lines()
        .find(|l| l.starts_with("cli-txn"))
        .expect("described");
    assert!(
        row.contains("Ongoing") && row.contains("txn-cli-0,txn-cli-1") && row.contains("60000"),
        "{text}"
    );
    let unknown = text
        .lines()
        .find(|l| l.starts_with("no-such-txn"))
        .expect("described");
    assert!(unknown.contains("error: TRANSACTIONAL_ID_NOT_FOUND"), "{text}");

    c.end_txn(id, false).unwrap();
    let list = broker.weir(&["txn", "list", "--state", "CompleteAbort"]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.lines().any(|l| l.starts_with("cli-txn")), "{text}");
    let list = broker.weir(&["txn", "list", "--state", "Ongoing"]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(!text.lines().any(|l| l.starts_with("cli-txn")), "{text}");
}
