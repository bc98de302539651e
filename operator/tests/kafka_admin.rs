//! The admin client against real `samsa-broker` processes: what it creates, grows, alters and
//! deletes is what Metadata and DescribeConfigs then report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use samsa_operator::kafka::{AdminClient, AdminError, NewTopic, RESOURCE_TOPIC};
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
