//! Mutual TLS of the internal gRPC ports: the controller listener (Raft, broker registration,
//! heartbeats, proposals) and the replication listener (follower fetches).
//!
//! One [`InternalTls`] per process holds a rustls server and client configuration built from
//! three PEM files (this node's certificate chain, its key, the cluster CA). Servers require a
//! client certificate the cluster CA signed; clients present the node's certificate and accept
//! only a server certificate the cluster CA signed that covers the host dialled (DNS or IP SAN).
//! The files are read again every reload interval and, when their contents changed, both
//! configurations are rebuilt and swapped in: new connections use them, open ones keep theirs.
//! A set of files that does not load (a renewal caught half-written, a key that does not match
//! its certificate) is logged and the previous configurations stay.
//!
//! Authentication only: this module decides "signed by the cluster CA", never which node may
//! do what (the replication service checks broker ids itself). [`transport`] serves and dials
//! tonic over these configurations; it never looks inside the gRPC messages.

pub mod transport;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// The ALPN protocol of gRPC.
const ALPN_H2: &[u8] = b"h2";

/// At most one handshake failure per this interval is logged at warn (the rest at debug): a
/// misconfigured peer or a scanner retries often.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The three PEM files of internal TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalTlsFiles {
    /// This node's certificate chain, leaf first.
    pub certificate: PathBuf,
    /// The private key of the leaf certificate.
    pub key: PathBuf,
    /// The cluster CA certificate(s).
    pub ca: PathBuf,
}

/// Why internal TLS could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InternalTlsError {
    /// A file could not be read or holds no usable PEM.
    #[error("internal TLS file {path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The files read, but rustls refused them together (e.g. key and certificate differ).
    #[error("internal TLS: {0}")]
    Config(String),
}

/// The rustls configurations of the internal ports, reloaded from their files; cheap to clone.
#[derive(Clone)]
pub struct InternalTls {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for InternalTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InternalTls")
            .field("files", &self.inner.files)
            .finish_non_exhaustive()
    }
}

struct Inner {
    files: InternalTlsFiles,
    current: RwLock<Loaded>,
    /// When a handshake failure was last logged at warn.
    last_warn: Mutex<Option<Instant>>,
}

/// One loaded set of files and the configurations built from it.
struct Loaded {
    /// The bytes of the certificate, key and CA files, to notice a change.
    contents: [Vec<u8>; 3],
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
}

impl InternalTls {
    /// Loads the files of `cfg` (`None` when internal TLS is off) and, inside a tokio runtime,
    /// rereads them every --internal-tls-reload-interval-ms for as long as a clone lives.
    pub fn from_broker(cfg: &crate::config::BrokerConfig) -> Result<Option<InternalTls>, String> {
        let Some(files) = cfg.internal_tls_files()? else {
            return Ok(None);
        };
        let tls = InternalTls::load(files).map_err(|e| e.to_string())?;
        tls.reload_every(Duration::from_millis(cfg.internal_tls_reload_interval_ms));
        Ok(Some(tls))
    }

    /// Loads `files` once (no reloading: see [`InternalTls::reload_every`]).
    pub fn load(files: InternalTlsFiles) -> Result<InternalTls, InternalTlsError> {
        let contents = read_all(&files)?;
        let loaded = build(&files, contents)?;
        tracing::info!(certificate = %files.certificate.display(), ca = %files.ca.display(),
            "internal TLS: the controller and replication ports require client certificates \
             signed by the cluster CA");
        Ok(InternalTls {
            inner: Arc::new(Inner {
                files,
                current: RwLock::new(loaded),
                last_warn: Mutex::new(None),
            }),
        })
    }

