//! One partition replica: its Raft group over the segment log, its store
//! (guest state and event log), its read models and projector, and the
//! batcher in front of it.
//!
//! - `batcher`: group commit in front of Raft.
//! - `divergence`: replicas comparing event-chain heads, and fencing.
//! - `split`: what a split does to the state of the partition it halves.

mod batcher;
mod divergence;
pub mod split;
#[cfg(test)]
mod tests;

pub use batcher::{BATCHES_IN_FLIGHT_MAX, Batcher, QUEUED_COMMANDS_MAX};
pub use divergence::{DIVERGED_FILE, Divergence, Heads, HeadsRequest};
pub use split::{Child, SplitOutcome, SplitRefused, Splits};

use crate::audit::{Base, History, Report, Shadow, Verifier, Window};
use crate::cluster::Peers;
use crate::log::LogOptions;
use crate::node::{Holdings, Range};
use crate::raft::{
    BatchReply, CHECKPOINT_DIR, CommandBatch, LogStore, Network, Raft, Request, Snapshots,
    StateMachine,
};
use crate::rocks::Tuning;
use crate::service::{MembershipError, Position, ReadError, Reply, SubmitError, Submitted};
use crate::sm::{Executor, VersionChange, VersionHash, VersionOutcome, VersionRefused};
use crate::store::{Store, StoreOptions};
use crate::tokens::{StoredToken, TokenChange, TokenOutcome};
use crate::views::Views;
use crate::{Error, Result};
use openraft::ChangeMembers;
use openraft::error::{ClientWriteError, InitializeError, RaftError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wallet_core::codec::Calls;
use wallet_core::{AccountKind, Call, Caller, Command, OpenAccount, Reason, account};

/// How long a fresh or restarted single-member group may take to elect itself.
const LEADER_WAIT: Duration = Duration::from_secs(30);

/// How a partition uses its disk and memory.
#[derive(Clone, Debug)]
pub struct PartitionOptions {
    pub store: StoreOptions,
    /// Raft-log segment size.
    pub log_segment_bytes: usize,
    /// The read models' RocksDB.
    pub views: Tuning,
    /// Entries between two snapshots.
    pub snapshot_every: u64,
}

/// Where a partition's node is, for its Raft group.
#[derive(Clone, Debug)]
pub struct Member {
    pub node_id: u64,
    pub advertise: String,
}

/// The group a partition replica belongs to.
#[derive(Clone, Debug)]
pub struct Group {
    /// Every member's id and HTTP address; empty for a group of one (this
    /// node alone).
    pub members: BTreeMap<u64, String>,
    /// How members reach each other; `None` for a group of one.
    pub peers: Option<Peers>,
    /// A new member of a running group, or a member restarted: it waits
    /// to be added by the leader rather than initialize a group of its
    /// own (a partition it was never given stays empty).
    pub join: bool,
}

impl Group {
    /// A group of one: this node alone.
    pub fn alone() -> Group {
        Group {
            members: BTreeMap::new(),
            peers: None,
            join: false,
        }
    }
}

fn membership_error(
    error: openraft::error::RaftError<u64, ClientWriteError<u64, openraft::BasicNode>>,
) -> MembershipError {
    match error {
        openraft::error::RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => {
            MembershipError::NotLeader {
                leader: forward.leader_node.map(|n| n.addr),
            }
        }
        other => MembershipError::Refused(other.to_string()),
    }
}

/// How long a removed voter may take to hear that it no longer votes.
const HEAR_WAIT: Duration = Duration::from_secs(10);

/// How long confirming leadership for a linearizable read may take.
const READ_INDEX_WAIT: Duration = Duration::from_secs(2);

pub struct Partition {
    pub id: u32,
    holdings: Holdings,
    dir: PathBuf,
    raft: Raft,
    store: Arc<Store>,
    views: Views,
    batcher: Batcher,
    snapshots: Snapshots,
    /// Whether this replica opened the system accounts (or found them
    /// there: opening is a no-op then) since it started.
    system_accounts_open: AtomicBool,
    /// Held while the system accounts are opened.
    opening: tokio::sync::Mutex<()>,
    /// Set when this replica's chain was found to differ from its group's.
    fenced: Mutex<Option<Divergence>>,
    /// The Raft log and command archive.
    log: LogStore,
}

impl Partition {
    /// Opens (or creates) the partition in `dir` and brings its group up;
    /// `holdings` names it and the accounts it holds.
    /// A group of one returns once this node leads and the system accounts
    /// exist; a member of a replicated group returns at once, and opens the
    /// system accounts before the first write it takes as the leader.
    pub async fn open(
        dir: &Path,
        holdings: Holdings,
        member: &Member,
        group: &Group,
        engine: &wasmtime::Engine,
        options: &PartitionOptions,
    ) -> Result<Arc<Partition>> {
        let id = holdings.partition();
        divergence::refuse_if_diverged(dir)?;
        let store = Arc::new(Store::open(&dir.join("state"), &options.store)?);
        let holdings = held(&store, holdings)?;
        let births = split::Births {
            dir: dir.parent().unwrap_or(dir).to_path_buf(),
            options: options.store.clone(),
        };
        let mut executor = Executor::new(engine);
        if let Some(hash) = store.version_at(store.applied_index() + 1) {
            // Refused here, at start, rather than at the next batch.
            executor.runtime(hash, || {
                store.version(hash)?.ok_or(Error::UnknownVersion(hash))
            })?;
            tracing::info!(partition = id, version = %hash, "state machine version");
        }
        let log_options = LogOptions {
            segment_bytes: options.log_segment_bytes,
        };
        let log = LogStore::open(&dir.join("raft"), log_options, store.clone())?;
        let snapshots_dir = dir.join("snapshots");
        let snapshots =
            Snapshots::open(store.clone(), snapshots_dir.clone()).map_err(|source| {
                Error::DataDir {
                    path: snapshots_dir,
                    source,
                }
            })?;
        let state_machine = StateMachine::new(
            store.clone(),
            executor,
            holdings,
            snapshots.clone(),
            log.clone(),
            births,
        );
        let views = Views::start(dir, &options.views, store.event_log(), store.subscribe())?;
        let config = raft_config(options.snapshot_every)?;
        let network = Network::new(group.peers.clone(), id, store.event_log(), log.clone());
        let raft = Raft::new(member.node_id, config, network, log.clone(), state_machine)
            .await
            .map_err(|e| Error::Raft(e.to_string()))?;
        let alone = group.members.len() <= 1;
        if !group.join || alone {
            initialize(&raft, member, &group.members).await?;
        }
        let batcher = Batcher::start(raft.clone(), store.clone(), id);
        let partition = Arc::new(Partition {
            id,
            holdings,
            dir: dir.to_path_buf(),
            raft,
            store,
            views,
            batcher,
            snapshots,
            system_accounts_open: AtomicBool::new(false),
            opening: tokio::sync::Mutex::new(()),
            fenced: Mutex::new(None),
            log,
        });
        if alone {
            partition.open_system_accounts().await?;
        }
        if let Some(peers) = &group.peers {
            tokio::spawn(divergence::watch(Arc::downgrade(&partition), peers.clone()));
        }
        Ok(partition)
    }

    /// Opens the system accounts as the node itself (a no-op once they
    /// exist), after activating the embedded release if no version is
    /// active yet: the first entries of a new group.
    async fn open_system_accounts(&self) -> Result<()> {
        // One at a time: concurrent first writes wait for the first.
        let _opening = self.opening.lock().await;
        if self.system_accounts_open.load(Ordering::Acquire) {
            return Ok(());
        }
        self.activate_release().await?;
        let mut calls = Calls::new();
        for name in account::SYSTEM_ACCOUNTS {
            let open = Command::OpenAccount(OpenAccount {
                account: name,
                owner: None,
                kind: AccountKind::System,
            });
            calls
                .push(&Call {
                    caller: Caller::SYSTEM,
                    command: open,
                })
                .map_err(|e| Error::Raft(e.to_string()))?;
        }
        let submitted = self
            .batcher
            .submit(calls, None)
            .await
            .map_err(|e| Error::Raft(format!("opening the system accounts: {e}")))?;
        for reply in submitted.replies {
            match reply {
                Reply::Accepted | Reply::Rejected(Reason::AccountExists) => {}
                other => return Err(Error::Raft(format!("opening a system account: {other:?}"))),
            }
        }
        self.system_accounts_open.store(true, Ordering::Release);
        Ok(())
    }

    /// Deploys and activates the release this build embeds, through the
    /// log, unless a version is active: one entry, which changes nothing
    /// where the log already activated one (this replica may not have
    /// applied all of its log yet).
    async fn activate_release(&self) -> Result<()> {
        if self.store.schedule().has_active() {
            return Ok(());
        }
        let bootstrap = VersionChange::Bootstrap(crate::sm::release_bytes().to_vec());
        let outcome = self
            .change_versions(bootstrap)
            .await
            .map_err(|e| Error::Raft(format!("activating the release: {e}")))?;
        match outcome.0 {
            VersionOutcome::Activated { .. }
            | VersionOutcome::Refused(VersionRefused::AlreadyActive(_)) => Ok(()),
            other => Err(Error::Raft(format!("activating the release: {other:?}"))),
        }
    }

    /// Proposes a change to the version schedule (this replica must lead);
    /// answers once it is applied here.
    pub async fn change_versions(
        &self,
        change: VersionChange,
    ) -> Result<(VersionOutcome, Position), SubmitError> {
        self.propose(Request::Versions(change), |reply| reply.versions)
            .await
    }

    /// Proposes an entry that is not a batch (this replica must lead);
    /// answers with what `outcome` takes from its reply once it is applied
    /// here.
    async fn propose<T>(
        &self,
        request: Request,
        outcome: impl FnOnce(BatchReply) -> Option<T>,
    ) -> Result<(T, Position), SubmitError> {
        let reply = batcher::write(&self.raft, request).await?;
        let position = Position {
            partition: self.id,
            index: reply.index,
        };
        let outcome = outcome(reply).ok_or_else(|| {
            SubmitError::Internal(format!(
                "the entry at index {} applied without an outcome",
                position.index
            ))
        })?;
        Ok((outcome, position))
    }

    /// Submits through the batcher; on a leader that has not yet, opens
    /// the system accounts first, so that no write of a new group finds
    /// them missing. `home`: the calls are a coordinator's steps, each
    /// acting on that account.
    pub async fn submit(
        &self,
        calls: Calls,
        home: Option<String>,
    ) -> Result<Submitted, SubmitError> {
        if !self.system_accounts_open.load(Ordering::Acquire) {
            self.open_system_accounts()
                .await
                .map_err(|e| SubmitError::NoQuorum(e.to_string()))?;
        }
        self.batcher.submit(calls, home).await
    }

    /// Splits the partition: the upper half of its range goes to `child`
    /// (see `split`), named `id` in the postings of the money that moves
    /// (this replica must lead).
    pub async fn split(
        &self,
        child: u32,
        id: u128,
    ) -> Result<(SplitOutcome, Position), SubmitError> {
        let entry = crate::raft::SplitEntry { child, id };
        self.propose(Request::Split(entry), |reply| reply.split)
            .await
    }

    /// Proposes a map entry (this replica, of partition 0, must lead).
    pub async fn change_map(
        &self,
        change: crate::node::MapChange,
    ) -> Result<(crate::node::MapOutcome, Position), SubmitError> {
        self.propose(Request::Map(change), |reply| reply.map).await
    }

    /// Closes finished transfers in the coordinator's journal (this
    /// replica must lead).
    pub async fn finish(&self, ids: Vec<u128>) -> Result<Position, SubmitError> {
        self.propose(Request::Finished(ids), |_| Some(()))
            .await
            .map(|(_, position)| position)
    }

    /// An empty batch, stamped now: the log's time moves on a partition
    /// with no traffic, so the coordinator's deadlines pass (this replica
    /// must lead).
    pub async fn tick(&self) -> Result<Position, SubmitError> {
        let batch = CommandBatch {
            timestamp_ms: crate::tokens::now_ms().max(self.store.timestamp_ms()),
            calls: Calls::new().into_bytes(),
        };
        self.propose(Request::Batch(batch), |_| Some(()))
            .await
            .map(|(_, position)| position)
    }

    /// Proposes a change to the tokens (this replica must lead); answers
    /// once it is applied here.
    pub async fn change_tokens(
        &self,
        change: TokenChange,
    ) -> Result<(TokenOutcome, Position), SubmitError> {
        self.propose(Request::Tokens(change), |reply| reply.tokens)
            .await
    }

    /// Seeds the group's first tokens, as its leader, unless it has some;
    /// whether `seed` was taken.
    pub async fn seed_tokens(&self, seed: Vec<StoredToken>) -> Result<bool, SubmitError> {
        if self.store.has_tokens() {
            return Ok(false);
        }
        match self.change_tokens(TokenChange::Seed(seed)).await?.0 {
            TokenOutcome::Seeded(taken) => Ok(taken),
            other => Err(SubmitError::Internal(format!(
                "a seed applied as {other:?}"
            ))),
        }
    }

    /// This replica as `wallet cluster status` shows it.
    pub fn status(&self) -> crate::service::PartitionStatus {
        let metrics = self.raft.metrics().borrow().clone();
        let meta = self.store.meta();
        let reflected = self.views.reflected();
        crate::service::PartitionStatus {
            partition: self.id,
            leader: metrics.current_leader,
            members: metrics.membership_config.membership().voter_ids().collect(),
            hosted: self.hosted(),
            range: self.range(),
            applied_index: meta.applied_index,
            projected_index: reflected.index,
            projector_lag_records: meta.events_last.saturating_sub(reflected.events),
            in_flight: self.views.in_flight().unwrap_or_default(),
            chain_head: hex::encode(meta.chain_head),
            active_version: self.active_version().map(|h| h.to_string()),
            transfers_in_flight: self.store.in_flight().map_or(0, |j| j.len()),
            diverged: self.diverged(),
        }
    }

    pub fn views(&self) -> &Views {
        &self.views
    }

    /// The hash range this replica holds now (it may have split since it
    /// opened).
    fn range(&self) -> Range {
        held(&self.store, self.holdings).map_or(self.holdings.range(), |h| h.range())
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// Replays this replica's recorded history in `window`, up to what it
    /// has applied now, through `candidate` beside the versions that ran
    /// it (`crate::audit::Verifier`). Blocking CPU work; `progress` hears
    /// the index reached and the last one.
    pub fn verify(
        &self,
        engine: &wasmtime::Engine,
        candidate: Vec<u8>,
        window: Window,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<Report> {
        let (mut history, mut verifier) = match window {
            Window::Genesis => self.verifier_at_genesis(engine, candidate)?,
            Window::Snapshot => self.verifier_at_snapshot(engine, candidate)?,
        };
        // Read after the snapshot was picked, which may be newer.
        let applied = self.store.applied_index();
        let through = self.log.archived_through(applied);
        if through < applied {
            return Err(Error::ArchiveGap {
                from: through + 1,
                to: applied,
            });
        }
        let from = verifier.from();
        if from > applied {
            // Nothing replayed must not pass for history found identical.
            return Err(Error::EmptyWindow { snapshot: from - 1 });
        }
        for index in from..=through {
            let stored = self.log.archived(index)?.ok_or(Error::ArchiveGap {
                from: index,
                to: through,
            })?;
            if let Some(batch) = history.next(index, &stored)? {
                if batch.split.is_some() {
                    return Err(Error::SplitInWindow { index });
                }
                verifier.batch(&history, &batch)?;
            }
            verifier.reached(index);
            if index % 1024 == 0 || index == through {
                progress(index, through);
            }
        }
        Ok(verifier.finish())
    }

    fn verifier_at_genesis(
        &self,
        engine: &wasmtime::Engine,
        candidate: Vec<u8>,
    ) -> Result<(History, Verifier)> {
        // A partition that split holds the split in its history; one split
        // off another starts (at index 0) from the state the split gave it.
        if let Some(splits) = self.store.splits()? {
            let index = splits.children.first().map_or(0, |child| child.index);
            return Err(Error::SplitInWindow { index });
        }
        let genesis = match self.store.meta().genesis_version {
            Some(hash) => Some(
                self.store
                    .version(hash)?
                    .ok_or(Error::UnknownVersion(hash))?,
            ),
            None => None,
        };
        let history = History::new(self.holdings, genesis);
        let verifier = Verifier::new(engine, candidate, 1, Shadow::default())?;
        Ok((history, verifier))
    }

    /// Starts after this replica's current snapshot, on the state, the
    /// schedule and the components its checkpoint holds.
    fn verifier_at_snapshot(
        &self,
        engine: &wasmtime::Engine,
        candidate: Vec<u8>,
    ) -> Result<(History, Verifier)> {
        let (pinned, manifest) = self
            .snapshots
            .pin_current()
            .map_err(|e| {
                // Two newer snapshots built while it was linked remove it.
                Error::StoreFailed(format!("pinning the current snapshot: {e} (try again)"))
            })?
            .ok_or(Error::NoSnapshot)?;
        let checkpoint = crate::store::read_checkpoint(&pinned.as_ref().join(CHECKPOINT_DIR))
            .map_err(|e| {
                let id = &manifest.meta.snapshot_id;
                Error::StoreFailed(format!("reading snapshot {id}: {e}"))
            })?;
        let (holdings, children) = match &checkpoint.splits {
            Some(splits) => (
                Holdings::from_range(self.id, splits.range),
                splits.children.iter().map(|c| c.partition).collect(),
            ),
            None => (self.holdings, Vec::new()),
        };
        let history = History::resume(
            holdings,
            children,
            checkpoint.schedule,
            checkpoint
                .components
                .into_iter()
                .map(|(_, bytes)| bytes.into()),
            checkpoint.meta.timestamp_ms,
            checkpoint.migrated,
            crate::raft::learner(checkpoint.meta.membership.as_deref())?,
        );
        let from = checkpoint.meta.applied_index + 1;
        let state = Shadow::over(Base::new(checkpoint.guest, pinned));
        let verifier = Verifier::new(engine, candidate, from, state)?;
        Ok((history, verifier))
    }

    /// The version that runs the next entry.
    pub fn active_version(&self) -> Option<VersionHash> {
        self.store.version_at(self.store.applied_index() + 1)
    }

    pub fn log(&self) -> &LogStore {
        &self.log
    }

    pub fn snapshots(&self) -> &Snapshots {
        &self.snapshots
    }

    /// The leader's id and HTTP address, as far as this replica knows.
    pub fn leader(&self) -> Option<(u64, String)> {
        let metrics = self.raft.metrics().borrow().clone();
        let id = metrics.current_leader?;
        let node = metrics.membership_config.membership().get_node(&id)?;
        Some((id, node.addr.clone()))
    }

    /// Waits until the read models reflect `index`, or everything applied
    /// now when `None`.
    pub async fn read_at(
        &self,
        index: Option<u64>,
        timeout: Duration,
    ) -> Result<Position, ReadError> {
        let applied = self.store.applied_index();
        let wanted = index.unwrap_or(applied);
        // Positions are indexes of the log: one past its end was never
        // handed out, and waiting for it would wait for nothing. (Raft's
        // metrics may trail what the store has applied.)
        let last = self
            .raft
            .metrics()
            .borrow()
            .last_log_index
            .unwrap_or(0)
            .max(applied);
        // Only the leader knows where the log ends; a follower waits for
        // a position it has not received yet like for one not projected.
        let leads = {
            let metrics = self.raft.metrics();
            let metrics = metrics.borrow();
            metrics.current_leader == Some(metrics.id)
        };
        if wanted > last && leads {
            return Err(ReadError::Beyond { wanted, last });
        }
        match self.views.wait_for(wanted, timeout).await {
            Ok(index) => Ok(Position {
                partition: self.id,
                index,
            }),
            Err(not) => Err(ReadError::NotCaughtUp {
                wanted,
                reflected: not.reflected,
            }),
        }
    }

    /// The index every write acknowledged so far is at, once this node has
    /// confirmed with a majority that it still leads.
    pub async fn read_index(&self) -> Result<u64, ReadError> {
        let unavailable = |why: String| ReadError::NoQuorum(why);
        match tokio::time::timeout(READ_INDEX_WAIT, self.raft.ensure_linearizable()).await {
            Ok(Ok(index)) => Ok(index.map_or(0, |id| id.index)),
            Ok(Err(error)) => Err(unavailable(error.to_string())),
            Err(_) => Err(unavailable(format!(
                "no majority confirmed this leader within {} s",
                READ_INDEX_WAIT.as_secs()
            ))),
        }
    }

    /// Adds `node_id` as a learner, waits until it has caught up, then
    /// makes it a voter.
    pub async fn add_member(
        &self,
        node_id: u64,
        address: String,
    ) -> Result<Vec<u64>, MembershipError> {
        let node = openraft::BasicNode { addr: address };
        self.raft
            .add_learner(node_id, node, true)
            .await
            .map_err(membership_error)?;
        let mut voters = self.voters();
        voters.insert(node_id);
        self.change_voters(voters, false).await
    }

    /// Whether this replica is one of its group's voters (as far as it
    /// knows): it then serves the partition's reads and writes. A replica
    /// being added (a learner) or removed, or of a partition this node was
    /// never given, sends them to one that is.
    pub fn hosted(&self) -> bool {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let id = metrics.id;
        metrics
            .membership_config
            .membership()
            .voter_ids()
            .any(|voter| voter == id)
    }

    /// Every node in this replica's view of its group (voters and
    /// learners), with its address.
    pub fn nodes(&self) -> BTreeMap<u64, String> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        metrics
            .membership_config
            .membership()
            .nodes()
            .map(|(id, node)| (*id, node.addr.clone()))
            .collect()
    }

    /// Removes a voter: first to a learner, then, once it has heard the
    /// change that ends its vote, from the group (a removed voter that did
    /// not hear it would stand for election, and serve its stale reads).
    /// Removing a node the group does not have changes nothing; a removal
    /// cut short (this leader stepped down as its own voter went, or the
    /// learner had not heard yet) is finished by calling it again.
    pub async fn remove_member(&self, node_id: u64) -> Result<Vec<u64>, MembershipError> {
        let mut voters = self.voters();
        if voters.remove(&node_id) {
            if voters.is_empty() {
                return Err(MembershipError::Refused(
                    "the last member cannot be removed".into(),
                ));
            }
            self.change_voters(voters, true).await?;
        }
        if self.nodes().contains_key(&node_id) {
            self.until_heard(node_id).await?;
            let gone = std::collections::BTreeSet::from([node_id]);
            self.raft
                .change_membership(ChangeMembers::RemoveNodes(gone), false)
                .await
                .map_err(membership_error)?;
        }
        Ok(self.voters().into_iter().collect())
    }

    /// Waits, bounded, until `node_id` has received this group's current
    /// membership (nothing to wait for when it is this node).
    async fn until_heard(&self, node_id: u64) -> Result<(), MembershipError> {
        let (me, config) = {
            let metrics = self.raft.metrics();
            let metrics = metrics.borrow();
            (metrics.id, *metrics.membership_config.log_id())
        };
        if node_id == me {
            return Ok(());
        }
        let heard = |m: &openraft::RaftMetrics<u64, openraft::BasicNode>| {
            m.replication
                .as_ref()
                .and_then(|r| r.get(&node_id))
                .is_some_and(|matched| *matched >= config)
        };
        self.raft
            .wait(Some(HEAR_WAIT))
            .metrics(heard, "the removed voter heard of it")
            .await
            .map_err(|_| {
                MembershipError::Refused(format!(
                    "node {node_id} no longer votes in partition {}, but has not heard so yet (it stays a learner, which neither votes nor serves): retry once it is up",
                    self.id
                ))
            })?;
        Ok(())
    }

    /// The voters of the latest configuration (the new half of a joint
    /// one).
    fn voters(&self) -> std::collections::BTreeSet<u64> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let joint = metrics.membership_config.membership().get_joint_config();
        joint.last().cloned().unwrap_or_default()
    }

    /// `retain`: a voter left out stays on as a learner.
    async fn change_voters(
        &self,
        voters: std::collections::BTreeSet<u64>,
        retain: bool,
    ) -> Result<Vec<u64>, MembershipError> {
        let written = self
            .raft
            .change_membership(voters, retain)
            .await
            .map_err(membership_error)?;
        let voters = match written.membership {
            Some(membership) => membership.voter_ids().collect(),
            None => self.voters().into_iter().collect(),
        };
        tracing::info!(?voters, "membership changed");
        Ok(voters)
    }

    /// Stops Raft (after the edge stopped taking requests), then makes
    /// everything applied durable, so the next start replays nothing.
    pub async fn shutdown(&self) {
        if let Err(error) = self.raft.shutdown().await {
            tracing::warn!(%error, "raft shutdown");
        }
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.flush()).await {
            Ok(Ok(index)) => tracing::info!(index, "state flushed"),
            Ok(Err(error)) => tracing::warn!(%error, "flushing the state at shutdown"),
            Err(error) => tracing::warn!(%error, "flushing the state at shutdown"),
        }
    }
}

