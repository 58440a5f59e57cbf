//! The byte layouts that cross the sandbox boundary, part of the
//! `wallet:statemachine@2` contract (`wit/wallet.wit` names them). Flat
//! buffers rather than WIT records: a batch crosses in one copy each way,
//! instead of one guest allocation per string and per key.
//!
//! All integers are little endian. `str8` is a `u8` length and that many
//! UTF-8 bytes; `bytes16` a `u16` length and bytes; `bytes32` a `u32`
//! length and bytes.
//!
//! - calls: `u32 count`, then per call `role u8, principal str8, command`.
//!   A command is a tag byte and its body: a transfer body is
//!   `txid u128, amount i64, currency [3], from str8, to str8`; an account
//!   opening `account str8, owner option<str8>, kind`; a transaction-id
//!   step `txid u128`. An `option` is `0`, or `1` and the value; a kind is
//!   `0` standard, `1 limit i64` credit, `2` system.
//! - keys: `u32 count`, then `bytes16` per key.
//! - prefetch answer: `complete u8` (1: no further round needed once these
//!   keys are read), then keys.
//! - values: `u32 count`, then per key asked so far, in order, `0` (absent)
//!   or `1 bytes32`.
//! - execute answer: `u32 count` and one outcome byte per call (0 success,
//!   else a reason code); `u32 count` and the events, each `command u32`
//!   and an event (a tag byte and its body, see [`put_event`]); `u32 count`
//!   and the writes, each `key bytes16` and `0` (delete) or `1 bytes32`.
//! - migration page and answer: a writes section alone (`u32 count` and
//!   the writes); a page's writes are all sets, records of the state.
//! - owners answer (`splitting`, for a page laid out as a migration's):
//!   `u32 count`, then per record of the page, in order, `0` (it belongs
//!   to no account), `1 account str8` (to that account), or `2`, an
//!   account opening's body, `u8 count` and per currency `currency [3],
//!   available i64, reserved i64` (the account's own record).

use crate::command::{AccountKind, Call, Command, OpenAccount, Transfer, Txid};
use crate::currency::Currency;
use crate::event::{Event, Posting};
use crate::limits;
use crate::principal::{Caller, Role};
use crate::reason::{self, Outcome, Reason};
use alloc::vec::Vec;
use core::fmt;

/// Why bytes did not decode: what was expected, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    pub at: usize,
    pub what: &'static str,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.what, self.at)
    }
}

/// A value that has no encoding: a string or buffer over its length limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodeError {
    pub what: &'static str,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what)
    }
}

pub type DecodeResult<T> = Result<T, DecodeError>;

// ---- writing -------------------------------------------------------------

pub fn put_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}
pub fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub fn put_txid(out: &mut Vec<u8>, id: Txid) {
    out.extend_from_slice(&id.0.to_le_bytes());
}

/// A string of at most 255 bytes.
pub fn put_str8(out: &mut Vec<u8>, s: &str) -> Result<(), EncodeError> {
    let len = u8::try_from(s.len()).map_err(|_| EncodeError {
        what: "a string is over 255 bytes",
    })?;
    out.push(len);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

pub fn put_bytes16(out: &mut Vec<u8>, b: &[u8]) -> Result<(), EncodeError> {
    let len = u16::try_from(b.len()).map_err(|_| EncodeError {
        what: "a key is over 65535 bytes",
    })?;
    put_u16(out, len);
    out.extend_from_slice(b);
    Ok(())
}

pub fn put_bytes32(out: &mut Vec<u8>, b: &[u8]) -> Result<(), EncodeError> {
    let len = u32::try_from(b.len()).map_err(|_| EncodeError {
        what: "a value is over 4 GiB",
    })?;
    put_u32(out, len);
    out.extend_from_slice(b);
    Ok(())
}

/// Overwrites the `u32` at `at` (a count written as a placeholder).
pub fn patch_u32(out: &mut [u8], at: usize, v: u32) {
    out[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

// ---- reading -------------------------------------------------------------

/// A cursor over bytes; every read checks its bounds.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0 }
    }

    pub fn position(&self) -> usize {
        self.at
    }

    pub fn is_empty(&self) -> bool {
        self.at == self.bytes.len()
    }

    pub fn error(&self, what: &'static str) -> DecodeError {
        DecodeError { at: self.at, what }
    }

    pub fn take(&mut self, n: usize) -> DecodeResult<&'a [u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| self.error("truncated"))?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    pub fn array<const N: usize>(&mut self) -> DecodeResult<[u8; N]> {
        let bytes = self.take(N)?;
        Ok(bytes.try_into().expect("take returns N bytes"))
    }

    pub fn u8(&mut self) -> DecodeResult<u8> {
        Ok(self.array::<1>()?[0])
    }
    pub fn u16(&mut self) -> DecodeResult<u16> {
        self.array().map(u16::from_le_bytes)
    }
    pub fn u32(&mut self) -> DecodeResult<u32> {
        self.array().map(u32::from_le_bytes)
    }
    pub fn u64(&mut self) -> DecodeResult<u64> {
        self.array().map(u64::from_le_bytes)
    }
    pub fn i64(&mut self) -> DecodeResult<i64> {
        self.array().map(i64::from_le_bytes)
    }
    pub fn txid(&mut self) -> DecodeResult<Txid> {
        self.array().map(|b| Txid(u128::from_le_bytes(b)))
    }

    pub fn str8(&mut self) -> DecodeResult<&'a str> {
        let len = usize::from(self.u8()?);
        let at = self.at;
        let bytes = self.take(len)?;
        core::str::from_utf8(bytes).map_err(|_| DecodeError {
            at,
            what: "a string is not UTF-8",
        })
    }

    pub fn bytes16(&mut self) -> DecodeResult<&'a [u8]> {
        let len = usize::from(self.u16()?);
        self.take(len)
    }

    pub fn bytes32(&mut self) -> DecodeResult<&'a [u8]> {
        let len = usize::try_from(self.u32()?).map_err(|_| self.error("length"))?;
        self.take(len)
    }

    /// A count of items that each take at least `item_bytes_min` bytes: a
    /// count the remaining bytes cannot hold is refused before anything is
    /// allocated for it.
    pub fn count(&mut self, item_bytes_min: usize) -> DecodeResult<usize> {
        let count = usize::try_from(self.u32()?).map_err(|_| self.error("count"))?;
        let left = self.bytes.len() - self.at;
        if count.saturating_mul(item_bytes_min) > left {
            return Err(self.error("a count larger than the bytes that follow"));
        }
        Ok(count)
    }

    pub fn end(&self) -> DecodeResult<()> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.error("trailing bytes"))
        }
    }
}

