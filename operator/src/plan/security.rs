//! What a cluster's security spec becomes in its pods and objects: the broker's listener, TLS,
//! SASL, internal-mTLS and authorizer settings (as `SAMSA_*` environment variables, the
//! broker's flags), the certificate volume, the ports, the cluster's NetworkPolicy and, with
//! `spec.tls.issuer`, the cert-manager Certificates. Pure: no I/O. Which certificates to
//! (re)issue is `plan::certificates`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    EnvVar, KeyToPath, ProjectedVolumeSource, SecretProjection, Volume, VolumeMount,
    VolumeProjection,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::cluster::{bootstrap_name, headless_name, selector_labels, PlanContext};
use crate::crd::{KafkaClusterSpec, CONTROLPLANE_LISTENER, CONTROLPLANE_PORT};

/// Where the certificate volume is mounted in the broker container.
pub const TLS_MOUNT: &str = "/etc/samsa/tls";
/// Name of that volume.
pub const TLS_VOLUME: &str = "tls";
/// Pod-template annotation: a hash of the broker certificates' generation and the CAs, so that a
/// re-issued certificate rolls the brokers (through the operator's gated roll).
pub const TLS_HASH_ANNOTATION: &str = "samsa.dev/tls-hash";
/// Common name of the operator's client certificate; its principal is `User:CN=samsa-operator`.
pub const OPERATOR_CN: &str = "samsa-operator";
/// The operator's principal, always a super user.
pub const OPERATOR_PRINCIPAL: &str = "User:CN=samsa-operator";
/// Key of a CA certificate in every Secret that carries one.
pub const CA_CERT_KEY: &str = "ca.crt";
/// Key of a CA's private key.
pub const CA_KEY_KEY: &str = "ca.key";
/// Key of a leaf certificate in the operator's and cert-manager's Secrets.
pub const TLS_CERT_KEY: &str = "tls.crt";
/// Key of a leaf's private key there.
pub const TLS_KEY_KEY: &str = "tls.key";
/// File name of the clients CA certificate in the broker's certificate volume.
pub const CLIENTS_CA_FILE: &str = "clients-ca.crt";

/// Secret holding the cluster CA (`ca.crt`, `ca.key`): it signs the broker and operator
/// certificates, and the brokers trust it on CONTROLPLANE and the internal ports.
pub fn cluster_ca_secret(cluster: &str) -> String {
    format!("{cluster}-cluster-ca")
}
/// Secret holding the clients CA (`ca.crt`, `ca.key`): KafkaUser certificates come from it and
/// `authentication: tls` listeners trust it.
pub fn clients_ca_secret(cluster: &str) -> String {
    format!("{cluster}-clients-ca")
}
/// Secret holding one `<pod>.crt` and `<pod>.key` per broker pod, and `ca.crt`.
pub fn broker_certs_secret(cluster: &str) -> String {
    format!("{cluster}-broker-certs")
}
/// Secret holding the operator's client certificate (`tls.crt`, `tls.key`, `ca.crt`).
pub fn operator_cert_secret(cluster: &str) -> String {
    format!("{cluster}-operator-cert")
}
/// With `spec.tls.issuer`: the cert-manager Certificate (and its Secret: `tls.crt`, `tls.key`,
/// `ca.crt`) every broker of the cluster presents.
pub fn broker_tls_secret(cluster: &str) -> String {
    format!("{cluster}-broker-tls")
}

/// The DNS names a broker pod's certificate covers: its headless-Service names (short,
/// namespace, `svc` and full forms), the bootstrap Service's and `localhost`.
pub fn broker_sans(cluster: &str, namespace: &str, pod: &str, ctx: &PlanContext) -> Vec<String> {
    let mut names = Vec::new();
    for host in [
        format!("{pod}.{}", headless_name(cluster)),
        bootstrap_name(cluster),
    ] {
        names.push(host.clone());
        names.push(format!("{host}.{namespace}"));
        names.push(format!("{host}.{namespace}.svc"));
        names.push(format!("{host}.{namespace}.svc.{}", ctx.cluster_domain));
    }
    names.push("localhost".into());
    names
}

