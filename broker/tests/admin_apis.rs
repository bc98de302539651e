//! ElectLeaders, DescribeCluster, DescribeLogDirs, DeleteRecords and UnregisterBroker over the
//! wire: on a single broker (the answers a broker without a quorum gives) and on three
//! in-process brokers (elections through the controller quorum, the log start moving on the
//! leader and followed by the followers, a stopped broker unregistered).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::cluster::Cluster;
use common::{batch, broker, list_offset, topic_name, RawClient};
use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;

const WAIT: Duration = Duration::from_secs(30);
const OFFSET_OUT_OF_RANGE: i16 = 1;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const NOT_LEADER_OR_FOLLOWER: i16 = 6;
const INVALID_REQUEST: i16 = 42;
const ELECTION_NOT_NEEDED: i16 = 84;
const BROKER_ID_NOT_REGISTERED: i16 = 102;
const MISMATCHED_ENDPOINT_TYPE: i16 = 114;

/// Produces `n` one-record batches to partition 0 of `topic` with acks=all, retrying while the
/// partition has no leader here yet; the base offset of the last one.
async fn produce(c: &mut RawClient, topic: &str, n: usize) -> i64 {
    let mut last = -1;
    for i in 0..n {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let value = format!("record-{i}");
            let req = ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(5000)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(topic_name(topic))
                    .with_partition_data(vec![PartitionProduceData::default()
                        .with_records(Some(batch(
                            &[(None, value.as_bytes())],
                            1_700_000_000_000,
                        )))])]);
            let resp = c.call(9, &req).await;
            let p = &resp.responses[0].partition_responses[0];
            if p.error_code == 0 {
                last = p.base_offset;
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "produce to {topic}: error {}",
                p.error_code
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    last
}

fn elect(election_type: i8, topic: Option<(&str, Vec<i32>)>) -> ElectLeadersRequest {
    ElectLeadersRequest::default()
        .with_election_type(election_type)
        .with_timeout_ms(10_000)
        .with_topic_partitions(topic.map(|(t, p)| {
            vec![TopicPartitions::default()
                .with_topic(topic_name(t))
                .with_partitions(p)]
        }))
}

/// The (partition, error) answers of ElectLeaders v2 for `topic`.
async fn election(c: &mut RawClient, req: &ElectLeadersRequest, topic: &str) -> Vec<(i32, i16)> {
    let resp = c.call(2, req).await;
    assert_eq!(resp.error_code, 0);
    resp.replica_election_results
        .iter()
        .filter(|t| t.topic.as_str() == topic)
        .flat_map(|t| {
            t.partition_result
                .iter()
                .map(|p| (p.partition_id, p.error_code))
        })
        .collect()
}

fn delete_records(topic: &str, offset: i64) -> DeleteRecordsRequest {
    DeleteRecordsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![DeleteRecordsPartition::default()
                .with_partition_index(0)
                .with_offset(offset)])])
}

/// (low watermark, error) of DeleteRecords v2 on partition 0.
async fn delete(c: &mut RawClient, topic: &str, offset: i64) -> (i64, i16) {
    let resp = c.call(2, &delete_records(topic, offset)).await;
    let p = &resp.topics[0].partitions[0];
    (p.low_watermark, p.error_code)
}

/// The error of a Fetch v12 of partition 0 at `offset`.
async fn fetch_code(c: &mut RawClient, topic: &str, offset: i64) -> i16 {
    let req = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])]);
    c.call(12, &req).await.responses[0].partitions[0].error_code
}

/// (topic, partition, size, lag) of every partition in a DescribeLogDirs answer.
async fn log_dirs(
    c: &mut RawClient,
    version: i16,
    topics: Option<Vec<&str>>,
) -> (DescribeLogDirsResponse, Vec<(String, i32, i64, i64)>) {
    let req = DescribeLogDirsRequest::default().with_topics(topics.map(|ts| {
        ts.into_iter()
            .map(|t| {
                DescribableLogDirTopic::default()
                    .with_topic(topic_name(t))
                    .with_partitions(vec![0, 1, 2])
            })
            .collect()
    }));
    let resp = c.call(version, &req).await;
    let rows = resp
        .results
        .iter()
        .flat_map(|r| {
            r.topics.iter().flat_map(|t| {
                t.partitions.iter().map(|p| {
                    (
                        t.name.as_str().to_string(),
                        p.partition_index,
                        p.partition_size,
                        p.offset_lag,
                    )
                })
            })
        })
        .collect();
    (resp, rows)
}

