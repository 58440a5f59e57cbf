//! Liveness and the state of the replica group.

use super::AppState;
use super::auth::Caller;
use crate::service::WalletService;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Debug, Serialize)]
pub struct PartitionJson {
    pub partition: u32,
    pub leader: Option<u64>,
    pub members: Vec<u64>,
    pub applied_index: Option<u64>,
    pub chain_head: String,
    pub active_version: String,
}

#[derive(Debug, Serialize)]
pub struct StatusJson {
    /// The node that answered.
    pub node_id: u64,
    pub nodes: Vec<u64>,
    pub partitions: Vec<PartitionJson>,
}

/// `GET /v1/cluster/status`: any authenticated caller.
pub async fn status<S: WalletService>(
    State(state): State<AppState<S>>,
    _: Caller,
) -> Json<StatusJson> {
    let status = state.service.status();
    Json(StatusJson {
        node_id: status.node_id,
        nodes: status.members.clone(),
        partitions: vec![PartitionJson {
            partition: status.partition,
            leader: status.leader,
            members: status.members,
            applied_index: status.applied_index,
            chain_head: status.chain_head,
            active_version: status.active_version,
        }],
    })
}

/// `GET /healthz`: the process is up and serving HTTP.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}
