//! The review of a therapy change or a refill: old beside new, the figures a clinician checks,
//! and every warning, each with a code, a severity and a sentence.
//!
//! This is the one home of the clinical advice a programmer gives before a pump is changed
//! (the pump itself enforces only its hard limits). The rules, in the order they are checked:
//!
//! - **Titration** ([`crate::calc::titrate`]): an increase of the largest daily dose is checked
//!   against the patient's guideline band when the origin is known, and against the largest step
//!   of any band (30 %) when it is not; an increase within 24 hours of the last one (or of the
//!   implant) is too soon; when the pump's history cannot say whether there was one, the check
//!   cannot run. A cut of more than 20 % at once can bring on withdrawal.
//! - **Entered per hour instead of per day** (ISMP: 60 micrograms/day intended, 60 micrograms
//!   an hour programmed): a rate of three times the current largest day or more, or a day above
//!   the highest daily dose on record (2003 micrograms).
//! - **Delivery stops**: a stopped therapy, or a reservoir known to be empty.
//! - **PTM**: limits removed; the worst case with every bolus taken.
//! - **Refill**: the gap between withdrawn and expected ([`crate::calc::refill_gap`]); a
//!   concentration change with its bridge bolus, or without one; a fill at or below the alarm
//!   threshold.
//! - **Dates**: the low-reservoir alarm moving earlier; a refill due within 3 days; the drug
//!   expiring before the alarm.
//!
//! A warning of [`Severity::Danger`] needs an explicit override with a written reason
//! ([`OverrideReason`]); "yes" alone never passes it.

use std::fmt;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::calc::bridge::bridge;
use crate::calc::refill::{RefillInputs, RefillSchedule, pump_volume_rate, refill_schedule};
use crate::calc::refill_gap::RefillGap;
use crate::calc::titrate::{
    self, LARGEST_STEP_PERCENT, LastIncrease, Origin, TitrationCheck, TitrationInputs, Verdict,
};
use crate::drug::{Baclofen, Stability};
use crate::prescription::{Prescription, Therapy};
use crate::quantity::{Concentration, DoseRate, Duration, Mass, Volume, VolumeRate};
use crate::text;

/// The highest daily dose on record (overall range seen 12-2003 micrograms/day; docs/DOMAIN.md):
/// a day above it is far more likely a rate entered per hour than a dose anyone needs.
pub const DOSE_ON_RECORD_MAX: DoseRate = DoseRate::micrograms_per_day(2003);
/// A rate this many times the current largest day or more looks entered per hour.
pub const PER_HOUR_FACTOR: u64 = 3;
/// A cut larger than this (percent) at once can bring on withdrawal.
pub const CUT_CAUTION_PERCENT: u64 = 20;
/// A refill due within this many days is flagged: book it before the patient leaves.
pub const REFILL_SOON_DAYS: u64 = 3;
/// Shortest written reason, in characters.
pub const REASON_MIN_CHARS: usize = 10;
/// Longest written reason, in bytes (it is kept in the pump's log).
pub const REASON_MAX_BYTES: usize = 160;

/// What one side of a review is: the pump as it is, or as it would be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PumpSide {
    /// The programmed therapy (`None`: none).
    pub prescription: Option<Prescription>,
    /// The drug in the reservoir.
    pub concentration: Concentration,
    /// The reservoir (the pump's estimate).
    pub reservoir: Volume,
    /// The low-reservoir alarm threshold.
    pub alarm_threshold: Volume,
    /// When the drug in the reservoir went in (`None`: now, as after a refill).
    pub filled_at: Option<Timestamp>,
}

/// The figures of one side, derived by the rules a refill date uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figures {
    /// The largest day of the therapy, without PTM boluses.
    pub max_day: Mass,
    /// The mean day of the cycle.
    pub mean_day: Mass,
    /// The largest day with every allowed PTM bolus: what refill dates assume.
    pub worst_case_day: Mass,
    /// The volume the pump moves on that day.
    pub daily_volume: VolumeRate,
    /// The refill schedule from now (`None` when it cannot be computed, e.g. an empty
    /// reservoir or a concentration outside the drug's range).
    pub schedule: Option<RefillSchedule>,
}

/// What kind of change is reviewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A new therapy.
    Therapy,
    /// A refill (the therapy stays; reservoir and perhaps concentration change).
    Refill {
        /// A bridge bolus runs after a concentration change.
        bridge: bool,
    },
}

impl ChangeKind {
    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Therapy => "therapy",
            ChangeKind::Refill { .. } => "refill",
        }
    }
}

/// What the clinician knows of the patient, for the titration guideline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Patient {
    /// Origin of the spasticity, if given.
    pub origin: Option<Origin>,
    /// Age in whole years, if given.
    pub age_years: Option<u32>,
}

