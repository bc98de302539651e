//! `samsa-operator`: runs the KafkaCluster, KafkaTopic and KafkaUser controllers (the
//! default), or with `crds` writes the CRD YAML generated from the Rust types.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{predicates, watcher, Controller, Predicate, PredicateConfig, WatchStreamExt};
use kube::{Api, Client, ResourceExt};
use samsa_operator::crd::{KafkaCluster, KafkaTopic, KafkaUser};
use samsa_operator::leader::LeaseLock;
use samsa_operator::metrics::Metrics;
use samsa_operator::plan::cluster::{PlanContext, CLUSTER_LABEL};
use samsa_operator::reconcile::{self, Context};
use tokio::sync::watch;

/// Samsa operator: KafkaCluster, KafkaTopic and KafkaUser on Kubernetes.
#[derive(Parser, Debug)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the controllers (the default).
    Run(Box<RunArgs>),
    /// Write the CRD YAML files generated from the Rust types.
    Crds {
        /// Directory the files are written to.
        #[arg(long, env = "SAMSA_CRDS_DIR", default_value = "crds")]
        out: PathBuf,
    },
    /// Poll one cluster for the cluster metrics, as the operator's poll loop does, and print
    /// them in the Prometheus text format (no Kubernetes needed).
    Metrics(MetricsArgs),
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
struct MetricsArgs {
    /// Kafka listener of the cluster: host:port, or several separated by commas.
    #[arg(long)]
    bootstrap: String,

    /// Value of the `namespace` label of every series.
    #[arg(long, default_value = "default")]
    namespace: String,

    /// Value of the `cluster` label of every series.
    #[arg(long, default_value = "local")]
    cluster: String,

    /// Polls before printing; the lag seconds and group status need two or more.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    polls: u32,

    /// Seconds between two polls.
    #[arg(long, default_value_t = 10)]
    interval_seconds: u64,

    /// Milliseconds allowed for connecting to a broker and for each Kafka request.
    #[arg(long, default_value_t = DEFAULT_KAFKA_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(100..=600_000))]
    kafka_timeout_ms: u64,
}

