//! Group APIs over the wire without a rebalance: FindCoordinator, simple (generation -1)
//! offset commits and fetches at every advertised version, offsets surviving a restart,
//! ListGroups, DescribeGroups, OffsetDelete and DeleteGroups; and a group's generation, members
//! and assignments coming back after a restart from their records in `__consumer_offsets`. The
//! rebalance protocol itself is covered by the state machine's unit tests and by real clients in
//! the compat suite.

mod common;

use common::{topic_name, RawClient};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn gid(s: &str) -> GroupId {
    GroupId(StrBytes::from_string(s.to_string()))
}

fn commit(group: &str, offsets: &[(i32, i64)]) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(gid(group))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name("t"))
            .with_partitions(
                offsets
                    .iter()
                    .map(|(p, o)| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(*p)
                            .with_committed_offset(*o)
                            .with_committed_metadata(Some(StrBytes::from_static_str("meta")))
                    })
                    .collect(),
            )])
}

async fn fetched(
    c: &mut RawClient,
    version: i16,
    group: &str,
    partitions: &[i32],
) -> Vec<(i32, i64)> {
    if version >= 8 {
        let req =
            OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
                .with_group_id(gid(group))
                .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                    .with_name(topic_name("t"))
                    .with_partition_indexes(partitions.to_vec())]))]);
        let resp = c.call(version, &req).await;
        assert_eq!(resp.groups.len(), 1);
        resp.groups[0].topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.committed_offset))
            .collect()
    } else {
        let req = OffsetFetchRequest::default()
            .with_group_id(gid(group))
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(topic_name("t"))
                .with_partition_indexes(partitions.to_vec())]));
        let resp = c.call(version, &req).await;
        resp.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.committed_offset))
            .collect()
    }
}

