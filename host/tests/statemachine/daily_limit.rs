//! The second rules version, `statemachine-*+daily-limit.wasm`: a client
//! sends at most 10,000 of a currency's major unit from one account per UTC
//! day of the log's time; admins are not limited; a refusal changes nothing
//! but its receipt; the next day starts from nothing.

use super::r#gen::{self, Cmd, admin, by, client, transfer};
use super::{decode, encode};
use wallet_core::reason::Outcome;
use wallet_core::{Command, Reason};
use wallet_host::sm::{BatchHeader, Executed, MemoryState, Runtime, Version, new_engine};

const RELEASE: &[u8] =
    include_bytes!("../../../guest-statemachine/releases/statemachine-2.5.0+daily-limit.wasm");

const DAY_MS: u64 = 86_400_000;

struct Limited {
    rt: Runtime,
    state: MemoryState,
    index: u64,
}

impl Limited {
    fn new() -> Limited {
        let engine = new_engine(None).expect("engine");
        let version = Version::compile(&engine, RELEASE).expect("the release compiles");
        let mut limited = Limited {
            rt: Runtime::new(&engine, version).expect("instantiates"),
            state: MemoryState::default(),
            index: 0,
        };
        let mut prelude = r#gen::prelude();
        prelude.push(by(
            admin(),
            Command::Deposit(transfer(1 << 90, r#gen::SYSTEM, "alice", 5_000_000, "USD")),
        ));
        limited.run(0, &prelude);
        limited
    }

    /// Runs `calls` as one batch at `ms` into day 20,000 of the epoch;
    /// their outcomes, after checking that a refusal wrote only receipts.
    fn run(&mut self, ms: u64, calls: &[Cmd]) -> Vec<Outcome> {
        self.index += 1;
        let header = BatchHeader {
            log_index: self.index,
            timestamp_ms: 20_000 * DAY_MS + ms,
            partition: 0,
        };
        let answer = match self.rt.execute(header, &encode(calls), &mut self.state) {
            Ok(Executed::Applied(answer)) => answer,
            other => panic!("the batch did not apply: {other:?}"),
        };
        let ran = decode(&answer);
        if ran.outcomes.iter().all(Result::is_err) {
            assert!(ran.writes.iter().all(|(key, _)| key[0] == b't'), "{ran:?}");
        }
        self.state.apply(answer.writes());
        ran.outcomes
    }
}

fn alice_pays(id: u128, cents: i64) -> Cmd {
    by(
        client("alice"),
        Command::Transfer(transfer(id, "alice", "bob", cents, "USD")),
    )
}

#[test]
fn a_client_sends_at_most_the_daily_limit_and_the_next_day_starts_afresh() {
    let mut limited = Limited::new();
    // 6,000.00 and 4,000.00 reach the limit exactly, in separate batches.
    assert_eq!(limited.run(1_000, &[alice_pays(1, 600_000)]), [Ok(())]);
    assert_eq!(limited.run(2_000, &[alice_pays(2, 400_000)]), [Ok(())]);
    // One cent more is refused, and changes nothing.
    assert_eq!(
        limited.run(3_000, &[alice_pays(3, 1)]),
        [Err(Reason::DailyLimitExceeded)]
    );
    // An admin moving alice's money is not limited.
    let by_admin = by(
        admin(),
        Command::Transfer(transfer(4, "alice", "bob", 100_000, "USD")),
    );
    assert_eq!(limited.run(4_000, &[by_admin]), [Ok(())]);
    // Another currency has its own limit (JPY has no minor unit).
    let yen = by(
        admin(),
        Command::Deposit(transfer(5, r#gen::SYSTEM, "alice", 20_000, "JPY")),
    );
    let yen_paid = by(
        client("alice"),
        Command::Transfer(transfer(6, "alice", "bob", 10_001, "JPY")),
    );
    assert_eq!(
        limited.run(5_000, &[yen, yen_paid]),
        [Ok(()), Err(Reason::DailyLimitExceeded)]
    );
    // Within one batch the total counts too; insufficient funds come first.
    assert_eq!(
        limited.run(DAY_MS, &[alice_pays(7, 900_000), alice_pays(8, 200_000)]),
        [Ok(()), Err(Reason::DailyLimitExceeded)]
    );
    let broke = by(
        client("bob"),
        Command::Transfer(transfer(9, "bob", "alice", 1_000_000_000, "USD")),
    );
    assert_eq!(
        limited.run(DAY_MS + 1, &[broke]),
        [Err(Reason::InsufficientFunds)]
    );
    // The next day starts from nothing.
    assert_eq!(
        limited.run(2 * DAY_MS, &[alice_pays(10, 1_000_000)]),
        [Ok(())]
    );
}

#[test]
fn the_limit_counts_reservations_and_saga_debits_of_a_client() {
    let mut limited = Limited::new();
    let reserve = by(
        client("alice"),
        Command::TccReserve(transfer(1, "alice", "bob", 700_000, "USD")),
    );
    let debit = |id, cents| {
        by(
            client("alice"),
            Command::SagaDebit(transfer(id, "alice", "bob", cents, "USD")),
        )
    };
    assert_eq!(
        limited.run(0, &[reserve, debit(2, 300_001)]),
        [Ok(()), Err(Reason::DailyLimitExceeded)]
    );
    assert_eq!(limited.run(1, &[debit(3, 300_000)]), [Ok(())]);
}
