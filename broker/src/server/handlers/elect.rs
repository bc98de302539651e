//! ElectLeaders (PREFERRED and UNCLEAN), with the outcomes of Kafka's controller: the rules
//! live in `controller::election_candidate`; a cluster member proposes each election that is
//! due to the controller quorum, all at once. A single broker leads every partition it has, so
//! its answer is ELECTION_NOT_NEEDED (or UNKNOWN_TOPIC_OR_PARTITION).

use std::sync::Arc;

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{first_error, Broker};
use crate::controller::{election_candidate, MetadataCommand, MetadataImage, Refusal};
use crate::protocol::errors::ApiError;
use crate::quorum::ControllerError;
use crate::replication::ReplicaManager;

const PREFERRED: i8 = 0;
const UNCLEAN: i8 = 1;

/// Where one partition's answer stands.
enum Slot {
    Done(Result<(), ApiError>),
    /// Waiting for the proposal of this election.
    Proposed,
}

impl Broker {
    pub(super) async fn elect_leaders(
        &self,
        request: ElectLeadersRequest,
        version: i16,
    ) -> (ElectLeadersResponse, i16) {
        let unclean = match request.election_type {
            PREFERRED => false,
            UNCLEAN => true,
            other => {
                let e = ApiError::new(
                    ResponseError::InvalidRequest,
                    format!("Unknown election type {other}"),
                );
                return invalid_request(request, e, version);
            }
        };
        let image = self.cluster.as_ref().map(|c| c.current_image());
        // Kafka: a null list means every partition, and then partitions that already have
        // the leader the election would give them are left out of the answer.
        let (asked, all) = match request.topic_partitions {
            Some(topics) => (
                topics
                    .into_iter()
                    .map(|t| (t.topic.0, t.partitions))
                    .collect::<Vec<_>>(),
                false,
            ),
            None => (self.every_partition(image.as_deref()), true),
        };
        let mut tasks = tokio::task::JoinSet::new();
        let mut slots: Vec<(StrBytes, Vec<(i32, Slot)>)> = Vec::with_capacity(asked.len());
        for (t, (topic, partitions)) in asked.into_iter().enumerate() {
            let mut row = Vec::with_capacity(partitions.len());
            for (i, partition) in partitions.into_iter().enumerate() {
                let slot = match self.election(image.as_deref(), topic.as_str(), partition, unclean)
                {
                    Ok((cluster, command)) => {
                        tasks.spawn(async move {
                            (t, i, propose_election(&cluster, command, unclean).await)
                        });
                        Slot::Proposed
                    }
                    Err(e) => Slot::Done(Err(e)),
                };
                row.push((partition, slot));
            }
            slots.push((topic, row));
        }
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((t, i, outcome)) => {
                    if let Some(slot) = slots.get_mut(t).and_then(|(_, row)| row.get_mut(i)) {
                        slot.1 = Slot::Done(outcome);
                    }
                }
                Err(e) => tracing::error!(error = %e, "an election proposal task failed"),
            }
        }
        let results: Vec<ReplicaElectionResult> = slots
            .into_iter()
            .map(|(topic, row)| {
                let partition_result = row
                    .into_iter()
                    .filter_map(|(partition, slot)| {
                        let outcome = match slot {
                            Slot::Done(o) => o,
                            Slot::Proposed => Err(ApiError::new(
                                ResponseError::UnknownServerError,
                                "the election proposal did not finish",
                            )),
                        };
                        let r = PartitionResult::default().with_partition_id(partition);
                        match outcome {
                            Ok(()) => Some(r),
                            Err(e) if all && e.code == ResponseError::ElectionNotNeeded => None,
                            Err(e) => Some(
                                r.with_error_code(e.code())
                                    .with_error_message(Some(StrBytes::from_string(e.message))),
                            ),
                        }
                    })
                    .collect();
                ReplicaElectionResult::default()
                    .with_topic(TopicName(topic))
                    .with_partition_result(partition_result)
            })
            .collect();
        let code = first_error(
            results
                .iter()
                .flat_map(|t| t.partition_result.iter().map(|p| p.error_code)),
        );
        (
            ElectLeadersResponse::default().with_replica_election_results(results),
            code,
        )
    }

    /// Every partition this broker knows of (the metadata's in a cluster, its own otherwise).
    fn every_partition(&self, image: Option<&MetadataImage>) -> Vec<(StrBytes, Vec<i32>)> {
        match image {
            Some(image) => image
                .topics
                .iter()
                .map(|(name, t)| {
                    let n = i32::try_from(t.partitions.len()).unwrap_or(i32::MAX);
                    (StrBytes::from_string(name.clone()), (0..n).collect())
                })
                .collect(),
            None => self
                .registry
                .all()
                .iter()
                .map(|t| {
                    (
                        StrBytes::from_string(t.name.to_string()),
                        (0..t.partition_count()).collect(),
                    )
                })
                .collect(),
        }
    }

    /// The command electing a leader for one partition, or why there is no election.
    fn election(
        &self,
        image: Option<&MetadataImage>,
        topic: &str,
        partition: i32,
        unclean: bool,
    ) -> Result<(Arc<ReplicaManager>, MetadataCommand), ApiError> {
        let (Some(cluster), Some(image)) = (&self.cluster, image) else {
            let known = self
                .registry
                .get(topic)
                .and_then(|t| t.partition(partition))
                .is_some();
            return Err(if known {
                Refusal::ElectionNotNeeded {
                    topic: topic.to_string(),
                    partition,
                }
                .into()
            } else {
                unknown(topic, partition)
            });
        };
        election_candidate(image, topic, partition, unclean).map_err(|e| match e {
            Refusal::UnknownPartition { .. } => unknown(topic, partition),
            other => ApiError::from(other),
        })?;
        let (topic, cluster) = (topic.to_string(), cluster.clone());
        let command = if unclean {
            MetadataCommand::ElectUncleanLeader { topic, partition }
        } else {
            MetadataCommand::ElectPreferredLeader { topic, partition }
        };
        Ok((cluster, command))
    }
}

