//! How accounts are laid out in the state, and the migration between
//! layouts. The rules store layout 1 (`Account::encode_fixed`, every amount
//! in eight bytes). Built with the `compact-accounts` feature
//! (`statemachine-*+compact-accounts.wasm`) they store layout 2, about half
//! the size, and export the `migration` interface (`wit/wallet.wit`), which
//! rewrites every account still in layout 1 when the version is activated
//! over state an earlier version wrote.
//!
//! Layout 2: the byte `LAYOUT_2` (which no layout-1 record starts with: its
//! first byte is a kind, 0 to 2), then as layout 1 with every amount
//! (credit limit, available, reserved) a zigzag LEB128 varint.

use crate::records::Account;
use alloc::vec::Vec;
#[cfg(any(test, feature = "compact-accounts"))]
use wallet_core::codec;
use wallet_core::codec::Reader;

/// Whether this build stores layout 2.
pub const COMPACT: bool = cfg!(feature = "compact-accounts");

const LAYOUT_2: u8 = 0xA2;

pub fn encode(account: &Account, out: &mut Vec<u8>) {
    out.push(LAYOUT_2);
    account.encode_with(out, put_varint);
}

/// A layout-2 record. Anything else is state this build cannot read (a
/// layout-1 record the migration did not rewrite is a bug): it panics,
/// which traps.
pub fn decode(bytes: &[u8]) -> Account<'_> {
    let mut r = Reader::new(bytes);
    assert_eq!(r.u8().expect("layout"), LAYOUT_2, "an account in layout 2");
    let account = Account::decode_with(&mut r, varint);
    r.end().expect("no trailing bytes");
    account
}

#[cfg(any(test, feature = "compact-accounts"))]
/// The migration: a page of records in, the writes that bring each
/// layout-1 account to layout 2 out. Other records, and accounts already
/// in layout 2, are left as they are.
pub fn migrate(records: &[u8]) -> Vec<u8> {
    let records = codec::migration_writes(records).expect("the host sends a well-formed page");
    let mut out = Vec::new();
    codec::put_u32(&mut out, 0);
    let mut count = 0u32;
    let mut value = Vec::new();
    for (key, record) in records {
        let record = record.expect("a page holds records, not deletions");
        if key.first() != Some(&crate::keys::ACCOUNT) || record.first() == Some(&LAYOUT_2) {
            continue;
        }
        value.clear();
        encode(&Account::decode_fixed(record), &mut value);
        codec::put_write(&mut out, key, Some(&value)).expect("a record within the limits");
        count += 1;
    }
    codec::patch_u32(&mut out, 0, count);
    out
}

fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut zigzag = ((v << 1) ^ (v >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push((zigzag as u8) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

fn varint(r: &mut Reader, what: &'static str) -> i64 {
    let mut zigzag = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = r.u8().expect(what);
        // The tenth byte holds the last bit; only the shortest form is
        // written.
        assert!(shift < 63 || byte <= 1, "an amount over 64 bits");
        zigzag |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return ((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64);
        }
    }
    panic!("an amount longer than ten bytes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::Balance;
    use smallvec::smallvec;
    use wallet_core::{AccountKind, Currency};

    fn alice() -> Account<'static> {
        Account {
            kind: AccountKind::Credit(500),
            owner: Some("alice"),
            balances: smallvec![
                Balance {
                    currency: Currency(*b"EUR"),
                    available: i64::MIN,
                    reserved: i64::MAX,
                },
                Balance {
                    currency: Currency(*b"USD"),
                    available: -20,
                    reserved: 7,
                },
            ],
        }
    }

    #[test]
    fn layout_2_round_trips_every_amount() {
        let mut bytes = Vec::new();
        encode(&alice(), &mut bytes);
        assert_eq!(decode(&bytes), alice());
        for v in [0, 1, -1, 63, -64, 64, 1 << 40, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(varint(&mut Reader::new(&out), "an amount"), v);
        }
    }

    #[test]
    #[should_panic(expected = "an amount over 64 bits")]
    fn an_amount_over_64_bits_is_refused() {
        let mut too_long = [0xff; 10];
        too_long[9] = 0x02;
        varint(&mut Reader::new(&too_long), "an amount");
    }

    #[test]
    #[should_panic(expected = "an account in layout 2")]
    fn a_layout_1_record_is_not_read_as_layout_2() {
        let mut bytes = Vec::new();
        alice().encode_fixed(&mut bytes);
        decode(&bytes);
    }

    #[test]
    fn the_migration_rewrites_layout_1_accounts_only_and_once() {
        let (mut fixed, mut compact) = (Vec::new(), Vec::new());
        alice().encode_fixed(&mut fixed);
        encode(&alice(), &mut compact);
        assert!(compact.len() < fixed.len());
        let page = |records: &[(&[u8], &[u8])]| {
            let mut out = Vec::new();
            codec::put_u32(&mut out, records.len() as u32);
            for (key, value) in records {
                codec::put_write(&mut out, key, Some(value)).expect("encodes");
            }
            out
        };
        let answer = migrate(&page(&[
            (b"aalice", &fixed),
            (b"abob", &compact),
            (b"t0123", &fixed),
        ]));
        let writes = codec::migration_writes(&answer).expect("decodes");
        assert_eq!(writes, [(&b"aalice"[..], Some(&compact[..]))]);
        let again = migrate(&page(&[(b"aalice", &compact)]));
        assert_eq!(codec::migration_writes(&again).expect("decodes"), []);
    }
}
