//! Request handlers: one function per API, dispatched from one match.
//!
//! Handlers turn a decoded request into a response body; they never see sockets. Everything a
//! client can get wrong becomes a Kafka error code in the response.

mod admin;
mod authz;
mod brokers;
mod cluster;
mod configs;
mod elect;
mod fetch;
mod group;
mod log_dirs;
mod metadata;
mod offsets;
mod produce;
mod producer;
mod quorum;
mod reassign;
mod security;
mod voters;

use std::sync::Arc;
use std::time::Instant;

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestKind, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::controller::{BrokerRecord, Endpoint};
use crate::group::Groups;
use crate::metrics::Metrics;
use crate::protocol::api::HANDLED_APIS;
use crate::protocol::codec::{self, Request};
use crate::protocol::errors;
use crate::protocol::fetch_wire;
use crate::protocol::reply::Reply;
use crate::quorum::QuorumView;
use crate::replication::ReplicaManager;
use crate::security::Session;

use crate::topics::TopicRegistry;
pub(super) use security::SecurityContext;

/// Shared state of the request handlers.
pub struct Broker {
    registry: Arc<TopicRegistry>,
    groups: Arc<Groups>,
    metrics: Arc<Metrics>,
    host: StrBytes,
    port: i32,
    /// Every Kafka listener's advertised endpoint (single node: Metadata, FindCoordinator and
    /// DescribeCluster answer with the one of the listener the request came in on).
    listeners: Vec<Endpoint>,
    node_id: i32,
    /// broker.rack, in the single-node Metadata answer.
    rack: Option<StrBytes>,
    /// Cluster mode: metadata, leadership and proposals.
    cluster: Option<Arc<ReplicaManager>>,
    /// The controller quorum when this process is a voter (DescribeQuorum).
    quorum: Option<QuorumView>,
    /// Credentials, ACLs and the authorizer.
    security: SecurityContext,
}

/// What the connection does after a request: write this frame (empty for acks=0), or close
/// when `None` (a response that cannot be encoded).
pub(crate) type Outcome = Option<Reply>;

fn api_name(key: ApiKey) -> &'static str {
    match key {
        ApiKey::Produce => "Produce",
        ApiKey::Fetch => "Fetch",
        ApiKey::ListOffsets => "ListOffsets",
        ApiKey::Metadata => "Metadata",
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::CreateTopics => "CreateTopics",
        ApiKey::DeleteTopics => "DeleteTopics",
        ApiKey::DescribeConfigs => "DescribeConfigs",
        ApiKey::CreatePartitions => "CreatePartitions",
        ApiKey::IncrementalAlterConfigs => "IncrementalAlterConfigs",
        ApiKey::InitProducerId => "InitProducerId",
        ApiKey::FindCoordinator => "FindCoordinator",
        ApiKey::JoinGroup => "JoinGroup",
        ApiKey::SyncGroup => "SyncGroup",
        ApiKey::Heartbeat => "Heartbeat",
        ApiKey::LeaveGroup => "LeaveGroup",
        ApiKey::OffsetCommit => "OffsetCommit",
        ApiKey::OffsetFetch => "OffsetFetch",
        ApiKey::ListGroups => "ListGroups",
        ApiKey::DescribeGroups => "DescribeGroups",
        ApiKey::DeleteGroups => "DeleteGroups",
        ApiKey::OffsetDelete => "OffsetDelete",
        ApiKey::OffsetForLeaderEpoch => "OffsetForLeaderEpoch",
        ApiKey::AlterPartitionReassignments => "AlterPartitionReassignments",
        ApiKey::ListPartitionReassignments => "ListPartitionReassignments",
        ApiKey::ElectLeaders => "ElectLeaders",
        ApiKey::DescribeCluster => "DescribeCluster",
        ApiKey::DescribeLogDirs => "DescribeLogDirs",
        ApiKey::DeleteRecords => "DeleteRecords",
        ApiKey::UnregisterBroker => "UnregisterBroker",
        ApiKey::DescribeQuorum => "DescribeQuorum",
        ApiKey::AddRaftVoter => "AddRaftVoter",
        ApiKey::RemoveRaftVoter => "RemoveRaftVoter",
        ApiKey::SaslHandshake => "SaslHandshake",
        ApiKey::SaslAuthenticate => "SaslAuthenticate",
        ApiKey::DescribeUserScramCredentials => "DescribeUserScramCredentials",
        ApiKey::AlterUserScramCredentials => "AlterUserScramCredentials",
        ApiKey::DescribeClientQuotas => "DescribeClientQuotas",
        ApiKey::CreateAcls => "CreateAcls",
        ApiKey::DescribeAcls => "DescribeAcls",
        ApiKey::DeleteAcls => "DeleteAcls",
        _ => "Other",
    }
}

