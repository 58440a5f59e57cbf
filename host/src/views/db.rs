//! The read-model database: its column families, keys and rows.
//!
//! - `accounts`: account id → [`AccountRow`] (owner, kind, balances, and
//!   how many events its history holds).
//! - `history`: `account 0x00 seq` (big-endian, so scans run in order) →
//!   the [`HistoryEntry`] of the account's `seq`-th event: where it is,
//!   when its batch ran, and the balance it left. Account ids never hold
//!   `0x00` (the rules refuse any other id before an event names it).
//! - `transfers`: transaction id (16 bytes, big-endian) → [`TransferRow`].
//! - `meta`: the projector's cursor, and the partition's money in flight
//!   per currency; in the same write as the rows they describe.

use crate::rocks::{self, Tuning, cf, rocks};
use crate::{Error, Result};
use rocksdb::DB;
use serde::{Deserialize, Serialize};
use std::path::Path;
use wallet_core::{AccountKind, Reason, Txid};

/// The database's directory inside a partition directory.
pub const VIEWS_DIR: &str = "views";

pub(super) const ACCOUNTS: &str = "accounts";
pub(super) const HISTORY: &str = "history";
pub(super) const TRANSFERS: &str = "transfers";
pub(super) const META: &str = "meta";
pub(super) const FAMILIES: [&str; 4] = [ACCOUNTS, HISTORY, TRANSFERS, META];

const CURSOR_KEY: &[u8] = b"cursor";
const IN_FLIGHT_PREFIX: &[u8] = b"in_flight:";
/// The first byte of every row; bumped when a row changes shape (history
/// entries included), which makes the projector rebuild the read models
/// from the event log. 2: history entries carry time and balance.
pub(super) const ROW_FORMAT: u8 = 2;

pub(super) fn open(path: &Path, tuning: &Tuning) -> Result<DB> {
    rocks::open(path, &FAMILIES, tuning)
}

/// Where one event is: its record in the event log and its index there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventPos {
    pub record: u64,
    pub index: u32,
}

/// A history row's value: where the event is, when its batch ran, and for
/// an event that moves the account's money, the account's balance in that
/// currency after it; so a balance as of any time is one read, not a fold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    pub pos: EventPos,
    pub timestamp_ms: u64,
    pub balance: Option<BalanceRow>,
}

const ENTRY_LEN: usize = 8 + 4 + 8;
const BALANCE_LEN: usize = 3 + 8 + 8;

