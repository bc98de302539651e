//! Partition reassignment over the wire on three in-process brokers: AlterPartitionReassignments
//! moves replicas (the data follows, the leaving broker drops its copy), changes the replication
//! factor, is cancelled midway; ListPartitionReassignments shows the adding and removing
//! replicas; bad requests get Kafka's error codes.

mod common;

use std::time::Duration;

use common::cluster::Cluster;
use common::{batch, topic_name, RawClient};
use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use samsa_broker::server::now_ms;

const WAIT: Duration = Duration::from_secs(30);

async fn create(c: &mut RawClient, name: &str, replicas: &[i32]) {
    let resp = c
        .call(
            7,
            &CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
                .with_name(topic_name(name))
                .with_num_partitions(-1)
                .with_replication_factor(-1)
                .with_assignments(vec![CreatableReplicaAssignment::default()
                    .with_partition_index(0)
                    .with_broker_ids(replicas.iter().map(|b| BrokerId(*b)).collect())])]),
        )
        .await;
    assert_eq!(resp.topics[0].error_code, 0, "{:?}", resp.topics[0]);
}

/// (replicas, isr, leader) of partition 0, as broker `c` answers Metadata.
async fn partition(c: &mut RawClient, name: &str) -> (Vec<i32>, Vec<i32>, i32) {
    let resp = c
        .call(9, &MetadataRequest::default().with_topics(None))
        .await;
    let Some(t) = resp
        .topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some(name))
    else {
        return (vec![], vec![], -1);
    };
    let p = &t.partitions[0];
    let ids = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<_>>();
    let mut isr = ids(&p.isr_nodes);
    isr.sort_unstable();
    (ids(&p.replica_nodes), isr, p.leader_id.0)
}

async fn wait_partition(
    c: &mut RawClient,
    name: &str,
    what: &str,
    want: impl Fn(&(Vec<i32>, Vec<i32>, i32)) -> bool,
) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = partition(c, name).await;
        if want(&got) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: (replicas, isr, leader) {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn reassign(c: &mut RawClient, name: &str, target: Option<&[i32]>) -> (i16, String) {
    let req = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![ReassignableTopic::default()
            .with_name(topic_name(name))
            .with_partitions(vec![ReassignablePartition::default()
                .with_partition_index(0)
                .with_replicas(
                    target.map(|t| t.iter().map(|b| BrokerId(*b)).collect()),
                )])]);
    let resp = c.call(0, &req).await;
    let p = &resp.responses[0].partitions[0];
    (
        p.error_code,
        p.error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}

/// (replicas, adding, removing) of the moving partitions of `name`.
async fn listed(c: &mut RawClient, name: &str) -> Vec<(Vec<i32>, Vec<i32>, Vec<i32>)> {
    let resp = c
        .call(
            0,
            &ListPartitionReassignmentsRequest::default().with_topics(None),
        )
        .await;
    assert_eq!(resp.error_code, 0);
    let ids = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<_>>();
    resp.topics
        .iter()
        .filter(|t| t.name.0.as_str() == name)
        .flat_map(|t| t.partitions.iter())
        .map(|p| {
            (
                ids(&p.replicas),
                ids(&p.adding_replicas),
                ids(&p.removing_replicas),
            )
        })
        .collect()
}

async fn produce(c: &mut RawClient, name: &str, n: usize) {
    for i in 0..n {
        let value = format!("v{i}");
        let records = batch(&[(None, value.as_bytes())], now_ms());
        let req = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic_name(name))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(records))])]);
        let resp = c.call(9, &req).await;
        assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
    }
}

/// Bytes in the `.log` files of `name`-0 under a broker's data dir.
fn local_log_bytes(cluster: &Cluster, broker: i32, name: &str) -> u64 {
    let dir = cluster.configs[(broker - 1) as usize]
        .data_dir
        .join(format!("{name}-0"));
    std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
                .map(|e| e.metadata().map_or(0, |m| m.len()))
                .sum()
        })
        .unwrap_or(0)
}

async fn latest(c: &mut RawClient, name: &str) -> (i16, i64) {
    let req = ListOffsetsRequest::default().with_topics(vec![
        list_offsets_request::ListOffsetsTopic::default()
            .with_name(topic_name(name))
            .with_partitions(vec![
                list_offsets_request::ListOffsetsPartition::default().with_timestamp(-1)
            ]),
    ]);
    let p = &c.call(7, &req).await.topics[0].partitions[0];
    (p.error_code, p.offset)
}

