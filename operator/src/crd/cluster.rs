//! `KafkaCluster`: a set of Samsa brokers run as one StatefulSet.
// kube's KubeSchema derive re-declares each struct in a private module to derive its schema,
// which the unreachable_pub lint flags; the types themselves are exported from `crd`.
#![allow(unreachable_pub)]
// Each `printcolumn(...)` repeats `type_ = ...`; clippy reads them as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{config_map_schema, Condition, FieldError};
use super::security::{
    listener_ports_rule, unique_listeners_rule, AuthorizationSpec, KafkaListener,
    NetworkPolicyOptions, TlsSpec,
};

/// Broker config keys the operator sets itself: `spec.config` may not name them.
pub const RESERVED_BROKER_KEYS: &[&str] = &[
    "node.id",
    "broker.id",
    "process.roles",
    "listeners",
    "advertised.listeners",
    "controller.quorum.voters",
    "controller.listener.names",
    "log.dirs",
    "log.dir",
    "broker.rack",
];

/// Largest broker count a cluster may ask for.
pub const MAX_BROKERS: i32 = 1000;

/// Desired state of a Samsa cluster.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "samsa.dev",
    version = "v1alpha1",
    kind = "KafkaCluster",
    namespaced,
    shortname = "kc",
    status = "KafkaClusterStatus",
    derive = "PartialEq",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Brokers", type_ = "integer", json_path = ".spec.brokers"),
    printcolumn(name = "Version", type_ = "string", json_path = ".spec.version"),
    printcolumn(
        name = "Under-Replicated",
        type_ = "integer",
        json_path = ".status.health.underReplicated"
    ),
    printcolumn(
        name = "Offline",
        type_ = "integer",
        json_path = ".status.health.offline"
    ),
    printcolumn(
        name = "Groups-Not-OK",
        type_ = "integer",
        json_path = ".status.health.groupsNotOk"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(
    validation = Rule::new("!has(self.controllers) || self.controllers <= self.brokers")
        .message("spec.controllers must not exceed spec.brokers"),
    validation = Rule::new("!has(self.controllers) || !has(oldSelf.controllers) || self.controllers == oldSelf.controllers")
        .message("spec.controllers is immutable: the metadata quorum's voters are fixed when the cluster is created"),
    validation = Rule::new("!('default.replication.factor' in self.config) || !self.config['default.replication.factor'].matches('^[0-9]+$') || int(self.config['default.replication.factor']) <= self.brokers")
        .message("spec.config[default.replication.factor] must not exceed spec.brokers"),
    validation = Rule::new("!('min.insync.replicas' in self.config) || !self.config['min.insync.replicas'].matches('^[0-9]+$') || int(self.config['min.insync.replicas']) <= self.brokers")
        .message("spec.config[min.insync.replicas] must not exceed spec.brokers"),
    validation = listener_ports_rule()
)]
#[serde(rename_all = "camelCase")]
pub struct KafkaClusterSpec {
    /// Number of broker pods. Broker ids are the pod ordinals 0..brokers-1.
    #[serde(default = "default_brokers")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 1000").message("spec.brokers must be between 1 and 1000"))]
    pub brokers: i32,

    /// Voters of the metadata quorum: the pods with the lowest ordinals. Defaults to
    /// min(3, brokers) at creation; fixed afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == 1 || self == 3 || self == 5 || self == 7").message("spec.controllers must be 1, 3, 5 or 7"))]
    pub controllers: Option<i32>,

    /// Samsa version the brokers run; the image tag when `image` is not set.
    #[serde(default = "default_version")]
    #[x_kube(validation = Rule::new("self.matches('^[0-9A-Za-z][0-9A-Za-z._+-]{0,127}$')").message("spec.version must be a version such as 0.1.0"))]
    pub version: String,

    /// Full broker image reference; overrides the operator's default repository + `version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("size(self) > 0 && size(self) <= 512").message("spec.image must be a non-empty image reference"))]
    pub image: Option<String>,

    /// Persistent volume of each broker.
    #[serde(default)]
    pub storage: StorageSpec,

    /// CPU and memory of each broker container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Broker settings by Kafka name (`log.retention.ms: "86400000"`). Keys the operator owns
    /// (node.id, listeners, ...) are refused.
    #[serde(default)]
    #[schemars(schema_with = "config_map_schema")]
    #[x_kube(validation = Rule::new("self.all(k, !(k in ['node.id', 'broker.id', 'process.roles', 'listeners', 'advertised.listeners', 'controller.quorum.voters', 'controller.listener.names', 'log.dirs', 'log.dir', 'broker.rack']))")
        .message("spec.config must not set node.id, broker.id, process.roles, listeners, advertised.listeners, controller.quorum.voters, controller.listener.names, log.dirs, log.dir or broker.rack: the operator sets them"),
        validation = known_keys_rule())]
    pub config: BTreeMap<String, String>,

    /// What happens to a broker's volume when its pod goes for good.
    #[serde(default)]
    pub volume_claims: VolumeClaimsSpec,

    /// Rack awareness: spread brokers over a node topology domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<RackSpec>,

    /// Ports of the broker's listeners, and its typed Kafka listeners.
    #[serde(default)]
    pub listeners: ListenersSpec,

    /// Kafka ACLs: an authorizer, its super users and its default (absent: every client may do
    /// everything).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<AuthorizationSpec>,

    /// Certificates of a secured cluster (one with a TLS or authenticated listener, or
    /// authorization): their issuer and lifetimes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,

    /// The cluster's NetworkPolicy (created unless `enabled: false`).
    #[serde(default)]
    pub network_policy: NetworkPolicyOptions,

    /// How a version or config change is rolled out.
    #[serde(default)]
    pub upgrade: UpgradeSpec,

    /// How partition replicas follow the brokers: spread onto added brokers, drained off
    /// removed ones.
    #[serde(default)]
    pub rebalance: RebalanceSpec,

    /// Prometheus metrics endpoint of the brokers.
    #[serde(default)]
    pub metrics: MetricsSpec,

    /// Pod anti-affinity between brokers of this cluster.
    #[serde(default)]
    pub pod_anti_affinity: AntiAffinity,

    /// Seconds a broker gets to shut down (controlled shutdown moves its leaderships away).
    #[serde(default = "default_grace")]
    #[x_kube(validation = Rule::new("self >= 30 && self <= 3600").message("spec.terminationGracePeriodSeconds must be between 30 and 3600"))]
    pub termination_grace_period_seconds: i64,
}

