//! The gRPC server of a controller node: `samsa.v1.Controller` for brokers and `samsa.v1.Raft`
//! for the other voters, on one listener. Writes (register, broker sessions, propose) are served
//! by the leader only; elsewhere they answer NOT_LEADER with the leader's id and address, never
//! wait. Metadata reads are served by every controller from its applied image; a metadata watch
//! sends the image once, then deltas. Voter changes (ChangeVoters) are made by the leader only.
//! Every reply names the voters of this controller's Raft membership, so that brokers follow
//! the quorum as its voters change.
//!
//! A broker session is a stream of heartbeats: the leader fences the broker's incarnation as
//! soon as its current stream closes or breaks (a crashed process closes its sockets), and never
//! for a stream that ends because leadership moved or this node stops.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use samsa_proto::v1::controller_server::{Controller, ControllerServer};
use samsa_proto::v1::raft_server::RaftServer;
use samsa_proto::v1::{
    BrokerHeartbeatReply, BrokerHeartbeatRequest, ChangeVotersReply, ChangeVotersRequest,
    FetchMetadataRequest, MetadataReply, ProposeReply, ProposeRequest, RegisterBrokerReply,
    RegisterBrokerRequest, ReplyStatus, StatusCode,
};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::{ReceiverStream, WatchStream};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use super::raft_service::RaftService;
use super::{ControllerError, Shared, VoterChange, VoterChangeError};
use crate::controller::{diff, MetadataCommand, MetadataImage, StreamEnd, StreamId};
use crate::security::internal_tls::transport;

/// Largest gRPC message sent or accepted: a batch of log entries or a whole metadata image.
pub(super) const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// Serves both services until `shutdown` turns true.
pub(super) async fn serve(
    shared: Arc<Shared>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    let incoming = transport::incoming(listener, shared.tls.clone());
    let raft = RaftServer::new(RaftService {
        raft: shared.raft.clone(),
    })
    .max_decoding_message_size(MAX_MESSAGE)
    .max_encoding_message_size(MAX_MESSAGE);
    let controller = ControllerServer::new(ControllerService {
        shared,
        shutdown: shutdown.clone(),
    })
    .max_decoding_message_size(MAX_MESSAGE)
    .max_encoding_message_size(MAX_MESSAGE);
    let result = tonic::transport::Server::builder()
        .add_service(raft)
        .add_service(controller)
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .await;
    if let Err(e) = result {
        tracing::error!("controller gRPC server stopped: {e}");
    }
}

#[derive(Clone)]
struct ControllerService {
    shared: Arc<Shared>,
    /// Turns true when this node stops: session streams then end without fencing anyone.
    shutdown: watch::Receiver<bool>,
}

fn ok() -> Option<ReplyStatus> {
    Some(ReplyStatus {
        code: StatusCode::Ok as i32,
        leader_id: -1,
        ..Default::default()
    })
}

impl ControllerService {
    /// Tells the caller the current voters and who answers, with every reply.
    fn stamp(&self, status: &mut ReplyStatus) {
        let (voters, version) = self.shared.current_voters();
        status.voters = voters.to_string();
        status.voters_version = version;
        status.node_id = i32::try_from(self.shared.id).unwrap_or(-1);
    }

    fn ok(&self) -> Option<ReplyStatus> {
        let mut status = ok().unwrap_or_default();
        self.stamp(&mut status);
        Some(status)
    }

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
        let mut status = ReplyStatus {
            code: code as i32,
            message: err.to_string(),
            leader_id: leader.and_then(|l| i32::try_from(l).ok()).unwrap_or(-1),
            leader_address: leader
                .and_then(|l| self.shared.address(l))
                .unwrap_or_default(),
            refusal,
            ..Default::default()
        };
        self.stamp(&mut status);
        Some(status)
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