// ---- calls ---------------------------------------------------------------

const KIND_STANDARD: u8 = 0;
const KIND_CREDIT: u8 = 1;
const KIND_SYSTEM: u8 = 2;

fn put_kind(out: &mut Vec<u8>, kind: AccountKind) {
    match kind {
        AccountKind::Standard => out.push(KIND_STANDARD),
        AccountKind::Credit(limit) => {
            out.push(KIND_CREDIT);
            put_i64(out, limit);
        }
        AccountKind::System => out.push(KIND_SYSTEM),
    }
}

fn kind(r: &mut Reader) -> DecodeResult<AccountKind> {
    match r.u8()? {
        KIND_STANDARD => Ok(AccountKind::Standard),
        KIND_CREDIT => Ok(AccountKind::Credit(r.i64()?)),
        KIND_SYSTEM => Ok(AccountKind::System),
        _ => Err(r.error("an unknown account kind")),
    }
}

fn put_open<S: AsRef<str>>(out: &mut Vec<u8>, open: &OpenAccount<S>) -> Result<(), EncodeError> {
    put_str8(out, open.account.as_ref())?;
    match &open.owner {
        None => out.push(0),
        Some(owner) => {
            out.push(1);
            put_str8(out, owner.as_ref())?;
        }
    }
    put_kind(out, open.kind);
    Ok(())
}

fn open<'a>(r: &mut Reader<'a>) -> DecodeResult<OpenAccount<&'a str>> {
    let account = r.str8()?;
    let owner = match r.u8()? {
        0 => None,
        1 => Some(r.str8()?),
        _ => return Err(r.error("an option tag other than 0 or 1")),
    };
    Ok(OpenAccount {
        account,
        owner,
        kind: kind(r)?,
    })
}

fn put_transfer<S: AsRef<str>>(out: &mut Vec<u8>, t: &Transfer<S>) -> Result<(), EncodeError> {
    put_txid(out, t.id);
    put_i64(out, t.amount);
    out.extend_from_slice(&t.currency.0);
    put_str8(out, t.from.as_ref())?;
    put_str8(out, t.to.as_ref())
}

fn transfer<'a>(r: &mut Reader<'a>) -> DecodeResult<Transfer<&'a str>> {
    Ok(Transfer {
        id: r.txid()?,
        amount: r.i64()?,
        currency: Currency(r.array()?),
        from: r.str8()?,
        to: r.str8()?,
    })
}

/// The tag byte of each command.
fn command_tag<S>(command: &Command<S>) -> u8 {
    use Command as C;
    match command {
        C::OpenAccount(_) => 1,
        C::Transfer(_) => 2,
        C::Deposit(_) => 3,
        C::Withdraw(_) => 4,
        C::TccReserve(_) => 5,
        C::TccPlacePending(_) => 6,
        C::TccSettle(_) => 7,
        C::TccCredit(_) => 8,
        C::TccRelease(_) => 9,
        C::TccDropPending(_) => 10,
        C::SagaDebit(_) => 11,
        C::SagaCredit(_) => 12,
        C::SagaRefund(_) => 13,
    }
}

