//! The event log: one record per applied batch, hash-chained.
//!
//! Each record of the `SegmentLog` in `<store>/events` (its own contiguous
//! sequence from 1) is `previous head (32 bytes) || postcard(BatchEvents)`,
//! and the chain head after it is SHA-256 of exactly those bytes, i.e.
//! `SHA-256(previous head || batch record)`. Carrying the previous head
//! lets a reader verify every link as it goes, and lets `open` check the
//! last record against the head the store committed with one hash.

use super::db::{self, DB_DIR};
use super::values::{corrupt, decode, encode_into};
use super::{AppliedBatch, Meta};
use crate::log::{LogOptions, SegmentLog};
use crate::sm::{BatchHeader, Event, EventRecord};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// The directory of the event log inside a store directory.
pub const EVENTS_DIR: &str = "events";

const HEAD_BYTES: usize = 32;

/// The record of one applied batch: what the chain covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchEvents {
    /// Raft log index of the entry that carried the batch.
    pub log_index: u64,
    pub header: BatchHeader,
    pub events: Vec<EventRecord>,
}

/// Serializes exactly like `BatchEvents`, borrowing the batch.
#[derive(Serialize)]
struct BatchEventsRef<'a> {
    log_index: u64,
    header: &'a BatchHeader,
    events: &'a [EventRecord],
}

/// One step of the chain: SHA-256(previous head || record bytes), where the
/// record bytes are the postcard encoding of a `BatchEvents`.
pub fn chain_next(previous: &[u8; 32], record: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(record);
    hasher.finalize().into()
}

/// The event log as the store writes it.
pub(super) struct EventLog {
    log: SegmentLog,
    /// Reused for every record.
    buf: Vec<u8>,
}

impl EventLog {
    pub fn open(store_dir: &Path) -> Result<Self> {
        let log = SegmentLog::open(&store_dir.join(EVENTS_DIR), LogOptions::default())?;
        Ok(EventLog {
            log,
            buf: Vec::new(),
        })
    }

    /// Brings the log in line with what the store committed: records past
    /// `meta.events_last` belong to batches whose RocksDB write never
    /// happened (they will be applied again) and are cut; a log lacking
    /// committed records, or whose last record does not hash to the
    /// committed head, is refused. An empty log with committed records is
    /// a store installed from a checkpoint: appends continue after them.
    pub fn reconcile(&mut self, meta: &Meta) -> Result<()> {
        self.cut_uncommitted(meta.events_last)?;
        let (Some(last), Some(committed)) = (self.log.last_index(), meta.events_last) else {
            return Ok(());
        };
        if last < committed {
            return Err(Error::EventLogBehind {
                committed,
                log_last: Some(last),
            });
        }
        let record = self.log.read(committed)?.ok_or(Error::EventLogBehind {
            committed,
            log_last: Some(last),
        })?;
        let found: [u8; 32] = Sha256::digest(record).into();
        if found != meta.chain_head {
            return Err(Error::ChainMismatch {
                seq: committed,
                expected: hex::encode(meta.chain_head),
                found: hex::encode(found),
            });
        }
        Ok(())
    }

    /// Cuts the records past `committed` (all of them for `None`).
    pub fn cut_uncommitted(&mut self, committed: Option<u64>) -> Result<()> {
        let (Some(first), Some(last)) = (self.log.first_index(), self.log.last_index()) else {
            return Ok(());
        };
        let from = committed.map_or(first, |c| c + 1).max(first);
        if from > last {
            return Ok(());
        }
        tracing::warn!(
            from,
            last,
            "cutting event log records past the committed store; their batches will be applied again"
        );
        self.log.truncate_from(from)
    }

    /// Appends the record of `batch` as record `seq` after `previous`, and
    /// returns the new head. Durable at the next `sync`.
    pub fn append(
        &mut self,
        seq: u64,
        previous: &[u8; 32],
        batch: &AppliedBatch,
    ) -> Result<[u8; 32]> {
        self.buf.clear();
        self.buf.extend_from_slice(previous);
        let record = BatchEventsRef {
            log_index: batch.log_index,
            header: &batch.header,
            events: &batch.events,
        };
        encode_into("events", &record, &mut self.buf)?;
        let head = Sha256::digest(&self.buf).into();
        self.log.append(seq, &self.buf)?;
        Ok(head)
    }

    pub fn sync(&mut self) -> Result<()> {
        self.log.sync()
    }

    #[cfg(test)]
    pub fn last_index(&self) -> Option<u64> {
        self.log.last_index()
    }
}

