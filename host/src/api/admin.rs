//! Token administration.

use super::AppState;
use super::auth::{Admin, RoleName};
use super::errors::ApiError;
use super::extract::ApiJson;
use super::input;
use crate::service::WalletService;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    role: RoleName,
    #[serde(default)]
    owner: Option<String>,
}

/// `POST /v1/admin/tokens`: 201 `{"token": ...}`, shown this once.
pub async fn create_token<S: WalletService>(
    State(state): State<AppState<S>>,
    _: Admin,
    ApiJson(body): ApiJson<TokenRequest>,
) -> Result<Response, ApiError> {
    if let Some(owner) = &body.owner {
        input::owner(owner)?;
    }
    let owner = body.owner.clone();
    let role = body.role.with_owner(body.owner).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_role",
            "a client token needs an owner; admin and auditor tokens take none",
        )
    })?;
    let auth = Arc::clone(&state.auth);
    let token = tokio::task::spawn_blocking(move || auth.create_token(role))
        .await
        .map_err(ApiError::internal)??;
    Ok((
        StatusCode::CREATED,
        Json(json!({"token": token, "role": body.role, "owner": owner})),
    )
        .into_response())
}
