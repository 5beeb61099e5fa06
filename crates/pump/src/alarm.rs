//! Alarms: what raises them, how they sound, how they end.
//!
//! Critical alarms (two-tone) and non-critical (single tone) repeat at the profile's intervals
//! from the moment they are raised until their cause ends or the clinician clears them.

use itb_dose::Duration;

use crate::time::Instant;

/// The alarms a pump can raise. With `serde`, each is its [`AlarmKind::as_str`] name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "snake_case"))]
pub enum AlarmKind {
    /// The reservoir estimate is at or below the programmed threshold.
    LowReservoir,
    /// The reservoir estimate is empty.
    EmptyReservoir,
    /// Elective Replacement Indicator: the battery will end within the warning period.
    #[cfg_attr(feature = "serde", serde(rename = "elective_replacement_indicator"))]
    ElectiveReplacement,
    /// End of Service: the pump has stopped for good.
    EndOfService,
    /// The motor stalled.
    MotorStall,
    /// A critical memory error: delivery stopped.
    CriticalMemoryError,
    /// A non-critical memory error.
    MemoryError,
    /// The battery reset: delivery stopped until the pump is programmed again.
    LowBatteryReset,
}

/// How an alarm sounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Two-tone, repeated often.
    Critical,
    /// Single tone, about hourly.
    NonCritical,
}

impl AlarmKind {
    /// Every alarm, in order.
    pub const ALL: [AlarmKind; 8] = [
        AlarmKind::LowReservoir,
        AlarmKind::EmptyReservoir,
        AlarmKind::ElectiveReplacement,
        AlarmKind::EndOfService,
        AlarmKind::MotorStall,
        AlarmKind::CriticalMemoryError,
        AlarmKind::MemoryError,
        AlarmKind::LowBatteryReset,
    ];
    /// Critical or not (docs/DOMAIN.md).
    pub fn severity(self) -> Severity {
        match self {
            AlarmKind::EmptyReservoir
            | AlarmKind::EndOfService
            | AlarmKind::MotorStall
            | AlarmKind::CriticalMemoryError
            | AlarmKind::LowBatteryReset => Severity::Critical,
            AlarmKind::LowReservoir | AlarmKind::ElectiveReplacement | AlarmKind::MemoryError => Severity::NonCritical,
        }
    }
    /// The name used in files and on screens.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmKind::LowReservoir => "low_reservoir",
            AlarmKind::EmptyReservoir => "empty_reservoir",
            AlarmKind::ElectiveReplacement => "elective_replacement_indicator",
            AlarmKind::EndOfService => "end_of_service",
            AlarmKind::MotorStall => "motor_stall",
            AlarmKind::CriticalMemoryError => "critical_memory_error",
            AlarmKind::MemoryError => "memory_error",
            AlarmKind::LowBatteryReset => "low_battery_reset",
        }
    }
    /// The alarm's name in words: `low reservoir`.
    pub fn label(self) -> &'static str {
        match self {
            AlarmKind::LowReservoir => "low reservoir",
            AlarmKind::EmptyReservoir => "empty reservoir",
            AlarmKind::ElectiveReplacement => "elective replacement indicator",
            AlarmKind::EndOfService => "end of service",
            AlarmKind::MotorStall => "motor stall",
            AlarmKind::CriticalMemoryError => "critical memory error",
            AlarmKind::MemoryError => "memory error",
            AlarmKind::LowBatteryReset => "low-battery reset",
        }
    }
    /// Reads a name written by [`AlarmKind::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
    /// What a person should know.
    pub fn describe(self) -> &'static str {
        match self {
            AlarmKind::LowReservoir => "low reservoir: the pump needs a refill soon",
            AlarmKind::EmptyReservoir => "empty reservoir: no drug is being delivered; risk of withdrawal",
            AlarmKind::ElectiveReplacement => "elective replacement indicator: plan the pump's replacement",
            AlarmKind::EndOfService => "end of service: the pump has stopped; risk of withdrawal",
            AlarmKind::MotorStall => "motor stall: delivery may have stopped; interrogate the pump",
            AlarmKind::CriticalMemoryError => "critical memory error: delivery stopped; reprogram the pump",
            AlarmKind::MemoryError => "memory error: interrogate the pump",
            AlarmKind::LowBatteryReset => "low-battery reset: delivery stopped; reprogram the pump",
        }
    }
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// An alarm that is sounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ActiveAlarm {
    /// Which.
    pub kind: AlarmKind,
    /// When it was raised.
    pub raised_at: Instant,
    /// When it sounds next.
    pub next_tone_at: Instant,
    /// Tones sounded so far.
    pub tones: u64,
}

/// The set of active alarms, one slot per kind.
#[derive(Debug, Clone, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Alarms {
    slots: [Option<ActiveAlarm>; 8],
}

impl Alarms {
    /// Raises `kind` at `at` unless it is already active; true when newly raised. The first
    /// tone sounds at once.
    pub fn raise(&mut self, kind: AlarmKind, at: Instant) -> bool {
        let slot = &mut self.slots[kind.index()];
        if slot.is_some() {
            return false;
        }
        *slot = Some(ActiveAlarm { kind, raised_at: at, next_tone_at: at, tones: 0 });
        true
    }
    /// Ends `kind`; true if it was active.
    pub fn clear(&mut self, kind: AlarmKind) -> bool {
        self.slots[kind.index()].take().is_some()
    }
    /// True if `kind` is active.
    pub fn is_active(&self, kind: AlarmKind) -> bool {
        self.slots[kind.index()].is_some()
    }
    /// The active alarms.
    pub fn active(&self) -> impl Iterator<Item = &ActiveAlarm> {
        self.slots.iter().flatten()
    }
    /// True when every active alarm is in its own kind's slot (a snapshot check).
    #[cfg(feature = "serde")]
    pub(crate) fn slots_hold_their_kinds(&self) -> bool {
        self.slots.iter().enumerate().all(|(index, slot)| slot.is_none_or(|alarm| alarm.kind.index() == index))
    }
    /// The next tone of any alarm.
    pub fn next_tone_at(&self) -> Option<Instant> {
        self.active().map(|a| a.next_tone_at).min()
    }
    /// Sounds every tone due at `now`; returns how many sounded.
    pub fn sound_due(&mut self, now: Instant, critical_every: Duration, non_critical_every: Duration) -> u64 {
        let mut sounded = 0;
        for alarm in self.slots.iter_mut().flatten() {
            if alarm.next_tone_at <= now {
                let every = match alarm.kind.severity() {
                    Severity::Critical => critical_every,
                    Severity::NonCritical => non_critical_every,
                };
                alarm.tones += 1;
                sounded += 1;
                alarm.next_tone_at = alarm.next_tone_at.plus(every).max(now.plus(Duration::ms(1)));
            }
        }
        sounded
    }
}
