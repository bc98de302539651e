//! Metadata: brokers, topics and partitions, with auto-creation of unknown topics when enabled.

use std::collections::BTreeMap;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::{first_error, Broker, LEADER_EPOCH};
use crate::protocol::errors::ApiError;
use crate::topics::{validate_name, Topic};

impl Broker {
    pub(super) fn metadata(
        &self,
        request: MetadataRequest,
        version: i16,
    ) -> (MetadataResponse, i16) {
        // v0: an empty list means every topic; v1+: null means every topic.
        let wanted = match request.topics {
            None => None,
            Some(ref t) if t.is_empty() && version == 0 => None,
            Some(t) => Some(t),
        };
        // Before v4 there is no flag and Kafka auto-creates.
        let may_create = (version < 4 || request.allow_auto_topic_creation)
            && self.registry.broker().auto_create_topics_enable;
        let topics = match wanted {
            None => self
                .registry
                .all()
                .iter()
                .map(|t| self.topic_metadata(t, version))
                .collect(),
            Some(list) => list
                .into_iter()
                .map(|t| self.requested_topic(t.name.map(|n| n.0), t.topic_id, may_create, version))
                .collect::<Vec<_>>(),
        };
        let code = first_error(topics.iter().map(|t: &MetadataResponseTopic| t.error_code));
        let broker = MetadataResponseBroker::default()
            .with_node_id(BrokerId(self.node_id))
            .with_host(self.host.clone())
            .with_port(self.port);
        let mut response = MetadataResponse::default()
            .with_brokers(vec![broker])
            .with_topics(topics);
        if version >= 1 {
            response.controller_id = BrokerId(self.node_id);
        }
        if version >= 2 {
            response.cluster_id = Some(StrBytes::from_string(
                self.registry.cluster_id().to_string(),
            ));
        }
        (response, code)
    }

    fn requested_topic(
        &self,
        name: Option<StrBytes>,
        id: Uuid,
        may_create: bool,
        version: i16,
    ) -> MetadataResponseTopic {
        let name = match name {
            Some(n) => n,
            None => {
                // v12+: by topic id.
                return match self.registry.get_by_id(id) {
                    Some(t) if !id.is_nil() => self.topic_metadata(&t, version),
                    _ => MetadataResponseTopic::default()
                        .with_error_code(ResponseError::UnknownTopicId.code())
                        .with_topic_id(id),
                };
            }
        };
        let error = |e: ApiError| {
            MetadataResponseTopic::default()
                .with_error_code(e.code())
                .with_name(Some(TopicName(name.clone())))
        };
        if let Some(t) = self.registry.get(name.as_str()) {
            return self.topic_metadata(&t, version);
        }
        if let Err(e) = validate_name(name.as_str()) {
            return error(e.into());
        }
        if !may_create {
            return error(ApiError::new(ResponseError::UnknownTopicOrPartition, ""));
        }
        let partitions = self.registry.broker().num_partitions;
        match self
            .registry
            .create(name.as_str(), partitions, BTreeMap::new())
        {
            Ok(t) => self.topic_metadata(&t, version),
            // Created concurrently by another request: describe it.
            Err(crate::topics::TopicError::AlreadyExists(_)) => {
                match self.registry.get(name.as_str()) {
                    Some(t) => self.topic_metadata(&t, version),
                    None => error(ApiError::new(ResponseError::LeaderNotAvailable, "")),
                }
            }
            Err(e) => error(e.into()),
        }
    }

    fn topic_metadata(&self, topic: &Topic, version: i16) -> MetadataResponseTopic {
        let me = BrokerId(self.node_id);
        let partitions = (0..topic.partition_count())
            .map(|i| {
                let mut p = MetadataResponsePartition::default()
                    .with_partition_index(i)
                    .with_leader_id(me)
                    .with_replica_nodes(vec![me])
                    .with_isr_nodes(vec![me]);
                if version >= 7 {
                    p.leader_epoch = LEADER_EPOCH;
                }
                p
            })
            .collect();
        let mut t = MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_string(
                topic.name.to_string(),
            ))))
            .with_partitions(partitions);
        if version >= 10 {
            t.topic_id = topic.id;
        }
        if version >= 1 {
            t.is_internal = topic.is_internal();
        }
        t
    }
}
