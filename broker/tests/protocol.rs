//! Wire-level tests: ApiVersions matches the handled table, every advertised version of every
//! API gets a well-formed response, and hostile frames close only their own connection.

mod common;

use samsa_broker::server::now_ms;

use bytes::{BufMut, BytesMut};
use common::{broker, RawClient};
use kafka_protocol::messages::api_versions_response::ApiVersionsResponse;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};
use samsa_broker::protocol::api::HANDLED_APIS;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

#[tokio::test]
async fn api_versions_advertises_exactly_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    for version in 0..=4 {
        let mut c = RawClient::connect(b.kafka_addr).await;
        let mut req = ApiVersionsRequest::default();
        if version >= 3 {
            req.client_software_name = StrBytes::from_static_str("samsa-tests");
            req.client_software_version = StrBytes::from_static_str("1.0");
        }
        let resp = c.call(version, &req).await;
        assert_eq!(resp.error_code, 0);
        let got: Vec<(i16, i16, i16)> = resp
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.min_version, k.max_version))
            .collect();
        let want: Vec<(i16, i16, i16)> = HANDLED_APIS
            .iter()
            .map(|r| (r.key as i16, r.min, r.max))
            .collect();
        assert_eq!(got, want, "v{version}");
    }
    // A bad client software name is refused with INVALID_REQUEST (KIP-511).
    let mut c = RawClient::connect(b.kafka_addr).await;
    let req = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("bad name"))
        .with_client_software_version(StrBytes::from_static_str("1"));
    assert_eq!(c.call(3, &req).await.error_code, 42);
    b.shutdown().await;
}

#[tokio::test]
async fn newer_api_versions_falls_back_to_v0() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let mut c = RawClient::connect(b.kafka_addr).await;
    // ApiVersions v9 with a flexible (v2) header: api key, version, correlation, client id, tags.
    let mut f = BytesMut::new();
    f.put_i16(18);
    f.put_i16(9);
    f.put_i32(77);
    f.put_i16(1);
    f.put_slice(b"x");
    f.put_u8(0);
    f.put_slice(&[0xde, 0xad]); // a body we cannot know
    let mut framed = BytesMut::new();
    framed.put_i32(f.len() as i32);
    framed.put_slice(&f);
    c.write_raw(&framed).await.unwrap();
    let mut frame = c
        .read_frame()
        .await
        .expect("an answer, not a closed connection");
    let header = ResponseHeader::decode(&mut frame, 0).unwrap();
    assert_eq!(header.correlation_id, 77);
    let resp = ApiVersionsResponse::decode(&mut frame, 0).unwrap();
    assert_eq!(resp.error_code, 35, "UNSUPPORTED_VERSION");
    assert_eq!(resp.api_keys.len(), HANDLED_APIS.len());
    b.shutdown().await;
}

