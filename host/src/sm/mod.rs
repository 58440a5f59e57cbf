//! The state machine host: runs batches of calls through a versioned,
//! sandboxed WebAssembly component.
//!
//! - `bindings`: the one place that calls `bindgen!`.
//! - `limits`: every sandbox limit (fuel, memory).
//! - `engine`: wasmtime configured for determinism.
//! - `version`: a component, its hash, and the check of its contract.
//! - `state`: where prefetch reads the guest's state from.
//! - `runtime`: prefetch rounds and the execute step on a reused instance.
//! - `schedule`: which version runs which log index (replicated state).
//! - `executor`: each batch through its scheduled version.
//! - `migration`: a version's migration over a whole state, page by page.
//! - `owners`: whose each record of a whole state is, for a split.
//! - `release`: the built release the host embeds.

mod bindings;
mod engine;
mod executor;
pub mod limits;
mod migration;
mod owners;
mod release;
mod runtime;
mod schedule;
mod state;
mod version;

pub use bindings::BatchHeader;
pub use engine::new_engine;
pub use executor::Executor;
pub use migration::{OwnedWrite, migrate};
pub use owners::for_each_owner;
pub use release::{RELEASE_HASH_HEX, release_bytes};
pub use runtime::{Answer, BatchFailure, Executed, Runtime};
pub use schedule::{
    Schedule, Verification, VersionChange, VersionInfo, VersionOutcome, VersionRefused,
    VersionState,
};
pub use state::{MemoryState, StateSource};
pub use version::{Version, VersionHash};
