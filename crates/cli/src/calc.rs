//! `itb calc`: the service's calculations on the command line.
//!
//! Flag values are read here, not by clap, so that a bad value is refused with one sentence
//! that names the flag and says what to write instead. Units are implied by the flag's name
//! (`--fill-ml`, concentrations in micrograms/mL, doses in micrograms); a unit may be written
//! too, and must then be the right one: `--dose "0.4 mg/day"` is refused, never converted.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use itb_dose::calc::bridge::{self, BridgePlan};
use itb_dose::calc::gas::{self, Goal};
use itb_dose::calc::refill::{RefillInputs, RefillSchedule, refill_schedule};
use itb_dose::calc::screening::{self, EffectObserved, ScreeningStatus, Trial};
use itb_dose::calc::titrate::{self, Origin, TitrationInputs};
use itb_dose::prescription::{PrescriptionError, PtmLimits, Therapy, limits};
use itb_dose::text;
use itb_dose::{Baclofen, Concentration, DeviceProfile, DoseRate, Mass, Prescription, Stability, Volume, VolumeRate};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Value, json};

use crate::CliError;
use crate::output::{Report, capitalised, number, prescription_words};

/// The calculations.
#[derive(Debug, Subcommand)]
pub enum CalcCommand {
    /// When the refill is due: low-reservoir alarm, empty reservoir, drug expiry.
    Refill(RefillArgs),
    /// The bridge bolus after a concentration change.
    Bridge(BridgeArgs),
    /// The priming bolus that fills an empty catheter (and pump tubing).
    Prime(PrimeArgs),
    /// Check a proposed dose change against the titration guideline.
    Titrate(TitrateArgs),
    /// The screening trial ladder, and the starting dose after implant.
    Screening(ScreeningArgs),
    /// Goal Attainment Scaling T-score.
    Gas(GasArgs),
    /// Read a prescription file: its daily totals, largest and mean day, worst-case PTM.
    Totals(TotalsArgs),
}

#[derive(Debug, Args)]
#[command(after_help = crate::output::EXIT_CODES)]
#[command(allow_negative_numbers = true)]
pub struct RefillArgs {
    /// Volume in the reservoir after the refill, mL.
    #[arg(long, value_name = "ML")]
    fill_ml: String,
    /// Drug concentration, micrograms/mL.
    #[arg(long, value_name = "MICROGRAMS_PER_ML")]
    concentration: String,
    /// Daily dose, micrograms/day (or give --prescription).
    #[arg(
        long,
        value_name = "MICROGRAMS_PER_DAY",
        required_unless_present = "prescription",
        conflicts_with = "prescription"
    )]
    dose: Option<String>,
    /// A prescription file (TOML): its largest day and worst-case PTM use are assumed.
    #[arg(long, value_name = "FILE")]
    prescription: Option<PathBuf>,
    /// Low-reservoir alarm threshold, mL (default: the profile's, or 2 mL).
    #[arg(long, value_name = "ML")]
    alarm_ml: Option<String>,
    /// The pump being filled: a device profile (e.g. synchromed-ii-20, or a profile file). A fill
    /// above its reservoir is refused; its low-reservoir alarm is the default.
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// The pump's reservoir capacity, mL, when no profile is given: a fill above it is refused.
    #[arg(long, value_name = "ML", conflicts_with = "profile")]
    reservoir_ml: Option<String>,
    /// Days the drug may stay in the reservoir (at most 180).
    #[arg(long, value_name = "DAYS", default_value = "180")]
    stability_days: String,
    /// Days before the earlier limit that the service refills.
    #[arg(long, value_name = "DAYS", default_value = "0")]
    margin_days: String,
    /// PTM bolus, micrograms: every allowed bolus is assumed taken.
    #[arg(long, value_name = "MICROGRAMS", requires = "ptm_per_day", conflicts_with = "prescription")]
    ptm_bolus: Option<String>,
    /// PTM boluses allowed per 24 hours.
    #[arg(long, value_name = "N", requires = "ptm_bolus", conflicts_with = "prescription")]
    ptm_per_day: Option<String>,
    /// When the reservoir was filled (RFC 3339; a local date-time is read in --tz); default now.
    #[arg(long, value_name = "INSTANT")]
    start: Option<String>,
    /// The service's time zone (IANA name).
    #[arg(long, value_name = "ZONE", default_value = "Europe/London")]
    tz: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