/// Reads the event log of a stopped node from genesis, verifying every link
/// of the hash chain, and, where the store's database is there, stopping at
/// its last committed record and checking the final head against it.
///
/// `dir` is the store directory (the one `Store::open` was given). A running
/// node holds the log's lock, so this refuses (`LogLocked`).
pub struct EventReader {
    log: SegmentLog,
    next: u64,
    /// The last record to read.
    last: Option<u64>,
    head: [u8; 32],
    /// The committed meta, when the database was found.
    committed: Option<Meta>,
    done: bool,
}

impl EventReader {
    pub fn open(dir: &Path) -> Result<Self> {
        let events = dir.join(EVENTS_DIR);
        if !events.is_dir() {
            return Err(Error::LogIo {
                path: events,
                source: std::io::ErrorKind::NotFound.into(),
            });
        }
        let committed = db::read_meta_read_only(&dir.join(DB_DIR))?;
        let log = SegmentLog::open(&events, LogOptions::default())?;
        if let Some(first) = log.first_index().filter(|&f| f != 1) {
            return Err(Error::EventLogNotFromGenesis { first });
        }
        let last = match &committed {
            Some(meta) => meta.events_last,
            None => log.last_index(),
        };
        Ok(EventReader {
            log,
            next: 1,
            last,
            head: [0; HEAD_BYTES],
            committed,
            done: false,
        })
    }

    /// The chain head after the records read so far.
    pub fn head(&self) -> [u8; 32] {
        self.head
    }

    fn read_next(&mut self) -> Result<Option<(u64, BatchEvents)>> {
        let seq = self.next;
        if self.last.is_none_or(|last| seq > last) {
            self.check_end()?;
            return Ok(None);
        }
        let Some(record) = self.log.read(seq)? else {
            return Err(Error::EventLogBehind {
                committed: self.last.unwrap_or(seq),
                log_last: self.log.last_index(),
            });
        };
        let (previous, body) = record
            .split_first_chunk::<HEAD_BYTES>()
            .ok_or_else(|| corrupt("events", format!("record {seq} is too short")))?;
        if *previous != self.head {
            return Err(Error::ChainMismatch {
                seq,
                expected: hex::encode(self.head),
                found: hex::encode(previous),
            });
        }
        let batch = decode("events", body)?;
        self.head = Sha256::digest(record).into();
        self.next += 1;
        Ok(Some((seq, batch)))
    }

    /// At the end: the head must be the one the store committed.
    fn check_end(&self) -> Result<()> {
        match &self.committed {
            Some(meta) if meta.chain_head != self.head => Err(Error::ChainMismatch {
                seq: meta.events_last.unwrap_or(0),
                expected: hex::encode(meta.chain_head),
                found: hex::encode(self.head),
            }),
            _ => Ok(()),
        }
    }
}

impl Iterator for EventReader {
    type Item = Result<(u64, BatchEvents)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.read_next().transpose();
        // Stop at the end and after the first error: nothing past a broken
        // link can be trusted.
        self.done = !matches!(item, Some(Ok(_)));
        item
    }
}

/// Every batch of a stopped node's event log, verified (see `EventReader`).
pub fn read_events(dir: &Path) -> Result<Vec<(u64, BatchEvents)>> {
    EventReader::open(dir)?.collect()
}

/// The effect of an event on its account's `(available, reserved)`, as the
/// signs by which the posting's amount moves them (see `wit/wallet.wit`).
pub(super) fn balance_effect(event: &Event) -> Option<(&crate::sm::Posting, i64, i64)> {
    use Event as E;
    let (posting, available, reserved) = match event {
        E::Debited(p) | E::Sent(p) => (p, -1, 0),
        E::Credited(p) | E::Received(p) => (p, 1, 0),
        E::FundsReserved(p) => (p, -1, 1),
        E::ReservationReleased(p) => (p, 1, -1),
        E::ReservationSettled(p) => (p, 0, -1),
        E::CreditPending(_)
        | E::PendingDropped(_)
        | E::AccountOpened(_)
        | E::CancelRecorded(_)
        | E::TransferRejected(_) => return None,
    };
    Some((posting, available, reserved))
}

/// Folds the events of `batches` into `(available, reserved)` per
/// `(account, currency)`, in `i128` so that the fold itself never overflows:
/// an independent recomputation to compare the projections with.
pub fn recompute_balances<'a>(
    batches: impl IntoIterator<Item = &'a BatchEvents>,
) -> BTreeMap<(String, String), (i128, i128)> {
    let mut balances = BTreeMap::new();
    let events = batches.into_iter().flat_map(|b| &b.events);
    for (posting, available, reserved) in events.filter_map(|r| balance_effect(&r.event)) {
        let key = (posting.account.clone(), posting.currency.clone());
        let entry: &mut (i128, i128) = balances.entry(key).or_default();
        let amount = i128::from(posting.amount);
        entry.0 += amount * i128::from(available);
        entry.1 += amount * i128::from(reserved);
    }
    balances
}
