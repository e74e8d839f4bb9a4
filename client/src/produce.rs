//! Zero-copy Produce framing: everything of a one-batch Produce request around
//! the batch, so a transport writes `prefix`, the batch's own `Bytes` and
//! `suffix` back to back and the batch is never copied.
//!
//! Pure; any thread. Invariant: the three slices are exactly the bytes
//! kafka-protocol would encode for the same request at every version we
//! speak (tested by decoding them with it).

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::ApiKey;

use crate::requests::TOPIC_NAMES_VERSION_MAX;
use crate::versions::client_range;

/// First Produce version with flexible encoding (KIP-482).
const PRODUCE_FLEXIBLE_MIN: i16 = 9;

/// Where a Produce goes (one partition of one topic) and how it is acked.
#[derive(Debug, Clone, Copy)]
pub struct ProduceTarget<'a> {
    pub client_id: &'a str,
    pub topic: &'a str,
    pub topic_id: [u8; 16],
    pub partition: i32,
    pub acks: i16,
    pub timeout_ms: i32,
    /// A transactional producer's id (its batches carry the transactional
    /// bit); `None` for every other producer.
    pub transactional_id: Option<&'a str>,
}

/// A Produce request for one batch, less the batch: `prefix` (size, header,
/// body up to the records length) and `suffix` (trailing tagged fields).
#[derive(Debug, Clone)]
pub struct ProduceFrame {
    pub prefix: BytesMut,
    pub suffix: &'static [u8],
}

/// Frame everything around a batch of `records_bytes` bytes. `version` is a
/// negotiated one, so within `CLIENT_APIS`.
pub fn encode_produce(
    target: &ProduceTarget<'_>,
    version: i16,
    correlation_id: i32,
    records_bytes: usize,
) -> ProduceFrame {
    let ours = client_range(ApiKey::Produce).expect("the client speaks Produce");
    assert!(
        (ours.min..=ours.max).contains(&version),
        "produce v{version} unsupported"
    );
    let flexible = version >= PRODUCE_FLEXIBLE_MIN;
    let txn_id_bytes = target.transactional_id.map_or(0, str::len);
    let mut p = BytesMut::with_capacity(64 + target.topic.len() + target.client_id.len() + txn_id_bytes);
    p.put_i32(0);
    p.put_i16(ApiKey::Produce as i16);
    p.put_i16(version);
    p.put_i32(correlation_id);
    p.put_i16(target.client_id.len() as i16);
    p.put_slice(target.client_id.as_bytes());
    if flexible {
        p.put_u8(0); // header tagged fields
    }
    match target.transactional_id {
        Some(id) => put_string(&mut p, flexible, id),
        None if flexible => p.put_u8(0), // compact null
        None => p.put_i16(-1),
    }
    p.put_i16(target.acks);
    p.put_i32(target.timeout_ms);
    put_array_len(&mut p, flexible, 1);
    if version > TOPIC_NAMES_VERSION_MAX {
        p.put_slice(&target.topic_id);
    } else {
        put_string(&mut p, flexible, target.topic);
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

fn put_string(buf: &mut BytesMut, flexible: bool, s: &str) {
    if flexible {
        put_uvarint(buf, s.len() as u32 + 1);
    } else {
        buf.put_i16(s.len() as i16);
    }
    buf.put_slice(s.as_bytes());
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

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kafka_protocol::messages::ProduceRequest;
    use kafka_protocol::protocol::Decodable;

    #[test]
    fn given_every_produce_version_when_framing_should_decode_as_kafka_protocol_does() {
        let batch = Bytes::from(vec![7u8; 300]);
        let id = [9u8; 16];
        let ours = client_range(ApiKey::Produce).unwrap();
        for (version, transactional_id) in (ours.min..=ours.max).flat_map(|v| [(v, None), (v, Some("txn-7"))])
        {
            let target = ProduceTarget {
                client_id: "weir-test",
                topic: "topic-x",
                topic_id: id,
                partition: 5,
                acks: -1,
                timeout_ms: 1234,
                transactional_id,
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
            assert_eq!(header.client_id.as_deref(), Some("weir-test"));
            let req = ProduceRequest::decode(&mut body, version).unwrap();
            assert!(body.is_empty(), "v{version}: {} trailing bytes", body.len());
            assert_eq!((req.acks, req.timeout_ms), (-1, 1234));
            assert_eq!(
                req.transactional_id.as_ref().map(|t| t.0.as_str()),
                transactional_id
            );
            let topic = &req.topic_data[0];
            if version > TOPIC_NAMES_VERSION_MAX {
                assert_eq!(topic.topic_id.as_bytes(), &id);
            } else {
                assert_eq!(topic.name.0.as_str(), "topic-x");
            }
            assert_eq!(topic.partition_data[0].index, 5);
            assert_eq!(topic.partition_data[0].records.as_ref().unwrap(), &batch);
        }
    }
}
