//! Every limit of the sandbox, in one place. They are part of what makes a
//! batch's outcome deterministic: change one only with a new release note.

/// Commands in one batch (one Raft entry).
pub const BATCH_COMMANDS_MAX: usize = 8190;

/// Fuel for a batch: a fixed allowance plus one per command. A command costs
/// a few thousand units; the allowance is hundreds of times that, so only a
/// runaway guest meets the limit, never a heavy but correct batch, whatever
/// its instance's history.
pub const FUEL_PER_BATCH: u64 = 50_000_000;
pub const FUEL_PER_COMMAND: u64 = 2_000_000;

/// Linear memory the guest may grow to.
pub const MEMORY_BYTES_MAX: usize = 512 << 20;

/// Instances, tables and memories a component may create.
pub const INSTANCES_MAX: usize = 16;
pub const TABLES_MAX: usize = 16;
pub const MEMORIES_MAX: usize = 4;

pub fn fuel_for(commands: usize) -> u64 {
    FUEL_PER_BATCH.saturating_add(FUEL_PER_COMMAND.saturating_mul(commands as u64))
}
