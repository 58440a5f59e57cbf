//! One segment file: preallocated, written at its end with `pwrite`, read
//! through a read-only mapping.
//!
//! Writes do not go through the mapping: `msync` writes back whole page-cache
//! folios, which on a filesystem with large folios is a megabyte per sync
//! however little changed (measured: about 1 MiB to the device per sync of
//! a 100-byte append, against 4 KiB for `pwrite` and `fdatasync`). The
//! mapping shares the page cache with the writes, so it sees them at once.
//!
//! The part of a segment not yet written is kept out of the page cache
//! (`drop_cached`): preallocating it leaves it in large folios, and each
//! small append would then dirty, and be accounted as, a whole folio.

use std::fs::File;
use std::io::Write;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;

use super::atomic::sync_dir;
use super::frame::{self, FRAME_HEADER_BYTES, Frame, SEGMENT_HEADER_BYTES};
use super::io_err;
use crate::{Error, Result};

pub(super) struct Segment {
    pub(super) path: PathBuf,
    pub(super) first_index: u64,
    /// Shared with syncs that run outside the log's lock.
    file: Arc<File>,
    map: Mmap,
    /// Reused for every frame.
    frame: Vec<u8>,
    /// Offset of each record, by `index - first_index`.
    offsets: Vec<u32>,
    /// Where the next record goes.
    end: usize,
    /// Bytes written since the last flush.
    dirty: Option<Range<usize>>,
}

impl Segment {
    pub(super) fn file_name(first_index: u64) -> String {
        format!("{first_index:020}.seg")
    }

    pub(super) fn parse_file_name(name: &str) -> Option<u64> {
        let digits = name.strip_suffix(".seg")?;
        if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }

    /// Creates a segment of `capacity` bytes. It is filled under a temporary
    /// name and renamed into place, so a segment file is never half made.
    pub(super) fn create(dir: &Path, first_index: u64, capacity: usize) -> Result<Self> {
        let path = dir.join(Self::file_name(first_index));
        let tmp = path.with_extension("seg.tmp");
        let file = preallocate(&tmp, first_index, capacity).map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
        sync_dir(dir)?;
        let map = map(&file, &path)?;
        let segment = Self {
            path,
            first_index,
            file: Arc::new(file),
            map,
            frame: Vec::new(),
            offsets: Vec::new(),
            end: SEGMENT_HEADER_BYTES,
            dirty: None,
        };
        segment.drop_cached(0);
        Ok(segment)
    }

    /// Maps an existing segment and checks its header; its records are
    /// `recovery`'s to find.
    pub(super) fn open(path: PathBuf, first_index: u64) -> Result<Self> {
        let corrupt = |why: String| Error::LogCorrupt {
            path: path.clone(),
            offset: 0,
            why,
        };
        let file = File::options()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let len = file.metadata().map_err(io_err(&path))?.len();
        // Offsets are kept as u32.
        if len < SEGMENT_HEADER_BYTES as u64 || len > u64::from(u32::MAX) {
            return Err(corrupt(format!("{len} bytes is no segment's size")));
        }
        let map = map(&file, &path)?;
        let declared = frame::decode_header(&map).map_err(corrupt)?;
        if declared != first_index {
            return Err(corrupt(format!(
                "header says first index {declared}, the file name {first_index}"
            )));
        }
        Ok(Self {
            path,
            first_index,
            file: Arc::new(file),
            map,
            frame: Vec::new(),
            offsets: Vec::new(),
            end: SEGMENT_HEADER_BYTES,
            dirty: None,
        })
    }

    pub(super) fn bytes(&self) -> &[u8] {
        &self.map
    }

    pub(super) fn set_records(&mut self, offsets: Vec<u32>, end: usize) {
        self.offsets = offsets;
        self.end = end;
        self.drop_cached(end);
    }

