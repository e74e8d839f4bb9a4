//! ACLs as real clients see them, on a SASL_PLAINTEXT SCRAM-SHA-512 listener with
//! `--super-users User:admin`: confluent-kafka (`tests/clients/acl_client.py`, default
//! producer and consumer configs plus the SASL settings) creates, lists and deletes bindings
//! with its AdminClient; a user allowed to write `orders` produces to it (read back in order
//! by the admin), is refused reading it and writing `payments` with
//! TOPIC_AUTHORIZATION_FAILED; the bindings survive a restart. kafkajs and kafka-python
//! create, describe and delete bindings; `weir acl add|list|remove` round-trips. On the wire:
//! each refused API gets Kafka's error code (29, 30, 31, 53) and a log line with the peer,
//! the connection keeps serving; invalid bindings get INVALID_REQUEST one by one.

mod common;

use std::process::Command;

use common::sasl::{admin_client, json, start_with_admin, weir_as_admin, ADMIN};
use common::Broker;
use kafka_protocol::messages::{
    BrokerId, CreateAclsRequest, DescribeAclsRequest, FindCoordinatorRequest, InitProducerIdRequest,
    JoinGroupRequest, ListOffsetsRequest, MetadataRequest, TransactionalId,
};
use serde_json::{json, Value};
use weir_client::blocking::{Acl, Client};

const CLIENTS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients");
const ALICE: (&str, &str) = ("alice", "al1ce-Secret-pw");
const TOPIC_DENIED: i16 = 29;
const GROUP_DENIED: i16 = 30;
const CLUSTER_DENIED: i16 = 31;
const TXN_DENIED: i16 = 53;
const INVALID_REQUEST: i16 = 42;

fn start() -> Broker {
    let flags = [
        "--shards",
        "2",
        "--sasl-mechanisms",
        "SCRAM-SHA-512",
        "--super-users",
        "User:admin",
    ];
    let b = start_with_admin(&flags, true);
    let mut admin = admin_client(&b);
    let r = admin
        .upsert_user(ALICE.0, weir_protocol::scram::Mechanism::Sha512, 4096, ALICE.1)
        .unwrap();
    assert_eq!(r.error_code, 0, "{r:?}");
    b
}

fn py(b: &Broker, (user, password): (&str, &str), args: &[&str]) -> Value {
    let out = Command::new(common::venv_python("confluent_kafka"))
        .arg(format!("{CLIENTS_DIR}/acl_client.py"))
        .args(args)
        .args(["--bootstrap", &b.addr(), "--user", user, "--password", password])
        .output()
        .expect("python runs");
    json(&format!("acl_client.py {args:?}"), &out, b)
}

fn binding(resource: &str, name: &str, pattern: &str, operation: &str, permission: &str) -> Value {
    json!({"resource": resource, "name": name, "pattern": pattern, "principal": "User:alice",
           "host": "*", "operation": operation, "permission": permission})
}

