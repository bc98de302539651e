//! Consumer-group health, judged the way Burrow judges it: a sliding window of committed-offset
//! samples per (group, topic, partition) and a short table of log-end-offset samples per
//! partition to turn an offset lag into seconds. Plain in-memory state fed by the caller's polls
//! (OffsetFetch + ListOffsets, converted to plain numbers); it never calls a broker, never
//! sleeps and never reads a clock: every time is an argument.
//!
//! Sampling: Burrow records each commit as it arrives; the operator polls instead (every
//! 10–30 s), so [`GroupTracker::observe`] records a sample when the committed offset changed or
//! when the last recorded sample is at least [`GroupTrackerConfig::min_sample_interval_ms`]
//! old, and keeps the last [`GroupTrackerConfig::window`] samples. A group that commits
//! nothing still gets samples, so its window slides past its last commit and it shows as STOP.
//!
//! Polling cannot see a consumer that keeps committing the same offset (OffsetFetch carries no
//! commit time), which is what tells Burrow's STALL from STOP. Liveness stands in for it: when
//! the caller reports that the group has members ([`GroupTracker::observe_members`]), a
//! partition that does not move is STALL (alive but stuck), otherwise STOP (nobody consuming).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

/// Tuning of a [`GroupTracker`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupTrackerConfig {
    /// Committed-offset samples kept per (group, topic, partition); at least 2. Burrow's
    /// default is 10. The window's span should exceed the consumers' longest commit interval,
    /// or a consumer that commits rarely shows as STOP between commits.
    pub window: usize,
    /// An unchanged committed offset is recorded again only once the last recorded sample is
    /// this old (ms), so a burst of reconciles does not fill the window with one instant.
    pub min_sample_interval_ms: i64,
    /// Log-end-offset samples kept per partition for lag in seconds; at least 2. Older lag
    /// than the table reaches is reported as a lower bound.
    pub log_end_samples: usize,
}

impl Default for GroupTrackerConfig {
    fn default() -> Self {
        Self {
            window: 10,
            min_sample_interval_ms: 5_000,
            log_end_samples: 64,
        }
    }
}

/// One committed-offset observation of a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffsetSample {
    /// The group's committed offset.
    pub committed: i64,
    /// The partition's log end offset at the time of the observation.
    pub log_end: i64,
    /// Observation time, ms since the epoch.
    pub at_ms: i64,
}

impl OffsetSample {
    /// Records between the committed offset and the log end; never negative (a commit read
    /// after the log end was fetched may pass it).
    pub fn lag(&self) -> i64 {
        (self.log_end - self.committed).max(0)
    }
}

/// The status of one partition of a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PartitionStatus {
    /// Caught up at some point of the window, or keeping pace.
    Ok,
    /// Moving, but the lag grew in every interval of the window.
    Warn,
    /// The committed offset has not changed, with lag, for longer than the window spans, and
    /// the group is not known to have members: nobody is consuming.
    Stop,
    /// The same as `Stop` (the offset fixed across the window, the lag fixed or growing) while
    /// the group has members: the consumer is alive but stuck.
    Stall,
    /// The committed offset went backwards inside the window.
    Rewind,
}

impl PartitionStatus {
    /// Whether the status makes the group ERR.
    pub fn is_error(self) -> bool {
        matches!(self, Self::Stop | Self::Stall | Self::Rewind)
    }
}

impl fmt::Display for PartitionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ok => "OK",
            Self::Warn => "WARN",
            Self::Stop => "STOP",
            Self::Stall => "STALL",
            Self::Rewind => "REWIND",
        })
    }
}

/// The status of a group: the worst of its partitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupStatus {
    /// No partition is WARN or worse.
    Ok,
    /// Some partition is WARN, none is an error.
    Warn,
    /// Some partition is STOP, STALL or REWIND.
    Err,
    /// The tracker knows nothing of the group.
    NotFound,
}

impl fmt::Display for GroupStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ok => "OK",
            Self::Warn => "WARN",
            Self::Err => "ERR",
            Self::NotFound => "NOTFOUND",
        })
    }
}