pub fn put_command<S: AsRef<str>>(
    out: &mut Vec<u8>,
    command: &Command<S>,
) -> Result<(), EncodeError> {
    use Command as C;
    out.push(command_tag(command));
    match command {
        C::OpenAccount(o) => put_open(out, o),
        C::Transfer(t)
        | C::Deposit(t)
        | C::Withdraw(t)
        | C::TccReserve(t)
        | C::TccPlacePending(t)
        | C::SagaDebit(t)
        | C::SagaCredit(t) => put_transfer(out, t),
        C::TccSettle(id)
        | C::TccCredit(id)
        | C::TccRelease(id)
        | C::TccDropPending(id)
        | C::SagaRefund(id) => {
            put_txid(out, *id);
            Ok(())
        }
    }
}

pub fn command<'a>(r: &mut Reader<'a>) -> DecodeResult<Command<&'a str>> {
    use Command as C;
    Ok(match r.u8()? {
        1 => C::OpenAccount(open(r)?),
        2 => C::Transfer(transfer(r)?),
        3 => C::Deposit(transfer(r)?),
        4 => C::Withdraw(transfer(r)?),
        5 => C::TccReserve(transfer(r)?),
        6 => C::TccPlacePending(transfer(r)?),
        7 => C::TccSettle(r.txid()?),
        8 => C::TccCredit(r.txid()?),
        9 => C::TccRelease(r.txid()?),
        10 => C::TccDropPending(r.txid()?),
        11 => C::SagaDebit(transfer(r)?),
        12 => C::SagaCredit(transfer(r)?),
        13 => C::SagaRefund(r.txid()?),
        _ => return Err(r.error("an unknown command tag")),
    })
}

pub fn put_call<S: AsRef<str>>(out: &mut Vec<u8>, call: &Call<S>) -> Result<(), EncodeError> {
    out.push(call.caller.role.code());
    put_str8(out, call.caller.principal.as_ref())?;
    put_command(out, &call.command)
}

pub fn call<'a>(r: &mut Reader<'a>) -> DecodeResult<Call<&'a str>> {
    let role = Role::from_code(r.u8()?).ok_or_else(|| r.error("an unknown role"))?;
    let principal = r.str8()?;
    Ok(Call {
        caller: Caller { role, principal },
        command: command(r)?,
    })
}

/// The smallest encoded call: a role, an empty principal, and an account
/// opening with an empty id, no owner and a standard kind.
const CALL_BYTES_MIN: usize = 1 + 1 + 1 + 1 + 1 + 1;

/// An encoded batch of calls under construction: calls can be pushed one by
/// one and whole batches appended, so requests encode their own calls and
/// the batcher joins them without decoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Calls {
    count: u32,
    /// The count's placeholder, then the calls.
    bytes: Vec<u8>,
}

impl Default for Calls {
    fn default() -> Self {
        Calls::new()
    }
}

impl Calls {
    pub fn new() -> Self {
        Calls {
            count: 0,
            bytes: Vec::from([0; 4]),
        }
    }

    pub fn with_capacity(bytes: usize) -> Self {
        let mut calls = Calls::new();
        calls.bytes.reserve(bytes);
        calls
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn push<S: AsRef<str>>(&mut self, call: &Call<S>) -> Result<(), EncodeError> {
        let before = self.bytes.len();
        if let Err(e) = put_call(&mut self.bytes, call) {
            self.bytes.truncate(before);
            return Err(e);
        }
        self.count += 1;
        Ok(())
    }

    /// The encoded size of the calls (without the count).
    pub fn byte_len(&self) -> usize {
        self.bytes.len() - 4
    }

    pub fn append(&mut self, other: &Calls) {
        self.bytes.extend_from_slice(&other.bytes[4..]);
        self.count += other.count;
    }

    /// The encoded batch: `u32 count` and the calls.
    pub fn into_bytes(mut self) -> Vec<u8> {
        patch_u32(&mut self.bytes, 0, self.count);
        self.bytes
    }
}

/// Every call of an encoded batch, in order.
pub fn calls(bytes: &[u8]) -> DecodeResult<Vec<Call<&str>>> {
    let mut r = Reader::new(bytes);
    let count = r.count(CALL_BYTES_MIN)?;
    let mut calls = Vec::with_capacity(count);
    for _ in 0..count {
        calls.push(call(&mut r)?);
    }
    r.end()?;
    Ok(calls)
}

/// The number of calls in an encoded batch, without decoding them.
pub fn calls_count(bytes: &[u8]) -> DecodeResult<usize> {
    Reader::new(bytes).count(CALL_BYTES_MIN)
}

/// Checks that every call of an encoded batch decodes; returns how many
/// there are.
pub fn check_calls(bytes: &[u8]) -> DecodeResult<usize> {
    let mut r = Reader::new(bytes);
    let count = r.count(CALL_BYTES_MIN)?;
    for _ in 0..count {
        call(&mut r)?;
    }
    r.end()?;
    Ok(count)
}

// ---- events --------------------------------------------------------------

fn event_tag<S>(event: &Event<S>) -> u8 {
    use Event as E;
    match event {
        E::AccountOpened(_) => 1,
        E::Debited(_) => 2,
        E::Credited(_) => 3,
        E::FundsReserved(_) => 4,
        E::ReservationReleased(_) => 5,
        E::ReservationSettled(_) => 6,
        E::CreditPending(_) => 7,
        E::PendingDropped(_) => 8,
        E::PendingCredited(_) => 9,
        E::Sent(_) => 10,
        E::Received(_) => 11,
        E::Refunded(_) => 12,
        E::CancelRecorded(_) => 13,
        E::TransferRejected { .. } => 14,
        E::AccountMovedIn(_) => 15,
        E::MovedOut(_) => 16,
        E::ReservationMovedOut(_) => 17,
        E::MovedIn(_) => 18,
        E::ReservationMovedIn(_) => 19,
    }
}

/// A posting's body: `txid u128, account str8, currency [3], amount i64`.
pub fn put_posting(
    out: &mut Vec<u8>,
    id: Txid,
    account: &str,
    currency: Currency,
    amount: i64,
) -> Result<(), EncodeError> {
    put_txid(out, id);
    put_str8(out, account)?;
    out.extend_from_slice(&currency.0);
    put_i64(out, amount);
    Ok(())
}

fn posting<'a>(r: &mut Reader<'a>) -> DecodeResult<Posting<&'a str>> {
    Ok(Posting {
        id: r.txid()?,
        account: r.str8()?,
        currency: Currency(r.array()?),
        amount: r.i64()?,
    })
}

