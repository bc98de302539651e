//! KafkaUser reconcile: the user's credential in the referenced cluster (a SCRAM-SHA-512
//! credential, or a client certificate from the cluster's clients CA), its Secret of client
//! settings, and exactly the ACLs its spec lists for its principal; on deletion (finalizer) the
//! credential and the ACLs go. It never touches another principal's ACLs or credentials, and
//! never the operator's own (`samsa-operator` is refused).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{finalizer, Event as FinalizerEvent};
use kube::Resource;
use tracing::Instrument;

use super::{name_ns, now_rfc3339, Context, Error, FIELD_MANAGER};
use crate::certs::{self, Ca};
use crate::crd::{
    describe_errors, merge_conditions, AuthenticationType, Condition, KafkaCluster, KafkaUser,
    KafkaUserStatus, UserAuthenticationType,
};
use crate::kafka::{
    random_bytes, AdminClient, AdminError, ScramUpsert, SecurityAdmin,
    CLUSTER_AUTHORIZATION_FAILED, SCRAM_ITERATIONS, SCRAM_SALT_LEN, SCRAM_SHA_512,
    SECURITY_DISABLED, UNSUPPORTED_SASL_MECHANISM,
};
use crate::plan::certificates::Lifetimes;
use crate::plan::cluster::{bootstrap_address, CLUSTER_LABEL};
use crate::plan::security::{
    broker_tls_secret, clients_ca_secret, cluster_ca_secret, CA_CERT_KEY, CA_KEY_KEY,
};
use crate::plan::user::{
    acl_changes, desired_bindings, listener_for, password_from_bytes, password_problem,
    reserved_secret_name, scram_secret_data, scram_write, tls_secret_data, AclChanges,
    ClusterListener, ScramWrite, SecretContext, SCRAM_FINGERPRINT_ANNOTATION,
};

/// Kind label of the metrics.
pub const KIND: &str = "KafkaUser";
/// Finalizer that holds a KafkaUser until its credential and ACLs are deleted.
pub const FINALIZER: &str = "samsa.dev/user";
/// Label of a user's Secret naming the KafkaUser.
pub const USER_LABEL: &str = "samsa.dev/user";
/// Look again this often when all is well.
const RESYNC: Duration = Duration::from_secs(300);

/// Reconciles one KafkaUser.
pub async fn reconcile(ku: Arc<KafkaUser>, ctx: Arc<Context>) -> Result<Action, Error> {
    let start = Instant::now();
    let span = tracing::info_span!(
        "reconcile",
        kind = KIND,
        namespace = ku.metadata.namespace.as_deref().unwrap_or_default(),
        name = ku.metadata.name.as_deref().unwrap_or_default(),
        cluster = %ku.spec.cluster_ref.name,
        generation = ku.metadata.generation.unwrap_or_default(),
    );
    let result = run(ku.clone(), ctx.clone()).instrument(span).await;
    ctx.metrics.observe(KIND, start.elapsed(), result.is_ok());
    if result.is_ok() {
        ctx.succeeded(ku.as_ref());
    }
    result
}

async fn run(ku: Arc<KafkaUser>, ctx: Arc<Context>) -> Result<Action, Error> {
    let (_, ns) = name_ns(ku.as_ref())?;
    let api: Api<KafkaUser> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, FINALIZER, ku, |event| async {
        match event {
            FinalizerEvent::Apply(ku) => apply(&ku, &ctx).await,
            FinalizerEvent::Cleanup(ku) => cleanup(&ku, &ctx).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e)
        | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer(other.to_string()),
    })
}

/// How a reconcile step stops short of Ready.
#[derive(Debug)]
enum Stop {
    /// Not Ready for a reason the user should see; look again after the duration.
    NotReady(&'static str, String, Duration),
    /// A failure: Ready=False with its class, and the error to the controller (backoff).
    Failed(Error),
}

impl From<kube::Error> for Stop {
    fn from(e: kube::Error) -> Self {
        Stop::Failed(Error::Kube(e))
    }
}

impl From<AdminError> for Stop {
    fn from(e: AdminError) -> Self {
        Stop::Failed(Error::Kafka(e))
    }
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Failed(e)
    }
}