/// Persistent storage of each broker.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self == oldSelf").message("spec.storage is immutable: StatefulSet volume claim templates cannot change"))]
pub struct StorageSpec {
    /// Size of the data volume (a quantity such as `10Gi`).
    #[serde(default = "default_storage_size")]
    #[x_kube(validation = Rule::new("self.matches('^[0-9]+(\\\\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$')").message("spec.storage.size must be a quantity such as 10Gi"))]
    pub size: String,
    /// Storage class of the data volume; the cluster default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
}

impl Default for StorageSpec {
    fn default() -> Self {
        StorageSpec {
            size: default_storage_size(),
            storage_class_name: None,
        }
    }
}

/// Keep or delete a volume claim (the StatefulSet's PVC retention policy).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ClaimRetention {
    /// The claim and its data stay.
    Retain,
    /// The claim is deleted (and its volume, per the storage class's reclaim policy).
    Delete,
}

impl ClaimRetention {
    /// The StatefulSet's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimRetention::Retain => "Retain",
            ClaimRetention::Delete => "Delete",
        }
    }
}

/// The brokers' volume claims after their pods go.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeClaimsSpec {
    /// A scale-down removes a broker only once it holds no replica (drained); its claim then
    /// holds nothing anyone needs. `Delete` (default) removes it, `Retain` keeps it (a later
    /// scale-up reuses it).
    #[serde(default = "default_when_scaled")]
    pub when_scaled: ClaimRetention,
    /// When the KafkaCluster is deleted: `Retain` (default) keeps every broker's data,
    /// `Delete` removes it.
    #[serde(default = "default_when_deleted")]
    pub when_deleted: ClaimRetention,
}

impl Default for VolumeClaimsSpec {
    fn default() -> Self {
        VolumeClaimsSpec {
            when_scaled: default_when_scaled(),
            when_deleted: default_when_deleted(),
        }
    }
}

fn default_when_scaled() -> ClaimRetention {
    ClaimRetention::Delete
}

fn default_when_deleted() -> ClaimRetention {
    ClaimRetention::Retain
}

/// Rack awareness.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RackSpec {
    /// Node label whose value is a broker's rack, e.g. `topology.kubernetes.io/zone`.
    #[serde(default = "default_topology_key")]
    #[x_kube(validation = Rule::new("size(self) > 0 && size(self) <= 316").message("spec.rack.topologyKey must be a node label key"))]
    pub topology_key: String,
}

/// Listener ports.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.client != self.controller && self.client != self.replication && self.controller != self.replication")
    .message("spec.listeners.client, spec.listeners.controller and spec.listeners.replication must be different ports"),
    validation = Rule::new("!has(self.kafka) || self.kafka.all(l, l.port != self.controller && l.port != self.replication)")
    .message("spec.listeners.kafka ports must differ from spec.listeners.controller and spec.listeners.replication"))]
pub struct ListenersSpec {
    /// Kafka protocol port, served to clients as one plaintext listener when `kafka` is
    /// absent.
    #[serde(default = "default_client_port")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 65535").message("spec.listeners.client must be a port (1-65535)"))]
    pub client: i32,
    /// Metadata quorum (controller) port.
    #[serde(default = "default_controller_port")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 65535").message("spec.listeners.controller must be a port (1-65535)"))]
    pub controller: i32,
    /// Replication port (followers fetch from leaders).
    #[serde(default = "default_replication_port")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 65535").message("spec.listeners.replication must be a port (1-65535)"))]
    pub replication: i32,
    /// Typed Kafka listeners (absent: one plaintext listener on `client`). Names and ports are
    /// unique; ports differ from `controller`, `replication`, `spec.metrics.port` and, on a
    /// secured cluster, 9091 (the operator's CONTROLPLANE listener).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 16))]
    #[x_kube(validation = unique_listeners_rule())]
    pub kafka: Option<Vec<KafkaListener>>,
}

impl Default for ListenersSpec {
    fn default() -> Self {
        ListenersSpec {
            client: default_client_port(),
            controller: default_controller_port(),
            replication: default_replication_port(),
            kafka: None,
        }
    }
}

