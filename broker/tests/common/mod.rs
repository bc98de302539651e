//! Shared helpers of the integration tests: an in-process broker on loopback and a raw Kafka
//! protocol client built on the kafka-protocol crate.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod cluster;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{encode_request_header_into_buffer, Decodable, Request, StrBytes};
use samsa_broker::config::BrokerConfig;
use samsa_broker::server::{start, RunningBroker};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

static NEXT_PORT: AtomicU32 = AtomicU32::new(0);

/// The kernel's range for the local ports of outgoing connections.
fn ephemeral_range() -> (u32, u32) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|x| x.parse::<u32>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999))
}

/// `n` distinct loopback ports that were free a moment ago (for processes that take fixed
/// ports, such as the members of a cluster that must know each other's addresses).
///
/// The ports lie in 10000-31999 and outside the kernel's ephemeral range, so that no outgoing
/// connection (of this test or a concurrent one) can take one as its local port between the
/// probe here and the broker's bind, or while a broker is down for a restart. Successive calls
/// in a process never repeat a port; the start is spread by process id.
pub fn free_ports(n: usize) -> Vec<u16> {
    const LO: u32 = 10000;
    const SPAN: u32 = 22000;
    let (eph_lo, eph_hi) = ephemeral_range();
    let start = (std::process::id() % 200) * 100;
    let mut ports = Vec::with_capacity(n);
    for _ in 0..SPAN {
        if ports.len() == n {
            break;
        }
        let port = LO + (start + NEXT_PORT.fetch_add(1, Ordering::Relaxed)) % SPAN;
        if (eph_lo..=eph_hi).contains(&port) {
            continue;
        }
        let port = port as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            ports.push(port);
        }
    }
    assert_eq!(
        ports.len(),
        n,
        "no {n} free loopback ports outside the ephemeral range"
    );
    ports
}

/// Starts a broker on ephemeral loopback ports with its data in `dir`.
pub async fn broker(dir: &Path) -> RunningBroker {
    broker_with(dir, |_| {}).await
}

/// Starts a broker after `tweak` adjusts its config.
pub async fn broker_with(dir: &Path, tweak: impl FnOnce(&mut BrokerConfig)) -> RunningBroker {
    let mut cfg = BrokerConfig::for_tests(dir.to_path_buf());
    tweak(&mut cfg);
    start(cfg).await.expect("broker starts")
}

/// A connection speaking the Kafka protocol with explicit versions, over TCP or any other
/// byte stream (TLS).
pub struct RawClient<S = TcpStream> {
    pub stream: S,
    correlation: i32,
}

impl RawClient {
    pub async fn connect(addr: SocketAddr) -> RawClient {
        let stream = TcpStream::connect(addr).await.expect("connect");
        RawClient::over(stream)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> RawClient<S> {
    /// A client over an established stream.
    pub fn over(stream: S) -> RawClient<S> {
        RawClient {
            stream,
            correlation: 0,
        }
    }

    /// Sends `body` at `version` and returns the decoded response.
    pub async fn call<R: Request>(&mut self, version: i16, body: &R) -> R::Response {
        let correlation = self.send(version, body).await;
        let mut frame = self.read_frame().await.expect("a response frame");
        let header = ResponseHeader::decode(
            &mut frame,
            <R::Response as kafka_protocol::protocol::HeaderVersion>::header_version(version),
        )
        .expect("response header");
        assert_eq!(
            header.correlation_id, correlation,
            "responses come in order"
        );
        let response = R::Response::decode(&mut frame, version).expect("response body decodes");
        assert_eq!(frame.remaining(), 0, "no trailing bytes in the response");
        response
    }

    /// Sends a request without reading the response; returns its correlation id.
    pub async fn send<R: Request>(&mut self, version: i16, body: &R) -> i32 {
        self.correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("samsa-tests")));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        encode_request_header_into_buffer(&mut buf, &header).expect("header encodes");
        body.encode(&mut buf, version).expect("body encodes");
        let size = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        self.stream.write_all(&buf).await.expect("write");
        self.stream.flush().await.expect("flush");
        self.correlation
    }

    /// Writes raw bytes.
    pub async fn write_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Reads one response frame, or `None` when the broker closed the connection.
    pub async fn read_frame(&mut self) -> Option<Bytes> {
        let mut size = [0u8; 4];
        match tokio::time::timeout(Duration::from_secs(20), self.stream.read_exact(&mut size)).await
        {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return None,
            Err(_) => panic!("no response within 20 s"),
        }
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        match tokio::time::timeout(Duration::from_secs(20), self.stream.read_exact(&mut body)).await
        {
            Ok(Ok(_)) => Some(Bytes::from(body)),
            Ok(Err(_)) => None,
            Err(_) => panic!("a response frame was cut short: no more bytes within 20 s"),
        }
    }

