//! The read side: accounts, history pages and transfers, each answered from
//! one consistent view (one iterator, or one snapshot).

use super::db::{BALANCES, HISTORY, TRANSFERS, cf, rocks};
use super::keys;
use super::values::{
    AccountRecord, TransferHead, corrupt, decode, decode_balance, decode_counter, decode_event_view,
};
use crate::Result;
use crate::service::{AccountView, BalanceView, HistoryPage, TransferView};
use crate::sm::Txid;
use rocksdb::{DB, ReadOptions};

/// The account and its balances, sorted by currency; `None` if it was
/// never opened.
pub(super) fn account(db: &DB, id: &str) -> Result<Option<AccountView>> {
    if !keys::valid_account(id) {
        return Ok(None);
    }
    let start = keys::account_record(id);
    let mut options = ReadOptions::default();
    options.set_iterate_upper_bound(keys::account_end(id));
    let mut iter = db.raw_iterator_cf_opt(cf(db, BALANCES), options);
    iter.seek(&start);
    let record: AccountRecord = match iter.item() {
        Some((key, value)) if key == start.as_slice() => decode(BALANCES, value)?,
        _ => {
            iter.status().map_err(rocks("reading an account"))?;
            return Ok(None);
        }
    };
    iter.next();
    let mut balances = Vec::new();
    while let Some((key, value)) = iter.item() {
        let currency = std::str::from_utf8(&key[start.len()..])
            .map_err(|_| corrupt(BALANCES, "a currency is not UTF-8"))?;
        let (available, reserved) = decode_balance(value)?;
        balances.push(BalanceView {
            currency: currency.to_owned(),
            available,
            reserved,
        });
        iter.next();
    }
    iter.status().map_err(rocks("reading an account"))?;
    Ok(Some(AccountView {
        account_id: id.to_owned(),
        owner: record.owner,
        kind: record.kind,
        balances,
    }))
}

/// At most `limit` events with `seq > after`, oldest first; `None` for an
/// account no event ever named.
pub(super) fn history(
    db: &DB,
    id: &str,
    after: Option<u64>,
    limit: usize,
) -> Result<Option<HistoryPage>> {
    if !keys::valid_account(id) {
        return Ok(None);
    }
    let snapshot = db.snapshot();
    let history = cf(db, HISTORY);
    let mut key = Vec::new();
    let counter = snapshot
        .get_pinned_cf(history, keys::history_counter(&mut key, id))
        .map_err(rocks("reading history"))?;
    let Some(last) = counter.map(|c| decode_counter(&c)).transpose()? else {
        return Ok(None);
    };
    let after = after.unwrap_or(0);
    let mut options = ReadOptions::default();
    options.set_iterate_upper_bound(keys::account_end(id));
    let mut iter = snapshot.raw_iterator_cf_opt(history, options);
    iter.seek(keys::history_entry(&mut key, id, after.saturating_add(1)));
    let remaining = usize::try_from(last.saturating_sub(after)).unwrap_or(usize::MAX);
    let mut events = Vec::with_capacity(limit.min(remaining));
    while events.len() < limit {
        let Some(value) = iter.value() else { break };
        events.push(decode_event_view(HISTORY, value)?);
        iter.next();
    }
    iter.status().map_err(rocks("reading history"))?;
    let reached = events.last().map_or(after, |e| e.seq);
    Ok(Some(HistoryPage {
        events,
        next: (reached < last).then_some(reached),
    }))
}

/// The transfer's state and events; `None` if no event carried its id.
pub(super) fn transfer(db: &DB, id: Txid) -> Result<Option<TransferView>> {
    let start = keys::transfer_head(id);
    let mut options = ReadOptions::default();
    if let Some(end) = id.as_u128().checked_add(1) {
        options.set_iterate_upper_bound(end.to_be_bytes());
    }
    let mut iter = db.raw_iterator_cf_opt(cf(db, TRANSFERS), options);
    iter.seek(start);
    let head: TransferHead = match iter.item() {
        Some((key, value)) if key == start => decode(TRANSFERS, value)?,
        _ => {
            iter.status().map_err(rocks("reading a transfer"))?;
            return Ok(None);
        }
    };
    iter.next();
    let mut events = Vec::with_capacity(usize::try_from(head.events.min(64)).unwrap_or(0));
    while let Some((key, value)) = iter.item() {
        if !key.starts_with(&start) {
            break;
        }
        events.push(decode_event_view(TRANSFERS, value)?);
        iter.next();
    }
    iter.status().map_err(rocks("reading a transfer"))?;
    Ok(Some(TransferView {
        id,
        state: head.state,
        events,
    }))
}
