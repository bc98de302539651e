//! Desired Kubernetes objects of a `KafkaCluster`: ConfigMap, headless and bootstrap Services,
//! StatefulSet and PodDisruptionBudget. Pure: no I/O, same input → same objects.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
    StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMap, ConfigMapEnvSource, Container, ContainerPort,
    DownwardAPIVolumeFile, DownwardAPIVolumeSource, EnvFromSource, EnvVar, EnvVarSource,
    HTTPGetAction, ObjectFieldSelector, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PodAffinityTerm, PodAntiAffinity, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    SeccompProfile, SecurityContext, Service, ServicePort, ServiceSpec, TopologySpreadConstraint,
    Volume, VolumeMount, VolumeResourceRequirements, WeightedPodAffinityTerm,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Resource;

use super::broker_config::{env_name, static_config_hash, update_mode};
use super::security::{broker_env, kafka_ports, tls_volume, OperatorPeer};
use crate::crd::{AntiAffinity, BrokerSet, FieldError, KafkaCluster, KafkaClusterSpec};

/// Operator-wide settings the plan needs besides the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanContext {
    /// Image repository used as `<repository>:<spec.version>` when `spec.image` is unset.
    pub image_repository: String,
    /// DNS domain of the Kubernetes cluster (`cluster.local`).
    pub cluster_domain: String,
    /// The operator's namespace and pod labels: the clusters' NetworkPolicies let these pods
    /// (alone) reach the CONTROLPLANE listener.
    pub operator: OperatorPeer,
}

impl Default for PlanContext {
    fn default() -> Self {
        PlanContext {
            image_repository: "samsa/samsa-broker".to_string(),
            cluster_domain: "cluster.local".to_string(),
            operator: OperatorPeer {
                namespace: None,
                pod_labels: BTreeMap::from([(
                    "app.kubernetes.io/name".to_string(),
                    "samsa-operator".to_string(),
                )]),
            },
        }
    }
}

/// Why no objects can be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The resource lacks a field the API server always sets.
    #[error("the KafkaCluster has no {0}")]
    MissingMetadata(&'static str),
    /// The spec breaks a rule.
    #[error("invalid spec: {}", crate::crd::describe_errors(.0))]
    Invalid(Vec<FieldError>),
}

/// Everything the operator applies for one cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterObjects {
    /// Broker settings from `spec.config` as the brokers' environment.
    pub config_map: ConfigMap,
    /// Headless Service: one DNS name per broker pod, published before readiness.
    pub headless: Service,
    /// Bootstrap Service clients connect to.
    pub bootstrap: Service,
    /// The brokers.
    pub stateful_set: StatefulSet,
    /// At most one broker down for voluntary disruptions.
    pub pdb: PodDisruptionBudget,
}

/// Pod-template annotation holding the hash of every setting whose change needs a restart.
pub const RESTART_HASH_ANNOTATION: &str = "samsa.dev/restart-hash";
/// Label on every object of a cluster, valued with the cluster name.
pub const CLUSTER_LABEL: &str = "samsa.dev/cluster";
/// Label on every broker pod, valued with the name of its StatefulSet (its broker set).
pub const BROKER_SET_LABEL: &str = "samsa.dev/broker-set";
/// Environment variable (in the ConfigMap) naming the quorum's voters.
pub const VOTERS_ENV: &str = "SAMSA_CONTROLLER_QUORUM_VOTERS";
/// Label Kubernetes puts on each StatefulSet pod: its ordinal.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
/// Where the data volume is mounted in the broker container.
pub const DATA_MOUNT: &str = "/var/lib/samsa";
/// The broker's data directory (on the data volume).
pub const DATA_DIR: &str = "/var/lib/samsa/data";
/// Name of the broker container.
pub const BROKER_CONTAINER: &str = "broker";
/// Broker pod annotation holding its rack: the value of the cluster's rack topology label on the
/// pod's node, set by the operator once the pod is scheduled (`spec.rack`).
pub const RACK_ANNOTATION: &str = "samsa.dev/rack";
/// Where the downward-API volume with the rack annotation is mounted.
pub const RACK_MOUNT: &str = "/etc/samsa/rack";
/// The file in [`RACK_MOUNT`] the broker reads its rack from (`--broker-rack-file`).
pub const RACK_FILE: &str = "/etc/samsa/rack/rack";
/// User and group the broker runs as (non-root).
const BROKER_UID: i64 = 65532;

