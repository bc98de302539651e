//! The security part of a `KafkaCluster` spec: typed Kafka listeners (`spec.listeners.kafka`),
//! authorization (`spec.authorization`), certificates (`spec.tls`) and the cluster's
//! NetworkPolicy (`spec.networkPolicy`), with their CEL rules and the same rules in Rust.
// See cluster.rs: KubeSchema re-declares each struct in a private module.
#![allow(unreachable_pub)]

use std::collections::BTreeSet;

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::FieldError;
use super::KafkaClusterSpec;

/// Port of the operator-only `CONTROLPLANE` listener every secured cluster gets: TLS with a
/// client certificate from the cluster CA required. No other port of the cluster may use it.
pub const CONTROLPLANE_PORT: i32 = 9091;
/// Name of that listener (as the broker spells it).
pub const CONTROLPLANE_LISTENER: &str = "CONTROLPLANE";
/// Listener names that would clash with the pods' other named ports.
pub const RESERVED_LISTENER_NAMES: &[&str] =
    &["controller", "replication", "metrics", "controlplane"];
/// Most typed listeners a cluster may have.
pub const MAX_LISTENERS: usize = 16;
/// Longest listener name (it also names a container port: at most 15 characters).
pub const MAX_LISTENER_NAME: usize = 15;

/// One Kafka listener of `spec.listeners.kafka`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.authentication) || self.authentication.type != 'tls' || self.tls")
    .message("spec.listeners.kafka[].authentication.type tls needs tls: true (client certificates are a TLS feature)"))]
pub struct KafkaListener {
    /// Name: lower-case letters, digits and single dashes, starting with a letter, at most 15
    /// characters (it also names the pods' and Services' port). The broker knows it upper-case.
    #[schemars(length(max = 15))]
    #[x_kube(validation = Rule::new("self.matches('^[a-z]([-]?[a-z0-9])*$')")
        .message("spec.listeners.kafka[].name must be lower-case letters, digits and single dashes, starting with a letter (at most 15 characters)"),
        validation = Rule::new("!(self in ['controller', 'replication', 'metrics', 'controlplane'])")
        .message("spec.listeners.kafka[].name must not be controller, replication, metrics or controlplane"))]
    pub name: String,
    /// Port.
    #[x_kube(validation = Rule::new("self >= 1 && self <= 65535").message("spec.listeners.kafka[].port must be a port (1-65535)"))]
    pub port: i32,
    /// Serve TLS, with a broker certificate from the cluster CA (or `spec.tls.issuer`).
    #[serde(default)]
    pub tls: bool,
    /// How clients authenticate (absent: they do not; their principal is `User:ANONYMOUS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<ListenerAuthentication>,
}

/// Client authentication of a listener.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct ListenerAuthentication {
    /// `scram-sha-512` (SASL SCRAM; with `tls: true` the listener is SASL_SSL) or `tls`
    /// (client certificates from the cluster's clients CA, principal `User:CN=<name>`).
    #[serde(rename = "type")]
    pub type_: AuthenticationType,
}

/// A listener's authentication type.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum AuthenticationType {
    /// SASL SCRAM-SHA-512.
    #[serde(rename = "scram-sha-512")]
    ScramSha512,
    /// TLS client certificates.
    #[serde(rename = "tls")]
    Tls,
}

/// `spec.authorization`: Kafka ACLs.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationSpec {
    /// `simple`: ACLs as Kafka's StandardAuthorizer keeps them.
    #[serde(rename = "type")]
    pub type_: AuthorizationType,
    /// Principals allowed everything (`User:alice`, `User:CN=admin`), besides the operator's own
    /// `User:CN=samsa-operator`, which always is.
    #[serde(default)]
    #[schemars(schema_with = "super_users_schema")]
    #[x_kube(validation = Rule::new("self.all(u, u.matches('^User:[^;]+$'))")
        .message("spec.authorization.superUsers must be principals such as User:alice (no ';')"))]
    pub super_users: Vec<String>,
    /// Allow a resource no ACL names to everyone (Kafka's `allow.everyone.if.no.acl.found`;
    /// default false: only super users).
    #[serde(default)]
    pub allow_everyone_if_no_acl_found: bool,
}

/// Authorizer type.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum AuthorizationType {
    /// ACLs.
    #[default]
    #[serde(rename = "simple")]
    Simple,
}

/// `spec.tls`: where the certificates come from and how long they live.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.renewBeforeDays) ? self.renewBeforeDays : 30) < (has(self.validityDays) ? self.validityDays : 365)")
    .message("spec.tls.renewBeforeDays must be less than spec.tls.validityDays"))]
