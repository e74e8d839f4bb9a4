//! DeleteGroups, DescribeCluster, ElectLeaders and DescribeLogDirs as real admin clients see
//! them, each in its default configuration: confluent-kafka's AdminClient and kafka-python's
//! KafkaAdminClient (`tests/clients/admin_apis_a.py`), kafkajs's admin
//! (`tests/clients/admin_apis_a.js`), and `weir group delete`, against a fresh 2-shard broker
//! in zero-hop mode (two advertised brokers), plus edge requests no client sends, on the wire
//! (endpoint types, election types, v0, cluster-wide). Bad input gets Kafka's error codes and the
//! broker keeps serving.

mod common;

use std::path::PathBuf;
use std::process::Command;

use bytes::Bytes;
use common::Broker;
use serde_json::{json, Value};
use weir_protocol::record_batch::Compression;

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
    broker.json_from(&format!("admin_apis_a.py {args:?}"), &out)
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
    broker.json_from("admin_apis_a.js", &out)
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

    let out = broker.weir(&["group", "delete", "dgc-empty"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "deleted group dgc-empty\n");
    assert_offsets_gone(&broker, "dgc-empty");

    for (group, message) in [
        ("dgc-empty", "group \"dgc-empty\" not found"),
        ("dgc-busy", "group \"dgc-busy\" has members"),
    ] {
        let out = broker.weir(&["group", "delete", group]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(message), "{err}");
    }
    // Still serving.
    let list = broker.weir(&["group", "list"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("dgc-busy"));
}

/// (node id, host, port) triples from a JSON list of lists.
fn nodes(v: &Value) -> Vec<(i64, String, i64)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n[0].as_i64().unwrap(),
                n[1].as_str().unwrap().to_string(),
                n[2].as_i64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn given_a_two_shard_broker_when_admin_clients_describe_the_cluster_should_see_the_metadata_brokers() {
    let broker = Broker::start(BROKER_FLAGS);
    let ck = py(&broker, &["ck-describe-cluster"]);
    let advertised = nodes(&ck["metadata_brokers"]);
    assert_eq!(advertised.len(), 2, "{ck}");
    assert_eq!(nodes(&ck["nodes"]), advertised, "{ck}");
    assert_eq!(ck["cluster_id"], ck["metadata_cluster_id"], "{ck}");
    assert!(ck["cluster_id"].as_str().is_some_and(|id| !id.is_empty()), "{ck}");
    assert_eq!(ck["controller"], 0, "{ck}");
    let operations = json!([
        "ALTER",
        "ALTER_CONFIGS",
        "CLUSTER_ACTION",
        "CREATE",
        "DESCRIBE",
        "DESCRIBE_CONFIGS",
        "IDEMPOTENT_WRITE"
    ]);
    assert_eq!(ck["operations"], operations, "{ck}");
    assert_eq!(ck["plain_operations"], Value::Null, "{ck}");

    let kp = py(&broker, &["kp-describe-cluster"]);
    assert_eq!(nodes(&kp["nodes"]), advertised, "{kp}");
    assert_eq!(kp["cluster_id"], ck["cluster_id"], "{kp}");
    assert_eq!(kp["controller"], 0, "{kp}");

    let kjs = kafkajs(&broker, &[]);
    let kjs_nodes: Vec<(i64, String, i64)> = kjs["cluster"]["brokers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["nodeId"].as_i64().unwrap(),
                b["host"].as_str().unwrap().to_string(),
                b["port"].as_i64().unwrap(),
            )
        })
        .collect();
    let mut kjs_nodes = kjs_nodes;
    kjs_nodes.sort();
    assert_eq!(kjs_nodes, advertised, "{kjs}");
    assert_eq!(kjs["cluster"]["clusterId"], ck["cluster_id"], "{kjs}");
    assert_eq!(kjs["cluster"]["controller"], 0, "{kjs}");
}

#[test]
fn given_a_single_address_broker_when_described_should_show_one_node() {
    let broker = Broker::start(&["--shards", "2", "--single-address"]);
    let ck = py(&broker, &["ck-describe-cluster"]);
    let advertised = nodes(&ck["metadata_brokers"]);
    assert_eq!(advertised.len(), 1, "{ck}");
    assert_eq!(nodes(&ck["nodes"]), advertised, "{ck}");
}

#[test]
fn given_existing_and_unknown_partitions_when_leaders_are_elected_should_need_no_election_and_refuse_unknown_ones(
) {
    let broker = Broker::start(BROKER_FLAGS);
    broker.client().create_topic("el", 2, &[]).unwrap();
    let parts = ["--partitions", "el:0", "el:1", "el:7", "nope:0"];
    let ck = py(&broker, &[&["ck-elect"][..], &parts[..]].concat());
    let want = json!({
        "el:0": "ELECTION_NOT_NEEDED",
        "el:1": "ELECTION_NOT_NEEDED",
        "el:7": "UNKNOWN_TOPIC_OR_PART",
        "nope:0": "UNKNOWN_TOPIC_OR_PART"
    });
    assert_eq!(ck["preferred"], want, "{ck}");
    assert_eq!(ck["unclean"], want, "{ck}");

    let kp = py(&broker, &[&["kp-elect"][..], &parts[..]].concat());
    let want = json!({
        "el:0": "ElectionNotNeededError",
        "el:1": "ElectionNotNeededError",
        "el:7": "UnknownTopicOrPartitionError",
        "nope:0": "UnknownTopicOrPartitionError"
    });
    assert_eq!(kp["preferred"], want, "{kp}");
    assert_eq!(kp["unclean"], want, "{kp}");
    // Still serving.
    assert_eq!(broker.client().metadata(Some(&["el"])).unwrap().topics.len(), 1);
}

