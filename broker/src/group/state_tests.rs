//! Unit tests of the coordinator state machine: whole rebalances driven call by call, with
//! time passed in.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

pub(super) const G: &str = "g";
pub(super) const SESSION: i32 = 10_000;
pub(super) const REBALANCE: i32 = 30_000;
pub(super) const DELAY: i64 = 3000;

pub(super) fn coord() -> GroupCoordinator {
    GroupCoordinator::new(CoordinatorConfig {
        initial_rebalance_delay_ms: DELAY,
        ..CoordinatorConfig::default()
    })
}

pub(super) fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

pub(super) fn protos(list: &[(&str, &str)]) -> Vec<(String, Bytes)> {
    list.iter().map(|(n, m)| (n.to_string(), b(m))).collect()
}

pub(super) fn join_req(member_id: &str, client: &str, protocols: &[(&str, &str)]) -> JoinRequest {
    JoinRequest {
        group_id: G.to_string(),
        member_id: member_id.to_string(),
        group_instance_id: None,
        protocol_type: "consumer".to_string(),
        protocols: protos(protocols),
        session_timeout_ms: SESSION,
        rebalance_timeout_ms: REBALANCE,
        client_id: client.to_string(),
        client_host: format!("/10.0.0.{}", client.len()),
        require_known_member_id: true,
        supports_skip_assignment: false,
    }
}

pub(super) fn static_req(
    member_id: &str,
    instance: &str,
    protocols: &[(&str, &str)],
) -> JoinRequest {
    JoinRequest {
        group_instance_id: Some(instance.to_string()),
        ..join_req(member_id, instance, protocols)
    }
}

pub(super) fn sync_req(
    member_id: &str,
    generation_id: i32,
    assignments: &[(&str, &str)],
) -> SyncRequest {
    SyncRequest {
        group_id: G.to_string(),
        member_id: member_id.to_string(),
        generation_id,
        group_instance_id: None,
        protocol_type: Some("consumer".to_string()),
        protocol_name: None,
        assignments: assignments
            .iter()
            .map(|(m, a)| (m.to_string(), b(a)))
            .collect(),
    }
}

pub(super) fn hb(member_id: &str, generation_id: i32) -> HeartbeatRequest {
    HeartbeatRequest {
        group_id: G.to_string(),
        member_id: member_id.to_string(),
        generation_id,
        group_instance_id: None,
    }
}

pub(super) fn join_of(c: &Completion) -> &JoinResponse {
    match &c.response {
        Completed::Join(r) => r,
        Completed::Sync(r) => panic!("expected a join response, got {r:?}"),
    }
}

pub(super) fn sync_of(c: &Completion) -> &SyncResponse {
    match &c.response {
        Completed::Sync(r) => r,
        Completed::Join(r) => panic!("expected a sync response, got {r:?}"),
    }
}

/// The one completion, which must be for `token`.
pub(super) fn single(out: Vec<Completion>, token: u64) -> Completed {
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].token, token);
    out.into_iter().next().unwrap().response
}

pub(super) fn single_join(out: Vec<Completion>, token: u64) -> JoinResponse {
    match single(out, token) {
        Completed::Join(r) => r,
        other => panic!("{other:?}"),
    }
}

pub(super) fn single_sync(out: Vec<Completion>, token: u64) -> SyncResponse {
    match single(out, token) {
        Completed::Sync(r) => r,
        other => panic!("{other:?}"),
    }
}

/// The MEMBER_ID_REQUIRED round trip: returns the member id handed out.
pub(super) fn get_member_id(
    c: &mut GroupCoordinator,
    token: u64,
    client: &str,
    now: i64,
) -> String {
    let r = single_join(
        c.join(token, join_req("", client, &[("range", "m")]), now),
        token,
    );
    assert_eq!(r.error_code, MEMBER_ID_REQUIRED);
    assert_eq!(r.generation_id, -1);
    assert!(
        r.member_id.starts_with(&format!("{client}-")),
        "{}",
        r.member_id
    );
    r.member_id
}

