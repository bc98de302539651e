//! A small Kafka admin client on the `kafka-protocol` crate: the requests the operator needs
//! (Metadata, CreateTopics, CreatePartitions, DescribeConfigs, IncrementalAlterConfigs,
//! DeleteTopics; groups and offsets in `groups`, leaders, quorum and reassignments in
//! `cluster`, SCRAM credentials and ACLs in `security`), with timeouts and typed errors.
//! Requests go to the bootstrap connection, or to a given broker (leader, coordinator) over
//! `nodes`. It owns no policy: callers decide; the [`Admin`] and [`SecurityAdmin`] traits are
//! the seams that let planners be tested with a fake.

mod admin;
mod cluster;
mod conn;
mod error;
mod groups;
mod nodes;
mod quorum;
mod security;
mod tls;

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    BrokerId, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest,
    DescribeConfigsRequest, IncrementalAlterConfigsRequest, MetadataRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::Mutex;

pub use admin::Admin;
pub use cluster::{
    ElectionResult, LogDirInfo, QuorumInfo, ReassignmentResult, Reassignments, ReplicaState,
    ELECTION_NOT_NEEDED,
};
pub use error::{code_name, AdminError, KafkaError};
pub use groups::{GroupDescription, GroupListing, PartitionOffsets};
pub use security::{
    acl, random_bytes, salted_password_sha512, AclBinding, ScramCredentialInfo, ScramUpsert,
    SecurityAdmin, CLUSTER_AUTHORIZATION_FAILED, RESOURCE_NOT_FOUND, SCRAM_ITERATIONS,
    SCRAM_SALT_LEN, SCRAM_SHA_512, SECURITY_DISABLED, UNSUPPORTED_SASL_MECHANISM,
};
pub use tls::{material_id, KafkaTls};

use crate::crd::{PartitionStatus, Replicas};
use crate::plan::topic::ObservedTopic;
use conn::Conn;

/// DescribeConfigs/IncrementalAlterConfigs resource type of a topic.
pub const RESOURCE_TOPIC: i8 = 2;
/// DescribeConfigs/IncrementalAlterConfigs resource type of a broker.
pub const RESOURCE_BROKER: i8 = 4;
/// DescribeConfigs source of a topic-level override.
pub const SOURCE_TOPIC: i8 = 1;
/// Kafka error code of an unknown topic.
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

/// A broker as Metadata reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// Node id.
    pub id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// Rack, when set.
    pub rack: Option<String>,
}

/// A topic as Metadata reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic id (UUID text), when not nil.
    pub topic_id: Option<String>,
    /// Internal topic (`__consumer_offsets`).
    pub internal: bool,
    /// Partitions by index.
    pub partitions: Vec<PartitionStatus>,
}

/// What Metadata answered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterMetadata {
    /// Cluster id.
    pub cluster_id: Option<String>,
    /// Active controller id (-1 when unknown).
    pub controller_id: i32,
    /// Live brokers by id.
    pub brokers: Vec<BrokerInfo>,
    /// Topics by name.
    pub topics: BTreeMap<String, TopicInfo>,
}

/// One DescribeConfigs entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Config name.
    pub name: String,
    /// Value (none for sensitive or unset).
    pub value: Option<String>,
    /// Kafka config source (1 = topic override, 5 = default, ...).
    pub source: i8,
    /// Read-only.
    pub read_only: bool,
}

/// How a topic is to be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// Topic name.
    pub name: String,
    /// Partitions (ignored when `assignment` is set).
    pub partitions: i32,
    /// Replication factor (ignored when `assignment` is set).
    pub replication_factor: i32,
    /// Explicit replicas per partition.
    pub assignment: Option<Vec<Replicas>>,
    /// Config overrides.
    pub config: BTreeMap<String, String>,
}

