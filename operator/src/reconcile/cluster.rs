//! KafkaCluster reconcile: apply the planned objects with server-side apply, then report the
//! StatefulSet's and pods' state in the status.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;
use tracing::Instrument;

use super::{name_ns, now_rfc3339, Context, Error, FIELD_MANAGER};
use crate::crd::{
    describe_errors, merge_conditions, Condition, FieldError, KafkaCluster, KafkaClusterStatus,
    UpgradeStrategy,
};
use crate::kafka::RESOURCE_BROKER;
use crate::plan::broker_config::{env_name, UpdateMode, BROKER_KEYS};
use crate::plan::cluster::{
    check_spec, desired_objects, node_rack, rack_annotation_change, selector_labels,
    service_monitor, RACK_ANNOTATION, RESTART_HASH_ANNOTATION, SERVICE_MONITOR_GVK,
};
use crate::plan::cluster_status::cluster_status;
use crate::plan::scale::{blocked_message, replicas_on_removed};

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

fn template_hash(sts: &StatefulSet) -> Option<String> {
    sts.spec
        .as_ref()?
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(RESTART_HASH_ANNOTATION)
        .cloned()
}

/// The dynamic settings that differ between the old ConfigMap data and the new config:
/// (to set, to reset).
fn dynamic_changes(
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> (BTreeMap<String, String>, Vec<String>) {
    let mut set = BTreeMap::new();
    let mut delete = Vec::new();
    for (key, mode) in BROKER_KEYS {
        if *mode != UpdateMode::Dynamic {
            continue;
        }
        let before = old.get(&env_name(key));
        match (before, new.get(*key)) {
            (b, Some(v)) if b != Some(v) => {
                set.insert(key.to_string(), v.clone());
            }
            (Some(_), None) => delete.push(key.to_string()),
            _ => {}
        }
    }
    (set, delete)
}

async fn apply(kc: &KafkaCluster, ctx: &Context) -> Result<Action, Error> {
    let (name, ns) = name_ns(kc)?;
    let client = ctx.client.clone();
    let clusters: Api<KafkaCluster> = Api::namespaced(client.clone(), &ns);
    let previous = kc.status.clone().unwrap_or_default();
    let controllers = previous
        .controllers
        .unwrap_or_else(|| kc.spec.initial_controllers());
    let bootstrap = ctx.bootstrap(&name, &ns, kc.spec.listeners.client);

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
        ctx.event(kc, EventType::Warning, "InvalidSpec", message.clone())
            .await;
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
        patch_status(&clusters, &name, &status).await?;
        return Ok(Action::await_change());
    }

    let mut desired = desired_objects(kc, controllers, &ctx.plan)?;
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);

    let old_sts = sets.get_opt(&name).await?;
    let old_cm = config_maps
        .get_opt(&crate::plan::cluster::config_map_name(&name))
        .await?;

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
    let old_replicas = old_sts
        .as_ref()
        .and_then(|s| s.spec.as_ref())
        .and_then(|s| s.replicas);
    let blocked = match old_replicas {
        Some(old) if old > kc.spec.brokers => scale_down_blocked(ctx, &bootstrap, old, kc).await,
        _ => None,
    };
    if let (Some(old), Some(_)) = (old_replicas, &blocked) {
        // Keep the brokers that still hold replicas.
        if let Some(spec) = desired.stateful_set.spec.as_mut() {
            spec.replicas = Some(old);
        }
    }
    let sts = ssa(&sets, &name, &desired.stateful_set).await?;
    ssa(&pdbs, &name, &desired.pdb).await?;
    sync_service_monitor(kc, ctx, &name, &ns).await?;

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
            if let Some(message) = &blocked {
                let said = previous
                    .conditions
                    .iter()
                    .any(|c| c.reason == "ScaleDownBlocked" && &c.message == message);
                if !said {
                    ctx.event(kc, EventType::Warning, "ScaleDownBlocked", message.clone())
                        .await;
                }
            } else if old_replicas != kc.spec.brokers {
                ctx.event(
                    kc,
                    EventType::Normal,
                    "Scaling",
                    format!("brokers {old_replicas} → {}", kc.spec.brokers),
                )
                .await;
            }
            if template_hash(old) != template_hash(&desired.stateful_set) {
                if kc.spec.upgrade.strategy == UpgradeStrategy::BlueGreen {
                    ctx.event(
                        kc,
                        EventType::Warning,
                        "BlueGreenNotSupported",
                        "spec.upgrade.strategy is BlueGreen, which this operator version does not do yet: the brokers restart one at a time instead".to_string(),
                    )
                    .await;
                }
                ctx.event(
                    kc,
                    EventType::Normal,
                    "RollingRestart",
                    "the image or a setting that needs a restart changed: brokers restart one at a time"
                        .to_string(),
                )
                .await;
            } else if let Some(old_cm) = &old_cm {
                let old_data = old_cm.data.clone().unwrap_or_default();
                let (set, delete) = dynamic_changes(&old_data, &kc.spec.config);
                if !set.is_empty() || !delete.is_empty() {
                    apply_dynamic(kc, ctx, &bootstrap, &set, &delete).await;
                }
            }
        }
    }

    let selector = selector_labels(&name)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut pod_list = pods.list(&ListParams::default().labels(&selector)).await?;
    if let Some(rack) = &kc.spec.rack {
        assign_racks(kc, ctx, &pods, &mut pod_list.items, &rack.topology_key).await?;
    }
    let mut status: KafkaClusterStatus =
        cluster_status(kc, Some(&sts), &pod_list.items, controllers, &bootstrap);
    if let Some(message) = &blocked {
        for c in status.conditions.iter_mut() {
            match c.type_.as_str() {
                "Ready" => *c = Condition::new("Ready", false, "ScaleDownBlocked", message.clone()),
                "Progressing" => {
                    *c = Condition::new("Progressing", false, "ScaleDownBlocked", message.clone())
                }
                _ => {}
            }
        }
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
    if ready && !was_ready {
        ctx.event(
            kc,
            EventType::Normal,
            "Ready",
            format!("all {} brokers ready", kc.spec.brokers),
        )
        .await;
    }
    patch_status(&clusters, &name, &status).await?;
    Ok(Action::requeue(if ready {
        Duration::from_secs(300)
    } else {
        Duration::from_secs(15)
    }))
}

