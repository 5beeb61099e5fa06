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
pub use crate::calc::titrate::DeliveryOff;
use crate::calc::titrate::{self, LastIncrease, Origin, TitrationCheck, TitrationInputs, Verdict};
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
/// A cut of this much (percent) or more at once is nearly a stop: dangerous **[model]**.
pub const CUT_DANGER_PERCENT: u64 = 50;
/// A refill due within this many days is flagged: book it before the patient leaves.
pub const REFILL_SOON_DAYS: u64 = 3;
/// The largest screening dose (docs/DOMAIN.md): a bolus above it is more than any test dose the
/// patient has been shown to tolerate. A new or larger bolus above it is dangerous.
pub const BOLUS_TESTED_MAX: Mass = Mass::micrograms(100);
/// A clinician's single bolus above this share of the daily dose (percent) is dangerous.
pub const SINGLE_BOLUS_SHARE_PERCENT: u64 = 50;
/// A refill that comes this long after the reservoir ran dry (or was withdrawn) says that it
/// restarts delivery.
pub const REFILL_RESTART_NOTED: Duration = Duration::hours(1);
/// Fewer days than this between the low-reservoir alarm and an empty reservoir leave too little
/// time to refill: lowering the threshold below it is dangerous **[model]**.
pub const ALARM_WARNING_DAYS_MIN: u64 = 3;
/// Moving the pump's clock by more than this is dangerous (flex steps and periodic boluses
/// move with it); an hour either way is the change to and from summer time **[model]**.
pub const CLOCK_SHIFT_ROUTINE: Duration = Duration::hours(2);
/// Delivery off this long or longer before it restarts (or off for an unknown time) is
/// dangerous: tolerance falls within days, and a restart at the full dose can overdose
/// **[model]** (docs/DOMAIN.md).
pub const RESTART_AFTER_OFF: Duration = Duration::hours(24);
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
    /// The pump delivers its therapy (not stopped by the clinician, halted by a fault, at end
    /// of service, or without a therapy).
    pub delivering: bool,
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
    /// What the pump's history says of delivery that is off now.
    pub off: DeliveryOff,
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
    /// The largest day with every PTM bolus rises above the guideline step.
    PtmIncreaseAboveGuideline,
    /// Delivery restarts after being off.
    DeliveryRestarts,
    /// A new or larger bolus above the largest screening dose.
    LargeBolus,
    /// A new or larger bolus.
    NewBolus,
    /// A clinician's bolus (single or priming) given now.
    ClinicianBolus,
    /// Delivery starts with no earlier dose to compare with.
    FirstDose,
    /// The titration check could not run on the figures given.
    TitrationCheckFailed,
    /// A change of the low-reservoir alarm threshold.
    AlarmThreshold,
    /// A setting of the pump's clock.
    ClockSetting,
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
            WarningCode::PtmIncreaseAboveGuideline => "ptm_increase_above_guideline",
            WarningCode::DeliveryRestarts => "delivery_restarts",
            WarningCode::LargeBolus => "large_bolus",
            WarningCode::NewBolus => "new_bolus",
            WarningCode::ClinicianBolus => "clinician_bolus",
            WarningCode::FirstDose => "first_dose",
            WarningCode::TitrationCheckFailed => "titration_check_failed",
            WarningCode::AlarmThreshold => "alarm_threshold",
            WarningCode::ClockSetting => "clock_setting",
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
        "a reason must say why in words (two words or more, at least {REASON_MIN_CHARS} characters, e.g. \"consultant review: spasms not controlled\"), not \"{0}\""
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
        // Words of two letters or more that are not agreement or filler: a reason needs two.
        const FILLER: [&str; 30] = [
            "yes",
            "yep",
            "yeah",
            "ok",
            "okay",
            "go",
            "ahead",
            "fine",
            "confirm",
            "confirmed",
            "agreed",
            "agree",
            "override",
            "overridden",
            "accept",
            "accepted",
            "na",
            "none",
            "test",
            "testing",
            "proceed",
            "sure",
            "done",
            "do",
            "it",
            "please",
            "the",
            "and",
            "as",
            "is",
        ];
        let lower = trimmed.to_lowercase();
        let words: Vec<&str> = lower.split(|c: char| !c.is_alphabetic()).filter(|w| w.chars().count() >= 2).collect();
        let meaningful = words.iter().filter(|w| !FILLER.contains(w)).count();
        if !words.is_empty() && meaningful == 0 {
            return Err(ReasonError::NotAReason(trimmed.to_owned()));
        }
        if trimmed.chars().count() < REASON_MIN_CHARS || meaningful < 2 {
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
        // The reservoir ran dry (or was withdrawn) a while ago: the refill restarts delivery.
        if let Some(off_for) = inputs.off.for_
            && off_for >= REFILL_RESTART_NOTED
        {
            warnings.push(restart_warning(inputs.off, new.max_day));
        }
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
    if inputs.change == ChangeKind::Therapy {
        boluses(inputs, &mut warnings);
    }
    delivery(inputs, &old, &new, &mut warnings);
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

/// A day's drug for each day of the week, Monday first, nanograms.
fn week(prescription: Option<&Prescription>) -> [u64; 7] {
    prescription.map_or([0; 7], |p| p.week_totals().map(Mass::as_ng))
}

/// The titration check of one comparison: `None` when there is nothing to compare; an error
/// (a check that cannot run) becomes a danger, never silence.
fn titration(inputs: &ReviewInputs, current: u64, proposed: u64, out: &mut Vec<Warning>) -> Option<TitrationCheck> {
    if current == 0 || proposed == current {
        return None;
    }
    let checked = titrate::check(&TitrationInputs {
        current: DoseRate::ng_per_day(current),
        proposed: DoseRate::ng_per_day(proposed),
        origin: inputs.patient.origin,
        age_years: inputs.patient.age_years,
        last_increase_at: inputs.last_increase.at(inputs.at),
        at: inputs.at,
    });
    match checked {
        Ok(check) => Some(check),
        Err(error) => {
            if !out.iter().any(|w| w.code == WarningCode::TitrationCheckFailed) {
                out.push(Warning::new(
                    WarningCode::TitrationCheckFailed,
                    Severity::Danger,
                    format!(
                        "The titration check could not run: {error}. Check the change against the guideline by hand."
                    ),
                ));
            }
            None
        }
    }
}

/// The day of the week that changes most in `direction` (rising: the largest relative rise;
/// falling: the largest relative cut), the first such day on a tie.
fn day_changing(before: &[u64; 7], after: &[u64; 7], rising: bool) -> Option<usize> {
    (0..7)
        .filter(|i| before[*i] > 0 && if rising { after[*i] > before[*i] } else { after[*i] < before[*i] })
        .max_by_key(|i| {
            let change = micro_percent(before[*i], after[*i]);
            (if rising { change } else { -change }, std::cmp::Reverse(*i))
        })
}

/// The titration rules. The change is judged on the day of the week whose drug rises most (a
/// weekly pattern cannot hide an increase on six days behind an unchanged largest day) and on
/// the day that falls most, against what the pump delivers now or, when it delivers nothing,
/// against the last therapy that did; and again on the largest day with every PTM bolus taken.
fn dose_change(inputs: &ReviewInputs, old: &Figures, new: &Figures, out: &mut Vec<Warning>) -> Option<TitrationCheck> {
    // The basis is the therapy programmed now when it delivers anything (even on a pump stopped
    // by the clinician: resuming would give it); else the last therapy that delivered.
    let delivering = !old.max_day.is_zero();
    let before: [u64; 7] = if delivering {
        week(inputs.old.prescription.as_ref())
    } else {
        [inputs.off.last_delivered_day.map_or(0, Mass::as_ng); 7]
    };
    let after = week(inputs.new.prescription.as_ref());
    let weekly = inputs.new.prescription.as_ref().is_some_and(|p| p.daily_totals().days.len() == 7)
        || inputs.old.prescription.as_ref().is_some_and(|p| p.daily_totals().days.len() == 7);
    let label = |day: usize| {
        if weekly {
            format!(" on {}", crate::text::capitalised(crate::prescription::WEEKDAYS[day]))
        } else {
            String::new()
        }
    };
    let change = |day: usize| {
        format!(
            "{} to {}{}",
            text::dose_rate(DoseRate::ng_per_day(before[day])),
            text::dose_rate(DoseRate::ng_per_day(after[day])),
            label(day)
        )
    };
    // Cuts (a day that falls to nothing is a stop, judged with delivery below).
    if let Some(day) = day_changing(&before, &after, false).filter(|day| after[*day] > 0) {
        let (current, proposed) = (before[day], after[day]);
        let fall = u128::from(current - proposed) * 100;
        let severity = if fall >= u128::from(current) * u128::from(CUT_DANGER_PERCENT) {
            Some(Severity::Danger)
        } else if fall > u128::from(current) * u128::from(CUT_CAUTION_PERCENT) {
            Some(Severity::Caution)
        } else {
            None
        };
        if let Some(severity) = severity {
            let cut = text::percent(-micro_percent(current, proposed));
            out.push(Warning::new(
                WarningCode::LargeCut,
                severity,
                format!(
                    "The daily dose falls {cut} from {}: a cut of more than {CUT_CAUTION_PERCENT}% at once can bring on withdrawal; watch for returning spasms, itching and fever.",
                    change(day)
                ),
            ));
        }
    }
    // Rises.
    let rise_day = day_changing(&before, &after, true);
    let check = rise_day.and_then(|day| titration(inputs, before[day], after[day], out));
    if let (Some(check), Some(day)) = (check.as_ref(), rise_day) {
        let (code, severity) = match (check.verdict, inputs.patient.origin, inputs.patient.age_years) {
            (Verdict::TooSoon, ..) => (WarningCode::IncreaseTooSoon, Severity::Danger),
            (Verdict::ExceedsGuideline, None, age) if age.is_none_or(|a| a >= titrate::ADULT_AGE_YEARS) => {
                (WarningCode::IncreaseAboveLargestStep, Severity::Danger)
            }
            (Verdict::ExceedsGuideline, ..) => (WarningCode::IncreaseAboveGuideline, Severity::Danger),
            _ => (WarningCode::DoseIncrease, Severity::Info),
        };
        // The maintenance range has its own warning below: its sentence is the check's last.
        let shown = check.reasons.len() - usize::from(check.above_maintenance.is_some());
        let mut sentence = check.reasons[..shown].join(" ");
        if weekly {
            sentence = format!("{}: {sentence}", crate::text::capitalised(crate::prescription::WEEKDAYS[day]));
        }
        if !delivering {
            sentence.push_str(" (Compared with the last therapy that delivered, before delivery stopped.)");
        }
        out.push(Warning::new(code, severity, sentence));
        if let Some(max) = check.above_maintenance {
            out.push(Warning::new(
                WarningCode::AboveMaintenanceRange,
                Severity::Caution,
                format!(
                    "{} is above the usual maintenance range for this patient (up to {}).",
                    text::dose_rate(DoseRate::ng_per_day(after[day])),
                    text::dose_rate(max)
                ),
            ));
        }
    }
    let increase = rise_day.is_some();
    // The worst case with every PTM bolus: an increase made through the PTM's limits.
    let (old_worst, new_worst) = if delivering {
        (old.worst_case_day.as_ng(), new.worst_case_day.as_ng())
    } else {
        (inputs.off.last_delivered_day.map_or(0, Mass::as_ng), new.worst_case_day.as_ng())
    };
    let ptm_rises = new_worst > old_worst && new.worst_case_day > new.max_day;
    if ptm_rises && let Some(worst) = titration(inputs, old_worst, new_worst, out) {
        if worst.verdict == Verdict::ExceedsGuideline {
            let (low, high) = worst.band_percent;
            out.push(Warning::new(
                WarningCode::PtmIncreaseAboveGuideline,
                Severity::Danger,
                format!(
                    "With every PTM bolus taken the largest day rises {} from {} to {}: above the {low}-{high}% step of the guideline. Check the PTM bolus and how many a day are allowed.",
                    text::percent(worst.change_micro_percent),
                    text::mass(Mass::ng(old_worst)),
                    text::mass(Mass::ng(new_worst))
                ),
            ));
        }
        if worst.verdict == Verdict::TooSoon && !out.iter().any(|w| w.code == WarningCode::IncreaseTooSoon) {
            out.push(Warning::new(
                WarningCode::IncreaseTooSoon,
                Severity::Danger,
                format!(
                    "With every PTM bolus taken the largest day rises from {} to {}; {}",
                    text::mass(Mass::ng(old_worst)),
                    text::mass(Mass::ng(new_worst)),
                    worst
                        .reasons
                        .iter()
                        .find(|r| r.contains("24 hours"))
                        .map_or("increases must be at least 24 hours apart.", String::as_str)
                ),
            ));
        }
    }
    let raised = increase || ptm_rises;
    if raised && let LastIncrease::Unknown(why) = &inputs.last_increase {
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
    let current = if old.max_day.is_zero() { inputs.off.last_delivered_day.unwrap_or(Mass::ZERO) } else { old.max_day };
    let suspicious =
        |rate: DoseRate| !current.is_zero() && rate.as_ng_per_day() >= current.as_ng().saturating_mul(PER_HOUR_FACTOR);
    let mut rates: Vec<(String, DoseRate)> = Vec::new();
    match prescription.therapy() {
        Therapy::Flex(schedule) => {
            for (day, pattern) in schedule.days() {
                for step in pattern.steps() {
                    rates.push((format!("{}: the step at {}", crate::text::capitalised(day), step.start), step.rate));
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
                text::mass(current)
            ),
        ));
    }
    let totals = prescription.daily_totals();
    let record = DOSE_ON_RECORD_MAX.as_ng_per_day();
    if let Some(day) = totals.days.iter().find(|d| d.total.as_ng() > record) {
        out.push(Warning::new(
            WarningCode::AboveDoseOnRecord,
            Severity::Danger,
            format!(
                "{} delivers {} in the day, above the highest daily dose on record ({}): check every rate was entered per day, not per hour.",
                if day.day == "every day" { "The therapy".to_owned() } else { format!("The {} pattern", crate::text::capitalised(day.day)) },
                text::mass(day.total),
                text::dose_rate(DOSE_ON_RECORD_MAX)
            ),
        ));
    } else if totals.max_with_ptm.as_ng() > record {
        out.push(Warning::new(
            WarningCode::AboveDoseOnRecord,
            Severity::Danger,
            format!(
                "With every PTM bolus taken the patient may receive {} in a day, above the highest daily dose on record ({}): check the PTM bolus and how many a day are allowed.",
                text::mass(totals.max_with_ptm),
                text::dose_rate(DOSE_ON_RECORD_MAX)
            ),
        ));
    }
}

/// New or larger boluses: a periodic bolus, a PTM bolus.
fn boluses(inputs: &ReviewInputs, out: &mut Vec<Warning>) {
    let bolus_of = |prescription: Option<&Prescription>| {
        let periodic = prescription.and_then(|p| match p.therapy() {
            Therapy::PeriodicBolus(periodic) => Some((periodic.bolus, periodic.bolus_duration)),
            _ => None,
        });
        let ptm = prescription.and_then(|p| p.ptm().map(|ptm| (ptm.bolus, ptm.bolus_duration)));
        (periodic, ptm)
    };
    let (old_periodic, old_ptm) = bolus_of(inputs.old.prescription.as_ref());
    let (new_periodic, new_ptm) = bolus_of(inputs.new.prescription.as_ref());
    let cases = [("Each periodic bolus", old_periodic, new_periodic), ("Each PTM bolus", old_ptm, new_ptm)];
    for (what, before, after) in cases {
        let Some((dose, over)) = after else { continue };
        let larger = before.is_none_or(|(old, _)| dose > old);
        if !larger {
            continue;
        }
        let was = before.map_or("the current therapy gives no such bolus".to_owned(), |(old, _)| {
            format!("it was {}", text::mass(old))
        });
        if dose > BOLUS_TESTED_MAX {
            out.push(Warning::new(
                WarningCode::LargeBolus,
                Severity::Danger,
                format!(
                    "{what} delivers {} over {} ({was}): more than the largest screening dose ({}), so more at once than the patient has been shown to tolerate. Check it is intended; watch for drowsiness and slow breathing after the first.",
                    text::mass(dose),
                    text::duration(over),
                    text::mass(BOLUS_TESTED_MAX)
                ),
            ));
        } else {
            out.push(Warning::new(
                WarningCode::NewBolus,
                Severity::Caution,
                format!("{what} delivers {} over {} ({was}).", text::mass(dose), text::duration(over)),
            ));
        }
    }
}

/// What a clinician's bolus given now delivers, and its warning: always confirmed; dangerous
/// when it is a priming bolus (on a catheter that is not empty, all of it reaches the spinal
/// fluid), above the largest screening dose, or above half the daily dose.
pub fn clinician_bolus(bolus: ClinicianBolus, daily_dose: Mass) -> Warning {
    match bolus {
        ClinicianBolus::Priming { volume, drug, rate, duration } => Warning::new(
            WarningCode::ClinicianBolus,
            Severity::Danger,
            format!(
                "A priming bolus pushes {} of drug ({}) through the tubing and catheter at {} for {}. Give it only to fill an EMPTY catheter, after implant or a catheter revision: on a catheter that is already full, all of it reaches the spinal fluid on top of the therapy ({} a day).",
                text::volume(volume),
                text::mass(drug),
                text::volume_rate(rate),
                text::duration(duration),
                text::mass(daily_dose)
            ),
        ),
        ClinicianBolus::Single { dose, over } => {
            // While it runs the bolus replaces the therapy: less than the therapy would give over
            // the same time is a cut (or, at length, a stop).
            let therapy_over =
                u128::from(daily_dose.as_ng()) * u128::from(over.as_ms()) / u128::from(Duration::DAY.as_ms());
            let short = therapy_over.saturating_sub(u128::from(dose.as_ng()));
            if short > 0 {
                let dangerous = short * 100 > u128::from(daily_dose.as_ng()) * u128::from(CUT_CAUTION_PERCENT);
                return Warning::new(
                    WarningCode::ClinicianBolus,
                    if dangerous { Severity::Danger } else { Severity::Caution },
                    format!(
                        "A single bolus of {} over {} runs in place of the therapy, which would give {} in that time: the patient gets {} less. A long bolus of little drug is a cut or a stop: watch for withdrawal (returning spasms, itching, fever).",
                        text::mass(dose),
                        text::duration(over),
                        text::mass(Mass::ng(u64::try_from(therapy_over).unwrap_or(u64::MAX))),
                        text::mass(Mass::ng(u64::try_from(short).unwrap_or(u64::MAX)))
                    ),
                );
            }
            let share_above = u128::from(dose.as_ng()) * 100
                > u128::from(daily_dose.as_ng()) * u128::from(SINGLE_BOLUS_SHARE_PERCENT);
            let dangerous = dose > BOLUS_TESTED_MAX || share_above;
            let mut sentence = format!(
                "A single bolus of {} over {}, in place of the therapy while it runs, then the therapy goes on.",
                text::mass(dose),
                text::duration(over)
            );
            if dose > BOLUS_TESTED_MAX {
                sentence.push_str(&format!(
                    " It is more than the largest screening dose ({}): more at once than the patient has been shown to tolerate.",
                    text::mass(BOLUS_TESTED_MAX)
                ));
            }
            if share_above {
                sentence.push_str(&format!(
                    " It is more than {SINGLE_BOLUS_SHARE_PERCENT}% of the daily dose ({}).",
                    text::mass(daily_dose)
                ));
            }
            sentence.push_str(" Watch for drowsiness and slow breathing.");
            Warning::new(
                WarningCode::ClinicianBolus,
                if dangerous { Severity::Danger } else { Severity::Caution },
                sentence,
            )
        }
    }
}

/// A clinician's bolus, as [`clinician_bolus`] judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClinicianBolus {
    /// A single bolus.
    Single {
        /// Its dose.
        dose: Mass,
        /// Over.
        over: Duration,
    },
    /// A priming bolus.
    Priming {
        /// The volume it pushes.
        volume: Volume,
        /// The drug in that volume.
        drug: Mass,
        /// At the priming rate.
        rate: VolumeRate,
        /// For.
        duration: Duration,
    },
}

/// Lowering or raising the low-reservoir alarm threshold: how many days it leaves between the
/// alarm and an empty reservoir at the worst-case daily volume.
pub fn alarm_threshold_change(old: Volume, new: Volume, daily_volume: VolumeRate) -> Warning {
    let days_of_warning = (!daily_volume.is_zero())
        .then(|| u128::from(new.as_nl()) * 1_000 / u128::from(daily_volume.as_nl_per_day()))
        .map(|milli_days| Duration::ms(u64::try_from(milli_days * 86_400).unwrap_or(u64::MAX)));
    let short = days_of_warning.is_some_and(|d| d < Duration::days(ALARM_WARNING_DAYS_MIN));
    let lower = new < old;
    let mut sentence = format!(
        "The low-reservoir alarm will sound at {} (it sounds at {} now)",
        text::volume_fine(new),
        text::volume_fine(old)
    );
    match days_of_warning {
        Some(days) => sentence.push_str(&format!(
            ": at the worst-case daily volume of {} that leaves {} between the alarm and an empty reservoir.",
            text::volume_rate(daily_volume),
            text::duration(days)
        )),
        None => sentence.push('.'),
    }
    if short && lower {
        sentence.push_str(&format!(
            " Less than {ALARM_WARNING_DAYS_MIN} days is too little time to arrange a refill after the alarm."
        ));
    }
    Warning::new(
        WarningCode::AlarmThreshold,
        if short && lower { Severity::Danger } else { Severity::Caution },
        sentence,
    )
}

/// Setting the pump's clock: flex steps and periodic boluses run on it and move with it.
pub fn clock_setting(shift_ms: i64, programmed: Option<&Prescription>) -> Warning {
    let by = Duration::ms(shift_ms.unsigned_abs());
    let direction = if shift_ms < 0 { "back" } else { "forward" };
    let timed = programmed.is_some_and(|p| matches!(p.therapy(), Therapy::Flex(_) | Therapy::PeriodicBolus(_)));
    let mut sentence = format!("The pump's clock moves {direction} by {}.", text::duration(by));
    if timed {
        sentence.push_str(" Flex steps and periodic boluses run on it: each moves by as much against the day.");
    }
    let dangerous = by > CLOCK_SHIFT_ROUTINE;
    if dangerous {
        sentence.push_str(&format!(
            " More than {} is not a change to or from summer time: check the reading and the time zone.",
            text::duration(CLOCK_SHIFT_ROUTINE)
        ));
    }
    Warning::new(WarningCode::ClockSetting, if dangerous { Severity::Danger } else { Severity::Caution }, sentence)
}

/// What to do when the reservoir is empty and cannot be refilled at once (after a withdrawal
/// that was not followed by a refill, or an empty-reservoir alarm): the signs of withdrawal
/// (docs/DOMAIN.md) and the way out.
pub const EMPTY_RESERVOIR_ADVICE: &str = "The patient receives NO baclofen until the pump is refilled: refill it before the patient leaves. If it cannot be refilled today, arrange oral baclofen with the team, and tell the patient and carers the signs of withdrawal (returning spasms, itching, fever, confusion) and to go to A&E if they appear.";

/// What the post-MRI check advises (return of proper infusion can take 2-24 hours after a scan;
/// docs/DOMAIN.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MriAdvice {
    /// The motor is stalled: nothing is delivered.
    Stalled,
    /// A stall was detected and not yet seen to recover.
    NotYetRecovered,
    /// The motor runs again; its alarm is still on.
    ClearTheAlarm,
    /// The motor runs.
    Running,
}