/// Rollout strategy.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum UpgradeStrategy {
    /// Restart brokers one at a time in place.
    #[default]
    Rolling,
    /// Bring up a second StatefulSet at the new version, move data, retire the old one.
    BlueGreen,
}

/// Upgrade options.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeSpec {
    /// `Rolling` (default) or `BlueGreen`.
    #[serde(default)]
    pub strategy: UpgradeStrategy,
    /// Holds a roll between brokers: the broker restarting finishes, no other starts.
    #[serde(default)]
    pub paused: bool,
    /// How the operator restarts brokers one (or a few) at a time.
    #[serde(default)]
    pub rolling: RollingSpec,
    /// The consumer-health gate: a roll waits while a consumer group is unhealthy.
    #[serde(default)]
    pub consumer_health: ConsumerHealthSpec,
    /// How a `BlueGreen` upgrade moves the data and when it promotes the new brokers.
    #[serde(default)]
    pub blue_green: BlueGreenSpec,
}

/// When a blue-green upgrade retires the old brokers.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum Promotion {
    /// As soon as the verification window passes with every gate healthy.
    #[default]
    Automatic,
    /// Once the window passed and the KafkaCluster carries the annotation
    /// `samsa.dev/promote` (any value).
    Manual,
}

/// Settings of a blue-green upgrade (`spec.upgrade.strategy: BlueGreen`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BlueGreenSpec {
    /// Replication throttle while the partitions move to the new brokers and, on a rollback,
    /// back; bytes/s on both sides of every moving replica (default 10485760, 10 MiB/s; 0:
    /// unthrottled). `spec.rebalance.maxConcurrentMoves` bounds the partitions moving at once.
    #[serde(default = "default_rebalance_throttle")]
    #[x_kube(validation = Rule::new("self >= 0").message("spec.upgrade.blueGreen.throttleBytesPerSecond must be 0 or more"))]
    pub throttle_bytes_per_second: i64,
    /// Seconds the new brokers must lead every partition with all health gates passing (no
    /// under-replicated or offline partition, every watched consumer group healthy) before
    /// promotion (default 300). A failing gate starts the window again.
    #[serde(default = "default_verify_seconds")]
    #[x_kube(validation = Rule::new("self >= 0 && self <= 604800").message("spec.upgrade.blueGreen.verifySeconds must be between 0 and 604800"))]
    pub verify_seconds: i64,
    /// `Automatic` (default): promote after the window. `Manual`: also wait for the annotation
    /// `samsa.dev/promote`.
    #[serde(default)]
    pub promotion: Promotion,
    /// The most of the new brokers' requests, in percent, that may fail (answered with a
    /// server-side error such as REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS or
    /// UNKNOWN_SERVER_ERROR) between two samples of the verification window (default 1). More
    /// starts the window again.
    #[serde(default = "default_max_error_percent")]
    #[x_kube(validation = Rule::new("self >= 0.0 && self <= 100.0").message("spec.upgrade.blueGreen.maxErrorPercent must be between 0 and 100"))]
    pub max_error_percent: f64,
}

impl Default for BlueGreenSpec {
    fn default() -> Self {
        BlueGreenSpec {
            throttle_bytes_per_second: default_rebalance_throttle(),
            verify_seconds: default_verify_seconds(),
            promotion: Promotion::Automatic,
            max_error_percent: default_max_error_percent(),
        }
    }
}

fn default_verify_seconds() -> i64 {
    300
}

fn default_max_error_percent() -> f64 {
    1.0
}

/// Annotation on a KafkaCluster: promote a `Manual` blue-green upgrade once verified. The
/// operator removes it when the promotion is done.
pub const PROMOTE_ANNOTATION: &str = "samsa.dev/promote";
/// Annotation on a KafkaCluster: roll the blue-green upgrade in progress back (before its
/// promotion). The cluster then stays at its old version while the annotation is there; remove
/// it (or change the version) to try again.
pub const ROLLBACK_ANNOTATION: &str = "samsa.dev/rollback";

/// Settings of a rolling restart.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RollingSpec {
    /// Brokers restarted together, when they share no partition and at most one is a quorum
    /// voter (default 1).
    #[serde(default = "default_max_parallel")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 1000").message("spec.upgrade.rolling.maxParallel must be between 1 and 1000"))]
    pub max_parallel: i32,
    /// In-sync replicas every partition must keep above its `min.insync.replicas` while a
    /// broker is down (default 0).
    #[serde(default)]
    #[x_kube(validation = Rule::new("self >= 0 && self <= 100").message("spec.upgrade.rolling.minIsrHeadroom must be between 0 and 100"))]
    pub min_isr_headroom: i32,
    /// Seconds a restarted broker must stay healthy (registered, in every ISR) before the
    /// next restart (default 0).
    #[serde(default)]
    #[x_kube(validation = Rule::new("self >= 0 && self <= 86400").message("spec.upgrade.rolling.minReadySeconds must be between 0 and 86400"))]
    pub min_ready_seconds: i32,
    /// How long a restarted broker may take to be Ready and back in every ISR before the roll
    /// halts (`Degraded`, reason `RolloutStuck`): a duration such as `5m`, `90s`, `1h30m`.
    #[serde(default = "default_broker_ready_timeout")]
    #[x_kube(validation = Rule::new("self.matches('^([0-9]+h)?([0-9]+m)?([0-9]+s)?$') && size(self) > 0").message("spec.upgrade.rolling.brokerReadyTimeout must be a duration such as 5m, 90s or 1h30m"))]
    pub broker_ready_timeout: String,
}

