use super::*;
use proptest::prelude::*;

const S: i64 = 1_000;

fn tracker() -> GroupTracker {
    GroupTracker::new(GroupTrackerConfig::default())
}

/// Polls `g` on `t-0` every 10 s: `f(i)` gives (committed, log end) of poll `i`.
fn polls(
    t: &mut GroupTracker,
    g: &str,
    range: std::ops::Range<i64>,
    f: impl Fn(i64) -> (i64, i64),
) {
    for i in range {
        let (c, leo) = f(i);
        t.observe(i * 10 * S, g, &[("t", 0, c, leo)]);
    }
}

fn only(h: &GroupHealth) -> &PartitionHealth {
    assert_eq!(h.partitions.len(), 1, "{h:?}");
    &h.partitions[0]
}

#[test]
fn caught_up_group_is_ok_with_zero_lag() {
    let mut t = tracker();
    polls(&mut t, "g", 0..12, |i| (100 * i, 100 * i));
    let h = t.evaluate(110 * S, "g");
    assert_eq!(h.status, GroupStatus::Ok);
    assert_eq!(only(&h).current_lag, 0);
    assert_eq!(only(&h).lag_seconds, Some(0.0));
    assert_eq!((h.max_lag, h.max_lag_seconds), (0, Some(0.0)));
    assert!(h.complete);
}

#[test]
fn group_keeping_up_with_steady_lag_is_ok() {
    let mut t = tracker();
    // The log grows 100 per poll; the group stays 50 records (5 s) behind.
    polls(&mut t, "g", 0..12, |i| (950 + 100 * i, 1000 + 100 * i));
    let h = t.evaluate(110 * S, "g");
    assert_eq!(h.status, GroupStatus::Ok);
    let p = only(&h);
    assert_eq!((p.status, p.current_lag), (PartitionStatus::Ok, 50));
    assert_eq!(p.lag_seconds, Some(5.0));
}

#[test]
fn window_fills_up_to_n_and_is_then_complete() {
    let mut t = tracker();
    polls(&mut t, "g", 0..9, |i| (i, i + 1));
    assert!(!t.evaluate(80 * S, "g").complete);
    polls(&mut t, "g", 9..30, |i| (i, i + 1));
    assert!(t.evaluate(290 * S, "g").complete);
    let w = &t.groups["g"].partitions[&("t".to_owned(), 0)];
    assert_eq!(w.samples.len(), 10);
}

#[test]
fn fewer_than_two_samples_is_ok_whatever_the_lag() {
    let mut t = tracker();
    t.observe(0, "g", &[("t", 0, 0, 1_000_000)]);
    let h = t.evaluate(0, "g");
    assert_eq!(h.status, GroupStatus::Ok);
    assert_eq!(h.max_lag, 1_000_000);
}

/// Consumes in step until poll 4, then commits nothing while the log grows.
fn stops_after_poll_4(i: i64) -> (i64, i64) {
    (100 * i.min(4), 100 * i + 10)
}

#[test]
fn stopped_group_is_stop_once_the_window_has_slid_past_its_last_commit() {
    let mut t = tracker();
    // Window of 10 samples at 10 s spans 90 s; the last change was at 40 s.
    polls(&mut t, "g", 0..14, stops_after_poll_4);
    assert_eq!(
        t.evaluate(130 * S, "g").status,
        GroupStatus::Ok,
        "90 s without change is not > 90 s"
    );
    polls(&mut t, "g", 14..15, stops_after_poll_4);
    let h = t.evaluate(140 * S, "g");
    assert_eq!(h.status, GroupStatus::Err);
    assert_eq!(only(&h).status, PartitionStatus::Stop);
    assert_eq!(only(&h).committed, 400);
}

#[test]
fn stopped_partition_is_stop_when_evaluated_long_after_the_last_sample() {
    let mut t = tracker();
    polls(&mut t, "g", 0..3, |i| (100 * i, 100 * i + 50));
    // Span 20 s; nothing new for 60 s.
    assert_eq!(only(&t.evaluate(20 * S, "g")).status, PartitionStatus::Ok);
    assert_eq!(only(&t.evaluate(80 * S, "g")).status, PartitionStatus::Stop);
}

#[test]
fn stalled_group_with_members_is_stall() {
    let mut t = tracker();
    t.observe_members("g", true);
    polls(&mut t, "g", 0..15, stops_after_poll_4);
    let h = t.evaluate(140 * S, "g");
    assert_eq!(h.status, GroupStatus::Err);
    assert_eq!(only(&h).status, PartitionStatus::Stall);
    // Without members it is STOP again.
    t.observe_members("g", false);
    assert_eq!(
        only(&t.evaluate(140 * S, "g")).status,
        PartitionStatus::Stop
    );
}

