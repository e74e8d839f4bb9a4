//! Admin APIs and offset commits as a real client sees them: confluent-kafka's AdminClient
//! and Consumer (`tests/clients/admin_checks.py`) against a 2-shard broker in zero-hop mode,
//! which advertises two brokers (ids 0 and 1). Covers explicit replica assignments,
//! topic-level `compression.type`, replication factor up to the advertised broker count,
//! OffsetCommit for unknown topics/partitions (also through kafka-python's admin client,
//! which shows each partition's error) and authorized operations.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::Broker;
use serde_json::{json, Value};
use weir_protocol::record_batch::{validate, BatchWalker, Compression};

/// Two shards = two advertised brokers; a default partition count that an explicit
/// assignment must not fall back to.
const BROKER_FLAGS: &[&str] = &["--shards", "2", "--default-partitions", "4"];

fn python() -> PathBuf {
    common::venv_python("confluent_kafka")
}

/// Runs one `admin_checks.py` sub-command against `broker`; its JSON answer.
fn client(broker: &Broker, args: &[&str]) -> Value {
    let out = Command::new(python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/clients/admin_checks.py"
        ))
        .args(["--bootstrap", &broker.addr()])
        .args(args)
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "admin_checks.py {args:?} failed: {}\nstdout: {stdout}\nstderr: {}\nbroker log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        broker.log()
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("bad JSON from {args:?}: {e}: {stdout}"))
}

/// Creates the topics of `specs` (`admin_checks.py create`) in one request; per topic name,
/// its error or the partitions Metadata reports. One client process per call: each costs
/// about a second on a loaded 2-core machine.
fn create(broker: &Broker, specs: Value) -> Value {
    client(broker, &["create", &specs.to_string()])
}

fn create_one(broker: &Broker, spec: Value) -> Value {
    let topic = spec["topic"].as_str().unwrap().to_string();
    create(broker, json!([spec]))[&topic].clone()
}

/// (leader, replicas, isrs) per partition, in partition order.
fn layout(created: &Value) -> Vec<(i64, Vec<i64>, Vec<i64>)> {
    assert_eq!(created["error"], Value::Null, "{created}");
    let ids = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect()
    };
    created["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["leader"].as_i64().unwrap(),
                ids(&p["replicas"]),
                ids(&p["isrs"]),
            )
        })
        .collect()
}

#[test]
fn given_an_explicit_replica_assignment_when_confluent_creates_the_topic_should_make_one_partition_per_entry_led_by_its_first_broker(
) {
    let broker = Broker::start(BROKER_FLAGS);

    let created = create(
        &broker,
        json!([
            {"topic": "one", "assignment": [[1]]},
            {"topic": "three", "assignment": [[1], [0], [1]]},
            {"topic": "two-replicas", "assignment": [[1, 0], [0, 1]]},
            // Broker ids must be ones Metadata advertises, once per partition, same count everywhere.
            {"topic": "unknown-broker", "assignment": [[7]]},
            {"topic": "twice", "assignment": [[0, 0]]},
            {"topic": "uneven", "assignment": [[0], [0, 1]]},
        ]),
    );
    assert_eq!(layout(&created["one"]), vec![(1, vec![1], vec![1])], "{created}");
    assert_eq!(
        layout(&created["three"]),
        vec![
            (1, vec![1], vec![1]),
            (0, vec![0], vec![0]),
            (1, vec![1], vec![1])
        ],
        "{created}"
    );
    assert_eq!(
        layout(&created["two-replicas"]),
        vec![(1, vec![1, 0], vec![1, 0]), (0, vec![0, 1], vec![0, 1])],
        "{created}"
    );
    for topic in ["unknown-broker", "twice", "uneven"] {
        assert_eq!(
            created[topic],
            json!({"error": "INVALID_REPLICA_ASSIGNMENT"}),
            "{topic}: {created}"
        );
    }
    let listed = client(&broker, &["describe-topics", "--topic", "unknown-broker"]);
    assert_eq!(
        listed["error"], "UNKNOWN_TOPIC_OR_PART",
        "a refused topic is not created: {listed}"
    );
}

