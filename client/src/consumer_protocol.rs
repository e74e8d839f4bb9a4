//! The `consumer` protocol's opaque group blobs: a member's subscription
//! (JoinGroup metadata) and its assignment (SyncGroup), each an i16 version
//! then the struct, as the Java client and librdkafka write them.
//!
//! Pure; any thread. Decoding bytes from a broker returns `None` for anything
//! that is not such a blob, never panics.

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::requests::{sb, topic_name};

/// The version we write; readers of any version decode it.
const WRITE_VERSION: i16 = 1;
/// The newest version we know; newer ones only append fields, so they are
/// decoded as this one.
const READ_VERSION_MAX: i16 = 3;

/// A subscription to `topics`.
pub fn encode_subscription(topics: &[&str]) -> Bytes {
    let s = ConsumerProtocolSubscription::default().with_topics(topics.iter().map(|t| sb(t)).collect());
    encode_versioned(&s)
}

/// An assignment: topic -> partitions.
pub fn encode_assignment(assignment: &[(String, Vec<i32>)]) -> Bytes {
    let a = ConsumerProtocolAssignment::default().with_assigned_partitions(
        assignment
            .iter()
            .map(|(t, ps)| {
                TopicPartition::default()
                    .with_topic(topic_name(t))
                    .with_partitions(ps.clone())
            })
            .collect(),
    );
    encode_versioned(&a)
}

fn encode_versioned<M: Encodable>(m: &M) -> Bytes {
    let mut out = BytesMut::new();
    out.extend_from_slice(&WRITE_VERSION.to_be_bytes());
    m.encode(&mut out, WRITE_VERSION)
        .expect("a consumer protocol struct built here always encodes");
    out.freeze()
}

/// The version prefix, and the bytes after it.
fn versioned(bytes: &Bytes) -> Option<(i16, Bytes)> {
    let mut buf = bytes.clone();
    if buf.remaining() < 2 {
        return None;
    }
    let version = buf.get_i16();
    Some((version.clamp(0, READ_VERSION_MAX), buf))
}

/// An assignment's topic -> partitions; `None` when the bytes are not one
/// (another protocol type, or empty because the group is rebalancing).
pub fn decode_assignment(bytes: &Bytes) -> Option<Vec<(String, Vec<i32>)>> {
    let (version, mut buf) = versioned(bytes)?;
    let a = ConsumerProtocolAssignment::decode(&mut buf, version).ok()?;
    Some(
        a.assigned_partitions
            .into_iter()
            .map(|tp| (tp.topic.0.to_string(), tp.partitions))
            .collect(),
    )
}

/// A subscription's topics; `None` when the bytes are not one.
pub fn decode_subscription(bytes: &Bytes) -> Option<Vec<String>> {
    let (version, mut buf) = versioned(bytes)?;
    let s = ConsumerProtocolSubscription::decode(&mut buf, version).ok()?;
    Some(s.topics.into_iter().map(|t| t.to_string()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_blobs_when_round_tripped_should_keep_topics_and_partitions() {
        let s = encode_subscription(&["a", "b"]);
        assert_eq!(decode_subscription(&s).unwrap(), vec!["a", "b"]);
        let assignment = vec![("a".to_string(), vec![0, 2]), ("b".to_string(), vec![1])];
        assert_eq!(
            decode_assignment(&encode_assignment(&assignment)).unwrap(),
            assignment
        );
    }

    #[test]
    fn given_truncated_blobs_when_decoded_should_be_none() {
        let a = encode_assignment(&[("topic".to_string(), vec![0, 1, 2])]);
        for len in 0..a.len() {
            assert!(decode_assignment(&a.slice(..len)).is_none(), "{len}");
        }
        assert!(decode_subscription(&Bytes::new()).is_none());
    }
}
