//! Key layouts of the projection column families.
//!
//! Account ids are 1 to 64 characters of `A-Za-z0-9_.:-` (the rules refuse
//! anything else before an event names an account), so the bytes `0x00` and
//! `0x01` never occur in them and can serve as separators:
//!
//! - `balances`: `account 0x00` holds the account record (owner, kind);
//!   `account 0x00 currency` holds one balance. A scan from `account 0x00` up
//!   to `account 0x01` yields the record first, then the balances sorted by
//!   currency.
//! - `history`: `account 0x00 seq` (big-endian, so scans run in order) holds
//!   one event; `account 0x01` holds the last `seq`, which is also the upper
//!   bound of a history scan.
//! - `transfers`: `txid` (16 bytes, big-endian halves) holds the transfer's
//!   state; `txid seq` holds its events in order.

use crate::sm::Txid;

const SEP: u8 = 0x00;
const COUNTER: u8 = 0x01;

/// Whether `account` can be a key prefix; anything else is never stored.
pub(super) fn valid_account(account: &str) -> bool {
    !account.is_empty() && !account.bytes().any(|b| b == SEP || b == COUNTER)
}

/// `account 0x00`: the account record, and the start of its balances.
pub(super) fn account_record(account: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(account.len() + 1);
    key.extend_from_slice(account.as_bytes());
    key.push(SEP);
    key
}

/// `account 0x01`: the end (exclusive) of the account's balances or history.
pub(super) fn account_end(account: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(account.len() + 1);
    key.extend_from_slice(account.as_bytes());
    key.push(COUNTER);
    key
}

/// `account 0x00 currency`, written into `buf`.
pub(super) fn balance<'b>(buf: &'b mut Vec<u8>, account: &str, currency: &str) -> &'b [u8] {
    buf.clear();
    buf.extend_from_slice(account.as_bytes());
    buf.push(SEP);
    buf.extend_from_slice(currency.as_bytes());
    buf
}

/// `account 0x01`, written into `buf`: the account's last history `seq`.
pub(super) fn history_counter<'b>(buf: &'b mut Vec<u8>, account: &str) -> &'b [u8] {
    buf.clear();
    buf.extend_from_slice(account.as_bytes());
    buf.push(COUNTER);
    buf
}

/// `account 0x00 seq`, written into `buf`.
pub(super) fn history_entry<'b>(buf: &'b mut Vec<u8>, account: &str, seq: u64) -> &'b [u8] {
    buf.clear();
    buf.extend_from_slice(account.as_bytes());
    buf.push(SEP);
    buf.extend_from_slice(&seq.to_be_bytes());
    buf
}

pub(super) fn transfer_head(id: Txid) -> [u8; 16] {
    id.as_u128().to_be_bytes()
}

pub(super) fn transfer_event(id: Txid, seq: u64) -> [u8; 24] {
    let mut key = [0; 24];
    key[..16].copy_from_slice(&transfer_head(id));
    key[16..].copy_from_slice(&seq.to_be_bytes());
    key
}
