//! KafkaUser planning: the ACL bindings a spec asks for and the changes that bring a principal's
//! bindings there, when a SCRAM credential must be (re)written, which listener a user reaches,
//! and what the user's Secret holds. Pure: no Kubernetes, no Kafka, no clock.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use super::security;
use crate::crd::{
    AclOperation, AclPatternType, AclPermission, AclResourceType, FieldError, KafkaUserSpec,
    UserAuthenticationType, CLUSTER_RESOURCE_NAME,
};
use crate::kafka::{acl, AclBinding, ScramCredentialInfo, SCRAM_SHA_512};

/// Where the docs and the generated client settings expect the user's Secret to be mounted:
/// `librdkafka.properties` names files under it (librdkafka takes no inline PEM in a file).
pub const SECRET_MOUNT_PATH: &str = "/etc/samsa/user";
/// Annotation of the user's Secret: a fingerprint of the password the cluster's SCRAM
/// credential was last written with (the credential itself cannot be read back).
pub const SCRAM_FINGERPRINT_ANNOTATION: &str = "samsa.dev/scram-password-fingerprint";
/// Length of a generated password.
pub const GENERATED_PASSWORD_LEN: usize = 32;
/// Longest password accepted from a Secret.
pub const MAX_PASSWORD_LEN: usize = 1024;
/// The characters of a generated password.
const PASSWORD_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// When the user's Secret (named as the user) would be one the operator keeps for its
/// cluster (CAs, broker and operator certificates): the field error that refuses the name.
pub fn reserved_secret_name(user: &str, cluster: &str) -> Option<FieldError> {
    let reserved = [
        security::cluster_ca_secret(cluster),
        security::clients_ca_secret(cluster),
        security::broker_certs_secret(cluster),
        security::operator_cert_secret(cluster),
        security::broker_tls_secret(cluster),
    ];
    reserved.contains(&user.to_string()).then(|| {
        FieldError::new(
            "metadata.name",
            format!(
                "{user} is the name of a Secret the operator keeps for KafkaCluster {cluster}; the user's Secret takes the user's name"
            ),
        )
    })
}

/// The wire code of an ACL operation.
pub fn operation_code(op: AclOperation) -> i8 {
    match op {
        AclOperation::All => 2,
        AclOperation::Read => 3,
        AclOperation::Write => 4,
        AclOperation::Create => 5,
        AclOperation::Delete => 6,
        AclOperation::Alter => 7,
        AclOperation::Describe => 8,
        AclOperation::ClusterAction => 9,
        AclOperation::DescribeConfigs => 10,
        AclOperation::AlterConfigs => 11,
        AclOperation::IdempotentWrite => 12,
    }
}

fn resource_code(t: AclResourceType) -> i8 {
    match t {
        AclResourceType::Topic => acl::RESOURCE_TOPIC,
        AclResourceType::Group => acl::RESOURCE_GROUP,
        AclResourceType::Cluster => acl::RESOURCE_CLUSTER,
        AclResourceType::TransactionalId => acl::RESOURCE_TRANSACTIONAL_ID,
    }
}

fn pattern_code(p: AclPatternType) -> i8 {
    match p {
        AclPatternType::Literal => acl::PATTERN_LITERAL,
        AclPatternType::Prefixed => acl::PATTERN_PREFIXED,
    }
}

fn permission_code(p: AclPermission) -> i8 {
    match p {
        AclPermission::Allow => acl::PERMISSION_ALLOW,
        AclPermission::Deny => acl::PERMISSION_DENY,
    }
}

