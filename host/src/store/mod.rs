//! The durable state of one partition replica: RocksDB (guest state, read
//! models, versions, meta) and the hash-chained event log.
//!
//! A store directory holds `db/` (RocksDB) and `events/` (a `SegmentLog`).
//! The Raft log is the durable source of every applied batch, so a commit
//! syncs only the event log (one msync for all its batches) and writes
//! RocksDB with its WAL but without fsync: after a crash, RocksDB is at some
//! batch boundary, `open` cuts event records past it, and Raft applies the
//! missing batches again.
//!
//! - `db`: column families, options, the meta record.
//! - `events`: the event log, its hash chain, and reading it for audits.
//! - `projection`: folding events into balances, history and transfers.
//! - `read`: the read side of those projections.
//! - `keys`, `values`: their encodings.

mod db;
mod events;
mod keys;
mod projection;
mod read;
#[cfg(test)]
mod tests;
mod values;

pub use db::DB_DIR;
pub use events::{
    BatchEvents, EVENTS_DIR, EventReader, chain_next, read_events, recompute_balances,
};

use crate::service::{AccountView, HistoryPage, TransferView};
use crate::sm::{BatchHeader, EventRecord, StateSource, Txid, VersionHash, Write};
use crate::{Error, Result};
use db::{GUEST, META, VERSIONS, cf, rocks};
use events::EventLog;
use rocksdb::checkpoint::Checkpoint;
use rocksdb::{DB, IteratorMode, WriteBatch};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// What the store last committed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// The last applied Raft log id, serialized by the caller (opaque here).
    pub applied: Option<Vec<u8>>,
    /// The last membership, serialized by the caller (opaque here).
    pub membership: Option<Vec<u8>>,
    /// The event hash chain head; zeros at genesis.
    pub chain_head: [u8; 32],
    /// The last event-log record (one per applied batch).
    pub events_last: Option<u64>,
    /// The Raft log index of the last applied batch.
    pub applied_index: Option<u64>,
    pub active_version: Option<VersionHash>,
}

/// Meta fields a commit sets; `None` leaves a field as it was.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetaUpdate {
    pub applied: Option<Vec<u8>>,
    pub membership: Option<Vec<u8>>,
}

/// One batch as the state machine applied it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedBatch {
    /// Raft log index of the entry that carried the batch.
    pub log_index: u64,
    pub header: BatchHeader,
    /// The guest's state writes, in order.
    pub writes: Vec<Write>,
    pub events: Vec<EventRecord>,
}

/// The store of one partition replica. Reads take `&self` and may run on any
/// thread while a commit is under way; commits are serialized internally.
pub struct Store {
    dir: PathBuf,
    db: Arc<DB>,
    writer: Mutex<Writer>,
}

/// What only a commit touches.
struct Writer {
    events: EventLog,
    /// Equal to the meta record in RocksDB.
    meta: Meta,
}

