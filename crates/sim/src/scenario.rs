//! Scenario files: a pump, its implant, and timed actions, as TOML.
//!
//! ```toml
//! name = "A year of simple continuous therapy"
//! profile = "synchromed-ii-20"
//! start = "2026-11-25T10:00:00Z"
//! time_zone = "Europe/London"   # the pump's clock is set to local time at implant
//! until = "365 day"             # how long to run, from the start
//!
//! [implant]
//! catheter_cm = 50
//! fill = "20 mL"
//! concentration = "2000 micrograms/mL"
//! prescription = { mode = "simple_continuous", dose = "400 micrograms/day" }
//! prime = true                  # a priming bolus right after implant
//!
//! [[actions]]
//! at = "90 day"                 # from the start, or an RFC 3339 instant
//! action = "refill"
//! volume = "20 mL"
//! concentration = "2000 micrograms/mL"
//! ```
//!
//! Actions: `refill` (with `bridge`, `pocket_fill`, `true_concentration`), `program`,
//! `ptm` (with `repeat_every` and `count`), `single_bolus`, `prime`, `mri`, `catheter`,
//! `replace_catheter`, `rate_error`, `battery_defect`, `low_battery_reset`, `memory_error`,
//! `set_clock`, `set_alarm_threshold`, `clear_alarm`, `stop`, `resume`, `interrogate`.
//! Unknown fields are errors.

use serde::Deserialize;

use itb_dose::{Concentration, DeviceProfile, Duration, Mass, Prescription, Volume};
use itb_pump::world::CatheterState;
use itb_pump::{AlarmKind, Instant, PumpTime, WorldAction};

/// Most actions in one scenario (a `ptm` with `count` counts each press).
pub const ACTIONS_MAX: usize = 100_000;
/// Longest scenario: 12 years.
pub const SPAN_MAX: Duration = Duration::days(4_383);

/// Why a scenario file cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    /// Not TOML, or not the shape of a scenario.
    #[error("the scenario file is not valid: {0}")]
    Syntax(String),
    /// A field with a bad value.
    #[error("{field}: {message}")]
    Field {
        /// Where (`actions[3].volume`).
        field: String,
        /// What is wrong and what to write.
        message: String,
    },
}

fn field(field: impl Into<String>, message: impl std::fmt::Display) -> ScenarioError {
    ScenarioError::Field { field: field.into(), message: message.to_string() }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: String,
    #[serde(default)]
    description: Option<String>,
    profile: String,
    start: String,
    #[serde(default = "london")]
    time_zone: String,
    until: String,
    #[serde(default)]
    rate_error_percent: Option<String>,
    implant: RawImplant,
    #[serde(default)]
    actions: Vec<RawAction>,
}

fn london() -> String {
    "Europe/London".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImplant {
    catheter_cm: u32,
    fill: String,
    concentration: String,
    prescription: toml::Table,
    #[serde(default)]
    prime: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    at: String,
    action: String,
    volume: Option<String>,
    concentration: Option<String>,
    true_concentration: Option<String>,
    bridge: Option<bool>,
    pocket_fill: Option<bool>,
    prescription: Option<toml::Table>,
    repeat_every: Option<String>,
    count: Option<u32>,
    dose: Option<String>,
    duration: Option<String>,
    then_stop: Option<bool>,
    catheter_only: Option<bool>,
    stall_for: Option<String>,
    state: Option<String>,
    leak_percent: Option<String>,
    percent: Option<String>,
    capacity_loss_percent: Option<String>,
    critical: Option<bool>,
    reading: Option<String>,
    threshold: Option<String>,
    alarm: Option<String>,
    note: Option<String>,
}

/// What to do at an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Withdraw the old drug, inject the new, tell the firmware.
    Refill {
        /// Volume injected.
        volume: Volume,
        /// The concentration on the label, told to the pump.
        concentration: Concentration,
        /// The concentration really in the syringe (a wrong-concentration error if different).
        true_concentration: Concentration,
        /// Program a bridge bolus if the concentration changes.
        bridge: bool,
        /// The needle misses the reservoir: the drug goes into the pocket.
        pocket_fill: bool,
    },
    /// Program a new therapy.
    Program(Prescription),
    /// The patient presses the PTM.
    Ptm,
    /// A clinician's single bolus.
    SingleBolus {
        /// Dose.
        dose: Mass,
        /// Over.
        duration: Duration,
        /// Stop afterwards.
        then_stop: bool,
    },
    /// A priming bolus.
    Prime {
        /// After a catheter revision.
        catheter_only: bool,
    },
    /// A fault or a change in the body: an MRI scan, the catheter, the delivery error, the
    /// battery, memory. (Withdrawals and injections belong to `Refill`.)
    Fault(WorldAction),
    /// Set the pump's clock.
    SetClock(PumpTime),
    /// Set the low-reservoir alarm threshold.
    SetAlarmThreshold(Volume),
    /// Clear an alarm.
    ClearAlarm(AlarmKind),
    /// Stop the pump.
    Stop,
    /// Resume the pump.
    Resume,
    /// Interrogate: record the status in the timeline.
    Interrogate,
}

