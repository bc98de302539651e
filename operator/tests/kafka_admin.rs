//! The admin client against real `samsa-broker` processes: what it creates, grows, alters and
//! deletes is what Metadata and DescribeConfigs then report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use samsa_operator::kafka::{
    Admin, AdminClient, AdminError, NewTopic, ELECTION_NOT_NEEDED, RESOURCE_TOPIC,
};
use samsa_operator::plan::topic::{plan_topic, TopicAction};

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn new_topic(name: &str, partitions: i32, rf: i32) -> NewTopic {
    NewTopic {
        name: name.into(),
        partitions,
        replication_factor: rf,
        assignment: None,
        config: BTreeMap::new(),
    }
}

fn code_of(e: &AdminError) -> &str {
    e.kafka()
        .map(|k| k.name.as_str())
        .unwrap_or("not a Kafka error")
}

#[tokio::test]
async fn topic_lifecycle_on_one_broker() {
    let broker = common::single_broker().await;
    let admin = AdminClient::new(&broker.addr(), Duration::from_secs(10));

    // Create with partitions, RF and config.
    let mut t = new_topic("orders", 3, 1);
    t.config = map(&[("retention.ms", "3600000"), ("cleanup.policy", "compact")]);
    admin.create_topic(&t).await.unwrap();
    let observed = admin.describe_topic("orders").await.unwrap().unwrap();
    assert_eq!(observed.partitions.len(), 3);
    assert_eq!(
        observed
            .partitions
            .iter()
            .map(|p| p.partition)
            .collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    for p in &observed.partitions {
        assert_eq!(p.replicas, vec![0]);
        assert_eq!(p.isr, vec![0]);
        assert_eq!(p.leader, 0);
    }
    assert_eq!(
        observed.config,
        map(&[("cleanup.policy", "compact"), ("retention.ms", "3600000")])
    );
    assert!(observed.topic_id.is_some());

    // Creating it again is TOPIC_ALREADY_EXISTS.
    let err = admin.create_topic(&t).await.unwrap_err();
    assert_eq!(code_of(&err), "TOPIC_ALREADY_EXISTS", "{err}");
    assert!(
        err.to_string()
            .contains("CreateTopics orders: TOPIC_ALREADY_EXISTS (36)"),
        "{err}"
    );

    // Grow partitions; shrinking is refused by the broker.
    admin.create_partitions("orders", 5, None).await.unwrap();
    let observed = admin.describe_topic("orders").await.unwrap().unwrap();
    assert_eq!(observed.partitions.len(), 5);
    let err = admin
        .create_partitions("orders", 2, None)
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), "INVALID_PARTITIONS", "{err}");

    // Incremental config changes: set one, delete one.
    admin
        .alter_configs(
            RESOURCE_TOPIC,
            "orders",
            &map(&[("segment.bytes", "1048576")]),
            &["cleanup.policy".to_string()],
        )
        .await
        .unwrap();
    let observed = admin.describe_topic("orders").await.unwrap().unwrap();
    assert_eq!(
        observed.config,
        map(&[("retention.ms", "3600000"), ("segment.bytes", "1048576")])
    );
    let entries = admin
        .describe_configs(RESOURCE_TOPIC, "orders")
        .await
        .unwrap();
    let cleanup = entries.iter().find(|e| e.name == "cleanup.policy").unwrap();
    assert_eq!(
        cleanup.value.as_deref(),
        Some("delete"),
        "back to the default"
    );

    // A key the broker does not know is INVALID_CONFIG.
    let err = admin
        .alter_configs(RESOURCE_TOPIC, "orders", &map(&[("no.such.key", "1")]), &[])
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), "INVALID_CONFIG", "{err}");

    // Delete; deleting an absent topic is fine.
    admin.delete_topic("orders").await.unwrap();
    assert_eq!(admin.describe_topic("orders").await.unwrap(), None);
    admin.delete_topic("orders").await.unwrap();
}

