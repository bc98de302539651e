//! Unit tests of the apply rules: no network, no clock.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::*;

fn register(image: &mut MetadataImage, id: i32) {
    let cmd = MetadataCommand::RegisterBroker {
        id,
        host: format!("b{id}"),
        port: 9092,
        rack: None,
        incarnation_id: format!("inc-{id}"),
        replication: String::new(),
        listeners: Vec::new(),
    };
    apply(image, &cmd).unwrap();
}

fn unfence(image: &mut MetadataImage, id: i32) {
    apply(image, &MetadataCommand::UnfenceBroker { id }).unwrap();
}

fn fence(image: &mut MetadataImage, id: i32) {
    apply(
        image,
        &MetadataCommand::FenceBroker {
            id,
            incarnation: None,
        },
    )
    .unwrap();
}

/// Brokers 1..=n registered and unfenced.
pub(super) fn cluster(n: i32) -> MetadataImage {
    let mut image = MetadataImage::default();
    for id in 1..=n {
        register(&mut image, id);
        unfence(&mut image, id);
    }
    image
}

fn create(image: &mut MetadataImage, name: &str, assignment: Vec<Vec<i32>>) -> ApplyResult {
    create_with(image, name, assignment, BTreeMap::new())
}

fn create_with(
    image: &mut MetadataImage,
    name: &str,
    assignment: Vec<Vec<i32>>,
    configs: BTreeMap<String, String>,
) -> ApplyResult {
    let cmd = MetadataCommand::CreateTopic {
        name: name.into(),
        id: Uuid::new_v4(),
        assignment,
        configs,
    };
    apply(image, &cmd)
}

fn part<'a>(image: &'a MetadataImage, topic: &str, p: i32) -> &'a PartitionRecord {
    image.partition(topic, p).unwrap()
}

#[test]
fn registration_starts_fenced_and_unfence_makes_live() {
    let mut image = MetadataImage::default();
    register(&mut image, 1);
    assert!(image.brokers[&1].fenced);
    assert!(!image.is_live(1));
    unfence(&mut image, 1);
    assert!(image.is_live(1));
    // Same incarnation again: no change of state.
    register(&mut image, 1);
    assert!(image.is_live(1));
}

#[test]
fn create_topic_picks_first_live_replica_and_live_isr() {
    let mut image = cluster(3);
    fence(&mut image, 2);
    create(&mut image, "t", vec![vec![2, 3, 1], vec![1, 2, 3]]).unwrap();
    let p0 = part(&image, "t", 0);
    assert_eq!(p0.leader, 3, "2 is fenced, 3 is the next replica");
    assert_eq!(p0.isr, vec![3, 1]);
    assert_eq!((p0.leader_epoch, p0.partition_epoch), (0, 0));
    let p1 = part(&image, "t", 1);
    assert_eq!(p1.leader, 1);
    assert_eq!(p1.isr, vec![1, 3]);
}

#[test]
fn create_topic_refusals_leave_image_unchanged() {
    let mut image = cluster(2);
    create(&mut image, "t", vec![vec![1]]).unwrap();
    let before = image.clone();
    assert_eq!(
        create(&mut image, "t", vec![vec![1]]),
        Err(Refusal::TopicExists("t".into()))
    );
    assert!(matches!(
        create(&mut image, "u", vec![vec![1, 1]]),
        Err(Refusal::InvalidAssignment(m)) if m.contains("twice")
    ));
    assert!(matches!(
        create(&mut image, "u", vec![vec![1], vec![7]]),
        Err(Refusal::InvalidAssignment(m)) if m.contains("not registered")
    ));
    assert!(matches!(
        create(&mut image, "u", vec![]),
        Err(Refusal::InvalidAssignment(_))
    ));
    fence(&mut image, 2);
    let before_fenced = image.clone();
    assert!(matches!(
        create(&mut image, "u", vec![vec![2]]),
        Err(Refusal::InvalidAssignment(m)) if m.contains("fenced")
    ));
    assert_eq!(image, before_fenced);
    assert_eq!(image.topics, before.topics);
}

