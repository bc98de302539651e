//! Blue-green upgrades, one decision at a time. Pure: given the spec, the broker set running
//! (blue), what the pods and brokers report and the progress in `status.upgrade`, [`decide`]
//! says what the status becomes, which StatefulSets exist, which replica movement runs and
//! which requests to send. The caller writes the status first and acts second.
//!
//! 1. **Provisioning**: a second StatefulSet (green) at the new image, with broker ids of its
//!    own, starts; its first `controllers` pods run a controller that follows the quorum as a
//!    non-voter. Waits until every green broker is Ready and registered.
//! 2. **Moving**: every partition moves from blue to green by reassignment
//!    ([`super::movement`], reason `BlueGreen`), throttled, a bounded batch at a time; then
//!    preferred leaders (all green) are elected.
//! 3. **Verifying**: for `verifySeconds` the health gates must hold (no under-replicated or
//!    offline partition, every watched consumer group healthy); a failing gate starts the
//!    window again. `promotion: Manual` then waits for the `samsa.dev/promote` annotation.
//! 4. **Promoting**: the quorum's voters move to green one change at a time (add a green
//!    voter, remove a blue one; the quorum leader goes last), then the blue StatefulSet (and its
//!    volumes, per `spec.volumeClaims.whenScaled`) is deleted and its brokers unregistered.
//! 5. **RollingBack** (the spec's image back to blue's, or the `samsa.dev/rollback`
//!    annotation, any time before Promoting): the data moves back to blue, which never
//!    stopped, and the green set is deleted. The voters never moved, so nothing else changes.

use std::time::Duration;

use super::listed;
use super::movement::Forced;
use crate::crd::{
    BlueGreenSpec, BrokerSet, Promotion, RebalancePhase, RebalanceReason, RebalanceStatus,
    UpgradePhase, UpgradeStatus,
};

/// Everything [`decide`] reads.
#[derive(Debug, Clone)]
pub struct BlueGreenInput<'a> {
    /// `spec.upgrade.blueGreen`.
    pub spec: &'a BlueGreenSpec,
    /// `spec.upgrade.strategy` is `BlueGreen`.
    pub enabled: bool,
    /// Cluster name.
    pub cluster: &'a str,
    /// `status.upgrade` so far.
    pub previous: Option<&'a UpgradeStatus>,
    /// The broker set that is the cluster now.
    pub active: &'a BrokerSet,
    /// Image and version the active set's StatefulSet runs (`None`: no StatefulSet yet).
    pub active_image: Option<(&'a str, &'a str)>,
    /// Image and version the spec asks for.
    pub desired: (&'a str, &'a str),
    /// `spec.brokers`.
    pub brokers: i32,
    /// Voters of the quorum (`status.controllers`).
    pub controllers: i32,
    /// The KafkaCluster carries `samsa.dev/promote`.
    pub promote: bool,
    /// The KafkaCluster carries `samsa.dev/rollback`.
    pub rollback: bool,
    /// Every pod of the set being moved to exists and is Ready.
    pub target_ready: bool,
    /// Brokers registered (`Err`: cannot be read).
    pub registered: Result<&'a [i32], &'a str>,
    /// `status.rebalance`: the replica movement.
    pub movement: Option<&'a RebalanceStatus>,
    /// What the health gates find wrong now (empty: healthy; `Err`: cannot be read).
    pub problems: Result<&'a [String], &'a str>,
    /// The quorum's voters and its leader (`Err`: cannot be read).
    pub quorum: Result<(&'a [i32], i32), &'a str>,
    /// The StatefulSet being retired (blue after promotion, green after a rollback) and its
    /// pods are gone.
    pub retired_gone: bool,
    /// Now, RFC 3339.
    pub now: &'a str,
    /// Now, ms since the epoch.
    pub now_ms: i64,
}

/// A request the caller sends, in order, after writing the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlueGreenAction {
    /// AddRaftVoter: broker `id` of set `set` becomes a voter.
    AddVoter {
        /// The broker set holding it.
        set: BrokerSet,
        /// Broker id.
        id: i32,
    },
    /// RemoveRaftVoter: `id` stops voting (a removed voter stays a learner; asked again, it
    /// leaves the membership).
    RemoveVoter(i32),
    /// Delete a StatefulSet (its pods go with it) and, unless the retention says otherwise, its
    /// volumes.
    DeleteSet(BrokerSet, i32),
    /// UnregisterBroker for each id, and drop them from the quorum's learners.
    Forget(Vec<i32>),
    /// Remove the `samsa.dev/promote` annotation (the promotion it asked for is done).
    ClearPromote,
    /// A Kubernetes event on the KafkaCluster (warning or not, reason, message).
    Event(bool, &'static str, String),
}

