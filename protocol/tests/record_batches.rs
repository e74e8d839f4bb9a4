//! RecordBatch v2 against real client bytes and the builder: every fixture batch
//! (kcat 2.0.2/2.16, confluent-kafka 2.16, kafka-python 3.0, every codec)
//! validates and decodes to exactly the records its sidecar says were sent;
//! builder output round-trips for every codec; corrupt batches are refused with
//! the right error; the decompression bound stops a zip bomb.

mod support {
    pub mod batches;
}

use std::collections::BTreeMap;

use bytes::BytesMut;
use proptest::prelude::*;
use serde_json::Value;
use support::batches::{envelope, fixtures_dir, reseal};
use weir_protocol::builder::BatchBuilder;
use weir_protocol::compression::{CompressionError, XERIAL_MAGIC};
use weir_protocol::record_batch::{self, BatchError, BatchWalker, Compression, HEADER_BYTES};
use weir_protocol::records::{for_each_record, RecordError};

/// Generous for the fixtures (a few hundred bytes each), small enough to matter.
const DECOMPRESSED_MAX_BYTES: usize = 1 << 20;

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

type OwnedHeaders = Vec<(Vec<u8>, Option<Vec<u8>>)>;
/// offset delta, timestamp delta, key, value, headers.
type OwnedRecord = (i64, i64, Option<Vec<u8>>, Option<Vec<u8>>, OwnedHeaders);

fn json_bytes(v: &Value) -> Option<Vec<u8>> {
    v.as_str().map(|s| s.as_bytes().to_vec())
}

fn json_headers(v: &Value) -> OwnedHeaders {
    v.as_array()
        .expect("headers array")
        .iter()
        .map(|pair| (json_bytes(&pair[0]).expect("header key"), json_bytes(&pair[1])))
        .collect()
}

fn codec_named(name: &str) -> Compression {
    match name {
        "none" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        other => panic!("unknown codec {other} in a sidecar"),
    }
}

fn decode_owned(batch: &[u8], scratch: &mut Vec<u8>) -> Result<Vec<OwnedRecord>, RecordError> {
    let info = record_batch::validate(batch)?;
    let mut out = Vec::new();
    for_each_record(batch, scratch, DECOMPRESSED_MAX_BYTES, |r| {
        let headers = r
            .headers
            .iter()
            .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
            .collect();
        out.push((
            r.offset - info.base_offset,
            r.timestamp_ms - info.base_timestamp,
            r.key.map(<[u8]>::to_vec),
            r.value.map(<[u8]>::to_vec),
            headers,
        ));
    })?;
    Ok(out)
}

/// key, value, headers: a record as the client sent it.
type SentRecord = (Option<Vec<u8>>, Option<Vec<u8>>, OwnedHeaders);

/// Checks one fixture file; returns the snappy framings seen (xerial or raw).
fn check_fixture(name: &str, scratch: &mut Vec<u8>) -> Vec<bool> {
    let bin = std::fs::read(fixtures_dir().join(format!("{name}.bin"))).unwrap();
    let sidecar: Value =
        serde_json::from_slice(&std::fs::read(fixtures_dir().join(format!("{name}.json"))).unwrap()).unwrap();
    let batches = sidecar["batches"].as_array().unwrap();
    let ranges: Vec<_> = BatchWalker::new(&bin).collect();
    assert_eq!(ranges.len(), batches.len(), "{name}: batch count");
    let mut decoded_all = Vec::new();
    let mut snappy_framings = Vec::new();
    for (range, expected) in ranges.into_iter().zip(batches) {
        assert_eq!(
            range.start as u64,
            expected["file_offset"].as_u64().unwrap(),
            "{name}"
        );
        let batch = &bin[range];
        let codec = check_batch_header(name, batch, &expected["header"]);
        if codec == Compression::Snappy {
            snappy_framings.push(batch[HEADER_BYTES..].starts_with(&XERIAL_MAGIC));
        }
        let records = decode_owned(batch, scratch).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            records,
            sidecar_records(&expected["records"]),
            "{name}: records byte for byte"
        );
        decoded_all.extend(records.into_iter().map(|(_, _, k, v, h)| (k, v, h)));
    }
    let mut sent = sent_records(&sidecar["sent_records"]);
    sent.sort();
    decoded_all.sort();
    assert_eq!(
        decoded_all, sent,
        "{name}: decoded records are exactly the sent ones"
    );
    snappy_framings
}

