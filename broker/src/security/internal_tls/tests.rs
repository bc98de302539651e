//! Loading, reloading and the handshakes of internal TLS, with certificates made by rcgen.

use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;

use super::transport::{self, InternalConn};
use super::{InternalTls, InternalTlsError, InternalTlsFiles};

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A node certificate (PEM) and its key (PEM), signed by `ca`, for `sans`.
fn leaf(ca: &CertifiedIssuer<'static, KeyPair>, sans: &[&str]) -> (String, String) {
    let mut params =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, sans[0]);
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, ca).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn write(
    dir: &Path,
    name: &str,
    ca: &CertifiedIssuer<'static, KeyPair>,
    node: &(String, String),
) -> InternalTlsFiles {
    let files = InternalTlsFiles {
        certificate: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}.key")),
        ca: dir.join(format!("{name}-ca.pem")),
    };
    std::fs::write(&files.certificate, &node.0).unwrap();
    std::fs::write(&files.key, &node.1).unwrap();
    std::fs::write(&files.ca, ca.pem()).unwrap();
    files
}

fn der(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

/// A server on an internal listener that echoes one byte per connection and reports how each
/// connection went.
async fn echo_server(tls: InternalTls) -> (String, mpsc::UnboundedReceiver<std::io::Result<()>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut incoming = Box::pin(transport::incoming(listener, Some(tls)));
        while let Some(Ok(conn)) = incoming.next().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(echo(conn).await);
            });
        }
    });
    (addr, rx)
}

async fn echo(mut conn: InternalConn) -> std::io::Result<()> {
    let mut byte = [0u8; 1];
    conn.read_exact(&mut byte).await?;
    conn.write_all(&byte).await?;
    conn.flush().await
}

/// Dials `addr` as `client` does, sends a byte and reads it back; the server's certificate.
async fn round_trip(client: &InternalTls, addr: &str) -> std::io::Result<CertificateDer<'static>> {
    let uri: tonic::codegen::http::Uri = format!("http://{addr}").parse().unwrap();
    let mut stream = transport::connect(client, &uri).await?;
    stream.write_all(b"x").await?;
    let mut byte = [0u8; 1];
    stream.read_exact(&mut byte).await?;
    assert_eq!(&byte, b"x");
    let served = stream.get_ref().1.peer_certificates().unwrap()[0].clone();
    Ok(served.into_owned())
}

#[tokio::test]
async fn new_connections_use_the_files_as_they_change() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("cluster");
    let first = leaf(&ca, &["localhost", "127.0.0.1"]);
    let server_files = write(dir.path(), "server", &ca, &first);
    let server = InternalTls::load(server_files.clone()).unwrap();
    let client = InternalTls::load(write(dir.path(), "client", &ca, &leaf(&ca, &["c"]))).unwrap();
    let (addr, mut outcomes) = echo_server(server.clone()).await;

    assert_eq!(round_trip(&client, &addr).await.unwrap(), der(&first.0));
    assert_eq!(
        outcomes.recv().await.unwrap().map_err(|e| e.to_string()),
        Ok(())
    );
    assert_eq!(server.reload_if_changed(), Ok(false), "nothing changed");

    // A renewal: new certificate and key.
    let renewed = leaf(&ca, &["localhost", "127.0.0.1"]);
    write(dir.path(), "server", &ca, &renewed);
    assert_eq!(server.reload_if_changed(), Ok(true));
    assert_eq!(round_trip(&client, &addr).await.unwrap(), der(&renewed.0));

    // Half a renewal (a key that is not the certificate's): refused, the renewed pair stays.
    let other = leaf(&ca, &["localhost"]);
    std::fs::write(&server_files.key, &other.1).unwrap();
    match server.reload_if_changed() {
        Err(InternalTlsError::Config(m)) => assert!(m.contains("server.key"), "{m}"),
        other => panic!("expected a key mismatch, got {other:?}"),
    }
    assert_eq!(round_trip(&client, &addr).await.unwrap(), der(&renewed.0));
}

