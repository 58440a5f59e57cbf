use super::LogStore;
use super::snapshot::{CHECKPOINT_DIR, SnapshotFiles, Snapshots, remove_incoming};
use super::{BatchReply, CommandBatch, NodeId, Request, SplitEntry, TypeConfig, any_error};
use crate::cluster::transfer::{COMMANDS_FILE, EVENTS_FILE, Staged};
use crate::node::{Holdings, Layout, MapChange, MapOutcome, MapRefused};
use crate::partition::split::{self, Births};
use crate::partition::{Child, SplitOutcome, SplitRefused, Splits};
use crate::service::Reply;
use crate::sm::{Answer, BatchHeader, Executed, Executor, Runtime, VersionHash, VersionOutcome};
use crate::store::{RecordHeader, Seed, Store};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    CommittedLeaderId, Entry, EntryPayload, LogId, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership,
};
use std::sync::Arc;
use wallet_core::{Command, Event, Txid, codec};

type StorageResult<T> = Result<T, StorageError<NodeId>>;

/// Applies committed entries: each batch runs through the version the
/// schedule names for its index (prefetch from the store, execute), and its
/// event record, state writes and applied log id are committed together.
/// Where the schedule switches versions, the new version's migration (if
/// it has one) runs over the whole state before the entry at the switch. A
/// thin adapter: the rules are the guest's, the schedule and executor
/// `sm`'s, the durability the store's.
pub struct StateMachine {
    store: Arc<Store>,
    executor: Executor,
    /// The partition, and the accounts it holds.
    holdings: Holdings,
    snapshots: Snapshots,
    /// Where a received snapshot's command entries are archived.
    log: LogStore,
    /// Where a split writes its child's first state.
    births: Births,
}

fn apply_err(error: &crate::Error) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(any_error(error)).into()
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("log ids and memberships serialize")
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> StorageResult<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| StorageIOError::read_state_machine(any_error(&e)).into())
}

/// The membership a store holds (`Meta::membership`); the default before
/// the first.
fn stored_membership(
    bytes: Option<&[u8]>,
) -> crate::Result<StoredMembership<NodeId, openraft::BasicNode>> {
    let decoded = bytes.map(serde_json::from_slice).transpose();
    Ok(decoded
        .map_err(|e| crate::Error::StoreFailed(e.to_string()))?
        .unwrap_or_default())
}

/// A learner (a replica being added or removed) in a stored membership:
/// a split is refused while the group has one, as its child's group would
/// start without it.
pub fn learner(membership: Option<&[u8]>) -> crate::Result<Option<NodeId>> {
    Ok(stored_membership(membership)?
        .membership()
        .learner_ids()
        .next())
}

impl StateMachine {
    pub fn new(
        store: Arc<Store>,
        executor: Executor,
        holdings: Holdings,
        snapshots: Snapshots,
        log: LogStore,
        births: Births,
    ) -> Self {
        StateMachine {
            store,
            executor,
            holdings,
            snapshots,
            log,
            births,
        }
    }

    /// Applies a split entry: refused, with only the position moving, for
    /// a child that is the partition itself, before any version runs, or
    /// where `split::plan` refuses; else the child's first state is
    /// written, then the parent's commit, and from here on the partition
    /// holds the lower half. An entry naming a child the partition already
    /// has answers what that split did.
    fn apply_split(
        &mut self,
        log_id: LogId<NodeId>,
        entry: &SplitEntry,
    ) -> crate::Result<BatchReply> {
        let index = log_id.index;
        let outcome = self.split(log_id, entry)?;
        if let SplitOutcome::Refused(why) = &outcome {
            tracing::warn!(index, child = entry.child, ?why, "a split was refused");
            self.store.commit_marker(encode(&log_id), index, None)?;
        }
        Ok(BatchReply {
            index,
            split: Some(outcome),
            ..BatchReply::default()
        })
    }

