//! Client quotas (issue 16) as real clients see them, against a 2-shard broker in zero-hop
//! mode: quotas set and read back with kafka-python's AlterClientQuotasRequest /
//! DescribeClientQuotasRequest (no client here has an admin call for them: see
//! `tests/clients/quotas.py`) and with `weir quota`; rates measured with confluent-kafka's
//! producer and consumer in their default configuration (client.id set), 10 s each from the
//! client's first request. A limited producer moves at its quota within 10% while an unlimited
//! one beside it is never throttled; a limited consumer likewise; quotas survive a restart;
//! bad alterations get INVALID_REQUEST per entry and store nothing. The measurements run one at
//! a time (`SERIAL`): two of them side by side would share the two cores.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use common::Broker;
use serde_json::{json, Value};

const CLIENTS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients");
const QUOTA: f64 = 10_485_760.0;
const TOLERANCE: f64 = 0.10;
static SERIAL: Mutex<()> = Mutex::new(());

fn python() -> PathBuf {
    common::venv_python("confluent_kafka, kafka")
}

/// A 2-shard broker with its metrics endpoint on the spare port of its range.
fn broker() -> (Broker, String) {
    let mut b = Broker::new_stopped(&["--shards", "2"]);
    let metrics = format!("127.0.0.1:{}", b.port + 3);
    b.extra.extend(["--metrics-listen".to_string(), metrics.clone()]);
    b.start_again();
    (b, metrics)
}

fn py(broker: &Broker, args: &[&str]) -> Value {
    let out = Command::new(python())
        .arg(format!("{CLIENTS_DIR}/quotas.py"))
        .args(["--bootstrap", &broker.addr()])
        .args(args)
        .output()
        .expect("python runs");
    broker.json_from(&format!("quotas.py {args:?}"), &out)
}

fn alter(broker: &Broker, entries: Value, validate_only: bool) -> Vec<Value> {
    let entries = entries.to_string();
    let mut args = vec!["alter", "--entries", &entries];
    if validate_only {
        args.push("--validate-only");
    }
    py(broker, &args)["entries"].as_array().unwrap().clone()
}

fn describe(broker: &Broker, components: Value, strict: bool) -> Value {
    let components = components.to_string();
    let mut args = vec!["describe", "--components", &components];
    if strict {
        args.push("--strict");
    }
    py(broker, &args)
}

/// The sum over shards of `weir_quota_throttle_ms_total{quota=...}`.
fn throttled_ms(metrics: &str, quota: &str) -> f64 {
    common::metric_sum(
        metrics,
        "weir_quota_throttle_ms_total",
        &format!("quota=\"{quota}\"}}"),
    )
}

fn within(rate: f64) -> bool {
    (rate / QUOTA - 1.0).abs() <= TOLERANCE
}

#[test]
fn given_a_producer_quota_when_a_limited_and_an_unlimited_producer_run_together_should_hold_only_the_limited_one(
) {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (mut b, metrics) = broker();
    b.weir_ok(&["topic", "create", "slow-t"]);
    b.weir_ok(&["topic", "create", "fast-t"]);
    let set = json!([{"entity": [["client-id", "slow"]], "ops": [["producer_byte_rate", QUOTA, false]]}]);
    let answer = alter(&b, set, false);
    assert_eq!(answer[0]["error_code"], 0, "{answer:?}");
    let expected = json!([{"entity": [["client-id", "slow"]], "values": {"producer_byte_rate": QUOTA}}]);
    let exact = json!([["client-id", 0, "slow"]]);
    assert_eq!(describe(&b, exact.clone(), true)["entries"], expected);
    b.restart();
    assert_eq!(
        describe(&b, exact, true)["entries"],
        expected,
        "the quota survives a restart"
    );

    let alone = py(&b, &["produce", "--client-id", "fast", "--topic", "fast-t"]);
    let alone = &alone["producers"][0];
    let both = py(
        &b,
        &[
            "produce",
            "--client-id",
            "slow",
            "--topic",
            "slow-t",
            "--client-id",
            "fast",
            "--topic",
            "fast-t",
        ],
    );
    let (slow, fast) = (&both["producers"][0], &both["producers"][1]);
    let rate = |v: &Value| v["rate"].as_f64().unwrap();
    let ratio = rate(fast) / rate(alone);
    eprintln!(
        "producer quota {QUOTA} B/s: slow {:.0} B/s ({:.3}x the quota, max throttle {} ms); fast alone {:.0} B/s, beside slow {:.0} B/s (ratio {ratio:.3})",
        rate(slow),
        rate(slow) / QUOTA,
        slow["max_throttle_ms"],
        rate(alone),
        rate(fast)
    );
    for p in [alone, slow, fast] {
        assert_eq!(p["errors"], json!([]), "{p}");
    }
    assert!(
        rate(alone) > 2.0 * QUOTA,
        "the unlimited producer must outrun the quota for the test to say anything: {alone}"
    );
    assert!(within(rate(slow)), "slow producer at {} B/s: {slow}", rate(slow));
    assert!(slow["max_throttle_ms"].as_f64().unwrap() > 0.0, "{slow}");
    assert_eq!(
        fast["max_throttle_ms"], 0,
        "the unlimited producer is never throttled: {fast}"
    );
    assert!(
        ratio > 0.5,
        "the unlimited producer beside the limited one: ratio {ratio}"
    );
    assert!(throttled_ms(&metrics, "produce") > 0.0);
    assert_eq!(throttled_ms(&metrics, "fetch"), 0.0);
}

