//! The follower side: one task per leader broker fetches every partition this broker follows
//! from it, appends what comes back as it is, truncates where the leader says the logs diverge,
//! and takes the leader's high watermark. Each fetch carries this process's broker epoch (its
//! registration's metadata version, from its own image); while the leader refuses it (fenced,
//! or an epoch the leader's image calls stale) the fetcher backs off and says so once at info.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use parking_lot::Mutex;
use samsa_proto::v1::replica_client::ReplicaClient;
use samsa_proto::v1::{ReplicaFetchPartition, ReplicaFetchPartitionReply, ReplicaFetchRequest};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use super::service::MAX_MESSAGE;
use super::throttle::FollowerThrottle;
use super::ReplicaManager;
use crate::controller::MetadataImage;
use crate::log::batch::BatchIter;
use crate::log::{Log, LogError};
use crate::producer::ProducerStates;
use crate::security::internal_tls::{transport, InternalTls};
use crate::topics::Partition;

/// Pause after a failed round (so a dead leader is not hammered), and between empty rounds
/// when followers do not wait at the leader (`--replica-fetch-wait-max-ms 0`).
const BACKOFF: Duration = Duration::from_millis(100);

/// Pause after the leader refused this broker itself (fenced, or a stale broker epoch): it
/// takes a heartbeat (or a registration) and the leader's image following it to change that.
const REFUSED_BACKOFF: Duration = Duration::from_millis(250);

/// Whether a partition error refuses this broker rather than the partition.
fn refuses_broker(code: i32) -> bool {
    let code = i16::try_from(code).unwrap_or(-1);
    code == ResponseError::StaleBrokerEpoch.code()
        || code == ResponseError::IneligibleReplica.code()
}

/// Partitions followed from one leader, keyed by (topic, index).
type Followed = BTreeMap<(Arc<str>, i32), Arc<Partition>>;

/// The fetch loop of one leader.
pub(super) struct Fetcher {
    partitions: Arc<Mutex<Followed>>,
    wake: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Fetcher {
    /// Starts fetching from `leader` (nothing yet: see [`Fetcher::add`]).
    pub(super) fn start(manager: Arc<ReplicaManager>, leader: i32) -> Fetcher {
        let partitions = Arc::new(Mutex::new(Followed::new()));
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(run(manager, leader, partitions.clone(), wake.clone()));
        Fetcher {
            partitions,
            wake,
            task,
        }
    }

    pub(super) fn add(&self, partition: Arc<Partition>) {
        let key = (partition.topic.clone(), partition.index);
        self.partitions.lock().insert(key, partition);
        self.wake.notify_one();
    }

    pub(super) fn remove(&self, topic: &Arc<str>, index: i32) -> bool {
        self.partitions
            .lock()
            .remove(&(topic.clone(), index))
            .is_some()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.partitions.lock().is_empty()
    }

    pub(super) fn stop(self) {
        self.task.abort();
    }
}

fn client(addr: &str, tls: Option<&InternalTls>) -> Option<ReplicaClient<Channel>> {
    let channel = transport::channel(addr, tls, Duration::from_millis(500)).ok()?;
    Some(
        ReplicaClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE),
    )
}

