//! The change between two metadata images, so a controller can stream a broker the full image
//! once and then only what changed: added or changed brokers and topics (a changed topic is sent
//! whole), removed ones, the broker defaults when they changed, the producer-id counter and the
//! new version. Pure data and functions: [`diff`] of (a, b) applied to a gives b.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::image::{BrokerRecord, MetadataImage, TopicRecord};
use crate::security::store::SecurityState;

/// What turns the image at `base_version` into the image at `version`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataDelta {
    /// The version of the image this delta applies to.
    pub base_version: u64,
    /// The version of the image it makes.
    pub version: u64,
    /// Brokers added or changed, whole.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub brokers: BTreeMap<i32, BrokerRecord>,
    /// Brokers removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_brokers: Vec<i32>,
    /// Topics added or changed, whole.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub topics: BTreeMap<String, TopicRecord>,
    /// Topics removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_topics: Vec<String>,
    /// The new broker defaults, when they changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_defaults: Option<BTreeMap<String, String>>,
    /// The producer-id counter of the new image.
    pub next_producer_id: i64,
    /// Per-broker dynamic configs that changed (whole per broker; empty: removed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub broker_configs: BTreeMap<i32, BTreeMap<String, String>>,
    /// SCRAM credentials and ACLs, whole, when they changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<SecurityState>,
}

/// A delta that does not fit the image it is applied to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("delta from version {base} does not apply to the image at version {have}")]
pub struct DeltaMismatch {
    /// The version the delta starts from.
    pub base: u64,
    /// The version of the image at hand.
    pub have: u64,
}

impl MetadataDelta {
    /// Whether the delta changes nothing but the version.
    pub fn is_empty(&self) -> bool {
        self.brokers.is_empty()
            && self.removed_brokers.is_empty()
            && self.topics.is_empty()
            && self.removed_topics.is_empty()
            && self.broker_defaults.is_none()
            && self.broker_configs.is_empty()
            && self.security.is_none()
    }
}

/// The change from `a` to `b`.
pub fn diff(a: &MetadataImage, b: &MetadataImage) -> MetadataDelta {
    let (brokers, removed_brokers) = diff_maps(&a.brokers, &b.brokers);
    let (topics, removed_topics) = diff_maps(&a.topics, &b.topics);
    MetadataDelta {
        base_version: a.version,
        version: b.version,
        brokers,
        removed_brokers,
        topics,
        removed_topics,
        broker_defaults: (a.broker_defaults != b.broker_defaults)
            .then(|| b.broker_defaults.clone()),
        next_producer_id: b.next_producer_id,
        broker_configs: {
            let (mut changed, removed) = diff_maps(&a.broker_configs, &b.broker_configs);
            changed.extend(removed.into_iter().map(|id| (id, BTreeMap::new())));
            changed
        },
        security: (a.security != b.security).then(|| b.security.clone()),
    }
}