impl Default for RollingSpec {
    fn default() -> Self {
        RollingSpec {
            max_parallel: default_max_parallel(),
            min_isr_headroom: 0,
            min_ready_seconds: 0,
            broker_ready_timeout: default_broker_ready_timeout(),
        }
    }
}

/// The consumer-health gate of a roll.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerHealthSpec {
    /// Evaluate consumer groups before each restart (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The groups to watch; empty (default): every consumer group of the cluster.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self.size() <= 1000").message("spec.upgrade.consumerHealth.groups may name at most 1000 groups"))]
    pub groups: Vec<String>,
    /// A group further behind than this (in seconds of produced data) holds the roll
    /// (default 300).
    #[serde(default = "default_max_lag_seconds")]
    #[x_kube(validation = Rule::new("self >= 1").message("spec.upgrade.consumerHealth.maxLagSeconds must be at least 1"))]
    pub max_lag_seconds: i64,
}

impl Default for ConsumerHealthSpec {
    fn default() -> Self {
        ConsumerHealthSpec {
            enabled: true,
            groups: Vec::new(),
            max_lag_seconds: default_max_lag_seconds(),
        }
    }
}

/// Replica movement when the broker set changes.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RebalanceSpec {
    /// After a scale-up, move replicas onto the new brokers until replicas and preferred
    /// leaders are even over all brokers (default true). A scale-down always drains the brokers
    /// it removes first.
    #[serde(default = "default_true")]
    pub on_scale_up: bool,
    /// Replication throttle while replicas move, bytes/s, on the leader and the follower side of
    /// every moving replica (default 10485760, 10 MiB/s; 0: unthrottled).
    #[serde(default = "default_rebalance_throttle")]
    #[x_kube(validation = Rule::new("self >= 0").message("spec.rebalance.throttleBytesPerSecond must be 0 or more"))]
    pub throttle_bytes_per_second: i64,
    /// Partitions moving at once (default 5).
    #[serde(default = "default_max_concurrent_moves")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 10000").message("spec.rebalance.maxConcurrentMoves must be between 1 and 10000"))]
    pub max_concurrent_moves: i32,
}

impl Default for RebalanceSpec {
    fn default() -> Self {
        RebalanceSpec {
            on_scale_up: true,
            throttle_bytes_per_second: default_rebalance_throttle(),
            max_concurrent_moves: default_max_concurrent_moves(),
        }
    }
}

fn default_rebalance_throttle() -> i64 {
    10 << 20
}

fn default_max_concurrent_moves() -> i32 {
    5
}

/// Parses a duration such as `5m`, `90s` or `1h30m` (hours, minutes, seconds, in that order).
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    if s.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    let mut last_unit = 0u8;
    for c in s.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let (rank, seconds) = match c {
            'h' => (1, 3600),
            'm' => (2, 60),
            's' => (3, 1),
            _ => return None,
        };
        if number.is_empty() || rank <= last_unit {
            return None;
        }
        let n: u64 = number.parse().ok()?;
        total = total.checked_add(n.checked_mul(seconds)?)?;
        number.clear();
        last_unit = rank;
    }
    number
        .is_empty()
        .then_some(std::time::Duration::from_secs(total))
}

/// Metrics options.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MetricsSpec {
    /// Port of the brokers' `/metrics`, `/healthz` and `/readyz`.
    #[serde(default = "default_metrics_port")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 65535").message("spec.metrics.port must be a port (1-65535)"))]
    pub port: i32,
    /// Create a Prometheus Operator ServiceMonitor for the brokers.
    #[serde(default)]
    pub service_monitor: bool,
}

impl Default for MetricsSpec {
    fn default() -> Self {
        MetricsSpec {
            port: default_metrics_port(),
            service_monitor: false,
        }
    }
}

/// Anti-affinity between the brokers of one cluster (per node).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum AntiAffinity {
    /// Prefer different nodes; share one when nothing else is free (default).
    #[default]
    Preferred,
    /// Never two brokers of the cluster on one node.
    Required,
    /// No anti-affinity.
    None,
}

/// Observed state of a Samsa cluster.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaClusterStatus {
    /// The `metadata.generation` the status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Progressing`, `Degraded`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// One entry per broker pod, by id.
    #[serde(default)]
    pub brokers: Vec<BrokerStatus>,
    /// Brokers whose pod is ready.
    #[serde(default)]
    pub ready_brokers: i32,
    /// Voters of the metadata quorum, fixed at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controllers: Option<i32>,
    /// Version every broker runs, once the rollout is complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_version: Option<String>,
    /// Version being rolled out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_version: Option<String>,
    /// Kafka bootstrap address inside the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<String>,
    /// The operator's rolling restart: where it is, written before each step it takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutStatus>,
    /// Replica movement after a change of the broker set: the plan and its progress, written
    /// before each batch of moves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebalance: Option<RebalanceStatus>,
    /// The StatefulSet whose pods are the cluster's brokers (absent: the one named after the
    /// cluster, broker ids 0..n). A promoted blue-green upgrade changes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_set: Option<BrokerSet>,
    /// The metadata quorum's voters (`id@host:port,...`) as the operator last moved them
    /// (absent: pods 0..controllers of the first broker set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum_voters: Option<String>,
    /// The blue-green upgrade: where it is, written before each step it takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<UpgradeStatus>,
    /// A short health summary from the operator's last poll of the cluster (the one behind its
    /// cluster metrics); written when it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthSummary>,
}

