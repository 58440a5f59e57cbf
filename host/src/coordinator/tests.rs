//! The coordinator's plan against a model of the two partitions' steps
//! (their receipts and phase records, as the rules keep them), under every
//! kind of trouble a step can meet: lost before it runs, lost after it ran,
//! run twice, arriving late (after the coordinator gave up on it), the
//! coordinator crashing and a new one starting over from the journal, two
//! coordinators driving it at once (a split that moves the source), and
//! the deadline passing at any point. To the plan, a step sent to a
//! partition a split took the account from is one lost before it ran
//! (answered `Moved`), and the records move with the account. And the driver itself, against
//! partitions one of whose accounts moves to another.

use super::plan::{Answer, Mode, Side, Stage};
use proptest::prelude::*;
use std::collections::HashMap;
use wallet_core::{Command, Currency, Reason, Transfer, Txid};

const FUNDS: i64 = 100;
const AMOUNT: i64 = 30;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Reserved,
    Settled,
    Released,
    Pending,
    Credited,
    Dropped,
    CancelledEarly,
    SagaDebited,
    SagaRefunded,
}

/// Both partitions, as far as one transfer goes.
#[derive(Debug, Default)]
struct World {
    source_available: i64,
    source_reserved: i64,
    source_in_flight: i64,
    destination_available: i64,
    destination_in_flight: i64,
    source_phase: Option<Phase>,
    destination_phase: Option<Phase>,
    receipts: HashMap<&'static str, Result<(), Reason>>,
    destination_exists: bool,
    destination_refuses: bool,
}

impl World {
    /// The state once the try (or debit) was accepted.
    fn after_try(mode: Mode, destination_exists: bool, destination_refuses: bool) -> World {
        let mut world = World {
            source_available: FUNDS - AMOUNT,
            destination_exists,
            destination_refuses,
            ..World::default()
        };
        match mode {
            Mode::Tcc => {
                world.source_reserved = AMOUNT;
                world.source_phase = Some(Phase::Reserved);
            }
            Mode::Saga => {
                world.source_in_flight = AMOUNT;
                world.source_phase = Some(Phase::SagaDebited);
            }
        }
        world
    }

    /// The state once the try was accepted, for `trouble`'s transfer.
    fn troubled(trouble: &Trouble) -> World {
        World::after_try(
            trouble.mode,
            trouble.destination_exists,
            trouble.destination_refuses,
        )
    }

    fn total(&self) -> i64 {
        self.source_available
            + self.source_reserved
            + self.source_in_flight
            + self.destination_available
            + self.destination_in_flight
    }

    /// Runs the steps of one batch, in order.
    fn batch(&mut self, commands: &[Command<String>]) -> Vec<Answer> {
        commands.iter().map(|c| answer(self.run(c))).collect()
    }

    /// Runs a step as the rules do: a step with a receipt answers as it
    /// did the first time. Only the placeholder and the saga's credit keep
    /// one when accepted; the later steps are answered by the phase record
    /// they left, and keep a receipt of a refusal.
    fn run(&mut self, command: &Command<String>) -> Result<(), Reason> {
        use Command as C;
        let slot = match command {
            C::TccPlacePending(_) | C::SagaCredit(_) => "destination",
            C::TccCredit(_) => "credit",
            C::TccSettle(_) => "settle",
            C::TccDropPending(_) => "drop",
            C::TccRelease(_) => "release",
            C::SagaRefund(_) => "refund",
            other => panic!("not a coordinator step: {other:?}"),
        };
        if let Some(outcome) = self.receipts.get(slot) {
            return *outcome;
        }
        let outcome = self.step(command);
        if outcome.is_err() || slot == "destination" {
            self.receipts.insert(slot, outcome);
        }
        outcome
    }