#[test]
fn fencing_moves_leadership_and_shrinks_isr() {
    let mut image = cluster(3);
    create(&mut image, "t", vec![vec![1, 2, 3], vec![2, 1, 3]]).unwrap();
    fence(&mut image, 1);
    let p0 = part(&image, "t", 0);
    assert_eq!(p0.leader, 2, "first other ISR member");
    assert_eq!(p0.isr, vec![2, 3]);
    assert_eq!((p0.leader_epoch, p0.partition_epoch), (1, 1));
    let p1 = part(&image, "t", 1);
    assert_eq!(p1.leader, 2, "leader unchanged");
    assert_eq!(p1.isr, vec![2, 3]);
    assert_eq!(
        (p1.leader_epoch, p1.partition_epoch),
        (0, 1),
        "ISR change only bumps the partition epoch"
    );
    assert_eq!(image.fenced_brokers(), 1);
    // Fencing again changes nothing.
    let before = image.clone();
    fence(&mut image, 1);
    assert_eq!(image, before);
}

#[test]
fn last_isr_member_fenced_leaves_partition_offline() {
    let mut image = cluster(2);
    create(&mut image, "t", vec![vec![1, 2]]).unwrap();
    fence(&mut image, 2);
    assert_eq!(part(&image, "t", 0).isr, vec![1]);
    fence(&mut image, 1);
    let p = part(&image, "t", 0);
    assert_eq!(p.leader, NO_LEADER);
    assert_eq!(p.isr, vec![1], "the last ISR member stays in the ISR");
    assert_eq!((p.leader_epoch, p.partition_epoch), (1, 2));
    // 2 comes back but was not in the ISR: no clean leader.
    unfence(&mut image, 2);
    assert_eq!(part(&image, "t", 0).leader, NO_LEADER);
    // 1 comes back: it is in the ISR, so it leads again.
    unfence(&mut image, 1);
    let p = part(&image, "t", 0);
    assert_eq!(p.leader, 1);
    assert_eq!(p.isr, vec![1]);
    assert_eq!((p.leader_epoch, p.partition_epoch), (2, 3));
}

#[test]
fn unclean_election_picks_any_live_replica() {
    let mut image = cluster(3);
    let configs = BTreeMap::from([(UNCLEAN_LEADER_ELECTION.to_string(), "true".to_string())]);
    create_with(&mut image, "t", vec![vec![1, 2, 3]], configs).unwrap();
    // ISR shrinks to [1] by the leader, then 1 is fenced while 2 and 3 are alive.
    let shrink = MetadataCommand::AlterPartition {
        topic: "t".into(),
        partition: 0,
        broker_id: 1,
        leader_epoch: 0,
        partition_epoch: 0,
        new_isr: vec![1],
    };
    apply(&mut image, &shrink).unwrap();
    fence(&mut image, 1);
    let p = part(&image, "t", 0);
    assert_eq!(p.leader, 2, "unclean: first live replica");
    assert_eq!(p.isr, vec![2]);
    assert_eq!(p.leader_epoch, 1);
}

#[test]
fn unclean_unfence_restores_leadership_outside_isr() {
    let mut image = cluster(2);
    create(&mut image, "t", vec![vec![1, 2]]).unwrap();
    fence(&mut image, 2);
    fence(&mut image, 1);
    assert_eq!(part(&image, "t", 0).leader, NO_LEADER);
    let enable = MetadataCommand::AlterConfigs {
        topic: "t".into(),
        set: BTreeMap::from([(UNCLEAN_LEADER_ELECTION.to_string(), "true".to_string())]),
        remove: vec![],
    };
    apply(&mut image, &enable).unwrap();
    unfence(&mut image, 2);
    let p = part(&image, "t", 0);
    assert_eq!(p.leader, 2);
    assert_eq!(p.isr, vec![2]);
}

#[test]
fn new_incarnation_fences_the_old_one() {
    let mut image = cluster(2);
    create(&mut image, "t", vec![vec![1, 2]]).unwrap();
    let again = MetadataCommand::RegisterBroker {
        id: 1,
        host: "b1-new".into(),
        port: 9093,
        rack: Some("r1".into()),
        incarnation_id: "inc-1-restarted".into(),
        replication: String::new(),
        listeners: Vec::new(),
    };
    apply(&mut image, &again).unwrap();
    let b = &image.brokers[&1];
    assert!(b.fenced);
    assert_eq!((b.host.as_str(), b.port), ("b1-new", 9093));
    let p = part(&image, "t", 0);
    assert_eq!(p.leader, 2);
    assert_eq!(p.isr, vec![2]);
}

