//! Fixed-point decimal text <-> integer counts of a small unit.
//!
//! Every quantity in `itb-dose` is an integer count of a small unit (nanograms, nanolitres,
//! milliseconds). People read and write decimals of a larger unit ("0.15 mL"). This module turns
//! one into the other exactly: a decimal with more places than the small unit can hold is an
//! error, never a silent rounding, and printing trims trailing zeros so that
//! `parse(print(x)) == x` for every value.

use std::fmt;

/// Why a decimal number could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// Nothing where a number was expected.
    #[error("no number was given")]
    Empty,
    /// A minus sign: quantities in this system are never negative.
    #[error("'{text}' is negative; a dose, volume, concentration or time is never negative")]
    Negative {
        /// The text as written.
        text: String,
    },
    /// Characters that are not a plain decimal number.
    #[error("'{text}' is not a plain decimal number (digits, with at most one '.')")]
    NotANumber {
        /// The text as written.
        text: String,
    },
    /// More decimal places than the resolution.
    #[error("'{text}' has more than {places} decimal places; the smallest step is {step}")]
    TooPrecise {
        /// The text as written.
        text: String,
        /// The number of decimal places allowed.
        places: u32,
        /// The smallest step, as text with its unit.
        step: String,
    },
    /// A value too large to hold.
    #[error("'{text}' is too large")]
    TooLarge {
        /// The text as written.
        text: String,
    },
}

/// Parses a non-negative decimal (`"12"`, `"0.15"`, `".5"`, `"3."`) into a count of units of
/// `10^-places` of the written unit. `step` names the smallest step for the error message.
pub fn parse(text: &str, places: u32, step: &str) -> Result<u64, DecimalError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DecimalError::Empty);
    }
    if text.starts_with('-') || text.starts_with('\u{2212}') {
        return Err(DecimalError::Negative { text: text.to_owned() });
    }
    let digits = text.strip_prefix('+').unwrap_or(text);
    let (whole, fraction) = match digits.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (digits, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction) {
        return Err(DecimalError::NotANumber { text: text.to_owned() });
    }
    let fraction_trimmed = fraction.trim_end_matches('0');
    if fraction_trimmed.len() > places as usize {
        return Err(DecimalError::TooPrecise { text: text.to_owned(), places, step: step.to_owned() });
    }
    let too_large = || DecimalError::TooLarge { text: text.to_owned() };
    let scale = 10u64.checked_pow(places).ok_or_else(too_large)?;
    let whole_value: u64 = if whole.is_empty() { 0 } else { whole.parse::<u64>().map_err(|_| too_large())? };
    let mut fraction_value: u64 = 0;
    for (index, byte) in fraction_trimmed.bytes().enumerate() {
        let digit = u64::from(byte - b'0');
        let place = 10u64.pow(places - 1 - index as u32);
        fraction_value += digit * place;
    }
    whole_value.checked_mul(scale).and_then(|v| v.checked_add(fraction_value)).ok_or_else(too_large)
}

/// Writes `count` units of `10^-places` as a decimal with trailing zeros trimmed.
pub fn format(count: u64, places: u32) -> Decimal {
    Decimal { count: u128::from(count), places }
}

/// Writes a wide count (used for derived figures that may exceed `u64`).
pub fn format_wide(count: u128, places: u32) -> Decimal {
    Decimal { count, places }
}

/// A decimal ready to print; see [`format`].
#[derive(Debug, Clone, Copy)]
pub struct Decimal {
    count: u128,
    places: u32,
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scale = 10u128.pow(self.places);
        let whole = self.count / scale;
        let fraction = self.count % scale;
        if fraction == 0 {
            return write!(f, "{whole}");
        }
        let digits = format!("{fraction:0width$}", width = self.places as usize);
        write!(f, "{whole}.{}", digits.trim_end_matches('0'))
    }
}

/// Rounds `numerator / denominator` to the nearest integer, halves away from zero.
pub fn div_round(numerator: u128, denominator: u128) -> u128 {
    (numerator + denominator / 2) / denominator
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exact_decimals() {
        let cases: &[(&str, u32, u64)] = &[
            ("0.15", 6, 150_000),
            ("20", 6, 20_000_000),
            (".5", 3, 500),
            ("3.", 3, 3000),
            ("2000", 3, 2_000_000),
            ("0.001", 3, 1),
            ("1.2300", 3, 1230),
            ("+7", 0, 7),
        ];
        for &(text, places, expected) in cases {
            assert_eq!(parse(text, places, "step"), Ok(expected), "{text}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_hold_exactly() {
        assert!(matches!(parse("-1", 3, "s"), Err(DecimalError::Negative { .. })));
        assert!(matches!(parse("0.0001", 3, "s"), Err(DecimalError::TooPrecise { .. })));
        assert!(matches!(parse("1e3", 3, "s"), Err(DecimalError::NotANumber { .. })));
        assert!(matches!(parse("1,5", 3, "s"), Err(DecimalError::NotANumber { .. })));
        assert!(matches!(parse(".", 3, "s"), Err(DecimalError::NotANumber { .. })));
        assert!(matches!(parse("", 3, "s"), Err(DecimalError::Empty)));
        assert!(matches!(parse("99999999999999999999", 3, "s"), Err(DecimalError::TooLarge { .. })));
    }

    #[test]
    fn formats_with_trailing_zeros_trimmed() {
        assert_eq!(format(150_000, 6).to_string(), "0.15");
        assert_eq!(format(20_000_000, 6).to_string(), "20");
        assert_eq!(format(1, 3).to_string(), "0.001");
        assert_eq!(format(0, 3).to_string(), "0");
    }
}
