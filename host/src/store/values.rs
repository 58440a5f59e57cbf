//! Value encodings of the projection column families.
//!
//! Fixed-width integers where the value is a number (balances, counters), so
//! that the hot path neither allocates nor parses; postcard elsewhere.

use crate::service::{EventView, TransferState};
use crate::sm::{AccountKind, Event, OpenAccount};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// What `AccountOpened` said about an account, for `Store::account`.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct AccountRecord {
    pub owner: Option<String>,
    pub kind: AccountKind,
}

/// Serializes exactly like `AccountRecord`, without cloning the event.
#[derive(Serialize)]
struct AccountRecordRef<'a> {
    owner: &'a Option<String>,
    kind: &'a AccountKind,
}

/// A transfer's state, stored at its `txid` key; its events follow it.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct TransferHead {
    pub state: TransferState,
    /// How many events the transfer has: the `seq` of the last one.
    pub events: u64,
    /// The account a saga step debited (`Sent`), so that the `Received` that
    /// returns money to it is recognized as a refund, not as the credit.
    pub sent_from: Option<String>,
}

/// Everything of an `EventView` but its `seq`, which differs between an
/// account's history and a transfer's event list. Postcard writes a struct
/// as its fields in order, so `seq` followed by this is an `EventView`.
#[derive(Serialize)]
pub(super) struct EventTail<'a> {
    pub log_index: u64,
    pub timestamp_ms: u64,
    pub event: &'a Event,
}

pub(super) fn corrupt(cf: &'static str, why: impl std::fmt::Display) -> Error {
    Error::CorruptValue {
        cf,
        why: why.to_string(),
    }
}

/// Appends the postcard encoding of `value` to `buf`.
pub(super) fn encode_into<T: Serialize>(
    cf: &'static str,
    value: &T,
    buf: &mut Vec<u8>,
) -> Result<()> {
    let taken = std::mem::take(buf);
    *buf = postcard::to_extend(value, taken).map_err(|e| corrupt(cf, format!("encode: {e}")))?;
    Ok(())
}

pub(super) fn decode<'a, T: Deserialize<'a>>(cf: &'static str, bytes: &'a [u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| corrupt(cf, format!("decode: {e}")))
}

pub(super) fn encode_account(open: &OpenAccount) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let record = AccountRecordRef {
        owner: &open.owner,
        kind: &open.kind,
    };
    encode_into("balances", &record, &mut buf)?;
    Ok(buf)
}

/// `(available, reserved)` as two big-endian `i64`s.
pub(super) fn encode_balance((available, reserved): (i64, i64)) -> [u8; 16] {
    let mut out = [0; 16];
    out[..8].copy_from_slice(&available.to_be_bytes());
    out[8..].copy_from_slice(&reserved.to_be_bytes());
    out
}

pub(super) fn decode_balance(bytes: &[u8]) -> Result<(i64, i64)> {
    let fixed: [u8; 16] = bytes
        .try_into()
        .map_err(|_| corrupt("balances", format!("balance of {} bytes", bytes.len())))?;
    let (available, reserved) = fixed.split_at(8);
    let int = |half: &[u8]| i64::from_be_bytes(half.try_into().expect("8 bytes"));
    Ok((int(available), int(reserved)))
}

pub(super) fn decode_counter(bytes: &[u8]) -> Result<u64> {
    let fixed: [u8; 8] = bytes
        .try_into()
        .map_err(|_| corrupt("history", format!("counter of {} bytes", bytes.len())))?;
    Ok(u64::from_be_bytes(fixed))
}

/// Writes `seq` followed by an encoded `EventTail` into `buf`: an `EventView`.
pub(super) fn event_view(buf: &mut Vec<u8>, seq: u64, tail: &[u8]) {
    let mut varint = [0; 10];
    let seq = postcard::to_slice(&seq, &mut varint).expect("a u64 varint fits 10 bytes");
    buf.clear();
    buf.extend_from_slice(seq);
    buf.extend_from_slice(tail);
}

pub(super) fn decode_event_view(cf: &'static str, bytes: &[u8]) -> Result<EventView> {
    decode(cf, bytes)
}