/// Two members A (leader) and B, Stable at generation 1 with assignments "A1" and "B1".
/// Returns (a, b, now).
pub(super) fn stable_pair(c: &mut GroupCoordinator) -> (String, String, i64) {
    let a = get_member_id(c, 1, "ca", 0);
    assert!(c
        .join(2, join_req(&a, "ca", &[("range", "ma")]), 0)
        .is_empty());
    let bm = get_member_id(c, 3, "cb", 10);
    assert!(c
        .join(4, join_req(&bm, "cb", &[("range", "mb")]), 10)
        .is_empty());
    assert!(c.tick(DELAY).is_empty());
    let out = c.tick(2 * DELAY);
    assert_eq!(out.len(), 2);
    assert!(c.sync(5, sync_req(&bm, 1, &[]), 2 * DELAY).is_empty());
    let out = c.sync(6, sync_req(&a, 1, &[(&a, "A1"), (&bm, "B1")]), 2 * DELAY);
    assert_eq!(out.len(), 2);
    assert_eq!(c.describe(G).state, GroupState::Stable);
    (a, bm, 2 * DELAY)
}

#[test]
fn two_members_join_delay_completes_and_leader_assigns() {
    let mut c = coord();
    let a = get_member_id(&mut c, 1, "ca", 0);
    let bm = get_member_id(&mut c, 3, "cb", 10);
    assert_ne!(a, bm);
    // Pending members are not members yet.
    assert_eq!(c.describe(G).state, GroupState::Empty);
    assert!(c.describe(G).members.is_empty());

    assert!(c
        .join(
            2,
            join_req(&a, "ca", &[("range", "ma"), ("roundrobin", "ra")]),
            20
        )
        .is_empty());
    assert_eq!(c.describe(G).state, GroupState::PreparingRebalance);
    assert!(c
        .join(4, join_req(&bm, "cb", &[("range", "mb")]), 30)
        .is_empty());
    // Both joined, but the initial delay holds the phase; B arrived during it, so it is
    // extended once (Kafka's InitialDelayedJoin).
    assert!(c.tick(20 + DELAY - 1).is_empty());
    assert!(c.tick(20 + DELAY).is_empty());
    assert!(c.tick(20 + 2 * DELAY - 1).is_empty());
    let out = c.tick(20 + 2 * DELAY);
    assert_eq!(out.iter().map(|o| o.token).collect::<Vec<_>>(), vec![2, 4]);
    let ra = join_of(&out[0]);
    let rb = join_of(&out[1]);
    for (r, id) in [(ra, &a), (rb, &bm)] {
        assert_eq!(r.error_code, 0);
        assert_eq!(r.generation_id, 1);
        assert_eq!(r.protocol_type.as_deref(), Some("consumer"));
        assert_eq!(r.protocol_name.as_deref(), Some("range"));
        assert_eq!(&r.leader, &a);
        assert_eq!(&r.member_id, id);
        assert!(!r.skip_assignment);
    }
    assert_eq!(
        ra.members,
        vec![
            JoinedMember {
                member_id: a.clone(),
                group_instance_id: None,
                metadata: b("ma")
            },
            JoinedMember {
                member_id: bm.clone(),
                group_instance_id: None,
                metadata: b("mb")
            },
        ]
    );
    assert!(rb.members.is_empty());
    assert_eq!(c.describe(G).state, GroupState::CompletingRebalance);

    // The follower's sync waits for the leader's.
    let t = 20 + 2 * DELAY + 100;
    assert!(c.sync(5, sync_req(&bm, 1, &[]), t).is_empty());
    assert_eq!(c.heartbeat(hb(&bm, 1), t), 0);
    assert_eq!(c.heartbeat(hb(&a, 1), t), 0);
    let out = c.sync(6, sync_req(&a, 1, &[(&a, "A1"), (&bm, "B1")]), t);
    assert_eq!(out.iter().map(|o| o.token).collect::<Vec<_>>(), vec![6, 5]);
    assert_eq!(sync_of(&out[0]).assignment, b("A1"));
    assert_eq!(sync_of(&out[1]).assignment, b("B1"));
    assert_eq!(sync_of(&out[1]).error_code, 0);
    assert_eq!(sync_of(&out[1]).protocol_name.as_deref(), Some("range"));
    assert_eq!(c.describe(G).state, GroupState::Stable);

    // In Stable a sync answers at once.
    let r = single_sync(c.sync(7, sync_req(&bm, 1, &[]), t + 1), 7);
    assert_eq!((r.error_code, r.assignment), (0, b("B1")));
    assert_eq!(c.heartbeat(hb(&a, 1), t + 2), 0);
}

