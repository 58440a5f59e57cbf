//! A real node behind a probe: every call goes through to the node, but the
//! probe records the size of each submission and can make submissions fail
//! the way a node under trouble does.

use crate::node::Node;
use crate::service::{
    AccountView, Answered, HistoryPage, MembershipError, NodeStatus, Positions, ReadError,
    Readiness, ReplicaChange, Reply, SubmitError, TransferView, WalletService, Who,
};
use crate::sm::{BatchFailure, VersionChange, VersionHash, VersionInfo, VersionOutcome};
use crate::tokens::{TokenChange, TokenInfo, TokenOutcome};
use std::sync::Mutex;
use wallet_core::Txid;
use wallet_core::codec::Calls;

pub struct Probe {
    pub(super) node: Node,
    submits: Mutex<Vec<usize>>,
    fail_submits: Mutex<Option<SubmitError>>,
    fail_batches: Mutex<bool>,
}

impl Probe {
    pub fn new(node: Node) -> Self {
        Probe {
            node,
            submits: Mutex::default(),
            fail_submits: Mutex::default(),
            fail_batches: Mutex::default(),
        }
    }

    /// Has the group build a snapshot of what it applied, and waits for it;
    /// the index it is at.
    pub async fn snapshot(&self) -> u64 {
        let partition = self.node.partition(0).expect("group 0");
        let applied = partition.store().applied_index();
        partition
            .raft()
            .trigger()
            .snapshot()
            .await
            .expect("a snapshot is triggered");
        for _ in 0..500 {
            let current = partition.snapshots().current().expect("snapshots read");
            let index = current.and_then(|s| s.meta.last_log_id).map(|id| id.index);
            if let Some(index) = index.filter(|&index| index >= applied) {
                return index;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("no snapshot was built");
    }

    /// The guest's stored value under `key`.
    pub fn stored(&self, key: &[u8]) -> Option<Vec<u8>> {
        let partition = self.node.partition(0).expect("group 0");
        partition
            .store()
            .with_guest_records(|records| {
                records
                    .map(|record| record.expect("state reads"))
                    .find(|(k, _)| &k[..] == key)
                    .map(|(_, value)| value.into_vec())
            })
            .expect("the state opens")
    }

    /// The sizes of the submissions so far.
    pub fn submits(&self) -> Vec<usize> {
        self.submits.lock().expect("lock").clone()
    }

    pub fn fail_submits_with(&self, error: Option<SubmitError>) {
        *self.fail_submits.lock().expect("lock") = error;
    }

    /// Makes every batch fail as a broken state machine's would.
    pub fn fail_batches(&self, fail: bool) {
        *self.fail_batches.lock().expect("lock") = fail;
    }

    /// Per currency, what every partition holds in flight, summed; and how
    /// many transfers the coordinators' journals hold.
    pub async fn in_flight(&self, currency: &str) -> (i64, usize) {
        self.node
            .read_at(None)
            .await
            .expect("the read models catch up");
        let (mut sum, mut journal) = (0, 0);
        for group in 0.. {
            let Some(partition) = self.node.partition(group) else {
                break;
            };
            let held = partition.views().in_flight().expect("reads");
            sum += held.get(currency).copied().unwrap_or(0);
            journal += partition.store().in_flight().expect("reads").len();
        }
        (sum, journal)
    }

    pub async fn balance(&self, account: &str, currency: &str) -> i64 {
        self.node
            .read_at(None)
            .await
            .expect("the read models catch up");
        self.node
            .account(account, &Positions::default())
            .await
            .expect("reads")
            .and_then(|a| a.balances.into_iter().find(|b| b.currency == currency))
            .map_or(0, |b| b.available)
    }
}

impl WalletService for Probe {
    async fn submit(&self, calls: Calls) -> Result<Answered, SubmitError> {
        self.submits.lock().expect("lock").push(calls.len());
        if let Some(error) = self.fail_submits.lock().expect("lock").clone() {
            return Err(error);
        }
        if *self.fail_batches.lock().expect("lock") {
            let failed = Reply::Failed(BatchFailure::Trap("injected".into()));
            return Ok(Answered {
                replies: vec![failed; calls.len()],
                positions: vec![Default::default()],
            });
        }
        self.node.submit(calls).await
    }

    async fn read_at(&self, wanted: Option<Positions>) -> Result<Positions, ReadError> {
        self.node.read_at(wanted).await
    }

    async fn read_index(&self) -> Result<Positions, ReadError> {
        self.node.read_index().await
    }

    async fn add_member(
        &self,
        node_id: u64,
        address: String,
        partitions: Option<Vec<u32>>,
    ) -> Result<Vec<u64>, MembershipError> {
        self.node.add_member(node_id, address, partitions).await
    }

    async fn change_replicas(
        &self,
        partition: u32,
        change: ReplicaChange,
    ) -> Result<Vec<u64>, MembershipError> {
        self.node.change_replicas(partition, change).await
    }

    async fn remove_member(&self, node_id: u64) -> Result<Vec<u64>, MembershipError> {
        self.node.remove_member(node_id).await
    }

    async fn split(&self, partition: u32) -> Result<crate::service::SplitDone, MembershipError> {
        self.node.split(partition).await
    }

    async fn backup(&self) -> crate::Result<crate::backup::BackupStream> {
        self.node.backup().await
    }

    async fn account(
        &self,
        account_id: &str,
        at: &Positions,
    ) -> Result<Option<AccountView>, ReadError> {
        self.node.account(account_id, at).await
    }

    async fn balance_at(
        &self,
        account_id: &str,
        currency: &str,
        at_ms: u64,
        at: &Positions,
    ) -> Result<Option<(i64, i64)>, ReadError> {
        self.node.balance_at(account_id, currency, at_ms, at).await
    }

    async fn history(
        &self,
        account_id: &str,
        after: Option<u64>,
        limit: usize,
        at: &Positions,
    ) -> Result<Option<HistoryPage>, ReadError> {
        self.node.history(account_id, after, limit, at).await
    }

    async fn transfer(&self, id: Txid, at: &Positions) -> Result<Option<TransferView>, ReadError> {
        self.node.transfer(id, at).await
    }

    fn authenticate(&self, token: &str) -> Option<Who> {
        self.node.authenticate(token)
    }

    fn tokens(&self) -> Vec<TokenInfo> {
        self.node.tokens()
    }

    async fn change_tokens(
        &self,
        change: TokenChange,
    ) -> Result<(TokenOutcome, Positions), SubmitError> {
        self.node.change_tokens(change).await
    }

    fn versions(&self) -> Vec<VersionInfo> {
        self.node.versions()
    }

    fn snapshot_index(&self) -> Option<u64> {
        self.node.snapshot_index()
    }

    fn check_version(&self, bytes: &[u8]) -> crate::Result<VersionHash> {
        self.node.check_version(bytes)
    }

    async fn verify(
        &self,
        hash: VersionHash,
        window: crate::audit::Window,
        progress: tokio::sync::watch::Sender<(u64, u64)>,
    ) -> crate::Result<crate::audit::Report> {
        self.node.verify(hash, window, progress).await
    }

    async fn change_versions(
        &self,
        change: VersionChange,
    ) -> Result<(VersionOutcome, Positions), SubmitError> {
        self.node.change_versions(change).await
    }

    fn status(&self) -> NodeStatus {
        self.node.status()
    }

    fn readiness(&self) -> Readiness {
        self.node.readiness()
    }
}