/// The Ready=False reason and message of a failed reconcile.
fn classify(e: &Error, cluster: &str) -> (&'static str, String) {
    match e {
        Error::Kafka(
            a @ (AdminError::Connect { .. } | AdminError::Timeout { .. } | AdminError::Io { .. }),
        ) => (
            "ClusterUnreachable",
            format!("cannot reach KafkaCluster {cluster}: {a}"),
        ),
        Error::Kafka(a @ AdminError::UnsupportedVersion { .. }) => (
            "UnsupportedVersion",
            format!("the brokers of KafkaCluster {cluster} do not serve the security admin requests: {a}"),
        ),
        Error::Kafka(AdminError::Kafka(k)) if k.code == UNSUPPORTED_SASL_MECHANISM => (
            "UnsupportedMechanism",
            format!("the brokers of KafkaCluster {cluster} do not take SCRAM-SHA-512 credentials: {k}"),
        ),
        Error::Kafka(AdminError::Kafka(k)) if k.code == SECURITY_DISABLED => (
            "SecurityDisabled",
            format!(
                "KafkaCluster {cluster} is not secured (no authorizer or credential store; set spec.authorization and an authenticated listener): {k}"
            ),
        ),
        Error::Kafka(AdminError::Kafka(k)) if k.code == CLUSTER_AUTHORIZATION_FAILED => (
            "NotAuthorized",
            format!("the operator may not manage users of KafkaCluster {cluster}: {k}"),
        ),
        Error::Kafka(a) => ("KafkaError", format!("KafkaCluster {cluster}: {a}")),
        Error::Waiting(w) => (
            "OperatorCertificateNotReady",
            format!("the operator cannot connect to KafkaCluster {cluster} yet: {w}"),
        ),
        Error::Kube(k) => ("KubernetesError", k.to_string()),
        other => ("ReconcileError", other.to_string()),
    }
}

/// The client listeners of a cluster, with the address, TLS and authentication a user needs:
/// its typed listeners (`spec.listeners.kafka`), else the one plaintext, unauthenticated
/// listener on `spec.listeners.client`.
pub fn cluster_listeners(kc: &KafkaCluster, cluster: &str, ns: &str) -> Vec<ClusterListener> {
    let Some(list) = &kc.spec.listeners.kafka else {
        return vec![ClusterListener {
            name: "client".into(),
            bootstrap: bootstrap_address(cluster, ns, kc.spec.listeners.client),
            tls: false,
            authentication: None,
        }];
    };
    list.iter()
        .map(|l| ClusterListener {
            name: l.name.clone(),
            bootstrap: bootstrap_address(cluster, ns, l.port),
            tls: l.tls,
            authentication: l.authentication.as_ref().map(|a| match a.type_ {
                AuthenticationType::ScramSha512 => UserAuthenticationType::ScramSha512,
                AuthenticationType::Tls => UserAuthenticationType::Tls,
            }),
        })
        .collect()
}

/// The Secret (and its key) holding the CA certificate the brokers' certificates chain to:
/// the cert-manager Secret with `spec.tls.issuer`, else the operator's cluster CA.
fn broker_ca_secret(kc: &KafkaCluster, cluster: &str) -> String {
    match kc.spec.tls.as_ref().and_then(|t| t.issuer.as_ref()) {
        Some(_) => broker_tls_secret(cluster),
        None => cluster_ca_secret(cluster),
    }
}

/// The admin client of a cluster, as every reconcile obtains it: its CONTROLPLANE listener
/// over mutual TLS with the operator's certificate when secured, else its first listener.
async fn admin_of(ctx: &Context, kc: &KafkaCluster) -> Result<Arc<AdminClient>, Error> {
    let bootstrap = ctx.kafka_bootstrap(kc).await?;
    Ok(ctx.admin(&bootstrap))
}

