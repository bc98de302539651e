#![allow(unused_imports)]
use super::*;

const CLUSTER: &str = "kc";
const OLD_IMAGE: &str = "samsa:1.0";
const OLD_VERSION: &str = "1.0";
const NEW_IMAGE: &str = "samsa:1.1";
const NEW_VERSION: &str = "1.1";
/// 2026-12-07T10:00:00Z: when the upgrade of the tests started.
const T0_MS: i64 = 1_796_637_600_000;

fn rfc3339(ms: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_millisecond(ms)
        .unwrap()
        .to_string()
}

fn blue() -> BrokerSet {
    BrokerSet::first(CLUSTER)
}

fn green() -> BrokerSet {
    BrokerSet {
        name: "kc-g1".to_string(),
        id_offset: 1000,
    }
}

const BLUE_IDS: [i32; 3] = [0, 1, 2];
const GREEN_IDS: [i32; 3] = [1000, 1001, 1002];

fn forward() -> Forced {
    Forced {
        reason: RebalanceReason::BlueGreen,
        to: GREEN_IDS.to_vec(),
        from: BLUE_IDS.to_vec(),
    }
}

fn back() -> Forced {
    Forced {
        reason: RebalanceReason::Rollback,
        to: BLUE_IDS.to_vec(),
        from: GREEN_IDS.to_vec(),
    }
}

fn green_other() -> Option<(BrokerSet, String, String)> {
    Some((green(), NEW_IMAGE.to_string(), NEW_VERSION.to_string()))
}

fn old_image() -> Option<(String, String)> {
    Some((OLD_IMAGE.to_string(), OLD_VERSION.to_string()))
}

/// The status of an upgrade from `kc` (0, 1, 2) at 1.0 to `kc-g1` (1000, 1001, 1002) at 1.1,
/// started at T0.
fn upgrade(phase: UpgradePhase) -> UpgradeStatus {
    UpgradeStatus {
        phase,
        from: blue(),
        from_image: OLD_IMAGE.to_string(),
        from_version: OLD_VERSION.to_string(),
        from_ids: BLUE_IDS.to_vec(),
        to: green(),
        to_image: NEW_IMAGE.to_string(),
        to_version: NEW_VERSION.to_string(),
        to_ids: GREEN_IDS.to_vec(),
        started_at: Some(rfc3339(T0_MS)),
        message: "previous message".to_string(),
        ..UpgradeStatus::default()
    }
}

fn movement(reason: RebalanceReason, brokers: &[i32], phase: RebalancePhase) -> RebalanceStatus {
    RebalanceStatus {
        phase,
        reason: Some(reason),
        brokers: brokers.to_vec(),
        partitions_total: 12,
        partitions_done: 5,
        replica_moves: 36,
        bytes_total: 3000,
        bytes_moved: 1250,
        message: format!("movement is {phase:?}"),
        ..RebalanceStatus::default()
    }
}

/// What [`BlueGreenInput`] borrows, owned.
struct Case {
    spec: BlueGreenSpec,
    enabled: bool,
    previous: Option<UpgradeStatus>,
    active: BrokerSet,
    active_image: Option<(String, String)>,
    desired: (String, String),
    brokers: i32,
    controllers: i32,
    promote: bool,
    rollback: bool,
    target_ready: bool,
    registered: Result<Vec<i32>, String>,
    movement: Option<RebalanceStatus>,
    problems: Result<Vec<String>, String>,
    quorum: Result<(Vec<i32>, i32), String>,
    retired_gone: bool,
    now_ms: i64,
}

impl Case {
    /// Blue at 1.0, nothing running; the spec asks for 1.0.
    fn idle() -> Case {
        Case {
            spec: BlueGreenSpec::default(),
            enabled: true,
            previous: None,
            active: blue(),
            active_image: old_image(),
            desired: (OLD_IMAGE.to_string(), OLD_VERSION.to_string()),
            brokers: 3,
            controllers: 3,
            promote: false,
            rollback: false,
            target_ready: false,
            registered: Ok(BLUE_IDS.to_vec()),
            movement: None,
            problems: Ok(Vec::new()),
            quorum: Ok((BLUE_IDS.to_vec(), 1)),
            retired_gone: false,
            now_ms: T0_MS,
        }
    }

    /// An upgrade to 1.1 in `phase`, every green broker Ready and registered.
    fn running(phase: UpgradePhase) -> Case {
        Case {
            previous: Some(upgrade(phase)),
            desired: (NEW_IMAGE.to_string(), NEW_VERSION.to_string()),
            target_ready: true,
            registered: Ok([BLUE_IDS, GREEN_IDS].concat()),
            now_ms: T0_MS + 60_000,
            ..Case::idle()
        }
    }

    fn desire(mut self, image: &str, version: &str) -> Case {
        self.desired = (image.to_string(), version.to_string());
        self
    }

    fn decide(&self) -> BlueGreenDecision {
        let now = rfc3339(self.now_ms);
        decide(&BlueGreenInput {
            spec: &self.spec,
            enabled: self.enabled,
            cluster: CLUSTER,
            previous: self.previous.as_ref(),
            active: &self.active,
            active_image: self
                .active_image
                .as_ref()
                .map(|(i, v)| (i.as_str(), v.as_str())),
            desired: (self.desired.0.as_str(), self.desired.1.as_str()),
            brokers: self.brokers,
            controllers: self.controllers,
            promote: self.promote,
            rollback: self.rollback,
            target_ready: self.target_ready,
            registered: self.registered.as_deref().map_err(String::as_str),
            movement: self.movement.as_ref(),
            problems: self.problems.as_deref().map_err(String::as_str),
            quorum: self
                .quorum
                .as_ref()
                .map(|(v, l)| (v.as_slice(), *l))
                .map_err(String::as_str),
            retired_gone: self.retired_gone,
            now: &now,
            now_ms: self.now_ms,
        })
    }
}