/// What a reconcile does about a blue-green upgrade.
#[derive(Debug, Clone, PartialEq)]
pub struct BlueGreenDecision {
    /// The next `status.upgrade` (`None`: unchanged).
    pub status: Option<UpgradeStatus>,
    /// The broker set that is the cluster after this decision.
    pub active: BrokerSet,
    /// The other StatefulSet to keep applied, with its image and version (green while an
    /// upgrade runs).
    pub other: Option<(BrokerSet, String, String)>,
    /// The image and version the active set runs: blue's own while an upgrade runs or after an
    /// annotation rollback, `None`: the spec's.
    pub active_image: Option<(String, String)>,
    /// The replica movement to drive.
    pub forced: Option<Forced>,
    /// The voters once promoted (ids of the active set), for `status.quorumVoters`.
    pub voters: Option<Vec<i32>>,
    /// An upgrade runs: no rolling restart, no scale rebalance meanwhile.
    pub in_progress: bool,
    /// Requests, in order.
    pub actions: Vec<BlueGreenAction>,
    /// Reconcile again this soon.
    pub requeue: Option<Duration>,
}

/// Broker ids of a later set start at the next multiple of this.
pub const SET_ID_STRIDE: i32 = 1000;

/// The set a blue-green upgrade from `active` creates.
pub fn next_set(cluster: &str, active: &BrokerSet) -> BrokerSet {
    let k = active.id_offset / SET_ID_STRIDE + 1;
    BrokerSet {
        name: format!("{cluster}-g{k}"),
        id_offset: k * SET_ID_STRIDE,
    }
}

fn seconds_between(start: Option<&str>, end_ms: i64) -> Option<f64> {
    let start: k8s_openapi::jiff::Timestamp = start?.parse().ok()?;
    Some(((end_ms - start.as_millisecond()) as f64 / 100.0).round() / 10.0)
}

fn running(u: &UpgradeStatus) -> bool {
    !matches!(u.phase, UpgradePhase::Done | UpgradePhase::RolledBack)
}

/// The next step of a blue-green upgrade.
pub fn decide(input: &BlueGreenInput) -> BlueGreenDecision {
    let idle = BlueGreenDecision {
        status: None,
        active: input.active.clone(),
        other: None,
        active_image: None,
        forced: None,
        voters: None,
        in_progress: false,
        actions: Vec::new(),
        requeue: None,
    };
    match input.previous.filter(|u| running(u)) {
        Some(u) => step(input, u, idle),
        None => maybe_start(input, idle),
    }
}

fn maybe_start(input: &BlueGreenInput, mut d: BlueGreenDecision) -> BlueGreenDecision {
    let (desired_image, desired_version) = input.desired;
    // After an annotation rollback the old set keeps its image until the annotation goes or the
    // spec asks for yet another version.
    if let Some(u) = input
        .previous
        .filter(|u| u.phase == UpgradePhase::RolledBack)
    {
        if input.rollback && u.to_image == desired_image {
            d.active_image = Some((u.from_image.clone(), u.from_version.clone()));
            return d;
        }
    }
    let Some((image, version)) = input.active_image else {
        return d;
    };
    if !input.enabled || image == desired_image {
        return d;
    }
    let to = next_set(input.cluster, input.active);
    let from_ids = input.active.ids(input.brokers);
    let to_ids = to.ids(input.brokers);
    let status = UpgradeStatus {
        phase: UpgradePhase::Provisioning,
        from: input.active.clone(),
        from_image: image.to_string(),
        from_version: version.to_string(),
        from_ids: from_ids.clone(),
        to: to.clone(),
        to_image: desired_image.to_string(),
        to_version: desired_version.to_string(),
        to_ids: to_ids.clone(),
        started_at: Some(input.now.to_string()),
        message: format!(
            "starting StatefulSet {} (brokers {}) at {desired_image}",
            to.name,
            ids(&to_ids)
        ),
        ..UpgradeStatus::default()
    };
    d.actions.push(BlueGreenAction::Event(
        false,
        "BlueGreenStarted",
        format!(
            "blue-green upgrade from {image} (StatefulSet {}, brokers {}) to {desired_image} (StatefulSet {}, brokers {})",
            input.active.name,
            ids(&from_ids),
            to.name,
            ids(&to_ids)
        ),
    ));
    d.active_image = Some((image.to_string(), version.to_string()));
    d.other = Some((to, desired_image.to_string(), desired_version.to_string()));
    d.status = Some(status);
    d.in_progress = true;
    d.requeue = Some(Duration::from_secs(3));
    d
}