/// The text of `key` in a Secret, when present and UTF-8.
fn secret_text(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .and_then(|v| String::from_utf8(v.0.clone()).ok())
}

async fn apply(ku: &KafkaUser, ctx: &Context) -> Result<Action, Error> {
    let (name, ns) = name_ns(ku)?;
    let api: Api<KafkaUser> = Api::namespaced(ctx.client.clone(), &ns);
    let previous = ku.status.clone().unwrap_or_default();
    let cluster = ku.spec.cluster_ref.name.clone();
    match sync(ku, ctx, &name, &ns).await {
        Ok((message, requeue)) => {
            let mut status = previous.clone();
            status.username = Some(ku.spec.username(&name));
            status.principal = Some(ku.spec.principal(&name));
            status.secret = Some(name.clone());
            write_status(&api, &name, ku, status, true, "Reconciled", &message).await?;
            Ok(Action::requeue(requeue))
        }
        Err(Stop::NotReady(reason, message, after)) => {
            note_once(ctx, ku, &previous, reason, &message).await;
            write_status(&api, &name, ku, previous.clone(), false, reason, &message).await?;
            Ok(Action::requeue(after))
        }
        Err(Stop::Failed(e)) => {
            let (reason, message) = classify(&e, &cluster);
            note_once(ctx, ku, &previous, reason, &message).await;
            // Best effort: the error itself goes to the controller for the backoff.
            if let Err(status_err) =
                write_status(&api, &name, ku, previous.clone(), false, reason, &message).await
            {
                tracing::warn!(error = %status_err, "cannot write the status");
            }
            Err(e)
        }
    }
}

/// The user's whole state in one pass; the Ready message and the next look on success.
async fn sync(
    ku: &KafkaUser,
    ctx: &Context,
    name: &str,
    ns: &str,
) -> Result<(String, Duration), Stop> {
    let mut errs = ku.spec.validate(name);
    errs.extend(reserved_secret_name(name, &ku.spec.cluster_ref.name));
    if !errs.is_empty() {
        return Err(Stop::NotReady(
            "InvalidSpec",
            describe_errors(&errs),
            Duration::from_secs(60),
        ));
    }
    let cluster_name = &ku.spec.cluster_ref.name;
    let clusters: Api<KafkaCluster> = Api::namespaced(ctx.client.clone(), ns);
    let Some(cluster) = clusters.get_opt(cluster_name).await? else {
        return Err(Stop::NotReady(
            "ClusterNotFound",
            format!("spec.clusterRef.name: KafkaCluster {cluster_name} does not exist in {ns}"),
            Duration::from_secs(30),
        ));
    };
    let auth = ku.spec.authentication.type_;
    let listeners = cluster_listeners(&cluster, cluster_name, ns);
    let Some(listener) = listener_for(&listeners, auth).cloned() else {
        return Err(Stop::NotReady(
            "ClusterNotSecured",
            format!(
                "KafkaCluster {cluster_name} has no listener with authentication {} (spec.listeners.kafka[].authentication.type): a {} user could not connect",
                auth.as_str(),
                auth.as_str()
            ),
            Duration::from_secs(60),
        ));
    };

    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let existing = secrets.get_opt(name).await?;
    if let Some(s) = &existing {
        if !controlled_by(s, ku) {
            return Err(Stop::NotReady(
                "SecretConflict",
                format!(
                    "Secret {name} exists and is not this KafkaUser's: the operator keeps the user's credentials in a Secret of the user's name; rename or delete that Secret"
                ),
                Duration::from_secs(60),
            ));
        }
    }
    let ca_secret = broker_ca_secret(&cluster, cluster_name);
    let ca_cert = secrets
        .get_opt(&ca_secret)
        .await?
        .and_then(|s| secret_text(&s, CA_CERT_KEY));
    if listener.tls && ca_cert.is_none() {
        return Err(Stop::NotReady(
            "CaNotReady",
            format!(
                "Secret {ca_secret} with the CA certificate (ca.crt) of the brokers does not exist yet; the KafkaCluster's reconcile makes it"
            ),
            Duration::from_secs(15),
        ));
    }
    let secret_ctx = SecretContext {
        user: name,
        cluster: cluster_name,
        listener: Some(&listener),
        ca_cert: ca_cert.as_deref(),
    };

    let admin = admin_of(ctx, &cluster).await?;
    let (data, fingerprint, next) = match auth {
        UserAuthenticationType::ScramSha512 => {
            let (data, fingerprint) = scram(
                ku,
                ctx,
                admin.as_ref(),
                name,
                ns,
                existing.as_ref(),
                &secret_ctx,
            )
            .await?;
            (data, Some(fingerprint), RESYNC)
        }
        UserAuthenticationType::Tls => {
            let lifetimes = Lifetimes::of(&cluster.spec);
            let (data, renew_in) =
                tls(ku, ctx, name, ns, existing.as_ref(), &secret_ctx, lifetimes).await?;
            (data, None, renew_in.clamp(Duration::from_secs(60), RESYNC))
        }
    };
    apply_secret(&secrets, ku, name, cluster_name, data, fingerprint).await?;

    let principal = ku.spec.principal(name);
    let count = sync_acls(ctx, ku, admin.as_ref(), &principal).await?;
    let credential = match auth {
        UserAuthenticationType::ScramSha512 => "SCRAM-SHA-512 credential",
        UserAuthenticationType::Tls => "client certificate",
    };
    Ok((
        format!(
            "{principal}: {credential} and {count} ACL binding{} in KafkaCluster {cluster_name}; client settings in Secret {name}",
            if count == 1 { "" } else { "s" }
        ),
        next,
    ))
}

