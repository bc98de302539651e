//! Consumer groups: the coordinator state machine (`state`, sans-io) driven here by async
//! requests and a ticker, and committed offsets (`offsets`) kept in `__consumer_offsets`.
//!
//! A single broker coordinates every group and loads them all at start. In a cluster the
//! coordinator of a group is the leader of its `__consumer_offsets` partition, as in Kafka: a
//! loader task replays a partition's groups and offsets when this broker comes to lead it and
//! drops them when it stops (`ownership`), and every group request is first checked with
//! [`Groups::check`].
//!
//! Requests that wait (JoinGroup until the rebalance completes, a follower's SyncGroup until
//! the leader's assignment arrives) park on a oneshot channel keyed by a token; the state
//! machine hands back completions for tokens from whichever call finishes them.

#[cfg(test)]
mod lag_tests;
pub mod metadata;
pub mod offsets;
pub mod ownership;
pub mod state;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};
use tokio::sync::oneshot;

use kafka_protocol::ResponseError;

use crate::config::BrokerConfig;
use crate::server::now_ms;
use crate::topics::TopicRegistry;
use offsets::{coordinator_partition, OffsetStore, Replayed, OFFSETS_TOPIC};
use ownership::{Load, Ownership};
use state::{
    Completed, Completion, CoordinatorConfig, GroupCoordinator, JoinRequest, JoinResponse,
    SyncRequest, SyncResponse,
};

/// How often the loader compares the led offsets partitions with the loaded ones.
const LOADER_INTERVAL: Duration = Duration::from_millis(200);

/// The coordinator settings the broker flags give.
pub fn coordinator_config(b: &BrokerConfig) -> CoordinatorConfig {
    CoordinatorConfig {
        initial_rebalance_delay_ms: b.group_initial_rebalance_delay_ms,
        min_session_timeout_ms: b.group_min_session_timeout_ms,
        max_session_timeout_ms: b.group_max_session_timeout_ms,
    }
}

/// Every group this broker coordinates.
pub struct Groups {
    coordinator: Mutex<GroupCoordinator>,
    waiters: Mutex<HashMap<u64, oneshot::Sender<Completed>>>,
    next_token: AtomicU64,
    /// Committed offsets.
    pub offsets: OffsetStore,
    /// Where group records and offsets are written.
    registry: Arc<TopicRegistry>,
    /// Cluster mode: the offsets partitions whose groups are in memory (None: a single broker,
    /// which coordinates every group). Lock order: `coordinator`, then this.
    ownership: Option<Mutex<Ownership>>,
}

impl Groups {
    /// A single broker replays `__consumer_offsets` if it exists (it is created on first use,
    /// as Kafka does): committed offsets, and every stored group with its generation and
    /// members, whose sessions start afresh. A cluster member starts empty: its loader
    /// ([`Groups::run_loader`]) brings in the partitions it leads.
    pub fn open(registry: Arc<TopicRegistry>) -> anyhow::Result<Groups> {
        let clustered = registry.is_clustered();
        let (offsets, stored) = match registry.get(OFFSETS_TOPIC) {
            Some(topic) if !clustered => {
                Self::upgrade_offsets_topic(&registry, &topic)?;
                OffsetStore::load(&topic)?
            }
            _ => (OffsetStore::default(), BTreeMap::new()),
        };
        let mut coordinator = GroupCoordinator::new(coordinator_config(registry.static_broker()));
        let now = now_ms();
        for (id, group) in stored {
            coordinator.restore(&id, Some(group), now);
        }
        Ok(Groups {
            coordinator: Mutex::new(coordinator),
            waiters: Mutex::new(HashMap::new()),
            next_token: AtomicU64::new(1),
            offsets,
            registry,
            ownership: clustered.then(|| Mutex::new(Ownership::default())),
        })
    }

