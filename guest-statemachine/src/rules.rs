//! The rules of every command. Each step checks first and changes state
//! only once nothing can fail, so a refused command changes nothing but its
//! receipt; its refusal is an event.
//!
//! Authorization is a rule like any other, decided from the caller the
//! command carries and the state the batch read: only an admin (or the node
//! itself) opens accounts, deposits and withdraws; money leaves an account
//! only at its owner's request or an admin's; an auditor writes nothing;
//! the steps of a cross-partition transfer after its try are the node's.

use crate::keys::{self, Side, Slot};
use crate::limit;
use crate::output::Output;
use crate::plan::Plan;
use crate::records::{self, Account, Balance, Leg, Outgoing, Phase};
use crate::state::State;
use alloc::vec::Vec;
use wallet_core::reason::{Outcome, outcome_code, outcome_from_code};
use wallet_core::{
    AccountKind, Call, Caller, Command, Currency, Event, OpenAccount, Posting, Reason, Role,
    Transfer, Txid, account, amount, principal,
};

/// Runs `calls` in order and answers with their outcomes, events and writes.
/// `day` is the batch's UTC day, for a daily limit.
pub fn run<'a>(
    calls: &[Call<&'a str>],
    plan: Plan<'a>,
    values: &[Option<&'a [u8]>],
    day: u32,
) -> Vec<u8> {
    let mut batch = Batch {
        state: State::new(plan, values),
        out: Output::new(calls.len()),
        body: Vec::new(),
        day,
    };
    for (i, call) in calls.iter().enumerate() {
        let outcome = batch.apply(i, call);
        batch.out.set_outcome(i, outcome);
    }
    let Batch { state, out, .. } = batch;
    out.finish(|bytes| state.write_into(bytes))
}

struct Batch<'a> {
    state: State<'a>,
    out: Output,
    /// The body of the call at hand, reused from call to call.
    body: Vec<u8>,
    day: u32,
}

// ---- who may do what -----------------------------------------------------

/// Opening accounts, deposits and withdrawals: an admin's or the node's.
fn admin_only(caller: &Caller<&str>) -> Outcome {
    match caller.role {
        Role::Admin | Role::System => Ok(()),
        Role::Client | Role::Auditor => Err(Reason::NotAllowed),
    }
}

/// The steps of a cross-partition transfer after its try: the node's
/// (its coordinator), or an admin's repairing one by hand.
fn coordinator(caller: &Caller<&str>) -> Outcome {
    admin_only(caller)
}

/// Whether the caller may move money out of `account`.
fn may_debit(caller: &Caller<&str>, account: &Account) -> Outcome {
    match caller.role {
        Role::Admin | Role::System => Ok(()),
        Role::Client if account.owner == Some(caller.principal) => Ok(()),
        Role::Client => Err(Reason::NotOwner),
        Role::Auditor => Err(Reason::NotAllowed),
    }
}

/// Auditors write nothing, whatever the command.
fn may_write(caller: &Caller<&str>) -> Outcome {
    match caller.role {
        Role::Auditor => Err(Reason::NotAllowed),
        Role::Admin | Role::Client | Role::System => Ok(()),
    }
}

// ---- checks and arithmetic -----------------------------------------------

/// The checks every transfer body passes before any account is read.
fn check_body(t: &Transfer<&str>) -> Outcome {
    if !amount::is_valid(t.amount) {
        return Err(Reason::InvalidAmount);
    }
    if !t.currency.is_known() {
        return Err(Reason::UnknownCurrency);
    }
    if !account::is_valid(t.from) || !account::is_valid(t.to) {
        return Err(Reason::InvalidAccountId);
    }
    if t.from == t.to {
        return Err(Reason::SameAccount);
    }
    Ok(())
}

/// `account`'s balance after taking `amount` out of available.
fn debit(account: &Account, currency: Currency, amount: i64) -> Result<Balance, Reason> {
    let mut balance = account.balance(currency);
    balance.available = balance
        .available
        .checked_sub(amount)
        .ok_or(Reason::Overflow)?;
    if account
        .floor()
        .is_some_and(|floor| balance.available < floor)
    {
        return Err(Reason::InsufficientFunds);
    }
    Ok(balance)
}

/// `account`'s balance after adding `amount` to available.
fn credit(account: &Account, currency: Currency, amount: i64) -> Result<Balance, Reason> {
    let mut balance = account.balance(currency);
    balance.available = balance
        .available
        .checked_add(amount)
        .ok_or(Reason::Overflow)?;
    Ok(balance)
}

fn found<T>(value: Option<T>) -> Result<T, Reason> {
    value.ok_or(Reason::AccountNotFound)
}

fn posting(id: Txid, account: &str, currency: Currency, amount: i64) -> Posting<&str> {
    Posting {
        id,
        account,
        currency,
        amount,
    }
}

