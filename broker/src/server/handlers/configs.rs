//! DescribeConfigs (topics and this broker) and IncrementalAlterConfigs (topics, the
//! cluster-wide dynamic broker defaults: the BROKER resource "", and one broker's own dynamic
//! configs: the BROKER resource named by its id, which come before the defaults on it).

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{
    DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{first_error, Broker};
use crate::config::BrokerConfig;
use crate::controller::MetadataCommand;
use crate::protocol::errors::ApiError;
use crate::topics::config::{self, ConfigType, TopicConfigKey, TOPIC_CONFIG_KEYS};

/// Config resource types.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// Config sources.
pub(super) const SOURCE_TOPIC: i8 = 1;
const SOURCE_DYNAMIC_BROKER: i8 = 2;
const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
const SOURCE_STATIC_BROKER: i8 = 4;
pub(super) const SOURCE_DEFAULT: i8 = 5;
/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// One topic config with its effective value.
pub(super) struct TopicConfigEntry {
    pub(super) key: &'static TopicConfigKey,
    pub(super) value: String,
    pub(super) is_override: bool,
    /// This broker's own dynamic value of the broker synonym, when one is set.
    pub(super) dynamic_broker: Option<String>,
    /// The cluster-wide dynamic default, when one is set.
    pub(super) dynamic_default: Option<String>,
    /// The default the broker's flags give.
    pub(super) default: String,
}

impl TopicConfigEntry {
    /// Where the value comes from (DescribeConfigs config source).
    pub(super) fn source(&self) -> i8 {
        if self.is_override {
            SOURCE_TOPIC
        } else if self.dynamic_broker.is_some() {
            SOURCE_DYNAMIC_BROKER
        } else if self.dynamic_default.is_some() {
            SOURCE_DYNAMIC_DEFAULT_BROKER
        } else {
            SOURCE_DEFAULT
        }
    }
}

/// Every topic config (or only `only`), with override, cluster-wide dynamic default or the
/// default of the broker's flags.
pub(super) fn topic_config_entries(
    overrides: &BTreeMap<String, String>,
    broker: &BrokerConfig,
    dynamic: &BTreeMap<String, String>,
    only: Option<&[StrBytes]>,
) -> Vec<TopicConfigEntry> {
    layered_topic_config_entries(overrides, broker, (&BTreeMap::new(), dynamic), only)
}

/// Every topic config (or only `only`), with override, this broker's own dynamic value,
/// cluster-wide dynamic default or the default of the broker's flags, in that order.
fn layered_topic_config_entries(
    overrides: &BTreeMap<String, String>,
    broker: &BrokerConfig,
    (own, defaults): (&BTreeMap<String, String>, &BTreeMap<String, String>),
    only: Option<&[StrBytes]>,
) -> Vec<TopicConfigEntry> {
    TOPIC_CONFIG_KEYS
        .iter()
        .filter(|k| only.is_none_or(|names| names.iter().any(|n| n.as_str() == k.name)))
        .map(|key| {
            let default = key.default_value(broker);
            let synonym = |m: &BTreeMap<String, String>| {
                (!key.broker_synonym.is_empty())
                    .then(|| m.get(key.broker_synonym).cloned())
                    .flatten()
            };
            let dynamic_broker = synonym(own);
            let dynamic_default = synonym(defaults);
            let (value, is_override) = match overrides.get(key.name) {
                Some(v) => (v.clone(), true),
                None => (
                    dynamic_broker
                        .clone()
                        .or_else(|| dynamic_default.clone())
                        .unwrap_or_else(|| default.clone()),
                    false,
                ),
            };
            TopicConfigEntry {
                key,
                value,
                is_override,
                dynamic_broker,
                dynamic_default,
                default,
            }
        })
        .collect()
}

/// This broker's static settings under Kafka's names.
fn broker_entries(b: &BrokerConfig) -> Vec<(&'static str, String, ConfigType)> {
    use ConfigType::*;
    vec![
        (
            "auto.create.topics.enable",
            b.auto_create_topics_enable.to_string(),
            Boolean,
        ),
        (
            "default.replication.factor",
            b.default_replication_factor.to_string(),
            Int,
        ),
        (
            "log.cleaner.delete.retention.ms",
            b.log_cleaner_delete_retention_ms.to_string(),
            Long,
        ),
        (
            "log.cleaner.min.cleanable.ratio",
            b.log_cleaner_min_cleanable_ratio.to_string(),
            Double,
        ),
        (
            "log.cleaner.min.compaction.lag.ms",
            b.log_cleaner_min_compaction_lag_ms.to_string(),
            Long,
        ),
        ("log.cleanup.policy", b.log_cleanup_policy.clone(), List),
        ("log.dirs", b.data_dir.display().to_string(), String),
        (
            "log.flush.interval.messages",
            b.log_flush_interval_messages.to_string(),
            Long,
        ),
        (
            "log.flush.interval.ms",
            b.log_flush_interval_ms.unwrap_or(i64::MAX).to_string(),
            Long,
        ),
        (
            "log.index.interval.bytes",
            b.log_index_interval_bytes.to_string(),
            Int,
        ),
        (
            "log.retention.bytes",
            b.log_retention_bytes.to_string(),
            Long,
        ),
        (
            "log.retention.check.interval.ms",
            b.log_retention_check_interval_ms.to_string(),
            Long,
        ),
        ("log.retention.ms", b.log_retention_ms.to_string(), Long),
        ("log.roll.ms", b.log_roll_ms.to_string(), Long),
        ("log.segment.bytes", b.log_segment_bytes.to_string(), Int),
        ("message.max.bytes", b.message_max_bytes.to_string(), Int),
        (
            "min.insync.replicas",
            b.min_insync_replicas.to_string(),
            Int,
        ),
        (
            "follower.replication.throttled.rate",
            i64::MAX.to_string(),
            Long,
        ),
        (
            "leader.replication.throttled.rate",
            i64::MAX.to_string(),
            Long,
        ),
        (config::ALTER_LOG_DIRS_RATE, i64::MAX.to_string(), Long),
        ("node.id", b.node_id.to_string(), Int),
        ("num.partitions", b.num_partitions.to_string(), Int),
        (
            "socket.request.max.bytes",
            b.socket_request_max_bytes.to_string(),
            Int,
        ),
    ]
}

/// The values a broker setting has, first the one in force, with their DescribeConfigs
/// sources: this broker's own dynamic value, the cluster-wide dynamic default, then the flag
/// (or Kafka's default for the throttle rates, which have no flag).
fn broker_value_layers(
    key: &str,
    static_value: String,
    own: &BTreeMap<String, String>,
    defaults: &BTreeMap<String, String>,
) -> Vec<(String, i8)> {
    let static_source = if config::is_throttle_rate_key(key) {
        SOURCE_DEFAULT
    } else {
        SOURCE_STATIC_BROKER
    };
    [
        (own.get(key).cloned(), SOURCE_DYNAMIC_BROKER),
        (defaults.get(key).cloned(), SOURCE_DYNAMIC_DEFAULT_BROKER),
        (Some(static_value), static_source),
    ]
    .into_iter()
    .filter_map(|(value, source)| value.map(|v| (v, source)))
    .collect()
}

impl Broker {
    pub(super) fn describe_configs(
        &self,
        request: DescribeConfigsRequest,
        version: i16,
    ) -> (DescribeConfigsResponse, i16) {
        let results: Vec<DescribeConfigsResult> = request
            .resources
            .iter()
            .map(|res| {
                let mut out = DescribeConfigsResult::default()
                    .with_resource_type(res.resource_type)
                    .with_resource_name(res.resource_name.clone());
                // Null or empty: every key (as Kafka).
                let only = res.configuration_keys.as_deref().filter(|k| !k.is_empty());
                let configs = match res.resource_type {
                    RESOURCE_TOPIC => {
                        self.describe_topic(res.resource_name.as_str(), only, &request, version)
                    }
                    RESOURCE_BROKER => {
                        self.describe_broker(res.resource_name.as_str(), only, &request, version)
                    }
                    other => Err(ApiError::new(
                        ResponseError::InvalidRequest,
                        format!("Unsupported resource type {other}"),
                    )),
                };
                match configs {
                    Ok(c) => out.configs = c,
                    Err(e) => {
                        out.error_code = e.code();
                        out.error_message = Some(StrBytes::from_string(e.message));
                    }
                }
                out
            })
            .collect();
        let code = first_error(results.iter().map(|r| r.error_code));
        (
            DescribeConfigsResponse::default().with_results(results),
            code,
        )
    }

    fn describe_topic(
        &self,
        name: &str,
        only: Option<&[StrBytes]>,
        request: &DescribeConfigsRequest,
        version: i16,
    ) -> Result<Vec<DescribeConfigsResourceResult>, ApiError> {
        let topic = self.registry.get(name).ok_or_else(|| {
            ApiError::new(
                ResponseError::UnknownTopicOrPartition,
                format!("Topic '{name}' does not exist."),
            )
        })?;
        let overrides = topic.configs.read().clone();
        let defaults = self.registry.dynamic_defaults();
        let own = self.registry.dynamic_broker_configs();
        Ok(layered_topic_config_entries(
            &overrides,
            self.registry.static_broker(),
            (&own, &defaults),
            only,
        )
        .into_iter()
        .map(|e| {
            let mut r = DescribeConfigsResourceResult::default()
                .with_name(StrBytes::from_static_str(e.key.name))
                .with_value(Some(StrBytes::from_string(e.value.clone())))
                .with_config_source(e.source());
            if request.include_synonyms {
                let mut synonyms = Vec::new();
                if e.is_override {
                    synonyms.push(
                        DescribeConfigsSynonym::default()
                            .with_name(StrBytes::from_static_str(e.key.name))
                            .with_value(Some(StrBytes::from_string(e.value)))
                            .with_source(SOURCE_TOPIC),
                    );
                }
                let layers = [
                    (e.dynamic_broker, SOURCE_DYNAMIC_BROKER),
                    (e.dynamic_default, SOURCE_DYNAMIC_DEFAULT_BROKER),
                    (Some(e.default), SOURCE_DEFAULT),
                ];
                if !e.key.broker_synonym.is_empty() {
                    for (value, source) in layers {
                        let Some(v) = value else { continue };
                        synonyms.push(
                            DescribeConfigsSynonym::default()
                                .with_name(StrBytes::from_static_str(e.key.broker_synonym))
                                .with_value(Some(StrBytes::from_string(v)))
                                .with_source(source),
                        );
                    }
                }
                r.synonyms = synonyms;
            }
            if version >= 3 {
                r.config_type = e.key.kind as i8;
                if request.include_documentation {
                    r.documentation = Some(StrBytes::from_static_str(e.key.doc));
                }
            }
            r
        })
        .collect())
    }

    fn describe_broker(
        &self,
        name: &str,
        only: Option<&[StrBytes]>,
        request: &DescribeConfigsRequest,
        version: i16,
    ) -> Result<Vec<DescribeConfigsResourceResult>, ApiError> {
        // The cluster-wide default resource ("") shows no per-broker values.
        let own = if name.is_empty() {
            BTreeMap::new()
        } else if name.trim().parse::<i32>().ok() == Some(self.node_id) {
            self.registry.dynamic_broker_configs()
        } else {
            return Err(ApiError::new(
                ResponseError::InvalidRequest,
                format!(
                    "Unexpected broker id, expected {} or empty string, but received {name}",
                    self.node_id
                ),
            ));
        };
        let defaults = self.registry.dynamic_defaults();
        Ok(broker_entries(self.registry.static_broker())
            .into_iter()
            .filter(|(k, _, _)| only.is_none_or(|names| names.iter().any(|n| n.as_str() == *k)))
            .map(|(k, v, kind)| {
                let synonyms = broker_value_layers(k, v, &own, &defaults);
                let (value, source) = synonyms
                    .first()
                    .cloned()
                    .unwrap_or((String::new(), SOURCE_STATIC_BROKER));
                let mut r = DescribeConfigsResourceResult::default()
                    .with_name(StrBytes::from_static_str(k))
                    .with_value(Some(StrBytes::from_string(value)))
                    .with_read_only(!config::is_dynamic_broker_key(k))
                    .with_config_source(source);
                if request.include_synonyms {
                    r.synonyms = synonyms
                        .into_iter()
                        .map(|(v, source)| {
                            DescribeConfigsSynonym::default()
                                .with_name(StrBytes::from_static_str(k))
                                .with_value(Some(StrBytes::from_string(v)))
                                .with_source(source)
                        })
                        .collect();
                }
                if version >= 3 {
                    r.config_type = kind as i8;
                }
                r
            })
            .collect())
    }

    pub(super) async fn incremental_alter_configs(
        &self,
        request: IncrementalAlterConfigsRequest,
    ) -> (IncrementalAlterConfigsResponse, i16) {
        let mut responses: Vec<AlterConfigsResourceResponse> =
            Vec::with_capacity(request.resources.len());
        for res in &request.resources {
            let outcome = match res.resource_type {
                RESOURCE_TOPIC => match self.alter_topic(res, request.validate_only) {
                    Ok(Some(overrides)) => {
                        self.set_topic_configs(res.resource_name.as_str(), overrides)
                            .await
                    }
                    Ok(None) => Ok(()),
                    Err(e) => Err(e),
                },
                RESOURCE_BROKER => match self.alter_broker_configs(res) {
                    Ok(_) if request.validate_only => Ok(()),
                    Ok((None, defaults)) => self.set_broker_defaults(defaults).await,
                    Ok((Some(id), own)) => self.set_broker_configs(id, own).await,
                    Err(e) => Err(e),
                },
                other => Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    format!("Unsupported resource type {other}"),
                )),
            };
            let mut r = AlterConfigsResourceResponse::default()
                .with_resource_type(res.resource_type)
                .with_resource_name(res.resource_name.clone());
            if let Err(e) = outcome {
                r.error_code = e.code();
                r.error_message = Some(StrBytes::from_string(e.message));
            }
            responses.push(r);
        }
        let code = first_error(responses.iter().map(|r| r.error_code));
        (
            IncrementalAlterConfigsResponse::default().with_responses(responses),
            code,
        )
    }

    fn alter_topic(
        &self,
        res: &kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource,
        validate_only: bool,
    ) -> Result<Option<BTreeMap<String, String>>, ApiError> {
        let name = res.resource_name.as_str();
        let topic = self.registry.get(name).ok_or_else(|| {
            ApiError::new(
                ResponseError::UnknownTopicOrPartition,
                format!("Topic '{name}' does not exist."),
            )
        })?;
        let mut overrides = topic.configs.read().clone();
        let mut seen = std::collections::HashSet::new();
        for c in &res.configs {
            let key = c.name.as_str();
            if !seen.insert(key) {
                return Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    format!("Config {key} is listed twice"),
                ));
            }
            let spec = config::key(key).ok_or_else(|| {
                ApiError::new(
                    ResponseError::InvalidConfig,
                    format!("Unknown topic config name: {key}"),
                )
            })?;
            let value = c.value.as_ref().map(|v| v.to_string());
            match c.config_operation {
                OP_SET => {
                    let v = value.ok_or_else(|| {
                        ApiError::new(
                            ResponseError::InvalidRequest,
                            format!("Null value not supported for SET of {key}"),
                        )
                    })?;
                    overrides.insert(key.to_string(), v);
                }
                OP_DELETE => {
                    overrides.remove(key);
                }
                OP_APPEND | OP_SUBTRACT => {
                    if spec.kind != ConfigType::List {
                        return Err(ApiError::new(
                            ResponseError::InvalidConfig,
                            format!("Config value append/subtract is not allowed for config key {key} (not a list)"),
                        ));
                    }
                    let current = config::effective(&overrides, &self.registry.broker(), key)
                        .unwrap_or_default();
                    let mut items: Vec<String> = current
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect();
                    for item in value
                        .unwrap_or_default()
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                    {
                        if c.config_operation == OP_APPEND {
                            if !items.iter().any(|i| i == item) {
                                items.push(item.to_string());
                            }
                        } else {
                            items.retain(|i| i != item);
                        }
                    }
                    overrides.insert(key.to_string(), items.join(","));
                }
                other => {
                    return Err(ApiError::new(
                        ResponseError::InvalidRequest,
                        format!("Unknown config operation {other}"),
                    ))
                }
            }
        }
        config::validate_all(&overrides)
            .map_err(|e| ApiError::new(ResponseError::InvalidConfig, e.0))?;
        Ok((!validate_only).then_some(overrides))
    }
    /// The dynamic broker configs after the changes of `res`, checked: the cluster-wide
    /// defaults (`None`, BROKER "") or the own configs of the broker it names (`Some(id)`).
    fn alter_broker_configs(
        &self,
        res: &kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource,
    ) -> Result<(Option<i32>, BTreeMap<String, String>), ApiError> {
        let name = res.resource_name.as_str();
        let broker = if name.is_empty() {
            None
        } else {
            match name.trim().parse::<i32>() {
                Ok(id) if id >= 0 => Some(id),
                _ => {
                    return Err(ApiError::new(
                        ResponseError::InvalidRequest,
                        format!("Broker id must be an integer, or empty for the cluster-wide default, but it is {name:?}"),
                    ))
                }
            }
        };
        let image = self.cluster.as_ref().map(|c| c.current_image());
        let defaults = match &image {
            Some(image) => image.broker_defaults.clone(),
            None => self.registry.dynamic_defaults(),
        };
        let mut configs = match (broker, &image) {
            (None, _) => defaults.clone(),
            (Some(id), Some(image)) => image.broker_configs.get(&id).cloned().unwrap_or_default(),
            (Some(id), None) if id == self.node_id => self.registry.dynamic_broker_configs(),
            (Some(_), None) => {
                return Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    format!(
                        "Unexpected broker id, expected {} or empty string, but received {name}",
                        self.node_id
                    ),
                ))
            }
        };
        let static_keys = broker_entries(self.registry.static_broker());
        let mut seen = std::collections::HashSet::new();
        for c in &res.configs {
            let key = c.name.as_str();
            if !seen.insert(key) {
                return Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    format!("Config {key} is listed twice"),
                ));
            }
            if !config::is_dynamic_broker_key(key) {
                return Err(if static_keys.iter().any(|(k, _, _)| *k == key) {
                    ApiError::new(
                        ResponseError::InvalidRequest,
                        format!("Cannot update these configs dynamically: {key} is read-only (set it with its flag or environment variable and restart the broker)"),
                    )
                } else {
                    ApiError::new(
                        ResponseError::InvalidConfig,
                        format!("Unknown broker config name: {key}"),
                    )
                });
            }
            match c.config_operation {
                OP_SET => {
                    let v = c.value.as_ref().ok_or_else(|| {
                        ApiError::new(
                            ResponseError::InvalidRequest,
                            format!("Null value not supported for SET of {key}"),
                        )
                    })?;
                    configs.insert(key.to_string(), v.to_string());
                }
                OP_DELETE => {
                    configs.remove(key);
                }
                OP_APPEND | OP_SUBTRACT => {
                    return Err(ApiError::new(
                        ResponseError::InvalidRequest,
                        format!("Config value append/subtract is not supported for broker config {key}: use SET"),
                    ))
                }
                other => {
                    return Err(ApiError::new(
                        ResponseError::InvalidRequest,
                        format!("Unknown config operation {other} for {key}"),
                    ))
                }
            }
        }
        let checked = if broker.is_some() {
            config::with_dynamic(self.registry.static_broker(), &defaults)
                .and_then(|b| config::with_dynamic(&b, &configs))
        } else {
            config::with_dynamic(self.registry.static_broker(), &configs)
        };
        checked.map_err(|e| ApiError::new(ResponseError::InvalidRequest, e.0))?;
        Ok((broker, configs))
    }

    /// Replaces one broker's own dynamic configs (already checked): a single broker applies
    /// and persists them; a cluster member proposes them to the controller quorum, and the
    /// broker they are for applies them from the metadata image.
    async fn set_broker_configs(
        &self,
        broker_id: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<(), ApiError> {
        let Some(cluster) = &self.cluster else {
            self.registry.set_dynamic_broker_configs(configs)?;
            return Ok(());
        };
        let image = cluster.current_image();
        let remove = image
            .broker_configs
            .get(&broker_id)
            .into_iter()
            .flat_map(|m| m.keys())
            .filter(|k| !configs.contains_key(*k))
            .cloned()
            .collect();
        cluster
            .propose(MetadataCommand::AlterBrokerConfigs {
                broker_id,
                set: configs,
                remove,
            })
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn broker_sources_follow_kafkas_precedence() {
        let rate = "follower.replication.throttled.rate";
        let own = map(&[(rate, "100")]);
        let defaults = map(&[(rate, "200"), ("log.retention.ms", "5")]);
        let max = i64::MAX.to_string();
        assert_eq!(
            broker_value_layers(rate, max.clone(), &own, &defaults),
            vec![
                ("100".to_string(), SOURCE_DYNAMIC_BROKER),
                ("200".to_string(), SOURCE_DYNAMIC_DEFAULT_BROKER),
                (max.clone(), SOURCE_DEFAULT),
            ]
        );
        assert_eq!(
            broker_value_layers(rate, max.clone(), &BTreeMap::new(), &BTreeMap::new()),
            vec![(max, SOURCE_DEFAULT)]
        );
        assert_eq!(
            broker_value_layers("log.retention.ms", "7".into(), &own, &defaults),
            vec![
                ("5".to_string(), SOURCE_DYNAMIC_DEFAULT_BROKER),
                ("7".to_string(), SOURCE_STATIC_BROKER),
            ]
        );
        let own = map(&[("log.retention.ms", "3")]);
        assert_eq!(
            broker_value_layers("log.retention.ms", "7".into(), &own, &defaults)[0],
            ("3".to_string(), SOURCE_DYNAMIC_BROKER)
        );
        // Every throttle rate is listed as a Long, unlimited unless set.
        let b = BrokerConfig::for_tests("/tmp/x".into());
        for k in [rate, "leader.replication.throttled.rate"] {
            let (_, v, kind) = broker_entries(&b).into_iter().find(|e| e.0 == k).unwrap();
            assert_eq!(
                (v.as_str(), kind),
                ("9223372036854775807", ConfigType::Long)
            );
        }
    }

    #[test]
    fn topic_sources_follow_kafkas_precedence() {
        let b = BrokerConfig::for_tests("/tmp/x".into());
        let own = map(&[("log.retention.ms", "1")]);
        let defaults = map(&[("log.retention.ms", "2"), ("log.segment.bytes", "2048")]);
        let overrides = map(&[
            ("segment.ms", "9"),
            ("leader.replication.throttled.replicas", "0:1"),
        ]);
        let entries = layered_topic_config_entries(&overrides, &b, (&own, &defaults), None);
        let get = |name: &str| entries.iter().find(|e| e.key.name == name).unwrap();
        assert_eq!(get("retention.ms").value, "1");
        assert_eq!(get("retention.ms").source(), SOURCE_DYNAMIC_BROKER);
        assert_eq!(get("retention.ms").dynamic_default.as_deref(), Some("2"));
        assert_eq!(get("segment.bytes").value, "2048");
        assert_eq!(get("segment.bytes").source(), SOURCE_DYNAMIC_DEFAULT_BROKER);
        assert_eq!(get("segment.ms").source(), SOURCE_TOPIC);
        assert_eq!(get("max.message.bytes").source(), SOURCE_DEFAULT);
        let leader = get("leader.replication.throttled.replicas");
        assert_eq!(
            (leader.value.as_str(), leader.source()),
            ("0:1", SOURCE_TOPIC)
        );
        let follower = get("follower.replication.throttled.replicas");
        assert_eq!(
            (follower.value.as_str(), follower.source()),
            ("", SOURCE_DEFAULT)
        );
        // Without a per-broker layer (CreateTopics' answer) the default is the source.
        let entries = topic_config_entries(&BTreeMap::new(), &b, &defaults, None);
        let retention = entries
            .iter()
            .find(|e| e.key.name == "retention.ms")
            .unwrap();
        assert_eq!(retention.source(), SOURCE_DYNAMIC_DEFAULT_BROKER);
    }
}
