//! Groups across three brokers in one process (cluster mode): FindCoordinator creates
//! `__consumer_offsets` through the controller and names the leader of the group's partition;
//! the other brokers answer NOT_COORDINATOR; committed offsets fail over with the partition's
//! leadership when the coordinator shuts down, and a restarted former coordinator stays out.
//! Also, with the same three brokers: leadership goes back to the preferred replicas after a
//! broker restarts (auto.leader.rebalance.enable).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::cluster::Cluster;
use common::{topic_name, RawClient};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

const WAIT: Duration = Duration::from_secs(30);
const NOT_COORDINATOR: i16 = 16;
const LOAD_IN_PROGRESS: i16 = 14;

/// FindCoordinator v4 for `group` until it names a coordinator: (node id, port).
async fn coordinator(c: &mut RawClient, group: &str) -> (i32, i32) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let req = FindCoordinatorRequest::default()
            .with_key_type(0)
            .with_coordinator_keys(vec![StrBytes::from_string(group.to_string())]);
        let resp = c.call(4, &req).await;
        let found = &resp.coordinators[0];
        if found.error_code == 0 {
            return (found.node_id.0, found.port);
        }
        assert_eq!(
            found.error_code, 15,
            "COORDINATOR_NOT_AVAILABLE while there is none"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "no coordinator: {:?}",
            found.error_message
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn commit(group: &str, offset: i64) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name("t"))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)])])
}

async fn commit_code(c: &mut RawClient, group: &str, offset: i64) -> i16 {
    c.call(8, &commit(group, offset)).await.topics[0].partitions[0].error_code
}

/// OffsetFetch v8 of partition 0 of "t": (group error, offset).
async fn fetch(c: &mut RawClient, group: &str) -> (i16, i64) {
    let req = OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_topics(Some(vec![OffsetFetchRequestTopics::default()
            .with_name(topic_name("t"))
            .with_partition_indexes(vec![0])]))]);
    let resp = c.call(8, &req).await;
    let g = &resp.groups[0];
    let offset = g
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .map_or(-1, |p| p.committed_offset);
    (g.error_code, offset)
}

/// Whether a client retries on `code`: LOAD_IN_PROGRESS while the partition is loaded,
/// UNKNOWN_TOPIC_OR_PARTITION until the topic reached this broker, NOT_COORDINATOR until it
/// applied its new leadership.
fn retriable(code: i16) -> bool {
    [LOAD_IN_PROGRESS, 3, NOT_COORDINATOR].contains(&code)
}