/// An event: its tag byte and body. A posting event's body is a posting;
/// an account opening's (or arrival's) is as in a call; a recorded cancel's is `txid`; a
/// rejection's is `txid u128, reason u8`.
pub fn put_event<S: AsRef<str>>(out: &mut Vec<u8>, event: &Event<S>) -> Result<(), EncodeError> {
    out.push(event_tag(event));
    match event {
        Event::AccountOpened(o) | Event::AccountMovedIn(o) => put_open(out, o),
        Event::CancelRecorded(id) => {
            put_txid(out, *id);
            Ok(())
        }
        Event::TransferRejected { id, reason } => {
            put_txid(out, *id);
            out.push(reason.code());
            Ok(())
        }
        other => {
            let p = other.posting().expect("the other events carry a posting");
            put_posting(out, p.id, p.account.as_ref(), p.currency, p.amount)
        }
    }
}

pub fn event<'a>(r: &mut Reader<'a>) -> DecodeResult<Event<&'a str>> {
    use Event as E;
    Ok(match r.u8()? {
        1 => E::AccountOpened(open(r)?),
        2 => E::Debited(posting(r)?),
        3 => E::Credited(posting(r)?),
        4 => E::FundsReserved(posting(r)?),
        5 => E::ReservationReleased(posting(r)?),
        6 => E::ReservationSettled(posting(r)?),
        7 => E::CreditPending(posting(r)?),
        8 => E::PendingDropped(posting(r)?),
        9 => E::PendingCredited(posting(r)?),
        10 => E::Sent(posting(r)?),
        11 => E::Received(posting(r)?),
        12 => E::Refunded(posting(r)?),
        13 => E::CancelRecorded(r.txid()?),
        14 => {
            let id = r.txid()?;
            let reason = Reason::from_code(r.u8()?).ok_or_else(|| r.error("an unknown reason"))?;
            E::TransferRejected { id, reason }
        }
        15 => E::AccountMovedIn(open(r)?),
        16 => E::MovedOut(posting(r)?),
        17 => E::ReservationMovedOut(posting(r)?),
        18 => E::MovedIn(posting(r)?),
        19 => E::ReservationMovedIn(posting(r)?),
        _ => return Err(r.error("an unknown event tag")),
    })
}

/// The tag of the event the encoded `bytes` start with: events are tagged
/// `1..=19`, so a first byte outside that is no event.
pub const EVENT_TAGS: core::ops::RangeInclusive<u8> = 1..=19;

// ---- keys and values -----------------------------------------------------

/// Keys under construction: `u32 count`, then `bytes16` each, after an
/// optional prefix (the prefetch answer's `complete` byte).
#[derive(Clone, Debug)]
pub struct KeysWriter {
    count: u32,
    /// Where the count's placeholder is.
    count_at: usize,
    bytes: Vec<u8>,
}

impl Default for KeysWriter {
    fn default() -> Self {
        KeysWriter::after(&[])
    }
}

impl KeysWriter {
    pub fn after(prefix: &[u8]) -> Self {
        let mut bytes = Vec::with_capacity(prefix.len() + 4);
        bytes.extend_from_slice(prefix);
        bytes.extend_from_slice(&[0; 4]);
        KeysWriter {
            count: 0,
            count_at: prefix.len(),
            bytes,
        }
    }

