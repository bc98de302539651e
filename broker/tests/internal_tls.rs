//! Mutual TLS of the internal ports (--internal-tls-*): a three-node cluster whose controller and
//! replication listeners require certificates of the cluster CA replicates as before (acks=all
//! round trip), while an attacker without such a certificate (plaintext, a foreign CA's, none)
//! cannot reach either service, and one with a cluster certificate cannot fetch as a broker id
//! that is not registered. Neither changes the metadata or a high watermark.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::cluster::Cluster;
use common::{list_offset, topic_name, RawClient};
use kafka_protocol::messages::MetadataRequest;
use kafka_protocol::ResponseError;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rskafka::chrono::Utc;
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::client::ClientBuilder;
use rskafka::record::Record;
use samsa_broker::controller::MetadataCommand;
use samsa_broker::security::internal_tls::{transport, InternalTls, InternalTlsFiles};
use samsa_proto::v1::controller_client::ControllerClient;
use samsa_proto::v1::replica_client::ReplicaClient;
use samsa_proto::v1::{
    FetchMetadataRequest, ProposeRequest, ReplicaFetchPartition, ReplicaFetchReply,
    ReplicaFetchRequest,
};
use tempfile::TempDir;
use tonic::transport::{Channel, Endpoint};

const CALL: Duration = Duration::from_secs(10);

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// Writes a certificate for `localhost` and `127.0.0.1` signed by `issuer`, its key, and the
/// cluster CA (which the holder trusts) under `dir`, named after `name`.
fn node_files(
    dir: &Path,
    name: &str,
    issuer: &CertifiedIssuer<'static, KeyPair>,
    cluster: &CertifiedIssuer<'static, KeyPair>,
) -> InternalTlsFiles {
    let mut params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    let files = InternalTlsFiles {
        certificate: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}.key")),
        ca: dir.join("cluster-ca.pem"),
    };
    std::fs::write(&files.certificate, cert.pem()).unwrap();
    std::fs::write(&files.key, key.serialize_pem()).unwrap();
    std::fs::write(&files.ca, cluster.pem()).unwrap();
    files
}

fn flags(files: &InternalTlsFiles) -> Vec<String> {
    vec![
        "--internal-tls-certificate-location".into(),
        files.certificate.display().to_string(),
        "--internal-tls-key-location".into(),
        files.key.display().to_string(),
        "--internal-tls-ca-location".into(),
        files.ca.display().to_string(),
    ]
}

/// Brokers listed live, and whether `topic` exists, as broker 1 answers Metadata.
async fn metadata(cluster: &Cluster, topic: &str) -> (usize, bool) {
    let mut c = cluster.client(1).await;
    let r = c
        .call(9, &MetadataRequest::default().with_topics(None))
        .await;
    let exists = r
        .topics
        .iter()
        .any(|t| t.name.as_ref() == Some(&topic_name(topic)) && t.error_code == 0);
    (r.brokers.len(), exists)
}

/// The leader of partition 0 of `topic` and its replicas, as broker 1 answers Metadata.
async fn partition_of(c: &mut RawClient, topic: &str) -> (i32, Vec<i32>) {
    let r = c
        .call(9, &MetadataRequest::default().with_topics(None))
        .await;
    let t = r
        .topics
        .iter()
        .find(|t| t.name.as_ref() == Some(&topic_name(topic)))
        .expect("topic listed");
    let p = &t.partitions[0];
    (p.leader_id.0, p.replica_nodes.iter().map(|b| b.0).collect())
}

/// Creates `topic` (one partition, `replicas` replicas) through rskafka, produces `values`
/// with acks=all and reads them back.
async fn round_trip(cluster: &Cluster, topic: &str, replicas: i16, values: &[String]) {
    let addr = cluster.brokers[0].as_ref().unwrap().kafka_addr.to_string();
    let client = ClientBuilder::new(vec![addr]).build().await.unwrap();
    client
        .controller_client()
        .unwrap()
        .create_topic(topic, 1, replicas, 10_000)
        .await
        .unwrap();
    let pc = client
        .partition_client(topic, 0, UnknownTopicHandling::Retry)
        .await
        .unwrap();
    let records: Vec<Record> = values
        .iter()
        .map(|v| Record {
            key: None,
            value: Some(v.clone().into_bytes()),
            headers: BTreeMap::new(),
            timestamp: Utc::now(),
        })
        .collect();
    let offsets = pc
        .produce(records, Compression::NoCompression)
        .await
        .unwrap();
    assert_eq!(offsets, (0..values.len() as i64).collect::<Vec<_>>());
    let (fetched, hw) = pc.fetch_records(0, 1..1_000_000, 1_000).await.unwrap();
    let read: Vec<String> = fetched
        .iter()
        .map(|r| String::from_utf8(r.record.value.clone().unwrap()).unwrap())
        .collect();
    assert_eq!(read, values);
    assert_eq!(hw, values.len() as i64);
}