    /// Applies a map entry; only partition 0 holds the map.
    fn apply_map(
        &mut self,
        log_id: LogId<NodeId>,
        change: &MapChange,
    ) -> crate::Result<BatchReply> {
        let index = log_id.index;
        let (outcome, after) = match self.holdings.partition() {
            0 => Layout::apply(self.store.layout()?.as_ref(), change),
            _ => (MapOutcome::Refused(MapRefused::NotTheMap), None),
        };
        self.store
            .commit_layout(encode(&log_id), index, after.as_ref())?;
        if after.is_some() {
            tracing::info!(index, ?outcome, "the map changed");
        }
        Ok(BatchReply {
            index,
            map: Some(outcome),
            ..BatchReply::default()
        })
    }

    fn split(&mut self, log_id: LogId<NodeId>, entry: &SplitEntry) -> crate::Result<SplitOutcome> {
        let index = log_id.index;
        let partition = self.holdings.partition();
        let splits = self.store.splits()?.unwrap_or(Splits {
            range: self.holdings.range(),
            children: Vec::new(),
        });
        if let Some(done) = splits.children.iter().find(|c| c.partition == entry.child) {
            self.store.commit_marker(encode(&log_id), index, None)?;
            return Ok(SplitOutcome::Split(*done));
        }
        let refused = |why| Ok(SplitOutcome::Refused(why));
        if entry.child == partition {
            return refused(SplitRefused::ChildIsParent);
        }
        let Some(version) = self.store.version_at(index) else {
            return refused(SplitRefused::NoVersion);
        };
        let meta = self.store.meta();
        let membership = stored_membership(meta.membership.as_deref())?;
        if let Some(learner) = membership.membership().learner_ids().next() {
            return refused(SplitRefused::ReplicaMoving(learner));
        }
        let schedule = self.store.schedule();
        let runtime = runtime(&mut self.executor, &self.store, version)?;
        let (lower, upper) = match split::plan(splits.range, &schedule, index, runtime) {
            Ok(halves) => halves,
            Err(why) => return refused(why),
        };
        let journal = self.store.in_flight()?;
        let started = std::time::Instant::now();
        let derived = match self.store.with_guest_records(|records| {
            split::derive(runtime, records, journal, upper, Txid(entry.id))
        })?? {
            Ok(derived) => derived,
            Err(failure) => return refused(SplitRefused::VersionFailed(failure.to_string())),
        };
        let child = Child {
            partition: entry.child,
            range: upper,
            index,
            id: entry.id,
        };
        // The child starts as a group whose first entry (index 0) is
        // applied: its own log, terms and indexes, with the parent's
        // members.
        let start = LogId::new(CommittedLeaderId::new(0, 0), 0);
        let component = self
            .store
            .version(version)?
            .ok_or(crate::Error::UnknownVersion(version))?;
        self.births.seed(&Seed {
            partition: entry.child,
            derived: &derived,
            splits: Splits {
                range: upper,
                children: Vec::new(),
            },
            version,
            component: &component,
            applied: encode(&start),
            membership: encode(&StoredMembership::new(
                Some(start),
                membership.membership().clone(),
            )),
            timestamp_ms: meta.timestamp_ms,
        })?;
        let header = RecordHeader {
            log_index: index,
            timestamp_ms: meta.timestamp_ms,
            partition,
            version,
            failure: None,
        };
        let mut children = splits.children;
        children.push(child);
        let after = Splits {
            range: lower,
            children,
        };
        self.store
            .commit_split(encode(&log_id), &header, &derived, &after)?;
        self.holdings = Holdings::from_range(partition, lower);
        tracing::info!(
            partition,
            index,
            child = entry.child,
            accounts = derived.accounts(),
            elapsed = ?started.elapsed(),
            "split off a partition"
        );
        Ok(SplitOutcome::Split(child))
    }

