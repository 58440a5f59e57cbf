//! The event log: one record per applied batch, hash-chained.
//!
//! Record `seq` of the `SegmentLog` in `<store>/events` (its own contiguous
//! sequence from 1) is `previous head (32 bytes) || body`, and the chain
//! head after it is SHA-256 of exactly those bytes. Carrying the previous
//! head lets a reader verify every link as it goes.
//!
//! The body: `format u8 (2), log_index u64, timestamp_ms u64, partition
//! u32, version [32]`, the batch's status (`0` applied, `1` out of fuel, `2
//! trap`, `3 malformed output` or `4 malformed batch`, the last three
//! followed by a `u16`-length message), `u32 count`, one `u32` offset per event, then the events
//! exactly as the guest encoded them (`command u32` and an event, see
//! `wallet_core::codec`). The offsets let a reader decode one event of a
//! large batch without decoding the rest.
//!
//! The log is not synced per batch: the Raft log is the write-ahead log,
//! and a record lost in a crash is made again, byte for byte, when its
//! batch is applied again. What the store guarantees is that the log is
//! synced before any state that refers to it is flushed; a batch applied
//! again finds its record already there and checks it is identical.

use super::db::{self, DB_DIR, Meta};
use crate::log::{LogOptions, SegmentLog};
use crate::sm::{BatchFailure, VersionHash};
use crate::{Error, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use wallet_core::codec::{self, Reader};
use wallet_core::{Event, EventRecord};

/// The directory of the event log inside a store directory.
pub const EVENTS_DIR: &str = "events";

const HEAD_BYTES: usize = 32;
const RECORD_FORMAT: u8 = 2;
/// Failure messages are cut to this many bytes.
const MESSAGE_BYTES_MAX: usize = 1024;

/// One step of the chain: SHA-256 of a whole record (previous head and
/// body).
pub fn chain_next(record: &[u8]) -> [u8; 32] {
    Sha256::digest(record).into()
}

/// What a record says of its batch, besides the events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// Raft log index of the entry that carried the batch.
    pub log_index: u64,
    /// The batch's effective time.
    pub timestamp_ms: u64,
    pub partition: u32,
    /// The state-machine version that executed it.
    pub version: VersionHash,
    /// Why the version failed the batch, if it did.
    pub failure: Option<BatchFailure>,
}

/// Writes a record: `previous`, the header, the offsets and the events.
pub fn encode_record(
    previous: &[u8; 32],
    header: &RecordHeader,
    events: &[u8],
    offsets: &[u32],
    out: &mut Vec<u8>,
) {
    out.clear();
    out.reserve(HEAD_BYTES + 96 + offsets.len() * 4 + events.len());
    out.extend_from_slice(previous);
    out.push(RECORD_FORMAT);
    codec::put_u64(out, header.log_index);
    codec::put_u64(out, header.timestamp_ms);
    codec::put_u32(out, header.partition);
    out.extend_from_slice(&header.version.0);
    let message = |out: &mut Vec<u8>, tag: u8, text: &str| {
        out.push(tag);
        let cut = text.floor_char_boundary(MESSAGE_BYTES_MAX);
        codec::put_bytes16(out, &text.as_bytes()[..cut]).expect("cut to fit");
    };
    match &header.failure {
        None => out.push(0),
        Some(BatchFailure::OutOfFuel) => out.push(1),
        Some(BatchFailure::Trap(trap)) => message(out, 2, trap),
        Some(BatchFailure::MalformedOutput(why)) => message(out, 3, why),
        Some(BatchFailure::MalformedBatch(why)) => message(out, 4, why),
    }
    codec::put_u32(
        out,
        u32::try_from(offsets.len()).expect("events are bounded"),
    );
    for offset in offsets {
        codec::put_u32(out, *offset);
    }
    out.extend_from_slice(events);
}

/// A record, parsed in place.
#[derive(Clone, Debug)]
pub struct Record<'a> {
    pub previous: [u8; 32],
    pub header: RecordHeader,
    offsets: &'a [u8],
    events: &'a [u8],
}

fn corrupt(why: impl std::fmt::Display) -> Error {
    Error::CorruptValue {
        cf: "events",
        why: why.to_string(),
    }
}

