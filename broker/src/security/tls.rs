//! TLS for the Kafka listeners: rustls server configurations built from PEM files (Kafka's
//! `ssl.*` settings with `ssl.keystore.type=PEM`), reloaded when the files change, the client
//! certificate's principal as Kafka names it, and a client configuration helper.
//!
//! It reads files and builds configurations; it never accepts connections, and a bad file never
//! replaces a working configuration.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::watch;
use x509_parser::asn1_rs::{Class, Tag};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::AttributeTypeAndValue;

use super::Principal;

/// A TLS setup problem, naming the file or setting at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(pub String);

type Result<T> = std::result::Result<T, TlsError>;

fn err(msg: impl Into<String>) -> TlsError {
    TlsError(msg.into())
}

/// Whether a TLS listener asks clients for certificates (Kafka's `ssl.client.auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    #[default]
    None,
    /// A client certificate is asked for; a client without one is still served, one with a
    /// certificate the truststore does not vouch for is refused.
    Requested,
    /// Every client must present a certificate the truststore vouches for.
    Required,
}

impl FromStr for ClientAuth {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<ClientAuth, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(ClientAuth::None),
            "requested" => Ok(ClientAuth::Requested),
            "required" => Ok(ClientAuth::Required),
            _ => Err(format!(
                "ssl client auth {s:?}: expected none, requested or required"
            )),
        }
    }
}

impl fmt::Display for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClientAuth::None => "none",
            ClientAuth::Requested => "requested",
            ClientAuth::Required => "required",
        })
    }
}

/// The files and client authentication of one TLS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTlsFiles {
    /// PEM certificate chain, leaf first.
    pub certificate: PathBuf,
    /// PEM private key (PKCS#8, RSA or SEC1).
    pub key: PathBuf,
    /// PEM CA bundle that client certificates are verified against.
    pub truststore: Option<PathBuf>,
    /// Whether client certificates are asked for.
    pub client_auth: ClientAuth,
}

impl ServerTlsFiles {
    fn paths(&self) -> Vec<&Path> {
        let mut paths = vec![self.certificate.as_path(), self.key.as_path()];
        if let Some(t) = &self.truststore {
            paths.push(t.as_path());
        }
        paths
    }
}

/// What the log says about a loaded certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSummary {
    /// The leaf's subject, RFC 2253.
    pub subject: String,
    /// The leaf's notAfter.
    pub not_after: String,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| err(format!("reading {what} {}: {e}", path.display())))
}

fn certificates(pem: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| err(format!("{}: bad PEM certificate: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(err(format!(
            "{}: no CERTIFICATE block in the file",
            path.display()
        )));
    }
    Ok(certs)
}

fn private_key(pem: &[u8], path: &Path) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| {
        err(format!(
            "{}: no usable private key (expected a PEM PRIVATE KEY, RSA PRIVATE KEY or EC \
             PRIVATE KEY block): {e}",
            path.display()
        ))
    })
}

fn root_store(pem: &[u8], path: &Path) -> Result<Arc<RootCertStore>> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(pem, path)? {
        roots
            .add(cert)
            .map_err(|e| err(format!("{}: unusable CA certificate: {e}", path.display())))?;
    }
    Ok(Arc::new(roots))
}

/// The contents of a listener's files, read once: what a configuration is built from and what
/// the reload check compares.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    files: Vec<(Option<SystemTime>, Vec<u8>)>,
}

impl Snapshot {
    fn read(files: &ServerTlsFiles) -> Result<Snapshot> {
        let mut out = Vec::new();
        for path in files.paths() {
            let modified = fs::metadata(path).and_then(|m| m.modified()).ok();
            out.push((modified, read(path, "TLS file")?));
        }
        Ok(Snapshot { files: out })
    }

    fn content(&self, i: usize) -> &[u8] {
        self.files
            .get(i)
            .map(|(_, c)| c.as_slice())
            .unwrap_or_default()
    }
}

