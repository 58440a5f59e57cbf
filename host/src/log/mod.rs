//! An append-only, segmented record log: the Raft log (which is also the
//! permanent audit archive) and the event log.
//!
//! Records are opaque bytes under a contiguous `u64` index, in a directory of
//! preallocated segment files named by their first index
//! (`00000000000000000001.seg`), read through memory maps. `append` writes
//! into the page cache; `sync` makes everything appended so far durable with
//! one fdatasync per dirty segment, so callers append a batch and sync once
//! (group commit).
//!
//! - `frame`: the segment header and record frame layout.
//! - `segment`: one mapped segment file.
//! - `recovery`: opening the segments: torn tails are cut, corruption refused.
//! - `atomic`: small files replaced atomically (the vote, the purge mark).

mod atomic;
mod frame;
mod recovery;
mod segment;
#[cfg(test)]
mod tests;

use std::fs::{self, File, TryLockError};
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};

pub use atomic::{SMALL_BYTES_MAX, read_small, sync_dir, write_atomic};

use crate::{Error, Result};
use segment::Segment;

/// A segment's size unless a record needs more.
pub const SEGMENT_BYTES_DEFAULT: usize = 64 << 20;
/// The range `LogOptions::segment_bytes` may take.
pub const SEGMENT_BYTES_MIN: usize = 4 << 10;
pub const SEGMENT_BYTES_MAX: usize = 1 << 30;
/// The largest record payload.
pub const RECORD_BYTES_MAX: usize = 256 << 20;

/// Holds the highest purged index, through `write_atomic`.
const META_FILE: &str = "log.meta";
const META_VERSION: u32 = 1;
/// Locked while a `SegmentLog` has the directory open.
const LOCK_FILE: &str = "LOCK";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct LogOptions {
    /// Bytes preallocated per segment; a larger record gets a segment its size.
    pub segment_bytes: usize,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            segment_bytes: SEGMENT_BYTES_DEFAULT,
        }
    }
}

/// Counters since open, for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
    pub appends: u64,
    /// `sync` calls that had something to flush.
    pub syncs: u64,
    /// fdatasync calls, whatever made them.
    pub flushes: u64,
}

/// A flush taken out of the log by `begin_sync`.
#[must_use = "nothing is durable until `finish` succeeds"]
pub struct PendingSync {
    files: Vec<(PathBuf, std::sync::Arc<File>)>,
}

impl PendingSync {
    /// One fdatasync per segment written before `begin_sync`.
    pub fn finish(self) -> Result<()> {
        for (path, file) in self.files {
            file.sync_data().map_err(io_err(&path))?;
        }
        Ok(())
    }
}

/// The log. One per directory: `open` locks it.
pub struct SegmentLog {
    dir: PathBuf,
    options: LogOptions,
    /// In index order, contiguous; only the last may hold no records.
    segments: Vec<Segment>,
    purged: Option<u64>,
    stats: LogStats,
    /// Set when a write or flush failed part way: what is on disk is then
    /// unknown, and only a reopen (which scans it) is safe.
    poisoned: bool,
    _lock: File,
}

impl SegmentLog {
    /// Opens the log in `dir`, creating it if absent. Cuts a torn tail off
    /// the last segment; refuses any other corruption.
    pub fn open(dir: &Path, options: LogOptions) -> Result<Self> {
        if !(SEGMENT_BYTES_MIN..=SEGMENT_BYTES_MAX).contains(&options.segment_bytes) {
            return Err(Error::LogSegmentSize {
                bytes: options.segment_bytes,
                min: SEGMENT_BYTES_MIN,
                max: SEGMENT_BYTES_MAX,
            });
        }
        if !dir.is_dir() {
            fs::create_dir_all(dir).map_err(io_err(dir))?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        let lock = lock(dir)?;
        let purged = read_purged(dir)?;
        let (segments, flushes) = recovery::open_segments(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
            options,
            segments,
            purged,
            stats: LogStats {
                flushes,
                ..LogStats::default()
            },
            poisoned: false,
            _lock: lock,
        })
    }

    pub fn first_index(&self) -> Option<u64> {
        let first = self.segments.first()?;
        (!first.is_empty()).then_some(first.first_index)
    }