    /// Advises the kernel to drop the cached pages from `from` to the end:
    /// appends then fill small, fresh pages. Only advice: failing it costs
    /// accounting, not correctness.
    fn drop_cached(&self, from: usize) {
        let len = (self.map.len() - from) as u64;
        let advice = rustix::fs::Advice::DontNeed;
        if let Err(error) = rustix::fs::fadvise(
            &self.file,
            from as u64,
            std::num::NonZeroU64::new(len),
            advice,
        ) {
            tracing::debug!(%error, path = %self.path.display(), "fadvise");
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// The index the record after this segment's last has.
    pub(super) fn next_index(&self) -> u64 {
        self.first_index.wrapping_add(self.offsets.len() as u64)
    }

    pub(super) fn fits(&self, frame_bytes: usize) -> bool {
        self.map.len() - self.end >= frame_bytes
    }

    /// Writes a record; durable at the next `flush_dirty`. The caller has
    /// checked the index follows and that the frame `fits`.
    pub(super) fn append(&mut self, index: u64, payload: &[u8]) -> Result<()> {
        let start = self.end;
        let end = start + frame::frame_bytes(payload.len());
        self.frame.clear();
        self.frame.resize(end - start, 0);
        frame::write_record(&mut self.frame, index, payload);
        self.write_at(start, &self.frame)?;
        self.offsets
            .push(u32::try_from(start).expect("segments are under 4 GiB"));
        self.end = end;
        self.dirty = Some(match self.dirty.take() {
            Some(d) => d.start..end,
            None => start..end,
        });
        Ok(())
    }

    fn write_at(&self, at: usize, bytes: &[u8]) -> Result<()> {
        self.file
            .write_all_at(bytes, at as u64)
            .map_err(io_err(&self.path))
    }

    /// The record at `index` if this segment holds it, its CRC checked again
    /// so a flip on disk since open is caught.
    pub(super) fn read(&self, index: u64) -> Result<Option<&[u8]>> {
        let Some(&at) = index
            .checked_sub(self.first_index)
            .and_then(|pos| self.offsets.get(usize::try_from(pos).ok()?))
        else {
            return Ok(None);
        };
        let why = match frame::decode(&self.map, at as usize) {
            Ok(Frame::Record {
                index: i, payload, ..
            }) if i == index => return Ok(Some(payload)),
            Ok(_) => "not the record the index holds".to_string(),
            Err(defect) => defect.to_string(),
        };
        Err(Error::LogCorrupt {
            path: self.path.clone(),
            offset: u64::from(at),
            why: format!("{why} on reading record {index}"),
        })
    }

    /// Flushes what was written since the last flush; `false` if nothing was.
    pub(super) fn flush_dirty(&mut self) -> Result<bool> {
        if self.dirty.take().is_none() {
            return Ok(false);
        }
        self.flush()?;
        Ok(true)
    }

    /// What a flush of everything written so far needs, if anything was
    /// written: the file, to sync later without the segment.
    pub(super) fn take_dirty(&mut self) -> Option<(PathBuf, Arc<File>)> {
        self.dirty.take()?;
        Some((self.path.clone(), self.file.clone()))
    }

    /// fdatasync: everything written to the segment is durable. The blocks
    /// were allocated when the segment was made, so this writes the data
    /// pages and no metadata.
    pub(super) fn flush(&self) -> Result<()> {
        self.file.sync_data().map_err(io_err(&self.path))
    }

    pub(super) fn zero(&mut self, range: Range<usize>) -> Result<()> {
        let zeros = vec![0u8; range.len()];
        self.write_at(range.start, &zeros)
    }

    /// Drops the records from `index` on, which this segment holds, durably;
    /// returns the flushes it took. An end marker goes down first, then the
    /// stale bytes after it are zeroed: a crash in between leaves a marker
    /// recovery understands, never a half-zeroed record followed by valid ones.
    pub(super) fn truncate_from(&mut self, index: u64) -> Result<u64> {
        let pos = usize::try_from(index - self.first_index).expect("the index is in this segment");
        let at = self.offsets[pos] as usize;
        let marker_end = at + FRAME_HEADER_BYTES;
        let mut marker = [0; FRAME_HEADER_BYTES];
        frame::write_end_marker(&mut marker, index);
        self.write_at(at, &marker)?;
        // Unsynced records before the marker go down with it.
        self.dirty = None;
        self.flush()?;
        let stale = marker_end..self.end;
        self.zero(stale)?;
        self.flush()?;
        self.offsets.truncate(pos);
        self.end = at;
        Ok(2)
    }

    #[cfg(test)]
    pub(super) fn offset_of(&self, index: u64) -> Option<usize> {
        let pos = usize::try_from(index.checked_sub(self.first_index)?).ok()?;
        self.offsets.get(pos).map(|&at| at as usize)
    }
}

/// Writes the header and zeros up to `capacity`. Zeros, not `set_len`: the
/// blocks are allocated now, because a store into a hole of a mapped file on
/// a full disk is a SIGBUS rather than an error.
fn preallocate(tmp: &Path, first_index: u64, capacity: usize) -> std::io::Result<File> {
    let mut file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(tmp)?;
    file.write_all(&frame::encode_header(first_index))?;
    let zeros = vec![0u8; (1 << 20).min(capacity)];
    let mut left = capacity - SEGMENT_HEADER_BYTES;
    while left > 0 {
        let n = left.min(zeros.len());
        file.write_all(&zeros[..n])?;
        left -= n;
    }
    file.sync_all()?;
    Ok(file)
}

fn map(file: &File, path: &Path) -> Result<Mmap> {
    // SAFETY: the mapping is only sound if nobody changes or shrinks the file
    // while a borrow of its bytes lives. The log holds the directory's lock,
    // so no other `SegmentLog` writes it; this one writes only through
    // `&mut self` (so while no borrow of the bytes lives), never resizes a
    // mapped segment, and unmaps a segment before deleting it. Other
    // processes must leave the directory alone.
    unsafe { Mmap::map(file) }.map_err(io_err(path))
}