/// The evaluation of one partition of a group.
#[derive(Clone, Debug, PartialEq)]
pub struct PartitionHealth {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Burrow's verdict over the window. With fewer than 2 samples there is no window to judge
    /// yet and the partition is `Ok` whatever its lag (the lag fields still tell it).
    pub status: PartitionStatus,
    /// Lag in records at the latest observation.
    pub current_lag: i64,
    /// Lag in seconds: how long ago the log end offset was last at or below the committed
    /// offset, interpolated between log-end samples; `Some(0.0)` at zero lag. `None` when the
    /// log-end table does not reach back that far (see `lag_seconds_at_least`) or is empty.
    pub lag_seconds: Option<f64>,
    /// Set only when `lag_seconds` is `None` for want of history: the age of the oldest
    /// log-end sample, a lower bound of the lag in seconds.
    pub lag_seconds_at_least: Option<f64>,
    /// Set only when `lag_seconds` is `None` for want of history: the lag in seconds the
    /// produce rate the table shows would give (the lag in records over that rate, from the
    /// oldest sample back). An estimate, not a bound: a consumer stopped long before the
    /// operator began watching shows its real age here, not the age of the watch.
    pub lag_seconds_estimate: Option<f64>,
    /// Committed offset at the latest observation.
    pub committed: i64,
    /// Log end offset at the latest observation.
    pub log_end: i64,
}

impl PartitionHealth {
    /// The lag in seconds if known, else its lower bound: never an overestimate.
    pub fn lag_seconds_floor(&self) -> Option<f64> {
        self.lag_seconds.or(self.lag_seconds_at_least)
    }

    /// The lag in seconds a gate judges by: the known value, else the larger of the lower
    /// bound and the estimate from the produce rate.
    pub fn lag_seconds_judged(&self) -> Option<f64> {
        self.lag_seconds.or(
            match (self.lag_seconds_at_least, self.lag_seconds_estimate) {
                (Some(a), Some(e)) => Some(a.max(e)),
                (a, e) => a.or(e),
            },
        )
    }
}

/// The evaluation of one group.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupHealth {
    /// Group id.
    pub group: String,
    /// The worst of the partitions (`NotFound` for an unknown group).
    pub status: GroupStatus,
    /// Every tracked partition, ordered by topic then partition.
    pub partitions: Vec<PartitionHealth>,
    /// The largest `current_lag` (0 without partitions).
    pub max_lag: i64,
    /// The largest [`PartitionHealth::lag_seconds_judged`]: the known value, else the larger of
    /// the lower bound and the estimate from the produce rate; `None` when no partition has
    /// any.
    pub max_lag_seconds: Option<f64>,
    /// Whether every partition's window is full (and there is at least one partition).
    pub complete: bool,
}

type PartitionKey = (String, i32);

/// One poll of consumer groups: per group, (topic, partition, committed, log end) of its
/// committed partitions.
pub type PolledGroups = Vec<(String, Vec<(String, i32, i64, i64)>)>;

#[derive(Clone, Debug)]
struct PartitionWindow {
    /// Recorded samples, oldest first, at most `window`.
    samples: VecDeque<OffsetSample>,
    /// The latest observation, recorded or not.
    last_seen: OffsetSample,
    /// When the committed offset was first seen at its current value.
    changed_at_ms: i64,
}

#[derive(Clone, Debug, Default)]
struct GroupEntry {
    partitions: BTreeMap<PartitionKey, PartitionWindow>,
    has_members: Option<bool>,
}

/// Per-group windows of committed offsets and per-partition log-end tables; see the module
/// documentation for the sampling and the rules.
#[derive(Clone, Debug, Default)]
pub struct GroupTracker {
    config: GroupTrackerConfig,
    groups: BTreeMap<String, GroupEntry>,
    /// (log end offset, time ms), oldest first, offsets non-decreasing.
    log_end: BTreeMap<PartitionKey, VecDeque<(i64, i64)>>,
}

