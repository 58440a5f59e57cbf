//! The projector: folds the event log into the read models, off the apply
//! path, a round at a time. A round copies a run of records out of the
//! log, loads every row they touch with one multi-get per family, folds
//! the events in order, and writes the rows and the new cursor in one
//! RocksDB write, so the cursor always describes exactly what was
//! written. The fold reads nothing but events: what an event means for a
//! balance or a transfer is the event's own (`wallet_core::event`).

use super::db::{
    self, ACCOUNTS, AccountRow, BalanceRow, Cursor, EventPos, HISTORY, HistoryEntry, META, Status,
    TRANSFERS, TransferRow,
};
use crate::rocks::{self, cf, rocks};
use crate::store::{Applied, EventLog, Record};
use crate::{Error, Result};
use rocksdb::{DB, WriteBatch};
use std::collections::HashMap;
use std::sync::Arc;
use wallet_core::{Event, Txid};

/// Events folded in one round, at most (a round may exceed it by one
/// record): bounds the memory of a round and how long a reader waits.
pub const ROUND_EVENTS_MAX: usize = 65_536;

pub struct Projector {
    db: Arc<DB>,
    events: Arc<EventLog>,
    cursor: Cursor,
}

/// The rows a round changes, loaded once.
#[derive(Default)]
struct Rows {
    accounts: HashMap<String, Option<AccountRow>>,
    transfers: HashMap<Txid, Option<TransferRow>>,
    in_flight: HashMap<[u8; 3], i64>,
    history: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Projector {
    pub fn new(db: Arc<DB>, events: Arc<EventLog>) -> Result<Self> {
        let cursor = db::read_cursor(&db)?.unwrap_or_default();
        Ok(Projector { db, events, cursor })
    }

    pub fn cursor(&self) -> Cursor {
        self.cursor
    }

    /// Whether the read models are behind `applied`.
    pub fn behind(&self, applied: Applied) -> bool {
        self.cursor.events < applied.events_last || self.cursor.index < applied.index
    }

    /// Folds the next run of records up to `applied` and returns the new
    /// cursor. A log that does not hold a record yet (it is made again
    /// after a crash) ends the round early.
    pub fn round(&mut self, applied: Applied) -> Result<Cursor> {
        let records = self.copy_records(applied.events_last)?;
        let parsed = records
            .iter()
            .map(|(seq, bytes)| Ok((*seq, Record::parse(bytes)?)))
            .collect::<Result<Vec<_>>>()?;
        let mut rows = self.load(&parsed)?;
        for (seq, record) in &parsed {
            fold_record(&mut rows, *seq, record)?;
        }
        let mut cursor = self.cursor;
        if let Some((seq, record)) = parsed.last() {
            cursor = Cursor {
                events: *seq,
                index: record.header.log_index,
            };
        }
        if cursor.events == applied.events_last {
            // Entries without a batch (blank, membership) have no record.
            cursor.index = cursor.index.max(applied.index);
        }
        self.write(rows, cursor)?;
        self.cursor = cursor;
        Ok(cursor)
    }

    fn copy_records(&self, last: u64) -> Result<Vec<(u64, Vec<u8>)>> {
        let mut records = Vec::new();
        let mut events = 0;
        let mut seq = self.cursor.events + 1;
        while seq <= last && events < ROUND_EVENTS_MAX {
            let Some(bytes) = self.events.with_record(seq, <[u8]>::to_vec)? else {
                break;
            };
            events += Record::parse(&bytes)?.len().max(1);
            records.push((seq, bytes));
            seq += 1;
        }
        Ok(records)
    }

    /// Loads every row the records touch.
    fn load(&self, records: &[(u64, Record)]) -> Result<Rows> {
        let mut rows = Rows::default();
        for (_, record) in records {
            for item in record.events() {
                let (_, event) = item?;
                if let Some(account) = event.account() {
                    rows.accounts.entry((*account).to_owned()).or_default();
                }
                if let Some(id) = event.txid() {
                    rows.transfers.entry(id).or_default();
                }
                if let Some((posting, _)) = event.effect() {
                    rows.in_flight.entry(posting.currency.0).or_default();
                }
            }
        }
        let accounts: Vec<String> = rows.accounts.keys().cloned().collect();
        for (id, row) in accounts.iter().zip(self.multi_get(ACCOUNTS, &accounts)?) {
            rows.accounts.insert(id.clone(), row);
        }
        let txids: Vec<Txid> = rows.transfers.keys().copied().collect();
        let keys: Vec<[u8; 16]> = txids.iter().map(|id| db::transfer_key(*id)).collect();
        for (id, row) in txids.iter().zip(self.multi_get(TRANSFERS, &keys)?) {
            rows.transfers.insert(*id, row);
        }
        let currencies: Vec<[u8; 3]> = rows.in_flight.keys().copied().collect();
        let keys: Vec<Vec<u8>> = currencies.iter().map(|c| db::in_flight_key(*c)).collect();
        for (currency, sum) in currencies.iter().zip(self.multi_get::<i64>(META, &keys)?) {
            rows.in_flight.insert(*currency, sum.unwrap_or(0));
        }
        Ok(rows)
    }

    fn multi_get<T: serde::de::DeserializeOwned>(
        &self,
        family: &'static str,
        keys: &[impl AsRef<[u8]>],
    ) -> Result<Vec<Option<T>>> {
        let found = self
            .db
            .batched_multi_get_cf(cf(&self.db, family), keys, false);
        found
            .into_iter()
            .map(|value| match value.map_err(rocks("reading read models"))? {
                Some(bytes) => db::decode(family, &bytes).map(Some),
                None => Ok(None),
            })
            .collect()
    }

    /// Writes each family's rows in key order, so that each memtable
    /// insert starts its skip-list search from where the previous one
    /// ended rather than from the top.
    fn write(&self, mut rows: Rows, cursor: Cursor) -> Result<()> {
        let mut batch = WriteBatch::default();
        let family = |name| cf(&self.db, name);
        let mut accounts: Vec<_> = rows
            .accounts
            .iter()
            .filter_map(|(id, row)| Some((id, row.as_ref()?)))
            .collect();
        accounts.sort_unstable_by_key(|(id, _)| *id);
        for (id, row) in accounts {
            batch.put_cf(family(ACCOUNTS), id, db::encode(row));
        }
        let mut transfers: Vec<_> = rows
            .transfers
            .iter()
            .filter_map(|(id, row)| Some((db::transfer_key(*id), row.as_ref()?)))
            .collect();
        transfers.sort_unstable_by_key(|(key, _)| *key);
        for (key, row) in transfers {
            batch.put_cf(family(TRANSFERS), key, db::encode(row));
        }
        for (currency, sum) in &rows.in_flight {
            batch.put_cf(family(META), db::in_flight_key(*currency), db::encode(sum));
        }
        // Keys are unique: each is an account's next sequence number.
        rows.history.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (key, pos) in &rows.history {
            batch.put_cf(family(HISTORY), key, pos);
        }
        batch.put_cf(family(META), db::cursor_key(), db::encode(&cursor));
        self.db
            .write_opt(batch, &rocks::write_options())
            .map_err(rocks("writing read models"))
    }
}

fn fold_record(rows: &mut Rows, seq: u64, record: &Record) -> Result<()> {
    for i in 0..record.len() {
        let (_, event) = record.event(i)?;
        let pos = EventPos {
            record: seq,
            index: u32::try_from(i).expect("events per record are bounded"),
        };
        fold(rows, pos, record.header.timestamp_ms, &event)?;
    }
    Ok(())
}

/// One event, of a batch that ran at `timestamp_ms`, into the rows it
/// touches.
fn fold(rows: &mut Rows, pos: EventPos, timestamp_ms: u64, event: &Event<&str>) -> Result<()> {
    if let Event::AccountOpened(open) | Event::AccountMovedIn(open) = event {
        rows.accounts.insert(
            open.account.to_owned(),
            Some(AccountRow {
                owner: open.owner.map(str::to_owned),
                kind: open.kind,
                balances: Vec::new(),
                events: 0,
            }),
        );
    }
    // The account's balance in the posting's currency after the event.
    let mut left = None;
    if let Some((posting, effect)) = event.effect() {
        let overflow = || Error::BalanceOverflow {
            account: posting.account.to_string(),
            currency: posting.currency.to_string(),
        };
        let moved = |old: i64, sign: i8| old.checked_add(posting.amount.checked_mul(sign.into())?);
        let row = account_row(rows, posting.account)?;
        let balance = balance_row(row, posting.currency.0);
        balance.available = moved(balance.available, effect.available).ok_or_else(overflow)?;
        balance.reserved = moved(balance.reserved, effect.reserved).ok_or_else(overflow)?;
        let after = balance.clone();
        let in_flight = rows.in_flight.entry(posting.currency.0).or_default();
        *in_flight = moved(*in_flight, effect.in_flight).ok_or_else(overflow)?;
        left = event
            .account()
            .is_some_and(|a| *a == posting.account)
            .then_some(after);
    }
    if let Some(account) = event.account() {
        let row = account_row(rows, account)?;
        row.events += 1;
        let key = db::history_key(account, row.events);
        let entry = HistoryEntry {
            pos,
            timestamp_ms,
            balance: left,
        };
        rows.history.push((key, entry.encode()));
    }
    if let Some(id) = event.txid() {
        let row = rows
            .transfers
            .entry(id)
            .or_default()
            .get_or_insert_with(|| TransferRow {
                status: Status::Pending,
                events: Vec::new(),
            });
        row.events.push(pos);
        // Final states stay: a refused late cancel must not fail a transfer
        // that succeeded, nor a cancel replace the reason it first failed.
        if row.status == Status::Pending
            && let Some(status) = event.transfer_status()
        {
            row.status = match status {
                wallet_core::TransferStatus::Pending => Status::Pending,
                wallet_core::TransferStatus::Success => Status::Success,
                wallet_core::TransferStatus::Failed(reason) => Status::Failed(reason),
            };
        }
    }
    Ok(())
}

fn account_row<'r>(rows: &'r mut Rows, account: &str) -> Result<&'r mut AccountRow> {
    rows.accounts
        .get_mut(account)
        .and_then(Option::as_mut)
        .ok_or_else(|| Error::CorruptValue {
            cf: ACCOUNTS,
            why: format!("an event names account {account}, which was never opened"),
        })
}

fn balance_row(row: &mut AccountRow, currency: [u8; 3]) -> &mut BalanceRow {
    let at = match row.balances.binary_search_by_key(&currency, |b| b.currency) {
        Ok(at) => at,
        Err(at) => {
            row.balances.insert(
                at,
                BalanceRow {
                    currency,
                    available: 0,
                    reserved: 0,
                },
            );
            at
        }
    };
    &mut row.balances[at]
}
