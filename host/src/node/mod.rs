//! One wallet node: a partition replica (its Raft group, store and sandbox)
//! behind the batcher, seen by the HTTP edge as a `WalletService`.

mod batcher;
mod server;

use crate::raft::{LogStore, Network, Raft, StateMachine};
use crate::service::{
    AccountView, HistoryPage, NodeStatus, Reply, SubmitError, TransferView, WalletService,
};
use crate::sm::{AccountKind, Command, OpenAccount, Reason, Runtime, Txid, Version, new_engine};
use crate::store::Store;
use crate::{Error, Result};
pub use batcher::Batcher;
pub use server::{ServeOptions, serve};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where deposits come from and withdrawals go to.
pub const SYSTEM_ACCOUNT: &str = "external:bank";
/// This version of the node runs one partition.
const PARTITION: u32 = 0;
/// How long a fresh or restarted single-member group may take to elect itself.
const LEADER_WAIT: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub data_dir: PathBuf,
    pub node_id: u64,
    /// The address peers and clients reach this node at.
    pub advertise: String,
}

pub struct Node {
    id: u64,
    raft: Raft,
    store: Arc<Store>,
    batcher: Batcher,
    version: Version,
}

impl Node {
    /// Opens (or creates) the node's data and brings its group up; returns
    /// once this node leads and the system account exists.
    pub async fn start(config: &NodeConfig) -> Result<Node> {
        let partition = config.data_dir.join(format!("partition-{PARTITION}"));
        let store = Arc::new(Store::open(&partition.join("state"))?);
        let log = LogStore::open(&partition.join("raft"))?;
        let engine = new_engine(Some(&config.data_dir.join("wasm-cache")))?;
        let version = active_version(&engine, &store)?;
        tracing::info!(version = %version.hash, "state machine version");
        let runtime = Runtime::new(
            &engine,
            version.clone(),
            StateMachine::pending_state(&store),
        )?;
        let snapshots = crate::raft::Snapshots::new(store.clone(), partition.join("snapshots"));
        let state_machine = StateMachine::new(store.clone(), runtime, PARTITION, snapshots);
        let raft = Raft::new(config.node_id, raft_config()?, Network, log, state_machine)
            .await
            .map_err(|e| Error::Raft(e.to_string()))?;
        initialize(&raft, config).await?;
        let batcher = Batcher::start(raft.clone(), version.hash);
        let node = Node {
            id: config.node_id,
            raft,
            store,
            batcher,
            version,
        };
        node.ensure_system_account().await?;
        Ok(node)
    }

    async fn ensure_system_account(&self) -> Result<()> {
        let open = Command::OpenAccount(OpenAccount {
            account: SYSTEM_ACCOUNT.into(),
            owner: None,
            kind: AccountKind::System,
        });
        match self
            .submit(vec![open])
            .await
            .map_err(|e| Error::Raft(e.to_string()))?[..]
        {
            [Reply::Accepted] | [Reply::Rejected(Reason::AccountExists)] => Ok(()),
            ref other => Err(Error::Raft(format!("creating {SYSTEM_ACCOUNT}: {other:?}"))),
        }
    }

    /// Stops Raft after the edge has stopped taking requests.
    pub async fn shutdown(&self) {
        if let Err(error) = self.raft.shutdown().await {
            tracing::warn!(%error, "raft shutdown");
        }
    }
}

/// The version recorded as active, or at genesis the embedded release,
/// recorded so that every later start and every auditor finds its bytes.
fn active_version(engine: &wasmtime::Engine, store: &Store) -> Result<Version> {
    if let Some(hash) = store.meta()?.active_version {
        let bytes = store.version(hash)?.ok_or(Error::UnknownVersion(hash))?;
        return Version::compile(engine, &bytes);
    }
    let bytes = crate::sm::release_bytes();
    let version = Version::compile(engine, bytes)?;
    store.put_version(version.hash, bytes)?;
    store.set_active_version(version.hash)?;
    Ok(version)
}

fn raft_config() -> Result<Arc<openraft::Config>> {
    let config = openraft::Config {
        cluster_name: "wallet".into(),
        heartbeat_interval: 50,
        election_timeout_min: 150,
        election_timeout_max: 300,
        max_payload_entries: 64,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(10_000),
        max_in_snapshot_log_to_keep: 1_000,
        ..Default::default()
    };
    Ok(Arc::new(
        config.validate().map_err(|e| Error::Raft(e.to_string()))?,
    ))
}

async fn initialize(raft: &Raft, config: &NodeConfig) -> Result<()> {
    let initialized = raft
        .is_initialized()
        .await
        .map_err(|e| Error::Raft(e.to_string()))?;
    if !initialized {
        let members = BTreeMap::from([(
            config.node_id,
            openraft::BasicNode {
                addr: config.advertise.clone(),
            },
        )]);
        raft.initialize(members)
            .await
            .map_err(|e| Error::Raft(e.to_string()))?;
    }
    raft.wait(Some(LEADER_WAIT))
        .current_leader(config.node_id, "this node leads its single-member group")
        .await
        .map_err(|e| Error::Raft(e.to_string()))?;
    Ok(())
}

impl WalletService for Node {
    async fn submit(&self, commands: Vec<Command>) -> Result<Vec<Reply>, SubmitError> {
        self.batcher.submit(commands).await
    }

    fn account(&self, account_id: &str) -> Result<Option<AccountView>> {
        self.store.account(account_id)
    }

    fn history(
        &self,
        account_id: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Option<HistoryPage>> {
        self.store.history(account_id, after, limit)
    }

    fn transfer(&self, id: Txid) -> Result<Option<TransferView>> {
        self.store.transfer(id)
    }

    fn status(&self) -> NodeStatus {
        let metrics = self.raft.metrics().borrow().clone();
        let chain_head = self
            .store
            .meta()
            .map(|m| hex::encode(m.chain_head))
            .unwrap_or_default();
        NodeStatus {
            node_id: self.id,
            leader: metrics.current_leader,
            members: metrics.membership_config.membership().voter_ids().collect(),
            partition: PARTITION,
            applied_index: metrics.last_applied.map(|l| l.index),
            chain_head,
            active_version: self.version.hash.to_string(),
        }
    }
}
