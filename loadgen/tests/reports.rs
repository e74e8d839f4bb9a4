//! Reports a user can trust: payload and wire bytes against a null broker that
//! counts the wire bytes itself (uncompressed and lz4, produce and consume),
//! the consume ceiling's served batches, a run ended by SIGTERM that still
//! writes its (interrupted) report, a run whose broker dies that still
//! writes its (failed) report, and `compare` over two reports.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{dir, null_broker_with, output_within, run_loadgen, u64_at, BIN, RUN_DEADLINE};
use weir_loadgen::null_broker::{NullBroker, NullBrokerConfig};

fn broker(store: bool, serve_fetch_bytes: usize) -> NullBroker {
    null_broker_with(NullBrokerConfig {
        listen: "127.0.0.1:0".to_string(),
        stall_ms: 0,
        stall_every_ms: 0,
        default_partitions: 2,
        auto_topics: true,
        api_versions_max: 4,
        produce_error_code: 0,
        produce_error_count: 0,
        store,
        reorder_every: 0,
        serve_fetch_bytes,
    })
}

fn f64_at(report: &serde_json::Value, pointer: &str) -> f64 {
    report
        .pointer(pointer)
        .and_then(serde_json::Value::as_f64)
        .unwrap_or_else(|| panic!("report lacks {pointer}"))
}

const RECORDS: u64 = 4_000;
const RECORD_BYTES: u64 = 500;

/// Produce RECORDS records of RECORD_BYTES to a storing null broker, then
/// consume them all back; returns (broker's wire bytes, produce report,
/// consume report).
fn produce_and_consume(compression: &str, tmp: &Path) -> (u64, serde_json::Value, serde_json::Value) {
    let broker = broker(true, 0);
    let bootstrap = broker.addr().to_string();
    let (records, size) = (RECORDS.to_string(), RECORD_BYTES.to_string());
    let produce = [
        "produce",
        "--topic",
        "units",
        "--records",
        &records,
        "--record-size",
        &size,
        "--compression",
        compression,
        "--batch-bytes",
        "32768",
    ];
    let (out, produced) = run_loadgen(&bootstrap, &produce, tmp);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let consume = ["consume", "--topic", "units", "--from", "earliest", "--to-end"];
    let (out, consumed) = run_loadgen(&bootstrap, &consume, tmp);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let wire = broker.stats().acked_batch_bytes.load(Ordering::Relaxed);
    (
        wire,
        produced.expect("produce report"),
        consumed.expect("consume report"),
    )
}

/// Payload is exactly records x size, wire exactly what the broker counted;
/// the rates are those bytes over the report's own seconds.
fn check_units(wire: u64, produced: &serde_json::Value, consumed: &serde_json::Value) -> (f64, f64) {
    let payload = RECORDS * RECORD_BYTES;
    assert_eq!(u64_at(produced, "/totals/all/acked_payload_bytes"), payload);
    assert_eq!(u64_at(produced, "/totals/all/acked_batch_bytes"), wire);
    assert_eq!(u64_at(consumed, "/totals/all/consumed_records"), RECORDS);
    assert_eq!(u64_at(consumed, "/totals/all/consumed_payload_bytes"), payload);
    assert_eq!(u64_at(consumed, "/totals/all/consumed_batch_bytes"), wire);
    for (report, side) in [(produced, "produce"), (consumed, "consume")] {
        let secs = f64_at(report, &format!("/throughput/{side}_seconds"));
        let rate = |f: &str| f64_at(report, &format!("/throughput/{side}/{f}")) * secs;
        let close = |a: f64, b: f64| (a - b).abs() <= b * 1e-6;
        assert!(
            close(rate("payload_mb_per_s") * 1e6, payload as f64),
            "{side} payload rate"
        );
        assert!(
            close(rate("wire_mb_per_s") * 1e6, wire as f64),
            "{side} wire rate"
        );
        assert!(
            close(rate("records_per_s"), RECORDS as f64),
            "{side} records rate"
        );
    }
    (
        f64_at(produced, "/throughput/produce/compression_ratio"),
        f64_at(consumed, "/throughput/consume/compression_ratio"),
    )
}

