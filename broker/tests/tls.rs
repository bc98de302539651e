//! TLS listeners: Kafka requests over TLS (raw protocol and rskafka), plaintext refused on a TLS
//! port, mutual TLS refusing missing, foreign and expired client certificates, the client
//! certificate's principal, certificate reload, and per-listener advertised endpoints.
//! Certificates are made at test time with rcgen.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::{broker_with, http_get, RawClient};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
};
use rskafka::chrono::{TimeZone, Utc};
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::client::ClientBuilder;
use rskafka::record::Record;
use rustls_pki_types::ServerName;
use samsa_broker::config::BrokerConfig;
use samsa_broker::security::tls;
use samsa_broker::server::RunningBroker;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// A CA that signs test certificates.
struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = dn(&[(DnType::CommonName, name)]);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { params, key, pem }
    }

    /// (certificate PEM, key PEM) for `subject`, valid now unless `expired`.
    fn issue(&self, subject: &[(DnType, &str)], expired: bool) -> (String, String) {
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params.distinguished_name = dn(subject);
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn dn(parts: &[(DnType, &str)]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for (t, v) in parts {
        dn.push(t.clone(), *v);
    }
    dn
}

/// Writes `content` to `dir/name` through a temporary file and a rename (as a secret
/// volume or cert-manager replaces files).
fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path
}

/// A broker's TLS files: the cluster CA, the broker certificate and key.
struct Pki {
    dir: tempfile::TempDir,
    ca: Ca,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("samsa-test-ca");
        write(dir.path(), "ca.pem", &ca.pem);
        let pki = Pki { dir, ca };
        pki.broker_certificate("broker-one");
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Replaces the broker's certificate and key with one for `cn`.
    fn broker_certificate(&self, cn: &str) {
        let (cert, key) = self.ca.issue(&[(DnType::CommonName, cn)], false);
        write(self.dir.path(), "broker.key", &key);
        write(self.dir.path(), "broker.pem", &cert);
    }

    /// Client files `name.pem`/`name.key` for `subject` from `ca` (this PKI's when `None`).
    fn client(
        &self,
        name: &str,
        subject: &[(DnType, &str)],
        ca: Option<&Ca>,
        expired: bool,
    ) -> (PathBuf, PathBuf) {
        let (cert, key) = ca.unwrap_or(&self.ca).issue(subject, expired);
        (
            write(self.dir.path(), &format!("{name}.pem"), &cert),
            write(self.dir.path(), &format!("{name}.key"), &key),
        )
    }

    /// A broker config with these files (listeners set by the caller).
    fn configure(&self, cfg: &mut BrokerConfig) {
        cfg.ssl_certificate_location = Some(self.path("broker.pem"));
        cfg.ssl_key_location = Some(self.path("broker.key"));
        cfg.ssl_truststore_location = Some(self.path("ca.pem"));
    }

    fn client_config(&self, cert: Option<&(PathBuf, PathBuf)>) -> Arc<rustls::ClientConfig> {
        tls::client_config(
            &self.path("ca.pem"),
            cert.map(|(c, k)| (c.as_path(), k.as_path())),
        )
        .unwrap()
    }
}

fn addr_of(b: &RunningBroker, listener: &str) -> SocketAddr {
    b.listener_addrs
        .iter()
        .find(|(n, _)| n == listener)
        .map(|(_, a)| *a)
        .unwrap()
}

/// A TLS connection to `addr`, or the handshake's error.
async fn tls_connect(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    tokio::time::timeout(
        Duration::from_secs(20),
        TlsConnector::from(config).connect(name, tcp),
    )
    .await
    .map_err(|_| std::io::Error::other("handshake timed out"))?
}

/// Whether the broker refuses this client: the handshake fails, or (TLS 1.3, where the server
/// judges the client certificate after the client's side is done) the first request gets no
/// answer but a closed connection.
async fn refused(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> bool {
    let Ok(stream) = tls_connect(addr, config).await else {
        return true;
    };
    let mut c = RawClient::over(stream);
    use tokio::io::AsyncWriteExt;
    let frame = common::raw_frame(18, 0, 1, &[]);
    if c.stream.write_all(&frame).await.is_err() || c.stream.flush().await.is_err() {
        return true;
    }
    c.read_frame().await.is_none()
}

async fn api_versions<S>(c: &mut RawClient<S>) -> ApiVersionsResponse
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let req = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("samsa-tests"))
        .with_client_software_version(StrBytes::from_static_str("1.0"));
    c.call(3, &req).await
}

