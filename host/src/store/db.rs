//! The state database: its column families and the meta record.

use crate::coordinator::InFlight;
use crate::node::Layout;
use crate::partition::Splits;
use crate::rocks::{self, Tuning, cf, rocks};
use crate::sm::{Schedule, VersionHash};
use crate::tokens::StoredToken;
use crate::{Error, Result};
use rocksdb::DB;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The database's directory inside a store directory.
pub const DB_DIR: &str = "db";

/// The guest's opaque keys and values.
pub(super) const GUEST: &str = "guest";
/// State-machine components by hash.
pub(super) const VERSIONS: &str = "versions";
/// The one `Meta` record, and the tokens (`token/<id>`: postcard of a
/// `StoredToken`).
pub(super) const META: &str = "meta";

pub(super) const FAMILIES: [&str; 3] = [GUEST, VERSIONS, META];

const META_KEY: &[u8] = b"meta";
/// The version schedule (postcard of a `Schedule`).
const SCHEDULE_KEY: &[u8] = b"schedule";
const TOKEN_PREFIX: &[u8] = b"token/";
/// The coordinator's journal (`inflight/<txid>`: postcard of an
/// `InFlight`, see `crate::coordinator::journal`).
const IN_FLIGHT_PREFIX: &[u8] = b"inflight/";
/// The index whose activation's migration the state last went through
/// (`u64` little endian): written with the migration's writes, so that one
/// committed before a crash is not run again when the log replays.
const MIGRATED_KEY: &[u8] = b"migrated";
/// What the partition holds after its splits (postcard of a
/// `partition::Splits`); absent before its first.
const SPLITS_KEY: &[u8] = b"splits";
/// The map and the split under way, in partition 0 (postcard of a
/// `node::Layout`).
const LAYOUT_KEY: &[u8] = b"layout";
/// The first byte of the meta value. Format 1 was written by the release
/// that ran `wallet:statemachine@1.0.0`.
const META_FORMAT: u8 = 2;
const META_FORMAT_CONTRACT_1: u8 = 1;

/// What the store last committed, in the same write as the state it
/// describes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// The last applied Raft log id, serialized by the caller (opaque here).
    pub applied: Option<Vec<u8>>,
    /// Its index; 0 before the first.
    pub applied_index: u64,
    /// The last membership, serialized by the caller (opaque here).
    pub membership: Option<Vec<u8>>,
    /// The event hash chain head; zeros at genesis.
    pub chain_head: [u8; 32],
    /// The last event-log record (one per applied batch); 0 before the
    /// first.
    pub events_last: u64,
    /// The effective time of the last batch, which the next one may not
    /// go below.
    pub timestamp_ms: u64,
    /// Written by releases before the version schedule: the version that
    /// ran this store's history from genesis (`Schedule::genesis`). New
    /// stores keep their schedule under its own key.
    pub genesis_version: Option<VersionHash>,
}

/// Where the replaced database waits, during an install, to be removed.
const OLD_DB_DIR: &str = "db.old";

fn install_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::StoreFailed(format!("installing a snapshot at {}: {e}", path.display()))
}

/// Moves the checkpoint `from` into place as the store's database: the
/// current one aside first, then the checkpoint in, then the directory
/// synced. [`finish_install`] completes an install a crash interrupted.
pub(super) fn move_in(store_dir: &Path, from: &Path) -> Result<()> {
    let current = store_dir.join(DB_DIR);
    let old = store_dir.join(OLD_DB_DIR);
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(install_err(&old))?;
    }
    std::fs::rename(&current, &old).map_err(install_err(&current))?;
    std::fs::rename(from, &current).map_err(install_err(from))?;
    crate::log::sync_dir(store_dir)
}

/// Completes or undoes an install: with no database in place, the old one
/// goes back (the install did not happen; the leader sends the snapshot
/// again); with one in place, the old one is removed.
pub(super) fn finish_install(store_dir: &Path) -> Result<()> {
    let current = store_dir.join(DB_DIR);
    let old = store_dir.join(OLD_DB_DIR);
    if !old.exists() {
        return Ok(());
    }
    if current.exists() {
        std::fs::remove_dir_all(&old).map_err(install_err(&old))
    } else {
        std::fs::rename(&old, &current).map_err(install_err(&old))?;
        crate::log::sync_dir(store_dir)
    }
}

pub(super) fn open(path: &Path, tuning: &Tuning) -> Result<DB> {
    rocks::open(path, &FAMILIES, tuning)
}

pub(super) fn encode_meta(meta: &Meta) -> Vec<u8> {
    let mut buf = vec![META_FORMAT];
    postcard::to_io(meta, &mut buf).expect("a meta record serializes into memory");
    buf
}

