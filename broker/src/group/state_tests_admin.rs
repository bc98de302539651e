//! Unit tests of what is asked of a group from outside a rebalance: offset-commit checks,
//! session refresh on commit, DescribeGroups, ListGroups, DeleteGroups and member ids.

use super::tests::*;
use super::*;

#[test]
fn validate_commit_cases() {
    let mut c = coord();
    // Simple commits to unknown or Empty groups.
    assert_eq!(c.validate_commit("nogroup", "", -1, None), Ok(()));
    assert_eq!(
        c.validate_commit("nogroup", "m", 3, None),
        Err(ILLEGAL_GENERATION)
    );
    let (a, bm, now) = stable_pair(&mut c);
    assert_eq!(c.validate_commit(G, "", -1, None), Err(UNKNOWN_MEMBER_ID));
    assert_eq!(c.validate_commit(G, &a, 1, None), Ok(()));
    assert_eq!(c.validate_commit(G, &bm, 1, None), Ok(()));
    assert_eq!(c.validate_commit(G, &a, 0, None), Err(ILLEGAL_GENERATION));
    assert_eq!(
        c.validate_commit(G, "ghost", 1, None),
        Err(UNKNOWN_MEMBER_ID)
    );
    assert_eq!(
        c.validate_commit(G, &a, 1, Some("no-such-instance")),
        Err(UNKNOWN_MEMBER_ID)
    );
    // PreparingRebalance: still allowed with the current generation (commit on revocation).
    assert!(c
        .join(10, join_req(&a, "ca", &[("range", "ma")]), now + 1)
        .is_empty());
    assert_eq!(c.validate_commit(G, &bm, 1, None), Ok(()));
    // CompletingRebalance: the new generation is known, the assignment is not.
    assert_eq!(
        c.join(11, join_req(&bm, "cb", &[("range", "mb")]), now + 2)
            .len(),
        2
    );
    assert_eq!(
        c.validate_commit(G, &bm, 2, None),
        Err(REBALANCE_IN_PROGRESS)
    );
    assert_eq!(c.validate_commit(G, &bm, 1, None), Err(ILLEGAL_GENERATION));
    // Once empty, simple commits are fine again.
    let leaving = vec![
        LeavingMember {
            member_id: a.clone(),
            group_instance_id: None,
        },
        LeavingMember {
            member_id: bm.clone(),
            group_instance_id: None,
        },
    ];
    let _ = c.leave(G, leaving, now + 3);
    assert_eq!(c.describe(G).state, GroupState::Empty);
    assert_eq!(c.validate_commit(G, "", -1, None), Ok(()));
    assert_eq!(c.validate_commit(G, &a, 2, None), Err(UNKNOWN_MEMBER_ID));
}

#[test]
fn touch_refreshes_the_session() {
    let mut c = coord();
    let (a, _bm, now) = stable_pair(&mut c);
    c.touch(G, &a, now + i64::from(SESSION) - 1);
    let _ = c.tick(now + i64::from(SESSION));
    let d = c.describe(G);
    assert_eq!(
        d.members
            .iter()
            .map(|m| m.member_id.clone())
            .collect::<Vec<_>>(),
        vec![a]
    );
    assert_eq!(c.validate_fetch(G, None, None), Ok(()));
}

#[test]
fn delete_non_empty_empty_and_unknown() {
    let mut c = coord();
    assert_eq!(c.delete("nogroup"), GROUP_ID_NOT_FOUND);
    let (a, bm, now) = stable_pair(&mut c);
    assert_eq!(c.delete(G), NON_EMPTY_GROUP);
    assert!(!c.group_is_empty_or_unknown(G));
    let leaving = vec![
        LeavingMember {
            member_id: a,
            group_instance_id: None,
        },
        LeavingMember {
            member_id: bm,
            group_instance_id: None,
        },
    ];
    let _ = c.leave(G, leaving, now + 1);
    assert!(c.group_is_empty_or_unknown(G));
    assert_eq!(c.delete(G), 0);
    assert_eq!(c.describe(G).state, GroupState::Dead);
    assert!(c.list().is_empty());
    assert_eq!(c.delete(G), GROUP_ID_NOT_FOUND);
    assert!(c.group_is_empty_or_unknown(G));
}

