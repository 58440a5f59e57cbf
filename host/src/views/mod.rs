//! The read side (CQRS): balances with reserved and in-flight amounts,
//! account history and transfer status, built by a projector that tails
//! the event log with a persisted cursor, off the apply path. History and
//! transfers index into the event log rather than copy it; a read decodes
//! the events it returns from their records.
//!
//! The read models are a pure function of the event log: dropping the
//! `views` directory makes the projector rebuild them from record 1.
//!
//! - `db`: the read-model database, its keys and rows.
//! - `projector`: the fold, a round at a time.

mod db;
mod projector;

pub use db::{Cursor, StoredBalances, VIEWS_DIR, stored_balances_read_only};

use crate::rocks::{Tuning, cf, rocks};
use crate::service::{
    AccountView, BalanceView, EventView, HistoryPage, TransferState, TransferView,
};
use crate::store::{Applied, EventLog, Record};
use crate::{Error, Result};
use db::{ACCOUNTS, AccountRow, EventPos, HISTORY, HistoryEntry, Status, TRANSFERS, TransferRow};
use projector::Projector;
use rocksdb::{DB, ReadOptions};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use wallet_core::{Currency, Txid, account};

/// How long the projector waits before trying a failed round again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The read models of one partition replica, as the edge reads them.
#[derive(Clone)]
pub struct Views {
    db: Arc<DB>,
    events: Arc<EventLog>,
    reflected: watch::Receiver<Cursor>,
    /// Why the projector stopped, once it has.
    stopped: watch::Receiver<Option<String>>,
}

/// Why a read could not wait for the position it asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotCaughtUp {
    pub reflected: u64,
}

impl Views {
    /// Opens the read models in `dir` and starts the projector, which
    /// follows `applied`. Read models written in another row format are
    /// dropped and rebuilt. The projector stops only when the event log
    /// itself cannot be read (see [`Views::stopped`]); failing writes are
    /// retried.
    pub fn start(
        dir: &Path,
        tuning: &Tuning,
        events: Arc<EventLog>,
        applied: watch::Receiver<Applied>,
    ) -> Result<Views> {
        let path = dir.join(VIEWS_DIR);
        let db = Arc::new(open_or_rebuild(&path, tuning)?);
        let projector = Projector::new(Arc::clone(&db), Arc::clone(&events))?;
        let (reflected_tx, reflected) = watch::channel(projector.cursor());
        let (stopped_tx, stopped) = watch::channel(None);
        tokio::spawn(async move {
            let why = match follow(projector, applied, reflected_tx).await {
                Ok(()) => "the write side closed".to_string(),
                Err(error) => error.to_string(),
            };
            stopped_tx.send_replace(Some(why));
        });
        Ok(Views {
            db,
            events,
            reflected,
            stopped,
        })
    }

    /// Resolves when the projector has stopped, with why.
    pub async fn stopped(&self) -> String {
        let mut stopped = self.stopped.clone();
        match stopped.wait_for(Option::is_some).await {
            Ok(why) => why.clone().unwrap_or_default(),
            Err(_) => "the projector is gone".into(),
        }
    }

    /// The position the read models reflect now.
    pub fn reflected(&self) -> Cursor {
        *self.reflected.borrow()
    }

    /// Waits until the read models reflect Raft log index `index`, for at
    /// most `timeout`; returns the index they reflect.
    pub async fn wait_for(&self, index: u64, timeout: Duration) -> Result<u64, NotCaughtUp> {
        let mut reflected = self.reflected.clone();
        let reached = tokio::time::timeout(timeout, reflected.wait_for(|c| c.index >= index)).await;
        match reached {
            Ok(Ok(cursor)) => Ok(cursor.index),
            _ => Err(NotCaughtUp {
                reflected: self.reflected().index,
            }),
        }
    }

    pub fn account(&self, id: &str) -> Result<Option<AccountView>> {
        if !account::is_valid(id) {
            return Ok(None);
        }
        let row = self
            .db
            .get_pinned_cf(cf(&self.db, ACCOUNTS), id)
            .map_err(rocks("reading an account"))?;
        let Some(row) = row else { return Ok(None) };
        let row: AccountRow = db::decode(ACCOUNTS, &row)?;
        Ok(Some(AccountView {
            account_id: id.to_owned(),
            owner: row.owner,
            kind: row.kind,
            balances: row
                .balances
                .into_iter()
                .map(|b| BalanceView {
                    currency: Currency(b.currency).to_string(),
                    available: b.available,
                    reserved: b.reserved,
                })
                .collect(),
        }))
    }

