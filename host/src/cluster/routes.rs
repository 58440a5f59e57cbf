use super::transfer::{Framed, Holds, Seal};
use super::{ClusterSecret, MAC_HEADER, Rpc, Steps, answer_label};
use crate::node::Node;
use crate::partition::Partition;
use crate::raft::{Answer, SnapshotFiles};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use openraft::storage::Snapshot;
use serde::Serialize;
use std::sync::Arc;
use wallet_core::codec::{self, Calls};

/// The largest RPC body (a snapshot streams, without a limit): entries are
/// sent at most `max_payload_entries` at a time, each a batch of at most
/// a few MiB.
const RPC_BODY_MAX: usize = 64 << 20;

#[derive(Clone)]
struct Members {
    node: Arc<Node>,
    secret: ClusterSecret,
}

/// The routes members call each other on; merge them into the node's edge.
pub fn router(node: Arc<Node>, secret: ClusterSecret) -> Router {
    Router::new()
        .route(
            "/v1/raft/{group}/snapshot",
            post(snapshot).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/v1/raft/{group}/{rpc}",
            post(rpc).layer(DefaultBodyLimit::max(RPC_BODY_MAX)),
        )
        .with_state(Members { node, secret })
}

/// A request refused before it reached Raft: a status and why.
type Refused = (StatusCode, String);

fn refuse(status: StatusCode, why: impl Into<String>) -> Refused {
    (status, why.into())
}

fn tag(headers: &HeaderMap) -> Option<Vec<u8>> {
    hex::decode(headers.get(MAC_HEADER)?.as_bytes()).ok()
}

/// The answer, signed for the request's path.
fn signed<T: Serialize>(secret: &ClusterSecret, path: &str, answer: &T) -> Response {
    signed_bytes(
        secret,
        path,
        postcard::to_allocvec(answer).expect("answers serialize"),
    )
}

fn signed_bytes(secret: &ClusterSecret, path: &str, body: Vec<u8>) -> Response {
    let tag = secret.sign(&answer_label(path), &body);
    ([(MAC_HEADER, hex::encode(tag))], body).into_response()
}

fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Refused> {
    postcard::from_bytes(body)
        .map_err(|e| refuse(StatusCode::BAD_REQUEST, format!("undecodable message: {e}")))
}

fn partition(node: &Node, group: u32) -> Result<Arc<Partition>, Refused> {
    node.partition(group)
        .ok_or_else(|| refuse(StatusCode::NOT_FOUND, format!("no group {group} here")))
}