/// Applies the cluster's ServiceMonitor when `spec.metrics.serviceMonitor` is on, removes it when
/// off. Without the Prometheus Operator's ServiceMonitor kind in the cluster, a Warning says so
/// and the rest of the reconcile goes on.
async fn sync_service_monitor(
    kc: &KafkaCluster,
    ctx: &Context,
    name: &str,
    ns: &str,
) -> Result<(), Error> {
    let (group, version, kind) = SERVICE_MONITOR_GVK;
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, version, kind),
        "servicemonitors",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), ns, &resource);
    if kc.spec.metrics.service_monitor {
        let desired = service_monitor(kc)?;
        let params = PatchParams::apply(FIELD_MANAGER).force();
        match api.patch(name, &params, &Patch::Apply(&desired)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => {
                ctx.event(
                    kc,
                    EventType::Warning,
                    "ServiceMonitorUnavailable",
                    format!(
                        "spec.metrics.serviceMonitor is true but the cluster has no {kind} kind ({group}/{version}): install the Prometheus Operator's CRDs, or scrape the brokers' metrics port yourself"
                    ),
                )
                .await;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    } else {
        // Only a ServiceMonitor this cluster owns: one a user made under that name stays.
        let existing = match api.get_opt(name).await {
            Ok(existing) => existing,
            // No such kind, or not allowed to read it (then the operator made none).
            Err(kube::Error::Api(e)) if matches!(e.code, 403 | 404) => None,
            Err(e) => return Err(e.into()),
        };
        let uid = kc.metadata.uid.as_deref();
        let owned = existing.is_some_and(|sm| {
            sm.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| Some(o.uid.as_str()) == uid)
        });
        if !owned {
            return Ok(());
        }
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {
                ctx.event(
                    kc,
                    EventType::Normal,
                    "ServiceMonitorDeleted",
                    format!("spec.metrics.serviceMonitor is off: deleted {kind} {name}"),
                )
                .await;
                Ok(())
            }
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Why removing brokers `spec.brokers..old` must wait: some hold partition replicas (or the
/// replicas cannot be read). `None`: the scale-down may go ahead.
async fn scale_down_blocked(
    ctx: &Context,
    bootstrap: &str,
    old: i32,
    kc: &KafkaCluster,
) -> Option<String> {
    let to = kc.spec.brokers;
    match ctx.admin(bootstrap).metadata(None).await {
        Ok(meta) => {
            let blocking = replicas_on_removed(
                meta.topics
                    .iter()
                    .map(|(name, t)| (name.as_str(), t.partitions.as_slice())),
                to,
            );
            (!blocking.is_empty()).then(|| blocked_message(old, to, &blocking))
        }
        Err(e) => Some(format!(
            "spec.brokers: cannot go from {old} to {to} brokers yet: the brokers' partition replicas cannot be read ({e}); the brokers stay at {old} until they can"
        )),
    }
}

/// Gives each scheduled broker pod the rack annotation its broker reads at start-up (through a
/// downward-API file): the value of the node's `topology_key` label. A pod cannot read its node's
/// labels itself. Pods on a node without the label get a Warning: their brokers wait for a rack.
async fn assign_racks(
    kc: &KafkaCluster,
    ctx: &Context,
    pods: &Api<Pod>,
    list: &mut [Pod],
    topology_key: &str,
) -> Result<(), Error> {
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let mut racks: BTreeMap<String, Result<String, String>> = BTreeMap::new();
    for pod in list.iter_mut() {
        let (Some(pod_name), Some(node)) = (
            pod.metadata.name.clone(),
            pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        ) else {
            continue;
        };
        if !racks.contains_key(&node) {
            let rack = match nodes.get_opt(&node).await {
                Ok(n) => node_rack(
                    topology_key,
                    &node,
                    n.and_then(|n| n.metadata.labels).as_ref(),
                ),
                Err(e) => Err(format!("cannot read node {node}: {e}")),
            };
            racks.insert(node.clone(), rack);
        }
        match &racks[&node] {
            Ok(rack) => {
                let Some(value) = rack_annotation_change(pod.metadata.annotations.as_ref(), rack)
                else {
                    continue;
                };
                let patch = json!({ "metadata": { "annotations": { RACK_ANNOTATION: value } } });
                *pod = pods
                    .patch(&pod_name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                tracing::info!(pod = %pod_name, %node, rack = %value, "rack assigned");
                ctx.event(
                    kc,
                    EventType::Normal,
                    "RackAssigned",
                    format!("broker pod {pod_name} on node {node}: rack {value} (node label {topology_key})"),
                )
                .await;
            }
            Err(message) => {
                let has_rack = pod
                    .metadata
                    .annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key(RACK_ANNOTATION));
                if !has_rack {
                    tracing::warn!(pod = %pod_name, %message, "no rack for a broker pod");
                    ctx.event(
                        kc,
                        EventType::Warning,
                        "RackUnknown",
                        format!("{message}: broker pod {pod_name} waits for its rack and does not start"),
                    )
                    .await;
                }
            }
        }
    }
    Ok(())
}

/// Applies changed dynamic settings to the running brokers (cluster-wide default, like
/// `kafka-configs --entity-default`); when the brokers refuse, the values wait for the next
/// restart and a Warning says so.
async fn apply_dynamic(
    kc: &KafkaCluster,
    ctx: &Context,
    bootstrap: &str,
    set: &BTreeMap<String, String>,
    delete: &[String],
) {
    let keys = set
        .keys()
        .cloned()
        .chain(delete.iter().cloned())
        .collect::<Vec<_>>()
        .join(", ");
    let admin = ctx.admin(bootstrap);
    match admin.alter_configs(RESOURCE_BROKER, "", set, delete).await {
        Ok(()) => {
            ctx.event(
                kc,
                EventType::Normal,
                "ConfigUpdated",
                format!("applied {keys} to the running brokers without a restart"),
            )
            .await;
        }
        Err(e) => {
            ctx.event(
                kc,
                EventType::Warning,
                "ConfigPendingRestart",
                format!(
                    "the brokers did not take {keys} live ({e}); the new values take effect when they next restart"
                ),
            )
            .await;
        }
    }
}

async fn patch_status(
    api: &Api<KafkaCluster>,
    name: &str,
    status: &KafkaClusterStatus,
) -> Result<(), Error> {
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn dynamic_changes_compare_env_data_with_config() {
        let old = map(&[
            ("SAMSA_LOG_RETENTION_MS", "1000"),
            ("SAMSA_MESSAGE_MAX_BYTES", "2000"),
            ("SAMSA_NUM_PARTITIONS", "3"),
        ]);
        let new = map(&[
            ("log.retention.ms", "5000"),
            ("min.insync.replicas", "2"),
            ("num.partitions", "6"),
        ]);
        let (set, delete) = dynamic_changes(&old, &new);
        assert_eq!(
            set,
            map(&[("log.retention.ms", "5000"), ("min.insync.replicas", "2")])
        );
        assert_eq!(delete, vec!["message.max.bytes".to_string()]);
        let (set, delete) = dynamic_changes(
            &old,
            &map(&[("log.retention.ms", "1000"), ("message.max.bytes", "2000")]),
        );
        assert!(set.is_empty() && delete.is_empty());
    }
}
