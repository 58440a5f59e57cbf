//! Verifying a candidate version over recorded history: every batch runs
//! through the version that ran it and through the candidate, on the same
//! state, and the two answers are compared. The shadow state moves on by
//! the recorded version's writes, so each batch is judged on its own and
//! one difference does not cascade into every batch after it.
//!
//! A candidate may keep state of its own, under keys the recorded versions
//! never touch (a daily limit's running totals, say). Those writes are not
//! differences: in a batch both sides answered alike, they are kept beside
//! the shadow state for the candidate alone to read back in later batches,
//! so its own state accumulates as it would have had it been running. A
//! key the recorded version reads or writes is never the candidate's own:
//! from then on the candidate reads it from the shadow like everything
//! else.
//!
//! A candidate that migrates the state to a layout of its own runs on that
//! layout: the state at the window's start, migrated by the candidate, and
//! from then on every write the recorded versions make, migrated the same
//! way. Its writes are compared with the recorded ones in its layout, so a
//! faithful migration makes no difference, and one that loses or changes
//! what a record means shows up in the outcomes and events that follow.

use super::{Batch, History, Shadow};
use crate::sm::{
    Answer, Executed, Executor, MemoryState, OwnedWrite, StateSource, Verification, Version,
    VersionChange, VersionHash,
};
use crate::{Error, Result};
use hashbrown::{HashMap, HashSet};
use serde::{Deserialize, Serialize};
use wallet_core::codec::ValuesWriter;
use wallet_core::reason::Outcome;

/// The differing batches a report lists; the counts cover all of them.
const DIFFERENCES_SHOWN: usize = 100;

/// How a candidate's answer to a batch differs, the gravest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DifferenceKind {
    /// A command's outcome (accepted or refused, and why), or whether the
    /// batch failed.
    OutcomeChanged,
    /// The same outcomes, other events.
    EventChanged,
    /// The same outcomes and events, other state writes.
    StateChangedOnly,
}

/// One differing batch: what the recorded version and the candidate made
/// where they first differ.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    pub index: u64,
    pub kind: DifferenceKind,
    pub recorded: String,
    pub candidate: String,
}

/// What a verification found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub candidate: VersionHash,
    /// The first log index replayed: 1 from genesis, or the entry after
    /// the snapshot a window starts at.
    #[serde(default = "genesis")]
    pub from: u64,
    /// The last log index replayed.
    pub through: u64,
    pub batches: u64,
    pub identical: u64,
    pub outcome_changed: u64,
    pub event_changed: u64,
    pub state_changed_only: u64,
    /// Writes the candidate made to keys of its own (not differences).
    #[serde(default)]
    pub own_state_writes: u64,
    /// The first differing batches, in log order.
    pub differences: Vec<Difference>,
}

fn genesis() -> u64 {
    1
}

impl Report {
    /// This report and `other`'s, of another partition's history, as one.
    pub fn and(mut self, other: Report) -> Report {
        self.from = self.from.min(other.from);
        self.through = self.through.max(other.through);
        self.batches += other.batches;
        self.identical += other.identical;
        self.outcome_changed += other.outcome_changed;
        self.event_changed += other.event_changed;
        self.state_changed_only += other.state_changed_only;
        self.own_state_writes += other.own_state_writes;
        self.differences.extend(other.differences);
        self.differences.truncate(DIFFERENCES_SHOWN);
        self
    }

    pub fn differing(&self) -> u64 {
        self.outcome_changed + self.event_changed + self.state_changed_only
    }

    /// The entry that records it in the log: with the window's start
    /// when it did not replay from genesis.
    pub fn change(&self) -> VersionChange {
        let hash = self.candidate;
        let verification = Verification {
            through: self.through,
            batches: self.batches,
            differing: self.differing(),
        };
        match self.from {
            1 => VersionChange::Verified { hash, verification },
            from => VersionChange::VerifiedWindow {
                hash,
                from,
                verification,
            },
        }
    }
}

/// Where a verification starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// Every entry of the log.
    #[default]
    Genesis,
    /// The entries after the replica's current snapshot, on its state.
    Snapshot,
}

/// Runs recorded batches through their versions and a candidate.
pub struct Verifier {
    executor: Executor,
    candidate: Version,
    bytes: Vec<u8>,
    state: Shadow,
    /// Whether the candidate has a migration.
    migrates: bool,
    /// For a candidate with a migration, the state in its layout, made at
    /// the first batch; `None` for one that reads the recorded state as it
    /// is.
    migrated: Option<MemoryState>,
    /// The candidate's writes to keys of its own.
    own: MemoryState,
    report: Report,
}

