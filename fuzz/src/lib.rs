//! Weir's fuzz targets: plain functions over `&[u8]` that must never panic and must
//! allocate no more than their input allows. Shared by the cargo-fuzz (libFuzzer)
//! binaries and the stable in-process mutation fuzzer (`smoke`). A counting global
//! allocator measures each decode's peak heap growth on the calling thread.

pub mod smoke;

/// The protocol tests' counting global allocator (per-thread live bytes and peak),
/// one source for both: each decode's peak heap growth is measured with it.
#[path = "../../protocol/tests/support/alloc.rs"]
#[allow(dead_code, reason = "allocation_count serves the protocol tests only")]
mod alloc;

use alloc::peak_growth_bytes;

use bytes::Bytes;
use weir_protocol::api::{is_decodable, SUPPORTED_APIS};
use weir_protocol::frame;
use weir_protocol::kafka_protocol::messages::ApiKey;
use weir_protocol::queue_headers;
use weir_protocol::record_batch::{set_base_offset, validate, BatchWalker, CRC_START, HEADER_BYTES};
use weir_protocol::records;

/// Largest frame the targets accept: the fuzzers' max input length, standing in for
/// the broker's `--frame-bytes-max` (the check is the same function).
pub const FRAME_BYTES_MAX: usize = 1024 * 1024;
/// Decoded request structs are larger than their wire bytes: protocol/tests/hostile.rs
/// measured ~203x at worst (OffsetFetch v8/v9); an unbounded reservation (a claimed
/// 2^31-element array) exceeds this by orders of magnitude.
pub const REQUEST_ALLOC_FACTOR: usize = 256;
/// Fixed cost of a decode whatever its input (first Vec growth steps, error strings).
pub const ALLOC_SLACK_BYTES: usize = 64 * 1024;
/// Decompressed records of one batch may not exceed this (the broker passes its
/// max.message.bytes-derived bound; 1 MiB keeps fuzzing fast).
pub const DECOMPRESSED_BYTES_MAX: usize = 1024 * 1024;
/// Fixed codec state a decompression may allocate whatever the input size: lz4_flex's
/// frame decoder sizes its buffers from the frame's declared block size (up to 4 MiB:
/// 4 MiB source + 2 x 4 MiB + 64 KiB window), measured at 16 MiB for a 171-byte batch
/// (found by this fuzzer; regressions/record_batch/lz4-4mib-blocks). Bounded, and the
/// broker never decompresses (it stores batches as received), so it is a cost for
/// consumers of `records::records` only.
pub const CODEC_STATE_BYTES_MAX: usize = 16 * 1024 * 1024 + 64 * 1024;
/// Batches and records visited per input: inputs are at most 1 MiB, so these are
/// never reached by honest data; they bound a target's running time.
const BATCHES_MAX: usize = 4096;
const RECORDS_MAX: usize = 1 << 20;

/// A byte stream as a client would send it: size-prefixed frames back to back. Each
/// frame goes through the broker's checks (`frame_size`, `header_prefix`) and then the
/// decoder of its API; an api/version the broker would refuse is steered onto a
/// supported one, so every decoder sees the mutations.
pub fn request(data: &[u8]) {
    let mut rest = data;
    // Bounded: each step consumes at least the 4-byte prefix.
    while rest.len() >= frame::SIZE_PREFIX_BYTES {
        let prefix: [u8; frame::SIZE_PREFIX_BYTES] = rest[..4].try_into().expect("4 bytes");
        let Ok(size) = frame::frame_size(prefix, FRAME_BYTES_MAX) else {
            return; // the broker closes the connection here
        };
        rest = &rest[frame::SIZE_PREFIX_BYTES..];
        let Some(body) = rest.get(..size) else {
            return; // a truncated frame, then a hang-up
        };
        rest = &rest[size..];
        decode_one(body);
    }
}

