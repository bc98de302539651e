//! Step "rollout": observe what the roll's gates read (pods, the brokers' partitions and ISRs,
//! the quorum, the consumer groups), ask `plan::roll`, and carry out its actions once the
//! driver has written the status.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams};

use super::super::Context;
use crate::crd::{parse_duration, BrokerSet, KafkaCluster, RolloutStatus};
use crate::health::groups::lagging_groups;
use crate::health::partitions::{MinIsr, PartitionReplicas};
use crate::kafka::{Admin, AdminClient, QuorumInfo, RESOURCE_TOPIC};
use crate::plan::cluster_status::REVISION_LABEL;
use crate::plan::roll::{
    plan_roll, KafkaView, PodView, QuorumView, RollAction, RollInput, RollPlan, RollSettings,
};

/// Name of the broker container in the pod template.
const BROKER_CONTAINER: &str = "broker";
/// A voter whose last catch-up is this much older than the leader's own is lagging.
const VOTER_LAG_MS: i64 = 5_000;
/// The consumer-health gate needs samples over at least this long before it lets a roll start.
const GATE_WARMUP_MS: i64 = 10_000;

fn pod_view(pod: &Pod, id: i32) -> PodView {
    let status = pod.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let container = status
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == BROKER_CONTAINER));
    let waiting = container
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.waiting.as_ref())
        .and_then(|w| w.reason.clone())
        .or_else(|| {
            // A pod that cannot be scheduled, or not pulled yet, has no container status.
            status
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| {
                    cs.iter()
                        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
                })
                .and_then(|c| c.reason.clone())
        });
    PodView {
        id,
        name: pod.metadata.name.clone().unwrap_or_default(),
        revision: pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(REVISION_LABEL).cloned()),
        ready,
        terminating: pod.metadata.deletion_timestamp.is_some(),
        waiting,
    }
}

/// The broker pods of `set` by id (`<set>-<ordinal>`).
pub(super) fn pod_views(set: &BrokerSet, pods: &[Pod], brokers: i32) -> Vec<PodView> {
    set.ids(brokers)
        .into_iter()
        .filter_map(|id| {
            let name = set.pod(id);
            pods.iter()
                .find(|p| p.metadata.name.as_deref() == Some(name.as_str()))
                .map(|p| pod_view(p, id))
        })
        .collect()
}

/// Partitions, ISRs and live brokers, with each topic's `min.insync.replicas`.
async fn kafka_view(admin: &impl Admin) -> Result<KafkaView, String> {
    let meta = admin.metadata(None).await.map_err(|e| e.to_string())?;
    let mut partitions = Vec::new();
    let mut min_isr = MinIsr::new(1);
    for (topic, info) in &meta.topics {
        let topic_min = admin
            .describe_configs(RESOURCE_TOPIC, topic)
            .await
            .map_err(|e| format!("min.insync.replicas of {topic}: {e}"))?
            .into_iter()
            .find(|e| e.name == "min.insync.replicas")
            .and_then(|e| e.value)
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        min_isr = min_isr.with_topic(topic.clone(), topic_min);
        partitions.extend(info.partitions.iter().map(|p| PartitionReplicas {
            topic: topic.clone(),
            partition: p.partition,
            leader: p.leader,
            replicas: p.replicas.clone(),
            isr: p.isr.clone(),
        }));
    }
    Ok(KafkaView {
        live: meta.brokers.iter().map(|b| b.id).collect(),
        partitions,
        min_isr,
    })
}

/// Whether a DescribeQuorum answer is the leader's own: the leader reports itself caught up
/// now. A voter that is not the leader and could not forward the request answers from its own
/// view, in which the leader and the other voters have no progress, so they would look behind.
fn leaders_answer(q: &QuorumInfo) -> bool {
    q.voters
        .iter()
        .any(|v| v.replica_id == q.leader_id && v.last_caught_up_ms.is_some())
}

/// The quorum's leader and the voters that are behind it, from the bootstrap broker's
/// DescribeQuorum, or from the quorum leader itself when the bootstrap broker answered from its
/// own view (a secured cluster's brokers cannot forward DescribeQuorum to the leader: the
/// forward is plain TCP and CONTROLPLANE refuses it). The leader is asked at its host from
/// Metadata on the operator's port, with the operator's TLS.
async fn leader_quorum_view(
    ctx: &Context,
    kc: &KafkaCluster,
    admin: &AdminClient,
) -> Result<QuorumView, String> {
    let q = admin.describe_quorum().await.map_err(|e| e.to_string())?;
    if q.leader_id < 0 || leaders_answer(&q) {
        return Ok(view_of(&q));
    }
    let meta = admin.metadata(Some(&[])).await.map_err(|e| e.to_string())?;
    let Some(leader) = meta.brokers.iter().find(|b| b.id == q.leader_id) else {
        return Ok(view_of(&q));
    };
    let addr = format!("{}:{}", leader.host, kc.spec.operator_port());
    let name = kc.metadata.name.clone().unwrap_or_default();
    let ns = kc.metadata.namespace.clone().unwrap_or_default();
    ctx.use_tls(&name, &ns, &addr, kc.spec.secured())
        .await
        .map_err(|e| e.to_string())?;
    let direct = ctx
        .admin(&addr)
        .describe_quorum()
        .await
        .map_err(|e| format!("the quorum leader at {addr}: {e}"))?;
    Ok(view_of(&direct))
}

