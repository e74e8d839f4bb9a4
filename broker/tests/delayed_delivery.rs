//! Delayed delivery (docs/queues.md) as real clients see it: kcat (`-H
//! weir-delay-ms=...`) and confluent-kafka's default producer
//! (`tests/clients/delayed_delivery.py`) produce delayed records; a plain
//! confluent-kafka consumer polling all along sees each no earlier than due
//! and at most 100 ms late (plus what the broker reports the disk's
//! fdatasync of the FIRE intent cost past due), in due order per partition,
//! also across a kill -9
//! while timers are pending, and exactly once across a kill -9 while they are
//! firing. A topic's `delivery.delay.ms` delays records without a header.
//! Malformed queue headers refuse the whole batch with INVALID_RECORD (87)
//! and a message, and store nothing.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Broker;
use serde_json::Value;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/delayed_delivery.py");
const LATE_MAX_MS: f64 = 100.0;
/// The broker's own account of the lateness no scheduling could avoid: time a
/// due record waited for its FIRE intent's fdatasync.
const SYNC_WAIT: &str = "weir_timer_sync_wait_seconds";
/// What the consumer's own poll latency may add on a loaded machine.
const CONSUMER_SLACK_MS: f64 = 1_000.0;

/// How late a delayed record may appear on the broker: `LATE_MAX_MS`, plus
/// the largest FIRE sync wait the broker has reported (to its histogram
/// bucket, kept across restarts), plus the worst lateness of a thread here
/// sleeping 1 ms at a time (the machine's own scheduling pauses). Both are 0
/// on a quiet machine. Under a buffered writer on the same ext4 (measured):
/// one fdatasync took 498 ms and its record fired 303 ms late; another record
/// was 55 ms late from the shard's wake-up alone, with a 6 ms sync.
struct LateBound {
    metrics: String,
    sync_wait_ms: std::cell::Cell<f64>,
    hiccup_us: Arc<std::sync::atomic::AtomicU64>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl LateBound {
    fn new(metrics: &str) -> Self {
        let hiccup_us = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (worst, stopped) = (hiccup_us.clone(), stop.clone());
        std::thread::spawn(move || {
            use std::sync::atomic::Ordering::Relaxed;
            while !stopped.load(Relaxed) {
                let asleep = Instant::now();
                std::thread::sleep(Duration::from_millis(1));
                let late = asleep.elapsed().saturating_sub(Duration::from_millis(1));
                worst.fetch_max(late.as_micros() as u64, Relaxed);
            }
        });
        Self {
            metrics: metrics.to_string(),
            sync_wait_ms: std::cell::Cell::new(0.0),
            hiccup_us,
            stop,
        }
    }

    /// Read the broker's sync waits now (call before a kill -9 too).
    fn ms(&self) -> f64 {
        let page = common::metrics_page(&self.metrics);
        let wait = self.sync_wait_ms.get().max(bucket_bound_ms(&page, SYNC_WAIT));
        self.sync_wait_ms.set(wait);
        let hiccup = self.hiccup_us.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1e3;
        eprintln!("lateness allowed: {LATE_MAX_MS} ms + FIRE sync wait {wait} ms + hiccup {hiccup:.1} ms");
        LATE_MAX_MS + wait + hiccup
    }
}

impl Drop for LateBound {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Histogram `name`'s buckets on a metrics page: (shard label, bucket bound in ms,
/// cumulative count), in page order (ascending bounds per shard, `+Inf` last).
fn buckets_ms<'a>(page: &'a str, name: &str) -> Vec<(&'a str, f64, f64)> {
    let prefix = format!("{name}_bucket{{");
    page.lines()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .map(|line| {
            let (labels, cumulative) = line.rsplit_once("} ").unwrap();
            let (shard, le) = labels.split_once(",le=").unwrap();
            let le = le.trim_matches('"');
            let ms = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse::<f64>().unwrap() * 1e3
            };
            (shard, ms, cumulative.parse::<f64>().unwrap())
        })
        .collect()
}

