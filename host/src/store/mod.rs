//! The write side of one partition replica: what the rules need and nothing
//! the read side can derive. RocksDB holds the guest's state, the versions
//! and the meta (applied log id, chain head); the event log holds every
//! batch's events, hash-chained.
//!
//! One durable write per batch, and it is the Raft log's: RocksDB is
//! written without its WAL, the applied log id in the same write batch as
//! the state it describes, and the event log is not synced per batch. A
//! crash loses at most what was not flushed, and the node replays the Raft
//! log from the applied id RocksDB holds (openraft applies every committed
//! entry after it). Two rules make that sound:
//!
//! - the event log is synced before RocksDB flushes (every flush goes
//!   through [`Store::flush`], which holds the writer while it syncs and
//!   switches memtables, and the store flushes long before a memtable
//!   fills, and a migration's one large write gets memtables of its own,
//!   so RocksDB never flushes on its own); so the event log always
//!   holds every batch the durable state has applied;
//! - a batch applied again finds its event record already in the log and
//!   checks that it made the same bytes (`EventLog::append`).
//!
//! - `db`: column families and the meta record.
//! - `events`: the event log, its record format and hash chain.
//! - `cache`: the bounded cache of hot guest state.

mod cache;
mod db;
mod events;
mod split;

pub(crate) use db::read_meta_read_only;
pub use db::{
    CheckpointState, DB_DIR, GuestReader, Meta, genesis_version_read_only, read_checkpoint,
    stored_versions_read_only,
};
pub use events::{
    BatchEvents, EVENTS_DIR, EventLog, Record, RecordHeader, chain_next, encode_record,
    read_events, recompute_balances,
};
pub use split::Seed;

use crate::coordinator::{InFlight, journal};
use crate::log::LogOptions;
use crate::rocks::{self, Tuning, cf, rocks};
use crate::sm::{
    Answer, OwnedWrite, Schedule, StateSource, VersionChange, VersionHash, VersionInfo,
    VersionOutcome,
};
use crate::tokens::{Registry, TokenChange, TokenInfo, TokenOutcome};
use crate::{Error, Result};
use cache::StateCache;
use db::{FAMILIES, GUEST, META, VERSIONS};
use rocksdb::checkpoint::Checkpoint;
use rocksdb::{DB, WriteBatch};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use wallet_core::codec::ValuesWriter;

/// The guest's committed state, record by record in key order.
pub type GuestRecords<'a> = dyn Iterator<Item = Result<(Box<[u8]>, Box<[u8]>)>> + 'a;

/// How the store uses memory and disk.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Bytes written to RocksDB between two flushes of the store's own.
    pub flush_bytes: usize,
    /// The hot-state cache.
    pub cache_bytes: usize,
    /// Event-log segment size.
    pub segment_bytes: usize,
    pub tuning: Tuning,
}

/// What the state machine last applied, for the read side to follow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The last applied Raft log index; 0 before the first.
    pub index: u64,
    /// The last event-log record; 0 before the first.
    pub events_last: u64,
}

/// How long [`Store::flush`] waits for RocksDB to finish a flush.
const FLUSH_WAIT_MAX: Duration = Duration::from_secs(120);

/// The store of one partition replica. Commits come from one thread (the
/// state machine's); flushes, checkpoints and reads may come from others.
pub struct Store {
    dir: PathBuf,
    tuning: Tuning,
    events: Arc<EventLog>,
    writer: Mutex<Writer>,
    flush_bytes: usize,
    applied: watch::Sender<Applied>,
    /// The tokens the database holds, for every request to authenticate
    /// against.
    tokens: RwLock<Registry>,
}

/// What only a commit (or a flush) touches.
struct Writer {
    /// Under the writer so that installing a snapshot can replace it;
    /// `None` only if an install failed to open the database.
    db: Option<Arc<DB>>,
    /// Equal to the meta record in RocksDB.
    meta: Meta,
    /// Equal to the schedule in RocksDB.
    schedule: Schedule,
    /// Equal to the last migration's index in RocksDB.
    migrated: Option<u64>,
    cache: StateCache,
    /// Bytes written since the last flush.
    unflushed: usize,
    /// Reused for every event record.
    record: Vec<u8>,
}

