//! NHS numbers: ten digits, the last a modulus 11 check digit; shown 3-3-4.

use std::fmt;
use std::str::FromStr;

/// A valid NHS number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NhsNumber([u8; 10]);

/// Why a text is not an NHS number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NhsNumberError {
    /// Not ten digits.
    #[error("an NHS number has 10 digits (spaces allowed, as in 943 476 5919); this has {0}")]
    Length(usize),
    /// Something other than digits and spaces.
    #[error("an NHS number has only digits and spaces, as in 943 476 5919")]
    NotDigits,
    /// The check digit does not match.
    #[error(
        "this is not a valid NHS number: its check digit does not match; check each digit against the patient's letter or card"
    )]
    CheckDigit,
}

impl NhsNumber {
    /// The ten digits, unbroken (as stored).
    pub fn digits(&self) -> String {
        self.0.iter().map(|d| char::from(b'0' + d)).collect()
    }
    /// The check digit the first nine digits call for, or `None` when they can have none
    /// (remainder 10).
    pub fn check_digit(first_nine: &[u8; 9]) -> Option<u8> {
        let sum: u32 = first_nine.iter().zip((2..=10).rev()).map(|(d, w)| u32::from(*d) * w).sum();
        match 11 - (sum % 11) {
            11 => Some(0),
            10 => None,
            digit => u8::try_from(digit).ok(),
        }
    }
}

impl FromStr for NhsNumber {
    type Err = NhsNumberError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut digits = Vec::with_capacity(10);
        for c in text.trim().chars() {
            match c {
                '0'..='9' => digits.push(c as u8 - b'0'),
                ' ' | '-' => {}
                _ => return Err(NhsNumberError::NotDigits),
            }
            if digits.len() > 10 {
                return Err(NhsNumberError::Length(text.chars().filter(char::is_ascii_digit).count()));
            }
        }
        let digits: [u8; 10] = digits.as_slice().try_into().map_err(|_| NhsNumberError::Length(digits.len()))?;
        let mut first_nine = [0u8; 9];
        first_nine.copy_from_slice(&digits[..9]);
        if Self::check_digit(&first_nine) != Some(digits[9]) {
            return Err(NhsNumberError::CheckDigit);
        }
        Ok(Self(digits))
    }
}

impl fmt::Display for NhsNumber {
    /// 3-3-4 with spaces: `943 476 5919`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.digits();
        write!(f, "{} {} {}", &d[..3], &d[3..6], &d[6..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_example_is_valid_and_shown_3_3_4() {
        let n: NhsNumber = "9434765919".parse().expect("valid");
        assert_eq!(n.to_string(), "943 476 5919");
        assert_eq!(n.digits(), "9434765919");
        assert_eq!("943 476 5919".parse::<NhsNumber>(), Ok(n));
    }

    #[test]
    fn wrong_check_digit_length_and_letters_are_refused() {
        assert_eq!("9434765918".parse::<NhsNumber>(), Err(NhsNumberError::CheckDigit));
        assert_eq!("943476591".parse::<NhsNumber>(), Err(NhsNumberError::Length(9)));
        assert_eq!("94347659190".parse::<NhsNumber>(), Err(NhsNumberError::Length(11)));
        assert_eq!("943476591X".parse::<NhsNumber>(), Err(NhsNumberError::NotDigits));
    }

    #[test]
    fn remainder_ten_has_no_valid_check_digit() {
        // 6 x 2 = 12, remainder 1: the check would be 10, so no tenth digit passes.
        let nine = [0, 0, 0, 0, 0, 0, 0, 0, 6];
        assert_eq!(NhsNumber::check_digit(&nine), None);
        for last in 0..10 {
            assert!(format!("000000006{last}").parse::<NhsNumber>().is_err());
        }
    }

    proptest::proptest! {
        #[test]
        fn changing_one_digit_is_always_caught(nine in proptest::array::uniform9(0u8..10), pos in 0usize..10, delta in 1u8..10) {
            if let Some(check) = NhsNumber::check_digit(&nine) {
                let mut digits: Vec<u8> = nine.to_vec();
                digits.push(check);
                let good: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
                proptest::prop_assert!(good.parse::<NhsNumber>().is_ok());
                digits[pos] = (digits[pos] + delta) % 10;
                let bad: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
                proptest::prop_assert!(bad.parse::<NhsNumber>().is_err());
            }
        }
    }
}