#[tokio::test]
async fn the_reload_task_picks_up_a_renewal() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("cluster");
    let files = write(dir.path(), "server", &ca, &leaf(&ca, &["127.0.0.1"]));
    let server = InternalTls::load(files).unwrap();
    server.reload_every(std::time::Duration::from_millis(20));
    let client = InternalTls::load(write(dir.path(), "client", &ca, &leaf(&ca, &["c"]))).unwrap();
    let (addr, _outcomes) = echo_server(server).await;
    let renewed = leaf(&ca, &["127.0.0.1"]);
    write(dir.path(), "server", &ca, &renewed);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if round_trip(&client, &addr).await.unwrap() == der(&renewed.0) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not reloaded within 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_server_certificate_must_cover_the_host_dialled() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("cluster");
    let server = InternalTls::load(write(
        dir.path(),
        "s",
        &ca,
        &leaf(&ca, &["elsewhere.example"]),
    ))
    .unwrap();
    let client = InternalTls::load(write(dir.path(), "c", &ca, &leaf(&ca, &["c"]))).unwrap();
    let (addr, _outcomes) = echo_server(server).await;
    let e = round_trip(&client, &addr).await.unwrap_err().to_string();
    assert!(
        e.contains("NotValidForName") || e.contains("not valid for"),
        "{e}"
    );
}

#[tokio::test]
async fn a_client_certificate_of_another_ca_or_none_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = ca("cluster");
    let server = InternalTls::load(write(
        dir.path(),
        "s",
        &cluster,
        &leaf(&cluster, &["127.0.0.1"]),
    ))
    .unwrap();
    let (addr, mut outcomes) = echo_server(server.clone()).await;
    let roots = {
        let mut r = rustls::RootCertStore::empty();
        r.add(der(&cluster.pem())).unwrap();
        Arc::new(r)
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = || {
        rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots.clone())
    };
    let foreign = ca("foreign");
    let (cert, key) = leaf(&foreign, &["intruder"]);
    let with_foreign_cert = builder()
        .with_client_auth_cert(
            vec![der(&cert)],
            PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
        )
        .unwrap();
    for (what, config) in [
        ("a foreign CA's certificate", with_foreign_cert),
        ("no certificate", builder().with_no_client_auth()),
    ] {
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        // TLS 1.3: the client may finish its side before the server has looked at its
        // certificate; the refusal then arrives on the first read.
        let refused = match tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
        {
            Err(_) => true,
            Ok(mut s) => {
                let _ = s.write_all(b"x").await;
                let mut byte = [0u8; 1];
                s.read_exact(&mut byte).await.is_err()
            }
        };
        assert!(refused, "{what}: the client got an echo");
        let server_side = outcomes.recv().await.unwrap();
        assert!(
            server_side.is_err(),
            "{what}: the server served the connection"
        );
    }
}

#[test]
fn missing_and_unreadable_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("cluster");
    let files = write(dir.path(), "n", &ca, &leaf(&ca, &["n"]));
    let mut missing = files.clone();
    missing.ca = dir.path().join("absent.pem");
    match InternalTls::load(missing) {
        Err(InternalTlsError::File { path, .. }) => assert!(path.ends_with("absent.pem")),
        other => panic!("expected a file error, got {other:?}"),
    }
    std::fs::write(&files.certificate, "not PEM at all").unwrap();
    match InternalTls::load(files.clone()) {
        Err(InternalTlsError::File { path, message }) => {
            assert_eq!(path, files.certificate);
            assert!(message.contains("no CERTIFICATE"), "{message}");
        }
        other => panic!("expected a file error, got {other:?}"),
    }
    std::fs::write(&files.certificate, leaf(&ca, &["n"]).0).unwrap();
    std::fs::write(&files.key, "").unwrap();
    match InternalTls::load(files.clone()) {
        Err(InternalTlsError::File { path, message }) => {
            assert_eq!(path, files.key);
            assert!(message.contains("private key"), "{message}");
        }
        other => panic!("expected a file error, got {other:?}"),
    }
}
