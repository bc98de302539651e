//! Topic administration over the Kafka protocol: CreateTopics, DeleteTopics, CreatePartitions,
//! DescribeConfigs, IncrementalAlterConfigs and Metadata auto-creation, with their error codes.

mod common;

use common::{broker, broker_with, RawClient};
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn tn(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn topic(name: &str, partitions: i32, rf: i16) -> CreatableTopic {
    CreatableTopic::default()
        .with_name(tn(name))
        .with_num_partitions(partitions)
        .with_replication_factor(rf)
}

async fn create(
    c: &mut RawClient,
    topics: Vec<CreatableTopic>,
    validate_only: bool,
) -> Vec<(String, i16, Option<String>)> {
    let req = CreateTopicsRequest::default()
        .with_topics(topics)
        .with_validate_only(validate_only)
        .with_timeout_ms(5000);
    c.call(7, &req)
        .await
        .topics
        .into_iter()
        .map(|t| {
            (
                t.name.to_string(),
                t.error_code,
                t.error_message.map(|m| m.to_string()),
            )
        })
        .collect()
}

async fn describe(c: &mut RawClient, name: &str) -> Vec<(String, String, i8)> {
    let req = DescribeConfigsRequest::default()
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s(name))])
        .with_include_synonyms(true);
    let resp = c.call(4, &req).await;
    assert_eq!(
        resp.results[0].error_code, 0,
        "{:?}",
        resp.results[0].error_message
    );
    resp.results[0]
        .configs
        .iter()
        .map(|e| {
            (
                e.name.to_string(),
                e.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                e.config_source,
            )
        })
        .collect()
}

async fn alter(
    c: &mut RawClient,
    name: &str,
    ops: &[(&str, i8, Option<&str>)],
) -> (i16, Option<String>) {
    let configs = ops
        .iter()
        .map(|(k, op, v)| {
            AlterableConfig::default()
                .with_name(s(k))
                .with_config_operation(*op)
                .with_value(v.map(s))
        })
        .collect();
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s(name))
            .with_configs(configs),
    ]);
    let resp = c.call(1, &req).await;
    (
        resp.responses[0].error_code,
        resp.responses[0]
            .error_message
            .as_ref()
            .map(|m| m.to_string()),
    )
}

#[tokio::test]
async fn create_topics_checks_everything_kafka_checks() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let mut c = RawClient::connect(b.kafka_addr).await;

    let r = create(&mut c, vec![topic("ok", 3, 1)], false).await;
    assert_eq!(r[0].1, 0);
    let r = create(&mut c, vec![topic("ok", 3, 1)], false).await;
    assert_eq!(r[0].1, 36, "TOPIC_ALREADY_EXISTS");
    let r = create(&mut c, vec![topic("rf3", 3, 3)], false).await;
    assert_eq!(r[0].1, 38, "INVALID_REPLICATION_FACTOR");
    assert!(
        r[0].2.as_deref().unwrap().contains("only 1 broker"),
        "{:?}",
        r[0].2
    );
    let r = create(&mut c, vec![topic("bad name!", 1, 1)], false).await;
    assert_eq!(r[0].1, 17, "INVALID_TOPIC_EXCEPTION");
    let r = create(&mut c, vec![topic("zero", 0, 1)], false).await;
    assert_eq!(r[0].1, 37, "INVALID_PARTITIONS");
    let r = create(&mut c, vec![topic("dup", 1, 1), topic("dup", 2, 1)], false).await;
    assert_eq!((r[0].1, r[1].1), (42, 42), "INVALID_REQUEST for duplicates");
    let bad_cfg = topic("cfg", 1, 1).with_configs(vec![CreatableTopicConfig::default()
        .with_name(s("retention.ms"))
        .with_value(Some(s("soon")))]);
    let r = create(&mut c, vec![bad_cfg], false).await;
    assert_eq!(r[0].1, 40, "INVALID_CONFIG");
    assert!(r[0].2.as_deref().unwrap().contains("retention.ms"));
    let unknown_cfg = topic("cfg", 1, 1).with_configs(vec![CreatableTopicConfig::default()
        .with_name(s("no.such"))
        .with_value(Some(s("1")))]);
    assert_eq!(create(&mut c, vec![unknown_cfg], false).await[0].1, 40);
    // validate_only creates nothing.
    assert_eq!(create(&mut c, vec![topic("dry", 2, 1)], true).await[0].1, 0);
    assert_eq!(
        create(&mut c, vec![topic("dry", 2, 1)], false).await[0].1,
        0,
        "dry run left nothing behind"
    );
    // Explicit assignment onto this broker, and onto a broker that does not exist.
    let assigned = CreatableTopic::default()
        .with_name(tn("assigned"))
        .with_num_partitions(-1)
        .with_replication_factor(-1)
        .with_assignments(
            (0..2)
                .map(|p| {
                    CreatableReplicaAssignment::default()
                        .with_partition_index(p)
                        .with_broker_ids(vec![BrokerId(1)])
                })
                .collect(),
        );
    assert_eq!(create(&mut c, vec![assigned], false).await[0].1, 0);
    let elsewhere = CreatableTopic::default()
        .with_name(tn("elsewhere"))
        .with_num_partitions(-1)
        .with_replication_factor(-1)
        .with_assignments(vec![CreatableReplicaAssignment::default()
            .with_partition_index(0)
            .with_broker_ids(vec![BrokerId(7)])]);
    assert_eq!(
        create(&mut c, vec![elsewhere], false).await[0].1,
        39,
        "INVALID_REPLICA_ASSIGNMENT"
    );

    let meta = c
        .call(12, &MetadataRequest::default().with_topics(None))
        .await;
    let mut names: Vec<(String, usize)> = meta
        .topics
        .iter()
        .map(|t| (t.name.as_ref().unwrap().to_string(), t.partitions.len()))
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![("assigned".into(), 2), ("dry".into(), 2), ("ok".into(), 3)]
    );
    assert!(meta.topics.iter().all(|t| !t.topic_id.is_nil()));
    b.shutdown().await;
}

