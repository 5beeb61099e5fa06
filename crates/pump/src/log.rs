//! The pump's event log: a fixed ring of `Copy` entries, with a counter per kind that survives
//! overwrite (as in Hubris's ringbuf), so that history is never lost from the totals even when
//! the oldest entries are.
//!
//! # Invariants
//! - Capacity is fixed at implant (the profile's `log.capacity`); the log never grows.
//! - Sequence numbers start at 1 and increase by one per entry, with no gaps.
//! - `counts[kind]` is the number of entries of that kind ever written.

use itb_dose::{Concentration, Mass, Volume};

use crate::alarm::AlarmKind;
use crate::command::RefusalCode;
use crate::time::PumpTime;

/// What happened. Small and `Copy`: full prescriptions live in the therapy history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Event {
    /// The pump was implanted and started.
    Implanted,
    /// A therapy was programmed: its program number in the therapy history and its largest
    /// daily dose in nanograms.
    TherapyProgrammed {
        /// Index in the therapy history.
        program: u64,
        /// Largest daily dose, nanograms.
        max_day_ng: u64,
    },
    /// The clinician stopped the pump.
    Stopped,
    /// The clinician resumed the programmed therapy.
    Resumed,
    /// The reservoir was refilled (as the firmware was told).
    Refilled {
        /// Volume the firmware expected to be withdrawn, nanolitres.
        expected_nl: u64,
        /// Volume now in the reservoir, nanolitres.
        filled_nl: u64,
        /// Concentration, nanograms per mL.
        ng_per_ml: u64,
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
}

/// The kind of an [`Event`], without its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum EventKind {
    Implanted,
    TherapyProgrammed,
    Stopped,
    Resumed,
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
}

impl EventKind {
    /// Number of kinds.
    pub const COUNT: usize = 22;
    /// Every kind, in order.
    pub const ALL: [EventKind; Self::COUNT] = [
        EventKind::Implanted,
        EventKind::TherapyProgrammed,
        EventKind::Stopped,
        EventKind::Resumed,
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
    ];
    /// The name used in files and on screens.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Implanted => "implanted",
            EventKind::TherapyProgrammed => "therapy_programmed",
            EventKind::Stopped => "stopped",
            EventKind::Resumed => "resumed",
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
        }
    }
}

impl Event {
    /// The event in a sentence, for logs, timelines and the programmer's screen.
    pub fn describe(&self) -> String {
        let volume = |nl: u64| Volume::nl(nl);
        match self {
            Event::Implanted => "pump implanted".to_owned(),
            Event::TherapyProgrammed { program, max_day_ng } => {
                format!("therapy {program} programmed: up to {} a day", Mass::ng(*max_day_ng))
            }
            Event::Stopped => "pump stopped by the clinician".to_owned(),
            Event::Resumed => "therapy resumed".to_owned(),
            Event::Refilled { expected_nl, filled_nl, ng_per_ml } => format!(
                "refilled: {} of {} (the pump had expected {} left)",
                volume(*filled_nl),
                Concentration::ng_per_ml(*ng_per_ml),
                volume(*expected_nl)
            ),
            Event::BridgeStarted { volume_nl } => {
                format!("bridge bolus: {} of old drug pushed out at the old rate", volume(*volume_nl))
            }
            Event::BridgeEnded => "bridge bolus ended: new concentration's rate".to_owned(),
            Event::SingleBolusStarted { dose_ng } => format!("single bolus of {}", Mass::ng(*dose_ng)),
            Event::PrimingStarted { volume_nl } => format!("priming bolus of {}", volume(*volume_nl)),
            Event::BolusEnded => "bolus ended".to_owned(),
            Event::PtmBolus { dose_ng } => format!("PTM bolus of {}", Mass::ng(*dose_ng)),
            Event::PtmRefused { code } => format!("PTM bolus refused ({})", code.as_str()),
            Event::CommandRefused { code } => format!("command refused ({})", code.as_str()),
            Event::ClockSet { before_ms, after_ms } => {
                format!("pump clock set from {} to {}", PumpTime::from_ms(*before_ms), PumpTime::from_ms(*after_ms))
            }
            Event::AlarmThresholdSet { threshold_nl } => {
                format!("low-reservoir alarm threshold set to {}", volume(*threshold_nl))
            }
            Event::AlarmRaised(kind) => format!("ALARM {}", kind.describe()),
            Event::AlarmCleared(kind) => format!("alarm cleared: {}", kind.as_str()),
            Event::MotorStallDetected => "motor stall detected".to_owned(),
            Event::MotorStallRecovered => "motor running again after the stall".to_owned(),
            Event::EndOfService => "END OF SERVICE: delivery stopped for good".to_owned(),
            Event::LowBatteryReset => "low-battery reset: delivery stopped".to_owned(),
            Event::MemoryError { critical: true } => "critical memory error: delivery stopped".to_owned(),
            Event::MemoryError { critical: false } => "memory error".to_owned(),
        }
    }

    /// A short category for timelines: implant, program, refill, bolus, ptm, alarm, ...
    pub fn category(&self) -> &'static str {
        match self {
            Event::Implanted => "implant",
            Event::TherapyProgrammed { .. } => "program",
            Event::Stopped => "stop",
            Event::Resumed => "resume",
            Event::Refilled { .. } => "refill",
            Event::BridgeStarted { .. } | Event::BridgeEnded => "bridge",
            Event::SingleBolusStarted { .. } | Event::PrimingStarted { .. } | Event::BolusEnded => "bolus",
            Event::PtmBolus { .. } => "ptm",
            Event::PtmRefused { .. } | Event::CommandRefused { .. } => "refused",
            Event::ClockSet { .. } => "clock",
            Event::AlarmThresholdSet { .. } | Event::AlarmRaised(_) | Event::AlarmCleared(_) => "alarm",
            Event::MotorStallDetected | Event::MotorStallRecovered => "motor",
            Event::EndOfService | Event::LowBatteryReset => "battery",
            Event::MemoryError { .. } => "memory",
        }
    }
}

/// One entry of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LogEntry {
    /// Sequence number, from 1.
    pub seq: u64,
    /// The pump's clock when it happened.
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