#[test]
fn slow_committer_within_the_window_span_is_not_an_error() {
    let mut t = tracker();
    t.observe_members("g", true);
    // Commits every 60 s, polled every 10 s, keeping up on average: judged after every poll,
    // from the first partial window to well past a full one.
    for i in 0..30 {
        polls(&mut t, "g", i..i + 1, |i| (600 * (i / 6), 100 * i + 100));
        let h = t.evaluate(i * 10 * S, "g");
        assert_eq!(h.status, GroupStatus::Ok, "after poll {i}: {h:?}");
    }
}

#[test]
fn rewinding_group_is_rewind() {
    let mut t = tracker();
    let committed = [1000, 1100, 1200, 900, 1000];
    polls(&mut t, "g", 0..5, |i| {
        (committed[i as usize], 2000 + 100 * i)
    });
    let h = t.evaluate(40 * S, "g");
    assert_eq!(h.status, GroupStatus::Err);
    assert_eq!(only(&h).status, PartitionStatus::Rewind);
}

#[test]
fn rewind_with_zero_lag_in_the_window_is_ok() {
    let mut t = tracker();
    let committed = [1000, 2000, 900];
    polls(&mut t, "g", 0..3, |i| (committed[i as usize], 2000));
    assert_eq!(t.evaluate(20 * S, "g").status, GroupStatus::Ok);
}

#[test]
fn slowly_falling_behind_group_is_warn() {
    let mut t = tracker();
    // Consumes 50 per poll while 100 arrive: the lag grows by 50 every interval.
    polls(&mut t, "g", 0..10, |i| (50 * i, 100 + 100 * i));
    let h = t.evaluate(90 * S, "g");
    assert_eq!(h.status, GroupStatus::Warn);
    assert_eq!(only(&h).status, PartitionStatus::Warn);
    assert_eq!(h.max_lag, 100 + 450);
}

#[test]
fn lag_that_dips_once_is_not_warn() {
    let mut t = tracker();
    let lag = [10, 20, 30, 25, 40];
    polls(&mut t, "g", 0..5, |i| {
        (1000 * i, 1000 * i + lag[i as usize])
    });
    assert_eq!(t.evaluate(40 * S, "g").status, GroupStatus::Ok);
}

#[test]
fn group_status_is_the_worst_partition() {
    let mut t = tracker();
    for i in 0..15 {
        t.observe(
            i * 10 * S,
            "g",
            &[
                ("a", 0, 100 * i, 100 * i),
                ("b", 0, 50 * i, 100 + 100 * i),
                ("c", 0, 0, 10 + i),
            ],
        );
    }
    let h = t.evaluate(140 * S, "g");
    let st: Vec<_> = h.partitions.iter().map(|p| p.status).collect();
    assert_eq!(
        st,
        vec![
            PartitionStatus::Ok,
            PartitionStatus::Warn,
            PartitionStatus::Stop
        ]
    );
    assert_eq!(h.status, GroupStatus::Err);
}

#[test]
fn lag_seconds_interpolates_between_log_end_samples() {
    let mut table = VecDeque::new();
    for (o, at) in [(0, 0), (1000, 10 * S), (2000, 20 * S)] {
        record_log_end(&mut table, o, at, 64);
    }
    let at = |committed: i64| OffsetSample {
        committed,
        log_end: 2000,
        at_ms: 20 * S,
    };
    // The log end passed 500 halfway between 0 s and 10 s.
    assert_eq!(lag_seconds(&table, at(500), 20 * S), (Some(15.0), None));
    assert_eq!(lag_seconds(&table, at(1000), 20 * S), (Some(10.0), None));
    assert_eq!(lag_seconds(&table, at(1750), 30 * S), (Some(12.5), None));
    assert_eq!(lag_seconds(&table, at(2000), 30 * S), (Some(0.0), None));
}

#[test]
fn lag_seconds_uses_the_end_of_a_plateau() {
    let mut table = VecDeque::new();
    for (o, at) in [
        (0, 0),
        (1000, 10 * S),
        (1000, 20 * S),
        (1000, 30 * S),
        (2000, 40 * S),
    ] {
        record_log_end(&mut table, o, at, 64);
    }
    // The plateau keeps its two ends only.
    assert_eq!(
        table,
        VecDeque::from([(0, 0), (1000, 10 * S), (1000, 30 * S), (2000, 40 * S)])
    );
    let c = |committed| OffsetSample {
        committed,
        log_end: 2000,
        at_ms: 40 * S,
    };
    // The log end was still 1000 at 30 s.
    assert_eq!(lag_seconds(&table, c(1000), 40 * S).0, Some(10.0));
    // 500 was passed between 0 s and 10 s, not between 0 s and 30 s.
    assert_eq!(lag_seconds(&table, c(500), 40 * S).0, Some(35.0));
}

