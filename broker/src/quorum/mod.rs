//! The KRaft-style metadata quorum: an openraft group of controllers whose log holds metadata
//! commands, stored in `<data_dir>/quorum/quorum.redb`, talking gRPC (`samsa.v1.Raft`) to the
//! members of its Raft membership and serving brokers (`samsa.v1.Controller`). The static voter
//! list bootstraps a new quorum; voters are then added and removed one at a time
//! ([`VoterChange`], KIP-853), and a controller outside the list starts as a non-voter.
//!
//! [`start`] runs one controller node and returns a [`QuorumHandle`]: [`QuorumHandle::propose`]
//! commits a [`MetadataCommand`] (forwarded to the leader when this node is not it) and
//! [`QuorumHandle::image`] subscribes to the applied [`MetadataImage`]. Broker-only processes use
//! [`ControllerClient`] instead. This module never touches partition logs or the Kafka front end.

mod activity;
mod client;
mod controller_service;
mod describe;
mod liveness;
mod log_store;
mod membership;
mod network;
mod raft_service;
mod state_machine;
#[cfg(test)]
mod store_tests;
mod voters;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, Raft};
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use activity::Activity;
pub use client::{BrokerRegistration, ControllerClient, Heartbeat, LocalVoters};
pub use describe::{QuorumDescription, ReplicaProgress};
pub use log_store::LogStore;
pub use membership::{VoterChange, VoterChangeError};
pub use state_machine::StateMachine;
pub use voters::Voters;

use crate::config::BrokerConfig;
use crate::controller::{ApplyResult, MetadataCommand, MetadataImage, Refusal, Sessions};
use crate::metrics::QuorumMetrics;
use crate::security::internal_tls::InternalTls;

/// Raft node ids (Kafka node ids, which are never negative).
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// openraft types of the metadata quorum.
    pub TypeConfig:
        D = MetadataCommand,
        R = ApplyResult,
        NodeId = NodeId,
        Node = BasicNode,
        SnapshotData = std::io::Cursor<Vec<u8>>,
);

/// A Raft log entry of the quorum.
pub type Entry = openraft::Entry<TypeConfig>;

/// Settings of one controller node.
#[derive(Debug, Clone)]
pub struct QuorumConfig {
    /// This node's id. A node that is not among `voters` starts as a non-voter: it waits to be
    /// added (AddRaftVoter) and never initializes a quorum.
    pub node_id: NodeId,
    /// The voters that bootstrap a new quorum and are contacted first, with their controller
    /// addresses; once the quorum exists its Raft membership names the voters.
    pub voters: Voters,
    /// Address the controller gRPC server binds to.
    pub listen: SocketAddr,
    /// The address (host:port) other controllers reach this one at; port 0: the bound one.
    pub advertised: String,
    /// Directory holding `quorum/quorum.redb`.
    pub data_dir: PathBuf,
    /// A broker not heard from for this long is fenced.
    pub session_timeout: Duration,
    /// Raft leader heartbeat interval.
    pub raft_heartbeat: Duration,
    /// Raft election timeout range; a follower without a leader for this long stands.
    pub election_timeout: (Duration, Duration),
    /// How long a proposal may wait for a leader and a commit.
    pub request_timeout: Duration,
    /// Preferred-leader balance: how often the leader checks, and the per-broker imbalance
    /// (percent) above which leadership goes back to preferred replicas; `None`: never.
    pub leader_rebalance: Option<(Duration, u32)>,
    /// Mutual TLS of the controller listener and of every dial to another controller
    /// (--internal-tls-*); `None`: plaintext.
    pub tls: Option<InternalTls>,
}