    /// Whether this broker serves `group` now: Ok with the leader epoch its records must be
    /// written at (None on a single broker), or NOT_COORDINATOR when another broker leads the
    /// group's offsets partition, or COORDINATOR_LOAD_IN_PROGRESS while its partition is loaded.
    pub fn check(&self, group: &str) -> Result<Option<i32>, i16> {
        let Some(ownership) = &self.ownership else {
            return Ok(None);
        };
        if group.is_empty() {
            return Err(ResponseError::InvalidGroupId.code());
        }
        let not_coordinator = ResponseError::NotCoordinator.code();
        let topic = self.registry.get(OFFSETS_TOPIC).ok_or(not_coordinator)?;
        let count = topic.partition_count();
        let index = coordinator_partition(group, count);
        let partition = topic.partition(index).ok_or(not_coordinator)?;
        let leading = {
            let state = partition.replica.lock();
            state.is_leader().then_some(state.leader_epoch)
        };
        ownership
            .lock()
            .status((topic.id, count), index, leading)
            .map(Some)
    }

    /// Whether some offsets partition this broker leads is still being loaded.
    pub fn loading(&self) -> bool {
        self.ownership.as_ref().is_some_and(|o| o.lock().loading())
    }

    /// Cluster mode: brings the groups of the offsets partitions this broker leads into memory
    /// and drops those of the partitions it stopped leading. Blocking (it reads logs).
    pub fn sync_ownership(&self) {
        let Some(ownership) = &self.ownership else {
            return;
        };
        let topic = self.registry.get(OFFSETS_TOPIC);
        let current = topic.as_ref().map(|t| (t.id, t.partition_count()));
        let led: BTreeMap<i32, i32> = topic
            .as_ref()
            .map(|t| {
                t.partitions
                    .read()
                    .iter()
                    .filter_map(|p| {
                        let state = p.replica.lock();
                        state.is_leader().then_some((p.index, state.leader_epoch))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let plan = ownership.lock().plan(current, &led);
        if !plan.unload.is_empty() || ownership.lock().topic() != current {
            self.unload(ownership, current, &plan.unload);
        }
        let Some(topic) = topic else {
            return;
        };
        for (index, epoch) in plan.load {
            let Some(partition) = topic.partition(index) else {
                continue;
            };
            ownership.lock().set(index, Load::Loading(epoch));
            let started = std::time::Instant::now();
            let mut replayed = Replayed::default();
            if let Err(e) = offsets::replay_partition(&partition, &mut replayed) {
                tracing::warn!(partition = index, error = %e,
                    "cannot load the groups of an offsets partition; trying again");
                ownership.lock().forget(index);
                continue;
            }
            let groups = replayed.groups();
            let (group_count, records) = (groups.len(), replayed.records);
            let count = topic.partition_count();
            let mine = |g: &str| coordinator_partition(g, count) == index;
            let stale = {
                let mut coordinator = self.coordinator.lock();
                let stale = coordinator.unload(mine);
                self.offsets.unload(mine);
                let now = now_ms();
                for (id, group) in groups {
                    coordinator.restore(&id, Some(group), now);
                }
                self.offsets.install(replayed.offsets);
                ownership.lock().set(index, Load::Loaded(epoch));
                stale
            };
            self.deliver(stale);
            tracing::info!(
                partition = index,
                epoch,
                groups = group_count,
                offset_records = records,
                ms = started.elapsed().as_millis() as u64,
                "coordinating the groups of this {OFFSETS_TOPIC} partition"
            );
        }
    }

    /// Drops `partitions` (and, for another offsets topic, every partition) from memory: their
    /// groups and offsets go, and waiting JoinGroup/SyncGroup requests of those groups are
    /// answered NOT_COORDINATOR. Groups of partitions that are not served are dropped too,
    /// whatever created them.
    fn unload(
        &self,
        ownership: &Mutex<Ownership>,
        topic: Option<(uuid::Uuid, i32)>,
        partitions: &[i32],
    ) {
        let completions = {
            let mut coordinator = self.coordinator.lock();
            let (count, served) = {
                let mut o = ownership.lock();
                o.drop_partitions(topic, partitions);
                (o.topic().map(|t| t.1), o.loaded())
            };
            let gone =
                |g: &str| count.is_none_or(|n| !served.contains(&coordinator_partition(g, n)));
            let completions = coordinator.unload(gone);
            let offsets = self.offsets.unload(gone);
            if !partitions.is_empty() {
                tracing::info!(
                    ?partitions,
                    groups_with_offsets = offsets,
                    "no longer coordinating the groups of these {OFFSETS_TOPIC} partitions"
                );
            }
            completions
        };
        self.deliver(completions);
    }

    /// Calls [`Groups::sync_ownership`] every 200 ms until dropped (cluster mode).
    pub async fn run_loader(self: Arc<Self>) {
        let mut every = tokio::time::interval(LOADER_INTERVAL);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let groups = self.clone();
            let _ = tokio::task::spawn_blocking(move || groups.sync_ownership()).await;
        }
    }

    /// Writes the group records the last calls on `coordinator` changed. Called with the
    /// coordinator locked, before the completions of those calls are delivered, so records of
    /// one group are written in the order the changes happened.
    fn store_changes(&self, coordinator: &mut GroupCoordinator) {
        let changes = coordinator.take_changes(now_ms());
        if changes.is_empty() {
            return;
        }
        if let Err(e) = self
            .offsets
            .store_groups(&self.registry, changes, now_ms(), |g| self.check(g))
        {
            // The groups go on in memory; a restart before the next change would bring them
            // back as of their previous record, and their members rejoin.
            tracing::warn!(error = %e, "storing group metadata failed");
        }
    }

    /// LeaveGroup: (top-level error, per-member errors).
    pub fn leave(&self, group_id: &str, members: Vec<state::LeavingMember>) -> (i16, Vec<i16>) {
        let (top, per_member, completions) = {
            let mut coordinator = self.coordinator.lock();
            let result = coordinator.leave(group_id, members, now_ms());
            self.store_changes(&mut coordinator);
            result
        };
        self.deliver(completions);
        (top, per_member)
    }

    /// DeleteGroups for one group (its offsets are the caller's to delete).
    pub fn delete(&self, group_id: &str) -> i16 {
        let mut coordinator = self.coordinator.lock();
        let code = coordinator.delete(group_id);
        self.store_changes(&mut coordinator);
        code
    }

    /// Compacted, as Kafka's: every group's latest offsets stay, superseded commits and deleted
    /// offsets (tombstones, after delete.retention.ms) go. Segments of 100 MiB
    /// (offsets.topic.segment.bytes) so that the cleaner gets sealed segments to clean.
    pub(crate) fn offsets_topic_configs() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("segment.bytes".to_string(), "104857600".to_string()),
        ])
    }

