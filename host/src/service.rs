//! The seam between the HTTP edge and a node: what the API may ask of the
//! write path and of the read models. The edge never sees Raft or RocksDB.

use crate::sm::{BatchFailure, VersionChange, VersionHash, VersionInfo, VersionOutcome};
use crate::tokens::{TokenChange, TokenInfo, TokenOutcome};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::future::Future;
use std::str::FromStr;
use wallet_core::codec::Calls;
use wallet_core::{AccountKind, Event, Reason, Txid};

/// Whoever a request is from.
pub type Who = wallet_core::Caller<String>;

/// What became of one submitted command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    Accepted,
    Rejected(Reason),
    /// The whole batch failed in the sandbox (a bug in the rules).
    Failed(BatchFailure),
    /// Not applied: the partition does not hold an account the command
    /// acts on (the map moved it, or the call was routed by a stale one).
    Moved,
}

/// The replies to a submission and where in the log it was applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submitted {
    pub replies: Vec<Reply>,
    pub position: Position,
}

/// The replies to a submission that may have run in several partitions,
/// and where each of them wrote it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answered {
    pub replies: Vec<Reply>,
    /// One per partition written, by partition.
    pub positions: Vec<Position>,
}

/// Why a submission did not reach the state machine, or not all of it:
/// nothing was applied, or (a submission spread over partitions, a
/// transfer across them still in flight) some was and the rest goes on.
/// Either way the request is safe to retry with the same transaction ids.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum SubmitError {
    #[error("overloaded: {queued} commands queued, limit {limit}")]
    Overloaded { queued: usize, limit: usize },
    #[error("this node is not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<String> },
    #[error("no majority of the group answers: {0}")]
    NoQuorum(String),
    #[error("the free disk space is below the floor of {floor_bytes} bytes")]
    InsufficientStorage { floor_bytes: u64 },
    #[error("shutting down")]
    ShuttingDown,
    #[error("the node stopped: {0}")]
    Stopped(String),
    #[error("this replica diverged from its group and is fenced: {0}")]
    Diverged(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// A place in the log of one partition: every write answer carries the
/// position it was applied at, and every read answer the position it
/// reflects (the `Wallet-Position` header, `partition:index` pairs).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Position {
    pub partition: u32,
    pub index: u64,
}

/// Positions as the `Wallet-Position` header carries them:
/// `partition:index`, comma-separated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Positions(pub Vec<Position>);

impl Positions {
    /// The furthest index these name in `partition`.
    pub fn of(&self, partition: u32) -> Option<u64> {
        self.0
            .iter()
            .filter(|p| p.partition == partition)
            .map(|p| p.index)
            .max()
    }
}

impl fmt::Display for Positions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}:{}", p.partition, p.index)?;
        }
        Ok(())
    }
}

/// The most positions one header may carry.
const POSITIONS_MAX: usize = 1024;

impl FromStr for Positions {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let parse = |pair: &str| {
            let (partition, index) = pair.trim().split_once(':')?;
            let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            if !digits(partition) || !digits(index) {
                return None;
            }
            Some(Position {
                partition: partition.parse().ok()?,
                index: index.parse().ok()?,
            })
        };
        let positions = text
            .split(',')
            .map(|pair| parse(pair).ok_or_else(|| format!("{pair:?} is not partition:index")))
            .collect::<Result<Vec<_>, _>>()?;
        if positions.len() > POSITIONS_MAX {
            return Err(format!("more than {POSITIONS_MAX} positions"));
        }
        Ok(Positions(positions))
    }
}

/// Why a read could not be answered at the position it asked for.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ReadError {
    #[error("the read models reflect index {reflected}, not yet {wanted}; retry")]
    NotCaughtUp { wanted: u64, reflected: u64 },
    #[error("no write was answered with index {wanted}: this group's log ends at {last}")]
    Beyond { wanted: u64, last: u64 },
    #[error(
        "this node runs no partition {0} yet (a split may be adding it): retry, or leave it out of Wallet-Position"
    )]
    UnknownPartition(u32),
    #[error("no read index from a leader with a majority: {0}; retry")]
    NoQuorum(String),
    #[error("this replica diverged from its group and is fenced: {0}; read from another member")]
    Diverged(String),
    #[error("{0}")]
    Failed(String),
    #[error("no write was answered by partition {partition}: the cluster has {count} partitions")]
    NoPartition { partition: u32, count: u32 },
}

impl From<crate::Error> for ReadError {
    fn from(error: crate::Error) -> Self {
        ReadError::Failed(error.to_string())
    }
}

