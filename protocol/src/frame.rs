//! Kafka framing: a 4-byte big-endian size prefix, then a request or response.
//!
//! Owns the frame size limit check, the request header decode (v1, or v2 with
//! tagged fields for flexible versions) and response encoding (header v0/v1;
//! ApiVersions always v0). Pure: the caller owns sockets and buffers.
//! Invariant: nothing here allocates from a length it has not checked against
//! the frame limit or the bytes actually present.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};

/// Bytes of the size prefix in front of every frame.
pub const SIZE_PREFIX_BYTES: usize = 4;
/// Default largest request frame a broker accepts (the 100 MiB). Above
/// Kafka's `socket.request.max.bytes` default (100 MiB) would invite memory
/// exhaustion from one client.
pub const FRAME_BYTES_MAX_DEFAULT: usize = 100 * 1024 * 1024;
/// The smallest possible request: api_key, api_version, correlation_id.
pub const REQUEST_HEADER_BYTES_MIN: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {size_bytes} bytes exceeds the limit of {limit_bytes}")]
    TooLarge { size_bytes: i64, limit_bytes: usize },
    #[error("frame of {size_bytes} bytes is shorter than a request header")]
    TooSmall { size_bytes: i64 },
    #[error("request header does not decode")]
    BadHeader(#[source] anyhow_error::AnyError),
    #[error("{api_key:?} v{api_version} body does not decode")]
    BadBody {
        api_key: ApiKey,
        api_version: i16,
        #[source]
        source: anyhow_error::AnyError,
    },
    #[error("response does not encode")]
    Encode(#[source] anyhow_error::AnyError),
}

/// kafka-protocol reports errors as `anyhow::Error`; wrap it so our error type
/// keeps the source chain without exposing anyhow in our API.
pub mod anyhow_error {
    #[derive(Debug)]
    pub struct AnyError(pub String);
    impl std::fmt::Display for AnyError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }
    impl std::error::Error for AnyError {}
    pub(crate) fn wrap(e: impl std::fmt::Display) -> AnyError {
        AnyError(format!("{e:#}"))
    }
}
use anyhow_error::wrap;

/// Validate a size prefix before any buffer is sized from it.
pub fn frame_size(prefix: [u8; SIZE_PREFIX_BYTES], limit_bytes: usize) -> Result<usize, FrameError> {
    let size = i32::from_be_bytes(prefix);
    if size < 0 || size as usize > limit_bytes {
        return Err(FrameError::TooLarge {
            size_bytes: i64::from(size),
            limit_bytes,
        });
    }
    if (size as usize) < REQUEST_HEADER_BYTES_MIN {
        return Err(FrameError::TooSmall {
            size_bytes: i64::from(size),
        });
    }
    Ok(size as usize)
}

/// The first three header fields, readable for any api key, even an unknown
/// one: enough to answer UNSUPPORTED_VERSION with the right correlation id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderPrefix {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

pub fn header_prefix(frame: &[u8]) -> Option<HeaderPrefix> {
    let b = frame.get(..REQUEST_HEADER_BYTES_MIN)?;
    Some(HeaderPrefix {
        api_key: i16::from_be_bytes([b[0], b[1]]),
        api_version: i16::from_be_bytes([b[2], b[3]]),
        correlation_id: i32::from_be_bytes([b[4], b[5], b[6], b[7]]),
    })
}

/// A decoded request: its header and body. `body` holds `Bytes` slices of the
/// frame (Produce records are not copied).
#[derive(Debug)]
pub struct Request {
    pub api_key: ApiKey,
    pub header: RequestHeader,
    pub body: RequestKind,
    /// Bytes after the body that no field claimed (tolerated, see `decode_request`).
    pub trailing_bytes: usize,
}

/// Decode the header of a frame (without its size prefix) for a known api key.
pub fn decode_header(
    frame: &mut Bytes,
    api_key: ApiKey,
    api_version: i16,
) -> Result<RequestHeader, FrameError> {
    let header_version = api_key.request_header_version(api_version);
    RequestHeader::decode(frame, header_version).map_err(|e| FrameError::BadHeader(wrap(e)))
}

/// Decode a whole request frame (without its size prefix). The caller has
/// checked the version is one it supports.
pub fn decode_request(mut frame: Bytes, api_key: ApiKey, api_version: i16) -> Result<Request, FrameError> {
    let header = decode_header(&mut frame, api_key, api_version)?;
    let body = RequestKind::decode(api_key, &mut frame, api_version).map_err(|e| FrameError::BadBody {
        api_key,
        api_version,
        source: wrap(e),
    })?;
    // Trailing bytes are ignored, as Apache Kafka does: librdkafka 2.16 sends
    // Metadata v12 "all topics" requests with 3 stray bytes after the body
    // (fixture confluent-kafka-2.16/admin/007-Metadata-v12.req).
    Ok(Request {
        api_key,
        header,
        body,
        trailing_bytes: frame.len(),
    })
}

/// Header version of a response: flexible versions use v1, except ApiVersions,
/// which is always v0 so a client can parse it before it knows our versions.
pub fn response_header_version(api_key: ApiKey, api_version: i16) -> i16 {
    if api_key == ApiKey::ApiVersions {
        0
    } else {
        api_key.response_header_version(api_version)
    }
}

