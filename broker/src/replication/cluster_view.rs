//! The cluster-wide replication view that one broker reports for the whole cluster (how many
//! partitions have no leader, who leads each partition), so that the brokers' `/metrics`,
//! summed or joined, neither repeat a series nor count a partition more than once.
//!
//! Pure: an image in, numbers out. It never touches a gauge.

use crate::controller::{MetadataImage, NO_LEADER};

/// The broker that reports the cluster-wide gauges as `image` says: the lowest-id unfenced
/// broker (the lowest-id registered one when every broker is fenced). Every broker that applied
/// the same image agrees on it; while a change spreads, a series may briefly show on two
/// brokers, or on none.
///
/// Not the preferred replica of each partition: an offline partition's replicas are often the
/// very brokers that are down. Not the controller leader either: it may be a controller-only
/// process, which serves no broker metrics.
pub(crate) fn reporter(image: &MetadataImage) -> Option<i32> {
    image
        .live_brokers()
        .first()
        .copied()
        .or_else(|| image.brokers.keys().next().copied())
}

/// What the reporting broker exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClusterView {
    /// Partitions without a leader.
    pub(crate) offline: i64,
    /// (topic, partition, leader or [`NO_LEADER`]) of every partition of the image.
    pub(crate) leaders: Vec<(String, i32, i32)>,
}

/// The view broker `node_id` reports from `image`: None when it is not the reporter.
pub(crate) fn cluster_view(image: &MetadataImage, node_id: i32) -> Option<ClusterView> {
    if reporter(image) != Some(node_id) {
        return None;
    }
    let mut leaders = Vec::new();
    for (name, topic) in &image.topics {
        for (index, p) in topic.partitions.iter().enumerate() {
            let Ok(index) = i32::try_from(index) else {
                continue;
            };
            leaders.push((name.clone(), index, p.leader));
        }
    }
    let offline = leaders.iter().filter(|l| l.2 == NO_LEADER).count();
    Some(ClusterView {
        offline: i64::try_from(offline).unwrap_or(i64::MAX),
        leaders,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::{BrokerRecord, PartitionRecord, TopicRecord};

    fn broker(fenced: bool) -> BrokerRecord {
        BrokerRecord {
            host: "h".into(),
            port: 9092,
            rack: None,
            incarnation_id: "i".into(),
            replication: String::new(),
            epoch: 1,
            fenced,
            listeners: Vec::new(),
        }
    }

    fn partition(replicas: &[i32], leader: i32) -> PartitionRecord {
        PartitionRecord {
            replicas: replicas.to_vec(),
            isr: if leader == NO_LEADER {
                vec![]
            } else {
                vec![leader]
            },
            leader,
            leader_epoch: 1,
            partition_epoch: 1,
            reassignment: None,
        }
    }

    /// Brokers 1..=3 (those in `fenced` fenced); topic "t" with one RF 1 partition per broker,
    /// partitions on a fenced broker offline; topic "u" RF 3, led by 2.
    fn image(fenced: &[i32]) -> MetadataImage {
        let mut image = MetadataImage::default();
        for id in 1..=3 {
            image.brokers.insert(id, broker(fenced.contains(&id)));
        }
        let t = (1..=3)
            .map(|b| partition(&[b], if fenced.contains(&b) { NO_LEADER } else { b }))
            .collect();
        let topic = |partitions| TopicRecord {
            id: uuid::Uuid::new_v4(),
            configs: Default::default(),
            partitions,
        };
        image.topics.insert("t".into(), topic(t));
        image
            .topics
            .insert("u".into(), topic(vec![partition(&[2, 3, 1], 2)]));
        image
    }

    fn views(image: &MetadataImage) -> Vec<ClusterView> {
        (1..=3).filter_map(|b| cluster_view(image, b)).collect()
    }

    #[test]
    fn offline_partitions_summed_over_brokers_are_the_clusters() {
        let all_up = image(&[]);
        assert_eq!(views(&all_up).iter().map(|v| v.offline).sum::<i64>(), 0);
        // Broker 1, the preferred replica of t-0, is down: its partition is offline and it
        // cannot be the one to say so.
        let one_down = image(&[1]);
        let v = views(&one_down);
        assert_eq!(v.len(), 1, "one broker reports");
        assert_eq!(v.iter().map(|v| v.offline).sum::<i64>(), 1);
        assert_eq!(cluster_view(&one_down, 2).map(|v| v.offline), Some(1));
        assert_eq!(cluster_view(&one_down, 1), None);
        assert_eq!(cluster_view(&one_down, 3), None);
        let two_down = image(&[1, 2]);
        assert_eq!(views(&two_down).iter().map(|v| v.offline).sum::<i64>(), 2);
        assert_eq!(reporter(&two_down), Some(3));
    }

    #[test]
    fn every_partitions_leader_is_reported_once() {
        let one_down = image(&[1]);
        let mut leaders: Vec<_> = views(&one_down)
            .into_iter()
            .flat_map(|v| v.leaders)
            .collect();
        leaders.sort();
        assert_eq!(
            leaders,
            vec![
                ("t".to_string(), 0, NO_LEADER),
                ("t".to_string(), 1, 2),
                ("t".to_string(), 2, 3),
                ("u".to_string(), 0, 2),
            ]
        );
    }

    #[test]
    fn every_broker_fenced_leaves_the_lowest_registered_one() {
        let all_down = image(&[1, 2, 3]);
        assert_eq!(reporter(&all_down), Some(1));
        assert_eq!(views(&all_down).iter().map(|v| v.offline).sum::<i64>(), 3);
        assert_eq!(reporter(&MetadataImage::default()), None);
    }
}
