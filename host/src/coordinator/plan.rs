//! The coordinator's decisions apart from the network: from where a
//! cross-partition transfer stands and what its last step answered, the
//! next stage. Pure, so that every interleaving of answers can be tested.
//!
//! Every step is idempotent by the transfer's id (a receipt of its body
//! for the placeholder and the saga's credit, the phase record it leaves
//! for the later steps, in the partition it runs in), so a step sent
//! twice, or sent again by a new leader after a crash, answers as the
//! first one did.
//!
//! TC/C: the try (a reservation at the source) has been accepted when a
//! plan starts. The placeholder goes to the destination; once it is
//! there, the transfer only goes forward: credit the destination, then
//! settle the reservation. A placeholder that cannot be delivered by the
//! deadline is cancelled: the destination's fate is fixed first (a drop,
//! remembered there if it comes before the placeholder, so a late one is
//! refused), and only then is the reservation released. A drop that finds
//! a credit made under the id sends the placeholder again: if it answers as
//! ours did, an earlier coordinator confirmed, and the transfer settles.
//!
//! Saga: the debit at the source has been accepted; the credit goes to the
//! destination until it answers, and a refused credit is compensated by a
//! refund at the source. Nothing at the destination refuses a late credit,
//! so a saga never compensates an undelivered one: it retries it.

use serde::{Deserialize, Serialize};
use wallet_core::{Command, Reason, Transfer};

/// How cross-partition transfers are coordinated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Try, confirm or cancel (the default).
    #[default]
    Tcc,
    /// Debit, credit, and a compensating refund on failure.
    Saga,
}

/// The partition a step runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Source,
    Destination,
}

/// Where a transfer stands: the step it waits on, or its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// TC/C: reserved at the source; the placeholder is next.
    Placing,
    /// TC/C: confirmed; the destination's credit is next.
    Crediting,
    /// TC/C: credited; the reservation settles.
    Settling,
    /// TC/C cancel: the placeholder is dropped (or its late arrival
    /// refused) before the reservation goes back.
    Dropping(Reason),
    /// TC/C cancel: the reservation returns to the source.
    Releasing(Reason),
    /// Saga: debited at the source; the credit is next.
    SagaCrediting,
    /// Saga compensation: the debit returns to the source.
    Refunding(Reason),
    Done(Result<(), Reason>),
}

/// What one step answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Accepted,
    Rejected(Reason),
    /// No answer: the partition had no leader, the network failed, or the
    /// batch failed. The step may or may not have run.
    Undelivered,
}

impl Stage {
    /// The first stage once the try (or debit) was accepted.
    pub fn start(mode: Mode) -> Stage {
        match mode {
            Mode::Tcc => Stage::Placing,
            Mode::Saga => Stage::SagaCrediting,
        }
    }

    /// Where this stage's step runs, and its command; `None` once done.
    pub fn step(self, t: &Transfer<String>) -> Option<(Side, Command<String>)> {
        use Command as C;
        let id = t.id;
        Some(match self {
            Stage::Placing => (Side::Destination, C::TccPlacePending(t.clone())),
            Stage::Crediting => (Side::Destination, C::TccCredit(id)),
            Stage::Settling => (Side::Source, C::TccSettle(id)),
            Stage::Dropping(_) => (Side::Destination, C::TccDropPending(id)),
            Stage::Releasing(_) => (Side::Source, C::TccRelease(id)),
            Stage::SagaCrediting => (Side::Destination, C::SagaCredit(t.clone())),
            Stage::Refunding(_) => (Side::Source, C::SagaRefund(id)),
            Stage::Done(_) => return None,
        })
    }

    /// The stage after this one's step answered `answer`; `expired`: the
    /// deadline, in the source's log time, has passed.
    pub fn next(self, answer: Answer, expired: bool) -> Stage {
        use Answer::{Accepted, Rejected, Undelivered};
        match (self, answer) {
            (done @ Stage::Done(_), _) => done,
            (Stage::Placing, Accepted) => Stage::Crediting,
            (Stage::Placing, Rejected(reason)) => Stage::Releasing(reason),
            (Stage::Placing, Undelivered) if expired => Stage::Dropping(Reason::TransferCancelled),
            (Stage::Crediting, Accepted) => Stage::Settling,
            // The credit was refused (the destination's rules): the
            // placeholder may still be there.
            (Stage::Crediting, Rejected(reason)) => Stage::Dropping(reason),
            (Stage::Settling, Accepted) => Stage::Done(Ok(())),
            (Stage::Settling, Rejected(reason)) => Stage::Done(Err(reason)),
            // The destination holds a credit under this id: this transfer's
            // own (an earlier coordinator confirmed), or another's that
            // reused the id from another source. The placeholder, sent
            // again, tells them apart: its receipt answers as ours did, or
            // refuses another body.
            (Stage::Dropping(_), Rejected(Reason::TransferConfirmed)) => Stage::Placing,
            (Stage::Dropping(reason), Accepted | Rejected(_)) => Stage::Releasing(reason),
            (Stage::Releasing(_), Rejected(Reason::TransferConfirmed)) => Stage::Done(Ok(())),
            (Stage::Releasing(reason), Accepted | Rejected(_)) => Stage::Done(Err(reason)),
            (Stage::SagaCrediting, Accepted) => Stage::Done(Ok(())),
            (Stage::SagaCrediting, Rejected(reason)) => Stage::Refunding(reason),
            (Stage::Refunding(reason), Accepted | Rejected(_)) => Stage::Done(Err(reason)),
            // Undelivered: the same step again, after a pause.
            (stage, Undelivered) => stage,
        }
    }

    /// What the coordinator sends for this stage, in one submission: the
    /// step, and with a placeholder the credit that confirms it (the try
    /// at the source is done, so the plan confirms any placeholder that is
    /// accepted; in one batch, the destination takes both or neither, and
    /// a credit after a refused placeholder is refused too).
    pub fn send(self, t: &Transfer<String>) -> Option<(Side, Vec<Command<String>>)> {
        let (side, command) = self.step(t)?;
        let mut commands = vec![command];
        if self == Stage::Placing {
            commands.push(Command::TccCredit(t.id));
        }
        Some((side, commands))
    }

    /// The stage after the answers to what `send` sent (one answer,
    /// `Undelivered`, when the submission went unanswered).
    pub fn answered(self, answers: &[Answer], expired: bool) -> Stage {
        let mut stage = self;
        for (i, answer) in answers.iter().enumerate() {
            if i > 0 && stage != Stage::Crediting {
                break;
            }
            stage = stage.next(*answer, expired);
        }
        stage
    }

    /// The stage's name, as metrics and the status show it.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Placing => "placing",
            Stage::Crediting => "crediting",
            Stage::Settling => "settling",
            Stage::Dropping(_) => "dropping",
            Stage::Releasing(_) => "releasing",
            Stage::SagaCrediting => "saga_crediting",
            Stage::Refunding(_) => "refunding",
            Stage::Done(_) => "done",
        }
    }
}