#[tokio::test]
async fn explicit_assignment_and_planning_on_one_broker() {
    let broker = common::single_broker().await;
    let admin = AdminClient::new(&broker.addr(), Duration::from_secs(10));
    let mut t = new_topic("assigned", 0, 0);
    t.assignment = Some(vec![vec![0], vec![0]]);
    admin.create_topic(&t).await.unwrap();
    let observed = admin.describe_topic("assigned").await.unwrap().unwrap();
    assert_eq!(observed.partitions.len(), 2);

    // The plan for an unchanged spec is nothing; for a grown one, CreatePartitions.
    let mut spec: samsa_operator::crd::KafkaTopicSpec =
        serde_json::from_value(serde_json::json!({"clusterRef": {"name": "kc"},
            "partitions": 2, "replicationFactor": 1}))
        .unwrap();
    assert_eq!(
        plan_topic(&spec, Some(&observed)),
        vec![TopicAction::Nothing]
    );
    spec.partitions = 4;
    spec.config = map(&[("retention.ms", "1000")]);
    let actions = plan_topic(&spec, Some(&observed));
    assert_eq!(actions.len(), 2);
    for action in &actions {
        match action {
            TopicAction::CreatePartitions { total, assignment } => admin
                .create_partitions("assigned", *total, assignment.as_deref())
                .await
                .unwrap(),
            TopicAction::AlterConfigs { set, delete } => admin
                .alter_configs(RESOURCE_TOPIC, "assigned", set, delete)
                .await
                .unwrap(),
            other => panic!("unexpected {other:?}"),
        }
    }
    let observed = admin.describe_topic("assigned").await.unwrap().unwrap();
    assert_eq!(observed.partitions.len(), 4);
    assert_eq!(observed.config, map(&[("retention.ms", "1000")]));
    assert_eq!(
        plan_topic(&spec, Some(&observed)),
        vec![TopicAction::Nothing]
    );
}

#[tokio::test]
async fn unreachable_bootstrap_is_a_transient_connect_error() {
    let port = common::free_port();
    let admin = AdminClient::new(&format!("127.0.0.1:{port}"), Duration::from_secs(2));
    let err = admin.metadata(None).await.unwrap_err();
    assert!(matches!(err, AdminError::Connect { .. }), "{err}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn three_broker_cluster_replicates_as_asked() {
    let brokers = common::cluster(3).await;
    let bootstrap = brokers
        .iter()
        .map(|b| b.addr())
        .collect::<Vec<_>>()
        .join(",");
    let admin = AdminClient::new(&bootstrap, Duration::from_secs(15));

    let mut t = new_topic("replicated", 3, 3);
    t.config = map(&[("min.insync.replicas", "2")]);
    admin.create_topic(&t).await.unwrap();
    let observed = admin.describe_topic("replicated").await.unwrap().unwrap();
    assert_eq!(observed.partitions.len(), 3);
    for p in &observed.partitions {
        let mut replicas = p.replicas.clone();
        replicas.sort();
        assert_eq!(replicas, vec![0, 1, 2], "partition {}", p.partition);
    }
    assert_eq!(observed.config, map(&[("min.insync.replicas", "2")]));

    let mut t = new_topic("pinned", 0, 0);
    t.assignment = Some(vec![vec![2, 0], vec![1, 2]]);
    admin.create_topic(&t).await.unwrap();
    let observed = admin.describe_topic("pinned").await.unwrap().unwrap();
    assert_eq!(
        observed
            .partitions
            .iter()
            .map(|p| p.replicas.clone())
            .collect::<Vec<_>>(),
        vec![vec![2, 0], vec![1, 2]]
    );
    admin
        .create_partitions("pinned", 3, Some(&[vec![0, 1]]))
        .await
        .unwrap();
    let observed = admin.describe_topic("pinned").await.unwrap().unwrap();
    assert_eq!(observed.partitions[2].replicas, vec![0, 1]);

    // RF above the live brokers is refused.
    let err = admin
        .create_topic(&new_topic("too-wide", 1, 4))
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), "INVALID_REPLICATION_FACTOR", "{err}");
}

fn offsets(pairs: &[(&str, i32, i64)]) -> BTreeMap<(String, i32), i64> {
    pairs
        .iter()
        .map(|(t, p, o)| ((t.to_string(), *p), *o))
        .collect()
}