/// The ACL bindings `spec` asks for `principal`: one per rule and operation (`All` stays one
/// binding of operation ALL, as Kafka stores it), duplicates merged. The cluster resource is
/// always the literal `kafka-cluster`.
pub fn desired_bindings(spec: &KafkaUserSpec, principal: &str) -> BTreeSet<AclBinding> {
    let mut out = BTreeSet::new();
    for rule in &spec.authorization.acls {
        let r = &rule.resource;
        let (name, pattern) = match r.type_ {
            AclResourceType::Cluster => (CLUSTER_RESOURCE_NAME.to_string(), acl::PATTERN_LITERAL),
            _ => (
                r.name.clone().unwrap_or_default(),
                pattern_code(r.pattern_type),
            ),
        };
        for op in &rule.operations {
            out.insert(AclBinding {
                resource_type: resource_code(r.type_),
                resource_name: name.clone(),
                pattern_type: pattern,
                principal: principal.to_string(),
                host: rule.host.clone(),
                operation: operation_code(*op),
                permission: permission_code(rule.type_),
            });
        }
    }
    out
}

/// What brings a principal's bindings to the desired ones.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AclChanges {
    /// Desired bindings the cluster lacks.
    pub create: Vec<AclBinding>,
    /// Bindings of the principal the spec does not ask for.
    pub delete: Vec<AclBinding>,
}

impl AclChanges {
    /// True when the cluster already has exactly the desired bindings.
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.delete.is_empty()
    }
}

/// The difference between the desired bindings and `current` (the principal's bindings as
/// DescribeAcls reports them). Only bindings of `principal` are ever deleted.
pub fn acl_changes(
    desired: &BTreeSet<AclBinding>,
    current: &[AclBinding],
    principal: &str,
) -> AclChanges {
    let current: BTreeSet<&AclBinding> = current.iter().collect();
    AclChanges {
        create: desired
            .iter()
            .filter(|b| !current.contains(b))
            .cloned()
            .collect(),
        delete: current
            .into_iter()
            .filter(|b| b.principal == principal && !desired.contains(*b))
            .cloned()
            .collect(),
    }
}

/// Why a SCRAM credential is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramWrite {
    /// The cluster has no SCRAM-SHA-512 credential for the user.
    Missing,
    /// The password differs from the one the credential was last written with (or that one is
    /// not known).
    PasswordChanged,
}

/// A fingerprint of `password` for `user`, kept in the user's Secret (next to the password
/// itself, so it reveals nothing more) to tell whether the cluster's credential is current.
pub fn password_fingerprint(user: &str, password: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"samsa-scram-sha-512\0");
    h.update(user.as_bytes());
    h.update(b"\0");
    h.update(password.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether the SCRAM-SHA-512 credential of `user` must be (re)written: the cluster has none
/// (`existing`, from DescribeUserScramCredentials), or `recorded` (the fingerprint in the
/// user's Secret) is not that of `password`. `None`: it is current, leave it.
pub fn scram_write(
    existing: &[ScramCredentialInfo],
    recorded: Option<&str>,
    user: &str,
    password: &str,
) -> Option<ScramWrite> {
    if !existing.iter().any(|c| c.mechanism == SCRAM_SHA_512) {
        Some(ScramWrite::Missing)
    } else if recorded != Some(password_fingerprint(user, password).as_str()) {
        Some(ScramWrite::PasswordChanged)
    } else {
        None
    }
}

/// Why a password from a Secret is refused; `None` when it is usable.
pub fn password_problem(password: &str) -> Option<String> {
    if password.is_empty() {
        return Some("is empty".into());
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Some(format!("is longer than {MAX_PASSWORD_LEN} bytes"));
    }
    if password.chars().any(char::is_control) {
        return Some("holds control characters (a newline?)".into());
    }
    if password.trim() != password {
        return Some("starts or ends with white space".into());
    }
    None
}

/// A password of `GENERATED_PASSWORD_LEN` characters of a-z, A-Z, 0-9 drawn from `random`
/// bytes (rejection sampling: bytes of 248 and above are skipped, so each character is
/// uniform). `None` when the bytes run out first.
pub fn password_from_bytes(random: &[u8]) -> Option<String> {
    let n = PASSWORD_ALPHABET.len();
    let limit = 256 - 256 % n;
    let out: String = random
        .iter()
        .map(|b| usize::from(*b))
        .filter(|b| *b < limit)
        .take(GENERATED_PASSWORD_LEN)
        .filter_map(|b| PASSWORD_ALPHABET.get(b % n).map(|c| char::from(*c)))
        .collect();
    (out.len() == GENERATED_PASSWORD_LEN).then_some(out)
}

/// A client listener of a cluster, as the user Secret and the readiness checks need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterListener {
    /// The listener's name.
    pub name: String,
    /// Its bootstrap address (`<cluster>-bootstrap.<ns>.svc:<port>`).
    pub bootstrap: String,
    /// Whether it speaks TLS.
    pub tls: bool,
    /// How clients authenticate on it; `None`: they do not.
    pub authentication: Option<UserAuthenticationType>,
}