fn raft_config(snapshot_every: u64) -> Result<Arc<openraft::Config>> {
    let config = openraft::Config {
        cluster_name: "wallet".into(),
        heartbeat_interval: 50,
        election_timeout_min: 150,
        election_timeout_max: 300,
        max_payload_entries: 64,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(snapshot_every),
        max_in_snapshot_log_to_keep: snapshot_every.min(1_000),
        ..Default::default()
    };
    Ok(Arc::new(
        config.validate().map_err(|e| Error::Raft(e.to_string()))?,
    ))
}

/// Initializes a fresh group: every member of a new replicated group does,
/// with the same membership (which openraft allows), so whichever majority
/// comes up first elects a leader; a restarted member rejoins from its
/// log. A member that has a log already, or that another one's vote request
/// or entries reached first, has nothing to do: openraft refuses to
/// initialize it (`NotAllowed`), and the group is under way. (Asking first
/// whether it is initialized would leave a window for a vote to land in.) A group of one waits until this node leads
/// it.
async fn initialize(raft: &Raft, member: &Member, members: &BTreeMap<u64, String>) -> Result<()> {
    let alone = members.len() <= 1;
    let nodes: BTreeMap<u64, openraft::BasicNode> = if alone {
        BTreeMap::from([(member.node_id, member.advertise.clone())])
    } else {
        members.clone()
    }
    .into_iter()
    .map(|(id, addr)| (id, openraft::BasicNode { addr }))
    .collect();
    match raft.initialize(nodes).await {
        Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
        Err(error) => return Err(Error::Raft(error.to_string())),
    }
    if !alone {
        return Ok(());
    }
    raft.wait(Some(LEADER_WAIT))
        .current_leader(member.node_id, "this node leads its single-member group")
        .await
        .map_err(|e| Error::Raft(e.to_string()))?;
    Ok(())
}

/// What a replica that opened with `opened` holds: after a split, what its
/// last one left it.
fn held(store: &Store, opened: Holdings) -> Result<Holdings> {
    Ok(match store.splits()? {
        Some(splits) => Holdings::from_range(opened.partition(), splits.range),
        None => opened,
    })
}
