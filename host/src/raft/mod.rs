//! Replication: one openraft group per partition, one file per openraft
//! trait. The log is the segment log (`crate::log`); the state machine runs
//! each committed batch through the sandbox and commits to the store.

// openraft's traits return its `StorageError` (over 200 bytes); the helpers
// here return it too rather than convert back and forth.
#![allow(clippy::result_large_err)]

mod archive;
#[cfg(feature = "fault-injection")]
mod fault;
mod log_store;
mod network;
mod snapshot;
mod state_machine;
mod type_config;

pub use archive::for_each_archived;
#[cfg(test)]
pub(crate) use log_store::Fail;
pub use log_store::{Durable, LogStore};
pub use network::{Answer, Network};
pub use snapshot::{CHECKPOINT_DIR, MANIFEST_FILE, Manifest, OwnedDir, SnapshotFiles, Snapshots};
pub use state_machine::{StateMachine, learner};
pub use type_config::{
    BatchReply, CommandBatch, HomedBatch, NodeId, Request, SplitEntry, TypeConfig,
};

pub type Raft = openraft::Raft<TypeConfig>;

/// openraft wants `AnyError`s: keep the message and the chain.
pub(crate) fn any_error(error: &(impl std::error::Error + 'static)) -> openraft::AnyError {
    openraft::AnyError::new(error)
}
