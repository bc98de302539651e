//! Step: certificates and the NetworkPolicy. For a secured cluster it keeps the CA, broker and
//! operator certificate Secrets (or, with `spec.tls.issuer`, cert-manager Certificates) as
//! `plan::certificates` decides, and returns the hash the pod template carries so that a
//! re-issued broker certificate rolls the brokers. Every cluster gets its NetworkPolicy
//! unless `spec.networkPolicy.enabled` is false.

use std::collections::BTreeMap;
use std::time::SystemTime;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind};
use kube::runtime::events::EventType;
use kube::Resource;

use super::ssa;
use crate::certs::{self, Ca};
use crate::crd::KafkaCluster;
use crate::plan::certificates::{
    ca_data, ca_from, ensure_ca, plan_broker_certs, plan_operator_cert, renewal_asked, Lifetimes,
    WantedCert,
};
use crate::plan::cluster::{selector_labels, CLUSTER_LABEL};
use crate::plan::security::{
    broker_certs_secret, broker_sans, broker_tls_secret, certificates, clients_ca_secret,
    cluster_ca_secret, network_policy, operator_cert_secret, tls_hash, CA_CERT_KEY,
    CERTIFICATE_GVK, OPERATOR_CN, TLS_CERT_KEY,
};
use crate::reconcile::{Context, Error};

/// Annotation of the broker-certs Secret: how many times its certificates were re-issued
/// (renewal, changed names, new CA). It feeds the pod-template hash; a first certificate for a
/// new pod does not count.
pub(super) const GENERATION_ANNOTATION: &str = "samsa.dev/certs-generation";

/// Annotation of the KafkaCluster: a token (any text) asking for every broker certificate to be
/// re-issued now, once per new token (a forced renewal, e.g. after a key may have leaked).
pub(super) const RENEW_ANNOTATION: &str = "samsa.dev/renew-certificates";

/// Annotation of the broker-certs Secret: the last `samsa.dev/renew-certificates` token the
/// operator acted on.
pub(super) const RENEWED_ANNOTATION: &str = "samsa.dev/renewed-certificates";

fn meta(kc: &KafkaCluster, name: &str, ns: &str, secret: String) -> ObjectMeta {
    let labels = selector_labels(name);
    ObjectMeta {
        name: Some(secret),
        namespace: Some(ns.to_string()),
        labels: Some(labels),
        owner_references: kc.controller_owner_ref(&()).map(|o| vec![o]),
        ..Default::default()
    }
}

/// A Secret's data as text (values that are not UTF-8 are left out: they are re-made).
fn text_data(secret: Option<&Secret>) -> BTreeMap<String, String> {
    secret
        .and_then(|s| s.data.as_ref())
        .map(|d| {
            d.iter()
                .filter_map(|(k, v)| Some((k.clone(), String::from_utf8(v.0.clone()).ok()?)))
                .collect()
        })
        .unwrap_or_default()
}

fn secret(meta: ObjectMeta, data: &BTreeMap<String, String>) -> Secret {
    Secret {
        metadata: meta,
        type_: Some("Opaque".into()),
        data: Some(
            data.iter()
                .map(|(k, v)| (k.clone(), ByteString(v.clone().into_bytes())))
                .collect(),
        ),
        ..Default::default()
    }
}

