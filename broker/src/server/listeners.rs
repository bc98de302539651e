//! The Kafka listeners: binding each one, one accept loop per listener, and turning an
//! accepted socket into a served connection (the TLS handshake first on SSL and SASL_SSL
//! listeners, in the connection's own task and bounded in time, so that a slow or hostile client
//! never holds up accepting).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::{send, serve_connection, Broker};
use crate::config::ListenerSpec;
use crate::controller::Endpoint;
use crate::metrics::Metrics;
use crate::security::tls::{self, ReloadingServerConfig};
use crate::security::{ConnectionInfo, SecurityProtocol};

/// Longest time a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What every connection of a listener shares.
#[derive(Debug)]
pub(super) struct ListenerContext {
    name: String,
    protocol: SecurityProtocol,
    sasl_mechanisms: Vec<String>,
    tls: Option<Arc<ReloadingServerConfig>>,
}

/// A bound listener.
pub(super) struct Bound {
    context: Arc<ListenerContext>,
    listener: TcpListener,
    /// The bound address.
    pub(super) addr: SocketAddr,
    /// Where clients are told to connect to (the bound port for an advertised port 0).
    pub(super) advertised: Endpoint,
}

impl Bound {
    /// The listener's name.
    pub(super) fn name(&self) -> &str {
        &self.context.name
    }

    /// Its TLS configuration, reloaded by the caller.
    pub(super) fn tls(&self) -> Option<&Arc<ReloadingServerConfig>> {
        self.context.tls.as_ref()
    }
}

/// Loads every TLS listener's files and binds every listener, in order.
pub(super) async fn bind_all(specs: &[ListenerSpec]) -> anyhow::Result<Vec<Bound>> {
    let mut out = Vec::with_capacity(specs.len());
    for spec in specs {
        let tls = match &spec.tls {
            Some(files) => Some(
                ReloadingServerConfig::load(&spec.name, files.clone())
                    .map_err(anyhow::Error::msg)?,
            ),
            None => None,
        };
        let listener = TcpListener::bind((spec.bind_host.as_str(), spec.bind_port))
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "binding Kafka listener {} ({}:{}): {e}",
                    spec.name,
                    spec.bind_host,
                    spec.bind_port
                )
            })?;
        let addr = listener.local_addr()?;
        let port = if spec.advertised_port == 0 {
            addr.port()
        } else {
            spec.advertised_port
        };
        out.push(Bound {
            context: Arc::new(ListenerContext {
                name: spec.name.clone(),
                protocol: spec.protocol,
                sasl_mechanisms: spec.sasl_mechanisms.clone(),
                tls,
            }),
            listener,
            addr,
            advertised: Endpoint {
                name: spec.name.clone(),
                host: spec.advertised_host.clone(),
                port: i32::from(port),
            },
        });
    }
    Ok(out)
}

/// An accepted socket and the listener it came in on.
struct Accepted {
    stream: TcpStream,
    peer: SocketAddr,
    context: Arc<ListenerContext>,
}

/// One accept loop per listener, every connection served in a task of its own; on shutdown the
/// listeners close, in-flight requests get a few seconds, then `on_shutdown` runs.
pub(super) async fn accept_loop(
    listeners: Vec<Bound>,
    broker: Arc<Broker>,
    mut shutdown: watch::Receiver<bool>,
    on_shutdown: impl FnOnce() + Send + 'static,
) {
    let (tx, mut rx) = mpsc::channel::<Accepted>(64);
    let mut acceptors = JoinSet::new();
    for bound in listeners {
        acceptors.spawn(accept_on(bound.listener, bound.context, tx.clone()));
    }
    drop(tx);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            Some(accepted) = rx.recv() => {
                let broker = broker.clone();
                let stop = shutdown.clone();
                connections.spawn(connection(accepted, broker, stop));
            }
            _ = shutdown.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    acceptors.abort_all();
    while acceptors.join_next().await.is_some() {}
    drop(rx);
    // Let in-flight requests finish, briefly; then close the logs.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
    let _ = tokio::task::spawn_blocking(on_shutdown).await;
}

async fn accept_on(
    listener: TcpListener,
    context: Arc<ListenerContext>,
    tx: mpsc::Sender<Accepted>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let accepted = Accepted {
                    stream,
                    peer,
                    context: context.clone(),
                };
                if tx.send(accepted).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(listener = %context.name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Serves one accepted socket: plain, or after a TLS handshake.
async fn connection(accepted: Accepted, broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let Accepted {
        stream,
        peer,
        context,
    } = accepted;
    let _ = stream.set_nodelay(true);
    let mut info = ConnectionInfo {
        listener: context.name.clone(),
        protocol: context.protocol,
        peer,
        tls_principal: None,
        sasl_mechanisms: context.sasl_mechanisms.clone(),
    };
    let Some(tls) = &context.tls else {
        let (read_half, write_half) = stream.into_split();
        serve_connection(read_half, write_half, info, broker, shutdown).await;
        return;
    };
    let metrics = broker.metrics().clone();
    let acceptor = TlsAcceptor::from(tls.current());
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
    let stream = tokio::select! {
        r = handshake => match r {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                handshake_failed(&metrics, &context.name, peer, tls::handshake_failure_reason(&e), &e);
                return;
            }
            Err(_) => {
                let e = format!("no handshake within {HANDSHAKE_TIMEOUT:?}");
                handshake_failed(&metrics, &context.name, peer, "timeout", &e);
                return;
            }
        },
        _ = shutdown.changed() => return,
    };
    if let Some(cert) = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
    {
        match tls::principal_of(cert) {
            Ok(p) => info.tls_principal = Some(p),
            Err(e) => {
                handshake_failed(&metrics, &context.name, peer, "bad_certificate", &e);
                return;
            }
        }
    }
    tracing::debug!(
        listener = %context.name, %peer,
        principal = %info.tls_principal.as_ref().map(ToString::to_string).unwrap_or_default(),
        "TLS handshake done"
    );
    let (read_half, write_half) = tokio::io::split(stream);
    serve_connection(
        read_half,
        send::StreamSink(write_half),
        info,
        broker,
        shutdown,
    )
    .await;
}

fn handshake_failed(
    metrics: &Metrics,
    listener: &str,
    peer: SocketAddr,
    reason: &str,
    error: &dyn std::fmt::Display,
) {
    metrics
        .tls_handshake_failures
        .with_label_values(&[listener, reason])
        .inc();
    tracing::info!(listener, %peer, reason, error = %error, "TLS handshake failed");
}
