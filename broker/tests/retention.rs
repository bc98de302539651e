//! Background retention through the running broker: old segments go by time and by size,
//! and the earliest offset clients see moves with them.

mod common;

use std::time::Duration;

use common::{batch, broker_with, create_topic as create, list_offset, topic_name, RawClient};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use samsa_broker::server::now_ms;

async fn produce(c: &mut RawClient, name: &str, timestamp: i64, value: &[u8]) -> i64 {
    let req =
        ProduceRequest::default()
            .with_acks(1)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic_name(name))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_records(Some(batch(&[(None, value)], timestamp)))])]);
    let resp = c.call(9, &req).await;
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 0);
    p.base_offset
}

async fn earliest(c: &mut RawClient, name: &str) -> i64 {
    list_offset(c, name, -2).await
}

async fn wait_earliest(c: &mut RawClient, name: &str, want: i64) -> i64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let got = earliest(c, name).await;
        if got == want || tokio::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn retention_runs_in_the_background_by_time_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker_with(dir.path(), |c| c.log_retention_check_interval_ms = 100).await;
    let mut c = RawClient::connect(b.kafka_addr).await;
    let value = [b'x'; 200];

    // By time: one record per segment (segment.bytes below two batches), the first five an
    // hour old, retention 10 minutes.
    create(
        &mut c,
        "by-time",
        &[("segment.bytes", "300"), ("retention.ms", "600000")],
    )
    .await;
    let old = now_ms() - 3_600_000;
    for i in 0..5 {
        assert_eq!(produce(&mut c, "by-time", old + i, &value).await, i);
    }
    for i in 5..8 {
        assert_eq!(produce(&mut c, "by-time", now_ms(), &value).await, i);
    }
    assert_eq!(
        wait_earliest(&mut c, "by-time", 5).await,
        5,
        "the hour-old segments are gone"
    );

    // By size: ten segments of one batch each, retention.bytes about three segments.
    create(
        &mut c,
        "by-size",
        &[("segment.bytes", "300"), ("retention.bytes", "800")],
    )
    .await;
    for i in 0..10 {
        assert_eq!(produce(&mut c, "by-size", now_ms(), &value).await, i);
    }
    let start = wait_earliest(&mut c, "by-size", 7).await;
    assert_eq!(
        start, 7,
        "only the newest segments that fit in retention.bytes remain"
    );
    b.shutdown().await;
}