fn leg_posting<'a>(id: Txid, leg: &Leg<'a>) -> Posting<&'a str> {
    posting(id, leg.account, leg.currency, leg.amount)
}

fn leg<'a>(account: &'a str, t: &Transfer<&str>) -> Leg<'a> {
    Leg {
        account,
        currency: t.currency,
        amount: t.amount,
    }
}

impl<'a> Batch<'a> {
    fn apply(&mut self, i: usize, call: &Call<&'a str>) -> Outcome {
        match (&call.command, keys::slot(&call.command)) {
            (Command::OpenAccount(open), _) => self.open_account(i, &call.caller, open),
            (_, Some((id, slot))) => self.once(i, call, id, slot),
            (_, None) => unreachable!("every command but an opening has a transaction id"),
        }
    }

    /// Exactly once per (transaction id, slot): a retry with the same body
    /// and caller gets the first outcome and emits nothing; anything else
    /// under the same id is a conflict that leaves the first receipt alone.
    /// A step after a try is the coordinator's, checked before its slot is
    /// read, so no one else's call takes the slot; once accepted, it is
    /// answered by its phase record, not a receipt (one write fewer per
    /// step, which a cross-partition transfer makes three of).
    fn once(&mut self, i: usize, call: &Call<&'a str>, id: Txid, slot: Slot) -> Outcome {
        let follows = slot.follows_a_try();
        if follows && let Err(reason) = coordinator(&call.caller) {
            self.out.event(i, &Event::TransferRejected { id, reason });
            return Err(reason);
        }
        self.body.clear();
        records::body(call, &mut self.body);
        if let Some((outcome, body)) = self.state.receipt(id, slot) {
            return if body == self.body.as_slice() {
                outcome_from_code(outcome).expect("stored outcomes decode")
            } else {
                Err(Reason::IdempotencyConflict)
            };
        }
        let outcome = self.step(i, call);
        if let Err(reason) = outcome {
            self.out.event(i, &Event::TransferRejected { id, reason });
        }
        if outcome.is_err() || !follows {
            let body = core::mem::take(&mut self.body);
            self.state
                .put_receipt(id, slot, outcome_code(outcome), &body);
            self.body = body;
        }
        outcome
    }

    fn step(&mut self, i: usize, call: &Call<&'a str>) -> Outcome {
        use Command as C;
        let caller = &call.caller;
        match &call.command {
            C::OpenAccount(_) => unreachable!("openings have no receipt"),
            C::Transfer(t) => self.local_transfer(i, caller, t, None),
            C::Deposit(t) => {
                admin_only(caller)?;
                self.local_transfer(i, caller, t, Some(Side::Source))
            }
            C::Withdraw(t) => {
                admin_only(caller)?;
                self.local_transfer(i, caller, t, Some(Side::Destination))
            }
            C::TccReserve(t) => self.reserve(i, caller, t),
            C::SagaDebit(t) => self.saga_debit(i, caller, t),
            C::TccPlacePending(t) => {
                coordinator(caller)?;
                self.place_pending(i, t)
            }
            C::SagaCredit(t) => {
                coordinator(caller)?;
                self.saga_credit(i, t)
            }
            // The caller was checked in `once`.
            C::TccSettle(id) => self.settle(i, *id),
            C::TccCredit(id) => self.credit_pending(i, *id),
            C::TccRelease(id) => self.release(i, *id),
            C::TccDropPending(id) => self.drop_pending(i, *id),
            C::SagaRefund(id) => self.saga_refund(i, *id),
        }
    }

    fn open_account(
        &mut self,
        i: usize,
        caller: &Caller<&str>,
        open: &OpenAccount<&'a str>,
    ) -> Outcome {
        admin_only(caller)?;
        if !account::is_valid(open.account) {
            return Err(Reason::InvalidAccountId);
        }
        if !open.owner.is_none_or(principal::is_valid) {
            return Err(Reason::InvalidOwner);
        }
        if matches!(open.kind, AccountKind::Credit(limit) if !amount::is_valid_credit_limit(limit))
        {
            return Err(Reason::InvalidAmount);
        }
        if self.state.account(open.account).is_some() {
            return Err(Reason::AccountExists);
        }
        self.state
            .put_account(open.account, Account::new(open.kind, open.owner));
        self.out.event(i, &Event::AccountOpened(open.clone()));
        Ok(())
    }

    /// What the source will have sent today once this debit is made, when
    /// the rules limit a client's daily outgoing; the refusal when it
    /// would pass the limit.
    fn count_outgoing(
        &self,
        caller: &Caller<&str>,
        t: &Transfer<&'a str>,
    ) -> Result<Option<Outgoing>, Reason> {
        match limit::daily(t.currency) {
            Some(limit) if caller.role == Role::Client => self
                .state
                .outgoing(t.from, t.currency)
                .after(self.day, t.amount, limit)
                .map(Some),
            _ => Ok(None),
        }
    }

