//! One wallet node: a replica of each of its partitions behind the
//! free-space floor, seen by the HTTP edge as a `WalletService`.
//!
//! - `map`: which partition holds an account.
//! - `router`: where each write goes, and cross-partition coordination.
//! - `seed`: the group's first tokens.
//! - `space`: the free-space floor.
//! - `server`: `wallet serve`.
//! - `tls`: HTTPS for the edge.

mod growth;
mod layout;
mod map;
mod reads;
mod replicas;
mod router;
mod seed;
mod server;
mod space;
mod tls;

pub use layout::{Allocation, Layout, Lineage, MapChange, MapOutcome, MapRefused};
pub use map::{Holdings, PARTITIONS_MAX, PartitionMap, Range, hash};
pub use reads::Read;
pub use replicas::Membership;
pub use router::Router;
pub use seed::LEGACY_TOKENS_FILE;
pub use server::{ServeOptions, serve};
pub use space::{FreeSpace, free_bytes};

use crate::Result;
use crate::cluster::Rpc;
use crate::coordinator::{Coordinator, Mode};
use crate::partition::split::partition_dir;
use crate::partition::{Group, Member, Partition, PartitionOptions};
use crate::service::{
    AccountView, Answered, HistoryPage, MembershipError, NodeStatus, Position, Positions,
    ReadError, Readiness, ReplicaChange, SubmitError, Submitted, TransferView, WalletService, Who,
};
use crate::sm::{
    Runtime, Version, VersionChange, VersionHash, VersionInfo, VersionOutcome, new_engine,
};
use crate::tokens::{TokenChange, TokenInfo, TokenOutcome, now_ms};
use growth::Grower;
use router::Route;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use wallet_core::Txid;
use wallet_core::codec::Calls;

/// The partition that holds the tokens and answers for the node's status.
const FIRST: u32 = 0;
/// How often a node looks for transfers a previous leader left in flight.
const RESUME_EVERY: Duration = Duration::from_millis(500);
/// How long a placeholder may go undelivered, in the source's log time,
/// before a TC/C transfer is cancelled.
const DEADLINE: Duration = Duration::from_secs(10);
/// The file in the data directory that holds its partition count.
const PARTITIONS_FILE: &str = "partitions";
/// How long a member may take to say how many partitions it runs.
const PARTITIONS_ASK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a new member joining without `--partitions` asks the others.
const PARTITIONS_ASK_WAIT: Duration = Duration::from_secs(30);
/// Present once this node opened (and, starting a group, initialized)
/// every partition.
const INITIALIZED_FILE: &str = "initialized";

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
    pub group: Group,
    /// How many partitions (each its own Raft group) the node runs; fixed
    /// when the data directory is created. `None`: as the data directory
    /// records, or for a new member joining, as the running members say;
    /// else one.
    pub partitions: Option<u32>,
    /// How transfers across partitions are coordinated.
    pub coordination: Mode,
    /// The admin token to seed a new group with (else a random one, printed
    /// once).
    pub admin_token: Option<String>,
}

pub struct Node {
    id: u64,
    /// How many partitions the cluster was made with.
    base: u32,
    router: Arc<Router>,
    /// Where candidate versions are checked before a deploy.
    engine: wasmtime::Engine,
    resumer: tokio::task::JoinHandle<()>,
    /// Each partition's report of the last verification of a version:
    /// each partition records its own.
    verified: std::sync::Mutex<Option<(VersionHash, Vec<crate::audit::Report>)>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.resumer.abort();
    }
}

