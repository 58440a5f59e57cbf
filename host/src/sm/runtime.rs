//! Running batches through one state-machine version: prefetch rounds,
//! the host's reads, then the execute step, on an instance reused from
//! batch to batch; and a page of its migration, if it has one.

use super::Version;
use super::bindings::{BatchHeader, machine, migration, splitting};
use super::limits;
use super::state::StateSource;
use crate::{Error, Result};
use std::ops::Range;
use wallet_core::codec::{self, ValuesWriter};
use wallet_core::limits::{BATCH_KEYS_MAX, KEY_BYTES_MAX};
use wallet_core::reason::Outcome;
use wasmtime::component::{InstancePre, Linker};
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder, Trap};

/// What became of a batch. A failed batch leaves no writes and no events,
/// and fails the same way on every replica, so every command in it gets
/// the same failure.
#[derive(Debug)]
pub enum Executed {
    Applied(Answer),
    Failed(BatchFailure),
}

/// Why a version failed a batch: a bug in that version, the same on every
/// replica and in every replay.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum BatchFailure {
    /// A call into the guest used up its fuel (`limits::fuel_for`).
    OutOfFuel,
    /// The guest trapped.
    Trap(String),
    /// The guest answered with bytes that break the contract: not one
    /// outcome per call, an event naming no call, a key over its limit,
    /// prefetch rounds that never end.
    MalformedOutput(String),
    /// The batch itself does not decode, or is over the batch limit: no
    /// version can run it, on any replica.
    MalformedBatch(String),
}

impl std::fmt::Display for BatchFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchFailure::OutOfFuel => f.write_str("out of fuel"),
            BatchFailure::Trap(trap) => write!(f, "trap: {trap}"),
            BatchFailure::MalformedOutput(why) => write!(f, "malformed output: {why}"),
            BatchFailure::MalformedBatch(why) => write!(f, "malformed batch: {why}"),
        }
    }
}

/// A version's answer to a batch, checked against the contract: one
/// outcome per call, the events (still encoded, with where each starts),
/// and the writes.
#[derive(Debug)]
pub struct Answer {
    bytes: Vec<u8>,
    outcomes: Vec<Outcome>,
    events: Range<usize>,
    event_offsets: Vec<u32>,
    writes: Vec<(Range<usize>, Option<Range<usize>>)>,
}

impl Answer {
    fn parse(bytes: Vec<u8>, calls: usize) -> Result<Answer, BatchFailure> {
        let output = codec::output(&bytes, calls)
            .map_err(|e| BatchFailure::MalformedOutput(format!("execute answer: {e}")))?;
        let range = |part: &[u8]| {
            let start = part.as_ptr() as usize - bytes.as_ptr() as usize;
            start..start + part.len()
        };
        let writes = output
            .writes
            .iter()
            .map(|(key, value)| (range(key), value.map(range)))
            .collect();
        let (events, outcomes, event_offsets) =
            (range(output.events), output.outcomes, output.event_offsets);
        Ok(Answer {
            bytes,
            outcomes,
            events,
            event_offsets,
            writes,
        })
    }

    pub fn outcomes(&self) -> &[Outcome] {
        &self.outcomes
    }

    /// The events section: each event is `command u32` and an encoded
    /// event (`wallet_core::codec::event_record`).
    pub fn events(&self) -> &[u8] {
        &self.bytes[self.events.clone()]
    }

    /// Where each event starts in [`Answer::events`].
    pub fn event_offsets(&self) -> &[u32] {
        &self.event_offsets
    }

    /// Each event, decoded, with the index of the call that made it.
    pub fn event_records(
        &self,
    ) -> impl Iterator<Item = codec::DecodeResult<(u32, wallet_core::Event<&str>)>> {
        let bytes = self.events();
        let offsets = &self.event_offsets;
        offsets.iter().enumerate().map(move |(i, &start)| {
            let end = offsets.get(i + 1).map_or(bytes.len(), |&o| o as usize);
            let mut reader = codec::Reader::new(&bytes[start as usize..end]);
            codec::event_record(&mut reader, self.outcomes.len())
        })
    }

    /// The state writes, in the order the guest made them.
    pub fn writes(&self) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
        self.writes.iter().map(|(key, value)| {
            let value = value.as_ref().map(|v| &self.bytes[v.clone()]);
            (&self.bytes[key.clone()], value)
        })
    }
}

