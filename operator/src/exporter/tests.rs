use super::*;
use crate::health::PartitionHealth;

fn part(
    topic: &str,
    partition: i32,
    leader: i32,
    replicas: &[i32],
    isr: &[i32],
) -> PartitionSnapshot {
    PartitionSnapshot {
        topic: topic.into(),
        partition,
        leader,
        replicas: replicas.to_vec(),
        isr: isr.to_vec(),
        newest: Some(100),
        oldest: Some(10),
        min_isr: 2,
    }
}

fn snapshot() -> Snapshot {
    Snapshot {
        brokers: 3,
        partitions: vec![
            part("t", 0, 1, &[1, 2, 3], &[1, 2, 3]),
            part("t", 1, 3, &[2, 3, 1], &[3, 1]),
            PartitionSnapshot {
                newest: None,
                oldest: None,
                ..part("t", 2, -1, &[3, 1, 2], &[])
            },
            part("u", 0, 2, &[2, 1], &[2]),
        ],
        groups: vec![GroupSnapshot {
            group: "g".into(),
            members: Some(2),
            committed: BTreeMap::from([
                (("t".to_string(), 0), 40),
                (("t".to_string(), 1), 100),
                (("t".to_string(), 2), 7),
            ]),
        }],
        quorum: Some(QuorumSnapshot {
            leader: 2,
            high_watermark: 500,
            voters: vec![(1, 500), (2, 500), (3, 480)],
        }),
    }
}