#[test]
fn describe_and_list_content() {
    let mut c = coord();
    assert_eq!(
        c.describe("nope"),
        GroupDescription {
            group_id: "nope".into(),
            state: GroupState::Dead,
            protocol_type: String::new(),
            protocol: String::new(),
            members: vec![]
        }
    );
    let (a, bm, now) = stable_pair(&mut c);
    let d = c.describe(G);
    assert_eq!(d.state.name(), "Stable");
    assert_eq!(
        (d.protocol_type.as_str(), d.protocol.as_str()),
        ("consumer", "range")
    );
    assert_eq!(
        d.members,
        vec![
            MemberDescription {
                member_id: a.clone(),
                group_instance_id: None,
                client_id: "ca".into(),
                client_host: "/10.0.0.2".into(),
                metadata: b("ma"),
                assignment: b("A1")
            },
            MemberDescription {
                member_id: bm.clone(),
                group_instance_id: None,
                client_id: "cb".into(),
                client_host: "/10.0.0.2".into(),
                metadata: b("mb"),
                assignment: b("B1")
            },
        ]
    );
    // Not Stable: no protocol, metadata or assignment (as Kafka).
    let _ = c.join(10, join_req(&a, "ca", &[("range", "ma")]), now + 1);
    let d = c.describe(G);
    assert_eq!(
        (d.state.name(), d.protocol.as_str()),
        ("PreparingRebalance", "")
    );
    assert!(d
        .members
        .iter()
        .all(|m| m.metadata.is_empty() && m.assignment.is_empty()));
    assert_eq!(d.members.len(), 2);

    let mut other = join_req("", "z", &[("x", "")]);
    other.group_id = "a-first".into();
    other.protocol_type = "connect".into();
    let _ = c.join(20, other, now + 2);
    assert_eq!(
        c.list(),
        vec![
            GroupOverview {
                group_id: "a-first".into(),
                protocol_type: String::new(),
                state: GroupState::Empty
            },
            GroupOverview {
                group_id: G.into(),
                protocol_type: "consumer".into(),
                state: GroupState::PreparingRebalance
            },
        ]
    );
    assert_eq!(
        [
            GroupState::Empty,
            GroupState::PreparingRebalance,
            GroupState::CompletingRebalance,
            GroupState::Stable,
            GroupState::Dead
        ]
        .map(GroupState::name),
        [
            "Empty",
            "PreparingRebalance",
            "CompletingRebalance",
            "Stable",
            "Dead"
        ]
    );
}

#[test]
fn member_ids_are_unique() {
    let mut c = coord();
    let ids: Vec<String> = (0..50)
        .map(|i| get_member_id(&mut c, i, "same", 1000))
        .collect();
    let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), 50);
    // Same length as a UUID suffix.
    assert_eq!(ids[0].len(), "same-".len() + 36);
}

#[test]
fn groups_that_never_had_a_member_are_forgotten() {
    let mut c = coord();
    let _ = get_member_id(&mut c, 1, "ca", 0);
    assert_eq!(c.list().len(), 1);
    assert!(c.tick(i64::from(SESSION) - 1).is_empty());
    assert_eq!(c.list().len(), 1);
    assert!(c.tick(i64::from(SESSION)).is_empty());
    assert!(c.list().is_empty());
    assert_eq!(c.describe(G).state, GroupState::Dead);
    // A group that had members stays while Empty (its offsets are the caller's).
    let (a, bm, now) = stable_pair(&mut c);
    let leaving = vec![
        LeavingMember {
            member_id: a,
            group_instance_id: None,
        },
        LeavingMember {
            member_id: bm,
            group_instance_id: None,
        },
    ];
    let _ = c.leave(G, leaving, now + 1);
    let _ = c.tick(now + 10 * i64::from(SESSION));
    assert_eq!(
        c.list(),
        vec![GroupOverview {
            group_id: G.into(),
            protocol_type: "consumer".into(),
            state: GroupState::Empty
        }]
    );
}