/// A fetch of partition 0 of `topic` as `replica_id` claiming to have everything up to
/// `offset`: were it counted, the high watermark would move to `offset`.
fn forged_fetch(topic: &str, replica_id: i32, offset: i64) -> ReplicaFetchRequest {
    ReplicaFetchRequest {
        replica_id,
        max_wait_ms: 0,
        max_bytes_per_partition: 1 << 20,
        partitions: vec![ReplicaFetchPartition {
            topic: topic.to_string(),
            partition: 0,
            fetch_offset: offset,
            current_leader_epoch: -1,
            last_fetched_epoch: -1,
            log_start_offset: 0,
        }],
        broker_epoch: i64::MAX / 2,
    }
}

async fn fetch(
    channel: Channel,
    request: ReplicaFetchRequest,
) -> Result<ReplicaFetchReply, tonic::Status> {
    let mut client = ReplicaClient::new(channel);
    let call = client.fetch(request);
    match tokio::time::timeout(CALL, call).await {
        Ok(r) => r.map(tonic::Response::into_inner),
        Err(_) => Err(tonic::Status::deadline_exceeded("no answer")),
    }
}

async fn propose(channel: Channel, command: &MetadataCommand) -> Result<(), tonic::Status> {
    let request = ProposeRequest {
        command: serde_json::to_vec(command).unwrap(),
    };
    let mut client = ControllerClient::new(channel);
    let call = client.propose(request);
    match tokio::time::timeout(CALL, call).await {
        Ok(r) => r.map(|_| ()),
        Err(_) => Err(tonic::Status::deadline_exceeded("no answer")),
    }
}

fn plaintext(addr: std::net::SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy()
}

