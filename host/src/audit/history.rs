//! Recorded history as the state machine saw it: each command entry of the
//! archive with the header it ran under and the version the log's own
//! deploy and activate entries scheduled for it, and the migrations the
//! state went through before it.

use crate::node::Holdings;
use crate::partition::split;
use crate::raft::{CommandBatch, HomedBatch, Request, SplitEntry, TypeConfig};
use crate::sm::{
    BatchFailure, BatchHeader, Executor, MemoryState, OwnedWrite, Runtime, Schedule, VersionHash,
};
use crate::{Error, Result};
use openraft::{Entry, EntryPayload};
use serde::Serialize;
use std::collections::HashMap;
use wallet_core::{Event, Txid};

/// Follows the schedule through the log, entry by entry.
pub struct History {
    /// The partition, and the accounts it holds: a call it did not hold
    /// the accounts of did not run. A split shrinks it.
    holdings: Holdings,
    /// The partitions split off it so far.
    children: Vec<u32>,
    schedule: Schedule,
    /// The components deployed so far, by hash.
    components: HashMap<VersionHash, Vec<u8>>,
    /// The last batch's time: as in the state machine, time never goes
    /// backwards along the log.
    timestamp_ms: u64,
    /// The index of a migration the starting state went through already.
    migrated: Option<u64>,
    /// Versions switched to since the last batch, in log order.
    switches: Vec<Switch>,
    /// A learner of the group, as the last membership entry left it: a
    /// split is refused while there is one.
    learner: Option<u64>,
}

/// A batch entry, ready to run.
pub struct Batch {
    pub header: BatchHeader,
    pub version: VersionHash,
    pub calls: Vec<u8>,
    /// Set for a split entry, which carries no calls: `History::split`
    /// applies it.
    pub split: Option<SplitEntry>,
    /// The versions the log switched to since the batch before, whose
    /// migrations (for those that have one) ran before this batch, in
    /// order.
    pub switches: Vec<Switch>,
}

/// Where the log switched to a version.
#[derive(Clone, Copy, Debug)]
pub struct Switch {
    pub version: VersionHash,
    /// The first index it runs.
    pub index: u64,
}

/// A partition's first state, as its parent's history made it at a split:
/// an audit of the child starts from it, and first checks the child's
/// first event record (what arrived) against it.
#[derive(Clone, Debug)]
pub struct Birth {
    pub child: u32,
    /// The range it took.
    pub range: crate::node::Range,
    /// The version that ran the split, which the child runs from its
    /// start, and its component.
    pub version: VersionHash,
    pub component: Vec<u8>,
    /// The split's time.
    pub timestamp_ms: u64,
    /// The records it started with.
    pub records: Vec<split::Record>,
    /// What arrived: its first event record's events.
    pub events: Vec<Event<String>>,
}

impl Birth {
    /// The child's history, from its first entry.
    pub fn history(&self) -> History {
        History::resume(
            Holdings::from_range(self.child, self.range),
            Vec::new(),
            Schedule::genesis(self.version),
            [self.component.clone()],
            self.timestamp_ms,
            None,
            // A split with a learner is refused: the child's group starts
            // with its parent's voters alone.
            None,
        )
    }
}

/// A migration a replay ran, as `wallet audit` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Migration {
    pub version: VersionHash,
    /// The index it ran before.
    pub index: u64,
    /// Records it wrote.
    pub writes: usize,
    /// Why it failed, leaving the state as it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

