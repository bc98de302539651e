//! The high-watermark and ISR rules of `state`.

use std::time::{Duration, Instant};

use super::state::{admit_follower, check_epoch, FetchAdmission, FollowerStanding, ReplicaState};
use crate::controller::{PartitionRecord, NO_LEADER};

fn record(leader: i32, epoch: i32, isr: &[i32]) -> PartitionRecord {
    PartitionRecord {
        replicas: vec![1, 2, 3],
        isr: isr.to_vec(),
        leader,
        leader_epoch: epoch,
        partition_epoch: epoch,
        reassignment: None,
    }
}

fn leader(now: Instant, end: i64) -> ReplicaState {
    let mut s = ReplicaState::unknown(1, 0);
    s.become_leader(&record(1, 3, &[1, 2, 3]), end, now);
    s
}

#[test]
fn high_watermark_is_the_smallest_log_end_over_the_isr() {
    let now = Instant::now();
    let mut s = leader(now, 10);
    assert_eq!(s.high_watermark, 0, "followers not heard from hold it back");
    s.record_follower_fetch(2, 10, 10, now);
    assert!(
        !s.advance_high_watermark(10),
        "follower 3 not heard from yet"
    );
    s.record_follower_fetch(3, 7, 10, now);
    assert!(s.advance_high_watermark(10));
    assert_eq!(s.high_watermark, 7);
    s.record_follower_fetch(3, 10, 10, now);
    assert!(s.advance_high_watermark(10));
    assert_eq!(s.high_watermark, 10);
    // A follower outside the ISR does not count; the watermark never goes down.
    s.isr = vec![1, 2];
    s.record_follower_fetch(3, 4, 20, now);
    s.record_follower_fetch(2, 20, 20, now);
    assert!(s.advance_high_watermark(20));
    assert_eq!(s.high_watermark, 20);
    s.record_follower_fetch(2, 15, 20, now);
    assert!(!s.advance_high_watermark(20));
    assert_eq!(s.high_watermark, 20);
}

#[test]
fn a_pending_isr_addition_counts_a_pending_removal_does_not() {
    let now = Instant::now();
    let mut s = leader(now, 10);
    s.isr = vec![1, 2];
    s.record_follower_fetch(2, 10, 10, now);
    s.record_follower_fetch(3, 5, 10, now);
    s.pending_isr = Some(vec![1, 2, 3]);
    s.advance_high_watermark(10);
    assert_eq!(
        s.high_watermark, 5,
        "maximal ISR includes the member being added"
    );
    s.pending_isr = Some(vec![1]);
    s.isr = vec![1, 2, 3];
    s.record_follower_fetch(3, 6, 10, now);
    s.advance_high_watermark(10);
    assert_eq!(s.high_watermark, 6, "a removal only counts once committed");
}

#[test]
fn the_sole_isr_member_commits_alone() {
    let mut s = ReplicaState::standalone(1, 0);
    assert!(s.advance_high_watermark(5));
    assert_eq!(s.high_watermark, 5);
}

#[test]
fn followers_behind_for_longer_than_the_lag_leave_the_isr() {
    let t0 = Instant::now();
    let lag = Duration::from_millis(1000);
    let mut s = leader(t0, 100);
    s.record_follower_fetch(2, 100, 100, t0);
    s.record_follower_fetch(3, 100, 100, t0);
    assert_eq!(
        s.isr_to_shrink(100, lag, t0 + lag * 5),
        None,
        "at the log end: in sync"
    );
    // The leader's log grows; 2 keeps up, 3 stops fetching.
    let t1 = t0 + Duration::from_millis(800);
    s.record_follower_fetch(2, 150, 150, t1);
    assert_eq!(s.isr_to_shrink(150, lag, t1), None);
    let t2 = t0 + Duration::from_millis(1500);
    s.record_follower_fetch(2, 150, 200, t2);
    assert_eq!(s.isr_to_shrink(200, lag, t2), Some(vec![1, 2]));
    // 2 asked for the end as of its previous fetch: caught up as of then.
    let t3 = t0 + Duration::from_millis(2400);
    s.record_follower_fetch(2, 200, 210, t3);
    assert_eq!(s.isr_to_shrink(210, lag, t3), Some(vec![1, 2]));
    s.pending_isr = Some(vec![1, 2]);
    assert_eq!(s.isr_to_shrink(210, lag, t3), None, "one change at a time");
}

