//! DescribeCluster (the brokers with their racks, the controller id and the cluster id) and
//! UnregisterBroker (a decommissioned broker leaves the metadata), as a Kafka broker answers
//! them. Any broker takes admin requests; Samsa names the broker asked as the controller, as
//! its Metadata answer does.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, UnregisterBrokerRequest,
    UnregisterBrokerResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{endpoint_on, Broker};
use crate::controller::MetadataCommand;
use crate::protocol::errors::ApiError;
use crate::security::Session;

/// Kafka's endpoint types (KIP-919): this is a broker endpoint.
const ENDPOINT_BROKER: i8 = 1;
const ENDPOINT_CONTROLLER: i8 = 2;

/// The bit field of the operations Kafka supports on the CLUSTER resource (CREATE, ALTER,
/// DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE), all allowed
/// since Samsa has no authorizer (as Kafka without one).
const CLUSTER_OPERATIONS: i32 =
    (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);

impl Broker {
    pub(super) fn describe_cluster(
        &self,
        request: DescribeClusterRequest,
        version: i16,
        session: &Session,
    ) -> (DescribeClusterResponse, i16) {
        let listener = session.info.listener.as_str();
        let wrong_endpoint = match request.endpoint_type {
            ENDPOINT_BROKER => None,
            ENDPOINT_CONTROLLER => Some((
                ResponseError::MismatchedEndpointType,
                "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER".to_string(),
            )),
            other => Some((
                ResponseError::UnsupportedEndpointType,
                format!("Unsupported endpoint type {other}"),
            )),
        };
        if let Some((code, message)) = wrong_endpoint {
            // v0 cannot carry the endpoint errors.
            let code = if version == 0 {
                ResponseError::InvalidRequest
            } else {
                code
            };
            let response = DescribeClusterResponse::default()
                .with_error_code(code.code())
                .with_error_message(Some(StrBytes::from_string(message)));
            return (response, code.code());
        }
        let brokers: Vec<DescribeClusterBroker> = match &self.cluster {
            Some(cluster) => cluster
                .current_image()
                .brokers
                .iter()
                .filter(|(_, b)| !b.fenced || request.include_fenced_brokers)
                .filter_map(|(id, b)| {
                    let (host, port) = endpoint_on(b, listener)?;
                    let mut d = DescribeClusterBroker::default()
                        .with_broker_id(BrokerId(*id))
                        .with_host(StrBytes::from_string(host.to_string()))
                        .with_port(port)
                        .with_rack(b.rack.clone().map(StrBytes::from_string));
                    if version >= 2 {
                        d.is_fenced = b.fenced;
                    }
                    Some(d)
                })
                .collect(),
            None => {
                let (host, port) = self.own_endpoint(listener);
                vec![DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(self.node_id))
                    .with_host(host)
                    .with_port(port)
                    .with_rack(self.rack.clone())]
            }
        };
        let controller = if brokers.iter().any(|b| b.broker_id.0 == self.node_id) {
            self.node_id
        } else {
            -1
        };
        let operations = if request.include_cluster_authorized_operations {
            CLUSTER_OPERATIONS
        } else {
            i32::MIN
        };
        let response = DescribeClusterResponse::default()
            .with_cluster_id(StrBytes::from_string(
                self.registry.cluster_id().to_string(),
            ))
            .with_controller_id(BrokerId(controller))
            .with_brokers(brokers)
            .with_cluster_authorized_operations(operations);
        (response, 0)
    }

    pub(super) async fn unregister_broker(
        &self,
        request: UnregisterBrokerRequest,
    ) -> (UnregisterBrokerResponse, i16) {
        let id = request.broker_id.0;
        let outcome = match &self.cluster {
            None if id == self.node_id => Err(ApiError::new(
                ResponseError::InvalidRequest,
                format!("broker {id} is this single broker; it runs without a controller quorum"),
            )),
            None => Err(not_registered(id)),
            Some(cluster) => {
                if cluster.current_image().brokers.contains_key(&id) {
                    cluster
                        .propose(MetadataCommand::UnregisterBroker { id })
                        .await
                        .map(|_| ())
                        .map_err(ApiError::from)
                } else {
                    Err(not_registered(id))
                }
            }
        };
        match outcome {
            Ok(()) => {
                tracing::info!(broker = id, "unregistered broker");
                (UnregisterBrokerResponse::default(), 0)
            }
            Err(e) => {
                let code = e.code();
                let response = UnregisterBrokerResponse::default()
                    .with_error_code(code)
                    .with_error_message(Some(StrBytes::from_string(e.message)));
                (response, code)
            }
        }
    }
}

fn not_registered(id: i32) -> ApiError {
    ApiError::new(
        ResponseError::BrokerIdNotRegistered,
        format!("Broker ID {id} is not currently registered"),
    )
}