#[test]
fn lag_seconds_beyond_the_table_is_a_lower_bound() {
    let mut t = tracker();
    // First seen far behind: the table starts after the committed offset.
    polls(&mut t, "g", 0..4, |i| (100, 5000 + 10 * i));
    let h = t.evaluate(30 * S, "g");
    let p = only(&h);
    assert_eq!((p.lag_seconds, p.lag_seconds_at_least), (None, Some(30.0)));
    assert_eq!(p.lag_seconds_floor(), Some(30.0));
    // At the table's 1 record/s, the 4900 records before it are 4900 s more.
    assert_eq!(p.lag_seconds_estimate, Some(4930.0));
    assert_eq!(h.max_lag_seconds, Some(4930.0));
}

#[test]
fn log_end_table_is_capped() {
    let mut t = GroupTracker::new(GroupTrackerConfig {
        log_end_samples: 4,
        ..GroupTrackerConfig::default()
    });
    polls(&mut t, "g", 0..20, |i| (0, 100 * (i + 1)));
    let table = &t.log_end[&("t".to_owned(), 0)];
    assert_eq!(table.len(), 4);
    // Samples spread as the span grows: the oldest kept is older than the last four polls.
    let oldest = table.front().unwrap().1;
    assert!(oldest < 160 * S, "{table:?}");
    let p = t.evaluate(190 * S, "g").partitions[0].clone();
    assert_eq!(
        (p.lag_seconds, p.lag_seconds_at_least),
        (None, Some(((190 * S - oldest) / 1000) as f64))
    );
}

#[test]
fn log_end_table_restarts_after_truncation_and_merges_same_instant() {
    let mut table = VecDeque::new();
    record_log_end(&mut table, 100, S, 8);
    record_log_end(&mut table, 200, 2 * S, 8);
    record_log_end(&mut table, 150, 2 * S, 8); // same instant, another group's older read
    record_log_end(&mut table, 300, S / 2, 8); // out of order
    assert_eq!(table, VecDeque::from([(100, S), (200, 2 * S)]));
    // A new leader's high watermark a little behind: ignored, the history stays.
    record_log_end(&mut table, 180, 3 * S, 8);
    assert_eq!(table, VecDeque::from([(100, S), (200, 2 * S)]));
    record_log_end(&mut table, 10, 3 * S, 8); // topic recreated
    assert_eq!(table, VecDeque::from([(10, 3 * S)]));
}

#[test]
fn unchanged_offsets_are_sampled_at_the_minimum_interval_changes_always() {
    let mut t = tracker();
    let key = ("t".to_owned(), 0);
    t.observe(0, "g", &[("t", 0, 10, 20)]);
    t.observe(S, "g", &[("t", 0, 10, 21)]); // unchanged, 1 s later: not recorded
    t.observe(2 * S, "g", &[("t", 0, 11, 22)]); // changed: recorded
    t.observe(7 * S, "g", &[("t", 0, 11, 23)]); // unchanged, 5 s later: recorded
    t.observe(6 * S, "g", &[("t", 0, 5, 23)]); // older than the latest: ignored
    let w = &t.groups["g"].partitions[&key];
    let at: Vec<i64> = w.samples.iter().map(|s| s.at_ms).collect();
    assert_eq!(at, vec![0, 2 * S, 7 * S]);
    assert_eq!((w.last_seen.committed, w.changed_at_ms), (11, 2 * S));
}

#[test]
fn the_latest_observation_is_reported_even_when_not_recorded() {
    let mut t = tracker();
    t.observe(0, "g", &[("t", 0, 10, 20)]);
    t.observe(S, "g", &[("t", 0, 10, 25)]);
    let p = t.evaluate(S, "g").partitions[0].clone();
    assert_eq!((p.committed, p.log_end, p.current_lag), (10, 25, 15));
}

#[test]
fn no_commit_is_skipped() {
    let mut t = tracker();
    t.observe(0, "g", &[("t", 0, -1, 20), ("t", 1, 5, 20)]);
    let h = t.evaluate(0, "g");
    assert_eq!(h.partitions.len(), 1);
    assert_eq!(h.partitions[0].partition, 1);
}