impl QuorumConfig {
    /// The controller settings of a broker configuration.
    pub fn from_broker(cfg: &BrokerConfig) -> Result<QuorumConfig, QuorumError> {
        let node_id = NodeId::try_from(cfg.node_id)
            .map_err(|_| QuorumError::Config(format!("node id {} is negative", cfg.node_id)))?;
        let voters = cfg.voters();
        Ok(QuorumConfig {
            node_id,
            voters,
            listen: cfg.controller_listen,
            advertised: cfg.advertised_controller(cfg.controller_listen.port()),
            data_dir: cfg.data_dir.clone(),
            session_timeout: Duration::from_millis(cfg.broker_session_timeout_ms),
            raft_heartbeat: Duration::from_millis(50),
            election_timeout: (Duration::from_millis(150), Duration::from_millis(300)),
            request_timeout: Duration::from_secs(10),
            leader_rebalance: cfg.auto_leader_rebalance_enable.then(|| {
                (
                    Duration::from_secs(cfg.leader_imbalance_check_interval_seconds),
                    cfg.leader_imbalance_per_broker_percentage,
                )
            }),
            tls: InternalTls::from_broker(cfg).map_err(QuorumError::Config)?,
        })
    }

    /// Where the Raft log, vote and snapshot live.
    pub fn db_path(&self) -> PathBuf {
        db_path(&self.data_dir)
    }
}

fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("quorum").join("quorum.redb")
}

/// Failures of starting or using the quorum.
#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    /// Bad settings.
    #[error("quorum settings: {0}")]
    Config(String),
    /// The redb file could not be opened or written.
    #[error("quorum storage {path}: {message}")]
    Storage {
        /// The redb file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The controller listener could not bind.
    #[error("controller listener {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// openraft refused to start.
    #[error("raft: {0}")]
    Raft(String),
}

/// Why a proposal or controller call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControllerError {
    /// Committed, and refused by the metadata rules.
    #[error("refused: {0}")]
    Refused(Refusal),
    /// The node asked is not the leader (`leader`: the one it knows, if any).
    #[error("not the controller leader (leader: {leader:?})")]
    NotLeader {
        /// The current leader, if known.
        leader: Option<NodeId>,
    },
    /// The broker is not registered with this incarnation: register again.
    #[error("unknown broker: {0}")]
    UnknownBroker(String),
    /// No leader answered in time.
    #[error("no controller leader answered: {0}")]
    Unavailable(String),
    /// The request was malformed or the quorum failed.
    #[error("controller error: {0}")]
    Internal(String),
}

/// State shared by the gRPC services and the background tasks of one controller node.
pub(crate) struct Shared {
    id: NodeId,
    raft: Raft<TypeConfig>,
    voters: Voters,
    image: watch::Receiver<Arc<MetadataImage>>,
    sessions: Mutex<Sessions>,
    request_timeout: Duration,
    /// Replies of the voters to this node's AppendEntries, for DescribeQuorum.
    activity: Arc<activity::PeerActivity>,
    /// Held while a voter change (AddRaftVoter, RemoveRaftVoter) runs on this leader.
    voter_change: tokio::sync::Mutex<()>,
    /// Held while any membership change (a voter's or a learner's) is written.
    membership_write: tokio::sync::Mutex<()>,
    /// Internal TLS of the controller listener and dials, when on.
    tls: Option<InternalTls>,
}

impl Shared {
    fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    fn is_leader(&self) -> bool {
        self.leader() == Some(self.id)
    }

