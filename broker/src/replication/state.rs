//! One partition's replication state as this broker sees it (Kafka's ISR model): who leads at
//! which epoch, the ISR, the high watermark and, on the leader, how far each follower got.
//!
//! Pure rules on plain data: time is passed in, nothing here does I/O or takes a lock, so the
//! high-watermark, ISR-shrink and ISR-expand rules are tested without brokers.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_protocol::ResponseError;

use crate::controller::{PartitionRecord, NO_LEADER};
use crate::protocol::errors::ApiError;

/// What a follower has fetched, as the leader knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerProgress {
    /// The follower's log end offset (its last fetch offset), -1 before its first fetch.
    pub log_end_offset: i64,
    /// Last time the follower was caught up with the leader's log end offset.
    pub last_caught_up: Instant,
    /// Time of the follower's previous fetch.
    pub last_fetch: Instant,
    /// The leader's log end offset at the follower's previous fetch.
    pub leader_end_at_last_fetch: i64,
}

impl FollowerProgress {
    fn new(now: Instant) -> FollowerProgress {
        FollowerProgress {
            log_end_offset: -1,
            last_caught_up: now,
            last_fetch: now,
            leader_end_at_last_fetch: -1,
        }
    }
}

/// The values waiters watch: acks=all produces wait for the high watermark, and give up when
/// the leadership they appended under ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The high watermark.
    pub high_watermark: i64,
    /// The leader epoch this broker knows.
    pub leader_epoch: i32,
    /// Whether this broker leads the partition.
    pub is_leader: bool,
}

/// Replication state of one partition on this broker.
#[derive(Debug, Clone)]
pub struct ReplicaState {
    /// This broker.
    pub node_id: i32,
    /// The leader, or [`NO_LEADER`].
    pub leader: i32,
    /// The leader epoch.
    pub leader_epoch: i32,
    /// The partition epoch (bumped by the controller on every change of the partition).
    pub partition_epoch: i32,
    /// Assigned replicas.
    pub replicas: Vec<i32>,
    /// In-sync replicas, as committed by the controller.
    pub isr: Vec<i32>,
    /// An ISR proposed to the controller and not yet seen committed.
    pub pending_isr: Option<Vec<i32>>,
    /// The high watermark: the offset below which every record is on every ISR member.
    pub high_watermark: i64,
    /// Leader only: each follower's progress.
    pub followers: BTreeMap<i32, FollowerProgress>,
    /// Leader only: the log end offset when this leadership began.
    pub epoch_start_offset: i64,
}

impl ReplicaState {
    /// A partition of a single broker: it leads at epoch 0 and is its whole ISR.
    pub fn standalone(node_id: i32, log_end_offset: i64) -> ReplicaState {
        ReplicaState {
            node_id,
            leader: node_id,
            leader_epoch: 0,
            partition_epoch: 0,
            replicas: vec![node_id],
            isr: vec![node_id],
            pending_isr: None,
            high_watermark: log_end_offset,
            followers: BTreeMap::new(),
            epoch_start_offset: 0,
        }
    }

    /// A partition of a cluster member before the metadata says who leads it.
    pub fn unknown(node_id: i32, high_watermark: i64) -> ReplicaState {
        ReplicaState {
            leader: NO_LEADER,
            leader_epoch: -1,
            partition_epoch: -1,
            replicas: Vec::new(),
            isr: Vec::new(),
            high_watermark,
            ..ReplicaState::standalone(node_id, high_watermark)
        }
    }

    /// Whether this broker leads the partition.
    pub fn is_leader(&self) -> bool {
        self.leader == self.node_id && self.leader != NO_LEADER
    }

    /// ISR members for the min.insync.replicas check: the committed ISR, or fewer when the
    /// leader already proposed dropping laggards (a proposal the controller may be unable to
    /// commit, e.g. without a quorum): refusing acks=all early is safe, waiting for a removal
    /// that cannot commit only ends in a timeout.
    pub fn in_sync_count(&self) -> usize {
        match &self.pending_isr {
            Some(p) => p.len().min(self.isr.len()),
            None => self.isr.len(),
        }
    }

    /// What waiters watch.
    pub fn progress(&self) -> Progress {
        Progress {
            high_watermark: self.high_watermark,
            leader_epoch: self.leader_epoch,
            is_leader: self.is_leader(),
        }
    }

    /// Checks that a client request may be served here: this broker leads, and the client's
    /// `current_leader_epoch` (-1: not given) is the current one.
    pub fn check_leader(&self, current_leader_epoch: i32) -> Result<(), ApiError> {
        if !self.is_leader() {
            let code = if self.leader == NO_LEADER && self.leader_epoch >= 0 {
                ResponseError::LeaderNotAvailable
            } else {
                ResponseError::NotLeaderOrFollower
            };
            return Err(ApiError::new(
                code,
                format!("broker {} does not lead this partition", self.node_id),
            ));
        }
        check_epoch(current_leader_epoch, self.leader_epoch)
    }

