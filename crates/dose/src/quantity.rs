//! Exact quantities: mass, volume, concentration, dose rate, volume rate, duration, time of day.
//!
//! Each is a newtype over an unsigned integer count of a small unit:
//!
//! | type            | unit counted            | text form                |
//! |-----------------|-------------------------|--------------------------|
//! | [`Mass`]        | nanograms               | `400 micrograms`         |
//! | [`Volume`]      | nanolitres              | `0.15 mL`                |
//! | [`Concentration`] | nanograms per mL      | `2000 micrograms/mL`     |
//! | [`DoseRate`]    | nanograms per day       | `400 micrograms/day`     |
//! | [`VolumeRate`]  | nanolitres per day      | `0.2 mL/day`             |
//! | [`Duration`]    | milliseconds            | `90 min`, `1.5 h`, `2 day` |
//! | [`TimeOfDay`]   | minutes after midnight  | `07:30`                  |
//!
//! No `f64` is stored, compared or used for delivery. Conversions between kinds go through `u128`
//! intermediates, so the only rounding is the single final division, and each conversion takes a
//! [`Rounding`] that the caller chooses and documents: a conversion that moves a safety date
//! rounds toward the earlier date.
//!
//! Text always carries its unit. "micrograms" is written in full: `mcg`, `µg` and `ug` are refused,
//! and so are milligrams where micrograms are expected (a thousand-fold error is refused, never
//! converted).

use std::fmt;
use std::str::FromStr;

use crate::decimal::{self, DecimalError};

/// Milliseconds in a day of 24 hours.
pub const MS_PER_DAY: u64 = 86_400_000;
/// Nanolitres in a millilitre.
pub const NL_PER_ML: u64 = 1_000_000;
/// Nanograms in a microgram.
pub const NG_PER_MICROGRAM: u64 = 1_000;

/// Which way the single division of a conversion goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    /// Toward zero.
    Down,
    /// Away from zero.
    Up,
}

impl Rounding {
    fn divide(self, numerator: u128, denominator: u128) -> u128 {
        match self {
            Rounding::Down => numerator / denominator,
            Rounding::Up => numerator.div_ceil(denominator),
        }
    }
}

/// Why a quantity could not be read from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The number part is not a usable decimal.
    #[error(transparent)]
    Number(#[from] DecimalError),
    /// A number without a unit where the unit must be written.
    #[error("'{text}' has no unit; write it with its unit, for example '{example}'")]
    MissingUnit {
        /// The text as written.
        text: String,
        /// An example of the expected form.
        example: &'static str,
    },
    /// `mcg`, `µg` or `ug`.
    #[error(
        "'{written}' is not accepted: write 'micrograms' in full ('mcg' and 'µg' are mistaken for 'mg', a thousand-fold error)"
    )]
    AbbreviatedMicrograms {
        /// The unit as written.
        written: String,
    },
    /// Milligrams where micrograms are expected.
    #[error(
        "'{written}' is in milligrams but {expected} is expected; check which you meant and write the value in micrograms (1 mg = 1000 micrograms): milligrams are never converted"
    )]
    Milligrams {
        /// The unit as written.
        written: String,
        /// The expected unit.
        expected: &'static str,
    },
    /// Any other unit that is not the expected one.
    #[error("'{written}' is not a unit for this value; expected {expected}")]
    WrongUnit {
        /// The unit as written.
        written: String,
        /// The expected unit or units.
        expected: &'static str,
    },
    /// The value does not fit.
    #[error("'{text}' is too large")]
    TooLarge {
        /// The text as written.
        text: String,
    },
}

/// One unit a quantity kind accepts: its canonical text, the decimal places its smallest step
/// allows, and the factor from that step to the kind's base count.
struct UnitSpec {
    canonical: &'static str,
    places: u32,
    factor: u64,
    step: &'static str,
}

