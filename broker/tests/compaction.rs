//! Log compaction through the running broker: 100,000 updates over 1,000 keys shrink to the
//! latest value of each key at its acknowledged offset; tombstoned keys vanish after
//! delete.retention.ms; keyless records are refused; the result survives a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{
    broker_with, create_topic, http_get, list_offset, nullable_batch, topic_name, KeyValue,
    RawClient,
};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::records::RecordBatchDecoder;
use samsa_broker::config::BrokerConfig;
use samsa_broker::log::batch::BatchIter;
use samsa_broker::server::now_ms;

const TOPIC: &str = "compacted";
const KEYS: usize = 1_000;
const UPDATES: usize = 100;
const PER_BATCH: usize = 100;

/// (offset, key, value) as a consumer sees it.
type Rec = (i64, Vec<u8>, Option<Vec<u8>>);

fn fast_cleaner(c: &mut BrokerConfig) {
    c.log_cleaner_backoff_ms = 200;
}

async fn produce(c: &mut RawClient, records: &[KeyValue<'_>]) -> (i16, i64) {
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(TOPIC))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_records(Some(nullable_batch(records, now_ms())))])]);
    let resp = c.call(9, &req).await;
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// Produces `records` as (key, value) in batches of PER_BATCH; returns each one's offset.
async fn produce_all(c: &mut RawClient, records: &[(String, Option<String>)]) -> Vec<i64> {
    let mut offsets = Vec::with_capacity(records.len());
    for chunk in records.chunks(PER_BATCH) {
        let batch: Vec<KeyValue<'_>> = chunk
            .iter()
            .map(|(k, v)| (Some(k.as_bytes()), v.as_deref().map(str::as_bytes)))
            .collect();
        let (code, base) = produce(c, &batch).await;
        assert_eq!(code, 0);
        offsets.extend((0..chunk.len() as i64).map(|i| base + i));
    }
    offsets
}

/// The high watermark of the partition (ListOffsets latest).
async fn log_end(c: &mut RawClient) -> i64 {
    list_offset(c, TOPIC, -1).await
}

/// Every record of the topic, read with Fetch from offset 0 to the high watermark.
async fn read_all(c: &mut RawClient) -> Vec<Rec> {
    let end = log_end(c).await;
    let mut next = 0i64;
    let mut out = Vec::new();
    while next < end {
        let req = FetchRequest::default()
            .with_max_wait_ms(0)
            .with_min_bytes(1)
            .with_max_bytes(4 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(topic_name(TOPIC))
                .with_partitions(vec![FetchPartition::default()
                    .with_fetch_offset(next)
                    .with_partition_max_bytes(4 << 20)])]);
        let resp = c.call(11, &req).await;
        let p = &resp.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "fetch from {next}");
        let data: Bytes = p.records.clone().unwrap_or_default();
        assert!(
            !data.is_empty(),
            "fetch from {next} below {end} returned nothing"
        );
        for item in BatchIter::new(&data).verify_crc(true) {
            let (_, h) = item.expect("whole batches with valid CRCs");
            next = next.max(h.last_offset() + 1);
        }
        let mut buf = data;
        while !buf.is_empty() {
            let set = RecordBatchDecoder::decode(&mut buf).expect("batches decode");
            for r in set.records {
                if r.offset >= out.last().map_or(0, |l: &Rec| l.0 + 1) {
                    let key = r.key.expect("compacted records have keys").to_vec();
                    out.push((r.offset, key, r.value.map(|v| v.to_vec())));
                }
            }
        }
    }
    out
}