/// The cluster's health at the operator's last poll.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthSummary {
    /// Partitions with fewer in-sync replicas than replicas.
    pub under_replicated: i32,
    /// Partitions with fewer in-sync replicas than their `min.insync.replicas`.
    pub under_min_isr: i32,
    /// Partitions with exactly `min.insync.replicas` in-sync replicas.
    pub at_min_isr: i32,
    /// Partitions without a leader.
    pub offline: i32,
    /// Consumer groups whose status is not OK (WARN or ERR).
    pub groups_not_ok: i32,
    /// Those groups with their status and reason (`group: ERR STOP`), at most ten.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// When the poll read it (RFC 3339).
    #[serde(default)]
    pub observed_at: String,
}

/// A StatefulSet of brokers: its name and the id of its pod 0 (broker id = offset + ordinal).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BrokerSet {
    /// StatefulSet name.
    pub name: String,
    /// Broker id of ordinal 0.
    #[serde(default)]
    pub id_offset: i32,
}

impl BrokerSet {
    /// The first broker set of cluster `name`: the StatefulSet `name`, ids from 0.
    pub fn first(name: &str) -> BrokerSet {
        BrokerSet {
            name: name.to_string(),
            id_offset: 0,
        }
    }

    /// The broker ids of the set's ordinals `0..count`.
    pub fn ids(&self, count: i32) -> Vec<i32> {
        (0..count).map(|i| self.id_offset + i).collect()
    }

    /// The pod name of broker `id`.
    pub fn pod(&self, id: i32) -> String {
        format!("{}-{}", self.name, id - self.id_offset)
    }
}

/// Phase of a blue-green upgrade.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum UpgradePhase {
    /// The new StatefulSet is starting: waiting for each new broker to be Ready and registered.
    #[default]
    Provisioning,
    /// Every partition moves to the new brokers (see `partitionsDone`, `bytesMoved`).
    Moving,
    /// The new brokers hold and lead everything; the verification window runs.
    Verifying,
    /// Verified; waiting for the annotation `samsa.dev/promote` (`promotion: Manual`).
    AwaitingPromotion,
    /// The quorum's voters move to the new brokers, then the old ones are removed.
    Promoting,
    /// The data moves back to the old brokers, then the new ones are removed.
    RollingBack,
    /// Promoted: the new brokers are the cluster.
    Done,
    /// Rolled back: the old brokers are the cluster again.
    RolledBack,
}

/// Progress of a blue-green upgrade.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeStatus {
    /// Where it is.
    #[serde(default)]
    pub phase: UpgradePhase,
    /// The brokers running before (blue).
    pub from: BrokerSet,
    /// Their image.
    #[serde(default)]
    pub from_image: String,
    /// Their version.
    #[serde(default)]
    pub from_version: String,
    /// Their ids.
    #[serde(default)]
    pub from_ids: Vec<i32>,
    /// The new brokers (green).
    pub to: BrokerSet,
    /// Their image.
    #[serde(default)]
    pub to_image: String,
    /// Their version.
    #[serde(default)]
    pub to_version: String,
    /// Their ids.
    #[serde(default)]
    pub to_ids: Vec<i32>,
    /// Partitions to move (this phase's movement).
    #[serde(default)]
    pub partitions_total: i32,
    /// Partitions moved.
    #[serde(default)]
    pub partitions_done: i32,
    /// Bytes to copy.
    #[serde(default)]
    pub bytes_total: i64,
    /// Bytes copied.
    #[serde(default)]
    pub bytes_moved: i64,
    /// When it began (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// When the data was on the new brokers (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_at: Option<String>,
    /// When the current verification window began (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifying_since: Option<String>,
    /// When it finished, promoted or rolled back (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Seconds from start to finish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// What it waits for, or what went wrong.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// Phase of a replica movement.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum RebalancePhase {
    /// Nothing to move: the status records the broker set the replicas are spread over.
    #[default]
    Idle,
    /// Waiting for the brokers a plan needs: every pod Ready and every broker registered.
    Waiting,
    /// Replicas are moving (`inProgress`), batch after batch.
    Moving,
    /// Something stops the movement (see `message`); it resumes by itself once it clears.
    Blocked,
    /// Every planned replica moved; preferred leaders elected.
    Complete,
}

/// Why replicas move.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum RebalanceReason {
    /// Brokers were added: replicas spread onto them.
    ScaleUp,
    /// Brokers are to be removed: drained first.
    ScaleDown,
    /// A blue-green upgrade: everything moves to the new brokers.
    BlueGreen,
    /// A blue-green upgrade rolled back: everything moves back to the old brokers.
    Rollback,
}

/// One partition of a plan: where its replicas go.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedPartition {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The target replicas, preferred leader first.
    pub replicas: Vec<i32>,
    /// Bytes this partition's move copies (its size times the replicas added).
    #[serde(default)]
    pub bytes: i64,
}

