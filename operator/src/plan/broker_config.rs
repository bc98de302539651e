//! The broker settings a `KafkaCluster` may give in `spec.config`: how each reaches the broker
//! (an environment variable of `samsa-broker`) and whether changing it needs a restart.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// How a broker setting takes a new value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateMode {
    /// Read at start: a change restarts the brokers.
    Restart,
    /// Cluster-wide dynamic: the brokers apply it live (IncrementalAlterConfigs on the BROKER
    /// resource "") as the default of every topic without an override of its own.
    Dynamic,
}

/// Broker settings by Kafka name, as `samsa-broker` takes them (`--help`), with their update
/// mode: `Dynamic` exactly for the keys `samsa-broker` applies live (the broker-level defaults of
/// topic configs, and the replication throttle rates, which have no flag and are only ever
/// dynamic), `Restart` for everything else, even where Kafka changes it live.
pub const BROKER_KEYS: &[(&str, UpdateMode)] = &[
    ("auto.create.topics.enable", UpdateMode::Restart),
    ("broker.heartbeat.interval.ms", UpdateMode::Restart),
    ("broker.session.timeout.ms", UpdateMode::Restart),
    ("controlled.shutdown.timeout.ms", UpdateMode::Restart),
    ("default.replication.factor", UpdateMode::Restart),
    ("follower.replication.throttled.rate", UpdateMode::Dynamic),
    ("group.initial.rebalance.delay.ms", UpdateMode::Restart),
    ("group.max.session.timeout.ms", UpdateMode::Restart),
    ("group.min.session.timeout.ms", UpdateMode::Restart),
    ("leader.replication.throttled.rate", UpdateMode::Dynamic),
    ("log.cleaner.backoff.ms", UpdateMode::Restart),
    ("log.cleaner.delete.retention.ms", UpdateMode::Dynamic),
    ("log.cleaner.enable", UpdateMode::Restart),
    ("log.cleaner.min.cleanable.ratio", UpdateMode::Dynamic),
    ("log.cleaner.min.compaction.lag.ms", UpdateMode::Dynamic),
    ("log.cleanup.policy", UpdateMode::Dynamic),
    ("log.flush.interval.messages", UpdateMode::Dynamic),
    ("log.flush.interval.ms", UpdateMode::Dynamic),
    ("log.index.interval.bytes", UpdateMode::Dynamic),
    ("log.retention.bytes", UpdateMode::Dynamic),
    ("log.retention.check.interval.ms", UpdateMode::Restart),
    ("log.retention.ms", UpdateMode::Dynamic),
    ("log.roll.ms", UpdateMode::Dynamic),
    ("log.segment.bytes", UpdateMode::Dynamic),
    ("message.max.bytes", UpdateMode::Dynamic),
    ("min.insync.replicas", UpdateMode::Dynamic),
    ("num.partitions", UpdateMode::Restart),
    ("offsets.topic.num.partitions", UpdateMode::Restart),
    ("offsets.topic.replication.factor", UpdateMode::Restart),
    (
        "producer.id.expiration.check.interval.ms",
        UpdateMode::Restart,
    ),
    ("producer.id.expiration.ms", UpdateMode::Restart),
    ("replica.fetch.max.bytes", UpdateMode::Restart),
    ("replica.fetch.wait.max.ms", UpdateMode::Restart),
    ("replica.lag.time.max.ms", UpdateMode::Restart),
    ("socket.request.max.bytes", UpdateMode::Restart),
];

/// The update mode of a broker setting; `None` for a key `samsa-broker` does not take.
pub fn update_mode(key: &str) -> Option<UpdateMode> {
    BROKER_KEYS
        .binary_search_by(|(k, _)| (*k).cmp(key))
        .ok()
        .and_then(|i| BROKER_KEYS.get(i))
        .map(|(_, mode)| *mode)
}

/// True when changing `key` needs the brokers restarted. Unknown keys count as static.
pub fn needs_restart(key: &str) -> bool {
    update_mode(key) != Some(UpdateMode::Dynamic)
}

/// What values a setting takes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ValueKind {
    Bool,
    /// A 32-bit integer at least this.
    Int(i64),
    /// A 64-bit integer at least this.
    Long(i64),
    /// A ratio in 0..=1.
    Ratio,
    /// `delete`, `compact` or both, comma-separated.
    CleanupPolicy,
}

