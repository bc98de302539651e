//! Cluster-wide dynamic broker defaults: IncrementalAlterConfigs on the BROKER resource "" sets
//! the default of every topic without an override of its own, live (retention, max message
//! size, min.insync.replicas); DescribeConfigs shows it as DYNAMIC_DEFAULT_BROKER_CONFIG; it
//! survives restarts, on a single broker and in a three-broker cluster.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::cluster::Cluster;
use common::{batch, broker_with, create_topic, list_offset, topic_name, RawClient};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use samsa_broker::server::now_ms;

const WAIT: Duration = Duration::from_secs(30);
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const TOPIC_SOURCE: i8 = 1;
const DYNAMIC_BROKER: i8 = 2;
const DYNAMIC_DEFAULT: i8 = 3;
const STATIC_BROKER: i8 = 4;
const DEFAULT: i8 = 5;
const MESSAGE_TOO_LARGE: i16 = 10;
const NOT_ENOUGH_REPLICAS: i16 = 19;
const INVALID_CONFIG: i16 = 40;
const INVALID_REQUEST: i16 = 42;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// IncrementalAlterConfigs on the BROKER resource `name`: (error code, message).
async fn alter_broker(
    c: &mut RawClient,
    name: &str,
    ops: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> (i16, String) {
    let configs = ops
        .iter()
        .map(|(k, op, v)| {
            AlterableConfig::default()
                .with_name(s(k))
                .with_config_operation(*op)
                .with_value(v.map(s))
        })
        .collect();
    let req = IncrementalAlterConfigsRequest::default()
        .with_validate_only(validate_only)
        .with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(s(name))
            .with_configs(configs)]);
    let resp = c.call(1, &req).await;
    let r = &resp.responses[0];
    (
        r.error_code,
        r.error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    value: String,
    source: i8,
    read_only: bool,
    /// (name, value, source)
    synonyms: Vec<(String, String, i8)>,
}

/// DescribeConfigs (with synonyms) of one key of a resource (type 2 topic, 4 broker).
async fn describe(c: &mut RawClient, resource_type: i8, name: &str, key: &str) -> Entry {
    let req = DescribeConfigsRequest::default()
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(s(name))
            .with_configuration_keys(Some(vec![s(key)]))])
        .with_include_synonyms(true);
    let resp = c.call(4, &req).await;
    let r = &resp.results[0];
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    assert_eq!(r.configs.len(), 1, "{key} of {name}");
    let e = &r.configs[0];
    Entry {
        value: e.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
        source: e.config_source,
        read_only: e.read_only,
        synonyms: e
            .synonyms
            .iter()
            .map(|y| {
                (
                    y.name.to_string(),
                    y.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                    y.source,
                )
            })
            .collect(),
    }
}

async fn broker_key(c: &mut RawClient, key: &str) -> (String, i8) {
    let e = describe(c, 4, "", key).await;
    (e.value, e.source)
}

async fn topic_key(c: &mut RawClient, topic: &str, key: &str) -> (String, i8) {
    let e = describe(c, 2, topic, key).await;
    (e.value, e.source)
}

/// Produces one record with `acks`: the partition's error code.
async fn produce(c: &mut RawClient, topic: &str, acks: i16, timestamp: i64, value: &[u8]) -> i16 {
    let req = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(1000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_records(Some(batch(&[(None, value)], timestamp)))])]);
    let resp = c.call(9, &req).await;
    resp.responses[0].partition_responses[0].error_code
}

