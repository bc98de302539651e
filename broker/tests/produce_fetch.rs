//! Produce and fetch with rskafka (a client nobody here wrote), plus raw-protocol checks of
//! the error codes a client gets for bad produce requests, long polling and restarts.

#![allow(clippy::unwrap_used)]

mod common;

use samsa_broker::server::now_ms;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{batch, broker, broker_with, RawClient};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rskafka::chrono::{TimeZone, Utc};
use rskafka::client::partition::{Compression, OffsetAt, UnknownTopicHandling};
use rskafka::client::ClientBuilder;
use rskafka::record::Record;

fn record(i: usize, ts_ms: i64) -> Record {
    Record {
        key: Some(format!("key-{}", i % 7).into_bytes()),
        value: Some(format!("value-{i}-{}", "x".repeat(i % 50)).into_bytes()),
        headers: BTreeMap::from([("h".to_string(), i.to_string().into_bytes())]),
        timestamp: Utc.timestamp_millis_opt(ts_ms).unwrap(),
    }
}

/// An rskafka client of `b` that has created `topic` with `partitions` partitions.
async fn client_with_topic(
    b: &samsa_broker::server::RunningBroker,
    topic: &str,
    partitions: i32,
) -> rskafka::client::Client {
    let client = ClientBuilder::new(vec![b.kafka_addr.to_string()])
        .build()
        .await
        .unwrap();
    client
        .controller_client()
        .unwrap()
        .create_topic(topic, partitions, 1, 5_000)
        .await
        .unwrap();
    client
}

/// Fetches records `0..count` in order, checking offsets are contiguous.
async fn fetch_all(pc: &rskafka::client::partition::PartitionClient, count: i64) -> Vec<Record> {
    let mut got = Vec::new();
    let mut next = 0;
    while next < count {
        let (records, hw) = pc.fetch_records(next, 1..64 * 1024, 1_000).await.unwrap();
        assert_eq!(hw, count);
        for r in records {
            if r.offset >= next {
                assert_eq!(r.offset, next, "offsets are contiguous");
                next += 1;
                got.push(r.record);
            }
        }
    }
    got
}

#[tokio::test]
async fn rskafka_round_trip_in_order_with_offsets_and_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let client = client_with_topic(&b, "rt", 2).await;
    let topics = client.list_topics().await.unwrap();
    let rt = topics
        .iter()
        .find(|t| t.name == "rt")
        .expect("topic listed");
    assert_eq!(rt.partitions.len(), 2);

    let pc = client
        .partition_client("rt", 1, UnknownTopicHandling::Error)
        .await
        .unwrap();
    let base_ts = now_ms() - 10_000;
    let mut sent = Vec::new();
    for chunk in 0..10 {
        let records: Vec<Record> = (0..50)
            .map(|i| record(chunk * 50 + i, base_ts + (chunk * 50 + i) as i64))
            .collect();
        let compression = if chunk % 2 == 0 {
            Compression::NoCompression
        } else {
            Compression::Gzip
        };
        let offsets = pc.produce(records.clone(), compression).await.unwrap();
        assert_eq!(
            offsets,
            ((chunk * 50) as i64..(chunk * 50 + 50) as i64).collect::<Vec<_>>()
        );
        sent.extend(records);
    }
    assert_eq!(pc.get_offset(OffsetAt::Earliest).await.unwrap(), 0);
    assert_eq!(pc.get_offset(OffsetAt::Latest).await.unwrap(), 500);
    // The first record at or after a timestamp, inside a batch.
    let at = pc
        .get_offset(OffsetAt::Timestamp(
            Utc.timestamp_millis_opt(base_ts + 123).unwrap(),
        ))
        .await
        .unwrap();
    assert_eq!(at, 123);

    let got = fetch_all(&pc, 500).await;
    assert_eq!(got.len(), sent.len());
    for (i, (g, s)) in got.iter().zip(&sent).enumerate() {
        assert_eq!(g.key, s.key, "record {i}");
        assert_eq!(g.value, s.value, "record {i}");
        assert_eq!(g.headers, s.headers, "record {i}");
        assert_eq!(g.timestamp, s.timestamp, "record {i}");
    }
    // The other partition is untouched.
    let pc0 = client
        .partition_client("rt", 0, UnknownTopicHandling::Error)
        .await
        .unwrap();
    assert_eq!(pc0.get_offset(OffsetAt::Latest).await.unwrap(), 0);
    b.shutdown().await;
}