/// One currency of an account, in minor units.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceView {
    pub currency: String,
    pub available: i64,
    pub reserved: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    pub account_id: String,
    pub owner: Option<String>,
    pub kind: AccountKind,
    /// Sorted by currency.
    pub balances: Vec<BalanceView>,
}

/// One event as the read side shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventView {
    /// Position in the account's history (1-based, dense), or in the
    /// transfer's event list.
    pub seq: u64,
    pub log_index: u64,
    pub timestamp_ms: u64,
    pub event: Event<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryPage {
    /// Oldest first.
    pub events: Vec<EventView>,
    /// Pass as `after` to get the next page; `None` at the end.
    pub next: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransferState {
    Pending,
    Success,
    Failed(Reason),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferView {
    pub id: Txid,
    pub state: TransferState,
    pub events: Vec<EventView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub node_id: u64,
    /// The voters of the first partition's group: every member of the
    /// cluster (each holds a replica of partition 0, and of the others
    /// it was given).
    pub members: Vec<u64>,
    pub partitions: Vec<PartitionStatus>,
    /// Cross-partition transfers this node coordinates now.
    pub coordinator: crate::coordinator::Stats,
}

/// This node's replica of one partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionStatus {
    pub partition: u32,
    pub leader: Option<u64>,
    pub members: Vec<u64>,
    /// Whether this node is one of the partition's voters; when not, its
    /// reads and writes go to a member that is, and the rest of this
    /// status is a stale replica's.
    pub hosted: bool,
    /// The CRC-32C hashes of the account ids it holds, `start..end`
    /// (a split halves it).
    pub range: crate::node::Range,
    pub applied_index: u64,
    /// The Raft log index the read models reflect.
    pub projected_index: u64,
    /// Event-log records applied but not yet projected.
    pub projector_lag_records: u64,
    /// Money that left this partition for another (or arrived from one)
    /// and is not yet settled there, per currency, in minor units: with
    /// every balance and reservation, each currency sums to zero.
    pub in_flight: std::collections::BTreeMap<String, i64>,
    /// Hex SHA-256 head of the event hash chain.
    pub chain_head: String,
    /// Hex SHA-256 of the state-machine version that runs the next entry;
    /// `None` before a new group activated its first.
    pub active_version: Option<String>,
    /// Cross-partition transfers this partition started and has not
    /// finished (its coordinator's journal).
    pub transfers_in_flight: usize,
    /// Set when this replica was fenced for holding another event chain
    /// than its group's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diverged: Option<crate::partition::Divergence>,
}

/// Whether this node accepts writes, and if not, why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    NotReady(String),
}

