//! Share groups (KIP-932) with a real client: confluent-kafka 2.16's ShareConsumer
//! (`tests/clients/share_groups.py`) against a 2-shard broker in zero-hop mode. Three members
//! (one in the DEFAULT configuration, implicit acknowledgement; two explicit, releasing some
//! records once and REJECTing others) share one 2-partition topic of 30,000 records, after a fourth member took a batch
//! and was killed with SIGKILL while holding its locks; in the middle the broker itself is
//! killed with SIGKILL and restarted. Checks: every record is accepted (its acknowledgement
//! answered without error) exactly once and the share-partition start offsets reach the log
//! end; nothing is delivered after its acceptance was answered; each poll returns a
//! partition's offsets in increasing order; released records come back (to another member
//! too); the killed member's records come back only after the lock timeout. Dead letters:
//! the topic names a dead-letter topic; the explicit members REJECT some records and always
//! RELEASE those of a second topic (which only they subscribe to): each is found in the
//! dead-letter topic exactly once, with its value and `weir-dlq-*` headers, across the
//! broker crash, and never also accepted. Separate tests: a crash exactly between a
//! dead-letter copy and its archive (test hook), and TTL (expired records never delivered,
//! dead-lettered).

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Broker;
use kafka_protocol::messages::describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup;
use kafka_protocol::messages::{DescribeShareGroupOffsetsRequest, GroupId};
use kafka_protocol::protocol::StrBytes;
use serde_json::Value;

const CLIENTS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients");
const LOCK_MS: u64 = 3000;
const FLAGS: &[&str] = &[
    "--shards",
    "2",
    "--group-share-auto-offset-reset",
    "earliest",
    "--group-share-record-lock-duration-ms",
    "3000",
    "--group-share-session-timeout-ms",
    "6000",
    "--group-share-heartbeat-interval-ms",
    "1000",
];
const RECORDS: i64 = 30_000;
const TOPIC: &str = "queue";
const DLQ: &str = "queue-dlq";
/// Members 2 and 3 (explicit mode) REJECT offsets % 100 == 5, and always RELEASE the
/// records of "queue-poison" (which member 1, in the default configuration, does not take).
const RULE_MOD: i64 = 100;
const POISON: &str = "queue-poison";
const POISON_RECORDS: i64 = 100;
const DELIVERY_LIMIT: i64 = 5;
const GROUP: &str = "workers";

fn python() -> PathBuf {
    common::venv_python("confluent_kafka")
}

fn script(args: &[&str]) -> Command {
    let mut c = Command::new(python());
    c.arg(format!("{CLIENTS_DIR}/share_groups.py")).args(args);
    c
}

