//! The on-disk layout, all little endian.
//!
//! Segment header, 32 bytes: magic (8), format version u32, zero u32, first
//! index u64, crc32c of the 24 bytes before it u32, zero u32.
//!
//! Record frame: `[payload_len u32][crc32c u32][index u64][payload][pad]`, the
//! CRC over index and payload, padded so every frame starts on an 8-byte
//! boundary: that is what lets recovery search forward for a valid frame after
//! a bad one. A zero length is the end of the written data (segments are
//! zero-filled). A length of `u32::MAX` is an end marker left by truncation:
//! whatever follows it is stale.

use std::fmt;

use super::RECORD_BYTES_MAX;

const MAGIC: [u8; 8] = *b"WALLETLG";
const VERSION: u32 = 1;
pub(super) const SEGMENT_HEADER_BYTES: usize = 32;
pub(super) const FRAME_HEADER_BYTES: usize = 16;
pub(super) const ALIGN: usize = 8;
/// The smallest frame: a header and one padded word of payload.
pub(super) const FRAME_BYTES_MIN: usize = FRAME_HEADER_BYTES + ALIGN;
const END_MARKER: u32 = u32::MAX;

// A real length never collides with the end marker.
const _: () = assert!(RECORD_BYTES_MAX < END_MARKER as usize);

pub(super) fn align_up(n: usize) -> usize {
    n.next_multiple_of(ALIGN)
}

pub(super) fn frame_bytes(payload_len: usize) -> usize {
    FRAME_HEADER_BYTES + align_up(payload_len)
}

pub(super) fn encode_header(first_index: u64) -> [u8; SEGMENT_HEADER_BYTES] {
    let mut h = [0u8; SEGMENT_HEADER_BYTES];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&first_index.to_le_bytes());
    let crc = crc32c::crc32c(&h[..24]);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    h
}

/// The first index a segment header declares, or why it is not a header.
pub(super) fn decode_header(bytes: &[u8]) -> Result<u64, String> {
    let Some(h) = bytes.get(..SEGMENT_HEADER_BYTES) else {
        return Err("file is shorter than a segment header".into());
    };
    if h[..8] != MAGIC {
        return Err("not a log segment (bad magic)".into());
    }
    let version = u32_at(h, 8);
    if version != VERSION {
        return Err(format!("unsupported segment format version {version}"));
    }
    if u32_at(h, 24) != crc32c::crc32c(&h[..24]) {
        return Err("segment header crc mismatch".into());
    }
    Ok(u64_at(h, 16))
}

/// Writes one record frame into `dst`, exactly `frame_bytes(payload.len())` long.
pub(super) fn write_record(dst: &mut [u8], index: u64, payload: &[u8]) {
    let len = u32::try_from(payload.len()).expect("payloads are checked against RECORD_BYTES_MAX");
    let (header, body) = dst.split_at_mut(FRAME_HEADER_BYTES);
    header[0..4].copy_from_slice(&len.to_le_bytes());
    header[4..8].copy_from_slice(&record_crc(index, payload).to_le_bytes());
    header[8..16].copy_from_slice(&index.to_le_bytes());
    let (data, pad) = body.split_at_mut(payload.len());
    data.copy_from_slice(payload);
    pad.fill(0);
}

/// Writes the end marker truncation leaves at `index`'s place into `dst`,
/// exactly `FRAME_HEADER_BYTES` long.
pub(super) fn write_end_marker(dst: &mut [u8], index: u64) {
    dst[0..4].copy_from_slice(&END_MARKER.to_le_bytes());
    dst[4..8].copy_from_slice(&marker_crc(index).to_le_bytes());
    dst[8..16].copy_from_slice(&index.to_le_bytes());
}

pub(super) struct RawHeader {
    pub(super) len: u32,
    pub(super) index: u64,
}

/// The frame header fields at `at`, unchecked; `None` if the buffer ends first.
pub(super) fn raw_header(buf: &[u8], at: usize) -> Option<RawHeader> {
    let h = buf.get(at..at.checked_add(FRAME_HEADER_BYTES)?)?;
    Some(RawHeader {
        len: u32_at(h, 0),
        index: u64_at(h, 8),
    })
}

