//! The gRPC server of a controller node: `samsa.v1.Controller` for brokers and `samsa.v1.Raft`
//! for the other voters, on one listener. Writes (register, heartbeat, propose) are served by
//! the leader only; elsewhere they answer NOT_LEADER with the leader's id and address, never
//! wait. Metadata reads are served by every controller from its applied image.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use samsa_proto::v1::controller_server::{Controller, ControllerServer};
use samsa_proto::v1::raft_server::RaftServer;
use samsa_proto::v1::{
    BrokerHeartbeatReply, BrokerHeartbeatRequest, FetchMetadataRequest, MetadataReply,
    ProposeReply, ProposeRequest, RegisterBrokerReply, RegisterBrokerRequest, ReplyStatus,
    StatusCode,
};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::wrappers::{TcpListenerStream, WatchStream};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::raft_service::RaftService;
use super::{ControllerError, Shared};
use crate::controller::{MetadataCommand, MetadataImage};

/// Largest gRPC message sent or accepted: a batch of log entries or a whole metadata image.
pub(super) const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// Serves both services until `shutdown` turns true.
pub(super) async fn serve(
    shared: Arc<Shared>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    let raft = RaftServer::new(RaftService {
        raft: shared.raft.clone(),
    })
    .max_decoding_message_size(MAX_MESSAGE)
    .max_encoding_message_size(MAX_MESSAGE);
    let controller = ControllerServer::new(ControllerService { shared })
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let result = tonic::transport::Server::builder()
        .add_service(raft)
        .add_service(controller)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .await;
    if let Err(e) = result {
        tracing::error!("controller gRPC server stopped: {e}");
    }
}

struct ControllerService {
    shared: Arc<Shared>,
}

fn ok() -> Option<ReplyStatus> {
    Some(ReplyStatus {
        code: StatusCode::Ok as i32,
        leader_id: -1,
        ..Default::default()
    })
}

impl ControllerService {
    fn status(&self, err: &ControllerError) -> Option<ReplyStatus> {
        let leader = match err {
            ControllerError::NotLeader { leader } => *leader,
            _ => self.shared.leader(),
        };
        let code = match err {
            ControllerError::Refused(_) => StatusCode::Refused,
            ControllerError::NotLeader { .. } => StatusCode::NotLeader,
            ControllerError::UnknownBroker(_) => StatusCode::UnknownBroker,
            ControllerError::Unavailable(_) => StatusCode::NotLeader,
            ControllerError::Internal(_) => StatusCode::Internal,
        };
        let refusal = match err {
            ControllerError::Refused(r) => serde_json::to_vec(r).unwrap_or_default(),
            _ => Vec::new(),
        };
        Some(ReplyStatus {
            code: code as i32,
            message: err.to_string(),
            leader_id: leader.and_then(|l| i32::try_from(l).ok()).unwrap_or(-1),
            leader_address: leader
                .and_then(|l| self.shared.voters.address(l))
                .unwrap_or_default()
                .to_string(),
            refusal,
        })
    }

    fn not_leader(&self) -> ControllerError {
        ControllerError::NotLeader {
            leader: self.shared.leader().filter(|l| *l != self.shared.id),
        }
    }

    /// Proposes on this node only: callers of the service redirect themselves.
    async fn propose(&self, command: MetadataCommand) -> Result<u64, ControllerError> {
        match self.shared.propose_local(command).await {
            Err(ControllerError::NotLeader { .. }) => Err(self.not_leader()),
            other => other,
        }
    }

    fn version(&self) -> u64 {
        self.shared.image.borrow().version
    }
}

fn metadata_reply(image: &MetadataImage, since: u64) -> MetadataReply {
    let bytes = if image.version > since || since == 0 {
        serde_json::to_vec(image).unwrap_or_default()
    } else {
        Vec::new()
    };
    MetadataReply {
        status: ok(),
        version: image.version,
        image: bytes,
    }
}

type MetadataStream = Pin<Box<dyn Stream<Item = Result<MetadataReply, Status>> + Send>>;

