//! The service's clock: the system's, one started at a given instant (training and tests,
//! `itb serve --clock-start`), or one a test moves by hand.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use jiff::Timestamp;

/// Where the service reads the time.
#[derive(Debug, Clone)]
pub enum ServiceClock {
    /// The system clock.
    System,
    /// Starts at `start` when the service starts, then runs at real speed.
    StartedAt {
        /// The first reading.
        start: Timestamp,
        /// The real instant it was read.
        since: std::time::Instant,
    },
    /// Milliseconds since 1970 that a test sets.
    Manual(Arc<AtomicI64>),
}

impl ServiceClock {
    /// A clock that starts at `start` now.
    pub fn starting_at(start: Timestamp) -> Self {
        Self::StartedAt { start, since: std::time::Instant::now() }
    }
    /// A clock a test moves, at `start`.
    pub fn manual(start: Timestamp) -> Self {
        Self::Manual(Arc::new(AtomicI64::new(start.as_millisecond())))
    }
    /// Now.
    pub fn now(&self) -> Timestamp {
        match self {
            Self::System => Timestamp::now(),
            Self::StartedAt { start, since } => {
                let elapsed = jiff::SignedDuration::try_from(since.elapsed()).unwrap_or(jiff::SignedDuration::ZERO);
                start.checked_add(elapsed).unwrap_or(*start)
            }
            Self::Manual(ms) => Timestamp::from_millisecond(ms.load(Ordering::SeqCst)).unwrap_or(Timestamp::UNIX_EPOCH),
        }
    }
    /// Sets a manual clock (no effect on the others).
    pub fn set(&self, at: Timestamp) {
        if let Self::Manual(ms) = self {
            ms.store(at.as_millisecond(), Ordering::SeqCst);
        }
    }
}
