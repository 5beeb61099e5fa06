//! What an interrogation reads, as typed values, with the figures the service's rules derive
//! from it (largest day, worst case with PTM, the low-reservoir alarm and refill-due dates).

use itb_dose::review::{Figures, PumpSide, RefillPolicy, figures};
use itb_dose::{Concentration, Duration, Prescription, Volume, VolumeRate};
use itb_link::message::StatusInfo;
use itb_pump::{AlarmKind, DeliveryState, Severity};
use jiff::Timestamp;
use jiff::civil::DateTime;

use crate::error::ProgrammerError;

/// An active alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alarm {
    /// Which.
    pub kind: AlarmKind,
    /// Critical (two-tone) or not.
    pub critical: bool,
    /// When it was raised.
    pub raised_at: Timestamp,
}

/// The pump's status as an interrogation reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PumpStatus {
    /// When it was read (true time).
    pub at: Timestamp,
    /// The pump's own clock (a wall clock without a zone).
    pub pump_clock: DateTime,
    /// The pump's clock in milliseconds, as its log records times.
    pub pump_time_ms: i64,
    /// The device profile's name.
    pub profile: String,
    /// Reservoir capacity.
    pub capacity: Volume,
    /// The refill gap above which a refill stops (the profile's).
    pub refill_gap_limit: Volume,
    /// The pump tubing and catheter volume.
    pub dead_volume: Volume,
    /// The pump's estimate of the reservoir.
    pub reservoir: Volume,
    /// When the drug in the reservoir went in (implant or the last refill).
    pub filled_at: Timestamp,
    /// The drug in the reservoir.
    pub concentration: Concentration,
    /// The low-reservoir alarm threshold.
    pub alarm_threshold: Volume,
    /// The old drug was withdrawn and the pump awaits its refill.
    pub awaiting_refill: bool,
    /// While it awaits its refill: the withdrawal as the pump recorded it, with its gap.
    pub withdrawal: Option<crate::Withdrawal>,
    /// The programmed therapy.
    pub prescription: Option<Prescription>,
    /// Its number.
    pub program_number: u64,
    /// What the pump is doing.
    pub state: DeliveryState,
    /// The volume rate now.
    pub rate: VolumeRate,
    /// Active alarms.
    pub alarms: Vec<Alarm>,
    /// The pump knows its motor is stalled.
    pub motor_stalled: bool,
    /// Estimated battery life left.
    pub battery_remaining: Duration,
    /// Replace the pump by (never later than the service life allows).
    pub replace_by: Timestamp,
    /// The Elective Replacement Indicator is on.
    pub elective_replacement: bool,
    /// PTM boluses in the last 24 hours.
    pub ptm_boluses_last_24h: u32,
    /// When the next PTM bolus is allowed, if not now.
    pub ptm_next_allowed_at: Option<Timestamp>,
    /// The next log sequence number.
    pub log_next_seq: u64,
    /// The figures the service's rules derive: largest day, worst case, daily volume, the
    /// low-reservoir alarm and refill-due dates.
    pub figures: Figures,
}

pub(crate) fn timestamp(ms: i64) -> Result<Timestamp, ProgrammerError> {
    Timestamp::from_millisecond(ms)
        .map_err(|_| ProgrammerError::Protocol(format!("the pump sent an instant out of the calendar ({ms} ms)")))
}