#[tokio::test]
async fn a_single_broker_answers_the_admin_apis() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let mut c = RawClient::connect(b.kafka_addr).await;
    common::create_topic(&mut c, "t", &[]).await;
    assert_eq!(produce(&mut c, "t", 6).await, 5);

    // DescribeCluster: this broker, as controller; operations only when asked.
    for version in 0..=2 {
        let resp = c.call(version, &DescribeClusterRequest::default()).await;
        assert_eq!(resp.error_code, 0);
        assert_eq!(resp.brokers.len(), 1);
        assert_eq!(resp.brokers[0].port, i32::from(b.kafka_addr.port()));
        assert_eq!(resp.controller_id, resp.brokers[0].broker_id);
        assert!(!resp.cluster_id.is_empty());
        assert_eq!(resp.cluster_authorized_operations, i32::MIN);
    }
    let asked = DescribeClusterRequest::default().with_include_cluster_authorized_operations(true);
    let ops = c.call(1, &asked).await.cluster_authorized_operations;
    assert_ne!(ops & (1 << 7), 0, "ALTER");
    assert_ne!(ops & (1 << 8), 0, "DESCRIBE");
    let controllers = DescribeClusterRequest::default().with_endpoint_type(2);
    assert_eq!(
        c.call(1, &controllers).await.error_code,
        MISMATCHED_ENDPOINT_TYPE
    );

    // DescribeLogDirs: one directory, the partition with its bytes, disk space from v4 on.
    let (resp, rows) = log_dirs(&mut c, 4, None).await;
    assert_eq!(resp.results.len(), 1);
    let result = &resp.results[0];
    assert_eq!(result.error_code, 0);
    assert!(result
        .log_dir
        .as_str()
        .ends_with(&*dir.path().file_name().unwrap().to_string_lossy()));
    assert!(
        result.total_bytes > 0
            && result.usable_bytes > 0
            && result.usable_bytes <= result.total_bytes
    );
    let t0 = rows
        .iter()
        .find(|r| r.0 == "t" && r.1 == 0)
        .expect("t-0 listed");
    assert!(t0.2 > 0, "size of t-0: {t0:?}");
    assert_eq!(t0.3, 0, "a leader has no lag");
    let (resp, rows) = log_dirs(&mut c, 1, Some(vec!["t", "missing"])).await;
    assert_eq!(resp.results[0].total_bytes, -1, "v1 has no disk space");
    assert_eq!(
        rows.iter().map(|r| (r.0.as_str(), r.1)).collect::<Vec<_>>(),
        vec![("t", 0)]
    );

    // DeleteRecords: the log start moves; fetch below it is out of range; earliest is it.
    assert_eq!(delete(&mut c, "t", 3).await, (3, 0));
    assert_eq!(list_offset(&mut c, "t", -2).await, 3);
    assert_eq!(fetch_code(&mut c, "t", 2).await, OFFSET_OUT_OF_RANGE);
    assert_eq!(fetch_code(&mut c, "t", 3).await, 0);
    assert_eq!(
        delete(&mut c, "t", 1).await,
        (3, 0),
        "a lower offset changes nothing"
    );
    assert_eq!(
        delete(&mut c, "t", 7).await,
        (-1, OFFSET_OUT_OF_RANGE),
        "above the HW"
    );
    assert_eq!(delete(&mut c, "t", -5).await.1, OFFSET_OUT_OF_RANGE);
    assert_eq!(
        delete(&mut c, "missing", 0).await.1,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    let v0 = c.call(0, &delete_records("t", 4)).await;
    assert_eq!(v0.topics[0].partitions[0].low_watermark, 4);
    assert_eq!(
        delete(&mut c, "t", -1).await,
        (6, 0),
        "-1 is the high watermark"
    );
    assert_eq!(list_offset(&mut c, "t", -2).await, 6);
    assert_eq!(
        produce(&mut c, "t", 1).await,
        6,
        "appends go on at the log end"
    );

    // ElectLeaders: a single broker leads all its partitions.
    assert_eq!(
        election(&mut c, &elect(0, Some(("t", vec![0]))), "t").await,
        vec![(0, ELECTION_NOT_NEEDED)]
    );
    assert_eq!(
        election(&mut c, &elect(1, Some(("t", vec![0, 9]))), "t").await,
        vec![(0, ELECTION_NOT_NEEDED), (9, UNKNOWN_TOPIC_OR_PARTITION)]
    );
    let all = c.call(2, &elect(0, None)).await;
    assert!(all
        .replica_election_results
        .iter()
        .any(|t| t.topic.as_str() == "t"));
    assert!(
        all.replica_election_results
            .iter()
            .all(|t| t.partition_result.is_empty()),
        "{all:?}"
    );
    let v0 = c.call(0, &elect(0, Some(("t", vec![0])))).await;
    assert_eq!(
        v0.replica_election_results[0].partition_result[0].error_code,
        ELECTION_NOT_NEEDED
    );
    let bad = c.call(1, &elect(7, Some(("t", vec![0])))).await;
    assert_eq!(bad.error_code, INVALID_REQUEST);

    // UnregisterBroker: nothing to unregister without a quorum.
    let resp = c
        .call(
            0,
            &UnregisterBrokerRequest::default().with_broker_id(BrokerId(42)),
        )
        .await;
    assert_eq!(resp.error_code, BROKER_ID_NOT_REGISTERED);
    assert!(!c.is_closed().await);

    // The log start survives a restart.
    b.shutdown().await;
    let b = broker(dir.path()).await;
    let mut c = RawClient::connect(b.kafka_addr).await;
    assert_eq!(list_offset(&mut c, "t", -2).await, 6);
    b.shutdown().await;
}

