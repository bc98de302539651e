//! Topic-level configuration: the keys Samsa honours, their broker-level defaults, validation,
//! and the mapping to the log's settings.
//!
//! This is the only place that knows config names. It never touches disk or the network.

use std::collections::BTreeMap;

use crate::config::BrokerConfig;
use crate::log::LogConfig;
use crate::replication::throttle;

/// Kafka's ConfigEntry config types (DescribeConfigs v3+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// BOOLEAN
    Boolean = 1,
    /// STRING
    String = 2,
    /// INT
    Int = 3,
    /// LONG
    Long = 5,
    /// DOUBLE
    Double = 6,
    /// LIST
    List = 7,
}

/// One topic config key.
pub struct TopicConfigKey {
    /// Topic-level name, e.g. `retention.ms`.
    pub name: &'static str,
    /// The broker-level setting it defaults to, e.g. `log.retention.ms`; empty when there is
    /// none (the throttled-replica lists).
    pub broker_synonym: &'static str,
    /// Value type.
    pub kind: ConfigType,
    /// One-line documentation (DescribeConfigs include_documentation).
    pub doc: &'static str,
    default: fn(&BrokerConfig) -> String,
    check: fn(&str) -> Result<(), String>,
}

fn long_at_least(min: i64) -> impl Fn(&str) -> Result<(), String> {
    move |v| match v.trim().parse::<i64>() {
        Ok(n) if n >= min => Ok(()),
        Ok(n) => Err(format!("value {n} is below the minimum {min}")),
        Err(_) => Err(format!("{v:?} is not a valid long")),
    }
}

fn int_at_least(min: i64) -> impl Fn(&str) -> Result<(), String> {
    move |v| match v.trim().parse::<i32>() {
        Ok(n) if i64::from(n) >= min => Ok(()),
        Ok(n) => Err(format!("value {n} is below the minimum {min}")),
        Err(_) => Err(format!("{v:?} is not a valid int")),
    }
}

/// `cleanup.policy`: `delete`, `compact` or both (comma-separated, either order).
pub fn check_cleanup_policy(v: &str) -> Result<(), String> {
    for item in v.split(',').map(str::trim) {
        match item {
            "delete" | "compact" => {}
            other => return Err(format!("{other:?} is not one of delete, compact")),
        }
    }
    Ok(())
}

/// Whether a (valid) `cleanup.policy` value holds `policy`.
fn has_policy(value: &str, policy: &str) -> bool {
    value.split(',').any(|item| item.trim() == policy)
}

fn check_timestamp_type(v: &str) -> Result<(), String> {
    match v.trim() {
        "CreateTime" | "LogAppendTime" => Ok(()),
        other => Err(format!("{other:?} is not one of CreateTime, LogAppendTime")),
    }
}

fn check_compression(v: &str) -> Result<(), String> {
    match v.trim() {
        "producer" => Ok(()),
        "uncompressed" | "gzip" | "snappy" | "lz4" | "zstd" => Err(format!(
            "compression.type {v} would need recompression, which this broker does not do; use producer"
        )),
        other => Err(format!("{other:?} is not a compression type")),
    }
}

fn check_ratio(v: &str) -> Result<(), String> {
    match v.trim().parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(()),
        _ => Err(format!("{v:?} is not a number between 0 and 1")),
    }
}

fn check_bool(v: &str) -> Result<(), String> {
    match v.trim() {
        "true" | "false" => Ok(()),
        _ => Err(format!("{v:?} is not true or false")),
    }
}

macro_rules! key {
    ($name:expr, $syn:expr, $kind:ident, $doc:expr, $default:expr, $check:expr) => {
        TopicConfigKey {
            name: $name,
            broker_synonym: $syn,
            kind: ConfigType::$kind,
            doc: $doc,
            default: $default,
            check: |v| ($check)(v),
        }
    };
}