/// How a service schedules refills: the settings every refill date is computed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefillPolicy {
    /// The service's time zone, for dates.
    pub zone: TimeZone,
    /// How long drug may stay in the reservoir.
    pub stability: Stability,
    /// Days before the alarm (or expiry) that the service refills.
    pub margin_days: u16,
}

impl Default for RefillPolicy {
    /// Europe/London, the manufacturer's 180 days, and a margin of 3 days (clinics refill 3-5
    /// days before the low-reservoir alarm date; docs/DOMAIN.md).
    fn default() -> Self {
        Self { zone: text::service_zone(), stability: Stability::default(), margin_days: 3 }
    }
}

/// Everything a review is computed from.
#[derive(Debug, Clone)]
pub struct ReviewInputs {
    /// The change.
    pub change: ChangeKind,
    /// The pump now.
    pub old: PumpSide,
    /// The pump after the change.
    pub new: PumpSide,
    /// Now (true time).
    pub at: Timestamp,
    /// The service's refill policy.
    pub policy: RefillPolicy,
    /// The pump tubing and catheter volume (for a bridge bolus).
    pub dead_volume: Volume,
    /// The patient.
    pub patient: Patient,
    /// The last increase, from the pump's history.
    pub last_increase: LastIncrease,
    /// A refill's comparison of withdrawn against expected, if the old drug was withdrawn.
    pub gap: Option<RefillGap>,
}

/// How much a warning matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// For the record.
    Info,
    /// Read and act on it (rebook, check).
    Caution,
    /// Dangerous: the change needs an explicit override with a written reason.
    Danger,
}

impl Severity {
    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Caution => "caution",
            Severity::Danger => "danger",
        }
    }
}

/// What a warning is about; its code in JSON and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WarningCode {
    /// An increase within the guideline (or no band known).
    DoseIncrease,
    /// An increase above the patient's guideline band.
    IncreaseAboveGuideline,
    /// An increase above the largest step of any band, origin not given.
    IncreaseAboveLargestStep,
    /// An increase within 24 hours of the last one, or of the implant.
    IncreaseTooSoon,
    /// The pump's history cannot say whether the dose rose in the last 24 hours.
    TitrationHistoryUnknown,
    /// The origin was not given: the largest step was used.
    OriginNotGiven,
    /// A cut of more than 20 %.
    LargeCut,
    /// A rate that looks entered per hour instead of per day.
    PerHourSuspected,
    /// A day above the highest dose on record.
    AboveDoseOnRecord,
    /// Above the usual maintenance range.
    AboveMaintenanceRange,
    /// The new therapy delivers nothing.
    DeliveryStops,
    /// The reservoir is known to be empty.
    ReservoirEmpty,
    /// PTM limits removed.
    PtmRemoved,
    /// The worst case with every PTM bolus.
    PtmWorstCase,
    /// Withdrawn against expected, within the limit.
    RefillGapWithinLimit,
    /// Withdrawn against expected, above the limit.
    RefillGapAboveLimit,
    /// A concentration change with a bridge bolus.
    BridgeBolus,
    /// A concentration change without a bridge bolus.
    NoBridgeBolus,
    /// A fill at or below the alarm threshold.
    FillAtOrBelowAlarm,
    /// The low-reservoir alarm moves earlier.
    AlarmEarlier,
    /// The refill is due within 3 days.
    RefillDueSoon,
    /// The drug expires before the alarm.
    DrugExpiresFirst,
}

impl WarningCode {
    /// The code in JSON and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            WarningCode::DoseIncrease => "dose_increase",
            WarningCode::IncreaseAboveGuideline => "increase_above_guideline",
            WarningCode::IncreaseAboveLargestStep => "increase_above_largest_step",
            WarningCode::IncreaseTooSoon => "increase_too_soon",
            WarningCode::TitrationHistoryUnknown => "titration_history_unknown",
            WarningCode::OriginNotGiven => "origin_not_given",
            WarningCode::LargeCut => "large_cut",
            WarningCode::PerHourSuspected => "per_hour_suspected",
            WarningCode::AboveDoseOnRecord => "above_dose_on_record",
            WarningCode::AboveMaintenanceRange => "above_maintenance_range",
            WarningCode::DeliveryStops => "delivery_stops",
            WarningCode::ReservoirEmpty => "reservoir_empty",
            WarningCode::PtmRemoved => "ptm_removed",
            WarningCode::PtmWorstCase => "ptm_worst_case",
            WarningCode::RefillGapWithinLimit => "refill_gap_within_limit",
            WarningCode::RefillGapAboveLimit => "refill_gap_above_limit",
            WarningCode::BridgeBolus => "bridge_bolus",
            WarningCode::NoBridgeBolus => "no_bridge_bolus",
            WarningCode::FillAtOrBelowAlarm => "fill_at_or_below_alarm",
            WarningCode::AlarmEarlier => "alarm_earlier",
            WarningCode::RefillDueSoon => "refill_due_soon",
            WarningCode::DrugExpiresFirst => "drug_expires_first",
        }
    }
}

