//! Step "objects": the cluster's ServiceMonitor (the other objects are applied in the driver).

use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams,
};
use kube::runtime::events::EventType;

use super::super::{Context, Error, FIELD_MANAGER};
use crate::crd::KafkaCluster;
use crate::plan::cluster::{service_monitor, SERVICE_MONITOR_GVK};

/// Applies the cluster's ServiceMonitor when `spec.metrics.serviceMonitor` is on, removes it when
/// off. Without the Prometheus Operator's ServiceMonitor kind in the cluster, a Warning says so
/// and the rest of the reconcile goes on.
pub(super) async fn sync_service_monitor(
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
