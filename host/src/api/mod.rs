//! The HTTP edge (DESIGN §4): parse, authenticate and validate every request,
//! then hand typed commands to a [`WalletService`] and turn its replies into
//! JSON. Nothing invalid is ever submitted.
//!
//! - `money`: decimal strings <-> integer minor units, per ISO 4217 exponent.
//! - `input`: account ids, transaction ids, and the request bodies.
//! - `auth`: who calls: bearer tokens, looked up in the group's tokens.
//! - `position`: the `Wallet-Position` header (read-your-writes).
//! - `errors`: the JSON error body and every status code mapping.
//! - `extract`: JSON, query and path extractors whose failures are 400 JSON.
//! - `views`: the JSON shapes of accounts, balances and events.
//! - `transfers`, `accounts`, `cluster`, `admin`, `versions`: the handlers.
//! - `metrics`: the request metrics middleware and `/metrics`.
//! - `openapi`: the hand-written OpenAPI 3 document.

mod accounts;
mod admin;
mod auth;
mod cluster;
mod errors;
mod extract;
mod input;
mod metrics;
mod money;
mod openapi;
mod position;
mod transfers;
mod versions;
mod views;

#[cfg(test)]
mod tests;

use crate::service::WalletService;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;

pub use self::metrics::install_recorder;
/// The admin token to seed a new group with, instead of a random one.
pub const ADMIN_TOKEN_ENV: &str = "WALLET_ADMIN_TOKEN";
pub use money::{format_minor, parse_amount, parse_currency};
pub use position::WALLET_POSITION;

/// Requests with a larger body are refused with 413 `body_too_large`. A
/// full batch of 8190 transfers is about 1.5 MiB.
pub const MAX_BODY_BYTES: usize = 4 << 20;

/// Most transfers in one `POST /v1/wallet/balance_transfers` (one Raft entry).
pub const MAX_BATCH: usize = wallet_core::limits::BATCH_COMMANDS_MAX;

/// What every handler sees.
pub(crate) struct AppState<S> {
    pub service: Arc<S>,
    pub metrics: PrometheusHandle,
}

impl<S> Clone for AppState<S> {
    fn clone(&self) -> Self {
        AppState {
            service: Arc::clone(&self.service),
            metrics: self.metrics.clone(),
        }
    }
}

/// Every route of the API (docs/DESIGN.md §4), with the body limit and the
/// request metrics middleware. Mount it as is.
pub fn router<S: WalletService>(service: Arc<S>, metrics: PrometheusHandle) -> Router {
    let state = AppState { service, metrics };
    Router::new()
        .route(
            "/v1/wallet/balance_transfer",
            post(transfers::transfer::<S>),
        )
        .route(
            "/v1/wallet/balance_transfers",
            post(transfers::transfer_batch::<S>),
        )
        .route("/v1/wallet/deposit", post(transfers::deposit::<S>))
        .route("/v1/wallet/withdraw", post(transfers::withdraw::<S>))
        .route(
            "/v1/wallet/transfers/{transaction_id}",
            get(transfers::get_transfer::<S>),
        )
        .route("/v1/wallet/accounts", post(accounts::create::<S>))
        .route(
            "/v1/wallet/account_openings",
            post(accounts::create_batch::<S>),
        )
        .route("/v1/wallet/accounts/{id}", get(accounts::get_account::<S>))
        .route(
            "/v1/wallet/accounts/{id}/balance",
            get(accounts::get_balance::<S>),
        )
        .route(
            "/v1/wallet/accounts/{id}/history",
            get(accounts::get_history::<S>),
        )
        .route("/v1/cluster/status", get(cluster::status::<S>))
        .route("/v1/cluster/members", post(cluster::add_member::<S>))
        .route(
            "/v1/cluster/members/{id}",
            delete(cluster::remove_member::<S>),
        )
        .route(
            "/v1/cluster/partitions/{partition}/replicas",
            post(cluster::add_replica::<S>),
        )
        .route(
            "/v1/cluster/partitions/{partition}/replicas/{id}",
            delete(cluster::remove_replica::<S>),
        )
        .route(
            "/v1/cluster/partitions/{partition}/split",
            post(cluster::split::<S>),
        )
        .route(
            "/v1/admin/tokens",
            post(admin::create_token::<S>).get(admin::list_tokens::<S>),
        )
        .route("/v1/admin/tokens/{id}", delete(admin::revoke_token::<S>))
        .route("/v1/admin/backup", get(admin::backup::<S>))
        .route(
            "/v1/admin/versions",
            post(versions::deploy::<S>).get(versions::list::<S>),
        )
        .route(
            "/v1/admin/versions/{hash}/activate",
            post(versions::activate::<S>),
        )
        .route(
            "/v1/admin/versions/{hash}/verify",
            post(versions::verify::<S>),
        )
        .route(
            "/v1/admin/versions/{hash}/cancel",
            post(versions::cancel::<S>),
        )
        .route("/metrics", get(metrics::render::<S>))
        .route("/healthz", get(cluster::healthz))
        .route("/readyz", get(cluster::readyz::<S>))
        .route("/openapi.json", get(openapi::document))
        .fallback(errors::not_found)
        .method_not_allowed_fallback(errors::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(metrics::track))
        .with_state(state)
}
