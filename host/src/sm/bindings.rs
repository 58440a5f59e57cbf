//! The host side of `wit/`: the only `bindgen!` in the host. The contract
//! passes batches, keys, values and answers as byte buffers whose layouts
//! live in `wallet_core::codec`; the one WIT record is the batch header.
//! Bound per interface, since `migration` is exported only by versions
//! that change the state's layout, and `splitting` only by versions from
//! 2.4.0 on.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "migrating-statemachine",
});

pub use exports::wallet::statemachine::machine::BatchHeader;
pub use exports::wallet::statemachine::{machine, migration, splitting};