#[test]
fn vanished_partitions_and_groups_are_pruned() {
    let mut t = tracker();
    t.observe(0, "g1", &[("a", 0, 1, 2), ("a", 1, 1, 2)]);
    t.observe(0, "g2", &[(String::from("b"), 0, 1, 2)]);
    t.observe(10 * S, "g1", &[("a", 0, 2, 3)]);
    assert_eq!(t.evaluate(10 * S, "g1").partitions.len(), 1);
    t.retain_groups(|g| g == "g1");
    assert_eq!(t.groups().collect::<Vec<_>>(), vec!["g1"]);
    assert_eq!(t.evaluate(10 * S, "g2").status, GroupStatus::NotFound);
    let tables: Vec<_> = t.log_end.keys().cloned().collect();
    assert_eq!(tables, vec![("a".to_owned(), 0)]);
}

#[test]
fn unknown_group_is_not_found() {
    let h = tracker().evaluate(0, "nope");
    assert_eq!(h.status, GroupStatus::NotFound);
    assert!(h.partitions.is_empty() && !h.complete);
}

#[test]
fn window_and_table_sizes_are_raised_to_two() {
    let t = GroupTracker::new(GroupTrackerConfig {
        window: 0,
        min_sample_interval_ms: 0,
        log_end_samples: 1,
    });
    assert_eq!((t.config().window, t.config().log_end_samples), (2, 2));
}

fn health(group: &str, status: GroupStatus, parts: Vec<PartitionHealth>) -> GroupHealth {
    GroupHealth {
        group: group.into(),
        status,
        max_lag: parts.iter().map(|p| p.current_lag).max().unwrap_or(0),
        max_lag_seconds: parts
            .iter()
            .filter_map(|p| p.lag_seconds_floor())
            .max_by(f64::total_cmp),
        complete: true,
        partitions: parts,
    }
}

fn ph(
    partition: i32,
    status: PartitionStatus,
    lag: i64,
    secs: Option<f64>,
    at_least: Option<f64>,
) -> PartitionHealth {
    PartitionHealth {
        topic: "t".into(),
        partition,
        status,
        current_lag: lag,
        lag_seconds: secs,
        lag_seconds_at_least: at_least,
        lag_seconds_estimate: None,
        committed: 0,
        log_end: lag,
    }
}

#[test]
fn lagging_groups_names_the_worst_partition() {
    let evals = vec![
        health(
            "g1",
            GroupStatus::Err,
            vec![
                ph(1, PartitionStatus::Ok, 10, Some(500.0), None),
                ph(3, PartitionStatus::Stop, 1234, Some(95.4), None),
            ],
        ),
        health(
            "g2",
            GroupStatus::Warn,
            vec![ph(0, PartitionStatus::Warn, 10, Some(30.0), None)],
        ),
        health(
            "g3",
            GroupStatus::Ok,
            vec![ph(0, PartitionStatus::Ok, 99, None, Some(600.0))],
        ),
        health("g4", GroupStatus::NotFound, vec![]),
    ];
    let out = lagging_groups(&evals, 60.0, None);
    assert_eq!(
        out,
        vec![
            (
                "g1".to_owned(),
                "group g1: ERR (partition t-3 STOP, lag 1234 records, 95 s, over 60 s)".to_owned()
            ),
            (
                "g3".to_owned(),
                "group g3: OK (partition t-0 OK, lag 99 records, at least 600 s, over 60 s)"
                    .to_owned()
            ),
        ]
    );
    // Under a high limit only the error holds, and `only` filters.
    let out = lagging_groups(&evals, 1000.0, None);
    assert_eq!(
        out,
        vec![(
            "g1".to_owned(),
            "group g1: ERR (partition t-3 STOP, lag 1234 records, 95 s)".to_owned()
        )]
    );
    let only = vec!["g2".to_owned(), "g3".to_owned(), "g4".to_owned()];
    let out = lagging_groups(&evals, 60.0, Some(&only));
    assert_eq!(
        out.iter().map(|(g, _)| g.as_str()).collect::<Vec<_>>(),
        vec!["g3"]
    );
}

#[test]
fn lagging_groups_from_a_tracker() {
    let mut t = tracker();
    polls(&mut t, "g", 0..15, stops_after_poll_4);
    let out = lagging_groups(&t.evaluate_all(140 * S), 3600.0, None);
    assert_eq!(out.len(), 1);
    assert!(
        out[0]
            .1
            .starts_with("group g: ERR (partition t-0 STOP, lag 1010 records, "),
        "{out:?}"
    );
}

