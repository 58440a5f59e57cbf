//! The host side of `wit/`: the only `bindgen!` in the host. The contract
//! passes batches, keys, values and answers as byte buffers whose layouts
//! live in `wallet_core::codec`; the one WIT record is the batch header.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "statemachine",
});

pub use exports::wallet::statemachine::machine::BatchHeader;
