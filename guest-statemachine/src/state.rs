//! The batch's state: every value prefetch named, decoded once, and the
//! writes the batch makes, kept in the order they were first made (never
//! in hash-map order, which would not be the same everywhere).

use crate::keys::{Key, Side, Slot};
use crate::plan::Plan;
use crate::records::{Account, Outgoing, Phase, Receipt};
use alloc::vec::Vec;
use core::cell::Cell;
use core::ops::Range;
use wallet_core::codec;
use wallet_core::{Currency, Txid};

enum Value<'a> {
    Absent,
    Account(Account<'a>),
    Receipt { outcome: u8, body: Body<'a> },
    Phase(Phase<'a>),
    Outgoing(Outgoing),
}

/// A receipt's body: as stored, or made in this batch (in `State::arena`).
enum Body<'a> {
    Stored(&'a [u8]),
    Made(Range<usize>),
}

/// How many of the last keys looked up [`State`] remembers.
const RECENT: usize = 4;

pub struct State<'a> {
    plan: Plan<'a>,
    /// The last keys looked up, and where they are: a rule reads the keys
    /// of its call several times (check, then change), and this spares it
    /// a lookup in the plan's index each time.
    recent: [Cell<Option<(Key<'a>, usize)>>; RECENT],
    /// Where the next key looked up is remembered.
    next_recent: Cell<usize>,
    values: Vec<Value<'a>>,
    dirty: Vec<bool>,
    /// Positions of changed values, in the order first changed.
    written: Vec<usize>,
    /// The bodies of the receipts this batch makes.
    arena: Vec<u8>,
}

impl<'a> State<'a> {
    pub fn new(plan: Plan<'a>, values: &[Option<&'a [u8]>]) -> Self {
        let values: Vec<Value<'a>> = plan
            .keys()
            .iter()
            .zip(values)
            .map(|(key, value)| match (*key, *value) {
                (_, None) => Value::Absent,
                (Key::Account(_), Some(bytes)) => Value::Account(Account::decode(bytes)),
                (Key::Receipt(..), Some(bytes)) => {
                    let receipt = Receipt::decode(bytes);
                    Value::Receipt {
                        outcome: receipt.outcome,
                        body: Body::Stored(receipt.body),
                    }
                }
                (Key::Phase(..), Some(bytes)) => Value::Phase(Phase::decode(bytes)),
                (Key::Outgoing(..), Some(bytes)) => Value::Outgoing(Outgoing::decode(bytes)),
            })
            .collect();
        let count = values.len();
        State {
            plan,
            recent: Default::default(),
            next_recent: Cell::new(0),
            values,
            dirty: alloc::vec![false; count],
            written: Vec::new(),
            arena: Vec::new(),
        }
    }

    /// Where `key`'s value is.
    fn position(&self, key: Key<'a>) -> usize {
        for entry in &self.recent {
            if let Some((known, at)) = entry.get()
                && known == key
            {
                return at;
            }
        }
        let at = self.plan.position(&key);
        let next = self.next_recent.get();
        self.recent[next].set(Some((key, at)));
        self.next_recent.set((next + 1) % RECENT);
        at
    }

    fn touch(&mut self, at: usize) {
        if !self.dirty[at] {
            self.dirty[at] = true;
            self.written.push(at);
        }
    }

    pub fn account(&self, id: &'a str) -> Option<&Account<'a>> {
        match &self.values[self.position(Key::Account(id))] {
            Value::Account(account) => Some(account),
            _ => None,
        }
    }

    /// The account, to change; `None` if it does not exist.
    pub fn account_mut(&mut self, id: &'a str) -> Option<&mut Account<'a>> {
        let at = self.position(Key::Account(id));
        if matches!(self.values[at], Value::Absent) {
            return None;
        }
        self.touch(at);
        match &mut self.values[at] {
            Value::Account(account) => Some(account),
            _ => None,
        }
    }

    pub fn put_account(&mut self, id: &'a str, account: Account<'a>) {
        let at = self.position(Key::Account(id));
        self.values[at] = Value::Account(account);
        self.touch(at);
    }

    /// A receipt's outcome byte and body.
    pub fn receipt(&self, id: Txid, slot: Slot) -> Option<(u8, &[u8])> {
        match &self.values[self.position(Key::Receipt(id, slot))] {
            Value::Receipt { outcome, body } => Some((*outcome, self.body(body))),
            _ => None,
        }
    }

    fn body<'s>(&'s self, body: &'s Body<'a>) -> &'s [u8] {
        match body {
            Body::Stored(bytes) => bytes,
            Body::Made(range) => &self.arena[range.clone()],
        }
    }

    pub fn put_receipt(&mut self, id: Txid, slot: Slot, outcome: u8, body: &[u8]) {
        let at = self.position(Key::Receipt(id, slot));
        let start = self.arena.len();
        self.arena.extend_from_slice(body);
        self.values[at] = Value::Receipt {
            outcome,
            body: Body::Made(start..self.arena.len()),
        };
        self.touch(at);
    }

    pub fn phase(&self, id: Txid, side: Side) -> Option<Phase<'a>> {
        match &self.values[self.position(Key::Phase(id, side))] {
            Value::Phase(phase) => Some(*phase),
            _ => None,
        }
    }

    pub fn put_phase(&mut self, id: Txid, side: Side, phase: Phase<'a>) {
        let at = self.position(Key::Phase(id, side));
        self.values[at] = Value::Phase(phase);
        self.touch(at);
    }

    /// What a client sent from the account in the currency on the day
    /// last recorded (nothing, if never).
    pub fn outgoing(&self, id: &'a str, currency: Currency) -> Outgoing {
        match &self.values[self.position(Key::Outgoing(id, currency))] {
            Value::Outgoing(outgoing) => *outgoing,
            _ => Outgoing::default(),
        }
    }

    pub fn put_outgoing(&mut self, id: &'a str, currency: Currency, outgoing: Outgoing) {
        let at = self.position(Key::Outgoing(id, currency));
        self.values[at] = Value::Outgoing(outgoing);
        self.touch(at);
    }

    /// Appends the writes section (`u32 count`, then each write) to `out`.
    pub fn write_into(&self, out: &mut Vec<u8>) {
        codec::put_u32(out, u32::try_from(self.written.len()).expect("few writes"));
        let mut value = Vec::new();
        for &at in &self.written {
            let start = out.len();
            out.extend_from_slice(&[0; 2]);
            self.plan.keys()[at].encode(out);
            let len = u16::try_from(out.len() - start - 2).expect("keys are short");
            out[start..start + 2].copy_from_slice(&len.to_le_bytes());
            value.clear();
            match &self.values[at] {
                Value::Absent => {
                    out.push(0);
                    continue;
                }
                Value::Account(account) => account.encode(&mut value),
                Value::Receipt { outcome, body } => {
                    value.push(*outcome);
                    value.extend_from_slice(self.body(body));
                }
                Value::Phase(phase) => phase.encode(&mut value),
                Value::Outgoing(outgoing) => outgoing.encode(&mut value),
            }
            out.push(1);
            codec::put_bytes32(out, &value).expect("values are short");
        }
    }
}
