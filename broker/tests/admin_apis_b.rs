//! CreatePartitions, DeleteRecords and the config APIs as real admin clients see
//! them, in their default configuration: confluent-kafka's AdminClient and
//! kafka-python's KafkaAdminClient (`tests/clients/admin_b.py`) against a fresh
//! 2-shard broker. Each test checks the effect (metadata, produce and fetch, a
//! restart) and that bad input gets Kafka's error code and changes nothing.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::Broker;
use serde_json::{json, Value};

const BROKER_FLAGS: &[&str] = &["--shards", "2"];

fn python() -> PathBuf {
    common::venv_python("confluent_kafka, kafka")
}

/// Runs one `admin_b.py` sub-command against `broker`; its JSON answer.
fn client(broker: &Broker, args: &[&str]) -> Value {
    let out = Command::new(python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/admin_b.py"))
        .args(["--bootstrap", &broker.addr()])
        .args(args)
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "admin_b.py {args:?} failed: {}\nstdout: {stdout}\nstderr: {}\nbroker log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        broker.log()
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("bad JSON from {args:?}: {e}: {stdout}"))
}

fn partition_count(broker: &Broker, topic: &str) -> i64 {
    client(broker, &["cp-partitions", topic])[topic].as_i64().unwrap()
}

#[test]
fn given_real_admin_clients_when_partitions_are_added_should_serve_them_and_refuse_bad_counts() {
    let mut broker = Broker::start(BROKER_FLAGS);
    let mut c = broker.client();
    c.create_topic("grow", 2, &[]).unwrap();
    c.create_topic("grow-kp", 1, &[]).unwrap();

    // Bad input: Kafka's codes, and the count stays.
    // (A repeated topic in one call crashes librdkafka 2.16 client-side, so the
    // unit tests cover INVALID_REQUEST for it.)
    let bad = client(&broker, &["cp-grow", "grow=1", "nope=3"]);
    assert_eq!(
        bad,
        json!({"grow": "INVALID_PARTITIONS", "nope": "UNKNOWN_TOPIC_OR_PART"})
    );
    let bad = client(&broker, &["cp-grow", "grow=2"]);
    assert_eq!(bad, json!({"grow": "INVALID_PARTITIONS"}));
    let checked = client(&broker, &["--validate-only", "cp-grow", "grow=5"]);
    assert_eq!(checked, json!({"grow": null}));
    assert_eq!(partition_count(&broker, "grow"), 2);

    let grown = client(&broker, &["cp-grow", "grow=4"]);
    assert_eq!(grown, json!({"grow": null}));
    assert_eq!(partition_count(&broker, "grow"), 4);
    let rw = client(&broker, &["cp-produce-fetch", "grow:0", "grow:2", "grow:3"]);
    for item in ["grow:0", "grow:2", "grow:3"] {
        assert_eq!(rw[item]["read"], format!("v-{item}"), "{rw}");
    }

    // kafka-python: the same, with its exception class names.
    let kp = client(&broker, &["kp-grow", "grow-kp=1", "nope=2", "grow-kp=3"]);
    assert_eq!(
        kp,
        json!({"grow-kp": null, "nope": "UnknownTopicOrPartitionError"}),
        "the second grow-kp entry (3 after 1 was refused) wins"
    );
    // A negative count reaches the broker through kafka-python (librdkafka refuses it).
    let kp = client(&broker, &["kp-grow", "grow-kp=-1"]);
    assert_eq!(kp, json!({"grow-kp": "InvalidPartitionsError"}));
    let kp = client(&broker, &["kp-grow", "grow-kp=2"]);
    assert_eq!(kp, json!({"grow-kp": "InvalidPartitionsError"}));
    assert_eq!(partition_count(&broker, "grow-kp"), 3);

    // Durable: after kill -9 the new partitions are there, with their records.
    broker.kill();
    broker.start_again();
    assert_eq!(partition_count(&broker, "grow"), 4);
    let rw = client(&broker, &["cp-produce-fetch", "grow:3"]);
    assert_eq!(rw["grow:3"]["offset"], 1, "{rw}");
}