impl<'a> Record<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Record<'a>> {
        let mut r = Reader::new(bytes);
        let decode = |e: codec::DecodeError| corrupt(format!("record: {e}"));
        let previous = r.array().map_err(decode)?;
        if r.u8().map_err(decode)? != RECORD_FORMAT {
            return Err(corrupt("record of an unknown format"));
        }
        let log_index = r.u64().map_err(decode)?;
        let timestamp_ms = r.u64().map_err(decode)?;
        let partition = r.u32().map_err(decode)?;
        let version = VersionHash(r.array().map_err(decode)?);
        let text = |r: &mut Reader<'a>| -> Result<String> {
            let bytes = r.bytes16().map_err(decode)?;
            Ok(String::from_utf8_lossy(bytes).into_owned())
        };
        let failure = match r.u8().map_err(decode)? {
            0 => None,
            1 => Some(BatchFailure::OutOfFuel),
            2 => Some(BatchFailure::Trap(text(&mut r)?)),
            3 => Some(BatchFailure::MalformedOutput(text(&mut r)?)),
            4 => Some(BatchFailure::MalformedBatch(text(&mut r)?)),
            status => return Err(corrupt(format!("record with status {status}"))),
        };
        let count = r.count(4 + 5).map_err(decode)?;
        let offsets = r.take(count * 4).map_err(decode)?;
        let events = &bytes[r.position()..];
        Ok(Record {
            previous,
            header: RecordHeader {
                log_index,
                timestamp_ms,
                partition,
                version,
                failure,
            },
            offsets,
            events,
        })
    }

    pub fn len(&self) -> usize {
        self.offsets.len() / 4
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    fn offset(&self, i: usize) -> usize {
        let bytes = &self.offsets[i * 4..i * 4 + 4];
        u32::from_le_bytes(bytes.try_into().expect("4 bytes")) as usize
    }

    /// Event `i` and the index of the command that produced it.
    pub fn event(&self, i: usize) -> Result<(u32, Event<&'a str>)> {
        let start = self.offset(i);
        let end = if i + 1 < self.len() {
            self.offset(i + 1)
        } else {
            self.events.len()
        };
        let bytes = self
            .events
            .get(start..end)
            .ok_or_else(|| corrupt(format!("event {i} outside its record")))?;
        let mut r = Reader::new(bytes);
        let event = codec::event_record(&mut r, usize::MAX)
            .map_err(|e| corrupt(format!("event {i}: {e}")))?;
        r.end().map_err(|e| corrupt(format!("event {i}: {e}")))?;
        Ok(event)
    }

    /// Every event, in order.
    pub fn events(&self) -> impl Iterator<Item = Result<(u32, Event<&'a str>)>> + '_ {
        (0..self.len()).map(|i| self.event(i))
    }
}

/// The event log as the store writes it and the read side reads it: one
/// lock around the segment log, held briefly.
pub struct EventLog {
    log: Mutex<SegmentLog>,
}

impl EventLog {
    pub fn open(store_dir: &Path, options: LogOptions) -> Result<Self> {
        let log = SegmentLog::open(&store_dir.join(EVENTS_DIR), options)?;
        Ok(EventLog {
            log: Mutex::new(log),
        })
    }

    fn lock(&self) -> MutexGuard<'_, SegmentLog> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Checks the log against what the store committed: every committed
    /// record must be there, the last of them hashing to the committed
    /// head. Records after it are kept; their batches are applied again
    /// and must make them again, byte for byte.
    pub fn check_against(&self, meta: &Meta) -> Result<()> {
        if meta.events_last == 0 {
            return Ok(());
        }
        let log = self.lock();
        let committed = meta.events_last;
        let behind = || Error::EventLogBehind {
            committed,
            log_last: log.last_index(),
        };
        let record = log.read(committed)?.ok_or_else(behind)?;
        let found = chain_next(record);
        if found != meta.chain_head {
            return Err(Error::ChainMismatch {
                seq: committed,
                expected: hex::encode(meta.chain_head),
                found: hex::encode(found),
            });
        }
        Ok(())
    }

    /// Appends `record` as record `seq`, or, where the log already holds
    /// `seq` (a batch applied again after a crash), checks that it is the
    /// same record. Durable at the next `sync`.
    pub fn append(&self, seq: u64, record: &[u8]) -> Result<()> {
        let mut log = self.lock();
        if log.last_index().is_some_and(|last| seq <= last) {
            let held = log.read(seq)?.ok_or(Error::EventLogBehind {
                committed: seq,
                log_last: log.last_index(),
            })?;
            if held != record {
                return Err(Error::EventLogDiverged {
                    seq,
                    held: hex::encode(chain_next(held)),
                    made: hex::encode(chain_next(record)),
                });
            }
            return Ok(());
        }
        log.append(seq, record)
    }

    pub fn sync(&self) -> Result<()> {
        self.lock().sync()
    }

    /// The last record's sequence number; 0 for an empty log.
    pub fn last(&self) -> u64 {
        self.lock().last_index().unwrap_or(0)
    }

    /// Runs `f` on record `seq`, if the log holds it.
    pub fn with_record<R>(&self, seq: u64, f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        Ok(self.lock().read(seq)?.map(f))
    }
}

/// One record, read and owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchEvents {
    pub seq: u64,
    pub header: RecordHeader,
    pub events: Vec<EventRecord<String>>,
}

