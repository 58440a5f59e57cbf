use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::frame::{FRAME_HEADER_BYTES, write_end_marker};
use super::*;

fn small() -> LogOptions {
    LogOptions {
        segment_bytes: SEGMENT_BYTES_MIN,
    }
}

/// Payloads of varied lengths, none a multiple of the alignment only.
fn payload(i: u64) -> Vec<u8> {
    format!("record {i};")
        .repeat(1 + (i % 7) as usize)
        .into_bytes()
}

fn open(dir: &Path) -> SegmentLog {
    SegmentLog::open(dir, small()).expect("open")
}

fn filled(dir: &Path, indexes: std::ops::RangeInclusive<u64>) -> SegmentLog {
    let mut log = open(dir);
    for i in indexes {
        log.append(i, &payload(i)).expect("append");
    }
    log.sync().expect("sync");
    log
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

/// The file and offset of the record at `index`.
fn locate(log: &SegmentLog, index: u64) -> (PathBuf, usize) {
    let segment = log
        .segments
        .iter()
        .find(|s| s.offset_of(index).is_some())
        .expect("the log holds the index");
    let at = segment.offset_of(index).expect("offset");
    (segment.path.clone(), at)
}

fn write_at(path: &Path, at: usize, bytes: &[u8]) {
    let file = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open segment");
    file.write_all_at(bytes, at as u64).expect("write");
}

fn assert_holds(log: &SegmentLog, indexes: std::ops::RangeInclusive<u64>) {
    assert_eq!(log.first_index(), Some(*indexes.start()));
    assert_eq!(log.last_index(), Some(*indexes.end()));
    for i in indexes {
        assert_eq!(log.read(i).expect("read"), Some(&payload(i)[..]), "{i}");
    }
}

#[test]
fn round_trip_across_segments_and_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = filled(dir.path(), 5..=300);
    assert!(segment_files(dir.path()).len() >= 4, "small segments roll");
    assert_eq!(
        segment_files(dir.path())[0].file_name(),
        Some("00000000000000000005.seg".as_ref())
    );
    assert_holds(&log, 5..=300);
    assert_eq!(log.read(4).expect("read"), None);
    assert_eq!(log.read(301).expect("read"), None);

    let got: Vec<_> = log.range(100..=110).map(|r| r.expect("range").0).collect();
    assert_eq!(got, (100..=110).collect::<Vec<_>>());
    assert_eq!(log.range(..).count(), 296);
    assert_eq!(log.range(299..).count(), 2);
    assert_eq!(log.range(..6).count(), 1);
    assert_eq!(log.range(400..500).count(), 0);
    for r in log.range(290..) {
        let (i, p) = r.expect("range");
        assert_eq!(p, payload(i));
    }
    drop(log);

    let mut log = open(dir.path());
    assert_holds(&log, 5..=300);
    log.append(301, &payload(301)).expect("append after reopen");
    assert_holds(&log, 5..=301);
}

#[test]
fn oversized_record_gets_its_own_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = filled(dir.path(), 1..=3);
    let big = vec![0xab; SEGMENT_BYTES_MIN * 3 + 5];
    log.append(4, &big).expect("append big");
    log.append(5, &payload(5)).expect("append after big");
    log.sync().expect("sync");
    drop(log);
    let log = open(dir.path());
    assert_eq!(log.read(4).expect("read"), Some(&big[..]));
    assert_eq!(log.read(5).expect("read"), Some(&payload(5)[..]));
    assert_eq!(segment_files(dir.path()).len(), 3);
}

#[test]
fn one_flush_per_sync_whatever_the_record_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = SegmentLog::open(dir.path(), LogOptions::default()).expect("open");
    log.append(1, b"one").expect("append");
    log.sync().expect("sync");
    assert_eq!(log.stats().syncs, 1);
    assert_eq!(log.stats().flushes, 1);

    for i in 2..=1000 {
        log.append(i, &payload(i)).expect("append");
    }
    log.sync().expect("sync");
    assert_eq!(log.stats().syncs, 2);
    assert_eq!(log.stats().flushes, 2, "a batch is one fdatasync");
    assert_eq!(log.stats().appends, 1000);

    // Nothing appended: nothing to flush.
    log.sync().expect("sync");
    assert_eq!(log.stats().syncs, 2);
    assert_eq!(log.stats().flushes, 2);
}

