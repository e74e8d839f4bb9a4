//! Bad input gets a Kafka error code or a closed connection, and the broker
//! keeps serving everyone else.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{batch, decode, Broker};
use weir_client::blocking::ClientError;
use weir_protocol::record_batch::Compression;

fn code_of(e: ClientError) -> i16 {
    match e {
        ClientError::Kafka { code, .. } => code,
        other => panic!("expected a Kafka error, got {other:?}"),
    }
}

#[test]
fn given_a_wrong_crc_when_produced_should_answer_corrupt_message_and_store_nothing() {
    let broker = Broker::start(&[]);
    let mut c = broker.client();
    c.create_topic("crc", 1, &[]).unwrap();
    let mut bad = batch(0, 5, Compression::None).to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0x40;
    assert_eq!(
        code_of(c.produce("crc", 0, bad.into(), -1).unwrap_err()),
        2,
        "CORRUPT_MESSAGE"
    );
    assert_eq!(c.list_offset("crc", 0, -1).unwrap().0, 0, "nothing stored");
    // The same connection still works.
    assert_eq!(
        c.produce("crc", 0, batch(0, 5, Compression::None), -1).unwrap(),
        0
    );
}

#[test]
fn given_a_sealed_batch_with_broken_record_framing_when_produced_should_answer_corrupt_message() {
    // The CRC is right but the header claims one record more than the payload
    // holds. Produce walks an uncompressed batch's framing (the queue-header
    // pre-check, handlers/produce_delay.rs); a walk that fails sends the batch
    // to the full record read, which refuses it instead of storing it.
    let broker = Broker::start(&[]);
    let mut c = broker.client();
    c.create_topic("framing", 1, &[]).unwrap();
    let mut bad = batch(0, 5, Compression::None).to_vec();
    bad[23..27].copy_from_slice(&5i32.to_be_bytes()); // last_offset_delta 4 -> 5
    bad[57..61].copy_from_slice(&6i32.to_be_bytes()); // records_count 5 -> 6
    let crc = crc32c::crc32c(&bad[weir_protocol::record_batch::CRC_START..]);
    bad[17..21].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(
        code_of(c.produce("framing", 0, bad.into(), -1).unwrap_err()),
        2,
        "CORRUPT_MESSAGE"
    );
    assert_eq!(c.list_offset("framing", 0, -1).unwrap().0, 0, "nothing stored");
    assert_eq!(
        c.produce("framing", 0, batch(0, 5, Compression::None), -1)
            .unwrap(),
        0
    );
}

#[test]
fn given_a_batch_over_max_message_bytes_when_produced_should_answer_message_too_large() {
    let broker = Broker::start(&[]);
    let mut c = broker.client();
    c.create_topic("big", 1, &[("max.message.bytes", "1000")])
        .unwrap();
    let e = c
        .produce("big", 0, batch(0, 200, Compression::None), 1)
        .unwrap_err();
    assert_eq!(code_of(e), 10, "MESSAGE_TOO_LARGE");
}

#[test]
fn given_auto_create_off_when_producing_to_an_unknown_topic_should_answer_unknown_topic() {
    let broker = Broker::start(&["--auto-create-topics", "false"]);
    let mut c = broker.client();
    let m = c.metadata(Some(&["nope"])).unwrap();
    assert_eq!(
        m.topics[0].error_code, 3,
        "UNKNOWN_TOPIC_OR_PARTITION in metadata"
    );
    let e = c
        .produce("nope", 0, batch(0, 1, Compression::None), 1)
        .unwrap_err();
    assert_eq!(code_of(e), 3);
}

fn assert_closed(mut s: TcpStream) {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 16];
    match s.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("expected the broker to close the connection, got {other:?}"),
    }
}

