//! A plain, independent model of the rules: ordered maps, no encoding, no
//! batching. The wasm component must agree with it on every outcome.

use std::collections::{BTreeMap, HashMap};
use wallet_host::sm::{AccountKind, Command, Outcome, Reason, Transfer, Txid};

const CURRENCIES: &[&str] = &["USD", "EUR", "JPY", "BHD", "GBP"];

#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Money {
    pub available: i64,
    pub reserved: i64,
}

#[derive(Debug)]
pub struct Account {
    pub kind: AccountKind,
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

/// What a retry must repeat: the command kind and its transfer, if any.
type Body = Option<(u8, Transfer)>;

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

fn known_currency(c: &str) -> bool {
    // The generator only uses these and "ABC"; the full list is tested in
    // the guest's own unit tests.
    CURRENCIES.contains(&c)
}

impl Model {
    pub fn apply(&mut self, command: &Command) -> Applied {
        use Command as C;
        let (id, slot, body): (Txid, u8, Body) = match command {
            C::OpenAccount(open) => {
                return Applied {
                    outcome: self.open(&open.account, open.owner.as_deref(), open.kind),
                    silent: false,
                };
            }
            C::Transfer(t) => (t.id, 0, Some((0, t.clone()))),
            C::Deposit(t) => (t.id, 0, Some((1, t.clone()))),
            C::Withdraw(t) => (t.id, 0, Some((2, t.clone()))),
            C::TccReserve(t) => (t.id, 0, Some((3, t.clone()))),
            C::SagaDebit(t) => (t.id, 0, Some((4, t.clone()))),
            C::TccPlacePending(t) => (t.id, 1, Some((5, t.clone()))),
            C::SagaCredit(t) => (t.id, 1, Some((6, t.clone()))),
            C::TccSettle(id) => (*id, 2, None),
            C::TccCredit(id) => (*id, 3, None),
            C::TccRelease(id) => (*id, 4, None),
            C::TccDropPending(id) => (*id, 5, None),
            C::SagaRefund(id) => (*id, 6, None),
        };
        let key = (id.as_u128(), slot);
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
        let outcome = self.step(command);
        self.receipts.insert(key, (body, outcome));
        Applied {
            outcome,
            silent: false,
        }
    }

    fn open(&mut self, account: &str, owner: Option<&str>, kind: AccountKind) -> Outcome {
        if !valid_id(account) || !owner.is_none_or(valid_id) {
            return Err(Reason::InvalidAccountId);
        }
        if matches!(kind, AccountKind::Credit(l) if l < 0) {
            return Err(Reason::InvalidAmount);
        }
        if self.accounts.contains_key(account) {
            return Err(Reason::AccountExists);
        }
        self.accounts.insert(
            account.to_string(),
            Account {
                kind,
                money: BTreeMap::new(),
            },
        );
        Ok(())
    }

    fn step(&mut self, command: &Command) -> Outcome {
        use Command as C;
        match command {
            C::OpenAccount(_) => unreachable!("handled in apply"),
            C::Transfer(t) => self.local(t, None),
            C::Deposit(t) => self.local(t, Some(0)),
            C::Withdraw(t) => self.local(t, Some(1)),
            C::TccReserve(t) => self.reserve(t),
            C::SagaDebit(t) => self.saga_debit(t),
            C::TccPlacePending(t) => self.place_pending(t),
            C::SagaCredit(t) => self.saga_credit(t),
            C::TccSettle(id) => self.settle(*id),
            C::TccCredit(id) => self.finish_pending(*id),
            C::TccRelease(id) => self.release(*id),
            C::TccDropPending(id) => self.drop_pending(*id),
            C::SagaRefund(id) => self.refund(*id),
        }
    }

