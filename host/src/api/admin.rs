//! Token administration: create (the secret is shown once), list (never a
//! secret), revoke, each for admins only. Creating and revoking are log
//! entries (`crate::tokens`), taken by the leader; the answer carries their
//! `Wallet-Position`.

use super::AppState;
use super::auth::Admin;
use super::errors::ApiError;
use super::extract::{ApiJson, ApiPath};
use super::input::{self, present};
use super::position::stamp;
use super::views::rfc3339_ms;
use crate::service::WalletService;
use crate::tokens::{
    RoleName, StoredToken, TokenChange, TokenInfo, TokenOutcome, TokenRefused, new_secret, now_ms,
};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// The longest a token may live: ten years.
pub const TOKEN_LIFETIME_MAX_SECONDS: u64 = 10 * 365 * 24 * 3600;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    role: RoleName,
    /// The principal the token acts as: required for a client token (the
    /// owner whose accounts it may debit).
    #[serde(default, deserialize_with = "present")]
    owner: Option<String>,
    #[serde(default, deserialize_with = "present")]
    expires_in_seconds: Option<u64>,
}

/// A token as an answer shows it.
#[derive(Debug, Serialize)]
pub struct TokenJson {
    id: String,
    role: RoleName,
    owner: String,
    created_at: String,
    expires_at: Option<String>,
}

impl From<TokenInfo> for TokenJson {
    fn from(info: TokenInfo) -> Self {
        TokenJson {
            id: info.id,
            role: info.role,
            owner: info.principal,
            created_at: rfc3339_ms(info.created_ms),
            expires_at: info.expires_ms.map(rfc3339_ms),
        }
    }
}

/// `POST /v1/admin/tokens`: 201 with the token, shown this once.
pub async fn create_token<S: WalletService>(
    State(state): State<AppState<S>>,
    _: Admin,
    ApiJson(body): ApiJson<TokenRequest>,
) -> Result<Response, ApiError> {
    if let Some(owner) = &body.owner {
        input::owner("owner", owner)?;
    }
    if body.role == RoleName::Client && body.owner.is_none() {
        return Err(ApiError::bad_request(
            "invalid_role",
            "a client token needs an owner: the principal whose accounts it may debit",
        ));
    }
    let expires_ms = match body.expires_in_seconds {
        None => None,
        Some(s) if (1..=TOKEN_LIFETIME_MAX_SECONDS).contains(&s) => Some(now_ms() + s * 1000),
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_expiry",
                format!("expires_in_seconds must be 1 to {TOKEN_LIFETIME_MAX_SECONDS}"),
            ));
        }
    };
    let token = new_secret();
    let stored = StoredToken::new(&token, body.role, body.owner, expires_ms);
    let (outcome, positions) = state
        .service
        .change_tokens(TokenChange::Create(stored))
        .await?;
    let info = match outcome {
        TokenOutcome::Created(info) => info,
        other => return Err(unexpected(&other)),
    };
    #[derive(Serialize)]
    struct Created {
        token: String,
        #[serde(flatten)]
        info: TokenJson,
    }
    let body = Created {
        token,
        info: info.into(),
    };
    Ok(stamp(
        (StatusCode::CREATED, Json(body)).into_response(),
        &positions,
    ))
}

fn unexpected(outcome: &TokenOutcome) -> ApiError {
    ApiError::internal(format!("a token change applied as {outcome:?}; retry"))
}

#[derive(Debug, Serialize)]
pub struct TokenList {
    tokens: Vec<TokenJson>,
}

/// `GET /v1/admin/tokens`: every token, never a secret.
pub async fn list_tokens<S: WalletService>(
    State(state): State<AppState<S>>,
    _: Admin,
) -> Json<TokenList> {
    let tokens = state
        .service
        .tokens()
        .into_iter()
        .map(TokenJson::from)
        .collect();
    Json(TokenList { tokens })
}

/// `DELETE /v1/admin/tokens/{id}`: 200 with the revoked token.
pub async fn revoke_token<S: WalletService>(
    State(state): State<AppState<S>>,
    _: Admin,
    ApiPath(id): ApiPath,
) -> Result<Response, ApiError> {
    if id.len() != 16 || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(ApiError::bad_request(
            "invalid_token_id",
            "a token id is 16 lower-case hex digits",
        ));
    }
    let change = TokenChange::Revoke {
        id: id.clone(),
        at_ms: now_ms(),
    };
    let (outcome, positions) = state.service.change_tokens(change).await?;
    match outcome {
        TokenOutcome::Revoked(info) => Ok(stamp(
            Json(TokenJson::from(info)).into_response(),
            &positions,
        )),
        TokenOutcome::Refused(TokenRefused::Unknown) => Err(ApiError::not_found(
            "token_not_found",
            format!("no token {id}"),
        )),
        TokenOutcome::Refused(TokenRefused::LastAdmin) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "last_admin_token",
            "this is the last admin token; create another admin token first",
        )),
        other => Err(unexpected(&other)),
    }
}

/// `GET /v1/admin/backup`: this node's state, event log and command
/// archive as one stream (`crate::backup`; `wallet backup` writes it to a
/// directory). 409 where this replica's archive does not reach its state.
/// Whichever member takes it, it holds every write acknowledged before it
/// was asked for: the member applies up to the leader's commit index
/// first, as a linearizable read does.
pub async fn backup<S: WalletService>(
    State(state): State<AppState<S>>,
    _: Admin,
) -> Result<Response, ApiError> {
    let acknowledged = state.service.read_index().await?;
    state.service.read_at(Some(acknowledged)).await?;
    let stream = state.service.backup().await.map_err(|error| match error {
        crate::Error::ArchiveGap { .. } => ApiError::new(
            StatusCode::CONFLICT,
            "archive_incomplete",
            error.to_string(),
        ),
        crate::Error::Partitions(_) => {
            ApiError::new(StatusCode::CONFLICT, "backup_refused", error.to_string())
        }
        other => ApiError::internal(other),
    })?;
    let content_type = [(header::CONTENT_TYPE, "application/octet-stream")];
    Ok((content_type, Body::from_stream(stream)).into_response())
}