    /// The account's row as `snapshot` holds it; `None` for an invalid id
    /// or an account never opened.
    fn account_row(
        &self,
        snapshot: &rocksdb::SnapshotWithThreadMode<'_, DB>,
        id: &str,
    ) -> Result<Option<AccountRow>> {
        if !account::is_valid(id) {
            return Ok(None);
        }
        let row = snapshot
            .get_pinned_cf(cf(&self.db, ACCOUNTS), id)
            .map_err(rocks("reading an account"))?;
        row.map(|row| db::decode::<AccountRow>(ACCOUNTS, &row))
            .transpose()
    }

    /// At most `limit` events with `seq > after`, oldest first; `None` for
    /// an account that was never opened.
    pub fn history(
        &self,
        id: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Option<HistoryPage>> {
        let snapshot = self.db.snapshot();
        let Some(row) = self.account_row(&snapshot, id)? else {
            return Ok(None);
        };
        let last = row.events;
        let after = after.unwrap_or(0);
        let mut options = ReadOptions::default();
        options.set_iterate_upper_bound(db::history_key(id, u64::MAX));
        let mut iter = snapshot.raw_iterator_cf_opt(cf(&self.db, HISTORY), options);
        iter.seek(db::history_key(id, after.saturating_add(1)));
        let mut positions = Vec::new();
        while positions.len() < limit {
            let Some(value) = iter.value() else { break };
            positions.push(HistoryEntry::decode(value)?.pos);
            iter.next();
        }
        iter.status().map_err(rocks("reading history"))?;
        let events = self.events_at(&positions)?;
        let events: Vec<EventView> = events
            .into_iter()
            .enumerate()
            .map(|(i, mut e)| {
                e.seq = after + 1 + i as u64;
                e
            })
            .collect();
        let reached = after + events.len() as u64;
        Ok(Some(HistoryPage {
            events,
            next: (reached < last).then_some(reached),
        }))
    }

    /// The account's `(available, reserved)` in `currency` as of `at_ms`:
    /// after every batch that ran at or before it, as `wallet audit --at`
    /// computes it. `None` for an account that was never opened.
    ///
    /// The log's time never goes backwards, so an account's history is in
    /// time order too: a binary search finds its last event at or before
    /// `at_ms`, and the nearest one before it that moved money in
    /// `currency` holds the balance.
    pub fn balance_at(&self, id: &str, currency: &str, at_ms: u64) -> Result<Option<(i64, i64)>> {
        let snapshot = self.db.snapshot();
        let Some(row) = self.account_row(&snapshot, id)? else {
            return Ok(None);
        };
        if !row
            .balances
            .iter()
            .any(|b| b.currency == currency.as_bytes())
        {
            return Ok(Some((0, 0)));
        }
        let last = row.events;
        let entry = |seq: u64| -> Result<HistoryEntry> {
            let bytes = snapshot
                .get_pinned_cf(cf(&self.db, HISTORY), db::history_key(id, seq))
                .map_err(rocks("reading history"))?
                .ok_or_else(|| Error::CorruptValue {
                    cf: HISTORY,
                    why: format!("{id} has {last} events but no event {seq}"),
                })?;
            HistoryEntry::decode(&bytes)
        };
        // Events 1..=low ran at or before `at_ms`; events after high, later.
        let (mut low, mut high) = (0, last);
        while low < high {
            let mid = low + (high - low).div_ceil(2);
            if entry(mid)?.timestamp_ms <= at_ms {
                low = mid;
            } else {
                high = mid - 1;
            }
        }
        let mut options = ReadOptions::default();
        options.set_iterate_lower_bound(db::history_key(id, 1));
        let mut iter = snapshot.raw_iterator_cf_opt(cf(&self.db, HISTORY), options);
        iter.seek_for_prev(db::history_key(id, low));
        while let Some(value) = iter.value() {
            if let Some(balance) = HistoryEntry::decode(value)?.balance
                && balance.currency == currency.as_bytes()
            {
                return Ok(Some((balance.available, balance.reserved)));
            }
            iter.prev();
        }
        iter.status().map_err(rocks("reading history"))?;
        Ok(Some((0, 0)))
    }

    /// The transfer's status and events; `None` if no event carried its id.
    pub fn transfer(&self, id: Txid) -> Result<Option<TransferView>> {
        let row = self
            .db
            .get_pinned_cf(cf(&self.db, TRANSFERS), db::transfer_key(id))
            .map_err(rocks("reading a transfer"))?;
        let Some(row) = row else { return Ok(None) };
        let row: TransferRow = db::decode(TRANSFERS, &row)?;
        let events = self.events_at(&row.events)?;
        Ok(Some(TransferView {
            id,
            state: match row.status {
                Status::Pending => TransferState::Pending,
                Status::Success => TransferState::Success,
                Status::Failed(reason) => TransferState::Failed(reason),
            },
            events,
        }))
    }

    /// The partition's money in flight, per currency.
    pub fn in_flight(&self) -> Result<BTreeMap<String, i64>> {
        Ok(db::in_flight(&self.db)?
            .into_iter()
            .map(|(c, sum)| (Currency(c).to_string(), sum))
            .collect())
    }

    /// The events at `positions`, in order, each numbered by its place in
    /// `positions` (from 1).
    fn events_at(&self, positions: &[EventPos]) -> Result<Vec<EventView>> {
        let mut out = Vec::with_capacity(positions.len());
        for (i, pos) in positions.iter().enumerate() {
            let view = self
                .events
                .with_record(pos.record, |bytes| -> Result<EventView> {
                    let record = Record::parse(bytes)?;
                    let (_, event) = record.event(pos.index as usize)?;
                    Ok(EventView {
                        seq: i as u64 + 1,
                        log_index: record.header.log_index,
                        timestamp_ms: record.header.timestamp_ms,
                        event: event.to_owned(),
                    })
                })?
                .ok_or(Error::EventLogBehind {
                    committed: pos.record,
                    log_last: None,
                })??;
            out.push(view);
        }
        Ok(out)
    }
}

/// Opens the read models, dropping them first if their rows are of another
/// format (they are rebuilt from the event log).
fn open_or_rebuild(path: &Path, tuning: &Tuning) -> Result<DB> {
    let db = db::open(path, tuning)?;
    match db::read_cursor(&db) {
        Ok(_) => Ok(db),
        Err(Error::CorruptValue { .. }) => {
            tracing::warn!(path = %path.display(), "read models of another format: rebuilding them from the event log");
            drop(db);
            std::fs::remove_dir_all(path).map_err(|source| Error::DataDir {
                path: path.to_owned(),
                source,
            })?;
            db::open(path, tuning)
        }
        Err(other) => Err(other),
    }
}

/// The projector's task: a round whenever the read models are behind what
/// is applied, on a blocking thread. A round that fails on RocksDB (a full
/// disk, say) is tried again; one that cannot read the event log ends the
/// task with the error.
async fn follow(
    mut projector: Projector,
    mut applied: watch::Receiver<Applied>,
    reflected: watch::Sender<Cursor>,
) -> Result<()> {
    loop {
        let target = *applied.borrow_and_update();
        while projector.behind(target) {
            let (back, result) = tokio::task::spawn_blocking(move || {
                let result = projector.round(target);
                (projector, result)
            })
            .await
            .map_err(|e| Error::StoreFailed(format!("projector round: {e}")))?;
            projector = back;
            match result {
                // The log does not hold the next record yet: it is made
                // again as the batches after a crash are applied again.
                Ok(cursor) if cursor == *reflected.borrow() => break,
                Ok(cursor) => {
                    reflected.send_replace(cursor);
                    let lag = target.events_last.saturating_sub(cursor.events);
                    metrics::gauge!("projector_lag_records").set(lag as f64);
                    metrics::gauge!("projector_index").set(cursor.index as f64);
                }
                Err(error @ Error::Rocks { .. }) => {
                    tracing::warn!(%error, "projector round failed; trying again");
                    tokio::time::sleep(RETRY_AFTER).await;
                }
                Err(error) => {
                    tracing::error!(%error, "projector stopped: the event log cannot be read");
                    return Err(error);
                }
            }
        }
        if applied.changed().await.is_err() {
            return Ok(());
        }
    }
}
