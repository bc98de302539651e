//! `KafkaUser`: one client identity of a `KafkaCluster` in the same namespace — a SCRAM-SHA-512
//! credential or a TLS client certificate — and the ACLs of its principal.
// kube's KubeSchema derive re-declares each struct in a private module to derive its schema,
// which the unreachable_pub lint flags; the types themselves are exported from `crd`.
#![allow(unreachable_pub)]
// Each `printcolumn(...)` repeats `type_ = ...`; clippy reads them as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use std::net::IpAddr;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Condition, FieldError};
use super::topic::ClusterRef;

/// Longest user name (the SCRAM user name, or the certificate's CN).
pub const MAX_USER_NAME: usize = 64;
/// Most ACL rules one user may list.
pub const MAX_ACL_RULES: usize = 256;
/// Longest ACL resource name.
pub const MAX_RESOURCE_NAME: usize = 255;
/// The operator's own principal name (`User:CN=samsa-operator` on the brokers' control-plane
/// listener): no KafkaUser may take it.
pub const OPERATOR_USER: &str = "samsa-operator";
/// The principal name of every unauthenticated client (`User:ANONYMOUS`): a user of that name
/// would hand its ACLs to all of them.
pub const ANONYMOUS_USER: &str = "ANONYMOUS";
/// The resource name of Kafka's one cluster resource.
pub const CLUSTER_RESOURCE_NAME: &str = "kafka-cluster";

/// Desired state of a Kafka user. The user name is `metadata.name`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "samsa.dev",
    version = "v1alpha1",
    kind = "KafkaUser",
    namespaced,
    shortname = "ku",
    status = "KafkaUserStatus",
    derive = "PartialEq",
    validation = Rule::new("self.metadata.name.matches('^[a-zA-Z0-9._-]{1,64}$')")
        .message("metadata.name is the user name: 1-64 characters of a-z, A-Z, 0-9, '.', '_' or '-'"),
    validation = Rule::new("!(self.metadata.name in ['samsa-operator', 'ANONYMOUS'])")
        .message("metadata.name: samsa-operator (the operator's own principal) and ANONYMOUS (every unauthenticated client) are reserved"),
    printcolumn(
        name = "Cluster",
        type_ = "string",
        json_path = ".spec.clusterRef.name"
    ),
    printcolumn(
        name = "Authentication",
        type_ = "string",
        json_path = ".spec.authentication.type"
    ),
    printcolumn(name = "Principal", type_ = "string", json_path = ".status.principal"),
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
#[serde(rename_all = "camelCase")]
pub struct KafkaUserSpec {
    /// The `KafkaCluster` (same namespace) the user belongs to. Immutable.
    pub cluster_ref: ClusterRef,

    /// How the user authenticates.
    pub authentication: UserAuthentication,

    /// What the user may do: its ACLs. None when unset (the cluster's default applies, which
    /// for an authorizing cluster is to deny).
    #[serde(default)]
    pub authorization: UserAuthorization,
}

/// How a user authenticates.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.type == oldSelf.type")
        .message("spec.authentication.type is immutable: delete the KafkaUser and create it again"),
    validation = Rule::new("self.type == 'scram-sha-512' || !has(self.password)")
        .message("spec.authentication.password is only for type scram-sha-512")
)]
pub struct UserAuthentication {
    /// `scram-sha-512` (a password; principal `User:<name>`) or `tls` (a client certificate
    /// with CN=<name>; principal `User:CN=<name>`). Immutable.
    #[serde(rename = "type")]
    pub type_: UserAuthenticationType,

    /// scram-sha-512 only: where the password is. When unset the operator generates a random
    /// 32-character password once and keeps it in the user's Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<PasswordSource>,
}

/// A user's authentication mechanism.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum UserAuthenticationType {
    /// SASL/SCRAM-SHA-512 with a password.
    #[serde(rename = "scram-sha-512")]
    ScramSha512,
    /// Mutual TLS with a client certificate issued from the cluster's clients CA.
    #[serde(rename = "tls")]
    Tls,
}

impl UserAuthenticationType {
    /// The name used in the spec.
    pub fn as_str(self) -> &'static str {
        match self {
            UserAuthenticationType::ScramSha512 => "scram-sha-512",
            UserAuthenticationType::Tls => "tls",
        }
    }
}

/// Where a password comes from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordSource {
    /// The password's source.
    pub value_from: PasswordValueFrom,
}

/// The source of a password.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordValueFrom {
    /// A key of a Secret in the KafkaUser's namespace. A change of the value changes the
    /// credential at the next reconcile (at most five minutes later).
    pub secret_key_ref: SecretKeyRef,
}

