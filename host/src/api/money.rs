//! Money at the edge: decimal strings in, integer minor units inside, and
//! back. Never floats, never rounding: an amount with more fractional digits
//! than its currency has is refused.

use super::errors::ApiError;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

/// The digits an amount may have before and after its point (the API's
/// pattern; the currency's own digits are checked after).
const WHOLE_DIGITS_MAX: usize = 19;
const FRACTION_DIGITS_MAX: usize = 4;
/// How much of a bad amount an error message repeats.
const SHOWN_CHARS_MAX: usize = 40;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error(
        "currency {0:?} is not one of the ISO 4217 codes with a minor unit this wallet accepts"
    )]
    UnknownCurrency(String),
    #[error(
        "amount {0:?} is not a decimal string like \"12.34\" (at most 19 digits, and 4 after the point)"
    )]
    Malformed(String),
    #[error("amount {amount:?} has more than the {exponent} fractional digits of its currency")]
    TooPrecise { amount: String, exponent: u32 },
    #[error("amount {0:?} is too large")]
    TooLarge(String),
}

impl MoneyError {
    pub fn code(&self) -> &'static str {
        match self {
            MoneyError::UnknownCurrency(_) => "unknown_currency",
            MoneyError::Malformed(_) => "invalid_amount",
            MoneyError::TooPrecise { .. } => "amount_too_precise",
            MoneyError::TooLarge(_) => "amount_too_large",
        }
    }

    /// Whether the amount is well formed but cannot be taken: too many
    /// digits for its currency, or too much. A schema cannot say that (it
    /// depends on the currency), so it is a refusal (422), not a 400.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            MoneyError::TooPrecise { .. } | MoneyError::TooLarge(_)
        )
    }
}

impl From<MoneyError> for ApiError {
    fn from(error: MoneyError) -> Self {
        ApiError::bad_request(error.code(), error.to_string())
    }
}

/// The number of minor-unit digits of an accepted currency (USD 2, JPY 0,
/// BHD 3), from the table the rules use (`wallet_core::currency`). Codes
/// are upper case; codes without a minor unit (XAU, XDR, ...) are refused.
pub fn parse_currency(code: &str) -> Result<u32, MoneyError> {
    wallet_core::currency::exponent(code)
        .map(u32::from)
        .ok_or_else(|| MoneyError::UnknownCurrency(code.chars().take(16).collect()))
}

/// A decimal string (`"12.34"`) as integer minor units of a currency with
/// `exponent` fractional digits. Zero is well formed: whether it may be
/// moved is the rules' to say.
pub fn parse_amount(amount: &str, exponent: u32) -> Result<i64, MoneyError> {
    let shown = || amount.chars().take(SHOWN_CHARS_MAX).collect::<String>();
    let (whole, fraction) = match amount.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (amount, None),
    };
    let digits =
        |s: &str, max: usize| (1..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole, WHOLE_DIGITS_MAX) || !fraction.is_none_or(|f| digits(f, FRACTION_DIGITS_MAX))
    {
        return Err(MoneyError::Malformed(shown()));
    }
    if fraction.map_or(0, str::len) > exponent as usize {
        return Err(MoneyError::TooPrecise {
            amount: shown(),
            exponent,
        });
    }
    let value = Decimal::from_str_exact(amount).map_err(|_| MoneyError::TooLarge(shown()))?;
    value
        .checked_mul(Decimal::from(10_i64.pow(exponent)))
        .and_then(|minor| minor.to_i64())
        .ok_or_else(|| MoneyError::TooLarge(shown()))
}

/// Minor units as a decimal string with exactly `exponent` fractional
/// digits: `1234, 2` -> `"12.34"`, `0, 2` -> `"0.00"`, `5, 0` -> `"5"`.
pub fn format_minor(minor: i64, exponent: u32) -> String {
    let mut value = Decimal::from(minor);
    // Exponents are at most 4 (ISO 4217), far below the 28 a Decimal holds.
    if value.set_scale(exponent.min(28)).is_err() {
        return minor.to_string();
    }
    value.to_string()
}