async fn run(
    manager: Arc<ReplicaManager>,
    leader: i32,
    partitions: Arc<Mutex<Followed>>,
    wake: Arc<Notify>,
) {
    let mut connected: Option<(String, ReplicaClient<Channel>)> = None;
    let wait_ms = manager.config.replica_fetch_wait_max_ms;
    // The broker epoch last sent, and the code of the leader's refusal of this broker while
    // it lasts: each change is logged once.
    let mut sent_epoch: Option<i64> = None;
    let mut refused: Option<i32> = None;
    let mut throttle = FollowerThrottle::new(manager.registry.clone(), manager.node_id);
    loop {
        let followed: Vec<Arc<Partition>> = partitions.lock().values().cloned().collect();
        if followed.is_empty() {
            wake.notified().await;
            continue;
        }
        let image = manager.current_image();
        let broker_epoch = manager.own_broker_epoch(&image);
        if sent_epoch != Some(broker_epoch) {
            sent_epoch = Some(broker_epoch);
            tracing::info!(
                leader,
                broker_epoch,
                image = image.version,
                "replica fetches carry broker epoch {broker_epoch}"
            );
        }
        let addr = image
            .brokers
            .get(&leader)
            .map(|b| b.replication.clone())
            .unwrap_or_default();
        if addr.is_empty() {
            tokio::time::sleep(BACKOFF).await;
            continue;
        }
        if connected.as_ref().is_none_or(|(a, _)| *a != addr) {
            connected = client(&addr, manager.tls.as_ref()).map(|c| (addr.clone(), c));
        }
        let Some((_, grpc)) = connected.as_mut() else {
            tracing::warn!(leader, %addr, "bad replication address");
            tokio::time::sleep(BACKOFF).await;
            continue;
        };
        let mut asked = Vec::with_capacity(followed.len());
        let mut request = ReplicaFetchRequest {
            replica_id: manager.node_id,
            max_wait_ms: i32::try_from(wait_ms).unwrap_or(500),
            max_bytes_per_partition: manager.config.replica_fetch_max_bytes,
            partitions: Vec::with_capacity(followed.len()),
            broker_epoch,
        };
        for p in &followed {
            let epoch = {
                let state = p.replica.lock();
                if state.leader != leader || state.is_leader() {
                    continue;
                }
                state.leader_epoch
            };
            if throttle.holds_back(p) {
                continue;
            }
            let log = p.log.lock();
            request.partitions.push(ReplicaFetchPartition {
                topic: p.topic.to_string(),
                partition: p.index,
                fetch_offset: log.log_end_offset(),
                current_leader_epoch: epoch,
                last_fetched_epoch: log.latest_epoch().unwrap_or(-1),
                log_start_offset: log.log_start_offset(),
            });
            asked.push((p.clone(), epoch, log.log_end_offset()));
        }
        if asked.is_empty() {
            tokio::time::sleep(BACKOFF).await;
            continue;
        }
        let timeout = Duration::from_millis(wait_ms) + Duration::from_secs(5);
        let reply = match tokio::time::timeout(timeout, grpc.fetch(request)).await {
            Ok(Ok(r)) => r.into_inner(),
            Ok(Err(e)) if e.code() == tonic::Code::PermissionDenied => {
                tracing::warn!(leader, %addr, "the leader refuses this broker's fetches: {e}");
                tokio::time::sleep(REFUSED_BACKOFF).await;
                continue;
            }
            Ok(Err(e)) => {
                tracing::debug!(leader, %addr, "replica fetch failed: {e}");
                tokio::time::sleep(BACKOFF).await;
                continue;
            }
            Err(_) => {
                tracing::debug!(leader, %addr, "replica fetch timed out");
                connected = None;
                continue;
            }
        };
        // Without a wait at the leader, an empty answer comes back at once: poll gently.
        let mut backoff = wait_ms == 0 && reply.partitions.iter().all(|r| r.records.is_empty());
        let refusal = reply
            .partitions
            .iter()
            .map(|r| r.error_code)
            .find(|c| refuses_broker(*c));
        if refusal != refused {
            match refusal {
                Some(code) => tracing::info!(
                    leader,
                    broker_epoch,
                    code,
                    "the leader refuses this broker's fetches (fenced, or a stale broker \
                     epoch): retrying until the controller's metadata says otherwise"
                ),
                None => tracing::info!(
                    leader,
                    broker_epoch,
                    "the leader serves this broker's fetches again"
                ),
            }
            refused = refusal;
        }
        for ((partition, epoch, fetch_offset), r) in asked.iter().zip(reply.partitions.iter()) {
            if r.topic != *partition.topic || r.partition != partition.index {
                tracing::warn!(leader, "replica fetch reply out of order");
                backoff = true;
                break;
            }
            match manager.apply_fetched(partition, *epoch, *fetch_offset, r) {
                Ok(true) => {}
                Ok(false) => backoff = true,
                Err(e) => {
                    tracing::warn!(topic = %partition.topic, partition = partition.index,
                        leader, error = %e, "could not apply fetched data");
                    manager.registry.note_write_error(&e);
                    backoff = true;
                }
            }
            throttle.fetched(partition, r);
        }
        if refusal.is_some() {
            tokio::time::sleep(REFUSED_BACKOFF).await;
        } else if backoff {
            tokio::time::sleep(BACKOFF).await;
        }
    }
}

