//! Raft RPCs to the other voters over gRPC (`samsa.v1.Raft`). openraft's request and response
//! types travel as JSON inside protobuf bytes. This module only moves messages; it never decides
//! anything about them.

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use samsa_proto::v1::raft_client::RaftClient;
use samsa_proto::v1::RaftRequest;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::transport::Channel;

use super::activity::{wall_ms, PeerActivity};
use super::controller_service::MAX_MESSAGE;
use super::{NodeId, TypeConfig};
use crate::security::internal_tls::{transport, InternalTls};

/// A lazily connecting gRPC channel to `addr` (host:port); TLS with `tls`.
pub(super) fn channel(
    addr: &str,
    tls: Option<&InternalTls>,
) -> Result<Channel, tonic::transport::Error> {
    transport::channel(addr, tls, Duration::from_millis(500))
}

/// Makes one [`Peer`] per target voter.
/// Asks the voter at `addr` to stand for election now (TimeoutNow), waiting up to `timeout`.
pub(super) async fn timeout_now(
    addr: &str,
    tls: Option<&InternalTls>,
    timeout: Duration,
) -> Result<(), String> {
    let mut client = RaftClient::new(channel(addr, tls).map_err(|e| e.to_string())?);
    let call = client.timeout_now(RaftRequest {
        payload: Vec::new(),
    });
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(status)) => Err(format!("{}: {}", status.code(), status.message())),
        Err(_) => Err(format!("no reply within {timeout:?}")),
    }
}

pub(super) struct Network {
    /// Where replies to AppendEntries are recorded, for DescribeQuorum.
    pub(super) activity: Arc<PeerActivity>,
    /// Internal TLS, when the controller ports use it.
    pub(super) tls: Option<InternalTls>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Peer {
        let client = channel(&node.addr, self.tls.as_ref())
            .map(|c| {
                RaftClient::new(c)
                    .max_decoding_message_size(MAX_MESSAGE)
                    .max_encoding_message_size(MAX_MESSAGE)
            })
            .map_err(|e| {
                tracing::warn!(target, addr = %node.addr, "bad voter address: {e}");
                e.to_string()
            });
        Peer {
            target,
            client,
            activity: self.activity.clone(),
        }
    }
}

/// The connection to one voter.
pub(super) struct Peer {
    target: NodeId,
    client: Result<RaftClient<Channel>, String>,
    activity: Arc<PeerActivity>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TransportError(String);

enum Rpc {
    Append,
    Vote,
    Snapshot,
}

impl Peer {
    async fn call<Req, Resp, E>(
        &mut self,
        rpc: Rpc,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let client = match &mut self.client {
            Ok(c) => c,
            Err(e) => {
                return Err(RPCError::Unreachable(Unreachable::new(&TransportError(
                    e.clone(),
                ))))
            }
        };
        let payload =
            serde_json::to_vec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let request = RaftRequest { payload };
        let call = async {
            match rpc {
                Rpc::Append => client.append_entries(request).await,
                Rpc::Vote => client.vote(request).await,
                Rpc::Snapshot => client.install_snapshot(request).await,
            }
        };
        let reply = match tokio::time::timeout(option.hard_ttl(), call).await {
            Ok(Ok(reply)) => reply.into_inner(),
            Ok(Err(status)) => {
                let e = TransportError(format!("{}: {}", status.code(), status.message()));
                return Err(RPCError::Unreachable(Unreachable::new(&e)));
            }
            Err(_) => {
                let e = TransportError(format!("no reply within {:?}", option.hard_ttl()));
                return Err(RPCError::Network(NetworkError::new(&e)));
            }
        };
        let result: Result<Resp, RaftError<NodeId, E>> = serde_json::from_slice(&reply.payload)
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let sent_ms = wall_ms();
        let leader_last = self.activity.local_last_index();
        let term = rpc.vote.leader_id().term;
        let sent_end = rpc
            .entries
            .last()
            .map(|e| e.log_id.index)
            .or(rpc.prev_log_id.map(|l| l.index));
        let result = self.call(Rpc::Append, &rpc, &option).await;
        if let Ok(reply) = &result {
            // The last entry the voter holds in agreement with this leader, as far as the
            // reply tells.
            let held = match reply {
                AppendEntriesResponse::Success => Some(sent_end),
                AppendEntriesResponse::PartialSuccess(matching) => Some(matching.map(|l| l.index)),
                AppendEntriesResponse::Conflict => Some(None),
                AppendEntriesResponse::HigherVote(_) => None,
            };
            if let Some(held) = held {
                let caught_up = held.is_some() && held >= leader_last;
                self.activity.record(self.target, term, sent_ms, caught_up);
            }
        }
        result
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call(Rpc::Snapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(Rpc::Vote, &rpc, &option).await
    }

    fn backoff(&self) -> openraft::network::Backoff {
        // Retry an unreachable voter often enough that a restarted one rejoins quickly.
        openraft::network::Backoff::new(std::iter::repeat(Duration::from_millis(100)))
    }
}
