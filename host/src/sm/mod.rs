//! The state machine host: runs batches of commands through a versioned,
//! sandboxed WebAssembly component.
//!
//! - `bindings`: the one place that calls `bindgen!`; the WIT types are the
//!   domain types, re-exported here.
//! - `limits`: every sandbox limit (fuel, memory, batch size).
//! - `engine`: wasmtime configured for determinism.
//! - `version`: a component, its hash, and the check of its imports.
//! - `state`: where the guest's state lives, and the batch-scoped overlay.
//! - `runtime`: executing batches on a reused instance.
//! - `release`: the built release the host embeds.

mod bindings;
mod engine;
pub mod limits;
mod release;
mod runtime;
mod state;
mod version;

pub use bindings::{
    AccountKind, BatchHeader, BatchOutput, Command, Event, EventRecord, OpenAccount, Outcome,
    Posting, Reason, Rejection, Transfer, Txid,
};
pub use engine::new_engine;
pub use release::{RELEASE_HASH_HEX, release_bytes};
pub use runtime::{BatchFailure, BatchResult, Runtime};
pub use state::{MemoryState, StateSource, Write};
pub use version::{Version, VersionHash};
