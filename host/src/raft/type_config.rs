use crate::service::Reply;
use crate::sm::{VersionChange, VersionOutcome};
use crate::tokens::{TokenChange, TokenOutcome};
use serde::{Deserialize, Serialize};

pub type NodeId = u64;

/// What one Raft entry asks of the state machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    Batch(CommandBatch),
    Tokens(TokenChange),
    /// A deploy, activate or verification record of a state-machine version.
    Versions(VersionChange),
    /// Cross-partition transfers whose coordination ended without a step
    /// at their source (a saga's credit landed): their journal records go.
    Finished(Vec<u128>),
    /// A batch with coordinator's steps in it, each with the account it
    /// acts on (`HomedBatch`).
    Homed(HomedBatch),
    /// The partition splits: the upper half of its range goes to a new
    /// partition (`SplitEntry`).
    Split(SplitEntry),
    /// A change to the map, which partition 0 holds (`node::MapChange`).
    Map(crate::node::MapChange),
}

/// A split: from this entry on, the upper half of the partition's range
/// is `child`'s, which every replica derives from its state here
/// (`partition::split`). `id` names the split in the postings of the
/// money that moves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitEntry {
    pub child: u32,
    pub id: u128,
}

/// A batch whose calls include a coordinator's steps: `homes` pairs, in
/// call order, a step's index in the batch with the account it acts on,
/// which a step that carries only a transaction id does not name. The
/// partition applies a call only if it holds that account
/// (`node::Holdings`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HomedBatch {
    pub batch: CommandBatch,
    pub homes: Vec<(u32, String)>,
}

/// What one Raft entry carries: the encoded calls of a batch
/// (`wallet_core::codec`), stamped by the leader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandBatch {
    /// The leader's clock, at least the last applied batch's time; the
    /// state machine raises it to that time where it is lower anyway.
    pub timestamp_ms: u64,
    #[serde(with = "serde_bytes")]
    pub calls: Vec<u8>,
}

/// The replies to an entry's calls, in order (empty for entries that carry
/// no batch), what a token or version change did, and the log index it was
/// applied at.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchReply {
    pub index: u64,
    pub replies: Vec<Reply>,
    pub tokens: Option<TokenOutcome>,
    pub versions: Option<VersionOutcome>,
    pub split: Option<crate::partition::SplitOutcome>,
    pub map: Option<crate::node::MapOutcome>,
}

openraft::declare_raft_types!(
    pub TypeConfig:
        D = Request,
        R = BatchReply,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = super::SnapshotFiles,
        AsyncRuntime = openraft::TokioRuntime,
);
