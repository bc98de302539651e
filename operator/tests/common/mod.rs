//! Shared helpers of the operator's integration tests: real `samsa-broker` processes on
//! loopback, on ports in 31000-31999.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod k8s;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use samsa_operator::kafka::AdminClient;

/// The broker binary: `$SAMSA_BROKER_BIN`, else the workspace's debug build (built if missing).
pub fn broker_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SAMSA_BROKER_BIN") {
        let p = PathBuf::from(p);
        assert!(
            p.exists(),
            "SAMSA_BROKER_BIN={} does not exist",
            p.display()
        );
        return p;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("debug").join("samsa-broker");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "samsa-broker", "--bin", "samsa-broker"])
            .current_dir(&root)
            .status()
            .expect("run cargo build -p samsa-broker");
        assert!(status.success(), "cargo build -p samsa-broker failed");
    }
    assert!(bin.exists(), "no broker binary at {}", bin.display());
    bin
}

static NEXT_PORT: AtomicU32 = AtomicU32::new(0);

/// A free loopback port in 31000-31999: outside the kernel's ephemeral range (32768 and up by
/// default), so no outgoing connection can take it between this probe and the broker's bind.
/// The start is spread by process id; a process never gets the same port twice.
pub fn free_port() -> u16 {
    let start = (std::process::id() % 500) * 2;
    for _ in 0..1000 {
        let off = NEXT_PORT.fetch_add(1, Ordering::Relaxed);
        let port = (31000 + (start + off) % 1000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 31000-31999");
}

/// A broker process, killed on drop.
pub struct Broker {
    pub child: Child,
    pub id: i32,
    pub kafka_port: u16,
    pub controller_port: u16,
    pub replication_port: u16,
    pub metrics_port: u16,
    pub dir: tempfile::TempDir,
}

impl Broker {
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.kafka_port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Ports {
    kafka: u16,
    controller: u16,
    replication: u16,
    metrics: u16,
}

fn ports() -> Ports {
    Ports {
        kafka: free_port(),
        controller: free_port(),
        replication: free_port(),
        metrics: free_port(),
    }
}

fn spawn(id: i32, p: &Ports, voters: Option<&str>) -> Broker {
    spawn_with(id, p, voters, &[])
}

/// A broker with `extra` flags; `--listeners` among them replaces `--listen`.
fn spawn_with(id: i32, p: &Ports, voters: Option<&str>, extra: &[String]) -> Broker {
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(dir.path().join("broker.log")).unwrap();
    let mut cmd = Command::new(broker_bin());
    cmd.arg("--node-id").arg(id.to_string());
    if !extra.iter().any(|a| a == "--listeners") {
        cmd.arg("--listen")
            .arg(format!("127.0.0.1:{}", p.kafka))
            .arg("--advertised-listener")
            .arg(format!("127.0.0.1:{}", p.kafka));
    }
    cmd.args(extra)
        .arg("--controller-listen")
        .arg(format!("127.0.0.1:{}", p.controller))
        .arg("--replication-listen")
        .arg(format!("127.0.0.1:{}", p.replication))
        .arg("--metrics-listen")
        .arg(format!("127.0.0.1:{}", p.metrics))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--auto-create-topics-enable")
        .arg("false")
        .arg("--worker-threads")
        .arg("2")
        .stdout(Stdio::null())
        .stderr(log);
    if let Some(v) = voters {
        cmd.arg("--controller-quorum-voters").arg(v);
    }
    // The broker's own settings must not leak in from the environment running the tests.
    for (k, _) in std::env::vars() {
        if k.starts_with("SAMSA_") && k != "SAMSA_BROKER_BIN" {
            cmd.env_remove(k);
        }
    }
    let child = cmd.spawn().expect("spawn samsa-broker");
    Broker {
        child,
        id,
        kafka_port: p.kafka,
        controller_port: p.controller,
        replication_port: p.replication,
        metrics_port: p.metrics,
        dir,
    }
}

/// One broker (node id 0) with `extra` flags, ready for requests on its first listener. In
/// `extra`, `{port}` is the broker's Kafka port (e.g. in `--listeners`).
pub async fn single_broker_with_args(extra: &[&str]) -> Broker {
    let p = ports();
    let extra: Vec<String> = extra
        .iter()
        .map(|a| a.replace("{port}", &p.kafka.to_string()))
        .collect();
    let b = spawn_with(0, &p, None, &extra);
    let client = AdminClient::new(&b.addr(), Duration::from_secs(5));
    wait_for(
        "the broker answers Metadata",
        Duration::from_secs(30),
        async || client.metadata(None).await.is_ok(),
    )
    .await;
    b
}

/// One broker (node id 0) with local metadata, ready for requests.
pub async fn single_broker() -> Broker {
    single_broker_with_id(0).await
}

/// One broker with node id `id` and local metadata, ready for requests.
pub async fn single_broker_with_id(id: i32) -> Broker {
    let b = spawn(id, &ports(), None);
    let client = AdminClient::new(&b.addr(), Duration::from_secs(5));
    wait_for(
        "the broker answers Metadata",
        Duration::from_secs(30),
        async || client.metadata(None).await.is_ok(),
    )
    .await;
    b
}

/// `n` brokers with ids 0..n forming one cluster (all controllers), ready when Metadata lists
/// every broker.
pub async fn cluster(n: i32) -> Vec<Broker> {
    let ports: Vec<Ports> = (0..n).map(|_| ports()).collect();
    let voters = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{i}@127.0.0.1:{}", p.controller))
        .collect::<Vec<_>>()
        .join(",");
    let brokers: Vec<Broker> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| spawn(i as i32, p, Some(&voters)))
        .collect();
    let client = AdminClient::new(&brokers[0].addr(), Duration::from_secs(5));
    wait_for(
        &format!("Metadata lists {n} brokers"),
        Duration::from_secs(60),
        async || {
            client
                .metadata(None)
                .await
                .is_ok_and(|m| m.brokers.len() == n as usize)
        },
    )
    .await;
    brokers
}

/// Polls `cond` every 100 ms until it holds; panics naming `what` after `limit`.
pub async fn wait_for(what: &str, limit: Duration, mut cond: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    loop {
        if cond().await {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One request on a fresh connection to `addr`, decoded at `version`: for what the admin client
/// does not do itself (producing, committing offsets).
pub async fn raw_call<R: kafka_protocol::protocol::Request>(
    addr: &str,
    version: i16,
    body: &R,
) -> R::Response {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    call_on(&mut stream, version, body).await
}

/// One request on an open connection (several requests that belong together, like a SASL
/// handshake and its authentication), decoded at `version`.
pub async fn call_on<R: kafka_protocol::protocol::Request>(
    stream: &mut tokio::net::TcpStream,
    version: i16,
    body: &R,
) -> R::Response {
    use bytes::{Buf, BufMut, BytesMut};
    use kafka_protocol::messages::{RequestHeader, ResponseHeader};
    use kafka_protocol::protocol::{encode_request_header_into_buffer, Decodable, StrBytes};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("operator-tests")));
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    encode_request_header_into_buffer(&mut buf, &header).unwrap();
    body.encode(&mut buf, version).unwrap();
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    stream.write_all(&buf).await.unwrap();
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).await.unwrap();
    let mut frame = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut frame).await.unwrap();
    let mut frame = bytes::Bytes::from(frame);
    let header = ResponseHeader::decode(
        &mut frame,
        <R::Response as kafka_protocol::protocol::HeaderVersion>::header_version(version),
    )
    .unwrap();
    assert_eq!(header.correlation_id, 7);
    let response = R::Response::decode(&mut frame, version).unwrap();
    assert_eq!(frame.remaining(), 0);
    response
}

/// Produces `n` records (acks=all) to `topic`-`partition` at its leader, as Metadata names it;
/// returns the base offset.
pub async fn produce(admin: &AdminClient, topic: &str, partition: i32, n: usize) -> i64 {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    let md = admin.metadata(Some(&[topic.to_string()])).await.unwrap();
    let leader = md.topics[topic].partitions[partition as usize].leader;
    let b = md.brokers.iter().find(|b| b.id == leader).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // No producer id: the broker takes the batch's base sequence as -1.
            sequence: i as i32 - 1,
            timestamp: now + i as i64,
            key: None,
            value: Some(bytes::Bytes::from(format!("record {i}"))),
            headers: Default::default(),
        })
        .collect();
    let mut batch = bytes::BytesMut::new();
    RecordBatchEncoder::encode(
        &mut batch,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch.freeze()))])]);
    // The leader Metadata names may not have applied the new topic yet: it answers
    // UNKNOWN_TOPIC_OR_PARTITION (3) or NOT_LEADER_OR_FOLLOWER (6) for a moment, and a client
    // retries, as this does (10 s at most).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let response = raw_call(&format!("{}:{}", b.host, b.port), 9, &request).await;
        let p = &response.responses[0].partition_responses[0];
        if matches!(p.error_code, 3 | 6) && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        assert_eq!(p.error_code, 0, "produce to {topic}-{partition}");
        return p.base_offset;
    }
}

