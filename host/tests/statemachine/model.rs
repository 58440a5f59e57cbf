//! A plain, independent model of the rules: ordered maps, no encoding, no
//! batching, its own spelling of every check. The wasm component must agree
//! with it on every outcome.

use crate::r#gen::Cmd;
use std::collections::{BTreeMap, HashMap};
use wallet_core::reason::Outcome;
use wallet_core::{AccountKind, Caller, Command, Reason, Role, Transfer, Txid};

const CURRENCIES: &[&str] = &["USD", "EUR", "JPY", "BHD", "GBP"];

#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Money {
    pub available: i64,
    pub reserved: i64,
}

#[derive(Debug)]
pub struct Account {
    pub kind: AccountKind,
    pub owner: Option<String>,
    pub money: BTreeMap<String, Money>,
}

#[derive(Clone, Debug, PartialEq)]
enum Stage {
    CancelledEarly,
    Reserved,
    Settled,
    Released,
    Pending,
    Credited,
    Dropped,
    SagaDebited,
    SagaRefunded,
}

#[derive(Clone, Debug)]
struct Phase {
    stage: Stage,
    account: String,
    currency: String,
    amount: i64,
}

/// What a retry must repeat: the command kind, its caller, and its
/// transfer, if any.
type Body = (u8, Caller<String>, Option<Transfer<String>>);

#[derive(Default)]
pub struct Model {
    pub accounts: BTreeMap<String, Account>,
    /// (txid, slot) -> (body, first outcome)
    receipts: HashMap<(u128, u8), (Body, Outcome)>,
    /// (txid, side) -> phase; side 0 source, 1 destination
    phases: HashMap<(u128, u8), Phase>,
}

/// What the model says of one command.
pub struct Applied {
    pub outcome: Outcome,
    /// The command was a retry or a conflict: it must emit nothing.
    pub silent: bool,
}

fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c))
}

fn valid_principal(p: &str) -> bool {
    (1..=64).contains(&p.len())
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:@-".contains(c))
}

fn known_currency(c: &str) -> bool {
    // The generator only uses these and "ABC", "XAU"; the whole table is
    // checked against the edge in `rules_agree`.
    CURRENCIES.contains(&c)
}

/// Opening accounts, deposits, withdrawals, and the steps after a
/// cross-partition try: an admin's or the node's.
fn privileged(caller: &Caller<String>) -> Outcome {
    match caller.role {
        Role::Admin | Role::System => Ok(()),
        Role::Client | Role::Auditor => Err(Reason::NotAllowed),
    }
}

impl Model {
    pub fn apply(&mut self, call: &Cmd) -> Applied {
        use Command as C;
        let caller = call.caller.clone();
        let (id, slot, body): (Txid, u8, Body) = match &call.command {
            C::OpenAccount(open) => {
                let outcome = privileged(&caller)
                    .and_then(|()| self.open(&open.account, open.owner.as_deref(), open.kind));
                return Applied {
                    outcome,
                    silent: false,
                };
            }
            C::Transfer(t) => (t.id, 0, (0, caller, Some(t.clone()))),
            C::Deposit(t) => (t.id, 0, (1, caller, Some(t.clone()))),
            C::Withdraw(t) => (t.id, 0, (2, caller, Some(t.clone()))),
            C::TccReserve(t) => (t.id, 0, (3, caller, Some(t.clone()))),
            C::SagaDebit(t) => (t.id, 0, (4, caller, Some(t.clone()))),
            C::TccPlacePending(t) => (t.id, 1, (5, caller, Some(t.clone()))),
            C::SagaCredit(t) => (t.id, 1, (6, caller, Some(t.clone()))),
            C::TccSettle(id) => (*id, 2, (7, caller, None)),
            C::TccCredit(id) => (*id, 3, (8, caller, None)),
            C::TccRelease(id) => (*id, 4, (9, caller, None)),
            C::TccDropPending(id) => (*id, 5, (10, caller, None)),
            C::SagaRefund(id) => (*id, 6, (11, caller, None)),
        };
        // The steps after a try: only an admin's or the node's, refused
        // before their slot is read; once accepted, answered by the phase
        // they left rather than a receipt.
        let follows = slot >= 2;
        if follows && let Err(reason) = privileged(&call.caller) {
            return Applied {
                outcome: Err(reason),
                silent: false,
            };
        }
        let key = (id.0, slot);
        if let Some((first_body, first)) = self.receipts.get(&key) {
            let outcome = if *first_body == body {
                *first
            } else {
                Err(Reason::IdempotencyConflict)
            };
            return Applied {
                outcome,
                silent: true,
            };
        }
        if follows && self.done(id, slot) {
            return Applied {
                outcome: Ok(()),
                silent: true,
            };
        }
        let outcome = self.step(call);
        if outcome.is_err() || !follows {
            self.receipts.insert(key, (body, outcome));
        }
        Applied {
            outcome,
            silent: false,
        }
    }