#[tokio::test]
async fn configs_describe_alter_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    {
        let b = broker(dir.path()).await;
        let mut c = RawClient::connect(b.kafka_addr).await;
        let t = topic("c", 1, 1).with_configs(vec![CreatableTopicConfig::default()
            .with_name(s("retention.ms"))
            .with_value(Some(s("12345")))]);
        assert_eq!(create(&mut c, vec![t], false).await[0].1, 0);
        let d = describe(&mut c, "c").await;
        assert!(
            d.contains(&("retention.ms".into(), "12345".into(), 1)),
            "override from DYNAMIC_TOPIC_CONFIG"
        );
        assert!(
            d.contains(&("segment.bytes".into(), "1073741824".into(), 5)),
            "default from DEFAULT_CONFIG"
        );

        assert_eq!(
            alter(
                &mut c,
                "c",
                &[
                    ("segment.bytes", 0, Some("1048576")),
                    ("retention.ms", 1, None)
                ]
            )
            .await
            .0,
            0
        );
        let d = describe(&mut c, "c").await;
        assert!(d.contains(&("segment.bytes".into(), "1048576".into(), 1)));
        assert!(
            d.contains(&("retention.ms".into(), "604800000".into(), 5)),
            "deleted override falls back"
        );

        let (code, msg) = alter(&mut c, "c", &[("max.message.bytes", 0, Some("-5"))]).await;
        assert_eq!(code, 40);
        assert!(msg.unwrap().contains("max.message.bytes"));
        assert_eq!(
            alter(&mut c, "c", &[("retention.ms", 2, Some("5"))])
                .await
                .0,
            40,
            "APPEND on a non-list"
        );
        assert_eq!(
            alter(&mut c, "c", &[("cleanup.policy", 2, Some("delete"))])
                .await
                .0,
            0,
            "APPEND on a list"
        );
        assert_eq!(
            alter(&mut c, "missing", &[("retention.ms", 0, Some("5"))])
                .await
                .0,
            3
        );
        b.shutdown().await;
    }
    let b = broker(dir.path()).await;
    let mut c = RawClient::connect(b.kafka_addr).await;
    let d = describe(&mut c, "c").await;
    assert!(
        d.contains(&("segment.bytes".into(), "1048576".into(), 1)),
        "configs persist across restarts"
    );
    // Broker configs are described, read-only.
    let req =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(s("1"))
            .with_configuration_keys(Some(vec![s("num.partitions")]))]);
    let resp = c.call(4, &req).await;
    assert_eq!(resp.results[0].configs.len(), 1);
    assert_eq!(
        resp.results[0].configs[0].value.as_ref().unwrap().as_str(),
        "1"
    );
    assert!(resp.results[0].configs[0].read_only);
    b.shutdown().await;
}

