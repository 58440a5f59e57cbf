//! Opening the segments: finding the records, cutting a torn tail, refusing
//! corruption.
//!
//! Only the last segment may end in a torn record: `append` flushes a segment
//! before it makes the next, so a segment with a successor was durable whole.
//! A torn tail is a bad frame (or leftover bytes) after the last good record
//! of the last segment with no valid frame after it; it is zeroed and the log
//! opens. A bad frame with a valid frame after it, a bad frame in any other
//! segment, or a gap in the indexes is corruption, and opening fails with the
//! file and offset: the log is an archive, and silently dropping acknowledged
//! records is the one thing it must not do.

use std::fs;
use std::ops::Range;
use std::path::Path;

use tracing::warn;

use super::frame::{
    self, ALIGN, FRAME_BYTES_MIN, FRAME_HEADER_BYTES, Frame, SEGMENT_HEADER_BYTES, align_up,
    raw_header,
};
use super::io_err;
use super::segment::Segment;
use crate::{Error, Result};

/// Opens every segment in `dir`, in index order; returns them and the
/// flushes spent cutting a torn tail.
pub(super) fn open_segments(dir: &Path) -> Result<(Vec<Segment>, u64)> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.ends_with(".seg.tmp") {
            // A segment whose creation a crash interrupted; it never held records.
            warn!(path = %path.display(), "removing a half-made log segment");
            fs::remove_file(&path).map_err(io_err(&path))?;
        } else if let Some(first) = Segment::parse_file_name(name) {
            found.push((first, path));
        }
    }
    found.sort_unstable_by_key(|&(first, _)| first);

    let count = found.len();
    let mut segments: Vec<Segment> = Vec::with_capacity(count);
    let mut flushes = 0;
    for (i, (first, path)) in found.into_iter().enumerate() {
        let mut segment = Segment::open(path, first)?;
        if let Some(prev) = segments.last() {
            check_follows(prev, &segment)?;
        }
        let last = i + 1 == count;
        let scan = scan(&segment.path, segment.bytes(), first, last)?;
        segment.set_records(scan.offsets, scan.end);
        if let Some(cut) = scan.cut {
            warn!(
                path = %segment.path.display(),
                offset = cut.start,
                bytes = cut.len(),
                "cutting a torn tail off the log"
            );
            segment.zero(cut)?;
            segment.flush()?;
            flushes += 1;
        }
        segments.push(segment);
    }
    Ok((segments, flushes))
}

fn check_follows(prev: &Segment, next: &Segment) -> Result<()> {
    let why = if prev.is_empty() {
        format!("follows {}, which holds no records", prev.path.display())
    } else if prev.next_index() != next.first_index {
        format!(
            "segment starts at index {} but the one before it ends at {}",
            next.first_index,
            prev.next_index().wrapping_sub(1)
        )
    } else {
        return Ok(());
    };
    Err(Error::LogCorrupt {
        path: next.path.clone(),
        offset: 0,
        why: format!("{why}; refusing to start"),
    })
}

pub(super) struct Scan {
    pub(super) offsets: Vec<u32>,
    /// Where the next record goes.
    pub(super) end: usize,
    /// Bytes to zero: a torn tail, or what an interrupted truncation left.
    pub(super) cut: Option<Range<usize>>,
}

enum Stop {
    End,
    Marker,
    /// What a torn write leaves: a frame whose length or CRC is wrong.
    Bad(String),
    /// A whole frame in the wrong place, which no torn write makes.
    Misplaced(String),
}

