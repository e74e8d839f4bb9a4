//! The errors a client meets below its transport, and the names and
//! retriability of Kafka error codes.
//!
//! Pure; any thread. Names and retriability come from `kafka_protocol`'s
//! `ResponseError` (Kafka's own table), never from a hand-kept list, so a code
//! we did not anticipate is still named and classified as Kafka does.

use kafka_protocol::error::ParseResponseErrorCode;
use kafka_protocol::messages::ApiKey;

/// Why a request could not be framed or its answer could not be used. The
/// transport adds where it happened (the broker's address).
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("cannot encode {api:?} v{version}")]
    Encode {
        api: ApiKey,
        version: i16,
        #[source]
        source: weir_protocol::frame::FrameError,
    },
    #[error("cannot decode {api:?} v{version} response: {message}")]
    Decode {
        api: ApiKey,
        version: i16,
        message: String,
    },
    #[error("response has correlation id {got}, expected {expected}")]
    Correlation { expected: i32, got: i32 },
    #[error("response frame size {size_bytes} is outside 4..={limit_bytes} bytes")]
    FrameSize { size_bytes: i64, limit_bytes: usize },
    #[error("{api:?} response lacks {what}")]
    Missing { api: ApiKey, what: String },
    #[error(
        "the broker supports no version of {api:?} that this client speaks (ours {ours}, broker's {theirs})"
    )]
    NoCommonVersion {
        api: ApiKey,
        ours: String,
        theirs: String,
    },
    #[error("{api:?} failed: broker error {code} ({name}){detail}")]
    Broker {
        api: ApiKey,
        code: i16,
        name: String,
        detail: String,
    },
}

impl ProtocolError {
    /// The broker answered `api` with a non-zero error `code`; `detail` (may be
    /// empty) is appended to the message as is.
    pub fn broker(api: ApiKey, code: i16, detail: impl Into<String>) -> Self {
        Self::Broker {
            api,
            code,
            name: error_name(code),
            detail: detail.into(),
        }
    }

    /// The Kafka error code, when the broker sent one.
    pub fn code(&self) -> Option<i16> {
        match self {
            Self::Broker { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Kafka's name of an error code as its documentation spells it
/// (`NOT_LEADER_OR_FOLLOWER`), `NONE` for 0, `UNKNOWN_CODE` for a code newer
/// than our schemas.
pub fn error_name(code: i16) -> String {
    match code.err() {
        None => "NONE".to_string(),
        Some(kafka_protocol::ResponseError::Unknown(_)) => "UNKNOWN_CODE".to_string(),
        Some(e) => screaming_snake(&e.to_string()),
    }
}

/// Whether the same request may succeed later (Kafka's RetriableException).
pub fn is_retriable(code: i16) -> bool {
    code.err().is_some_and(|e| e.is_retriable())
}

/// `Ok` for 0, else the broker error for `api`.
pub fn check(api: ApiKey, code: i16) -> Result<(), ProtocolError> {
    if code == 0 {
        Ok(())
    } else {
        Err(ProtocolError::broker(api, code, ""))
    }
}

/// `NotLeaderOrFollower` -> `NOT_LEADER_OR_FOLLOWER`: `ResponseError` displays
/// its variant name, Kafka's docs and logs use the upper snake case.
fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_codes_when_named_should_use_kafkas_names() {
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(6), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(error_name(17), "INVALID_TOPIC_EXCEPTION");
        assert_eq!(error_name(56), "KAFKA_STORAGE_ERROR");
        assert_eq!(error_name(100), "UNKNOWN_TOPIC_ID");
        assert_eq!(error_name(30_000), "UNKNOWN_CODE");
    }

    #[test]
    fn given_codes_when_classified_should_follow_kafkas_retriable_set() {
        // CORRUPT_MESSAGE (2) included: Kafka's CorruptRecordException is retriable.
        for code in [2, 3, 5, 6, 7, 13, 14, 19, 20, 56, 74, 75, 89, 100] {
            assert!(is_retriable(code), "{code} is retriable");
        }
        for code in [0, -1, 1, 10, 17, 35, 36, 37, 87, 30_000] {
            assert!(!is_retriable(code), "{code} is not retriable");
        }
    }

    #[test]
    fn given_a_non_zero_code_when_checked_should_name_it_in_the_error() {
        assert!(check(ApiKey::Produce, 0).is_ok());
        let e = check(ApiKey::Produce, 36).unwrap_err();
        assert_eq!(e.code(), Some(36));
        assert!(e.to_string().contains("TOPIC_ALREADY_EXISTS"), "{e}");
    }
}
