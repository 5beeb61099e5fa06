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
//!
//! # What is refused
//! Every error names the line of the offending entry (the field's own line where there is one)
//! and says what to write instead. Unknown fields are errors. Actions must be written in time
//! order (an entry earlier than the one before it is refused, never sorted; a repeated entry's
//! later presses fall among the entries after it, and entries at one instant run in file
//! order); no action or repeat may fall before the start or after the end. A refill or the
//! implant fill must fit the profile's reservoir; the catheter length and the delivery error
//! must be plausible ([`CATHETER_CM_PLAUSIBLE`], [`RATE_ERROR_PLAUSIBLE_PPM`], **[model]**).

use std::ops::{Range, RangeInclusive};

use serde::Deserialize;
use toml::Spanned;

use itb_dose::{Concentration, DeviceProfile, Duration, Mass, Prescription, Volume};
use itb_pump::world::CatheterState;
use itb_pump::{AlarmKind, Instant, PumpTime, WorldAction};

/// Most actions in one scenario (a `ptm` with `count` counts each press).
pub const ACTIONS_MAX: usize = 100_000;
/// Longest scenario: 12 years.
pub const SPAN_MAX: Duration = Duration::days(4_383);

/// The catheter lengths a scenario accepts, cm. **[model]**: no public figure was found for
/// the shortest and longest implanted intrathecal catheter. Below 10 cm a catheter cannot run
/// from its entry into the spinal canal to a pump pocket; above 150 cm it is longer than the
/// body it is tunnelled through, so the number is a slip (millimetres, or a catheter kit's
/// length before it is trimmed). Correct it here when a source is found.
pub const CATHETER_CM_PLAUSIBLE: RangeInclusive<u32> = 10..=150;

/// The pump's true delivery errors a scenario accepts, parts per million of the programmed
/// volume. **[model]**: -100 % is a motor that moves nothing at all; +100 % delivers twice the
/// programmed volume, about seven times the labelled over-infusion threshold (14.5 %, the
/// profile's `rate_error_labelled_max_ppm`; ECRI / ANZCA 2014). Beyond that the error is more
/// likely a wrong concentration (`true_concentration`) or a wrong program (`program`) than a
/// pump that delivers inaccurately, and a scenario should say so instead.
pub const RATE_ERROR_PLAUSIBLE_PPM: RangeInclusive<i64> = -1_000_000..=1_000_000;

/// Why a scenario file cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    /// Not TOML, or not the shape of a scenario (the sentence names the line).
    #[error("the scenario file is not valid: {0}")]
    Syntax(String),
    /// A field with a bad value.
    #[error("{}{field}: {message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
    Field {
        /// The line of the file the value is on (from 1).
        line: Option<usize>,
        /// Where (`actions[3].volume`).
        field: String,
        /// What is wrong and what to write.
        message: String,
    },
}

impl ScenarioError {
    /// The line of the file the error is on, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            ScenarioError::Syntax(_) => None,
            ScenarioError::Field { line, .. } => *line,
        }
    }
}

/// The scenario's text, to turn byte spans into line numbers.
#[derive(Clone, Copy)]
struct Source<'a>(&'a str);