    /// Takes the leadership in `record` (this broker is its leader): every other replica
    /// starts as a follower that has not fetched yet and counts as caught up now, so that no
    /// ISR member is dropped before it had a chance to fetch.
    pub fn become_leader(&mut self, record: &PartitionRecord, log_end_offset: i64, now: Instant) {
        self.become_follower(record);
        self.epoch_start_offset = log_end_offset;
        self.followers = record
            .replicas
            .iter()
            .filter(|r| **r != self.node_id)
            .map(|r| (*r, FollowerProgress::new(now)))
            .collect();
        self.high_watermark = self.high_watermark.min(log_end_offset);
        self.advance_high_watermark(log_end_offset);
    }

    /// Follows (or, when this broker is not a replica, just records) the leader in `record`.
    pub fn become_follower(&mut self, record: &PartitionRecord) {
        self.leader = record.leader;
        self.leader_epoch = record.leader_epoch;
        self.partition_epoch = record.partition_epoch;
        self.replicas = record.replicas.clone();
        self.isr = record.isr.clone();
        self.pending_isr = None;
        self.followers.clear();
    }

    /// Whether `record` names the same leadership this state holds (same leader and epoch).
    pub fn same_leadership(&self, record: &PartitionRecord) -> bool {
        self.leader == record.leader && self.leader_epoch == record.leader_epoch
    }

    /// Takes a new ISR (or replica set) of the same leadership from the metadata. Returns
    /// whether anything changed.
    pub fn update_membership(&mut self, record: &PartitionRecord, now: Instant) -> bool {
        if self.partition_epoch == record.partition_epoch
            && self.isr == record.isr
            && self.replicas == record.replicas
        {
            return false;
        }
        self.partition_epoch = record.partition_epoch;
        self.isr = record.isr.clone();
        self.replicas = record.replicas.clone();
        self.pending_isr = None;
        if self.is_leader() {
            let me = self.node_id;
            self.followers.retain(|id, _| record.replicas.contains(id));
            for r in record.replicas.iter().filter(|r| **r != me) {
                self.followers
                    .entry(*r)
                    .or_insert_with(|| FollowerProgress::new(now));
            }
        }
        true
    }

    /// The leader records a follower's fetch at `fetch_offset` while its own log ends at
    /// `leader_end`. Kafka's rule: the follower is caught up now when it asked for the log end;
    /// it was caught up at its previous fetch when it now asks for what the log end was then.
    pub fn record_follower_fetch(
        &mut self,
        follower: i32,
        fetch_offset: i64,
        leader_end: i64,
        now: Instant,
    ) {
        let Some(p) = self.followers.get_mut(&follower) else {
            return;
        };
        if fetch_offset >= leader_end {
            p.last_caught_up = now;
        } else if fetch_offset >= p.leader_end_at_last_fetch && p.leader_end_at_last_fetch >= 0 {
            p.last_caught_up = p.last_caught_up.max(p.last_fetch);
        }
        p.log_end_offset = fetch_offset;
        p.last_fetch = now;
        p.leader_end_at_last_fetch = leader_end;
    }

    /// The ISR the high watermark must wait for: the committed one plus members being added
    /// (Kafka's maximal ISR), so a shrink only counts once committed.
    fn maximal_isr(&self) -> Vec<i32> {
        let mut isr = self.isr.clone();
        if let Some(pending) = &self.pending_isr {
            for b in pending {
                if !isr.contains(b) {
                    isr.push(*b);
                }
            }
        }
        isr
    }

    /// Leader: moves the high watermark up to the smallest log end offset over the maximal
    /// ISR. Never moves it down. Returns whether it moved.
    pub fn advance_high_watermark(&mut self, leader_end: i64) -> bool {
        if !self.is_leader() {
            return false;
        }
        let mut candidate = leader_end;
        for b in self.maximal_isr() {
            if b == self.node_id {
                continue;
            }
            let end = self.followers.get(&b).map_or(-1, |p| p.log_end_offset);
            candidate = candidate.min(end);
        }
        if candidate > self.high_watermark {
            self.high_watermark = candidate;
            true
        } else {
            false
        }
    }

    /// Follower: takes the leader's high watermark, capped at the local log end.
    pub fn follow_high_watermark(&mut self, leader_hw: i64, log_end: i64) -> bool {
        let hw = leader_hw.min(log_end);
        if hw != self.high_watermark {
            self.high_watermark = hw;
            true
        } else {
            false
        }
    }

