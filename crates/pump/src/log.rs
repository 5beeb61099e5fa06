//! The pump's event log: a fixed ring of `Copy` entries, with a counter per kind that survives
//! overwrite (as in Hubris's ringbuf), so that history is never lost from the totals even when
//! the oldest entries are.
//!
//! # Invariants
//! - Capacity is fixed at implant (the profile's `log.capacity`); the log never grows.
//! - Sequence numbers start at 1 and increase by one per entry, with no gaps.
//! - `counts[kind]` is the number of entries of that kind ever written.

use itb_dose::prescription::Mode;
use itb_dose::{Concentration, Mass, Volume, text};

use crate::alarm::AlarmKind;
use crate::command::{Actor, RefusalCode};
use crate::text::LogText;
use crate::time::PumpTime;

/// What happened. Small and `Copy`: full prescriptions live in the therapy history.
///
/// # Representation
/// With the `serde` feature an event is externally tagged in snake_case, as the wire carries it:
/// a unit variant is its name (`"implanted"`), any other a map of its name to its fields
/// (`{"therapy_programmed": {"program": 2, "mode": "flex", ...}}`) or, for an alarm, to the
/// alarm's name (`{"alarm_raised": "low_reservoir"}`). Field names carry their units
/// (`_ng`, `_nl`, `_ms`, `_ng_per_ml`). The tag is the [`EventKind`]'s name. This is part of
/// the link protocol: change it only with a new protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case", deny_unknown_fields)
)]
pub enum Event {
    /// The pump was implanted and started.
    Implanted,
    /// A therapy was programmed: its number in the therapy history, its mode, its largest daily
    /// dose, the largest daily dose of the therapy it replaced, and who programmed it.
    TherapyProgrammed {
        /// Number in the therapy history, from 1.
        program: u64,
        /// Its mode.
        mode: Mode,
        /// Largest daily dose, nanograms.
        max_day_ng: u64,
        /// Largest daily dose of the therapy it replaced, nanograms (0 at implant).
        previous_max_day_ng: u64,
        /// Largest daily dose with every PTM bolus allowed taken, nanograms.
        worst_case_day_ng: u64,
        /// The same of the therapy it replaced, nanograms (0 at implant).
        previous_worst_case_day_ng: u64,
        /// Some day of the week, or the worst case with every PTM bolus, gets more drug than
        /// under the therapy it replaced: an increase, for the rule of one in 24 hours.
        raised: bool,
        /// Who programmed it (the implant's own programming is [`Actor::Implant`]).
        by: Actor,
    },
    /// The clinician stopped the pump.
    Stopped,
    /// The clinician resumed the programmed therapy.
    Resumed,
    /// The refill's first step: what was withdrawn from the reservoir (as the firmware was told).
    ReservoirWithdrawn {
        /// Volume withdrawn, as measured, nanolitres.
        withdrawn_nl: u64,
        /// Volume the firmware expected in the reservoir, nanolitres.
        expected_nl: u64,
    },
    /// The reservoir was refilled (as the firmware was told).
    Refilled {
        /// Volume the firmware expected in the reservoir, nanolitres (0 after a recorded
        /// withdrawal).
        expected_nl: u64,
        /// Volume now in the reservoir, nanolitres.
        filled_nl: u64,
        /// Concentration, nanograms per mL.
        concentration_ng_per_ml: u64,
    },
    /// A bridge bolus started after a concentration change.
    BridgeStarted {
        /// Dead volume to push, nanolitres.
        volume_nl: u64,
    },
    /// The bridge bolus ended; the new concentration's rates apply.
    BridgeEnded,
    /// A clinician's single bolus started.
    SingleBolusStarted {
        /// Dose, nanograms.
        dose_ng: u64,
    },
    /// A priming bolus started.
    PrimingStarted {
        /// Volume, nanolitres.
        volume_nl: u64,
    },
    /// A single or priming bolus ended.
    BolusEnded,
    /// A PTM bolus started.
    PtmBolus {
        /// Dose, nanograms.
        dose_ng: u64,
    },
    /// A PTM request was refused, and why.
    PtmRefused {
        /// The reason.
        code: RefusalCode,
    },
    /// Another command was refused, and why.
    CommandRefused {
        /// The reason.
        code: RefusalCode,
    },
    /// The clock was set: the reading before and after, pump-clock milliseconds.
    ClockSet {
        /// Before.
        before_ms: i64,
        /// After.
        after_ms: i64,
    },
    /// The low-reservoir alarm threshold was set, nanolitres.
    AlarmThresholdSet {
        /// The new threshold.
        threshold_nl: u64,
    },
    /// An alarm was raised.
    AlarmRaised(AlarmKind),
    /// An alarm was cleared (by the clinician or because its cause ended).
    AlarmCleared(AlarmKind),
    /// The motor stalled and the firmware noticed.
    MotorStallDetected,
    /// The motor runs again after a stall.
    MotorStallRecovered,
    /// End of service: delivery stopped for good.
    EndOfService,
    /// The battery reset: the pump stopped and needs programming.
    LowBatteryReset,
    /// A memory error was found.
    MemoryError {
        /// True for a critical error (delivery stopped).
        critical: bool,
    },
    /// The clinician's written reason for the change logged just before.
    ClinicianReason {
        /// The reason, as written.
        reason: LogText,
    },
}

