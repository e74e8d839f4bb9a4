//! The one place where broker-side failures become Kafka error codes.

use kafka_protocol::ResponseError;
use weir_protocol::record_batch::BatchError;

use crate::log::producers::SequenceError;
use crate::log::LogError;

/// Kafka's "no error".
pub const NONE: i16 = 0;

pub fn code(e: ResponseError) -> i16 {
    e.code()
}

/// Map a log failure to the error code a Produce/Fetch partition carries.
pub fn log_error_code(e: &LogError) -> i16 {
    match e {
        LogError::Batch(BatchError::TooLarge { .. }) | LogError::TooLarge { .. } => {
            ResponseError::MessageTooLarge.code()
        }
        LogError::Batch(_) => ResponseError::CorruptMessage.code(),
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange.code(),
        LogError::Closed => ResponseError::NotLeaderOrFollower.code(),
        LogError::Sequence(SequenceError::OutOfOrder { .. }) => {
            ResponseError::OutOfOrderSequenceNumber.code()
        }
        LogError::Sequence(SequenceError::StaleEpoch { .. }) => ResponseError::InvalidProducerEpoch.code(),
        LogError::Sequence(SequenceError::InvalidTxnState { .. }) => ResponseError::InvalidTxnState.code(),
        LogError::ControlBatch => ResponseError::InvalidRecord.code(),
        _ => ResponseError::KafkaStorageError.code(),
    }
}

/// An error and its sources on one line, for log lines.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}
