//! The programmer's typed values for people (text) and machines (JSON). Nothing here decides
//! anything: every figure and warning comes from `itb-programmer` and `itb-dose`.

use itb_dose::calc::refill_gap::RefillGap;
use itb_dose::prescription::{FlexSchedule, Therapy};
use itb_dose::review::{Figures, PumpSide, Severity, Warning};
use itb_dose::text;
use itb_dose::{DoseRate, Mass, Prescription, Volume};
use itb_programmer::history::LogEntry;
use itb_programmer::{Committed, MriCheck, PendingChange, PumpStatus, Withdrawal};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Value, json};

use crate::output::number;

/// Dates and words for one person at one service.
pub struct People {
    /// The zone dates are shown in.
    pub zone: TimeZone,
}

fn alarm_words(kind: itb_pump::AlarmKind) -> String {
    let text = kind.as_str().replace('_', " ");
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| first.to_uppercase().collect::<String>() + chars.as_str())
}

fn state_words(state: itb_pump::DeliveryState) -> &'static str {
    use itb_pump::DeliveryState::*;
    match state {
        Therapy => "delivering the programmed therapy",
        Bridge => "bridge bolus after a concentration change",
        SingleBolus => "single bolus running",
        Priming => "priming the catheter",
        Stopped => "STOPPED: no drug is delivered",
        Halted => "HALTED after a fault: no drug is delivered until it is programmed",
        EndOfService => "END OF SERVICE: no drug is delivered; replace the pump",
    }
}

impl People {
    /// An instant for people.
    pub fn at(&self, at: Timestamp) -> String {
        text::date_time(at, &self.zone)
    }

    fn optional_at(&self, at: Option<Timestamp>, none: &str) -> String {
        at.map_or_else(|| none.to_owned(), |at| self.at(at))
    }

    /// Every line of a therapy: mode, each flex step with its rate per day and per hour and each
    /// day's total, periodic bolus settings, PTM limits.
    pub fn therapy_lines(&self, prescription: Option<&Prescription>) -> Vec<String> {
        let Some(prescription) = prescription else { return vec!["No therapy programmed".to_owned()] };
        let rate = |r: DoseRate| format!("{} ({})", text::dose_rate(r), text::dose_rate_per_hour(r));
        let mut lines = Vec::new();
        match prescription.therapy() {
            Therapy::Stopped => lines.push("Stopped: NO drug is delivered".to_owned()),
            Therapy::SimpleContinuous { rate: r } => lines.push(format!("Simple continuous: {}", rate(*r))),
            Therapy::Flex(schedule) => {
                lines.push(match schedule {
                    FlexSchedule::Daily(_) => "Flex, the same steps every day:".to_owned(),
                    FlexSchedule::Weekly(_) => "Flex, a pattern for each day of the week:".to_owned(),
                });
                for (day, pattern) in schedule.days() {
                    if matches!(schedule, FlexSchedule::Weekly(_)) {
                        lines.push(format!("  {}:", itb_dose::text::capitalised(day)));
                    }
                    for step in pattern.steps() {
                        lines.push(format!("    from {}  {}", step.start, rate(step.rate)));
                    }
                    lines.push(format!("    day's total  {}", text::mass(pattern.total())));
                }
            }
            Therapy::PeriodicBolus(p) => {
                let every = if p.interval == itb_dose::Duration::DAY {
                    "once a day".to_owned()
                } else {
                    format!("every {}", text::duration(p.interval))
                };
                lines.push(format!(
                    "Periodic bolus: {} over {}, {every} from {}",
                    text::mass(p.bolus),
                    text::duration(p.bolus_duration),
                    p.first_at
                ));
                let count = p.boluses_per_day();
                lines.push(format!(
                    "  {count} bolus{} a day; basal {}; day's total {}",
                    if count == 1 { "" } else { "es" },
                    if p.basal.is_zero() { "none".to_owned() } else { rate(p.basal) },
                    text::mass(p.total())
                ));
            }
        }
        match prescription.ptm() {
            Some(ptm) => lines.push(format!(
                "PTM: {} over {}, at least {} apart, at most {} in 24 hours",
                text::mass(ptm.bolus),
                text::duration(ptm.bolus_duration),
                text::duration(ptm.lockout),
                ptm.max_per_day
            )),
            None => lines.push("PTM: none (patient boluses refused)".to_owned()),
        }
        lines
    }