/// Normalises one unit word; refuses the abbreviations and milligrams outright.
fn normalise_word(word: &str, written: &str, expected: &'static str) -> Result<&'static str, QuantityError> {
    let lower = word.trim().to_lowercase();
    Ok(match lower.as_str() {
        "microgram" | "micrograms" => "micrograms",
        "mcg" | "mcgs" | "ug" | "µg" | "μg" | "mcgm" => {
            return Err(QuantityError::AbbreviatedMicrograms { written: written.to_owned() });
        }
        "mg" | "mgs" | "milligram" | "milligrams" => {
            if expected.contains("micrograms") {
                return Err(QuantityError::Milligrams { written: written.to_owned(), expected });
            }
            return Err(QuantityError::WrongUnit { written: written.to_owned(), expected });
        }
        "ml" | "millilitre" | "millilitres" | "milliliter" | "milliliters" => "mL",
        "day" | "days" | "d" | "24h" | "24 h" => "day",
        "hour" | "hours" | "h" | "hr" | "hrs" => "hour",
        "min" | "mins" | "minute" | "minutes" => "min",
        "s" | "sec" | "secs" | "second" | "seconds" => "s",
        _ => return Err(QuantityError::WrongUnit { written: written.to_owned(), expected }),
    })
}

/// Splits `"400 micrograms/day"` into `("400", "micrograms/day")`.
fn split_number(text: &str) -> (&str, &str) {
    let text = text.trim();
    let end = text
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-' || c == '\u{2212}'))
        .map_or(text.len(), |(index, _)| index);
    (text[..end].trim(), text[end..].trim())
}

/// Reads `text` against a kind's units. With `bare_allowed`, a plain number is in `units[0]`.
fn parse_in(
    text: &str,
    units: &[UnitSpec],
    expected: &'static str,
    example: &'static str,
    bare_allowed: bool,
) -> Result<u64, QuantityError> {
    let (number, unit_text) = split_number(text);
    let spec = if unit_text.is_empty() {
        if !bare_allowed {
            return Err(QuantityError::MissingUnit { text: text.trim().to_owned(), example });
        }
        &units[0]
    } else {
        let spaced = unit_text.replace(" per ", "/");
        let mut canonical = String::new();
        for (index, word) in spaced.split('/').enumerate() {
            if index > 0 {
                canonical.push('/');
            }
            canonical.push_str(normalise_word(word, unit_text, expected)?);
        }
        units
            .iter()
            .find(|spec| spec.canonical == canonical)
            .ok_or_else(|| QuantityError::WrongUnit { written: unit_text.to_owned(), expected })?
    };
    let count = decimal::parse(number, spec.places, spec.step)?;
    count.checked_mul(spec.factor).ok_or_else(|| QuantityError::TooLarge { text: text.trim().to_owned() })
}

macro_rules! quantity {
    (
        $(#[$meta:meta])*
        $name:ident, $field:ident, $accessor:ident, places = $places:expr,
        units = $units:expr, expected = $expected:expr, example = $example:expr,
        display_unit = $display_unit:expr
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(transparent))]
        pub struct $name {
            $field: u64,
        }

        impl $name {
            /// Zero of this quantity.
            pub const ZERO: Self = Self { $field: 0 };

            /// From a count of the base unit.
            pub const fn $field(count: u64) -> Self {
                Self { $field: count }
            }

            /// The count of the base unit.
            pub const fn $accessor(self) -> u64 {
                self.$field
            }

            /// True when zero.
            pub const fn is_zero(self) -> bool {
                self.$field == 0
            }

            /// Sum, or `None` on overflow.
            pub fn checked_add(self, other: Self) -> Option<Self> {
                self.$field.checked_add(other.$field).map(Self::$field)
            }

            /// Difference, or `None` when `other` is larger.
            pub fn checked_sub(self, other: Self) -> Option<Self> {
                self.$field.checked_sub(other.$field).map(Self::$field)
            }

            /// Difference, zero when `other` is larger.
            pub fn saturating_sub(self, other: Self) -> Self {
                Self::$field(self.$field.saturating_sub(other.$field))
            }

            /// Times a whole number, or `None` on overflow.
            pub fn checked_mul(self, factor: u64) -> Option<Self> {
                self.$field.checked_mul(factor).map(Self::$field)
            }

            /// Reads a value whose unit is implied: a plain number is in the kind's main unit
            /// (as on a command-line flag that names its unit); a written unit must be right.
            pub fn parse_implied(text: &str) -> Result<Self, QuantityError> {
                parse_in(text, &$units, $expected, $example, true).map(Self::$field)
            }

            /// The number in the main display unit, without the unit (`"0.15"`).
            pub fn number(self) -> decimal::Decimal {
                decimal::format(self.$field, $places)
            }
        }

        impl FromStr for $name {
            type Err = QuantityError;

            /// Reads a value with its unit written (`"400 micrograms/day"`).
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                parse_in(text, &$units, $expected, $example, false).map(Self::$field)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} {}", self.number(), $display_unit)
            }
        }
    };
}