/// Leaders, ISRs of partition 0 of `topic`, as broker `c` answers Metadata.
async fn partition0(c: &mut RawClient, topic: &str) -> Option<(i32, Vec<i32>)> {
    let resp = c
        .call(9, &MetadataRequest::default().with_topics(None))
        .await;
    let t = resp
        .topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some(topic))?;
    let p = t.partitions.iter().find(|p| p.partition_index == 0)?;
    Some((p.leader_id.0, p.isr_nodes.iter().map(|b| b.0).collect()))
}

async fn wait_partition(
    c: &mut RawClient,
    topic: &str,
    what: &str,
    want: impl Fn(i32, &[i32]) -> bool,
) -> i32 {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = partition0(c, topic).await;
        if let Some((leader, isr)) = &got {
            if want(*leader, isr) {
                return *leader;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_earliest(c: &mut RawClient, topic: &str, want: i64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = list_offset(c, topic, -2).await;
        if got == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "earliest of {topic} is {got}, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn elections_delete_records_and_unregister_in_a_cluster() {
    let mut cluster = Cluster::start_with(&["--auto-leader-rebalance-enable", "false"]).await;
    let mut c = cluster.client(2).await;
    let created = c
        .call(
            7,
            &CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
                .with_name(topic_name("t"))
                .with_num_partitions(-1)
                .with_replication_factor(-1)
                .with_assignments(vec![CreatableReplicaAssignment::default()
                    .with_partition_index(0)
                    .with_broker_ids(vec![BrokerId(1), BrokerId(2), BrokerId(3)])])]),
        )
        .await;
    assert_eq!(created.topics[0].error_code, 0, "{:?}", created.topics[0]);
    wait_partition(&mut c, "t", "leader 1 with the full ISR", |l, isr| {
        l == 1 && isr.len() == 3
    })
    .await;
    let mut leader = cluster.client(1).await;
    assert_eq!(produce(&mut leader, "t", 10).await, 9);

    // Leadership moves away from broker 1 while it is down, and stays away after it is back.
    cluster.stop(1).await;
    let interim = wait_partition(&mut c, "t", "a new leader", |l, _| l == 2 || l == 3).await;
    cluster.restart(1).await;
    cluster.wait_registered().await;
    wait_partition(&mut c, "t", "broker 1 back in the ISR", |_, isr| {
        isr.contains(&1)
    })
    .await;
    assert_eq!(partition0(&mut c, "t").await.unwrap().0, interim);
    // Unclean elections are for partitions without a leader.
    assert_eq!(
        election(&mut c, &elect(1, Some(("t", vec![0]))), "t").await,
        vec![(0, ELECTION_NOT_NEEDED)]
    );
    // A preferred election hands it back, then none is needed; `all` leaves it out.
    assert_eq!(
        election(&mut c, &elect(0, Some(("t", vec![0, 5]))), "t").await,
        vec![(0, 0), (5, UNKNOWN_TOPIC_OR_PARTITION)]
    );
    wait_partition(&mut c, "t", "broker 1 leading again", |l, _| l == 1).await;
    assert_eq!(
        election(&mut c, &elect(0, Some(("t", vec![0]))), "t").await,
        vec![(0, ELECTION_NOT_NEEDED)]
    );
    assert_eq!(election(&mut c, &elect(0, None), "t").await, vec![]);
    assert_eq!(
        election(&mut c, &elect(0, Some(("nope", vec![0]))), "nope").await,
        vec![(0, UNKNOWN_TOPIC_OR_PARTITION)]
    );

    // DeleteRecords: only on the leader; followers follow its log start.
    let mut leader = cluster.client(1).await;
    wait_earliest(&mut leader, "t", 0).await;
    assert_eq!(delete(&mut c, "t", 4).await.1, NOT_LEADER_OR_FOLLOWER);
    assert_eq!(delete(&mut leader, "t", 4).await, (4, 0));
    wait_earliest(&mut leader, "t", 4).await;
    // Every replica holds the partition, with its bytes.
    for id in 1..=3 {
        let mut b = cluster.client(id).await;
        let (_, rows) = log_dirs(&mut b, 4, Some(vec!["t"])).await;
        assert_eq!(rows.len(), 1, "broker {id}: {rows:?}");
        assert!(rows[0].2 > 0, "broker {id}: {rows:?}");
    }
    // The follower that leads next answers the same earliest offset.
    produce(&mut leader, "t", 1).await; // a fetch round after the delete reaches both followers
    cluster.stop(1).await;
    let next = wait_partition(&mut c, "t", "a leader other than 1", |l, _| {
        l == 2 || l == 3
    })
    .await;
    let mut next_leader = cluster.client(next).await;
    wait_earliest(&mut next_leader, "t", 4).await;
    assert_eq!(
        fetch_code(&mut next_leader, "t", 3).await,
        OFFSET_OUT_OF_RANGE
    );

    // Broker 1 is stopped and fenced: unregistering it removes it from the metadata.
    let fenced = DescribeClusterRequest::default().with_include_fenced_brokers(true);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let resp = c.call(2, &fenced).await;
        let one = resp
            .brokers
            .iter()
            .find(|b| b.broker_id.0 == 1)
            .map(|b| b.is_fenced);
        if one == Some(true) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "broker 1 not fenced: {resp:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let unregister = UnregisterBrokerRequest::default().with_broker_id(BrokerId(1));
    let resp = c.call(0, &unregister).await;
    assert_eq!(resp.error_code, 0, "{resp:?}");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let resp = c.call(2, &fenced).await;
        let ids: Vec<i32> = resp.brokers.iter().map(|b| b.broker_id.0).collect();
        if ids == [2, 3] {
            assert_eq!(resp.controller_id.0, 2);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "brokers {ids:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        c.call(0, &unregister).await.error_code,
        BROKER_ID_NOT_REGISTERED
    );
    cluster.shutdown().await;
}
