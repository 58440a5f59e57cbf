//! Money at the edge: decimal strings in, integer minor units inside, and
//! back. Never floats, never rounding: an amount with more fractional digits
//! than its currency has is refused.

use super::errors::ApiError;
use rust_decimal::Decimal;

/// The significant digits an amount may have before its point: as many as
/// leave room for its currency's minor-unit digits (at most 4) within 19,
/// so that an amount in minor units has at most 19 digits. The API's schema
/// says the same per currency; what it cannot say is that some 19-digit
/// amounts are still more than an i64 holds (a refusal, 422).
const DIGITS_MAX: usize = 19;
/// The longest amount string.
pub const AMOUNT_CHARS_MAX: usize = 40;
/// How much of a bad amount an error message repeats.
const SHOWN_CHARS_MAX: usize = 40;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error(
        "currency {0:?} is not one of the ISO 4217 codes with a minor unit this wallet accepts"
    )]
    UnknownCurrency(String),
    #[error("amount {0:?} is not a decimal string like \"12.34\"")]
    Malformed(String),
    #[error("amount must be more than zero")]
    NotPositive,
    #[error("amount {amount:?} has more than the {exponent} fractional digits of its currency")]
    TooPrecise { amount: String, exponent: u32 },
    #[error("amount {0:?} has more digits than amounts in its currency may have")]
    TooManyDigits(String),
    #[error("amount {0:?} is more than an amount may be")]
    OutOfRange(String),
}

impl MoneyError {
    pub fn code(&self) -> &'static str {
        match self {
            MoneyError::UnknownCurrency(_) => "unknown_currency",
            MoneyError::Malformed(_) | MoneyError::NotPositive => "invalid_amount",
            MoneyError::TooPrecise { .. } => "amount_too_precise",
            MoneyError::TooManyDigits(_) | MoneyError::OutOfRange(_) => "amount_too_large",
        }
    }

    /// Whether the amount is well formed but cannot be taken: more minor
    /// units than an i64 holds. No pattern can say that, so it is a
    /// refusal (422), not a 400.
    pub fn is_refusal(&self) -> bool {
        matches!(self, MoneyError::OutOfRange(_))
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

/// The pattern of the amounts `parse_amount` takes in a currency with
/// `exponent` minor-unit digits, as the API's schema gives it: a positive
/// decimal with at most `19 - exponent` significant digits before the
/// point and `exponent` after it (with `maxLength` 40).
pub fn amount_pattern(exponent: u32) -> String {
    let e = exponent as usize;
    let whole = format!("0*[1-9][0-9]{{0,{}}}", DIGITS_MAX - e - 1);
    if e == 0 {
        return format!("^{whole}$");
    }
    // A fraction of at most `e` digits, one of them not zero.
    let nonzero: Vec<String> = (0..e)
        .map(|zeros| format!("0{{{zeros}}}[1-9][0-9]{{0,{}}}", e - 1 - zeros))
        .collect();
    format!(
        "^({whole}(\\.[0-9]{{1,{e}}})?|0+\\.({}))$",
        nonzero.join("|")
    )
}

/// A decimal string (`"12.34"`) as integer minor units of a currency with
/// `exponent` fractional digits (exactly what `amount_pattern` matches, and
/// at most an i64).
pub fn parse_amount(amount: &str, exponent: u32) -> Result<i64, MoneyError> {
    let shown = || amount.chars().take(SHOWN_CHARS_MAX).collect::<String>();
    let (whole, fraction) = match amount.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (amount, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if amount.len() > AMOUNT_CHARS_MAX || !digits(whole) || !fraction.is_none_or(digits) {
        return Err(MoneyError::Malformed(shown()));
    }
    let fraction = fraction.unwrap_or("");
    if fraction.len() > exponent as usize {
        return Err(MoneyError::TooPrecise {
            amount: shown(),
            exponent,
        });
    }
    let significant = whole.trim_start_matches('0');
    if significant.len() > DIGITS_MAX - exponent as usize {
        return Err(MoneyError::TooManyDigits(shown()));
    }
    // At most 19 digits in all: an i128 holds them.
    let scaled = format!(
        "{significant}{fraction:0<width$}",
        width = exponent as usize
    );
    let minor: i128 = scaled.trim_start_matches('0').parse().unwrap_or(0);
    if minor == 0 {
        return Err(MoneyError::NotPositive);
    }
    i64::try_from(minor).map_err(|_| MoneyError::OutOfRange(shown()))
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
            ("0001.50", "USD", 150),
            ("0.5", "USD", 50),
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
            ("0", "USD", "invalid_amount"),
            ("0.00", "USD", "invalid_amount"),
            ("000", "JPY", "invalid_amount"),
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
            ("999999999999999999", "USD", "amount_too_large"),
            ("99999999999999999999", "USD", "amount_too_large"),
            ("1.00000", "CLF", "amount_too_precise"),
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
    fn only_out_of_range_amounts_are_refusals_and_patterns_say_the_rest() {
        let refusal = |amount, currency| parse(amount, currency).map_err(|e| e.is_refusal());
        assert_eq!(refusal("92233720368547758.08", "USD"), Err(true));
        assert_eq!(refusal("999999999999999999", "USD"), Err(false));
        assert_eq!(refusal("1.001", "USD"), Err(false));
        assert_eq!(amount_pattern(0), "^0*[1-9][0-9]{0,18}$");
        assert_eq!(
            amount_pattern(2),
            "^(0*[1-9][0-9]{0,16}(\\.[0-9]{1,2})?|0+\\.(0{0}[1-9][0-9]{0,1}|0{1}[1-9][0-9]{0,0}))$"
        );
    }

    proptest::proptest! {
        /// The schema's pattern takes exactly what the edge takes, in every
        /// currency, but amounts over an i64 (a 422 no pattern can say).
        #[test]
        fn the_pattern_matches_exactly_what_parses(amount in "[0-9.]{1,22}|0{0,20}[1-9]{1,20}(\\.[0-9]{1,5})?") {
            for exponent in 0..=4 {
                let pattern = regex::Regex::new(&amount_pattern(exponent)).expect("a regex");
                let parsed = parse_amount(&amount, exponent);
                let taken = !matches!(parsed, Err(ref e) if !e.is_refusal());
                proptest::prop_assert_eq!(pattern.is_match(&amount), taken, "{} in {}: {:?}", amount, exponent, parsed);
            }
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
