use crate::{Error, Result};
use std::collections::HashMap;

/// One state write: set (`Some`) or delete (`None`) a key.
pub type Write = (Vec<u8>, Option<Vec<u8>>);

/// Where the guest's committed state is read from. The runtime only reads:
/// a batch's writes come back to the caller, who commits them together with
/// everything else the batch changes.
pub trait StateSource: Send + Sized + 'static {
    fn get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>>;
}

/// State in a hash map: for tests, benchmarks and replay checks.
#[derive(Default, Clone)]
pub struct MemoryState {
    entries: HashMap<Vec<u8>, Vec<u8>>,
}

impl MemoryState {
    pub fn apply(&mut self, writes: &[Write]) {
        for (key, value) in writes {
            match value {
                Some(value) => self.entries.insert(key.clone(), value.clone()),
                None => self.entries.remove(key),
            };
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl StateSource for MemoryState {
    fn get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        Ok(keys.iter().map(|k| self.entries.get(k).cloned()).collect())
    }
}

/// A batch's view of state: its own writes over the committed source.
pub(crate) struct Overlay {
    written: HashMap<Vec<u8>, Option<Vec<u8>>>,
    writes: Vec<Write>,
    /// The first failure to read the source: not the guest's doing, so it
    /// must fail the call, never become a deterministic outcome.
    pub fault: Option<Error>,
}

impl Overlay {
    pub fn new() -> Self {
        Overlay {
            written: HashMap::new(),
            writes: Vec::new(),
            fault: None,
        }
    }

    pub fn clear(&mut self) {
        self.written.clear();
        self.writes.clear();
        self.fault = None;
    }

    pub fn read(
        &mut self,
        source: &impl StateSource,
        keys: Vec<Vec<u8>>,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        let mut values = vec![None; keys.len()];
        let mut misses = Vec::new();
        let mut miss_at = Vec::new();
        for (i, key) in keys.into_iter().enumerate() {
            match self.written.get(&key) {
                Some(value) => values[i] = value.clone(),
                None => {
                    misses.push(key);
                    miss_at.push(i);
                }
            }
        }
        if !misses.is_empty() {
            let found = source.get_many(&misses)?;
            if found.len() != misses.len() {
                return Err(Error::StateRead("a key went unanswered".into()));
            }
            for (i, value) in miss_at.into_iter().zip(found) {
                values[i] = value;
            }
        }
        Ok(values)
    }

    pub fn write(&mut self, entries: Vec<Write>) {
        for (key, value) in entries {
            self.written.insert(key.clone(), value.clone());
            self.writes.push((key, value));
        }
    }

    pub fn take_writes(&mut self) -> Vec<Write> {
        self.written.clear();
        std::mem::take(&mut self.writes)
    }
}
