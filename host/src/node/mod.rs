//! One wallet node: a partition replica behind the free-space floor, seen
//! by the HTTP edge as a `WalletService`.
//!
//! - `space`: the free-space floor.
//! - `server`: `wallet serve`.
//! - `tls`: HTTPS for the edge.

mod server;
mod space;
mod tls;

pub use server::{ServeOptions, serve};
pub use space::{FreeSpace, free_bytes};

use crate::Result;
use crate::partition::{Member, Partition, PartitionOptions};
use crate::service::{
    AccountView, HistoryPage, NodeStatus, Positions, ReadError, Readiness, SubmitError, Submitted,
    TransferView, WalletService,
};
use crate::sm::new_engine;
use std::path::PathBuf;
use std::time::Duration;
use wallet_core::Txid;
use wallet_core::codec::Calls;

/// This version of the node runs one partition.
const PARTITION: u32 = 0;

/// How long a read waits for the read models to reflect its position.
pub const READ_WAIT_MAX: Duration = Duration::from_secs(2);

#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub data_dir: PathBuf,
    pub node_id: u64,
    /// The address peers and clients reach this node at.
    pub advertise: String,
    /// Writes are refused while less is free on the data directory's
    /// filesystem.
    pub free_space_floor_bytes: u64,
    /// Where compiled state-machine versions are kept across starts.
    pub wasm_cache_dir: PathBuf,
    pub partition: PartitionOptions,
}

pub struct Node {
    id: u64,
    partition: Partition,
    space: FreeSpace,
}

impl Node {
    /// Opens (or creates) the node's data and brings its partition up.
    pub async fn start(config: &NodeConfig) -> Result<Node> {
        let space = FreeSpace::watch(config.data_dir.clone(), config.free_space_floor_bytes);
        let engine = new_engine(Some(&config.wasm_cache_dir))?;
        let member = Member {
            node_id: config.node_id,
            advertise: config.advertise.clone(),
        };
        let dir = config.data_dir.join(format!("partition-{PARTITION}"));
        let partition =
            Partition::open(&dir, PARTITION, &member, &engine, &config.partition).await?;
        Ok(Node {
            id: config.node_id,
            partition,
            space,
        })
    }

    /// Resolves when the node cannot go on (its Raft group or its projector
    /// stopped on a fatal error), with why.
    pub async fn stopped(&self) -> String {
        let mut metrics = self.partition.raft().metrics();
        let raft = async {
            match metrics.wait_for(|m| m.running_state.is_err()).await {
                Ok(m) => match &m.running_state {
                    Err(fatal) => format!("raft stopped: {fatal}"),
                    Ok(()) => "raft stopped".into(),
                },
                Err(_) => "raft stopped".into(),
            }
        };
        let projector = self.partition.views().stopped();
        tokio::select! {
            why = raft => why,
            why = projector => why,
        }
    }

    /// Stops Raft after the edge has stopped taking requests, and makes
    /// what was applied durable.
    pub async fn shutdown(&self) {
        self.partition.shutdown().await;
    }
}

impl WalletService for Node {
    async fn submit(&self, calls: Calls) -> Result<Submitted, SubmitError> {
        self.space.check()?;
        self.partition.submit(calls).await
    }

    async fn read_at(&self, wanted: Option<Positions>) -> Result<Positions, ReadError> {
        let index = match wanted {
            None => None,
            Some(positions) => {
                let mut index = None;
                for position in positions.0 {
                    if position.partition != PARTITION {
                        return Err(ReadError::UnknownPartition(position.partition));
                    }
                    index = index.max(Some(position.index));
                }
                index
            }
        };
        let position = self.partition.read_at(index, READ_WAIT_MAX).await?;
        Ok(Positions(vec![position]))
    }

    fn account(&self, account_id: &str) -> Result<Option<AccountView>> {
        self.partition.views().account(account_id)
    }

    fn history(
        &self,
        account_id: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Option<HistoryPage>> {
        self.partition.views().history(account_id, after, limit)
    }

    fn transfer(&self, id: Txid) -> Result<Option<TransferView>> {
        self.partition.views().transfer(id)
    }

    fn status(&self) -> NodeStatus {
        let metrics = self.partition.raft().metrics().borrow().clone();
        let meta = self.partition.store().meta();
        let reflected = self.partition.views().reflected();
        NodeStatus {
            node_id: self.id,
            leader: metrics.current_leader,
            members: metrics.membership_config.membership().voter_ids().collect(),
            partition: PARTITION,
            applied_index: meta.applied_index,
            projected_index: reflected.index,
            projector_lag_records: meta.events_last.saturating_sub(reflected.events),
            in_flight: self.partition.views().in_flight().unwrap_or_default(),
            chain_head: hex::encode(meta.chain_head),
            active_version: self.partition.version().hash.to_string(),
        }
    }

    fn readiness(&self) -> Readiness {
        let metrics = self.partition.raft().metrics().borrow().clone();
        if let Err(fatal) = &metrics.running_state {
            return Readiness::NotReady(format!("stopped: {fatal}"));
        }
        if metrics.current_leader.is_none() {
            return Readiness::NotReady("no_leader: the group has no leader".into());
        }
        if let Err(error) = self.space.check() {
            let free = self.space.available();
            return Readiness::NotReady(format!(
                "insufficient_storage: {error} ({free} bytes free)"
            ));
        }
        Readiness::Ready
    }
}