async fn commit_retrying(c: &mut RawClient, group: &str, offset: i64) -> i16 {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let code = commit_code(c, group, offset).await;
        if !retriable(code) || tokio::time::Instant::now() >= deadline {
            return code;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn fetch_retrying(c: &mut RawClient, group: &str) -> (i16, i64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let out = fetch(c, group).await;
        if !retriable(out.0) || tokio::time::Instant::now() >= deadline {
            return out;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offsets_fail_over_with_the_leadership_of_the_groups_partition() {
    let mut cluster = Cluster::start().await;
    let mut c1 = cluster.client(1).await;
    let (first, port) = coordinator(&mut c1, "g").await;
    assert!((1..=3).contains(&first));
    let created = c1
        .call(
            7,
            &CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
                .with_name(topic_name("t"))
                .with_num_partitions(1)
                .with_replication_factor(3)]),
        )
        .await;
    assert_eq!(created.topics[0].error_code, 0);

    // Every broker names the same coordinator; the others refuse the group.
    for id in 1..=3 {
        let mut c = cluster.client(id).await;
        assert_eq!(coordinator(&mut c, "g").await, (first, port));
        if id != first {
            assert_eq!(commit_code(&mut c, "g", 1).await, NOT_COORDINATOR);
            assert_eq!(fetch(&mut c, "g").await.0, NOT_COORDINATOR);
        }
    }
    let mut owner = cluster.client(first).await;
    let code = commit_retrying(&mut owner, "g", 42).await;
    assert_eq!(code, 0, "committed at the coordinator");
    assert_eq!(fetch(&mut owner, "g").await, (0, 42));
    let listed = owner.call(4, &ListGroupsRequest::default()).await;
    assert_eq!(listed.error_code, 0);
    assert_eq!(listed.groups.len(), 1, "{listed:?}");

    // The coordinator goes away: the partition's new leader serves the committed offset.
    cluster.stop(first).await;
    let other = if first == 1 { 2 } else { 1 };
    let mut c = cluster.client(other).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let second = loop {
        let (node, _) = coordinator(&mut c, "g").await;
        if node != first {
            break node;
        }
        assert!(tokio::time::Instant::now() < deadline, "no failover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut owner = cluster.client(second).await;
    let fetched = fetch_retrying(&mut owner, "g").await;
    assert_eq!(fetched, (0, 42), "the committed offset failed over");
    assert_eq!(commit_code(&mut owner, "g", 43).await, 0);

    // The old coordinator comes back as a follower: it refuses the group, and names the new
    // coordinator.
    cluster.restart(first).await;
    let mut back = cluster.client(first).await;
    assert_eq!(coordinator(&mut back, "g").await.0, second);
    assert_eq!(fetch(&mut back, "g").await.0, NOT_COORDINATOR);
    let listed = back.call(4, &ListGroupsRequest::default()).await;
    assert!(listed.groups.is_empty(), "{listed:?}");
    assert_eq!(fetch(&mut owner, "g").await, (0, 43));
    cluster.shutdown().await;
}

/// Leaders of `topic`'s partitions as broker `c` answers Metadata, in partition order.
async fn leaders(c: &mut RawClient, topic: &str) -> Vec<i32> {
    let req = MetadataRequest::default().with_topics(None);
    let resp = c.call(9, &req).await;
    let Some(t) = resp
        .topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some(topic))
    else {
        return vec![];
    };
    let mut parts: Vec<(i32, i32)> = t
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.leader_id.0))
        .collect();
    parts.sort();
    parts.into_iter().map(|(_, l)| l).collect()
}

async fn wait_leaders(c: &mut RawClient, topic: &str, what: &str, want: impl Fn(&[i32]) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = leaders(c, topic).await;
        if want(&got) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: leaders {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leadership_returns_to_the_preferred_replicas_after_a_restart() {
    let mut cluster =
        Cluster::start_with(&["--leader-imbalance-check-interval-seconds", "1"]).await;
    let mut c = cluster.client(2).await;
    let assignment = [[1, 2, 3], [2, 3, 1], [3, 1, 2], [1, 3, 2]];
    let created = c
        .call(
            7,
            &CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
                .with_name(topic_name("balanced"))
                .with_num_partitions(-1)
                .with_replication_factor(-1)
                .with_assignments(
                    assignment
                        .iter()
                        .enumerate()
                        .map(|(i, r)| {
                            create_topics_request::CreatableReplicaAssignment::default()
                                .with_partition_index(i as i32)
                                .with_broker_ids(r.iter().map(|b| BrokerId(*b)).collect())
                        })
                        .collect(),
                )]),
        )
        .await;
    assert_eq!(created.topics[0].error_code, 0, "{:?}", created.topics[0]);
    wait_leaders(&mut c, "balanced", "the preferred leaders", |l| {
        l == [1, 2, 3, 1]
    })
    .await;

    // Broker 1 stops (its leaderships move), then comes back as a follower.
    cluster.stop(1).await;
    wait_leaders(&mut c, "balanced", "leadership away from broker 1", |l| {
        l.len() == 4 && !l.contains(&1)
    })
    .await;
    cluster.restart(1).await;
    // Once broker 1 is back in the ISRs, the controller hands its partitions back.
    wait_leaders(&mut c, "balanced", "the preferred leaders again", |l| {
        l == [1, 2, 3, 1]
    })
    .await;
    cluster.shutdown().await;
}
