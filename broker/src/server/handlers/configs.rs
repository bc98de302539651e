//! DescribeConfigs (topics and this broker) and IncrementalAlterConfigs (topics, and the
//! cluster-wide dynamic broker defaults: the BROKER resource "").

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
use crate::protocol::errors::ApiError;
use crate::topics::config::{self, ConfigType, TopicConfigKey, TOPIC_CONFIG_KEYS};

/// Config resource types.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// Config sources.
pub(super) const SOURCE_TOPIC: i8 = 1;
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
    TOPIC_CONFIG_KEYS
        .iter()
        .filter(|k| only.is_none_or(|names| names.iter().any(|n| n.as_str() == k.name)))
        .map(|key| {
            let default = key.default_value(broker);
            let dynamic_default = dynamic.get(key.broker_synonym).cloned();
            let (value, is_override) = match overrides.get(key.name) {
                Some(v) => (v.clone(), true),
                None => (
                    dynamic_default.clone().unwrap_or_else(|| default.clone()),
                    false,
                ),
            };
            TopicConfigEntry {
                key,
                value,
                is_override,
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
        ("node.id", b.node_id.to_string(), Int),
        ("num.partitions", b.num_partitions.to_string(), Int),
        (
            "socket.request.max.bytes",
            b.socket_request_max_bytes.to_string(),
            Int,
        ),
    ]
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
        let dynamic = self.registry.dynamic_defaults();
        Ok(
            topic_config_entries(&overrides, self.registry.static_broker(), &dynamic, only)
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
                        if let Some(d) = e.dynamic_default {
                            synonyms.push(
                                DescribeConfigsSynonym::default()
                                    .with_name(StrBytes::from_static_str(e.key.broker_synonym))
                                    .with_value(Some(StrBytes::from_string(d)))
                                    .with_source(SOURCE_DYNAMIC_DEFAULT_BROKER),
                            );
                        }
                        synonyms.push(
                            DescribeConfigsSynonym::default()
                                .with_name(StrBytes::from_static_str(e.key.broker_synonym))
                                .with_value(Some(StrBytes::from_string(e.default)))
                                .with_source(SOURCE_DEFAULT),
                        );
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
                .collect(),
        )
    }

    fn describe_broker(
        &self,
        name: &str,
        only: Option<&[StrBytes]>,
        request: &DescribeConfigsRequest,
        version: i16,
    ) -> Result<Vec<DescribeConfigsResourceResult>, ApiError> {
        if !name.is_empty() && name.parse::<i32>().ok() != Some(self.node_id) {
            return Err(ApiError::new(
                ResponseError::InvalidRequest,
                format!("Unknown broker {name:?}"),
            ));
        }
        let dynamic = self.registry.dynamic_defaults();
        Ok(broker_entries(self.registry.static_broker())
            .into_iter()
            .filter(|(k, _, _)| only.is_none_or(|names| names.iter().any(|n| n.as_str() == *k)))
            .map(|(k, v, kind)| {
                let set = dynamic.get(k);
                let (value, source) = match set {
                    Some(d) => (d.clone(), SOURCE_DYNAMIC_DEFAULT_BROKER),
                    None => (v.clone(), SOURCE_STATIC_BROKER),
                };
                let mut r = DescribeConfigsResourceResult::default()
                    .with_name(StrBytes::from_static_str(k))
                    .with_value(Some(StrBytes::from_string(value)))
                    .with_read_only(!config::is_dynamic_broker_key(k))
                    .with_config_source(source);
                if request.include_synonyms {
                    let mut synonyms = Vec::new();
                    if let Some(d) = set {
                        synonyms.push(
                            DescribeConfigsSynonym::default()
                                .with_name(StrBytes::from_static_str(k))
                                .with_value(Some(StrBytes::from_string(d.clone())))
                                .with_source(SOURCE_DYNAMIC_DEFAULT_BROKER),
                        );
                    }
                    synonyms.push(
                        DescribeConfigsSynonym::default()
                            .with_name(StrBytes::from_static_str(k))
                            .with_value(Some(StrBytes::from_string(v)))
                            .with_source(SOURCE_STATIC_BROKER),
                    );
                    r.synonyms = synonyms;
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
                RESOURCE_BROKER => match self.alter_broker_defaults(res) {
                    Ok(defaults) if !request.validate_only => {
                        self.set_broker_defaults(defaults).await
                    }
                    Ok(_) => Ok(()),
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
    /// The cluster-wide dynamic defaults after the changes of `res` (BROKER ""), checked.
    fn alter_broker_defaults(
        &self,
        res: &kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource,
    ) -> Result<BTreeMap<String, String>, ApiError> {
        let name = res.resource_name.as_str();
        if !name.is_empty() {
            return Err(ApiError::new(
                ResponseError::InvalidRequest,
                format!(
                    "Per-broker dynamic configs are not supported (broker {name:?}): alter the cluster-wide default, the BROKER resource with an empty name"
                ),
            ));
        }
        let mut defaults = match &self.cluster {
            Some(cluster) => cluster.current_image().broker_defaults.clone(),
            None => self.registry.dynamic_defaults(),
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
                    defaults.insert(key.to_string(), v.to_string());
                }
                OP_DELETE => {
                    defaults.remove(key);
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
        config::with_dynamic(self.registry.static_broker(), &defaults)
            .map_err(|e| ApiError::new(ResponseError::InvalidRequest, e.0))?;
        Ok(defaults)
    }
}