/// The names a shared (cert-manager) broker certificate covers: every pod of the headless
/// Service by wildcard, the bootstrap Service and `localhost`.
pub fn shared_broker_sans(cluster: &str, namespace: &str, ctx: &PlanContext) -> Vec<String> {
    let mut names = Vec::new();
    for (host, wildcard) in [
        (format!("*.{}", headless_name(cluster)), true),
        (bootstrap_name(cluster), false),
    ] {
        if !wildcard {
            names.push(host.clone());
        }
        names.push(format!("{host}.{namespace}"));
        names.push(format!("{host}.{namespace}.svc"));
        names.push(format!("{host}.{namespace}.svc.{}", ctx.cluster_domain));
    }
    names.push("localhost".into());
    names
}

/// One listener of the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerListener {
    /// Name as the broker knows it (upper-case).
    pub name: String,
    /// Name of the pods' and Services' port.
    pub port_name: String,
    /// Port.
    pub port: i32,
    /// PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
    pub protocol: &'static str,
    /// Client certificates required, and the CA file they are checked against.
    pub client_ca: Option<String>,
    /// SASL SCRAM.
    pub scram: bool,
}

/// The broker's Kafka listeners: `None` for a cluster with neither typed listeners nor security,
/// which keeps the single `--listen` listener on `spec.listeners.client` exactly as before.
/// A secured cluster gets `CONTROLPLANE` first.
pub fn broker_listeners(spec: &KafkaClusterSpec) -> Option<Vec<BrokerListener>> {
    let secured = spec.secured();
    let typed = spec.listeners.kafka.as_ref();
    if typed.is_none() && !secured {
        return None;
    }
    let mut out = Vec::new();
    if secured {
        out.push(BrokerListener {
            name: CONTROLPLANE_LISTENER.into(),
            port_name: "controlplane".into(),
            port: CONTROLPLANE_PORT,
            protocol: "SSL",
            client_ca: Some(format!("{TLS_MOUNT}/{CA_CERT_KEY}")),
            scram: false,
        });
    }
    match typed {
        Some(list) => out.extend(list.iter().map(|l| BrokerListener {
            name: l.name.to_ascii_uppercase(),
            port_name: l.name.clone(),
            port: l.port,
            protocol: l.protocol().as_str(),
            client_ca: l.mtls().then(|| format!("{TLS_MOUNT}/{CLIENTS_CA_FILE}")),
            scram: matches!(l.protocol().as_str(), "SASL_PLAINTEXT" | "SASL_SSL"),
        })),
        None => out.push(BrokerListener {
            name: "PLAINTEXT".into(),
            port_name: "kafka".into(),
            port: spec.listeners.client,
            protocol: "PLAINTEXT",
            client_ca: None,
            scram: false,
        }),
    }
    Some(out)
}

/// The Kafka ports of the broker pods and Services, by port name (`kafka` for the plain
/// `spec.listeners.client` listener).
pub fn kafka_ports(spec: &KafkaClusterSpec) -> Vec<(String, i32)> {
    match broker_listeners(spec) {
        Some(list) => list.into_iter().map(|l| (l.port_name, l.port)).collect(),
        None => vec![("kafka".into(), spec.listeners.client)],
    }
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value.into()),
        value_from: None,
    }
}

/// The broker's certificate and key files: its own pair from the broker-certs Secret, or the
/// shared cert-manager pair.
fn cert_files(issuer: bool) -> (String, String) {
    if issuer {
        (
            format!("{TLS_MOUNT}/{TLS_CERT_KEY}"),
            format!("{TLS_MOUNT}/{TLS_KEY_KEY}"),
        )
    } else {
        (
            format!("{TLS_MOUNT}/$(POD_NAME).crt"),
            format!("{TLS_MOUNT}/$(POD_NAME).key"),
        )
    }
}

