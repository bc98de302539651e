//! The controller quorum's voters (KIP-853): AddRaftVoter and RemoveRaftVoter, one voter at a
//! time, sent to any broker (which sends them on to the quorum's leader). Asks and reports;
//! deciding when a voter comes or goes is the caller's.

use kafka_protocol::messages::add_raft_voter_request::Listener;
use kafka_protocol::messages::{
    AddRaftVoterRequest, BrokerId, RemoveRaftVoterRequest, UnregisterBrokerRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::{ms, AdminClient, AdminError, KafkaError};

/// The listener name of a controller endpoint.
const CONTROLLER_LISTENER: &str = "CONTROLLER";

impl AdminClient {
    /// Adds controller `id`, listening at `host:port`, to the quorum's voters: it follows the
    /// log as a learner until it has caught up, then votes. Errors: DUPLICATE_VOTER when it is a
    /// voter already, REQUEST_TIMED_OUT while another change runs or when it did not catch up
    /// within the client's timeout.
    pub async fn add_raft_voter(&self, id: i32, host: &str, port: u16) -> Result<(), AdminError> {
        let request = AddRaftVoterRequest::default()
            .with_cluster_id(None)
            .with_voter_id(id)
            .with_timeout_ms(ms(self.timeout))
            .with_listeners(vec![Listener::default()
                .with_name(StrBytes::from_static_str(CONTROLLER_LISTENER))
                .with_host(StrBytes::from_string(host.to_string()))
                .with_port(port)]);
        let (response, _) = self
            .with_conn(async |c| c.call("AddRaftVoter", 0, 0, &request).await)
            .await?;
        match KafkaError::from_code(
            "AddRaftVoter",
            None,
            response.error_code,
            response.error_message.as_deref(),
        ) {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Removes voter `id` from the quorum. Errors: VOTER_NOT_FOUND when it is not a voter (or
    /// is the last one), REQUEST_TIMED_OUT while another change runs.
    pub async fn remove_raft_voter(&self, id: i32) -> Result<(), AdminError> {
        let request = RemoveRaftVoterRequest::default()
            .with_cluster_id(None)
            .with_voter_id(id);
        let (response, _) = self
            .with_conn(async |c| c.call("RemoveRaftVoter", 0, 0, &request).await)
            .await?;
        match KafkaError::from_code(
            "RemoveRaftVoter",
            None,
            response.error_code,
            response.error_message.as_deref(),
        ) {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Removes broker `id` from the cluster's registered brokers (a decommissioned broker, as
    /// `kafka-cluster unregister` does). Errors: BROKER_ID_NOT_REGISTERED when it is not.
    pub async fn unregister_broker(&self, id: i32) -> Result<(), AdminError> {
        let request = UnregisterBrokerRequest::default().with_broker_id(BrokerId(id));
        let (response, _) = self
            .with_conn(async |c| c.call("UnregisterBroker", 0, 0, &request).await)
            .await?;
        match KafkaError::from_code(
            "UnregisterBroker",
            None,
            response.error_code,
            response.error_message.as_deref(),
        ) {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }
}
