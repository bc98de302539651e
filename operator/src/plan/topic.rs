//! Topic planning: from a `KafkaTopic` spec and the topic as the cluster reports it, the admin
//! actions that bring the cluster to the spec. Pure.

use std::collections::BTreeMap;

use super::rebalance::{change_replication_factor, BrokerInfo};
use crate::crd::{KafkaTopic, KafkaTopicSpec, PartitionStatus, Replicas};

/// A topic as observed through Metadata and DescribeConfigs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObservedTopic {
    /// Topic id, when the broker reports one.
    pub topic_id: Option<String>,
    /// Partitions ordered by index.
    pub partitions: Vec<PartitionStatus>,
    /// Topic-level config overrides (not broker defaults).
    pub config: BTreeMap<String, String>,
}

impl ObservedTopic {
    /// Partition count.
    pub fn partition_count(&self) -> i32 {
        i32::try_from(self.partitions.len()).unwrap_or(i32::MAX)
    }

    /// Replication factor: the replica count of partition 0 (Kafka keeps it uniform).
    pub fn replication_factor(&self) -> Option<i32> {
        self.partitions
            .first()
            .map(|p| i32::try_from(p.replicas.len()).unwrap_or(i32::MAX))
    }
}

/// The KafkaTopic, among `all` (the KafkaTopics of `me`'s namespace), that manages the Kafka
/// topic `me` names when it is not `me`: the oldest of those naming the same topic in the same
/// cluster (creation time, then name). A later duplicate does nothing to the topic and reports
/// the one that manages it.
pub fn managed_by_other<'a>(me: &KafkaTopic, all: &'a [KafkaTopic]) -> Option<&'a KafkaTopic> {
    let key = |t: &KafkaTopic| {
        (
            t.metadata.creation_timestamp.as_ref().map(|c| c.0),
            t.metadata.name.clone(),
        )
    };
    let topic = me.topic_name();
    all.iter()
        .filter(|t| t.spec.cluster_ref.name == me.spec.cluster_ref.name && t.topic_name() == topic)
        .min_by_key(|t| key(t))
        .filter(|owner| owner.metadata.name != me.metadata.name)
}

/// One step towards the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicAction {
    /// CreateTopics: with `assignment` when given (then partitions/RF follow from it).
    Create {
        /// Partition count.
        partitions: i32,
        /// Replicas per partition.
        replication_factor: i32,
        /// Explicit replicas per partition.
        assignment: Option<Vec<Replicas>>,
        /// Config overrides.
        config: BTreeMap<String, String>,
    },
    /// CreatePartitions up to `total`, with the new partitions' replicas when assigned.
    CreatePartitions {
        /// New partition count.
        total: i32,
        /// Replicas of the new partitions (indices `observed..total`), in order.
        assignment: Option<Vec<Replicas>>,
    },
    /// IncrementalAlterConfigs: `set` (SET) and `delete` (DELETE, back to the default).
    AlterConfigs {
        /// Keys to set with their values.
        set: BTreeMap<String, String>,
        /// Keys to reset to the broker default.
        delete: Vec<String>,
    },
    /// The spec asks for fewer partitions than the topic has: refused, reported.
    RefuseDecrease {
        /// Partitions the topic has.
        observed: i32,
        /// Partitions the spec asks for.
        desired: i32,
    },
    /// The spec asks for another replication factor: replicas are added or removed by
    /// reassignment (the reconcile picks the brokers, [`replication_targets`]).
    ChangeReplicationFactor {
        /// The topic's replication factor.
        observed: i32,
        /// The spec's replication factor.
        desired: i32,
    },
    /// `spec.assignment` places existing partitions' replicas elsewhere than they are: they
    /// move by reassignment.
    Reassign {
        /// Partition → its replicas as `spec.assignment` lists them.
        partitions: BTreeMap<i32, Vec<i32>>,
    },
    /// The topic matches the spec.
    Nothing,
}

impl TopicAction {
    /// Whether the action moves replicas (a reassignment).
    pub fn moves_replicas(&self) -> bool {
        matches!(
            self,
            TopicAction::Reassign { .. } | TopicAction::ChangeReplicationFactor { .. }
        )
    }

    /// A condition message for refusals; `None` for actions.
    pub fn refusal(&self) -> Option<String> {
        match self {
            TopicAction::RefuseDecrease { observed, desired } => Some(format!(
                "spec.partitions is {desired} but the topic has {observed} partitions: Kafka cannot remove partitions"
            )),
            _ => None,
        }
    }
}

/// Topic configs set while replicas move, never removed for being absent from the spec.
pub const MOVE_THROTTLE_KEYS: &[&str] = &[
    "leader.replication.throttled.replicas",
    "follower.replication.throttled.replicas",
];

