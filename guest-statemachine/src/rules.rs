//! The rules of every command. Each step validates first and writes only
//! once nothing can fail, so a refused command changes nothing.

use crate::batch::Batch;
use crate::keys::{self, Side, Slot};
use crate::kv::Kv;
use crate::records::{Account, Balance, Leg, Phase, Receipt};
use crate::{
    AccountKind, BatchHeader, BatchOutput, Command, Event, EventRecord, OpenAccount, Outcome,
    Posting, Reason, Rejection, Transfer, Txid, account_id, currency,
};
use alloc::string::String;
use alloc::vec::Vec;

/// Runs `commands` in order against `kv` and returns one outcome per command
/// and the events they produced. This version of the rules needs nothing
/// from the header: no rule depends on time.
pub fn execute(_header: &BatchHeader, commands: &[Command], kv: &mut impl Kv) -> BatchOutput {
    let mut batch = Batch::new(kv);
    batch.prefetch(commands.iter().flat_map(command_keys).collect());
    let leg_keys = commands
        .iter()
        .filter_map(phase_key)
        .filter_map(|k| leg_account_key(&mut batch, &k))
        .collect();
    batch.prefetch(leg_keys);

    let mut out = BatchOutput {
        outcomes: Vec::with_capacity(commands.len()),
        events: Vec::with_capacity(commands.len() * 2),
    };
    for (index, command) in commands.iter().enumerate() {
        let mut events = Events {
            command: u32::try_from(index).expect("a batch has fewer than 2^32 commands"),
            out: &mut out.events,
        };
        out.outcomes.push(apply(&mut batch, command, &mut events));
    }
    batch.commit();
    assert_eq!(out.outcomes.len(), commands.len());
    out
}

struct Events<'o> {
    command: u32,
    out: &'o mut Vec<EventRecord>,
}

impl Events<'_> {
    fn push(&mut self, event: Event) {
        self.out.push(EventRecord {
            command: self.command,
            event,
        });
    }
}

fn apply(b: &mut Batch<impl Kv>, command: &Command, ev: &mut Events) -> Outcome {
    use Command as C;
    match command {
        C::OpenAccount(open) => open_account(b, open, ev),
        C::Transfer(t) => once(b, t.id, Slot::Source, body(0, t), ev, |b, ev| {
            local_transfer(b, t, None, ev)
        }),
        C::Deposit(t) => once(b, t.id, Slot::Source, body(1, t), ev, |b, ev| {
            local_transfer(b, t, Some(Side::Source), ev)
        }),
        C::Withdraw(t) => once(b, t.id, Slot::Source, body(2, t), ev, |b, ev| {
            local_transfer(b, t, Some(Side::Destination), ev)
        }),
        C::TccReserve(t) => once(b, t.id, Slot::Source, body(3, t), ev, |b, ev| {
            reserve(b, t, ev)
        }),
        C::SagaDebit(t) => once(b, t.id, Slot::Source, body(4, t), ev, |b, ev| {
            saga_debit(b, t, ev)
        }),
        C::TccPlacePending(t) => once(b, t.id, Slot::Destination, body(5, t), ev, |b, ev| {
            place_pending(b, t, ev)
        }),
        C::SagaCredit(t) => once(b, t.id, Slot::Destination, body(6, t), ev, |b, ev| {
            saga_credit(b, t, ev)
        }),
        C::TccSettle(id) => once(b, *id, Slot::Settle, Vec::new(), ev, |b, ev| {
            settle(b, *id, ev)
        }),
        C::TccCredit(id) => once(b, *id, Slot::Credit, Vec::new(), ev, |b, ev| {
            credit_pending(b, *id, ev)
        }),
        C::TccRelease(id) => once(b, *id, Slot::Release, Vec::new(), ev, |b, ev| {
            release(b, *id, ev)
        }),
        C::TccDropPending(id) => once(b, *id, Slot::DropPending, Vec::new(), ev, |b, ev| {
            drop_pending(b, *id, ev)
        }),
        C::SagaRefund(id) => once(b, *id, Slot::Refund, Vec::new(), ev, |b, ev| {
            saga_refund(b, *id, ev)
        }),
    }
}