/// An action at an instant, with an optional note for the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedAction {
    /// When.
    pub at: Instant,
    /// What.
    pub action: Action,
    /// Why, for the reader.
    pub note: Option<String>,
}

/// A scenario ready to run.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Its name.
    pub name: String,
    /// What it shows.
    pub description: Option<String>,
    /// The pump model.
    pub profile: DeviceProfile,
    /// Implant instant.
    pub start: Instant,
    /// End instant.
    pub end: Instant,
    /// The service's zone: the pump's clock reads local time at implant.
    pub zone: jiff::tz::TimeZone,
    /// Catheter length.
    pub catheter_cm: u32,
    /// The pump's true delivery error, ppm.
    pub rate_error_ppm: i64,
    /// Filled at implant.
    pub fill: Volume,
    /// At this concentration.
    pub concentration: Concentration,
    /// Programmed at implant.
    pub prescription: Prescription,
    /// Prime right after implant.
    pub prime: bool,
    /// The actions, in time order.
    pub actions: Vec<TimedAction>,
}

fn quantity<T: std::str::FromStr<Err = itb_dose::QuantityError>>(
    name: &str,
    text: Option<&String>,
) -> Result<T, ScenarioError> {
    let text = text.ok_or_else(|| field(name, "is missing"))?;
    text.parse().map_err(|e| field(name, e))
}

fn percent_ppm(name: &str, text: &str) -> Result<i64, ScenarioError> {
    let trimmed = text.trim().trim_end_matches('%').trim();
    let (negative, digits) = match trimmed.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, trimmed.strip_prefix('+').unwrap_or(trimmed)),
    };
    let ppm = itb_dose::decimal::parse(digits, 4, "0.0001%").map_err(|e| field(name, e))?;
    let ppm = i64::try_from(ppm).map_err(|_| field(name, "too large"))?;
    Ok(if negative { -ppm } else { ppm })
}

fn prescription(name: &str, table: &toml::Table) -> Result<Prescription, ScenarioError> {
    let text = toml::to_string(table).map_err(|e| field(name, e))?;
    itb_dose::toml::from_toml(&text).map_err(|e| field(name, e))
}

/// An instant: an offset from `start` ("90 day", "36 h") or an RFC 3339 instant.
fn instant(name: &str, text: &str, start: Instant) -> Result<Instant, ScenarioError> {
    if let Ok(offset) = text.parse::<Duration>() {
        return Ok(start.plus(offset));
    }
    text.parse::<jiff::Timestamp>().map(Instant::from_timestamp).map_err(|_| {
        field(name, format!("'{text}' is neither a time from the start (\"90 day\", \"36 h\") nor an RFC 3339 instant"))
    })
}