    /// A `__consumer_offsets` created before compaction existed kept everything with
    /// retention.ms=-1: switch it to the compacted configs.
    fn upgrade_offsets_topic(
        registry: &TopicRegistry,
        topic: &crate::topics::Topic,
    ) -> anyhow::Result<()> {
        if topic.configs.read().contains_key("cleanup.policy") {
            return Ok(());
        }
        tracing::info!("switching {OFFSETS_TOPIC} to cleanup.policy=compact");
        registry.set_configs(OFFSETS_TOPIC, Self::offsets_topic_configs())?;
        Ok(())
    }

    /// Creates `__consumer_offsets` when a group first needs it. In a cluster the topic is the
    /// controller's to create (FindCoordinator proposes it): only the local one is returned.
    pub fn ensure_offsets_topic(
        registry: &TopicRegistry,
    ) -> Result<Arc<crate::topics::Topic>, crate::topics::TopicError> {
        if let Some(t) = registry.get(OFFSETS_TOPIC) {
            return Ok(t);
        }
        if registry.is_clustered() {
            return Err(crate::topics::TopicError::Unknown(OFFSETS_TOPIC.into()));
        }
        let configs = Self::offsets_topic_configs();
        match registry.create(
            OFFSETS_TOPIC,
            registry.static_broker().offsets_topic_num_partitions,
            configs,
        ) {
            Err(crate::topics::TopicError::AlreadyExists(_)) => registry
                .get(OFFSETS_TOPIC)
                .ok_or_else(|| crate::topics::TopicError::Unknown(OFFSETS_TOPIC.into())),
            other => other,
        }
    }