    fn step(&mut self, command: &Command<String>) -> Result<(), Reason> {
        use Command as C;
        use Phase as P;
        match command {
            C::TccPlacePending(_) => {
                if self.destination_phase == Some(P::CancelledEarly) {
                    return Err(Reason::TransferCancelled);
                }
                if !self.destination_exists {
                    return Err(Reason::AccountNotFound);
                }
                self.destination_phase = Some(P::Pending);
            }
            C::TccCredit(_) => match self.destination_phase {
                Some(P::Pending) if self.destination_refuses => return Err(Reason::Overflow),
                Some(P::Pending) => {
                    self.destination_available += AMOUNT;
                    self.destination_in_flight -= AMOUNT;
                    self.destination_phase = Some(P::Credited);
                }
                Some(P::Credited) => {}
                Some(P::Dropped | P::CancelledEarly) => return Err(Reason::TransferCancelled),
                _ => return Err(Reason::TransferNotFound),
            },
            C::TccDropPending(_) => match self.destination_phase {
                Some(P::Pending) => self.destination_phase = Some(P::Dropped),
                None => self.destination_phase = Some(P::CancelledEarly),
                Some(P::Credited) => return Err(Reason::TransferConfirmed),
                _ => {}
            },
            C::TccSettle(_) => match self.source_phase {
                Some(P::Reserved) => {
                    self.source_reserved -= AMOUNT;
                    self.source_in_flight += AMOUNT;
                    self.source_phase = Some(P::Settled);
                }
                Some(P::Settled) => {}
                Some(P::Released | P::CancelledEarly) => return Err(Reason::TransferCancelled),
                _ => return Err(Reason::TransferNotFound),
            },
            C::TccRelease(_) => match self.source_phase {
                Some(P::Reserved) => {
                    self.source_reserved -= AMOUNT;
                    self.source_available += AMOUNT;
                    self.source_phase = Some(P::Released);
                }
                None => self.source_phase = Some(P::CancelledEarly),
                Some(P::Settled) => return Err(Reason::TransferConfirmed),
                _ => {}
            },
            C::SagaCredit(_) => {
                if !self.destination_exists {
                    return Err(Reason::AccountNotFound);
                }
                if self.destination_refuses {
                    return Err(Reason::Overflow);
                }
                self.destination_available += AMOUNT;
                self.destination_in_flight -= AMOUNT;
            }
            C::SagaRefund(_) => match self.source_phase {
                Some(P::SagaDebited) => {
                    self.source_available += AMOUNT;
                    self.source_in_flight -= AMOUNT;
                    self.source_phase = Some(P::SagaRefunded);
                }
                Some(P::SagaRefunded) => {}
                _ => return Err(Reason::TransferNotFound),
            },
            other => panic!("not a coordinator step: {other:?}"),
        }
        Ok(())
    }
}

/// What becomes of one sent step.
#[derive(Clone, Copy, Debug)]
enum Fate {
    Delivered,
    /// It never runs, and nobody hears.
    Lost,
    /// It runs, and its answer is lost.
    AnswerLost,
    /// It runs twice; the second answer arrives.
    Duplicated,
    /// It is held in the network and runs later, after the coordinator
    /// gave up waiting for it.
    Late,
}

fn fate() -> impl Strategy<Value = Fate> {
    prop_oneof![
        4 => Just(Fate::Delivered),
        1 => Just(Fate::Lost),
        1 => Just(Fate::AnswerLost),
        1 => Just(Fate::Duplicated),
        1 => Just(Fate::Late),
    ]
}

#[derive(Clone, Debug)]
struct Trouble {
    mode: Mode,
    destination_exists: bool,
    destination_refuses: bool,
    /// The fate of each send, in order; once spent, every step is
    /// delivered.
    fates: Vec<Fate>,
    /// The send at which the deadline has passed, if it does.
    expires_at: Option<usize>,
    /// The sends after which the coordinator crashes and a new one starts
    /// over from the journal.
    crashes: Vec<usize>,
    /// When each late step is let through: after this many more sends.
    late_after: Vec<usize>,
}

fn trouble() -> impl Strategy<Value = Trouble> {
    (
        prop_oneof![Just(Mode::Tcc), Just(Mode::Saga)],
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.2),
        prop::collection::vec(fate(), 0..24),
        prop::option::of(0usize..30),
        prop::collection::vec(0usize..30, 0..3),
        prop::collection::vec(0usize..8, 8),
    )
        .prop_map(
            |(
                mode,
                destination_exists,
                destination_refuses,
                fates,
                expires_at,
                crashes,
                late_after,
            )| {
                Trouble {
                    mode,
                    destination_exists,
                    destination_refuses,
                    fates,
                    expires_at,
                    crashes,
                    late_after,
                }
            },
        )
}

