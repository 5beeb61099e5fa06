//! `itb-pump`: an implanted programmable intrathecal pump, modelled on the SynchroMed II.
//!
//! A [`Pump`] composes two types that share no state. The firmware knows what a pump can sense:
//! its commanded delivery, its reservoir estimate, its motor's current, battery and clock. The
//! world ([`world::World`]) keeps the truth: the real reservoir, the drug in the tubing and
//! catheter, the motor's stalls, what reached the cerebrospinal fluid and what went into tissue.
//! They meet only through [`sense`]: the firmware drives the motor ([`sense::Motor`]) and reads
//! its sensors at an instant ([`sense::Sensors`]). Faults are switches on the world
//! ([`WorldAction`]).
//!
//! # Architecture invariants
//! - Pure and deterministic: no clock, no I/O, no threads, no randomness. Time is an argument.
//! - Every device constant comes from the [`DeviceProfile`](itb_dose::DeviceProfile).
//! - Mass balance holds to the unit at every step; hard limits hold whatever the command.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod alarm;
pub mod command;
pub mod log;
mod pump;
pub mod sense;
#[cfg(feature = "serde")]
pub mod snapshot;
pub mod status;
pub mod text;
pub mod therapy;
pub mod time;
pub mod world;

pub use alarm::{AlarmKind, Severity};
pub use command::{Actor, Blame, Command, Refusal, RefusalCode, Reply, Request, WorldAction};
pub use log::{Event, EventKind, EventLog, LogEntry};
pub use pump::{Counters, HistoryEntry, Implant, Pump, REQUESTS_REMEMBERED, THERAPY_HISTORY_MAX};
#[cfg(feature = "serde")]
pub use snapshot::{SnapshotError, from_snapshot, to_snapshot};
pub use status::{DeliveryState, Status, Withdrawal};
pub use text::{LogText, LogTextError};
pub use time::{Instant, PumpClock, PumpTime};