#[test]
fn a_caught_up_follower_rejoins() {
    let now = Instant::now();
    let mut s = leader(now, 10);
    s.isr = vec![1, 2];
    s.record_follower_fetch(2, 10, 10, now);
    s.advance_high_watermark(10);
    s.record_follower_fetch(3, 8, 10, now);
    assert_eq!(s.isr_to_expand(3, true), None, "below the high watermark");
    s.record_follower_fetch(3, 10, 10, now);
    assert_eq!(s.isr_to_expand(3, true), Some(vec![1, 2, 3]));
    assert_eq!(s.isr_to_expand(2, true), None, "already in");
    assert_eq!(s.isr_to_expand(9, true), None, "not a replica");
}

#[test]
fn a_fenced_follower_is_not_proposed_for_the_isr() {
    let now = Instant::now();
    let mut s = leader(now, 10);
    s.isr = vec![1, 2];
    s.record_follower_fetch(2, 10, 10, now);
    s.advance_high_watermark(10);
    s.record_follower_fetch(3, 10, 10, now);
    assert_eq!(
        s.isr_to_expand(3, false),
        None,
        "caught up but fenced: the controller would refuse it"
    );
    assert_eq!(s.isr_to_expand(3, true), Some(vec![1, 2, 3]));
}

fn code(a: FetchAdmission) -> Option<i16> {
    match a {
        FetchAdmission::Refused(e) => Some(e.code()),
        _ => None,
    }
}

#[test]
fn replica_fetches_are_admitted_by_broker_epoch() {
    let live = Some(FollowerStanding {
        epoch: 40,
        fenced: false,
    });
    let fenced = Some(FollowerStanding {
        epoch: 40,
        fenced: true,
    });
    assert!(matches!(admit_follower(40, live), FetchAdmission::Counted));
    assert_eq!(
        code(admit_follower(39, live)),
        Some(77),
        "STALE_BROKER_EPOCH"
    );
    assert_eq!(
        code(admit_follower(-1, live)),
        Some(77),
        "epoch unknown to the follower"
    );
    assert_eq!(code(admit_follower(i64::MIN, live)), Some(77));
    assert_eq!(
        code(admit_follower(40, fenced)),
        Some(107),
        "INELIGIBLE_REPLICA"
    );
    assert_eq!(
        code(admit_follower(39, fenced)),
        Some(77),
        "an older incarnation of a fenced broker is stale"
    );
    // The follower registered after the leader's image: served, not counted.
    assert!(matches!(
        admit_follower(41, live),
        FetchAdmission::Uncounted
    ));
    assert!(matches!(
        admit_follower(41, fenced),
        FetchAdmission::Uncounted
    ));
    assert!(matches!(
        admit_follower(i64::MAX, live),
        FetchAdmission::Uncounted
    ));
    // A broker the leader's image does not know.
    assert!(matches!(admit_follower(5, None), FetchAdmission::Uncounted));
    assert_eq!(code(admit_follower(-1, None),), Some(77));
    // Epochs beyond i64 (never real) neither panic nor admit a smaller one.
    let huge = Some(FollowerStanding {
        epoch: u64::MAX,
        fenced: false,
    });
    assert!(matches!(
        admit_follower(i64::MAX, huge),
        FetchAdmission::Counted
    ));
    assert_eq!(code(admit_follower(0, huge)), Some(77));
}

#[test]
fn leadership_checks() {
    let now = Instant::now();
    let s = leader(now, 0);
    assert!(s.check_leader(3).is_ok());
    assert!(s.check_leader(-1).is_ok());
    assert_eq!(
        s.check_leader(2).unwrap_err().code(),
        74,
        "FENCED_LEADER_EPOCH"
    );
    assert_eq!(
        s.check_leader(4).unwrap_err().code(),
        75,
        "UNKNOWN_LEADER_EPOCH"
    );
    let mut f = ReplicaState::unknown(2, 0);
    f.become_follower(&record(1, 3, &[1, 2, 3]));
    assert_eq!(
        f.check_leader(3).unwrap_err().code(),
        6,
        "NOT_LEADER_OR_FOLLOWER"
    );
    f.become_follower(&record(NO_LEADER, 4, &[2]));
    assert_eq!(
        f.check_leader(-1).unwrap_err().code(),
        5,
        "LEADER_NOT_AVAILABLE"
    );
    assert!(check_epoch(-1, 7).is_ok());
}

#[test]
fn a_new_leader_keeps_its_high_watermark_until_followers_fetch() {
    let now = Instant::now();
    let mut s = ReplicaState::unknown(1, 40);
    s.become_leader(&record(1, 5, &[1, 2]), 50, now);
    assert_eq!(s.high_watermark, 40);
    assert_eq!(s.epoch_start_offset, 50);
    s.record_follower_fetch(2, 45, 50, now);
    assert!(s.advance_high_watermark(50));
    assert_eq!(s.high_watermark, 45);
}