impl Store {
    /// Opens the store in `dir`, creating it if absent. Refuses a database
    /// missing a column family, one written under another contract, and an
    /// event log that lacks committed records or disagrees with the
    /// committed chain head.
    pub fn open(dir: &Path, options: &StoreOptions) -> Result<Store> {
        db::finish_install(dir)?;
        let db = db::open(&dir.join(DB_DIR), &options.tuning)?;
        let meta = db::read_meta(&db)?;
        let log_options = LogOptions {
            segment_bytes: options.segment_bytes,
        };
        let events = EventLog::open(dir, log_options)?;
        events.check_against(&meta)?;
        let tokens = Registry::new(db::read_tokens(&db)?);
        let schedule = db::read_schedule(&db, &meta)?;
        let migrated = db::read_migrated(&db)?;
        let (applied, _) = watch::channel(Applied {
            index: meta.applied_index,
            events_last: meta.events_last,
        });
        Ok(Store {
            dir: dir.to_path_buf(),
            tuning: options.tuning.clone(),
            events: Arc::new(events),
            writer: Mutex::new(Writer {
                db: Some(Arc::new(db)),
                meta,
                schedule,
                migrated,
                cache: StateCache::new(options.cache_bytes),
                unflushed: 0,
                record: Vec::new(),
            }),
            flush_bytes: options.flush_bytes,
            applied,
            tokens: RwLock::new(tokens),
        })
    }

    /// The writer, also after a panic in another thread: a commit changes
    /// the cached meta only after RocksDB took its batch.
    fn writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The store's directory, where a test places its faults.
    #[cfg(feature = "fault-injection")]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What was last committed.
    pub fn meta(&self) -> Meta {
        self.writer().meta.clone()
    }

    /// The last applied Raft log index; 0 before the first.
    pub fn applied_index(&self) -> u64 {
        self.writer().meta.applied_index
    }

    /// The effective time of the last applied batch.
    pub fn timestamp_ms(&self) -> u64 {
        self.writer().meta.timestamp_ms
    }

    /// The event log, for the read side.
    pub fn event_log(&self) -> Arc<EventLog> {
        Arc::clone(&self.events)
    }

    /// Follows what the state machine applies.
    pub fn subscribe(&self) -> watch::Receiver<Applied> {
        self.applied.subscribe()
    }