#[test]
fn alter_partition_compare_and_set() {
    let mut image = cluster(3);
    create(&mut image, "t", vec![vec![1, 2, 3]]).unwrap();
    let alter = |broker_id, leader_epoch, partition_epoch, new_isr: Vec<i32>| {
        MetadataCommand::AlterPartition {
            topic: "t".into(),
            partition: 0,
            broker_id,
            leader_epoch,
            partition_epoch,
            new_isr,
        }
    };
    apply(&mut image, &alter(1, 0, 0, vec![1, 2])).unwrap();
    assert_eq!(part(&image, "t", 0).isr, vec![1, 2]);
    assert_eq!(part(&image, "t", 0).partition_epoch, 1);
    let before = image.clone();
    assert_eq!(
        apply(&mut image, &alter(1, 0, 0, vec![1, 2, 3])),
        Err(Refusal::InvalidUpdateVersion {
            given: 0,
            current: 1
        })
    );
    assert_eq!(
        apply(&mut image, &alter(1, 5, 1, vec![1])),
        Err(Refusal::FencedLeaderEpoch {
            given: 5,
            current: 0
        })
    );
    assert_eq!(
        apply(&mut image, &alter(2, 0, 1, vec![1, 2])),
        Err(Refusal::NotLeader {
            broker: 2,
            leader: 1
        })
    );
    assert!(matches!(
        apply(&mut image, &alter(1, 0, 1, vec![1, 4])),
        Err(Refusal::IneligibleReplica { broker: 4, .. })
    ));
    assert!(matches!(
        apply(&mut image, &alter(1, 0, 1, vec![2, 3])),
        Err(Refusal::InvalidIsr(_))
    ));
    assert_eq!(image, before, "refusals change nothing");
    fence(&mut image, 3);
    let epoch = part(&image, "t", 0).partition_epoch;
    assert!(matches!(
        apply(&mut image, &alter(1, 0, epoch, vec![1, 2, 3])),
        Err(Refusal::IneligibleReplica { broker: 3, reason }) if reason.contains("fenced")
    ));
    let unknown = MetadataCommand::AlterPartition {
        topic: "t".into(),
        partition: 9,
        broker_id: 1,
        leader_epoch: 0,
        partition_epoch: 0,
        new_isr: vec![1],
    };
    assert!(matches!(
        apply(&mut image, &unknown),
        Err(Refusal::UnknownPartition { partition: 9, .. })
    ));
}

#[test]
fn create_partitions_delete_topic_alter_configs() {
    let mut image = cluster(3);
    create(&mut image, "t", vec![vec![1, 2]]).unwrap();
    let add = MetadataCommand::CreatePartitions {
        name: "t".into(),
        assignment: vec![vec![2, 3], vec![3, 1]],
    };
    apply(&mut image, &add).unwrap();
    let t = &image.topics["t"];
    assert_eq!(t.partitions.len(), 3);
    assert_eq!(t.partitions[2].leader, 3);
    assert_eq!(t.partitions[2].isr, vec![3, 1]);
    let wrong_rf = MetadataCommand::CreatePartitions {
        name: "t".into(),
        assignment: vec![vec![1]],
    };
    assert!(matches!(
        apply(&mut image, &wrong_rf),
        Err(Refusal::InvalidAssignment(m)) if m.contains("replicas")
    ));
    let missing = MetadataCommand::CreatePartitions {
        name: "nope".into(),
        assignment: vec![vec![1, 2]],
    };
    assert_eq!(
        apply(&mut image, &missing),
        Err(Refusal::UnknownTopic("nope".into()))
    );

    let alter = MetadataCommand::AlterConfigs {
        topic: "t".into(),
        set: BTreeMap::from([
            ("retention.ms".to_string(), "1000".to_string()),
            ("cleanup.policy".to_string(), "compact".to_string()),
        ]),
        remove: vec![],
    };
    apply(&mut image, &alter).unwrap();
    let remove = MetadataCommand::AlterConfigs {
        topic: "t".into(),
        set: BTreeMap::new(),
        remove: vec!["retention.ms".to_string()],
    };
    apply(&mut image, &remove).unwrap();
    assert_eq!(
        image.topics["t"].configs,
        BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())])
    );

    let delete = MetadataCommand::DeleteTopic { name: "t".into() };
    apply(&mut image, &delete).unwrap();
    assert!(image.topics.is_empty());
    assert_eq!(
        apply(&mut image, &delete),
        Err(Refusal::UnknownTopic("t".into()))
    );
}

