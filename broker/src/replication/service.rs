//! The leader side of `samsa.v1.Replica`: followers fetch whole stored batches from their log
//! end offset. Each fetch tells the leader how far the follower got, which moves the high
//! watermark and may bring the follower back into the ISR; a follower whose log disagrees with
//! the leader's epochs gets the point to truncate to instead of data.
//!
//! Only the live incarnation of a follower counts: each fetch carries the follower's broker
//! epoch, and a fetch from a fenced broker or from an older epoch than the leader's image
//! names is refused, so a paused, fenced or replaced process can neither move the high
//! watermark nor rejoin the ISR (nor make the leader propose ISR changes the controller must
//! refuse). Never counts a fetch it did not admit (`state::admit_follower`).
//!
//! A fetch naming a replica id that is not a registered broker of the current image is refused
//! as a whole (PERMISSION_DENIED, logged with the peer address); a registered broker that is not
//! a replica of a partition gets NOT_LEADER_OR_FOLLOWER for it and moves nothing. Who may
//! connect at all is the listener's business (mutual TLS, `security::internal_tls`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::ResponseError;
use samsa_proto::v1::replica_server::{Replica, ReplicaServer};
use samsa_proto::v1::{
    ReplicaFetchPartition, ReplicaFetchPartitionReply, ReplicaFetchReply, ReplicaFetchRequest,
};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use super::state::{admit_follower, check_epoch, FetchAdmission, FollowerStanding};
use super::throttle;
use super::ReplicaManager;
use crate::log::LogError;
use crate::protocol::errors::ApiError;
use crate::security::internal_tls::transport;
use crate::topics::Partition;

/// Largest gRPC message either way (a fetch carries up to max bytes per partition).
pub(super) const MAX_MESSAGE: usize = 256 * 1024 * 1024;

/// Longest wait a follower may ask for.
const MAX_WAIT: Duration = Duration::from_secs(5);

/// How often a waiting fetch looks again while the leader throttle is exceeded.
const THROTTLE_RECHECK: Duration = Duration::from_millis(50);

struct ReplicaService {
    manager: Arc<ReplicaManager>,
}

/// Serves `samsa.v1.Replica` on `listener` until `shutdown` turns true.
pub(super) async fn serve(
    manager: Arc<ReplicaManager>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    let service = ReplicaServer::new(ReplicaService {
        manager: manager.clone(),
    })
    .max_decoding_message_size(MAX_MESSAGE)
    .max_encoding_message_size(MAX_MESSAGE);
    let incoming = transport::incoming(listener, manager.tls.clone());
    let result = tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = shutdown.wait_for(|s| *s).await;
        })
        .await;
    if let Err(e) = result {
        tracing::warn!("replication listener stopped: {e}");
    }
}

#[tonic::async_trait]
impl Replica for ReplicaService {
    async fn fetch(
        &self,
        request: Request<ReplicaFetchRequest>,
    ) -> Result<Response<ReplicaFetchReply>, Status> {
        let peer = request.remote_addr();
        let r = request.into_inner();
        if !self
            .manager
            .current_image()
            .brokers
            .contains_key(&r.replica_id)
        {
            tracing::warn!(replica_id = r.replica_id, peer = ?peer,
                "replica fetch refused: the replica id is not a registered broker");
            return Err(Status::permission_denied(format!(
                "replica id {} is not a registered broker",
                r.replica_id
            )));
        }
        let wait = Duration::from_millis(u64::try_from(r.max_wait_ms).unwrap_or(0)).min(MAX_WAIT);
        let deadline = Instant::now() + wait;
        let max_bytes = usize::try_from(r.max_bytes_per_partition)
            .unwrap_or(0)
            .max(1);
        let registry = self.manager.registry.clone();
        loop {
            let notified = registry.appended.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Again on every round of a waiting fetch: the follower may be fenced meanwhile.
            let admission = self.manager.admit(r.replica_id, r.broker_epoch);
            let mut any = false;
            let partitions: Vec<ReplicaFetchPartitionReply> = r
                .partitions
                .iter()
                .map(|fp| {
                    let reply =
                        self.manager
                            .serve_partition(r.replica_id, &admission, fp, max_bytes);
                    any |= reply.error_code != 0
                        || reply.diverging_epoch.is_some()
                        || !reply.records.is_empty();
                    reply
                })
                .collect();
            if any || Instant::now() >= deadline {
                return Ok(Response::new(ReplicaFetchReply { partitions }));
            }
            // While the leader throttle holds followers back, look again soon: a held-back
            // follower resumes when the rate falls under the bound, not a whole wait later.
            let until = if registry.replication_quotas().leader.is_exceeded() {
                deadline.min(Instant::now() + THROTTLE_RECHECK)
            } else {
                deadline
            };
            let _ = tokio::time::timeout_at(until.into(), notified).await;
        }
    }
}