/// Waits until the leader `c` answers ListOffsets latest with `want`.
async fn wait_latest(c: &mut RawClient, name: &str, want: i64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = latest(c, name).await;
        if got == (0, want) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "latest offset of {name}: {got:?}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_move_follow_the_data_and_leave_no_copy_behind() {
    let mut cluster = Cluster::start().await;
    let mut c = cluster.client(2).await;
    create(&mut c, "moving", &[1, 2]).await;
    // Broker 1 itself says it leads (its own image applied), before anything is produced.
    let mut leader = cluster.client(1).await;
    wait_partition(&mut leader, "moving", "leader 1", |p| {
        p.2 == 1 && p.1 == [1, 2]
    })
    .await;
    produce(&mut leader, "moving", 50).await;
    assert!(local_log_bytes(&cluster, 1, "moving") > 0);

    // [1, 2] -> [2, 3]: 3 catches up, joins the ISR, 1 leaves and hands over leadership.
    assert_eq!(reassign(&mut c, "moving", Some(&[2, 3])).await.0, 0);
    wait_partition(&mut c, "moving", "the move to [2, 3]", |p| {
        p.0 == [2, 3] && p.1 == [2, 3] && p.2 == 2
    })
    .await;
    assert!(
        listed(&mut c, "moving").await.is_empty(),
        "nothing moves any more"
    );
    let mut c3 = cluster.client(3).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while local_log_bytes(&cluster, 1, "moving") > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "broker 1 still holds its copy"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut new_leader = cluster.client(2).await;
    // The new leader's high watermark reaches the end once its follower fetched again.
    wait_latest(&mut new_leader, "moving", 50).await;
    assert_eq!(
        latest(&mut leader, "moving").await.0,
        6,
        "NOT_LEADER_OR_FOLLOWER on 1"
    );
    assert!(
        local_log_bytes(&cluster, 3, "moving") > 0,
        "3 holds the data"
    );

    // Replication factor 2 -> 3 -> 2.
    assert_eq!(reassign(&mut c, "moving", Some(&[2, 3, 1])).await.0, 0);
    wait_partition(&mut c, "moving", "three in-sync replicas", |p| {
        p.0 == [2, 3, 1] && p.1 == [1, 2, 3]
    })
    .await;
    wait_partition(
        &mut new_leader,
        "moving",
        "broker 2 leading, by its own image",
        |p| p.2 == 2,
    )
    .await;
    produce(&mut new_leader, "moving", 10).await;
    assert_eq!(reassign(&mut c, "moving", Some(&[2, 3])).await.0, 0);
    wait_partition(&mut c, "moving", "two replicas again", |p| {
        p.0 == [2, 3] && p.1 == [2, 3]
    })
    .await;
    assert_eq!(latest(&mut c3, "moving").await.0, 6);
    wait_latest(&mut new_leader, "moving", 60).await;

    // A move to a broker that is down waits (it cannot catch up) and shows in the listing;
    // cancelling it goes back.
    cluster.stop(1).await;
    assert_eq!(reassign(&mut c, "moving", Some(&[2, 1])).await.0, 0);
    let moving = listed(&mut c, "moving").await;
    assert_eq!(moving, vec![(vec![2, 1, 3], vec![1], vec![3])]);
    assert_eq!(
        reassign(&mut c, "moving", Some(&[2, 1, 1])).await.0,
        39,
        "INVALID_REPLICA_ASSIGNMENT"
    );
    assert_eq!(reassign(&mut c, "moving", None).await.0, 0);
    assert!(listed(&mut c, "moving").await.is_empty());
    wait_partition(&mut c, "moving", "back to [2, 3]", |p| p.0 == [2, 3]).await;
    let (code, message) = reassign(&mut c, "moving", None).await;
    assert_eq!(code, 85, "NO_REASSIGNMENT_IN_PROGRESS: {message}");
    let (code, message) = reassign(&mut c, "moving", Some(&[2, 9])).await;
    assert_eq!(code, 39, "{message}");
    assert!(message.contains("broker 9"), "{message}");
    let (code, _) = reassign(&mut c, "absent", Some(&[2])).await;
    assert_eq!(code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    cluster.shutdown().await;
}