/// Produces `n` records to `topic`/`partition` with the weir client.
fn produce(broker: &Broker, topic: &str, partition: i32, n: usize) {
    let mut c = broker.client();
    for i in 0..n {
        let batch = common::batch(i, 1, weir_protocol::record_batch::Compression::None);
        c.produce(topic, partition, batch, -1).unwrap();
    }
}

#[test]
fn given_real_admin_clients_when_records_are_deleted_should_move_the_start_durably_and_refuse_beyond_the_end()
{
    let mut broker = Broker::start(BROKER_FLAGS);
    broker.client().create_topic("dr", 2, &[]).unwrap();
    produce(&broker, "dr", 0, 10);
    produce(&broker, "dr", 1, 10);

    // Bad input first: nothing changes.
    let bad = client(&broker, &["cp-delete", "dr:0:11"]);
    assert_eq!(bad, json!({"dr:0": "OFFSET_OUT_OF_RANGE"}));
    let bad = client(&broker, &["kp-delete", "dr:1:99", "nope:0:1"]);
    assert_eq!(
        bad,
        json!({"dr:1": "OffsetOutOfRangeError", "nope:0": "UnknownTopicOrPartitionError"})
    );
    let seen = client(&broker, &["cp-earliest", "dr:0", "dr:1"]);
    assert_eq!(seen["dr:0"]["earliest"], 0, "{seen}");
    assert_eq!(seen["dr:1"]["earliest"], 0, "{seen}");

    let moved = client(&broker, &["cp-delete", "dr:0:4"]);
    assert_eq!(moved, json!({"dr:0": 4}));
    let moved = client(&broker, &["kp-delete", "dr:1:7"]);
    assert_eq!(moved, json!({"dr:1": 7}));
    // Not above the current start: the start stays and is answered.
    let same = client(&broker, &["cp-delete", "dr:0:2"]);
    assert_eq!(same, json!({"dr:0": 4}));

    let check = |broker: &Broker| {
        let seen = client(broker, &["cp-earliest", "dr:0", "dr:1"]);
        assert_eq!(seen["dr:0"], json!({"earliest": 4, "high": 10, "first_read": 4}));
        assert_eq!(seen["dr:1"], json!({"earliest": 7, "high": 10, "first_read": 7}));
        let below = broker.client().fetch("dr", 0, 2, 1 << 20, 0);
        assert_eq!(
            below.unwrap_err().code(),
            Some(1),
            "OFFSET_OUT_OF_RANGE below the start"
        );
    };
    check(&broker);
    broker.kill();
    broker.start_again();
    check(&broker);

    // -1: the high watermark.
    let all = client(&broker, &["cp-delete", "dr:0:-1"]);
    assert_eq!(all, json!({"dr:0": 10}));
}

fn topic_config(broker: &Broker, topic: &str, name: &str) -> Value {
    client(broker, &["cp-describe", topic])[topic][name]["value"].clone()
}