/// The bound (ms) of the lowest bucket of histogram `name` that holds every
/// sample, the largest over shards; 0 with no samples.
fn bucket_bound_ms(page: &str, name: &str) -> f64 {
    let buckets = buckets_ms(page, name);
    // Each shard's `+Inf` bucket (its last) holds its total.
    let total = |shard: &str| buckets.iter().rev().find(|b| b.0 == shard).map_or(0.0, |b| b.2);
    let lowest_full = |shard: &str| {
        let all = total(shard);
        let full = buckets.iter().find(|b| b.0 == shard && b.2 >= all);
        full.filter(|_| all > 0.0).map_or(0.0, |b| b.1)
    };
    buckets.iter().map(|b| lowest_full(b.0)).fold(0.0, f64::max)
}

/// A broker with a metrics endpoint (for `LateBound`) and `extra` flags.
fn broker_with_metrics(extra: &[&str]) -> (Broker, String) {
    let mut broker = Broker::new_stopped(extra);
    let metrics = format!("127.0.0.1:{}", broker.port + 3);
    broker
        .extra
        .extend(["--metrics-listen".to_string(), metrics.clone()]);
    broker.start_again();
    (broker, metrics)
}

fn python() -> PathBuf {
    common::venv_python("confluent_kafka")
}

/// A consumer process and the records it printed so far.
struct Watcher {
    child: Child,
    seen: Arc<Mutex<Vec<Value>>>,
}

