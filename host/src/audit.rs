//! Replaying a stopped partition's Raft log from genesis through the
//! state-machine version its store names, in memory, to recompute the
//! event hash chain independently of what the node wrote: equal heads mean
//! the event log is exactly what the log's commands produce.

use crate::log::{LogOptions, SegmentLog};
use crate::raft::{Request, TypeConfig};
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

/// Replays every entry of the Raft log of partition `partition` in
/// `partition_dir` (a stopped node's: a running node holds the log's lock)
/// with `version`.
pub fn replay(
    partition_dir: &Path,
    partition: u32,
    engine: &wasmtime::Engine,
    version: Version,
) -> Result<Replay> {
    let log = SegmentLog::open(&partition_dir.join("raft/entries"), LogOptions::default())?;
    let mut runtime = Runtime::new(engine, version)?;
    let mut state = MemoryState::default();
    let mut replay = Replay {
        batches: 0,
        chain_head: [0; 32],
    };
    let mut timestamp_ms = 0;
    let mut record = Vec::new();
    for item in log.range(..) {
        let (index, bytes) = item?;
        let entry: Entry<TypeConfig> =
            postcard::from_bytes(bytes).map_err(|e| Error::LogCorrupt {
                path: partition_dir.join("raft/entries"),
                offset: 0,
                why: format!("entry {index}: {e}"),
            })?;
        // Token changes make no event record.
        let EntryPayload::Normal(Request::Batch(batch)) = entry.payload else {
            continue;
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
    }
    Ok(replay)
}
