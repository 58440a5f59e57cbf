use super::{NodeId, TypeConfig, any_error};
use crate::log::{read_small, sync_dir, write_atomic};
use crate::store::Store;
use openraft::storage::{RaftSnapshotBuilder, Snapshot};
use openraft::{BasicNode, LogId, SnapshotMeta, StorageError, StorageIOError, StoredMembership};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

type StorageResult<T> = Result<T, StorageError<NodeId>>;

/// Snapshots kept on disk; older ones are removed.
const SNAPSHOTS_KEPT_MAX: usize = 2;
/// A snapshot's description, inside its directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The RocksDB checkpoint, inside a snapshot's directory.
pub const CHECKPOINT_DIR: &str = "db";
/// Where a snapshot is built before it gets its name.
const BUILDING_DIR: &str = "building";
/// Where received snapshots are written before they are installed.
const INCOMING_PREFIX: &str = "incoming-";
/// Where a backup's checkpoint lives while it streams.
const BACKUP_PREFIX: &str = "backup-";

/// What a snapshot holds: the log id its state is at, the membership, and
/// where its event chain stands. Nothing in it is a local path, so it
/// travels to other members as is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub meta: SnapshotMeta<NodeId, BasicNode>,
    pub chain_head: String,
    /// The last event-log record the state reflects.
    pub events_last: u64,
}

/// A snapshot's directory: `db/` (a RocksDB checkpoint) and
/// `manifest.json`; openraft's snapshot data.
#[derive(Debug)]
pub struct SnapshotFiles {
    pub dir: PathBuf,
}

impl SnapshotFiles {
    pub fn manifest(&self) -> std::io::Result<Manifest> {
        let path = self.dir.join(MANIFEST_FILE);
        let bytes = read_small(&path).map_err(store_err)?.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, path.display().to_string())
        })?;
        serde_json::from_slice(&bytes).map_err(std::io::Error::other)
    }
}

/// The name of the snapshot at `log_id`: the log id itself, so that two
/// snapshots of the same state have the same name on every member and a
/// newer one sorts after an older one.
pub fn snapshot_id(log_id: Option<&LogId<NodeId>>) -> String {
    let (term, index) = log_id.map_or((0, 0), |id| (id.leader_id.term, id.index));
    format!("{term:020}-{index:020}")
}

/// Snapshots are RocksDB checkpoints (hard links, so cheap) under
/// `<partition>/snapshots/<term>-<index>/`, each with a manifest read back
/// from the checkpoint itself, so they always agree. The newest complete
/// one is the current snapshot, also after a restart.
#[derive(Clone)]
pub struct Snapshots {
    store: Arc<Store>,
    dir: PathBuf,
}

fn io_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_snapshot(None, any_error(&e)).into()
}

