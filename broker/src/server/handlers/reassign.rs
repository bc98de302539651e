//! AlterPartitionReassignments and ListPartitionReassignments (Kafka's KIP-455): a cluster
//! member turns each partition's target replicas (or `null`, to cancel) into a proposal to the
//! controller quorum and answers per partition with the code the metadata rules give; the
//! listing comes from the metadata image. A single broker has nothing to move.

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{first_error, Broker};
use crate::controller::{MetadataCommand, MetadataImage, PartitionRecord};
use crate::protocol::errors::ApiError;
use crate::topics::config;

impl Broker {
    pub(super) async fn alter_partition_reassignments(
        &self,
        request: AlterPartitionReassignmentsRequest,
        version: i16,
    ) -> (AlterPartitionReassignmentsResponse, i16) {
        // v0 has no such field: changing the replication factor is allowed.
        let allow_rf_change = version < 1 || request.allow_replication_factor_change;
        let mut topics = Vec::with_capacity(request.topics.len());
        for t in request.topics {
            let mut partitions = Vec::with_capacity(t.partitions.len());
            for p in t.partitions {
                let target: Option<Vec<i32>> =
                    p.replicas.map(|r| r.into_iter().map(|b| b.0).collect());
                let result = self
                    .reassign(t.name.as_str(), p.partition_index, target, allow_rf_change)
                    .await;
                let mut answer = ReassignablePartitionResponse::default()
                    .with_partition_index(p.partition_index);
                if let Err(e) = result {
                    tracing::info!(topic = %t.name.as_str(), partition = p.partition_index,
                        code = e.code(), error = %e.message, "reassignment refused");
                    answer.error_code = e.code();
                    answer.error_message = Some(StrBytes::from_string(e.message));
                }
                partitions.push(answer);
            }
            topics.push(
                ReassignableTopicResponse::default()
                    .with_name(t.name)
                    .with_partitions(partitions),
            );
        }
        let code = first_error(
            topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        );
        let response = AlterPartitionReassignmentsResponse::default()
            .with_allow_replication_factor_change(allow_rf_change)
            .with_responses(topics);
        (response, code)
    }

    /// One partition's reassignment: checked here against the image, decided by the
    /// controller quorum.
    async fn reassign(
        &self,
        topic: &str,
        partition: i32,
        target: Option<Vec<i32>>,
        allow_rf_change: bool,
    ) -> Result<(), ApiError> {
        let Some(cluster) = &self.cluster else {
            return self.reassign_single(topic, partition, target);
        };
        let image = cluster.current_image();
        let record = image.partition(topic, partition).ok_or_else(|| {
            ApiError::new(
                ResponseError::UnknownTopicOrPartition,
                format!("partition {partition} of topic {topic:?} does not exist"),
            )
        })?;
        if let Some(t) = &target {
            let current = original(record).len();
            if !allow_rf_change && t.len() != current {
                return Err(ApiError::new(
                    ResponseError::InvalidReplicationFactor,
                    format!(
                        "the target has {} replicas, the partition {current}, and the request \
                         does not allow changing the replication factor",
                        t.len()
                    ),
                ));
            }
        }
        let min_isr = self
            .registry
            .get(topic)
            .map(|local| {
                config::min_insync_replicas(&local.configs.read(), &self.registry.broker())
            })
            .unwrap_or(1);
        let what = match &target {
            Some(t) => format!("to {t:?}"),
            None => "cancelled".to_string(),
        };
        cluster
            .propose(MetadataCommand::AlterReassignment {
                topic: topic.to_string(),
                partition,
                target,
                min_isr,
            })
            .await?;
        tracing::info!(topic, partition, "reassignment {what}");
        Ok(())
    }

    /// A single broker holds every partition alone: only that is a valid target.
    fn reassign_single(
        &self,
        topic: &str,
        partition: i32,
        target: Option<Vec<i32>>,
    ) -> Result<(), ApiError> {
        let exists = self
            .registry
            .get(topic)
            .is_some_and(|t| t.partition(partition).is_some());
        if !exists {
            return Err(ApiError::new(
                ResponseError::UnknownTopicOrPartition,
                format!("partition {partition} of topic {topic:?} does not exist"),
            ));
        }
        match target {
            None => Err(ApiError::new(
                ResponseError::NoReassignmentInProgress,
                format!("partition {partition} of topic {topic:?} has no reassignment in progress"),
            )),
            Some(t) if t == [self.node_id] => Ok(()),
            Some(t) => Err(ApiError::new(
                ResponseError::InvalidReplicaAssignment,
                format!(
                    "a single broker (node {}) cannot place replicas on {t:?}",
                    self.node_id
                ),
            )),
        }
    }

    pub(super) fn list_partition_reassignments(
        &self,
        request: ListPartitionReassignmentsRequest,
    ) -> (ListPartitionReassignmentsResponse, i16) {
        let Some(cluster) = &self.cluster else {
            return (ListPartitionReassignmentsResponse::default(), 0);
        };
        let image = cluster.current_image();
        let wanted: Vec<(String, Option<Vec<i32>>)> = match request.topics {
            None => image.topics.keys().map(|t| (t.clone(), None)).collect(),
            Some(ts) => ts
                .into_iter()
                .map(|t| (t.name.to_string(), Some(t.partition_indexes)))
                .collect(),
        };
        let topics = wanted
            .into_iter()
            .filter_map(|(name, indexes)| ongoing(&image, &name, indexes.as_deref()))
            .collect();
        (
            ListPartitionReassignmentsResponse::default().with_topics(topics),
            0,
        )
    }
}

/// The replicas before the move in progress, or the replicas when there is none.
fn original(record: &PartitionRecord) -> &[i32] {
    match &record.reassignment {
        Some(r) => &r.original,
        None => &record.replicas,
    }
}

/// The moving partitions of `topic` (all, or those of `indexes`); `None` when there are none
/// or the topic does not exist (Kafka leaves those out).
fn ongoing(
    image: &MetadataImage,
    topic: &str,
    indexes: Option<&[i32]>,
) -> Option<OngoingTopicReassignment> {
    let t = image.topics.get(topic)?;
    let ids = |v: &[i32]| v.iter().map(|b| BrokerId(*b)).collect::<Vec<_>>();
    let partitions: Vec<OngoingPartitionReassignment> = t
        .partitions
        .iter()
        .enumerate()
        .filter(|(i, _)| indexes.is_none_or(|want| want.contains(&(*i as i32))))
        .filter_map(|(i, p)| {
            let r = p.reassignment.as_ref()?;
            Some(
                OngoingPartitionReassignment::default()
                    .with_partition_index(i as i32)
                    .with_replicas(ids(&p.replicas))
                    .with_adding_replicas(ids(&r.adding()))
                    .with_removing_replicas(ids(&r.removing())),
            )
        })
        .collect();
    (!partitions.is_empty()).then(|| {
        OngoingTopicReassignment::default()
            .with_name(kafka_protocol::messages::TopicName(StrBytes::from_string(
                topic.to_string(),
            )))
            .with_partitions(partitions)
    })
}