quantity! {
    /// A mass of drug, counted in nanograms. Text: `"50 micrograms"` (3 decimal places).
    Mass, ng, as_ng, places = 3,
    units = [UnitSpec { canonical: "micrograms", places: 3, factor: 1, step: "0.001 micrograms" }],
    expected = "micrograms", example = "50 micrograms", display_unit = "micrograms"
}

quantity! {
    /// A volume of fluid, counted in nanolitres. Text: `"0.15 mL"` (6 decimal places).
    Volume, nl, as_nl, places = 6,
    units = [UnitSpec { canonical: "mL", places: 6, factor: 1, step: "0.000001 mL" }],
    expected = "mL", example = "20 mL", display_unit = "mL"
}

quantity! {
    /// A drug concentration, counted in nanograms per mL. Text: `"2000 micrograms/mL"`.
    Concentration, ng_per_ml, as_ng_per_ml, places = 3,
    units = [UnitSpec { canonical: "micrograms/mL", places: 3, factor: 1, step: "0.001 micrograms/mL" }],
    expected = "micrograms/mL", example = "2000 micrograms/mL", display_unit = "micrograms/mL"
}

quantity! {
    /// A dose rate, counted in nanograms per day. Text: `"400 micrograms/day"`; also read as
    /// `"16.5 micrograms/hour"` (exactly 24 times as much per day).
    DoseRate, ng_per_day, as_ng_per_day, places = 3,
    units = [
        UnitSpec { canonical: "micrograms/day", places: 3, factor: 1, step: "0.001 micrograms/day" },
        UnitSpec { canonical: "micrograms/hour", places: 3, factor: 24, step: "0.001 micrograms/hour" },
    ],
    expected = "micrograms/day (or micrograms/hour)", example = "400 micrograms/day",
    display_unit = "micrograms/day"
}

quantity! {
    /// A volume rate, counted in nanolitres per day. Text: `"0.2 mL/day"`; also `"mL/hour"`.
    VolumeRate, nl_per_day, as_nl_per_day, places = 6,
    units = [
        UnitSpec { canonical: "mL/day", places: 6, factor: 1, step: "0.000001 mL/day" },
        UnitSpec { canonical: "mL/hour", places: 6, factor: 24, step: "0.000001 mL/hour" },
    ],
    expected = "mL/day (or mL/hour)", example = "0.2 mL/day", display_unit = "mL/day"
}

/// A span of time, counted in milliseconds. Text: `"90 min"`, `"1.5 h"`, `"2 day"`, `"30 s"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(transparent))]
pub struct Duration {
    ms: u64,
}

const DURATION_UNITS: [UnitSpec; 4] = [
    UnitSpec { canonical: "hour", places: 3, factor: 3_600, step: "0.001 h" },
    UnitSpec { canonical: "min", places: 3, factor: 60, step: "0.001 min" },
    UnitSpec { canonical: "s", places: 3, factor: 1, step: "0.001 s" },
    UnitSpec { canonical: "day", places: 3, factor: 86_400, step: "0.001 day" },
];

impl Duration {
    /// No time.
    pub const ZERO: Self = Self { ms: 0 };
    /// A day of 24 hours.
    pub const DAY: Self = Self { ms: MS_PER_DAY };

    /// From milliseconds.
    pub const fn ms(ms: u64) -> Self {
        Self { ms }
    }
    /// From whole seconds.
    pub const fn seconds(seconds: u64) -> Self {
        Self { ms: seconds.saturating_mul(1_000) }
    }
    /// From whole minutes.
    pub const fn minutes(minutes: u64) -> Self {
        Self { ms: minutes.saturating_mul(60_000) }
    }
    /// From whole hours.
    pub const fn hours(hours: u64) -> Self {
        Self { ms: hours.saturating_mul(3_600_000) }
    }
    /// From whole days of 24 hours.
    pub const fn days(days: u64) -> Self {
        Self { ms: days.saturating_mul(MS_PER_DAY) }
    }
    /// Milliseconds.
    pub const fn as_ms(self) -> u64 {
        self.ms
    }
    /// True when zero.
    pub const fn is_zero(self) -> bool {
        self.ms == 0
    }
    /// Sum, or `None` on overflow.
    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.ms.checked_add(other.ms).map(Self::ms)
    }
    /// Difference, or `None` when `other` is longer.
    pub fn checked_sub(self, other: Self) -> Option<Self> {
        self.ms.checked_sub(other.ms).map(Self::ms)
    }
    /// Elapsed days as a decimal with 6 places, rounded down (never later than the truth).
    pub fn days_decimal(self) -> decimal::Decimal {
        let micro_days = u128::from(self.ms) * 1_000_000 / u128::from(MS_PER_DAY);
        decimal::format_wide(micro_days, 6)
    }
    /// Hours as a decimal with 6 places, rounded down.
    pub fn hours_decimal(self) -> decimal::Decimal {
        let micro_hours = u128::from(self.ms) * 1_000_000 / 3_600_000;
        decimal::format_wide(micro_hours, 6)
    }
    /// As a `jiff` signed duration, for adding to instants at the edges.
    pub fn to_signed(self) -> jiff::SignedDuration {
        jiff::SignedDuration::from_millis(i64::try_from(self.ms).unwrap_or(i64::MAX))
    }
}

