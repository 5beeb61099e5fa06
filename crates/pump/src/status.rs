//! The status a pump reports when interrogated: only what the firmware knows.

use itb_dose::{Concentration, Duration, Prescription, Volume, VolumeRate};

use crate::alarm::ActiveAlarm;
use crate::time::{Instant, PumpTime};

/// What the pump is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum DeliveryState {
    /// Running the programmed therapy.
    Therapy,
    /// Running the therapy at the old concentration until the tubing and catheter are flushed.
    Bridge,
    /// A clinician's single bolus.
    SingleBolus,
    /// Priming the catheter.
    Priming,
    /// Stopped by the clinician.
    Stopped,
    /// Stopped by a fault until programmed again.
    Halted,
    /// Stopped for good.
    EndOfService,
}

impl DeliveryState {
    /// Every state, in order.
    pub const ALL: [DeliveryState; 7] = [
        DeliveryState::Therapy,
        DeliveryState::Bridge,
        DeliveryState::SingleBolus,
        DeliveryState::Priming,
        DeliveryState::Stopped,
        DeliveryState::Halted,
        DeliveryState::EndOfService,
    ];
    /// Reads a name written by [`DeliveryState::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == text)
    }
    /// The name used on the wire and in files.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Therapy => "therapy",
            DeliveryState::Bridge => "bridge",
            DeliveryState::SingleBolus => "single_bolus",
            DeliveryState::Priming => "priming",
            DeliveryState::Stopped => "stopped",
            DeliveryState::Halted => "halted",
            DeliveryState::EndOfService => "end_of_service",
        }
    }
}

/// The refill's first step as the firmware was told it: what came out, what it expected, when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Withdrawal {
    /// Withdrawn.
    pub withdrawn: Volume,
    /// The firmware's estimate before.
    pub expected: Volume,
    /// When (true time).
    pub at: Instant,
}

/// A pump's status.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Status {
    /// True time of the reading.
    pub at: Instant,
    /// The pump's clock.
    pub pump_time: PumpTime,
    /// The device profile's name.
    pub profile: String,
    /// When implanted.
    pub implanted_at: Instant,
    /// The firmware's estimate of the reservoir.
    pub reservoir: Volume,
    /// When the drug in the reservoir went in (implant or the last refill).
    pub filled_at: Instant,
    /// A withdrawal was recorded and the refill has not been: the reservoir is believed empty.
    pub awaiting_refill: bool,
    /// While it awaits its refill: the withdrawal it was told of (the refill compares with it).
    pub withdrawal: Option<Withdrawal>,
    /// The concentration the firmware was told.
    pub concentration: Concentration,
    /// The low-reservoir alarm threshold.
    pub alarm_threshold: Volume,
    /// The programmed therapy.
    pub prescription: Option<Prescription>,
    /// Its number in the therapy history.
    pub program_number: u64,
    /// What the pump is doing.
    pub state: DeliveryState,
    /// The volume rate now, PTM bolus included.
    pub rate: VolumeRate,
    /// A PTM bolus is running.
    pub ptm_bolus_running: bool,
    /// PTM boluses started in the last 24 hours.
    pub ptm_boluses_last_24h: u32,
    /// When the next PTM bolus would be allowed, if not now.
    pub ptm_next_allowed_at: Option<Instant>,
    /// Active alarms.
    pub alarms: Vec<ActiveAlarm>,
    /// The firmware knows the motor is stalled.
    pub motor_stalled: bool,
    /// Estimated battery life remaining until End of Service.
    pub battery_remaining: Duration,
    /// Elective Replacement Indicator is on.
    pub elective_replacement: bool,
    /// The next log sequence number.
    pub log_next_seq: u64,
}