fn catheter(name: &str, raw: &RawAction) -> Result<CatheterState, ScenarioError> {
    let state = raw.state.as_deref().ok_or_else(|| field(format!("{name}.state"), "is missing"))?;
    Ok(match state {
        "patent" => CatheterState::Patent,
        "occluded" => CatheterState::Occluded,
        "disconnected" => CatheterState::Disconnected,
        "leaking" => {
            let text =
                raw.leak_percent.as_deref().ok_or_else(|| field(format!("{name}.leak_percent"), "is missing"))?;
            let ppm = percent_ppm(&format!("{name}.leak_percent"), text)?;
            let fraction_ppm = u32::try_from(ppm)
                .ok()
                .filter(|p| *p <= 1_000_000)
                .ok_or_else(|| field(format!("{name}.leak_percent"), "must be from 0 to 100"))?;
            CatheterState::Leaking { fraction_ppm }
        }
        other => {
            return Err(field(
                format!("{name}.state"),
                format!("'{other}' is not a catheter state; use patent, occluded, leaking or disconnected"),
            ));
        }
    })
}

fn action(name: &str, raw: &RawAction) -> Result<Action, ScenarioError> {
    let key = |k: &str| format!("{name}.{k}");
    Ok(match raw.action.as_str() {
        "refill" => {
            let concentration: Concentration = quantity(&key("concentration"), raw.concentration.as_ref())?;
            let true_concentration = match &raw.true_concentration {
                Some(_) => quantity(&key("true_concentration"), raw.true_concentration.as_ref())?,
                None => concentration,
            };
            Action::Refill {
                volume: quantity(&key("volume"), raw.volume.as_ref())?,
                concentration,
                true_concentration,
                bridge: raw.bridge.unwrap_or(true),
                pocket_fill: raw.pocket_fill.unwrap_or(false),
            }
        }
        "program" => {
            let table = raw.prescription.as_ref().ok_or_else(|| field(key("prescription"), "is missing"))?;
            Action::Program(prescription(&key("prescription"), table)?)
        }
        "ptm" => Action::Ptm,
        "single_bolus" => Action::SingleBolus {
            dose: quantity(&key("dose"), raw.dose.as_ref())?,
            duration: quantity(&key("duration"), raw.duration.as_ref())?,
            then_stop: raw.then_stop.unwrap_or(false),
        },
        "prime" => Action::Prime { catheter_only: raw.catheter_only.unwrap_or(false) },
        "mri" => {
            Action::Fault(WorldAction::MriScan { stall_for: quantity(&key("stall_for"), raw.stall_for.as_ref())? })
        }
        "catheter" => Action::Fault(WorldAction::Catheter(catheter(name, raw)?)),
        "replace_catheter" => Action::Fault(WorldAction::ReplaceCatheter),
        "rate_error" => {
            let text = raw.percent.as_deref().ok_or_else(|| field(key("percent"), "is missing"))?;
            Action::Fault(WorldAction::RateError { ppm: percent_ppm(&key("percent"), text)? })
        }
        "battery_defect" => {
            let text = raw
                .capacity_loss_percent
                .as_deref()
                .ok_or_else(|| field(key("capacity_loss_percent"), "is missing"))?;
            let ppm = percent_ppm(&key("capacity_loss_percent"), text)?;
            let capacity_loss_ppm = u32::try_from(ppm)
                .ok()
                .filter(|p| *p <= 1_000_000)
                .ok_or_else(|| field(key("capacity_loss_percent"), "must be from 0 to 100"))?;
            Action::Fault(WorldAction::BatteryDefect { capacity_loss_ppm })
        }
        "low_battery_reset" => Action::Fault(WorldAction::LowBatteryReset),
        "memory_error" => Action::Fault(WorldAction::MemoryError { critical: raw.critical.unwrap_or(false) }),
        "set_clock" => {
            let text = raw.reading.as_deref().ok_or_else(|| field(key("reading"), "is missing"))?;
            let civil: jiff::civil::DateTime = text.parse().map_err(|_| {
                field(key("reading"), format!("'{text}' is not a local date-time like 2027-03-28T11:00"))
            })?;
            Action::SetClock(PumpTime::from_civil(civil))
        }
        "set_alarm_threshold" => Action::SetAlarmThreshold(quantity(&key("threshold"), raw.threshold.as_ref())?),
        "clear_alarm" => {
            let text = raw.alarm.as_deref().ok_or_else(|| field(key("alarm"), "is missing"))?;
            let names = AlarmKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ");
            Action::ClearAlarm(
                AlarmKind::parse(text)
                    .ok_or_else(|| field(key("alarm"), format!("'{text}' is not an alarm; use one of {names}")))?,
            )
        }
        "stop" => Action::Stop,
        "resume" => Action::Resume,
        "interrogate" => Action::Interrogate,
        other => {
            return Err(field(key("action"), format!("'{other}' is not an action (see the scenario documentation)")));
        }
    })
}

