//! Time as an argument: the channel reads no clock.
//!
//! An [`Instant`] is a count of milliseconds from an epoch the caller chooses (the start of a
//! connection, of a simulation, of a test). The state machine only compares instants and adds
//! durations to them, so the same code runs against a real clock behind a socket and against a
//! simulated one that jumps hours in a step.

use std::time::Duration;

/// A point in time, in milliseconds after an epoch chosen by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant {
    ms: u64,
}

impl Instant {
    /// The epoch itself.
    pub const ZERO: Instant = Instant { ms: 0 };

    /// The instant `ms` milliseconds after the epoch.
    #[must_use]
    pub const fn from_millis(ms: u64) -> Self {
        Self { ms }
    }

    /// Milliseconds after the epoch.
    #[must_use]
    pub const fn as_millis(self) -> u64 {
        self.ms
    }

    /// `self + duration`, saturating at the last representable instant (whole milliseconds;
    /// a fraction of a millisecond is dropped).
    #[must_use]
    pub fn saturating_add(self, duration: Duration) -> Self {
        let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        Self { ms: self.ms.saturating_add(ms) }
    }

    /// The time from `earlier` to `self`, zero if `earlier` is later.
    #[must_use]
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_millis(self.ms.saturating_sub(earlier.ms))
    }
}

impl std::ops::Add<Duration> for Instant {
    type Output = Instant;

    /// Saturating, as [`Instant::saturating_add`].
    fn add(self, duration: Duration) -> Instant {
        self.saturating_add(duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_saturates_instead_of_wrapping() {
        let late = Instant::from_millis(u64::MAX - 1);
        assert_eq!(late + Duration::from_secs(10), Instant::from_millis(u64::MAX));
        assert_eq!(Instant::ZERO + Duration::from_millis(1500), Instant::from_millis(1500));
        assert_eq!(Instant::from_millis(5).saturating_duration_since(Instant::from_millis(9)), Duration::ZERO);
    }
}