#[test]
fn truncate_then_append_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = filled(dir.path(), 1..=200);
    let segments_before = segment_files(dir.path()).len();

    // Mid segment, with later segments to delete.
    log.truncate_from(60).expect("truncate");
    assert_holds(&log, 1..=59);
    assert_eq!(log.read(60).expect("read"), None);
    assert!(segment_files(dir.path()).len() < segments_before);
    assert!(matches!(
        log.append(61, b"x"),
        Err(Error::LogIndex {
            expected: 60,
            got: 61
        })
    ));
    let other = |i: u64| format!("term 2 entry {i}").into_bytes();
    for i in 60..=120 {
        log.append(i, &other(i)).expect("append after truncate");
    }
    log.sync().expect("sync");
    drop(log);

    let mut log = open(dir.path());
    assert_eq!(log.last_index(), Some(120));
    assert_eq!(log.read(59).expect("read"), Some(&payload(59)[..]));
    for i in 60..=120 {
        assert_eq!(log.read(i).expect("read"), Some(&other(i)[..]));
    }

    // At a segment's first index: that segment goes whole.
    let second = log.segments[1].first_index;
    log.truncate_from(second).expect("truncate at boundary");
    assert_eq!(log.last_index(), Some(second - 1));
    drop(log);
    let mut log = open(dir.path());
    assert_eq!(log.last_index(), Some(second - 1));
    log.append(second, b"again").expect("append");

    // Past the end: nothing to do. From the first: empty, and free to restart.
    log.truncate_from(second + 10).expect("no-op");
    log.truncate_from(1).expect("truncate all");
    assert!(log.is_empty());
    assert!(segment_files(dir.path()).is_empty());
    log.append(500, b"restart").expect("append to an empty log");
    drop(log);
    let log = open(dir.path());
    assert_eq!(
        (log.first_index(), log.last_index()),
        (Some(500), Some(500))
    );
}

#[test]
fn interrupted_truncation_is_finished_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = filled(dir.path(), 1..=20);
    let (path, at) = locate(&log, 15);
    drop(log);
    // The marker went down, the crash came before the stale records were zeroed.
    let mut marker = [0u8; FRAME_HEADER_BYTES];
    write_end_marker(&mut marker, 15);
    write_at(&path, at, &marker);

    let mut log = open(dir.path());
    assert_holds(&log, 1..=14);
    log.append(15, b"new 15").expect("append");
    log.sync().expect("sync");
    drop(log);
    let log = open(dir.path());
    assert_eq!(log.last_index(), Some(15));
    assert_eq!(log.read(15).expect("read"), Some(&b"new 15"[..]));
}

#[test]
fn torn_tail_is_cut() {
    type Tear = fn(&Path, usize, usize);
    let tears: [(&str, Tear); 4] = [
        ("file cut mid-record", |path, at, _| {
            let file = fs::OpenOptions::new().write(true).open(path).expect("open");
            file.set_len((at + FRAME_HEADER_BYTES + 3) as u64)
                .expect("set_len");
        }),
        ("payload scribbled", |path, at, _| {
            write_at(path, at + FRAME_HEADER_BYTES + 2, b"\xff\xff\xff")
        }),
        ("length runs past the segment", |path, at, _| {
            write_at(path, at, &(200_000u32).to_le_bytes())
        }),
        ("payload only half written", |path, at, len| {
            write_at(path, at + FRAME_HEADER_BYTES + len / 2, &vec![0; len])
        }),
    ];
    for (name, tear) in tears {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = filled(dir.path(), 1..=30);
        let (path, at) = locate(&log, 30);
        drop(log);
        tear(&path, at, payload(30).len());

        let mut log = open(dir.path());
        assert_holds(&log, 1..=29);
        assert_eq!(log.read(30).expect("read"), None, "{name}");
        assert_eq!(log.stats().flushes, 1, "{name}: the cut is made durable");
        log.append(30, b"rewritten").expect("append after the cut");
        log.append(31, b"and more").expect("append");
        log.sync().expect("sync");
        drop(log);

        let log = open(dir.path());
        assert_eq!(log.last_index(), Some(31), "{name}");
        assert_eq!(log.read(30).expect("read"), Some(&b"rewritten"[..]));
        assert_eq!(log.stats().flushes, 0, "{name}: nothing left to cut");
    }
}

#[test]
fn corruption_in_the_middle_refuses_to_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = filled(dir.path(), 1..=30);
    assert_eq!(log.segments.len(), 1);
    let (path, bad_at) = locate(&log, 3);
    drop(log);
    write_at(&path, bad_at + FRAME_HEADER_BYTES + 1, b"\x00\xee");

    let err = SegmentLog::open(dir.path(), small())
        .err()
        .expect("must refuse");
    let msg = err.to_string();
    let name = path
        .file_name()
        .expect("name")
        .to_string_lossy()
        .to_string();
    assert!(matches!(err, Error::LogCorrupt { .. }), "{msg}");
    assert!(msg.contains(&name), "{msg}");
    assert!(msg.contains(&format!("offset {bad_at} ")), "{msg}");
    assert!(msg.contains("crc mismatch"), "{msg}");
    assert!(msg.contains("valid record"), "{msg}");
}

