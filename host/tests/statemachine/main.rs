//! The sandboxed state machine, end to end through the real release
//! component: agreement with an independent model, the invariants, replay,
//! and the sandbox's refusals.

mod fixtures;
mod r#gen;
mod model;
mod projection;

use proptest::prelude::*;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;
use wallet_host::Error;
use wallet_host::sm::{
    AccountKind, BatchFailure, BatchHeader, BatchOutput, BatchResult, Command, MemoryState, Reason,
    Runtime, Version, limits, new_engine, release_bytes,
};
use wasmtime::Engine;

fn release() -> &'static (Engine, Version) {
    static RELEASE: OnceLock<(Engine, Version)> = OnceLock::new();
    RELEASE.get_or_init(|| {
        let engine = new_engine(None).expect("engine");
        let version = Version::compile(&engine, release_bytes()).expect("the release compiles");
        (engine, version)
    })
}

fn runtime(state: MemoryState) -> Runtime<MemoryState> {
    let (engine, version) = release();
    Runtime::new(engine, version.clone(), state).expect("instantiates")
}

fn header(index: u64) -> BatchHeader {
    BatchHeader {
        log_index: index,
        timestamp_ms: 1_700_000_000_000 + index,
        partition: 0,
    }
}

/// Executes and commits one batch, as a replica would.
fn run(rt: &mut Runtime<MemoryState>, index: u64, commands: &[Command]) -> BatchOutput {
    match rt
        .execute(header(index), commands)
        .expect("no host failure")
    {
        BatchResult::Applied { output, writes, .. } => {
            rt.source_mut().expect("live").apply(&writes);
            output
        }
        BatchResult::Failed(failure) => panic!("the release failed a batch: {failure:?}"),
    }
}

fn check_against_model(batches: &[Vec<Command>]) -> Result<(), TestCaseError> {
    let mut rt = runtime(MemoryState::default());
    let mut model = model::Model::default();
    let mut projection = projection::Projection::default();
    for (index, batch) in batches.iter().enumerate() {
        let output = run(&mut rt, index as u64, batch);
        prop_assert_eq!(output.outcomes.len(), batch.len());
        for (i, command) in batch.iter().enumerate() {
            let expected = model.apply(command);
            prop_assert_eq!(
                output.outcomes[i],
                expected.outcome,
                "command {:?}",
                command
            );
            let events: Vec<_> = output
                .events
                .iter()
                .filter(|e| e.command == i as u32)
                .collect();
            if expected.silent {
                prop_assert!(events.is_empty(), "a retry emitted {:?}", events);
            }
            for record in events {
                projection.apply(&record.event);
            }
            // After every command: conservation, floors, and the events'
            // balances equal the model's.
            for (currency, sum) in projection.sums() {
                prop_assert_eq!(sum, 0, "{} does not sum to zero", currency);
            }
            check_balances(&model, &projection)?;
        }
    }
    Ok(())
}

