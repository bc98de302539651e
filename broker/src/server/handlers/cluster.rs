//! Topic administration of the handlers, on either backend: a single broker changes its own
//! topics; a cluster member checks the request against the metadata image, places replicas and
//! proposes the change to the controller quorum, then waits until it applied the result
//! locally (so the same client sees it in its next Metadata request).

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::Broker;
use crate::controller::{
    assign_replicas, validate_assignment, BrokerInfo, ExistingLoad, MetadataCommand, RackMode,
};
use crate::protocol::errors::ApiError;
use crate::topics::{config, validate_name, TopicError};

impl Broker {
    /// Creates (or with `validate_only`, checks) a topic; its id when created.
    pub(super) async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        assignment: Option<Vec<Vec<i32>>>,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Option<Uuid>, ApiError> {
        let Some(cluster) = &self.cluster else {
            if validate_only {
                self.registry.check_create(name, partitions, &configs)?;
                return Ok(None);
            }
            let topic = self.registry.create(name, partitions, configs)?;
            return Ok(Some(topic.id));
        };
        validate_name(name)?;
        let image = cluster.current_image();
        if image.topics.contains_key(name) {
            return Err(TopicError::AlreadyExists(name.to_string()).into());
        }
        let key = name.replace('.', "_");
        if let Some(other) = image.topics.keys().find(|t| t.replace('.', "_") == key) {
            return Err(TopicError::InvalidName(format!(
                "Topic '{name}' collides with existing topic: {other}"
            ))
            .into());
        }
        config::validate_all(&configs).map_err(TopicError::from)?;
        let brokers = BrokerInfo::from_image(&image);
        let assignment = match assignment {
            Some(a) => {
                validate_assignment(&brokers, &a, None)?;
                a
            }
            None => assign_replicas(
                &brokers,
                &ExistingLoad::from_image(&image),
                partitions,
                replication_factor,
                0,
                RackMode::default(),
            )?,
        };
        if validate_only {
            return Ok(None);
        }
        let id = Uuid::new_v4();
        cluster
            .propose(MetadataCommand::CreateTopic {
                name: name.to_string(),
                id,
                assignment,
                configs,
            })
            .await?;
        tracing::info!(topic = name, partitions, %id, "created topic through the controller");
        Ok(Some(id))
    }

    /// Deletes a topic.
    pub(super) async fn delete_topic(&self, name: &str) -> Result<(), ApiError> {
        let Some(cluster) = &self.cluster else {
            self.registry.delete(name)?;
            return Ok(());
        };
        cluster
            .propose(MetadataCommand::DeleteTopic {
                name: name.to_string(),
            })
            .await?;
        Ok(())
    }

    /// Grows a topic to `count` partitions (already checked against the current count).
    pub(super) async fn add_partitions(
        &self,
        name: &str,
        count: i32,
        assignment: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        let Some(cluster) = &self.cluster else {
            if let Some(a) = &assignment {
                if let Some(bad) = a.iter().find(|r| r.as_slice() != [self.node_id]) {
                    return Err(ApiError::new(
                        ResponseError::InvalidReplicaAssignment,
                        format!(
                            "Assignment {bad:?} names brokers other than {}",
                            self.node_id
                        ),
                    ));
                }
            }
            if !validate_only {
                self.registry.add_partitions(name, count)?;
            }
            return Ok(());
        };
        let image = cluster.current_image();
        let topic = image
            .topics
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        let current = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
        let added = count - current;
        let brokers = BrokerInfo::from_image(&image);
        let assignment = match assignment {
            Some(a) => {
                validate_assignment(&brokers, &a, Some(added))?;
                a
            }
            None => {
                let rf = topic.partitions.first().map_or(1, |p| p.replicas.len());
                assign_replicas(
                    &brokers,
                    &ExistingLoad::from_image(&image),
                    added,
                    i16::try_from(rf).unwrap_or(i16::MAX),
                    current,
                    RackMode::default(),
                )?
            }
        };
        if validate_only {
            return Ok(());
        }
        cluster
            .propose(MetadataCommand::CreatePartitions {
                name: name.to_string(),
                assignment,
            })
            .await?;
        Ok(())
    }

    /// Replaces a topic's config overrides (already validated).
    pub(super) async fn set_topic_configs(
        &self,
        name: &str,
        overrides: BTreeMap<String, String>,
    ) -> Result<(), ApiError> {
        let Some(cluster) = &self.cluster else {
            self.registry.set_configs(name, overrides)?;
            return Ok(());
        };
        let image = cluster.current_image();
        let current = image
            .topics
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        let remove = current
            .configs
            .keys()
            .filter(|k| !overrides.contains_key(*k))
            .cloned()
            .collect();
        cluster
            .propose(MetadataCommand::AlterConfigs {
                topic: name.to_string(),
                set: overrides,
                remove,
            })
            .await?;
        Ok(())
    }

    /// Replaces the cluster-wide dynamic broker defaults (already checked): a single broker
    /// applies and persists them; a cluster member proposes them to the controller quorum, and
    /// every broker applies them from the metadata image.
    pub(super) async fn set_broker_defaults(
        &self,
        defaults: BTreeMap<String, String>,
    ) -> Result<(), ApiError> {
        let Some(cluster) = &self.cluster else {
            self.registry.set_dynamic_defaults(defaults)?;
            return Ok(());
        };
        let image = cluster.current_image();
        let remove = image
            .broker_defaults
            .keys()
            .filter(|k| !defaults.contains_key(*k))
            .cloned()
            .collect();
        cluster
            .propose(MetadataCommand::AlterBrokerDefaults {
                set: defaults,
                remove,
            })
            .await?;
        Ok(())
    }
}