pub struct TlsSpec {
    /// A cert-manager issuer for the broker and operator certificates; absent: the operator's
    /// own cluster CA (Secret `<cluster>-cluster-ca`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<IssuerRef>,
    /// Days a certificate the operator issues is valid (default 365); its CAs get five times
    /// as long.
    #[serde(default = "default_validity_days")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 3650").message("spec.tls.validityDays must be between 1 and 3650"))]
    pub validity_days: i32,
    /// Days before expiry a certificate is renewed (default 30); a renewed broker certificate
    /// rolls the brokers.
    #[serde(default = "default_renew_before_days")]
    #[x_kube(validation = Rule::new("self >= 1").message("spec.tls.renewBeforeDays must be at least 1"))]
    pub renew_before_days: i32,
}

impl Default for TlsSpec {
    fn default() -> Self {
        TlsSpec {
            issuer: None,
            validity_days: default_validity_days(),
            renew_before_days: default_renew_before_days(),
        }
    }
}

/// A cert-manager issuer.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IssuerRef {
    /// Issuer name.
    #[x_kube(validation = Rule::new("size(self) > 0 && size(self) <= 253").message("spec.tls.issuer.name must be an issuer name"))]
    pub name: String,
    /// `Issuer` (default, in the cluster's namespace) or `ClusterIssuer`.
    #[serde(default)]
    pub kind: IssuerKind,
    /// API group of the issuer (default `cert-manager.io`).
    #[serde(default = "default_issuer_group")]
    pub group: String,
}

/// Kind of a cert-manager issuer.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum IssuerKind {
    /// Namespaced.
    #[default]
    Issuer,
    /// Cluster-wide.
    ClusterIssuer,
}

impl IssuerKind {
    /// cert-manager's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            IssuerKind::Issuer => "Issuer",
            IssuerKind::ClusterIssuer => "ClusterIssuer",
        }
    }
}

/// `spec.networkPolicy`: the cluster's NetworkPolicy.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicyOptions {
    /// Create a NetworkPolicy that opens the controller and replication ports to the cluster's
    /// brokers only and the CONTROLPLANE port to the operator only (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
}

impl Default for NetworkPolicyOptions {
    fn default() -> Self {
        NetworkPolicyOptions { enabled: true }
    }
}

fn default_true() -> bool {
    true
}
fn default_validity_days() -> i32 {
    365
}
fn default_renew_before_days() -> i32 {
    30
}
fn default_issuer_group() -> String {
    "cert-manager.io".to_string()
}

/// At most 100 principals of at most 256 characters (bounds the cost of the CEL rule).
fn super_users_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "maxItems": 100,
        "items": { "type": "string", "maxLength": 256 }
    })
}

/// The CEL rule of `spec.listeners.kafka` as a list: unique names and ports.
pub(super) fn unique_listeners_rule() -> kube::core::Rule {
    kube::core::Rule::new(
        "self.all(l, self.exists_one(m, m.name == l.name)) && self.all(l, self.exists_one(m, m.port == l.port))",
    )
    .message("spec.listeners.kafka names and ports must be unique")
}

/// The CEL rule of the spec: no Kafka listener on the metrics port, nor on the CONTROLPLANE
/// port of a secured cluster.
pub(super) fn listener_ports_rule() -> kube::core::Rule {
    kube::core::Rule::new(format!(
        "!has(self.listeners) || !has(self.listeners.kafka) || self.listeners.kafka.all(l, (!has(self.metrics) || !has(self.metrics.port) || l.port != self.metrics.port) && (l.port != {CONTROLPLANE_PORT} || !(has(self.authorization) || self.listeners.kafka.exists(k, k.tls || has(k.authentication)))))"
    ))
    .message(
        "spec.listeners.kafka ports must differ from spec.metrics.port and, when the cluster is secured, from 9091 (the operator's CONTROLPLANE listener)",
    )
}

/// A listener's security protocol, as the broker names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityProtocol {
    /// Plain TCP.
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL over plain TCP.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Kafka's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }
}

impl KafkaListener {
    /// Its security protocol.
    pub fn protocol(&self) -> SecurityProtocol {
        let sasl = matches!(
            self.authentication.as_ref().map(|a| a.type_),
            Some(AuthenticationType::ScramSha512)
        );
        match (self.tls, sasl) {
            (false, false) => SecurityProtocol::Plaintext,
            (true, false) => SecurityProtocol::Ssl,
            (false, true) => SecurityProtocol::SaslPlaintext,
            (true, true) => SecurityProtocol::SaslSsl,
        }
    }