/// `samsa_tls_handshake_failures_total{listener,reason}`.
async fn handshake_failures(b: &RunningBroker, listener: &str, reason: &str) -> f64 {
    let (_, body) = http_get(b.metrics_addr, "/metrics").await;
    let series = format!(
        "samsa_tls_handshake_failures_total{{listener=\"{listener}\",reason=\"{reason}\"}} "
    );
    body.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0.0)
}

/// Captured broker logs (the principal of a TLS connection is logged at debug).
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = Captured(buf.clone());
        let _ = tracing_subscriber::fmt()
            .with_env_filter("samsa_broker::server::listeners=debug")
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init();
        buf
    })
}

#[derive(Clone)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_tls_listener_serves_kafka_requests_and_real_clients() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let b = broker_with(dir.path(), |cfg| {
        pki.configure(cfg);
        cfg.listeners = Some("SSL://127.0.0.1:0".into());
    })
    .await;
    let ssl = addr_of(&b, "SSL");
    assert_eq!(b.kafka_addr, ssl, "the first listener is kafka_addr");
    let stream = tls_connect(ssl, pki.client_config(None)).await.unwrap();
    let mut c = RawClient::over(stream);
    let versions = api_versions(&mut c).await;
    assert_eq!(versions.error_code, 0);
    assert!(versions.api_keys.iter().any(|k| k.api_key == 3));
    let meta = c.call(12, &MetadataRequest::default()).await;
    assert_eq!(meta.brokers.len(), 1);
    assert_eq!(meta.brokers[0].host.as_str(), "127.0.0.1");
    assert_eq!(meta.brokers[0].port, i32::from(ssl.port()));

    // rskafka over TLS: produce, then fetch the records back (file ranges through TLS).
    let client = ClientBuilder::new(vec![ssl.to_string()])
        .tls_config(pki.client_config(None))
        .build()
        .await
        .unwrap();
    client
        .controller_client()
        .unwrap()
        .create_topic("tls-topic", 1, 1, 5_000)
        .await
        .unwrap();
    let pc = client
        .partition_client("tls-topic", 0, UnknownTopicHandling::Retry)
        .await
        .unwrap();
    let now = samsa_broker::server::now_ms();
    // Large enough that a fetch spans more than one 256 KiB chunk of the segment file.
    let records: Vec<Record> = (0..40)
        .map(|i| Record {
            key: Some(format!("k{i}").into_bytes()),
            value: Some(vec![b'a' + (i % 26) as u8; 20_000]),
            headers: BTreeMap::new(),
            timestamp: Utc.timestamp_millis_opt(now).unwrap(),
        })
        .collect();
    for chunk in records.chunks(10) {
        pc.produce(chunk.to_vec(), Compression::NoCompression)
            .await
            .unwrap();
    }
    let mut got = Vec::new();
    while got.len() < records.len() {
        let (batch, hw) = pc
            .fetch_records(got.len() as i64, 1..4 * 1024 * 1024, 1_000)
            .await
            .unwrap();
        assert_eq!(hw, 40);
        for r in batch {
            if r.offset == got.len() as i64 {
                got.push(r.record);
            }
        }
    }
    for (want, have) in records.iter().zip(&got) {
        assert_eq!(want.key, have.key);
        assert_eq!(want.value, have.value);
    }
    b.shutdown().await;
}

#[tokio::test]
async fn plaintext_to_a_tls_port_is_closed_and_counted() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let b = broker_with(dir.path(), |cfg| {
        pki.configure(cfg);
        cfg.listeners = Some("SSL://127.0.0.1:0".into());
    })
    .await;
    let mut c = RawClient::connect(addr_of(&b, "SSL")).await;
    c.write_raw(&common::raw_frame(18, 0, 1, &[]))
        .await
        .unwrap();
    assert!(
        c.read_frame().await.is_none(),
        "no Kafka answer over plaintext"
    );
    assert!(handshake_failures(&b, "SSL", "not_tls").await >= 1.0);
    // The listener still serves TLS clients, also while a silent client holds a connection
    // in its handshake.
    let _silent = TcpStream::connect(addr_of(&b, "SSL")).await.unwrap();
    let stream = tls_connect(addr_of(&b, "SSL"), pki.client_config(None))
        .await
        .unwrap();
    assert_eq!(
        api_versions(&mut RawClient::over(stream)).await.error_code,
        0
    );
    b.shutdown().await;
}

