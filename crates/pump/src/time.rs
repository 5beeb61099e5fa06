//! Instants on the true timeline, and the pump's own clock.
//!
//! The true timeline ([`Instant`]) is milliseconds since the Unix epoch, UTC. The pump's clock
//! is a wall clock that the programmer sets (to local time): it runs at the true rate, offset by
//! whatever it was set to. Flex and periodic schedules run on the pump's clock, so setting it
//! moves them; daylight-saving changes reach the pump only when the programmer sets its clock.

use std::fmt;

use itb_dose::Duration;
use itb_dose::quantity::MS_PER_DAY;

/// An instant on the true timeline: milliseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(transparent))]
pub struct Instant(i64);

impl Instant {
    /// From milliseconds since the Unix epoch.
    pub const fn from_ms(ms: i64) -> Self {
        Self(ms)
    }
    /// Milliseconds since the Unix epoch.
    pub const fn as_ms(self) -> i64 {
        self.0
    }
    /// From a `jiff` timestamp (sub-millisecond parts dropped).
    pub fn from_timestamp(at: jiff::Timestamp) -> Self {
        Self(at.as_millisecond())
    }
    /// As a `jiff` timestamp; the epoch if out of `jiff`'s range (see [`Instant::checked_timestamp`]).
    pub fn to_timestamp(self) -> jiff::Timestamp {
        self.checked_timestamp().unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }
    /// As a `jiff` timestamp; `None` out of `jiff`'s range (years -9999 to 9999).
    pub fn checked_timestamp(self) -> Option<jiff::Timestamp> {
        jiff::Timestamp::from_millisecond(self.0).ok()
    }
    /// Later by `duration`, saturating.
    pub fn plus(self, duration: Duration) -> Self {
        Self(self.0.saturating_add(i64::try_from(duration.as_ms()).unwrap_or(i64::MAX)))
    }
    /// Earlier by `duration`, saturating.
    pub fn minus(self, duration: Duration) -> Self {
        Self(self.0.saturating_sub(i64::try_from(duration.as_ms()).unwrap_or(i64::MAX)))
    }
    /// Time from `earlier` to `self`; zero if `earlier` is later.
    pub fn since(self, earlier: Instant) -> Duration {
        Duration::ms(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.checked_timestamp() {
            Some(at) => write!(f, "{at}"),
            None => write!(f, "{} ms after 1970-01-01T00:00:00Z (beyond the calendar)", self.0),
        }
    }
}

/// The pump's clock: true time plus an offset set by the programmer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PumpClock {
    offset_ms: i64,
}

/// A reading of the pump's clock: milliseconds since 1970-01-01T00:00 *on the pump's wall
/// clock* (no zone: the pump does not know one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(transparent))]
pub struct PumpTime(i64);

/// Days from 1970-01-01 to a proleptic Gregorian date (exact for any year an `i64` holds).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian date `days` after 1970-01-01: (year, month, day).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl PumpTime {
    /// The earliest reading the clock may be set to: 2000-01-01 00:00.
    pub const EARLIEST: PumpTime = PumpTime(946_684_800_000);
    /// The first reading the clock may not be set to: 2100-01-01 00:00.
    pub const END: PumpTime = PumpTime(4_102_444_800_000);

    /// From wall-clock milliseconds.
    pub const fn from_ms(ms: i64) -> Self {
        Self(ms)
    }
    /// Wall-clock milliseconds.
    pub const fn as_ms(self) -> i64 {
        self.0
    }
    /// From a civil date-time as set on the pump: exact for every date-time `jiff` can hold (the
    /// reading is a count of milliseconds, not a timestamp, so nothing is out of its range).
    pub fn from_civil(datetime: jiff::civil::DateTime) -> Self {
        let days = days_from_civil(i64::from(datetime.year()), i64::from(datetime.month()), i64::from(datetime.day()));
        let time = datetime.time();
        let ms_of_day = ((i64::from(time.hour()) * 60 + i64::from(time.minute())) * 60 + i64::from(time.second()))
            * 1_000
            + i64::from(time.millisecond());
        Self(days * MS_PER_DAY as i64 + ms_of_day)
    }
    /// As a civil date-time; `None` beyond the calendar `jiff` holds (years -9999 to 9999).
    pub fn to_civil(self) -> Option<jiff::civil::DateTime> {
        let (year, month, day) = civil_from_days(self.day_number());
        let ms = self.ms_of_day();
        let date =
            jiff::civil::Date::new(i16::try_from(year).ok()?, i8::try_from(month).ok()?, i8::try_from(day).ok()?)
                .ok()?;
        let time = jiff::civil::Time::new(
            i8::try_from(ms / 3_600_000).ok()?,
            i8::try_from(ms / 60_000 % 60).ok()?,
            i8::try_from(ms / 1_000 % 60).ok()?,
            i32::try_from(ms % 1_000 * 1_000_000).ok()?,
        )
        .ok()?;
        Some(date.to_datetime(time))
    }
    /// The reading for people: `Wed 25 Nov 2026 10:00` (the pump's clock has no zone).
    pub fn to_people(self) -> String {
        self.to_civil().map_or_else(|| self.to_string(), itb_dose::text::civil_date_time)
    }
    /// True when the clock may be set to this reading: from 2000-01-01 00:00 up to, not
    /// including, 2100-01-01 00:00. Anything else is a mistake, not a date.
    pub fn is_settable(self) -> bool {
        Self::EARLIEST <= self && self < Self::END
    }
    /// Milliseconds since the pump's midnight.
    pub fn ms_of_day(self) -> u64 {
        self.0.rem_euclid(MS_PER_DAY as i64) as u64
    }
    /// Days since 1970-01-01 on the pump's clock.
    pub fn day_number(self) -> i64 {
        self.0.div_euclid(MS_PER_DAY as i64)
    }
    /// Weekday, Monday = 0 (1970-01-01 was a Thursday).
    pub fn weekday(self) -> usize {
        (self.day_number() + 3).rem_euclid(7) as usize
    }
}

