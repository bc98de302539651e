//! KafkaCluster reconcile: one pass of ordered steps, each a file here asking its pure planner
//! in `plan`: validate → objects (ConfigMap, Services, StatefulSet, PDB, ServiceMonitor) →
//! scale guard → dynamic config → racks → rollout → status. A step either lets the next go on
//! or holds with a condition; the status is written once, by server-side apply, before the
//! rollout's actions (pod deletions), so a restarted operator finds every step it took.

mod bluegreen;
mod config;
mod monitor;
mod racks;
mod rebalance;
mod rollout;
mod scale;
mod tls;

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::Instrument;

use super::{apply_status, name_ns, now_rfc3339, Context, Error, FIELD_MANAGER};
use crate::crd::{
    describe_errors, merge_conditions, BrokerSet, Condition, FieldError, KafkaCluster,
    KafkaClusterStatus,
};
use crate::plan::cluster::{
    check_spec, desired_objects, operator_rolls, quorum_voters, selector_labels, SetTemplate,
};
use crate::plan::cluster_status::cluster_status;
use crate::plan::roll::restart_summary;

pub use config::dynamic_delta;

/// Kind label of the metrics.
pub const KIND: &str = "KafkaCluster";

/// Reconciles one KafkaCluster.
pub async fn reconcile(kc: Arc<KafkaCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let start = Instant::now();
    let span = tracing::info_span!(
        "reconcile",
        kind = KIND,
        namespace = kc.metadata.namespace.as_deref().unwrap_or_default(),
        cluster = kc.metadata.name.as_deref().unwrap_or_default(),
        generation = kc.metadata.generation.unwrap_or_default(),
    );
    let result = apply(&kc, &ctx).instrument(span).await;
    ctx.metrics.observe(KIND, start.elapsed(), result.is_ok());
    if result.is_ok() {
        ctx.succeeded(kc.as_ref());
    }
    result
}

async fn ssa<K>(api: &Api<K>, name: &str, obj: &K) -> Result<K, Error>
where
    K: Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let params = PatchParams::apply(FIELD_MANAGER).force();
    Ok(api.patch(name, &params, &Patch::Apply(obj)).await?)
}

/// Puts the certificates' hash into the pod template: a re-issued broker certificate is a new
/// revision, rolled by the operator's gated roll.
fn set_tls_hash(sts: &mut StatefulSet, hash: &str) {
    if let Some(spec) = sts.spec.as_mut() {
        spec.template
            .metadata
            .get_or_insert_with(Default::default)
            .annotations
            .get_or_insert_with(Default::default)
            .insert(
                crate::plan::security::TLS_HASH_ANNOTATION.to_string(),
                hash.to_string(),
            );
    }
}

