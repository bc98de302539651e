//! The controllers: thin observe → plan → act loops around the pure `plan` functions. They
//! own the Kubernetes and Kafka I/O; every decision lives in `plan`.

pub mod cluster;
pub mod topic;
pub mod user;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::health::groups::{GroupHealth, GroupTracker, PolledGroups};

/// A group watch not polled for this long starts over.
const WATCH_GAP_MS: i64 = 60_000;
/// A group not seen (listed with commits) for this long is forgotten.
const GROUP_FORGET_MS: i64 = 30_000;
use crate::crd::KafkaCluster;
use crate::health::requests::RequestCounts;
use crate::kafka::{material_id, AdminClient, AdminError, KafkaTls};
use crate::metrics::Metrics;
use crate::plan::cluster::{bootstrap_address, PlanContext, PlanError};

/// Field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "samsa-operator";

/// The consumer groups of one cluster as the operator has watched them.
#[derive(Debug, Default)]
pub struct GroupWatch {
    /// When this watch began (ms since the epoch).
    pub since_ms: i64,
    /// The last poll (ms since the epoch).
    pub last_ms: i64,
    /// The samples.
    pub tracker: GroupTracker,
    /// When each group was last seen with commits (ms since the epoch).
    pub seen_ms: HashMap<String, i64>,
}

impl GroupWatch {
    /// Records one poll of the cluster's consumer groups (`polled`: per group, (topic,
    /// partition, committed, log end) of its committed partitions) at `now_ms` and evaluates
    /// every group. Returns how long this watch has run without a gap (ms) and the evaluations.
    pub fn observe(&mut self, now_ms: i64, polled: &PolledGroups) -> (i64, Vec<GroupHealth>) {
        // Samples older than a minute say nothing about now: start over.
        if now_ms - self.last_ms > WATCH_GAP_MS {
            *self = GroupWatch {
                since_ms: now_ms,
                ..Default::default()
            };
        }
        self.last_ms = now_ms;
        for (group, offsets) in polled {
            self.tracker.observe(now_ms, group, offsets);
            self.seen_ms.insert(group.clone(), now_ms);
        }
        // A group gone from the listing (deleted, or its offsets expired) is forgotten once it
        // has been away for GROUP_FORGET_MS, not at once: a listing taken while a coordinator
        // moves can miss it.
        let seen = &mut self.seen_ms;
        seen.retain(|_, at| now_ms - *at <= GROUP_FORGET_MS);
        let keep: std::collections::BTreeSet<String> = seen.keys().cloned().collect();
        self.tracker.retain_groups(|g| keep.contains(g));
        (now_ms - self.since_ms, self.tracker.evaluate_all(now_ms))
    }
}

/// What every reconcile shares.
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// Event recorder.
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Settings of the plans.
    pub plan: PlanContext,
    /// When set, every cluster's Kafka listener is reached here instead of its bootstrap
    /// Service (tests, or an operator running outside the cluster).
    pub kafka_bootstrap_override: Option<String>,
    /// Bound on connecting and on each Kafka request.
    pub kafka_timeout: Duration,
    admins: Mutex<HashMap<String, Arc<AdminClient>>>,
    /// TLS of each bootstrap address that needs it (secured clusters' CONTROLPLANE).
    kafka_tls: Mutex<HashMap<String, Arc<KafkaTls>>>,
    failures: Mutex<HashMap<String, u32>>,
    trackers: Mutex<HashMap<String, GroupWatch>>,
    requests: Mutex<HashMap<String, BTreeMap<i32, RequestCounts>>>,
}

impl Context {
    /// A context; admin clients are opened on first use.
    pub fn new(
        client: Client,
        recorder: Recorder,
        metrics: Arc<Metrics>,
        plan: PlanContext,
        kafka_bootstrap_override: Option<String>,
        kafka_timeout: Duration,
    ) -> Self {
        Context {
            client,
            recorder,
            metrics,
            plan,
            kafka_bootstrap_override,
            kafka_timeout,
            admins: Mutex::new(HashMap::new()),
            kafka_tls: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            trackers: Mutex::new(HashMap::new()),
            requests: Mutex::new(HashMap::new()),
        }
    }

    /// The last request counters read from each cluster's brokers (key: namespace/name), by
    /// broker id.
    pub fn request_samples(&self) -> MutexGuard<'_, HashMap<String, BTreeMap<i32, RequestCounts>>> {
        match self.requests.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The Kafka bootstrap address of a cluster.
    pub fn bootstrap(&self, cluster: &str, namespace: &str, port: i32) -> String {
        self.kafka_bootstrap_override
            .clone()
            .unwrap_or_else(|| bootstrap_address(cluster, namespace, port))
    }

