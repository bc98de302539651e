//! The cluster-wide metrics of three brokers in one process: consumer lag exported by a group's
//! coordinator only where it is right (the partitions it leads, from their high watermark),
//! the offline-partition count and the per-partition leader reported by one broker so that
//! summing or joining the brokers' `/metrics` counts every partition once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::cluster::Cluster;
use common::{batch, http_get, topic_name, RawClient};
use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use samsa_broker::server::now_ms;

const WAIT: Duration = Duration::from_secs(30);
const TOPIC: &str = "lagged";
const GROUP: &str = "lag-group";

/// One sample: metric name, labels, value.
type Sample = (String, BTreeMap<String, String>, i64);

/// The samples of `name` in a Prometheus text exposition.
fn samples(text: &str, name: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (metric, labels) = match series.split_once('{') {
            Some((m, rest)) => (m, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if metric != name {
            continue;
        }
        let labels = labels
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
            .collect();
        out.push((
            metric.to_string(),
            labels,
            value.parse::<f64>().unwrap() as i64,
        ));
    }
    out
}

async fn metrics(cluster: &Cluster, id: i32) -> String {
    let b = cluster.brokers[(id - 1) as usize].as_ref().unwrap();
    http_get(b.metrics_addr, "/metrics").await.1
}

/// Polls until `check` accepts the running brokers' `/metrics` (by broker id); the last
/// failure otherwise.
async fn wait_metrics(
    cluster: &Cluster,
    what: &str,
    check: impl Fn(&BTreeMap<i32, String>) -> Result<(), String>,
) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let Err(why) = check(&all_metrics(cluster).await) else {
            return;
        };
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {why}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Partition i of TOPIC on broker i + 1 only (RF 1).
async fn create_one_partition_per_broker(c: &mut RawClient) {
    let assignments = (0..3)
        .map(|i| {
            CreatableReplicaAssignment::default()
                .with_partition_index(i)
                .with_broker_ids(vec![BrokerId(i + 1)])
        })
        .collect();
    let req = CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
        .with_name(topic_name(TOPIC))
        .with_num_partitions(-1)
        .with_replication_factor(-1)
        .with_assignments(assignments)]);
    let resp = c.call(7, &req).await;
    assert_eq!(resp.topics[0].error_code, 0, "{:?}", resp.topics[0]);
}

