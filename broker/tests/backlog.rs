//! The backlog bound (`backlog.bytes.max`, `backlog.records.max`, `backlog.policy`;
//! docs/peak-shaving.md) against a 2-shard broker, so groups and partitions often live on
//! different shards. `reject`: confluent-kafka's and kafkajs's default producers get
//! POLICY_VIOLATION at once, not after retries; nothing past the bound is stored; a commit by
//! the slowest group frees room, and the floor survives a restart. `throttle`: every record is
//! stored, in order, Produce answers carry throttle_time_ms (checked on the wire) and both
//! default producers slow down measurably next to an unbounded topic in the same run. The
//! counters weir_backlog_rejections_total / weir_backlog_throttled_total count refusals.

mod common;

use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::Broker;
use serde_json::Value;
use weir_client::blocking::Client;
use weir_client::requests;
use weir_protocol::builder::BatchBuilder;
use weir_protocol::record_batch::Compression;

const CLIENTS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients");
const MIB: u64 = 1024 * 1024;
/// Rate measurements run one at a time: two side by side would share the two cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn broker() -> Broker {
    Broker::start(&["--shards", "2"])
}

fn py(broker: &Broker, args: &[&str]) -> Value {
    let out = Command::new(common::venv_python("confluent_kafka"))
        .arg(format!("{CLIENTS_DIR}/backlog_client.py"))
        .args(args)
        .args(["--bootstrap", &broker.addr()])
        .output()
        .expect("python runs");
    broker.json_from(&format!("backlog_client.py {args:?}"), &out)
}

fn kafkajs(broker: &Broker, topic: &str, count: usize, size: usize, per_send: usize) -> Value {
    let out = common::kafkajs_script("backlog_client.js")
        .args([broker.addr(), topic.to_string()])
        .args([count.to_string(), size.to_string(), per_send.to_string()])
        .output()
        .expect("node runs");
    broker.json_from("backlog_client.js", &out)
}

fn create(c: &mut Client, topic: &str, configs: &[(&str, &str)]) {
    c.create_topic(topic, 1, configs).unwrap();
}

fn log_end(c: &mut Client, topic: &str) -> i64 {
    c.list_offset(topic, 0, -1).unwrap().0
}

/// One batch of `count` records of `size`-byte values.
fn blob_batch(count: usize, size: usize) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None);
    let value = vec![b'v'; size];
    for _ in 0..count {
        b.push(0, None, Some(&value), &[]);
    }
    let mut out = BytesMut::new();
    b.finish_into(&mut out).unwrap();
    out.freeze()
}

/// Produce on the wire: (error code, error message, throttle_time_ms).
fn produce(c: &mut Client, topic: &str, batch: Bytes) -> (i16, Option<String>, i32) {
    let r = c.call(requests::produce(topic, 0, batch, -1, 30_000)).unwrap();
    let p = &r.responses[0].partition_responses[0];
    (
        p.error_code,
        p.error_message.as_ref().map(ToString::to_string),
        r.throttle_time_ms,
    )
}

/// Every stored record's offset grows with its send sequence: order kept, no duplicate.
fn assert_in_order(stored: &Value) {
    let pairs: Vec<(i64, i64)> = stored
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_i64().unwrap(), p[1].as_i64().unwrap()))
        .collect();
    let mut sorted = pairs.clone();
    sorted.sort_unstable();
    for w in sorted.windows(2) {
        assert!(w[1].1 > w[0].1, "records stored out of send order: {w:?}");
    }
}

