//! Replication throttles over the wire, in a three-broker cluster: a follower that fell far
//! behind catches up at about the bound while its replica is throttled (follower side on one
//! broker, leader side on another), and fast once the bound is removed. The rates are printed.
//! Per-broker throttle rates are set and described as Kafka's tools do (BROKER resource named
//! by the id), and they survive a restart of the broker they are for. A partition reassignment
//! throttled as `kafka-reassign-partitions --throttle` does it copies at about the bound.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::{batch, http_get, topic_name, RawClient};
use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use samsa_broker::server::now_ms;

const MIB: f64 = 1024.0 * 1024.0;
/// The throttle: 1 MiB/s.
const RATE: &str = "1048576";
/// Data the follower misses while it is down.
const BEHIND: usize = 10 << 20;
/// How long the throttled catch-up is measured.
const MEASURE: Duration = Duration::from_secs(8);
const SET: i8 = 0;
const DELETE: i8 = 1;
const DYNAMIC_BROKER: i8 = 2;
const DEFAULT: i8 = 5;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// IncrementalAlterConfigs of one resource (2 topic, 4 broker): (error code, message).
async fn alter(
    c: &mut RawClient,
    resource_type: i8,
    name: &str,
    ops: &[(&str, i8, Option<&str>)],
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
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(s(name))
            .with_configs(configs),
    ]);
    let resp = c.call(1, &req).await;
    let r = &resp.responses[0];
    let msg = r.error_message.as_ref().map(|m| m.to_string());
    (r.error_code, msg.unwrap_or_default())
}

/// DescribeConfigs of one broker key on the broker `c` talks to: (value, source).
async fn describe_broker(c: &mut RawClient, name: &str, key: &str) -> (i16, String, i8) {
    let req =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(s(name))
            .with_configuration_keys(Some(vec![s(key)]))]);
    let resp = c.call(4, &req).await;
    let r = &resp.results[0];
    match r.configs.first() {
        Some(e) => (
            r.error_code,
            e.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
            e.config_source,
        ),
        None => (r.error_code, String::new(), -1),
    }
}

/// Creates a one-partition topic on `replicas` (the first leads) with `configs`.
async fn create(c: &mut RawClient, name: &str, replicas: &[i32], configs: &[(&str, &str)]) {
    let topic = CreatableTopic::default()
        .with_name(topic_name(name))
        .with_num_partitions(-1)
        .with_replication_factor(-1)
        .with_assignments(vec![CreatableReplicaAssignment::default()
            .with_partition_index(0)
            .with_broker_ids(replicas.iter().map(|b| BrokerId(*b)).collect())])
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(s(k))
                        .with_value(Some(s(v)))
                })
                .collect(),
        );
    let resp = c
        .call(
            7,
            &CreateTopicsRequest::default()
                .with_topics(vec![topic])
                .with_timeout_ms(10_000),
        )
        .await;
    assert_eq!(
        resp.topics[0].error_code, 0,
        "{:?}",
        resp.topics[0].error_message
    );
}

/// Produces `bytes` to partition 0 of `topic` (acks=1) in batches of 16 records of 16 KiB.
async fn produce(c: &mut RawClient, topic: &str, bytes: usize) {
    let value = vec![b'x'; 16 << 10];
    let records: Vec<(Option<&[u8]>, &[u8])> = (0..16).map(|_| (None, &value[..])).collect();
    let mut sent = 0;
    while sent < bytes {
        let req = ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic_name(topic))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch(&records, now_ms())))])]);
        let resp = c.call(9, &req).await;
        let code = resp.responses[0].partition_responses[0].error_code;
        assert_eq!(code, 0, "produce to {topic}");
        sent += 16 * value.len();
    }
}

