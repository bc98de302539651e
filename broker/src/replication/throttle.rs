//! Replication throttles, as Kafka's replication quotas: a byte-rate bound per side of this
//! broker (`leader.replication.throttled.rate` for what it serves followers,
//! `follower.replication.throttled.rate` for what it fetches), applied only to the replicas a
//! topic lists (`leader.replication.throttled.replicas` / `follower.replication.throttled.replicas`,
//! `partition:broker,...` or `*`).
//!
//! Kafka's rules, kept here: every byte of a listed partition counts towards the measured rate,
//! in sync or not; a replica is held back only while it is out of sync (leader side: the
//! follower is not in the ISR; follower side: it has not reached the leader's high watermark),
//! listed, and the measured rate is above the bound. The rate is Kafka's `SimpleRate`: bytes of
//! the last `samples` windows over the time since the oldest window began (at least one window).
//!
//! [`RateQuota`] is pure (time is passed in). This module never reads or writes the log; the
//! fetch paths ask it whether to hold a partition back and tell it what they moved.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use samsa_proto::v1::ReplicaFetchPartitionReply;

use crate::metrics::Metrics;
use crate::topics::{Partition, TopicRegistry};

/// Leader-side throttled replicas (topic config).
pub const LEADER_REPLICAS: &str = "leader.replication.throttled.replicas";
/// Follower-side throttled replicas (topic config).
pub const FOLLOWER_REPLICAS: &str = "follower.replication.throttled.replicas";
/// Leader-side bound, bytes/s (dynamic broker config).
pub const LEADER_RATE: &str = "leader.replication.throttled.rate";
/// Follower-side bound, bytes/s (dynamic broker config).
pub const FOLLOWER_RATE: &str = "follower.replication.throttled.rate";
/// No bound (Kafka's default, Long.MAX_VALUE).
pub const UNLIMITED: i64 = i64::MAX;

/// Windows of the measured rate (Kafka's `replication.quota.window.num` default).
pub const SAMPLES: usize = 11;
/// Length of one window (Kafka's `replication.quota.window.size.seconds` default).
pub const WINDOW: Duration = Duration::from_secs(1);

/// A byte-rate bound measured over sliding windows. Time is milliseconds from any origin,
/// never decreasing.
#[derive(Debug, Clone)]
pub struct RateQuota {
    bound: i64,
    window_ms: u64,
    samples: usize,
    /// (start in ms, bytes) of each window, oldest first.
    windows: VecDeque<(u64, u64)>,
}

impl RateQuota {
    /// A quota of `bound` bytes/s over `samples` windows of `window`.
    pub fn new(bound: i64, window: Duration, samples: usize) -> RateQuota {
        RateQuota {
            bound,
            window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1),
            samples: samples.max(1),
            windows: VecDeque::new(),
        }
    }

    /// The bound, bytes/s.
    pub fn bound(&self) -> i64 {
        self.bound
    }

    /// Changes the bound; what was measured stays.
    pub fn set_bound(&mut self, bound: i64) {
        self.bound = bound;
    }

    fn purge(&mut self, now_ms: u64) {
        let horizon = self.window_ms.saturating_mul(self.samples as u64);
        while self
            .windows
            .front()
            .is_some_and(|(start, _)| now_ms.saturating_sub(*start) >= horizon)
        {
            self.windows.pop_front();
        }
    }

    /// Counts `bytes` at `now_ms` (even when over the bound).
    pub fn record(&mut self, now_ms: u64, bytes: u64) {
        self.purge(now_ms);
        let fresh = self
            .windows
            .back()
            .is_none_or(|(start, _)| now_ms.saturating_sub(*start) >= self.window_ms);
        if fresh {
            self.windows.push_back((now_ms, 0));
            while self.windows.len() > self.samples {
                self.windows.pop_front();
            }
        }
        if let Some((_, b)) = self.windows.back_mut() {
            *b = b.saturating_add(bytes);
        }
    }

    /// The measured rate at `now_ms`, bytes/s.
    pub fn rate(&mut self, now_ms: u64) -> f64 {
        self.purge(now_ms);
        let total: u64 = self.windows.iter().map(|(_, b)| *b).sum();
        let oldest = self.windows.front().map_or(now_ms, |(start, _)| *start);
        let elapsed = now_ms.saturating_sub(oldest).max(self.window_ms);
        total as f64 * 1000.0 / elapsed as f64
    }

    /// Whether the measured rate is above the bound (never with [`UNLIMITED`]).
    pub fn is_exceeded(&mut self, now_ms: u64) -> bool {
        self.bound != UNLIMITED && self.rate(now_ms) > self.bound as f64
    }
}