/// The kind of an [`Event`], without its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum EventKind {
    Implanted,
    TherapyProgrammed,
    Stopped,
    Resumed,
    ReservoirWithdrawn,
    Refilled,
    BridgeStarted,
    BridgeEnded,
    SingleBolusStarted,
    PrimingStarted,
    BolusEnded,
    PtmBolus,
    PtmRefused,
    CommandRefused,
    ClockSet,
    AlarmThresholdSet,
    AlarmRaised,
    AlarmCleared,
    MotorStallDetected,
    MotorStallRecovered,
    EndOfService,
    LowBatteryReset,
    MemoryError,
    ClinicianReason,
}

impl EventKind {
    /// Number of kinds.
    pub const COUNT: usize = 24;
    /// Every kind, in order.
    pub const ALL: [EventKind; Self::COUNT] = [
        EventKind::Implanted,
        EventKind::TherapyProgrammed,
        EventKind::Stopped,
        EventKind::Resumed,
        EventKind::ReservoirWithdrawn,
        EventKind::Refilled,
        EventKind::BridgeStarted,
        EventKind::BridgeEnded,
        EventKind::SingleBolusStarted,
        EventKind::PrimingStarted,
        EventKind::BolusEnded,
        EventKind::PtmBolus,
        EventKind::PtmRefused,
        EventKind::CommandRefused,
        EventKind::ClockSet,
        EventKind::AlarmThresholdSet,
        EventKind::AlarmRaised,
        EventKind::AlarmCleared,
        EventKind::MotorStallDetected,
        EventKind::MotorStallRecovered,
        EventKind::EndOfService,
        EventKind::LowBatteryReset,
        EventKind::MemoryError,
        EventKind::ClinicianReason,
    ];
    /// The name used in files and on screens.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Implanted => "implanted",
            EventKind::TherapyProgrammed => "therapy_programmed",
            EventKind::Stopped => "stopped",
            EventKind::Resumed => "resumed",
            EventKind::ReservoirWithdrawn => "reservoir_withdrawn",
            EventKind::Refilled => "refilled",
            EventKind::BridgeStarted => "bridge_started",
            EventKind::BridgeEnded => "bridge_ended",
            EventKind::SingleBolusStarted => "single_bolus_started",
            EventKind::PrimingStarted => "priming_started",
            EventKind::BolusEnded => "bolus_ended",
            EventKind::PtmBolus => "ptm_bolus",
            EventKind::PtmRefused => "ptm_refused",
            EventKind::CommandRefused => "command_refused",
            EventKind::ClockSet => "clock_set",
            EventKind::AlarmThresholdSet => "alarm_threshold_set",
            EventKind::AlarmRaised => "alarm_raised",
            EventKind::AlarmCleared => "alarm_cleared",
            EventKind::MotorStallDetected => "motor_stall_detected",
            EventKind::MotorStallRecovered => "motor_stall_recovered",
            EventKind::EndOfService => "end_of_service",
            EventKind::LowBatteryReset => "low_battery_reset",
            EventKind::MemoryError => "memory_error",
            EventKind::ClinicianReason => "clinician_reason",
        }
    }
    fn index(self) -> usize {
        self as usize
    }
}