impl FromStr for Duration {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_in(text, &DURATION_UNITS, "h, min, s or day", "30 min", false).map(Self::ms)
    }
}

impl fmt::Display for Duration {
    /// The largest of day, h, min whose count is whole; otherwise seconds with decimals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit_ms, unit) in [(MS_PER_DAY, "day"), (3_600_000, "h"), (60_000, "min")] {
            if self.ms != 0 && self.ms.is_multiple_of(unit_ms) {
                return write!(f, "{} {unit}", self.ms / unit_ms);
            }
        }
        write!(f, "{} s", decimal::format(self.ms, 3))
    }
}

/// A time of day on a 24-hour clock, in whole minutes after midnight (`00:00` to `23:59`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TimeOfDay {
    minutes: u16,
}

/// Why a time of day could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{text}' is not a time of day; write it as HH:MM on a 24-hour clock, from 00:00 to 23:59")]
pub struct TimeOfDayError {
    /// The text as written.
    pub text: String,
}

impl TimeOfDay {
    /// Midnight, the start of a day.
    pub const MIDNIGHT: Self = Self { minutes: 0 };
    /// Minutes in a day.
    pub const MINUTES_PER_DAY: u16 = 1_440;

    /// From hours and minutes; `None` outside the day.
    pub fn hm(hours: u16, minutes: u16) -> Option<Self> {
        (hours < 24 && minutes < 60).then_some(Self { minutes: hours * 60 + minutes })
    }
    /// From minutes after midnight; `None` at or past 24:00.
    pub fn from_minutes(minutes: u16) -> Option<Self> {
        (minutes < Self::MINUTES_PER_DAY).then_some(Self { minutes })
    }
    /// Minutes after midnight.
    pub const fn minutes(self) -> u16 {
        self.minutes
    }
    /// Time since midnight.
    pub const fn since_midnight(self) -> Duration {
        Duration::minutes(self.minutes as u64)
    }
}

impl FromStr for TimeOfDay {
    type Err = TimeOfDayError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || TimeOfDayError { text: text.to_owned() };
        let (hours, minutes) = text.trim().split_once(':').ok_or_else(error)?;
        let valid = |s: &str, max_len| !s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit());
        if !valid(hours, 2) || minutes.len() != 2 || !valid(minutes, 2) {
            return Err(error());
        }
        let hours: u16 = hours.parse().map_err(|_| error())?;
        let minutes: u16 = minutes.parse().map_err(|_| error())?;
        Self::hm(hours, minutes).ok_or_else(error)
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.minutes / 60, self.minutes % 60)
    }
}

/// Minutes after midnight as a plain integer; a value at or past 24:00 is refused on reading.
#[cfg(feature = "serde")]
impl serde::Serialize for TimeOfDay {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u16(self.minutes)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for TimeOfDay {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let minutes = u16::deserialize(deserializer)?;
        Self::from_minutes(minutes).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{minutes} minutes after midnight is not a time of day (at most {})",
                Self::MINUTES_PER_DAY - 1
            ))
        })
    }
}

fn narrow(value: u128) -> Option<u64> {
    u64::try_from(value).ok()
}

impl Mass {
    /// From whole micrograms.
    pub const fn micrograms(micrograms: u64) -> Self {
        Self::ng(micrograms * NG_PER_MICROGRAM)
    }
    /// The rate that delivers this mass evenly over `duration`; `None` for a zero duration.
    pub fn rate_over(self, duration: Duration, rounding: Rounding) -> Option<DoseRate> {
        if duration.is_zero() {
            return None;
        }
        let numerator = u128::from(self.ng) * u128::from(MS_PER_DAY);
        narrow(rounding.divide(numerator, u128::from(duration.ms))).map(DoseRate::ng_per_day)
    }
}