fn spawn(args: &[&str]) -> Child {
    script(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python starts")
}

/// One member's log: its polls, acknowledgement results and releases, in its order.
#[derive(Default)]
struct MemberLog {
    /// (time, [(partition, offset, delivery count)])
    polls: Vec<(f64, Vec<Delivered>)>,
    /// (time, [(partition, offset)]) for acknowledgements answered without error.
    acked: Vec<(f64, Vec<(i64, i64)>)>,
    /// Acknowledged offsets whose commit was answered with an error (the crash cut it off).
    acked_err: BTreeSet<(i64, i64)>,
    released: Vec<(i64, i64)>,
}

fn read_log(path: &Path) -> MemberLog {
    let mut m = MemberLog::default();
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // The commit callback lists every acknowledged offset, RELEASE included: the releases
    // logged just before are taken out.
    let mut releasing: BTreeSet<(i64, i64)> = BTreeSet::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue; // a line cut by SIGKILL
        };
        let t = v["t"].as_f64().unwrap_or(0.0);
        let pairs = |k: &str| -> Vec<Vec<i64>> {
            v[k].as_array()
                .map(|a| {
                    a.iter()
                        .map(|x| {
                            x.as_array()
                                .unwrap()
                                .iter()
                                .map(|n| n.as_i64().unwrap())
                                .collect()
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        if v.get("poll").is_some() {
            m.polls
                .push((t, pairs("poll").into_iter().map(|x| (x[0], x[1], x[2])).collect()));
        }
        if v.get("acked").is_some() {
            let acked: Vec<(i64, i64)> = pairs("acked")
                .into_iter()
                .map(|x| (x[0], x[1]))
                .filter(|k| !releasing.remove(k))
                .collect();
            if v["err"].is_null() {
                m.acked.push((t, acked));
            } else {
                m.acked_err.extend(acked);
            }
        }
        let released: Vec<(i64, i64)> = pairs("released").into_iter().map(|x| (x[0], x[1])).collect();
        releasing.extend(released.iter().copied());
        m.released.extend(released);
        // REJECTs: in the commit callback too, not acceptances.
        releasing.extend(pairs("rejected").into_iter().map(|x| (x[0], x[1])));
    }
    m
}

fn share_start_offsets(broker: &Broker) -> Vec<i64> {
    start_offsets_of(broker, GROUP, TOPIC)
}

fn start_offsets_of(broker: &Broker, group: &'static str, topic: &str) -> Vec<i64> {
    let mut c = broker.client();
    let mut g = DescribeShareGroupOffsetsRequestGroup::default();
    g.group_id = GroupId(StrBytes::from_static_str(group));
    g.topics = None;
    let r = c
        .call_at(
            0,
            DescribeShareGroupOffsetsRequest::default().with_groups(vec![g]),
        )
        .unwrap();
    let mut out: Vec<(i32, i64)> = r.groups[0]
        .topics
        .iter()
        .filter(|t| t.topic_name.as_str() == topic)
        .flat_map(|t| t.partitions.iter().map(|p| (p.partition_index, p.start_offset)))
        .collect();
    out.sort_unstable();
    out.into_iter().map(|(_, o)| o).collect()
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn acked_ok(logs: &[&Path]) -> usize {
    logs.iter()
        .map(|p| read_log(p).acked.iter().map(|(_, a)| a.len()).sum::<usize>())
        .sum()
}

type Delivered = (i64, i64, i64);
type Key = (i64, i64);

fn produce(broker: &Broker) {
    let out = script(&["produce", &broker.addr(), TOPIC, &RECORDS.to_string(), DLQ])
        .output()
        .expect("produce");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "produce: {err}");
}

/// A member takes one batch and dies (SIGKILL) with its locks held: its batch and when.
fn killed_holder(bs: &str, log: &Path) -> (f64, Vec<Delivered>) {
    let mut holder = spawn(&["hold", bs, GROUP, TOPIC, log.to_str().unwrap()]);
    wait_for("the holder's batch", Duration::from_secs(60), || {
        !read_log(log).polls.is_empty()
    });
    holder.kill().unwrap();
    holder.wait().unwrap();
    let (at, held) = read_log(log).polls.remove(0);
    assert!(!held.is_empty());
    (at, held)
}

fn delivered(logs: &[&Path]) -> BTreeSet<Key> {
    logs.iter()
        .flat_map(|p| {
            read_log(p)
                .polls
                .into_iter()
                .flat_map(|(_, b)| b.into_iter().map(|(p, o, _)| (p, o)))
        })
        .collect()
}

fn stop_members(stop: &Path, members: &mut [Child]) {
    std::fs::write(stop, b"").unwrap();
    for m in members {
        let deadline = Instant::now() + Duration::from_secs(30);
        while m.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                m.kill().unwrap();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn given_three_share_consumers_a_killed_member_and_a_broker_crash_should_accept_every_record_exactly_once() {
    let mut broker = Broker::start(FLAGS);
    let bs = broker.addr();
    let started_at = now();
    produce(&broker);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (held_at, held) = killed_holder(&bs, &dir.join("hold.log"));
    let stop = dir.join("stop");
    let logs: Vec<PathBuf> = ["m1.log", "m2.log", "m3.log"]
        .iter()
        .map(|n| dir.join(n))
        .collect();
    let log_refs: Vec<&Path> = logs.iter().map(PathBuf::as_path).collect();
    let member = |i: usize, extra: &[&str]| {
        let mut args = vec![
            "member",
            &bs,
            GROUP,
            TOPIC,
            log_refs[i].to_str().unwrap(),
            stop.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        spawn(&args)
    };
    let mut members = vec![
        member(0, &[]),
        member(1, &["--release-mod", "100"]),
        member(2, &["--release-mod", "100"]),
    ];
    // The killed member's records come back after the lock timeout; then the broker crashes.
    wait_for("10,000 accepted records", Duration::from_secs(120), || {
        acked_ok(&log_refs) >= 10_000
    });
    wait_for("the held records to come back", Duration::from_secs(60), || {
        let seen = delivered(&log_refs);
        held.iter().all(|(p, o, _)| seen.contains(&(*p, *o)))
    });
    broker.kill();
    let crashed_at = now();
    broker.start_again();
    wait_for(
        "every share-partition start offset at the log end",
        Duration::from_secs(180),
        || {
            share_start_offsets(&broker) == vec![RECORDS / 2, RECORDS / 2]
                && start_offsets_of(&broker, GROUP, POISON) == vec![POISON_RECORDS / 2; 2]
        },
    );
    stop_members(&stop, &mut members);
    let member_logs: Vec<MemberLog> = log_refs.iter().map(|p| read_log(p)).collect();
    let dead = check_dead_letters(&broker, started_at);
    let accepted = check_accepted(&member_logs, &dead);
    check_order_and_late(&member_logs, &accepted);
    let to_others = check_released(&member_logs, &accepted);
    check_held(&member_logs, &held, held_at, crashed_at);
    let cut: usize = member_logs.iter().map(|l| l.acked_err.len()).sum();
    eprintln!(
        "accepted {} records; {} REJECTed into the dead-letter topic (and {POISON_RECORDS} of {POISON} at the delivery limit); {} released by member 3 ({to_others} came back to others); {} held by the killed member; {cut} acknowledgements cut off by the crash",
        accepted.len(),
        dead.len(),
        member_logs[2].released.len(),
        held.len(),
    );
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Accepted at most once, and every record accepted (or in an acknowledgement the crash cut
/// off: durable, then the broker died before answering, since a ShareFetch carrying
/// acknowledgements is answered only after its long poll; the start offsets reaching the log
/// end show the broker settled it). Returns when each record's acceptance was answered.
fn check_accepted(logs: &[MemberLog], dead: &HashMap<Key, String>) -> HashMap<Key, f64> {
    let mut accepted: HashMap<Key, (usize, f64)> = HashMap::new();
    for l in logs {
        for (t, batch) in &l.acked {
            for k in batch {
                let e = accepted.entry(*k).or_insert((0, *t));
                e.0 += 1;
                e.1 = e.1.min(*t);
            }
        }
    }
    let twice: Vec<_> = accepted.iter().filter(|(_, (n, _))| *n > 1).take(5).collect();
    assert!(twice.is_empty(), "records accepted twice: {twice:?}");
    let cut: BTreeSet<Key> = logs.iter().flat_map(|l| l.acked_err.iter().copied()).collect();
    let missing: Vec<Key> = (0..RECORDS)
        .map(|i| (i % 2, i / 2))
        .filter(|k| !accepted.contains_key(k) && !cut.contains(k) && !dead.contains_key(k))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "records neither accepted nor dead-lettered: {missing:?}"
    );
    let both: Vec<&Key> = dead.keys().filter(|k| accepted.contains_key(k)).take(5).collect();
    assert!(both.is_empty(), "records accepted and dead-lettered: {both:?}");
    accepted.into_iter().map(|(k, (_, t))| (k, t)).collect()
}

/// Nothing is delivered after its acceptance was answered; within one poll, a partition's
/// offsets increase.
fn check_order_and_late(logs: &[MemberLog], accepted: &HashMap<Key, f64>) {
    let mut late = Vec::new();
    for (mi, l) in logs.iter().enumerate() {
        for (t, batch) in &l.polls {
            let mut last: BTreeMap<i64, i64> = BTreeMap::new();
            for (p, o, _) in batch {
                if accepted.get(&(*p, *o)).is_some_and(|at| at < t) {
                    late.push((mi, *p, *o));
                }
                let prev = last.insert(*p, *o);
                assert!(
                    prev.is_none_or(|x| x < *o),
                    "member {mi}: partition {p} offset {o} after {prev:?} in one poll"
                );
            }
        }
    }
    assert!(
        late.is_empty(),
        "delivered after accepted: {:?}",
        &late[..late.len().min(5)]
    );
}

/// Released records come back, also to members other than the one that released them, and
/// are accepted in the end. Returns how many reached another member.
fn check_released(logs: &[MemberLog], accepted: &HashMap<Key, f64>) -> usize {
    let released = &logs[2].released;
    assert!(!released.is_empty(), "member 3 released nothing");
    let others: BTreeSet<Key> = logs[..2]
        .iter()
        .flat_map(|l| {
            l.polls
                .iter()
                .flat_map(|(_, b)| b.iter().map(|(p, o, _)| (*p, *o)))
        })
        .collect();
    let to_others = released.iter().filter(|k| others.contains(k)).count();
    assert!(to_others > 0, "no released record reached another member");
    let cut: BTreeSet<Key> = logs.iter().flat_map(|l| l.acked_err.iter().copied()).collect();
    for k in released {
        assert!(
            accepted.contains_key(k) || cut.contains(k),
            "released record {k:?} never accepted"
        );
    }
    to_others
}

/// The killed member's records come back with a higher delivery count, not before the lock
/// timeout (unless the broker restart released them).
fn check_held(logs: &[MemberLog], held: &[Delivered], held_at: f64, crashed_at: f64) {
    let mut first_seen: HashMap<Key, (f64, i64)> = HashMap::new();
    for l in logs {
        for (t, b) in &l.polls {
            for (p, o, d) in b {
                let e = first_seen.entry((*p, *o)).or_insert((*t, *d));
                if *t < e.0 {
                    *e = (*t, *d);
                }
            }
        }
    }
    for (p, o, _) in held {
        let (t, count) = first_seen[&(*p, *o)];
        assert!(
            count >= 2,
            "held record {p}/{o} came back with delivery count {count}"
        );
        let waited = t - held_at;
        assert!(
            waited >= (LOCK_MS as f64 / 1000.0) - 0.5 || t > crashed_at,
            "held record {p}/{o} came back after {waited:.2}s, before the lock timeout"
        );
    }
}

/// The dead-letter topic, read back with a classic consumer: each copy names its source
/// record (exactly once), carries its value and the reason that fits the members' rules
/// (REJECT: offsets % 100 == 5 of "queue"; every record of "queue-poison", at the delivery
/// limit), lands in the source's partition, and was made during this test. Returns the
/// REJECTed records of "queue".
fn check_dead_letters(broker: &Broker, started_at: f64) -> HashMap<Key, String> {
    let out = script(&["dump", &broker.addr(), DLQ, "2"])
        .output()
        .expect("dump");
    assert!(
        out.status.success(),
        "dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (mut dead, mut poison) = (HashMap::new(), BTreeSet::new());
    let ended_at = now();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: Value = serde_json::from_str(line).expect("dump line");
        let h = |k: &str| {
            v["headers"][k]
                .as_str()
                .unwrap_or_else(|| panic!("header {k} in {v}"))
                .to_owned()
        };
        let num = |k: &str| {
            h(k).parse::<i64>()
                .unwrap_or_else(|_| panic!("header {k} in {v}"))
        };
        assert_eq!(h("weir-dlq-group"), GROUP, "{v}");
        let (p, o) = (num("weir-dlq-partition"), num("weir-dlq-offset"));
        assert_eq!(
            v["p"].as_i64(),
            Some(p),
            "copy of {p}/{o} in the source's partition"
        );
        let t = num("weir-dlq-time-ms") as f64 / 1000.0;
        assert!(t >= started_at && t <= ended_at, "weir-dlq-time-ms of {v}");
        let (reason, count) = (h("weir-dlq-reason"), num("weir-dlq-delivery-count"));
        if h("weir-dlq-topic") == POISON {
            assert_eq!(
                v["value"].as_str(),
                Some(format!("poison-{}", o * 2 + p).as_str()),
                "{v}"
            );
            assert!(reason == "delivery-limit" && count == DELIVERY_LIMIT, "{v}");
            assert!(poison.insert((p, o)), "{POISON} {p}/{o} dead-lettered twice");
            continue;
        }
        assert_eq!(h("weir-dlq-topic"), TOPIC, "{v}");
        assert_eq!(
            v["value"].as_str(),
            Some((o * 2 + p).to_string().as_str()),
            "value of {p}/{o}"
        );
        assert!(reason == "rejected" && o % RULE_MOD == 5 && count >= 1, "{v}");
        assert!(
            dead.insert((p, o), reason).is_none(),
            "{p}/{o} dead-lettered twice"
        );
    }
    assert!(!dead.is_empty(), "no REJECTed record in the dead-letter topic");
    let want: BTreeSet<Key> = (0..POISON_RECORDS).map(|i| (i % 2, i / 2)).collect();
    assert_eq!(poison, want, "every always-released record, once");
    dead
}

/// TTL: records past their TTL (the topic's `message.ttl.ms`, or a `weir-ttl-ms` header,
/// which wins) never reach a share consumer and are copied to the dead-letter topic with
/// reason `expired`; the others are delivered in order.
#[test]
fn given_records_past_their_ttl_should_never_deliver_them_and_dead_letter_them() {
    let broker = Broker::start(FLAGS);
    let out = script(&["ttl", &broker.addr(), "ttl-jobs", "ttl-dlq"])
        .output()
        .expect("ttl");
    assert!(
        out.status.success(),
        "ttl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("ttl answer");
    let got: Vec<&str> = v["received"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    let long: Vec<String> = (0..20).map(|i| format!("long-{i}")).collect();
    assert_eq!(got, long, "only the unexpired records, in order, once each");
    wait_for(
        "the expired records in the dead-letter topic",
        Duration::from_secs(30),
        || {
            let out = script(&["dump", &broker.addr(), "ttl-dlq", "1"])
                .output()
                .expect("dump");
            String::from_utf8_lossy(&out.stdout).lines().count() >= 40
        },
    );
    let out = script(&["dump", &broker.addr(), "ttl-dlq", "1"])
        .output()
        .expect("dump");
    let mut values = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let r: Value = serde_json::from_str(line).unwrap();
        assert_eq!(r["headers"]["weir-dlq-reason"].as_str(), Some("expired"), "{r}");
        assert_eq!(r["headers"]["weir-dlq-delivery-count"].as_str(), Some("0"), "{r}");
        values.push(r["value"].as_str().unwrap().to_owned());
    }
    let mut want: Vec<String> = (0..20).map(|i| format!("old-{i}")).collect();
    want.extend((0..20).map(|i| format!("short-{i}")));
    assert_eq!(values, want, "every expired record once, in source order");
}

/// The crash window of a dead-letter move: the broker aborts (test hook
/// `WEIR_FAULT_DEAD_LETTER_ABORT`) after a move's copies are durable and before the records
/// are archived. After the restart the move finds its copies (the floor and scan) and copies
/// only the rest: every REJECTed record is in the dead-letter topic exactly once.
#[test]
fn given_a_crash_between_a_dead_letter_copy_and_its_archive_should_copy_each_record_once() {
    let tmp = tempfile::tempdir().unwrap();
    let flag = tmp.path().join("abort-once");
    std::fs::write(&flag, b"").unwrap();
    let flag_s = flag.to_str().unwrap().to_owned();
    let mut broker = Broker::start_with_env(FLAGS, &[("WEIR_FAULT_DEAD_LETTER_ABORT", &flag_s)]);
    let n = 400;
    let out = script(&[
        "produce",
        &broker.addr(),
        "crash-jobs",
        &n.to_string(),
        "crash-dlq",
    ])
    .output()
    .expect("produce");
    assert!(
        out.status.success(),
        "produce: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stop = tmp.path().join("stop");
    let bs = broker.addr();
    let mut rejecter = vec![spawn(&[
        "rejecter",
        &bs,
        "crashers",
        "crash-jobs",
        stop.to_str().unwrap(),
    ])];
    wait_for(
        "the abort between copy and archive",
        Duration::from_secs(60),
        || !flag.exists(),
    );
    broker.kill();
    broker.start_again();
    wait_for("every record settled", Duration::from_secs(120), || {
        start_offsets_of(&broker, "crashers", "crash-jobs") == vec![n / 2, n / 2]
    });
    stop_members(&stop, &mut rejecter);
    let seen = rejected_copies(&broker, "crash-dlq");
    let twice: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).take(5).collect();
    assert!(twice.is_empty(), "copied twice: {twice:?}");
    let want: Vec<Key> = (0..n)
        .map(|i| (i % 2, i / 2))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        want,
        "every rejected record once"
    );
    let log = broker.log();
    assert!(
        log.contains("dead-letter scan after an interrupted move"),
        "the restart scanned for copies"
    );
}

/// How many copies of each source record a dead-letter topic of REJECTed records holds.
fn rejected_copies(broker: &Broker, dlq: &str) -> BTreeMap<Key, usize> {
    let out = script(&["dump", &broker.addr(), dlq, "2"])
        .output()
        .expect("dump");
    assert!(
        out.status.success(),
        "dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut seen: BTreeMap<Key, usize> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let h = |k: &str| v["headers"][k].as_str().unwrap().parse::<i64>().unwrap();
        assert_eq!(v["headers"]["weir-dlq-reason"].as_str(), Some("rejected"), "{v}");
        *seen
            .entry((h("weir-dlq-partition"), h("weir-dlq-offset")))
            .or_default() += 1;
    }
    seen
}
