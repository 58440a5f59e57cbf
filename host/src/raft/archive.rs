//! The command archive: every entry the group ever committed, from index 1,
//! on every replica, so each can be audited and its read models rebuilt
//! from genesis.
//!
//! A replica that applied everything itself holds the archive in its live
//! log (purging only marks entries). One installed from a snapshot never
//! received the entries the snapshot covers: the snapshot's stream carries
//! them (`crate::cluster::transfer`), and they go to `raft/history/`, the
//! prefix the live log no longer holds. The archive is `history` from 1,
//! then the live log where `history` ends.

use super::log_store::{Inner, LogStore};
use super::{NodeId, TypeConfig};
use crate::cluster::transfer::Staged;
use crate::log::{LogOptions, SegmentLog};
use crate::{Error, Result};
use openraft::{Entry, LogId};
use std::path::Path;

/// The archived prefix the live log no longer holds, under the Raft dir.
pub const HISTORY_DIR: &str = "history";

impl Inner {
    /// The last index `L` such that entries 1 to `L` are all archived.
    fn archived_through(&self) -> u64 {
        let history = self.history.last_index().unwrap_or(0);
        match self.log.first_index().zip(self.log.last_index()) {
            Some((first, last)) if first <= history + 1 => history.max(last),
            _ => history,
        }
    }

    fn archived(&self, index: u64) -> Result<Option<Vec<u8>>> {
        let from = if self.history.last_index().is_some_and(|last| index <= last) {
            &self.history
        } else {
            &self.log
        };
        Ok(from.read(index)?.map(<[u8]>::to_vec))
    }
}

impl LogStore {
    /// How far the archive reaches unbroken from index 1, at most to
    /// `cap`: a receiver caps it at what it applied, since only applied
    /// entries are sure to be committed.
    pub fn archived_through(&self, cap: u64) -> u64 {
        self.lock().archived_through().min(cap)
    }

    /// Entry `index` as stored, purged or not.
    pub fn archived(&self, index: u64) -> Result<Option<Vec<u8>>> {
        self.lock().archived(index)
    }

    /// Extends the history with the entries a received snapshot carried,
    /// up to the snapshot's `last`: first with the live
    /// log's entries before them (applied here, so committed), then with
    /// theirs, each checked to be the entry its place wants. Called before
    /// the snapshot's state is installed, so that the purge that follows
    /// the install finds the history whole and can drop the old live log.
    pub fn absorb(&self, received: &mut Staged, last: Option<LogId<NodeId>>) -> Result<()> {
        let first = received.first;
        let mut inner = self.lock();
        let inner = &mut *inner;
        let mut next = inner.history.last_index().unwrap_or(0) + 1;
        let live_first = inner.log.first_index().unwrap_or(u64::MAX);
        while next < first && live_first <= next {
            let Some(bytes) = inner.log.read(next)? else {
                break;
            };
            inner.history.append(next, bytes)?;
            next += 1;
        }
        if next < first {
            tracing::warn!(
                missing_from = next,
                missing_to = first - 1,
                "the command archive has a gap the received snapshot does not fill"
            );
            return Ok(());
        }
        while let Some((index, bytes)) = received.next_record()? {
            let entry: Entry<TypeConfig> =
                postcard::from_bytes(bytes).map_err(|e| Error::LogCorrupt {
                    path: inner.dir.join(HISTORY_DIR),
                    offset: 0,
                    why: format!("received entry {index}: {e}"),
                })?;
            let at_last = last.is_some_and(|l| l.index == index);
            if entry.log_id.index != index || (at_last && Some(entry.log_id) != last) {
                return Err(Error::LogCorrupt {
                    path: inner.dir.join(HISTORY_DIR),
                    offset: 0,
                    why: format!(
                        "received entry {index} is entry {}, not the snapshot's",
                        entry.log_id
                    ),
                });
            }
            if index >= next {
                inner.history.append(index, bytes)?;
                next = index + 1;
            }
        }
        inner.history.sync()?;
        tracing::info!(
            through = next - 1,
            "command archive extended from a snapshot"
        );
        Ok(())
    }
}

