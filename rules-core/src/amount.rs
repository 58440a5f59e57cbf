//! The range of amounts. Amounts are integers of minor units (cents for
//! USD) inside; the edge turns decimal strings into them with the
//! currency's digits (see [`crate::currency`]) and never rounds.

/// The smallest amount a command may move: one minor unit.
pub const AMOUNT_MINOR_MIN: i64 = 1;
/// The largest amount a command may move, and the largest credit limit.
pub const AMOUNT_MINOR_MAX: i64 = i64::MAX;

/// Whether `minor` is an amount a command may move.
pub fn is_valid(minor: i64) -> bool {
    (AMOUNT_MINOR_MIN..=AMOUNT_MINOR_MAX).contains(&minor)
}

/// Whether `minor` is a credit limit an account may have (how far below
/// zero it may go, in any currency).
pub fn is_valid_credit_limit(minor: i64) -> bool {
    is_valid(minor)
}