impl Source<'_> {
    fn line(self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.0.len());
        self.0.as_bytes()[..end].iter().filter(|b| **b == b'\n').count() + 1
    }
    /// An error about `field` on the line where `span` starts.
    fn error(self, span: &Range<usize>, field: impl Into<String>, message: impl std::fmt::Display) -> ScenarioError {
        ScenarioError::Field { line: Some(self.line(span)), field: field.into(), message: message.to_string() }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: String,
    #[serde(default)]
    description: Option<String>,
    profile: Spanned<String>,
    start: Spanned<String>,
    #[serde(default)]
    time_zone: Option<Spanned<String>>,
    until: Spanned<String>,
    #[serde(default)]
    rate_error_percent: Option<Spanned<String>>,
    implant: RawImplant,
    #[serde(default)]
    actions: Vec<Spanned<RawAction>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImplant {
    catheter_cm: Spanned<u32>,
    fill: Spanned<String>,
    concentration: Spanned<String>,
    prescription: Spanned<toml::Table>,
    #[serde(default)]
    prime: bool,
}

type Text = Option<Spanned<String>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    at: Spanned<String>,
    action: Spanned<String>,
    volume: Text,
    concentration: Text,
    true_concentration: Text,
    bridge: Option<bool>,
    pocket_fill: Option<bool>,
    prescription: Option<Spanned<toml::Table>>,
    repeat_every: Text,
    count: Option<Spanned<u32>>,
    dose: Text,
    duration: Text,
    then_stop: Option<bool>,
    catheter_only: Option<bool>,
    stall_for: Text,
    state: Text,
    leak_percent: Text,
    percent: Text,
    capacity_loss_percent: Text,
    critical: Option<bool>,
    reading: Text,
    threshold: Text,
    alarm: Text,
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

/// Reads the values of one part of the file (the top level, the implant, an action), naming
/// the part and the line in every error.
#[derive(Clone, Copy)]
struct Part<'a> {
    source: Source<'a>,
    /// `implant`, `actions[3]`, or empty for the top level.
    name: &'a str,
    /// The part's own span: where a missing field is reported.
    span: &'a Range<usize>,
}

impl Part<'_> {
    fn key(&self, key: &str) -> String {
        if self.name.is_empty() { key.to_owned() } else { format!("{}.{key}", self.name) }
    }
    fn error(&self, span: &Range<usize>, key: &str, message: impl std::fmt::Display) -> ScenarioError {
        self.source.error(span, self.key(key), message)
    }
    fn missing(&self, key: &str, example: &str) -> ScenarioError {
        self.error(self.span, key, format!("is missing: write {key} = {example}"))
    }
    fn required<'v, T>(
        &self,
        value: Option<&'v Spanned<T>>,
        key: &str,
        example: &str,
    ) -> Result<&'v Spanned<T>, ScenarioError> {
        value.ok_or_else(|| self.missing(key, example))
    }
    /// A quantity with its unit; `example` shows what to write when it is missing.
    fn quantity<T: std::str::FromStr<Err = itb_dose::QuantityError>>(
        &self,
        value: Option<&Spanned<String>>,
        key: &str,
        example: &str,
    ) -> Result<T, ScenarioError> {
        let value = self.required(value, key, &format!("\"{example}\""))?;
        value.get_ref().parse().map_err(|e| self.error(&value.span(), key, e))
    }
    /// A signed percentage as parts per million, within `range`.
    fn percent_ppm(
        &self,
        value: Option<&Spanned<String>>,
        key: &str,
        example: &str,
        range: RangeInclusive<i64>,
        why: &str,
    ) -> Result<i64, ScenarioError> {
        let value = self.required(value, key, &format!("\"{example}\""))?;
        let span = value.span();
        let text = value.get_ref();
        let trimmed = text.trim().trim_end_matches('%').trim();
        let (negative, digits) = match trimmed.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, trimmed.strip_prefix('+').unwrap_or(trimmed)),
        };
        let out_of_range = || {
            let low = percent_text(*range.start());
            let high = percent_text(*range.end());
            self.error(
                &span,
                key,
                format!(
                    "'{text}' is outside the plausible {low} to {high}{why}; write a percentage like \"{example}\""
                ),
            )
        };
        let ppm = itb_dose::decimal::parse(digits, 4, "0.0001%")
            .map_err(|e| self.error(&span, key, format!("{e}; write a percentage like \"{example}\"")))?;
        let ppm = i64::try_from(ppm).map_err(|_| out_of_range())?;
        let ppm = if negative { -ppm } else { ppm };
        if range.contains(&ppm) { Ok(ppm) } else { Err(out_of_range()) }
    }
    fn prescription(&self, value: Option<&Spanned<toml::Table>>, key: &str) -> Result<Prescription, ScenarioError> {
        let value = self.required(value, key, "{ mode = \"simple_continuous\", dose = \"400 micrograms/day\" }")?;
        let span = value.span();
        let text = toml::to_string(value.get_ref()).map_err(|e| self.error(&span, key, e))?;
        itb_dose::toml::from_toml(&text).map_err(|e| {
            let message = match e {
                // The line inside the table's own text means nothing to the reader of the file.
                itb_dose::toml::TomlError::Syntax(sentence) => {
                    let sentence = match sentence.split_once(": ") {
                        Some((line, rest)) if line.starts_with("line ") => rest.to_owned(),
                        _ => sentence,
                    };
                    format!("is not a prescription: {sentence} (see examples/prescriptions)")
                }
                other => other.to_string(),
            };
            self.error(&span, key, message)
        })
    }
    /// A time from the start ("90 day", "36 h") or an RFC 3339 instant.
    fn instant(&self, value: &Spanned<String>, key: &str, start: Instant) -> Result<Instant, ScenarioError> {
        let text = value.get_ref();
        if let Ok(offset) = text.parse::<Duration>() {
            return Ok(start.plus(offset));
        }
        text.parse::<jiff::Timestamp>().map(Instant::from_timestamp).map_err(|_| {
            self.error(
                &value.span(),
                key,
                format!("'{text}' is neither a time from the start (\"90 day\", \"36 h\") nor an RFC 3339 instant (\"2026-12-10T14:00:00Z\")"),
            )
        })
    }
}

