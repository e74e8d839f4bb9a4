//! KIP-848 with a real client: three confluent-kafka (librdkafka 2.16) consumers with
//! `group.protocol=consumer` (`tests/clients/consumer_protocol.py`) share a 6-partition topic
//! on a 2-shard zero-hop broker. Checked: every record is consumed, per-partition order holds
//! within each ownership, the server-side uniform assignor gives each member 2 partitions
//! (ConsumerGroupDescribe on the wire and AdminClient.describe_consumer_groups); after one
//! consumer is killed -9, its partitions move to the survivors once the (lowered) session
//! timeout passes; after the broker is killed -9 and restarted, the members carry on with the
//! same epochs and partitions (membership is durable): no partition moves, nothing is read twice.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Broker;
use kafka_protocol::messages::{ConsumerGroupDescribeRequest, GroupId};
use kafka_protocol::protocol::StrBytes;
use serde_json::Value;

const CLIENTS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients");
const SESSION_TIMEOUT_MS: u64 = 6_000;
const FLAGS: &[&str] = &[
    "--shards",
    "2",
    "--group-consumer-session-timeout-ms",
    "6000",
    "--group-consumer-heartbeat-interval-ms",
    "500",
];
const TOPIC: &str = "kip848";
const GROUP: &str = "kip848-group";
const PER_PHASE: usize = 600;

fn python() -> PathBuf {
    common::venv_python("confluent_kafka")
}

fn script(broker: &Broker, args: &[&str]) -> Value {
    let out = Command::new(python())
        .arg(format!("{CLIENTS_DIR}/consumer_protocol.py"))
        .args(args)
        .args(["--bootstrap", &broker.addr()])
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "consumer_protocol.py {args:?} failed: {}\n{stdout}\n{}\nbroker log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        broker.log()
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("bad JSON {e}: {stdout}"))
}

fn produce(broker: &Broker, start: usize) {
    produce_to(broker, TOPIC, start);
}

fn produce_to(broker: &Broker, topic: &str, start: usize) {
    let r = script(
        broker,
        &[
            "produce",
            "--topic",
            topic,
            "--start",
            &start.to_string(),
            "--count",
            &PER_PHASE.to_string(),
        ],
    );
    assert_eq!(r["produced"], PER_PHASE);
}

struct Consumer {
    child: Option<Child>,
    out: PathBuf,
}

impl Consumer {
    fn start(broker: &Broker, dir: &Path, n: usize) -> Self {
        Self::start_in(broker, dir, n, TOPIC, GROUP, "consumer")
    }

    fn start_in(broker: &Broker, dir: &Path, n: usize, topic: &str, group: &str, protocol: &str) -> Self {
        let out = dir.join(format!("consumer-{n}.jsonl"));
        let child = Command::new(python())
            .arg(format!("{CLIENTS_DIR}/consumer_protocol.py"))
            .args([
                "consume",
                "--topic",
                topic,
                "--group",
                group,
                "--protocol",
                protocol,
                "--bootstrap",
                &broker.addr(),
            ])
            .arg("--out")
            .arg(&out)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("consumer starts");
        Consumer {
            child: Some(child),
            out,
        }
    }

    fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(20);
            while c.try_wait().unwrap().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Distinct record values consumed by all consumers so far.
fn consumed(consumers: &[Consumer]) -> BTreeSet<i64> {
    consumers
        .iter()
        .flat_map(|c| c.events())
        .filter(|e| e["ev"] == "rec")
        .map(|e| e["v"].as_i64().unwrap())
        .collect()
}

fn wait_until(what: &str, timeout: Duration, broker: &Broker, done: impl FnMut() -> bool) -> Duration {
    wait_explained(timeout, broker, done, || format!("timed out waiting for {what}"))
}

/// As `wait_until`; on a timeout `explain` says what was seen last, beside the broker log.
fn wait_explained(
    timeout: Duration,
    broker: &Broker,
    mut done: impl FnMut() -> bool,
    explain: impl Fn() -> String,
) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < timeout,
            "{}\nbroker log:\n{}",
            explain(),
            broker.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    start.elapsed()
}