fn produce_req(
    topic: &str,
    partition: i32,
    acks: i16,
    records: Option<bytes::Bytes>,
) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(1000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(records)])])
}

async fn produce_code(c: &mut RawClient, req: &ProduceRequest) -> (i16, i64) {
    let resp = c.call(9, req).await;
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

#[tokio::test]
async fn bad_produce_requests_get_kafka_error_codes_and_append_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker_with(dir.path(), |c| c.message_max_bytes = 2_000).await;
    let mut c = RawClient::connect(b.kafka_addr).await;
    let create = CreateTopicsRequest::default().with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("p")))
            .with_num_partitions(1)
            .with_replication_factor(1),
    ]);
    assert_eq!(c.call(5, &create).await.topics[0].error_code, 0);
    let good = batch(&[(Some(b"k"), b"v")], now_ms());

    let mut corrupt = good.to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff; // inside the CRC range
    assert_eq!(
        produce_code(&mut c, &produce_req("p", 0, 1, Some(corrupt.into())))
            .await
            .0,
        2,
        "CORRUPT_MESSAGE"
    );
    let mut wrong_magic = good.to_vec();
    wrong_magic[16] = 1;
    let code = produce_code(&mut c, &produce_req("p", 0, 1, Some(wrong_magic.into())))
        .await
        .0;
    assert!(code == 2 || code == 87, "magic 1 refused, got {code}");
    let two = [&good[..], &good[..]].concat();
    assert_eq!(
        produce_code(&mut c, &produce_req("p", 0, 1, Some(two.into())))
            .await
            .0,
        87,
        "INVALID_RECORD"
    );
    assert_eq!(
        produce_code(&mut c, &produce_req("p", 0, 1, Some(good.slice(..30))))
            .await
            .0,
        2,
        "truncated"
    );
    assert_eq!(
        produce_code(&mut c, &produce_req("p", 0, 1, None)).await.0,
        87,
        "no records"
    );
    let big = batch(&[(None, &[7u8; 3_000][..])], now_ms());
    assert_eq!(
        produce_code(&mut c, &produce_req("p", 0, 1, Some(big)))
            .await
            .0,
        10,
        "MESSAGE_TOO_LARGE"
    );
    assert_eq!(
        produce_code(&mut c, &produce_req("nope", 0, 1, Some(good.clone())))
            .await
            .0,
        3
    );
    assert_eq!(
        produce_code(&mut c, &produce_req("p", 5, 1, Some(good.clone())))
            .await
            .0,
        3
    );
    assert_eq!(
        produce_code(&mut c, &produce_req("p", 0, 2, Some(good.clone())))
            .await
            .0,
        21,
        "INVALID_REQUIRED_ACKS"
    );

    // min.insync.replicas 2 cannot be met by one broker: acks=all is refused, acks=1 is not.
    let alter = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("p"))
            .with_configs(vec![
                incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(StrBytes::from_static_str("min.insync.replicas"))
                    .with_value(Some(StrBytes::from_static_str("2"))),
            ]),
    ]);
    assert_eq!(c.call(1, &alter).await.responses[0].error_code, 0);
    assert_eq!(
        produce_code(&mut c, &produce_req("p", 0, -1, Some(good.clone())))
            .await
            .0,
        19,
        "NOT_ENOUGH_REPLICAS"
    );
    // Nothing so far was appended: the first good batch gets offset 0.
    assert_eq!(
        produce_code(&mut c, &produce_req("p", 0, 1, Some(good.clone()))).await,
        (0, 0)
    );

    // Produce v2 is advertised for librdkafka's sake but refused with UNSUPPORTED_VERSION.
    // Produce v2 body: acks, timeout, [topic "p", [partition 0, empty message set]].
    let mut body = bytes::BytesMut::new();
    use bytes::BufMut;
    body.put_i16(1);
    body.put_i32(1000);
    body.put_i32(1);
    body.put_i16(1);
    body.put_slice(b"p");
    body.put_i32(1);
    body.put_i32(0);
    body.put_i32(0);
    let framed = common::raw_frame(0, 2, 99, &body);
    c.write_raw(&framed).await.unwrap();
    let f = c.read_frame().await.unwrap();
    // corr(4) n(4) name(2+1) n(4) partition(4) error(2)
    assert_eq!(i32::from_be_bytes(f[..4].try_into().unwrap()), 99);
    assert_eq!(i16::from_be_bytes(f[19..21].try_into().unwrap()), 35);
    b.shutdown().await;
}

