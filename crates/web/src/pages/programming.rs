//! Programming a pump from the clinic: interrogate and show its status; the prescription
//! editor for every mode; the review of a staged change old beside new with every warning; the
//! commit by hash; what the pump answered.

use askama::Template;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use itb_clinic::api::AppState;
use itb_clinic::programming::{self, CommitInput, TherapyInput};
use itb_clinic::rules::access::Permission;
use itb_dose::prescription::PrescriptionError;
use itb_dose::toml::TomlError;
use itb_dose::{Prescription, Therapy};
use serde::Deserialize;
use serde_json::Value;

use super::patient::Line;
use super::{Layout, PageError, page_id, render, render_form};
use crate::form::{Fields, Problems, problems_of};
use crate::session::Viewer;
use crate::view::{self, Tag};

/// Most flex steps a day (the prescription's own limit is checked by `itb-dose`).
pub const STEPS_MAX: usize = 13;

/// What the record says of a pump, for a page's heading.
pub struct PumpHeading {
    pub pump_id: i64,
    pub patient_id: i64,
    pub patient: String,
    pub nhs: String,
    pub serial: String,
}

/// Who else has a change waiting on pump `id` (staged, not yet sent), in words.
pub async fn staged_by_another(state: &AppState, viewer: &Viewer, id: i64) -> Result<Option<String>, PageError> {
    let Some((staged, by)) = programming::staged_on(state, id).await else { return Ok(None) };
    if by == viewer.user.id {
        return Ok(None);
    }
    let who = state.store.user(by).await?.map_or_else(|| "Someone".to_owned(), |u| u.username);
    let what = if staged["kind"].as_str() == Some("refill") { "a refill" } else { "a prescription change" };
    Ok(Some(format!(
        "{who} has {what} waiting to be sent to this pump (checked until {}). If you go on, theirs is replaced by yours: speak to {who} first.",
        view::when(&staged["expires_at"])
    )))
}

pub async fn heading_of(state: &AppState, viewer: &Viewer, pump_id: i64) -> Result<(PumpHeading, Value), PageError> {
    let patient_id = state.store.pump_patient(pump_id).await?;
    viewer.may_read(patient_id)?;
    let now = state.clock.now();
    let pump = state.store.pump(pump_id, now).await?;
    let names = state.store.patient_names(&[patient_id]).await?;
    let (patient, nhs) = names.get(&patient_id).cloned().unwrap_or_default();
    let nhs = view::nhs(&nhs);
    Ok((PumpHeading { pump_id, patient_id, patient, nhs, serial: view::text(&pump["serial"]) }, pump))
}

/// `POST /pumps/{id}/interrogate`: connects, interrogates, records; then the status page.
pub async fn interrogate(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let id = page_id(&id)?;
    viewer.form(&body)?;
    viewer.require(Permission::Interrogate)?;
    heading_of(&state, &viewer, id).await?;
    programming::interrogate_pump(&state, &viewer.caller(), id).await?;
    Ok(Redirect::to(&format!("/pumps/{id}/status")).into_response())
}

#[derive(Template)]
#[template(path = "status.html")]
struct StatusPage {
    layout: Layout,
    head: PumpHeading,
    read: bool,
    when: String,
    lines: Vec<Line>,
    steps: Vec<StepRow>,
    alarms: Vec<AlarmRow>,
    differs: bool,
    may_interrogate: bool,
    may_prescribe: bool,
    may_refill: bool,
}

/// An alarm the pump reported.
pub struct AlarmRow {
    pub what: String,
    pub when: String,
    pub tag: Tag,
}

/// A flex step, as read.
pub struct StepRow {
    pub day: String,
    pub start: String,
    pub rate: String,
}

fn steps_of(prescription: &Prescription) -> Vec<StepRow> {
    let mut rows = Vec::new();
    if let Therapy::Flex(schedule) = prescription.therapy() {
        for (day, pattern) in schedule.days() {
            for step in pattern.steps() {
                rows.push(StepRow {
                    day: crate::view::text(&Value::from(day)),
                    start: step.start.to_string(),
                    rate: itb_dose::text::dose_rate(step.rate),
                });
            }
        }
    }
    rows
}