/// (broker, size) of `key` ("topic:partition") in a `kp-describe-log-dirs` answer.
fn sizes_of(v: &Value, key: &str) -> Vec<(i64, i64)> {
    v["sizes"][key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} missing: {v}"))
        .iter()
        .map(|e| {
            assert_eq!(e[2], 0, "offset lag: {v}");
            assert_eq!(e[3], false, "is_future: {v}");
            (e[0].as_i64().unwrap(), e[1].as_i64().unwrap())
        })
        .collect()
}

#[test]
fn given_produced_data_when_log_dirs_are_described_should_report_growing_sizes_once_per_partition() {
    let broker = Broker::start(BROKER_FLAGS);
    let mut c = broker.client();
    c.create_topic("ld", 2, &[]).unwrap();
    c.create_topic("ld-other", 1, &[]).unwrap();
    c.produce("ld", 0, common::batch(0, 50, Compression::None), -1)
        .unwrap();
    let ck = py(&broker, &["ck-has-describe-log-dirs"]);
    let all = py(&broker, &["kp-describe-log-dirs"]);
    // One log dir per broker (the data dir), no error.
    let dirs = all["dirs"].as_array().unwrap();
    assert_eq!(dirs.len(), 2, "{all}");
    let data_dir = broker.data_dir().canonicalize().unwrap();
    for d in dirs {
        assert_eq!(d[1], 0, "{all}");
        let dir = PathBuf::from(d[2].as_str().unwrap()).canonicalize().unwrap();
        assert_eq!(dir, data_dir, "{all}");
    }
    let before = sizes_of(&all, "ld:0");
    assert_eq!(before.len(), 1, "reported by its leader only: {all}");
    assert!(before[0].1 > 0, "{all}");
    assert_eq!(sizes_of(&all, "ld:1")[0].1, 0, "{all}");
    assert!(all["sizes"]["ld-other:0"].is_array(), "{all}");

    c.produce("ld", 0, common::batch(50, 50, Compression::None), -1)
        .unwrap();
    let only = py(&broker, &["kp-describe-log-dirs", "--partitions", "ld:0", "ld:1"]);
    let after = sizes_of(&only, "ld:0");
    assert!(after[0].1 > before[0].1, "{before:?} -> {after:?}");
    assert!(only["sizes"].get("ld-other:0").is_none(), "filter: {only}");
    let unknown = py(&broker, &["kp-describe-log-dirs", "--partitions", "nope:0"]);
    assert_eq!(unknown["sizes"], json!({}), "{unknown}");
    // confluent-kafka 2.16 has no describe_log_dirs; if a later one does, extend this test.
    assert_eq!(ck["available"], false, "{ck}");
}

/// Requests no admin client here sends, on the wire: each gets Kafka's code, and the
/// broker keeps serving.
#[test]
fn given_edge_requests_on_the_wire_should_answer_kafkas_codes_and_keep_serving() {
    use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
    use kafka_protocol::messages::{
        DeleteGroupsRequest, DescribeClusterRequest, DescribeLogDirsRequest, ElectLeadersRequest, GroupId,
        TopicName,
    };
    use kafka_protocol::protocol::StrBytes;

    let broker = Broker::start(BROKER_FLAGS);
    let mut c = broker.client();
    c.create_topic("edge", 2, &[]).unwrap();
    let cluster = |t: i8| DescribeClusterRequest::default().with_endpoint_type(t);
    assert_eq!(c.call_at(1, cluster(2)).unwrap().error_code, 114, "controllers");
    assert_eq!(c.call_at(1, cluster(9)).unwrap().error_code, 115, "unknown type");

    let all = c.call_at(2, ElectLeadersRequest::default().with_topic_partitions(None));
    let all = all.unwrap();
    assert_eq!(all.error_code, 0);
    assert!(
        all.replica_election_results.is_empty(),
        "cluster-wide: no election ran"
    );
    let named = Some(vec![TopicPartitions::default()
        .with_topic(TopicName(StrBytes::from_static_str("edge")))
        .with_partitions(vec![0, 1])]);
    let v0 = c
        .call_at(
            0,
            ElectLeadersRequest::default().with_topic_partitions(named.clone()),
        )
        .unwrap();
    let codes: Vec<i16> = v0.replica_election_results[0]
        .partition_result
        .iter()
        .map(|p| p.error_code)
        .collect();
    assert_eq!(codes, [0, 0], "v0 has no ELECTION_NOT_NEEDED");
    let bad = ElectLeadersRequest::default()
        .with_election_type(5)
        .with_topic_partitions(named);
    assert_eq!(c.call_at(2, bad).unwrap().error_code, 42, "INVALID_REQUEST");

    // The bootstrap address is no one node: every partition, from both shards.
    let dirs = c
        .call_at(4, DescribeLogDirsRequest::default().with_topics(None))
        .unwrap();
    assert_eq!(dirs.results.len(), 1);
    let dir = &dirs.results[0];
    assert!(dir.total_bytes > 0 && dir.usable_bytes >= 0, "{dir:?}");
    let edge = dir.topics.iter().find(|t| t.name.as_str() == "edge").unwrap();
    let partitions: Vec<i32> = edge.partitions.iter().map(|p| p.partition_index).collect();
    assert_eq!(partitions, [0, 1]);

    let empty_id =
        DeleteGroupsRequest::default().with_groups_names(vec![GroupId(StrBytes::from_static_str(""))]);
    assert_eq!(
        c.call_at(2, empty_id).unwrap().results[0].error_code,
        24,
        "INVALID_GROUP_ID"
    );
    assert_eq!(c.metadata(Some(&["edge"])).unwrap().topics.len(), 1);
}