impl MriAdvice {
    /// From what the pump reports after a scan.
    pub fn after_scan(motor_stalled: bool, stalls_detected: u64, recoveries: u64, stall_alarm: bool) -> Self {
        if motor_stalled {
            MriAdvice::Stalled
        } else if stalls_detected > recoveries {
            MriAdvice::NotYetRecovered
        } else if stall_alarm {
            MriAdvice::ClearTheAlarm
        } else {
            MriAdvice::Running
        }
    }
    /// The code used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            MriAdvice::Stalled => "stalled",
            MriAdvice::NotYetRecovered => "not_yet_recovered",
            MriAdvice::ClearTheAlarm => "clear_the_alarm",
            MriAdvice::Running => "running",
        }
    }
    /// What to do, for the person.
    pub fn sentence(self) -> &'static str {
        match self {
            MriAdvice::Stalled => {
                "The motor is stalled: no drug is delivered. Check again within hours (recovery can take 2-24 hours); watch for withdrawal and give oral baclofen as the team advises."
            }
            MriAdvice::NotYetRecovered => "A stall was detected and not yet seen to recover: interrogate again.",
            MriAdvice::ClearTheAlarm => "The motor runs again: clear the motor-stall alarm.",
            MriAdvice::Running => "The motor runs: delivery continues as programmed.",
        }
    }
}