#[tokio::test]
async fn simple_commits_fetch_list_describe_delete_and_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::broker_with(dir.path(), |c| {
        c.num_partitions = 3;
        c.offsets_topic_num_partitions = 5;
    })
    .await;
    let mut c = RawClient::connect(b.kafka_addr).await;
    common::auto_create(&mut c, "t").await;

    for v in 0..=4 {
        let req = if v >= 4 {
            FindCoordinatorRequest::default()
                .with_coordinator_keys(vec![StrBytes::from_static_str("g1")])
        } else {
            FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("g1"))
        };
        let resp = c.call(v, &req).await;
        let (code, node, port) = if v >= 4 {
            (
                resp.coordinators[0].error_code,
                resp.coordinators[0].node_id.0,
                resp.coordinators[0].port,
            )
        } else {
            (resp.error_code, resp.node_id.0, resp.port)
        };
        assert_eq!(
            (code, node, port),
            (0, 1, i32::from(b.kafka_addr.port())),
            "FindCoordinator v{v}"
        );
    }
    // The offsets topic now exists, internal.
    let meta = c
        .call(1, &MetadataRequest::default().with_topics(None))
        .await;
    let internal = meta
        .topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| n.as_str()) == Some("__consumer_offsets"))
        .unwrap();
    assert!(internal.is_internal);
    assert_eq!(internal.partitions.len(), 5);

    for v in 2..=8 {
        let group = format!("g-v{v}");
        let resp = c
            .call(v, &commit(&group, &[(0, 10 + i64::from(v)), (2, 20)]))
            .await;
        let codes: Vec<i16> = resp.topics[0]
            .partitions
            .iter()
            .map(|p| p.error_code)
            .collect();
        assert_eq!(codes, vec![0, 0], "OffsetCommit v{v}");
    }
    let bad = c.call(8, &commit("g-v8", &[(9, 1)])).await;
    assert_eq!(
        bad.topics[0].partitions[0].error_code, 3,
        "unknown partition"
    );
    for v in 1..=8 {
        let got = fetched(&mut c, v, "g-v5", &[0, 1, 2]).await;
        assert_eq!(got, vec![(0, 15), (1, -1), (2, 20)], "OffsetFetch v{v}");
    }
    for v in 0..=4 {
        let resp = c.call(v, &ListGroupsRequest::default()).await;
        let names: Vec<String> = resp.groups.iter().map(|g| g.group_id.to_string()).collect();
        assert_eq!(names.len(), 7, "ListGroups v{v}: {names:?}");
        assert!(names.contains(&"g-v2".to_string()));
    }
    for v in 0..=5 {
        let resp = c
            .call(
                v,
                &DescribeGroupsRequest::default().with_groups(vec![gid("g-v3"), gid("nobody")]),
            )
            .await;
        let states: Vec<String> = resp
            .groups
            .iter()
            .map(|g| g.group_state.to_string())
            .collect();
        assert_eq!(states, vec!["Empty", "Dead"], "DescribeGroups v{v}");
        assert!(resp.groups[0].members.is_empty());
    }
    // OffsetDelete on an empty group.
    let del = OffsetDeleteRequest::default()
        .with_group_id(gid("g-v4"))
        .with_topics(vec![
            offset_delete_request::OffsetDeleteRequestTopic::default()
                .with_name(topic_name("t"))
                .with_partitions(vec![
                    offset_delete_request::OffsetDeleteRequestPartition::default()
                        .with_partition_index(0),
                ]),
        ]);
    let resp = c.call(0, &del).await;
    assert_eq!(
        (resp.error_code, resp.topics[0].partitions[0].error_code),
        (0, 0)
    );
    assert_eq!(
        fetched(&mut c, 7, "g-v4", &[0, 2]).await,
        vec![(0, -1), (2, 20)]
    );
    let resp = c
        .call(
            0,
            &OffsetDeleteRequest::default().with_group_id(gid("nobody")),
        )
        .await;
    assert_eq!(resp.error_code, 69, "GROUP_ID_NOT_FOUND");
    // DeleteGroups.
    for v in 0..=2 {
        let g = format!("g-v{}", 6 + v);
        let resp = c
            .call(
                v,
                &DeleteGroupsRequest::default().with_groups_names(vec![gid(&g), gid("nobody")]),
            )
            .await;
        let codes: Vec<i16> = resp.results.iter().map(|r| r.error_code).collect();
        assert_eq!(codes, vec![0, 69], "DeleteGroups v{v}");
    }
    b.shutdown().await;

    // Offsets come back from __consumer_offsets after a restart; deletions stay deleted.
    let b = common::broker_with(dir.path(), |c| c.offsets_topic_num_partitions = 5).await;
    let mut c = RawClient::connect(b.kafka_addr).await;
    assert_eq!(
        fetched(&mut c, 5, "g-v5", &[0, 2]).await,
        vec![(0, 15), (2, 20)]
    );
    assert_eq!(
        fetched(&mut c, 5, "g-v4", &[0, 2]).await,
        vec![(0, -1), (2, 20)]
    );
    assert_eq!(
        fetched(&mut c, 5, "g-v7", &[0]).await,
        vec![(0, -1)],
        "deleted group"
    );
    let resp = c.call(4, &ListGroupsRequest::default()).await;
    assert_eq!(resp.groups.len(), 4, "g-v2..g-v5 remain");
    // Lag is exported per group and partition: high watermark minus committed offset.
    let records: Vec<(Option<&[u8]>, &[u8])> = (0..30).map(|_| (None, &b"v"[..])).collect();
    let produce = ProduceRequest::default().with_acks(1).with_topic_data(vec![
        produce_request::TopicProduceData::default()
            .with_name(topic_name("t"))
            .with_partition_data(vec![produce_request::PartitionProduceData::default()
                .with_records(Some(common::batch(
                    &records,
                    samsa_broker::server::now_ms(),
                )))]),
    ]);
    assert_eq!(
        c.call(9, &produce).await.responses[0].partition_responses[0].error_code,
        0
    );
    let want_lag = r#"samsa_consumer_group_lag{group="g-v5",partition="0",topic="t"} 15"#;
    let want_committed =
        r#"samsa_consumer_group_committed_offset{group="g-v5",partition="0",topic="t"} 15"#;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let metrics = loop {
        let (status, body) = common::http_get(b.metrics_addr, "/metrics").await;
        assert!(status.contains("200"), "{status}");
        if body.contains(want_lag) || tokio::time::Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(
        metrics.contains(want_lag),
        "no {want_lag} in:\n{}",
        metrics
            .lines()
            .filter(|l| l.contains("group"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(metrics.contains(want_committed));
    assert!(
        !metrics.contains(r#"group="g-v7""#),
        "deleted groups export nothing"
    );
    // Producing to the internal topic is refused.
    let produce = ProduceRequest::default().with_acks(1).with_topic_data(vec![
        produce_request::TopicProduceData::default()
            .with_name(topic_name("__consumer_offsets"))
            .with_partition_data(vec![produce_request::PartitionProduceData::default()
                .with_records(Some(common::batch(
                    &[(None, b"x")],
                    samsa_broker::server::now_ms(),
                )))]),
    ]);
    assert_eq!(
        c.call(9, &produce).await.responses[0].partition_responses[0].error_code,
        17
    );
    b.shutdown().await;
}

fn configure(c: &mut samsa_broker::config::BrokerConfig) {
    c.group_initial_rebalance_delay_ms = 0;
}

async fn describe(c: &mut RawClient, group: &str) -> describe_groups_response::DescribedGroup {
    let req = DescribeGroupsRequest::default().with_groups(vec![gid(group)]);
    let mut resp = c.call(5, &req).await;
    resp.groups.remove(0)
}

#[tokio::test]
async fn a_stable_group_survives_a_restart_without_a_rebalance() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::broker_with(dir.path(), configure).await;
    let mut c = RawClient::connect(b.kafka_addr).await;
    let join = |member: &str| {
        JoinGroupRequest::default()
            .with_group_id(gid("persisted"))
            .with_session_timeout_ms(30_000)
            .with_rebalance_timeout_ms(30_000)
            .with_member_id(StrBytes::from_string(member.to_string()))
            .with_protocol_type(StrBytes::from_static_str("consumer"))
            .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
            )
            .with_name(StrBytes::from_static_str("range"))
            .with_metadata(bytes::Bytes::from_static(b"subscription"))])
    };
    let first = c.call(5, &join("")).await;
    assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED");
    let member = first.member_id.to_string();
    let joined = c.call(5, &join(&member)).await;
    assert_eq!(
        (
            joined.error_code,
            joined.generation_id,
            joined.leader.as_str()
        ),
        (0, 1, member.as_str())
    );
    let sync = SyncGroupRequest::default()
        .with_group_id(gid("persisted"))
        .with_generation_id(1)
        .with_member_id(StrBytes::from_string(member.clone()))
        .with_assignments(vec![
            sync_group_request::SyncGroupRequestAssignment::default()
                .with_member_id(StrBytes::from_string(member.clone()))
                .with_assignment(bytes::Bytes::from_static(b"partitions-0-5")),
        ]);
    let synced = c.call(3, &sync).await;
    assert_eq!(synced.error_code, 0);
    assert_eq!(&synced.assignment[..], b"partitions-0-5");
    b.shutdown().await;

    let b = common::broker_with(dir.path(), configure).await;
    let mut c = RawClient::connect(b.kafka_addr).await;
    let heartbeat = HeartbeatRequest::default()
        .with_group_id(gid("persisted"))
        .with_generation_id(1)
        .with_member_id(StrBytes::from_string(member.clone()));
    assert_eq!(
        c.call(3, &heartbeat).await.error_code,
        0,
        "the member of generation 1 goes on heartbeating"
    );
    let d = describe(&mut c, "persisted").await;
    assert_eq!(d.group_state.as_str(), "Stable");
    assert_eq!(d.protocol_data.as_str(), "range");
    assert_eq!(d.members.len(), 1);
    assert_eq!(d.members[0].member_id.as_str(), member);
    assert_eq!(&d.members[0].member_assignment[..], b"partitions-0-5");
    assert_eq!(&d.members[0].member_metadata[..], b"subscription");

    // The member leaves: the group is stored Empty, then deleted for good.
    let leave = LeaveGroupRequest::default()
        .with_group_id(gid("persisted"))
        .with_members(vec![leave_group_request::MemberIdentity::default()
            .with_member_id(StrBytes::from_string(member.clone()))]);
    assert_eq!(c.call(3, &leave).await.error_code, 0);
    b.shutdown().await;
    let b = common::broker_with(dir.path(), configure).await;
    let mut c = RawClient::connect(b.kafka_addr).await;
    assert_eq!(
        describe(&mut c, "persisted").await.group_state.as_str(),
        "Empty"
    );
    assert_eq!(
        c.call(3, &heartbeat).await.error_code,
        25,
        "UNKNOWN_MEMBER_ID"
    );
    let delete = DeleteGroupsRequest::default().with_groups_names(vec![gid("persisted")]);
    assert_eq!(c.call(2, &delete).await.results[0].error_code, 0);
    b.shutdown().await;
    let b = common::broker_with(dir.path(), configure).await;
    let mut c = RawClient::connect(b.kafka_addr).await;
    assert_eq!(
        describe(&mut c, "persisted").await.group_state.as_str(),
        "Dead"
    );
    b.shutdown().await;
}