#[test]
fn given_a_reject_bound_when_nothing_reads_should_refuse_past_it_then_take_again_after_a_commit_and_a_restart(
) {
    let mut broker = broker();
    let mut c = broker.client();
    let bound = MIB.to_string();
    create(
        &mut c,
        "buffer",
        &[("backlog.bytes.max", &bound), ("backlog.policy", "reject")],
    );
    // confluent-kafka, default config: 4 MiB offered, 1 MiB allowed, no group yet.
    let r = py(
        &broker,
        &[
            "produce", "--topic", "buffer", "--count", "4096", "--size", "1024",
        ],
    );
    let (stored, failed) = (r["stored"].as_u64().unwrap(), r["failed"].as_u64().unwrap());
    assert_eq!(stored + failed, 4096, "every record gets a delivery report: {r}");
    assert!(
        stored > 512 && stored * 1024 <= MIB,
        "stored {stored} KiB of a 1 MiB bound: {r}"
    );
    assert_eq!(r["errors"][0]["name"], "POLICY_VIOLATION", "{r}");
    assert_eq!(r["errors"][0]["retriable"], false, "{r}");
    // Surfaced at once: librdkafka's message.timeout.ms default is 300 s.
    assert!(r["max_error_latency_s"].as_f64().unwrap() < 5.0, "{r}");
    assert_in_order(&r["stored_seq_offsets"]);
    let end = log_end(&mut c, "buffer");
    assert_eq!(end as u64, stored, "the log holds exactly what was acknowledged");
    // How close to the bound that left the log depends on how librdkafka cut its batches
    // (a refused 1 MB batch can leave a wide gap): top it up with small batches until one
    // is refused, so the log sits within one of them of the bound.
    let topped_up = (0..200).find(|_| {
        let (code, message, _) = produce(&mut c, "buffer", blob_batch(10, 1024));
        assert!(code == 0 || code == 44, "{code} {message:?}");
        code == 44
    });
    assert!(topped_up.is_some(), "never refused");
    let end = log_end(&mut c, "buffer");
    // On the wire: POLICY_VIOLATION with the numbers in error_message, nothing appended.
    let (code, message, _) = produce(&mut c, "buffer", blob_batch(100, 1024));
    assert_eq!(code, 44, "{message:?}");
    let message = message.unwrap();
    assert!(
        message.contains("backlog of topic buffer partition 0")
            && message.contains("backlog.bytes.max 1048576"),
        "{message}"
    );
    assert_eq!(log_end(&mut c, "buffer"), end);
    // The slowest group decides: one group caught up and one at offset 1 still leave it full.
    c.commit_offsets("fast", -1, "", &[("buffer", 0, end)]).unwrap();
    c.commit_offsets("slow", -1, "", &[("buffer", 0, 1)]).unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(produce(&mut c, "buffer", blob_batch(100, 1024)).0, 44);
    check_cli(&broker, end);
    c.commit_offsets("slow", -1, "", &[("buffer", 0, end)]).unwrap();
    wait_accepted(&mut c, "buffer", Duration::from_secs(3));
    let r = py(
        &broker,
        &["produce", "--topic", "buffer", "--count", "256", "--size", "1024"],
    );
    assert_eq!(
        (r["stored"].as_u64(), r["failed"].as_u64()),
        (Some(256), Some(0)),
        "{r}"
    );
    // The whole log is now past the bound: only the groups' durable offsets, recomputed
    // at start-up, let the next batch in.
    assert!(log_end(&mut c, "buffer") > 1100, "over 1.1 MiB of 1 KiB records");
    broker.restart();
    let mut c = broker.client();
    wait_accepted(&mut c, "buffer", Duration::from_secs(3));
}