async fn apply(kc: &KafkaCluster, ctx: &Context) -> Result<Action, Error> {
    let (name, ns) = name_ns(kc)?;
    let client = ctx.client.clone();
    let clusters: Api<KafkaCluster> = Api::namespaced(client.clone(), &ns);
    let previous = kc.status.clone().unwrap_or_default();
    let controllers = previous
        .controllers
        .unwrap_or_else(|| kc.spec.initial_controllers());

    // Step: validate. An invalid spec changes nothing, and no pod restarts for it.
    let mut errs = check_spec(&kc.spec);
    if let (Some(fixed), Some(asked)) = (previous.controllers, kc.spec.controllers) {
        if fixed != asked {
            errs.push(FieldError {
                field: "spec.controllers".into(),
                message: format!(
                    "is {asked} but the cluster's quorum has {fixed} voters, fixed at creation"
                ),
            });
        }
    }
    if kc.spec.brokers < controllers {
        errs.push(FieldError {
            field: "spec.brokers".into(),
            message: format!(
                "is {} but the metadata quorum has {controllers} voters (pods 0..{controllers}); the cluster cannot have fewer brokers",
                kc.spec.brokers
            ),
        });
    }
    if !errs.is_empty() {
        let message = describe_errors(&errs);
        tracing::warn!(%message, "invalid KafkaCluster spec");
        let said = previous
            .conditions
            .iter()
            .any(|c| c.reason == "InvalidSpec" && c.message == message);
        if !said {
            ctx.event(kc, EventType::Warning, "InvalidSpec", message.clone())
                .await;
        }
        let mut status = previous.clone();
        status.observed_generation = kc.metadata.generation;
        status.conditions = merge_conditions(
            &previous.conditions,
            vec![
                Condition::new("Ready", false, "InvalidSpec", message.clone()),
                Condition::new("Progressing", false, "InvalidSpec", ""),
                Condition::new("Degraded", true, "InvalidSpec", message),
            ],
            &now_rfc3339(),
            kc.metadata.generation,
        );
        apply_status(&clusters, &name, &status).await?;
        return Ok(Action::await_change());
    }

    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let selector = selector_labels(&name)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut pod_list = pods.list(&ListParams::default().labels(&selector)).await?;
    let now_ms = k8s_openapi::jiff::Timestamp::now().as_millisecond();

    // Step: blue-green (which broker sets exist, and which image each runs).
    let first_active = previous
        .broker_set
        .clone()
        .unwrap_or_else(|| BrokerSet::first(&name));
    let first_sts = sets.get_opt(&first_active.name).await?;
    // The Kafka endpoint of the brokers as they run now (CONTROLPLANE over TLS once their
    // template has it), which a roll to a new security setting must keep reaching.
    let (bootstrap, via_tls) = match first_sts
        .as_ref()
        .and_then(crate::plan::security::running_endpoint)
    {
        Some((port, tls)) => (ctx.bootstrap(&name, &ns, port), tls),
        None => (ctx.bootstrap_of(kc), kc.spec.secured()),
    };
    if let Err(e) = ctx.use_tls(&name, &ns, &bootstrap, via_tls).await {
        // A new secured cluster: its certificates come in the objects step.
        tracing::debug!(error = %e, "no TLS for the brokers' CONTROLPLANE listener yet");
    }
    let bg = bluegreen::decide_step(
        kc,
        ctx,
        &bootstrap,
        &first_active,
        first_sts.as_ref(),
        &sets,
        &pod_list.items,
        controllers,
        now_ms,
        &now_rfc3339(),
    )
    .await;
    let active = bg.active.clone();
    let old_sts = if active == first_active {
        first_sts
    } else {
        sets.get_opt(&active.name).await?
    };
    let voters = match (&bg.voters, &previous.quorum_voters) {
        (Some(ids), _) => ids
            .iter()
            .map(|id| {
                format!(
                    "{id}@{}:{}",
                    bluegreen::controller_address(kc, ctx, &active, *id),
                    kc.spec.listeners.controller
                )
            })
            .collect::<Vec<_>>()
            .join(","),
        (None, Some(v)) => v.clone(),
        (None, None) => quorum_voters(
            &name,
            &ns,
            controllers,
            kc.spec.listeners.controller,
            &ctx.plan,
        ),
    };
    let template = match &bg.active_image {
        Some((image, version)) => SetTemplate {
            set: active.clone(),
            image: image.clone(),
            version: version.clone(),
        },
        None => SetTemplate::from_spec(active.clone(), &kc.spec, &ctx.plan),
    };
    let upgrade = bg.status.as_ref().or(previous.upgrade.as_ref());
    // While an upgrade runs, both sets keep the size it started with.
    let upgrade_size = upgrade
        .filter(|_| bg.in_progress)
        .map(|u| i32::try_from(u.from_ids.len()).unwrap_or(kc.spec.brokers));

    // Step: certificates (secured clusters) and the NetworkPolicy.
    let mut cert_pods: Vec<String> = pod_list
        .items
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let active_size = old_sts
        .as_ref()
        .and_then(|s| s.spec.as_ref())
        .and_then(|s| s.replicas)
        .unwrap_or(0)
        .max(kc.spec.brokers)
        .max(upgrade_size.unwrap_or(0));
    cert_pods.extend((0..active_size).map(|i| format!("{}-{i}", active.name)));
    if let Some((other, _, _)) = &bg.other {
        let size = upgrade_size.unwrap_or(kc.spec.brokers);
        cert_pods.extend((0..size).map(|i| format!("{}-{i}", other.name)));
    }
    cert_pods.sort();
    cert_pods.dedup();
    let tls_hash = tls::sync_certificates(kc, ctx, &name, &ns, &cert_pods).await?;
    if via_tls {
        ctx.use_tls(&name, &ns, &bootstrap, true).await?;
    }
    tls::sync_network_policy(kc, ctx, &name, &ns).await?;

    // Step: objects.
    let mut desired = desired_objects(kc, &template, controllers, &voters, &ctx.plan)?;
    if let Some(hash) = &tls_hash {
        set_tls_hash(&mut desired.stateful_set, hash);
    }
    if let (Some(size), Some(spec)) = (upgrade_size, desired.stateful_set.spec.as_mut()) {
        spec.replicas = Some(size);
    }
    ssa(
        &config_maps,
        &crate::plan::cluster::config_map_name(&name),
        &desired.config_map,
    )
    .await?;
    ssa(
        &services,
        &crate::plan::cluster::headless_name(&name),
        &desired.headless,
    )
    .await?;
    ssa(
        &services,
        &crate::plan::cluster::bootstrap_name(&name),
        &desired.bootstrap,
    )
    .await?;

    // Step: scale guard.
    let old_replicas = old_sts
        .as_ref()
        .and_then(|s| s.spec.as_ref())
        .and_then(|s| s.replicas);
    let blocked = match old_replicas {
        Some(old) if old > kc.spec.brokers && !bg.in_progress => {
            scale::scale_down_blocked(ctx, &bootstrap, old, kc).await
        }
        _ => None,
    };
    // A drain recorded as under way finishes (and says so) before the pods go.
    let drain_open = previous.rebalance.as_ref().is_some_and(|r| {
        r.reason == Some(crate::crd::RebalanceReason::ScaleDown)
            && matches!(
                r.phase,
                crate::crd::RebalancePhase::Waiting
                    | crate::crd::RebalancePhase::Moving
                    | crate::crd::RebalancePhase::Blocked
            )
    });
    let hold =
        blocked.is_some() || (drain_open && old_replicas > Some(kc.spec.brokers)) || bg.in_progress;
    if let (Some(old), true) = (old_replicas, hold) {
        // Keep the brokers that still hold replicas.
        if let Some(spec) = desired.stateful_set.spec.as_mut() {
            spec.replicas = Some(old);
        }
    }
    let sts = ssa(&sets, &active.name, &desired.stateful_set).await?;
    if let Some((other, image, version)) = &bg.other {
        let other_template = SetTemplate {
            set: other.clone(),
            image: image.clone(),
            version: version.clone(),
        };
        let mut green =
            desired_objects(kc, &other_template, controllers, &voters, &ctx.plan)?.stateful_set;
        if let (Some(size), Some(spec)) = (upgrade_size, green.spec.as_mut()) {
            spec.replicas = Some(size);
        }
        if let Some(hash) = &tls_hash {
            set_tls_hash(&mut green, hash);
        }
        ssa(&sets, &other.name, &green).await?;
    }
    ssa(&pdbs, &name, &desired.pdb).await?;
    monitor::sync_service_monitor(kc, ctx, &name, &ns).await?;

    match &old_sts {
        None => {
            ctx.event(
                kc,
                EventType::Normal,
                "Created",
                format!(
                    "created StatefulSet {name} with {} brokers ({controllers} controllers)",
                    kc.spec.brokers
                ),
            )
            .await;
        }
        Some(old) => {
            let old_replicas = old.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
            if blocked.is_none() && old_replicas != kc.spec.brokers {
                ctx.event(
                    kc,
                    EventType::Normal,
                    "Scaling",
                    format!("brokers {old_replicas} → {}", kc.spec.brokers),
                )
                .await;
            }
        }
    }

    // Step: dynamic config, from the spec and what the brokers report; retried until applied.
    let config_pending = if old_sts.is_some() {
        config::sync(kc, ctx, &bootstrap).await.err()
    } else {
        None
    };

    // Step: racks.
    if let Some(rack) = &kc.spec.rack {
        racks::assign_racks(kc, ctx, &pods, &mut pod_list.items, &rack.topology_key).await?;
    }

    // Step: rebalance (replicas follow the brokers: spread onto added ones, drained off those
    // a scale-down removes).
    // While a blue-green upgrade runs, only its own movement (between the two sets) runs.
    let upgrade = bg.forced.as_ref().map(|forced| rebalance::Upgrade {
        forced,
        other: bg
            .other
            .as_ref()
            .map(|(set, _, _)| (set, upgrade_size.unwrap_or(kc.spec.brokers))),
    });
    let moves = match old_replicas {
        Some(running) if upgrade.is_some() || !bg.in_progress => Some(
            rebalance::decide_step(
                kc,
                ctx,
                &bootstrap,
                &active,
                running,
                &pod_list.items,
                upgrade,
                now_ms,
                &now_rfc3339(),
            )
            .await,
        ),
        _ => None,
    };
    // A drain under way is progress, not a blocked scale-down.
    let drain_status = moves
        .as_ref()
        .and_then(|m| m.status.as_ref())
        .or(previous.rebalance.as_ref());
    let draining = moves.as_ref().is_some_and(|m| {
        m.draining
            && m.blocked.is_none()
            && drain_status.is_some_and(|r| r.phase == crate::crd::RebalancePhase::Moving)
    });
    let scale_blocked = blocked.as_ref().filter(|_| !draining).map(|guard| {
        match drain_status.filter(|r| !r.message.is_empty() && !r.removing.is_empty()) {
            Some(r) => format!("{guard}; the drain: {}", r.message),
            None => guard.clone(),
        }
    });
    if let Some(message) = &scale_blocked {
        let said = previous
            .conditions
            .iter()
            .any(|c| c.reason == "ScaleDownBlocked" && &c.message == message);
        if !said {
            ctx.event(kc, EventType::Warning, "ScaleDownBlocked", message.clone())
                .await;
        }
    }

    // Step: rollout (the operator's own, unless the test-only annotation leaves it to the
    // StatefulSet).
    let roll = if operator_rolls(kc) && !bg.in_progress {
        rollout::decide(
            kc,
            ctx,
            &active,
            &sts,
            &pod_list.items,
            &bootstrap,
            controllers,
            previous.rollout.as_ref(),
            now_ms,
        )
        .await
    } else {
        None
    };

    // Step: status, written before the roll's actions.
    let mut status: KafkaClusterStatus = cluster_status(
        kc,
        &active,
        Some(&sts),
        &pod_list.items,
        controllers,
        &bootstrap,
    );
    if let Some(u) = &bg.status {
        status.upgrade = Some(u.clone());
    }
    if active != BrokerSet::first(&name) || previous.broker_set.is_some() {
        status.broker_set = Some(active.clone());
    }
    if bg.voters.is_some() {
        status.quorum_voters = Some(voters.clone());
    }
    if let Some(u) = status.upgrade.clone().filter(|_| bg.in_progress) {
        // The version moves once promoted.
        status.current_version = previous
            .current_version
            .clone()
            .or(Some(u.from_version.clone()));
        status.target_version = Some(u.to_version.clone());
        let message = format!("blue-green upgrade {:?}: {}", u.phase, u.message);
        for c in status.conditions.iter_mut() {
            if c.type_ == "Progressing" {
                *c = Condition::new("Progressing", true, "BlueGreenUpgrade", message.clone());
            }
        }
    }
    if let Some(m) = &moves {
        if let Some(r) = &m.status {
            status.rebalance = Some(r.clone());
        }
    }
    // An unchanged movement is not written again: the gauges then show the recorded one.
    if let Some(r) = status.rebalance.as_ref().or(previous.rebalance.as_ref()) {
        let previous_phase = previous
            .rebalance
            .as_ref()
            .map(|p| format!("{:?}", p.phase));
        ctx.metrics
            .set_rebalance(&ns, &name, previous_phase.as_deref(), r);
    }
    let rebalance_message = status
        .rebalance
        .as_ref()
        .map(|r| r.message.clone())
        .unwrap_or_default();
    if blocked.is_some() {
        let (reason, progressing, message) = match &scale_blocked {
            Some(m) => ("ScaleDownBlocked", false, m.clone()),
            None => ("Draining", true, rebalance_message.clone()),
        };
        for c in status.conditions.iter_mut() {
            match c.type_.as_str() {
                "Ready" => *c = Condition::new("Ready", false, reason, message.clone()),
                "Progressing" => {
                    *c = Condition::new("Progressing", progressing, reason, message.clone())
                }
                _ => {}
            }
        }
    } else if let Some(m) = moves.as_ref().filter(|m| {
        m.status
            .as_ref()
            .is_some_and(|r| r.phase == crate::crd::RebalancePhase::Moving)
            || m.blocked.is_some()
    }) {
        let (reason, progressing) = if m.blocked.is_some() {
            ("RebalanceBlocked", false)
        } else {
            ("Rebalancing", true)
        };
        let message = m.blocked.clone().unwrap_or(rebalance_message);
        if let Some(c) = status
            .conditions
            .iter_mut()
            .find(|c| c.type_ == "Progressing")
        {
            *c = Condition::new("Progressing", progressing, reason, message);
        }
    }
    if let Some(roll) = &roll {
        status.rollout = Some(roll.status.clone());
        if blocked.is_none() {
            for rc in &roll.conditions {
                if let Some(c) = status.conditions.iter_mut().find(|c| c.type_ == rc.type_) {
                    *c = Condition::new(rc.type_, rc.status, &rc.reason, rc.message.clone());
                }
            }
        }
        ctx.metrics.set_rollout(
            &ns,
            &name,
            roll.status.in_progress.len(),
            previous
                .rollout
                .as_ref()
                .and_then(|r| r.blocked_reason.as_deref()),
            roll.status.blocked_reason.as_deref(),
        );
    }
    status.conditions = merge_conditions(
        &previous.conditions,
        status.conditions,
        &now_rfc3339(),
        kc.metadata.generation,
    );
    let ready = status
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.is_true());
    let was_ready = previous
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.is_true());
    apply_status(&clusters, &name, &status).await?;
    if let Some(m) = &moves {
        rebalance::act(kc, ctx, &bootstrap, m).await;
    }
    if let Some(roll) = &roll {
        rollout::act(kc, ctx, &active, &bootstrap, roll).await;
    }
    bluegreen::act(kc, ctx, &bootstrap, &sets, &bg).await;
    if ready && !was_ready {
        let mut note = format!("all {} brokers ready", kc.spec.brokers);
        if let Some(r) = status
            .rollout
            .as_ref()
            .filter(|r| !r.restart_seconds.is_empty())
        {
            note.push_str(&format!("; last roll: {}", restart_summary(r)));
        }
        ctx.event(kc, EventType::Normal, "Ready", note).await;
    }
    let mut requeue = if ready {
        Duration::from_secs(300)
    } else {
        Duration::from_secs(15)
    };
    if let Some(r) = roll.as_ref().and_then(|r| r.requeue) {
        requeue = requeue.min(r);
    }
    if let Some(r) = moves.as_ref().and_then(|m| m.requeue) {
        requeue = requeue.min(r);
    }
    if let Some(r) = bg.requeue {
        requeue = requeue.min(r);
    }
    if config_pending.is_some() {
        requeue = requeue.min(Duration::from_secs(30));
    }
    Ok(Action::requeue(requeue))
}