/// Every topic config key the broker accepts, in name order.
pub static TOPIC_CONFIG_KEYS: &[TopicConfigKey] = &[
    key!(
        "cleanup.policy",
        "log.cleanup.policy",
        List,
        "Retention policy for old segments: delete, compact, or both (compact,delete).",
        |b| b.log_cleanup_policy.clone(),
        check_cleanup_policy
    ),
    key!(
        "compression.type",
        "compression.type",
        String,
        "Batches are stored as the producer compressed them (producer).",
        |_| "producer".into(),
        check_compression
    ),
    key!(
        "delete.retention.ms",
        "log.cleaner.delete.retention.ms",
        Long,
        "How long tombstones are kept on compacted topics, counted from their timestamp.",
        |b| b.log_cleaner_delete_retention_ms.to_string(),
        long_at_least(0)
    ),
    key!(
        "flush.messages",
        "log.flush.interval.messages",
        Long,
        "fsync the partition after this many messages.",
        |b| b.log_flush_interval_messages.to_string(),
        long_at_least(1)
    ),
    key!(
        "flush.ms",
        "log.flush.interval.ms",
        Long,
        "fsync the partition when the last flush is older than this.",
        |b| b.log_flush_interval_ms.unwrap_or(i64::MAX).to_string(),
        long_at_least(0)
    ),
    key!(
        "follower.replication.throttled.replicas",
        "",
        List,
        "Replicas (partition:broker,... or *) whose fetching is throttled on the follower side \
         to follower.replication.throttled.rate while they are out of sync.",
        |_| String::new(),
        throttle::check_replicas
    ),
    key!(
        "index.interval.bytes",
        "log.index.interval.bytes",
        Int,
        "Bytes between entries of the sparse offset index.",
        |b| b.log_index_interval_bytes.to_string(),
        int_at_least(0)
    ),
    key!(
        "leader.replication.throttled.replicas",
        "",
        List,
        "Replicas (partition:broker,... or *) whose leader serves out-of-ISR followers at most \
         leader.replication.throttled.rate.",
        |_| String::new(),
        throttle::check_replicas
    ),
    key!(
        "max.message.bytes",
        "message.max.bytes",
        Int,
        "Largest record batch accepted for this topic.",
        |b| b.message_max_bytes.to_string(),
        int_at_least(0)
    ),
    key!(
        "message.timestamp.type",
        "log.message.timestamp.type",
        String,
        "CreateTime keeps the producer's timestamps; LogAppendTime stamps batches on append.",
        |_| "CreateTime".into(),
        check_timestamp_type
    ),
    key!(
        "min.cleanable.dirty.ratio",
        "log.cleaner.min.cleanable.ratio",
        Double,
        "Dirty ratio above which a compacted log is cleaned.",
        |b| b.log_cleaner_min_cleanable_ratio.to_string(),
        check_ratio
    ),
    key!(
        "min.compaction.lag.ms",
        "log.cleaner.min.compaction.lag.ms",
        Long,
        "Records younger than this stay uncompacted.",
        |b| b.log_cleaner_min_compaction_lag_ms.to_string(),
        long_at_least(0)
    ),
    key!(
        "min.insync.replicas",
        "min.insync.replicas",
        Int,
        "Replicas that must acknowledge an acks=all write.",
        |b| b.min_insync_replicas.to_string(),
        int_at_least(1)
    ),
    key!(
        "retention.bytes",
        "log.retention.bytes",
        Long,
        "Delete the oldest segments while the partition is larger than this (-1: no limit).",
        |b| b.log_retention_bytes.to_string(),
        long_at_least(-1)
    ),
    key!(
        "retention.ms",
        "log.retention.ms",
        Long,
        "Delete segments older than this (-1: keep forever).",
        |b| b.log_retention_ms.to_string(),
        long_at_least(-1)
    ),
    key!(
        "segment.bytes",
        "log.segment.bytes",
        Int,
        "Size of one segment file.",
        |b| b.log_segment_bytes.to_string(),
        int_at_least(14)
    ),
    key!(
        "segment.ms",
        "log.roll.ms",
        Long,
        "Roll a new segment after this long even if the current one is not full.",
        |b| b.log_roll_ms.to_string(),
        long_at_least(1)
    ),
    key!(
        "unclean.leader.election.enable",
        "unclean.leader.election.enable",
        Boolean,
        "Allow an out-of-sync replica to become leader when no in-sync replica is alive.",
        |_| "false".into(),
        check_bool
    ),
];

/// Looks a key up by its topic-level name.
pub fn key(name: &str) -> Option<&'static TopicConfigKey> {
    TOPIC_CONFIG_KEYS.iter().find(|k| k.name == name)
}

impl TopicConfigKey {
    /// The value a topic without an override has.
    pub fn default_value(&self, broker: &BrokerConfig) -> String {
        (self.default)(broker)
    }
}