    /// Answers one heartbeat of session `stream`, unfencing the broker when it is fenced; a
    /// valid one makes `stream` the broker's current session and names the broker in `broker`.
    async fn heartbeat(
        &self,
        r: BrokerHeartbeatRequest,
        stream: StreamId,
        broker: &mut Option<i32>,
    ) -> BrokerHeartbeatReply {
        let fail = |e: ControllerError| BrokerHeartbeatReply {
            status: self.status(&e),
            fenced: true,
            metadata_version: self.version(),
        };
        if !self.shared.is_leader() {
            return fail(self.not_leader());
        }
        if broker.is_some_and(|b| b != r.broker_id) {
            let mut reply = fail(ControllerError::Internal(format!(
                "broker {} on the session stream of broker {broker:?}",
                r.broker_id
            )));
            if let Some(s) = reply.status.as_mut() {
                s.code = StatusCode::InvalidRequest as i32;
            }
            return reply;
        }
        let fenced = {
            let image = self.shared.image.borrow();
            match image.brokers.get(&r.broker_id) {
                Some(b) if b.incarnation_id == r.incarnation_id => Some(b.fenced),
                _ => None,
            }
        };
        let Some(fenced) = fenced else {
            return fail(ControllerError::UnknownBroker(format!(
                "broker {} with incarnation {:?} is not registered",
                r.broker_id, r.incarnation_id
            )));
        };
        *broker = Some(r.broker_id);
        self.shared.sessions.lock().stream_heartbeat(
            r.broker_id,
            &r.incarnation_id,
            stream,
            Instant::now(),
        );
        if !fenced {
            return BrokerHeartbeatReply {
                status: self.ok(),
                fenced: false,
                metadata_version: self.version(),
            };
        }
        tracing::info!(
            broker = r.broker_id,
            "heartbeat from a fenced broker: unfencing it"
        );
        match self
            .propose(MetadataCommand::UnfenceBroker { id: r.broker_id })
            .await
        {
            Ok(index) => BrokerHeartbeatReply {
                status: self.ok(),
                fenced: false,
                metadata_version: index,
            },
            Err(e) => fail(e),
        }
    }

    /// Serves one session stream until the broker closes it, its connection breaks, this node
    /// loses the leadership or stops; then fences the broker if the stream was its current
    /// session and the broker (not this node) ended it.
    async fn run_session(
        self,
        stream: StreamId,
        mut inbound: Streaming<BrokerHeartbeatRequest>,
        tx: mpsc::Sender<Result<BrokerHeartbeatReply, Status>>,
    ) {
        let mut shutdown = self.shutdown.clone();
        let mut raft = self.shared.raft.metrics();
        let me = self.shared.id;
        let mut broker = None;
        let why = loop {
            let next = tokio::select! {
                m = inbound.message() => m,
                _ = shutdown.wait_for(|stop| *stop) => break StreamEnd::ShuttingDown,
                _ = raft.wait_for(|m| m.current_leader != Some(me)) => {
                    let e = self.not_leader();
                    let reply = BrokerHeartbeatReply {
                        status: self.status(&e),
                        fenced: true,
                        metadata_version: self.version(),
                    };
                    let _ = tx.try_send(Ok(reply));
                    break StreamEnd::LeadershipLost;
                }
                _ = tx.closed() => break StreamEnd::Broken,
            };
            let request = match next {
                Ok(Some(r)) => r,
                Ok(None) => break StreamEnd::Closed,
                Err(status) => {
                    tracing::debug!(?broker, "broker session stream failed: {status}");
                    break StreamEnd::Broken;
                }
            };
            let reply = self.heartbeat(request, stream, &mut broker).await;
            let code = reply.status.as_ref().map(|s| s.code);
            if tx.send(Ok(reply)).await.is_err() {
                break StreamEnd::Broken;
            }
            if code == Some(StatusCode::NotLeader as i32) {
                break StreamEnd::LeadershipLost;
            }
            if code == Some(StatusCode::InvalidRequest as i32) {
                break StreamEnd::Closed;
            }
        };
        drop(tx);
        let Some(id) = broker else { return };
        // Whatever the stream saw, a node that stops or no longer leads fences nobody.
        let why = if *shutdown.borrow() {
            StreamEnd::ShuttingDown
        } else if !self.shared.is_leader() {
            StreamEnd::LeadershipLost
        } else {
            why
        };
        let fence = self.shared.sessions.lock().stream_ended(id, stream, why);
        let Some(incarnation) = fence else {
            tracing::info!(broker = id, ?why, "broker session stream ended");
            return;
        };
        tracing::warn!(broker = id, %incarnation, ?why,
            "broker session stream ended: fencing the broker");
        let command = MetadataCommand::FenceBroker {
            id,
            incarnation: Some(incarnation.clone()),
        };
        if let Err(e) = self.shared.propose_local(command).await {
            tracing::warn!(broker = id, "fencing failed: {e}");
            return;
        }
        // The same process may have opened a new stream while the fence was in flight (its
        // heartbeat then saw it unfenced): it is alive, let it in again at once.
        let reopened = self.shared.sessions.lock().current_incarnation(id) == Some(&*incarnation);
        if reopened {
            tracing::info!(
                broker = id,
                "the broker reconnected meanwhile: unfencing it"
            );
            if let Err(e) = self.propose(MetadataCommand::UnfenceBroker { id }).await {
                tracing::warn!(broker = id, "unfencing failed: {e}");
            }
        }
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
        delta: Vec::new(),
    }
}