#[test]
fn unknown_broker_is_refused() {
    let mut image = MetadataImage::default();
    assert_eq!(
        apply(
            &mut image,
            &MetadataCommand::FenceBroker {
                id: 4,
                incarnation: None
            }
        ),
        Err(Refusal::UnknownBroker(4))
    );
    assert_eq!(
        apply(&mut image, &MetadataCommand::UnfenceBroker { id: 4 }),
        Err(Refusal::UnknownBroker(4))
    );
}

#[test]
fn same_commands_give_the_same_image() {
    let id = Uuid::new_v4();
    let mut commands = Vec::new();
    for b in 1..=4 {
        commands.push(MetadataCommand::RegisterBroker {
            id: b,
            host: format!("b{b}"),
            port: 9092,
            rack: None,
            incarnation_id: format!("i{b}"),
            replication: String::new(),
            listeners: Vec::new(),
        });
        commands.push(MetadataCommand::UnfenceBroker { id: b });
    }
    commands.push(MetadataCommand::CreateTopic {
        name: "t".into(),
        id,
        assignment: (0..8)
            .map(|p| (0..3).map(|r| (p + r) % 4 + 1).collect())
            .collect(),
        configs: BTreeMap::new(),
    });
    commands.push(MetadataCommand::FenceBroker {
        id: 2,
        incarnation: None,
    });
    commands.push(MetadataCommand::FenceBroker {
        id: 3,
        incarnation: None,
    });
    commands.push(MetadataCommand::UnfenceBroker { id: 2 });
    commands.push(MetadataCommand::DeleteTopic { name: "x".into() });

    let run = || {
        let mut image = MetadataImage::default();
        let results: Vec<ApplyResult> = commands.iter().map(|c| apply(&mut image, c)).collect();
        (image, results)
    };
    let (a, ra) = run();
    let (b, rb) = run();
    assert_eq!(a, b);
    assert_eq!(ra, rb);
    assert_eq!(ra.last(), Some(&Err(Refusal::UnknownTopic("x".into()))));
    // A round trip through the wire encoding is lossless.
    let json = serde_json::to_vec(&a).unwrap();
    let back: MetadataImage = serde_json::from_slice(&json).unwrap();
    assert_eq!(back, a);
    // No partition is led by a fenced broker.
    for p in &a.topics["t"].partitions {
        assert!(p.leader == NO_LEADER || a.is_live(p.leader), "{p:?}");
    }
}

#[test]
fn broker_defaults_are_set_and_removed() {
    let mut image = cluster(1);
    let set = MetadataCommand::AlterBrokerDefaults {
        set: BTreeMap::from([
            ("log.retention.ms".to_string(), "1000".to_string()),
            ("min.insync.replicas".to_string(), "2".to_string()),
        ]),
        remove: vec![],
    };
    apply(&mut image, &set).unwrap();
    let remove = MetadataCommand::AlterBrokerDefaults {
        set: BTreeMap::new(),
        remove: vec!["log.retention.ms".to_string()],
    };
    apply(&mut image, &remove).unwrap();
    assert_eq!(
        image.broker_defaults,
        BTreeMap::from([("min.insync.replicas".to_string(), "2".to_string())])
    );
    let before = image.clone();
    let empty = MetadataCommand::AlterBrokerDefaults {
        set: BTreeMap::from([(" ".to_string(), "1".to_string())]),
        remove: vec![],
    };
    assert!(matches!(
        apply(&mut image, &empty),
        Err(Refusal::InvalidConfig(_))
    ));
    assert_eq!(image, before);
    // An image written before dynamic defaults existed still reads.
    let mut json = serde_json::to_value(&before).unwrap();
    json.as_object_mut().unwrap().remove("broker_defaults");
    let old: MetadataImage = serde_json::from_value(json).unwrap();
    assert!(old.broker_defaults.is_empty());
}

