//! The lag gauges: computed from the high watermark of the partitions this broker leads, and
//! absent (never 0) for the partitions it does not lead.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::offsets::CommittedOffset;
use super::{Groups, LagSeries};
use crate::controller::NO_LEADER;
use crate::metrics::Metrics;
use crate::topics::TopicRegistry;

fn committed(offset: i64) -> CommittedOffset {
    CommittedOffset {
        offset,
        leader_epoch: -1,
        metadata: None,
        commit_timestamp: 1,
    }
}

/// `name`'s samples of group "g" by partition, from the exposition.
fn series(metrics: &Metrics, name: &str) -> BTreeMap<i32, i64> {
    metrics
        .render()
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains("group=\"g\""))
        .map(|l| {
            let p = l.split("partition=\"").nth(1).unwrap();
            let p: i32 = p[..p.find('"').unwrap()].parse().unwrap();
            let v: i64 = l.rsplit(' ').next().unwrap().parse().unwrap();
            (p, v)
        })
        .collect()
}

#[test]
fn lag_comes_from_the_led_partitions_high_watermarks_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = crate::config::BrokerConfig::for_tests(dir.path().into());
    cfg.offsets_topic_num_partitions = 1;
    let metrics = Arc::new(Metrics::new().unwrap());
    let registry = Arc::new(TopicRegistry::open(Arc::new(cfg), metrics.clone()).unwrap());
    Groups::ensure_offsets_topic(&registry).unwrap();
    let topic = registry.create("t", 3, BTreeMap::new()).unwrap();
    // Partition 0 is led here at high watermark 100 (its local log end says nothing about it);
    // partition 1 is led by another broker (an empty local copy); partition 2 is led here with
    // the consumer ahead.
    topic.partition(0).unwrap().replica.lock().high_watermark = 100;
    topic.partition(1).unwrap().replica.lock().leader = NO_LEADER;
    topic.partition(2).unwrap().replica.lock().high_watermark = 30;
    let groups = Groups::open(registry.clone()).unwrap();
    groups.offsets.install(BTreeMap::from([(
        "g".to_string(),
        (0..3)
            .map(|p| (("t".to_string(), p), committed(40)))
            .collect(),
    )]));
    let mut exported = LagSeries::default();
    groups.export_lag(&registry, &metrics, &mut exported);
    assert_eq!(
        series(&metrics, "samsa_consumer_group_committed_offset"),
        BTreeMap::from([(0, 40), (1, 40), (2, 40)])
    );
    assert_eq!(
        series(&metrics, "samsa_consumer_group_lag"),
        BTreeMap::from([(0, 60), (2, 0)]),
        "no lag for the partition led elsewhere"
    );
    // Leadership of partition 0 moves away: its lag series goes, its committed offset stays.
    topic.partition(0).unwrap().replica.lock().leader = 7;
    groups.export_lag(&registry, &metrics, &mut exported);
    assert_eq!(
        series(&metrics, "samsa_consumer_group_lag"),
        BTreeMap::from([(2, 0)])
    );
    assert_eq!(
        series(&metrics, "samsa_consumer_group_committed_offset").len(),
        3
    );
}