fn unknown(topic: &str, partition: i32) -> ApiError {
    ApiError::new(
        ResponseError::UnknownTopicOrPartition,
        format!("No such partition as {topic}-{partition}"),
    )
}

/// Proposes one election; a preferred replica that left the ISR meanwhile is
/// PREFERRED_LEADER_NOT_AVAILABLE, as the pre-check would have said.
async fn propose_election(
    cluster: &ReplicaManager,
    command: MetadataCommand,
    unclean: bool,
) -> Result<(), ApiError> {
    match cluster.propose(command).await {
        Ok(_) => Ok(()),
        Err(ControllerError::Refused(Refusal::IneligibleReplica { reason, .. })) if !unclean => {
            Err(ApiError::new(
                ResponseError::PreferredLeaderNotAvailable,
                reason,
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// An unknown election type: Kafka refuses the whole request (INVALID_REQUEST), and every
/// partition asked carries the error too, since ElectLeaders v0 has no top-level code.
fn invalid_request(
    request: ElectLeadersRequest,
    e: ApiError,
    version: i16,
) -> (ElectLeadersResponse, i16) {
    let results = request
        .topic_partitions
        .unwrap_or_default()
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    PartitionResult::default()
                        .with_partition_id(*p)
                        .with_error_code(e.code())
                        .with_error_message(Some(StrBytes::from_string(e.message.clone())))
                })
                .collect();
            ReplicaElectionResult::default()
                .with_topic(t.topic)
                .with_partition_result(partitions)
        })
        .collect();
    let mut response = ElectLeadersResponse::default().with_replica_election_results(results);
    if version >= 1 {
        response.error_code = e.code();
    }
    (response, e.code())
}
