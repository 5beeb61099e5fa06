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
    /// As a `jiff` timestamp; the epoch if out of `jiff`'s range.
    pub fn to_timestamp(self) -> jiff::Timestamp {
        jiff::Timestamp::from_millisecond(self.0).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
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
        write!(f, "{}", self.to_timestamp())
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

impl PumpTime {
    /// From wall-clock milliseconds.
    pub const fn from_ms(ms: i64) -> Self {
        Self(ms)
    }
    /// Wall-clock milliseconds.
    pub const fn as_ms(self) -> i64 {
        self.0
    }
    /// From a civil date-time as set on the pump.
    pub fn from_civil(datetime: jiff::civil::DateTime) -> Self {
        let as_utc = jiff::tz::TimeZone::UTC.to_ambiguous_timestamp(datetime).compatible();
        Self(as_utc.map_or(0, |t| t.as_millisecond()))
    }
    /// As a civil date-time, for display.
    pub fn to_civil(self) -> jiff::civil::DateTime {
        jiff::tz::TimeZone::UTC.to_datetime(Instant(self.0).to_timestamp())
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
        write!(f, "{}", self.to_civil().strftime("%Y-%m-%d %H:%M:%S"))
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