/// The shadow as the recorded version reads it, noting the keys it reads.
struct Recording<'s> {
    shadow: &'s Shadow,
    read: HashSet<Box<[u8]>>,
}

impl StateSource for Recording<'_> {
    fn read(&mut self, keys: &[&[u8]], values: &mut ValuesWriter) -> Result<()> {
        for key in keys {
            self.read.insert((*key).into());
            self.shadow.read(key, |value| push(values, value))??;
        }
        Ok(())
    }
}

/// The state as the candidate reads it: its own keys over the migrated
/// state, or over the shadow.
struct CandidateView<'s> {
    shadow: &'s Shadow,
    migrated: Option<&'s MemoryState>,
    own: &'s MemoryState,
}

impl StateSource for CandidateView<'_> {
    fn read(&mut self, keys: &[&[u8]], values: &mut ValuesWriter) -> Result<()> {
        for key in keys {
            match (self.own.get(key), self.migrated) {
                (Some(value), _) => push(values, Some(value))?,
                (None, Some(migrated)) => push(values, migrated.get(key))?,
                (None, None) => self.shadow.read(key, |value| push(values, value))??,
            }
        }
        Ok(())
    }
}

fn push(values: &mut ValuesWriter, value: Option<&[u8]>) -> Result<()> {
    values
        .push(value)
        .map_err(|e| crate::Error::StateRead(e.to_string()))
}

impl Verifier {
    /// Replays from log index `from`, on `state` (the guest's state before
    /// it: empty at genesis). Refuses a candidate that does not compile or
    /// implements another contract.
    pub fn new(
        engine: &wasmtime::Engine,
        candidate: Vec<u8>,
        from: u64,
        state: Shadow,
    ) -> Result<Verifier> {
        let version = Version::compile(engine, &candidate)?;
        Ok(Verifier {
            executor: Executor::new(engine),
            migrates: version.migrates,
            report: Report {
                candidate: version.hash,
                from,
                through: from - 1,
                batches: 0,
                identical: 0,
                outcome_changed: 0,
                event_changed: 0,
                state_changed_only: 0,
                own_state_writes: 0,
                differences: Vec::new(),
            },
            candidate: version,
            bytes: candidate,
            state,
            migrated: None,
            own: MemoryState::default(),
        })
    }

    /// The state the window starts on, migrated by the candidate: made at
    /// the first batch, so an empty window costs nothing. A candidate
    /// whose migration fails is not verified.
    fn migrate_start(&mut self) -> Result<MemoryState> {
        let (bytes, hash) = (&self.bytes, self.candidate.hash);
        let runtime = self.executor.runtime(hash, || Ok(bytes.clone()))?;
        let records = self.state.records()?;
        let writes = crate::sm::migrate(runtime, records.iter().map(|(k, v)| Ok((k, v))))?
            .map_err(|failure| migration_failed(hash, &failure))?;
        let mut migrated = MemoryState::default();
        migrated.apply(records.iter().map(|(k, v)| (&k[..], Some(&v[..]))));
        migrated.apply(writes.iter().map(|(k, v)| (&k[..], v.as_deref())));
        Ok(migrated)
    }

