//! `queue_headers::might_carry`, the produce path's framing walk, against the
//! full record iterator: on real client batches (tests/fixtures/record-batches)
//! it agrees with what their sidecars say was sent, finds a key renamed to
//! `weir-...` in place, and on built, random and mutated batches a `false` is
//! always a proof (the batch iterates cleanly and no header key starts with
//! `weir-`), never a panic, and `records::any_header_key` refuses exactly the
//! framing the full iterator refuses.

mod support {
    pub mod batches;
}

use bytes::BytesMut;
use proptest::prelude::*;
use serde_json::Value;
use support::batches::{envelope, fixtures_dir, reseal};
use weir_protocol::builder::BatchBuilder;
use weir_protocol::queue_headers::{might_carry, PREFIX};
use weir_protocol::record_batch::{self, BatchWalker, Compression, HEADER_BYTES};
use weir_protocol::records::{any_header_key, for_each_record};

const DECOMPRESSED_MAX_BYTES: usize = 1 << 20;

/// Every batch of every fixture file, with its sidecar entry.
fn fixture_batches() -> Vec<(String, Vec<u8>, Value)> {
    let mut out = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".bin").map(str::to_owned))
        .collect();
    names.sort();
    for name in names {
        let bin = std::fs::read(fixtures_dir().join(format!("{name}.bin"))).unwrap();
        let sidecar: Value =
            serde_json::from_slice(&std::fs::read(fixtures_dir().join(format!("{name}.json"))).unwrap())
                .unwrap();
        let batches = sidecar["batches"].as_array().unwrap();
        let ranges: Vec<_> = BatchWalker::new(&bin).collect();
        assert_eq!(ranges.len(), batches.len(), "{name}");
        for (range, expected) in ranges.into_iter().zip(batches) {
            out.push((name.clone(), bin[range].to_vec(), expected.clone()));
        }
    }
    out
}

/// What the full iterator says: `None` if the records cannot be read, else
/// whether any header key starts with `weir-`.
fn truth(batch: &[u8]) -> Option<bool> {
    let mut found = false;
    for_each_record(batch, &mut Vec::new(), DECOMPRESSED_MAX_BYTES, |r| {
        found |= r.headers.iter().any(|(k, _)| k.starts_with(PREFIX));
    })
    .ok()?;
    Some(found)
}

/// A `false` must be a proof for any batch the log would accept: once its CRC
/// is made right (the walk does not check it), a batch that validates reads
/// cleanly and names no queue header. (One that does not validate is refused
/// by the append whatever the walk said.) And the walk frames records exactly
/// as the full iterator does: it can tell (`Some`) just when the records read.
fn check_sound(batch: &[u8]) -> Result<(), TestCaseError> {
    let carry = might_carry(batch);
    let mut sealed = batch.to_vec();
    reseal(&mut sealed);
    let Ok(info) = record_batch::validate(&sealed) else {
        return Ok(());
    };
    if !carry {
        prop_assert_eq!(truth(&sealed), Some(false), "might_carry said false");
    }
    if info.compression().unwrap() == Compression::None {
        let reads = for_each_record(&sealed, &mut Vec::new(), DECOMPRESSED_MAX_BYTES, |_| {}).is_ok();
        prop_assert_eq!(
            any_header_key(&sealed, |_| false).is_some(),
            reads,
            "framing verdicts differ"
        );
    }
    Ok(())
}