    /// The state machine, for calls that answer at once.
    pub fn coordinator(&self) -> MutexGuard<'_, GroupCoordinator> {
        self.coordinator.lock()
    }

    /// Sends completed responses to their waiting requests.
    pub fn deliver(&self, completions: Vec<Completion>) {
        if completions.is_empty() {
            return;
        }
        let mut waiters = self.waiters.lock();
        for c in completions {
            if let Some(tx) = waiters.remove(&c.token) {
                let _ = tx.send(c.response);
            }
        }
    }

    async fn wait(
        &self,
        start: impl FnOnce(&mut GroupCoordinator, u64) -> Vec<Completion>,
        limit: Duration,
    ) -> Option<Completed> {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiters.lock().insert(token, tx);
        // Removes the waiter however this future ends, including when the client's
        // connection goes away and the request is dropped mid-wait.
        let _guard = WaiterGuard {
            groups: self,
            token,
        };
        let completions = {
            let mut coordinator = self.coordinator.lock();
            let completions = start(&mut coordinator, token);
            self.store_changes(&mut coordinator);
            completions
        };
        self.deliver(completions);
        tokio::time::timeout(limit, rx)
            .await
            .ok()
            .and_then(Result::ok)
    }

    /// JoinGroup: waits until the group's join phase completes.
    pub async fn join(&self, req: JoinRequest) -> JoinResponse {
        let limit = safety_limit(req.rebalance_timeout_ms.max(req.session_timeout_ms));
        let member_id = req.member_id.clone();
        let start = |c: &mut GroupCoordinator, token| match self.check(&req.group_id) {
            Ok(_) => c.join(token, req, now_ms()),
            Err(code) => vec![Completion {
                token,
                response: Completed::Join(join_error(code, req.member_id)),
            }],
        };
        match self.wait(start, limit).await {
            Some(Completed::Join(r)) => r,
            _ => join_error(ResponseError::CoordinatorNotAvailable.code(), member_id),
        }
    }

    /// SyncGroup: a follower waits for the leader's assignment.
    pub async fn sync(&self, req: SyncRequest, rebalance_timeout_hint_ms: i32) -> SyncResponse {
        let limit = safety_limit(rebalance_timeout_hint_ms);
        let start = |c: &mut GroupCoordinator, token| match self.check(&req.group_id) {
            Ok(_) => c.sync(token, req, now_ms()),
            Err(code) => vec![Completion {
                token,
                response: Completed::Sync(sync_error(code)),
            }],
        };
        match self.wait(start, limit).await {
            Some(Completed::Sync(r)) => r,
            _ => sync_error(ResponseError::CoordinatorNotAvailable.code()),
        }
    }

    /// Runs timeouts; called by the ticker.
    pub fn tick(&self) {
        let completions = {
            let mut coordinator = self.coordinator.lock();
            let completions = coordinator.tick(now_ms());
            self.store_changes(&mut coordinator);
            completions
        };
        self.deliver(completions);
    }

    /// Calls [`Groups::tick`] every 100 ms until dropped.
    pub async fn run_ticker(self: Arc<Self>) {
        let mut every = tokio::time::interval(Duration::from_millis(100));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            self.tick();
        }
    }
}