fn transfer() -> Transfer<String> {
    Transfer {
        id: Txid(7),
        from: "alice".into(),
        to: "bob".into(),
        amount: AMOUNT,
        currency: Currency(*b"EUR"),
    }
}

/// Steps held in the network: the send after which they arrive.
type Held = (usize, Vec<Command<String>>);

/// Drives the plan through `trouble`; the world, the outcome, and the
/// steps still held in the network, in the order they will arrive.
fn drive(trouble: &Trouble) -> (World, Result<(), Reason>, Vec<Held>) {
    let t = transfer();
    let mut world = World::troubled(trouble);
    let mut held: Vec<Held> = Vec::new();
    let mut stage = Stage::start(trouble.mode);
    for sent in 0..500 {
        arrive(&mut world, &mut held, sent);
        let Some((_, commands)) = stage.send(&t) else {
            let Stage::Done(outcome) = stage else {
                unreachable!()
            };
            return (world, outcome, held);
        };
        let answers = send(&mut world, &mut held, trouble, sent, commands);
        let expired = trouble.expires_at.is_some_and(|at| sent >= at);
        stage = stage.answered(&answers, expired);
        if trouble.crashes.contains(&sent) && !matches!(stage, Stage::Done(_)) {
            // The new leader knows only the journal: the try was accepted.
            stage = Stage::start(trouble.mode);
        }
    }
    panic!("the transfer did not finish: {stage:?}");
}

/// Late steps whose time came arrive, before send number `sent`.
fn arrive(world: &mut World, held: &mut Vec<Held>, sent: usize) {
    held.sort_by_key(|(at, _)| *at);
    while held.first().is_some_and(|(at, _)| *at <= sent) {
        let (_, commands) = held.remove(0);
        world.batch(&commands);
    }
}

/// Lets the network do with send number `sent` what `trouble` says; the
/// answers the coordinator hears.
fn send(
    world: &mut World,
    held: &mut Vec<Held>,
    trouble: &Trouble,
    sent: usize,
    commands: Vec<Command<String>>,
) -> Vec<Answer> {
    match trouble.fates.get(sent).copied().unwrap_or(Fate::Delivered) {
        Fate::Delivered => world.batch(&commands),
        Fate::Lost => vec![Answer::Undelivered],
        Fate::AnswerLost => {
            world.batch(&commands);
            vec![Answer::Undelivered]
        }
        Fate::Duplicated => {
            world.batch(&commands);
            world.batch(&commands)
        }
        Fate::Late => {
            let delay = trouble.late_after[held.len() % trouble.late_after.len()];
            held.push((sent + 1 + delay, commands));
            vec![Answer::Undelivered]
        }
    }
}

/// Two coordinators drive one transfer at once, as when a split moves its
/// source: the old partition's leader carries on (it looks the source up
/// at every send) while the new partition's resumes the journal record
/// that moved. `turns` says whose send is next. Both outcomes, and the
/// world.
fn drive_two(trouble: &Trouble, turns: &[bool]) -> (World, [Result<(), Reason>; 2], Vec<Held>) {
    let t = transfer();
    let mut world = World::troubled(trouble);
    let mut held: Vec<Held> = Vec::new();
    let mut stages = [Stage::start(trouble.mode); 2];
    for sent in 0..1000 {
        arrive(&mut world, &mut held, sent);
        let outcomes = stages.map(|stage| match stage {
            Stage::Done(outcome) => Some(outcome),
            _ => None,
        });
        if let [Some(first), Some(second)] = outcomes {
            return (world, [first, second], held);
        }
        let mut turn = usize::from(turns.get(sent).copied().unwrap_or(sent % 2 == 1));
        if outcomes[turn].is_some() {
            turn = 1 - turn;
        }
        let (_, commands) = stages[turn].send(&t).expect("not done");
        let answers = send(&mut world, &mut held, trouble, sent, commands);
        let expired = trouble.expires_at.is_some_and(|at| sent >= at);
        stages[turn] = stages[turn].answered(&answers, expired);
    }
    panic!("the transfer did not finish: {stages:?}");
}