#[test]
fn initial_delay_extends_while_members_arrive_up_to_the_rebalance_timeout() {
    let mut c = coord();
    let mut token = 0;
    let mut join_new = |c: &mut GroupCoordinator, now: i64| {
        token += 1;
        let mut req = join_req("", &format!("c{token}"), &[("range", "m")]);
        req.require_known_member_id = false;
        c.join(token, req, now)
    };
    assert!(join_new(&mut c, 0).is_empty());
    // A new member before every expiry of the delay keeps extending it, but never past the
    // rebalance timeout of the first member.
    let mut t = DELAY;
    while t < i64::from(REBALANCE) {
        assert!(join_new(&mut c, t - 1).is_empty());
        assert!(c.tick(t).is_empty(), "completed early at {t}");
        t += DELAY;
    }
    let out = c.tick(i64::from(REBALANCE));
    assert_eq!(out.len(), 10);
    assert!(out.iter().all(|o| join_of(o).generation_id == 1));
    // Without new arrivals, a single delay is enough.
    let mut c = coord();
    assert!(join_new(&mut c, 0).is_empty());
    assert!(c.tick(DELAY - 1).is_empty());
    assert_eq!(c.tick(DELAY).len(), 1);
}

#[test]
fn third_member_rebalances_to_generation_two() {
    let mut c = coord();
    let (a, bm, now) = stable_pair(&mut c);
    let cm = get_member_id(&mut c, 10, "cc", now + 100);
    assert!(c
        .join(11, join_req(&cm, "cc", &[("range", "mc")]), now + 100)
        .is_empty());
    assert_eq!(c.describe(G).state, GroupState::PreparingRebalance);
    // Heartbeats tell the others to rejoin; a stale generation is refused.
    assert_eq!(c.heartbeat(hb(&a, 1), now + 200), REBALANCE_IN_PROGRESS);
    assert_eq!(c.heartbeat(hb(&bm, 1), now + 200), REBALANCE_IN_PROGRESS);
    assert_eq!(c.heartbeat(hb(&bm, 0), now + 200), ILLEGAL_GENERATION);
    assert_eq!(
        c.sync(12, sync_req(&bm, 1, &[]), now + 200)[0].response,
        Completed::Sync(SyncResponse::error(REBALANCE_IN_PROGRESS))
    );
    assert!(c
        .join(13, join_req(&bm, "cb", &[("range", "mb")]), now + 300)
        .is_empty());
    // The last one to rejoin completes the phase at once (no delay: the group was not Empty).
    let out = c.join(14, join_req(&a, "ca", &[("range", "ma")]), now + 400);
    assert_eq!(
        out.iter().map(|o| o.token).collect::<Vec<_>>(),
        vec![14, 13, 11]
    );
    for o in &out {
        assert_eq!(join_of(o).generation_id, 2);
        assert_eq!(join_of(o).leader, a);
    }
    assert_eq!(
        join_of(&out[0])
            .members
            .iter()
            .map(|m| m.member_id.clone())
            .collect::<Vec<_>>(),
        vec![a.clone(), bm.clone(), cm.clone()]
    );
    assert!(join_of(&out[1]).members.is_empty());
    assert_eq!(c.heartbeat(hb(&cm, 2), now + 500), 0);
    assert_eq!(c.heartbeat(hb(&a, 1), now + 500), ILLEGAL_GENERATION);
}

#[test]
fn silent_member_expires_after_session_timeout() {
    let mut c = coord();
    let (a, bm, now) = stable_pair(&mut c);
    // A keeps heartbeating, B goes silent.
    let mut t = now;
    while t < now + i64::from(SESSION) - 1000 {
        t += 3000;
        assert_eq!(c.heartbeat(hb(&a, 1), t), 0);
        assert!(c.tick(t).is_empty());
    }
    assert_eq!(c.describe(G).members.len(), 2);
    assert!(c.tick(now + i64::from(SESSION)).is_empty());
    let d = c.describe(G);
    assert_eq!(
        d.members
            .iter()
            .map(|m| m.member_id.clone())
            .collect::<Vec<_>>(),
        vec![a.clone()]
    );
    assert_eq!(d.state, GroupState::PreparingRebalance);
    assert_eq!(
        c.heartbeat(hb(&bm, 1), now + i64::from(SESSION)),
        UNKNOWN_MEMBER_ID
    );
    let r = single_join(
        c.join(
            20,
            join_req(&a, "ca", &[("range", "ma")]),
            now + i64::from(SESSION) + 1,
        ),
        20,
    );
    assert_eq!((r.generation_id, r.members.len(), r.leader), (2, 1, a));
}

