//! KafkaTopic reconcile: bring the topic in the referenced cluster to the spec over the Kafka
//! protocol, report its partitions, and on deletion honour the deletion policy (finalizer).
//! Topics no KafkaTopic names are never touched.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{Api, ListParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{finalizer, Event as FinalizerEvent};
use tracing::Instrument;

use super::{name_ns, now_rfc3339, Context, Error};
use crate::crd::{
    describe_errors, merge_conditions, Condition, DeletionPolicy, FieldError, KafkaCluster,
    KafkaTopic, KafkaTopicStatus,
};
use crate::kafka::{AdminError, KafkaError, NewTopic, RESOURCE_TOPIC};
use crate::plan::rebalance::{next_batch, Assignment, BrokerInfo};
use crate::plan::topic::{
    managed_by_other, plan_topic, replication_targets, ObservedTopic, TopicAction,
};

/// Kind label of the metrics.
pub const KIND: &str = "KafkaTopic";
/// Finalizer that holds a KafkaTopic until its Kafka topic is deleted (or retained).
pub const FINALIZER: &str = "samsa.dev/topic";
/// Kafka error code of a topic that already exists.
const TOPIC_ALREADY_EXISTS: i16 = 36;
/// Ready=False reason while replicas move to where the spec puts them.
const REASSIGNING: &str = "Reassigning";

/// Reconciles one KafkaTopic.
pub async fn reconcile(kt: Arc<KafkaTopic>, ctx: Arc<Context>) -> Result<Action, Error> {
    let start = Instant::now();
    let span = tracing::info_span!(
        "reconcile",
        kind = KIND,
        namespace = kt.metadata.namespace.as_deref().unwrap_or_default(),
        name = kt.metadata.name.as_deref().unwrap_or_default(),
        topic = %kt.topic_name(),
        generation = kt.metadata.generation.unwrap_or_default(),
    );
    let result = run(kt.clone(), ctx.clone()).instrument(span).await;
    ctx.metrics.observe(KIND, start.elapsed(), result.is_ok());
    if result.is_ok() {
        ctx.succeeded(kt.as_ref());
    }
    result
}

async fn run(kt: Arc<KafkaTopic>, ctx: Arc<Context>) -> Result<Action, Error> {
    let (_, ns) = name_ns(kt.as_ref())?;
    let api: Api<KafkaTopic> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, FINALIZER, kt, |event| async {
        match event {
            FinalizerEvent::Apply(kt) => apply(&kt, &ctx).await,
            FinalizerEvent::Cleanup(kt) => cleanup(&kt, &ctx).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e)
        | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer(other.to_string()),
    })
}

/// A non-transient Kafka refusal (bad config, invalid partitions...): reported in the status,
/// not retried until the spec changes or the periodic requeue.
fn is_refusal(e: &AdminError) -> bool {
    e.kafka().is_some_and(|k| !k.is_retriable())
}