/// `format_minor` for a currency code; a code without a known exponent is
/// shown in minor units.
pub fn format_in(minor: i64, currency: &str) -> String {
    format_minor(minor, parse_currency(currency).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(amount: &str, currency: &str) -> Result<i64, MoneyError> {
        parse_amount(amount, parse_currency(currency)?)
    }

    #[test]
    fn accepts_exact_amounts() {
        for (amount, currency, minor) in [
            ("12.34", "USD", 1234),
            ("0.01", "USD", 1),
            ("12.3", "USD", 1230),
            ("12", "USD", 1200),
            ("007.50", "EUR", 750),
            ("5", "JPY", 5),
            ("1.005", "BHD", 1005),
            ("1", "BHD", 1000),
            ("0.0001", "CLF", 1),
            ("92233720368547758.07", "USD", i64::MAX),
            ("9223372036854775807", "JPY", i64::MAX),
            ("0", "USD", 0),
            ("0.00", "USD", 0),
        ] {
            assert_eq!(parse(amount, currency), Ok(minor), "{amount} {currency}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        for (amount, currency, code) in [
            ("1.001", "USD", "amount_too_precise"),
            ("1.10", "JPY", "amount_too_precise"),
            ("5.0", "JPY", "amount_too_precise"),
            ("1.0005", "BHD", "amount_too_precise"),
            ("-1", "USD", "invalid_amount"),
            ("+1", "USD", "invalid_amount"),
            ("1e3", "USD", "invalid_amount"),
            ("abc", "USD", "invalid_amount"),
            ("", "USD", "invalid_amount"),
            (" 1", "USD", "invalid_amount"),
            ("1 ", "USD", "invalid_amount"),
            (".5", "USD", "invalid_amount"),
            ("5.", "USD", "invalid_amount"),
            ("1.2.3", "USD", "invalid_amount"),
            ("1_000", "USD", "invalid_amount"),
            ("1,00", "USD", "invalid_amount"),
            ("١", "USD", "invalid_amount"),
            ("NaN", "USD", "invalid_amount"),
            ("92233720368547758.08", "USD", "amount_too_large"),
            ("9223372036854775808", "JPY", "amount_too_large"),
            ("9999999999999999999", "USD", "amount_too_large"),
            ("99999999999999999999", "USD", "invalid_amount"),
            ("1.00000", "CLF", "invalid_amount"),
            ("9".repeat(100).as_str(), "USD", "invalid_amount"),
            ("1", "usd", "unknown_currency"),
            ("1", "ABC", "unknown_currency"),
            ("1", "US", "unknown_currency"),
            ("1", "", "unknown_currency"),
            ("1", "XAU", "unknown_currency"),
        ] {
            let got = parse(amount, currency);
            assert_eq!(
                got.as_ref().map_err(MoneyError::code),
                Err(code),
                "{amount:?} {currency}: {got:?}"
            );
        }
    }

    #[test]
    fn exponents_follow_iso_4217() {
        assert_eq!(parse_currency("USD"), Ok(2));
        assert_eq!(parse_currency("JPY"), Ok(0));
        assert_eq!(parse_currency("BHD"), Ok(3));
    }

    #[test]
    fn formats_with_the_currency_digits() {
        assert_eq!(format_minor(1234, 2), "12.34");
        assert_eq!(format_minor(0, 2), "0.00");
        assert_eq!(format_minor(5, 2), "0.05");
        assert_eq!(format_minor(-5, 2), "-0.05");
        assert_eq!(format_minor(-1234, 2), "-12.34");
        assert_eq!(format_minor(5, 0), "5");
        assert_eq!(format_minor(1005, 3), "1.005");
        assert_eq!(format_minor(i64::MAX, 2), "92233720368547758.07");
        assert_eq!(format_minor(i64::MIN, 2), "-92233720368547758.08");
        assert_eq!(format_in(1005, "BHD"), "1.005");
        assert_eq!(format_in(5, "JPY"), "5");
        assert_eq!(format_in(7, "XAU"), "7");
    }

    #[test]
    fn formatting_round_trips() {
        for (minor, currency) in [(1, "USD"), (1234, "USD"), (5, "JPY"), (1005, "BHD")] {
            let exponent = parse_currency(currency).unwrap_or(99);
            assert_eq!(
                parse_amount(&format_minor(minor, exponent), exponent),
                Ok(minor)
            );
        }
    }
}
