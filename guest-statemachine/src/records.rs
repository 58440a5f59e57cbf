//! The values the guest stores, and their byte encoding. The encoding is the
//! guest's own schema: the host never reads it. A value that does not decode
//! is state this code did not write, a bug: decoding panics, which traps.

use crate::{AccountKind, Outcome, Reason};
use alloc::string::String;
use alloc::vec::Vec;

/// One currency's money on one account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Balance {
    pub currency: [u8; 3],
    pub available: i64,
    pub reserved: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub kind: AccountKind,
    pub owner: Option<String>,
    /// Sorted by currency; an absent currency has nothing available or reserved.
    pub balances: Vec<Balance>,
}

impl Account {
    /// The lowest `available` may go, or `None` when unbounded (system).
    pub fn floor(&self) -> Option<i64> {
        match self.kind {
            AccountKind::Standard => Some(0),
            AccountKind::Credit(limit) => Some(-limit),
            AccountKind::System => None,
        }
    }

    pub fn balance(&self, currency: [u8; 3]) -> Balance {
        match self
            .balances
            .binary_search_by_key(&currency, |b| b.currency)
        {
            Ok(i) => self.balances[i],
            Err(_) => Balance {
                currency,
                available: 0,
                reserved: 0,
            },
        }
    }

    pub fn set_balance(&mut self, balance: Balance) {
        match self
            .balances
            .binary_search_by_key(&balance.currency, |b| b.currency)
        {
            Ok(i) => self.balances[i] = balance,
            Err(i) => self.balances.insert(i, balance),
        }
    }
}

/// The first outcome of an idempotent command and the body it was given, so
/// that a retry gets the same answer and a different body is detected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub outcome: Outcome,
    pub body: Vec<u8>,
}

/// One side's amount of a cross-partition transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leg {
    pub account: String,
    pub currency: [u8; 3],
    pub amount: i64,
}

/// Where one side of a cross-partition transfer stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// A cancel arrived before its try: the try will be refused.
    CancelledEarly,
    Reserved(Leg),
    Settled(Leg),
    Released(Leg),
    Pending(Leg),
    Credited(Leg),
    Dropped(Leg),
    SagaDebited(Leg),
    SagaRefunded(Leg),
}

pub trait Record: Sized {
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(bytes: &[u8]) -> Self;
}

impl Record for Account {
    fn encode(&self, out: &mut Vec<u8>) {
        match self.kind {
            AccountKind::Standard => out.push(0),
            AccountKind::Credit(limit) => {
                out.push(1);
                out.extend_from_slice(&limit.to_le_bytes());
            }
            AccountKind::System => out.push(2),
        }
        put_opt_str(out, self.owner.as_deref());
        let count = u8::try_from(self.balances.len()).expect("fewer currencies than 256 exist");
        out.push(count);
        for b in &self.balances {
            out.extend_from_slice(&b.currency);
            out.extend_from_slice(&b.available.to_le_bytes());
            out.extend_from_slice(&b.reserved.to_le_bytes());
        }
    }

    fn decode(bytes: &[u8]) -> Self {
        let mut r = Reader(bytes);
        let kind = match r.u8() {
            0 => AccountKind::Standard,
            1 => AccountKind::Credit(r.i64()),
            2 => AccountKind::System,
            tag => panic!("corrupt account kind {tag}"),
        };
        let owner = r.opt_str();
        let count = usize::from(r.u8());
        let mut balances = Vec::with_capacity(count);
        for _ in 0..count {
            balances.push(Balance {
                currency: r.array(),
                available: r.i64(),
                reserved: r.i64(),
            });
        }
        r.end();
        Account {
            kind,
            owner,
            balances,
        }
    }
}

impl Record for Receipt {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(match self.outcome {
            Ok(()) => 0,
            Err(reason) => 1 + reason_code(reason),
        });
        out.extend_from_slice(&self.body);
    }

    fn decode(bytes: &[u8]) -> Self {
        let (&tag, body) = bytes.split_first().expect("a receipt has an outcome byte");
        let outcome = match tag {
            0 => Ok(()),
            code => Err(reason_from_code(code - 1)),
        };
        Receipt {
            outcome,
            body: body.to_vec(),
        }
    }
}

