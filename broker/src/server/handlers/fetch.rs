//! Fetch: returns stored batches as they are on disk, long-polling until `min_bytes` are
//! available or `max_wait_ms` passes. Fetch sessions are declined (session id 0), so every
//! request is a full one.
//!
//! The partition lock is held only to find which ranges of which segment files to send; the
//! response carries those ranges, and the connection sends them from the page cache
//! (`protocol::fetch_wire`, `protocol::reply`).

use std::time::{Duration, Instant};

use kafka_protocol::messages::fetch_request::FetchTopic;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use kafka_protocol::ResponseError;

use super::{first_error, Broker};
use crate::log::FileSlice;
use crate::protocol::errors::ApiError;

/// Longest wait honoured, whatever the client asks.
const MAX_WAIT: Duration = Duration::from_secs(30);

impl Broker {
    pub(super) async fn fetch(&self, request: FetchRequest, version: i16) -> FetchOutcome {
        if version >= 7 && request.session_epoch > 0 {
            // An incremental fetch in a session we never handed out.
            let code = ResponseError::FetchSessionIdNotFound.code();
            return FetchOutcome {
                response: FetchResponse::default().with_error_code(code),
                files: Vec::new(),
                code,
            };
        }
        let wait =
            Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0)).min(MAX_WAIT);
        let deadline = Instant::now() + wait;
        let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
        let max_bytes = if version >= 3 {
            usize::try_from(request.max_bytes).unwrap_or(0)
        } else {
            usize::MAX
        };
        let read_committed = request.isolation_level == 1;
        loop {
            // Register interest before reading, so an append between the read and the wait
            // is not missed.
            let notified = self.registry.appended.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (responses, files, bytes, errors) =
                self.read_all(&request.topics, max_bytes, read_committed, version);
            if bytes >= min_bytes || errors || Instant::now() >= deadline {
                self.metrics.fetch_bytes.inc_by(bytes as u64);
                let code = first_error(
                    responses
                        .iter()
                        .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
                );
                return FetchOutcome {
                    response: FetchResponse::default().with_responses(responses),
                    files,
                    code,
                };
            }
            let _ = tokio::time::timeout_at(deadline.into(), notified).await;
        }
    }

    fn read_all(
        &self,
        topics: &[FetchTopic],
        max_bytes: usize,
        read_committed: bool,
        version: i16,
    ) -> ReadAll {
        let mut total = 0usize;
        let mut errors = false;
        let mut out = Vec::with_capacity(topics.len());
        let mut files = Vec::with_capacity(topics.len());
        for ft in topics {
            let topic = self.registry.get(ft.topic.as_str());
            let mut partitions = Vec::with_capacity(ft.partitions.len());
            let mut partition_files = Vec::with_capacity(ft.partitions.len());
            for fp in &ft.partitions {
                let mut pd = PartitionData::default().with_partition_index(fp.partition);
                if version >= 4 {
                    pd.aborted_transactions = read_committed.then(Vec::new);
                }
                let result = topic
                    .as_ref()
                    .and_then(|t| t.partition(fp.partition))
                    .ok_or_else(|| ApiError::new(ResponseError::UnknownTopicOrPartition, ""))
                    .and_then(|p| {
                        let hw = {
                            let state = p.replica.lock();
                            state.check_leader(fp.current_leader_epoch)?;
                            state.high_watermark
                        };
                        let limit = usize::try_from(fp.partition_max_bytes)
                            .unwrap_or(0)
                            .min(max_bytes - total.min(max_bytes));
                        // Consumers never read above the high watermark.
                        let log = p.log.lock();
                        let data = if limit == 0 && total > 0 {
                            Vec::new()
                        } else {
                            log.read_slices(fp.fetch_offset, limit, hw)?
                        };
                        Ok((data, hw, log.log_start_offset()))
                    });
                let mut slices = Vec::new();
                match result {
                    Ok((data, hw, log_start)) => {
                        let len = data.iter().map(|s| s.len() as usize).sum::<usize>();
                        // Only the first non-empty partition may exceed the limits (KIP-74).
                        if !(total > 0 && total + len > max_bytes) {
                            total += len;
                            slices = data;
                        }
                        pd.high_watermark = hw;
                        pd.last_stable_offset = hw;
                        if version >= 5 {
                            pd.log_start_offset = log_start;
                        }
                        // Empty, not null: the ranges in `slices` follow these bytes.
                        pd.records = Some(bytes::Bytes::new());
                    }
                    Err(e) => {
                        errors = true;
                        pd.error_code = e.code();
                        pd.high_watermark = -1;
                        pd.last_stable_offset = -1;
                        pd.records = Some(bytes::Bytes::new());
                    }
                }
                partitions.push(pd);
                partition_files.push(slices);
            }
            files.push(partition_files);
            out.push(
                FetchableTopicResponse::default()
                    .with_topic(ft.topic.clone())
                    .with_partitions(partitions),
            );
        }
        (out, files, total, errors)
    }
}

/// Topics of a Fetch response, the file ranges of each partition's records, bytes read, and
/// whether any partition failed.
type ReadAll = (
    Vec<FetchableTopicResponse>,
    Vec<Vec<Vec<FileSlice>>>,
    usize,
    bool,
);

/// A Fetch response whose records are `files` (see `protocol::fetch_wire::encode`).
pub(super) struct FetchOutcome {
    pub(super) response: FetchResponse,
    pub(super) files: Vec<Vec<Vec<FileSlice>>>,
    pub(super) code: i16,
}
