use super::snapshot::Snapshots;
use super::{BatchReply, CommandBatch, NodeId, TypeConfig, any_error};
use crate::service::Reply;
use crate::sm::{BatchHeader, BatchResult, Runtime, StateSource, Write};
use crate::store::{AppliedBatch, GuestState, MetaUpdate, Store};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    Entry, EntryPayload, LogId, SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};
use std::collections::HashMap;
use std::io::Cursor;
use std::sync::Arc;

type StorageResult<T> = Result<T, StorageError<NodeId>>;

/// Guest state as the next batch must see it: the store, under the writes
/// of earlier batches of the same apply call that are not committed yet.
pub struct PendingState {
    committed: GuestState,
    pending: HashMap<Vec<u8>, Option<Vec<u8>>>,
}

impl StateSource for PendingState {
    fn get_many(&self, keys: &[Vec<u8>]) -> crate::Result<Vec<Option<Vec<u8>>>> {
        if self.pending.is_empty() {
            return self.committed.get_many(keys);
        }
        let mut values = self.committed.get_many(keys)?;
        for (value, key) in values.iter_mut().zip(keys) {
            if let Some(pending) = self.pending.get(key) {
                value.clone_from(pending);
            }
        }
        Ok(values)
    }
}

impl PendingState {
    fn stage(&mut self, writes: &[Write]) {
        for (key, value) in writes {
            self.pending.insert(key.clone(), value.clone());
        }
    }
}

/// Applies committed entries: each batch runs through the active version;
/// all batches of one call commit together (one event-log sync, one
/// RocksDB write batch).
pub struct StateMachine {
    store: Arc<Store>,
    runtime: Runtime<PendingState>,
    partition: u32,
    snapshots: Snapshots,
}

impl StateMachine {
    pub fn new(
        store: Arc<Store>,
        runtime: Runtime<PendingState>,
        partition: u32,
        snapshots: Snapshots,
    ) -> Self {
        StateMachine {
            store,
            runtime,
            partition,
            snapshots,
        }
    }

    pub fn pending_state(store: &Store) -> PendingState {
        PendingState {
            committed: store.guest_state(),
            pending: HashMap::new(),
        }
    }

    fn execute(
        &mut self,
        log_id: LogId<NodeId>,
        batch: CommandBatch,
    ) -> StorageResult<(BatchReply, AppliedBatch)> {
        let active = self.runtime.version().hash;
        if batch.version != active {
            let error = crate::Error::UnknownVersion(batch.version);
            tracing::error!(index = log_id.index, %active, wanted = %batch.version, "batch names a version this replica does not run");
            return Err(StorageIOError::write_state_machine(any_error(&error)).into());
        }
        let header = BatchHeader {
            log_index: log_id.index,
            timestamp_ms: batch.timestamp_ms,
            partition: self.partition,
        };
        let span = tracing::debug_span!(
            "apply_batch",
            index = log_id.index,
            commands = batch.commands.len()
        );
        let _enter = span.enter();
        let result = self
            .runtime
            .execute(header, &batch.commands)
            .map_err(|e| StorageIOError::write_state_machine(any_error(&e)))?;
        let (replies, writes, events) = match result {
            BatchResult::Applied { output, writes, .. } => {
                let replies = output
                    .outcomes
                    .iter()
                    .map(|o| match o {
                        Ok(()) => Reply::Accepted,
                        Err(reason) => Reply::Rejected(*reason),
                    })
                    .collect();
                (replies, writes, output.events)
            }
            BatchResult::Failed(failure) => {
                tracing::error!(
                    index = log_id.index,
                    ?failure,
                    "batch failed in the sandbox"
                );
                let replies = vec![Reply::Failed(failure); batch.commands.len()];
                (replies, Vec::new(), Vec::new())
            }
        };
        self.runtime
            .source_mut()
            .expect("the instance is live after a batch")
            .stage(&writes);
        metrics::histogram!("batch_commands").record(batch.commands.len() as f64);
        let applied = AppliedBatch {
            log_index: log_id.index,
            header,
            writes,
            events,
        };
        Ok((BatchReply { replies }, applied))
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("log ids and memberships serialize")
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> StorageResult<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| StorageIOError::read_state_machine(any_error(&e)).into())
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Snapshots;

    async fn applied_state(
        &mut self,
    ) -> StorageResult<(
        Option<LogId<NodeId>>,
        StoredMembership<NodeId, openraft::BasicNode>,
    )> {
        let meta = self
            .store
            .meta()
            .map_err(|e| StorageIOError::read_state_machine(any_error(&e)))?;
        let applied = meta.applied.as_deref().map(decode).transpose()?;
        let membership = meta.membership.as_deref().map(decode).transpose()?;
        Ok((applied, membership.unwrap_or_default()))
    }

    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<BatchReply>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut replies = Vec::new();
        let mut batches = Vec::new();
        let mut last = None;
        let mut membership = None;
        for entry in entries {
            last = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => replies.push(BatchReply::default()),
                EntryPayload::Normal(batch) => {
                    let (reply, applied) = self.execute(entry.log_id, batch)?;
                    replies.push(reply);
                    batches.push(applied);
                }
                EntryPayload::Membership(m) => {
                    membership = Some(StoredMembership::new(Some(entry.log_id), m));
                    replies.push(BatchReply::default());
                }
            }
        }
        let update = MetaUpdate {
            applied: last.as_ref().map(encode),
            membership: membership.as_ref().map(encode),
        };
        let commit = self.store.commit(&batches, update);
        self.runtime
            .source_mut()
            .expect("the instance is live after a batch")
            .pending
            .clear();
        commit.map_err(|e| StorageIOError::write_state_machine(any_error(&e)))?;
        if let Some(last) = last {
            metrics::gauge!("applied_index").set(last.index as f64);
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.snapshots.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
        _snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StorageResult<()> {
        // A single-member group never receives a snapshot; shipping one to a
        // lagging follower comes with replication.
        let error =
            std::io::Error::other("installing a snapshot from a leader is not supported yet");
        Err(StorageIOError::write_snapshot(Some(meta.signature()), any_error(&error)).into())
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        self.snapshots.current()
    }
}
