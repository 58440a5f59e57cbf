//! The read side across partitions: waiting for positions, and reading
//! each partition's views; a partition this node does not host is read at
//! the member that leads it, once its views reflect the read's position.

use super::router::Route;
use super::{Node, READ_WAIT_MAX, describe};
use crate::cluster::Rpc;
use crate::service::{
    AccountView, HistoryPage, Position, Positions, ReadError, TransferState, TransferView,
};
use crate::views::Views;
use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use wallet_core::{AccountKind, Reason, Txid};

/// A read of one partition's views, as one member asks it of another.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Read {
    /// The index the views must reflect first (the reader's position).
    pub wait: Option<u64>,
    pub query: Query,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Query {
    Account(String),
    BalanceAt {
        account: String,
        currency: String,
        at_ms: u64,
    },
    History {
        account: String,
        after: Option<u64>,
        limit: u64,
    },
    Transfer(Txid),
}

impl Query {
    /// Runs the query on `views`; the answer postcard-encoded as
    /// `Result<T, ReadError>`, `T` what the query's view method returns.
    pub fn answer(&self, views: &Views) -> Vec<u8> {
        fn encode<T: Serialize>(found: crate::Result<T>) -> Vec<u8> {
            let answer = found.map_err(ReadError::from);
            postcard::to_allocvec(&answer).expect("views serialize")
        }
        match self {
            Query::Account(id) => encode(views.account(id)),
            Query::BalanceAt {
                account,
                currency,
                at_ms,
            } => encode(views.balance_at(account, currency, *at_ms)),
            Query::History {
                account,
                after,
                limit,
            } => encode(views.history(account, *after, *limit as usize)),
            Query::Transfer(id) => encode(views.transfer(*id)),
        }
    }
}

impl Node {
    /// Waits until this node's replicas reflect `wanted` (or, for `None`,
    /// what each had applied when the read arrived). A partition this node
    /// does not host keeps the position asked for: its reads wait for it
    /// at its leader.
    pub(super) async fn reflect(&self, wanted: Option<Positions>) -> Result<Positions, ReadError> {
        let alone = self.router.group.members.len() <= 1;
        let mut waits: Vec<(u32, Option<u64>)> = match wanted {
            None => self
                .partitions()
                .filter(|p| alone || p.hosted())
                .map(|p| (p.id, None))
                .collect(),
            Some(positions) => positions
                .0
                .iter()
                .map(|p| (p.partition, Some(p.index)))
                .collect(),
        };
        waits.sort();
        waits.dedup_by(|later, earlier| {
            let same = later.0 == earlier.0;
            if same {
                earlier.1 = earlier.1.max(later.1);
            }
            same
        });
        let mut reflected = Vec::with_capacity(waits.len());
        for (group, index) in waits {
            let Some(partition) = self.partition(group) else {
                return Err(self.missing(group).await);
            };
            if !alone && !partition.hosted() {
                if let Some(index) = index {
                    reflected.push(Position {
                        partition: group,
                        index,
                    });
                }
                continue;
            }
            if let Some(verdict) = partition.diverged() {
                return Err(ReadError::Diverged(describe(&verdict)));
            }
            reflected.push(partition.read_at(index, READ_WAIT_MAX).await?);
        }
        Ok(Positions(reflected))
    }

