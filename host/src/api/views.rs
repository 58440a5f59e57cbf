//! The JSON the edge answers with: amounts as decimal strings in their
//! currency's digits, transaction ids as UUID strings, times as RFC 3339.

use super::money::format_in;
use crate::service::{AccountView, BalanceView, EventView, TransferState, TransferView};
use serde::Serialize;
use std::collections::BTreeMap;
use uuid::Uuid;
use wallet_core::{AccountKind, Event, Posting, Txid};

pub fn uuid(id: Txid) -> String {
    Uuid::from_u128(id.0).to_string()
}

/// `"kind": "standard" | "system" | "credit"`, with `credit_limit_minor`
/// for credit accounts.
#[derive(Debug, Serialize)]
pub struct KindJson {
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credit_limit_minor: Option<i64>,
}

impl From<&AccountKind> for KindJson {
    fn from(kind: &AccountKind) -> Self {
        match kind {
            AccountKind::Standard => KindJson {
                kind: "standard",
                credit_limit_minor: None,
            },
            AccountKind::System => KindJson {
                kind: "system",
                credit_limit_minor: None,
            },
            AccountKind::Credit(limit) => KindJson {
                kind: "credit",
                credit_limit_minor: Some(*limit),
            },
        }
    }
}

#[derive(Debug, Serialize)]
pub struct BalanceJson {
    pub available: String,
    pub reserved: String,
}

impl From<&BalanceView> for BalanceJson {
    fn from(b: &BalanceView) -> Self {
        BalanceJson {
            available: format_in(b.available, &b.currency),
            reserved: format_in(b.reserved, &b.currency),
        }
    }
}

/// `GET /v1/wallet/accounts/{id}` and the 201 of account creation.
#[derive(Debug, Serialize)]
pub struct AccountJson {
    pub account_id: String,
    pub owner: Option<String>,
    #[serde(flatten)]
    pub kind: KindJson,
    pub balances: BTreeMap<String, BalanceJson>,
}