#[test]
fn given_garbage_oversized_and_truncated_frames_should_close_those_connections_and_keep_serving() {
    let broker = Broker::start(&["--frame-bytes-max", "1048576"]);
    let mut good = broker.client();
    good.create_topic("ok", 1, &[]).unwrap();

    // A size prefix of 2 GiB.
    let mut s = TcpStream::connect(broker.addr()).unwrap();
    s.write_all(&0x7fff_ffffu32.to_be_bytes()).unwrap();
    assert_closed(s);
    // Garbage: a plausible size, then a body that is no request.
    let mut s = TcpStream::connect(broker.addr()).unwrap();
    s.write_all(&[0, 0, 0, 12, 0xff, 0x7f, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
        .unwrap();
    assert_closed(s);
    // A Produce whose body is cut short inside the frame.
    let mut s = TcpStream::connect(broker.addr()).unwrap();
    s.write_all(&[0, 0, 0, 10, 0, 0, 0, 7, 0, 0, 0, 1, 0xff, 0xff])
        .unwrap();
    assert_closed(s);
    // A truncated frame, then a hang-up.
    let mut s = TcpStream::connect(broker.addr()).unwrap();
    s.write_all(&[0, 0, 1, 0, 0, 18]).unwrap();
    drop(s);
    // An unsupported version of ApiVersions still gets an answer (KIP-511).
    let mut s = TcpStream::connect(broker.addr()).unwrap();
    s.write_all(&[0, 0, 0, 10, 0, 18, 0, 99, 0, 0, 0, 5, 0xff, 0xff])
        .unwrap();
    let mut answer = [0u8; 10];
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.read_exact(&mut answer).unwrap();
    assert_eq!(&answer[4..8], &5i32.to_be_bytes(), "correlation id echoed");
    assert_eq!(&answer[8..10], &35i16.to_be_bytes(), "UNSUPPORTED_VERSION");

    // Everyone else is still served.
    good.produce("ok", 0, batch(0, 3, Compression::None), -1).unwrap();
    let (_, records) = good.fetch("ok", 0, 0, 1 << 20, 100).unwrap();
    assert_eq!(decode(&records).len(), 3);
    assert!(
        broker.log().contains("closing connection"),
        "each refusal is logged"
    );
}

#[test]
fn given_a_non_produce_frame_over_the_control_limit_should_close_the_connection() {
    let broker = Broker::start(&[]);
    // A 2 MiB Metadata frame: header, then padding. Refused before decoding.
    let size: u32 = 2 * 1024 * 1024;
    let mut frame = Vec::with_capacity(size as usize + 4);
    frame.extend_from_slice(&size.to_be_bytes());
    frame.extend_from_slice(&[0, 3, 0, 4, 0, 0, 0, 1, 0, 0]);
    frame.resize(size as usize + 4, 0);
    let mut s = TcpStream::connect(broker.addr()).unwrap();
    let _ = s.write_all(&frame);
    assert_closed(s);
    assert!(broker.log().contains("limit for non-Produce requests"));
    broker.client().metadata(None).unwrap();
}

fn put_str(f: &mut Vec<u8>, s: &str) {
    f.extend_from_slice(&(s.len() as i16).to_be_bytes());
    f.extend_from_slice(s.as_bytes());
}

/// A request frame (size prefix included) with header v1 and `body`.
fn old_request(api_key: i16, version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&api_key.to_be_bytes());
    f.extend_from_slice(&version.to_be_bytes());
    f.extend_from_slice(&correlation_id.to_be_bytes());
    put_str(&mut f, "old-client");
    f.extend_from_slice(body);
    let mut framed = (f.len() as i32).to_be_bytes().to_vec();
    framed.extend_from_slice(&f);
    framed
}

fn read_answer(s: &mut TcpStream) -> Vec<u8> {
    let mut size = [0u8; 4];
    s.read_exact(&mut size).unwrap();
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut body).unwrap();
    body
}