/// The actions that bring `observed` (absent: no such topic) to `spec`, in the order to run
/// them. Refusals come last and do not stop the other actions.
pub fn plan_topic(spec: &KafkaTopicSpec, observed: Option<&ObservedTopic>) -> Vec<TopicAction> {
    let Some(observed) = observed else {
        return vec![TopicAction::Create {
            partitions: spec.partitions,
            replication_factor: spec.replication_factor,
            assignment: spec.assignment.clone(),
            config: spec.config.clone(),
        }];
    };
    let mut actions = Vec::new();
    let mut refusals = Vec::new();
    let have = observed.partition_count();
    if spec.partitions > have {
        let assignment = spec.assignment.as_ref().map(|a| {
            a.iter()
                .skip(usize::try_from(have).unwrap_or(0))
                .cloned()
                .collect::<Vec<_>>()
        });
        actions.push(TopicAction::CreatePartitions {
            total: spec.partitions,
            assignment,
        });
    } else if spec.partitions < have {
        refusals.push(TopicAction::RefuseDecrease {
            observed: have,
            desired: spec.partitions,
        });
    }
    if let Some(assignment) = &spec.assignment {
        // The assignment names every replica (its lists have the spec's replication factor).
        let moved: BTreeMap<i32, Vec<i32>> = observed
            .partitions
            .iter()
            .zip(assignment)
            .filter(|(p, wanted)| &p.replicas != *wanted)
            .map(|(p, wanted)| (p.partition, wanted.clone()))
            .collect();
        if !moved.is_empty() {
            actions.push(TopicAction::Reassign { partitions: moved });
        }
    } else if let Some(rf) = observed.replication_factor() {
        if rf != spec.replication_factor {
            actions.push(TopicAction::ChangeReplicationFactor {
                observed: rf,
                desired: spec.replication_factor,
            });
        }
    }
    let set: BTreeMap<String, String> = spec
        .config
        .iter()
        .filter(|(k, v)| observed.config.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // The throttled-replica lists belong to whoever moves replicas (the cluster's rebalance,
    // `kafka-reassign-partitions --throttle`): kept unless the spec names them.
    let delete: Vec<String> = observed
        .config
        .keys()
        .filter(|k| !spec.config.contains_key(*k) && !MOVE_THROTTLE_KEYS.contains(&k.as_str()))
        .cloned()
        .collect();
    if !set.is_empty() || !delete.is_empty() {
        actions.push(TopicAction::AlterConfigs { set, delete });
    }
    actions.extend(refusals);
    if actions.is_empty() {
        actions.push(TopicAction::Nothing);
    }
    actions
}

/// The replicas of each partition of `observed` at replication factor `rf` over `brokers`:
/// growing adds the least-loaded brokers (racks not used yet first), shrinking drops replicas
/// but keeps the leader; the load counts this topic's replicas as they are placed. Only the
/// partitions that change are listed. `Err` names what is wrong (for a condition).
pub fn replication_targets(
    observed: &ObservedTopic,
    rf: i32,
    brokers: &[BrokerInfo],
) -> Result<BTreeMap<i32, Vec<i32>>, String> {
    let rf = usize::try_from(rf).map_err(|_| format!("replication factor {rf} is negative"))?;
    let mut load: BTreeMap<i32, usize> = brokers.iter().map(|b| (b.id, 0)).collect();
    for p in &observed.partitions {
        for r in &p.replicas {
            *load.entry(*r).or_default() += 1;
        }
    }
    let mut out = BTreeMap::new();
    for p in &observed.partitions {
        if p.replicas.len() == rf {
            continue;
        }
        let leader = (p.leader >= 0).then_some(p.leader);
        let target = change_replication_factor(&p.replicas, leader, rf, brokers, &load)
            .map_err(|e| format!("partition {}: {e}", p.partition))?;
        for r in &p.replicas {
            if let Some(n) = load.get_mut(r) {
                *n = n.saturating_sub(1);
            }
        }
        for r in &target {
            *load.entry(*r).or_default() += 1;
        }
        out.insert(p.partition, target);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(partitions: i32, rf: i32) -> KafkaTopicSpec {
        let mut s: KafkaTopicSpec =
            serde_json::from_value(serde_json::json!({"clusterRef": {"name": "kc"}})).unwrap();
        s.partitions = partitions;
        s.replication_factor = rf;
        s
    }

    fn observed(partitions: i32, rf: i32) -> ObservedTopic {
        ObservedTopic {
            topic_id: None,
            partitions: (0..partitions)
                .map(|p| PartitionStatus {
                    partition: p,
                    leader: 0,
                    replicas: (0..rf).collect(),
                    isr: (0..rf).collect(),
                })
                .collect(),
            config: BTreeMap::new(),
        }
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn absent_topic_is_created_with_everything() {
        let mut s = spec(2, 2);
        s.config = map(&[("retention.ms", "1000")]);
        s.assignment = Some(vec![vec![0, 1], vec![1, 0]]);
        assert_eq!(
            plan_topic(&s, None),
            vec![TopicAction::Create {
                partitions: 2,
                replication_factor: 2,
                assignment: Some(vec![vec![0, 1], vec![1, 0]]),
                config: map(&[("retention.ms", "1000")]),
            }]
        );
    }

    #[test]
    fn matching_topic_needs_nothing() {
        let mut s = spec(3, 2);
        s.config = map(&[("retention.ms", "1000")]);
        let mut o = observed(3, 2);
        o.config = map(&[("retention.ms", "1000")]);
        assert_eq!(plan_topic(&s, Some(&o)), vec![TopicAction::Nothing]);
    }

    #[test]
    fn partitions_grow() {
        assert_eq!(
            plan_topic(&spec(5, 2), Some(&observed(3, 2))),
            vec![TopicAction::CreatePartitions {
                total: 5,
                assignment: None
            }]
        );
    }

    #[test]
    fn grown_partitions_take_their_assignment_entries() {
        let mut s = spec(4, 2);
        // Partitions 0 and 1 as they are ([0, 1] each), two new ones.
        s.assignment = Some(vec![vec![0, 1], vec![0, 1], vec![2, 0], vec![0, 2]]);
        assert_eq!(
            plan_topic(&s, Some(&observed(2, 2))),
            vec![TopicAction::CreatePartitions {
                total: 4,
                assignment: Some(vec![vec![2, 0], vec![0, 2]]),
            }]
        );
    }

    #[test]
    fn decrease_is_refused_but_config_still_applies() {
        let mut s = spec(2, 2);
        s.config = map(&[("cleanup.policy", "compact")]);
        let actions = plan_topic(&s, Some(&observed(4, 2)));
        assert_eq!(
            actions,
            vec![
                TopicAction::AlterConfigs {
                    set: map(&[("cleanup.policy", "compact")]),
                    delete: vec![],
                },
                TopicAction::RefuseDecrease {
                    observed: 4,
                    desired: 2
                },
            ]
        );
        assert_eq!(
            actions[1].refusal().unwrap(),
            "spec.partitions is 2 but the topic has 4 partitions: Kafka cannot remove partitions"
        );
        assert_eq!(actions[0].refusal(), None);
    }

    #[test]
    fn a_replication_change_is_carried_out() {
        let actions = plan_topic(&spec(1, 3), Some(&observed(1, 2)));
        assert_eq!(
            actions,
            vec![TopicAction::ChangeReplicationFactor {
                observed: 2,
                desired: 3
            }]
        );
        assert_eq!(actions[0].refusal(), None);
    }

    #[test]
    fn replication_targets_grow_onto_the_least_loaded_and_shrink_keeping_leaders() {
        let brokers: Vec<BrokerInfo> = (0..4).map(|id| BrokerInfo { id, rack: None }).collect();
        let part = |partition, leader, replicas: &[i32]| PartitionStatus {
            partition,
            leader,
            replicas: replicas.to_vec(),
            isr: replicas.to_vec(),
        };
        let o = ObservedTopic {
            topic_id: None,
            partitions: vec![part(0, 2, &[2, 0]), part(1, 1, &[1, 0])],
            config: BTreeMap::new(),
        };
        // RF 3: partition 0 takes broker 1 or 3 (neither holds any of it), partition 1 then
        // the broker partition 0 left; each keeps its replicas and their order.
        let grown = replication_targets(&o, 3, &brokers).unwrap();
        assert_eq!(grown.len(), 2);
        for (p, before) in [(0, vec![2, 0]), (1, vec![1, 0])] {
            let after = &grown[&p];
            assert_eq!(after.len(), 3);
            assert_eq!(&after[..2], &before[..], "kept in order");
        }
        assert_eq!(grown[&0][2], 3, "broker 3 holds nothing yet");
        assert_eq!(grown[&1][2], 2, "then broker 2 is among the least loaded");
        // RF 1: the leaders stay.
        let shrunk = replication_targets(&o, 1, &brokers).unwrap();
        assert_eq!(shrunk, BTreeMap::from([(0, vec![2]), (1, vec![1])]));
        // Nothing to do at the same RF; too many replicas for the brokers is refused.
        assert!(replication_targets(&o, 2, &brokers).unwrap().is_empty());
        let err = replication_targets(&o, 5, &brokers).unwrap_err();
        assert!(err.starts_with("partition 0: "), "{err}");
    }

    #[test]
    fn config_diff_sets_changed_and_deletes_removed() {
        let mut s = spec(1, 1);
        s.config = map(&[("retention.ms", "2000"), ("segment.bytes", "1048576")]);
        let mut o = observed(1, 1);
        o.config = map(&[
            ("retention.ms", "1000"),
            ("segment.bytes", "1048576"),
            ("cleanup.policy", "compact"),
            ("max.message.bytes", "100"),
            ("leader.replication.throttled.replicas", "0:1,0:2"),
            ("follower.replication.throttled.replicas", "0:3"),
        ]);
        // The throttle lists of a move in progress stay.
        assert_eq!(
            plan_topic(&s, Some(&o)),
            vec![TopicAction::AlterConfigs {
                set: map(&[("retention.ms", "2000")]),
                delete: vec!["cleanup.policy".into(), "max.message.bytes".into()],
            }]
        );
    }

    #[test]
    fn grow_and_alter_in_order() {
        let mut s = spec(3, 1);
        s.config = map(&[("retention.ms", "5")]);
        assert_eq!(
            plan_topic(&s, Some(&observed(1, 1))),
            vec![
                TopicAction::CreatePartitions {
                    total: 3,
                    assignment: None
                },
                TopicAction::AlterConfigs {
                    set: map(&[("retention.ms", "5")]),
                    delete: vec![],
                },
            ]
        );
    }

    #[test]
    fn a_changed_assignment_of_existing_partitions_moves_them() {
        let mut s = spec(3, 2);
        // Partitions 0 and 1 exist as [0, 1]; the spec moves partition 1 and adds partition 2.
        s.assignment = Some(vec![vec![0, 1], vec![1, 2], vec![2, 0]]);
        let actions = plan_topic(&s, Some(&observed(2, 2)));
        assert_eq!(
            actions,
            vec![
                TopicAction::CreatePartitions {
                    total: 3,
                    assignment: Some(vec![vec![2, 0]]),
                },
                TopicAction::Reassign {
                    partitions: BTreeMap::from([(1, vec![1, 2])]),
                },
            ]
        );
        // Replica order is the preferred leader: a reordering is a change too.
        s.assignment = Some(vec![vec![1, 0], vec![0, 1]]);
        s.partitions = 2;
        assert_eq!(
            plan_topic(&s, Some(&observed(2, 2))),
            vec![TopicAction::Reassign {
                partitions: BTreeMap::from([(0, vec![1, 0])]),
            }]
        );
        // The assignment as it is: nothing to do.
        s.assignment = Some(vec![vec![0, 1], vec![0, 1]]);
        assert_eq!(
            plan_topic(&s, Some(&observed(2, 2))),
            vec![TopicAction::Nothing]
        );
    }

    fn topic(name: &str, topic: Option<&str>, cluster: &str, created_s: i64) -> KafkaTopic {
        let mut t = KafkaTopic::new(name, spec(1, 1));
        t.spec.cluster_ref.name = cluster.into();
        t.spec.topic_name = topic.map(String::from);
        t.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            serde_json::from_value(serde_json::json!(format!(
                "2026-01-01T00:00:{created_s:02}Z"
            )))
            .unwrap(),
        ));
        t
    }

    #[test]
    fn the_oldest_kafkatopic_naming_a_topic_manages_it() {
        let orders = topic("orders", None, "kc", 10);
        let dup = topic("orders-again", Some("orders"), "kc", 20);
        let same_time = topic("a-orders", Some("orders"), "kc", 20);
        let other_cluster = topic("orders-b", Some("orders"), "kc2", 5);
        let other_topic = topic("payments", None, "kc", 1);
        let all = vec![
            dup.clone(),
            orders.clone(),
            same_time.clone(),
            other_cluster.clone(),
            other_topic.clone(),
        ];
        assert_eq!(managed_by_other(&orders, &all), None);
        let owner =
            |t: &KafkaTopic| managed_by_other(t, &all).and_then(|o| o.metadata.name.clone());
        assert_eq!(owner(&dup).as_deref(), Some("orders"));
        assert_eq!(owner(&same_time).as_deref(), Some("orders"));
        assert_eq!(owner(&other_cluster), None);
        assert_eq!(owner(&other_topic), None);
        // Without the first, the older-by-name of the two created at the same time manages it.
        let rest = vec![dup.clone(), same_time.clone()];
        assert_eq!(managed_by_other(&same_time, &rest), None);
        assert_eq!(
            managed_by_other(&dup, &rest)
                .and_then(|o| o.metadata.name.clone())
                .as_deref(),
            Some("a-orders")
        );
    }
}
