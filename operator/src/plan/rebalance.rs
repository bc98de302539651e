//! Placeholder of the replica planner (replaced by the real planner).
#![allow(missing_docs, clippy::all, unused)]
use std::collections::{BTreeMap, BTreeSet};

pub type PartitionKey = (String, i32);
pub type Assignment = BTreeMap<PartitionKey, Vec<i32>>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    pub id: i32,
    pub rack: Option<String>,
}

pub struct PlanInput<'a> {
    pub brokers: &'a [BrokerInfo],
    pub assignment: &'a Assignment,
    pub sizes: &'a BTreeMap<PartitionKey, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub target: Assignment,
    pub replica_moves: usize,
    pub bytes: u64,
}

pub fn plan(input: &PlanInput) -> Plan {
    drain(input)
}

pub fn drain(input: &PlanInput) -> Plan {
    Plan::default()
}

pub fn change_replication_factor(
    replicas: &[i32],
    leader: Option<i32>,
    rf: usize,
    brokers: &[BrokerInfo],
    load: &BTreeMap<i32, usize>,
) -> Result<Vec<i32>, String> {
    Err("stub".into())
}

pub fn next_batch(
    target: &Assignment,
    current: &Assignment,
    in_progress: &BTreeSet<PartitionKey>,
    sizes: &BTreeMap<PartitionKey, u64>,
    max_concurrent: usize,
) -> Vec<(PartitionKey, Vec<i32>)> {
    Vec::new()
}