/// Whether `secret` is controlled by `ku` (its controller owner reference has `ku`'s uid).
fn controlled_by(secret: &Secret, ku: &KafkaUser) -> bool {
    let Some(uid) = ku.metadata.uid.as_deref() else {
        return false;
    };
    secret
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && o.uid == uid)
}

/// A new random password.
fn generate_password() -> Result<String, Stop> {
    // 64 bytes hold 32 accepted ones with overwhelming odds (each is accepted with 248/256);
    // a few rounds make a failure practically impossible.
    for _ in 0..8 {
        let bytes = random_bytes::<64>().map_err(random_failure)?;
        if let Some(p) = password_from_bytes(&bytes) {
            return Ok(p);
        }
    }
    Err(Stop::NotReady(
        "RandomFailure",
        "cannot draw a random password".into(),
        Duration::from_secs(30),
    ))
}

fn random_failure(e: getrandom::Error) -> Stop {
    Stop::NotReady(
        "RandomFailure",
        format!("the operating system's random source failed: {e}"),
        Duration::from_secs(30),
    )
}

/// The password of a SCRAM user: from `spec.authentication.password`, else the one kept in
/// the user's Secret, else a new one.
async fn password(
    ku: &KafkaUser,
    ctx: &Context,
    ns: &str,
    existing: Option<&Secret>,
) -> Result<String, Stop> {
    let Some(source) = &ku.spec.authentication.password else {
        return match existing
            .and_then(|s| secret_text(s, "password"))
            .filter(|p| password_problem(p).is_none())
        {
            Some(p) => Ok(p),
            None => generate_password(),
        };
    };
    let r = &source.value_from.secret_key_ref;
    let field = "spec.authentication.password.valueFrom.secretKeyRef";
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let Some(secret) = secrets.get_opt(&r.name).await? else {
        return Err(Stop::NotReady(
            "PasswordSecretNotFound",
            format!("{field}: Secret {} does not exist in {ns}", r.name),
            Duration::from_secs(30),
        ));
    };
    let Some(raw) = secret.data.as_ref().and_then(|d| d.get(&r.key)) else {
        return Err(Stop::NotReady(
            "PasswordSecretNotFound",
            format!("{field}: Secret {} has no key {}", r.name, r.key),
            Duration::from_secs(30),
        ));
    };
    let Ok(p) = String::from_utf8(raw.0.clone()) else {
        return Err(Stop::NotReady(
            "InvalidPassword",
            format!(
                "{field}: the password in Secret {} key {} is not UTF-8",
                r.name, r.key
            ),
            Duration::from_secs(60),
        ));
    };
    if let Some(problem) = password_problem(&p) {
        return Err(Stop::NotReady(
            "InvalidPassword",
            format!(
                "{field}: the password in Secret {} key {} {problem}",
                r.name, r.key
            ),
            Duration::from_secs(60),
        ));
    }
    Ok(p)
}