    /// Runs one batch and commits it: the calls of it this partition holds
    /// the accounts of (the others are answered `Moved`; `homes` names the
    /// accounts of a coordinator's steps). The batch's time never goes
    /// below the previous batch's, whatever order the leader's stamps
    /// landed in the log.
    fn apply_batch(
        &mut self,
        log_id: LogId<NodeId>,
        batch: &CommandBatch,
        homes: &[(u32, String)],
    ) -> crate::Result<BatchReply> {
        let header = BatchHeader {
            log_index: log_id.index,
            timestamp_ms: batch.timestamp_ms.max(self.store.timestamp_ms()),
            partition: self.holdings.partition(),
        };
        let fenced = self.holdings.fence(&batch.calls, homes);
        let span = tracing::debug_span!("apply_batch", index = log_id.index);
        let _enter = span.enter();
        // A leader activates a version before it proposes any batch.
        let version = self
            .store
            .version_at(log_id.index)
            .ok_or(crate::Error::NoActiveVersion(log_id.index))?;
        let executed = runtime(&mut self.executor, &self.store, version)?.execute(
            header,
            &fenced.calls,
            &mut self.store.state(),
        )?;
        let mut record = RecordHeader {
            log_index: header.log_index,
            timestamp_ms: header.timestamp_ms,
            partition: header.partition,
            version,
            failure: None,
        };
        let (replies, answer) = match &executed {
            Executed::Applied(answer) => {
                let replies = answer
                    .outcomes()
                    .iter()
                    .map(|outcome| match outcome {
                        Ok(()) => Reply::Accepted,
                        Err(reason) => Reply::Rejected(*reason),
                    })
                    .collect();
                (replies, Some(answer))
            }
            Executed::Failed(failure) => {
                tracing::error!(index = log_id.index, %failure, "the state machine failed a batch");
                record.failure = Some(failure.clone());
                // A batch that does not decode gets no replies; its
                // requests fail for want of them.
                let count = codec::calls_count(&fenced.calls).unwrap_or(0);
                (vec![Reply::Failed(failure.clone()); count], None)
            }
        };
        let replies = with_moved(replies, &fenced.moved);
        #[cfg(feature = "fault-injection")]
        super::fault::alter_record(&self.store, &mut record);
        let journal = match answer {
            Some(answer) => journal_changes(&fenced.calls, answer, header.timestamp_ms)?,
            None => Vec::new(),
        };
        self.store
            .commit_batch(encode(&log_id), &record, answer, &journal)?;
        metrics::histogram!("batch_commands").record(replies.len() as f64);
        Ok(BatchReply {
            index: log_id.index,
            replies,
            ..BatchReply::default()
        })
    }

    /// Brings the state to the layout of `version`, which runs from
    /// `index` on: its migration over every record, committed (with the
    /// index, so a crash does not run it twice) before the entry at
    /// `index` is applied. A migration the version fails changes nothing,
    /// the same on every replica and in every audit.
    fn migrate(&mut self, version: VersionHash, index: u64) -> crate::Result<()> {
        let runtime = runtime(&mut self.executor, &self.store, version)?;
        if !runtime.migrates() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        match self
            .store
            .with_guest_records(|records| crate::sm::migrate(runtime, records))??
        {
            Ok(writes) => {
                self.store.commit_migration(index, &writes)?;
                tracing::info!(%version, index, writes = writes.len(), elapsed = ?started.elapsed(), "migrated the state");
            }
            Err(failure) => {
                self.store.commit_migration(index, &[])?;
                tracing::error!(%version, index, %failure, "the version failed its migration; the state stays as it was");
            }
        }
        Ok(())
    }

