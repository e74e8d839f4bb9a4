//! The metrics endpoint (`--metrics-listen`) against a real 2-shard broker in
//! zero-hop mode: `/health`, scrapes during a weir-loadgen run, the broker's
//! counters against the load generator's own totals (within 1%), consumer lag
//! against committed offsets, and a hostile HTTP client that must not stop it.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::Broker;
use serde_json::Value;
use weir_protocol::record_batch::Compression;

/// A broker with its metrics endpoint on the spare port of its reserved range.
fn broker() -> (Broker, String) {
    broker_with_shards("2")
}

fn broker_with_shards(shards: &str) -> (Broker, String) {
    let mut b = Broker::new_stopped(&["--shards", shards]);
    let metrics = format!("127.0.0.1:{}", b.port + 3);
    b.extra.extend(["--metrics-listen".to_string(), metrics.clone()]);
    b.start_again();
    (b, metrics)
}

/// One HTTP exchange: (status line, body).
fn http(addr: &str, request: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).expect("metrics endpoint accepts");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).expect("a whole response");
    let (head, body) = all.split_once("\r\n\r\n").expect("a head and a body");
    (head.lines().next().unwrap_or("").to_string(), body.to_string())
}

fn get(addr: &str, path: &str) -> (String, String) {
    http(addr, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"))
}

/// Samples of a scrape: metric name -> [(labels, value)].
type Samples = BTreeMap<String, Vec<(String, f64)>>;

fn scrape(addr: &str) -> Samples {
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    let mut out = Samples::new();
    for line in body.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (series, value) = line.rsplit_once(' ').expect("name and value");
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("a number in {line:?}"));
        out.entry(name.to_string())
            .or_default()
            .push((labels.to_string(), value));
    }
    out
}

/// The sum of `name`'s samples whose labels contain every one of `with`.
fn sum(s: &Samples, name: &str, with: &[&str]) -> f64 {
    s.get(name)
        .map(|v| {
            v.iter()
                .filter(|(l, _)| with.iter().all(|w| l.contains(w)))
                .map(|(_, v)| v)
                .sum()
        })
        .unwrap_or(0.0)
}

fn loadgen_bin() -> PathBuf {
    // Built by `cargo test --workspace` beside this test's own binaries.
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_weir")).with_file_name("weir-loadgen");
    if !bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "weir-loadgen", "--bin", "weir-loadgen"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building weir-loadgen failed");
    }
    bin
}

fn loadgen(bootstrap: &str, args: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let out = Command::new(loadgen_bin())
        .args(args)
        .args(["--bootstrap", bootstrap, "--quiet", "--report-json"])
        .arg(&json)
        .output()
        .expect("weir-loadgen runs");
    assert!(
        out.status.success(),
        "loadgen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap()
}

fn total(report: &Value, field: &str) -> f64 {
    report
        .pointer(&format!("/totals/all/{field}"))
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("totals.all.{field} in the report")) as f64
}

fn assert_within_1pct(what: &str, broker: f64, loadgen: f64) {
    assert!(loadgen > 0.0, "{what}: the load generator counted nothing");
    let off = (broker - loadgen).abs() / loadgen;
    assert!(
        off <= 0.01,
        "{what}: broker {broker} vs loadgen {loadgen} ({:.3}% apart)",
        off * 100.0
    );
}

#[test]
fn given_a_loadgen_run_when_scraping_should_agree_with_its_totals_within_one_percent() {
    let (b, metrics) = broker();
    assert_eq!(
        get(&metrics, "/health"),
        ("HTTP/1.1 200 OK".into(), "ready\n".into())
    );
    // Scrape all through the run: each must answer, with the shards' counters.
    let (produced, consumed) = run_while_scraping(&b, &metrics);
    let s = scrape(&metrics);
    let records_in = sum(&s, "weir_records_in_total", &[]);
    assert_within_1pct("records in", records_in, total(&produced, "acked_records"));
    assert_within_1pct(
        "bytes in",
        sum(&s, "weir_bytes_in_total", &[]),
        total(&produced, "acked_batch_bytes"),
    );
    assert_within_1pct(
        "produce requests",
        sum(&s, "weir_requests_total", &["api=\"Produce\""]),
        total(&produced, "produce_requests"),
    );
    assert_within_1pct(
        "records out",
        sum(&s, "weir_records_out_total", &[]),
        total(&consumed, "consumed_records"),
    );
    assert_within_1pct(
        "bytes out",
        sum(&s, "weir_bytes_out_total", &[]),
        total(&consumed, "consumed_batch_bytes"),
    );
    check_partitions(&s, records_in);
    // A deleted topic's series go, read counters (kept by name on every shard) included.
    b.client().delete_topic("metered").expect("delete");
    let gone = scrape(&metrics);
    for name in [
        "weir_partition_bytes_out_total",
        "weir_partition_records_in_total",
        "weir_high_watermark",
    ] {
        assert_eq!(
            sum(&gone, name, &["topic=\"metered\""]),
            0.0,
            "{name} after delete"
        );
    }
}

