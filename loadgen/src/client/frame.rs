//! Request framing: size prefix + request header (v1 or v2) + body, and a
//! hand-rolled Produce encoder that frames a batch without copying it.
//!
//! Pure functions; any shard. The Produce encoder must produce exactly the bytes
//! `kafka-protocol` would (tested by decoding with it at every version), so the
//! batch `Bytes` can be written to the socket as its own slice.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Encodable, HeaderVersion, StrBytes};

use super::ClientError;

/// The client id every request carries; brokers log it.
pub const CLIENT_ID: &str = "weir-loadgen";
/// First Produce version with flexible encoding (KIP-482).
const PRODUCE_FLEXIBLE_MIN: i16 = 9;
/// First Produce version that names topics by id (KIP-516).
const PRODUCE_TOPIC_ID_MIN: i16 = 13;

/// Frame a request: 4-byte size, header in the version the API requires, body.
pub fn encode_request<R: Encodable + HeaderVersion>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &R,
) -> Result<Bytes, ClientError> {
    let api = api_name(api_key);
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
    let size_bytes = body.compute_size(version).map_err(|e| encode_error(api, e))?;
    let mut buf = BytesMut::with_capacity(64 + size_bytes);
    buf.put_i32(0);
    header
        .encode(&mut buf, R::header_version(version))
        .map_err(|e| encode_error(api, e))?;
    body.encode(&mut buf, version).map_err(|e| encode_error(api, e))?;
    let size = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}

fn encode_error(api: &'static str, e: impl std::fmt::Display) -> ClientError {
    ClientError::Encode {
        api,
        message: e.to_string(),
    }
}

/// Overwrite the correlation id of a framed request (bytes 8..12), for a retry.
pub fn set_correlation_id(frame_prefix: &mut [u8], correlation_id: i32) {
    assert!(
        frame_prefix.len() >= 12,
        "frame prefix shorter than a request header"
    );
    frame_prefix[8..12].copy_from_slice(&correlation_id.to_be_bytes());
}

/// Where a Produce goes: one partition of one topic.
#[derive(Debug, Clone, Copy)]
pub struct ProduceTarget<'a> {
    pub topic: &'a str,
    pub topic_id: [u8; 16],
    pub partition: i32,
    pub acks: i16,
    pub timeout_ms: i32,
}

/// A Produce request for one batch, as three slices written back to back:
/// `prefix` (size, header, body up to the records length), the batch itself,
/// and `suffix` (trailing tagged-field counts). The batch is never copied.
#[derive(Debug, Clone)]
pub struct ProduceFrame {
    pub prefix: BytesMut,
    pub suffix: &'static [u8],
}

/// Encode everything around the batch of `records_bytes` bytes.
pub fn encode_produce(
    target: &ProduceTarget<'_>,
    version: i16,
    correlation_id: i32,
    records_bytes: usize,
) -> ProduceFrame {
    assert!(
        (3..=PRODUCE_TOPIC_ID_MIN).contains(&version),
        "produce v{version} unsupported"
    );
    let flexible = version >= PRODUCE_FLEXIBLE_MIN;
    let mut p = BytesMut::with_capacity(64 + target.topic.len());
    p.put_i32(0);
    p.put_i16(ApiKey::Produce as i16);
    p.put_i16(version);
    p.put_i32(correlation_id);
    p.put_i16(CLIENT_ID.len() as i16);
    p.put_slice(CLIENT_ID.as_bytes());
    if flexible {
        p.put_u8(0); // header tagged fields
        p.put_u8(0); // transactional_id: compact null
    } else {
        p.put_i16(-1); // transactional_id: null
    }
    p.put_i16(target.acks);
    p.put_i32(target.timeout_ms);
    put_array_len(&mut p, flexible, 1);
    if version >= PRODUCE_TOPIC_ID_MIN {
        p.put_slice(&target.topic_id);
    } else if flexible {
        put_uvarint(&mut p, target.topic.len() as u32 + 1);
        p.put_slice(target.topic.as_bytes());
    } else {
        p.put_i16(target.topic.len() as i16);
        p.put_slice(target.topic.as_bytes());
    }
    put_array_len(&mut p, flexible, 1);
    p.put_i32(target.partition);
    if flexible {
        put_uvarint(&mut p, records_bytes as u32 + 1);
    } else {
        p.put_i32(records_bytes as i32);
    }
    // Flexible: partition, topic and request tagged-field sections, all empty.
    let suffix: &'static [u8] = if flexible { &[0, 0, 0] } else { &[] };
    let size = (p.len() - 4 + records_bytes + suffix.len()) as i32;
    p[0..4].copy_from_slice(&size.to_be_bytes());
    ProduceFrame { prefix: p, suffix }
}

fn put_array_len(buf: &mut BytesMut, flexible: bool, len: u32) {
    if flexible {
        put_uvarint(buf, len + 1);
    } else {
        buf.put_i32(len as i32);
    }
}

fn put_uvarint(buf: &mut BytesMut, mut value: u32) {
    while value >= 0x80 {
        buf.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

/// A short name for messages.
pub fn api_name(key: ApiKey) -> &'static str {
    match key {
        ApiKey::Produce => "Produce",
        ApiKey::Fetch => "Fetch",
        ApiKey::ListOffsets => "ListOffsets",
        ApiKey::Metadata => "Metadata",
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::CreateTopics => "CreateTopics",
        _ => "Other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ProduceRequest;
    use kafka_protocol::protocol::Decodable;

    #[test]
    fn given_every_produce_version_when_framing_should_decode_as_kafka_protocol_does() {
        let batch = Bytes::from(vec![7u8; 300]);
        let id = [9u8; 16];
        for version in 3..=13 {
            let target = ProduceTarget {
                topic: "topic-x",
                topic_id: id,
                partition: 5,
                acks: -1,
                timeout_ms: 1234,
            };
            let frame = encode_produce(&target, version, 77, batch.len());
            let mut whole = frame.prefix.to_vec();
            whole.extend_from_slice(&batch);
            whole.extend_from_slice(frame.suffix);
            let size = i32::from_be_bytes(whole[0..4].try_into().unwrap()) as usize;
            assert_eq!(size, whole.len() - 4, "v{version}");
            let mut body = Bytes::from(whole).slice(4..);
            let header = kafka_protocol::protocol::decode_request_header_from_buffer(&mut body).unwrap();
            assert_eq!((header.request_api_version, header.correlation_id), (version, 77));
            let req = ProduceRequest::decode(&mut body, version).unwrap();
            assert!(body.is_empty(), "v{version}: {} trailing bytes", body.len());
            assert_eq!((req.acks, req.timeout_ms), (-1, 1234));
            let topic = &req.topic_data[0];
            if version >= 13 {
                assert_eq!(topic.topic_id.as_bytes(), &id);
            } else {
                assert_eq!(topic.name.0.as_str(), "topic-x");
            }
            assert_eq!(topic.partition_data[0].index, 5);
            assert_eq!(topic.partition_data[0].records.as_ref().unwrap(), &batch);
        }
    }

    #[test]
    fn given_frame_when_setting_correlation_id_should_patch_header_only() {
        let target = ProduceTarget {
            topic: "t",
            topic_id: [0; 16],
            partition: 0,
            acks: 1,
            timeout_ms: 1,
        };
        let mut frame = encode_produce(&target, 7, 1, 0);
        set_correlation_id(&mut frame.prefix, 0x0102_0304);
        assert_eq!(&frame.prefix[8..12], &[1, 2, 3, 4]);
        assert_eq!(&frame.prefix[4..6], &[0, 0]);
    }
}