/// The broker's listener and security settings (after `POD_NAME` in the container's env, which
/// `$(POD_NAME)` refers to), or `None` to keep the legacy `SAMSA_LISTEN` and
/// `SAMSA_ADVERTISED_LISTENER`.
pub fn broker_env(
    spec: &KafkaClusterSpec,
    cluster: &str,
    namespace: &str,
    ctx: &PlanContext,
) -> Option<Vec<EnvVar>> {
    let issuer = spec.tls.as_ref().is_some_and(|t| t.issuer.is_some());
    let listeners = broker_listeners(spec)?;
    let host = format!(
        "$(POD_NAME).{}.{namespace}.svc.{}",
        headless_name(cluster),
        ctx.cluster_domain
    );
    let join = |f: &dyn Fn(&BrokerListener) -> Option<String>| {
        listeners.iter().filter_map(f).collect::<Vec<_>>().join(",")
    };
    let mut out = vec![
        env(
            "SAMSA_LISTENERS",
            join(&|l| Some(format!("{}://0.0.0.0:{}", l.name, l.port))),
        ),
        env(
            "SAMSA_ADVERTISED_LISTENERS",
            join(&|l| Some(format!("{}://{host}:{}", l.name, l.port))),
        ),
        env(
            "SAMSA_LISTENER_SECURITY_PROTOCOL_MAP",
            join(&|l| Some(format!("{}:{}", l.name, l.protocol))),
        ),
    ];
    if !spec.secured() {
        return Some(out);
    }
    let (cert, key) = cert_files(issuer);
    let ca = format!("{TLS_MOUNT}/{CA_CERT_KEY}");
    out.extend([
        env("SAMSA_SSL_CERTIFICATE_LOCATION", cert.clone()),
        env("SAMSA_SSL_KEY_LOCATION", key.clone()),
        env("SAMSA_SSL_CLIENT_AUTH", "none"),
        env(
            "SAMSA_LISTENER_SSL_CLIENT_AUTH",
            join(&|l| l.client_ca.as_ref().map(|_| format!("{}:required", l.name))),
        ),
        env(
            "SAMSA_LISTENER_SSL_TRUSTSTORE_LOCATION",
            join(&|l| l.client_ca.as_ref().map(|f| format!("{}:{f}", l.name))),
        ),
        env("SAMSA_INTERNAL_TLS_CERTIFICATE_LOCATION", cert),
        env("SAMSA_INTERNAL_TLS_KEY_LOCATION", key),
        env("SAMSA_INTERNAL_TLS_CA_LOCATION", ca),
    ]);
    if listeners.iter().any(|l| l.scram) {
        out.push(env("SAMSA_SASL_ENABLED_MECHANISMS", "SCRAM-SHA-512"));
    }
    if let Some(a) = &spec.authorization {
        let mut supers = vec![OPERATOR_PRINCIPAL.to_string()];
        supers.extend(
            a.super_users
                .iter()
                .filter(|u| u.as_str() != OPERATOR_PRINCIPAL)
                .cloned(),
        );
        out.extend([
            env("SAMSA_AUTHORIZER_ENABLE", "true"),
            env("SAMSA_SUPER_USERS", supers.join(";")),
            env(
                "SAMSA_ALLOW_EVERYONE_IF_NO_ACL_FOUND",
                a.allow_everyone_if_no_acl_found.to_string(),
            ),
        ]);
    }
    Some(out)
}

