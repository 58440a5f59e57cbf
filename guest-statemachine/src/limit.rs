//! The daily outgoing limit, in the rules built with the `daily-limit`
//! feature (`statemachine-*+daily-limit.wasm`): a client may send at most
//! 10,000 of a currency's major unit from one account per UTC day of the
//! log's time. Admins and the node are not limited. A day's total counts
//! the debits these rules made (a reservation or saga debit when made,
//! even if later cancelled): what was sent before their activation counts
//! nothing.

use wallet_core::Currency;

/// The limit in the currency's major unit, when these rules have one.
pub const DAILY_MAJOR: Option<i64> = if cfg!(feature = "daily-limit") {
    Some(10_000)
} else {
    None
};

const DAY_MS: u64 = 86_400_000;

/// The UTC day `timestamp_ms` falls in, counted from the Unix epoch.
pub fn day(timestamp_ms: u64) -> u32 {
    u32::try_from(timestamp_ms / DAY_MS).unwrap_or(u32::MAX)
}

/// The limit in `currency`'s minor units, when these rules have one.
pub fn daily(currency: Currency) -> Option<i64> {
    let scale = 10i64.checked_pow(u32::from(currency.exponent()?))?;
    DAILY_MAJOR?.checked_mul(scale)
}