async fn rpc(
    State(members): State<Members>,
    Path((group, name)): Path<(u32, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(rpc) = Rpc::parse(&name).filter(|rpc| *rpc != Rpc::Snapshot) else {
        return refuse(StatusCode::NOT_FOUND, format!("no RPC {name:?}")).into_response();
    };
    let path = rpc.path(group);
    let genuine = tag(&headers).is_some_and(|t| members.secret.verify(path.as_bytes(), &body, &t));
    if !genuine {
        metrics::counter!("cluster_messages_refused").increment(1);
        return refuse(
            StatusCode::UNAUTHORIZED,
            "not signed with the cluster secret",
        )
        .into_response();
    }
    answer(&members, group, rpc, &body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn answer(members: &Members, group: u32, rpc: Rpc, body: &[u8]) -> Result<Response, Refused> {
    let path = rpc.path(group);
    let secret = &members.secret;
    let here = partition(&members.node, group)?;
    let raft = here.raft();
    let response = match rpc {
        Rpc::Append => {
            let answer: Answer<_> = raft
                .append_entries(decode(body)?)
                .await
                .map_err(|e| e.to_string());
            signed(secret, &path, &answer)
        }
        Rpc::Vote => {
            let answer: Answer<_> = raft.vote(decode(body)?).await.map_err(|e| e.to_string());
            signed(secret, &path, &answer)
        }
        Rpc::Holds => {
            let answer: Answer<Holds> = Ok(Holds {
                events_last: here.store().event_log().last(),
                commands_last: here.log().archived_through(here.store().applied_index()),
            });
            signed(secret, &path, &answer)
        }
        Rpc::Submit => {
            let calls = forwarded_calls(body)
                .map_err(|e| refuse(StatusCode::BAD_REQUEST, format!("calls: {e}")))?;
            let answer = members.node.submit_here(group, calls, None).await;
            signed(secret, &path, &answer)
        }
        Rpc::Steps => {
            let Steps { home, calls } = decode(body)?;
            let calls = forwarded_calls(&calls)
                .map_err(|e| refuse(StatusCode::BAD_REQUEST, format!("calls: {e}")))?;
            let answer = members.node.submit_here(group, calls, Some(home)).await;
            signed(secret, &path, &answer)
        }
        Rpc::Coordinate => {
            let calls = forwarded_calls(body)
                .map_err(|e| refuse(StatusCode::BAD_REQUEST, format!("calls: {e}")))?;
            let answer = members.node.coordinate_here(group, calls).await;
            signed(secret, &path, &answer)
        }
        Rpc::Tokens => {
            let answer = members.node.change_tokens_here(group, decode(body)?).await;
            signed(secret, &path, &answer)
        }
        Rpc::Versions => {
            let answer = members
                .node
                .change_versions_here(group, decode(body)?)
                .await;
            signed(secret, &path, &answer)
        }
        Rpc::ReadIndex => signed(secret, &path, &here.read_index().await),
        Rpc::Heads => signed(secret, &path, &here.answer_heads(decode(body)?)),
        Rpc::Leader => {
            let leader = if here.hosted() { here.leader() } else { None };
            signed(secret, &path, &leader)
        }
        Rpc::Partitions => signed(secret, &path, &members.node.base_count()),
        Rpc::Split => signed(secret, &path, &members.node.split_here(decode(body)?).await),
        Rpc::SplitEntry => {
            let answer = members.node.split_entry_here(group, decode(body)?).await;
            signed(secret, &path, &answer)
        }
        Rpc::Read => {
            let bytes = members.node.read_here(group, decode(body)?).await;
            signed_bytes(secret, &path, bytes)
        }
        Rpc::Replicas => {
            let answer = members
                .node
                .change_replicas_here(group, decode(body)?)
                .await;
            signed(secret, &path, &answer)
        }
        Rpc::Snapshot => unreachable!("snapshots have their own route"),
    };
    Ok(response)
}

/// A forwarded batch, checked call by call as it is encoded again.
fn forwarded_calls(bytes: &[u8]) -> Result<Calls, String> {
    let decoded = codec::calls(bytes).map_err(|e| format!("{e:?}"))?;
    let mut calls = Calls::with_capacity(bytes.len());
    for call in &decoded {
        calls.push(call).map_err(|e| format!("{e:?}"))?;
    }
    Ok(calls)
}

/// Receives a streamed snapshot (`super::transfer`) and installs it
/// through openraft, which checks the leader's vote again.
async fn snapshot(
    State(members): State<Members>,
    Path(group): Path<u32>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    receive(&members, group, &headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn receive(
    members: &Members,
    group: u32,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Refused> {
    let path = Rpc::Snapshot.path(group);
    let secret = &members.secret;
    let here = partition(&members.node, group)?;
    let mut framed = Framed::new(body.into_data_stream());
    let (head, head_bytes) = framed
        .head(Seal::Mac(secret.stream(path.as_bytes())))
        .await
        .map_err(|e| refuse(StatusCode::BAD_REQUEST, e.to_string()))?;
    let genuine = tag(headers).is_some_and(|t| secret.verify(path.as_bytes(), &head_bytes, &t));
    if !genuine {
        metrics::counter!("cluster_messages_refused").increment(1);
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "not signed with the cluster secret",
        ));
    }
    // A stale leader's snapshot is refused before it is read.
    let mine = here.raft().metrics().borrow().vote;
    if head.vote < mine {
        let answer: Answer<_> = Ok(openraft::raft::SnapshotResponse { vote: mine });
        return Ok(signed(secret, &path, &answer));
    }
    let id = &head.manifest.meta.snapshot_id;
    let dir = here
        .snapshots()
        .incoming(id)
        .map_err(|e| refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    // A stream cut off, or abandoned by its sender, leaves nothing.
    if let Err(error) = framed.body(&head, dir.as_ref()).await {
        tracing::warn!(%error, snapshot = %id, "receiving a snapshot failed");
        return Err(refuse(StatusCode::BAD_REQUEST, error.to_string()));
    }
    let snapshot = Snapshot {
        meta: head.manifest.meta.clone(),
        snapshot: Box::new(SnapshotFiles { dir: dir.keep() }),
    };
    // The state machine removes the files once installed; a snapshot
    // openraft finds stale is removed at the next start.
    let answer: Answer<_> = here
        .raft()
        .install_full_snapshot(head.vote, snapshot)
        .await
        .map_err(|e| e.to_string());
    Ok(signed(secret, &path, &answer))
}