pub(crate) fn pump_clock(ms: i64) -> DateTime {
    jiff::tz::TimeZone::UTC.to_datetime(Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// True when the pump in this state delivers its therapy (or a bolus in its place).
pub(crate) fn delivers(state: DeliveryState) -> bool {
    matches!(
        state,
        DeliveryState::Therapy | DeliveryState::Bridge | DeliveryState::SingleBolus | DeliveryState::Priming
    )
}

pub(crate) fn delivery_state(text: &str) -> Result<DeliveryState, ProgrammerError> {
    DeliveryState::parse(text)
        .ok_or_else(|| ProgrammerError::Protocol(format!("the pump reports an unknown state '{text}'")))
}

impl PumpStatus {
    /// Reads the wire status into typed values and derives the figures under `policy`.
    ///
    /// # Errors
    /// [`ProgrammerError::Protocol`] when the pump sends something that is not a valid status.
    pub fn from_wire(info: &StatusInfo, policy: &RefillPolicy) -> Result<Self, ProgrammerError> {
        let prescription = info
            .prescription_toml
            .as_deref()
            .map(itb_dose::toml::from_toml)
            .transpose()
            .map_err(|e| ProgrammerError::Protocol(format!("the pump's therapy cannot be read: {e}")))?;
        let alarms = info
            .alarms
            .iter()
            .map(|a| {
                let kind = AlarmKind::parse(&a.alarm).ok_or_else(|| {
                    ProgrammerError::Protocol(format!("the pump reports an unknown alarm '{}'", a.alarm))
                })?;
                Ok(Alarm {
                    kind,
                    critical: kind.severity() == Severity::Critical,
                    raised_at: timestamp(a.raised_at_ms)?,
                })
            })
            .collect::<Result<Vec<_>, ProgrammerError>>()?;
        let at = timestamp(info.now_ms)?;
        let filled_at = timestamp(info.filled_at_ms)?;
        let state = delivery_state(&info.state)?;
        let side = PumpSide {
            prescription: prescription.clone(),
            concentration: Concentration::ng_per_ml(info.concentration_ng_per_ml),
            reservoir: Volume::nl(info.reservoir_nl),
            alarm_threshold: Volume::nl(info.alarm_threshold_nl),
            filled_at: Some(filled_at),
            delivering: delivers(state) && info.reservoir_nl > 0,
        };
        Ok(Self {
            at,
            pump_clock: pump_clock(info.pump_time_ms),
            pump_time_ms: info.pump_time_ms,
            profile: info.profile.clone(),
            capacity: Volume::nl(info.capacity_nl),
            refill_gap_limit: Volume::nl(info.refill_gap_warning_nl),
            dead_volume: Volume::nl(info.dead_volume_nl),
            reservoir: side.reservoir,
            filled_at,
            concentration: side.concentration,
            alarm_threshold: side.alarm_threshold,
            awaiting_refill: info.awaiting_refill,
            withdrawal: info
                .withdrawal
                .as_ref()
                .map(|w| -> Result<crate::Withdrawal, ProgrammerError> {
                    let (withdrawn, expected) = (Volume::nl(w.withdrawn_nl), Volume::nl(w.expected_nl));
                    let limit = Volume::nl(info.refill_gap_warning_nl);
                    Ok(crate::Withdrawal {
                        withdrawn,
                        expected,
                        at: timestamp(w.at_ms)?,
                        gap: itb_dose::calc::refill_gap::RefillGap::assess(expected, withdrawn, limit),
                    })
                })
                .transpose()?,
            prescription,
            program_number: info.program_number,
            state,
            rate: VolumeRate::nl_per_day(info.rate_nl_per_day),
            alarms,
            motor_stalled: info.motor_stalled,
            battery_remaining: Duration::ms(info.battery_remaining_ms),
            replace_by: timestamp(info.replace_by_ms)?,
            elective_replacement: info.elective_replacement,
            ptm_boluses_last_24h: info.ptm_boluses_last_24h,
            ptm_next_allowed_at: info.ptm_next_allowed_at_ms.map(timestamp).transpose()?,
            log_next_seq: info.log_next_seq,
            figures: figures(&side, at, policy),
        })
    }

    /// The pump as one side of a review.
    pub fn side(&self) -> PumpSide {
        PumpSide {
            prescription: self.prescription.clone(),
            concentration: self.concentration,
            reservoir: self.reservoir,
            alarm_threshold: self.alarm_threshold,
            filled_at: Some(self.filled_at),
            delivering: delivers(self.state) && !self.reservoir.is_zero(),
        }
    }
}