impl Groups {
    /// Sets the gauges of the groups this broker coordinates: the committed offset of every
    /// partition they committed, and the lag (high watermark minus committed offset) of those
    /// partitions this broker leads, and drops the series of groups and partitions that no
    /// longer exist here.
    ///
    /// Lag needs the partition's high watermark as its leader knows it. In a cluster every
    /// broker holds every partition, but one it does not lead has no (or a follower's stale)
    /// view of it: an empty local log would read as lag 0. So the lag of a partition led
    /// elsewhere is not exported at all rather than exported wrong; a cluster-wide view comes
    /// from a client that asks each leader (ListOffsets) and the coordinator (OffsetFetch), as
    /// the operator's group health does.
    pub fn export_lag(
        &self,
        registry: &TopicRegistry,
        metrics: &crate::metrics::Metrics,
        exported: &mut LagSeries,
    ) {
        let mut now = LagSeries::default();
        for group in self.offsets.groups() {
            if self.check(&group).is_err() {
                continue;
            }
            for ((topic, partition), committed) in self.offsets.group(&group) {
                let Some(local) = registry.get(&topic).and_then(|t| t.partition(partition)) else {
                    continue;
                };
                let led_hw = {
                    let state = local.replica.lock();
                    state.is_leader().then_some(state.high_watermark)
                };
                let p = partition.to_string();
                let labels = [group.as_str(), topic.as_str(), p.as_str()];
                metrics
                    .group_committed_offset
                    .with_label_values(&labels)
                    .set(committed.offset);
                if let Some(hw) = led_hw {
                    metrics
                        .group_lag
                        .with_label_values(&labels)
                        .set(lag(hw, committed.offset));
                    now.lagged.insert((group.clone(), topic.clone(), p.clone()));
                }
                now.partitions.insert((group.clone(), topic, p));
            }
        }
        let members: Vec<(String, usize)> = {
            let coordinator = self.coordinator.lock();
            coordinator
                .list()
                .into_iter()
                .filter(|g| self.check(&g.group_id).is_ok())
                .map(|g| {
                    let n = coordinator.describe(&g.group_id).members.len();
                    (g.group_id, n)
                })
                .collect()
        };
        for (group, n) in members {
            metrics
                .group_members
                .with_label_values(&[group.as_str()])
                .set(n as i64);
            now.groups.insert(group);
        }
        for (g, t, p) in exported.partitions.difference(&now.partitions) {
            let _ = metrics
                .group_committed_offset
                .remove_label_values(&[g, t, p]);
        }
        for (g, t, p) in exported.lagged.difference(&now.lagged) {
            let _ = metrics.group_lag.remove_label_values(&[g, t, p]);
        }
        for g in exported.groups.difference(&now.groups) {
            let _ = metrics.group_members.remove_label_values(&[g]);
        }
        *exported = now;
    }
}

struct WaiterGuard<'a> {
    groups: &'a Groups,
    token: u64,
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.groups.waiters.lock().remove(&self.token);
    }
}

/// The label sets the lag exporter has set, so it can remove the stale ones.
#[derive(Default)]
pub struct LagSeries {
    /// Committed-offset series.
    partitions: std::collections::BTreeSet<(String, String, String)>,
    /// Lag series (partitions this broker leads).
    lagged: std::collections::BTreeSet<(String, String, String)>,
    groups: std::collections::BTreeSet<String>,
}

/// Consumer lag of a partition whose leader has `high_watermark`: what a consumer at
/// `committed` has left to read (0 when it is ahead, e.g. after the log was truncated).
fn lag(high_watermark: i64, committed: i64) -> i64 {
    (high_watermark - committed).max(0)
}

/// A JoinGroup answered with `error_code`.
fn join_error(error_code: i16, member_id: String) -> JoinResponse {
    JoinResponse {
        error_code,
        generation_id: -1,
        protocol_type: None,
        protocol_name: None,
        leader: String::new(),
        member_id,
        members: vec![],
        skip_assignment: false,
    }
}

/// A SyncGroup answered with `error_code`.
fn sync_error(error_code: i16) -> SyncResponse {
    SyncResponse {
        error_code,
        protocol_type: None,
        protocol_name: None,
        assignment: bytes::Bytes::new(),
    }
}

/// A waiting request is answered by the state machine within the rebalance timeout; this
/// bound only guards against a lost completion.
fn safety_limit(timeout_ms: i32) -> Duration {
    Duration::from_millis(
        u64::try_from(timeout_ms)
            .unwrap_or(0)
            .saturating_add(60_000),
    )
}
