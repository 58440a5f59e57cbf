//! Accounts: creation, balances and history.

use super::AppState;
use super::auth::{Admin, Caller, Role};
use super::errors::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::input::{self, AccountRequest, KindRequest};
use super::money::{format_minor, parse_currency};
use super::transfers::submit;
use super::views::{AccountJson, EventJson, now_rfc3339};
use crate::service::{AccountView, Reply, WalletService};
use crate::sm::{AccountKind, Command, OpenAccount, Reason};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// Default and largest `limit` of a history page.
pub const HISTORY_LIMIT_DEFAULT: usize = 100;
pub const HISTORY_LIMIT_MAX: usize = 1000;

fn account_kind(body: &AccountRequest) -> Result<AccountKind, ApiError> {
    match (body.kind, body.credit_limit_minor) {
        (KindRequest::Standard, None) => Ok(AccountKind::Standard),
        (KindRequest::System, None) => Ok(AccountKind::System),
        (KindRequest::Credit, Some(limit)) if limit > 0 => Ok(AccountKind::Credit(limit)),
        (KindRequest::Credit, _) => Err(ApiError::bad_request(
            "invalid_credit_limit",
            "a credit account needs a positive integer credit_limit_minor",
        )),
        (_, Some(_)) => Err(ApiError::bad_request(
            "invalid_credit_limit",
            "credit_limit_minor is only for \"kind\": \"credit\"",
        )),
    }
}

/// `POST /v1/wallet/accounts`: 201 with the new, empty account.
pub async fn create<S: WalletService>(
    State(state): State<AppState<S>>,
    _: Admin,
    ApiJson(body): ApiJson<AccountRequest>,
) -> Result<Response, ApiError> {
    input::account_id("account_id", &body.account_id)?;
    if let Some(owner) = &body.owner {
        input::owner(owner)?;
    }
    let kind = account_kind(&body)?;
    let open = OpenAccount {
        account: body.account_id.clone(),
        owner: body.owner.clone(),
        kind,
    };
    let reply = submit(&*state.service, vec![Command::OpenAccount(open)])
        .await?
        .pop()
        .ok_or_else(|| ApiError::internal("no reply"))?;
    let id = &body.account_id;
    match reply {
        Reply::Accepted => {
            let view = AccountView {
                account_id: id.clone(),
                owner: body.owner,
                kind,
                balances: Vec::new(),
            };
            let mut response =
                (StatusCode::CREATED, Json(AccountJson::from(&view))).into_response();
            if let Ok(location) = HeaderValue::try_from(format!("/v1/wallet/accounts/{id}")) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            Ok(response)
        }
        Reply::Rejected(Reason::AccountExists) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "account_exists",
            format!("account {id} already exists"),
        )),
        Reply::Rejected(reason) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            reason.code(),
            format!("account {id} was not opened"),
        )),
        Reply::Failed(failure) => Err(ApiError::internal(format!(
            "state machine failed opening {id}: {failure:?}"
        ))),
    }
}

/// The account, if it exists and the caller may read it.
fn readable<S: WalletService>(service: &S, role: &Role, id: &str) -> Result<AccountView, ApiError> {
    input::account_id("account id", id)?;
    let account = service
        .account(id)?
        .ok_or_else(|| ApiError::not_found("account_not_found", format!("no account {id}")))?;
    role.check_read(&account)?;
    Ok(account)
}

/// `GET /v1/wallet/accounts/{id}`.
pub async fn get_account<S: WalletService>(
    State(state): State<AppState<S>>,
    Caller(role): Caller,
    ApiPath(id): ApiPath,
) -> Result<Response, ApiError> {
    let account = readable(&*state.service, &role, &id)?;
    Ok(Json(AccountJson::from(&account)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalanceQuery {
    currency: Option<String>,
    at: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct BalanceReply {
    account_id: String,
    currency: String,
    available: String,
    reserved: String,
    /// When the balance was read (the node's wall clock).
    as_of: String,
    /// The log index the read side had applied before the read.
    applied_index: Option<u64>,
}

/// `GET /v1/wallet/accounts/{id}/balance?currency=USD`.
pub async fn get_balance<S: WalletService>(
    State(state): State<AppState<S>>,
    Caller(role): Caller,
    ApiPath(id): ApiPath,
    ApiQuery(query): ApiQuery<BalanceQuery>,
) -> Result<Response, ApiError> {
    if query.at.is_some() {
        return Err(ApiError::bad_request(
            "not_supported",
            "point-in-time balances (`at`) are not supported yet",
        ));
    }
    let currency = query
        .currency
        .ok_or_else(|| ApiError::bad_request("invalid_query", "`currency` is required"))?;
    let exponent = parse_currency(&currency)?;
    let applied_index = state.service.status().applied_index;
    let account = readable(&*state.service, &role, &id)?;
    let (available, reserved) = account
        .balances
        .iter()
        .find(|b| b.currency == currency)
        .map_or((0, 0), |b| (b.available, b.reserved));
    Ok(Json(BalanceReply {
        account_id: account.account_id,
        currency,
        available: format_minor(available, exponent),
        reserved: format_minor(reserved, exponent),
        as_of: now_rfc3339(),
        applied_index,
    })
    .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    limit: Option<usize>,
    after: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct HistoryJson {
    account_id: String,
    /// Oldest first.
    events: Vec<EventJson>,
    /// Pass as `after` for the next page; null at the end.
    next: Option<u64>,
}

/// `GET /v1/wallet/accounts/{id}/history?limit=&after=`.
pub async fn get_history<S: WalletService>(
    State(state): State<AppState<S>>,
    Caller(role): Caller,
    ApiPath(id): ApiPath,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(HISTORY_LIMIT_DEFAULT);
    if !(1..=HISTORY_LIMIT_MAX).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be 1 to {HISTORY_LIMIT_MAX}"),
        ));
    }
    input::account_id("account id", &id)?;
    if !matches!(role, Role::Admin | Role::Auditor) {
        readable(&*state.service, &role, &id)?;
    }
    let page = state
        .service
        .history(&id, query.after, limit)?
        .ok_or_else(|| ApiError::not_found("account_not_found", format!("no account {id}")))?;
    Ok(Json(HistoryJson {
        account_id: id,
        events: page.events.iter().map(EventJson::from).collect(),
        next: page.next,
    })
    .into_response())
}