/// Encode a response frame, size prefix included, appending to `out`.
pub fn encode_response(
    out: &mut BytesMut,
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<(), FrameError> {
    let start = out.len();
    out.put_u32(0);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    header
        .encode(out, response_header_version(api_key, api_version))
        .map_err(|e| FrameError::Encode(wrap(e)))?;
    body.encode(out, api_version)
        .map_err(|e| FrameError::Encode(wrap(e)))?;
    let size = out.len() - start - SIZE_PREFIX_BYTES;
    out[start..start + SIZE_PREFIX_BYTES].copy_from_slice(&(size as u32).to_be_bytes());
    Ok(())
}

/// Encode a response frame as parts to write in order, keeping large `Bytes`
/// fields (Fetch records) by reference: see `chunked`. The size is computed
/// first because a shared part cannot be back-patched.
pub fn encode_response_parts<T: Encodable>(
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
    body: &T,
) -> Result<Vec<Bytes>, FrameError> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_version = response_header_version(api_key, api_version);
    let size = header
        .compute_size(header_version)
        .map_err(|e| FrameError::Encode(wrap(e)))?
        + body
            .compute_size(api_version)
            .map_err(|e| FrameError::Encode(wrap(e)))?;
    let size = u32::try_from(size).map_err(|_| FrameError::Encode(wrap("response over 4 GiB")))?;
    let mut out = crate::chunked::ChunkedBuf::with_capacity(4096);
    out.put_u32(size);
    header
        .encode(&mut out, header_version)
        .map_err(|e| FrameError::Encode(wrap(e)))?;
    body.encode(&mut out, api_version)
        .map_err(|e| FrameError::Encode(wrap(e)))?;
    if out.len() != size as usize + SIZE_PREFIX_BYTES {
        return Err(FrameError::Encode(wrap(format!(
            "{api_key:?} v{api_version}: computed size {size} differs from the encoding ({} bytes)",
            out.len() - SIZE_PREFIX_BYTES
        ))));
    }
    Ok(out.into_parts())
}

/// Encode a request frame, size prefix included (used by Weir's own client,
/// the CLI and the tests).
pub fn encode_request(
    out: &mut BytesMut,
    header: &RequestHeader,
    body: &RequestKind,
) -> Result<(), FrameError> {
    let api_key = ApiKey::try_from(header.request_api_key)
        .map_err(|()| FrameError::Encode(wrap(format!("unknown api key {}", header.request_api_key))))?;
    let version = header.request_api_version;
    let start = out.len();
    out.put_u32(0);
    header
        .encode(out, api_key.request_header_version(version))
        .map_err(|e| FrameError::Encode(wrap(e)))?;
    body.encode(out, version)
        .map_err(|e| FrameError::Encode(wrap(e)))?;
    let size = out.len() - start - SIZE_PREFIX_BYTES;
    out[start..start + SIZE_PREFIX_BYTES].copy_from_slice(&(size as u32).to_be_bytes());
    Ok(())
}

/// Decode a response frame body (after the size prefix) for `api_key` at `api_version`.
pub fn decode_response(
    mut frame: Bytes,
    api_key: ApiKey,
    api_version: i16,
) -> Result<(ResponseHeader, ResponseKind), FrameError> {
    let header = ResponseHeader::decode(&mut frame, response_header_version(api_key, api_version))
        .map_err(|e| FrameError::BadHeader(wrap(e)))?;
    let body = ResponseKind::decode(api_key, &mut frame, api_version).map_err(|e| FrameError::BadBody {
        api_key,
        api_version,
        source: wrap(e),
    })?;
    Ok((header, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

    #[test]
    fn given_a_negative_or_huge_size_when_checked_should_refuse_before_allocating() {
        assert!(matches!(
            frame_size((-1i32).to_be_bytes(), 1024),
            Err(FrameError::TooLarge { .. })
        ));
        assert!(matches!(
            frame_size(2048i32.to_be_bytes(), 1024),
            Err(FrameError::TooLarge { .. })
        ));
        assert!(matches!(
            frame_size(3i32.to_be_bytes(), 1024),
            Err(FrameError::TooSmall { .. })
        ));
        assert_eq!(frame_size(100i32.to_be_bytes(), 1024).unwrap(), 100);
    }

    #[test]
    fn given_a_request_when_encoded_and_decoded_should_round_trip() {
        let header = RequestHeader::default()
            .with_request_api_key(ApiKey::ApiVersions as i16)
            .with_request_api_version(3)
            .with_correlation_id(7)
            .with_client_id(Some("weir-test".into()));
        let body = RequestKind::ApiVersions(ApiVersionsRequest::default());
        let mut out = BytesMut::new();
        encode_request(&mut out, &header, &body).unwrap();
        let size = frame_size(out[..4].try_into().unwrap(), 1 << 20).unwrap();
        assert_eq!(size + 4, out.len());
        let frame = out.freeze().slice(4..);
        let prefix = header_prefix(&frame).unwrap();
        assert_eq!(
            (prefix.api_key, prefix.api_version, prefix.correlation_id),
            (18, 3, 7)
        );
        let req = decode_request(frame, ApiKey::ApiVersions, 3).unwrap();
        assert_eq!(req.header, header);
    }

    #[test]
    fn given_an_api_versions_response_when_encoded_should_use_header_v0() {
        let mut out = BytesMut::new();
        let body = ResponseKind::ApiVersions(ApiVersionsResponse::default());
        encode_response(&mut out, ApiKey::ApiVersions, 3, 9, &body).unwrap();
        // size, correlation id, then the body straight away (no tagged-field byte).
        assert_eq!(&out[4..8], &9i32.to_be_bytes());
        let (h, _) = decode_response(out.freeze().slice(4..), ApiKey::ApiVersions, 3).unwrap();
        assert_eq!(h.correlation_id, 9);
    }
}
