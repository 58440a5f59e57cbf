//! What comes out of the state machine: typed events, each saying in full
//! what happened, so that a projection is a pure fold over them and never
//! has to guess a step of a cross-partition transfer from a field.

use crate::command::{OpenAccount, Txid};
use crate::currency::Currency;
use crate::reason::Reason;

/// A movement of `amount` on one account.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Posting<S> {
    pub id: Txid,
    pub account: S,
    pub currency: Currency,
    pub amount: i64,
}

/// What happened, in order. The comment on each case is its [`Effect`] on
/// the account's `available` and `reserved` and on the partition's
/// in-flight sum; per currency, available + reserved + in-flight sums to
/// zero.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Event<S> {
    AccountOpened(OpenAccount<S>),
    /// A local transfer, deposit or withdrawal leaves: available -= amount.
    Debited(Posting<S>),
    /// A local transfer, deposit or withdrawal arrives: available += amount.
    Credited(Posting<S>),
    /// TC/C try at the source: available -= amount, reserved += amount.
    FundsReserved(Posting<S>),
    /// TC/C cancel at the source: reserved -= amount, available += amount.
    ReservationReleased(Posting<S>),
    /// TC/C confirm at the source: reserved -= amount, in-flight += amount.
    ReservationSettled(Posting<S>),
    /// TC/C try at the destination: no balance effect, a placeholder.
    CreditPending(Posting<S>),
    /// TC/C cancel at the destination: no balance effect.
    PendingDropped(Posting<S>),
    /// TC/C confirm at the destination: available += amount,
    /// in-flight -= amount.
    PendingCredited(Posting<S>),
    /// Saga step 1 at the source: available -= amount, in-flight += amount.
    Sent(Posting<S>),
    /// Saga step 2 at the destination: available += amount,
    /// in-flight -= amount.
    Received(Posting<S>),
    /// Saga compensation at the source: available += amount,
    /// in-flight -= amount.
    Refunded(Posting<S>),
    /// No balance effect: a cancel that arrived before its try.
    CancelRecorded(Txid),
    /// No balance effect: a command with a transaction id was refused.
    TransferRejected {
        id: Txid,
        reason: Reason,
    },
    /// No balance effect: an account arrives from the partition it was
    /// split off from (the account's kind and owner), before its money.
    AccountMovedIn(OpenAccount<S>),
    /// A partition split: the account's money leaves for the new
    /// partition: available -= amount, in-flight += amount.
    MovedOut(Posting<S>),
    /// A partition split: reserved -= amount, in-flight += amount.
    ReservationMovedOut(Posting<S>),
    /// In the new partition: available += amount, in-flight -= amount.
    MovedIn(Posting<S>),
    /// In the new partition: reserved += amount, in-flight -= amount.
    ReservationMovedIn(Posting<S>),
}

/// How an event moves its posting's amount, as signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Effect {
    pub available: i8,
    pub reserved: i8,
    pub in_flight: i8,
}

/// Where a transfer stands after one of its events, as far as that event
/// says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferStatus {
    Pending,
    Success,
    Failed(Reason),
}

const fn effect(available: i8, reserved: i8, in_flight: i8) -> Effect {
    Effect {
        available,
        reserved,
        in_flight,
    }
}

impl<S> Event<S> {
    /// The posting, for the events that carry one.
    pub fn posting(&self) -> Option<&Posting<S>> {
        use Event as E;
        match self {
            E::Debited(p)
            | E::Credited(p)
            | E::FundsReserved(p)
            | E::ReservationReleased(p)
            | E::ReservationSettled(p)
            | E::CreditPending(p)
            | E::PendingDropped(p)
            | E::PendingCredited(p)
            | E::Sent(p)
            | E::Received(p)
            | E::Refunded(p)
            | E::MovedOut(p)
            | E::ReservationMovedOut(p)
            | E::MovedIn(p)
            | E::ReservationMovedIn(p) => Some(p),
            E::AccountOpened(_)
            | E::AccountMovedIn(_)
            | E::CancelRecorded(_)
            | E::TransferRejected { .. } => None,
        }
    }

    /// The event's effect on balances, if it has one.
    pub fn effect(&self) -> Option<(&Posting<S>, Effect)> {
        use Event as E;
        let effect = match self {
            E::Debited(_) => effect(-1, 0, 0),
            E::Credited(_) => effect(1, 0, 0),
            E::FundsReserved(_) => effect(-1, 1, 0),
            E::ReservationReleased(_) => effect(1, -1, 0),
            E::ReservationSettled(_) => effect(0, -1, 1),
            E::PendingCredited(_) | E::Received(_) | E::Refunded(_) => effect(1, 0, -1),
            E::Sent(_) | E::MovedOut(_) => effect(-1, 0, 1),
            E::ReservationMovedOut(_) => effect(0, -1, 1),
            E::MovedIn(_) => effect(1, 0, -1),
            E::ReservationMovedIn(_) => effect(0, 1, -1),
            E::CreditPending(_)
            | E::PendingDropped(_)
            | E::AccountOpened(_)
            | E::AccountMovedIn(_)
            | E::CancelRecorded(_)
            | E::TransferRejected { .. } => return None,
        };
        Some((self.posting()?, effect))
    }

