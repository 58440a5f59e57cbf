//! Accounts: opening them, and their balances and history.

use super::AppState;
use super::auth::{Caller, Who, check_read};
use super::errors::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::input::{self, AccountRequest, KindRequest, OpeningsRequest};
use super::money::{format_minor, parse_currency};
use super::position::{Wanted, reflect, stamp};
use super::transfers::{one_call, refusal_status, submit};
use super::views::{AccountJson, EventJson, now_rfc3339, rfc3339_ms};
use crate::service::{AccountView, Positions, Reply, WalletService};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use wallet_core::Call;
use wallet_core::codec::Calls;
use wallet_core::{AccountKind, Command, OpenAccount, Reason, amount};

/// Default and largest `limit` of a history page.
pub const HISTORY_LIMIT_DEFAULT: usize = 100;
pub const HISTORY_LIMIT_MAX: usize = 1000;

fn account_kind(body: &AccountRequest) -> Result<AccountKind, ApiError> {
    match (body.kind, body.credit_limit_minor) {
        (KindRequest::Standard, None) => Ok(AccountKind::Standard),
        (KindRequest::System, None) => Ok(AccountKind::System),
        (KindRequest::Credit, Some(limit)) if amount::is_valid_credit_limit(limit) => {
            Ok(AccountKind::Credit(limit))
        }
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

/// The command a request asks for, once its fields are checked.
fn opening(body: &AccountRequest) -> Result<OpenAccount<&str>, ApiError> {
    input::account_id("account_id", &body.account_id)?;
    if let Some(owner) = &body.owner {
        input::owner("owner", owner)?;
    }
    Ok(OpenAccount {
        account: body.account_id.as_str(),
        owner: body.owner.as_deref(),
        kind: account_kind(body)?,
    })
}

/// `POST /v1/wallet/accounts`: 201 with the new, empty account.
pub async fn create<S: WalletService>(
    State(state): State<AppState<S>>,
    Caller(who): Caller,
    ApiJson(body): ApiJson<AccountRequest>,
) -> Result<Response, ApiError> {
    let open = opening(&body)?;
    let (id, kind) = (&body.account_id, open.kind);
    let submitted = submit(&*state.service, one_call(&who, Command::OpenAccount(open))?).await?;
    let positions = Positions(submitted.positions);
    let response = match &submitted.replies[0] {
        Reply::Accepted => {
            let view = AccountView {
                account_id: id.clone(),
                owner: body.owner.clone(),
                kind,
                balances: Vec::new(),
            };
            let mut response =
                (StatusCode::CREATED, Json(AccountJson::from(&view))).into_response();
            if let Ok(location) = HeaderValue::try_from(format!("/v1/wallet/accounts/{id}")) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
        Reply::Rejected(Reason::AccountExists) => ApiError::new(
            StatusCode::CONFLICT,
            "account_exists",
            format!("account {id} already exists"),
        )
        .into_response(),
        Reply::Rejected(reason) => ApiError::new(
            refusal_status(*reason),
            reason.name(),
            format!("account {id} was not opened"),
        )
        .into_response(),
        Reply::Failed(failure) => {
            return Err(ApiError::internal(format!(
                "state machine failed opening {id}: {failure}"
            )));
        }
        Reply::Moved => return Err(ApiError::moved()),
    };
    Ok(stamp(response, &positions))
}

/// The answer about one account of a batch.
#[derive(Debug, Serialize)]
pub struct OpeningJson {
    account_id: String,
    /// `opened`, or `failed` with a reason (`account_exists` among them).
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct OpeningsJson {
    results: Vec<OpeningJson>,
}

/// `POST /v1/wallet/account_openings`: up to a batch of accounts opened in
/// one submission (an import, say), one result per account in order. One
/// malformed account refuses the whole batch (400) and opens nothing.
pub async fn create_batch<S: WalletService>(
    State(state): State<AppState<S>>,
    Caller(who): Caller,
    ApiJson(body): ApiJson<OpeningsRequest>,
) -> Result<Response, ApiError> {
    input::batch_size(body.accounts.len(), "accounts")?;
    let mut calls = Calls::with_capacity(body.accounts.len() * 40);
    let caller = who.borrowed();
    for (i, item) in body.accounts.iter().enumerate() {
        let open = opening(item).map_err(|e| e.context(format_args!("accounts[{i}]")))?;
        let call = Call {
            caller: caller.clone(),
            command: Command::OpenAccount(open),
        };
        calls.push(&call).map_err(ApiError::internal)?;
    }
    let submitted = submit(&*state.service, calls).await?;
    let mut results = Vec::with_capacity(body.accounts.len());
    for (item, reply) in body.accounts.into_iter().zip(&submitted.replies) {
        let (status, reason) = match reply {
            Reply::Accepted => ("opened", None),
            Reply::Rejected(reason) => ("failed", Some(reason.name())),
            Reply::Failed(failure) => {
                return Err(ApiError::internal(format!(
                    "state machine failed opening {}: {failure}",
                    item.account_id
                )));
            }
            Reply::Moved => return Err(ApiError::moved()),
        };
        results.push(OpeningJson {
            account_id: item.account_id,
            status,
            reason,
        });
    }
    let positions = Positions(submitted.positions);
    Ok(stamp(
        Json(OpeningsJson { results }).into_response(),
        &positions,
    ))
}

/// The account, if it exists and the caller may read it.
async fn readable<S: WalletService>(
    service: &S,
    who: &Who,
    id: &str,
    at: &Positions,
) -> Result<AccountView, ApiError> {
    input::account_id("account id", id)?;
    let account = service
        .account(id, at)
        .await?
        .ok_or_else(|| ApiError::not_found("account_not_found", format!("no account {id}")))?;
    check_read(who, &account)?;
    Ok(account)
}

/// `GET /v1/wallet/accounts/{id}`.
pub async fn get_account<S: WalletService>(
    State(state): State<AppState<S>>,
    Caller(who): Caller,
    wanted: Wanted,
    ApiPath(id): ApiPath,
) -> Result<Response, ApiError> {
    input::account_id("account id", &id)?;
    let positions = reflect(&*state.service, wanted).await?;
    let account = readable(&*state.service, &who, &id, &positions).await?;
    Ok(stamp(
        Json(AccountJson::from(&account)).into_response(),
        &positions,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalanceQuery {
    currency: String,
    /// An RFC 3339 time: the balance as of then.
    at: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct BalanceReply {
    account_id: String,
    currency: String,
    available: String,
    reserved: String,
    /// When the balance was read (the node's wall clock), or the `at`
    /// asked for.
    as_of: String,
}

/// `GET /v1/wallet/accounts/{id}/balance?currency=USD[&at=RFC3339]`.
pub async fn get_balance<S: WalletService>(
    State(state): State<AppState<S>>,
    Caller(who): Caller,
    wanted: Wanted,
    ApiPath(id): ApiPath,
    ApiQuery(query): ApiQuery<BalanceQuery>,
) -> Result<Response, ApiError> {
    input::account_id("account id", &id)?;
    let exponent = parse_currency(&query.currency)?;
    let at_ms = query.at.as_deref().map(input::as_of).transpose()?;
    let positions = reflect(&*state.service, wanted).await?;
    let account = readable(&*state.service, &who, &id, &positions).await?;
    let ((available, reserved), as_of) = match at_ms {
        None => {
            let balance = account
                .balances
                .iter()
                .find(|b| b.currency == query.currency)
                .map_or((0, 0), |b| (b.available, b.reserved));
            (balance, now_rfc3339())
        }
        Some(at_ms) => {
            let balance = state
                .service
                .balance_at(&id, &query.currency, at_ms, &positions)
                .await?
                .unwrap_or((0, 0));
            (balance, rfc3339_ms(at_ms))
        }
    };
    let reply = BalanceReply {
        account_id: account.account_id,
        currency: query.currency,
        available: format_minor(available, exponent),
        reserved: format_minor(reserved, exponent),
        as_of,
    };
    Ok(stamp(Json(reply).into_response(), &positions))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    limit: Option<usize>,
    after: Option<i64>,
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
    Caller(who): Caller,
    wanted: Wanted,
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
    let after = match query.after.map(u64::try_from) {
        None => None,
        Some(Ok(after)) => Some(after),
        Some(Err(_)) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "after must be 0 or more",
            ));
        }
    };
    input::account_id("account id", &id)?;
    let positions = reflect(&*state.service, wanted).await?;
    readable(&*state.service, &who, &id, &positions).await?;
    let page = state
        .service
        .history(&id, after, limit, &positions)
        .await?
        .ok_or_else(|| ApiError::not_found("account_not_found", format!("no account {id}")))?;
    let body = HistoryJson {
        account_id: id,
        events: page.events.iter().map(EventJson::from).collect(),
        next: page.next,
    };
    Ok(stamp(Json(body).into_response(), &positions))
}
