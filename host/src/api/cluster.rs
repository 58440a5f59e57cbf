//! The state of the replica group, liveness and readiness.

use super::AppState;
use super::auth::{Admin, Caller};
use super::errors::ApiError;
use super::extract::{ApiJson, ApiPath, ApiPath2};
use crate::service::{Readiness, ReplicaChange, WalletService};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Serialize)]
pub struct StatusJson {
    /// The node that answered.
    pub node_id: u64,
    pub nodes: Vec<u64>,
    /// This node's replica of each partition. `in_flight` is in minor
    /// units per currency; `diverged` is present when the replica was
    /// fenced: the event record where its chain head differed from the
    /// majority's, and both heads.
    pub partitions: Vec<crate::service::PartitionStatus>,
    /// The cross-partition transfers this node coordinates now: how many
    /// wait at each stage, and the age of the oldest in milliseconds.
    pub coordinator: crate::coordinator::Stats,
}

/// `GET /v1/cluster/status`: any authenticated caller.
pub async fn status<S: WalletService>(
    State(state): State<AppState<S>>,
    _: Caller,
) -> Json<StatusJson> {
    let status = state.service.status();
    Json(StatusJson {
        node_id: status.node_id,
        nodes: status.members,
        partitions: status.partitions,
        coordinator: status.coordinator,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberRequest {
    node_id: u64,
    /// HOST:PORT the members reach it at.
    address: String,
    /// The partitions it takes a replica of; every one when absent.
    partitions: Option<Vec<u32>>,
}

/// `POST /v1/cluster/members` (admin, on any member): adds a member, which
/// must have been started with `--join`, through each partition's
/// leader; answers once it has caught up and votes.
pub async fn add_member<S: WalletService>(
    State(state): State<AppState<S>>,
    _: Admin,
    ApiJson(body): ApiJson<MemberRequest>,
) -> Result<Json<Value>, ApiError> {
    crate::cluster::parse_peers(&format!("{}={}", body.node_id, body.address))
        .map_err(|e| ApiError::bad_request("invalid_member", e.to_string()))?;
    if body
        .partitions
        .as_ref()
        .is_some_and(|p| p.len() > PARTITIONS_LISTED_MAX)
    {
        return Err(ApiError::bad_request(
            "invalid_member",
            format!("at most {PARTITIONS_LISTED_MAX} partitions"),
        ));
    }
    let voters = state
        .service
        .add_member(body.node_id, body.address, body.partitions)
        .await?;
    Ok(Json(json!({"members": voters})))
}

/// The most partitions a member request may list.
const PARTITIONS_LISTED_MAX: usize = crate::node::PARTITIONS_MAX as usize;

fn node_id(text: &str) -> Result<u64, ApiError> {
    text.parse()
        .map_err(|_| ApiError::bad_request("invalid_member", format!("{text:?} is not a node id")))
}

fn partition(text: &str) -> Result<u32, ApiError> {
    text.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_partition",
            format!("{text:?} is not a partition number"),
        )
    })
}

/// `DELETE /v1/cluster/members/{id}` (admin, on any member): out of every
/// partition.
pub async fn remove_member<S: WalletService>(
    State(state): State<AppState<S>>,
    _: Admin,
    ApiPath(id): ApiPath,
) -> Result<Json<Value>, ApiError> {
    let voters = state.service.remove_member(node_id(&id)?).await?;
    Ok(Json(json!({"members": voters})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaRequest {
    node_id: u64,
}

/// `POST /v1/cluster/partitions/{partition}/replicas` (admin, on any
/// member): a member of the cluster takes a replica of the partition.
pub async fn add_replica<S: WalletService>(
    State(state): State<AppState<S>>,
    _: Admin,
    ApiPath(group): ApiPath,
    ApiJson(body): ApiJson<ReplicaRequest>,
) -> Result<Json<Value>, ApiError> {
    let change = ReplicaChange::Add(body.node_id);
    let voters = state
        .service
        .change_replicas(partition(&group)?, change)
        .await?;
    Ok(Json(json!({"members": voters})))
}

/// `DELETE /v1/cluster/partitions/{partition}/replicas/{id}` (admin, on
/// any member).
pub async fn remove_replica<S: WalletService>(
    State(state): State<AppState<S>>,
    _: Admin,
    ApiPath2(group, id): ApiPath2,
) -> Result<Json<Value>, ApiError> {
    let change = ReplicaChange::Remove(node_id(&id)?);
    let voters = state
        .service
        .change_replicas(partition(&group)?, change)
        .await?;
    Ok(Json(json!({"members": voters})))
}

/// `POST /v1/cluster/partitions/{partition}/split` (admin, on any
/// member): the upper half of the partition's hash range, with its
/// accounts and their money, goes to a new partition while both serve;
/// answers once the map routes to it.
pub async fn split<S: WalletService>(
    State(state): State<AppState<S>>,
    _: Admin,
    ApiPath(group): ApiPath,
) -> Result<Json<Value>, ApiError> {
    let done = state
        .service
        .split(partition(&group)?)
        .await
        .map_err(|error| match error {
            crate::service::MembershipError::Refused(why) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "split_refused", why)
            }
            other => ApiError::from(other),
        })?;
    Ok(Json(json!({
        "partition": done.parent,
        "child": done.child,
        "index": done.index,
        "partitions": done.partitions,
    })))
}

/// `GET /healthz`: the process is up and serving HTTP.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: 200 when this node accepts writes, 503 with the reason
/// when it does not.
pub async fn readyz<S: WalletService>(State(state): State<AppState<S>>) -> Response {
    match state.service.readiness() {
        Readiness::Ready => Json(json!({"status": "ready"})).into_response(),
        Readiness::NotReady(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "reason": reason})),
        )
            .into_response(),
    }
}