impl Event {
    /// The event's kind.
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Implanted => EventKind::Implanted,
            Event::TherapyProgrammed { .. } => EventKind::TherapyProgrammed,
            Event::Stopped => EventKind::Stopped,
            Event::Resumed => EventKind::Resumed,
            Event::ReservoirWithdrawn { .. } => EventKind::ReservoirWithdrawn,
            Event::Refilled { .. } => EventKind::Refilled,
            Event::BridgeStarted { .. } => EventKind::BridgeStarted,
            Event::BridgeEnded => EventKind::BridgeEnded,
            Event::SingleBolusStarted { .. } => EventKind::SingleBolusStarted,
            Event::PrimingStarted { .. } => EventKind::PrimingStarted,
            Event::BolusEnded => EventKind::BolusEnded,
            Event::PtmBolus { .. } => EventKind::PtmBolus,
            Event::PtmRefused { .. } => EventKind::PtmRefused,
            Event::CommandRefused { .. } => EventKind::CommandRefused,
            Event::ClockSet { .. } => EventKind::ClockSet,
            Event::AlarmThresholdSet { .. } => EventKind::AlarmThresholdSet,
            Event::AlarmRaised(_) => EventKind::AlarmRaised,
            Event::AlarmCleared(_) => EventKind::AlarmCleared,
            Event::MotorStallDetected => EventKind::MotorStallDetected,
            Event::MotorStallRecovered => EventKind::MotorStallRecovered,
            Event::EndOfService => EventKind::EndOfService,
            Event::LowBatteryReset => EventKind::LowBatteryReset,
            Event::MemoryError { .. } => EventKind::MemoryError,
            Event::ClinicianReason { .. } => EventKind::ClinicianReason,
        }
    }
}

impl Event {
    /// The event in a sentence for people, for logs, timelines and the programmer's screen:
    /// words rather than code names, quantities rounded as `itb_dose::text` rounds them
    /// (volumes to 0.01 mL, doses to 0.01 micrograms), pump-clock readings as `Wed 25 Nov 2026
    /// 10:00`. The exact figures are in the entry's fields.
    pub fn describe(&self) -> String {
        let volume = |nl: u64| text::volume(Volume::nl(nl));
        let mass = |ng: u64| text::mass(Mass::ng(ng));
        let reading = |ms: i64| PumpTime::from_ms(ms).to_people();
        match self {
            Event::Implanted => "pump implanted".to_owned(),
            Event::TherapyProgrammed {
                program, mode, max_day_ng, previous_max_day_ng, worst_case_day_ng, by, ..
            } => {
                let with_ptm = if worst_case_day_ng > max_day_ng {
                    format!(" ({} with every PTM bolus)", mass(*worst_case_day_ng))
                } else {
                    String::new()
                };
                let what = format!("{}, up to {} a day{with_ptm}", mode.describe(), mass(*max_day_ng));
                match by {
                    Actor::Implant => format!("therapy {program} programmed at implant: {what}"),
                    by => format!(
                        "therapy {program} programmed by {}: {what} (was up to {} a day)",
                        by.describe(),
                        mass(*previous_max_day_ng)
                    ),
                }
            }
            Event::Stopped => "pump stopped: nothing is delivered until it is resumed".to_owned(),
            Event::Resumed => "therapy resumed".to_owned(),
            Event::ReservoirWithdrawn { withdrawn_nl, expected_nl } => format!(
                "reservoir emptied for a refill: {} withdrawn (the pump had expected {})",
                volume(*withdrawn_nl),
                volume(*expected_nl)
            ),
            Event::Refilled { expected_nl, filled_nl, concentration_ng_per_ml } => format!(
                "refilled with {} of {} (the pump had expected {} left)",
                volume(*filled_nl),
                text::concentration(Concentration::ng_per_ml(*concentration_ng_per_ml)),
                volume(*expected_nl)
            ),
            Event::BridgeStarted { volume_nl } => {
                format!("bridge bolus: {} of old drug pushed out at the old rate", volume(*volume_nl))
            }
            Event::BridgeEnded => "bridge bolus ended: the new concentration's rate applies".to_owned(),
            Event::SingleBolusStarted { dose_ng } => format!("single bolus of {}", mass(*dose_ng)),
            Event::PrimingStarted { volume_nl } => format!("priming bolus of {}", volume(*volume_nl)),
            Event::BolusEnded => "bolus ended".to_owned(),
            Event::PtmBolus { dose_ng } => format!("PTM bolus of {}", mass(*dose_ng)),
            Event::PtmRefused { code } => format!("PTM bolus refused: {}", code.describe()),
            Event::CommandRefused { code } => format!("command refused: {}", code.describe()),
            Event::ClockSet { before_ms, after_ms } => {
                format!("pump clock set from {} to {}", reading(*before_ms), reading(*after_ms))
            }
            Event::AlarmThresholdSet { threshold_nl } => {
                format!("low-reservoir alarm threshold set to {}", volume(*threshold_nl))
            }
            Event::AlarmRaised(kind) => format!("ALARM {}", kind.describe()),
            Event::AlarmCleared(kind) => format!("alarm cleared: {}", kind.label()),
            Event::MotorStallDetected => "motor stall detected".to_owned(),
            Event::MotorStallRecovered => "motor running again after the stall".to_owned(),
            Event::EndOfService => "END OF SERVICE: delivery stopped for good".to_owned(),
            Event::LowBatteryReset => "low-battery reset: delivery stopped".to_owned(),
            Event::MemoryError { critical: true } => "critical memory error: delivery stopped".to_owned(),
            Event::MemoryError { critical: false } => "memory error".to_owned(),
            Event::ClinicianReason { reason } => format!("clinician's reason: {reason}"),
        }
    }

