//! weir-client: what a Kafka client needs below its transport, shared by the
//! loadgen's pipelined glommio connections and the blocking client in
//! `blocking` (the `weir` admin commands and the broker's integration tests).
//!
//! Owns version negotiation (`versions`), error names and retriability
//! (`error`), request builders (`requests`, `produce`), framing and response
//! checks (`wire`, `responses`) and the consumer-protocol blobs of group
//! membership (`consumer_protocol`). Everything but `blocking` is sans-IO:
//! pure functions and plain data, usable from any thread or executor, with no
//! glommio dependency. Invariant: bytes from a broker never cause a panic or
//! an allocation sized by an unchecked length; they become a `ProtocolError`.

pub mod blocking;
pub mod consumer_protocol;
pub mod error;
pub mod produce;
pub mod requests;
pub mod responses;
pub mod versions;
pub mod wire;

pub use error::{error_name, is_retriable, ProtocolError};
pub use versions::{Negotiation, Step, VersionTable};
