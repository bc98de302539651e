//! CreateTopics, DeleteTopics and CreatePartitions.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::configs::topic_config_entries;
use super::{first_error, Broker};
use crate::protocol::errors::ApiError;

/// What a CreateTopics entry asks for, once checked.
struct TopicPlan {
    partitions: i32,
    replication_factor: i16,
    /// An explicit assignment, partition by partition.
    assignment: Option<Vec<Vec<i32>>>,
    configs: BTreeMap<String, String>,
}

impl Broker {
    pub(super) async fn create_topics(
        &self,
        request: CreateTopicsRequest,
        version: i16,
    ) -> (CreateTopicsResponse, i16) {
        let mut counts: HashMap<StrBytes, usize> = HashMap::new();
        for t in &request.topics {
            *counts.entry(t.name.0.clone()).or_default() += 1;
        }
        let mut results: Vec<CreatableTopicResult> = Vec::with_capacity(request.topics.len());
        for t in &request.topics {
            let mut r = CreatableTopicResult::default().with_name(t.name.clone());
            let outcome = if counts.get(&t.name.0).copied().unwrap_or(0) > 1 {
                Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    format!(
                        "Create topics request from client contains multiple entries for topic {}",
                        t.name.as_str()
                    ),
                ))
            } else {
                match self.plan_topic(t) {
                    Ok(plan) => self
                        .create_topic(
                            t.name.as_str(),
                            plan.partitions,
                            plan.replication_factor,
                            plan.assignment.clone(),
                            plan.configs.clone(),
                            request.validate_only,
                        )
                        .await
                        .map(|id| (plan, id)),
                    Err(e) => Err(e),
                }
            };
            match outcome {
                Ok((plan, id)) => {
                    if version >= 5 {
                        r.num_partitions = plan.partitions;
                        r.replication_factor = plan.replication_factor;
                        let dynamic = self.registry.dynamic_defaults();
                        let configs = topic_config_entries(
                            &plan.configs,
                            self.registry.static_broker(),
                            &dynamic,
                            None,
                        )
                        .into_iter()
                        .map(|e| {
                            CreatableTopicConfigs::default()
                                .with_name(StrBytes::from_static_str(e.key.name))
                                .with_config_source(e.source())
                                .with_value(Some(StrBytes::from_string(e.value)))
                        })
                        .collect();
                        r.configs = Some(configs);
                    }
                    if version >= 7 {
                        r.topic_id = id.unwrap_or_default();
                    }
                }
                Err(e) => {
                    r.error_code = e.code();
                    r.error_message = Some(StrBytes::from_string(e.message));
                    if version >= 5 {
                        r.num_partitions = -1;
                        r.replication_factor = -1;
                    }
                }
            }
            results.push(r);
        }
        let code = first_error(results.iter().map(|r| r.error_code));
        (CreateTopicsResponse::default().with_topics(results), code)
    }

    fn plan_topic(&self, t: &CreatableTopic) -> Result<TopicPlan, ApiError> {
        let broker = self.registry.static_broker();
        let explicit = !t.assignments.is_empty();
        if explicit && (t.num_partitions != -1 || t.replication_factor != -1) {
            return Err(ApiError::new(
                ResponseError::InvalidRequest,
                "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.",
            ));
        }
        let (partitions, replication_factor) = if explicit {
            let mut indexes: Vec<i32> = t.assignments.iter().map(|a| a.partition_index).collect();
            indexes.sort_unstable();
            if indexes.iter().enumerate().any(|(i, p)| *p != i as i32) {
                return Err(ApiError::new(
                    ResponseError::InvalidReplicaAssignment,
                    "Partitions should be numbered 0 to N-1 without gaps in the replica assignment",
                ));
            }
            let rf = t.assignments[0].broker_ids.len();
            for a in &t.assignments {
                if a.broker_ids.len() != rf || rf == 0 {
                    return Err(ApiError::new(
                        ResponseError::InvalidReplicaAssignment,
                        "All partitions should have the same number of replicas, and at least one",
                    ));
                }
                if self.cluster.is_some() {
                    continue; // checked against the registered brokers when placed
                }
                if let Some(b) = a.broker_ids.iter().find(|b| b.0 != self.node_id) {
                    return Err(ApiError::new(
                        ResponseError::InvalidReplicaAssignment,
                        format!(
                            "Unknown broker id {} in the assignment of partition {}",
                            b.0, a.partition_index
                        ),
                    ));
                }
                if a.broker_ids.len() > 1 {
                    return Err(ApiError::new(
                        ResponseError::InvalidReplicaAssignment,
                        format!(
                            "Duplicate brokers in the assignment of partition {}",
                            a.partition_index
                        ),
                    ));
                }
            }
            (t.assignments.len() as i32, rf as i16)
        } else {
            let partitions = if t.num_partitions == -1 {
                broker.num_partitions
            } else {
                t.num_partitions
            };
            let rf = if t.replication_factor == -1 {
                broker.default_replication_factor
            } else {
                t.replication_factor
            };
            (partitions, rf)
        };
        if partitions < 1 {
            return Err(ApiError::new(
                ResponseError::InvalidPartitions,
                "Number of partitions must be larger than 0.",
            ));
        }
        if replication_factor < 1 {
            return Err(ApiError::new(
                ResponseError::InvalidReplicationFactor,
                "Replication factor must be larger than 0, or -1 to use the default value.",
            ));
        }
        if replication_factor > 1 && self.cluster.is_none() {
            return Err(ApiError::new(
                ResponseError::InvalidReplicationFactor,
                format!("Unable to replicate the partition {replication_factor} time(s): The target replication factor of {replication_factor} cannot be reached because only 1 broker(s) are registered."),
            ));
        }
        let mut configs = BTreeMap::new();
        for c in &t.configs {
            let value = c.value.as_ref().ok_or_else(|| {
                ApiError::new(
                    ResponseError::InvalidConfig,
                    format!(
                        "Null value not supported for topic configs: {}",
                        c.name.as_str()
                    ),
                )
            })?;
            configs.insert(c.name.to_string(), value.to_string());
        }
        let assignment = explicit.then(|| {
            let mut sorted: Vec<_> = t.assignments.iter().collect();
            sorted.sort_by_key(|a| a.partition_index);
            sorted
                .iter()
                .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                .collect()
        });
        Ok(TopicPlan {
            partitions,
            replication_factor,
            assignment,
            configs,
        })
    }

    pub(super) async fn delete_topics(
        &self,
        request: DeleteTopicsRequest,
        version: i16,
    ) -> (DeleteTopicsResponse, i16) {
        // v6 names topics by name or id; before, by name.
        let targets: Vec<(Option<TopicName>, uuid::Uuid)> = if version >= 6 {
            request
                .topics
                .into_iter()
                .map(|t| (t.name, t.topic_id))
                .collect()
        } else {
            request
                .topic_names
                .into_iter()
                .map(|n| (Some(n), uuid::Uuid::nil()))
                .collect()
        };
        let mut responses: Vec<DeletableTopicResult> = Vec::with_capacity(targets.len());
        for (name, id) in targets {
            let mut r = DeletableTopicResult::default();
            let found = match &name {
                Some(n) => self
                    .registry
                    .get(n.as_str())
                    .ok_or(ResponseError::UnknownTopicOrPartition),
                None => self
                    .registry
                    .get_by_id(id)
                    .filter(|_| !id.is_nil())
                    .ok_or(ResponseError::UnknownTopicId),
            };
            r.name = name.clone();
            if version >= 6 {
                r.topic_id = id;
            }
            match found {
                Ok(topic) if topic.is_internal() => {
                    r.error_code = ResponseError::InvalidTopicException.code();
                    if version >= 5 {
                        r.error_message = Some(StrBytes::from_string(format!(
                            "Internal topic {} cannot be deleted",
                            topic.name
                        )));
                    }
                }
                Ok(topic) => {
                    if version >= 6 {
                        r.name = Some(TopicName(StrBytes::from_string(topic.name.to_string())));
                        r.topic_id = topic.id;
                    }
                    if let Err(e) = self.delete_topic(&topic.name).await {
                        r.error_code = e.code();
                        if version >= 5 {
                            r.error_message = Some(StrBytes::from_string(e.message));
                        }
                    }
                }
                Err(code) => r.error_code = code.code(),
            }
            responses.push(r);
        }
        let code = first_error(responses.iter().map(|r| r.error_code));
        (
            DeleteTopicsResponse::default().with_responses(responses),
            code,
        )
    }

    pub(super) async fn create_partitions(
        &self,
        request: CreatePartitionsRequest,
    ) -> (CreatePartitionsResponse, i16) {
        let mut results: Vec<CreatePartitionsTopicResult> =
            Vec::with_capacity(request.topics.len());
        for t in &request.topics {
            let name = t.name.as_str();
            let checked = (|| -> Result<Option<Vec<Vec<i32>>>, ApiError> {
                let topic = self.registry.check_partitions(name, t.count)?;
                if topic.is_internal() {
                    return Err(ApiError::new(
                        ResponseError::InvalidTopicException,
                        format!("Internal topic {name} cannot be changed"),
                    ));
                }
                if let Some(assignments) = t.assignments.as_ref().filter(|a| !a.is_empty()) {
                    let added = (t.count - topic.partition_count()) as usize;
                    if assignments.len() != added {
                        return Err(ApiError::new(
                                ResponseError::InvalidReplicaAssignment,
                                format!("Increasing the number of partitions by {added} but {} assignments provided.", assignments.len()),
                            ));
                    }
                    return Ok(Some(
                        assignments
                            .iter()
                            .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                            .collect(),
                    ));
                }
                Ok(None)
            })();
            let outcome = match checked {
                Ok(assignment) => {
                    self.add_partitions(name, t.count, assignment, request.validate_only)
                        .await
                }
                Err(e) => Err(e),
            };
            let mut r = CreatePartitionsTopicResult::default().with_name(t.name.clone());
            if let Err(e) = outcome {
                r.error_code = e.code();
                r.error_message = Some(StrBytes::from_string(e.message));
            }
            results.push(r);
        }
        let code = first_error(results.iter().map(|r| r.error_code));
        (
            CreatePartitionsResponse::default().with_results(results),
            code,
        )
    }
}