#[test]
fn given_a_consumer_quota_when_a_consumer_reads_a_backlog_should_hold_it_to_the_quota() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (b, metrics) = broker();
    b.weir_ok(&["topic", "create", "backlog"]);
    // 144 MiB of 16 KiB values: more than 10 s at the quota plus the first window's allowance.
    let loaded = py(&b, &["load", "--topic", "backlog", "--count", "9216"]);
    assert_eq!(loaded["loaded"], 9216);
    let out = b.weir_ok(&[
        "quota",
        "set",
        "--client",
        "slowc",
        "--consumer-byte-rate",
        "10485760",
    ]);
    assert!(out.contains("consumer_byte_rate=10485760 set"), "{out}");
    let listed = b.weir_ok(&["quota", "list"]);
    assert!(
        listed
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["slowc", "consumer_byte_rate", "10485760"]),
        "{listed}"
    );
    let got = py(&b, &["consume", "--client-id", "slowc", "--topic", "backlog"]);
    let rate = got["rate"].as_f64().unwrap();
    eprintln!(
        "consumer quota {QUOTA} B/s: {rate:.0} B/s ({:.3}x), {} records, max throttle {} ms",
        rate / QUOTA,
        got["records"],
        got["max_throttle_ms"]
    );
    assert_eq!(got["errors"], json!([]), "{got}");
    assert!(within(rate), "consumer at {rate} B/s: {got}");
    assert!(got["max_throttle_ms"].as_f64().unwrap() > 0.0, "{got}");
    assert!(throttled_ms(&metrics, "fetch") > 0.0);
    b.weir_ok(&["quota", "remove", "--client", "slowc"]);
    assert_eq!(describe(&b, json!([]), false)["entries"], json!([]));
}