/// Resuming a stopped pump: delivery restarts; after a day or more off (or an unknown time),
/// tolerance may have fallen.
pub fn resume_warning(off: DeliveryOff, daily_dose: Mass) -> Warning {
    restart_warning(off, daily_dose)
}

fn restart_warning(off: DeliveryOff, daily_dose: Mass) -> Warning {
    let long = off.for_.is_none_or(|for_| for_ >= RESTART_AFTER_OFF);
    let how_long = off.for_.map_or_else(|| "an unknown time (the pump's log does not say)".to_owned(), text::duration);
    let mut sentence = format!("Delivery restarts at {} a day after {how_long} off.", text::mass(daily_dose));
    if long {
        sentence.push_str(
            " After a day or more without baclofen, tolerance falls: restarting at the full dose can cause an overdose (drowsiness, slow breathing). Restart lower and titrate up unless the team has decided otherwise.",
        );
    } else {
        sentence.push_str(" Check the patient for withdrawal signs that began while it was off.");
    }
    Warning::new(WarningCode::DeliveryRestarts, if long { Severity::Danger } else { Severity::Caution }, sentence)
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

fn delivery(inputs: &ReviewInputs, old: &Figures, new: &Figures, out: &mut Vec<Warning>) {
    let stops = match &inputs.new.prescription {
        None => true,
        Some(p) => matches!(p.therapy(), Therapy::Stopped) || new.max_day.is_zero(),
    };
    if inputs.change != ChangeKind::Therapy {
        // A refill changes the drug, not the therapy: a restart after the reservoir ran dry is
        // judged in `review`.
    } else if stops || !inputs.new.delivering {
        out.push(Warning::new(
            WarningCode::DeliveryStops,
            Severity::Danger,
            "The new therapy delivers NOTHING: withdrawal can follow within hours to days (returning spasms, itching, fever, confusion, seizures). Never stop the pump for an MRI scan.",
        ));
    } else if !inputs.old.delivering || old.max_day.is_zero() {
        if old.max_day.is_zero() && inputs.off.last_delivered_day.is_none() {
            out.push(Warning::new(
                WarningCode::FirstDose,
                Severity::Danger,
                format!(
                    "Delivery starts at {} a day with no earlier dose to compare with: no titration step or per-hour check could be made. Check it against the screening result (after implant: twice the effective screening dose over 24 hours, or equal to it if the effect lasted more than 8 hours or caused side effects).",
                    text::mass(new.max_day)
                ),
            ));
        } else {
            out.push(restart_warning(inputs.off, new.max_day));
        }
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
    if !inputs.new.reservoir.is_zero() && new_schedule.due_by <= inputs.at {
        out.push(Warning::new(
            WarningCode::RefillDueSoon,
            Severity::Caution,
            format!(
                "The refill is OVERDUE: it was due by {}. Refill before the patient leaves.",
                text::date_time(new_schedule.due_by, zone)
            ),
        ));
    } else if !inputs.new.reservoir.is_zero() && new_schedule.due_by <= soon {
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
            delivering: true,
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
            off: DeliveryOff::default(),
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
        assert_eq!(codes(&within), vec!["alarm_earlier", "dose_increase"]);
        assert!(
            within.warnings[0].sentence.contains("moves 18 days earlier, to Mon 25 Jan 2027 22:55"),
            "{}",
            within.warnings[0].sentence
        );
        let increase = &within.warnings[1].sentence;
        assert!(increase.contains("Origin not given"), "{increase}");
        assert!(
            increase
                .contains("An increase from 400 micrograms/day to 520 micrograms/day (30%) is within the 10-30% step"),
            "{increase}"
        );
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

    fn weekly(days: [u64; 7]) -> Prescription {
        let mut text = String::from("mode = \"flex\"\n");
        for (day, micrograms) in crate::prescription::WEEKDAYS.iter().zip(days) {
            text.push_str(&format!("[[flex.{day}]]\nstart = \"00:00\"\nrate = \"{micrograms} micrograms/day\"\n"));
        }
        crate::toml::from_toml(&text).expect("valid weekly flex")
    }

    fn has(review: &Review, code: WarningCode) -> bool {
        review.warnings.iter().any(|w| w.code == code && w.needs_override() == (w.severity == Severity::Danger))
    }

    /// The reviewer's ways round the step limit, each now a danger.
    #[test]
    fn an_increase_cannot_hide_in_the_ptm_a_restart_a_bolus_or_a_weekday() {
        // Only the PTM limits rise: 400 + 24 x 500 micrograms a day at worst.
        let ptm = crate::toml::from_toml(
            "mode = \"simple_continuous\"\ndose = \"400 micrograms/day\"\n[ptm]\nbolus_dose = \"500 micrograms\"\nbolus_duration = \"30 min\"\nlockout = \"30 min\"\nmax_boluses_per_day = 24\n",
        )
        .expect("valid");
        let through_ptm = review(&inputs(continuous(400), ptm));
        assert!(has(&through_ptm, WarningCode::PtmIncreaseAboveGuideline), "{:?}", codes(&through_ptm));
        assert!(has(&through_ptm, WarningCode::AboveDoseOnRecord), "{:?}", codes(&through_ptm));
        assert!(has(&through_ptm, WarningCode::LargeBolus), "{:?}", codes(&through_ptm));
        // A restart after a stop, at 1900 where 500 ran before.
        let stopped = crate::toml::from_toml("mode = \"stopped\"\n").expect("valid");
        let mut restart = inputs(stopped, continuous(1900));
        restart.off = DeliveryOff { for_: Some(Duration::hours(2)), last_delivered_day: Some(Mass::micrograms(500)) };
        let restarted = review(&restart);
        assert!(has(&restarted, WarningCode::IncreaseAboveLargestStep), "{:?}", codes(&restarted));
        assert!(has(&restarted, WarningCode::PerHourSuspected), "{:?}", codes(&restarted));
        assert!(codes(&restarted).contains(&"delivery_restarts"), "{:?}", codes(&restarted));
        // Off for two days or an unknown time: the restart itself is dangerous.
        restart.new = side(continuous(500));
        restart.off.for_ = Some(Duration::days(2));
        let after_two_days = review(&restart);
        let warning =
            after_two_days.warnings.iter().find(|w| w.code == WarningCode::DeliveryRestarts).expect("restart");
        assert_eq!(warning.severity, Severity::Danger);
        assert!(warning.sentence.contains("after 2 days off"), "{}", warning.sentence);
        // A pump stopped by the clinician (its therapy unchanged) restarts too.
        let mut resumed = inputs(continuous(400), continuous(400));
        resumed.old.delivering = false;
        resumed.off.for_ = Some(Duration::hours(3));
        assert!(codes(&review(&resumed)).contains(&"delivery_restarts"));
        // The whole day's dose as one periodic bolus.
        let periodic = crate::toml::from_toml(
            "mode = \"periodic_bolus\"\n[periodic]\nbolus_dose = \"500 micrograms\"\nbolus_duration = \"20 min\"\ninterval = \"24 h\"\nfirst_bolus_at = \"08:00\"\n",
        )
        .expect("valid");
        let one_bolus = review(&inputs(weekly([500; 7]), periodic));
        assert!(has(&one_bolus, WarningCode::LargeBolus), "{:?}", codes(&one_bolus));
        assert!(one_bolus.needs_override());
        // Six weekdays rise 25 % behind an unchanged largest day: judged on Monday.
        let mut week = inputs(weekly([400, 400, 400, 400, 400, 500, 400]), weekly([500; 7]));
        week.patient = Patient { origin: Some(Origin::Cerebral), age_years: Some(40) };
        let rises = review(&week);
        let above = rises.warnings.iter().find(|w| w.code == WarningCode::IncreaseAboveGuideline).expect("above");
        assert!(
            above.sentence.starts_with("Monday: An increase from 400 micrograms/day to 500 micrograms/day (25%)"),
            "{}",
            above.sentence
        );
        week.patient = Patient::default();
        week.last_increase = LastIncrease::Known(Some(Duration::hours(1)));
        assert!(has(&review(&week), WarningCode::IncreaseTooSoon));
        // A child's band applies with the age alone: 25 % for an 8-year-old.
        let mut child = inputs(continuous(400), continuous(500));
        child.patient = Patient { origin: None, age_years: Some(8) };
        let child = review(&child);
        let above =
            child.warnings.iter().find(|w| w.code == WarningCode::IncreaseAboveGuideline).expect("above the band");
        assert!(above.sentence.contains("5-15% step of the guideline for patients under 18"), "{}", above.sentence);
        assert!(!above.sentence.contains("Origin not given"), "{}", above.sentence);
    }

    #[test]
    fn clinician_boluses_are_always_confirmed_and_dangerous_when_large_or_priming() {
        let small = clinician_bolus(
            ClinicianBolus::Single { dose: Mass::micrograms(50), over: Duration::minutes(10) },
            Mass::micrograms(400),
        );
        assert_eq!(small.severity, Severity::Caution);
        let large = clinician_bolus(
            ClinicianBolus::Single { dose: Mass::micrograms(150), over: Duration::minutes(10) },
            Mass::micrograms(400),
        );
        assert_eq!(large.severity, Severity::Danger);
        let share = clinician_bolus(
            ClinicianBolus::Single { dose: Mass::micrograms(60), over: Duration::minutes(10) },
            Mass::micrograms(100),
        );
        assert_eq!(share.severity, Severity::Danger);
        let prime = clinician_bolus(
            ClinicianBolus::Priming {
                volume: Volume::nl(310_000),
                drug: Mass::micrograms(620),
                rate: VolumeRate::nl_per_day(24_000_000),
                duration: Duration::ms(1_116_000),
            },
            Mass::micrograms(400),
        );
        assert_eq!(prime.severity, Severity::Danger);
        assert!(prime.sentence.contains("pushes 0.31 mL of drug (620 micrograms)"), "{}", prime.sentence);
    }

    /// The second review's ways round: a first dose, a deep cut, a refill after days dry, a
    /// long bolus of little drug, a check that cannot run, a threshold or clock that moves far.
    #[test]
    fn what_cannot_be_judged_or_moves_far_is_a_danger() {
        let stopped = crate::toml::from_toml("mode = \"stopped\"\n").expect("valid");
        // A pump that never delivered: no basis, so the first dose needs a reason.
        let first = review(&inputs(stopped, continuous(1900)));
        assert!(has(&first, WarningCode::FirstDose), "{:?}", codes(&first));
        // 600 to 100 micrograms a day: nearly a stop.
        let deep = review(&inputs(continuous(600), continuous(100)));
        let cut = deep.warnings.iter().find(|w| w.code == WarningCode::LargeCut).expect("a cut");
        assert_eq!(cut.severity, Severity::Danger);
        assert!(
            cut.sentence.contains("falls 83.33% from 600 micrograms/day to 100 micrograms/day"),
            "{}",
            cut.sentence
        );
        assert_eq!(review(&inputs(continuous(600), continuous(450))).warnings[0].severity, Severity::Caution);
        // A refill 30 hours after the reservoir was emptied restarts delivery after a day off.
        let mut refill = inputs(continuous(400), continuous(400));
        refill.change = ChangeKind::Refill { bridge: true };
        refill.old.reservoir = Volume::ZERO;
        refill.new.reservoir = Volume::ml(20);
        refill.off = DeliveryOff { for_: Some(Duration::hours(30)), last_delivered_day: Some(Mass::micrograms(400)) };
        let after_dry = review(&refill);
        assert!(has(&after_dry, WarningCode::DeliveryRestarts), "{:?}", codes(&after_dry));
        // ...but a refill minutes after its withdrawal does not say so.
        refill.off.for_ = Some(Duration::minutes(5));
        assert!(!codes(&review(&refill)).contains(&"delivery_restarts"));
        // No drug for a week as a "bolus": a stop in disguise.
        let empty_week = clinician_bolus(
            ClinicianBolus::Single { dose: Mass::ng(1), over: Duration::days(7) },
            Mass::micrograms(400),
        );
        assert_eq!(empty_week.severity, Severity::Danger);
        assert!(empty_week.sentence.contains("withdrawal"), "{}", empty_week.sentence);
        // An impossible age: the check cannot run, so the increase needs a reason.
        let mut aged = inputs(continuous(400), continuous(1100));
        aged.patient.age_years = Some(131);
        assert!(has(&review(&aged), WarningCode::TitrationCheckFailed));
        // A threshold of 0.001 mL at 0.2 mL/day leaves minutes, not days.
        let threshold = alarm_threshold_change(Volume::ml(2), Volume::nl(1_000), VolumeRate::nl_per_day(200_000));
        assert_eq!(threshold.severity, Severity::Danger);
        assert!(threshold.sentence.contains("at 0.001 mL (it sounds at 2 mL now)"), "{}", threshold.sentence);
        assert_eq!(
            alarm_threshold_change(Volume::ml(2), Volume::ml(3), VolumeRate::nl_per_day(200_000)).severity,
            Severity::Caution
        );
        // An hour for summer time is routine; 34 hours is not.
        assert_eq!(clock_setting(-3_600_000, None).severity, Severity::Caution);
        assert_eq!(clock_setting(-34 * 3_600_000, None).severity, Severity::Danger);
    }

    #[test]
    fn a_reason_must_say_why() {
        for bad in [
            "yes",
            "  YES ",
            "y",
            "ok",
            "Yes!",
            "yes yes yes",
            "override",
            "",
            "spasms",
            "ok ok ok ok",
            "yes, go ahead",
            "n/a n/a n/a",
            "..........  .",
        ] {
            assert!(OverrideReason::parse(bad).is_err(), "{bad:?}");
        }
        let good = OverrideReason::parse("  consultant review: spasms not controlled ").expect("a reason");
        assert_eq!(good.as_str(), "consultant review: spasms not controlled");
        for fine in [
            "pump sent for analysis",
            "checked the clinic record: no increase this week",
            "infection: catheter to be removed",
        ] {
            assert!(OverrideReason::parse(fine).is_ok(), "{fine}");
        }
        assert!(matches!(OverrideReason::parse(&"why ".repeat(50)), Err(ReasonError::TooLong(_))));
        assert_eq!(OverrideReason::parse("spasms not\ncontrolled"), Err(ReasonError::ControlCharacter));
    }
}