    pub fn last_index(&self) -> Option<u64> {
        self.first_index()?;
        let last = self.segments.last()?;
        // An empty last segment starts right after the one before it.
        Some(last.next_index() - 1)
    }

    pub fn is_empty(&self) -> bool {
        self.first_index().is_none()
    }

    pub fn stats(&self) -> LogStats {
        self.stats
    }

    /// Appends the record at `index`, which must be `last_index() + 1`, or
    /// anything if the log is empty. Durable at the next `sync`.
    pub fn append(&mut self, index: u64, payload: &[u8]) -> Result<()> {
        self.check_usable()?;
        if payload.is_empty() {
            return Err(Error::LogRecordEmpty { index });
        }
        if payload.len() > RECORD_BYTES_MAX {
            return Err(Error::RecordTooLarge {
                bytes: payload.len(),
                limit: RECORD_BYTES_MAX,
            });
        }
        if index == u64::MAX {
            // Reserved so that `last_index() + 1` never overflows.
            return Err(Error::LogIndex {
                expected: self.last_index().map_or(0, |l| l.wrapping_add(1)),
                got: index,
            });
        }
        match self.last_index() {
            Some(last) if last.checked_add(1) != Some(index) => {
                return Err(Error::LogIndex {
                    expected: last.wrapping_add(1),
                    got: index,
                });
            }
            Some(_) => {}
            // A segment left empty by a crash may be named for another index.
            None if self.segments.iter().any(|s| s.first_index != index) => {
                let removed = self.remove_segments_from(0);
                self.poison_on_err(removed)?;
            }
            None => {}
        }

        let bytes = frame::frame_bytes(payload.len());
        if !self.segments.last().is_some_and(|s| s.fits(bytes)) {
            let rolled = self.roll(index, bytes);
            self.poison_on_err(rolled)?;
        }
        let appended = self
            .segments
            .last_mut()
            .expect("roll leaves a segment with room")
            .append(index, payload);
        self.poison_on_err(appended)?;
        self.stats.appends += 1;
        Ok(())
    }

    /// Starts a segment at `index` with room for a frame of `bytes`.
    fn roll(&mut self, index: u64, bytes: usize) -> Result<()> {
        if let Some(last) = self.segments.last_mut() {
            if last.is_empty() {
                // Replaced by the new, larger segment of the same name.
                self.segments.pop();
            } else if last.flush_dirty()? {
                // Durable before its successor exists: this is what lets
                // recovery treat a bad record in any segment but the last as
                // corruption.
                self.stats.flushes += 1;
            }
        }
        let capacity = self
            .options
            .segment_bytes
            .max(frame::SEGMENT_HEADER_BYTES + bytes);
        let segment = Segment::create(&self.dir, index, frame::align_up(capacity))?;
        self.segments.push(segment);
        Ok(())
    }

    /// Makes everything appended so far durable: one flush per segment
    /// written since the last sync.
    pub fn sync(&mut self) -> Result<()> {
        let pending = self.begin_sync()?;
        let done = pending.finish();
        self.poison_on_err(done)
    }

    /// The first half of `sync`, for a caller that flushes outside its
    /// lock on the log while appends go on: everything appended so far is
    /// durable once the returned sync's `finish` succeeds. If it fails, the
    /// caller must `poison` the log.
    pub fn begin_sync(&mut self) -> Result<PendingSync> {
        self.check_usable()?;
        let files: Vec<_> = self
            .segments
            .iter_mut()
            .filter_map(Segment::take_dirty)
            .collect();
        if !files.is_empty() {
            self.stats.syncs += 1;
            self.stats.flushes += files.len() as u64;
        }
        Ok(PendingSync { files })
    }

    /// Refuses every further use: a flush outside the lock failed, so what
    /// is on disk is unknown until a reopen scans it.
    pub fn poison(&mut self) {
        self.poisoned = true;
    }

    /// The record at `index`, `None` if the log does not hold it.
    pub fn read(&self, index: u64) -> Result<Option<&[u8]>> {
        let after = self.segments.partition_point(|s| s.first_index <= index);
        match after.checked_sub(1) {
            Some(i) => self.segments[i].read(index),
            None => Ok(None),
        }
    }