fn status(d: &BlueGreenDecision) -> &UpgradeStatus {
    d.status.as_ref().expect("a new status")
}

/// The reasons of the events among the actions.
fn events(d: &BlueGreenDecision) -> Vec<(bool, &'static str)> {
    d.actions
        .iter()
        .filter_map(|a| match a {
            BlueGreenAction::Event(warning, reason, _) => Some((*warning, *reason)),
            _ => None,
        })
        .collect()
}

fn event_message(d: &BlueGreenDecision, reason: &str) -> String {
    d.actions
        .iter()
        .find_map(|a| match a {
            BlueGreenAction::Event(_, r, m) if *r == reason => Some(m.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {reason} event in {:?}", d.actions))
}

fn assert_untouched(d: &BlueGreenDecision) {
    assert_eq!(d.status, None);
    assert_eq!(d.active, blue());
    assert_eq!(d.other, None);
    assert_eq!(d.active_image, None);
    assert_eq!(d.forced, None);
    assert_eq!(d.voters, None);
    assert!(!d.in_progress);
    assert!(d.actions.is_empty(), "{:?}", d.actions);
}

// ---- start ----

#[test]
fn next_set_gives_the_following_name_and_offset() {
    assert_eq!(next_set(CLUSTER, &blue()), green());
    assert_eq!(
        next_set(CLUSTER, &green()),
        BrokerSet {
            name: "kc-g2".to_string(),
            id_offset: 2000
        }
    );
    assert_eq!(
        next_set(
            CLUSTER,
            &BrokerSet {
                name: "kc-g2".to_string(),
                id_offset: 2000
            }
        ),
        BrokerSet {
            name: "kc-g3".to_string(),
            id_offset: 3000
        }
    );
}

#[test]
fn no_upgrade_when_the_strategy_is_rolling() {
    let mut c = Case::idle().desire(NEW_IMAGE, NEW_VERSION);
    c.enabled = false;
    assert_untouched(&c.decide());
}

#[test]
fn no_upgrade_when_the_image_is_unchanged() {
    assert_untouched(&Case::idle().decide());
    // A version label that differs with the same image starts nothing either.
    assert_untouched(&Case::idle().desire(OLD_IMAGE, "1.0-relabelled").decide());
}

#[test]
fn no_upgrade_before_the_statefulset_exists() {
    let mut c = Case::idle().desire(NEW_IMAGE, NEW_VERSION);
    c.active_image = None;
    assert_untouched(&c.decide());
}

#[test]
fn no_upgrade_after_a_promotion_at_the_same_image() {
    let mut c = Case::idle().desire(NEW_IMAGE, NEW_VERSION);
    c.previous = Some(upgrade(UpgradePhase::Done));
    c.active = green();
    c.active_image = Some((NEW_IMAGE.to_string(), NEW_VERSION.to_string()));
    let d = c.decide();
    assert_eq!(d.status, None);
    assert_eq!(d.active, green());
    assert_eq!(d.active_image, None);
    assert_eq!(d.other, None);
    assert!(!d.in_progress);
    assert!(d.actions.is_empty());
}

#[test]
fn an_image_change_starts_provisioning_a_green_set() {
    let d = Case::idle().desire(NEW_IMAGE, NEW_VERSION).decide();
    let st = status(&d);
    assert_eq!(st.phase, UpgradePhase::Provisioning);
    assert_eq!(st.from, blue());
    assert_eq!(st.from_image, OLD_IMAGE);
    assert_eq!(st.from_version, OLD_VERSION);
    assert_eq!(st.from_ids, BLUE_IDS.to_vec());
    assert_eq!(st.to, green());
    assert_eq!(st.to.name, "kc-g1");
    assert_eq!(st.to_image, NEW_IMAGE);
    assert_eq!(st.to_version, NEW_VERSION);
    assert_eq!(st.to_ids, GREEN_IDS.to_vec());
    assert_eq!(st.started_at.as_deref(), Some("2026-12-07T10:00:00Z"));
    assert_eq!(st.moved_at, None);
    assert_eq!(st.verifying_since, None);
    assert_eq!(st.finished_at, None);
    assert_eq!(
        st.message,
        "starting StatefulSet kc-g1 (brokers 1000, 1001, 1002) at samsa:1.1"
    );
    assert_eq!(events(&d), vec![(false, "BlueGreenStarted")]);
    assert_eq!(d.actions.len(), 1);
    assert_eq!(
        event_message(&d, "BlueGreenStarted"),
        "blue-green upgrade from samsa:1.0 (StatefulSet kc, brokers 0, 1, 2) to samsa:1.1 (StatefulSet kc-g1, brokers 1000, 1001, 1002)"
    );
    assert_eq!(d.active, blue());
    assert_eq!(d.other, green_other());
    assert_eq!(d.active_image, old_image());
    assert_eq!(d.forced, None);
    assert_eq!(d.voters, None);
    assert!(d.in_progress);
    assert!(d.requeue.is_some());
}

#[test]
fn an_upgrade_from_a_promoted_set_goes_to_the_next_set() {
    let mut c = Case::idle().desire("samsa:1.2", "1.2");
    c.active = green();
    c.active_image = Some((NEW_IMAGE.to_string(), NEW_VERSION.to_string()));
    c.previous = Some(upgrade(UpgradePhase::Done));
    let d = c.decide();
    let st = status(&d);
    assert_eq!(st.phase, UpgradePhase::Provisioning);
    assert_eq!(st.from, green());
    assert_eq!(st.from_ids, GREEN_IDS.to_vec());
    assert_eq!(st.from_image, NEW_IMAGE);
    assert_eq!(
        st.to,
        BrokerSet {
            name: "kc-g2".to_string(),
            id_offset: 2000
        }
    );
    assert_eq!(st.to_ids, vec![2000, 2001, 2002]);
    assert_eq!(st.to_image, "samsa:1.2");
    assert_eq!(d.active, green());
    assert_eq!(
        d.active_image,
        Some((NEW_IMAGE.to_string(), NEW_VERSION.to_string()))
    );
    assert_eq!(
        d.other
            .as_ref()
            .map(|(s, i, v)| (s.name.as_str(), i.as_str(), v.as_str())),
        Some(("kc-g2", "samsa:1.2", "1.2"))
    );
}

// ---- Provisioning ----

fn assert_running_shape(d: &BlueGreenDecision) {
    assert_eq!(d.active, blue());
    assert_eq!(d.other, green_other());
    assert_eq!(d.active_image, old_image());
    assert_eq!(d.voters, None);
    assert!(d.in_progress);
    assert!(d.requeue.is_some());
}

#[test]
fn provisioning_waits_for_the_green_pods() {
    let mut c = Case::running(UpgradePhase::Provisioning);
    c.target_ready = false;
    let d = c.decide();
    let st = status(&d);
    assert_eq!(st.phase, UpgradePhase::Provisioning);
    assert_eq!(
        st.message,
        "waiting for the pods of StatefulSet kc-g1 to be Ready"
    );
    assert_eq!(d.forced, None);
    assert!(d.actions.is_empty());
    assert_running_shape(&d);
}

#[test]
fn provisioning_waits_for_every_green_broker_to_register() {
    let mut c = Case::running(UpgradePhase::Provisioning);
    c.registered = Ok(vec![0, 1, 2, 1000]);
    let d = c.decide();
    let st = status(&d);
    assert_eq!(st.phase, UpgradePhase::Provisioning);
    assert_eq!(st.message, "waiting for brokers 1001, 1002 to register");
    assert_eq!(d.forced, None);
    assert!(d.actions.is_empty());
    assert_running_shape(&d);

    // Unchanged next time: no status write.
    c.previous = Some(st.clone());
    let again = c.decide();
    assert_eq!(again.status, None);
    assert!(again.actions.is_empty());
}

#[test]
fn provisioning_waits_while_the_brokers_cannot_be_read() {
    let mut c = Case::running(UpgradePhase::Provisioning);
    c.registered = Err("connection refused".to_string());
    let d = c.decide();
    let st = status(&d);
    assert_eq!(st.phase, UpgradePhase::Provisioning);
    assert_eq!(st.message, "the brokers cannot be read: connection refused");
    assert_eq!(d.forced, None);
    assert!(d.actions.is_empty());
}

#[test]
fn provisioning_goes_to_moving_once_green_is_ready_and_registered() {
    let d = Case::running(UpgradePhase::Provisioning).decide();
    let st = status(&d);
    assert_eq!(st.phase, UpgradePhase::Moving);
    assert_eq!(
        st.message,
        "brokers 1000, 1001, 1002 are ready: moving every partition to them"
    );
    assert_eq!(d.forced, Some(forward()));
    assert_eq!(events(&d), vec![(false, "BlueGreenProvisioned")]);
    assert_eq!(d.actions.len(), 1);
    assert_running_shape(&d);
}

// ---- Moving ----

#[test]
fn moving_copies_the_progress_of_its_movement() {
    let mut c = Case::running(UpgradePhase::Moving);
    c.movement = Some(movement(
        RebalanceReason::BlueGreen,
        &GREEN_IDS,
        RebalancePhase::Moving,
    ));
    let d = c.decide();
    let st = status(&d);
    assert_eq!(st.phase, UpgradePhase::Moving);
    assert_eq!(st.partitions_total, 12);
    assert_eq!(st.partitions_done, 5);
    assert_eq!(st.bytes_total, 3000);
    assert_eq!(st.bytes_moved, 1250);
    assert_eq!(st.message, "movement is Moving");
    assert_eq!(st.moved_at, None);
    assert_eq!(st.verifying_since, None);
    assert_eq!(d.forced, Some(forward()));
    assert!(d.actions.is_empty());
    assert_running_shape(&d);
}

#[test]
fn moving_ignores_a_movement_of_another_reason_or_broker_set() {
    for m in [
        movement(
            RebalanceReason::ScaleUp,
            &GREEN_IDS,
            RebalancePhase::Complete,
        ),
        movement(
            RebalanceReason::Rollback,
            &GREEN_IDS,
            RebalancePhase::Complete,
        ),
        movement(
            RebalanceReason::BlueGreen,
            &BLUE_IDS,
            RebalancePhase::Complete,
        ),
        movement(
            RebalanceReason::BlueGreen,
            &[1000, 1001],
            RebalancePhase::Complete,
        ),
        RebalanceStatus {
            reason: None,
            ..movement(
                RebalanceReason::BlueGreen,
                &GREEN_IDS,
                RebalancePhase::Complete,
            )
        },
    ] {
        let mut c = Case::running(UpgradePhase::Moving);
        c.movement = Some(m.clone());
        let d = c.decide();
        assert_eq!(d.status, None, "{m:?}");
        assert_eq!(d.forced, Some(forward()));
        assert!(d.actions.is_empty());
        assert_running_shape(&d);
    }
    let d = Case::running(UpgradePhase::Moving).decide();
    assert_eq!(d.status, None);
    assert_eq!(d.forced, Some(forward()));
}

#[test]
fn moving_goes_to_verifying_once_its_movement_is_complete() {
    let mut c = Case::running(UpgradePhase::Moving);
    c.movement = Some(movement(
        RebalanceReason::BlueGreen,
        &GREEN_IDS,
        RebalancePhase::Complete,
    ));
    let d = c.decide();
    let st = status(&d);
    let now = rfc3339(c.now_ms);
    assert_eq!(st.phase, UpgradePhase::Verifying);
    assert_eq!(st.moved_at.as_deref(), Some(now.as_str()));
    assert_eq!(st.verifying_since.as_deref(), Some(now.as_str()));
    assert_eq!(st.partitions_total, 12);
    assert_eq!(st.bytes_total, 3000);
    assert_eq!(
        st.message,
        "every partition is on brokers 1000, 1001, 1002: verifying for 300 s"
    );
    assert_eq!(events(&d), vec![(false, "BlueGreenMoved")]);
    assert_eq!(
        event_message(&d, "BlueGreenMoved"),
        "12 partitions, 3000 bytes moved to brokers 1000, 1001, 1002; verifying for 300 s"
    );
    assert_eq!(d.forced, Some(forward()));
    assert_running_shape(&d);
}

// ---- Verifying ----

/// Verifying since T0 + 60 s, now `after` seconds later.
fn verifying(after: i64) -> Case {
    let mut c = Case::running(UpgradePhase::Verifying);
    let since = T0_MS + 60_000;
    if let Some(u) = c.previous.as_mut() {
        u.moved_at = Some(rfc3339(since));
        u.verifying_since = Some(rfc3339(since));
        u.message = "every partition is on brokers 1000, 1001, 1002: verifying for 300 s".into();
    }
    c.now_ms = since + after * 1000;
    c
}

#[test]
fn verifying_problems_restart_the_window_with_one_warning_per_message() {
    let mut c = verifying(200);
    c.problems = Ok(vec!["t-0 is under-replicated".to_string()]);
    let d = c.decide();
    let st = status(&d).clone();
    assert_eq!(st.phase, UpgradePhase::Verifying);
    assert_eq!(
        st.verifying_since.as_deref(),
        Some(rfc3339(c.now_ms).as_str())
    );
    assert_eq!(
        st.message,
        "verification window starts again: t-0 is under-replicated"
    );
    assert_eq!(events(&d), vec![(true, "BlueGreenVerifyFailed")]);
    assert_eq!(d.actions.len(), 1);
    assert_eq!(d.forced, Some(forward()));
    assert_running_shape(&d);

    // The same problem a little later: the window starts again, no second warning.
    c.previous = Some(st.clone());
    c.now_ms += 5_000;
    let d = c.decide();
    assert_eq!(
        status(&d).verifying_since.as_deref(),
        Some(rfc3339(c.now_ms).as_str())
    );
    assert!(d.actions.is_empty(), "{:?}", d.actions);

    // Another problem: a warning again.
    c.previous = d.status.clone();
    c.problems = Ok(vec![
        "t-0 is under-replicated".to_string(),
        "consumer group billing".to_string(),
    ]);
    let d = c.decide();
    assert_eq!(
        status(&d).message,
        "verification window starts again: t-0 is under-replicated, consumer group billing"
    );
    assert_eq!(events(&d), vec![(true, "BlueGreenVerifyFailed")]);
}

#[test]
fn verifying_restarts_the_window_when_the_gates_cannot_be_read() {
    let mut c = verifying(400);
    c.problems = Err("timed out".to_string());
    let d = c.decide();
    let st = status(&d);
    assert_eq!(st.phase, UpgradePhase::Verifying);
    assert_eq!(
        st.message,
        "verification window starts again: the health gates cannot be read: timed out"
    );
    assert_eq!(
        st.verifying_since.as_deref(),
        Some(rfc3339(c.now_ms).as_str())
    );
    assert_eq!(events(&d), vec![(true, "BlueGreenVerifyFailed")]);
}

#[test]
fn verifying_stays_while_the_window_runs() {
    let c = verifying(120);
    let d = c.decide();
    let st = status(&d);
    assert_eq!(st.phase, UpgradePhase::Verifying);
    assert_eq!(st.message, "verifying: healthy for 120 of 300 s");
    assert_eq!(st.verifying_since, Some(rfc3339(T0_MS + 60_000)));
    assert!(d.actions.is_empty());
    assert_eq!(d.requeue, Some(Duration::from_secs(10)));
    assert_eq!(d.forced, Some(forward()));
    assert_running_shape(&d);

    // One second before the end.
    let d = verifying(299).decide();
    assert_eq!(status(&d).phase, UpgradePhase::Verifying);
    assert_eq!(d.requeue, Some(Duration::from_secs(1)));
}

#[test]
fn verifying_promotes_automatically_after_the_window() {
    let d = verifying(300).decide();
    let st = status(&d);
    assert_eq!(st.phase, UpgradePhase::Promoting);
    assert_eq!(
        st.message,
        "promoting: the quorum's voters move to brokers 1000, 1001, 1002"
    );
    assert_eq!(events(&d), vec![(false, "BlueGreenPromoting")]);
    assert_eq!(d.actions.len(), 1);
    assert_eq!(d.forced, Some(forward()));
    assert_running_shape(&d);
}

#[test]
fn verifying_with_a_shorter_window() {
    let mut c = verifying(30);
    c.spec.verify_seconds = 30;
    assert_eq!(status(&c.decide()).phase, UpgradePhase::Promoting);
    c.now_ms -= 1_000;
    assert_eq!(status(&c.decide()).phase, UpgradePhase::Verifying);
}

#[test]
fn manual_promotion_waits_for_the_annotation() {
    let mut c = verifying(301);
    c.spec.promotion = Promotion::Manual;
    let d = c.decide();
    let st = status(&d).clone();
    assert_eq!(st.phase, UpgradePhase::AwaitingPromotion);
    assert!(st.message.contains("samsa.dev/promote"), "{}", st.message);
    assert!(st.message.contains("0, 1, 2"), "{}", st.message);
    assert_eq!(events(&d), vec![(false, "BlueGreenVerified")]);
    assert_eq!(d.forced, Some(forward()));
    assert_running_shape(&d);

    // Still waiting: no status write, no second event.
    c.previous = Some(st.clone());
    c.now_ms += 60_000;
    let d = c.decide();
    assert_eq!(d.status, None);
    assert!(d.actions.is_empty());
    assert!(d.in_progress);

    // Annotated: promoting.
    c.promote = true;
    let d = c.decide();
    assert_eq!(status(&d).phase, UpgradePhase::Promoting);
    assert_eq!(events(&d), vec![(false, "BlueGreenPromoting")]);
}

#[test]
fn manual_promotion_annotated_early_still_waits_for_the_window() {
    let mut c = verifying(100);
    c.spec.promotion = Promotion::Manual;
    c.promote = true;
    let d = c.decide();
    assert_eq!(status(&d).phase, UpgradePhase::Verifying);
    assert!(d.actions.is_empty());
}

#[test]
fn a_problem_while_awaiting_promotion_goes_back_to_verifying() {
    let mut c = verifying(400);
    c.spec.promotion = Promotion::Manual;
    if let Some(u) = c.previous.as_mut() {
        u.phase = UpgradePhase::AwaitingPromotion;
    }
    c.problems = Ok(vec!["t-3 is offline".to_string()]);
    c.promote = true;
    let d = c.decide();
    let st = status(&d);
    assert_eq!(st.phase, UpgradePhase::Verifying);
    assert_eq!(
        st.verifying_since.as_deref(),
        Some(rfc3339(c.now_ms).as_str())
    );
    assert_eq!(events(&d), vec![(true, "BlueGreenVerifyFailed")]);
}

// ---- Promoting ----

fn promoting(voters: &[i32], leader: i32) -> Case {
    let mut c = Case::running(UpgradePhase::Promoting);
    c.quorum = Ok((voters.to_vec(), leader));
    c
}

#[test]
fn promoting_adds_a_green_voter_first() {
    let d = promoting(&[0, 1, 2], 1).decide();
    assert_eq!(
        d.actions,
        vec![BlueGreenAction::AddVoter {
            set: green(),
            id: 1000
        }]
    );
    let st = status(&d);
    assert_eq!(st.phase, UpgradePhase::Promoting);
    assert_eq!(
        st.message,
        "promoting: adding broker 1000 to the quorum's voters (0 of 3 moved)"
    );
    assert_eq!(d.forced, Some(forward()));
    assert_running_shape(&d);
}

#[test]
fn promoting_removes_a_blue_follower_before_the_leader() {
    let d = promoting(&[0, 1, 2, 1000], 1).decide();
    assert_eq!(d.actions, vec![BlueGreenAction::RemoveVoter(0)]);
    assert_eq!(
        status(&d).message,
        "promoting: removing broker 0 from the quorum's voters (1 of 3 moved)"
    );
    let d = promoting(&[0, 1, 2, 1000], 0).decide();
    assert_eq!(d.actions, vec![BlueGreenAction::RemoveVoter(1)]);
    // The leader is the last blue voter: it goes.
    let d = promoting(&[1, 1000, 1001, 1002], 1).decide();
    assert_eq!(d.actions, vec![BlueGreenAction::RemoveVoter(1)]);
    assert_running_shape(&d);
}

#[test]
fn promoting_waits_while_the_quorum_cannot_be_read() {
    let mut c = promoting(&[], 0);
    c.quorum = Err("no leader".to_string());
    let d = c.decide();
    let st = status(&d);
    assert_eq!(st.phase, UpgradePhase::Promoting);
    assert_eq!(
        st.message,
        "promoting: the quorum cannot be read: no leader"
    );
    assert!(d.actions.is_empty());
    assert_running_shape(&d);
}

/// Applies each voter change to a simulated quorum until the decision retires blue; returns
/// the changes in order.
fn simulate(mut c: Case, mut voters: Vec<i32>, mut leader: i32) -> Vec<BlueGreenAction> {
    let floor = voters.len();
    let mut changes = Vec::new();
    for _ in 0..20 {
        c.quorum = Ok((voters.clone(), leader));
        let d = c.decide();
        if let Some(st) = d.status.clone() {
            assert_eq!(st.phase, UpgradePhase::Promoting);
            c.previous = Some(st);
        }
        match d.actions.as_slice() {
            [BlueGreenAction::AddVoter { set, id }] => {
                assert_eq!(*set, green());
                assert!(!voters.contains(id));
                voters.push(*id);
            }
            [BlueGreenAction::RemoveVoter(id)] => {
                let at = voters.iter().position(|v| v == id).expect("a voter");
                voters.remove(at);
                if *id == leader {
                    leader = voters[0];
                }
            }
            [BlueGreenAction::DeleteSet(..)] => return changes,
            other => panic!("unexpected actions {other:?} with voters {voters:?}"),
        }
        assert!(
            voters.len() >= floor && voters.len() <= floor + 1,
            "voters {voters:?}"
        );
        assert_eq!(d.active, blue(), "blue stays active while voters move");
        assert_eq!(d.voters, None);
        changes.push(d.actions[0].clone());
    }
    panic!("no end after 20 changes; voters {voters:?}");
}

#[test]
fn promoting_moves_every_voter_one_change_at_a_time_leader_last() {
    let add = |id| BlueGreenAction::AddVoter { set: green(), id };
    let remove = BlueGreenAction::RemoveVoter;
    assert_eq!(
        simulate(promoting(&[], 1), vec![0, 1, 2], 1),
        vec![
            add(1000),
            remove(0),
            add(1001),
            remove(2),
            add(1002),
            remove(1)
        ]
    );
    // Leader 0: 1 goes first, 0 last.
    assert_eq!(
        simulate(promoting(&[], 0), vec![0, 1, 2], 0),
        vec![
            add(1000),
            remove(1),
            add(1001),
            remove(2),
            add(1002),
            remove(0)
        ]
    );
}

#[test]
fn promoting_a_single_voter() {
    let mut c = promoting(&[], 0);
    c.controllers = 1;
    assert_eq!(
        simulate(c, vec![0], 0),
        vec![
            BlueGreenAction::AddVoter {
                set: green(),
                id: 1000
            },
            BlueGreenAction::RemoveVoter(0)
        ]
    );
}

#[test]
fn promoting_deletes_blue_once_green_holds_every_vote() {
    let d = promoting(&GREEN_IDS, 1000).decide();
    assert_eq!(d.actions, vec![BlueGreenAction::DeleteSet(blue(), 3)]);
    let st = status(&d);
    assert_eq!(st.phase, UpgradePhase::Promoting);
    assert_eq!(
        st.message,
        "promoting: the voters are brokers 1000, 1001, 1002; removing StatefulSet kc"
    );
    assert_eq!(d.active, green());
    assert_eq!(d.voters, Some(GREEN_IDS.to_vec()));
    assert_eq!(d.other, None);
    assert_eq!(
        d.active_image,
        Some((NEW_IMAGE.to_string(), NEW_VERSION.to_string()))
    );
    assert!(d.in_progress);
    // The voters' order does not matter.
    let d = promoting(&[1002, 1000, 1001], 1001).decide();
    assert_eq!(d.actions, vec![BlueGreenAction::DeleteSet(blue(), 3)]);
}

#[test]
fn promoting_is_done_once_blue_is_gone() {
    let mut c = promoting(&GREEN_IDS, 1000);
    c.retired_gone = true;
    c.promote = true;
    c.now_ms = T0_MS + 900_000;
    if let Some(u) = c.previous.as_mut() {
        u.partitions_total = 12;
        u.bytes_total = 3000;
    }
    let d = c.decide();
    let st = status(&d);
    assert_eq!(st.phase, UpgradePhase::Done);
    assert_eq!(st.finished_at.as_deref(), Some("2026-12-07T10:15:00Z"));
    assert_eq!(st.seconds, Some(900.0));
    assert_eq!(st.verifying_since, None);
    assert_eq!(
        st.message,
        "promoted: brokers 1000, 1001, 1002 at samsa:1.1 are the cluster (StatefulSet kc-g1); 12 partitions, 3000 bytes moved; 900.0 s in all"
    );
    assert_eq!(d.actions.len(), 3);
    assert_eq!(d.actions[0], BlueGreenAction::Forget(BLUE_IDS.to_vec()));
    assert_eq!(d.actions[1], BlueGreenAction::ClearPromote);
    assert_eq!(
        d.actions[2],
        BlueGreenAction::Event(false, "BlueGreenPromoted", st.message.clone())
    );
    assert_eq!(d.active, green());
    assert_eq!(d.active_image, None);
    assert_eq!(d.other, None);
    assert_eq!(d.forced, None);
    assert_eq!(d.voters, Some(GREEN_IDS.to_vec()));
    assert!(!d.in_progress);

    // The next reconcile: nothing runs, green is the cluster.
    let mut next = Case::idle().desire(NEW_IMAGE, NEW_VERSION);
    next.previous = d.status.clone();
    next.active = green();
    next.active_image = Some((NEW_IMAGE.to_string(), NEW_VERSION.to_string()));
    let d = next.decide();
    assert_eq!(d.status, None);
    assert_eq!(d.active, green());
    assert!(!d.in_progress);
    assert!(d.actions.is_empty());
}

#[test]
fn a_version_changed_during_promoting_is_a_new_blue_green_upgrade() {
    // The spec asks for the old image again while the voters move: too late to roll back; once
    // promoted, green keeps its image so that the next reconcile starts a new upgrade instead
    // of rolling green over to the spec's image.
    let mut c = promoting(&GREEN_IDS, 1000).desire(OLD_IMAGE, OLD_VERSION);
    c.retired_gone = true;
    let d = c.decide();
    assert_eq!(status(&d).phase, UpgradePhase::Done);
    assert_eq!(
        d.active_image,
        Some((NEW_IMAGE.to_string(), NEW_VERSION.to_string()))
    );

    let mut next = Case::idle().desire(OLD_IMAGE, OLD_VERSION);
    next.previous = d.status.clone();
    next.active = green();
    next.active_image = Some((NEW_IMAGE.to_string(), NEW_VERSION.to_string()));
    let d = next.decide();
    let st = status(&d);
    assert_eq!(st.phase, UpgradePhase::Provisioning);
    assert_eq!(st.to.name, "kc-g2");
    assert_eq!(st.to_image, OLD_IMAGE);
}

// ---- Rollback ----

const BEFORE_PROMOTING: [UpgradePhase; 4] = [
    UpgradePhase::Provisioning,
    UpgradePhase::Moving,
    UpgradePhase::Verifying,
    UpgradePhase::AwaitingPromotion,
];

#[test]
fn the_rollback_annotation_rolls_back_before_promoting() {
    for phase in BEFORE_PROMOTING {
        let mut c = Case::running(phase);
        c.rollback = true;
        if let Some(u) = c.previous.as_mut() {
            u.verifying_since = Some(rfc3339(T0_MS));
        }
        let d = c.decide();
        let st = status(&d);
        assert_eq!(st.phase, UpgradePhase::RollingBack, "from {phase:?}");
        assert_eq!(st.verifying_since, None);
        assert_eq!(
            st.message,
            "rolling back (the samsa.dev/rollback annotation): moving every replica back to brokers 0, 1, 2"
        );
        assert_eq!(events(&d), vec![(true, "BlueGreenRollingBack")]);
        assert_eq!(d.actions.len(), 1);
        assert_eq!(d.forced, Some(back()));
        assert_running_shape(&d);
    }
}

#[test]
fn the_old_image_in_the_spec_rolls_back_before_promoting() {
    for phase in BEFORE_PROMOTING {
        let d = Case::running(phase).desire(OLD_IMAGE, OLD_VERSION).decide();
        let st = status(&d);
        assert_eq!(st.phase, UpgradePhase::RollingBack, "from {phase:?}");
        assert_eq!(
            st.message,
            "rolling back (the spec's image is the old one again): moving every replica back to brokers 0, 1, 2"
        );
        assert_eq!(events(&d), vec![(true, "BlueGreenRollingBack")]);
        assert_eq!(d.forced, Some(back()));
        assert_running_shape(&d);
    }
}

#[test]
fn rolling_back_waits_for_its_movement() {
    let mut c = Case::running(UpgradePhase::RollingBack);
    c.rollback = true;
    // The forward movement, complete, is not the rollback's.
    c.movement = Some(movement(
        RebalanceReason::BlueGreen,
        &GREEN_IDS,
        RebalancePhase::Complete,
    ));
    let d = c.decide();
    assert_eq!(d.status, None);
    assert_eq!(d.forced, Some(back()));
    assert!(d.actions.is_empty());
    assert_running_shape(&d);

    c.movement = Some(movement(
        RebalanceReason::Rollback,
        &BLUE_IDS,
        RebalancePhase::Moving,
    ));
    let d = c.decide();
    let st = status(&d);
    assert_eq!(st.phase, UpgradePhase::RollingBack);
    assert_eq!(st.partitions_done, 5);
    assert_eq!(st.bytes_moved, 1250);
    assert_eq!(st.message, "movement is Moving");
    assert!(d.actions.is_empty());
    assert_eq!(d.other, green_other());
}

#[test]
fn rolling_back_deletes_green_once_blue_holds_everything() {
    let mut c = Case::running(UpgradePhase::RollingBack);
    c.rollback = true;
    c.movement = Some(movement(
        RebalanceReason::Rollback,
        &BLUE_IDS,
        RebalancePhase::Complete,
    ));
    let d = c.decide();
    let st = status(&d);
    assert_eq!(st.phase, UpgradePhase::RollingBack);
    assert_eq!(
        st.message,
        "every partition is back on brokers 0, 1, 2: removing StatefulSet kc-g1"
    );
    assert_eq!(d.actions, vec![BlueGreenAction::DeleteSet(green(), 3)]);
    assert_eq!(d.other, None);
    assert_eq!(d.active, blue());
    assert_eq!(d.active_image, old_image());
    assert_eq!(d.forced, Some(back()));
    assert_eq!(d.voters, None);
    assert!(d.in_progress);
}

fn rolled_back(rollback: bool, desired: (&str, &str)) -> BlueGreenDecision {
    let mut c = Case::running(UpgradePhase::RollingBack).desire(desired.0, desired.1);
    c.rollback = rollback;
    c.retired_gone = true;
    c.now_ms = T0_MS + 120_500;
    c.movement = Some(movement(
        RebalanceReason::Rollback,
        &BLUE_IDS,
        RebalancePhase::Complete,
    ));
    c.decide()
}

#[test]
fn rolling_back_ends_once_green_is_gone() {
    let d = rolled_back(true, (NEW_IMAGE, NEW_VERSION));
    let st = status(&d);
    assert_eq!(st.phase, UpgradePhase::RolledBack);
    assert_eq!(st.finished_at.as_deref(), Some("2026-12-07T10:02:00.5Z"));
    assert_eq!(st.seconds, Some(120.5));
    assert_eq!(
        st.message,
        "rolled back: brokers 0, 1, 2 at samsa:1.0 hold every partition; StatefulSet kc-g1 removed in 120.5 s"
    );
    assert_eq!(
        d.actions,
        vec![
            BlueGreenAction::Forget(GREEN_IDS.to_vec()),
            BlueGreenAction::Event(false, "BlueGreenRolledBack", st.message.clone()),
        ]
    );
    assert_eq!(d.active, blue());
    assert_eq!(d.other, None);
    assert_eq!(d.forced, Some(back()));
    assert_eq!(d.voters, None);
    assert!(!d.in_progress);
    // The annotation holds blue at its image.
    assert_eq!(d.active_image, old_image());

    // Rolled back by the spec: blue runs the spec's image, the same.
    let d = rolled_back(false, (OLD_IMAGE, OLD_VERSION));
    assert_eq!(status(&d).phase, UpgradePhase::RolledBack);
    assert_eq!(d.active_image, None);
    assert!(!d.in_progress);
}

#[test]
fn the_annotation_removed_while_rolling_back_keeps_blue_at_its_image() {
    // Blue must not take the spec's (new) image by a rolling restart: the next reconcile starts
    // a new blue-green upgrade instead.
    let d = rolled_back(false, (NEW_IMAGE, NEW_VERSION));
    assert_eq!(status(&d).phase, UpgradePhase::RolledBack);
    assert_eq!(d.active_image, old_image());

    let mut next = Case::idle().desire(NEW_IMAGE, NEW_VERSION);
    next.previous = d.status.clone();
    let d = next.decide();
    assert_eq!(status(&d).phase, UpgradePhase::Provisioning);
    assert_eq!(d.active_image, old_image());
}

#[test]
fn a_rollback_asked_while_promoting_is_too_late() {
    for (rollback, desired) in [(true, NEW_IMAGE), (false, OLD_IMAGE)] {
        let mut c = promoting(&[0, 1, 2], 1).desire(desired, "any");
        c.rollback = rollback;
        let d = c.decide();
        let st = status(&d).clone();
        assert_eq!(st.phase, UpgradePhase::Promoting);
        assert_eq!(
            d.actions,
            vec![BlueGreenAction::AddVoter {
                set: green(),
                id: 1000
            }]
        );
        assert_eq!(d.forced, Some(forward()));
        assert_eq!(
            st.message,
            "promoting: adding broker 1000 to the quorum's voters (0 of 3 moved); a rollback was asked for, too late: the promotion is under way"
        );
        assert!(events(&d).is_empty());
        assert_running_shape(&d);

        // Asked again at the same step: the message does not grow.
        c.previous = Some(st);
        assert_eq!(c.decide().status, None);
    }
}

// ---- after a rollback ----

fn after_rollback(rollback: bool, desired: (&str, &str)) -> Case {
    let mut c = Case::idle().desire(desired.0, desired.1);
    c.previous = Some(UpgradeStatus {
        finished_at: Some(rfc3339(T0_MS + 120_000)),
        ..upgrade(UpgradePhase::RolledBack)
    });
    c.rollback = rollback;
    c
}

#[test]
fn the_rollback_annotation_holds_blue_at_its_image() {
    let d = after_rollback(true, (NEW_IMAGE, NEW_VERSION)).decide();
    assert_eq!(d.status, None);
    assert_eq!(d.active, blue());
    assert_eq!(d.active_image, old_image());
    assert_eq!(d.other, None);
    assert_eq!(d.forced, None);
    assert!(!d.in_progress);
    assert!(d.actions.is_empty());
}

#[test]
fn without_the_annotation_the_upgrade_starts_again() {
    let d = after_rollback(false, (NEW_IMAGE, NEW_VERSION)).decide();
    let st = status(&d);
    assert_eq!(st.phase, UpgradePhase::Provisioning);
    assert_eq!(st.to, green());
    assert_eq!(st.to_ids, GREEN_IDS.to_vec());
    assert_eq!(st.finished_at, None);
    assert_eq!(events(&d), vec![(false, "BlueGreenStarted")]);
    assert_eq!(d.active_image, old_image());
    assert_eq!(d.other, green_other());
    assert!(d.in_progress);
}

#[test]
fn with_the_annotation_another_version_starts_an_upgrade() {
    let d = after_rollback(true, ("samsa:1.2", "1.2")).decide();
    let st = status(&d);
    assert_eq!(st.phase, UpgradePhase::Provisioning);
    assert_eq!(st.to_image, "samsa:1.2");
    assert_eq!(d.active_image, old_image());
}

#[test]
fn after_a_rollback_by_the_spec_nothing_starts() {
    let d = after_rollback(false, (OLD_IMAGE, OLD_VERSION)).decide();
    assert_untouched(&d);
    let d = after_rollback(true, (OLD_IMAGE, OLD_VERSION)).decide();
    assert_untouched(&d);
}
