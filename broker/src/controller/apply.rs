//! The apply rules of the metadata state machine, as in Kafka's KRaft controller: pure,
//! deterministic functions of (image, command). Every command is checked in full before the
//! image is touched, so a refusal leaves the image as it was. Never does I/O or reads a clock.

use std::collections::{BTreeMap, BTreeSet};

use super::command::{ApplyResult, MetadataCommand, Refusal, PRODUCER_ID_BLOCK};
use super::image::{
    BrokerRecord, Endpoint, MetadataImage, PartitionRecord, TopicRecord, NO_LEADER,
};
use super::reassign;

/// Applies `command` to `image` (the caller sets `image.version`).
pub fn apply(image: &mut MetadataImage, command: &MetadataCommand) -> ApplyResult {
    match command {
        MetadataCommand::RegisterBroker {
            id,
            host,
            port,
            rack,
            incarnation_id,
            replication,
            listeners,
        } => {
            register(
                image,
                *id,
                (host, *port),
                rack,
                incarnation_id,
                replication,
                listeners,
            );
            Ok(())
        }
        MetadataCommand::FenceBroker { id, incarnation } => {
            let other = incarnation.as_ref().is_some_and(|want| {
                image
                    .brokers
                    .get(id)
                    .is_some_and(|b| b.incarnation_id != *want)
            });
            if other {
                return Ok(()); // meant for a process that is gone
            }
            fence(image, *id)
        }
        MetadataCommand::UnfenceBroker { id } => unfence(image, *id),
        MetadataCommand::CreateTopic {
            name,
            id,
            assignment,
            configs,
        } => {
            if image.topics.contains_key(name) {
                return Err(Refusal::TopicExists(name.clone()));
            }
            if name.is_empty() {
                return Err(Refusal::InvalidAssignment("empty topic name".into()));
            }
            if image.topics.values().any(|t| t.id == *id) {
                return Err(Refusal::TopicIdInUse(*id));
            }
            if assignment.is_empty() {
                return Err(Refusal::InvalidAssignment("no partitions".into()));
            }
            check_assignment(image, assignment, None)?;
            let partitions = assignment.iter().map(|r| new_partition(image, r)).collect();
            image.topics.insert(
                name.clone(),
                TopicRecord {
                    id: *id,
                    configs: configs.clone(),
                    partitions,
                },
            );
            Ok(())
        }
        MetadataCommand::DeleteTopic { name } => match image.topics.remove(name) {
            Some(_) => Ok(()),
            None => Err(Refusal::UnknownTopic(name.clone())),
        },
        MetadataCommand::CreatePartitions { name, assignment } => {
            let topic = image
                .topics
                .get(name)
                .ok_or_else(|| Refusal::UnknownTopic(name.clone()))?;
            if assignment.is_empty() {
                return Err(Refusal::InvalidAssignment("no new partitions".into()));
            }
            let rf = topic.partitions.first().map(|p| p.target_replicas().len());
            check_assignment(image, assignment, rf)?;
            let added: Vec<PartitionRecord> =
                assignment.iter().map(|r| new_partition(image, r)).collect();
            if let Some(topic) = image.topics.get_mut(name) {
                topic.partitions.extend(added);
            }
            Ok(())
        }
        MetadataCommand::AlterConfigs { topic, set, remove } => {
            let record = image
                .topics
                .get_mut(topic)
                .ok_or_else(|| Refusal::UnknownTopic(topic.clone()))?;
            change_configs(&mut record.configs, set, remove)
        }
        MetadataCommand::AlterBrokerDefaults { set, remove } => {
            change_configs(&mut image.broker_defaults, set, remove)
        }
        MetadataCommand::AlterPartition {
            topic,
            partition,
            broker_id,
            leader_epoch,
            partition_epoch,
            new_isr,
        } => alter_partition(
            image,
            topic,
            *partition,
            *broker_id,
            (*leader_epoch, *partition_epoch),
            new_isr,
        ),
        MetadataCommand::ElectPreferredLeader { topic, partition } => {
            elect_preferred(image, topic, *partition)
        }
        MetadataCommand::AlterBrokerConfigs {
            broker_id,
            set,
            remove,
        } => {
            if *broker_id < 0 {
                return Err(Refusal::InvalidConfig(format!(
                    "broker id {broker_id} is not a broker id"
                )));
            }
            let mut configs = image
                .broker_configs
                .get(broker_id)
                .cloned()
                .unwrap_or_default();
            change_configs(&mut configs, set, remove)?;
            if configs.is_empty() {
                image.broker_configs.remove(broker_id);
            } else {
                image.broker_configs.insert(*broker_id, configs);
            }
            Ok(())
        }
        MetadataCommand::AlterReassignment {
            topic,
            partition,
            target,
            min_isr,
        } => reassign::alter_reassignment(image, topic, *partition, target.as_deref(), *min_isr),
        MetadataCommand::ElectUncleanLeader { topic, partition } => {
            elect_unclean(image, topic, *partition)
        }
        MetadataCommand::UnregisterBroker { id } => unregister(image, *id),
        MetadataCommand::AllocateProducerIds { broker_id, first } => {
            if !image.brokers.contains_key(broker_id) {
                return Err(Refusal::UnknownBroker(*broker_id));
            }
            if *first != image.next_producer_id {
                return Err(Refusal::ProducerIdBlockTaken {
                    given: *first,
                    next: image.next_producer_id,
                });
            }
            image.next_producer_id = first
                .checked_add(PRODUCER_ID_BLOCK)
                .ok_or_else(|| Refusal::InvalidConfig("producer ids exhausted".into()))?;
            Ok(())
        }
        MetadataCommand::AlterScramCredentials(change) => {
            image.security.alter_scram(change);
            Ok(())
        }
        MetadataCommand::CreateAcls { bindings } => {
            image.security.create_acls(bindings);
            Ok(())
        }
        MetadataCommand::DeleteAcls { bindings } => {
            image.security.delete_acls(bindings);
            Ok(())
        }
    }
}