impl fmt::Display for WarningCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A warning: its code, how much it matters, and a sentence for the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// What it is about.
    pub code: WarningCode,
    /// How much it matters.
    pub severity: Severity,
    /// For the person: what, and what to do.
    pub sentence: String,
}

impl Warning {
    fn new(code: WarningCode, severity: Severity, sentence: impl Into<String>) -> Self {
        Self { code, severity, sentence: sentence.into() }
    }
    /// True when the change needs an explicit override with a written reason.
    pub fn needs_override(&self) -> bool {
        self.severity == Severity::Danger
    }
}

/// The review: figures old beside new, the titration check when one applies, and the warnings,
/// most severe first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    /// The change.
    pub change: ChangeKind,
    /// Figures now.
    pub old: Figures,
    /// Figures after.
    pub new: Figures,
    /// The titration check of an increase or cut, when the origin is known.
    pub titration: Option<TitrationCheck>,
    /// Every warning, most severe first.
    pub warnings: Vec<Warning>,
}

impl Review {
    /// True when any warning needs an explicit override with a written reason.
    pub fn needs_override(&self) -> bool {
        self.warnings.iter().any(Warning::needs_override)
    }
    /// The warnings that need an override.
    pub fn dangers(&self) -> impl Iterator<Item = &Warning> {
        self.warnings.iter().filter(|w| w.needs_override())
    }
}

/// Why a written reason is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReasonError {
    /// Too short to say anything.
    #[error(
        "a reason must say why in words (at least {REASON_MIN_CHARS} characters, e.g. \"consultant review: spasms not controlled\"), not \"{0}\""
    )]
    TooShort(String),
    /// Only an agreement, not a reason.
    #[error("\"{0}\" agrees but gives no reason; write why the change is needed despite the warning")]
    NotAReason(String),
    /// Too long for the pump's log.
    #[error("a reason is kept in the pump's log and may be at most {REASON_MAX_BYTES} bytes; this one is {0}")]
    TooLong(usize),
    /// A line break or other control character: a reason is one line in the pump's log.
    #[error("a reason is one line in the pump's log: write it without line breaks or tabs")]
    ControlCharacter,
}

/// A clinician's written reason for going ahead despite a dangerous warning: words that say
/// why, never just "yes".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideReason(String);