impl Volume {
    /// From whole millilitres.
    pub const fn ml(ml: u64) -> Self {
        Self::nl(ml * NL_PER_ML)
    }
}

impl Concentration {
    /// From whole micrograms per mL.
    pub const fn micrograms_per_ml(micrograms: u64) -> Self {
        Self::ng_per_ml(micrograms * NG_PER_MICROGRAM)
    }
    /// The drug in `volume` of this solution.
    pub fn mass_in(self, volume: Volume, rounding: Rounding) -> Option<Mass> {
        let numerator = u128::from(volume.as_nl()) * u128::from(self.ng_per_ml);
        narrow(rounding.divide(numerator, u128::from(NL_PER_ML))).map(Mass::ng)
    }
    /// The volume of this solution that holds `mass`; `None` for a zero concentration.
    pub fn volume_of(self, mass: Mass, rounding: Rounding) -> Option<Volume> {
        if self.is_zero() {
            return None;
        }
        let numerator = u128::from(mass.as_ng()) * u128::from(NL_PER_ML);
        narrow(rounding.divide(numerator, u128::from(self.ng_per_ml))).map(Volume::nl)
    }
}

impl DoseRate {
    /// From whole micrograms per day.
    pub const fn micrograms_per_day(micrograms: u64) -> Self {
        Self::ng_per_day(micrograms * NG_PER_MICROGRAM)
    }
    /// The drug delivered at this rate over `duration`.
    pub fn mass_over(self, duration: Duration, rounding: Rounding) -> Option<Mass> {
        let numerator = u128::from(self.ng_per_day) * u128::from(duration.ms);
        narrow(rounding.divide(numerator, u128::from(MS_PER_DAY))).map(Mass::ng)
    }
    /// The drug delivered in one day of 24 hours.
    pub const fn per_day(self) -> Mass {
        Mass::ng(self.ng_per_day)
    }
    /// The volume rate that delivers this dose rate from a solution of `concentration`.
    pub fn volume_rate_at(self, concentration: Concentration, rounding: Rounding) -> Option<VolumeRate> {
        if concentration.is_zero() {
            return None;
        }
        let numerator = u128::from(self.ng_per_day) * u128::from(NL_PER_ML);
        narrow(rounding.divide(numerator, u128::from(concentration.as_ng_per_ml()))).map(VolumeRate::nl_per_day)
    }
}