/// Exactly once per (transaction id, slot): a retry with the same body gets
/// the first outcome and emits nothing; a different body is a conflict that
/// leaves the first receipt alone.
fn once<K: Kv>(
    b: &mut Batch<K>,
    id: Txid,
    slot: Slot,
    body: Vec<u8>,
    ev: &mut Events,
    step: impl FnOnce(&mut Batch<K>, &mut Events) -> Outcome,
) -> Outcome {
    let key = keys::receipt(id, slot);
    if let Some(receipt) = b.receipt(&key) {
        return if receipt.body == body {
            receipt.outcome
        } else {
            Err(Reason::IdempotencyConflict)
        };
    }
    let outcome = step(b, ev);
    if let Err(reason) = outcome {
        ev.push(Event::TransferRejected(Rejection { id, reason }));
    }
    b.put_receipt(key, Receipt { outcome, body });
    outcome
}

/// What a retry must repeat exactly: the command kind and its transfer.
fn body(kind: u8, t: &Transfer) -> Vec<u8> {
    let mut out = Vec::with_capacity(20 + t.from.len() + t.to.len());
    out.push(kind);
    out.extend_from_slice(&t.amount.to_le_bytes());
    for s in [&t.currency, &t.from, &t.to] {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    out
}

fn open_account(b: &mut Batch<impl Kv>, open: &OpenAccount, ev: &mut Events) -> Outcome {
    let owner_ok = open.owner.as_deref().is_none_or(account_id::is_valid);
    if !account_id::is_valid(&open.account) || !owner_ok {
        return Err(Reason::InvalidAccountId);
    }
    if matches!(open.kind, AccountKind::Credit(limit) if limit < 0) {
        return Err(Reason::InvalidAmount);
    }
    let key = keys::account(&open.account);
    if b.account(&key).is_some() {
        return Err(Reason::AccountExists);
    }
    let account = Account {
        kind: open.kind,
        owner: open.owner.clone(),
        balances: Vec::new(),
    };
    b.put_account(key, account);
    ev.push(Event::AccountOpened(open.clone()));
    Ok(())
}

/// The checks every transfer body passes before any account is read.
fn check_body(t: &Transfer) -> Result<[u8; 3], Reason> {
    if t.amount <= 0 {
        return Err(Reason::InvalidAmount);
    }
    let currency = currency::to_bytes(&t.currency).ok_or(Reason::UnknownCurrency)?;
    if !account_id::is_valid(&t.from) || !account_id::is_valid(&t.to) {
        return Err(Reason::InvalidAccountId);
    }
    if t.from == t.to {
        return Err(Reason::SameAccount);
    }
    Ok(currency)
}

/// `account`'s balance after taking `amount` out of available.
fn debit(account: &Account, currency: [u8; 3], amount: i64) -> Result<Balance, Reason> {
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
fn credit(account: &Account, currency: [u8; 3], amount: i64) -> Result<Balance, Reason> {
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

fn set_balance(b: &mut Batch<impl Kv>, key: &[u8], balance: Balance) {
    b.account_mut(key)
        .expect("the account was read in this step")
        .set_balance(balance);
}

/// A transfer inside the partition. `system` names the side that must be a
/// system account (deposits: the source; withdrawals: the destination).
fn local_transfer(
    b: &mut Batch<impl Kv>,
    t: &Transfer,
    system: Option<Side>,
    ev: &mut Events,
) -> Outcome {
    let currency = check_body(t)?;
    let (from_key, to_key) = (keys::account(&t.from), keys::account(&t.to));
    let from_kind = found(b.account(&from_key))?.kind;
    let to_kind = found(b.account(&to_key))?.kind;
    let required = match system {
        Some(Side::Source) => Some(from_kind),
        Some(Side::Destination) => Some(to_kind),
        None => None,
    };
    if required.is_some_and(|kind| kind != AccountKind::System) {
        return Err(Reason::NotASystemAccount);
    }
    let debited = debit(found(b.account(&from_key))?, currency, t.amount)?;
    let credited = credit(found(b.account(&to_key))?, currency, t.amount)?;
    set_balance(b, &from_key, debited);
    set_balance(b, &to_key, credited);
    ev.push(Event::Debited(posting(
        t.id,
        &t.from,
        &t.currency,
        t.amount,
    )));
    ev.push(Event::Credited(posting(t.id, &t.to, &t.currency, t.amount)));
    Ok(())
}

/// Refuses a try whose cancel arrived first.
fn check_not_cancelled(b: &mut Batch<impl Kv>, phase_key: &[u8]) -> Outcome {
    match b.phase(phase_key) {
        Some(Phase::CancelledEarly) => Err(Reason::TransferCancelled),
        _ => Ok(()),
    }
}

fn reserve(b: &mut Batch<impl Kv>, t: &Transfer, ev: &mut Events) -> Outcome {
    let currency = check_body(t)?;
    let phase_key = keys::phase(t.id, Side::Source);
    check_not_cancelled(b, &phase_key)?;
    let from_key = keys::account(&t.from);
    let mut balance = debit(found(b.account(&from_key))?, currency, t.amount)?;
    balance.reserved = balance
        .reserved
        .checked_add(t.amount)
        .ok_or(Reason::Overflow)?;
    set_balance(b, &from_key, balance);
    b.put_phase(phase_key, Phase::Reserved(leg(&t.from, currency, t.amount)));
    ev.push(Event::FundsReserved(posting(
        t.id,
        &t.from,
        &t.currency,
        t.amount,
    )));
    Ok(())
}

fn place_pending(b: &mut Batch<impl Kv>, t: &Transfer, ev: &mut Events) -> Outcome {
    let currency = check_body(t)?;
    let phase_key = keys::phase(t.id, Side::Destination);
    check_not_cancelled(b, &phase_key)?;
    found(b.account(&keys::account(&t.to)))?;
    b.put_phase(phase_key, Phase::Pending(leg(&t.to, currency, t.amount)));
    ev.push(Event::CreditPending(posting(
        t.id,
        &t.to,
        &t.currency,
        t.amount,
    )));
    Ok(())
}

fn saga_debit(b: &mut Batch<impl Kv>, t: &Transfer, ev: &mut Events) -> Outcome {
    let currency = check_body(t)?;
    let phase_key = keys::phase(t.id, Side::Source);
    check_not_cancelled(b, &phase_key)?;
    let from_key = keys::account(&t.from);
    let balance = debit(found(b.account(&from_key))?, currency, t.amount)?;
    set_balance(b, &from_key, balance);
    b.put_phase(
        phase_key,
        Phase::SagaDebited(leg(&t.from, currency, t.amount)),
    );
    ev.push(Event::Sent(posting(t.id, &t.from, &t.currency, t.amount)));
    Ok(())
}

fn saga_credit(b: &mut Batch<impl Kv>, t: &Transfer, ev: &mut Events) -> Outcome {
    let currency = check_body(t)?;
    let to_key = keys::account(&t.to);
    let balance = credit(found(b.account(&to_key))?, currency, t.amount)?;
    set_balance(b, &to_key, balance);
    ev.push(Event::Received(posting(t.id, &t.to, &t.currency, t.amount)));
    Ok(())
}

/// TC/C confirm at the source: the reservation leaves for the destination.
fn settle(b: &mut Batch<impl Kv>, id: Txid, ev: &mut Events) -> Outcome {
    let phase_key = keys::phase(id, Side::Source);
    let leg = match b.phase(&phase_key) {
        Some(Phase::Reserved(leg)) => leg.clone(),
        Some(Phase::Released(_) | Phase::CancelledEarly) => return Err(Reason::TransferCancelled),
        _ => return Err(Reason::TransferNotFound),
    };
    let key = keys::account(&leg.account);
    let mut balance = found(b.account(&key))?.balance(leg.currency);
    assert!(
        balance.reserved >= leg.amount,
        "a reservation is held until settled"
    );
    balance.reserved -= leg.amount;
    set_balance(b, &key, balance);
    ev.push(Event::ReservationSettled(leg_posting(id, &leg)));
    b.put_phase(phase_key, Phase::Settled(leg));
    Ok(())
}

/// TC/C cancel at the source: the reservation returns to available.
fn release(b: &mut Batch<impl Kv>, id: Txid, ev: &mut Events) -> Outcome {
    let phase_key = keys::phase(id, Side::Source);
    let leg = match b.phase(&phase_key) {
        Some(Phase::Reserved(leg)) => leg.clone(),
        None => return cancel_early(b, phase_key, id, ev),
        Some(Phase::Settled(_)) => return Err(Reason::TransferConfirmed),
        Some(Phase::Released(_) | Phase::CancelledEarly) => return Ok(()),
        Some(_) => return Err(Reason::TransferNotFound),
    };
    let key = keys::account(&leg.account);
    let mut balance = credit(found(b.account(&key))?, leg.currency, leg.amount)?;
    assert!(
        balance.reserved >= leg.amount,
        "a reservation is held until released"
    );
    balance.reserved -= leg.amount;
    set_balance(b, &key, balance);
    ev.push(Event::ReservationReleased(leg_posting(id, &leg)));
    b.put_phase(phase_key, Phase::Released(leg));
    Ok(())
}

/// TC/C confirm at the destination: the pending amount arrives.
fn credit_pending(b: &mut Batch<impl Kv>, id: Txid, ev: &mut Events) -> Outcome {
    let phase_key = keys::phase(id, Side::Destination);
    let leg = match b.phase(&phase_key) {
        Some(Phase::Pending(leg)) => leg.clone(),
        Some(Phase::Dropped(_) | Phase::CancelledEarly) => return Err(Reason::TransferCancelled),
        _ => return Err(Reason::TransferNotFound),
    };
    let key = keys::account(&leg.account);
    let balance = credit(found(b.account(&key))?, leg.currency, leg.amount)?;
    set_balance(b, &key, balance);
    ev.push(Event::Received(leg_posting(id, &leg)));
    b.put_phase(phase_key, Phase::Credited(leg));
    Ok(())
}

/// TC/C cancel at the destination: the placeholder goes.
fn drop_pending(b: &mut Batch<impl Kv>, id: Txid, ev: &mut Events) -> Outcome {
    let phase_key = keys::phase(id, Side::Destination);
    let leg = match b.phase(&phase_key) {
        Some(Phase::Pending(leg)) => leg.clone(),
        None => return cancel_early(b, phase_key, id, ev),
        Some(Phase::Credited(_)) => return Err(Reason::TransferConfirmed),
        Some(Phase::Dropped(_) | Phase::CancelledEarly) => return Ok(()),
        Some(_) => return Err(Reason::TransferNotFound),
    };
    ev.push(Event::PendingDropped(leg_posting(id, &leg)));
    b.put_phase(phase_key, Phase::Dropped(leg));
    Ok(())
}

/// A cancel before its try: remembered, so that the late try is refused.
fn cancel_early(b: &mut Batch<impl Kv>, phase_key: Vec<u8>, id: Txid, ev: &mut Events) -> Outcome {
    b.put_phase(phase_key, Phase::CancelledEarly);
    ev.push(Event::CancelRecorded(id));
    Ok(())
}

/// Saga compensation: the debited amount comes back to its source.
fn saga_refund(b: &mut Batch<impl Kv>, id: Txid, ev: &mut Events) -> Outcome {
    let phase_key = keys::phase(id, Side::Source);
    let leg = match b.phase(&phase_key) {
        Some(Phase::SagaDebited(leg)) => leg.clone(),
        _ => return Err(Reason::TransferNotFound),
    };
    let key = keys::account(&leg.account);
    let balance = credit(found(b.account(&key))?, leg.currency, leg.amount)?;
    set_balance(b, &key, balance);
    ev.push(Event::Received(leg_posting(id, &leg)));
    b.put_phase(phase_key, Phase::SagaRefunded(leg));
    Ok(())
}

fn leg(account: &str, currency: [u8; 3], amount: i64) -> Leg {
    Leg {
        account: String::from(account),
        currency,
        amount,
    }
}

fn posting(id: Txid, account: &str, currency: &str, amount: i64) -> Posting {
    Posting {
        id,
        account: String::from(account),
        currency: String::from(currency),
        amount,
    }
}

fn leg_posting(id: Txid, leg: &Leg) -> Posting {
    let currency = core::str::from_utf8(&leg.currency).expect("stored currencies are ASCII");
    posting(id, &leg.account, currency, leg.amount)
}

/// The keys a command reads, known before it runs.
fn command_keys(command: &Command) -> Vec<Vec<u8>> {
    use Command as C;
    let mut keys = Vec::with_capacity(4);
    match command {
        C::OpenAccount(open) => keys.push(keys::account(&open.account)),
        C::Transfer(t) | C::Deposit(t) | C::Withdraw(t) => {
            keys.push(keys::receipt(t.id, Slot::Source));
            keys.push(keys::account(&t.from));
            keys.push(keys::account(&t.to));
        }
        C::TccReserve(t) | C::SagaDebit(t) => {
            keys.push(keys::receipt(t.id, Slot::Source));
            keys.push(keys::account(&t.from));
        }
        C::TccPlacePending(t) | C::SagaCredit(t) => {
            keys.push(keys::receipt(t.id, Slot::Destination));
            keys.push(keys::account(&t.to));
        }
        C::TccSettle(id) => keys.push(keys::receipt(*id, Slot::Settle)),
        C::TccCredit(id) => keys.push(keys::receipt(*id, Slot::Credit)),
        C::TccRelease(id) => keys.push(keys::receipt(*id, Slot::Release)),
        C::TccDropPending(id) => keys.push(keys::receipt(*id, Slot::DropPending)),
        C::SagaRefund(id) => keys.push(keys::receipt(*id, Slot::Refund)),
    }
    if let Some(key) = phase_key(command) {
        keys.push(key);
    }
    keys
}

/// The phase record a cross-partition step reads, if any.
fn phase_key(command: &Command) -> Option<Vec<u8>> {
    use Command as C;
    match command {
        C::OpenAccount(_) | C::Transfer(_) | C::Deposit(_) | C::Withdraw(_) => None,
        C::SagaCredit(_) => None,
        C::TccReserve(t) | C::SagaDebit(t) => Some(keys::phase(t.id, Side::Source)),
        C::TccPlacePending(t) => Some(keys::phase(t.id, Side::Destination)),
        C::TccSettle(id) | C::TccRelease(id) | C::SagaRefund(id) => {
            Some(keys::phase(*id, Side::Source))
        }
        C::TccCredit(id) | C::TccDropPending(id) => Some(keys::phase(*id, Side::Destination)),
    }
}

/// The account a stored phase names, so that it is fetched with the rest.
fn leg_account_key(b: &mut Batch<impl Kv>, phase_key: &[u8]) -> Option<Vec<u8>> {
    match b.phase(phase_key)? {
        Phase::CancelledEarly => None,
        Phase::Reserved(leg)
        | Phase::Settled(leg)
        | Phase::Released(leg)
        | Phase::Pending(leg)
        | Phase::Credited(leg)
        | Phase::Dropped(leg)
        | Phase::SagaDebited(leg)
        | Phase::SagaRefunded(leg) => Some(keys::account(&leg.account)),
    }
}