    /// Asks each partition's leader (this node, or over the network) for
    /// its read index.
    pub(super) async fn leaders_read_index(&self) -> Result<Positions, ReadError> {
        let mut positions = Vec::new();
        for partition in self.partitions() {
            let route = self.router.route(partition.id).await.map_err(|e| match e {
                crate::service::SubmitError::Diverged(why) => ReadError::Diverged(why),
                crate::service::SubmitError::NotLeader { .. } => {
                    ReadError::NoQuorum("no leader is known".into())
                }
                other => ReadError::NoQuorum(other.to_string()),
            })?;
            let index = match route {
                Route::Here => partition.read_index().await?,
                Route::Leader(_, addr) => {
                    let Some(peers) = &self.router.group.peers else {
                        return Err(ReadError::NoQuorum("no peers configured".into()));
                    };
                    let unavailable =
                        |why: String| ReadError::NoQuorum(format!("asking the leader: {why}"));
                    let answer = peers
                        .call(
                            &addr,
                            partition.id,
                            Rpc::ReadIndex,
                            Vec::new(),
                            READ_WAIT_MAX,
                        )
                        .await
                        .map_err(|e| unavailable(e.to_string()))
                        .and_then(|bytes| {
                            postcard::from_bytes::<Result<u64, ReadError>>(&bytes)
                                .map_err(|e| unavailable(format!("undecodable answer: {e}")))?
                        });
                    if answer.is_err() {
                        self.router.forget(partition.id);
                    }
                    answer?
                }
            };
            positions.push(Position {
                partition: partition.id,
                index,
            });
        }
        Ok(Positions(positions))
    }

    /// Why this node runs no partition `group`: the map neither has nor is
    /// allocating one such when this node leads partition 0, which holds
    /// the map, and has applied everything committed there (a position
    /// naming it was never handed out); otherwise a split may be adding it
    /// here.
    async fn missing(&self, group: u32) -> ReadError {
        let unknown = ReadError::UnknownPartition(group);
        let Some(first) = self.partition(super::FIRST) else {
            return unknown;
        };
        // Confirms this node still leads, once partition 0 applied all it
        // committed.
        if first.read_index().await.is_err() {
            return unknown;
        }
        match first.store().layout() {
            Ok(Some(layout)) if !layout.names(group) => ReadError::NoPartition {
                partition: group,
                count: layout.map.count(),
            },
            Ok(None) if group >= self.base_count() => ReadError::NoPartition {
                partition: group,
                count: self.base_count(),
            },
            _ => unknown,
        }
    }

    /// A read another member sent here: answered once this replica, one
    /// of the partition's voters, reflects its position.
    pub async fn read_here(&self, group: u32, read: Read) -> Vec<u8> {
        let answer = async {
            let partition = self
                .partition(group)
                .ok_or(ReadError::UnknownPartition(group))?;
            if !partition.hosted() {
                return Err(ReadError::NoQuorum(format!(
                    "node {} does not host partition {group}",
                    self.id
                )));
            }
            if let Some(verdict) = partition.diverged() {
                return Err(ReadError::Diverged(describe(&verdict)));
            }
            partition.read_at(read.wait, READ_WAIT_MAX).await?;
            Ok(read.query.answer(partition.views()))
        };
        match answer.await {
            Ok(bytes) => bytes,
            Err(refused) => {
                postcard::to_allocvec(&Err::<(), _>(refused)).expect("errors serialize")
            }
        }
    }

    /// A system account's balances are the sum of its shards'.
    pub(super) async fn account_at(
        &self,
        account_id: &str,
        at: &Positions,
    ) -> Result<Option<AccountView>, ReadError> {
        let read = |group: u32| {
            let query = Query::Account(account_id.to_string());
            self.router
                .read(group, at, query, move |views| views.account(account_id))
        };
        let home = self.router.map().of(account_id);
        let Some(view) = read(home).await? else {
            return Ok(None);
        };
        if view.kind != AccountKind::System || self.router.count() == 1 {
            return Ok(Some(view));
        }
        let shards = join_all(self.partitions().map(|p| read(p.id))).await;
        let shards = shards.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok(sum_shards(shards.into_iter().flatten()))
    }