fn answer(outcome: Result<(), Reason>) -> Answer {
    match outcome {
        Ok(()) => Answer::Accepted,
        Err(reason) => Answer::Rejected(reason),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn every_transfer_ends_once_with_money_moved_exactly_once_or_not_at_all(trouble in trouble()) {
        let (mut world, outcome, held) = drive(&trouble);
        // Whatever was still in the network arrives after the end.
        for (_, commands) in held {
            world.batch(&commands);
        }
        prop_assert_eq!(world.total(), FUNDS, "money made or lost: {:?}", world);
        match outcome {
            Ok(()) => {
                prop_assert_eq!(world.destination_available, AMOUNT, "{:?}", world);
                prop_assert_eq!(world.source_available, FUNDS - AMOUNT);
                prop_assert_eq!(world.source_reserved, 0);
                // What left the source is what arrived.
                prop_assert_eq!(world.source_in_flight + world.destination_in_flight, 0);
                prop_assert!(trouble.destination_exists && !trouble.destination_refuses);
            }
            Err(_) => {
                prop_assert_eq!(world.source_available, FUNDS, "{:?}", world);
                prop_assert_eq!(world.source_reserved, 0);
                prop_assert_eq!(world.destination_available, 0);
                prop_assert_eq!(world.source_in_flight, 0);
                prop_assert_eq!(world.destination_in_flight, 0);
                prop_assert_ne!(world.destination_phase, Some(Phase::Pending), "a placeholder is left");
            }
        }
        // Without trouble at the destination or a passed deadline, the
        // transfer succeeds.
        if trouble.destination_exists && !trouble.destination_refuses && trouble.expires_at.is_none() {
            prop_assert_eq!(outcome, Ok(()));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn two_coordinators_at_once_agree_and_move_money_once(
        trouble in trouble(),
        turns in prop::collection::vec(any::<bool>(), 0..40),
    ) {
        let (mut world, outcomes, held) = drive_two(&trouble, &turns);
        for (_, commands) in held {
            world.batch(&commands);
        }
        // Both succeed or both fail (the reasons may differ: a cancel's
        // and the refusal that led to it; the transfer's view keeps the
        // first).
        prop_assert_eq!(outcomes[0].is_ok(), outcomes[1].is_ok(), "{:?} {:?}", outcomes, world);
        prop_assert_eq!(world.total(), FUNDS, "money made or lost: {:?}", world);
        prop_assert_eq!(world.source_reserved, 0, "{:?}", world);
        let moved = if outcomes[0].is_ok() { AMOUNT } else { 0 };
        prop_assert_eq!(world.destination_available, moved, "{:?}", world);
        prop_assert_eq!(world.source_available, FUNDS - moved, "{:?}", world);
        prop_assert_ne!(world.destination_phase, Some(Phase::Pending), "a placeholder is left");
    }
}

#[test]
fn a_cancel_before_its_try_is_remembered_and_the_late_try_refused() {
    let t = transfer();
    let mut world = World::after_try(Mode::Tcc, true, false);
    // The placeholder is held in the network; the deadline passes.
    let (_, place) = Stage::Placing.step(&t).expect("a step");
    let stage = Stage::Placing.next(Answer::Undelivered, true);
    assert_eq!(stage, Stage::Dropping(Reason::TransferCancelled));
    let (side, drop) = stage.step(&t).expect("a step");
    assert_eq!(side, Side::Destination);
    assert_eq!(world.run(&drop), Ok(()));
    assert_eq!(world.destination_phase, Some(Phase::CancelledEarly));
    // The late placeholder is refused; the reservation goes back.
    assert_eq!(world.run(&place), Err(Reason::TransferCancelled));
    let stage = stage.next(Answer::Accepted, true);
    let (_, release) = stage.step(&t).expect("a step");
    assert_eq!(world.run(&release), Ok(()));
    assert_eq!(
        stage.next(Answer::Accepted, true),
        Stage::Done(Err(Reason::TransferCancelled))
    );
    assert_eq!(world.source_available, FUNDS);
}

#[test]
fn a_credit_under_the_same_id_from_another_source_is_not_taken_for_ours() {
    let t = transfer();
    let mut world = World::after_try(Mode::Tcc, true, false);
    // Another transfer reused the id from another source partition: its
    // placeholder (another body: refused to ours) and credit are there.
    world.destination_phase = Some(Phase::Credited);
    world
        .receipts
        .insert("destination", Err(Reason::IdempotencyConflict));
    world.receipts.insert("credit", Ok(()));
    // Ours went unanswered past the deadline.
    let mut stage = Stage::Placing.answered(&[Answer::Undelivered], true);
    for _ in 0..10 {
        let Some((_, commands)) = stage.send(&t) else {
            break;
        };
        let answers = world.batch(&commands);
        stage = stage.answered(&answers, true);
    }
    assert_eq!(stage, Stage::Done(Err(Reason::IdempotencyConflict)));
    assert_eq!(
        world.source_available, FUNDS,
        "the money is back: {world:?}"
    );
    assert_eq!(world.source_reserved + world.source_in_flight, 0);
}

/// Partitions for the driver itself: each applies a step only where it
/// holds the step's home, as a partition's fence does, and records what it
/// applied; before the first step for each account, the account moves (a
/// split: bob from partition 1 to 2, alice, the source, from 0 to 3), so
/// that step reaches a partition that no longer holds it.
struct Moving {
    holder: std::sync::Mutex<HashMap<String, u32>>,
    applied: std::sync::Mutex<Vec<(u32, String, Command<String>)>>,
}

impl super::Partitions for Moving {
    async fn run(
        &self,
        partition: u32,
        home: &str,
        calls: Vec<wallet_core::Call<String>>,
    ) -> Result<(Vec<crate::service::Reply>, crate::service::Position), crate::service::SubmitError>
    {
        use crate::service::{Position, Reply};
        let mut holder = self.holder.lock().expect("lock");
        let mut applied = self.applied.lock().expect("lock");
        if !applied.iter().any(|(_, applied, _)| applied == home) {
            let to = if home == "bob" { 2 } else { 3 };
            holder.insert(home.into(), to);
        }
        let position = Position {
            partition,
            index: applied.len() as u64 + 1,
        };
        if holder[home] != partition {
            return Ok((vec![Reply::Moved; calls.len()], position));
        }
        for call in &calls {
            applied.push((partition, home.to_owned(), call.command.clone()));
        }
        Ok((vec![Reply::Accepted; calls.len()], position))
    }

    fn partition_of(&self, account: &str) -> u32 {
        self.holder.lock().expect("lock")[account]
    }

    fn log_time_ms(&self, _: u32) -> u64 {
        0
    }

    async fn finish(
        &self,
        partition: u32,
        _: u128,
    ) -> Result<crate::service::Position, crate::service::SubmitError> {
        Ok(crate::service::Position {
            partition,
            index: 1,
        })
    }
}

/// The driver sends each step with the account it acts on, and a step
/// answered `Moved` (its account's range split away) goes again where the
/// map now puts that account, at the destination and at the source alike
/// (whose new partition resumes the transfer from the journal it took), so
/// the transfer completes once.
#[tokio::test]
async fn a_step_whose_account_moved_is_sent_where_it_now_is() {
    use Command as C;
    for mode in [Mode::Tcc, Mode::Saga] {
        let parts = std::sync::Arc::new(Moving {
            holder: std::sync::Mutex::new(HashMap::from([
                ("alice".to_owned(), 0),
                ("bob".to_owned(), 1),
            ])),
            applied: std::sync::Mutex::default(),
        });
        let coordinator = std::sync::Arc::new(super::Coordinator::new(
            mode,
            std::time::Duration::from_secs(10),
        ));
        let t = transfer();
        let record = super::InFlight::new(mode, &t.borrowed(), 0);
        let driven = coordinator.drive(&parts, record);
        let (outcome, _) = tokio::time::timeout(std::time::Duration::from_secs(10), driven)
            .await
            .expect("the transfer ends")
            .expect("an outcome");
        assert_eq!(outcome, Ok(()), "{mode:?}");
        let applied = parts.applied.lock().expect("lock").clone();
        let id = t.id;
        let expected = match mode {
            Mode::Tcc => vec![
                (2, "bob".to_owned(), C::TccPlacePending(t.clone())),
                (2, "bob".to_owned(), C::TccCredit(id)),
                (3, "alice".to_owned(), C::TccSettle(id)),
            ],
            Mode::Saga => vec![(2, "bob".to_owned(), C::SagaCredit(t.clone()))],
        };
        assert_eq!(applied, expected, "{mode:?}");
    }
}