async fn apply(kt: &KafkaTopic, ctx: &Context) -> Result<Action, Error> {
    let (name, ns) = name_ns(kt)?;
    let api: Api<KafkaTopic> = Api::namespaced(ctx.client.clone(), &ns);
    let previous = kt.status.clone().unwrap_or_default();
    let topic = kt.topic_name();
    let clusters: Api<KafkaCluster> = Api::namespaced(ctx.client.clone(), &ns);
    let cluster_name = &kt.spec.cluster_ref.name;

    let Some(cluster) = clusters.get_opt(cluster_name).await? else {
        let message =
            format!("spec.clusterRef.name: KafkaCluster {cluster_name} does not exist in {ns}");
        set_status(
            &api,
            &name,
            kt,
            &previous,
            None,
            false,
            "ClusterNotFound",
            &message,
        )
        .await?;
        return Ok(Action::requeue(Duration::from_secs(30)));
    };

    // Two KafkaTopics naming one topic would fight over it: the oldest manages it.
    let all = api.list(&ListParams::default()).await?;
    if let Some(owner) = managed_by_other(kt, &all.items) {
        let owner = owner.metadata.name.as_deref().unwrap_or_default();
        let message = format!(
            "spec.topicName: topic {topic} of KafkaCluster {cluster_name} is already managed by KafkaTopic {owner}; this KafkaTopic does nothing to it (and deleting it leaves the topic alone)"
        );
        return refuse(ctx, &api, kt, &previous, "DuplicateTopic", &message).await;
    }

    let mut errs = kt.spec.validate(&topic);
    errs.extend(kt.spec.validate_against_cluster(cluster.spec.brokers));
    if topic.starts_with("__") {
        errs.push(FieldError {
            field: "spec.topicName".into(),
            message: format!("{topic} is an internal topic; the operator does not manage it"),
        });
    }
    if !errs.is_empty() {
        // The cluster may grow: `refuse` looks again later.
        return refuse(
            ctx,
            &api,
            kt,
            &previous,
            "InvalidSpec",
            &describe_errors(&errs),
        )
        .await;
    }

    let bootstrap = ctx.kafka_bootstrap(&cluster).await?;
    let admin = ctx.admin(&bootstrap);
    let observed = admin.describe_topic(&topic).await?;
    let actions = plan_topic(&kt.spec, observed.as_ref());
    let max_moves = usize::try_from(cluster.spec.rebalance.max_concurrent_moves)
        .unwrap_or(1)
        .max(1);
    let moves = actions.iter().any(TopicAction::moves_replicas)
        || previous
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.reason == REASSIGNING);
    let mut refusals = Vec::new();
    for action in &actions {
        let outcome = match action {
            TopicAction::Create {
                partitions,
                replication_factor,
                assignment,
                config,
            } => {
                let new = NewTopic {
                    name: topic.clone(),
                    partitions: *partitions,
                    replication_factor: *replication_factor,
                    assignment: assignment.clone(),
                    config: config.clone(),
                };
                match admin.create_topic(&new).await {
                    Err(AdminError::Kafka(k)) if k.code == TOPIC_ALREADY_EXISTS => Ok(()),
                    Err(e) => Err(e),
                    Ok(_) => {
                        ctx.event(
                            kt,
                            EventType::Normal,
                            "TopicCreated",
                            format!(
                                "created topic {topic} with {partitions} partitions, replication factor {replication_factor}"
                            ),
                        )
                        .await;
                        Ok(())
                    }
                }
            }
            TopicAction::CreatePartitions { total, assignment } => {
                let r = admin
                    .create_partitions(&topic, *total, assignment.as_deref())
                    .await;
                if r.is_ok() {
                    ctx.event(
                        kt,
                        EventType::Normal,
                        "PartitionsAdded",
                        format!("topic {topic} now has {total} partitions"),
                    )
                    .await;
                }
                r
            }
            TopicAction::AlterConfigs { set, delete } => {
                let r = admin
                    .alter_configs(RESOURCE_TOPIC, &topic, set, delete)
                    .await;
                if r.is_ok() {
                    let keys = set
                        .keys()
                        .cloned()
                        .chain(delete.iter().cloned())
                        .collect::<Vec<_>>()
                        .join(", ");
                    ctx.event(
                        kt,
                        EventType::Normal,
                        "ConfigUpdated",
                        format!("topic {topic}: updated {keys}"),
                    )
                    .await;
                }
                r
            }
            TopicAction::ChangeReplicationFactor {
                observed: from,
                desired,
            } => {
                let targets = match (&observed, admin.metadata(Some(&[])).await) {
                    (Some(o), Ok(meta)) => {
                        let brokers: Vec<BrokerInfo> =
                            meta.brokers.iter().map(BrokerInfo::from).collect();
                        replication_targets(o, *desired, &brokers)
                    }
                    (None, _) => Ok(BTreeMap::new()),
                    (_, Err(e)) => return Err(e.into()),
                };
                match targets {
                    Ok(targets) => {
                        let why = format!("replication factor {from} → {desired}");
                        start_moves(
                            ctx, kt, &admin, &topic, &observed, &targets, max_moves, &why,
                        )
                        .await
                    }
                    Err(message) => {
                        let message = format!("spec.replicationFactor: {message}");
                        ctx.event(kt, EventType::Warning, "ChangeRefused", message.clone())
                            .await;
                        refusals.push(message);
                        Ok(())
                    }
                }
            }
            TopicAction::Reassign { partitions } => {
                start_moves(
                    ctx,
                    kt,
                    &admin,
                    &topic,
                    &observed,
                    partitions,
                    max_moves,
                    "spec.assignment",
                )
                .await
            }
            TopicAction::RefuseDecrease { .. } => {
                if let Some(message) = action.refusal() {
                    ctx.event(kt, EventType::Warning, "ChangeRefused", message.clone())
                        .await;
                    refusals.push(message);
                }
                Ok(())
            }
            TopicAction::Nothing => Ok(()),
        };
        match outcome {
            Ok(()) => {}
            Err(e) if is_refusal(&e) => {
                let message = e.to_string();
                ctx.event(kt, EventType::Warning, "KafkaRefused", message.clone())
                    .await;
                refusals.push(message);
            }
            Err(e) => return Err(e.into()),
        }
    }

    let observed = admin.describe_topic(&topic).await?;
    // Replicas still moving: not Ready until they are where the spec puts them.
    let moving: Vec<String> = if moves && refusals.is_empty() {
        admin
            .list_partition_reassignments()
            .await?
            .keys()
            .filter(|(t, _)| *t == topic)
            .map(|(_, p)| p.to_string())
            .collect()
    } else {
        Vec::new()
    };
    let pending = observed.as_ref().is_some_and(|o| {
        plan_topic(&kt.spec, Some(o))
            .iter()
            .any(TopicAction::moves_replicas)
    });
    let reassigning = refusals.is_empty() && (!moving.is_empty() || pending);
    // The brokers' refusals come first: a topic they refused to create is missing because of
    // them, and the condition must say why.
    let (ready, reason, message) = match (&observed, refusals.is_empty()) {
        (_, false) => (false, "ChangeRefused", refusals.join("; ")),
        // Replicas still moving: not Ready until they are where the spec puts them.
        (Some(_), true) if reassigning => (
            false,
            REASSIGNING,
            format!(
                "topic {topic}: moving replicas of partitions {} to where the spec puts them",
                if moving.is_empty() {
                    "(next batch)".to_string()
                } else {
                    crate::plan::listed(&moving)
                }
            ),
        ),
        (None, true) => (
            false,
            "TopicMissing",
            format!("topic {topic} is not in the cluster yet"),
        ),
        (Some(o), true) => (
            true,
            "Reconciled",
            format!(
                "topic {topic}: {} partitions, replication factor {}",
                o.partition_count(),
                o.replication_factor().unwrap_or(0)
            ),
        ),
    };
    set_status(
        &api,
        &name,
        kt,
        &previous,
        observed.as_ref(),
        ready,
        reason,
        &message,
    )
    .await?;
    Ok(Action::requeue(if ready {
        Duration::from_secs(300)
    } else if reassigning {
        Duration::from_secs(5)
    } else {
        Duration::from_secs(30)
    }))
}