/// `weir topic backlog` names the slowest group; `weir group describe` shows the bytes.
fn check_cli(broker: &Broker, end: i64) {
    let table = broker.weir_ok(&["topic", "backlog", "buffer"]);
    let row = table
        .lines()
        .find(|l| l.starts_with("0 "))
        .unwrap_or_else(|| panic!("{table}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    let records = (end - 1).to_string();
    assert_eq!(
        cells[..6],
        ["0", "0", &end.to_string(), "slow", "1", &records],
        "{table}"
    );
    let bytes: u64 = cells[6].trim_start_matches('~').parse().unwrap();
    assert!(bytes > (end as u64 - 1) * 1024 && bytes < MIB + 65_536, "{table}");
    assert!(
        table.contains("backlog.bytes.max 1048576") && table.contains("backlog.policy reject"),
        "{table}"
    );
    let fast = broker.weir_ok(&["group", "describe", "fast"]);
    assert!(fast.contains("BACKLOG-BYTES") && fast.contains(" ~0 "), "{fast}");
}

/// A 100 KiB batch is accepted within `within` (the floors refresh every 250 ms).
fn wait_accepted(c: &mut Client, topic: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let (code, message, _) = produce(c, topic, blob_batch(100, 1024));
        if code == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "still refused: {code} {message:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A 2-shard broker with its metrics endpoint on the spare port of its range.
fn broker_with_metrics() -> (Broker, String) {
    let mut b = Broker::new_stopped(&["--shards", "2"]);
    let metrics = format!("127.0.0.1:{}", b.port + 3);
    b.extra.extend(["--metrics-listen".to_string(), metrics.clone()]);
    b.start_again();
    (b, metrics)
}

/// The sum over shards of counter `name` on the metrics page at `addr`.
fn counter(addr: &str, name: &str) -> f64 {
    common::metric_sum(addr, name, "")
}

#[test]
fn given_a_records_bound_should_refuse_the_batch_that_would_pass_it() {
    let (broker, metrics) = broker_with_metrics();
    let mut c = broker.client();
    create(
        &mut c,
        "counted",
        &[("backlog.records.max", "100"), ("backlog.policy", "reject")],
    );
    for _ in 0..3 {
        assert_eq!(produce(&mut c, "counted", blob_batch(30, 10)).0, 0);
    }
    let (code, message, _) = produce(&mut c, "counted", blob_batch(30, 10));
    assert_eq!(code, 44);
    assert!(message.unwrap().contains("over backlog.records.max 100"));
    assert_eq!(
        produce(&mut c, "counted", blob_batch(10, 10)).0,
        0,
        "a batch that fits"
    );
    assert_eq!(log_end(&mut c, "counted"), 100);
    assert_eq!(counter(&metrics, "weir_backlog_rejections_total"), 1.0);
    assert_eq!(counter(&metrics, "weir_backlog_throttled_total"), 0.0);
}

#[test]
fn given_a_throttle_bound_should_store_everything_and_answer_with_a_growing_throttle_time() {
    let broker = broker();
    let mut c = broker.client();
    create(
        &mut c,
        "slowed",
        &[("backlog.bytes.max", "65536"), ("backlog.policy", "throttle")],
    );
    let answers: Vec<_> = (0..4)
        .map(|_| {
            let started = Instant::now();
            let (code, _, throttle) = produce(&mut c, "slowed", blob_batch(40, 1024));
            (code, throttle, started.elapsed())
        })
        .collect();
    assert!(answers.iter().all(|a| a.0 == 0), "{answers:?}");
    assert_eq!(answers[0].1, 0, "within the bound: {answers:?}");
    assert!(answers[1].1 >= 100 && answers[2].1 > answers[1].1, "{answers:?}");
    assert!(
        answers[3].1 > answers[2].1 && answers[3].1 <= 5_000,
        "{answers:?}"
    );
    // KIP-219: the broker muted the connection, so each next answer came that much later.
    for w in answers.windows(2) {
        assert!(
            w[1].2 >= Duration::from_millis(w[0].1 as u64 * 9 / 10),
            "{answers:?}"
        );
    }
    assert_eq!(log_end(&mut c, "slowed"), 160);
}

#[test]
fn given_a_reject_bound_kafkajs_should_reject_the_send_at_once() {
    let broker = broker();
    let mut c = broker.client();
    create(
        &mut c,
        "jsbuffer",
        &[("backlog.bytes.max", "262144"), ("backlog.policy", "reject")],
    );
    let r = kafkajs(&broker, "jsbuffer", 1024, 1024, 64);
    let sent = r["sent"].as_u64().unwrap();
    assert!(sent > 0 && sent * 1024 <= 262_144, "{r}");
    assert_eq!(r["error"]["type"], "POLICY_VIOLATION", "{r}");
    assert_eq!(r["error"]["retriable"], false, "{r}");
    assert!(
        r["error"]["latency_ms"].as_u64().unwrap() < 5_000,
        "no retries: {r}"
    );
    assert_eq!(log_end(&mut c, "jsbuffer") as u64, sent);
}

#[test]
fn given_a_throttle_bound_default_producers_should_slow_down_and_lose_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let broker = broker();
    let mut c = broker.client();
    create(&mut c, "open", &[]);
    create(&mut c, "open-js", &[]);
    for t in ["shaved", "shaved-js"] {
        create(
            &mut c,
            t,
            &[("backlog.bytes.max", "131072"), ("backlog.policy", "throttle")],
        );
    }
    let args = |t: &'static str| ["produce", "--topic", t, "--count", "4096", "--size", "1024"];
    let open = py(&broker, &args("open"));
    let shaved = py(&broker, &args("shaved"));
    assert_eq!(
        (shaved["stored"].as_u64(), shaved["failed"].as_u64()),
        (Some(4096), Some(0)),
        "{shaved}"
    );
    assert!(
        shaved["throttle_events"].as_u64().unwrap() > 0,
        "librdkafka saw throttle_time_ms: {shaved}"
    );
    let (t_open, t_shaved) = (
        open["elapsed_s"].as_f64().unwrap(),
        shaved["elapsed_s"].as_f64().unwrap(),
    );
    eprintln!("confluent-kafka 4 MiB: unbounded {t_open:.2} s, throttled {t_shaved:.2} s");
    assert!(
        t_shaved >= 1.0 && t_shaved >= 3.0 * t_open,
        "{t_open} vs {t_shaved}"
    );
    assert_in_order(&shaved["stored_seq_offsets"]);
    let read = py(&broker, &["consume", "--topic", "shaved", "--count", "4096"]);
    let seqs: Vec<i64> = read["seqs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (0..4096).collect::<Vec<_>>(), "read back in send order");
    // kafkajs, default producer: six awaited sends of 64 KiB, four past a 128 KiB bound.
    let open = kafkajs(&broker, "open-js", 384, 1024, 64);
    let shaved = kafkajs(&broker, "shaved-js", 384, 1024, 64);
    assert_eq!(shaved["error"], Value::Null, "{shaved}");
    assert_eq!(shaved["sent"], 384);
    let (t_open, t_shaved) = (
        open["elapsed_ms"].as_u64().unwrap(),
        shaved["elapsed_ms"].as_u64().unwrap(),
    );
    eprintln!("kafkajs 384 KiB: unbounded {t_open} ms, throttled {t_shaved} ms");
    assert!(
        t_shaved >= 1_000 && t_shaved >= 3 * t_open,
        "{t_open} vs {t_shaved}"
    );
    assert_eq!(log_end(&mut c, "shaved-js"), 384);
}