/// The next message of a metadata watch that started at `since`, for a newly applied `image`:
/// the full image first (none when the watcher already has this version), then the delta from
/// the image the watcher has (`sent`) to `image`. `sent` follows what the watcher holds.
fn watch_reply(
    sent: &mut Option<Arc<MetadataImage>>,
    image: Arc<MetadataImage>,
    since: u64,
) -> Option<MetadataReply> {
    let reply = match sent.as_deref() {
        None if since != 0 && image.version == since => None,
        None if since != 0 && image.version < since => return None,
        None => Some(metadata_reply(&image, 0)),
        Some(base) if image.version <= base.version => return None,
        Some(base) => {
            let delta = diff(base, &image);
            match serde_json::to_vec(&delta) {
                Ok(bytes) => Some(MetadataReply {
                    status: ok(),
                    version: image.version,
                    image: Vec::new(),
                    delta: bytes,
                }),
                Err(e) => {
                    tracing::error!("metadata delta not serializable, sending the image: {e}");
                    Some(metadata_reply(&image, 0))
                }
            }
        }
    };
    *sent = Some(image);
    reply
}

type MetadataStream = Pin<Box<dyn Stream<Item = Result<MetadataReply, Status>> + Send>>;

type SessionStream = Pin<Box<dyn Stream<Item = Result<BrokerHeartbeatReply, Status>> + Send>>;

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
            listeners: r
                .listeners
                .into_iter()
                .map(|l| crate::controller::Endpoint {
                    name: l.name,
                    host: l.host,
                    port: l.port,
                })
                .collect(),
        };
        let reply = match self.propose(command).await {
            Ok(index) => {
                self.shared
                    .sessions
                    .lock()
                    .heard(r.broker_id, Instant::now());
                RegisterBrokerReply {
                    status: self.ok(),
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

    type BrokerSessionStream = SessionStream;

    async fn broker_session(
        &self,
        req: Request<Streaming<BrokerHeartbeatRequest>>,
    ) -> Result<Response<SessionStream>, Status> {
        let peer = req.remote_addr();
        let inbound = req.into_inner();
        let (tx, rx) = mpsc::channel(4);
        let stream = self.shared.sessions.lock().new_stream();
        tracing::debug!(?peer, ?stream, "broker session stream opened");
        tokio::spawn(self.clone().run_session(stream, inbound, tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn fetch_metadata(
        &self,
        req: Request<FetchMetadataRequest>,
    ) -> Result<Response<MetadataReply>, Status> {
        let since = req.into_inner().since_version;
        let image = self.shared.image.borrow().clone();
        let mut reply = metadata_reply(&image, since);
        reply.status = self.ok();
        Ok(Response::new(reply))
    }

    type WatchMetadataStream = MetadataStream;

    async fn watch_metadata(
        &self,
        req: Request<FetchMetadataRequest>,
    ) -> Result<Response<MetadataStream>, Status> {
        let since = req.into_inner().since_version;
        let mut sent = None;
        let service = self.clone();
        let stream = WatchStream::new(self.shared.image.clone()).filter_map(move |image| {
            watch_reply(&mut sent, image, since).map(|mut reply| {
                reply.status = service.ok();
                Ok(reply)
            })
        });
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
                status: self.ok(),
                applied_index: index,
            },
            Err(e) => ProposeReply {
                status: self.status(&e),
                applied_index: 0,
            },
        };
        Ok(Response::new(reply))
    }

    async fn change_voters(
        &self,
        req: Request<ChangeVotersRequest>,
    ) -> Result<Response<ChangeVotersReply>, Status> {
        let r = req.into_inner();
        let result = match u64::try_from(r.voter_id) {
            Err(_) => Err(VoterChangeError::Invalid(format!(
                "voter id {} is negative",
                r.voter_id
            ))),
            Ok(id) => {
                let change = if r.address.is_empty() {
                    VoterChange::Remove { id }
                } else if r.learner {
                    VoterChange::AddLearner {
                        id,
                        address: r.address,
                    }
                } else {
                    VoterChange::Add {
                        id,
                        address: r.address,
                    }
                };
                let timeout = std::time::Duration::from_millis(u64::from(r.timeout_ms));
                self.shared.change_voters(change, timeout).await
            }
        };
        let reply = match result {
            Ok(()) => ChangeVotersReply {
                status: self.ok(),
                error: Vec::new(),
            },
            Err(VoterChangeError::NotLeader { leader }) => ChangeVotersReply {
                status: self.status(&ControllerError::NotLeader { leader }),
                error: Vec::new(),
            },
            Err(e) => {
                tracing::info!(error = %e, "voter change refused");
                ChangeVotersReply {
                    status: self.ok(),
                    error: serde_json::to_vec(&e).unwrap_or_default(),
                }
            }
        };
        Ok(Response::new(reply))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::{apply_delta, MetadataDelta};

    fn image(version: u64, topics: usize) -> Arc<MetadataImage> {
        let mut i = MetadataImage {
            version,
            ..Default::default()
        };
        i.broker_defaults
            .insert("topics".into(), topics.to_string());
        Arc::new(i)
    }

    /// Plays a watch from `since` over `images` as a watcher does, from `have`.
    fn watch(since: u64, have: MetadataImage, images: &[Arc<MetadataImage>]) -> MetadataImage {
        let mut sent = None;
        let mut held = have;
        for i in images {
            let Some(reply) = watch_reply(&mut sent, i.clone(), since) else {
                continue;
            };
            assert_eq!(reply.version, i.version);
            if !reply.image.is_empty() {
                assert!(reply.delta.is_empty());
                held = serde_json::from_slice(&reply.image).unwrap();
            } else {
                let d: MetadataDelta = serde_json::from_slice(&reply.delta).unwrap();
                apply_delta(&mut held, &d).unwrap();
            }
        }
        held
    }

    #[test]
    fn a_new_watcher_gets_the_image_then_deltas() {
        let images = [image(3, 1), image(5, 2), image(9, 2), image(12, 3)];
        let mut sent = None;
        let first = watch_reply(&mut sent, images[0].clone(), 0).unwrap();
        assert!(!first.image.is_empty() && first.delta.is_empty());
        let second = watch_reply(&mut sent, images[1].clone(), 0).unwrap();
        assert!(second.image.is_empty() && !second.delta.is_empty());
        // The same version again (a watch channel wakes without a change): nothing.
        assert!(watch_reply(&mut sent, images[1].clone(), 0).is_none());
        assert_eq!(watch(0, MetadataImage::default(), &images), *images[3]);
    }

    #[test]
    fn a_watcher_at_the_current_version_gets_only_deltas() {
        let images = [image(5, 2), image(9, 3)];
        let mut sent = None;
        assert!(watch_reply(&mut sent, images[0].clone(), 5).is_none());
        let next = watch_reply(&mut sent, images[1].clone(), 5).unwrap();
        assert!(next.image.is_empty());
        let have = MetadataImage::clone(&images[0]);
        assert_eq!(watch(5, have, &images), *images[1]);
    }

    #[test]
    fn a_watcher_ahead_of_this_controller_waits_for_a_newer_image() {
        let images = [image(3, 1), image(5, 2), image(9, 3)];
        let mut sent = None;
        assert!(watch_reply(&mut sent, images[0].clone(), 5).is_none());
        assert!(sent.is_none());
        let have = MetadataImage::clone(&images[1]);
        assert_eq!(watch(5, have, &images), *images[2]);
    }
}
