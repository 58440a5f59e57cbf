//! Request bodies and the checks on their fields. Everything here is pure:
//! a request either becomes a valid command or a 400.

use super::errors::ApiError;
use super::money::{parse_amount, parse_currency};
use crate::sm::{Transfer, Txid};
use serde::Deserialize;
use uuid::Uuid;

/// `POST /v1/wallet/balance_transfer`, and each item of a batch.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    pub from_account: String,
    pub to_account: String,
    pub amount: String,
    pub currency: String,
    pub transaction_id: String,
}

/// `POST /v1/wallet/balance_transfers`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub transfers: Vec<TransferRequest>,
}

/// `POST /v1/wallet/deposit` and `/withdraw`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CashRequest {
    pub account_id: String,
    pub amount: String,
    pub currency: String,
    pub transaction_id: String,
}

/// The `kind` of a new account.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KindRequest {
    #[default]
    Standard,
    System,
    /// Needs `credit_limit_minor`.
    Credit,
}

/// `POST /v1/wallet/accounts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountRequest {
    pub account_id: String,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub kind: KindRequest,
    /// How far below zero a credit account may go, in minor units of any
    /// currency; only with `"kind": "credit"`.
    #[serde(default)]
    pub credit_limit_minor: Option<i64>,
}

/// 1 to 64 characters of `A-Za-z0-9_.:-`.
pub fn account_id(field: &str, id: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_account_id",
            format!("{field} must be 1 to 64 characters of A-Za-z0-9_.:-"),
        ))
    }
}

/// A UUID in its hyphenated form (either case).
pub fn transaction_id(id: &str) -> Result<Uuid, ApiError> {
    let invalid = || {
        ApiError::bad_request(
            "invalid_transaction_id",
            "transaction_id must be a UUID like 123e4567-e89b-12d3-a456-426614174000",
        )
    };
    if id.len() != 36 {
        return Err(invalid());
    }
    Uuid::try_parse(id).map_err(|_| invalid())
}

pub fn txid(id: Uuid) -> Txid {
    Txid::from_u128(id.as_u128())
}

/// An owner name: 1 to 128 characters, none of them control characters.
pub fn owner(owner: &str) -> Result<(), ApiError> {
    if (1..=128).contains(&owner.chars().count()) && !owner.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_owner",
            "owner must be 1 to 128 characters, none of them control characters",
        ))
    }
}

/// A validated money movement.
pub fn transfer(
    id: &str,
    from: (&str, &str),
    to: (&str, &str),
    amount: &str,
    currency: &str,
) -> Result<(Uuid, Transfer), ApiError> {
    let uuid = transaction_id(id)?;
    account_id(from.0, from.1)?;
    account_id(to.0, to.1)?;
    if from.1 == to.1 {
        return Err(ApiError::bad_request(
            "same_account",
            format!("{} and {} are the same account", from.0, to.0),
        ));
    }
    let exponent = parse_currency(currency)?;
    let amount = parse_amount(amount, exponent)?;
    Ok((
        uuid,
        Transfer {
            id: txid(uuid),
            from: from.1.to_owned(),
            to: to.1.to_owned(),
            amount,
            currency: currency.to_owned(),
        },
    ))
}

impl TransferRequest {
    pub fn validate(&self) -> Result<(Uuid, Transfer), ApiError> {
        transfer(
            &self.transaction_id,
            ("from_account", &self.from_account),
            ("to_account", &self.to_account),
            &self.amount,
            &self.currency,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids() {
        for ok in ["a", "external:bank", "A-z_0.9:x", "x".repeat(64).as_str()] {
            assert!(account_id("id", ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "é", "a/b", "a\n", "x".repeat(65).as_str()] {
            assert!(account_id("id", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn transaction_ids() {
        let id = "123e4567-e89b-12d3-a456-426614174000";
        assert_eq!(
            transaction_id(id).map(|u| u.to_string()).ok().as_deref(),
            Some(id)
        );
        assert!(transaction_id(&id.to_uppercase()).is_ok());
        for bad in [
            "",
            "123e4567e89b12d3a456426614174000",
            "{123e4567-e89b-12d3-a456-426614174000}",
            "123e4567-e89b-12d3-a456-42661417400g",
            "not-a-uuid",
        ] {
            assert!(transaction_id(bad).is_err(), "{bad}");
        }
    }
}