/// What the store of an instance holds: only its limits, since the guest
/// imports nothing.
struct Host {
    limits: StoreLimits,
}

struct Live {
    store: Store<Host>,
    machine: machine::Guest,
    migration: Option<migration::Guest>,
    splitting: Option<splitting::Guest>,
}

/// Where an instance's exports are.
struct Exports {
    machine: machine::GuestIndices,
    migration: Option<migration::GuestIndices>,
    splitting: Option<splitting::GuestIndices>,
}

/// Runs batches through one state-machine version. The instance is reused
/// from batch to batch; after a trap it is replaced, since a trapped
/// instance may not be entered again.
pub struct Runtime {
    engine: Engine,
    version: Version,
    pre: InstancePre<Host>,
    exports: Exports,
    /// `None` only if replacing a trapped instance failed.
    live: Option<Live>,
}

impl Runtime {
    pub fn new(engine: &Engine, version: Version) -> Result<Self> {
        let linker = Linker::new(engine);
        let pre = linker
            .instantiate_pre(&version.component)
            .map_err(Error::Component)?;
        // A migration export this host cannot bind refuses the version,
        // rather than letting it run without migrating.
        let migration = version
            .migrates
            .then(|| migration::GuestIndices::new(&pre))
            .transpose()
            .map_err(Error::Component)?;
        let splitting = version
            .splits
            .then(|| splitting::GuestIndices::new(&pre))
            .transpose()
            .map_err(Error::Component)?;
        let exports = Exports {
            machine: machine::GuestIndices::new(&pre).map_err(Error::Component)?,
            migration,
            splitting,
        };
        let live = instantiate(engine, &pre, &exports)?;
        Ok(Runtime {
            engine: engine.clone(),
            version,
            pre,
            exports,
            live: Some(live),
        })
    }

    pub fn version(&self) -> &Version {
        &self.version
    }

    /// Whether the version brings inherited state to its own layout when
    /// it is activated (`wit/wallet.wit`, `migration`).
    pub fn migrates(&self) -> bool {
        self.exports.migration.is_some()
    }

    /// Runs the migration over one page of `records` records (a writes
    /// section, `wallet_core::codec`), and answers with its writes section.
    pub fn migrate_page(
        &mut self,
        page: &[u8],
        records: usize,
    ) -> Result<Result<Vec<u8>, BatchFailure>> {
        self.call(limits::fuel_for(records), |live| {
            let migration = live.migration.as_ref().expect("only a migrating version");
            migration.call_migrate(&mut live.store, page)
        })
    }

    /// Whether the version says whose each record is, so that a partition
    /// running it can split (`wit/wallet.wit`, `splitting`).
    pub fn splits(&self) -> bool {
        self.exports.splitting.is_some()
    }

    /// Asks whose each record of one page of `records` records is (laid
    /// out as a migration's page), and answers with the owners answer.
    pub fn owners_page(
        &mut self,
        page: &[u8],
        records: usize,
    ) -> Result<Result<Vec<u8>, BatchFailure>> {
        self.call(limits::fuel_for(records), |live| {
            let splitting = live.splitting.as_ref().expect("only a splitting version");
            splitting.call_owners(&mut live.store, page)
        })
    }

    /// Executes one batch of encoded calls against `state`. `Err` is the
    /// host's failure (a state read, the engine), after which the batch
    /// must be retried, never recorded.
    pub fn execute(
        &mut self,
        header: BatchHeader,
        calls: &[u8],
        state: &mut impl StateSource,
    ) -> Result<Executed> {
        let count = match codec::check_calls(calls) {
            Ok(count) if count <= limits::BATCH_COMMANDS_MAX => count,
            Ok(count) => {
                let why = format!(
                    "{count} calls, over the limit of {}",
                    limits::BATCH_COMMANDS_MAX
                );
                return Ok(Executed::Failed(BatchFailure::MalformedBatch(why)));
            }
            Err(e) => {
                return Ok(Executed::Failed(BatchFailure::MalformedBatch(
                    e.to_string(),
                )));
            }
        };
        let fuel = limits::fuel_for(count);
        let mut values = ValuesWriter::default();
        for _ in 0..limits::PREFETCH_ROUNDS_MAX {
            let answer = match self.call(fuel, |live| {
                live.machine
                    .call_prefetch(&mut live.store, header, calls, values.as_bytes())
            })? {
                Ok(answer) => answer,
                Err(failure) => return Ok(Executed::Failed(failure)),
            };
            let prefetch = match check_prefetch(&answer, values.len()) {
                Ok(prefetch) => prefetch,
                Err(failure) => return Ok(Executed::Failed(failure)),
            };
            state.read(&prefetch.keys, &mut values)?;
            if prefetch.complete {
                return self.execute_step(header, calls, count, fuel, &mut values);
            }
        }
        let why = format!(
            "prefetch did not complete in {} rounds",
            limits::PREFETCH_ROUNDS_MAX
        );
        Ok(Executed::Failed(BatchFailure::MalformedOutput(why)))
    }