#[test]
fn leader_expiry_passes_leadership() {
    let mut c = coord();
    let (a, bm, now) = stable_pair(&mut c);
    let t = now + i64::from(SESSION) - 1;
    assert_eq!(c.heartbeat(hb(&bm, 1), t), 0);
    assert!(c.tick(now + i64::from(SESSION)).is_empty());
    let r = single_join(
        c.join(20, join_req(&bm, "cb", &[("range", "mb")]), t + 2),
        20,
    );
    assert_eq!(
        (r.generation_id, r.leader.as_str(), r.members.len()),
        (2, bm.as_str(), 1)
    );
    assert_eq!(c.heartbeat(hb(&a, 1), t + 3), UNKNOWN_MEMBER_ID);
}

#[test]
fn leave_group_rebalances_and_answers_per_member() {
    let mut c = coord();
    let (a, bm, now) = stable_pair(&mut c);
    let (top, per, out) = c.leave(
        G,
        vec![
            LeavingMember {
                member_id: bm.clone(),
                group_instance_id: None,
            },
            LeavingMember {
                member_id: "nobody".into(),
                group_instance_id: None,
            },
        ],
        now + 1,
    );
    assert_eq!((top, per), (0, vec![0, UNKNOWN_MEMBER_ID]));
    assert!(out.is_empty());
    assert_eq!(c.describe(G).state, GroupState::PreparingRebalance);
    let r = single_join(
        c.join(20, join_req(&a, "ca", &[("range", "ma")]), now + 2),
        20,
    );
    assert_eq!((r.generation_id, r.members.len()), (2, 1));
    // The last member leaving empties the group.
    let (top, per, _) = c.leave(
        G,
        vec![LeavingMember {
            member_id: a.clone(),
            group_instance_id: None,
        }],
        now + 3,
    );
    assert_eq!((top, per), (0, vec![0]));
    assert_eq!(c.describe(G).state, GroupState::Empty);
    assert!(c.group_is_empty_or_unknown(G));
    // Unknown group: every member unknown.
    let (top, per, _) = c.leave(
        "other",
        vec![LeavingMember {
            member_id: a,
            group_instance_id: None,
        }],
        now + 4,
    );
    assert_eq!((top, per), (0, vec![UNKNOWN_MEMBER_ID]));
}

#[test]
fn leave_completes_a_rebalance_waiting_on_the_leaver() {
    let mut c = coord();
    let (a, bm, now) = stable_pair(&mut c);
    // A rejoins (the leader forces a rebalance); B leaves instead of rejoining.
    assert!(c
        .join(20, join_req(&a, "ca", &[("range", "ma")]), now + 1)
        .is_empty());
    let (_, per, out) = c.leave(
        G,
        vec![LeavingMember {
            member_id: bm,
            group_instance_id: None,
        }],
        now + 2,
    );
    assert_eq!(per, vec![0]);
    let r = single_join(out, 20);
    assert_eq!((r.error_code, r.generation_id, r.members.len()), (0, 2, 1));
}

#[test]
fn rebalance_timeout_removes_member_that_never_rejoins() {
    let mut c = coord();
    let (a, bm, now) = stable_pair(&mut c);
    // A (leader) rejoins; B keeps heartbeating but never rejoins.
    assert!(c
        .join(20, join_req(&a, "ca", &[("range", "ma")]), now + 1)
        .is_empty());
    let deadline = now + 1 + i64::from(REBALANCE);
    let mut t = now + 1;
    while t + 3000 < deadline {
        t += 3000;
        assert_eq!(c.heartbeat(hb(&bm, 1), t), REBALANCE_IN_PROGRESS);
        assert!(c.tick(t).is_empty());
    }
    assert!(c.tick(deadline - 1).is_empty());
    let r = single_join(c.tick(deadline), 20);
    assert_eq!(
        (r.generation_id, r.members.len(), r.leader.as_str()),
        (2, 1, a.as_str())
    );
    assert_eq!(c.describe(G).members.len(), 1);
    assert_eq!(c.heartbeat(hb(&bm, 1), deadline + 1), UNKNOWN_MEMBER_ID);
}

