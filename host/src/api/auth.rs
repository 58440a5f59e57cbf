//! Who a request is from: its bearer token, looked up in the group's
//! tokens (`crate::tokens`, in the replicated state). Every command carries
//! the caller, and the rules decide what it may do; the edge decides only
//! who may read what (the read models are not commands) and who may manage
//! tokens (admins).

use super::AppState;
use super::errors::ApiError;
use super::position::WALLET_POSITION;
pub use crate::service::Who;
use crate::service::{AccountView, Positions, WalletService};
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use wallet_core::Role;

/// Whether `who` may read an account with `owner`.
pub fn may_read(who: &Who, owner: Option<&str>) -> bool {
    match who.role {
        Role::Admin | Role::Auditor | Role::System => true,
        Role::Client => owner == Some(who.principal.as_str()),
    }
}

/// Refuses an account `who` may not read.
pub(crate) fn check_read(who: &Who, account: &AccountView) -> Result<(), ApiError> {
    if may_read(who, account.owner.as_deref()) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "account {} belongs to someone else",
            account.account_id
        )))
    }
}

/// Who `token` is from. A token this member does not know yet, sent with
/// the `Wallet-Position` its creation was answered with, is looked up again
/// once this member has applied that position: a new token works at once
/// on any member.
async fn authenticate<S: WalletService>(parts: &Parts, service: &S, token: &str) -> Option<Who> {
    if let Some(who) = service.authenticate(token) {
        return Some(who);
    }
    let positions: Positions = parts
        .headers
        .get(&WALLET_POSITION)?
        .to_str()
        .ok()?
        .parse()
        .ok()?;
    service.read_at(Some(positions)).await.ok()?;
    service.authenticate(token)
}

/// Any authenticated caller.
pub struct Caller(pub Who);

/// An admin.
pub struct Admin;

impl<S: WalletService> FromRequestParts<AppState<S>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<S>) -> Result<Self, ApiError> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing `Authorization: Bearer <token>`"))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or_else(|| ApiError::unauthorized("expected `Authorization: Bearer <token>`"))?;
        authenticate(parts, &*state.service, token)
            .await
            .map(Caller)
            .ok_or_else(|| ApiError::unauthorized("unknown or expired token"))
    }
}

impl<S: WalletService> FromRequestParts<AppState<S>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState<S>) -> Result<Self, ApiError> {
        let who = Caller::from_request_parts(parts, state).await?.0;
        match who.role {
            Role::Admin => Ok(Admin),
            _ => Err(ApiError::forbidden("only an admin may do this")),
        }
    }
}