/// The certificate volume of a secured cluster's brokers and its mount: the broker
/// certificates (per pod, or cert-manager's shared pair) with the cluster CA, and the clients
/// CA's certificate as `clients-ca.crt`. Read-only; the kubelet refreshes it when the Secrets
/// change and the broker reloads the files.
pub fn tls_volume(spec: &KafkaClusterSpec, cluster: &str) -> Option<(Volume, VolumeMount)> {
    if !spec.secured() {
        return None;
    }
    let issuer = spec.tls.as_ref().is_some_and(|t| t.issuer.is_some());
    let brokers = SecretProjection {
        name: if issuer {
            broker_tls_secret(cluster)
        } else {
            broker_certs_secret(cluster)
        },
        optional: Some(false),
        items: None,
    };
    let clients = SecretProjection {
        name: clients_ca_secret(cluster),
        optional: Some(false),
        items: Some(vec![KeyToPath {
            key: CA_CERT_KEY.into(),
            path: CLIENTS_CA_FILE.into(),
            mode: None,
        }]),
    };
    let volume = Volume {
        name: TLS_VOLUME.into(),
        projected: Some(ProjectedVolumeSource {
            default_mode: Some(0o440),
            sources: Some(vec![
                VolumeProjection {
                    secret: Some(brokers),
                    ..Default::default()
                },
                VolumeProjection {
                    secret: Some(clients),
                    ..Default::default()
                },
            ]),
        }),
        ..Default::default()
    };
    let mount = VolumeMount {
        name: TLS_VOLUME.into(),
        mount_path: TLS_MOUNT.into(),
        read_only: Some(true),
        ..Default::default()
    };
    Some((volume, mount))
}

/// Where the operator runs, for the NetworkPolicy's CONTROLPLANE rule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OperatorPeer {
    /// The operator's namespace; unknown: any namespace.
    pub namespace: Option<String>,
    /// Labels of the operator's pods.
    pub pod_labels: BTreeMap<String, String>,
}

fn tcp(port: i32) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(port)),
        protocol: Some("TCP".into()),
        end_port: None,
    }
}

/// The cluster's NetworkPolicy (named like the cluster) on its broker pods: the controller and
/// replication ports only from the cluster's own brokers, CONTROLPLANE (secured clusters) only
/// from the operator's pods, the Kafka listeners and the metrics port from anywhere. Any other
/// ingress to the brokers is closed.
pub fn network_policy(
    spec: &KafkaClusterSpec,
    cluster: &str,
    meta: ObjectMeta,
    operator: &OperatorPeer,
) -> NetworkPolicy {
    let brokers = LabelSelector {
        match_labels: Some(selector_labels(cluster)),
        match_expressions: None,
    };
    let mut rules = vec![NetworkPolicyIngressRule {
        from: Some(vec![NetworkPolicyPeer {
            pod_selector: Some(brokers.clone()),
            ..Default::default()
        }]),
        ports: Some(vec![
            tcp(spec.listeners.controller),
            tcp(spec.listeners.replication),
        ]),
    }];
    if spec.secured() {
        let namespace_selector = LabelSelector {
            match_labels: operator.namespace.as_ref().map(|ns| {
                BTreeMap::from([("kubernetes.io/metadata.name".to_string(), ns.clone())])
            }),
            match_expressions: None,
        };
        rules.push(NetworkPolicyIngressRule {
            from: Some(vec![NetworkPolicyPeer {
                namespace_selector: Some(namespace_selector),
                pod_selector: Some(LabelSelector {
                    match_labels: Some(operator.pod_labels.clone()),
                    match_expressions: None,
                }),
                ip_block: None,
            }]),
            ports: Some(vec![tcp(CONTROLPLANE_PORT)]),
        });
    }
    let mut open: Vec<NetworkPolicyPort> = kafka_ports(spec)
        .into_iter()
        .filter(|(name, _)| name != "controlplane")
        .map(|(_, port)| tcp(port))
        .collect();
    open.push(tcp(spec.metrics.port));
    rules.push(NetworkPolicyIngressRule {
        from: None,
        ports: Some(open),
    });
    NetworkPolicy {
        metadata: meta,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(brokers),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(rules),
            egress: None,
        }),
    }
}