fn store_err(e: crate::Error) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl Snapshots {
    /// Snapshots in `dir`; what a previous run left half-built or
    /// received and not installed is removed.
    pub fn open(store: Arc<Store>, dir: PathBuf) -> std::io::Result<Self> {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries {
                let path = entry?.path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if name == BUILDING_DIR
                    || name.starts_with(INCOMING_PREFIX)
                    || name.starts_with(BACKUP_PREFIX)
                {
                    std::fs::remove_dir_all(&path)?;
                }
            }
        }
        Ok(Snapshots { store, dir })
    }

    /// Complete snapshots, oldest first.
    fn complete(&self) -> std::io::Result<Vec<PathBuf>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                name.bytes().next().is_some_and(|b| b.is_ascii_digit())
                    && p.join(MANIFEST_FILE).exists()
            })
            .collect();
        dirs.sort();
        Ok(dirs)
    }

    pub fn current(&self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        let Some(dir) = self.complete().map_err(io_err)?.pop() else {
            return Ok(None);
        };
        let files = SnapshotFiles { dir };
        let manifest = files.manifest().map_err(io_err)?;
        Ok(Some(Snapshot {
            meta: manifest.meta,
            snapshot: Box::new(files),
        }))
    }

    /// A fresh directory to receive the snapshot `id` into, removed if
    /// dropped before it is kept: one per stream, since a leader may send
    /// the same snapshot again while an earlier stream of it is still
    /// being torn down.
    pub fn incoming(&self, id: &str) -> std::io::Result<OwnedDir> {
        let dir = OwnedDir(self.dir.join(format!(
            "{INCOMING_PREFIX}{id}-{}",
            uuid::Uuid::new_v4().simple()
        )));
        std::fs::create_dir_all(dir.0.join(CHECKPOINT_DIR))?;
        Ok(dir)
    }

    fn prune(&self) -> std::io::Result<()> {
        let complete = self.complete()?;
        let excess = complete.len().saturating_sub(SNAPSHOTS_KEPT_MAX);
        for old in &complete[..excess] {
            std::fs::remove_dir_all(old)?;
        }
        Ok(())
    }

    pub(crate) fn build(&self) -> std::io::Result<SnapshotFiles> {
        let building = self.dir.join(BUILDING_DIR);
        if building.exists() {
            std::fs::remove_dir_all(&building)?;
        }
        let id = self.checkpoint_into(&building)?.meta.snapshot_id;
        let dir = self.dir.join(&id);
        if dir.exists() {
            // The same state, snapshotted before.
            std::fs::remove_dir_all(&building)?;
        } else {
            std::fs::rename(&building, &dir)?;
            sync_dir(&self.dir).map_err(store_err)?;
        }
        self.prune()?;
        Ok(SnapshotFiles { dir })
    }

    /// A checkpoint for a backup, in a directory of its own that no
    /// snapshot build or prune touches; removed when the guard drops.
    pub fn backup(&self) -> std::io::Result<(OwnedDir, Manifest)> {
        let dir = OwnedDir(
            self.dir
                .join(format!("{BACKUP_PREFIX}{}", uuid::Uuid::new_v4().simple())),
        );
        let manifest = self.checkpoint_into(&dir.0)?;
        Ok((dir, manifest))
    }

    /// The current snapshot's files hard-linked into a directory of their
    /// own, which no prune touches, so they can be read for as long as the
    /// guard lives; `None` without a snapshot.
    pub fn pin_current(&self) -> std::io::Result<Option<(OwnedDir, Manifest)>> {
        let Some(current) = self.complete()?.pop() else {
            return Ok(None);
        };
        let files = SnapshotFiles { dir: current };
        let manifest = files.manifest()?;
        let pinned = OwnedDir(
            self.dir
                .join(format!("{BACKUP_PREFIX}{}", uuid::Uuid::new_v4().simple())),
        );
        let (from, to) = (
            files.dir.join(CHECKPOINT_DIR),
            pinned.0.join(CHECKPOINT_DIR),
        );
        std::fs::create_dir_all(&to)?;
        for entry in std::fs::read_dir(&from)? {
            let entry = entry?;
            std::fs::hard_link(entry.path(), to.join(entry.file_name()))?;
        }
        Ok(Some((pinned, manifest)))
    }

    /// Writes a checkpoint of the state and its manifest into `dir`, which
    /// must not exist.
    fn checkpoint_into(&self, dir: &Path) -> std::io::Result<Manifest> {
        std::fs::create_dir_all(dir)?;
        let meta = self
            .store
            .checkpoint(&dir.join(CHECKPOINT_DIR))
            .map_err(store_err)?;
        let applied: Option<LogId<NodeId>> = match &meta.applied {
            Some(bytes) => Some(serde_json::from_slice(bytes).map_err(std::io::Error::other)?),
            None => None,
        };
        let membership: StoredMembership<NodeId, BasicNode> = match &meta.membership {
            Some(bytes) => serde_json::from_slice(bytes).map_err(std::io::Error::other)?,
            None => StoredMembership::default(),
        };
        let id = snapshot_id(applied.as_ref());
        let manifest = Manifest {
            meta: SnapshotMeta {
                last_log_id: applied,
                last_membership: membership,
                snapshot_id: id,
            },
            chain_head: hex::encode(meta.chain_head),
            events_last: meta.events_last,
        };
        let bytes = serde_json::to_vec(&manifest).map_err(std::io::Error::other)?;
        write_atomic(&dir.join(MANIFEST_FILE), &bytes).map_err(store_err)?;
        Ok(manifest)
    }
}

/// A directory of snapshot files this process made (a backup's
/// checkpoint, a pinned snapshot, one being received), removed when
/// dropped unless kept.
#[derive(Debug)]
pub struct OwnedDir(PathBuf);

impl OwnedDir {
    /// The path, no longer removed by this guard.
    pub fn keep(mut self) -> PathBuf {
        std::mem::take(&mut self.0)
    }
}

impl AsRef<Path> for OwnedDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for OwnedDir {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            remove_incoming(&self.0);
        }
    }
}

/// Removes a received snapshot's leftovers once it is installed.
pub fn remove_incoming(dir: &Path) {
    if let Err(error) = std::fs::remove_dir_all(dir) {
        tracing::warn!(%error, dir = %dir.display(), "removing an installed snapshot's files");
    }
}

impl RaftSnapshotBuilder<TypeConfig> for Snapshots {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        let files = tokio::task::block_in_place(|| self.build()).map_err(io_err)?;
        let manifest = files.manifest().map_err(io_err)?;
        tracing::info!(snapshot = %manifest.meta.snapshot_id, events = manifest.events_last, "snapshot built");
        Ok(Snapshot {
            meta: manifest.meta,
            snapshot: Box::new(files),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::OwnedDir;

    #[test]
    fn an_owned_dir_goes_when_dropped_and_stays_when_kept() {
        let scratch = tempfile::tempdir().expect("a scratch directory");
        let dropped = scratch.path().join("incoming-a");
        let kept = scratch.path().join("incoming-b");
        for dir in [&dropped, &kept] {
            std::fs::create_dir_all(dir.join("db")).expect("made");
        }
        drop(OwnedDir(dropped.clone()));
        let path = OwnedDir(kept.clone()).keep();
        assert!(!dropped.exists());
        assert_eq!(path, kept);
        assert!(kept.join("db").exists());
    }
}
