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
pub const WALLET_READ: HeaderName = HeaderName::from_static("wallet-read");

/// What a read asks to reflect: the positions it sends back (`None`
/// without the header), and with `Wallet-Read: linearizable`, every write
/// acknowledged before it began.
pub struct Wanted {
    positions: Option<Positions>,
    linearizable: bool,
}

fn linearizable(parts: &Parts) -> Result<bool, ApiError> {
    match parts.headers.get(&WALLET_READ) {
        None => Ok(false),
        Some(value) if value.as_bytes().eq_ignore_ascii_case(b"linearizable") => Ok(true),
        Some(_) => Err(ApiError::bad_request(
            "invalid_read",
            "Wallet-Read takes one value: linearizable",
        )),
    }
}

impl<S: WalletService> FromRequestParts<AppState<S>> for Wanted {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState<S>) -> Result<Self, ApiError> {
        let linearizable = linearizable(parts)?;
        // An empty header is no header.
        let Some(value) = parts
            .headers
            .get(&WALLET_POSITION)
            .filter(|v| !v.is_empty())
        else {
            return Ok(Wanted {
                positions: None,
                linearizable,
            });
        };
        let invalid = |why: String| {
            ApiError::bad_request(
                "invalid_position",
                format!("Wallet-Position must be partition:index pairs like 0:1234: {why}"),
            )
        };
        let text = value.to_str().map_err(|e| invalid(e.to_string()))?;
        let positions = text.parse().map_err(invalid)?;
        Ok(Wanted {
            positions: Some(positions),
            linearizable,
        })
    }
}

/// Waits until the read models reflect what the read asks for.
pub async fn reflect<S: WalletService>(service: &S, wanted: Wanted) -> Result<Positions, ApiError> {
    let mut positions = wanted.positions;
    if wanted.linearizable {
        let index = service.read_index().await?;
        positions = Some(match positions {
            None => index,
            Some(mut sent) => {
                sent.0.extend(index.0);
                sent
            }
        });
    }
    Ok(service.read_at(positions).await?)
}

/// Adds the `Wallet-Position` header.
pub fn stamp(mut response: Response, positions: &Positions) -> Response {
    if positions.0.is_empty() {
        return response;
    }
    if let Ok(value) = HeaderValue::try_from(positions.to_string()) {
        response.headers_mut().insert(WALLET_POSITION, value);
    }
    response
}