    /// The address the operator reaches a cluster's Kafka protocol at: its CONTROLPLANE
    /// listener when secured, else its first Kafka listener.
    pub fn bootstrap_of(&self, kc: &KafkaCluster) -> String {
        let name = kc.metadata.name.clone().unwrap_or_default();
        let ns = kc.metadata.namespace.clone().unwrap_or_default();
        self.bootstrap(&name, &ns, kc.spec.operator_port())
    }

    /// The cluster's bootstrap address, with the TLS of a secured cluster loaded (from its
    /// Secret `<cluster>-operator-cert`) for [`Context::admin`] to use.
    pub async fn kafka_bootstrap(&self, kc: &KafkaCluster) -> Result<String, Error> {
        let bootstrap = self.bootstrap_of(kc);
        self.load_kafka_tls(kc, &bootstrap).await?;
        Ok(bootstrap)
    }

    /// Makes `bootstrap`'s admin client use a secured cluster's operator certificate (plain
    /// TCP for a cluster that is not secured).
    pub async fn load_kafka_tls(&self, kc: &KafkaCluster, bootstrap: &str) -> Result<(), Error> {
        let (name, ns) = name_ns(kc)?;
        self.use_tls(&name, &ns, bootstrap, kc.spec.secured()).await
    }

    /// With `tls`: reads cluster `name`'s Secret `<name>-operator-cert` and makes `bootstrap`'s
    /// admin client use it (a changed certificate replaces the client). Without: plain TCP.
    pub async fn use_tls(
        &self,
        name: &str,
        ns: &str,
        bootstrap: &str,
        tls: bool,
    ) -> Result<(), Error> {
        if !tls {
            self.lock(&self.kafka_tls).remove(bootstrap);
            return Ok(());
        }
        let secret_name = crate::plan::security::operator_cert_secret(name);
        let secrets: Api<k8s_openapi::api::core::v1::Secret> =
            Api::namespaced(self.client.clone(), ns);
        let secret = secrets
            .get_opt(&secret_name)
            .await?
            .ok_or_else(|| Error::Waiting(format!("Secret {secret_name} does not exist yet")))?;
        let data = secret.data.unwrap_or_default();
        let text = |key: &str| {
            data.get(key)
                .and_then(|b| String::from_utf8(b.0.clone()).ok())
                .ok_or_else(|| Error::Waiting(format!("Secret {secret_name} has no {key}")))
        };
        use crate::plan::security::{CA_CERT_KEY, TLS_CERT_KEY, TLS_KEY_KEY};
        let (ca, cert, key) = (text(CA_CERT_KEY)?, text(TLS_CERT_KEY)?, text(TLS_KEY_KEY)?);
        let id = material_id(&ca, &cert, &key);
        if self
            .lock(&self.kafka_tls)
            .get(bootstrap)
            .is_some_and(|t| t.id() == id)
        {
            return Ok(());
        }
        let tls = KafkaTls::new(&ca, &cert, &key)
            .map_err(|e| Error::Waiting(format!("Secret {secret_name}: {e}")))?;
        self.lock(&self.kafka_tls)
            .insert(bootstrap.to_string(), Arc::new(tls));
        Ok(())
    }

