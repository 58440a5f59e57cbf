//! Online backup and restore.
//!
//! A backup is what a snapshot sends a new member
//! (`crate::cluster::transfer`): a RocksDB checkpoint of the applied state
//! with its manifest, then every event record and every command entry from
//! genesis, so the copy can be audited like a replica. A running node
//! takes it without pausing writes (a checkpoint is hard links), from its
//! own applied state; a SHA-256 seals the stream.
//!
//! Restoring makes a data directory from it: the state, the event log, the
//! command archive, and, after the backup's last entry, a membership entry
//! for the group that starts from it, so a single node or every member of
//! a new group starts where the backup stands and goes on from there.

use crate::cluster::transfer::{
    self, COMMANDS_FILE, EVENTS_FILE, Framed, Holds, Seal, Sources, Staged,
};
use crate::log::{LogOptions, sync_dir};
use crate::partition::Partition;
use crate::raft::{CHECKPOINT_DIR, LogStore, MANIFEST_FILE, Manifest, SnapshotFiles, Snapshots};
use crate::store::{Store, StoreOptions};
use crate::{Error, Result};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use openraft::BasicNode;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

/// A backup on its way out.
pub type BackupStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::DataDir {
        path: path.to_path_buf(),
        source,
    }
}

/// A backup of `partition` as it stands: the checkpoint is taken now, the
/// rest streams as it is read. Refused where this replica's command
/// archive does not reach its state (a sender without the history).
pub async fn stream(partition: &Arc<Partition>) -> Result<BackupStream> {
    let snapshots = partition.snapshots().clone();
    let (dir, manifest) = tokio::task::spawn_blocking(move || snapshots.backup())
        .await
        .map_err(|e| Error::StoreFailed(format!("taking a checkpoint: {e}")))?
        .map_err(|e| Error::StoreFailed(format!("taking a checkpoint: {e}")))?;
    let last = manifest.meta.last_log_id.map_or(0, |id| id.index);
    let archived = partition.log().archived_through(last);
    if archived < last {
        return Err(Error::ArchiveGap {
            from: archived + 1,
            to: last,
        });
    }
    let vote = partition.raft().metrics().borrow().vote;
    let files = SnapshotFiles {
        dir: dir.as_ref().to_path_buf(),
    };
    let nothing = Holds {
        events_last: 0,
        commands_last: 0,
    };
    let head = transfer::head(vote, &files, nothing, archived)
        .map_err(|e| Error::StoreFailed(format!("listing the checkpoint: {e}")))?;
    tracing::info!(
        index = last,
        events = head.manifest.events_last,
        "streaming a backup"
    );
    let sources = Sources {
        events: partition.store().event_log(),
        commands: partition.log().clone(),
    };
    let stream = transfer::stream(head, dir, sources, Seal::digest(), "a backup".into());
    Ok(Box::pin(stream))
}

/// Writes the backup `stream` into the new directory `out` (through
/// `<out>.partial`, renamed once the whole stream checked out), telling
/// `progress` the bytes of each chunk; returns its manifest.
pub async fn receive<S, E>(
    stream: S,
    out: &Path,
    mut progress: impl FnMut(usize) + Unpin,
) -> Result<Manifest>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    if out.exists() {
        return Err(Error::DataDir {
            path: out.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "a backup goes to a new directory",
            ),
        });
    }
    let mut partial = out.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(io(&partial))?;
    }
    std::fs::create_dir_all(partial.join(CHECKPOINT_DIR)).map_err(io(&partial))?;
    let stream = stream.inspect(|chunk| {
        if let Ok(bytes) = chunk {
            progress(bytes.len());
        }
    });
    let mut framed = Framed::new(stream);
    let (head, _) = framed.head(Seal::digest()).await.map_err(io(out))?;
    framed.body(&head, &partial).await.map_err(io(out))?;
    let manifest = serde_json::to_vec_pretty(&head.manifest).expect("a manifest serializes");
    crate::log::write_atomic(&partial.join(MANIFEST_FILE), &manifest)?;
    std::fs::rename(&partial, out).map_err(io(out))?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent)?;
    }
    Ok(head.manifest)
}