/// `-100 %`, `+14.5 %`.
fn percent_text(ppm: i64) -> String {
    let sign = if ppm < 0 {
        "-"
    } else if ppm > 0 {
        "+"
    } else {
        ""
    };
    format!("{sign}{} %", itb_dose::decimal::format(ppm.unsigned_abs(), 4))
}

fn catheter(part: Part<'_>, raw: &RawAction) -> Result<CatheterState, ScenarioError> {
    let state = part.required(raw.state.as_ref(), "state", "\"leaking\"")?;
    Ok(match state.get_ref().as_str() {
        "patent" => CatheterState::Patent,
        "occluded" => CatheterState::Occluded,
        "disconnected" => CatheterState::Disconnected,
        "leaking" => {
            let ppm = part.percent_ppm(raw.leak_percent.as_ref(), "leak_percent", "40", 0..=1_000_000, "")?;
            CatheterState::Leaking { fraction_ppm: u32::try_from(ppm).unwrap_or(1_000_000) }
        }
        other => {
            return Err(part.error(
                &state.span(),
                "state",
                format!("'{other}' is not a catheter state; write patent, occluded, leaking or disconnected"),
            ));
        }
    })
}

fn action(part: Part<'_>, raw: &RawAction, profile: &DeviceProfile) -> Result<Action, ScenarioError> {
    Ok(match raw.action.get_ref().as_str() {
        "refill" => {
            let concentration: Concentration =
                part.quantity(raw.concentration.as_ref(), "concentration", "2000 micrograms/mL")?;
            let true_concentration = match &raw.true_concentration {
                Some(_) => part.quantity(raw.true_concentration.as_ref(), "true_concentration", "500 micrograms/mL")?,
                None => concentration,
            };
            let volume: Volume = part.quantity(raw.volume.as_ref(), "volume", "20 mL")?;
            let capacity = profile.reservoir.capacity.value;
            if let Some(written) = raw.volume.as_ref().filter(|_| volume > capacity) {
                return Err(part.error(
                    &written.span(),
                    "volume",
                    format!(
                        "{volume} is more than the {} reservoir holds ({capacity}); write at most \"{capacity}\" (an overfill runs into the pocket)",
                        profile.name
                    ),
                ));
            }
            Action::Refill {
                volume,
                concentration,
                true_concentration,
                bridge: raw.bridge.unwrap_or(true),
                pocket_fill: raw.pocket_fill.unwrap_or(false),
            }
        }
        "program" => Action::Program(part.prescription(raw.prescription.as_ref(), "prescription")?),
        "ptm" => Action::Ptm,
        "single_bolus" => Action::SingleBolus {
            dose: part.quantity(raw.dose.as_ref(), "dose", "50 micrograms")?,
            duration: part.quantity(raw.duration.as_ref(), "duration", "1 h")?,
            then_stop: raw.then_stop.unwrap_or(false),
        },
        "prime" => Action::Prime { catheter_only: raw.catheter_only.unwrap_or(false) },
        "mri" => Action::Fault(WorldAction::MriScan {
            stall_for: part.quantity(raw.stall_for.as_ref(), "stall_for", "18 h")?,
        }),
        "catheter" => Action::Fault(WorldAction::Catheter(catheter(part, raw)?)),
        "replace_catheter" => Action::Fault(WorldAction::ReplaceCatheter),
        "rate_error" => Action::Fault(WorldAction::RateError {
            ppm: part.percent_ppm(
                raw.percent.as_ref(),
                "percent",
                "+20",
                RATE_ERROR_PLAUSIBLE_PPM,
                " [model: see the scenario documentation]",
            )?,
        }),
        "battery_defect" => {
            let ppm =
                part.percent_ppm(raw.capacity_loss_percent.as_ref(), "capacity_loss_percent", "30", 0..=1_000_000, "")?;
            Action::Fault(WorldAction::BatteryDefect { capacity_loss_ppm: u32::try_from(ppm).unwrap_or(1_000_000) })
        }
        "low_battery_reset" => Action::Fault(WorldAction::LowBatteryReset),
        "memory_error" => Action::Fault(WorldAction::MemoryError { critical: raw.critical.unwrap_or(false) }),
        "set_clock" => {
            let reading = part.required(raw.reading.as_ref(), "reading", "\"2027-03-28T11:00\"")?;
            let text = reading.get_ref();
            let civil: jiff::civil::DateTime = text.parse().map_err(|_| {
                part.error(
                    &reading.span(),
                    "reading",
                    format!("'{text}' is not a local date-time; write one like \"2027-03-28T11:00\""),
                )
            })?;
            Action::SetClock(PumpTime::from_civil(civil))
        }
        "set_alarm_threshold" => {
            Action::SetAlarmThreshold(part.quantity(raw.threshold.as_ref(), "threshold", "2 mL")?)
        }
        "clear_alarm" => {
            let alarm = part.required(raw.alarm.as_ref(), "alarm", "\"motor_stall\"")?;
            let text = alarm.get_ref();
            let names = AlarmKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ");
            Action::ClearAlarm(AlarmKind::parse(text).ok_or_else(|| {
                part.error(&alarm.span(), "alarm", format!("'{text}' is not an alarm; write one of {names}"))
            })?)
        }
        "stop" => Action::Stop,
        "resume" => Action::Resume,
        "interrogate" => Action::Interrogate,
        other => {
            return Err(part.error(
                &raw.action.span(),
                "action",
                format!("'{other}' is not an action; write one of {}", ACTION_NAMES.join(", ")),
            ));
        }
    })
}

