//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3) and by timestamp through the
//! time index. OffsetForLeaderEpoch: where a leader epoch ends in the log, from the leader epoch
//! cache, as clients ask when they validate their position after a leader change.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    ListOffsetsRequest, ListOffsetsResponse, OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
};
use kafka_protocol::ResponseError;

use super::{first_error, Broker};
use crate::protocol::errors::ApiError;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;

impl Broker {
    pub(super) fn list_offsets(
        &self,
        request: ListOffsetsRequest,
        version: i16,
    ) -> (ListOffsetsResponse, i16) {
        let mut seen = std::collections::HashSet::new();
        let topics: Vec<_> = request
            .topics
            .into_iter()
            .map(|t| {
                let topic = self.registry.get(t.name.as_str());
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let mut r = ListOffsetsPartitionResponse::default()
                            .with_partition_index(p.partition_index);
                        let duplicate = !seen.insert((t.name.0.clone(), p.partition_index));
                        let result = if duplicate {
                            Err(ApiError::new(
                                ResponseError::InvalidRequest,
                                "partition listed twice",
                            ))
                        } else {
                            led_partition(
                                topic.as_deref(),
                                p.partition_index,
                                p.current_leader_epoch,
                            )
                            .and_then(|part| {
                                let (hw, epoch) = {
                                    let state = part.replica.lock();
                                    (state.high_watermark, state.leader_epoch)
                                };
                                let log = part.log.lock();
                                let found = match p.timestamp {
                                    LATEST => Some((hw, -1)),
                                    EARLIEST => Some((log.log_start_offset(), -1)),
                                    MAX_TIMESTAMP if version >= 7 => log.max_timestamp()?,
                                    ts if ts >= 0 => log.offset_for_timestamp(ts)?,
                                    _ => None,
                                };
                                Ok(found.map(|(o, t)| (o, t, epoch)))
                            })
                        };
                        match result {
                            Ok(Some((offset, timestamp, epoch))) => {
                                r.offset = offset;
                                r.timestamp = timestamp;
                                if version >= 4 {
                                    r.leader_epoch = epoch;
                                }
                            }
                            Ok(None) => {
                                r.offset = -1;
                                r.timestamp = -1;
                            }
                            Err(e) => {
                                r.error_code = e.code();
                                r.offset = -1;
                                r.timestamp = -1;
                            }
                        }
                        r
                    })
                    .collect();
                ListOffsetsTopicResponse::default()
                    .with_name(t.name)
                    .with_partitions(partitions)
            })
            .collect();
        let code = first_error(
            topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        );
        (ListOffsetsResponse::default().with_topics(topics), code)
    }

    /// OffsetForLeaderEpoch v2–4 (v0–1 are gone since Kafka 4): for each partition, the
    /// largest leader epoch at or below the requested one and the offset where it ends (the log
    /// end for the current epoch); UNDEFINED (-1, -1) for an epoch above the current one.
    /// `current_leader_epoch` is checked as Fetch checks it (FENCED_LEADER_EPOCH /
    /// UNKNOWN_LEADER_EPOCH).
    pub(super) fn offset_for_leader_epoch(
        &self,
        request: OffsetForLeaderEpochRequest,
    ) -> (OffsetForLeaderEpochResponse, i16) {
        let topics: Vec<OffsetForLeaderTopicResult> = request
            .topics
            .into_iter()
            .map(|t| {
                let topic = self.registry.get(t.topic.as_str());
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let mut r = EpochEndOffset::default()
                            .with_partition(p.partition)
                            .with_leader_epoch(-1)
                            .with_end_offset(-1);
                        let answer =
                            led_partition(topic.as_deref(), p.partition, p.current_leader_epoch)
                                .map(|part| {
                                    part.log.lock().offsets_for_leader_epoch(p.leader_epoch)
                                });
                        match answer {
                            Ok((epoch, end_offset)) => {
                                r.leader_epoch = epoch;
                                r.end_offset = end_offset;
                            }
                            Err(e) => r.error_code = e.code(),
                        }
                        r
                    })
                    .collect();
                OffsetForLeaderTopicResult::default()
                    .with_topic(t.topic)
                    .with_partitions(partitions)
            })
            .collect();
        let code = first_error(
            topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        );
        (
            OffsetForLeaderEpochResponse::default().with_topics(topics),
            code,
        )
    }
}

/// Partition `index` of `topic`, once this broker is known to lead it at the client's
/// `current_leader_epoch`: UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER, or the epoch
/// errors (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH).
fn led_partition(
    topic: Option<&crate::topics::Topic>,
    index: i32,
    current_leader_epoch: i32,
) -> Result<std::sync::Arc<crate::topics::Partition>, ApiError> {
    let part = topic
        .and_then(|topic| topic.partition(index))
        .ok_or_else(|| ApiError::new(ResponseError::UnknownTopicOrPartition, ""))?;
    part.replica.lock().check_leader(current_leader_epoch)?;
    Ok(part)
}
