//! `KafkaTopic`: one Kafka topic of a `KafkaCluster` in the same namespace.
// kube's KubeSchema derive re-declares each struct in a private module to derive its schema,
// which the unreachable_pub lint flags; the types themselves are exported from `crd`.
#![allow(unreachable_pub)]
// Each `printcolumn(...)` repeats `type_ = ...`; clippy reads them as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{config_map_schema, Condition, FieldError};

/// Largest partition count a topic may ask for (the broker's limit).
pub const MAX_PARTITIONS: i32 = 100_000;
/// Most partitions an explicit assignment may list.
pub const MAX_ASSIGNMENT_ENTRIES: usize = 10_000;
/// Largest replication factor a topic may ask for.
pub const MAX_REPLICATION_FACTOR: i32 = 32;

/// Desired state of a Kafka topic.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "samsa.dev",
    version = "v1alpha1",
    kind = "KafkaTopic",
    namespaced,
    shortname = "kt",
    status = "KafkaTopicStatus",
    derive = "PartialEq",
    printcolumn(
        name = "Cluster",
        type_ = "string",
        json_path = ".spec.clusterRef.name"
    ),
    printcolumn(name = "Partitions", type_ = "integer", json_path = ".spec.partitions"),
    printcolumn(name = "RF", type_ = "integer", json_path = ".spec.replicationFactor"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(
    validation = Rule::new("!('min.insync.replicas' in self.config) || !self.config['min.insync.replicas'].matches('^[0-9]+$') || int(self.config['min.insync.replicas']) < self.replicationFactor")
        .message("spec.config[min.insync.replicas] must be less than spec.replicationFactor"),
    validation = Rule::new("!has(self.assignment) || size(self.assignment) == self.partitions")
        .message("spec.assignment must have one entry per partition (spec.partitions)"),
    validation = Rule::new("!has(self.assignment) || self.assignment.all(r, size(r) == self.replicationFactor)")
        .message("each spec.assignment entry must list spec.replicationFactor brokers"),
    validation = Rule::new("has(self.topicName) == has(oldSelf.topicName) && (!has(self.topicName) || self.topicName == oldSelf.topicName)")
        .message("spec.topicName is immutable")
)]
#[serde(rename_all = "camelCase")]
pub struct KafkaTopicSpec {
    /// The `KafkaCluster` (same namespace) holding the topic. Immutable.
    pub cluster_ref: ClusterRef,

    /// Kafka topic name; `metadata.name` when unset. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^[a-zA-Z0-9._-]{1,249}$') && self != '.' && self != '..'")
        .message("spec.topicName must be 1-249 characters of a-z, A-Z, 0-9, '.', '_' or '-', and not '.' or '..'"))]
    pub topic_name: Option<String>,

    /// Number of partitions. May grow, never shrink.
    #[serde(default = "default_partitions")]
    #[x_kube(
        validation = Rule::new("self >= 1 && self <= 100000").message("spec.partitions must be between 1 and 100000"),
        validation = Rule::new("self >= oldSelf").message("spec.partitions cannot decrease: Kafka cannot remove partitions")
    )]
    pub partitions: i32,

    /// Replicas of each partition. Must not exceed the cluster's brokers. A change moves
    /// replicas by reassignment.
    #[serde(default = "default_replication_factor")]
    #[x_kube(
        validation = Rule::new("self >= 1 && self <= 32").message("spec.replicationFactor must be between 1 and 32")
    )]
    pub replication_factor: i32,

    /// Topic configs by Kafka name (`retention.ms: "86400000"`).
    #[serde(default)]
    #[schemars(schema_with = "config_map_schema")]
    pub config: BTreeMap<String, String>,

    /// Optional explicit assignment: entry i lists the broker ids of partition i's replicas,
    /// the preferred leader first. Used when partitions are created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // Bounded so CEL cost estimation stays within the apiserver's budget; duplicate ids are
    // refused by the reconciler (a CEL distinctness check would be quadratic per entry).
    #[schemars(length(max = 10000), inner(length(min = 1, max = 32)))]
    #[x_kube(validation = Rule::new("self.all(r, r.all(b, b >= 0))")
        .message("spec.assignment entries must list non-negative broker ids"))]
    pub assignment: Option<Vec<Replicas>>,

    /// What deleting this resource does to the Kafka topic: `Delete` (default) or `Retain`.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// Broker ids of one partition's replicas.
pub type Replicas = Vec<i32>;

/// Reference to a `KafkaCluster` in the same namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self == oldSelf").message("spec.clusterRef is immutable"))]
pub struct ClusterRef {
    /// Name of the `KafkaCluster`.
    #[x_kube(validation = Rule::new("size(self) > 0 && size(self) <= 253").message("spec.clusterRef.name must be a KafkaCluster name"))]
    pub name: String,
}