/// Hands every archived entry of the stopped replica's Raft dir `raft_dir`
/// to `each`, from index 1, in order; an archive with a gap is an error
/// naming it.
pub fn for_each_archived(
    raft_dir: &Path,
    mut each: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<()> {
    let history_dir = raft_dir.join(HISTORY_DIR);
    let history = if history_dir.is_dir() {
        Some(SegmentLog::open(&history_dir, LogOptions::default())?)
    } else {
        None
    };
    let live = SegmentLog::open(
        &raft_dir.join(super::log_store::ENTRIES_DIR),
        LogOptions::default(),
    )?;
    let mut next = 1;
    for log in history.iter().chain([&live]) {
        for item in log.range(next..) {
            let (index, bytes) = item?;
            if index != next {
                return Err(Error::ArchiveGap {
                    from: next,
                    to: index - 1,
                });
            }
            each(index, bytes)?;
            next += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::transfer::COMMANDS_FILE;
    use openraft::{CommittedLeaderId, EntryPayload};
    use std::sync::Arc;

    struct Applied;

    impl super::super::Durable for Applied {
        fn flush(&self) -> Result<u64> {
            Ok(u64::MAX)
        }

        fn applied(&self) -> u64 {
            u64::MAX
        }
    }

    fn entry(term: u64, index: u64) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
            payload: EntryPayload::Blank,
        }
    }

    /// A received snapshot's staged entries, as `transfer` writes them.
    fn staged(dir: &Path, entries: &[Entry<TypeConfig>]) -> Staged {
        let mut bytes = entries[0].log_id.index.to_le_bytes().to_vec();
        for entry in entries {
            let encoded = postcard::to_allocvec(entry).expect("encodes");
            bytes.extend_from_slice(&(encoded.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&encoded);
        }
        std::fs::write(dir.join(COMMANDS_FILE), bytes).expect("written");
        Staged::open(dir, COMMANDS_FILE)
            .expect("opens")
            .expect("staged")
    }

    fn archived(raft: &Path) -> Vec<u64> {
        let mut indexes = Vec::new();
        for_each_archived(raft, |index, bytes| {
            let entry: Entry<TypeConfig> = postcard::from_bytes(bytes).expect("an entry");
            assert_eq!(entry.log_id.index, index);
            indexes.push(index);
            Ok(())
        })
        .expect("the archive reads");
        indexes
    }

    #[test]
    fn a_snapshots_entries_join_the_applied_ones_and_the_archive_reads_from_genesis() {
        let dir = tempfile::tempdir().expect("tempdir");
        let raft = dir.path().join("raft");
        let store = LogStore::open(&raft, LogOptions::default(), Arc::new(Applied)).expect("opens");
        // Applied up to 5 here; 6 and 7 are a deposed leader's.
        store
            .lock()
            .append(
                (1..=5)
                    .map(|i| entry(1, i))
                    .chain([entry(2, 6), entry(2, 7)]),
            )
            .expect("appended");
        assert_eq!(store.archived_through(5), 5);
        let theirs: Vec<_> = (6..=9).map(|i| entry(3, i)).collect();
        store
            .absorb(&mut staged(dir.path(), &theirs), Some(theirs[3].log_id))
            .expect("absorbed");
        assert_eq!(store.lock().history.last_index(), Some(9));
        let sixth: Entry<TypeConfig> =
            postcard::from_bytes(&store.archived(6).expect("reads").expect("held"))
                .expect("an entry");
        assert_eq!(
            sixth.log_id, theirs[0].log_id,
            "the leader's entry, not the stale one"
        );
        store.lock().restart_after_snapshot().expect("restarted");
        store.lock().append([entry(3, 10)]).expect("appended");
        store.lock().log.sync().expect("synced");
        drop(store);
        assert_eq!(archived(&raft), (1..=10).collect::<Vec<_>>());
        let kept: Vec<_> = std::fs::read_dir(&raft)
            .expect("lists")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| name.starts_with("archive-"))
            .collect();
        assert!(kept.is_empty(), "the replaced log was covered: {kept:?}");
    }

    #[test]
    fn an_entry_that_is_not_the_snapshots_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LogStore::open(
            &dir.path().join("raft"),
            LogOptions::default(),
            Arc::new(Applied),
        )
        .expect("opens");
        let theirs: Vec<_> = (1..=3).map(|i| entry(1, i)).collect();
        let error = store
            .absorb(&mut staged(dir.path(), &theirs), Some(entry(2, 3).log_id))
            .expect_err("refused");
        assert!(error.to_string().contains("not the snapshot's"), "{error}");
        let misplaced = [entry(1, 1), entry(1, 3)];
        let mut file = staged(dir.path(), &misplaced);
        let error = store.absorb(&mut file, None).expect_err("refused");
        assert!(
            error.to_string().contains("received entry 2 is entry"),
            "{error}"
        );
    }

    #[test]
    fn an_archive_with_a_gap_names_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let raft = dir.path().join("raft");
        let store = LogStore::open(&raft, LogOptions::default(), Arc::new(Applied)).expect("opens");
        store
            .lock()
            .append((4..=6).map(|i| entry(1, i)))
            .expect("appended");
        store.lock().log.sync().expect("synced");
        assert_eq!(store.archived_through(u64::MAX), 0);
        drop(store);
        let error = for_each_archived(&raft, |_, _| Ok(())).expect_err("a gap");
        assert!(
            matches!(error, Error::ArchiveGap { from: 1, to: 3 }),
            "{error}"
        );
    }
}