fn ids(list: &[i32]) -> String {
    listed(&list.iter().map(ToString::to_string).collect::<Vec<_>>())
}

/// Progress of the movement `forced` as the upgrade shows it; whether it is complete.
fn copy_progress(
    status: &mut UpgradeStatus,
    movement: Option<&RebalanceStatus>,
    f: &Forced,
) -> bool {
    let Some(m) = movement.filter(|m| m.reason == Some(f.reason) && m.brokers == f.to) else {
        return false;
    };
    status.partitions_total = m.partitions_total;
    status.partitions_done = m.partitions_done;
    status.bytes_total = m.bytes_total;
    status.bytes_moved = m.bytes_moved;
    if !m.message.is_empty() {
        status.message = m.message.clone();
    }
    m.phase == RebalancePhase::Complete
}

fn step(input: &BlueGreenInput, u: &UpgradeStatus, mut d: BlueGreenDecision) -> BlueGreenDecision {
    let mut st = u.clone();
    d.in_progress = true;
    d.requeue = Some(Duration::from_secs(3));
    d.active_image = Some((u.from_image.clone(), u.from_version.clone()));
    d.other = Some((u.to.clone(), u.to_image.clone(), u.to_version.clone()));
    let forward = Forced {
        reason: RebalanceReason::BlueGreen,
        to: u.to_ids.clone(),
        from: u.from_ids.clone(),
    };
    let back = Forced {
        reason: RebalanceReason::Rollback,
        to: u.from_ids.clone(),
        from: u.to_ids.clone(),
    };
    let (desired_image, _) = input.desired;
    let undo = input.rollback || desired_image == u.from_image;
    if undo
        && matches!(
            u.phase,
            UpgradePhase::Provisioning
                | UpgradePhase::Moving
                | UpgradePhase::Verifying
                | UpgradePhase::AwaitingPromotion
        )
    {
        let why = if input.rollback {
            "the samsa.dev/rollback annotation"
        } else {
            "the spec's image is the old one again"
        };
        st.phase = UpgradePhase::RollingBack;
        st.verifying_since = None;
        st.message = format!(
            "rolling back ({why}): moving every replica back to brokers {}",
            ids(&u.from_ids)
        );
        d.actions.push(BlueGreenAction::Event(
            true,
            "BlueGreenRollingBack",
            st.message.clone(),
        ));
        d.forced = Some(back);
        d.status = Some(st);
        return d;
    }
    match u.phase {
        UpgradePhase::Provisioning => {
            let missing: Vec<i32> = match input.registered {
                Ok(reg) => u
                    .to_ids
                    .iter()
                    .copied()
                    .filter(|b| !reg.contains(b))
                    .collect(),
                Err(_) => u.to_ids.clone(),
            };
            if !input.target_ready || !missing.is_empty() {
                st.message = match input.registered {
                    Err(e) => format!("the brokers cannot be read: {e}"),
                    Ok(_) if !input.target_ready => format!(
                        "waiting for the pods of StatefulSet {} to be Ready",
                        u.to.name
                    ),
                    Ok(_) => format!("waiting for brokers {} to register", ids(&missing)),
                };
                d.requeue = Some(Duration::from_secs(5));
            } else {
                st.phase = UpgradePhase::Moving;
                st.message = format!(
                    "brokers {} are ready: moving every partition to them",
                    ids(&u.to_ids)
                );
                d.actions.push(BlueGreenAction::Event(
                    false,
                    "BlueGreenProvisioned",
                    st.message.clone(),
                ));
                d.forced = Some(forward);
            }
        }
        UpgradePhase::Moving => {
            let done = copy_progress(&mut st, input.movement, &forward);
            d.forced = Some(forward);
            if done {
                st.phase = UpgradePhase::Verifying;
                st.moved_at = Some(input.now.to_string());
                st.verifying_since = Some(input.now.to_string());
                st.message = format!(
                    "every partition is on brokers {}: verifying for {} s",
                    ids(&u.to_ids),
                    input.spec.verify_seconds
                );
                d.actions.push(BlueGreenAction::Event(
                    false,
                    "BlueGreenMoved",
                    format!(
                        "{} partitions, {} bytes moved to brokers {}; verifying for {} s",
                        st.partitions_total,
                        st.bytes_total,
                        ids(&u.to_ids),
                        input.spec.verify_seconds
                    ),
                ));
            }
        }
        UpgradePhase::Verifying | UpgradePhase::AwaitingPromotion => {
            d.forced = Some(forward);
            let problems: Vec<String> = match input.problems {
                Ok(p) => p.to_vec(),
                Err(e) => vec![format!("the health gates cannot be read: {e}")],
            };
            if !problems.is_empty() {
                let message = format!("verification window starts again: {}", listed(&problems));
                if st.message != message {
                    d.actions.push(BlueGreenAction::Event(
                        true,
                        "BlueGreenVerifyFailed",
                        message.clone(),
                    ));
                }
                st.phase = UpgradePhase::Verifying;
                st.verifying_since = Some(input.now.to_string());
                st.message = message;
                d.requeue = Some(Duration::from_secs(5));
            } else {
                let since =
                    seconds_between(st.verifying_since.as_deref(), input.now_ms).unwrap_or(0.0);
                let window = input.spec.verify_seconds as f64;
                if since < window {
                    st.phase = UpgradePhase::Verifying;
                    st.message = format!(
                        "verifying: healthy for {since:.0} of {} s",
                        input.spec.verify_seconds
                    );
                    let left = (window - since).clamp(1.0, 10.0);
                    d.requeue = Some(Duration::from_secs_f64(left));
                } else if input.spec.promotion == Promotion::Manual && !input.promote {
                    if st.phase != UpgradePhase::AwaitingPromotion {
                        d.actions.push(BlueGreenAction::Event(
                            false,
                            "BlueGreenVerified",
                            format!(
                                "verified for {} s: annotate the KafkaCluster with samsa.dev/promote to retire brokers {}",
                                input.spec.verify_seconds,
                                ids(&u.from_ids)
                            ),
                        ));
                    }
                    st.phase = UpgradePhase::AwaitingPromotion;
                    st.message = format!(
                        "verified; waiting for the samsa.dev/promote annotation (or samsa.dev/rollback) to retire brokers {}",
                        ids(&u.from_ids)
                    );
                    d.requeue = Some(Duration::from_secs(10));
                } else {
                    st.phase = UpgradePhase::Promoting;
                    st.message = format!(
                        "promoting: the quorum's voters move to brokers {}",
                        ids(&voters_of(u, input.controllers))
                    );
                    d.actions.push(BlueGreenAction::Event(
                        false,
                        "BlueGreenPromoting",
                        st.message.clone(),
                    ));
                }
            }
        }
        UpgradePhase::Promoting => {
            d.forced = Some(forward);
            promote(input, u, &mut st, &mut d);
        }
        UpgradePhase::RollingBack => {
            let done = copy_progress(&mut st, input.movement, &back);
            d.forced = Some(back);
            if done {
                if input.retired_gone {
                    st.phase = UpgradePhase::RolledBack;
                    finish(input, &mut st);
                    st.message = format!(
                        "rolled back: brokers {} at {} hold every partition; StatefulSet {} removed in {:.1} s",
                        ids(&u.from_ids),
                        u.from_image,
                        u.to.name,
                        st.seconds.unwrap_or(0.0)
                    );
                    d.actions.push(BlueGreenAction::Forget(u.to_ids.clone()));
                    d.actions.push(BlueGreenAction::Event(
                        false,
                        "BlueGreenRolledBack",
                        st.message.clone(),
                    ));
                    d.other = None;
                    d.in_progress = false;
                    // Blue takes the spec's image only if it is its own: otherwise (annotation
                    // there or not) the next reconcile holds it or starts a new upgrade.
                    if desired_image == u.from_image {
                        d.active_image = None;
                    }
                } else {
                    st.message = format!(
                        "every partition is back on brokers {}: removing StatefulSet {}",
                        ids(&u.from_ids),
                        u.to.name
                    );
                    d.other = None;
                    d.actions.push(BlueGreenAction::DeleteSet(
                        u.to.clone(),
                        i32::try_from(u.to_ids.len()).unwrap_or(0),
                    ));
                }
            }
        }
        UpgradePhase::Done | UpgradePhase::RolledBack => {}
    }
    // After `promote`, which writes the message of each step.
    if undo && st.phase == UpgradePhase::Promoting && !st.message.contains("too late") {
        st.message = format!(
            "{}; a rollback was asked for, too late: the promotion is under way",
            st.message
        );
    }
    d.status = (st != *u).then_some(st);
    d
}

