//! The network side: the Kafka listener, one task per connection, the metrics endpoint and
//! the background tasks (retention, timed flush), and a clean shutdown.
//!
//! A connection reads one frame at a time and answers in order, as Kafka does. Only a frame
//! that cannot be parsed closes its connection; every other problem is a Kafka error code.

mod handlers;
mod listeners;
mod send;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::BrokerConfig;
use crate::group::Groups;
use crate::metrics::{Health, Metrics};
use crate::protocol::codec::{self, FrameError};
use crate::quorum::{ControllerClient, QuorumConfig, QuorumHandle};
use crate::replication::Replication;
use crate::security::store::LocalStore;
use crate::security::{ConnectionInfo, Session};
use crate::topics::TopicRegistry;
use handlers::SecurityContext;

pub use handlers::Broker;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A started broker: its bound addresses and a handle to stop it.
pub struct RunningBroker {
    /// Kafka listener address. A controller-only process (`--process-roles controller`) serves
    /// no Kafka clients: this is then its configured `--listen` address, and nothing is bound.
    pub kafka_addr: SocketAddr,
    /// Every Kafka listener's name and bound address, in --listeners order (empty on a
    /// controller-only process).
    pub listener_addrs: Vec<(String, SocketAddr)>,
    /// Metrics/health address.
    pub metrics_addr: SocketAddr,
    /// Replication listener address (cluster mode).
    pub replication_addr: Option<SocketAddr>,
    /// Controller listener address (cluster mode, controller role).
    pub controller_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    done: tokio::task::JoinHandle<()>,
    replication: Option<Replication>,
    quorum: Option<QuorumHandle>,
    health: Arc<Health>,
    controlled_shutdown_timeout: Duration,
}

/// Longest wait for a peer to take the controller quorum's leadership at shutdown.
const QUORUM_HANDOVER_TIMEOUT: Duration = Duration::from_secs(3);

impl RunningBroker {
    /// Stops the process's services in an order no client notices: `/readyz` turns 503 at
    /// once; in a cluster, the partition leaderships move to other in-sync replicas (controlled
    /// shutdown, bounded by `--controlled-shutdown-timeout-ms`) and a voter that leads the
    /// controller quorum hands that leadership over; only then the Kafka listener closes, every
    /// log is closed cleanly, replication stops and the controller stops last.
    pub async fn shutdown(self) {
        let started = std::time::Instant::now();
        self.health.set_stopping();
        let deadline = tokio::time::Instant::now() + self.controlled_shutdown_timeout;
        if let Some(r) = &self.replication {
            r.manager.controlled_shutdown(deadline).await;
        }
        if let Some(q) = &self.quorum {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            q.hand_over_leadership(
                QUORUM_HANDOVER_TIMEOUT
                    .min(left)
                    .max(Duration::from_millis(500)),
            )
            .await;
        }
        let _ = self.shutdown.send(true);
        let _ = self.done.await;
        if let Some(r) = self.replication {
            r.shutdown().await;
        }
        if let Some(q) = self.quorum {
            q.shutdown().await;
        }
        tracing::info!(
            took_ms = started.elapsed().as_millis() as u64,
            "shutdown complete"
        );
    }

    /// The controller quorum's leader as this process knows it (`None` without a controller
    /// role or while an election runs).
    pub fn controller_leader(&self) -> Option<u64> {
        self.quorum.as_ref().and_then(QuorumHandle::leader)
    }

    /// Readiness and liveness, as `/readyz` and `/healthz` answer them.
    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }
}

