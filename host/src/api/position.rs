//! Read-your-writes across the edge: every write answer carries the
//! position it was applied at in the `Wallet-Position` header; a read that
//! sends it back waits, bounded, until the read models reflect it; every
//! read answer carries the position it reflects. A read without the header
//! reflects at least everything the node had applied when it arrived.

use super::AppState;
use super::errors::ApiError;
use crate::service::{Positions, WalletService};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;

pub const WALLET_POSITION: HeaderName = HeaderName::from_static("wallet-position");

/// The positions a read asks for (`None` without the header).
pub struct Wanted(pub Option<Positions>);

impl<S: WalletService> FromRequestParts<AppState<S>> for Wanted {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState<S>) -> Result<Self, ApiError> {
        // An empty header is no header.
        let Some(value) = parts
            .headers
            .get(&WALLET_POSITION)
            .filter(|v| !v.is_empty())
        else {
            return Ok(Wanted(None));
        };
        let invalid = |why: String| {
            ApiError::bad_request(
                "invalid_position",
                format!("Wallet-Position must be partition:index pairs like 0:1234: {why}"),
            )
        };
        let text = value.to_str().map_err(|e| invalid(e.to_string()))?;
        text.parse().map(|p| Wanted(Some(p))).map_err(invalid)
    }
}

/// Waits until the read models reflect what the read asks for.
pub async fn reflect<S: WalletService>(service: &S, wanted: Wanted) -> Result<Positions, ApiError> {
    Ok(service.read_at(wanted.0).await?)
}

/// Adds the `Wallet-Position` header.
pub fn stamp(mut response: Response, positions: &Positions) -> Response {
    if let Ok(value) = HeaderValue::try_from(positions.to_string()) {
        response.headers_mut().insert(WALLET_POSITION, value);
    }
    response
}
