//! Cross-partition transfers: the coordinator that runs them, as the
//! source partition's leader, by TC/C or by saga.
//!
//! - `plan`: its decisions, apart from the network.
//! - `journal`: the transfers in flight, in the source's replicated state.
//! - `driver`: runs a transfer's steps through the partitions' leaders,
//!   retrying with backoff, and resumes what a previous leader left.

mod driver;
pub mod journal;
pub mod plan;
#[cfg(test)]
mod tests;

pub use driver::{Coordinator, Partitions, Stats};
pub use journal::InFlight;
pub use plan::Mode;