/// Keeps the certificates of a secured cluster. `pods`: every broker pod that has or will have
/// a certificate (all sets). Returns the pod-template hash (`None` for an unsecured cluster).
pub(super) async fn sync_certificates(
    kc: &KafkaCluster,
    ctx: &Context,
    name: &str,
    ns: &str,
    pods: &[String],
) -> Result<Option<String>, Error> {
    if !kc.spec.secured() {
        return Ok(None);
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let life = Lifetimes::of(&kc.spec);
    let now = SystemTime::now();

    // The clients CA is the operator's in both modes: KafkaUser certificates come from it.
    let clients = ensure_ca_secret(
        kc,
        ctx,
        &secrets,
        name,
        ns,
        &clients_ca_secret(name),
        life,
        now,
    )
    .await?;

    if kc.spec.tls.as_ref().is_some_and(|t| t.issuer.is_some()) {
        let (group, version, kind) = CERTIFICATE_GVK;
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), ns, &resource);
        let make_meta = |n: String| meta(kc, name, ns, n);
        for cert in certificates(&kc.spec, name, ns, &make_meta, &ctx.plan) {
            let cert_name = cert["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let obj: DynamicObject = serde_json::from_value(cert)
                .map_err(|e| Error::Waiting(format!("Certificate {cert_name}: {e}")))?;
            ssa(&api, &cert_name, &obj).await?;
        }
        // The brokers start once cert-manager has written their Secret.
        let shared = broker_tls_secret(name);
        let data = text_data(secrets.get_opt(&shared).await?.as_ref());
        let Some(cert) = data.get(TLS_CERT_KEY) else {
            return Err(Error::Waiting(format!(
                "cert-manager has not issued Certificate {shared} yet"
            )));
        };
        let fingerprint = certs::fingerprint(cert)?;
        let ca = data.get(CA_CERT_KEY).cloned().unwrap_or_default();
        return Ok(Some(tls_hash(0, &[&fingerprint, &ca, &clients.cert_pem])));
    }

    let cluster_ca = ensure_ca_secret(
        kc,
        ctx,
        &secrets,
        name,
        ns,
        &cluster_ca_secret(name),
        life,
        now,
    )
    .await?;

    // Broker certificates.
    let wanted: Vec<WantedCert> = pods
        .iter()
        .map(|pod| WantedCert {
            pod: pod.clone(),
            sans: broker_sans(name, ns, pod, &ctx.plan),
        })
        .collect();
    let certs_name = broker_certs_secret(name);
    let current = secrets.get_opt(&certs_name).await?;
    let before = text_data(current.as_ref());
    let mut generation: u64 = current
        .as_ref()
        .and_then(|s| s.metadata.annotations.as_ref())
        .and_then(|a| a.get(GENERATION_ANNOTATION))
        .and_then(|g| g.parse().ok())
        .unwrap_or(0);
    let asked = kc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(RENEW_ANNOTATION))
        .map(|t| t.trim().to_string());
    let done = current
        .as_ref()
        .and_then(|s| s.metadata.annotations.as_ref())
        .and_then(|a| a.get(RENEWED_ANNOTATION))
        .cloned();
    let renew = renewal_asked(asked.as_deref(), done.as_deref());
    let plan = plan_broker_certs(&before, &cluster_ca, &wanted, life, now, renew)?;
    if !plan.reissued.is_empty() {
        generation = generation.saturating_add(1);
        let why = if renew {
            format!(
                "{RENEW_ANNOTATION}: {}",
                asked.as_deref().unwrap_or_default()
            )
        } else {
            "expiring, names changed or a new CA".to_string()
        };
        ctx.event(
            kc,
            EventType::Normal,
            "CertificatesRenewed",
            format!(
                "re-issued the broker certificates of {} ({why}); the brokers roll to load them",
                crate::plan::listed(&plan.reissued)
            ),
        )
        .await;
    }
    if plan.changed(&before) || current.is_none() || renew {
        let mut m = meta(kc, name, ns, certs_name.clone());
        let mut annotations =
            BTreeMap::from([(GENERATION_ANNOTATION.to_string(), generation.to_string())]);
        // The token acted on stays recorded on every later write (server-side apply would
        // otherwise drop it, and the next reconcile would renew again).
        let token = if renew { asked.clone() } else { done.clone() };
        if let Some(token) = token {
            annotations.insert(RENEWED_ANNOTATION.to_string(), token);
        }
        m.annotations = Some(annotations);
        ssa(&secrets, &certs_name, &secret(m, &plan.data)).await?;
        tracing::info!(
            issued = ?plan.issued,
            reissued = ?plan.reissued,
            dropped = ?plan.dropped,
            "broker certificates written"
        );
    }

    // The operator's client certificate.
    let op_name = operator_cert_secret(name);
    let op_before = text_data(secrets.get_opt(&op_name).await?.as_ref());
    let (op_data, op_new) = plan_operator_cert(&op_before, &cluster_ca, OPERATOR_CN, life, now)?;
    if op_new {
        ssa(
            &secrets,
            &op_name,
            &secret(meta(kc, name, ns, op_name.clone()), &op_data),
        )
        .await?;
    }

    Ok(Some(tls_hash(
        generation,
        &[&cluster_ca.cert_pem, &clients.cert_pem],
    )))
}

/// The CA in Secret `secret_name`, made (or renewed) and written when needed.
#[allow(clippy::too_many_arguments)]
async fn ensure_ca_secret(
    kc: &KafkaCluster,
    ctx: &Context,
    secrets: &Api<Secret>,
    name: &str,
    ns: &str,
    secret_name: &str,
    life: Lifetimes,
    now: SystemTime,
) -> Result<Ca, Error> {
    let existing = ca_from(&text_data(secrets.get_opt(secret_name).await?.as_ref()));
    let had = existing.is_some();
    let (ca, new) = ensure_ca(existing, secret_name, life, now)?;
    if new {
        ssa(
            secrets,
            secret_name,
            &secret(meta(kc, name, ns, secret_name.to_string()), &ca_data(&ca)),
        )
        .await?;
        if had {
            ctx.event(
                kc,
                EventType::Warning,
                "CaRenewed",
                format!("{secret_name}: the CA was due for renewal and was replaced; clients that trust the old CA need the new ca.crt"),
            )
            .await;
        }
    }
    Ok(ca)
}

/// Applies the cluster's NetworkPolicy, or removes it when `spec.networkPolicy.enabled` is
/// false.
pub(super) async fn sync_network_policy(
    kc: &KafkaCluster,
    ctx: &Context,
    name: &str,
    ns: &str,
) -> Result<(), Error> {
    let api: Api<NetworkPolicy> = Api::namespaced(ctx.client.clone(), ns);
    if kc.spec.network_policy.enabled {
        let np = network_policy(
            &kc.spec,
            name,
            meta(kc, name, ns, name.to_string()),
            &ctx.plan.operator,
        );
        ssa(&api, name, &np).await?;
    } else if let Some(existing) = api.get_opt(name).await? {
        // Only the operator's own (labelled with the cluster).
        let ours = existing
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(CLUSTER_LABEL))
            .is_some_and(|c| c == name);
        if ours {
            api.delete(name, &DeleteParams::default()).await?;
        }
    }
    Ok(())
}