#[test]
fn zeroed_record_header_in_the_middle_refuses_to_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = filled(dir.path(), 1..=10);
    let (path, at) = locate(&log, 4);
    drop(log);
    // A lost write: the frame reads as the end, but records follow it.
    write_at(&path, at, &[0; FRAME_HEADER_BYTES]);
    let msg = SegmentLog::open(dir.path(), small())
        .err()
        .expect("must refuse")
        .to_string();
    assert!(msg.contains(&format!("offset {at} ")), "{msg}");
    assert!(msg.contains("valid record (index 5"), "{msg}");
}

#[test]
fn bad_tail_of_a_sealed_segment_refuses_to_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = filled(dir.path(), 1..=200);
    let first_of_second = log.segments[1].first_index;
    let (path, at) = locate(&log, first_of_second - 1);
    drop(log);
    // The last record of the first segment: a torn tail there is corruption.
    write_at(&path, at + FRAME_HEADER_BYTES, b"\xff");
    let msg = SegmentLog::open(dir.path(), small())
        .err()
        .expect("must refuse")
        .to_string();
    assert!(msg.contains("00000000000000000001.seg"), "{msg}");
    assert!(msg.contains(&format!("offset {at} ")), "{msg}");
    assert!(msg.contains("not the last"), "{msg}");
}

#[test]
fn missing_segment_refuses_to_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(filled(dir.path(), 1..=300));
    let files = segment_files(dir.path());
    assert!(files.len() >= 3);
    fs::remove_file(&files[1]).expect("remove");
    let msg = SegmentLog::open(dir.path(), small())
        .err()
        .expect("must refuse")
        .to_string();
    let name = files[2]
        .file_name()
        .expect("name")
        .to_string_lossy()
        .to_string();
    assert!(msg.contains(&name), "{msg}");
    assert!(msg.contains("offset 0 "), "{msg}");
}

#[test]
fn bad_appends_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path());
    log.append(7, b"seven").expect("any first index");
    assert!(matches!(
        log.append(9, b"nine"),
        Err(Error::LogIndex {
            expected: 8,
            got: 9
        })
    ));
    assert!(matches!(
        log.append(7, b"again"),
        Err(Error::LogIndex { .. })
    ));
    assert!(matches!(
        log.append(8, b""),
        Err(Error::LogRecordEmpty { index: 8 })
    ));
    let huge = vec![0u8; RECORD_BYTES_MAX + 1];
    assert!(matches!(
        log.append(8, &huge),
        Err(Error::RecordTooLarge {
            limit: RECORD_BYTES_MAX,
            ..
        })
    ));
    log.append(8, b"eight").expect("the log is still usable");
    assert_eq!(log.last_index(), Some(8));

    assert!(matches!(
        SegmentLog::open(&dir.path().join("other"), LogOptions { segment_bytes: 100 }),
        Err(Error::LogSegmentSize { bytes: 100, .. })
    ));
}

#[test]
fn one_log_per_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    assert!(matches!(
        SegmentLog::open(dir.path(), small()),
        Err(Error::LogLocked { .. })
    ));
    drop(log);
    open(dir.path());
}

#[test]
fn purge_marks_but_keeps_the_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = filled(dir.path(), 1..=100);
    assert_eq!(log.purged(), None);
    log.mark_purged(50).expect("mark");
    log.mark_purged(40).expect("lower mark is a no-op");
    assert_eq!(log.purged(), Some(50));
    assert!(matches!(
        log.truncate_from(50),
        Err(Error::LogTruncatePurged {
            index: 50,
            purged: 50
        })
    ));
    drop(log);

    let mut log = open(dir.path());
    assert_eq!(log.purged(), Some(50));
    assert_holds(&log, 1..=100);
    log.truncate_from(51).expect("above the mark is allowed");
    assert_holds(&log, 1..=50);
}

#[test]
fn leftover_files_from_a_crash_are_handled() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(filled(dir.path(), 1..=10));
    // A segment whose creation was interrupted.
    fs::write(dir.path().join("00000000000000000011.seg.tmp"), b"partial").expect("tmp");
    let mut log = open(dir.path());
    assert!(!dir.path().join("00000000000000000011.seg.tmp").exists());
    assert_holds(&log, 1..=10);
    log.append(11, b"eleven").expect("append");
}

#[test]
fn misplaced_record_at_the_tail_refuses_to_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = filled(dir.path(), 1..=10);
    let (path, at) = locate(&log, 10);
    drop(log);
    // A whole, valid frame under the wrong index: no torn write makes that.
    let mut frame = vec![0u8; super::frame::frame_bytes(payload(10).len())];
    super::frame::write_record(&mut frame, 12, &payload(10));
    write_at(&path, at, &frame);
    let msg = SegmentLog::open(dir.path(), small())
        .err()
        .expect("must refuse")
        .to_string();
    assert!(msg.contains(&format!("offset {at} ")), "{msg}");
    assert!(msg.contains("holds index 12 where 10 belongs"), "{msg}");
}
