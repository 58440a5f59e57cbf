//! Why a command is refused: stable codes, stored in receipts and events
//! (as bytes) and shown to API clients (as snake_case names). Append only;
//! never renumber.

use core::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Reason {
    AccountNotFound,
    AccountExists,
    InvalidAccountId,
    InvalidAmount,
    UnknownCurrency,
    SameAccount,
    InsufficientFunds,
    /// A balance or a sum would leave the signed 64-bit range.
    Overflow,
    NotASystemAccount,
    /// The transaction id was already used with a different body or caller.
    IdempotencyConflict,
    /// The step's transaction was cancelled (a late try, or a confirm).
    TransferCancelled,
    /// A cancel or refund after the transaction was confirmed.
    TransferConfirmed,
    /// A confirm, cancel or refund for a transaction this partition never
    /// tried.
    TransferNotFound,
    /// Money may leave an account only at its owner's request (or an
    /// admin's).
    NotOwner,
    /// The caller's role may not issue this command at all (an auditor
    /// writing, a client opening an account).
    NotAllowed,
    /// An owner that is not a principal (see [`crate::principal`]).
    InvalidOwner,
    /// The debit would take the account's outgoing total for the day past
    /// the rules' daily limit (only in rules that have one).
    DailyLimitExceeded,
}

impl Reason {
    /// In code order: `ALL[i].code() == i + 1`.
    pub const ALL: [Reason; 17] = [
        Reason::AccountNotFound,
        Reason::AccountExists,
        Reason::InvalidAccountId,
        Reason::InvalidAmount,
        Reason::UnknownCurrency,
        Reason::SameAccount,
        Reason::InsufficientFunds,
        Reason::Overflow,
        Reason::NotASystemAccount,
        Reason::IdempotencyConflict,
        Reason::TransferCancelled,
        Reason::TransferConfirmed,
        Reason::TransferNotFound,
        Reason::NotOwner,
        Reason::NotAllowed,
        Reason::InvalidOwner,
        Reason::DailyLimitExceeded,
    ];

    /// The stable byte: 1 and up (0 means success where an outcome is
    /// encoded).
    pub fn code(self) -> u8 {
        let i = Reason::ALL
            .iter()
            .position(|r| *r == self)
            .expect("every reason is in ALL");
        u8::try_from(i + 1).expect("fewer than 255 reasons")
    }

    pub fn from_code(code: u8) -> Option<Reason> {
        Reason::ALL.get(usize::from(code).checked_sub(1)?).copied()
    }

    /// The stable snake_case name API clients see.
    pub fn name(self) -> &'static str {
        match self {
            Reason::AccountNotFound => "account_not_found",
            Reason::AccountExists => "account_exists",
            Reason::InvalidAccountId => "invalid_account_id",
            Reason::InvalidAmount => "invalid_amount",
            Reason::UnknownCurrency => "unknown_currency",
            Reason::SameAccount => "same_account",
            Reason::InsufficientFunds => "insufficient_funds",
            Reason::Overflow => "overflow",
            Reason::NotASystemAccount => "not_a_system_account",
            Reason::IdempotencyConflict => "idempotency_conflict",
            Reason::TransferCancelled => "transfer_cancelled",
            Reason::TransferConfirmed => "transfer_confirmed",
            Reason::TransferNotFound => "transfer_not_found",
            Reason::NotOwner => "not_owner",
            Reason::NotAllowed => "not_allowed",
            Reason::InvalidOwner => "invalid_owner",
            Reason::DailyLimitExceeded => "daily_limit_exceeded",
        }
    }

    pub fn from_name(name: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.name() == name)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What became of a command: its first answer, which a retry gets again.
pub type Outcome = Result<(), Reason>;

/// An outcome as one byte: 0 for success, else the reason's code.
pub fn outcome_code(outcome: Outcome) -> u8 {
    match outcome {
        Ok(()) => 0,
        Err(reason) => reason.code(),
    }
}

pub fn outcome_from_code(code: u8) -> Option<Outcome> {
    match code {
        0 => Some(Ok(())),
        code => Reason::from_code(code).map(Err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_round_trip() {
        for reason in Reason::ALL {
            assert_eq!(Reason::from_code(reason.code()), Some(reason));
            assert_eq!(Reason::from_name(reason.name()), Some(reason));
            assert_eq!(
                outcome_from_code(outcome_code(Err(reason))),
                Some(Err(reason))
            );
        }
        assert_eq!(Reason::from_code(0), None);
        assert_eq!(outcome_from_code(0), Some(Ok(())));
        assert_eq!(Reason::AccountNotFound.code(), 1);
        assert_eq!(Reason::NotOwner.code(), 14);
    }
}
