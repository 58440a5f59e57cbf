use super::{NodeId, TypeConfig, any_error};
use crate::store::Store;
use openraft::storage::{RaftSnapshotBuilder, Snapshot};
use openraft::{LogId, SnapshotMeta, StorageError, StorageIOError, StoredMembership};
use serde::{Deserialize, Serialize};
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

type StorageResult<T> = Result<T, StorageError<NodeId>>;

/// Checkpoints kept on disk; older ones are removed.
const SNAPSHOTS_KEPT_MAX: usize = 2;

/// What a snapshot says about its checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Manifest {
    applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, openraft::BasicNode>,
    chain_head: String,
    checkpoint: PathBuf,
}

/// The newest snapshot's meta and manifest.
type Current = Option<(SnapshotMeta<NodeId, openraft::BasicNode>, Vec<u8>)>;

/// Snapshots are RocksDB checkpoints (hard links, so cheap) under
/// `<partition>/snapshots/`, each with the applied log id and chain head it
/// holds, read back from the checkpoint itself so they always agree.
#[derive(Clone)]
pub struct Snapshots {
    store: Arc<Store>,
    dir: PathBuf,
    current: Arc<Mutex<Current>>,
}

fn io_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_snapshot(None, any_error(&e)).into()
}

impl Snapshots {
    pub fn new(store: Arc<Store>, dir: PathBuf) -> Self {
        Snapshots {
            store,
            dir,
            current: Arc::default(),
        }
    }

    pub fn current(&self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        Ok(current.as_ref().map(|(meta, manifest)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new(Cursor::new(manifest.clone())),
        }))
    }

    fn prune(&self) -> std::io::Result<()> {
        let mut names: Vec<_> = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        names.sort();
        let excess = names.len().saturating_sub(SNAPSHOTS_KEPT_MAX);
        for old in &names[..excess] {
            std::fs::remove_dir_all(old)?;
        }
        Ok(())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for Snapshots {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        std::fs::create_dir_all(&self.dir).map_err(io_err)?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let checkpoint = self.dir.join(format!("{stamp:016}"));
        let meta =
            tokio::task::block_in_place(|| self.store.checkpoint(&checkpoint)).map_err(io_err)?;
        let applied: Option<LogId<NodeId>> = match meta.applied {
            Some(bytes) => Some(serde_json::from_slice(&bytes).map_err(io_err)?),
            None => None,
        };
        let membership: StoredMembership<NodeId, openraft::BasicNode> = match meta.membership {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(io_err)?,
            None => StoredMembership::default(),
        };
        let manifest = Manifest {
            applied,
            membership: membership.clone(),
            chain_head: hex::encode(meta.chain_head),
            checkpoint,
        };
        let bytes = serde_json::to_vec(&manifest).map_err(io_err)?;
        let snapshot_meta = SnapshotMeta {
            last_log_id: applied,
            last_membership: membership,
            snapshot_id: format!("{stamp:016}"),
        };
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((snapshot_meta.clone(), bytes.clone()));
        self.prune().map_err(io_err)?;
        tracing::info!(snapshot = %snapshot_meta.snapshot_id, ?applied, "snapshot built");
        Ok(Snapshot {
            meta: snapshot_meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}
