//! Where writes go: each call to the partition that holds its accounts,
//! through that partition's leader (this node, or forwarded to it); a
//! transfer across partitions to its source's leader, which coordinates
//! it.

use super::map::{PartitionMap, Target};
use super::reads::{Query, Read};
use crate::cluster::{Rpc, Steps};
use crate::coordinator::{Coordinator, InFlight, Partitions};
use crate::partition::{Group, Partition};
use crate::service::{Answered, Position, Positions, ReadError, Reply, SubmitError, Submitted};
use crate::views::Views;
use futures_util::future::join_all;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use wallet_core::codec::{self, Calls};
use wallet_core::{Call, Command};

/// How long a write forwarded to the leader may take; a little more than
/// the leader's own wait for a commit.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(6);
/// How long a batch of cross-partition transfers forwarded to their
/// source's leader may take: they are answered once they are done.
const COORDINATE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a request waits for a transfer across partitions to end; after
/// it, the transfer goes on and the request is answered 503 (a retry with
/// the same id gets the outcome).
const ANSWER_WAIT: Duration = Duration::from_secs(20);
/// How long a member may take to say who leads a partition.
const LOCATE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a read sent to a partition's leader may take: a little more
/// than its wait for the position.
const READ_TIMEOUT: Duration = Duration::from_secs(3);

/// Where a write to one partition goes.
pub(super) enum Route {
    Here,
    /// The leader's id and address.
    Leader(u64, String),
}

pub struct Router {
    pub(super) id: u64,
    /// This node's replica of each partition, by id: more once a split
    /// adds a partition.
    partitions: RwLock<Vec<Arc<Partition>>>,
    /// The map calls are routed by: partition 0's, once this node opened
    /// every partition it names.
    map: RwLock<Arc<PartitionMap>>,
    pub(super) group: Group,
    /// Writes taken here are refused below the free-space floor.
    pub(super) space: super::FreeSpace,
    pub(super) coordinator: Arc<Coordinator>,
    /// Per partition: the transfers whose journal records are to close.
    finishers: RwLock<Vec<mpsc::UnboundedSender<Finish>>>,
    /// How many partitions are open here.
    opened: tokio::sync::watch::Sender<usize>,
    /// Held while this node drives a split.
    pub(super) splitting: tokio::sync::Mutex<()>,
    /// The leader last found of each partition this node does not host,
    /// until a call to it fails.
    pub(super) located: Mutex<BTreeMap<u32, (u64, String)>>,
}

/// A transfer to close in a journal, and who waits for it.
pub(super) type Finish = (u128, oneshot::Sender<Result<Position, SubmitError>>);

/// Closes finished transfers in `partition`'s journal: as many in one
/// entry as finished while the previous entry was written.
async fn finisher(partition: Arc<Partition>, mut rx: mpsc::UnboundedReceiver<Finish>) {
    while let Some(first) = rx.recv().await {
        let mut waiting = vec![first];
        while let Ok(next) = rx.try_recv() {
            waiting.push(next);
        }
        let ids = waiting.iter().map(|(id, _)| *id).collect();
        let written = partition.finish(ids).await;
        for (_, reply) in waiting {
            let _ = reply.send(written.clone());
        }
    }
}

impl Router {
    pub(super) fn new(
        id: u64,
        map: PartitionMap,
        group: Group,
        space: super::FreeSpace,
        coordinator: Arc<Coordinator>,
    ) -> Router {
        Router {
            id,
            partitions: RwLock::default(),
            map: RwLock::new(Arc::new(map)),
            group,
            space,
            coordinator,
            finishers: RwLock::default(),
            opened: tokio::sync::watch::Sender::new(0),
            splitting: tokio::sync::Mutex::new(()),
            located: Mutex::default(),
        }
    }

    /// Resolves once more than `count` partitions are open here.
    pub(super) async fn grown(&self, count: usize) {
        let mut opened = self.opened.subscribe();
        let _ = opened.wait_for(|opened| *opened > count).await;
    }