#[tokio::test]
async fn mutual_tls_refuses_missing_foreign_and_expired_certificates() {
    let logs = logs();
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let b = broker_with(dir.path(), |cfg| {
        pki.configure(cfg);
        cfg.listeners = Some("MTLS://127.0.0.1:0".into());
        cfg.listener_security_protocol_map = "MTLS:SSL".into();
        cfg.ssl_client_auth = tls::ClientAuth::Required;
    })
    .await;
    let addr = addr_of(&b, "MTLS");

    assert!(
        refused(addr, pki.client_config(None)).await,
        "no certificate"
    );
    let foreign = Ca::new("someone-else");
    let stranger = pki.client(
        "stranger",
        &[(DnType::CommonName, "mallory")],
        Some(&foreign),
        false,
    );
    assert!(
        refused(addr, pki.client_config(Some(&stranger))).await,
        "foreign CA"
    );
    let expired = pki.client("expired", &[(DnType::CommonName, "old")], None, true);
    assert!(
        refused(addr, pki.client_config(Some(&expired))).await,
        "expired"
    );
    for reason in [
        "no_client_certificate",
        "certificate_unknown",
        "certificate_expired",
    ] {
        assert_eq!(
            handshake_failures(&b, "MTLS", reason).await,
            1.0,
            "{reason}"
        );
    }

    let alice = pki.client(
        "alice",
        &[
            (DnType::OrganizationName, "acme"),
            (DnType::OrganizationalUnitName, "eng"),
            (DnType::CommonName, "alice"),
        ],
        None,
        false,
    );
    let stream = tls_connect(addr, pki.client_config(Some(&alice)))
        .await
        .unwrap();
    let mut c = RawClient::over(stream);
    assert_eq!(api_versions(&mut c).await.error_code, 0);
    let logged = common::wait_for(Duration::from_secs(10), || {
        String::from_utf8_lossy(&logs.lock().unwrap()).contains("User:CN=alice,OU=eng,O=acme")
    })
    .await;
    assert!(
        logged,
        "the connection's principal is User:CN=alice,OU=eng,O=acme"
    );
    b.shutdown().await;
}

#[tokio::test]
async fn a_replaced_certificate_serves_new_connections() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let b = broker_with(dir.path(), |cfg| {
        pki.configure(cfg);
        cfg.listeners = Some("SSL://127.0.0.1:0".into());
        cfg.ssl_reload_interval_ms = 50;
    })
    .await;
    let addr = addr_of(&b, "SSL");
    let subject = |s: &TlsStream<TcpStream>| {
        let der = s.get_ref().1.peer_certificates().unwrap()[0].clone();
        tls::principal_of(&der).unwrap().name
    };
    let first = tls_connect(addr, pki.client_config(None)).await.unwrap();
    assert_eq!(subject(&first), "CN=broker-one");
    pki.broker_certificate("broker-two");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let s = tls_connect(addr, pki.client_config(None)).await.unwrap();
        if subject(&s) == "CN=broker-two" {
            assert_eq!(api_versions(&mut RawClient::over(s)).await.error_code, 0);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new certificate was not served within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // The connection made before the reload keeps working.
    assert_eq!(
        api_versions(&mut RawClient::over(first)).await.error_code,
        0
    );
    // A broken file is not loaded; the last good certificate stays.
    write(pki.dir.path(), "broker.pem", "not a certificate");
    let s = tls_connect(addr, pki.client_config(None)).await.unwrap();
    assert_eq!(subject(&s), "CN=broker-two");
    b.shutdown().await;
}

#[tokio::test]
async fn each_listener_advertises_its_own_endpoint() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let b = broker_with(dir.path(), |cfg| {
        pki.configure(cfg);
        cfg.listeners = Some("PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0".into());
        cfg.advertised_listeners = Some("SSL://tls.samsa.test:0".into());
    })
    .await;
    let (plain, ssl) = (addr_of(&b, "PLAINTEXT"), addr_of(&b, "SSL"));
    assert_ne!(plain, ssl);
    let mut p = RawClient::connect(plain).await;
    let stream = tls_connect(ssl, pki.client_config(None)).await.unwrap();
    let mut s = RawClient::over(stream);

    let meta = p.call(12, &MetadataRequest::default()).await;
    assert_eq!(
        (meta.brokers[0].host.as_str(), meta.brokers[0].port),
        ("127.0.0.1", i32::from(plain.port()))
    );
    let meta = s.call(12, &MetadataRequest::default()).await;
    assert_eq!(
        (meta.brokers[0].host.as_str(), meta.brokers[0].port),
        ("tls.samsa.test", i32::from(ssl.port()))
    );
    let cluster = s.call(0, &DescribeClusterRequest::default()).await;
    assert_eq!(
        (cluster.brokers[0].host.as_str(), cluster.brokers[0].port),
        ("tls.samsa.test", i32::from(ssl.port()))
    );
    let find = FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("g"));
    let coordinator = s.call(2, &find).await;
    assert_eq!(coordinator.error_code, 0);
    assert_eq!(
        (coordinator.host.as_str(), coordinator.port),
        ("tls.samsa.test", i32::from(ssl.port()))
    );
    let coordinator = p.call(2, &find).await;
    assert_eq!(
        (coordinator.host.as_str(), coordinator.port),
        ("127.0.0.1", i32::from(plain.port()))
    );
    b.shutdown().await;
}

