//! Pure decisions: desired Kubernetes objects of a cluster, broker-setting classification, and
//! topic and user actions. Nothing here does I/O; the reconcilers observe, call these, and act.

pub mod bluegreen;
pub mod broker_config;
pub mod certificates;
pub mod cluster;
pub mod cluster_status;
pub mod movement;
pub mod rebalance;
pub mod roll;
pub mod scale;
pub mod security;
pub mod topic;
pub mod user;

/// How many items a message lists before "and N more".
const LISTED: usize = 5;

/// `a, b, c, d, e and 3 more`: the first few items of a list for a message.
pub(crate) fn listed(items: &[String]) -> String {
    let mut out = items
        .iter()
        .take(LISTED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > LISTED {
        out.push_str(&format!(" and {} more", items.len() - LISTED));
    }
    out
}
