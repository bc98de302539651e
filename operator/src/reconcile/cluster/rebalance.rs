//! Step "rebalance": replicas follow the brokers. Reads what `plan::movement` needs (Metadata,
//! the reassignments in progress, and, to make a plan, every broker's partition sizes), asks it,
//! and carries out its requests once the driver has written the status.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use kube::runtime::events::EventType;

use super::super::Context;
use super::rollout::pod_views;
use crate::crd::{BrokerSet, KafkaCluster};
use crate::kafka::{RESOURCE_BROKER, RESOURCE_TOPIC};
use crate::plan::movement::{
    decide, need, Forced, MoveAction, MoveDecision, MoveInput, MoveView, Need,
    FOLLOWER_THROTTLED_RATE, FOLLOWER_THROTTLED_REPLICAS, LEADER_THROTTLED_RATE,
    LEADER_THROTTLED_REPLICAS,
};
use crate::plan::rebalance::BrokerInfo;

async fn observe(ctx: &Context, bootstrap: &str, level: Need) -> Result<MoveView, String> {
    let admin = ctx.admin(bootstrap);
    let meta = admin.metadata(None).await.map_err(|e| e.to_string())?;
    let adding = admin
        .list_partition_reassignments()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|(k, (adding, _))| (k, adding))
        .collect();
    let current = meta
        .topics
        .iter()
        .flat_map(|(name, t)| {
            t.partitions
                .iter()
                .map(move |p| ((name.clone(), p.partition), p.replicas.clone()))
        })
        .collect();
    let brokers: Vec<BrokerInfo> = meta.brokers.iter().map(BrokerInfo::from).collect();
    let mut sizes: BTreeMap<(String, i32), u64> = BTreeMap::new();
    if level == Need::Plan {
        for b in &brokers {
            let dirs = admin
                .describe_log_dirs(b.id)
                .await
                .map_err(|e| format!("DescribeLogDirs of broker {}: {e}", b.id))?;
            for dir in dirs {
                for (k, bytes) in dir.partition_bytes {
                    let bytes = u64::try_from(bytes).unwrap_or(0);
                    let size = sizes.entry(k).or_default();
                    *size = (*size).max(bytes);
                }
            }
        }
    }
    Ok(MoveView {
        current,
        adding,
        brokers,
        sizes,
    })
}

/// Every pod of `set`'s ordinals `0..count` exists and is Ready.
pub(super) fn set_ready(set: &BrokerSet, pods: &[Pod], count: i32) -> bool {
    let views = pod_views(set, pods, count);
    views.len() == usize::try_from(count).unwrap_or(0)
        && views.iter().all(|p| p.ready && !p.terminating)
}

/// The movement of a blue-green upgrade: between two broker sets, both of which must be Ready.
pub(super) struct Upgrade<'a> {
    /// The movement.
    pub forced: &'a Forced,
    /// The other set and its size, while it runs.
    pub other: Option<(&'a BrokerSet, i32)>,
}

/// The rebalance decision of this reconcile. `running`: the StatefulSet's replicas before this
/// reconcile; `pods`: the cluster's pods; `upgrade`: a movement between broker sets instead of
/// the one `spec.brokers` asks for.
#[allow(clippy::too_many_arguments)]
pub(super) async fn decide_step(
    kc: &KafkaCluster,
    ctx: &Context,
    bootstrap: &str,
    set: &BrokerSet,
    running: i32,
    pods: &[Pod],
    upgrade: Option<Upgrade<'_>>,
    now_ms: i64,
    now: &str,
) -> MoveDecision {
    let wanted = kc.spec.brokers;
    let previous = kc.status.as_ref().and_then(|s| s.rebalance.as_ref());
    let forced = upgrade.as_ref().map(|u| u.forced);
    let mut spec = kc.spec.rebalance.clone();
    if forced.is_some() {
        spec.throttle_bytes_per_second = kc.spec.upgrade.blue_green.throttle_bytes_per_second;
    }
    let level = need(&spec, previous, wanted, running, set.id_offset, forced);
    let every = wanted.max(running);
    let pods_ready = set_ready(set, pods, every)
        && upgrade
            .as_ref()
            .and_then(|u| u.other)
            .is_none_or(|(other, count)| set_ready(other, pods, count));
    let observed = if level == Need::Nothing {
        None
    } else {
        Some(observe(ctx, bootstrap, level).await)
    };
    let view = match &observed {
        None => Ok(None),
        Some(Ok(v)) => Ok(Some(v)),
        Some(Err(e)) => Err(e.as_str()),
    };
    decide(&MoveInput {
        spec: &spec,
        previous,
        wanted,
        running,
        offset: set.id_offset,
        forced,
        pods_ready,
        view,
        now,
        now_ms,
    })
}