/// Makes partition 0 of the data directory `data_dir` (which must not hold
/// one) from the backup in `backup`, for a group of `members` (id and
/// address each; one for a single node). Every member of a new group is
/// restored from the same backup with the same members. Returns the
/// backup's manifest.
pub fn restore(
    backup: &Path,
    data_dir: &Path,
    members: &BTreeMap<u64, String>,
    store_options: &StoreOptions,
    log_options: LogOptions,
) -> Result<Manifest> {
    let manifest = SnapshotFiles {
        dir: backup.to_path_buf(),
    }
    .manifest()
    .map_err(io(backup))?;
    let last = manifest.meta.last_log_id.ok_or_else(|| {
        Error::StoreFailed(format!("{} is a backup of an empty node", backup.display()))
    })?;
    let dir = data_dir.join("partition-0");
    if dir.exists() {
        return Err(Error::DataDir {
            path: dir,
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "a restore makes a new data directory",
            ),
        });
    }
    // Built aside and renamed into place once whole: a restore cut short
    // leaves nothing a node would start from, and runs again from scratch.
    let restoring = data_dir.join("partition-0.restoring");
    if restoring.exists() {
        std::fs::remove_dir_all(&restoring).map_err(io(&restoring))?;
    }
    build(
        backup,
        &restoring,
        &manifest,
        last,
        members,
        store_options,
        log_options,
    )?;
    std::fs::rename(&restoring, &dir).map_err(io(&dir))?;
    sync_dir(data_dir)?;
    tracing::info!(
        index = last.index,
        events = manifest.events_last,
        dir = %dir.display(),
        "restored"
    );
    Ok(manifest)
}

/// Makes the partition directory `dir` from the backup.
fn build(
    backup: &Path,
    dir: &Path,
    manifest: &Manifest,
    last: openraft::LogId<u64>,
    members: &BTreeMap<u64, String>,
    store_options: &StoreOptions,
    log_options: LogOptions,
) -> Result<()> {
    let store = Arc::new(Store::open(&dir.join("state"), store_options)?);
    let events = store.event_log();
    if let Some(mut staged) = Staged::open(backup, EVENTS_FILE)? {
        while let Some((seq, record)) = staged.next_record()? {
            events.append(seq, record)?;
        }
    }
    // Copied, not moved: the backup stays whole, and may be on another
    // filesystem.
    let checkpoint = dir.join("state").join("restoring");
    copy_dir(&backup.join(CHECKPOINT_DIR), &checkpoint)?;
    let installed = store.install(&checkpoint)?;
    if hex::encode(installed.chain_head) != manifest.chain_head {
        return Err(Error::StoreFailed(format!(
            "the restored state's chain head {} is not the backup's {}",
            hex::encode(installed.chain_head),
            manifest.chain_head
        )));
    }
    let log = LogStore::open(&dir.join("raft"), log_options, store.clone())?;
    let mut commands = Staged::open(backup, COMMANDS_FILE)?.ok_or_else(|| {
        Error::StoreFailed(format!("{} holds no command archive", backup.display()))
    })?;
    log.absorb(&mut commands, Some(last))?;
    let archived = log.archived_through(last.index);
    if archived < last.index {
        return Err(Error::ArchiveGap {
            from: archived + 1,
            to: last.index,
        });
    }
    let nodes = members
        .iter()
        .map(|(&id, addr)| (id, BasicNode { addr: addr.clone() }))
        .collect();
    log.restart_as_group(last, nodes)?;
    let snapshots_dir = dir.join("snapshots");
    Snapshots::open(store.clone(), snapshots_dir.clone())
        .and_then(|snapshots| snapshots.build())
        .map_err(io(&snapshots_dir))?;
    store.flush()?;
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(io(to))?;
    for entry in std::fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        let target = to.join(entry.file_name());
        std::fs::copy(entry.path(), &target).map_err(io(&target))?;
    }
    let sync = |path: &Path| std::fs::File::open(path).and_then(|f| f.sync_all());
    for entry in std::fs::read_dir(to).map_err(io(to))? {
        let path = entry.map_err(io(to))?.path();
        sync(&path).map_err(io(&path))?;
    }
    sync_dir(to)
}