/// The values `n` records produced round-robin over `partitions` give, per partition, in order.
fn expected(n: usize, partitions: usize) -> Value {
    let mut per = serde_json::Map::new();
    for i in 0..n {
        let list = per
            .entry((i % partitions).to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        list.as_array_mut().unwrap().push(Value::String(format!("v{i}")));
    }
    Value::Object(per)
}

fn produce(b: &Broker, topic: &str, count: usize, partitions: usize) -> Vec<Value> {
    let (count_s, parts_s) = (count.to_string(), partitions.to_string());
    let args = [
        "produce",
        "--topic",
        topic,
        "--count",
        &count_s,
        "--partitions",
        &parts_s,
    ];
    let r = py(b, ALICE, &args);
    assert_eq!(r["unflushed"], 0, "{r}");
    r["results"].as_array().unwrap().clone()
}

#[test]
fn given_acls_when_confluent_kafka_produces_and_consumes_should_allow_exactly_what_they_grant() {
    let mut b = start();
    let admin = ADMIN;
    let mut c = admin_client(&b);
    c.create_topic("orders", 2, &[]).unwrap();
    c.create_topic("payments", 1, &[]).unwrap();
    let acls = json!([
        binding("TOPIC", "orders", "LITERAL", "WRITE", "ALLOW"),
        binding("GROUP", "alice-", "PREFIXED", "READ", "ALLOW"),
    ]);
    let created = py(&b, admin, &["create", "--acls", &acls.to_string()]);
    assert_eq!(created["results"], json!([null, null]), "{created}");

    // Allowed: every record to orders is delivered.
    assert_eq!(produce(&b, "orders", 20, 2), vec![Value::Null; 20]);
    // Not allowed: writing payments, reading orders.
    let refused = produce(&b, "payments", 3, 1);
    assert_eq!(refused, vec![json!("TOPIC_AUTHORIZATION_FAILED"); 3]);
    let args = [
        "consume",
        "--topic",
        "orders",
        "--group",
        "alice-g",
        "--seconds",
        "20",
        "--stop-on-error",
    ];
    let consumed = py(&b, ALICE, &args);
    assert_eq!(consumed["consumed"], json!({}), "{consumed}");
    let errors = consumed["errors"].as_array().unwrap();
    assert!(
        errors.contains(&json!("TOPIC_AUTHORIZATION_FAILED")),
        "{consumed}"
    );
    // The super user reads what alice wrote, in order per partition.
    let args = [
        "consume", "--topic", "orders", "--group", "admin-g", "--count", "20",
    ];
    let read = py(&b, admin, &args);
    assert_eq!(read["consumed"], expected(20, 2), "{read}");

    let mut listed = acls.as_array().unwrap().clone();
    listed.sort_by_key(|v| v.to_string());
    let described = py(&b, admin, &["describe"]);
    assert_eq!(described["acls"], Value::Array(listed.clone()), "{described}");

    b.restart();
    let described = py(&b, admin, &["describe"]);
    assert_eq!(
        described["acls"],
        Value::Array(listed),
        "after a restart: {described}"
    );
    assert_eq!(
        produce(&b, "orders", 2, 2),
        vec![Value::Null; 2],
        "after a restart"
    );

    let filter = binding("TOPIC", "orders", "LITERAL", "ANY", "ANY");
    let deleted = py(&b, admin, &["delete", "--acls", &filter.to_string()]);
    let gone = binding("TOPIC", "orders", "LITERAL", "WRITE", "ALLOW");
    assert_eq!(deleted["deleted"], json!([gone]), "{deleted}");
    let refused = produce(&b, "orders", 1, 1);
    assert_eq!(refused, vec![json!("TOPIC_AUTHORIZATION_FAILED")]);
    let log = b.log();
    assert!(
        log.contains("authorization denied") && log.contains("User:alice"),
        "no denial logged:\n{log}"
    );
}

fn alice_client(b: &Broker) -> Client {
    let mut c = b.client();
    c.sasl_authenticate("SCRAM-SHA-512", ALICE.0, ALICE.1)
        .expect("alice logs in");
    c
}

fn acl(resource_type: i8, name: &str, pattern_type: i8, principal: &str) -> Acl {
    Acl {
        resource_type,
        resource_name: Some(name.into()),
        pattern_type,
        principal: Some(principal.into()),
        host: Some("*".into()),
        operation: 4,
        permission: 3,
    }
}

#[test]
fn given_a_user_without_acls_when_it_asks_should_get_kafkas_codes_a_log_line_and_keep_its_connection() {
    let b = start();
    let mut admin = admin_client(&b);
    admin.create_topic("payments", 1, &[]).unwrap();
    let mut alice = alice_client(&b);

    let m = alice.metadata(Some(&["payments"])).unwrap();
    assert_eq!(m.topics.len(), 1);
    assert_eq!(m.topics[0].error_code, TOPIC_DENIED, "{m:?}");
    assert!(m.topics[0].partitions.is_empty());
    let all = alice.metadata(None).unwrap();
    assert!(all.topics.is_empty(), "unauthorized topics are left out: {all:?}");
    let produced = alice.produce(
        "payments",
        0,
        common::batch(0, 1, weir_protocol::record_batch::Compression::None),
        1,
    );
    assert_eq!(produced.unwrap_err().code(), Some(TOPIC_DENIED));
    let join = JoinGroupRequest::default()
        .with_group_id(kafka_protocol::messages::GroupId("g".into()))
        .with_session_timeout_ms(10_000)
        .with_protocol_type("consumer".into());
    assert_eq!(alice.call(join).unwrap().error_code, GROUP_DENIED);
    let find = FindCoordinatorRequest::default().with_key("g".into());
    assert_eq!(alice.call_at(3, find).unwrap().error_code, GROUP_DENIED);
    let init = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId("tx".to_string().into())))
        .with_transaction_timeout_ms(10_000);
    assert_eq!(alice.call(init).unwrap().error_code, TXN_DENIED);
    let idempotent = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(-1);
    assert_eq!(alice.call(idempotent).unwrap().error_code, CLUSTER_DENIED);
    let created = alice.create_acls(&[acl(2, "payments", 3, "User:alice")]).unwrap();
    assert_eq!(created[0].code, CLUSTER_DENIED);
    let described = alice
        .call(DescribeAclsRequest::default().with_resource_type_filter(1))
        .unwrap();
    assert_eq!(described.error_code, CLUSTER_DENIED);
    let list = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![
            kafka_protocol::messages::list_offsets_request::ListOffsetsTopic::default()
                .with_name(kafka_protocol::messages::TopicName("payments".into()))
                .with_partitions(vec![Default::default()]),
        ]);
    let listed = alice.call(list).unwrap();
    assert_eq!(listed.topics[0].partitions[0].error_code, TOPIC_DENIED);
    refused_share_and_quota_calls(&mut alice);
    // Still the same connection, still serving.
    assert!(alice
        .call(MetadataRequest::default().with_topics(Some(Vec::new())))
        .is_ok());

    let log = b.log();
    let denials: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("authorization denied"))
        .collect();
    assert!(denials.len() >= 12, "{log}");
    assert!(
        denials
            .iter()
            .all(|l| l.contains("peer=127.0.0.1:") && l.contains("User:alice")),
        "{denials:#?}"
    );
    assert!(!log.contains("panicked"), "{log}");
}

