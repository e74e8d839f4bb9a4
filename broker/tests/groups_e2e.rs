//! Consumer groups end to end: three confluent-kafka consumers (separate Python processes, so
//! they can be SIGKILLed) share a 6-partition topic of 60,000 records through a member close,
//! a member kill and a broker restart; and the project's own client joins, leads, assigns,
//! fetches, commits and sees a second member's join trigger a rebalance.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Broker;
use weir_client::blocking::{decode_assignment, encode_assignment, encode_subscription, Client, ClientError};
use weir_protocol::record_batch::Compression;

const PARTITIONS: i32 = 6;
const SESSION_TIMEOUT_MS: u64 = 6_000;
/// Records per produce request: 60,000 records are 120 requests.
const CHUNK_RECORDS: usize = 500;
const BROKER_FLAGS: &[&str] = &["--shards", "2", "--group-initial-rebalance-delay-ms", "200"];

/// `broker.client()` with the error in the panic message. A connect once failed (one run in
/// eight, all tests in parallel on 2 loaded cores) and the harness's `expect` hid why; retry
/// twice, printing each error, so a transient refusal shows up in the output.
fn client(broker: &Broker) -> Client {
    let mut last = None;
    for attempt in 0..3 {
        match Client::connect(broker.addr(), Duration::from_secs(5)) {
            Ok(c) => return c,
            Err(e) => {
                eprintln!("connect attempt {attempt} to {} failed: {e:?}", broker.addr());
                last = Some(e);
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    panic!("cannot connect to {}: {last:?}", broker.addr());
}

fn python() -> PathBuf {
    common::venv_python("confluent_kafka")
}

/// (partition, offset) -> key of every record produced so far.
#[derive(Default)]
struct Produced(BTreeMap<(i32, i64), String>);

impl Produced {
    /// Produces keys `first..first+count` in chunks spread round-robin over the partitions.
    fn produce(&mut self, broker: &Broker, topic: &str, first: usize, count: usize) {
        let mut client = client(broker);
        let mut start = first;
        while start < first + count {
            let n = CHUNK_RECORDS.min(first + count - start);
            let partition = ((start / CHUNK_RECORDS) % PARTITIONS as usize) as i32;
            let base = client
                .produce(topic, partition, common::batch(start, n, Compression::None), -1)
                .unwrap();
            for j in 0..n {
                self.0
                    .insert((partition, base + j as i64), format!("key-{}", start + j));
            }
            start += n;
        }
    }
}

/// A group member under test, whatever its client: what it consumed, for the checks below.
trait Member {
    fn name(&self) -> &str;
    /// (partition, offset, key) of every record it processed, in order.
    fn consumed(&self) -> Vec<(i32, i64, String)>;
    /// Its event log, for failure messages.
    fn stderr(&self) -> String;
    /// Stops after leaving the group.
    fn close(&mut self);
    /// Stops without leaving and without a last commit.
    fn kill(&mut self);
}

struct PyMember {
    name: String,
    child: Option<Child>,
    out: PathBuf,
    err: PathBuf,
}

impl PyMember {
    fn spawn(broker: &Broker, group: &str, topic: &str, assignor: &str, name: &str) -> Self {
        let out = broker.dir.path().join(format!("{name}.out"));
        let err = broker.dir.path().join(format!("{name}.err"));
        let child = Command::new(python())
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/clients/group_consumer.py"
            ))
            .args(["--bootstrap", &broker.addr(), "--group", group, "--topic", topic])
            .args([
                "--assignor",
                assignor,
                "--session-timeout-ms",
                &SESSION_TIMEOUT_MS.to_string(),
            ])
            .arg("--out")
            .arg(&out)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .expect("python consumer starts");
        Self {
            name: name.to_string(),
            child: Some(child),
            out,
            err,
        }
    }
}

impl Member for PyMember {
    /// SIGTERM: the consumer closes (LeaveGroup) and exits 0.
    fn close(&mut self) {
        let mut child = self.child.take().expect("running");
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "{} did not close: {}",
                self.name,
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let status = child.wait().unwrap();
        assert!(
            status.success(),
            "{} exited with {status}: {}",
            self.name,
            self.stderr()
        );
    }

    /// SIGKILL: no LeaveGroup, no last commit.
    fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }
    fn name(&self) -> &str {
        &self.name
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// (partition, offset, key) of every complete line written so far.
    fn consumed(&self) -> Vec<(i32, i64, String)> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        let complete = match text.rfind('\n') {
            Some(end) => &text[..=end],
            None => "",
        };
        complete
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                assert_eq!(f.len(), 3, "bad line {l:?} from {}", self.name);
                (f[0].parse().unwrap(), f[1].parse().unwrap(), f[2].to_string())
            })
            .collect()
    }
}

