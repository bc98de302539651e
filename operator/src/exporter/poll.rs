//! Reads a [`Snapshot`] of every KafkaCluster a few seconds apart, over the Kafka protocol
//! (Metadata, DescribeConfigs, ListOffsets, ListGroups, OffsetFetch, DescribeGroups,
//! DescribeQuorum), feeds the consumer groups into the shared tracker, and publishes. Runs on
//! the elected operator only. Work per cluster is bounded: at most [`MAX_GROUPS`] groups.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, ListParams, Patch, PatchParams};
use tokio::sync::watch;

use super::{summary, Exporter, GroupSnapshot, PartitionSnapshot, QuorumSnapshot, Snapshot};
use crate::crd::{HealthSummary, KafkaCluster};
use crate::health::{GroupHealth, PolledGroups};
use crate::kafka::{AdminClient, RESOURCE_TOPIC};
use crate::reconcile::Context;

/// Field manager of `status.health` (the reconcile's status writes leave it alone).
pub const HEALTH_FIELD_MANAGER: &str = "samsa-operator-health";

/// Writes `status.health` of a cluster when its counts changed since the last write.
async fn write_health(
    client: &kube::Client,
    kc: &KafkaCluster,
    mut health: crate::crd::HealthSummary,
) {
    let last = kc.status.as_ref().and_then(|s| s.health.as_ref());
    if last.is_some_and(|l| {
        HealthSummary {
            observed_at: String::new(),
            ..l.clone()
        } == health
    }) {
        return;
    }
    health.observed_at = crate::reconcile::now_rfc3339();
    let name = kc.metadata.name.clone().unwrap_or_default();
    let ns = kc.metadata.namespace.clone().unwrap_or_default();
    let api: Api<KafkaCluster> = Api::namespaced(client.clone(), &ns);
    let patch = serde_json::json!({
        "apiVersion": "samsa.dev/v1alpha1",
        "kind": "KafkaCluster",
        "status": { "health": health },
    });
    if let Err(e) = api
        .patch_status(
            &name,
            &PatchParams::apply(HEALTH_FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
    {
        tracing::debug!(namespace = %ns, cluster = %name, error = %e, "cannot write status.health");
    }
}

/// Groups read per cluster and poll, at most (the first by name).
pub const MAX_GROUPS: usize = 1000;

/// One poll of a cluster.
pub async fn snapshot(admin: &AdminClient) -> Result<Snapshot, String> {
    let meta = admin.metadata(None).await.map_err(|e| e.to_string())?;
    let mut partitions = Vec::new();
    let mut led: Vec<(String, i32)> = Vec::new();
    for (topic, t) in &meta.topics {
        let min_isr = admin
            .describe_configs(RESOURCE_TOPIC, topic)
            .await
            .ok()
            .and_then(|entries| {
                entries
                    .into_iter()
                    .find(|e| e.name == "min.insync.replicas")
                    .and_then(|e| e.value)
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(1);
        for p in &t.partitions {
            if p.leader >= 0 {
                led.push((topic.clone(), p.partition));
            }
            partitions.push(PartitionSnapshot {
                topic: topic.clone(),
                partition: p.partition,
                leader: p.leader,
                replicas: p.replicas.clone(),
                isr: p.isr.clone(),
                newest: None,
                oldest: None,
                min_isr,
            });
        }
    }
    // Offsets of the partitions with a leader; one that cannot be read stays without.
    let newest = admin.end_offsets(&led).await.unwrap_or_default();
    let oldest = admin.start_offsets(&led).await.unwrap_or_default();
    for p in &mut partitions {
        let key = (p.topic.clone(), p.partition);
        p.newest = newest.get(&key).copied();
        p.oldest = oldest.get(&key).copied();
    }
    let mut names: Vec<String> = admin
        .list_groups()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|g| g.group_id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    names.truncate(MAX_GROUPS);
    let members: BTreeMap<String, usize> = admin
        .describe_groups(&names)
        .await
        .map(|d| d.into_iter().map(|g| (g.group_id, g.members)).collect())
        .unwrap_or_default();
    let mut groups = Vec::new();
    for group in names {
        let Ok(committed) = admin.committed_offsets(&group).await else {
            continue;
        };
        if committed.is_empty() {
            continue;
        }
        groups.push(GroupSnapshot {
            members: members.get(&group).copied(),
            group,
            committed,
        });
    }
    let quorum = admin.describe_quorum().await.ok().map(|q| QuorumSnapshot {
        leader: q.leader_id,
        high_watermark: q.high_watermark,
        voters: q
            .voters
            .iter()
            .map(|v| (v.replica_id, v.log_end_offset))
            .collect(),
    });
    Ok(Snapshot {
        brokers: meta.brokers.len(),
        partitions,
        groups,
        quorum,
    })
}

/// The (topic, partition, committed, log end) of each group's committed partitions, for the
/// tracker.
pub fn polled(snapshot: &Snapshot) -> PolledGroups {
    let newest: BTreeMap<(&str, i32), i64> = snapshot
        .partitions
        .iter()
        .filter_map(|p| Some(((p.topic.as_str(), p.partition), p.newest?)))
        .collect();
    snapshot
        .groups
        .iter()
        .map(|g| {
            let offsets = g
                .committed
                .iter()
                .filter(|(_, c)| **c >= 0)
                .filter_map(|((t, p), c)| {
                    newest
                        .get(&(t.as_str(), *p))
                        .map(|e| (t.clone(), *p, *c, *e))
                })
                .collect();
            (g.group.clone(), offsets)
        })
        .collect()
}

/// One poll of cluster `namespace/cluster` through `admin`: reads a [`snapshot`], records its
/// groups with `observe` (the shared tracker: given the time in ms since the epoch and the
/// [`polled`] groups, it returns their evaluations) and publishes both on `exporter`. The
/// operator's poll loop and `samsa-operator metrics` both poll through here.
pub async fn poll_cluster(
    admin: &AdminClient,
    exporter: &Exporter,
    namespace: &str,
    cluster: &str,
    observe: impl FnOnce(i64, &PolledGroups) -> Vec<GroupHealth>,
) -> Result<(Snapshot, Vec<GroupHealth>), String> {
    let snap = snapshot(admin).await?;
    let now_ms = k8s_openapi::jiff::Timestamp::now().as_millisecond();
    let health = observe(now_ms, &polled(&snap));
    exporter.publish(namespace, cluster, &snap, &health);
    Ok((snap, health))
}

/// Polls every KafkaCluster (in `namespace`, or all) each `interval` until `stop`.
pub async fn run(
    ctx: Arc<Context>,
    exporter: Arc<Exporter>,
    namespace: Option<String>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let api: Api<KafkaCluster> = match &namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    loop {
        let started = std::time::Instant::now();
        match api.list(&ListParams::default()).await {
            Ok(list) => {
                let mut seen = BTreeSet::new();
                for kc in list.items {
                    let (Some(name), Some(ns)) =
                        (kc.metadata.name.clone(), kc.metadata.namespace.clone())
                    else {
                        continue;
                    };
                    seen.insert((ns.clone(), name.clone()));
                    let bootstrap = ctx.bootstrap_of(&kc);
                    if let Err(e) = ctx.load_kafka_tls(&kc, &bootstrap).await {
                        tracing::debug!(namespace = %ns, cluster = %name, error = %e, "no TLS for the cluster's CONTROLPLANE listener yet");
                    }
                    let admin = ctx.admin(&bootstrap);
                    let key = format!("{ns}/{name}");
                    let observe =
                        |now_ms, groups: &PolledGroups| ctx.observe_groups(&key, now_ms, groups).1;
                    let desired = kc.spec.brokers;
                    match poll_cluster(&admin, &exporter, &ns, &name, observe).await {
                        Ok((snap, health)) => {
                            let now = k8s_openapi::jiff::Timestamp::now().as_millisecond();
                            exporter.poll_outcome(&ns, &name, desired, Some(now as f64 / 1000.0));
                            write_health(&ctx.client, &kc, summary(&snap, &health)).await;
                        }
                        Err(e) => {
                            exporter.poll_outcome(&ns, &name, desired, None);
                            tracing::debug!(namespace = %ns, cluster = %name, error = %e, "cluster metrics not read this time");
                        }
                    }
                }
                for (ns, name) in exporter.clusters() {
                    if !seen.contains(&(ns.clone(), name.clone())) {
                        exporter.forget(&ns, &name);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list KafkaClusters for the metrics"),
        }
        let wait = interval
            .saturating_sub(started.elapsed())
            .max(Duration::from_secs(1));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