/// What deleting a `KafkaTopic` does to the topic in Kafka.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum DeletionPolicy {
    /// Delete the Kafka topic with its data.
    #[default]
    Delete,
    /// Leave the Kafka topic in place.
    Retain,
}

/// Observed state of a topic.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaTopicStatus {
    /// The `metadata.generation` the status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The Kafka topic name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_name: Option<String>,
    /// The Kafka topic id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<String>,
    /// Each partition with its leader, replicas and in-sync replicas.
    #[serde(default)]
    pub partitions: Vec<PartitionStatus>,
}

/// One partition as the cluster reports it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartitionStatus {
    /// Partition index.
    pub partition: i32,
    /// Leader broker id; -1 when there is none.
    pub leader: i32,
    /// Replica broker ids.
    pub replicas: Vec<i32>,
    /// In-sync replica broker ids.
    pub isr: Vec<i32>,
}

fn default_partitions() -> i32 {
    1
}
fn default_replication_factor() -> i32 {
    3
}

/// True for a legal Kafka topic name.
pub fn is_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl KafkaTopic {
    /// The Kafka topic name: `spec.topicName`, else `metadata.name`.
    pub fn topic_name(&self) -> String {
        self.spec
            .topic_name
            .clone()
            .or_else(|| self.metadata.name.clone())
            .unwrap_or_default()
    }
}