/// Why a config change was refused; the message names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidConfig(pub String);

/// Checks one key and value.
pub fn validate(name: &str, value: &str) -> Result<(), InvalidConfig> {
    let k = key(name).ok_or_else(|| InvalidConfig(format!("Unknown topic config name: {name}")))?;
    (k.check)(value).map_err(|e| {
        InvalidConfig(format!(
            "Invalid value {value} for configuration {name}: {e}"
        ))
    })
}

/// Checks a whole set of overrides.
pub fn validate_all(overrides: &BTreeMap<String, String>) -> Result<(), InvalidConfig> {
    overrides.iter().try_for_each(|(k, v)| validate(k, v))
}

/// The effective value of `name`: the override, else the broker default.
pub fn effective(
    overrides: &BTreeMap<String, String>,
    broker: &BrokerConfig,
    name: &str,
) -> Option<String> {
    overrides
        .get(name)
        .cloned()
        .or_else(|| key(name).map(|k| k.default_value(broker)))
}

/// Broker settings an admin may change at runtime, by Kafka name, in name order: cluster-wide
/// (IncrementalAlterConfigs on the BROKER resource "") or for one broker (the resource named
/// by its id; that value comes before the cluster-wide one, as in Kafka). Two are the
/// replication throttles (bytes/s, only dynamic, as in Kafka); the others are the broker-level
/// defaults of topic configs that are broker flags: a dynamic value replaces the flag as the
/// default of every topic without an override of its own.
pub const DYNAMIC_BROKER_KEYS: &[&str] = &[
    throttle::FOLLOWER_RATE,
    throttle::LEADER_RATE,
    "log.cleaner.delete.retention.ms",
    "log.cleaner.min.cleanable.ratio",
    "log.cleaner.min.compaction.lag.ms",
    "log.cleanup.policy",
    "log.flush.interval.messages",
    "log.flush.interval.ms",
    "log.index.interval.bytes",
    "log.retention.bytes",
    "log.retention.ms",
    "log.roll.ms",
    "log.segment.bytes",
    "message.max.bytes",
    "min.insync.replicas",
    ALTER_LOG_DIRS_RATE,
];

/// Kafka's throttle of moves between one broker's log directories (bytes/s). A broker here
/// has one log directory, so nothing moves between them; the setting is accepted (and
/// described) so that tools that set or clear it, such as `kafka-reassign-partitions
/// --verify`, work.
pub const ALTER_LOG_DIRS_RATE: &str = "replica.alter.log.dirs.io.max.bytes.per.second";

/// Whether `name` is a replication throttle rate (bytes/s, a dynamic broker config that no
/// topic config defaults to).
pub fn is_throttle_rate_key(name: &str) -> bool {
    name == throttle::LEADER_RATE || name == throttle::FOLLOWER_RATE || name == ALTER_LOG_DIRS_RATE
}

/// Whether `name` is a broker setting that can change at runtime.
pub fn is_dynamic_broker_key(name: &str) -> bool {
    DYNAMIC_BROKER_KEYS.binary_search(&name).is_ok()
}

/// The topic config a dynamic broker setting is the default of.
pub fn topic_key_for_broker(name: &str) -> Option<&'static TopicConfigKey> {
    if !is_dynamic_broker_key(name) {
        return None;
    }
    TOPIC_CONFIG_KEYS.iter().find(|k| k.broker_synonym == name)
}

fn parse_value<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, InvalidConfig> {
    value.trim().parse().map_err(|_| {
        InvalidConfig(format!(
            "Invalid value {value} for configuration {name}: not a valid number"
        ))
    })
}