    /// Takes this node's replica of the next partition (its id is the
    /// number held so far).
    pub(super) fn add(&self, partition: Arc<Partition>) {
        let mut partitions = self
            .partitions
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        assert_eq!(
            partition.id as usize,
            partitions.len(),
            "partitions open in order"
        );
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(finisher(Arc::clone(&partition), rx));
        self.finishers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(tx);
        partitions.push(partition);
        self.opened.send_replace(partitions.len());
    }

    /// Routes calls by `map` from now on.
    pub(super) fn set_map(&self, map: PartitionMap) {
        *self.map.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(map);
    }

    pub(super) fn map(&self) -> Arc<PartitionMap> {
        Arc::clone(&self.map.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn partition(&self, group: u32) -> Option<Arc<Partition>> {
        let partitions = self
            .partitions
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        partitions.get(group as usize).cloned()
    }

    /// This node's replicas, in id order.
    pub(super) fn partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(super) fn count(&self) -> u32 {
        let partitions = self
            .partitions
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        u32::try_from(partitions.len()).expect("at most PARTITIONS_MAX")
    }

    pub(super) fn get(&self, group: u32) -> Result<Arc<Partition>, SubmitError> {
        self.partition(group)
            .ok_or_else(|| SubmitError::Internal(format!("no partition {group} here")))
    }

    /// Where a write to `group` goes: here when this node leads it (or is
    /// alone), else to its leader (asked of the other members when this
    /// node does not host it); with no leader known, nowhere yet.
    pub(super) async fn route(&self, group: u32) -> Result<Route, SubmitError> {
        let partition = self.get(group)?;
        if self.group.members.len() <= 1 {
            return Ok(Route::Here);
        }
        if !partition.hosted() {
            return match self.locate(group).await {
                Some((id, addr)) => Ok(Route::Leader(id, addr)),
                None => Err(SubmitError::NotLeader { leader: None }),
            };
        }
        if let Some(verdict) = partition.diverged() {
            return Err(SubmitError::Diverged(super::describe(&verdict)));
        }
        match partition.leader() {
            Some((id, _)) if id == self.id => Ok(Route::Here),
            Some((id, addr)) => Ok(Route::Leader(id, addr)),
            None => Err(SubmitError::NotLeader { leader: None }),
        }
    }

    /// Sends a write to `group`'s leader, which answers as if it came to
    /// it. A leader that froze or died mid-call is not waited for: once
    /// another is known, the client retries.
    pub(super) async fn forward<T: DeserializeOwned>(
        &self,
        group: u32,
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
        let partition = self.get(group)?;
        // A replica that is not a voter hears of no new leader.
        let hosted = partition.hosted();
        let mut metrics = partition.raft().metrics();
        let replaced = async {
            if hosted {
                let _ = metrics.wait_for(|m| m.current_leader != Some(leader)).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        let timeout = match rpc {
            Rpc::Coordinate => COORDINATE_TIMEOUT,
            _ => FORWARD_TIMEOUT,
        };
        let call = peers.call(addr, group, rpc, body, timeout);
        let answer = tokio::select! {
            answer = call => answer.map_err(|e| unavailable(e.to_string())).and_then(|bytes| {
                postcard::from_bytes::<Result<T, SubmitError>>(&bytes)
                    .map_err(|e| unavailable(format!("undecodable answer: {e}")))?
            }),
            _ = replaced => Err(SubmitError::NoQuorum(
                "the leader changed while the write was forwarded".into(),
            )),
        };
        if let Err(SubmitError::NotLeader { .. } | SubmitError::NoQuorum(_)) = &answer {
            self.forget(group);
        }
        answer
    }

    /// The leader of a partition this node does not host, as a member
    /// that hosts it says (remembered until a call to it fails).
    async fn locate(&self, group: u32) -> Option<(u64, String)> {
        if let Some(known) = self.located().get(&group) {
            return Some(known.clone());
        }
        let peers = self.group.peers.as_ref()?;
        let asks = self
            .directory()
            .into_iter()
            .filter(|(id, _)| *id != self.id)
            .map(|(_, addr)| async move {
                let bytes = peers
                    .call(&addr, group, Rpc::Leader, Vec::new(), LOCATE_TIMEOUT)
                    .await
                    .ok()?;
                postcard::from_bytes::<Option<(u64, String)>>(&bytes).ok()?
            });
        // An answer naming this node is a stale one (it led, and left).
        let leader = join_all(asks)
            .await
            .into_iter()
            .flatten()
            .find(|(id, _)| *id != self.id)?;
        self.located().insert(group, leader.clone());
        Some(leader)
    }

    fn located(&self) -> std::sync::MutexGuard<'_, BTreeMap<u32, (u64, String)>> {
        self.located.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn forget(&self, group: u32) {
        self.located().remove(&group);
    }

    /// Every node this one knows of, with its address: the peers it was
    /// started with, and the members of each partition's group as its
    /// replica here last saw them.
    pub(super) fn directory(&self) -> BTreeMap<u64, String> {
        let mut nodes = self.group.members.clone();
        for partition in self.partitions() {
            nodes.extend(partition.nodes());
        }
        nodes
    }

    /// Reads `group`'s views: here when this node hosts it (the read
    /// waited for its position already), else at its leader once that
    /// reflects the position `at` names.
    pub(super) async fn read<T: DeserializeOwned>(
        &self,
        group: u32,
        at: &Positions,
        query: Query,
        here: impl FnOnce(&Views) -> crate::Result<T>,
    ) -> Result<T, ReadError> {
        let partition = self
            .partition(group)
            .ok_or(ReadError::UnknownPartition(group))?;
        if self.group.members.len() <= 1 || partition.hosted() {
            // It may have become a voter since the read waited.
            if let Some(index) = at.of(group) {
                partition.read_at(Some(index), super::READ_WAIT_MAX).await?;
            }
            return Ok(here(partition.views())?);
        }
        let (Some(peers), Some((_, addr))) = (&self.group.peers, self.locate(group).await) else {
            return Err(ReadError::NoQuorum(format!(
                "no member says who leads partition {group}"
            )));
        };
        let read = Read {
            wait: at.of(group),
            query,
        };
        let body = postcard::to_allocvec(&read).expect("reads serialize");
        let unavailable = |why: String| {
            ReadError::NoQuorum(format!("reading partition {group} at its leader: {why}"))
        };
        let answer = peers
            .call(&addr, group, Rpc::Read, body, READ_TIMEOUT)
            .await
            .map_err(|e| unavailable(e.to_string()))
            .and_then(|bytes| {
                postcard::from_bytes::<Result<T, ReadError>>(&bytes)
                    .map_err(|e| unavailable(format!("undecodable answer: {e}")))?
            });
        if let Err(ReadError::NoQuorum(_)) = &answer {
            self.forget(group);
        }
        answer
    }

    /// Submits calls that all run in `group`, through its leader.
    pub(super) async fn submit_to(
        &self,
        group: u32,
        calls: Calls,
    ) -> Result<Submitted, SubmitError> {
        match self.route(group).await? {
            Route::Here => {
                self.space.check()?;
                self.get(group)?.submit(calls, None).await
            }
            Route::Leader(id, addr) => {
                self.forward(group, id, &addr, Rpc::Submit, calls.into_bytes())
                    .await
            }
        }
    }

    /// A coordinator's steps, each acting on `home`, through `group`'s
    /// leader; taken below the free-space floor (they finish transfers
    /// already admitted).
    async fn submit_steps(
        &self,
        group: u32,
        home: &str,
        calls: Calls,
    ) -> Result<Submitted, SubmitError> {
        match self.route(group).await? {
            Route::Here => self.get(group)?.submit(calls, Some(home.into())).await,
            Route::Leader(id, addr) => {
                let steps = Steps {
                    home: home.into(),
                    calls: calls.into_bytes(),
                };
                let body = postcard::to_allocvec(&steps).expect("steps serialize");
                self.forward(group, id, &addr, Rpc::Steps, body).await
            }
        }
    }

    /// Runs every call where it belongs, concurrently; one reply per call,
    /// in order, and the positions of every partition written.
    pub async fn submit(self: &Arc<Self>, calls: Calls) -> Result<Answered, SubmitError> {
        let bytes = calls.into_bytes();
        let decoded = codec::calls(&bytes).map_err(|e| SubmitError::Internal(format!("{e:?}")))?;
        let map = self.map();
        let count = map.count() as usize;
        // Per partition: the calls that run there, and which of them
        // answer which request call. Across: per source.
        let mut local: Vec<(Calls, Vec<Option<usize>>)> =
            (0..count).map(|_| (Calls::new(), Vec::new())).collect();
        let mut across: Vec<(Calls, Vec<usize>)> =
            (0..count).map(|_| (Calls::new(), Vec::new())).collect();
        let encode = |e| SubmitError::Internal(format!("{e:?}"));
        for (i, call) in decoded.iter().enumerate() {
            match map.target(&call.command) {
                Target::One(p) => {
                    local[p as usize].0.push(call).map_err(encode)?;
                    local[p as usize].1.push(Some(i));
                }
                Target::Every(answering) => {
                    for (p, (calls, answers)) in local.iter_mut().enumerate() {
                        calls.push(call).map_err(encode)?;
                        answers.push((p as u32 == answering).then_some(i));
                    }
                }
                Target::Across { source } => {
                    across[source as usize].0.push(call).map_err(encode)?;
                    across[source as usize].1.push(i);
                }
            }
        }
        let locals = local
            .into_iter()
            .enumerate()
            .filter(|(_, (calls, _))| !calls.is_empty())
            .map(|(p, (calls, answers))| async move {
                let submitted = self.submit_to(p as u32, calls).await?;
                let replies = answers.into_iter().zip(submitted.replies).collect();
                Ok::<_, SubmitError>((replies, vec![submitted.position]))
            });
        let acrosses = across
            .into_iter()
            .enumerate()
            .filter(|(_, (calls, _))| !calls.is_empty())
            .map(|(p, (calls, answers))| async move {
                let answered = self.coordinate(p as u32, calls).await?;
                let replies = answers
                    .into_iter()
                    .map(Some)
                    .zip(answered.replies)
                    .collect();
                Ok::<_, SubmitError>((replies, answered.positions))
            });
        let (locals, acrosses) = futures_util::join!(join_all(locals), join_all(acrosses));
        let mut replies: Vec<Option<Reply>> = vec![None; decoded.len()];
        let mut positions: Vec<Position> = Vec::new();
        for part in locals.into_iter().chain(acrosses) {
            let (part_replies, part_positions): (Vec<(Option<usize>, Reply)>, _) = part?;
            for (i, reply) in part_replies {
                if let Some(i) = i {
                    replies[i] = Some(reply);
                }
            }
            positions.extend(part_positions);
        }
        positions.sort();
        positions.dedup_by(|later, earlier| {
            let same = later.partition == earlier.partition;
            if same {
                earlier.index = earlier.index.max(later.index);
            }
            same
        });
        let replies = replies
            .into_iter()
            .map(|reply| reply.ok_or_else(|| SubmitError::Internal("a call got no reply".into())))
            .collect::<Result<_, _>>()?;
        Ok(Answered { replies, positions })
    }

    /// Cross-partition transfers from `source`, at its leader.
    async fn coordinate(
        self: &Arc<Self>,
        source: u32,
        calls: Calls,
    ) -> Result<Answered, SubmitError> {
        match self.route(source).await? {
            Route::Here => self.coordinate_here(source, calls).await,
            Route::Leader(id, addr) => {
                self.forward(source, id, &addr, Rpc::Coordinate, calls.into_bytes())
                    .await
            }
        }
    }

    /// Coordinates transfers from `source`, which this node leads: their
    /// tries in one batch there, then each accepted one to its end.
    pub async fn coordinate_here(
        self: &Arc<Self>,
        source: u32,
        calls: Calls,
    ) -> Result<Answered, SubmitError> {
        self.space.check()?;
        let partition = self.get(source)?;
        let bytes = calls.into_bytes();
        let decoded = codec::calls(&bytes).map_err(|e| SubmitError::Internal(format!("{e:?}")))?;
        let mode = self.coordinator.mode();
        let mut tries = Calls::with_capacity(bytes.len());
        let mut transfers = Vec::with_capacity(decoded.len());
        for call in &decoded {
            let Command::Transfer(t) = &call.command else {
                return Err(SubmitError::Internal(
                    "only transfers cross partitions".into(),
                ));
            };
            let command = match mode {
                crate::coordinator::Mode::Tcc => Command::TccReserve(t.clone()),
                crate::coordinator::Mode::Saga => Command::SagaDebit(t.clone()),
            };
            tries
                .push(&Call {
                    caller: call.caller.clone(),
                    command,
                })
                .map_err(|e| SubmitError::Internal(format!("{e:?}")))?;
            transfers.push(t);
        }
        let tried = partition.submit(tries, None).await?;
        let started_ms = partition.store().timestamp_ms();
        let driven = transfers
            .iter()
            .zip(&tried.replies)
            .map(|(t, reply)| async move {
                match reply {
                    Reply::Accepted => {
                        let record = InFlight::new(mode, t, started_ms);
                        let driven = self.coordinator.drive(self, record);
                        match tokio::time::timeout(ANSWER_WAIT, driven).await {
                            Ok(Some((Ok(()), positions))) => (Ok(Reply::Accepted), positions),
                            Ok(Some((Err(reason), positions))) => {
                                (Ok(Reply::Rejected(reason)), positions)
                            }
                            Err(_) => (
                                Err(SubmitError::NoQuorum(
                                    "the transfer is still in flight (a partition it needs answers no writes); retry with the same transaction_id for its outcome"
                                        .into(),
                                )),
                                Vec::new(),
                            ),
                            Ok(None) => (
                                Err(SubmitError::Internal(
                                    "the coordinator stopped; the transfer resumes from its journal"
                                        .into(),
                                )),
                                Vec::new(),
                            ),
                        }
                    }
                    other => (Ok(other.clone()), Vec::new()),
                }
            });
        let mut positions = vec![tried.position];
        let mut replies = Vec::with_capacity(transfers.len());
        for (reply, written) in join_all(driven).await {
            replies.push(reply?);
            positions.extend(written);
        }
        Ok(Answered { replies, positions })
    }

    /// Resumes, in every partition this node leads, the transfers a
    /// previous leader left in its journal; moves the log time of a
    /// partition that has some and no traffic, so that deadlines pass.
    pub async fn resume(self: &Arc<Self>) {
        for partition in self.partitions() {
            if !partition.hosted() || !matches!(self.route(partition.id).await, Ok(Route::Here)) {
                continue;
            }
            let records = match partition.store().in_flight() {
                Ok(records) => records,
                Err(error) => {
                    tracing::warn!(partition = partition.id, %error, "reading the coordinator's journal");
                    continue;
                }
            };
            if records.is_empty() {
                continue;
            }
            if partition.store().timestamp_ms() + TICK_AFTER_MS < crate::tokens::now_ms()
                && let Err(error) = partition.tick().await
            {
                tracing::warn!(partition = partition.id, %error, "a tick entry");
            }
            self.coordinator.resume(self, partition.id, records);
        }
    }
}

/// How far a partition's log time may fall behind the clock, while it has
/// transfers in flight, before a tick entry moves it.
const TICK_AFTER_MS: u64 = 1_000;

impl Partitions for Router {
    async fn run(
        &self,
        partition: u32,
        home: &str,
        calls: Vec<Call<String>>,
    ) -> Result<(Vec<Reply>, Position), SubmitError> {
        let mut encoded = Calls::new();
        for call in &calls {
            encoded
                .push(call)
                .map_err(|e| SubmitError::Internal(format!("{e:?}")))?;
        }
        let submitted = self.submit_steps(partition, home, encoded).await?;
        Ok((submitted.replies, submitted.position))
    }

    fn partition_of(&self, account: &str) -> u32 {
        self.map().of(account)
    }

    fn log_time_ms(&self, partition: u32) -> u64 {
        self.partition(partition)
            .map_or(0, |p| p.store().timestamp_ms())
    }

    async fn finish(&self, partition: u32, id: u128) -> Result<Position, SubmitError> {
        let (reply, answer) = oneshot::channel();
        let finisher = self
            .finishers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(partition as usize)
            .cloned();
        finisher
            .ok_or_else(|| SubmitError::Internal(format!("no partition {partition} here")))?
            .send((id, reply))
            .map_err(|_| SubmitError::ShuttingDown)?;
        answer.await.unwrap_or(Err(SubmitError::ShuttingDown))
    }
}