#[tokio::test]
async fn acks_zero_gets_no_response_but_is_appended() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let mut c = RawClient::connect(b.kafka_addr).await;
    common::auto_create(&mut c, "z").await;
    for _ in 0..3 {
        c.send(
            9,
            &produce_req("z", 0, 0, Some(batch(&[(None, b"v")], now_ms()))),
        )
        .await;
    }
    // The next response on this connection is the ListOffsets answer, not a produce response.
    let req = ListOffsetsRequest::default().with_topics(vec![
        list_offsets_request::ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("z")))
            .with_partitions(vec![
                list_offsets_request::ListOffsetsPartition::default().with_timestamp(-1)
            ]),
    ]);
    let resp = c.call(5, &req).await;
    assert_eq!(resp.topics[0].partitions[0].offset, 3);
    b.shutdown().await;
}

#[tokio::test]
async fn fetch_long_polls_until_data_or_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let mut admin = RawClient::connect(b.kafka_addr).await;
    let mut consumer = RawClient::connect(b.kafka_addr).await;
    common::auto_create(&mut admin, "lp").await;
    let fetch = |wait: i32| {
        FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(wait)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("lp")))
                .with_partitions(vec![FetchPartition::default()
                    .with_fetch_offset(0)
                    .with_partition_max_bytes(1 << 20)])])
    };
    // Nothing arrives: the broker holds the request for about max_wait_ms.
    let started = Instant::now();
    let resp = consumer.call(11, &fetch(300)).await;
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "answered after {:?}",
        started.elapsed()
    );
    assert_eq!(
        resp.responses[0].partitions[0]
            .records
            .as_ref()
            .map(|r| r.len()),
        Some(0)
    );
    // Data arrives while the fetch waits: it is answered with that data, well before the wait ends.
    let corr = consumer.send(11, &fetch(20_000)).await;
    let produce = produce_req("lp", 0, 1, Some(batch(&[(None, b"wake")], now_ms())));
    assert_eq!(
        admin.call(9, &produce).await.responses[0].partition_responses[0].error_code,
        0
    );
    let started = Instant::now();
    let mut frame = consumer.read_frame().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    use kafka_protocol::protocol::Decodable;
    let header = ResponseHeader::decode(&mut frame, 0).unwrap();
    assert_eq!(header.correlation_id, corr);
    let resp = FetchResponse::decode(&mut frame, 11).unwrap();
    let p = &resp.responses[0].partitions[0];
    assert_eq!(p.high_watermark, 1);
    assert!(p.records.as_ref().unwrap().windows(4).any(|w| w == b"wake"));
    // Offset out of range.
    let bad = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("lp")))
            .with_partitions(vec![FetchPartition::default()
                .with_fetch_offset(5)
                .with_partition_max_bytes(1000)])]);
    assert_eq!(
        consumer.call(11, &bad).await.responses[0].partitions[0].error_code,
        1
    );
    b.shutdown().await;
}

#[tokio::test]
async fn data_and_topics_survive_restart_and_crash() {
    let dir = tempfile::tempdir().unwrap();
    // Recent timestamps: retention (7 days by default) must not delete them at restart.
    let now = samsa_broker::server::now_ms();
    let mut expected = Vec::new();
    {
        let b = broker(dir.path()).await;
        let client = client_with_topic(&b, "keep", 3).await;
        let pc = client
            .partition_client("keep", 2, UnknownTopicHandling::Error)
            .await
            .unwrap();
        for i in 0..100 {
            pc.produce(vec![record(i, now + i as i64)], Compression::NoCompression)
                .await
                .unwrap();
            expected.push(record(i, now + i as i64));
        }
        b.shutdown().await; // clean
    }
    {
        // Crash-like: the broker is dropped without a clean close after more appends.
        let b = broker(dir.path()).await;
        let client = ClientBuilder::new(vec![b.kafka_addr.to_string()])
            .build()
            .await
            .unwrap();
        let pc = client
            .partition_client("keep", 2, UnknownTopicHandling::Error)
            .await
            .unwrap();
        assert_eq!(pc.get_offset(OffsetAt::Latest).await.unwrap(), 100);
        let offsets = pc
            .produce(vec![record(100, now + 500)], Compression::NoCompression)
            .await
            .unwrap();
        assert_eq!(offsets, vec![100]);
        expected.push(record(100, now + 500));
        drop(b);
    }
    let b = broker(dir.path()).await;
    let client = ClientBuilder::new(vec![b.kafka_addr.to_string()])
        .build()
        .await
        .unwrap();
    let topics = client.list_topics().await.unwrap();
    assert_eq!(
        topics
            .iter()
            .find(|t| t.name == "keep")
            .unwrap()
            .partitions
            .len(),
        3
    );
    let pc = client
        .partition_client("keep", 2, UnknownTopicHandling::Error)
        .await
        .unwrap();
    assert_eq!(pc.get_offset(OffsetAt::Earliest).await.unwrap(), 0);
    assert_eq!(pc.get_offset(OffsetAt::Latest).await.unwrap(), 101);
    assert_eq!(fetch_all(&pc, 101).await, expected);
    b.shutdown().await;
}