/// The partition count `data_dir` was made with, as recorded at its first
/// start; `None` if it records none (a new directory, or one from before
/// partitions, which holds partition 0 alone).
pub fn recorded_partitions(data_dir: &Path) -> Result<Option<u32>> {
    let path = data_dir.join(PARTITIONS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().map(Some).map_err(|_| {
            crate::Error::Partitions(format!(
                "{} does not hold a partition count",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(crate::Error::DataDir { path, source }),
    }
}

/// How many partitions the node runs: as `--partitions` says, else as the
/// data directory records, else (a new member joining) as the members
/// already running say, else one.
async fn partition_count(config: &NodeConfig) -> Result<u32> {
    if let Some(given) = config.partitions {
        return Ok(given);
    }
    if let Some(held) = recorded_partitions(&config.data_dir)? {
        return Ok(held);
    }
    match &config.group.peers {
        Some(peers) if config.group.join => ask_partition_count(config, peers).await,
        _ => Ok(1),
    }
}

/// The partition count the first running member to answer says; members
/// may still be starting, so they are asked again for a while.
async fn ask_partition_count(config: &NodeConfig, peers: &crate::cluster::Peers) -> Result<u32> {
    let others: Vec<&String> = config
        .group
        .members
        .iter()
        .filter(|(id, _)| **id != config.node_id)
        .map(|(_, address)| address)
        .collect();
    let deadline = std::time::Instant::now() + PARTITIONS_ASK_WAIT;
    loop {
        for address in &others {
            match partitions_at(peers, address).await {
                Ok(count) => {
                    tracing::info!(count, %address, "runs as many partitions as the cluster");
                    return Ok(count);
                }
                Err(error) => tracing::debug!(%address, %error, "asking the partition count"),
            }
        }
        if std::time::Instant::now() >= deadline {
            return Err(crate::Error::Partitions(format!(
                "no member answered how many partitions the cluster runs within {} s: start this one with --partitions",
                PARTITIONS_ASK_WAIT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// How many partitions the member at `address` runs.
async fn partitions_at(peers: &crate::cluster::Peers, address: &str) -> Result<u32, String> {
    let bytes = peers
        .call(
            address,
            FIRST,
            Rpc::Partitions,
            Vec::new(),
            PARTITIONS_ASK_TIMEOUT,
        )
        .await
        .map_err(|e| e.to_string())?;
    postcard::from_bytes(&bytes).map_err(|e| format!("an undecodable partition count: {e}"))
}

/// The partition count a data directory was made with, recorded at its
/// first start; a different count is refused (partitions do not split).
fn check_partitions(data_dir: &Path, count: u32) -> Result<()> {
    let path = data_dir.join(PARTITIONS_FILE);
    let data_dir_error = |source| crate::Error::DataDir {
        path: path.clone(),
        source,
    };
    match recorded_partitions(data_dir)? {
        Some(held) => {
            if held != count {
                return Err(crate::Error::Partitions(format!(
                    "this data directory holds {held} partitions, not {count}: start it with --partitions {held}"
                )));
            }
            Ok(())
        }
        None => {
            // A directory from before partitions holds partition 0 alone.
            if count != 1 && data_dir.join("partition-0").exists() {
                return Err(crate::Error::Partitions(format!(
                    "this data directory holds 1 partition, not {count}: start it with --partitions 1"
                )));
            }
            std::fs::create_dir_all(data_dir).map_err(data_dir_error)?;
            std::fs::write(&path, format!("{count}\n")).map_err(data_dir_error)
        }
    }
}

impl Node {
    /// Opens (or creates) the node's data and brings its partitions up.
    pub async fn start(config: &NodeConfig) -> Result<Node> {
        let count = partition_count(config).await?;
        if !(1..=PARTITIONS_MAX).contains(&count) {
            return Err(crate::Error::Partitions(format!(
                "--partitions {count}: 1 to {PARTITIONS_MAX}"
            )));
        }
        // Groups are initialized once, by the members that start them;
        // a member restarted, or joining, waits to be given each partition.
        let initialized = config.data_dir.join(INITIALIZED_FILE);
        let mut group = config.group.clone();
        group.join |= initialized.exists();
        check_partitions(&config.data_dir, count)?;
        let space = FreeSpace::watch(config.data_dir.clone(), config.free_space_floor_bytes);
        let seed = seed::Seed::new(&config.data_dir, config.admin_token.clone())?;
        let engine = new_engine(Some(&config.wasm_cache_dir))?;
        let member = Member {
            node_id: config.node_id,
            advertise: config.advertise.clone(),
        };
        let base = PartitionMap::new(count);
        let router = Arc::new(Router::new(
            config.node_id,
            base.clone(),
            config.group.clone(),
            space,
            Arc::new(Coordinator::new(config.coordination, DEADLINE)),
        ));
        for id in 0..count {
            let dir = partition_dir(&config.data_dir, id);
            let holdings = Holdings::new(&base, id);
            let partition =
                Partition::open(&dir, holdings, &member, &group, &engine, &config.partition)
                    .await?;
            router.add(partition);
        }
        if !initialized.exists() {
            std::fs::write(&initialized, b"").map_err(|source| crate::Error::DataDir {
                path: initialized.clone(),
                source,
            })?;
        }
        // A group of one leads already: its tokens are there before it
        // serves. A member of a replicated group seeds once it leads.
        let first = router.get(FIRST).expect("partition 0 is open");
        if config.group.members.len() <= 1 {
            seed.plant(first).await;
        } else {
            tokio::spawn(seed.plant(first));
        }
        // Partitions split off since the cluster was made: those this node
        // runs, before it serves.
        let grower = Grower {
            data_dir: config.data_dir.clone(),
            member,
            group: Group {
                join: true,
                ..config.group.clone()
            },
            engine: engine.clone(),
            options: config.partition.clone(),
            base,
        };
        grower.grow(&router).await?;
        let resumer = tokio::spawn(resume(Arc::downgrade(&router), grower));
        Ok(Node {
            id: config.node_id,
            base: count,
            router,
            engine,
            resumer,
            verified: std::sync::Mutex::default(),
        })
    }

    /// The replica of partition `group` this node holds.
    pub fn partition(&self, group: u32) -> Option<Arc<Partition>> {
        self.router.partition(group)
    }

    /// How many partitions this node runs.
    pub fn partition_count(&self) -> u32 {
        self.router.count()
    }

    /// How many partitions the cluster was made with (every member runs
    /// that many from its start; splits add more).
    pub fn base_count(&self) -> u32 {
        self.base
    }

    /// Refuses to add a member that runs another partition count than
    /// this node: it would apply calls by another map, and its replicas
    /// would diverge.
    async fn check_partition_count(
        &self,
        node_id: u64,
        address: &str,
    ) -> Result<(), MembershipError> {
        let Some(peers) = &self.router.group.peers else {
            return Ok(());
        };
        let count = self.base_count();
        let refused = |why: String| {
            MembershipError::Refused(format!(
                "node {node_id} at {address} {why}; is it started with --join and --partitions {count}?"
            ))
        };
        let theirs = partitions_at(peers, address)
            .await
            .map_err(|e| refused(format!("does not say how many partitions it runs ({e})")))?;
        if theirs != count {
            return Err(refused(format!(
                "runs {theirs} partitions, the cluster {count}"
            )));
        }
        Ok(())
    }

    fn first(&self) -> Arc<Partition> {
        self.router.get(FIRST).expect("partition 0 is open")
    }

    fn partitions(&self) -> impl Iterator<Item = Arc<Partition>> + use<> {
        self.router.partitions().into_iter()
    }

    /// This node's replica of partition `group`, if it may take a write:
    /// not fenced, and above the free-space floor. Writes taken here are
    /// never forwarded (another member may have forwarded them here).
    fn writable(&self, group: u32) -> Result<Arc<Partition>, SubmitError> {
        let Some(partition) = self.partition(group) else {
            return Err(SubmitError::Internal(format!("no partition {group} here")));
        };
        if let Some(verdict) = partition.diverged() {
            return Err(SubmitError::Diverged(describe(&verdict)));
        }
        self.router.space.check()?;
        Ok(partition)
    }

    /// A write forwarded here, to `group`'s leader. `home`: the calls are
    /// a coordinator's steps, each acting on that account, which finish a
    /// transfer already admitted and are taken below the free-space floor
    /// (else reservations would stay locked until space returns).
    pub async fn submit_here(
        &self,
        group: u32,
        calls: Calls,
        home: Option<String>,
    ) -> Result<Submitted, SubmitError> {
        match self.writable(group) {
            Ok(partition) => partition.submit(calls, home).await,
            Err(SubmitError::InsufficientStorage { .. }) if home.is_some() => {
                self.router.get(group)?.submit(calls, home).await
            }
            Err(refused) => Err(refused),
        }
    }

    /// Cross-partition transfers forwarded here, to their source's leader.
    pub async fn coordinate_here(&self, group: u32, calls: Calls) -> Result<Answered, SubmitError> {
        self.writable(group)?;
        self.router.coordinate_here(group, calls).await
    }

    /// Membership changes need the members' network.
    fn replicated(&self) -> Result<(), MembershipError> {
        match self.router.group.peers {
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

    async fn change_versions_in(
        &self,
        group: u32,
        change: &VersionChange,
    ) -> Result<(VersionOutcome, Position), SubmitError> {
        match self.router.route(group).await? {
            Route::Here => self.change_versions_here(group, change.clone()).await,
            Route::Leader(id, addr) => {
                let body = postcard::to_allocvec(change).expect("version changes serialize");
                self.router
                    .forward(group, id, &addr, Rpc::Versions, body)
                    .await
            }
        }
    }

    /// Resolves when the node cannot go on (a Raft group or a projector
    /// stopped on a fatal error), with why.
    pub async fn stopped(&self) -> String {
        loop {
            let partitions: Vec<Arc<Partition>> = self.partitions().collect();
            let each = partitions.iter().map(|p| Box::pin(stopped(p)));
            tokio::select! {
                (why, _, _) = futures_util::future::select_all(each) => return why,
                () = self.router.grown(partitions.len()) => {}
            }
        }
    }

    /// Stops Raft after the edge has stopped taking requests, and makes
    /// what was applied durable.
    pub async fn shutdown(&self) {
        self.resumer.abort();
        for partition in self.partitions() {
            partition.shutdown().await;
        }
    }
}

/// Resolves when `partition` cannot go on, with why.
async fn stopped(partition: &Partition) -> String {
    let mut metrics = partition.raft().metrics();
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
        if partition.diverged().is_some() {
            std::future::pending::<()>().await;
        }
        why
    };
    let projector = partition.views().stopped();
    let why = tokio::select! {
        why = raft => why,
        why = projector => why,
    };
    format!("partition {}: {why}", partition.id)
}

/// Opens the partitions splits add, resumes what previous leaders left in
/// flight, and drives a split a previous leader of partition 0 left
/// halfway, until the node goes.
async fn resume(router: std::sync::Weak<Router>, grower: Grower) {
    loop {
        tokio::time::sleep(RESUME_EVERY).await;
        let Some(router) = router.upgrade() else {
            return;
        };
        if let Err(error) = grower.grow(&router).await {
            tracing::error!(%error, "opening a partition split off another");
        }
        router.resume().await;
        router.resume_split().await;
        let stats = router.coordinator.stats();
        for (stage, count) in &stats.stages {
            metrics::gauge!("coordinator_in_flight", "stage" => stage.clone()).set(*count as f64);
        }
        metrics::gauge!("coordinator_oldest_in_flight_ms").set(stats.oldest_ms as f64);
    }
}

impl WalletService for Node {
    /// Each call goes to its partition's leader: here if this node leads
    /// it (or is alone), forwarded otherwise; a transfer across partitions
    /// to its source's leader, which coordinates it; with no leader known,
    /// 503 to retry.
    async fn submit(&self, calls: Calls) -> Result<Answered, SubmitError> {
        self.router.submit(calls).await
    }

    fn authenticate(&self, token: &str) -> Option<Who> {
        self.first().store().authenticate(token, now_ms())
    }

    fn tokens(&self) -> Vec<TokenInfo> {
        self.first().store().tokens()
    }

    async fn change_tokens(
        &self,
        change: TokenChange,
    ) -> Result<(TokenOutcome, Positions), SubmitError> {
        let (outcome, position) = match self.router.route(FIRST).await? {
            Route::Here => self.change_tokens_here(FIRST, change).await?,
            Route::Leader(id, addr) => {
                let body = postcard::to_allocvec(&change).expect("token changes serialize");
                self.router
                    .forward(FIRST, id, &addr, Rpc::Tokens, body)
                    .await?
            }
        };
        Ok((outcome, Positions(vec![position])))
    }

    fn versions(&self) -> Vec<VersionInfo> {
        self.first().store().versions()
    }

    fn snapshot_index(&self) -> Option<u64> {
        let current = self.first().snapshots().current().ok()??;
        current.meta.last_log_id.map(|id| id.index)
    }

    fn check_version(&self, bytes: &[u8]) -> Result<VersionHash> {
        let version = Version::compile(&self.engine, bytes)?;
        let hash = version.hash;
        Runtime::new(&self.engine, version)?;
        Ok(hash)
    }

    /// Verifies the candidate on every partition's history in turn; the
    /// report sums theirs.
    async fn verify(
        &self,
        hash: VersionHash,
        window: crate::audit::Window,
        progress: tokio::sync::watch::Sender<(u64, u64)>,
    ) -> Result<crate::audit::Report> {
        if self.router.group.members.len() > 1
            && let Some(missing) = self.partitions().find(|p| !p.hosted())
        {
            return Err(crate::Error::Partitions(format!(
                "a verification replays every partition's history here, and node {} does not host partition {}: ask a member that hosts every partition",
                self.id, missing.id
            )));
        }
        let mut reports = Vec::new();
        for partition in self.partitions() {
            if !partition.store().schedule().is_deployed(hash) {
                return Err(crate::Error::UnknownVersion(hash));
            }
            let bytes = partition
                .store()
                .version(hash)?
                .ok_or(crate::Error::UnknownVersion(hash))?;
            let (partition, engine) = (partition, self.engine.clone());
            let progress = progress.clone();
            let report = tokio::task::spawn_blocking(move || {
                partition.verify(&engine, bytes, window, |at, of| {
                    progress.send_replace((at, of));
                })
            })
            .await
            .map_err(|e| crate::Error::StoreFailed(format!("the verification stopped: {e}")))??;
            reports.push(report);
        }
        let total = reports.iter().cloned().reduce(crate::audit::Report::and);
        *self
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((hash, reports));
        Ok(total.expect("a node has a partition"))
    }

    /// Acts on every partition, each at its own index; answers with the
    /// first partition's outcome once every partition agreed with it.
    async fn change_versions(
        &self,
        change: VersionChange,
    ) -> Result<(VersionOutcome, Positions), SubmitError> {
        let verified = self
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        // A verification is recorded in each partition as that
        // partition's history verified.
        let changes: Vec<VersionChange> = self
            .partitions()
            .map(|partition| match (&change, &verified) {
                (
                    VersionChange::Verified { hash, .. }
                    | VersionChange::VerifiedWindow { hash, .. },
                    Some((verified, reports)),
                ) if hash == verified && reports.len() == self.router.count() as usize => {
                    reports[partition.id as usize].change()
                }
                _ => change.clone(),
            })
            .collect();
        // A change one partition would refuse goes to none, so that no
        // partition switches alone (this node's replicas may trail their
        // logs by a few entries, and it checks only those it hosts; each
        // partition's log decides).
        if changes.len() > 1 {
            let alone = self.router.group.members.len() <= 1;
            let hosted = self
                .partitions()
                .zip(&changes)
                .filter(|(p, _)| alone || p.hosted());
            for (partition, change) in hosted {
                let next = partition.store().applied_index() + 1;
                let outcome = partition.store().schedule().apply(change, next);
                if let VersionOutcome::Refused(_) = outcome {
                    return Ok((outcome, Positions(Vec::new())));
                }
            }
        }
        let mut first: Option<VersionOutcome> = None;
        let mut positions = Vec::new();
        for (partition, change) in self.partitions().zip(&changes) {
            let (outcome, position) = self.change_versions_in(partition.id, change).await?;
            positions.push(position);
            match &first {
                None => first = Some(outcome),
                Some(held) if std::mem::discriminant(held) == std::mem::discriminant(&outcome) => {}
                Some(held) => {
                    return Err(SubmitError::Internal(format!(
                        "partition {FIRST} answered {held:?}, partition {} {outcome:?}",
                        partition.id
                    )));
                }
            }
        }
        Ok((first.expect("a node has a partition"), Positions(positions)))
    }

    async fn read_at(&self, wanted: Option<Positions>) -> Result<Positions, ReadError> {
        self.reflect(wanted).await
    }

    async fn read_index(&self) -> Result<Positions, ReadError> {
        self.leaders_read_index().await
    }

    /// Partition 0 first: a member holds its replica (the tokens).
    async fn add_member(
        &self,
        node_id: u64,
        address: String,
        partitions: Option<Vec<u32>>,
    ) -> Result<Vec<u64>, MembershipError> {
        self.replicated()?;
        let count = self.partition_count();
        let mut groups = partitions.unwrap_or_else(|| (0..count).collect());
        if let Some(unknown) = groups.iter().find(|p| **p >= count) {
            return Err(MembershipError::Refused(format!(
                "there is no partition {unknown}: the cluster runs {count}"
            )));
        }
        self.check_partition_count(node_id, &address).await?;
        groups.push(FIRST);
        groups.sort();
        groups.dedup();
        let mut members = Vec::new();
        for group in groups {
            let voters = self
                .change_replicas_at(group, Membership::Add(node_id, address.clone()))
                .await?;
            if group == FIRST {
                members = voters;
            }
        }
        Ok(members)
    }

    /// Partition 0 last: a node holding any replica stays a member.
    async fn remove_member(&self, node_id: u64) -> Result<Vec<u64>, MembershipError> {
        self.replicated()?;
        let mut members = Vec::new();
        for group in (0..self.router.count()).rev() {
            members = self
                .change_replicas_at(group, Membership::Remove(node_id))
                .await?;
        }
        Ok(members)
    }

    async fn change_replicas(
        &self,
        partition: u32,
        change: ReplicaChange,
    ) -> Result<Vec<u64>, MembershipError> {
        self.replicated()?;
        if self.partition(partition).is_none() {
            return Err(MembershipError::Refused(format!(
                "there is no partition {partition}: the cluster runs {}",
                self.router.count()
            )));
        }
        let change = match change {
            ReplicaChange::Remove(_) if partition == FIRST => {
                return Err(MembershipError::Refused(
                    "every member holds a replica of partition 0 (the API tokens): remove the member from the cluster instead (DELETE /v1/cluster/members/{id})".into(),
                ));
            }
            ReplicaChange::Remove(node_id) => Membership::Remove(node_id),
            ReplicaChange::Add(node_id) => {
                let Some(address) = self.first().nodes().remove(&node_id) else {
                    return Err(MembershipError::Refused(format!(
                        "node {node_id} is not a member of the cluster: add it first (POST /v1/cluster/members)"
                    )));
                };
                Membership::Add(node_id, address)
            }
        };
        self.change_replicas_at(partition, change).await
    }

    async fn split(&self, partition: u32) -> Result<crate::service::SplitDone, MembershipError> {
        self.split_partition(partition).await
    }

    async fn backup(&self) -> Result<crate::backup::BackupStream> {
        if self.router.count() > 1 {
            return Err(crate::Error::Partitions(
                "a backup copies one partition; this node runs several (back up its data directory while it is stopped)".into(),
            ));
        }
        crate::backup::stream(&self.first()).await
    }

    async fn account(
        &self,
        account_id: &str,
        at: &Positions,
    ) -> Result<Option<AccountView>, ReadError> {
        self.account_at(account_id, at).await
    }

    async fn balance_at(
        &self,
        account_id: &str,
        currency: &str,
        at_ms: u64,
        at: &Positions,
    ) -> Result<Option<(i64, i64)>, ReadError> {
        self.balance_at_time(account_id, currency, at_ms, at).await
    }

    async fn history(
        &self,
        account_id: &str,
        after: Option<u64>,
        limit: usize,
        at: &Positions,
    ) -> Result<Option<HistoryPage>, ReadError> {
        self.history_at(account_id, after, limit, at).await
    }

    async fn transfer(&self, id: Txid, at: &Positions) -> Result<Option<TransferView>, ReadError> {
        self.transfer_at(id, at).await
    }

    fn status(&self) -> NodeStatus {
        let partitions: Vec<crate::service::PartitionStatus> =
            self.partitions().map(|p| p.status()).collect();
        NodeStatus {
            node_id: self.id,
            members: partitions[FIRST as usize].members.clone(),
            partitions,
            coordinator: self.router.coordinator.stats(),
        }
    }

    /// Partitions hosted elsewhere are not this node's to be ready for.
    fn readiness(&self) -> Readiness {
        let alone = self.router.group.members.len() <= 1;
        for partition in self.partitions().filter(|p| alone || p.hosted()) {
            if let Some(verdict) = partition.diverged() {
                return Readiness::NotReady(format!("diverged: {}", describe(&verdict)));
            }
            let metrics = partition.raft().metrics().borrow().clone();
            if let Err(fatal) = &metrics.running_state {
                return Readiness::NotReady(format!("stopped: {fatal}"));
            }
            if metrics.current_leader.is_none() {
                return Readiness::NotReady(format!(
                    "no_leader: partition {} has no leader",
                    partition.id
                ));
            }
        }
        if let Err(error) = self.router.space.check() {
            let free = self.router.space.available();
            return Readiness::NotReady(format!(
                "insufficient_storage: {error} ({free} bytes free)"
            ));
        }
        Readiness::Ready
    }
}

pub(crate) fn describe(verdict: &crate::partition::Divergence) -> String {
    format!(
        "at event record {} it holds head {}, the majority {}",
        verdict.seq, verdict.held, verdict.majority
    )
}