/// Object names of a cluster.
pub fn headless_name(cluster: &str) -> String {
    format!("{cluster}-headless")
}
/// Name of the bootstrap Service.
pub fn bootstrap_name(cluster: &str) -> String {
    format!("{cluster}-bootstrap")
}
/// Name of the ConfigMap.
pub fn config_map_name(cluster: &str) -> String {
    format!("{cluster}-config")
}

/// The in-cluster bootstrap address of a cluster's Kafka listener.
pub fn bootstrap_address(cluster: &str, namespace: &str, port: i32) -> String {
    format!("{}.{namespace}.svc:{port}", bootstrap_name(cluster))
}

/// Labels selecting the broker pods of a cluster.
pub fn selector_labels(cluster: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "samsa".to_string()),
        (
            "app.kubernetes.io/component".to_string(),
            "broker".to_string(),
        ),
        (CLUSTER_LABEL.to_string(), cluster.to_string()),
    ])
}

fn labels(cluster: &str, version: &str) -> BTreeMap<String, String> {
    let mut l = selector_labels(cluster);
    l.insert("app.kubernetes.io/instance".into(), cluster.to_string());
    l.insert(
        "app.kubernetes.io/managed-by".into(),
        "samsa-operator".into(),
    );
    l.insert("app.kubernetes.io/version".into(), version.to_string());
    l
}

/// One StatefulSet of brokers as the plan makes it: which set, and the image and version its
/// pods run (a blue-green upgrade keeps the old set at its old image while the new one runs the
/// spec's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetTemplate {
    /// The StatefulSet and its broker ids.
    pub set: BrokerSet,
    /// Broker image.
    pub image: String,
    /// Version label.
    pub version: String,
}

impl SetTemplate {
    /// The set the spec asks for as it is: its image and version.
    pub fn from_spec(set: BrokerSet, spec: &KafkaClusterSpec, ctx: &PlanContext) -> SetTemplate {
        SetTemplate {
            set,
            image: broker_image(spec, ctx),
            version: spec.version.clone(),
        }
    }
}

/// Labels selecting the pods of one broker set. The first set (named after the cluster) keeps
/// the cluster's selector, which its StatefulSet was created with (a selector is immutable).
pub fn set_selector(cluster: &str, set: &BrokerSet) -> BTreeMap<String, String> {
    let mut l = selector_labels(cluster);
    if set.name != cluster {
        l.insert(BROKER_SET_LABEL.to_string(), set.name.clone());
    }
    l
}

/// The broker image of a spec.
pub fn broker_image(spec: &KafkaClusterSpec, ctx: &PlanContext) -> String {
    spec.image
        .clone()
        .unwrap_or_else(|| format!("{}:{}", ctx.image_repository, spec.version))
}

/// The metadata quorum voters, `id@host:port,...`: pods 0..controllers at their headless DNS
/// names.
pub fn quorum_voters(
    cluster: &str,
    namespace: &str,
    controllers: i32,
    port: i32,
    ctx: &PlanContext,
) -> String {
    (0..controllers.max(1))
        .map(|i| {
            format!(
                "{i}@{cluster}-{i}.{}.{namespace}.svc.{}:{port}",
                headless_name(cluster),
                ctx.cluster_domain
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The rules of the spec that the plan relies on: the CRD's rules plus keys the broker knows.
pub fn check_spec(spec: &KafkaClusterSpec) -> Vec<FieldError> {
    let mut errs = spec.validate();
    for key in spec.config.keys() {
        if update_mode(key).is_none() && !crate::crd::RESERVED_BROKER_KEYS.contains(&key.as_str()) {
            errs.push(FieldError {
                field: format!("spec.config[{key}]"),
                message: "is not a setting samsa-broker takes (see samsa-broker --help)".into(),
            });
        }
    }
    for (key, value) in &spec.config {
        if let Err(message) = crate::plan::broker_config::check_value(key, value) {
            errs.push(FieldError {
                field: format!("spec.config[{key}]"),
                message: format!("is {value:?}, which is not valid: {message}"),
            });
        }
    }
    errs
}

fn meta(
    name: String,
    namespace: &str,
    labels: &BTreeMap<String, String>,
    owner: &OwnerReference,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(namespace.to_string()),
        labels: Some(labels.clone()),
        owner_references: Some(vec![owner.clone()]),
        ..Default::default()
    }
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value.into()),
        value_from: None,
    }
}

fn env_field(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: None,
                field_path: path.to_string(),
            }),
            ..Default::default()
        }),
    }
}

