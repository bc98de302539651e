//! Step "racks": each broker pod gets its node's rack before the broker starts.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::EventType;
use serde_json::json;

use super::super::{Context, Error};
use crate::crd::KafkaCluster;
use crate::plan::cluster::{node_rack, rack_annotation_change, RACK_ANNOTATION};

/// Gives each scheduled broker pod the rack annotation its broker reads at start-up (through a
/// downward-API file): the value of the node's `topology_key` label. A pod cannot read its node's
/// labels itself. Pods on a node without the label get a Warning: their brokers wait for a rack.
pub(super) async fn assign_racks(
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
