//! The broker side of `samsa.v1.Controller`: registration, heartbeats, proposals (following
//! NOT_LEADER redirects to the leader, bounded by a deadline) and a metadata watch that keeps a
//! local copy of the image. Used by broker-only processes and to forward proposals.

use std::sync::Arc;
use std::time::{Duration, Instant};

use samsa_proto::v1::controller_client::ControllerClient as Grpc;
use samsa_proto::v1::{
    BrokerHeartbeatRequest, FetchMetadataRequest, ProposeRequest, RegisterBrokerRequest,
    ReplyStatus, StatusCode,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use super::controller_service::MAX_MESSAGE;
use super::network::channel;
use super::{ControllerError, NodeId, Voters};
use crate::controller::{MetadataCommand, MetadataImage, Refusal};

/// What a broker tells the controller when it starts.
#[derive(Debug, Clone)]
pub struct BrokerRegistration {
    /// Broker id.
    pub broker_id: i32,
    /// Host clients connect to.
    pub host: String,
    /// Kafka port.
    pub port: i32,
    /// Rack.
    pub rack: Option<String>,
    /// Changes on every process start.
    pub incarnation_id: String,
    /// host:port of the broker's replication (gRPC) listener.
    pub replication: String,
}

/// The controller's answer to a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// Whether the broker is fenced.
    pub fenced: bool,
    /// Metadata version the controller has.
    pub metadata_version: u64,
}

/// Maps a reply status to `Ok` or the error it carries.
fn check(status: Option<ReplyStatus>) -> Result<(), ControllerError> {
    let Some(s) = status else {
        return Err(ControllerError::Internal("reply without status".into()));
    };
    let leader = u64::try_from(s.leader_id).ok();
    match StatusCode::try_from(s.code) {
        Ok(StatusCode::Ok) => Ok(()),
        Ok(StatusCode::NotLeader) => Err(ControllerError::NotLeader { leader }),
        Ok(StatusCode::Refused) => match serde_json::from_slice::<Refusal>(&s.refusal) {
            Ok(r) => Err(ControllerError::Refused(r)),
            Err(_) => Err(ControllerError::Internal(s.message)),
        },
        Ok(StatusCode::UnknownBroker) => Err(ControllerError::UnknownBroker(s.message)),
        _ => Err(ControllerError::Internal(s.message)),
    }
}

fn unavailable(addr: &str, e: impl std::fmt::Display) -> ControllerError {
    ControllerError::Unavailable(format!("controller {addr}: {e}"))
}

fn connect(addr: &str) -> Result<Grpc<Channel>, ControllerError> {
    channel(addr)
        .map(|c| {
            Grpc::new(c)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE)
        })
        .map_err(|e| unavailable(addr, e))
}

/// Proposes `command` at the controller at `addr` once, without following redirects.
pub(super) async fn propose_at(
    addr: &str,
    command: &MetadataCommand,
) -> Result<u64, ControllerError> {
    let bytes =
        serde_json::to_vec(command).map_err(|e| ControllerError::Internal(e.to_string()))?;
    let reply = connect(addr)?
        .propose(ProposeRequest { command: bytes })
        .await
        .map_err(|e| unavailable(addr, e))?
        .into_inner();
    check(reply.status)?;
    Ok(reply.applied_index)
}

/// A client of the controller quorum that finds and follows the leader.
#[derive(Debug, Clone)]
pub struct ControllerClient {
    voters: Voters,
    leader: Option<NodeId>,
    next: usize,
    timeout: Duration,
}

impl ControllerClient {
    /// A client of `voters`; each call gives up after `timeout`.
    pub fn new(voters: Voters, timeout: Duration) -> ControllerClient {
        ControllerClient {
            voters,
            leader: None,
            next: 0,
            timeout,
        }
    }

    /// The voter to ask next: the known leader, else the voters in turn.
    fn target(&mut self) -> Option<(NodeId, String)> {
        if let Some(l) = self.leader {
            if let Some(addr) = self.voters.address(l) {
                return Some((l, addr.to_string()));
            }
        }
        let n = self.voters.0.len();
        let (id, addr) = self.voters.0.iter().nth(self.next % n.max(1))?;
        self.next = self.next.wrapping_add(1);
        Some((*id, addr.clone()))
    }

