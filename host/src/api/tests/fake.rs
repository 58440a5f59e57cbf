//! A naive in-memory `WalletService`: enough rules to drive the edge.

use crate::service::{
    AccountView, BalanceView, EventView, HistoryPage, NodeStatus, Reply, SubmitError,
    TransferState, TransferView, WalletService,
};
use crate::sm::{AccountKind, BatchFailure, Command, Event, Posting, Reason, Rejection, Transfer};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

struct Account {
    owner: Option<String>,
    kind: AccountKind,
    balances: BTreeMap<String, i64>,
    history: Vec<EventView>,
}

#[derive(Default)]
struct World {
    accounts: BTreeMap<String, Account>,
    /// First command and reply per transaction id.
    seen: HashMap<u128, (Command, Reply)>,
    transfers: HashMap<u128, TransferView>,
    /// The number of commands of each `submit` call.
    submits: Vec<usize>,
    log_index: u64,
    fail_submit: Option<SubmitError>,
    fail_batch: bool,
}

#[derive(Default)]
pub struct Fake {
    world: Mutex<World>,
}

impl Fake {
    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens an account directly (not through `submit`).
    pub fn open(&self, id: &str, owner: Option<&str>, kind: AccountKind) {
        self.world().accounts.insert(
            id.into(),
            Account {
                owner: owner.map(str::to_owned),
                kind,
                balances: BTreeMap::new(),
                history: Vec::new(),
            },
        );
    }

    /// Sets a balance directly.
    pub fn set_balance(&self, id: &str, currency: &str, minor: i64) {
        if let Some(a) = self.world().accounts.get_mut(id) {
            a.balances.insert(currency.into(), minor);
        }
    }

    pub fn balance(&self, id: &str, currency: &str) -> i64 {
        self.world()
            .accounts
            .get(id)
            .and_then(|a| a.balances.get(currency).copied())
            .unwrap_or(0)
    }

    /// The sizes of the `submit` calls so far.
    pub fn submits(&self) -> Vec<usize> {
        self.world().submits.clone()
    }

    pub fn fail_submits_with(&self, error: Option<SubmitError>) {
        self.world().fail_submit = error;
    }

    pub fn fail_batches(&self, fail: bool) {
        self.world().fail_batch = fail;
    }
}

impl World {
    fn apply(&mut self, command: Command) -> Reply {
        match command {
            Command::OpenAccount(open) => {
                if self.accounts.contains_key(&open.account) {
                    return Reply::Rejected(Reason::AccountExists);
                }
                self.accounts.insert(
                    open.account.clone(),
                    Account {
                        owner: open.owner.clone(),
                        kind: open.kind,
                        balances: BTreeMap::new(),
                        history: Vec::new(),
                    },
                );
                self.record(&open.account.clone(), Event::AccountOpened(open));
                Reply::Accepted
            }
            Command::Transfer(ref t) | Command::Deposit(ref t) | Command::Withdraw(ref t) => {
                let key = t.id.as_u128();
                if let Some((first, reply)) = self.seen.get(&key) {
                    return if *first == command {
                        reply.clone()
                    } else {
                        Reply::Rejected(Reason::IdempotencyConflict)
                    };
                }
                let t = t.clone();
                let reply = match self.check(&command, &t) {
                    Ok(()) => {
                        self.move_money(&t);
                        Reply::Accepted
                    }
                    Err(reason) => {
                        self.transfers.insert(
                            key,
                            TransferView {
                                id: t.id,
                                state: TransferState::Failed(reason),
                                events: vec![self.event(Event::TransferRejected(Rejection {
                                    id: t.id,
                                    reason,
                                }))],
                            },
                        );
                        Reply::Rejected(reason)
                    }
                };
                self.seen.insert(key, (command, reply.clone()));
                reply
            }
            _ => Reply::Rejected(Reason::TransferNotFound),
        }
    }

