use super::LogStore;
use super::{NodeId, SnapshotFiles, TypeConfig};
use crate::cluster::transfer::{self, Holds, Sources};
use crate::cluster::{CallError, Peers, Rpc};
use crate::store::EventLog;
use openraft::error::{
    Fatal, NetworkError, RPCError, RaftError, ReplicationClosed, StreamingError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::storage::Snapshot;
use openraft::{BasicNode, Vote};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How long a snapshot may take to stream and install.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(3600);
/// How long asking a follower which records and entries it holds may take.
const HOLDS_TIMEOUT: Duration = Duration::from_secs(5);

/// What a member answers an RPC with: the result, or why its Raft could
/// not take it (it stopped).
pub type Answer<T> = Result<T, String>;

/// The network of one group: its members' RPCs through the node's pooled
/// peer client. A group of one has no peers and never calls.
#[derive(Clone)]
pub struct Network {
    peers: Option<Peers>,
    group: u32,
    events: Arc<EventLog>,
    log: LogStore,
}

impl Network {
    pub fn new(peers: Option<Peers>, group: u32, events: Arc<EventLog>, log: LogStore) -> Self {
        Network {
            peers,
            group,
            events,
            log,
        }
    }
}

/// One target member. Creating one opens nothing: calls borrow a pooled
/// connection.
pub struct Peer {
    peers: Option<Peers>,
    group: u32,
    target: NodeId,
    addr: String,
    events: Arc<EventLog>,
    log: LogStore,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;
    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Peer {
        Peer {
            peers: self.peers.clone(),
            group: self.group,
            target,
            addr: node.addr.clone(),
            events: Arc::clone(&self.events),
            log: self.log.clone(),
        }
    }
}

type RpcResult<T> = Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId>>>;

fn rpc_error(error: CallError) -> RPCError<NodeId, BasicNode, RaftError<NodeId>> {
    match error {
        CallError::Unreachable { .. } => RPCError::Unreachable(Unreachable::new(&error)),
        CallError::Failed { .. } => RPCError::Network(NetworkError::new(&error)),
    }
}

fn decode<T: DeserializeOwned>(addr: &str, bytes: &[u8]) -> Result<T, CallError> {
    postcard::from_bytes(bytes).map_err(|e| CallError::Failed {
        addr: addr.to_string(),
        why: format!("undecodable answer: {e}"),
    })
}

impl Peer {
    async fn call<Q: Serialize, A: DeserializeOwned>(
        &self,
        rpc: Rpc,
        request: &Q,
        timeout: Duration,
    ) -> Result<A, CallError> {
        let Some(peers) = &self.peers else {
            return Err(CallError::Unreachable {
                addr: self.addr.clone(),
                why: "this node has no peers configured".into(),
            });
        };
        let body = postcard::to_allocvec(request).expect("raft messages serialize");
        let bytes = peers
            .call(&self.addr, self.group, rpc, body, timeout)
            .await?;
        let answer: Answer<A> = decode(&self.addr, &bytes)?;
        // A member whose Raft stopped is, for Raft, as good as gone.
        answer.map_err(|why| CallError::Unreachable {
            addr: self.addr.clone(),
            why,
        })
    }

    async fn send_snapshot(
        &self,
        vote: Vote<NodeId>,
        files: &SnapshotFiles,
    ) -> Result<SnapshotResponse<NodeId>, CallError> {
        let Some(peers) = &self.peers else {
            return Err(CallError::Unreachable {
                addr: self.addr.clone(),
                why: "this node has no peers configured".into(),
            });
        };
        let holds: Holds = self.call(Rpc::Holds, &(), HOLDS_TIMEOUT).await?;
        let failed = |e: std::io::Error| CallError::Failed {
            addr: self.addr.clone(),
            why: format!("reading the snapshot: {e}"),
        };
        let manifest = files.manifest().map_err(failed)?;
        let last = manifest.meta.last_log_id.map_or(0, |id| id.index);
        let archived = self.log.archived_through(last);
        let head = transfer::head(vote, files, holds, archived).map_err(failed)?;
        tracing::info!(
            target = self.target,
            snapshot = %head.manifest.meta.snapshot_id,
            events_from = head.events_from,
            commands_from = head.commands_from,
            "sending a snapshot"
        );
        let sources = Sources {
            events: Arc::clone(&self.events),
            commands: self.log.clone(),
        };
        let bytes = transfer::send(
            peers,
            &self.addr,
            self.group,
            head,
            files.dir.clone(),
            sources,
            SNAPSHOT_TIMEOUT,
        )
        .await?;
        let answer: Answer<SnapshotResponse<NodeId>> = decode(&self.addr, &bytes)?;
        answer.map_err(|why| CallError::Failed {
            addr: self.addr.clone(),
            why,
        })
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        self.call(Rpc::Append, &rpc, option.hard_ttl())
            .await
            .map_err(rpc_error)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        self.call(Rpc::Vote, &rpc, option.hard_ttl())
            .await
            .map_err(rpc_error)
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote<NodeId>,
        snapshot: Snapshot<TypeConfig>,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<NodeId>, StreamingError<TypeConfig, Fatal<NodeId>>> {
        let sent = tokio::select! {
            sent = self.send_snapshot(vote, &snapshot.snapshot) => sent,
            closed = cancel => return Err(StreamingError::Closed(closed)),
        };
        sent.map_err(|error| match error {
            CallError::Unreachable { .. } => StreamingError::Unreachable(Unreachable::new(&error)),
            CallError::Failed { .. } => StreamingError::Network(NetworkError::new(&error)),
        })
    }
}