    fn open(&mut self, account: &str, owner: Option<&str>, kind: AccountKind) -> Outcome {
        if !valid_id(account) {
            return Err(Reason::InvalidAccountId);
        }
        if !owner.is_none_or(valid_principal) {
            return Err(Reason::InvalidOwner);
        }
        if matches!(kind, AccountKind::Credit(l) if l < 1) {
            return Err(Reason::InvalidAmount);
        }
        if self.accounts.contains_key(account) {
            return Err(Reason::AccountExists);
        }
        self.accounts.insert(
            account.to_string(),
            Account {
                kind,
                owner: owner.map(String::from),
                money: BTreeMap::new(),
            },
        );
        Ok(())
    }

    fn step(&mut self, call: &Cmd) -> Outcome {
        use Command as C;
        let caller = &call.caller;
        match &call.command {
            C::OpenAccount(_) => unreachable!("handled in apply"),
            C::Transfer(t) => self.local(caller, t, None),
            C::Deposit(t) => privileged(caller).and_then(|()| self.local(caller, t, Some(0))),
            C::Withdraw(t) => privileged(caller).and_then(|()| self.local(caller, t, Some(1))),
            C::TccReserve(t) => self.reserve(caller, t),
            C::SagaDebit(t) => self.saga_debit(caller, t),
            C::TccPlacePending(t) => privileged(caller).and_then(|()| self.place_pending(t)),
            C::SagaCredit(t) => privileged(caller).and_then(|()| self.saga_credit(t)),
            C::TccSettle(id) => privileged(caller).and_then(|()| self.settle(*id)),
            C::TccCredit(id) => privileged(caller).and_then(|()| self.finish_pending(*id)),
            C::TccRelease(id) => privileged(caller).and_then(|()| self.release(*id)),
            C::TccDropPending(id) => privileged(caller).and_then(|()| self.drop_pending(*id)),
            C::SagaRefund(id) => privileged(caller).and_then(|()| self.refund(*id)),
        }
    }

    /// An auditor writes nothing; a client debits only what it owns.
    fn may_debit(&self, caller: &Caller<String>, account: &str) -> Outcome {
        match caller.role {
            Role::Admin | Role::System => Ok(()),
            Role::Auditor => Err(Reason::NotAllowed),
            Role::Client => {
                if self.accounts[account].owner.as_deref() == Some(caller.principal.as_str()) {
                    Ok(())
                } else {
                    Err(Reason::NotOwner)
                }
            }
        }
    }

    fn not_auditor(caller: &Caller<String>) -> Outcome {
        if caller.role == Role::Auditor {
            Err(Reason::NotAllowed)
        } else {
            Ok(())
        }
    }

    fn check(t: &Transfer<String>) -> Outcome {
        if t.amount <= 0 {
            return Err(Reason::InvalidAmount);
        }
        if !known_currency(t.currency.as_str()) {
            return Err(Reason::UnknownCurrency);
        }
        if !valid_id(&t.from) || !valid_id(&t.to) {
            return Err(Reason::InvalidAccountId);
        }
        if t.from == t.to {
            return Err(Reason::SameAccount);
        }
        Ok(())
    }

    fn money(&self, account: &str, currency: &str) -> Money {
        self.accounts[account]
            .money
            .get(currency)
            .copied()
            .unwrap_or_default()
    }

    fn set(&mut self, account: &str, currency: &str, money: Money) {
        let acc = self.accounts.get_mut(account).expect("checked");
        acc.money.insert(currency.to_string(), money);
    }

    /// New available after taking `amount` out, if the floor allows.
    fn after_debit(&self, account: &str, currency: &str, amount: i64) -> Result<i64, Reason> {
        let available = self.money(account, currency).available;
        let new = available.checked_sub(amount).ok_or(Reason::Overflow)?;
        let floor = match self.accounts[account].kind {
            AccountKind::Standard => Some(0),
            AccountKind::Credit(l) => Some(-l),
            AccountKind::System => None,
        };
        if floor.is_some_and(|f| new < f) {
            return Err(Reason::InsufficientFunds);
        }
        Ok(new)
    }