#[test]
fn given_real_admin_clients_when_topic_configs_are_altered_should_apply_them_durably_and_refuse_bad_ones() {
    let mut broker = Broker::start(BROKER_FLAGS);
    broker.client().create_topic("cfg", 2, &[]).unwrap();
    let before = topic_config(&broker, "cfg", "retention.ms");

    // Bad input: Kafka's codes, nothing changes.
    let bad = client(
        &broker,
        &["cp-alter", "cfg:SET:retention.ms=-7", "nope:SET:retention.ms=1"],
    );
    assert_eq!(
        bad,
        json!({"cfg": "INVALID_CONFIG", "nope": "UNKNOWN_TOPIC_OR_PART"})
    );
    let bad = client(&broker, &["cp-alter", "cfg:SET:no.such.config=1"]);
    assert_eq!(bad, json!({"cfg": "INVALID_CONFIG"}));
    let checked = client(
        &broker,
        &["--validate-only", "cp-alter", "cfg:SET:retention.ms=5000"],
    );
    assert_eq!(checked, json!({"cfg": null}));
    assert_eq!(topic_config(&broker, "cfg", "retention.ms"), before);

    let ok = client(
        &broker,
        &[
            "cp-alter",
            "cfg:SET:retention.ms=5000",
            "cfg:SET:segment.ms=60000",
        ],
    );
    assert_eq!(ok, json!({"cfg": null}));
    assert_eq!(topic_config(&broker, "cfg", "retention.ms"), "5000");
    assert_eq!(topic_config(&broker, "cfg", "segment.ms"), "60000");
    let ok = client(&broker, &["cp-alter", "cfg:DELETE:segment.ms"]);
    assert_eq!(ok, json!({"cfg": null}));
    assert_eq!(
        topic_config(&broker, "cfg", "retention.ms"),
        "5000",
        "incremental keeps the rest"
    );

    // AlterConfigs (legacy) replaces the whole set.
    let ok = client(&broker, &["--legacy", "cp-alter", "cfg:max.message.bytes=2000"]);
    assert_eq!(ok, json!({"cfg": null}));
    assert_eq!(topic_config(&broker, "cfg", "retention.ms"), before);
    assert_eq!(topic_config(&broker, "cfg", "max.message.bytes"), "2000");

    // kafka-python.
    let kp = client(&broker, &["kp-alter", "cfg:retention.ms=7000"]);
    assert_eq!(kp, json!({"cfg": "OK"}));
    let kp = client(&broker, &["kp-alter", "cfg:retention.ms=abc"]);
    assert!(kp["cfg"].as_str().unwrap().contains("InvalidConfig"), "{kp}");
    let seen = client(&broker, &["kp-describe", "cfg"]);
    assert_eq!(seen["cfg"]["retention.ms"], "7000", "{seen}");

    // Durable, and the new max.message.bytes is live: a larger batch is refused.
    broker.kill();
    broker.start_again();
    assert_eq!(topic_config(&broker, "cfg", "retention.ms"), "7000");
    let big = common::batch(0, 200, weir_protocol::record_batch::Compression::None);
    assert!(big.len() > 2000);
    let refused = broker.client().produce("cfg", 0, big, -1).unwrap_err();
    assert_eq!(refused.code(), Some(10), "MESSAGE_TOO_LARGE");
}

#[test]
fn given_serve_flags_when_the_broker_resource_is_described_should_show_them_under_kafkas_names() {
    let broker = Broker::start(&["--shards", "2", "--retention-ms", "123456"]);
    let seen = client(&broker, &["cp-describe", "broker:0"]);
    let configs = &seen["broker:0"];
    assert_eq!(
        configs["log.retention.ms"],
        json!({"value": "123456", "source": 4}),
        "STATIC_BROKER_CONFIG: {seen}"
    );
    assert_eq!(
        configs["num.partitions"],
        json!({"value": "1", "source": 5}),
        "{seen}"
    );
    assert_eq!(configs["auto.create.topics.enable"]["value"], "true", "{seen}");
    assert_eq!(
        configs["group.consumer.migration.policy"],
        json!({"value": "bidirectional", "source": 5}),
        "{seen}"
    );
    assert_eq!(
        configs["log.segment.bytes"]["value"],
        (1u64 << 30).to_string(),
        "{seen}"
    );
    // Broker configs are static: altering them is refused, and the broker keeps serving.
    let kp = client(&broker, &["kp-describe", "broker/0"]);
    assert_eq!(kp["broker/0"]["log.retention.ms"], "123456", "{kp}");
    assert_eq!(kp["broker/0"]["num.partitions"], "1", "{kp}");
    let refused = client(&broker, &["cp-alter", "broker/0:SET:log.retention.ms=1"]);
    assert_eq!(refused, json!({"0": "INVALID_REQUEST"}));
    let seen = client(&broker, &["cp-describe", "broker:0"]);
    assert_eq!(seen["broker:0"]["log.retention.ms"]["value"], "123456");
    // A topic inherits retention.ms from the flag: STATIC_BROKER_CONFIG, as Kafka reports a
    // topic config that comes from a static broker config; its own override is TOPIC_CONFIG.
    broker.client().create_topic("inherits", 1, &[]).unwrap();
    broker
        .client()
        .create_topic("own", 1, &[("retention.ms", "999")])
        .unwrap();
    let seen = client(&broker, &["cp-describe", "inherits", "own"]);
    assert_eq!(
        seen["inherits"]["retention.ms"],
        json!({"value": "123456", "source": 4}),
        "{seen}"
    );
    assert_eq!(seen["inherits"]["segment.bytes"]["source"], 5, "{seen}");
    assert_eq!(
        seen["own"]["retention.ms"],
        json!({"value": "999", "source": 1}),
        "{seen}"
    );
}