fn decode_one(body: &[u8]) {
    let prefix = frame::header_prefix(body).expect("frame_size refuses frames shorter than a header");
    let (key, version) = steer(prefix.api_key, prefix.api_version);
    let mut owned = body.to_vec();
    owned[..2].copy_from_slice(&(key as i16).to_be_bytes());
    owned[2..4].copy_from_slice(&version.to_be_bytes());
    let input = Bytes::from(owned);
    let peak = peak_growth_bytes(|| drop(frame::decode_request(input, key, version)));
    let limit = REQUEST_ALLOC_FACTOR * body.len() + ALLOC_SLACK_BYTES;
    assert!(
        peak <= limit,
        "{key:?} v{version}: {} bytes allocated {peak} > {limit}",
        body.len()
    );
}

/// Keep a decodable (api, version); map anything else onto one, deterministically.
fn steer(api_key: i16, api_version: i16) -> (ApiKey, i16) {
    if let Ok(key) = ApiKey::try_from(api_key) {
        if is_decodable(key, api_version) {
            return (key, api_version);
        }
    }
    let api = SUPPORTED_APIS[usize::from(api_key as u16) % SUPPORTED_APIS.len()];
    let min = api.decodable_min_version();
    let span = (api.max_version - min + 1) as u16;
    let version = min + (api_version as u16 % span) as i16;
    assert!(is_decodable(api.key, version));
    (api.key, version)
}

/// Bytes as found in a Produce `records` field or a segment file: walk the batches,
/// validate each, iterate its records (decompressing), and again with the CRC made
/// right so mutations reach the record parser and the codecs.
pub fn record_batch(data: &[u8]) {
    let mut scratch = Vec::new();
    for range in BatchWalker::new(data).take(BATCHES_MAX) {
        let batch = &data[range];
        check_batch(batch, &mut scratch);
        if batch.len() >= HEADER_BYTES {
            let mut fixed = batch.to_vec();
            let crc = crc32c::crc32c(&fixed[CRC_START..]);
            fixed[CRC_START - 4..CRC_START].copy_from_slice(&crc.to_be_bytes());
            check_batch(&fixed, &mut scratch);
        }
    }
}

fn check_batch(batch: &[u8], scratch: &mut Vec<u8>) {
    let mut visited = 0usize;
    let peak = peak_growth_bytes(|| {
        let Ok(iter) = records::records(batch, scratch, DECOMPRESSED_BYTES_MAX) else {
            return;
        };
        for record in iter.take(RECORDS_MAX) {
            let Ok(record) = record else { break };
            visited += record.key.map_or(0, <[u8]>::len) + record.value.map_or(0, <[u8]>::len);
            for (key, value) in record.headers {
                visited += key.len() + value.map_or(0, <[u8]>::len);
            }
        }
    });
    // The scratch buffer may grow to twice the decompression bound (read_to_end
    // doubling), plus the codecs' fixed state.
    let limit = 2 * DECOMPRESSED_BYTES_MAX + CODEC_STATE_BYTES_MAX + 4 * batch.len() + ALLOC_SLACK_BYTES;
    assert!(
        peak <= limit,
        "batch of {} bytes allocated {peak} > {limit}",
        batch.len()
    );
    assert!(
        visited <= DECOMPRESSED_BYTES_MAX + batch.len(),
        "records lie within their batch"
    );
    // The produce path's queue-header pre-check: never a panic, and a `false`
    // is a proof for any batch the log would accept (no record names a key
    // starting with `weir-`, and the records read cleanly).
    if !queue_headers::might_carry(batch) && validate(batch).is_ok() {
        let mut named = false;
        let read = records::for_each_record(batch, scratch, DECOMPRESSED_BYTES_MAX, |r| {
            named |= r
                .headers
                .iter()
                .any(|(k, _)| k.starts_with(queue_headers::PREFIX));
        });
        assert!(
            read.is_ok() && !named,
            "might_carry said false: {read:?}, weir- key {named}"
        );
    }
    // base_offset sits outside the CRC: the broker rewrites it and the batch stays valid.
    if let Ok(info) = validate(batch) {
        let mut copy = batch.to_vec();
        set_base_offset(&mut copy, info.base_offset ^ 0x5555);
        let again = validate(&copy).expect("rewriting base_offset keeps a batch valid");
        assert_eq!(again.base_offset, info.base_offset ^ 0x5555);
        assert_eq!(again.records_count, info.records_count);
    }
}
