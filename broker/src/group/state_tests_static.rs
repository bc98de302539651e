//! Unit tests of static membership (KIP-345): restarts without a rebalance, fencing of the
//! replaced member id, removal by instance id, and KIP-814's skip_assignment.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::tests::*;
use super::*;

fn static_sync(
    member_id: &str,
    instance: &str,
    generation_id: i32,
    assignments: &[(&str, &str)],
) -> SyncRequest {
    SyncRequest {
        group_instance_id: Some(instance.to_string()),
        ..sync_req(member_id, generation_id, assignments)
    }
}

fn static_hb(member_id: &str, instance: &str, generation_id: i32) -> HeartbeatRequest {
    HeartbeatRequest {
        group_instance_id: Some(instance.to_string()),
        ..hb(member_id, generation_id)
    }
}

/// Two static members "i-a" (leader) and "i-b", Stable at generation 1. Returns (a, b, now).
fn stable_static_pair(c: &mut GroupCoordinator) -> (String, String, i64) {
    // Static members skip MEMBER_ID_REQUIRED: their joins are held at once.
    assert!(c
        .join(1, static_req("", "i-a", &[("range", "ma")]), 0)
        .is_empty());
    assert!(c
        .join(2, static_req("", "i-b", &[("range", "mb")]), 0)
        .is_empty());
    assert!(c.tick(DELAY).is_empty());
    let out = c.tick(2 * DELAY);
    assert_eq!(out.len(), 2);
    let a = join_of(&out[0]).member_id.clone();
    let bm = join_of(&out[1]).member_id.clone();
    assert!(a.starts_with("i-a-") && bm.starts_with("i-b-"), "{a} {bm}");
    let instances: Vec<_> = join_of(&out[0])
        .members
        .iter()
        .map(|m| m.group_instance_id.clone())
        .collect();
    assert_eq!(
        instances,
        vec![Some("i-a".to_string()), Some("i-b".to_string())]
    );
    let now = 2 * DELAY;
    assert!(c.sync(3, static_sync(&bm, "i-b", 1, &[]), now).is_empty());
    assert_eq!(
        c.sync(
            4,
            static_sync(&a, "i-a", 1, &[(&a, "A1"), (&bm, "B1")]),
            now
        )
        .len(),
        2
    );
    (a, bm, now)
}

#[test]
fn static_member_restart_keeps_assignment_and_fences_old_id() {
    let mut c = coord();
    let (a, bm, now) = stable_static_pair(&mut c);
    // B restarts: same instance id, no member id. New id, same generation, no rebalance,
    // even with changed metadata since the selected protocol stays (as Kafka).
    let r = single_join(
        c.join(10, static_req("", "i-b", &[("range", "mb2")]), now + 1),
        10,
    );
    assert_eq!(
        (
            r.error_code,
            r.generation_id,
            r.leader.as_str(),
            r.members.len()
        ),
        (0, 1, a.as_str(), 0)
    );
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    let b2 = r.member_id;
    assert_ne!(b2, bm);
    assert_eq!(c.describe(G).state, GroupState::Stable);
    let r = single_sync(c.sync(11, static_sync(&b2, "i-b", 1, &[]), now + 2), 11);
    assert_eq!((r.error_code, r.assignment), (0, b("B1")));
    assert_eq!(c.heartbeat(static_hb(&b2, "i-b", 1), now + 3), 0);

    // The old member id is fenced everywhere.
    assert_eq!(
        c.heartbeat(static_hb(&bm, "i-b", 1), now + 3),
        FENCED_INSTANCE_ID
    );
    assert_eq!(
        single_sync(c.sync(12, static_sync(&bm, "i-b", 1, &[]), now + 3), 12).error_code,
        FENCED_INSTANCE_ID
    );
    assert_eq!(
        single_join(
            c.join(13, static_req(&bm, "i-b", &[("range", "mb")]), now + 3),
            13
        )
        .error_code,
        FENCED_INSTANCE_ID
    );
    assert_eq!(
        c.validate_commit(G, &bm, 1, Some("i-b")),
        Err(FENCED_INSTANCE_ID)
    );
    let (_, per, _) = c.leave(
        G,
        vec![LeavingMember {
            member_id: bm.clone(),
            group_instance_id: Some("i-b".into()),
        }],
        now + 3,
    );
    assert_eq!(per, vec![FENCED_INSTANCE_ID]);
    // Without the instance id it is simply unknown.
    assert_eq!(c.heartbeat(hb(&bm, 1), now + 3), UNKNOWN_MEMBER_ID);
    assert_eq!(c.describe(G).state, GroupState::Stable);

    // The leader restarts (JoinGroup < v9): it is told the previous leader id, so it does not
    // compute an assignment, and still no rebalance.
    let r = single_join(
        c.join(14, static_req("", "i-a", &[("range", "ma")]), now + 4),
        14,
    );
    assert_eq!(
        (
            r.error_code,
            r.generation_id,
            r.leader.as_str(),
            r.members.len(),
            r.skip_assignment
        ),
        (0, 1, a.as_str(), 0, false)
    );
    let a2 = r.member_id;
    assert_eq!(c.describe(G).state, GroupState::Stable);
    let ids: Vec<_> = c
        .describe(G)
        .members
        .into_iter()
        .map(|m| (m.member_id, m.assignment))
        .collect();
    assert_eq!(ids, vec![(a2.clone(), b("A1")), (b2.clone(), b("B1"))]);
    // It is the leader now: its next JoinGroup rebalances.
    assert!(c
        .join(15, static_req(&a2, "i-a", &[("range", "ma")]), now + 5)
        .is_empty());
    assert_eq!(c.describe(G).state, GroupState::PreparingRebalance);
}