fn check_balances(
    model: &model::Model,
    projection: &projection::Projection,
) -> Result<(), TestCaseError> {
    for ((account, currency), (available, reserved)) in &projection.balances {
        let acc = &model.accounts[account];
        let floor = match acc.kind {
            AccountKind::Standard => Some(0),
            AccountKind::Credit(limit) => Some(-i128::from(limit)),
            AccountKind::System => None,
        };
        prop_assert!(
            floor.is_none_or(|f| *available >= f),
            "{account} below its floor"
        );
        prop_assert!(*reserved >= 0);
        let money = acc.money.get(currency).copied().unwrap_or_default();
        prop_assert_eq!(
            (*available, *reserved),
            (i128::from(money.available), i128::from(money.reserved))
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn wasm_agrees_with_the_model_and_keeps_every_invariant(batches in r#gen::batches()) {
        check_against_model(&batches)?;
    }

    #[test]
    fn replay_in_fresh_instances_is_byte_identical(batches in r#gen::batches()) {
        // Once on one long-lived instance; once with a new instance per
        // batch over the carried-over state. Instance reuse must not show.
        let mut reused = runtime(MemoryState::default());
        let first = digest(batches.iter().enumerate().map(|(i, b)| run(&mut reused, i as u64, b)));
        let mut state = MemoryState::default();
        let second = digest(batches.iter().enumerate().map(|(i, b)| {
            let mut fresh = runtime(state.clone());
            let output = run(&mut fresh, i as u64, b);
            state = fresh.source().expect("live").clone();
            output
        }));
        prop_assert_eq!(first, second);
    }
}

fn digest(outputs: impl Iterator<Item = BatchOutput>) -> [u8; 32] {
    let mut hash = Sha256::new();
    for output in outputs {
        hash.update(serde_json::to_vec(&output.events).expect("events serialize"));
        hash.update(serde_json::to_vec(&output.outcomes).expect("outcomes serialize"));
    }
    hash.finalize().into()
}

#[test]
fn bad_commands_are_refused_with_their_reason_and_move_nothing() {
    use r#gen::{SYSTEM, transfer};
    let mut rt = runtime(MemoryState::default());
    run(&mut rt, 0, &r#gen::prelude());
    let mut id = 1u128;
    let mut next = || {
        id += 1;
        id
    };
    let cases = [
        (
            Command::Transfer(transfer(next(), "alice", "ghost", 5, "USD")),
            Reason::AccountNotFound,
        ),
        (
            Command::Transfer(transfer(next(), "ghost", "bob", 5, "USD")),
            Reason::AccountNotFound,
        ),
        (
            Command::Transfer(transfer(next(), "alice", "bob", 0, "USD")),
            Reason::InvalidAmount,
        ),
        (
            Command::Transfer(transfer(next(), "alice", "bob", -5, "USD")),
            Reason::InvalidAmount,
        ),
        (
            Command::Transfer(transfer(next(), "alice", "alice", 5, "USD")),
            Reason::SameAccount,
        ),
        (
            Command::Transfer(transfer(next(), "alice", "bob", 5, "XYZ")),
            Reason::UnknownCurrency,
        ),
        (
            Command::Transfer(transfer(next(), "alice", "bob", 5, "usd")),
            Reason::UnknownCurrency,
        ),
        (
            Command::Transfer(transfer(next(), "al ice", "bob", 5, "USD")),
            Reason::InvalidAccountId,
        ),
        (
            Command::Transfer(transfer(next(), "alice", "bob", 1_001, "USD")),
            Reason::InsufficientFunds,
        ),
        (
            Command::Deposit(transfer(next(), "bob", "alice", 5, "USD")),
            Reason::NotASystemAccount,
        ),
        (
            Command::Withdraw(transfer(next(), "alice", "bob", 5, "USD")),
            Reason::NotASystemAccount,
        ),
        (
            Command::TccSettle(wallet_host::sm::Txid::from_u128(next())),
            Reason::TransferNotFound,
        ),
    ];
    for (command, reason) in cases {
        let BatchResult::Applied { output, writes, .. } = rt
            .execute(header(1), std::slice::from_ref(&command))
            .expect("runs")
        else {
            panic!("batch failed")
        };
        assert_eq!(output.outcomes, vec![Err(reason)], "{command:?}");
        // Only the receipt (so a retry gets the same answer) is written; no
        // account changes.
        assert!(
            writes.iter().all(|(key, _)| key[0] == b't'),
            "{command:?} wrote {writes:?}"
        );
        assert!(
            output
                .events
                .iter()
                .all(|e| matches!(e.event, wallet_host::sm::Event::TransferRejected(_)))
        );
    }

    // Overflow: system accounts may go as low as they like, but no balance
    // passes the 64-bit range; two of them can fill bob up to it.
    let big = [
        r#gen::open("external:card", AccountKind::System),
        Command::Deposit(transfer(
            next(),
            "external:card",
            "bob",
            i64::MAX - 1_000,
            "USD",
        )),
        Command::Deposit(transfer(next(), SYSTEM, "bob", 1, "USD")),
    ];
    let output = run(&mut rt, 2, &big);
    assert_eq!(output.outcomes, vec![Ok(()), Ok(()), Err(Reason::Overflow)]);
}

#[test]
fn a_component_importing_wasi_is_refused() {
    let (engine, _) = release();
    match Version::compile(engine, &fixtures::clocked()) {
        Err(Error::ForbiddenImports { imports }) => {
            assert_eq!(imports, vec!["wasi:clocks/wall-clock@0.2.0".to_string()]);
        }
        other => panic!("expected a refusal, got {:?}", other.map(|v| v.hash)),
    }
}

#[test]
fn the_release_imports_only_the_wallet_interfaces() {
    let (engine, version) = release();
    let reloaded = Version::compile(engine, release_bytes()).expect("compiles");
    assert_eq!(reloaded.hash, version.hash);
    assert_eq!(version.hash.to_string(), wallet_host::sm::RELEASE_HASH_HEX);
}

#[test]
fn a_guest_that_loops_forever_runs_out_of_fuel_the_same_way_every_time() {
    let (engine, _) = release();
    let version = Version::compile(engine, &fixtures::looping()).expect("compiles");
    let mut rt = Runtime::new(engine, version, MemoryState::default()).expect("instantiates");
    let commands = r#gen::prelude();
    for attempt in 0..3 {
        match rt
            .execute(header(attempt), &commands)
            .expect("no host failure")
        {
            BatchResult::Failed(failure) => assert_eq!(failure, BatchFailure::OutOfFuel),
            BatchResult::Applied { .. } => panic!("a loop cannot finish"),
        }
    }
    assert!(rt.source().expect("replaced after the trap").is_empty());
}

#[test]
fn an_oversized_batch_is_refused_before_it_runs() {
    let mut rt = runtime(MemoryState::default());
    let commands = vec![r#gen::prelude()[0].clone(); limits::BATCH_COMMANDS_MAX + 1];
    match rt.execute(header(0), &commands) {
        Err(Error::BatchTooLarge { commands, limit }) => {
            assert_eq!(
                (commands, limit),
                (limits::BATCH_COMMANDS_MAX + 1, limits::BATCH_COMMANDS_MAX)
            );
        }
        other => panic!("expected BatchTooLarge, got {other:?}"),
    }
}

#[test]
fn tcc_cancel_before_try_refuses_the_late_try_and_retries_answer_the_same() {
    use r#gen::transfer;
    use wallet_host::sm::Txid;
    let mut rt = runtime(MemoryState::default());
    run(&mut rt, 0, &r#gen::prelude());
    let id = Txid::from_u128(42);
    let late_try = Command::TccReserve(transfer(42, "alice", "bob", 10, "USD"));
    let output = run(
        &mut rt,
        1,
        &[Command::TccRelease(id), late_try.clone(), late_try],
    );
    assert_eq!(
        output.outcomes,
        vec![
            Ok(()),
            Err(Reason::TransferCancelled),
            Err(Reason::TransferCancelled)
        ]
    );
    // A full TC/C round on another id: reserve, place, settle, credit.
    let t = transfer(43, "alice", "bob", 10, "USD");
    let id = t.id;
    let round = [
        Command::TccReserve(t.clone()),
        Command::TccPlacePending(t),
        Command::TccSettle(id),
        Command::TccCredit(id),
        Command::TccRelease(id),
    ];
    let output = run(&mut rt, 2, &round);
    assert_eq!(
        output.outcomes,
        vec![
            Ok(()),
            Ok(()),
            Ok(()),
            Ok(()),
            Err(Reason::TransferConfirmed)
        ]
    );
}
