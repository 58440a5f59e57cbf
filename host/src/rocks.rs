//! Opening RocksDB the way both of the node's databases use it: named
//! column families checked at open, written without RocksDB's own WAL (the
//! Raft log is the write-ahead log; see `store`), flushed atomically across
//! families, with a shared block cache.

use crate::{Error, Result};
use rocksdb::{
    BlockBasedIndexType, BlockBasedOptions, ColumnFamily, ColumnFamilyDescriptor, DB,
    DBCompressionType, FlushOptions, Options, WriteOptions,
};
use std::path::Path;

pub use rocksdb::Cache;

/// Memory a database may use, by part.
#[derive(Clone)]
pub struct Tuning {
    /// One memtable of each column family; RocksDB flushes a full one by
    /// itself, so the state store keeps this well above what it writes
    /// between its own flushes.
    pub write_buffer_bytes: usize,
    /// Memtables per column family, the active one included.
    pub write_buffers_max: i32,
    /// Uncompressed blocks, shared by every family of every database that
    /// is given the same cache.
    pub block_cache: Cache,
}

impl std::fmt::Debug for Tuning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tuning")
            .field("write_buffer_bytes", &self.write_buffer_bytes)
            .field("write_buffers_max", &self.write_buffers_max)
            .field("block_cache_bytes", &self.block_cache.get_usage())
            .finish()
    }
}

pub fn rocks(context: &'static str) -> impl FnOnce(rocksdb::Error) -> Error {
    move |source| Error::Rocks { context, source }
}

/// The handle of a column family that `open` checked is there.
pub fn cf<'a>(db: &'a DB, name: &str) -> &'a ColumnFamily {
    db.cf_handle(name)
        .expect("the database's column families are checked at open")
}

/// Writes without RocksDB's WAL: durability comes from the Raft log, and
/// a batch lost with the memtable is applied again from it.
pub fn write_options() -> WriteOptions {
    let mut options = WriteOptions::default();
    options.disable_wal(true);
    options
}

/// Opens the database at `path`, creating it with `families` if it does
/// not exist. An existing database missing one of them is refused: it is
/// not this kind of database, or not a whole one, and writing into it
/// would hide that.
pub fn open(path: &Path, families: &[&'static str], tuning: &Tuning) -> Result<DB> {
    std::fs::create_dir_all(path).map_err(|source| Error::DataDir {
        path: path.to_owned(),
        source,
    })?;
    let mut options = Options::default();
    options.create_if_missing(true);
    // A batch spans families; flushing them together keeps every flush,
    // checkpoint and recovery at one batch boundary.
    options.set_atomic_flush(true);
    options.set_max_background_jobs(2);
    options.set_compression_type(DBCompressionType::Lz4);
    let exists = path.join("CURRENT").is_file();
    let mut names: Vec<String> = families.iter().map(|n| n.to_string()).collect();
    if exists {
        let present = DB::list_cf(&options, path).map_err(rocks("listing column families"))?;
        check_families(path, families, &present)?;
        // Unknown extra families (a later version's) must be opened too.
        names = present;
    } else {
        options.create_missing_column_families(true);
    }
    let descriptors = names
        .into_iter()
        .map(|name| ColumnFamilyDescriptor::new(name, family_options(tuning)));
    DB::open_cf_descriptors(&options, path, descriptors).map_err(rocks("open"))
}

fn check_families(path: &Path, wanted: &[&'static str], present: &[String]) -> Result<()> {
    match wanted.iter().find(|w| !present.iter().any(|p| p == *w)) {
        Some(name) => Err(Error::MissingColumnFamily {
            path: path.to_owned(),
            name,
        }),
        None => Ok(()),
    }
}

/// Bloom filters, in the tables and in the memtables: most point reads
/// (idempotency receipts of new transaction ids) miss, and a miss the
/// memtable's filter answers skips a skip-list walk.
///
/// Index and filter blocks are partitioned and cached with high priority:
/// a table's whole filter is a megabyte at a few million keys, and once
/// data blocks pushed it out of the cache, every read that missed it read
/// and checksummed the whole of it again (at 10 million accounts, most of
/// the server's CPU). A partition is one block.
fn family_options(tuning: &Tuning) -> Options {
    let mut table = BlockBasedOptions::default();
    table.set_bloom_filter(10.0, false);
    table.set_block_cache(&tuning.block_cache);
    table.set_index_type(BlockBasedIndexType::TwoLevelIndexSearch);
    table.set_partition_filters(true);
    table.set_cache_index_and_filter_blocks(true);
    table.set_cache_index_and_filter_blocks_with_high_priority(true);
    table.set_pin_top_level_index_and_filter(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    let mut options = Options::default();
    options.set_block_based_table_factory(&table);
    options.set_compression_type(DBCompressionType::Lz4);
    options.set_write_buffer_size(tuning.write_buffer_bytes);
    options.set_max_write_buffer_number(tuning.write_buffers_max);
    options.set_memtable_whole_key_filtering(true);
    options.set_memtable_prefix_bloom_ratio(0.05);
    options
}

/// Flushes every family of `db` together, up to everything written so
/// far; with `wait`, returns once the flush is on disk.
pub fn flush_all(db: &DB, families: &[&str], wait: bool) -> Result<()> {
    let handles: Vec<&ColumnFamily> = families.iter().map(|name| cf(db, name)).collect();
    let mut options = FlushOptions::default();
    options.set_wait(wait);
    db.flush_cfs_opt(&handles, &options)
        .map_err(rocks("flushing memtables"))
}

/// Opens a database that may be open in a running node, read-only (so it
/// never conflicts with the writer), with the families `opened`; `None`
/// where there is no database.
pub fn open_read_only(
    path: &Path,
    families: &[&'static str],
    opened: &[&'static str],
) -> Result<Option<DB>> {
    if !path.join("CURRENT").is_file() {
        return Ok(None);
    }
    let options = Options::default();
    let present = DB::list_cf(&options, path).map_err(rocks("listing column families"))?;
    check_families(path, families, &present)?;
    DB::open_cf_for_read_only(&options, path, opened, false)
        .map(Some)
        .map_err(rocks("open read-only"))
}

/// Keys and their values, in key order.
pub type Entries = Vec<(Box<[u8]>, Box<[u8]>)>;

/// Every key and value of `family`, read as [`open_read_only`] does.
pub fn read_only_entries(
    path: &Path,
    families: &[&'static str],
    family: &'static str,
) -> Result<Entries> {
    let Some(db) = open_read_only(path, families, &[family])? else {
        return Ok(Vec::new());
    };
    entries(&db, family)
}

/// Every key and value of `family` in `db`.
pub fn entries(db: &DB, family: &str) -> Result<Entries> {
    db.iterator_cf(cf(db, family), rocksdb::IteratorMode::Start)
        .map(|item| item.map_err(rocks("reading read-only")))
        .collect()
}

/// One value of `family`, read as [`open_read_only`] does.
pub fn read_only_value(
    path: &Path,
    families: &[&'static str],
    family: &'static str,
    key: &[u8],
) -> Result<Option<Vec<u8>>> {
    let Some(db) = open_read_only(path, families, &[family])? else {
        return Ok(None);
    };
    db.get_cf(cf(&db, family), key)
        .map_err(rocks("reading read-only"))
}