/// Makes the cluster's SCRAM-SHA-512 credential of the user match its password, writing it
/// only when it is missing or the password changed. Returns the Secret data and the password
/// fingerprint to record.
async fn scram(
    ku: &KafkaUser,
    ctx: &Context,
    admin: &impl SecurityAdmin,
    name: &str,
    ns: &str,
    existing: Option<&Secret>,
    secret_ctx: &SecretContext<'_>,
) -> Result<(BTreeMap<String, String>, String), Stop> {
    let password = password(ku, ctx, ns, existing).await?;
    let recorded = existing
        .and_then(|s| s.metadata.annotations.as_ref())
        .and_then(|a| a.get(SCRAM_FINGERPRINT_ANNOTATION))
        .cloned();
    let credentials = admin.describe_scram_credentials(name).await?;
    if let Some(why) = scram_write(&credentials, recorded.as_deref(), name, &password) {
        let salt = random_bytes::<SCRAM_SALT_LEN>().map_err(random_failure)?;
        let upsert = ScramUpsert::sha512(&password, &salt, SCRAM_ITERATIONS);
        admin.upsert_scram_credential(name, &upsert).await?;
        let (reason, note) = match why {
            ScramWrite::Missing => (
                "CredentialCreated",
                format!("created the SCRAM-SHA-512 credential of {name}"),
            ),
            ScramWrite::PasswordChanged => (
                "CredentialUpdated",
                format!("updated the SCRAM-SHA-512 credential of {name} (new password)"),
            ),
        };
        ctx.event(ku, EventType::Normal, reason, note).await;
    }
    let fingerprint = crate::plan::user::password_fingerprint(name, &password);
    Ok((scram_secret_data(secret_ctx, &password), fingerprint))
}

/// The user's client certificate: the one in its Secret while the clients CA signed it and it
/// is not due for renewal, else a new one (the cluster's `spec.tls` lifetimes). Returns the
/// Secret data and the time until renewal.
async fn tls(
    ku: &KafkaUser,
    ctx: &Context,
    name: &str,
    ns: &str,
    existing: Option<&Secret>,
    secret_ctx: &SecretContext<'_>,
    lifetimes: Lifetimes,
) -> Result<(BTreeMap<String, String>, Duration), Stop> {
    let cluster = &ku.spec.cluster_ref.name;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let ca_name = clients_ca_secret(cluster);
    let ca = secrets.get_opt(&ca_name).await?.and_then(|s| {
        Some(Ca {
            cert_pem: secret_text(&s, CA_CERT_KEY)?,
            key_pem: secret_text(&s, CA_KEY_KEY)?,
        })
    });
    let Some(ca) = ca else {
        return Err(Stop::NotReady(
            "CaNotReady",
            format!(
                "Secret {ca_name} with the clients CA (ca.crt, ca.key) does not exist yet; the KafkaCluster's reconcile makes it"
            ),
            Duration::from_secs(15),
        ));
    };
    let now = SystemTime::now();
    let kept = existing.and_then(|s| {
        let cert = secret_text(s, "user.crt")?;
        let key = secret_text(s, "user.key")?;
        let current = ca.signed(&cert)
            && !certs::needs_renewal(&cert, lifetimes.renew_before, now)
            && certs::subject(&cert).is_ok_and(|s| s == format!("CN={name}"));
        current.then_some((cert, key))
    });
    let (cert, key) = match kept {
        Some(pair) => pair,
        None => {
            let leaf = ca.issue_client(name, lifetimes.validity).map_err(|e| {
                Stop::NotReady(
                    "CertificateError",
                    format!(
                        "cannot issue the client certificate CN={name} from Secret {ca_name}: {e}"
                    ),
                    Duration::from_secs(60),
                )
            })?;
            ctx.event(
                ku,
                EventType::Normal,
                "CertificateIssued",
                format!("issued client certificate CN={name} from the clients CA of KafkaCluster {cluster}"),
            )
            .await;
            (leaf.cert_pem, leaf.key_pem)
        }
    };
    let renew_in = certs::not_after(&cert)
        .ok()
        .and_then(|t| t.checked_sub(lifetimes.renew_before))
        .and_then(|t| t.duration_since(now).ok())
        .unwrap_or(Duration::ZERO);
    Ok((tls_secret_data(secret_ctx, &cert, &key), renew_in))
}