/// `GET /pumps/{id}/status`: what the pump reported at its latest interrogation.
pub async fn status(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = page_id(&id)?;
    let (head, pump) = heading_of(&state, &viewer, id).await?;
    let latest = state.store.interrogations(id, 1, 0).await?;
    let mut lines = Vec::new();
    let mut steps = Vec::new();
    let mut alarms = Vec::new();
    let mut differs = false;
    let mut when = String::new();
    if let Some(reading) = latest.items.first() {
        let r = &reading["reported"];
        when = view::when(&reading["at"]);
        let running = itb_clinic::model::read_prescription("prescription", &r["prescription"]).ok();
        let recorded = itb_clinic::model::read_prescription("prescription", &pump["prescription"]["prescription"]).ok();
        differs = running.is_some() && running != recorded;
        lines = vec![
            Line::new("State", view::pump_state(&r["state"])),
            Line::new("Reservoir", format!("{} of {}", view::ml(&r["reservoir_ml"]), view::ml(&r["capacity_ml"]))),
            Line::new("Drug", format!("Baclofen {}", view::concentration(&r["concentration_micrograms_per_ml"]))),
            Line::new(
                "Running",
                running.as_ref().map_or_else(|| "not reported".to_owned(), itb_dose::text::prescription_words),
            ),
            Line::new("Worst-case day", view::per_day(&r["worst_case_day_micrograms"])),
            Line::new("Low-reservoir alarm", view::when_or(&r["low_reservoir_alarm_at"], "None expected")),
            Line::new("Refill due by", view::when_or(&r["refill_due_by"], "Not known")),
            Line::new(
                "Battery",
                format!(
                    "{} left; replace by {}{}",
                    view::days_left(&r["battery_remaining_days"]),
                    view::date(&r["replace_by"]),
                    if r["elective_replacement"].as_bool().unwrap_or(false) {
                        " (elective replacement indicator on)"
                    } else {
                        ""
                    }
                ),
            ),
            Line::new("PTM boluses in the last 24 hours", view::number(&r["ptm_boluses_last_24h"])),
        ];
        if r["motor_stalled"].as_bool().unwrap_or(false) {
            lines.insert(0, Line::new("Motor", "STALLED: the pump may not be delivering. Check the patient for withdrawal now and call the consultant"));
        }
        if r["awaiting_refill"].as_bool().unwrap_or(false) {
            lines.push(Line::new("Refill", "The reservoir was emptied and the refill is not yet done"));
        }
        if let Some(rx) = &running {
            steps = steps_of(rx);
        }
        for alarm in r["alarms"].as_array().map(Vec::as_slice).unwrap_or_default() {
            let critical = alarm["critical"].as_bool().unwrap_or(false);
            alarms.push(AlarmRow {
                what: crate::form::sentence(&alarm["kind"].as_str().unwrap_or("alarm").replace('_', " ")),
                when: view::when(&alarm["raised_at"]),
                tag: if critical { Tag::new("red", "Critical") } else { Tag::new("orange", "Alarm") },
            });
        }
    }
    Ok(render(&StatusPage {
        layout: viewer.layout("Pump status"),
        read: !latest.items.is_empty(),
        head,
        when,
        lines,
        steps,
        alarms,
        differs,
        may_interrogate: viewer.may(Permission::Interrogate),
        may_prescribe: viewer.may(Permission::Prescribe),
        may_refill: viewer.may(Permission::Refill),
    }))
}

/// A flex step as typed.
#[derive(Debug, Clone, Default)]
pub struct StepInput {
    pub n: usize,
    pub start: String,
    pub rate: String,
}

/// The editor's fields, as typed (kept as text so nothing typed is lost).
#[derive(Debug, Clone, Default)]
pub struct Editor {
    pub mode: String,
    pub dose: String,
    pub steps: Vec<StepInput>,
    pub bolus_dose: String,
    pub bolus_duration: String,
    pub interval: String,
    pub first_bolus_at: String,
    pub basal: String,
    pub ptm: bool,
    pub ptm_dose: String,
    pub ptm_duration: String,
    pub ptm_lockout: String,
    pub ptm_max: String,
    pub reason: String,
    /// The pump runs a pattern for each weekday (the editor writes one for every day).
    pub weekly: bool,
}

/// An exact quantity in thousandths (ng as micrograms) as the editor shows it: `400`, `12.5`.
fn thousandths(n: u64) -> String {
    let (whole, part) = (n / 1000, n % 1000);
    if part == 0 { whole.to_string() } else { format!("{whole}.{part:03}").trim_end_matches('0').to_owned() }
}

/// Minutes of a duration as the editor shows them: `60`, `1.5`.
fn minutes(d: itb_dose::Duration) -> String {
    thousandths(d.as_ms() / 60)
}

impl Editor {
    fn renumber(&mut self) {
        for (i, s) in self.steps.iter_mut().enumerate() {
            s.n = i + 1;
        }
    }

    /// The editor filled with a prescription of the record, read from its exact values.
    fn from_record(rx: &Value) -> Self {
        let mut e = Editor { mode: "simple_continuous".to_owned(), ..Editor::default() };
        if let Ok(rx) = itb_clinic::model::read_prescription("prescription", rx) {
            e.mode = rx.therapy().mode_name().to_owned();
            let steps = |pattern: &itb_dose::prescription::DayPattern| -> Vec<StepInput> {
                pattern
                    .steps()
                    .iter()
                    .map(|s| StepInput { n: 0, start: s.start.to_string(), rate: thousandths(s.rate.as_ng_per_day()) })
                    .collect()
            };
            match rx.therapy() {
                Therapy::Stopped => {}
                Therapy::SimpleContinuous { rate } => e.dose = thousandths(rate.as_ng_per_day()),
                Therapy::Flex(itb_dose::prescription::FlexSchedule::Daily(day)) => e.steps = steps(day),
                Therapy::Flex(itb_dose::prescription::FlexSchedule::Weekly(days)) => {
                    e.weekly = true;
                    e.steps = steps(&days[0]);
                }
                Therapy::PeriodicBolus(p) => {
                    e.bolus_dose = thousandths(p.bolus.as_ng());
                    e.bolus_duration = minutes(p.bolus_duration);
                    e.interval = minutes(p.interval);
                    e.first_bolus_at = p.first_at.to_string();
                    e.basal = if p.basal.is_zero() { String::new() } else { thousandths(p.basal.as_ng_per_day()) };
                }
            }
            if let Some(t) = rx.ptm() {
                e.ptm = true;
                e.ptm_dose = thousandths(t.bolus.as_ng());
                e.ptm_duration = minutes(t.bolus_duration);
                e.ptm_lockout = minutes(t.lockout);
                e.ptm_max = t.max_per_day.to_string();
            }
        }
        if e.steps.is_empty() {
            e.steps.push(StepInput { n: 1, start: "00:00".to_owned(), rate: e.dose.clone() });
        }
        e.renumber();
        e
    }

