//! The replicated metadata state machine: the image (brokers, topics, partitions, leaders,
//! ISRs), the commands that change it and the pure rules that apply them, plus the broker
//! session tracker the controller leader uses to fence silent brokers and the replica placement
//! for topics and partitions created without an explicit assignment.
//!
//! Nothing here does I/O or reads the clock on its own: the quorum feeds it committed commands
//! in log order, and every node that applies the same log holds the same image.

mod apply;
mod assign;
mod command;
mod delta;
mod image;
mod reassign;
#[cfg(test)]
mod reassign_tests;
mod rebalance;
mod sessions;

#[cfg(test)]
mod apply_tests;
#[cfg(test)]
mod assign_tests;
#[cfg(test)]
mod election_tests;

pub use apply::{apply, election_candidate};
pub use assign::{
    assign_replicas, validate_assignment, AssignError, BrokerInfo, ExistingLoad, RackMode,
};
pub use command::{ApplyResult, MetadataCommand, Refusal, PRODUCER_ID_BLOCK};
pub use delta::{apply_delta, diff, DeltaMismatch, MetadataDelta};
pub use image::{
    BrokerRecord, Endpoint, MetadataImage, PartitionRecord, Reassignment, TopicRecord, NO_LEADER,
    UNCLEAN_LEADER_ELECTION,
};
pub use rebalance::preferred_elections;
pub use sessions::{Sessions, StreamEnd, StreamId};