    fn figure_rows(&self, side: &PumpSide, figures: &Figures) -> Vec<(&'static str, String)> {
        let schedule = figures.schedule.as_ref();
        let delivery = if !side.delivering {
            "OFF: nothing is delivered"
        } else if figures.max_day.is_zero() {
            "nothing (stopped therapy)"
        } else {
            "delivering"
        };
        vec![
            ("Delivery", delivery.to_owned()),
            ("Largest daily dose", text::mass(figures.max_day)),
            ("With every PTM bolus", text::mass(figures.worst_case_day)),
            ("Concentration", text::concentration(side.concentration)),
            ("Reservoir", text::volume(side.reservoir)),
            ("Daily volume (worst case)", text::volume_rate(figures.daily_volume)),
            ("Low-reservoir alarm at", text::volume(side.alarm_threshold)),
            (
                "Low-reservoir alarm on",
                schedule.map_or("cannot be computed".to_owned(), |s| self.optional_at(s.alarm_at, "not expected")),
            ),
            ("Refill due by", schedule.map_or("cannot be computed".to_owned(), |s| self.at(s.due_by))),
            ("Drug expires", schedule.map_or("cannot be computed".to_owned(), |s| self.at(s.expires_at))),
        ]
    }

    /// Old beside new: every line of both therapies, the figures side by side (changed lines
    /// marked), and every warning, most severe first.
    pub fn review(&self, change: &PendingChange) -> String {
        let what = match change.kind() {
            itb_dose::review::ChangeKind::Therapy => "therapy change",
            itb_dose::review::ChangeKind::Refill { .. } => "refill",
        };
        let mut out = format!("Review the {what}: check every line before the pump is updated.\n\n");
        out.push_str("Therapy NOW\n");
        for line in self.therapy_lines(change.before().prescription.as_ref()) {
            out.push_str(&format!("  {line}\n"));
        }
        out.push_str("Therapy AFTER");
        if change.before().prescription == change.after().prescription {
            out.push_str(" (unchanged)");
        }
        out.push('\n');
        for line in self.therapy_lines(change.after().prescription.as_ref()) {
            out.push_str(&format!("  {line}\n"));
        }
        let old = self.figure_rows(change.before(), &change.review().old);
        let new = self.figure_rows(change.after(), &change.review().new);
        let width = old.iter().map(|(_, v)| v.chars().count()).max().unwrap_or(0).max(12);
        out.push_str(&format!("\n  {:<27} {:<width$}   {}\n", "", "NOW", "AFTER"));
        for ((label, before), (_, after)) in old.iter().zip(new.iter()) {
            let mark = if before == after { ' ' } else { '*' };
            out.push_str(&format!("{mark} {label:<27} {before:<width$}   {after}\n"));
        }
        out.push_str(&self.warnings(&change.review().warnings));
        out.push_str(&format!("\nThe pump holds this change until {}.\n", self.at(change.expires_at())));
        out
    }

    /// The warnings, grouped by severity.
    pub fn warnings(&self, warnings: &[Warning]) -> String {
        if warnings.is_empty() {
            return "\nNo warnings.\n".to_owned();
        }
        let mut out = String::new();
        for (severity, heading, mark) in [
            (Severity::Danger, "DANGER: going ahead needs a written reason", "!!"),
            (Severity::Caution, "Check", "!"),
            (Severity::Info, "For the record", "-"),
        ] {
            let group: Vec<&Warning> = warnings.iter().filter(|w| w.severity == severity).collect();
            if group.is_empty() {
                continue;
            }
            out.push_str(&format!("\n{heading}\n"));
            for warning in group {
                out.push_str(&format!("  {mark} {}\n", warning.sentence));
            }
        }
        out
    }

