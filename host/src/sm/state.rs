//! Where the guest's state is read from while a batch is prefetched.

use crate::Result;
use std::collections::HashMap;
use wallet_core::codec::ValuesWriter;

/// The guest's committed state, as prefetch reads it. The runtime only
/// reads: a batch's writes come back in its answer, for the caller to
/// commit together with everything else the batch changes.
pub trait StateSource {
    /// Appends the value of each key (absent or present) to `values`, in
    /// order.
    fn read(&mut self, keys: &[&[u8]], values: &mut ValuesWriter) -> Result<()>;
}

/// State in a hash map: for tests, benchmarks and replays.
#[derive(Default, Clone, Debug)]
pub struct MemoryState {
    entries: HashMap<Vec<u8>, Vec<u8>>,
}

impl MemoryState {
    pub fn apply<'a>(&mut self, writes: impl IntoIterator<Item = (&'a [u8], Option<&'a [u8]>)>) {
        for (key, value) in writes {
            match value {
                Some(value) => self.entries.insert(key.to_vec(), value.to_vec()),
                None => self.entries.remove(key),
            };
        }
    }

    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.entries.get(key).map(Vec::as_slice)
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
