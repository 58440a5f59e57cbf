//! Opening RocksDB with the store's column families, and the meta record.

use super::Meta;
use super::values::{corrupt, decode, encode_into};
use crate::{Error, Result};
use rocksdb::{
    BlockBasedOptions, ColumnFamily, ColumnFamilyDescriptor, DB, DBCompressionType, Options,
};
use std::path::Path;

/// The database's directory inside a store directory.
pub const DB_DIR: &str = "db";

/// The guest's opaque keys and values.
pub(super) const GUEST: &str = "guest";
/// Account records and balances.
pub(super) const BALANCES: &str = "balances";
/// Per-account event history and its counters.
pub(super) const HISTORY: &str = "history";
/// Transfer states and their events.
pub(super) const TRANSFERS: &str = "transfers";
/// State-machine components by hash.
pub(super) const VERSIONS: &str = "versions";
/// The one `Meta` record.
pub(super) const META: &str = "meta";

pub(super) const COLUMN_FAMILIES: [&str; 6] = [GUEST, BALANCES, HISTORY, TRANSFERS, VERSIONS, META];

const META_KEY: &[u8] = b"meta";
/// The first byte of the meta value; bumped when `Meta` changes shape.
const META_FORMAT: u8 = 1;

pub(super) fn rocks(context: &'static str) -> impl FnOnce(rocksdb::Error) -> Error {
    move |source| Error::Rocks { context, source }
}

/// The handle of a column family that `open` checked is there.
pub(super) fn cf<'a>(db: &'a DB, name: &str) -> &'a ColumnFamily {
    db.cf_handle(name)
        .expect("the store's column families are checked at open")
}

/// Opens the database at `path`, creating it with every column family if it
/// does not exist. An existing database missing one of them is refused: it
/// is not a store, or not a whole one, and writing into it would hide that.
pub(super) fn open(path: &Path) -> Result<DB> {
    let mut options = Options::default();
    options.create_if_missing(true);
    // A batch spans column families; flushing them together keeps every
    // checkpoint and every recovery at one batch boundary.
    options.set_atomic_flush(true);
    options.set_max_background_jobs(2);
    options.set_compression_type(DBCompressionType::Lz4);
    let exists = path.join("CURRENT").is_file();
    let mut names: Vec<String> = COLUMN_FAMILIES.iter().map(|n| n.to_string()).collect();
    if exists {
        let present = DB::list_cf(&options, path).map_err(rocks("listing column families"))?;
        check_column_families(path, &present)?;
        // Unknown extra families (a later version's) must be opened too.
        names = present;
    } else {
        options.create_missing_column_families(true);
    }
    let descriptors = names
        .into_iter()
        .map(|name| ColumnFamilyDescriptor::new(name, cf_options()));
    DB::open_cf_descriptors(&options, path, descriptors).map_err(rocks("open"))
}

fn check_column_families(path: &Path, present: &[String]) -> Result<()> {
    for name in COLUMN_FAMILIES {
        if !present.iter().any(|p| p == name) {
            return Err(Error::MissingColumnFamily {
                path: path.to_owned(),
                name,
            });
        }
    }
    Ok(())
}

/// Bloom filters: most guest reads (idempotency receipts of new
/// transaction ids) and projection reads of new keys miss.
fn cf_options() -> Options {
    let mut table = BlockBasedOptions::default();
    table.set_bloom_filter(10.0, false);
    let mut options = Options::default();
    options.set_block_based_table_factory(&table);
    options.set_compression_type(DBCompressionType::Lz4);
    options
}

pub(super) fn encode_meta(meta: &Meta) -> Result<Vec<u8>> {
    let mut buf = vec![META_FORMAT];
    encode_into(META, meta, &mut buf)?;
    Ok(buf)
}

pub(super) fn decode_meta(bytes: &[u8]) -> Result<Meta> {
    match bytes.split_first() {
        Some((&META_FORMAT, rest)) => decode(META, rest),
        Some((format, _)) => Err(corrupt(META, format!("unknown meta format {format}"))),
        None => Err(corrupt(META, "empty meta value")),
    }
}

pub(super) fn meta_key() -> &'static [u8] {
    META_KEY
}

/// The committed meta; the genesis meta for a new store.
pub(super) fn read_meta(db: &DB) -> Result<Meta> {
    let bytes = db
        .get_pinned_cf(cf(db, META), META_KEY)
        .map_err(rocks("reading meta"))?;
    bytes.map_or_else(|| Ok(Meta::default()), |b| decode_meta(&b))
}

/// The meta of a store that may be in use by a running node (read-only, so
/// it never conflicts with the writer); `None` where there is no database.
pub(super) fn read_meta_read_only(path: &Path) -> Result<Option<Meta>> {
    if !path.join("CURRENT").is_file() {
        return Ok(None);
    }
    let options = Options::default();
    let present = DB::list_cf(&options, path).map_err(rocks("listing column families"))?;
    check_column_families(path, &present)?;
    let db = DB::open_cf_for_read_only(&options, path, [META], false)
        .map_err(rocks("open read-only"))?;
    read_meta(&db).map(Some)
}