    /// A short category for timelines: implant, program, refill, bolus, ptm, alarm, ...
    pub fn category(&self) -> &'static str {
        match self {
            Event::Implanted => "implant",
            Event::TherapyProgrammed { .. } => "program",
            Event::Stopped => "stop",
            Event::Resumed => "resume",
            Event::ReservoirWithdrawn { .. } | Event::Refilled { .. } => "refill",
            Event::BridgeStarted { .. } | Event::BridgeEnded => "bridge",
            Event::SingleBolusStarted { .. } | Event::PrimingStarted { .. } | Event::BolusEnded => "bolus",
            Event::PtmBolus { .. } => "ptm",
            Event::PtmRefused { .. } | Event::CommandRefused { .. } => "refused",
            Event::ClockSet { .. } => "clock",
            Event::AlarmThresholdSet { .. } | Event::AlarmRaised(_) | Event::AlarmCleared(_) => "alarm",
            Event::MotorStallDetected | Event::MotorStallRecovered => "motor",
            Event::EndOfService | Event::LowBatteryReset => "battery",
            Event::MemoryError { .. } => "memory",
            Event::ClinicianReason { .. } => "reason",
        }
    }
}

/// One entry of the log: with `serde`, `{"seq": .., "pump_time_ms": .., "event": ..}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LogEntry {
    /// Sequence number, from 1.
    pub seq: u64,
    /// The pump's clock when it happened (milliseconds of its wall clock).
    #[cfg_attr(feature = "serde", serde(rename = "pump_time_ms"))]
    pub at: PumpTime,
    /// What happened.
    pub event: Event,
}

/// The bounded event log.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct EventLog {
    entries: Vec<LogEntry>,
    capacity: usize,
    /// Index of the oldest entry once the ring is full.
    head: usize,
    next_seq: u64,
    counts: [u64; EventKind::COUNT],
}