#[tokio::test]
async fn every_advertised_version_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let mut c = RawClient::connect(b.kafka_addr).await;
    let create = CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
        .with_name(name("versions"))
        .with_num_partitions(2)
        .with_replication_factor(1)]);
    assert_eq!(c.call(7, &create).await.topics[0].error_code, 0);
    let batch = common::batch(&[(Some(b"k"), b"v")], now_ms());

    for v in 0..=12 {
        let mut req = MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(name("versions"))),
        ]));
        if v >= 4 {
            req.allow_auto_topic_creation = false;
        }
        let resp = c.call(v, &req).await;
        assert_eq!(resp.topics.len(), 1, "Metadata v{v}");
        assert_eq!(resp.topics[0].error_code, 0, "Metadata v{v}");
        assert_eq!(resp.topics[0].partitions.len(), 2, "Metadata v{v}");
        assert_eq!(resp.brokers.len(), 1);
        assert_eq!(resp.brokers[0].port, b.kafka_addr.port() as i32);
    }
    let mut expected_offset = 0;
    for v in 3..=11 {
        let req = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(1000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(name("versions"))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch.clone()))])]);
        let resp = c.call(v, &req).await;
        let p = &resp.responses[0].partition_responses[0];
        assert_eq!(
            (p.error_code, p.base_offset),
            (0, expected_offset),
            "Produce v{v}"
        );
        expected_offset += 1;
    }
    for v in 4..=12 {
        let req = FetchRequest::default()
            .with_max_wait_ms(0)
            .with_max_bytes(1 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(name("versions"))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(3)
                    .with_partition_max_bytes(1 << 20)])]);
        let resp = c.call(v, &req).await;
        let p = &resp.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "Fetch v{v}");
        assert_eq!(p.high_watermark, expected_offset, "Fetch v{v}");
        let records = p.records.clone().unwrap();
        assert!(!records.is_empty(), "Fetch v{v}");
        // The first batch returned holds offset 3, written into the stored header.
        assert_eq!(
            i64::from_be_bytes(records[..8].try_into().unwrap()),
            3,
            "Fetch v{v}"
        );
    }
    for v in 1..=7 {
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(name("versions"))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(-1)])]);
        let resp = c.call(v, &req).await;
        let p = &resp.topics[0].partitions[0];
        assert_eq!(
            (p.error_code, p.offset),
            (0, expected_offset),
            "ListOffsets v{v}"
        );
    }
    for v in 2..=4 {
        let ask = |leader_epoch: i32, current: i32| {
            OffsetForLeaderEpochRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![
                    offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                        .with_topic(name("versions"))
                        .with_partitions(vec![
                            offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                                .with_partition(0)
                                .with_current_leader_epoch(current)
                                .with_leader_epoch(leader_epoch),
                        ]),
                    offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                        .with_topic(name("no-such-topic"))
                        .with_partitions(vec![
                            offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                                .with_partition(0)
                                .with_leader_epoch(0),
                        ]),
                ])
        };
        let resp = c.call(v, &ask(0, -1)).await;
        let p = &resp.topics[0].partitions[0];
        // The broker's only epoch is 0: it ends at the log end.
        assert_eq!(
            (p.error_code, p.leader_epoch, p.end_offset),
            (0, 0, expected_offset),
            "OffsetForLeaderEpoch v{v}"
        );
        assert_eq!(resp.topics[1].partitions[0].error_code, 3, "v{v}");
        let above = &c.call(v, &ask(1, -1)).await.topics[0].partitions[0];
        assert_eq!(
            (above.error_code, above.end_offset),
            (0, -1),
            "v{v}: UNDEFINED"
        );
        let newer = &c.call(v, &ask(0, 1)).await.topics[0].partitions[0];
        assert_eq!(newer.error_code, 75, "v{v}: UNKNOWN_LEADER_EPOCH");
    }
    for v in 1..=4 {
        let req = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("versions")),
        ]);
        let resp = c.call(v, &req).await;
        assert_eq!(resp.results[0].error_code, 0, "DescribeConfigs v{v}");
        assert!(resp.results[0]
            .configs
            .iter()
            .any(|c| c.name.as_str() == "retention.ms"));
    }
    for v in 0..=1 {
        let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
            incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("versions"))
                .with_configs(vec![
                    incremental_alter_configs_request::AlterableConfig::default()
                        .with_name(StrBytes::from_static_str("retention.ms"))
                        .with_config_operation(0)
                        .with_value(Some(StrBytes::from_string(format!("{}", 1000 + v)))),
                ]),
        ]);
        assert_eq!(
            c.call(v, &req).await.responses[0].error_code,
            0,
            "IncrementalAlterConfigs v{v}"
        );
    }
    for v in 0..=3 {
        let req = CreatePartitionsRequest::default().with_topics(vec![
            create_partitions_request::CreatePartitionsTopic::default()
                .with_name(name("versions"))
                .with_count(3 + v as i32),
        ]);
        assert_eq!(
            c.call(v, &req).await.results[0].error_code,
            0,
            "CreatePartitions v{v}"
        );
    }
    for v in 2..=7 {
        let t = format!("created-v{v}");
        let req = CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
            .with_name(name(&t))
            .with_num_partitions(1)
            .with_replication_factor(1)]);
        assert_eq!(
            c.call(v, &req).await.topics[0].error_code,
            0,
            "CreateTopics v{v}"
        );
    }
    for v in 1..=6 {
        let t = format!("created-v{}", v + 1);
        let mut req = DeleteTopicsRequest::default();
        if v >= 6 {
            req.topics =
                vec![delete_topics_request::DeleteTopicState::default().with_name(Some(name(&t)))];
        } else {
            req.topic_names = vec![name(&t)];
        }
        let resp = c.call(v, &req).await;
        assert_eq!(resp.responses[0].error_code, 0, "DeleteTopics v{v}");
    }
    b.shutdown().await;
}

