//! An old client on the wire: the requests kcat 1.7.1 with librdkafka 2.0.2 sent
//! (protocol/tests/fixtures/frames/kcat-2.0.2, unmodified client bytes), replayed to the
//! live broker in capture order, one connection per captured connection. Every request
//! must get its API's response at its version with its correlation id; the ApiVersions
//! v3 answer must carry no tagged fields (librdkafka < 2.2 misreads them); Produce v7,
//! ListOffsets v2 and Fetch v11 must succeed. The group scenario's later requests carry
//! member ids another broker assigned, so only their form is checked there.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, ResponseKind};
use weir_protocol::frame;

use super::common::Broker;
use super::matrix::{fill_not_run, Line};

const CLIENT: &str = "librdkafka 2.0.2 (frames)";
const TOPIC: &str = "kcat202";

fn scenarios() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../protocol/tests/fixtures/frames/kcat-2.0.2")
}

/// One replayed request and the live broker's answer.
struct Answer {
    api: ApiKey,
    version: i16,
    body: Bytes,
    response: ResponseKind,
}

/// Replays one scenario; its answers in order (frames captured without an answer, a
/// long poll pending at exit, are sent last and not awaited).
fn replay(broker: &Broker, dir: &Path) -> Vec<Answer> {
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("index.json")).unwrap()).unwrap();
    let mut conns: Vec<(i64, TcpStream)> = Vec::new();
    let mut answers = Vec::new();
    for f in index["frames"].as_array().unwrap() {
        let Some(resp) = f["resp"].as_str() else { continue };
        assert!(!resp.is_empty());
        let conn = f["connection"].as_i64().unwrap();
        if !conns.iter().any(|(c, _)| *c == conn) {
            conns.push((conn, TcpStream::connect(broker.addr()).unwrap()));
        }
        let stream = &mut conns.iter_mut().find(|(c, _)| *c == conn).unwrap().1;
        let req = std::fs::read(dir.join(f["req"].as_str().unwrap())).unwrap();
        stream.write_all(&req).unwrap();
        let mut size = [0u8; 4];
        let what = format!("{}: {}", dir.display(), f["req"]);
        stream
            .read_exact(&mut size)
            .unwrap_or_else(|e| panic!("{what}: no answer ({e})\n{}", broker.log()));
        let mut body = vec![0u8; u32::from_be_bytes(size) as usize];
        stream.read_exact(&mut body).unwrap();
        let api = ApiKey::try_from(f["api_key"].as_i64().unwrap() as i16).unwrap();
        let version = f["version"].as_i64().unwrap() as i16;
        let body = Bytes::from(body);
        let (header, response) = frame::decode_response(body.clone(), api, version)
            .unwrap_or_else(|e| panic!("{what}: undecodable answer: {e}"));
        assert_eq!(
            i64::from(header.correlation_id),
            f["correlation_id"].as_i64().unwrap(),
            "{what}"
        );
        answers.push(Answer {
            api,
            version,
            body,
            response,
        });
    }
    answers
}

/// Every partition error code of the Produce, ListOffsets and Fetch answers.
fn partition_codes(a: &Answer) -> Vec<i16> {
    match &a.response {
        ResponseKind::Produce(r) => r
            .responses
            .iter()
            .flat_map(|t| t.partition_responses.iter().map(|p| p.error_code))
            .collect(),
        ResponseKind::ListOffsets(r) => r
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect(),
        ResponseKind::Fetch(r) => r
            .responses
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect(),
        _ => Vec::new(),
    }
}

fn records_fetched(answers: &[Answer]) -> usize {
    answers
        .iter()
        .filter_map(|a| match &a.response {
            ResponseKind::Fetch(r) => Some(r),
            _ => None,
        })
        .flat_map(|r| r.responses.iter().flat_map(|t| t.partitions.iter()))
        .map(|p| p.records.as_ref().map_or(0, |r| r.len()))
        .sum()
}

/// The result of the checks on `answers` of the APIs in `apis`: every partition code 0.
fn all_succeeded(answers: &[Answer], apis: &[ApiKey]) -> Result<String, String> {
    let mut seen = Vec::new();
    for a in answers.iter().filter(|a| apis.contains(&a.api)) {
        let codes = partition_codes(a);
        if codes.is_empty() || codes.iter().any(|c| *c != 0) {
            return Err(format!("{:?} v{}: partition codes {codes:?}", a.api, a.version));
        }
        seen.push(format!("{:?} v{}", a.api, a.version));
    }
    seen.dedup();
    if seen.is_empty() {
        return Err("no such request in the frames".into());
    }
    Ok(seen.join(", "))
}

fn line(op: &str, checked: Result<String, String>) -> Line {
    match checked {
        Ok(detail) => Line::new(CLIENT, op, "ok", &detail),
        Err(detail) => Line::new(CLIENT, op, "fail", &detail),
    }
}

/// Replays every kcat-2.0.2 scenario; the matrix lines of the old-client column.
pub fn replay_kcat_2_0_2(broker: &Broker) -> Vec<Line> {
    broker.client().create_topic(TOPIC, 2, &[]).unwrap();
    let mut produced = Vec::new();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        produced.extend(replay(broker, &scenarios().join(format!("produce-{codec}"))));
    }
    let consumed = replay(broker, &scenarios().join("consume"));
    let group = replay(broker, &scenarios().join("consumer-group"));
    let failing = replay(broker, &scenarios().join("apiversions-failure"));
    // librdkafka < 2.2 cannot skip non-empty tagged fields: the v3 body must end in an
    // empty tagged-field section, with nothing after the arrays it reads.
    for a in produced
        .iter()
        .chain(&failing)
        .filter(|a| a.api == ApiKey::ApiVersions)
    {
        assert_eq!(
            a.body.last(),
            Some(&0),
            "ApiVersions v{} ends with tagged fields",
            a.version
        );
    }
    assert!(
        group.iter().any(|a| a.api == ApiKey::OffsetCommit),
        "the group scenario commits"
    );
    let fetch = all_succeeded(&consumed, &[ApiKey::ListOffsets, ApiKey::Fetch]).and_then(|d| {
        // 25 records were produced above; the capture read them all.
        let bytes = records_fetched(&consumed);
        if bytes == 0 {
            Err("Fetch returned no records".into())
        } else {
            Ok(format!("{d}; {bytes} record bytes"))
        }
    });
    let mut lines = vec![
        line("Produce", all_succeeded(&produced, &[ApiKey::Produce])),
        line("Fetch", fetch),
    ];
    fill_not_run(&mut lines, CLIENT, "not in the captured frames");
    lines
}
