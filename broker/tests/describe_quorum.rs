//! DescribeQuorum: any broker of a three-broker cluster describes the controller quorum as its
//! leader sees it (leader, epoch, high watermark, voters with log ends and fetch times); a
//! single broker is its own quorum; other partitions get error codes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::cluster::Cluster;
use common::{broker, topic_name, RawClient};
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::describe_quorum_response;
use kafka_protocol::messages::{DescribeQuorumRequest, DescribeQuorumResponse};
use kafka_protocol::ResponseError;

const WAIT: Duration = Duration::from_secs(20);

fn request(topic: &str, partitions: &[i32]) -> DescribeQuorumRequest {
    DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(topic_name(topic))
        .with_partitions(
            partitions
                .iter()
                .map(|p| PartitionData::default().with_partition_index(*p))
                .collect(),
        )])
}

async fn describe(c: &mut RawClient, version: i16) -> DescribeQuorumResponse {
    c.call(version, &request("__cluster_metadata", &[0])).await
}

fn partition(r: &DescribeQuorumResponse) -> &describe_quorum_response::PartitionData {
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    assert_eq!(r.topics.len(), 1);
    assert_eq!(r.topics[0].topic_name.as_str(), "__cluster_metadata");
    assert_eq!(r.topics[0].partitions.len(), 1);
    &r.topics[0].partitions[0]
}

/// Asks broker `id` until `cond` holds of its answer (bounded).
async fn describe_until(
    cluster: &Cluster,
    id: i32,
    version: i16,
    what: &str,
    cond: impl Fn(&describe_quorum_response::PartitionData) -> bool,
) -> describe_quorum_response::PartitionData {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut c = cluster.client(id).await;
    loop {
        let r = describe(&mut c, version).await;
        let p = partition(&r).clone();
        if p.error_code == 0 && cond(&p) {
            return p;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "broker {id} v{version}: {what} not seen in {WAIT:?}; last answer {p:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn leader_of(cluster: &Cluster) -> Option<i32> {
    let leaders: BTreeSet<u64> = cluster
        .brokers
        .iter()
        .flatten()
        .filter_map(|b| b.controller_leader())
        .collect();
    (leaders.len() == 1)
        .then(|| leaders.into_iter().next())
        .flatten()
        .map(|l| l as i32)
}

async fn wait_leader(cluster: &Cluster) -> i32 {
    assert!(
        common::wait_for(WAIT, || leader_of(cluster).is_some()).await,
        "no single quorum leader"
    );
    leader_of(cluster).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_broker_describes_the_quorum_as_its_leader_sees_it() {
    let mut cluster = Cluster::start().await;
    let leader = wait_leader(&cluster).await;
    for id in 1..=3 {
        for version in 0..=2 {
            let p = describe_until(&cluster, id, version, "every voter's log end", |p| {
                p.leader_id.0 == leader && p.current_voters.iter().all(|v| v.log_end_offset >= 0)
            })
            .await;
            let voters: Vec<i32> = p.current_voters.iter().map(|v| v.replica_id.0).collect();
            assert_eq!(voters, vec![1, 2, 3], "broker {id} v{version}");
            assert!(p.leader_epoch >= 1, "{p:?}");
            assert!(p.high_watermark > 0, "{p:?}");
            let leader_end = p
                .current_voters
                .iter()
                .find(|v| v.replica_id.0 == leader)
                .unwrap()
                .log_end_offset;
            assert!(leader_end >= p.high_watermark, "{p:?}");
            assert!(p.observers.is_empty(), "every broker is a voter: {p:?}");
            if version >= 1 {
                for v in &p.current_voters {
                    assert!(v.last_fetch_timestamp > 0, "{v:?}");
                    assert!(v.last_caught_up_timestamp > 0, "{v:?}");
                }
            }
        }
    }

    // v2 names each voter's controller endpoint.
    let mut c = cluster.client(1).await;
    let r = describe(&mut c, 2).await;
    let nodes: Vec<(i32, u16)> = r
        .nodes
        .iter()
        .map(|n| (n.node_id.0, n.listeners[0].port))
        .collect();
    let expected: Vec<(i32, u16)> = cluster
        .configs
        .iter()
        .map(|c| (c.node_id, c.controller_listen.port()))
        .collect();
    assert_eq!(nodes, expected);
    assert!(r
        .nodes
        .iter()
        .all(|n| n.listeners[0].name.as_str() == "CONTROLLER"));

    // The followers keep fetching: their caught-up times move on.
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let first = partition(&describe(&mut c, 1).await)
        .current_voters
        .iter()
        .find(|v| v.replica_id.0 == follower)
        .unwrap()
        .last_caught_up_timestamp;
    describe_until(&cluster, 1, 1, "a later caught-up time", |p| {
        p.current_voters
            .iter()
            .find(|v| v.replica_id.0 == follower)
            .is_some_and(|v| v.last_caught_up_timestamp > first)
    })
    .await;

    // Without its leader, the quorum elects another and every broker names it.
    cluster.stop(leader).await;
    let next = wait_leader(&cluster).await;
    assert_ne!(next, leader);
    let live = (1..=3).find(|id| *id != leader && *id != next).unwrap();
    for id in [next, live] {
        let p = describe_until(&cluster, id, 1, "the new leader", |p| p.leader_id.0 == next).await;
        assert_eq!(p.current_voters.len(), 3);
    }
    // The stopped voter's fetch time stands still while the live follower's moves on.
    let fetched = |p: &describe_quorum_response::PartitionData, id: i32| {
        p.current_voters
            .iter()
            .find(|v| v.replica_id.0 == id)
            .map_or(-1, |v| v.last_fetch_timestamp)
    };
    describe_until(&cluster, live, 1, "the stopped voter falling behind", |p| {
        fetched(p, live) > fetched(p, leader) + 1000
    })
    .await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn other_partitions_and_empty_requests_get_error_codes() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let mut c = RawClient::connect(b.kafka_addr).await;

    let r: DescribeQuorumResponse = c.call(1, &request("orders", &[0])).await;
    assert_eq!(r.error_code, 0);
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    let r: DescribeQuorumResponse = c.call(2, &request("__cluster_metadata", &[0, 1])).await;
    let codes: Vec<(i32, i16)> = r.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.error_code))
        .collect();
    assert_eq!(
        codes,
        vec![(0, 0), (1, ResponseError::UnknownTopicOrPartition.code())]
    );
    let r: DescribeQuorumResponse = c.call(0, &DescribeQuorumRequest::default()).await;
    assert_eq!(r.error_code, ResponseError::InvalidRequest.code());

    // A broker without a controller quorum is its only voter and leader.
    let r = describe(&mut c, 1).await;
    let p = partition(&r);
    let me = b.controller_leader();
    assert_eq!(me, None);
    assert_eq!(p.current_voters.len(), 1);
    assert_eq!(p.leader_id, p.current_voters[0].replica_id);
    b.shutdown().await;
}
