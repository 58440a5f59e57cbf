//! Bounds of a batch and of its encodings. Every one is part of the
//! contract: a batch within them is judged by the rules, one beyond them is
//! refused before it reaches the log.

/// Commands in one batch (one Raft entry, one `balance_transfers` request).
pub const BATCH_COMMANDS_MAX: usize = 8190;

/// Rounds of prefetch a batch may take: a command that names only a
/// transaction id learns its account from its phase record in round two.
pub const PREFETCH_ROUNDS_MAX: usize = 4;

/// The longest state key and value the guest may use.
pub const KEY_BYTES_MAX: usize = 1024;
pub const VALUE_BYTES_MAX: usize = 64 << 10;

/// Keys one batch may read or write.
pub const BATCH_KEYS_MAX: usize = 8 * BATCH_COMMANDS_MAX;

/// Events one command may produce.
pub const COMMAND_EVENTS_MAX: usize = 8;