    /// Commits `command` through the local Raft node; no forwarding. A leader that cannot reach
    /// a majority gives up after the request timeout instead of holding the caller.
    async fn propose_local(&self, command: MetadataCommand) -> Result<u64, ControllerError> {
        let write = tokio::time::timeout(self.request_timeout, self.raft.client_write(command));
        let Ok(result) = write.await else {
            return Err(ControllerError::Unavailable(format!(
                "not committed within {:?}",
                self.request_timeout
            )));
        };
        match result {
            Ok(resp) => match resp.data {
                Ok(()) => Ok(resp.log_id.index),
                Err(refusal) => Err(ControllerError::Refused(refusal)),
            },
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(ControllerError::NotLeader {
                    leader: f.leader_id,
                })
            }
            Err(e) => Err(ControllerError::Internal(e.to_string())),
        }
    }

    /// Commits `command`, forwarding it to the leader when this node is not the leader, and
    /// waiting (bounded) for an election to finish.
    async fn propose(&self, command: MetadataCommand) -> Result<u64, ControllerError> {
        let deadline = Instant::now() + self.request_timeout;
        loop {
            let err = match self.propose_local(command.clone()).await {
                Err(ControllerError::NotLeader { leader: Some(l) }) if l != self.id => {
                    match self.address(l) {
                        Some(addr) => client::propose_at(&addr, self.tls.as_ref(), &command).await,
                        None => Err(ControllerError::NotLeader { leader: None }),
                    }
                }
                other => other,
            };
            match err {
                Err(ControllerError::NotLeader { .. }) | Err(ControllerError::Unavailable(_))
                    if Instant::now() < deadline =>
                {
                    self.wait_for_leader_change(deadline).await;
                }
                Err(ControllerError::NotLeader { .. }) => {
                    return Err(ControllerError::Unavailable(format!(
                        "no leader within {:?}",
                        self.request_timeout
                    )))
                }
                done => return done,
            }
        }
    }

    /// Waits until the known leader changes or a short while passes (retry pacing).
    async fn wait_for_leader_change(&self, deadline: Instant) {
        let mut metrics = self.raft.metrics();
        let before = metrics.borrow().current_leader;
        let pace = Instant::now() + Duration::from_millis(100);
        let until = tokio::time::Instant::from_std(pace.min(deadline));
        let _ = tokio::time::timeout_at(
            until,
            metrics.wait_for(|m| m.current_leader != before && m.current_leader.is_some()),
        )
        .await;
    }
}

/// A running controller node.
pub struct QuorumHandle {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// The redb file, gone once every task that used it has ended.
    db: std::sync::Weak<redb::Database>,
}

