//! One segment file: preallocated, mapped, written at its end.

use std::fs::File;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::MmapMut;

use super::atomic::sync_dir;
use super::frame::{self, FRAME_HEADER_BYTES, Frame, SEGMENT_HEADER_BYTES};
use super::io_err;
use crate::{Error, Result};

pub(super) struct Segment {
    pub(super) path: PathBuf,
    pub(super) first_index: u64,
    map: MmapMut,
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
        Ok(Self {
            path,
            first_index,
            map,
            offsets: Vec::new(),
            end: SEGMENT_HEADER_BYTES,
            dirty: None,
        })
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
            map,
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

    /// Copies a record in; durable at the next `flush_dirty`. The caller has
    /// checked the index follows and that the frame `fits`.
    pub(super) fn append(&mut self, index: u64, payload: &[u8]) {
        let start = self.end;
        let end = start + frame::frame_bytes(payload.len());
        frame::write_record(&mut self.map[start..end], index, payload);
        self.offsets
            .push(u32::try_from(start).expect("segments are under 4 GiB"));
        self.end = end;
        self.dirty = Some(match self.dirty.take() {
            Some(d) => d.start..end,
            None => start..end,
        });
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
        let Some(dirty) = self.dirty.take() else {
            return Ok(false);
        };
        self.flush(dirty)?;
        Ok(true)
    }

    /// msync(MS_SYNC) of `range`.
    pub(super) fn flush(&self, range: Range<usize>) -> Result<()> {
        self.map
            .flush_range(range.start, range.len())
            .map_err(io_err(&self.path))
    }

    pub(super) fn zero(&mut self, range: Range<usize>) {
        self.map[range].fill(0);
    }

    /// Drops the records from `index` on, which this segment holds, durably;
    /// returns the flushes it took. An end marker goes down first, then the
    /// stale bytes after it are zeroed: a crash in between leaves a marker
    /// recovery understands, never a half-zeroed record followed by valid ones.
    pub(super) fn truncate_from(&mut self, index: u64) -> Result<u64> {
        let pos = usize::try_from(index - self.first_index).expect("the index is in this segment");
        let at = self.offsets[pos] as usize;
        let marker_end = at + FRAME_HEADER_BYTES;
        frame::write_end_marker(&mut self.map[at..marker_end], index);
        // Unsynced records before the marker go down with it.
        let start = self.dirty.take().map_or(at, |d| d.start.min(at));
        self.flush(start..marker_end)?;
        let stale = marker_end..self.end;
        self.zero(stale.clone());
        self.flush(stale)?;
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

fn map(file: &File, path: &Path) -> Result<MmapMut> {
    // SAFETY: the mapping is only sound if nobody else changes or shrinks the
    // file while it is mapped. The log holds the directory's lock, so no other
    // `SegmentLog` does, never resizes a mapped segment, and unmaps a segment
    // before deleting it; other processes must leave the directory alone.
    unsafe { MmapMut::map_mut(file) }.map_err(io_err(path))
}
