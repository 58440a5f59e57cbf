//! The batch's view of state: every value the batch touches, decoded once,
//! read from the host in bulk before the commands run, written back in one
//! call after the last one. Nothing here iterates a hash map into the output:
//! writes leave in the order they were first made.

use crate::keys;
use crate::kv::Kv;
use crate::records::{Account, Phase, Receipt, Record};
use alloc::vec::Vec;
use hashbrown::HashMap;
use rustc_hash::FxBuildHasher;

struct Entry<V> {
    value: Option<V>,
    dirty: bool,
}

/// One kind of record, keyed by its full key.
struct Table<V> {
    entries: HashMap<Vec<u8>, Entry<V>, FxBuildHasher>,
    /// Keys in the order they were first written.
    written: Vec<Vec<u8>>,
}

impl<V: Record> Table<V> {
    fn new() -> Self {
        Table {
            entries: HashMap::with_hasher(FxBuildHasher),
            written: Vec::new(),
        }
    }

    fn load(&mut self, key: Vec<u8>, bytes: Option<&[u8]>) {
        let value = bytes.map(V::decode);
        self.entries.entry(key).or_insert(Entry {
            value,
            dirty: false,
        });
    }

    fn ensure(&mut self, kv: &mut impl Kv, key: &[u8]) {
        if !self.entries.contains_key(key) {
            let key = key.to_vec();
            let mut values = kv.read(core::slice::from_ref(&key));
            let value = values.pop().expect("the host answers every key");
            self.load(key, value.as_deref());
        }
    }

    fn get(&mut self, kv: &mut impl Kv, key: &[u8]) -> Option<&V> {
        self.ensure(kv, key);
        self.entries.get(key).and_then(|e| e.value.as_ref())
    }

    fn get_mut(&mut self, kv: &mut impl Kv, key: &[u8]) -> Option<&mut V> {
        self.ensure(kv, key);
        let entry = self.entries.get_mut(key).expect("ensure loaded the key");
        if entry.value.is_some() && !entry.dirty {
            entry.dirty = true;
            self.written.push(key.to_vec());
        }
        entry.value.as_mut()
    }

    fn put(&mut self, key: Vec<u8>, value: V) {
        let entry = self.entries.entry(key.clone()).or_insert(Entry {
            value: None,
            dirty: false,
        });
        entry.value = Some(value);
        if !entry.dirty {
            entry.dirty = true;
            self.written.push(key);
        }
    }

    fn drain_writes(&mut self, out: &mut Vec<(Vec<u8>, Option<Vec<u8>>)>) {
        for key in self.written.drain(..) {
            let entry = self.entries.get(&key).expect("written keys are cached");
            let value = entry.value.as_ref().map(|v| {
                let mut bytes = Vec::new();
                v.encode(&mut bytes);
                bytes
            });
            out.push((key, value));
        }
    }
}

pub struct Batch<'k, K: Kv> {
    kv: &'k mut K,
    accounts: Table<Account>,
    receipts: Table<Receipt>,
    phases: Table<Phase>,
}

impl<'k, K: Kv> Batch<'k, K> {
    pub fn new(kv: &'k mut K) -> Self {
        Batch {
            kv,
            accounts: Table::new(),
            receipts: Table::new(),
            phases: Table::new(),
        }
    }

    /// Reads the given keys in one call and caches them. Keys already cached
    /// are not asked again.
    pub fn prefetch(&mut self, mut keys: Vec<Vec<u8>>) {
        keys.retain(|k| !self.is_cached(k));
        keys.sort_unstable();
        keys.dedup();
        if keys.is_empty() {
            return;
        }
        let values = self.kv.read(&keys);
        assert_eq!(values.len(), keys.len(), "the host answers every key");
        for (key, value) in keys.into_iter().zip(values) {
            match key[0] {
                keys::ACCOUNT => self.accounts.load(key, value.as_deref()),
                keys::RECEIPT => self.receipts.load(key, value.as_deref()),
                keys::PHASE => self.phases.load(key, value.as_deref()),
                table => panic!("unknown table {table}"),
            }
        }
    }

    fn is_cached(&self, key: &[u8]) -> bool {
        match key.first() {
            Some(&keys::ACCOUNT) => self.accounts.entries.contains_key(key),
            Some(&keys::RECEIPT) => self.receipts.entries.contains_key(key),
            Some(&keys::PHASE) => self.phases.entries.contains_key(key),
            _ => false,
        }
    }

    pub fn account(&mut self, key: &[u8]) -> Option<&Account> {
        self.accounts.get(self.kv, key)
    }
    pub fn account_mut(&mut self, key: &[u8]) -> Option<&mut Account> {
        self.accounts.get_mut(self.kv, key)
    }
    pub fn put_account(&mut self, key: Vec<u8>, account: Account) {
        self.accounts.put(key, account);
    }

    pub fn receipt(&mut self, key: &[u8]) -> Option<&Receipt> {
        self.receipts.get(self.kv, key)
    }
    pub fn put_receipt(&mut self, key: Vec<u8>, receipt: Receipt) {
        self.receipts.put(key, receipt);
    }

    pub fn phase(&mut self, key: &[u8]) -> Option<&Phase> {
        self.phases.get(self.kv, key)
    }
    pub fn put_phase(&mut self, key: Vec<u8>, phase: Phase) {
        self.phases.put(key, phase);
    }

    /// Writes every changed record back in one call.
    pub fn commit(mut self) {
        let mut writes = Vec::new();
        self.accounts.drain_writes(&mut writes);
        self.receipts.drain_writes(&mut writes);
        self.phases.drain_writes(&mut writes);
        if !writes.is_empty() {
            self.kv.write(&writes);
        }
    }
}