    pub fn push(&mut self, key: &[u8]) -> Result<(), EncodeError> {
        put_bytes16(&mut self.bytes, key)?;
        self.count += 1;
        Ok(())
    }

    /// Writes a key in place: `write` appends its bytes to the buffer.
    pub fn push_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> Result<(), EncodeError> {
        let at = self.bytes.len();
        self.bytes.extend_from_slice(&[0; 2]);
        write(&mut self.bytes);
        let Ok(len) = u16::try_from(self.bytes.len() - at - 2) else {
            self.bytes.truncate(at);
            return Err(EncodeError {
                what: "a key is over 65535 bytes",
            });
        };
        self.bytes[at..at + 2].copy_from_slice(&len.to_le_bytes());
        self.count += 1;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn into_bytes(mut self) -> Vec<u8> {
        patch_u32(&mut self.bytes, self.count_at, self.count);
        self.bytes
    }
}

/// A prefetch answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prefetch<'a> {
    /// No further round is needed once `keys` are read.
    pub complete: bool,
    pub keys: Vec<&'a [u8]>,
}

pub fn prefetch(bytes: &[u8]) -> DecodeResult<Prefetch<'_>> {
    let mut r = Reader::new(bytes);
    let complete = match r.u8()? {
        0 => false,
        1 => true,
        _ => return Err(r.error("a complete flag other than 0 or 1")),
    };
    let keys = keys(&mut r)?;
    r.end()?;
    Ok(Prefetch { complete, keys })
}

/// A `u32 count` and `bytes16` keys.
pub fn keys<'a>(r: &mut Reader<'a>) -> DecodeResult<Vec<&'a [u8]>> {
    let count = r.count(2)?;
    let mut keys = Vec::with_capacity(count);
    for _ in 0..count {
        keys.push(r.bytes16()?);
    }
    Ok(keys)
}

/// Values under construction: one per key asked, in order.
#[derive(Clone, Debug)]
pub struct ValuesWriter {
    count: u32,
    bytes: Vec<u8>,
}

impl Default for ValuesWriter {
    fn default() -> Self {
        ValuesWriter {
            count: 0,
            bytes: Vec::from([0; 4]),
        }
    }
}

impl ValuesWriter {
    pub fn push(&mut self, value: Option<&[u8]>) -> Result<(), EncodeError> {
        match value {
            None => self.bytes.push(0),
            Some(v) => {
                self.bytes.push(1);
                put_bytes32(&mut self.bytes, v)?;
            }
        }
        self.count += 1;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The values so far, encoded (the writer can go on being pushed to).
    pub fn as_bytes(&mut self) -> &[u8] {
        patch_u32(&mut self.bytes, 0, self.count);
        &self.bytes
    }
}

/// The values of an encoded values buffer, in order.
pub fn values(bytes: &[u8]) -> DecodeResult<Vec<Option<&[u8]>>> {
    let mut r = Reader::new(bytes);
    let count = r.count(1)?;
    let mut values = Vec::with_capacity(count);
    for _ in 0..count {
        values.push(match r.u8()? {
            0 => None,
            1 => Some(r.bytes32()?),
            _ => return Err(r.error("a value tag other than 0 or 1")),
        });
    }
    r.end()?;
    Ok(values)
}

// ---- the execute answer --------------------------------------------------

/// One state write: set (`Some`) or delete (`None`) a key.
pub type Write<'a> = (&'a [u8], Option<&'a [u8]>);

/// An execute answer, checked against its batch and its limits, with the
/// events left encoded: `events` is the section's bytes (after its count)
/// and `event_offsets` where each event starts in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output<'a> {
    pub outcomes: Vec<Outcome>,
    pub events: &'a [u8],
    pub event_offsets: Vec<u32>,
    pub writes: Vec<Write<'a>>,
}

/// Parses and checks an execute answer for a batch of `calls` calls: one
/// outcome per call, every event well formed and naming a call of the
/// batch, every write within the key and value limits.
pub fn output(bytes: &[u8], calls: usize) -> DecodeResult<Output<'_>> {
    let mut r = Reader::new(bytes);
    let outcomes = outcomes(&mut r, calls)?;
    let (events, event_offsets) = events_section(&mut r, calls)?;
    let writes = writes(&mut r)?;
    r.end()?;
    Ok(Output {
        outcomes,
        events,
        event_offsets,
        writes,
    })
}

fn outcomes(r: &mut Reader, calls: usize) -> DecodeResult<Vec<Outcome>> {
    let count = r.count(1)?;
    if count != calls {
        return Err(r.error("not one outcome per call"));
    }
    r.take(count)?
        .iter()
        .map(|&code| reason::outcome_from_code(code).ok_or_else(|| r.error("an unknown outcome")))
        .collect()
}

