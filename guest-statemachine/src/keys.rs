//! The layout of the guest's keys. The first byte names the table, so the
//! batch cache can route a prefetched value to its table.

use crate::Txid;
use alloc::vec::Vec;

pub const ACCOUNT: u8 = b'a';
pub const RECEIPT: u8 = b't';
pub const PHASE: u8 = b'x';

/// Which idempotency record a command uses. The commands that first move
/// money in a partition share one slot per side, so one transaction id can
/// start only one movement there; each follow-up step has its own slot.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Slot {
    Source = 0,
    Destination = 1,
    Settle = 2,
    Credit = 3,
    Release = 4,
    DropPending = 5,
    Refund = 6,
}

/// Which side of a cross-partition transfer a phase record describes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Side {
    Source = 0,
    Destination = 1,
}

pub fn account(id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + id.len());
    key.push(ACCOUNT);
    key.extend_from_slice(id.as_bytes());
    key
}

pub fn receipt(id: Txid, slot: Slot) -> Vec<u8> {
    tx_key(RECEIPT, id, slot as u8)
}

pub fn phase(id: Txid, side: Side) -> Vec<u8> {
    tx_key(PHASE, id, side as u8)
}

fn tx_key(table: u8, id: Txid, suffix: u8) -> Vec<u8> {
    let mut key = Vec::with_capacity(18);
    key.push(table);
    key.extend_from_slice(&id.hi.to_be_bytes());
    key.extend_from_slice(&id.lo.to_be_bytes());
    key.push(suffix);
    key
}
