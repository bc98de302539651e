//! Partition replication in a cluster (Kafka's ISR model), driven by the metadata image.
//!
//! The replica manager follows the controllers' image: it creates, grows, reconfigures and
//! deletes local topics to match, makes this broker the leader or a follower of each partition
//! at the epoch the image names, runs the follower fetchers (`fetcher`), serves followers
//! (`service`), shrinks the ISR of led partitions whose followers fell behind for longer than
//! `replica.lag.time.max.ms` and proposes ISR changes to the controller. The per-partition
//! rules live in `state`. A single broker without a quorum never starts any of this: each of its
//! partitions is led by it at epoch 0 ([`state::ReplicaState::standalone`]).

mod cluster_view;
mod fetcher;
mod service;
pub mod state;
#[cfg(test)]
mod state_tests;
pub mod throttle;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::BrokerConfig;
use crate::controller::{
    MetadataCommand, MetadataImage, PartitionRecord, Refusal, NO_LEADER, PRODUCER_ID_BLOCK,
};
use crate::metrics::Metrics;
use crate::protocol::errors::ApiError;
use crate::quorum::{
    BrokerRegistration, ControllerClient, ControllerError, Heartbeat, LogProgress,
};
use crate::security::internal_tls::InternalTls;
use crate::topics::{config, Partition, TopicRegistry};
use fetcher::Fetcher;
use state::ReplicaState;

/// How long a proposal to the controller may take.
const PROPOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Proposals of a producer-id block per allocation before giving up (each refusal names the
/// next free block, so more than one happens only while brokers race).
const PRODUCER_ID_ATTEMPTS: usize = 16;

/// Pause between two attempts of a controlled shutdown.
const SHUTDOWN_RETRY: Duration = Duration::from_millis(200);

/// How often high watermarks are checkpointed.
const HW_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5);

/// A broker session: heartbeat answers and the task sending heartbeats.
type Session = (watch::Receiver<Option<Heartbeat>>, JoinHandle<()>);

/// Replication of this broker's partitions in a cluster.
pub struct ReplicaManager {
    node_id: i32,
    incarnation_id: String,
    registry: Arc<TopicRegistry>,
    metrics: Arc<Metrics>,
    config: Arc<BrokerConfig>,
    image: watch::Receiver<Arc<MetadataImage>>,
    /// On a voter: whether its Raft log holds metadata not yet in `image`.
    log: Option<LogProgress>,
    controller: ControllerClient,
    fetchers: Mutex<BTreeMap<i32, Fetcher>>,
    /// The version of the last image applied to the local partitions.
    applied: watch::Sender<u64>,
    /// The broker session (registration and heartbeats), until controlled shutdown.
    session: Mutex<Option<Session>>,
    replication_addr: SocketAddr,
    /// The producer-id block this broker hands out from: (next id, end of the block). Blocks
    /// come from the controllers, so no id is handed out twice in the cluster.
    producer_ids: tokio::sync::Mutex<(i64, i64)>,
    /// The (topic, partition) leader gauges this broker set as the cluster's reporter, so it
    /// can drop them when it no longer reports them.
    reported_leaders: Mutex<BTreeSet<(String, i32)>>,
    /// Mutual TLS of the replication listener and of fetches from other leaders, when on.
    tls: Option<InternalTls>,
}

/// The background tasks of a running replica manager.
pub struct Replication {
    /// The manager, for the request handlers.
    pub manager: Arc<ReplicaManager>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Replication {
    /// A liveness check: fails once a replication task (listener, metadata follower, ISR
    /// maintenance) has stopped, e.g. after a panic.
    pub fn liveness_check(&self) -> crate::metrics::Check {
        let tasks: Vec<tokio::task::AbortHandle> =
            self.tasks.iter().map(JoinHandle::abort_handle).collect();
        Box::new(move || {
            if tasks.iter().any(tokio::task::AbortHandle::is_finished) {
                Err("a replication task stopped".into())
            } else {
                Ok(())
            }
        })
    }

    /// Stops the fetchers and the replication listener (after
    /// [`ReplicaManager::controlled_shutdown`], so that no leadership is left behind).
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for f in std::mem::take(&mut *self.manager.fetchers.lock()).into_values() {
            f.stop();
        }
        for t in self.tasks {
            t.abort();
            let _ = t.await;
        }
    }
}

