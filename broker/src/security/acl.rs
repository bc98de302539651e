//! Kafka's ACL model and the authorizer's decision (Kafka's StandardAuthorizer semantics).
//!
//! An ACL binding says: `principal` from `host` is `permission` (ALLOW/DENY) to do `operation`
//! on resources of `resource_type` whose name matches `resource_name` under `pattern_type`
//! (LITERAL, `*` being every name, or PREFIXED). The codes are Kafka's wire codes.
//!
//! Pure logic: [`authorize`] decides from the ACLs, the authorizer settings, the principal and the
//! client address; storage and the requests that change ACLs live elsewhere. Rules, from Kafka's
//! StandardAuthorizer: super users may do everything; a matching DENY beats any ALLOW; an ALLOW of
//! READ, WRITE, DELETE or ALTER implies DESCRIBE, and ALTER_CONFIGS implies DESCRIBE_CONFIGS;
//! when no ACL at all names the resource, `allow_everyone_if_no_acl_found` decides.

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::Principal;

/// Wire codes and Kafka's upper-case names for a fieldless enum.
macro_rules! kafka_codes {
    ($ty:ident { $($variant:ident = $code:literal $name:literal,)+ }) => {
        impl $ty {
            /// Every value, in wire-code order.
            pub const VALUES: &'static [$ty] = &[$($ty::$variant),+];

            /// Kafka's wire code (0 is UNKNOWN, which no value has).
            pub fn code(self) -> i8 {
                match self {
                    $($ty::$variant => $code,)+
                }
            }

            /// The value with this wire code; `None` for 0 (UNKNOWN) and unassigned codes.
            pub fn from_code(code: i8) -> Option<$ty> {
                match code {
                    $($code => Some($ty::$variant),)+
                    _ => None,
                }
            }

            /// Kafka's name (as in `kafka-acls.sh` output and Kafka's logs).
            pub fn name(self) -> &'static str {
                match self {
                    $($ty::$variant => $name,)+
                }
            }

            /// The value with this name, case-insensitively (as Kafka's `fromString`).
            pub fn from_name(name: &str) -> Option<$ty> {
                Self::VALUES.iter().copied().find(|v| v.name().eq_ignore_ascii_case(name))
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

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

kafka_codes!(ResourceType {
    Any = 1 "ANY",
    Topic = 2 "TOPIC",
    Group = 3 "GROUP",
    Cluster = 4 "CLUSTER",
    TransactionalId = 5 "TRANSACTIONAL_ID",
    DelegationToken = 6 "DELEGATION_TOKEN",
    User = 7 "USER",
});

kafka_codes!(PatternType {
    Any = 1 "ANY",
    Match = 2 "MATCH",
    Literal = 3 "LITERAL",
    Prefixed = 4 "PREFIXED",
});

kafka_codes!(AclOperation {
    Any = 1 "ANY",
    All = 2 "ALL",
    Read = 3 "READ",
    Write = 4 "WRITE",
    Create = 5 "CREATE",
    Delete = 6 "DELETE",
    Alter = 7 "ALTER",
    Describe = 8 "DESCRIBE",
    ClusterAction = 9 "CLUSTER_ACTION",
    DescribeConfigs = 10 "DESCRIBE_CONFIGS",
    AlterConfigs = 11 "ALTER_CONFIGS",
    IdempotentWrite = 12 "IDEMPOTENT_WRITE",
    CreateTokens = 13 "CREATE_TOKENS",
    DescribeTokens = 14 "DESCRIBE_TOKENS",
});

kafka_codes!(AclPermission {
    Any = 1 "ANY",
    Deny = 2 "DENY",
    Allow = 3 "ALLOW",
});

/// The name of the one CLUSTER resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// The resource name (with LITERAL) and host that stand for every name and every host.
pub const WILDCARD: &str = "*";

/// The principal that stands for every principal.
pub const WILDCARD_PRINCIPAL: &str = "User:*";

impl AclBinding {
    /// Checks a binding from CreateAcls as Kafka does (AclApis and AclControlManager), plus
    /// the host: `*` or an IP address (Kafka stores any string, but a host that is not an
    /// address never matches a client). The message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.resource_type == ResourceType::Any {
            return Err("Invalid resourceType ANY: an ACL names one resource type".to_string());
        }
        if !matches!(
            self.pattern_type,
            PatternType::Literal | PatternType::Prefixed
        ) {
            return Err(format!(
                "Invalid patternType {}: an ACL is LITERAL or PREFIXED",
                self.pattern_type
            ));
        }
        if self.operation == AclOperation::Any {
            return Err("Invalid operation ANY: an ACL names one operation, or ALL".to_string());
        }
        if self.permission == AclPermission::Any {
            return Err("Invalid permissionType ANY: an ACL is ALLOW or DENY".to_string());
        }
        if self.resource_name.is_empty() {
            return Err("Invalid empty resource name".to_string());
        }
        if self.resource_type == ResourceType::Cluster && self.resource_name != CLUSTER_NAME {
            return Err(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
            ));
        }
        if !self.principal.contains(':') {
            return Err(format!(
                "Could not parse principal from `{}` (no colon is present separating the \
                 principal type from the principal name)",
                self.principal
            ));
        }
        if self.host != WILDCARD && self.host.parse::<IpAddr>().is_err() {
            return Err(format!(
                "Invalid host `{}`: expected * or an IP address",
                self.host
            ));
        }
        Ok(())
    }

    /// Whether this binding's resource pattern covers the resource `name` of its type:
    /// LITERAL the same name or `*`, PREFIXED a name starting with the pattern.
    fn covers(&self, name: &str) -> bool {
        match self.pattern_type {
            PatternType::Literal => self.resource_name == name || self.resource_name == WILDCARD,
            PatternType::Prefixed => name.starts_with(self.resource_name.as_str()),
            PatternType::Any | PatternType::Match => false,
        }
    }
}

