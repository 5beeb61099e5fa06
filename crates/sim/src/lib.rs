//! `itb-sim`: scenarios for the virtual pump.
//!
//! A [`Scenario`] (TOML) names a pump profile, an implant, and timed actions and faults; [`run`]
//! drives an [`itb_pump::Pump`] through them event by event and returns a timeline, a summary
//! (drug delivered and where it went, alarms, refill checks, refusals with reasons) and samples
//! that [`svg::plot`] draws. Pure: text in, values out; the binary reads and writes files.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod account;
pub mod run;
pub mod scenario;
pub mod svg;
pub mod words;

pub use run::{RunReport, run};
pub use scenario::{Scenario, ScenarioError};