    fn record_outgoing(&mut self, t: &Transfer<&'a str>, outgoing: Option<Outgoing>) {
        if let Some(outgoing) = outgoing {
            self.state.put_outgoing(t.from, t.currency, outgoing);
        }
    }

    fn set_balance(&mut self, id: &'a str, balance: Balance) {
        self.state
            .account_mut(id)
            .expect("the account was read in this step")
            .set_balance(balance);
    }

    /// A transfer inside the partition. `system` names the side that must
    /// be a system account (deposits: the source; withdrawals: the
    /// destination).
    fn local_transfer(
        &mut self,
        i: usize,
        caller: &Caller<&str>,
        t: &Transfer<&'a str>,
        system: Option<Side>,
    ) -> Outcome {
        may_write(caller)?;
        check_body(t)?;
        let from = found(self.state.account(t.from))?;
        let to = found(self.state.account(t.to))?;
        may_debit(caller, from)?;
        let required = match system {
            Some(Side::Source) => Some(from.kind),
            Some(Side::Destination) => Some(to.kind),
            None => None,
        };
        if required.is_some_and(|kind| kind != AccountKind::System) {
            return Err(Reason::NotASystemAccount);
        }
        let debited = debit(from, t.currency, t.amount)?;
        let credited = credit(to, t.currency, t.amount)?;
        let outgoing = self.count_outgoing(caller, t)?;
        self.set_balance(t.from, debited);
        self.set_balance(t.to, credited);
        self.record_outgoing(t, outgoing);
        let (id, currency, amount) = (t.id, t.currency, t.amount);
        self.out
            .event(i, &Event::Debited(posting(id, t.from, currency, amount)));
        self.out
            .event(i, &Event::Credited(posting(id, t.to, currency, amount)));
        Ok(())
    }

    /// Refuses a try whose cancel arrived first.
    fn check_not_cancelled(&self, id: Txid, side: Side) -> Outcome {
        match self.state.phase(id, side) {
            Some(Phase::CancelledEarly) => Err(Reason::TransferCancelled),
            _ => Ok(()),
        }
    }

    fn reserve(&mut self, i: usize, caller: &Caller<&str>, t: &Transfer<&'a str>) -> Outcome {
        may_write(caller)?;
        check_body(t)?;
        self.check_not_cancelled(t.id, Side::Source)?;
        let from = found(self.state.account(t.from))?;
        may_debit(caller, from)?;
        let mut balance = debit(from, t.currency, t.amount)?;
        balance.reserved = balance
            .reserved
            .checked_add(t.amount)
            .ok_or(Reason::Overflow)?;
        let outgoing = self.count_outgoing(caller, t)?;
        self.set_balance(t.from, balance);
        self.record_outgoing(t, outgoing);
        self.state
            .put_phase(t.id, Side::Source, Phase::Reserved(leg(t.from, t)));
        let p = posting(t.id, t.from, t.currency, t.amount);
        self.out.event(i, &Event::FundsReserved(p));
        Ok(())
    }

    fn place_pending(&mut self, i: usize, t: &Transfer<&'a str>) -> Outcome {
        check_body(t)?;
        self.check_not_cancelled(t.id, Side::Destination)?;
        found(self.state.account(t.to))?;
        self.state
            .put_phase(t.id, Side::Destination, Phase::Pending(leg(t.to, t)));
        let p = posting(t.id, t.to, t.currency, t.amount);
        self.out.event(i, &Event::CreditPending(p));
        Ok(())
    }

    fn saga_debit(&mut self, i: usize, caller: &Caller<&str>, t: &Transfer<&'a str>) -> Outcome {
        may_write(caller)?;
        check_body(t)?;
        self.check_not_cancelled(t.id, Side::Source)?;
        let from = found(self.state.account(t.from))?;
        may_debit(caller, from)?;
        let balance = debit(from, t.currency, t.amount)?;
        let outgoing = self.count_outgoing(caller, t)?;
        self.set_balance(t.from, balance);
        self.record_outgoing(t, outgoing);
        self.state
            .put_phase(t.id, Side::Source, Phase::SagaDebited(leg(t.from, t)));
        let p = posting(t.id, t.from, t.currency, t.amount);
        self.out.event(i, &Event::Sent(p));
        Ok(())
    }

    fn saga_credit(&mut self, i: usize, t: &Transfer<&'a str>) -> Outcome {
        check_body(t)?;
        let balance = credit(found(self.state.account(t.to))?, t.currency, t.amount)?;
        self.set_balance(t.to, balance);
        let p = posting(t.id, t.to, t.currency, t.amount);
        self.out.event(i, &Event::Received(p));
        Ok(())
    }