    /// The transaction the event belongs to; `None` for account openings
    /// and an account's move to another partition (its postings carry the
    /// split's id, which is no transfer).
    pub fn txid(&self) -> Option<Txid> {
        match self {
            Event::AccountOpened(_) | Event::AccountMovedIn(_) => None,
            Event::MovedOut(_)
            | Event::ReservationMovedOut(_)
            | Event::MovedIn(_)
            | Event::ReservationMovedIn(_) => None,
            Event::CancelRecorded(id) | Event::TransferRejected { id, .. } => Some(*id),
            other => other.posting().map(|p| p.id),
        }
    }

    /// The account whose history the event belongs to.
    pub fn account(&self) -> Option<&S> {
        match self {
            Event::AccountOpened(open) | Event::AccountMovedIn(open) => Some(&open.account),
            other => other.posting().map(|p| &p.account),
        }
    }

    /// What the event says of its transfer. A settled reservation is a
    /// success for its partition: the money has left the source.
    pub fn transfer_status(&self) -> Option<TransferStatus> {
        use Event as E;
        use TransferStatus::{Failed, Pending, Success};
        Some(match self {
            E::AccountOpened(_)
            | E::AccountMovedIn(_)
            | E::MovedOut(_)
            | E::ReservationMovedOut(_)
            | E::MovedIn(_)
            | E::ReservationMovedIn(_) => return None,
            E::Debited(_)
            | E::Credited(_)
            | E::ReservationSettled(_)
            | E::PendingCredited(_)
            | E::Received(_) => Success,
            E::FundsReserved(_) | E::CreditPending(_) | E::Sent(_) => Pending,
            E::ReservationReleased(_)
            | E::PendingDropped(_)
            | E::CancelRecorded(_)
            | E::Refunded(_) => Failed(Reason::TransferCancelled),
            E::TransferRejected { reason, .. } => Failed(*reason),
        })
    }

    /// The snake_case name the API shows as the event's `type`.
    pub fn name(&self) -> &'static str {
        use Event as E;
        match self {
            E::AccountOpened(_) => "account_opened",
            E::Debited(_) => "debited",
            E::Credited(_) => "credited",
            E::FundsReserved(_) => "funds_reserved",
            E::ReservationReleased(_) => "reservation_released",
            E::ReservationSettled(_) => "reservation_settled",
            E::CreditPending(_) => "credit_pending",
            E::PendingDropped(_) => "pending_dropped",
            E::PendingCredited(_) => "pending_credited",
            E::Sent(_) => "sent",
            E::Received(_) => "received",
            E::Refunded(_) => "refunded",
            E::CancelRecorded(_) => "cancel_recorded",
            E::TransferRejected { .. } => "transfer_rejected",
            E::AccountMovedIn(_) => "account_moved_in",
            E::MovedOut(_) => "moved_out",
            E::ReservationMovedOut(_) => "reservation_moved_out",
            E::MovedIn(_) => "moved_in",
            E::ReservationMovedIn(_) => "reservation_moved_in",
        }
    }
}

/// Every event name, for the API's description.
pub const EVENT_NAMES: [&str; 19] = [
    "account_opened",
    "debited",
    "credited",
    "funds_reserved",
    "reservation_released",
    "reservation_settled",
    "credit_pending",
    "pending_dropped",
    "pending_credited",
    "sent",
    "received",
    "refunded",
    "cancel_recorded",
    "transfer_rejected",
    "account_moved_in",
    "moved_out",
    "reservation_moved_out",
    "moved_in",
    "reservation_moved_in",
];

/// An event and the index, in its batch, of the command that produced it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EventRecord<S> {
    pub command: u32,
    pub event: Event<S>,
}

impl<S: AsRef<str>> Posting<S> {
    pub fn to_owned(&self) -> Posting<alloc::string::String> {
        Posting {
            id: self.id,
            account: self.account.as_ref().into(),
            currency: self.currency,
            amount: self.amount,
        }
    }
}

impl<S: AsRef<str>> Event<S> {
    /// The event with owned strings.
    pub fn to_owned(&self) -> Event<alloc::string::String> {
        use Event as E;
        match self {
            E::AccountOpened(o) => E::AccountOpened(o.to_owned()),
            E::Debited(p) => E::Debited(p.to_owned()),
            E::Credited(p) => E::Credited(p.to_owned()),
            E::FundsReserved(p) => E::FundsReserved(p.to_owned()),
            E::ReservationReleased(p) => E::ReservationReleased(p.to_owned()),
            E::ReservationSettled(p) => E::ReservationSettled(p.to_owned()),
            E::CreditPending(p) => E::CreditPending(p.to_owned()),
            E::PendingDropped(p) => E::PendingDropped(p.to_owned()),
            E::PendingCredited(p) => E::PendingCredited(p.to_owned()),
            E::Sent(p) => E::Sent(p.to_owned()),
            E::Received(p) => E::Received(p.to_owned()),
            E::Refunded(p) => E::Refunded(p.to_owned()),
            E::CancelRecorded(id) => E::CancelRecorded(*id),
            E::TransferRejected { id, reason } => E::TransferRejected {
                id: *id,
                reason: *reason,
            },
            E::AccountMovedIn(o) => E::AccountMovedIn(o.to_owned()),
            E::MovedOut(p) => E::MovedOut(p.to_owned()),
            E::ReservationMovedOut(p) => E::ReservationMovedOut(p.to_owned()),
            E::MovedIn(p) => E::MovedIn(p.to_owned()),
            E::ReservationMovedIn(p) => E::ReservationMovedIn(p.to_owned()),
        }
    }
}