/// The preferred replica leads again when it is live and in the ISR; a no-op when it leads.
/// Sets and removes config entries (a topic's overrides, the broker defaults); an empty name
/// is refused before anything changes.
fn change_configs(
    configs: &mut BTreeMap<String, String>,
    set: &BTreeMap<String, String>,
    remove: &[String],
) -> ApplyResult {
    if let Some(k) = set
        .keys()
        .chain(remove.iter())
        .find(|k| k.trim().is_empty())
    {
        return Err(Refusal::InvalidConfig(format!("empty config name {k:?}")));
    }
    for (k, v) in set {
        configs.insert(k.clone(), v.clone());
    }
    for k in remove {
        configs.remove(k);
    }
    Ok(())
}

fn elect_preferred(image: &mut MetadataImage, topic: &str, partition: i32) -> ApplyResult {
    let unknown = || Refusal::UnknownPartition {
        topic: topic.to_string(),
        partition,
    };
    let p = image.partition(topic, partition).ok_or_else(unknown)?;
    let preferred = p.replicas.first().copied().ok_or_else(unknown)?;
    if p.leader == preferred {
        return Ok(());
    }
    if !p.isr.contains(&preferred) || !image.is_live(preferred) {
        return Err(Refusal::IneligibleReplica {
            broker: preferred,
            reason: "the preferred replica is not a live member of the ISR".into(),
        });
    }
    let record = image.partition_mut(topic, partition).ok_or_else(unknown)?;
    record.leader = preferred;
    record.leader_epoch += 1;
    record.partition_epoch += 1;
    Ok(())
}

fn register(
    image: &mut MetadataImage,
    id: i32,
    (host, port): (&str, i32),
    rack: &Option<String>,
    incarnation_id: &str,
    replication: &str,
    listeners: &[Endpoint],
) {
    let same_incarnation = image
        .brokers
        .get(&id)
        .is_some_and(|b| b.incarnation_id == incarnation_id);
    if !same_incarnation && image.is_live(id) {
        // A new process took over the id: the old one's leaderships and ISR places go.
        let _ = fence(image, id);
    }
    let (fenced, epoch) = match image.brokers.get(&id) {
        Some(b) if same_incarnation => (b.fenced, b.epoch),
        _ => (true, image.version),
    };
    image.brokers.insert(
        id,
        BrokerRecord {
            host: host.to_string(),
            port,
            rack: rack.clone(),
            incarnation_id: incarnation_id.to_string(),
            replication: replication.to_string(),
            epoch,
            fenced,
            listeners: listeners.to_vec(),
        },
    );
}