/// Issue 12: versions Weir advertises (Produce v0-2, Fetch v0-3, for librdkafka 2.0's
/// compression detection) or that pre-ApiVersions clients send (OffsetCommit v0-1,
/// DescribeConfigs v0) get their API's answer with UNSUPPORTED_VERSION (35) per partition
/// or resource, and the connection stays open; an acks=0 Produce v0 is closed (it reads no
/// answer, as Kafka closes after a failed acks=0 produce).
#[test]
fn given_old_request_versions_should_answer_unsupported_version_in_their_own_response() {
    let broker = Broker::start(&[]);
    let mut s = TcpStream::connect(broker.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let topic_with_partition = |f: &mut Vec<u8>, rest: &[u8]| {
        f.extend_from_slice(&1i32.to_be_bytes());
        put_str(f, "t");
        f.extend_from_slice(&1i32.to_be_bytes());
        f.extend_from_slice(&0i32.to_be_bytes());
        f.extend_from_slice(rest);
    };
    let mut produce = Vec::new();
    produce.extend_from_slice(&1i16.to_be_bytes()); // acks
    produce.extend_from_slice(&1000i32.to_be_bytes());
    topic_with_partition(&mut produce, &[0, 0, 0, 0]); // empty message set
    let mut fetch = Vec::new();
    for v in [-1i32, 100, 1] {
        fetch.extend_from_slice(&v.to_be_bytes());
    }
    let mut rest = 0i64.to_be_bytes().to_vec();
    rest.extend_from_slice(&(1i32 << 20).to_be_bytes());
    topic_with_partition(&mut fetch, &rest);
    let mut commit = Vec::new();
    put_str(&mut commit, "g");
    let mut rest = 5i64.to_be_bytes().to_vec();
    rest.extend_from_slice(&(-1i16).to_be_bytes());
    topic_with_partition(&mut commit, &rest);
    let mut configs = 1i32.to_be_bytes().to_vec();
    configs.push(2);
    put_str(&mut configs, "t");
    configs.extend_from_slice(&(-1i32).to_be_bytes());
    // (api key, version, body, where the error code sits in the answer after the size)
    let cases: [(i16, i16, &[u8], usize); 4] = [
        (0, 2, &produce, 4 + 4 + 3 + 4 + 4),
        (1, 0, &fetch, 4 + 4 + 3 + 4 + 4),
        (8, 0, &commit, 4 + 4 + 3 + 4 + 4),
        (32, 0, &configs, 4 + 4 + 4),
    ];
    for (i, (key, version, body, code_at)) in cases.into_iter().enumerate() {
        s.write_all(&old_request(key, version, i as i32, body)).unwrap();
        let answer = read_answer(&mut s);
        assert_eq!(
            &answer[..4],
            &(i as i32).to_be_bytes(),
            "api {key} v{version}: correlation id"
        );
        assert_eq!(
            &answer[code_at..code_at + 2],
            &35i16.to_be_bytes(),
            "api {key} v{version}: {answer:?}"
        );
    }
    // The same connection still serves: ApiVersions v0.
    s.write_all(&old_request(18, 0, 99, &[])).unwrap();
    let answer = read_answer(&mut s);
    assert_eq!(&answer[..4], &99i32.to_be_bytes());
    assert_eq!(
        &answer[4..6],
        &0i16.to_be_bytes(),
        "ApiVersions answered without error"
    );

    let mut acks0 = produce.clone();
    acks0[..2].copy_from_slice(&0i16.to_be_bytes());
    let mut s = TcpStream::connect(broker.addr()).unwrap();
    s.write_all(&old_request(0, 0, 1, &acks0)).unwrap();
    assert_closed(s);
}

/// Every file under the data dir with its bytes, except segment data and indexes
/// (written by the produce before): the catalog, log-start offsets, group and
/// transaction logs.
fn disk_state(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            let name = path.strip_prefix(dir).unwrap().display().to_string();
            if path.is_dir() {
                stack.push(path);
                out.push((name, Vec::new()));
            } else if name.ends_with(".log") && !name.starts_with("__") || name.ends_with(".index") {
                out.push((name, Vec::new()));
            } else {
                out.push((name, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// The partition count, retention.ms and partition 0's start and end, as clients see them.
fn described(c: &mut weir_client::blocking::Client, topic: &str) -> (usize, String, i64, i64) {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_protocol::messages::DescribeConfigsRequest;
    let partitions = c.metadata(Some(&[topic])).unwrap().topics[0].partitions.len();
    let r = c
        .call_at(
            4,
            DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(topic.to_string().into())
                .with_configuration_keys(None)]),
        )
        .unwrap();
    let retention = r.results[0]
        .configs
        .iter()
        .find(|e| e.name.as_str() == "retention.ms")
        .and_then(|e| e.value.as_ref().map(ToString::to_string))
        .unwrap_or_else(|| panic!("no retention.ms: {r:?}"));
    let start = c.list_offset(topic, 0, -2).unwrap().0;
    let end = c.list_offset(topic, 0, -1).unwrap().0;
    (partitions, retention, start, end)
}

mod admin_requests {
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;

    pub fn grow(topic: &str, count: i32) -> CreatePartitionsRequest {
        CreatePartitionsRequest::default()
            .with_topics(vec![create_partitions_request::CreatePartitionsTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.into())))
                .with_count(count)])
            .with_timeout_ms(5000)
    }

    pub fn alter(kind: i8, name: &str, key: &str, value: &str) -> IncrementalAlterConfigsRequest {
        use incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
        let config = AlterableConfig::default()
            .with_name(StrBytes::from_string(key.into()))
            .with_value(Some(StrBytes::from_string(value.into())));
        IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(kind)
            .with_resource_name(StrBytes::from_string(name.into()))
            .with_configs(vec![config])])
    }

    pub fn legacy_alter(name: &str, key: &str, value: &str) -> AlterConfigsRequest {
        use alter_configs_request::{AlterConfigsResource, AlterableConfig};
        let config = AlterableConfig::default()
            .with_name(StrBytes::from_string(key.into()))
            .with_value(Some(StrBytes::from_string(value.into())));
        AlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_string(name.into()))
            .with_configs(vec![config])])
    }

    pub fn describe(kind: i8, name: &str) -> DescribeConfigsRequest {
        DescribeConfigsRequest::default().with_resources(vec![
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(kind)
                .with_resource_name(StrBytes::from_string(name.into())),
        ])
    }

    pub fn delete_records(topic: &str, offset: i64) -> DeleteRecordsRequest {
        use delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
        DeleteRecordsRequest::default()
            .with_topics(vec![DeleteRecordsTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.into())))
                .with_partitions(vec![DeleteRecordsPartition::default()
                    .with_partition_index(0)
                    .with_offset(offset)])])
            .with_timeout_ms(5000)
    }

    pub fn describe_partitions(
        topics: &[&str],
        cursor: Option<(&str, i32)>,
    ) -> DescribeTopicPartitionsRequest {
        use describe_topic_partitions_request::{Cursor, TopicRequest};
        DescribeTopicPartitionsRequest::default()
            .with_topics(
                topics
                    .iter()
                    .map(|t| {
                        TopicRequest::default().with_name(TopicName(StrBytes::from_string(t.to_string())))
                    })
                    .collect(),
            )
            .with_response_partition_limit(2000)
            .with_cursor(cursor.map(|(t, p)| {
                Cursor::default()
                    .with_topic_name(TopicName(StrBytes::from_string(t.into())))
                    .with_partition_index(p)
            }))
    }
}