/// A sample of `metric` on a broker's /metrics, for the series whose labels contain all of
/// `labels` (0 when absent).
async fn metric(cluster: &Cluster, id: i32, name: &str, labels: &[&str]) -> f64 {
    let b = cluster.brokers[(id - 1) as usize].as_ref().unwrap();
    let (_, body) = http_get(b.metrics_addr, "/metrics").await;
    body.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Bytes of partition 0 of `topic` on broker `id`.
async fn log_size(cluster: &Cluster, id: i32, topic: &str) -> f64 {
    let topic_label = format!("topic=\"{topic}\"");
    metric(
        cluster,
        id,
        "samsa_log_size_bytes",
        &[&topic_label, "partition=\"0\""],
    )
    .await
}

/// Waits (20 s at most) until `id`'s Metadata names `leader` as the leader of `topic`-0.
async fn wait_leader(cluster: &Cluster, id: i32, topic: &str, leader: i32) {
    let mut c = cluster.client(id).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let req =
            MetadataRequest::default()
                .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
                )
                .with_name(Some(topic_name(topic)))]));
        let resp = c.call(9, &req).await;
        let now = resp
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .map(|p| p.leader_id.0);
        if now == Some(leader) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{topic}: leader {now:?}, want {leader}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Restarts `follower` (stopped, `BEHIND` bytes behind on `topic`), measures its catch-up for