impl Drop for PyMember {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// How many times each (partition, offset) was consumed, and by which members.
fn tally<M: Member>(members: &[&M], produced: &Produced) -> HashMap<(i32, i64), Vec<String>> {
    let mut seen: HashMap<(i32, i64), Vec<String>> = HashMap::new();
    for m in members {
        for (p, o, key) in m.consumed() {
            let expected = produced.0.get(&(p, o));
            assert_eq!(expected, Some(&key), "{} read {p}/{o} with key {key}", m.name());
            seen.entry((p, o)).or_default().push(m.name().to_string());
        }
    }
    seen
}

fn wait_all_consumed<M: Member>(
    members: &[&M],
    produced: &Produced,
    within: Duration,
    what: &str,
) -> Duration {
    let start = Instant::now();
    loop {
        let seen = tally(members, produced);
        if produced.0.keys().all(|k| seen.contains_key(k)) {
            return start.elapsed();
        }
        if start.elapsed() > within {
            let missing = produced.0.keys().filter(|k| !seen.contains_key(k)).count();
            let logs: Vec<String> = members
                .iter()
                .map(|m| format!("{}: {}", m.name(), m.stderr()))
                .collect();
            panic!(
                "{what}: {missing} records not consumed after {within:?}\n{}",
                logs.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn assert_exactly_once<M: Member>(members: &[&M], produced: &Produced) {
    let seen = tally(members, produced);
    assert_eq!(seen.len(), produced.0.len(), "every record consumed");
    let dups: Vec<_> = seen.iter().filter(|(_, by)| by.len() > 1).take(5).collect();
    assert!(
        dups.is_empty(),
        "records consumed twice without failures: {dups:?}"
    );
}

/// At least once; a duplicate is allowed only if the dead member read it at or after the
/// offset committed when it died.
fn assert_no_skip<M: Member>(
    members: &[&M],
    produced: &Produced,
    dead: &str,
    committed_at_death: &HashMap<i32, i64>,
) {
    let seen = tally(members, produced);
    assert_eq!(seen.len(), produced.0.len(), "no record skipped");
    for ((p, o), by) in &seen {
        if by.len() > 1 {
            let after_commit = *o >= committed_at_death.get(p).copied().unwrap_or(0);
            assert!(
                by.iter().any(|m| m == dead) && after_commit,
                "{p}/{o} consumed by {by:?}: a duplicate not explained by {dead}'s death"
            );
        }
    }
}

fn committed(client: &mut Client, group: &str) -> HashMap<i32, i64> {
    client
        .fetch_offsets(group, None)
        .unwrap()
        .into_iter()
        .map(|(_, p, o)| (p, o))
        .collect()
}

/// Waits until the group is Stable with `members` members whose assignments cover every
/// partition exactly once (one member per partition at a time); returns how long it took.
fn wait_stable(broker: &Broker, group: &str, members: usize, within: Duration) -> Duration {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < within {
        if let Ok(mut client) = Client::connect(broker.addr(), Duration::from_secs(2)) {
            if let Ok(d) = client.describe_group(group) {
                let mut owned: Vec<i32> = d
                    .members
                    .iter()
                    .flat_map(|m| m.assignment.iter().flat_map(|a| a.1.clone()))
                    .collect();
                owned.sort_unstable();
                if d.state == "Stable"
                    && d.members.len() == members
                    && owned == (0..PARTITIONS).collect::<Vec<_>>()
                {
                    return start.elapsed();
                }
                last = format!("{} with {} members owning {owned:?}", d.state, d.members.len());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "group {group} not Stable with {members} members covering every partition after {within:?}: {last}"
    );
}

fn three_consumers_through_close_kill_and_restart<M: Member>(
    assignor: &str,
    spawn: impl Fn(&Broker, &str, &str, &str, &str) -> M,
) {
    let mut broker = Broker::start(BROKER_FLAGS);
    let (topic, group) = ("orders", format!("g-{assignor}"));
    client(&broker).create_topic(topic, PARTITIONS, &[]).unwrap();
    let mut produced = Produced::default();
    produced.produce(&broker, topic, 0, 24_000);
    let mut a = spawn(&broker, &group, topic, assignor, "a");
    let mut b = spawn(&broker, &group, topic, assignor, "b");
    let mut c = spawn(&broker, &group, topic, assignor, "c");
    wait_all_consumed(&[&a, &b, &c], &produced, Duration::from_secs(60), "three members");
    wait_stable(&broker, &group, 3, Duration::from_secs(30));
    assert_exactly_once(&[&a, &b, &c], &produced);

    // A member that closes leaves at once: its partitions move well within the session timeout.
    c.close();
    let moved = wait_stable(&broker, &group, 2, Duration::from_millis(SESSION_TIMEOUT_MS));
    produced.produce(&broker, topic, 24_000, 12_000);
    wait_all_consumed(&[&a, &b, &c], &produced, Duration::from_secs(30), "after close");
    assert_exactly_once(&[&a, &b, &c], &produced);
    eprintln!("{assignor}: partitions moved {moved:?} after a close");

    // A killed member is noticed only when its session expires.
    b.kill();
    let at_death = committed(&mut client(&broker), &group);
    produced.produce(&broker, topic, 36_000, 12_000);
    let moved = wait_stable(&broker, &group, 1, Duration::from_millis(SESSION_TIMEOUT_MS * 3));
    wait_all_consumed(&[&a, &b, &c], &produced, Duration::from_secs(30), "after kill");
    assert_no_skip(&[&a, &b, &c], &produced, "b", &at_death);
    eprintln!("{assignor}: partitions moved {moved:?} after a kill");

    // The broker restarts: the group resumes from its committed offsets.
    let before_restart = committed(&mut client(&broker), &group);
    broker.restart();
    produced.produce(&broker, topic, 48_000, 12_000);
    wait_all_consumed(&[&a, &b, &c], &produced, Duration::from_secs(60), "after restart");
    assert_no_skip(&[&a, &b, &c], &produced, "a", &before_restart);
    assert_eq!(produced.0.len(), 60_000);

    a.close();
    let mut client = client(&broker);
    let end = committed(&mut client, &group);
    for p in 0..PARTITIONS {
        let (log_end, _) = client.list_offset(topic, p, -1).unwrap();
        assert_eq!(
            end.get(&p),
            Some(&log_end),
            "partition {p} committed up to its log end"
        );
    }
}

#[test]
fn given_three_confluent_range_consumers_when_one_closes_one_is_killed_and_the_broker_restarts_should_consume_every_record(
) {
    three_consumers_through_close_kill_and_restart("range", PyMember::spawn);
}

#[test]
fn given_three_confluent_cooperative_sticky_consumers_when_one_closes_one_is_killed_and_the_broker_restarts_should_consume_every_record(
) {
    three_consumers_through_close_kill_and_restart("cooperative-sticky", PyMember::spawn);
}

/// Range assignment of `partitions` over `members` (sorted by id), as the Java RangeAssignor.
fn range_assign(topic: &str, members: &[String], partitions: i32) -> Vec<(String, bytes::Bytes)> {
    let mut ids = members.to_vec();
    ids.sort();
    let n = ids.len() as i32;
    let (per, extra) = (partitions / n, partitions % n);
    let mut next = 0;
    ids.into_iter()
        .enumerate()
        .map(|(i, id)| {
            let count = per + i32::from((i as i32) < extra);
            let mine: Vec<i32> = (next..next + count).collect();
            next += count;
            (id, encode_assignment(&[(topic.to_string(), mine)]))
        })
        .collect()
}

/// Consumes `partitions` from their committed offsets to the log end, commits; returns keys.
fn consume_and_commit(
    client: &mut Client,
    group: &str,
    joined: &weir_client::blocking::Joined,
    topic: &str,
    partitions: &[i32],
) -> Vec<String> {
    let start = client
        .fetch_offsets(group, Some(&[(topic, partitions.to_vec())]))
        .unwrap();
    let mut keys = Vec::new();
    let mut done = Vec::new();
    for (_, p, committed) in start {
        let mut offset = committed.max(0);
        loop {
            let (hw, records) = client.fetch(topic, p, offset, 1 << 20, 0).unwrap();
            let got = common::decode(&records);
            let from = offset;
            for (o, k, _) in got.iter().filter(|r| r.0 >= from) {
                keys.push(k.clone());
                offset = o + 1;
            }
            if offset >= hw {
                break;
            }
        }
        done.push((topic, p, offset));
    }
    client
        .commit_offsets(group, joined.generation_id, &joined.member_id, &done)
        .unwrap();
    keys
}

fn kafka_code(r: Result<(), ClientError>) -> i16 {
    match r {
        Err(ClientError::Kafka { code, .. }) => code,
        other => panic!("expected a Kafka error, got {other:?}"),
    }
}

const REBALANCE_IN_PROGRESS: i16 = 27;

/// The only member joins, leads, assigns itself every partition, reads the first 500 records
/// of each and commits there. Returns its membership and the keys it read.
fn lead_alone_and_commit_half(
    one: &mut Client,
    group: &str,
    topic: &str,
) -> (weir_client::blocking::Joined, Vec<String>) {
    let protocols = [("range", encode_subscription(&[topic]))];
    let j1 = one
        .join_group(group, "", SESSION_TIMEOUT_MS as i32, &protocols)
        .unwrap();
    assert!(j1.is_leader(), "the only member leads");
    assert_eq!(j1.members.len(), 1);
    assert_eq!(
        weir_client::blocking::decode_subscription(&j1.members[0].1).unwrap(),
        vec![topic.to_string()]
    );
    let ids: Vec<String> = j1.members.iter().map(|m| m.0.clone()).collect();
    let mine = one
        .sync_group(group, &j1, &range_assign(topic, &ids, PARTITIONS))
        .unwrap();
    let mine = decode_assignment(&mine).unwrap();
    assert_eq!(
        mine,
        vec![(topic.to_string(), (0..PARTITIONS).collect::<Vec<_>>())]
    );
    // Read half of every partition's records, then commit that far.
    let mut first_keys = Vec::new();
    for p in 0..PARTITIONS {
        let (_, records) = one.fetch(topic, p, 0, 1 << 20, 0).unwrap();
        let half: Vec<_> = common::decode(&records)
            .into_iter()
            .filter(|r| r.0 < 500)
            .collect();
        assert_eq!(half.len(), 500);
        first_keys.extend(half.iter().map(|r| r.1.clone()));
        one.commit_offsets(group, j1.generation_id, &j1.member_id, &[(topic, p, 500)])
            .unwrap();
    }
    (j1, first_keys)
}

/// A second member joins; the first learns of the rebalance from its heartbeat and rejoins.
/// Returns the first member's new membership, the second's client and membership.
fn second_member_joins(
    one: &mut Client,
    coordinator: &str,
    group: &'static str,
    topic: &'static str,
    j1: &weir_client::blocking::Joined,
) -> (
    weir_client::blocking::Joined,
    Client,
    weir_client::blocking::Joined,
) {
    let protocols = [("range", encode_subscription(&[topic]))];
    // A second member's JoinGroup parks until the first rejoins; the first learns of the
    // rebalance from its heartbeat.
    let addr = coordinator.to_string();
    let second = std::thread::spawn(move || {
        let mut two = Client::connect(addr.as_str(), Duration::from_secs(5)).unwrap();
        let j2 = two
            .join_group(
                group,
                "",
                SESSION_TIMEOUT_MS as i32,
                &[("range", encode_subscription(&[topic]))],
            )
            .unwrap();
        (two, j2)
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = one.heartbeat(group, j1.generation_id, &j1.member_id);
        if r.is_err() {
            assert_eq!(kafka_code(r), REBALANCE_IN_PROGRESS);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no rebalance after a second member joined"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let j1b = one
        .join_group(group, &j1.member_id, SESSION_TIMEOUT_MS as i32, &protocols)
        .unwrap();
    let (two, j2) = second.join().unwrap();
    assert_eq!(j1b.generation_id, j1.generation_id + 1);
    assert_eq!(j2.generation_id, j1b.generation_id);
    assert!(j1b.is_leader() && !j2.is_leader(), "the leader stays the leader");
    assert_eq!(j1b.members.len(), 2);
    (j1b, two, j2)
}

#[test]
fn given_own_client_when_a_leader_assigns_commits_and_a_second_member_joins_should_rebalance_and_resume_from_commits(
) {
    let broker = Broker::start(BROKER_FLAGS);
    let (topic, group) = ("events", "own");
    client(&broker).create_topic(topic, PARTITIONS, &[]).unwrap();
    let mut produced = Produced::default();
    produced.produce(&broker, topic, 0, 6_000);

    // The coordinator named by FindCoordinator answers group calls directly.
    let (node, host, port) = client(&broker).find_coordinator(group).unwrap();
    assert!(node >= 0);
    let coordinator = format!("{host}:{port}");
    let mut one = Client::connect(coordinator.as_str(), Duration::from_secs(5)).unwrap();
    let protocols = [("range", encode_subscription(&[topic]))];
    let (j1, first_keys) = lead_alone_and_commit_half(&mut one, group, topic);
    let d = client(&broker).describe_group(group).unwrap();
    assert_eq!(
        (d.state.as_str(), d.protocol.as_str(), d.members.len()),
        ("Stable", "range", 1)
    );

    let (j1b, mut two, j2) = second_member_joins(&mut one, &coordinator, group, topic, &j1);
    let ids: Vec<String> = j1b.members.iter().map(|m| m.0.clone()).collect();
    let plan = range_assign(topic, &ids, PARTITIONS);
    let syncing = std::thread::spawn(move || {
        let a = two.sync_group(group, &j2, &[]).unwrap();
        (two, j2, a)
    });
    let a1 = decode_assignment(&one.sync_group(group, &j1b, &plan).unwrap()).unwrap();
    let (mut two, j2, a2) = syncing.join().unwrap();
    let a2 = decode_assignment(&a2).unwrap();
    let mut all: Vec<i32> = a1[0].1.iter().chain(&a2[0].1).copied().collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..PARTITIONS).collect::<Vec<_>>(),
        "each partition to one member"
    );
    assert_eq!((a1[0].1.len(), a2[0].1.len()), (3, 3));

    // Each member resumes from the committed offsets: together they read exactly the rest.
    let mut keys = consume_and_commit(&mut one, group, &j1b, topic, &a1[0].1);
    keys.extend(consume_and_commit(&mut two, group, &j2, topic, &a2[0].1));
    keys.extend(first_keys);
    keys.sort();
    let mut expected: Vec<String> = produced.0.values().cloned().collect();
    expected.sort();
    assert_eq!(keys, expected, "every record exactly once across the rebalance");
    let stale = one.commit_offsets(group, j1.generation_id, &j1.member_id, &[(topic, 0, 0)]);
    assert!(stale.is_err(), "a commit with the old generation is refused");

    // The leader leaves: the other member is told to rejoin and becomes the leader alone.
    one.leave_group(group, &j1b.member_id).unwrap();
    assert_eq!(
        kafka_code(two.heartbeat(group, j2.generation_id, &j2.member_id)),
        REBALANCE_IN_PROGRESS
    );
    let j2b = two
        .join_group(group, &j2.member_id, SESSION_TIMEOUT_MS as i32, &protocols)
        .unwrap();
    assert!(j2b.is_leader());
    assert_eq!(j2b.generation_id, j2.generation_id + 1);
    let listed = client(&broker).list_groups().unwrap();
    assert!(
        listed
            .iter()
            .any(|g| g.group_id == group && g.protocol_type == "consumer"),
        "{listed:?}"
    );
}

/// A group member on the project's own client, run on a thread: join (range assignment when
/// it leads), sync, read its partitions from the committed offsets, commit after every read,
/// heartbeat, rejoin on REBALANCE_IN_PROGRESS, reconnect while the broker restarts.
struct OwnMember {
    name: String,
    /// 0 run, 1 close (LeaveGroup), 2 die (drop the connection, no LeaveGroup).
    stop: std::sync::Arc<std::sync::atomic::AtomicU8>,
    consumed: std::sync::Arc<std::sync::Mutex<Vec<(i32, i64, String)>>>,
    events: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

const OWN_HEARTBEAT_INTERVAL_MS: u64 = 500;
const STOP_RUN: u8 = 0;
const STOP_CLOSE: u8 = 1;
const STOP_DIE: u8 = 2;

impl OwnMember {
    fn spawn(broker: &Broker, group: &str, topic: &str, _assignor: &str, name: &str) -> Self {
        let mut member = Self {
            name: name.to_string(),
            stop: Default::default(),
            consumed: Default::default(),
            events: Default::default(),
            thread: None,
        };
        let (addr, group, topic) = (broker.addr(), group.to_string(), topic.to_string());
        let (stop, consumed, events) = (
            member.stop.clone(),
            member.consumed.clone(),
            member.events.clone(),
        );
        let thread = std::thread::spawn(move || {
            let mut member_id = String::new();
            while stop.load(std::sync::atomic::Ordering::SeqCst) == STOP_RUN {
                let Ok(mut client) = Client::connect(addr.as_str(), Duration::from_secs(2)) else {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                };
                let r = own_session(&mut client, &group, &topic, &mut member_id, &stop, &consumed);
                events.lock().unwrap().push(format!("session ended: {r:?}"));
            }
        });
        member.thread = Some(thread);
        member
    }

    fn stop_with(&mut self, how: u8) {
        self.stop.store(how, std::sync::atomic::Ordering::SeqCst);
        self.thread.take().expect("running").join().unwrap();
    }
}

/// One connection's worth of membership: returns when the connection fails, the member must
/// rejoin from scratch, or it is told to stop.
fn own_session(
    client: &mut Client,
    group: &str,
    topic: &str,
    member_id: &mut String,
    stop: &std::sync::atomic::AtomicU8,
    consumed: &std::sync::Mutex<Vec<(i32, i64, String)>>,
) -> Result<(), ClientError> {
    'join: loop {
        let Some((joined, mut positions)) = own_join(client, group, topic, member_id)? else {
            continue 'join;
        };
        let mut last_heartbeat = Instant::now();
        loop {
            match stop.load(std::sync::atomic::Ordering::SeqCst) {
                STOP_CLOSE => return client.leave_group(group, member_id),
                STOP_DIE => return Ok(()),
                _ => {}
            }
            let read = own_read(client, topic, &mut positions, consumed)?;
            if read {
                let commit: Vec<(&str, i32, i64)> = positions.iter().map(|(p, o)| (topic, *p, *o)).collect();
                if client
                    .commit_offsets(group, joined.generation_id, member_id, &commit)
                    .is_err()
                {
                    continue 'join;
                }
            } else {
                std::thread::sleep(Duration::from_millis(20));
            }
            if last_heartbeat.elapsed() >= Duration::from_millis(OWN_HEARTBEAT_INTERVAL_MS) {
                last_heartbeat = Instant::now();
                match client.heartbeat(group, joined.generation_id, member_id) {
                    Ok(()) => {}
                    Err(ClientError::Kafka {
                        code: UNKNOWN_MEMBER_ID,
                        ..
                    }) => {
                        member_id.clear();
                        continue 'join;
                    }
                    Err(ClientError::Kafka { .. }) => continue 'join,
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

const UNKNOWN_MEMBER_ID: i16 = 25;

/// A generation's membership and the (partition, position) of each assigned partition.
type Membership = (weir_client::blocking::Joined, Vec<(i32, i64)>);

/// Join and sync (leading with a range assignment when chosen); returns the membership and
/// the committed position of each assigned partition, or `None` when the member must rejoin.
fn own_join(
    client: &mut Client,
    group: &str,
    topic: &str,
    member_id: &mut String,
) -> Result<Option<Membership>, ClientError> {
    let protocols = [("range", encode_subscription(&[topic]))];
    let joined = match client.join_group(group, member_id, SESSION_TIMEOUT_MS as i32, &protocols) {
        Err(ClientError::Kafka {
            code: UNKNOWN_MEMBER_ID,
            ..
        }) => {
            member_id.clear();
            return Ok(None);
        }
        r => r?,
    };
    *member_id = joined.member_id.clone();
    let plan = if joined.is_leader() {
        let ids: Vec<String> = joined.members.iter().map(|m| m.0.clone()).collect();
        range_assign(topic, &ids, PARTITIONS)
    } else {
        Vec::new()
    };
    let assignment = match client.sync_group(group, &joined, &plan) {
        Ok(a) => decode_assignment(&a).unwrap_or_default(),
        Err(ClientError::Kafka { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let partitions: Vec<i32> = assignment.into_iter().flat_map(|a| a.1).collect();
    let positions = client
        .fetch_offsets(group, Some(&[(topic, partitions)]))?
        .into_iter()
        .map(|(_, p, o)| (p, o.max(0)))
        .collect();
    Ok(Some((joined, positions)))
}

/// One fetch per owned partition from its position; true if anything was read.
fn own_read(
    client: &mut Client,
    topic: &str,
    positions: &mut [(i32, i64)],
    consumed: &std::sync::Mutex<Vec<(i32, i64, String)>>,
) -> Result<bool, ClientError> {
    let mut read = false;
    for (p, position) in positions.iter_mut() {
        let (_, records) = client.fetch(topic, *p, *position, 256 * 1024, 0)?;
        let from = *position;
        let mut consumed = consumed.lock().unwrap();
        for (o, k, _) in common::decode(&records).into_iter().filter(|r| r.0 >= from) {
            consumed.push((*p, o, k));
            *position = o + 1;
            read = true;
        }
    }
    Ok(read)
}

impl Member for OwnMember {
    fn name(&self) -> &str {
        &self.name
    }

    fn consumed(&self) -> Vec<(i32, i64, String)> {
        self.consumed.lock().unwrap().clone()
    }

    fn stderr(&self) -> String {
        self.events.lock().unwrap().join("\n")
    }

    fn close(&mut self) {
        self.stop_with(STOP_CLOSE);
    }

    fn kill(&mut self) {
        self.stop_with(STOP_DIE);
    }
}

impl Drop for OwnMember {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.stop.store(STOP_DIE, std::sync::atomic::Ordering::SeqCst);
            let _ = thread.join();
        }
    }
}

#[test]
fn given_three_own_client_consumers_when_one_closes_one_dies_and_the_broker_restarts_should_consume_every_record(
) {
    three_consumers_through_close_kill_and_restart("range", OwnMember::spawn);
}

/// Issue 12: in zero-hop mode every shard is a node of the metadata, and admin clients
/// send ListGroups to each node and merge the answers. Each group must come back once.
#[test]
fn given_groups_on_every_shard_when_each_node_is_asked_for_its_groups_should_list_each_group_once() {
    let broker = Broker::start(&["--shards", "2"]);
    let mut c = client(&broker);
    c.create_topic("lg", 1, &[]).unwrap();
    let groups: Vec<String> = (0..8).map(|g| format!("lg-group-{g}")).collect();
    for g in &groups {
        c.commit_offsets(g, -1, "", &[("lg", 0, 0)]).unwrap();
    }
    let ids = |listing: Vec<weir_client::blocking::GroupListing>| -> Vec<String> {
        listing.into_iter().map(|g| g.group_id).collect()
    };
    let mut per_node = Vec::new();
    for shard in 0..2u16 {
        let addr = format!("127.0.0.1:{}", broker.shard_port_base + shard);
        let mut node = Client::connect(addr.as_str(), Duration::from_secs(5)).unwrap();
        per_node.extend(ids(node.list_groups().unwrap()));
    }
    per_node.sort();
    assert_eq!(
        per_node, groups,
        "the nodes' answers together list each group once"
    );
    assert_eq!(
        ids(c.list_groups().unwrap()),
        groups,
        "the bootstrap address lists all"
    );

    // kafka-python's admin client asks every node of the metadata, as the issue saw.
    let script = "import sys\nfrom kafka import KafkaAdminClient\n\
        a = KafkaAdminClient(bootstrap_servers=sys.argv[1])\n\
        print('\\n'.join(sorted(g['group_id'] for g in a.list_groups())))\n";
    let out = Command::new(common::venv_python("kafka"))
        .args(["-c", script, &broker.addr()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(listed, groups, "kafka-python list_groups()");
}