impl EventLog {
    /// An empty log of `capacity` entries (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self { entries: Vec::with_capacity(capacity), capacity, head: 0, next_seq: 1, counts: [0; EventKind::COUNT] }
    }
    /// Appends an entry, overwriting the oldest when full.
    pub fn push(&mut self, at: PumpTime, event: Event) {
        let entry = LogEntry { seq: self.next_seq, at, event };
        self.next_seq += 1;
        self.counts[event.kind().index()] += 1;
        if self.entries.len() < self.capacity {
            self.entries.push(entry);
        } else {
            self.entries[self.head] = entry;
            self.head = (self.head + 1) % self.capacity;
        }
        debug_assert!(self.entries.len() <= self.capacity);
    }
    /// Entries oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &LogEntry> {
        let (newer, older) = self.entries.split_at(self.head);
        older.iter().chain(newer.iter())
    }
    /// At most `max` entries with sequence number `from` or later, oldest first.
    pub fn read_from(&self, from: u64, max: usize) -> Vec<LogEntry> {
        self.iter().filter(|e| e.seq >= from).take(max).copied().collect()
    }
    /// The entries held with a sequence number after `seq`, oldest first, found by ring
    /// arithmetic: the cost is the number of entries returned, not the log's length (a reader
    /// that polls after every event keeps the last number it saw). Entries already overwritten
    /// are not there; the first one returned then has a number above `seq + 1`.
    pub fn since(&self, seq: u64) -> impl Iterator<Item = &LogEntry> {
        let held = self.entries.len();
        let oldest = self.next_seq.saturating_sub(held as u64);
        let skip = usize::try_from(seq.saturating_add(1).saturating_sub(oldest)).unwrap_or(usize::MAX).min(held);
        let (newer, older) = self.entries.split_at(self.head);
        let (first, second) = match older.get(skip..) {
            Some(rest) => (rest, newer),
            None => (&older[..0], newer.get(skip - older.len()..).unwrap_or(&[])),
        };
        first.iter().chain(second.iter())
    }
    /// Entries held now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    /// True when nothing has been logged.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// The fixed capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
    /// Entries of `kind` ever written, including those overwritten.
    pub fn count(&self, kind: EventKind) -> u64 {
        self.counts[kind.index()]
    }
    /// The sequence number the next entry will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Checks the invariants of a log read back from a snapshot: the capacity is `capacity`,
    /// the ring is within it, sequence numbers run without gaps to `next_seq`, and the counters
    /// cover every entry ever written.
    #[cfg(feature = "serde")]
    pub(crate) fn check_restored(&self, capacity: usize) -> Result<(), String> {
        if self.capacity != capacity {
            return Err(format!(
                "the event log holds {} entries but the device profile says {capacity}",
                self.capacity
            ));
        }
        let full = self.entries.len() == self.capacity;
        if self.entries.len() > self.capacity || (full && self.head >= self.capacity) || (!full && self.head != 0) {
            return Err(format!(
                "the event log's ring is out of bounds ({} entries, oldest at {}, capacity {})",
                self.entries.len(),
                self.head,
                self.capacity
            ));
        }
        let written = self.next_seq.checked_sub(1).ok_or("the event log's next sequence number is 0")?;
        let held_len = self.entries.len() as u64;
        let gap = || "the event log's sequence numbers have a gap or do not end at the next one".to_owned();
        if written < held_len {
            return Err(gap());
        }
        let first = written + 1 - held_len;
        if !self.iter().zip(first..).all(|(entry, seq)| entry.seq == seq) {
            return Err(gap());
        }
        let counted = self.counts.iter().try_fold(0u64, |sum, count| sum.checked_add(*count));
        let mut held = [0u64; EventKind::COUNT];
        for entry in &self.entries {
            held[entry.event.kind().index()] += 1;
        }
        if counted != Some(written) || self.counts.iter().zip(held).any(|(count, held)| *count < held) {
            return Err("the event log's counters do not match its entries".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_reads_as_words() {
        let reason = LogText::new("agreed with Dr Okafor").expect("valid");
        let programmed = |by| Event::TherapyProgrammed {
            program: 2,
            mode: Mode::SimpleContinuous,
            max_day_ng: 440_123,
            previous_max_day_ng: 400_000,
            worst_case_day_ng: 440_123,
            previous_worst_case_day_ng: 400_000,
            raised: true,
            by,
        };
        let examples = [
            (Event::Implanted, "pump implanted"),
            (
                Event::TherapyProgrammed {
                    program: 1,
                    mode: Mode::PeriodicBolus,
                    max_day_ng: 400_000,
                    previous_max_day_ng: 0,
                    worst_case_day_ng: 400_000,
                    previous_worst_case_day_ng: 0,
                    raised: true,
                    by: Actor::Implant,
                },
                "therapy 1 programmed at implant: periodic bolus, up to 400 micrograms a day",
            ),
            (
                programmed(Actor::Clinician),
                "therapy 2 programmed by the clinician: simple continuous, up to 440.12 micrograms a day \
                 (was up to 400 micrograms a day)",
            ),
            (
                Event::ReservoirWithdrawn { withdrawn_nl: 13_951_234, expected_nl: 14_000_000 },
                "reservoir emptied for a refill: 13.95 mL withdrawn (the pump had expected 14 mL)",
            ),
            (
                Event::Refilled { expected_nl: 1_234_567, filled_nl: 20_000_000, concentration_ng_per_ml: 2_000_000 },
                "refilled with 20 mL of 2000 micrograms/mL (the pump had expected 1.23 mL left)",
            ),
            (
                Event::PtmRefused { code: RefusalCode::PtmLockout },
                "PTM bolus refused: within the lockout after the last bolus",
            ),
            (Event::CommandRefused { code: RefusalCode::ReservoirEmpty }, "command refused: the reservoir is empty"),
            (
                Event::ClockSet { before_ms: 1_795_600_800_000, after_ms: 1_795_604_400_000 },
                "pump clock set from Wed 25 Nov 2026 10:00 to Wed 25 Nov 2026 11:00",
            ),
            (Event::AlarmRaised(AlarmKind::LowReservoir), "ALARM low reservoir: the pump needs a refill soon"),
            (Event::AlarmCleared(AlarmKind::ElectiveReplacement), "alarm cleared: elective replacement indicator"),
            (Event::SingleBolusStarted { dose_ng: 50_000 }, "single bolus of 50 micrograms"),
            (Event::PrimingStarted { volume_nl: 310_000 }, "priming bolus of 0.31 mL"),
            (Event::ClinicianReason { reason }, "clinician's reason: agreed with Dr Okafor"),
        ];
        for (event, words) in &examples {
            assert_eq!(event.describe(), *words);
        }
        // No code names anywhere: every code and alarm, every actor, every other event.
        let mut all: Vec<Event> = RefusalCode::ALL
            .iter()
            .flat_map(|&code| [Event::PtmRefused { code }, Event::CommandRefused { code }])
            .chain(AlarmKind::ALL.iter().flat_map(|&kind| [Event::AlarmRaised(kind), Event::AlarmCleared(kind)]))
            .chain([Actor::Clinician, Actor::Patient, Actor::Simulator, Actor::Implant].map(programmed))
            .collect();
        all.extend([
            Event::Stopped,
            Event::Resumed,
            Event::BridgeStarted { volume_nl: 310_000 },
            Event::BridgeEnded,
            Event::BolusEnded,
            Event::PtmBolus { dose_ng: 25_000 },
            Event::AlarmThresholdSet { threshold_nl: 2_000_000 },
            Event::MotorStallDetected,
            Event::MotorStallRecovered,
            Event::EndOfService,
            Event::LowBatteryReset,
            Event::MemoryError { critical: true },
            Event::MemoryError { critical: false },
        ]);
        all.extend(examples.iter().map(|(event, _)| *event));
        let kinds: std::collections::HashSet<EventKind> = all.iter().map(Event::kind).collect();
        assert_eq!(kinds.len(), EventKind::COUNT, "every kind of event");
        for event in all {
            let words = event.describe();
            assert!(!words.contains('_') && !words.contains("ng_") && !words.contains(" nL"), "{event:?}: {words}");
        }
    }

    #[test]
    fn ring_keeps_the_newest_and_counts_everything() {
        let mut log = EventLog::new(3);
        for i in 0..5 {
            log.push(PumpTime::from_ms(i), if i % 2 == 0 { Event::Stopped } else { Event::Resumed });
        }
        assert_eq!(log.len(), 3);
        let seqs: Vec<u64> = log.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![3, 4, 5]);
        assert_eq!(log.count(EventKind::Stopped), 3);
        assert_eq!(log.count(EventKind::Resumed), 2);
        assert_eq!(log.read_from(4, 10).len(), 2);
        assert_eq!(log.read_from(1, 2).iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3, 4]);
        for (index, kind) in EventKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), index);
        }
    }

    fn seqs<'a>(entries: impl Iterator<Item = &'a LogEntry>) -> Vec<u64> {
        entries.map(|e| e.seq).collect()
    }

    #[test]
    fn since_gives_the_entries_after_a_sequence_number() {
        let mut log = EventLog::new(3);
        assert!(log.since(0).next().is_none());
        log.push(PumpTime::from_ms(0), Event::Stopped);
        log.push(PumpTime::from_ms(1), Event::Resumed);
        assert_eq!(seqs(log.since(0)), vec![1, 2]);
        assert_eq!(seqs(log.since(1)), vec![2]);
        assert!(log.since(2).next().is_none());
        assert!(log.since(99).next().is_none());
        for i in 2..7 {
            log.push(PumpTime::from_ms(i), Event::Stopped);
        }
        // Entries 5, 6 and 7 are held; the ring's oldest is in the middle of its storage.
        assert_eq!(seqs(log.since(0)), vec![5, 6, 7]);
        assert_eq!(seqs(log.since(5)), vec![6, 7]);
        assert_eq!(seqs(log.since(6)), vec![7]);
        assert!(log.since(7).next().is_none());
        assert_eq!(seqs(log.since(4)), vec![5, 6, 7]);
    }

    proptest::proptest! {
        /// `since(seq)` is `read_from(seq + 1, ..)` for every ring state and every `seq`.
        #[test]
        fn since_agrees_with_read_from(capacity in 1usize..8, pushes in 0u64..30, seq in 0u64..34) {
            let mut log = EventLog::new(capacity);
            for i in 0..pushes {
                log.push(PumpTime::from_ms(i as i64), Event::Stopped);
            }
            let fast: Vec<LogEntry> = log.since(seq).copied().collect();
            proptest::prop_assert_eq!(fast, log.read_from(seq + 1, usize::MAX));
        }
    }
}