    fn after_credit(&self, account: &str, currency: &str, amount: i64) -> Result<i64, Reason> {
        let available = self.money(account, currency).available;
        available.checked_add(amount).ok_or(Reason::Overflow)
    }

    fn exists(&self, account: &str) -> Outcome {
        if self.accounts.contains_key(account) {
            Ok(())
        } else {
            Err(Reason::AccountNotFound)
        }
    }

    fn local(
        &mut self,
        caller: &Caller<String>,
        t: &Transfer<String>,
        system_side: Option<u8>,
    ) -> Outcome {
        Self::not_auditor(caller)?;
        Self::check(t)?;
        self.exists(&t.from)?;
        self.exists(&t.to)?;
        self.may_debit(caller, &t.from)?;
        let must_be_system = match system_side {
            Some(0) => Some(&t.from),
            Some(_) => Some(&t.to),
            None => None,
        };
        if must_be_system.is_some_and(|a| self.accounts[a].kind != AccountKind::System) {
            return Err(Reason::NotASystemAccount);
        }
        let from = self.after_debit(&t.from, t.currency.as_str(), t.amount)?;
        let to = self.after_credit(&t.to, t.currency.as_str(), t.amount)?;
        let mut m = self.money(&t.from, t.currency.as_str());
        m.available = from;
        self.set(&t.from, t.currency.as_str(), m);
        let mut m = self.money(&t.to, t.currency.as_str());
        m.available = to;
        self.set(&t.to, t.currency.as_str(), m);
        Ok(())
    }

    /// Whether the step after a try in `slot` was accepted before: the
    /// phase it leaves.
    fn done(&self, id: Txid, slot: u8) -> bool {
        let stage = |side| self.phase(id, side).map(|p| p.stage.clone());
        match slot {
            2 => stage(0) == Some(Stage::Settled),
            3 => stage(1) == Some(Stage::Credited),
            4 => matches!(stage(0), Some(Stage::Released | Stage::CancelledEarly)),
            5 => matches!(stage(1), Some(Stage::Dropped | Stage::CancelledEarly)),
            6 => stage(0) == Some(Stage::SagaRefunded),
            _ => false,
        }
    }

    fn phase(&self, id: Txid, side: u8) -> Option<&Phase> {
        self.phases.get(&(id.0, side))
    }

    fn set_phase(&mut self, id: Txid, side: u8, stage: Stage, account: &str, t: (&str, i64)) {
        let phase = Phase {
            stage,
            account: account.to_string(),
            currency: t.0.to_string(),
            amount: t.1,
        };
        self.phases.insert((id.0, side), phase);
    }

    fn not_cancelled(&self, id: Txid, side: u8) -> Outcome {
        match self.phase(id, side) {
            Some(p) if p.stage == Stage::CancelledEarly => Err(Reason::TransferCancelled),
            _ => Ok(()),
        }
    }

    fn reserve(&mut self, caller: &Caller<String>, t: &Transfer<String>) -> Outcome {
        Self::not_auditor(caller)?;
        Self::check(t)?;
        self.not_cancelled(t.id, 0)?;
        self.exists(&t.from)?;
        self.may_debit(caller, &t.from)?;
        let available = self.after_debit(&t.from, t.currency.as_str(), t.amount)?;
        let mut m = self.money(&t.from, t.currency.as_str());
        let reserved = m.reserved.checked_add(t.amount).ok_or(Reason::Overflow)?;
        m.available = available;
        m.reserved = reserved;
        self.set(&t.from, t.currency.as_str(), m);
        let leg = (t.currency.as_str(), t.amount);
        self.set_phase(t.id, 0, Stage::Reserved, &t.from, leg);
        Ok(())
    }

    fn saga_debit(&mut self, caller: &Caller<String>, t: &Transfer<String>) -> Outcome {
        Self::not_auditor(caller)?;
        Self::check(t)?;
        self.not_cancelled(t.id, 0)?;
        self.exists(&t.from)?;
        self.may_debit(caller, &t.from)?;
        let available = self.after_debit(&t.from, t.currency.as_str(), t.amount)?;
        let mut m = self.money(&t.from, t.currency.as_str());
        m.available = available;
        self.set(&t.from, t.currency.as_str(), m);
        let leg = (t.currency.as_str(), t.amount);
        self.set_phase(t.id, 0, Stage::SagaDebited, &t.from, leg);
        Ok(())
    }

