//! The one place where internal errors become Kafka error codes.

use crate::protocol::batch::BatchError;
use crate::protocol::records::RecordsError;
use crate::protocol::ResponseError;
use crate::router::RouteError;
use crate::storage::producer_state::ProducerError;
use crate::storage::StorageError;

/// The Kafka error code for a failure of routed partition work.
pub fn route_error_code(e: &RouteError) -> ResponseError {
    match e {
        RouteError::NotOwner => ResponseError::NotLeaderOrFollower,
        RouteError::Unreachable(_) => ResponseError::NotLeaderOrFollower,
        RouteError::NotCoordinator => ResponseError::NotCoordinator,
        RouteError::CoordinatorLoading => ResponseError::CoordinatorLoadInProgress,
        RouteError::CoordinatorUnavailable => ResponseError::CoordinatorNotAvailable,
        RouteError::TimedOut => ResponseError::RequestTimedOut,
        RouteError::NotEnoughReplicas { appended: false, .. } => ResponseError::NotEnoughReplicas,
        RouteError::NotEnoughReplicas { appended: true, .. } => ResponseError::NotEnoughReplicasAfterAppend,
        RouteError::Storage(s) => storage_error_code(s),
        RouteError::Producer(p) => producer_error_code(p),
    }
}

pub fn producer_error_code(e: &ProducerError) -> ResponseError {
    match e {
        ProducerError::InvalidEpoch { .. } => ResponseError::InvalidProducerEpoch,
        ProducerError::OutOfOrder { .. } => ResponseError::OutOfOrderSequenceNumber,
        ProducerError::UnknownProducer { .. } => ResponseError::UnknownProducerId,
        ProducerError::CoordinatorFenced { .. } => ResponseError::TransactionCoordinatorFenced,
    }
}

pub fn storage_error_code(e: &StorageError) -> ResponseError {
    match e {
        StorageError::Failed(_) | StorageError::Corrupt(_) => ResponseError::KafkaStorageError,
        StorageError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        StorageError::Closing | StorageError::NotLeader => ResponseError::NotLeaderOrFollower,
    }
}

pub fn batch_error_code(e: &BatchError) -> ResponseError {
    match e {
        BatchError::Corrupt(_) => ResponseError::CorruptMessage,
        BatchError::ControlBatch => ResponseError::InvalidRecord,
        BatchError::UnsupportedCompression(_) => ResponseError::UnsupportedCompressionType,
        BatchError::TooLarge(_) => ResponseError::MessageTooLarge,
    }
}

/// The code for records of a produced batch that cannot be read (the key
/// check of compacted topics): CORRUPT_MESSAGE, or MESSAGE_TOO_LARGE for a
/// batch inflating past the broker's bound.
pub fn records_error_code(e: &RecordsError) -> ResponseError {
    match e {
        RecordsError::TooLarge { .. } | RecordsError::Oversized(_) => ResponseError::MessageTooLarge,
        RecordsError::UnknownCodec(_) => ResponseError::UnsupportedCompressionType,
        _ => ResponseError::CorruptMessage,
    }
}

/// PRODUCER_FENCED (KIP-588) is only known to newer clients; older request
/// versions get INVALID_PRODUCER_EPOCH, as Kafka answers them.
pub fn fenced_for_version(e: ResponseError, version: i16, fenced_from_version: i16) -> ResponseError {
    if e == ResponseError::ProducerFenced && version < fenced_from_version {
        ResponseError::InvalidProducerEpoch
    } else {
        e
    }
}

pub use crate::metadata::controller::unknown_topic;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_kafka() {
        assert_eq!(batch_error_code(&BatchError::Corrupt("x")).code(), 2);
        assert_eq!(batch_error_code(&BatchError::TooLarge(1)).code(), 10);
        assert_eq!(storage_error_code(&StorageError::Failed("x".into())).code(), 56);
        assert_eq!(route_error_code(&RouteError::NotOwner).code(), 6);
        let oor = StorageError::OffsetOutOfRange { offset: 5, start: 0, end: 1 };
        assert_eq!(storage_error_code(&oor).code(), 1);
        assert_eq!(fenced_for_version(ResponseError::ProducerFenced, 3, 4).code(), 47);
        assert_eq!(fenced_for_version(ResponseError::ProducerFenced, 4, 4).code(), 90);
        assert_eq!(records_error_code(&RecordsError::Truncated).code(), 2);
        let inflate = RecordsError::Decompress { codec: "gzip", reason: "bad header".into() };
        assert_eq!(records_error_code(&inflate).code(), 2);
        assert_eq!(records_error_code(&RecordsError::TooLarge { bytes_max: 1 }).code(), 10);
    }
}
