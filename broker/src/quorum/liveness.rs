//! Background tasks of a controller node: on the leader, fence brokers whose session expired
//! (a new leader first gives every broker a fresh session) and hand leadership back to
//! preferred replicas when a broker's share is off; on every node, export the quorum gauges.
//! Neither task changes metadata except through proposals.

use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::ServerState;
use tokio::sync::watch;

use super::Shared;
use crate::controller::{preferred_elections, MetadataCommand};
use crate::metrics::QuorumMetrics;

/// After a controller failover, how long the broker of the previous leader's id has to open a
/// session with the new leader before it is fenced (see
/// [`crate::controller::Sessions::reset_after_failover`]).
const FAILOVER_GRACE: Duration = Duration::from_millis(1000);

/// Fences silent brokers and balances leadership (every `rebalance.0`, above `rebalance.1`
/// percent of imbalance) while this node leads, until `shutdown` turns true.
pub(super) async fn run(
    shared: Arc<Shared>,
    session_timeout: Duration,
    rebalance: Option<(Duration, u32)>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut last_balance_check = Instant::now();
    let tick = (session_timeout / 4).clamp(Duration::from_millis(10), Duration::from_millis(250));
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The term in which this node last became leader.
    let mut led_term: Option<u64> = None;
    // The last other node seen leading, while this one did not.
    let mut previous_leader: Option<u64> = None;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let (leader, term, known) = {
            let m = shared.raft.metrics();
            let m = m.borrow();
            (
                m.current_leader == Some(shared.id),
                m.current_term,
                m.current_leader,
            )
        };
        if !leader {
            led_term = None;
            if let Some(other) = known {
                previous_leader = Some(other);
            }
            continue;
        }
        if led_term != Some(term) {
            led_term = Some(term);
            last_balance_check = Instant::now();
            let previous = previous_leader.and_then(|l| i32::try_from(l).ok());
            shared
                .sessions
                .lock()
                .reset_after_failover(Instant::now(), previous, FAILOVER_GRACE);
            tracing::info!(
                term,
                previous_leader = ?previous,
                "controller leader: every broker starts a fresh session"
            );
            if let Some(p) = previous.filter(|p| u64::try_from(*p).ok() != Some(shared.id)) {
                tokio::spawn(fence_if_gone(shared.clone(), p));
            }
            continue;
        }
        let image = shared.image.borrow().clone();
        let expired = shared.sessions.lock().expired(&image, Instant::now());
        for id in expired {
            tracing::warn!(broker = id, "broker session expired: fencing it");
            let incarnation = image.brokers.get(&id).map(|b| b.incarnation_id.clone());
            if let Err(e) = shared
                .propose_local(MetadataCommand::FenceBroker { id, incarnation })
                .await
            {
                tracing::warn!(broker = id, "fencing failed: {e}");
            }
        }
        if let Some((every, percent)) = rebalance {
            if last_balance_check.elapsed() >= every {
                last_balance_check = Instant::now();
                balance_leaders(&shared, percent).await;
            }
        }
    }
}

/// The previous controller leader `previous` lost the leadership: when its controller port
/// refuses connections, its process is gone (a crash closes its sockets at once), so the broker
/// of the same process is fenced now instead of after the grace.
async fn fence_if_gone(shared: Arc<Shared>, previous: i32) {
    let Some(addr) = u64::try_from(previous).ok().and_then(|p| shared.address(p)) else {
        return;
    };
    let probe = tokio::time::timeout(
        Duration::from_millis(500),
        tokio::net::TcpStream::connect(addr.as_str()),
    )
    .await;
    let refused = matches!(&probe, Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused);
    if !refused {
        return;
    }
    let image = shared.image.borrow().clone();
    let Some(broker) = image.brokers.get(&previous).filter(|b| !b.fenced) else {
        return;
    };
    tracing::warn!(broker = previous, %addr,
        "the previous controller leader's process is gone (connection refused): fencing its broker");
    let command = MetadataCommand::FenceBroker {
        id: previous,
        incarnation: Some(broker.incarnation_id.clone()),
    };
    if let Err(e) = shared.propose_local(command).await {
        tracing::warn!(broker = previous, "fencing failed: {e}");
    }
}

/// Proposes a preferred leader election for every partition [`preferred_elections`] names.
async fn balance_leaders(shared: &Shared, percent: u32) {
    let image = shared.image.borrow().clone();
    for (topic, partition) in preferred_elections(&image, percent) {
        tracing::info!(%topic, partition, "leader imbalance: electing the preferred replica");
        let command = MetadataCommand::ElectPreferredLeader {
            topic: topic.clone(),
            partition,
        };
        if let Err(e) = shared.propose_local(command).await {
            tracing::info!(%topic, partition, "preferred leader election refused: {e}");
        }
    }
}

/// Keeps the quorum gauges up to date until `shutdown` turns true.
pub(super) async fn export_metrics(
    shared: Arc<Shared>,
    metrics: QuorumMetrics,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut raft = shared.raft.metrics();
    let mut image = shared.image.clone();
    loop {
        {
            let m = raft.borrow_and_update();
            metrics.role.set(match m.state {
                ServerState::Leader => 2,
                ServerState::Candidate => 1,
                _ => 0,
            });
            metrics.leader_id.set(
                m.current_leader
                    .and_then(|l| i64::try_from(l).ok())
                    .unwrap_or(-1),
            );
            metrics
                .term
                .set(i64::try_from(m.current_term).unwrap_or(i64::MAX));
            let applied = m.last_applied.map_or(0, |l| l.index);
            metrics
                .applied_index
                .set(i64::try_from(applied).unwrap_or(i64::MAX));
        }
        {
            let img = image.borrow_and_update();
            metrics
                .fenced_brokers
                .set(i64::try_from(img.fenced_brokers()).unwrap_or(i64::MAX));
        }
        tokio::select! {
            r = raft.changed() => if r.is_err() { return },
            r = image.changed() => if r.is_err() { return },
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}