/// Finds the records of one segment's bytes, which must start at
/// `first_index`. `last`: the log's last segment, the only one that may have
/// a torn tail.
pub(super) fn scan(path: &Path, buf: &[u8], first_index: u64, last: bool) -> Result<Scan> {
    let mut offsets = Vec::new();
    let mut at = SEGMENT_HEADER_BYTES;
    let mut next = first_index;
    let stop = loop {
        match frame::decode(buf, at) {
            Ok(Frame::Record { index, bytes, .. }) if index == next => {
                offsets.push(u32::try_from(at).expect("segments are under 4 GiB"));
                at += bytes;
                next = next.wrapping_add(1);
            }
            Ok(Frame::Record { index, .. }) => {
                break Stop::Misplaced(format!("holds index {index} where {next} belongs"));
            }
            Ok(Frame::Marker { index }) if index == next => break Stop::Marker,
            Ok(Frame::Marker { index }) => {
                break Stop::Misplaced(format!("end marker for {index} where {next} belongs"));
            }
            Ok(Frame::End) => break Stop::End,
            Err(defect) => break Stop::Bad(defect.to_string()),
        }
    };
    let corrupt = |why: String| Error::LogCorrupt {
        path: path.to_owned(),
        offset: at as u64,
        why,
    };
    let what = match stop {
        // Truncation makes the marker durable before it zeroes what follows,
        // so anything after a marker is stale.
        Stop::Marker => {
            let cut = last
                .then(|| nonzero_span(buf, at + FRAME_HEADER_BYTES))
                .flatten();
            return Ok(Scan {
                offsets,
                end: at,
                cut,
            });
        }
        Stop::Misplaced(why) => return Err(corrupt(format!("{why}; refusing to start"))),
        Stop::End => "zero length".to_string(),
        Stop::Bad(why) => why,
    };
    if let Some((later, index)) = find_valid_after(buf, at + ALIGN, next) {
        return Err(corrupt(format!(
            "{what}, and a valid record (index {index} at offset {later}) follows it; \
             refusing to start"
        )));
    }
    match nonzero_span(buf, at) {
        None => Ok(Scan {
            offsets,
            end: at,
            cut: None,
        }),
        Some(cut) if last => Ok(Scan {
            offsets,
            end: at,
            cut: Some(cut),
        }),
        Some(_) => Err(corrupt(format!(
            "{what} in a segment that is not the last; refusing to start"
        ))),
    }
}

/// The first well-formed record at an 8-byte boundary from `from` whose
/// index could come at or after `expected` in this much space. The index
/// test is cheap and rules out nearly all garbage before a CRC is computed.
fn find_valid_after(buf: &[u8], from: usize, expected: u64) -> Option<(usize, u64)> {
    let room = (buf.len().saturating_sub(from) / FRAME_BYTES_MIN) as u64;
    let indexes = expected..=expected.saturating_add(room);
    (align_up(from)..buf.len()).step_by(ALIGN).find_map(|at| {
        let h = raw_header(buf, at)?;
        if h.len == 0 || !indexes.contains(&h.index) {
            return None;
        }
        match frame::decode(buf, at) {
            Ok(Frame::Record { index, .. }) => Some((at, index)),
            _ => None,
        }
    })
}

/// From `from` to the end of the last nonzero byte (rounded up to the
/// alignment), if any byte there is nonzero.
fn nonzero_span(buf: &[u8], from: usize) -> Option<Range<usize>> {
    const CHUNK: usize = 4096;
    let tail = buf.get(from..)?;
    // Chunks from the back, each tested with a fold that vectorizes: the
    // tail is usually megabytes of zeros.
    let last = tail.rchunks(CHUNK).enumerate().find_map(|(i, chunk)| {
        if chunk.iter().fold(0, |acc, &b| acc | b) == 0 {
            return None;
        }
        let start = tail.len() - i * CHUNK - chunk.len();
        chunk.iter().rposition(|&b| b != 0).map(|p| start + p)
    })?;
    Some(from..(from + align_up(last + 1)).min(buf.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonzero_span_finds_the_last_nonzero_byte() {
        let mut buf = vec![0u8; 10_000];
        assert_eq!(nonzero_span(&buf, 100), None);
        buf[5000] = 1;
        assert_eq!(nonzero_span(&buf, 100), Some(100..100 + align_up(4901)));
        buf[9999] = 1;
        assert_eq!(nonzero_span(&buf, 100), Some(100..10_000));
        assert_eq!(nonzero_span(&buf, 10_000), None);
    }
}