#[tokio::test]
async fn groups_offsets_elections_and_quorum_on_three_brokers() {
    let brokers = common::cluster(3).await;
    // One bootstrap only: leaders and coordinators are reached over per-broker connections.
    let bootstrap = brokers[0].addr();
    let admin = AdminClient::new(&bootstrap, Duration::from_secs(15));

    admin
        .create_topic(&new_topic("events", 3, 3))
        .await
        .unwrap();
    common::wait_for(
        "every partition of events has its preferred leader",
        Duration::from_secs(30),
        async || {
            admin
                .metadata(Some(&["events".to_string()]))
                .await
                .is_ok_and(|m| {
                    m.topics.get("events").is_some_and(|t| {
                        t.partitions.len() == 3
                            && t.partitions
                                .iter()
                                .all(|p| p.replicas.first() == Some(&p.leader))
                    })
                })
        },
    )
    .await;

    // Log end offsets after producing 5 and 3 records (and none to partition 2).
    assert_eq!(common::produce(&admin, "events", 0, 5).await, 0);
    assert_eq!(common::produce(&admin, "events", 1, 3).await, 0);
    let all = [
        ("events".to_string(), 0),
        ("events".to_string(), 1),
        ("events".to_string(), 2),
    ];
    let ends = admin.end_offsets(&all).await.unwrap();
    assert_eq!(
        ends,
        offsets(&[("events", 0, 5), ("events", 1, 3), ("events", 2, 0)])
    );
    assert_eq!(common::produce(&admin, "events", 0, 2).await, 5);
    let ends = Admin::end_offsets(&admin, &all[..1]).await.unwrap();
    assert_eq!(ends, offsets(&[("events", 0, 7)]));
    let err = admin
        .end_offsets(&[("events".to_string(), 9)])
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), "UNKNOWN_TOPIC_OR_PARTITION", "{err}");

    // A simple consumer's commits: the group is listed, described and its offsets read back.
    common::commit_offsets(&bootstrap, "billing", &[("events", 0, 4), ("events", 1, 1)]).await;
    let groups = admin.list_groups().await.unwrap();
    let billing = groups
        .iter()
        .find(|g| g.group_id == "billing")
        .unwrap_or_else(|| panic!("billing not in {groups:?}"));
    assert_eq!(billing.protocol_type, "");
    assert_eq!(billing.state.as_deref(), Some("Empty"));
    assert_eq!(
        admin.committed_offsets("billing").await.unwrap(),
        offsets(&[("events", 0, 4), ("events", 1, 1)])
    );
    assert!(admin.committed_offsets("nobody").await.unwrap().is_empty());
    let described = admin
        .describe_groups(&["billing".to_string(), "nobody".to_string()])
        .await
        .unwrap();
    assert_eq!(described.len(), 2);
    assert_eq!(described[0].group_id, "billing");
    assert_eq!(described[0].state, "Empty");
    assert_eq!(described[0].members, 0);
    assert_eq!(described[1].state, "Dead");

    // Preferred elections on healthy partitions are not needed; an unknown partition is named.
    let results = admin
        .elect_leaders(
            true,
            Some(&[("events".to_string(), 0), ("events".to_string(), 2)]),
        )
        .await
        .unwrap();
    let mut codes: Vec<(String, i32, i16)> = results
        .iter()
        .map(|r| (r.topic.clone(), r.partition, r.error_code))
        .collect();
    codes.sort();
    assert_eq!(
        codes,
        vec![
            ("events".to_string(), 0, ELECTION_NOT_NEEDED),
            ("events".to_string(), 2, ELECTION_NOT_NEEDED)
        ]
    );
    assert!(results.iter().all(|r| r.is_ok()));
    let unknown = admin
        .elect_leaders(true, Some(&[("missing".to_string(), 0)]))
        .await
        .unwrap();
    assert_eq!(unknown.len(), 1);
    assert_eq!(unknown[0].error_code, 3);
    assert!(!unknown[0].is_ok());

    // No reassignment runs.
    assert!(admin
        .list_partition_reassignments()
        .await
        .unwrap()
        .is_empty());

    // The quorum: one leader among the three voters, every log end known; every broker
    // answers the same (the others forward to the leader).
    let mut leader = None;
    common::wait_for(
        "every voter's log end is known",
        Duration::from_secs(30),
        async || {
            admin.describe_quorum().await.is_ok_and(|q| {
                leader = Some(q.leader_id);
                q.voters.iter().all(|v| v.log_end_offset >= 0)
            })
        },
    )
    .await;
    let leader = leader.unwrap();
    for b in &brokers {
        let q = AdminClient::new(&b.addr(), Duration::from_secs(15))
            .describe_quorum()
            .await
            .unwrap();
        assert_eq!(q.leader_id, leader, "asked broker {}", b.id);
        assert!(q.leader_epoch >= 1);
        let ids: Vec<i32> = q.voters.iter().map(|v| v.replica_id).collect();
        assert_eq!(ids, vec![0, 1, 2]);
        assert!(q.high_watermark > 0);
        let lead = q.voters.iter().find(|v| v.replica_id == leader).unwrap();
        assert!(lead.log_end_offset >= q.high_watermark, "{q:?}");
        assert!(
            q.voters.iter().all(|v| v.last_caught_up_ms.is_some()),
            "{q:?}"
        );
        assert!(q.observers.is_empty());
    }
}