    /// The guest's committed state, for prefetch.
    pub fn state(&self) -> GuestState<'_> {
        GuestState { store: self }
    }

    /// Commits one applied batch: its event record (made again and checked,
    /// when the batch is applied again after a crash), then one RocksDB
    /// write with the guest's writes and the meta. `answer` is `None` for a
    /// batch the version failed (`header.failure` says why).
    pub fn commit_batch(
        &self,
        log_id: Vec<u8>,
        header: &RecordHeader,
        answer: Option<&Answer>,
        journal: &[journal::Change],
    ) -> Result<()> {
        let mut guard = self.writer();
        let w = &mut *guard;
        let (events, offsets) =
            answer.map_or((&[][..], &[][..]), |a| (a.events(), a.event_offsets()));
        let meta = self.append_record(w, log_id, header, events, offsets)?;

        let mut batch = WriteBatch::default();
        let db = w.db()?;
        let guest = cf(db, GUEST);
        // In key order, each memtable insert starts its skip-list search
        // from where the previous one ended (a stable sort: the last write
        // of a key still wins).
        let mut writes: Vec<_> = answer.into_iter().flat_map(Answer::writes).collect();
        writes.sort_by_key(|(key, _)| *key);
        for &(key, value) in &writes {
            match value {
                Some(value) => batch.put_cf(guest, key, value),
                None => batch.delete_cf(guest, key),
            }
        }
        put_journal(db, &mut batch, journal);
        self.write(w, batch, meta)?;
        for (key, value) in writes {
            w.cache.put(key, value);
        }
        Ok(())
    }

    /// Appends the event record of the entry at `header.log_index` (made
    /// again and checked, when it is applied again after a crash); answers
    /// the meta that records it, for the caller's write.
    fn append_record(
        &self,
        w: &mut Writer,
        log_id: Vec<u8>,
        header: &RecordHeader,
        events: &[u8],
        offsets: &[u32],
    ) -> Result<Meta> {
        let seq = w.meta.events_last + 1;
        encode_record(&w.meta.chain_head, header, events, offsets, &mut w.record);
        self.events.append(seq, &w.record)?;
        let mut meta = w.meta.clone();
        meta.applied = Some(log_id);
        meta.applied_index = header.log_index;
        meta.chain_head = chain_next(&w.record);
        meta.events_last = seq;
        meta.timestamp_ms = header.timestamp_ms;
        Ok(meta)
    }

    /// Commits an entry that closes finished transfers in the
    /// coordinator's journal.
    pub fn commit_finished(&self, log_id: Vec<u8>, index: u64, ids: &[u128]) -> Result<()> {
        let mut guard = self.writer();
        let w = &mut *guard;
        let mut meta = w.meta.clone();
        meta.applied = Some(log_id);
        meta.applied_index = index;
        let mut batch = WriteBatch::default();
        let closes: Vec<_> = ids
            .iter()
            .map(|&id| journal::Change::Close(wallet_core::Txid(id)))
            .collect();
        put_journal(w.db()?, &mut batch, &closes);
        self.write(w, batch, meta)
    }

    /// The cross-partition transfers this partition started and has not
    /// finished.
    pub fn in_flight(&self) -> Result<Vec<InFlight>> {
        let db = Arc::clone(self.writer().db()?);
        db::read_in_flight(&db)
    }

    /// Commits an entry that carries no batch (a blank or membership
    /// entry): the meta moves on.
    pub fn commit_marker(
        &self,
        log_id: Vec<u8>,
        index: u64,
        membership: Option<Vec<u8>>,
    ) -> Result<()> {
        let mut guard = self.writer();
        let w = &mut *guard;
        let mut meta = w.meta.clone();
        meta.applied = Some(log_id);
        meta.applied_index = index;
        meta.membership = membership.or(meta.membership);
        self.write(w, WriteBatch::default(), meta)
    }

    /// Commits an entry that changes the tokens; returns what it did.
    pub fn commit_tokens(
        &self,
        log_id: Vec<u8>,
        index: u64,
        change: &TokenChange,
    ) -> Result<TokenOutcome> {
        let mut guard = self.writer();
        let w = &mut *guard;
        let (outcome, writes) = self.registry().decide(change);
        let mut batch = WriteBatch::default();
        let db = w.db()?;
        for token in &writes.put {
            batch.put_cf(
                cf(db, META),
                db::token_key(&token.id),
                db::encode_token(token),
            );
        }
        for id in &writes.delete {
            batch.delete_cf(cf(db, META), db::token_key(id));
        }
        let mut meta = w.meta.clone();
        meta.applied = Some(log_id);
        meta.applied_index = index;
        self.write(w, batch, meta)?;
        self.tokens
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .apply(writes);
        Ok(outcome)
    }

    fn registry(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.tokens.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Who `token` is from, if the state knows it and it has not expired.
    pub fn authenticate(&self, token: &str, now_ms: u64) -> Option<wallet_core::Caller<String>> {
        self.registry().authenticate(token, now_ms)
    }

    /// Every token, oldest first.
    pub fn tokens(&self) -> Vec<TokenInfo> {
        self.registry().list()
    }

    pub fn has_tokens(&self) -> bool {
        !self.registry().is_empty()
    }

    /// Adds the meta to `batch` and writes it.
    fn write(&self, w: &mut Writer, mut batch: WriteBatch, meta: Meta) -> Result<()> {
        let db = w.db()?;
        batch.put_cf(cf(db, META), db::meta_key(), db::encode_meta(&meta));
        let bytes = batch.size_in_bytes();
        db.write_opt(batch, &rocks::write_options())
            .map_err(rocks("committing a batch"))?;
        w.meta = meta;
        w.unflushed += bytes;
        Ok(())
    }

    /// Tells the read side what is applied; called after every apply.
    pub fn publish(&self) {
        let meta = self.meta();
        self.applied.send_replace(Applied {
            index: meta.applied_index,
            events_last: meta.events_last,
        });
    }

    /// Starts a flush once enough was written since the last one, well
    /// before a memtable fills (which would make RocksDB flush by itself).
    pub fn flush_if_due(&self) -> Result<()> {
        let mut w = self.writer();
        if w.unflushed < self.flush_bytes {
            return Ok(());
        }
        self.start_flush(&mut w).map(|_| ())
    }

    /// Syncs the event log, then switches every memtable for flushing;
    /// under the writer, so no batch commits in between. Returns the
    /// applied index the flush covers.
    fn start_flush(&self, w: &mut Writer) -> Result<u64> {
        self.events.sync()?;
        rocks::flush_all(w.db()?, &FAMILIES, false)?;
        w.unflushed = 0;
        Ok(w.meta.applied_index)
    }

    /// Makes everything applied so far durable in RocksDB (and its events
    /// in the event log); returns the applied index that is now durable.
    /// Batches may go on committing while the flush is written.
    pub fn flush(&self) -> Result<u64> {
        let (index, db) = {
            let mut w = self.writer();
            (self.start_flush(&mut w)?, Arc::clone(w.db()?))
        };
        Self::wait_for_flushes(&db)?;
        Ok(index)
    }

    /// Waits until no memtable is left waiting to be flushed.
    fn wait_for_flushes(db: &DB) -> Result<()> {
        let started = Instant::now();
        loop {
            let mut pending = 0;
            for name in FAMILIES {
                let family = cf(db, name);
                for property in [
                    "rocksdb.num-immutable-mem-table",
                    "rocksdb.background-errors",
                ] {
                    let value = db
                        .property_int_value_cf(family, property)
                        .map_err(rocks("reading flush progress"))?
                        .unwrap_or(0);
                    if property == "rocksdb.background-errors" && value > 0 {
                        return Err(Error::StoreFailed(
                            "RocksDB stopped after a background error (see its LOG)".into(),
                        ));
                    }
                    pending += value;
                }
            }
            if pending == 0 {
                return Ok(());
            }
            if started.elapsed() > FLUSH_WAIT_MAX {
                return Err(Error::StoreFailed(format!(
                    "a flush did not finish in {} s",
                    FLUSH_WAIT_MAX.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Writes a RocksDB checkpoint (hard links where possible) into `dir`,
    /// which must not exist, and returns the meta inside it: the applied
    /// log id and chain head the checkpoint is at.
    pub fn checkpoint(&self, dir: &Path) -> Result<Meta> {
        // Most of the memtables first, while batches go on; then the rest
        // under the writer, with the event log synced before it.
        self.flush()?;
        {
            let w = self.writer();
            self.events.sync()?;
            let checkpoint = Checkpoint::new(&**w.db()?).map_err(rocks("checkpoint"))?;
            checkpoint
                .create_checkpoint(dir)
                .map_err(rocks("creating a checkpoint"))?;
        }
        let meta = db::read_meta_read_only(dir)?;
        Ok(meta.unwrap_or_default())
    }

    /// Replaces the state with a snapshot's checkpoint (a RocksDB directory
    /// on the same filesystem, moved into place), whose records the event
    /// log must already hold. Returns the meta it is at.
    pub fn install(&self, checkpoint: &Path) -> Result<Meta> {
        let mut w = self.writer();
        let meta = db::read_meta_read_only(checkpoint)?.unwrap_or_default();
        self.events.check_against(&meta)?;
        // The durable state is never ahead of the event log.
        self.events.sync()?;
        // RocksDB locks a database by its path within the process: the old
        // one closes (once a flush still holding it lets go) before the
        // new one opens at the same path.
        let old = w.db.take();
        if let Some(old) = old {
            close(old);
        }
        let path = self.dir.join(DB_DIR);
        let opened =
            db::move_in(&self.dir, checkpoint).and_then(|()| db::open(&path, &self.tuning));
        let db = match opened {
            Ok(db) => db,
            Err(error) => {
                // Whatever is in place (the old state, if the move failed).
                db::finish_install(&self.dir)?;
                w.db = db::open(&path, &self.tuning).ok().map(Arc::new);
                return Err(error);
            }
        };
        let installed = db::read_meta(&db)?;
        *self.tokens.write().unwrap_or_else(PoisonError::into_inner) =
            Registry::new(db::read_tokens(&db)?);
        w.schedule = db::read_schedule(&db, &installed)?;
        w.migrated = db::read_migrated(&db)?;
        w.db = Some(Arc::new(db));
        w.meta = installed.clone();
        w.cache.clear();
        w.unflushed = 0;
        db::finish_install(&self.dir)?;
        drop(w);
        self.publish();
        Ok(installed)
    }

    /// Commits an entry that changes the version schedule (a deployed
    /// version's bytes in the same write); returns what it did.
    pub fn commit_versions(
        &self,
        log_id: Vec<u8>,
        index: u64,
        change: &VersionChange,
    ) -> Result<VersionOutcome> {
        let mut guard = self.writer();
        let w = &mut *guard;
        let mut schedule = w.schedule.clone();
        let outcome = schedule.apply(change, index);
        let mut batch = WriteBatch::default();
        let db = w.db()?;
        if let Some(bytes) = change.component() {
            let hash = VersionHash::of(bytes);
            if schedule.is_deployed(hash) {
                batch.put_cf(cf(db, VERSIONS), hash.0, bytes);
            }
        }
        batch.put_cf(
            cf(db, META),
            db::schedule_key(),
            db::encode_schedule(&schedule),
        );
        let mut meta = w.meta.clone();
        meta.applied = Some(log_id);
        meta.applied_index = index;
        self.write(w, batch, meta)?;
        w.schedule = schedule;
        Ok(outcome)
    }

    /// The version whose activation the log reaches at `index`, if its
    /// migration (if it has one) has not run yet: it runs before that
    /// entry is applied.
    pub fn switch_at(&self, index: u64) -> Option<VersionHash> {
        let w = self.writer();
        w.schedule
            .activated_from(index)
            .filter(|_| w.migrated != Some(index))
    }

    /// Calls `f` with every record of the guest's committed state, in key
    /// order.
    pub fn with_guest_records<R>(&self, f: impl FnOnce(&mut GuestRecords<'_>) -> R) -> Result<R> {
        let db = Arc::clone(self.writer().db()?);
        let mut records = db
            .iterator_cf(cf(&db, GUEST), rocksdb::IteratorMode::Start)
            .map(|record| record.map_err(rocks("reading guest state")));
        Ok(f(&mut records))
    }

    /// Commits the writes of the migration run before the entry at
    /// `index` (none if it failed), and that it ran; the applied index
    /// stays. One write, which may be larger than a memtable: it goes into
    /// a memtable of its own, switched for flushing before and after it
    /// with the event log synced, so RocksDB never flushes by itself.
    pub fn commit_migration(&self, index: u64, writes: &[OwnedWrite]) -> Result<()> {
        let mut guard = self.writer();
        let w = &mut *guard;
        self.start_flush(w)?;
        let mut batch = WriteBatch::default();
        let db = w.db()?;
        for (key, value) in writes {
            match value {
                Some(value) => batch.put_cf(cf(db, GUEST), key, value),
                None => batch.delete_cf(cf(db, GUEST), key),
            }
        }
        batch.put_cf(cf(db, META), db::migrated_key(), index.to_le_bytes());
        let meta = w.meta.clone();
        self.write(w, batch, meta)?;
        self.start_flush(w)?;
        w.migrated = Some(index);
        // A migration rewrites most of the state: forgetting the cache is
        // cheaper than rewriting it, and hot records come back on the next
        // reads.
        w.cache.clear();
        Ok(())
    }

    /// The version that runs the entry at `index`.
    pub fn version_at(&self, index: u64) -> Option<VersionHash> {
        self.writer().schedule.version_at(index)
    }

    /// The schedule as last committed.
    pub fn schedule(&self) -> Schedule {
        self.writer().schedule.clone()
    }

    /// Every deployed version and where it stands now.
    pub fn versions(&self) -> Vec<VersionInfo> {
        let w = self.writer();
        w.schedule.list(w.meta.applied_index)
    }

    /// A deployed version's component bytes.
    pub fn version(&self, hash: VersionHash) -> Result<Option<Vec<u8>>> {
        let db = Arc::clone(self.writer().db()?);
        db.get_cf(cf(&db, VERSIONS), hash.0)
            .map_err(rocks("reading a version"))
    }

    /// Stores `bytes` under the name `hash` whatever they hash to: a
    /// damaged component, for an audit to find.
    #[cfg(feature = "fault-injection")]
    pub fn tamper_version(&self, hash: VersionHash, bytes: &[u8]) -> Result<()> {
        let mut guard = self.writer();
        let w = &mut *guard;
        let mut batch = WriteBatch::default();
        batch.put_cf(cf(w.db()?, VERSIONS), hash.0, bytes);
        let meta = w.meta.clone();
        self.write(w, batch, meta)
    }

    /// Makes this a store as releases before the version schedule wrote
    /// it: `bytes` ran its history from genesis.
    #[cfg(feature = "fault-injection")]
    pub fn set_genesis_version(&self, bytes: &[u8]) -> Result<()> {
        let hash = VersionHash::of(bytes);
        let mut guard = self.writer();
        let w = &mut *guard;
        let mut batch = WriteBatch::default();
        batch.put_cf(cf(w.db()?, VERSIONS), hash.0, bytes);
        let mut meta = w.meta.clone();
        meta.genesis_version = Some(hash);
        self.write(w, batch, meta)?;
        w.schedule = Schedule::genesis(hash);
        Ok(())
    }
}

impl Writer {
    fn db(&self) -> Result<&Arc<DB>> {
        self.db.as_ref().ok_or_else(|| {
            Error::StoreFailed(
                "the state database did not reopen after a failed snapshot install".into(),
            )
        })
    }
}

/// Closes a database once no one else holds it.
/// Writes the journal's changes into a batch's write.
fn put_journal(db: &DB, batch: &mut WriteBatch, changes: &[journal::Change]) {
    for change in changes {
        match change {
            journal::Change::Open(record) => batch.put_cf(
                cf(db, META),
                db::in_flight_key(wallet_core::Txid(record.id)),
                postcard::to_allocvec(record).expect("a journal record serializes"),
            ),
            journal::Change::Close(id) => batch.delete_cf(cf(db, META), db::in_flight_key(*id)),
        }
    }
}

fn close(db: Arc<DB>) {
    let started = Instant::now();
    while Arc::strong_count(&db) > 1 && started.elapsed() < FLUSH_WAIT_MAX {
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(db);
}

/// The guest's committed state, read through the hot-state cache and, for
/// what it misses, one batched multi-get.
pub struct GuestState<'s> {
    store: &'s Store,
}

impl StateSource for GuestState<'_> {
    fn read(&mut self, keys: &[&[u8]], values: &mut ValuesWriter) -> Result<()> {
        let store = self.store;
        let mut w = store.writer();
        let hits: Vec<bool> = keys.iter().map(|k| w.cache.get(k).is_some()).collect();
        let misses: Vec<&[u8]> = keys
            .iter()
            .zip(&hits)
            .filter(|(_, hit)| !**hit)
            .map(|(k, _)| *k)
            .collect();
        let db = Arc::clone(w.db()?);
        let fetched = db.batched_multi_get_cf(cf(&db, GUEST), &misses, false);
        let mut fetched = fetched.into_iter();
        let encode = |e: wallet_core::codec::EncodeError| Error::StateRead(e.to_string());
        for (key, hit) in keys.iter().zip(hits) {
            if hit {
                values.push(w.cache.get(key)).map_err(encode)?;
                continue;
            }
            let value = fetched
                .next()
                .ok_or_else(|| Error::StateRead("a key went unanswered".into()))?
                .map_err(rocks("reading guest state"))?;
            values.push(value.as_deref()).map_err(encode)?;
            if let Some(value) = value {
                w.cache.put(key, Some(&value));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_migration_commits_with_its_index_and_is_not_due_again_after_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = crate::test_support::options().store;
        let store = Store::open(dir.path(), &options).expect("opens");
        let bytes = b"a component".to_vec();
        let hash = VersionHash::of(&bytes);
        let bootstrap = VersionChange::Bootstrap(bytes);
        store
            .commit_versions(b"1".to_vec(), 1, &bootstrap)
            .expect("commits");
        assert_eq!(store.switch_at(1), None);
        assert_eq!(store.switch_at(2), Some(hash));

        let writes = vec![(b"ak".to_vec(), Some(b"v2".to_vec()))];
        store.commit_migration(2, &writes).expect("commits");
        assert_eq!(store.switch_at(2), None);
        assert_eq!(store.applied_index(), 1, "the entry at 2 is still to apply");
        store.flush().expect("flushes");
        drop(store);

        let store = Store::open(dir.path(), &options).expect("reopens");
        assert_eq!(store.switch_at(2), None);
        let records = store
            .with_guest_records(|records| records.collect::<Result<Vec<_>>>())
            .expect("opens")
            .expect("reads");
        assert_eq!(records, [(b"ak"[..].into(), b"v2"[..].into())]);
    }
}
