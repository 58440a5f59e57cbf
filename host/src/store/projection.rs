//! Folding the events of a commit into the read models, built from events
//! only (never from guest state), in three passes so that every read is one
//! batched `multi_get` per column family:
//!
//! 1. collect the balance, history-counter and transfer keys the events touch;
//! 2. load their current values;
//! 3. apply the events in order (caching, so several events on one key in a
//!    commit see each other), writing history and transfer events and the
//!    touched values into the commit's `WriteBatch`.

use super::AppliedBatch;
use super::db::{BALANCES, HISTORY, TRANSFERS, cf, rocks};
use super::events::balance_effect;
use super::keys;
use super::values::{
    self, EventTail, TransferHead, decode, decode_balance, decode_counter, encode_balance,
    encode_into,
};
use crate::service::TransferState;
use crate::sm::{Event, Posting, Reason, Txid};
use crate::{Error, Result};
use rocksdb::{ColumnFamily, DB, WriteBatch};
use std::collections::HashMap;
use std::rc::Rc;

/// Adds the projection updates of `batches` to `batch`.
pub(super) fn project(db: &DB, batches: &[AppliedBatch], batch: &mut WriteBatch) -> Result<()> {
    let mut projection = Projection::new(db);
    for event in batches.iter().flat_map(|b| &b.events) {
        projection.collect(&event.event);
    }
    projection.load()?;
    for applied in batches {
        for event in &applied.events {
            projection.apply(applied, &event.event, batch)?;
        }
    }
    projection.write(batch)
}

/// The account an event names, if any: it goes to that account's history.
fn event_account(event: &Event) -> Option<&str> {
    match event {
        Event::AccountOpened(open) => Some(&open.account),
        other => event_posting(other).map(|p| p.account.as_str()),
    }
}

fn event_posting(event: &Event) -> Option<&Posting> {
    use Event as E;
    match event {
        E::Debited(p)
        | E::Credited(p)
        | E::FundsReserved(p)
        | E::ReservationReleased(p)
        | E::ReservationSettled(p)
        | E::CreditPending(p)
        | E::PendingDropped(p)
        | E::Sent(p)
        | E::Received(p) => Some(p),
        E::AccountOpened(_) | E::CancelRecorded(_) | E::TransferRejected(_) => None,
    }
}

/// The transaction an event belongs to, if any.
fn event_txid(event: &Event) -> Option<Txid> {
    match event {
        Event::AccountOpened(_) => None,
        Event::CancelRecorded(id) => Some(*id),
        Event::TransferRejected(rejection) => Some(rejection.id),
        other => event_posting(other).map(|p| p.id),
    }
}

/// Moves a transfer's state on by one of its events. Final states stay:
/// a refused late cancel (`transfer_confirmed`) must not fail a transfer
/// that succeeded, nor a cancel replace the reason a transfer first failed.
fn advance(head: &mut TransferHead, event: &Event) {
    use Event as E;
    use TransferState::{Failed, Pending, Success};
    if head.state != Pending {
        return;
    }
    head.state = match event {
        E::Debited(_) | E::Credited(_) | E::ReservationSettled(_) => Success,
        // A saga refund returns the money to the account it was sent from.
        E::Received(p) if head.sent_from.as_deref() == Some(p.account.as_str()) => {
            Failed(Reason::TransferCancelled)
        }
        E::Received(_) => Success,
        E::Sent(p) => {
            head.sent_from = Some(p.account.clone());
            Pending
        }
        E::FundsReserved(_) | E::CreditPending(_) | E::AccountOpened(_) => Pending,
        E::ReservationReleased(_) | E::PendingDropped(_) | E::CancelRecorded(_) => {
            Failed(Reason::TransferCancelled)
        }
        E::TransferRejected(rejection) => Failed(rejection.reason),
    };
}

/// Values of one column family touched by a commit, keyed by their bytes;
/// a key is allocated once and shared by the index and the load order.
struct Table<V> {
    index: HashMap<Rc<[u8]>, usize>,
    keys: Vec<Rc<[u8]>>,
    values: Vec<Option<V>>,
}

impl<V> Default for Table<V> {
    fn default() -> Self {
        Table {
            index: HashMap::new(),
            keys: Vec::new(),
            values: Vec::new(),
        }
    }
}

impl<V> Table<V> {
    fn touch(&mut self, key: &[u8]) {
        if !self.index.contains_key(key) {
            let key: Rc<[u8]> = key.into();
            self.index.insert(key.clone(), self.keys.len());
            self.keys.push(key);
        }
    }

    fn load(
        &mut self,
        db: &DB,
        cf: &ColumnFamily,
        decode: impl Fn(&[u8]) -> Result<V>,
    ) -> Result<()> {
        let found = db.batched_multi_get_cf(cf, self.keys.iter().map(|k| &**k), false);
        self.values = found
            .into_iter()
            .map(|value| match value.map_err(rocks("reading projections"))? {
                Some(bytes) => decode(&bytes).map(Some),
                None => Ok(None),
            })
            .collect::<Result<_>>()?;
        Ok(())
    }

    fn get_mut(&mut self, key: &[u8]) -> &mut Option<V> {
        let at = *self
            .index
            .get(key)
            .expect("every key is touched before use");
        &mut self.values[at]
    }