fn port(name: &str, port: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.to_string()),
        container_port: port,
        protocol: Some("TCP".into()),
        ..Default::default()
    }
}

fn service_port(name: &str, port: i32) -> ServicePort {
    ServicePort {
        name: Some(name.to_string()),
        port,
        target_port: Some(IntOrString::String(name.to_string())),
        protocol: Some("TCP".into()),
        ..Default::default()
    }
}

fn http_probe(path: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_string()),
            port: IntOrString::String("metrics".into()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(5),
        failure_threshold: Some(failures),
        ..Default::default()
    }
}

/// A cluster's name, namespace and the owner reference its objects carry.
fn identity(kc: &KafkaCluster) -> Result<(String, String, OwnerReference), PlanError> {
    let name = kc
        .metadata
        .name
        .clone()
        .ok_or(PlanError::MissingMetadata("metadata.name"))?;
    let ns = kc
        .metadata
        .namespace
        .clone()
        .ok_or(PlanError::MissingMetadata("metadata.namespace"))?;
    let owner = kc
        .controller_owner_ref(&())
        .ok_or(PlanError::MissingMetadata("metadata.uid"))?;
    Ok((name, ns, owner))
}

/// The objects a `KafkaCluster` should have. `controllers` is the quorum size fixed for this
/// cluster (`status.controllers`, else the spec's initial value).
pub fn desired_objects(
    kc: &KafkaCluster,
    template: &SetTemplate,
    controllers: i32,
    voters: &str,
    ctx: &PlanContext,
) -> Result<ClusterObjects, PlanError> {
    let (name, ns, owner) = identity(kc)?;
    let spec = &kc.spec;
    let errs = check_spec(spec);
    if !errs.is_empty() {
        return Err(PlanError::Invalid(errs));
    }
    let labels = labels(&name, &spec.version);
    let selector = selector_labels(&name);
    let set = &template.set;
    let mut set_labels = self::labels(&name, &template.version);
    set_labels.insert(BROKER_SET_LABEL.to_string(), set.name.clone());
    let set_selector = set_selector(&name, set);
    let mut pod_affinity_selector = selector.clone();
    pod_affinity_selector.insert(BROKER_SET_LABEL.to_string(), set.name.clone());
    let l = &spec.listeners;
    let metrics_port = spec.metrics.port;
    let image = template.image.clone();
    let headless = headless_name(&name);

    // The voters live in the ConfigMap, not the pod template: when a blue-green upgrade moves
    // them, pods read the new list at their next start, and no pod restarts for it.
    let mut data: BTreeMap<String, String> = spec
        .config
        .iter()
        .map(|(k, v)| (env_name(k), v.clone()))
        .collect();
    data.insert(VOTERS_ENV.to_string(), voters.to_string());
    let config_map = ConfigMap {
        metadata: meta(config_map_name(&name), &ns, &labels, &owner),
        data: Some(data),
        ..Default::default()
    };

    let kafka_ports = kafka_ports(spec);
    let mut ports: Vec<ServicePort> = kafka_ports
        .iter()
        .map(|(n, p)| service_port(n, *p))
        .collect();
    ports.extend([
        service_port("controller", l.controller),
        service_port("replication", l.replication),
        service_port("metrics", metrics_port),
    ]);
    let headless_svc = Service {
        metadata: meta(headless.clone(), &ns, &labels, &owner),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            // Quorum peers must resolve each other before any of them is ready.
            publish_not_ready_addresses: Some(true),
            selector: Some(selector.clone()),
            ports: Some(ports),
            ..Default::default()
        }),
        ..Default::default()
    };
    let bootstrap = Service {
        metadata: meta(bootstrap_name(&name), &ns, &labels, &owner),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(selector.clone()),
            ports: Some(
                kafka_ports
                    .iter()
                    .map(|(n, p)| service_port(n, *p))
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    };

    let mut env_vars = vec![
        env_field("POD_NAME", "metadata.name"),
        // The broker id is the pod ordinal, from the label the StatefulSet controller sets.
        env_field(
            "SAMSA_NODE_ID",
            &format!("metadata.labels['{POD_INDEX_LABEL}']"),
        ),
    ];
    match broker_env(spec, &name, &ns, ctx) {
        Some(listeners) => env_vars.extend(listeners),
        // No typed listeners, no security: the one plaintext listener, as it always was.
        None => env_vars.extend([
            env("SAMSA_LISTEN", format!("0.0.0.0:{}", l.client)),
            env(
                "SAMSA_ADVERTISED_LISTENER",
                format!(
                    "$(POD_NAME).{headless}.{ns}.svc.{}:{}",
                    ctx.cluster_domain, l.client
                ),
            ),
        ]),
    }
    env_vars.extend([
        env(
            "SAMSA_CONTROLLER_LISTEN",
            format!("0.0.0.0:{}", l.controller),
        ),
        env(
            "SAMSA_REPLICATION_LISTEN",
            format!("0.0.0.0:{}", l.replication),
        ),
        env("SAMSA_METRICS_LISTEN", format!("0.0.0.0:{metrics_port}")),
        env("SAMSA_DATA_DIR", DATA_DIR),
    ]);
    if set.id_offset != 0 {
        env_vars.push(env("SAMSA_NODE_ID_OFFSET", set.id_offset.to_string()));
    }
    if set.name != name {
        // A later set's pods are not among the bootstrap voters: the first `controllers`
        // ordinals run a controller and join the quorum, to be made voters at promotion.
        env_vars.push(env("SAMSA_CONTROLLER_ORDINALS", controllers.to_string()));
    }
    if !spec.config.contains_key(CONTROLLED_SHUTDOWN_KEY) {
        env_vars.push(env(
            &env_name(CONTROLLED_SHUTDOWN_KEY),
            controlled_shutdown_ms(spec.termination_grace_period_seconds).to_string(),
        ));
    }
    let mut mounts = vec![VolumeMount {
        name: "data".into(),
        mount_path: DATA_MOUNT.into(),
        ..Default::default()
    }];
    let mut volumes = Vec::new();
    if let Some((volume, mount)) = tls_volume(spec, &name) {
        mounts.push(mount);
        volumes.push(volume);
    }
    if spec.rack.is_some() {
        // The rack annotation as a file: empty until the operator sets the annotation, and the
        // broker waits for it before it registers.
        env_vars.push(env("SAMSA_BROKER_RACK_FILE", RACK_FILE));
        mounts.push(VolumeMount {
            name: "rack".into(),
            mount_path: RACK_MOUNT.into(),
            read_only: Some(true),
            ..Default::default()
        });
        volumes.push(Volume {
            name: "rack".into(),
            downward_api: Some(DownwardAPIVolumeSource {
                items: Some(vec![DownwardAPIVolumeFile {
                    path: "rack".into(),
                    field_ref: Some(ObjectFieldSelector {
                        api_version: None,
                        field_path: format!("metadata.annotations['{RACK_ANNOTATION}']"),
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        });
    }

    let restart_hash = static_config_hash(&spec.config, &[("image", image.as_str())]);

    let container = Container {
        name: BROKER_CONTAINER.into(),
        image: Some(image.clone()),
        ports: Some(
            kafka_ports
                .iter()
                .map(|(n, p)| port(n, *p))
                .chain([
                    port("controller", l.controller),
                    port("replication", l.replication),
                    port("metrics", metrics_port),
                ])
                .collect(),
        ),
        env: Some(env_vars),
        env_from: Some(vec![EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: config_map_name(&name),
                optional: Some(false),
            }),
            ..Default::default()
        }]),
        readiness_probe: Some(http_probe("/readyz", 5, 3)),
        liveness_probe: Some(http_probe("/healthz", 10, 6)),
        // Log recovery after an unclean stop may take a while: liveness waits for the start.
        startup_probe: Some(http_probe("/healthz", 5, 120)),
        resources: spec.resources.clone(),
        volume_mounts: Some(mounts),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                add: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };

    let pod_selector = LabelSelector {
        match_labels: Some(selector.clone()),
        match_expressions: None,
    };
    let same_set = LabelSelector {
        match_labels: Some(pod_affinity_selector),
        match_expressions: None,
    };
    let anti_term = PodAffinityTerm {
        label_selector: Some(same_set.clone()),
        topology_key: "kubernetes.io/hostname".into(),
        ..Default::default()
    };
    let anti_affinity = match spec.pod_anti_affinity {
        AntiAffinity::Required => Some(PodAntiAffinity {
            required_during_scheduling_ignored_during_execution: Some(vec![anti_term]),
            ..Default::default()
        }),
        AntiAffinity::Preferred => Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: anti_term,
                },
            ]),
            ..Default::default()
        }),
        AntiAffinity::None => None,
    };
    let spread = spec.rack.as_ref().map(|rack| {
        vec![TopologySpreadConstraint {
            max_skew: 1,
            topology_key: rack.topology_key.clone(),
            when_unsatisfiable: "DoNotSchedule".into(),
            label_selector: Some(same_set.clone()),
            ..Default::default()
        }]
    });

    let pod_labels = set_labels.clone();
    let template = PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(pod_labels),
            annotations: Some(BTreeMap::from([(
                RESTART_HASH_ANNOTATION.to_string(),
                restart_hash,
            )])),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers: vec![container],
            termination_grace_period_seconds: Some(spec.termination_grace_period_seconds),
            affinity: anti_affinity.map(|a| Affinity {
                pod_anti_affinity: Some(a),
                ..Default::default()
            }),
            topology_spread_constraints: spread,
            volumes: (!volumes.is_empty()).then_some(volumes),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(BROKER_UID),
                run_as_group: Some(BROKER_UID),
                fs_group: Some(BROKER_UID),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".into(),
                    localhost_profile: None,
                }),
                ..Default::default()
            }),
            enable_service_links: Some(false),
            ..Default::default()
        }),
    };

    let pvc = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some("data".into()),
            labels: Some(selector.clone()),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: spec.storage.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(spec.storage.size.clone()),
                )])),
                limits: None,
            }),
            ..Default::default()
        }),
        status: None,
    };

    let stateful_set = StatefulSet {
        metadata: meta(set.name.clone(), &ns, &set_labels, &owner),
        spec: Some(StatefulSetSpec {
            replicas: Some(spec.brokers),
            service_name: Some(headless.clone()),
            selector: LabelSelector {
                match_labels: Some(set_selector),
                match_expressions: None,
            },
            // All quorum voters must start together: none is ready until a quorum is up.
            pod_management_policy: Some("Parallel".into()),
            // The operator rolls the brokers itself (plan::roll), deleting one pod when it is
            // safe; the StatefulSet only makes the deleted pod again from the new template.
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some(
                    if operator_rolls(kc) {
                        "OnDelete"
                    } else {
                        "RollingUpdate"
                    }
                    .into(),
                ),
                rolling_update: None,
            }),
            template,
            volume_claim_templates: Some(vec![pvc]),
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_scaled: Some(spec.volume_claims.when_scaled.as_str().into()),
                    when_deleted: Some(spec.volume_claims.when_deleted.as_str().into()),
                },
            ),
            ..Default::default()
        }),
        status: None,
    };

    let pdb = PodDisruptionBudget {
        metadata: meta(name.clone(), &ns, &labels, &owner),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(pod_selector),
            ..Default::default()
        }),
        status: None,
    };

    Ok(ClusterObjects {
        config_map,
        headless: headless_svc,
        bootstrap,
        stateful_set,
        pdb,
    })
}