impl AclFilter {
    /// The filter that matches every binding.
    pub fn any() -> AclFilter {
        AclFilter {
            resource_type: ResourceType::Any,
            resource_name: None,
            pattern_type: PatternType::Any,
            principal: None,
            host: None,
            operation: AclOperation::Any,
            permission: AclPermission::Any,
        }
    }

    /// Checks a DescribeAcls or DeleteAcls filter. Kafka refuses only UNKNOWN (code 0 or an
    /// unassigned code) in any field; those never decode ([`ResourceType::from_code`] and
    /// friends return `None`, which the decoder reports with the field's name), so every
    /// decoded filter is valid. Kept so handlers validate in one place should rules be added.
    pub fn validate(&self) -> Result<(), String> {
        Ok(())
    }

    /// Whether `binding` matches, with Kafka's filter semantics: `Any` and `None` match
    /// everything; a name with pattern `Any` or the binding's own pattern type matches that
    /// exact name; `Match` matches every binding that applies to the name (LITERAL the name,
    /// LITERAL `*`, PREFIXED a prefix of the name). Principal and host compare as strings.
    pub fn matches(&self, binding: &AclBinding) -> bool {
        self.matches_pattern(binding)
            && self
                .principal
                .as_ref()
                .is_none_or(|p| *p == binding.principal)
            && self.host.as_ref().is_none_or(|h| *h == binding.host)
            && (self.operation == AclOperation::Any || self.operation == binding.operation)
            && (self.permission == AclPermission::Any || self.permission == binding.permission)
    }

    fn matches_pattern(&self, binding: &AclBinding) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != binding.resource_type {
            return false;
        }
        if !matches!(self.pattern_type, PatternType::Any | PatternType::Match)
            && self.pattern_type != binding.pattern_type
        {
            return false;
        }
        let Some(name) = &self.resource_name else {
            return true;
        };
        if self.pattern_type != PatternType::Match {
            return *name == binding.resource_name;
        }
        binding.covers(name)
    }
}