#[test]
fn waiting_members_do_not_expire() {
    let mut c = coord();
    let (a, bm, now) = stable_pair(&mut c);
    // A forces a rebalance and waits on its held join well past its session timeout while B
    // heartbeats (so it is not the one expiring) and then rejoins.
    assert!(c
        .join(20, join_req(&a, "ca", &[("range", "ma")]), now + 1)
        .is_empty());
    let t = now + i64::from(SESSION) + 5000;
    assert_eq!(c.heartbeat(hb(&bm, 1), now + 8000), REBALANCE_IN_PROGRESS);
    assert!(c.tick(t).is_empty());
    let out = c.join(21, join_req(&bm, "cb", &[("range", "mb")]), t);
    assert_eq!(
        out.iter().map(|o| o.token).collect::<Vec<_>>(),
        vec![20, 21]
    );
    // The follower's held sync keeps it alive too.
    assert!(c.sync(22, sync_req(&bm, 2, &[]), t + 1).is_empty());
    assert_eq!(c.heartbeat(hb(&a, 2), t + 8000), 0);
    assert_eq!(c.heartbeat(hb(&a, 2), t + 16_000), 0);
    assert!(c.tick(t + 2 * i64::from(SESSION) - 1).is_empty());
    assert_eq!(c.describe(G).members.len(), 2);
}

#[test]
fn members_that_never_sync_are_removed_after_the_rebalance_timeout() {
    let mut c = coord();
    let (a, bm, now) = stable_pair(&mut c);
    let _ = c.join(20, join_req(&a, "ca", &[("range", "ma")]), now + 1);
    let out = c.join(21, join_req(&bm, "cb", &[("range", "mb")]), now + 2);
    assert_eq!(out.len(), 2);
    // B syncs and waits; the leader never sends its assignment but heartbeats.
    assert!(c.sync(22, sync_req(&bm, 2, &[]), now + 3).is_empty());
    assert_eq!(c.heartbeat(hb(&a, 2), now + 3000), 0);
    let out = c.tick(now + 2 + i64::from(REBALANCE));
    // B's held sync is told to rejoin; A is gone.
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].token, 22);
    assert_eq!(sync_of(&out[0]).error_code, REBALANCE_IN_PROGRESS);
    let d = c.describe(G);
    assert_eq!(d.state, GroupState::PreparingRebalance);
    assert_eq!(
        d.members
            .iter()
            .map(|m| m.member_id.clone())
            .collect::<Vec<_>>(),
        vec![bm]
    );
}

#[test]
fn new_member_during_completing_rebalance_fails_held_syncs() {
    let mut c = coord();
    let a = get_member_id(&mut c, 1, "ca", 0);
    let _ = c.join(2, join_req(&a, "ca", &[("range", "ma")]), 0);
    let bm = get_member_id(&mut c, 3, "cb", 0);
    let _ = c.join(4, join_req(&bm, "cb", &[("range", "mb")]), 0);
    assert!(c.tick(DELAY).is_empty());
    assert_eq!(c.tick(2 * DELAY).len(), 2);
    assert!(c.sync(5, sync_req(&bm, 1, &[]), 2 * DELAY).is_empty());
    let cm = get_member_id(&mut c, 6, "cc", 2 * DELAY);
    let out = c.join(7, join_req(&cm, "cc", &[("range", "mc")]), 2 * DELAY);
    let r = single_sync(out, 5);
    assert_eq!(r.error_code, REBALANCE_IN_PROGRESS);
    assert_eq!(c.describe(G).state, GroupState::PreparingRebalance);
    // The leader's late sync for the old generation is refused.
    let r = single_sync(c.sync(8, sync_req(&a, 1, &[(&a, "A1")]), 2 * DELAY + 1), 8);
    assert_eq!(r.error_code, REBALANCE_IN_PROGRESS);
}