impl ReplicaManager {
    /// This process's broker epoch as `image` shows it: the epoch of its own record when that
    /// record is this incarnation's, else -1 (not registered there yet, or replaced).
    fn own_broker_epoch(&self, image: &MetadataImage) -> i64 {
        image
            .brokers
            .get(&self.node_id)
            .filter(|b| b.incarnation_id == self.incarnation_id)
            .map_or(-1, |b| i64::try_from(b.epoch).unwrap_or(i64::MAX))
    }

    /// Applies one partition of a fetch reply; `Ok(false)` when the leader refused (retry
    /// after a pause).
    fn apply_fetched(
        &self,
        partition: &Partition,
        epoch: i32,
        fetch_offset: i64,
        r: &ReplicaFetchPartitionReply,
    ) -> Result<bool, LogError> {
        if self.registry.log_dir_failure().is_some() {
            return Ok(false); // the log directory is offline: nothing is written any more
        }
        let mut log = partition.log.lock();
        {
            let state = partition.replica.lock();
            if state.leader_epoch != epoch || state.is_leader() {
                return Ok(true); // leadership changed while the fetch was in flight
            }
        }
        if log.log_end_offset() != fetch_offset {
            return Ok(true); // truncated meanwhile; the next round starts from the new end
        }
        let code = i16::try_from(r.error_code).unwrap_or(-1);
        if code == ResponseError::OffsetOutOfRange.code() {
            if r.log_start_offset >= 0 && fetch_offset < r.log_start_offset {
                tracing::info!(topic = %partition.topic, partition = partition.index,
                    fetch_offset, leader_log_start = r.log_start_offset,
                    "behind the leader's log start: starting again there");
                log.truncate_fully_and_start_at(r.log_start_offset)?;
                self.after_truncation(partition, &mut log)?;
            } else if r.log_end_offset >= 0 && fetch_offset > r.log_end_offset {
                tracing::info!(topic = %partition.topic, partition = partition.index,
                    fetch_offset, leader_log_end = r.log_end_offset,
                    "ahead of the leader's log end: truncating");
                log.truncate_to(r.log_end_offset)?;
                self.after_truncation(partition, &mut log)?;
            }
            return Ok(true);
        }
        if code != 0 {
            tracing::debug!(topic = %partition.topic, partition = partition.index, code,
                "leader refused the fetch");
            return Ok(false);
        }
        if let Some(diverging) = r.diverging_epoch {
            let leader_end = r.diverging_end_offset;
            let target = match log.end_offset_for_epoch(diverging) {
                _ if leader_end < 0 => partition.high_watermark(),
                Some((_, local_end)) => leader_end.min(local_end),
                None => leader_end.min(log.log_start_offset()),
            };
            tracing::info!(topic = %partition.topic, partition = partition.index,
                diverging_epoch = diverging, leader_end, truncate_to = target,
                log_end = log.log_end_offset(), "log diverges from the leader's: truncating");
            log.truncate_to(target)?;
            self.after_truncation(partition, &mut log)?;
            return Ok(true);
        }
        if !r.records.is_empty() {
            let info = log.append_replicated(&r.records)?;
            let mut producers = partition.producers.lock();
            if info.rolled && !producers.is_empty() {
                if let Err(e) = producers.write_snapshot(log.dir(), info.base_offset) {
                    tracing::warn!(topic = %partition.topic, partition = partition.index, error = %e, "could not write the producer snapshot");
                }
            }
            for (_, header) in BatchIter::new(&r.records).flatten() {
                if header.has_producer_id() {
                    producers.record(&header);
                }
            }
        }
        let mut state = partition.replica.lock();
        state.follow_high_watermark(r.high_watermark, log.log_end_offset());
        partition.publish(&state);
        let hw = state.high_watermark;
        drop(state);
        // DeleteRecords on the leader: follow its log start, never past what is committed here.
        let follow = r.log_start_offset.min(hw);
        if follow > log.log_start_offset() {
            log.advance_log_start(follow)?;
        }
        partition.update_gauges(&log);
        Ok(true)
    }

    /// After a follower truncated: producer state as of the new end, high watermark capped.
    fn after_truncation(&self, partition: &Partition, log: &mut Log) -> Result<(), LogError> {
        *partition.producers.lock() = ProducerStates::load(log)?;
        let mut state = partition.replica.lock();
        let end = log.log_end_offset();
        if state.high_watermark > end {
            state.high_watermark = end;
        }
        partition.publish(&state);
        drop(state);
        partition.update_gauges(log);
        Ok(())
    }
}