impl VolumeRate {
    /// The volume moved at this rate over `duration`.
    pub fn volume_over(self, duration: Duration, rounding: Rounding) -> Option<Volume> {
        let numerator = u128::from(self.nl_per_day) * u128::from(duration.ms);
        narrow(rounding.divide(numerator, u128::from(MS_PER_DAY))).map(Volume::nl)
    }
    /// The time this rate takes to move `volume`; `None` at a zero rate.
    pub fn time_to_move(self, volume: Volume, rounding: Rounding) -> Option<Duration> {
        if self.is_zero() {
            return None;
        }
        let numerator = u128::from(volume.as_nl()) * u128::from(MS_PER_DAY);
        narrow(rounding.divide(numerator, u128::from(self.nl_per_day))).map(Duration::ms)
    }
    /// The dose rate this volume rate gives from a solution of `concentration`.
    pub fn dose_rate_at(self, concentration: Concentration, rounding: Rounding) -> Option<DoseRate> {
        let numerator = u128::from(self.nl_per_day) * u128::from(concentration.as_ng_per_ml());
        narrow(rounding.divide(numerator, u128::from(NL_PER_ML))).map(DoseRate::ng_per_day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_quantities_with_units() {
        assert_eq!("2000 micrograms/mL".parse(), Ok(Concentration::micrograms_per_ml(2000)));
        assert_eq!("0.15 mL".parse(), Ok(Volume::nl(150_000)));
        assert_eq!("400 micrograms/day".parse(), Ok(DoseRate::micrograms_per_day(400)));
        assert_eq!("400 micrograms per day".parse(), Ok(DoseRate::micrograms_per_day(400)));
        assert_eq!("2.5 micrograms/hour".parse(), Ok(DoseRate::micrograms_per_day(60)));
        assert_eq!("50 micrograms".parse(), Ok(Mass::micrograms(50)));
        assert_eq!("1 microgram".parse(), Ok(Mass::micrograms(1)));
        assert_eq!("0.2 mL/day".parse(), Ok(VolumeRate::nl_per_day(200_000)));
        assert_eq!("1.5 h".parse(), Ok(Duration::minutes(90)));
        assert_eq!("90 min".parse(), Ok(Duration::minutes(90)));
        assert_eq!("2 days".parse(), Ok(Duration::days(2)));
        assert_eq!("07:30".parse(), Ok(TimeOfDay::hm(7, 30).expect("valid")));
    }

    #[test]
    fn refuses_ambiguous_units() {
        let mcg = "400 mcg/day".parse::<DoseRate>();
        assert!(matches!(mcg, Err(QuantityError::AbbreviatedMicrograms { .. })), "{mcg:?}");
        let micro = "50 µg".parse::<Mass>();
        assert!(matches!(micro, Err(QuantityError::AbbreviatedMicrograms { .. })), "{micro:?}");
        let mg = "2 mg/mL".parse::<Concentration>();
        assert!(matches!(mg, Err(QuantityError::Milligrams { .. })), "{mg:?}");
        let mg_day = "0.4 mg/day".parse::<DoseRate>();
        assert!(matches!(mg_day, Err(QuantityError::Milligrams { .. })), "{mg_day:?}");
        let bare = "400".parse::<DoseRate>();
        assert!(matches!(bare, Err(QuantityError::MissingUnit { .. })), "{bare:?}");
        let wrong = "400 mL".parse::<DoseRate>();
        assert!(matches!(wrong, Err(QuantityError::WrongUnit { .. })), "{wrong:?}");
        assert!("24:00".parse::<TimeOfDay>().is_err());
        assert!("7:5".parse::<TimeOfDay>().is_err());
    }

    #[test]
    fn implied_units_accept_plain_numbers_and_check_written_ones() {
        assert_eq!(DoseRate::parse_implied("400"), Ok(DoseRate::micrograms_per_day(400)));
        assert_eq!(DoseRate::parse_implied("400 micrograms/day"), Ok(DoseRate::micrograms_per_day(400)));
        assert!(matches!(DoseRate::parse_implied("0.4 mg/day"), Err(QuantityError::Milligrams { .. })));
        assert!(matches!(Volume::parse_implied("-1"), Err(QuantityError::Number(DecimalError::Negative { .. }))));
    }

    #[test]
    fn prints_with_units_in_full() {
        assert_eq!(Concentration::micrograms_per_ml(2000).to_string(), "2000 micrograms/mL");
        assert_eq!(Volume::nl(150_000).to_string(), "0.15 mL");
        assert_eq!(DoseRate::ng_per_day(400_500).to_string(), "400.5 micrograms/day");
        assert_eq!(Duration::minutes(90).to_string(), "90 min");
        assert_eq!(Duration::hours(2).to_string(), "2 h");
        assert_eq!(Duration::ms(1_500).to_string(), "1.5 s");
        assert_eq!(Duration::days(180).to_string(), "180 day");
    }

    #[test]
    fn conversions_round_as_asked() {
        // 400 micrograms/day at 2000 micrograms/mL is 0.2 mL/day exactly.
        let rate = DoseRate::micrograms_per_day(400);
        let concentration = Concentration::micrograms_per_ml(2000);
        assert_eq!(rate.volume_rate_at(concentration, Rounding::Down), Some(VolumeRate::nl_per_day(200_000)));
        // 100 micrograms/day at 3 micrograms/mL: 33.333... mL/day.
        let thirds = DoseRate::micrograms_per_day(100);
        let three = Concentration::micrograms_per_ml(3);
        assert_eq!(thirds.volume_rate_at(three, Rounding::Down), Some(VolumeRate::nl_per_day(33_333_333)));
        assert_eq!(thirds.volume_rate_at(three, Rounding::Up), Some(VolumeRate::nl_per_day(33_333_334)));
        assert_eq!(
            Mass::micrograms(50).rate_over(Duration::hours(1), Rounding::Down),
            Some(DoseRate::micrograms_per_day(1200))
        );
        assert_eq!(concentration.mass_in(Volume::ml(20), Rounding::Down), Some(Mass::micrograms(40_000)));
        assert_eq!(
            VolumeRate::nl_per_day(200_000).time_to_move(Volume::ml(18), Rounding::Down),
            Some(Duration::days(90))
        );
        assert_eq!(VolumeRate::ZERO.time_to_move(Volume::ml(1), Rounding::Down), None);
        assert_eq!(Concentration::ZERO.volume_of(Mass::micrograms(1), Rounding::Down), None);
    }
}