/// A produce then a consume run of weir-loadgen, with a scrape every 50 ms
/// throughout: (produce report, consume report).
fn run_while_scraping(b: &Broker, metrics: &str) -> (Value, Value) {
    let (stop, scrapes) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let scraper = {
        let (stop, scrapes, metrics) = (stop.clone(), scrapes.clone(), metrics.to_string());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let s = scrape(&metrics);
                assert_eq!(s["weir_shard_ready"].len(), 2, "both shards in every scrape");
                scrapes.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let produced = loadgen(
        &b.addr(),
        &[
            "produce",
            "--topic",
            "metered",
            "--create",
            "--partitions",
            "4",
            "--records",
            "200000",
            "--record-size",
            "100",
            "--keys",
            "uniform:1000",
            "--threads",
            "1",
        ],
    );
    let consumed = loadgen(
        &b.addr(),
        &[
            "consume",
            "--topic",
            "metered",
            "--to-end",
            "--threads",
            "1",
            "--duration",
            "60s",
        ],
    );
    stop.store(true, Ordering::Relaxed);
    scraper.join().expect("every scrape during the run answered");
    assert!(scrapes.load(Ordering::Relaxed) >= 2, "scraped during the run");

    (produced, consumed)
}

fn check_partitions(s: &Samples, records_in: f64) {
    // Per partition adds up to per shard, and the log holds what came in.
    assert_eq!(
        sum(s, "weir_partition_records_in_total", &["topic=\"metered\""]),
        records_in
    );
    assert_eq!(sum(s, "weir_high_watermark", &["topic=\"metered\""]), records_in);
    assert_eq!(
        sum(s, "weir_log_size_bytes", &["topic=\"metered\""]),
        sum(s, "weir_bytes_in_total", &[])
    );
    assert_eq!(
        s["weir_high_watermark"].len(),
        4,
        "one per partition: {:?}",
        s["weir_high_watermark"]
    );
    for p in 0..4 {
        let label = format!("partition=\"{p}\"");
        assert!(
            sum(s, "weir_partition_records_in_total", &[&label]) > 0.0,
            "keys spread to partition {p}"
        );
    }
    let latency_count = sum(s, "weir_request_latency_seconds_count", &["api=\"Produce\""]);
    assert_eq!(latency_count, sum(s, "weir_requests_total", &["api=\"Produce\""]));
    assert!(sum(s, "weir_log_reads_total", &[]) > 0.0);
    assert_eq!(
        sum(s, "weir_request_errors_total", &[]),
        0.0,
        "no errors in a clean run"
    );
}

/// A long-polling Fetch of `partition` at `offset` (4 s at most) in a thread:
/// (records' bytes, how long it waited).
fn long_poll(b: &Broker, partition: i32, offset: i64) -> std::thread::JoinHandle<(usize, Duration)> {
    let mut c = b.client();
    std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let (_, records) = c
            .fetch("woken", partition, offset, 1 << 20, 4_000)
            .expect("fetch");
        (records.len(), started.elapsed())
    })
}

#[test]
fn given_fetches_waiting_on_two_partitions_when_one_grows_should_wake_only_its_fetch() {
    let (b, metrics) = broker_with_shards("1");
    let mut c = b.client();
    c.create_topic("woken", 2, &[]).expect("topic");
    let wakeups = || sum(&scrape(&metrics), "weir_fetch_wakeups_total", &[]);
    // A fetch waits at the end of partition 1 while partition 0 (same shard) grows.
    let idle = long_poll(&b, 1, 0);
    std::thread::sleep(Duration::from_millis(500));
    for first in 0..30 {
        c.produce("woken", 0, common::batch(first, 1, Compression::None), 1)
            .expect("produce");
    }
    assert_eq!(
        wakeups(),
        0.0,
        "appends to partition 0 woke a fetch of partition 1"
    );
    // A fetch waiting at the end of partition 0 is woken by its append, at once.
    let busy = long_poll(&b, 0, 30);
    std::thread::sleep(Duration::from_millis(500));
    c.produce("woken", 0, common::batch(30, 1, Compression::None), 1)
        .expect("produce");
    let (bytes, waited) = busy.join().expect("fetch of partition 0");
    assert!(bytes > 0, "the new record");
    assert!(
        waited < Duration::from_secs(3),
        "woken by the append, not the timeout: {waited:?}"
    );
    assert_eq!(wakeups(), 1.0);
    let (bytes, waited) = idle.join().expect("fetch of partition 1");
    assert_eq!(bytes, 0, "nothing in partition 1");
    assert!(
        waited >= Duration::from_millis(3_500),
        "answered at max_wait: {waited:?}"
    );
}

