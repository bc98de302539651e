//! Samsa operator: runs `KafkaCluster`s as StatefulSets and keeps `KafkaTopic`s in their
//! clusters. `crd` holds the resource types, `plan` the pure decisions, `kafka` a small admin
//! client over the Kafka protocol, `reconcile` the thin kube and Kafka I/O around the plans,
//! `certs` the operator's own certificate authority, `leader` the Lease-based leader election
//! and `metrics` the `/metrics` and `/healthz` endpoint.

pub mod certs;
pub mod crd;
pub mod exporter;
pub mod health;
pub mod kafka;
pub mod leader;
pub mod metrics;
pub mod plan;
pub mod reconcile;
