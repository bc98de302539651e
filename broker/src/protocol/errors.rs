//! The one place where broker errors become Kafka error codes.

use kafka_protocol::ResponseError;

use crate::controller::{AssignError, Refusal};
use crate::log::batch::BatchError;
use crate::log::LogError;
use crate::producer::SequenceError;
use crate::quorum::{ControllerError, VoterChangeError};
use crate::topics::TopicError;

/// An error a client sees: a Kafka error code and a message (sent where the API has a field
/// for it).
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The Kafka error.
    pub code: ResponseError,
    /// Human-readable detail.
    pub message: String,
}

impl ApiError {
    /// An error with a message.
    pub fn new(code: ResponseError, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }

    /// The wire code.
    pub fn code(&self) -> i16 {
        self.code.code()
    }
}

impl From<TopicError> for ApiError {
    fn from(e: TopicError) -> Self {
        let code = match &e {
            TopicError::InvalidName(_) => ResponseError::InvalidTopicException,
            TopicError::AlreadyExists(_) => ResponseError::TopicAlreadyExists,
            TopicError::Unknown(_) => ResponseError::UnknownTopicOrPartition,
            TopicError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
            TopicError::InvalidConfig(_) => ResponseError::InvalidConfig,
            TopicError::Storage(_) => ResponseError::KafkaStorageError,
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<AssignError> for ApiError {
    fn from(e: AssignError) -> Self {
        let code = match &e {
            AssignError::InvalidPartitions(_) | AssignError::PartitionRange { .. } => {
                ResponseError::InvalidPartitions
            }
            AssignError::InvalidReplicationFactor(_)
            | AssignError::InsufficientBrokers { .. }
            | AssignError::MixedRacks { .. } => ResponseError::InvalidReplicationFactor,
            AssignError::EmptyAssignment
            | AssignError::PartitionCountMismatch { .. }
            | AssignError::NoReplicas { .. }
            | AssignError::InconsistentReplicationFactor { .. }
            | AssignError::DuplicateReplica { .. }
            | AssignError::UnknownBroker { .. }
            | AssignError::AllReplicasFenced { .. } => ResponseError::InvalidReplicaAssignment,
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<Refusal> for ApiError {
    fn from(e: Refusal) -> Self {
        let code = match &e {
            Refusal::UnknownBroker(_) => ResponseError::BrokerIdNotRegistered,
            Refusal::TopicExists(_) | Refusal::TopicIdInUse(_) => ResponseError::TopicAlreadyExists,
            Refusal::UnknownTopic(_) | Refusal::UnknownPartition { .. } => {
                ResponseError::UnknownTopicOrPartition
            }
            Refusal::InvalidAssignment(_) => ResponseError::InvalidReplicaAssignment,
            Refusal::InvalidConfig(_) => ResponseError::InvalidConfig,
            Refusal::NotLeader { .. } => ResponseError::NotLeaderOrFollower,
            Refusal::FencedLeaderEpoch { .. } => ResponseError::FencedLeaderEpoch,
            Refusal::InvalidUpdateVersion { .. } => ResponseError::InvalidUpdateVersion,
            Refusal::IneligibleReplica { .. } => ResponseError::IneligibleReplica,
            Refusal::InvalidIsr(_) => ResponseError::InvalidRequest,
            Refusal::ProducerIdBlockTaken { .. } => ResponseError::RequestTimedOut,
            Refusal::NoReassignmentInProgress { .. } => ResponseError::NoReassignmentInProgress,
            Refusal::ElectionNotNeeded { .. } => ResponseError::ElectionNotNeeded,
            Refusal::PreferredLeaderNotAvailable { .. } => {
                ResponseError::PreferredLeaderNotAvailable
            }
            Refusal::EligibleLeadersNotAvailable { .. } => {
                ResponseError::EligibleLeadersNotAvailable
            }
        };
        ApiError::new(code, e.to_string())
    }
}

/// A controller that could not be reached, or failed, is a retriable timeout for clients.
impl From<ControllerError> for ApiError {
    fn from(e: ControllerError) -> Self {
        match e {
            ControllerError::Refused(r) => r.into(),
            other => ApiError::new(ResponseError::RequestTimedOut, other.to_string()),
        }
    }
}

/// AddRaftVoter / RemoveRaftVoter, with the codes Kafka's quorum answers (KIP-853): a change
/// while another is pending is REQUEST_TIMED_OUT; removing the last voter is VOTER_NOT_FOUND,
/// as Kafka's voter set refuses to lose its last member; a non-leader is NOT_CONTROLLER.
impl From<VoterChangeError> for ApiError {
    fn from(e: VoterChangeError) -> Self {
        let code = match &e {
            VoterChangeError::DuplicateVoter { .. } => ResponseError::DuplicateVoter,
            VoterChangeError::VoterNotFound { .. } | VoterChangeError::LastVoter { .. } => {
                ResponseError::VoterNotFound
            }
            VoterChangeError::Pending(_) | VoterChangeError::TimedOut(_) => {
                ResponseError::RequestTimedOut
            }
            VoterChangeError::NotLeader { .. } => ResponseError::NotController,
            VoterChangeError::Invalid(_) => ResponseError::InvalidRequest,
            VoterChangeError::Failed(_) => ResponseError::UnknownServerError,
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<BatchError> for ApiError {
    fn from(e: BatchError) -> Self {
        let code = if e.is_corrupt() {
            ResponseError::CorruptMessage
        } else {
            ResponseError::InvalidRecord
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<SequenceError> for ApiError {
    fn from(e: SequenceError) -> Self {
        let code = match e {
            SequenceError::OutOfOrder { .. } => ResponseError::OutOfOrderSequenceNumber,
            SequenceError::StaleEpoch { .. } => ResponseError::InvalidProducerEpoch,
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<LogError> for ApiError {
    fn from(e: LogError) -> Self {
        match e {
            LogError::OffsetOutOfRange { .. } => {
                ApiError::new(ResponseError::OffsetOutOfRange, e.to_string())
            }
            LogError::Batch(b) => b.into(),
            other => ApiError::new(ResponseError::KafkaStorageError, other.to_string()),
        }
    }
}

/// A short label for metrics: "none" or the error's name. Labels of the codes Kafka defines
/// are built once; this runs for every request.
pub fn label(code: i16) -> std::borrow::Cow<'static, str> {
    use std::borrow::Cow;
    use std::sync::OnceLock;
    const FIRST: i16 = -1;
    const LAST: i16 = 200;
    static LABELS: OnceLock<Vec<String>> = OnceLock::new();
    let labels = LABELS.get_or_init(|| {
        (FIRST..=LAST)
            .map(|c| match ResponseError::try_from_code(c) {
                None => "none".to_string(),
                Some(e) => e.to_string(),
            })
            .collect()
    });
    match usize::try_from(i32::from(code) - i32::from(FIRST))
        .ok()
        .and_then(|i| labels.get(i))
    {
        Some(l) => Cow::Borrowed(l.as_str()),
        None => Cow::Owned(format!("code_{code}")),
    }
}

#[cfg(test)]
mod tests {
    use super::label;

    #[test]
    fn labels_name_kafka_errors() {
        assert_eq!(label(0), "none");
        assert_eq!(label(3), "UnknownTopicOrPartition");
        assert_eq!(label(-1), "UnknownServerError");
        assert_eq!(label(i16::MAX), "code_32767");
    }
}
