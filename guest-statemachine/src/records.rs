//! The values the guest stores, and their bytes: the guest's own schema,
//! which the host never reads. Decoding borrows from the values buffer. A
//! value that does not decode is state this code did not write, a bug:
//! decoding panics, which traps.

use crate::layout;
use smallvec::SmallVec;
use wallet_core::codec::{self, Reader};
use wallet_core::{AccountKind, Call, Command, Currency, Reason};

use alloc::vec::Vec;

/// One currency's money on one account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Balance {
    pub currency: Currency,
    pub available: i64,
    pub reserved: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account<'a> {
    pub kind: AccountKind,
    pub owner: Option<&'a str>,
    /// Sorted by currency; an absent currency has nothing available or
    /// reserved. Most accounts hold one or two currencies: inline.
    pub balances: SmallVec<[Balance; 2]>,
}

impl<'a> Account<'a> {
    pub fn new(kind: AccountKind, owner: Option<&'a str>) -> Self {
        Account {
            kind,
            owner,
            balances: SmallVec::new(),
        }
    }

    /// The lowest `available` may go, or `None` when unbounded (system).
    pub fn floor(&self) -> Option<i64> {
        match self.kind {
            AccountKind::Standard => Some(0),
            AccountKind::Credit(limit) => Some(-limit),
            AccountKind::System => None,
        }
    }

    pub fn balance(&self, currency: Currency) -> Balance {
        match self.find(currency) {
            Ok(i) => self.balances[i],
            Err(_) => Balance {
                currency,
                available: 0,
                reserved: 0,
            },
        }
    }

    pub fn set_balance(&mut self, balance: Balance) {
        match self.find(balance.currency) {
            Ok(i) => self.balances[i] = balance,
            Err(i) => self.balances.insert(i, balance),
        }
    }

    fn find(&self, currency: Currency) -> Result<usize, usize> {
        self.balances
            .binary_search_by_key(&currency, |b| b.currency)
    }

    /// In this build's layout (`layout`).
    pub fn encode(&self, out: &mut Vec<u8>) {
        if layout::COMPACT {
            layout::encode(self, out);
        } else {
            self.encode_fixed(out);
        }
    }

    /// A record this build wrote, or one its migration rewrote.
    pub fn decode(bytes: &'a [u8]) -> Self {
        if layout::COMPACT {
            layout::decode(bytes)
        } else {
            Self::decode_fixed(bytes)
        }
    }

    /// Layout 1: `kind, owner option<str8>, u8 count, (currency [3],
    /// available i64, reserved i64) per balance`.
    pub fn encode_fixed(&self, out: &mut Vec<u8>) {
        self.encode_with(out, codec::put_i64);
    }

    pub fn decode_fixed(bytes: &'a [u8]) -> Self {
        let mut r = Reader::new(bytes);
        let account = Self::decode_with(&mut r, |r, what| r.i64().expect(what));
        r.end().expect("no trailing bytes");
        account
    }

    /// The fields in layout 1's order, each amount (credit limit,
    /// available, reserved) written by `put`: layout 1 itself, and the
    /// body of layout 2 (`layout`).
    pub fn encode_with(&self, out: &mut Vec<u8>, put: fn(&mut Vec<u8>, i64)) {
        match self.kind {
            AccountKind::Standard => out.push(0),
            AccountKind::Credit(limit) => {
                out.push(1);
                put(out, limit);
            }
            AccountKind::System => out.push(2),
        }
        match self.owner {
            None => out.push(0),
            Some(owner) => {
                out.push(1);
                codec::put_str8(out, owner).expect("owners are principals of at most 64 bytes");
            }
        }
        out.push(u8::try_from(self.balances.len()).expect("fewer currencies than 256 exist"));
        for b in &self.balances {
            out.extend_from_slice(&b.currency.0);
            put(out, b.available);
            put(out, b.reserved);
        }
    }

