//! A split in the store: the parent's commit at the split's index, and the
//! child's first state, written as a store of its own.

use super::{Store, StoreOptions, db, encode_record};
use crate::Result;
use crate::node::Layout;
use crate::partition::Splits;
use crate::partition::split::{Derived, encode_events};
use crate::rocks::cf;
use crate::sm::{Schedule, VersionHash};
use crate::store::RecordHeader;
use crate::store::db::{GUEST, META, VERSIONS};
use crate::store::events::chain_next;
use rocksdb::WriteBatch;
use std::path::Path;
use wallet_core::Txid;

/// The first state of a partition split off another, as if it had
/// installed a snapshot at the first position of its own log (index 0).
pub struct Seed<'a> {
    pub partition: u32,
    pub derived: &'a Derived,
    /// The child's range (and no children).
    pub splits: Splits,
    /// The version that ran the split, and its component: the child runs
    /// it from its genesis.
    pub version: VersionHash,
    pub component: &'a [u8],
    /// The position it starts at, and the membership it starts with,
    /// serialized by the caller (opaque here, as in the meta).
    pub applied: Vec<u8>,
    pub membership: Vec<u8>,
    /// The split's time: the child's batches never go below it.
    pub timestamp_ms: u64,
}

impl Store {
    /// What the partition holds after its splits; `None` before its first.
    pub fn splits(&self) -> Result<Option<Splits>> {
        let w = self.writer();
        db::read_splits(w.db()?)
    }

    /// The map, in partition 0; `None` before its first map entry.
    pub fn layout(&self) -> Result<Option<Layout>> {
        let w = self.writer();
        db::read_layout(w.db()?)
    }

    /// Commits a map entry: the layout after it, if it changed.
    pub fn commit_layout(
        &self,
        log_id: Vec<u8>,
        index: u64,
        layout: Option<&Layout>,
    ) -> Result<()> {
        let mut guard = self.writer();
        let w = &mut *guard;
        let mut batch = WriteBatch::default();
        if let Some(layout) = layout {
            let bytes = postcard::to_allocvec(layout).expect("a layout serializes");
            batch.put_cf(cf(w.db()?, META), db::layout_key(), bytes);
        }
        let mut meta = w.meta.clone();
        meta.applied = Some(log_id);
        meta.applied_index = index;
        self.write(w, batch, meta)
    }

    /// Commits the split at `header.log_index`: the records that left go,
    /// and the journal records of the transfers whose source left; the
    /// event record says what money left; the partition holds `splits`
    /// from here on. Made durable at once, before the child opens: the
    /// parent never applies the split again once the child serves. Its
    /// write (half the state's deletions, maybe) goes into memtables of
    /// its own, with the event log synced first, as a migration's does, so
    /// that RocksDB never flushes by itself.
    pub fn commit_split(
        &self,
        log_id: Vec<u8>,
        header: &RecordHeader,
        derived: &Derived,
        splits: &Splits,
    ) -> Result<()> {
        {
            let mut guard = self.writer();
            let w = &mut *guard;
            self.start_flush(w)?;
            let (events, offsets) = encode_events(&derived.parent_events);
            let meta = self.append_record(w, log_id, header, &events, &offsets)?;
            let mut batch = WriteBatch::default();
            let db = w.db()?;
            for key in &derived.parent_deletes {
                batch.delete_cf(cf(db, GUEST), key);
            }
            for moved in &derived.journal {
                batch.delete_cf(cf(db, META), db::in_flight_key(Txid(moved.id)));
            }
            batch.put_cf(cf(db, META), db::splits_key(), db::encode_splits(splits));
            self.write(w, batch, meta)?;
            for key in &derived.parent_deletes {
                w.cache.put(key, None);
            }
            self.start_flush(w)?;
        }
        self.flush()?;
        Ok(())
    }

    /// Writes `seed` as a new store in `dir`, durably.
    pub fn seed(dir: &Path, options: &StoreOptions, seed: &Seed) -> Result<()> {
        let store = Store::open(dir, options)?;
        let mut guard = store.writer();
        let w = &mut *guard;
        let header = RecordHeader {
            log_index: 0,
            timestamp_ms: seed.timestamp_ms,
            partition: seed.partition,
            version: seed.version,
            failure: None,
        };
        let (events, offsets) = encode_events(&seed.derived.child_events);
        encode_record(&[0; 32], &header, &events, &offsets, &mut w.record);
        store.events.append(1, &w.record)?;
        let mut meta = w.meta.clone();
        meta.applied = Some(seed.applied.clone());
        meta.membership = Some(seed.membership.clone());
        meta.chain_head = chain_next(&w.record);
        meta.events_last = 1;
        meta.timestamp_ms = seed.timestamp_ms;
        let schedule = Schedule::genesis(seed.version);
        let mut batch = WriteBatch::default();
        let db = w.db()?;
        for (key, value) in &seed.derived.child_records {
            batch.put_cf(cf(db, GUEST), key, value);
        }
        for moved in &seed.derived.journal {
            let record = postcard::to_allocvec(moved).expect("a journal record serializes");
            batch.put_cf(cf(db, META), db::in_flight_key(Txid(moved.id)), record);
        }
        batch.put_cf(cf(db, VERSIONS), seed.version.0, seed.component);
        batch.put_cf(
            cf(db, META),
            db::schedule_key(),
            db::encode_schedule(&schedule),
        );
        let splits = db::encode_splits(&seed.splits);
        batch.put_cf(cf(db, META), db::splits_key(), splits);
        store.write(w, batch, meta)?;
        w.schedule = schedule;
        drop(guard);
        store.flush()?;
        Ok(())
    }
}
