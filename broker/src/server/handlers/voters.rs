//! AddRaftVoter and RemoveRaftVoter (KIP-853): change the controller quorum's voters one at a
//! time. Any broker takes the request and sends it to the quorum's leader through its
//! controller client (Kafka's brokers forward these to the active controller); the leader adds
//! a new voter as a learner first and makes it a voter once it holds the log. This handler only
//! checks and translates; it never touches the Raft membership itself.

use std::time::Duration;

use kafka_protocol::messages::{
    AddRaftVoterRequest, AddRaftVoterResponse, RemoveRaftVoterRequest, RemoveRaftVoterResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::Broker;
use crate::protocol::errors::ApiError;
use crate::quorum::{NodeId, VoterChange};

/// How long a change may take when the request names no timeout (RemoveRaftVoter has none).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest a change may take, whatever the request asks.
const MAX_TIMEOUT: Duration = Duration::from_secs(300);

/// The listener name whose endpoint is the new voter's controller address, when several are
/// given (Kafka's default controller listener name).
const CONTROLLER_LISTENER: &str = "CONTROLLER";

impl Broker {
    pub(super) async fn add_raft_voter(
        &self,
        r: AddRaftVoterRequest,
    ) -> (AddRaftVoterResponse, i16) {
        let timeout = match u64::try_from(r.timeout_ms) {
            Ok(ms) if ms > 0 => Duration::from_millis(ms).min(MAX_TIMEOUT),
            _ => DEFAULT_TIMEOUT,
        };
        let outcome = match self.check_voter_request(r.cluster_id.as_deref(), r.voter_id) {
            Err(e) => Err(e),
            Ok(id) => match controller_address(&r) {
                Err(e) => Err(e),
                Ok(address) => {
                    tracing::info!(voter = id, %address, "AddRaftVoter");
                    self.change_voters(VoterChange::Add { id, address }, timeout)
                        .await
                }
            },
        };
        let (code, message) = split(outcome);
        let response = AddRaftVoterResponse::default()
            .with_error_code(code)
            .with_error_message(message);
        (response, code)
    }

    pub(super) async fn remove_raft_voter(
        &self,
        r: RemoveRaftVoterRequest,
    ) -> (RemoveRaftVoterResponse, i16) {
        let outcome = match self.check_voter_request(r.cluster_id.as_deref(), r.voter_id) {
            Err(e) => Err(e),
            Ok(id) => {
                tracing::info!(voter = id, "RemoveRaftVoter");
                self.change_voters(VoterChange::Remove { id }, DEFAULT_TIMEOUT)
                    .await
            }
        };
        let (code, message) = split(outcome);
        let response = RemoveRaftVoterResponse::default()
            .with_error_code(code)
            .with_error_message(message);
        (response, code)
    }

    /// The voter id of a request, when the request may go on at all.
    fn check_voter_request(
        &self,
        cluster_id: Option<&str>,
        voter_id: i32,
    ) -> Result<NodeId, ApiError> {
        if self.cluster.is_none() {
            return Err(ApiError::new(
                ResponseError::UnsupportedVersion,
                "a single broker keeps its metadata itself: it has no controller quorum to change",
            ));
        }
        // Null (or empty) names no cluster: any will do.
        let named = cluster_id.filter(|id| !id.is_empty());
        if let Some(id) = named.filter(|id| *id != self.registry.cluster_id()) {
            return Err(ApiError::new(
                ResponseError::InconsistentClusterId,
                format!(
                    "cluster id {id:?} is not this cluster's ({})",
                    self.registry.cluster_id()
                ),
            ));
        }
        NodeId::try_from(voter_id).map_err(|_| {
            ApiError::new(
                ResponseError::InvalidRequest,
                format!("voter id {voter_id} is negative"),
            )
        })
    }

    async fn change_voters(&self, change: VoterChange, timeout: Duration) -> Result<(), ApiError> {
        let Some(cluster) = &self.cluster else {
            return Err(ApiError::new(
                ResponseError::UnsupportedVersion,
                "no controller quorum",
            ));
        };
        cluster
            .change_voters(&change, timeout)
            .await
            .map_err(ApiError::from)
    }
}

/// The new voter's controller endpoint: the listener named CONTROLLER, else the only or first
/// one given.
fn controller_address(r: &AddRaftVoterRequest) -> Result<String, ApiError> {
    let listener = r
        .listeners
        .iter()
        .find(|l| l.name.eq_ignore_ascii_case(CONTROLLER_LISTENER))
        .or_else(|| r.listeners.first())
        .ok_or_else(|| {
            ApiError::new(
                ResponseError::InvalidRequest,
                "AddRaftVoter names no listener of the new voter",
            )
        })?;
    let host = listener.host.as_str().trim();
    if host.is_empty() || listener.port == 0 {
        return Err(ApiError::new(
            ResponseError::InvalidRequest,
            format!(
                "listener {:?} of the new voter has no usable host and port ({host:?}:{})",
                listener.name.as_str(),
                listener.port
            ),
        ));
    }
    // An IPv6 literal needs its brackets in host:port.
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    Ok(format!("{host}:{}", listener.port))
}

fn split(outcome: Result<(), ApiError>) -> (i16, Option<StrBytes>) {
    match outcome {
        Ok(()) => (0, None),
        Err(e) => {
            tracing::info!(code = ?e.code, "voter change: {}", e.message);
            (e.code(), Some(StrBytes::from_string(e.message)))
        }
    }
}