/// Checks a throttled-replicas value as Kafka does: `*`, or a comma-separated list of
/// `partition:broker` (blank entries allowed).
pub fn check_replicas(value: &str) -> Result<(), String> {
    if value.trim() == "*" {
        return Ok(());
    }
    let entry_ok = |e: &str| {
        let e = e.trim();
        e.is_empty()
            || e.split_once(':').is_some_and(|(p, b)| {
                !p.is_empty()
                    && !b.is_empty()
                    && p.bytes().all(|c| c.is_ascii_digit())
                    && b.bytes().all(|c| c.is_ascii_digit())
            })
    };
    if value.split(',').all(entry_ok) {
        Ok(())
    } else {
        Err(
            "must be the literal '*' or a list of replicas in the format \
             [partitionId]:[brokerId],[partitionId]:[brokerId],..."
                .into(),
        )
    }
}

/// Whether a throttled-replicas value lists `partition` on `broker` (`*`: every replica).
/// An entry that does not parse lists nothing.
pub fn lists(value: &str, partition: i32, broker: i32) -> bool {
    if value.trim() == "*" {
        return true;
    }
    value.split(',').any(|e| {
        e.trim().split_once(':').is_some_and(|(p, b)| {
            p.parse::<i32>().ok() == Some(partition) && b.parse::<i32>().ok() == Some(broker)
        })
    })
}

/// The bound in force for a rate key: this broker's own value, else the cluster-wide default,
/// else unlimited (as Kafka's BrokerConfigHandler).
pub fn effective_rate(
    own: &std::collections::BTreeMap<String, String>,
    defaults: &std::collections::BTreeMap<String, String>,
    key: &str,
) -> i64 {
    own.get(key)
        .or_else(|| defaults.get(key))
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|v| *v >= 0)
        .unwrap_or(UNLIMITED)
}

/// Which side of replication a quota bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Bytes this broker serves to followers.
    Leader,
    /// Bytes this broker fetches as a follower.
    Follower,
}

impl Side {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Side::Leader => "leader",
            Side::Follower => "follower",
        }
    }

    /// The topic config listing the throttled replicas of this side.
    pub fn replicas_key(self) -> &'static str {
        match self {
            Side::Leader => LEADER_REPLICAS,
            Side::Follower => FOLLOWER_REPLICAS,
        }
    }

    /// The broker config holding this side's bound.
    pub fn rate_key(self) -> &'static str {
        match self {
            Side::Leader => LEADER_RATE,
            Side::Follower => FOLLOWER_RATE,
        }
    }
}

/// One side's live quota, shared by every fetch of that side.
pub struct ReplicationQuota {
    side: Side,
    origin: Instant,
    quota: Mutex<RateQuota>,
    metrics: Arc<Metrics>,
}