/// Reads the event log of a stopped node from genesis, verifying every link
/// of the hash chain and, where the store's database is there, that the
/// record it last committed hashes to the head it committed.
///
/// `dir` is the store directory (the one `Store::open` was given). A
/// running node holds the log's lock, so this refuses (`LogLocked`).
pub fn read_events(dir: &Path) -> Result<Vec<BatchEvents>> {
    let events_dir = dir.join(EVENTS_DIR);
    if !events_dir.is_dir() {
        return Err(Error::LogIo {
            path: events_dir,
            source: std::io::ErrorKind::NotFound.into(),
        });
    }
    let committed = db::read_meta_read_only(&dir.join(DB_DIR))?;
    let log = SegmentLog::open(&events_dir, LogOptions::default())?;
    if let Some(first) = log.first_index().filter(|&f| f != 1) {
        return Err(Error::EventLogNotFromGenesis { first });
    }
    let mut head = [0; HEAD_BYTES];
    let mut batches = Vec::new();
    for item in log.range(..) {
        let (seq, bytes) = item?;
        let record = Record::parse(bytes)?;
        if record.previous != head {
            return Err(Error::ChainMismatch {
                seq,
                expected: hex::encode(head),
                found: hex::encode(record.previous),
            });
        }
        head = chain_next(bytes);
        if let Some(meta) = committed.as_ref().filter(|m| m.events_last == seq)
            && meta.chain_head != head
        {
            return Err(Error::ChainMismatch {
                seq,
                expected: hex::encode(meta.chain_head),
                found: hex::encode(head),
            });
        }
        let events = record
            .events()
            .map(|item| {
                item.map(|(command, event)| EventRecord {
                    command,
                    event: event.to_owned(),
                })
            })
            .collect::<Result<_>>()?;
        batches.push(BatchEvents {
            seq,
            header: record.header,
            events,
        });
    }
    if let Some(meta) = &committed
        && meta.events_last > log.last_index().unwrap_or(0)
    {
        return Err(Error::EventLogBehind {
            committed: meta.events_last,
            log_last: log.last_index(),
        });
    }
    Ok(batches)
}

/// Folds the events of `batches` into `(available, reserved)` per
/// `(account, currency)`, in `i128` so that the fold itself never
/// overflows: an independent recomputation to compare the read models with.
pub fn recompute_balances<'a>(
    batches: impl IntoIterator<Item = &'a BatchEvents>,
) -> BTreeMap<(String, String), (i128, i128)> {
    let mut balances = BTreeMap::new();
    let events = batches.into_iter().flat_map(|b| &b.events);
    for (posting, effect) in events.filter_map(|r| r.event.effect()) {
        let key = (posting.account.clone(), posting.currency.to_string());
        let entry: &mut (i128, i128) = balances.entry(key).or_default();
        let amount = i128::from(posting.amount);
        entry.0 += amount * i128::from(effect.available);
        entry.1 += amount * i128::from(effect.reserved);
    }
    balances
}
