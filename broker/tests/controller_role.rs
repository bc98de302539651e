//! Separate roles: one controller-only process (`--process-roles controller`, the whole
//! metadata quorum) and two broker-only processes. The controller serves no Kafka clients and
//! is never given partitions; the brokers register with it, and a topic created through one
//! broker is placed on the two brokers and takes records with acks=all.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use clap::Parser;
use common::{batch, free_ports, http_get, topic_name, RawClient};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use samsa_broker::config::BrokerConfig;
use samsa_broker::server::{start, RunningBroker};

const WAIT: Duration = Duration::from_secs(30);
const CONTROLLER_ID: i32 = 100;

fn config(
    id: i32,
    roles: &str,
    ports: &[u16],
    voters: &str,
    dir: &std::path::Path,
) -> BrokerConfig {
    let kafka = format!("127.0.0.1:{}", ports[0]);
    BrokerConfig::parse_from([
        "samsa-broker".to_string(),
        "--node-id".into(),
        id.to_string(),
        "--process-roles".into(),
        roles.into(),
        "--data-dir".into(),
        dir.display().to_string(),
        "--listen".into(),
        kafka.clone(),
        "--advertised-listener".into(),
        kafka,
        "--controller-listen".into(),
        format!("127.0.0.1:{}", ports[1]),
        "--replication-listen".into(),
        format!("127.0.0.1:{}", ports[2]),
        "--metrics-listen".into(),
        format!("127.0.0.1:{}", ports[3]),
        "--controller-quorum-voters".into(),
        voters.into(),
        "--broker-heartbeat-interval-ms".into(),
        "500".into(),
    ])
}

async fn metadata_until(
    c: &mut RawClient,
    what: &str,
    mut done: impl FnMut(&MetadataResponse) -> bool,
) -> MetadataResponse {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let req = MetadataRequest::default().with_topics(None);
        let resp = c.call(9, &req).await;
        if done(&resp) {
            return resp;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {resp:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_controller_only_process_holds_the_quorum_and_serves_no_clients() {
    let ports = free_ports(12);
    let voters = format!("{CONTROLLER_ID}@127.0.0.1:{}", ports[1]);
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let controller: RunningBroker = start(config(
        CONTROLLER_ID,
        "controller",
        &ports[0..4],
        &voters,
        dirs[0].path(),
    ))
    .await
    .expect("controller starts");
    let mut brokers = Vec::new();
    for (i, id) in [1, 2].into_iter().enumerate() {
        let p = &ports[4 * (i + 1)..4 * (i + 2)];
        brokers.push(
            start(config(id, "broker", p, &voters, dirs[i + 1].path()))
                .await
                .expect("broker starts"),
        );
    }

    // The controller: ready, the quorum's leader, and no Kafka listener.
    let (status, _) = http_get(controller.metrics_addr, "/readyz").await;
    assert!(status.contains("200"), "controller /readyz: {status}");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, body) = http_get(controller.metrics_addr, "/metrics").await;
        if body.lines().any(|l| l == "samsa_quorum_role 2") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the controller never became the quorum leader:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        tokio::net::TcpStream::connect(controller.kafka_addr)
            .await
            .is_err(),
        "nothing serves Kafka on the controller"
    );
    assert!(controller.replication_addr.is_none());

    // The brokers register; Metadata lists exactly them.
    let mut c = RawClient::connect(brokers[0].kafka_addr).await;
    let md = metadata_until(&mut c, "both brokers registered", |m| m.brokers.len() == 2).await;
    let mut ids: Vec<i32> = md.brokers.iter().map(|b| b.node_id.0).collect();
    ids.sort();
    assert_eq!(ids, vec![1, 2], "the controller-only node is no broker");

    // A topic is placed on the brokers only and takes acks=all records.
    let create = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name("split-roles"))
            .with_num_partitions(4)
            .with_replication_factor(2)]);
    let resp = c.call(5, &create).await;
    assert_eq!(resp.topics[0].error_code, 0, "{:?}", resp.topics[0]);
    let md = metadata_until(&mut c, "leaders and full ISRs", |m| {
        m.topics.iter().any(|t| {
            t.name.as_ref().map(|n| n.0.as_str()) == Some("split-roles")
                && t.partitions.len() == 4
                && t.partitions
                    .iter()
                    .all(|p| p.leader_id.0 > 0 && p.isr_nodes.len() == 2)
        })
    })
    .await;
    let topic = md
        .topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some("split-roles"))
        .unwrap();
    let mut leaders = Vec::new();
    for p in &topic.partitions {
        let mut replicas: Vec<i32> = p.replica_nodes.iter().map(|b| b.0).collect();
        replicas.sort();
        assert_eq!(replicas, vec![1, 2], "partition {}", p.partition_index);
        leaders.push((p.partition_index, p.leader_id.0));
    }
    let (partition, leader) = leaders[0];
    let mut lc = RawClient::connect(brokers[(leader - 1) as usize].kafka_addr).await;
    let produce = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name("split-roles"))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch(&[(None, b"one")], 1_700_000_000_000)))])]);
    // The leader may apply the new metadata a moment after the broker that answered Metadata:
    // until then it answers UNKNOWN_TOPIC_OR_PARTITION (3), which clients retry.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let resp = lc.call(9, &produce).await;
        let p = &resp.responses[0].partition_responses[0];
        if p.error_code == 3 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        assert_eq!((p.error_code, p.base_offset), (0, 0), "acks=all produce");
        break;
    }

    for b in brokers {
        b.shutdown().await;
    }
    controller.shutdown().await;
}