fn events_section<'a>(r: &mut Reader<'a>, calls: usize) -> DecodeResult<(&'a [u8], Vec<u32>)> {
    let count = r.count(5)?;
    if count > calls.saturating_mul(limits::COMMAND_EVENTS_MAX) {
        return Err(r.error("more events than the batch's calls may produce"));
    }
    let start = r.position();
    let mut offsets = Vec::with_capacity(count);
    for _ in 0..count {
        offsets.push(u32::try_from(r.position() - start).map_err(|_| r.error("offset"))?);
        event_record(r, calls)?;
    }
    let section = &r.bytes[start..r.position()];
    Ok((section, offsets))
}

/// One event record (`command u32`, event), checking that it names a call
/// of a batch of `calls`.
pub fn event_record<'a>(r: &mut Reader<'a>, calls: usize) -> DecodeResult<(u32, Event<&'a str>)> {
    let command = r.u32()?;
    if usize::try_from(command).map_or(true, |c| c >= calls) {
        return Err(r.error("an event naming a call that is not in the batch"));
    }
    Ok((command, event(r)?))
}

/// A migration page or answer: a writes section, within the same limits
/// as an execute answer's.
pub fn migration_writes(bytes: &[u8]) -> DecodeResult<Vec<Write<'_>>> {
    let mut r = Reader::new(bytes);
    let writes = writes(&mut r)?;
    r.end()?;
    Ok(writes)
}

/// Appends one write of a writes section (its count is the caller's).
pub fn put_write(out: &mut Vec<u8>, key: &[u8], value: Option<&[u8]>) -> Result<(), EncodeError> {
    put_bytes16(out, key)?;
    match value {
        None => out.push(0),
        Some(value) => {
            out.push(1);
            put_bytes32(out, value)?;
        }
    }
    Ok(())
}

// ---- splitting -----------------------------------------------------------

/// Whose a record of the state is, as a version that can split a partition
/// says (`splitting`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Belongs<'a> {
    /// No account's: a split copies it to both partitions.
    ToNone,
    /// One account's (a receipt, a phase record, a counter of its own).
    To(&'a str),
    /// The account's own record: what it is and the money it holds.
    Account {
        open: OpenAccount<&'a str>,
        balances: Vec<Holding>,
    },
}

/// One currency's money on an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holding {
    pub currency: Currency,
    pub available: i64,
    pub reserved: i64,
}

const BELONGS_NONE: u8 = 0;
const BELONGS_TO: u8 = 1;
const BELONGS_ACCOUNT: u8 = 2;

/// Appends one record's entry of an owners answer (its count is the
/// caller's).
pub fn put_belongs(out: &mut Vec<u8>, belongs: &Belongs) -> Result<(), EncodeError> {
    match belongs {
        Belongs::ToNone => out.push(BELONGS_NONE),
        Belongs::To(account) => {
            out.push(BELONGS_TO);
            put_str8(out, account)?;
        }
        Belongs::Account { open, balances } => {
            out.push(BELONGS_ACCOUNT);
            put_open(out, open)?;
            let count = u8::try_from(balances.len()).map_err(|_| EncodeError {
                what: "more than 255 currencies on one account",
            })?;
            out.push(count);
            for holding in balances {
                out.extend_from_slice(&holding.currency.0);
                put_i64(out, holding.available);
                put_i64(out, holding.reserved);
            }
        }
    }
    Ok(())
}

/// An owners answer for a page of `records` records: one entry each.
pub fn owners(bytes: &[u8], records: usize) -> DecodeResult<Vec<Belongs<'_>>> {
    let mut r = Reader::new(bytes);
    if r.count(1)? != records {
        return Err(r.error("one owner per record of the page"));
    }
    let mut owners = Vec::with_capacity(records);
    for _ in 0..records {
        owners.push(match r.u8()? {
            BELONGS_NONE => Belongs::ToNone,
            BELONGS_TO => Belongs::To(r.str8()?),
            BELONGS_ACCOUNT => {
                let open = open(&mut r)?;
                let count = r.u8()?;
                let balances = (0..count)
                    .map(|_| {
                        Ok(Holding {
                            currency: Currency(r.array()?),
                            available: r.i64()?,
                            reserved: r.i64()?,
                        })
                    })
                    .collect::<DecodeResult<Vec<_>>>()?;
                Belongs::Account { open, balances }
            }
            _ => return Err(r.error("an owner tag other than 0, 1 or 2")),
        });
    }
    r.end()?;
    Ok(owners)
}