/// Client quotas need DESCRIBE_CONFIGS / ALTER_CONFIGS on the cluster; the share-group
/// data path READ on the share group.
fn refused_share_and_quota_calls(alice: &mut Client) {
    use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
    use kafka_protocol::messages::{
        AlterClientQuotasRequest, DescribeClientQuotasRequest, GroupId, ShareFetchRequest,
        ShareGroupHeartbeatRequest, TopicName,
    };
    let entity = EntityData::default()
        .with_entity_type("client-id".into())
        .with_entity_name(Some("x".into()));
    let op = OpData::default()
        .with_key("producer_byte_rate".into())
        .with_value(1e6);
    let entry = EntryData::default().with_entity(vec![entity]).with_ops(vec![op]);
    let altered = alice
        .call(AlterClientQuotasRequest::default().with_entries(vec![entry]))
        .unwrap();
    assert_eq!(altered.entries[0].error_code, CLUSTER_DENIED, "{altered:?}");
    let described = alice.call(DescribeClientQuotasRequest::default()).unwrap();
    assert_eq!(described.error_code, CLUSTER_DENIED);
    let heartbeat = ShareGroupHeartbeatRequest::default()
        .with_group_id(GroupId("sg".into()))
        .with_member_id("m-1".into())
        .with_subscribed_topic_names(Some(vec![TopicName("payments".into())]));
    assert_eq!(alice.call_at(1, heartbeat).unwrap().error_code, GROUP_DENIED);
    let fetch = ShareFetchRequest::default()
        .with_group_id(Some(GroupId("sg".into())))
        .with_member_id(Some("m-1".into()));
    assert_eq!(alice.call_at(1, fetch).unwrap().error_code, GROUP_DENIED);
}