    /// True when the broker has closed this connection (EOF within the timeout).
    pub async fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut b)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

/// Builds one uncompressed v2 record batch holding `records` as (key, value) pairs. Use recent
/// timestamps: retention (7 days by default) deletes older data.
pub fn batch(records: &[(Option<&[u8]>, &[u8])], timestamp: i64) -> Bytes {
    producer_batch(records, timestamp, -1, -1, -1)
}

/// A record as (key, value), either nullable.
pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// Like [`batch`], from an idempotent producer: producer id, epoch and base sequence.
pub fn producer_batch(
    records: &[(Option<&[u8]>, &[u8])],
    timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
) -> Bytes {
    let records: Vec<KeyValue<'_>> = records.iter().map(|(k, v)| (*k, Some(*v))).collect();
    encode_batch(
        &records,
        timestamp,
        producer_id,
        producer_epoch,
        base_sequence,
    )
}

/// Like [`batch`], with nullable values (a null value is a tombstone on compacted topics).
pub fn nullable_batch(records: &[KeyValue<'_>], timestamp: i64) -> Bytes {
    encode_batch(records, timestamp, -1, -1, -1)
}

fn encode_batch(
    records: &[KeyValue<'_>],
    timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
) -> Bytes {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let recs: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: if base_sequence < 0 {
                i as i32 - 1
            } else {
                base_sequence + i as i32
            },
            timestamp: timestamp + i as i64,
            key: k.map(Bytes::copy_from_slice),
            value: v.map(Bytes::copy_from_slice),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &recs,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("batch encodes");
    buf.freeze()
}

/// ListOffsets (v7) of partition 0 of `name` at `timestamp` (-1 latest, -2 earliest).
pub async fn list_offset(c: &mut RawClient, name: &str, timestamp: i64) -> i64 {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::ListOffsetsRequest;
    let req = ListOffsetsRequest::default().with_topics(vec![ListOffsetsTopic::default()
        .with_name(topic_name(name))
        .with_partitions(vec![
            ListOffsetsPartition::default().with_timestamp(timestamp)
        ])]);
    c.call(7, &req).await.topics[0].partitions[0].offset
}

/// Creates a one-partition topic with `configs` through CreateTopics; asserts success.
pub async fn create_topic(c: &mut RawClient, name: &str, configs: &[(&str, &str)]) {
    use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
    use kafka_protocol::messages::CreateTopicsRequest;
    let configs = configs
        .iter()
        .map(|(k, v)| {
            CreatableTopicConfig::default()
                .with_name(StrBytes::from_string(k.to_string()))
                .with_value(Some(StrBytes::from_string(v.to_string())))
        })
        .collect();
    let req = CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
        .with_name(topic_name(name))
        .with_num_partitions(1)
        .with_replication_factor(1)
        .with_configs(configs)]);
    let resp = c.call(7, &req).await;
    assert_eq!(
        resp.topics[0].error_code, 0,
        "creating {name}: {:?}",
        resp.topics[0].error_message
    );
}

/// Waits for `cond` to hold, polling, for at most `timeout`.
pub async fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

/// A topic name for requests.
pub fn topic_name(name: &str) -> kafka_protocol::messages::TopicName {
    kafka_protocol::messages::TopicName(StrBytes::from_string(name.to_string()))
}

/// Creates `name` by asking for its metadata with auto-creation allowed.
pub async fn auto_create(c: &mut RawClient, name: &str) {
    use kafka_protocol::messages::{metadata_request::MetadataRequestTopic, MetadataRequest};
    let req = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic_name(name)))
        ]))
        .with_allow_auto_topic_creation(true);
    let resp = c.call(4, &req).await;
    assert_eq!(resp.topics[0].error_code, 0, "auto-creating {name}");
}

/// Wraps a request body (api key, version, correlation id, client id "x", then `body`) in a
/// size-prefixed frame, for hand-made requests.
pub fn raw_frame(api_key: i16, version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut f = BytesMut::new();
    f.put_i32((2 + 2 + 4 + 3 + body.len()) as i32);
    f.put_i16(api_key);
    f.put_i16(version);
    f.put_i32(correlation_id);
    f.put_i16(1);
    f.put_slice(b"x");
    f.put_slice(body);
    f.to_vec()
}

/// GET `path` from the broker's metrics/health endpoint: (status line, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).await.expect("connect to metrics");
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        head.lines().next().unwrap_or_default().to_string(),
        body.to_string(),
    )
}