fn view_of(q: &QuorumInfo) -> QuorumView {
    let leader_caught_up = q
        .voters
        .iter()
        .find(|v| v.replica_id == q.leader_id)
        .and_then(|v| v.last_caught_up_ms);
    let lagging: BTreeSet<i32> = q
        .voters
        .iter()
        .filter(|v| v.replica_id != q.leader_id)
        .filter(|v| match (v.last_caught_up_ms, leader_caught_up) {
            (Some(t), Some(l)) => l - t > VOTER_LAG_MS,
            _ => v.log_end_offset < q.high_watermark,
        })
        .map(|v| v.replica_id)
        .collect();
    QuorumView {
        leader: q.leader_id,
        lagging,
    }
}

/// Polls the consumer groups into the cluster's tracker and returns those that hold the roll;
/// `Err` (reason, sentence) while the gate cannot judge: the groups cannot be read, or the
/// tracker has watched for less than `GATE_WARMUP_MS`.
pub(super) async fn lagging(
    kc: &KafkaCluster,
    ctx: &Context,
    admin: &impl Admin,
    key: &str,
    now_ms: i64,
) -> Result<Vec<String>, (&'static str, String)> {
    let unreadable = |m: String| ("ConsumerGroupsUnreadable", m);
    let spec = &kc.spec.upgrade.consumer_health;
    // Named groups are asked for directly (a group briefly missing from ListGroups while its
    // coordinator moves must not pass the gate); otherwise every listed group.
    let watched: Vec<String> = if spec.groups.is_empty() {
        match admin.list_groups().await {
            Ok(g) => g.into_iter().map(|g| g.group_id).collect(),
            Err(e) => return Err(unreadable(format!("consumer groups cannot be listed: {e}"))),
        }
    } else {
        spec.groups.clone()
    };
    let mut polled = Vec::new();
    for group in &watched {
        let committed = match admin.committed_offsets(group).await {
            Ok(c) => c,
            Err(e) => {
                return Err(unreadable(format!(
                    "group {group}: offsets cannot be read: {e}"
                )))
            }
        };
        if committed.is_empty() {
            // No commit (yet, or no more): nothing new to judge it by; what was seen of it
            // stays until it is forgotten below.
            continue;
        }
        let parts: Vec<(String, i32)> = committed.keys().cloned().collect();
        let ends = match admin.end_offsets(&parts).await {
            Ok(e) => e,
            Err(e) => {
                return Err(unreadable(format!(
                    "group {group}: log end offsets cannot be read: {e}"
                )))
            }
        };
        let offsets: Vec<(String, i32, i64, i64)> = committed
            .iter()
            .filter_map(|((t, p), c)| ends.get(&(t.clone(), *p)).map(|e| (t.clone(), *p, *c, *e)))
            .collect();
        polled.push((group.clone(), offsets));
    }
    let (watched_ms, evaluations) = ctx.observe_groups(key, now_ms, &polled);
    if watched_ms < GATE_WARMUP_MS {
        return Err((
            "SamplingConsumerGroups",
            format!(
                "the consumer groups are being sampled before the first restart ({} s of {} s)",
                watched_ms / 1000,
                GATE_WARMUP_MS / 1000
            ),
        ));
    }
    for g in &evaluations {
        tracing::info!(
            group = %g.group,
            status = %g.status,
            max_lag = g.max_lag,
            max_lag_seconds = g.max_lag_seconds.unwrap_or(-1.0),
            partitions = g.partitions.len(),
            "consumer group health"
        );
    }
    let only = (!spec.groups.is_empty()).then_some(spec.groups.as_slice());
    Ok(
        lagging_groups(&evaluations, spec.max_lag_seconds as f64, only)
            .into_iter()
            .map(|(_, reason)| reason)
            .collect(),
    )
}