/// A node as the HTTP edge sees it.
pub trait WalletService: Send + Sync + 'static {
    /// Replicates and applies the calls (possibly batched with other
    /// requests' calls); one reply per call, in order.
    fn submit(&self, calls: Calls) -> impl Future<Output = Result<Answered, SubmitError>> + Send;

    /// Waits, bounded, until the read models reflect `wanted` (or, for
    /// `None`, everything this node had applied when the read arrived);
    /// returns the positions they reflect.
    fn read_at(
        &self,
        wanted: Option<Positions>,
    ) -> impl Future<Output = Result<Positions, ReadError>> + Send;

    /// The positions every write acknowledged so far is at, confirmed by
    /// the leader with a majority (a linearizable read waits for them).
    fn read_index(&self) -> impl Future<Output = Result<Positions, ReadError>> + Send;

    /// The reads below take the positions `read_at` returned: a partition
    /// this node does not host is read at a member that does, once it
    /// reflects them.
    fn account(
        &self,
        account_id: &str,
        at: &Positions,
    ) -> impl Future<Output = Result<Option<AccountView>, ReadError>> + Send;

    /// The account's `(available, reserved)` in `currency` after every
    /// batch that ran at or before `at_ms`; `None` if it was never opened.
    fn balance_at(
        &self,
        account_id: &str,
        currency: &str,
        at_ms: u64,
        at: &Positions,
    ) -> impl Future<Output = Result<Option<(i64, i64)>, ReadError>> + Send;

    /// `after`: the last `seq` already seen; `limit`: at most this many.
    fn history(
        &self,
        account_id: &str,
        after: Option<u64>,
        limit: usize,
        at: &Positions,
    ) -> impl Future<Output = Result<Option<HistoryPage>, ReadError>> + Send;

    fn transfer(
        &self,
        id: Txid,
        at: &Positions,
    ) -> impl Future<Output = Result<Option<TransferView>, ReadError>> + Send;

    /// Who `token` is from, if the group knows it and it has not expired.
    fn authenticate(&self, token: &str) -> Option<Who>;

    /// Every token, oldest first.
    fn tokens(&self) -> Vec<TokenInfo>;

    /// Creates or revokes a token through the log (on the leader); what it
    /// did, and where in the log.
    fn change_tokens(
        &self,
        change: TokenChange,
    ) -> impl Future<Output = Result<(TokenOutcome, Positions), SubmitError>> + Send;

    /// Every deployed state-machine version and where it stands.
    fn versions(&self) -> Vec<VersionInfo>;

    /// The log index of this node's current snapshot, if it has one.
    fn snapshot_index(&self) -> Option<u64>;

    /// Compiles and instantiates a candidate version: what a deploy checks
    /// before it is proposed.
    fn check_version(&self, bytes: &[u8]) -> crate::Result<VersionHash>;

    /// Replays this node's recorded history in `window` through the
    /// deployed version `hash` beside the versions that ran it; `progress`
    /// hears the index reached and the last one. Long-running.
    fn verify(
        &self,
        hash: VersionHash,
        window: crate::audit::Window,
        progress: tokio::sync::watch::Sender<(u64, u64)>,
    ) -> impl Future<Output = crate::Result<crate::audit::Report>> + Send;

    /// Deploys, activates or records the verification of a version
    /// through the log (on the leader); what it did, and where in the log.
    fn change_versions(
        &self,
        change: VersionChange,
    ) -> impl Future<Output = Result<(VersionOutcome, Positions), SubmitError>> + Send;

    fn status(&self) -> NodeStatus;

    fn readiness(&self) -> Readiness;

    /// Adds a member: a learner until it has caught up, then a voter, in
    /// `partitions` (every one when `None`; always partition 0). Returns
    /// partition 0's voters after the change.
    fn add_member(
        &self,
        node_id: u64,
        address: String,
        partitions: Option<Vec<u32>>,
    ) -> impl Future<Output = Result<Vec<u64>, MembershipError>> + Send;

    /// Adds or removes one replica of `partition`, through its leader;
    /// returns its voters after the change.
    fn change_replicas(
        &self,
        partition: u32,
        change: ReplicaChange,
    ) -> impl Future<Output = Result<Vec<u64>, MembershipError>> + Send;

    /// Splits a partition: the upper half of its hash range, with the
    /// accounts in it, goes to a new partition, while both serve.
    fn split(
        &self,
        partition: u32,
    ) -> impl Future<Output = Result<SplitDone, MembershipError>> + Send;

    /// Removes a member; returns the voters after the change.
    fn remove_member(
        &self,
        node_id: u64,
    ) -> impl Future<Output = Result<Vec<u64>, MembershipError>> + Send;

    /// A consistent backup of this replica, streamed (`crate::backup`).
    fn backup(&self) -> impl Future<Output = crate::Result<crate::backup::BackupStream>> + Send;
}

/// A split done: `parent` kept the lower half of its range and `child`
/// took the upper, from the split entry at `index` in the parent's log;
/// the cluster runs `partitions` now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitDone {
    pub parent: u32,
    pub child: u32,
    pub index: u64,
    pub partitions: u32,
}

/// A change to the replicas of one partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplicaChange {
    /// A member of the cluster takes a replica: a learner until it has
    /// caught up (by snapshot when the log was compacted), then a voter.
    Add(u64),
    /// A replica goes: a learner first, then out of the group.
    Remove(u64),
}

/// Why a membership change was not made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum MembershipError {
    #[error("membership changes go to the leader ({leader:?})")]
    NotLeader { leader: Option<String> },
    #[error("{0}")]
    Refused(String),
    /// The partition cannot take the change now (no majority, this
    /// member's replica diverged, ...); answered as a write would be.
    #[error("{0}")]
    Unavailable(SubmitError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_refuse_garbage() {
        let p: Positions = "0:1234".parse().expect("parses");
        assert_eq!(
            p.0,
            vec![Position {
                partition: 0,
                index: 1234
            }]
        );
        assert_eq!(p.to_string(), "0:1234");
        let two: Positions = "0:5, 3:9".parse().expect("parses");
        assert_eq!(two.to_string(), "0:5,3:9");
        for bad in [
            "",
            "0",
            "0:",
            ":5",
            "a:1",
            "0:-1",
            "0:1:2",
            "0:99999999999999999999",
        ] {
            assert!(bad.parse::<Positions>().is_err(), "{bad:?}");
        }
    }
}