/// Opens the data dir, binds both listeners and serves until [`RunningBroker::shutdown`].
pub async fn start(config: BrokerConfig) -> anyhow::Result<RunningBroker> {
    let mut config = config.resolve_node_id().map_err(anyhow::Error::msg)?;
    let roles = config.roles();
    if config.controller_quorum_voters.is_none() && !(roles.broker && roles.controller) {
        anyhow::bail!(
            "--process-roles {} needs --controller-quorum-voters: without a quorum, the single \
             node is both broker and controller (the default broker,controller)",
            if roles.broker { "broker" } else { "controller" }
        );
    }
    if config.controller_quorum_voters.is_some() && !roles.broker {
        return start_controller(config).await;
    }
    config.broker_rack = crate::rack::resolve(&config).await?;
    let config = Arc::new(config);
    let specs = config.listener_specs().map_err(anyhow::Error::msg)?;
    let metrics = Arc::new(Metrics::new()?);
    let started = Instant::now();
    let registry = {
        let (config, metrics) = (config.clone(), metrics.clone());
        tokio::task::spawn_blocking(move || TopicRegistry::open(config, metrics)).await??
    };
    let registry = Arc::new(registry);
    let topics = registry.all().len();
    let bound = listeners::bind_all(&specs).await?;
    let metrics_listener = TcpListener::bind(config.metrics_listen)
        .await
        .map_err(|e| anyhow::anyhow!("binding metrics listener {}: {e}", config.metrics_listen))?;
    let listener_addrs: Vec<(String, SocketAddr)> = bound
        .iter()
        .map(|b| (b.name().to_string(), b.addr))
        .collect();
    let (kafka_addr, advertised) = match bound.first() {
        Some(b) => (b.addr, (b.advertised.host.clone(), b.advertised.port)),
        None => anyhow::bail!("no Kafka listener configured"),
    };
    // An ephemeral listen port (tests) is advertised as bound.
    let endpoints: Vec<crate::controller::Endpoint> =
        bound.iter().map(|b| b.advertised.clone()).collect();
    let metrics_addr = metrics_listener.local_addr()?;
    let (quorum, replication) = if config.controller_quorum_voters.is_some() {
        start_cluster(
            &config,
            &registry,
            &metrics,
            advertised.clone(),
            endpoints.clone(),
        )
        .await?
    } else {
        (None, None)
    };
    let groups = {
        let registry = registry.clone();
        Arc::new(tokio::task::spawn_blocking(move || Groups::open(registry)).await??)
    };
    let broker = Arc::new(
        Broker::new(
            registry.clone(),
            groups.clone(),
            metrics.clone(),
            advertised.clone(),
            replication.as_ref().map(|r| r.manager.clone()),
        )
        .with_quorum(quorum.as_ref().map(QuorumHandle::view))
        .with_security(SecurityContext {
            local: match &replication {
                Some(_) => None,
                None => Some(LocalStore::open(&config.data_dir)?),
            },
            authorizer: config.authorizer().map_err(anyhow::Error::msg)?,
        })
        .with_listeners(endpoints.clone()),
    );
    let health = Arc::new(Health::new());
    {
        let registry = registry.clone();
        health.watch(
            "log directory",
            Box::new(move || match registry.log_dir_failure() {
                Some(why) => Err(format!("offline after a failed write: {why}")),
                None => Ok(()),
            }),
        );
    }
    if let Some(q) = &quorum {
        health.watch("controller", q.liveness_check());
    }
    if let Some(r) = &replication {
        health.watch("replication", r.liveness_check());
    }
    let (shutdown_tx, shutdown_rx) = watch::channel(false);

    let metrics_task = tokio::spawn(crate::metrics::serve(
        metrics_listener,
        metrics.clone(),
        health.clone(),
    ));
    let maintenance = tokio::spawn(maintenance(registry.clone(), shutdown_rx.clone()));
    let cleaner = tokio::spawn(log_cleaner(registry.clone(), shutdown_rx.clone()));
    let ticker = tokio::spawn(groups.clone().run_ticker());
    let reload_every = Duration::from_millis(config.ssl_reload_interval_ms);
    let tls_reloaders: Vec<_> = bound
        .iter()
        .filter_map(|b| b.tls())
        .map(|t| tokio::spawn(t.clone().watch_files(reload_every)))
        .collect();
    // In a cluster, the groups of the offsets partitions this broker leads.
    let loader = replication
        .is_some()
        .then(|| tokio::spawn(groups.clone().run_loader()));
    let lag = tokio::spawn(export_lag(
        groups.clone(),
        registry.clone(),
        metrics.clone(),
    ));
    match replication.as_ref().map(|r| r.manager.clone()) {
        // A cluster member is ready once the controllers know it as a live broker, so that
        // clients that bootstrap from it see it in Metadata.
        Some(manager) => {
            let health = health.clone();
            tokio::spawn(async move {
                manager.wait_registered().await;
                health.set_ready();
                tracing::info!("registered with the controllers: ready");
            });
        }
        None => health.set_ready(),
    }
    let described: Vec<String> = bound
        .iter()
        .zip(&specs)
        .map(|(b, s)| {
            format!(
                "{}://{} ({}, advertised {}:{})",
                b.name(),
                b.addr,
                s.protocol,
                b.advertised.host,
                b.advertised.port
            )
        })
        .collect();
    tracing::info!(
        listen = %kafka_addr, advertised = %format!("{}:{}", advertised.0, advertised.1),
        listeners = %described.join(", "),
        metrics = %metrics_addr, data_dir = %config.data_dir.display(), topics,
        startup_ms = started.elapsed().as_millis() as u64, "samsa-broker ready"
    );
    let done = tokio::spawn(listeners::accept_loop(
        bound,
        broker,
        shutdown_rx,
        move || {
            metrics_task.abort();
            for t in &tls_reloaders {
                t.abort();
            }
            maintenance.abort();
            cleaner.abort();
            ticker.abort();
            if let Some(loader) = &loader {
                loader.abort();
            }
            lag.abort();
            registry.close();
            tracing::info!("logs closed cleanly");
        },
    ));
    Ok(RunningBroker {
        kafka_addr,
        listener_addrs,
        metrics_addr,
        replication_addr: replication.as_ref().map(|r| r.manager.replication_addr()),
        controller_addr: quorum.as_ref().map(QuorumHandle::local_addr),
        shutdown: shutdown_tx,
        done,
        replication,
        quorum,
        health,
        controlled_shutdown_timeout: Duration::from_millis(config.controlled_shutdown_timeout_ms),
    })
}

