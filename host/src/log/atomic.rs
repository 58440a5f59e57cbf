//! Small files replaced atomically: the Raft vote, the log's purge mark.
//!
//! Layout: `[len u32 LE][crc32c u32 LE][bytes]`. Write to a temporary file,
//! fsync it, rename it over the old one, fsync the directory: a crash leaves
//! the old value or the new one. The CRC catches what the filesystem does not
//! promise (a torn or truncated file, a flipped bit).

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use super::frame::u32_at;
use super::io_err;
use crate::{Error, Result};

/// The largest value `write_atomic` takes.
pub const SMALL_BYTES_MAX: usize = 1 << 20;

const HEADER_BYTES: usize = 8;

/// Durably replaces the file at `path` with `bytes`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if bytes.len() > SMALL_BYTES_MAX {
        return Err(Error::RecordTooLarge {
            bytes: bytes.len(),
            limit: SMALL_BYTES_MAX,
        });
    }
    let len = u32::try_from(bytes.len()).expect("SMALL_BYTES_MAX fits in u32");
    let mut framed = Vec::with_capacity(HEADER_BYTES + bytes.len());
    framed.extend_from_slice(&len.to_le_bytes());
    framed.extend_from_slice(&crc32c::crc32c(bytes).to_le_bytes());
    framed.extend_from_slice(bytes);

    let tmp = tmp_path(path);
    let mut file = File::create(&tmp).map_err(io_err(&tmp))?;
    file.write_all(&framed).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))?;
    sync_dir(parent(path))
}

/// The value `write_atomic` last stored at `path`, `None` if there is no file,
/// an error if the file does not hold a whole, intact value.
pub fn read_small(path: &Path) -> Result<Option<Vec<u8>>> {
    let mut framed = match fs::read(path) {
        Ok(framed) => framed,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path)(e)),
    };
    let corrupt = |why: String| Error::LogCorrupt {
        path: path.to_owned(),
        offset: 0,
        why,
    };
    if framed.len() < HEADER_BYTES {
        return Err(corrupt(format!(
            "{} bytes is shorter than the header (torn write)",
            framed.len()
        )));
    }
    let len = u32_at(&framed, 0) as usize;
    let body = framed.len() - HEADER_BYTES;
    if len != body {
        return Err(corrupt(format!(
            "holds {body} bytes where its header says {len} (torn write)"
        )));
    }
    if u32_at(&framed, 4) != crc32c::crc32c(&framed[HEADER_BYTES..]) {
        return Err(corrupt("crc mismatch".into()));
    }
    framed.drain(..HEADER_BYTES);
    Ok(Some(framed))
}

/// Makes a directory's entries (a create, rename or unlink in it) durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    tmp.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_replace() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vote");
        assert_eq!(read_small(&path).expect("read"), None);
        write_atomic(&path, b"term 3, node 1").expect("write");
        assert_eq!(
            read_small(&path).expect("read").as_deref(),
            Some(&b"term 3, node 1"[..])
        );
        write_atomic(&path, b"term 4").expect("write");
        assert_eq!(
            read_small(&path).expect("read").as_deref(),
            Some(&b"term 4"[..])
        );
        write_atomic(&path, b"").expect("write empty");
        assert_eq!(read_small(&path).expect("read").as_deref(), Some(&[][..]));
        assert!(!tmp_path(&path).exists());
    }

    #[test]
    fn torn_or_flipped_file_is_detected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vote");
        write_atomic(&path, b"term 3, node 1").expect("write");
        let good = fs::read(&path).expect("read file");

        // Torn: the tail of the write never reached the disk.
        fs::write(&path, &good[..good.len() - 3]).expect("tear");
        let err = read_small(&path).expect_err("torn file must be refused");
        assert!(matches!(err, Error::LogCorrupt { .. }), "{err}");
        assert!(err.to_string().contains("torn write"), "{err}");

        fs::write(&path, &good[..5]).expect("tear header");
        assert!(matches!(read_small(&path), Err(Error::LogCorrupt { .. })));

        let mut flipped = good.clone();
        flipped[HEADER_BYTES + 2] ^= 0x10;
        fs::write(&path, &flipped).expect("flip");
        let err = read_small(&path).expect_err("flipped bit must be refused");
        assert!(err.to_string().contains("crc mismatch"), "{err}");
    }

    #[test]
    fn oversized_value_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = write_atomic(&dir.path().join("big"), &vec![0; SMALL_BYTES_MAX + 1])
            .expect_err("over the limit");
        assert!(matches!(
            err,
            Error::RecordTooLarge {
                limit: SMALL_BYTES_MAX,
                ..
            }
        ));
    }
}
