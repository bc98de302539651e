//! Idempotent producers over the wire: InitProducerId, duplicates answered with their original
//! offsets, gaps and stale epochs refused, and producer state rebuilt at restart from the
//! snapshots taken at segment rolls and the log after them.

mod common;

use std::time::Duration;

use common::{batch, broker, broker_with, list_offset, producer_batch, topic_name, RawClient};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use samsa_broker::server::now_ms;

async fn produce(c: &mut RawClient, records: bytes::Bytes) -> (i16, i64) {
    produce_to(c, "idem", records).await
}

async fn produce_to(c: &mut RawClient, topic: &str, records: bytes::Bytes) -> (i16, i64) {
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(1000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![
                PartitionProduceData::default().with_records(Some(records))
            ])]);
    let resp = c.call(9, &req).await;
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

async fn latest(c: &mut RawClient) -> i64 {
    let req = ListOffsetsRequest::default().with_topics(vec![
        list_offsets_request::ListOffsetsTopic::default()
            .with_name(topic_name("idem"))
            .with_partitions(vec![
                list_offsets_request::ListOffsetsPartition::default().with_timestamp(-1)
            ]),
    ]);
    c.call(7, &req).await.topics[0].partitions[0].offset
}

#[tokio::test]
async fn retries_are_deduplicated_and_gaps_refused_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let mut c = RawClient::connect(b.kafka_addr).await;
    common::auto_create(&mut c, "idem").await;

    let mut ids = Vec::new();
    for v in 0..=5 {
        let resp = c
            .call(
                v,
                &InitProducerIdRequest::default()
                    .with_transactional_id(None)
                    .with_transaction_timeout_ms(60_000),
            )
            .await;
        assert_eq!(
            (resp.error_code, resp.producer_epoch),
            (0, 0),
            "InitProducerId v{v}"
        );
        ids.push(resp.producer_id.0);
    }
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(
        unique.len(),
        ids.len(),
        "every call gets a new producer id: {ids:?}"
    );
    let txn = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("t"))));
    assert_eq!(
        c.call(4, &txn).await.error_code,
        42,
        "transactions are not served yet"
    );

    let pid = ids[0];
    let recs: [(Option<&[u8]>, &[u8]); 3] = [(None, b"a"), (None, b"b"), (None, b"c")];
    let first = producer_batch(&recs, now_ms(), pid, 0, 0);
    assert_eq!(produce(&mut c, first.clone()).await, (0, 0));
    assert_eq!(
        produce(&mut c, first.clone()).await,
        (0, 0),
        "a retry gets its original offset"
    );
    assert_eq!(latest(&mut c).await, 3, "and is not stored twice");
    assert_eq!(
        produce(&mut c, producer_batch(&recs, now_ms(), pid, 0, 7))
            .await
            .0,
        45,
        "OUT_OF_ORDER_SEQUENCE_NUMBER"
    );
    let second = producer_batch(&recs[..1], now_ms(), pid, 0, 3);
    assert_eq!(produce(&mut c, second.clone()).await, (0, 3));
    // Another producer interleaves; sequences are per producer.
    assert_eq!(
        produce(&mut c, producer_batch(&recs[..2], now_ms(), ids[1], 0, 0)).await,
        (0, 4)
    );
    b.shutdown().await;

    // After a restart the state comes back from the log.
    let b = broker(dir.path()).await;
    let mut c = RawClient::connect(b.kafka_addr).await;
    assert_eq!(
        produce(&mut c, second).await,
        (0, 3),
        "still a duplicate after restart"
    );
    assert_eq!(
        produce(&mut c, first).await,
        (0, 0),
        "within the window of five batches"
    );
    assert_eq!(
        produce(&mut c, producer_batch(&recs[..1], now_ms(), pid, 0, 5))
            .await
            .0,
        45
    );
    assert_eq!(
        produce(&mut c, producer_batch(&recs[..1], now_ms(), pid, 0, 4)).await,
        (0, 6)
    );
    // A new epoch restarts at 0; the old epoch is then fenced.
    assert_eq!(
        produce(&mut c, producer_batch(&recs[..1], now_ms(), pid, 1, 0)).await,
        (0, 7)
    );
    assert_eq!(
        produce(&mut c, producer_batch(&recs[..1], now_ms(), pid, 0, 5))
            .await
            .0,
        47,
        "INVALID_PRODUCER_EPOCH"
    );
    assert_eq!(latest(&mut c).await, 8);
    // Ids are never handed out twice, even after a restart.
    let resp = c.call(4, &InitProducerIdRequest::default()).await;
    assert!(
        !ids.contains(&resp.producer_id.0),
        "{} reused",
        resp.producer_id.0
    );
    b.shutdown().await;
}

#[tokio::test]
async fn a_producer_outlives_its_batches_deleted_by_retention_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let fast_retention = |c: &mut samsa_broker::config::BrokerConfig| {
        c.log_retention_check_interval_ms = 50;
    };
    let b = broker_with(dir.path(), fast_retention).await;
    let mut c = RawClient::connect(b.kafka_addr).await;
    // One batch per segment; retention keeps only the newest segment.
    common::create_topic(
        &mut c,
        "roll",
        &[("segment.bytes", "100"), ("retention.bytes", "1")],
    )
    .await;
    let init = InitProducerIdRequest::default().with_transactional_id(None);
    let resp = c.call(4, &init).await;
    assert_eq!(resp.error_code, 0);
    let pid = resp.producer_id.0;
    let value: &[u8] = &[b'v'; 64];
    for seq in 0..3 {
        let sent = producer_batch(&[(None, value)], now_ms(), pid, 0, seq);
        assert_eq!(produce_to(&mut c, "roll", sent).await, (0, i64::from(seq)));
    }
    for offset in 3..6 {
        let plain = batch(&[(None, value)], now_ms());
        assert_eq!(produce_to(&mut c, "roll", plain).await, (0, offset));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while list_offset(&mut c, "roll", -2).await != 5 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "retention never deleted the first five segments"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.shutdown().await;

    let b = broker(dir.path()).await;
    let mut c = RawClient::connect(b.kafka_addr).await;
    assert_eq!(list_offset(&mut c, "roll", -2).await, 5);
    // The producer's last batch is gone from the log but not from its state: a retry is a
    // duplicate with its original offset, and the next sequence appends.
    let retry = producer_batch(&[(None, value)], now_ms(), pid, 0, 2);
    assert_eq!(produce_to(&mut c, "roll", retry).await, (0, 2));
    let next = producer_batch(&[(None, value)], now_ms(), pid, 0, 3);
    assert_eq!(produce_to(&mut c, "roll", next).await, (0, 6));
    b.shutdown().await;
}