/// Opens the redb file, starts the Raft node, its gRPC server and its background tasks, and
/// initializes the cluster when this node is the lowest-id voter of a never-initialized quorum.
pub async fn start(
    config: QuorumConfig,
    metrics: QuorumMetrics,
) -> Result<QuorumHandle, QuorumError> {
    let path = config.db_path();
    let storage = |message: String| QuorumError::Storage {
        path: path.clone(),
        message,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| storage(e.to_string()))?;
    }
    let db = Arc::new(redb::Database::create(&path).map_err(|e| storage(e.to_string()))?);
    log_store::create_tables(&db).map_err(|e| storage(e.to_string()))?;
    let db_weak = Arc::downgrade(&db);
    let log = LogStore::new(db.clone());
    let sm = StateMachine::open(db).map_err(|e| storage(e.to_string()))?;
    let image = sm.subscribe();

    let raft_config = openraft::Config {
        cluster_name: "samsa".to_string(),
        heartbeat_interval: millis(config.raft_heartbeat),
        election_timeout_min: millis(config.election_timeout.0),
        election_timeout_max: millis(config.election_timeout.1),
        // Snapshot chunks travel as JSON (about 3.5 bytes per byte): keep each request well
        // under the gRPC message limit.
        snapshot_max_chunk_size: 256 * 1024,
        ..Default::default()
    }
    .validate()
    .map_err(|e| QuorumError::Config(e.to_string()))?;
    let activity = Arc::new(activity::PeerActivity::default());
    let raft = Raft::new(
        config.node_id,
        Arc::new(raft_config),
        network::Network {
            activity: activity.clone(),
            tls: config.tls.clone(),
        },
        log,
        sm,
    )
    .await
    .map_err(|e| QuorumError::Raft(e.to_string()))?;
    activity.attach(raft.metrics());

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| QuorumError::Listen {
            addr: config.listen,
            source,
        })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| QuorumError::Listen {
            addr: config.listen,
            source,
        })?;

    let shared = Arc::new(Shared {
        id: config.node_id,
        raft: raft.clone(),
        voters: config.voters.clone(),
        image,
        sessions: Mutex::new(Sessions::new(config.session_timeout, Instant::now())),
        request_timeout: config.request_timeout,
        activity,
        voter_change: tokio::sync::Mutex::new(()),
        membership_write: tokio::sync::Mutex::new(()),
        tls: config.tls.clone(),
    });
    if config.tls.is_none() {
        tracing::warn!(addr = %local_addr,
            "the controller listener is plaintext and unauthenticated: anyone who reaches it can \
             speak Raft and commit metadata; set --internal-tls-certificate-location, \
             --internal-tls-key-location and --internal-tls-ca-location");
    }
    let (shutdown, shutdown_rx) = watch::channel(false);
    let tasks = vec![
        tokio::spawn(controller_service::serve(
            shared.clone(),
            listener,
            shutdown_rx.clone(),
        )),
        tokio::spawn(liveness::run(
            shared.clone(),
            config.session_timeout,
            config.leader_rebalance,
            shutdown_rx.clone(),
        )),
        tokio::spawn(liveness::export_metrics(
            shared.clone(),
            metrics,
            shutdown_rx.clone(),
        )),
        tokio::spawn(membership::log_changes(shared.clone(), shutdown_rx.clone())),
        tokio::spawn(membership::join_as_learner(
            shared.clone(),
            match config.advertised.strip_suffix(":0") {
                Some(host) => format!("{host}:{}", local_addr.port()),
                None => config.advertised.clone(),
            },
            shutdown_rx,
        )),
    ];
    let handle = QuorumHandle {
        shared,
        local_addr,
        shutdown,
        tasks,
        db: db_weak,
    };
    handle.initialize_if_first().await?;
    tracing::info!(
        node = config.node_id,
        addr = %local_addr,
        bootstrap_voters = %config.voters,
        "controller started{}",
        if config.voters.contains(config.node_id) {
            ""
        } else {
            " (not a bootstrap voter: a voter once added, or after a restart when it was one)"
        }
    );
    Ok(handle)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl QuorumHandle {
    async fn initialize_if_first(&self) -> Result<(), QuorumError> {
        let s = &self.shared;
        if s.voters.initializer() != Some(s.id) {
            return Ok(());
        }
        let initialized = s
            .raft
            .is_initialized()
            .await
            .map_err(|e| QuorumError::Raft(e.to_string()))?;
        if initialized {
            return Ok(());
        }
        // A bootstrap voter that lost its data must not found a second quorum beside the one
        // the other voters still run.
        for (id, addr) in s.voters.0.iter().filter(|(id, _)| **id != s.id) {
            if let Ok((_, version)) =
                client::probe(addr, s.tls.as_ref(), Duration::from_millis(500)).await
            {
                if version > 0 {
                    tracing::warn!(
                        peer = id,
                        "the controller quorum exists already: joining it"
                    );
                    return Ok(());
                }
            }
        }
        let members: std::collections::BTreeMap<NodeId, BasicNode> = s
            .voters
            .0
            .iter()
            .map(|(id, addr)| (*id, BasicNode::new(addr.clone())))
            .collect();
        match s.raft.initialize(members).await {
            Ok(()) => {
                tracing::info!(voters = %s.voters, "initialized the controller quorum");
                Ok(())
            }
            // Another voter's log reached us first: the cluster exists already.
            Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
                tracing::debug!("quorum already initialized: {e}");
                Ok(())
            }
            Err(e) => Err(QuorumError::Raft(e.to_string())),
        }
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.shared.id
    }

    /// The address the controller gRPC server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The current leader, as this node knows it.
    pub fn leader(&self) -> Option<NodeId> {
        self.shared.leader()
    }

    /// Whether this node is the leader.
    pub fn is_leader(&self) -> bool {
        self.shared.is_leader()
    }

    /// Reads the voters as this node's Raft membership names them (the bootstrap voters before
    /// it holds one), with the membership's version, for a [`ControllerClient`] of this process.
    pub fn local_voters(&self) -> LocalVoters {
        // Weak: a client outliving the controller must not keep its Raft node (and redb file).
        let shared = Arc::downgrade(&self.shared);
        Arc::new(move || match shared.upgrade() {
            Some(s) => s.current_voters(),
            None => (Voters(Default::default()), 0),
        })
    }

    /// Watches whether the local Raft log holds entries not applied yet.
    pub fn log_progress(&self) -> LogProgress {
        LogProgress(self.shared.raft.metrics())
    }

    /// A cheap handle that describes the quorum (DescribeQuorum) while this node runs.
    pub fn view(&self) -> QuorumView {
        QuorumView {
            shared: self.shared.clone(),
        }
    }

    /// The Raft node, for its metrics and waits.
    pub fn raft(&self) -> &Raft<TypeConfig> {
        &self.shared.raft
    }

    /// Subscribes to the applied metadata image (updated after every applied batch).
    pub fn image(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.shared.image.clone()
    }

    /// Commits `command` and returns the log index it was applied at; forwarded to the leader
    /// when this node is not the leader. A command refused by the metadata rules is committed
    /// all the same and comes back as [`ControllerError::Refused`].
    pub async fn propose(&self, command: MetadataCommand) -> Result<u64, ControllerError> {
        self.shared.propose(command).await
    }

    /// Before this voter stops: when it leads the quorum, hands the leadership to an
    /// up-to-date peer and waits (up to `timeout`) until one leads. The leader stops sending
    /// heartbeats, will not stand again, and asks the peer whose log matches its own to stand
    /// now (TimeoutNow); while this node still answers votes and replication, that peer wins.
    /// Should that fail, the followers' leases run out without heartbeats and they elect a
    /// leader among themselves. Returns the new leader, if one took over in time.
    pub async fn hand_over_leadership(&self, timeout: Duration) -> Option<NodeId> {
        let s = &self.shared;
        if s.current_voters().0 .0.len() < 2 {
            return None;
        }
        // Never stand again, leader or not: the process is going away.
        s.raft.runtime_config().elect(false);
        if !s.is_leader() {
            return None;
        }
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + timeout;
        s.raft.runtime_config().heartbeat(false);
        let me = s.id;
        let mut metrics = s.raft.metrics();
        let mut leader = None;
        while tokio::time::Instant::now() < deadline {
            // The peer whose log matches ours furthest: once it has everything, ask it to stand.
            let (target, caught_up) = {
                let m = metrics.borrow();
                let last = m.last_log_index.unwrap_or(0);
                let voters: Vec<NodeId> = m.membership_config.membership().voter_ids().collect();
                let best = m.replication.as_ref().and_then(|r| {
                    r.iter()
                        .filter(|(id, _)| **id != me && voters.contains(id))
                        .map(|(id, matched)| (*id, matched.map_or(0, |l| l.index)))
                        .max_by_key(|(_, index)| *index)
                });
                match best {
                    Some((id, index)) => (Some(id), index >= last),
                    None => (None, false),
                }
            };
            if let (Some(target), true) = (target, caught_up) {
                if let Some(addr) = s.address(target) {
                    tracing::info!(
                        node = me,
                        peer = target,
                        "handing the controller quorum's leadership to an up-to-date peer"
                    );
                    let timeout = Duration::from_millis(500);
                    if let Err(e) = network::timeout_now(&addr, s.tls.as_ref(), timeout).await {
                        tracing::info!(peer = target, "TimeoutNow: {e}");
                    }
                }
            }
            let wait = Duration::from_millis(500);
            let changed = tokio::time::timeout(
                wait.min(deadline.saturating_duration_since(tokio::time::Instant::now())),
                metrics.wait_for(|m| m.current_leader.is_some_and(|l| l != me)),
            )
            .await;
            if let Ok(Ok(m)) = changed {
                leader = m.current_leader;
                break;
            }
        }
        match leader {
            Some(l) => tracing::info!(
                new_leader = l,
                took_ms = started.elapsed().as_millis() as u64,
                "controller quorum leadership handed over"
            ),
            None => {
                // Keep leading rather than leave the quorum headless until this node exits.
                s.raft.runtime_config().heartbeat(true);
                tracing::warn!(
                    waited_ms = started.elapsed().as_millis() as u64,
                    "no peer took the controller quorum's leadership in time; stopping anyway"
                );
            }
        }
        leader
    }

    /// A liveness check of this controller: fails once the Raft core or one of the node's
    /// tasks (gRPC server, liveness, metrics) has stopped.
    pub fn liveness_check(&self) -> crate::metrics::Check {
        let raft = self.shared.raft.clone();
        let tasks: Vec<tokio::task::AbortHandle> =
            self.tasks.iter().map(JoinHandle::abort_handle).collect();
        Box::new(move || {
            if let Err(fatal) = &raft.metrics().borrow().running_state {
                return Err(format!("the raft core stopped: {fatal}"));
            }
            if tasks.iter().any(tokio::task::AbortHandle::is_finished) {
                return Err("a controller task stopped".into());
            }
            Ok(())
        })
    }

    /// Stops the gRPC server, the background tasks and the Raft node; the redb file is closed
    /// when this returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        if let Err(e) = self.shared.raft.shutdown().await {
            tracing::warn!("raft shutdown: {e}");
        }
        for task in self.tasks {
            let _ = task.await;
        }
        drop(self.shared);
        // Raft's own workers (state machine, log reader, replication streams) end soon after
        // its core does and hold the file until then; a restart in the same process must find
        // it closed.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.db.strong_count() > 0 {
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!("the quorum's redb file is still open 10 s after shutdown");
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Whether this voter's Raft log holds entries its state machine has not applied yet: metadata
/// it has received, perhaps committed already (a follower learns a commit with the leader's
/// next message), that its image does not show. Read through the Raft metrics; cheap to clone.
#[derive(Clone)]
pub struct LogProgress(watch::Receiver<openraft::RaftMetrics<NodeId, BasicNode>>);