pub(super) fn decode_meta(bytes: &[u8]) -> Result<Meta> {
    match bytes.split_first() {
        Some((&META_FORMAT, rest)) => postcard::from_bytes(rest).map_err(|e| Error::CorruptValue {
            cf: META,
            why: format!("decode: {e}"),
        }),
        Some((&META_FORMAT_CONTRACT_1, _)) => Err(Error::OtherContract {
            found: "wallet:statemachine@1.0.0".into(),
        }),
        Some((format, _)) => Err(Error::CorruptValue {
            cf: META,
            why: format!("unknown meta format {format}"),
        }),
        None => Err(Error::CorruptValue {
            cf: META,
            why: "empty meta value".into(),
        }),
    }
}

pub(super) fn meta_key() -> &'static [u8] {
    META_KEY
}

pub(super) fn token_key(id: &str) -> Vec<u8> {
    [TOKEN_PREFIX, id.as_bytes()].concat()
}

pub(super) fn encode_token(token: &StoredToken) -> Vec<u8> {
    postcard::to_allocvec(token).expect("a token serializes into memory")
}

/// Every token the state holds.
pub(super) fn read_tokens(db: &DB) -> Result<Vec<StoredToken>> {
    let mut tokens = Vec::new();
    let prefix = rocksdb::IteratorMode::From(TOKEN_PREFIX, rocksdb::Direction::Forward);
    for item in db.iterator_cf(cf(db, META), prefix) {
        let (key, value) = item.map_err(rocks("reading the tokens"))?;
        if !key.starts_with(TOKEN_PREFIX) {
            break;
        }
        let token = postcard::from_bytes(&value).map_err(|e| Error::CorruptValue {
            cf: META,
            why: format!("token {}: {e}", String::from_utf8_lossy(&key)),
        })?;
        tokens.push(token);
    }
    Ok(tokens)
}

pub(super) fn in_flight_key(id: wallet_core::Txid) -> Vec<u8> {
    [IN_FLIGHT_PREFIX, &id.0.to_be_bytes()[..]].concat()
}

/// Every transfer the coordinator's journal holds, oldest id first.
pub(super) fn read_in_flight(db: &DB) -> Result<Vec<InFlight>> {
    let mut found = Vec::new();
    let from = rocksdb::IteratorMode::From(IN_FLIGHT_PREFIX, rocksdb::Direction::Forward);
    for item in db.iterator_cf(cf(db, META), from) {
        let (key, value) = item.map_err(rocks("reading the coordinator's journal"))?;
        if !key.starts_with(IN_FLIGHT_PREFIX) {
            break;
        }
        found.push(decode_in_flight(&value)?);
    }
    Ok(found)
}

pub(super) fn decode_in_flight(bytes: &[u8]) -> Result<InFlight> {
    postcard::from_bytes(bytes).map_err(|e| Error::CorruptValue {
        cf: META,
        why: format!("a journal record: {e}"),
    })
}

pub(super) fn schedule_key() -> &'static [u8] {
    SCHEDULE_KEY
}

pub(super) fn encode_schedule(schedule: &Schedule) -> Vec<u8> {
    postcard::to_allocvec(schedule).expect("a schedule serializes into memory")
}

/// The committed schedule; for a store written before schedules, the one
/// its meta implies.
pub(super) fn read_schedule(db: &DB, meta: &Meta) -> Result<Schedule> {
    let bytes = db
        .get_pinned_cf(cf(db, META), SCHEDULE_KEY)
        .map_err(rocks("reading the version schedule"))?;
    match bytes {
        Some(bytes) => postcard::from_bytes(&bytes).map_err(|e| Error::CorruptValue {
            cf: META,
            why: format!("version schedule: {e}"),
        }),
        None => Ok(meta
            .genesis_version
            .map(Schedule::genesis)
            .unwrap_or_default()),
    }
}

pub(super) fn migrated_key() -> &'static [u8] {
    MIGRATED_KEY
}

/// The index of the last migration the state went through, if any.
pub(super) fn read_migrated(db: &DB) -> Result<Option<u64>> {
    let bytes = db
        .get_pinned_cf(cf(db, META), MIGRATED_KEY)
        .map_err(rocks("reading the last migration"))?;
    bytes
        .map(|b| {
            <[u8; 8]>::try_from(&b[..])
                .map(u64::from_le_bytes)
                .map_err(|_| Error::CorruptValue {
                    cf: META,
                    why: format!("the last migration's index has {} bytes", b.len()),
                })
        })
        .transpose()
}

pub(super) fn splits_key() -> &'static [u8] {
    SPLITS_KEY
}