    fn apply_all(&mut self, entries: Vec<Entry<TypeConfig>>) -> crate::Result<Vec<BatchReply>> {
        let mut replies = Vec::with_capacity(entries.len());
        let mut tokens_changed = false;
        for entry in entries {
            let index = entry.log_id.index;
            if let Some(version) = self.store.switch_at(index) {
                self.migrate(version, index)?;
            }
            match &entry.payload {
                EntryPayload::Normal(Request::Batch(batch)) => {
                    replies.push(self.apply_batch(entry.log_id, batch, &[])?);
                }
                EntryPayload::Normal(Request::Homed(homed)) => {
                    replies.push(self.apply_batch(entry.log_id, &homed.batch, &homed.homes)?);
                }
                EntryPayload::Normal(Request::Tokens(change)) => {
                    tokens_changed = true;
                    let outcome = self
                        .store
                        .commit_tokens(encode(&entry.log_id), index, change)?;
                    replies.push(BatchReply {
                        index,
                        tokens: Some(outcome),
                        ..BatchReply::default()
                    });
                }
                EntryPayload::Normal(Request::Versions(change)) => {
                    let outcome =
                        self.store
                            .commit_versions(encode(&entry.log_id), index, change)?;
                    if let VersionOutcome::Deployed {
                        hash, new: true, ..
                    }
                    | VersionOutcome::Activated { hash, .. } = outcome
                    {
                        // Compiled now rather than at the switch, where it
                        // would hold up the batches behind it.
                        if let Err(error) = runtime(&mut self.executor, &self.store, hash) {
                            tracing::warn!(%hash, %error, "a deployed version does not run here");
                        }
                    }
                    replies.push(BatchReply {
                        index,
                        versions: Some(outcome),
                        ..BatchReply::default()
                    });
                }
                EntryPayload::Normal(Request::Split(split)) => {
                    replies.push(self.apply_split(entry.log_id, split)?);
                }
                EntryPayload::Normal(Request::Map(change)) => {
                    replies.push(self.apply_map(entry.log_id, change)?);
                }
                EntryPayload::Normal(Request::Finished(ids)) => {
                    self.store
                        .commit_finished(encode(&entry.log_id), index, ids)?;
                    replies.push(BatchReply {
                        index,
                        ..BatchReply::default()
                    });
                }
                EntryPayload::Blank => {
                    self.store
                        .commit_marker(encode(&entry.log_id), index, None)?;
                    replies.push(BatchReply {
                        index,
                        ..BatchReply::default()
                    });
                }
                EntryPayload::Membership(m) => {
                    let membership = StoredMembership::new(Some(entry.log_id), m.clone());
                    let encoded = Some(encode(&membership));
                    self.store
                        .commit_marker(encode(&entry.log_id), index, encoded)?;
                    replies.push(BatchReply {
                        index,
                        ..BatchReply::default()
                    });
                }
            }
        }
        self.store.publish();
        if tokens_changed {
            // Made durable at once: a member restarted after a crash knows
            // every token it had applied before it replays a single entry,
            // so a client is never refused by a member coming back.
            self.store.flush()?;
        } else {
            self.store.flush_if_due()?;
        }
        metrics::gauge!("applied_index").set(self.store.meta().applied_index as f64);
        Ok(replies)
    }
}

/// What a batch the version applied does to the coordinator's journal.
fn journal_changes(
    calls: &[u8],
    answer: &Answer,
    timestamp_ms: u64,
) -> crate::Result<Vec<crate::coordinator::journal::Change>> {
    let calls = codec::calls(calls).map_err(|e| {
        crate::Error::StoreFailed(format!("an applied batch does not decode: {e:?}"))
    })?;
    let tried = calls.iter().zip(answer.outcomes()).any(|(call, outcome)| {
        outcome.is_ok() && matches!(call.command, Command::TccReserve(_) | Command::SagaDebit(_))
    });
    let reserved = match tried {
        true => reserving_calls(answer, calls.len())?,
        false => Vec::new(),
    };
    Ok(crate::coordinator::journal::changes(
        &calls,
        answer.outcomes(),
        |i| reserved.get(i).copied().unwrap_or(false),
        timestamp_ms,
    ))
}

/// Which calls of a batch took money at a transfer's source (a TC/C
/// reservation, a saga's debit): the events say, since a retry answered
/// from its receipt makes none.
fn reserving_calls(answer: &Answer, calls: usize) -> crate::Result<Vec<bool>> {
    let mut reserving = vec![false; calls];
    for record in answer.event_records() {
        let (call, event) = record.map_err(|e| {
            crate::Error::StoreFailed(format!("an applied batch's events do not decode: {e:?}"))
        })?;
        if matches!(event, Event::FundsReserved(_) | Event::Sent(_)) {
            reserving[call as usize] = true;
        }
    }
    Ok(reserving)
}

