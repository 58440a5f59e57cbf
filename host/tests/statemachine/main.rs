//! The sandboxed state machine, end to end through the real release
//! component: agreement with an independent model, the invariants, replay,
//! authorization, and the sandbox's refusals.

mod daily_limit;
mod fixtures;
mod r#gen;
mod model;
mod owners;
mod projection;

use r#gen::{Cmd, admin, by, client, node, transfer};
use proptest::prelude::*;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;
use wallet_core::codec::{self, Calls, Reader};
use wallet_core::reason::Outcome;
use wallet_core::{AccountKind, Caller, Command, Event, EventRecord, Reason, Role, Txid};
use wallet_host::Error;
use wallet_host::sm::{
    Answer, BatchFailure, BatchHeader, Executed, MemoryState, Runtime, Version, limits, new_engine,
    release_bytes,
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

fn runtime() -> Runtime {
    let (engine, version) = release();
    Runtime::new(engine, version.clone()).expect("instantiates")
}

fn header(index: u64) -> BatchHeader {
    BatchHeader {
        log_index: index,
        timestamp_ms: 1_700_000_000_000 + index,
        partition: 0,
    }
}

fn encode(calls: &[Cmd]) -> Vec<u8> {
    let mut batch = Calls::new();
    for call in calls {
        batch.push(call).expect("encodes");
    }
    batch.into_bytes()
}

/// What a batch did, decoded.
#[derive(Debug, PartialEq, Eq)]
struct Ran {
    outcomes: Vec<Outcome>,
    events: Vec<EventRecord<String>>,
    writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

fn ran<'a>(
    outcomes: &[Outcome],
    events: &[u8],
    count: usize,
    writes: impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)>,
) -> Ran {
    let mut r = Reader::new(events);
    let events = (0..count)
        .map(|_| {
            let (command, event) = codec::event_record(&mut r, usize::MAX).expect("decodes");
            EventRecord {
                command,
                event: event.to_owned(),
            }
        })
        .collect();
    Ran {
        outcomes: outcomes.to_vec(),
        events,
        writes: writes
            .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
            .collect(),
    }
}

fn decode(answer: &Answer) -> Ran {
    let count = answer.event_offsets().len();
    ran(answer.outcomes(), answer.events(), count, answer.writes())
}

/// Executes and commits one batch, as a replica would.
fn run(rt: &mut Runtime, state: &mut MemoryState, index: u64, calls: &[Cmd]) -> Ran {
    match rt
        .execute(header(index), &encode(calls), state)
        .expect("no host failure")
    {
        Executed::Applied(answer) => {
            state.apply(answer.writes());
            decode(&answer)
        }
        Executed::Failed(failure) => panic!("the release failed a batch: {failure:?}"),
    }
}

