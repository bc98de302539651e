//! Kafka wire protocol, sans-io: framing, request decoding, the table of served APIs, error
//! codes. Nothing here reads a socket or a file.

pub mod api;
pub mod codec;
pub mod errors;
pub mod fetch_wire;
pub mod reply;
