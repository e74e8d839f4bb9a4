//! DeleteGroups, DescribeCluster, ElectLeaders and DescribeLogDirs as real admin clients see
//! them, each in its default configuration: confluent-kafka's AdminClient and kafka-python's
//! KafkaAdminClient (`tests/clients/admin_apis_a.py`), kafkajs's admin
//! (`tests/clients/admin_apis_a.js`), and `weir group delete`, against a fresh 2-shard broker
//! in zero-hop mode (two advertised brokers). Bad input gets Kafka's error codes and the
//! broker keeps serving.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use bytes::Bytes;
use common::Broker;
use serde_json::{json, Value};

const CLIENTS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients");
const BROKER_FLAGS: &[&str] = &["--shards", "2", "--group-initial-rebalance-delay-ms", "100"];

fn python() -> PathBuf {
    common::venv_python("confluent_kafka, kafka")
}

/// Runs one `admin_apis_a.py` sub-command against `broker`; its JSON answer.
fn py(broker: &Broker, args: &[&str]) -> Value {
    let out = Command::new(python())
        .arg(format!("{CLIENTS_DIR}/admin_apis_a.py"))
        .args(["--bootstrap", &broker.addr()])
        .args(args)
        .output()
        .expect("python runs");
    parse(broker, &format!("admin_apis_a.py {args:?}"), &out)
}

/// Runs `admin_apis_a.js` (kafkajs): deletes `groups` one by one, lists, describes the cluster.
fn kafkajs(broker: &Broker, groups: &[&str]) -> Value {
    let modules = PathBuf::from(CLIENTS_DIR).join("node_modules/kafkajs");
    assert!(
        modules.is_dir(),
        "{} is missing: run `make test-deps` (or `make test`)",
        modules.display()
    );
    let out = Command::new("node")
        .arg(format!("{CLIENTS_DIR}/admin_apis_a.js"))
        .arg(broker.addr())
        .args(groups)
        .current_dir(CLIENTS_DIR)
        .output()
        .expect("node runs");
    parse(broker, "admin_apis_a.js", &out)
}

fn parse(broker: &Broker, what: &str, out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{what} failed: {}\nstdout: {stdout}\nstderr: {}\nbroker log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        broker.log()
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("bad JSON from {what}: {e}: {stdout}"))
}

fn weir(broker: &Broker, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .args(["--bootstrap", &broker.addr()])
        .output()
        .expect("weir runs")
}

/// Commits offsets for `groups` as an admin (no members): each becomes an Empty group.
fn groups_with_offsets(broker: &Broker, topic: &str, groups: &[&str]) {
    let mut c = broker.client();
    for g in groups {
        c.commit_offsets(g, -1, "", &[(topic, 0, 5), (topic, 1, 7)])
            .unwrap();
        assert_eq!(c.fetch_offsets(g, None).unwrap().len(), 2, "{g}");
    }
}

fn assert_offsets_gone(broker: &Broker, group: &str) {
    let offsets = broker.client().fetch_offsets(group, None).unwrap();
    assert!(offsets.is_empty(), "{group} still has offsets {offsets:?}");
}

fn listed(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn given_groups_when_deleted_by_each_admin_client_should_drop_them_with_their_offsets_and_refuse_unknown_and_busy_ones(
) {
    let broker = Broker::start(BROKER_FLAGS);
    broker.client().create_topic("dg", 2, &[]).unwrap();
    let groups = ["dg-ck", "dg-kp", "dg-kjs", "dg-keep"];
    groups_with_offsets(&broker, "dg", &groups);
    // A live member keeps "dg-busy" non-empty for the whole test (30 s session).
    let mut member = broker.client();
    member
        .join_group("dg-busy", "", 30_000, &[("range", Bytes::new())])
        .unwrap();

    let ck = py(
        &broker,
        &["ck-delete-groups", "--groups", "dg-ck", "dg-none", "dg-busy"],
    );
    let want = json!({"dg-ck": null, "dg-none": "GROUP_ID_NOT_FOUND", "dg-busy": "NON_EMPTY_GROUP"});
    assert_eq!(ck["results"], want, "{ck}");
    let after = listed(&ck["listed"]);
    assert!(!after.contains(&"dg-ck".to_string()), "{ck}");
    assert!(
        after.contains(&"dg-busy".to_string()) && after.contains(&"dg-keep".to_string()),
        "{ck}"
    );
    assert_offsets_gone(&broker, "dg-ck");

    let kp = py(
        &broker,
        &["kp-delete-groups", "--groups", "dg-kp", "dg-none", "dg-busy"],
    );
    let want = json!({"dg-kp": "OK", "dg-none": "GroupIdNotFoundError", "dg-busy": "NonEmptyGroupError"});
    assert_eq!(kp["results"], want, "{kp}");
    assert!(!listed(&kp["listed"]).contains(&"dg-kp".to_string()), "{kp}");
    assert_offsets_gone(&broker, "dg-kp");

    let kjs = kafkajs(&broker, &["dg-kjs", "dg-none", "dg-busy"]);
    assert_eq!(
        kjs["deleted"],
        json!({"dg-kjs": null, "dg-none": 69, "dg-busy": 68}),
        "{kjs}"
    );
    let after = listed(&kjs["listed"]);
    assert!(
        !after.contains(&"dg-kjs".to_string()) && after.contains(&"dg-keep".to_string()),
        "{kjs}"
    );
    assert_offsets_gone(&broker, "dg-kjs");
    assert_eq!(broker.client().fetch_offsets("dg-keep", None).unwrap().len(), 2);
}

#[test]
fn given_a_deleted_group_when_the_broker_restarts_should_stay_deleted() {
    let mut broker = Broker::start(BROKER_FLAGS);
    broker.client().create_topic("dgr", 2, &[]).unwrap();
    groups_with_offsets(&broker, "dgr", &["dgr-gone", "dgr-kept"]);
    broker.client().delete_group("dgr-gone").unwrap();
    broker.restart();
    assert_offsets_gone(&broker, "dgr-gone");
    assert_eq!(broker.client().fetch_offsets("dgr-kept", None).unwrap().len(), 2);
    let names: Vec<String> = broker
        .client()
        .list_groups()
        .unwrap()
        .into_iter()
        .map(|g| g.group_id)
        .collect();
    assert_eq!(names, ["dgr-kept"]);
}

#[test]
fn given_weir_group_delete_when_run_should_delete_an_empty_group_and_explain_unknown_and_busy_ones() {
    let broker = Broker::start(BROKER_FLAGS);
    broker.client().create_topic("dgc", 2, &[]).unwrap();
    groups_with_offsets(&broker, "dgc", &["dgc-empty"]);
    let mut member = broker.client();
    member
        .join_group("dgc-busy", "", 30_000, &[("range", Bytes::new())])
        .unwrap();

    let out = weir(&broker, &["group", "delete", "dgc-empty"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "deleted group dgc-empty\n");
    assert_offsets_gone(&broker, "dgc-empty");

    for (group, message) in [
        ("dgc-empty", "group \"dgc-empty\" not found"),
        ("dgc-busy", "group \"dgc-busy\" has members"),
    ] {
        let out = weir(&broker, &["group", "delete", group]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(message), "{err}");
    }
    // Still serving.
    let list = weir(&broker, &["group", "list"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("dgc-busy"));
}