impl Record for Phase {
    fn encode(&self, out: &mut Vec<u8>) {
        let (tag, leg) = match self {
            Phase::CancelledEarly => (0, None),
            Phase::Reserved(l) => (1, Some(l)),
            Phase::Settled(l) => (2, Some(l)),
            Phase::Released(l) => (3, Some(l)),
            Phase::Pending(l) => (4, Some(l)),
            Phase::Credited(l) => (5, Some(l)),
            Phase::Dropped(l) => (6, Some(l)),
            Phase::SagaDebited(l) => (7, Some(l)),
            Phase::SagaRefunded(l) => (8, Some(l)),
        };
        out.push(tag);
        if let Some(leg) = leg {
            out.extend_from_slice(&leg.currency);
            out.extend_from_slice(&leg.amount.to_le_bytes());
            out.extend_from_slice(leg.account.as_bytes());
        }
    }

    fn decode(bytes: &[u8]) -> Self {
        let mut r = Reader(bytes);
        let tag = r.u8();
        if tag == 0 {
            r.end();
            return Phase::CancelledEarly;
        }
        let currency = r.array();
        let amount = r.i64();
        let account = r.rest_str();
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

/// Stored reason codes: append only, never renumber.
const REASONS: [Reason; 13] = [
    Reason::AccountNotFound,
    Reason::AccountExists,
    Reason::InvalidAccountId,
    Reason::InvalidAmount,
    Reason::UnknownCurrency,
    Reason::SameAccount,
    Reason::InsufficientFunds,
    Reason::Overflow,
    Reason::NotASystemAccount,
    Reason::IdempotencyConflict,
    Reason::TransferCancelled,
    Reason::TransferConfirmed,
    Reason::TransferNotFound,
];

fn reason_code(reason: Reason) -> u8 {
    let i = REASONS
        .iter()
        .position(|r| *r == reason)
        .expect("every reason has a code");
    u8::try_from(i).expect("fewer than 255 reasons")
}

fn reason_from_code(code: u8) -> Reason {
    *REASONS
        .get(usize::from(code))
        .unwrap_or_else(|| panic!("corrupt reason code {code}"))
}

fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            let len = u8::try_from(s.len()).expect("owners are validated to 64 bytes");
            out.push(1);
            out.push(len);
            out.extend_from_slice(s.as_bytes());
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        assert!(self.0.len() >= n, "corrupt record: truncated");
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        head
    }
    fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }
    fn i64(&mut self) -> i64 {
        i64::from_le_bytes(self.array())
    }
    fn array<const N: usize>(&mut self) -> [u8; N] {
        self.take(N).try_into().expect("take returns N bytes")
    }
    fn str(&mut self, n: usize) -> String {
        String::from(core::str::from_utf8(self.take(n)).expect("corrupt record: not UTF-8"))
    }
    fn opt_str(&mut self) -> Option<String> {
        match self.u8() {
            0 => None,
            _ => {
                let n = usize::from(self.u8());
                Some(self.str(n))
            }
        }
    }
    fn rest_str(&mut self) -> String {
        let n = self.0.len();
        self.str(n)
    }
    fn end(&self) {
        assert!(self.0.is_empty(), "corrupt record: trailing bytes");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<R: Record + PartialEq + core::fmt::Debug>(value: R) {
        let mut bytes = Vec::new();
        value.encode(&mut bytes);
        assert_eq!(R::decode(&bytes), value);
    }

    #[test]
    fn records_round_trip() {
        round_trip(Account {
            kind: AccountKind::Credit(500),
            owner: Some("alice".into()),
            balances: vec![Balance {
                currency: *b"USD",
                available: -20,
                reserved: 7,
            }],
        });
        round_trip(Account {
            kind: AccountKind::System,
            owner: None,
            balances: vec![],
        });
        for reason in REASONS {
            round_trip(Receipt {
                outcome: Err(reason),
                body: vec![1, 2, 3],
            });
        }
        round_trip(Receipt {
            outcome: Ok(()),
            body: vec![],
        });
        round_trip(Phase::CancelledEarly);
        round_trip(Phase::SagaDebited(Leg {
            account: "bob".into(),
            currency: *b"JPY",
            amount: 9,
        }));
    }

    #[test]
    #[should_panic(expected = "truncated")]
    fn a_truncated_record_is_refused() {
        Account::decode(&[1, 0]);
    }
}
