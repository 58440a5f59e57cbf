//! The state a verification replays on: what the replay wrote since it
//! started, over the state it started from. From genesis that is nothing;
//! from a snapshot it is the snapshot's checkpoint, read in place rather
//! than loaded, so a window over a large state holds in memory only what
//! the window changed.

use crate::Result;
use crate::raft::OwnedDir;
use crate::store::GuestReader;
use hashbrown::HashMap;
use hashbrown::hash_map::EntryRef;
use std::collections::BTreeMap;

#[derive(Default)]
pub struct Shadow {
    base: Option<Base>,
    /// Written values, and `None` for deleted keys (which may still be in
    /// the base).
    changes: HashMap<Box<[u8]>, Option<Vec<u8>>>,
}

/// A snapshot's checkpoint, from a directory of its own that no snapshot
/// prune removes while it is read.
pub struct Base {
    // Closed before its directory is removed: fields drop in order.
    reader: GuestReader,
    _pinned: OwnedDir,
}

impl Base {
    pub fn new(reader: GuestReader, pinned: OwnedDir) -> Base {
        Base {
            reader,
            _pinned: pinned,
        }
    }
}

impl Shadow {
    pub fn over(base: Base) -> Shadow {
        Shadow {
            base: Some(base),
            changes: HashMap::new(),
        }
    }

    /// Calls `f` with the value of `key`.
    pub fn read<R>(&self, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> Result<R> {
        match (self.changes.get(key), &self.base) {
            (Some(changed), _) => Ok(f(changed.as_deref())),
            (None, Some(base)) => base.reader.read(key, f),
            (None, None) => Ok(f(None)),
        }
    }

    /// Every record, in key order: the whole state, in memory, for a
    /// migration to go through.
    pub fn records(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut records = BTreeMap::new();
        if let Some(base) = &self.base {
            for (key, value) in base.reader.records()? {
                records.insert(key.into_vec(), value.into_vec());
            }
        }
        for (key, value) in &self.changes {
            match value {
                Some(value) => records.insert(key.to_vec(), value.clone()),
                None => records.remove(&key[..]),
            };
        }
        Ok(records.into_iter().collect())
    }

    pub fn contains(&self, key: &[u8]) -> Result<bool> {
        self.read(key, |value| value.is_some())
    }

    pub fn apply<'a>(&mut self, writes: impl IntoIterator<Item = (&'a [u8], Option<&'a [u8]>)>) {
        for (key, value) in writes {
            match self.changes.entry_ref(key) {
                EntryRef::Occupied(mut held) => match (held.get_mut(), value) {
                    (Some(held), Some(value)) => {
                        held.clear();
                        held.extend_from_slice(value);
                    }
                    (held, value) => *held = value.map(<[u8]>::to_vec),
                },
                EntryRef::Vacant(vacant) => {
                    vacant.insert(value.map(<[u8]>::to_vec));
                }
            }
        }
    }
}
