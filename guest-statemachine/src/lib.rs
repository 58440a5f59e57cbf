//! The wallet's rules: open accounts and move money between them, exactly
//! once per transaction id, never below an account's floor, only at the
//! request of someone allowed to, with every movement recorded as a typed
//! event.
//!
//! A batch runs in two steps (see `wit/wallet.wit`): [`prefetch`] names the
//! state keys the batch reads, and [`execute`] runs the calls against their
//! values and answers with outcomes, events and writes. Both are plain
//! functions of bytes, so they run natively (tests, benchmarks) and inside
//! the WebAssembly component (`component`). On `wasm32` the crate is
//! `no_std`: Rust's `std` would link WASI imports, and the host refuses any
//! component that imports anything.
//!
//! - `keys`: the guest's state keys, and which ones each command reads.
//! - `layout`: how accounts are stored, and the migration between layouts.
//! - `limit`: the daily outgoing limit of the rules built with one.
//! - `records`: the stored values and their bytes (the guest's own schema).
//! - `plan`: the keys of a batch, round by round.
//! - `state`: the batch's values, decoded once, and the writes it makes.
//! - `output`: the execute answer, written as the calls run.
//! - `rules`: what each command does.
//! - `owners`: whose each record is, for a partition split.
#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

// Rules that change the state's layout also export its migration.
#[cfg(not(feature = "compact-accounts"))]
wit_bindgen::generate!({
    path: "../wit",
    world: "splitting-statemachine",
});
#[cfg(feature = "compact-accounts")]
wit_bindgen::generate!({
    path: "../wit",
    world: "migrating-statemachine",
});

#[cfg(target_arch = "wasm32")]
mod component;
mod keys;
mod layout;
mod limit;
mod output;
mod owners;
mod plan;
mod records;
mod rules;
mod state;

pub use exports::wallet::statemachine::machine::BatchHeader;

use alloc::vec::Vec;
use wallet_core::codec;

/// The prefetch step: the keys `calls` read, after those whose `values`
/// are already known (see `wit/wallet.wit`). Malformed input is a bug in
/// the host: it panics, which traps in the component.
pub fn prefetch(_header: &BatchHeader, calls: &[u8], values: &[u8]) -> Vec<u8> {
    let calls = codec::calls(calls).expect("the host sends a well-formed batch");
    let values = codec::values(values).expect("the host sends well-formed values");
    plan::Plan::new(&calls, &values).next_round(values.len())
}

/// The execute step: runs `calls` in order against the `values` of every
/// key prefetch named; answers with outcomes, events and writes. Of the
/// header, only a daily limit reads the time (`limit`).
pub fn execute(header: &BatchHeader, calls: &[u8], values: &[u8]) -> Vec<u8> {
    let calls = codec::calls(calls).expect("the host sends a well-formed batch");
    let values = codec::values(values).expect("the host sends well-formed values");
    let plan = plan::Plan::new(&calls, &values);
    assert_eq!(
        plan.keys().len(),
        values.len(),
        "the host sends a value for every key prefetch named"
    );
    rules::run(&calls, plan, &values, limit::day(header.timestamp_ms))
}

/// Whose each record of a page is (see `owners`), for a partition split.
pub fn owners(records: &[u8]) -> Vec<u8> {
    owners::owners(records)
}

/// The migration of rules that change the state's layout: a page of
/// records in, the writes that bring them to this layout out (see
/// `layout`).
#[cfg(feature = "compact-accounts")]
pub fn migrate(records: &[u8]) -> Vec<u8> {
    layout::migrate(records)
}
