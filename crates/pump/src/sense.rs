//! The only ways the firmware meets the world: one actuator and the sensors it reads at an
//! instant.
//!
//! The firmware drives the motor ([`Motor::drive`]): the world moves what it is commanded, as it
//! allows (not at all while stalled, nothing out of an occluded catheter, more or less than
//! commanded with a rate error). The firmware reads its [`Sensors`] at the instant it runs: the
//! motor's current (is the driven motor turning?) and the battery cell's state. Nothing here
//! tells the firmware what will happen (when a stall ends), where the drug went, or what the
//! reservoir really holds: those it learns, if at all, the way a clinic does.

use itb_dose::Volume;

use crate::time::Instant;
use crate::world::World;

/// What the motor's current shows at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MotorCurrent {
    /// Not driven: the current says nothing about the motor.
    Idle,
    /// Driven, and turning.
    Turning,
    /// Driven, and not turning (stalled, e.g. by an MRI scan's magnetic field).
    Stalled,
}

/// What the firmware may read of the hardware, now, and nothing else.
pub trait Sensors {
    /// The motor's current at `at`, when the firmware is (`driven`) or is not driving it.
    fn motor_current(&self, at: Instant, driven: bool) -> MotorCurrent;
    /// The battery cell's lost capacity, parts per million (a defective cell shows it in its
    /// voltage under load); 0 for a good cell.
    fn battery_capacity_lost_ppm(&self) -> u32;
}

/// The actuator: the motor, driven by the firmware.
pub trait Motor {
    /// Drives the motor to move `commanded` at `at`; what really moves is the world's business.
    fn drive(&mut self, commanded: Volume, at: Instant);
}

impl Sensors for World {
    fn motor_current(&self, at: Instant, driven: bool) -> MotorCurrent {
        match (driven, self.is_stalled(at)) {
            (false, _) => MotorCurrent::Idle,
            (true, false) => MotorCurrent::Turning,
            (true, true) => MotorCurrent::Stalled,
        }
    }
    fn battery_capacity_lost_ppm(&self) -> u32 {
        self.battery_capacity_loss_ppm()
    }
}

impl Motor for World {
    fn drive(&mut self, commanded: Volume, at: Instant) {
        self.pump(commanded, at);
    }
}