fn build_server_config(
    files: &ServerTlsFiles,
    snapshot: &Snapshot,
) -> Result<(Arc<ServerConfig>, CertificateSummary)> {
    let chain = certificates(snapshot.content(0), &files.certificate)?;
    let key = private_key(snapshot.content(1), &files.key)?;
    let summary =
        summarize(&chain[0]).map_err(|e| err(format!("{}: {e}", files.certificate.display())))?;
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| err(format!("TLS protocol versions: {e}")))?;
    let builder = match (files.client_auth, &files.truststore) {
        (ClientAuth::None, _) => builder.with_no_client_auth(),
        (auth, Some(truststore)) => {
            let roots = root_store(snapshot.content(2), truststore)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
            let verifier = if auth == ClientAuth::Requested {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|e| err(format!("{}: {e}", truststore.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
        (auth, None) => {
            return Err(err(format!(
                "ssl client auth {auth} needs a truststore (--ssl-truststore-location)"
            )))
        }
    };
    let config = builder.with_single_cert(chain, key).map_err(|e| {
        err(format!(
            "{} and {} do not make a usable certificate and key: {e}",
            files.certificate.display(),
            files.key.display()
        ))
    })?;
    Ok((Arc::new(config), summary))
}

/// A server configuration from the files, read now.
pub fn server_config(files: &ServerTlsFiles) -> Result<(Arc<ServerConfig>, CertificateSummary)> {
    build_server_config(files, &Snapshot::read(files)?)
}

/// A client configuration trusting the CA bundle `ca`, presenting `cert_key` (PEM certificate
/// chain and private key) when given.
pub fn client_config(ca: &Path, cert_key: Option<(&Path, &Path)>) -> Result<Arc<ClientConfig>> {
    let roots = root_store(&read(ca, "CA bundle")?, ca)?;
    let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider())
        .build()
        .map_err(|e| err(format!("{}: {e}", ca.display())))?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| err(format!("TLS protocol versions: {e}")))?
        .with_webpki_verifier(verifier);
    let config = match cert_key {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = certificates(&read(cert, "certificate")?, cert)?;
            let key_der = private_key(&read(key, "private key")?, key)?;
            builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                err(format!(
                    "{} and {} do not make a usable certificate and key: {e}",
                    cert.display(),
                    key.display()
                ))
            })?
        }
    };
    Ok(Arc::new(config))
}

/// One TLS listener's server configuration, replaced when its files change.
pub struct ReloadingServerConfig {
    listener: String,
    files: ServerTlsFiles,
    current: watch::Sender<Arc<ServerConfig>>,
    seen: Mutex<Snapshot>,
}

impl fmt::Debug for ReloadingServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingServerConfig")
            .field("listener", &self.listener)
            .field("files", &self.files)
            .finish()
    }
}

impl ReloadingServerConfig {
    /// Loads the files now (start-up fails on any problem), naming `listener` in errors.
    pub fn load(listener: &str, files: ServerTlsFiles) -> Result<Arc<ReloadingServerConfig>> {
        let snapshot =
            Snapshot::read(&files).map_err(|e| err(format!("listener {listener}: {e}")))?;
        let (config, summary) = build_server_config(&files, &snapshot)
            .map_err(|e| err(format!("listener {listener}: {e}")))?;
        tracing::info!(
            listener, subject = %summary.subject, not_after = %summary.not_after,
            client_auth = %files.client_auth, "TLS certificate loaded"
        );
        Ok(Arc::new(ReloadingServerConfig {
            listener: listener.to_string(),
            files,
            current: watch::channel(config).0,
            seen: Mutex::new(snapshot),
        }))
    }

    /// The configuration for a connection accepted now.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current.borrow().clone()
    }

    /// Reads the files; when any changed (modification time or content), builds a new
    /// configuration and installs it. A file that cannot be read or a configuration that cannot
    /// be built is logged and the old configuration stays; the check runs again on the next
    /// change. Returns whether a new configuration was installed. Blocking (file reads).
    pub fn check(&self) -> bool {
        let snapshot = match Snapshot::read(&self.files) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(listener = %self.listener, error = %e, "TLS files cannot be read; keeping the loaded certificate");
                return false;
            }
        };
        {
            let mut seen = self.seen.lock();
            if *seen == snapshot {
                return false;
            }
            *seen = snapshot.clone();
        }
        match build_server_config(&self.files, &snapshot) {
            Ok((config, summary)) => {
                self.current.send_replace(config);
                tracing::info!(
                    listener = %self.listener, subject = %summary.subject,
                    not_after = %summary.not_after, "TLS certificate reloaded"
                );
                true
            }
            Err(e) => {
                tracing::warn!(listener = %self.listener, error = %e, "TLS files changed but cannot be used; keeping the loaded certificate");
                false
            }
        }
    }

    /// Checks the files every `every` until the task is aborted.
    pub async fn watch_files(self: Arc<Self>, every: Duration) {
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + every,
            every.max(Duration::from_millis(1)),
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let this = self.clone();
            let _ = tokio::task::spawn_blocking(move || this.check()).await;
        }
    }
}

/// The principal of a verified client certificate: `User:<subject>`, the subject printed as
/// RFC 2253 (Kafka's default `ssl.principal.mapping.rules`, as Java's `X500Principal.getName()`
/// prints it: most specific first, e.g. `User:CN=alice,OU=eng,O=acme`).
pub fn principal_of(cert: &CertificateDer<'_>) -> Result<Principal> {
    let (_, parsed) = X509Certificate::from_der(cert.as_ref())
        .map_err(|e| err(format!("client certificate cannot be parsed: {e}")))?;
    Ok(Principal::user(rfc2253(parsed.subject())))
}