    /// What [`Account::encode_with`] wrote, each amount read by `amount`
    /// (given what the amount is, for its panic message).
    pub fn decode_with(
        r: &mut Reader<'a>,
        amount: fn(&mut Reader<'a>, &'static str) -> i64,
    ) -> Self {
        let kind = match r.u8().expect("account kind") {
            0 => AccountKind::Standard,
            1 => AccountKind::Credit(amount(r, "credit limit")),
            2 => AccountKind::System,
            tag => panic!("corrupt account kind {tag}"),
        };
        let owner = match r.u8().expect("owner tag") {
            0 => None,
            _ => Some(r.str8().expect("owner")),
        };
        let count = r.u8().expect("balance count");
        let balances = (0..count)
            .map(|_| Balance {
                currency: Currency(r.array().expect("currency")),
                available: amount(r, "available"),
                reserved: amount(r, "reserved"),
            })
            .collect();
        Account {
            kind,
            owner,
            balances,
        }
    }
}

/// The first outcome of an idempotent command and the body it came with,
/// so a retry gets the same answer and a different body is detected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt<'a> {
    pub outcome: u8,
    pub body: &'a [u8],
}

impl<'a> Receipt<'a> {
    /// `outcome u8`, then the body.
    pub fn decode(bytes: &'a [u8]) -> Self {
        let (&outcome, body) = bytes.split_first().expect("a receipt has an outcome byte");
        Receipt { outcome, body }
    }

    /// The account whose partition keeps the receipt: the one its command
    /// was routed by (a deposit's or a destination step's `to`, the `from`
    /// of the others); `None` for a step that names only a transaction id.
    pub fn account(&self) -> Option<&'a str> {
        let mut r = Reader::new(self.body);
        let kind = r.u8().expect("a receipt body starts with its kind");
        let by_to = match kind {
            2 | 4 | 5 | 11 => false,
            3 | 6 | 12 => true,
            _ => return None,
        };
        r.u8().expect("role");
        r.str8().expect("principal");
        r.i64().expect("amount");
        r.array::<3>().expect("currency");
        let from = r.str8().expect("from");
        let to = r.str8().expect("to");
        Some(if by_to { to } else { from })
    }
}

/// What a retry must repeat exactly: the command kind, its caller, and its
/// transfer, if any.
pub fn body(call: &Call<&str>, out: &mut Vec<u8>) {
    use Command as C;
    let kind = match call.command {
        C::OpenAccount(_) => 1,
        C::Transfer(_) => 2,
        C::Deposit(_) => 3,
        C::Withdraw(_) => 4,
        C::TccReserve(_) => 5,
        C::TccPlacePending(_) => 6,
        C::TccSettle(_) => 7,
        C::TccCredit(_) => 8,
        C::TccRelease(_) => 9,
        C::TccDropPending(_) => 10,
        C::SagaDebit(_) => 11,
        C::SagaCredit(_) => 12,
        C::SagaRefund(_) => 13,
    };
    out.push(kind);
    out.push(call.caller.role.code());
    codec::put_str8(out, call.caller.principal).expect("the call decoded, so it encodes");
    if let C::Transfer(t)
    | C::Deposit(t)
    | C::Withdraw(t)
    | C::TccReserve(t)
    | C::TccPlacePending(t)
    | C::SagaDebit(t)
    | C::SagaCredit(t) = &call.command
    {
        codec::put_i64(out, t.amount);
        out.extend_from_slice(&t.currency.0);
        codec::put_str8(out, t.from).expect("the call decoded, so it encodes");
        codec::put_str8(out, t.to).expect("the call decoded, so it encodes");
    }
}

/// One side's amount of a cross-partition transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leg<'a> {
    pub account: &'a str,
    pub currency: Currency,
    pub amount: i64,
}