/// Progress of a replica movement.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RebalanceStatus {
    /// Where it is.
    #[serde(default)]
    pub phase: RebalancePhase,
    /// Why replicas move (absent while `Idle`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RebalanceReason>,
    /// The brokers that hold replicas once the plan is done.
    #[serde(default)]
    pub brokers: Vec<i32>,
    /// Brokers being drained before their pods are removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removing: Vec<i32>,
    /// Partitions the plan moves.
    #[serde(default)]
    pub partitions_total: i32,
    /// Partitions already where the plan puts them.
    #[serde(default)]
    pub partitions_done: i32,
    /// Replicas the plan adds to brokers that did not hold them.
    #[serde(default)]
    pub replica_moves: i32,
    /// Bytes the plan copies.
    #[serde(default)]
    pub bytes_total: i64,
    /// Bytes of the partitions done.
    #[serde(default)]
    pub bytes_moved: i64,
    /// Partitions moving now (`topic-partition`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_progress: Vec<String>,
    /// The plan: partitions still to move, with their targets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plan: Vec<PlannedPartition>,
    /// When the movement started (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// When it finished (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Seconds from start to finish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// What it waits for or why it is blocked; the last partition errors.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// Phase of a rolling restart.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum RolloutPhase {
    /// Every broker runs the current pod template; no roll has run yet.
    #[default]
    Idle,
    /// Brokers are being restarted.
    Rolling,
    /// `spec.upgrade.paused`: held between brokers.
    Paused,
    /// A gate holds the next restart (see `blockedReason`).
    Blocked,
    /// A restarted broker did not come back in time; the roll stopped.
    Halted,
    /// Every broker runs the current pod template.
    Complete,
}

/// Progress of the operator's rolling restart.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// The StatefulSet revision being rolled out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_revision: Option<String>,
    /// The version being rolled out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_version: Option<String>,
    /// Where the roll is.
    #[serde(default)]
    pub phase: RolloutPhase,
    /// Brokers restarting now (their pods were deleted by the operator).
    #[serde(default)]
    pub in_progress: Vec<i32>,
    /// Brokers restarted in this roll.
    #[serde(default)]
    pub restarted: Vec<i32>,
    /// Brokers still to restart.
    #[serde(default)]
    pub pending: Vec<i32>,
    /// Why the next restart waits (a CamelCase reason), while it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_reason: Option<String>,
    /// What holds the roll, for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_message: Option<String>,
    /// When the roll began (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// When the last broker was back (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Seconds each restarted broker took, from its pod's deletion to being back in every
    /// ISR, by broker id.
    #[serde(default)]
    pub restart_seconds: BTreeMap<String, f64>,
    /// When the restart of each broker in progress began (RFC 3339), by broker id.
    #[serde(default)]
    pub restart_started_at: BTreeMap<String, String>,
    /// When each broker in progress was back in every ISR (RFC 3339), by broker id: it counts
    /// as restarted `minReadySeconds` later.
    #[serde(default)]
    pub caught_up_at: BTreeMap<String, String>,
}

/// One broker's state.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BrokerStatus {
    /// Broker (node) id, the pod ordinal.
    pub id: i32,
    /// Pod name.
    pub pod: String,
    /// Pod Ready condition.
    pub ready: bool,
    /// Whether the pod runs the current pod template.
    #[serde(default)]
    pub updated: bool,
    /// The node the pod runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The broker's rack (broker.rack), from its node's `spec.rack.topologyKey` label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<String>,
}

/// CEL rule: every `spec.config` key is a setting samsa-broker takes (or a reserved key, which
/// the rule above refuses with its own message).
fn known_keys_rule() -> kube::core::Rule {
    let keys: Vec<String> = crate::plan::broker_config::BROKER_KEYS
        .iter()
        .map(|(k, _)| format!("'{k}'"))
        .chain(RESERVED_BROKER_KEYS.iter().map(|k| format!("'{k}'")))
        .collect();
    kube::core::Rule::new(format!("self.all(k, k in [{}])", keys.join(", "))).message(
        "spec.config may only hold settings samsa-broker takes, by their Kafka names (see samsa-broker --help)",
    )
}

fn default_brokers() -> i32 {
    3
}
fn default_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
fn default_storage_size() -> String {
    "10Gi".to_string()
}
fn default_topology_key() -> String {
    "topology.kubernetes.io/zone".to_string()
}
fn default_client_port() -> i32 {
    9092
}
fn default_controller_port() -> i32 {
    9093
}
fn default_replication_port() -> i32 {
    9094
}
fn default_metrics_port() -> i32 {
    9404
}
fn default_grace() -> i64 {
    120
}
fn default_max_parallel() -> i32 {
    1
}
fn default_broker_ready_timeout() -> String {
    "5m".to_string()
}
fn default_true() -> bool {
    true
}
fn default_max_lag_seconds() -> i64 {
    300
}

impl Default for KafkaClusterSpec {
    fn default() -> Self {
        KafkaClusterSpec {
            brokers: default_brokers(),
            controllers: None,
            version: default_version(),
            image: None,
            storage: StorageSpec::default(),
            resources: None,
            config: BTreeMap::new(),
            volume_claims: VolumeClaimsSpec::default(),
            rack: None,
            listeners: ListenersSpec::default(),
            authorization: None,
            tls: None,
            network_policy: NetworkPolicyOptions::default(),
            upgrade: UpgradeSpec::default(),
            rebalance: RebalanceSpec::default(),
            metrics: MetricsSpec::default(),
            pod_anti_affinity: AntiAffinity::default(),
            termination_grace_period_seconds: default_grace(),
        }
    }
}