    fn execute_step(
        &mut self,
        header: BatchHeader,
        calls: &[u8],
        count: usize,
        fuel: u64,
        values: &mut ValuesWriter,
    ) -> Result<Executed> {
        let answer = self.call(fuel, |live| {
            live.machine
                .call_execute(&mut live.store, header, calls, values.as_bytes())
        })?;
        Ok(match answer.and_then(|bytes| Answer::parse(bytes, count)) {
            Ok(answer) => Executed::Applied(answer),
            Err(failure) => Executed::Failed(failure),
        })
    }

    /// One call into the guest with `fuel`; a trap or running out of fuel
    /// is the version's failure, anything else the host's error.
    fn call<T>(
        &mut self,
        fuel: u64,
        f: impl FnOnce(&mut Live) -> wasmtime::Result<T>,
    ) -> Result<Result<T, BatchFailure>> {
        let live = self.live.as_mut().ok_or(Error::InstanceLost)?;
        live.store.set_fuel(fuel).map_err(Error::Engine)?;
        match f(live) {
            Ok(value) => Ok(Ok(value)),
            Err(error) => self.recover(error).map(Err),
        }
    }

    /// Replaces the trapped instance and classifies the failure.
    fn recover(&mut self, error: wasmtime::Error) -> Result<BatchFailure> {
        self.live = None;
        self.live = Some(instantiate(&self.engine, &self.pre, &self.exports)?);
        match error.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => Ok(BatchFailure::OutOfFuel),
            Some(trap) => Ok(BatchFailure::Trap(trap.to_string())),
            None => Err(Error::Engine(error)),
        }
    }
}

/// A prefetch answer within the contract's limits.
fn check_prefetch(answer: &[u8], known: usize) -> Result<codec::Prefetch<'_>, BatchFailure> {
    let malformed = |why: String| BatchFailure::MalformedOutput(format!("prefetch answer: {why}"));
    let prefetch = codec::prefetch(answer).map_err(|e| malformed(e.to_string()))?;
    if known + prefetch.keys.len() > BATCH_KEYS_MAX {
        return Err(malformed(format!(
            "more than {BATCH_KEYS_MAX} keys in one batch"
        )));
    }
    if let Some(key) = prefetch
        .keys
        .iter()
        .find(|k| k.is_empty() || k.len() > KEY_BYTES_MAX)
    {
        return Err(malformed(format!(
            "a key of {} bytes (1 to {KEY_BYTES_MAX} allowed)",
            key.len()
        )));
    }
    Ok(prefetch)
}

fn instantiate(engine: &Engine, pre: &InstancePre<Host>, exports: &Exports) -> Result<Live> {
    let limits = StoreLimitsBuilder::new()
        .memory_size(limits::MEMORY_BYTES_MAX)
        .instances(limits::INSTANCES_MAX)
        .tables(limits::TABLES_MAX)
        .memories(limits::MEMORIES_MAX)
        .build();
    let mut store = Store::new(engine, Host { limits });
    store.limiter(|host| &mut host.limits);
    store
        .set_fuel(limits::FUEL_PER_CALL)
        .map_err(Error::Engine)?;
    let instance = pre.instantiate(&mut store).map_err(Error::Component)?;
    let machine = exports
        .machine
        .load(&mut store, &instance)
        .map_err(Error::Component)?;
    let migration = exports
        .migration
        .as_ref()
        .map(|migration| migration.load(&mut store, &instance))
        .transpose()
        .map_err(Error::Component)?;
    let splitting = exports
        .splitting
        .as_ref()
        .map(|splitting| splitting.load(&mut store, &instance))
        .transpose()
        .map_err(Error::Component)?;
    Ok(Live {
        store,
        machine,
        migration,
        splitting,
    })
}