/// Sets the dynamic broker setting `name` on `broker`, checking `value` as the topic-level key
/// checks it. The error names the key.
pub fn set_dynamic(
    broker: &mut BrokerConfig,
    name: &str,
    value: &str,
) -> Result<(), InvalidConfig> {
    if is_throttle_rate_key(name) {
        // Not a flag: the replication throttles read it from the dynamic configs themselves.
        return long_at_least(0)(value).map_err(|e| {
            InvalidConfig(format!(
                "Invalid value {value} for configuration {name}: {e}"
            ))
        });
    }
    let key = topic_key_for_broker(name).ok_or_else(|| {
        InvalidConfig(format!(
            "Cannot update config {name} dynamically: it is not a dynamic broker config"
        ))
    })?;
    (key.check)(value).map_err(|e| {
        InvalidConfig(format!(
            "Invalid value {value} for configuration {name}: {e}"
        ))
    })?;
    let v = value.trim();
    match name {
        "log.cleaner.delete.retention.ms" => {
            broker.log_cleaner_delete_retention_ms = parse_value(name, v)?
        }
        "log.cleaner.min.cleanable.ratio" => {
            broker.log_cleaner_min_cleanable_ratio = parse_value(name, v)?
        }
        "log.cleaner.min.compaction.lag.ms" => {
            broker.log_cleaner_min_compaction_lag_ms = parse_value(name, v)?
        }
        "log.cleanup.policy" => {
            broker.log_cleanup_policy = v.split(',').map(str::trim).collect::<Vec<_>>().join(",")
        }
        "log.flush.interval.messages" => broker.log_flush_interval_messages = parse_value(name, v)?,
        "log.flush.interval.ms" => broker.log_flush_interval_ms = Some(parse_value(name, v)?),
        "log.index.interval.bytes" => broker.log_index_interval_bytes = parse_value(name, v)?,
        "log.retention.bytes" => broker.log_retention_bytes = parse_value(name, v)?,
        "log.retention.ms" => broker.log_retention_ms = parse_value(name, v)?,
        "log.roll.ms" => broker.log_roll_ms = parse_value(name, v)?,
        "log.segment.bytes" => broker.log_segment_bytes = parse_value(name, v)?,
        "message.max.bytes" => broker.message_max_bytes = parse_value(name, v)?,
        "min.insync.replicas" => broker.min_insync_replicas = parse_value(name, v)?,
        _ => {
            return Err(InvalidConfig(format!(
                "Cannot update config {name} dynamically"
            )))
        }
    }
    Ok(())
}

/// The static settings with every dynamic default of `dynamic` applied; refuses the first
/// invalid entry.
pub fn with_dynamic(
    broker: &BrokerConfig,
    dynamic: &BTreeMap<String, String>,
) -> Result<BrokerConfig, InvalidConfig> {
    let mut out = broker.clone();
    for (k, v) in dynamic {
        set_dynamic(&mut out, k, v)?;
    }
    Ok(out)
}

fn parse_or<T: std::str::FromStr>(v: Option<String>, fallback: T) -> T {
    v.and_then(|s| s.trim().parse().ok()).unwrap_or(fallback)
}

/// The log settings a topic's configs give.
pub fn log_config(overrides: &BTreeMap<String, String>, broker: &BrokerConfig) -> LogConfig {
    let get = |name: &str| effective(overrides, broker, name);
    let d = LogConfig::default();
    let policy = get("cleanup.policy");
    LogConfig {
        segment_bytes: parse_or(get("segment.bytes"), d.segment_bytes),
        segment_ms: parse_or(get("segment.ms"), d.segment_ms),
        retention_ms: parse_or(get("retention.ms"), d.retention_ms),
        retention_bytes: parse_or(get("retention.bytes"), d.retention_bytes),
        index_interval_bytes: parse_or(get("index.interval.bytes"), d.index_interval_bytes),
        flush_messages: parse_or(get("flush.messages"), d.flush_messages),
        flush_ms: parse_or(get("flush.ms"), d.flush_ms),
        log_append_time: get("message.timestamp.type").as_deref() == Some("LogAppendTime"),
        cleanup_delete: policy.as_deref().is_none_or(|p| has_policy(p, "delete")),
        cleanup_compact: policy.as_deref().is_some_and(|p| has_policy(p, "compact")),
        min_cleanable_dirty_ratio: parse_or(
            get("min.cleanable.dirty.ratio"),
            d.min_cleanable_dirty_ratio,
        ),
        delete_retention_ms: parse_or(get("delete.retention.ms"), d.delete_retention_ms),
        min_compaction_lag_ms: parse_or(get("min.compaction.lag.ms"), d.min_compaction_lag_ms),
    }
}

/// Largest batch accepted for a topic.
pub fn max_message_bytes(overrides: &BTreeMap<String, String>, broker: &BrokerConfig) -> usize {
    parse_or(
        effective(overrides, broker, "max.message.bytes"),
        broker.message_max_bytes as usize,
    )
}

