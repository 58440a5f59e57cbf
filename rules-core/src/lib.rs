//! What the wallet's edge and its rules must agree on, defined once: both
//! the HTTP edge (in the host) and the WebAssembly guest compile this crate,
//! so a request the edge accepts is judged by the rules with the very same
//! definitions, and neither can drift from the other.
//!
//! - [`account`]: account ids and the system accounts.
//! - [`principal`]: who calls (the principal a token names, and its role).
//! - [`currency`]: the ISO 4217 codes accepted, with their minor units.
//! - [`amount`]: the range of amounts and credit limits.
//! - [`limits`]: batch and encoding bounds.
//! - [`reason`]: why a command is refused, as stable codes.
//! - [`command`], [`event`]: what goes into the state machine, and what
//!   comes out.
//! - [`codec`]: their byte layout across the sandbox boundary and in the
//!   event log: part of the `wallet:statemachine` contract.
#![no_std]

extern crate alloc;

pub mod account;
pub mod amount;
pub mod codec;
pub mod command;
pub mod currency;
pub mod event;
pub mod limits;
pub mod principal;
pub mod reason;

pub use command::{AccountKind, Call, Command, OpenAccount, Transfer, Txid};
pub use currency::Currency;
pub use event::{Effect, Event, EventRecord, Posting, TransferStatus};
pub use principal::{Caller, Role};
pub use reason::Reason;

/// The version of the `wallet:statemachine` WIT package this crate's
/// encodings belong to.
pub const CONTRACT: &str = "wallet:statemachine@2.0.0";