/// Test-only annotation: with the value `"true"` on a KafkaCluster, the StatefulSet's own
/// RollingUpdate restarts the brokers (the next pod goes as soon as the previous one is Ready)
/// instead of the operator's gated roll. It exists so the e2e tests can compare the two; never
/// use it in production.
pub const TEST_STATEFULSET_ROLL_ANNOTATION: &str = "samsa.dev/test-statefulset-rolling-update";

/// True when the operator rolls the brokers itself (the default), false under the test-only
/// annotation [`TEST_STATEFULSET_ROLL_ANNOTATION`].
pub fn operator_rolls(kc: &KafkaCluster) -> bool {
    kc.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(TEST_STATEFULSET_ROLL_ANNOTATION))
        .is_none_or(|v| v != "true")
}

/// Group, version and kind of the Prometheus Operator's ServiceMonitor.
pub const SERVICE_MONITOR_GVK: (&str, &str, &str) =
    ("monitoring.coreos.com", "v1", "ServiceMonitor");

/// The ServiceMonitor of a cluster (`spec.metrics.serviceMonitor`), named like the cluster: it
/// scrapes `/metrics` on the `metrics` port of every broker through the headless Service (the
/// bootstrap Service has no such port), labelled and owned like the cluster's other objects. Each
/// target gets the label `cluster` (the KafkaCluster's name) besides the usual `namespace`, `pod`.
pub fn service_monitor(kc: &KafkaCluster) -> Result<serde_json::Value, PlanError> {
    let (name, ns, owner) = identity(kc)?;
    let (group, version, kind) = SERVICE_MONITOR_GVK;
    Ok(serde_json::json!({
        "apiVersion": format!("{group}/{version}"),
        "kind": kind,
        "metadata": meta(name.clone(), &ns, &labels(&name, &kc.spec.version), &owner),
        "spec": {
            "selector": {"matchLabels": selector_labels(&name)},
            "namespaceSelector": {"matchNames": [ns]},
            "endpoints": [{
                "port": "metrics",
                "path": "/metrics",
                "interval": "30s",
                // The KafkaCluster's name as label `cluster`, the key the operator's cluster
                // metrics, the dashboards and the alert rules join on.
                "relabelings": [{
                    "sourceLabels": [format!("__meta_kubernetes_service_label_{}", prom_label(CLUSTER_LABEL))],
                    "targetLabel": "cluster",
                    "action": "replace",
                }],
            }],
        },
    }))
}

