//! Acceptance tests: the weir-loadgen binary against a broker started by the
//! test (the in-process null broker here; `run_loadgen` takes any bootstrap
//! address so a Weir-backed variant only needs to start Weir and pass its
//! address). Each run is short: the whole file stays well under a minute.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use weir_loadgen::null_broker::{NullBroker, NullBrokerConfig};

const BIN: &str = env!("CARGO_BIN_EXE_weir-loadgen");

fn null_broker(stall_ms: u64, stall_every_ms: u64, auto_topics: bool) -> NullBroker {
    null_broker_with(NullBrokerConfig {
        listen: "127.0.0.1:0".to_string(),
        stall_ms,
        stall_every_ms,
        default_partitions: 4,
        auto_topics,
        api_versions_max: 4,
        produce_error_code: 0,
        produce_error_count: 0,
        store: false,
        reorder_every: 0,
    })
}

fn null_broker_with(cfg: NullBrokerConfig) -> NullBroker {
    NullBroker::start(cfg).expect("null broker binds an ephemeral port")
}

/// No run here takes more than seconds; a hung loadgen (or null broker) fails its
/// test with stacks instead of holding CI until its own limit.
const RUN_DEADLINE: Duration = Duration::from_secs(180);

/// `cmd.output()`, but past `limit` the child's stacks (gdb) are printed, the child is
/// killed and the test fails.
fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the loadgen binary runs");
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait on the loadgen child") {
            break status;
        }
        if started.elapsed() > limit {
            let stacks = Command::new("gdb")
                .args([
                    "-p",
                    &child.id().to_string(),
                    "-batch",
                    "-ex",
                    "thread apply all bt 30",
                ])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_else(|e| format!("gdb unavailable: {e}"));
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "DEADLINE EXPIRED: weir-loadgen ran past {} s; its stacks:\n{stacks}",
                limit.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// Run the binary with `args` against `bootstrap`, writing the JSON report
/// into `dir`; returns the process output and the parsed report, if any.
pub fn run_loadgen(bootstrap: &str, args: &[&str], dir: &Path) -> (Output, Option<serde_json::Value>) {
    let json = dir.join("report.json");
    let html = dir.join("report.html");
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .args(["--bootstrap", bootstrap, "--quiet"])
        .arg("--report-json")
        .arg(&json)
        .arg("--report-html")
        .arg(&html);
    let output = output_within(&mut cmd, RUN_DEADLINE);
    let report = std::fs::read_to_string(&json)
        .ok()
        .map(|text| serde_json::from_str(&text).expect("the JSON report parses"));
    (output, report)
}

fn dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir on the target filesystem")
}

fn u64_at(report: &serde_json::Value, pointer: &str) -> u64 {
    report
        .pointer(pointer)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or_else(|| panic!("report lacks {pointer}"))
}

#[test]
fn given_null_broker_when_running_short_e2e_should_report_what_the_broker_acknowledged() {
    let broker = null_broker(0, 0, true);
    let tmp = dir();
    let bootstrap = broker.addr().to_string();
    let args = [
        "e2e",
        "--topic",
        "acc",
        "--create",
        "--partitions",
        "3",
        "--producers",
        "2",
        "--consumers",
        "1",
        "--record-size",
        "200",
        "--batch-bytes",
        "16384",
        "--rate",
        "5000",
        "--duration",
        "1s",
        "--compression",
        "lz4",
        "--keys",
        "uniform:50",
    ];
    let (output, report) = run_loadgen(&bootstrap, &args, tmp.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "loadgen failed: {stderr}");
    let report = report.expect("a JSON report was written");
    let stats = broker.stats();
    let broker_records = stats.acked_records.load(Ordering::Relaxed);
    assert!(
        broker_records > 2_000,
        "only {broker_records} records reached the broker"
    );
    assert_eq!(u64_at(&report, "/totals/all/acked_records"), broker_records);
    assert_eq!(
        u64_at(&report, "/totals/all/acked_batch_bytes"),
        stats.acked_batch_bytes.load(Ordering::Relaxed)
    );
    assert_eq!(u64_at(&report, "/totals/all/failed_records"), 0);
    assert_eq!(u64_at(&report, "/cluster/partitions"), 3);
    assert!(u64_at(&report, "/latency/produce/count") > 0);
    assert!(report["timeline"].as_array().is_some_and(|t| !t.is_empty()));
    let html = std::fs::read_to_string(tmp.path().join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("polyline"));
}