proptest! {
    #[test]
    fn a_group_always_at_the_log_end_is_ok(steps in prop::collection::vec((1i64..60, 0i64..1000), 1..40)) {
        let mut t = tracker();
        let (mut now, mut leo) = (0, 0);
        for (dt, grow) in steps {
            now += dt * S;
            leo += grow;
            t.observe(now, "g", &[("t", 0, leo, leo)]);
            let h = t.evaluate(now, "g");
            prop_assert_eq!(h.status, GroupStatus::Ok);
            prop_assert_eq!(h.max_lag_seconds, Some(0.0));
        }
    }

    #[test]
    fn sizes_stay_bounded_and_lag_seconds_sane(
        steps in prop::collection::vec((0i64..40, -5i64..300, 0i64..300), 1..80),
        window in 2usize..12,
        cap in 2usize..12,
    ) {
        let mut t = GroupTracker::new(GroupTrackerConfig { window, min_sample_interval_ms: 5_000, log_end_samples: cap });
        let (mut now, mut leo, mut committed) = (0i64, 0i64, 0i64);
        for (dt, back_or_forward, grow) in steps {
            now += dt * S;
            leo += grow;
            committed = (committed + back_or_forward).clamp(0, leo);
            t.observe(now, "g", &[("t", 0, committed, leo)]);
            let w = &t.groups["g"].partitions[&("t".to_owned(), 0)];
            prop_assert!(w.samples.len() <= window);
            let table = &t.log_end[&("t".to_owned(), 0)];
            prop_assert!(table.len() <= cap);
            prop_assert!(table.iter().zip(table.iter().skip(1)).all(|(a, b)| a.0 <= b.0 && a.1 < b.1));
            let p = t.evaluate(now, "g").partitions[0].clone();
            if let Some(s) = p.lag_seconds_floor() {
                prop_assert!(s >= 0.0 && s <= now as f64 / 1000.0);
            }
            prop_assert_eq!(p.current_lag == 0, p.lag_seconds == Some(0.0));
        }
    }

    #[test]
    fn lag_seconds_do_not_shrink_as_the_commit_falls_behind(
        growth in prop::collection::vec(0i64..500, 2..30),
        a in 0i64..10_000,
        b in 0i64..10_000,
    ) {
        let mut table = VecDeque::new();
        let mut leo = 0;
        for (i, g) in growth.iter().enumerate() {
            leo += g;
            record_log_end(&mut table, leo, i as i64 * 10 * S, 64);
        }
        let now = growth.len() as i64 * 10 * S;
        let (lo, hi) = (a.min(b).min(leo), a.max(b).min(leo));
        let at = |c| lag_seconds(&table, OffsetSample { committed: c, log_end: leo, at_ms: now }, now);
        let (sl, sh) = (at(lo), at(hi));
        let floor = |x: (Option<f64>, Option<f64>)| x.0.or(x.1).unwrap_or(0.0);
        prop_assert!(floor(sl) + 1e-9 >= floor(sh), "{:?} < {:?}", sl, sh);
    }
}

#[test]
fn a_consumer_stopped_before_the_watch_began_is_judged_by_the_produce_rate() {
    // 100 records/s for 20 s of watching; the group committed 1000 records before the first
    // log-end sample: about 10 s before the watch began, so about 30 s behind at its end.
    let mut t = tracker();
    for i in 0..=20 {
        t.observe(i * S, "g", &[("t", 0, 500, 1500 + 100 * i)]);
    }
    let p = t.evaluate(20 * S, "g").partitions[0].clone();
    assert_eq!(p.lag_seconds, None);
    assert_eq!(p.lag_seconds_at_least, Some(20.0));
    let e = p.lag_seconds_estimate.unwrap();
    assert!((e - 30.0).abs() < 0.01, "{e}");
    assert_eq!(p.lag_seconds_judged(), Some(e));
    let lagging = lagging_groups(&[t.evaluate(20 * S, "g")], 25.0, None);
    assert_eq!(lagging.len(), 1, "{lagging:?}");
    assert!(lagging[0].1.contains("about 30 s"), "{}", lagging[0].1);
}

#[test]
fn a_burst_of_polls_keeps_the_log_end_history() {
    // Polls every 100 ms for a minute: the table still reaches back to the start.
    let mut table = VecDeque::new();
    for i in 0..600 {
        record_log_end(&mut table, 1000 + 10 * i, i * 100, 64);
    }
    assert!(table.len() <= 64);
    assert_eq!(table.front(), Some(&(1000, 0)));
    assert!(table.back().unwrap().1 >= 58_000, "{table:?}");
}