/// A DescribeTopicPartitions answer: (topic, partitions) in order, and the next cursor.
type Page = (Vec<(String, Vec<i32>)>, Option<(String, i32)>);

/// DescribeTopicPartitions edges no client here sends, on the wire: every topic (none
/// named) paged by a limit falling between topics and inside one, a limit of 0 (clamped to
/// 1), an invalid topic name.
#[test]
fn given_describe_topic_partitions_on_the_wire_should_page_every_topic_by_cursor() {
    use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
    use kafka_protocol::messages::{
        DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
    };
    use kafka_protocol::protocol::StrBytes;

    let broker = Broker::start(BROKER_FLAGS);
    let mut c = broker.client();
    for (t, n) in [("dtp-a", 2), ("dtp-b", 3), ("dtp-c", 1)] {
        c.create_topic(t, n, &[]).unwrap();
    }
    let name = |s: &str| TopicName(StrBytes::from_string(s.into()));
    let mut ask = |topics: &[&str], limit: i32, cursor: Option<(String, i32)>| {
        let req = DescribeTopicPartitionsRequest::default()
            .with_topics(
                topics
                    .iter()
                    .map(|t| TopicRequest::default().with_name(name(t)))
                    .collect(),
            )
            .with_response_partition_limit(limit)
            .with_cursor(cursor.map(|(t, p)| {
                Cursor::default()
                    .with_topic_name(name(&t))
                    .with_partition_index(p)
            }));
        c.call_at(0, req).unwrap()
    };
    let pages = |r: &DescribeTopicPartitionsResponse| -> Page {
        let topics = r
            .topics
            .iter()
            .map(|t| {
                let name = t.name.as_ref().unwrap().to_string();
                (name, t.partitions.iter().map(|p| p.partition_index).collect())
            })
            .collect();
        let next = r
            .next_cursor
            .as_ref()
            .map(|c| (c.topic_name.to_string(), c.partition_index));
        (topics, next)
    };
    let owned = |v: &[(&str, &[i32])]| -> Vec<(String, Vec<i32>)> {
        v.iter().map(|(t, p)| (t.to_string(), p.to_vec())).collect()
    };
    // Every topic: 2 fills the first page exactly; the cursor points at the next topic's start.
    let (got, next) = pages(&ask(&[], 2, None));
    assert_eq!(got, owned(&[("dtp-a", &[0, 1])]));
    assert_eq!(next, Some(("dtp-b".into(), 0)));
    let (got, next) = pages(&ask(&[], 2, next));
    assert_eq!(got, owned(&[("dtp-b", &[0, 1])]));
    assert_eq!(next, Some(("dtp-b".into(), 2)));
    let (got, next) = pages(&ask(&[], 2, next));
    assert_eq!(got, owned(&[("dtp-b", &[2]), ("dtp-c", &[0])]));
    assert_eq!(next, None);
    // A limit of 0 is clamped to 1.
    let (got, next) = pages(&ask(&["dtp-c", "dtp-a"], 0, None));
    assert_eq!(got, owned(&[("dtp-a", &[0])]));
    assert_eq!(next, Some(("dtp-a".into(), 1)));
    // Named: sorted; an invalid name INVALID_TOPIC_EXCEPTION (17), an unknown one 3.
    let r = ask(&["dtp-c", "bad/name", "dtp-none"], 10, None);
    let codes: Vec<(String, i16)> = r
        .topics
        .iter()
        .map(|t| (t.name.as_ref().unwrap().to_string(), t.error_code))
        .collect();
    let want = [("bad/name", 17), ("dtp-c", 0), ("dtp-none", 3)];
    assert_eq!(codes, want.map(|(t, e)| (t.to_string(), e)));
    assert!(r.topics[1].topic_id != uuid::Uuid::nil() && r.topics[2].topic_id == uuid::Uuid::nil());
    assert_eq!(r.topics[1].partitions[0].eligible_leader_replicas, Some(vec![]));
}
