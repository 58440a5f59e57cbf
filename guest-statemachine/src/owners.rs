//! Whose each record of the state is, for a partition split (`splitting`
//! in `wit/wallet.wit`): the host moves an account's records with it and
//! copies the records of no account (a step's receipt that names only a
//! transaction id, a cancel that came before its try) to both partitions.

use crate::keys;
use crate::records::{Account, Phase, Receipt};
use alloc::vec::Vec;
use wallet_core::OpenAccount;
use wallet_core::codec::{self, Belongs, Holding};

/// The owners answer for a page of records (laid out as a migration's).
pub fn owners(records: &[u8]) -> Vec<u8> {
    let records = codec::migration_writes(records).expect("the host sends a well-formed page");
    let mut out = Vec::new();
    codec::put_u32(
        &mut out,
        u32::try_from(records.len()).expect("pages are bounded"),
    );
    for (key, record) in records {
        let record = record.expect("a page holds records, not deletions");
        codec::put_belongs(&mut out, &belongs(key, record)).expect("a stored record encodes");
    }
    out
}

fn belongs<'a>(key: &'a [u8], record: &'a [u8]) -> Belongs<'a> {
    let (&table, rest) = key.split_first().expect("keys are not empty");
    match table {
        keys::ACCOUNT => {
            let account = Account::decode(record);
            Belongs::Account {
                open: OpenAccount {
                    account: utf8(rest),
                    owner: account.owner,
                    kind: account.kind,
                },
                balances: account
                    .balances
                    .iter()
                    .map(|b| Holding {
                        currency: b.currency,
                        available: b.available,
                        reserved: b.reserved,
                    })
                    .collect(),
            }
        }
        keys::RECEIPT => Receipt::decode(record)
            .account()
            .map_or(Belongs::ToNone, Belongs::To),
        keys::PHASE => Phase::decode(record)
            .leg()
            .map_or(Belongs::ToNone, |leg| Belongs::To(leg.account)),
        keys::OUTGOING => Belongs::To(utf8(&rest[3..])),
        _ => panic!("a record in no table of these rules"),
    }
}

fn utf8(bytes: &[u8]) -> &str {
    core::str::from_utf8(bytes).expect("account ids in keys are UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Key, Side, Slot};
    use crate::records::{Balance, Leg};
    use smallvec::smallvec;
    use wallet_core::{AccountKind, Call, Caller, Command, Currency, Role, Transfer, Txid};

    const EUR: Currency = Currency(*b"EUR");

    fn key(key: Key) -> Vec<u8> {
        let mut out = Vec::new();
        key.encode(&mut out);
        out
    }

    fn receipt(command: Command<&str>) -> Vec<u8> {
        let caller = Caller {
            role: Role::Admin,
            principal: "ops",
        };
        let mut value = vec![0];
        crate::records::body(&Call { caller, command }, &mut value);
        value
    }

    fn phase(phase: Phase) -> Vec<u8> {
        let mut value = Vec::new();
        phase.encode(&mut value);
        value
    }

    #[test]
    fn each_record_belongs_to_the_account_it_was_routed_by() {
        let t = |from, to| Transfer {
            id: Txid(7),
            amount: 5,
            currency: EUR,
            from,
            to,
        };
        let alice = Account {
            kind: AccountKind::Credit(50),
            owner: Some("alice"),
            balances: smallvec![Balance {
                currency: EUR,
                available: -20,
                reserved: 7,
            }],
        };
        let mut alice_bytes = Vec::new();
        alice.encode(&mut alice_bytes);
        let leg = Leg {
            account: "carol",
            currency: EUR,
            amount: 5,
        };
        let records: Vec<(Vec<u8>, Vec<u8>, Belongs)> = vec![
            (
                key(Key::Account("alice")),
                alice_bytes,
                Belongs::Account {
                    open: OpenAccount {
                        account: "alice",
                        owner: Some("alice"),
                        kind: AccountKind::Credit(50),
                    },
                    balances: vec![Holding {
                        currency: EUR,
                        available: -20,
                        reserved: 7,
                    }],
                },
            ),
            (
                key(Key::Receipt(Txid(1), Slot::Source)),
                receipt(Command::Transfer(t("alice", "bob"))),
                Belongs::To("alice"),
            ),
            (
                key(Key::Receipt(Txid(2), Slot::Source)),
                receipt(Command::Deposit(t("external:bank", "bob"))),
                Belongs::To("bob"),
            ),
            (
                key(Key::Receipt(Txid(3), Slot::Destination)),
                receipt(Command::TccPlacePending(t("alice", "bob"))),
                Belongs::To("bob"),
            ),
            (
                key(Key::Receipt(Txid(4), Slot::Source)),
                receipt(Command::SagaDebit(t("alice", "bob"))),
                Belongs::To("alice"),
            ),
            (
                key(Key::Receipt(Txid(5), Slot::Settle)),
                receipt(Command::TccSettle(Txid(5))),
                Belongs::ToNone,
            ),
            (
                key(Key::Phase(Txid(6), Side::Destination)),
                phase(Phase::Pending(leg)),
                Belongs::To("carol"),
            ),
            (
                key(Key::Phase(Txid(7), Side::Source)),
                phase(Phase::CancelledEarly),
                Belongs::ToNone,
            ),
            (
                key(Key::Outgoing("dave", EUR)),
                vec![0; 12],
                Belongs::To("dave"),
            ),
        ];
        let mut page = Vec::new();
        codec::put_u32(&mut page, records.len() as u32);
        for (key, value, _) in &records {
            codec::put_write(&mut page, key, Some(value)).expect("encodes");
        }
        let answer = owners(&page);
        let expected: Vec<&Belongs> = records.iter().map(|(_, _, belongs)| belongs).collect();
        let found = codec::owners(&answer, records.len()).expect("decodes");
        assert_eq!(found.iter().collect::<Vec<_>>(), expected);
    }
}
