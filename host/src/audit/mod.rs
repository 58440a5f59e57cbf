//! Replaying a stopped partition's command archive from genesis, each batch
//! through the version the log's own deploy and activate entries schedule
//! for it, in memory, to recompute the event hash chain independently of
//! what the node wrote: equal heads mean the event log is exactly what the
//! log's commands produce.

//!
//! - `history`: the archive's entries with the version scheduled for each.
//! - `check`: `wallet audit`, every check of a stopped replica's data.
//! - `verify`: a candidate version run over recorded history beside the
//!   versions that made it, on a `shadow` state.

mod check;
mod history;
mod shadow;
mod verify;

pub use check::{Audit, BalanceAt, Mismatch, Origin, audit};
pub use history::{Batch, Birth, History, Migration, Switch};
pub use shadow::{Base, Shadow};
pub use verify::{Difference, DifferenceKind, Report, Verifier, Window};

use crate::Result;
use crate::node::Holdings;
use crate::raft::for_each_archived;
use crate::sm::{Executed, Executor, MemoryState};
use crate::store::{RecordHeader, chain_next, encode_record, genesis_version_read_only};
use std::path::Path;

/// An RFC 3339 time as milliseconds since the Unix epoch, truncated: an
/// "as of" time for `wallet audit --at` and for balances (`?at=`), which
/// take every batch that ran at or before it. A time before 1970 reads as
/// the epoch: before any batch either way.
pub fn time_ms(text: &str) -> std::result::Result<u64, String> {
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    let time = time::OffsetDateTime::parse(text, rfc3339)
        .map_err(|e| format!("{text:?} is not an RFC 3339 time: {e}"))?;
    Ok(u64::try_from(time.unix_timestamp_nanos().div_euclid(1_000_000)).unwrap_or(0))
}

/// What a replay computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replay {
    /// Batches executed (entries that carry one).
    pub batches: u64,
    /// The chain head after the last of them.
    pub chain_head: [u8; 32],
}

/// Replays every entry of the command archive of the partition `holdings`
/// names, in `partition_dir` (a stopped node's: a running node holds the
/// log's lock).
pub fn replay(
    partition_dir: &Path,
    holdings: Holdings,
    engine: &wasmtime::Engine,
) -> Result<Replay> {
    let partition = holdings.partition();
    let mut executor = Executor::new(engine);
    let genesis = genesis_version_read_only(&partition_dir.join("state"))?;
    let mut history = History::new(holdings, genesis);
    let mut state = MemoryState::default();
    let mut replay = Replay {
        batches: 0,
        chain_head: [0; 32],
    };
    let mut record = Vec::new();
    for_each_archived(&partition_dir.join("raft"), |index, stored| {
        let Some(batch) = history.next(index, stored)? else {
            return Ok(());
        };
        history.migrate(&mut executor, &batch, &mut state)?;
        if batch.split.is_some() {
            let Some((events, _)) = history.split(&mut executor, &batch, &mut state)? else {
                return Ok(());
            };
            let header = RecordHeader {
                log_index: index,
                timestamp_ms: batch.header.timestamp_ms,
                partition,
                version: batch.version,
                failure: None,
            };
            let (events, offsets) = crate::partition::split::encode_events(&events);
            encode_record(&replay.chain_head, &header, &events, &offsets, &mut record);
            replay.chain_head = chain_next(&record);
            replay.batches += 1;
            return Ok(());
        }
        let executed = history.runtime(&mut executor, batch.version)?.execute(
            batch.header,
            &batch.calls,
            &mut state,
        )?;
        let mut header = RecordHeader {
            log_index: index,
            timestamp_ms: batch.header.timestamp_ms,
            partition,
            version: batch.version,
            failure: None,
        };
        let (events, offsets) = match &executed {
            Executed::Applied(answer) => {
                state.apply(answer.writes());
                (answer.events(), answer.event_offsets())
            }
            Executed::Failed(failure) => {
                header.failure = Some(failure.clone());
                (&[][..], &[][..])
            }
        };
        encode_record(&replay.chain_head, &header, events, offsets, &mut record);
        replay.chain_head = chain_next(&record);
        replay.batches += 1;
        Ok(())
    })?;
    Ok(replay)
}
