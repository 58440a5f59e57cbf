use super::archive::HISTORY_DIR;
use super::{TypeConfig, any_error};
use crate::log::{LogOptions, SegmentLog, read_small, write_atomic};
use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{
    BasicNode, CommittedLeaderId, Entry, EntryPayload, LogId, Membership, RaftLogId, StorageError,
    StorageIOError, Vote,
};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak, mpsc};

type NodeId = super::NodeId;
type StorageResult<T> = Result<T, StorageError<NodeId>>;

/// What the log may not be purged past: the state the entries were applied
/// to must be durable first, since a restart replays the log from the
/// applied id the state holds.
pub trait Durable: Send + Sync + 'static {
    /// Makes everything applied so far durable; returns the applied index
    /// that now is.
    fn flush(&self) -> crate::Result<u64>;

    /// The applied index, durable or not.
    fn applied(&self) -> u64;
}

impl Durable for crate::store::Store {
    fn flush(&self) -> crate::Result<u64> {
        crate::store::Store::flush(self)
    }

    fn applied(&self) -> u64 {
        self.applied_index()
    }
}

/// How long a purge waits for the state to reach the purge point: openraft
/// purges right after it hands a received snapshot to the state machine,
/// not after the install finished.
const PURGE_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(600);

/// The Raft log on the segment log, and the write-ahead log of the state.
/// `append` writes the entries and returns; a flusher thread makes them
/// durable and then tells openraft, so the next entries are written while
/// the previous ones sync, and one fdatasync covers every entry written
/// before it (group commit). Entries are never deleted: purging only
/// records how far the log is covered by durable state, so the commands
/// stay as the audit archive.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Mutex<Inner>>,
    durable: Arc<dyn Durable>,
    flusher: mpsc::Sender<LogFlushed<TypeConfig>>,
}

pub(super) struct Inner {
    pub(super) dir: PathBuf,
    /// The live Raft log.
    pub(super) log: SegmentLog,
    /// The archived entries before the live log's (`super::archive`).
    pub(super) history: SegmentLog,
    #[cfg(test)]
    fail: Option<Fail>,
}

/// An injected disk failure.
#[cfg(test)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Fail {
    Appends,
    Syncs,
}

const VOTE_FILE: &str = "vote";
const PURGED_FILE: &str = "purged";
pub(super) const ENTRIES_DIR: &str = "entries";

