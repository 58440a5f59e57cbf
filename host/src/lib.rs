//! The wallet's runtime library.
//!
//! - [`sm`]: the sandboxed state machine: the wasmtime engine configured for
//!   determinism, the versions of the rules, and batch execution.
//! - [`log`]: the append-only segment log (Raft log and event log).
//! - [`store`]: the write side: guest state in RocksDB, the hash-chained
//!   event log, and the rules of their durability.
//! - [`views`]: the read side: read models a projector builds from the
//!   event log.
//! - [`raft`]: openraft wiring, one file per trait.
//! - [`partition`]: one replica of one group: its log, store, read models
//!   and batcher.
//! - [`coordinator`]: cross-partition transfers, by TC/C or saga.
//! - [`cluster`]: members talking to each other: Raft RPCs, forwarded
//!   writes, streamed snapshots, under the cluster secret.
//! - [`node`]: a node (its partition behind the free-space floor), and
//!   `serve`.
//! - [`api`]: the HTTP edge.
//! - [`service`]: the seam between the edge and a node.
//! - [`tokens`]: bearer tokens, in the replicated state.
//! - [`audit`]: replaying a stopped partition's log from genesis.
//! - `rocks`: how both databases open RocksDB.

pub mod api;
pub mod audit;
pub mod backup;
pub mod cluster;
pub mod coordinator;
pub mod error;
pub mod log;
pub mod node;
pub mod partition;
pub mod raft;
pub mod rocks;
pub mod service;
pub mod sm;
pub mod store;
pub mod tokens;
pub mod views;

#[cfg(test)]
mod test_support;

pub use error::{Error, Result};
