//! The broker side of `samsa.v1.Controller`: registration, the broker session (a heartbeat
//! stream to the controller leader), proposals (following NOT_LEADER redirects to the leader,
//! bounded by a deadline) and a metadata watch that keeps a local copy of the image from one
//! image and then deltas. Used by broker-only processes and to forward proposals.
//!
//! The client starts from the bootstrap voters (`--controller-quorum-voters`) and follows the
//! voters as they change: every controller reply names the voters of its Raft membership (with
//! the membership's log index; the newest wins) and the leader's address, which the clones of a
//! client share.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use samsa_proto::v1::controller_client::ControllerClient as Grpc;
use samsa_proto::v1::{
    BrokerHeartbeatReply, BrokerHeartbeatRequest, ChangeVotersRequest, FetchMetadataRequest,
    ProposeRequest, RegisterBrokerRequest, ReplyStatus, StatusCode,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use super::controller_service::MAX_MESSAGE;
use super::network::channel;
use super::{ControllerError, NodeId, VoterChange, VoterChangeError, Voters};
use crate::controller::{apply_delta, MetadataCommand, MetadataDelta, MetadataImage, Refusal};
use crate::security::internal_tls::InternalTls;

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
    /// Every Kafka listener's advertised endpoint.
    pub listeners: Vec<crate::controller::Endpoint>,
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

fn connect(addr: &str, tls: Option<&InternalTls>) -> Result<Grpc<Channel>, ControllerError> {
    channel(addr, tls)
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
    tls: Option<&InternalTls>,
    command: &MetadataCommand,
) -> Result<u64, ControllerError> {
    let bytes =
        serde_json::to_vec(command).map_err(|e| ControllerError::Internal(e.to_string()))?;
    let reply = connect(addr, tls)?
        .propose(ProposeRequest { command: bytes })
        .await
        .map_err(|e| unavailable(addr, e))?
        .into_inner();
    check(reply.status)?;
    Ok(reply.applied_index)
}

/// Asks the controller at `addr` who it is: its node id and the version (log index) of the
/// membership it holds (0: none, it belongs to no quorum yet).
pub(super) async fn probe(
    addr: &str,
    tls: Option<&InternalTls>,
    timeout: Duration,
) -> Result<(NodeId, u64), String> {
    let call = async {
        let reply = connect(addr, tls)
            .map_err(|e| e.to_string())?
            .fetch_metadata(FetchMetadataRequest {
                since_version: u64::MAX,
            })
            .await
            .map_err(|e| e.to_string())?
            .into_inner();
        let status = reply.status.ok_or("reply without status")?;
        let id = NodeId::try_from(status.node_id)
            .map_err(|_| format!("answered with node id {}", status.node_id))?;
        Ok((id, status.voters_version))
    };
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
}

/// The node id of the controller at `addr`.
pub(super) async fn node_id_at(
    addr: &str,
    tls: Option<&InternalTls>,
    timeout: Duration,
) -> Result<NodeId, String> {
    probe(addr, tls, timeout).await.map(|(id, _)| id)
}

/// Where the controllers are, shared by the clones of a client.
#[derive(Debug)]
struct Book {
    /// The voters the process was started with.
    bootstrap: Voters,
    /// The voters of the newest membership a controller told of, and its version.
    current: Option<(Voters, u64)>,
    /// Addresses of leaders named in redirects.
    leaders: std::collections::BTreeMap<NodeId, String>,
}

impl Book {
    fn address(&self, id: NodeId) -> Option<String> {
        self.current
            .as_ref()
            .and_then(|(v, _)| v.address(id))
            .or_else(|| self.leaders.get(&id).map(String::as_str))
            .or_else(|| self.bootstrap.address(id))
            .map(str::to_string)
    }

    /// Whom to try in turn: the current voters, then bootstrap voters not among them.
    fn candidates(&self) -> Vec<(NodeId, String)> {
        let mut all: Vec<(NodeId, String)> = self
            .current
            .as_ref()
            .map(|(v, _)| v.0.iter().map(|(i, a)| (*i, a.clone())).collect())
            .unwrap_or_default();
        for (id, addr) in &self.bootstrap.0 {
            if !all.iter().any(|(i, _)| i == id) {
                all.push((*id, addr.clone()));
            }
        }
        all
    }

    /// Takes in what a controller's reply says about the voters and the leader.
    fn learn(&mut self, status: &ReplyStatus) {
        if let Ok(leader) = NodeId::try_from(status.leader_id) {
            if !status.leader_address.is_empty() {
                self.leaders.insert(leader, status.leader_address.clone());
            }
        }
        if status.voters.is_empty() {
            return;
        }
        let newer = self
            .current
            .as_ref()
            .is_none_or(|(_, version)| status.voters_version > *version);
        if !newer {
            return;
        }
        match status.voters.parse::<Voters>() {
            Ok(voters) => {
                if self.current.as_ref().is_none_or(|(v, _)| *v != voters) {
                    tracing::info!(voters = %voters, version = status.voters_version,
                        "the controller quorum's voters, as a controller tells");
                }
                self.current = Some((voters, status.voters_version));
            }
            Err(e) => tracing::debug!("a controller named unreadable voters: {e}"),
        }
    }
}

impl std::fmt::Debug for ControllerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerClient")
            .field("book", &self.book)
            .field("leader", &self.leader)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Where a process that runs a controller itself reads the voters its Raft membership names,
/// and the membership's version.
pub type LocalVoters = Arc<dyn Fn() -> (Voters, u64) + Send + Sync>;

/// A client of the controller quorum that finds and follows the leader.
#[derive(Clone)]
pub struct ControllerClient {
    book: Arc<RwLock<Book>>,
    /// The local controller's view of the voters, read before each choice of a controller.
    local: Option<LocalVoters>,
    leader: Option<NodeId>,
    next: usize,
    timeout: Duration,
    /// Internal TLS, when the controller ports use it.
    tls: Option<InternalTls>,
}

impl ControllerClient {
    /// A client of `voters` (the bootstrap voters); each call gives up after `timeout`.
    pub fn new(voters: Voters, timeout: Duration) -> ControllerClient {
        ControllerClient {
            book: Arc::new(RwLock::new(Book {
                bootstrap: voters,
                current: None,
                leaders: std::collections::BTreeMap::new(),
            })),
            local: None,
            leader: None,
            next: 0,
            timeout,
            tls: None,
        }
    }

    /// Dials the controllers with internal TLS (`None`: plaintext, the default).
    pub fn with_tls(mut self, tls: Option<InternalTls>) -> ControllerClient {
        self.tls = tls;
        self
    }

    /// Lets the client (and its clones made from now on) read the voters from the controller
    /// of this process whenever it picks a controller: the bootstrap voters may all be gone.
    pub fn with_local_voters(mut self, local: LocalVoters) -> ControllerClient {
        self.local = Some(local);
        self
    }

    /// Tells the client (and its clones) the voters of the membership at `version`, as a local
    /// controller knows them, unless it knows a newer one.
    fn seed(&self, voters: Voters, version: u64) {
        if version == 0 || voters.0.is_empty() {
            return;
        }
        let mut book = self.book.write();
        if book.current.as_ref().is_none_or(|(_, v)| version > *v) {
            book.current = Some((voters, version));
        }
    }

    /// The voters as this client knows them: those a controller last named, else the
    /// bootstrap voters.
    pub fn voters(&self) -> Voters {
        let book = self.book.read();
        match &book.current {
            Some((v, _)) => v.clone(),
            None => book.bootstrap.clone(),
        }
    }

    /// The voter to ask next: the known leader, else the voters in turn.
    fn target(&mut self) -> Option<(NodeId, String)> {
        if let Some(local) = &self.local {
            let (voters, version) = local();
            self.seed(voters, version);
        }
        let book = self.book.read();
        if let Some(l) = self.leader {
            if let Some(addr) = book.address(l) {
                return Some((l, addr));
            }
        }
        let candidates = book.candidates();
        let n = candidates.len();
        let (id, addr) = candidates.into_iter().nth(self.next % n.max(1))?;
        self.next = self.next.wrapping_add(1);
        Some((id, addr))
    }

    /// Maps a reply status to `Ok` or the error it carries, learning the voters it names.
    fn check(&self, status: Option<ReplyStatus>) -> Result<(), ControllerError> {
        if let Some(s) = &status {
            self.book.write().learn(s);
        }
        check(status)
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
            let result = match connect(&addr, self.tls.as_ref()) {
                Ok(client) => match call(client).await {
                    Ok((status, value)) => self.check(status).map(|()| value),
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
                listeners: reg
                    .listeners
                    .iter()
                    .map(|l| samsa_proto::v1::ListenerEndpoint {
                        name: l.name.clone(),
                        host: l.host.clone(),
                        port: l.port,
                    })
                    .collect(),
            };
            async move {
                let r = c.register_broker(req).await?.into_inner();
                Ok((r.status, r.metadata_version))
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
        let reply = connect(&addr, self.tls.as_ref())?
            .fetch_metadata(FetchMetadataRequest { since_version })
            .await
            .map_err(|e| unavailable(&addr, e))?
            .into_inner();
        self.check(reply.status)?;
        decode_image(&reply.image)
    }

    /// Adds or removes a voter through the quorum's leader, within `timeout`.
    pub async fn change_voters(
        &mut self,
        change: &VoterChange,
        timeout: Duration,
    ) -> Result<(), VoterChangeError> {
        let (voter_id, address, learner) = match change {
            VoterChange::Add { id, address } => (*id, address.clone(), false),
            VoterChange::AddLearner { id, address } => (*id, address.clone(), true),
            VoterChange::Remove { id } => (*id, String::new(), false),
        };
        let voter_id = i32::try_from(voter_id)
            .map_err(|_| VoterChangeError::Invalid(format!("voter id {voter_id} too large")))?;
        let timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        let mut client = self.clone();
        client.timeout = timeout;
        let outcome = client
            .on_leader(|mut c| {
                let req = ChangeVotersRequest {
                    voter_id,
                    address: address.clone(),
                    timeout_ms,
                    learner,
                };
                async move {
                    let r = c.change_voters(req).await?.into_inner();
                    Ok((r.status, r.error))
                }
            })
            .await;
        self.leader = client.leader;
        match outcome {
            Ok(error) if error.is_empty() => Ok(()),
            Ok(error) => Err(serde_json::from_slice(&error).unwrap_or_else(|e| {
                VoterChangeError::Failed(format!("undecodable answer of the leader: {e}"))
            })),
            Err(ControllerError::NotLeader { leader }) => {
                Err(VoterChangeError::NotLeader { leader })
            }
            Err(ControllerError::Unavailable(m)) => Err(VoterChangeError::TimedOut(m)),
            Err(e) => Err(VoterChangeError::Failed(e.to_string())),
        }
    }

    /// Keeps a broker registered and in session with the controller leader: a session stream
    /// (BrokerSession) carrying a heartbeat every `interval`, reopened at once on the leader
    /// when it ends (following NOT_LEADER redirects) and after registering again when the
    /// controller no longer knows this incarnation. Publishes each heartbeat answer, until every
    /// receiver is dropped; dropping the session ends the stream, which fences the broker.
    pub fn run_session(
        mut self,
        registration: BrokerRegistration,
        interval: Duration,
    ) -> (watch::Receiver<Option<Heartbeat>>, JoinHandle<()>) {
        let (tx, rx) = watch::channel(None);
        let task = tokio::spawn(async move {
            let id = registration.broker_id;
            let mut registered = false;
            let mut backoff = Backoff::new();
            let mut lingering = None;
            while !tx.is_closed() {
                if !registered {
                    match self.register(&registration).await {
                        Ok(_) => registered = true,
                        Err(e) => tracing::warn!(broker = id, "registration: {e}"),
                    }
                }
                if registered {
                    match self
                        .session(&registration, interval, &tx, &mut backoff, &mut lingering)
                        .await
                    {
                        SessionEnd::Receivers => return,
                        SessionEnd::Redirected => {
                            backoff.reset();
                            continue;
                        }
                        SessionEnd::Unknown(m) => {
                            tracing::warn!(broker = id, "controller lost the registration: {m}");
                            registered = false;
                            backoff.reset();
                            continue;
                        }
                        SessionEnd::Failed(e) => {
                            tracing::info!(broker = id, "controller session: {e}");
                            self.leader = None;
                        }
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff.next()) => {}
                    _ = tx.closed() => return,
                }
            }
        });
        (rx, task)
    }

    /// One session stream with the voter [`Self::target`] names, until it ends. A stream left
    /// for silence is kept open in `lingering` until the next one is answered: were the silent
    /// controller still the leader, the end of a stream it no longer counts as current fences
    /// nothing.
    async fn session(
        &mut self,
        registration: &BrokerRegistration,
        interval: Duration,
        tx: &watch::Sender<Option<Heartbeat>>,
        backoff: &mut Backoff,
        lingering: &mut Option<OpenSession>,
    ) -> SessionEnd {
        let Some((node, addr)) = self.target() else {
            return SessionEnd::Failed(ControllerError::Unavailable("no voters".into()));
        };
        let mut client = match connect(&addr, self.tls.as_ref()) {
            Ok(c) => c,
            Err(e) => return SessionEnd::Failed(e),
        };
        let heartbeat = BrokerHeartbeatRequest {
            broker_id: registration.broker_id,
            incarnation_id: registration.incarnation_id.clone(),
        };
        // A heartbeat unanswered for this long means the controller is cut off or stuck: the
        // broker moves on well before a new leader's session timeout could expire.
        let answer_timeout = answer_timeout(interval).min(self.timeout);
        let (beats, outbound) = mpsc::channel(1);
        // The first heartbeat goes with the stream's opening.
        let _ = beats.try_send(heartbeat.clone());
        let mut sent = Some(tokio::time::Instant::now());
        let opened = tokio::select! {
            r = client.broker_session(ReceiverStream::new(outbound)) => r,
            _ = tokio::time::sleep(answer_timeout) => {
                return SessionEnd::Failed(unavailable(&addr, "the session was not accepted"));
            }
            _ = tx.closed() => return SessionEnd::Receivers,
        };
        let replies = match opened {
            Ok(r) => r.into_inner(),
            Err(e) => return SessionEnd::Failed(unavailable(&addr, e)),
        };
        let mut open = OpenSession { beats, replies };
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let unanswered = sent.map(|at| at + answer_timeout);
            let reply = tokio::select! {
                m = open.replies.message() => m,
                _ = tick.tick() => {
                    // One heartbeat in flight at a time.
                    if sent.is_none() && open.beats.try_send(heartbeat.clone()).is_ok() {
                        sent = Some(tokio::time::Instant::now());
                    }
                    continue;
                }
                _ = sleep_until_some(unanswered) => {
                    *lingering = Some(open);
                    return SessionEnd::Failed(unavailable(&addr, "no heartbeat answer"));
                }
                _ = tx.closed() => return SessionEnd::Receivers,
            };
            let reply = match reply {
                Ok(Some(r)) => r,
                Ok(None) => {
                    return SessionEnd::Failed(unavailable(&addr, "session stream ended"));
                }
                Err(e) => return SessionEnd::Failed(unavailable(&addr, e)),
            };
            sent = None;
            match self.check(reply.status) {
                Ok(()) => {
                    self.leader = Some(node);
                    backoff.reset();
                    // This stream is the broker's session now: the one left behind may end.
                    *lingering = None;
                    tx.send_replace(Some(Heartbeat {
                        fenced: reply.fenced,
                        metadata_version: reply.metadata_version,
                    }));
                }
                Err(ControllerError::NotLeader { leader }) => {
                    self.leader = leader.filter(|l| *l != node);
                    return match self.leader {
                        Some(_) => SessionEnd::Redirected,
                        None => SessionEnd::Failed(ControllerError::NotLeader { leader }),
                    };
                }
                Err(ControllerError::UnknownBroker(m)) => return SessionEnd::Unknown(m),
                Err(e) => return SessionEnd::Failed(e),
            }
        }
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
        let mut stream = connect(&addr, self.tls.as_ref())?
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
            self.check(reply.status)?;
            if let Some(image) = decode_image(&reply.image)? {
                if image.version > tx.borrow().version {
                    tx.send_replace(Arc::new(image));
                }
            } else if !reply.delta.is_empty() {
                let delta: MetadataDelta = serde_json::from_slice(&reply.delta)
                    .map_err(|e| ControllerError::Internal(format!("undecodable delta: {e}")))?;
                let mut image = MetadataImage::clone(&tx.borrow());
                // A delta that does not fit ends the stream; the next one starts with an image.
                apply_delta(&mut image, &delta)
                    .map_err(|e| ControllerError::Internal(e.to_string()))?;
                tx.send_replace(Arc::new(image));
            }
        }
    }
}

/// How long a broker waits for the answer to a heartbeat before it leaves the controller for
/// another: the heartbeat interval, within half a second and two seconds.
fn answer_timeout(interval: Duration) -> Duration {
    interval.clamp(Duration::from_millis(500), Duration::from_secs(2))
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until_some(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// An open session stream: dropping it ends the stream.
struct OpenSession {
    beats: mpsc::Sender<BrokerHeartbeatRequest>,
    replies: tonic::Streaming<BrokerHeartbeatReply>,
}

/// How a session stream ended.
enum SessionEnd {
    /// Nobody listens to the heartbeat answers any more.
    Receivers,
    /// The voter named another leader: reconnect there at once.
    Redirected,
    /// The controller does not know this incarnation: register again.
    Unknown(String),
    /// The stream failed or the voter knows no leader: retry after a pause.
    Failed(ControllerError),
}

/// Retry pacing of a broken session: quick at first (a leader that just moved), slower while
/// no controller answers.
struct Backoff(Duration);

impl Backoff {
    const FIRST: Duration = Duration::from_millis(50);
    const MAX: Duration = Duration::from_millis(1000);

    fn new() -> Backoff {
        Backoff(Backoff::FIRST)
    }

    fn reset(&mut self) {
        self.0 = Backoff::FIRST;
    }

    /// The pause before the next attempt; each call doubles the following one, up to a second.
    fn next(&mut self) -> Duration {
        let now = self.0;
        self.0 = (self.0 * 2).min(Backoff::MAX);
        now
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
