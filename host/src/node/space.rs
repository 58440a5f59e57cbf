//! The free-space floor: a reserve kept on the data directory's
//! filesystem, so that writes are refused cleanly (507) before the disk is
//! full, reads keep serving, and writes resume by themselves when space
//! returns. Everything a batch appends lands in preallocated log segments;
//! the floor leaves room for the next segments and for RocksDB's flushes.

use crate::service::SubmitError;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How often the free space is measured.
const CHECK_EVERY: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub struct FreeSpace {
    floor_bytes: u64,
    /// The last measure; `u64::MAX` when it could not be taken (a failing
    /// `statvfs` must not stop writes by itself).
    available: Arc<AtomicU64>,
}

impl FreeSpace {
    /// Measures `dir`'s filesystem now and then every `CHECK_EVERY`, for as
    /// long as the runtime runs.
    pub fn watch(dir: PathBuf, floor_bytes: u64) -> FreeSpace {
        let space = FreeSpace {
            floor_bytes,
            available: Arc::new(AtomicU64::new(free_bytes(&dir))),
        };
        let measured = Arc::clone(&space.available);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(CHECK_EVERY);
            loop {
                ticks.tick().await;
                let dir = dir.clone();
                let Ok(bytes) = tokio::task::spawn_blocking(move || free_bytes(&dir)).await else {
                    return;
                };
                measured.store(bytes, Ordering::Relaxed);
                metrics::gauge!("free_space_bytes").set(bytes as f64);
            }
        });
        space
    }

    pub fn available(&self) -> u64 {
        self.available.load(Ordering::Relaxed)
    }

    pub fn floor_bytes(&self) -> u64 {
        self.floor_bytes
    }

    /// Refuses a write while the free space is below the floor.
    pub fn check(&self) -> Result<(), SubmitError> {
        if self.available() < self.floor_bytes {
            return Err(SubmitError::InsufficientStorage {
                floor_bytes: self.floor_bytes,
            });
        }
        Ok(())
    }
}

/// Bytes an unprivileged writer may still use on `dir`'s filesystem;
/// `u64::MAX` when it cannot be measured.
pub fn free_bytes(dir: &std::path::Path) -> u64 {
    match rustix::fs::statvfs(dir) {
        Ok(stat) => stat.f_bavail.saturating_mul(stat.f_frsize),
        Err(error) => {
            tracing::warn!(%error, dir = %dir.display(), "cannot measure free space");
            u64::MAX
        }
    }
}
