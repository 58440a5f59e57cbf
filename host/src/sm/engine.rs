use crate::{Error, Result};
use std::path::Path;
use wasmtime::{Cache, CacheConfig, Config, Engine, WasmFeatures};

/// A wasmtime engine on which every replica computes the same thing:
/// NaNs canonicalized, no relaxed SIMD or threads, fuel metering (not epochs,
/// which depend on wall time). With `cache_dir`, compiled code is kept there
/// and reused across restarts.
pub fn new_engine(cache_dir: Option<&Path>) -> Result<Engine> {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .cranelift_nan_canonicalization(true)
        .wasm_relaxed_simd(false)
        .wasm_features(
            WasmFeatures::THREADS | WasmFeatures::SHARED_EVERYTHING_THREADS,
            false,
        )
        .consume_fuel(true);
    if let Some(dir) = cache_dir {
        // wasmtime refuses a relative cache directory, and the default data
        // directory (`./wallet-data`) is one.
        let dir = std::path::absolute(dir).map_err(|e| Error::Engine(e.into()))?;
        let mut cache = CacheConfig::new();
        cache.with_directory(dir);
        config.cache(Some(Cache::new(cache).map_err(Error::Engine)?));
    }
    Engine::new(&config).map_err(Error::Engine)
}