impl fmt::Display for PumpTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_civil() {
            Some(civil) => write!(f, "{}", civil.strftime("%Y-%m-%d %H:%M:%S")),
            None => write!(f, "{} ms on the pump's clock (beyond the calendar)", self.0),
        }
    }
}

impl PumpClock {
    /// A clock that reads `reading` at true instant `at`.
    pub fn set(at: Instant, reading: PumpTime) -> Self {
        Self { offset_ms: reading.0.saturating_sub(at.0) }
    }
    /// The reading at a true instant.
    pub fn read(self, at: Instant) -> PumpTime {
        PumpTime(at.0.saturating_add(self.offset_ms))
    }
    /// The true instant at which the clock reads `reading`.
    pub fn instant_of(self, reading: PumpTime) -> Instant {
        Instant(reading.0.saturating_sub(self.offset_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_readings_convert_exactly_never_to_1970() {
        // Readings at the ends of the calendar are beyond jiff's timestamps, not beyond a reading.
        for text in ["-009999-01-01T00:00", "9999-12-31T23:59:59.999", "1969-12-31T23:59:59.999", "2026-11-25T10:00"] {
            let civil: jiff::civil::DateTime = text.parse().expect("valid");
            let reading = PumpTime::from_civil(civil);
            assert_ne!(reading.as_ms(), 0, "{text}");
            assert_eq!(reading.to_civil(), Some(civil), "{text}");
        }
        assert_eq!(PumpTime::from_civil("1970-01-01T00:00".parse().expect("valid")), PumpTime::from_ms(0));
        assert_eq!(PumpTime::from_civil("2000-01-01T00:00".parse().expect("valid")), PumpTime::EARLIEST);
        assert_eq!(PumpTime::from_civil("2100-01-01T00:00".parse().expect("valid")), PumpTime::END);
        // Beyond the calendar there is no civil reading, and the display says so.
        assert_eq!(PumpTime::from_ms(i64::MAX).to_civil(), None);
        assert!(!PumpTime::from_ms(i64::MAX).to_string().starts_with("1970"));
        assert!(PumpTime::EARLIEST.is_settable() && !PumpTime::END.is_settable());
        assert!(PumpTime::from_ms(PumpTime::END.as_ms() - 1).is_settable());
        assert!(!PumpTime::from_ms(PumpTime::EARLIEST.as_ms() - 1).is_settable());
    }

    #[test]
    fn pump_time_of_day_and_weekday() {
        let at = Instant::from_timestamp("2026-11-25T10:00:00Z".parse().expect("valid"));
        let clock = PumpClock::set(at, PumpTime::from_civil("2026-11-25T10:00".parse().expect("valid")));
        let reading = clock.read(at);
        assert_eq!(reading.ms_of_day(), 10 * 3_600_000);
        // 25 November 2026 is a Wednesday.
        assert_eq!(reading.weekday(), 2);
        assert_eq!(clock.instant_of(reading), at);
        // A clock set an hour ahead (summer time) reads 11:00.
        let summer = PumpClock::set(at, PumpTime::from_civil("2026-11-25T11:00".parse().expect("valid")));
        assert_eq!(summer.read(at).ms_of_day(), 11 * 3_600_000);
    }
}