/// Where one side of a cross-partition transfer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase<'a> {
    /// A cancel arrived before its try: the try will be refused.
    CancelledEarly,
    Reserved(Leg<'a>),
    Settled(Leg<'a>),
    Released(Leg<'a>),
    Pending(Leg<'a>),
    Credited(Leg<'a>),
    Dropped(Leg<'a>),
    SagaDebited(Leg<'a>),
    SagaRefunded(Leg<'a>),
}

impl<'a> Phase<'a> {
    pub fn leg(&self) -> Option<&Leg<'a>> {
        match self {
            Phase::CancelledEarly => None,
            Phase::Reserved(l)
            | Phase::Settled(l)
            | Phase::Released(l)
            | Phase::Pending(l)
            | Phase::Credited(l)
            | Phase::Dropped(l)
            | Phase::SagaDebited(l)
            | Phase::SagaRefunded(l) => Some(l),
        }
    }

    /// `tag u8`, then for a leg `currency [3], amount i64, account` (the
    /// rest of the value).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let tag = match self {
            Phase::CancelledEarly => 0,
            Phase::Reserved(_) => 1,
            Phase::Settled(_) => 2,
            Phase::Released(_) => 3,
            Phase::Pending(_) => 4,
            Phase::Credited(_) => 5,
            Phase::Dropped(_) => 6,
            Phase::SagaDebited(_) => 7,
            Phase::SagaRefunded(_) => 8,
        };
        out.push(tag);
        if let Some(leg) = self.leg() {
            out.extend_from_slice(&leg.currency.0);
            codec::put_i64(out, leg.amount);
            out.extend_from_slice(leg.account.as_bytes());
        }
    }

    pub fn decode(bytes: &'a [u8]) -> Self {
        let mut r = Reader::new(bytes);
        let tag = r.u8().expect("phase tag");
        if tag == 0 {
            r.end().expect("no trailing bytes");
            return Phase::CancelledEarly;
        }
        let currency = Currency(r.array().expect("currency"));
        let amount = r.i64().expect("amount");
        let rest = r.take(bytes.len() - r.position()).expect("account");
        let account = core::str::from_utf8(rest).expect("corrupt phase: account is not UTF-8");
        let leg = Leg {
            account,
            currency,
            amount,
        };
        match tag {
            1 => Phase::Reserved(leg),
            2 => Phase::Settled(leg),
            3 => Phase::Released(leg),
            4 => Phase::Pending(leg),
            5 => Phase::Credited(leg),
            6 => Phase::Dropped(leg),
            7 => Phase::SagaDebited(leg),
            8 => Phase::SagaRefunded(leg),
            _ => panic!("corrupt phase tag {tag}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smallvec::smallvec;

    #[test]
    fn records_round_trip() {
        let account = Account {
            kind: AccountKind::Credit(500),
            owner: Some("alice"),
            balances: smallvec![Balance {
                currency: Currency(*b"USD"),
                available: -20,
                reserved: 7,
            }],
        };
        let mut bytes = Vec::new();
        account.encode(&mut bytes);
        assert_eq!(Account::decode(&bytes), account);

        let system = Account::new(AccountKind::System, None);
        let mut bytes = Vec::new();
        system.encode(&mut bytes);
        assert_eq!(Account::decode(&bytes), system);

        for phase in [
            Phase::CancelledEarly,
            Phase::SagaDebited(Leg {
                account: "bob",
                currency: Currency(*b"JPY"),
                amount: 9,
            }),
        ] {
            let mut bytes = Vec::new();
            phase.encode(&mut bytes);
            assert_eq!(Phase::decode(&bytes), phase);
        }
    }

    #[test]
    #[should_panic(expected = "account kind")]
    fn a_truncated_record_is_refused() {
        Account::decode_fixed(&[]);
    }
}

/// What a client sent from one account in one currency on one day, under
/// a daily limit (see `limit`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outgoing {
    pub day: u32,
    pub sent: i64,
}

impl Outgoing {
    /// The total after sending `amount` on `day` (a new day starts from
    /// nothing), or why it would pass `limit`.
    pub fn after(self, day: u32, amount: i64, limit: i64) -> Result<Outgoing, Reason> {
        let before = if self.day == day { self.sent } else { 0 };
        match before.checked_add(amount) {
            Some(sent) if sent <= limit => Ok(Outgoing { day, sent }),
            _ => Err(Reason::DailyLimitExceeded),
        }
    }

    /// `day u32, sent i64`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        codec::put_u32(out, self.day);
        codec::put_i64(out, self.sent);
    }

    pub fn decode(bytes: &[u8]) -> Self {
        let mut r = Reader::new(bytes);
        let day = r.u32().expect("outgoing day");
        let sent = r.i64().expect("outgoing total");
        Outgoing { day, sent }
    }
}