pub(super) enum Frame<'a> {
    Record {
        index: u64,
        payload: &'a [u8],
        bytes: usize,
    },
    /// A zero length, or too few zero bytes left for a frame.
    End,
    Marker {
        index: u64,
    },
}

/// Why the bytes at an offset are not a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Defect {
    ShortHeader,
    TooLarge(u32),
    PastEnd(u32),
    CrcMismatch,
    BadMarker,
}

impl fmt::Display for Defect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ShortHeader => write!(f, "incomplete frame header at the end of the segment"),
            Self::TooLarge(len) => write!(f, "length {len} is over the record limit"),
            Self::PastEnd(len) => write!(f, "length {len} runs past the end of the segment"),
            Self::CrcMismatch => write!(f, "crc mismatch"),
            Self::BadMarker => write!(f, "end marker with a bad crc"),
        }
    }
}

/// Decodes the frame at `at`, checking its length and CRC; the index is the
/// caller's to check.
pub(super) fn decode(buf: &[u8], at: usize) -> Result<Frame<'_>, Defect> {
    let Some(h) = raw_header(buf, at) else {
        let rest = buf.get(at..).unwrap_or_default();
        if rest.iter().all(|&b| b == 0) {
            return Ok(Frame::End);
        }
        return Err(Defect::ShortHeader);
    };
    match h.len {
        0 => Ok(Frame::End),
        END_MARKER if u32_at(buf, at + 4) == marker_crc(h.index) => {
            Ok(Frame::Marker { index: h.index })
        }
        END_MARKER => Err(Defect::BadMarker),
        len if len as usize > RECORD_BYTES_MAX => Err(Defect::TooLarge(len)),
        len => {
            let bytes = frame_bytes(len as usize);
            if buf.len() - at < bytes {
                return Err(Defect::PastEnd(len));
            }
            let start = at + FRAME_HEADER_BYTES;
            let payload = &buf[start..start + len as usize];
            if u32_at(buf, at + 4) != record_crc(h.index, payload) {
                return Err(Defect::CrcMismatch);
            }
            Ok(Frame::Record {
                index: h.index,
                payload,
                bytes,
            })
        }
    }
}

fn record_crc(index: u64, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&index.to_le_bytes()), payload)
}

// Seeded differently from a record's CRC so a marker never passes for one.
fn marker_crc(index: u64) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(b"end marker"), &index.to_le_bytes())
}

pub(super) fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("a 4-byte slice"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("an 8-byte slice"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip_and_defects() {
        let payload = b"hello, ledger";
        let mut buf = vec![0u8; 64];
        let bytes = frame_bytes(payload.len());
        assert_eq!(bytes % ALIGN, 0);
        write_record(&mut buf[..bytes], 7, payload);
        match decode(&buf, 0) {
            Ok(Frame::Record {
                index,
                payload: p,
                bytes: b,
            }) => {
                assert_eq!((index, p, b), (7, &payload[..], bytes));
            }
            _ => panic!("expected a record"),
        }
        assert!(matches!(decode(&buf, bytes), Ok(Frame::End)));

        // The CRC covers the index as well as the payload.
        let mut bad = buf.clone();
        bad[8] ^= 1;
        assert!(matches!(decode(&bad, 0), Err(Defect::CrcMismatch)));
        let mut bad = buf.clone();
        bad[FRAME_HEADER_BYTES] ^= 1;
        assert!(matches!(decode(&bad, 0), Err(Defect::CrcMismatch)));

        assert!(matches!(
            decode(&buf[..bytes - 1], 0),
            Err(Defect::PastEnd(_))
        ));
        assert!(matches!(decode(&buf[..8], 0), Err(Defect::ShortHeader)));
    }

    #[test]
    fn marker_and_header() {
        let mut buf = [0u8; FRAME_HEADER_BYTES];
        write_end_marker(&mut buf, 9);
        assert!(matches!(decode(&buf, 0), Ok(Frame::Marker { index: 9 })));
        buf[8] ^= 1;
        assert!(matches!(decode(&buf, 0), Err(Defect::BadMarker)));

        let header = encode_header(42);
        assert_eq!(decode_header(&header), Ok(42));
        let mut bad = header;
        bad[16] ^= 1;
        assert!(decode_header(&bad).is_err());
    }
}