/// Writes the user's Secret (server-side apply; owned by the KafkaUser).
async fn apply_secret(
    secrets: &Api<Secret>,
    ku: &KafkaUser,
    name: &str,
    cluster: &str,
    data: BTreeMap<String, String>,
    fingerprint: Option<String>,
) -> Result<(), Stop> {
    let owner = ku
        .controller_owner_ref(&())
        .ok_or(Error::Missing("metadata.uid"))?;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: ku.metadata.namespace.clone(),
            labels: Some(BTreeMap::from([
                (
                    "app.kubernetes.io/managed-by".to_string(),
                    "samsa-operator".to_string(),
                ),
                (CLUSTER_LABEL.to_string(), cluster.to_string()),
                (USER_LABEL.to_string(), name.to_string()),
            ])),
            annotations: fingerprint
                .map(|f| BTreeMap::from([(SCRAM_FINGERPRINT_ANNOTATION.to_string(), f)])),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some(
            data.into_iter()
                .map(|(k, v)| (k, ByteString(v.into_bytes())))
                .collect(),
        ),
        ..Default::default()
    };
    secrets
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&secret),
        )
        .await?;
    Ok(())
}

/// Brings the principal's ACLs to the spec's; returns how many bindings it has now.
async fn sync_acls(
    ctx: &Context,
    ku: &KafkaUser,
    admin: &impl SecurityAdmin,
    principal: &str,
) -> Result<usize, Stop> {
    let desired = desired_bindings(&ku.spec, principal);
    let current = match admin.describe_acls(principal).await {
        Ok(c) => c,
        // No authorizer: with no ACLs to make there is nothing to do.
        Err(AdminError::Kafka(k)) if k.code == SECURITY_DISABLED && desired.is_empty() => {
            return Ok(0)
        }
        Err(e) => return Err(e.into()),
    };
    let changes = acl_changes(&desired, &current, principal);
    apply_acl_changes(admin, &changes).await?;
    if !changes.is_empty() {
        ctx.event(
            ku,
            EventType::Normal,
            "AclsUpdated",
            acl_change_note(principal, &changes),
        )
        .await;
    }
    Ok(desired.len())
}

/// Creates the missing bindings first, then deletes the extra ones: a changed rule never
/// leaves a window with neither.
async fn apply_acl_changes(
    admin: &impl SecurityAdmin,
    changes: &AclChanges,
) -> Result<(), AdminError> {
    admin.create_acls(&changes.create).await?;
    admin.delete_acls(&changes.delete).await?;
    Ok(())
}

fn acl_change_note(principal: &str, changes: &AclChanges) -> String {
    let show = |v: &[crate::kafka::AclBinding]| {
        crate::plan::listed(&v.iter().map(ToString::to_string).collect::<Vec<_>>())
    };
    let mut parts = Vec::new();
    if !changes.create.is_empty() {
        parts.push(format!(
            "created {} ({})",
            changes.create.len(),
            show(&changes.create)
        ));
    }
    if !changes.delete.is_empty() {
        parts.push(format!(
            "deleted {} ({})",
            changes.delete.len(),
            show(&changes.delete)
        ));
    }
    format!("ACLs of {principal}: {}", parts.join("; "))
}