fn is_port(p: i32) -> bool {
    (1..=65535).contains(&p)
}

fn numeric(config: &BTreeMap<String, String>, key: &str) -> Option<i64> {
    config.get(key).and_then(|v| v.parse::<i64>().ok())
}

impl KafkaClusterSpec {
    /// Voters of the metadata quorum for a new cluster: `spec.controllers`, else min(3, brokers).
    pub fn initial_controllers(&self) -> i32 {
        self.controllers.unwrap_or(self.brokers.clamp(1, 3))
    }

    /// The rules of the CRD's schema and CEL, checked in Rust. Empty when valid.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if !(1..=MAX_BROKERS).contains(&self.brokers) {
            errs.push(FieldError::new(
                "spec.brokers",
                format!("must be between 1 and {MAX_BROKERS} (is {})", self.brokers),
            ));
        }
        if let Some(c) = self.controllers {
            if ![1, 3, 5, 7].contains(&c) {
                errs.push(FieldError::new(
                    "spec.controllers",
                    format!("must be 1, 3, 5 or 7 (is {c})"),
                ));
            }
            if c > self.brokers {
                errs.push(FieldError::new(
                    "spec.controllers",
                    format!("must not exceed spec.brokers ({c} > {})", self.brokers),
                ));
            }
        }
        let version_ok = !self.version.is_empty()
            && self.version.len() <= 128
            && self.version.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphanumeric() || (i > 0 && matches!(c, '.' | '_' | '+' | '-'))
            });
        if !version_ok {
            errs.push(FieldError::new(
                "spec.version",
                format!("must be a version such as 0.1.0 (is {:?})", self.version),
            ));
        }
        if let Some(image) = &self.image {
            if image.is_empty() || image.len() > 512 {
                errs.push(FieldError::new(
                    "spec.image",
                    "must be a non-empty image reference",
                ));
            }
        }
        if !is_quantity(&self.storage.size) {
            errs.push(FieldError::new(
                "spec.storage.size",
                format!(
                    "must be a quantity such as 10Gi (is {:?})",
                    self.storage.size
                ),
            ));
        }
        for key in self.config.keys() {
            if RESERVED_BROKER_KEYS.contains(&key.as_str()) {
                errs.push(FieldError::new(
                    &format!("spec.config[{key}]"),
                    "is set by the operator and may not be given",
                ));
            }
        }
        for key in ["default.replication.factor", "min.insync.replicas"] {
            if let Some(v) = numeric(&self.config, key) {
                if v > i64::from(self.brokers) {
                    errs.push(FieldError::new(
                        &format!("spec.config[{key}]"),
                        format!("must not exceed spec.brokers ({v} > {})", self.brokers),
                    ));
                }
            }
        }
        if let Some(rack) = &self.rack {
            if rack.topology_key.is_empty() || rack.topology_key.len() > 316 {
                errs.push(FieldError::new(
                    "spec.rack.topologyKey",
                    "must be a node label key",
                ));
            }
        }
        let l = &self.listeners;
        for (name, port) in [
            ("spec.listeners.client", l.client),
            ("spec.listeners.controller", l.controller),
            ("spec.listeners.replication", l.replication),
            ("spec.metrics.port", self.metrics.port),
        ] {
            if !is_port(port) {
                errs.push(FieldError::new(
                    name,
                    format!("must be a port (1-65535) (is {port})"),
                ));
            }
        }
        if l.client == l.controller || l.client == l.replication || l.controller == l.replication {
            errs.push(FieldError::new(
                "spec.listeners",
                "client, controller and replication must be different ports",
            ));
        }
        self.validate_security(&mut errs);
        let rolling = &self.upgrade.rolling;
        if !(1..=MAX_BROKERS).contains(&rolling.max_parallel) {
            errs.push(FieldError::new(
                "spec.upgrade.rolling.maxParallel",
                format!(
                    "must be between 1 and {MAX_BROKERS} (is {})",
                    rolling.max_parallel
                ),
            ));
        }
        if !(0..=100).contains(&rolling.min_isr_headroom) {
            errs.push(FieldError::new(
                "spec.upgrade.rolling.minIsrHeadroom",
                format!(
                    "must be between 0 and 100 (is {})",
                    rolling.min_isr_headroom
                ),
            ));
        }
        if !(0..=86400).contains(&rolling.min_ready_seconds) {
            errs.push(FieldError::new(
                "spec.upgrade.rolling.minReadySeconds",
                format!(
                    "must be between 0 and 86400 (is {})",
                    rolling.min_ready_seconds
                ),
            ));
        }
        if parse_duration(&rolling.broker_ready_timeout).is_none_or(|d| d.is_zero()) {
            errs.push(FieldError::new(
                "spec.upgrade.rolling.brokerReadyTimeout",
                format!(
                    "must be a duration such as 5m, 90s or 1h30m (is {:?})",
                    rolling.broker_ready_timeout
                ),
            ));
        }
        if self.upgrade.consumer_health.max_lag_seconds < 1 {
            errs.push(FieldError::new(
                "spec.upgrade.consumerHealth.maxLagSeconds",
                format!(
                    "must be at least 1 (is {})",
                    self.upgrade.consumer_health.max_lag_seconds
                ),
            ));
        }
        if !(30..=3600).contains(&self.termination_grace_period_seconds) {
            errs.push(FieldError::new(
                "spec.terminationGracePeriodSeconds",
                format!(
                    "must be between 30 and 3600 (is {})",
                    self.termination_grace_period_seconds
                ),
            ));
        }
        errs
    }

    /// The transition rules of the CRD (old → new), checked in Rust. Empty when allowed.
    pub fn validate_update(&self, old: &KafkaClusterSpec) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if let (Some(new), Some(before)) = (self.controllers, old.controllers) {
            if new != before {
                errs.push(FieldError::new(
                    "spec.controllers",
                    "is immutable: the metadata quorum's voters are fixed when the cluster is created",
                ));
            }
        }
        if self.storage != old.storage {
            errs.push(FieldError::new(
                "spec.storage",
                "is immutable: StatefulSet volume claim templates cannot change",
            ));
        }
        errs
    }
}

