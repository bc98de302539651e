//! Samsa's protobuf wire types and gRPC services (package `samsa.v1`).
//!
//! Generated from `proto/samsa/v1/*.proto` at build time; this crate holds no logic.

#![allow(unreachable_pub, clippy::all)]

/// Package `samsa.v1`: the Raft, Controller and Replica services.
pub mod v1 {
    tonic::include_proto!("samsa.v1");
}
