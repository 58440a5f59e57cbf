//! The coordinator's journal: the cross-partition transfers a source
//! partition started and has not finished, kept in its replicated state
//! beside the guest's, so that whichever member leads it next resumes
//! them.
//!
//! The journal is derived as each batch is applied, by every replica
//! alike: an accepted try (a TC/C reservation or a saga debit) opens a
//! record in the same write as the reservation itself; an accepted settle,
//! release or refund closes it; a saga whose credit landed is closed by a
//! `Request::Finished` entry, since nothing else happens at its source.

use super::plan::Mode;
use serde::{Deserialize, Serialize};
use wallet_core::{Call, Command, Currency, Transfer, Txid};

/// One transfer in flight, as its source partition holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlight {
    pub mode: Mode,
    pub id: u128,
    pub from: String,
    pub to: String,
    pub amount: i64,
    pub currency: [u8; 3],
    /// The log time of the batch that accepted the try: the deadline runs
    /// from it.
    pub started_ms: u64,
}

impl InFlight {
    /// The record of `t`, whose try was accepted at `started_ms`.
    pub fn new(mode: Mode, t: &Transfer<&str>, started_ms: u64) -> InFlight {
        InFlight {
            mode,
            id: t.id.0,
            from: t.from.to_owned(),
            to: t.to.to_owned(),
            amount: t.amount,
            currency: t.currency.0,
            started_ms,
        }
    }

    pub fn transfer(&self) -> Transfer<String> {
        Transfer {
            id: Txid(self.id),
            from: self.from.clone(),
            to: self.to.clone(),
            amount: self.amount,
            currency: Currency(self.currency),
        }
    }
}

/// What one applied call does to the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Open(InFlight),
    Close(Txid),
}

/// The journal changes of an applied batch: one per accepted call that
/// starts or ends a transfer at its source. A try opens a record only
/// where `reserved` says it took the money in this batch: a retried try,
/// answered from its receipt, opens nothing (it would restart the deadline
/// of a transfer in flight, or bring back one that has ended).
pub fn changes(
    calls: &[Call<&str>],
    outcomes: &[wallet_core::reason::Outcome],
    reserved: impl Fn(usize) -> bool,
    timestamp_ms: u64,
) -> Vec<Change> {
    let mut changes = Vec::new();
    for (i, (call, outcome)) in calls.iter().zip(outcomes).enumerate() {
        if outcome.is_err() {
            continue;
        }
        let open =
            |mode: Mode, t: &Transfer<&str>| Change::Open(InFlight::new(mode, t, timestamp_ms));
        match &call.command {
            Command::TccReserve(t) if reserved(i) => changes.push(open(Mode::Tcc, t)),
            Command::SagaDebit(t) if reserved(i) => changes.push(open(Mode::Saga, t)),
            Command::TccSettle(id) | Command::TccRelease(id) | Command::SagaRefund(id) => {
                changes.push(Change::Close(*id));
            }
            _ => {}
        }
    }
    changes
}