impl GroupTracker {
    /// An empty tracker; `window` and `log_end_samples` below 2 are raised to 2.
    pub fn new(config: GroupTrackerConfig) -> Self {
        Self {
            config: GroupTrackerConfig {
                window: config.window.max(2),
                log_end_samples: config.log_end_samples.max(2),
                ..config
            },
            groups: BTreeMap::new(),
            log_end: BTreeMap::new(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> GroupTrackerConfig {
        self.config
    }

    /// Tracked group ids, in order.
    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.groups.keys().map(String::as_str)
    }

    /// Records one poll of `group`: `(topic, partition, committed offset, log end offset)` for
    /// every partition the group has committed. The slice is the group's complete set:
    /// partitions missing from it are forgotten. A negative committed offset (no commit) is
    /// skipped. An observation not newer than the partition's latest one is ignored. Every log
    /// end offset also feeds that partition's log-end table.
    pub fn observe<T: AsRef<str>>(
        &mut self,
        now_ms: i64,
        group: &str,
        offsets: &[(T, i32, i64, i64)],
    ) {
        let cfg = self.config;
        let entry = self.groups.entry(group.to_owned()).or_default();
        let mut seen: BTreeSet<PartitionKey> = BTreeSet::new();
        for (topic, partition, committed, log_end) in offsets {
            if *committed < 0 {
                continue;
            }
            let key = (topic.as_ref().to_owned(), *partition);
            let table = self.log_end.entry(key.clone()).or_default();
            record_log_end(table, *log_end, now_ms, cfg.log_end_samples);
            seen.insert(key.clone());
            let s = OffsetSample {
                committed: *committed,
                log_end: *log_end,
                at_ms: now_ms,
            };
            match entry.partitions.get_mut(&key) {
                None => {
                    entry.partitions.insert(
                        key,
                        PartitionWindow {
                            samples: VecDeque::from([s]),
                            last_seen: s,
                            changed_at_ms: now_ms,
                        },
                    );
                }
                Some(w) => w.record(s, &cfg),
            }
        }
        entry.partitions.retain(|k, _| seen.contains(k));
    }

    /// Records whether `group` has members (from ListGroups/DescribeGroups): with members, a
    /// partition that does not move is STALL rather than STOP. Unknown groups are added.
    pub fn observe_members(&mut self, group: &str, has_members: bool) {
        self.groups.entry(group.to_owned()).or_default().has_members = Some(has_members);
    }

    /// Keeps the groups for which `keep` is true and forgets the others, then drops the
    /// log-end tables no remaining group reads.
    pub fn retain_groups(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.groups.retain(|g, _| keep(g));
        let used: BTreeSet<&PartitionKey> = self
            .groups
            .values()
            .flat_map(|e| e.partitions.keys())
            .collect();
        self.log_end.retain(|k, _| used.contains(k));
    }

    /// Judges `group` at `now_ms`.
    pub fn evaluate(&self, now_ms: i64, group: &str) -> GroupHealth {
        let Some(entry) = self.groups.get(group) else {
            return GroupHealth {
                group: group.to_owned(),
                status: GroupStatus::NotFound,
                partitions: Vec::new(),
                max_lag: 0,
                max_lag_seconds: None,
                complete: false,
            };
        };
        let partitions: Vec<PartitionHealth> = entry
            .partitions
            .iter()
            .map(|((topic, partition), w)| {
                let last = w.last_seen;
                let table = self.log_end.get(&(topic.clone(), *partition));
                let (lag_seconds, lag_seconds_at_least) = match table {
                    Some(t) => lag_seconds(t, last, now_ms),
                    None if last.lag() == 0 => (Some(0.0), None),
                    None => (None, None),
                };
                let lag_seconds_estimate = match (lag_seconds, table) {
                    (None, Some(t)) => estimate_lag_seconds(t, last, now_ms),
                    _ => None,
                };
                PartitionHealth {
                    topic: topic.clone(),
                    partition: *partition,
                    status: w.status(now_ms, entry.has_members),
                    current_lag: last.lag(),
                    lag_seconds,
                    lag_seconds_at_least,
                    lag_seconds_estimate,
                    committed: last.committed,
                    log_end: last.log_end,
                }
            })
            .collect();
        let status = if partitions.iter().any(|p| p.status.is_error()) {
            GroupStatus::Err
        } else if partitions.iter().any(|p| p.status == PartitionStatus::Warn) {
            GroupStatus::Warn
        } else {
            GroupStatus::Ok
        };
        GroupHealth {
            group: group.to_owned(),
            status,
            max_lag: partitions.iter().map(|p| p.current_lag).max().unwrap_or(0),
            max_lag_seconds: partitions
                .iter()
                .filter_map(PartitionHealth::lag_seconds_judged)
                .max_by(f64::total_cmp),
            complete: !entry.partitions.is_empty()
                && entry
                    .partitions
                    .values()
                    .all(|w| w.samples.len() >= self.config.window),
            partitions,
        }
    }

    /// Judges every tracked group at `now_ms`, in group order.
    pub fn evaluate_all(&self, now_ms: i64) -> Vec<GroupHealth> {
        self.groups
            .keys()
            .map(|g| self.evaluate(now_ms, g))
            .collect()
    }
}

impl PartitionWindow {
    fn record(&mut self, s: OffsetSample, cfg: &GroupTrackerConfig) {
        if s.at_ms <= self.last_seen.at_ms {
            return;
        }
        if s.committed != self.last_seen.committed {
            self.changed_at_ms = s.at_ms;
        }
        let due = match self.samples.back() {
            Some(b) => {
                b.committed != s.committed || s.at_ms - b.at_ms >= cfg.min_sample_interval_ms
            }
            None => true,
        };
        if due {
            self.samples.push_back(s);
            while self.samples.len() > cfg.window {
                self.samples.pop_front();
            }
        }
        self.last_seen = s;
    }

    /// Burrow's rules over the window, in order.
    fn status(&self, now_ms: i64, has_members: Option<bool>) -> PartitionStatus {
        let (Some(first), Some(last)) = (self.samples.front(), self.samples.back()) else {
            return PartitionStatus::Ok;
        };
        if self.samples.len() < 2 {
            return PartitionStatus::Ok;
        }
        // 1. Caught up at any point: OK.
        if self.last_seen.lag() == 0 || self.samples.iter().any(|s| s.lag() == 0) {
            return PartitionStatus::Ok;
        }
        let pairs = || self.samples.iter().zip(self.samples.iter().skip(1));
        // 2. The committed offset went backwards.
        if pairs().any(|(a, b)| b.committed < a.committed) {
            return PartitionStatus::Rewind;
        }
        // 3./4. No change of the committed offset for longer than the window spans, with lag.
        // Polling cannot see same-offset commits, so STALL (alive but stuck) is told from STOP
        // by membership, and needs the offset fixed across the window with a lag that does
        // not shrink; without that time condition a consumer that commits less often than we
        // poll would be flagged between two of its commits.
        if now_ms - self.changed_at_ms > last.at_ms - first.at_ms {
            let stuck = pairs().all(|(a, b)| b.committed == a.committed && b.lag() >= a.lag());
            return if has_members == Some(true) && stuck {
                PartitionStatus::Stall
            } else {
                PartitionStatus::Stop
            };
        }
        // 5. Moving, but the lag grew in every interval.
        if last.committed > first.committed && pairs().all(|(a, b)| b.lag() > a.lag()) {
            return PartitionStatus::Warn;
        }
        PartitionStatus::Ok
    }
}

/// The smallest time between two log-end samples kept.
const LOG_END_MIN_SPACING_MS: i64 = 1_000;

/// Appends a log-end sample: same instant → keep the larger offset; older than the last →
/// ignored; lower than the last but not below the table's oldest → ignored (a new leader's
/// high watermark catching up); below the oldest → the log was truncated or recreated, the
/// table restarts; a plateau
/// keeps only its first and last sample; the oldest samples go beyond `cap`.
fn record_log_end(table: &mut VecDeque<(i64, i64)>, offset: i64, at_ms: i64, cap: usize) {
    if let Some(back) = table.back_mut() {
        if at_ms < back.1 {
            return;
        }
        if at_ms == back.1 {
            back.0 = back.0.max(offset);
            return;
        }
        if offset < back.0 {
            // A lower log end than the last seen: a new partition leader whose high watermark
            // has not caught up yet (brief, and not news), or a truncated or recreated topic.
            // Only an offset below everything the table holds starts it over; anything else is
            // ignored, so a leader change cannot wipe the history that lag in seconds reads.
            if table.front().is_some_and(|f| offset < f.0) {
                table.clear();
            } else {
                return;
            }
        }
    }
    // Samples at least a second apart, and further apart as the table's span grows, so a
    // burst of polls cannot shrink the history the cap leaves to a few seconds.
    if let (Some(front), Some(back)) = (table.front(), table.back()) {
        let half = i64::try_from(cap / 2).unwrap_or(i64::MAX).max(1);
        let spacing = ((back.1 - front.1) / half).max(LOG_END_MIN_SPACING_MS);
        if table.len() >= 2 && at_ms - back.1 < spacing && offset != back.0 {
            return;
        }
    }
    let n = table.len();
    if n >= 2 && table[n - 1].0 == offset && table[n - 2].0 == offset {
        table[n - 1].1 = at_ms;
        return;
    }
    table.push_back((offset, at_ms));
    while table.len() > cap {
        table.pop_front();
    }
}

/// The lag in seconds of `last` extrapolated from the produce rate over the log-end table,
/// for a committed offset older than the table: the oldest sample's age plus the records
/// between the committed offset and that sample at the table's rate. `None` without a rate.
fn estimate_lag_seconds(
    table: &VecDeque<(i64, i64)>,
    last: OffsetSample,
    now_ms: i64,
) -> Option<f64> {
    let (&(o0, t0), &(o1, t1)) = (table.front()?, table.back()?);
    if o1 <= o0 || t1 <= t0 || last.committed >= o0 {
        return None;
    }
    let per_ms = (o1 - o0) as f64 / (t1 - t0) as f64;
    let before = (o0 - last.committed) as f64 / per_ms;
    Some(((now_ms - t0) as f64 + before) / 1000.0)
}

/// (lag seconds, lower bound) of the latest observation `last`, from the log-end table.
fn lag_seconds(
    table: &VecDeque<(i64, i64)>,
    last: OffsetSample,
    now_ms: i64,
) -> (Option<f64>, Option<f64>) {
    if last.lag() == 0 {
        return (Some(0.0), None);
    }
    let secs = |t: f64| ((now_ms as f64 - t) / 1000.0).max(0.0);
    let c = last.committed;
    // Offsets are non-decreasing: the samples at or below `c` come first.
    let at_or_below = table.partition_point(|(o, _)| *o <= c);
    match at_or_below {
        0 => (None, table.front().map(|(_, t)| secs(*t as f64))),
        i => {
            let (o0, t0) = table[i - 1];
            let crossed = match table.get(i) {
                // o1 > c >= o0: the log end passed `c` between the two samples.
                Some(&(o1, t1)) => {
                    t0 as f64 + (c - o0) as f64 / (o1 - o0) as f64 * (t1 - t0) as f64
                }
                None => t0 as f64,
            };
            (Some(secs(crossed)), None)
        }
    }
}

/// The groups a gate should wait for: ERR, or lag (in seconds, or its lower bound) above
/// `max_lag_seconds`. WARN alone does not hold a gate while the lag stays within the limit,
/// and an unknown group (`NotFound`) never does. `only` restricts the check to those groups.
/// Each entry is `(group, reason)`, the reason naming the worst partition, e.g.
/// `group g1: ERR (partition t-3 STOP, lag 1234 records, 95 s)`.
pub fn lagging_groups(
    evaluations: &[GroupHealth],
    max_lag_seconds: f64,
    only: Option<&[String]>,
) -> Vec<(String, String)> {
    evaluations
        .iter()
        .filter(|g| only.is_none_or(|o| o.contains(&g.group)))
        .filter(|g| g.status != GroupStatus::NotFound)
        .filter_map(|g| {
            let err = g.status == GroupStatus::Err;
            let over = g.max_lag_seconds.is_some_and(|s| s > max_lag_seconds);
            if !err && !over {
                return None;
            }
            let secs = |p: &PartitionHealth| p.lag_seconds_judged().unwrap_or(0.0);
            let worst = g.partitions.iter().max_by(|a, b| {
                let severity = if err {
                    a.status.cmp(&b.status)
                } else {
                    std::cmp::Ordering::Equal
                };
                severity
                    .then(secs(a).total_cmp(&secs(b)))
                    .then(a.current_lag.cmp(&b.current_lag))
            });
            let detail = match worst {
                Some(p) => {
                    let age = match (p.lag_seconds, p.lag_seconds_at_least) {
                        (Some(s), _) => format!("{s:.0} s"),
                        (None, Some(s)) if p.lag_seconds_estimate.is_some_and(|e| e > s) => {
                            format!(
                                "about {:.0} s at the current produce rate",
                                p.lag_seconds_estimate.unwrap_or(s)
                            )
                        }
                        (None, Some(s)) => format!("at least {s:.0} s"),
                        (None, None) => "age unknown".to_owned(),
                    };
                    let limit = if over {
                        format!(", over {max_lag_seconds:.0} s")
                    } else {
                        String::new()
                    };
                    format!(
                        " (partition {}-{} {}, lag {} records, {age}{limit})",
                        p.topic, p.partition, p.status, p.current_lag
                    )
                }
                None => String::new(),
            };
            Some((
                g.group.clone(),
                format!("group {}: {}{detail}", g.group, g.status),
            ))
        })
        .collect()
}

#[cfg(test)]
#[path = "groups_tests.rs"]
mod tests;