#[test]
fn producer_id_blocks_are_taken_once_and_in_order() {
    let mut image = cluster(3);
    assert_eq!(image.next_producer_id, 0);
    let take = |image: &mut MetadataImage, broker_id, first| {
        apply(
            image,
            &MetadataCommand::AllocateProducerIds { broker_id, first },
        )
    };
    take(&mut image, 1, 0).unwrap();
    assert_eq!(image.next_producer_id, PRODUCER_ID_BLOCK);
    // Broker 2 raced broker 1 for the same block: refused with the next free one.
    assert_eq!(
        take(&mut image, 2, 0),
        Err(Refusal::ProducerIdBlockTaken {
            given: 0,
            next: PRODUCER_ID_BLOCK
        })
    );
    assert_eq!(
        image.next_producer_id, PRODUCER_ID_BLOCK,
        "a refusal changes nothing"
    );
    take(&mut image, 2, PRODUCER_ID_BLOCK).unwrap();
    assert_eq!(image.next_producer_id, 2 * PRODUCER_ID_BLOCK);
    assert_eq!(
        take(&mut image, 9, 2 * PRODUCER_ID_BLOCK),
        Err(Refusal::UnknownBroker(9))
    );
    // The counter survives a snapshot round trip (serde) like the rest of the image.
    let json = serde_json::to_vec(&image).unwrap();
    let back: MetadataImage = serde_json::from_slice(&json).unwrap();
    assert_eq!(back.next_producer_id, 2 * PRODUCER_ID_BLOCK);
    // An image written before the counter existed reads as 0.
    let old = br#"{"version":3,"brokers":{},"topics":{}}"#;
    let old: MetadataImage = serde_json::from_slice(old).unwrap();
    assert_eq!(old.next_producer_id, 0);
}

#[test]
fn a_fence_for_an_old_incarnation_leaves_its_successor_alone() {
    let mut image = cluster(2);
    image.version = 40;
    // Broker 2 restarts: a new incarnation registers (fenced) and is unfenced.
    let reg = MetadataCommand::RegisterBroker {
        id: 2,
        host: "b2".into(),
        port: 9092,
        rack: None,
        incarnation_id: "inc-2-new".into(),
        replication: String::new(),
        listeners: Vec::new(),
    };
    apply(&mut image, &reg).unwrap();
    assert_eq!(
        image.brokers[&2].epoch, 40,
        "the epoch is the registration's version"
    );
    unfence(&mut image, 2);
    let stale = MetadataCommand::FenceBroker {
        id: 2,
        incarnation: Some("inc-2".into()),
    };
    apply(&mut image, &stale).unwrap();
    assert!(image.is_live(2), "the old incarnation's fence is a no-op");
    let current = MetadataCommand::FenceBroker {
        id: 2,
        incarnation: Some("inc-2-new".into()),
    };
    apply(&mut image, &current).unwrap();
    assert!(!image.is_live(2));
    // A heartbeat-level re-registration of the same incarnation keeps its epoch.
    image.version = 50;
    apply(&mut image, &reg).unwrap();
    assert_eq!(image.brokers[&2].epoch, 40);
}

#[test]
fn broker_configs_are_set_and_removed_per_broker() {
    let mut image = cluster(2);
    let rate = "follower.replication.throttled.rate".to_string();
    let set = |id: i32, k: &str, v: &str| MetadataCommand::AlterBrokerConfigs {
        broker_id: id,
        set: BTreeMap::from([(k.to_string(), v.to_string())]),
        remove: vec![],
    };
    apply(&mut image, &set(2, &rate, "1048576")).unwrap();
    apply(&mut image, &set(1, "log.retention.ms", "1000")).unwrap();
    // A broker that has not registered yet may be configured ahead.
    apply(&mut image, &set(7, &rate, "10")).unwrap();
    assert_eq!(image.broker_configs[&2][&rate], "1048576");
    assert_eq!(image.broker_configs[&1]["log.retention.ms"], "1000");
    assert_eq!(image.broker_configs.len(), 3);
    // The cluster-wide defaults are another map.
    assert!(image.broker_defaults.is_empty());
    // Removing the last config of a broker removes its entry.
    let remove = MetadataCommand::AlterBrokerConfigs {
        broker_id: 7,
        set: BTreeMap::new(),
        remove: vec![rate.clone()],
    };
    apply(&mut image, &remove).unwrap();
    assert!(!image.broker_configs.contains_key(&7));
    let before = image.clone();
    assert!(matches!(
        apply(&mut image, &set(-1, &rate, "1")),
        Err(Refusal::InvalidConfig(_))
    ));
    assert!(matches!(
        apply(&mut image, &set(2, " ", "1")),
        Err(Refusal::InvalidConfig(_))
    ));
    assert_eq!(image, before);
    // An image written before per-broker configs existed still reads.
    let mut json = serde_json::to_value(&before).unwrap();
    json.as_object_mut().unwrap().remove("broker_configs");
    let old: MetadataImage = serde_json::from_value(json).unwrap();
    assert!(old.broker_configs.is_empty());
    // And the command survives the wire.
    let cmd = set(2, &rate, "5");
    let back: MetadataCommand = serde_json::from_slice(&serde_json::to_vec(&cmd).unwrap()).unwrap();
    assert_eq!(back, cmd);
}
