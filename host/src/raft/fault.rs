//! Test-only fault injection (the `fault-injection` feature, which only the
//! test builds enable): a replica that makes one event record differently
//! from its group, as a flipped byte on disk or a host that executed a
//! batch differently would.

use crate::store::{RecordHeader, Store};

/// A file in the store's directory: while it is there, the next record made
/// is altered, and the file removed.
pub const ALTER_NEXT_RECORD_FILE: &str = "fault-alter-next-record";

/// Alters the record about to be made, if asked to: its time moves by a
/// millisecond, so its chain head differs from the group's.
pub fn alter_record(store: &Store, header: &mut RecordHeader) {
    if std::fs::remove_file(store.dir().join(ALTER_NEXT_RECORD_FILE)).is_ok() {
        tracing::warn!(
            seq = store.meta().events_last + 1,
            "fault injection: altering an event record"
        );
        header.timestamp_ms += 1;
    }
}