impl Watcher {
    fn start(broker: &Broker, topic: &str, partitions: &str, count: usize) -> Self {
        let mut child = Command::new(python())
            .args([
                SCRIPT,
                "consume",
                &broker.addr(),
                topic,
                partitions,
                &count.to_string(),
                "50",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python runs");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("consumer prints READY").unwrap();
        assert_eq!(first, "READY");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock()
                    .unwrap()
                    .push(serde_json::from_str(&line).expect("JSON line"));
            }
        });
        Watcher { child, seen }
    }

    /// Wait until `n` records arrived (or fail after `secs`).
    fn wait_for(&self, n: usize, secs: u64, broker: &Broker) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let seen = self.seen.lock().unwrap().clone();
            if seen.len() >= n {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {n} records arrived: {seen:?}\nbroker log:\n{}",
                seen.len(),
                broker.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// When each offset of each partition first appeared on the broker, polled
/// with ListOffsets every 5 ms (broker-side appearance, free of the
/// consumer's fetch latency). Reconnects across a kill -9.
struct Appearance {
    stop: Arc<std::sync::atomic::AtomicBool>,
    /// Per (partition, offset): when a poll last did not show it (the
    /// request's send time), and when one first did (the answer's arrival).
    /// The record appeared in between, however late this thread ran.
    seen: Arc<Mutex<Seen>>,
}

type Seen = HashMap<(i64, i64), (f64, f64)>;

fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

impl Appearance {
    fn start(addr: String, topic: &'static str, partitions: &'static [i32]) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let (stop2, sink) = (stop.clone(), seen.clone());
        std::thread::spawn(move || {
            let mut ends = vec![0i64; partitions.len()];
            // When each partition's last poll was sent: its end was `ends[i]`.
            let mut asked = vec![0.0f64; partitions.len()];
            let mut client = None;
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                if client.is_none() {
                    client =
                        weir_client::blocking::Client::connect(addr.as_str(), Duration::from_millis(200))
                            .ok();
                }
                let mut broken = false;
                if let Some(c) = client.as_mut() {
                    for (i, p) in partitions.iter().enumerate() {
                        let sent = now_ms();
                        let Ok((end, _)) = c.list_offset(topic, *p, -1) else {
                            broken = true;
                            break;
                        };
                        let t = now_ms();
                        let mut m = sink.lock().unwrap();
                        for o in ends[i]..end {
                            m.entry((i64::from(*p), o)).or_insert((asked[i], t));
                        }
                        ends[i] = ends[i].max(end);
                        asked[i] = sent;
                    }
                }
                if broken {
                    client = None;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Appearance { stop, seen }
    }

    /// (not yet there at, there at) in ms since the epoch.
    fn at(&self, partition: i64, offset: i64) -> Option<(f64, f64)> {
        self.seen.lock().unwrap().get(&(partition, offset)).copied()
    }
}

impl Drop for Appearance {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn produce_py(broker: &Broker, topic: &str, partition: i32, prefix: &str, delays: &str) -> Value {
    let out = Command::new(python())
        .args([
            SCRIPT,
            "produce",
            &broker.addr(),
            topic,
            &partition.to_string(),
            prefix,
            delays,
        ])
        .output()
        .expect("python runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reports: Value = serde_json::from_slice(&out.stdout).unwrap();
    for r in reports.as_array().unwrap() {
        assert_eq!(r["err"], Value::Null, "delivery report: {r}");
    }
    reports
}

fn kcat_produce(broker: &Broker, topic: &str, partition: i32, header: Option<&str>, values: &[&str]) {
    let input = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(input.path(), values.join("\n") + "\n").unwrap();
    let mut cmd = common::kcat();
    cmd.args([
        "-P",
        "-b",
        &broker.addr(),
        "-t",
        topic,
        "-p",
        &partition.to_string(),
    ]);
    if let Some(h) = header {
        cmd.args(["-H", h]);
    }
    common::run(&mut cmd, Some(input.path()));
}

/// When a consumed record was due: its timestamp plus its delay header (or
/// the deliver-at header, or the topic default).
fn due(r: &Value, default_delay: i64) -> f64 {
    let ts = r["ts"].as_i64().unwrap();
    let h = &r["h"];
    let due = if let Some(at) = h["weir-deliver-at-ms"].as_str() {
        at.parse::<i64>().unwrap()
    } else if let Some(d) = h["weir-delay-ms"].as_str() {
        ts + d.parse::<i64>().unwrap()
    } else {
        ts + default_delay
    };
    due as f64
}

/// Every record in `values` arrived exactly once, not before due, appeared on
/// the broker at most `late_max` after due (None: unchecked; the consumer may
/// add `CONSUMER_SLACK_MS`), and each partition's records in due order.
fn check(
    seen: &[Value],
    values: &[String],
    default_delay: i64,
    late_max: Option<f64>,
    appearance: &Appearance,
) {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for r in seen {
        *count.entry(r["v"].as_str().unwrap()).or_default() += 1;
    }
    for v in values {
        assert_eq!(
            count.get(v.as_str()),
            Some(&1),
            "{v} must arrive exactly once: {seen:?}"
        );
    }
    let mut last_due: HashMap<i64, (f64, i64)> = HashMap::new();
    for r in seen
        .iter()
        .filter(|r| values.iter().any(|v| v == r["v"].as_str().unwrap()))
    {
        let (due, arrival) = (due(r, default_delay), r["arrival"].as_f64().unwrap());
        assert!(arrival >= due, "{r} arrived {} ms early", due - arrival);
        let p = r["p"].as_i64().unwrap();
        let o = r["o"].as_i64().unwrap();
        if let Some(late) = late_max {
            let (absent, present) = appearance.at(p, o).unwrap_or((0.0, arrival));
            assert!(present >= due - 3.0, "{r} appeared {} ms early", due - present);
            assert!(
                absent <= due + late,
                "{r} appeared on the broker at least {} ms late (allowed {late} ms)",
                absent - due
            );
            assert!(
                arrival <= due + late + CONSUMER_SLACK_MS,
                "{r} reached the consumer {} ms late",
                arrival - due
            );
        }
        if let Some((prev_due, prev_o)) = last_due.get(&p) {
            assert!(o > *prev_o, "offsets go forward: {r}");
            assert!(
                due >= *prev_due,
                "partition {p}: {r} is before an earlier-due record"
            );
        }
        last_due.insert(p, (due, o));
    }
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

#[test]
fn delayed_records_arrive_on_time_in_due_order_and_survive_kill_9() {
    let (mut broker, metrics) = broker_with_metrics(&["--shards", "2"]);
    let late = LateBound::new(&metrics);
    broker.client().create_topic("delayed", 2, &[]).unwrap();
    let watcher = Watcher::start(&broker, "delayed", "0,1", 10_000);
    let appearance = Appearance::start(broker.addr(), "delayed", &[0, 1]);

    // On time, in due order: kcat's later-produced shorter delay fires first.
    kcat_produce(
        &broker,
        "delayed",
        0,
        Some("weir-delay-ms=2500"),
        &["ka-0", "ka-1", "ka-2"],
    );
    kcat_produce(
        &broker,
        "delayed",
        0,
        Some("weir-delay-ms=1200"),
        &["kb-0", "kb-1", "kb-2"],
    );
    let reports = produce_py(&broker, "delayed", 1, "cf", "1800,600,@1500,1200,3000");
    // The base offset is -1 (assigned at fire time): confluent-kafka reports
    // success without an offset.
    assert_eq!(
        reports[0]["offset"],
        Value::Null,
        "a delayed record has no offset yet"
    );
    let mut phase_a: Vec<String> = names("ka", 3);
    phase_a.extend(names("kb", 3));
    phase_a.extend(names("cf", 5));
    let seen = watcher.wait_for(phase_a.len(), 15, &broker);
    check(&seen, &phase_a, 0, Some(late.ms()), &appearance);

    // Pending across a kill -9: still delivered on time, once.
    kcat_produce(
        &broker,
        "delayed",
        0,
        Some("weir-delay-ms=6000"),
        &["kk-0", "kk-1"],
    );
    produce_py(&broker, "delayed", 1, "ck", "6000,5500");
    late.ms();
    broker.kill();
    broker.start_again();
    let mut phase_b = names("kk", 2);
    phase_b.extend(names("ck", 2));
    let seen = watcher.wait_for(phase_a.len() + phase_b.len(), 20, &broker);
    check(&seen, &phase_b, 0, Some(late.ms()), &appearance);

    // A kill -9 while firing: every record exactly once, in due order.
    let delays: Vec<String> = (0..300).map(|i| (800 + 6 * i).to_string()).collect();
    produce_py(&broker, "delayed", 1, "cx", &delays.join(","));
    std::thread::sleep(Duration::from_millis(1_500));
    late.ms();
    broker.kill();
    broker.start_again();
    let phase_c = names("cx", 300);
    let total = phase_a.len() + phase_b.len() + phase_c.len();
    let seen = watcher.wait_for(total, 20, &broker);
    std::thread::sleep(Duration::from_millis(500));
    let seen_after = watcher.seen.lock().unwrap().clone();
    assert_eq!(
        seen_after.len(),
        total,
        "no duplicates arrive late: {:?}",
        &seen_after[seen.len()..]
    );
    check(&seen_after, &phase_c, 0, None, &appearance);
    check(&seen_after, &phase_a, 0, Some(late.ms()), &appearance);
}

#[test]
fn topic_default_delay_and_malformed_headers() {
    let (broker, metrics) = broker_with_metrics(&["--shards", "2"]);
    let late = LateBound::new(&metrics);
    let mut client = broker.client();
    client
        .create_topic("slow", 1, &[("delivery.delay.ms", "1500")])
        .unwrap();
    client.create_topic("plain", 1, &[]).unwrap();
    let watcher = Watcher::start(&broker, "slow", "0", 10_000);
    let appearance = Appearance::start(broker.addr(), "slow", &[0]);
    kcat_produce(&broker, "slow", 0, None, &["d-0", "d-1", "d-2"]);
    let seen = watcher.wait_for(3, 15, &broker);
    check(&seen, &names("d", 3), 1_500, Some(late.ms()), &appearance);

    // confluent-kafka: every record of each batch refused with INVALID_RECORD.
    let out = Command::new(python())
        .args([SCRIPT, "bad", &broker.addr(), "plain", "0"])
        .output()
        .expect("python runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cases: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cases.as_array().unwrap().len(), 4);
    for case in cases.as_array().unwrap() {
        let errs = case[1].as_array().unwrap();
        assert_eq!(errs.len(), 2, "{case}");
        for e in errs {
            assert_eq!(e[0], 87, "INVALID_RECORD for {case}");
        }
    }
    // The message, on the wire.
    for (headers, message) in [
        (
            vec![("weir-delay-ms", "abc")],
            "header weir-delay-ms is not decimal milliseconds",
        ),
        (
            vec![("weir-delay-ms", "-5")],
            "header weir-delay-ms is not decimal milliseconds",
        ),
        (
            vec![("weir-delay-ms", "1"), ("weir-deliver-at-ms", "2")],
            "a record cannot carry both weir-deliver-at-ms and weir-delay-ms",
        ),
        (
            vec![("weir-ttl-ms", "x")],
            "header weir-ttl-ms is not decimal milliseconds",
        ),
    ] {
        let r = client
            .call(weir_client::requests::produce(
                "plain",
                0,
                bad_batch(&headers),
                -1,
                5_000,
            ))
            .unwrap();
        let p = &r.responses[0].partition_responses[0];
        assert_eq!(p.error_code, 87, "{headers:?}");
        assert_eq!(
            p.error_message.as_ref().map(|m| m.to_string()).as_deref(),
            Some(message)
        );
    }
    let (end, _) = client.list_offset("plain", 0, -1).unwrap();
    assert_eq!(end, 0, "nothing stored");
    std::thread::sleep(Duration::from_millis(300));
    let (end, _) = client.list_offset("plain", 0, -1).unwrap();
    assert_eq!(end, 0, "nothing fired later either");
}

/// A good delayed record, then one with `headers`.
fn bad_batch(headers: &[(&str, &str)]) -> bytes::Bytes {
    let mut b = weir_protocol::builder::BatchBuilder::new(weir_protocol::record_batch::Compression::None);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    b.push(
        now,
        None,
        Some(b"good"),
        &[(b"weir-delay-ms".as_slice(), Some(b"10".as_slice()))],
    );
    let hs: Vec<(&[u8], Option<&[u8]>)> = headers
        .iter()
        .map(|(k, v)| (k.as_bytes(), Some(v.as_bytes())))
        .collect();
    b.push(now, None, Some(b"bad"), &hs);
    let mut out = bytes::BytesMut::new();
    b.finish_into(&mut out).unwrap();
    out.freeze()
}

/// Sum over shards of the metric `name` on the metrics page at `addr`.
fn metric(addr: &str, name: &str) -> f64 {
    common::metric_sum(addr, name, "")
}

/// `n` records each delayed by `delay_ms`.
fn delayed_batch(n: usize, delay_ms: &str) -> bytes::Bytes {
    let mut b = weir_protocol::builder::BatchBuilder::new(weir_protocol::record_batch::Compression::None);
    let now = now_ms() as i64;
    for i in 0..n {
        b.push(
            now,
            None,
            Some(format!("v{i}").as_bytes()),
            &[(b"weir-delay-ms".as_slice(), Some(delay_ms.as_bytes()))],
        );
    }
    let mut out = bytes::BytesMut::new();
    b.finish_into(&mut out).unwrap();
    out.freeze()
}

#[test]
fn a_full_timer_store_refuses_and_the_metrics_count_pending_fired_and_lateness() {
    let (broker, metrics) = broker_with_metrics(&["--shards", "1", "--timers-pending-max", "5"]);
    let late = LateBound::new(&metrics);
    let mut client = broker.client();
    client.create_topic("bounded", 1, &[]).unwrap();
    let produce = |client: &mut weir_client::blocking::Client, n: usize| {
        let r = client
            .call(weir_client::requests::produce(
                "bounded",
                0,
                delayed_batch(n, "1500"),
                -1,
                5_000,
            ))
            .unwrap();
        let p = &r.responses[0].partition_responses[0];
        (p.error_code, p.error_message.as_ref().map(|m| m.to_string()))
    };
    assert_eq!(produce(&mut client, 3), (0, None));
    let (code, message) = produce(&mut client, 3);
    assert_eq!(code, 44, "POLICY_VIOLATION past --timers-pending-max");
    assert!(
        message
            .as_deref()
            .unwrap_or("")
            .contains("--timers-pending-max 5"),
        "{message:?}"
    );
    assert_eq!(produce(&mut client, 2), (0, None), "a part that fits");
    assert_eq!(metric(&metrics, "weir_timers_pending"), 5.0);
    assert_eq!(metric(&metrics, "weir_timers_refused_total"), 1.0);
    assert_eq!(metric(&metrics, "weir_timers_fired_total"), 0.0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&metrics, "weir_timers_fired_total") < 5.0 {
        assert!(Instant::now() < deadline, "fired: {}", broker.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let (end, _) = client.list_offset("bounded", 0, -1).unwrap();
    assert_eq!(end, 5, "only the accepted records were delivered");
    assert_eq!(metric(&metrics, "weir_timers_pending"), 0.0);
    assert_eq!(metric(&metrics, "weir_timer_lateness_seconds_count"), 5.0);
    assert_eq!(metric(&metrics, &format!("{SYNC_WAIT}_count")), 5.0);
    // Every record was appended within LATE_MAX_MS of due, plus what the
    // broker says its FIRE sync cost (both to their histogram buckets).
    let page = common::metrics_page(&metrics);
    let allowed = late.ms();
    let name = "weir_timer_lateness_seconds";
    let lateness = bucket_bound_ms(&page, name);
    let allowed_bucket = buckets_ms(&page, name)
        .into_iter()
        .map(|(_, ms, _)| ms)
        .find(|ms| *ms >= allowed)
        .unwrap_or(f64::INFINITY);
    assert!(
        lateness <= allowed_bucket,
        "lateness up to {lateness} ms, allowed {allowed} ms: {page}"
    );
}

/// One record, key and value `key`, delivered at `at_ms`.
fn at_batch(key: &str, at_ms: i64) -> bytes::Bytes {
    let mut b = weir_protocol::builder::BatchBuilder::new(weir_protocol::record_batch::Compression::None);
    let at = at_ms.to_string();
    b.push(
        now_ms() as i64,
        Some(key.as_bytes()),
        Some(key.as_bytes()),
        &[(b"weir-deliver-at-ms".as_slice(), Some(at.as_bytes()))],
    );
    let mut out = bytes::BytesMut::new();
    b.finish_into(&mut out).unwrap();
    out.freeze()
}

/// The firing task prepares a partition's batches up to 200 ms before due; a
/// record produced later but due earlier must still come first.
#[test]
fn a_record_due_before_already_prepared_ones_still_fires_first() {
    let broker = Broker::start(&["--shards", "1"]);
    let mut client = broker.client();
    client.create_topic("reorder", 1, &[]).unwrap();
    let late_due = now_ms() as i64 + 1_500;
    client
        .produce("reorder", 0, at_batch("late", late_due), 1)
        .unwrap();
    // By now "late" is prepared (its FIRE written); add one due just before it.
    let wait = late_due - 120 - now_ms() as i64;
    std::thread::sleep(Duration::from_millis(wait.max(0) as u64));
    let early_due = late_due - 60;
    client
        .produce("reorder", 0, at_batch("early", early_due), 1)
        .unwrap();
    if now_ms() >= early_due as f64 - 10.0 {
        eprintln!("skipped: the produce of \"early\" came too late to test the order");
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.list_offset("reorder", 0, -1).unwrap().0 < 2 {
        assert!(Instant::now() < deadline, "{}", broker.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let (_, records) = client.fetch("reorder", 0, 0, 1 << 20, 0).unwrap();
    let keys: Vec<String> = common::decode(&records).into_iter().map(|r| r.1).collect();
    assert_eq!(keys, vec!["early", "late"], "due order");
}