/// The runtime of `version`, made from the component the store holds for
/// it if the executor has none at hand.
fn runtime<'e>(
    executor: &'e mut Executor,
    store: &Store,
    version: VersionHash,
) -> crate::Result<&'e mut Runtime> {
    executor.runtime(version, || {
        store
            .version(version)?
            .ok_or(crate::Error::UnknownVersion(version))
    })
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Snapshots;

    async fn applied_state(
        &mut self,
    ) -> StorageResult<(
        Option<LogId<NodeId>>,
        StoredMembership<NodeId, openraft::BasicNode>,
    )> {
        let meta = self.store.meta();
        let applied = meta.applied.as_deref().map(decode).transpose()?;
        let membership = meta.membership.as_deref().map(decode).transpose()?;
        Ok((applied, membership.unwrap_or_default()))
    }

    /// Executes on this worker thread, with the runtime's other tasks moved
    /// off it: a batch is CPU and disk work.
    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<BatchReply>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        tokio::task::block_in_place(|| self.apply_all(entries)).map_err(|e| {
            tracing::error!(error = %e, "applying entries failed; the node stops");
            apply_err(&e)
        })
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.snapshots.clone()
    }

    /// A directory to receive a snapshot's files into (the network
    /// streams them there itself: `crate::cluster::transfer`).
    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<SnapshotFiles>> {
        let dir = self
            .snapshots
            .incoming("received")
            .map_err(|e| StorageIOError::write_snapshot(None, any_error(&e)))?
            .keep();
        Ok(Box::new(SnapshotFiles { dir }))
    }

    /// Installs a received snapshot: first the event records it carries
    /// (each checked against any this replica already holds) and the
    /// command entries (into the archive), then its checkpoint in place of
    /// the state; then snapshots the installed
    /// state, so it is this replica's current snapshot too (a leader
    /// sending an older one would send the purged gap again and again).
    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
        snapshot: Box<SnapshotFiles>,
    ) -> StorageResult<()> {
        let installed = tokio::task::block_in_place(|| {
            let events = self.store.event_log();
            if let Some(mut staged) = Staged::open(&snapshot.dir, EVENTS_FILE)? {
                while let Some((seq, record)) = staged.next_record()? {
                    events.append(seq, record)?;
                }
            }
            if let Some(mut staged) = Staged::open(&snapshot.dir, COMMANDS_FILE)? {
                self.log.absorb(&mut staged, meta.last_log_id)?;
            }
            let installed = self.store.install(&snapshot.dir.join(CHECKPOINT_DIR))?;
            self.snapshots
                .build()
                .map_err(|e| crate::Error::StoreFailed(format!("snapshotting the installed state: {e}")))?;
            Ok::<_, crate::Error>(installed)
        })
        .map_err(|e| {
            tracing::error!(error = %e, snapshot = %meta.snapshot_id, "installing a snapshot failed");
            StorageIOError::write_snapshot(Some(meta.signature()), any_error(&e))
        })?;
        remove_incoming(&snapshot.dir);
        // The snapshot may be past a split this replica never applied.
        if let Some(splits) = self.store.splits().map_err(|e| apply_err(&e))? {
            self.holdings = Holdings::from_range(self.holdings.partition(), splits.range);
        }
        metrics::gauge!("applied_index").set(installed.applied_index as f64);
        metrics::counter!("snapshots_installed").increment(1);
        tracing::info!(
            snapshot = %meta.snapshot_id,
            applied = installed.applied_index,
            events = installed.events_last,
            "snapshot installed"
        );
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        self.snapshots.current()
    }
}

/// The replies to the calls a batch ran, with `Moved` put back at the
/// indices (ascending) of those the partition did not hold.
fn with_moved(ran: Vec<Reply>, moved: &[usize]) -> Vec<Reply> {
    if moved.is_empty() {
        return ran;
    }
    let mut ran = ran.into_iter();
    let mut moved = moved.iter().peekable();
    let mut replies = Vec::with_capacity(ran.len() + moved.len());
    loop {
        if moved.next_if(|&&i| i == replies.len()).is_some() {
            replies.push(Reply::Moved);
        } else if let Some(reply) = ran.next() {
            replies.push(reply);
        } else {
            return replies;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moved_replies_go_back_where_their_calls_were() {
        let rejected = Reply::Rejected(wallet_core::Reason::InsufficientFunds);
        let ran = vec![Reply::Accepted, rejected.clone()];
        assert_eq!(
            with_moved(ran.clone(), &[0, 2, 3]),
            [
                Reply::Moved,
                Reply::Accepted,
                Reply::Moved,
                Reply::Moved,
                rejected.clone()
            ]
        );
        assert_eq!(with_moved(ran.clone(), &[]), ran);
        assert_eq!(
            with_moved(Vec::new(), &[0, 1]),
            [Reply::Moved, Reply::Moved]
        );
    }
}