/// Admin client over one lazily (re)opened connection to any bootstrap address, and one to
/// each broker a request must reach (partition leaders, group coordinators).
pub struct AdminClient {
    bootstrap: Vec<String>,
    timeout: Duration,
    tls: Option<std::sync::Arc<KafkaTls>>,
    conn: Mutex<Option<Conn>>,
    nodes: Mutex<nodes::NodeConns>,
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn topic_name(v: &str) -> TopicName {
    TopicName(s(v))
}

fn ms(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

impl AdminClient {
    /// A client for `bootstrap` (`host:port`, comma-separated); `timeout` bounds connecting and
    /// each request.
    pub fn new(bootstrap: &str, timeout: Duration) -> AdminClient {
        AdminClient::with_tls(bootstrap, timeout, None)
    }

    /// A client whose connections (bootstrap and brokers) use `tls` when given.
    pub fn with_tls(
        bootstrap: &str,
        timeout: Duration,
        tls: Option<std::sync::Arc<KafkaTls>>,
    ) -> AdminClient {
        AdminClient {
            bootstrap: bootstrap
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect(),
            timeout,
            tls,
            conn: Mutex::new(None),
            nodes: Mutex::new(nodes::NodeConns::default()),
        }
    }

    /// The id of its TLS material (`None`: plain TCP).
    pub fn tls_id(&self) -> Option<&str> {
        self.tls.as_ref().map(|t| t.id())
    }

    /// The bootstrap addresses.
    pub fn bootstrap(&self) -> String {
        self.bootstrap.join(",")
    }

    /// Runs `f` on the connection, opening one first if needed; a failed connection is
    /// dropped so the next call opens a new one.
    async fn with_conn<T>(
        &self,
        f: impl AsyncFnOnce(&mut Conn) -> Result<T, AdminError>,
    ) -> Result<T, AdminError> {
        let mut guard = self.conn.lock().await;
        if guard.is_none() {
            let mut last = String::from("no bootstrap address");
            for addr in &self.bootstrap {
                match Conn::connect(addr, self.timeout, self.tls.as_deref()).await {
                    Ok(c) => {
                        *guard = Some(c);
                        break;
                    }
                    Err(e) => last = e,
                }
            }
            if guard.is_none() {
                return Err(AdminError::Connect {
                    addresses: self.bootstrap(),
                    reason: last,
                });
            }
        }
        let Some(conn) = guard.as_mut() else {
            return Err(AdminError::Connect {
                addresses: self.bootstrap(),
                reason: "connection lost".into(),
            });
        };
        let result = f(conn).await;
        if matches!(
            result,
            Err(AdminError::Io { .. } | AdminError::Timeout { .. } | AdminError::Protocol { .. })
        ) {
            *guard = None;
        }
        result
    }

    /// Metadata for `topics` (all topics when `None`); never creates topics.
    pub async fn metadata(&self, topics: Option<&[String]>) -> Result<ClusterMetadata, AdminError> {
        let request = MetadataRequest::default()
            .with_topics(topics.map(|t| {
                t.iter()
                    .map(|n| MetadataRequestTopic::default().with_name(Some(topic_name(n))))
                    .collect()
            }))
            .with_allow_auto_topic_creation(false);
        let (response, _) = self
            .with_conn(async |c| c.call("Metadata", 4, 12, &request).await)
            .await?;
        let mut out = ClusterMetadata {
            cluster_id: response.cluster_id.map(|c| c.to_string()),
            controller_id: response.controller_id.0,
            brokers: response
                .brokers
                .iter()
                .map(|b| BrokerInfo {
                    id: b.node_id.0,
                    host: b.host.to_string(),
                    port: b.port,
                    rack: b.rack.as_ref().map(|r| r.to_string()),
                })
                .collect(),
            topics: BTreeMap::new(),
        };
        {
            let mut nodes = self.nodes.lock().await;
            for b in &out.brokers {
                nodes.learn(b.id, format!("{}:{}", b.host, b.port));
            }
        }
        for t in response.topics {
            let name = t.name.map(|n| n.0.to_string()).unwrap_or_default();
            if t.error_code == UNKNOWN_TOPIC_OR_PARTITION {
                continue;
            }
            if let Some(e) = KafkaError::from_code("Metadata", Some(&name), t.error_code, None) {
                return Err(e.into());
            }
            let mut partitions: Vec<PartitionStatus> = t
                .partitions
                .iter()
                .map(|p| PartitionStatus {
                    partition: p.partition_index,
                    leader: p.leader_id.0,
                    replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                    isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            let topic_id = (!t.topic_id.is_nil()).then(|| t.topic_id.to_string());
            out.topics.insert(
                name,
                TopicInfo {
                    topic_id,
                    internal: t.is_internal,
                    partitions,
                },
            );
        }
        Ok(out)
    }

    /// Config entries of a resource (`RESOURCE_TOPIC` + topic name, `RESOURCE_BROKER` + id).
    pub async fn describe_configs(
        &self,
        resource_type: i8,
        name: &str,
    ) -> Result<Vec<ConfigEntry>, AdminError> {
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(s(name))
                .with_configuration_keys(None),
        ]);
        let (response, _) = self
            .with_conn(async |c| c.call("DescribeConfigs", 1, 4, &request).await)
            .await?;
        let Some(result) = response.results.into_iter().next() else {
            return Err(AdminError::Protocol {
                api: "DescribeConfigs",
                message: "no result for the resource".into(),
            });
        };
        if let Some(e) = KafkaError::from_code(
            "DescribeConfigs",
            Some(name),
            result.error_code,
            result.error_message.as_deref(),
        ) {
            return Err(e.into());
        }
        Ok(result
            .configs
            .into_iter()
            .map(|c| ConfigEntry {
                name: c.name.to_string(),
                value: c.value.map(|v| v.to_string()),
                source: c.config_source,
                read_only: c.read_only,
            })
            .collect())
    }

    /// The topic as the cluster has it (partitions and config overrides), `None` when absent.
    pub async fn describe_topic(&self, name: &str) -> Result<Option<ObservedTopic>, AdminError> {
        let md = self.metadata(Some(&[name.to_string()])).await?;
        let Some(info) = md.topics.get(name) else {
            return Ok(None);
        };
        let config = match self.describe_configs(RESOURCE_TOPIC, name).await {
            Ok(entries) => entries
                .into_iter()
                .filter(|e| e.source == SOURCE_TOPIC)
                .filter_map(|e| e.value.map(|v| (e.name, v)))
                .collect(),
            // Deleted between the two requests.
            Err(AdminError::Kafka(k)) if k.code == UNKNOWN_TOPIC_OR_PARTITION => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(Some(ObservedTopic {
            topic_id: info.topic_id.clone(),
            partitions: info.partitions.clone(),
            config,
        }))
    }

    /// CreateTopics for one topic. Returns the topic id when the broker reports one.
    pub async fn create_topic(&self, topic: &NewTopic) -> Result<Option<String>, AdminError> {
        let (partitions, rf, assignments) = match &topic.assignment {
            Some(a) => (
                -1,
                -1,
                a.iter()
                    .enumerate()
                    .map(|(i, replicas)| {
                        CreatableReplicaAssignment::default()
                            .with_partition_index(i32::try_from(i).unwrap_or(i32::MAX))
                            .with_broker_ids(replicas.iter().map(|b| BrokerId(*b)).collect())
                    })
                    .collect(),
            ),
            None => (
                topic.partitions,
                i16::try_from(topic.replication_factor).unwrap_or(i16::MAX),
                Vec::new(),
            ),
        };
        let request = CreateTopicsRequest::default()
            .with_topics(vec![CreatableTopic::default()
                .with_name(topic_name(&topic.name))
                .with_num_partitions(partitions)
                .with_replication_factor(rf)
                .with_assignments(assignments)
                .with_configs(
                    topic
                        .config
                        .iter()
                        .map(|(k, v)| {
                            CreatableTopicConfig::default()
                                .with_name(s(k))
                                .with_value(Some(s(v)))
                        })
                        .collect(),
                )])
            .with_timeout_ms(ms(self.timeout));
        let (response, _) = self
            .with_conn(async |c| c.call("CreateTopics", 2, 7, &request).await)
            .await?;
        let Some(r) = response.topics.into_iter().next() else {
            return Err(AdminError::Protocol {
                api: "CreateTopics",
                message: "no result for the topic".into(),
            });
        };
        if let Some(e) = KafkaError::from_code(
            "CreateTopics",
            Some(&topic.name),
            r.error_code,
            r.error_message.as_deref(),
        ) {
            return Err(e.into());
        }
        Ok((!r.topic_id.is_nil()).then(|| r.topic_id.to_string()))
    }

    /// CreatePartitions: grow `name` to `total` partitions, with the new ones' replicas when
    /// given.
    pub async fn create_partitions(
        &self,
        name: &str,
        total: i32,
        assignment: Option<&[Replicas]>,
    ) -> Result<(), AdminError> {
        let request = CreatePartitionsRequest::default()
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(topic_name(name))
                .with_count(total)
                .with_assignments(assignment.map(|a| {
                    a.iter()
                        .map(|r| {
                            CreatePartitionsAssignment::default()
                                .with_broker_ids(r.iter().map(|b| BrokerId(*b)).collect())
                        })
                        .collect()
                }))])
            .with_timeout_ms(ms(self.timeout));
        let (response, _) = self
            .with_conn(async |c| c.call("CreatePartitions", 0, 3, &request).await)
            .await?;
        for r in response.results {
            if let Some(e) = KafkaError::from_code(
                "CreatePartitions",
                Some(name),
                r.error_code,
                r.error_message.as_deref(),
            ) {
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// IncrementalAlterConfigs on one resource: SET each of `set`, DELETE each of `delete`.
    pub async fn alter_configs(
        &self,
        resource_type: i8,
        name: &str,
        set: &BTreeMap<String, String>,
        delete: &[String],
    ) -> Result<(), AdminError> {
        let configs = set
            .iter()
            .map(|(k, v)| {
                AlterableConfig::default()
                    .with_name(s(k))
                    .with_config_operation(0)
                    .with_value(Some(s(v)))
            })
            .chain(delete.iter().map(|k| {
                AlterableConfig::default()
                    .with_name(s(k))
                    .with_config_operation(1)
                    .with_value(None)
            }))
            .collect();
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(s(name))
                .with_configs(configs),
        ]);
        let (response, _) = self
            .with_conn(async |c| c.call("IncrementalAlterConfigs", 0, 1, &request).await)
            .await?;
        for r in response.responses {
            if let Some(e) = KafkaError::from_code(
                "IncrementalAlterConfigs",
                Some(name),
                r.error_code,
                r.error_message.as_deref(),
            ) {
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// DeleteTopics for one topic; an absent topic is not an error.
    pub async fn delete_topic(&self, name: &str) -> Result<(), AdminError> {
        let request = DeleteTopicsRequest::default()
            .with_topic_names(vec![topic_name(name)])
            .with_topics(vec![
                DeleteTopicState::default().with_name(Some(topic_name(name)))
            ])
            .with_timeout_ms(ms(self.timeout));
        let (response, _) = self
            .with_conn(async |c| c.call("DeleteTopics", 1, 6, &request).await)
            .await?;
        for r in response.responses {
            if r.error_code == UNKNOWN_TOPIC_OR_PARTITION {
                continue;
            }
            if let Some(e) = KafkaError::from_code(
                "DeleteTopics",
                Some(name),
                r.error_code,
                r.error_message.as_deref(),
            ) {
                return Err(e.into());
            }
        }
        Ok(())
    }
}
