//! Scale-down safety: the brokers a smaller `spec.brokers` removes (the highest ordinals) must
//! hold no partition replica, or the partitions they hold lose a replica (all of them, for a
//! replication factor of 1) until the broker comes back. Pure.

use std::collections::BTreeMap;

use crate::crd::PartitionStatus;

/// The partitions (`topic-partition`, in topic then partition order) with a replica on each
/// broker that a scale-down to `brokers` removes (ids `brokers` and above). Empty: safe.
pub fn replicas_on_removed<'a>(
    topics: impl IntoIterator<Item = (&'a str, &'a [PartitionStatus])>,
    brokers: i32,
) -> BTreeMap<i32, Vec<String>> {
    let mut out: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let mut topics: Vec<_> = topics.into_iter().collect();
    topics.sort_by_key(|(name, _)| *name);
    for (topic, partitions) in topics {
        let mut partitions: Vec<&PartitionStatus> = partitions.iter().collect();
        partitions.sort_by_key(|p| p.partition);
        for p in partitions {
            for &replica in &p.replicas {
                if replica >= brokers {
                    out.entry(replica)
                        .or_default()
                        .push(format!("{topic}-{}", p.partition));
                }
            }
        }
    }
    out
}

/// Why a scale-down from `from` to `to` brokers waits, naming the field and what to do.
pub fn blocked_message(from: i32, to: i32, blocking: &BTreeMap<i32, Vec<String>>) -> String {
    let holders = blocking
        .iter()
        .map(|(broker, parts)| {
            format!("broker {broker} holds replicas of {}", super::listed(parts))
        })
        .collect::<Vec<_>>()
        .join("; ");
    format!(
        "spec.brokers: cannot go from {from} to {to} brokers yet: {holders}. Move those replicas to brokers 0..{} or delete their topics; the brokers stay at {from} until then",
        to - 1
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(partition: i32, replicas: &[i32]) -> PartitionStatus {
        PartitionStatus {
            partition,
            leader: replicas[0],
            replicas: replicas.to_vec(),
            isr: replicas.to_vec(),
        }
    }

    #[test]
    fn finds_replicas_on_the_removed_ordinals_only() {
        let orders = vec![part(1, &[2, 0]), part(0, &[0, 1])];
        let logs = vec![part(0, &[3]), part(1, &[1, 2])];
        let blocking = replicas_on_removed(
            [("orders", orders.as_slice()), ("logs", logs.as_slice())],
            2,
        );
        assert_eq!(
            blocking,
            BTreeMap::from([
                (2, vec!["logs-1".to_string(), "orders-1".to_string()]),
                (3, vec!["logs-0".to_string()]),
            ])
        );
        assert!(replicas_on_removed([("orders", orders.as_slice())], 3).is_empty());
        assert!(replicas_on_removed([], 1).is_empty());
    }

    #[test]
    fn the_message_names_the_field_the_brokers_and_the_partitions() {
        let many: Vec<PartitionStatus> = (0..8).map(|p| part(p, &[0, 2])).collect();
        let blocking = replicas_on_removed([("t", many.as_slice())], 2);
        assert_eq!(
            blocked_message(3, 2, &blocking),
            "spec.brokers: cannot go from 3 to 2 brokers yet: broker 2 holds replicas of t-0, \
             t-1, t-2, t-3, t-4 and 3 more. Move those replicas to brokers 0..1 or delete their \
             topics; the brokers stay at 3 until then"
        );
    }
}