/// Every replica list must be non-empty, without duplicates, of registered brokers, with at
/// least one live broker, and of the topic's replication factor when it has one.
fn check_assignment(
    image: &MetadataImage,
    assignment: &[Vec<i32>],
    replication_factor: Option<usize>,
) -> ApplyResult {
    for (i, replicas) in assignment.iter().enumerate() {
        if replicas.is_empty() {
            return Err(Refusal::InvalidAssignment(format!(
                "partition {i} has no replicas"
            )));
        }
        let distinct: BTreeSet<i32> = replicas.iter().copied().collect();
        if distinct.len() != replicas.len() {
            return Err(Refusal::InvalidAssignment(format!(
                "partition {i} lists a broker twice: {replicas:?}"
            )));
        }
        if let Some(b) = replicas.iter().find(|b| !image.brokers.contains_key(b)) {
            return Err(Refusal::InvalidAssignment(format!(
                "broker {b} of partition {i} is not registered"
            )));
        }
        if !replicas.iter().any(|b| image.is_live(*b)) {
            return Err(Refusal::InvalidAssignment(format!(
                "every broker of partition {i} is fenced: {replicas:?}"
            )));
        }
        if let Some(rf) = replication_factor {
            if replicas.len() != rf {
                return Err(Refusal::InvalidAssignment(format!(
                    "partition {i} has {} replicas, the topic has {rf}",
                    replicas.len()
                )));
            }
        }
    }
    Ok(())
}

/// Leader: the first live replica; ISR: the live replicas.
fn new_partition(image: &MetadataImage, replicas: &[i32]) -> PartitionRecord {
    let isr: Vec<i32> = replicas
        .iter()
        .copied()
        .filter(|b| image.is_live(*b))
        .collect();
    PartitionRecord {
        replicas: replicas.to_vec(),
        leader: isr.first().copied().unwrap_or(NO_LEADER),
        isr,
        leader_epoch: 0,
        partition_epoch: 0,
        reassignment: None,
    }
}

fn fence(image: &mut MetadataImage, id: i32) -> ApplyResult {
    let broker = image
        .brokers
        .get_mut(&id)
        .ok_or(Refusal::UnknownBroker(id))?;
    if broker.fenced {
        return Ok(());
    }
    broker.fenced = true;
    let live = image.live_brokers();
    for topic in image.topics.values_mut() {
        let unclean = topic.unclean_election();
        for p in topic
            .partitions
            .iter_mut()
            .filter(|p| p.replicas.contains(&id))
        {
            let mut changed = false;
            if p.isr.len() > 1 && p.isr.contains(&id) {
                p.isr.retain(|b| *b != id);
                changed = true;
            }
            if p.leader == id {
                let next = p.isr.iter().copied().find(|b| live.contains(b));
                p.leader = match next {
                    Some(b) => b,
                    None if unclean => {
                        match p.replicas.iter().copied().find(|b| live.contains(b)) {
                            Some(b) => {
                                p.isr = vec![b];
                                b
                            }
                            None => NO_LEADER,
                        }
                    }
                    None => NO_LEADER,
                };
                p.leader_epoch += 1;
                changed = true;
            }
            if changed {
                p.partition_epoch += 1;
            }
        }
    }
    Ok(())
}

fn unfence(image: &mut MetadataImage, id: i32) -> ApplyResult {
    let broker = image
        .brokers
        .get_mut(&id)
        .ok_or(Refusal::UnknownBroker(id))?;
    if !broker.fenced {
        return Ok(());
    }
    broker.fenced = false;
    for topic in image.topics.values_mut() {
        let unclean = topic.unclean_election();
        for p in topic.partitions.iter_mut() {
            if p.leader != NO_LEADER || !p.replicas.contains(&id) {
                continue;
            }
            if p.isr.contains(&id) {
                p.leader = id;
            } else if unclean {
                p.leader = id;
                p.isr = vec![id];
            } else {
                continue;
            }
            p.leader_epoch += 1;
            p.partition_epoch += 1;
        }
    }
    Ok(())
}