fn exposition(registry: &Registry) -> Vec<String> {
    let mut buf = Vec::new();
    prometheus::Encoder::encode(
        &prometheus::TextEncoder::new(),
        &registry.gather(),
        &mut buf,
    )
    .unwrap();
    String::from_utf8(buf)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// A series with its labels sorted, as the text encoder writes them.
fn norm(series: &str) -> String {
    let Some((name, rest)) = series.split_once('{') else {
        return series.to_string();
    };
    let Some((labels, value)) = rest.split_once('}') else {
        return series.to_string();
    };
    let mut labels: Vec<&str> = labels.split(',').collect();
    labels.sort_unstable();
    format!("{name}{{{}}}{value}", labels.join(","))
}

fn has(lines: &[String], series: &str) -> bool {
    let want = norm(series);
    lines.iter().any(|l| norm(l) == want)
}

/// Whether a series of `name` has every label of `labels` (`k="v"` pairs).
fn any_with(lines: &[String], name: &str, labels: &[&str]) -> bool {
    lines
        .iter()
        .any(|l| l.starts_with(&format!("{name}{{")) && labels.iter().all(|x| l.contains(x)))
}

fn health(status: PartitionStatus, lag_seconds: Option<f64>) -> GroupHealth {
    GroupHealth {
        group: "g".into(),
        status: if status.is_error() {
            GroupStatus::Err
        } else if status == PartitionStatus::Warn {
            GroupStatus::Warn
        } else {
            GroupStatus::Ok
        },
        partitions: vec![PartitionHealth {
            topic: "t".into(),
            partition: 0,
            status,
            current_lag: 60,
            lag_seconds,
            lag_seconds_at_least: None,
            lag_seconds_estimate: None,
            committed: 40,
            log_end: 100,
        }],
        max_lag: 60,
        max_lag_seconds: lag_seconds,
        complete: true,
    }
}

#[test]
fn kafka_exporter_names_with_namespace_and_cluster() {
    let registry = Registry::new();
    let e = Exporter::new(&registry).unwrap();
    e.publish(
        "ns",
        "c",
        &snapshot(),
        &[health(PartitionStatus::Ok, Some(1.5))],
    );
    let l = exposition(&registry);
    let c = r#"namespace="ns",cluster="c""#;
    for series in [
        format!("kafka_brokers{{{c}}} 3"),
        format!(r#"kafka_topic_partitions{{{c},topic="t"}} 3"#),
        format!(r#"kafka_topic_partitions{{{c},topic="u"}} 1"#),
        format!(r#"kafka_topic_partition_current_offset{{{c},topic="t",partition="0"}} 100"#),
        format!(r#"kafka_topic_partition_oldest_offset{{{c},topic="t",partition="0"}} 10"#),
        format!(r#"kafka_topic_partition_leader{{{c},topic="t",partition="2"}} -1"#),
        format!(r#"kafka_topic_partition_replicas{{{c},topic="t",partition="1"}} 3"#),
        format!(r#"kafka_topic_partition_in_sync_replica{{{c},topic="t",partition="1"}} 2"#),
        format!(r#"kafka_topic_partition_leader_is_preferred{{{c},topic="t",partition="0"}} 1"#),
        format!(r#"kafka_topic_partition_leader_is_preferred{{{c},topic="t",partition="1"}} 0"#),
        format!(
            r#"kafka_topic_partition_under_replicated_partition{{{c},topic="t",partition="1"}} 1"#
        ),
        format!(
            r#"kafka_topic_partition_under_replicated_partition{{{c},topic="t",partition="0"}} 0"#
        ),
        format!(
            r#"kafka_consumergroup_current_offset{{{c},consumergroup="g",topic="t",partition="0"}} 40"#
        ),
        format!(r#"kafka_consumergroup_lag{{{c},consumergroup="g",topic="t",partition="0"}} 60"#),
        format!(r#"kafka_consumergroup_lag{{{c},consumergroup="g",topic="t",partition="1"}} 0"#),
        format!(r#"kafka_consumergroup_current_offset_sum{{{c},consumergroup="g",topic="t"}} 147"#),
        format!(r#"kafka_consumergroup_lag_sum{{{c},consumergroup="g",topic="t"}} 60"#),
        format!(r#"kafka_consumergroup_members{{{c},consumergroup="g"}} 2"#),
        format!(
            r#"kafka_consumergroup_group_lag_seconds{{{c},group="g",topic="t",partition="0"}} 1.5"#
        ),
        format!(r#"samsa_consumergroup_status{{{c},consumergroup="g",status="OK",reason="OK"}} 1"#),
        format!("samsa_partitions_under_replicated{{{c}}} 3"),
        format!("samsa_partitions_under_min_isr{{{c}}} 2"),
        format!("samsa_partitions_at_min_isr{{{c}}} 1"),
        format!("samsa_partitions_offline{{{c}}} 1"),
        format!("samsa_quorum_leader{{{c}}} 2"),
        format!(r#"samsa_quorum_voter_lag{{{c},voter="3"}} 20"#),
    ] {
        assert!(has(&l, &series), "missing {series} in\n{}", l.join("\n"));
    }
    // Partition 2 has no leader: no offsets, and no lag for the group's commit on it.
    let p2 = [r#"topic="t""#, r#"partition="2""#];
    assert!(!any_with(&l, "kafka_topic_partition_current_offset", &p2));
    assert!(!any_with(&l, "kafka_consumergroup_lag", &p2));
    assert!(any_with(&l, "kafka_consumergroup_current_offset", &p2));
}

#[test]
fn series_that_went_away_are_removed_and_other_clusters_kept() {
    let registry = Registry::new();
    let e = Exporter::new(&registry).unwrap();
    e.publish("ns", "c", &snapshot(), &[health(PartitionStatus::Ok, None)]);
    e.publish("ns", "d", &snapshot(), &[]);
    // Topic u deleted, the group stopped: ERR with reason STOP replaces OK.
    let mut s = snapshot();
    s.partitions.retain(|p| p.topic != "u");
    e.publish("ns", "c", &s, &[health(PartitionStatus::Stop, Some(30.0))]);
    let l = exposition(&registry);
    let (c, d, u) = (r#"cluster="c""#, r#"cluster="d""#, r#"topic="u""#);
    assert!(!any_with(&l, "kafka_topic_partitions", &[c, u]), "{l:?}");
    assert!(
        !any_with(&l, "kafka_topic_partition_leader", &[c, u]),
        "{l:?}"
    );
    assert!(any_with(&l, "kafka_topic_partitions", &[d, u]));
    assert!(has(
        &l,
        r#"samsa_consumergroup_status{namespace="ns",cluster="c",consumergroup="g",status="ERR",reason="STOP"} 1"#
    ));
    assert!(!any_with(
        &l,
        "samsa_consumergroup_status",
        &[c, r#"status="OK""#]
    ));
    assert!(has(
        &l,
        r#"kafka_consumergroup_group_lag_seconds{namespace="ns",cluster="c",group="g",topic="t",partition="0"} 30"#
    ));
    e.forget("ns", "c");
    let l = exposition(&registry);
    assert!(!l.iter().any(|x| x.contains(r#"cluster="c""#)), "{l:?}");
    assert!(l.iter().any(|x| x.contains(r#"cluster="d""#)));
    assert_eq!(e.clusters(), vec![("ns".to_string(), "d".to_string())]);
}

#[test]
fn polled_pairs_commits_with_log_ends() {
    let p = poll::polled(&snapshot());
    assert_eq!(
        p,
        vec![(
            "g".to_string(),
            vec![
                ("t".to_string(), 0, 40, 100),
                ("t".to_string(), 1, 100, 100)
            ]
        )]
    );
}

#[test]
fn the_summary_counts_partitions_and_names_groups_not_ok() {
    let s = summary(&snapshot(), &[health(PartitionStatus::Stall, Some(9.0))]);
    assert_eq!(
        (
            s.under_replicated,
            s.under_min_isr,
            s.at_min_isr,
            s.offline,
            s.groups_not_ok
        ),
        (3, 2, 1, 1, 1)
    );
    assert_eq!(s.groups, vec!["g: ERR STALL".to_string()]);
    let ok = summary(&snapshot(), &[health(PartitionStatus::Ok, None)]);
    assert_eq!((ok.groups_not_ok, ok.groups.len()), (0, 0));
}

#[test]
fn poll_outcomes_and_the_desired_brokers_per_cluster() {
    let registry = Registry::new();
    let e = Exporter::new(&registry).unwrap();
    e.poll_outcome("ns", "c", 3, Some(1_700_000_000.5));
    // A cluster never read: known all the same, so that forget finds it.
    e.poll_outcome("ns", "never", 5, None);
    let l = exposition(&registry);
    assert!(
        has(
            &l,
            r#"samsa_cluster_poll_success{namespace="ns",cluster="c"} 1"#
        ),
        "{l:?}"
    );
    assert!(has(
        &l,
        r#"samsa_cluster_poll_timestamp_seconds{namespace="ns",cluster="c"} 1700000000.5"#
    ));
    assert!(has(
        &l,
        r#"samsa_cluster_brokers_desired{namespace="ns",cluster="c"} 3"#
    ));
    assert!(has(
        &l,
        r#"samsa_cluster_poll_success{namespace="ns",cluster="never"} 0"#
    ));
    assert!(!any_with(
        &l,
        "samsa_cluster_poll_timestamp_seconds",
        &[r#"cluster="never""#]
    ));
    // A failed poll keeps the time of the last good one.
    e.poll_outcome("ns", "c", 4, None);
    let l = exposition(&registry);
    assert!(has(
        &l,
        r#"samsa_cluster_poll_success{namespace="ns",cluster="c"} 0"#
    ));
    assert!(has(
        &l,
        r#"samsa_cluster_poll_timestamp_seconds{namespace="ns",cluster="c"} 1700000000.5"#
    ));
    assert!(has(
        &l,
        r#"samsa_cluster_brokers_desired{namespace="ns",cluster="c"} 4"#
    ));
    let mut known = e.clusters();
    known.sort();
    assert_eq!(
        known,
        vec![
            ("ns".to_string(), "c".to_string()),
            ("ns".to_string(), "never".to_string())
        ]
    );
    e.forget("ns", "never");
    e.forget("ns", "c");
    let l = exposition(&registry);
    assert!(!l.iter().any(|x| x.contains("samsa_cluster_")), "{l:?}");
}