    fn lock<'a, T>(&self, m: &'a Mutex<T>) -> MutexGuard<'a, T> {
        match m.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The (shared) admin client of a bootstrap address, over the TLS loaded for it (see
    /// [`Context::kafka_bootstrap`]); new TLS material replaces the client.
    pub fn admin(&self, bootstrap: &str) -> Arc<AdminClient> {
        let tls = self.lock(&self.kafka_tls).get(bootstrap).cloned();
        let mut admins = self.lock(&self.admins);
        let current = admins
            .get(bootstrap)
            .filter(|a| a.tls_id() == tls.as_ref().map(|t| t.id()));
        if let Some(a) = current {
            return a.clone();
        }
        let admin = Arc::new(AdminClient::with_tls(bootstrap, self.kafka_timeout, tls));
        admins.insert(bootstrap.to_string(), admin.clone());
        admin
    }

    /// The consumer-group watches, by `namespace/cluster`: the in-memory history Burrow's rules
    /// read.
    pub fn group_trackers(&self) -> MutexGuard<'_, HashMap<String, GroupWatch>> {
        match self.trackers.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Records one poll of a cluster's consumer groups in its tracker (`key`: namespace/name;
    /// `polled`: per group, (topic, partition, committed, log end) of its committed
    /// partitions) and evaluates every group. Returns how long the tracker has watched without a
    /// gap (ms) and the evaluations. The rolling gate, the blue-green window and the exporter
    /// all poll through here, into the same tracker.
    pub fn observe_groups(
        &self,
        key: &str,
        now_ms: i64,
        polled: &PolledGroups,
    ) -> (i64, Vec<GroupHealth>) {
        self.group_trackers()
            .entry(key.to_string())
            .or_default()
            .observe(now_ms, polled)
    }

    /// Publishes a Warning (`warning`) or Normal event about `obj`.
    pub async fn note<K>(&self, obj: &K, warning: bool, reason: &str, note: String)
    where
        K: Resource<DynamicType = ()>,
    {
        let type_ = if warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        self.event(obj, type_, reason, note).await;
    }

    /// Publishes an event about `obj`; a failure to publish is logged, never fatal.
    pub async fn event<K>(&self, obj: &K, type_: EventType, reason: &str, note: String)
    where
        K: Resource<DynamicType = ()>,
    {
        let ev = Event {
            type_,
            reason: reason.to_string(),
            note: Some(note.chars().take(1000).collect()),
            action: reason.to_string(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &obj.object_ref(&())).await {
            tracing::warn!(error = %e, reason, "cannot publish event");
        }
    }

    fn failure_key<K: Resource<DynamicType = ()>>(obj: &K) -> String {
        format!(
            "{}/{}/{}",
            K::kind(&()),
            obj.meta().namespace.clone().unwrap_or_default(),
            obj.meta().name.clone().unwrap_or_default()
        )
    }

    /// Forgets the failures of `obj` (after a successful reconcile).
    pub fn succeeded<K: Resource<DynamicType = ()>>(&self, obj: &K) {
        if let Ok(mut f) = self.failures.lock() {
            f.remove(&Self::failure_key(obj));
        }
    }

    /// Counts a failure of `obj`; returns how many in a row.
    fn failed<K: Resource<DynamicType = ()>>(&self, obj: &K) -> u32 {
        match self.failures.lock() {
            Ok(mut f) => {
                let n = f.entry(Self::failure_key(obj)).or_insert(0);
                *n = n.saturating_add(1);
                *n
            }
            Err(_) => 1,
        }
    }
}

/// Everything a reconcile can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A Kafka request failed.
    #[error("Kafka: {0}")]
    Kafka(#[from] AdminError),
    /// No plan could be made.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The finalizer helper failed.
    #[error("finalizer: {0}")]
    Finalizer(String),
    /// The resource lacks a field the API server always sets.
    #[error("the resource has no {0}")]
    Missing(&'static str),
    /// Something the step needs is not there yet (a certificate Secret).
    #[error("waiting: {0}")]
    Waiting(String),
    /// A certificate could not be made or read.
    #[error("certificates: {0}")]
    Certs(#[from] crate::certs::CertError),
}

/// Backoff after the `n`th failure in a row: 2^n seconds, from 2 s up to 5 min.
pub fn backoff(n: u32) -> Duration {
    Duration::from_secs(2u64.saturating_pow(n.min(9)).min(300))
}

/// Requeue with backoff; logs the error with the object's name.
pub fn error_policy<K>(obj: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action
where
    K: Resource<DynamicType = ()>,
{
    let n = ctx.failed(obj.as_ref());
    let delay = backoff(n);
    tracing::warn!(
        kind = %K::kind(&()),
        namespace = obj.namespace().unwrap_or_default(),
        name = %obj.name_any(),
        failures = n,
        retry_in = ?delay,
        error = %error,
        "reconcile failed"
    );
    Action::requeue(delay)
}

/// Writes `status` as the object's whole status by server-side apply on `/status`, with the
/// operator's field manager: a field the status no longer has (a cleared `targetVersion`, a
/// finished roll's `blockedReason`) is removed, which a JSON merge patch of a struct that skips
/// absent fields cannot do.
pub async fn apply_status<K, S>(api: &Api<K>, name: &str, status: &S) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

/// The current time as RFC 3339, for condition transition times.
pub fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

/// `name` and `namespace` of a namespaced object.
pub fn name_ns<K: Resource>(obj: &K) -> Result<(String, String), Error> {
    let name = obj
        .meta()
        .name
        .clone()
        .ok_or(Error::Missing("metadata.name"))?;
    let ns = obj
        .meta()
        .namespace
        .clone()
        .ok_or(Error::Missing("metadata.namespace"))?;
    Ok((name, ns))
}

impl From<&crate::kafka::BrokerInfo> for crate::plan::rebalance::BrokerInfo {
    /// A registered broker as the replica planner sees it: its id and rack.
    fn from(b: &crate::kafka::BrokerInfo) -> Self {
        crate::plan::rebalance::BrokerInfo {
            id: b.id,
            rack: b.rack.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(2), Duration::from_secs(4));
        assert_eq!(backoff(8), Duration::from_secs(256));
        assert_eq!(backoff(9), Duration::from_secs(300));
        assert_eq!(backoff(60), Duration::from_secs(300));
    }
}