/// Carries out the requests of a decision whose status is written. Failures are logged and
/// retried by a later reconcile (the status says what is left).
pub(super) async fn act(
    kc: &KafkaCluster,
    ctx: &Context,
    bootstrap: &str,
    decision: &MoveDecision,
) {
    let admin = ctx.admin(bootstrap);
    for action in &decision.actions {
        match action {
            MoveAction::Throttle {
                brokers,
                rate,
                topics,
            } => {
                let rates = BTreeMap::from([
                    (LEADER_THROTTLED_RATE.to_string(), rate.to_string()),
                    (FOLLOWER_THROTTLED_RATE.to_string(), rate.to_string()),
                ]);
                for b in brokers {
                    if let Err(e) = admin
                        .alter_configs(RESOURCE_BROKER, &b.to_string(), &rates, &[])
                        .await
                    {
                        tracing::warn!(broker = b, error = %e, "cannot set the replication throttle");
                    }
                }
                for (topic, (leader, follower)) in topics {
                    let mut set = BTreeMap::new();
                    if !leader.is_empty() {
                        set.insert(LEADER_THROTTLED_REPLICAS.to_string(), leader.clone());
                    }
                    if !follower.is_empty() {
                        set.insert(FOLLOWER_THROTTLED_REPLICAS.to_string(), follower.clone());
                    }
                    if let Err(e) = admin.alter_configs(RESOURCE_TOPIC, topic, &set, &[]).await {
                        tracing::warn!(%topic, error = %e, "cannot list the throttled replicas");
                    }
                }
            }
            MoveAction::Unthrottle { brokers, topics } => {
                let rates = [
                    LEADER_THROTTLED_RATE.to_string(),
                    FOLLOWER_THROTTLED_RATE.to_string(),
                ];
                for b in brokers {
                    if let Err(e) = admin
                        .alter_configs(RESOURCE_BROKER, &b.to_string(), &BTreeMap::new(), &rates)
                        .await
                    {
                        tracing::warn!(broker = b, error = %e, "cannot remove the replication throttle");
                    }
                }
                let lists = [
                    LEADER_THROTTLED_REPLICAS.to_string(),
                    FOLLOWER_THROTTLED_REPLICAS.to_string(),
                ];
                for topic in topics {
                    if let Err(e) = admin
                        .alter_configs(RESOURCE_TOPIC, topic, &BTreeMap::new(), &lists)
                        .await
                    {
                        tracing::warn!(%topic, error = %e, "cannot remove the throttled replicas");
                    }
                }
            }
            MoveAction::Reassign(moves) => match admin.alter_partition_reassignments(moves).await {
                Ok(results) => {
                    let refused: Vec<String> = results
                        .iter()
                        .filter(|r| r.error_code != 0)
                        .map(|r| {
                            format!(
                                "{}-{}: {} {}",
                                r.topic,
                                r.partition,
                                crate::kafka::code_name(r.error_code),
                                r.message.as_deref().unwrap_or_default()
                            )
                        })
                        .collect();
                    tracing::info!(
                        moves = moves.len(),
                        refused = refused.len(),
                        "reassignments submitted"
                    );
                    if !refused.is_empty() {
                        ctx.event(
                            kc,
                            EventType::Warning,
                            "ReassignmentRefused",
                            format!(
                                "the brokers refused moves (retried): {}",
                                crate::plan::listed(&refused)
                            ),
                        )
                        .await;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "AlterPartitionReassignments failed; retried next reconcile")
                }
            },
            MoveAction::ElectPreferred => {
                if let Err(e) = admin.elect_leaders(true, None).await {
                    tracing::warn!(error = %e, "preferred leader election failed; the brokers' own leader rebalance restores them later");
                }
            }
            MoveAction::Event(warning, reason, message) => {
                ctx.note(kc, *warning, reason, message.clone()).await;
            }
        }
    }
}