async fn survives(addr: std::net::SocketAddr) {
    let mut c = RawClient::connect(addr).await;
    let resp = c.call(0, &ApiVersionsRequest::default()).await;
    assert_eq!(resp.error_code, 0);
}

#[tokio::test]
async fn hostile_frames_close_only_their_connection() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let mut hostile: Vec<Vec<u8>> = vec![
        // negative and oversize sizes
        (-5i32).to_be_bytes().to_vec(),
        (i32::MAX).to_be_bytes().to_vec(),
        // too short for a header
        [&3i32.to_be_bytes()[..], b"abc"].concat(),
        // unknown api key 999
        [
            &10i32.to_be_bytes()[..],
            &999i16.to_be_bytes(),
            &0i16.to_be_bytes(),
            &1i32.to_be_bytes(),
            &(-1i16).to_be_bytes(),
        ]
        .concat(),
        // Metadata v99
        [
            &10i32.to_be_bytes()[..],
            &3i16.to_be_bytes(),
            &99i16.to_be_bytes(),
            &1i32.to_be_bytes(),
            &(-1i16).to_be_bytes(),
        ]
        .concat(),
        // Metadata v1 whose topic array claims 2^31-1 entries
        [
            &14i32.to_be_bytes()[..],
            &3i16.to_be_bytes(),
            &1i16.to_be_bytes(),
            &1i32.to_be_bytes(),
            &(-1i16).to_be_bytes(),
            &i32::MAX.to_be_bytes(),
        ]
        .concat(),
        // Metadata v9 (flexible) whose compact topic array claims 2^31 entries
        [
            &15i32.to_be_bytes()[..],
            &3i16.to_be_bytes(),
            &9i16.to_be_bytes(),
            &1i32.to_be_bytes(),
            &(-1i16).to_be_bytes(),
            &[0u8],
            &[0xff, 0xff, 0xff, 0xff, 0x07],
        ]
        .concat(),
        // Produce v9 with a huge topic array
        [
            &20i32.to_be_bytes()[..],
            &0i16.to_be_bytes(),
            &9i16.to_be_bytes(),
            &1i32.to_be_bytes(),
            &(-1i16).to_be_bytes(),
            &[0u8],
            &[0u8],
            &1i16.to_be_bytes(),
            &0i32.to_be_bytes(),
            &[0xff, 0xff, 0xff, 0xff, 0x07],
        ]
        .concat(),
    ];
    // Random garbage, deterministic.
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for len in [1usize, 7, 64, 512] {
        let mut g = Vec::with_capacity(len + 4);
        g.extend_from_slice(&(len as i32).to_be_bytes());
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            g.push(x as u8);
        }
        hostile.push(g);
    }
    for (i, frame) in hostile.iter().enumerate() {
        let mut c = RawClient::connect(b.kafka_addr).await;
        c.write_raw(frame).await.unwrap();
        assert!(
            c.is_closed().await,
            "hostile frame {i} should close its connection"
        );
        survives(b.kafka_addr).await;
    }
    // A truncated frame: the size promises more than ever arrives, then the client leaves.
    {
        let mut c = RawClient::connect(b.kafka_addr).await;
        c.write_raw(&[&100i32.to_be_bytes()[..], b"short"].concat())
            .await
            .unwrap();
    }
    survives(b.kafka_addr).await;
    b.shutdown().await;
}

#[tokio::test]
async fn metadata_reports_the_rack_read_from_the_rack_file() {
    let dir = tempfile::tempdir().unwrap();
    let rack_file = dir.path().join("rack");
    // The broker starts before the file holds its rack (as on Kubernetes, where the operator
    // sets the annotation once the pod is scheduled) and waits for it.
    let file = rack_file.clone();
    let writer = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        std::fs::write(&file, "zone-c\n").unwrap();
    });
    let data = dir.path().join("data");
    let b = common::broker_with(&data, |c| c.broker_rack_file = Some(rack_file)).await;
    writer.await.unwrap();
    let mut c = RawClient::connect(b.kafka_addr).await;
    for v in [0, 1, 9, 12] {
        let resp = c.call(v, &MetadataRequest::default()).await;
        assert_eq!(resp.brokers.len(), 1, "Metadata v{v}");
        let rack = resp.brokers[0].rack.as_ref().map(|r| r.to_string());
        let want = (v >= 1).then(|| "zone-c".to_string());
        assert_eq!(rack, want, "Metadata v{v}");
    }
}