/// Entries of `b` that `a` lacks or holds otherwise, and keys of `a` that `b` lacks.
fn diff_maps<K: Ord + Clone, V: PartialEq + Clone>(
    a: &BTreeMap<K, V>,
    b: &BTreeMap<K, V>,
) -> (BTreeMap<K, V>, Vec<K>) {
    let changed = b
        .iter()
        .filter(|(k, v)| a.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let removed = a.keys().filter(|k| !b.contains_key(*k)).cloned().collect();
    (changed, removed)
}

/// Applies `delta` to `image`, which must be at the delta's base version; on a mismatch the
/// image is left as it was.
pub fn apply_delta(image: &mut MetadataImage, delta: &MetadataDelta) -> Result<(), DeltaMismatch> {
    if image.version != delta.base_version {
        return Err(DeltaMismatch {
            base: delta.base_version,
            have: image.version,
        });
    }
    for id in &delta.removed_brokers {
        image.brokers.remove(id);
    }
    for (id, b) in &delta.brokers {
        image.brokers.insert(*id, b.clone());
    }
    for name in &delta.removed_topics {
        image.topics.remove(name);
    }
    for (name, t) in &delta.topics {
        image.topics.insert(name.clone(), t.clone());
    }
    if let Some(d) = &delta.broker_defaults {
        image.broker_defaults = d.clone();
    }
    for (id, configs) in &delta.broker_configs {
        if configs.is_empty() {
            image.broker_configs.remove(id);
        } else {
            image.broker_configs.insert(*id, configs.clone());
        }
    }
    if let Some(security) = &delta.security {
        image.security = security.clone();
    }
    image.next_producer_id = delta.next_producer_id;
    image.version = delta.version;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::{apply, MetadataCommand, PartitionRecord};
    use proptest::prelude::*;
    use uuid::Uuid;

    fn register(id: i32) -> MetadataCommand {
        MetadataCommand::RegisterBroker {
            id,
            host: format!("b{id}"),
            port: 9092,
            rack: None,
            incarnation_id: format!("i{id}"),
            replication: String::new(),
            listeners: Vec::new(),
        }
    }

    /// Three live brokers and topics t0..t{n} of three partitions each.
    fn cluster(topics: usize) -> MetadataImage {
        let mut image = MetadataImage::default();
        for id in 1..=3 {
            apply(&mut image, &register(id)).unwrap();
            apply(&mut image, &MetadataCommand::UnfenceBroker { id }).unwrap();
        }
        for t in 0..topics {
            let create = MetadataCommand::CreateTopic {
                name: format!("t{t}"),
                id: Uuid::from_u128(t as u128 + 1),
                assignment: vec![vec![1, 2, 3], vec![2, 3, 1], vec![3, 1, 2]],
                configs: BTreeMap::new(),
            };
            apply(&mut image, &create).unwrap();
        }
        image.version = 10;
        image
    }

    #[test]
    fn a_changed_isr_sends_one_topic() {
        let a = cluster(100);
        let mut b = a.clone();
        b.version = 11;
        let p = b.partition_mut("t7", 1).unwrap();
        p.isr = vec![2, 3];
        p.partition_epoch += 1;
        let d = diff(&a, &b);
        assert_eq!(d.topics.keys().collect::<Vec<_>>(), vec!["t7"]);
        assert!(d.brokers.is_empty() && d.removed_brokers.is_empty());
        assert!(d.removed_topics.is_empty() && d.broker_defaults.is_none());
        let full = serde_json::to_vec(&b).unwrap().len();
        let delta = serde_json::to_vec(&d).unwrap().len();
        println!("100 topics x 3 partitions, one ISR change: image {full} bytes, delta {delta}");
        assert!(delta * 20 < full, "delta {delta} bytes, image {full}");
        let mut c = a.clone();
        apply_delta(&mut c, &d).unwrap();
        assert_eq!(c, b);
    }

    #[test]
    fn removals_defaults_and_producer_ids_travel() {
        let a = cluster(3);
        let mut b = a.clone();
        b.version = 20;
        b.brokers.remove(&2);
        b.topics.remove("t1");
        b.broker_defaults
            .insert("log.retention.ms".into(), "1000".into());
        b.next_producer_id = 5000;
        let d = diff(&a, &b);
        assert_eq!(d.removed_brokers, vec![2]);
        assert_eq!(d.removed_topics, vec!["t1".to_string()]);
        assert_eq!(d.broker_defaults.as_ref(), Some(&b.broker_defaults));
        assert!(!d.is_empty());
        let mut c = a.clone();
        apply_delta(&mut c, &d).unwrap();
        assert_eq!(c, b);
        // Defaults cleared entirely are sent as an empty map, not left out.
        let d2 = diff(&b, &a);
        assert_eq!(d2.broker_defaults, Some(BTreeMap::new()));
    }

    #[test]
    fn a_delta_for_another_version_is_refused_and_changes_nothing() {
        let a = cluster(1);
        let mut b = a.clone();
        b.version = 12;
        b.topics.clear();
        let d = diff(&a, &b);
        let mut other = a.clone();
        other.version = 11;
        let before = other.clone();
        assert_eq!(
            apply_delta(&mut other, &d),
            Err(DeltaMismatch { base: 10, have: 11 })
        );
        assert_eq!(other, before);
    }

    #[test]
    fn equal_images_make_an_empty_delta_that_survives_json() {
        let a = cluster(2);
        let mut b = a.clone();
        b.version = 11;
        let d = diff(&a, &b);
        assert!(d.is_empty());
        let json = serde_json::to_vec(&d).unwrap();
        let back: MetadataDelta = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, d);
    }

    fn arb_broker() -> impl Strategy<Value = BrokerRecord> {
        (any::<bool>(), 0u64..4, prop::option::of("[ab]")).prop_map(|(fenced, epoch, rack)| {
            BrokerRecord {
                host: "h".into(),
                port: 9092,
                rack,
                incarnation_id: format!("i{epoch}"),
                replication: String::new(),
                epoch,
                fenced,
                listeners: Vec::new(),
            }
        })
    }

    fn arb_topic() -> impl Strategy<Value = TopicRecord> {
        let partition =
            (prop::collection::vec(1i32..4, 1..3), 0i32..3).prop_map(|(isr, e)| PartitionRecord {
                replicas: vec![1, 2, 3],
                leader: isr[0],
                isr,
                leader_epoch: e,
                partition_epoch: e,
                reassignment: None,
            });
        (
            0u128..3,
            prop::collection::btree_map("[xy]", "[01]", 0..2),
            prop::collection::vec(partition, 1..3),
        )
            .prop_map(|(id, configs, partitions)| TopicRecord {
                id: Uuid::from_u128(id),
                configs,
                partitions,
            })
    }

    fn arb_image() -> impl Strategy<Value = MetadataImage> {
        (
            0u64..1000,
            prop::collection::btree_map(0i32..5, arb_broker(), 0..4),
            prop::collection::btree_map("t[0-4]", arb_topic(), 0..4),
            prop::collection::btree_map("[pq]", "[01]", 0..2),
            0i64..3,
            prop::collection::btree_map(
                0i32..3,
                prop::collection::btree_map("[pq]", "[01]", 1..3),
                0..3,
            ),
        )
            .prop_map(
                |(version, brokers, topics, broker_defaults, next, broker_configs)| MetadataImage {
                    version,
                    brokers,
                    topics,
                    broker_defaults,
                    next_producer_id: next * 1000,
                    broker_configs,
                    security: SecurityState::default(),
                },
            )
    }

    proptest! {
        #[test]
        fn the_delta_of_a_and_b_turns_a_into_b(a in arb_image(), b in arb_image()) {
            let d = diff(&a, &b);
            // Through JSON, as it travels.
            let d: MetadataDelta = serde_json::from_slice(&serde_json::to_vec(&d).unwrap()).unwrap();
            let mut c = a.clone();
            prop_assert!(apply_delta(&mut c, &d).is_ok());
            prop_assert_eq!(&c, &b);
            // A delta names nothing that did not change.
            for (id, broker) in &d.brokers {
                prop_assert_ne!(a.brokers.get(id), Some(broker));
            }
            for (name, topic) in &d.topics {
                prop_assert_ne!(a.topics.get(name), Some(topic));
            }
        }
    }
}