    /// Whether clients present certificates from the clients CA.
    pub fn mtls(&self) -> bool {
        matches!(
            self.authentication.as_ref().map(|a| a.type_),
            Some(AuthenticationType::Tls)
        )
    }
}

impl KafkaClusterSpec {
    /// A cluster with a TLS listener, an authenticated listener or authorization: it gets
    /// certificates, the CONTROLPLANE listener and internal mutual TLS.
    pub fn secured(&self) -> bool {
        self.authorization.is_some()
            || self
                .listeners
                .kafka
                .iter()
                .flatten()
                .any(|l| l.tls || l.authentication.is_some())
    }

    /// The port the operator's Kafka connections use: CONTROLPLANE on a secured cluster, else
    /// the first Kafka listener (`spec.listeners.client` without typed listeners).
    pub fn operator_port(&self) -> i32 {
        if self.secured() {
            return CONTROLPLANE_PORT;
        }
        self.listeners
            .kafka
            .as_ref()
            .and_then(|l| l.first())
            .map_or(self.listeners.client, |l| l.port)
    }

    /// The rules of `spec.listeners.kafka`, `spec.authorization` and `spec.tls`, in Rust.
    pub(super) fn validate_security(&self, errs: &mut Vec<FieldError>) {
        let l = &self.listeners;
        let secured = self.secured();
        if let Some(list) = &l.kafka {
            if list.is_empty() || list.len() > MAX_LISTENERS {
                errs.push(FieldError::new(
                    "spec.listeners.kafka",
                    format!(
                        "must hold 1 to {MAX_LISTENERS} listeners (holds {})",
                        list.len()
                    ),
                ));
            }
            let mut names = BTreeSet::new();
            let mut ports = BTreeSet::new();
            for (i, k) in list.iter().enumerate() {
                let field = format!("spec.listeners.kafka[{i}]");
                if !listener_name_ok(&k.name) {
                    errs.push(FieldError::new(
                        &format!("{field}.name"),
                        format!(
                            "must be lower-case letters, digits and single dashes, starting with a letter, at most {MAX_LISTENER_NAME} characters (is {:?})",
                            k.name
                        ),
                    ));
                }
                if RESERVED_LISTENER_NAMES.contains(&k.name.as_str()) {
                    errs.push(FieldError::new(
                        &format!("{field}.name"),
                        format!(
                            "{:?} is reserved (controller, replication, metrics, controlplane)",
                            k.name
                        ),
                    ));
                }
                if !names.insert(k.name.as_str()) {
                    errs.push(FieldError::new(
                        &format!("{field}.name"),
                        format!("{:?} names two listeners", k.name),
                    ));
                }
                if !(1..=65535).contains(&k.port) {
                    errs.push(FieldError::new(
                        &format!("{field}.port"),
                        format!("must be a port (1-65535) (is {})", k.port),
                    ));
                }
                if !ports.insert(k.port) {
                    errs.push(FieldError::new(
                        &format!("{field}.port"),
                        format!("{} is the port of two listeners", k.port),
                    ));
                }
                let taken = [
                    (l.controller, "spec.listeners.controller"),
                    (l.replication, "spec.listeners.replication"),
                    (self.metrics.port, "spec.metrics.port"),
                ];
                for (port, owner) in taken {
                    if k.port == port {
                        errs.push(FieldError::new(
                            &format!("{field}.port"),
                            format!("{port} is already {owner}"),
                        ));
                    }
                }
                if secured && k.port == CONTROLPLANE_PORT {
                    errs.push(FieldError::new(
                        &format!("{field}.port"),
                        format!("{CONTROLPLANE_PORT} is the operator's CONTROLPLANE listener of a secured cluster"),
                    ));
                }
                if k.mtls() && !k.tls {
                    errs.push(FieldError::new(
                        &format!("{field}.authentication.type"),
                        "tls needs tls: true (client certificates are a TLS feature)",
                    ));
                }
            }
        } else if secured && l.client == CONTROLPLANE_PORT {
            errs.push(FieldError::new(
                "spec.listeners.client",
                format!("{CONTROLPLANE_PORT} is the operator's CONTROLPLANE listener of a secured cluster"),
            ));
        }
        if secured
            && (l.controller == CONTROLPLANE_PORT
                || l.replication == CONTROLPLANE_PORT
                || self.metrics.port == CONTROLPLANE_PORT)
        {
            errs.push(FieldError::new(
                "spec.listeners",
                format!("controller, replication and metrics ports must not be {CONTROLPLANE_PORT}, the operator's CONTROLPLANE listener of a secured cluster"),
            ));
        }
        if let Some(a) = &self.authorization {
            if a.super_users.len() > 100 {
                errs.push(FieldError::new(
                    "spec.authorization.superUsers",
                    format!(
                        "may hold at most 100 principals (holds {})",
                        a.super_users.len()
                    ),
                ));
            }
            for (i, u) in a.super_users.iter().enumerate() {
                let ok = u.len() <= 256
                    && u.strip_prefix("User:").is_some_and(|rest| !rest.is_empty())
                    && !u.contains(';');
                if !ok {
                    errs.push(FieldError::new(
                        &format!("spec.authorization.superUsers[{i}]"),
                        format!("must be a principal such as User:alice, without ';' (is {u:?})"),
                    ));
                }
            }
        }
        if let Some(t) = &self.tls {
            if !(1..=3650).contains(&t.validity_days) {
                errs.push(FieldError::new(
                    "spec.tls.validityDays",
                    format!("must be between 1 and 3650 (is {})", t.validity_days),
                ));
            }
            if t.renew_before_days < 1 || t.renew_before_days >= t.validity_days {
                errs.push(FieldError::new(
                    "spec.tls.renewBeforeDays",
                    format!(
                        "must be at least 1 and less than spec.tls.validityDays ({} is not within 1..{})",
                        t.renew_before_days, t.validity_days
                    ),
                ));
            }
            if let Some(issuer) = &t.issuer {
                if issuer.name.is_empty() || issuer.name.len() > 253 {
                    errs.push(FieldError::new(
                        "spec.tls.issuer.name",
                        "must be an issuer name",
                    ));
                }
            }
        }
    }
}