#[test]
fn given_committed_offsets_when_scraping_should_show_each_groups_lag_per_partition() {
    let (b, metrics) = broker();
    let mut c = b.client();
    c.create_topic("lagged", 2, &[]).expect("topic");
    for p in 0..2 {
        for first in [0, 10] {
            c.produce("lagged", p, common::batch(first, 10, Compression::None), 1)
                .expect("produce");
        }
    }
    c.commit_offsets("reader", -1, "", &[("lagged", 0, 5), ("lagged", 1, 20)])
        .expect("admin commit of an empty group");
    let s = scrape(&metrics);
    let lag = |p: i32| {
        sum(
            &s,
            "weir_consumer_lag",
            &["group=\"reader\"", &format!("partition=\"{p}\"")],
        )
    };
    assert_eq!((lag(0), lag(1)), (15.0, 0.0), "{:?}", s.get("weir_consumer_lag"));
    assert_eq!(
        sum(
            &s,
            "weir_consumer_committed_offset",
            &["group=\"reader\"", "partition=\"0\""]
        ),
        5.0
    );
    // A produce to a partition that does not exist is counted by its error code.
    let _ = c.produce("lagged", 7, common::batch(0, 1, Compression::None), 1);
    let s = scrape(&metrics);
    assert_eq!(
        sum(
            &s,
            "weir_request_errors_total",
            &["api=\"Produce\"", "code=\"3\""]
        ),
        1.0,
        "{:?}",
        s.get("weir_request_errors_total")
    );
}

#[test]
fn given_hostile_http_clients_when_scraping_should_answer_errors_and_keep_serving() {
    let (b, metrics) = broker();
    assert_eq!(
        http(&metrics, "POST /metrics HTTP/1.1\r\n\r\n").0,
        "HTTP/1.1 405 Method Not Allowed"
    );
    assert_eq!(get(&metrics, "/nope").0, "HTTP/1.1 404 Not Found");
    // A head past 8 KiB: the connection is dropped, with no answer.
    let mut big = TcpStream::connect(&metrics).unwrap();
    let _ = big.write_all(format!("GET /metrics HTTP/1.1\r\nX: {}\r\n", "a".repeat(20_000)).as_bytes());
    big.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    let _ = big.read_to_end(&mut buf);
    assert!(buf.is_empty(), "no answer to an oversized head");
    // Garbage, and a client that connects and says nothing, while a scrape goes on.
    let mut junk = TcpStream::connect(&metrics).unwrap();
    junk.write_all(&[0xff; 300]).unwrap();
    let _silent = TcpStream::connect(&metrics).unwrap();
    assert!(sum(&scrape(&metrics), "weir_shard_ready", &[]) == 2.0);
    let mut c = b.client();
    c.create_topic("still", 1, &[])
        .expect("the broker keeps serving Kafka clients");
    assert!(
        b.log().contains("metrics endpoint: request dropped"),
        "a log line for the dropped request"
    );
}

/// docs/grafana/weir-dashboard.json must only query metrics the broker exports.
#[test]
fn given_the_grafana_dashboard_when_compared_with_a_scrape_should_query_only_exported_metrics() {
    let (_b, metrics) = broker();
    let (_, body) = get(&metrics, "/metrics");
    let families: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/grafana/weir-dashboard.json");
    let dashboard: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let exprs: Vec<&str> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap())
        .map(|t| t["expr"].as_str().unwrap())
        .collect();
    assert!(exprs.len() >= 14, "a panel per concern");
    let mut used = 0;
    for expr in exprs {
        for name in expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("weir_"))
        {
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| families.contains(f)))
                .unwrap_or(name);
            assert!(
                families.contains(&family),
                "the dashboard queries {name}, which /metrics does not export"
            );
            used += 1;
        }
    }
    assert!(used >= 20, "{used} metric references");
}