#[test]
fn given_each_kafka_compression_type_when_a_topic_is_created_with_it_should_store_and_describe_it_and_keep_batches_as_sent(
) {
    let broker = Broker::start(BROKER_FLAGS);
    let codecs = ["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
    let mut specs: Vec<Value> = codecs
        .iter()
        .map(|c| json!({"topic": format!("c-{c}"), "partitions": 1, "config": {"compression.type": c}}))
        .collect();
    specs.push(json!({"topic": "c-brotli", "config": {"compression.type": "brotli"}}));
    let created = create(&broker, Value::Array(specs));
    assert_eq!(
        created["c-brotli"],
        json!({"error": "INVALID_CONFIG"}),
        "{created}"
    );
    let topics: Vec<String> = codecs.iter().map(|c| format!("c-{c}")).collect();
    for topic in &topics {
        assert_eq!(created[topic]["error"], Value::Null, "{topic}: {created}");
    }
    let mut args = vec!["describe-configs"];
    args.extend(topics.iter().map(String::as_str));
    let configs = client(&broker, &args);
    for (topic, codec) in topics.iter().zip(codecs) {
        // `producer` is the default; any other value is the topic's own.
        let source = if codec == "producer" {
            "DEFAULT_CONFIG"
        } else {
            "DYNAMIC_TOPIC_CONFIG"
        };
        assert_eq!(
            configs[topic]["compression.type"],
            json!({"value": codec, "source": source}),
            "{configs}"
        );
    }
    assert_eq!(
        configs["c-lz4"]["retention.ms"]["source"], "DEFAULT_CONFIG",
        "{configs}"
    );

    // The topic says lz4, the producer sends gzip: the batches are kept as sent and read back.
    let round_trip = client(
        &broker,
        &[
            "produce-consume",
            "--topic",
            "c-lz4",
            "--compression",
            "gzip",
            "--count",
            "20",
        ],
    );
    let expected: Vec<String> = (0..20).map(|i| format!("value-{i}")).collect();
    assert_eq!(round_trip, json!({"produce_errors": [], "consumed": expected}));
    let (_, records) = broker.client().fetch("c-lz4", 0, 0, 1 << 20, 1000).unwrap();
    let codecs: Vec<Compression> = BatchWalker::new(&records)
        .map(|range| validate(&records[range]).unwrap().compression().unwrap())
        .collect();
    assert!(!codecs.is_empty());
    assert!(
        codecs.iter().all(|c| *c == Compression::Gzip),
        "stored as the producer compressed them: {codecs:?}"
    );
}

#[test]
fn given_two_advertised_brokers_when_replication_factor_two_is_asked_should_create_and_report_two_in_sync_replicas(
) {
    let mut broker = Broker::start(BROKER_FLAGS);
    let created = create(
        &broker,
        json!([
            {"topic": "rf2", "partitions": 4, "rf": 2},
            {"topic": "rf3", "partitions": 1, "rf": 3},
        ]),
    );
    assert_eq!(
        created["rf3"],
        json!({"error": "INVALID_REPLICATION_FACTOR"}),
        "{created}"
    );
    let check = |what: &str, layout: Vec<(i64, Vec<i64>, Vec<i64>)>| {
        assert_eq!(layout.len(), 4, "{what}");
        for (leader, replicas, isrs) in layout {
            let other = 1 - leader;
            assert_eq!(
                replicas,
                vec![leader, other],
                "{what}: leader first, then the other broker"
            );
            assert_eq!(
                isrs, replicas,
                "{what}: one copy on disk, so every replica is in sync"
            );
        }
    };
    check("metadata after create", layout(&created["rf2"]));

    let described = client(&broker, &["describe-topics", "--topic", "rf2"]);
    assert_eq!(described["error"], Value::Null, "{described}");
    for p in described["partitions"].as_array().unwrap() {
        assert_eq!(p["replicas"].as_array().unwrap().len(), 2, "{described}");
        assert_eq!(p["isr"], p["replicas"], "{described}");
        assert_eq!(p["replicas"][0], p["leader"], "{described}");
    }

    // The replica lists are part of the durable catalog.
    broker.restart();
    let listed = client(&broker, &["describe-topics", "--topic", "rf2"]);
    assert_eq!(
        listed["partitions"], described["partitions"],
        "same replicas after a restart"
    );
}

#[test]
fn given_an_unknown_topic_or_partition_when_confluent_commits_offsets_should_answer_unknown_topic_or_partition_for_it_only(
) {
    let broker = Broker::start(BROKER_FLAGS);
    let created = create_one(&broker, json!({"topic": "known", "partitions": 2}));
    assert_eq!(created["error"], Value::Null, "{created}");

    let committed = client(
        &broker,
        &["commit", "--group", "g", "nope:0:5", "known:0:7", "known:2:3"],
    );
    // librdkafka 2.16 hands the first partition error to every partition of the commit
    // callback, so which partition failed shows in what was stored: only known:0 (-1001 is
    // librdkafka's "no offset"), in the order asked: nope:0, known:0, known:2. The
    // per-partition answer itself is checked by the handler's unit test
    // (given_unknown_topics_and_partitions_when_committing_...) and by kafka-python below.
    assert_eq!(committed["error"], "UNKNOWN_TOPIC_OR_PART", "{committed}");
    let offsets: Vec<i64> = committed["committed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(offsets, vec![-1001, 7, -1001], "{committed}");

    // kafka-python shows each partition's answer as sent: only the unknown ones fail.
    let per_partition = client(
        &broker,
        &[
            "commit-kafka-python",
            "--group",
            "g2",
            "nope:0:5",
            "known:0:7",
            "known:2:3",
        ],
    );
    assert_eq!(
        per_partition,
        json!([
            ["known", 0, "NoError"],
            ["known", 2, "UnknownTopicOrPartitionError"],
            ["nope", 0, "UnknownTopicOrPartitionError"],
        ])
    );

    // A commit of known partitions only still succeeds.
    let ok = client(&broker, &["commit", "--group", "g", "known:1:4"]);
    assert_eq!(ok["error"], Value::Null, "{ok}");
    assert_eq!(ok["committed"][0]["offset"], 4, "{ok}");
}

/// Kafka's topic operations (AclOperation names as confluent-kafka spells them).
const TOPIC_OPERATIONS: &[&str] = &[
    "ALTER",
    "ALTER_CONFIGS",
    "CREATE",
    "DELETE",
    "DESCRIBE",
    "DESCRIBE_CONFIGS",
    "READ",
    "WRITE",
];

#[test]
fn given_no_acls_when_confluent_describes_a_topic_and_the_cluster_with_authorized_operations_should_allow_every_operation(
) {
    let broker = Broker::start(BROKER_FLAGS);
    let created = create_one(&broker, json!({"topic": "ops", "partitions": 2}));
    assert_eq!(created["error"], Value::Null, "{created}");

    let described = client(
        &broker,
        &["describe-topics", "--topic", "ops", "--authorized-operations"],
    );
    assert_eq!(described["error"], Value::Null, "{described}");
    assert_eq!(
        described["authorized_operations"],
        json!(TOPIC_OPERATIONS),
        "{described}"
    );

    // Not asked for: none reported (Kafka sends the "not requested" sentinel).
    let plain = client(&broker, &["describe-topics", "--topic", "ops"]);
    assert_eq!(plain["authorized_operations"], Value::Null, "{plain}");

    // librdkafka's describe_cluster asks Metadata (v8-10) for the cluster's operations.
    let cluster = client(&broker, &["describe-cluster", "--authorized-operations"]);
    assert_eq!(
        cluster,
        json!({"error": null, "nodes": [0, 1], "authorized_operations": CLUSTER_OPERATIONS})
    );

    // A group's operations: every one Kafka defines for a group.
    let committed = client(&broker, &["commit", "--group", "ops-g", "ops:0:1"]);
    assert_eq!(committed[0]["error"], Value::Null, "{committed}");
    let group = client(&broker, &["describe-group", "--group", "ops-g"]);
    assert_eq!(
        group,
        json!({"error": null, "authorized_operations": ["DELETE", "DESCRIBE", "READ"]})
    );
}

/// Kafka's cluster operations.
const CLUSTER_OPERATIONS: &[&str] = &[
    "ALTER",
    "ALTER_CONFIGS",
    "CLUSTER_ACTION",
    "CREATE",
    "DESCRIBE",
    "DESCRIBE_CONFIGS",
    "IDEMPOTENT_WRITE",
];
