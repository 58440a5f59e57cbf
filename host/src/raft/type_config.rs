use crate::service::Reply;
use crate::sm::{Command, VersionHash};
use serde::{Deserialize, Serialize};
use std::io::Cursor;

pub type NodeId = u64;

/// What one Raft entry carries: the inputs of a batch, stamped by the leader
/// so that every replica executes them identically.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandBatch {
    /// Leader wall clock, non-decreasing along the log.
    pub timestamp_ms: u64,
    /// The state-machine version that must execute the batch.
    pub version: VersionHash,
    pub commands: Vec<Command>,
}

/// One reply per command of the entry, in order (empty for entries that
/// carry no batch).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchReply {
    pub replies: Vec<Reply>,
}

openraft::declare_raft_types!(
    pub TypeConfig:
        D = CommandBatch,
        R = BatchReply,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);
