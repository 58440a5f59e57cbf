//! What unit tests across the crate share.

use crate::partition::PartitionOptions;
use crate::rocks::{Cache, Tuning};
use crate::store::StoreOptions;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Small enough for tests, with one block cache for the whole test run.
pub fn options() -> PartitionOptions {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Cache::new_lru_cache(8 << 20)).clone();
    let tuning = Tuning {
        write_buffer_bytes: 8 << 20,
        write_buffers_max: 4,
        block_cache: cache,
    };
    PartitionOptions {
        store: StoreOptions {
            flush_bytes: 2 << 20,
            cache_bytes: 1 << 20,
            segment_bytes: 1 << 20,
            tuning: tuning.clone(),
        },
        log_segment_bytes: 1 << 20,
        views: tuning,
        snapshot_every: 100_000,
    }
}

/// Compiled components, shared by every test of the run.
pub fn wasm_cache_dir() -> PathBuf {
    std::env::temp_dir().join("wallet-test-wasm-cache")
}
