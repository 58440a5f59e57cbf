//! The wallet's runtime library.
//!
//! - [`sm`]: the sandboxed state machine: the wasmtime engine configured for
//!   determinism, the versions of the rules, and batch execution.
//! - [`log`]: the append-only segment log (Raft log and event log).
//! - [`store`]: RocksDB state and read models, and the event hash chain.
//! - [`raft`]: openraft wiring, one file per trait.
//! - [`node`]: a partition replica behind the batcher, and `serve`.
//! - [`api`]: the HTTP edge.
//! - [`service`]: the seam between the edge and a node.

pub mod api;
pub mod error;
pub mod log;
pub mod node;
pub mod raft;
pub mod service;
pub mod sm;
pub mod store;

pub use error::{Error, Result};