/// Where the operator reaches the brokers a StatefulSet runs: `(port, tls)`, CONTROLPLANE over
/// TLS when its pod template has that port, else its first Kafka port in plain TCP. While a
/// cluster turns secured (or back), the brokers still run the previous template until the roll
/// replaces them, and the operator keeps talking to them the way they listen.
pub fn running_endpoint(sts: &StatefulSet) -> Option<(i32, bool)> {
    let pod = sts.spec.as_ref()?.template.spec.as_ref()?;
    let container = pod.containers.first()?;
    let ports = container.ports.as_ref()?;
    if let Some(p) = ports
        .iter()
        .find(|p| p.name.as_deref() == Some("controlplane"))
    {
        return Some((p.container_port, true));
    }
    ports
        .iter()
        .find(|p| {
            !matches!(
                p.name.as_deref(),
                Some("controller" | "replication" | "metrics")
            )
        })
        .map(|p| (p.container_port, false))
}

/// Group, version and kind of cert-manager's Certificate.
pub const CERTIFICATE_GVK: (&str, &str, &str) = ("cert-manager.io", "v1", "Certificate");

/// The cert-manager Certificates of a cluster with `spec.tls.issuer`: the brokers' shared one
/// (`<cluster>-broker-tls`, serverAuth and clientAuth, for every pod name by wildcard) and the
/// operator's client certificate (`<cluster>-operator-cert`, `CN=samsa-operator`). Each writes
/// the Secret of its name with `tls.crt`, `tls.key` and `ca.crt`. Empty without an issuer.
pub fn certificates(
    spec: &KafkaClusterSpec,
    cluster: &str,
    namespace: &str,
    meta: &dyn Fn(String) -> ObjectMeta,
    ctx: &PlanContext,
) -> Vec<serde_json::Value> {
    let Some(tls) = spec.tls.as_ref() else {
        return vec![];
    };
    let Some(issuer) = tls.issuer.as_ref() else {
        return vec![];
    };
    let (group, version, kind) = CERTIFICATE_GVK;
    let issuer_ref = serde_json::json!({
        "name": issuer.name,
        "kind": issuer.kind.as_str(),
        "group": issuer.group,
    });
    let duration = format!("{}h", i64::from(tls.validity_days) * 24);
    let renew = format!("{}h", i64::from(tls.renew_before_days) * 24);
    let brokers = broker_tls_secret(cluster);
    let operator = operator_cert_secret(cluster);
    vec![
        serde_json::json!({
            "apiVersion": format!("{group}/{version}"),
            "kind": kind,
            "metadata": meta(brokers.clone()),
            "spec": {
                "secretName": brokers,
                "commonName": format!("{}.{namespace}.svc", bootstrap_name(cluster)),
                "dnsNames": shared_broker_sans(cluster, namespace, ctx),
                "usages": ["digital signature", "key encipherment", "server auth", "client auth"],
                "privateKey": {"algorithm": "ECDSA", "size": 256, "encoding": "PKCS8", "rotationPolicy": "Always"},
                "duration": duration,
                "renewBefore": renew,
                "issuerRef": issuer_ref,
            },
        }),
        serde_json::json!({
            "apiVersion": format!("{group}/{version}"),
            "kind": kind,
            "metadata": meta(operator.clone()),
            "spec": {
                "secretName": operator,
                "commonName": OPERATOR_CN,
                "usages": ["digital signature", "client auth"],
                "privateKey": {"algorithm": "ECDSA", "size": 256, "encoding": "PKCS8", "rotationPolicy": "Always"},
                "duration": duration,
                "renewBefore": renew,
                "issuerRef": issuer_ref,
            },
        }),
    ]
}

/// The pod-template annotation value: a short hash of the broker certificates' generation and
/// the CA certificates the brokers trust. Unchanged while only new pods get certificates, so a
/// scale-up rolls nothing; a re-issued certificate or a new CA changes it.
pub fn tls_hash(generation: u64, ca_pems: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(generation.to_be_bytes());
    for pem in ca_pems {
        h.update((pem.len() as u64).to_be_bytes());
        h.update(pem.as_bytes());
    }
    h.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
#[path = "security_tests.rs"]
mod tests;