    /// The status after an interrogation.
    pub fn status(&self, s: &PumpStatus) -> String {
        let mut rows: Vec<(&str, String)> = vec![
            ("Read at", self.at(s.at)),
            ("Pump clock", text::civil_date_time(s.pump_clock)),
            ("Pump", s.profile.clone()),
            (
                "State",
                if s.awaiting_refill {
                    "RESERVOIR WITHDRAWN: no drug is delivered until the refill".to_owned()
                } else {
                    state_words(s.state).to_owned()
                },
            ),
        ];
        let therapy = self.therapy_lines(s.prescription.as_ref());
        rows.push(("Therapy", therapy.first().cloned().unwrap_or_default()));
        for line in therapy.iter().skip(1) {
            rows.push(("", line.clone()));
        }
        let schedule = s.figures.schedule.as_ref();
        rows.extend([
            ("Largest daily dose", text::mass(s.figures.max_day)),
            ("With every PTM bolus", text::mass(s.figures.worst_case_day)),
            ("Rate commanded", text::volume_rate(s.rate)),
            (
                "Reservoir (pump's estimate)",
                format!(
                    "{} of {} ({} reservoir){}",
                    text::volume(s.reservoir),
                    text::concentration(s.concentration),
                    text::volume(s.capacity),
                    if s.awaiting_refill { "; WITHDRAWN, awaiting its refill" } else { "" }
                ),
            ),
            (
                "Low-reservoir alarm",
                format!(
                    "at {}; {}",
                    text::volume(s.alarm_threshold),
                    schedule.map_or("cannot be computed".to_owned(), |x| self.optional_at(x.alarm_at, "not expected"))
                ),
            ),
            ("Refill due by", schedule.map_or("cannot be computed".to_owned(), |x| self.at(x.due_by))),
            (
                "Battery",
                format!(
                    "about {} left{}",
                    text::duration(itb_dose::Duration::days(s.battery_remaining.as_ms() / 86_400_000)),
                    if s.elective_replacement { "; ELECTIVE REPLACEMENT INDICATOR on" } else { "" }
                ),
            ),
            ("Replace the pump by", text::date(s.replace_by, &self.zone)),
            ("Motor", if s.motor_stalled { "STALLED".to_owned() } else { "running".to_owned() }),
            (
                "PTM boluses, last 24 h",
                format!(
                    "{}{}",
                    s.ptm_boluses_last_24h,
                    s.ptm_next_allowed_at.map_or(String::new(), |at| format!("; next allowed {}", self.at(at)))
                ),
            ),
        ]);
        if s.alarms.is_empty() {
            rows.push(("Alarms", "none".to_owned()));
        }
        for alarm in &s.alarms {
            rows.push((
                "Alarm",
                format!(
                    "{} ({}) since {}: {}",
                    alarm_words(alarm.kind),
                    if alarm.critical { "CRITICAL" } else { "non-critical" },
                    self.at(alarm.raised_at),
                    alarm.kind.describe()
                ),
            ));
        }
        let width = rows.iter().map(|(l, _)| l.chars().count()).max().unwrap_or(0);
        let mut out = String::from("Pump status\n");
        for (label, value) in rows {
            out.push_str(&format!("  {label:<width$}  {value}\n"));
        }
        out
    }

    /// A page of the log.
    pub fn log(&self, entries: &[LogEntry], next_seq: u64) -> String {
        let mut out = String::new();
        for entry in entries {
            out.push_str(&format!("{:>6}  {}  {}\n", entry.seq, text::civil_date_time(entry.pump_clock), entry.text));
        }
        out.push_str(&format!("(times are the pump's own clock; the next entry will be number {next_seq})\n"));
        out
    }

    /// What a committed change leaves: the pump's words and its new dates.
    pub fn committed(&self, committed: &Committed) -> String {
        let mut out = format!("Committed: {}.\n", committed.message);
        if let Some(reason) = &committed.reason {
            out.push_str(&format!("Written reason, kept in the pump's log: {reason}\n"));
        }
        match &committed.status {
            Some(status) => {
                if let Some(schedule) = &status.figures.schedule {
                    out.push_str(&format!(
                        "Low-reservoir alarm {}; refill due by {}: book the next refill before the patient leaves.\n",
                        self.optional_at(schedule.alarm_at, "not expected"),
                        self.at(schedule.due_by)
                    ));
                }
            }
            None => out.push_str("Interrogate the pump to confirm its new settings.\n"),
        }
        out
    }

    /// What physically happened at a withdrawal that was not followed by a refill, and what to
    /// do before leaving the patient.
    pub fn after_withdrawal(&self, withdrawal: &Withdrawal) -> String {
        format!(
            "\nTHE RESERVOIR IS EMPTY: {} was withdrawn at {} and nothing was put back.\n\
             The pump's log records the withdrawal; the pump knows its reservoir is empty and its empty-reservoir alarm sounds.\n\
             {}\n\
             To go on: itb program refill --fill-ml ... --concentration ... (with --accept-gap \"reason\" if a gap stopped it; the refill goes on from the withdrawal already made).\n",
            text::volume(withdrawal.withdrawn),
            self.at(withdrawal.at),
            itb_dose::review::EMPTY_RESERVOIR_ADVICE
        )
    }

