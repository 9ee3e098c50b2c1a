//! The cluster's metadata: the records of the metadata log (`records`), the
//! state they build and the leader's liveness decisions (`state`), and the
//! Raft quorum that orders them (`quorum`, on raft-rs). No I/O: the broker's
//! controller loop stores the log, moves the messages and keeps the time.

pub mod quorum;
pub mod records;
pub mod state;
pub mod view;

pub use quorum::{Output, Quorum, QuorumError, Timing, VoterProgress};
pub use records::{Endpoint, MetadataRecord};
pub use state::{Broker, ClusterState, Liveness, PartitionState, TopicState};
pub use view::ClusterView;
