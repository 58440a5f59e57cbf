//! Verifying a candidate version over recorded history: every batch runs
//! through the version that ran it and through the candidate, on the same
//! state, and the two answers are compared. The shadow state moves on by
//! the recorded version's writes, so each batch is judged on its own and
//! one difference does not cascade into every batch after it.

use super::{Batch, History};
use crate::Result;
use crate::sm::{Answer, Executed, Executor, MemoryState, Verification, Version, VersionHash};
use serde::{Deserialize, Serialize};
use wallet_core::codec::{self, Reader};
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
    /// The last log index replayed.
    pub through: u64,
    pub batches: u64,
    pub identical: u64,
    pub outcome_changed: u64,
    pub event_changed: u64,
    pub state_changed_only: u64,
    /// The first differing batches, in log order.
    pub differences: Vec<Difference>,
}

impl Report {
    pub fn differing(&self) -> u64 {
        self.outcome_changed + self.event_changed + self.state_changed_only
    }

    /// What the log records of it.
    pub fn verification(&self) -> Verification {
        Verification {
            through: self.through,
            batches: self.batches,
            differing: self.differing(),
        }
    }
}

/// Runs recorded batches through their versions and a candidate.
pub struct Verifier {
    executor: Executor,
    candidate: Version,
    bytes: Vec<u8>,
    state: MemoryState,
    report: Report,
}

impl Verifier {
    /// Refuses a candidate that does not compile or implements another
    /// contract.
    pub fn new(engine: &wasmtime::Engine, candidate: Vec<u8>) -> Result<Verifier> {
        let version = Version::compile(engine, &candidate)?;
        Ok(Verifier {
            executor: Executor::new(engine),
            report: Report {
                candidate: version.hash,
                through: 0,
                batches: 0,
                identical: 0,
                outcome_changed: 0,
                event_changed: 0,
                state_changed_only: 0,
                differences: Vec::new(),
            },
            candidate: version,
            bytes: candidate,
            state: MemoryState::default(),
        })
    }

    /// Runs `batch` both ways and records how the answers compare.
    pub fn batch(&mut self, history: &History, batch: &Batch) -> Result<()> {
        let recorded = history
            .runtime(&mut self.executor, batch.version)?
            .execute(batch.header, &batch.calls, &mut self.state)?;
        let bytes = &self.bytes;
        let candidate = self
            .executor
            .runtime(self.candidate.hash, || Ok(bytes.clone()))?
            .execute(batch.header, &batch.calls, &mut self.state)?;
        let report = &mut self.report;
        report.through = batch.header.log_index;
        report.batches += 1;
        match compare(&recorded, &candidate) {
            None => report.identical += 1,
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
        if let Executed::Applied(answer) = &recorded {
            self.state.apply(answer.writes());
        }
        Ok(())
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

/// The first difference between two answers to one batch: its kind, and
/// what each side made there.
fn compare(recorded: &Executed, candidate: &Executed) -> Option<(DifferenceKind, String, String)> {
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
        (Executed::Applied(a), Executed::Applied(b)) => compare_answers(a, b),
    }
}

fn compare_answers(a: &Answer, b: &Answer) -> Option<(DifferenceKind, String, String)> {
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
    let (wa, wb): (Vec<_>, Vec<_>) = (a.writes().collect(), b.writes().collect());
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
    let bytes = answer.events();
    let offsets = answer.event_offsets();
    (0..offsets.len())
        .map(|i| {
            let start = offsets[i] as usize;
            let end = offsets.get(i + 1).map_or(bytes.len(), |&o| o as usize);
            let mut reader = Reader::new(&bytes[start..end]);
            match codec::event_record(&mut reader, usize::MAX) {
                Ok((call, event)) => format!("call {call}: {event:?}"),
                Err(e) => format!("an event that does not decode: {e}"),
            }
        })
        .collect()
}