/// `MEASURE` while throttled (bytes/s from the first byte fetched), then removes the throttle
/// with `unthrottle` and waits for it to catch up: (throttled rate, unthrottled rate).
async fn catch_up(
    cluster: &mut Cluster,
    follower: i32,
    topic: &str,
    unthrottle: (i32, &str),
) -> (f64, f64) {
    let target = log_size(cluster, 1, topic).await;
    assert!(target >= BEHIND as f64, "leader holds {target} bytes");
    cluster.restart(follower).await;
    // The first byte fetched starts the clock.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (t0, b0) = loop {
        let b = log_size(cluster, follower, topic).await;
        if b > 0.0 {
            break (Instant::now(), b);
        }
        assert!(
            Instant::now() < deadline,
            "broker {follower} fetches nothing"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut b1 = b0;
    while t0.elapsed() < MEASURE {
        tokio::time::sleep(Duration::from_millis(100)).await;
        b1 = log_size(cluster, follower, topic).await;
        assert!(
            b1 < target,
            "caught up within the throttled window: not throttled"
        );
    }
    let throttled = (b1 - b0) / t0.elapsed().as_secs_f64();

    let mut c = cluster.client(2).await;
    let (code, msg) = alter(
        &mut c,
        4,
        &unthrottle.0.to_string(),
        &[(unthrottle.1, DELETE, None)],
    )
    .await;
    assert_eq!(code, 0, "{msg}");
    let t1 = Instant::now();
    let start = log_size(cluster, follower, topic).await;
    let deadline = t1 + Duration::from_secs(30);
    loop {
        let b = log_size(cluster, follower, topic).await;
        if b >= target {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "broker {follower} has {b} of {target} bytes 30 s after the throttle went"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let fast = (target - start) / t1.elapsed().as_secs_f64();
    (throttled, fast)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn throttled_followers_catch_up_at_the_bound() {
    // Followers ask for 256 KiB per partition and fetch: the bound is then kept in small steps.
    let mut cluster = Cluster::start_with(&["--replica-fetch-max-bytes", "262144"]).await;
    let mut c = cluster.client(1).await;

    // Per-broker throttle rates, set through any broker, described by the broker they are for.
    for (broker, key) in [
        (3, "follower.replication.throttled.rate"),
        (1, "leader.replication.throttled.rate"),
    ] {
        let (code, msg) = alter(&mut c, 4, &broker.to_string(), &[(key, SET, Some(RATE))]).await;
        assert_eq!(code, 0, "{msg}");
    }
    let (code, msg) = alter(
        &mut c,
        4,
        "3",
        &[("follower.replication.throttled.rate", SET, Some("-5"))],
    )
    .await;
    assert_eq!(code, 42, "a negative rate is refused: {msg}");
    assert!(msg.contains("follower.replication.throttled.rate"), "{msg}");
    let mut c3 = cluster.client(3).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = describe_broker(&mut c3, "3", "follower.replication.throttled.rate").await;
        if got == (0, RATE.to_string(), DYNAMIC_BROKER) {
            break;
        }
        assert!(Instant::now() < deadline, "broker 3 describes {got:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Broker 3 has no leader rate of its own: unlimited, Kafka's default.
    assert_eq!(
        describe_broker(&mut c3, "3", "leader.replication.throttled.rate").await,
        (0, i64::MAX.to_string(), DEFAULT)
    );

    // Follower side: broker 3 follows "fthrottled" and is listed there.
    create(
        &mut c,
        "fthrottled",
        &[1, 3],
        &[("follower.replication.throttled.replicas", "0:3")],
    )
    .await;
    let (code, msg) = alter(
        &mut c,
        2,
        "fthrottled",
        &[("follower.replication.throttled.replicas", SET, Some("0-3"))],
    )
    .await;
    assert_eq!(code, 40, "a malformed replica list is refused: {msg}");
    wait_leader(&cluster, 1, "fthrottled", 1).await;
    cluster.stop(3).await;
    produce(&mut c, "fthrottled", BEHIND).await;
    let (throttled, fast) = catch_up(
        &mut cluster,
        3,
        "fthrottled",
        (3, "follower.replication.throttled.rate"),
    )
    .await;
    println!(
        "follower throttle {RATE} B/s: caught up at {:.2} MiB/s throttled, {:.2} MiB/s without",
        throttled / MIB,
        fast / MIB
    );
    let counted = metric(
        &cluster,
        3,
        "samsa_replication_throttled_bytes_total",
        &["side=\"follower\""],
    )
    .await;
    assert!(counted >= 4.0 * MIB, "follower counted {counted} bytes");
    assert!(throttled <= 1.2 * MIB, "throttled at {throttled} B/s");
    assert!(throttled >= 0.5 * MIB, "barely moving: {throttled} B/s");
    assert!(fast > 2.0 * throttled, "unthrottled only {fast} B/s");

    // Leader side: broker 1 leads "lthrottled" and its replica is listed there; broker 2
    // follows it without a throttle of its own.
    create(
        &mut c,
        "lthrottled",
        &[1, 2],
        &[("leader.replication.throttled.replicas", "*")],
    )
    .await;
    wait_leader(&cluster, 1, "lthrottled", 1).await;
    cluster.stop(2).await;
    produce(&mut c, "lthrottled", BEHIND).await;
    let limit = metric(
        &cluster,
        1,
        "samsa_replication_throttle_limit_bytes",
        &["side=\"leader\""],
    )
    .await;
    assert_eq!(limit, 1_048_576.0);
    let (throttled, fast) = catch_up(
        &mut cluster,
        2,
        "lthrottled",
        (1, "leader.replication.throttled.rate"),
    )
    .await;
    println!(
        "leader throttle {RATE} B/s: caught up at {:.2} MiB/s throttled, {:.2} MiB/s without",
        throttled / MIB,
        fast / MIB
    );
    let counted = metric(
        &cluster,
        1,
        "samsa_replication_throttled_bytes_total",
        &["side=\"leader\""],
    )
    .await;
    assert!(counted >= 4.0 * MIB, "leader counted {counted} bytes");
    assert!(throttled <= 1.2 * MIB, "throttled at {throttled} B/s");
    assert!(throttled >= 0.5 * MIB, "barely moving: {throttled} B/s");
    assert!(fast > 2.0 * throttled, "unthrottled only {fast} B/s");

    // Broker 3's own config survived its restart (from the metadata and samsa-meta.json).
    let mut c1 = cluster.client(1).await;
    let (code, msg) = alter(
        &mut c1,
        4,
        "3",
        &[("follower.replication.throttled.rate", SET, Some("2097152"))],
    )
    .await;
    assert_eq!(code, 0, "{msg}");
    cluster.stop(3).await;
    // The stopped broker's quorum store is released a moment after it stops.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match samsa_broker::server::start(cluster.configs[2].clone()).await {
            Ok(b) => {
                cluster.brokers[2] = Some(b);
                break;
            }
            Err(e) => assert!(Instant::now() < deadline, "broker 3 does not restart: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut c3 = cluster.client(3).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = describe_broker(&mut c3, "3", "follower.replication.throttled.rate").await;
        if got == (0, "2097152".to_string(), DYNAMIC_BROKER) {
            break;
        }
        assert!(Instant::now() < deadline, "broker 3 describes {got:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.shutdown().await;
}

/// Replicas of partition 0 of `topic` as broker `c` answers Metadata.
async fn replicas(c: &mut RawClient, topic: &str) -> Vec<i32> {
    let req = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(topic_name(topic))),
    ]));
    let resp = c.call(9, &req).await;
    resp.topics
        .first()
        .and_then(|t| t.partitions.first())
        .map(|p| p.replica_nodes.iter().map(|b| b.0).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_throttled_move_copies_at_the_bound() {
    let cluster = Cluster::start().await;
    let mut c = cluster.client(1).await;
    create(&mut c, "moved", &[1, 2], &[]).await;
    wait_leader(&cluster, 1, "moved", 1).await;
    produce(&mut c, "moved", BEHIND).await;
    let target = log_size(&cluster, 1, "moved").await;
    // The in-sync follower first has everything (acks=1): its catch-up would otherwise count
    // towards the leader's throttle once the partition is listed, and starve the added replica
    // for as long as the 11 s window remembers it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while log_size(&cluster, 2, "moved").await < target {
        assert!(Instant::now() < deadline, "broker 2 does not catch up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // What `kafka-reassign-partitions --execute --throttle 1048576` sets for moving partition
    // 0 from [1, 2] to [1, 3]: the current replicas throttled on the leader side, the added one
    // on the follower side, both rates on every broker the move involves.
    let (code, msg) = alter(
        &mut c,
        2,
        "moved",
        &[
            (
                "leader.replication.throttled.replicas",
                SET,
                Some("0:1,0:2"),
            ),
            ("follower.replication.throttled.replicas", SET, Some("0:3")),
        ],
    )
    .await;
    assert_eq!(code, 0, "{msg}");
    for broker in ["1", "2", "3"] {
        let (code, msg) = alter(
            &mut c,
            4,
            broker,
            &[
                ("leader.replication.throttled.rate", SET, Some(RATE)),
                ("follower.replication.throttled.rate", SET, Some(RATE)),
            ],
        )
        .await;
        assert_eq!(code, 0, "{msg}");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for id in 1..=3 {
        while metric(
            &cluster,
            id,
            "samsa_replication_throttle_limit_bytes",
            &["side=\"follower\""],
        )
        .await
            != 1_048_576.0
        {
            assert!(Instant::now() < deadline, "broker {id} has no throttle yet");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    let req = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![ReassignableTopic::default()
            .with_name(topic_name("moved"))
            .with_partitions(vec![ReassignablePartition::default()
                .with_partition_index(0)
                .with_replicas(Some(vec![BrokerId(1), BrokerId(3)]))])]);
    let resp = c.call(0, &req).await;
    let p = &resp.responses[0].partitions[0];
    assert_eq!(p.error_code, 0, "{:?}", p.error_message);

    // The added replica's copy, from its first byte.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (t0, b0) = loop {
        let b = log_size(&cluster, 3, "moved").await;
        if b > 0.0 {
            break (Instant::now(), b);
        }
        assert!(Instant::now() < deadline, "broker 3 copies nothing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut b1 = b0;
    while t0.elapsed() < MEASURE {
        tokio::time::sleep(Duration::from_millis(100)).await;
        b1 = log_size(&cluster, 3, "moved").await;
        assert!(b1 < target, "the copy finished within the throttled window");
    }
    let throttled = (b1 - b0) / t0.elapsed().as_secs_f64();
    let mut during = replicas(&mut c, "moved").await;
    during.sort_unstable();
    assert_eq!(during, vec![1, 2, 3], "still moving");

    // As `--verify` does once done (here: to let it finish), the throttles go.
    let t1 = Instant::now();
    let start = log_size(&cluster, 3, "moved").await;
    for broker in ["1", "2", "3"] {
        let (code, msg) = alter(
            &mut c,
            4,
            broker,
            &[
                ("leader.replication.throttled.rate", DELETE, None),
                ("follower.replication.throttled.rate", DELETE, None),
            ],
        )
        .await;
        assert_eq!(code, 0, "{msg}");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while replicas(&mut c, "moved").await != vec![1, 3] {
        assert!(Instant::now() < deadline, "the move does not complete");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let fast = (target - start) / t1.elapsed().as_secs_f64();
    println!(
        "move throttled at {RATE} B/s (leader and follower): copied at {:.2} MiB/s throttled, \
         {:.2} MiB/s without",
        throttled / MIB,
        fast / MIB
    );
    assert_eq!(log_size(&cluster, 3, "moved").await, target);
    assert!(throttled <= 1.2 * MIB, "throttled at {throttled} B/s");
    assert!(throttled >= 0.5 * MIB, "barely moving: {throttled} B/s");
    assert!(fast > 2.0 * throttled, "unthrottled only {fast} B/s");
    cluster.shutdown().await;
}