#[test]
fn given_uncompressed_and_lz4_runs_when_reporting_should_count_payload_and_wire_bytes_exactly() {
    let tmp = dir();
    let (wire, produced, consumed) = produce_and_consume("none", tmp.path());
    assert!(
        wire > RECORDS * RECORD_BYTES,
        "uncompressed batches carry headers too"
    );
    let (p, c) = check_units(wire, &produced, &consumed);
    assert!(
        p < 1.0 && p > 0.9 && (p - c).abs() < 1e-9,
        "no compression: {p} {c}"
    );
    let (lz4_wire, produced, consumed) = produce_and_consume("lz4", tmp.path());
    let (p, c) = check_units(lz4_wire, &produced, &consumed);
    // The payload repeats a template per producer: lz4 shrinks it a lot.
    assert!(
        lz4_wire * 5 < wire,
        "lz4 sent {lz4_wire} bytes, uncompressed {wire}"
    );
    assert!(p > 5.0 && (p - c).abs() < 1e-9, "lz4 ratio {p} {c}");
    let table = String::from_utf8(std::fs::read(tmp.path().join("report.html")).expect("html report"))
        .expect("utf-8");
    assert!(table.contains("payload MB/s") && table.contains("wire MB/s"));
}

#[test]
fn given_a_broker_serving_prebuilt_batches_when_consuming_should_count_every_served_record() {
    let broker = broker(false, 256 << 10);
    let tmp = dir();
    let args = [
        "consume",
        "--topic",
        "ceiling",
        "--consumers",
        "2",
        "--duration",
        "1s",
    ];
    let (out, report) = run_loadgen(&broker.addr().to_string(), &args, tmp.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = report.expect("a report");
    let records = u64_at(&report, "/totals/all/consumed_records");
    assert!(records > 1_000, "only {records} records consumed");
    let record_bytes = weir_loadgen::null_broker::SERVED_RECORD_BYTES as u64;
    assert_eq!(
        u64_at(&report, "/totals/all/consumed_payload_bytes"),
        records * record_bytes
    );
    assert!(u64_at(&report, "/totals/all/consumed_batch_bytes") > records * record_bytes);
}

#[test]
fn given_a_log_too_long_to_read_when_consuming_to_the_end_should_stop_at_the_duration() {
    // The served log's end offset is out of reach: only --duration ends the run.
    let broker = broker(false, 256 << 10);
    let tmp = dir();
    let args = ["consume", "--topic", "endless", "--to-end", "--duration", "1s"];
    let started = Instant::now();
    let (out, report) = run_loadgen(&broker.addr().to_string(), &args, tmp.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "--duration capped --to-end"
    );
    let report = report.expect("a report");
    assert!(u64_at(&report, "/totals/all/consumed_records") > 0);
    assert!(f64_at(&report, "/throughput/measured_seconds") < 3.0);
}

#[test]
fn given_sigterm_in_the_middle_when_running_should_write_an_interrupted_report_of_what_it_measured() {
    let broker = broker(false, 0);
    let tmp = dir();
    let json = tmp.path().join("report.json");
    let mut child = Command::new(BIN)
        .args([
            "produce",
            "--topic",
            "sig",
            "--rate",
            "20000",
            "--duration",
            "60s",
            "--quiet",
        ])
        .args(["--bootstrap", &broker.addr().to_string()])
        .arg("--report-json")
        .arg(&json)
        .spawn()
        .expect("the loadgen runs");
    // Mid-run: once the broker has acknowledged some records (however
    // slowly a loaded machine starts the run).
    let stats = broker.stats();
    let waiting = Instant::now();
    let before_signal = loop {
        let acked = stats.acked_records.load(Ordering::Relaxed);
        if acked >= 10_000 {
            break acked;
        }
        assert!(
            waiting.elapsed() < Duration::from_secs(40),
            "the run never got going"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let started = Instant::now();
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "SIGTERM did not end the run"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        status.code(),
        Some(128 + libc::SIGTERM),
        "exit status of a run ended by SIGTERM"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON report exists"))
            .expect("parses");
    assert_eq!(report["interrupted"], true);
    assert_eq!(report["interrupted_by"], "SIGTERM");
    let acked = u64_at(&report, "/totals/all/acked_records");
    assert_eq!(acked, broker.stats().acked_records.load(Ordering::Relaxed));
    assert!(
        acked >= before_signal,
        "what was measured before the signal is in the report"
    );
    assert!(
        f64_at(&report, "/throughput/measured_seconds") < 50.0,
        "the 60 s run was cut short"
    );
}

/// Wait for `child` to exit, at most `limit`.
fn exit_within(child: &mut std::process::Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(started.elapsed() < limit, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn given_a_broker_killed_in_the_middle_when_running_should_write_a_failed_report_of_what_it_measured() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut null = Command::new(BIN)
        .args(["null-broker", "--listen", &addr])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("the null broker runs");
    // The load generator must find it listening: a refused first connection is a
    // different failure (a CI run under load started the generator first).
    let started = Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the null broker never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let tmp = dir();
    let json = tmp.path().join("report.json");
    let mut child = Command::new(BIN)
        .args([
            "produce",
            "--topic",
            "gone",
            "--rate",
            "20000",
            "--duration",
            "60s",
            "--quiet",
        ])
        .args(["--bootstrap", &addr])
        .arg("--report-json")
        .arg(&json)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("the loadgen runs");
    std::thread::sleep(Duration::from_secs(3));
    null.kill().expect("kill -9 the null broker");
    let _ = null.wait();
    let status = exit_within(
        &mut child,
        Duration::from_secs(30),
        "the run did not end after its broker died",
    );
    assert_eq!(status.code(), Some(1), "a failed run exits 1");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON report exists"))
            .expect("parses");
    let error = report["failed_with"]
        .as_str()
        .expect("failed_with names the error");
    assert!(error.contains(&addr), "the error names the broker: {error}");
    assert_eq!(report["interrupted"], false);
    assert!(
        u64_at(&report, "/totals/all/acked_records") > 0,
        "what was acknowledged before the kill is in the report"
    );
    assert!(f64_at(&report, "/throughput/measured_seconds") < 50.0);
}

#[test]
fn given_two_reports_when_comparing_should_write_one_page_with_both_runs_and_ratios() {
    let broker = broker(false, 0);
    let tmp = dir();
    let bootstrap = broker.addr().to_string();
    let mut paths = Vec::new();
    for (name, rate) in [("before", "2000"), ("after", "4000")] {
        let run_dir = tmp.path().join(name);
        std::fs::create_dir(&run_dir).expect("run dir");
        let args = [
            "produce",
            "--topic",
            "cmp",
            "--rate",
            rate,
            "--duration",
            "2500ms",
        ];
        let (out, _) = run_loadgen(&bootstrap, &args, &run_dir);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let path = tmp.path().join(format!("{name}.json"));
        std::fs::rename(run_dir.join("report.json"), &path).expect("move report");
        paths.push(path);
    }
    let page = tmp.path().join("compare.html");
    let out = output_within(
        Command::new(BIN)
            .arg("compare")
            .args(&paths)
            .arg("--output")
            .arg(&page),
        RUN_DEADLINE,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let html = std::fs::read_to_string(&page).expect("the page was written");
    assert!(
        html.contains(">before<") && html.contains(">after<"),
        "both runs named"
    );
    // Twice the rate: the records/s ratio against the first run is about 2.
    let row = html
        .split("<tr>")
        .find(|r| r.contains("produce records/s"))
        .expect("a records/s row");
    assert!(row.contains("(&times;1.00)"), "{row}");
    let ratio: f64 = row
        .rsplit("(&times;")
        .next()
        .and_then(|r| r.split(')').next())
        .and_then(|r| r.parse().ok())
        .expect("a ratio in the second run's cell");
    // Loose: on a loaded machine the slower run's last batches wait longer.
    assert!((1.5..2.5).contains(&ratio), "{row}");
    assert_eq!(
        html.matches("<svg").count(),
        2,
        "throughput and produce latency charts"
    );
    assert_eq!(
        html.matches("<polyline").count(),
        6,
        "payload and wire lines per run, one spectrum line per run"
    );
    assert!(
        html.contains("MB/s (10^6 B/s)") && html.contains(">after, wire<") && html.contains("99.9%"),
        "axes carry units and ticks"
    );
}
