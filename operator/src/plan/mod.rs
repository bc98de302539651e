//! Pure decisions: desired Kubernetes objects of a cluster, broker-setting classification, and
//! topic actions. Nothing here does I/O; the reconcilers observe, call these, and act.

pub mod broker_config;
pub mod cluster;
pub mod cluster_status;
pub mod roll;
pub mod scale;
pub mod topic;
