//! A `KafkaCluster`'s status from what Kubernetes reports about its StatefulSet and pods. Pure.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;

use super::cluster::RACK_ANNOTATION;
use crate::crd::{BrokerSet, BrokerStatus, Condition, KafkaCluster, KafkaClusterStatus};

/// Pod label holding the StatefulSet revision the pod was created from.
pub const REVISION_LABEL: &str = "controller-revision-hash";

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn ids(list: &[i32]) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The status for `kc` given its StatefulSet (absent before the first apply) and its pods.
/// Conditions carry no transition time yet (see `merge_conditions`).
pub fn cluster_status(
    kc: &KafkaCluster,
    set: &BrokerSet,
    sts: Option<&StatefulSet>,
    pods: &[Pod],
    controllers: i32,
    bootstrap: &str,
) -> KafkaClusterStatus {
    let brokers = kc.spec.brokers.max(0);
    let previous = kc.status.clone().unwrap_or_default();
    let update_revision = sts
        .and_then(|s| s.status.as_ref())
        .and_then(|s| s.update_revision.clone());
    let broker_states: Vec<BrokerStatus> = set
        .ids(brokers)
        .into_iter()
        .map(|id| {
            let pod_name = set.pod(id);
            let pod = pods
                .iter()
                .find(|p| p.metadata.name.as_deref() == Some(pod_name.as_str()));
            BrokerStatus {
                id,
                ready: pod.is_some_and(pod_ready),
                updated: pod.is_some_and(|p| {
                    update_revision.is_some()
                        && p.metadata
                            .labels
                            .as_ref()
                            .and_then(|l| l.get(REVISION_LABEL))
                            == update_revision.as_ref()
                }),
                node: pod
                    .and_then(|p| p.spec.as_ref())
                    .and_then(|s| s.node_name.clone()),
                rack: pod
                    .and_then(|p| p.metadata.annotations.as_ref())
                    .and_then(|a| a.get(RACK_ANNOTATION).cloned()),
                pod: pod_name,
            }
        })
        .collect();
    let not_ready: Vec<i32> = broker_states
        .iter()
        .filter(|b| !b.ready)
        .map(|b| b.id)
        .collect();
    let not_updated: Vec<i32> = broker_states
        .iter()
        .filter(|b| !b.updated)
        .map(|b| b.id)
        .collect();
    let ready_count = brokers - i32::try_from(not_ready.len()).unwrap_or(brokers);
    let sts_current = sts.is_some_and(|s| {
        let generation = s.metadata.generation.unwrap_or(0);
        let observed = s
            .status
            .as_ref()
            .and_then(|st| st.observed_generation)
            .unwrap_or(-1);
        let replicas = s.status.as_ref().map(|st| st.replicas).unwrap_or(-1);
        observed >= generation && replicas == brokers
    });
    let all_ready = sts_current && not_ready.is_empty() && not_updated.is_empty();
    let version = kc.spec.version.clone();
    let first_rollout = previous.current_version.is_none();
    let rolling = !sts_current
        || !not_updated.is_empty()
        || (first_rollout && !not_ready.is_empty())
        || previous.current_version.as_deref() != Some(version.as_str()) && !all_ready;

    let mut conditions = Vec::new();
    conditions.push(if all_ready {
        Condition::new(
            "Ready",
            true,
            "AllBrokersReady",
            format!("{brokers}/{brokers} brokers ready"),
        )
    } else if not_ready.is_empty() {
        Condition::new(
            "Ready",
            false,
            "RolloutInProgress",
            format!(
                "brokers {} do not run the current pod template yet",
                ids(&not_updated)
            ),
        )
    } else {
        Condition::new(
            "Ready",
            false,
            "BrokersNotReady",
            format!(
                "{ready_count}/{brokers} brokers ready; not ready: {}",
                ids(&not_ready)
            ),
        )
    });
    conditions.push(if rolling {
        Condition::new(
            "Progressing",
            true,
            if sts.is_none() {
                "Creating"
            } else {
                "RollingOut"
            },
            format!(
                "{} of {brokers} brokers updated, {ready_count} ready",
                brokers - i32::try_from(not_updated.len()).unwrap_or(brokers)
            ),
        )
    } else {
        Condition::new("Progressing", false, "RolloutComplete", "")
    });
    conditions.push(if !rolling && !not_ready.is_empty() {
        Condition::new(
            "Degraded",
            true,
            "BrokersNotReady",
            format!("brokers not ready: {}", ids(&not_ready)),
        )
    } else {
        Condition::new("Degraded", false, "AsExpected", "")
    });

    let current_version = if all_ready {
        Some(version.clone())
    } else {
        previous.current_version.clone()
    };
    let target_version = (current_version.as_deref() != Some(version.as_str())).then_some(version);
    KafkaClusterStatus {
        observed_generation: kc.metadata.generation,
        conditions,
        brokers: broker_states,
        ready_brokers: ready_count,
        controllers: Some(controllers),
        current_version,
        target_version,
        bootstrap: Some(bootstrap.to_string()),
        rollout: previous.rollout.clone(),
        rebalance: previous.rebalance.clone(),
        broker_set: previous.broker_set.clone(),
        quorum_voters: previous.quorum_voters.clone(),
        upgrade: previous.upgrade.clone(),
        // Written by the cluster-metrics poll under its own field manager, never here.
        health: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::KafkaClusterSpec;
    use k8s_openapi::api::apps::v1::StatefulSetStatus;
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};
    use std::collections::BTreeMap;

    fn kc(brokers: i32, current: Option<&str>) -> KafkaCluster {
        let mut kc = KafkaCluster::new(
            "kc",
            KafkaClusterSpec {
                brokers,
                version: "1.0.0".into(),
                ..Default::default()
            },
        );
        kc.metadata.generation = Some(2);
        kc.status = Some(KafkaClusterStatus {
            current_version: current.map(str::to_string),
            ..Default::default()
        });
        kc
    }

    fn sts(replicas: i32, revision: &str) -> StatefulSet {
        let mut s = StatefulSet::default();
        s.metadata.generation = Some(5);
        s.status = Some(StatefulSetStatus {
            observed_generation: Some(5),
            replicas,
            update_revision: Some(revision.into()),
            ..Default::default()
        });
        s
    }

    fn pod(id: i32, ready: bool, revision: &str) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some(format!("kc-{id}"));
        p.metadata.labels = Some(BTreeMap::from([(
            REVISION_LABEL.to_string(),
            revision.to_string(),
        )]));
        p.spec = Some(PodSpec {
            node_name: Some(format!("node-{id}")),
            ..Default::default()
        });
        p.status = Some(PodStatus {
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Default::default()
            }]),
            ..Default::default()
        });
        p
    }

    fn cond<'a>(s: &'a KafkaClusterStatus, t: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == t).unwrap()
    }

    #[test]
    fn all_ready() {
        let pods: Vec<Pod> = (0..3).map(|i| pod(i, true, "r1")).collect();
        let s = cluster_status(
            &kc(3, None),
            &BrokerSet::first("kc"),
            Some(&sts(3, "r1")),
            &pods,
            3,
            "b:9092",
        );
        assert_eq!(
            s.conditions
                .iter()
                .map(|c| (c.type_.as_str(), c.status.as_str()))
                .collect::<Vec<_>>(),
            vec![
                ("Ready", "True"),
                ("Progressing", "False"),
                ("Degraded", "False")
            ]
        );
        assert_eq!(cond(&s, "Ready").message, "3/3 brokers ready");
        assert_eq!(s.ready_brokers, 3);
        assert_eq!(s.brokers.len(), 3);
        assert_eq!(s.brokers[1].pod, "kc-1");
        assert_eq!(s.brokers[1].node.as_deref(), Some("node-1"));
        assert!(s.brokers.iter().all(|b| b.ready && b.updated));
        assert!(s.brokers.iter().all(|b| b.rack.is_none()));
        assert_eq!(s.current_version.as_deref(), Some("1.0.0"));
        assert_eq!(s.target_version, None);
        assert_eq!(s.observed_generation, Some(2));
        assert_eq!(s.controllers, Some(3));
    }

    #[test]
    fn new_cluster_is_progressing_not_degraded() {
        let s = cluster_status(
            &kc(3, None),
            &BrokerSet::first("kc"),
            None,
            &[],
            3,
            "b:9092",
        );
        assert!(!cond(&s, "Ready").is_true());
        assert_eq!(cond(&s, "Ready").reason, "BrokersNotReady");
        assert!(cond(&s, "Progressing").is_true());
        assert_eq!(cond(&s, "Progressing").reason, "Creating");
        assert!(!cond(&s, "Degraded").is_true());
        assert_eq!(s.current_version, None);
        assert_eq!(s.target_version.as_deref(), Some("1.0.0"));
    }

    #[test]
    fn a_broker_down_after_rollout_is_degraded() {
        let pods = vec![pod(0, true, "r1"), pod(1, false, "r1"), pod(2, true, "r1")];
        let s = cluster_status(
            &kc(3, Some("1.0.0")),
            &BrokerSet::first("kc"),
            Some(&sts(3, "r1")),
            &pods,
            3,
            "b",
        );
        assert!(!cond(&s, "Ready").is_true());
        assert_eq!(cond(&s, "Ready").message, "2/3 brokers ready; not ready: 1");
        assert!(!cond(&s, "Progressing").is_true());
        assert!(cond(&s, "Degraded").is_true());
        assert_eq!(cond(&s, "Degraded").message, "brokers not ready: 1");
        assert_eq!(s.ready_brokers, 2);
    }

    #[test]
    fn rolling_update_is_progressing() {
        let pods = vec![pod(0, true, "r1"), pod(1, true, "r1"), pod(2, false, "r2")];
        let s = cluster_status(
            &kc(3, Some("0.9.0")),
            &BrokerSet::first("kc"),
            Some(&sts(3, "r2")),
            &pods,
            3,
            "b",
        );
        assert!(cond(&s, "Progressing").is_true());
        assert_eq!(
            cond(&s, "Progressing").message,
            "1 of 3 brokers updated, 2 ready"
        );
        assert!(!cond(&s, "Degraded").is_true());
        assert_eq!(
            s.brokers.iter().map(|b| b.updated).collect::<Vec<_>>(),
            vec![false, false, true]
        );
        assert_eq!(s.current_version.as_deref(), Some("0.9.0"));
        assert_eq!(s.target_version.as_deref(), Some("1.0.0"));
    }

    #[test]
    fn ready_but_old_template_is_a_rollout() {
        let pods: Vec<Pod> = (0..3).map(|i| pod(i, true, "r1")).collect();
        let s = cluster_status(
            &kc(3, Some("1.0.0")),
            &BrokerSet::first("kc"),
            Some(&sts(3, "r2")),
            &pods,
            3,
            "b",
        );
        assert_eq!(cond(&s, "Ready").reason, "RolloutInProgress");
        assert_eq!(
            cond(&s, "Ready").message,
            "brokers 0, 1, 2 do not run the current pod template yet"
        );
    }

    #[test]
    fn a_broker_rack_comes_from_its_pod_annotation() {
        let mut pods: Vec<Pod> = (0..2).map(|i| pod(i, true, "r1")).collect();
        pods[1].metadata.annotations = Some(BTreeMap::from([(
            RACK_ANNOTATION.to_string(),
            "zone-b".to_string(),
        )]));
        let s = cluster_status(
            &kc(2, None),
            &BrokerSet::first("kc"),
            Some(&sts(2, "r1")),
            &pods,
            1,
            "b",
        );
        assert_eq!(
            s.brokers
                .iter()
                .map(|b| b.rack.as_deref())
                .collect::<Vec<_>>(),
            vec![None, Some("zone-b")]
        );
    }
}
