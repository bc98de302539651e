//! Partition reassignment (Kafka's KIP-455) as pure rules on the metadata image: starting,
//! replacing and cancelling a move, and completing it once the replicas being added are in
//! sync. The replica set during a move is the target followed by the original replicas
//! leaving; adding replicas fetch like any follower and join the ISR when caught up, and are
//! never counted for acks=all or min.insync.replicas before that.

use std::collections::BTreeSet;

use super::command::{ApplyResult, Refusal};
use super::image::{MetadataImage, PartitionRecord, Reassignment, NO_LEADER};

/// Starts or replaces (`Some(target)`) or cancels (`None`) the reassignment of a partition.
pub(super) fn alter_reassignment(
    image: &mut MetadataImage,
    topic: &str,
    partition: i32,
    target: Option<&[i32]>,
    min_isr: i32,
) -> ApplyResult {
    let unknown = || Refusal::UnknownPartition {
        topic: topic.to_string(),
        partition,
    };
    let p = image.partition(topic, partition).ok_or_else(unknown)?;
    let original = match &p.reassignment {
        Some(r) => r.original.clone(),
        None => p.replicas.clone(),
    };
    let Some(target) = target else {
        if p.reassignment.is_none() {
            return Err(Refusal::NoReassignmentInProgress {
                topic: topic.to_string(),
                partition,
            });
        }
        if !p.isr.iter().any(|b| original.contains(b)) {
            return Err(Refusal::InvalidAssignment(format!(
                "cannot cancel the move of {topic}-{partition}: none of its original replicas \
                 {original:?} is in sync (ISR {:?})",
                p.isr
            )));
        }
        let live = image.live_brokers();
        let record = image.partition_mut(topic, partition).ok_or_else(unknown)?;
        record.reassignment = None;
        set_replicas(record, original, &live);
        return Ok(());
    };
    check_target(image, topic, partition, target)?;
    let live = image.live_brokers();
    let same_set = target.iter().collect::<BTreeSet<_>>() == original.iter().collect();
    let record = image.partition_mut(topic, partition).ok_or_else(unknown)?;
    if same_set {
        // Back to (a reordering of) the original replicas: nothing moves.
        record.reassignment = None;
        set_replicas(record, target.to_vec(), &live);
        return Ok(());
    }
    let move_ = Reassignment {
        target: target.to_vec(),
        original,
        min_isr: min_isr.clamp(1, i32::try_from(target.len()).unwrap_or(i32::MAX)),
    };
    let replicas = move_.replicas();
    record.reassignment = Some(move_);
    set_replicas(record, replicas, &live);
    maybe_complete(record, &live);
    Ok(())
}

/// Completes the move of `record` when every replica being added is in the ISR and at least
/// `min_isr` target replicas are: the target becomes the replica set, the others leave the
/// ISR, and leadership moves to the first in-sync target replica when the leader is leaving.
/// Returns whether it completed.
pub(super) fn maybe_complete(record: &mut PartitionRecord, live: &BTreeSet<i32>) -> bool {
    let Some(r) = &record.reassignment else {
        return false;
    };
    if !r.adding().iter().all(|b| record.isr.contains(b)) {
        return false;
    }
    let in_sync_target = r.target.iter().filter(|b| record.isr.contains(b)).count();
    if (in_sync_target as i32) < r.min_isr || in_sync_target == 0 {
        return false;
    }
    let target = r.target.clone();
    record.reassignment = None;
    set_replicas(record, target, live);
    true
}

/// Sets the replica set; the ISR keeps only replicas of it (in their order), and a leader
/// that is no longer a replica hands over to the first live in-sync one. Bumps the epochs
/// that change.
fn set_replicas(record: &mut PartitionRecord, replicas: Vec<i32>, live: &BTreeSet<i32>) {
    let isr: Vec<i32> = replicas
        .iter()
        .copied()
        .filter(|b| record.isr.contains(b))
        .collect();
    let changed = record.replicas != replicas || record.isr != isr;
    if !isr.is_empty() {
        record.isr = isr;
    }
    record.replicas = replicas;
    if record.leader != NO_LEADER && !record.replicas.contains(&record.leader) {
        record.leader = record
            .isr
            .iter()
            .copied()
            .find(|b| live.contains(b))
            .unwrap_or(NO_LEADER);
        record.leader_epoch += 1;
        record.partition_epoch += 1;
    } else if changed || record.reassignment.is_some() {
        record.partition_epoch += 1;
    }
}

/// A target must list registered brokers, each once, at least one.
fn check_target(image: &MetadataImage, topic: &str, partition: i32, target: &[i32]) -> ApplyResult {
    if target.is_empty() {
        return Err(Refusal::InvalidAssignment(format!(
            "the target replicas of {topic}-{partition} are empty"
        )));
    }
    let distinct: BTreeSet<i32> = target.iter().copied().collect();
    if distinct.len() != target.len() {
        return Err(Refusal::InvalidAssignment(format!(
            "the target replicas of {topic}-{partition} list a broker twice: {target:?}"
        )));
    }
    if let Some(b) = target.iter().find(|b| !image.brokers.contains_key(b)) {
        return Err(Refusal::InvalidAssignment(format!(
            "broker {b} in the target replicas of {topic}-{partition} is not registered"
        )));
    }
    Ok(())
}