    /// Runs `batch` both ways and records how the answers compare.
    pub fn batch(&mut self, history: &History, batch: &Batch) -> Result<()> {
        if self.migrates && self.migrated.is_none() {
            self.migrated = Some(self.migrate_start()?);
        }
        for switch in &batch.switches {
            self.switch(history, switch.version)?;
        }
        let mut recording = Recording {
            shadow: &self.state,
            read: HashSet::new(),
        };
        let recorded = history
            .runtime(&mut self.executor, batch.version)?
            .execute(batch.header, &batch.calls, &mut recording)?;
        let mut theirs = recording.read;
        let recorded_writes: Vec<OwnedWrite> = match &recorded {
            Executed::Applied(answer) => answer
                .writes()
                .map(|(key, value)| (key.to_vec(), value.map(<[u8]>::to_vec)))
                .collect(),
            Executed::Failed(_) => Vec::new(),
        };
        let expected = self.in_candidate_layout(&recorded_writes)?;
        theirs.extend(recorded_writes.iter().map(|(key, _)| Box::from(&key[..])));
        theirs.extend(expected.iter().map(|(key, _)| Box::from(&key[..])));
        let taken: Vec<&[u8]> = theirs
            .iter()
            .map(|key| &key[..])
            .filter(|key| self.own.get(key).is_some())
            .collect();
        self.own.apply(taken.into_iter().map(|key| (key, None)));
        let bytes = &self.bytes;
        let mut view = CandidateView {
            shadow: &self.state,
            migrated: self.migrated.as_ref(),
            own: &self.own,
        };
        let candidate = self
            .executor
            .runtime(self.candidate.hash, || Ok(bytes.clone()))?
            .execute(batch.header, &batch.calls, &mut view)?;
        // A batch either side failed keeps nothing of the candidate's.
        let own = match (&recorded, &candidate) {
            (Executed::Applied(_), Executed::Applied(candidate)) => {
                let held = |key: &[u8]| match &self.migrated {
                    Some(migrated) => Ok(migrated.get(key).is_some()),
                    None => self.state.contains(key),
                };
                own_writes(held, &theirs, candidate)?
            }
            _ => Vec::new(),
        };
        let report = &mut self.report;
        report.through = batch.header.log_index;
        report.batches += 1;
        match compare(&recorded, &candidate, &expected, &own) {
            None => {
                report.identical += 1;
                report.own_state_writes += own.len() as u64;
                self.own
                    .apply(own.iter().map(|(k, v)| (k.as_slice(), v.as_deref())));
            }
            Some((kind, recorded, candidate)) => {
                *match kind {
                    DifferenceKind::OutcomeChanged => &mut report.outcome_changed,
                    DifferenceKind::EventChanged => &mut report.event_changed,
                    DifferenceKind::StateChangedOnly => &mut report.state_changed_only,
                } += 1;
                if report.differences.len() < DIFFERENCES_SHOWN {
                    report.differences.push(Difference {
                        index: batch.header.log_index,
                        kind,
                        recorded,
                        candidate,
                    });
                }
            }
        }
        self.apply(&recorded_writes, &expected);
        Ok(())
    }

    /// Moves both states on by a recorded version's writes.
    fn apply(&mut self, recorded: &[OwnedWrite], expected: &[OwnedWrite]) {
        self.state
            .apply(recorded.iter().map(|(k, v)| (&k[..], v.as_deref())));
        if let Some(migrated) = &mut self.migrated {
            migrated.apply(expected.iter().map(|(k, v)| (&k[..], v.as_deref())));
        }
    }

    /// The log switched to `version` here: its migration, if it has one,
    /// runs over the recorded state, as it did when the history was made.
    fn switch(&mut self, history: &History, version: VersionHash) -> Result<()> {
        let state = &self.state;
        let writes = match history.migration(&mut self.executor, version, || {
            Ok(state.records()?.into_iter().map(Ok))
        })? {
            Some(Ok(writes)) => writes,
            // No migration, or one that failed and changed nothing.
            None | Some(Err(_)) => return Ok(()),
        };
        let expected = self.in_candidate_layout(&writes)?;
        // As in a batch: a key a recorded version writes is never the
        // candidate's own.
        self.own
            .apply(writes.iter().map(|(key, _)| (&key[..], None)));
        self.apply(&writes, &expected);
        Ok(())
    }

    /// Recorded writes as the candidate would hold them: migrated by it,
    /// if it has a migration (a deletion stays one).
    fn in_candidate_layout(&mut self, writes: &[OwnedWrite]) -> Result<Vec<OwnedWrite>> {
        if self.migrated.is_none() {
            return Ok(writes.to_vec());
        }
        let bytes = &self.bytes;
        let hash = self.candidate.hash;
        let runtime = self.executor.runtime(hash, || Ok(bytes.clone()))?;
        // A key written twice holds its last write: that is the record.
        let last: HashMap<&[u8], Option<&[u8]>> = writes
            .iter()
            .map(|(key, value)| (&key[..], value.as_deref()))
            .collect();
        let mut records: Vec<(&[u8], &[u8])> = last
            .iter()
            .filter_map(|(key, value)| Some((*key, (*value)?)))
            .collect();
        records.sort_unstable_by_key(|(key, _)| *key);
        let made: HashMap<Vec<u8>, Option<Vec<u8>>> =
            crate::sm::migrate(runtime, records.into_iter().map(Ok))?
                .map_err(|failure| migration_failed(hash, &failure))?
                .into_iter()
                .collect();
        let mut expected: Vec<OwnedWrite> = writes
            .iter()
            .map(|(key, value)| match (value, made.get(key)) {
                (Some(_), Some(rewritten)) => (key.clone(), rewritten.clone()),
                _ => (key.clone(), value.clone()),
            })
            .collect();
        // Records a migration adds beside those it rewrites, in key order.
        let mut added: Vec<OwnedWrite> = made
            .into_iter()
            .filter(|(key, _)| !last.contains_key(&key[..]))
            .collect();
        added.sort_unstable();
        expected.extend(added);
        Ok(expected)
    }

