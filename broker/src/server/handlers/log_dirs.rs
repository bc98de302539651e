//! DescribeLogDirs (this broker's one log directory, its partitions' sizes and lags, and the
//! directory's total and usable bytes) and DeleteRecords (the leader moves a partition's log
//! start offset up; followers follow it from the leader's replica-fetch replies).
//!
//! Only partitions this broker holds a replica of are described: Kafka's admin client asks
//! every broker and merges the answers.

use std::path::Path;

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{
    DeleteRecordsRequest, DeleteRecordsResponse, DescribeLogDirsRequest, DescribeLogDirsResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{first_error, Broker};
use crate::protocol::errors::ApiError;
use crate::topics::{Partition, Topic};

/// DeleteRecords' offset meaning "up to the high watermark".
const HIGH_WATERMARK: i64 = -1;

impl Broker {
    pub(super) fn describe_log_dirs(
        &self,
        request: DescribeLogDirsRequest,
        version: i16,
    ) -> (DescribeLogDirsResponse, i16) {
        let data_dir = &self.registry.static_broker().data_dir;
        let shown = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.clone());
        let mut result = DescribeLogDirsResult::default()
            .with_log_dir(StrBytes::from_string(shown.display().to_string()));
        if self.registry.log_dir_failure().is_some() {
            result.error_code = ResponseError::KafkaStorageError.code();
        } else {
            let wanted: Vec<(std::sync::Arc<Topic>, Option<Vec<i32>>)> = match request.topics {
                None => self.registry.all().into_iter().map(|t| (t, None)).collect(),
                Some(topics) => topics
                    .into_iter()
                    .filter_map(|t| {
                        let topic = self.registry.get(t.topic.as_str())?;
                        Some((topic, Some(t.partitions)))
                    })
                    .collect(),
            };
            result.topics = wanted
                .into_iter()
                .filter_map(|(topic, indexes)| {
                    let partitions: Vec<DescribeLogDirsPartition> = topic
                        .partitions
                        .read()
                        .iter()
                        .filter(|p| indexes.as_ref().is_none_or(|i| i.contains(&p.index)))
                        .filter_map(|p| self.describe_local(p))
                        .collect();
                    (!partitions.is_empty()).then(|| {
                        DescribeLogDirsTopic::default()
                            .with_name(TopicName(StrBytes::from_string(topic.name.to_string())))
                            .with_partitions(partitions)
                    })
                })
                .collect();
        }
        if version >= 4 {
            match disk_space(&shown) {
                Ok((total, usable)) => {
                    result.total_bytes = total;
                    result.usable_bytes = usable;
                }
                Err(e) => {
                    tracing::warn!(dir = %shown.display(), error = %e, "statvfs of the data directory failed")
                }
            }
        }
        let code = result.error_code;
        (
            DescribeLogDirsResponse::default().with_results(vec![result]),
            code,
        )
    }

    /// One partition's size and lag, when this broker holds a replica of it. The lag is
    /// Kafka's: how far the log end is below the high watermark (0 on a leader).
    fn describe_local(&self, p: &Partition) -> Option<DescribeLogDirsPartition> {
        let log = p.log.lock();
        let state = p.replica.lock();
        if !state.replicas.contains(&self.node_id) {
            return None;
        }
        let lag = (state.high_watermark - log.log_end_offset()).max(0);
        Some(
            DescribeLogDirsPartition::default()
                .with_partition_index(p.index)
                .with_partition_size(i64::try_from(log.size_bytes()).unwrap_or(i64::MAX))
                .with_offset_lag(lag)
                .with_is_future_key(false),
        )
    }

    pub(super) fn delete_records(
        &self,
        request: DeleteRecordsRequest,
    ) -> (DeleteRecordsResponse, i16) {
        let topics: Vec<DeleteRecordsTopicResult> = request
            .topics
            .into_iter()
            .map(|t| {
                let topic = self.registry.get(t.name.as_str());
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let r = DeleteRecordsPartitionResult::default()
                            .with_partition_index(p.partition_index);
                        match self.delete_records_in(topic.as_deref(), p.partition_index, p.offset)
                        {
                            Ok(low) => r.with_low_watermark(low),
                            Err(e) => {
                                tracing::debug!(topic = %t.name.as_str(), partition = p.partition_index,
                                    offset = p.offset, error = %e.message, "delete records refused");
                                r.with_low_watermark(-1).with_error_code(e.code())
                            }
                        }
                    })
                    .collect();
                DeleteRecordsTopicResult::default()
                    .with_name(t.name)
                    .with_partitions(partitions)
            })
            .collect();
        let code = first_error(
            topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        );
        (DeleteRecordsResponse::default().with_topics(topics), code)
    }

    /// Kafka's `deleteRecordsOnLeader`: the new low watermark of one partition.
    fn delete_records_in(
        &self,
        topic: Option<&Topic>,
        index: i32,
        offset: i64,
    ) -> Result<i64, ApiError> {
        let topic =
            topic.ok_or_else(|| ApiError::new(ResponseError::UnknownTopicOrPartition, ""))?;
        if topic.is_internal() {
            return Err(ApiError::new(
                ResponseError::InvalidTopicException,
                format!("Cannot delete records of internal topic {}", topic.name),
            ));
        }
        let part = topic
            .partition(index)
            .ok_or_else(|| ApiError::new(ResponseError::UnknownTopicOrPartition, ""))?;
        if let Some(reason) = self.registry.log_dir_failure() {
            return Err(ApiError::new(ResponseError::KafkaStorageError, reason));
        }
        let mut log = part.log.lock();
        let hw = {
            let state = part.replica.lock();
            state.check_leader(-1)?;
            state.high_watermark
        };
        if !log.config().cleanup_delete {
            return Err(ApiError::new(
                ResponseError::PolicyViolation,
                format!(
                    "Records of partition {}-{index} can not be deleted due to the configured policy",
                    topic.name
                ),
            ));
        }
        let target = if offset == HIGH_WATERMARK { hw } else { offset };
        if target < 0 {
            return Err(ApiError::new(
                ResponseError::OffsetOutOfRange,
                format!(
                    "The offset {target} for partition {}-{index} is not valid",
                    topic.name
                ),
            ));
        }
        if target > hw {
            return Err(ApiError::new(
                ResponseError::OffsetOutOfRange,
                format!(
                    "Cannot increment the log start offset to {target} of partition {}-{index} since it is larger than the high watermark {hw}",
                    topic.name
                ),
            ));
        }
        match log.advance_log_start(target) {
            Ok(moved) => {
                if moved {
                    tracing::info!(topic = %topic.name, partition = index, log_start_offset = target,
                        "deleted records below the new log start offset");
                }
            }
            Err(e) => {
                self.registry.note_write_error(&e);
                return Err(e.into());
            }
        }
        part.update_gauges(&log);
        Ok(log.log_start_offset())
    }
}

/// Total and usable bytes of the file system holding `dir`.
fn disk_space(dir: &Path) -> std::io::Result<(i64, i64)> {
    let s = rustix::fs::statvfs(dir)?;
    let frsize = s.f_frsize;
    let total = s.f_blocks.saturating_mul(frsize);
    let usable = s.f_bavail.saturating_mul(frsize);
    Ok((
        i64::try_from(total).unwrap_or(i64::MAX),
        i64::try_from(usable).unwrap_or(i64::MAX),
    ))
}