/// Large fetches are sent from the segment files (several file ranges in one frame, with the
/// encoded fields between them): every version decodes, and the records are the ones
/// produced, byte for byte, in order, with the offsets they were acknowledged at.
#[tokio::test]
async fn large_fetches_across_partitions_and_segments_return_exact_records() {
    use kafka_protocol::records::RecordBatchDecoder;
    let dir = tempfile::tempdir().unwrap();
    let b = broker_with(dir.path(), |c| {
        c.log_segment_bytes = 256 * 1024;
        c.num_partitions = 2;
    })
    .await;
    let mut c = RawClient::connect(b.kafka_addr).await;
    common::auto_create(&mut c, "big").await;
    let mut c = RawClient::connect(b.kafka_addr).await;
    let value = |p: i32, i: usize| format!("p{p}-{i:05}-{}", "v".repeat(1000)).into_bytes();
    let per_batch = 50;
    let batches = 16; // 16 x 50 x ~1 KiB = ~800 KiB per partition, four segments
    let now = now_ms();
    for i in 0..batches {
        let data = (0..2)
            .map(|p| {
                let values: Vec<Vec<u8>> = (0..per_batch)
                    .map(|j| value(p, i * per_batch + j))
                    .collect();
                let records: Vec<(Option<&[u8]>, &[u8])> =
                    values.iter().map(|v| (None, v.as_slice())).collect();
                PartitionProduceData::default()
                    .with_index(p)
                    .with_records(Some(batch(&records, now)))
            })
            .collect();
        let resp = c
            .call(
                9,
                &ProduceRequest::default()
                    .with_acks(-1)
                    .with_timeout_ms(5_000)
                    .with_topic_data(vec![TopicProduceData::default()
                        .with_name(common::topic_name("big"))
                        .with_partition_data(data)]),
            )
            .await;
        for pr in &resp.responses[0].partition_responses {
            assert_eq!(pr.error_code, 0);
            assert_eq!(pr.base_offset, (i * per_batch) as i64);
        }
    }
    let total = (batches * per_batch) as i64;
    for version in [4i16, 7, 11, 12] {
        let mut next = [0i64; 2];
        let mut rounds = 0;
        while next.iter().any(|&n| n < total) {
            rounds += 1;
            assert!(rounds < 100, "fetch makes progress");
            let partitions = (0..2)
                .map(|p| {
                    FetchPartition::default()
                        .with_partition(p)
                        .with_fetch_offset(next[p as usize])
                        .with_partition_max_bytes(300 * 1024)
                })
                .collect();
            let resp = c
                .call(
                    version,
                    &FetchRequest::default()
                        .with_max_wait_ms(100)
                        .with_max_bytes(10 << 20)
                        .with_topics(vec![FetchTopic::default()
                            .with_topic(common::topic_name("big"))
                            .with_partitions(partitions)]),
                )
                .await;
            for pd in &resp.responses[0].partitions {
                assert_eq!(pd.error_code, 0);
                assert_eq!(pd.high_watermark, total);
                let p = pd.partition_index;
                let mut records = pd.records.clone().unwrap();
                let size = records.len();
                assert!(
                    size <= 300 * 1024 || next[p as usize] == total,
                    "v{version}: {size} bytes"
                );
                let set = RecordBatchDecoder::decode(&mut records).unwrap();
                for r in set.records {
                    let n = &mut next[p as usize];
                    if r.offset < *n {
                        continue;
                    }
                    assert_eq!(r.offset, *n, "v{version} p{p}: offsets contiguous");
                    assert_eq!(r.value.as_deref(), Some(value(p, *n as usize).as_slice()));
                    *n += 1;
                }
            }
        }
        // Some rounds had to send ranges from more than one segment.
        assert!(
            rounds >= 3,
            "v{version}: the fetch limit split the log ({rounds} rounds)"
        );
    }
    b.shutdown().await;
}
