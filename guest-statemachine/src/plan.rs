//! The keys of a batch, round by round. The first round comes from the
//! calls alone (receipts, accounts, phase records); the second, only when
//! some call reads a phase record, names the accounts those records hold.
//! Prefetch and execute derive the same list from the same inputs, so
//! values can travel as a plain sequence in the order the keys were named.

use crate::keys::{self, Key};
use crate::records::Phase;
use alloc::vec::Vec;
use hashbrown::HashMap;
use hashbrown::hash_map::Entry;
use rustc_hash::FxBuildHasher;
use wallet_core::Call;
use wallet_core::codec::KeysWriter;

pub struct Plan<'a> {
    /// Every key, in the order named, without repeats.
    keys: Vec<Key<'a>>,
    /// Where each key is in `keys`.
    index: HashMap<Key<'a>, usize, FxBuildHasher>,
    /// How many keys the first round named.
    first: usize,
    /// Whether some call reads a phase record, so a second round is due.
    phases: bool,
}

impl<'a> Plan<'a> {
    /// The keys of `calls`: the first round, and the second too when
    /// `values` holds the first round's values.
    pub fn new(calls: &[Call<&'a str>], values: &[Option<&'a [u8]>]) -> Self {
        let mut plan = Plan {
            keys: Vec::with_capacity(calls.len() * 3),
            index: HashMap::with_capacity_and_hasher(calls.len() * 3, FxBuildHasher),
            first: 0,
            phases: false,
        };
        for call in calls {
            keys::of_command(&call.command, |key| plan.add(key));
            plan.phases |= keys::phase(&call.command).is_some();
        }
        plan.first = plan.keys.len();
        if plan.phases && values.len() >= plan.first {
            plan.second_round(calls, values);
        }
        plan
    }

    fn add(&mut self, key: Key<'a>) {
        if let Entry::Vacant(slot) = self.index.entry(key) {
            slot.insert(self.keys.len());
            self.keys.push(key);
        }
    }

    /// The accounts the phase records read in the first round hold.
    fn second_round(&mut self, calls: &[Call<&'a str>], values: &[Option<&'a [u8]>]) {
        for call in calls {
            let Some(key) = keys::phase(&call.command) else {
                continue;
            };
            let at = self.index[&key];
            if let Some(leg) = values[at].map(Phase::decode).as_ref().and_then(Phase::leg) {
                self.add(Key::Account(leg.account));
            }
        }
    }

    pub fn keys(&self) -> &[Key<'a>] {
        &self.keys
    }

    /// Where `key` is among the values; every key a rule reads was named.
    pub fn position(&self, key: &Key) -> usize {
        *self
            .index
            .get(key)
            .expect("prefetch named every key the batch reads")
    }

    /// The prefetch answer once the values of `known` keys were read.
    pub fn next_round(&self, known: usize) -> Vec<u8> {
        let (round, complete) = if known == 0 {
            (0..self.first, !self.phases)
        } else if known == self.first && self.phases {
            (self.first..self.keys.len(), true)
        } else {
            panic!(
                "values of {known} keys, but the rounds end at {} and {}",
                self.first,
                self.keys.len()
            )
        };
        let mut out = KeysWriter::after(&[u8::from(complete)]);
        for key in &self.keys[round] {
            out.push_with(|buf| key.encode(buf))
                .expect("keys are short");
        }
        out.into_bytes()
    }
}
