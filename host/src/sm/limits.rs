//! Every limit of the sandbox, in one place. They are part of what makes a
//! batch's outcome deterministic: change one only with a new release note.
//! The bounds of a batch and its encodings are `wallet_core::limits`.

pub use wallet_core::limits::{BATCH_COMMANDS_MAX, PREFETCH_ROUNDS_MAX};

/// Fuel for one call into the guest (a prefetch round or the execute
/// step): a fixed allowance plus some per command. A command costs a few
/// thousand units; the allowance is hundreds of times that, so only a
/// runaway guest meets the limit, never a heavy but correct batch, whatever
/// its instance's history.
pub const FUEL_PER_CALL: u64 = 50_000_000;
pub const FUEL_PER_COMMAND: u64 = 2_000_000;

/// A page of a migration (`migration`): at most this many records, and
/// past this many bytes no further record is added.
pub const MIGRATION_PAGE_RECORDS: usize = 1024;
pub const MIGRATION_PAGE_BYTES: usize = 1 << 20;

/// Linear memory the guest may grow to.
pub const MEMORY_BYTES_MAX: usize = 512 << 20;

/// Instances, tables and memories a component may create.
pub const INSTANCES_MAX: usize = 16;
pub const TABLES_MAX: usize = 16;
pub const MEMORIES_MAX: usize = 4;

pub fn fuel_for(commands: usize) -> u64 {
    FUEL_PER_CALL.saturating_add(FUEL_PER_COMMAND.saturating_mul(commands as u64))
}