fn tls_channel(addr: std::net::SocketAddr, tls: &InternalTls) -> Channel {
    transport::channel(&addr.to_string(), Some(tls), Duration::from_secs(2)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn internal_ports_require_the_cluster_certificate() {
    let dir = TempDir::new().unwrap();
    let cluster_ca = ca("samsa test cluster CA");
    let nodes: Vec<InternalTlsFiles> = (1..=3)
        .map(|i| node_files(dir.path(), &format!("node-{i}"), &cluster_ca, &cluster_ca))
        .collect();
    let cluster = Cluster::start_with_nodes(|i| flags(&nodes[i])).await;

    // Replication and the quorum work over mutual TLS: acks=all with three replicas.
    let values: Vec<String> = (0..20).map(|i| format!("secret-{i}")).collect();
    round_trip(&cluster, "guarded", 3, &values).await;
    let mut c = cluster.client(1).await;
    let (leader, replicas) = partition_of(&mut c, "guarded").await;
    assert_eq!(replicas.len(), 3);
    let follower = *replicas.iter().find(|r| **r != leader).unwrap();
    // ListOffsets is answered by the partition's leader.
    let mut at_leader = cluster.client(leader).await;
    assert_eq!(list_offset(&mut at_leader, "guarded", -1).await, 20);
    assert_eq!(metadata(&cluster, "guarded").await, (3, true));

    let running = |id: i32| cluster.brokers[(id - 1) as usize].as_ref().unwrap();
    let controllers: Vec<_> = (1..=3)
        .map(|id| running(id).controller_addr.unwrap())
        .collect();
    let leader_replication = running(leader).replication_addr.unwrap();
    let deletion = MetadataCommand::DeleteTopic {
        name: "guarded".into(),
    };
    let fence = MetadataCommand::FenceBroker {
        id: follower,
        incarnation: None,
    };

    // (a) Plaintext gRPC to every controller: refused at the TLS layer, nothing committed.
    for addr in &controllers {
        for command in [&deletion, &fence] {
            let e = propose(plaintext(*addr), command).await.unwrap_err();
            assert_ne!(e.code(), tonic::Code::Ok);
        }
    }

    // (b) A certificate of a foreign CA (its holder trusts the cluster CA, so only the server
    // can refuse): refused, while a cluster certificate passes the same path.
    let foreign_ca = ca("foreign CA");
    let intruder =
        InternalTls::load(node_files(dir.path(), "intruder", &foreign_ca, &cluster_ca)).unwrap();
    let insider =
        InternalTls::load(node_files(dir.path(), "insider", &cluster_ca, &cluster_ca)).unwrap();
    for addr in &controllers {
        for command in [&deletion, &fence] {
            let e = propose(tls_channel(*addr, &intruder), command)
                .await
                .unwrap_err();
            assert_ne!(e.code(), tonic::Code::Ok);
        }
        let ask = FetchMetadataRequest {
            since_version: u64::MAX,
        };
        let mut refused = ControllerClient::new(tls_channel(*addr, &intruder));
        let reply = tokio::time::timeout(CALL, refused.fetch_metadata(ask)).await;
        assert!(reply.unwrap().is_err(), "a foreign certificate is refused");
        let mut served = ControllerClient::new(tls_channel(*addr, &insider));
        let reply = tokio::time::timeout(CALL, served.fetch_metadata(ask)).await;
        let reply = reply.unwrap();
        assert!(reply.is_ok(), "a cluster certificate is served: {reply:?}");
    }

    // (c) Replica fetches without a certificate, naming a real follower: refused.
    let e = fetch(
        plaintext(leader_replication),
        forged_fetch("guarded", follower, 20),
    )
    .await
    .unwrap_err();
    assert_ne!(e.code(), tonic::Code::Ok);
    let e = fetch(
        tls_channel(leader_replication, &intruder),
        forged_fetch("guarded", follower, 20),
    )
    .await
    .unwrap_err();
    assert_ne!(e.code(), tonic::Code::Ok);

    // (d) A cluster certificate but a replica id that is not a registered broker.
    let e = fetch(
        tls_channel(leader_replication, &insider),
        forged_fetch("guarded", 99, 20),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("replica id 99"), "{}", e.message());

    // (e) A registered broker that is not a replica of the partition moves nothing.
    round_trip(&cluster, "single", 1, &values[..5]).await;
    let (single_leader, _) = partition_of(&mut c, "single").await;
    let outsider = (1..=3).find(|id| *id != single_leader).unwrap();
    let reply = fetch(
        tls_channel(running(single_leader).replication_addr.unwrap(), &insider),
        forged_fetch("single", outsider, 5),
    )
    .await
    .unwrap();
    assert_eq!(
        reply.partitions[0].error_code,
        i32::from(ResponseError::NotLeaderOrFollower.code())
    );
    assert!(reply.partitions[0].records.is_empty());

    // Nothing changed: the topic is there, every broker is live, the high watermarks stand.
    assert_eq!(metadata(&cluster, "guarded").await, (3, true));
    assert_eq!(list_offset(&mut at_leader, "guarded", -1).await, 20);
    let mut at_single_leader = cluster.client(single_leader).await;
    assert_eq!(list_offset(&mut at_single_leader, "single", -1).await, 5);
    // And the cluster still replicates over TLS.
    round_trip(&cluster, "after", 3, &values[..3]).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_renewed_certificate_is_served_without_a_restart() {
    let dir = TempDir::new().unwrap();
    let cluster_ca = ca("samsa test cluster CA");
    let nodes: Vec<InternalTlsFiles> = (1..=3)
        .map(|i| node_files(dir.path(), &format!("node-{i}"), &cluster_ca, &cluster_ca))
        .collect();
    let cluster = Cluster::start_with_nodes(|i| {
        let mut f = flags(&nodes[i]);
        f.extend(["--internal-tls-reload-interval-ms".into(), "200".into()]);
        f
    })
    .await;
    let controller = cluster.brokers[0]
        .as_ref()
        .unwrap()
        .controller_addr
        .unwrap();
    let probe =
        InternalTls::load(node_files(dir.path(), "probe", &cluster_ca, &cluster_ca)).unwrap();
    let served = || async {
        let tcp = tokio::net::TcpStream::connect(controller).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let tls = tokio_rustls::TlsConnector::from(probe.client_config())
            .connect(name, tcp)
            .await
            .unwrap();
        tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
    };
    let before = served().await;
    // Node 1's certificate is renewed in place (same files, new key pair).
    let renewed = node_files(dir.path(), "node-1", &cluster_ca, &cluster_ca);
    let renewed_der = {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateDer::from_pem_file(&renewed.certificate)
            .unwrap()
            .to_vec()
    };
    assert_ne!(before, renewed_der);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while served().await != renewed_der {
        assert!(
            tokio::time::Instant::now() < deadline,
            "renewal not served after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The cluster keeps working with the renewed certificate.
    let values: Vec<String> = (0..5).map(|i| format!("renewed-{i}")).collect();
    round_trip(&cluster, "renewed", 3, &values).await;
    cluster.shutdown().await;
}