/// What a request wants to do: `operation` on the resource `resource_name` of `resource_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// The operation (never `Any`).
    pub operation: AclOperation,
    /// The resource type (never `Any`).
    pub resource_type: ResourceType,
    /// The resource's name (`kafka-cluster` for the cluster).
    pub resource_name: String,
}

impl Action {
    /// `operation` on `resource_type` named `resource_name`.
    pub fn new(
        operation: AclOperation,
        resource_type: ResourceType,
        resource_name: impl Into<String>,
    ) -> Action {
        Action {
            operation,
            resource_type,
            resource_name: resource_name.into(),
        }
    }

    /// `operation` on the cluster.
    pub fn cluster(operation: AclOperation) -> Action {
        Action::new(operation, ResourceType::Cluster, CLUSTER_NAME)
    }
}

impl AuthorizerConfig {
    /// Whether `principal` is a super user.
    pub fn is_super_user(&self, principal: &Principal) -> bool {
        self.super_users.contains(principal)
    }
}

/// Whether `principal`, connecting from `host`, may do `action` (Kafka's StandardAuthorizer):
/// super users may do everything; else a matching DENY refuses, else a matching ALLOW allows
/// (ALLOW READ, WRITE, DELETE or ALTER implies DESCRIBE; ALLOW ALTER_CONFIGS implies
/// DESCRIBE_CONFIGS; ALL is every operation), else, when no ACL of any principal, host or
/// operation covers the resource, `allow_everyone_if_no_acl_found`, else no. An action with
/// operation or resource type `Any` is refused. IDEMPOTENT_WRITE's implication by a WRITE on
/// some topic is the caller's rule, with [`authorize_any`].
///
/// One pass over the ACLs of the action's resource type.
pub fn authorize(
    acls: &AclSet,
    config: &AuthorizerConfig,
    principal: &Principal,
    host: IpAddr,
    action: &Action,
) -> bool {
    if action.operation == AclOperation::Any || action.resource_type == ResourceType::Any {
        return false;
    }
    if config.is_super_user(principal) {
        return true;
    }
    let host = canonical(host);
    let mut resource_has_acls = false;
    let mut allowed = false;
    for acl in acls_of_type(acls, action.resource_type) {
        if !acl.covers(&action.resource_name) {
            continue;
        }
        resource_has_acls = true;
        if !principal_applies(&acl.principal, principal) || !host_applies(&acl.host, host) {
            continue;
        }
        match acl.permission {
            AclPermission::Deny
                if acl.operation == AclOperation::All || acl.operation == action.operation =>
            {
                return false;
            }
            AclPermission::Allow if allow_covers(acl.operation, action.operation) => {
                allowed = true;
            }
            _ => {}
        }
    }
    allowed || (!resource_has_acls && config.allow_everyone_if_no_acl_found)
}