    /// Runs `call` against the leader, following redirects and retrying unreachable voters
    /// until the deadline.
    async fn on_leader<T, F, Fut>(&mut self, mut call: F) -> Result<T, ControllerError>
    where
        F: FnMut(Grpc<Channel>) -> Fut,
        Fut: std::future::Future<Output = Result<(Option<ReplyStatus>, T), tonic::Status>>,
    {
        let deadline = Instant::now() + self.timeout;
        loop {
            let Some((id, addr)) = self.target() else {
                return Err(ControllerError::Unavailable("no voters".into()));
            };
            let result = match connect(&addr) {
                Ok(client) => match call(client).await {
                    Ok((status, value)) => check(status).map(|()| value),
                    Err(e) => Err(unavailable(&addr, e)),
                },
                Err(e) => Err(e),
            };
            match result {
                Ok(v) => {
                    self.leader = Some(id);
                    return Ok(v);
                }
                Err(ControllerError::NotLeader { leader }) => {
                    self.leader = leader.filter(|l| *l != id);
                    if self.leader.is_some() {
                        continue;
                    }
                }
                Err(ControllerError::Unavailable(m)) => {
                    self.leader = None;
                    if Instant::now() >= deadline {
                        return Err(ControllerError::Unavailable(m));
                    }
                }
                Err(e) => return Err(e),
            }
            if Instant::now() >= deadline {
                return Err(ControllerError::Unavailable(format!(
                    "no controller leader within {:?}",
                    self.timeout
                )));
            }
            // Retry pacing while an election runs or a voter is down.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Registers the broker; returns the metadata version at which it was applied.
    pub async fn register(&mut self, reg: &BrokerRegistration) -> Result<u64, ControllerError> {
        self.on_leader(|mut c| {
            let req = RegisterBrokerRequest {
                broker_id: reg.broker_id,
                host: reg.host.clone(),
                port: reg.port,
                rack: reg.rack.clone(),
                incarnation_id: reg.incarnation_id.clone(),
                replication_address: reg.replication.clone(),
            };
            async move {
                let r = c.register_broker(req).await?.into_inner();
                Ok((r.status, r.metadata_version))
            }
        })
        .await
    }

    /// One heartbeat of the broker.
    pub async fn heartbeat(
        &mut self,
        broker_id: i32,
        incarnation_id: &str,
    ) -> Result<Heartbeat, ControllerError> {
        self.on_leader(|mut c| {
            let req = BrokerHeartbeatRequest {
                broker_id,
                incarnation_id: incarnation_id.to_string(),
            };
            async move {
                let r = c.broker_heartbeat(req).await?.into_inner();
                let hb = Heartbeat {
                    fenced: r.fenced,
                    metadata_version: r.metadata_version,
                };
                Ok((r.status, hb))
            }
        })
        .await
    }

    /// Commits a command through the leader; returns its log index.
    pub async fn propose(&mut self, command: &MetadataCommand) -> Result<u64, ControllerError> {
        let bytes =
            serde_json::to_vec(command).map_err(|e| ControllerError::Internal(e.to_string()))?;
        self.on_leader(|mut c| {
            let req = ProposeRequest {
                command: bytes.clone(),
            };
            async move {
                let r = c.propose(req).await?.into_inner();
                Ok((r.status, r.applied_index))
            }
        })
        .await
    }

    /// The image of one controller (any voter), if newer than `since_version`.
    pub async fn fetch_metadata(
        &mut self,
        since_version: u64,
    ) -> Result<Option<MetadataImage>, ControllerError> {
        let (_, addr) = self
            .target()
            .ok_or_else(|| ControllerError::Unavailable("no voters".into()))?;
        let reply = connect(&addr)?
            .fetch_metadata(FetchMetadataRequest { since_version })
            .await
            .map_err(|e| unavailable(&addr, e))?
            .into_inner();
        check(reply.status)?;
        decode_image(&reply.image)
    }

    /// Keeps a broker registered and heartbeating every `interval` (registering again when
    /// the controller no longer knows this incarnation), publishing each heartbeat answer,
    /// until every receiver is dropped.
    pub fn run_session(
        mut self,
        registration: BrokerRegistration,
        interval: Duration,
    ) -> (watch::Receiver<Option<Heartbeat>>, JoinHandle<()>) {
        let (tx, rx) = watch::channel(None);
        let task = tokio::spawn(async move {
            let mut registered = false;
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = tx.closed() => return,
                }
                if !registered {
                    match self.register(&registration).await {
                        Ok(_) => registered = true,
                        Err(e) => {
                            tracing::warn!(broker = registration.broker_id, "registration: {e}");
                            continue;
                        }
                    }
                }
                let id = registration.broker_id;
                match self.heartbeat(id, &registration.incarnation_id).await {
                    Ok(hb) => {
                        tx.send_replace(Some(hb));
                    }
                    Err(ControllerError::UnknownBroker(m)) => {
                        tracing::warn!(broker = id, "controller lost the registration: {m}");
                        registered = false;
                    }
                    Err(e) => tracing::debug!(broker = id, "heartbeat: {e}"),
                }
            }
        });
        (rx, task)
    }

    /// Follows the image of the controllers (WatchMetadata, reconnecting to the next voter when
    /// a stream breaks) into a watch channel, until every receiver is dropped.
    pub fn watch(mut self) -> (watch::Receiver<Arc<MetadataImage>>, JoinHandle<()>) {
        let (tx, rx) = watch::channel(Arc::new(MetadataImage::default()));
        let task = tokio::spawn(async move {
            while !tx.is_closed() {
                let since = tx.borrow().version;
                if let Err(e) = self.follow(&tx, since).await {
                    tracing::debug!("metadata watch: {e}");
                    self.leader = None;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = tx.closed() => return,
                }
            }
        });
        (rx, task)
    }

    async fn follow(
        &mut self,
        tx: &watch::Sender<Arc<MetadataImage>>,
        since: u64,
    ) -> Result<(), ControllerError> {
        let (_, addr) = self
            .target()
            .ok_or_else(|| ControllerError::Unavailable("no voters".into()))?;
        let mut stream = connect(&addr)?
            .watch_metadata(FetchMetadataRequest {
                since_version: since,
            })
            .await
            .map_err(|e| unavailable(&addr, e))?
            .into_inner();
        loop {
            let next = tokio::select! {
                m = stream.message() => m,
                _ = tx.closed() => return Ok(()),
            };
            let Some(reply) = next.map_err(|e| unavailable(&addr, e))? else {
                return Ok(());
            };
            check(reply.status)?;
            if let Some(image) = decode_image(&reply.image)? {
                if image.version > tx.borrow().version {
                    tx.send_replace(Arc::new(image));
                }
            }
        }
    }
}

fn decode_image(bytes: &[u8]) -> Result<Option<MetadataImage>, ControllerError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    serde_json::from_slice(bytes)
        .map(Some)
        .map_err(|e| ControllerError::Internal(format!("undecodable image: {e}")))
}