/// Commits `offsets` ((topic, partition, offset)) for `group` as a simple consumer would:
/// generation -1, no member id, at the group's coordinator; retried (30 s at most) while the
/// coordinator is not ready (the offsets topic is created on first use).
pub async fn commit_offsets(bootstrap: &str, group: &str, offsets: &[(&str, i32, i64)]) {
    let mut last = Vec::new();
    wait_for(
        &format!("the coordinator of {group} takes a commit"),
        Duration::from_secs(30),
        async || {
            last = try_commit_offsets(bootstrap, group, offsets).await;
            let retriable = [14, 15, 16];
            assert!(
                last.iter().all(|c| *c == 0 || retriable.contains(c)),
                "commit {group}: {last:?}"
            );
            last.iter().all(|c| *c == 0)
        },
    )
    .await;
}

/// One OffsetCommit at the coordinator; the error code of each partition (or of
/// FindCoordinator).
async fn try_commit_offsets(
    bootstrap: &str,
    group: &str,
    offsets: &[(&str, i32, i64)],
) -> Vec<i16> {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::{
        FindCoordinatorRequest, GroupId, OffsetCommitRequest, TopicName,
    };
    use kafka_protocol::protocol::StrBytes;

    let find = FindCoordinatorRequest::default()
        .with_key(StrBytes::from_string(group.to_string()))
        .with_key_type(0);
    let found = raw_call(bootstrap, 3, &find).await;
    if found.error_code != 0 {
        return vec![found.error_code];
    }
    let coordinator = format!("{}:{}", found.host, found.port);
    let mut by_topic: std::collections::BTreeMap<&str, Vec<(i32, i64)>> = Default::default();
    for (t, p, o) in offsets {
        by_topic.entry(t).or_default().push((*p, *o));
    }
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(
            by_topic
                .into_iter()
                .map(|(t, ps)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(StrBytes::from_string(t.to_string())))
                        .with_partitions(
                            ps.into_iter()
                                .map(|(p, o)| {
                                    OffsetCommitRequestPartition::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(o)
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    let response = raw_call(&coordinator, 8, &request).await;
    response
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}