    fn check(t: &Transfer) -> Outcome {
        if t.amount <= 0 {
            return Err(Reason::InvalidAmount);
        }
        if !known_currency(&t.currency) {
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

    fn local(&mut self, t: &Transfer, system_side: Option<u8>) -> Outcome {
        Self::check(t)?;
        self.exists(&t.from)?;
        self.exists(&t.to)?;
        let must_be_system = match system_side {
            Some(0) => Some(&t.from),
            Some(_) => Some(&t.to),
            None => None,
        };
        if must_be_system.is_some_and(|a| self.accounts[a].kind != AccountKind::System) {
            return Err(Reason::NotASystemAccount);
        }
        let from = self.after_debit(&t.from, &t.currency, t.amount)?;
        let to = self.after_credit(&t.to, &t.currency, t.amount)?;
        let mut m = self.money(&t.from, &t.currency);
        m.available = from;
        self.set(&t.from, &t.currency, m);
        let mut m = self.money(&t.to, &t.currency);
        m.available = to;
        self.set(&t.to, &t.currency, m);
        Ok(())
    }

    fn phase(&self, id: Txid, side: u8) -> Option<&Phase> {
        self.phases.get(&(id.as_u128(), side))
    }

    fn set_phase(&mut self, id: Txid, side: u8, stage: Stage, account: &str, t: (&str, i64)) {
        let phase = Phase {
            stage,
            account: account.to_string(),
            currency: t.0.to_string(),
            amount: t.1,
        };
        self.phases.insert((id.as_u128(), side), phase);
    }

    fn not_cancelled(&self, id: Txid, side: u8) -> Outcome {
        match self.phase(id, side) {
            Some(p) if p.stage == Stage::CancelledEarly => Err(Reason::TransferCancelled),
            _ => Ok(()),
        }
    }

    fn reserve(&mut self, t: &Transfer) -> Outcome {
        Self::check(t)?;
        self.not_cancelled(t.id, 0)?;
        self.exists(&t.from)?;
        let available = self.after_debit(&t.from, &t.currency, t.amount)?;
        let mut m = self.money(&t.from, &t.currency);
        let reserved = m.reserved.checked_add(t.amount).ok_or(Reason::Overflow)?;
        m.available = available;
        m.reserved = reserved;
        self.set(&t.from, &t.currency, m);
        let leg = (t.currency.as_str(), t.amount);
        self.set_phase(t.id, 0, Stage::Reserved, &t.from, leg);
        Ok(())
    }

    fn saga_debit(&mut self, t: &Transfer) -> Outcome {
        Self::check(t)?;
        self.not_cancelled(t.id, 0)?;
        self.exists(&t.from)?;
        let available = self.after_debit(&t.from, &t.currency, t.amount)?;
        let mut m = self.money(&t.from, &t.currency);
        m.available = available;
        self.set(&t.from, &t.currency, m);
        let leg = (t.currency.as_str(), t.amount);
        self.set_phase(t.id, 0, Stage::SagaDebited, &t.from, leg);
        Ok(())
    }

    fn place_pending(&mut self, t: &Transfer) -> Outcome {
        Self::check(t)?;
        self.not_cancelled(t.id, 1)?;
        self.exists(&t.to)?;
        let leg = (t.currency.as_str(), t.amount);
        self.set_phase(t.id, 1, Stage::Pending, &t.to, leg);
        Ok(())
    }

    fn saga_credit(&mut self, t: &Transfer) -> Outcome {
        Self::check(t)?;
        self.exists(&t.to)?;
        let available = self.after_credit(&t.to, &t.currency, t.amount)?;
        let mut m = self.money(&t.to, &t.currency);
        m.available = available;
        self.set(&t.to, &t.currency, m);
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
        self.phases.get_mut(&(id.as_u128(), 0)).expect("read").stage = Stage::Settled;
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
        self.phases.get_mut(&(id.as_u128(), 0)).expect("read").stage = Stage::Released;
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
        self.phases.get_mut(&(id.as_u128(), 1)).expect("read").stage = Stage::Credited;
        Ok(())
    }

    fn drop_pending(&mut self, id: Txid) -> Outcome {
        match self.phase(id, 1) {
            None => {
                self.set_phase(id, 1, Stage::CancelledEarly, "", ("", 0));
                Ok(())
            }
            Some(p) if p.stage == Stage::Pending => {
                self.phases.get_mut(&(id.as_u128(), 1)).expect("read").stage = Stage::Dropped;
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
        self.phases.get_mut(&(id.as_u128(), 0)).expect("read").stage = Stage::SagaRefunded;
        Ok(())
    }
}
