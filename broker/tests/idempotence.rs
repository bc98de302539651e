//! Idempotent producers over the wire: InitProducerId, duplicates answered with their original
//! offsets, gaps and stale epochs refused, and producer state rebuilt from the log at restart.

mod common;

use common::{broker, producer_batch, topic_name, RawClient};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use samsa_broker::server::now_ms;

async fn produce(c: &mut RawClient, records: bytes::Bytes) -> (i16, i64) {
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(1000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name("idem"))
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