impl History {
    /// From genesis. `genesis` is the component a store written before the
    /// schedule ran from genesis (its log has no deploy entries).
    pub fn new(holdings: Holdings, genesis: Option<Vec<u8>>) -> History {
        let mut history = History {
            holdings,
            children: Vec::new(),
            schedule: Schedule::default(),
            components: HashMap::new(),
            timestamp_ms: 0,
            migrated: None,
            switches: Vec::new(),
            learner: None,
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
    /// own hash, whatever they are stored under), its last batch's time,
    /// the last migration its state went through and a learner its
    /// membership has.
    pub fn resume(
        holdings: Holdings,
        children: Vec<u32>,
        schedule: Schedule,
        components: impl IntoIterator<Item = Vec<u8>>,
        timestamp_ms: u64,
        migrated: Option<u64>,
        learner: Option<u64>,
    ) -> History {
        History {
            holdings,
            children,
            schedule,
            components: components
                .into_iter()
                .map(|bytes| (VersionHash::of(&bytes), bytes))
                .collect(),
            timestamp_ms,
            migrated,
            switches: Vec::new(),
            learner,
        }
    }

    /// Takes the archived entry at `index` (as stored): the batch it
    /// carries, if any, after any version change it makes; of its calls,
    /// those that ran (the partition held their accounts).
    pub fn next(&mut self, index: u64, stored: &[u8]) -> Result<Option<Batch>> {
        let entry: Entry<TypeConfig> = postcard::from_bytes(stored).map_err(|e| {
            Error::StoreFailed(format!("archived entry {index} does not decode: {e}"))
        })?;
        // As the state machine: a switch takes effect before the entry at
        // its index, whatever that entry carries.
        if let Some(hash) = self.schedule.activated_from(index)
            && self.migrated != Some(index)
        {
            self.switches.push(Switch {
                version: hash,
                index,
            });
        }
        let (
            CommandBatch {
                timestamp_ms,
                calls,
            },
            homes,
        ) = match entry.payload {
            EntryPayload::Normal(Request::Split(entry)) => {
                // Refused where no version runs yet: no record.
                let Some(version) = self.schedule.version_at(index) else {
                    return Ok(None);
                };
                return Ok(Some(Batch {
                    header: BatchHeader {
                        log_index: index,
                        timestamp_ms: self.timestamp_ms,
                        partition: self.holdings.partition(),
                    },
                    version,
                    calls: Vec::new(),
                    split: Some(entry),
                    switches: std::mem::take(&mut self.switches),
                }));
            }
            EntryPayload::Normal(Request::Batch(batch)) => (batch, Vec::new()),
            EntryPayload::Normal(Request::Homed(HomedBatch { batch, homes })) => (batch, homes),
            EntryPayload::Normal(Request::Versions(change)) => {
                if let Some(bytes) = change.component() {
                    self.components
                        .insert(VersionHash::of(bytes), bytes.to_vec());
                }
                self.schedule.apply(&change, index);
                return Ok(None);
            }
            EntryPayload::Membership(membership) => {
                self.learner = membership.learner_ids().next();
                return Ok(None);
            }
            // Token changes and blanks make no event record.
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
                partition: self.holdings.partition(),
            },
            version,
            calls: self.holdings.fence(&calls, &homes).calls.into_owned(),
            split: None,
            switches: std::mem::take(&mut self.switches),
        }))
    }

    /// The outcome of `version`'s migration over a state whose every
    /// record, in key order, `records` gives: `None` if the version has no
    /// migration. A failed one leaves the state as it is, as in the state
    /// machine.
    pub fn migration<I, K, V>(
        &self,
        executor: &mut Executor,
        version: VersionHash,
        records: impl FnOnce() -> Result<I>,
    ) -> Result<Option<Result<Vec<OwnedWrite>, BatchFailure>>>
    where
        I: IntoIterator<Item = Result<(K, V)>>,
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let runtime = self.runtime(executor, version)?;
        if !runtime.migrates() {
            return Ok(None);
        }
        crate::sm::migrate(runtime, records()?).map(Some)
    }

    /// Applies the split `batch` carries to `state` as the state machine
    /// did: `None` where it was refused (or named a child split off
    /// already), which left only the position; else the events of the
    /// parent's record and the child's first state, and from here on the
    /// partition holds the lower half.
    pub fn split(
        &mut self,
        executor: &mut Executor,
        batch: &Batch,
        state: &mut MemoryState,
    ) -> Result<Option<(Vec<Event<String>>, Birth)>> {
        let entry = batch.split.as_ref().expect("a split entry");
        let partition = self.holdings.partition();
        let refused = self.children.contains(&entry.child)
            || entry.child == partition
            || self.learner.is_some();
        if refused {
            return Ok(None);
        }
        let index = batch.header.log_index;
        let range = self.holdings.range();
        let runtime = self.runtime(executor, batch.version)?;
        let Ok((lower, upper)) = split::plan(range, &self.schedule, index, runtime) else {
            return Ok(None);
        };
        let records = state.records().into_iter().map(Ok);
        let derived = match split::derive(runtime, records, Vec::new(), upper, Txid(entry.id))? {
            Ok(derived) => derived,
            Err(_) => return Ok(None),
        };
        state.apply(derived.parent_deletes.iter().map(|key| (&key[..], None)));
        self.holdings = Holdings::from_range(partition, lower);
        self.children.push(entry.child);
        let birth = Birth {
            child: entry.child,
            range: upper,
            version: batch.version,
            component: self.components[&batch.version].clone(),
            timestamp_ms: batch.header.timestamp_ms,
            records: derived.child_records,
            events: derived.child_events,
        };
        Ok(Some((derived.parent_events, birth)))
    }

    /// Runs the migrations before `batch` over `state`; what each did.
    pub fn migrate(
        &self,
        executor: &mut Executor,
        batch: &Batch,
        state: &mut MemoryState,
    ) -> Result<Vec<Migration>> {
        let mut migrations = Vec::new();
        for switch in &batch.switches {
            let outcome = self.migration(executor, switch.version, || {
                Ok(state.records().into_iter().map(Ok))
            })?;
            let (writes, failure) = match outcome {
                None => continue,
                Some(Ok(writes)) => (writes, None),
                Some(Err(failure)) => (Vec::new(), Some(failure.to_string())),
            };
            state.apply(writes.iter().map(|(k, v)| (k.as_slice(), v.as_deref())));
            migrations.push(Migration {
                version: switch.version,
                index: switch.index,
                writes: writes.len(),
                failure,
            });
        }
        Ok(migrations)
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
