//! Framing on the client side: requests out through `weir_protocol::frame`,
//! responses in with their checks. A response's size prefix is refused above
//! a bound before any buffer is sized from it; its correlation id must be the
//! one the request carried (Kafka answers in order per connection, so any
//! other id means the stream is out of step and must be dropped); its header
//! and body must decode completely from the bytes present.
//!
//! Pure; any thread. The transports own sockets, buffers and timeouts.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader};
use kafka_protocol::protocol::{Decodable, StrBytes};
use weir_protocol::frame;

use crate::error::ProtocolError;

/// Bytes of the size prefix in front of every frame.
pub const SIZE_PREFIX_BYTES: usize = frame::SIZE_PREFIX_BYTES;
/// The largest response a client accepts by default: a Fetch is capped at
/// 64 MiB by the loadgen's own request (and far less by the blocking client),
/// plus headers. Anything larger is a broker bug or garbage.
pub const RESPONSE_BYTES_MAX: usize = 80 << 20;
/// A response carries at least its correlation id.
const RESPONSE_BYTES_MIN: usize = 4;

/// Frame a request: size prefix, header (in the version `api` requires at
/// `version`), body.
pub fn encode_request(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: &'static str,
    body: &RequestKind,
) -> Result<Bytes, ProtocolError> {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(client_id)));
    let mut out = BytesMut::with_capacity(256);
    frame::encode_request(&mut out, &header, body).map_err(|source| ProtocolError::Encode {
        api,
        version,
        source,
    })?;
    Ok(out.freeze())
}

/// The size of the response that `prefix` announces, refused outside
/// 4..=`limit_bytes` so that the caller may then allocate it.
pub fn response_size(prefix: [u8; SIZE_PREFIX_BYTES], limit_bytes: usize) -> Result<usize, ProtocolError> {
    let size = i32::from_be_bytes(prefix);
    match usize::try_from(size) {
        Ok(s) if (RESPONSE_BYTES_MIN..=limit_bytes).contains(&s) => Ok(s),
        _ => Err(ProtocolError::FrameSize {
            size_bytes: i64::from(size),
            limit_bytes,
        }),
    }
}

/// The correlation id a response frame (after its size prefix) carries.
pub fn correlation_id(frame: &[u8]) -> Option<i32> {
    let b = frame.get(0..4)?;
    Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Check a response frame (after its size prefix) against the request it
/// answers and strip its header; returns the body.
pub fn response_body(
    mut frame: Bytes,
    expected_correlation_id: i32,
    api: ApiKey,
    version: i16,
) -> Result<Bytes, ProtocolError> {
    let got = correlation_id(&frame).ok_or_else(|| ProtocolError::FrameSize {
        size_bytes: frame.len() as i64,
        limit_bytes: RESPONSE_BYTES_MAX,
    })?;
    if got != expected_correlation_id {
        return Err(ProtocolError::Correlation {
            expected: expected_correlation_id,
            got,
        });
    }
    ResponseHeader::decode(&mut frame, frame::response_header_version(api, version)).map_err(|e| {
        ProtocolError::Decode {
            api,
            version,
            message: format!("response header: {e:#}"),
        }
    })?;
    Ok(frame)
}

/// Decode a response body of `api` at `version`.
pub fn decode_body<T: Decodable>(mut body: Bytes, api: ApiKey, version: i16) -> Result<T, ProtocolError> {
    T::decode(&mut body, version).map_err(|e| ProtocolError::Decode {
        api,
        version,
        message: format!("{e:#}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse, MetadataRequest};

    #[test]
    fn given_a_request_when_framed_should_carry_size_header_and_body() {
        let body = RequestKind::Metadata(MetadataRequest::default());
        let frame = encode_request(ApiKey::Metadata, 12, 42, "t", &body).unwrap();
        let size = response_size(frame[..4].try_into().unwrap(), usize::MAX).unwrap();
        assert_eq!(size, frame.len() - 4);
        let mut rest = frame.slice(4..);
        let header = kafka_protocol::protocol::decode_request_header_from_buffer(&mut rest).unwrap();
        assert_eq!((header.request_api_version, header.correlation_id), (12, 42));
        assert_eq!(header.client_id.as_deref(), Some("t"));
    }

    #[test]
    fn given_size_prefixes_when_checked_should_refuse_negative_tiny_and_oversize() {
        assert_eq!(response_size(8i32.to_be_bytes(), 100).unwrap(), 8);
        assert_eq!(response_size(100i32.to_be_bytes(), 100).unwrap(), 100);
        for bad in [-1, i32::MIN, 0, 3, 101, i32::MAX] {
            let e = response_size(bad.to_be_bytes(), 100).unwrap_err();
            assert!(matches!(e, ProtocolError::FrameSize { .. }), "{bad}: {e}");
        }
        // The real bound: 2 GiB announced is refused, nothing is allocated for it.
        assert!(response_size(i32::MAX.to_be_bytes(), RESPONSE_BYTES_MAX).is_err());
    }

    #[test]
    fn given_another_correlation_id_when_checked_should_be_an_error() {
        let frame = Bytes::from_static(&[0, 0, 0, 7, 0, 0]);
        assert!(response_body(frame.clone(), 7, ApiKey::ApiVersions, 3).is_ok());
        match response_body(frame, 8, ApiKey::ApiVersions, 3) {
            Err(ProtocolError::Correlation { expected: 8, got: 7 }) => {}
            other => panic!("expected a correlation error, got {other:?}"),
        }
    }

    #[test]
    fn given_a_frame_shorter_than_its_header_when_checked_should_be_an_error() {
        for frame in [&[][..], &[0, 0], &[0, 0, 0]] {
            assert!(response_body(Bytes::copy_from_slice(frame), 0, ApiKey::Metadata, 1).is_err());
        }
        // Metadata v12 has a v1 header: correlation id, then tagged fields.
        assert!(response_body(Bytes::from_static(&[0, 0, 0, 0]), 0, ApiKey::Metadata, 12).is_err());
    }

    #[test]
    fn given_a_body_when_decoded_with_the_wrong_schema_should_be_an_error() {
        let request = RequestKind::ApiVersions(ApiVersionsRequest::default());
        let frame = encode_request(ApiKey::ApiVersions, 3, 1, "t", &request).unwrap();
        let decoded: Result<ApiVersionsResponse, _> = decode_body(frame.slice(4..6), ApiKey::ApiVersions, 3);
        assert!(decoded.is_err());
    }
}