/// A Kubernetes label key as Prometheus's service discovery names it: every character that is
/// not a letter, digit or underscore becomes an underscore.
fn prom_label(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The rack of a broker pod on a node with these labels: the value of the cluster's topology
/// label, or why there is none.
pub fn node_rack(
    topology_key: &str,
    node: &str,
    node_labels: Option<&BTreeMap<String, String>>,
) -> Result<String, String> {
    match node_labels.and_then(|l| l.get(topology_key)) {
        Some(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
        Some(_) => Err(format!(
            "node {node} has an empty {topology_key} label (spec.rack.topologyKey)"
        )),
        None => Err(format!(
            "node {node} has no {topology_key} label (spec.rack.topologyKey)"
        )),
    }
}

/// The rack annotation to set on a broker pod: `Some(rack)` when the pod is scheduled and its
/// annotation differs from `rack`. A running broker read its rack at start-up, so a changed
/// annotation takes effect at the pod's next restart.
pub fn rack_annotation_change(
    pod_annotations: Option<&BTreeMap<String, String>>,
    rack: &str,
) -> Option<String> {
    let current = pod_annotations.and_then(|a| a.get(RACK_ANNOTATION));
    (current.map(String::as_str) != Some(rack)).then(|| rack.to_string())
}

#[cfg(test)]
#[path = "cluster_tests.rs"]
mod tests;

/// The broker setting bounding a controlled shutdown.
const CONTROLLED_SHUTDOWN_KEY: &str = "controlled.shutdown.timeout.ms";

/// How long a broker may spend moving its leaderships away when its pod stops, unless
/// `spec.config` says otherwise: the termination grace period less what the rest of the
/// shutdown needs (closing the logs, handing over the quorum: 10 s, or a quarter of a short
/// grace period), so the kubelet never kills a broker that is still moving leaderships.
pub fn controlled_shutdown_ms(grace_seconds: i64) -> i64 {
    let grace = grace_seconds.max(1).saturating_mul(1000);
    grace - (grace / 4).min(10_000)
}
