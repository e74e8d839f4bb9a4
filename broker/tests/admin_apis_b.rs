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
