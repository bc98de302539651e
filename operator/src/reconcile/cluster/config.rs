//! Step "dynamic config": the dynamic settings of `spec.config` reach the running brokers as
//! cluster-wide dynamic defaults (like `kafka-configs --entity-default`). What to change is
//! derived from the spec and from what the brokers report (DescribeConfigs on the BROKER
//! resource ""), never from a diff against the ConfigMap, which the objects step has already
//! overwritten; so a change the brokers refused, or one made while they were down, is retried
//! on every reconcile until they report it.

use std::collections::BTreeMap;

use kube::runtime::events::EventType;

use super::super::Context;
use crate::crd::KafkaCluster;
use crate::kafka::{ConfigEntry, RESOURCE_BROKER};
use crate::plan::broker_config::{dynamic_settings, update_mode, UpdateMode};

/// DescribeConfigs source of a cluster-wide dynamic default.
const SOURCE_DYNAMIC_DEFAULT: i8 = 3;

/// What to SET and what to DELETE so the brokers' dynamic defaults match `desired`: a desired
/// value the brokers do not have in force is set; a dynamic default the operator manages (a
/// dynamic key of `spec.config`'s table) that the spec no longer gives is deleted.
pub fn dynamic_delta(
    desired: &BTreeMap<String, String>,
    reported: &[ConfigEntry],
) -> (BTreeMap<String, String>, Vec<String>) {
    let set = desired
        .iter()
        .filter(|(k, v)| {
            reported
                .iter()
                .find(|e| &e.name == *k)
                .is_none_or(|e| e.value.as_deref() != Some(v.as_str()))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let delete = reported
        .iter()
        .filter(|e| e.source == SOURCE_DYNAMIC_DEFAULT)
        .filter(|e| update_mode(&e.name) == Some(UpdateMode::Dynamic))
        .filter(|e| !desired.contains_key(&e.name))
        .map(|e| e.name.clone())
        .collect();
    (set, delete)
}

/// Brings the brokers' dynamic defaults to the spec. `Err` with a sentence when they could not
/// be read or refused the change (the caller retries soon).
pub(super) async fn sync(kc: &KafkaCluster, ctx: &Context, bootstrap: &str) -> Result<(), String> {
    let desired = dynamic_settings(&kc.spec.config);
    let admin = ctx.admin(bootstrap);
    let reported = admin
        .describe_configs(RESOURCE_BROKER, "")
        .await
        .map_err(|e| format!("cannot read the brokers' dynamic settings: {e}"))?;
    let (set, delete) = dynamic_delta(&desired, &reported);
    if set.is_empty() && delete.is_empty() {
        return Ok(());
    }
    let keys = set
        .keys()
        .cloned()
        .chain(delete.iter().cloned())
        .collect::<Vec<_>>()
        .join(", ");
    match admin
        .alter_configs(RESOURCE_BROKER, "", &set, &delete)
        .await
    {
        Ok(()) => {
            ctx.event(
                kc,
                EventType::Normal,
                "ConfigUpdated",
                format!("applied {keys} to the running brokers without a restart"),
            )
            .await;
            Ok(())
        }
        Err(e) => {
            let message = format!("the brokers did not take {keys} ({e}); retrying");
            ctx.event(kc, EventType::Warning, "ConfigNotApplied", message.clone())
                .await;
            Err(message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, value: &str, source: i8) -> ConfigEntry {
        ConfigEntry {
            name: name.into(),
            value: Some(value.into()),
            source,
            read_only: false,
        }
    }

    #[test]
    fn delta_from_what_the_brokers_report() {
        let desired: BTreeMap<String, String> = [
            ("log.retention.ms".to_string(), "5000".to_string()),
            ("min.insync.replicas".to_string(), "2".to_string()),
        ]
        .into();
        let reported = vec![
            // In force already (from the flag): nothing to do.
            entry("min.insync.replicas", "2", 4),
            // A stale dynamic default: set.
            entry("log.retention.ms", "1000", SOURCE_DYNAMIC_DEFAULT),
            // A dynamic default the spec no longer gives: deleted.
            entry("message.max.bytes", "2000", SOURCE_DYNAMIC_DEFAULT),
            // Not a dynamic default, or not a key the operator manages: left alone.
            entry("log.segment.bytes", "1000", 4),
            entry("unknown.key", "1", SOURCE_DYNAMIC_DEFAULT),
        ];
        let (set, delete) = dynamic_delta(&desired, &reported);
        assert_eq!(
            set,
            [("log.retention.ms".to_string(), "5000".to_string())].into()
        );
        assert_eq!(delete, vec!["message.max.bytes".to_string()]);
        // Once the brokers report it, nothing more.
        let reported = vec![
            entry("min.insync.replicas", "2", 4),
            entry("log.retention.ms", "5000", SOURCE_DYNAMIC_DEFAULT),
        ];
        let (set, delete) = dynamic_delta(&desired, &reported);
        assert!(set.is_empty() && delete.is_empty());
    }
}