/// The batch validates and its header matches the sidecar's (codec, record count,
/// producer id); returns the codec.
fn check_batch_header(name: &str, batch: &[u8], header: &Value) -> Compression {
    let info = record_batch::validate(batch).unwrap_or_else(|e| panic!("{name}: {e}"));
    let codec = codec_named(header["compression"].as_str().unwrap());
    assert_eq!(info.compression().unwrap(), codec, "{name}");
    assert_eq!(
        i64::from(info.records_count),
        header["records_count"].as_i64().unwrap()
    );
    assert_eq!(
        info.producer_id,
        header["producer_id"].as_i64().unwrap(),
        "{name}"
    );
    codec
}

/// A batch's records as its sidecar lists them.
fn sidecar_records(records: &Value) -> Vec<OwnedRecord> {
    records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["offset_delta"].as_i64().unwrap(),
                r["timestamp_delta"].as_i64().unwrap(),
                json_bytes(&r["key"]),
                json_bytes(&r["value"]),
                json_headers(&r["headers"]),
            )
        })
        .collect()
}

/// The records the client was asked to send, as the sidecar lists them.
fn sent_records(sent: &Value) -> Vec<SentRecord> {
    sent.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                json_bytes(&r["key"]),
                json_bytes(&r["value"]),
                json_headers(&r["headers"]),
            )
        })
        .collect()
}

#[test]
fn given_every_client_fixture_when_decoded_should_yield_exactly_the_sent_records() {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".bin").map(str::to_owned))
        .collect();
    names.sort();
    assert_eq!(names.len(), 22, "fixture set changed: {names:?}");
    let mut scratch = Vec::new();
    let mut framings = BTreeMap::new();
    for name in &names {
        for xerial in check_fixture(name, &mut scratch) {
            *framings.entry(xerial).or_insert(0) += 1;
        }
    }
    // Both snappy framings must really have been exercised.
    assert!(
        framings.get(&true).is_some_and(|n| *n >= 1),
        "no xerial snappy batch: {framings:?}"
    );
    assert!(
        framings.get(&false).is_some_and(|n| *n >= 3),
        "no raw snappy batch: {framings:?}"
    );
}

fn fixture_batch(name: &str) -> Vec<u8> {
    let bin = std::fs::read(fixtures_dir().join(format!("{name}.bin"))).unwrap();
    let range = BatchWalker::new(&bin).next().unwrap();
    bin[range].to_vec()
}

#[test]
fn given_a_flipped_bit_anywhere_in_the_crc_region_when_validated_should_be_bad_crc() {
    let batch = fixture_batch("confluent-kafka-2.16-zstd");
    for position in record_batch::CRC_START..batch.len() {
        for bit in [0, 7] {
            let mut bad = batch.clone();
            bad[position] ^= 1 << bit;
            let err = record_batch::validate(&bad).unwrap_err();
            assert!(matches!(err, BatchError::BadCrc { .. }), "byte {position}: {err}");
            assert!(decode_owned(&bad, &mut Vec::new()).is_err());
        }
    }
}

#[test]
fn given_a_wrong_magic_when_validated_should_be_bad_magic() {
    let mut batch = fixture_batch("kcat-2.16-none");
    batch[16] = 1;
    assert_eq!(
        record_batch::validate(&batch).unwrap_err(),
        BatchError::BadMagic(1)
    );
}

#[test]
fn given_an_inconsistent_length_when_validated_should_be_bad_length() {
    let batch = fixture_batch("kcat-2.16-gzip");
    let mut longer = batch.clone();
    longer.push(0);
    assert!(matches!(
        record_batch::validate(&longer),
        Err(BatchError::BadLength { .. })
    ));
    let mut lying = batch.clone();
    let claimed = i32::from_be_bytes(lying[8..12].try_into().unwrap()) + 5;
    lying[8..12].copy_from_slice(&claimed.to_be_bytes());
    assert!(matches!(
        record_batch::validate(&lying),
        Err(BatchError::BadLength { .. })
    ));
}

#[test]
fn given_a_truncated_batch_when_validated_should_be_refused() {
    let batch = fixture_batch("kafka-python-3.0-snappy");
    for cut in 0..batch.len() {
        let err = record_batch::validate(&batch[..cut]).unwrap_err();
        if cut < HEADER_BYTES {
            assert!(matches!(err, BatchError::Truncated { .. }), "cut {cut}: {err}");
        } else {
            assert!(matches!(err, BatchError::BadLength { .. }), "cut {cut}: {err}");
        }
    }
}