#[tonic::async_trait]
impl Controller for ControllerService {
    async fn register_broker(
        &self,
        req: Request<RegisterBrokerRequest>,
    ) -> Result<Response<RegisterBrokerReply>, Status> {
        let r = req.into_inner();
        let command = MetadataCommand::RegisterBroker {
            id: r.broker_id,
            host: r.host,
            port: r.port,
            rack: r.rack,
            incarnation_id: r.incarnation_id,
            replication: r.replication_address,
        };
        let reply = match self.propose(command).await {
            Ok(index) => {
                self.shared
                    .sessions
                    .lock()
                    .heard(r.broker_id, Instant::now());
                RegisterBrokerReply {
                    status: ok(),
                    metadata_version: index,
                }
            }
            Err(e) => RegisterBrokerReply {
                status: self.status(&e),
                metadata_version: self.version(),
            },
        };
        Ok(Response::new(reply))
    }

    async fn broker_heartbeat(
        &self,
        req: Request<BrokerHeartbeatRequest>,
    ) -> Result<Response<BrokerHeartbeatReply>, Status> {
        let r = req.into_inner();
        let fail = |e: ControllerError| BrokerHeartbeatReply {
            status: self.status(&e),
            fenced: true,
            metadata_version: self.version(),
        };
        if !self.shared.is_leader() {
            return Ok(Response::new(fail(self.not_leader())));
        }
        let fenced = {
            let image = self.shared.image.borrow();
            match image.brokers.get(&r.broker_id) {
                Some(b) if b.incarnation_id == r.incarnation_id => Some(b.fenced),
                _ => None,
            }
        };
        let Some(fenced) = fenced else {
            let e = ControllerError::UnknownBroker(format!(
                "broker {} with incarnation {:?} is not registered",
                r.broker_id, r.incarnation_id
            ));
            return Ok(Response::new(fail(e)));
        };
        self.shared
            .sessions
            .lock()
            .heard(r.broker_id, Instant::now());
        let reply = if fenced {
            match self
                .propose(MetadataCommand::UnfenceBroker { id: r.broker_id })
                .await
            {
                Ok(index) => BrokerHeartbeatReply {
                    status: ok(),
                    fenced: false,
                    metadata_version: index,
                },
                Err(e) => fail(e),
            }
        } else {
            BrokerHeartbeatReply {
                status: ok(),
                fenced: false,
                metadata_version: self.version(),
            }
        };
        Ok(Response::new(reply))
    }

    async fn fetch_metadata(
        &self,
        req: Request<FetchMetadataRequest>,
    ) -> Result<Response<MetadataReply>, Status> {
        let since = req.into_inner().since_version;
        let image = self.shared.image.borrow().clone();
        Ok(Response::new(metadata_reply(&image, since)))
    }

    type WatchMetadataStream = MetadataStream;

    async fn watch_metadata(
        &self,
        req: Request<FetchMetadataRequest>,
    ) -> Result<Response<MetadataStream>, Status> {
        let since = req.into_inner().since_version;
        let stream = WatchStream::new(self.shared.image.clone())
            .filter(move |image| image.version > since || since == 0)
            .map(move |image| Ok(metadata_reply(&image, since)));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn propose(
        &self,
        req: Request<ProposeRequest>,
    ) -> Result<Response<ProposeReply>, Status> {
        let command: MetadataCommand = match serde_json::from_slice(&req.into_inner().command) {
            Ok(c) => c,
            Err(e) => {
                let e = ControllerError::Internal(format!("undecodable command: {e}"));
                let mut status = self.status(&e);
                if let Some(s) = status.as_mut() {
                    s.code = StatusCode::InvalidRequest as i32;
                }
                return Ok(Response::new(ProposeReply {
                    status,
                    applied_index: 0,
                }));
            }
        };
        let reply = match self.propose(command).await {
            Ok(index) => ProposeReply {
                status: ok(),
                applied_index: index,
            },
            Err(e) => ProposeReply {
                status: self.status(&e),
                applied_index: 0,
            },
        };
        Ok(Response::new(reply))
    }
}