impl ReplicaManager {
    /// Whether a fetch from `follower` stamped with `broker_epoch` is served and counted, as
    /// the current image says.
    fn admit(&self, follower: i32, broker_epoch: i64) -> FetchAdmission {
        let image = self.current_image();
        let known = image.brokers.get(&follower).map(|b| FollowerStanding {
            epoch: b.epoch,
            fenced: b.fenced,
        });
        let admission = admit_follower(broker_epoch, known);
        match &admission {
            FetchAdmission::Counted => {}
            FetchAdmission::Uncounted => tracing::debug!(follower, broker_epoch,
                known_epoch = ?known.map(|k| k.epoch), image = image.version,
                "replica fetch from an epoch this image does not know yet: served, not counted"),
            FetchAdmission::Refused(e) => tracing::debug!(follower, broker_epoch,
                known_epoch = ?known.map(|k| k.epoch), image = image.version,
                code = e.code(), "replica fetch refused: {}", e.message),
        }
        admission
    }

    /// One partition of a follower's fetch.
    fn serve_partition(
        &self,
        follower: i32,
        admission: &FetchAdmission,
        fp: &ReplicaFetchPartition,
        max_bytes: usize,
    ) -> ReplicaFetchPartitionReply {
        let mut reply = ReplicaFetchPartitionReply {
            topic: fp.topic.clone(),
            partition: fp.partition,
            high_watermark: -1,
            log_start_offset: -1,
            log_end_offset: -1,
            ..Default::default()
        };
        let partition = self
            .registry
            .get(&fp.topic)
            .and_then(|t| t.partition(fp.partition));
        let Some(partition) = partition else {
            reply.error_code = i32::from(ResponseError::UnknownTopicOrPartition.code());
            return reply;
        };
        let read = self.leader_read(&partition, (follower, admission), fp, max_bytes, &mut reply);
        if let Err(e) = read {
            reply.error_code = i32::from(e.code());
            reply.records = Vec::new();
        }
        reply
    }

    fn leader_read(
        &self,
        partition: &Arc<Partition>,
        (follower, admission): (i32, &FetchAdmission),
        fp: &ReplicaFetchPartition,
        max_bytes: usize,
        reply: &mut ReplicaFetchPartitionReply,
    ) -> Result<(), ApiError> {
        let in_isr = {
            let state = partition.replica.lock();
            if !state.is_leader() {
                return Err(ApiError::new(ResponseError::NotLeaderOrFollower, ""));
            }
            check_epoch(fp.current_leader_epoch, state.leader_epoch)?;
            if !state.replicas.contains(&follower) {
                return Err(ApiError::new(
                    ResponseError::NotLeaderOrFollower,
                    format!("broker {follower} is not a replica"),
                ));
            }
            state.isr.contains(&follower)
        };
        let (throttled, hold) =
            throttle::leader_check(&self.registry, partition, self.node_id, in_isr);
        if let FetchAdmission::Refused(e) = admission {
            return Err(e.clone());
        }
        let log = partition.log.lock();
        let (start, end) = (log.log_start_offset(), log.log_end_offset());
        reply.log_start_offset = start;
        reply.log_end_offset = end;
        if fp.last_fetched_epoch >= 0 && fp.fetch_offset >= start && fp.fetch_offset <= end {
            let (epoch, epoch_end) = log.offsets_for_leader_epoch(fp.last_fetched_epoch);
            if epoch < fp.last_fetched_epoch || epoch_end < fp.fetch_offset {
                reply.diverging_epoch = Some(epoch);
                reply.diverging_end_offset = epoch_end;
                reply.high_watermark = partition.high_watermark();
                return Ok(());
            }
        }
        if fp.fetch_offset < start || fp.fetch_offset > end {
            return Err(ApiError::new(ResponseError::OffsetOutOfRange, ""));
        }
        // A held-back follower gets nothing this time but still reports how far it got.
        if !hold {
            reply.records = match log.read(fp.fetch_offset, max_bytes, end) {
                Ok(r) => r.to_vec(),
                Err(LogError::OffsetOutOfRange { .. }) => {
                    return Err(ApiError::new(ResponseError::OffsetOutOfRange, ""))
                }
                Err(e) => return Err(ApiError::from(e)),
            };
        }
        if throttled {
            self.registry
                .replication_quotas()
                .leader
                .record(reply.records.len());
        }
        if !matches!(admission, FetchAdmission::Counted) {
            reply.high_watermark = partition.high_watermark();
            return Ok(());
        }
        // The fetch offset is how far the follower got: it may move the high watermark and
        // bring the follower back into the ISR. Liveness is read again for the ISR: a fence
        // committed since the admission must not turn into a proposal the controller refuses.
        let live = self.current_image().is_live(follower);
        let mut state = partition.replica.lock();
        state.record_follower_fetch(follower, fp.fetch_offset, end, Instant::now());
        let moved = state.advance_high_watermark(end);
        let expand = state.isr_to_expand(follower, live);
        if let Some(isr) = &expand {
            state.pending_isr = Some(isr.clone());
        }
        reply.high_watermark = state.high_watermark;
        partition.publish(&state);
        if let Some(isr) = expand {
            tracing::info!(topic = %partition.topic, partition = partition.index, follower,
                ?isr, "follower caught up: adding it to the ISR");
            self.alter_isr(partition.clone(), &state, isr);
        }
        drop(state);
        drop(log);
        if moved {
            self.registry.appended.notify_waiters();
        }
        Ok(())
    }
}
