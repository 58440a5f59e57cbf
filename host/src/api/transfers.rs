//! Moving money: single transfers, batches, deposits and withdrawals, and
//! the status of a transfer.

use super::auth::{Admin, Caller, Role, Writer};
use super::errors::ApiError;
use super::extract::{ApiJson, ApiPath};
use super::input::{self, BatchRequest, CashRequest, TransferRequest};
use super::views::{TransferJson, event_account};
use super::{AppState, BANK_ACCOUNT, MAX_BATCH};
use crate::service::{Reply, WalletService};
use crate::sm::{Command, Reason};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::BTreeSet;
use uuid::Uuid;

/// The answer about one money movement.
#[derive(Debug, Serialize)]
pub struct OutcomeJson {
    pub status: &'static str,
    pub transaction_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// The status code and body for one reply; `Failed` is an error.
fn outcome(id: Uuid, reply: Reply) -> Result<(StatusCode, OutcomeJson), ApiError> {
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
        Reply::Rejected(reason) => {
            let status = if reason == Reason::IdempotencyConflict {
                StatusCode::CONFLICT
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            Ok((
                status,
                OutcomeJson {
                    status: "failed",
                    transaction_id,
                    reason: Some(reason.code()),
                },
            ))
        }
        Reply::Failed(failure) => Err(ApiError::internal(format!(
            "state machine failed the batch of {transaction_id}: {failure:?}"
        ))),
    }
}

/// Submits commands as one batch and checks that every one was answered.
pub(crate) async fn submit<S: WalletService>(
    service: &S,
    commands: Vec<Command>,
) -> Result<Vec<Reply>, ApiError> {
    let sent = commands.len();
    let replies = service.submit(commands).await?;
    if replies.len() != sent {
        return Err(ApiError::internal(format!(
            "{sent} commands submitted, {} replies",
            replies.len()
        )));
    }
    Ok(replies)
}

async fn submit_one<S: WalletService>(service: &S, command: Command) -> Result<Reply, ApiError> {
    submit(service, vec![command])
        .await?
        .pop()
        .ok_or_else(|| ApiError::internal("no reply"))
}

/// Refuses to move money out of an account the caller does not own. An
/// unknown account passes: the rules answer `account_not_found`.
fn check_debit<S: WalletService>(service: &S, role: &Role, from: &str) -> Result<(), ApiError> {
    if *role == Role::Admin {
        return Ok(());
    }
    match service.account(from)? {
        Some(account) if !role.may_debit(account.owner.as_deref()) => Err(ApiError::forbidden(
            format!("account {from} belongs to someone else"),
        )),
        _ => Ok(()),
    }
}

async fn single<S: WalletService>(
    service: &S,
    id: Uuid,
    command: Command,
) -> Result<Response, ApiError> {
    let reply = submit_one(service, command).await?;
    let (status, body) = outcome(id, reply)?;
    Ok((status, Json(body)).into_response())
}

/// `POST /v1/wallet/balance_transfer`.
pub async fn transfer<S: WalletService>(
    State(state): State<AppState<S>>,
    Writer(role): Writer,
    ApiJson(body): ApiJson<TransferRequest>,
) -> Result<Response, ApiError> {
    let (id, transfer) = body.validate()?;
    check_debit(&*state.service, &role, &transfer.from)?;
    single(&*state.service, id, Command::Transfer(transfer)).await
}

#[derive(Debug, Serialize)]
pub struct BatchJson {
    pub results: Vec<OutcomeJson>,
}

/// `POST /v1/wallet/balance_transfers`: all transfers in one submission,
/// one result per transfer in order. One invalid or forbidden transfer
/// refuses the whole batch.
pub async fn transfer_batch<S: WalletService>(
    State(state): State<AppState<S>>,
    Writer(role): Writer,
    ApiJson(body): ApiJson<BatchRequest>,
) -> Result<Response, ApiError> {
    let count = body.transfers.len();
    if count == 0 {
        return Err(ApiError::bad_request("batch_empty", "no transfers"));
    }
    if count > MAX_BATCH {
        return Err(ApiError::bad_request(
            "batch_too_large",
            format!("{count} transfers; at most {MAX_BATCH} per batch"),
        ));
    }
    let mut ids = Vec::with_capacity(count);
    let mut commands = Vec::with_capacity(count);
    for (i, item) in body.transfers.iter().enumerate() {
        let (id, transfer) = item
            .validate()
            .map_err(|e| e.context(format_args!("transfers[{i}]")))?;
        ids.push(id);
        commands.push(Command::Transfer(transfer));
    }
    if role != Role::Admin {
        let sources: BTreeSet<&str> = body
            .transfers
            .iter()
            .map(|t| t.from_account.as_str())
            .collect();
        for from in sources {
            check_debit(&*state.service, &role, from)?;
        }
    }
    let replies = submit(&*state.service, commands).await?;
    let results = ids
        .into_iter()
        .zip(replies)
        .map(|(id, reply)| outcome(id, reply).map(|(_, body)| body))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(BatchJson { results }).into_response())
}

/// `POST /v1/wallet/deposit`: from the system account to `account_id`.
pub async fn deposit<S: WalletService>(
    State(state): State<AppState<S>>,
    _: Admin,
    ApiJson(body): ApiJson<CashRequest>,
) -> Result<Response, ApiError> {
    let (id, transfer) = input::transfer(
        &body.transaction_id,
        ("the system account", BANK_ACCOUNT),
        ("account_id", &body.account_id),
        &body.amount,
        &body.currency,
    )?;
    single(&*state.service, id, Command::Deposit(transfer)).await
}

/// `POST /v1/wallet/withdraw`: from `account_id` to the system account.
pub async fn withdraw<S: WalletService>(
    State(state): State<AppState<S>>,
    _: Admin,
    ApiJson(body): ApiJson<CashRequest>,
) -> Result<Response, ApiError> {
    let (id, transfer) = input::transfer(
        &body.transaction_id,
        ("account_id", &body.account_id),
        ("the system account", BANK_ACCOUNT),
        &body.amount,
        &body.currency,
    )?;
    single(&*state.service, id, Command::Withdraw(transfer)).await
}

/// `GET /v1/wallet/transfers/{transaction_id}`. A client sees transfers
/// that touch one of its accounts, and those that touch no account at all
/// (a rejection).
pub async fn get_transfer<S: WalletService>(
    State(state): State<AppState<S>>,
    Caller(role): Caller,
    ApiPath(id): ApiPath,
) -> Result<Response, ApiError> {
    let id = input::transaction_id(&id)?;
    let view = state
        .service
        .transfer(input::txid(id))?
        .ok_or_else(|| ApiError::not_found("transfer_not_found", format!("no transfer {id}")))?;
    if let Role::Client { .. } = role {
        let accounts: BTreeSet<&str> = view
            .events
            .iter()
            .filter_map(|e| event_account(&e.event))
            .collect();
        let mut visible = accounts.is_empty();
        for account in accounts {
            if let Some(a) = state.service.account(account)?
                && role.may_read(a.owner.as_deref())
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
    }
    Ok(Json(TransferJson::from(&view)).into_response())
}
