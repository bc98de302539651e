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
