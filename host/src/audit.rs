//! Replaying a stopped partition's command archive from genesis through the
//! state-machine version its store names, in memory, to recompute the
//! event hash chain independently of what the node wrote: equal heads mean
//! the event log is exactly what the log's commands produce.

use crate::raft::{Request, TypeConfig, for_each_archived};
use crate::sm::{BatchHeader, Executed, MemoryState, Runtime, Version};
use crate::store::{RecordHeader, chain_next, encode_record};
use crate::{Error, Result};
use openraft::{Entry, EntryPayload};
use std::path::Path;

/// What a replay computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replay {
    /// Batches executed (entries that carry one).
    pub batches: u64,
    /// The chain head after the last of them.
    pub chain_head: [u8; 32],
}

/// Replays every entry of the command archive of partition `partition` in
/// `partition_dir` (a stopped node's: a running node holds the log's lock)
/// with `version`.
pub fn replay(
    partition_dir: &Path,
    partition: u32,
    engine: &wasmtime::Engine,
    version: Version,
) -> Result<Replay> {
    let mut runtime = Runtime::new(engine, version)?;
    let mut state = MemoryState::default();
    let mut replay = Replay {
        batches: 0,
        chain_head: [0; 32],
    };
    let mut timestamp_ms = 0;
    let mut record = Vec::new();
    let raft_dir = partition_dir.join("raft");
    for_each_archived(&raft_dir, |index, bytes| {
        let entry: Entry<TypeConfig> =
            postcard::from_bytes(bytes).map_err(|e| Error::LogCorrupt {
                path: raft_dir.clone(),
                offset: 0,
                why: format!("entry {index}: {e}"),
            })?;
        // Token changes make no event record.
        let EntryPayload::Normal(Request::Batch(batch)) = entry.payload else {
            return Ok(());
        };
        // As the state machine does: time never goes backwards.
        timestamp_ms = timestamp_ms.max(batch.timestamp_ms);
        let header = BatchHeader {
            log_index: index,
            timestamp_ms,
            partition,
        };
        let executed = runtime.execute(header, &batch.calls, &mut state)?;
        let mut record_header = RecordHeader {
            log_index: index,
            timestamp_ms,
            partition,
            version: runtime.version().hash,
            failure: None,
        };
        let (events, offsets) = match &executed {
            Executed::Applied(answer) => {
                state.apply(answer.writes());
                (answer.events(), answer.event_offsets())
            }
            Executed::Failed(failure) => {
                record_header.failure = Some(failure.clone());
                (&[][..], &[][..])
            }
        };
        encode_record(
            &replay.chain_head,
            &record_header,
            events,
            offsets,
            &mut record,
        );
        replay.chain_head = chain_next(&record);
        replay.batches += 1;
        Ok(())
    })?;
    Ok(replay)
}