/// Cluster mode: the controller (when this process is one) and replication.
async fn start_cluster(
    config: &Arc<BrokerConfig>,
    registry: &Arc<TopicRegistry>,
    metrics: &Arc<Metrics>,
    advertised: (String, i32),
    listeners: Vec<crate::controller::Endpoint>,
) -> anyhow::Result<(Option<QuorumHandle>, Option<Replication>)> {
    // Loads the internal TLS files (once for the process) when they are set.
    let qc = QuorumConfig::from_broker(config)?;
    let internal_tls = qc.tls.clone();
    let quorum = if config.roles().controller {
        Some(crate::quorum::start(qc, metrics.quorum.clone()).await?)
    } else {
        None
    };
    let image = match &quorum {
        Some(q) => q.image(),
        None => {
            let client = ControllerClient::new(config.voters(), Duration::from_secs(5))
                .with_tls(internal_tls.clone());
            let (rx, _task) = client.watch();
            rx
        }
    };
    let replication = crate::replication::start(
        config.clone(),
        registry.clone(),
        metrics.clone(),
        (image, quorum.as_ref().map(QuorumHandle::log_progress)),
        quorum.as_ref().map(QuorumHandle::local_voters),
        (advertised, listeners),
        internal_tls,
    )
    .await?;
    Ok((quorum, Some(replication)))
}