/// Default of `--kafka-timeout-ms`.
const DEFAULT_KAFKA_TIMEOUT_MS: u64 = 10_000;

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Args, Debug, Clone)]
struct RunArgs {
    /// Address of the HTTP endpoint serving /metrics (Prometheus text) and /healthz.
    #[arg(
        long,
        env = "SAMSA_OPERATOR_METRICS_LISTEN",
        default_value = "0.0.0.0:8080"
    )]
    metrics_listen: SocketAddr,

    /// Watch only this namespace; every namespace when unset.
    #[arg(long, env = "SAMSA_OPERATOR_NAMESPACE")]
    namespace: Option<String>,

    /// Seconds between two polls of every KafkaCluster for the cluster metrics on /metrics
    /// (kafka_consumergroup_lag, kafka_topic_partition_*, lag seconds, group status, ...;
    /// operator/README.md "Cluster metrics"). The poll feeds the consumer-health tracker the
    /// rolling restart reads. 0 turns it off.
    #[arg(
        long,
        env = "SAMSA_OPERATOR_METRICS_INTERVAL_SECONDS",
        default_value_t = 10
    )]
    metrics_interval_seconds: u64,

    /// Elect a leader on a Lease so only one replica reconciles.
    #[arg(long, env = "SAMSA_OPERATOR_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    leader_election: bool,

    /// Name of the leader-election Lease.
    #[arg(
        long,
        env = "SAMSA_OPERATOR_LEASE_NAME",
        default_value = "samsa-operator"
    )]
    lease_name: String,

    /// Namespace of the leader-election Lease (the operator's own; `POD_NAMESPACE` when set).
    #[arg(long, env = "SAMSA_OPERATOR_LEASE_NAMESPACE")]
    lease_namespace: Option<String>,

    /// This replica's identity in the Lease (`POD_NAME`, else the host name, when unset).
    #[arg(long, env = "SAMSA_OPERATOR_IDENTITY")]
    identity: Option<String>,

    /// Seconds a Lease holder stays leader without renewing.
    #[arg(long, env = "SAMSA_OPERATOR_LEASE_DURATION_SECONDS", default_value_t = 15,
          value_parser = clap::value_parser!(u64).range(2..=300))]
    lease_duration_seconds: u64,

    /// Seconds between two renewals (or acquisition attempts) of the Lease.
    #[arg(long, env = "SAMSA_OPERATOR_LEASE_RENEW_SECONDS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=100))]
    lease_renew_seconds: u64,

    /// Broker image repository: a cluster without `spec.image` runs `<repository>:<spec.version>`.
    #[arg(
        long,
        env = "SAMSA_OPERATOR_BROKER_IMAGE_REPOSITORY",
        default_value = "samsa/samsa-broker"
    )]
    broker_image_repository: String,

    /// DNS domain of the Kubernetes cluster, used in the brokers' advertised names.
    #[arg(
        long,
        env = "SAMSA_OPERATOR_CLUSTER_DOMAIN",
        default_value = "cluster.local"
    )]
    cluster_domain: String,

    /// Labels of the operator's own pods, as key=value,...: each cluster's NetworkPolicy lets
    /// pods with these labels in the operator's namespace (`POD_NAMESPACE`; any namespace when
    /// unset) reach the brokers' CONTROLPLANE listener (port 9091) of a secured cluster.
    #[arg(
        long,
        env = "SAMSA_OPERATOR_POD_LABELS",
        default_value = "app.kubernetes.io/name=samsa-operator",
        value_parser = parse_labels
    )]
    operator_pod_labels: Labels,

    /// Reach every cluster's Kafka listener at these host:port addresses instead of its
    /// `<name>-bootstrap.<namespace>.svc` Service (tests; an operator running outside the
    /// cluster).
    #[arg(long, env = "SAMSA_OPERATOR_KAFKA_BOOTSTRAP")]
    kafka_bootstrap: Option<String>,

    /// Milliseconds allowed for connecting to a broker and for each Kafka request.
    #[arg(long, env = "SAMSA_OPERATOR_KAFKA_TIMEOUT_MS", default_value_t = DEFAULT_KAFKA_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(100..=600_000))]
    kafka_timeout_ms: u64,

    /// Log format.
    #[arg(long, env = "SAMSA_OPERATOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    /// Log filter in tracing's EnvFilter syntax (e.g. "info", "samsa_operator=debug").
    #[arg(long, env = "SAMSA_OPERATOR_LOG", default_value = "info")]
    log: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Crds { out }) => write_crds(&out),
        Some(Command::Run(args)) => run_blocking(*args),
        Some(Command::Metrics(args)) => print_metrics(&args),
        None => run_blocking(cli.run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("samsa-operator: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn write_crds(out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    for (file, crd) in samsa_operator::crd::all_crds() {
        let path = out.join(&file);
        std::fs::write(&path, samsa_operator::crd::crd_yaml(&crd)?)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// `samsa-operator metrics`: polls the cluster at `--bootstrap` `--polls` times through the
/// poll loop's own steps (snapshot, the group tracker, [`Exporter::publish`] into a registry of
/// its own) and prints the registry.
///
/// [`Exporter::publish`]: samsa_operator::exporter::Exporter::publish
fn print_metrics(args: &MetricsArgs) -> anyhow::Result<()> {
    use samsa_operator::exporter::{poll, Exporter};

    let registry = prometheus::Registry::new();
    let exporter = Exporter::new(&registry)?;
    let admin = samsa_operator::kafka::AdminClient::new(
        &args.bootstrap,
        Duration::from_millis(args.kafka_timeout_ms),
    );
    let mut watch = samsa_operator::reconcile::GroupWatch::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        for n in 1..=args.polls {
            if n > 1 {
                tokio::time::sleep(Duration::from_secs(args.interval_seconds)).await;
            }
            let observe = |now_ms, groups: &_| watch.observe(now_ms, groups).1;
            poll::poll_cluster(&admin, &exporter, &args.namespace, &args.cluster, observe)
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "cannot poll the cluster at --bootstrap {} (poll {n} of {}): {e}",
                        args.bootstrap,
                        args.polls
                    )
                })?;
        }
        anyhow::Ok(())
    })?;
    let text = prometheus::TextEncoder::new().encode_to_string(&registry.gather())?;
    let mut out = std::io::stdout().lock();
    std::io::Write::write_all(&mut out, text.as_bytes())?;
    std::io::Write::flush(&mut out)?;
    Ok(())
}