/// A Warning event, unless the previous status already says the same.
async fn note_once(
    ctx: &Context,
    ku: &KafkaUser,
    previous: &KafkaUserStatus,
    reason: &str,
    message: &str,
) {
    let said = previous
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.reason == reason && c.message == message);
    if !said {
        ctx.event(ku, EventType::Warning, reason, message.to_string())
            .await;
    }
}

async fn write_status(
    api: &Api<KafkaUser>,
    name: &str,
    ku: &KafkaUser,
    mut status: KafkaUserStatus,
    ready: bool,
    reason: &str,
    message: &str,
) -> Result<(), Error> {
    status.observed_generation = ku.metadata.generation;
    status.conditions = merge_conditions(
        &status.conditions,
        vec![Condition::new("Ready", ready, reason, message)],
        &now_rfc3339(),
        ku.metadata.generation,
    );
    super::apply_status(api, name, &status).await
}

/// What deletion removes from the cluster: the user's ACLs and (SCRAM) its credential.
async fn cleanup(ku: &KafkaUser, ctx: &Context) -> Result<Action, Error> {
    let (name, ns) = name_ns(ku)?;
    // A refused spec never touched the cluster, and must not now (the operator's own name).
    if !ku.spec.validate(&name).is_empty()
        || reserved_secret_name(&name, &ku.spec.cluster_ref.name).is_some()
    {
        return Ok(Action::await_change());
    }
    // Only a user that reached the cluster has anything there: one that was Ready once, or
    // has its Secret (written right after the credential).
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let provisioned = ku.status.as_ref().is_some_and(|s| s.principal.is_some())
        || secrets
            .get_opt(&name)
            .await?
            .is_some_and(|s| controlled_by(&s, ku));
    if !provisioned {
        return Ok(Action::await_change());
    }
    let clusters: Api<KafkaCluster> = Api::namespaced(ctx.client.clone(), &ns);
    let cluster_name = &ku.spec.cluster_ref.name;
    let cluster = match clusters.get_opt(cluster_name).await? {
        // The cluster (and its credentials and ACLs) is gone or going: nothing to delete.
        None => return Ok(Action::await_change()),
        Some(c) if c.metadata.deletion_timestamp.is_some() => return Ok(Action::await_change()),
        Some(c) => c,
    };
    let admin = admin_of(ctx, &cluster).await?;
    let principal = ku.spec.principal(&name);
    let removed = remove_user(
        admin.as_ref(),
        &name,
        &principal,
        ku.spec.authentication.type_,
    )
    .await?;
    ctx.event(
        ku,
        EventType::Normal,
        "UserDeleted",
        format!("deleted {removed} from KafkaCluster {cluster_name}"),
    )
    .await;
    Ok(Action::await_change())
}

/// Deletes the principal's ACLs and, for a SCRAM user, its credential; says what it removed.
/// A cluster without an authorizer, or whose brokers do not serve the requests, has none.
async fn remove_user(
    admin: &impl SecurityAdmin,
    name: &str,
    principal: &str,
    auth: UserAuthenticationType,
) -> Result<String, AdminError> {
    let nothing = |e: &AdminError| {
        matches!(e, AdminError::UnsupportedVersion { .. })
            || e.kafka().is_some_and(|k| k.code == SECURITY_DISABLED)
    };
    let acls = match admin.delete_principal_acls(principal).await {
        Ok(n) => n,
        Err(e) if nothing(&e) => 0,
        Err(e) => return Err(e),
    };
    let mut what = format!(
        "{acls} ACL binding{} of {principal}",
        if acls == 1 { "" } else { "s" }
    );
    if auth == UserAuthenticationType::ScramSha512 {
        match admin.delete_scram_credential(name, SCRAM_SHA_512).await {
            Ok(()) => what.push_str(" and its SCRAM-SHA-512 credential"),
            Err(e) if nothing(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(what)
}

#[cfg(test)]
#[path = "user_tests.rs"]
mod tests;
