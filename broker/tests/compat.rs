//! The compatibility suite: against one fresh 2-shard broker in zero-hop mode, the real
//! clients of confluent-kafka and kafka-python (`tests/clients/compat.py`) and kafkajs
//! (`tests/clients/compat.js`), each in its default configuration, run every operation of
//! issue 12 side by side; an old client (librdkafka 2.0.2, through kcat) is replayed from
//! its captured frames (`protocol/tests/fixtures/frames/kcat-2.0.2`); the Go clients
//! (`tests/clients/go`) run when their Debian packages are installed. Every client prints
//! one JSON line per operation; the test renders them as the client x operation matrix,
//! writes it to target/compat-matrix.md and compares it with the block in
//! docs/protocol.md (`WEIR_UPDATE_COMPAT_MATRIX=1`, or `make compat-matrix`, rewrites the
//! block). Any "fail" fails the test.

mod common;
#[path = "compat/frames.rs"]
mod frames;
#[path = "compat/go.rs"]
mod go;
#[path = "compat/matrix.rs"]
mod matrix;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use common::Broker;
use matrix::Line;

const CLIENTS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients");
/// `--retention-ms` shows up in DescribeConfigs as the broker's static `log.retention.ms`.
const BROKER_FLAGS: &[&str] = &[
    "--shards",
    "2",
    "--group-initial-rebalance-delay-ms",
    "100",
    "--retention-ms",
    "86400000",
];

fn python_client(broker: &Broker, client: &str, phase: &str) -> (String, Child) {
    let python = common::venv_python("confluent_kafka, kafka");
    let child = Command::new(python)
        .arg(format!("{CLIENTS_DIR}/compat.py"))
        .args([
            "--bootstrap",
            &broker.addr(),
            "--client",
            client,
            "--phase",
            phase,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python runs");
    (format!("compat.py --client {client} --phase {phase}"), child)
}

fn kafkajs(broker: &Broker, phase: &str) -> (String, Child) {
    let child = common::kafkajs_script("compat.js")
        .args([broker.addr().as_str(), phase])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    (format!("compat.js {phase}"), child)
}

/// Waits for every client and collects their JSON lines.
fn collect(broker: &Broker, children: Vec<(String, Child)>) -> Vec<Line> {
    let mut lines = Vec::new();
    for (what, child) in children {
        let out = child.wait_with_output().expect("client runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{what} failed: {}\nstdout: {stdout}\nstderr: {}\nbroker log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            broker.log()
        );
        for l in stdout.lines().filter(|l| l.starts_with('{')) {
            lines.push(Line::parse(l).unwrap_or_else(|e| panic!("bad line from {what}: {e}: {l}")));
        }
    }
    lines
}

fn run_clients(broker: &Broker, phase: &str, go: Option<&PathBuf>) -> Vec<Line> {
    let mut children = vec![
        python_client(broker, "confluent", phase),
        python_client(broker, "kafka-python", phase),
        kafkajs(broker, phase),
    ];
    children.extend(go.map(|binary| go::spawn(binary, broker)));
    collect(broker, children)
}

#[test]
fn given_a_fresh_broker_when_every_client_runs_every_operation_should_pass_and_match_the_documented_matrix() {
    let go = go::build();
    let mut broker = Broker::start(BROKER_FLAGS);
    let mut lines = run_clients(&broker, "main", go.as_ref());
    if go.is_some() {
        // The time lookup the Go columns pass is over batches without a max timestamp
        // (sarama 1.22 sends the first record alone, the other nine in one batch).
        let batches = go::stored_batches(&broker);
        let records: i32 = batches.iter().map(|b| b.0).sum();
        assert!(records == 10 && batches.iter().all(|b| b.1 == -1), "{batches:?}");
    }
    lines.extend(frames::replay_kcat_2_0_2(&broker));
    broker.restart();
    lines.extend(run_clients(&broker, "restart", None));
    for client in go::CLIENTS.iter().filter(|_| go.is_some()) {
        matrix::fill_not_run(&mut lines, client, "not run for this client");
    }
    matrix::fill_missing(&mut lines, go.is_some());
    let table = matrix::render(&lines);
    matrix::write_target(&table);
    let failed: Vec<String> = lines
        .iter()
        .filter(|l| !["ok", "n/a", "unsupported"].contains(&l.result.as_str()))
        .map(|l| format!("{} / {}: {} {}", l.client, l.op, l.result, l.detail))
        .collect();
    assert!(failed.is_empty(), "failed:\n{}\n\n{table}", failed.join("\n"));
    if go.is_some() {
        matrix::compare_with_docs(&table);
    } else {
        println!("SKIPPED: the comparison with docs/protocol.md's matrix (it has the Go columns)");
    }
}
