//! The blocking transport against a scripted fake broker on loopback: the
//! KIP-511 fallback end to end, and bad answers (another correlation id, an
//! oversize prefix, a frame cut short, a Produce answer without our
//! partition) as typed errors, never panics.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::thread::JoinHandle;

use bytes::BytesMut;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsResponse, MetadataResponse, ProduceResponse, ResponseKind};
use weir_protocol::frame::{encode_response, header_prefix};

use super::*;

/// Answers the request it is given (its correlation id and version) with bytes.
type Reply = Box<dyn Fn(i32, i16) -> Vec<u8> + Send>;

/// Serves one connection: each request read gets the next reply; the versions
/// the requests were sent at are returned by the thread.
fn fake_broker(replies: Vec<Reply>) -> (SocketAddr, JoinHandle<Vec<i16>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut versions = Vec::new();
        for reply in replies {
            let mut prefix = [0u8; 4];
            if stream.read_exact(&mut prefix).is_err() {
                break;
            }
            let mut frame = vec![0u8; u32::from_be_bytes(prefix) as usize];
            stream.read_exact(&mut frame).unwrap();
            let h = header_prefix(&frame).unwrap();
            versions.push(h.api_version);
            stream.write_all(&reply(h.correlation_id, h.api_version)).unwrap();
        }
        versions
    });
    (addr, handle)
}

fn respond(api: ApiKey, version: i16, correlation_id: i32, body: ResponseKind) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_response(&mut out, api, version, correlation_id, &body).unwrap();
    out.to_vec()
}

/// An ApiVersions answer listing every API the client speaks, ApiVersions up to `max`.
fn api_versions(code: i16, max: i16) -> Reply {
    Box::new(move |corr, version| {
        let keys = crate::versions::CLIENT_APIS
            .iter()
            .map(|r| {
                let hi = if r.key == ApiKey::ApiVersions { max } else { r.max };
                ApiVersion::default()
                    .with_api_key(r.key as i16)
                    .with_min_version(r.min)
                    .with_max_version(hi)
            })
            .collect();
        let body = ApiVersionsResponse::default()
            .with_error_code(code)
            .with_api_keys(keys);
        let encode_at = if code == 0 { version } else { 0 };
        respond(
            ApiKey::ApiVersions,
            encode_at,
            corr,
            ResponseKind::ApiVersions(body),
        )
    })
}

fn connect(addr: SocketAddr) -> Client {
    Client::connect(addr, Duration::from_secs(5)).unwrap()
}

#[test]
fn given_a_broker_rejecting_our_api_versions_version_when_connecting_should_retry_at_its_max() {
    let (addr, broker) = fake_broker(vec![api_versions(35, 2), api_versions(0, 2)]);
    let client = connect(addr);
    assert_eq!(client.version(ApiKey::Fetch).unwrap(), 18);
    drop(client);
    assert_eq!(broker.join().unwrap(), vec![4, 2]);
}

#[test]
fn given_an_answer_with_another_correlation_id_when_called_should_be_a_protocol_error() {
    let metadata: Reply = Box::new(|corr, version| {
        let body = ResponseKind::Metadata(MetadataResponse::default());
        respond(ApiKey::Metadata, version, corr + 1, body)
    });
    let (addr, _broker) = fake_broker(vec![api_versions(0, 4), metadata]);
    match connect(addr).metadata(None) {
        Err(ClientError::Protocol(ProtocolError::Correlation { expected, got })) => {
            assert_eq!(got, expected + 1);
        }
        other => panic!("expected a correlation error, got {other:?}"),
    }
}

#[test]
fn given_an_oversize_length_prefix_when_called_should_refuse_it_before_reading_on() {
    let huge: Reply = Box::new(|_, _| i32::MAX.to_be_bytes().to_vec());
    let (addr, _broker) = fake_broker(vec![api_versions(0, 4), huge]);
    match connect(addr).metadata(None) {
        Err(ClientError::Protocol(ProtocolError::FrameSize { size_bytes, .. })) => {
            assert_eq!(size_bytes, i64::from(i32::MAX));
        }
        other => panic!("expected a frame size error, got {other:?}"),
    }
}

#[test]
fn given_an_answer_cut_short_when_called_should_be_an_error_not_a_panic() {
    let cut: Reply = Box::new(|corr, version| {
        let mut whole = respond(
            ApiKey::Metadata,
            version,
            corr,
            ResponseKind::Metadata(MetadataResponse::default()),
        );
        whole.truncate(whole.len() - 1);
        let size = (whole.len() - 4) as u32;
        whole[..4].copy_from_slice(&size.to_be_bytes());
        whole
    });
    let (addr, _broker) = fake_broker(vec![api_versions(0, 4), cut]);
    let e = connect(addr).metadata(None).unwrap_err();
    assert!(
        matches!(e, ClientError::Protocol(ProtocolError::Decode { .. })),
        "{e:?}"
    );
}

#[test]
fn given_a_produce_answer_without_our_partition_when_producing_should_say_what_is_missing() {
    let empty: Reply = Box::new(|corr, version| {
        respond(
            ApiKey::Produce,
            version,
            corr,
            ResponseKind::Produce(ProduceResponse::default()),
        )
    });
    let (addr, broker) = fake_broker(vec![api_versions(0, 4), empty]);
    let e = connect(addr)
        .produce("t", 3, Bytes::from_static(b"batch"), 1)
        .unwrap_err();
    assert!(
        matches!(e, ClientError::Protocol(ProtocolError::Missing { .. })),
        "{e:?}"
    );
    // Topics are named, so Produce stays at v12 even though both sides speak 13.
    assert_eq!(broker.join().unwrap(), vec![4, 12]);
}