#[test]
fn given_bad_alterations_when_sent_should_refuse_each_with_invalid_request_and_store_nothing() {
    let (b, _metrics) = broker();
    let good = json!({"entity": [["user", "alice"], ["client-id", null]], "ops": [["consumer_byte_rate", 2048, false]]});
    let bad = json!([
        {"entity": [["group", "g"]], "ops": [["producer_byte_rate", 1024, false]]},
        {"entity": [["client-id", "a"]], "ops": [["bogus_rate", 1024, false]]},
        {"entity": [["client-id", "b"]], "ops": [["producer_byte_rate", -1, false]]},
        {"entity": [["client-id", "c"]], "ops": [["producer_byte_rate", 1.5, false]]},
        {"entity": [["client-id", "d"]], "ops": [["request_percentage", 50, false]]},
        {"entity": [["client-id", "e"]], "ops": [["producer_byte_rate", 1, false], ["producer_byte_rate", 2, false]]},
        {"entity": [["client-id", ""]], "ops": [["producer_byte_rate", 1024, false]]},
        {"entity": [["ip", "127.0.0.1"]], "ops": [["connection_creation_rate", 5, false]]},
        {"entity": [], "ops": [["producer_byte_rate", 1024, false]]},
        good,
    ]);
    let answer = alter(&b, bad.clone(), false);
    let codes: Vec<i64> = answer.iter().map(|e| e["error_code"].as_i64().unwrap()).collect();
    assert_eq!(codes, [42, 42, 42, 42, 42, 42, 42, 42, 42, 0], "{answer:?}");
    assert_eq!(
        answer[0]["error_message"],
        "Unhandled client quota entity type: group"
    );
    assert_eq!(answer[1]["error_message"], "Invalid configuration key bogus_rate");
    assert_eq!(
        answer[2]["error_message"],
        "Quota producer_byte_rate must be greater than 0"
    );
    let all = describe(&b, json!([]), false);
    assert_eq!(all["error_code"], 0);
    let stored = json!([{"entity": [["client-id", null], ["user", "alice"]], "values": {"consumer_byte_rate": 2048.0}}]);
    assert_eq!(all["entries"], stored, "only the good entry is stored");

    // The same entity twice in one request: both refused, nothing changes.
    let twice = json!([
        {"entity": [["client-id", "x"]], "ops": [["producer_byte_rate", 1024, false]]},
        {"entity": [["client-id", "x"]], "ops": [["consumer_byte_rate", 1024, false]]},
    ]);
    let codes: Vec<Value> = alter(&b, twice, false)
        .iter()
        .map(|e| e["error_code"].clone())
        .collect();
    assert_eq!(codes, [json!(42), json!(42)]);
    // validate_only checks and stores nothing.
    let probe = json!([{"entity": [["client-id", "y"]], "ops": [["producer_byte_rate", 1024, false]]}]);
    assert_eq!(alter(&b, probe, true)[0]["error_code"], 0);
    assert_eq!(describe(&b, json!([]), false)["entries"], stored);

    // Describe filters: default user, then an unknown type (UNSUPPORTED_VERSION, as Kafka).
    let defaults = describe(&b, json!([["client-id", 1, null]]), false);
    assert_eq!(defaults["entries"], stored);
    assert_eq!(
        describe(&b, json!([["client-id", 1, null]]), true)["entries"],
        json!([])
    );
    let unknown = describe(&b, json!([["group", 2, null]]), false);
    assert_eq!(unknown["error_code"], 35, "{unknown}");
    let both_kinds = describe(&b, json!([["ip", 2, null], ["user", 2, null]]), false);
    assert_eq!(both_kinds["error_code"], 42, "{both_kinds}");

    // Removing the last key removes the entity.
    let remove = json!([{"entity": [["user", "alice"], ["client-id", null]], "ops": [["consumer_byte_rate", 0, true]]}]);
    assert_eq!(alter(&b, remove, false)[0]["error_code"], 0);
    assert_eq!(describe(&b, json!([]), false)["entries"], json!([]));
}

/// A short run of one producer: (bytes acknowledged, max throttle_time_ms it saw).
fn short_produce(b: &Broker, client_id: &str, topic: &str, sasl: &[&str]) -> (f64, f64) {
    let mut args = vec![
        "produce",
        "--client-id",
        client_id,
        "--topic",
        topic,
        "--seconds",
        "4",
    ];
    args.extend(sasl);
    let out = py(b, &args);
    let p = &out["producers"][0];
    assert_eq!(p["errors"], json!([]), "{p}");
    (
        p["bytes"].as_f64().unwrap(),
        p["max_throttle_ms"].as_f64().unwrap(),
    )
}

/// 1 MiB/s for 4 s, after the 10 s a new client may send at once, with slack for the
/// last request and the statistics' one-second interval.
const SMALL_QUOTA: f64 = 1_048_576.0;
const SMALL_QUOTA_4S_MAX: f64 = 16.0 * SMALL_QUOTA;