    /// The first log index it replays.
    pub fn from(&self) -> u64 {
        self.report.from
    }

    /// Notes that the log was replayed through `index` (entries that carry
    /// no batch count too).
    pub fn reached(&mut self, index: u64) {
        self.report.through = self.report.through.max(index);
    }

    pub fn finish(self) -> Report {
        self.report
    }
}

fn migration_failed(version: VersionHash, failure: &crate::sm::BatchFailure) -> Error {
    Error::MigrationFailed {
        version,
        failure: failure.to_string(),
    }
}

/// The candidate's writes to keys of its own: absent from the state it
/// reads (`held`), and neither read nor written by the recorded version in
/// this batch.
fn own_writes(
    held: impl Fn(&[u8]) -> Result<bool>,
    theirs: &HashSet<Box<[u8]>>,
    candidate: &Answer,
) -> Result<Vec<OwnedWrite>> {
    let mut own = Vec::new();
    for (key, value) in candidate.writes() {
        if !theirs.contains(key) && !held(key)? {
            own.push((key.to_vec(), value.map(<[u8]>::to_vec)));
        }
    }
    Ok(own)
}

/// The first difference between two answers to one batch: its kind, and
/// what each side made there. `expected` are the recorded writes in the
/// candidate's layout; `own` the candidate's writes to keys of its own,
/// which are not differences.
fn compare(
    recorded: &Executed,
    candidate: &Executed,
    expected: &[OwnedWrite],
    own: &[OwnedWrite],
) -> Option<(DifferenceKind, String, String)> {
    let outcome = DifferenceKind::OutcomeChanged;
    match (recorded, candidate) {
        (Executed::Failed(a), Executed::Failed(b)) if a == b => None,
        (Executed::Failed(a), Executed::Failed(b)) => Some((
            outcome,
            format!("batch failed: {a}"),
            format!("batch failed: {b}"),
        )),
        (Executed::Failed(a), Executed::Applied(_)) => Some((
            outcome,
            format!("batch failed: {a}"),
            "batch applied".into(),
        )),
        (Executed::Applied(_), Executed::Failed(b)) => Some((
            outcome,
            "batch applied".into(),
            format!("batch failed: {b}"),
        )),
        (Executed::Applied(a), Executed::Applied(b)) => compare_answers(a, b, expected, own),
    }
}

fn compare_answers(
    a: &Answer,
    b: &Answer,
    expected: &[OwnedWrite],
    own: &[OwnedWrite],
) -> Option<(DifferenceKind, String, String)> {
    if let Some(i) = (0..a.outcomes().len()).find(|&i| a.outcomes()[i] != b.outcomes()[i]) {
        let show = |o: &Outcome| match o {
            Ok(()) => format!("call {i}: accepted"),
            Err(reason) => format!("call {i}: refused, {}", reason.name()),
        };
        return Some((
            DifferenceKind::OutcomeChanged,
            show(&a.outcomes()[i]),
            show(&b.outcomes()[i]),
        ));
    }
    let (ea, eb) = (events(a), events(b));
    if ea != eb {
        let i = ea.iter().zip(&eb).take_while(|(x, y)| x == y).count();
        let show = |events: &[String]| events.get(i).cloned().unwrap_or_else(|| "no event".into());
        return Some((DifferenceKind::EventChanged, show(&ea), show(&eb)));
    }
    let own: HashSet<&[u8]> = own.iter().map(|(key, _)| key.as_slice()).collect();
    let wa: Vec<_> = expected
        .iter()
        .map(|(key, value)| (&key[..], value.as_deref()))
        .collect();
    let wb: Vec<_> = b.writes().filter(|(key, _)| !own.contains(key)).collect();
    if wa != wb {
        let i = wa.iter().zip(&wb).take_while(|(x, y)| x == y).count();
        let show = |writes: &[(&[u8], Option<&[u8]>)]| {
            writes.get(i).map_or("no write".into(), |(key, value)| {
                let value = value.map_or("deleted".into(), hex::encode);
                format!("{} = {value}", hex::encode(key))
            })
        };
        return Some((DifferenceKind::StateChangedOnly, show(&wa), show(&wb)));
    }
    None
}

/// An answer's events, each shown with the call that made it.
fn events(answer: &Answer) -> Vec<String> {
    answer
        .event_records()
        .map(|record| match record {
            Ok((call, event)) => format!("call {call}: {event:?}"),
            Err(e) => format!("an event that does not decode: {e}"),
        })
        .collect()
}
