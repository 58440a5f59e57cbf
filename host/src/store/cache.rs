//! A bounded cache of the guest's committed state, so that a hot account
//! is read from RocksDB once, not on every batch. Written through on every
//! commit, so it never disagrees with the database; only the apply path
//! uses it.

use quick_cache::Weighter;
use quick_cache::unsync::Cache;

/// What an entry costs: its bytes and a fixed overhead.
#[derive(Clone)]
struct Bytes;

const ENTRY_OVERHEAD_BYTES: u64 = 64;

impl Weighter<Box<[u8]>, Box<[u8]>> for Bytes {
    fn weight(&self, key: &Box<[u8]>, value: &Box<[u8]>) -> u64 {
        (key.len() + value.len()) as u64 + ENTRY_OVERHEAD_BYTES
    }
}

pub(super) struct StateCache {
    entries: Cache<Box<[u8]>, Box<[u8]>, Bytes>,
}

impl StateCache {
    /// Forgets everything (the state it mirrored was replaced).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// A cache of at most `bytes` (keys, values and overhead).
    pub fn new(bytes: usize) -> Self {
        let items = bytes / 128;
        StateCache {
            entries: Cache::with_weighter(items.max(16), bytes as u64, Bytes),
        }
    }

    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.entries.get(key).map(|v| &**v)
    }

    pub fn put(&mut self, key: &[u8], value: Option<&[u8]>) {
        match value {
            Some(value) => self.entries.insert(key.into(), value.into()),
            None => {
                self.entries.remove(key);
            }
        }
    }
}