/// The listener a user of `auth` connects to: the first that authenticates that way.
pub fn listener_for(
    listeners: &[ClusterListener],
    auth: UserAuthenticationType,
) -> Option<&ClusterListener> {
    listeners.iter().find(|l| l.authentication == Some(auth))
}

/// A Java properties value: backslashes, line breaks and other control characters escaped,
/// a leading space kept, characters beyond ASCII as `\uXXXX` (Properties files are
/// ISO-8859-1).
pub fn properties_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{c}' => out.push_str("\\f"),
            ' ' if i == 0 => out.push_str("\\ "),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
    out
}

/// A quoted JAAS option value: backslash and double quote escaped.
fn jaas_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if matches!(c, '\\' | '"') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The Java client's `sasl.jaas.config` of a SCRAM user.
pub fn jaas_config(user: &str, password: &str) -> String {
    format!(
        "org.apache.kafka.common.security.scram.ScramLoginModule required username={} password={};",
        jaas_quote(user),
        jaas_quote(password)
    )
}

fn properties(header: &str, entries: &[(&str, String)]) -> String {
    let mut out = String::new();
    for line in header.lines() {
        out.push_str("# ");
        out.push_str(line);
        out.push('\n');
    }
    for (k, v) in entries {
        out.push_str(k);
        out.push('=');
        out.push_str(v);
        out.push('\n');
    }
    out
}

/// What a user's Secret is made from, besides its credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretContext<'a> {
    /// The user name (`metadata.name`).
    pub user: &'a str,
    /// The cluster's name, for the comments.
    pub cluster: &'a str,
    /// The listener the user connects to, when the cluster has one.
    pub listener: Option<&'a ClusterListener>,
    /// The cluster CA certificate (PEM) clients verify the brokers with, when known.
    pub ca_cert: Option<&'a str>,
}

