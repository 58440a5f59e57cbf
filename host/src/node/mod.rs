//! One wallet node: a partition replica behind the free-space floor, seen
//! by the HTTP edge as a `WalletService`.
//!
//! - `seed`: the group's first tokens.
//! - `space`: the free-space floor.
//! - `server`: `wallet serve`.
//! - `tls`: HTTPS for the edge.

mod seed;
mod server;
mod space;
mod tls;

pub use seed::LEGACY_TOKENS_FILE;
pub use server::{ServeOptions, serve};
pub use space::{FreeSpace, free_bytes};

use crate::Result;
use crate::cluster::Rpc;
use crate::partition::{Group, Member, Partition, PartitionOptions};
use crate::service::{
    AccountView, HistoryPage, MembershipError, NodeStatus, Position, Positions, ReadError,
    Readiness, SubmitError, Submitted, TransferView, WalletService, Who,
};
use crate::sm::{
    Runtime, Version, VersionChange, VersionHash, VersionInfo, VersionOutcome, new_engine,
};
use crate::tokens::{TokenChange, TokenInfo, TokenOutcome, now_ms};
use serde::de::DeserializeOwned;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use wallet_core::Txid;
use wallet_core::codec::Calls;

/// This version of the node runs one partition.
const PARTITION: u32 = 0;

/// How long a read waits for the read models to reflect its position.
pub const READ_WAIT_MAX: Duration = Duration::from_secs(2);
/// How long a write forwarded to the leader may take; a little more than
/// the leader's own wait for a commit.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(6);

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
    pub group: Group,
    /// The admin token to seed a new group with (else a random one, printed
    /// once).
    pub admin_token: Option<String>,
}

/// Where a write goes.
enum Route {
    Here,
    /// The leader's id and address.
    Leader(u64, String),
}

pub struct Node {
    id: u64,
    partition: Arc<Partition>,
    /// Where candidate versions are checked before a deploy.
    engine: wasmtime::Engine,
    space: FreeSpace,
    group: Group,
}

impl Node {
    /// Opens (or creates) the node's data and brings its partition up.
    pub async fn start(config: &NodeConfig) -> Result<Node> {
        let space = FreeSpace::watch(config.data_dir.clone(), config.free_space_floor_bytes);
        let seed = seed::Seed::new(&config.data_dir, config.admin_token.clone())?;
        let engine = new_engine(Some(&config.wasm_cache_dir))?;
        let member = Member {
            node_id: config.node_id,
            advertise: config.advertise.clone(),
        };
        let dir = config.data_dir.join(format!("partition-{PARTITION}"));
        let partition = Partition::open(
            &dir,
            PARTITION,
            &member,
            &config.group,
            &engine,
            &config.partition,
        )
        .await?;
        // A group of one leads already: its tokens are there before it
        // serves. A member of a replicated group seeds once it leads.
        if config.group.members.len() <= 1 {
            seed.plant(Arc::clone(&partition)).await;
        } else {
            tokio::spawn(seed.plant(Arc::clone(&partition)));
        }
        Ok(Node {
            id: config.node_id,
            partition,
            engine,
            space,
            group: config.group.clone(),
        })
    }

    /// The replica of partition `group` this node holds.
    pub fn partition(&self, group: u32) -> Option<&Partition> {
        (group == PARTITION).then_some(&*self.partition)
    }

    /// This node's replica of partition `group`, if it may take a write:
    /// not fenced, and above the free-space floor. Writes taken here are
    /// never forwarded (another member may have forwarded them here).
    fn writable(&self, group: u32) -> Result<&Partition, SubmitError> {
        let Some(partition) = self.partition(group) else {
            return Err(SubmitError::Internal(format!("no partition {group} here")));
        };
        if let Some(verdict) = partition.diverged() {
            return Err(SubmitError::Diverged(describe(&verdict)));
        }
        self.space.check()?;
        Ok(partition)
    }

    pub async fn submit_here(&self, group: u32, calls: Calls) -> Result<Submitted, SubmitError> {
        self.writable(group)?.submit(calls).await
    }

    /// Membership changes need the members' network.
    fn replicated(&self) -> Result<(), MembershipError> {
        match self.group.peers {
            Some(_) => Ok(()),
            None => Err(MembershipError::Refused(
                "this node runs alone (no --peers): it has no cluster network to add members over"
                    .into(),
            )),
        }
    }