#[test]
fn given_every_client_fixture_batch_when_scanned_should_match_its_sidecar() {
    let batches = fixture_batches();
    let mut plain = 0;
    for (name, batch, expected) in &batches {
        let codec = expected["header"]["compression"].as_str().unwrap();
        let weir_key = expected["records"].as_array().unwrap().iter().any(|r| {
            r["headers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h[0].as_str().unwrap().as_bytes().starts_with(PREFIX))
        });
        assert_eq!(might_carry(batch), codec != "none" || weir_key, "{name}: {codec}");
        plain += usize::from(codec == "none");
    }
    assert!(plain >= 10, "only {plain} uncompressed fixture batches");
}

#[test]
fn given_a_fixture_header_key_renamed_to_weir_when_scanned_should_be_found() {
    let mut renamed = 0;
    for (name, batch, _) in fixture_batches() {
        if record_batch::validate(&batch).unwrap().compression().unwrap() != Compression::None {
            continue;
        }
        // Where the last record's first header key sits in the batch.
        let mut last_key = None;
        for_each_record(&batch, &mut Vec::new(), DECOMPRESSED_MAX_BYTES, |r| {
            if let Some((key, _)) = r.headers.iter().next() {
                let at = key.as_ptr() as usize - batch.as_ptr() as usize;
                last_key = Some(at..at + key.len());
            }
        })
        .unwrap();
        let Some(key) = last_key.filter(|k| k.len() >= PREFIX.len()) else {
            continue;
        };
        let mut weir = batch.clone();
        weir[key.start..key.start + PREFIX.len()].copy_from_slice(PREFIX);
        reseal(&mut weir);
        assert_eq!(truth(&weir), Some(true), "{name}");
        assert!(might_carry(&weir), "{name}: renamed key at byte {}", key.start);
        renamed += 1;
    }
    assert!(renamed >= 5, "only {renamed} fixture batches had a key to rename");
}

fn arb_key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..12),
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(|tail| [PREFIX, &tail].concat()),
        Just(b"x".to_vec()),
    ]
}

type GenRecord = (Option<Vec<u8>>, Vec<(Vec<u8>, Option<Vec<u8>>)>);

fn arb_record() -> impl Strategy<Value = GenRecord> {
    let bytes = proptest::collection::vec(any::<u8>(), 0..64);
    // Values often hold the prefix: it must never count.
    let value = prop_oneof![bytes.clone(), Just(b"weir-delay-ms".to_vec())];
    (
        proptest::option::of(value.clone()),
        proptest::collection::vec((arb_key(), proptest::option::of(value)), 0..3),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn given_built_uncompressed_batches_when_scanned_should_equal_the_full_read(
        records in proptest::collection::vec(arb_record(), 1..20),
    ) {
        let mut builder = BatchBuilder::new(Compression::None);
        for (value, headers) in &records {
            let headers: Vec<(&[u8], Option<&[u8]>)> =
                headers.iter().map(|(k, v)| (k.as_slice(), v.as_deref())).collect();
            builder.push(1_000, None, value.as_deref(), &headers);
        }
        let mut out = BytesMut::new();
        builder.finish_into(&mut out).unwrap();
        prop_assert_eq!(Some(might_carry(&out)), truth(&out));
    }

    #[test]
    fn given_random_payload_bytes_in_an_envelope_when_scanned_should_be_sound(
        payload in proptest::collection::vec(any::<u8>(), 0..512),
        count in -2i32..50,
    ) {
        check_sound(&envelope(&payload, count))?;
    }

    #[test]
    fn given_mutated_fixture_batches_when_scanned_should_be_sound(
        pick in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let batches = fixture_batches();
        let (_, batch, _) = &batches[pick.index(batches.len())];
        let mut bad = batch.clone();
        // Mutate the records only: the header's codec and counts stay real.
        for (at, byte) in flips {
            let at = HEADER_BYTES + at.index(bad.len() - HEADER_BYTES);
            bad[at] ^= byte;
        }
        if truncate {
            // Cut, and make batch_length say so, as the produce path's batch
            // walker would have sized the batch.
            bad.truncate(HEADER_BYTES + cut.index(bad.len() - HEADER_BYTES + 1));
            let batch_length = (bad.len() - 12) as i32;
            bad[8..12].copy_from_slice(&batch_length.to_be_bytes());
        }
        check_sound(&bad)?;
    }
}
