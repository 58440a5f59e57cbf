//! Runs each batch through the version the schedule names for it, keeping
//! the few versions in use compiled and instantiated.

use super::{Runtime, Version, VersionHash};
use crate::{Error, Result};
use wasmtime::Engine;

/// Instantiated versions kept: the one running, the one before a switch,
/// and one being verified.
const RUNTIMES_KEPT: usize = 3;

pub struct Executor {
    engine: Engine,
    /// Most recently used last.
    runtimes: Vec<Runtime>,
}

impl Executor {
    pub fn new(engine: &Engine) -> Self {
        Executor {
            engine: engine.clone(),
            runtimes: Vec::new(),
        }
    }

    /// The runtime of `hash`, made from `bytes()` (compiled through the
    /// engine's cache) if it is not at hand.
    pub fn runtime(
        &mut self,
        hash: VersionHash,
        bytes: impl FnOnce() -> Result<Vec<u8>>,
    ) -> Result<&mut Runtime> {
        match self.runtimes.iter().position(|r| r.version().hash == hash) {
            Some(at) => {
                let runtime = self.runtimes.remove(at);
                self.runtimes.push(runtime);
            }
            None => {
                let bytes = bytes()?;
                let version = Version::compile(&self.engine, &bytes)?;
                if version.hash != hash {
                    return Err(Error::StoreFailed(format!(
                        "the bytes stored for version {hash} hash to {}",
                        version.hash
                    )));
                }
                let runtime = Runtime::new(&self.engine, version)?;
                if self.runtimes.len() == RUNTIMES_KEPT {
                    self.runtimes.remove(0);
                }
                self.runtimes.push(runtime);
            }
        }
        Ok(self
            .runtimes
            .last_mut()
            .expect("a runtime was just placed last"))
    }
}