fn wait_consumed(consumers: &[Consumer], broker: &Broker, upto: usize) {
    wait_until(
        &format!("records 0..{upto}"),
        Duration::from_secs(90),
        broker,
        || consumed(consumers).len() >= upto,
    );
}

/// (member epoch, partitions) per member from ConsumerGroupDescribe, plus the state.
fn describe(broker: &Broker) -> (String, i32, Vec<(i32, Vec<i32>)>) {
    let d = describe_group(broker, GROUP);
    assert!(!d.0.is_empty(), "ConsumerGroupDescribe of {GROUP} failed");
    d
}

fn describe_group(broker: &Broker, group: &str) -> (String, i32, Vec<(i32, Vec<i32>)>) {
    let mut d = ConsumerGroupDescribeRequest::default();
    d.group_ids = vec![GroupId(StrBytes::from_string(group.to_owned()))];
    let r = broker.client().call_at(1, d).unwrap();
    let g = &r.groups[0];
    if g.error_code != 0 {
        // Not (yet) a consumer group: no state.
        return (String::new(), -1, Vec::new());
    }
    let members = g
        .members
        .iter()
        .map(|m| {
            let mut ps: Vec<i32> = m
                .assignment
                .topic_partitions
                .iter()
                .flat_map(|t| t.partitions.clone())
                .collect();
            ps.sort_unstable();
            (m.member_epoch, ps)
        })
        .collect();
    (g.group_state.to_string(), g.assignment_epoch, members)
}

/// Waits until the group is Stable with `n` members of `each` partitions at the assignment
/// epoch. On a timeout it shows the last ConsumerGroupDescribe and each consumer's
/// assign/revoke events beside the broker log: a convergence stall needs all three.
fn wait_spread(broker: &Broker, consumers: &[Consumer], n: usize, each: usize) -> Duration {
    let last = std::cell::RefCell::new((String::new(), -1, Vec::new()));
    let spread = || {
        let (state, epoch, members) = describe(broker);
        let done = state == "Stable"
            && members.len() == n
            && members.iter().all(|(e, ps)| *e == epoch && ps.len() == each);
        *last.borrow_mut() = (state, epoch, members);
        done
    };
    let explain = || {
        let (state, epoch, members) = &*last.borrow();
        let events: Vec<String> = consumers
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let moves: Vec<String> = c
                    .events()
                    .iter()
                    .filter(|e| e["ev"] != "rec")
                    .map(|e| e.to_string())
                    .collect();
                format!("consumer {i}: {}", moves.join(" "))
            })
            .collect();
        format!(
            "timed out waiting for {n} members of {each} partitions: last describe {state} \
             assignment epoch {epoch} members (epoch, partitions) {members:?}\n{}",
            events.join("\n")
        )
    };
    wait_explained(Duration::from_secs(60), broker, spread, explain)
}

/// Checks every consumer's log and the union of them; returns the duplicate count.
fn verify(consumers: &[Consumer], total: usize) -> usize {
    // partition -> offset -> value, from every consumer.
    let mut seen: BTreeMap<i64, BTreeMap<i64, (i64, String)>> = BTreeMap::new();
    let mut records = 0;
    for (n, c) in consumers.iter().enumerate() {
        let mut last: BTreeMap<i64, i64> = BTreeMap::new();
        for e in c.events() {
            match e["ev"].as_str().unwrap() {
                // A (re)assigned partition restarts from its committed offset.
                "assign" => {
                    for p in e["parts"].as_array().unwrap() {
                        last.remove(&p.as_i64().unwrap());
                    }
                }
                "rec" => {
                    records += 1;
                    let (p, o, v) = (
                        e["p"].as_i64().unwrap(),
                        e["o"].as_i64().unwrap(),
                        e["v"].as_i64().unwrap(),
                    );
                    if let Some(prev) = last.insert(p, o) {
                        assert!(
                            o > prev,
                            "consumer {n}: partition {p} went from offset {prev} to {o}"
                        );
                    }
                    let k = e["k"].as_str().unwrap().to_owned();
                    let old = seen.entry(p).or_default().insert(o, (v, k.clone()));
                    assert!(
                        old.is_none_or(|x| x == (v, k)),
                        "partition {p} offset {o} read two different records"
                    );
                }
                _ => {}
            }
        }
    }
    let mut values = BTreeSet::new();
    for (p, offsets) in &seen {
        let n = offsets.len() as i64;
        assert_eq!(
            offsets.keys().copied().collect::<Vec<_>>(),
            (0..n).collect::<Vec<_>>(),
            "partition {p} has gaps"
        );
        // One producer: records of a key are in production order within the partition.
        let mut by_key: BTreeMap<&str, i64> = BTreeMap::new();
        for (o, (v, k)) in offsets {
            if let Some(prev) = by_key.insert(k, *v) {
                assert!(
                    *v > prev,
                    "partition {p} offset {o}: key {k} value {v} after {prev}"
                );
            }
            values.insert(*v);
        }
    }
    assert_eq!(
        values,
        (0..total as i64).collect::<BTreeSet<_>>(),
        "every record consumed"
    );
    records - values.len()
}

