//! What goes into the state machine: a batch of calls, each a command and
//! its caller. `S` is the string type: `&str` when a command is decoded in
//! place from a batch's bytes (the guest), `String` when owned (the host).

use crate::currency::Currency;
use crate::principal::Caller;
use alloc::string::String;
use core::fmt;

/// A transaction id: a UUID as a 128-bit integer.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Txid(pub u128);

impl fmt::Debug for Txid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Txid({:032x})", self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum AccountKind {
    /// An ordinary wallet: its available balance never goes below zero.
    Standard,
    /// May go below zero by at most this many minor units, in any currency.
    Credit(i64),
    /// Where deposits come from and withdrawals go to; unbounded below.
    System,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct OpenAccount<S> {
    pub account: S,
    /// The principal whose client tokens may move money out of it.
    pub owner: Option<S>,
    pub kind: AccountKind,
}

/// Money moving from one account to another: a local transfer, a deposit or
/// withdrawal, or a step of a cross-partition transfer that carries a body.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Transfer<S> {
    pub id: Txid,
    pub from: S,
    pub to: S,
    /// Minor units of `currency`.
    pub amount: i64,
    pub currency: Currency,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Command<S> {
    OpenAccount(OpenAccount<S>),
    /// A transfer whose accounts both live in this partition.
    Transfer(Transfer<S>),
    /// A transfer whose `from` must be a system account.
    Deposit(Transfer<S>),
    /// A transfer whose `to` must be a system account.
    Withdraw(Transfer<S>),
    /// TC/C try at the source: move `amount` from available to reserved.
    TccReserve(Transfer<S>),
    /// TC/C try at the destination: a pending, balance-neutral placeholder.
    TccPlacePending(Transfer<S>),
    /// TC/C confirm at the source: the reservation leaves the partition.
    TccSettle(Txid),
    /// TC/C confirm at the destination: the pending amount is credited.
    TccCredit(Txid),
    /// TC/C cancel at the source: the reservation returns to available.
    /// Before its try, it is remembered and the late try is refused.
    TccRelease(Txid),
    /// TC/C cancel at the destination: the placeholder is dropped. Before
    /// its try, it is remembered and the late try is refused.
    TccDropPending(Txid),
    /// Saga step 1 at the source: debit into the partition's in-flight sum.
    SagaDebit(Transfer<S>),
    /// Saga step 2 at the destination: credit out of the in-flight sum.
    SagaCredit(Transfer<S>),
    /// Saga compensation at the source: return a debited amount.
    SagaRefund(Txid),
}

impl<S> Command<S> {
    /// The transaction the command belongs to; `None` for account openings.
    pub fn txid(&self) -> Option<Txid> {
        use Command as C;
        match self {
            C::OpenAccount(_) => None,
            C::Transfer(t)
            | C::Deposit(t)
            | C::Withdraw(t)
            | C::TccReserve(t)
            | C::TccPlacePending(t)
            | C::SagaDebit(t)
            | C::SagaCredit(t) => Some(t.id),
            C::TccSettle(id)
            | C::TccCredit(id)
            | C::TccRelease(id)
            | C::TccDropPending(id)
            | C::SagaRefund(id) => Some(*id),
        }
    }
}

/// One command and who sent it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Call<S> {
    pub caller: Caller<S>,
    pub command: Command<S>,
}

impl<S: AsRef<str>> Transfer<S> {
    pub fn to_owned(&self) -> Transfer<String> {
        Transfer {
            id: self.id,
            from: self.from.as_ref().into(),
            to: self.to.as_ref().into(),
            amount: self.amount,
            currency: self.currency,
        }
    }

    pub fn borrowed(&self) -> Transfer<&str> {
        Transfer {
            id: self.id,
            from: self.from.as_ref(),
            to: self.to.as_ref(),
            amount: self.amount,
            currency: self.currency,
        }
    }
}

impl<S: AsRef<str>> OpenAccount<S> {
    pub fn to_owned(&self) -> OpenAccount<String> {
        OpenAccount {
            account: self.account.as_ref().into(),
            owner: self.owner.as_ref().map(|o| o.as_ref().into()),
            kind: self.kind,
        }
    }

    pub fn borrowed(&self) -> OpenAccount<&str> {
        OpenAccount {
            account: self.account.as_ref(),
            owner: self.owner.as_ref().map(AsRef::as_ref),
            kind: self.kind,
        }
    }
}

impl<S: AsRef<str>> Command<S> {
    pub fn borrowed(&self) -> Command<&str> {
        use Command as C;
        match self {
            C::OpenAccount(o) => C::OpenAccount(o.borrowed()),
            C::Transfer(t) => C::Transfer(t.borrowed()),
            C::Deposit(t) => C::Deposit(t.borrowed()),
            C::Withdraw(t) => C::Withdraw(t.borrowed()),
            C::TccReserve(t) => C::TccReserve(t.borrowed()),
            C::TccPlacePending(t) => C::TccPlacePending(t.borrowed()),
            C::TccSettle(id) => C::TccSettle(*id),
            C::TccCredit(id) => C::TccCredit(*id),
            C::TccRelease(id) => C::TccRelease(*id),
            C::TccDropPending(id) => C::TccDropPending(*id),
            C::SagaDebit(t) => C::SagaDebit(t.borrowed()),
            C::SagaCredit(t) => C::SagaCredit(t.borrowed()),
            C::SagaRefund(id) => C::SagaRefund(*id),
        }
    }
}

impl<S: AsRef<str>> Command<S> {
    pub fn to_owned(&self) -> Command<String> {
        use Command as C;
        match self {
            C::OpenAccount(o) => C::OpenAccount(o.to_owned()),
            C::Transfer(t) => C::Transfer(t.to_owned()),
            C::Deposit(t) => C::Deposit(t.to_owned()),
            C::Withdraw(t) => C::Withdraw(t.to_owned()),
            C::TccReserve(t) => C::TccReserve(t.to_owned()),
            C::TccPlacePending(t) => C::TccPlacePending(t.to_owned()),
            C::TccSettle(id) => C::TccSettle(*id),
            C::TccCredit(id) => C::TccCredit(*id),
            C::TccRelease(id) => C::TccRelease(*id),
            C::TccDropPending(id) => C::TccDropPending(*id),
            C::SagaDebit(t) => C::SagaDebit(t.to_owned()),
            C::SagaCredit(t) => C::SagaCredit(t.to_owned()),
            C::SagaRefund(id) => C::SagaRefund(*id),
        }
    }
}

impl<S: AsRef<str>> Call<S> {
    pub fn to_owned(&self) -> Call<String> {
        Call {
            caller: Caller {
                role: self.caller.role,
                principal: self.caller.principal.as_ref().into(),
            },
            command: self.command.to_owned(),
        }
    }

    pub fn borrowed(&self) -> Call<&str> {
        Call {
            caller: self.caller.borrowed(),
            command: self.command.borrowed(),
        }
    }
}