fn writes<'a>(r: &mut Reader<'a>) -> DecodeResult<Vec<Write<'a>>> {
    let count = r.count(3)?;
    if count > limits::BATCH_KEYS_MAX {
        return Err(r.error("more writes than a batch may make"));
    }
    let mut writes = Vec::with_capacity(count);
    for _ in 0..count {
        let key = r.bytes16()?;
        if key.is_empty() || key.len() > limits::KEY_BYTES_MAX {
            return Err(r.error("a key outside the key length limits"));
        }
        let value = match r.u8()? {
            0 => None,
            1 => {
                let value = r.bytes32()?;
                if value.len() > limits::VALUE_BYTES_MAX {
                    return Err(r.error("a value over the value length limit"));
                }
                Some(value)
            }
            _ => return Err(r.error("a write tag other than 0 or 1")),
        };
        writes.push((key, value));
    }
    Ok(writes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn t<'a>(id: u128, from: &'a str, to: &'a str) -> Transfer<&'a str> {
        Transfer {
            id: Txid(id),
            from,
            to,
            amount: 1234,
            currency: Currency(*b"USD"),
        }
    }

    fn every_command() -> Vec<Command<&'static str>> {
        use Command as C;
        vec![
            C::OpenAccount(OpenAccount {
                account: "alice",
                owner: Some("alice"),
                kind: AccountKind::Credit(500),
            }),
            C::OpenAccount(OpenAccount {
                account: "external:bank",
                owner: None,
                kind: AccountKind::System,
            }),
            C::Transfer(t(1, "alice", "bob")),
            C::Deposit(t(2, "external:bank", "bob")),
            C::Withdraw(t(3, "bob", "external:bank")),
            C::TccReserve(t(4, "a", "b")),
            C::TccPlacePending(t(5, "a", "b")),
            C::TccSettle(Txid(6)),
            C::TccCredit(Txid(7)),
            C::TccRelease(Txid(u128::MAX)),
            C::TccDropPending(Txid(9)),
            C::SagaDebit(t(10, "a", "b")),
            C::SagaCredit(t(11, "a", "b")),
            C::SagaRefund(Txid(12)),
        ]
    }

    #[test]
    fn calls_round_trip_and_batches_join() {
        let calls: Vec<Call<&str>> = every_command()
            .into_iter()
            .enumerate()
            .map(|(i, command)| Call {
                caller: Caller {
                    role: Role::ALL[i % 4],
                    principal: "ops@example.com",
                },
                command,
            })
            .collect();
        let (first, second) = calls.split_at(5);
        let mut joined = Calls::new();
        for part in [first, second] {
            let mut batch = Calls::new();
            for call in part {
                batch.push(call).expect("encodes");
            }
            joined.append(&batch);
        }
        assert_eq!(joined.len(), calls.len());
        let bytes = joined.into_bytes();
        assert_eq!(calls_count(&bytes), Ok(calls.len()));
        assert_eq!(super::calls(&bytes).expect("decodes"), calls);
    }

    #[test]
    fn truncated_and_oversized_input_is_refused() {
        let mut batch = Calls::new();
        batch
            .push(&Call {
                caller: Caller::SYSTEM,
                command: Command::Transfer(t(1, "alice", "bob")),
            })
            .expect("encodes");
        let bytes = batch.into_bytes();
        for cut in 0..bytes.len() {
            assert!(super::calls(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let long = "x".repeat(256);
        let mut batch = Calls::new();
        let call = Call {
            caller: Caller::SYSTEM,
            command: Command::Transfer(t(1, &long, "bob")),
        };
        assert!(batch.push(&call).is_err());
        assert!(batch.is_empty(), "a refused call leaves nothing behind");
        // A count promising more than the bytes hold allocates nothing.
        assert!(super::calls(&[0xff, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn the_smallest_call_counts() {
        let open = Command::OpenAccount(OpenAccount {
            account: "",
            owner: None,
            kind: AccountKind::Standard,
        });
        let caller = Caller {
            role: Role::Admin,
            principal: "",
        };
        let mut batch = Calls::new();
        batch
            .push(&Call {
                caller,
                command: open,
            })
            .expect("encodes");
        let bytes = batch.into_bytes();
        assert_eq!(bytes.len(), 4 + CALL_BYTES_MIN);
        assert_eq!(calls_count(&bytes), Ok(1));
        assert_eq!(check_calls(&bytes), Ok(1));
        assert!(check_calls(&bytes[..bytes.len() - 1]).is_err());
        assert_eq!(super::calls(&bytes).map(|c| c.len()), Ok(1));
    }

    #[test]
    fn events_round_trip() {
        let p = |id| Posting {
            id: Txid(id),
            account: "alice",
            currency: Currency(*b"JPY"),
            amount: -7,
        };
        let events = vec![
            Event::AccountOpened(OpenAccount {
                account: "alice",
                owner: None,
                kind: AccountKind::Standard,
            }),
            Event::Debited(p(1)),
            Event::Credited(p(2)),
            Event::FundsReserved(p(3)),
            Event::ReservationReleased(p(4)),
            Event::ReservationSettled(p(5)),
            Event::CreditPending(p(6)),
            Event::PendingDropped(p(7)),
            Event::PendingCredited(p(8)),
            Event::Sent(p(9)),
            Event::Received(p(10)),
            Event::Refunded(p(11)),
            Event::CancelRecorded(Txid(12)),
            Event::TransferRejected {
                id: Txid(13),
                reason: Reason::NotOwner,
            },
            Event::AccountMovedIn(OpenAccount {
                account: "alice",
                owner: Some("alice"),
                kind: AccountKind::Credit(50),
            }),
            Event::MovedOut(p(14)),
            Event::ReservationMovedOut(p(15)),
            Event::MovedIn(p(16)),
            Event::ReservationMovedIn(p(17)),
        ];
        assert_eq!(events.len(), crate::event::EVENT_NAMES.len());
        for (event, name) in events.iter().zip(crate::event::EVENT_NAMES) {
            assert_eq!(event.name(), name);
            let mut bytes = Vec::new();
            put_event(&mut bytes, event).expect("encodes");
            assert!(EVENT_TAGS.contains(&bytes[0]));
            let mut r = Reader::new(&bytes);
            assert_eq!(&super::event(&mut r).expect("decodes"), event);
            assert!(r.is_empty());
        }
    }

    #[test]
    fn owners_round_trip_and_are_one_per_record() {
        let owners = vec![
            Belongs::ToNone,
            Belongs::To("bob"),
            Belongs::Account {
                open: OpenAccount {
                    account: "alice",
                    owner: Some("alice"),
                    kind: AccountKind::Credit(500),
                },
                balances: vec![Holding {
                    currency: Currency(*b"EUR"),
                    available: -20,
                    reserved: 7,
                }],
            },
        ];
        let mut bytes = Vec::new();
        put_u32(&mut bytes, 3);
        for owner in &owners {
            put_belongs(&mut bytes, owner).expect("encodes");
        }
        assert_eq!(super::owners(&bytes, 3).expect("decodes"), owners);
        assert!(super::owners(&bytes, 2).is_err(), "one per record");
        assert!(super::owners(&bytes[..bytes.len() - 1], 3).is_err());
        bytes.push(0);
        assert!(super::owners(&bytes, 3).is_err(), "no trailing bytes");
    }

    fn answer(outcomes: &[u8], events: &[(u32, Event<&str>)], writes: &[Write]) -> Vec<u8> {
        let mut out = Vec::new();
        put_u32(&mut out, outcomes.len() as u32);
        out.extend_from_slice(outcomes);
        put_u32(&mut out, events.len() as u32);
        for (command, event) in events {
            put_u32(&mut out, *command);
            put_event(&mut out, event).expect("encodes");
        }
        put_u32(&mut out, writes.len() as u32);
        for (key, value) in writes {
            put_bytes16(&mut out, key).expect("key");
            match value {
                None => out.push(0),
                Some(v) => {
                    out.push(1);
                    put_bytes32(&mut out, v).expect("value");
                }
            }
        }
        out
    }

    #[test]
    fn execute_answers_are_checked_against_their_batch() {
        let rejected = Event::TransferRejected {
            id: Txid(1),
            reason: Reason::SameAccount,
        };
        let good = answer(
            &[0, Reason::SameAccount.code()],
            &[(1, rejected.clone())],
            &[(b"k", Some(b"v")), (b"gone", None)],
        );
        let parsed = output(&good, 2).expect("well formed");
        assert_eq!(parsed.outcomes, vec![Ok(()), Err(Reason::SameAccount)]);
        assert_eq!(parsed.event_offsets, vec![0]);
        let mut r = Reader::new(parsed.events);
        assert_eq!(event_record(&mut r, 2), Ok((1, rejected.clone())));
        assert_eq!(
            parsed.writes,
            vec![(&b"k"[..], Some(&b"v"[..])), (&b"gone"[..], None)]
        );

        assert!(output(&good, 3).is_err(), "one outcome per call");
        let stray = answer(&[0], &[(5, rejected)], &[]);
        assert!(output(&stray, 1).is_err(), "an event naming no call");
        assert!(
            output(&answer(&[200], &[], &[]), 1).is_err(),
            "an unknown outcome"
        );
        let empty_key = answer(&[0], &[], &[(b"", None)]);
        assert!(output(&empty_key, 1).is_err());
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(output(&trailing, 2).is_err());
    }

    #[test]
    fn keys_and_values_round_trip() {
        let mut keys = KeysWriter::after(&[1]);
        keys.push(b"alpha").expect("key");
        keys.push_with(|out| out.extend_from_slice(b"beta"))
            .expect("key");
        let bytes = keys.into_bytes();
        let answer = prefetch(&bytes).expect("decodes");
        assert!(answer.complete);
        assert_eq!(answer.keys, vec![&b"alpha"[..], &b"beta"[..]]);

        let mut values = ValuesWriter::default();
        values.push(Some(b"one")).expect("value");
        values.push(None).expect("value");
        assert_eq!(
            super::values(values.as_bytes()).expect("decodes"),
            vec![Some(&b"one"[..]), None]
        );
        values.push(Some(b"")).expect("value");
        assert_eq!(super::values(values.as_bytes()).expect("decodes").len(), 3);
    }
}