    fn loaded(&self) -> impl Iterator<Item = (&[u8], &V)> {
        let values = self.values.iter();
        let pairs = self.keys.iter().zip(values);
        pairs.filter_map(|(k, v)| v.as_ref().map(|v| (&**k, v)))
    }
}

struct Projection<'db> {
    db: &'db DB,
    balances_cf: &'db ColumnFamily,
    history_cf: &'db ColumnFamily,
    transfers_cf: &'db ColumnFamily,
    balances: Table<(i64, i64)>,
    counters: Table<u64>,
    transfers: Table<TransferHead>,
    /// Scratch buffers, reused for every key and value.
    key: Vec<u8>,
    value: Vec<u8>,
    tail: Vec<u8>,
}

impl<'db> Projection<'db> {
    fn new(db: &'db DB) -> Self {
        Projection {
            db,
            balances_cf: cf(db, BALANCES),
            history_cf: cf(db, HISTORY),
            transfers_cf: cf(db, TRANSFERS),
            balances: Table::default(),
            counters: Table::default(),
            transfers: Table::default(),
            key: Vec::new(),
            value: Vec::new(),
            tail: Vec::new(),
        }
    }

    fn collect(&mut self, event: &Event) {
        if let Some(account) = event_account(event) {
            self.counters
                .touch(keys::history_counter(&mut self.key, account));
        }
        if let Some((posting, _, _)) = balance_effect(event) {
            let key = keys::balance(&mut self.key, &posting.account, &posting.currency);
            self.balances.touch(key);
        }
        if let Some(id) = event_txid(event) {
            self.transfers.touch(&keys::transfer_head(id));
        }
    }

    fn load(&mut self) -> Result<()> {
        let db = self.db;
        self.balances.load(db, self.balances_cf, decode_balance)?;
        self.counters.load(db, self.history_cf, decode_counter)?;
        let decode_head = |bytes: &[u8]| decode(TRANSFERS, bytes);
        self.transfers.load(db, self.transfers_cf, decode_head)
    }

    fn apply(
        &mut self,
        applied: &AppliedBatch,
        event: &Event,
        batch: &mut WriteBatch,
    ) -> Result<()> {
        let tail = EventTail {
            log_index: applied.log_index,
            timestamp_ms: applied.header.timestamp_ms,
            event,
        };
        self.tail.clear();
        encode_into(HISTORY, &tail, &mut self.tail)?;
        if let Some(account) = event_account(event) {
            if let Event::AccountOpened(open) = event {
                let record = values::encode_account(open)?;
                batch.put_cf(self.balances_cf, keys::account_record(account), record);
            }
            self.append_history(account, batch);
        }
        if let Some((posting, available, reserved)) = balance_effect(event) {
            self.post(posting, available, reserved)?;
        }
        if let Some(id) = event_txid(event) {
            self.append_transfer(id, event, batch);
        }
        Ok(())
    }

    /// Appends the event in `self.tail` to the account's history.
    fn append_history(&mut self, account: &str, batch: &mut WriteBatch) {
        let counter = self
            .counters
            .get_mut(keys::history_counter(&mut self.key, account));
        let seq = counter.map_or(1, |last| last + 1);
        *counter = Some(seq);
        values::event_view(&mut self.value, seq, &self.tail);
        let key = keys::history_entry(&mut self.key, account, seq);
        batch.put_cf(self.history_cf, key, &self.value);
    }

    /// Appends the event in `self.tail` to the transfer's events.
    fn append_transfer(&mut self, id: Txid, event: &Event, batch: &mut WriteBatch) {
        let head = self
            .transfers
            .get_mut(&keys::transfer_head(id))
            .get_or_insert_with(|| TransferHead {
                state: TransferState::Pending,
                events: 0,
                sent_from: None,
            });
        head.events += 1;
        advance(head, event);
        values::event_view(&mut self.value, head.events, &self.tail);
        let key = keys::transfer_event(id, head.events);
        batch.put_cf(self.transfers_cf, key, &self.value);
    }

    fn post(&mut self, posting: &Posting, available: i64, reserved: i64) -> Result<()> {
        let key = keys::balance(&mut self.key, &posting.account, &posting.currency);
        let balance = self.balances.get_mut(key);
        let (old_available, old_reserved) = balance.unwrap_or((0, 0));
        let moved = |old: i64, sign: i64| old.checked_add(posting.amount.checked_mul(sign)?);
        let new = moved(old_available, available).zip(moved(old_reserved, reserved));
        *balance = Some(new.ok_or_else(|| Error::BalanceOverflow {
            account: posting.account.clone(),
            currency: posting.currency.clone(),
        })?);
        Ok(())
    }

    /// Writes every touched balance, counter and transfer state.
    fn write(&mut self, batch: &mut WriteBatch) -> Result<()> {
        for (key, &balance) in self.balances.loaded() {
            batch.put_cf(self.balances_cf, key, encode_balance(balance));
        }
        for (key, &counter) in self.counters.loaded() {
            batch.put_cf(self.history_cf, key, counter.to_be_bytes());
        }
        for (key, head) in self.transfers.loaded() {
            self.value.clear();
            encode_into(TRANSFERS, head, &mut self.value)?;
            batch.put_cf(self.transfers_cf, key, &self.value);
        }
        Ok(())
    }
}
