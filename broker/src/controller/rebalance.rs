//! Preferred-leader balance, as Kafka's `auto.leader.rebalance.enable`: the controller leader
//! checks every `leader.imbalance.check.interval.seconds` how many of the partitions each
//! broker should lead (it is their first replica) it does not lead; above
//! `leader.imbalance.per.broker.percentage` of them, those whose preferred replica is live and
//! in sync get it back as leader. Failovers and restarts otherwise leave leadership piled on
//! the brokers that stayed up.

use std::collections::BTreeMap;

use super::image::MetadataImage;

/// The partitions to hand back to their preferred replica: (topic, partition), in order.
pub fn preferred_elections(image: &MetadataImage, imbalance_percent: u32) -> Vec<(String, i32)> {
    // Per preferred broker: how many partitions it should lead, and those it does not lead
    // but could (live, in the ISR).
    let mut should: BTreeMap<i32, usize> = BTreeMap::new();
    let mut misplaced: BTreeMap<i32, Vec<(String, i32, bool)>> = BTreeMap::new();
    for (name, topic) in &image.topics {
        for (index, p) in topic.partitions.iter().enumerate() {
            let (Some(&preferred), Ok(index)) = (p.replicas.first(), i32::try_from(index)) else {
                continue;
            };
            *should.entry(preferred).or_default() += 1;
            if p.leader != preferred {
                let eligible = p.isr.contains(&preferred) && image.is_live(preferred);
                misplaced
                    .entry(preferred)
                    .or_default()
                    .push((name.clone(), index, eligible));
            }
        }
    }
    let mut out = Vec::new();
    for (broker, parts) in misplaced {
        let total = should.get(&broker).copied().unwrap_or(0);
        // Imbalance ratio above the threshold: not-led * 100 > percent * should-lead.
        if total == 0 || parts.len() * 100 <= imbalance_percent as usize * total {
            continue;
        }
        out.extend(
            parts
                .into_iter()
                .filter(|(_, _, eligible)| *eligible)
                .map(|(t, p, _)| (t, p)),
        );
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::{apply, MetadataCommand, Refusal};
    use uuid::Uuid;

    fn cluster(assignment: Vec<Vec<i32>>) -> MetadataImage {
        let mut image = MetadataImage::default();
        for id in 1..=3 {
            let reg = MetadataCommand::RegisterBroker {
                id,
                host: "h".into(),
                port: 9092,
                rack: None,
                incarnation_id: format!("i{id}"),
                replication: String::new(),
                listeners: Vec::new(),
            };
            apply(&mut image, &reg).unwrap();
            apply(&mut image, &MetadataCommand::UnfenceBroker { id }).unwrap();
        }
        let create = MetadataCommand::CreateTopic {
            name: "t".into(),
            id: Uuid::new_v4(),
            assignment,
            configs: Default::default(),
        };
        apply(&mut image, &create).unwrap();
        image
    }

    fn leaders(image: &MetadataImage) -> Vec<i32> {
        image.topics["t"]
            .partitions
            .iter()
            .map(|p| p.leader)
            .collect()
    }

    /// Broker 1 fails and comes back: its ISR places return (as its follower would ask).
    fn fail_and_return(image: &mut MetadataImage, id: i32) {
        apply(
            image,
            &MetadataCommand::FenceBroker {
                id,
                incarnation: None,
            },
        )
        .unwrap();
        apply(image, &MetadataCommand::UnfenceBroker { id }).unwrap();
        let parts: Vec<(i32, i32, i32, i32, Vec<i32>)> = image.topics["t"]
            .partitions
            .iter()
            .enumerate()
            .filter(|(_, p)| p.replicas.contains(&id) && !p.isr.contains(&id))
            .map(|(i, p)| {
                let mut isr = p.isr.clone();
                isr.push(id);
                (i as i32, p.leader, p.leader_epoch, p.partition_epoch, isr)
            })
            .collect();
        for (partition, leader, le, pe, isr) in parts {
            let alter = MetadataCommand::AlterPartition {
                topic: "t".into(),
                partition,
                broker_id: leader,
                leader_epoch: le,
                partition_epoch: pe,
                new_isr: isr,
            };
            apply(image, &alter).unwrap();
        }
    }

    #[test]
    fn leadership_returns_to_the_preferred_replica_after_a_failover() {
        let mut image = cluster(vec![
            vec![1, 2, 3],
            vec![2, 3, 1],
            vec![3, 1, 2],
            vec![1, 3, 2],
        ]);
        assert_eq!(leaders(&image), vec![1, 2, 3, 1]);
        assert!(preferred_elections(&image, 10).is_empty(), "balanced");
        apply(
            &mut image,
            &MetadataCommand::FenceBroker {
                id: 1,
                incarnation: None,
            },
        )
        .unwrap();
        assert_eq!(leaders(&image), vec![2, 2, 3, 3]);
        // Broker 1 is fenced: nothing to hand back yet.
        assert!(preferred_elections(&image, 10).is_empty());
        apply(&mut image, &MetadataCommand::UnfenceBroker { id: 1 }).unwrap();
        // Live again but out of the ISRs: still not eligible.
        assert!(preferred_elections(&image, 10).is_empty());
        fail_and_return(&mut image, 1);
        let want = vec![("t".to_string(), 0), ("t".to_string(), 3)];
        assert_eq!(preferred_elections(&image, 10), want);
        let epochs: Vec<i32> = image.topics["t"]
            .partitions
            .iter()
            .map(|p| p.leader_epoch)
            .collect();
        for (t, p) in want {
            let elect = MetadataCommand::ElectPreferredLeader {
                topic: t,
                partition: p,
            };
            apply(&mut image, &elect).unwrap();
        }
        assert_eq!(leaders(&image), vec![1, 2, 3, 1]);
        let after: Vec<i32> = image.topics["t"]
            .partitions
            .iter()
            .map(|p| p.leader_epoch)
            .collect();
        assert_eq!(
            after,
            vec![epochs[0] + 1, epochs[1], epochs[2], epochs[3] + 1]
        );
        assert!(preferred_elections(&image, 10).is_empty());
    }

    #[test]
    fn a_small_imbalance_stays_below_the_threshold() {
        // Broker 1 should lead 10 partitions; it lost one of them (10 %): not above 10 %.
        let assignment: Vec<Vec<i32>> = (0..10).map(|_| vec![1, 2, 3]).collect();
        let mut image = cluster(assignment);
        // Move partition 4's leadership away by hand (as a failover would).
        if let Some(t) = image.topics.get_mut("t") {
            t.partitions[4].leader = 2;
        }
        assert!(preferred_elections(&image, 10).is_empty());
        assert_eq!(preferred_elections(&image, 5), vec![("t".to_string(), 4)]);
    }

    #[test]
    fn electing_an_ineligible_preferred_replica_is_refused() {
        let mut image = cluster(vec![vec![1, 2, 3]]);
        apply(
            &mut image,
            &MetadataCommand::FenceBroker {
                id: 1,
                incarnation: None,
            },
        )
        .unwrap();
        let elect = MetadataCommand::ElectPreferredLeader {
            topic: "t".into(),
            partition: 0,
        };
        let before = image.clone();
        assert!(matches!(
            apply(&mut image, &elect),
            Err(Refusal::IneligibleReplica { broker: 1, .. })
        ));
        assert_eq!(image, before, "a refusal changes nothing");
        let unknown = MetadataCommand::ElectPreferredLeader {
            topic: "t".into(),
            partition: 5,
        };
        assert!(matches!(
            apply(&mut image, &unknown),
            Err(Refusal::UnknownPartition { .. })
        ));
    }
}
