//! TLS of the operator's Kafka connections to a secured cluster's CONTROLPLANE listener: the
//! cluster CA as the only trust anchor and the operator's client certificate. Built from PEM
//! text; holds no connection itself.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// A client TLS configuration and an id of the material it was built from.
#[derive(Clone)]
pub struct KafkaTls {
    config: Arc<rustls::ClientConfig>,
    id: String,
}

impl std::fmt::Debug for KafkaTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaTls").field("id", &self.id).finish()
    }
}

impl KafkaTls {
    /// Trusts the CA certificates in `ca_pem` only, and presents `cert_pem` (leaf first) with
    /// `key_pem`.
    pub fn new(ca_pem: &str, cert_pem: &str, key_pem: &str) -> Result<KafkaTls, String> {
        let mut roots = rustls::RootCertStore::empty();
        let cas: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(ca_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("CA certificate: {e}"))?;
        if cas.is_empty() {
            return Err("CA certificate: no PEM certificate".into());
        }
        for ca in cas {
            roots.add(ca).map_err(|e| format!("CA certificate: {e}"))?;
        }
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|e| format!("client certificate: {e}"))?;
        if chain.is_empty() {
            return Err("client certificate: no PEM certificate".into());
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| format!("client key: {e}"))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS versions: {e}"))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("client certificate and key: {e}"))?;
        Ok(KafkaTls {
            config: Arc::new(config),
            id: material_id(ca_pem, cert_pem, key_pem),
        })
    }

    /// Identifies the PEM material: equal ids, same configuration.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// TLS over `stream` to `addr` (`host:port`); the broker's certificate must name `host`.
    pub(crate) async fn connect(
        &self,
        addr: &str,
        stream: TcpStream,
    ) -> Result<TlsStream<TcpStream>, String> {
        let host = addr
            .rsplit_once(':')
            .map_or(addr, |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']');
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| format!("{host:?} is not a TLS server name: {e}"))?;
        TlsConnector::from(self.config.clone())
            .connect(name, stream)
            .await
            .map_err(|e| format!("TLS handshake: {e}"))
    }
}

/// SHA-256 over the three PEM texts, hex.
pub fn material_id(ca_pem: &str, cert_pem: &str, key_pem: &str) -> String {
    let mut h = Sha256::new();
    for part in [ca_pem, cert_pem, key_pem] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::Ca;
    use std::time::Duration;

    #[test]
    fn builds_from_operator_material_and_refuses_junk() {
        let ca = Ca::generate("ca", Duration::from_secs(3600)).unwrap();
        let leaf = ca
            .issue_client("samsa-operator", Duration::from_secs(3600))
            .unwrap();
        let tls = KafkaTls::new(&ca.cert_pem, &leaf.cert_pem, &leaf.key_pem).unwrap();
        assert_eq!(
            tls.id(),
            material_id(&ca.cert_pem, &leaf.cert_pem, &leaf.key_pem)
        );
        assert!(KafkaTls::new("junk", &leaf.cert_pem, &leaf.key_pem).is_err());
        assert!(KafkaTls::new(&ca.cert_pem, "", &leaf.key_pem).is_err());
        assert!(KafkaTls::new(&ca.cert_pem, &leaf.cert_pem, "junk").is_err());
    }

    /// A TLS server like a broker's CONTROLPLANE listener: its certificate from `ca`, client
    /// certificates from `ca` required. Returns its port and the outcome of one accept.
    async fn controlplane(ca: &Ca) -> (u16, tokio::task::JoinHandle<Result<(), String>>) {
        use rustls::server::WebPkiClientVerifier;
        let leaf = ca
            .issue_server(
                "kc-0",
                &["localhost".to_string()],
                Duration::from_secs(3600),
            )
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca.cert_pem.as_bytes()).unwrap())
            .unwrap();
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap(),
            )
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let task = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
            let mut tls = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
            let mut b = [0u8; 4];
            tls.read_exact(&mut b).await.map_err(|e| e.to_string())?;
            tls.write_all(&b).await.map_err(|e| e.to_string())?;
            Ok(())
        });
        (port, task)
    }

    #[tokio::test]
    async fn the_operator_certificate_passes_a_controlplane_handshake() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let ca = Ca::generate("ca", Duration::from_secs(3600)).unwrap();
        let op = ca
            .issue_client("samsa-operator", Duration::from_secs(3600))
            .unwrap();
        let tls = KafkaTls::new(&ca.cert_pem, &op.cert_pem, &op.key_pem).unwrap();

        let (port, server) = controlplane(&ca).await;
        let addr = format!("localhost:{port}");
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut stream = tls.connect(&addr, tcp).await.unwrap();
        stream.write_all(b"ping").await.unwrap();
        let mut back = [0u8; 4];
        stream.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"ping");
        assert_eq!(server.await.unwrap(), Ok(()));

        // A client certificate from another CA is refused by the server.
        let other = Ca::generate("other", Duration::from_secs(3600)).unwrap();
        let stranger = other
            .issue_client("samsa-operator", Duration::from_secs(3600))
            .unwrap();
        let bad = KafkaTls::new(&ca.cert_pem, &stranger.cert_pem, &stranger.key_pem).unwrap();
        let (port, server) = controlplane(&ca).await;
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        if let Ok(mut s) = bad.connect(&format!("localhost:{port}"), tcp).await {
            // TLS 1.3: the client finishes first; the server's refusal ends the stream.
            let _ = s.write_all(b"ping").await;
            let mut b = [0u8; 4];
            assert!(s.read_exact(&mut b).await.is_err());
        }
        assert!(server.await.unwrap().is_err());

        // A name the broker certificate does not cover is refused by the client.
        let (port, _server) = controlplane(&ca).await;
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let err = tls
            .connect(&format!("kc-9.elsewhere:{port}"), tcp)
            .await
            .unwrap_err();
        assert!(err.contains("TLS handshake"), "{err}");
    }
}