#[test]
fn given_a_user_quota_when_an_unauthenticated_and_a_sasl_client_produce_should_match_anonymous_and_the_sasl_user(
) {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Unauthenticated: user ANONYMOUS, whatever the client id.
    let (b, _metrics) = broker();
    b.weir_ok(&["topic", "create", "anon-t"]);
    b.weir_ok(&[
        "quota",
        "set",
        "--user",
        "ANONYMOUS",
        "--producer-byte-rate",
        "1048576",
    ]);
    let (bytes, throttle) = short_produce(&b, "any-id", "anon-t", &[]);
    eprintln!("ANONYMOUS under 1 MiB/s: {bytes} bytes in 4 s, max throttle {throttle} ms");
    assert!(
        throttle > 0.0 && bytes <= SMALL_QUOTA_4S_MAX,
        "{bytes} bytes, throttle {throttle}"
    );
    drop(b);

    // SASL: the quota of /users/alice applies to alice's connections, not to bob's.
    // Both are super users: this tests quotas, not ACLs (which deny what no binding allows).
    let mut b = Broker::new_stopped(&[
        "--shards",
        "2",
        "--sasl-mechanisms",
        "SCRAM-SHA-512",
        "--super-users",
        "User:alice;User:bob",
    ]);
    let dir = b.data_dir();
    for user in ["alice", "bob"] {
        let out = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["user", "add", user, "--password", "pw-quota-16", "--data-dir"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    b.sasl_login = Some(("alice".into(), "pw-quota-16".into()));
    b.start_again();
    let as_alice = ["--sasl-user", "alice", "--sasl-password", "pw-quota-16"];
    let mut cli = vec!["topic", "create", "sasl-t"];
    cli.extend(as_alice);
    b.weir_ok(&cli);
    let mut cli = vec![
        "quota",
        "set",
        "--user",
        "alice",
        "--producer-byte-rate",
        "1048576",
    ];
    cli.extend(as_alice);
    b.weir_ok(&cli);
    let (bytes, throttle) = short_produce(&b, "c1", "sasl-t", &as_alice);
    eprintln!("alice under 1 MiB/s: {bytes} bytes in 4 s, max throttle {throttle} ms");
    assert!(
        throttle > 0.0 && bytes <= SMALL_QUOTA_4S_MAX,
        "{bytes} bytes, throttle {throttle}"
    );
    let as_bob = ["--sasl-user", "bob", "--sasl-password", "pw-quota-16"];
    let (bytes, throttle) = short_produce(&b, "c1", "sasl-t", &as_bob);
    eprintln!("bob, no quota: {bytes} bytes in 4 s, max throttle {throttle} ms");
    assert_eq!(throttle, 0.0, "bob has no quota");
    assert!(
        bytes > SMALL_QUOTA_4S_MAX,
        "bob is not held to alice's quota: {bytes}"
    );
}

/// `batches` batches of 15 records of 64 KiB values (each under the default 1 MiB
/// max.message.bytes), back to back.
fn big_batches(batches: usize) -> bytes::Bytes {
    let value = vec![b'w'; 64 * 1024];
    let mut out = bytes::BytesMut::new();
    for _ in 0..batches {
        let mut b = weir_protocol::builder::BatchBuilder::new(weir_protocol::record_batch::Compression::None);
        for _ in 0..15 {
            b.push(0, None, Some(&value), &[]);
        }
        b.finish_into(&mut out).unwrap();
    }
    out.freeze()
}

fn produce_at(
    c: &mut weir_client::blocking::Client,
    version: i16,
    batch: bytes::Bytes,
) -> (i16, i32, Duration) {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, TopicName};
    let req = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName("wire-t".to_string().into()))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch))])]);
    let started = std::time::Instant::now();
    let r = c.call_at(version, req).unwrap();
    let code = r.responses[0].partition_responses[0].error_code;
    (code, r.throttle_time_ms, started.elapsed())
}

#[test]
fn given_a_throttled_client_when_it_speaks_old_and_new_produce_versions_should_mute_the_connection_or_hold_the_answer(
) {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (b, _metrics) = broker();
    b.weir_ok(&["topic", "create", "wire-t"]);
    // The client crate's requests carry client id "weir-client": both connections below
    // share one sensor.
    b.weir_ok(&[
        "quota",
        "set",
        "--client",
        "weir-client",
        "--producer-byte-rate",
        "1048576",
    ]);
    // Both on shard 0's own port (it owns the topic's one partition): quotas are metered
    // per shard, and the bootstrap address would let the kernel pick the shard.
    let shard0 = format!("127.0.0.1:{}", b.shard_port_base);
    let connect =
        || weir_client::blocking::Client::connect(shard0.as_str(), Duration::from_secs(30)).unwrap();
    let (mut a, mut old) = (connect(), connect());
    // v7 (KIP-219), 10.3 MiB at once, over the first 10 s allowance: answered at once
    // with the throttle time, and the connection reads nothing more for that long.
    let (code, throttle, took) = produce_at(&mut a, 7, big_batches(11));
    assert_eq!(code, 0);
    let muted = std::thread::spawn(move || {
        let started = std::time::Instant::now();
        a.metadata(None).unwrap();
        started.elapsed()
    });
    // v5 (before KIP-219) on another connection, same client id, now over its quota:
    // the answer itself is held back for the throttle time.
    let (old_code, old_throttle, old_took) = produce_at(&mut old, 5, big_batches(1));
    let next = muted.join().unwrap();
    eprintln!(
        "Produce v7: throttle_time_ms {throttle}, answered after {took:?}, next request after {next:?}; Produce v5: throttle_time_ms {old_throttle}, answered after {old_took:?}"
    );
    assert!(throttle >= 9_000, "{throttle}");
    assert!(took < Duration::from_secs(3), "v7 answered at once: {took:?}");
    let throttle = Duration::from_millis(throttle as u64);
    assert!(
        next + took + Duration::from_millis(500) >= throttle,
        "muted: {next:?}"
    );
    assert_eq!(old_code, 0);
    assert!(old_throttle >= 9_000, "{old_throttle}");
    let old_throttle = Duration::from_millis(old_throttle as u64);
    assert!(
        old_took + Duration::from_millis(500) >= old_throttle,
        "v5 held back: {old_took:?}"
    );
}
