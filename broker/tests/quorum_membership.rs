//! Dynamic controller quorum membership (KIP-853) on in-process brokers on loopback: three
//! combined voters hand the quorum over to three controllers started outside the bootstrap
//! voters, one AddRaftVoter / RemoveRaftVoter at a time, while the cluster keeps creating topics
//! and serving acks=all produce and fetch; the old voters then stop for good, and a new voter
//! restarts and is a voter again from its own Raft log. Refusals are Kafka error codes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Parser;
use common::{free_ports, topic_name, RawClient};
use kafka_protocol::messages::add_raft_voter_request::Listener;
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::describe_quorum_response;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use rskafka::chrono::Utc;
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::client::ClientBuilder;
use rskafka::record::Record;
use samsa_broker::config::BrokerConfig;
use samsa_broker::server::{start, RunningBroker};
use tempfile::TempDir;

const WAIT: Duration = Duration::from_secs(30);

/// In-process nodes 1..=n; nodes 1-3 are the bootstrap voters, the others controllers that
/// are not (they start as non-voters).
struct Nodes {
    configs: BTreeMap<i32, BrokerConfig>,
    running: BTreeMap<i32, RunningBroker>,
    _dirs: Vec<TempDir>,
}

impl Nodes {
    async fn start(count: i32, bootstrap: &[i32]) -> Nodes {
        let ports = free_ports(4 * count as usize);
        let port = |id: i32, k: usize| ports[(id as usize - 1) * 4 + k];
        let voters = bootstrap
            .iter()
            .map(|id| format!("{id}@127.0.0.1:{}", port(*id, 1)))
            .collect::<Vec<_>>()
            .join(",");
        let mut dirs = Vec::new();
        let mut configs = BTreeMap::new();
        for id in 1..=count {
            let dir = tempfile::tempdir().unwrap();
            let kafka = format!("127.0.0.1:{}", port(id, 0));
            let args = vec![
                "samsa-broker".to_string(),
                "--node-id".into(),
                id.to_string(),
                "--process-roles".into(),
                "broker,controller".into(),
                "--data-dir".into(),
                dir.path().display().to_string(),
                "--listen".into(),
                kafka.clone(),
                "--advertised-listener".into(),
                kafka,
                "--controller-listen".into(),
                format!("127.0.0.1:{}", port(id, 1)),
                "--replication-listen".into(),
                format!("127.0.0.1:{}", port(id, 2)),
                "--metrics-listen".into(),
                format!("127.0.0.1:{}", port(id, 3)),
                "--controller-quorum-voters".into(),
                voters.clone(),
                "--broker-session-timeout-ms".into(),
                "3000".into(),
                "--broker-heartbeat-interval-ms".into(),
                "500".into(),
                "--offsets-topic-num-partitions".into(),
                "2".into(),
                "--controlled-shutdown-timeout-ms".into(),
                "10000".into(),
            ];
            configs.insert(id, BrokerConfig::parse_from(args));
            dirs.push(dir);
        }
        let mut nodes = Nodes {
            configs,
            running: BTreeMap::new(),
            _dirs: dirs,
        };
        for id in 1..=count {
            nodes.restart(id).await;
        }
        nodes
    }

    async fn restart(&mut self, id: i32) {
        let b = start(self.configs[&id].clone()).await.expect("node starts");
        self.running.insert(id, b);
    }

    async fn stop(&mut self, id: i32) {
        if let Some(b) = self.running.remove(&id) {
            b.shutdown().await;
        }
    }

    async fn client(&self, id: i32) -> RawClient {
        RawClient::connect(self.running[&id].kafka_addr).await
    }

    fn controller_port(&self, id: i32) -> u16 {
        self.configs[&id].controller_listen.port()
    }