/// A key of a Secret in the same namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret. Not the KafkaUser's own name: that Secret is the operator's.
    #[x_kube(validation = Rule::new("size(self) > 0 && size(self) <= 253")
        .message("spec.authentication.password.valueFrom.secretKeyRef.name must be a Secret name"))]
    pub name: String,
    /// Key in the Secret.
    #[x_kube(validation = Rule::new("size(self) > 0 && size(self) <= 253")
        .message("spec.authentication.password.valueFrom.secretKeyRef.key must be a Secret key"))]
    pub key: String,
}

/// A user's ACLs.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct UserAuthorization {
    /// The ACL rules of the user's principal. The operator makes the principal's ACLs in the
    /// cluster exactly these: ACLs of the principal added by other means are removed.
    #[serde(default)]
    #[schemars(length(max = 256))]
    pub acls: Vec<AclRule>,
}

/// One ACL rule: `type` (allow or deny) the `operations` on `resource` from `host`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AclRule {
    /// The resource (or resources, with patternType prefixed).
    pub resource: AclResource,
    /// The operations the rule is about; `All` is every operation.
    #[schemars(length(min = 1, max = 11))]
    pub operations: Vec<AclOperation>,
    /// The client address the rule applies to: `*` (every host, the default) or an IP address.
    #[serde(default = "default_host")]
    #[x_kube(validation = Rule::new("size(self) > 0 && size(self) <= 45")
        .message("spec.authorization.acls[].host must be * or an IP address"))]
    pub host: String,
    /// `allow` (the default) or `deny`. A deny wins over every allow.
    #[serde(rename = "type", default)]
    pub type_: AclPermission,
}

/// The resource of an ACL rule.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.type == 'cluster' || has(self.name)")
        .message("spec.authorization.acls[].resource.name is required unless the type is cluster"),
    validation = Rule::new("self.type != 'cluster' || !has(self.name) || self.name == 'kafka-cluster'")
        .message("spec.authorization.acls[].resource.name of the cluster resource can only be kafka-cluster"),
    validation = Rule::new("self.type != 'cluster' || !has(self.patternType) || self.patternType == 'literal'")
        .message("spec.authorization.acls[].resource.patternType of the cluster resource must be literal")
)]
pub struct AclResource {
    /// `topic`, `group`, `cluster` or `transactionalId`.
    #[serde(rename = "type")]
    pub type_: AclResourceType,
    /// The resource name: with `literal`, the exact name or `*` for every resource of the
    /// type; with `prefixed`, the prefix. Not needed for `cluster`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("size(self) > 0 && size(self) <= 255")
        .message("spec.authorization.acls[].resource.name must be 1-255 characters"))]
    pub name: Option<String>,
    /// `literal` (the default) or `prefixed`.
    #[serde(default)]
    pub pattern_type: AclPatternType,
}

/// The resource types an ACL rule can name.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum AclResourceType {
    /// A topic.
    Topic,
    /// A consumer group.
    Group,
    /// The cluster (resource name `kafka-cluster`).
    Cluster,
    /// A transactional id.
    TransactionalId,
}

/// How an ACL rule's resource name matches.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum AclPatternType {
    /// The exact name (`*`: every name).
    #[default]
    Literal,
    /// Every name starting with the resource name.
    Prefixed,
}

/// The operations of an ACL rule.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
pub enum AclOperation {
    /// Consume, read offsets, join a group.
    Read,
    /// Produce.
    Write,
    /// Create topics.
    Create,
    /// Delete topics, records, groups.
    Delete,
    /// Alter (partitions, ACLs).
    Alter,
    /// Describe (metadata, offsets, groups).
    Describe,
    /// Inter-broker actions.
    ClusterAction,
    /// Read configs.
    DescribeConfigs,
    /// Change configs.
    AlterConfigs,
    /// Idempotent produce.
    IdempotentWrite,
    /// Every operation.
    All,
}

/// Allow or deny.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum AclPermission {
    /// Allow the operations.
    #[default]
    Allow,
    /// Deny the operations, whatever else allows them.
    Deny,
}

fn default_host() -> String {
    "*".to_string()
}

/// Observed state of a user.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaUserStatus {
    /// The `metadata.generation` the status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The user name as clients present it: the SCRAM user name, or `CN=<name>` for tls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The Kafka principal the ACLs name: `User:<name>` or `User:CN=<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// The Secret holding the user's credentials and client settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// True for a legal user name: 1-64 characters of a-z, A-Z, 0-9, '.', '_' or '-' (a SCRAM
