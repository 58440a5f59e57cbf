//! The release says whose each record of its state is, so that a partition
//! running it can split: an account's own record with the money the events
//! gave it, every receipt and phase record by the account its command was
//! routed by, and the records of steps that name only a transaction id as
//! no account's.

use super::r#gen::{CREDIT, SYSTEM, USERS, by, client, node, prelude, transfer};
use super::projection::Projection;
use super::{run, runtime};
use std::collections::BTreeMap;
use wallet_core::codec::Belongs;
use wallet_core::{Command, Txid};
use wallet_host::sm::{MemoryState, for_each_owner};

#[test]
fn the_release_says_whose_each_record_is() {
    let mut rt = runtime();
    assert!(rt.splits(), "the release exports splitting");
    let mut state = MemoryState::default();
    let mut projection = Projection::default();
    let reserve = transfer(43, "alice", "bob", 10, "USD");
    let batches = [
        prelude(),
        vec![
            // A cancel before its try, and the late try it refuses.
            by(node(), Command::TccRelease(Txid(42))),
            by(
                client("alice"),
                Command::TccReserve(transfer(42, "alice", "bob", 10, "USD")),
            ),
            by(client("alice"), Command::TccReserve(reserve.clone())),
            by(node(), Command::TccPlacePending(reserve)),
            by(
                client("bob"),
                Command::Transfer(transfer(44, "bob", "carol", 5, "USD")),
            ),
        ],
    ];
    for (index, batch) in batches.iter().enumerate() {
        for record in run(&mut rt, &mut state, index as u64, batch).events {
            projection.apply(&record.event);
        }
    }

    let mut accounts = BTreeMap::new();
    let mut owned: BTreeMap<String, usize> = BTreeMap::new();
    let mut visited = 0;
    let failure = for_each_owner(
        &mut rt,
        state.records().into_iter().map(Ok),
        |_, _, belongs| {
            visited += 1;
            match belongs {
                Belongs::ToNone => *owned.entry(String::new()).or_default() += 1,
                Belongs::To(account) => *owned.entry(account.to_owned()).or_default() += 1,
                Belongs::Account { open, balances } => {
                    for b in balances {
                        let key = (open.account.to_owned(), b.currency.to_string());
                        accounts.insert(key, (i128::from(b.available), i128::from(b.reserved)));
                    }
                }
            }
            Ok(())
        },
    )
    .expect("no host failure");
    assert_eq!(failure, Ok(()));
    assert_eq!(visited, state.len(), "every record, once");
    assert_eq!(accounts, projection.balances, "the money the events gave");
    let expected: BTreeMap<String, usize> = [
        // The early cancel's phase record (an accepted step after a try
        // keeps no receipt).
        ("", 1),
        // A deposit's receipt; the late try's; the try's and its phase.
        ("alice", 4),
        // A deposit's receipt; the placeholder's and its phase; the
        // transfer's (by its source).
        ("bob", 4),
        ("carol", 1),
    ]
    .into_iter()
    .map(|(account, count)| (account.to_owned(), count))
    .collect();
    assert_eq!(owned, expected);
    // The users', the system account's and the credit account's records.
    let opened = USERS.len() + 2;
    assert_eq!(visited, opened + expected.values().sum::<usize>());
    assert!(accounts.contains_key(&(SYSTEM.to_owned(), "USD".to_owned())));
    assert!(
        !accounts.keys().any(|(account, _)| account == CREDIT),
        "it holds no money"
    );
}