    pub(super) async fn balance_at_time(
        &self,
        account_id: &str,
        currency: &str,
        at_ms: u64,
        at: &Positions,
    ) -> Result<Option<(i64, i64)>, ReadError> {
        let reads = self.partitions().map(|p| {
            let query = Query::BalanceAt {
                account: account_id.to_string(),
                currency: currency.to_string(),
                at_ms,
            };
            self.router.read(p.id, at, query, move |views| {
                views.balance_at(account_id, currency, at_ms)
            })
        });
        let mut sum: Option<(i64, i64)> = None;
        for shard in join_all(reads).await {
            if let Some((available, reserved)) = shard? {
                let (a, r) = sum.unwrap_or_default();
                sum = Some((a.saturating_add(available), r.saturating_add(reserved)));
            }
        }
        Ok(sum)
    }

    /// A system account's history is its home shard's.
    pub(super) async fn history_at(
        &self,
        account_id: &str,
        after: Option<u64>,
        limit: usize,
        at: &Positions,
    ) -> Result<Option<HistoryPage>, ReadError> {
        let query = Query::History {
            account: account_id.to_string(),
            after,
            limit: limit as u64,
        };
        let home = self.router.map().of(account_id);
        self.router
            .read(home, at, query, |views| {
                views.history(account_id, after, limit)
            })
            .await
    }

    /// A transfer is found in every partition that holds a part of it
    /// (its source, and across partitions its destination).
    pub(super) async fn transfer_at(
        &self,
        id: Txid,
        at: &Positions,
    ) -> Result<Option<TransferView>, ReadError> {
        let reads = self.partitions().map(|p| {
            self.router
                .read(p.id, at, Query::Transfer(id), move |views| {
                    views.transfer(id)
                })
        });
        let mut parts = Vec::new();
        for part in join_all(reads).await {
            parts.extend(part?);
        }
        if parts.len() == 1 {
            return Ok(parts.pop());
        }
        Ok(merge_transfer(id, parts))
    }
}

/// The sum of an account's shards' balances, by currency.
fn sum_shards(views: impl Iterator<Item = AccountView>) -> Option<AccountView> {
    let mut sum: Option<AccountView> = None;
    for view in views {
        let Some(total) = &mut sum else {
            sum = Some(view);
            continue;
        };
        for balance in view.balances {
            match total
                .balances
                .binary_search_by(|b| b.currency.cmp(&balance.currency))
            {
                Ok(at) => {
                    let held = &mut total.balances[at];
                    held.available = held.available.saturating_add(balance.available);
                    held.reserved = held.reserved.saturating_add(balance.reserved);
                }
                Err(at) => total.balances.insert(at, balance),
            }
        }
    }
    sum
}

/// One view of a transfer from the partitions that hold a part of it:
/// every event, and the state the whole is in.
fn merge_transfer(id: Txid, parts: Vec<TransferView>) -> Option<TransferView> {
    if parts.is_empty() {
        return None;
    }
    let mut events: Vec<_> = parts.iter().flat_map(|p| p.events.clone()).collect();
    events.sort_by_key(|e| (e.timestamp_ms, e.log_index));
    for (seq, event) in events.iter_mut().enumerate() {
        event.seq = seq as u64 + 1;
    }
    let failed = parts.iter().find_map(|p| match p.state {
        TransferState::Failed(reason) => Some(reason),
        _ => None,
    });
    // A cancelled step says less than the refusal that caused it.
    let refusal = parts.iter().find_map(|p| match p.state {
        TransferState::Failed(reason) if reason != Reason::TransferCancelled => Some(reason),
        _ => None,
    });
    // A saga's source says nothing more once its credit landed; a TC/C
    // transfer's reservation and its settle are in two partitions when a
    // split moved its source in between.
    let success = parts.iter().all(|p| p.state == TransferState::Success)
        || events.iter().any(|e| {
            use wallet_core::event::Event as E;
            matches!(e.event, E::Received(_) | E::ReservationSettled(_))
        });
    let state = match (refusal.or(failed), success) {
        (Some(reason), _) => TransferState::Failed(reason),
        (None, true) => TransferState::Success,
        (None, false) => TransferState::Pending,
    };
    Some(TransferView { id, state, events })
}