/// 100 records to `partition` through its leader, retrying until that broker applied its
/// leadership.
async fn produce_100(c: &mut RawClient, partition: i32) {
    let values: Vec<String> = (0..100).map(|i| format!("v{i}")).collect();
    let records: Vec<(Option<&[u8]>, &[u8])> =
        values.iter().map(|v| (None, v.as_bytes())).collect();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let req = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic_name(TOPIC))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(batch(&records, now_ms())))])]);
        let resp = c.call(9, &req).await;
        let p = &resp.responses[0].partition_responses[0];
        if p.error_code == 0 {
            assert_eq!(p.base_offset, 0, "partition {partition} starts empty");
            return;
        }
        assert!(
            [3, 6].contains(&p.error_code) && tokio::time::Instant::now() < deadline,
            "produce to partition {partition}: error {}",
            p.error_code
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// FindCoordinator v4 for GROUP until it names one.
async fn coordinator(c: &mut RawClient) -> i32 {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let req = FindCoordinatorRequest::default()
            .with_key_type(0)
            .with_coordinator_keys(vec![StrBytes::from_static_str(GROUP)]);
        let found = &c.call(4, &req).await.coordinators[0];
        if found.error_code == 0 {
            return found.node_id.0;
        }
        assert!(tokio::time::Instant::now() < deadline, "no coordinator");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Commits offset 40 on every partition of TOPIC (retrying while the coordinator loads).
async fn commit_40(c: &mut RawClient) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let req = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str(GROUP)))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(topic_name(TOPIC))
                .with_partitions(
                    (0..3)
                        .map(|i| {
                            OffsetCommitRequestPartition::default()
                                .with_partition_index(i)
                                .with_committed_offset(40)
                        })
                        .collect(),
                )]);
        let codes: Vec<i16> = c.call(8, &req).await.topics[0]
            .partitions
            .iter()
            .map(|p| p.error_code)
            .collect();
        if codes.iter().all(|c| *c == 0) {
            return;
        }
        assert!(
            codes.iter().all(|c| [3, 14, 16].contains(c)) && tokio::time::Instant::now() < deadline,
            "commit: {codes:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// (partition, value) of `name`'s samples of TOPIC (and of GROUP, for group metrics).
fn of_topic(text: &str, name: &str) -> BTreeMap<i32, i64> {
    samples(text, name)
        .into_iter()
        .filter(|(_, l, _)| {
            l.get("topic").map(String::as_str) == Some(TOPIC)
                && l.get("group").is_none_or(|g| g == GROUP)
        })
        .map(|(_, l, v)| (l["partition"].parse().unwrap(), v))
        .collect()
}

fn sum_of(texts: &BTreeMap<i32, String>, name: &str) -> i64 {
    texts
        .values()
        .map(|t| samples(t, name).iter().map(|s| s.2).sum::<i64>())
        .sum()
}

/// Every partition's leader gauge over all brokers: (topic, partition) -> reported values.
fn leader_series(texts: &BTreeMap<i32, String>) -> BTreeMap<(String, i32), Vec<i64>> {
    let mut out: BTreeMap<(String, i32), Vec<i64>> = BTreeMap::new();
    for text in texts.values() {
        for (_, l, v) in samples(text, "samsa_partition_leader") {
            let key = (l["topic"].clone(), l["partition"].parse().unwrap());
            out.entry(key).or_default().push(v);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lag_offline_and_leaders_count_every_partition_once() {
    let mut cluster = Cluster::start().await;
    let mut c1 = cluster.client(1).await;
    create_one_partition_per_broker(&mut c1).await;
    for p in 0..3 {
        let mut leader = cluster.client(p + 1).await;
        produce_100(&mut leader, p).await;
    }
    let coord = coordinator(&mut c1).await;
    let mut cc = cluster.client(coord).await;
    commit_40(&mut cc).await;

    // The user's case: the coordinator knows the commits of all three partitions but leads
    // only partition coord - 1; its lag is 60 there and nothing (not 0) elsewhere.
    let led = coord - 1;
    wait_metrics(&cluster, "the coordinator's lag", |texts| {
        let text = &texts[&coord];
        let committed = of_topic(text, "samsa_consumer_group_committed_offset");
        let lag = of_topic(text, "samsa_consumer_group_lag");
        if committed != BTreeMap::from([(0, 40), (1, 40), (2, 40)]) {
            return Err(format!("committed {committed:?}"));
        }
        assert!(
            lag.values().all(|v| *v == 60),
            "a wrong lag is exported: {lag:?} (broker {coord} coordinates)"
        );
        if lag != BTreeMap::from([(led, 60)]) {
            return Err(format!("lag {lag:?}"));
        }
        Ok(())
    })
    .await;
    for (id, text) in &all_metrics(&cluster).await {
        if *id != coord {
            assert!(
                of_topic(text, "samsa_consumer_group_lag").is_empty(),
                "broker {id} does not coordinate {GROUP}"
            );
        }
    }

    // Every partition's leader once, over all brokers; nothing offline.
    wait_metrics(&cluster, "the leaders, once each", |texts| {
        let leaders = leader_series(texts);
        let mine: Vec<_> = (0..3)
            .map(|p| leaders.get(&(TOPIC.to_string(), p)).cloned())
            .collect();
        if mine != vec![Some(vec![1]), Some(vec![2]), Some(vec![3])] {
            return Err(format!("leaders of {TOPIC}: {mine:?}"));
        }
        if let Some(repeated) = leaders.iter().find(|(_, v)| v.len() != 1) {
            return Err(format!("repeated: {repeated:?}"));
        }
        match sum_of(texts, "samsa_offline_partitions") {
            0 => Ok(()),
            n => Err(format!("{n} offline")),
        }
    })
    .await;

    // Broker 1 (the reporter so far, and the only replica of partition 0) goes: partition 0 is
    // offline, counted once, and its leader reads -1 once, from broker 2.
    cluster.stop(1).await;
    wait_metrics(&cluster, "partition 0 offline, once", |texts| {
        let offline = sum_of(texts, "samsa_offline_partitions");
        let leaders = leader_series(texts);
        let p0 = leaders.get(&(TOPIC.to_string(), 0));
        if offline != 1 || p0 != Some(&vec![-1]) {
            return Err(format!(
                "offline summed {offline}, leader of {TOPIC}-0 {p0:?}"
            ));
        }
        let from_2 = of_topic(&texts[&2], "samsa_partition_leader");
        if from_2 != BTreeMap::from([(0, -1), (1, 2), (2, 3)]) {
            return Err(format!("broker 2 reports {from_2:?}"));
        }
        if let Some(repeated) = leaders.iter().find(|(_, v)| v.len() != 1) {
            return Err(format!("repeated: {repeated:?}"));
        }
        Ok(())
    })
    .await;
    cluster.shutdown().await;
}

/// The running brokers' `/metrics`.
async fn all_metrics(cluster: &Cluster) -> BTreeMap<i32, String> {
    let mut texts = BTreeMap::new();
    for id in 1..=3 {
        if cluster.brokers[(id - 1) as usize].is_some() {
            texts.insert(id, metrics(cluster, id).await);
        }
    }
    texts
}