/// The roll's next decision; `None` when the StatefulSet rolls by itself (the test-only
/// annotation) or has not seen its newest spec yet.
#[allow(clippy::too_many_arguments)]
pub(super) async fn decide(
    kc: &KafkaCluster,
    ctx: &Context,
    set: &BrokerSet,
    sts: &StatefulSet,
    pods: &[Pod],
    bootstrap: &str,
    controllers: i32,
    previous: Option<&RolloutStatus>,
    now_ms: i64,
) -> Option<RollPlan> {
    let generation = sts.metadata.generation.unwrap_or(0);
    let status = sts.status.as_ref()?;
    if status.observed_generation.unwrap_or(-1) < generation {
        return None;
    }
    let target = status.update_revision.clone()?;
    let name = kc.metadata.name.clone().unwrap_or_default();
    let namespace = kc.metadata.namespace.clone().unwrap_or_default();
    let views = pod_views(set, pods, kc.spec.brokers);
    let work = views
        .iter()
        .any(|p| p.revision.as_deref() != Some(target.as_str()))
        || previous.is_some_and(|p| !p.in_progress.is_empty());
    let admin = ctx.admin(bootstrap);
    let admin = admin.as_ref();
    // The brokers are asked only while there is something to roll.
    let (kafka, quorum, groups) = if work {
        let kafka = kafka_view(admin).await;
        let quorum = leader_quorum_view(ctx, kc, admin).await;
        let groups = if kc.spec.upgrade.consumer_health.enabled {
            lagging(kc, ctx, admin, &format!("{namespace}/{name}"), now_ms).await
        } else {
            Ok(Vec::new())
        };
        (kafka, quorum, groups)
    } else {
        (
            Err("not read".into()),
            Err("not read".into()),
            Ok(Vec::new()),
        )
    };
    let rolling = &kc.spec.upgrade.rolling;
    let settings = RollSettings {
        max_parallel: usize::try_from(rolling.max_parallel).unwrap_or(1).max(1),
        min_isr_headroom: rolling.min_isr_headroom,
        min_ready: std::time::Duration::from_secs(
            u64::try_from(rolling.min_ready_seconds).unwrap_or(0),
        ),
        ready_timeout: parse_duration(&rolling.broker_ready_timeout)
            .unwrap_or(std::time::Duration::from_secs(300)),
        paused: kc.spec.upgrade.paused,
    };
    Some(plan_roll(&RollInput {
        now_ms,
        target_revision: &target,
        target_version: &kc.spec.version,
        brokers: kc.spec.brokers,
        offset: set.id_offset,
        voters: controllers,
        pods: &views,
        kafka: kafka.as_ref().map_err(Clone::clone),
        quorum: quorum.as_ref().map_err(Clone::clone),
        lagging_groups: groups.as_deref().unwrap_or_default(),
        consumer_unknown: groups.as_ref().err().cloned(),
        settings: &settings,
        previous,
    }))
}

/// Carries out the actions of a decision whose status is written.
pub(super) async fn act(
    kc: &KafkaCluster,
    ctx: &Context,
    set: &BrokerSet,
    bootstrap: &str,
    plan: &RollPlan,
) {
    let name = kc.metadata.name.clone().unwrap_or_default();
    let namespace = kc.metadata.namespace.clone().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    for action in &plan.actions {
        match action {
            RollAction::DeletePod { id, why } => {
                let pod = set.pod(*id);
                tracing::info!(%pod, %why, "deleting broker pod");
                match pods.delete(&pod, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => {
                        tracing::warn!(%pod, error = %e, "cannot delete broker pod; retrying next reconcile")
                    }
                }
            }
            RollAction::ElectPreferredLeaders => {
                match ctx.admin(bootstrap).elect_leaders(true, None).await {
                    Ok(results) => {
                        let moved = results.iter().filter(|r| r.error_code == 0).count();
                        tracing::info!(moved, "preferred leaders restored");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "preferred leader election failed; the brokers' own leader rebalance restores them later")
                    }
                }
            }
            RollAction::Event {
                warning,
                reason,
                message,
            } => {
                ctx.note(kc, *warning, reason, message.clone()).await;
            }
            RollAction::Restarted { seconds, .. } => {
                ctx.metrics.broker_restarted(&namespace, &name, *seconds);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::ReplicaState;

    fn voter(id: i32, end: i64, caught_up: Option<i64>) -> ReplicaState {
        ReplicaState {
            replica_id: id,
            log_end_offset: end,
            last_fetch_ms: caught_up,
            last_caught_up_ms: caught_up,
        }
    }

    fn quorum(voters: Vec<ReplicaState>) -> QuorumInfo {
        QuorumInfo {
            leader_id: 0,
            leader_epoch: 3,
            high_watermark: 10,
            voters,
            observers: Vec::new(),
        }
    }

    #[test]
    fn a_followers_own_view_is_told_from_the_leaders() {
        // The leader's answer: every voter caught up within VOTER_LAG_MS of the leader.
        let leader = quorum(vec![
            voter(0, 10, Some(100_000)),
            voter(1, 10, Some(99_000)),
            voter(2, 10, Some(98_000)),
        ]);
        assert!(leaders_answer(&leader));
        let view = view_of(&leader);
        assert_eq!((view.leader, view.lagging.len()), (0, 0));
        // One voter behind in the leader's answer.
        let behind = quorum(vec![
            voter(0, 10, Some(100_000)),
            voter(1, 10, Some(99_000)),
            voter(2, 4, Some(90_000)),
        ]);
        assert_eq!(view_of(&behind).lagging, BTreeSet::from([2]));
        // Follower 2's own view (it could not forward): no progress for the others, which
        // would look behind; it is not the leader's answer.
        let own = quorum(vec![
            voter(0, -1, None),
            voter(1, -1, None),
            voter(2, 10, None),
        ]);
        assert!(!leaders_answer(&own));
        assert_eq!(view_of(&own).lagging, BTreeSet::from([1]));
    }
}