#[test]
fn given_stalling_broker_when_producing_at_fixed_rate_should_report_the_stall_in_p99() {
    // 300 ms of every 1000 ms no acknowledgement leaves the broker: a third
    // of the records are due while it stalls, so their latency measured from
    // the intended send time reaches hundreds of ms and p99 must show it.
    let broker = null_broker(300, 1000, true);
    let tmp = dir();
    let args = [
        "produce",
        "--topic",
        "co",
        "--partitions",
        "1",
        "--producers",
        "1",
        "--record-size",
        "100",
        "--rate",
        "2000",
        "--duration",
        "2s",
        "--max-in-flight",
        "1",
        "--linger-ms",
        "1",
    ];
    let (output, report) = run_loadgen(&broker.addr().to_string(), &args, tmp.path());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = report.expect("a JSON report was written");
    let p99_us = u64_at(&report, "/latency/produce_record/p99_us");
    assert!(
        p99_us >= 200_000,
        "per-record p99 {p99_us} µs hides a 300 ms stall"
    );
    let max_us = u64_at(&report, "/latency/produce/max_us");
    assert!(
        max_us >= 200_000,
        "per-batch max {max_us} µs hides a 300 ms stall"
    );
    // Unstalled, the same broker answers in well under the stall.
    let p50_us = u64_at(&report, "/latency/produce_record/p50_us");
    assert!(
        p50_us < 200_000,
        "p50 {p50_us} µs: the stall should not dominate the median"
    );
}

#[test]
fn given_unreachable_broker_when_running_should_exit_nonzero_quickly_with_message() {
    // Bind then drop a listener: the port is closed, connection refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tmp = dir();
    let started = Instant::now();
    let (output, report) = run_loadgen(
        &format!("127.0.0.1:{port}"),
        &["produce", "--duration", "1s", "--request-timeout", "2s"],
        tmp.path(),
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(!output.status.success());
    assert!(report.is_none());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot connect to 127.0.0.1"),
        "unclear message: {stderr}"
    );
}

#[test]
fn given_unknown_topic_without_create_when_running_should_exit_nonzero_naming_it() {
    let broker = null_broker(0, 0, false);
    let tmp = dir();
    let (output, _) = run_loadgen(
        &broker.addr().to_string(),
        &["produce", "--topic", "missing", "--duration", "1s"],
        tmp.path(),
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("'missing' does not exist"),
        "unclear message: {stderr}"
    );
}

#[test]
fn given_bad_flag_when_running_binary_should_exit_nonzero_with_usage() {
    let output = output_within(
        Command::new(BIN).args(["produce", "--duration", "1s", "--acks", "7"]),
        RUN_DEADLINE,
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--acks") && stderr.contains("'7'"), "{stderr}");
}

#[test]
fn given_acks_zero_when_producing_should_finish_and_deliver_every_counted_record() {
    let broker = null_broker(0, 0, true);
    let tmp = dir();
    let args = [
        "produce",
        "--topic",
        "fire",
        "--acks",
        "0",
        "--records",
        "20000",
        "--record-size",
        "100",
    ];
    let (output, report) = run_loadgen(&broker.addr().to_string(), &args, tmp.path());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let sent = u64_at(&report.expect("report"), "/totals/all/acked_records");
    assert_eq!(sent, 20_000);
    // Nothing answers acks=0, so give the broker a moment to read the tail.
    let stats = broker.stats();
    let deadline = Instant::now() + Duration::from_secs(5);
    while stats.acked_records.load(Ordering::Relaxed) < sent && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(stats.acked_records.load(Ordering::Relaxed), sent);
}

#[test]
fn given_broker_without_our_api_versions_version_when_connecting_should_fall_back_per_kip_511() {
    // The broker understands ApiVersions only up to v2: it answers our v4
    // with UNSUPPORTED_VERSION in v0 format, and the client must retry at v2.
    let broker = null_broker_with(NullBrokerConfig {
        listen: "127.0.0.1:0".to_string(),
        stall_ms: 0,
        stall_every_ms: 0,
        default_partitions: 2,
        auto_topics: true,
        api_versions_max: 2,
        produce_error_code: 0,
        produce_error_count: 0,
        store: false,
        reorder_every: 0,
    });
    let tmp = dir();
    let args = [
        "produce",
        "--topic",
        "old",
        "--records",
        "1000",
        "--record-size",
        "64",
    ];
    let (output, report) = run_loadgen(&broker.addr().to_string(), &args, tmp.path());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        u64_at(&report.expect("report"), "/totals/all/acked_records"),
        1000
    );
}

fn erring_broker(code: i16, count: u64) -> NullBroker {
    null_broker_with(NullBrokerConfig {
        listen: "127.0.0.1:0".to_string(),
        stall_ms: 0,
        stall_every_ms: 0,
        default_partitions: 2,
        auto_topics: true,
        api_versions_max: 4,
        produce_error_code: code,
        produce_error_count: count,
        store: false,
        reorder_every: 0,
    })
}