fn alter_partition(
    image: &mut MetadataImage,
    topic: &str,
    partition: i32,
    broker_id: i32,
    (leader_epoch, partition_epoch): (i32, i32),
    new_isr: &[i32],
) -> ApplyResult {
    let unknown = || Refusal::UnknownPartition {
        topic: topic.to_string(),
        partition,
    };
    let p = image.partition(topic, partition).ok_or_else(unknown)?;
    if leader_epoch != p.leader_epoch {
        return Err(Refusal::FencedLeaderEpoch {
            given: leader_epoch,
            current: p.leader_epoch,
        });
    }
    if broker_id != p.leader {
        return Err(Refusal::NotLeader {
            broker: broker_id,
            leader: p.leader,
        });
    }
    if partition_epoch != p.partition_epoch {
        return Err(Refusal::InvalidUpdateVersion {
            given: partition_epoch,
            current: p.partition_epoch,
        });
    }
    let distinct: BTreeSet<i32> = new_isr.iter().copied().collect();
    if distinct.len() != new_isr.len() {
        return Err(Refusal::InvalidIsr(format!(
            "duplicate broker in {new_isr:?}"
        )));
    }
    if !new_isr.contains(&broker_id) {
        return Err(Refusal::InvalidIsr(format!(
            "{new_isr:?} leaves out the leader {broker_id}"
        )));
    }
    for b in new_isr {
        if !p.replicas.contains(b) {
            return Err(Refusal::IneligibleReplica {
                broker: *b,
                reason: "not a replica of the partition".into(),
            });
        }
        if !image.is_live(*b) {
            return Err(Refusal::IneligibleReplica {
                broker: *b,
                reason: "fenced or not registered".into(),
            });
        }
    }
    let live = image.live_brokers();
    let record = image.partition_mut(topic, partition).ok_or_else(unknown)?;
    record.isr = new_isr.to_vec();
    record.partition_epoch += 1;
    // A replica being added may just have joined the ISR: the move may be complete.
    reassign::maybe_complete(record, &live);
    Ok(())
}

/// What an ElectLeaders election of one partition would do, as Kafka's controller decides it,
/// without changing anything: the broker that would lead, or why there is no election
/// (unknown partition, ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE,
/// ELIGIBLE_LEADERS_NOT_AVAILABLE). PREFERRED needs the first replica live and in the ISR;
/// UNCLEAN applies only to a partition without a leader.
pub fn election_candidate(
    image: &MetadataImage,
    topic: &str,
    partition: i32,
    unclean: bool,
) -> Result<i32, Refusal> {
    let unknown = || Refusal::UnknownPartition {
        topic: topic.to_string(),
        partition,
    };
    let p = image.partition(topic, partition).ok_or_else(unknown)?;
    let preferred = p.replicas.first().copied().ok_or_else(unknown)?;
    let not_needed = || Refusal::ElectionNotNeeded {
        topic: topic.to_string(),
        partition,
    };
    if !unclean {
        if p.leader == preferred {
            return Err(not_needed());
        }
        if !p.isr.contains(&preferred) || !image.is_live(preferred) {
            return Err(Refusal::PreferredLeaderNotAvailable {
                topic: topic.to_string(),
                partition,
            });
        }
        return Ok(preferred);
    }
    if p.leader != NO_LEADER {
        return Err(not_needed());
    }
    p.isr
        .iter()
        .chain(p.replicas.iter())
        .copied()
        .find(|b| p.replicas.contains(b) && image.is_live(*b))
        .ok_or_else(|| Refusal::EligibleLeadersNotAvailable {
            topic: topic.to_string(),
            partition,
        })
}

/// An unclean election: the candidate leads; when it was not in the ISR, it is the ISR.
fn elect_unclean(image: &mut MetadataImage, topic: &str, partition: i32) -> ApplyResult {
    let leader = election_candidate(image, topic, partition, true)?;
    let record =
        image
            .partition_mut(topic, partition)
            .ok_or_else(|| Refusal::UnknownPartition {
                topic: topic.to_string(),
                partition,
            })?;
    if !record.isr.contains(&leader) {
        record.isr = vec![leader];
    }
    record.leader = leader;
    record.leader_epoch += 1;
    record.partition_epoch += 1;
    Ok(())
}

/// Removes a registered broker from the metadata, fencing it first.
fn unregister(image: &mut MetadataImage, id: i32) -> ApplyResult {
    fence(image, id)?;
    image.brokers.remove(&id);
    Ok(())
}