impl Broker {
    /// Handlers over a registry; `advertised` is the host and port given to clients.
    pub fn new(
        registry: Arc<TopicRegistry>,
        groups: Arc<Groups>,
        metrics: Arc<Metrics>,
        advertised: (String, i32),
        cluster: Option<Arc<ReplicaManager>>,
    ) -> Broker {
        let node_id = registry.static_broker().node_id;
        let rack = registry
            .static_broker()
            .broker_rack
            .clone()
            .map(StrBytes::from_string);
        Broker {
            registry,
            groups,
            metrics,
            host: StrBytes::from_string(advertised.0),
            port: advertised.1,
            listeners: Vec::new(),
            node_id,
            rack,
            cluster,
            quorum: None,
            security: SecurityContext::default(),
        }
    }

    /// Sets where credentials and ACLs live and whether ACLs are enforced.
    pub fn with_security(mut self, security: SecurityContext) -> Broker {
        self.security = security;
        self
    }

    /// Every Kafka listener's advertised endpoint (the first is `advertised`).
    pub fn with_listeners(mut self, listeners: Vec<Endpoint>) -> Broker {
        self.listeners = listeners;
        self
    }

    /// This broker's advertised host and port on `listener`: that listener's endpoint, else
    /// the one given to [`Broker::new`].
    fn own_endpoint(&self, listener: &str) -> (StrBytes, i32) {
        match self.listeners.iter().find(|e| e.name == listener) {
            Some(e) => (StrBytes::from_string(e.host.clone()), e.port),
            None => (self.host.clone(), self.port),
        }
    }