#[tokio::test]
async fn partitions_grow_never_shrink_and_topics_delete() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let mut c = RawClient::connect(b.kafka_addr).await;
    assert_eq!(create(&mut c, vec![topic("g", 2, 1)], false).await[0].1, 0);
    let grow = |n: i32, validate_only: bool| {
        CreatePartitionsRequest::default()
            .with_validate_only(validate_only)
            .with_topics(vec![
                create_partitions_request::CreatePartitionsTopic::default()
                    .with_name(tn("g"))
                    .with_count(n),
            ])
    };
    assert_eq!(c.call(3, &grow(1, false)).await.results[0].error_code, 37);
    assert_eq!(c.call(3, &grow(5, true)).await.results[0].error_code, 0);
    assert_eq!(c.call(3, &grow(4, false)).await.results[0].error_code, 0);
    let meta = c
        .call(
            1,
            &MetadataRequest::default().with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(tn("g")))
            ])),
        )
        .await;
    assert_eq!(
        meta.topics[0].partitions.len(),
        4,
        "validate_only did not grow it to 5"
    );
    let del = c
        .call(
            4,
            &DeleteTopicsRequest::default().with_topic_names(vec![tn("g"), tn("never")]),
        )
        .await;
    let codes: Vec<i16> = del.responses.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, vec![0, 3]);
    assert!(!dir.path().join("g-0").exists());
    b.shutdown().await;
}

#[tokio::test]
async fn metadata_auto_creates_only_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker_with(dir.path(), |c| c.num_partitions = 3).await;
    let mut c = RawClient::connect(b.kafka_addr).await;
    let ask = |name: &str, allow: bool| {
        MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(tn(name)))
            ]))
            .with_allow_auto_topic_creation(allow)
    };
    let r = c.call(9, &ask("auto", false)).await;
    assert_eq!(
        r.topics[0].error_code, 3,
        "not created when the client says no"
    );
    let r = c.call(9, &ask("auto", true)).await;
    assert_eq!(
        (r.topics[0].error_code, r.topics[0].partitions.len()),
        (0, 3)
    );
    let r = c.call(9, &ask("bad/name", true)).await;
    assert_eq!(r.topics[0].error_code, 17);
    b.shutdown().await;

    let dir = tempfile::tempdir().unwrap();
    let b = broker_with(dir.path(), |c| c.auto_create_topics_enable = false).await;
    let mut c = RawClient::connect(b.kafka_addr).await;
    let r = c
        .call(
            1,
            &MetadataRequest::default().with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(tn("x")))
            ])),
        )
        .await;
    assert_eq!(r.topics[0].error_code, 3, "auto.create.topics.enable=false");
    b.shutdown().await;
}

#[tokio::test]
async fn compaction_configs_are_validated_and_described() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker_with(dir.path(), |c| c.log_cleaner_min_cleanable_ratio = 0.25).await;
    let mut c = RawClient::connect(b.kafka_addr).await;
    let with = |name: &str, configs: &[(&str, &str)]| {
        topic(name, 1, 1).with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(s(k))
                        .with_value(Some(s(v)))
                })
                .collect(),
        )
    };
    for (key, bad) in [
        ("cleanup.policy", "compacted"),
        ("min.cleanable.dirty.ratio", "1.5"),
        ("delete.retention.ms", "-1"),
        ("min.compaction.lag.ms", "later"),
    ] {
        let r = create(&mut c, vec![with("bad", &[(key, bad)])], false).await;
        assert_eq!(r[0].1, 40, "{key}={bad}: INVALID_CONFIG");
        let msg = r[0].2.clone().unwrap_or_default();
        assert!(msg.contains(key), "{msg}");
    }
    let t = with(
        "cc",
        &[
            ("cleanup.policy", "compact,delete"),
            ("delete.retention.ms", "1500"),
        ],
    );
    assert_eq!(create(&mut c, vec![t], false).await[0].1, 0);
    let d = describe(&mut c, "cc").await;
    for want in [
        ("cleanup.policy", "compact,delete", 1),
        ("delete.retention.ms", "1500", 1),
        ("min.cleanable.dirty.ratio", "0.25", 5),
        ("min.compaction.lag.ms", "0", 5),
    ] {
        assert!(
            d.contains(&(want.0.into(), want.1.into(), want.2)),
            "{want:?} in {d:?}"
        );
    }
    assert_eq!(
        alter(&mut c, "cc", &[("cleanup.policy", 0, Some("compact"))])
            .await
            .0,
        0
    );
    assert!(describe(&mut c, "cc")
        .await
        .contains(&("cleanup.policy".into(), "compact".into(), 1)));
    b.shutdown().await;
}
