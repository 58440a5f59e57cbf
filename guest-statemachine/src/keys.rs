//! The guest's state keys. The first byte names the table; the host never
//! looks inside a key.
//!
//! - `a account`: an account (kind, owner, balances).
//! - `t txid slot`: the receipt of one idempotent step of a transaction.
//! - `x txid side`: where one side of a cross-partition transfer stands.
//! - `o currency account`: what a client sent from the account today
//!   (only in rules with a daily limit, see `limit`).

use crate::limit;
use alloc::vec::Vec;
use core::hash::{Hash, Hasher};
use wallet_core::{Command, Currency, Txid};

pub const ACCOUNT: u8 = b'a';
pub const RECEIPT: u8 = b't';
pub const PHASE: u8 = b'x';
pub const OUTGOING: u8 = b'o';

/// Which idempotency record a command uses. The commands that first move
/// money in a partition share one slot per side, so one transaction id can
/// start only one movement there; each follow-up step has its own slot.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Slot {
    Source = 0,
    Destination = 1,
    Settle = 2,
    Credit = 3,
    Release = 4,
    DropPending = 5,
    Refund = 6,
}

impl Slot {
    /// A step after a cross-partition try names nothing but its transfer,
    /// and the phase record it moves on says whether it ran: once
    /// accepted, it keeps no receipt (a retry finds the phase it left).
    pub fn follows_a_try(self) -> bool {
        !matches!(self, Slot::Source | Slot::Destination)
    }
}

/// Which side of a cross-partition transfer a phase record describes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Side {
    Source = 0,
    Destination = 1,
}

/// A key, borrowing the account ids of the batch it belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Key<'a> {
    Account(&'a str),
    Receipt(Txid, Slot),
    Phase(Txid, Side),
    Outgoing(&'a str, Currency),
}

/// Hashed for the batch's key index, where hashing is a good part of a
/// batch's cost: an account by its bytes alone; a transaction id, random
/// already, folded to one word with what tells its keys apart. (Equal keys
/// hash equally; that different kinds of key may collide costs nothing.)
impl Hash for Key<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let tx = |id: Txid, suffix: u8, table: u8| {
            let folded = (id.0 as u64) ^ ((id.0 >> 64) as u64);
            folded ^ u64::from(suffix) ^ (u64::from(table) << 8)
        };
        match *self {
            Key::Account(id) => state.write(id.as_bytes()),
            Key::Receipt(id, slot) => state.write_u64(tx(id, slot as u8, RECEIPT)),
            Key::Phase(id, side) => state.write_u64(tx(id, side as u8, PHASE)),
            Key::Outgoing(id, currency) => {
                state.write(&currency.0);
                state.write(id.as_bytes());
            }
        }
    }
}

impl Key<'_> {
    pub fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            Key::Account(id) => {
                out.push(ACCOUNT);
                out.extend_from_slice(id.as_bytes());
            }
            Key::Receipt(id, slot) => tx_key(out, RECEIPT, id, slot as u8),
            Key::Phase(id, side) => tx_key(out, PHASE, id, side as u8),
            Key::Outgoing(id, currency) => {
                out.push(OUTGOING);
                out.extend_from_slice(&currency.0);
                out.extend_from_slice(id.as_bytes());
            }
        }
    }
}

fn tx_key(out: &mut Vec<u8>, table: u8, id: Txid, suffix: u8) {
    out.push(table);
    out.extend_from_slice(&id.0.to_be_bytes());
    out.push(suffix);
}

/// The receipt slot a command's outcome is kept under.
pub fn slot<S>(command: &Command<S>) -> Option<(Txid, Slot)> {
    use Command as C;
    let slot = match command {
        C::OpenAccount(_) => return None,
        C::Transfer(_) | C::Deposit(_) | C::Withdraw(_) | C::TccReserve(_) | C::SagaDebit(_) => {
            Slot::Source
        }
        C::TccPlacePending(_) | C::SagaCredit(_) => Slot::Destination,
        C::TccSettle(_) => Slot::Settle,
        C::TccCredit(_) => Slot::Credit,
        C::TccRelease(_) => Slot::Release,
        C::TccDropPending(_) => Slot::DropPending,
        C::SagaRefund(_) => Slot::Refund,
    };
    Some((command.txid()?, slot))
}

/// The phase record a cross-partition step reads, if any.
pub fn phase<S>(command: &Command<S>) -> Option<Key<'static>> {
    use Command as C;
    let side = match command {
        C::OpenAccount(_) | C::Transfer(_) | C::Deposit(_) | C::Withdraw(_) => return None,
        C::SagaCredit(_) => return None,
        C::TccReserve(_) | C::SagaDebit(_) => Side::Source,
        C::TccSettle(_) | C::TccRelease(_) | C::SagaRefund(_) => Side::Source,
        C::TccPlacePending(_) | C::TccCredit(_) | C::TccDropPending(_) => Side::Destination,
    };
    Some(Key::Phase(command.txid()?, side))
}

/// Every key a command reads that its body names (its receipt, its
/// accounts, its phase record, and under a daily limit what its source
/// sent today), in a fixed order.
pub fn of_command<'a>(command: &Command<&'a str>, mut push: impl FnMut(Key<'a>)) {
    use Command as C;
    if let Some((id, slot)) = slot(command) {
        push(Key::Receipt(id, slot));
    }
    match command {
        C::OpenAccount(open) => push(Key::Account(open.account)),
        C::Transfer(t) | C::Deposit(t) | C::Withdraw(t) => {
            push(Key::Account(t.from));
            push(Key::Account(t.to));
        }
        C::TccReserve(t) | C::SagaDebit(t) => push(Key::Account(t.from)),
        C::TccPlacePending(t) | C::SagaCredit(t) => push(Key::Account(t.to)),
        C::TccSettle(_)
        | C::TccCredit(_)
        | C::TccRelease(_)
        | C::TccDropPending(_)
        | C::SagaRefund(_) => {}
    }
    if let Some(key) = phase(command) {
        push(key);
    }
    if limit::DAILY_MAJOR.is_some()
        && let C::Transfer(t) | C::TccReserve(t) | C::SagaDebit(t) = command
    {
        push(Key::Outgoing(t.from, t.currency));
    }
}