    pub async fn change_tokens_here(
        &self,
        group: u32,
        change: TokenChange,
    ) -> Result<(TokenOutcome, Position), SubmitError> {
        self.writable(group)?.change_tokens(change).await
    }

    pub async fn change_versions_here(
        &self,
        group: u32,
        change: VersionChange,
    ) -> Result<(VersionOutcome, Position), SubmitError> {
        self.writable(group)?.change_versions(change).await
    }

    /// Where a write goes: here when this node leads (or is alone), else
    /// to the leader; with no leader known, nowhere yet.
    fn route(&self) -> Result<Route, SubmitError> {
        if let Some(verdict) = self.partition.diverged() {
            return Err(SubmitError::Diverged(describe(&verdict)));
        }
        if self.group.members.len() <= 1 {
            return Ok(Route::Here);
        }
        match self.partition.leader() {
            Some((id, _)) if id == self.id => Ok(Route::Here),
            Some((id, addr)) => Ok(Route::Leader(id, addr)),
            None => Err(SubmitError::NotLeader { leader: None }),
        }
    }

    /// Sends a write to the leader, which answers as if it came to it. A
    /// leader that froze or died mid-call is not waited for: once another
    /// is known, the client retries.
    async fn forward<T: DeserializeOwned>(
        &self,
        leader: u64,
        addr: &str,
        rpc: Rpc,
        body: Vec<u8>,
    ) -> Result<T, SubmitError> {
        let Some(peers) = &self.group.peers else {
            return Err(SubmitError::NotLeader { leader: None });
        };
        let unavailable =
            |why: String| SubmitError::NoQuorum(format!("forwarding to the leader: {why}"));
        let mut metrics = self.partition.raft().metrics();
        let replaced = metrics.wait_for(|m| m.current_leader != Some(leader));
        let call = peers.call(addr, PARTITION, rpc, body, FORWARD_TIMEOUT);
        let bytes = tokio::select! {
            answer = call => answer.map_err(|e| unavailable(e.to_string()))?,
            _ = replaced => return Err(SubmitError::NoQuorum(
                "the leader changed while the write was forwarded".into(),
            )),
        };
        postcard::from_bytes::<Result<T, SubmitError>>(&bytes)
            .map_err(|e| unavailable(format!("undecodable answer: {e}")))?
    }

