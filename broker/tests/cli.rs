//! `weir group` and `weir topic` against the real binary: tables, lag before and after a real
//! consumer (confluent-kafka) reads, reset-offsets refused while the group has members, and
//! non-zero exits with clear messages for an unreachable broker and unknown groups or topics.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::Broker;
use weir_protocol::record_batch::Compression;

const PARTITIONS: i32 = 3;
const RECORDS_PER_PARTITION: i64 = 1_000;

fn weir(bootstrap: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .args(["--bootstrap", bootstrap])
        .env_remove("WEIR_BOOTSTRAP")
        .stdin(Stdio::null())
        .output()
        .expect("weir runs")
}

/// Runs `weir ARGS`, asserts success, returns stdout.
fn ok(broker: &Broker, args: &[&str]) -> String {
    let out = weir(&broker.addr(), args);
    assert!(
        out.status.success(),
        "weir {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `weir ARGS`, asserts a non-zero exit, returns stderr.
fn fails(bootstrap: &str, args: &[&str]) -> String {
    let out = weir(bootstrap, args);
    assert!(
        !out.status.success(),
        "weir {args:?} should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

/// (partition, current offset, log end, lag) rows of `weir group describe` for `topic`.
fn lag_rows(broker: &Broker, group: &str, topic: &str) -> Vec<(i32, String, i64, String)> {
    ok(broker, &["group", "describe", group])
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(topic))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[1].parse().unwrap(),
                f[2].to_string(),
                f[3].parse().unwrap(),
                f[4].to_string(),
            )
        })
        .collect()
}

fn python() -> PathBuf {
    common::venv_python("confluent_kafka")
}

#[test]
fn given_no_broker_when_running_admin_commands_should_exit_non_zero_saying_it_is_unreachable() {
    // Nothing listens on a reserved port no broker was started on.
    let port = common::free_ports(1);
    let addr = format!("127.0.0.1:{port}");
    for args in [&["group", "list"][..], &["topic", "list"][..]] {
        let err = fails(&addr, args);
        assert!(err.contains("cannot reach the broker at"), "{err}");
    }
}

#[test]
fn given_a_broker_when_managing_topics_should_create_list_describe_and_delete_them() {
    let broker = Broker::start(&["--shards", "2", "--auto-create-topics", "false"]);
    let out = ok(
        &broker,
        &[
            "topic",
            "create",
            "audit",
            "--partitions",
            "4",
            "--config",
            "retention.ms=3600000",
        ],
    );
    assert!(out.contains("created topic audit"), "{out}");
    broker
        .client()
        .produce("audit", 2, common::batch(0, 10, Compression::None), -1)
        .unwrap();
    let list = ok(&broker, &["topic", "list"]);
    assert!(
        list.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["audit", "4"]),
        "{list}"
    );
    let described = ok(&broker, &["topic", "describe", "audit"]);
    let rows: Vec<Vec<&str>> = described
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() == 5 && f[0].parse::<i32>().is_ok())
        .collect();
    assert_eq!(rows.len(), 4, "{described}");
    assert_eq!(
        rows[2][2..],
        ["0", "10", "10"],
        "partition 2 holds the 10 records: {described}"
    );
    assert!(
        described
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["retention.ms", "3600000"]),
        "{described}"
    );
    let err = fails(&broker.addr(), &["topic", "create", "audit", "--partitions", "4"]);
    assert!(err.contains("TOPIC_ALREADY_EXISTS"), "{err}");
    let err = fails(&broker.addr(), &["topic", "create", "bad", "--config", "novalue"]);
    assert!(err.contains("KEY=VALUE"), "{err}");
    assert!(ok(&broker, &["topic", "delete", "audit"]).contains("deleted topic audit"));
    assert!(!ok(&broker, &["topic", "list"]).contains("audit"));
    for args in [
        &["topic", "describe", "audit"][..],
        &["topic", "delete", "audit"][..],
    ] {
        let err = fails(&broker.addr(), args);
        assert!(err.contains("topic \"audit\" not found"), "{err}");
    }
}

#[test]
fn given_a_group_when_a_consumer_reads_everything_should_describe_lag_before_and_after_and_reset_only_when_empty(
) {
    let broker = Broker::start(&["--shards", "2", "--group-initial-rebalance-delay-ms", "100"]);
    let (topic, group) = ("clicks", "reporting");
    let mut client = broker.client();
    client.create_topic(topic, PARTITIONS, &[]).unwrap();
    let before_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for p in 0..PARTITIONS {
        let batch = common::batch(0, RECORDS_PER_PARTITION as usize, Compression::None);
        client.produce(topic, p, batch, -1).unwrap();
    }
    let err = fails(&broker.addr(), &["group", "describe", group]);
    assert!(err.contains("group \"reporting\" not found"), "{err}");
    admin_reset_creates_the_group(&broker, group, topic);
    let consumer = consume_everything(&broker, group, topic);
    // While the consumer is a member, resets are refused by the CLI and by the coordinator.
    let err = fails(&broker.addr(), &reset_args(group, topic, "earliest"));
    assert!(err.contains("can only be reset while it is Empty"), "{err}");
    assert!(client.commit_offsets(group, -1, "", &[(topic, 0, 0)]).is_err());
    stop(consumer);
    let caught_up: Vec<_> = (0..PARTITIONS)
        .map(|p| {
            (
                p,
                RECORDS_PER_PARTITION.to_string(),
                RECORDS_PER_PARTITION,
                "0".into(),
            )
        })
        .collect();
    assert_eq!(lag_rows(&broker, group, topic), caught_up);
    every_reset_form_works_once_empty(&broker, group, topic, before_ms);
}