/// Polls `read_all` until `done` holds (at most 60 s); returns the last read.
async fn read_until(c: &mut RawClient, what: &str, done: impl Fn(&[Rec]) -> bool) -> Vec<Rec> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let records = read_all(c).await;
        if done(&records) {
            return records;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {} records",
            records.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of the first Prometheus metric line starting with `name` and containing `label`.
async fn metric(addr: std::net::SocketAddr, name: &str, label: &str) -> f64 {
    let (_, body) = http_get(addr, "/metrics").await;
    body.lines()
        .find(|l| l.starts_with(name) && l.contains(label))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Produces 1,000 records of new keys "{prefix}0000".. and adds them to `want`.
async fn produce_fresh(
    c: &mut RawClient,
    prefix: &str,
    want: &mut BTreeMap<String, (Option<String>, i64)>,
) {
    let fresh: Vec<(String, Option<String>)> = (0..KEYS)
        .map(|i| {
            (
                format!("{prefix}{i:04}"),
                Some(format!("{prefix}-fresh-{i}")),
            )
        })
        .collect();
    let offsets = produce_all(c, &fresh).await;
    for ((k, v), o) in fresh.into_iter().zip(offsets) {
        want.insert(k, (v, o));
    }
}

fn key(k: usize) -> String {
    format!("k{k:04}")
}

/// Checks that `records` hold exactly `want` (key → (value, offset)), in offset order.
fn assert_exactly(records: &[Rec], want: &BTreeMap<String, (Option<String>, i64)>) {
    let offsets: Vec<i64> = records.iter().map(|r| r.0).collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "offsets increase");
    let got: BTreeMap<String, (Option<String>, i64)> = records
        .iter()
        .map(|(o, k, v)| {
            let v = v.as_ref().map(|v| String::from_utf8(v.clone()).unwrap());
            (String::from_utf8(k.clone()).unwrap(), (v, *o))
        })
        .collect();
    assert_eq!(got.len(), records.len(), "one record per key");
    assert_eq!(&got, want);
}

#[tokio::test]
async fn compaction_keeps_the_latest_value_of_every_key() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker_with(dir.path(), fast_cleaner).await;
    let mut c = RawClient::connect(b.kafka_addr).await;
    create_topic(
        &mut c,
        TOPIC,
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "16384"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("delete.retention.ms", "1500"),
        ],
    )
    .await;

    // 100,000 updates: round u sets every key to "k{k}-u{u}".
    let updates: Vec<(String, Option<String>)> = (0..UPDATES)
        .flat_map(|u| (0..KEYS).map(move |k| (key(k), Some(format!("{}-u{u}", key(k))))))
        .collect();
    let offsets = produce_all(&mut c, &updates).await;
    assert_eq!(offsets, (0..(KEYS * UPDATES) as i64).collect::<Vec<_>>());
    let mut want: BTreeMap<String, (Option<String>, i64)> = BTreeMap::new();
    for ((k, v), o) in updates.iter().zip(&offsets) {
        want.insert(k.clone(), (v.clone(), *o));
    }
    // The active segment is never cleaned: 1,000 records of other keys push the updates out.
    produce_fresh(&mut c, "f", &mut want).await;
    let started = Instant::now();
    let records = read_until(&mut c, "1,000 live keys", |r| r.len() == want.len()).await;
    assert_exactly(&records, &want);
    let updated: Vec<&Rec> = records.iter().filter(|r| r.1[0] == b'k').collect();
    assert_eq!(
        updated.len(),
        KEYS,
        "exactly 1,000 live keys of the updates"
    );
    let size = metric(
        b.metrics_addr,
        "samsa_log_size_bytes{",
        "topic=\"compacted\"",
    )
    .await;
    let removed = metric(
        b.metrics_addr,
        "samsa_log_cleaner_removed_records_total ",
        "",
    )
    .await;
    eprintln!(
        "compaction: 100000 updates + 1000 ({} bytes produced) -> {} records, log {size} bytes, {} passes, cleaned {:?} after the last produce, last pass {} s",
        metric(b.metrics_addr, "samsa_produce_bytes_total ", "").await,
        records.len(),
        metric(b.metrics_addr, "samsa_log_cleaner_passes_total ", "").await,
        started.elapsed(),
        metric(b.metrics_addr, "samsa_log_cleaner_last_pass_seconds ", "").await,
    );
    assert_eq!(
        removed,
        (KEYS * (UPDATES - 1)) as f64,
        "each old update removed once"
    );
    assert!(size < 100_000.0, "log size {size}");

    // A keyless record is refused with INVALID_RECORD and nothing is appended.
    let end = log_end(&mut c).await;
    let (code, _) = produce(&mut c, &[(Some(b"k"), Some(b"v")), (None, Some(b"v"))]).await;
    assert_eq!(code, 87, "INVALID_RECORD");
    assert_eq!(log_end(&mut c).await, end);

    // Tombstones for 100 keys, pushed out of the active segment: once delete.retention.ms has
    // passed, those keys are gone entirely (neither value nor tombstone).
    let tombstones: Vec<(String, Option<String>)> = (0..100).map(|k| (key(k), None)).collect();
    produce_all(&mut c, &tombstones).await;
    for k in 0..100 {
        want.remove(&key(k));
    }
    produce_fresh(&mut c, "g", &mut want).await;
    let records = read_until(&mut c, "tombstoned keys to vanish", |r| {
        r.len() == want.len() && !r.iter().any(|rec| rec.2.is_none())
    })
    .await;
    assert_exactly(&records, &want);
    let updated = records.iter().filter(|r| r.1[0] == b'k').count();
    assert_eq!(updated, KEYS - 100);

    // The same contents after a restart.
    b.shutdown().await;
    let b = broker_with(dir.path(), fast_cleaner).await;
    let mut c = RawClient::connect(b.kafka_addr).await;
    assert_eq!(read_all(&mut c).await, records);
    b.shutdown().await;
}