    fn place_pending(&mut self, t: &Transfer<String>) -> Outcome {
        Self::check(t)?;
        self.not_cancelled(t.id, 1)?;
        self.exists(&t.to)?;
        let leg = (t.currency.as_str(), t.amount);
        self.set_phase(t.id, 1, Stage::Pending, &t.to, leg);
        Ok(())
    }

    fn saga_credit(&mut self, t: &Transfer<String>) -> Outcome {
        Self::check(t)?;
        self.exists(&t.to)?;
        let available = self.after_credit(&t.to, t.currency.as_str(), t.amount)?;
        let mut m = self.money(&t.to, t.currency.as_str());
        m.available = available;
        self.set(&t.to, t.currency.as_str(), m);
        Ok(())
    }

    fn settle(&mut self, id: Txid) -> Outcome {
        let p = match self.phase(id, 0) {
            Some(p) if p.stage == Stage::Reserved => p.clone(),
            Some(p) if matches!(p.stage, Stage::Released | Stage::CancelledEarly) => {
                return Err(Reason::TransferCancelled);
            }
            _ => return Err(Reason::TransferNotFound),
        };
        let mut m = self.money(&p.account, &p.currency);
        m.reserved -= p.amount;
        self.set(&p.account, &p.currency, m);
        self.phases.get_mut(&(id.0, 0)).expect("read").stage = Stage::Settled;
        Ok(())
    }

    fn release(&mut self, id: Txid) -> Outcome {
        let p = match self.phase(id, 0) {
            None => {
                self.set_phase(id, 0, Stage::CancelledEarly, "", ("", 0));
                return Ok(());
            }
            Some(p) if p.stage == Stage::Reserved => p.clone(),
            Some(p) if p.stage == Stage::Settled => return Err(Reason::TransferConfirmed),
            Some(p) if matches!(p.stage, Stage::Released | Stage::CancelledEarly) => {
                return Ok(());
            }
            Some(_) => return Err(Reason::TransferNotFound),
        };
        let available = self.after_credit(&p.account, &p.currency, p.amount)?;
        let mut m = self.money(&p.account, &p.currency);
        m.available = available;
        m.reserved -= p.amount;
        self.set(&p.account, &p.currency, m);
        self.phases.get_mut(&(id.0, 0)).expect("read").stage = Stage::Released;
        Ok(())
    }

    fn finish_pending(&mut self, id: Txid) -> Outcome {
        let p = match self.phase(id, 1) {
            Some(p) if p.stage == Stage::Pending => p.clone(),
            Some(p) if matches!(p.stage, Stage::Dropped | Stage::CancelledEarly) => {
                return Err(Reason::TransferCancelled);
            }
            _ => return Err(Reason::TransferNotFound),
        };
        let available = self.after_credit(&p.account, &p.currency, p.amount)?;
        let mut m = self.money(&p.account, &p.currency);
        m.available = available;
        self.set(&p.account, &p.currency, m);
        self.phases.get_mut(&(id.0, 1)).expect("read").stage = Stage::Credited;
        Ok(())
    }

    fn drop_pending(&mut self, id: Txid) -> Outcome {
        match self.phase(id, 1) {
            None => {
                self.set_phase(id, 1, Stage::CancelledEarly, "", ("", 0));
                Ok(())
            }
            Some(p) if p.stage == Stage::Pending => {
                self.phases.get_mut(&(id.0, 1)).expect("read").stage = Stage::Dropped;
                Ok(())
            }
            Some(p) if p.stage == Stage::Credited => Err(Reason::TransferConfirmed),
            Some(p) if matches!(p.stage, Stage::Dropped | Stage::CancelledEarly) => Ok(()),
            Some(_) => Err(Reason::TransferNotFound),
        }
    }

    fn refund(&mut self, id: Txid) -> Outcome {
        let p = match self.phase(id, 0) {
            Some(p) if p.stage == Stage::SagaDebited => p.clone(),
            _ => return Err(Reason::TransferNotFound),
        };
        let available = self.after_credit(&p.account, &p.currency, p.amount)?;
        let mut m = self.money(&p.account, &p.currency);
        m.available = available;
        self.set(&p.account, &p.currency, m);
        self.phases.get_mut(&(id.0, 0)).expect("read").stage = Stage::SagaRefunded;
        Ok(())
    }
}