#[test]
fn given_retriable_errors_when_producing_should_retry_count_them_and_lose_nothing() {
    let broker = erring_broker(6, 3); // NOT_LEADER_OR_FOLLOWER, three times
    let tmp = dir();
    let args = [
        "produce",
        "--topic",
        "retry",
        "--records",
        "2000",
        "--record-size",
        "64",
        "--retries",
        "5",
    ];
    let (output, report) = run_loadgen(&broker.addr().to_string(), &args, tmp.path());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = report.expect("report");
    assert_eq!(u64_at(&report, "/totals/all/acked_records"), 2000);
    assert_eq!(u64_at(&report, "/totals/all/failed_records"), 0);
    assert_eq!(u64_at(&report, "/errors/NOT_LEADER_OR_FOLLOWER(6)"), 3);
    assert_eq!(broker.stats().acked_records.load(Ordering::Relaxed), 2000);
}

#[test]
fn given_non_retriable_error_when_producing_should_exit_nonzero_naming_the_code() {
    let broker = erring_broker(87, 1); // INVALID_RECORD: retrying cannot help
    let tmp = dir();
    let args = [
        "produce",
        "--topic",
        "bad",
        "--records",
        "500",
        "--record-size",
        "64",
    ];
    let (output, report) = run_loadgen(&broker.addr().to_string(), &args, tmp.path());
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("INVALID_RECORD(87)") && stderr.contains("failed"),
        "{stderr}"
    );
    let report = report.expect("the report is still written");
    assert!(u64_at(&report, "/totals/all/failed_records") > 0);
}

/// A null broker that keeps what it is sent and serves it back; with `reorder_every` N it
/// stores every Nth batch of a partition before the previous one, as a reordering broker would.
fn storing_broker(reorder_every: u64) -> NullBroker {
    null_broker_with(NullBrokerConfig {
        listen: "127.0.0.1:0".to_string(),
        stall_ms: 0,
        stall_every_ms: 0,
        default_partitions: 3,
        auto_topics: true,
        api_versions_max: 4,
        produce_error_code: 0,
        produce_error_count: 0,
        store: true,
        reorder_every,
    })
}

/// `produce` 20,000 records (two producers per partition: keyed), then `consume --check-order`
/// from the beginning to the end; returns the consume run's output and report.
fn produce_then_check_order(broker: &NullBroker, tmp: &Path) -> (Output, serde_json::Value) {
    let bootstrap = broker.addr().to_string();
    let produce = [
        "produce",
        "--topic",
        "ordered",
        "--create",
        "--partitions",
        "3",
        "--producers",
        "2",
        "--keys",
        "uniform:100",
        "--records",
        "20000",
        "--record-size",
        "100",
        "--batch-bytes",
        "4096",
    ];
    let (output, _) = run_loadgen(&bootstrap, &produce, tmp);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let consume = [
        "consume",
        "--topic",
        "ordered",
        "--from",
        "earliest",
        "--to-end",
        "--check-order",
    ];
    let (output, report) = run_loadgen(&bootstrap, &consume, tmp);
    (output, report.expect("the report is written"))
}

#[test]
fn given_a_broker_that_keeps_send_order_when_consuming_with_check_order_should_find_no_inversion() {
    let broker = storing_broker(0);
    let tmp = dir();
    let (output, report) = produce_then_check_order(&broker, tmp.path());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(u64_at(&report, "/totals/all/consumed_records"), 20_000);
    assert_eq!(u64_at(&report, "/order/checked_records"), 20_000);
    assert_eq!(u64_at(&report, "/order/inversions"), 0);
    assert_eq!(u64_at(&report, "/order/gaps"), 0);
    assert!(
        stdout.contains("order: 20000 records checked, 0 inversions, 0 gaps"),
        "{stdout}"
    );
}

#[test]
fn given_a_broker_that_reorders_batches_when_consuming_with_check_order_should_count_inversions_and_fail() {
    let broker = storing_broker(5);
    let tmp = dir();
    let (output, report) = produce_then_check_order(&broker, tmp.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "an inversion must fail the run");
    assert!(stderr.contains("out of send order"), "{stderr}");
    assert_eq!(u64_at(&report, "/order/checked_records"), 20_000);
    let inversions = u64_at(&report, "/order/inversions");
    let gaps = u64_at(&report, "/order/gaps");
    assert!(inversions > 0 && gaps > 0, "inversions {inversions}, gaps {gaps}");
}

#[test]
fn given_e2e_with_check_order_when_the_broker_keeps_order_should_check_what_it_consumed() {
    let broker = storing_broker(0);
    let tmp = dir();
    let args = [
        "e2e",
        "--topic",
        "e2e-ordered",
        "--create",
        "--partitions",
        "3",
        "--producers",
        "3",
        "--consumers",
        "2",
        "--record-size",
        "64",
        "--rate",
        "5000",
        "--duration",
        "1s",
        "--check-order",
    ];
    let (output, report) = run_loadgen(&broker.addr().to_string(), &args, tmp.path());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = report.expect("report");
    let checked = u64_at(&report, "/order/checked_records");
    assert!(checked > 2_000, "only {checked} records checked");
    assert_eq!(checked, u64_at(&report, "/totals/all/consumed_records"));
    assert_eq!(u64_at(&report, "/order/inversions"), 0);
    assert_eq!(u64_at(&report, "/order/gaps"), 0);
}
