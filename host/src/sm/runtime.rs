use super::bindings::{Statemachine, StatemachinePre, wallet};
use super::limits;
use super::state::{Overlay, StateSource, Write};
use super::{BatchHeader, BatchOutput, Command, Version};
use crate::{Error, Result};
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder, Trap};

/// What a batch did. A failed batch leaves no writes and no events, and
/// fails the same way on every replica, so every command in it gets the same
/// failure.
#[derive(Debug)]
pub enum BatchResult {
    Applied {
        output: BatchOutput,
        /// The guest's state changes, for the caller to commit.
        writes: Vec<Write>,
        fuel_used: u64,
    },
    Failed(BatchFailure),
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum BatchFailure {
    /// The batch used up its fuel (`limits::fuel_for`).
    OutOfFuel,
    /// The guest trapped: a bug in the rules.
    Trap(String),
}

/// What the guest's imports see while a batch runs.
struct Host<S> {
    source: S,
    overlay: Overlay,
    limits: StoreLimits,
}

impl<S: StateSource> wallet::statemachine::state::Host for Host<S> {
    fn read(&mut self, keys: Vec<Vec<u8>>) -> wasmtime::Result<Vec<Option<Vec<u8>>>> {
        match self.overlay.read(&self.source, keys) {
            Ok(values) => Ok(values),
            Err(error) => {
                self.overlay.fault = Some(error);
                Err(wasmtime::Error::msg("state read failed"))
            }
        }
    }

    fn write(&mut self, entries: Vec<Write>) -> wasmtime::Result<()> {
        self.overlay.write(entries);
        Ok(())
    }
}

impl<S: StateSource> wallet::statemachine::types::Host for Host<S> {}

/// A live instance of the version.
struct Live<S: StateSource> {
    store: Store<Host<S>>,
    bindings: Statemachine,
}

/// Runs batches through one state-machine version. The instance is reused
/// from batch to batch; after a trap it is replaced, since a trapped
/// instance may not be entered again.
pub struct Runtime<S: StateSource> {
    engine: Engine,
    version: Version,
    pre: StatemachinePre<Host<S>>,
    /// `None` only if replacing a trapped instance failed.
    live: Option<Live<S>>,
}

impl<S: StateSource> Runtime<S> {
    pub fn new(engine: &Engine, version: Version, source: S) -> Result<Self> {
        let mut linker = Linker::new(engine);
        Statemachine::add_to_linker::<_, HasSelf<_>>(&mut linker, |host| host)
            .map_err(Error::Component)?;
        let pre = linker
            .instantiate_pre(&version.component)
            .and_then(StatemachinePre::new)
            .map_err(Error::Component)?;
        let live = instantiate(engine, &pre, source)?;
        Ok(Runtime {
            engine: engine.clone(),
            version,
            pre,
            live: Some(live),
        })
    }

    pub fn version(&self) -> &Version {
        &self.version
    }

    /// The state source, unless the instance was lost.
    pub fn source(&self) -> Option<&S> {
        self.live.as_ref().map(|live| &live.store.data().source)
    }

    pub fn source_mut(&mut self) -> Option<&mut S> {
        self.live
            .as_mut()
            .map(|live| &mut live.store.data_mut().source)
    }

    /// Executes one batch. `Err` is the host's failure (a state read), after
    /// which the batch must be retried, never recorded.
    pub fn execute(&mut self, header: BatchHeader, commands: &[Command]) -> Result<BatchResult> {
        if commands.len() > limits::BATCH_COMMANDS_MAX {
            return Err(Error::BatchTooLarge {
                commands: commands.len(),
                limit: limits::BATCH_COMMANDS_MAX,
            });
        }
        let fuel = limits::fuel_for(commands.len());
        let live = self.live.as_mut().ok_or(Error::InstanceLost)?;
        live.store.data_mut().overlay.clear();
        live.store.set_fuel(fuel).map_err(Error::Engine)?;
        let called = live.bindings.wallet_statemachine_machine().call_execute(
            &mut live.store,
            header,
            commands,
        );
        let fuel_used = fuel - live.store.get_fuel().map_err(Error::Engine)?;
        match called {
            Ok(output) => {
                assert_eq!(
                    output.outcomes.len(),
                    commands.len(),
                    "one outcome per command"
                );
                let writes = live.store.data_mut().overlay.take_writes();
                Ok(BatchResult::Applied {
                    output,
                    writes,
                    fuel_used,
                })
            }
            Err(error) => self.recover(error),
        }
    }

    /// Replaces the trapped instance and classifies the failure.
    fn recover(&mut self, error: wasmtime::Error) -> Result<BatchResult> {
        let old = self.live.take().ok_or(Error::InstanceLost)?;
        let mut host = old.store.into_data();
        let fault = host.overlay.fault.take();
        self.live = Some(instantiate(&self.engine, &self.pre, host.source)?);
        if let Some(fault) = fault {
            return Err(fault);
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => Ok(BatchResult::Failed(BatchFailure::OutOfFuel)),
            Some(trap) => Ok(BatchResult::Failed(BatchFailure::Trap(trap.to_string()))),
            None => Err(Error::Engine(error)),
        }
    }
}

fn instantiate<S: StateSource>(
    engine: &Engine,
    pre: &StatemachinePre<Host<S>>,
    source: S,
) -> Result<Live<S>> {
    let limits = StoreLimitsBuilder::new()
        .memory_size(limits::MEMORY_BYTES_MAX)
        .instances(limits::INSTANCES_MAX)
        .tables(limits::TABLES_MAX)
        .memories(limits::MEMORIES_MAX)
        .build();
    let host = Host {
        source,
        overlay: Overlay::new(),
        limits,
    };
    let mut store = Store::new(engine, host);
    store.limiter(|host| &mut host.limits);
    store
        .set_fuel(limits::FUEL_PER_BATCH)
        .map_err(Error::Engine)?;
    let bindings = pre.instantiate(&mut store).map_err(Error::Component)?;
    Ok(Live { store, bindings })
}