fn value_kind(key: &str) -> Option<ValueKind> {
    use ValueKind::*;
    Some(match key {
        "auto.create.topics.enable" | "log.cleaner.enable" => Bool,
        "log.cleaner.min.cleanable.ratio" => Ratio,
        "log.cleanup.policy" => CleanupPolicy,
        "log.retention.ms" | "log.retention.bytes" => Long(-1),
        "controlled.shutdown.timeout.ms"
        | "log.cleaner.delete.retention.ms"
        | "log.cleaner.min.compaction.lag.ms"
        | "follower.replication.throttled.rate"
        | "leader.replication.throttled.rate" => Long(0),
        "log.roll.ms"
        | "log.flush.interval.messages"
        | "log.flush.interval.ms"
        | "log.cleaner.backoff.ms"
        | "log.retention.check.interval.ms"
        | "producer.id.expiration.ms"
        | "producer.id.expiration.check.interval.ms"
        | "replica.lag.time.max.ms" => Long(1),
        "group.initial.rebalance.delay.ms" | "log.index.interval.bytes" | "message.max.bytes" => {
            Int(0)
        }
        "log.segment.bytes" => Int(14),
        "broker.heartbeat.interval.ms"
        | "broker.session.timeout.ms"
        | "default.replication.factor"
        | "group.max.session.timeout.ms"
        | "group.min.session.timeout.ms"
        | "min.insync.replicas"
        | "num.partitions"
        | "offsets.topic.num.partitions"
        | "offsets.topic.replication.factor"
        | "replica.fetch.max.bytes"
        | "replica.fetch.wait.max.ms"
        | "socket.request.max.bytes" => Int(1),
        _ => return None,
    })
}

/// Checks a `spec.config` value against the setting's type and range; the error says what the
/// setting takes. Keys without a known type pass (the broker judges them at start).
pub fn check_value(key: &str, value: &str) -> Result<(), String> {
    let Some(kind) = value_kind(key) else {
        return Ok(());
    };
    let v = value.trim();
    match kind {
        ValueKind::Bool => match v {
            "true" | "false" => Ok(()),
            _ => Err("must be true or false".into()),
        },
        ValueKind::Int(min) | ValueKind::Long(min) => {
            let max = if matches!(kind, ValueKind::Int(_)) {
                i64::from(i32::MAX)
            } else {
                i64::MAX
            };
            match v.parse::<i64>() {
                Ok(n) if n >= min && n <= max => Ok(()),
                _ => Err(format!("must be an integer between {min} and {max}")),
            }
        }
        ValueKind::Ratio => match v.parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => Ok(()),
            _ => Err("must be a number between 0 and 1".into()),
        },
        ValueKind::CleanupPolicy => {
            let ok = !v.is_empty()
                && v.split(',')
                    .all(|p| matches!(p.trim(), "delete" | "compact"));
            if ok {
                Ok(())
            } else {
                Err("must be delete, compact or compact,delete".into())
            }
        }
    }
}

/// The environment variable `samsa-broker` reads a setting from: `log.retention.ms` →
/// `SAMSA_LOG_RETENTION_MS`.
pub fn env_name(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 6);
    out.push_str("SAMSA_");
    for c in key.chars() {
        out.push(match c {
            '.' | '-' => '_',
            c => c.to_ascii_uppercase(),
        });
    }
    out
}