/// Whether a topic's `cleanup.policy` holds `compact` (its records then need keys).
pub fn is_compacted(overrides: &BTreeMap<String, String>, broker: &BrokerConfig) -> bool {
    effective(overrides, broker, "cleanup.policy").is_some_and(|p| has_policy(&p, "compact"))
}

/// min.insync.replicas of a topic.
pub fn min_insync_replicas(overrides: &BTreeMap<String, String>, broker: &BrokerConfig) -> i32 {
    parse_or(
        effective(overrides, broker, "min.insync.replicas"),
        broker.min_insync_replicas,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sorted_and_defaults_valid() {
        let broker = BrokerConfig::for_tests("/tmp/x".into());
        let names: Vec<_> = TOPIC_CONFIG_KEYS.iter().map(|k| k.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        for k in TOPIC_CONFIG_KEYS {
            validate(k.name, &k.default_value(&broker)).unwrap();
        }
    }

    #[test]
    fn validation_names_the_key() {
        let e = validate("retention.ms", "soon").unwrap_err();
        assert!(e.0.contains("retention.ms") && e.0.contains("soon"), "{e}");
        let e = validate("no.such.key", "1").unwrap_err();
        assert!(e.0.contains("no.such.key"));
        assert!(validate("retention.ms", "-2").is_err());
        assert!(validate("retention.ms", "-1").is_ok());
        for ok in ["delete", "compact", "compact,delete", "delete, compact"] {
            assert!(validate("cleanup.policy", ok).is_ok(), "{ok}");
        }
        for bad in ["", "compacted", "compact;delete", "delete,"] {
            let e = validate("cleanup.policy", bad).unwrap_err();
            assert!(e.0.contains("cleanup.policy"), "{e}");
        }
        for (key, ok, bad) in [
            ("min.cleanable.dirty.ratio", "0.01", "1.5"),
            ("delete.retention.ms", "1000", "-1"),
            ("min.compaction.lag.ms", "0", "soon"),
        ] {
            assert!(validate(key, ok).is_ok(), "{key}={ok}");
            let e = validate(key, bad).unwrap_err();
            assert!(e.0.contains(key) && e.0.contains(bad), "{e}");
        }
        assert!(validate("message.timestamp.type", "LogAppendTime").is_ok());
    }

    #[test]
    fn overrides_reach_the_log_config() {
        let broker = BrokerConfig::for_tests("/tmp/x".into());
        let mut o = BTreeMap::new();
        o.insert("segment.bytes".to_string(), "1024".to_string());
        o.insert(
            "message.timestamp.type".to_string(),
            "LogAppendTime".to_string(),
        );
        let c = log_config(&o, &broker);
        assert_eq!(c.segment_bytes, 1024);
        assert!(c.log_append_time);
        assert_eq!(c.retention_ms, 604_800_000);
        assert_eq!(max_message_bytes(&o, &broker), 1_048_588);
        assert!(c.cleanup_delete && !c.cleanup_compact);
        assert_eq!(c.min_cleanable_dirty_ratio, 0.5);
        assert_eq!(c.delete_retention_ms, 86_400_000);
        o.insert("cleanup.policy".into(), "compact".into());
        o.insert("min.cleanable.dirty.ratio".into(), "0.01".into());
        o.insert("delete.retention.ms".into(), "1500".into());
        o.insert("min.compaction.lag.ms".into(), "20".into());
        let c = log_config(&o, &broker);
        assert!(c.cleanup_compact && !c.cleanup_delete);
        assert_eq!(c.min_cleanable_dirty_ratio, 0.01);
        assert_eq!((c.delete_retention_ms, c.min_compaction_lag_ms), (1500, 20));
        o.insert("cleanup.policy".into(), "delete,compact".into());
        let c = log_config(&o, &broker);
        assert!(c.cleanup_compact && c.cleanup_delete);
    }

    #[test]
    fn dynamic_defaults_replace_the_flags() {
        for w in DYNAMIC_BROKER_KEYS.windows(2) {
            assert!(w[0] < w[1], "{} before {}", w[0], w[1]);
        }
        let broker = BrokerConfig::for_tests("/tmp/x".into());
        for k in DYNAMIC_BROKER_KEYS
            .iter()
            .filter(|k| !is_throttle_rate_key(k))
        {
            let topic_key = topic_key_for_broker(k).unwrap();
            let mut b = broker.clone();
            set_dynamic(&mut b, k, &topic_key.default_value(&broker)).unwrap();
        }
        let dynamic = BTreeMap::from([
            ("log.retention.ms".to_string(), "1234".to_string()),
            ("message.max.bytes".to_string(), "2000".to_string()),
            ("min.insync.replicas".to_string(), "2".to_string()),
            (
                "log.cleanup.policy".to_string(),
                "compact, delete".to_string(),
            ),
            ("log.flush.interval.ms".to_string(), "50".to_string()),
        ]);
        let b = with_dynamic(&broker, &dynamic).unwrap();
        let none = BTreeMap::new();
        assert_eq!(log_config(&none, &b).retention_ms, 1234);
        assert_eq!(max_message_bytes(&none, &b), 2000);
        assert_eq!(min_insync_replicas(&none, &b), 2);
        assert!(is_compacted(&none, &b));
        assert_eq!(log_config(&none, &b).flush_ms, 50);
        assert_eq!(b.log_cleanup_policy, "compact,delete");
        let own = BTreeMap::from([("retention.ms".to_string(), "99".to_string())]);
        assert_eq!(log_config(&own, &b).retention_ms, 99);

        let e = set_dynamic(&mut b.clone(), "num.partitions", "3").unwrap_err();
        assert!(e.0.contains("num.partitions"), "{e}");
        let e = set_dynamic(&mut b.clone(), "log.retention.ms", "soon").unwrap_err();
        assert!(
            e.0.contains("log.retention.ms") && e.0.contains("soon"),
            "{e}"
        );
        let e = set_dynamic(&mut b.clone(), "min.insync.replicas", "0").unwrap_err();
        assert!(e.0.contains("min.insync.replicas"), "{e}");
        assert!(set_dynamic(&mut b.clone(), "log.segment.bytes", "99999999999").is_err());
        assert!(with_dynamic(&broker, &BTreeMap::from([("x".into(), "1".into())])).is_err());
    }

    #[test]
    fn compaction_defaults_follow_broker_flags() {
        let mut broker = BrokerConfig::for_tests("/tmp/x".into());
        broker.log_cleanup_policy = "compact".into();
        broker.log_cleaner_min_cleanable_ratio = 0.25;
        broker.log_cleaner_delete_retention_ms = 5000;
        broker.log_cleaner_min_compaction_lag_ms = 7;
        let c = log_config(&BTreeMap::new(), &broker);
        assert!(c.cleanup_compact && !c.cleanup_delete);
        assert_eq!(c.min_cleanable_dirty_ratio, 0.25);
        assert_eq!((c.delete_retention_ms, c.min_compaction_lag_ms), (5000, 7));
        let ratio = key("min.cleanable.dirty.ratio").unwrap();
        assert_eq!(ratio.default_value(&broker), "0.25");
        assert_eq!(ratio.broker_synonym, "log.cleaner.min.cleanable.ratio");
    }

    #[test]
    fn throttle_configs_are_checked() {
        for k in [
            "leader.replication.throttled.replicas",
            "follower.replication.throttled.replicas",
        ] {
            for ok in ["*", "0:1,1:2", ""] {
                assert!(validate(k, ok).is_ok(), "{k}={ok}");
            }
            let e = validate(k, "0-1").unwrap_err();
            assert!(e.0.contains(k) && e.0.contains("0-1"), "{e}");
            assert_eq!(key(k).unwrap().broker_synonym, "");
            assert!(topic_key_for_broker(k).is_none());
        }
        let broker = BrokerConfig::for_tests("/tmp/x".into());
        for k in [
            throttle::LEADER_RATE,
            throttle::FOLLOWER_RATE,
            ALTER_LOG_DIRS_RATE,
        ] {
            assert!(is_dynamic_broker_key(k) && is_throttle_rate_key(k));
            let mut b = broker.clone();
            set_dynamic(&mut b, k, "1048576").unwrap();
            set_dynamic(&mut b, k, &i64::MAX.to_string()).unwrap();
            let e = set_dynamic(&mut b, k, "-1").unwrap_err();
            assert!(e.0.contains(k), "{e}");
            let e = set_dynamic(&mut b, k, "fast").unwrap_err();
            assert!(e.0.contains(k) && e.0.contains("fast"), "{e}");
        }
        assert!(!is_throttle_rate_key("log.retention.ms"));
    }
}