/// Starts replication: binds the replication listener, registers the broker with the
/// controllers (advertising `advertised` for clients, and `listeners`: every Kafka listener's
/// endpoint), follows the metadata image (and, on a
/// voter, knows from its Raft log when more of it is on the way). `voters`: the controller
/// quorum's voters as the local controller knows them, when this process is a controller; the
/// bootstrap voters may all be gone by now. `tls`: the internal TLS of this process, for the
/// replication listener, the fetchers and the controller client (`None`: plaintext).
pub async fn start(
    config: Arc<BrokerConfig>,
    registry: Arc<TopicRegistry>,
    metrics: Arc<Metrics>,
    (image, log): (watch::Receiver<Arc<MetadataImage>>, Option<LogProgress>),
    voters: Option<crate::quorum::LocalVoters>,
    (advertised, listeners): ((String, i32), Vec<crate::controller::Endpoint>),
    tls: Option<InternalTls>,
) -> anyhow::Result<Replication> {
    let listener = TcpListener::bind(config.replication_listen)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "binding replication listener {}: {e}",
                config.replication_listen
            )
        })?;
    let replication_addr = listener.local_addr()?;
    let replication_host = if replication_addr.ip().is_unspecified() {
        advertised.0.clone()
    } else {
        replication_addr.ip().to_string()
    };
    if tls.is_none() {
        tracing::warn!(addr = %replication_addr,
            "the replication listener is plaintext and unauthenticated: anyone who reaches it \
             can read every partition and, naming a registered broker, move high watermarks; \
             set the --internal-tls-*-location flags");
    }
    let mut controller =
        ControllerClient::new(config.voters(), PROPOSE_TIMEOUT).with_tls(tls.clone());
    if let Some(local) = voters {
        controller = controller.with_local_voters(local);
    }
    let incarnation_id = uuid::Uuid::new_v4().to_string();
    let registration = BrokerRegistration {
        broker_id: config.node_id,
        host: advertised.0.clone(),
        port: advertised.1,
        rack: config.broker_rack.clone(),
        incarnation_id: incarnation_id.clone(),
        replication: format!("{replication_host}:{}", replication_addr.port()),
        listeners,
    };
    let session = controller.clone().run_session(
        registration,
        Duration::from_millis(config.broker_heartbeat_interval_ms),
    );
    let manager = Arc::new(ReplicaManager {
        node_id: config.node_id,
        incarnation_id,
        registry,
        metrics,
        config,
        image,
        log,
        controller,
        fetchers: Mutex::new(BTreeMap::new()),
        applied: watch::channel(0).0,
        session: Mutex::new(Some(session)),
        replication_addr,
        producer_ids: tokio::sync::Mutex::new((0, 0)),
        reported_leaders: Mutex::new(BTreeSet::new()),
        tls,
    });
    let (shutdown, shutdown_rx) = watch::channel(false);
    let tasks = vec![
        tokio::spawn(service::serve(
            manager.clone(),
            listener,
            shutdown_rx.clone(),
        )),
        tokio::spawn(follow_image(manager.clone())),
        tokio::spawn(maintain(manager.clone())),
        tokio::spawn(leave_on_log_dir_failure(manager.clone())),
    ];
    tracing::info!(node = manager.node_id, replication = %replication_addr, "replication started");
    Ok(Replication {
        manager,
        shutdown,
        tasks,
    })
}