/// A controller-only process: the metadata quorum, its metrics and health endpoints, and no
/// Kafka listener, logs or replication. Ready once its quorum serves.
async fn start_controller(config: BrokerConfig) -> anyhow::Result<RunningBroker> {
    let metrics = Arc::new(Metrics::new()?);
    let metrics_listener = TcpListener::bind(config.metrics_listen)
        .await
        .map_err(|e| anyhow::anyhow!("binding metrics listener {}: {e}", config.metrics_listen))?;
    let metrics_addr = metrics_listener.local_addr()?;
    let qc = QuorumConfig::from_broker(&config)?;
    let quorum = crate::quorum::start(qc, metrics.quorum.clone()).await?;
    let health = Arc::new(Health::new());
    health.watch("controller", quorum.liveness_check());
    health.set_ready();
    let metrics_task = tokio::spawn(crate::metrics::serve(
        metrics_listener,
        metrics,
        health.clone(),
    ));
    let (shutdown_tx, mut shutdown_rx) = watch::channel(false);
    let done = tokio::spawn(async move {
        let _ = shutdown_rx.changed().await;
        metrics_task.abort();
    });
    tracing::info!(
        controller = %quorum.local_addr(), metrics = %metrics_addr,
        "samsa controller ready (process roles: controller; no Kafka listener)"
    );
    Ok(RunningBroker {
        kafka_addr: config.listen,
        listener_addrs: Vec::new(),
        metrics_addr,
        replication_addr: None,
        controller_addr: Some(quorum.local_addr()),
        shutdown: shutdown_tx,
        done,
        replication: None,
        quorum: Some(quorum),
        health,
        controlled_shutdown_timeout: Duration::from_millis(config.controlled_shutdown_timeout_ms),
    })
}

/// Refreshes the consumer-lag gauges every few seconds.
async fn export_lag(groups: Arc<Groups>, registry: Arc<TopicRegistry>, metrics: Arc<Metrics>) {
    let mut every = tokio::time::interval(LAG_EXPORT_INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut exported = crate::group::LagSeries::default();
    loop {
        every.tick().await;
        groups.export_lag(&registry, &metrics, &mut exported);
    }
}

/// How often the consumer-lag gauges are refreshed.
pub const LAG_EXPORT_INTERVAL: Duration = Duration::from_secs(2);

/// Delay before the first retention check after start.
const INITIAL_TASK_DELAY: Duration = Duration::from_secs(30);

async fn maintenance(registry: Arc<TopicRegistry>, mut shutdown: watch::Receiver<bool>) {
    let retention_every =
        Duration::from_millis(registry.static_broker().log_retention_check_interval_ms);
    // Like Kafka's initial task delay: the first check runs a while after start.
    let first_check = tokio::time::Instant::now() + retention_every.min(INITIAL_TASK_DELAY);
    let mut retention = tokio::time::interval_at(first_check, retention_every);
    let mut flush = tokio::time::interval(Duration::from_millis(500));
    let expire_every = Duration::from_millis(
        registry
            .static_broker()
            .producer_id_expiration_check_interval_ms,
    );
    let mut expire =
        tokio::time::interval_at(tokio::time::Instant::now() + expire_every, expire_every);
    retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    expire.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = retention.tick() => on_blocking_thread(&registry, TopicRegistry::apply_retention).await,
            _ = flush.tick() => on_blocking_thread(&registry, TopicRegistry::flush_due).await,
            _ = expire.tick() => on_blocking_thread(&registry, TopicRegistry::expire_producers).await,
            _ = shutdown.changed() => return,
        }
    }
}

/// Runs `task(registry, now_ms())` on a blocking thread and waits for it.
async fn on_blocking_thread(
    registry: &Arc<TopicRegistry>,
    task: impl FnOnce(&TopicRegistry, i64) + Send + 'static,
) {
    let r = registry.clone();
    let _ = tokio::task::spawn_blocking(move || task(&r, now_ms())).await;
}

/// The log cleaner: every `log.cleaner.backoff.ms`, one round over the compacted partitions on
/// a blocking thread (rounds never overlap: the next waits for the previous one).
async fn log_cleaner(registry: Arc<TopicRegistry>, mut shutdown: watch::Receiver<bool>) {
    if !registry.static_broker().log_cleaner_enable {
        return;
    }
    let backoff = Duration::from_millis(registry.static_broker().log_cleaner_backoff_ms);
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + backoff, backoff);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => on_blocking_thread(&registry, |r, now| { r.clean_logs(now); }).await,
            _ = shutdown.changed() => return,
        }
    }
}