/// Whether `principal` from `host` may do `operation` on at least one resource of
/// `resource_type` (Kafka's `Authorizer.authorizeByResourceType`, whose default StandardAuthorizer
/// uses): allowed when [`authorize`] allows the resource named `hardcode` (Kafka's probe: super
/// users, and `allow_everyone_if_no_acl_found` when no ACL covers that name), or some ALLOW
/// (operation or ALL; no implied operations) is LITERAL `*`, or a LITERAL name not denied by a
/// LITERAL DENY of the same name nor by a PREFIXED DENY of a prefix of it, or a PREFIXED name not
/// denied by a PREFIXED DENY of a prefix of it. A LITERAL `*` DENY refuses. `Any` arguments are
/// refused.
pub fn authorize_any(
    acls: &AclSet,
    config: &AuthorizerConfig,
    principal: &Principal,
    host: IpAddr,
    operation: AclOperation,
    resource_type: ResourceType,
) -> bool {
    if operation == AclOperation::Any || resource_type == ResourceType::Any {
        return false;
    }
    let probe = Action::new(operation, resource_type, "hardcode");
    if authorize(acls, config, principal, host, &probe) {
        return true;
    }
    let host = canonical(host);
    let mut deny_literal = HashSet::new();
    let mut deny_prefixed = HashSet::new();
    let mut allow_literal = Vec::new();
    let mut allow_prefixed = Vec::new();
    for acl in acls_of_type(acls, resource_type) {
        if !principal_applies(&acl.principal, principal)
            || !host_applies(&acl.host, host)
            || (acl.operation != operation && acl.operation != AclOperation::All)
        {
            continue;
        }
        let name = acl.resource_name.as_str();
        match (acl.permission, acl.pattern_type) {
            (AclPermission::Deny, PatternType::Literal) if name == WILDCARD => return false,
            (AclPermission::Deny, PatternType::Literal) => {
                deny_literal.insert(name);
            }
            (AclPermission::Deny, PatternType::Prefixed) => {
                deny_prefixed.insert(name);
            }
            (AclPermission::Allow, PatternType::Literal) => allow_literal.push(name),
            (AclPermission::Allow, PatternType::Prefixed) => allow_prefixed.push(name),
            _ => {}
        }
    }
    if allow_literal.contains(&WILDCARD) {
        return true;
    }
    let denied_by_prefix = |name: &str| {
        name.char_indices()
            .any(|(i, c)| deny_prefixed.contains(&name[..i + c.len_utf8()]))
    };
    allow_literal
        .iter()
        .any(|name| !deny_literal.contains(name) && !denied_by_prefix(name))
        || allow_prefixed.iter().any(|name| !denied_by_prefix(name))
}

/// The ACLs of one resource type: a range of the ordered set (bindings sort by type first, and
/// the empty name and the `Any` variants sort first).
fn acls_of_type(acls: &AclSet, resource_type: ResourceType) -> impl Iterator<Item = &AclBinding> {
    let first = AclBinding {
        resource_type,
        resource_name: String::new(),
        pattern_type: PatternType::Any,
        principal: String::new(),
        host: String::new(),
        operation: AclOperation::Any,
        permission: AclPermission::Any,
    };
    acls.range(first..)
        .take_while(move |acl| acl.resource_type == resource_type)
}

/// An ALLOW of `granted` allows `wanted`.
fn allow_covers(granted: AclOperation, wanted: AclOperation) -> bool {
    granted == AclOperation::All
        || granted == wanted
        || match wanted {
            AclOperation::Describe => matches!(
                granted,
                AclOperation::Read
                    | AclOperation::Write
                    | AclOperation::Delete
                    | AclOperation::Alter
            ),
            AclOperation::DescribeConfigs => granted == AclOperation::AlterConfigs,
            _ => false,
        }
}

/// The ACL's principal (`TYPE:NAME`) is `principal`, or `User:*`.
fn principal_applies(acl_principal: &str, principal: &Principal) -> bool {
    acl_principal == WILDCARD_PRINCIPAL
        || acl_principal
            .split_once(':')
            .is_some_and(|(kind, name)| kind == principal.principal_type && name == principal.name)
}

/// The ACL's host is `*` or the client's address (compared as addresses, so `::1` and
/// `0:0:0:0:0:0:0:1` are the same host).
fn host_applies(acl_host: &str, host: IpAddr) -> bool {
    acl_host == WILDCARD
        || acl_host
            .parse::<IpAddr>()
            .is_ok_and(|h| canonical(h) == host)
}

/// An IPv4-mapped IPv6 address as its IPv4 address (a dual-stack listener sees IPv4 clients so).
fn canonical(host: IpAddr) -> IpAddr {
    match host {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(host, IpAddr::V4),
        IpAddr::V4(_) => host,
    }
}

#[cfg(test)]
mod tests;