/// A partition moved from one broker to another with AlterPartitionReassignments: the move is
/// listed, completes, and the data is on the new broker (DescribeLogDirs); cancelling when
/// nothing moves is refused with NO_REASSIGNMENT_IN_PROGRESS.
#[tokio::test]
async fn reassignment_and_log_dirs_on_three_brokers() {
    let brokers = common::cluster(3).await;
    let admin = AdminClient::new(&brokers[0].addr(), Duration::from_secs(10));
    let mut topic = new_topic("moving", 1, 1);
    topic.assignment = Some(vec![vec![0]]);
    admin.create_topic(&topic).await.unwrap();
    common::wait_for(
        "moving-0 led by broker 0",
        Duration::from_secs(30),
        async || {
            admin
                .metadata(Some(&["moving".to_string()]))
                .await
                .is_ok_and(|m| {
                    m.topics
                        .get("moving")
                        .is_some_and(|t| t.partitions[0].leader == 0)
                })
        },
    )
    .await;
    assert_eq!(common::produce(&admin, "moving", 0, 20).await, 0);

    let key = ("moving".to_string(), 0);
    let results = admin
        .alter_partition_reassignments(&BTreeMap::from([(key.clone(), Some(vec![2]))]))
        .await
        .unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(
        (results[0].partition, results[0].error_code),
        (0, 0),
        "{results:?}"
    );
    common::wait_for("the move completes", Duration::from_secs(60), async || {
        let listed = admin.list_partition_reassignments().await.unwrap();
        let md = admin.metadata(Some(&["moving".to_string()])).await.unwrap();
        !listed.contains_key(&key) && md.topics["moving"].partitions[0].replicas == vec![2]
    })
    .await;

    let dirs = admin.describe_log_dirs(2).await.unwrap();
    let bytes: i64 = dirs
        .iter()
        .filter_map(|d| d.partition_bytes.get(&key))
        .sum();
    assert!(
        bytes > 0,
        "broker 2 holds moving-0 with its 20 records: {dirs:?}"
    );
    assert!(dirs.iter().all(|d| d.error_code == 0), "{dirs:?}");
    let old = admin.describe_log_dirs(0).await.unwrap();
    assert!(
        old.iter().all(|d| !d.partition_bytes.contains_key(&key)),
        "broker 0 no longer lists moving-0: {old:?}"
    );

    // Nothing moves now: a cancel is refused.
    let results = admin
        .alter_partition_reassignments(&BTreeMap::from([(key.clone(), None)]))
        .await
        .unwrap();
    assert_eq!(
        results[0].error_code, 85,
        "NO_REASSIGNMENT_IN_PROGRESS: {results:?}"
    );
}