#[command(after_help = crate::output::EXIT_CODES)]
#[command(allow_negative_numbers = true)]
pub struct BridgeArgs {
    /// Concentration in the pump before the refill, micrograms/mL.
    #[arg(long, value_name = "MICROGRAMS_PER_ML")]
    old_concentration: String,
    /// Concentration of the new drug, micrograms/mL.
    #[arg(long, value_name = "MICROGRAMS_PER_ML")]
    new_concentration: String,
    /// Daily dose, micrograms/day.
    #[arg(long, value_name = "MICROGRAMS_PER_DAY")]
    dose: String,
    #[command(flatten)]
    dead_volume: DeadVolumeArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct DeadVolumeArgs {
    /// The dead volume (pump tubing + catheter), mL.
    #[arg(long, value_name = "ML", conflicts_with_all = ["profile", "catheter_cm"], required_unless_present = "profile")]
    dead_volume_ml: Option<String>,
    /// A device profile (e.g. synchromed-ii-20) for the tubing and catheter volumes.
    #[arg(long, value_name = "NAME", requires = "catheter_cm")]
    profile: Option<String>,
    /// Catheter length, cm.
    #[arg(long, value_name = "CM", requires = "profile")]
    catheter_cm: Option<String>,
}

#[derive(Debug, Args)]
#[command(after_help = crate::output::EXIT_CODES)]
#[command(allow_negative_numbers = true)]
pub struct PrimeArgs {
    #[command(flatten)]
    dead_volume: DeadVolumeArgs,
    /// Priming rate, mL/day (default: the profile's priming rate).
    #[arg(long, value_name = "ML_PER_DAY")]
    rate_ml_per_day: Option<String>,
    /// After a catheter revision: only the catheter is empty, the pump tubing is full.
    #[arg(long, requires = "profile")]
    catheter_only: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OriginArg {
    Spinal,
    Cerebral,
}

#[derive(Debug, Args)]
#[command(after_help = crate::output::EXIT_CODES)]
#[command(allow_negative_numbers = true)]
pub struct TitrateArgs {
    /// Current daily dose, micrograms/day.
    #[arg(long, value_name = "MICROGRAMS_PER_DAY")]
    current: String,
    /// Proposed daily dose, micrograms/day.
    #[arg(long, value_name = "MICROGRAMS_PER_DAY")]
    proposed: String,
    /// Origin of the spasticity.
    #[arg(long, value_enum)]
    origin: OriginArg,
    /// Age in whole years.
    #[arg(long, value_name = "YEARS")]
    age: Option<String>,
    /// When the dose was last increased (RFC 3339).
    #[arg(long, value_name = "INSTANT")]
    last_increase_at: Option<String>,
    /// When the change would be made (RFC 3339); default now.
    #[arg(long, value_name = "INSTANT")]
    at: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
#[command(after_help = crate::output::EXIT_CODES)]
#[command(allow_negative_numbers = true)]
pub struct ScreeningArgs {
    /// A small patient: the ladder starts at 25 micrograms.
    #[arg(long)]
    small: bool,
    /// A trial so far, in order: DOSE:responded or DOSE:no-response (micrograms).
    #[arg(long = "trial", value_name = "DOSE:RESULT")]
    trials: Vec<String>,
    /// The effective screening dose, micrograms, when the trials are not listed.
    #[arg(long, value_name = "MICROGRAMS", conflicts_with = "trials")]
    effective_dose: Option<String>,
    /// Hours the effective dose's effect lasted.
    #[arg(long, value_name = "HOURS")]
    effect_hours: Option<String>,
    /// The effective dose caused side effects.
    #[arg(long)]
    side_effects: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
#[command(after_help = crate::output::EXIT_CODES)]
#[command(allow_negative_numbers = true)]
pub struct GasArgs {
    /// A goal: its attainment -2..2, optionally with importance and difficulty 0..3
    /// (SCORE or SCORE:IMPORTANCE:DIFFICULTY). Repeat for each goal.
    #[arg(long = "goal", value_name = "SCORE[:IMPORTANCE:DIFFICULTY]", required = true, allow_hyphen_values = true)]
    goals: Vec<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
#[command(after_help = crate::output::EXIT_CODES)]
#[command(allow_negative_numbers = true)]
pub struct TotalsArgs {
    /// The prescription file (TOML).
    #[arg(long, value_name = "FILE")]
    prescription: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs a calculation and returns what to print.
pub fn run(command: CalcCommand) -> Result<String, CliError> {
    match command {
        CalcCommand::Refill(args) => refill(&args),
        CalcCommand::Bridge(args) => bridge_command(&args),
        CalcCommand::Prime(args) => prime(&args),
        CalcCommand::Titrate(args) => titrate_command(&args),
        CalcCommand::Screening(args) => screening_command(&args),
        CalcCommand::Gas(args) => gas_command(&args),
        CalcCommand::Totals(args) => totals(&args),
    }
}

// ---- reading flags ----------------------------------------------------------------------------

fn volume(flag: &str, text: &str) -> Result<Volume, CliError> {
    Volume::parse_implied(text).map_err(|e| CliError::flag(flag, e))
}

fn dose_rate(flag: &str, text: &str) -> Result<DoseRate, CliError> {
    DoseRate::parse_implied(text).map_err(|e| CliError::flag(flag, e))
}

fn mass(flag: &str, text: &str) -> Result<Mass, CliError> {
    Mass::parse_implied(text).map_err(|e| CliError::flag(flag, e))
}

fn drug(flag: &str, text: &str) -> Result<Baclofen, CliError> {
    let concentration = Concentration::parse_implied(text).map_err(|e| CliError::flag(flag, e))?;
    Baclofen::new(concentration).map_err(|e| CliError::flag(flag, e))
}

fn whole<T: std::str::FromStr>(flag: &str, text: &str, what: &str) -> Result<T, CliError> {
    let trimmed = text.trim();
    if trimmed.starts_with('-') {
        return Err(CliError::flag(flag, format!("'{trimmed}' is negative; give {what}")));
    }
    trimmed.parse().map_err(|_| CliError::flag(flag, format!("'{trimmed}' is not {what}")))
}

fn zone(text: &str) -> Result<TimeZone, CliError> {
    TimeZone::get(text).map_err(|_| {
        CliError::flag("--tz", format!("'{text}' is not a known time zone; give an IANA name such as Europe/London"))
    })
}

/// An instant: RFC 3339 with an offset, or a local date-time or date read in `zone`.
fn instant(flag: &str, text: &str, zone: &TimeZone) -> Result<Timestamp, CliError> {
    if let Ok(timestamp) = text.parse::<Timestamp>() {
        return Ok(timestamp);
    }
    let local = text
        .parse::<jiff::civil::DateTime>()
        .or_else(|_| text.parse::<jiff::civil::Date>().map(|date| date.to_datetime(jiff::civil::Time::midnight())));
    match local {
        Ok(datetime) => zone.to_ambiguous_timestamp(datetime).compatible().map_err(|e| CliError::flag(flag, e)),
        Err(_) => Err(CliError::flag(
            flag,
            format!(
                "'{text}' is not an instant; write RFC 3339, e.g. 2026-11-25T10:00:00Z, or a local 2026-11-25T10:00"
            ),
        )),
    }
}

fn instant_or_now(flag: &str, text: Option<&str>, zone: &TimeZone) -> Result<Timestamp, CliError> {
    text.map_or_else(|| Ok(Timestamp::now()), |text| instant(flag, text, zone))
}

fn read_file(flag: &str, path: &PathBuf) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|e| CliError::flag(flag, format!("cannot read {}: {e}", path.display())))
}

fn prescription_file(flag: &str, path: &PathBuf) -> Result<itb_dose::Prescription, CliError> {
    let text = read_file(flag, path)?;
    itb_dose::toml::from_toml(&text).map_err(|e| CliError::flag(flag, format!("{}: {e}", path.display())))
}

fn profile(name: &str) -> Result<DeviceProfile, CliError> {
    if name.ends_with(".toml") {
        let text = read_file("--profile", &PathBuf::from(name))?;
        return DeviceProfile::from_toml(&text).map_err(|e| CliError::flag("--profile", e));
    }
    DeviceProfile::built_in(name).map_err(|e| CliError::flag("--profile", e))
}

// ---- figures as text and JSON -----------------------------------------------------------------

fn ml(volume: Volume) -> Value {
    number(volume.number())
}

fn ml_per_day(rate: VolumeRate) -> Value {
    number(rate.number())
}

fn micrograms(mass: Mass) -> Value {
    number(mass.number())
}

fn hours(duration: itb_dose::Duration) -> Value {
    number(duration.hours_decimal())
}

fn opt_instant(at: Option<Timestamp>) -> Value {
    at.map_or(Value::Null, |t| Value::String(t.to_string()))
}

/// The daily dose a refill date assumes, in words: the figure and where it comes from.
fn dose_basis(prescription: &Prescription, from_file: bool) -> String {
    let totals = prescription.daily_totals();
    let assumed = text::dose_rate(prescription.worst_case_rate());
    let ptm = if totals.ptm_worst_case.is_zero() {
        String::new()
    } else {
        format!(" + {} of PTM boluses (every allowed bolus taken)", text::mass(totals.ptm_worst_case))
    };
    match prescription.therapy() {
        _ if !from_file && ptm.is_empty() => assumed,
        Therapy::SimpleContinuous { rate } if !from_file => format!("{assumed}: {}{ptm}", text::dose_rate(*rate)),
        _ if !from_file => format!("{assumed}: {}{ptm}", text::dose_rate(DoseRate::ZERO)),
        Therapy::Stopped => format!("{assumed}: the prescription is stopped (no delivery){ptm}"),
        therapy if ptm.is_empty() => {
            format!("{assumed}: the largest day of the {} prescription", therapy.mode().describe())
        }
        therapy => format!(
            "{assumed}: the largest day of the {} prescription, {},{ptm}",
            therapy.mode().describe(),
            text::mass(totals.max)
        ),
    }
}

// ---- refill -----------------------------------------------------------------------------------

/// The low-reservoir alarm threshold when neither the flag nor a profile gives one.
const ALARM_DEFAULT: Volume = Volume::ml(2);

/// The pump being filled, as far as the command line tells it.
struct Pump {
    /// The profile's name, when the pump was named by one.
    profile: Option<String>,
    /// The reservoir's capacity.
    capacity: Volume,
    /// The low-reservoir alarm threshold unless `--alarm-ml` says otherwise.
    alarm_default: Volume,
}

fn pump(args: &RefillArgs) -> Result<Option<Pump>, CliError> {
    if let Some(name) = &args.profile {
        let profile = profile(name)?;
        return Ok(Some(Pump {
            profile: Some(profile.name),
            capacity: profile.reservoir.capacity.value,
            alarm_default: profile.reservoir.low_alarm_default.value,
        }));
    }
    let Some(text) = &args.reservoir_ml else { return Ok(None) };
    let capacity = volume("--reservoir-ml", text)?;
    if capacity.is_zero() {
        return Err(CliError::flag(
            "--reservoir-ml",
            format!("{capacity} is not a reservoir; give the pump's capacity, e.g. 20 or 40"),
        ));
    }
    Ok(Some(Pump { profile: None, capacity, alarm_default: ALARM_DEFAULT }))
}

/// The dose and PTM flags as a prescription, so that the vocabulary's ceilings refuse them with
/// the very sentence a prescription file gets. The flags give no PTM lockout or bolus duration:
/// the shortest allowed are assumed, the worst case, as every allowed bolus is assumed taken.
fn prescription_from_flags(dose: DoseRate, ptm: Option<(Mass, u32)>) -> Result<Prescription, CliError> {
    let therapy = if dose.is_zero() { Therapy::Stopped } else { Therapy::SimpleContinuous { rate: dose } };
    let ptm = ptm.map(|(bolus, max_per_day)| PtmLimits {
        bolus,
        bolus_duration: limits::BOLUS_DURATION_MIN,
        lockout: limits::PTM_LOCKOUT_MIN,
        max_per_day,
    });
    Prescription::new(therapy, ptm).map_err(|error| {
        let flag = match &error {
            PrescriptionError::OutOfRange { field, .. } if field == "ptm.bolus_dose" => "--ptm-bolus",
            PrescriptionError::OutOfRange { field, .. } if field == "ptm.max_boluses_per_day" => "--ptm-per-day",
            _ => "--dose",
        };
        CliError::flag(flag, error)
    })
}

fn refill(args: &RefillArgs) -> Result<String, CliError> {
    let zone = zone(&args.tz)?;
    let pump = pump(args)?;
    let fill = volume("--fill-ml", &args.fill_ml)?;
    if let Some(pump) = &pump
        && fill > pump.capacity
    {
        let capacity = pump.capacity;
        let problem = match &pump.profile {
            Some(name) => format!(
                "{fill} is more than the {name} reservoir holds ({capacity}); give at most {capacity}, or the --profile of the pump being filled"
            ),
            None => {
                format!("{fill} is more than the reservoir holds (--reservoir-ml {capacity}); give at most {capacity}")
            }
        };
        return Err(CliError::flag("--fill-ml", problem));
    }
    let drug = drug("--concentration", &args.concentration)?;
    let alarm_threshold = match &args.alarm_ml {
        Some(text) => volume("--alarm-ml", text)?,
        None => pump.as_ref().map_or(ALARM_DEFAULT, |pump| pump.alarm_default),
    };
    let stability_days: u64 = whole("--stability-days", &args.stability_days, "a whole number of days")?;
    let stability = Stability::days(stability_days).map_err(|e| CliError::flag("--stability-days", e))?;
    let margin_days: u16 = whole("--margin-days", &args.margin_days, "a whole number of days from 0 to 180")?;
    if margin_days > Stability::MANUFACTURER_DAYS {
        return Err(CliError::flag(
            "--margin-days",
            format!("{margin_days} days is more than the 180-day stability limit"),
        ));
    }
    let start = instant_or_now("--start", args.start.as_deref(), &zone)?;
    let (daily_dose, basis) = match (&args.dose, &args.prescription) {
        (Some(text), _) => {
            let dose = dose_rate("--dose", text)?;
            let ptm = match (&args.ptm_bolus, &args.ptm_per_day) {
                (Some(bolus), Some(count)) => {
                    Some((mass("--ptm-bolus", bolus)?, whole("--ptm-per-day", count, "a whole number of boluses")?))
                }
                _ => None,
            };
            let prescription = prescription_from_flags(dose, ptm)?;
            (prescription.worst_case_rate(), dose_basis(&prescription, false))
        }
        (None, Some(path)) => {
            let prescription = prescription_file("--prescription", path)?;
            (prescription.worst_case_rate(), dose_basis(&prescription, true))
        }
        (None, None) => return Err(CliError("missing --dose or --prescription: give one".to_owned())),
    };
    let inputs = RefillInputs {
        fill,
        drug,
        daily_dose,
        alarm_threshold,
        stability,
        margin_days,
        start,
        filled_at: None,
        zone: zone.clone(),
    };
    let schedule = refill_schedule(&inputs).map_err(|e| {
        let flag = match e {
            itb_dose::calc::refill::RefillError::AlarmAboveFill { .. } => "--alarm-ml",
            itb_dose::calc::refill::RefillError::OutOfCalendar => "--start",
        };
        CliError::flag(flag, e)
    })?;
    Ok(refill_report(&inputs, &schedule, &basis, pump.as_ref()).render(args.json))
}

fn refill_report(inputs: &RefillInputs, s: &RefillSchedule, basis: &str, pump: Option<&Pump>) -> Report {
    let zone = &inputs.zone;
    let days = |d: Option<itb_dose::Duration>| d.map_or(Value::Null, |d| number(d.days_decimal()));
    let mut report = Report::new("Refill schedule");
    report
        .json("daily_dose_micrograms_per_day", number(s.daily_dose.number()))
        .json("daily_volume_ml", ml_per_day(s.daily_volume))
        .json("days_to_low_reservoir_alarm", days(s.to_alarm))
        .json("days_to_empty", days(s.to_empty))
        .json("start", Value::String(inputs.start.to_string()))
        .json("low_reservoir_alarm_at", opt_instant(s.alarm_at))
        .json("empty_at", opt_instant(s.empty_at))
        .json("drug_expires_at", Value::String(s.expires_at.to_string()))
        .json("refill_due_by", Value::String(s.due_by.to_string()))
        .json("refill_due_on", Value::String(s.due_on.to_string()))
        .json("limited_by", Value::String(s.limited_by.as_str().to_owned()))
        .json("time_zone", Value::String(zone.iana_name().unwrap_or("UTC").to_owned()))
        .json("low_reservoir_alarm_ml", ml(inputs.alarm_threshold))
        .json("reservoir_ml", pump.map_or(Value::Null, |pump| ml(pump.capacity)));
    let when = |at: Option<Timestamp>, to: Option<itb_dose::Duration>| match (at, to) {
        (Some(at), Some(to)) => format!("{} (after {})", text::date_time(at, zone), text::duration(to)),
        _ => "never: nothing is delivered".to_owned(),
    };
    if let Some(pump) = pump {
        let reservoir = format!("{} reservoir", pump.capacity);
        report.line(
            "Pump",
            pump.profile.as_ref().map_or_else(|| reservoir.clone(), |name| format!("{name}, {reservoir}")),
        );
    }
    report
        .line("Fill", format!("{} of {}", inputs.fill, inputs.drug))
        .line("Daily dose assumed", basis)
        .line("Daily volume", text::volume_rate(s.daily_volume))
        .line("Filled", text::date_time(inputs.start, zone))
        .line(&format!("Low-reservoir alarm ({})", text::volume(inputs.alarm_threshold)), when(s.alarm_at, s.to_alarm))
        .line("Reservoir empty", when(s.empty_at, s.to_empty))
        .line(&format!("Drug expires ({} days)", inputs.stability.in_days()), text::date_time(s.expires_at, zone))
        .line("REFILL DUE BY", text::date_time(s.due_by, zone))
        // The refill-due date is the due instant's date in the service's zone.
        .line("Refill due on", text::date(s.due_by, zone));
    let margin = if inputs.margin_days == 0 {
        String::new()
    } else {
        format!(", less the service's margin of {} days", inputs.margin_days)
    };
    report.note(format!("The refill date is set by {}{margin}.", s.limited_by.describe()));
    report
}

// ---- bridge and priming -----------------------------------------------------------------------

fn dead_volume(args: &DeadVolumeArgs, catheter_only: bool) -> Result<(Volume, Option<DeviceProfile>), CliError> {
    if let Some(text) = &args.dead_volume_ml {
        return Ok((volume("--dead-volume-ml", text)?, None));
    }
    let name =
        args.profile.as_deref().ok_or_else(|| CliError("missing --dead-volume-ml or --profile: give one".into()))?;
    let profile = profile(name)?;
    let cm_text = args
        .catheter_cm
        .as_deref()
        .ok_or_else(|| CliError("missing --catheter-cm: give the catheter length".into()))?;
    let cm: u32 = whole("--catheter-cm", cm_text, "a whole number of centimetres")?;
    if !(1..=200).contains(&cm) {
        return Err(CliError::flag("--catheter-cm", format!("{cm} cm is not a catheter length; give 1 to 200 cm")));
    }
    let full = profile.fluid_path.dead_volume(cm).ok_or_else(|| CliError::flag("--catheter-cm", "too large"))?;
    let volume = if catheter_only { full.saturating_sub(profile.fluid_path.pump_tubing.value) } else { full };
    Ok((volume, Some(profile)))
}

fn bridge_command(args: &BridgeArgs) -> Result<String, CliError> {
    let old = drug("--old-concentration", &args.old_concentration)?;
    let new = drug("--new-concentration", &args.new_concentration)?;
    let dose = dose_rate("--dose", &args.dose)?;
    let (volume, profile) = dead_volume(&args.dead_volume, false)?;
    let plan = bridge::bridge(volume, old, new, dose).map_err(|e| CliError::flag("--dose", e))?;
    Ok(bridge_report(&plan, old, new, dose, profile.as_ref()).render(args.json))
}

fn bridge_report(
    plan: &BridgePlan,
    old: Baclofen,
    new: Baclofen,
    dose: DoseRate,
    profile: Option<&DeviceProfile>,
) -> Report {
    let ratio = itb_dose::decimal::format(plan.skipped_ratio_ppm, 6);
    let mut report = Report::new("Bridge bolus after a concentration change");
    report
        .json("bridge_volume_ml", ml(plan.volume))
        .json("bridge_rate_ml_per_day", ml_per_day(plan.rate))
        .json("bridge_hours", hours(plan.duration))
        .json("rate_after_ml_per_day", ml_per_day(plan.rate_after))
        .json("old_drug_in_dead_volume_micrograms", micrograms(plan.old_drug_in_dead_volume))
        .json("skipped_bridge_daily_dose_micrograms_per_day", number(plan.skipped_daily_dose.number()))
        .json("skipped_bridge_hours", hours(plan.skipped_duration))
        .json("skipped_bridge_dose_ratio", number(ratio));
    report
        .line("Change", format!("{} to {}, at {dose}", old.concentration(), new.concentration()))
        .line(
            "Dead volume (old drug)",
            format!("{} holding {}", text::volume(plan.volume), text::mass(plan.old_drug_in_dead_volume)),
        )
        .line("Bridge rate", format!("{} ({dose} of the old drug)", text::volume_rate(plan.rate)))
        .line("Bridge duration", text::duration(plan.duration))
        .line("Rate after the bridge", format!("{} ({dose} of the new drug)", text::volume_rate(plan.rate_after)));
    if old == new {
        report.note("The concentrations are the same: the bridge keeps the same rate and changes nothing.");
    } else {
        let effect = if plan.skipped_ratio_ppm > 1_000_000 { "an OVERDOSE" } else { "an underdose" };
        // Parts per million of the prescribed dose, as millionths of a percent.
        let percent = i64::try_from(plan.skipped_ratio_ppm.saturating_mul(100)).unwrap_or(i64::MAX);
        report.note(format!(
            "Without a bridge the old drug would be delivered at the new rate: {} ({} of the prescribed dose) for {}, {effect}.",
            text::dose_rate(plan.skipped_daily_dose),
            text::percent(percent),
            text::duration(plan.skipped_duration)
        ));
    }
    if let Some(profile) = profile
        && (plan.rate < profile.rates.min.value || plan.rate > profile.rates.max.value)
    {
        report.note(format!(
            "The bridge rate {} is outside the pump's range {} to {} ({}).",
            text::volume_rate(plan.rate),
            text::volume_rate(profile.rates.min.value),
            text::volume_rate(profile.rates.max.value),
            profile.name
        ));
    }
    report
}

fn prime(args: &PrimeArgs) -> Result<String, CliError> {
    let (volume, profile) = dead_volume(&args.dead_volume, args.catheter_only)?;
    let rate = match (&args.rate_ml_per_day, &profile) {
        (Some(text), _) => VolumeRate::parse_implied(text).map_err(|e| CliError::flag("--rate-ml-per-day", e))?,
        (None, Some(profile)) => profile.rates.priming.value,
        (None, None) => return Err(CliError("missing --rate-ml-per-day: give the priming rate, or --profile".into())),
    };
    let plan = bridge::priming(volume, rate)
        .ok_or_else(|| CliError::flag("--rate-ml-per-day", "the priming rate must be more than 0 mL/day"))?;
    let mut report = Report::new("Priming bolus");
    report
        .json("priming_volume_ml", ml(plan.volume))
        .json("priming_rate_ml_per_day", ml_per_day(plan.rate))
        .json("priming_hours", hours(plan.duration));
    let what = if args.catheter_only { "empty catheter" } else { "empty catheter and pump tubing" };
    report
        .line("Volume to fill", format!("{} ({what})", text::volume(plan.volume)))
        .line("Priming rate", text::volume_rate(plan.rate))
        .line("Duration", text::duration(plan.duration))
        .note("No drug reaches the patient until the catheter is full; start the prescribed rate when priming ends.");
    Ok(report.render(args.json))
}

// ---- titration --------------------------------------------------------------------------------

fn titrate_command(args: &TitrateArgs) -> Result<String, CliError> {
    let utc = TimeZone::UTC;
    let current = dose_rate("--current", &args.current)?;
    let proposed = dose_rate("--proposed", &args.proposed)?;
    let age_years = args.age.as_deref().map(|text| whole("--age", text, "an age in whole years")).transpose()?;
    let last_increase_at =
        args.last_increase_at.as_deref().map(|t| instant("--last-increase-at", t, &utc)).transpose()?;
    let at = instant_or_now("--at", args.at.as_deref(), &utc)?;
    let origin = match args.origin {
        OriginArg::Spinal => Origin::Spinal,
        OriginArg::Cerebral => Origin::Cerebral,
    };
    let inputs = TitrationInputs { current, proposed, origin: Some(origin), age_years, last_increase_at, at };
    let result = titrate::check(&inputs).map_err(|e| {
        let flag = match e {
            titrate::TitrationError::NoCurrentDose => "--current",
            titrate::TitrationError::LastIncreaseInFuture { .. } => "--last-increase-at",
            titrate::TitrationError::Age(_) => "--age",
        };
        CliError::flag(flag, e)
    })?;
    let percent = titrate::percent_text(result.change_micro_percent);
    let (band_min, band_max) = result.band_percent;
    let mut report = Report::new("Titration check");
    report
        .json("change_percent", number(&percent))
        .json("band_min_percent", json!(band_min))
        .json("band_max_percent", json!(band_max))
        .json("verdict", Value::String(result.verdict.as_str().to_owned()))
        .json("reasons", json!(result.reasons));
    report
        .line(
            "Change",
            format!(
                "{} to {} ({})",
                text::dose_rate(current),
                text::dose_rate(proposed),
                text::percent(result.change_micro_percent)
            ),
        )
        .line("Guideline step", format!("{band_min}-{band_max}% ({origin} origin)"))
        .line("Verdict", result.verdict.as_str().replace('_', " ").to_uppercase());
    for reason in &result.reasons {
        report.note(reason.clone());
    }
    Ok(report.render(args.json))
}

// ---- screening --------------------------------------------------------------------------------

fn trial(text: &str) -> Result<Trial, CliError> {
    let (dose, result) = text.split_once(':').ok_or_else(|| {
        CliError::flag("--trial", format!("'{text}' is not DOSE:RESULT, e.g. 50:no-response or 75:responded"))
    })?;
    let dose = mass("--trial", dose)?;
    let responded = match result.trim().to_lowercase().as_str() {
        "responded" | "response" | "yes" => true,
        "no-response" | "none" | "no" => false,
        other => {
            return Err(CliError::flag(
                "--trial",
                format!("'{other}' is not a result; write responded or no-response"),
            ));
        }
    };
    Ok(Trial { dose, responded })
}

fn screening_command(args: &ScreeningArgs) -> Result<String, CliError> {
    let effect_hours = args.effect_hours.as_deref().map(|t| whole("--effect-hours", t, "whole hours")).transpose()?;
    let observed = EffectObserved { effect_hours, side_effects: args.side_effects };
    let outcome = if let Some(text) = &args.effective_dose {
        let effective = mass("--effective-dose", text)?;
        if effective.is_zero() || effective > Mass::micrograms(100) {
            return Err(CliError::flag(
                "--effective-dose",
                format!("{effective} is not a screening dose; the ladder goes up to 100 micrograms"),
            ));
        }
        let (starting, reasons) = screening::starting_dose(effective, observed);
        screening::ScreeningOutcome {
            ladder: screening::ladder(args.small),
            status: ScreeningStatus::Candidate { effective, starting },
            reasons,
        }
    } else {
        let trials = args.trials.iter().map(|t| trial(t)).collect::<Result<Vec<_>, _>>()?;
        screening::screening(args.small, &trials, observed).map_err(|e| CliError::flag("--trial", e))?
    };
    let ladder: Vec<Value> = outcome.ladder.iter().map(|m| micrograms(*m)).collect();
    let (next, effective, starting) = match &outcome.status {
        ScreeningStatus::NextDose(next) => (micrograms(*next), Value::Null, Value::Null),
        ScreeningStatus::Candidate { effective, starting } => {
            (Value::Null, micrograms(*effective), number(starting.number()))
        }
        ScreeningStatus::NotCandidate => (Value::Null, Value::Null, Value::Null),
    };
    let mut report = Report::new("Screening trial");
    report
        .json("ladder_micrograms", Value::Array(ladder))
        .json("status", Value::String(outcome.status.as_str().to_owned()))
        .json("next_dose_micrograms", next)
        .json("effective_dose_micrograms", effective)
        .json("starting_dose_micrograms_per_day", starting)
        .json("reasons", json!(outcome.reasons));
    let ladder_text = outcome.ladder.iter().map(|m| text::mass(*m)).collect::<Vec<_>>().join(", then ");
    report.line("Ladder", ladder_text);
    match &outcome.status {
        ScreeningStatus::NextDose(next) => report.line("Next bolus", text::mass(*next)),
        ScreeningStatus::Candidate { effective, starting } => report
            .line("Effective dose", text::mass(*effective))
            .line("Starting daily dose", text::dose_rate(*starting)),
        ScreeningStatus::NotCandidate => report.line("Outcome", "not a candidate"),
    };
    for reason in &outcome.reasons {
        report.note(reason.clone());
    }
    Ok(report.render(args.json))
}

// ---- goal attainment --------------------------------------------------------------------------

fn goal(number: usize, text: &str) -> Result<Goal, CliError> {
    let flag = "--goal";
    let parts: Vec<&str> = text.split(':').map(str::trim).collect();
    let score_text = parts[0];
    let score: i8 = score_text.trim_start_matches('+').parse().map_err(|_| {
        CliError::flag(flag, format!("goal {number}: '{score_text}' is not an attainment; write -2, -1, 0, 1 or 2"))
    })?;
    let weight = |text: &str, what: &str| {
        text.parse::<u8>()
            .map_err(|_| CliError::flag(flag, format!("goal {number}: '{text}' is not a {what} from 0 to 3")))
    };
    let (importance, difficulty) = match parts.as_slice() {
        [_] => (1, 1),
        [_, importance, difficulty] => (weight(importance, "importance")?, weight(difficulty, "difficulty")?),
        _ => {
            return Err(CliError::flag(
                flag,
                format!("goal {number}: '{text}' is not SCORE or SCORE:IMPORTANCE:DIFFICULTY"),
            ));
        }
    };
    Ok(Goal { score, importance, difficulty })
}

fn gas_command(args: &GasArgs) -> Result<String, CliError> {
    let goals = args.goals.iter().enumerate().map(|(i, t)| goal(i + 1, t)).collect::<Result<Vec<_>, _>>()?;
    let t = gas::t_score(&goals).map_err(|e| CliError::flag("--goal", e))?;
    let rounded = (t * 1_000_000.0).round() / 1_000_000.0;
    let mut report = Report::new("Goal Attainment Scaling");
    report.json("t_score", json!(rounded)).json("goals", json!(goals.len())).json("rho", json!(gas::RHO));
    report.line("Goals", goals.len()).line("T-score", format!("{rounded:.2}"));
    report.note("50 means goals were met as expected; above 50, better than expected; below, worse.");
    Ok(report.render(args.json))
}

// ---- prescription totals ----------------------------------------------------------------------

fn totals(args: &TotalsArgs) -> Result<String, CliError> {
    let prescription = prescription_file("--prescription", &args.prescription)?;
    let totals = prescription.daily_totals();
    let days: Vec<Value> =
        totals.days.iter().map(|d| json!({ "day": d.day, "micrograms": micrograms(d.total) })).collect();
    let mut report = Report::new("Prescription");
    report
        .json("mode", Value::String(prescription.therapy().mode_name().to_owned()))
        .json("days", Value::Array(days))
        .json("max_day_micrograms", micrograms(totals.max))
        .json("mean_day_micrograms", micrograms(totals.mean))
        .json("ptm_worst_case_micrograms", micrograms(totals.ptm_worst_case))
        .json("max_day_with_ptm_micrograms", micrograms(totals.max_with_ptm));
    report.line("Prescription", prescription_words(&prescription));
    for day in &totals.days {
        report.line(&capitalised(day.day), text::mass(day.total));
    }
    report
        .line("Largest day", text::mass(totals.max))
        .line("Mean day", text::mass(totals.mean))
        .line("PTM, every bolus taken", text::mass(totals.ptm_worst_case))
        .line("Largest day with PTM", text::mass(totals.max_with_ptm));
    Ok(report.render(args.json))
}