    /// The records in `range` that the log holds, in order.
    pub fn range(
        &self,
        range: impl RangeBounds<u64>,
    ) -> impl Iterator<Item = Result<(u64, &[u8])>> + '_ {
        let held = self.first_index().zip(self.last_index());
        let from = match range.start_bound() {
            Bound::Included(&i) => Some(i),
            Bound::Excluded(&i) => i.checked_add(1),
            Bound::Unbounded => Some(0),
        };
        let to = match range.end_bound() {
            Bound::Included(&i) => Some(i),
            Bound::Excluded(&i) => i.checked_sub(1),
            Bound::Unbounded => Some(u64::MAX),
        };
        let indexes = match (held, from, to) {
            (Some((first, last)), Some(from), Some(to)) => Some(from.max(first)..=to.min(last)),
            _ => None,
        };
        indexes
            .into_iter()
            .flatten()
            .filter_map(move |i| self.read(i).map(|r| r.map(|p| (i, p))).transpose())
    }

    /// Removes the records from `index` on (Raft's conflicting, uncommitted
    /// entries), durably. Purged records are committed and are refused.
    pub fn truncate_from(&mut self, index: u64) -> Result<()> {
        self.check_usable()?;
        if self.last_index().is_none_or(|last| index > last) {
            return Ok(());
        }
        if let Some(purged) = self.purged.filter(|&p| index <= p) {
            return Err(Error::LogTruncatePurged { index, purged });
        }
        let done = self.truncate_inner(index);
        self.poison_on_err(done)
    }

    fn truncate_inner(&mut self, index: u64) -> Result<()> {
        let keep = self.segments.partition_point(|s| s.first_index < index);
        self.remove_segments_from(keep)?;
        if let Some(last) = self.segments.last_mut()
            && last.next_index() > index
        {
            self.stats.flushes += last.truncate_from(index)?;
        }
        Ok(())
    }

    /// Deletes the segments from position `keep` on, newest first, each
    /// durably, so a crash part way leaves a contiguous prefix.
    fn remove_segments_from(&mut self, keep: usize) -> Result<()> {
        while self.segments.len() > keep {
            let segment = self.segments.pop().expect("len > keep");
            let path = segment.path.clone();
            // Unmapped before the file goes.
            drop(segment);
            fs::remove_file(&path).map_err(io_err(&path))?;
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// The highest index the Raft layer has purged, if any.
    pub fn purged(&self) -> Option<u64> {
        self.purged
    }

    /// Records durably that the Raft layer considers everything up to `upto`
    /// purged. Nothing is deleted: the log is the audit archive, and purged
    /// records stay readable. A mark at or below the current one is a no-op.
    pub fn mark_purged(&mut self, upto: u64) -> Result<()> {
        if self.purged.is_some_and(|p| p >= upto) {
            return Ok(());
        }
        let mut meta = Vec::with_capacity(12);
        meta.extend_from_slice(&META_VERSION.to_le_bytes());
        meta.extend_from_slice(&upto.to_le_bytes());
        write_atomic(&self.dir.join(META_FILE), &meta)?;
        self.purged = Some(upto);
        Ok(())
    }

    fn check_usable(&self) -> Result<()> {
        if self.poisoned {
            return Err(Error::LogPoisoned {
                path: self.dir.clone(),
            });
        }
        Ok(())
    }

    fn poison_on_err<T>(&mut self, result: Result<T>) -> Result<T> {
        self.poisoned |= result.is_err();
        result
    }
}

fn read_purged(dir: &Path) -> Result<Option<u64>> {
    let path = dir.join(META_FILE);
    let Some(meta) = read_small(&path)? else {
        return Ok(None);
    };
    let corrupt = |why: String| Error::LogCorrupt {
        path: path.clone(),
        offset: 0,
        why,
    };
    let (Some(version), Some(upto)) = (meta.get(0..4), meta.get(4..12)) else {
        return Err(corrupt(format!("{} bytes is too short", meta.len())));
    };
    let version = u32::from_le_bytes(version.try_into().expect("4 bytes"));
    if version != META_VERSION {
        return Err(corrupt(format!("unsupported version {version}")));
    }
    Ok(Some(u64::from_le_bytes(upto.try_into().expect("8 bytes"))))
}

fn lock(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(&path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(Error::LogLocked {
            path: dir.to_owned(),
        }),
        Err(TryLockError::Error(e)) => Err(io_err(&path)(e)),
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::LogIo {
        path: path.to_owned(),
        source,
    }
}