    /// The editor as the form sent it.
    fn from_form(fields: &Fields) -> Self {
        let starts = fields.all("step_start");
        let rates = fields.all("step_rate");
        let steps = starts
            .iter()
            .zip(rates.iter())
            .take(100)
            .map(|(s, r)| StepInput { n: 0, start: (*s).to_owned(), rate: (*r).to_owned() })
            .collect();
        let mut e = Editor {
            mode: fields.get("mode").to_owned(),
            dose: fields.get("dose").to_owned(),
            steps,
            bolus_dose: fields.get("bolus_dose").to_owned(),
            bolus_duration: fields.get("bolus_duration").to_owned(),
            interval: fields.get("interval").to_owned(),
            first_bolus_at: fields.get("first_bolus_at").to_owned(),
            basal: fields.get("basal").to_owned(),
            ptm: fields.has("ptm"),
            ptm_dose: fields.get("ptm_dose").to_owned(),
            ptm_duration: fields.get("ptm_duration").to_owned(),
            ptm_lockout: fields.get("ptm_lockout").to_owned(),
            ptm_max: fields.get("ptm_max").to_owned(),
            reason: fields.text("reason", 500).unwrap_or_default(),
            weekly: false,
        };
        e.renumber();
        e
    }

    /// The prescription the fields describe (the fields of a prescription file), or the
    /// problem at each field.
    fn prescription(&self) -> Result<Prescription, Problems> {
        let mut problems = Problems::none();
        fn number(problems: &mut Problems, id: &str, text: &str, what: &str) -> String {
            let ok = !text.is_empty()
                && text.len() <= 12
                && text.chars().all(|c| c.is_ascii_digit() || c == '.')
                && text.matches('.').count() <= 1
                && text.split('.').nth(1).is_none_or(|d| d.len() <= 3);
            if !ok {
                problems.add(id, format!("Enter {what} as a number, such as 250 or 12.5"));
            }
            text.to_owned()
        }
        let mut table = toml::Table::new();
        table.insert("mode".to_owned(), toml::Value::String(self.mode.clone()));
        match self.mode.as_str() {
            "simple_continuous" => {
                let dose = number(&mut problems, "dose", &self.dose, "the daily dose in micrograms a day");
                table.insert("dose".to_owned(), toml::Value::String(format!("{dose} micrograms/day")));
            }
            "flex" => {
                let mut steps = Vec::new();
                for s in &self.steps {
                    let time_ok = s.start.len() == 5
                        && s.start.as_bytes()[2] == b':'
                        && s.start[..2].parse::<u8>().is_ok_and(|h| h < 24)
                        && s.start[3..].parse::<u8>().is_ok_and(|m| m < 60);
                    if !time_ok {
                        problems.add(
                            format!("flex.steps[{}].start", s.n),
                            format!("Enter step {}'s start as a time of day, such as 07:30", s.n),
                        );
                    }
                    let rate = number(
                        &mut problems,
                        &format!("flex.steps[{}].rate", s.n),
                        &s.rate,
                        &format!("step {}'s rate", s.n),
                    );
                    let mut step = toml::Table::new();
                    step.insert("start".to_owned(), toml::Value::String(s.start.clone()));
                    step.insert("rate".to_owned(), toml::Value::String(format!("{rate} micrograms/day")));
                    steps.push(toml::Value::Table(step));
                }
                let mut flex = toml::Table::new();
                flex.insert("steps".to_owned(), toml::Value::Array(steps));
                table.insert("flex".to_owned(), toml::Value::Table(flex));
            }
            "periodic_bolus" => {
                let mut p = toml::Table::new();
                let dose = number(&mut problems, "periodic.bolus_dose", &self.bolus_dose, "the bolus in micrograms");
                p.insert("bolus_dose".to_owned(), toml::Value::String(format!("{dose} micrograms")));
                let minutes = number(
                    &mut problems,
                    "periodic.bolus_duration",
                    &self.bolus_duration,
                    "the bolus's length in minutes",
                );
                p.insert("bolus_duration".to_owned(), toml::Value::String(format!("{minutes} min")));
                let interval = number(&mut problems, "periodic.interval", &self.interval, "the interval in minutes");
                p.insert("interval".to_owned(), toml::Value::String(format!("{interval} min")));
                p.insert("first_bolus_at".to_owned(), toml::Value::String(self.first_bolus_at.clone()));
                if !self.basal.is_empty() && self.basal != "0" {
                    let basal =
                        number(&mut problems, "periodic.basal", &self.basal, "the basal rate in micrograms a day");
                    p.insert("basal".to_owned(), toml::Value::String(format!("{basal} micrograms/day")));
                }
                table.insert("periodic".to_owned(), toml::Value::Table(p));
            }
            "stopped" => {}
            _ => problems.add("mode", "Choose how the pump delivers the drug"),
        }
        if self.ptm && self.mode != "stopped" {
            let mut t = toml::Table::new();
            let dose = number(&mut problems, "ptm.bolus_dose", &self.ptm_dose, "the PTM bolus in micrograms");
            t.insert("bolus_dose".to_owned(), toml::Value::String(format!("{dose} micrograms")));
            let minutes =
                number(&mut problems, "ptm.bolus_duration", &self.ptm_duration, "the PTM bolus's length in minutes");
            t.insert("bolus_duration".to_owned(), toml::Value::String(format!("{minutes} min")));
            let lockout = number(&mut problems, "ptm.lockout", &self.ptm_lockout, "the lockout in minutes");
            t.insert("lockout".to_owned(), toml::Value::String(format!("{lockout} min")));
            let max = self.ptm_max.parse::<i64>().ok().filter(|n| (1..=24).contains(n));
            if max.is_none() {
                problems.add("ptm.max_boluses_per_day", "Enter the most PTM boluses in 24 hours, from 1 to 24");
            }
            t.insert("max_boluses_per_day".to_owned(), toml::Value::Integer(max.unwrap_or(1)));
            table.insert("ptm".to_owned(), toml::Value::Table(t));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let text = toml::to_string(&toml::Value::Table(table)).unwrap_or_default();
        itb_dose::toml::from_toml(&text).map_err(|e| {
            let (field, message) = toml_problem(&e);
            let mut p = Problems::none();
            p.add(field, crate::form::sentence(&message));
            p
        })
    }

    /// The day's total as typed, where the steps can be read.
    fn total(&self) -> String {
        match self.prescription() {
            Ok(rx) => format!("{} a day", itb_dose::text::mass(rx.daily_totals().max)),
            Err(_) => "not yet known: check the steps".to_owned(),
        }
    }
}

/// The page field a prescription's refusal names, and its message.
fn toml_problem(error: &TomlError) -> (String, String) {
    match error {
        TomlError::Quantity { field, source } => (field.clone(), format!("{}: {source}", label_of(field))),
        TomlError::Field { field, message } => (field.clone(), format!("{}: {message}", label_of(field))),
        TomlError::Prescription(p) => match p {
            PrescriptionError::OutOfRange { field, value, rule } => {
                (field.clone(), format!("{} is {value}; it must be {rule}", label_of(field)))
            }
            PrescriptionError::StepCount { count, max, .. } => {
                ("steps".to_owned(), format!("There are {count} flex steps; a day has 1 to {max}"))
            }
            PrescriptionError::FirstStepNotAtMidnight { start, .. } => (
                "flex.steps[1].start".to_owned(),
                format!(
                    "The first step starts at {start}; it must start at 00:00 so that the steps cover the whole day"
                ),
            ),
            PrescriptionError::StepsOutOfOrder { step, start, previous_step, previous, .. } => (
                format!("flex.steps[{step}].start"),
                format!(
                    "Step {step} starts at {start}, not after step {previous_step} at {previous}: put the steps in time order, no two at the same time"
                ),
            ),
            PrescriptionError::IntervalNotDividingDay { interval } => (
                "periodic.interval".to_owned(),
                format!(
                    "The interval is {interval}; it must divide 24 hours exactly (such as 3, 4, 6, 8, 12 or 24 hours)"
                ),
            ),
        },
        TomlError::Syntax(_) => (String::new(), crate::form::sentence(&error.to_string())),
    }
}

/// A prescription file's field as the editor labels it.
fn label_of(field: &str) -> String {
    if let Some(rest) = field.strip_prefix("flex.steps[")
        && let Some((n, part)) = rest.split_once("].")
    {
        return match part {
            "start" => format!("Step {n}'s start"),
            _ => format!("Step {n}'s rate"),
        };
    }
    match field {
        "dose" => "The daily dose",
        "mode" => "The mode",
        "periodic.bolus_dose" => "The bolus",
        "periodic.bolus_duration" => "Each bolus's length",
        "periodic.interval" => "The interval between boluses",
        "periodic.first_bolus_at" => "The first bolus's time",
        "periodic.basal" => "The basal rate",
        "ptm.bolus_dose" => "The PTM bolus",
        "ptm.bolus_duration" => "Each PTM bolus's length",
        "ptm.lockout" => "The time between PTM boluses",
        "ptm.max_boluses_per_day" => "The most PTM boluses in 24 hours",
        _ => "This value",
    }
    .to_owned()
}

/// A text input of the editor.
pub struct InputView {
    pub id: String,
    pub name: &'static str,
    pub label: &'static str,
    pub suffix: &'static str,
    pub mode: &'static str,
    pub value: String,
    pub error: Option<String>,
}

/// A flex step row of the editor.
pub struct StepView {
    pub n: usize,
    pub start: String,
    pub rate: String,
    pub start_id: String,
    pub rate_id: String,
    pub start_error: Option<String>,
    pub rate_error: Option<String>,
}

#[derive(Template)]
#[template(path = "prescribe.html")]
struct PrescribePage {
    layout: Layout,
    head: PumpHeading,
    current: String,
    other: Option<String>,
    editor: Editor,
    steps: Vec<StepView>,
    periodic: Vec<InputView>,
    ptm_inputs: Vec<InputView>,
    total: String,
    problems: Problems,
}

impl PrescribePage {
    fn new(
        layout: Layout,
        head: PumpHeading,
        current: String,
        other: Option<String>,
        editor: Editor,
        problems: Problems,
    ) -> Self {
        let input = |id: &str, name: &'static str, label: &'static str, suffix: &'static str, value: &str| InputView {
            id: id.to_owned(),
            name,
            label,
            suffix,
            mode: if name.contains("first") { "text" } else { "decimal" },
            value: value.to_owned(),
            error: problems.at(id).map(str::to_owned),
        };
        let periodic = vec![
            input("periodic.bolus_dose", "bolus_dose", "Bolus", "micrograms", &editor.bolus_dose),
            input("periodic.bolus_duration", "bolus_duration", "Each bolus lasts", "minutes", &editor.bolus_duration),
            input("periodic.interval", "interval", "A bolus every", "minutes", &editor.interval),
            input("periodic.first_bolus_at", "first_bolus_at", "First bolus at", "(HH:MM)", &editor.first_bolus_at),
            input("periodic.basal", "basal", "Basal rate between boluses", "micrograms a day", &editor.basal),
        ];
        let ptm_inputs = vec![
            input("ptm.bolus_dose", "ptm_dose", "PTM bolus", "micrograms", &editor.ptm_dose),
            input("ptm.bolus_duration", "ptm_duration", "Each lasts", "minutes", &editor.ptm_duration),
            input("ptm.lockout", "ptm_lockout", "At least this long apart", "minutes", &editor.ptm_lockout),
            input("ptm.max_boluses_per_day", "ptm_max", "At most in 24 hours", "boluses", &editor.ptm_max),
        ];
        let steps = editor
            .steps
            .iter()
            .map(|s| {
                let start_id = format!("flex.steps[{}].start", s.n);
                let rate_id = format!("flex.steps[{}].rate", s.n);
                StepView {
                    n: s.n,
                    start: s.start.clone(),
                    rate: s.rate.clone(),
                    start_error: problems.at(&start_id).map(str::to_owned),
                    rate_error: problems.at(&rate_id).map(str::to_owned),
                    start_id,
                    rate_id,
                }
            })
            .collect();
        let total = editor.total();
        Self { layout, head, current, other, editor, steps, periodic, ptm_inputs, total, problems }
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct EditorQuery {
    mode: Option<String>,
}

/// `GET /pumps/{id}/prescribe`: the editor, filled with what the pump runs now.
pub async fn editor(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    q: Result<Query<EditorQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let id = page_id(&id)?;
    viewer.require(Permission::Prescribe)?;
    let (head, pump) = heading_of(&state, &viewer, id).await?;
    let rx = &pump["prescription"]["prescription"];
    let mut editor = Editor::from_record(rx);
    if let Some(mode) = q
        .ok()
        .and_then(|q| q.0.mode)
        .filter(|m| ["simple_continuous", "flex", "periodic_bolus", "stopped"].contains(&m.as_str()))
    {
        editor.mode = mode;
    }
    Ok(render(&PrescribePage::new(
        viewer.layout("Change the prescription"),
        head,
        view::prescription(rx),
        staged_by_another(&state, &viewer, id).await?,
        editor,
        Problems::none(),
    )))
}

/// `POST /pumps/{id}/prescribe`: adds or removes a flex step (without JavaScript), or checks the
/// prescription and stages it on the pump for review.
pub async fn stage(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let id = page_id(&id)?;
    let fields = viewer.form(&body)?;
    viewer.require(Permission::Prescribe)?;
    let (head, pump) = heading_of(&state, &viewer, id).await?;
    let mut editor = Editor::from_form(&fields);
    let action = fields.get("action");
    let mut problems = Problems::none();
    if action == "add_step" {
        if editor.steps.len() >= STEPS_MAX {
            problems.add("steps", format!("A day has at most {STEPS_MAX} flex steps"));
        } else {
            editor.steps.push(StepInput::default());
        }
        editor.mode = "flex".to_owned();
    } else if let Some(n) = action.strip_prefix("remove_").and_then(|n| n.parse::<usize>().ok()) {
        if editor.steps.len() <= 1 {
            problems.add("steps", "A day has at least one flex step: change its rate instead");
        } else if (1..=editor.steps.len()).contains(&n) {
            editor.steps.remove(n - 1);
        }
        editor.mode = "flex".to_owned();
    } else {
        // The problems in the order of the page: the prescription's fields, then the reason.
        let prescription = editor.prescription();
        if let Err(p) = &prescription {
            problems.0.extend(p.0.iter().cloned());
        }
        if editor.reason.is_empty() {
            problems.add("reason", "Write why the prescription changes");
        }
        match prescription {
            Err(_) => {}
            Ok(rx) if problems.is_empty() => {
                let input = TherapyInput {
                    prescription: itb_clinic::model::prescription_json(&rx),
                    reason: Some(editor.reason.clone()),
                };
                match programming::stage_therapy_on(&state, &viewer.caller(), id, input).await {
                    Ok(_) => return Ok(Redirect::to(&format!("/pumps/{id}/review")).into_response()),
                    Err(e) => match problems_of(&e.0, |f| match f {
                        "body" | "prescription" => String::new(),
                        other => other.trim_start_matches("prescription.").to_owned(),
                    }) {
                        Some(p) => problems.0.extend(p),
                        None => return Err(PageError::from(e)),
                    },
                }
            }
            Ok(_) => {}
        }
    }
    editor.renumber();
    let rx = &pump["prescription"]["prescription"];
    Ok(render_form(
        &PrescribePage::new(
            viewer.layout("Change the prescription"),
            head,
            view::prescription(rx),
            staged_by_another(&state, &viewer, id).await?,
            editor,
            problems.clone(),
        ),
        &problems,
    ))
}

/// A row of the old-beside-new comparison.
pub struct Compare {
    pub label: String,
    pub old: String,
    pub new: String,
    pub changed: bool,
}

/// A warning of the review.
pub struct WarningRow {
    pub tag: Tag,
    pub sentence: String,
    pub needs_override: bool,
}

#[derive(Template)]
#[template(path = "review.html")]
pub struct ReviewPage {
    pub layout: Layout,
    pub head: PumpHeading,
    pub refill: bool,
    pub hash: String,
    pub expires: String,
    pub compare: Vec<Compare>,
    pub old_steps: Vec<StepRow>,
    pub new_steps: Vec<StepRow>,
    pub titration: Vec<Line>,
    pub warnings: Vec<WarningRow>,
    pub needs_override: bool,
    pub gap: Option<GapView>,
    pub details: Vec<Line>,
    pub checker: String,
    pub override_reason: String,
    pub problems: Problems,
    /// A therapy change that changes nothing.
    pub unchanged: bool,
}

/// The withdrawal's gap.
pub struct GapView {
    pub expected: String,
    pub withdrawn: String,
    pub gap: String,
    pub sentence: String,
    pub stops: bool,
}

fn figure_rows(review: &Value) -> Vec<Compare> {
    let (old, new) = (&review["old"], &review["new"]);
    let row = |label: &str, f: &dyn Fn(&Value) -> String| {
        let (o, n) = (f(old), f(new));
        Compare { label: label.to_owned(), changed: o != n, old: o, new: n }
    };
    vec![
        row("Largest day", &|v| view::per_day(&v["largest_day_micrograms"])),
        row("Average day", &|v| view::per_day(&v["mean_day_micrograms"])),
        row("Worst case (every PTM bolus taken)", &|v| view::per_day(&v["worst_case_day_micrograms"])),
        row("Volume a day", &|v| view::ml_fine(&v["daily_volume_ml"])),
        row("Low-reservoir alarm", &|v| view::when_or(&v["low_reservoir_alarm_at"], "None expected")),
        row("Refill due", &|v| view::date(&v["refill_due_on"])),
        row("Drug expires in the pump", &|v| view::date(&v["drug_expires_at"])),
        row("Refill date limited by", &|v| view::limited_by(&v["limited_by"])),
    ]
}

/// The review page of the change staged on pump `id`, with `problems` from a refused commit.
async fn review_page(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    problems: Problems,
    override_reason: String,
) -> Result<Response, PageError> {
    let (head, pump) = heading_of(state, viewer, id).await?;
    let Some((staged, by)) = programming::staged_on(state, id).await else {
        return Err(PageError::Refused(
            "Nothing is waiting to be sent to this pump: the change was sent, cancelled, or waited too long. A prescription change that was not sent leaves the pump as it was; a refill that was not sent leaves the reservoir empty. Interrogate the pump now and, for a refill, start it again before the patient leaves."
                .to_owned(),
        ));
    };
    if by != viewer.user.id {
        let who = state.store.user(by).await?.map_or_else(|| "Someone else".to_owned(), |u| u.username);
        return Err(PageError::Refused(format!(
            "{who} staged a change on this pump after you, so yours was replaced and was not sent. {who} sends or cancels theirs; to make your change, speak to {who}, then start it again."
        )));
    }
    let review = &staged["review"];
    let refill = staged["kind"].as_str() == Some("refill");
    let mut compare = Vec::new();
    let mut old_steps = Vec::new();
    let mut new_steps = Vec::new();
    let old_rx = itb_clinic::model::read_prescription("prescription", &pump["prescription"]["prescription"]).ok();
    if !refill {
        let new_rx = itb_clinic::model::read_prescription("prescription", &staged["prescription"]).ok();
        let words = |rx: &Option<Prescription>| {
            rx.as_ref().map_or_else(|| "none".to_owned(), itb_dose::text::prescription_words)
        };
        compare.push(Compare {
            label: "Prescription".to_owned(),
            old: words(&old_rx),
            new: words(&new_rx),
            changed: old_rx != new_rx,
        });
        old_steps = old_rx.as_ref().map(steps_of).unwrap_or_default();
        new_steps = new_rx.as_ref().map(steps_of).unwrap_or_default();
    }
    let unchanged = !refill && compare.first().is_some_and(|c| !c.changed);
    compare.extend(figure_rows(review));
    let mut titration = Vec::new();
    if let Some(t) = review["titration"].as_object() {
        let verdict = t.get("verdict").and_then(Value::as_str).unwrap_or("");
        titration.push(Line::new("Titration check", view::titration_verdict(verdict)));
        let change = view::text(t.get("change_percent").unwrap_or(&Value::Null));
        titration.push(Line::new("Change in the daily dose", view::percent(&change)));
        if let Some(band) = t.get("band_percent").and_then(Value::as_array) {
            titration.push(Line::new(
                "Usual step",
                format!("{}-{}%", view::number(&band[0]), view::number(band.get(1).unwrap_or(&Value::Null))),
            ));
        }
        for reason in t.get("reasons").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
            titration.push(Line::new("Why", view::text(reason)));
        }
    }
    let warnings = review["warnings"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|w| {
            let tag = match w["severity"].as_str() {
                Some("danger") => Tag::new("red", "Danger"),
                Some("caution") | Some("warning") => Tag::new("orange", "Caution"),
                _ => Tag::new("blue", "Note"),
            };
            WarningRow {
                tag,
                sentence: view::text(&w["sentence"]),
                needs_override: w["needs_override"].as_bool().unwrap_or(false),
            }
        })
        .collect();
    let gap = staged["withdrawal"].as_object().map(|w| GapView {
        expected: view::ml_fine(w.get("volume_expected_ml").unwrap_or(&Value::Null)),
        withdrawn: view::ml_fine(w.get("volume_withdrawn_ml").unwrap_or(&Value::Null)),
        gap: view::ml_fine(w.get("gap_ml").unwrap_or(&Value::Null)),
        sentence: view::text(w.get("gap").unwrap_or(&Value::Null)),
        stops: w.get("gap_needs_review").and_then(Value::as_bool).unwrap_or(false),
    });
    let r = &staged["refill"];
    let details = if refill {
        vec![
            Line::new("Drug", format!("Baclofen {}", view::concentration(&r["concentration_micrograms_per_ml"]))),
            Line::new("Volume to add", view::ml(&r["volume_added_ml"])),
            Line::new("Batch (lot)", view::text(&r["lot"])),
            Line::new("Expires", view::date(&r["expires_on"])),
            Line::new("Where", if r["place"].as_str() == Some("home") { "Home visit" } else { "Clinic" }),
            Line::new("Nurse", viewer.user.username.clone()),
        ]
    } else {
        vec![Line::new("Reason for the change", view::text(&staged["reason"]))]
    };
    Ok(render_form(
        &ReviewPage {
            layout: viewer.layout(if refill {
                "Check the refill before it is sent to the pump"
            } else {
                "Check the change before it is sent to the pump"
            }),
            head,
            refill,
            hash: view::text(&staged["hash"]),
            expires: view::when(&staged["expires_at"]),
            compare,
            old_steps,
            new_steps,
            titration,
            warnings,
            needs_override: review["needs_override"].as_bool().unwrap_or(false),
            gap,
            details,
            checker: view::text(&r["second_checker"]),
            override_reason,
            problems: problems.clone(),
            unchanged,
        },
        &problems,
    ))
}

/// `GET /pumps/{id}/review`.
pub async fn review(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = page_id(&id)?;
    if !(viewer.may(Permission::Prescribe) || viewer.may(Permission::Refill)) {
        viewer.require(Permission::Prescribe)?;
    }
    review_page(&state, &viewer, id, Problems::none(), String::new()).await
}

/// `POST /pumps/{id}/commit`: the second checker's sign-in (for a refill), then the commit by
/// the hash shown; then what the pump answered.
pub async fn commit(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let id = page_id(&id)?;
    let fields = viewer.form(&body)?;
    if !(viewer.may(Permission::Prescribe) || viewer.may(Permission::Refill)) {
        viewer.require(Permission::Prescribe)?;
    }
    let override_reason = fields.text("override_reason", 1000).unwrap_or_default();
    let Some((staged, _)) = programming::staged_on(&state, id).await else {
        return review_page(&state, &viewer, id, Problems::none(), override_reason).await;
    };
    let mut problems = Problems::none();
    let refill = staged["kind"].as_str() == Some("refill");
    let password = fields.raw("second_checker_password").to_owned();
    if refill && password.is_empty() {
        let checker = view::text(&staged["refill"]["second_checker"]);
        problems.add("second_checker_password", format!("{checker} must enter their password to confirm the refill"));
    }
    let needs = staged["review"]["needs_override"].as_bool().unwrap_or(false);
    if needs && override_reason.is_empty() {
        problems.add(
            "override_reason",
            if staged["withdrawal"]["gap_needs_review"].as_bool().unwrap_or(false) {
                "Write your review of the refill gap and why the refill goes ahead"
            } else {
                "Write why this change is right for this patient: a warning above needs a reason"
            },
        );
    }
    if !problems.is_empty() {
        return review_page(&state, &viewer, id, problems, override_reason).await;
    }
    let input = CommitInput {
        hash: fields.get("hash").to_owned(),
        override_reason: needs.then_some(override_reason.clone()),
        second_checker_password: refill.then_some(password),
    };
    match programming::commit_on(&state, &viewer.caller(), id, input).await {
        Ok(done) => {
            let programming_id = done["programming_id"].as_i64().unwrap_or(0);
            Ok(Redirect::to(&format!("/pumps/{id}/done?programming={programming_id}")).into_response())
        }
        Err(e) => match problems_of(&e.0, |f| if f == "hash" { String::new() } else { f.to_owned() }) {
            Some(p) if !matches!(e.0, itb_clinic::error::ClinicError::Pump(_)) => {
                review_page(&state, &viewer, id, Problems(p), override_reason).await
            }
            _ => Err(PageError::from(e)),
        },
    }
}

/// `POST /pumps/{id}/discard`: cancels the staged change; the pump keeps what it runs.
pub async fn discard(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let id = page_id(&id)?;
    viewer.form(&body)?;
    if !(viewer.may(Permission::Prescribe) || viewer.may(Permission::Refill)) {
        viewer.require(Permission::Prescribe)?;
    }
    let (head, _) = heading_of(&state, &viewer, id).await?;
    programming::discard_staged(&state, id, viewer.user.id).await;
    Ok(Redirect::to(&format!("/patients/{}", head.patient_id)).into_response())
}

#[derive(Debug, Deserialize, Default)]
pub struct DoneQuery {
    programming: Option<String>,
}

#[derive(Template)]
#[template(path = "done.html")]
struct DonePage {
    layout: Layout,
    head: PumpHeading,
    committed: bool,
    recorded: Vec<Line>,
    refill: bool,
    dates: Vec<Line>,
    book_on: String,
    place: String,
    late_reason: String,
    due_on: String,
    due_text: String,
    problems: Problems,
    note: String,
}

/// `GET /pumps/{id}/done?programming=`: what the pump answered, as stored; after a refill,
/// the new dates and the booking of the next refill.
pub async fn done(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    q: Result<Query<DoneQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let id = page_id(&id)?;
    let wanted = q.ok().and_then(|q| q.0.programming).as_deref().and_then(|p| p.parse::<i64>().ok()).unwrap_or(0);
    let (head, pump) = heading_of(&state, &viewer, id).await?;
    let programmings = state.store.programmings(id, 20, 0).await?;
    let Some(p) = programmings.items.iter().find(|p| p["id"].as_i64() == Some(wanted)) else {
        return Err(PageError::NotFound("There is no such programming of this pump.".to_owned()));
    };
    let today = itb_clinic::store::record::service_date(state.clock.now());
    done_page(&viewer, head, &pump, p, Problems::none(), None, today)
}

/// The answer page, with the booking form's problems.
pub fn done_page(
    viewer: &Viewer,
    head: PumpHeading,
    pump: &Value,
    programming: &Value,
    problems: Problems,
    typed: Option<&super::appointments::Booking>,
    today: jiff::civil::Date,
) -> Result<Response, PageError> {
    let outcome = view::text(&programming["outcome"]);
    let committed = outcome.starts_with("committed");
    let answer = programming["answer"]["message"]
        .as_str()
        .or_else(|| programming["answer"]["error"].as_str())
        .unwrap_or("")
        .to_owned();
    let refill = programming["kind"].as_str() == Some("refill");
    let outcome_words = match outcome.as_str() {
        "committed" => "Sent to the pump, which confirmed it.",
        "committed (reconciled by interrogation)" => {
            "The link dropped during the change; interrogating the pump afterwards showed it took the change."
        }
        "not committed (reconciled by interrogation)" => {
            "The link dropped during the change; interrogating the pump afterwards showed it did not take it."
        }
        _ => "The pump's answer is not known.",
    };
    let mut recorded = vec![Line::new("What happened", outcome_words)];
    if !answer.is_empty() {
        recorded.push(Line::new("The pump answered", crate::form::sentence(&answer)));
    }
    if let Some(reason) = programming["answer"]["override_reason"].as_str() {
        recorded.push(Line::new(if refill { "Your review and reason" } else { "Your reason" }, reason.to_owned()));
    }
    if refill {
        recorded.push(Line::new(
            "Second checker",
            if programming["answer"]["second_checker_signed_in"].as_bool().unwrap_or(false) {
                "Confirmed with their own sign-in"
            } else {
                "Named by the nurse (not confirmed by their own sign-in)"
            },
        ));
    }
    recorded.push(Line::new(
        "Recorded",
        format!("{} by {}", view::when(&programming["at"]), view::text(&programming["by"])),
    ));
    let r = &pump["refill"];
    let dates = vec![
        Line::new("Next refill due", view::date(&r["refill_due_on"])),
        Line::new("Low-reservoir alarm expected", view::when_or(&r["low_reservoir_alarm_at"], "None expected")),
        Line::new("Drug expires in the pump", view::date(&r["drug_expires_at"])),
        Line::new("Prescription", view::prescription(&pump["prescription"]["prescription"])),
    ];
    let due_on = view::text(&r["refill_due_on"]);
    let suggested = due_on
        .parse::<jiff::civil::Date>()
        .ok()
        .map(|d| itb_clinic::rules::worklist::suggested_booking(d, today).to_string())
        .unwrap_or_default();
    Ok(render_form(
        &DonePage {
            layout: viewer.layout(match (committed, refill) {
                (true, true) => "The pump is refilled",
                (true, false) => "The pump accepted the change",
                (false, true) => "The pump did not take the refill",
                (false, false) => "The pump did not take the change",
            }),
            head,
            committed,
            recorded,
            refill,
            dates,
            book_on: typed.map_or(suggested, |b| b.on.clone()),
            place: typed.map_or_else(|| "clinic".to_owned(), |b| b.place.clone()),
            late_reason: typed.map(|b| b.late_reason.clone()).unwrap_or_default(),
            due_text: view::date_text(&due_on),
            due_on,
            problems: problems.clone(),
            note: typed.map(|b| b.note.clone()).unwrap_or_default(),
        },
        &problems,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_editor_shows_the_exact_values_the_pump_runs() {
        let rx = json!({"mode": "periodic_bolus", "periodic": {"bolus_dose": "40.5 micrograms", "bolus_duration": "90 s",
            "interval": "24 h", "first_bolus_at": "02:00", "basal": "120 micrograms/day"},
            "ptm": {"bolus_dose": "25 micrograms", "bolus_duration": "10 min", "lockout": "3 h", "max_boluses_per_day": 4}});
        let e = Editor::from_record(&rx);
        assert_eq!(e.mode, "periodic_bolus");
        assert_eq!(
            (
                e.bolus_dose.as_str(),
                e.bolus_duration.as_str(),
                e.interval.as_str(),
                e.first_bolus_at.as_str(),
                e.basal.as_str()
            ),
            ("40.5", "1.5", "1440", "02:00", "120")
        );
        assert_eq!(
            (e.ptm, e.ptm_dose.as_str(), e.ptm_duration.as_str(), e.ptm_lockout.as_str(), e.ptm_max.as_str()),
            (true, "25", "10", "180", "4")
        );
        // What the editor reads back is what it was given.
        let back = e.prescription().expect("reads back");
        assert_eq!(back, itb_clinic::model::read_prescription("p", &rx).expect("reads"));
        let weekly = Editor::from_record(&json!({"mode": "flex", "flex": {
            "monday": [{"start": "00:00", "rate": "300 micrograms/day"}, {"start": "08:00", "rate": "420.25 micrograms/day"}],
            "tuesday": [{"start": "00:00", "rate": "300 micrograms/day"}], "wednesday": [{"start": "00:00", "rate": "300 micrograms/day"}],
            "thursday": [{"start": "00:00", "rate": "300 micrograms/day"}], "friday": [{"start": "00:00", "rate": "300 micrograms/day"}],
            "saturday": [{"start": "00:00", "rate": "300 micrograms/day"}], "sunday": [{"start": "00:00", "rate": "300 micrograms/day"}]}}));
        assert!(weekly.weekly);
        assert_eq!(
            weekly.steps.iter().map(|s| (s.n, s.start.as_str(), s.rate.as_str())).collect::<Vec<_>>(),
            vec![(1, "00:00", "300"), (2, "08:00", "420.25")]
        );
    }
}