#[test]
fn follower_rejoin_when_stable_answers_at_once_leader_rejoin_rebalances() {
    let mut c = coord();
    let (a, bm, now) = stable_pair(&mut c);
    let r = single_join(
        c.join(20, join_req(&bm, "cb", &[("range", "mb")]), now + 1),
        20,
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
    assert_eq!(c.describe(G).state, GroupState::Stable);
    // Changed metadata from a follower rebalances.
    assert!(c
        .join(21, join_req(&bm, "cb", &[("range", "mb2")]), now + 2)
        .is_empty());
    assert_eq!(c.describe(G).state, GroupState::PreparingRebalance);
    let out = c.join(22, join_req(&a, "ca", &[("range", "ma")]), now + 3);
    assert_eq!(out.len(), 2);
    let leader = out.iter().map(join_of).find(|r| r.member_id == a).unwrap();
    assert_eq!(leader.members[1].metadata, b("mb2"));
    // A leader's rejoin in CompletingRebalance with the same metadata gets the members again.
    let r = single_join(
        c.join(23, join_req(&a, "ca", &[("range", "ma")]), now + 4),
        23,
    );
    assert_eq!((r.generation_id, r.members.len()), (2, 2));
    assert_eq!(c.describe(G).state, GroupState::CompletingRebalance);
}

#[test]
fn protocol_selection_by_votes() {
    let mut c = coord();
    let mut ids = Vec::new();
    let prefs: [&[(&str, &str)]; 3] = [
        &[("range", "1"), ("roundrobin", "1"), ("sticky", "1")],
        &[("roundrobin", "2"), ("range", "2")],
        &[("sticky", "3"), ("roundrobin", "3"), ("range", "3")],
    ];
    for (i, p) in prefs.iter().enumerate() {
        let mut req = join_req("", &format!("c{i}"), p);
        req.require_known_member_id = false;
        assert!(c.join(i as u64, req, 0).is_empty());
    }
    assert!(c.tick(DELAY).is_empty());
    let out = c.tick(2 * DELAY);
    assert_eq!(out.len(), 3);
    for o in &out {
        // sticky is not supported by all; range 1 vote, roundrobin 2 votes.
        assert_eq!(join_of(o).protocol_name.as_deref(), Some("roundrobin"));
        ids.push(join_of(o).member_id.clone());
    }
    let leader = join_of(&out[0]);
    assert_eq!(
        leader
            .members
            .iter()
            .map(|m| m.metadata.clone())
            .collect::<Vec<_>>(),
        vec![b("1"), b("2"), b("3")]
    );
    // A tie goes to the protocol of the earliest member.
    let mut c = coord();
    let mut r1 = join_req("", "x", &[("b", ""), ("a", "")]);
    r1.require_known_member_id = false;
    let mut r2 = join_req("", "y", &[("a", ""), ("b", "")]);
    r2.require_known_member_id = false;
    let _ = c.join(1, r1, 0);
    let _ = c.join(2, r2, 0);
    let _ = c.tick(DELAY);
    let out = c.tick(2 * DELAY);
    assert_eq!(join_of(&out[0]).protocol_name.as_deref(), Some("b"));
}

#[test]
fn inconsistent_protocols_refused() {
    let mut c = coord();
    let mut empty_type = join_req("", "c", &[("range", "")]);
    empty_type.protocol_type = String::new();
    assert_eq!(
        single_join(c.join(1, empty_type, 0), 1).error_code,
        INCONSISTENT_GROUP_PROTOCOL
    );
    assert_eq!(
        single_join(c.join(2, join_req("", "c", &[]), 0), 2).error_code,
        INCONSISTENT_GROUP_PROTOCOL
    );
    // Refused joins do not create the group.
    assert!(c.list().is_empty());

    let (_, _, now) = stable_pair(&mut c);
    let mut other_type = join_req("", "c", &[("range", "")]);
    other_type.protocol_type = "connect".into();
    let r = single_join(c.join(10, other_type, now), 10);
    assert_eq!(
        (r.error_code, r.generation_id, r.protocol_type),
        (INCONSISTENT_GROUP_PROTOCOL, -1, None)
    );
    let r = single_join(
        c.join(11, join_req("", "c", &[("roundrobin", "")]), now),
        11,
    );
    assert_eq!(r.error_code, INCONSISTENT_GROUP_PROTOCOL);
    // One common protocol is enough.
    let r = single_join(
        c.join(
            12,
            join_req("", "c", &[("roundrobin", ""), ("range", "")]),
            now,
        ),
        12,
    );
    assert_eq!(r.error_code, MEMBER_ID_REQUIRED);
    // SyncGroup v5 protocol checks.
    let mut s = sync_req("x", 1, &[]);
    let d = c.describe(G);
    s.member_id = d.members[1].member_id.clone();
    s.protocol_name = Some("roundrobin".into());
    assert_eq!(
        single_sync(c.sync(13, s, now), 13).error_code,
        INCONSISTENT_GROUP_PROTOCOL
    );
}

#[test]
fn join_validation_errors() {
    let mut c = coord();
    let mut short = join_req("", "c", &[("range", "")]);
    short.session_timeout_ms = 5999;
    assert_eq!(
        single_join(c.join(1, short, 0), 1).error_code,
        INVALID_SESSION_TIMEOUT
    );
    let mut long = join_req("", "c", &[("range", "")]);
    long.session_timeout_ms = 1_800_001;
    assert_eq!(
        single_join(c.join(2, long, 0), 2).error_code,
        INVALID_SESSION_TIMEOUT
    );
    let mut no_group = join_req("", "c", &[("range", "")]);
    no_group.group_id = String::new();
    assert_eq!(
        single_join(c.join(3, no_group, 0), 3).error_code,
        INVALID_GROUP_ID
    );
    // A member id for a group that does not exist, or an unknown member id.
    let r = single_join(c.join(4, join_req("ghost", "c", &[("range", "")]), 0), 4);
    assert_eq!(
        (r.error_code, r.member_id.as_str()),
        (UNKNOWN_MEMBER_ID, "ghost")
    );
    let _ = get_member_id(&mut c, 5, "c", 0);
    let r = single_join(c.join(6, join_req("ghost", "c", &[("range", "")]), 0), 6);
    assert_eq!(r.error_code, UNKNOWN_MEMBER_ID);
    assert_eq!(
        single_sync(c.sync(7, sync_req("ghost", 0, &[]), 0), 7).error_code,
        UNKNOWN_MEMBER_ID
    );
    let mut s = sync_req("ghost", 0, &[]);
    s.group_id = "nope".into();
    assert_eq!(
        single_sync(c.sync(8, s, 0), 8).error_code,
        UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        c.heartbeat(
            HeartbeatRequest {
                group_id: "nope".into(),
                ..hb("x", 0)
            },
            0
        ),
        UNKNOWN_MEMBER_ID
    );
}

#[test]
fn pre_v4_join_creates_member_directly() {
    let mut c = coord();
    let mut req = join_req("", "old", &[("range", "m")]);
    req.require_known_member_id = false;
    assert!(c.join(1, req, 0).is_empty());
    assert_eq!(c.describe(G).members.len(), 1);
    let r = single_join(c.tick(DELAY), 1);
    assert_eq!(r.error_code, 0);
    assert!(r.member_id.starts_with("old-"));
    assert_eq!(r.leader, r.member_id);
    assert_eq!(r.members.len(), 1);
}

#[test]
fn pending_member_expires_and_unblocks_the_rebalance() {
    let mut c = coord();
    let (a, bm, now) = stable_pair(&mut c);
    // A new client gets an id but never comes back; the others rejoin.
    let p = get_member_id(&mut c, 10, "cp", now);
    assert!(c
        .join(11, join_req(&a, "ca", &[("range", "ma")]), now + 1)
        .is_empty());
    // Everyone known rejoined, but a pending member holds the phase (as Kafka).
    assert!(c
        .join(12, join_req(&bm, "cb", &[("range", "mb")]), now + 2)
        .is_empty());
    let out = c.tick(now + i64::from(SESSION));
    assert_eq!(
        out.iter().map(|o| o.token).collect::<Vec<_>>(),
        vec![11, 12]
    );
    assert_eq!(join_of(&out[0]).generation_id, 2);
    let r = single_join(
        c.join(
            13,
            join_req(&p, "cp", &[("range", "mp")]),
            now + i64::from(SESSION) + 1,
        ),
        13,
    );
    assert_eq!(r.error_code, UNKNOWN_MEMBER_ID);
}