    fn check(&self, command: &Command, t: &Transfer) -> Result<(), Reason> {
        let from = self.accounts.get(&t.from).ok_or(Reason::AccountNotFound)?;
        let to = self.accounts.get(&t.to).ok_or(Reason::AccountNotFound)?;
        match command {
            Command::Deposit(_) if from.kind != AccountKind::System => {
                return Err(Reason::NotASystemAccount);
            }
            Command::Withdraw(_) if to.kind != AccountKind::System => {
                return Err(Reason::NotASystemAccount);
            }
            _ => {}
        }
        let after = from
            .balances
            .get(&t.currency)
            .copied()
            .unwrap_or(0)
            .checked_sub(t.amount)
            .ok_or(Reason::Overflow)?;
        let floor = match from.kind {
            AccountKind::Standard => 0,
            AccountKind::Credit(limit) => -limit,
            AccountKind::System => i64::MIN,
        };
        if after < floor {
            return Err(Reason::InsufficientFunds);
        }
        Ok(())
    }

    fn event(&self, event: Event) -> EventView {
        EventView {
            seq: 0,
            log_index: self.log_index,
            timestamp_ms: 1_700_000_000_000 + self.log_index,
            event,
        }
    }

    fn record(&mut self, account: &str, event: Event) -> EventView {
        let mut view = self.event(event);
        if let Some(a) = self.accounts.get_mut(account) {
            view.seq = a.history.len() as u64 + 1;
            a.history.push(view.clone());
        }
        view
    }

    fn move_money(&mut self, t: &Transfer) {
        for (account, sign) in [(&t.from, -1), (&t.to, 1)] {
            if let Some(a) = self.accounts.get_mut(account) {
                *a.balances.entry(t.currency.clone()).or_default() += sign * t.amount;
            }
        }
        let posting = |account: &str| Posting {
            id: t.id,
            account: account.to_owned(),
            currency: t.currency.clone(),
            amount: t.amount,
        };
        let debit = self.record(&t.from, Event::Debited(posting(&t.from)));
        let credit = self.record(&t.to, Event::Credited(posting(&t.to)));
        let events = [debit, credit]
            .into_iter()
            .enumerate()
            .map(|(i, mut e)| {
                e.seq = i as u64 + 1;
                e
            })
            .collect();
        self.transfers.insert(
            t.id.as_u128(),
            TransferView {
                id: t.id,
                state: TransferState::Success,
                events,
            },
        );
    }
}

impl WalletService for Fake {
    async fn submit(&self, commands: Vec<Command>) -> Result<Vec<Reply>, SubmitError> {
        let mut world = self.world();
        if let Some(error) = world.fail_submit.clone() {
            return Err(error);
        }
        world.submits.push(commands.len());
        world.log_index += 1;
        if world.fail_batch {
            let failed = Reply::Failed(BatchFailure::Trap("test".into()));
            return Ok(vec![failed; commands.len()]);
        }
        Ok(commands.into_iter().map(|c| world.apply(c)).collect())
    }

    fn account(&self, account_id: &str) -> crate::Result<Option<AccountView>> {
        Ok(self.world().accounts.get(account_id).map(|a| AccountView {
            account_id: account_id.into(),
            owner: a.owner.clone(),
            kind: a.kind,
            balances: a
                .balances
                .iter()
                .map(|(currency, available)| BalanceView {
                    currency: currency.clone(),
                    available: *available,
                    reserved: 0,
                })
                .collect(),
        }))
    }

    fn history(
        &self,
        account_id: &str,
        after: Option<u64>,
        limit: usize,
    ) -> crate::Result<Option<HistoryPage>> {
        Ok(self.world().accounts.get(account_id).map(|a| {
            let start = usize::try_from(after.unwrap_or(0)).unwrap_or(usize::MAX);
            let events: Vec<EventView> =
                a.history.iter().skip(start).take(limit).cloned().collect();
            let last = events.last().map(|e| e.seq);
            let next = last.filter(|&seq| (seq as usize) < a.history.len());
            HistoryPage { events, next }
        }))
    }

    fn transfer(&self, id: crate::sm::Txid) -> crate::Result<Option<TransferView>> {
        Ok(self.world().transfers.get(&id.as_u128()).cloned())
    }

    fn status(&self) -> NodeStatus {
        NodeStatus {
            node_id: 1,
            leader: Some(1),
            members: vec![1, 2, 3],
            partition: 0,
            applied_index: Some(self.world().log_index),
            chain_head: "ab".repeat(32),
            active_version: "cd".repeat(32),
        }
    }
}