async fn wait_earliest(c: &mut RawClient, topic: &str, want: i64) -> i64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let got = list_offset(c, topic, -2).await;
        if got == want || tokio::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn single_broker_dynamic_defaults_apply_live_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    let tweak =
        |c: &mut samsa_broker::config::BrokerConfig| c.log_retention_check_interval_ms = 100;
    {
        let b = broker_with(dir.path(), tweak).await;
        let mut c = RawClient::connect(b.kafka_addr).await;
        // "plain" has no retention or size override (only small segments); "own" has its own.
        create_topic(&mut c, "plain", &[("segment.bytes", "300")]).await;
        create_topic(
            &mut c,
            "own",
            &[("retention.ms", "77777"), ("max.message.bytes", "100000")],
        )
        .await;
        let old = now_ms() - 3_600_000;
        for i in 0..5 {
            assert_eq!(produce(&mut c, "plain", 1, old + i, &[b'x'; 200]).await, 0);
        }
        for _ in 0..3 {
            assert_eq!(produce(&mut c, "plain", 1, now_ms(), &[b'x'; 200]).await, 0);
        }
        assert_eq!(
            list_offset(&mut c, "plain", -2).await,
            0,
            "a week's retention"
        );

        let (code, msg) = alter_broker(
            &mut c,
            "",
            &[
                ("log.retention.ms", SET, Some("600000")),
                ("min.insync.replicas", SET, Some("2")),
                ("message.max.bytes", SET, Some("2000")),
            ],
            false,
        )
        .await;
        assert_eq!(code, 0, "{msg}");

        let e = describe(&mut c, 4, "", "log.retention.ms").await;
        assert_eq!(e.value, "600000");
        assert_eq!(e.source, DYNAMIC_DEFAULT);
        assert!(!e.read_only);
        assert_eq!(
            e.synonyms,
            vec![
                ("log.retention.ms".into(), "600000".into(), DYNAMIC_DEFAULT),
                ("log.retention.ms".into(), "604800000".into(), STATIC_BROKER),
            ]
        );
        // The same through the broker's own id.
        assert_eq!(
            describe(&mut c, 4, "1", "message.max.bytes").await.value,
            "2000"
        );
        let e = describe(&mut c, 4, "", "num.partitions").await;
        assert!(e.read_only);
        assert_eq!(e.source, STATIC_BROKER);
        let e = describe(&mut c, 4, "", "log.segment.bytes").await;
        assert!(!e.read_only, "dynamic-capable even when not set");
        assert_eq!(e.source, STATIC_BROKER);

        // Topics follow the new defaults unless they override the key.
        let e = describe(&mut c, 2, "plain", "retention.ms").await;
        assert_eq!((e.value.as_str(), e.source), ("600000", DYNAMIC_DEFAULT));
        assert!(e.synonyms.contains(&(
            "log.retention.ms".into(),
            "600000".into(),
            DYNAMIC_DEFAULT
        )));
        assert_eq!(
            topic_key(&mut c, "plain", "min.insync.replicas").await,
            ("2".into(), DYNAMIC_DEFAULT)
        );
        assert_eq!(
            topic_key(&mut c, "plain", "max.message.bytes").await,
            ("2000".into(), DYNAMIC_DEFAULT)
        );
        assert_eq!(
            topic_key(&mut c, "plain", "segment.bytes").await,
            ("300".into(), TOPIC_SOURCE)
        );
        assert_eq!(
            topic_key(&mut c, "plain", "segment.ms").await,
            ("604800000".into(), DEFAULT)
        );
        assert_eq!(
            topic_key(&mut c, "own", "retention.ms").await,
            ("77777".into(), TOPIC_SOURCE)
        );

        // Live: retention deletes the hour-old segments, large batches and acks=all are refused.
        assert_eq!(
            wait_earliest(&mut c, "plain", 5).await,
            5,
            "the new retention.ms default applies to the existing topic"
        );
        assert_eq!(
            produce(&mut c, "plain", 1, now_ms(), &[b'y'; 3000]).await,
            MESSAGE_TOO_LARGE
        );
        assert_eq!(
            produce(&mut c, "own", 1, now_ms(), &[b'y'; 3000]).await,
            0,
            "a topic with its own max.message.bytes keeps it"
        );
        assert_eq!(
            produce(&mut c, "plain", -1, now_ms(), b"z").await,
            NOT_ENOUGH_REPLICAS,
            "min.insync.replicas 2 on one broker"
        );
        assert_eq!(produce(&mut c, "plain", 1, now_ms(), b"z").await, 0);

        // Refusals name the key; nothing changes.
        let (code, msg) =
            alter_broker(&mut c, "", &[("no.such.config", SET, Some("1"))], false).await;
        assert_eq!(code, INVALID_CONFIG);
        assert!(msg.contains("no.such.config"), "{msg}");
        let (code, msg) =
            alter_broker(&mut c, "", &[("num.partitions", SET, Some("3"))], false).await;
        assert_eq!(code, INVALID_REQUEST);
        assert!(msg.contains("num.partitions"), "{msg}");
        let (code, msg) = alter_broker(
            &mut c,
            "",
            &[("log.retention.ms", SET, Some("soon"))],
            false,
        )
        .await;
        assert_eq!(code, INVALID_REQUEST);
        assert!(
            msg.contains("log.retention.ms") && msg.contains("soon"),
            "{msg}"
        );
        let (code, msg) = alter_broker(
            &mut c,
            "",
            &[("min.insync.replicas", SET, Some("0"))],
            false,
        )
        .await;
        assert_eq!(code, INVALID_REQUEST);
        assert!(msg.contains("min.insync.replicas"), "{msg}");
        let (code, msg) = alter_broker(
            &mut c,
            "",
            &[("log.cleanup.policy", APPEND, Some("compact"))],
            false,
        )
        .await;
        assert_eq!(code, INVALID_REQUEST);
        assert!(msg.contains("log.cleanup.policy"), "{msg}");
        // A per-broker value comes before the cluster-wide default (on this broker only: a
        // single broker refuses another id, naming the one it has).
        let (code, msg) = alter_broker(
            &mut c,
            "1",
            &[("log.retention.ms", SET, Some("900000"))],
            false,
        )
        .await;
        assert_eq!(code, 0, "{msg}");
        let e = describe(&mut c, 4, "1", "log.retention.ms").await;
        assert_eq!((e.value.as_str(), e.source), ("900000", DYNAMIC_BROKER));
        assert_eq!(
            e.synonyms,
            vec![
                ("log.retention.ms".into(), "900000".into(), DYNAMIC_BROKER),
                ("log.retention.ms".into(), "600000".into(), DYNAMIC_DEFAULT),
                ("log.retention.ms".into(), "604800000".into(), STATIC_BROKER),
            ]
        );
        assert_eq!(
            topic_key(&mut c, "plain", "retention.ms").await,
            ("900000".into(), DYNAMIC_BROKER)
        );
        let (code, msg) =
            alter_broker(&mut c, "1", &[("log.retention.ms", DELETE, None)], false).await;
        assert_eq!(code, 0, "{msg}");
        let (code, msg) = alter_broker(
            &mut c,
            "2",
            &[("log.retention.ms", SET, Some("1000"))],
            false,
        )
        .await;
        assert_eq!(code, INVALID_REQUEST);
        assert!(msg.contains("expected 1"), "{msg}");
        // validate_only checks and changes nothing.
        assert_eq!(
            alter_broker(&mut c, "", &[("log.retention.ms", SET, Some("1000"))], true)
                .await
                .0,
            0
        );
        assert_eq!(
            alter_broker(&mut c, "", &[("log.retention.ms", SET, Some("x"))], true)
                .await
                .0,
            INVALID_REQUEST
        );
        assert_eq!(
            broker_key(&mut c, "log.retention.ms").await,
            ("600000".into(), DYNAMIC_DEFAULT)
        );

        // DELETE goes back to the flag.
        let (code, msg) =
            alter_broker(&mut c, "", &[("message.max.bytes", DELETE, None)], false).await;
        assert_eq!(code, 0, "{msg}");
        assert_eq!(
            broker_key(&mut c, "message.max.bytes").await,
            ("1048588".into(), STATIC_BROKER)
        );
        assert_eq!(
            topic_key(&mut c, "plain", "max.message.bytes").await,
            ("1048588".into(), DEFAULT)
        );
        assert_eq!(
            produce(&mut c, "plain", 1, now_ms(), &[b'y'; 3000]).await,
            0
        );
        b.shutdown().await;
    }

    // After a restart the remaining defaults still hold.
    let b = broker_with(dir.path(), tweak).await;
    let mut c = RawClient::connect(b.kafka_addr).await;
    assert_eq!(
        broker_key(&mut c, "log.retention.ms").await,
        ("600000".into(), DYNAMIC_DEFAULT)
    );
    assert_eq!(
        broker_key(&mut c, "message.max.bytes").await,
        ("1048588".into(), STATIC_BROKER)
    );
    assert_eq!(
        topic_key(&mut c, "plain", "min.insync.replicas").await,
        ("2".into(), DYNAMIC_DEFAULT)
    );
    assert_eq!(
        produce(&mut c, "plain", -1, now_ms(), b"z").await,
        NOT_ENOUGH_REPLICAS
    );
    let (code, msg) =
        alter_broker(&mut c, "", &[("min.insync.replicas", DELETE, None)], false).await;
    assert_eq!(code, 0, "{msg}");
    assert_eq!(produce(&mut c, "plain", -1, now_ms(), b"z").await, 0);
    b.shutdown().await;
}

