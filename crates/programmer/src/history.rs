//! The pump's event log as data: entries with their typed events, and the dosing history the
//! titration check reads (never the log's prose).

use itb_dose::DoseRate;
use itb_dose::calc::titrate::DoseHistoryEvent;
use itb_pump::Event;
use jiff::civil::DateTime;

use crate::status::pump_clock;

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Sequence number, from 1.
    pub seq: u64,
    /// The pump's clock when it happened (wall clock, no zone).
    pub pump_clock: DateTime,
    /// The same, in milliseconds.
    pub pump_time_ms: i64,
    /// What happened.
    pub event: Event,
    /// The pump's sentence for it.
    pub text: String,
}

/// A page of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPage {
    /// The entries, oldest first.
    pub entries: Vec<LogEntry>,
    /// The oldest sequence number the pump still holds.
    pub first_seq: u64,
    /// The next sequence number.
    pub next_seq: u64,
}

impl LogEntry {
    pub(crate) fn from_wire(line: &itb_link::message::LogLine) -> Self {
        Self {
            seq: line.seq,
            pump_clock: pump_clock(line.pump_time_ms),
            pump_time_ms: line.pump_time_ms,
            event: line.event,
            text: line.text.clone(),
        }
    }

    /// The entry as dosing history, if it is part of it.
    pub fn dose_history(&self) -> Option<DoseHistoryEvent> {
        let at_pump_ms = self.pump_time_ms;
        match self.event {
            Event::Implanted => Some(DoseHistoryEvent::Implanted { at_pump_ms }),
            Event::TherapyProgrammed { max_day_ng, previous_max_day_ng, raised, .. } => {
                Some(DoseHistoryEvent::Programmed {
                    at_pump_ms,
                    from: DoseRate::ng_per_day(previous_max_day_ng),
                    to: DoseRate::ng_per_day(max_day_ng),
                    raised,
                })
            }
            Event::ClockSet { before_ms, after_ms } => Some(DoseHistoryEvent::ClockSet { before_ms, after_ms }),
            Event::Stopped | Event::LowBatteryReset | Event::EndOfService | Event::MemoryError { critical: true } => {
                Some(DoseHistoryEvent::DeliveryOff { at_pump_ms })
            }
            Event::Resumed => Some(DoseHistoryEvent::DeliveryOn { at_pump_ms }),
            _ => None,
        }
    }
}