impl LogStore {
    pub fn open(
        dir: &Path,
        options: LogOptions,
        durable: Arc<dyn Durable>,
    ) -> crate::Result<LogStore> {
        std::fs::create_dir_all(dir).map_err(|source| crate::Error::LogIo {
            path: dir.to_path_buf(),
            source,
        })?;
        let log = SegmentLog::open(&dir.join(ENTRIES_DIR), options)?;
        let history = SegmentLog::open(&dir.join(HISTORY_DIR), options)?;
        let inner = Arc::new(Mutex::new(Inner {
            dir: dir.to_path_buf(),
            log,
            history,
            #[cfg(test)]
            fail: None,
        }));
        let (flusher, flushes) = mpsc::channel();
        let weak = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("raft-log-flush".into())
            .spawn(move || flush_until_closed(&weak, &flushes))
            .map_err(|source| crate::Error::LogIo {
                path: dir.to_path_buf(),
                source,
            })?;
        Ok(LogStore {
            inner,
            durable,
            flusher,
        })
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// Starts the empty live log of a group restored from a backup whose
    /// state is at `last`: everything up to it counts as purged (the
    /// history holds it), and the next entry names the new group's
    /// `members`, under a term after the backup's. The vote records that
    /// term first, so the first election goes above it whatever else a
    /// crash leaves written.
    pub fn restart_as_group(
        &self,
        last: LogId<NodeId>,
        members: BTreeMap<NodeId, BasicNode>,
    ) -> crate::Result<()> {
        let mut inner = self.lock();
        let first = *members
            .keys()
            .next()
            .ok_or_else(|| crate::Error::Raft("a group needs a member".into()))?;
        if !inner.log.is_empty() {
            return Err(crate::Error::Raft(format!(
                "{} already holds a live log",
                inner.dir.display()
            )));
        }
        let term = last.leader_id.term + 1;
        let voters = members.keys().copied().collect();
        let entry = Entry {
            log_id: LogId::new(CommittedLeaderId::new(term, first), last.index + 1),
            payload: EntryPayload::Membership(Membership::new(vec![voters], members)),
        };
        inner.write_json(VOTE_FILE, &Vote::new(term, first))?;
        inner.write_json(PURGED_FILE, &Some(last))?;
        inner.append([entry])?;
        inner.log.sync()
    }

    /// Makes every later append, or sync, fail as a disk would.
    #[cfg(test)]
    pub(crate) fn fail(&self, fail: Fail) {
        self.lock().fail = Some(fail);
    }
}

fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    inner
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The flusher thread: waits for appended entries' callbacks, takes every
/// one queued, syncs once outside the lock (appends go on meanwhile), and
/// answers them all in order. It holds the log only while it takes the
/// sync, so dropping the last `LogStore` closes the log.
fn flush_until_closed(
    inner: &Weak<Mutex<Inner>>,
    flushes: &mpsc::Receiver<LogFlushed<TypeConfig>>,
) {
    while let Ok(first) = flushes.recv() {
        let mut waiting = vec![first];
        waiting.extend(flushes.try_iter());
        let result = match inner.upgrade() {
            Some(inner) => sync(&inner),
            None => Err(std::io::Error::other("the log was closed before its sync")),
        };
        for callback in waiting {
            let result = result
                .as_ref()
                .map(|_| ())
                .map_err(|e| std::io::Error::new(e.kind(), e.to_string()));
            callback.log_io_completed(result);
        }
    }
}

/// Makes everything appended so far durable, without holding the lock
/// across the fdatasync; a failure poisons the log.
fn sync(inner: &Mutex<Inner>) -> std::io::Result<()> {
    let pending = {
        let mut inner = lock(inner);
        #[cfg(test)]
        if inner.fail == Some(Fail::Syncs) {
            inner.log.poison();
            return Err(std::io::Error::other("injected: the disk failed a sync"));
        }
        inner.log.begin_sync()
    };
    let result = pending.and_then(|p| p.finish());
    if result.is_err() {
        lock(inner).log.poison();
    }
    result.map_err(|e| std::io::Error::other(e.to_string()))
}

fn decode(bytes: &[u8]) -> Result<Entry<TypeConfig>, postcard::Error> {
    postcard::from_bytes(bytes)
}

fn read_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::read_logs(any_error(&e)).into()
}

fn write_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_logs(any_error(&e)).into()
}

