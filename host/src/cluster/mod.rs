//! Members of a replicated group talking to each other: Raft's RPCs,
//! writes forwarded to the leader, and snapshots streamed to lagging
//! followers, all over the members' HTTP port under `/v1/raft/{group}/`.
//!
//! Bodies are postcard; every request and every answer carries an
//! HMAC-SHA256 under the cluster secret (`Wallet-Cluster-Mac`), so nothing
//! outside the cluster can join or inject messages. The group id is in
//! every path: partitions will run many groups over one connection per peer.
//!
//! - `secret`: the keys, their rotation and the MACs.
//! - `peers`: `--peers` and the pooled HTTP client members call each other
//!   with.
//! - `routes`: the handlers that answer them.
//! - `transfer`: a snapshot's stream format.

mod peers;
mod routes;
mod secret;
pub(crate) mod transfer;

pub use peers::{CallError, Peers, parse_peers};
pub use routes::router;
pub use secret::{ClusterSecret, SECRET_MIN_BYTES, StreamMac};

/// The header that carries a message's MAC, in hex.
pub const MAC_HEADER: &str = "wallet-cluster-mac";

/// The RPCs members call each other with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rpc {
    Append,
    Vote,
    Snapshot,
    /// Which event records a follower holds, before a snapshot is sent.
    Holds,
    /// A write forwarded to the leader.
    Submit,
    /// The leader's read index, for a linearizable read on a follower.
    ReadIndex,
    /// Event-chain heads, compared by the leader to find a diverged replica.
    Heads,
    /// A token change forwarded to the leader.
    Tokens,
    /// A version change forwarded to the leader.
    Versions,
    /// Cross-partition transfers forwarded to their source's leader, which
    /// coordinates them.
    Coordinate,
    /// Who leads the group, asked of a member by one that does not host it.
    Leader,
    /// A read of a partition's views, sent by a member that does not host
    /// it.
    Read,
    /// A change to a partition's replicas, forwarded to its leader.
    Replicas,
    /// A coordinator's steps forwarded to the leader of the partition they
    /// run in (`Steps`).
    Steps,
    /// How many partitions a member runs, asked of a new member before it
    /// is added (every member must apply calls by the same map).
    Partitions,
    /// A split, asked of partition 0's leader, which drives it.
    Split,
    /// A split entry forwarded to the parent's leader.
    SplitEntry,
}

/// The body of `Rpc::Steps`: encoded calls that each act on `home`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Steps {
    pub home: String,
    #[serde(with = "serde_bytes")]
    pub calls: Vec<u8>,
}

impl Rpc {
    fn name(self) -> &'static str {
        match self {
            Rpc::Append => "append",
            Rpc::Vote => "vote",
            Rpc::Snapshot => "snapshot",
            Rpc::Holds => "holds",
            Rpc::Submit => "submit",
            Rpc::ReadIndex => "read_index",
            Rpc::Heads => "heads",
            Rpc::Tokens => "tokens",
            Rpc::Versions => "versions",
            Rpc::Coordinate => "coordinate",
            Rpc::Leader => "leader",
            Rpc::Read => "read",
            Rpc::Replicas => "replicas",
            Rpc::Steps => "steps",
            Rpc::Partitions => "partitions",
            Rpc::Split => "split",
            Rpc::SplitEntry => "split_entry",
        }
    }

    fn parse(name: &str) -> Option<Rpc> {
        [
            Rpc::Append,
            Rpc::Vote,
            Rpc::Snapshot,
            Rpc::Holds,
            Rpc::Submit,
            Rpc::ReadIndex,
            Rpc::Heads,
            Rpc::Tokens,
            Rpc::Versions,
            Rpc::Coordinate,
            Rpc::Leader,
            Rpc::Read,
            Rpc::Replicas,
            Rpc::Steps,
            Rpc::Partitions,
            Rpc::Split,
            Rpc::SplitEntry,
        ]
        .into_iter()
        .find(|rpc| rpc.name() == name)
    }

    /// The path, which is also what a request's MAC covers besides the body.
    pub fn path(self, group: u32) -> String {
        format!("/v1/raft/{group}/{}", self.name())
    }
}

/// What an answer's MAC covers besides its body: the request's path, so an
/// answer cannot be replayed to another request.
fn answer_label(path: &str) -> Vec<u8> {
    [b"answer ".as_slice(), path.as_bytes()].concat()
}