fn summarize(cert: &CertificateDer<'_>) -> std::result::Result<CertificateSummary, String> {
    let (_, parsed) = X509Certificate::from_der(cert.as_ref())
        .map_err(|e| format!("certificate cannot be parsed: {e}"))?;
    Ok(CertificateSummary {
        subject: rfc2253(parsed.subject()),
        not_after: parsed.validity().not_after.to_string(),
    })
}

/// An X.500 name in RFC 2253 form: RDNs in reverse order of their encoding, attributes of one
/// RDN joined by `+`, the RFC's keywords for its attribute types and `OID=#hex` (the DER of the
/// value) for the others, special characters escaped.
pub fn rfc2253(name: &x509_parser::x509::X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| rdn.iter().map(attribute).collect::<Vec<_>>().join("+"))
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

fn attribute(a: &AttributeTypeAndValue<'_>) -> String {
    let oid = a.attr_type().to_id_string();
    let keyword = match oid.as_str() {
        "2.5.4.3" => Some("CN"),
        "2.5.4.6" => Some("C"),
        "2.5.4.7" => Some("L"),
        "2.5.4.8" => Some("ST"),
        "2.5.4.10" => Some("O"),
        "2.5.4.11" => Some("OU"),
        "2.5.4.9" => Some("STREET"),
        "0.9.2342.19200300.100.1.25" => Some("DC"),
        "0.9.2342.19200300.100.1.1" => Some("UID"),
        _ => None,
    };
    let value = a.attr_value();
    match (
        keyword,
        string_value(value.class(), value.tag(), value.data),
    ) {
        (Some(k), Some(s)) => format!("{k}={}", escape(&s)),
        (k, _) => format!(
            "{}=#{}",
            k.map(str::to_string).unwrap_or(oid),
            hex(&der_of(
                value.class(),
                value.header.constructed(),
                value.tag(),
                value.data
            ))
        ),
    }
}

/// The text of a directory string, as Java decodes it.
fn string_value(class: Class, tag: Tag, data: &[u8]) -> Option<String> {
    if class != Class::Universal {
        return None;
    }
    match tag {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::NumericString => {
            std::str::from_utf8(data).ok().map(str::to_string)
        }
        // T.61: Latin-1 is what Java reads.
        Tag::TeletexString => Some(data.iter().map(|&b| char::from(b)).collect()),
        Tag::BmpString => {
            if data.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        Tag::UniversalString => {
            if data.len() % 4 != 0 {
                return None;
            }
            data.chunks_exact(4)
                .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                .collect()
        }
        _ => None,
    }
}

/// The DER encoding of a value from its header parts (identifier, length, contents).
fn der_of(class: Class, constructed: bool, tag: Tag, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 8);
    let first = ((class as u8) << 6) | if constructed { 0x20 } else { 0 };
    if tag.0 < 31 {
        out.push(first | tag.0 as u8);
    } else {
        out.push(first | 0x1f);
        let mut groups = Vec::new();
        let mut t = tag.0;
        loop {
            groups.push((t & 0x7f) as u8);
            t >>= 7;
            if t == 0 {
                break;
            }
        }
        for (i, g) in groups.iter().enumerate().rev() {
            out.push(if i == 0 { *g } else { g | 0x80 });
        }
    }
    let len = data.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(data);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 2253 escaping: `,+"\<>;` always, `#` and space at the start, space at the end.
fn escape(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let mut out = String::with_capacity(value.len());
    for (i, &c) in chars.iter().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i + 1 == chars.len() && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Why a handshake failed, as a metric label and a phrase for the log.
pub fn handshake_failure_reason(e: &std::io::Error) -> &'static str {
    use rustls::{AlertDescription, CertificateError, Error};
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<Error>()) else {
        return match e.kind() {
            std::io::ErrorKind::UnexpectedEof => "eof",
            std::io::ErrorKind::TimedOut => "timeout",
            _ => "io",
        };
    };
    match tls {
        Error::NoCertificatesPresented => "no_client_certificate",
        Error::InvalidCertificate(c) => match c {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "certificate_expired"
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "certificate_not_yet_valid"
            }
            CertificateError::UnknownIssuer => "certificate_unknown",
            CertificateError::Revoked => "certificate_revoked",
            _ => "bad_certificate",
        },
        Error::InvalidMessage(_) | Error::InappropriateMessage { .. } => "not_tls",
        Error::AlertReceived(AlertDescription::UnknownCA) => "peer_rejected_certificate",
        Error::AlertReceived(_) => "alert_received",
        Error::PeerIncompatible(_) | Error::NoApplicationProtocol => "incompatible",
        _ => "tls_error",
    }
}

#[cfg(test)]
mod tests;
