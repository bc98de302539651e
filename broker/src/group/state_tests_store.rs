//! Unit tests of the group records the coordinator hands out for `__consumer_offsets` and of
//! restoring a group from them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::tests::*;
use super::*;

#[test]
fn a_stable_group_is_stored_once_per_generation_and_restored_without_a_rebalance() {
    let mut c = coord();
    let (a, bm, now) = stable_pair(&mut c);
    let changes = c.take_changes(now);
    assert_eq!(changes.len(), 1, "{changes:?}");
    let (id, stored) = &changes[0];
    assert_eq!(id, G);
    let stored = stored.clone().expect("a record, not a tombstone");
    assert_eq!(
        (
            stored.generation,
            stored.protocol_name.as_deref(),
            stored.leader.as_deref()
        ),
        (1, Some("range"), Some(a.as_str()))
    );
    let members: Vec<(&str, &[u8], &[u8])> = stored
        .members
        .iter()
        .map(|m| (m.member_id.as_str(), &m.subscription[..], &m.assignment[..]))
        .collect();
    assert_eq!(
        members,
        vec![
            (a.as_str(), &b"ma"[..], &b"A1"[..]),
            (bm.as_str(), &b"mb"[..], &b"B1"[..])
        ]
    );
    // Heartbeats change nothing worth storing.
    assert_eq!(c.heartbeat(hb(&a, 1), now + 100), 0);
    assert!(c.take_changes(now + 100).is_empty());

    // Another coordinator (a restart, or the next coordinator after a failover) restores it.
    let later = now + 60_000;
    let mut d = coord();
    d.restore(G, Some(stored), later);
    let described = d.describe(G);
    assert_eq!(described.state, GroupState::Stable);
    assert_eq!(described.protocol, "range");
    let assigned: Vec<(&str, &[u8])> = described
        .members
        .iter()
        .map(|m| (m.member_id.as_str(), &m.assignment[..]))
        .collect();
    assert_eq!(
        assigned,
        vec![(a.as_str(), &b"A1"[..]), (bm.as_str(), &b"B1"[..])]
    );
    assert!(d.take_changes(later).is_empty(), "restored as stored");
    // The members carry on: heartbeats of generation 1 are accepted, a follower's JoinGroup
    // with unchanged metadata is answered at once, and sessions count from the restore.
    assert_eq!(d.heartbeat(hb(&a, 1), later + 1), 0);
    assert_eq!(d.heartbeat(hb(&bm, 1), later + 1), 0);
    assert_eq!(d.heartbeat(hb(&a, 0), later + 1), ILLEGAL_GENERATION);
    let r = single_join(
        d.join(9, join_req(&bm, "cb", &[("range", "mb")]), later + 2),
        9,
    );
    assert_eq!((r.error_code, r.generation_id), (0, 1));
    assert!(d.tick(later + i64::from(SESSION) - 10).is_empty());
    assert_eq!(d.describe(G).members.len(), 2);
}

#[test]
fn restored_members_that_never_come_back_expire_and_the_group_empties() {
    let mut c = coord();
    let (_a, _b, now) = stable_pair(&mut c);
    let (_, stored) = c.take_changes(now).pop().unwrap();
    let mut d = coord();
    d.restore(G, stored, 0);
    // Both sessions expire: a rebalance with nobody left ends Empty at generation 2.
    d.tick(i64::from(SESSION) + 1);
    d.tick(i64::from(SESSION) + 1 + i64::from(REBALANCE));
    assert_eq!(d.describe(G).state, GroupState::Empty);
    let changes = d.take_changes(i64::from(SESSION) + 2 + i64::from(REBALANCE));
    let stored = changes.into_iter().next().and_then(|(_, s)| s).unwrap();
    assert_eq!((stored.generation, stored.members.len()), (2, 0));
    assert_eq!(stored.protocol_name, None);

    // An Empty group restores Empty (listed, deletable), and deleting it stores a tombstone.
    let mut e = coord();
    e.restore(G, Some(stored), 0);
    assert_eq!(e.describe(G).state, GroupState::Empty);
    assert_eq!(e.list().len(), 1);
    assert_eq!(e.delete(G), 0);
    assert_eq!(e.take_changes(1), vec![(G.to_string(), None)]);
    assert!(e.take_changes(2).is_empty());
}

#[test]
fn groups_that_never_had_members_are_not_stored() {
    let mut c = coord();
    let _ = get_member_id(&mut c, 1, "ca", 0);
    assert!(c.take_changes(0).is_empty());
    c.tick(10);
    assert!(c.take_changes(10).is_empty());
}

#[test]
fn unloading_answers_waiting_requests_not_coordinator_and_keeps_other_groups() {
    let mut c = coord();
    let (a, bm, now) = stable_pair(&mut c);
    // Another group, untouched by the unload.
    let other = JoinRequest {
        group_id: "other".to_string(),
        require_known_member_id: false,
        ..join_req("", "co", &[("range", "m")])
    };
    assert!(
        c.join(20, other, now).is_empty(),
        "held for the initial delay"
    );
    // A rejoins with new metadata: a rebalance starts and A's JoinGroup waits for B.
    assert!(c
        .join(7, join_req(&a, "ca", &[("range", "ma2")]), now + 1)
        .is_empty());
    let _ = c.take_changes(now + 1);

    let out = c.unload(|g| g == G);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].token, 7);
    assert_eq!(join_of(&out[0]).error_code, NOT_COORDINATOR);
    assert_eq!(c.describe(G).state, GroupState::Dead);
    assert_eq!(c.heartbeat(hb(&bm, 1), now + 2), UNKNOWN_MEMBER_ID);
    assert!(
        c.take_changes(now + 2).is_empty(),
        "no tombstone for an unload"
    );
    assert_eq!(c.list().len(), 1);
    assert_eq!(c.list()[0].group_id, "other");
}

#[test]
fn unloading_answers_a_held_sync_not_coordinator() {
    let mut c = coord();
    let a = get_member_id(&mut c, 1, "ca", 0);
    assert!(c
        .join(2, join_req(&a, "ca", &[("range", "ma")]), 0)
        .is_empty());
    let bm = get_member_id(&mut c, 3, "cb", 10);
    assert!(c
        .join(4, join_req(&bm, "cb", &[("range", "mb")]), 10)
        .is_empty());
    assert!(c.tick(DELAY).is_empty());
    assert_eq!(c.tick(2 * DELAY).len(), 2);
    assert!(c.sync(5, sync_req(&bm, 1, &[]), 2 * DELAY).is_empty());
    let out = c.unload(|_| true);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].token, 5);
    assert_eq!(sync_of(&out[0]).error_code, NOT_COORDINATOR);
    assert!(c.list().is_empty());
}