/// One bad field each: UNKNOWN, ANY and unknown resource types; ANY and MATCH patterns;
/// an empty and a malformed principal; ANY operation and permission; an empty name; a
/// cluster resource not named kafka-cluster.
fn bad_bindings(good: &Acl) -> Vec<Acl> {
    let with = |f: &dyn Fn(&mut Acl)| {
        let mut a = good.clone();
        f(&mut a);
        a
    };
    vec![
        with(&|a| a.resource_type = 0),
        with(&|a| a.resource_type = 1),
        with(&|a| a.resource_type = 42),
        with(&|a| a.pattern_type = 1),
        with(&|a| a.pattern_type = 2),
        with(&|a| a.principal = Some(String::new())),
        with(&|a| a.principal = Some("alice".into())),
        with(&|a| a.operation = 1),
        with(&|a| a.permission = 1),
        with(&|a| a.resource_name = Some(String::new())),
        acl(4, "not-the-cluster", 3, "User:alice"),
    ]
}

#[test]
fn given_invalid_bindings_when_created_should_refuse_each_with_invalid_request_and_keep_the_valid() {
    let b = start();
    let mut admin = admin_client(&b);
    let good = acl(2, "orders", 3, "User:alice");
    let bad = bad_bindings(&good);
    let mut all = vec![good.clone()];
    all.extend(bad.iter().cloned());
    let results = admin.create_acls(&all).unwrap();
    assert_eq!(results[0].code, 0, "{results:?}");
    for (r, b) in results[1..].iter().zip(&bad) {
        assert_eq!(r.code, INVALID_REQUEST, "{b:?}: {r:?}");
        assert!(r.message.as_ref().is_some_and(|m| !m.is_empty()), "{r:?}");
    }
    let any = Acl {
        resource_type: 1,
        resource_name: None,
        pattern_type: 1,
        principal: None,
        host: None,
        operation: 1,
        permission: 1,
    };
    assert_eq!(admin.describe_acls(&any).unwrap(), vec![good]);
    let unknown = DescribeAclsRequest::default()
        .with_resource_type_filter(0)
        .with_pattern_type_filter(1)
        .with_operation(1)
        .with_permission_type(1);
    assert_eq!(admin.call(unknown).unwrap().error_code, INVALID_REQUEST);
    let raw = CreateAclsRequest::default();
    assert!(admin.call(raw).unwrap().results.is_empty());
}

fn node(script: &str, args: &[&str]) -> Command {
    let mut c = common::kafkajs_script(script);
    c.args(args);
    c
}

#[test]
fn given_kafkajs_kafka_python_and_the_cli_when_they_administer_acls_should_round_trip() {
    let b = start();
    check_kafkajs(&b);
    check_kafka_python(&b);
    check_cli(&b);
}

fn check_kafkajs(b: &Broker) {
    let addr = b.addr();
    let out = node(
        "acl_client.js",
        &[&addr, ADMIN.0, ADMIN.1, "events", "User:carol"],
    )
    .output()
    .unwrap();
    let js = json("acl_client.js", &out, b);
    assert!(js.get("error").is_none(), "{js}");
    let described = json!([
        {"name": "events", "pattern": 3, "acls": [["User:carol", "*", 3, 3]]},
        {"name": "events-", "pattern": 4, "acls": [["User:carol", "*", 8, 3]]},
    ]);
    assert_eq!(js["described"], json!([described[0]]), "{js}");
    assert_eq!(js["matched"], json!([described[1]]), "{js}");
    assert_eq!(
        js["deleted"],
        json!([{"errorCode": 0, "matching": [["events-", 8]]}]),
        "{js}"
    );
}

fn check_kafka_python(b: &Broker) {
    let addr = b.addr();
    let out = Command::new(common::venv_python("kafka"))
        .arg(format!("{CLIENTS_DIR}/acl_kafka_python.py"))
        .args([addr.as_str(), ADMIN.0, ADMIN.1, "ledger", "User:dave"])
        .output()
        .unwrap();
    let kp = json("acl_kafka_python.py", &out, b);
    let row = json!(["TOPIC", "ledger", "LITERAL", "User:dave", "*", "WRITE", "ALLOW"]);
    assert_eq!(kp["created"], 1, "{kp}");
    assert_eq!(kp["described"], json!([row]), "{kp}");
    assert_eq!(kp["deleted"], json!([row]), "{kp}");
    assert_eq!(kp["after"], json!([]), "{kp}");
}