    /// The post-MRI check.
    pub fn mri(&self, check: &MriCheck) -> String {
        format!(
            "Post-MRI check\n  Motor            {}\n  State            {}\n  Stalls detected  {}, recoveries {}\n  {}\n",
            if check.motor_stalled { "STALLED" } else { "running" },
            state_words(check.state),
            check.stalls_detected,
            check.recoveries,
            check.advice.sentence()
        )
    }
}

/// Exact figures for machines.
fn micrograms(mass: Mass) -> Value {
    number(mass.number())
}

fn ml(volume: Volume) -> Value {
    number(volume.number())
}

fn minutes(span: itb_dose::Duration) -> Value {
    number(itb_dose::decimal::format_wide(u128::from(span.as_ms()) / 60, 3))
}

fn instant(at: Option<Timestamp>) -> Value {
    at.map_or(Value::Null, |at| Value::String(at.to_string()))
}

/// A therapy as data: mode, steps with both rates, day totals, periodic settings, PTM.
pub fn therapy_json(prescription: Option<&Prescription>) -> Value {
    let Some(prescription) = prescription else { return Value::Null };
    let rate = |r: DoseRate| {
        json!({
            "micrograms_per_day": number(r.number()),
            "micrograms_per_hour": number(itb_dose::decimal::format_wide(u128::from(r.as_ng_per_day()) * 1_000 / 24, 6)),
        })
    };
    let totals = prescription.daily_totals();
    let mut value = json!({
        "mode": prescription.therapy().mode_name(),
        "summary": prescription.to_string(),
        "prescription_toml": itb_dose::toml::to_toml(prescription),
        "daily_totals": totals.days.iter().map(|d| json!({"day": d.day, "micrograms": micrograms(d.total)})).collect::<Vec<_>>(),
    });
    match prescription.therapy() {
        Therapy::SimpleContinuous { rate: r } => value["rate"] = rate(*r),
        Therapy::Flex(schedule) => {
            value["steps"] = Value::Array(
                schedule
                    .days()
                    .into_iter()
                    .flat_map(|(day, pattern)| {
                        pattern.steps().iter().map(move |step| (day, step.start, step.rate)).collect::<Vec<_>>()
                    })
                    .map(|(day, start, r)| json!({"day": day, "start": start.to_string(), "rate": rate(r)}))
                    .collect(),
            );
        }
        Therapy::PeriodicBolus(p) => {
            value["periodic_bolus"] = json!({
                "bolus_micrograms": micrograms(p.bolus),
                "bolus_minutes": minutes(p.bolus_duration),
                "interval_minutes": minutes(p.interval),
                "first_at": p.first_at.to_string(),
                "basal": rate(p.basal),
            });
        }
        Therapy::Stopped => {}
    }
    value["ptm"] = prescription.ptm().map_or(Value::Null, |ptm| {
        json!({
            "bolus_micrograms": micrograms(ptm.bolus),
            "bolus_minutes": minutes(ptm.bolus_duration),
            "lockout_minutes": minutes(ptm.lockout),
            "max_per_24h": ptm.max_per_day,
        })
    });
    value
}

fn side_json(side: &PumpSide, figures: &Figures) -> Value {
    let schedule = figures.schedule.as_ref();
    json!({
        "therapy": therapy_json(side.prescription.as_ref()),
        "max_daily_dose_micrograms": micrograms(figures.max_day),
        "mean_daily_dose_micrograms": micrograms(figures.mean_day),
        "worst_case_daily_dose_micrograms": micrograms(figures.worst_case_day),
        "concentration_micrograms_per_ml": number(side.concentration.number()),
        "reservoir_ml": ml(side.reservoir),
        "alarm_threshold_ml": ml(side.alarm_threshold),
        "daily_volume_ml": number(figures.daily_volume.number()),
        "low_reservoir_alarm_at": instant(schedule.and_then(|s| s.alarm_at)),
        "refill_due_at": instant(schedule.map(|s| s.due_by)),
        "drug_expires_at": instant(schedule.map(|s| s.expires_at)),
    })
}

/// Warnings as data.
pub fn warnings_json(warnings: &[Warning]) -> Value {
    Value::Array(
        warnings
            .iter()
            .map(|w| {
                json!({
                    "code": w.code.as_str(),
                    "severity": w.severity.as_str(),
                    "needs_override": w.needs_override(),
                    "sentence": w.sentence,
                })
            })
            .collect(),
    )
}

