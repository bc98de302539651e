//! Produce: validates each partition's record batch and appends it as sent.
//!
//! A batch is checked (size, CRC32C, structure) before it touches the log; nothing is appended
//! for a partition whose batch is refused. acks=0 gets no response at all (the caller skips it).
//! Only the leader appends; a partition not led here is refused NOT_LEADER_OR_FOLLOWER once the
//! broker has applied the metadata it has received (a client sent on by the old leader may
//! arrive first). acks=all is refused with NOT_ENOUGH_REPLICAS when the ISR is below
//! `min.insync.replicas`, and otherwise answered once the high watermark passed the batch (every
//! ISR member has it), or with REQUEST_TIMED_OUT after the request's timeout.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::produce_response::{
    LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{BrokerId, ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{first_error, Broker};
use crate::log::{batch, BatchHeader};
use crate::producer::SequenceCheck;
use crate::protocol::errors::ApiError;
use crate::replication::wait_for_high_watermark;
use crate::server::now_ms;
use crate::topics::config;
use crate::topics::Partition;

/// Longest wait of a produce request for metadata this broker has received but not yet applied
/// to its partitions, before a partition it does not lead is refused (NOT_LEADER_OR_FOLLOWER).
const SETTLE_TIMEOUT: Duration = Duration::from_millis(500);

impl Broker {
    pub(super) async fn produce(
        &self,
        request: ProduceRequest,
        version: i16,
        listener: &str,
    ) -> (ProduceResponse, i16) {
        let acks_error = match request.acks {
            -1..=1 => None,
            other => Some(ApiError::new(
                ResponseError::InvalidRequiredAcks,
                format!("acks must be -1, 0 or 1, got {other}"),
            )),
        };
        if let Some(cluster) = &self.cluster {
            if self.leads_fewer_than_asked(&request) {
                // Perhaps a leadership this broker has received but not applied yet.
                let timeout_ms = u64::try_from(request.timeout_ms).unwrap_or(0);
                let wait = Duration::from_millis(timeout_ms).min(SETTLE_TIMEOUT);
                cluster.settle(tokio::time::Instant::now() + wait).await;
            }
        }
        let mut any_appended = false;
        // acks=all: (topic index, partition index, partition, offset the high watermark must
        // pass, leader epoch of the append, min.insync.replicas).
        let mut waits: Vec<(usize, usize, Appended)> = Vec::new();
        let mut responses = Vec::with_capacity(request.topic_data.len());
        for topic_data in request.topic_data {
            let topic = self.registry.get(topic_data.name.as_str());
            let mut partitions = Vec::with_capacity(topic_data.partition_data.len());
            for pd in topic_data.partition_data {
                let result = match (&acks_error, &topic) {
                    (Some(e), _) => Err(e.clone()),
                    (None, None) => Err(ApiError::new(ResponseError::UnknownTopicOrPartition, "")),
                    (None, Some(topic)) => self.append(
                        topic,
                        pd.index,
                        pd.records.as_deref(),
                        request.acks,
                        request.transactional_id.is_some(),
                    ),
                };
                let mut r = PartitionProduceResponse::default().with_index(pd.index);
                match result {
                    Ok(appended) => {
                        let (base_offset, append_time, log_start) = (
                            appended.base_offset,
                            appended.append_time,
                            appended.log_start,
                        );
                        any_appended = true;
                        if request.acks == -1 {
                            waits.push((responses.len(), partitions.len(), appended));
                        }
                        r.base_offset = base_offset;
                        r.log_append_time_ms = append_time.unwrap_or(-1);
                        if version >= 5 {
                            r.log_start_offset = log_start;
                        }
                    }
                    Err(e) => {
                        tracing::debug!(topic = %topic_data.name.as_str(), partition = pd.index,
                            code = e.code(), error = %e.message, "produce refused");
                        r.error_code = e.code();
                        r.base_offset = -1;
                        if version >= 8 && !e.message.is_empty() {
                            r.error_message = Some(StrBytes::from_string(e.message));
                        }
                    }
                }
                partitions.push(r);
            }
            responses.push(
                TopicProduceResponse::default()
                    .with_name(topic_data.name)
                    .with_partition_responses(partitions),
            );
        }
        if any_appended {
            self.registry.appended.notify_waiters();
        }
        if !waits.is_empty() {
            let timeout = Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0));
            let deadline = tokio::time::Instant::now() + timeout;
            for (t, p, appended) in waits {
                if let Err(e) = wait_for_isr(&appended, deadline).await {
                    if let Some(r) = responses
                        .get_mut(t)
                        .and_then(|t: &mut TopicProduceResponse| t.partition_responses.get_mut(p))
                    {
                        r.error_code = e.code();
                        r.base_offset = -1;
                        if version >= 8 && !e.message.is_empty() {
                            r.error_message = Some(StrBytes::from_string(e.message));
                        }
                    }
                }
            }
        }
        let code = first_error(
            responses
                .iter()
                .flat_map(|t| t.partition_responses.iter().map(|p| p.error_code)),
        );
        let mut response = ProduceResponse::default().with_responses(responses);
        if version >= 10 && code != 0 {
            self.add_leader_hints(&mut response, listener);
        }
        (response, code)
    }

    /// KIP-951: a partition refused with NOT_LEADER_OR_FOLLOWER names the leader this broker
    /// knows (and its endpoint), so a client moves there at once instead of waiting for its
    /// next metadata refresh (franz-go waits up to 5 s for that; librdkafka and Java move too).
    /// The endpoint is the leader's on the listener the request came in on.
    fn add_leader_hints(&self, response: &mut ProduceResponse, listener: &str) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        let image = cluster.current_image();
        let not_leader = ResponseError::NotLeaderOrFollower.code();
        let mut leaders = std::collections::BTreeSet::new();
        for t in &mut response.responses {
            for p in &mut t.partition_responses {
                if p.error_code != not_leader {
                    continue;
                }
                let Some(record) = image.partition(t.name.as_str(), p.index) else {
                    continue;
                };
                if record.leader == self.node_id || !image.is_live(record.leader) {
                    continue;
                }
                p.current_leader = LeaderIdAndEpoch::default()
                    .with_leader_id(BrokerId(record.leader))
                    .with_leader_epoch(record.leader_epoch);
                leaders.insert(record.leader);
            }
        }
        response.node_endpoints = leaders
            .into_iter()
            .filter_map(|id| {
                let b = image.brokers.get(&id)?;
                let (host, port) = super::endpoint_on(b, listener)?;
                Some(
                    NodeEndpoint::default()
                        .with_node_id(BrokerId(id))
                        .with_host(StrBytes::from_string(host.to_string()))
                        .with_port(port)
                        .with_rack(b.rack.clone().map(StrBytes::from_string)),
                )
            })
            .collect();
    }

    /// Whether `request` names a partition of a local topic that this broker does not lead.
    fn leads_fewer_than_asked(&self, request: &ProduceRequest) -> bool {
        request.topic_data.iter().any(|t| {
            self.registry.get(t.name.as_str()).is_some_and(|topic| {
                t.partition_data.iter().any(|pd| {
                    topic
                        .partition(pd.index)
                        .is_some_and(|p| !p.replica.lock().is_leader())
                })
            })
        })
    }

    /// Appends one partition's batch (on the leader).
    fn append(
        &self,
        topic: &crate::topics::Topic,
        index: i32,
        records: Option<&[u8]>,
        acks: i16,
        transactional: bool,
    ) -> Result<Appended, ApiError> {
        if topic.is_internal() {
            return Err(ApiError::new(
                ResponseError::InvalidTopicException,
                format!("Cannot append to internal topic {}", topic.name),
            ));
        }
        let partition = topic
            .partition(index)
            .ok_or_else(|| ApiError::new(ResponseError::UnknownTopicOrPartition, ""))?;
        let records = records.filter(|r| !r.is_empty()).ok_or_else(|| {
            ApiError::new(
                ResponseError::InvalidRecord,
                "a produce request must carry one record batch",
            )
        })?;
        let (max_bytes, min_isr, compacted) = {
            let overrides = topic.configs.read();
            let broker = self.registry.broker();
            (
                config::max_message_bytes(&overrides, &broker),
                config::min_insync_replicas(&overrides, &broker),
                config::is_compacted(&overrides, &broker),
            )
        };
        if records.len() > max_bytes {
            return Err(ApiError::new(
                ResponseError::MessageTooLarge,
                format!(
                    "batch of {} bytes exceeds max.message.bytes {max_bytes}",
                    records.len()
                ),
            ));
        }
        let header = batch::validate_produce_batch(records)?;
        if compacted {
            // Kafka: "Compacted topic cannot accept message without key", INVALID_RECORD.
            batch::require_keys(records)?;
        }
        if transactional || header.is_transactional() || header.is_control() {
            return Err(ApiError::new(
                ResponseError::InvalidTxnState,
                "transactions are not supported yet",
            ));
        }
        // Leadership cannot change while the log lock is held (the replica manager takes it
        // first), so the check and the append are one step.
        let mut log = partition.log.lock();
        let leader_epoch = {
            let state = partition.replica.lock();
            state.check_leader(-1)?;
            let isr = state.in_sync_count();
            if acks == -1 && (isr as i32) < min_isr {
                return Err(ApiError::new(
                    ResponseError::NotEnoughReplicas,
                    format!(
                        "the in-sync replica set has {isr} member(s), min.insync.replicas is {min_isr}"
                    ),
                ));
            }
            state.leader_epoch
        };
        let mut producers = partition.producers.lock();
        if let SequenceCheck::Duplicate { base_offset } = producers.check(&header)? {
            tracing::debug!(topic = %partition.topic, partition = index, producer_id = header.producer_id,
                base_sequence = header.base_sequence, base_offset, "duplicate batch answered with its original offset");
            return Ok(Appended {
                base_offset,
                append_time: None,
                log_start: log.log_start_offset(),
                partition: partition.clone(),
                required: base_offset + i64::from(header.last_offset_delta) + 1,
                leader_epoch,
                min_isr,
            });
        }
        if let Some(why) = self.registry.log_dir_failure() {
            return Err(ApiError::new(
                ResponseError::KafkaStorageError,
                format!("the log directory is offline: {why}"),
            ));
        }
        let info = log
            .append(records, leader_epoch, now_ms())
            .inspect_err(|e| {
                self.registry.note_write_error(e);
            })?;
        if info.rolled {
            // The state before this batch is the state as of the new segment's base offset.
            // The batch is stored whatever happens here: a failed snapshot only means a longer
            // replay at the next start.
            if let Err(e) = producers.write_snapshot(log.dir(), info.base_offset) {
                tracing::warn!(topic = %partition.topic, partition = index, error = %e, "could not write the producer snapshot");
            }
        }
        producers.record(&BatchHeader {
            base_offset: info.base_offset,
            ..header
        });
        drop(producers);
        {
            let mut state = partition.replica.lock();
            state.advance_high_watermark(log.log_end_offset());
            partition.publish(&state);
        }
        partition.update_gauges(&log);
        self.metrics.produce_bytes.inc_by(records.len() as u64);
        Ok(Appended {
            base_offset: info.base_offset,
            append_time: info.log_append_time,
            log_start: log.log_start_offset(),
            partition: partition.clone(),
            required: info.last_offset + 1,
            leader_epoch,
            min_isr,
        })
    }
}

/// What one partition's append stored, and what an acks=all answer waits for.
struct Appended {
    base_offset: i64,
    append_time: Option<i64>,
    log_start: i64,
    partition: Arc<Partition>,
    /// The high watermark that covers the batch.
    required: i64,
    leader_epoch: i32,
    min_isr: i32,
}

/// acks=all: waits until the high watermark covers the batch; replicated but the ISR shrank
/// below min.insync.replicas is NOT_ENOUGH_REPLICAS_AFTER_APPEND, as in Kafka.
async fn wait_for_isr(a: &Appended, deadline: tokio::time::Instant) -> Result<(), ApiError> {
    wait_for_high_watermark(&a.partition, a.required, a.leader_epoch, deadline).await?;
    let isr = a.partition.replica.lock().in_sync_count();
    if (isr as i32) < a.min_isr {
        return Err(ApiError::new(
            ResponseError::NotEnoughReplicasAfterAppend,
            format!(
                "replicated, but the ISR has shrunk to {isr} below min.insync.replicas {}",
                a.min_isr
            ),
        ));
    }
    Ok(())
}
