//! Step "blue-green": reads what `plan::bluegreen` needs (the StatefulSets and pods of both broker
//! sets, the registered brokers, the health gates, the quorum's voters), asks it, and carries
//! out its requests once the driver has written the status.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::events::EventType;

use super::super::Context;
use super::rebalance::set_ready;
use super::rollout::{lagging, pod_views};
use crate::crd::{
    BrokerSet, ClaimRetention, KafkaCluster, UpgradePhase, UpgradeStrategy, PROMOTE_ANNOTATION,
    ROLLBACK_ANNOTATION,
};
use crate::health::requests::{self, RequestCounts};
use crate::plan::bluegreen::{decide, BlueGreenAction, BlueGreenDecision, BlueGreenInput};
use crate::plan::cluster::{headless_name, BROKER_CONTAINER};

/// The image of a StatefulSet's broker container and its version label.
pub(super) fn sts_image(sts: &StatefulSet) -> Option<(String, String)> {
    let template = &sts.spec.as_ref()?.template;
    let image = template
        .spec
        .as_ref()?
        .containers
        .iter()
        .find(|c| c.name == BROKER_CONTAINER)?
        .image
        .clone()?;
    let version = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.as_ref())
        .and_then(|l| l.get("app.kubernetes.io/version").cloned())
        .unwrap_or_default();
    Some((image, version))
}

fn annotated(kc: &KafkaCluster, key: &str) -> bool {
    kc.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(key))
}

/// The controller address of broker `id` of `set`.
pub(super) fn controller_address(
    kc: &KafkaCluster,
    ctx: &Context,
    set: &BrokerSet,
    id: i32,
) -> String {
    let name = kc.metadata.name.clone().unwrap_or_default();
    let ns = kc.metadata.namespace.clone().unwrap_or_default();
    format!(
        "{}.{}.{ns}.svc.{}",
        set.pod(id),
        headless_name(&name),
        ctx.plan.cluster_domain
    )
}

/// How long reading one broker's /metrics may take.
const METRICS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);
/// The most of a /metrics answer read.
const METRICS_MAX_BYTES: u64 = 16 << 20;

/// GET http://`host`:`port`/metrics: the body of a 200 answer.
async fn read_metrics(host: &str, port: u16) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let get = async {
        let mut stream = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let request =
            format!("GET /metrics HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("send: {e}"))?;
        let mut answer = Vec::new();
        stream
            .take(METRICS_MAX_BYTES)
            .read_to_end(&mut answer)
            .await
            .map_err(|e| format!("read: {e}"))?;
        let text = String::from_utf8_lossy(&answer).into_owned();
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| "an answer without headers".to_string())?;
        let status = head.lines().next().unwrap_or_default();
        if !status.contains(" 200") {
            return Err(format!("answered {status:?}"));
        }
        Ok(body.to_string())
    };
    tokio::time::timeout(METRICS_TIMEOUT, get)
        .await
        .map_err(|_| format!("no answer within {} s", METRICS_TIMEOUT.as_secs()))?
}

/// Reads the request counters of the brokers `ids` of `set`, compares them with the last ones
/// read and keeps them for the next time: why they fail too many requests, if they do.
async fn request_errors(
    kc: &KafkaCluster,
    ctx: &Context,
    set: &BrokerSet,
    ids: &[i32],
) -> Result<Option<String>, String> {
    let name = kc.metadata.name.clone().unwrap_or_default();
    let ns = kc.metadata.namespace.clone().unwrap_or_default();
    let port = u16::try_from(kc.spec.metrics.port).unwrap_or(9404);
    let mut now = std::collections::BTreeMap::new();
    for id in ids {
        let host = controller_address(kc, ctx, set, *id);
        let text = read_metrics(&host, port).await.map_err(|e| {
            format!("the /metrics of broker {id} ({host}:{port}) cannot be read: {e}")
        })?;
        now.insert(*id, requests::parse(&text));
    }
    let key = format!("{ns}/{name}");
    let before: std::collections::BTreeMap<i32, RequestCounts> = ctx
        .request_samples()
        .insert(key, now.clone())
        .unwrap_or_default();
    Ok(requests::failing(
        &before,
        &now,
        kc.spec.upgrade.blue_green.max_error_percent,
    ))
}