impl Inner {
    fn read_json<T: serde::de::DeserializeOwned>(&self, file: &str) -> crate::Result<Option<T>> {
        match read_small(&self.dir.join(file))? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| crate::Error::StateRead(format!("{file}: {e}"))),
        }
    }

    fn write_json<T: serde::Serialize>(&self, file: &str, value: &T) -> crate::Result<()> {
        let bytes = serde_json::to_vec(value).expect("log ids and votes serialize");
        write_atomic(&self.dir.join(file), &bytes)
    }

    fn last_log_id(&self) -> StorageResult<Option<LogId<NodeId>>> {
        let Some(last) = self.log.last_index() else {
            return Ok(None);
        };
        let bytes = self.log.read(last).map_err(read_err)?;
        let bytes = bytes.expect("the last index is readable");
        Ok(Some(*decode(bytes).map_err(read_err)?.get_log_id()))
    }

    fn entries(&self, range: impl RangeBounds<u64>) -> StorageResult<Vec<Entry<TypeConfig>>> {
        let start = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i + 1,
            Bound::Unbounded => 0,
        };
        // Purged entries stay on disk as the archive, but are no longer
        // part of the Raft log.
        let start = start.max(self.log.purged().map_or(0, |p| p + 1));
        let end = match range.end_bound() {
            Bound::Included(&i) => Bound::Included(i),
            Bound::Excluded(&i) => Bound::Excluded(i),
            Bound::Unbounded => Bound::Unbounded,
        };
        self.log
            .range((Bound::Included(start), end))
            .map(|item| {
                let (_, bytes) = item.map_err(read_err)?;
                decode(bytes).map_err(read_err)
            })
            .collect()
    }

    /// Writes every entry; durable at the next sync.
    pub(super) fn append(
        &mut self,
        entries: impl IntoIterator<Item = Entry<TypeConfig>>,
    ) -> crate::Result<()> {
        #[cfg(test)]
        if self.fail == Some(Fail::Appends) {
            let error = std::io::Error::other("injected: the disk failed an append");
            return Err(crate::Error::LogIo {
                path: self.dir.clone(),
                source: error,
            });
        }
        let mut bytes = Vec::new();
        for entry in entries {
            bytes.clear();
            postcard::to_io(&entry, &mut bytes).map_err(|e| crate::Error::LogIo {
                path: self.dir.clone(),
                source: std::io::Error::other(format!("encoding entry {}: {e}", entry.log_id)),
            })?;
            self.log.append(entry.log_id.index, &bytes)?;
        }
        Ok(())
    }

    /// An installed snapshot can leave the log behind: the entries it
    /// covers never arrive here. Start a new log after the snapshot; the
    /// old one goes once the history holds all of it (the snapshot brought
    /// the rest, `super::archive`), and is otherwise kept aside as
    /// `archive-<ms>` for an operator. (Renaming an open, locked directory
    /// is fine on Linux: the lock and the maps follow the inode.)
    pub(super) fn restart_after_snapshot(&mut self) -> crate::Result<()> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let covered = self.log.last_index() <= self.history.last_index();
        let entries = self.dir.join(ENTRIES_DIR);
        let archive = self.dir.join(format!("archive-{stamp}"));
        let io = |source| crate::Error::LogIo {
            path: entries.clone(),
            source,
        };
        std::fs::rename(&entries, &archive).map_err(io)?;
        self.log = SegmentLog::open(&entries, LogOptions::default())?;
        if covered {
            std::fs::remove_dir_all(&archive).map_err(io)?;
        } else {
            tracing::warn!(
                kept = %archive.display(),
                "the history does not cover the replaced log; it is kept aside"
            );
        }
        Ok(())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        self.lock().entries(range)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> StorageResult<LogState<TypeConfig>> {
        let inner = self.lock();
        let last_purged: Option<LogId<NodeId>> = inner.read_json(PURGED_FILE).map_err(read_err)?;
        let last = inner.last_log_id()?.or(last_purged);
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> StorageResult<()> {
        self.lock()
            .write_json(VOTE_FILE, vote)
            .map_err(|e| StorageIOError::write_vote(any_error(&e)).into())
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<NodeId>>> {
        self.lock()
            .read_json(VOTE_FILE)
            .map_err(|e| StorageIOError::read_vote(any_error(&e)).into())
    }

    /// Writes the entries and hands the callback to the flusher, which
    /// answers it once they are durable. Whatever fails (encoding, the
    /// write, the sync) reaches openraft through the callback, and a failed
    /// write also as the returned error, so nothing waits on it.
    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        if let Err(error) = self.lock().append(entries) {
            callback.log_io_completed(Err(std::io::Error::other(error.to_string())));
            return Err(write_err(error));
        }
        if let Err(mpsc::SendError(callback)) = self.flusher.send(callback) {
            let error = std::io::Error::other("the log's flusher stopped");
            callback.log_io_completed(Err(std::io::Error::other(error.to_string())));
            return Err(write_err(error));
        }
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        self.lock()
            .log
            .truncate_from(log_id.index)
            .map_err(write_err)
    }

    /// Marks the entries up to `log_id` as purged, once the state they
    /// were applied to is durable.
    async fn purge(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        let started = std::time::Instant::now();
        while self.durable.applied() < log_id.index && started.elapsed() < PURGE_WAIT_MAX {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let durable = Arc::clone(&self.durable);
        let flushed = tokio::task::spawn_blocking(move || durable.flush())
            .await
            .map_err(write_err)?
            .map_err(write_err)?;
        if flushed < log_id.index {
            let error = std::io::Error::other(format!(
                "purge up to {} refused: the state is durable only up to {flushed}",
                log_id.index
            ));
            return Err(write_err(error));
        }
        let mut inner = self.lock();
        inner
            .write_json(PURGED_FILE, &Some(log_id))
            .map_err(write_err)?;
        let behind = inner
            .log
            .last_index()
            .is_none_or(|last| last <= log_id.index);
        if behind && !inner.log.is_empty() {
            inner.restart_after_snapshot().map_err(write_err)?;
        } else if !inner.log.is_empty() {
            inner.log.mark_purged(log_id.index).map_err(write_err)?;
        }
        tracing::info!(upto = log_id.index, "raft log purged (kept as the archive)");
        Ok(())
    }
}