impl LogProgress {
    /// Waits until every entry of the local log is applied, until `deadline` at most (entries
    /// of a deposed leader wait for the next leader to overwrite them); true when they are.
    pub async fn wait_applied(&self, deadline: tokio::time::Instant) -> bool {
        let mut metrics = self.0.clone();
        let applied = tokio::time::timeout_at(
            deadline,
            metrics.wait_for(|m| m.last_log_index <= m.last_applied.map(|l| l.index)),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        applied
    }
}

/// Reads the quorum's state for DescribeQuorum; cloned into the Kafka request handlers.
#[derive(Clone)]
pub struct QuorumView {
    shared: Arc<Shared>,
}

impl QuorumView {
    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.shared.id
    }

    /// The current voters and their controller addresses: the Raft membership once this node
    /// holds one, else the bootstrap list.
    pub fn voters(&self) -> Voters {
        self.shared.current_voters().0
    }

    /// The controller address of node `id` (a voter or a learner of the membership).
    pub fn address(&self, id: NodeId) -> Option<String> {
        self.shared.address(id)
    }

    /// The quorum as this node sees it now: complete on the leader, the leader's id and this
    /// node's own log elsewhere.
    pub fn describe(&self) -> QuorumDescription {
        let metrics = self.shared.raft.metrics().borrow().clone();
        let activity = self.shared.activity.in_term(metrics.current_term);
        describe::describe(&metrics, &activity, activity::wall_ms())
    }
}
