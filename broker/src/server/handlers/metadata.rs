//! Metadata: brokers, topics and partitions, with auto-creation of unknown topics when enabled.
//! A single broker describes its own topics; a cluster member describes the metadata image:
//! live brokers, and each partition's leader, epoch, replicas, ISR and offline replicas.

use std::collections::BTreeMap;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::{endpoint_on, first_error, Broker};
use crate::controller::{MetadataImage, TopicRecord, NO_LEADER};
use crate::protocol::errors::ApiError;
use crate::security::Session;
use crate::topics::{validate_name, Topic};

impl Broker {
    pub(super) async fn metadata(
        &self,
        request: MetadataRequest,
        version: i16,
        session: &Session,
    ) -> (MetadataResponse, i16) {
        let listener = session.info.listener.as_str();
        // v0: an empty list means every topic; v1+: null means every topic.
        let wanted = match request.topics {
            None => None,
            Some(ref t) if t.is_empty() && version == 0 => None,
            Some(t) => Some(t),
        };
        // Before v4 there is no flag and Kafka auto-creates.
        let may_create = (version < 4 || request.allow_auto_topic_creation)
            && self.registry.static_broker().auto_create_topics_enable;
        if self.cluster.is_some() {
            return self
                .cluster_metadata(wanted, may_create, version, listener)
                .await;
        }
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
        let (host, port) = self.own_endpoint(listener);
        let mut broker = MetadataResponseBroker::default()
            .with_node_id(BrokerId(self.node_id))
            .with_host(host)
            .with_port(port);
        if version >= 1 {
            broker.rack = self.rack.clone();
        }
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
        let partitions = self.registry.static_broker().num_partitions;
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
                    p.leader_epoch = 0;
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

impl Broker {
    /// Metadata from the cluster's image. Unknown topics are created through the controller
    /// when allowed; the answer then describes them as created.
    async fn cluster_metadata(
        &self,
        wanted: Option<Vec<kafka_protocol::messages::metadata_request::MetadataRequestTopic>>,
        may_create: bool,
        version: i16,
        listener: &str,
    ) -> (MetadataResponse, i16) {
        let Some(cluster) = &self.cluster else {
            return (MetadataResponse::default(), 0);
        };
        let mut image = cluster.current_image();
        let topics = match wanted {
            None => image
                .topics
                .iter()
                .map(|(name, t)| describe(&image, name, t, version))
                .collect(),
            Some(list) => {
                let mut out = Vec::with_capacity(list.len());
                for t in list {
                    let name = match t.name {
                        Some(n) => n.0,
                        None => {
                            let found = image
                                .topics
                                .iter()
                                .find(|(_, r)| r.id == t.topic_id && !t.topic_id.is_nil());
                            out.push(match found {
                                Some((name, r)) => describe(&image, name, r, version),
                                None => MetadataResponseTopic::default()
                                    .with_error_code(ResponseError::UnknownTopicId.code())
                                    .with_topic_id(t.topic_id),
                            });
                            continue;
                        }
                    };
                    let error = |e: ApiError| {
                        MetadataResponseTopic::default()
                            .with_error_code(e.code())
                            .with_name(Some(TopicName(name.clone())))
                    };
                    if !image.topics.contains_key(name.as_str()) {
                        if let Err(e) = validate_name(name.as_str()) {
                            out.push(error(e.into()));
                            continue;
                        }
                        if !may_create {
                            out.push(error(ApiError::new(
                                ResponseError::UnknownTopicOrPartition,
                                "",
                            )));
                            continue;
                        }
                        let b = self.registry.static_broker();
                        let created = self
                            .create_topic(
                                name.as_str(),
                                b.num_partitions,
                                b.default_replication_factor,
                                None,
                                BTreeMap::new(),
                                false,
                            )
                            .await;
                        match created {
                            Ok(_) => image = cluster.current_image(),
                            Err(e) if e.code == ResponseError::TopicAlreadyExists => {
                                image = cluster.current_image()
                            }
                            Err(e) => {
                                out.push(error(e));
                                continue;
                            }
                        }
                    }
                    out.push(match image.topics.get(name.as_str()) {
                        Some(r) => describe(&image, name.as_str(), r, version),
                        None => error(ApiError::new(ResponseError::LeaderNotAvailable, "")),
                    });
                }
                out
            }
        };
        let code = first_error(topics.iter().map(|t: &MetadataResponseTopic| t.error_code));
        let brokers = image
            .brokers
            .iter()
            .filter(|(_, b)| !b.fenced)
            .filter_map(|(id, b)| {
                let (host, port) = endpoint_on(b, listener)?;
                let mut m = MetadataResponseBroker::default()
                    .with_node_id(BrokerId(*id))
                    .with_host(StrBytes::from_string(host.to_string()))
                    .with_port(port);
                if version >= 1 {
                    m.rack = b.rack.clone().map(StrBytes::from_string);
                }
                Some(m)
            })
            .collect();
        let mut response = MetadataResponse::default()
            .with_brokers(brokers)
            .with_topics(topics);
        if version >= 1 {
            // Any broker takes admin requests (they are forwarded to the controllers).
            response.controller_id = BrokerId(self.node_id);
        }
        if version >= 2 {
            response.cluster_id = Some(StrBytes::from_string(
                self.registry.cluster_id().to_string(),
            ));
        }
        (response, code)
    }
}

/// One topic of the image, as Metadata describes it.
fn describe(
    image: &MetadataImage,
    name: &str,
    topic: &TopicRecord,
    version: i16,
) -> MetadataResponseTopic {
    let ids = |v: &[i32]| v.iter().map(|b| BrokerId(*b)).collect::<Vec<_>>();
    let partitions = topic
        .partitions
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut m = MetadataResponsePartition::default()
                .with_partition_index(i as i32)
                .with_leader_id(BrokerId(p.leader))
                .with_replica_nodes(ids(&p.replicas))
                .with_isr_nodes(ids(&p.isr));
            if p.leader == NO_LEADER {
                m.error_code = ResponseError::LeaderNotAvailable.code();
            }
            if version >= 7 {
                m.leader_epoch = p.leader_epoch;
            }
            if version >= 5 {
                let offline: Vec<i32> = p
                    .replicas
                    .iter()
                    .copied()
                    .filter(|b| !image.is_live(*b))
                    .collect();
                m.offline_replicas = ids(&offline);
            }
            m
        })
        .collect();
    let mut t = MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(name.to_string()))))
        .with_partitions(partitions);
    if version >= 10 {
        t.topic_id = topic.id;
    }
    if version >= 1 {
        t.is_internal = name == crate::group::offsets::OFFSETS_TOPIC;
    }
    t
}