/// Applies every new image to the local partitions.
async fn follow_image(manager: Arc<ReplicaManager>) {
    let mut rx = manager.image.clone();
    loop {
        let image = rx.borrow_and_update().clone();
        let m = manager.clone();
        let version = image.version;
        match tokio::task::spawn_blocking(move || m.apply_image(&image)).await {
            Ok(()) => {
                manager.applied.send_replace(version);
            }
            Err(e) => tracing::error!("applying metadata failed: {e}"),
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// When the log directory goes offline (a write failed), this broker can neither lead nor
/// follow: it gives up every leadership and fences itself, as a controlled shutdown does, and
/// stays fenced (no more heartbeats) until the process restarts.
async fn leave_on_log_dir_failure(manager: Arc<ReplicaManager>) {
    let mut rx = manager.registry.watch_log_dir();
    let Ok(why) = rx.wait_for(Option::is_some).await.map(|w| w.clone()) else {
        return std::future::pending().await;
    };
    tracing::error!(reason = ?why,
        "the log directory is offline: moving every leadership away and fencing this broker");
    let timeout = Duration::from_millis(manager.config.controlled_shutdown_timeout_ms);
    manager
        .controlled_shutdown(tokio::time::Instant::now() + timeout)
        .await;
    std::future::pending().await
}

/// ISR shrinking, gauges and high watermark checkpoints.
async fn maintain(manager: Arc<ReplicaManager>) {
    let lag = Duration::from_millis(manager.config.replica_lag_time_max_ms);
    let every = (lag / 2).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_checkpoint = Instant::now();
    loop {
        tick.tick().await;
        manager.shrink_isrs(lag);
        manager.export_gauges();
        if last_checkpoint.elapsed() >= HW_CHECKPOINT_INTERVAL {
            last_checkpoint = Instant::now();
            let r = manager.registry.clone();
            let _ = tokio::task::spawn_blocking(move || r.write_hw_checkpoint()).await;
        }
    }
}

impl ReplicaManager {
    /// This broker's id.
    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// The address the replication listener is bound to.
    pub fn replication_addr(&self) -> SocketAddr {
        self.replication_addr
    }

    /// The latest metadata image received.
    pub fn current_image(&self) -> Arc<MetadataImage> {
        self.image.borrow().clone()
    }

    /// The controller quorum's voters as the controllers last told this broker.
    pub fn controller_voters(&self) -> crate::quorum::Voters {
        self.controller.voters()
    }

    /// Adds or removes a controller quorum voter through the quorum's leader (AddRaftVoter,
    /// RemoveRaftVoter), within `timeout`.
    pub async fn change_voters(
        &self,
        change: &crate::quorum::VoterChange,
        timeout: Duration,
    ) -> Result<(), crate::quorum::VoterChangeError> {
        self.controller.clone().change_voters(change, timeout).await
    }

    /// Commits `command` through the controller quorum and waits (up to the propose timeout)
    /// until this broker applied the image containing it.
    pub async fn propose(&self, command: MetadataCommand) -> Result<u64, ControllerError> {
        let mut client = self.controller.clone();
        let index = client.propose(&command).await?;
        let mut applied = self.applied.subscribe();
        let _ = tokio::time::timeout(PROPOSE_TIMEOUT, applied.wait_for(|v| *v >= index)).await;
        Ok(index)
    }

    /// A producer id never handed out before anywhere in the cluster: from this broker's block,
    /// or from a new block the controllers commit (Kafka's AllocateProducerIds). Concurrent
    /// callers wait for one allocation.
    pub async fn allocate_producer_id(&self) -> Result<i64, ControllerError> {
        let mut block = self.producer_ids.lock().await;
        if block.0 >= block.1 {
            let mut first = self.current_image().next_producer_id;
            let mut client = self.controller.clone();
            let mut attempts = 0;
            loop {
                let command = MetadataCommand::AllocateProducerIds {
                    broker_id: self.node_id,
                    first,
                };
                match client.propose(&command).await {
                    Ok(_) => break,
                    // Another broker took that block first: ask for the next free one.
                    Err(ControllerError::Refused(Refusal::ProducerIdBlockTaken {
                        next, ..
                    })) if attempts < PRODUCER_ID_ATTEMPTS => {
                        attempts += 1;
                        first = next;
                    }
                    Err(e) => return Err(e),
                }
            }
            let end = first.saturating_add(PRODUCER_ID_BLOCK);
            tracing::info!(first, end, "took a block of producer ids");
            *block = (first, end);
        }
        let id = block.0;
        block.0 += 1;
        Ok(id)
    }

    /// Waits, until `deadline` at most, until the local partitions reflect every metadata change
    /// this broker has received; true when they do. When a leadership moves, the old leader may
    /// name the new one to clients (NOT_LEADER_OR_FOLLOWER with its KIP-951 hint) before the new
    /// one has applied the change: the controller leader applies a commit before the other
    /// voters learn of it, and a broker applies an image partition by partition, taking over a
    /// leadership (a leader-epoch checkpoint written) more slowly than giving one up. A produce
    /// that finds a partition not led here waits for this before it is refused.
    pub async fn settle(&self, deadline: tokio::time::Instant) -> bool {
        if let Some(log) = &self.log {
            if !log.wait_applied(deadline).await {
                return false;
            }
        }
        let received = self.image.borrow().version;
        let mut applied = self.applied.subscribe();
        let settled = tokio::time::timeout_at(deadline, applied.wait_for(|v| *v >= received))
            .await
            .is_ok_and(|r| r.is_ok());
        settled
    }

    /// Waits until the metadata knows this process as a live (registered, unfenced) broker.
    pub async fn wait_registered(&self) {
        let mut rx = self.image.clone();
        let _ = rx.wait_for(|image| self.registered(image)).await;
    }

    /// Whether the image knows this process as a live broker.
    fn registered(&self, image: &MetadataImage) -> bool {
        image
            .brokers
            .get(&self.node_id)
            .is_some_and(|b| b.incarnation_id == self.incarnation_id && !b.fenced)
    }

    /// Makes the local topics and partition roles match `image`.
    fn apply_image(self: &Arc<Self>, image: &MetadataImage) {
        let registered = self.registered(image);
        if self.registry.dynamic_defaults() != image.broker_defaults {
            if let Err(e) = self
                .registry
                .set_dynamic_defaults(image.broker_defaults.clone())
            {
                tracing::error!(error = %e, "cannot apply the dynamic broker defaults");
            }
        }
        let own = image.broker_configs.get(&self.node_id);
        if self.registry.dynamic_broker_configs() != own.cloned().unwrap_or_default() {
            let own = own.cloned().unwrap_or_default();
            if let Err(e) = self.registry.set_dynamic_broker_configs(own) {
                tracing::error!(error = %e, "cannot apply this broker's dynamic configs");
            }
        }
        for (name, t) in &image.topics {
            let count = i32::try_from(t.partitions.len()).unwrap_or(i32::MAX);
            let topic = match self.registry.get(name) {
                Some(local) if local.id == t.id => Some(local),
                other => {
                    if other.is_some() {
                        tracing::info!(topic = %name, "topic id changed: replacing the local topic");
                        self.forget_topic(name);
                    }
                    match self
                        .registry
                        .create_with_id(name, t.id, count, t.configs.clone())
                    {
                        Ok(topic) => Some(topic),
                        Err(e) => {
                            tracing::error!(topic = %name, error = %e, "cannot create the local topic");
                            None
                        }
                    }
                }
            };
            let Some(topic) = topic else { continue };
            if topic.partition_count() < count {
                if let Err(e) = self.registry.add_partitions(name, count) {
                    tracing::error!(topic = %name, error = %e, "cannot add local partitions");
                }
            }
            if *topic.configs.read() != t.configs {
                if let Err(e) = self.registry.set_configs(name, t.configs.clone()) {
                    tracing::error!(topic = %name, error = %e, "cannot apply topic configs");
                }
            }
            for (i, record) in t.partitions.iter().enumerate() {
                if let Some(p) = topic.partition(i as i32) {
                    self.apply_partition(&p, record, registered);
                }
            }
        }
        if registered {
            for local in self.registry.all() {
                if !image.topics.contains_key(&*local.name) {
                    self.forget_topic(&local.name);
                }
            }
        }
        self.export_gauges_from(image);
    }

    fn forget_topic(&self, name: &str) {
        if let Some(topic) = self.registry.get(name) {
            for p in topic.partitions.read().iter() {
                self.unfollow(p);
            }
        }
        match self.registry.delete(name) {
            Ok(_) => tracing::info!(topic = %name, "deleted the local topic"),
            Err(e) => tracing::warn!(topic = %name, error = %e, "cannot delete the local topic"),
        }
    }

    /// Leader or follower of one partition, as `record` says.
    fn apply_partition(
        self: &Arc<Self>,
        partition: &Arc<Partition>,
        record: &PartitionRecord,
        registered: bool,
    ) {
        let now = Instant::now();
        let mut log = partition.log.lock();
        let mut state = partition.replica.lock();
        let me = self.node_id;
        if registered && !record.replicas.contains(&me) {
            // Not (or no longer, after a reassignment) a replica: follow nothing and keep no
            // data. The move completed only once the target replicas were in sync.
            let was_replica = state.replicas.contains(&me);
            if !state.same_leadership(record) || state.replicas != record.replicas {
                state.become_follower(record);
                partition.publish(&state);
            }
            let has_data = log.log_end_offset() > 0 || log.log_start_offset() > 0;
            drop(state);
            if was_replica || has_data {
                self.unfollow(partition);
            }
            if has_data && self.registry.log_dir_failure().is_none() {
                tracing::info!(topic = %partition.topic, partition = partition.index,
                    log_end_offset = log.log_end_offset(),
                    "no longer a replica: removing the local copy");
                match log.truncate_fully_and_start_at(0) {
                    Ok(()) => {
                        *partition.producers.lock() = crate::producer::ProducerStates::default();
                        let mut state = partition.replica.lock();
                        state.high_watermark = 0;
                        partition.publish(&state);
                        drop(state);
                        partition.update_gauges(&log);
                    }
                    Err(e) => {
                        tracing::warn!(topic = %partition.topic, partition = partition.index,
                            error = %e, "could not remove the local copy");
                        self.registry.note_write_error(&e);
                    }
                }
            }
            self.registry.appended.notify_waiters();
            return;
        }
        if record.leader == me && registered {
            if state.is_leader() && state.leader_epoch == record.leader_epoch {
                if state.update_membership(record, now) {
                    let moved = state.advance_high_watermark(log.log_end_offset());
                    partition.publish(&state);
                    if moved {
                        self.registry.appended.notify_waiters();
                    }
                }
                return;
            }
            if let Err(e) = log.start_leader_epoch(record.leader_epoch) {
                tracing::error!(topic = %partition.topic, partition = partition.index, error = %e,
                    "cannot record the leader epoch");
            }
            state.become_leader(record, log.log_end_offset(), now);
            partition.publish(&state);
            drop(state);
            drop(log);
            self.unfollow(partition);
            tracing::info!(topic = %partition.topic, partition = partition.index,
                epoch = record.leader_epoch, isr = ?record.isr, "leading");
            self.registry.appended.notify_waiters();
            return;
        }
        // Same leader and epoch, and already a replica (a broker a reassignment adds starts
        // following below).
        if state.same_leadership(record) && !state.is_leader() && state.replicas.contains(&me) {
            if state.update_membership(record, now) {
                partition.publish(&state);
            }
            return;
        }
        state.become_follower(record);
        if record.leader == me {
            // Our own old leadership in an image from before this process registered.
            state.leader = NO_LEADER;
        }
        partition.publish(&state);
        let follows =
            record.replicas.contains(&me) && record.leader != NO_LEADER && record.leader != me;
        drop(state);
        drop(log);
        self.unfollow(partition);
        if follows {
            tracing::info!(topic = %partition.topic, partition = partition.index,
                leader = record.leader, epoch = record.leader_epoch, "following");
            let mut fetchers = self.fetchers.lock();
            fetchers
                .entry(record.leader)
                .or_insert_with(|| Fetcher::start(self.clone(), record.leader))
                .add(partition.clone());
        }
        // Waiting acks=all produces learn that the leadership ended.
        self.registry.appended.notify_waiters();
    }

    fn unfollow(&self, partition: &Partition) {
        let mut fetchers = self.fetchers.lock();
        let mut idle = Vec::new();
        for (leader, f) in fetchers.iter() {
            f.remove(&partition.topic, partition.index);
            if f.is_empty() {
                idle.push(*leader);
            }
        }
        for leader in idle {
            if let Some(f) = fetchers.remove(&leader) {
                f.stop();
            }
        }
    }

    /// Proposes `isr` for a led partition (its `pending_isr` is already set); a refusal clears
    /// the pending change so the next check may try again.
    fn alter_isr(&self, partition: Arc<Partition>, state: &ReplicaState, isr: Vec<i32>) {
        let command = MetadataCommand::AlterPartition {
            topic: partition.topic.to_string(),
            partition: partition.index,
            broker_id: self.node_id,
            leader_epoch: state.leader_epoch,
            partition_epoch: state.partition_epoch,
            new_isr: isr.clone(),
        };
        let mut client = self.controller.clone();
        let applied = self.applied.subscribe();
        tokio::spawn(async move {
            let result = client.propose(&command).await;
            if let Err(e) = &result {
                tracing::warn!(topic = %partition.topic, partition = partition.index, ?isr,
                    error = %e, "ISR change refused");
            }
            let mut applied = applied;
            if let Ok(index) = result {
                let _ =
                    tokio::time::timeout(PROPOSE_TIMEOUT, applied.wait_for(|v| *v >= index)).await;
            }
            // Whatever happened, the image now has the truth; an unanswered proposal must not
            // block later ones.
            let mut state = partition.replica.lock();
            if state.pending_isr.as_ref() == Some(&isr) {
                state.pending_isr = None;
            }
        });
    }

    /// Proposes smaller ISRs for led partitions whose followers fell behind.
    fn shrink_isrs(&self, max_lag: Duration) {
        let now = Instant::now();
        for p in self.registry.all_partitions() {
            let end = p.log.lock().log_end_offset();
            let mut state = p.replica.lock();
            if let Some(isr) = state.isr_to_shrink(end, max_lag, now) {
                tracing::info!(topic = %p.topic, partition = p.index, from = ?state.isr, to = ?isr,
                    "followers fell behind: shrinking the ISR");
                state.pending_isr = Some(isr.clone());
                self.alter_isr(p.clone(), &state, isr);
            }
        }
    }

    /// Per-partition follower lag and the broker totals.
    fn export_gauges(&self) {
        let image = self.current_image();
        self.export_gauges_from(&image);
    }

    fn export_gauges_from(&self, image: &MetadataImage) {
        let (mut under_replicated, mut under_min_isr, mut leaders) = (0, 0, 0);
        for topic in self.registry.all() {
            let min_isr =
                config::min_insync_replicas(&topic.configs.read(), &self.registry.broker());
            for p in topic.partitions.read().iter() {
                let end = p.log.lock().log_end_offset();
                let state = p.replica.lock();
                if state.is_leader() {
                    leaders += 1;
                    // During a move the partition is whole once its target replicas are in sync.
                    let wanted = image
                        .partition(&topic.name, p.index)
                        .map_or(state.replicas.len(), |r| r.target_replicas().len());
                    if state.isr.len() < wanted {
                        under_replicated += 1;
                    }
                    if (state.isr.len() as i32) < min_isr {
                        under_min_isr += 1;
                    }
                    p.gauges.follower_lag.set(state.max_follower_lag(end));
                } else {
                    p.gauges.follower_lag.set(0);
                }
            }
        }
        let m = &self.metrics.replication;
        m.under_replicated.set(under_replicated);
        m.under_min_isr.set(under_min_isr);
        m.leaders.set(leaders);
        self.export_cluster_view(image);
    }

    /// The offline count and the per-partition leaders, when this broker is the one that
    /// reports them ([`cluster_view::reporter`]); otherwise 0 and no leader series.
    fn export_cluster_view(&self, image: &MetadataImage) {
        // Held throughout: the gauge loop and the image watcher both call this.
        let mut reported = self.reported_leaders.lock();
        let view = cluster_view::cluster_view(image, self.node_id);
        self.metrics
            .replication
            .offline
            .set(view.as_ref().map_or(0, |v| v.offline));
        let mut now = BTreeSet::new();
        for (topic, partition, leader) in view.map(|v| v.leaders).unwrap_or_default() {
            self.metrics.set_partition_leader(&topic, partition, leader);
            now.insert((topic, partition));
        }
        for (topic, partition) in reported.difference(&now) {
            self.metrics.remove_partition_leader(topic, *partition);
        }
        *reported = now;
    }

    /// Controlled shutdown, bounded by `deadline`: stops the broker session (no heartbeat
    /// unfences it again), asks the controllers to fence this incarnation, which moves every
    /// leadership it holds to another in-sync replica and takes it out of the ISRs, and retries
    /// (a controller quorum without a leader answers nothing) until this broker's own image
    /// shows that it leads nothing that another in-sync replica could lead. Each step is
    /// logged; the report says what moved and what is left.
    pub async fn controlled_shutdown(&self, deadline: tokio::time::Instant) -> ShutdownReport {
        let started = Instant::now();
        let session = self.session.lock().take();
        if let Some((rx, task)) = session {
            task.abort();
            drop(rx);
        }
        let before = self.led_partitions(&self.current_image());
        tracing::info!(
            partitions = before.len(),
            timeout_ms = deadline
                .saturating_duration_since(tokio::time::Instant::now())
                .as_millis() as u64,
            "controlled shutdown: moving the leadership of the partitions this broker leads"
        );
        let command = MetadataCommand::FenceBroker {
            id: self.node_id,
            incarnation: Some(self.incarnation_id.clone()),
        };
        let mut attempts = 0u32;
        loop {
            let pending = self.others_depend_on(&self.current_image());
            if pending == 0 || tokio::time::Instant::now() >= deadline {
                break;
            }
            attempts += 1;
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let mut client = self.controller.clone();
            match tokio::time::timeout(remaining, client.propose(&command)).await {
                Ok(Ok(index)) => {
                    let mut applied = self.applied.subscribe();
                    let _ =
                        tokio::time::timeout_at(deadline, applied.wait_for(|v| *v >= index)).await;
                    continue;
                }
                Ok(Err(ControllerError::Refused(r))) => {
                    // E.g. never registered: there is nothing the controllers can move.
                    tracing::info!("controlled shutdown: the controllers refused the fence: {r}");
                    break;
                }
                Ok(Err(e)) => {
                    tracing::warn!(
                        attempt = attempts,
                        partitions = pending,
                        "controlled shutdown: fencing not committed yet: {e}; retrying"
                    );
                }
                Err(_) => break,
            }
            tokio::select! {
                _ = tokio::time::sleep(SHUTDOWN_RETRY) => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
        let image = self.current_image();
        let still_led = self.led_partitions(&image);
        let movable = self.movable_leaderships(&image);
        let report = ShutdownReport {
            moved: before.iter().filter(|p| !still_led.contains(p)).count(),
            left: still_led.len(),
            stranded: movable.len(),
            elapsed: started.elapsed(),
            complete: movable.is_empty(),
        };
        if report.complete {
            tracing::info!(
                moved = report.moved,
                left_without_other_isr = report.left,
                attempts,
                took_ms = report.elapsed.as_millis() as u64,
                "controlled shutdown: leaderships moved"
            );
        } else {
            tracing::warn!(moved = report.moved, still_leading = report.stranded,
                partitions = ?movable, attempts, took_ms = report.elapsed.as_millis() as u64,
                "controlled shutdown: timed out with leaderships other replicas could take");
        }
        report
    }

    /// The partitions `image` says this broker leads (whichever incarnation it names).
    fn led_partitions(&self, image: &MetadataImage) -> Vec<(String, i32)> {
        image
            .topics
            .iter()
            .flat_map(|(name, t)| {
                t.partitions
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.leader == self.node_id)
                    .map(move |(i, _)| (name.clone(), i as i32))
            })
            .collect()
    }

    /// Partitions where this broker leads or is in the ISR together with another live broker:
    /// until it is fenced, that broker would wait for it (acks=all, the high watermark) or
    /// could lead instead of it. Zero when nothing depends on this broker any more.
    fn others_depend_on(&self, image: &MetadataImage) -> usize {
        let me = self.node_id;
        image
            .topics
            .values()
            .flat_map(|t| t.partitions.iter())
            .filter(|p| {
                (p.leader == me || p.isr.contains(&me))
                    && p.isr.iter().any(|b| *b != me && image.is_live(*b))
            })
            .count()
    }

    /// Led partitions with another live in-sync replica that could lead instead.
    fn movable_leaderships(&self, image: &MetadataImage) -> Vec<(String, i32)> {
        self.led_partitions(image)
            .into_iter()
            .filter(|(t, i)| {
                image.partition(t, *i).is_some_and(|p| {
                    p.isr
                        .iter()
                        .any(|b| *b != self.node_id && image.is_live(*b))
                })
            })
            .collect()
    }
}

/// What a controlled shutdown achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Partitions this broker led at the start and no longer leads.
    pub moved: usize,
    /// Partitions it still leads (none of them with another in-sync replica when complete).
    pub left: usize,
    /// Partitions it still leads although another live in-sync replica could.
    pub stranded: usize,
    /// How long it took.
    pub elapsed: Duration,
    /// Whether every movable leadership moved before the deadline.
    pub complete: bool,
}

/// Waits until `partition`'s high watermark reaches `required` (every ISR member has the
/// records below it) while this broker still leads at `leader_epoch`. The leadership ending
/// first is NOT_LEADER_OR_FOLLOWER (the records may be truncated away); the deadline passing is
/// REQUEST_TIMED_OUT. A single broker's high watermark moves with its appends, so this returns
/// at once there.
pub async fn wait_for_high_watermark(
    partition: &Partition,
    required: i64,
    leader_epoch: i32,
    deadline: tokio::time::Instant,
) -> Result<(), ApiError> {
    use kafka_protocol::ResponseError;
    let mut rx = partition.progress.subscribe();
    let _ = tokio::time::timeout_at(
        deadline,
        rx.wait_for(|p| {
            p.high_watermark >= required || !p.is_leader || p.leader_epoch != leader_epoch
        }),
    )
    .await;
    let now = *partition.progress.borrow();
    if !now.is_leader || now.leader_epoch != leader_epoch {
        return Err(ApiError::new(
            ResponseError::NotLeaderOrFollower,
            "the leadership changed before the records were replicated",
        ));
    }
    if now.high_watermark >= required {
        return Ok(());
    }
    Err(ApiError::new(
        ResponseError::RequestTimedOut,
        "the in-sync replicas did not all acknowledge the records in time",
    ))
}