#[test]
fn static_leader_restart_v9_skips_assignment() {
    let mut c = coord();
    let (a, _bm, now) = stable_static_pair(&mut c);
    let mut req = static_req("", "i-a", &[("range", "ma")]);
    req.supports_skip_assignment = true;
    let r = single_join(c.join(10, req, now + 1), 10);
    assert_ne!(r.member_id, a);
    assert_eq!(
        (
            r.error_code,
            r.generation_id,
            r.leader.as_str(),
            r.skip_assignment
        ),
        (0, 1, r.member_id.as_str(), true)
    );
    assert_eq!(
        r.members
            .iter()
            .map(|m| m.metadata.clone())
            .collect::<Vec<_>>(),
        vec![b("ma"), b("mb")]
    );
    assert_eq!(c.describe(G).state, GroupState::Stable);
}

#[test]
fn static_member_replaced_while_waiting_is_fenced_and_rebalances() {
    let mut c = coord();
    let (a, bm, now) = stable_static_pair(&mut c);
    // A forces a rebalance; B's old incarnation rejoins and waits, then B restarts.
    assert!(c
        .join(10, static_req(&a, "i-a", &[("range", "ma")]), now + 1)
        .is_empty());
    let _ = bm;
    let out = c.join(11, static_req("", "i-b", &[("range", "mb")]), now + 2);
    // Everyone has rejoined (A held, B's new id held): the phase completes.
    assert_eq!(
        out.iter().map(|o| o.token).collect::<Vec<_>>(),
        vec![10, 11]
    );
    let b2 = join_of(&out[1]).member_id.clone();
    assert_eq!(
        join_of(&out[0])
            .members
            .iter()
            .map(|m| m.member_id.clone())
            .collect::<Vec<_>>(),
        vec![a.clone(), b2.clone()]
    );
    // In CompletingRebalance, a restart triggers another rebalance; a held request of the
    // replaced incarnation is fenced.
    assert!(c
        .sync(12, static_sync(&b2, "i-b", 2, &[]), now + 3)
        .is_empty());
    let out = c.join(13, static_req("", "i-b", &[("range", "mb")]), now + 4);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].token, 12);
    assert_eq!(sync_of(&out[0]).error_code, FENCED_INSTANCE_ID);
    assert_eq!(c.describe(G).state, GroupState::PreparingRebalance);
}

#[test]
fn static_members_leave_by_instance_and_expire() {
    let mut c = coord();
    let (a, bm, now) = stable_static_pair(&mut c);
    // Admin removal by instance id (member id empty).
    let (_, per, _) = c.leave(
        G,
        vec![
            LeavingMember {
                member_id: String::new(),
                group_instance_id: Some("i-b".into()),
            },
            LeavingMember {
                member_id: String::new(),
                group_instance_id: Some("i-zz".into()),
            },
        ],
        now + 1,
    );
    assert_eq!(per, vec![0, UNKNOWN_MEMBER_ID]);
    assert_eq!(
        c.heartbeat(static_hb(&bm, "i-b", 1), now + 1),
        UNKNOWN_MEMBER_ID
    );
    let r = single_join(
        c.join(10, static_req(&a, "i-a", &[("range", "ma")]), now + 2),
        10,
    );
    assert_eq!((r.generation_id, r.members.len()), (2, 1));
    // A static member's session expiry removes it.
    let _ = c.sync(11, static_sync(&a, "i-a", 2, &[]), now + 3);
    let _ = c.tick(now + 3 + i64::from(SESSION));
    assert!(c.describe(G).members.is_empty());
    assert!(c.group_is_empty_or_unknown(G));
}

#[test]
fn static_member_that_does_not_rejoin_keeps_its_place() {
    let mut c = coord();
    let (a, bm, now) = stable_static_pair(&mut c);
    assert!(c
        .join(10, static_req(&a, "i-a", &[("range", "ma")]), now + 1)
        .is_empty());
    // B keeps heartbeating but does not rejoin in time: unlike a dynamic member it stays (as
    // Kafka), and the leader still gets its metadata.
    let deadline = now + 1 + i64::from(REBALANCE);
    let mut t = now + 1;
    while t + 3000 < deadline {
        t += 3000;
        assert_eq!(
            c.heartbeat(static_hb(&bm, "i-b", 1), t),
            REBALANCE_IN_PROGRESS
        );
        assert!(c.tick(t).is_empty());
    }
    let r = single_join(c.tick(now + 1 + i64::from(REBALANCE)), 10);
    assert_eq!(r.generation_id, 2);
    assert_eq!(
        r.members
            .iter()
            .map(|m| m.member_id.clone())
            .collect::<Vec<_>>(),
        vec![a, bm]
    );
}