/// Each bad admin request gets Kafka's code (an unknown topic 3, a count not above
/// today's or negative INVALID_PARTITIONS 37, a bad value or unknown config name
/// INVALID_CONFIG 40, a broker id not served INVALID_REQUEST 42, deleting beyond the
/// high watermark OFFSET_OUT_OF_RANGE 1, a bad cursor INVALID_REQUEST), nothing
/// changes on disk or in what clients see, and the broker keeps serving.
#[test]
fn given_bad_admin_requests_should_answer_kafkas_codes_change_nothing_and_keep_serving() {
    use admin_requests::*;
    let broker = Broker::start(&["--shards", "2"]);
    let mut c = broker.client();
    c.create_topic("bad", 2, &[]).unwrap();
    c.produce("bad", 0, batch(0, 5, Compression::None), -1).unwrap();
    let before = (disk_state(&broker.data_dir()), described(&mut c, "bad"));

    for (count, code) in [(2, 37), (1, 37), (-3, 37), (0, 37)] {
        let r = c.call_at(3, grow("bad", count)).unwrap();
        assert_eq!(r.results[0].error_code, code, "count {count}");
    }
    assert_eq!(c.call_at(3, grow("nope", 4)).unwrap().results[0].error_code, 3);
    for (key, value, code) in [("retention.ms", "abc", 40), ("no.such.config", "1", 40)] {
        let r = c.call_at(1, alter(2, "bad", key, value)).unwrap();
        assert_eq!(r.responses[0].error_code, code, "incremental {key}={value}");
        let r = c.call_at(2, legacy_alter("bad", key, value)).unwrap();
        assert_eq!(r.responses[0].error_code, code, "legacy {key}={value}");
    }
    let r = c.call_at(1, alter(2, "nope", "retention.ms", "1000")).unwrap();
    assert_eq!(r.responses[0].error_code, 3);
    let r = c.call_at(1, alter(4, "7", "log.retention.ms", "1000")).unwrap();
    assert_eq!(r.responses[0].error_code, 42, "broker resource");
    assert_eq!(
        c.call_at(4, describe(2, "nope")).unwrap().results[0].error_code,
        3
    );
    assert_eq!(
        c.call_at(4, describe(4, "7")).unwrap().results[0].error_code,
        42,
        "broker 7"
    );
    let r = c.call_at(2, delete_records("bad", 6)).unwrap();
    assert_eq!(
        r.topics[0].partitions[0].error_code, 1,
        "beyond the high watermark"
    );
    let r = c
        .call_at(0, describe_partitions(&["bad"], Some(("other", 0))))
        .unwrap();
    assert_eq!(r.topics[0].error_code, 42, "cursor outside the named topics");
    let r = c
        .call_at(0, describe_partitions(&["bad"], Some(("bad", -1))))
        .unwrap();
    assert_eq!(r.topics[0].error_code, 42, "negative cursor partition");

    let after = (disk_state(&broker.data_dir()), described(&mut c, "bad"));
    assert_eq!(after.1, before.1, "described before and after");
    assert!(after.0 == before.0, "files changed on disk");
    // Still serving: produce, then read everything back in order.
    c.produce("bad", 0, batch(5, 5, Compression::None), -1).unwrap();
    let (high, records) = c.fetch("bad", 0, 0, 1 << 20, 100).unwrap();
    assert_eq!(high, 10);
    let offsets: Vec<i64> = decode(&records).into_iter().map(|r| r.0).collect();
    assert_eq!(offsets, (0..10).collect::<Vec<_>>());
}