/// user name needing no escaping, and a certificate CN needing none in a DN).
pub fn is_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_USER_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl KafkaUser {
    /// The user name: `metadata.name`.
    pub fn user_name(&self) -> String {
        self.metadata.name.clone().unwrap_or_default()
    }
}

impl KafkaUserSpec {
    /// The user name clients present: the SCRAM user name, or the certificate subject.
    pub fn username(&self, name: &str) -> String {
        match self.authentication.type_ {
            UserAuthenticationType::ScramSha512 => name.to_string(),
            UserAuthenticationType::Tls => format!("CN={name}"),
        }
    }

    /// The Kafka principal of the user `name`.
    pub fn principal(&self, name: &str) -> String {
        format!("User:{}", self.username(name))
    }

    /// The rules of the CRD's schema and CEL that one object allows, checked in Rust, plus
    /// those CEL cannot express (IP addresses). Empty when valid. `name` is `metadata.name`.
    pub fn validate(&self, name: &str) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if !is_user_name(name) {
            errs.push(FieldError::new(
                "metadata.name",
                format!(
                    "{name:?} is not a user name: 1-{MAX_USER_NAME} characters of a-z, A-Z, 0-9, '.', '_' or '-'"
                ),
            ));
        }
        if name == OPERATOR_USER {
            errs.push(FieldError::new(
                "metadata.name",
                format!("{OPERATOR_USER} is the operator's own principal"),
            ));
        }
        if name == ANONYMOUS_USER {
            errs.push(FieldError::new(
                "metadata.name",
                format!("{ANONYMOUS_USER} is the principal of every unauthenticated client"),
            ));
        }
        if self.cluster_ref.name.is_empty() {
            errs.push(FieldError::new(
                "spec.clusterRef.name",
                "must name a KafkaCluster",
            ));
        }
        if let Some(p) = &self.authentication.password {
            if self.authentication.type_ != UserAuthenticationType::ScramSha512 {
                errs.push(FieldError::new(
                    "spec.authentication.password",
                    "is only for type scram-sha-512",
                ));
            }
            let r = &p.value_from.secret_key_ref;
            if r.name.is_empty() || r.key.is_empty() {
                errs.push(FieldError::new(
                    "spec.authentication.password.valueFrom.secretKeyRef",
                    "must name a Secret and a key",
                ));
            }
            if r.name == name {
                errs.push(FieldError::new(
                    "spec.authentication.password.valueFrom.secretKeyRef.name",
                    format!(
                        "Secret {name} is the one the operator writes for this user; keep the password in another Secret"
                    ),
                ));
            }
        }
        let acls = &self.authorization.acls;
        if acls.len() > MAX_ACL_RULES {
            errs.push(FieldError::new(
                "spec.authorization.acls",
                format!("may list at most {MAX_ACL_RULES} rules"),
            ));
        }
        for (i, rule) in acls.iter().enumerate() {
            let field = format!("spec.authorization.acls[{i}]");
            if rule.operations.is_empty() {
                errs.push(FieldError::new(
                    &format!("{field}.operations"),
                    "must list at least one operation",
                ));
            }
            if rule.host != "*" && rule.host.parse::<IpAddr>().is_err() {
                errs.push(FieldError::new(
                    &format!("{field}.host"),
                    format!("{:?} is neither * nor an IP address", rule.host),
                ));
            }
            let res = &rule.resource;
            match (res.type_, res.name.as_deref()) {
                (AclResourceType::Cluster, Some(n)) if n != CLUSTER_RESOURCE_NAME => {
                    errs.push(FieldError::new(
                        &format!("{field}.resource.name"),
                        format!(
                            "the cluster resource can only be {CLUSTER_RESOURCE_NAME}, not {n:?}"
                        ),
                    ));
                }
                (AclResourceType::Cluster, _) => {}
                (_, None) => errs.push(FieldError::new(
                    &format!("{field}.resource.name"),
                    "is required unless the type is cluster",
                )),
                (_, Some(n)) if n.is_empty() || n.len() > MAX_RESOURCE_NAME => {
                    errs.push(FieldError::new(
                        &format!("{field}.resource.name"),
                        format!("must be 1-{MAX_RESOURCE_NAME} characters"),
                    ));
                }
                (_, Some(_)) => {}
            }
            if res.type_ == AclResourceType::Cluster && res.pattern_type != AclPatternType::Literal
            {
                errs.push(FieldError::new(
                    &format!("{field}.resource.patternType"),
                    "must be literal for the cluster resource",
                ));
            }
        }
        errs
    }

    /// The transition rules of the CRD (old → new), checked in Rust. Empty when allowed.
    pub fn validate_update(&self, old: &KafkaUserSpec) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if self.cluster_ref != old.cluster_ref {
            errs.push(FieldError::new("spec.clusterRef", "is immutable"));
        }
        if self.authentication.type_ != old.authentication.type_ {
            errs.push(FieldError::new(
                "spec.authentication.type",
                "is immutable: delete the KafkaUser and create it again",
            ));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: serde_json::Value) -> KafkaUserSpec {
        serde_json::from_value(v).unwrap()
    }

    fn fields(errs: &[FieldError]) -> Vec<&str> {
        errs.iter().map(|e| e.field.as_str()).collect()
    }

    fn scram() -> KafkaUserSpec {
        spec(serde_json::json!({
            "clusterRef": {"name": "kc"},
            "authentication": {"type": "scram-sha-512"}
        }))
    }

    #[test]
    fn defaults_and_principals() {
        let s = spec(serde_json::json!({
            "clusterRef": {"name": "kc"},
            "authentication": {"type": "tls"},
            "authorization": {"acls": [{"resource": {"type": "topic", "name": "orders"},
                                        "operations": ["Read"]}]}
        }));
        let rule = &s.authorization.acls[0];
        assert_eq!(rule.host, "*");
        assert_eq!(rule.type_, AclPermission::Allow);
        assert_eq!(rule.resource.pattern_type, AclPatternType::Literal);
        assert_eq!(s.principal("alice"), "User:CN=alice");
        assert_eq!(s.username("alice"), "CN=alice");
        assert_eq!(scram().principal("alice"), "User:alice");
        assert_eq!(scram().authorization.acls, vec![]);
        assert_eq!(s.validate("alice"), vec![]);
    }

    #[test]
    fn names() {
        assert!(is_user_name("a.b_c-D9"));
        assert!(!is_user_name(""));
        assert!(!is_user_name("a b"));
        assert!(!is_user_name("CN=x"));
        assert!(is_user_name(&"x".repeat(64)));
        assert!(!is_user_name(&"x".repeat(65)));
        let errs = scram().validate("samsa-operator");
        assert_eq!(fields(&errs), vec!["metadata.name"]);
        assert!(errs[0].message.contains("operator's own principal"));
        assert_eq!(
            fields(&scram().validate(&"x".repeat(65))),
            vec!["metadata.name"]
        );
    }

    #[test]
    fn acl_rules_name_their_fields() {
        let s = spec(serde_json::json!({
            "clusterRef": {"name": "kc"},
            "authentication": {"type": "scram-sha-512"},
            "authorization": {"acls": [
                {"resource": {"type": "topic"}, "operations": ["Read"]},
                {"resource": {"type": "cluster", "name": "other"}, "operations": ["Alter"]},
                {"resource": {"type": "cluster", "patternType": "prefixed"}, "operations": []},
                {"resource": {"type": "group", "name": "g"}, "operations": ["Read"], "host": "nowhere"},
                {"resource": {"type": "cluster"}, "operations": ["IdempotentWrite"], "host": "10.0.0.1"},
                {"resource": {"type": "transactionalId", "name": "tx-", "patternType": "prefixed"},
                 "operations": ["Write", "Describe"], "host": "::1", "type": "deny"}
            ]}
        }));
        assert_eq!(
            fields(&s.validate("alice")),
            vec![
                "spec.authorization.acls[0].resource.name",
                "spec.authorization.acls[1].resource.name",
                "spec.authorization.acls[2].operations",
                "spec.authorization.acls[2].resource.patternType",
                "spec.authorization.acls[3].host",
            ]
        );
    }

    #[test]
    fn password_rules() {
        let mut s = spec(serde_json::json!({
            "clusterRef": {"name": "kc"},
            "authentication": {"type": "tls", "password": {"valueFrom": {"secretKeyRef":
                {"name": "alice", "key": "pw"}}}}
        }));
        assert_eq!(
            fields(&s.validate("alice")),
            vec![
                "spec.authentication.password",
                "spec.authentication.password.valueFrom.secretKeyRef.name"
            ]
        );
        s.authentication.type_ = UserAuthenticationType::ScramSha512;
        if let Some(p) = s.authentication.password.as_mut() {
            p.value_from.secret_key_ref.name = "alice-password".into();
        }
        assert_eq!(s.validate("alice"), vec![]);
    }

    #[test]
    fn transitions() {
        let old = scram();
        let mut new = old.clone();
        assert_eq!(new.validate_update(&old), vec![]);
        new.authentication.type_ = UserAuthenticationType::Tls;
        new.cluster_ref.name = "other".into();
        assert_eq!(
            fields(&new.validate_update(&old)),
            vec!["spec.clusterRef", "spec.authentication.type"]
        );
    }
}
