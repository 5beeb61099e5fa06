//! `itb-dose`: the shared vocabulary of intrathecal baclofen therapy.
//!
//! Exact quantities ([`quantity`]), the drug ([`drug`]), prescriptions in every pump mode
//! ([`prescription`], read and written as TOML by [`toml`]), device profiles ([`profile`]) and
//! the calculations of a service ([`calc`]), and one style for showing them to people
//! ([`text`]).
//!
//! # Architecture invariants
//! - Pure: no clock, no file, no socket, no thread. Time comes in as arguments; the compiled-in
//!   device profiles are text constants.
//! - Every dose, volume, concentration, rate and duration is an integer count of a small unit;
//!   conversions round once, in the direction the caller names.
//! - A [`Prescription`] cannot exist invalid.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod calc;
pub mod decimal;
pub mod drug;
pub mod prescription;
pub mod profile;
pub mod quantity;
pub mod review;
pub mod text;
pub mod toml;
pub mod withdrawal_risk;

pub use drug::{Baclofen, Stability};
pub use prescription::{
    DayPattern, FlexSchedule, FlexStep, Mode, PeriodicBolus, Prescription, PrescriptionError, PtmLimits, Therapy,
};
pub use profile::DeviceProfile;
pub use quantity::{Concentration, DoseRate, Duration, Mass, QuantityError, Rounding, TimeOfDay, Volume, VolumeRate};