    /// Lets DescribeQuorum read this process's controller quorum (a voter).
    pub fn with_quorum(mut self, quorum: Option<QuorumView>) -> Broker {
        self.quorum = quorum;
        self
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The topics.
    pub fn registry(&self) -> &Arc<TopicRegistry> {
        &self.registry
    }

    /// Answers one request: `None` means no response is sent (Produce with acks=0), or that the
    /// response could not be encoded, which closes the connection.
    pub async fn handle(&self, request: Request, session: &mut Session) -> Outcome {
        let started = Instant::now();
        match request {
            Request::UnsupportedApiVersions { header } => {
                let body = self.api_versions_body(ResponseError::UnsupportedVersion.code());
                self.finish(
                    ApiKey::ApiVersions,
                    0,
                    header.correlation_id,
                    ResponseKind::ApiVersions(body),
                    ResponseError::UnsupportedVersion.code(),
                    started,
                )
            }
            Request::LegacyProduce {
                header,
                acks,
                topics,
            } => {
                let code = ResponseError::UnsupportedVersion.code();
                self.metrics.observe_request(
                    "Produce",
                    &errors::label(code),
                    started.elapsed().as_secs_f64(),
                );
                if acks == 0 {
                    return Some(Reply::none());
                }
                Some(Reply::from(codec::encode_legacy_produce_response(
                    header.request_api_version,
                    header.correlation_id,
                    &topics,
                    code,
                )))
            }
            Request::Kafka { header, body } => {
                let version = header.request_api_version;
                let correlation_id = header.correlation_id;
                if !session.authenticated()
                    && !matches!(
                        *body,
                        RequestKind::ApiVersions(_)
                            | RequestKind::SaslHandshake(_)
                            | RequestKind::SaslAuthenticate(_)
                    )
                {
                    // Kafka closes a SASL connection that skips authentication.
                    tracing::info!(peer = %session.info.peer, listener = session.info.listener,
                        api = ?ApiKey::try_from(header.request_api_key).ok(),
                        "closing connection: request before SASL authentication");
                    self.metrics
                        .rejected_frames
                        .with_label_values(&["unauthenticated"])
                        .inc();
                    return None;
                }
                let mut body = *body;
                let denied = match self.authorize_request(&mut body, version, session) {
                    Ok(denied) => denied,
                    Err(denied) => {
                        let (api, response, code) = *denied;
                        return self.finish(api, version, correlation_id, response, code, started);
                    }
                };
                let (api, mut response, code) = match body {
                    RequestKind::ApiVersions(r) => {
                        let (b, c) = self.api_versions(&r, version);
                        (ApiKey::ApiVersions, Some(ResponseKind::ApiVersions(b)), c)
                    }
                    RequestKind::Metadata(r) => {
                        let (b, c) = self.metadata(r, version, session).await;
                        (ApiKey::Metadata, Some(ResponseKind::Metadata(b)), c)
                    }
                    RequestKind::Produce(r) => {
                        let acks = r.acks;
                        let (b, c) = self.produce(r, version, &session.info.listener).await;
                        (
                            ApiKey::Produce,
                            (acks != 0).then_some(ResponseKind::Produce(b)),
                            c,
                        )
                    }
                    RequestKind::Fetch(r) => {
                        let mut outcome = self.fetch(r, version).await;
                        self.authorize_fetch_response(&mut outcome.response, denied);
                        return self.finish_fetch(version, correlation_id, outcome, started);
                    }
                    RequestKind::ListOffsets(r) => {
                        let (b, c) = self.list_offsets(r, version);
                        (ApiKey::ListOffsets, Some(ResponseKind::ListOffsets(b)), c)
                    }
                    RequestKind::OffsetForLeaderEpoch(r) => {
                        let (b, c) = self.offset_for_leader_epoch(r);
                        (
                            ApiKey::OffsetForLeaderEpoch,
                            Some(ResponseKind::OffsetForLeaderEpoch(b)),
                            c,
                        )
                    }
                    RequestKind::CreateTopics(r) => {
                        let (b, c) = self.create_topics(r, version).await;
                        (ApiKey::CreateTopics, Some(ResponseKind::CreateTopics(b)), c)
                    }
                    RequestKind::DeleteTopics(r) => {
                        let (b, c) = self.delete_topics(r, version).await;
                        (ApiKey::DeleteTopics, Some(ResponseKind::DeleteTopics(b)), c)
                    }
                    RequestKind::CreatePartitions(r) => {
                        let (b, c) = self.create_partitions(r).await;
                        (
                            ApiKey::CreatePartitions,
                            Some(ResponseKind::CreatePartitions(b)),
                            c,
                        )
                    }
                    RequestKind::DescribeConfigs(r) => {
                        let (b, c) = self.describe_configs(r, version);
                        (
                            ApiKey::DescribeConfigs,
                            Some(ResponseKind::DescribeConfigs(b)),
                            c,
                        )
                    }
                    RequestKind::IncrementalAlterConfigs(r) => {
                        let (b, c) = self.incremental_alter_configs(r).await;
                        (
                            ApiKey::IncrementalAlterConfigs,
                            Some(ResponseKind::IncrementalAlterConfigs(b)),
                            c,
                        )
                    }
                    RequestKind::FindCoordinator(r) => {
                        let (b, c) = self.find_coordinator(r, version, session).await;
                        (
                            ApiKey::FindCoordinator,
                            Some(ResponseKind::FindCoordinator(b)),
                            c,
                        )
                    }
                    RequestKind::JoinGroup(r) => {
                        let client_id = header
                            .client_id
                            .as_ref()
                            .map(|c| c.as_str())
                            .unwrap_or_default();
                        let host = format!("/{}", session.info.peer.ip());
                        let (b, c) = self.join_group(r, version, client_id, &host).await;
                        (ApiKey::JoinGroup, Some(ResponseKind::JoinGroup(b)), c)
                    }
                    RequestKind::SyncGroup(r) => {
                        let (b, c) = self.sync_group(r, version).await;
                        (ApiKey::SyncGroup, Some(ResponseKind::SyncGroup(b)), c)
                    }
                    RequestKind::Heartbeat(r) => {
                        let (b, c) = self.heartbeat(r);
                        (ApiKey::Heartbeat, Some(ResponseKind::Heartbeat(b)), c)
                    }
                    RequestKind::LeaveGroup(r) => {
                        let (b, c) = self.leave_group(r, version);
                        (ApiKey::LeaveGroup, Some(ResponseKind::LeaveGroup(b)), c)
                    }
                    RequestKind::OffsetCommit(r) => {
                        let (b, c) = self.offset_commit(r, version).await;
                        (ApiKey::OffsetCommit, Some(ResponseKind::OffsetCommit(b)), c)
                    }
                    RequestKind::OffsetFetch(r) => {
                        let (b, c) = self.offset_fetch(r, version);
                        (ApiKey::OffsetFetch, Some(ResponseKind::OffsetFetch(b)), c)
                    }
                    RequestKind::ListGroups(r) => {
                        let (b, c) = self.list_groups(r, version);
                        (ApiKey::ListGroups, Some(ResponseKind::ListGroups(b)), c)
                    }
                    RequestKind::DescribeGroups(r) => {
                        let (b, c) = self.describe_groups(r, version);
                        (
                            ApiKey::DescribeGroups,
                            Some(ResponseKind::DescribeGroups(b)),
                            c,
                        )
                    }
                    RequestKind::DeleteGroups(r) => {
                        let (b, c) = self.delete_groups(r).await;
                        (ApiKey::DeleteGroups, Some(ResponseKind::DeleteGroups(b)), c)
                    }
                    RequestKind::OffsetDelete(r) => {
                        let (b, c) = self.offset_delete(r).await;
                        (ApiKey::OffsetDelete, Some(ResponseKind::OffsetDelete(b)), c)
                    }
                    RequestKind::AlterPartitionReassignments(r) => {
                        let (b, c) = self.alter_partition_reassignments(r, version).await;
                        (
                            ApiKey::AlterPartitionReassignments,
                            Some(ResponseKind::AlterPartitionReassignments(b)),
                            c,
                        )
                    }
                    RequestKind::ListPartitionReassignments(r) => {
                        let (b, c) = self.list_partition_reassignments(r);
                        (
                            ApiKey::ListPartitionReassignments,
                            Some(ResponseKind::ListPartitionReassignments(b)),
                            c,
                        )
                    }
                    RequestKind::InitProducerId(r) => {
                        let (b, c) = self.init_producer_id(r).await;
                        (
                            ApiKey::InitProducerId,
                            Some(ResponseKind::InitProducerId(b)),
                            c,
                        )
                    }
                    RequestKind::ElectLeaders(r) => {
                        let (b, c) = self.elect_leaders(r, version).await;
                        (ApiKey::ElectLeaders, Some(ResponseKind::ElectLeaders(b)), c)
                    }
                    RequestKind::DescribeCluster(r) => {
                        let (b, c) = self.describe_cluster(r, version, session);
                        (
                            ApiKey::DescribeCluster,
                            Some(ResponseKind::DescribeCluster(b)),
                            c,
                        )
                    }
                    RequestKind::DescribeLogDirs(r) => {
                        let (b, c) = self.describe_log_dirs(r, version);
                        (
                            ApiKey::DescribeLogDirs,
                            Some(ResponseKind::DescribeLogDirs(b)),
                            c,
                        )
                    }
                    RequestKind::DeleteRecords(r) => {
                        let (b, c) = self.delete_records(r);
                        (
                            ApiKey::DeleteRecords,
                            Some(ResponseKind::DeleteRecords(b)),
                            c,
                        )
                    }
                    RequestKind::UnregisterBroker(r) => {
                        let (b, c) = self.unregister_broker(r).await;
                        (
                            ApiKey::UnregisterBroker,
                            Some(ResponseKind::UnregisterBroker(b)),
                            c,
                        )
                    }
                    RequestKind::DescribeQuorum(r) => {
                        let client_id = header.client_id.as_ref().map(|c| c.as_str());
                        let (b, c) = self.describe_quorum(r, version, client_id).await;
                        (
                            ApiKey::DescribeQuorum,
                            Some(ResponseKind::DescribeQuorum(b)),
                            c,
                        )
                    }
                    RequestKind::AddRaftVoter(r) => {
                        let (b, c) = self.add_raft_voter(r).await;
                        (ApiKey::AddRaftVoter, Some(ResponseKind::AddRaftVoter(b)), c)
                    }
                    RequestKind::RemoveRaftVoter(r) => {
                        let (b, c) = self.remove_raft_voter(r).await;
                        (
                            ApiKey::RemoveRaftVoter,
                            Some(ResponseKind::RemoveRaftVoter(b)),
                            c,
                        )
                    }
                    RequestKind::SaslHandshake(r) => {
                        let (b, c) = self.sasl_handshake(r, version, session);
                        (
                            ApiKey::SaslHandshake,
                            Some(ResponseKind::SaslHandshake(b)),
                            c,
                        )
                    }
                    RequestKind::SaslAuthenticate(r) => {
                        let (b, c) = self.sasl_authenticate(r, session);
                        (
                            ApiKey::SaslAuthenticate,
                            Some(ResponseKind::SaslAuthenticate(b)),
                            c,
                        )
                    }
                    RequestKind::DescribeUserScramCredentials(r) => {
                        let (b, c) = self.describe_user_scram_credentials(r, session);
                        (
                            ApiKey::DescribeUserScramCredentials,
                            Some(ResponseKind::DescribeUserScramCredentials(b)),
                            c,
                        )
                    }
                    RequestKind::AlterUserScramCredentials(r) => {
                        let (b, c) = self.alter_user_scram_credentials(r, session).await;
                        (
                            ApiKey::AlterUserScramCredentials,
                            Some(ResponseKind::AlterUserScramCredentials(b)),
                            c,
                        )
                    }
                    RequestKind::DescribeClientQuotas(_) => {
                        let (b, c) = self.describe_client_quotas(session);
                        (
                            ApiKey::DescribeClientQuotas,
                            Some(ResponseKind::DescribeClientQuotas(b)),
                            c,
                        )
                    }
                    RequestKind::CreateAcls(r) => {
                        let (b, c) = self.create_acls(r, session).await;
                        (ApiKey::CreateAcls, Some(ResponseKind::CreateAcls(b)), c)
                    }
                    RequestKind::DescribeAcls(r) => {
                        let (b, c) = self.describe_acls(r, session);
                        (ApiKey::DescribeAcls, Some(ResponseKind::DescribeAcls(b)), c)
                    }
                    RequestKind::DeleteAcls(r) => {
                        let (b, c) = self.delete_acls(r, session).await;
                        (ApiKey::DeleteAcls, Some(ResponseKind::DeleteAcls(b)), c)
                    }
                    other => {
                        // The codec lets only served APIs through; keep the connection honest.
                        tracing::error!(request = ?other, "no handler for a decoded request");
                        return None;
                    }
                };
                let code = match response.as_mut() {
                    Some(body) => self.authorize_response(body, denied, session, code),
                    None => code,
                };
                match response {
                    Some(body) => self.finish(api, version, correlation_id, body, code, started),
                    None => {
                        self.metrics.observe_request(
                            api_name(api),
                            &errors::label(code),
                            started.elapsed().as_secs_f64(),
                        );
                        Some(Reply::none())
                    }
                }
            }
        }
    }

    fn finish_fetch(
        &self,
        version: i16,
        correlation_id: i32,
        outcome: fetch::FetchOutcome,
        started: Instant,
    ) -> Outcome {
        let reply = fetch_wire::encode(version, correlation_id, &outcome.response, &outcome.files);
        self.metrics.observe_request(
            "Fetch",
            &errors::label(outcome.code),
            started.elapsed().as_secs_f64(),
        );
        match reply {
            Ok(reply) => Some(reply),
            Err(e) => {
                tracing::error!(version, error = %e, "fetch response could not be built; closing");
                None
            }
        }
    }

    fn finish(
        &self,
        api: ApiKey,
        version: i16,
        correlation_id: i32,
        body: ResponseKind,
        code: i16,
        started: Instant,
    ) -> Outcome {
        let out = match codec::encode_response(api, version, correlation_id, &body) {
            Ok(out) => Some(Reply::from(out)),
            Err(e) => {
                tracing::error!(api = api_name(api), version, error = %e, "response could not be encoded; closing");
                None
            }
        };
        self.metrics.observe_request(
            api_name(api),
            &errors::label(code),
            started.elapsed().as_secs_f64(),
        );
        out
    }

    fn api_versions_body(&self, error_code: i16) -> ApiVersionsResponse {
        let api_keys = HANDLED_APIS
            .iter()
            .map(|r| {
                ApiVersion::default()
                    .with_api_key(r.key as i16)
                    .with_min_version(r.min)
                    .with_max_version(r.max)
            })
            .collect();
        ApiVersionsResponse::default()
            .with_error_code(error_code)
            .with_api_keys(api_keys)
    }

    fn api_versions(
        &self,
        request: &ApiVersionsRequest,
        version: i16,
    ) -> (ApiVersionsResponse, i16) {
        if version >= 3
            && (!valid_software_token(request.client_software_name.as_str())
                || !valid_software_token(request.client_software_version.as_str()))
        {
            let code = ResponseError::InvalidRequest.code();
            return (self.api_versions_body(code), code);
        }
        (self.api_versions_body(0), 0)
    }
}

/// KIP-511: client software name and version are `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`.
fn valid_software_token(s: &str) -> bool {
    let b = s.as_bytes();
    let edge = |c: &u8| c.is_ascii_alphanumeric();
    let inner = |c: &u8| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'.';
    match b {
        [] => false,
        [one] => edge(one),
        [first, mid @ .., last] => edge(first) && edge(last) && mid.iter().all(inner),
    }
}

/// Returns the first non-zero code, for metrics.
pub(crate) fn first_error(codes: impl IntoIterator<Item = i16>) -> i16 {
    codes.into_iter().find(|c| *c != 0).unwrap_or(0)
}

/// A registered broker's endpoint on `listener`, as Kafka picks it: from the listeners it
/// registered, `None` when it has no such listener; a broker that registered none has only its
/// `host`/`port`.
pub(super) fn endpoint_on<'a>(b: &'a BrokerRecord, listener: &str) -> Option<(&'a str, i32)> {
    if b.listeners.is_empty() {
        return Some((b.host.as_str(), b.port));
    }
    b.listeners
        .iter()
        .find(|e| e.name == listener)
        .map(|e| (e.host.as_str(), e.port))
}

#[cfg(test)]
mod tests {
    use super::valid_software_token;

    #[test]
    fn software_tokens() {
        for ok in ["a", "apache-kafka-java", "3.9.0", "librdkafka", "x.y-z"] {
            assert!(valid_software_token(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a b", "a_b", "."] {
            assert!(!valid_software_token(bad), "{bad}");
        }
    }
}