/// Retries `alter_broker` while the quorum is not ready yet.
async fn alter_retrying(c: &mut RawClient, ops: &[(&str, i8, Option<&str>)]) -> (i16, String) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let out = alter_broker(c, "", ops, false).await;
        if out.0 == 0 || tokio::time::Instant::now() >= deadline {
            return out;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until broker-level `key` described through `c` is `want`.
async fn wait_broker_key(c: &mut RawClient, key: &str, want: (&str, i8)) -> (String, i8) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = broker_key(c, key).await;
        if (got.0.as_str(), got.1) == want || tokio::time::Instant::now() >= deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn cluster_dynamic_defaults_reach_every_broker_and_survive_restarts() {
    let mut cluster = Cluster::start().await;
    let mut c2 = cluster.client(2).await;
    let (code, msg) = alter_retrying(
        &mut c2,
        &[
            ("log.retention.ms", SET, Some("600000")),
            ("message.max.bytes", SET, Some("5000")),
        ],
    )
    .await;
    assert_eq!(code, 0, "{msg}");
    for id in 1..=3 {
        let mut c = cluster.client(id).await;
        assert_eq!(
            wait_broker_key(&mut c, "log.retention.ms", ("600000", DYNAMIC_DEFAULT)).await,
            ("600000".into(), DYNAMIC_DEFAULT),
            "broker {id}"
        );
        assert_eq!(
            wait_broker_key(&mut c, "message.max.bytes", ("5000", DYNAMIC_DEFAULT)).await,
            ("5000".into(), DYNAMIC_DEFAULT),
            "broker {id}"
        );
    }

    // A topic created afterwards, described on another broker, follows the defaults.
    let mut c1 = cluster.client(1).await;
    create_topic(&mut c1, "dyn", &[]).await;
    let mut c3 = cluster.client(3).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let seen = loop {
        let req = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("dyn"))
                .with_configuration_keys(Some(vec![s("retention.ms")])),
        ]);
        let resp = c3.call(4, &req).await;
        let r = &resp.results[0];
        if r.error_code == 0 || tokio::time::Instant::now() >= deadline {
            break r
                .configs
                .first()
                .map(|e| (e.value.as_ref().map(|v| v.to_string()), e.config_source));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(seen, Some((Some("600000".to_string()), DYNAMIC_DEFAULT)));

    // Changed while broker 3 is down: it learns the change from the metadata when it is back.
    cluster.stop(3).await;
    let (code, msg) = alter_retrying(
        &mut c1,
        &[
            ("log.retention.ms", DELETE, None),
            ("message.max.bytes", SET, Some("6000")),
        ],
    )
    .await;
    assert_eq!(code, 0, "{msg}");
    cluster.restart(3).await;
    let mut c3 = cluster.client(3).await;
    assert_eq!(
        wait_broker_key(&mut c3, "message.max.bytes", ("6000", DYNAMIC_DEFAULT)).await,
        ("6000".into(), DYNAMIC_DEFAULT)
    );
    assert_eq!(
        wait_broker_key(&mut c3, "log.retention.ms", ("604800000", STATIC_BROKER)).await,
        ("604800000".into(), STATIC_BROKER)
    );
    cluster.shutdown().await;
}