/// Submits the next batch of `targets` (partition → replicas) of `topic` not moving yet, at
/// most `max` moving at once, and says so in an event.
#[allow(clippy::too_many_arguments)]
async fn start_moves(
    ctx: &Context,
    kt: &KafkaTopic,
    admin: &crate::kafka::AdminClient,
    topic: &str,
    observed: &Option<ObservedTopic>,
    targets: &BTreeMap<i32, Vec<i32>>,
    max: usize,
    why: &str,
) -> Result<(), AdminError> {
    let in_progress: BTreeSet<(String, i32)> = admin
        .list_partition_reassignments()
        .await?
        .into_keys()
        .filter(|(t, _)| t == topic)
        .collect();
    let target: Assignment = targets
        .iter()
        .map(|(p, r)| ((topic.to_string(), *p), r.clone()))
        .collect();
    let current: Assignment = observed
        .iter()
        .flat_map(|o| o.partitions.iter())
        .map(|p| ((topic.to_string(), p.partition), p.replicas.clone()))
        .collect();
    let batch = next_batch(&target, &current, &in_progress, &BTreeMap::new(), max);
    if batch.is_empty() {
        return Ok(());
    }
    let described: Vec<String> = batch
        .iter()
        .map(|((_, p), r)| format!("{p} → {r:?}"))
        .collect();
    let moves = batch.into_iter().map(|(k, r)| (k, Some(r))).collect();
    let results = admin.alter_partition_reassignments(&moves).await?;
    for r in &results {
        let resource = format!("{}-{}", r.topic, r.partition);
        if let Some(e) = KafkaError::from_code(
            "AlterPartitionReassignments",
            Some(&resource),
            r.error_code,
            r.message.as_deref(),
        ) {
            return Err(e.into());
        }
    }
    ctx.event(
        kt,
        EventType::Normal,
        "ReassignmentStarted",
        format!(
            "topic {topic} ({why}): moving partitions {}",
            crate::plan::listed(&described)
        ),
    )
    .await;
    Ok(())
}