fn check_against_model(batches: &[Vec<Cmd>]) -> Result<(), TestCaseError> {
    let mut rt = runtime();
    let mut state = MemoryState::default();
    let mut model = model::Model::default();
    let mut projection = projection::Projection::default();
    for (index, batch) in batches.iter().enumerate() {
        let ran = run(&mut rt, &mut state, index as u64, batch);
        prop_assert_eq!(ran.outcomes.len(), batch.len());
        for (i, call) in batch.iter().enumerate() {
            let expected = model.apply(call);
            prop_assert_eq!(ran.outcomes[i], expected.outcome, "call {:?}", call);
            let events: Vec<_> = ran
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
            // After every call: conservation, floors, and the events'
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

/// The hash of every answer's bytes.
fn digest(answers: impl Iterator<Item = Vec<u8>>) -> [u8; 32] {
    let mut hash = Sha256::new();
    for answer in answers {
        hash.update(&answer);
    }
    hash.finalize().into()
}

/// The native build of the rules, with its prefetch rounds.
fn native(state: &mut MemoryState, index: u64, calls: &[u8]) -> Vec<u8> {
    let header = guest_statemachine::BatchHeader {
        log_index: index,
        timestamp_ms: 1_700_000_000_000 + index,
        partition: 0,
    };
    let mut values = codec::ValuesWriter::default();
    loop {
        let answer = guest_statemachine::prefetch(&header, calls, values.as_bytes());
        let prefetch = codec::prefetch(&answer).expect("decodes");
        for key in &prefetch.keys {
            values.push(state.get(key)).expect("encodes");
        }
        if prefetch.complete {
            break;
        }
    }
    let answer = guest_statemachine::execute(&header, calls, values.as_bytes());
    let parsed = codec::output(&answer, codec::calls_count(calls).expect("count")).expect("valid");
    state.apply(parsed.writes.iter().copied());
    answer
}

/// The wasm answer's bytes (events and writes re-encoded in order).
fn wasm_bytes(rt: &mut Runtime, state: &mut MemoryState, index: u64, calls: &[u8]) -> Vec<u8> {
    match rt.execute(header(index), calls, state).expect("runs") {
        Executed::Applied(answer) => {
            state.apply(answer.writes());
            let ran = decode(&answer);
            format!("{ran:?}").into_bytes()
        }
        Executed::Failed(failure) => panic!("{failure}"),
    }
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
        let mut reused = runtime();
        let mut state = MemoryState::default();
        let first = digest(batches.iter().enumerate().map(|(i, b)| {
            wasm_bytes(&mut reused, &mut state, i as u64, &encode(b))
        }));
        let mut state = MemoryState::default();
        let second = digest(batches.iter().enumerate().map(|(i, b)| {
            wasm_bytes(&mut runtime(), &mut state, i as u64, &encode(b))
        }));
        prop_assert_eq!(first, second);
    }

    #[test]
    fn the_native_build_answers_exactly_as_the_component(batches in r#gen::batches()) {
        let mut rt = runtime();
        let (mut wasm_state, mut native_state) = (MemoryState::default(), MemoryState::default());
        for (i, batch) in batches.iter().enumerate() {
            let calls = encode(batch);
            let wasm = match rt.execute(header(i as u64), &calls, &mut wasm_state).expect("runs") {
                Executed::Applied(answer) => {
                    wasm_state.apply(answer.writes());
                    decode(&answer)
                }
                Executed::Failed(failure) => panic!("{failure}"),
            };
            let bytes = native(&mut native_state, i as u64, &calls);
            let parsed = codec::output(&bytes, batch.len()).expect("valid");
            let count = parsed.event_offsets.len();
            let native = ran(&parsed.outcomes, parsed.events, count, parsed.writes.iter().copied());
            prop_assert_eq!(wasm, native);
        }
    }
}

/// A runtime, and the state the accounts of `r#gen::prelude` are opened
/// and funded in.
fn after_prelude() -> (Runtime, MemoryState) {
    let mut rt = runtime();
    let mut state = MemoryState::default();
    run(&mut rt, &mut state, 0, &r#gen::prelude());
    (rt, state)
}

fn refused(rt: &mut Runtime, state: &mut MemoryState, call: Cmd, reason: Reason) {
    let ran = match rt
        .execute(header(1), &encode(std::slice::from_ref(&call)), state)
        .expect("runs")
    {
        Executed::Applied(answer) => decode(&answer),
        Executed::Failed(failure) => panic!("batch failed: {failure}"),
    };
    assert_eq!(ran.outcomes, vec![Err(reason)], "{call:?}");
    // Only the receipt (so a retry gets the same answer) is written; no
    // account changes.
    assert!(
        ran.writes.iter().all(|(key, _)| key[0] == b't'),
        "{call:?} wrote {:?}",
        ran.writes
    );
    assert!(
        ran.events
            .iter()
            .all(|e| matches!(e.event, Event::TransferRejected { reason: r, .. } if r == reason)),
        "{:?}",
        ran.events
    );
}

#[test]
fn bad_commands_are_refused_with_their_reason_and_move_nothing() {
    let (mut rt, mut state) = after_prelude();
    let mut id = 1u128;
    let mut next = || {
        id += 1;
        id
    };
    let auditor = Caller {
        role: Role::Auditor,
        principal: "auditor".to_string(),
    };
    let t = |id, from, to, amount, currency| {
        Command::Transfer(transfer(id, from, to, amount, currency))
    };
    let cases = [
        (
            by(admin(), t(next(), "alice", "ghost", 5, "USD")),
            Reason::AccountNotFound,
        ),
        (
            by(admin(), t(next(), "ghost", "bob", 5, "USD")),
            Reason::AccountNotFound,
        ),
        (
            by(admin(), t(next(), "alice", "bob", 0, "USD")),
            Reason::InvalidAmount,
        ),
        (
            by(admin(), t(next(), "alice", "bob", -5, "USD")),
            Reason::InvalidAmount,
        ),
        (
            by(admin(), t(next(), "alice", "alice", 5, "USD")),
            Reason::SameAccount,
        ),
        (
            by(admin(), t(next(), "alice", "bob", 5, "XYZ")),
            Reason::UnknownCurrency,
        ),
        (
            by(admin(), t(next(), "alice", "bob", 5, "usd")),
            Reason::UnknownCurrency,
        ),
        (
            by(admin(), t(next(), "alice", "bob", 5, "XAU")),
            Reason::UnknownCurrency,
        ),
        (
            by(admin(), t(next(), "al ice", "bob", 5, "USD")),
            Reason::InvalidAccountId,
        ),
        (
            by(admin(), t(next(), "alice", "bob", 1_001, "USD")),
            Reason::InsufficientFunds,
        ),
        (
            by(
                admin(),
                Command::Deposit(transfer(next(), "bob", "alice", 5, "USD")),
            ),
            Reason::NotASystemAccount,
        ),
        (
            by(
                admin(),
                Command::Withdraw(transfer(next(), "alice", "bob", 5, "USD")),
            ),
            Reason::NotASystemAccount,
        ),
        (
            by(admin(), Command::TccSettle(Txid(next()))),
            Reason::TransferNotFound,
        ),
        (
            by(client("bob"), t(next(), "alice", "bob", 5, "USD")),
            Reason::NotOwner,
        ),
        (
            by(client("bob"), t(next(), r#gen::SYSTEM, "bob", 5, "USD")),
            Reason::NotOwner,
        ),
        (
            by(auditor.clone(), t(next(), "alice", "bob", 5, "USD")),
            Reason::NotAllowed,
        ),
        (
            by(
                client("bob"),
                Command::Deposit(transfer(next(), r#gen::SYSTEM, "bob", 5, "USD")),
            ),
            Reason::NotAllowed,
        ),
        (
            by(
                client("alice"),
                Command::Withdraw(transfer(next(), "alice", r#gen::SYSTEM, 5, "USD")),
            ),
            Reason::NotAllowed,
        ),
        (
            by(client("alice"), Command::TccSettle(Txid(next()))),
            Reason::NotAllowed,
        ),
    ];
    for (call, reason) in cases {
        refused(&mut rt, &mut state, call, reason);
    }
    // Openings have no receipt: a refused one writes nothing at all.
    for (call, reason) in [
        (
            by(
                client("bob"),
                r#gen::open("eve", None, AccountKind::Standard),
            ),
            Reason::NotAllowed,
        ),
        (
            by(auditor, r#gen::open("eve", None, AccountKind::Standard)),
            Reason::NotAllowed,
        ),
        (
            by(
                admin(),
                r#gen::open("eve", Some("Alice Smith"), AccountKind::Standard),
            ),
            Reason::InvalidOwner,
        ),
        (
            by(admin(), r#gen::open("e ve", None, AccountKind::Standard)),
            Reason::InvalidAccountId,
        ),
        (
            by(admin(), r#gen::open("eve", None, AccountKind::Credit(0))),
            Reason::InvalidAmount,
        ),
        (
            by(admin(), r#gen::open("alice", None, AccountKind::Standard)),
            Reason::AccountExists,
        ),
    ] {
        let ran = run(&mut rt, &mut state, 2, std::slice::from_ref(&call));
        assert_eq!(ran.outcomes, vec![Err(reason)], "{call:?}");
        assert!(ran.writes.is_empty() && ran.events.is_empty(), "{call:?}");
    }

    // Overflow: system accounts may go as low as they like, but no balance
    // passes the 64-bit range; two of them can fill bob up to it.
    let big = [
        by(
            admin(),
            r#gen::open("external:card", None, AccountKind::System),
        ),
        by(
            admin(),
            Command::Deposit(transfer(
                next(),
                "external:card",
                "bob",
                i64::MAX - 1_000,
                "USD",
            )),
        ),
        by(
            admin(),
            Command::Deposit(transfer(next(), r#gen::SYSTEM, "bob", 1, "USD")),
        ),
    ];
    let ran = run(&mut rt, &mut state, 3, &big);
    assert_eq!(ran.outcomes, vec![Ok(()), Ok(()), Err(Reason::Overflow)]);
}

#[test]
fn a_client_pays_from_its_own_wallet_and_a_refusal_replays_identically() {
    let calls = {
        let mut calls = r#gen::prelude();
        calls.push(by(
            client("alice"),
            Command::Transfer(transfer(1, "alice", "bob", 5, "USD")),
        ));
        calls.push(by(
            client("alice"),
            Command::Transfer(transfer(2, "bob", "alice", 5, "USD")),
        ));
        // The same id again by another principal: a conflict, not a replay.
        calls.push(by(
            client("bob"),
            Command::Transfer(transfer(1, "alice", "bob", 5, "USD")),
        ));
        calls
    };
    let replay = || {
        let mut state = MemoryState::default();
        run(&mut runtime(), &mut state, 0, &calls)
    };
    let ran = replay();
    let n = calls.len();
    assert_eq!(
        ran.outcomes[n - 3..],
        [
            Ok(()),
            Err(Reason::NotOwner),
            Err(Reason::IdempotencyConflict)
        ]
    );
    let refusal = ran
        .events
        .iter()
        .find(|e| e.command as usize == n - 2)
        .expect("the refusal is an event");
    assert_eq!(
        refusal.event,
        Event::TransferRejected {
            id: Txid(2),
            reason: Reason::NotOwner
        }
    );
    assert_eq!(replay(), ran, "a replay gives the same events");
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
fn the_release_imports_nothing_and_the_old_contract_is_refused_by_name() {
    let (engine, version) = release();
    let reloaded = Version::compile(engine, release_bytes()).expect("compiles");
    assert_eq!(reloaded.hash, version.hash);
    assert_eq!(version.hash.to_string(), wallet_host::sm::RELEASE_HASH_HEX);
    let old = include_bytes!("../../../guest-statemachine/releases/statemachine-1.0.0.wasm");
    match Version::compile(engine, old) {
        Err(error @ Error::UnsupportedContract { .. }) => {
            let message = error.to_string();
            assert!(message.contains("wallet:statemachine@1.0.0"), "{message}");
            assert!(message.contains("wallet:statemachine@2.0.0"), "{message}");
        }
        other => panic!("expected a refusal, got {:?}", other.map(|v| v.hash)),
    }
}

#[test]
fn a_guest_that_loops_forever_runs_out_of_fuel_the_same_way_every_time() {
    let (engine, _) = release();
    let version = Version::compile(engine, &fixtures::looping()).expect("compiles");
    let mut rt = Runtime::new(engine, version).expect("instantiates");
    let mut state = MemoryState::default();
    let calls = encode(&r#gen::prelude());
    for attempt in 0..3 {
        match rt
            .execute(header(attempt), &calls, &mut state)
            .expect("no host failure")
        {
            Executed::Failed(failure) => assert_eq!(failure, BatchFailure::OutOfFuel),
            Executed::Applied(_) => panic!("a loop cannot finish"),
        }
    }
    assert!(state.is_empty());
}

/// An answer of `outcomes`, one event naming call `event_call`, no writes.
fn answer(outcomes: u32, event_call: Option<u32>) -> Vec<u8> {
    let mut out = Vec::new();
    codec::put_u32(&mut out, outcomes);
    out.extend(std::iter::repeat_n(0u8, outcomes as usize));
    codec::put_u32(&mut out, u32::from(event_call.is_some()));
    if let Some(call) = event_call {
        codec::put_u32(&mut out, call);
        codec::put_event::<&str>(&mut out, &Event::CancelRecorded(Txid(9))).expect("encodes");
    }
    codec::put_u32(&mut out, 0);
    out
}

#[test]
fn a_guest_with_malformed_output_fails_its_batch_the_same_way_every_time() {
    let (engine, _) = release();
    let calls = encode(&r#gen::prelude()[..2]);
    for (bytes, why) in [
        (answer(1, None), "not one outcome per call"),
        (
            answer(2, Some(7)),
            "an event naming a call that is not in the batch",
        ),
    ] {
        let version = Version::compile(engine, &fixtures::answering(&bytes)).expect("compiles");
        let mut rt = Runtime::new(engine, version).expect("instantiates");
        let mut state = MemoryState::default();
        let mut failures = Vec::new();
        for attempt in 0..2 {
            match rt
                .execute(header(attempt), &calls, &mut state)
                .expect("no host failure")
            {
                Executed::Failed(failure) => failures.push(failure),
                Executed::Applied(_) => panic!("a malformed answer was accepted"),
            }
        }
        assert_eq!(failures[0], failures[1], "the same failure every time");
        assert!(
            matches!(&failures[0], BatchFailure::MalformedOutput(m) if m.contains(why)),
            "{:?}",
            failures[0]
        );
        assert!(state.is_empty());
    }
    // The same fixture with a well-formed answer is accepted: the checks
    // above are about the bytes, not about the fixture.
    let version =
        Version::compile(engine, &fixtures::answering(&answer(2, Some(1)))).expect("compiles");
    let mut rt = Runtime::new(engine, version).expect("instantiates");
    let executed = rt.execute(header(0), &calls, &mut MemoryState::default());
    assert!(matches!(executed, Ok(Executed::Applied(_))));
}

#[test]
fn an_oversized_or_undecodable_batch_fails_before_it_runs() {
    let mut rt = runtime();
    let mut state = MemoryState::default();
    let calls = vec![r#gen::prelude()[0].clone(); limits::BATCH_COMMANDS_MAX + 1];
    match rt
        .execute(header(0), &encode(&calls), &mut state)
        .expect("no host failure")
    {
        Executed::Failed(BatchFailure::MalformedBatch(why)) => {
            assert!(why.contains("over the limit of 8190"), "{why}");
        }
        other => panic!("expected a malformed batch, got {other:?}"),
    }
    let mut bytes = encode(&r#gen::prelude());
    bytes.truncate(bytes.len() - 1);
    let executed = rt
        .execute(header(0), &bytes, &mut state)
        .expect("no host failure");
    assert!(matches!(
        executed,
        Executed::Failed(BatchFailure::MalformedBatch(_))
    ));
    assert!(state.is_empty());
}

#[test]
fn tcc_cancel_before_try_refuses_the_late_try_and_retries_answer_the_same() {
    let (mut rt, mut state) = after_prelude();
    let late_try = by(
        client("alice"),
        Command::TccReserve(transfer(42, "alice", "bob", 10, "USD")),
    );
    let ran = run(
        &mut rt,
        &mut state,
        1,
        &[
            by(node(), Command::TccRelease(Txid(42))),
            late_try.clone(),
            late_try,
        ],
    );
    assert_eq!(
        ran.outcomes,
        vec![
            Ok(()),
            Err(Reason::TransferCancelled),
            Err(Reason::TransferCancelled)
        ]
    );
    // A full TC/C round on another id: reserve, place, settle, credit,
    // then a late cancel.
    let t = transfer(43, "alice", "bob", 10, "USD");
    let id = t.id;
    let round = [
        by(client("alice"), Command::TccReserve(t.clone())),
        by(node(), Command::TccPlacePending(t)),
        by(node(), Command::TccSettle(id)),
        by(node(), Command::TccCredit(id)),
        by(node(), Command::TccRelease(id)),
    ];
    let ran = run(&mut rt, &mut state, 2, &round);
    assert_eq!(
        ran.outcomes,
        vec![
            Ok(()),
            Ok(()),
            Ok(()),
            Ok(()),
            Err(Reason::TransferConfirmed)
        ]
    );
    let names: Vec<&str> = ran.events.iter().map(|e| e.event.name()).collect();
    assert_eq!(
        names,
        [
            "funds_reserved",
            "credit_pending",
            "reservation_settled",
            "pending_credited",
            "transfer_rejected"
        ]
    );
}

#[test]
fn steps_after_a_try_keep_no_receipt_once_accepted_and_retries_answer_from_the_phase() {
    let (mut rt, mut state) = after_prelude();
    let t = transfer(44, "alice", "bob", 10, "USD");
    let id = t.id;
    let receipts = |ran: &Ran| ran.writes.iter().filter(|(k, _)| k[0] == b't').count();
    let tried = run(
        &mut rt,
        &mut state,
        1,
        &[
            by(client("alice"), Command::TccReserve(t.clone())),
            by(node(), Command::TccPlacePending(t)),
        ],
    );
    assert_eq!(tried.outcomes, vec![Ok(()), Ok(())]);
    assert_eq!(
        receipts(&tried),
        2,
        "the try and the placeholder keep theirs"
    );
    // A client's settle is refused before the slot is read: it takes
    // nothing the coordinator's will need.
    let probe = by(client("alice"), Command::TccSettle(id));
    let ran = run(&mut rt, &mut state, 2, &[probe]);
    assert_eq!(ran.outcomes, vec![Err(Reason::NotAllowed)]);
    assert!(ran.writes.is_empty(), "{:?}", ran.writes);
    let steps = [
        by(node(), Command::TccCredit(id)),
        by(node(), Command::TccSettle(id)),
    ];
    let ran = run(&mut rt, &mut state, 3, &steps);
    assert_eq!(ran.outcomes, vec![Ok(()), Ok(())]);
    assert_eq!(receipts(&ran), 0, "{:?}", ran.writes);
    assert_eq!(ran.events.len(), 2);
    // Retries, from the node or an admin: the same answers, from the
    // phase records, emitting and writing nothing.
    let retries = [
        steps[0].clone(),
        steps[1].clone(),
        by(admin(), Command::TccSettle(id)),
    ];
    let ran = run(&mut rt, &mut state, 4, &retries);
    assert_eq!(ran.outcomes, vec![Ok(()), Ok(()), Ok(())]);
    assert!(ran.events.is_empty(), "{:?}", ran.events);
    assert!(ran.writes.is_empty(), "{:?}", ran.writes);
    // A refused step keeps its receipt, so its refusal replays.
    let release = by(node(), Command::TccRelease(id));
    let ran = run(&mut rt, &mut state, 5, std::slice::from_ref(&release));
    assert_eq!(ran.outcomes, vec![Err(Reason::TransferConfirmed)]);
    assert_eq!(receipts(&ran), 1);
    let ran = run(&mut rt, &mut state, 6, &[release]);
    assert_eq!(ran.outcomes, vec![Err(Reason::TransferConfirmed)]);
    assert!(ran.events.is_empty() && ran.writes.is_empty());
}