impl SecretContext<'_> {
    fn tls(&self) -> bool {
        self.listener.is_none_or(|l| l.tls)
    }

    fn header(&self, what: &str, client: &str) -> String {
        let mut h = format!(
            "{client} settings of KafkaUser {} ({what}) of KafkaCluster {}.",
            self.user, self.cluster
        );
        if let Some(l) = self.listener {
            h.push_str(&format!("\nListener {}.", l.name));
        }
        h
    }

    fn java_common(&self, entries: &mut Vec<(&'static str, String)>) {
        if let Some(l) = self.listener {
            entries.insert(0, ("bootstrap.servers", properties_escape(&l.bootstrap)));
        }
        if let (true, Some(ca)) = (self.tls(), self.ca_cert) {
            entries.push(("ssl.truststore.type", "PEM".into()));
            entries.push(("ssl.truststore.certificates", properties_escape(ca)));
        }
    }

    fn librdkafka_common(&self, entries: &mut Vec<(&'static str, String)>) {
        if let Some(l) = self.listener {
            entries.insert(0, ("bootstrap.servers", l.bootstrap.clone()));
        }
        if self.tls() && self.ca_cert.is_some() {
            entries.push(("ssl.ca.location", format!("{SECRET_MOUNT_PATH}/ca.crt")));
        }
    }

    fn common_data(&self, data: &mut BTreeMap<String, String>) {
        if let Some(ca) = self.ca_cert {
            data.insert("ca.crt".into(), ca.to_string());
        }
        if let Some(l) = self.listener {
            data.insert("bootstrap.servers".into(), l.bootstrap.clone());
        }
    }
}

const LIBRDKAFKA_NOTE: &str = "librdkafka (kcat -F, confluent-kafka)";
const MOUNT_NOTE: &str = "File paths assume this Secret is mounted at";

/// The data of a SCRAM-SHA-512 user's Secret: `password`, `sasl.jaas.config`,
/// `client.properties` (Java), `librdkafka.properties`, and when known `ca.crt` and
/// `bootstrap.servers`.
pub fn scram_secret_data(ctx: &SecretContext<'_>, password: &str) -> BTreeMap<String, String> {
    let jaas = jaas_config(ctx.user, password);
    let protocol = if ctx.tls() {
        "SASL_SSL"
    } else {
        "SASL_PLAINTEXT"
    };
    let mut java = vec![
        ("security.protocol", protocol.to_string()),
        ("sasl.mechanism", "SCRAM-SHA-512".to_string()),
        ("sasl.jaas.config", properties_escape(&jaas)),
    ];
    ctx.java_common(&mut java);
    let mut rdkafka = vec![
        ("security.protocol", protocol.to_ascii_lowercase()),
        ("sasl.mechanisms", "SCRAM-SHA-512".to_string()),
        ("sasl.username", ctx.user.to_string()),
        ("sasl.password", password.to_string()),
    ];
    ctx.librdkafka_common(&mut rdkafka);
    let mut data = BTreeMap::from([
        ("password".to_string(), password.to_string()),
        ("sasl.jaas.config".to_string(), jaas),
        (
            "client.properties".to_string(),
            properties(&ctx.header("SCRAM-SHA-512", "Kafka Java client"), &java),
        ),
        (
            "librdkafka.properties".to_string(),
            properties(
                &format!(
                    "{}\n{MOUNT_NOTE} {SECRET_MOUNT_PATH}.",
                    ctx.header("SCRAM-SHA-512", LIBRDKAFKA_NOTE)
                ),
                &rdkafka,
            ),
        ),
    ]);
    ctx.common_data(&mut data);
    data
}

/// The data of a TLS user's Secret: `user.crt`, `user.key`, `client.properties` (Java, PEM
/// inline), `librdkafka.properties`, and when known `ca.crt` and `bootstrap.servers`.
pub fn tls_secret_data(
    ctx: &SecretContext<'_>,
    cert_pem: &str,
    key_pem: &str,
) -> BTreeMap<String, String> {
    let mut java = vec![
        ("security.protocol", "SSL".to_string()),
        ("ssl.keystore.type", "PEM".to_string()),
        (
            "ssl.keystore.certificate.chain",
            properties_escape(cert_pem),
        ),
        ("ssl.keystore.key", properties_escape(key_pem)),
    ];
    ctx.java_common(&mut java);
    let mut rdkafka = vec![
        ("security.protocol", "ssl".to_string()),
        (
            "ssl.certificate.location",
            format!("{SECRET_MOUNT_PATH}/user.crt"),
        ),
        ("ssl.key.location", format!("{SECRET_MOUNT_PATH}/user.key")),
    ];
    ctx.librdkafka_common(&mut rdkafka);
    let mut data = BTreeMap::from([
        ("user.crt".to_string(), cert_pem.to_string()),
        ("user.key".to_string(), key_pem.to_string()),
        (
            "client.properties".to_string(),
            properties(&ctx.header("TLS", "Kafka Java client"), &java),
        ),
        (
            "librdkafka.properties".to_string(),
            properties(
                &format!(
                    "{}\n{MOUNT_NOTE} {SECRET_MOUNT_PATH}.",
                    ctx.header("TLS", LIBRDKAFKA_NOTE)
                ),
                &rdkafka,
            ),
        ),
    ]);
    ctx.common_data(&mut data);
    data
}

#[cfg(test)]
#[path = "user_tests.rs"]
mod tests;
