//! Moving money: single transfers, batches, deposits and withdrawals, and
//! the status of a transfer. Every command carries its caller; whether the
//! caller may make it is the rules' decision, answered like any other.

use super::AppState;
use super::auth::{Caller, Who, may_read};
use super::errors::ApiError;
use super::extract::{ApiJson, ApiPath};
use super::input::{self, BatchRequest, CashRequest, TransferRequest};
use super::position::{Wanted, reflect, stamp};
use super::views::TransferJson;
use crate::service::{Answered, Reply, WalletService};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::BTreeSet;
use uuid::Uuid;
use wallet_core::codec::Calls;
use wallet_core::{Call, Command, Reason, account};

/// The answer about one money movement.
#[derive(Debug, Serialize)]
pub struct OutcomeJson {
    pub status: &'static str,
    pub transaction_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// The status a refusal is answered with.
pub fn refusal_status(reason: Reason) -> StatusCode {
    match reason {
        Reason::IdempotencyConflict => StatusCode::CONFLICT,
        Reason::NotOwner | Reason::NotAllowed => StatusCode::FORBIDDEN,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// The status code and body for one reply; `Failed` is an error.
fn outcome(id: Uuid, reply: &Reply) -> Result<(StatusCode, OutcomeJson), ApiError> {
    let transaction_id = id.to_string();
    match reply {
        Reply::Accepted => Ok((
            StatusCode::OK,
            OutcomeJson {
                status: "success",
                transaction_id,
                reason: None,
            },
        )),
        Reply::Rejected(reason) => Ok((
            refusal_status(*reason),
            OutcomeJson {
                status: "failed",
                transaction_id,
                reason: Some(reason.name()),
            },
        )),
        Reply::Failed(failure) => Err(ApiError::internal(format!(
            "state machine failed the batch of {transaction_id}: {failure}"
        ))),
        Reply::Moved => Err(ApiError::moved()),
    }
}

/// Submits calls as one batch.
pub(crate) async fn submit<S: WalletService>(
    service: &S,
    calls: Calls,
) -> Result<Answered, ApiError> {
    let sent = calls.len();
    let submitted = service.submit(calls).await?;
    if submitted.replies.len() != sent {
        return Err(ApiError::internal(format!(
            "{sent} commands submitted, {} replies",
            submitted.replies.len()
        )));
    }
    Ok(submitted)
}

/// One command by `who`, encoded.
pub(crate) fn one_call(who: &Who, command: Command<&str>) -> Result<Calls, ApiError> {
    let mut calls = Calls::new();
    calls
        .push(&Call {
            caller: who.borrowed(),
            command,
        })
        .map_err(ApiError::internal)?;
    Ok(calls)
}

async fn single<S: WalletService>(
    service: &S,
    id: Uuid,
    calls: Calls,
) -> Result<Response, ApiError> {
    let submitted = submit(service, calls).await?;
    let (status, body) = outcome(id, &submitted.replies[0])?;
    let positions = crate::service::Positions(submitted.positions);
    Ok(stamp((status, Json(body)).into_response(), &positions))
}

/// `POST /v1/wallet/balance_transfer`.
pub async fn transfer<S: WalletService>(
    State(state): State<AppState<S>>,
    Caller(who): Caller,
    ApiJson(body): ApiJson<TransferRequest>,
) -> Result<Response, ApiError> {
    let (id, transfer) = body.validate()?;
    let calls = one_call(&who, Command::Transfer(transfer))?;
    single(&*state.service, id, calls).await
}

#[derive(Debug, Serialize)]
pub struct BatchJson {
    pub results: Vec<OutcomeJson>,
}

/// `POST /v1/wallet/balance_transfers`: all transfers in one submission,
/// one result per transfer in order. One malformed transfer refuses the
/// whole batch (400); a refusal (by the rules, or of an amount its
/// currency cannot carry) is that item's result.
pub async fn transfer_batch<S: WalletService>(
    State(state): State<AppState<S>>,
    Caller(who): Caller,
    ApiJson(body): ApiJson<BatchRequest>,
) -> Result<Response, ApiError> {
    let count = body.transfers.len();
    input::batch_size(count, "transfers")?;
    // Each item: submitted (its id), or refused here (its answer).
    let mut items: Vec<Result<Uuid, OutcomeJson>> = Vec::with_capacity(count);
    let mut calls = Calls::with_capacity(count * 80);
    let caller = who.borrowed();
    for (i, item) in body.transfers.iter().enumerate() {
        match item.validate() {
            Ok((id, transfer)) => {
                let call = Call {
                    caller: caller.clone(),
                    command: Command::Transfer(transfer),
                };
                calls.push(&call).map_err(ApiError::internal)?;
                items.push(Ok(id));
            }
            Err(
                refusal @ ApiError {
                    refusal_of: Some(_),
                    ..
                },
            ) => items.push(Err(OutcomeJson {
                status: "failed",
                transaction_id: refusal.refusal_of.unwrap_or_default(),
                reason: Some(refusal.code),
            })),
            Err(error) => return Err(error.context(format_args!("transfers[{i}]"))),
        }
    }
    let (mut replies, positions) = if calls.is_empty() {
        (Vec::new().into_iter(), None)
    } else {
        let submitted = submit(&*state.service, calls).await?;
        let positions = crate::service::Positions(submitted.positions);
        (submitted.replies.into_iter(), Some(positions))
    };
    let mut results = Vec::with_capacity(count);
    for item in items {
        results.push(match item {
            Ok(id) => {
                let reply = replies
                    .next()
                    .ok_or_else(|| ApiError::internal("a reply is missing"))?;
                outcome(id, &reply)?.1
            }
            Err(refused) => refused,
        });
    }
    let response = Json(BatchJson { results }).into_response();
    Ok(match positions {
        Some(positions) => stamp(response, &positions),
        None => response,
    })
}

/// `POST /v1/wallet/deposit`: from the system account to `account_id`.
pub async fn deposit<S: WalletService>(
    State(state): State<AppState<S>>,
    Caller(who): Caller,
    ApiJson(body): ApiJson<CashRequest>,
) -> Result<Response, ApiError> {
    let (id, transfer) = input::transfer(
        &body.transaction_id,
        ("the system account", account::BANK),
        ("account_id", &body.account_id),
        &body.amount,
        &body.currency,
    )?;
    let calls = one_call(&who, Command::Deposit(transfer))?;
    single(&*state.service, id, calls).await
}

/// `POST /v1/wallet/withdraw`: from `account_id` to the system account.
pub async fn withdraw<S: WalletService>(
    State(state): State<AppState<S>>,
    Caller(who): Caller,
    ApiJson(body): ApiJson<CashRequest>,
) -> Result<Response, ApiError> {
    let (id, transfer) = input::transfer(
        &body.transaction_id,
        ("account_id", &body.account_id),
        ("the system account", account::BANK),
        &body.amount,
        &body.currency,
    )?;
    let calls = one_call(&who, Command::Withdraw(transfer))?;
    single(&*state.service, id, calls).await
}

/// `GET /v1/wallet/transfers/{transaction_id}`. A client sees transfers
/// that touch one of its accounts, and those that touch no account at all
/// (a refusal).
pub async fn get_transfer<S: WalletService>(
    State(state): State<AppState<S>>,
    Caller(who): Caller,
    wanted: Wanted,
    ApiPath(id): ApiPath,
) -> Result<Response, ApiError> {
    let id = input::transaction_id(&id)?;
    let positions = reflect(&*state.service, wanted).await?;
    let view = state
        .service
        .transfer(input::txid(id), &positions)
        .await?
        .ok_or_else(|| ApiError::not_found("transfer_not_found", format!("no transfer {id}")))?;
    let accounts: BTreeSet<&str> = view
        .events
        .iter()
        .filter_map(|e| e.event.account().map(String::as_str))
        .collect();
    let mut visible = accounts.is_empty();
    for account in accounts {
        if let Some(a) = state.service.account(account, &positions).await?
            && may_read(&who, a.owner.as_deref())
        {
            visible = true;
            break;
        }
    }
    if !visible {
        return Err(ApiError::forbidden(format!(
            "transfer {id} touches none of your accounts"
        )));
    }
    Ok(stamp(
        Json(TransferJson::from(&view)).into_response(),
        &positions,
    ))
}