    /// Leader: the ISR without the followers that have not caught up for longer than
    /// `max_lag` (a follower at the leader's log end is never behind), or `None` when every
    /// member is in sync or a change is already pending.
    pub fn isr_to_shrink(
        &self,
        leader_end: i64,
        max_lag: Duration,
        now: Instant,
    ) -> Option<Vec<i32>> {
        if !self.is_leader() || self.pending_isr.is_some() {
            return None;
        }
        let out: Vec<i32> = self
            .isr
            .iter()
            .copied()
            .filter(|b| *b != self.node_id)
            .filter(|b| {
                self.followers.get(b).is_some_and(|p| {
                    p.log_end_offset != leader_end
                        && now.saturating_duration_since(p.last_caught_up) > max_lag
                })
            })
            .collect();
        if out.is_empty() {
            return None;
        }
        Some(
            self.isr
                .iter()
                .copied()
                .filter(|b| !out.contains(b))
                .collect(),
        )
    }

    /// Leader: the ISR with `follower` added, when it is a live broker (registered and not
    /// fenced in the leader's image: the controller refuses anything else, and each refusal is
    /// one more metadata log entry) and a replica outside the ISR that has caught up with the
    /// high watermark and with the start of this leadership; else `None`.
    pub fn isr_to_expand(&self, follower: i32, follower_live: bool) -> Option<Vec<i32>> {
        if !follower_live
            || !self.is_leader()
            || self.pending_isr.is_some()
            || self.isr.contains(&follower)
            || !self.replicas.contains(&follower)
        {
            return None;
        }
        let end = self.followers.get(&follower)?.log_end_offset;
        if end >= self.high_watermark && end >= self.epoch_start_offset {
            let mut isr = self.isr.clone();
            isr.push(follower);
            Some(isr)
        } else {
            None
        }
    }

    /// Slowest follower's distance behind `leader_end`, in offsets (0 without followers).
    pub fn max_follower_lag(&self, leader_end: i64) -> i64 {
        self.followers
            .values()
            .map(|p| (leader_end - p.log_end_offset.max(0)).max(0))
            .max()
            .unwrap_or(0)
    }
}

/// What the leader's metadata image says about a follower broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerStanding {
    /// The epoch of the broker's registered incarnation (`BrokerRecord.epoch`).
    pub epoch: u64,
    /// Whether the controller fenced it.
    pub fenced: bool,
}

/// How the leader takes a follower's fetch.
#[derive(Debug, Clone)]
pub enum FetchAdmission {
    /// The follower is the live incarnation the leader knows: served, and the fetch counts
    /// for the high watermark and the ISR.
    Counted,
    /// The follower registered after the leader's image (or the image does not know the
    /// broker): served, but counted for nothing until the leader's image catches up. Serving
    /// lets a restarted broker catch up meanwhile; not counting keeps a broker the leader
    /// cannot vouch for out of the high watermark and the ISR.
    Uncounted,
    /// Refused: no records, nothing counted.
    Refused(ApiError),
}

/// Kafka's broker-epoch check of a replica fetch: `given` is the epoch the follower sent (-1:
/// it does not know its own registration), `known` what the leader's image says. An older
/// epoch is a process or session that is gone (STALE_BROKER_EPOCH); the current epoch of a
/// fenced broker is a session the controller ended (INELIGIBLE_REPLICA until it is unfenced);
/// a newer epoch means the leader's image lags.
pub fn admit_follower(given: i64, known: Option<FollowerStanding>) -> FetchAdmission {
    let Some(known) = known else {
        return if given >= 0 {
            FetchAdmission::Uncounted
        } else {
            FetchAdmission::Refused(ApiError::new(
                ResponseError::StaleBrokerEpoch,
                "unknown broker without a broker epoch",
            ))
        };
    };
    // Epochs are metadata versions (u64); anything beyond i64 is newer than any real one.
    let known_epoch = i64::try_from(known.epoch).unwrap_or(i64::MAX);
    if given < known_epoch {
        FetchAdmission::Refused(ApiError::new(
            ResponseError::StaleBrokerEpoch,
            format!("broker epoch {given} is older than the registered {known_epoch}"),
        ))
    } else if given > known_epoch {
        FetchAdmission::Uncounted
    } else if known.fenced {
        FetchAdmission::Refused(ApiError::new(
            ResponseError::IneligibleReplica,
            "the broker is fenced",
        ))
    } else {
        FetchAdmission::Counted
    }
}

/// A request's `current_leader_epoch` against ours: -1 skips the check; newer is
/// UNKNOWN_LEADER_EPOCH (we have not heard of it yet), older is FENCED_LEADER_EPOCH.
pub fn check_epoch(given: i32, ours: i32) -> Result<(), ApiError> {
    if given < 0 || given == ours {
        Ok(())
    } else if given > ours {
        Err(ApiError::new(ResponseError::UnknownLeaderEpoch, ""))
    } else {
        Err(ApiError::new(ResponseError::FencedLeaderEpoch, ""))
    }
}