impl HistoryEntry {
    /// `record u64, index u32, timestamp_ms u64`, then optionally
    /// `currency [3], available i64, reserved i64`; all big-endian.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ENTRY_LEN + BALANCE_LEN);
        out.extend_from_slice(&self.pos.record.to_be_bytes());
        out.extend_from_slice(&self.pos.index.to_be_bytes());
        out.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        if let Some(balance) = &self.balance {
            out.extend_from_slice(&balance.currency);
            out.extend_from_slice(&balance.available.to_be_bytes());
            out.extend_from_slice(&balance.reserved.to_be_bytes());
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<HistoryEntry> {
        if bytes.len() != ENTRY_LEN && bytes.len() != ENTRY_LEN + BALANCE_LEN {
            return Err(corrupt(
                HISTORY,
                format!("a history entry of {} bytes", bytes.len()),
            ));
        }
        let u64_at = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let index = u32::from_be_bytes(bytes[8..12].try_into().expect("4 bytes"));
        let balance = (bytes.len() > ENTRY_LEN).then(|| BalanceRow {
            currency: bytes[20..23].try_into().expect("3 bytes"),
            available: u64_at(23) as i64,
            reserved: u64_at(31) as i64,
        });
        Ok(HistoryEntry {
            pos: EventPos {
                record: u64_at(0),
                index,
            },
            timestamp_ms: u64_at(12),
            balance,
        })
    }
}

/// How far the projector has read, stored with what it wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The last event-log record folded in; 0 before the first.
    pub events: u64,
    /// The Raft log index the read models reflect.
    pub index: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceRow {
    pub currency: [u8; 3],
    pub available: i64,
    pub reserved: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRow {
    pub owner: Option<String>,
    pub kind: AccountKind,
    /// Sorted by currency.
    pub balances: Vec<BalanceRow>,
    /// Events in the account's history.
    pub events: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Pending,
    Success,
    Failed(Reason),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRow {
    pub status: Status,
    pub events: Vec<EventPos>,
}

fn corrupt(cf: &'static str, why: impl std::fmt::Display) -> Error {
    Error::CorruptValue {
        cf,
        why: why.to_string(),
    }
}

/// A row: [`ROW_FORMAT`], then postcard.
pub(super) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut buf = vec![ROW_FORMAT];
    postcard::to_io(value, &mut buf).expect("rows serialize into memory");
    buf
}

pub(super) fn decode<'a, T: Deserialize<'a>>(cf: &'static str, bytes: &'a [u8]) -> Result<T> {
    match bytes.split_first() {
        Some((&ROW_FORMAT, rest)) => {
            postcard::from_bytes(rest).map_err(|e| corrupt(cf, format!("decode: {e}")))
        }
        _ => Err(corrupt(cf, "a row of an unknown format")),
    }
}

pub(super) fn history_key(account: &str, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(account.len() + 9);
    key.extend_from_slice(account.as_bytes());
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

pub(super) fn transfer_key(id: Txid) -> [u8; 16] {
    id.0.to_be_bytes()
}

pub(super) fn in_flight_key(currency: [u8; 3]) -> Vec<u8> {
    [IN_FLIGHT_PREFIX, &currency].concat()
}

pub(super) fn cursor_key() -> &'static [u8] {
    CURSOR_KEY
}

pub(super) fn read_cursor(db: &DB) -> Result<Option<Cursor>> {
    let bytes = db
        .get_pinned_cf(cf(db, META), CURSOR_KEY)
        .map_err(rocks("reading the projector's cursor"))?;
    bytes.map(|b| decode(META, &b)).transpose()
}

/// The balances the read models hold, and the event record they reflect.
pub struct StoredBalances {
    pub events: u64,
    /// Per account: `(currency, available, reserved)`.
    pub accounts: std::collections::BTreeMap<String, Vec<(String, i64, i64)>>,
}

/// The read models' balances in `partition_dir` (a stopped replica's, or
/// one in use), for an audit; `None` where there are no read models, or
/// read models of another format (the node rebuilds those at start).
pub fn stored_balances_read_only(partition_dir: &Path) -> Result<Option<StoredBalances>> {
    let path = partition_dir.join(VIEWS_DIR);
    let Some(cursor) = rocks::read_only_value(&path, &FAMILIES, META, CURSOR_KEY)? else {
        return Ok(None);
    };
    let cursor: Cursor = match decode(META, &cursor) {
        Ok(cursor) => cursor,
        // Read models of another format, which the node rebuilds at start:
        // nothing to compare.
        Err(Error::CorruptValue { .. }) if cursor.first() != Some(&ROW_FORMAT) => {
            return Ok(None);
        }
        Err(other) => return Err(other),
    };
    let mut accounts = std::collections::BTreeMap::new();
    for (key, value) in rocks::read_only_entries(&path, &FAMILIES, ACCOUNTS)? {
        let row: AccountRow = decode(ACCOUNTS, &value)?;
        let balances = row
            .balances
            .iter()
            .map(|b| {
                let currency = String::from_utf8_lossy(&b.currency).into_owned();
                (currency, b.available, b.reserved)
            })
            .collect();
        accounts.insert(String::from_utf8_lossy(&key).into_owned(), balances);
    }
    Ok(Some(StoredBalances {
        events: cursor.events,
        accounts,
    }))
}

/// The money in flight per currency.
pub(super) fn in_flight(db: &DB) -> Result<Vec<([u8; 3], i64)>> {
    let iter = db.prefix_iterator_cf(cf(db, META), IN_FLIGHT_PREFIX);
    let mut out = Vec::new();
    for item in iter {
        let (key, value) = item.map_err(rocks("reading money in flight"))?;
        let Some(currency) = key.strip_prefix(IN_FLIGHT_PREFIX) else {
            break;
        };
        let currency = currency
            .try_into()
            .map_err(|_| corrupt(META, "an in-flight key without a currency"))?;
        out.push((currency, decode(META, &value)?));
    }
    Ok(out)
}