    /// Resolves when the node cannot go on (its Raft group or its projector
    /// stopped on a fatal error), with why.
    pub async fn stopped(&self) -> String {
        let mut metrics = self.partition.raft().metrics();
        let raft = async {
            let why = match metrics.wait_for(|m| m.running_state.is_err()).await {
                Ok(m) => match &m.running_state {
                    Err(fatal) => format!("raft stopped: {fatal}"),
                    Ok(()) => "raft stopped".into(),
                },
                Err(_) => "raft stopped".into(),
            };
            // A fenced replica stopped its Raft on purpose; it stays up to
            // say why.
            if self.partition.diverged().is_some() {
                std::future::pending::<()>().await;
            }
            why
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
    /// Writes go to the leader: here if this node leads (or is alone),
    /// forwarded otherwise; with no leader known, 503 to retry.
    async fn submit(&self, calls: Calls) -> Result<Submitted, SubmitError> {
        match self.route()? {
            Route::Here => self.submit_here(PARTITION, calls).await,
            Route::Leader(id, addr) => {
                self.forward(id, &addr, Rpc::Submit, calls.into_bytes())
                    .await
            }
        }
    }

    fn authenticate(&self, token: &str) -> Option<Who> {
        self.partition.store().authenticate(token, now_ms())
    }

    fn tokens(&self) -> Vec<TokenInfo> {
        self.partition.store().tokens()
    }

    async fn change_tokens(
        &self,
        change: TokenChange,
    ) -> Result<(TokenOutcome, Positions), SubmitError> {
        let (outcome, position) = match self.route()? {
            Route::Here => self.change_tokens_here(PARTITION, change).await?,
            Route::Leader(id, addr) => {
                let body = postcard::to_allocvec(&change).expect("token changes serialize");
                self.forward(id, &addr, Rpc::Tokens, body).await?
            }
        };
        Ok((outcome, Positions(vec![position])))
    }

    fn versions(&self) -> Vec<VersionInfo> {
        self.partition.store().versions()
    }

    fn snapshot_index(&self) -> Option<u64> {
        let current = self.partition.snapshots().current().ok()??;
        current.meta.last_log_id.map(|id| id.index)
    }

    fn check_version(&self, bytes: &[u8]) -> Result<VersionHash> {
        let version = Version::compile(&self.engine, bytes)?;
        let hash = version.hash;
        Runtime::new(&self.engine, version)?;
        Ok(hash)
    }

    async fn verify(
        &self,
        hash: VersionHash,
        window: crate::audit::Window,
        progress: tokio::sync::watch::Sender<(u64, u64)>,
    ) -> Result<crate::audit::Report> {
        if !self.partition.store().schedule().is_deployed(hash) {
            return Err(crate::Error::UnknownVersion(hash));
        }
        let bytes = self
            .partition
            .store()
            .version(hash)?
            .ok_or(crate::Error::UnknownVersion(hash))?;
        let partition = Arc::clone(&self.partition);
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || {
            partition.verify(&engine, bytes, window, |at, of| {
                progress.send_replace((at, of));
            })
        })
        .await
        .map_err(|e| crate::Error::StoreFailed(format!("the verification stopped: {e}")))?
    }

    async fn change_versions(
        &self,
        change: VersionChange,
    ) -> Result<(VersionOutcome, Positions), SubmitError> {
        let (outcome, position) = match self.route()? {
            Route::Here => self.change_versions_here(PARTITION, change).await?,
            Route::Leader(id, addr) => {
                let body = postcard::to_allocvec(&change).expect("version changes serialize");
                self.forward(id, &addr, Rpc::Versions, body).await?
            }
        };
        Ok((outcome, Positions(vec![position])))
    }

    async fn read_at(&self, wanted: Option<Positions>) -> Result<Positions, ReadError> {
        if let Some(verdict) = self.partition.diverged() {
            return Err(ReadError::Diverged(describe(&verdict)));
        }
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

    /// Asks the leader (this node, or over the network) for its read index.
    async fn read_index(&self) -> Result<Positions, ReadError> {
        if let Some(verdict) = self.partition.diverged() {
            return Err(ReadError::Diverged(describe(&verdict)));
        }
        let index = match self.partition.leader() {
            Some((id, _)) if id == self.id => self.partition.read_index().await?,
            Some((_, addr)) => {
                let Some(peers) = &self.group.peers else {
                    return Err(ReadError::NoQuorum("no peers configured".into()));
                };
                let unavailable =
                    |why: String| ReadError::NoQuorum(format!("asking the leader: {why}"));
                let bytes = peers
                    .call(
                        &addr,
                        PARTITION,
                        Rpc::ReadIndex,
                        Vec::new(),
                        FORWARD_TIMEOUT,
                    )
                    .await
                    .map_err(|e| unavailable(e.to_string()))?;
                postcard::from_bytes::<Result<u64, ReadError>>(&bytes)
                    .map_err(|e| unavailable(format!("undecodable answer: {e}")))??
            }
            None => return Err(ReadError::NoQuorum("no leader is known".into())),
        };
        Ok(Positions(vec![Position {
            partition: PARTITION,
            index,
        }]))
    }

    async fn add_member(&self, node_id: u64, address: String) -> Result<Vec<u64>, MembershipError> {
        self.replicated()?;
        self.partition.add_member(node_id, address).await
    }

    async fn remove_member(&self, node_id: u64) -> Result<Vec<u64>, MembershipError> {
        self.replicated()?;
        self.partition.remove_member(node_id).await
    }

    async fn backup(&self) -> Result<crate::backup::BackupStream> {
        crate::backup::stream(&self.partition).await
    }

    fn account(&self, account_id: &str) -> Result<Option<AccountView>> {
        self.partition.views().account(account_id)
    }

    fn balance_at(
        &self,
        account_id: &str,
        currency: &str,
        at_ms: u64,
    ) -> Result<Option<(i64, i64)>> {
        self.partition
            .views()
            .balance_at(account_id, currency, at_ms)
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
            active_version: self.partition.active_version().map(|h| h.to_string()),
            diverged: self.partition.diverged(),
        }
    }

    fn readiness(&self) -> Readiness {
        if let Some(verdict) = self.partition.diverged() {
            return Readiness::NotReady(format!("diverged: {}", describe(&verdict)));
        }
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

fn describe(verdict: &crate::partition::Divergence) -> String {
    format!(
        "at event record {} it holds head {}, the majority {}",
        verdict.seq, verdict.held, verdict.majority
    )
}