#[test]
fn given_three_kip848_consumers_when_one_dies_and_the_broker_restarts_should_consume_everything_once_in_order(
) {
    let mut broker = Broker::start(FLAGS);
    broker.client().create_topic(TOPIC, 6, &[]).unwrap();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    produce(&broker, 0);
    let mut consumers: Vec<Consumer> = (0..3).map(|n| Consumer::start(&broker, dir.path(), n)).collect();
    wait_consumed(&consumers, &broker, PER_PHASE);
    wait_spread(&broker, &consumers, 3, 2);
    let admin = script(&broker, &["describe", "--group", GROUP]);
    let members = admin["members"].as_array().unwrap();
    assert_eq!(admin["type"], "ConsumerGroupType.CONSUMER", "{admin}");
    assert_eq!(members.len(), 3, "AdminClient sees 3 members: {admin}");
    assert!(
        members.iter().all(|m| m[1].as_array().unwrap().len() == 2),
        "{admin}"
    );
    eprintln!("AdminClient.describe_consumer_groups: {admin}");

    // Kill one member: its partitions move only when its session expires.
    let killed_at = Instant::now();
    consumers[0].kill();
    produce(&broker, PER_PHASE);
    wait_spread(&broker, &consumers, 2, 3);
    let moved = killed_at.elapsed();
    eprintln!("partitions moved {moved:?} after the kill (session timeout {SESSION_TIMEOUT_MS} ms)");
    // The last heartbeat came at most one interval (500 ms) before the kill.
    assert!(
        moved >= Duration::from_millis(SESSION_TIMEOUT_MS - 600),
        "moved before the session expired: {moved:?}"
    );
    wait_consumed(&consumers, &broker, 2 * PER_PHASE);

    // Kill the broker: membership is durable, so the members carry on with their epochs and
    // partitions (no rebalance, no callback, nothing read twice), as with Kafka.
    let before = describe(&broker);
    let callbacks = |cs: &[Consumer]| -> usize {
        cs.iter()
            .flat_map(|c| c.events())
            .filter(|e| e["ev"] == "assign" || e["ev"] == "revoke")
            .count()
    };
    let callbacks_before = callbacks(&consumers);
    broker.kill();
    broker.start_again();
    assert_eq!(describe(&broker), before, "the group is reloaded as it was");
    produce(&broker, 2 * PER_PHASE);
    wait_consumed(&consumers, &broker, 3 * PER_PHASE);
    assert_eq!(describe(&broker), before, "no partition moved after the restart");
    assert_eq!(
        callbacks(&consumers),
        callbacks_before,
        "no assign/revoke after the restart"
    );
    for c in &mut consumers {
        c.stop();
    }
    let duplicates = verify(&consumers, 3 * PER_PHASE);
    eprintln!("duplicates: {duplicates}");
    // Each record is committed right after it is printed: the consumer's kill -9 can leave at
    // most the last record of each of its 2 partitions uncommitted; the broker restart moves
    // nothing, so it adds none.
    assert!(duplicates <= 2, "{duplicates} duplicates");
}