/// True for a Kubernetes quantity of the simple forms the CRD accepts (`10Gi`, `1.5T`, `500`).
pub fn is_quantity(s: &str) -> bool {
    const SUFFIXES: [&str; 12] = [
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "k", "M", "G", "T", "P", "E",
    ];
    let number = SUFFIXES
        .iter()
        .find_map(|suf| s.strip_suffix(suf))
        .unwrap_or(s);
    let mut parts = number.splitn(2, '.');
    let whole = parts.next().unwrap_or("");
    let frac = parts.next();
    !whole.is_empty()
        && whole.chars().all(|c| c.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(errs: &[FieldError]) -> Vec<&str> {
        errs.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn defaults_are_valid() {
        let spec = KafkaClusterSpec::default();
        assert_eq!(spec.validate(), vec![]);
        assert_eq!(spec.brokers, 3);
        assert_eq!(spec.initial_controllers(), 3);
        assert_eq!(spec.listeners.client, 9092);
        assert_eq!(spec.storage.size, "10Gi");
    }

    #[test]
    fn defaults_fill_a_minimal_spec() {
        let spec: KafkaClusterSpec = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!(spec, KafkaClusterSpec::default());
    }

    #[test]
    fn initial_controllers_is_min_three_brokers() {
        let mut spec = KafkaClusterSpec {
            brokers: 1,
            ..Default::default()
        };
        assert_eq!(spec.initial_controllers(), 1);
        spec.brokers = 2;
        assert_eq!(spec.initial_controllers(), 2);
        spec.brokers = 9;
        assert_eq!(spec.initial_controllers(), 3);
        spec.controllers = Some(5);
        assert_eq!(spec.initial_controllers(), 5);
    }

    #[test]
    fn each_rule_names_its_field() {
        let mut spec = KafkaClusterSpec {
            brokers: 0,
            controllers: Some(2),
            version: "".into(),
            image: Some("".into()),
            ..Default::default()
        };
        spec.storage.size = "ten gigs".into();
        spec.config.insert("node.id".into(), "3".into());
        spec.config.insert("min.insync.replicas".into(), "2".into());
        spec.listeners.controller = 9092;
        spec.metrics.port = 70000;
        spec.termination_grace_period_seconds = 5;
        let errs = spec.validate();
        assert_eq!(
            fields(&errs),
            vec![
                "spec.brokers",
                "spec.controllers",
                "spec.controllers",
                "spec.version",
                "spec.image",
                "spec.storage.size",
                "spec.config[node.id]",
                "spec.config[min.insync.replicas]",
                "spec.metrics.port",
                "spec.listeners",
                "spec.terminationGracePeriodSeconds",
            ]
        );
        assert!(errs[2].message.contains("2 > 0"), "{}", errs[2]);
    }

    #[test]
    fn storage_and_controllers_are_immutable() {
        let old = KafkaClusterSpec {
            controllers: Some(3),
            ..Default::default()
        };
        let mut new = old.clone();
        new.brokers = 5;
        assert_eq!(new.validate_update(&old), vec![]);
        new.controllers = Some(5);
        new.storage.size = "20Gi".into();
        assert_eq!(
            fields(&new.validate_update(&old)),
            vec!["spec.controllers", "spec.storage"]
        );
    }

    #[test]
    fn durations() {
        for (s, secs) in [
            ("5m", 300),
            ("90s", 90),
            ("1h30m", 5400),
            ("1h2m3s", 3723),
            ("0s", 0),
        ] {
            assert_eq!(
                parse_duration(s),
                Some(std::time::Duration::from_secs(secs)),
                "{s}"
            );
        }
        for bad in ["", "5", "m", "5x", "1m1h", "1m1m", "-1s", "1.5m"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        let mut spec = KafkaClusterSpec::default();
        spec.upgrade.rolling.broker_ready_timeout = "soon".into();
        spec.upgrade.rolling.max_parallel = 0;
        assert_eq!(
            fields(&spec.validate()),
            vec![
                "spec.upgrade.rolling.maxParallel",
                "spec.upgrade.rolling.brokerReadyTimeout"
            ]
        );
    }

    #[test]
    fn quantities() {
        for ok in ["10Gi", "1", "1.5T", "500Mi", "100k"] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "Gi", "1.Gi", "-1Gi", "10 Gi", "1e3", "10GB"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }
}