/// The blue-green decision of this reconcile. `active_sts`: the active set's StatefulSet.
#[allow(clippy::too_many_arguments)]
pub(super) async fn decide_step(
    kc: &KafkaCluster,
    ctx: &Context,
    bootstrap: &str,
    active: &BrokerSet,
    active_sts: Option<&StatefulSet>,
    sets: &Api<StatefulSet>,
    pods: &[Pod],
    controllers: i32,
    now_ms: i64,
    now: &str,
) -> BlueGreenDecision {
    let name = kc.metadata.name.clone().unwrap_or_default();
    let ns = kc.metadata.namespace.clone().unwrap_or_default();
    let status = kc.status.clone().unwrap_or_default();
    let previous = status.upgrade.as_ref();
    let running =
        previous.filter(|u| !matches!(u.phase, UpgradePhase::Done | UpgradePhase::RolledBack));
    let desired_image = crate::plan::cluster::broker_image(&kc.spec, &ctx.plan);
    let active_image = active_sts.and_then(sts_image);
    let admin = ctx.admin(bootstrap);

    // The brokers are read only while an upgrade runs.
    let mut registered: Result<Vec<i32>, String> = Err("not read".into());
    let mut problems: Result<Vec<String>, String> = Err("not read".into());
    let mut quorum: Result<(Vec<i32>, i32), String> = Err("not read".into());
    let mut target_ready = false;
    let mut retired_gone = false;
    if let Some(u) = running {
        let target = if u.phase == UpgradePhase::RollingBack {
            (&u.from, u.from_ids.len())
        } else {
            (&u.to, u.to_ids.len())
        };
        target_ready = set_ready(target.0, pods, i32::try_from(target.1).unwrap_or(0));
        match admin.metadata(None).await {
            Ok(meta) => {
                registered = Ok(meta.brokers.iter().map(|b| b.id).collect());
                let mut found: Vec<String> = Vec::new();
                for (topic, t) in &meta.topics {
                    for p in &t.partitions {
                        if p.leader < 0 {
                            found.push(format!("{topic}-{} is offline", p.partition));
                        } else if p.isr.len() < p.replicas.len() {
                            found.push(format!("{topic}-{} is under-replicated", p.partition));
                        }
                    }
                }
                problems = Ok(found);
            }
            Err(e) => {
                registered = Err(e.to_string());
                problems = Err(e.to_string());
            }
        }
        // The consumer groups are sampled from the move on, so that the window judges them on
        // a warm sample; only the window's verdict counts.
        if matches!(
            u.phase,
            UpgradePhase::Moving | UpgradePhase::Verifying | UpgradePhase::AwaitingPromotion
        ) && kc.spec.upgrade.consumer_health.enabled
        {
            let verdict = lagging(kc, ctx, admin.as_ref(), &format!("{ns}/{name}"), now_ms).await;
            if u.phase != UpgradePhase::Moving {
                match verdict {
                    Ok(groups) => {
                        if let Ok(p) = problems.as_mut() {
                            p.extend(groups.into_iter().map(|g| format!("consumer group {g}")));
                        }
                    }
                    // Still warming up: no verdict on the groups yet, which fails nothing.
                    Err(("SamplingConsumerGroups", _)) => {}
                    Err((_, message)) => problems = Err(message),
                }
            }
        }
        // The new brokers' request errors since the last sample.
        if matches!(
            u.phase,
            UpgradePhase::Verifying | UpgradePhase::AwaitingPromotion
        ) {
            match request_errors(kc, ctx, &u.to, &u.to_ids).await {
                Ok(Some(why)) => {
                    if let Ok(p) = problems.as_mut() {
                        p.push(why);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    if let Ok(p) = problems.as_mut() {
                        p.push(e);
                    }
                }
            }
        } else {
            ctx.request_samples().remove(&format!("{ns}/{name}"));
        }
        if u.phase == UpgradePhase::Promoting {
            quorum = admin
                .describe_quorum()
                .await
                .map(|q| (q.voters.iter().map(|v| v.replica_id).collect(), q.leader_id))
                .map_err(|e| e.to_string());
        }
        let retired = if u.phase == UpgradePhase::RollingBack {
            (&u.to, u.to_ids.len())
        } else {
            (&u.from, u.from_ids.len())
        };
        let sts_gone = matches!(sets.get_opt(&retired.0.name).await, Ok(None));
        let pods_left = pod_views(retired.0, pods, i32::try_from(retired.1).unwrap_or(0));
        retired_gone = sts_gone && pods_left.is_empty();
    }
    let previous_problems = problems.as_deref().map_err(String::as_str);
    decide(&BlueGreenInput {
        spec: &kc.spec.upgrade.blue_green,
        enabled: kc.spec.upgrade.strategy == UpgradeStrategy::BlueGreen,
        cluster: &name,
        previous,
        active,
        active_image: active_image.as_ref().map(|(i, v)| (i.as_str(), v.as_str())),
        desired: (desired_image.as_str(), kc.spec.version.as_str()),
        brokers: kc.spec.brokers,
        controllers,
        promote: annotated(kc, PROMOTE_ANNOTATION),
        rollback: annotated(kc, ROLLBACK_ANNOTATION),
        target_ready,
        registered: registered.as_deref().map_err(String::as_str),
        movement: status.rebalance.as_ref(),
        problems: previous_problems,
        quorum: quorum
            .as_ref()
            .map(|(v, l)| (v.as_slice(), *l))
            .map_err(String::as_str),
        retired_gone,
        now,
        now_ms,
    })
}

/// Carries out the requests of a decision whose status is written. Failures are logged and
/// retried by a later reconcile.
pub(super) async fn act(
    kc: &KafkaCluster,
    ctx: &Context,
    bootstrap: &str,
    sets: &Api<StatefulSet>,
    decision: &BlueGreenDecision,
) {
    let name = kc.metadata.name.clone().unwrap_or_default();
    let ns = kc.metadata.namespace.clone().unwrap_or_default();
    let admin = ctx.admin(bootstrap);
    for action in &decision.actions {
        match action {
            BlueGreenAction::AddVoter { set, id } => {
                let host = controller_address(kc, ctx, set, *id);
                let port = u16::try_from(kc.spec.listeners.controller).unwrap_or(9093);
                match admin.add_raft_voter(*id, &host, port).await {
                    Ok(()) => {
                        tracing::info!(broker = id, %host, "added to the quorum's voters");
                        ctx.event(
                            kc,
                            EventType::Normal,
                            "VoterAdded",
                            format!(
                                "broker {id} ({host}:{port}) is a voter of the metadata quorum"
                            ),
                        )
                        .await;
                    }
                    Err(e) => {
                        tracing::warn!(broker = id, error = %e, "AddRaftVoter failed; retried next reconcile")
                    }
                }
            }
            BlueGreenAction::RemoveVoter(id) => match admin.remove_raft_voter(*id).await {
                Ok(()) => {
                    tracing::info!(broker = id, "removed from the quorum's voters");
                    ctx.event(
                        kc,
                        EventType::Normal,
                        "VoterRemoved",
                        format!("broker {id} no longer votes in the metadata quorum"),
                    )
                    .await;
                }
                Err(e) => {
                    tracing::warn!(broker = id, error = %e, "RemoveRaftVoter failed; retried next reconcile")
                }
            },
            BlueGreenAction::DeleteSet(set, count) => {
                match sets.delete(&set.name, &DeleteParams::background()).await {
                    Ok(_) => {
                        tracing::info!(statefulset = %set.name, "deleting the retired broker set");
                        ctx.event(
                            kc,
                            EventType::Normal,
                            "BrokerSetDeleted",
                            format!("StatefulSet {} deleted", set.name),
                        )
                        .await;
                    }
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => {
                        tracing::warn!(statefulset = %set.name, error = %e, "cannot delete the StatefulSet; retried next reconcile");
                        continue;
                    }
                }
                if kc.spec.volume_claims.when_scaled == ClaimRetention::Delete {
                    let claims: Api<PersistentVolumeClaim> =
                        Api::namespaced(ctx.client.clone(), &ns);
                    for i in 0..*count {
                        let claim = format!("data-{}-{i}", set.name);
                        match claims.delete(&claim, &DeleteParams::default()).await {
                            Ok(_) => {
                                tracing::info!(%claim, "volume claim of a retired broker deleted")
                            }
                            Err(kube::Error::Api(e)) if e.code == 404 => {}
                            Err(e) => {
                                tracing::warn!(%claim, error = %e, "cannot delete a volume claim")
                            }
                        }
                    }
                }
            }
            BlueGreenAction::Forget(ids) => {
                for id in ids {
                    if let Err(e) = admin.unregister_broker(*id).await {
                        tracing::info!(broker = id, error = %e, "UnregisterBroker");
                    }
                    // A voter removed earlier stays a learner until asked again.
                    if let Err(e) = admin.remove_raft_voter(*id).await {
                        tracing::debug!(broker = id, error = %e, "removing a retired learner");
                    }
                }
            }
            BlueGreenAction::ClearPromote => {
                let clusters: Api<KafkaCluster> = Api::namespaced(ctx.client.clone(), &ns);
                let patch = serde_json::json!({
                    "metadata": { "annotations": { PROMOTE_ANNOTATION: null } }
                });
                if let Err(e) = clusters
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    tracing::warn!(error = %e, "cannot remove the promote annotation");
                }
            }
            BlueGreenAction::Event(warning, reason, message) => {
                ctx.note(kc, *warning, reason, message.clone()).await;
            }
        }
    }
}
