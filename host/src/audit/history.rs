//! Recorded history as the state machine saw it: each command entry of the
//! archive with the header it ran under and the version the log's own
//! deploy and activate entries scheduled for it.

use crate::raft::{CommandBatch, Request, TypeConfig};
use crate::sm::{BatchHeader, Executor, Runtime, Schedule, VersionHash};
use crate::{Error, Result};
use openraft::{Entry, EntryPayload};
use std::collections::HashMap;

/// Follows the schedule through the log, entry by entry.
pub struct History {
    partition: u32,
    schedule: Schedule,
    /// The components deployed so far, by hash.
    components: HashMap<VersionHash, Vec<u8>>,
    /// The last batch's time: as in the state machine, time never goes
    /// backwards along the log.
    timestamp_ms: u64,
}

/// A batch entry, ready to run.
pub struct Batch {
    pub header: BatchHeader,
    pub version: VersionHash,
    pub calls: Vec<u8>,
}

impl History {
    /// From genesis. `genesis` is the component a store written before the
    /// schedule ran from genesis (its log has no deploy entries).
    pub fn new(partition: u32, genesis: Option<Vec<u8>>) -> History {
        let mut history = History {
            partition,
            schedule: Schedule::default(),
            components: HashMap::new(),
            timestamp_ms: 0,
        };
        if let Some(bytes) = genesis {
            let hash = VersionHash::of(&bytes);
            history.schedule = Schedule::genesis(hash);
            history.components.insert(hash, bytes);
        }
        history
    }

    /// From a snapshot's checkpoint, for the entries after it: the
    /// schedule it holds, the components deployed by then (named by their
    /// own hash, whatever they are stored under) and its last batch's time.
    pub fn resume(
        partition: u32,
        schedule: Schedule,
        components: impl IntoIterator<Item = Vec<u8>>,
        timestamp_ms: u64,
    ) -> History {
        History {
            partition,
            schedule,
            components: components
                .into_iter()
                .map(|bytes| (VersionHash::of(&bytes), bytes))
                .collect(),
            timestamp_ms,
        }
    }

    /// Takes the archived entry at `index` (as stored): the batch it
    /// carries, if any, after any version change it makes.
    pub fn next(&mut self, index: u64, stored: &[u8]) -> Result<Option<Batch>> {
        let entry: Entry<TypeConfig> = postcard::from_bytes(stored).map_err(|e| {
            Error::StoreFailed(format!("archived entry {index} does not decode: {e}"))
        })?;
        let CommandBatch {
            timestamp_ms,
            calls,
        } = match entry.payload {
            EntryPayload::Normal(Request::Batch(batch)) => batch,
            EntryPayload::Normal(Request::Versions(change)) => {
                if let Some(bytes) = change.component() {
                    self.components
                        .insert(VersionHash::of(bytes), bytes.to_vec());
                }
                self.schedule.apply(&change, index);
                return Ok(None);
            }
            // Token changes, blanks and memberships make no event record.
            _ => return Ok(None),
        };
        self.timestamp_ms = self.timestamp_ms.max(timestamp_ms);
        let version = self
            .schedule
            .version_at(index)
            .ok_or(Error::NoActiveVersion(index))?;
        Ok(Some(Batch {
            header: BatchHeader {
                log_index: index,
                timestamp_ms: self.timestamp_ms,
                partition: self.partition,
            },
            version,
            calls,
        }))
    }

    /// The runtime of `version` from `executor`, made from the component
    /// the log deployed.
    pub fn runtime<'e>(
        &self,
        executor: &'e mut Executor,
        version: VersionHash,
    ) -> Result<&'e mut Runtime> {
        executor.runtime(version, || {
            self.components
                .get(&version)
                .cloned()
                .ok_or(Error::UnknownVersion(version))
        })
    }
}
