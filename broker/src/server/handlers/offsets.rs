//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3) and by timestamp through the
//! time index.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;

use super::fetch::check_leader_epoch;
use super::{first_error, Broker, LEADER_EPOCH};
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
                            topic
                                .as_ref()
                                .and_then(|topic| topic.partition(p.partition_index))
                                .ok_or_else(|| {
                                    ApiError::new(ResponseError::UnknownTopicOrPartition, "")
                                })
                                .and_then(|part| {
                                    check_leader_epoch(p.current_leader_epoch)?;
                                    let log = part.log.lock();
                                    let found = match p.timestamp {
                                        LATEST => Some((log.log_end_offset(), -1)),
                                        EARLIEST => Some((log.log_start_offset(), -1)),
                                        MAX_TIMESTAMP if version >= 7 => log.max_timestamp()?,
                                        ts if ts >= 0 => log.offset_for_timestamp(ts)?,
                                        _ => None,
                                    };
                                    Ok(found)
                                })
                        };
                        match result {
                            Ok(Some((offset, timestamp))) => {
                                r.offset = offset;
                                r.timestamp = timestamp;
                                if version >= 4 {
                                    r.leader_epoch = LEADER_EPOCH;
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
}