    /// Waits until broker `via` lists exactly `ids` as live brokers.
    async fn wait_live(&self, via: i32, ids: &[i32]) {
        let mut c = self.client(via).await;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let r = c.call(9, &MetadataRequest::default()).await;
            let mut live: Vec<i32> = r.brokers.iter().map(|b| b.node_id.0).collect();
            live.sort_unstable();
            if live == ids {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "broker {via} lists {live:?}, not {ids:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn shutdown(mut self) {
        let ids: Vec<i32> = self.running.keys().copied().collect();
        for id in ids {
            self.stop(id).await;
        }
    }
}

fn add_request(id: i32, port: u16, timeout_ms: i32) -> AddRaftVoterRequest {
    AddRaftVoterRequest::default()
        .with_voter_id(id)
        .with_timeout_ms(timeout_ms)
        .with_listeners(vec![Listener::default()
            .with_name(StrBytes::from_static_str("CONTROLLER"))
            .with_host(StrBytes::from_static_str("127.0.0.1"))
            .with_port(port)])
}

async fn add_voter(c: &mut RawClient, id: i32, port: u16) -> AddRaftVoterResponse {
    c.call(0, &add_request(id, port, 20_000)).await
}

async fn remove_voter(c: &mut RawClient, id: i32) -> RemoveRaftVoterResponse {
    c.call(0, &RemoveRaftVoterRequest::default().with_voter_id(id))
        .await
}

async fn describe(c: &mut RawClient) -> DescribeQuorumResponse {
    let req = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(topic_name("__cluster_metadata"))
        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
    c.call(2, &req).await
}

fn voters_of(p: &describe_quorum_response::PartitionData) -> Vec<i32> {
    p.current_voters.iter().map(|v| v.replica_id.0).collect()
}

/// Asks broker `via` until the quorum's leader describes exactly `voters`, every one of them
/// holding the log; returns that answer.
async fn wait_voters(
    nodes: &Nodes,
    via: i32,
    voters: &[i32],
) -> (
    describe_quorum_response::PartitionData,
    DescribeQuorumResponse,
) {
    let mut c = nodes.client(via).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = describe(&mut c).await;
        let p = r.topics[0].partitions[0].clone();
        if p.error_code == 0
            && voters_of(&p) == voters
            && voters.contains(&p.leader_id.0)
            && p.current_voters.iter().all(|v| v.log_end_offset >= 0)
        {
            return (p, r);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "broker {via}: voters {voters:?} not described within {WAIT:?}; last {p:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates `topic` (2 partitions, replication factor 3) through broker `via`, produces
/// `count` records to each partition with acks=all and reads them back: same values, in order.
async fn round_trip(nodes: &Nodes, via: i32, topic: &str, count: usize) {
    let client = ClientBuilder::new(vec![nodes.running[&via].kafka_addr.to_string()])
        .build()
        .await
        .unwrap();
    client
        .controller_client()
        .unwrap()
        .create_topic(topic, 2, 3, 10_000)
        .await
        .unwrap();
    for partition in 0..2 {
        let pc = client
            .partition_client(topic, partition, UnknownTopicHandling::Retry)
            .await
            .unwrap();
        let values: Vec<String> = (0..count)
            .map(|i| format!("{topic}-{partition}-{i}"))
            .collect();
        let records: Vec<Record> = values
            .iter()
            .map(|v| Record {
                key: None,
                value: Some(v.clone().into_bytes()),
                headers: BTreeMap::new(),
                timestamp: Utc::now(),
            })
            .collect();
        let offsets = pc
            .produce(records, Compression::NoCompression)
            .await
            .unwrap();
        assert_eq!(offsets, (0..count as i64).collect::<Vec<_>>());
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + WAIT;
        while got.len() < count {
            let (batch, _hw) = pc
                .fetch_records(got.len() as i64, 1..1_000_000, 500)
                .await
                .unwrap();
            for r in batch {
                if r.offset == got.len() as i64 {
                    got.push(String::from_utf8(r.record.value.unwrap()).unwrap());
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{topic}: read {got:?}"
            );
        }
        assert_eq!(got, values, "{topic}-{partition}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_quorum_moves_to_new_controllers_one_voter_at_a_time() {
    if let Ok(filter) = std::env::var("TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
    let mut nodes = Nodes::start(6, &[1, 2, 3]).await;
    nodes.wait_live(6, &[1, 2, 3, 4, 5, 6]).await;
    let (p, _) = wait_voters(&nodes, 4, &[1, 2, 3]).await;
    // The controllers outside the bootstrap voters follow the log without a vote: observers.
    let observers: Vec<i32> = p.observers.iter().map(|o| o.replica_id.0).collect();
    for id in [4, 5, 6] {
        assert!(observers.contains(&id), "{observers:?}");
    }

    // Every request goes to node 6 (a non-voter until the end): it is sent on to the leader.
    let mut c = nodes.client(6).await;
    let steps: [(bool, i32, &[i32]); 6] = [
        (true, 4, &[1, 2, 3, 4]),
        (false, 1, &[2, 3, 4]),
        (true, 5, &[2, 3, 4, 5]),
        (false, 2, &[3, 4, 5]),
        (true, 6, &[3, 4, 5, 6]),
        (false, 3, &[4, 5, 6]),
    ];
    for (i, (add, id, voters)) in steps.into_iter().enumerate() {
        let (code, message) = if add {
            let r = add_voter(&mut c, id, nodes.controller_port(id)).await;
            (r.error_code, r.error_message)
        } else {
            let r = remove_voter(&mut c, id).await;
            (r.error_code, r.error_message)
        };
        assert_eq!(code, 0, "step {i} ({add}, {id}): {message:?}");
        let (p, r) = wait_voters(&nodes, 6, voters).await;
        // v2 names each voter's controller endpoint, from the membership.
        let endpoints: Vec<(i32, u16)> = r
            .nodes
            .iter()
            .map(|n| (n.node_id.0, n.listeners[0].port))
            .collect();
        let expected: Vec<(i32, u16)> = voters
            .iter()
            .map(|id| (*id, nodes.controller_port(*id)))
            .collect();
        assert_eq!(endpoints, expected, "step {i}");
        assert!(p.leader_epoch >= 1);
        if i == 2 {
            // Mid-way (voters 2, 3, 4, 5): topics are created and serve acks=all.
            round_trip(&nodes, 5, "mid-way", 20).await;
        }
    }

    // Errors, each a Kafka code: an unknown voter, a voter added twice.
    let r = remove_voter(&mut c, 42).await;
    assert_eq!(r.error_code, ResponseError::VoterNotFound.code(), "{r:?}");
    let r = add_voter(&mut c, 5, nodes.controller_port(5)).await;
    assert_eq!(r.error_code, ResponseError::DuplicateVoter.code(), "{r:?}");
    round_trip(&nodes, 4, "handed-over", 20).await;

    // The old voters go away for good: the quorum of 4, 5, 6 serves on its own.
    for id in [1, 2, 3] {
        nodes.stop(id).await;
    }
    nodes.wait_live(4, &[4, 5, 6]).await;
    wait_voters(&nodes, 4, &[4, 5, 6]).await;
    round_trip(&nodes, 6, "after-the-old-set", 10).await;

    // A removed voter restarted with the old bootstrap list (its Raft log intact) comes back as
    // an observer and does not disturb the quorum.
    let epoch = wait_voters(&nodes, 4, &[4, 5, 6]).await.0.leader_epoch;
    nodes.restart(2).await;
    nodes.wait_live(2, &[2, 4, 5, 6]).await;
    let (p, _) = wait_voters(&nodes, 2, &[4, 5, 6]).await;
    assert_eq!(p.leader_epoch, epoch, "no election: {p:?}");
    assert!(p.observers.iter().any(|o| o.replica_id.0 == 2), "{p:?}");
    round_trip(&nodes, 2, "with-a-stale-node", 5).await;
    nodes.stop(2).await;
    // The old controllers, gone for good, leave the membership (they were learners).
    for id in [1, 2, 3] {
        let r = remove_voter(&mut nodes.client(4).await, id).await;
        assert_eq!(r.error_code, 0, "{r:?}");
    }
    let mut c4 = nodes.client(4).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = describe(&mut c4).await;
        let p = &r.topics[0].partitions[0];
        if voters_of(p) == [4, 5, 6] && p.observers.is_empty() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{p:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = remove_voter(&mut c4, 1).await;
    assert_eq!(r.error_code, ResponseError::VoterNotFound.code(), "{r:?}");

    // A new voter restarts from its Raft log and is a voter again, with nobody adding it.
    nodes.stop(5).await;
    nodes.restart(5).await;
    nodes.wait_live(5, &[4, 5, 6]).await;
    let (p, _) = wait_voters(&nodes, 5, &[4, 5, 6]).await;
    assert!(
        p.current_voters.iter().all(|v| v.last_fetch_timestamp > 0),
        "{p:?}"
    );
    assert!(
        common::wait_for(WAIT, || nodes.running[&5].controller_leader().is_some()).await,
        "node 5 knows the leader"
    );
    round_trip(&nodes, 5, "after-the-restart", 10).await;
    nodes.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn voter_changes_that_cannot_be_made_get_kafka_error_codes() {
    // One voter (node 1) and a controller outside it (node 2).
    let nodes = Nodes::start(2, &[1]).await;
    nodes.wait_live(1, &[1, 2]).await;
    wait_voters(&nodes, 2, &[1]).await;
    let mut c = nodes.client(2).await;

    // The last voter stays.
    let r = remove_voter(&mut c, 1).await;
    assert_eq!(r.error_code, ResponseError::VoterNotFound.code(), "{r:?}");
    assert!(
        r.error_message.as_ref().unwrap().contains("only voter"),
        "{r:?}"
    );
    // Malformed: no listener, a negative id, a port 0, another cluster's id.
    let r: AddRaftVoterResponse = c
        .call(0, &add_request(2, 1, 1000).with_listeners(vec![]))
        .await;
    assert_eq!(r.error_code, ResponseError::InvalidRequest.code(), "{r:?}");
    let r = add_voter(&mut c, -3, nodes.controller_port(2)).await;
    assert_eq!(r.error_code, ResponseError::InvalidRequest.code(), "{r:?}");
    let r = add_voter(&mut c, 2, 0).await;
    assert_eq!(r.error_code, ResponseError::InvalidRequest.code(), "{r:?}");
    let r: RemoveRaftVoterResponse = c
        .call(
            0,
            &RemoveRaftVoterRequest::default()
                .with_voter_id(1)
                .with_cluster_id(Some(StrBytes::from_static_str("another-cluster"))),
        )
        .await;
    assert_eq!(
        r.error_code,
        ResponseError::InconsistentClusterId.code(),
        "{r:?}"
    );
    // A node id that is not the one answering at the address.
    let r = add_voter(&mut c, 7, nodes.controller_port(2)).await;
    assert_eq!(r.error_code, ResponseError::InvalidRequest.code(), "{r:?}");

    // One change at a time: while an addition waits for a controller that does not answer,
    // another change is refused with REQUEST_TIMED_OUT, as Kafka's quorum does.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            open.push(s);
        }
    });
    let addr = nodes.running[&1].kafka_addr;
    let first = tokio::spawn(async move {
        let mut c = RawClient::connect(addr).await;
        let r: AddRaftVoterResponse = c.call(0, &add_request(9, silent_port, 8000)).await;
        r
    });
    let mut refused = None;
    while refused.is_none() && !first.is_finished() {
        let r = remove_voter(&mut c, 42).await;
        if r.error_code == ResponseError::RequestTimedOut.code() {
            refused = r.error_message;
        } else {
            assert_eq!(r.error_code, ResponseError::VoterNotFound.code(), "{r:?}");
        }
    }
    let r = first.await.unwrap();
    let refused =
        refused.unwrap_or_else(|| panic!("no second change refused while the first ran: {r:?}"));
    assert!(refused.contains("in progress"), "{refused:?}");
    assert_eq!(r.error_code, ResponseError::RequestTimedOut.code(), "{r:?}");
    held.abort();

    // Undecodable bodies: the connection closes (as for every API), the broker serves on.
    let mut raw = nodes.client(1).await;
    raw.write_raw(&common::raw_frame(80, 0, 1, &[0xff, 0xff, 0xff]))
        .await
        .unwrap();
    assert!(raw.is_closed().await);
    let r = remove_voter(&mut nodes.client(1).await, 42).await;
    assert_eq!(r.error_code, ResponseError::VoterNotFound.code(), "{r:?}");

    // ApiVersions advertises both APIs at v0.
    let r: ApiVersionsResponse = c.call(0, &ApiVersionsRequest::default()).await;
    for key in [80, 81] {
        let v = r
            .api_keys
            .iter()
            .find(|k| k.api_key == key)
            .expect("advertised");
        assert_eq!((v.min_version, v.max_version), (0, 0));
    }

    // And a change that can be made is, through the non-voter itself.
    let r = add_voter(&mut c, 2, nodes.controller_port(2)).await;
    assert_eq!(r.error_code, 0, "{r:?}");
    wait_voters(&nodes, 1, &[1, 2]).await;
    nodes.shutdown().await;
}