    /// TC/C confirm at the source: the reservation leaves for the
    /// destination.
    fn settle(&mut self, i: usize, id: Txid) -> Outcome {
        let leg = match self.state.phase(id, Side::Source) {
            Some(Phase::Reserved(leg)) => leg,
            Some(Phase::Settled(_)) => return Ok(()),
            Some(Phase::Released(_) | Phase::CancelledEarly) => {
                return Err(Reason::TransferCancelled);
            }
            _ => return Err(Reason::TransferNotFound),
        };
        let mut balance = found(self.state.account(leg.account))?.balance(leg.currency);
        assert!(
            balance.reserved >= leg.amount,
            "a reservation is held until settled"
        );
        balance.reserved -= leg.amount;
        self.set_balance(leg.account, balance);
        self.state.put_phase(id, Side::Source, Phase::Settled(leg));
        self.out
            .event(i, &Event::ReservationSettled(leg_posting(id, &leg)));
        Ok(())
    }

    /// TC/C cancel at the source: the reservation returns to available.
    fn release(&mut self, i: usize, id: Txid) -> Outcome {
        let leg = match self.state.phase(id, Side::Source) {
            Some(Phase::Reserved(leg)) => leg,
            None => return self.cancel_early(i, id, Side::Source),
            Some(Phase::Settled(_)) => return Err(Reason::TransferConfirmed),
            Some(Phase::Released(_) | Phase::CancelledEarly) => return Ok(()),
            Some(_) => return Err(Reason::TransferNotFound),
        };
        let account = found(self.state.account(leg.account))?;
        let mut balance = credit(account, leg.currency, leg.amount)?;
        assert!(
            balance.reserved >= leg.amount,
            "a reservation is held until released"
        );
        balance.reserved -= leg.amount;
        self.set_balance(leg.account, balance);
        self.state.put_phase(id, Side::Source, Phase::Released(leg));
        self.out
            .event(i, &Event::ReservationReleased(leg_posting(id, &leg)));
        Ok(())
    }

    /// TC/C confirm at the destination: the pending amount arrives.
    fn credit_pending(&mut self, i: usize, id: Txid) -> Outcome {
        let leg = match self.state.phase(id, Side::Destination) {
            Some(Phase::Pending(leg)) => leg,
            Some(Phase::Credited(_)) => return Ok(()),
            Some(Phase::Dropped(_) | Phase::CancelledEarly) => {
                return Err(Reason::TransferCancelled);
            }
            _ => return Err(Reason::TransferNotFound),
        };
        let account = found(self.state.account(leg.account))?;
        let balance = credit(account, leg.currency, leg.amount)?;
        self.set_balance(leg.account, balance);
        self.state
            .put_phase(id, Side::Destination, Phase::Credited(leg));
        self.out
            .event(i, &Event::PendingCredited(leg_posting(id, &leg)));
        Ok(())
    }

    /// TC/C cancel at the destination: the placeholder goes.
    fn drop_pending(&mut self, i: usize, id: Txid) -> Outcome {
        let leg = match self.state.phase(id, Side::Destination) {
            Some(Phase::Pending(leg)) => leg,
            None => return self.cancel_early(i, id, Side::Destination),
            Some(Phase::Credited(_)) => return Err(Reason::TransferConfirmed),
            Some(Phase::Dropped(_) | Phase::CancelledEarly) => return Ok(()),
            Some(_) => return Err(Reason::TransferNotFound),
        };
        self.state
            .put_phase(id, Side::Destination, Phase::Dropped(leg));
        self.out
            .event(i, &Event::PendingDropped(leg_posting(id, &leg)));
        Ok(())
    }

    /// A cancel before its try: remembered, so that the late try is refused.
    fn cancel_early(&mut self, i: usize, id: Txid, side: Side) -> Outcome {
        self.state.put_phase(id, side, Phase::CancelledEarly);
        self.out.event(i, &Event::CancelRecorded(id));
        Ok(())
    }

    /// Saga compensation: the debited amount comes back to its source.
    fn saga_refund(&mut self, i: usize, id: Txid) -> Outcome {
        let leg = match self.state.phase(id, Side::Source) {
            Some(Phase::SagaDebited(leg)) => leg,
            Some(Phase::SagaRefunded(_)) => return Ok(()),
            _ => return Err(Reason::TransferNotFound),
        };
        let account = found(self.state.account(leg.account))?;
        let balance = credit(account, leg.currency, leg.amount)?;
        self.set_balance(leg.account, balance);
        self.state
            .put_phase(id, Side::Source, Phase::SagaRefunded(leg));
        self.out.event(i, &Event::Refunded(leg_posting(id, &leg)));
        Ok(())
    }
}