#[tokio::test]
async fn a_tls_listener_without_files_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = BrokerConfig::for_tests(dir.path().to_path_buf());
    cfg.listeners = Some("SECURE://127.0.0.1:0".into());
    cfg.listener_security_protocol_map = "SECURE:SASL_SSL".into();
    let e = samsa_broker::server::start(cfg.clone())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("listener SECURE") && e.contains("--ssl-certificate-location"),
        "{e}"
    );
    cfg.ssl_certificate_location = Some(dir.path().join("missing.pem"));
    cfg.ssl_key_location = Some(dir.path().join("missing.key"));
    let e = samsa_broker::server::start(cfg)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("listener SECURE") && e.contains("missing.pem"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_answers_with_the_endpoints_of_the_requests_listener() {
    let pki = Pki::new();
    // Brokers 1 and 2 have an SSL listener besides PLAINTEXT; broker 3 has PLAINTEXT only.
    let cluster = common::cluster::Cluster::start_tweaked(&[], |i, cfg| {
        if i < 2 {
            pki.configure(cfg);
            cfg.listeners = Some(format!("PLAINTEXT://{},SSL://127.0.0.1:0", cfg.listen));
        }
    })
    .await;
    let running = |i: usize| cluster.brokers[i].as_ref().unwrap();
    let ssl_ports: Vec<i32> = (0..2)
        .map(|i| i32::from(addr_of(running(i), "SSL").port()))
        .collect();
    let stream = tls_connect(addr_of(running(0), "SSL"), pki.client_config(None))
        .await
        .unwrap();
    let mut s = RawClient::over(stream);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let meta = s.call(9, &MetadataRequest::default()).await;
        let mut got: Vec<(i32, String, i32)> = meta
            .brokers
            .iter()
            .map(|b| (b.node_id.0, b.host.to_string(), b.port))
            .collect();
        got.sort();
        let want = vec![
            (1, "127.0.0.1".to_string(), ssl_ports[0]),
            (2, "127.0.0.1".to_string(), ssl_ports[1]),
        ];
        if got == want {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Metadata over SSL: {got:?}, expected {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut p = cluster.client(1).await;
    let meta = p.call(9, &MetadataRequest::default()).await;
    let mut got: Vec<(i32, i32)> = meta.brokers.iter().map(|b| (b.node_id.0, b.port)).collect();
    got.sort();
    let want: Vec<(i32, i32)> = (0..3)
        .map(|i| (i as i32 + 1, i32::from(running(i).kafka_addr.port())))
        .collect();
    assert_eq!(
        got, want,
        "Metadata over PLAINTEXT lists every broker's PLAINTEXT port"
    );
    let described = s.call(0, &DescribeClusterRequest::default()).await;
    let mut ids: Vec<i32> = described.brokers.iter().map(|b| b.broker_id.0).collect();
    ids.sort();
    assert_eq!(ids, [1, 2], "DescribeCluster over SSL leaves out broker 3");
    cluster.shutdown().await;
}

#[tokio::test]
async fn requested_client_auth_serves_clients_without_certificates_only_if_they_send_none() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let b = broker_with(dir.path(), |cfg| {
        pki.configure(cfg);
        cfg.listeners = Some("PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0".into());
        cfg.listener_ssl_client_auth = Some("SSL:requested".into());
    })
    .await;
    let addr = addr_of(&b, "SSL");
    let stream = tls_connect(addr, pki.client_config(None)).await.unwrap();
    assert_eq!(
        api_versions(&mut RawClient::over(stream)).await.error_code,
        0
    );
    let bob = pki.client("bob", &[(DnType::CommonName, "bob")], None, false);
    let stream = tls_connect(addr, pki.client_config(Some(&bob)))
        .await
        .unwrap();
    assert_eq!(
        api_versions(&mut RawClient::over(stream)).await.error_code,
        0
    );
    let foreign = Ca::new("someone-else");
    let stranger = pki.client(
        "stranger",
        &[(DnType::CommonName, "mallory")],
        Some(&foreign),
        false,
    );
    assert!(refused(addr, pki.client_config(Some(&stranger))).await);
    assert_eq!(
        handshake_failures(&b, "SSL", "certificate_unknown").await,
        1.0
    );
    b.shutdown().await;
}
