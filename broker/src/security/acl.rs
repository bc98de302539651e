//! Kafka's ACL model and the authorizer's decision (Kafka's StandardAuthorizer semantics).
//!
//! An ACL binding says: `principal` from `host` is `permission` (ALLOW/DENY) to do `operation`
//! on resources of `resource_type` whose name matches `resource_name` under `pattern_type`
//! (LITERAL, `*` being every name, or PREFIXED). The codes are Kafka's wire codes.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::Principal;

/// Kafka's resource types (wire codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ResourceType {
    /// 1: in filters only.
    Any,
    /// 2.
    Topic,
    /// 3: consumer groups.
    Group,
    /// 4: the cluster (resource name `kafka-cluster`).
    Cluster,
    /// 5.
    TransactionalId,
    /// 6.
    DelegationToken,
    /// 7.
    User,
}

/// Kafka's pattern types (wire codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PatternType {
    /// 1: filters only: any pattern type.
    Any,
    /// 2: filters only: every binding that would apply to the filter's resource name.
    Match,
    /// 3: the exact name, or `*` for every name.
    Literal,
    /// 4: every name starting with the resource name.
    Prefixed,
}

/// Kafka's ACL operations (wire codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AclOperation {
    /// 1: filters only.
    Any,
    /// 2: every operation.
    All,
    /// 3.
    Read,
    /// 4.
    Write,
    /// 5.
    Create,
    /// 6.
    Delete,
    /// 7.
    Alter,
    /// 8.
    Describe,
    /// 9.
    ClusterAction,
    /// 10.
    DescribeConfigs,
    /// 11.
    AlterConfigs,
    /// 12.
    IdempotentWrite,
    /// 13.
    CreateTokens,
    /// 14.
    DescribeTokens,
}

/// Kafka's permission types (wire codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AclPermission {
    /// 1: filters only.
    Any,
    /// 2.
    Deny,
    /// 3.
    Allow,
}

/// One stored ACL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    /// Not `Any`.
    pub resource_type: ResourceType,
    /// Resource name; `*` with `Literal` is every resource of the type.
    pub resource_name: String,
    /// `Literal` or `Prefixed`.
    pub pattern_type: PatternType,
    /// `User:alice`, or `User:*` for every user.
    pub principal: String,
    /// A client IP address, or `*` for every host.
    pub host: String,
    /// Not `Any`.
    pub operation: AclOperation,
    /// `Allow` or `Deny`.
    pub permission: AclPermission,
}

/// A DescribeAcls or DeleteAcls filter; `None` fields match everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    /// `Any` matches every type.
    pub resource_type: ResourceType,
    /// `None`: every name.
    pub resource_name: Option<String>,
    /// `Any`, `Match`, `Literal` or `Prefixed`.
    pub pattern_type: PatternType,
    /// `None`: every principal.
    pub principal: Option<String>,
    /// `None`: every host.
    pub host: Option<String>,
    /// `Any` matches every operation.
    pub operation: AclOperation,
    /// `Any` matches both.
    pub permission: AclPermission,
}

/// Every stored ACL, ordered.
pub type AclSet = BTreeSet<AclBinding>;

/// The authorizer's settings (Kafka's `super.users` and `allow.everyone.if.no.acl.found`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizerConfig {
    /// Principals allowed everything.
    pub super_users: Vec<Principal>,
    /// Allow an operation on a resource that no ACL names (Kafka's default: false).
    pub allow_everyone_if_no_acl_found: bool,
}
