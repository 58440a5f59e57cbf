//! Where the guest's state is read from while a batch is prefetched.

use crate::Result;
use hashbrown::HashMap;
use hashbrown::hash_map::EntryRef;
use wallet_core::codec::ValuesWriter;

/// The guest's committed state, as prefetch reads it. The runtime only
/// reads: a batch's writes come back in its answer, for the caller to
/// commit together with everything else the batch changes.
pub trait StateSource {
    /// Appends the value of each key (absent or present) to `values`, in
    /// order.
    fn read(&mut self, keys: &[&[u8]], values: &mut ValuesWriter) -> Result<()>;
}

/// State in a hash map: for tests, benchmarks and replays. Hashed with
/// foldhash (fast, and seeded per map, so chosen account ids cannot force
/// collisions); a value that changes is rewritten in place, so a batch that
/// moves money between existing accounts allocates only for new keys.
#[derive(Default, Clone, Debug)]
pub struct MemoryState {
    entries: HashMap<Box<[u8]>, Vec<u8>>,
}

impl MemoryState {
    /// One hash per write: replays apply millions.
    pub fn apply<'a>(&mut self, writes: impl IntoIterator<Item = (&'a [u8], Option<&'a [u8]>)>) {
        for (key, value) in writes {
            let Some(value) = value else {
                self.entries.remove(key);
                continue;
            };
            match self.entries.entry_ref(key) {
                EntryRef::Occupied(mut held) => {
                    let held = held.get_mut();
                    held.clear();
                    held.extend_from_slice(value);
                }
                EntryRef::Vacant(vacant) => {
                    vacant.insert(value.to_vec());
                }
            }
        }
    }

    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.entries.get(key).map(Vec::as_slice)
    }

    /// Every record, in key order.
    pub fn records(&self) -> Vec<(&[u8], &[u8])> {
        let mut records: Vec<_> = self
            .entries
            .iter()
            .map(|(key, value)| (&key[..], &value[..]))
            .collect();
        records.sort_unstable_by_key(|(key, _)| *key);
        records
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl StateSource for MemoryState {
    fn read(&mut self, keys: &[&[u8]], values: &mut ValuesWriter) -> Result<()> {
        for key in keys {
            values
                .push(self.get(key))
                .map_err(|e| crate::Error::StateRead(e.to_string()))?;
        }
        Ok(())
    }
}