impl Store {
    /// Opens the store in `dir`, creating it if absent. Refuses a database
    /// missing one of the column families, and an event log that lacks
    /// committed records or disagrees with the committed chain head; cuts
    /// event records that were never committed.
    pub fn open(dir: &Path) -> Result<Store> {
        let db_dir = dir.join(DB_DIR);
        std::fs::create_dir_all(&db_dir).map_err(|source| Error::LogIo {
            path: db_dir.clone(),
            source,
        })?;
        let db = db::open(&db_dir)?;
        let meta = db::read_meta(&db)?;
        let mut events = EventLog::open(dir)?;
        events.reconcile(&meta)?;
        Ok(Store {
            dir: dir.to_owned(),
            db: Arc::new(db),
            writer: Mutex::new(Writer { events, meta }),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The guest's committed state, for the state-machine runtime.
    pub fn guest_state(&self) -> GuestState {
        GuestState {
            db: Arc::clone(&self.db),
        }
    }

    /// What was last committed.
    pub fn meta(&self) -> Result<Meta> {
        Ok(self.writer().meta.clone())
    }

    /// Commits applied batches: one event-log record per batch (a batch
    /// without events too, so the chain covers every batch), one sync of the
    /// event log, then one RocksDB write with the guest writes, the
    /// projections and the meta of them all. Returns the new chain head.
    pub fn commit(&self, batches: &[AppliedBatch], update: MetaUpdate) -> Result<[u8; 32]> {
        let mut writer = self.writer();
        let Writer {
            events,
            meta: committed,
        } = &mut *writer;
        // A commit that failed after appending left records nobody committed.
        events.cut_uncommitted(committed.events_last)?;
        let mut meta = committed.clone();
        append_events(events, &mut meta, batches)?;
        meta.applied = update.applied.or(meta.applied);
        meta.membership = update.membership.or(meta.membership);

        let mut batch = WriteBatch::default();
        let guest = cf(&self.db, GUEST);
        for (key, value) in batches.iter().flat_map(|b| &b.writes) {
            match value {
                Some(value) => batch.put_cf(guest, key, value),
                None => batch.delete_cf(guest, key),
            }
        }
        projection::project(&self.db, batches, &mut batch)?;
        batch.put_cf(cf(&self.db, META), db::meta_key(), db::encode_meta(&meta)?);
        self.db.write(batch).map_err(rocks("committing batches"))?;
        *committed = meta;
        Ok(committed.chain_head)
    }

    /// Stores a state-machine component under its hash, which must be the
    /// SHA-256 of `bytes`.
    pub fn put_version(&self, hash: VersionHash, bytes: &[u8]) -> Result<()> {
        let actual = VersionHash::of(bytes);
        if actual != hash {
            let why = format!("version {hash} offered with bytes hashing to {actual}");
            return Err(values::corrupt(VERSIONS, why));
        }
        let versions = cf(&self.db, VERSIONS);
        self.db
            .put_cf(versions, hash.0, bytes)
            .map_err(rocks("storing a version"))
    }

    pub fn version(&self, hash: VersionHash) -> Result<Option<Vec<u8>>> {
        self.db
            .get_cf(cf(&self.db, VERSIONS), hash.0)
            .map_err(rocks("reading a version"))
    }

    /// The hashes of every stored version, in byte order.
    pub fn versions(&self) -> Result<Vec<VersionHash>> {
        let iter = self
            .db
            .iterator_cf(cf(&self.db, VERSIONS), IteratorMode::Start);
        iter.map(|item| {
            let (key, _) = item.map_err(rocks("listing versions"))?;
            let hash = <[u8; 32]>::try_from(&*key)
                .map_err(|_| values::corrupt(VERSIONS, "a key is not 32 bytes"))?;
            Ok(VersionHash(hash))
        })
        .collect()
    }

    /// Records the active version in the meta, durably in RocksDB's WAL.
    pub fn set_active_version(&self, hash: VersionHash) -> Result<()> {
        let mut writer = self.writer();
        let mut meta = writer.meta.clone();
        meta.active_version = Some(hash);
        let value = db::encode_meta(&meta)?;
        self.db
            .put_cf(cf(&self.db, META), db::meta_key(), value)
            .map_err(rocks("setting the active version"))?;
        writer.meta = meta;
        Ok(())
    }

    /// Writes a RocksDB checkpoint (hard links where possible) into `dir`,
    /// which must not exist, and returns the meta inside it: the applied log
    /// id and chain head the checkpoint is at. The event log is not part of
    /// it; a store opened from a checkpoint appends after `events_last`.
    pub fn checkpoint(&self, dir: &Path) -> Result<Meta> {
        let checkpoint = Checkpoint::new(&*self.db).map_err(rocks("checkpoint"))?;
        checkpoint
            .create_checkpoint(dir)
            .map_err(rocks("creating a checkpoint"))?;
        let meta = db::read_meta_read_only(dir)?;
        Ok(meta.unwrap_or_default())
    }

    pub fn account(&self, id: &str) -> Result<Option<AccountView>> {
        read::account(&self.db, id)
    }

    pub fn history(
        &self,
        id: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Option<HistoryPage>> {
        read::history(&self.db, id, after, limit)
    }

    pub fn transfer(&self, id: Txid) -> Result<Option<TransferView>> {
        read::transfer(&self.db, id)
    }

    /// The writer, also after a panic in another commit: a commit changes
    /// the cached meta only after RocksDB took the batch, and the next
    /// commit cuts any event records a failed one left.
    fn writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Appends one record per batch and syncs them with one flush, moving
/// `meta`'s chain head, last record and applied index along.
fn append_events(events: &mut EventLog, meta: &mut Meta, batches: &[AppliedBatch]) -> Result<()> {
    for batch in batches {
        let seq = meta.events_last.map_or(1, |last| last + 1);
        meta.chain_head = events.append(seq, &meta.chain_head, batch)?;
        meta.events_last = Some(seq);
        meta.applied_index = Some(batch.log_index);
    }
    if !batches.is_empty() {
        events.sync()?;
    }
    Ok(())
}

/// The guest's committed state, read with batched multi-gets. Cheap to
/// clone; it keeps the database open while it lives.
#[derive(Clone)]
pub struct GuestState {
    db: Arc<DB>,
}

impl StateSource for GuestState {
    fn get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        let guest = cf(&self.db, GUEST);
        let found = self.db.batched_multi_get_cf(guest, keys, false);
        found
            .into_iter()
            .map(|value| {
                let value = value.map_err(rocks("reading guest state"))?;
                Ok(value.map(|v| v.to_vec()))
            })
            .collect()
    }
}