/// Not Ready for a reason the user must fix: the condition, a Warning the first time this
/// message is seen, and another look in a minute.
async fn refuse(
    ctx: &Context,
    api: &Api<KafkaTopic>,
    kt: &KafkaTopic,
    previous: &KafkaTopicStatus,
    reason: &str,
    message: &str,
) -> Result<Action, Error> {
    let (name, _) = name_ns(kt)?;
    let said = previous
        .conditions
        .iter()
        .any(|c| c.reason == reason && c.message == message);
    if !said {
        ctx.event(kt, EventType::Warning, reason, message.to_string())
            .await;
    }
    set_status(api, &name, kt, previous, None, false, reason, message).await?;
    Ok(Action::requeue(Duration::from_secs(60)))
}

#[allow(clippy::too_many_arguments)]
async fn set_status(
    api: &Api<KafkaTopic>,
    name: &str,
    kt: &KafkaTopic,
    previous: &KafkaTopicStatus,
    observed: Option<&crate::plan::topic::ObservedTopic>,
    ready: bool,
    reason: &str,
    message: &str,
) -> Result<(), Error> {
    let mut status = previous.clone();
    status.observed_generation = kt.metadata.generation;
    status.conditions = merge_conditions(
        &previous.conditions,
        vec![Condition::new("Ready", ready, reason, message)],
        &now_rfc3339(),
        kt.metadata.generation,
    );
    if let Some(o) = observed {
        status.topic_name = Some(kt.topic_name());
        status.topic_id = o.topic_id.clone();
        status.partitions = o.partitions.clone();
    }
    super::apply_status(api, name, &status).await
}

async fn cleanup(kt: &KafkaTopic, ctx: &Context) -> Result<Action, Error> {
    let (_, ns) = name_ns(kt)?;
    let topic = kt.topic_name();
    if kt.spec.deletion_policy == DeletionPolicy::Retain {
        ctx.event(
            kt,
            EventType::Normal,
            "TopicRetained",
            format!("deletionPolicy Retain: topic {topic} stays in the cluster"),
        )
        .await;
        return Ok(Action::await_change());
    }
    // Only a topic this resource has seen in the cluster is deleted.
    if kt
        .status
        .as_ref()
        .and_then(|s| s.topic_name.as_ref())
        .is_none()
    {
        return Ok(Action::await_change());
    }
    // A duplicate never managed the topic: it stays for the KafkaTopic that does.
    let api: Api<KafkaTopic> = Api::namespaced(ctx.client.clone(), &ns);
    if managed_by_other(kt, &api.list(&ListParams::default()).await?.items).is_some() {
        return Ok(Action::await_change());
    }
    let clusters: Api<KafkaCluster> = Api::namespaced(ctx.client.clone(), &ns);
    let cluster_name = &kt.spec.cluster_ref.name;
    let Some(cluster) = clusters.get_opt(cluster_name).await? else {
        // The cluster (and its data) is gone: nothing left to delete.
        return Ok(Action::await_change());
    };
    let bootstrap = ctx.kafka_bootstrap(&cluster).await?;
    ctx.admin(&bootstrap).delete_topic(&topic).await?;
    ctx.event(
        kt,
        EventType::Normal,
        "TopicDeleted",
        format!("deleted topic {topic}"),
    )
    .await;
    Ok(Action::await_change())
}