#[test]
fn given_kafkajs_admin_when_partitions_records_and_configs_change_should_see_the_changes() {
    let broker = Broker::start(BROKER_FLAGS);
    broker.client().create_topic("kjs", 1, &[]).unwrap();
    produce(&broker, "kjs", 0, 5);
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients");
    let out = Command::new("node")
        .arg(format!("{dir}/admin_b.js"))
        .args([&broker.addr(), "kjs"])
        .current_dir(dir)
        .output()
        .expect("node runs");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
        "admin_b.js failed: {}\nstdout: {}\nstderr: {}\nbroker log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        broker.log()
    );
    // And the broker agrees.
    let seen = client(&broker, &["cp-earliest", "kjs:0"]);
    assert_eq!(seen["kjs:0"]["earliest"], 3, "{seen}");
    assert_eq!(partition_count(&broker, "kjs"), 3);
}

fn weir_cli(broker: &Broker, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .args(["--bootstrap", &broker.addr()])
        .output()
        .expect("weir runs")
}

fn cli_ok(broker: &Broker, args: &[&str]) -> String {
    let out = weir_cli(broker, args);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "weir {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn cli_fails(broker: &Broker, args: &[&str]) -> String {
    let out = weir_cli(broker, args);
    assert!(!out.status.success(), "weir {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn given_the_cli_when_topics_change_should_grow_delete_records_and_alter_configs() {
    let broker = Broker::start(BROKER_FLAGS);
    broker.client().create_topic("cli", 1, &[]).unwrap();
    produce(&broker, "cli", 0, 6);

    let grown = cli_ok(&broker, &["topic", "add-partitions", "cli", "--count", "3"]);
    assert!(grown.contains("now has 3 partition(s)"), "{grown}");
    assert_eq!(partition_count(&broker, "cli"), 3);
    let err = cli_fails(&broker, &["topic", "add-partitions", "cli", "--count", "2"]);
    assert!(
        err.contains("INVALID_PARTITIONS") || err.contains("InvalidPartitions"),
        "{err}"
    );
    let err = cli_fails(&broker, &["topic", "add-partitions", "nope", "--count", "2"]);
    assert!(err.contains("not found"), "{err}");

    let moved = cli_ok(
        &broker,
        &[
            "topic",
            "delete-records",
            "cli",
            "--partition",
            "0",
            "--before",
            "4",
        ],
    );
    assert!(moved.contains("now starts at offset 4"), "{moved}");
    let err = cli_fails(
        &broker,
        &[
            "topic",
            "delete-records",
            "cli",
            "--partition",
            "0",
            "--before",
            "99",
        ],
    );
    assert!(
        err.contains("OFFSET_OUT_OF_RANGE") || err.contains("OffsetOutOfRange"),
        "{err}"
    );
    let all = cli_ok(
        &broker,
        &[
            "topic",
            "delete-records",
            "cli",
            "--partition",
            "0",
            "--before",
            "-1",
        ],
    );
    assert!(all.contains("now starts at offset 6"), "{all}");

    cli_alter_config(&broker);
}

/// `weir topic alter-config` on the topic "cli".
fn cli_alter_config(broker: &Broker) {
    let altered = cli_ok(
        broker,
        &[
            "topic",
            "alter-config",
            "cli",
            "--set",
            "retention.ms=5000",
            "--delete",
            "segment.ms",
        ],
    );
    assert!(altered.contains("altered 2 config(s)"), "{altered}");
    assert_eq!(topic_config(broker, "cli", "retention.ms"), "5000");
    let err = cli_fails(
        broker,
        &["topic", "alter-config", "cli", "--set", "retention.ms=x"],
    );
    assert!(
        err.contains("INVALID_CONFIG") || err.contains("InvalidConfig"),
        "{err}"
    );
    assert_eq!(topic_config(broker, "cli", "retention.ms"), "5000");
}
