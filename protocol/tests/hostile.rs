//! Decoding hostile bytes never panics and never allocates more than the frame
//! allows. For every supported (api, version), request and response: random
//! bytes, and mutated real client frames (tests/fixtures/frames). A counting
//! global allocator measures the peak heap growth of each decode on this
//! thread, which must stay within `ALLOC_FACTOR * frame bytes + ALLOC_SLACK_BYTES`.
//! This proves the bounded-allocation patch in third_party/kafka-protocol.

mod support {
    #[allow(dead_code, reason = "shared test support; this binary measures peaks only")]
    pub mod alloc;
    pub mod apis;
}

use std::path::{Path, PathBuf};

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::Decodable;
use proptest::prelude::*;
use support::alloc::peak_growth_bytes;
use weir_protocol::api::{is_decodable, SUPPORTED_APIS};
use weir_protocol::kafka_protocol;

/// Decoded structs are larger in memory than on the wire: a compact-array
/// element can take 1-2 wire bytes but becomes a struct of ~100-350 bytes
/// (strings, Vecs, a BTreeMap of unknown tagged fields), and the patched decoder
/// reserves up to one element per remaining byte. Measured worst cases: ~203x
/// for requests (OffsetFetch v8/v9 groups), ~352x for responses (Fetch v12+
/// partitions). An unbounded reservation (a claimed 2^31-element array)
/// exceeds these by orders of magnitude.
const REQUEST_ALLOC_FACTOR: usize = 256;
const RESPONSE_ALLOC_FACTOR: usize = 512;
/// Fixed cost of a decode regardless of input (first Vec growth steps, error
/// values with their context strings).
const ALLOC_SLACK_BYTES: usize = 64 * 1024;

/// Decode `body` as the request and the response of `key` at `version`; panics
/// propagate (a failure), errors are fine. Checks the allocation bound.
fn decode_both_bounded(key: ApiKey, version: i16, body: &[u8]) -> Result<(), TestCaseError> {
    let input = Bytes::copy_from_slice(body);
    let print = std::env::var_os("WEIR_PRINT_ALLOC").is_some() && !body.is_empty();
    with_types!(key, Req, Resp => {
        for (kind, factor, peak) in [
            ("request", REQUEST_ALLOC_FACTOR, peak_growth_bytes(|| drop(Req::decode(&mut input.clone(), version)))),
            ("response", RESPONSE_ALLOC_FACTOR, peak_growth_bytes(|| drop(Resp::decode(&mut input.clone(), version)))),
        ] {
            let limit = factor * body.len() + ALLOC_SLACK_BYTES;
            if print {
                eprintln!("ALLOC {:?} v{version} {kind} len {} peak {peak} ratio {}", key, body.len(), peak / body.len());
            }
            prop_assert!(
                peak <= limit,
                "{:?} v{} {} on {} bytes allocated {} > {}",
                key,
                version,
                kind,
                body.len(),
                peak,
                limit
            );
        }
    });
    Ok(())
}

/// One real request or response body with the api and version it was sent at.
#[derive(Debug, Clone)]
struct Sample {
    key: ApiKey,
    version: i16,
    body: Vec<u8>,
    is_request: bool,
    path: String,
}

fn frames_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/frames")
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    // std::fs in a test, at start-up: no executor here.
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_files(&path, out);
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("req" | "resp")) {
            out.push(path);
        }
    }
}

/// Parse `NNN-<Api>-v<ver>.<req|resp>` frames: strip the size prefix and the
/// header, keep the bodies of supported (api, version) pairs.
fn load_samples() -> Vec<Sample> {
    let mut files = Vec::new();
    collect_files(&frames_dir(), &mut files);
    files.sort();
    let mut samples = Vec::new();
    for path in files {
        let frame = std::fs::read(&path).unwrap();
        let is_request = path.extension().unwrap() == "req";
        let mut bytes = Bytes::from(frame[4..].to_vec());
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let version: i16 = name.rsplit_once("-v").unwrap().1.parse().unwrap();
        let (key, version) = if is_request {
            let key = ApiKey::try_from(i16::from_be_bytes([bytes[0], bytes[1]])).unwrap();
            let header = RequestHeader::decode(&mut bytes, key.request_header_version(version)).unwrap();
            assert_eq!(header.request_api_version, version, "{}", path.display());
            (key, version)
        } else {
            let api = name.split('-').nth(1).unwrap();
            let Some(key) = SUPPORTED_APIS
                .iter()
                .map(|a| a.key)
                .find(|k| format!("{k:?}") == api)
            else {
                continue;
            };
            ResponseHeader::decode(&mut bytes, key.response_header_version(version)).unwrap();
            (key, version)
        };
        if is_decodable(key, version) {
            let path = path.strip_prefix(frames_dir()).unwrap().display().to_string();
            samples.push(Sample {
                key,
                version,
                body: bytes.to_vec(),
                is_request,
                path,
            });
        }
    }
    samples
}

#[test]
fn given_an_allocation_when_measured_should_be_counted() {
    let peak = peak_growth_bytes(|| drop(std::hint::black_box(vec![1u8; 1 << 20])));
    assert!(
        peak >= 1 << 20,
        "the counting allocator missed a 1 MiB allocation: {peak}"
    );
}

