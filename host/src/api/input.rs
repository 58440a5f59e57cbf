//! Request bodies and the checks on their fields, with the definitions the
//! rules use (`wallet_core`): what the edge refuses here (400, nothing
//! reaches the log) is exactly what a schema can say; everything else the
//! rules judge. Everything here is pure.

use super::MAX_BATCH;
use super::errors::ApiError;
use super::money::{parse_amount, parse_currency};
use serde::{Deserialize, Deserializer};
use uuid::Uuid;
use wallet_core::{Currency, Transfer, Txid, account, principal};

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

/// `POST /v1/wallet/account_openings`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpeningsRequest {
    pub accounts: Vec<AccountRequest>,
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

/// `POST /v1/wallet/accounts`. Optional fields may be left out, not sent
/// as `null`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountRequest {
    pub account_id: String,
    #[serde(default, deserialize_with = "present")]
    pub owner: Option<String>,
    #[serde(default)]
    pub kind: KindRequest,
    /// How far below zero a credit account may go, in minor units of any
    /// currency; only with `"kind": "credit"`.
    #[serde(default, deserialize_with = "present")]
    pub credit_limit_minor: Option<i64>,
}

/// An optional field that, when present, must hold a value (`null` is
/// refused, as the API description says).
pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// 1 to 64 characters of `A-Za-z0-9_.:-`.
pub fn account_id(field: &str, id: &str) -> Result<(), ApiError> {
    if account::is_valid(id) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_account_id",
            format!("{field} must be 1 to 64 characters of A-Za-z0-9_.:-"),
        ))
    }
}

/// A batch of `count` items (`what`) is 1 to [`MAX_BATCH`] of them.
pub fn batch_size(count: usize, what: &str) -> Result<(), ApiError> {
    if count == 0 {
        return Err(ApiError::bad_request("batch_empty", format!("no {what}")));
    }
    if count > MAX_BATCH {
        return Err(ApiError::bad_request(
            "batch_too_large",
            format!("{count} {what}; at most {MAX_BATCH} per batch"),
        ));
    }
    Ok(())
}

/// An owner, or a token's principal: 1 to 64 characters of
/// `A-Za-z0-9_.:@-`.
pub fn owner(field: &str, owner: &str) -> Result<(), ApiError> {
    if principal::is_valid(owner) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_owner",
            format!("{field} must be a principal: 1 to 64 characters of A-Za-z0-9_.:@-"),
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

/// An "as of" time (RFC 3339) in milliseconds since the Unix epoch. A
/// time in the future reads as now (the answer's `as_of` says so): what
/// is to come is not known yet.
pub fn as_of(text: &str) -> Result<u64, ApiError> {
    let at_ms =
        crate::audit::time_ms(text).map_err(|e| ApiError::bad_request("invalid_time", e))?;
    Ok(at_ms.min(crate::tokens::now_ms()))
}

pub fn txid(id: Uuid) -> Txid {
    Txid(id.as_u128())
}

/// A well-formed money movement. Whether it may happen (the accounts, the
/// balances, the caller, a transfer to the same account, a zero amount) is
/// the rules'; an amount its currency cannot carry is a refusal (422).
pub fn transfer<'a>(
    id: &str,
    from: (&str, &'a str),
    to: (&str, &'a str),
    amount: &str,
    currency: &str,
) -> Result<(Uuid, Transfer<&'a str>), ApiError> {
    let uuid = transaction_id(id)?;
    account_id(from.0, from.1)?;
    account_id(to.0, to.1)?;
    let exponent = parse_currency(currency)?;
    let amount = parse_amount(amount, exponent).map_err(|e| {
        if e.is_refusal() {
            ApiError::refusal(&uuid, e.code(), e.to_string())
        } else {
            ApiError::from(e)
        }
    })?;
    let currency = Currency::parse(currency).expect("an accepted code has three bytes");
    Ok((
        uuid,
        Transfer {
            id: txid(uuid),
            from: from.1,
            to: to.1,
            amount,
            currency,
        },
    ))
}

impl TransferRequest {
    pub fn validate(&self) -> Result<(Uuid, Transfer<&str>), ApiError> {
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

    #[test]
    fn null_is_not_an_omitted_field() {
        let body = r#"{"account_id": "alice", "owner": null}"#;
        assert!(serde_json::from_str::<AccountRequest>(body).is_err());
        let body = r#"{"account_id": "alice", "credit_limit_minor": null}"#;
        assert!(serde_json::from_str::<AccountRequest>(body).is_err());
        let body = r#"{"account_id": "alice"}"#;
        let request: AccountRequest = serde_json::from_str(body).expect("parses");
        assert_eq!((request.owner, request.credit_limit_minor), (None, None));
    }
}