    /// Starts a task (in the current tokio runtime; none outside one) that calls
    /// [`InternalTls::reload_if_changed`] every `every` until the last clone is dropped.
    pub fn reload_every(&self, every: Duration) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                let tls = InternalTls { inner };
                let reloaded =
                    tokio::task::spawn_blocking(move || tls.reload_if_changed().map(|_| ())).await;
                match reloaded {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(
                        "internal TLS files changed but do not load (still using the previous \
                         ones): {e}"
                    ),
                    Err(e) => tracing::warn!("internal TLS reload failed: {e}"),
                }
            }
        });
    }

    /// Reads the files again; when their contents changed, rebuilds and swaps in the
    /// configurations. Ok(true): swapped; Ok(false): unchanged; Err: changed but not loadable
    /// (the previous configurations stay).
    pub fn reload_if_changed(&self) -> Result<bool, InternalTlsError> {
        let contents = read_all(&self.inner.files)?;
        if self.inner.current.read().contents == contents {
            return Ok(false);
        }
        let loaded = build(&self.inner.files, contents)?;
        *self.inner.current.write() = loaded;
        tracing::info!(certificate = %self.inner.files.certificate.display(),
            "internal TLS: reloaded the certificate, key and CA; new connections use them");
        Ok(true)
    }

    /// The configuration internal servers accept connections with, as loaded now.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.inner.current.read().server.clone()
    }

    /// The configuration internal clients dial with, as loaded now.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.inner.current.read().client.clone()
    }

    /// Logs a failed handshake: at warn at most once per [`WARN_EVERY`], else at debug.
    fn log_handshake_failure(&self, side: &str, peer: &str, error: &std::io::Error) {
        let now = Instant::now();
        let warn = {
            let mut last = self.inner.last_warn.lock();
            let due = last.is_none_or(|t| now.duration_since(t) >= WARN_EVERY);
            if due {
                *last = Some(now);
            }
            due
        };
        if warn {
            tracing::warn!(%peer, "internal TLS handshake ({side}) failed: {error}");
        } else {
            tracing::debug!(%peer, "internal TLS handshake ({side}) failed: {error}");
        }
    }
}

fn read_all(files: &InternalTlsFiles) -> Result<[Vec<u8>; 3], InternalTlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| InternalTlsError::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    };
    Ok([
        read(&files.certificate)?,
        read(&files.key)?,
        read(&files.ca)?,
    ])
}

fn certificates(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, InternalTlsError> {
    let bad = |message: String| InternalTlsError::File {
        path: path.to_path_buf(),
        message,
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(bad("no CERTIFICATE in the file".into()));
    }
    Ok(certs)
}

/// Builds both configurations from the bytes of the three files.
fn build(files: &InternalTlsFiles, contents: [Vec<u8>; 3]) -> Result<Loaded, InternalTlsError> {
    let [cert_pem, key_pem, ca_pem] = &contents;
    let chain = certificates(&files.certificate, cert_pem)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| InternalTlsError::File {
        path: files.key.clone(),
        message: format!("no usable PEM private key: {e}"),
    })?;
    let mut roots = RootCertStore::empty();
    for ca in certificates(&files.ca, ca_pem)? {
        roots.add(ca).map_err(|e| InternalTlsError::File {
            path: files.ca.clone(),
            message: format!("not a usable CA certificate: {e}"),
        })?;
    }
    let roots = Arc::new(roots);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = |e: rustls::Error| InternalTlsError::Config(e.to_string());

    let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
        .build()
        .map_err(|e| InternalTlsError::Config(e.to_string()))?;
    let mut server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(config)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain.clone(), key.clone_key())
        .map_err(|e| key_error(files, e))?;
    server.alpn_protocols = vec![ALPN_H2.to_vec()];

    let mut client = client_builder(provider)
        .map_err(config)?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| key_error(files, e))?;
    client.alpn_protocols = vec![ALPN_H2.to_vec()];

    Ok(Loaded {
        contents,
        server: Arc::new(server),
        client: Arc::new(client),
    })
}

fn client_builder(
    provider: Arc<CryptoProvider>,
) -> Result<rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>, rustls::Error> {
    ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions()
}

fn key_error(files: &InternalTlsFiles, e: rustls::Error) -> InternalTlsError {
    InternalTlsError::Config(format!(
        "certificate {} with key {}: {e}",
        files.certificate.display(),
        files.key.display()
    ))
}

#[cfg(test)]
mod tests;