impl From<&AccountView> for AccountJson {
    fn from(a: &AccountView) -> Self {
        AccountJson {
            account_id: a.account_id.clone(),
            owner: a.owner.clone(),
            kind: KindJson::from(&a.kind),
            balances: a
                .balances
                .iter()
                .map(|b| (b.currency.clone(), BalanceJson::from(b)))
                .collect(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct PostingJson {
    pub transaction_id: String,
    pub account: String,
    pub currency: String,
    pub amount: String,
}

impl From<&Posting<String>> for PostingJson {
    fn from(p: &Posting<String>) -> Self {
        PostingJson {
            transaction_id: uuid(p.id),
            account: p.account.clone(),
            currency: p.currency.to_string(),
            amount: format_in(p.amount, p.currency.as_str()),
        }
    }
}

/// An event, tagged by `type` (its name, `wallet_core::Event::name`).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventBody {
    AccountOpened {
        account: String,
        owner: Option<String>,
        #[serde(flatten)]
        kind: KindJson,
    },
    Debited(PostingJson),
    Credited(PostingJson),
    FundsReserved(PostingJson),
    ReservationReleased(PostingJson),
    ReservationSettled(PostingJson),
    CreditPending(PostingJson),
    PendingDropped(PostingJson),
    PendingCredited(PostingJson),
    Sent(PostingJson),
    Received(PostingJson),
    Refunded(PostingJson),
    CancelRecorded {
        transaction_id: String,
    },
    TransferRejected {
        transaction_id: String,
        reason: &'static str,
    },
    /// The account arrived from the partition it was split off from; its
    /// money follows (`moved_in`, `reservation_moved_in`).
    AccountMovedIn {
        account: String,
        owner: Option<String>,
        #[serde(flatten)]
        kind: KindJson,
    },
    /// Money that left with the account when its partition split (its
    /// `transaction_id` is the split's); negative for an overdrawn
    /// credit account.
    MovedOut(PostingJson),
    ReservationMovedOut(PostingJson),
    MovedIn(PostingJson),
    ReservationMovedIn(PostingJson),
}

impl From<&Event<String>> for EventBody {
    fn from(event: &Event<String>) -> Self {
        use Event as E;
        match event {
            E::AccountOpened(open) => EventBody::AccountOpened {
                account: open.account.clone(),
                owner: open.owner.clone(),
                kind: KindJson::from(&open.kind),
            },
            E::Debited(p) => EventBody::Debited(p.into()),
            E::Credited(p) => EventBody::Credited(p.into()),
            E::FundsReserved(p) => EventBody::FundsReserved(p.into()),
            E::ReservationReleased(p) => EventBody::ReservationReleased(p.into()),
            E::ReservationSettled(p) => EventBody::ReservationSettled(p.into()),
            E::CreditPending(p) => EventBody::CreditPending(p.into()),
            E::PendingDropped(p) => EventBody::PendingDropped(p.into()),
            E::PendingCredited(p) => EventBody::PendingCredited(p.into()),
            E::Sent(p) => EventBody::Sent(p.into()),
            E::Received(p) => EventBody::Received(p.into()),
            E::Refunded(p) => EventBody::Refunded(p.into()),
            E::CancelRecorded(id) => EventBody::CancelRecorded {
                transaction_id: uuid(*id),
            },
            E::TransferRejected { id, reason } => EventBody::TransferRejected {
                transaction_id: uuid(*id),
                reason: reason.name(),
            },
            E::AccountMovedIn(open) => EventBody::AccountMovedIn {
                account: open.account.clone(),
                owner: open.owner.clone(),
                kind: KindJson::from(&open.kind),
            },
            E::MovedOut(p) => EventBody::MovedOut(p.into()),
            E::ReservationMovedOut(p) => EventBody::ReservationMovedOut(p.into()),
            E::MovedIn(p) => EventBody::MovedIn(p.into()),
            E::ReservationMovedIn(p) => EventBody::ReservationMovedIn(p.into()),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct EventJson {
    pub seq: u64,
    pub log_index: u64,
    pub timestamp: String,
    #[serde(flatten)]
    pub event: EventBody,
}

impl From<&EventView> for EventJson {
    fn from(e: &EventView) -> Self {
        EventJson {
            seq: e.seq,
            log_index: e.log_index,
            timestamp: rfc3339_ms(e.timestamp_ms),
            event: EventBody::from(&e.event),
        }
    }
}

/// `GET /v1/wallet/transfers/{transaction_id}`.
#[derive(Debug, Serialize)]
pub struct TransferJson {
    pub transaction_id: String,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    pub events: Vec<EventJson>,
}

impl From<&TransferView> for TransferJson {
    fn from(t: &TransferView) -> Self {
        let (status, reason) = match &t.state {
            TransferState::Pending => ("pending", None),
            TransferState::Success => ("success", None),
            TransferState::Failed(reason) => ("failed", Some(reason.name())),
        };
        TransferJson {
            transaction_id: uuid(t.id),
            status,
            reason,
            events: t.events.iter().map(EventJson::from).collect(),
        }
    }
}

/// Milliseconds since the Unix epoch as `2023-11-14T22:13:20.000Z`.
pub fn rfc3339_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// The wall clock, for `as_of`.
pub fn now_rfc3339() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    rfc3339_ms(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wallet_core::{Currency, Reason};

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339_ms(1_709_251_199_999), "2024-02-29T23:59:59.999Z");
        assert_eq!(rfc3339_ms(4_102_444_800_000), "2100-01-01T00:00:00.000Z");
    }

    #[test]
    fn events_show_decimal_amounts_and_uuids() {
        let id = Txid(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210);
        let view = EventView {
            seq: 3,
            log_index: 9,
            timestamp_ms: 1_700_000_000_000,
            event: Event::Debited(Posting {
                id,
                account: "alice".into(),
                currency: Currency(*b"BHD"),
                amount: 1005,
            }),
        };
        let json = serde_json::to_value(EventJson::from(&view)).unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({
                "seq": 3, "log_index": 9, "timestamp": "2023-11-14T22:13:20.000Z",
                "type": "debited", "transaction_id": "01234567-89ab-cdef-fedc-ba9876543210",
                "account": "alice", "currency": "BHD", "amount": "1.005",
            })
        );
        let rejected = Event::TransferRejected {
            id,
            reason: Reason::InsufficientFunds,
        };
        let json = serde_json::to_value(EventBody::from(&rejected)).unwrap_or_default();
        assert_eq!(json["type"], "transfer_rejected");
        assert_eq!(json["reason"], "insufficient_funds");
        for event in [rejected, Event::CancelRecorded(id)] {
            let json = serde_json::to_value(EventBody::from(&event)).unwrap_or_default();
            assert_eq!(json["type"], event.name(), "one name for each event");
        }
    }
}
