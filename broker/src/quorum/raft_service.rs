//! The gRPC server side of Raft traffic (`samsa.v1.Raft`): decodes a peer's request, hands it to
//! the local Raft node, encodes its result. Never interprets the messages.

use openraft::Raft;
use samsa_proto::v1::raft_server;
use samsa_proto::v1::{RaftReply, RaftRequest};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::{Request, Response, Status};

use super::TypeConfig;

/// Serves Raft RPCs for the local node.
pub(super) struct RaftService {
    pub(super) raft: Raft<TypeConfig>,
}

fn decode<T: DeserializeOwned>(req: Request<RaftRequest>) -> Result<T, Status> {
    serde_json::from_slice(&req.into_inner().payload)
        .map_err(|e| Status::invalid_argument(format!("undecodable Raft request: {e}")))
}

fn encode<T: Serialize>(result: &T) -> Result<Response<RaftReply>, Status> {
    serde_json::to_vec(result)
        .map(|payload| Response::new(RaftReply { payload }))
        .map_err(|e| Status::internal(format!("unencodable Raft reply: {e}")))
}

#[tonic::async_trait]
impl raft_server::Raft for RaftService {
    async fn append_entries(
        &self,
        req: Request<RaftRequest>,
    ) -> Result<Response<RaftReply>, Status> {
        let result = self.raft.append_entries(decode(req)?).await;
        encode(&result)
    }

    async fn vote(&self, req: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let result = self.raft.vote(decode(req)?).await;
        encode(&result)
    }

    async fn timeout_now(&self, _req: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        tracing::info!("asked to stand for the controller quorum's leadership (TimeoutNow)");
        let result = self.raft.trigger().elect().await;
        encode(&result)
    }

    async fn install_snapshot(
        &self,
        req: Request<RaftRequest>,
    ) -> Result<Response<RaftReply>, Status> {
        let result = self.raft.install_snapshot(decode(req)?).await;
        encode(&result)
    }
}
