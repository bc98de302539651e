//! Samsa broker: a Kafka-compatible broker.
//!
//! Layers (one-way dependencies): `server` (sockets, handlers) → `topics` (topic registry and
//! configs) → `log` (segment storage). `protocol` is sans-io: framing, request decoding, the
//! table of served APIs and the mapping of errors to Kafka codes. `quorum` runs the Raft group of
//! controllers whose log holds the cluster metadata; `controller` owns that metadata's image and
//! the pure rules that change it.

pub mod config;
pub mod controller;
pub mod group;
pub mod log;
pub mod metrics;
pub mod producer;
pub mod protocol;
pub mod quorum;
pub mod rack;
pub mod replication;
pub mod security;
pub mod server;
pub mod topics;

/// See the `mimalloc` feature in Cargo.toml for why the allocator matters to robustness.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