fn check_cli(b: &Broker) {
    let cli = |args: &[&str]| {
        let out = weir_as_admin(b, "acl", args);
        assert!(
            out.status.success(),
            "weir acl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let bob = ["--principal", "User:bob"];
    cli(&[
        &["add"][..],
        &bob,
        &["--topic", "t", "--operation", "read", "--operation", "write"],
    ]
    .concat());
    cli(&[
        &["add"][..],
        &bob,
        &["--group", "g-", "--pattern", "prefixed", "--operation", "READ"],
    ]
    .concat());
    let listed = cli(&[&["list"][..], &bob].concat());
    let rows: Vec<&str> = listed.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{listed}");
    assert!(
        listed.contains("GROUP") && listed.contains("PREFIXED") && listed.contains("WRITE"),
        "{listed}"
    );
    let removed = cli(&[&["remove"][..], &bob, &["--topic", "t"]].concat());
    assert_eq!(removed.lines().count(), 2, "{removed}");
    let listed = cli(&[&["list"][..], &bob].concat());
    assert_eq!(listed.lines().skip(1).count(), 1, "{listed}");
    let bad = weir_as_admin(
        b,
        "acl",
        &[
            "add",
            "--principal",
            "User:bob",
            "--topic",
            "t",
            "--operation",
            "fly",
        ],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown operation"));
}

const BOB: (&str, &str) = ("bob", "b0b-Secret-pw");
const CAROL: (&str, &str) = ("carol", "car0l-Secret-pw");

fn grant(c: &mut Client, resource_type: i8, name: &str, pattern_type: i8, principal: &str, operation: i8) {
    let a = Acl {
        operation,
        ..acl(resource_type, name, pattern_type, principal)
    };
    let r = c.create_acls(&[a]).unwrap();
    assert_eq!(r[0].code, 0, "{r:?}");
}

/// Restricted principals on the allowed paths too (the super user skips every check): a
/// reader with READ on the topic and its groups, a transactional and an idempotent writer.
#[test]
fn given_a_reader_and_a_transactional_writer_when_granted_should_be_served_and_refused_outside_their_bindings(
) {
    let b = start();
    let mut c = admin_client(&b);
    c.create_topic("orders", 2, &[]).unwrap();
    c.create_topic("audit", 1, &[]).unwrap();
    for (user, password) in [BOB, CAROL] {
        let r = c
            .upsert_user(user, weir_protocol::scram::Mechanism::Sha512, 4096, password)
            .unwrap();
        assert_eq!(r.error_code, 0);
    }
    let (topic, group, txn, literal, prefixed) = (2, 3, 5, 3, 4);
    grant(&mut c, topic, "orders", literal, "User:alice", 4);
    grant(&mut c, topic, "orders", literal, "User:bob", 3);
    grant(&mut c, group, "bob-", prefixed, "User:bob", 3);
    grant(&mut c, topic, "audit", literal, "User:carol", 4);
    grant(&mut c, txn, "carol-tx", literal, "User:carol", 4);

    assert_eq!(produce(&b, "orders", 20, 2), vec![Value::Null; 20]);
    let args = [
        "consume", "--topic", "orders", "--group", "bob-g", "--count", "20",
    ];
    let read = py(&b, BOB, &args);
    assert_eq!(read["consumed"], expected(20, 2), "{read}");
    let args = [
        "consume",
        "--topic",
        "orders",
        "--group",
        "other-g",
        "--seconds",
        "15",
        "--stop-on-error",
    ];
    let refused = py(&b, BOB, &args);
    assert_eq!(refused["consumed"], json!({}), "{refused}");
    let errors = refused["errors"].as_array().unwrap();
    assert!(errors.contains(&json!("GROUP_AUTHORIZATION_FAILED")), "{refused}");

    assert_authorized_operations(&b);

    let ok = py(
        &b,
        CAROL,
        &["txn", "--txn", "carol-tx", "--topic", "audit", "--count", "5"],
    );
    assert_eq!(ok["error"], Value::Null, "{ok}");
    let denied = py(
        &b,
        CAROL,
        &["txn", "--txn", "other-tx", "--topic", "audit", "--count", "1"],
    );
    assert_eq!(
        denied["error"],
        json!("TRANSACTIONAL_ID_AUTHORIZATION_FAILED"),
        "{denied}"
    );
    // KIP-679: WRITE on some topic is enough for an idempotent producer.
    let idem = py(&b, CAROL, &["idempotent", "--topic", "audit", "--count", "3"]);
    assert_eq!(idem["results"], json!([null, null, null]), "{idem}");
    let args = [
        "consume",
        "--topic",
        "audit",
        "--group",
        "admin-audit",
        "--count",
        "8",
    ];
    let audit = py(&b, ADMIN, &args);
    let want = json!({"0": ["t0", "t1", "t2", "t3", "t4", "i0", "i1", "i2"]});
    assert_eq!(audit["consumed"], want, "{audit}");
}

/// Metadata's and DescribeCluster's authorized operations are bob's own: READ (3) and the
/// DESCRIBE (8) it implies on `orders`; no cluster operations without DESCRIBE on it.
fn assert_authorized_operations(b: &Broker) {
    use kafka_protocol::messages::{
        metadata_request::MetadataRequestTopic, DescribeClusterRequest, TopicName,
    };
    let mut bob = b.client();
    bob.sasl_authenticate("SCRAM-SHA-512", BOB.0, BOB.1).unwrap();
    let topic = MetadataRequestTopic::default().with_name(Some(TopicName("orders".into())));
    let req = MetadataRequest::default()
        .with_topics(Some(vec![topic]))
        .with_include_topic_authorized_operations(true)
        .with_include_cluster_authorized_operations(true);
    let m = bob.call_at(10, req).unwrap();
    assert_eq!(m.topics[0].error_code, 0, "{m:?}");
    assert_eq!(
        m.topics[0].topic_authorized_operations,
        (1 << 3) | (1 << 8),
        "{m:?}"
    );
    assert_eq!(m.cluster_authorized_operations, i32::MIN, "{m:?}");
    let describe = DescribeClusterRequest::default().with_include_cluster_authorized_operations(true);
    let d = bob.call_at(0, describe).unwrap();
    assert_eq!(d.cluster_authorized_operations, i32::MIN);
    assert_described_as_bob_may(&mut bob);
}

/// DescribeTopicPartitions of every topic shows bob `orders` only (not `audit`), with
/// his operations; DescribeGroups gives his operations on `bob-g` (READ, and the
/// DESCRIBE it implies) and 30 for a group outside his prefix.
fn assert_described_as_bob_may(bob: &mut Client) {
    use kafka_protocol::messages::{DescribeGroupsRequest, DescribeTopicPartitionsRequest, GroupId};
    let all = bob.call_at(0, DescribeTopicPartitionsRequest::default()).unwrap();
    let names: Vec<_> = all
        .topics
        .iter()
        .map(|t| t.name.as_ref().unwrap().0.to_string())
        .collect();
    assert_eq!(names, ["orders"], "{all:?}");
    assert_eq!(all.topics[0].topic_authorized_operations, (1 << 3) | (1 << 8));
    let req = DescribeGroupsRequest::default()
        .with_groups(vec![GroupId("bob-g".into()), GroupId("other-g".into())])
        .with_include_authorized_operations(true);
    let groups = bob.call_at(5, req).unwrap().groups;
    let bob_g = groups.iter().find(|g| g.group_id.0.as_str() == "bob-g").unwrap();
    assert_eq!(
        (bob_g.error_code, bob_g.authorized_operations),
        (0, (1 << 3) | (1 << 8)),
        "{groups:?}"
    );
    let other = groups
        .iter()
        .find(|g| g.group_id.0.as_str() == "other-g")
        .unwrap();
    assert_eq!(other.error_code, GROUP_DENIED, "{groups:?}");
}
