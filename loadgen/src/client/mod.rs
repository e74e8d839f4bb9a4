//! The loadgen's transport: pipelined glommio connections (`conn`) and the
//! bootstrap that finds the topic's partition leaders (`cluster`). What lies
//! below the transport (version negotiation, request builders and framing,
//! response checks, error names and retriability) is `weir_client`'s.
//!
//! Everything here lives on one shard (glommio executor); nothing is `Send`
//! except the plain-data `Cluster` handed out by bootstrap. Errors are typed
//! `ClientError`s; a broker's bad bytes never panic.

pub mod cluster;
pub mod conn;
mod frames;

use std::io;

use weir_client::ProtocolError;

/// The client id on every request; brokers log it.
pub const CLIENT_ID: &str = "weir-loadgen";

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
        api: String,
        addr: String,
        timeout_ms: u64,
    },
    /// Framing, decoding, version or broker-error trouble, from `addr` (empty
    /// when no one connection is to blame).
    #[error("{source}{}", from_addr(.addr))]
    Protocol {
        addr: String,
        #[source]
        source: ProtocolError,
    },
    #[error("fetched partition {partition}: bad record batch: {message}")]
    BadRecords { partition: i32, message: String },
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

fn from_addr(addr: &str) -> String {
    if addr.is_empty() {
        String::new()
    } else {
        format!(" (broker {addr})")
    }
}

impl ClientError {
    pub fn protocol(addr: &str, source: ProtocolError) -> Self {
        Self::Protocol {
            addr: addr.to_string(),
            source,
        }
    }
}