/// A stable hash of the settings whose change needs a restart, plus `extra` (e.g. the image):
/// it goes into a pod-template annotation, so only such a change rolls the brokers.
pub fn static_config_hash(config: &BTreeMap<String, String>, extra: &[(&str, &str)]) -> String {
    let mut h = Sha256::new();
    for (k, v) in config.iter().filter(|(k, _)| needs_restart(k)) {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    for (k, v) in extra {
        h.update(b"@");
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    h.finalize()
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The settings of `config` that are dynamic, for applying to running brokers.
pub fn dynamic_settings(config: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    config
        .iter()
        .filter(|(k, _)| !needs_restart(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        for w in BROKER_KEYS.windows(2) {
            assert!(w[0].0 < w[1].0, "{} before {}", w[0].0, w[1].0);
        }
        assert_eq!(BROKER_KEYS.len(), 35);
    }

    #[test]
    fn classifier() {
        assert_eq!(update_mode("log.retention.ms"), Some(UpdateMode::Dynamic));
        assert_eq!(update_mode("num.partitions"), Some(UpdateMode::Restart));
        assert_eq!(update_mode("nope"), None);
        // Only dynamic in Kafka too: applied live as the cluster-wide default.
        assert!(!needs_restart("follower.replication.throttled.rate"));
        assert!(!needs_restart("leader.replication.throttled.rate"));
        // Kafka changes it live; samsa-broker reads it once at start.
        assert_eq!(
            update_mode("log.cleaner.backoff.ms"),
            Some(UpdateMode::Restart)
        );
        assert!(!needs_restart("min.insync.replicas"));
        assert!(needs_restart("replica.lag.time.max.ms"));
        assert!(needs_restart("nope"));
    }

    #[test]
    fn dynamic_keys_are_the_ones_the_broker_applies_live() {
        let dynamic: Vec<&str> = BROKER_KEYS
            .iter()
            .filter(|(_, m)| *m == UpdateMode::Dynamic)
            .map(|(k, _)| *k)
            .collect();
        assert_eq!(
            dynamic,
            vec![
                "follower.replication.throttled.rate",
                "leader.replication.throttled.rate",
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
            ]
        );
    }

    #[test]
    fn every_key_has_a_value_type() {
        for (key, _) in BROKER_KEYS {
            assert!(value_kind(key).is_some(), "{key}");
        }
    }

    #[test]
    fn values_are_checked_by_type_and_range() {
        assert_eq!(check_value("min.insync.replicas", "2"), Ok(()));
        assert!(check_value("min.insync.replicas", "two")
            .unwrap_err()
            .contains("integer between 1 and 2147483647"));
        assert!(check_value("min.insync.replicas", "0").is_err());
        assert!(check_value("message.max.bytes", "99999999999").is_err());
        assert_eq!(check_value("log.retention.ms", "-1"), Ok(()));
        assert!(check_value("log.retention.ms", "-2").is_err());
        assert_eq!(check_value("log.cleanup.policy", "compact,delete"), Ok(()));
        assert!(check_value("log.cleanup.policy", "forever").is_err());
        assert_eq!(check_value("log.cleaner.enable", "true"), Ok(()));
        assert!(check_value("log.cleaner.enable", "yes").is_err());
        assert!(check_value("log.cleaner.min.cleanable.ratio", "1.5").is_err());
        assert_eq!(
            check_value("log.cleaner.min.cleanable.ratio", "0.5"),
            Ok(())
        );
    }

    #[test]
    fn env_names() {
        assert_eq!(env_name("log.retention.ms"), "SAMSA_LOG_RETENTION_MS");
        assert_eq!(
            env_name("log.cleaner.min.cleanable.ratio"),
            "SAMSA_LOG_CLEANER_MIN_CLEANABLE_RATIO"
        );
    }

    #[test]
    fn hash_moves_only_with_static_settings() {
        let mut c = BTreeMap::new();
        c.insert("num.partitions".to_string(), "3".to_string());
        c.insert("log.retention.ms".to_string(), "1000".to_string());
        let base = static_config_hash(&c, &[("image", "a")]);
        assert_eq!(base.len(), 24);
        assert_eq!(base, static_config_hash(&c, &[("image", "a")]));

        let mut dynamic = c.clone();
        dynamic.insert("log.retention.ms".into(), "2000".into());
        dynamic.insert("min.insync.replicas".into(), "2".into());
        assert_eq!(base, static_config_hash(&dynamic, &[("image", "a")]));

        let mut stat = c.clone();
        stat.insert("num.partitions".into(), "4".into());
        assert_ne!(base, static_config_hash(&stat, &[("image", "a")]));
        assert_ne!(base, static_config_hash(&c, &[("image", "b")]));
        assert_eq!(
            dynamic_settings(&dynamic).keys().collect::<Vec<_>>(),
            vec!["log.retention.ms", "min.insync.replicas"]
        );
    }
}