/// A refill gap as data.
pub fn gap_json(gap: &RefillGap) -> Value {
    json!({
        "expected_ml": ml(gap.expected),
        "withdrawn_ml": ml(gap.withdrawn),
        "gap_ml": ml(gap.gap),
        "direction": gap.direction.map(|d| d.as_str()),
        "limit_ml": ml(gap.limit),
        "stops_the_refill": gap.stops_the_refill(),
    })
}

/// A withdrawal as data.
pub fn withdrawal_json(withdrawal: &Withdrawal) -> Value {
    let mut value = gap_json(&withdrawal.gap);
    value["at"] = Value::String(withdrawal.at.to_string());
    value
}

/// A reviewed change as data.
pub fn review_json(change: &PendingChange) -> Value {
    let titration = change.review().titration.as_ref().map_or(Value::Null, |t| {
        json!({
            "verdict": t.verdict.as_str(),
            "change_percent": number(itb_dose::calc::titrate::percent_text(t.change_micro_percent)),
            "band_percent": [t.band_percent.0, t.band_percent.1],
            "reasons": t.reasons,
        })
    });
    let last_increase = match &change.last_increase() {
        itb_dose::calc::titrate::LastIncrease::Known(None) => json!({"known": true, "hours_ago": null}),
        itb_dose::calc::titrate::LastIncrease::Known(Some(ago)) => {
            json!({"known": true, "hours_ago": number(ago.hours_decimal())})
        }
        itb_dose::calc::titrate::LastIncrease::Unknown(why) => json!({"known": false, "why": why}),
    };
    json!({
        "change": change.kind().as_str(),
        "old": side_json(change.before(), &change.review().old),
        "new": side_json(change.after(), &change.review().new),
        "warnings": warnings_json(&change.review().warnings),
        "needs_override": change.review().needs_override(),
        "titration": titration,
        "last_increase": last_increase,
        "withdrawal": change.withdrawal().as_ref().map_or(Value::Null, withdrawal_json),
        "hash": change.hash().iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "expires_at": change.expires_at().to_string(),
    })
}

/// The status as data (the field names of the first programmer, kept, and the new figures).
pub fn status_json(s: &PumpStatus) -> Value {
    let schedule = s.figures.schedule.as_ref();
    json!({
        "read_at": s.at.to_string(),
        "pump_time": s.pump_clock.strftime("%Y-%m-%dT%H:%M:%S").to_string(),
        "profile": s.profile,
        "state": s.state.as_str(),
        "program_number": s.program_number,
        "prescription_toml": s.prescription.as_ref().map(itb_dose::toml::to_toml),
        "therapy": therapy_json(s.prescription.as_ref()),
        "capacity_ml": ml(s.capacity),
        "reservoir_ml": ml(s.reservoir),
        "awaiting_refill": s.awaiting_refill,
        "concentration_micrograms_per_ml": number(s.concentration.number()),
        "alarm_threshold_ml": ml(s.alarm_threshold),
        "rate_ml_per_day": number(s.rate.number()),
        "max_daily_dose_micrograms": micrograms(s.figures.max_day),
        "worst_case_daily_dose_micrograms": micrograms(s.figures.worst_case_day),
        "low_reservoir_alarm_at": instant(schedule.and_then(|x| x.alarm_at)),
        "refill_due_at": instant(schedule.map(|x| x.due_by)),
        "drug_expires_at": instant(schedule.map(|x| x.expires_at)),
        "alarms": s.alarms.iter().map(|a| a.kind.as_str()).collect::<Vec<_>>(),
        "alarms_detail": s.alarms.iter().map(|a| json!({"alarm": a.kind.as_str(), "critical": a.critical, "raised_at": a.raised_at.to_string()})).collect::<Vec<_>>(),
        "motor_stalled": s.motor_stalled,
        "battery_remaining_days": s.battery_remaining.as_ms() / 86_400_000,
        "replace_by": s.replace_by.to_string(),
        "elective_replacement": s.elective_replacement,
        "ptm_boluses_last_24h": s.ptm_boluses_last_24h,
        "ptm_next_allowed_at": instant(s.ptm_next_allowed_at),
        "log_next_seq": s.log_next_seq,
    })
}

/// A committed change as data.
pub fn committed_json(committed: &Committed) -> Value {
    json!({
        "message": committed.message,
        "reason": committed.reason.as_ref().map(ToString::to_string),
        "after": committed.status.as_ref().map_or(Value::Null, status_json),
    })
}