fn reset_args<'a>(group: &'a str, topic: &'a str, to: &'a str) -> [&'a str; 7] {
    ["group", "reset-offsets", group, "--topic", topic, "--to", to]
}

/// An admin reset of a group nobody joined creates it at the start: the lag is the whole
/// partition, and the group is listed as Empty.
fn admin_reset_creates_the_group(broker: &Broker, group: &str, topic: &str) {
    let reset = ok(broker, &reset_args(group, topic, "earliest"));
    assert_eq!(reset.lines().count(), 1 + PARTITIONS as usize, "{reset}");
    let full: Vec<_> = (0..PARTITIONS)
        .map(|p| {
            (
                p,
                "0".into(),
                RECORDS_PER_PARTITION,
                RECORDS_PER_PARTITION.to_string(),
            )
        })
        .collect();
    assert_eq!(lag_rows(broker, group, topic), full);
    let listed = ok(broker, &["group", "list"]);
    assert!(
        listed
            .lines()
            .any(|l| l.split_whitespace().take(2).eq([group, "Empty"])),
        "{listed}"
    );
}

/// Starts a real consumer (confluent-kafka) in the group and waits until it has read and
/// committed everything: lag 0, shown with its member while it runs.
fn consume_everything(broker: &Broker, group: &str, topic: &str) -> std::process::Child {
    let out = broker.dir.path().join("consumer.out");
    let mut consumer = Command::new(python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/clients/group_consumer.py"
        ))
        .args([
            "--bootstrap",
            &broker.addr(),
            "--group",
            group,
            "--topic",
            topic,
            "--out",
        ])
        .arg(&out)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = lag_rows(broker, group, topic);
        let text = ok(broker, &["group", "describe", group]);
        if rows.iter().all(|r| r.3 == "0")
            && text.contains("state Stable")
            && text.contains(&format!("{topic}:"))
        {
            break;
        }
        if Instant::now() >= deadline {
            let _ = consumer.kill();
            let _ = consumer.wait();
            panic!("consumer did not catch up:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    consumer
}

/// SIGTERM: the consumer leaves the group and exits cleanly.
fn stop(mut consumer: std::process::Child) {
    unsafe { libc::kill(consumer.id() as i32, libc::SIGTERM) };
    assert!(consumer.wait().unwrap().success());
}

/// Empty again: every --to form works; offsets past the log end land on it; an unknown topic
/// and a malformed --to are refused with clear messages.
fn every_reset_form_works_once_empty(broker: &Broker, group: &str, topic: &str, before_ms: i64) {
    let committed_and_lag = |to: &str| {
        ok(broker, &reset_args(group, topic, to));
        lag_rows(broker, group, topic)
    };
    assert!(committed_and_lag("offset:990")
        .iter()
        .all(|r| r.1 == "990" && r.3 == "10"));
    assert!(committed_and_lag("offset:5000").iter().all(|r| r.1 == "1000"));
    let before = format!("timestamp:{}", before_ms - 1000);
    assert!(committed_and_lag(&before).iter().all(|r| r.1 == "0"));
    assert!(committed_and_lag("latest").iter().all(|r| r.3 == "0"));
    let err = fails(&broker.addr(), &reset_args(group, "nope", "latest"));
    assert!(err.contains("topic \"nope\" not found"), "{err}");
    let err = fails(&broker.addr(), &reset_args(group, topic, "yesterday"));
    assert!(err.contains("expected earliest, latest"), "{err}");
}

#[test]
fn given_a_running_broker_when_a_second_serves_on_its_ports_should_refuse_to_start() {
    let broker = Broker::start(&["--shards", "2"]);
    let other = broker.dir.path().join("other-data");
    let err_path = broker.dir.path().join("second.err");
    let mut second = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["serve", "--listen", &broker.addr(), "--shards", "2", "--data-dir"])
        .arg(&other)
        .args(["--shard-port-base", &broker.shard_port_base.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("weir runs");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            second.kill().unwrap();
            second.wait().unwrap();
            panic!("a second broker started on ports another broker listens on");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let err = std::fs::read_to_string(&err_path).unwrap();
    assert!(
        !status.success(),
        "a second broker on the same port must not start: {err}"
    );
    assert!(err.contains("cannot listen on"), "{err}");
    // The first broker still answers everyone.
    broker.client().metadata(None).unwrap();
}
