//! The wallet's rules: open accounts and move money between them, exactly
//! once per transaction id, never below an account's floor, with every
//! movement recorded as a typed event.
//!
//! The rules are plain Rust over the [`Kv`] trait, so they run natively
//! (tests, benchmarks) and inside the WebAssembly component (`component`),
//! where `Kv` is the host's `state` import. On `wasm32` the crate is
//! `no_std`: Rust's `std` would link WASI imports, and the host refuses any
//! component that imports more than the wallet interfaces.
#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

wit_bindgen::generate!({
    path: "../wit",
    world: "statemachine",
    additional_derives: [PartialEq, Eq],
});

mod account_id;
mod batch;
#[cfg(target_arch = "wasm32")]
mod component;
pub mod currency;
mod keys;
mod kv;
mod records;
mod rules;

pub use kv::Kv;
pub use rules::execute;
pub use wallet::statemachine::types::{
    AccountKind, BatchHeader, BatchOutput, Command, Event, EventRecord, OpenAccount, Outcome,
    Posting, Reason, Rejection, Transfer, Txid,
};