pub(super) fn encode_splits(splits: &Splits) -> Vec<u8> {
    postcard::to_allocvec(splits).expect("splits serialize")
}

/// What the partition holds after its splits; `None` before its first.
pub(super) fn read_splits(db: &DB) -> Result<Option<Splits>> {
    read_postcard(db, SPLITS_KEY, "splits")
}

pub(super) fn layout_key() -> &'static [u8] {
    LAYOUT_KEY
}

/// The map partition 0 holds; `None` before its first map entry.
pub(super) fn read_layout(db: &DB) -> Result<Option<Layout>> {
    read_postcard(db, LAYOUT_KEY, "layout")
}

/// The meta value at `key`, postcard-encoded, if there is one.
fn read_postcard<T: serde::de::DeserializeOwned>(
    db: &DB,
    key: &[u8],
    what: &str,
) -> Result<Option<T>> {
    let bytes = db
        .get_pinned_cf(cf(db, META), key)
        .map_err(rocks("reading a meta value"))?;
    bytes
        .map(|b| {
            postcard::from_bytes(&b).map_err(|e| Error::CorruptValue {
                cf: META,
                why: format!("{what}: {e}"),
            })
        })
        .transpose()
}

/// The committed meta; the genesis meta for a new store.
pub(super) fn read_meta(db: &DB) -> Result<Meta> {
    let bytes = db
        .get_pinned_cf(cf(db, META), META_KEY)
        .map_err(rocks("reading meta"))?;
    bytes.map_or_else(|| Ok(Meta::default()), |b| decode_meta(&b))
}

/// The meta of a store that may be in use by a running node; `None` where
/// there is no database.
/// The component that ran a store's history from genesis, for a store
/// written before the version schedule (whose log has no deploy entries);
/// `None` for any other. `store_dir` may be in use by a running node.
pub fn genesis_version_read_only(store_dir: &Path) -> Result<Option<Vec<u8>>> {
    let path = store_dir.join(DB_DIR);
    let Some(hash) = read_meta_read_only(&path)?.and_then(|m| m.genesis_version) else {
        return Ok(None);
    };
    rocks::read_only_value(&path, &FAMILIES, VERSIONS, &hash.0)?
        .map(Some)
        .ok_or(Error::UnknownVersion(hash))
}

/// Every stored component under the name it is stored by (its hash, as
/// the store was given it), for an audit to check.
pub fn stored_versions_read_only(store_dir: &Path) -> Result<rocks::Entries> {
    rocks::read_only_entries(&store_dir.join(DB_DIR), &FAMILIES, VERSIONS)
}

/// What a snapshot's checkpoint holds of the state machine: where a
/// verification of the history after it starts.
pub struct CheckpointState {
    pub meta: Meta,
    pub schedule: Schedule,
    /// The index of the last migration its state went through.
    pub migrated: Option<u64>,
    /// What the partition held after its splits, if it had any.
    pub splits: Option<Splits>,
    /// Every component deployed by then, under its hash.
    pub components: rocks::Entries,
    /// The guest's keys and values, read in place.
    pub guest: GuestReader,
}

/// The guest state of a checkpoint open read-only: a key at a time, so
/// that a large state is not loaded whole.
pub struct GuestReader {
    db: DB,
}

impl GuestReader {
    /// Calls `f` with the value of `key`, without copying it.
    pub fn read<R>(&self, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> Result<R> {
        let value = self
            .db
            .get_pinned_cf(cf(&self.db, GUEST), key)
            .map_err(rocks("reading a checkpoint's state"))?;
        Ok(f(value.as_deref()))
    }

    /// Every record, in key order.
    pub fn records(&self) -> Result<rocks::Entries> {
        rocks::entries(&self.db, GUEST)
    }
}

/// Opens the checkpoint at `path` (a snapshot's `db/`).
pub fn read_checkpoint(path: &Path) -> Result<CheckpointState> {
    let db = rocks::open_read_only(path, &FAMILIES, &FAMILIES)?
        .ok_or_else(|| Error::StoreFailed(format!("{} holds no checkpoint", path.display())))?;
    let meta = read_meta(&db)?;
    Ok(CheckpointState {
        schedule: read_schedule(&db, &meta)?,
        migrated: read_migrated(&db)?,
        splits: read_splits(&db)?,
        components: rocks::entries(&db, VERSIONS)?,
        meta,
        guest: GuestReader { db },
    })
}

pub(crate) fn read_meta_read_only(path: &Path) -> Result<Option<Meta>> {
    rocks::read_only_value(path, &FAMILIES, META, META_KEY)?
        .map(|bytes| decode_meta(&bytes))
        .transpose()
}