impl KafkaTopicSpec {
    /// The rules of the CRD's schema and CEL that one object allows, checked in Rust. Empty
    /// when valid. `name` is the Kafka topic name in use.
    pub fn validate(&self, name: &str) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if self.cluster_ref.name.is_empty() {
            errs.push(FieldError::new(
                "spec.clusterRef.name",
                "must name a KafkaCluster",
            ));
        }
        if !is_topic_name(name) {
            errs.push(FieldError::new(
                "spec.topicName",
                format!(
                    "{name:?} is not a Kafka topic name: 1-249 characters of a-z, A-Z, 0-9, '.', '_' or '-', and not '.' or '..'"
                ),
            ));
        }
        if !(1..=MAX_PARTITIONS).contains(&self.partitions) {
            errs.push(FieldError::new(
                "spec.partitions",
                format!(
                    "must be between 1 and {MAX_PARTITIONS} (is {})",
                    self.partitions
                ),
            ));
        }
        if !(1..=MAX_REPLICATION_FACTOR).contains(&self.replication_factor) {
            errs.push(FieldError::new(
                "spec.replicationFactor",
                format!(
                    "must be between 1 and {MAX_REPLICATION_FACTOR} (is {})",
                    self.replication_factor
                ),
            ));
        }
        if let Some(min_isr) = self
            .config
            .get("min.insync.replicas")
            .and_then(|v| v.parse::<i64>().ok())
        {
            if min_isr >= i64::from(self.replication_factor) {
                errs.push(FieldError::new(
                    "spec.config[min.insync.replicas]",
                    format!(
                        "must be less than spec.replicationFactor ({min_isr} >= {})",
                        self.replication_factor
                    ),
                ));
            }
        }
        if let Some(assignment) = &self.assignment {
            if assignment.len() > MAX_ASSIGNMENT_ENTRIES {
                errs.push(FieldError::new(
                    "spec.assignment",
                    format!("may list at most {MAX_ASSIGNMENT_ENTRIES} partitions"),
                ));
            }
            if i64::try_from(assignment.len()).ok() != Some(i64::from(self.partitions)) {
                errs.push(FieldError::new(
                    "spec.assignment",
                    format!(
                        "must have one entry per partition ({} entries, spec.partitions is {})",
                        assignment.len(),
                        self.partitions
                    ),
                ));
            }
            for (i, replicas) in assignment.iter().enumerate() {
                let field = format!("spec.assignment[{i}]");
                if i64::try_from(replicas.len()).ok() != Some(i64::from(self.replication_factor)) {
                    errs.push(FieldError::new(
                        &field,
                        format!(
                            "must list spec.replicationFactor ({}) brokers, lists {}",
                            self.replication_factor,
                            replicas.len()
                        ),
                    ));
                }
                let mut seen = std::collections::BTreeSet::new();
                if replicas.iter().any(|b| *b < 0 || !seen.insert(*b)) {
                    errs.push(FieldError::new(
                        &field,
                        "must list distinct, non-negative broker ids",
                    ));
                }
            }
        }
        errs
    }

    /// The checks that need the cluster: the replication factor and the explicit assignment
    /// against the cluster's broker ids (`0..brokers`).
    pub fn validate_against_cluster(&self, brokers: i32) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if self.replication_factor > brokers {
            errs.push(FieldError::new(
                "spec.replicationFactor",
                format!(
                    "must not exceed the cluster's brokers ({} > {brokers})",
                    self.replication_factor
                ),
            ));
        }
        for (i, replicas) in self.assignment.iter().flatten().enumerate() {
            if let Some(b) = replicas.iter().find(|b| **b >= brokers) {
                errs.push(FieldError::new(
                    &format!("spec.assignment[{i}]"),
                    format!("names broker {b}, but the cluster's broker ids are 0..{brokers}"),
                ));
            }
        }
        errs
    }

    /// The transition rules of the CRD (old → new), checked in Rust. Empty when allowed.
    pub fn validate_update(&self, old: &KafkaTopicSpec) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if self.cluster_ref != old.cluster_ref {
            errs.push(FieldError::new("spec.clusterRef", "is immutable"));
        }
        if self.topic_name != old.topic_name {
            errs.push(FieldError::new("spec.topicName", "is immutable"));
        }
        if self.partitions < old.partitions {
            errs.push(FieldError::new(
                "spec.partitions",
                format!(
                    "cannot decrease: Kafka cannot remove partitions ({} < {})",
                    self.partitions, old.partitions
                ),
            ));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> KafkaTopicSpec {
        serde_json::from_value(serde_json::json!({"clusterRef": {"name": "kc"}})).unwrap()
    }

    fn fields(errs: &[FieldError]) -> Vec<&str> {
        errs.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn defaults() {
        let s = spec();
        assert_eq!(s.partitions, 1);
        assert_eq!(s.replication_factor, 3);
        assert_eq!(s.deletion_policy, DeletionPolicy::Delete);
        assert_eq!(s.assignment, None);
        assert_eq!(s.validate("orders"), vec![]);
    }

    #[test]
    fn topic_name_defaults_to_metadata_name() {
        let mut t = KafkaTopic::new("orders", spec());
        assert_eq!(t.topic_name(), "orders");
        t.spec.topic_name = Some("Orders_v2".into());
        assert_eq!(t.topic_name(), "Orders_v2");
    }

    #[test]
    fn rules_name_their_fields() {
        let mut s = spec();
        s.partitions = 0;
        s.replication_factor = 0;
        let errs = s.validate("bad name");
        assert_eq!(
            fields(&errs),
            vec![
                "spec.topicName",
                "spec.partitions",
                "spec.replicationFactor"
            ]
        );
    }

    #[test]
    fn min_isr_must_be_below_rf() {
        let mut s = spec();
        s.config.insert("min.insync.replicas".into(), "3".into());
        let errs = s.validate("t");
        assert_eq!(fields(&errs), vec!["spec.config[min.insync.replicas]"]);
        assert!(errs[0].message.contains("3 >= 3"));
        s.config.insert("min.insync.replicas".into(), "2".into());
        assert_eq!(s.validate("t"), vec![]);
    }

    #[test]
    fn assignment_shape() {
        let mut s = spec();
        s.partitions = 2;
        s.replication_factor = 2;
        s.assignment = Some(vec![vec![0, 1], vec![1, 1], vec![2]]);
        let errs = s.validate("t");
        assert_eq!(
            fields(&errs),
            vec![
                "spec.assignment",
                "spec.assignment[1]",
                "spec.assignment[2]"
            ]
        );
        s.assignment = Some(vec![vec![0, 1], vec![1, 2]]);
        assert_eq!(s.validate("t"), vec![]);
        assert_eq!(
            fields(&s.validate_against_cluster(2)),
            vec!["spec.assignment[1]"]
        );
        assert_eq!(s.validate_against_cluster(3), vec![]);
    }

    #[test]
    fn replication_factor_against_cluster() {
        let s = spec();
        let errs = s.validate_against_cluster(1);
        assert_eq!(fields(&errs), vec!["spec.replicationFactor"]);
        assert!(errs[0].message.contains("3 > 1"), "{}", errs[0]);
    }

    #[test]
    fn transitions() {
        let old = spec();
        let mut new = old.clone();
        new.partitions = 4;
        assert_eq!(new.validate_update(&old), vec![]);
        let grown = new.clone();
        new.partitions = 2;
        new.cluster_ref.name = "other".into();
        new.topic_name = Some("x".into());
        new.replication_factor = 1;
        assert_eq!(
            fields(&new.validate_update(&grown)),
            vec!["spec.clusterRef", "spec.topicName", "spec.partitions"]
        );
        // A replication-factor change is carried out by reassignment.
        let mut rf = grown.clone();
        rf.replication_factor = 1;
        assert_eq!(rf.validate_update(&grown), vec![]);
    }

    #[test]
    fn topic_names() {
        assert!(is_topic_name("a.b_c-D9"));
        assert!(!is_topic_name(""));
        assert!(!is_topic_name("."));
        assert!(!is_topic_name(".."));
        assert!(!is_topic_name("a/b"));
        assert!(!is_topic_name(&"x".repeat(250)));
    }
}