/// Serves one connection, plain or TLS: reads a frame, answers it, until the client closes,
/// sends a frame that cannot be served, or the broker shuts down.
async fn serve_connection<R: AsyncRead + Unpin + Send, W: send::ReplySink>(
    read_half: R,
    mut write_half: W,
    info: ConnectionInfo,
    broker: Arc<Broker>,
    mut shutdown: watch::Receiver<bool>,
) {
    let metrics = broker.metrics().clone();
    metrics.connections.inc();
    let peer = info.peer;
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    let max = broker.registry().static_broker().socket_request_max_bytes;
    let mut session = Session::new(info);
    loop {
        let mut prefix = [0u8; 4];
        let read = tokio::select! {
            r = reader.read_exact(&mut prefix) => r,
            _ = shutdown.changed() => break,
        };
        if read.is_err() {
            break; // closed by the client
        }
        // Before authentication a frame is at most Kafka's sasl.server.max.receive.size.
        let limit = if session.authenticated() {
            max
        } else {
            max.min(SASL_MAX_RECEIVE_SIZE)
        };
        let size = match codec::frame_size(prefix, limit) {
            Ok(size) => size,
            Err(e) => {
                reject(&metrics, peer, "bad_size", &e);
                break;
            }
        };
        // Grow the buffer as bytes arrive: a size prefix alone reserves no memory.
        let mut frame = Vec::with_capacity(size.min(64 * 1024));
        let got = (&mut reader)
            .take(size as u64)
            .read_to_end(&mut frame)
            .await;
        if got.map_or(true, |n| n != size) {
            metrics
                .rejected_frames
                .with_label_values(&["truncated"])
                .inc();
            tracing::debug!(%peer, size, "connection closed mid-frame");
            break;
        }
        metrics.network_in.inc_by(size as u64 + 4);
        if session.sasl_raw && !session.authenticated() {
            // SaslHandshake v0: the SASL tokens follow as bare size-prefixed frames.
            let Some(token) = broker.sasl_raw_token(&frame, &mut session) else {
                break;
            };
            let mut out = Vec::with_capacity(token.len() + 4);
            out.extend_from_slice(&(token.len() as u32).to_be_bytes());
            out.extend_from_slice(&token);
            let reply = crate::protocol::reply::Reply::from(Bytes::from(out));
            metrics.network_out.inc_by(reply.len());
            if write_half.send(&reply).await.is_err() {
                break;
            }
            continue;
        }
        let request = match codec::decode_request(Bytes::from(frame)) {
            Ok(r) => r,
            Err(e) => {
                let reason = match &e {
                    FrameError::BadSize { .. } => "bad_size",
                    FrameError::BadHeader(_) => "bad_header",
                    FrameError::UnknownApi { .. } => "unknown_api",
                    FrameError::UnsupportedVersion { .. } => "unsupported_version",
                    FrameError::BadBody { .. } => "bad_body",
                };
                reject(&metrics, peer, reason, &e);
                break;
            }
        };
        let Some(reply) = broker.handle(request, &mut session).await else {
            break;
        };
        if !reply.is_empty() {
            metrics.network_out.inc_by(reply.len());
            if let Err(e) = write_half.send(&reply).await {
                tracing::debug!(%peer, error = %e, "connection closed while sending a response");
                break;
            }
        }
        if session.close_after_reply {
            break;
        }
    }
    metrics.connections.dec();
}

/// Largest frame read from a client before it authenticates (Kafka's
/// sasl.server.max.receive.size).
const SASL_MAX_RECEIVE_SIZE: i32 = 512 * 1024;

fn reject(metrics: &Metrics, peer: SocketAddr, reason: &str, e: &FrameError) {
    metrics.rejected_frames.with_label_values(&[reason]).inc();
    tracing::warn!(%peer, reason, error = %e, "closing connection: frame cannot be served");
}