#[test]
fn given_a_zip_bomb_batch_when_iterated_should_refuse_beyond_the_limit() {
    let zeros = vec![0u8; 8 << 20];
    for codec in CODECS.into_iter().skip(1) {
        let mut builder = BatchBuilder::new(codec);
        builder.push(1, None, Some(&zeros), &[]);
        let mut out = BytesMut::new();
        builder.finish_into(&mut out).unwrap();
        assert!(
            out.len() < 1 << 20,
            "{codec:?} should shrink zeros: {}",
            out.len()
        );
        let mut scratch = Vec::new();
        let err =
            for_each_record(&out, &mut scratch, 1 << 20, |_| panic!("no record may escape")).unwrap_err();
        assert!(
            matches!(
                err,
                RecordError::Compression(CompressionError::TooLarge {
                    limit_bytes: 1_048_576
                })
            ),
            "{codec:?}: {err}"
        );
        assert!(
            scratch.capacity() <= 4 << 20,
            "{codec:?} scratch grew to {}",
            scratch.capacity()
        );
        // The same batch under a limit it fits is fine.
        assert_eq!(for_each_record(&out, &mut scratch, 9 << 20, |_| {}).unwrap(), 1);
    }
}

#[test]
fn given_records_count_larger_than_the_records_when_iterated_should_be_malformed() {
    let mut builder = BatchBuilder::new(Compression::None);
    builder.push(5, Some(b"k"), Some(b"v"), &[]);
    let mut out = BytesMut::new();
    builder.finish_into(&mut out).unwrap();
    // Claim two records (and offset span 2), then re-seal the CRC: the header
    // is self-consistent, the payload is short.
    out[23..27].copy_from_slice(&1i32.to_be_bytes());
    out[57..61].copy_from_slice(&2i32.to_be_bytes());
    reseal(&mut out);
    let err = for_each_record(&out, &mut Vec::new(), 1024, |_| {}).unwrap_err();
    assert!(
        matches!(err, RecordError::Malformed { record_index: 1, .. }),
        "{err}"
    );
}

type GenRecord = (
    i64,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(Vec<u8>, Option<Vec<u8>>)>,
);

fn arb_record() -> impl Strategy<Value = GenRecord> {
    let bytes = proptest::collection::vec(any::<u8>(), 0..200);
    let header = (
        proptest::collection::vec(any::<u8>(), 0..16),
        proptest::option::of(bytes.clone()),
    );
    (
        -1_000i64..1_000,
        proptest::option::of(bytes.clone()),
        proptest::option::of(bytes),
        proptest::collection::vec(header, 0..4),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn given_any_records_when_built_validated_and_iterated_should_round_trip(
        codec_index in 0usize..5,
        base_ms in 0i64..4_000_000_000_000,
        records in proptest::collection::vec(arb_record(), 1..40),
        producer in proptest::option::of((0i64..i64::MAX, 0i16..100, 0i32..1_000_000)),
        only_if_smaller in any::<bool>(),
    ) {
        let codec = CODECS[codec_index];
        let mut builder = BatchBuilder::new(codec);
        builder.set_compress_only_if_smaller(only_if_smaller);
        if let Some((id, epoch, sequence)) = producer {
            builder.set_producer(id, epoch, sequence);
        }
        for (delta_ms, key, value, headers) in &records {
            let headers: Vec<(&[u8], Option<&[u8]>)> =
                headers.iter().map(|(k, v)| (k.as_slice(), v.as_deref())).collect();
            builder.push(base_ms + delta_ms, key.as_deref(), value.as_deref(), &headers);
        }
        prop_assert!(builder.estimated_size_bytes() > HEADER_BYTES);
        let mut out = BytesMut::new();
        builder.finish_into(&mut out).unwrap();
        let info = record_batch::validate(&out).unwrap();
        let carried = info.compression().unwrap();
        prop_assert!(carried == codec || (only_if_smaller && carried == Compression::None));
        prop_assert_eq!(info.records_count as usize, records.len());
        prop_assert_eq!(info.producer_id, producer.map_or(-1, |p| p.0));
        let decoded = decode_owned(&out, &mut Vec::new()).unwrap();
        prop_assert_eq!(decoded.len(), records.len());
        let first_ms = base_ms + records[0].0;
        for (index, ((offset, ts_delta, key, value, headers), sent)) in decoded.into_iter().zip(&records).enumerate() {
            prop_assert_eq!(offset, index as i64);
            prop_assert_eq!(info.base_timestamp + ts_delta, base_ms + sent.0);
            prop_assert_eq!(info.base_timestamp, first_ms);
            prop_assert_eq!(&key, &sent.1);
            prop_assert_eq!(&value, &sent.2);
            prop_assert_eq!(&headers, &sent.3);
        }
    }

    #[test]
    fn given_random_payload_bytes_in_a_valid_envelope_when_iterated_should_not_panic(
        codec_index in 0usize..5,
        payload in proptest::collection::vec(any::<u8>(), 0..512),
        count in 0i32..50,
    ) {
        let mut out = envelope(&payload, count);
        out[21..23].copy_from_slice(&CODECS[codec_index].attribute_bits().to_be_bytes());
        reseal(&mut out);
        let _ = for_each_record(&out, &mut Vec::new(), 64 * 1024, |_| {});
    }
}
