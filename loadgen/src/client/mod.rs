//! A Kafka client just big enough to load a broker: framing, pipelined
//! connections, ApiVersions negotiation, metadata, produce and fetch encoding.
//!
//! Everything here lives on one shard (glommio executor); nothing is `Send`
//! except the plain-data `Cluster` handed out by bootstrap. Errors are typed
//! `ClientError`s; a broker's bad bytes never panic.

pub mod cluster;
pub mod conn;
pub mod frame;
pub mod versions;

use std::io;

/// Why a request did not get a usable answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error("connect to {addr} timed out after {timeout_ms} ms")]
    ConnectTimeout { addr: String, timeout_ms: u64 },
    #[error("connection to {addr} failed: {source}")]
    Io {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error("connection to {addr} closed by the broker")]
    Closed { addr: String },
    #[error("{api} request to {addr} got no response within {timeout_ms} ms")]
    Timeout {
        api: &'static str,
        addr: String,
        timeout_ms: u64,
    },
    #[error("cannot encode {api}: {message}")]
    Encode { api: &'static str, message: String },
    #[error("cannot decode {api} response from {addr}: {message}")]
    Decode {
        api: &'static str,
        addr: String,
        message: String,
    },
    #[error("response from {addr} has correlation id {got}, expected {expected}")]
    Correlation { addr: String, expected: i32, got: i32 },
    #[error("response frame of {size_bytes} bytes from {addr} exceeds the limit of {limit_bytes}")]
    FrameTooLarge {
        addr: String,
        size_bytes: usize,
        limit_bytes: usize,
    },
    #[error(
        "broker {addr} supports no version of {api} that this client speaks ({ours} vs broker {theirs})"
    )]
    NoCommonVersion {
        api: &'static str,
        addr: String,
        ours: String,
        theirs: String,
    },
    #[error("{api} failed: broker error {code} ({name}){detail}")]
    Broker {
        api: &'static str,
        code: i16,
        name: &'static str,
        detail: String,
    },
    #[error("topic '{topic}' does not exist (use --create to create it)")]
    UnknownTopic { topic: String },
    #[error("no leader for partition {partition} of '{topic}' after {waited_ms} ms")]
    NoLeader {
        topic: String,
        partition: i32,
        waited_ms: u64,
    },
    #[error("broker id {broker_id} (leader in metadata) is not among the brokers listed")]
    UnknownBroker { broker_id: i32 },
}

/// Kafka error-code names for the codes a load generator meets; the number is
/// always printed too, so an unlisted code is still diagnosable.
pub fn error_name(code: i16) -> &'static str {
    match code {
        -1 => "UNKNOWN_SERVER_ERROR",
        0 => "NONE",
        1 => "OFFSET_OUT_OF_RANGE",
        2 => "CORRUPT_MESSAGE",
        3 => "UNKNOWN_TOPIC_OR_PARTITION",
        5 => "LEADER_NOT_AVAILABLE",
        6 => "NOT_LEADER_OR_FOLLOWER",
        7 => "REQUEST_TIMED_OUT",
        10 => "MESSAGE_TOO_LARGE",
        13 => "NETWORK_EXCEPTION",
        14 => "COORDINATOR_LOAD_IN_PROGRESS",
        17 => "INVALID_TOPIC_EXCEPTION",
        18 => "RECORD_LIST_TOO_LARGE",
        19 => "NOT_ENOUGH_REPLICAS",
        20 => "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
        29 => "TOPIC_AUTHORIZATION_FAILED",
        35 => "UNSUPPORTED_VERSION",
        36 => "TOPIC_ALREADY_EXISTS",
        37 => "INVALID_PARTITIONS",
        42 => "INVALID_REQUEST",
        43 => "UNSUPPORTED_FOR_MESSAGE_FORMAT",
        56 => "KAFKA_STORAGE_ERROR",
        74 => "FENCED_LEADER_EPOCH",
        75 => "UNKNOWN_LEADER_EPOCH",
        76 => "UNSUPPORTED_COMPRESSION_TYPE",
        87 => "INVALID_RECORD",
        89 => "THROTTLING_QUOTA_EXCEEDED",
        100 => "UNKNOWN_TOPIC_ID",
        _ => "UNLISTED",
    }
}

/// Errors after which the same request may succeed (Kafka's RetriableException
/// subclasses among the codes above).
pub fn is_retriable(code: i16) -> bool {
    matches!(code, 3 | 5 | 6 | 7 | 13 | 14 | 19 | 20 | 56 | 74 | 75 | 89 | 100)
}