/// The voters once promoted: the first `controllers` brokers of the new set.
fn voters_of(u: &UpgradeStatus, controllers: i32) -> Vec<i32> {
    u.to_ids
        .iter()
        .copied()
        .take(usize::try_from(controllers).unwrap_or(0))
        .collect()
}

fn finish(input: &BlueGreenInput, st: &mut UpgradeStatus) {
    st.finished_at = Some(input.now.to_string());
    st.seconds = seconds_between(st.started_at.as_deref(), input.now_ms);
    st.verifying_since = None;
}

fn promote(
    input: &BlueGreenInput,
    u: &UpgradeStatus,
    st: &mut UpgradeStatus,
    d: &mut BlueGreenDecision,
) {
    let target = voters_of(u, input.controllers);
    let (voters, leader) = match input.quorum {
        Ok(q) => q,
        Err(e) => {
            st.message = format!("promoting: the quorum cannot be read: {e}");
            d.requeue = Some(Duration::from_secs(5));
            return;
        }
    };
    // One change at a time, never below the voters there were: add a new voter, then remove an
    // old one; the quorum's leader is removed last.
    let missing: Vec<i32> = target
        .iter()
        .copied()
        .filter(|b| !voters.contains(b))
        .collect();
    let mut extra: Vec<i32> = voters
        .iter()
        .copied()
        .filter(|b| !target.contains(b))
        .collect();
    extra.sort_by_key(|&b| (b == leader, b));
    let count = i32::try_from(voters.len()).unwrap_or(0);
    if let Some(&id) = missing.first().filter(|_| count <= input.controllers) {
        st.message = format!(
            "promoting: adding broker {id} to the quorum's voters ({} of {} moved)",
            target.len() - missing.len(),
            target.len()
        );
        d.actions.push(BlueGreenAction::AddVoter {
            set: u.to.clone(),
            id,
        });
        return;
    }
    if let Some(&id) = extra.first() {
        st.message = format!(
            "promoting: removing broker {id} from the quorum's voters ({} of {} moved)",
            target.len() - missing.len(),
            target.len()
        );
        d.actions.push(BlueGreenAction::RemoveVoter(id));
        return;
    }
    if !missing.is_empty() {
        // More voters than asked and none to remove cannot happen; wait for the next read.
        return;
    }
    d.voters = Some(target.clone());
    // From here the new set is the cluster: the old StatefulSet is no longer applied.
    d.active = u.to.clone();
    d.active_image = Some((u.to_image.clone(), u.to_version.clone()));
    d.other = None;
    if !input.retired_gone {
        st.message = format!(
            "promoting: the voters are brokers {}; removing StatefulSet {}",
            ids(&target),
            u.from.name
        );
        d.actions.push(BlueGreenAction::DeleteSet(
            u.from.clone(),
            i32::try_from(u.from_ids.len()).unwrap_or(0),
        ));
        return;
    }
    st.phase = UpgradePhase::Done;
    finish(input, st);
    st.message = format!(
        "promoted: brokers {} at {} are the cluster (StatefulSet {}); {} partitions, {} bytes moved; {:.1} s in all",
        ids(&u.to_ids),
        u.to_image,
        u.to.name,
        st.partitions_total,
        st.bytes_total,
        st.seconds.unwrap_or(0.0)
    );
    d.actions.push(BlueGreenAction::Forget(u.from_ids.clone()));
    d.actions.push(BlueGreenAction::ClearPromote);
    d.actions.push(BlueGreenAction::Event(
        false,
        "BlueGreenPromoted",
        st.message.clone(),
    ));
    d.active = u.to.clone();
    // Green takes the spec's image only if it is its own: a version asked for meanwhile is a
    // new upgrade, not a rolling restart.
    if input.desired.0 == u.to_image {
        d.active_image = None;
    }
    d.other = None;
    d.in_progress = false;
    d.forced = None;
}

#[cfg(test)]
#[path = "bluegreen_tests.rs"]
mod tests;