#[test]
fn given_real_client_frames_when_decoded_should_parse_and_consume_every_byte() {
    let samples = load_samples();
    let requests = samples.iter().filter(|s| s.is_request).count();
    assert!(requests >= 150, "only {requests} supported request frames found");
    for s in samples.iter().filter(|s| s.is_request) {
        let mut bytes = Bytes::from(s.body.clone());
        with_types!(s.key, Req, _Resp => {
            Req::decode(&mut bytes, s.version).unwrap_or_else(|e| panic!("{}: {e:#}", s.path));
        });
        // librdkafka 2.16's admin client appends 3 bytes (01 00 00) to this
        // Metadata v12 request that the v12 schema does not have; Kafka (and
        // Tansu, which answered it) ignore trailing bytes, so Weir must too.
        let known_trailing = s
            .path
            .ends_with("confluent-kafka-2.16/admin/007-Metadata-v12.req");
        let trailing_ok = bytes.is_empty() || (known_trailing && bytes.len() == 3);
        assert!(trailing_ok, "{}: {} bytes left", s.path, bytes.len());
    }
}

#[test]
fn given_a_tiny_frame_claiming_a_huge_array_when_decoded_should_fail_without_reserving_it() {
    // Metadata v1: topics array (i32 length) claiming i32::MAX entries, then nothing.
    let body = i32::MAX.to_be_bytes();
    let peak = peak_growth_bytes(|| {
        let result = kafka_protocol::messages::MetadataRequest::decode(&mut Bytes::copy_from_slice(&body), 1);
        assert!(result.is_err());
    });
    assert!(
        peak < ALLOC_SLACK_BYTES,
        "allocated {peak} bytes for a 4-byte frame"
    );
    // Produce v9: compact records bytes claiming ~2 GiB.
    // null transactional id, acks -1, timeout 5000, 1 topic "t", 1 partition 0.
    let mut body = vec![0x00, 0xff, 0xff, 0x00, 0x00, 0x13, 0x88, 0x02, 0x02, b't'];
    body.extend_from_slice(&[0x02, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x07]);
    let peak = peak_growth_bytes(|| {
        let result = kafka_protocol::messages::ProduceRequest::decode(&mut Bytes::copy_from_slice(&body), 9);
        assert!(result.is_err());
    });
    assert!(
        peak < ALLOC_SLACK_BYTES,
        "allocated {peak} bytes for a {}-byte frame",
        body.len()
    );
}

/// What a mutation does to a real frame.
#[derive(Debug, Clone)]
enum Mutation {
    FlipByte {
        at: usize,
        xor: u8,
    },
    /// Overwrite 4 bytes with a huge length (i32::MAX, a varint near 2^31, -2).
    HugeLength {
        at: usize,
        kind: u8,
    },
    Truncate {
        keep: usize,
    },
    Insert {
        at: usize,
        bytes: Vec<u8>,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(at, xor)| Mutation::FlipByte { at, xor }),
        (any::<usize>(), 0u8..3).prop_map(|(at, kind)| Mutation::HugeLength { at, kind }),
        any::<usize>().prop_map(|keep| Mutation::Truncate { keep }),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
    ]
}

fn apply(body: &mut Vec<u8>, m: &Mutation) {
    let len = body.len().max(1);
    match m {
        Mutation::FlipByte { at, xor } => {
            if let Some(b) = body.get_mut(at % len) {
                *b ^= xor;
            }
        }
        Mutation::HugeLength { at, kind } => {
            let pattern: [u8; 4] = match kind {
                0 => i32::MAX.to_be_bytes(),
                1 => [0xff, 0xff, 0xff, 0x07],
                _ => (-2i32).to_be_bytes(),
            };
            let at = at % len;
            for (i, b) in pattern.into_iter().enumerate() {
                if let Some(slot) = body.get_mut(at + i) {
                    *slot = b;
                }
            }
        }
        Mutation::Truncate { keep } => body.truncate(keep % len),
        Mutation::Insert { at, bytes } => {
            let at = at % len;
            body.splice(at.min(body.len())..at.min(body.len()), bytes.iter().copied());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn given_random_bytes_when_decoded_as_every_supported_message_should_not_panic_or_overallocate(
        body in proptest::collection::vec(any::<u8>(), 0..160)
    ) {
        for api in SUPPORTED_APIS {
            for version in api.decodable_min_version()..=api.max_version {
                decode_both_bounded(api.key, version, &body)?;
            }
        }
    }

    #[test]
    fn given_mutated_client_frames_when_decoded_at_every_version_should_not_panic_or_overallocate(
        pick in any::<prop::sample::Index>(),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        thread_local!(static SAMPLES: Vec<Sample> = load_samples());
        let sample = SAMPLES.with(|s| s[pick.index(s.len())].clone());
        let mut body = sample.body.clone();
        for m in &mutations {
            apply(&mut body, m);
        }
        let api = SUPPORTED_APIS.iter().find(|a| a.key == sample.key).unwrap();
        for version in api.decodable_min_version()..=api.max_version {
            decode_both_bounded(sample.key, version, &body)?;
        }
    }
}
