//! Samsa broker: a Kafka-compatible broker.
//!
//! Layers (one-way dependencies): `server` (sockets, handlers) → `topics` (topic registry and
//! configs) → `log` (segment storage). `protocol` is sans-io: framing, request decoding, the
//! table of served APIs and the mapping of errors to Kafka codes.

pub mod config;
pub mod group;
pub mod log;
pub mod metrics;
pub mod producer;
pub mod protocol;
pub mod server;
pub mod topics;

/// See the `mimalloc` feature in Cargo.toml for why the allocator matters to robustness.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
