//! The wallet's runtime library.
//!
//! - [`sm`]: the sandboxed state machine: the wasmtime engine configured for
//!   determinism, the versions of the rules, and batch execution.

pub mod error;
pub mod log;
pub mod sm;

pub use error::{Error, Result};