impl OverrideReason {
    /// Checks a reason: trimmed, at least [`REASON_MIN_CHARS`] characters, at most
    /// [`REASON_MAX_BYTES`] bytes, and more than a word of agreement.
    pub fn parse(text: &str) -> Result<Self, ReasonError> {
        let trimmed = text.trim();
        let bare: String =
            trimmed.chars().filter(|c| c.is_alphanumeric() || c.is_whitespace()).collect::<String>().to_lowercase();
        let bare = bare.split_whitespace().collect::<Vec<_>>().join(" ");
        const AGREEMENTS: [&str; 12] = [
            "yes",
            "y",
            "ok",
            "okay",
            "confirm",
            "confirmed",
            "agreed",
            "agree",
            "override",
            "accept",
            "yes yes",
            "i agree",
        ];
        if AGREEMENTS.contains(&bare.as_str()) || bare.chars().all(|c| c == 'y' || c == 'e' || c == 's' || c == ' ') {
            return Err(ReasonError::NotAReason(trimmed.to_owned()));
        }
        if trimmed.chars().count() < REASON_MIN_CHARS || !trimmed.contains(char::is_whitespace) {
            return Err(ReasonError::TooShort(trimmed.to_owned()));
        }
        if trimmed.len() > REASON_MAX_BYTES {
            return Err(ReasonError::TooLong(trimmed.len()));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(ReasonError::ControlCharacter);
        }
        Ok(Self(trimmed.to_owned()))
    }
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OverrideReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The figures of one side from `at`, under the service's refill policy.
pub fn figures(side: &PumpSide, at: Timestamp, policy: &RefillPolicy) -> Figures {
    let totals = side.prescription.as_ref().map(Prescription::daily_totals);
    let max_day = totals.as_ref().map_or(Mass::ZERO, |t| t.max);
    let mean_day = totals.as_ref().map_or(Mass::ZERO, |t| t.mean);
    let worst_case_day = totals.as_ref().map_or(Mass::ZERO, |t| t.max_with_ptm);
    let worst_rate = DoseRate::ng_per_day(worst_case_day.as_ng());
    let drug = Baclofen::new(side.concentration).ok();
    let daily_volume = drug.and_then(|drug| pump_volume_rate(worst_rate, drug)).unwrap_or(VolumeRate::ZERO);
    let schedule = drug.and_then(|drug| {
        refill_schedule(&RefillInputs {
            fill: side.reservoir,
            drug,
            daily_dose: worst_rate,
            alarm_threshold: side.alarm_threshold.min(side.reservoir),
            stability: policy.stability,
            margin_days: policy.margin_days,
            start: at,
            filled_at: side.filled_at,
            zone: policy.zone.clone(),
        })
        .ok()
    });
    Figures { max_day, mean_day, worst_case_day, daily_volume, schedule }
}

/// Reviews a change: the figures on both sides and every warning.
pub fn review(inputs: &ReviewInputs) -> Review {
    let old = figures(&inputs.old, inputs.at, &inputs.policy);
    let new = figures(&inputs.new, inputs.at, &inputs.policy);
    let mut warnings = Vec::new();
    let mut titration = None;
    if inputs.change == ChangeKind::Therapy {
        titration = dose_change(inputs, &old, &new, &mut warnings);
        per_hour(inputs, &old, &mut warnings);
    }
    if let Some(gap) = &inputs.gap {
        let severity = if gap.stops_the_refill() { Severity::Danger } else { Severity::Info };
        let code =
            if gap.stops_the_refill() { WarningCode::RefillGapAboveLimit } else { WarningCode::RefillGapWithinLimit };
        warnings.push(Warning::new(code, severity, gap.sentence()));
    }
    if let ChangeKind::Refill { bridge } = inputs.change {
        concentration_change(inputs, &old, bridge, &mut warnings);
        if inputs.new.reservoir <= inputs.new.alarm_threshold {
            warnings.push(Warning::new(
                WarningCode::FillAtOrBelowAlarm,
                Severity::Caution,
                format!(
                    "The fill of {} is at or below the low-reservoir alarm threshold of {}: the alarm will sound at once.",
                    text::volume(inputs.new.reservoir),
                    text::volume(inputs.new.alarm_threshold)
                ),
            ));
        }
    }
    delivery(inputs, &new, &mut warnings);
    ptm(inputs, &new, &mut warnings);
    dates(inputs, &old, &new, &mut warnings);
    // Most severe first; the order of the rules within a severity.
    warnings.sort_by_key(|w| std::cmp::Reverse(w.severity));
    Review { change: inputs.change, old, new, titration, warnings }
}

/// The change from `old` to `new` in millionths of a percent, signed.
fn micro_percent(old: u64, new: u64) -> i64 {
    let magnitude = crate::decimal::div_round(u128::from(new.abs_diff(old)) * 100_000_000, u128::from(old.max(1)));
    let magnitude = i64::try_from(magnitude).unwrap_or(i64::MAX);
    if new < old { -magnitude } else { magnitude }
}

/// The titration rules for a change of the largest daily dose.
fn dose_change(inputs: &ReviewInputs, old: &Figures, new: &Figures, out: &mut Vec<Warning>) -> Option<TitrationCheck> {
    let (current, proposed) = (old.max_day.as_ng(), new.max_day.as_ng());
    let (current_rate, proposed_rate) = (DoseRate::ng_per_day(current), DoseRate::ng_per_day(proposed));
    let change = format!("{} to {}", text::dose_rate(current_rate), text::dose_rate(proposed_rate));
    if proposed < current {
        let above_caution =
            u128::from(current - proposed) * 100 > u128::from(current) * u128::from(CUT_CAUTION_PERCENT);
        if proposed != 0 && above_caution {
            let cut = text::percent(-micro_percent(current, proposed)).trim_start_matches('-').to_owned();
            out.push(Warning::new(
                WarningCode::LargeCut,
                Severity::Caution,
                format!(
                    "The largest daily dose falls {cut} from {change}: a cut of more than {CUT_CAUTION_PERCENT}% at once can bring on withdrawal; watch for returning spasms, itching and fever."
                ),
            ));
        }
    }
    if current == 0 || proposed == current {
        return None;
    }
    let last_increase_at = inputs.last_increase.at(inputs.at);
    let check = inputs.patient.origin.and_then(|origin| {
        titrate::check(&TitrationInputs {
            current: current_rate,
            proposed: proposed_rate,
            origin,
            age_years: inputs.patient.age_years,
            last_increase_at,
            at: inputs.at,
        })
        .ok()
    });
    if proposed < current {
        return check;
    }
    let percent = text::percent(micro_percent(current, proposed));
    match &check {
        Some(check) => {
            let (low, high) = check.band_percent;
            let (code, severity) = match check.verdict {
                Verdict::ExceedsGuideline => (WarningCode::IncreaseAboveGuideline, Severity::Danger),
                Verdict::TooSoon => (WarningCode::IncreaseTooSoon, Severity::Danger),
                _ => (WarningCode::DoseIncrease, Severity::Info),
            };
            // The check's own sentences say the change and the band; the maintenance range has
            // its own warning below.
            let reasons: Vec<&str> = check
                .reasons
                .iter()
                .filter(|r| !r.contains("above the usual maintenance range"))
                .map(String::as_str)
                .collect();
            let sentence = if reasons.is_empty() {
                format!(
                    "The largest daily dose rises {percent} from {change}, against the {low}-{high}% step of the guideline."
                )
            } else {
                reasons.join(" ")
            };
            out.push(Warning::new(code, severity, sentence));
            if let Some(reason) = check.reasons.iter().find(|r| r.contains("above the usual maintenance range")) {
                out.push(Warning::new(WarningCode::AboveMaintenanceRange, Severity::Caution, reason.clone()));
            }
        }
        None => {
            let above = u128::from(proposed - current) * 100 > u128::from(current) * u128::from(LARGEST_STEP_PERCENT);
            let too_soon = titrate::too_soon_after(last_increase_at, inputs.at);
            out.push(Warning::new(
                WarningCode::OriginNotGiven,
                Severity::Info,
                format!(
                    "The origin of the spasticity was not given: the increase is checked against the largest step of any guideline ({LARGEST_STEP_PERCENT}%). Give the origin and age to check it against the patient's own band (5-15% for cerebral origin and children)."
                ),
            ));
            if above {
                out.push(Warning::new(
                    WarningCode::IncreaseAboveLargestStep,
                    Severity::Danger,
                    format!(
                        "The largest daily dose rises {percent} from {change}: above the largest step of any guideline ({LARGEST_STEP_PERCENT}%, adults of spinal origin)."
                    ),
                ));
            } else {
                out.push(Warning::new(
                    WarningCode::DoseIncrease,
                    Severity::Info,
                    format!("The largest daily dose rises {percent} from {change}."),
                ));
            }
            if let Some(since) = too_soon {
                out.push(Warning::new(
                    WarningCode::IncreaseTooSoon,
                    Severity::Danger,
                    format!(
                        "The last increase (or the implant) was {} ago; increases must be at least 24 hours apart.",
                        text::duration(since)
                    ),
                ));
            }
        }
    }
    if let LastIncrease::Unknown(why) = &inputs.last_increase {
        out.push(Warning::new(
            WarningCode::TitrationHistoryUnknown,
            Severity::Danger,
            format!(
                "Whether the dose was already raised in the last 24 hours cannot be checked: {why}. Check the patient's record before raising the dose."
            ),
        ));
    }
    check
}

/// Rates that look entered per hour instead of per day.
fn per_hour(inputs: &ReviewInputs, old: &Figures, out: &mut Vec<Warning>) {
    let Some(prescription) = &inputs.new.prescription else { return };
    let current = old.max_day.as_ng();
    let suspicious = |rate: DoseRate| current > 0 && rate.as_ng_per_day() >= current.saturating_mul(PER_HOUR_FACTOR);
    let mut rates: Vec<(String, DoseRate)> = Vec::new();
    match prescription.therapy() {
        Therapy::Flex(schedule) => {
            for (day, pattern) in schedule.days() {
                for step in pattern.steps() {
                    rates.push((format!("{}: the step at {}", capitalised(day), step.start), step.rate));
                }
            }
        }
        Therapy::SimpleContinuous { rate } => rates.push(("The continuous rate".to_owned(), *rate)),
        Therapy::PeriodicBolus(periodic) if !periodic.basal.is_zero() => {
            rates.push(("The basal rate".to_owned(), periodic.basal))
        }
        Therapy::PeriodicBolus(_) | Therapy::Stopped => {}
    }
    for (what, rate) in rates.into_iter().filter(|(_, rate)| suspicious(*rate)) {
        out.push(Warning::new(
            WarningCode::PerHourSuspected,
            Severity::Danger,
            format!(
                "{what} runs at {} ({}), {PER_HOUR_FACTOR} times or more the current largest day of {}: check it was not entered per hour instead of per day.",
                text::dose_rate(rate),
                text::dose_rate_per_hour(rate),
                text::mass(old.max_day)
            ),
        ));
    }
    let totals = prescription.daily_totals();
    if let Some(day) = totals.days.iter().find(|d| d.total.as_ng() > DOSE_ON_RECORD_MAX.as_ng_per_day()) {
        out.push(Warning::new(
            WarningCode::AboveDoseOnRecord,
            Severity::Danger,
            format!(
                "{} delivers {} in the day, above the highest daily dose on record ({}): check every rate was entered per day, not per hour.",
                if day.day == "every day" { "The therapy".to_owned() } else { format!("The {} pattern", day.day) },
                text::mass(day.total),
                text::dose_rate(DOSE_ON_RECORD_MAX)
            ),
        ));
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| first.to_uppercase().collect::<String>() + chars.as_str())
}

fn concentration_change(inputs: &ReviewInputs, old: &Figures, with_bridge: bool, out: &mut Vec<Warning>) {
    let (from, to) = (inputs.old.concentration, inputs.new.concentration);
    if from == to {
        return;
    }
    let (Ok(old_drug), Ok(new_drug)) = (Baclofen::new(from), Baclofen::new(to)) else { return };
    let dose = DoseRate::ng_per_day(old.max_day.as_ng());
    let Ok(plan) = bridge(inputs.dead_volume, old_drug, new_drug, dose) else {
        out.push(Warning::new(
            WarningCode::BridgeBolus,
            Severity::Caution,
            format!(
                "The concentration changes from {} to {} while nothing is delivered: prime or program after the refill.",
                text::concentration(from),
                text::concentration(to)
            ),
        ));
        return;
    };
    if with_bridge {
        out.push(Warning::new(
            WarningCode::BridgeBolus,
            Severity::Caution,
            format!(
                "The concentration changes from {} to {}: a bridge bolus pushes the {} of old drug out of the tubing and catheter at {} for {}, then the new rate of {} applies.",
                text::concentration(from),
                text::concentration(to),
                text::volume(plan.volume),
                text::volume_rate(plan.rate),
                text::duration(plan.duration),
                text::volume_rate(plan.rate_after)
            ),
        ));
    } else {
        let effect = if to > from { "an underdose" } else { "an OVERDOSE" };
        out.push(Warning::new(
            WarningCode::NoBridgeBolus,
            Severity::Danger,
            format!(
                "The concentration changes from {} to {} WITHOUT a bridge bolus: for {} the old drug in the catheter is delivered at the new rate, {} instead of {} ({effect}).",
                text::concentration(from),
                text::concentration(to),
                text::duration(plan.skipped_duration),
                text::dose_rate(plan.skipped_daily_dose),
                text::dose_rate(dose)
            ),
        ));
    }
}

fn delivery(inputs: &ReviewInputs, new: &Figures, out: &mut Vec<Warning>) {
    let stops = match &inputs.new.prescription {
        None => true,
        Some(p) => matches!(p.therapy(), Therapy::Stopped) || new.max_day.is_zero(),
    };
    if stops {
        out.push(Warning::new(
            WarningCode::DeliveryStops,
            Severity::Danger,
            "The new therapy delivers NOTHING: withdrawal can follow within hours to days (returning spasms, itching, fever, confusion, seizures). Never stop the pump for an MRI scan.",
        ));
    }
    if inputs.new.reservoir.is_zero() {
        out.push(Warning::new(
            WarningCode::ReservoirEmpty,
            Severity::Danger,
            "The reservoir is empty: the patient receives no drug until it is refilled.",
        ));
    }
}

fn ptm(inputs: &ReviewInputs, new: &Figures, out: &mut Vec<Warning>) {
    let had = inputs.old.prescription.as_ref().and_then(Prescription::ptm).is_some();
    let has = inputs.new.prescription.as_ref().and_then(Prescription::ptm).is_some();
    if had && !has {
        out.push(Warning::new(
            WarningCode::PtmRemoved,
            Severity::Caution,
            "The new therapy has no PTM limits: the patient's PTM boluses will be refused. Tell the patient.",
        ));
    }
    if has && new.worst_case_day != new.max_day {
        out.push(Warning::new(
            WarningCode::PtmWorstCase,
            Severity::Info,
            format!(
                "With every PTM bolus taken the patient may receive {} a day; the refill date assumes this.",
                text::mass(new.worst_case_day)
            ),
        ));
    }
}

fn dates(inputs: &ReviewInputs, old: &Figures, new: &Figures, out: &mut Vec<Warning>) {
    let zone = &inputs.policy.zone;
    let (Some(new_schedule), old_schedule) = (&new.schedule, &old.schedule) else { return };
    if inputs.change == ChangeKind::Therapy
        && let (Some(old_alarm), Some(new_alarm)) =
            (old_schedule.as_ref().and_then(|s| s.alarm_at), new_schedule.alarm_at)
        && new_alarm < old_alarm
    {
        let days = old_alarm.duration_since(new_alarm).as_secs() / 86_400;
        if days > 0 {
            out.push(Warning::new(
                WarningCode::AlarmEarlier,
                Severity::Caution,
                format!(
                    "The low-reservoir alarm moves {days} day{} earlier, to {}: rebook the refill.",
                    if days == 1 { "" } else { "s" },
                    text::date_time(new_alarm, zone)
                ),
            ));
        }
    }
    let soon = inputs.at.checked_add(Duration::days(REFILL_SOON_DAYS).to_signed()).unwrap_or(inputs.at);
    if !inputs.new.reservoir.is_zero() && new_schedule.due_by <= soon {
        out.push(Warning::new(
            WarningCode::RefillDueSoon,
            Severity::Caution,
            format!(
                "The refill is due by {}: book it before the patient leaves.",
                text::date_time(new_schedule.due_by, zone)
            ),
        ));
    }
    if matches!(inputs.change, ChangeKind::Refill { .. })
        && new_schedule.limited_by == crate::calc::refill::RefillLimit::DrugStability
        && !new.max_day.is_zero()
    {
        out.push(Warning::new(
            WarningCode::DrugExpiresFirst,
            Severity::Info,
            format!(
                "The drug expires before the low-reservoir alarm: the refill is due by {} ({} days in the reservoir).",
                text::date(new_schedule.expires_at, zone),
                inputs.policy.stability.in_days()
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calc::refill_gap::RefillGap;

    fn at() -> Timestamp {
        "2026-11-25T10:00:00Z".parse().expect("valid")
    }

    fn continuous(micrograms: u64) -> Prescription {
        Prescription::simple_continuous(DoseRate::micrograms_per_day(micrograms)).expect("valid")
    }

    fn side(prescription: Prescription) -> PumpSide {
        PumpSide {
            prescription: Some(prescription),
            concentration: Concentration::micrograms_per_ml(2000),
            reservoir: Volume::ml(18),
            alarm_threshold: Volume::ml(2),
            filled_at: None,
        }
    }

    fn inputs(old: Prescription, new: Prescription) -> ReviewInputs {
        ReviewInputs {
            change: ChangeKind::Therapy,
            old: side(old),
            new: side(new),
            at: at(),
            policy: RefillPolicy::default(),
            dead_volume: Volume::nl(310_000),
            patient: Patient::default(),
            last_increase: LastIncrease::Known(None),
            gap: None,
        }
    }

    fn codes(review: &Review) -> Vec<&'static str> {
        review.warnings.iter().map(|w| w.code.as_str()).collect()
    }

    #[test]
    fn a_flex_step_entered_per_hour_needs_an_override_without_origin_or_age() {
        // 60 micrograms/day intended in a 2-hour step; 60 micrograms an hour programmed.
        let flex = crate::toml::from_toml(
            "mode = \"flex\"\n[[flex.steps]]\nstart = \"00:00\"\nrate = \"60 micrograms/day\"\n[[flex.steps]]\nstart = \"08:00\"\nrate = \"1440 micrograms/day\"\n[[flex.steps]]\nstart = \"10:00\"\nrate = \"60 micrograms/day\"\n",
        )
        .expect("valid flex");
        let review = review(&inputs(continuous(60), flex));
        assert!(review.needs_override(), "{:?}", codes(&review));
        let per_hour = review.warnings.iter().find(|w| w.code == WarningCode::PerHourSuspected).expect("per hour");
        assert_eq!(per_hour.severity, Severity::Danger);
        assert!(
            per_hour.sentence.contains("Every day: the step at 08:00 runs at 1440 micrograms/day (60 micrograms/hour)"),
            "{}",
            per_hour.sentence
        );
        // 60 -> 175 micrograms/day as the largest day: above the largest step too.
        assert!(codes(&review).contains(&"increase_above_largest_step"), "{:?}", codes(&review));
        assert_eq!(review.warnings[0].severity, Severity::Danger, "most severe first");
    }

    #[test]
    fn increases_against_the_guideline() {
        // Origin not given: 30 % passes, 31 % needs an override.
        let within = review(&inputs(continuous(400), continuous(520)));
        assert!(!within.needs_override(), "{:?}", within.warnings);
        // Cautions before information: 16 mL above the alarm lasts 80 days at 0.2 mL/day, 61.5 days at 0.26 mL/day.
        assert_eq!(codes(&within), vec!["alarm_earlier", "origin_not_given", "dose_increase"]);
        assert!(
            within.warnings[0].sentence.contains("moves 18 days earlier, to Mon 25 Jan 2027 22:55"),
            "{}",
            within.warnings[0].sentence
        );
        assert!(within.warnings[2].sentence.contains("rises 30% from 400 micrograms/day to 520 micrograms/day"));
        let above = review(&inputs(continuous(400), continuous(524)));
        assert!(above.needs_override());
        assert!(codes(&above).contains(&"increase_above_largest_step"));
        // Cerebral origin: 20 % is above the 5-15 % band.
        let mut cerebral = inputs(continuous(400), continuous(480));
        cerebral.patient = Patient { origin: Some(Origin::Cerebral), age_years: Some(30) };
        let cerebral = review(&cerebral);
        assert!(cerebral.needs_override());
        assert_eq!(cerebral.warnings[0].code, WarningCode::IncreaseAboveGuideline);
        assert_eq!(cerebral.titration.as_ref().map(|t| t.verdict), Some(Verdict::ExceedsGuideline));
        // Within a day of the last increase: too soon, with or without origin.
        let mut soon = inputs(continuous(400), continuous(440));
        soon.last_increase = LastIncrease::Known(Some(Duration::hours(3)));
        let soon_review = review(&soon);
        assert!(codes(&soon_review).contains(&"increase_too_soon"), "{:?}", codes(&soon_review));
        assert!(soon_review.needs_override());
        soon.patient.origin = Some(Origin::Spinal);
        assert_eq!(review(&soon).warnings[0].code, WarningCode::IncreaseTooSoon);
        // A history that cannot say: the check cannot run, so the increase needs an override.
        let mut unknown = inputs(continuous(400), continuous(440));
        unknown.last_increase = LastIncrease::Unknown("the log reaches back 2 h".to_owned());
        let unknown = review(&unknown);
        assert_eq!(unknown.warnings[0].code, WarningCode::TitrationHistoryUnknown);
        // ...but a cut never does.
        let mut cut = inputs(continuous(400), continuous(300));
        cut.last_increase = LastIncrease::Unknown("the log reaches back 2 h".to_owned());
        let cut = review(&cut);
        assert!(!cut.needs_override(), "{:?}", cut.warnings);
        assert_eq!(codes(&cut), vec!["large_cut"]);
    }

    #[test]
    fn stopping_and_empty_reservoirs_are_dangers() {
        let stopped = crate::toml::from_toml("mode = \"stopped\"\n").expect("valid");
        let review_stop = review(&inputs(continuous(400), stopped));
        assert!(codes(&review_stop).contains(&"delivery_stops"));
        assert!(review_stop.needs_override());
        let mut empty = inputs(continuous(400), continuous(400));
        empty.old.reservoir = Volume::ZERO;
        empty.new.reservoir = Volume::ZERO;
        assert!(codes(&review(&empty)).contains(&"reservoir_empty"));
    }

    #[test]
    fn refill_reviews() {
        let mut refill = inputs(continuous(400), continuous(400));
        refill.change = ChangeKind::Refill { bridge: false };
        refill.old.reservoir = Volume::ZERO;
        refill.new.reservoir = Volume::ml(20);
        refill.new.concentration = Concentration::micrograms_per_ml(500);
        refill.gap = Some(RefillGap::assess(Volume::ml(3), Volume::nl(1_500_000), Volume::ml(1)));
        let result = review(&refill);
        assert_eq!(codes(&result)[..2], ["refill_gap_above_limit", "no_bridge_bolus"]);
        let no_bridge = &result.warnings[1];
        // 0.31 mL at the new rate of 0.8 mL/day: 9 h 18 min of 2000 micrograms/mL at 4 times
        // the dose.
        assert!(no_bridge.sentence.contains("for 9 h 18 min"), "{}", no_bridge.sentence);
        assert!(
            no_bridge.sentence.contains("1600 micrograms/day instead of 400 micrograms/day (an OVERDOSE)"),
            "{}",
            no_bridge.sentence
        );
        // The new side: 20 mL at 0.8 mL/day, alarm at 2 mL: 22.5 days.
        let schedule = result.new.schedule.as_ref().expect("schedule");
        assert_eq!(schedule.to_alarm, Some(Duration::ms(22 * 86_400_000 + 43_200_000)));
        refill.change = ChangeKind::Refill { bridge: true };
        refill.gap = Some(RefillGap::assess(Volume::ml(3), Volume::nl(2_500_000), Volume::ml(1)));
        let bridged = review(&refill);
        assert!(!bridged.needs_override(), "{:?}", bridged.warnings);
        assert_eq!(codes(&bridged)[0], "bridge_bolus");
    }

    #[test]
    fn a_reason_must_say_why() {
        for bad in ["yes", "  YES ", "y", "ok", "Yes!", "yes yes yes", "override", "", "spasms"] {
            assert!(OverrideReason::parse(bad).is_err(), "{bad:?}");
        }
        let good = OverrideReason::parse("  consultant review: spasms not controlled ").expect("a reason");
        assert_eq!(good.as_str(), "consultant review: spasms not controlled");
        assert!(matches!(OverrideReason::parse(&"why ".repeat(50)), Err(ReasonError::TooLong(_))));
        assert_eq!(OverrideReason::parse("spasms not\ncontrolled"), Err(ReasonError::ControlCharacter));
    }
}