/// Every action a scenario may name.
pub const ACTION_NAMES: [&str; 18] = [
    "refill",
    "program",
    "ptm",
    "single_bolus",
    "prime",
    "mri",
    "catheter",
    "replace_catheter",
    "rate_error",
    "battery_defect",
    "low_battery_reset",
    "memory_error",
    "set_clock",
    "set_alarm_threshold",
    "clear_alarm",
    "stop",
    "resume",
    "interrogate",
];

impl Scenario {
    /// Reads a scenario from TOML text. Every error names the line of the offending entry and
    /// says what to write instead; actions must be in time order (they are never sorted), a
    /// refill must fit the reservoir, and the catheter length and delivery error must be
    /// plausible ([`CATHETER_CM_PLAUSIBLE`], [`RATE_ERROR_PLAUSIBLE_PPM`]).
    pub fn from_toml(text: &str) -> Result<Self, ScenarioError> {
        let source = Source(text);
        let raw: RawScenario =
            toml::from_str(text).map_err(|e| ScenarioError::Syntax(itb_dose::toml::error_sentence(text, &e)))?;
        let whole = 0..0;
        let top = Part { source, name: "", span: &whole };
        let profile =
            DeviceProfile::built_in(raw.profile.get_ref()).map_err(|e| top.error(&raw.profile.span(), "profile", e))?;
        let start = raw.start.get_ref().parse::<jiff::Timestamp>().map(Instant::from_timestamp).map_err(|_| {
            top.error(
                &raw.start.span(),
                "start",
                format!(
                    "'{}' is not an RFC 3339 instant; write one like \"2026-11-25T10:00:00Z\"",
                    raw.start.get_ref()
                ),
            )
        })?;
        let zone = match &raw.time_zone {
            None => jiff::tz::TimeZone::get("Europe/London").unwrap_or(jiff::tz::TimeZone::UTC),
            Some(name) => jiff::tz::TimeZone::get(name.get_ref()).map_err(|_| {
                top.error(
                    &name.span(),
                    "time_zone",
                    format!("'{}' is not a known IANA time zone; write one like \"Europe/London\"", name.get_ref()),
                )
            })?,
        };
        let when = |at: Instant| itb_dose::text::date_time(at.to_timestamp(), &zone);
        let end = top.instant(&raw.until, "until", start)?;
        if end <= start || end.since(start) > SPAN_MAX {
            return Err(top.error(
                &raw.until.span(),
                "until",
                format!("the scenario must end after its start and within {SPAN_MAX}; write a time like \"365 day\""),
            ));
        }
        let rate_error_ppm = match &raw.rate_error_percent {
            None => 0,
            Some(_) => top.percent_ppm(
                raw.rate_error_percent.as_ref(),
                "rate_error_percent",
                "+20",
                RATE_ERROR_PLAUSIBLE_PPM,
                " [model: see the scenario documentation]",
            )?,
        };
        let implant_raw = &raw.implant;
        let implant = Part { source, name: "implant", span: &implant_raw.catheter_cm.span() };
        let catheter_cm = *implant_raw.catheter_cm.get_ref();
        if !CATHETER_CM_PLAUSIBLE.contains(&catheter_cm) {
            return Err(implant.error(
                &implant_raw.catheter_cm.span(),
                "catheter_cm",
                format!(
                    "{catheter_cm} cm is outside the plausible {} to {} cm [model: see the scenario documentation]; write the implanted catheter's length in whole centimetres",
                    CATHETER_CM_PLAUSIBLE.start(),
                    CATHETER_CM_PLAUSIBLE.end()
                ),
            ));
        }
        let fill: Volume = implant.quantity(Some(&implant_raw.fill), "fill", "20 mL")?;
        let capacity = profile.reservoir.capacity.value;
        if fill > capacity {
            return Err(implant.error(
                &implant_raw.fill.span(),
                "fill",
                format!(
                    "{fill} is more than the {} reservoir holds ({capacity}); write at most \"{capacity}\"",
                    profile.name
                ),
            ));
        }
        let concentration =
            implant.quantity(Some(&implant_raw.concentration), "concentration", "2000 micrograms/mL")?;
        let prescription = implant.prescription(Some(&implant_raw.prescription), "prescription")?;
        // The pump's own hard limits (rates, boluses, PTM limits at this concentration): a pump
        // that would refuse the implant is a scenario error, on the line to change.
        let clock = PumpTime::from_civil(zone.to_datetime(start.to_timestamp()));
        if let Err(refusal) = itb_pump::Pump::implant(itb_pump::Implant {
            profile: profile.clone(),
            at: start,
            clock,
            catheter_cm,
            rate_error_ppm,
            fill,
            concentration,
            prescription: prescription.clone(),
        }) {
            let (span, key, what) = if refusal.code == itb_pump::RefusalCode::ConcentrationOutOfRange {
                (implant_raw.concentration.span(), "concentration", "write a concentration the pump accepts")
            } else if refusal.code == itb_pump::RefusalCode::FillAboveCapacity {
                (implant_raw.fill.span(), "fill", "write at most the reservoir's volume")
            } else {
                (
                    implant_raw.prescription.span(),
                    "prescription",
                    "write a prescription the pump can run at this concentration, or change the concentration",
                )
            };
            return Err(implant.error(
                &span,
                key,
                format!("the {} pump refuses it: {}; {what}", profile.name, refusal.message),
            ));
        }

        let mut actions: Vec<TimedAction> = Vec::new();
        let mut previous: Option<(Instant, String, usize)> = None;
        for (index, spanned) in raw.actions.iter().enumerate() {
            let name = format!("actions[{}]", index + 1);
            let span = spanned.span();
            let part = Part { source, name: &name, span: &span };
            let raw_action = spanned.get_ref();
            let at = part.instant(&raw_action.at, "at", start)?;
            let at_span = raw_action.at.span();
            if at < start {
                return Err(part.error(
                    &at_span,
                    "at",
                    format!("{} comes before the start ({})", when(at), when(start)),
                ));
            }
            if at > end {
                return Err(part.error(
                    &at_span,
                    "at",
                    format!(
                        "{} comes after the scenario ends ({}); move it or write a later until",
                        when(at),
                        when(end)
                    ),
                ));
            }
            if let Some((before, before_name, before_line)) = &previous
                && at < *before
            {
                return Err(part.error(
                    &at_span,
                    "at",
                    format!(
                        "{} comes before {before_name} (line {before_line}) at {}: actions run in the order written and must be in time order; move this entry above {before_name} or correct its time",
                        when(at),
                        when(*before)
                    ),
                ));
            }
            previous = Some((at, name.clone(), source.line(&span)));
            let action = action(part, raw_action, &profile)?;
            let count = raw_action.count.as_ref().map_or(1, |c| *c.get_ref());
            let every = match (&raw_action.repeat_every, count) {
                (Some(every), _) => {
                    let duration = every
                        .get_ref()
                        .parse::<Duration>()
                        .map_err(|e| part.error(&every.span(), "repeat_every", e))?;
                    if duration.is_zero() && count > 1 {
                        return Err(part.error(
                            &every.span(),
                            "repeat_every",
                            "must be more than zero; write a time like \"1 day\"",
                        ));
                    }
                    Some(duration)
                }
                (None, 1) => None,
                (None, _) => return Err(part.missing("repeat_every", "\"1 day\" (with count, it repeats the action)")),
            };
            if let (Some(count_value), Some(every)) = (&raw_action.count, every) {
                let last = at.plus(Duration::ms(every.as_ms().saturating_mul(u64::from(count.saturating_sub(1)))));
                if last > end {
                    let fits = end.since(at).as_ms() / every.as_ms().max(1) + 1;
                    return Err(part.error(
                        &count_value.span(),
                        "count",
                        format!(
                            "the last of {count} repeats falls at {}, after the scenario ends ({}); write count = {fits} at most, or a later until",
                            when(last),
                            when(end)
                        ),
                    ));
                }
            }
            if actions.len().saturating_add(count as usize) > ACTIONS_MAX {
                return Err(part.error(
                    &span,
                    "count",
                    format!("the scenario would have more than {ACTIONS_MAX} actions; write fewer repeats"),
                ));
            }
            for repeat in 0..count {
                let at =
                    every.map_or(at, |every| at.plus(Duration::ms(every.as_ms().saturating_mul(u64::from(repeat)))));
                actions.push(TimedAction { at, action: action.clone(), note: raw_action.note.clone() });
            }
        }
        // Entries are in time order; a repeated entry's later presses fall among the entries
        // after it. A stable sort interleaves them and keeps the file's order at equal instants.
        actions.sort_by_key(|a| a.at);
        Ok(Scenario {
            name: raw.name,
            description: raw.description,
            profile,
            start,
            end,
            zone,
            catheter_cm,
            rate_error_ppm,
            fill,
            concentration,
            prescription,
            prime: implant_raw.prime,
            actions,
        })
    }
}