/// `[a-z]([-]?[a-z0-9])*`, at most [`MAX_LISTENER_NAME`] characters.
fn listener_name_ok(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_LISTENER_NAME
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && !name.contains("--")
        && !name.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::KafkaClusterSpec;

    fn listener(
        name: &str,
        port: i32,
        tls: bool,
        auth: Option<AuthenticationType>,
    ) -> KafkaListener {
        KafkaListener {
            name: name.into(),
            port,
            tls,
            authentication: auth.map(|type_| ListenerAuthentication { type_ }),
        }
    }

    fn fields(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(|e| e.field.clone()).collect()
    }

    #[test]
    fn a_spec_without_security_is_not_secured() {
        let spec = KafkaClusterSpec::default();
        assert!(!spec.secured());
        assert_eq!(spec.operator_port(), 9092);
        let mut plain = spec.clone();
        plain.listeners.kafka = Some(vec![listener("plain", 9000, false, None)]);
        assert!(!plain.secured());
        assert_eq!(plain.operator_port(), 9000);
        assert!(plain.validate().is_empty());
    }

    #[test]
    fn tls_auth_or_authorization_secure_a_cluster() {
        let mut spec = KafkaClusterSpec::default();
        spec.listeners.kafka = Some(vec![listener("tls", 9093 + 100, true, None)]);
        assert!(spec.secured());
        assert_eq!(spec.operator_port(), CONTROLPLANE_PORT);
        let spec = KafkaClusterSpec {
            authorization: Some(AuthorizationSpec {
                type_: AuthorizationType::Simple,
                super_users: vec![],
                allow_everyone_if_no_acl_found: false,
            }),
            ..Default::default()
        };
        assert!(spec.secured());
        let mut spec = KafkaClusterSpec::default();
        spec.listeners.kafka = Some(vec![listener(
            "sasl",
            9200,
            false,
            Some(AuthenticationType::ScramSha512),
        )]);
        assert!(spec.secured());
        assert_eq!(
            spec.listeners.kafka.as_ref().unwrap()[0].protocol(),
            SecurityProtocol::SaslPlaintext
        );
    }

    #[test]
    fn protocols() {
        let p = |tls, auth| listener("x", 1, tls, auth).protocol().as_str();
        assert_eq!(p(false, None), "PLAINTEXT");
        assert_eq!(p(true, None), "SSL");
        assert_eq!(p(true, Some(AuthenticationType::Tls)), "SSL");
        assert_eq!(p(true, Some(AuthenticationType::ScramSha512)), "SASL_SSL");
        assert_eq!(
            p(false, Some(AuthenticationType::ScramSha512)),
            "SASL_PLAINTEXT"
        );
    }

    #[test]
    fn listener_rules_name_their_field() {
        let mut spec = KafkaClusterSpec::default();
        spec.listeners.kafka = Some(vec![
            listener("Bad_Name", 9200, false, None),
            listener("metrics", 9201, false, None),
            listener("tls", 9200, false, Some(AuthenticationType::Tls)),
            listener("tls", 9093, true, None),
            listener("cp", CONTROLPLANE_PORT, true, None),
        ]);
        let errs = spec.validate();
        assert_eq!(
            fields(&errs),
            vec![
                "spec.listeners.kafka[0].name",
                "spec.listeners.kafka[1].name",
                "spec.listeners.kafka[2].port",
                "spec.listeners.kafka[2].authentication.type",
                "spec.listeners.kafka[3].name",
                "spec.listeners.kafka[3].port",
                "spec.listeners.kafka[4].port",
            ],
            "{errs:?}"
        );
        assert!(
            errs[5].message.contains("spec.listeners.controller"),
            "{}",
            errs[5]
        );
        assert!(errs[6].message.contains("CONTROLPLANE"), "{}", errs[6]);
    }

    #[test]
    fn listener_names() {
        for ok in ["a", "tls", "sasl-ext", "a1-b2", "abcdefghijklmno"] {
            assert!(listener_name_ok(ok), "{ok}");
        }
        for bad in ["", "1a", "-a", "a-", "a--b", "A", "a_b", "abcdefghijklmnop"] {
            assert!(!listener_name_ok(bad), "{bad}");
        }
    }

    #[test]
    fn an_empty_list_is_refused_and_9091_is_free_on_a_plain_cluster() {
        let mut spec = KafkaClusterSpec::default();
        spec.listeners.kafka = Some(vec![]);
        assert_eq!(fields(&spec.validate()), vec!["spec.listeners.kafka"]);
        spec.listeners.kafka = Some(vec![listener("plain", CONTROLPLANE_PORT, false, None)]);
        assert!(spec.validate().is_empty());
        let mut spec = KafkaClusterSpec::default();
        spec.listeners.client = CONTROLPLANE_PORT;
        assert!(spec.validate().is_empty());
        spec.authorization = Some(AuthorizationSpec {
            type_: AuthorizationType::Simple,
            super_users: vec![],
            allow_everyone_if_no_acl_found: false,
        });
        assert_eq!(fields(&spec.validate()), vec!["spec.listeners.client"]);
    }

    #[test]
    fn authorization_and_tls_rules() {
        let mut spec = KafkaClusterSpec {
            authorization: Some(AuthorizationSpec {
                type_: AuthorizationType::Simple,
                super_users: vec![
                    "User:CN=admin".into(),
                    "alice".into(),
                    "User:a;User:b".into(),
                ],
                allow_everyone_if_no_acl_found: false,
            }),
            ..Default::default()
        };
        spec.tls = Some(TlsSpec {
            issuer: None,
            validity_days: 30,
            renew_before_days: 30,
        });
        assert_eq!(
            fields(&spec.validate()),
            vec![
                "spec.authorization.superUsers[1]",
                "spec.authorization.superUsers[2]",
                "spec.tls.renewBeforeDays"
            ]
        );
    }

    #[test]
    fn security_fields_parse_with_defaults() {
        let spec: KafkaClusterSpec = serde_json::from_value(serde_json::json!({
            "listeners": {"kafka": [
                {"name": "tls", "port": 9093, "tls": true, "authentication": {"type": "tls"}},
                {"name": "scram", "port": 9095, "authentication": {"type": "scram-sha-512"}}
            ], "controller": 9193, "replication": 9194},
            "authorization": {"type": "simple", "superUsers": ["User:admin"]},
            "tls": {"issuer": {"name": "ca-issuer"}}
        }))
        .unwrap();
        assert!(spec.validate().is_empty(), "{:?}", spec.validate());
        let tls = spec.tls.unwrap();
        assert_eq!(tls.validity_days, 365);
        assert_eq!(tls.renew_before_days, 30);
        let issuer = tls.issuer.unwrap();
        assert_eq!(issuer.kind, IssuerKind::Issuer);
        assert_eq!(issuer.group, "cert-manager.io");
        assert!(!spec.authorization.unwrap().allow_everyone_if_no_acl_found);
        assert!(spec.network_policy.enabled);
        let list = spec.listeners.kafka.unwrap();
        assert!(list[0].mtls());
        assert_eq!(list[1].protocol(), SecurityProtocol::SaslPlaintext);
    }
}