fn init_logs(args: &RunArgs) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
        .map_err(|e| anyhow::anyhow!("--log {:?}: {e}", args.log))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match args.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
    Ok(())
}

fn run_blocking(args: RunArgs) -> anyhow::Result<()> {
    init_logs(&args)?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

/// Resolves on SIGTERM or Ctrl-C.
async fn termination() {
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Pod labels from `key=value,...`.
#[derive(Debug, Clone)]
struct Labels(std::collections::BTreeMap<String, String>);

fn parse_labels(v: &str) -> Result<Labels, String> {
    let mut out = std::collections::BTreeMap::new();
    for item in v.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (k, val) = item
            .split_once('=')
            .ok_or_else(|| format!("{item:?}: expected key=value"))?;
        if k.trim().is_empty() {
            return Err(format!("{item:?}: empty label key"));
        }
        out.insert(k.trim().to_string(), val.trim().to_string());
    }
    if out.is_empty() {
        return Err("no label: expected key=value,...".into());
    }
    Ok(Labels(out))
}

fn identity(args: &RunArgs) -> String {
    args.identity
        .clone()
        .or_else(|| std::env::var("POD_NAME").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("samsa-operator-{}", std::process::id()))
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let client = Client::try_default()
        .await
        .map_err(|e| anyhow::anyhow!("no Kubernetes client configuration: {e}"))?;
    let metrics = Arc::new(Metrics::new()?);
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    let listener = samsa_operator::metrics::bind(args.metrics_listen)
        .await
        .map_err(|e| anyhow::anyhow!("--metrics-listen {}: {e}", args.metrics_listen))?;
    let http = tokio::spawn(samsa_operator::metrics::serve(
        listener,
        metrics.clone(),
        stopped(stop_rx.clone()),
    ));
    tracing::info!(listen = %args.metrics_listen, "serving /metrics and /healthz");

    let signal_tx = stop_tx.clone();
    tokio::spawn(async move {
        termination().await;
        tracing::info!("termination signal: shutting down");
        let _ = signal_tx.send(true);
    });

    let identity = identity(&args);
    let lost_leadership = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let lease = if args.leader_election {
        let ns = args
            .lease_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| client.default_namespace().to_string());
        let lock = Arc::new(LeaseLock::new(
            client.clone(),
            &ns,
            &args.lease_name,
            &identity,
            Duration::from_secs(args.lease_duration_seconds),
        ));
        tracing::info!(lease = %args.lease_name, namespace = %ns, %identity, "waiting for leadership");
        let renew = Duration::from_secs(args.lease_renew_seconds);
        let mut rx = stop_rx.clone();
        loop {
            match lock.try_acquire_or_renew().await {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "leader election round failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(renew) => {}
                _ = rx.wait_for(|s| *s) => {
                    let _ = stop_tx.send(true);
                    let _ = http.await;
                    return Ok(());
                }
            }
        }
        tracing::info!(%identity, "leading");
        metrics.set_leader(true);
        let keeper = lock.clone();
        let keeper_metrics = metrics.clone();
        let keeper_stop = stop_tx.clone();
        let lease_duration = Duration::from_secs(args.lease_duration_seconds);
        let mut keeper_rx = stop_rx.clone();
        let lost = lost_leadership.clone();
        tokio::spawn(async move {
            let mut last_renewal = tokio::time::Instant::now();
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(renew) => {}
                    _ = keeper_rx.wait_for(|s| *s) => return,
                }
                match keeper.try_acquire_or_renew().await {
                    Ok(true) => last_renewal = tokio::time::Instant::now(),
                    Ok(false) => {
                        tracing::error!("leadership lost to another replica: stopping");
                        lost.store(true, std::sync::atomic::Ordering::SeqCst);
                        keeper_metrics.set_leader(false);
                        keeper_metrics.set_healthy(false);
                        let _ = keeper_stop.send(true);
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot renew the lease");
                        if last_renewal.elapsed() >= lease_duration {
                            tracing::error!("lease expired without renewal: stopping");
                            lost.store(true, std::sync::atomic::Ordering::SeqCst);
                            keeper_metrics.set_leader(false);
                            keeper_metrics.set_healthy(false);
                            let _ = keeper_stop.send(true);
                            return;
                        }
                    }
                }
            }
        });
        Some(lock)
    } else {
        metrics.set_leader(true);
        None
    };

    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "samsa-operator".into(),
            instance: Some(identity.clone()),
        },
    );
    let ctx = Arc::new(Context::new(
        client.clone(),
        recorder,
        metrics.clone(),
        PlanContext {
            image_repository: args.broker_image_repository.clone(),
            cluster_domain: args.cluster_domain.clone(),
            operator: samsa_operator::plan::security::OperatorPeer {
                namespace: std::env::var("POD_NAMESPACE")
                    .ok()
                    .filter(|n| !n.is_empty()),
                pod_labels: args.operator_pod_labels.0.clone(),
            },
        },
        args.kafka_bootstrap.clone(),
        Duration::from_millis(args.kafka_timeout_ms),
    ));

    if args.metrics_interval_seconds > 0 {
        let exporter = Arc::new(samsa_operator::exporter::Exporter::new(metrics.registry())?);
        tokio::spawn(samsa_operator::exporter::poll::run(
            ctx.clone(),
            exporter,
            args.namespace.clone(),
            Duration::from_secs(args.metrics_interval_seconds),
            stop_rx.clone(),
        ));
    }

    fn api<K>(client: &Client, ns: &Option<String>) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        match ns {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
    let owned = watcher::Config::default().labels("app.kubernetes.io/managed-by=samsa-operator");
    // A KafkaCluster triggers a reconcile when its spec (generation) or annotations change,
    // not when only its status does: the operator's own status writes (a roll's progress and
    // its gates' figures change on every pass) would otherwise start the next pass at once.
    // Rolls are driven by the requeue each decision asks for and by pod events.
    let (cluster_store, cluster_writer) = reflector::store();
    let cluster_changes = watcher(
        api::<KafkaCluster>(&client, &args.namespace),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(cluster_writer)
    .applied_objects()
    .predicate_filter(
        predicates::generation.combine(predicates::annotations),
        PredicateConfig::default(),
    );
    let clusters = Controller::for_stream(cluster_changes, cluster_store)
        .owns(api::<StatefulSet>(&client, &args.namespace), owned.clone())
        .owns(api::<Service>(&client, &args.namespace), owned.clone())
        .owns(api::<ConfigMap>(&client, &args.namespace), owned.clone())
        // Broker pods (the StatefulSet's, so not owned by the KafkaCluster): a pod's scheduling gives
        // it a node whose rack the broker waits for, and its readiness is in the status.
        .watches(api::<Pod>(&client, &args.namespace), owned, |pod: Pod| {
            let cluster = pod.labels().get(CLUSTER_LABEL)?.clone();
            let ns = pod.namespace()?;
            Some(ObjectRef::<KafkaCluster>::new(&cluster).within(&ns))
        })
        .graceful_shutdown_on(stopped(stop_rx.clone()))
        .run(
            reconcile::cluster::reconcile,
            reconcile::error_policy,
            ctx.clone(),
        )
        .for_each(|_| async {});
    let topics = Controller::new(
        api::<KafkaTopic>(&client, &args.namespace),
        watcher::Config::default(),
    )
    .graceful_shutdown_on(stopped(stop_rx.clone()))
    .run(
        reconcile::topic::reconcile,
        reconcile::error_policy,
        ctx.clone(),
    )
    .for_each(|_| async {});
    // A user's Secret (owned by its KafkaUser) deleted or edited is written again.
    let users = Controller::new(
        api::<KafkaUser>(&client, &args.namespace),
        watcher::Config::default(),
    )
    .owns(
        api::<Secret>(&client, &args.namespace),
        watcher::Config::default().labels(&format!(
            "app.kubernetes.io/managed-by=samsa-operator,{}",
            reconcile::user::USER_LABEL
        )),
    )
    .graceful_shutdown_on(stopped(stop_rx.clone()))
    .run(reconcile::user::reconcile, reconcile::error_policy, ctx)
    .for_each(|_| async {});
    tracing::info!(
        namespace = args.namespace.as_deref().unwrap_or("*"),
        "controllers running"
    );
    tokio::join!(clusters, topics, users);
    tracing::info!("controllers stopped");

    let lost = lost_leadership.load(std::sync::atomic::Ordering::SeqCst);
    let _ = stop_tx.send(true);
    if let Some(lock) = lease {
        if let Err(e) = lock.release().await {
            tracing::warn!(error = %e, "cannot release the lease");
        }
    }
    let _ = http.await;
    if lost {
        anyhow::bail!("leadership lost: exiting so a restart campaigns again");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn metrics_args(argv: &[&str]) -> Result<MetricsArgs, clap::Error> {
        let cli = Cli::try_parse_from(argv)?;
        match cli.command {
            Some(Command::Metrics(args)) => Ok(args),
            other => panic!("not the metrics subcommand: {other:?}"),
        }
    }

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn metrics_defaults() {
        let args = metrics_args(&["samsa-operator", "metrics", "--bootstrap", "b:9092"]).unwrap();
        assert_eq!(
            args,
            MetricsArgs {
                bootstrap: "b:9092".into(),
                namespace: "default".into(),
                cluster: "local".into(),
                polls: 1,
                interval_seconds: 10,
                kafka_timeout_ms: DEFAULT_KAFKA_TIMEOUT_MS,
            }
        );
    }

    #[test]
    fn metrics_every_flag() {
        let args = metrics_args(&[
            "samsa-operator",
            "metrics",
            "--bootstrap",
            "a:1,b:2",
            "--namespace",
            "kafka",
            "--cluster",
            "main",
            "--polls",
            "3",
            "--interval-seconds",
            "2",
            "--kafka-timeout-ms",
            "500",
        ])
        .unwrap();
        assert_eq!(
            args,
            MetricsArgs {
                bootstrap: "a:1,b:2".into(),
                namespace: "kafka".into(),
                cluster: "main".into(),
                polls: 3,
                interval_seconds: 2,
                kafka_timeout_ms: 500,
            }
        );
    }

    #[test]
    fn metrics_refuses_bad_arguments() {
        let missing = Cli::try_parse_from(["samsa-operator", "metrics"]).unwrap_err();
        assert_eq!(
            missing.kind(),
            clap::error::ErrorKind::MissingRequiredArgument
        );
        let zero = Cli::try_parse_from([
            "samsa-operator",
            "metrics",
            "--bootstrap",
            "b:1",
            "--polls",
            "0",
        ])
        .unwrap_err();
        assert_eq!(zero.kind(), clap::error::ErrorKind::ValueValidation);
        // The run flags belong to `run` (or no subcommand), not to `metrics`.
        let foreign = Cli::try_parse_from([
            "samsa-operator",
            "metrics",
            "--bootstrap",
            "b:1",
            "--leader-election",
            "false",
        ])
        .unwrap_err();
        assert_eq!(foreign.kind(), clap::error::ErrorKind::UnknownArgument);
    }
}