impl ReplicationQuota {
    fn new(side: Side, metrics: Arc<Metrics>) -> ReplicationQuota {
        metrics
            .replication
            .throttle_limit
            .with_label_values(&[side.label()])
            .set(UNLIMITED);
        ReplicationQuota {
            side,
            origin: Instant::now(),
            quota: Mutex::new(RateQuota::new(UNLIMITED, WINDOW, SAMPLES)),
            metrics,
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The bound, bytes/s.
    pub fn bound(&self) -> i64 {
        self.quota.lock().bound()
    }

    /// Sets the bound, bytes/s.
    pub fn set_bound(&self, bound: i64) {
        let mut q = self.quota.lock();
        if q.bound() != bound {
            tracing::info!(
                side = self.side.label(),
                bound,
                "replication throttle changed"
            );
            q.set_bound(bound);
        }
        self.metrics
            .replication
            .throttle_limit
            .with_label_values(&[self.side.label()])
            .set(bound);
    }

    /// Whether the measured rate is above the bound now.
    pub fn is_exceeded(&self) -> bool {
        let now = self.now_ms();
        self.quota.lock().is_exceeded(now)
    }

    /// Counts bytes of a throttled replica.
    pub fn record(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let now = self.now_ms();
        let rate = {
            let mut q = self.quota.lock();
            q.record(now, bytes as u64);
            q.rate(now)
        };
        let label = [self.side.label()];
        self.metrics
            .replication
            .throttled_bytes
            .with_label_values(&label)
            .inc_by(bytes as u64);
        self.metrics
            .replication
            .throttled_rate
            .with_label_values(&label)
            .set(rate);
    }
}

/// Both sides of this broker.
pub struct ReplicationQuotas {
    /// What this broker serves to followers.
    pub leader: ReplicationQuota,
    /// What this broker fetches as a follower.
    pub follower: ReplicationQuota,
}

impl ReplicationQuotas {
    /// Unlimited on both sides.
    pub fn new(metrics: Arc<Metrics>) -> ReplicationQuotas {
        ReplicationQuotas {
            leader: ReplicationQuota::new(Side::Leader, metrics.clone()),
            follower: ReplicationQuota::new(Side::Follower, metrics),
        }
    }

    /// Sets both bounds from this broker's dynamic configs and the cluster-wide defaults.
    pub fn configure(
        &self,
        own: &std::collections::BTreeMap<String, String>,
        defaults: &std::collections::BTreeMap<String, String>,
    ) {
        self.leader
            .set_bound(effective_rate(own, defaults, LEADER_RATE));
        self.follower
            .set_bound(effective_rate(own, defaults, FOLLOWER_RATE));
    }
}

/// Whether `registry`'s topic lists `partition` of `topic` on `broker` for `side`.
pub fn is_throttled(
    registry: &TopicRegistry,
    side: Side,
    topic: &str,
    partition: i32,
    broker: i32,
) -> bool {
    registry.get(topic).is_some_and(|t| {
        t.configs
            .read()
            .get(side.replicas_key())
            .is_some_and(|v| lists(v, partition, broker))
    })
}

/// The leader's check for one partition of a follower's fetch: `Some(throttled)` with whether
/// its bytes count, and whether to serve nothing this time (listed, follower out of the ISR,
/// leader rate above the bound).
pub(super) fn leader_check(
    registry: &TopicRegistry,
    partition: &Partition,
    leader: i32,
    follower_in_isr: bool,
) -> (bool, bool) {
    let listed = is_throttled(
        registry,
        Side::Leader,
        &partition.topic,
        partition.index,
        leader,
    );
    let quotas = registry.replication_quotas();
    let hold = listed && !follower_in_isr && quotas.leader.is_exceeded();
    (listed, hold)
}

/// The follower side of one fetch loop: remembers each partition's lag behind the leader's
/// high watermark (as of the last reply) to tell in-sync replicas from the others.
pub(super) struct FollowerThrottle {
    registry: Arc<TopicRegistry>,
    node_id: i32,
    /// Leader high watermark minus the local log end, as of the last reply.
    lag: std::collections::HashMap<(Arc<str>, i32), i64>,
}

impl FollowerThrottle {
    pub(super) fn new(registry: Arc<TopicRegistry>, node_id: i32) -> FollowerThrottle {
        FollowerThrottle {
            registry,
            node_id,
            lag: std::collections::HashMap::new(),
        }
    }

    fn listed(&self, p: &Partition) -> bool {
        is_throttled(
            &self.registry,
            Side::Follower,
            &p.topic,
            p.index,
            self.node_id,
        )
    }

    /// Whether to leave `p` out of the next fetch: listed, not caught up with the leader's
    /// high watermark (or not known to be), follower rate above the bound.
    pub(super) fn holds_back(&self, p: &Partition) -> bool {
        let in_sync = self
            .lag
            .get(&(p.topic.clone(), p.index))
            .is_some_and(|lag| *lag <= 0);
        !in_sync && self.listed(p) && self.registry.replication_quotas().follower.is_exceeded()
    }

    /// After `r` was applied to `p`: counts its bytes when listed, remembers the lag.
    pub(super) fn fetched(&mut self, p: &Partition, r: &ReplicaFetchPartitionReply) {
        if r.error_code != 0 {
            return;
        }
        if !r.records.is_empty() && self.listed(p) {
            self.registry
                .replication_quotas()
                .follower
                .record(r.records.len());
        }
        if r.high_watermark >= 0 {
            let end = p.log.lock().log_end_offset();
            self.lag
                .insert((p.topic.clone(), p.index), (r.high_watermark - end).max(0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const MIB: u64 = 1 << 20;

    #[test]
    fn unlimited_is_never_exceeded() {
        let mut q = RateQuota::new(UNLIMITED, WINDOW, SAMPLES);
        q.record(0, u64::MAX / 2);
        assert!(!q.is_exceeded(0));
    }

    #[test]
    fn the_rate_is_bytes_over_the_windows_seen() {
        let mut q = RateQuota::new(MIB as i64, WINDOW, SAMPLES);
        // Within the first window the elapsed time counts as one whole window.
        q.record(0, MIB);
        assert_eq!(q.rate(10), MIB as f64);
        assert!(!q.is_exceeded(10), "at the bound is not above it");
        q.record(20, 1);
        assert!(q.is_exceeded(20));
        // Two seconds later 1 MiB + 1 byte over 2 s is under the bound again.
        assert!(!q.is_exceeded(2000));
        assert!((q.rate(2000) - (MIB + 1) as f64 / 2.0).abs() < 1.0);
    }

    #[test]
    fn held_back_at_the_bound_the_long_run_rate_converges() {
        // A fetcher that moves 256 KiB whenever the quota allows, polled every 10 ms for 30 s.
        let bound = MIB as i64;
        let mut q = RateQuota::new(bound, WINDOW, SAMPLES);
        let mut moved = 0u64;
        for now in (0..30_000u64).step_by(10) {
            if !q.is_exceeded(now) {
                q.record(now, 256 * 1024);
                moved += 256 * 1024;
            }
        }
        let rate = moved as f64 / 30.0;
        assert!(rate <= 1.1 * MIB as f64, "rate {rate}");
        assert!(rate >= 0.9 * MIB as f64, "rate {rate}");
    }

    #[test]
    fn old_windows_expire() {
        let mut q = RateQuota::new(100, WINDOW, 3);
        q.record(0, 10_000);
        assert!(q.is_exceeded(2_500));
        // After samples * window the burst is forgotten.
        assert!(!q.is_exceeded(3_000));
        assert_eq!(q.rate(3_000), 0.0);
        // A new bound applies to what is measured.
        q.record(3_000, 150);
        assert!(q.is_exceeded(3_000));
        q.set_bound(200);
        assert!(!q.is_exceeded(3_000));
    }

    #[test]
    fn windows_are_capped_at_samples() {
        let mut q = RateQuota::new(1, WINDOW, 2);
        for t in 0..10 {
            q.record(t * 1000, 1);
        }
        assert!(q.windows.len() <= 2);
        // Two windows of 1 byte, the oldest began 1 s ago.
        assert_eq!(q.rate(9_000), 2.0);
    }

    #[test]
    fn replica_lists_follow_kafkas_format() {
        for ok in [
            "*", " * ", "", "0:1", "0:1,1:2", "0:1, 1:2", "0:1,,2:3", "10:100",
        ] {
            assert!(check_replicas(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "0", "a:1", "0:b", "0:1:2", "*,0:1", "-1:2", "0:-1", ":1", "1:",
        ] {
            assert!(check_replicas(bad).is_err(), "{bad:?}");
        }
        assert!(lists("*", 3, 9));
        assert!(lists("0:1, 2:3", 2, 3));
        assert!(!lists("0:1,2:3", 2, 1));
        assert!(!lists("0:1", 1, 0));
        assert!(!lists("", 0, 0));
    }

    #[test]
    fn own_rate_before_the_default_before_unlimited() {
        let own = BTreeMap::from([(FOLLOWER_RATE.to_string(), "100".to_string())]);
        let defaults = BTreeMap::from([
            (FOLLOWER_RATE.to_string(), "200".to_string()),
            (LEADER_RATE.to_string(), "300".to_string()),
        ]);
        assert_eq!(effective_rate(&own, &defaults, FOLLOWER_RATE), 100);
        assert_eq!(effective_rate(&own, &defaults, LEADER_RATE), 300);
        assert_eq!(
            effective_rate(&BTreeMap::new(), &BTreeMap::new(), LEADER_RATE),
            UNLIMITED
        );
    }
}
