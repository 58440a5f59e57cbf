//! The seam between the HTTP edge and a node: what the API may ask of the
//! write path and of the read models. The edge never sees Raft or RocksDB.

use crate::sm::{AccountKind, BatchFailure, Command, Event, Reason, Txid};
use serde::{Deserialize, Serialize};
use std::future::Future;

/// What became of one submitted command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    Accepted,
    Rejected(Reason),
    /// The whole batch failed in the sandbox (a bug in the rules).
    Failed(BatchFailure),
}

/// Why a submission did not reach the state machine. Nothing was applied,
/// so the request is safe to retry with the same transaction ids.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("overloaded: {queued} commands queued, limit {limit}")]
    Overloaded { queued: usize, limit: usize },
    #[error("this node is not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<String> },
    #[error("shutting down")]
    ShuttingDown,
    #[error("internal error: {0}")]
    Internal(String),
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

/// One event as the read side records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventView {
    /// Position in the account's history (1-based, dense), or in the
    /// transfer's event list.
    pub seq: u64,
    pub log_index: u64,
    pub timestamp_ms: u64,
    pub event: Event,
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
    pub leader: Option<u64>,
    pub members: Vec<u64>,
    pub partition: u32,
    pub applied_index: Option<u64>,
    /// Hex SHA-256 head of the event hash chain.
    pub chain_head: String,
    /// Hex SHA-256 of the active state-machine version.
    pub active_version: String,
}

/// A node as the HTTP edge sees it.
pub trait WalletService: Send + Sync + 'static {
    /// Replicates and applies the commands (possibly batched with other
    /// requests' commands); one reply per command, in order.
    fn submit(
        &self,
        commands: Vec<Command>,
    ) -> impl Future<Output = Result<Vec<Reply>, SubmitError>> + Send;

    fn account(&self, account_id: &str) -> crate::Result<Option<AccountView>>;

    /// `after`: the last `seq` already seen; `limit`: at most this many.
    fn history(
        &self,
        account_id: &str,
        after: Option<u64>,
        limit: usize,
    ) -> crate::Result<Option<HistoryPage>>;

    fn transfer(&self, id: Txid) -> crate::Result<Option<TransferView>>;

    fn status(&self) -> NodeStatus;
}
