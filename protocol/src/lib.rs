//! weir-protocol: the Kafka wire protocol and RecordBatch v2, as pure codecs.
//!
//! Owns: framing, request/response headers, the message schemas Weir speaks
//! (re-exported from the `kafka-protocol` crate), RecordBatch v2 validation,
//! iteration and building, and the compression codecs.
//! Never does I/O, never blocks, never allocates more than a frame allows.

pub mod api;
pub mod builder;
pub mod chunked;
pub mod compression;
pub mod control;
pub mod frame;
pub mod legacy;
pub mod lz4_frame;
pub mod queue_headers;
pub mod record_batch;
pub mod records;
pub mod scram;
pub mod varint;

pub use kafka_protocol;