/// ListGroups v5: the group's type ("classic" or "consumer"), if listed.
fn group_type(broker: &Broker, group: &str) -> Option<String> {
    let r = broker
        .client()
        .call_at(5, kafka_protocol::messages::ListGroupsRequest::default())
        .unwrap();
    r.groups
        .iter()
        .find(|g| g.group_id.as_str() == group)
        .map(|g| g.group_type.to_string())
}

#[test]
fn given_a_classic_group_when_a_kip848_member_joins_and_leaves_should_migrate_online_both_ways_and_consume_once_in_order(
) {
    const MIG_TOPIC: &str = "mig";
    const MIG_GROUP: &str = "mig-group";
    let broker = Broker::start(&[
        "--shards",
        "2",
        "--group-consumer-heartbeat-interval-ms",
        "500",
        "--group-initial-rebalance-delay-ms",
        "200",
    ]);
    broker.client().create_topic(MIG_TOPIC, 4, &[]).unwrap();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    produce_to(&broker, MIG_TOPIC, 0);
    let mut classic = Consumer::start_in(&broker, dir.path(), 0, MIG_TOPIC, MIG_GROUP, "classic");
    wait_consumed(std::slice::from_ref(&classic), &broker, PER_PHASE);
    assert_eq!(group_type(&broker, MIG_GROUP).as_deref(), Some("classic"));

    // A KIP-848 member joins: the group converts, both members share the partitions.
    let kip = Consumer::start_in(&broker, dir.path(), 1, MIG_TOPIC, MIG_GROUP, "consumer");
    let took = wait_until(
        "2 members of 2 partitions",
        Duration::from_secs(60),
        &broker,
        || {
            let (state, epoch, members) = describe_group(&broker, MIG_GROUP);
            state == "Stable"
                && members.len() == 2
                && members.iter().all(|(e, ps)| *e == epoch && ps.len() == 2)
        },
    );
    eprintln!("upgraded and balanced in {took:?}");
    assert_eq!(group_type(&broker, MIG_GROUP).as_deref(), Some("consumer"));
    let mut d = ConsumerGroupDescribeRequest::default();
    d.group_ids = vec![GroupId(StrBytes::from_static_str(MIG_GROUP))];
    let g = broker.client().call_at(1, d).unwrap().groups.remove(0);
    let mut types: Vec<i8> = g.members.iter().map(|m| m.member_type).collect();
    types.sort_unstable();
    assert_eq!(types, vec![0, 1], "one classic and one consumer member");
    produce_to(&broker, MIG_TOPIC, PER_PHASE);
    let both = [classic, kip];
    wait_consumed(&both, &broker, 2 * PER_PHASE);
    let [classic_back, mut kip] = both;
    classic = classic_back;
    let kip_records = kip.events().iter().filter(|e| e["ev"] == "rec").count();
    assert!(kip_records > 0, "the KIP-848 member consumed its share");

    // The KIP-848 member leaves: the group is classic again, the classic member takes all.
    kip.stop();
    wait_until(
        "the group to be classic again",
        Duration::from_secs(30),
        &broker,
        || group_type(&broker, MIG_GROUP).as_deref() == Some("classic"),
    );
    produce_to(&broker, MIG_TOPIC, 2 * PER_PHASE);
    let all = [classic, kip];
    wait_consumed(&all, &broker, 3 * PER_PHASE);
    let [mut classic, kip] = all;
    classic.stop();
    let log = broker.log();
    assert!(log.contains("classic group upgraded"), "no upgrade logged");
    assert!(log.contains("downgrading consumer group"), "no downgrade logged");
    let after_leave: usize = classic
        .events()
        .iter()
        .filter(|e| e["ev"] == "rec" && e["v"].as_i64().unwrap() >= 2 * PER_PHASE as i64)
        .count();
    assert_eq!(
        after_leave, PER_PHASE,
        "the classic member read everything after the downgrade"
    );
    let all = [classic, kip];
    let duplicates = verify(&all, 3 * PER_PHASE);
    assert_eq!(duplicates, 0, "every record consumed once");
}