impl Scenario {
    /// Reads a scenario from TOML text.
    pub fn from_toml(text: &str) -> Result<Self, ScenarioError> {
        let raw: RawScenario =
            toml::from_str(text).map_err(|e| ScenarioError::Syntax(itb_dose::toml::error_sentence(text, &e)))?;
        let profile = DeviceProfile::built_in(&raw.profile).map_err(|e| field("profile", e))?;
        let start = raw
            .start
            .parse::<jiff::Timestamp>()
            .map(Instant::from_timestamp)
            .map_err(|_| field("start", format!("'{}' is not an RFC 3339 instant", raw.start)))?;
        let zone = jiff::tz::TimeZone::get(&raw.time_zone)
            .map_err(|_| field("time_zone", format!("'{}' is not a known IANA time zone", raw.time_zone)))?;
        let end = instant("until", &raw.until, start)?;
        if end <= start || end.since(start) > SPAN_MAX {
            return Err(field("until", format!("the scenario must end after its start and within {SPAN_MAX}")));
        }
        let rate_error_ppm =
            raw.rate_error_percent.as_deref().map(|t| percent_ppm("rate_error_percent", t)).transpose()?;
        let implant = &raw.implant;
        let mut actions = Vec::new();
        for (index, raw_action) in raw.actions.iter().enumerate() {
            let name = format!("actions[{}]", index + 1);
            let at = instant(&format!("{name}.at"), &raw_action.at, start)?;
            let action = action(&name, raw_action)?;
            let count = raw_action.count.unwrap_or(1);
            let every = match (&raw_action.repeat_every, count) {
                (Some(text), _) => {
                    Some(text.parse::<Duration>().map_err(|e| field(format!("{name}.repeat_every"), e))?)
                }
                (None, 1) => None,
                (None, _) => return Err(field(format!("{name}.count"), "needs repeat_every")),
            };
            for repeat in 0..count {
                let at =
                    every.map_or(at, |every| at.plus(Duration::ms(every.as_ms().saturating_mul(u64::from(repeat)))));
                actions.push(TimedAction { at, action: action.clone(), note: raw_action.note.clone() });
                if actions.len() > ACTIONS_MAX {
                    return Err(field(&name, format!("the scenario has more than {ACTIONS_MAX} actions")));
                }
            }
        }
        actions.sort_by_key(|a| a.at);
        if let Some(early) = actions.iter().find(|a| a.at < start) {
            return Err(field("actions", format!("an action at {} comes before the start", early.at)));
        }
        Ok(Scenario {
            name: raw.name,
            description: raw.description,
            profile,
            start,
            end,
            zone,
            catheter_cm: implant.catheter_cm,
            rate_error_ppm: rate_error_ppm.unwrap_or(0),
            fill: quantity("implant.fill", Some(&implant.fill))?,
            concentration: quantity("implant.concentration", Some(&implant.concentration))?,
            prescription: prescription("implant.prescription", &implant.prescription)?,
            prime: implant.prime,
            actions,
        })
    }
}
