//! The record's workflows: patients, pumps, prescriptions, refills, interrogations, battery
//! estimates, paired keys, appointments and settings. Each write checks its rules, writes the
//! change, recomputes the refill-due date it moves and appends its audit entry, in one
//! transaction.

use itb_dose::calc::bridge::bridge;
use itb_dose::calc::refill::expected_reservoir;
use itb_dose::calc::titrate::{DoseHistoryEvent, Origin, delivery_off, last_increase};
use itb_dose::review::{ChangeKind, OverrideReason, Patient, PumpSide, RefillPolicy, ReviewInputs, review};
use itb_dose::withdrawal_risk::{SpinalLevel, high_risk_reason};
use itb_dose::{Baclofen, Concentration, DeviceProfile, DoseRate, Duration, Prescription, Stability, Volume};
use jiff::Timestamp;
use jiff::civil::Date;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::AnyConnection;

use super::users::User;
use super::{Store, WriteTx, int, int_opt, signed, text, text_opt, unsigned};
use crate::error::{ClinicError, Problems, invalid};
use crate::model::{
    Listed, instant, instant_ms, micrograms, micrograms_per_ml, ml, prescription_json, read_date, read_instant,
    read_kg, read_micrograms_per_ml, read_ml, read_prescription, review_json, short, stored_prescription,
};
use crate::rules::appointments::{self, Kind, State};
use crate::rules::nhs::NhsNumber;
use crate::rules::refill::{RefillFacts, check as check_refill};
use crate::rules::worklist::{Reference, refill_due};

/// How far in the future a clinical event may be dated (clocks differ a little).
pub const FUTURE_SLACK: jiff::SignedDuration = jiff::SignedDuration::from_mins(5);
/// The stages of the pathway a patient can be at.
pub const STAGES: [&str; 6] = ["assessment", "screening", "titration", "maintenance", "explanted", "discharged"];

/// The service's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Settings {
    /// Days before the earlier limit that the service wants the refill done (default 0).
    pub margin_days: u16,
    /// How long drug may stay in the reservoir (default the manufacturer's 180).
    pub stability_days: u16,
}

impl Default for Settings {
    fn default() -> Self {
        Self { margin_days: 0, stability_days: Stability::MANUFACTURER_DAYS }
    }
}

impl Settings {
    /// The refill policy these settings give.
    pub fn policy(&self) -> RefillPolicy {
        RefillPolicy {
            zone: itb_dose::text::service_zone(),
            stability: Stability::days(u64::from(self.stability_days)).unwrap_or_default(),
            margin_days: self.margin_days,
        }
    }
}

/// The service's date of an instant.
pub fn service_date(at: Timestamp) -> Date {
    itb_dose::text::service_zone().to_datetime(at).date()
}

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn not_future(field: &str, at: Timestamp, now: Timestamp) -> Result<(), ClinicError> {
    if at > now.checked_add(FUTURE_SLACK).unwrap_or(now) {
        return Err(invalid(field, format!("{} is in the future: give when it happened", person_time(at))));
    }
    Ok(())
}

/// A patient as given at registration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatientInput {
    /// Ten digits with a valid check digit.
    pub nhs_number: String,
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// `YYYY-MM-DD`.
    pub date_of_birth: String,
    /// `spinal` or `cerebral`.
    pub origin: String,
    /// Where spinal: the level of injury (`T6`).
    pub injury_level: Option<String>,
    /// Weight in kg (to the gram).
    pub weight_kg: Option<Value>,
    /// The GP practice.
    pub gp_practice: Option<String>,
    /// Contacts: name, relationship, phone.
    pub contacts: Option<Vec<Contact>>,
    /// Communication needs (interpreter, hearing, sight, capacity).
    pub communication_needs: Option<String>,
    /// Where on the pathway (default `assessment`).
    pub stage: Option<String>,
}

/// A contact of a patient.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// Name.
    pub name: String,
    /// Relationship (carer, spouse, district nurse).
    pub relationship: Option<String>,
    /// Telephone.
    pub phone: Option<String>,
}

/// Changes to a patient's details; absent fields stay as they are.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatientUpdate {
    /// Where spinal: the level of injury.
    pub injury_level: Option<String>,
    /// Weight in kg.
    pub weight_kg: Option<Value>,
    /// The GP practice.
    pub gp_practice: Option<String>,
    /// Contacts (replaces the list).
    pub contacts: Option<Vec<Contact>>,
    /// Communication needs.
    pub communication_needs: Option<String>,
    /// Stage of the pathway.
    pub stage: Option<String>,
    /// Why (kept in the audit log).
    pub reason: Option<String>,
}

fn bounded(problems: &mut Problems, field: &str, value: &str, max: usize, required: bool) -> String {
    let value = value.trim();
    if required && value.is_empty() {
        problems.add(field, "this is required");
    } else if value.chars().count() > max {
        problems.add(field, format!("at most {max} characters"));
    }
    value.to_owned()
}

fn check_contacts(problems: &mut Problems, contacts: &[Contact]) {
    if contacts.len() > 10 {
        problems.add("contacts", "at most 10 contacts");
    }
    for (i, c) in contacts.iter().enumerate() {
        bounded(problems, &format!("contacts[{i}].name"), &c.name, 100, true);
        bounded(problems, &format!("contacts[{i}].relationship"), c.relationship.as_deref().unwrap_or(""), 60, false);
        bounded(problems, &format!("contacts[{i}].phone"), c.phone.as_deref().unwrap_or(""), 40, false);
    }
}

fn read_level(problems: &mut Problems, origin: &str, level: Option<&str>) -> Option<SpinalLevel> {
    let level = level.map(str::trim).filter(|l| !l.is_empty())?;
    if origin != "spinal" {
        problems.add("injury_level", "a level of injury is recorded only where the origin is spinal");
        return None;
    }
    problems.take("injury_level", level.parse::<SpinalLevel>())
}

fn check_stage(problems: &mut Problems, stage: &str) {
    if !STAGES.contains(&stage) {
        problems.add("stage", format!("'{}' is not a stage; use one of {}", short(stage), STAGES.join(", ")));
    }
}

/// The pump's row as the record keeps it.
#[derive(Debug, Clone)]
pub struct PumpRow {
    /// Id.
    pub id: i64,
    /// The patient.
    pub patient_id: i64,
    /// The device profile's name.
    pub profile: String,
    /// Serial number.
    pub serial: String,
    /// Implant instant.
    pub implanted_at: Timestamp,
    /// Catheter length.
    pub catheter_cm: u32,
    /// Still implanted.
    pub implanted: bool,
    /// The low-reservoir alarm threshold.
    pub alarm_threshold: Volume,
    /// The reference's kind: implant, refill or interrogation.
    pub ref_kind: String,
    /// The reference instant.
    pub ref_at: Timestamp,
    /// The reservoir then, at worst (every allowed PTM bolus taken): for the refill date.
    pub ref_reservoir: Volume,
    /// The reservoir then as the record expects it (the mean day): for a refill's gap.
    pub ref_expected: Volume,
    /// The pump last reported a prescription other than the record's.
    pub prescription_differs: bool,
    /// The drug.
    pub concentration: Concentration,
    /// When it went in.
    pub filled_at: Timestamp,
    /// When the low-reservoir alarm sounded, as the reference reading said.
    pub ref_alarm_at: Option<Timestamp>,
    /// The prescription in force.
    pub prescription_id: Option<i64>,
}

fn pump_row(row: &sqlx::any::AnyRow) -> Result<PumpRow, ClinicError> {
    Ok(PumpRow {
        id: int(row, "id")?,
        patient_id: int(row, "patient_id")?,
        profile: text(row, "profile")?,
        serial: text(row, "serial")?,
        implanted_at: ts(int(row, "implanted_at_ms")?),
        catheter_cm: u32::try_from(int(row, "catheter_cm")?).unwrap_or(0),
        implanted: int(row, "implanted")? == 1,
        alarm_threshold: Volume::nl(unsigned(row, "alarm_threshold_nl")?),
        ref_kind: text(row, "ref_kind")?,
        ref_at: ts(int(row, "ref_at_ms")?),
        ref_reservoir: Volume::nl(unsigned(row, "ref_reservoir_nl")?),
        ref_expected: Volume::nl(unsigned(row, "ref_expected_nl")?),
        prescription_differs: int(row, "pump_prescription_differs")? == 1,
        concentration: Concentration::ng_per_ml(unsigned(row, "concentration_ng_per_ml")?),
        filled_at: ts(int(row, "filled_at_ms")?),
        ref_alarm_at: int_opt(row, "ref_alarm_at_ms")?.map(ts),
        prescription_id: int_opt(row, "prescription_id")?,
    })
}

impl PumpRow {
    /// The device profile.
    pub fn device(&self) -> Result<DeviceProfile, ClinicError> {
        DeviceProfile::built_in(&self.profile).map_err(|e| ClinicError::Internal(e.to_string()))
    }
}

async fn load_pump(conn: &mut AnyConnection, id: i64) -> Result<PumpRow, ClinicError> {
    let row = sqlx::query("SELECT * FROM pumps WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| ClinicError::NotFound(format!("there is no pump {id}")))?;
    pump_row(&row)
}

async fn load_prescription(conn: &mut AnyConnection, id: Option<i64>) -> Result<Option<Prescription>, ClinicError> {
    let Some(id) = id else { return Ok(None) };
    let row = sqlx::query("SELECT prescription FROM prescriptions WHERE id = $1").bind(id).fetch_one(conn).await?;
    stored_prescription(&text(&row, "prescription")?).map(Some)
}

async fn load_settings(conn: &mut AnyConnection) -> Result<Settings, ClinicError> {
    let rows = sqlx::query("SELECT key, value FROM settings").fetch_all(conn).await?;
    let mut settings = Settings::default();
    for row in rows {
        let value: u16 = text(&row, "value")?.parse().unwrap_or_default();
        match text(&row, "key")?.as_str() {
            "margin_days" => settings.margin_days = value,
            "stability_days" => settings.stability_days = value,
            _ => {}
        }
    }
    Ok(settings)
}

/// Recomputes and stores a pump's refill-due figures (in the caller's transaction).
pub async fn recompute_due(conn: &mut AnyConnection, pump_id: i64, policy: &RefillPolicy) -> Result<(), ClinicError> {
    let pump = load_pump(conn, pump_id).await?;
    let prescription = load_prescription(conn, pump.prescription_id).await?;
    let reference = Reference {
        at: pump.ref_at,
        reservoir: pump.ref_reservoir,
        concentration: pump.concentration,
        filled_at: pump.filled_at,
        alarm_threshold: pump.alarm_threshold,
        prescription,
        alarm_sounded_at: pump.ref_alarm_at,
    };
    let due = if pump.prescription_differs {
        Err("the pump runs a different prescription from the record's: record what it runs, or program the prescribed one, then interrogate".to_owned())
    } else {
        refill_due(&reference, policy)
    };
    let query = match due {
        Ok(due) => sqlx::query(
            "UPDATE pumps SET due_by_ms = $1, due_on = $2, alarm_at_ms = $3, expires_at_ms = $4, limited_by = $5, unknown_reason = NULL WHERE id = $6",
        )
        .bind(due.due_by.as_millisecond())
        .bind(due.due_on.to_string())
        .bind(due.alarm_at.map(|t| t.as_millisecond()))
        .bind(due.expires_at.as_millisecond())
        .bind(due.limited_by)
        .bind(pump_id),
        Err(reason) => sqlx::query(
            "UPDATE pumps SET due_by_ms = NULL, due_on = NULL, alarm_at_ms = NULL, expires_at_ms = NULL, limited_by = NULL, unknown_reason = $1 WHERE id = $2",
        )
        .bind(reason)
        .bind(pump_id),
    };
    query.execute(conn).await?;
    Ok(())
}

fn age_years(date_of_birth: &str, on: Date) -> Option<u32> {
    let born: Date = date_of_birth.parse().ok()?;
    let years = born.until(on).ok()?.total((jiff::Unit::Year, born)).ok()?;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (years >= 0.0).then(|| years.floor() as u32)
}

fn origin_of(text: &str) -> Option<Origin> {
    match text {
        "spinal" => Some(Origin::Spinal),
        "cerebral" => Some(Origin::Cerebral),
        _ => None,
    }
}

/// A prescription as given.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrescriptionInput {
    /// The prescription: the fields of a prescription file.
    pub prescription: Value,
    /// Why it changes.
    pub reason: String,
    /// When it takes effect (default now).
    pub at: Option<String>,
    /// Where the review has a dangerous warning: the written reason to go ahead.
    pub override_reason: Option<String>,
}

/// A pump as implanted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PumpInput {
    /// The device profile (`synchromed-ii-20`, `synchromed-ii-40`).
    pub profile: String,
    /// Serial number.
    pub serial: String,
    /// When it was implanted.
    pub implanted_at: String,
    /// Catheter length in cm.
    pub catheter_cm: u32,
    /// Where the catheter tip lies (`T10`).
    pub catheter_tip_level: Option<String>,
    /// The fill at implant, mL.
    pub fill_ml: Value,
    /// The drug, micrograms/mL.
    pub concentration_micrograms_per_ml: Value,
    /// The first prescription.
    pub prescription: Value,
    /// The low-reservoir alarm threshold (default the profile's).
    pub alarm_threshold_ml: Option<Value>,
    /// The pump this one replaces (explanted in the same change if still implanted).
    pub replaces_pump_id: Option<i64>,
}

/// A refill as recorded.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefillInput {
    /// When.
    pub at: String,
    /// Withdrawn, mL.
    pub volume_withdrawn_ml: Value,
    /// Added, mL.
    pub volume_added_ml: Value,
    /// The drug added.
    pub concentration_micrograms_per_ml: Value,
    /// Batch.
    pub lot: String,
    /// Expiry of the drug, `YYYY-MM-DD`.
    pub expires_on: String,
    /// The nurse's username.
    pub nurse: String,
    /// The second checker's username.
    pub second_checker: String,
    /// `clinic` (default) or `home`.
    pub place: Option<String>,
    /// The drug (only `baclofen`).
    pub drug: Option<String>,
}

/// An interrogation as received.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterrogationInput {
    /// When it was read.
    pub at: String,
    /// What the pump reported, stored as received.
    pub reported: Value,
}

/// An appointment to book.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppointmentInput {
    /// The patient.
    pub patient_id: i64,
    /// The pump, where it concerns one.
    pub pump_id: Option<i64>,
    /// The kind.
    pub kind: String,
    /// `requested` (default without a date) or `scheduled` (default with one).
    pub state: Option<String>,
    /// The date.
    pub on: Option<String>,
    /// `clinic` (default) or `home`.
    pub place: Option<String>,
    /// A note.
    pub note: Option<String>,
}

/// A change of an appointment's state.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppointmentChange {
    /// The new state.
    pub state: String,
    /// A new date (for `scheduled`).
    pub on: Option<String>,
    /// Why.
    pub reason: String,
}

fn reason_text(field: &str, reason: &str) -> Result<String, ClinicError> {
    let reason = reason.trim();
    if reason.chars().count() < 3 {
        return Err(invalid(field, "give the reason in words"));
    }
    if reason.chars().count() > 500 {
        return Err(invalid(field, "at most 500 characters"));
    }
    Ok(reason.to_owned())
}

fn place(field: &str, value: Option<&str>) -> Result<&'static str, ClinicError> {
    match value.unwrap_or("clinic") {
        "clinic" => Ok("clinic"),
        "home" => Ok("home"),
        other => Err(invalid(field, format!("'{}' is not a place; use clinic or home", short(other)))),
    }
}

impl Store {
    /// The service's settings.
    /// The service's settings (kept in memory once read; a change through this store
    /// replaces them; writes read them from the database in their own transaction).
    pub async fn settings(&self) -> Result<Settings, ClinicError> {
        if let Some(settings) = self.cached_settings() {
            return Ok(settings);
        }
        let mut conn = self.pool().acquire().await?;
        let settings = load_settings(&mut conn).await?;
        self.cache_settings(settings);
        Ok(settings)
    }

    /// Changes the settings and recomputes every implanted pump's dates, in one transaction.
    pub async fn set_settings(
        &self,
        actor: &User,
        settings: Settings,
        now: Timestamp,
    ) -> Result<Settings, ClinicError> {
        if settings.margin_days > 60 {
            return Err(invalid("margin_days", "give a margin from 0 to 60 days"));
        }
        if Stability::days(u64::from(settings.stability_days)).is_err() {
            return Err(invalid("stability_days", "give a stability from 1 to the manufacturer's 180 days"));
        }
        let mut tx = self.begin().await?;
        for (key, value) in [("margin_days", settings.margin_days), ("stability_days", settings.stability_days)] {
            sqlx::query("DELETE FROM settings WHERE key = $1").bind(key).execute(tx.conn()).await?;
            sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2)")
                .bind(key)
                .bind(value.to_string())
                .execute(tx.conn())
                .await?;
        }
        let ids: Vec<i64> = sqlx::query("SELECT id FROM pumps WHERE implanted = 1")
            .fetch_all(tx.conn())
            .await?
            .iter()
            .map(|r| int(r, "id"))
            .collect::<Result<_, _>>()?;
        let policy = settings.policy();
        for id in ids {
            recompute_due(tx.conn(), id, &policy).await?;
        }
        tx.audit(now, &actor.username, "settings.changed", "service", &json!(settings)).await?;
        tx.commit().await?;
        self.cache_settings(settings);
        Ok(settings)
    }

    /// Registers a patient.
    pub async fn create_patient(
        &self,
        actor: &User,
        input: PatientInput,
        now: Timestamp,
    ) -> Result<Value, ClinicError> {
        let mut problems = Problems::default();
        let nhs = problems.take("nhs_number", input.nhs_number.parse::<NhsNumber>());
        let given = bounded(&mut problems, "given_name", &input.given_name, 100, true);
        let family = bounded(&mut problems, "family_name", &input.family_name, 100, true);
        let born = problems.absorb(read_date("date_of_birth", &input.date_of_birth));
        if let Some(born) = born
            && born > service_date(now)
        {
            problems.add("date_of_birth", "the date of birth is in the future");
        }
        if !matches!(input.origin.as_str(), "spinal" | "cerebral") {
            problems.add("origin", format!("'{}' is not an origin; use spinal or cerebral", short(&input.origin)));
        }
        let level = read_level(&mut problems, &input.origin, input.injury_level.as_deref());
        let weight = match &input.weight_kg {
            Some(v) => problems.absorb(read_kg("weight_kg", v)),
            None => None,
        };
        if weight.is_some_and(|g| g == 0 || g > 400_000) {
            problems.add("weight_kg", "give the weight in kilograms, from 0.001 to 400");
        }
        let gp = bounded(&mut problems, "gp_practice", input.gp_practice.as_deref().unwrap_or(""), 200, false);
        let contacts = input.contacts.unwrap_or_default();
        check_contacts(&mut problems, &contacts);
        let needs = bounded(
            &mut problems,
            "communication_needs",
            input.communication_needs.as_deref().unwrap_or(""),
            500,
            false,
        );
        let stage = input.stage.unwrap_or_else(|| "assessment".to_owned());
        check_stage(&mut problems, &stage);
        problems.finish()?;
        let nhs = nhs.ok_or_else(|| ClinicError::Internal("a checked field was missing".to_owned()))?;
        let high_risk = high_risk_reason(level);
        let mut tx = self.begin().await?;
        if sqlx::query("SELECT id FROM patients WHERE nhs_number = $1")
            .bind(nhs.digits())
            .fetch_optional(tx.conn())
            .await?
            .is_some()
        {
            return Err(ClinicError::Conflict(format!(
                "a patient with NHS number {nhs} is already registered; open their record"
            )));
        }
        let row = sqlx::query(
            "INSERT INTO patients (nhs_number, given_name, family_name, date_of_birth, origin, injury_level, high_risk, high_risk_reason, weight_g, gp_practice, contacts, communication_needs, stage, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
        )
        .bind(nhs.digits())
        .bind(&given)
        .bind(&family)
        .bind(input.date_of_birth.trim())
        .bind(&input.origin)
        .bind(level.map(|l| l.to_string()))
        .bind(i64::from(high_risk.is_some()))
        .bind(high_risk.clone())
        .bind(weight.map(signed).transpose()?)
        .bind(&gp)
        .bind(serde_json::to_string(&contacts).unwrap_or_else(|_| "[]".to_owned()))
        .bind(&needs)
        .bind(&stage)
        .bind(now.as_millisecond())
        .fetch_one(tx.conn())
        .await?;
        let id = int(&row, "id")?;
        tx.audit(
            now,
            &actor.username,
            "patient.registered",
            &format!("patient/{id}"),
            &json!({"nhs_number": nhs.digits(), "high_risk": high_risk.is_some()}),
        )
        .await?;
        tx.commit().await?;
        self.patient(id, now).await
    }

    /// Changes a patient's details.
    pub async fn update_patient(
        &self,
        actor: &User,
        id: i64,
        update: PatientUpdate,
        now: Timestamp,
    ) -> Result<Value, ClinicError> {
        let current = sqlx::query("SELECT * FROM patients WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| ClinicError::NotFound(format!("there is no patient {id}")))?;
        let origin = text(&current, "origin")?;
        let mut problems = Problems::default();
        let level = match &update.injury_level {
            Some(l) => read_level(&mut problems, &origin, Some(l)).map(|l| l.to_string()),
            None => text_opt(&current, "injury_level")?,
        };
        let weight = match &update.weight_kg {
            Some(v) => problems.absorb(read_kg("weight_kg", v)).map(signed).transpose()?,
            None => int_opt(&current, "weight_g")?,
        };
        let gp = match &update.gp_practice {
            Some(g) => bounded(&mut problems, "gp_practice", g, 200, false),
            None => text(&current, "gp_practice")?,
        };
        let contacts = match &update.contacts {
            Some(c) => {
                check_contacts(&mut problems, c);
                serde_json::to_string(c).unwrap_or_else(|_| "[]".to_owned())
            }
            None => text(&current, "contacts")?,
        };
        let needs = match &update.communication_needs {
            Some(n) => bounded(&mut problems, "communication_needs", n, 500, false),
            None => text(&current, "communication_needs")?,
        };
        let stage = match &update.stage {
            Some(s) => {
                check_stage(&mut problems, s);
                s.clone()
            }
            None => text(&current, "stage")?,
        };
        problems.finish()?;
        let high_risk = high_risk_reason(level.as_deref().and_then(|l| l.parse().ok()));
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE patients SET injury_level = $1, high_risk = $2, high_risk_reason = $3, weight_g = $4, gp_practice = $5, contacts = $6, communication_needs = $7, stage = $8 WHERE id = $9")
            .bind(level.clone())
            .bind(i64::from(high_risk.is_some()))
            .bind(high_risk.clone())
            .bind(weight)
            .bind(gp)
            .bind(contacts)
            .bind(needs)
            .bind(stage.clone())
            .bind(id)
            .execute(tx.conn())
            .await?;
        sqlx::query("UPDATE pumps SET high_risk = $1 WHERE patient_id = $2")
            .bind(i64::from(high_risk.is_some()))
            .bind(id)
            .execute(tx.conn())
            .await?;
        tx.audit(
            now,
            &actor.username,
            "patient.updated",
            &format!("patient/{id}"),
            &json!({"injury_level": level, "high_risk": high_risk.is_some(), "stage": stage, "reason": update.reason}),
        )
        .await?;
        tx.commit().await?;
        self.patient(id, now).await
    }

    /// A patient's record: details and pumps.
    /// `now` is the service's clock, for what depends on the day (a replacement due).
    pub async fn patient(&self, id: i64, now: Timestamp) -> Result<Value, ClinicError> {
        let settings = self.settings().await?;
        let mut conn = self.pool().acquire().await?;
        let row = sqlx::query("SELECT * FROM patients WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| ClinicError::NotFound(format!("there is no patient {id}")))?;
        let pump_rows = sqlx::query("SELECT * FROM pumps WHERE patient_id = $1 ORDER BY implanted_at_ms DESC, id DESC")
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
        let mut pumps = Vec::with_capacity(pump_rows.len());
        for pump in &pump_rows {
            pumps.push(pump_view(&mut conn, pump, &settings, now).await?);
        }
        let mut view = patient_json(&row)?;
        view["pumps"] = Value::Array(pumps);
        Ok(view)
    }

    /// The name (`given family`) and NHS number of each patient of `ids` that exists, in one
    /// indexed read a page.
    pub async fn patient_names(
        &self,
        ids: &[i64],
    ) -> Result<std::collections::HashMap<i64, (String, String)>, ClinicError> {
        let mut names = std::collections::HashMap::new();
        for chunk in ids.chunks(500) {
            let list: Vec<String> = chunk.iter().map(i64::to_string).collect();
            let sql = format!(
                "SELECT id, given_name, family_name, nhs_number FROM patients WHERE id IN ({})",
                list.join(", ")
            );
            for row in sqlx::query(&sql).fetch_all(self.pool()).await? {
                let name = format!("{} {}", text(&row, "given_name")?, text(&row, "family_name")?);
                names.insert(int(&row, "id")?, (name, text(&row, "nhs_number")?));
            }
        }
        Ok(names)
    }

    /// The id of the patient a pump belongs to.
    pub async fn pump_patient(&self, pump_id: i64) -> Result<i64, ClinicError> {
        let row = sqlx::query("SELECT patient_id FROM pumps WHERE id = $1")
            .bind(pump_id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| ClinicError::NotFound(format!("there is no pump {pump_id}")))?;
        int(&row, "patient_id")
    }

    /// The id of the patient a refill belongs to.
    pub async fn refill_patient(&self, refill_id: i64) -> Result<i64, ClinicError> {
        let row = sqlx::query("SELECT pumps.patient_id AS patient_id FROM refills JOIN pumps ON pumps.id = refills.pump_id WHERE refills.id = $1")
            .bind(refill_id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| ClinicError::NotFound(format!("there is no refill {refill_id}")))?;
        int(&row, "patient_id")
    }

    /// The id of the patient an appointment belongs to.
    pub async fn appointment_patient(&self, id: i64) -> Result<i64, ClinicError> {
        let row = sqlx::query("SELECT patient_id FROM appointments WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| ClinicError::NotFound(format!("there is no appointment {id}")))?;
        int(&row, "patient_id")
    }

    /// A page of patients by family name; `q` matches the NHS number or a name.
    pub async fn patients(&self, q: Option<&str>, limit: i64, offset: i64) -> Result<Listed<Value>, ClinicError> {
        let pattern = q.map(|q| format!("%{}%", q.replace(' ', "").to_lowercase()));
        let (rows, total) = match &pattern {
            Some(p) => (
                sqlx::query("SELECT * FROM patients WHERE nhs_number LIKE $1 OR LOWER(family_name) LIKE $1 OR LOWER(given_name) LIKE $1 ORDER BY family_name, given_name, id LIMIT $2 OFFSET $3")
                    .bind(p).bind(limit).bind(offset).fetch_all(self.pool()).await?,
                sqlx::query("SELECT COUNT(*) AS n FROM patients WHERE nhs_number LIKE $1 OR LOWER(family_name) LIKE $1 OR LOWER(given_name) LIKE $1")
                    .bind(p).fetch_one(self.pool()).await?,
            ),
            None => (
                sqlx::query("SELECT * FROM patients ORDER BY family_name, given_name, id LIMIT $1 OFFSET $2")
                    .bind(limit).bind(offset).fetch_all(self.pool()).await?,
                sqlx::query("SELECT COUNT(*) AS n FROM patients").fetch_one(self.pool()).await?,
            ),
        };
        Ok(Listed {
            items: rows.iter().map(patient_json).collect::<Result<_, _>>()?,
            total: int(&total, "n")?,
            limit,
            offset,
        })
    }

    /// Patients found by an NHS number (all ten digits, spaces allowed) or by the start of the
    /// family name (as typed, or with a capital first letter), in name order: indexed reads at
    /// any size.
    pub async fn find_patients(&self, q: &str, limit: i64, offset: i64) -> Result<Listed<Value>, ClinicError> {
        let digits: String = q.chars().filter(|c| !c.is_whitespace()).collect();
        let (rows, total) = if digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit()) {
            (
                sqlx::query("SELECT * FROM patients WHERE nhs_number = $1 ORDER BY id LIMIT $2 OFFSET $3")
                    .bind(&digits)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(self.pool())
                    .await?,
                sqlx::query("SELECT COUNT(*) AS n FROM patients WHERE nhs_number = $1")
                    .bind(&digits)
                    .fetch_one(self.pool())
                    .await?,
            )
        } else {
            let typed: String = q.trim().chars().filter(|c| !c.is_control()).take(60).collect();
            let mut chars = typed.chars();
            let capital = chars
                .next()
                .map(|c| c.to_uppercase().collect::<String>() + &chars.as_str().to_lowercase())
                .unwrap_or_default();
            // [from, to) for a prefix: the prefix with its last character raised by one.
            let range = |prefix: &str| {
                let mut end: Vec<char> = prefix.chars().collect();
                if let Some(last) = end.last_mut() {
                    *last = char::from_u32(u32::from(*last) + 1).unwrap_or(char::MAX);
                }
                (prefix.to_owned(), end.into_iter().collect::<String>())
            };
            let (a, b) = (range(&typed), range(&capital));
            // Compared byte by byte on both databases (PostgreSQL's own collation may ignore
            // punctuation, which a prefix range cannot).
            let name = match self.backend() {
                super::Backend::Postgres => "family_name COLLATE \"C\"",
                super::Backend::Sqlite => "family_name",
            };
            let mut ranges = vec![a];
            if b != ranges[0] {
                ranges.push(b);
            }
            let clause = ranges
                .iter()
                .enumerate()
                .map(|(i, _)| format!("({name} >= ${} AND {name} < ${})", 2 * i + 1, 2 * i + 2))
                .collect::<Vec<_>>()
                .join(" OR ");
            let n = ranges.len() * 2;
            let page_sql = format!(
                "SELECT * FROM patients WHERE {clause} ORDER BY {name}, given_name, id LIMIT ${} OFFSET ${}",
                n + 1,
                n + 2
            );
            let count_sql = format!("SELECT COUNT(*) AS n FROM patients WHERE {clause}");
            let mut page = sqlx::query(&page_sql);
            let mut count = sqlx::query(&count_sql);
            for (from, to) in &ranges {
                page = page.bind(from).bind(to);
                count = count.bind(from).bind(to);
            }
            (page.bind(limit).bind(offset).fetch_all(self.pool()).await?, count.fetch_one(self.pool()).await?)
        };
        Ok(Listed {
            items: rows.iter().map(patient_json).collect::<Result<_, _>>()?,
            total: int(&total, "n")?,
            limit,
            offset,
        })
    }

    /// Records an implant: the pump, its first prescription, its refill-due date, its battery
    /// estimate, and the wound check and neurosurgical follow-up it calls for.
    pub async fn implant_pump(
        &self,
        actor: &User,
        patient_id: i64,
        input: PumpInput,
        now: Timestamp,
    ) -> Result<Value, ClinicError> {
        let mut problems = Problems::default();
        let profile = problems.take("profile", DeviceProfile::built_in(&input.profile));
        let serial = bounded(&mut problems, "serial", &input.serial, 40, true);
        let implanted_at = problems.absorb(read_instant("implanted_at", &input.implanted_at));
        if let Some(at) = implanted_at {
            problems.absorb(not_future("implanted_at", at, now));
        }
        if !(1..=200).contains(&input.catheter_cm) {
            problems.add("catheter_cm", "give the catheter length in centimetres, from 1 to 200");
        }
        let tip =
            bounded(&mut problems, "catheter_tip_level", input.catheter_tip_level.as_deref().unwrap_or(""), 10, false);
        if !tip.is_empty() {
            problems.take("catheter_tip_level", tip.parse::<SpinalLevel>());
        }
        let fill = problems.absorb(read_ml("fill_ml", &input.fill_ml));
        let concentration = problems
            .absorb(read_micrograms_per_ml("concentration_micrograms_per_ml", &input.concentration_micrograms_per_ml));
        if let Some(c) = concentration {
            problems.take("concentration_micrograms_per_ml", Baclofen::new(c));
        }
        let prescription = problems.absorb(read_prescription("prescription", &input.prescription));
        let threshold = match &input.alarm_threshold_ml {
            Some(v) => problems.absorb(read_ml("alarm_threshold_ml", v)),
            None => profile.as_ref().map(|p| p.reservoir.low_alarm_default.value),
        };
        if let (Some(profile), Some(fill)) = (&profile, fill) {
            if fill > profile.reservoir.capacity.value {
                problems.add(
                    "fill_ml",
                    format!(
                        "{} holds at most {}",
                        profile.name,
                        itb_dose::text::volume(profile.reservoir.capacity.value)
                    ),
                );
            }
            if let Some(t) = threshold
                && t > fill
            {
                problems
                    .add("alarm_threshold_ml", "the alarm threshold is above the fill; it must be at most the fill");
            }
        }
        problems.finish()?;
        let (Some(profile), Some(at), Some(fill), Some(concentration), Some(prescription), Some(threshold)) =
            (profile, implanted_at, fill, concentration, prescription, threshold)
        else {
            return Err(ClinicError::Internal("a checked field was missing".to_owned()));
        };
        let mut tx = self.begin().await?;
        let patient = sqlx::query("SELECT * FROM patients WHERE id = $1")
            .bind(patient_id)
            .fetch_optional(tx.conn())
            .await?
            .ok_or_else(|| ClinicError::NotFound(format!("there is no patient {patient_id}")))?;
        if sqlx::query("SELECT id FROM pumps WHERE serial = $1")
            .bind(&serial)
            .fetch_optional(tx.conn())
            .await?
            .is_some()
        {
            return Err(ClinicError::Conflict(format!("a pump with serial {serial} is already on record")));
        }
        let implanted_now: Vec<i64> = sqlx::query("SELECT id FROM pumps WHERE patient_id = $1 AND implanted = 1")
            .bind(patient_id)
            .fetch_all(tx.conn())
            .await?
            .iter()
            .map(|r| int(r, "id"))
            .collect::<Result<_, _>>()?;
        match input.replaces_pump_id {
            Some(old) if !implanted_now.contains(&old) => {
                if !implanted_now.is_empty() {
                    return Err(ClinicError::Conflict(format!(
                        "pump {old} is already explanted, and this patient has an implanted pump ({}): name that pump in replaces_pump_id, or record its explant first",
                        implanted_now.iter().map(|i| format!("pump {i}")).collect::<Vec<_>>().join(", ")
                    )));
                }
                let known = sqlx::query("SELECT id FROM pumps WHERE id = $1 AND patient_id = $2")
                    .bind(old)
                    .bind(patient_id)
                    .fetch_optional(tx.conn())
                    .await?;
                if known.is_none() {
                    return Err(invalid("replaces_pump_id", format!("pump {old} is not this patient's")));
                }
            }
            Some(old) => {
                sqlx::query("UPDATE pumps SET implanted = 0, explanted_at_ms = $1, explant_reason = $2 WHERE id = $3")
                    .bind(at.as_millisecond())
                    .bind("replaced")
                    .bind(old)
                    .execute(tx.conn())
                    .await?;
                close_open_appointments(&mut tx, old, actor.id, now, "the pump was replaced").await?;
                tx.audit(
                    now,
                    &actor.username,
                    "pump.explanted",
                    &format!("pump/{old}"),
                    &json!({"at": instant(at), "reason": "replaced"}),
                )
                .await?;
            }
            None if !implanted_now.is_empty() => {
                return Err(ClinicError::Conflict(format!(
                    "this patient already has an implanted pump ({}); record its explant first, or give replaces_pump_id",
                    implanted_now.iter().map(|i| format!("pump {i}")).collect::<Vec<_>>().join(", ")
                )));
            }
            None => {}
        }
        let high_risk = int(&patient, "high_risk")?;
        let row = sqlx::query(
            "INSERT INTO pumps (patient_id, profile, serial, implanted_at_ms, catheter_cm, catheter_tip_level, alarm_threshold_nl, implanted, replaces_pump_id, ref_kind, ref_at_ms, ref_reservoir_nl, ref_expected_nl, concentration_ng_per_ml, filled_at_ms, high_risk) VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, 'implant', $9, $10, $10, $11, $12, $13) RETURNING id",
        )
        .bind(patient_id)
        .bind(&profile.name)
        .bind(&serial)
        .bind(at.as_millisecond())
        .bind(i64::from(input.catheter_cm))
        .bind((!tip.is_empty()).then(|| tip.to_uppercase()))
        .bind(signed(threshold.as_nl())?)
        .bind(input.replaces_pump_id)
        .bind(at.as_millisecond())
        .bind(signed(fill.as_nl())?)
        .bind(signed(concentration.as_ng_per_ml())?)
        .bind(at.as_millisecond())
        .bind(high_risk)
        .fetch_one(tx.conn())
        .await?;
        let pump_id = int(&row, "id")?;
        let settings = load_settings(tx.conn()).await?;
        let policy = settings.policy();
        // The first prescription: nothing to compare it with; its review is kept.
        let side = PumpSide {
            prescription: None,
            concentration,
            reservoir: fill,
            alarm_threshold: threshold,
            filled_at: Some(at),
            delivering: false,
        };
        let new_side = PumpSide { prescription: Some(prescription.clone()), delivering: true, ..side.clone() };
        let first_review = review(&ReviewInputs {
            change: ChangeKind::Therapy,
            old: side,
            new: new_side,
            at,
            policy: policy.clone(),
            dead_volume: profile.fluid_path.dead_volume(input.catheter_cm).unwrap_or(Volume::ZERO),
            patient: patient_facts(&patient, at)?,
            last_increase: itb_dose::calc::titrate::LastIncrease::Known(None),
            off: itb_dose::calc::titrate::DeliveryOff::default(),
            gap: None,
        });
        let review_value = review_json(&first_review);
        let prescription_id =
            insert_prescription(&mut tx, pump_id, 1, &prescription, at, actor.id, "implant", &review_value, None, None)
                .await?;
        sqlx::query("UPDATE pumps SET prescription_id = $1, pump_prescription_differs = 0 WHERE id = $2")
            .bind(prescription_id)
            .bind(pump_id)
            .execute(tx.conn())
            .await?;
        recompute_due(tx.conn(), pump_id, &policy).await?;
        // The battery at implant, from the profile's model at the prescription's volume.
        let daily_volume = itb_dose::calc::refill::pump_volume_rate(
            prescription.worst_case_rate(),
            Baclofen::new(concentration).map_err(|e| invalid("concentration_micrograms_per_ml", e.to_string()))?,
        )
        .unwrap_or(itb_dose::VolumeRate::ZERO);
        let life = profile.battery_life_at(daily_volume);
        let eos = at.checked_add(life.to_signed()).ok().map(service_date);
        insert_battery(
            &mut tx,
            pump_id,
            at,
            Some(life),
            false,
            eos,
            "estimated at implant from the device profile and the prescription",
        )
        .await?;
        if int(&patient, "high_risk")? >= 0
            && matches!(text(&patient, "stage")?.as_str(), "assessment" | "screening" | "explanted")
        {
            sqlx::query("UPDATE patients SET stage = 'titration' WHERE id = $1")
                .bind(patient_id)
                .execute(tx.conn())
                .await?;
        }
        for (kind, on) in appointments::after_surgery(service_date(at)) {
            insert_appointment(
                &mut tx,
                patient_id,
                Some(pump_id),
                kind,
                State::Requested,
                Some(on),
                "clinic",
                "after surgery",
                actor.id,
                now,
            )
            .await?;
        }
        tx.audit(
            now,
            &actor.username,
            "pump.implanted",
            &format!("pump/{pump_id}"),
            &json!({
                "patient_id": patient_id, "serial": serial, "profile": profile.name, "implanted_at": instant(at),
                "fill_ml": ml(fill), "concentration_micrograms_per_ml": micrograms_per_ml(concentration),
                "prescription": prescription_json(&prescription), "replaces_pump_id": input.replaces_pump_id,
            }),
        )
        .await?;
        tx.commit().await?;
        self.pump(pump_id, now).await
    }

    /// Records an explant.
    pub async fn explant_pump(
        &self,
        actor: &User,
        pump_id: i64,
        at: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<Value, ClinicError> {
        let at = read_instant("at", at)?;
        not_future("at", at, now)?;
        let reason = reason_text("reason", reason)?;
        let mut tx = self.begin().await?;
        let pump = load_pump(tx.conn(), pump_id).await?;
        if !pump.implanted {
            return Err(ClinicError::Conflict(format!("pump {pump_id} is already explanted")));
        }
        if at < pump.implanted_at {
            return Err(invalid("at", "the explant is before the implant"));
        }
        sqlx::query("UPDATE pumps SET implanted = 0, explanted_at_ms = $1, explant_reason = $2 WHERE id = $3")
            .bind(at.as_millisecond())
            .bind(&reason)
            .bind(pump_id)
            .execute(tx.conn())
            .await?;
        close_open_appointments(&mut tx, pump_id, actor.id, now, "the pump was explanted").await?;
        tx.audit(
            now,
            &actor.username,
            "pump.explanted",
            &format!("pump/{pump_id}"),
            &json!({"at": instant(at), "reason": reason}),
        )
        .await?;
        tx.commit().await?;
        self.pump(pump_id, now).await
    }

    /// A pump: its details, drug, prescription in force, refill-due figures, keys and battery.
    /// `now` is the service's clock, for what depends on the day (a replacement due).
    pub async fn pump(&self, id: i64, now: Timestamp) -> Result<Value, ClinicError> {
        let settings = self.settings().await?;
        let mut conn = self.pool().acquire().await?;
        let row = sqlx::query("SELECT * FROM pumps WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| ClinicError::NotFound(format!("there is no pump {id}")))?;
        pump_view(&mut conn, &row, &settings, now).await
    }
    /// Records a battery estimate (from an interrogation or a clinician's reading).
    #[allow(clippy::too_many_arguments)]
    pub async fn add_battery_estimate(
        &self,
        actor: &User,
        pump_id: i64,
        at: Timestamp,
        remaining: Option<Duration>,
        eri: bool,
        eos_on: Option<Date>,
        now: Timestamp,
    ) -> Result<Value, ClinicError> {
        not_future("at", at, now)?;
        let mut tx = self.begin().await?;
        let pump = load_pump(tx.conn(), pump_id).await?;
        if !pump.implanted {
            return Err(ClinicError::Conflict(format!("pump {pump_id} is explanted")));
        }
        insert_battery(&mut tx, pump_id, at, remaining, eri, eos_on, "recorded by a clinician").await?;
        tx.audit(now, &actor.username, "battery.estimated", &format!("pump/{pump_id}"), &json!({"at": instant(at), "elective_replacement": eri, "end_of_service_on": eos_on.map(|d| d.to_string())})).await?;
        tx.commit().await?;
        self.pump(pump_id, now).await
    }

    /// Records a key paired with the pump (the clinic's programmer, a patient's therapy manager).
    pub async fn pair_key(
        &self,
        actor: &User,
        pump_id: i64,
        role: &str,
        public_key: &str,
        now: Timestamp,
    ) -> Result<Value, ClinicError> {
        if !matches!(role, "clinician" | "patient") {
            return Err(invalid(
                "role",
                "a paired key's role is clinician (a programmer) or patient (a therapy manager)",
            ));
        }
        let key = public_key.trim();
        if key.len() != 64 || !key.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(invalid("public_key", "give the public key as 64 hexadecimal characters"));
        }
        let mut tx = self.begin().await?;
        load_pump(tx.conn(), pump_id).await?;
        sqlx::query(
            "INSERT INTO pump_keys (pump_id, role, public_key, paired_at_ms, paired_by) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(pump_id)
        .bind(role)
        .bind(key.to_lowercase())
        .bind(now.as_millisecond())
        .bind(actor.id)
        .execute(tx.conn())
        .await?;
        tx.audit(
            now,
            &actor.username,
            "pump.key_paired",
            &format!("pump/{pump_id}"),
            &json!({"role": role, "public_key": key.to_lowercase()}),
        )
        .await?;
        tx.commit().await?;
        self.pump(pump_id, now).await
    }

    /// A pump's row and the prescription in force (for the fleet and programming).
    pub async fn pump_state(&self, pump_id: i64) -> Result<(PumpRow, Option<Prescription>), ClinicError> {
        let mut conn = self.pool().acquire().await?;
        let pump = load_pump(&mut conn, pump_id).await?;
        let prescription = load_prescription(&mut conn, pump.prescription_id).await?;
        Ok((pump, prescription))
    }

    /// Records a key the clinic itself paired with a pump (its programmer's), as `system`.
    pub async fn record_system_key(
        &self,
        pump_id: i64,
        role: &str,
        public_key: &str,
        now: Timestamp,
    ) -> Result<(), ClinicError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO pump_keys (pump_id, role, public_key, paired_at_ms, paired_by) VALUES ($1, $2, $3, $4, NULL)",
        )
        .bind(pump_id)
        .bind(role)
        .bind(public_key)
        .bind(now.as_millisecond())
        .execute(tx.conn())
        .await?;
        tx.audit(
            now,
            "system",
            "pump.key_paired",
            &format!("pump/{pump_id}"),
            &json!({"role": role, "public_key": public_key}),
        )
        .await?;
        tx.commit().await
    }

    /// Reviews a new prescription against the one in force (the rules of `itb-dose`), without
    /// recording it.
    pub async fn review_prescription(
        &self,
        pump_id: i64,
        prescription: &Prescription,
        at: Timestamp,
    ) -> Result<itb_dose::review::Review, ClinicError> {
        let mut conn = self.pool().acquire().await?;
        review_against_record(&mut conn, pump_id, prescription, at).await
    }

    /// Authorises a new prescription: reviewed old beside new; a dangerous warning needs a
    /// written override reason.
    pub async fn prescribe(
        &self,
        actor: &User,
        pump_id: i64,
        input: PrescriptionInput,
        now: Timestamp,
    ) -> Result<Value, ClinicError> {
        let mut problems = Problems::default();
        let prescription = problems.absorb(read_prescription("prescription", &input.prescription));
        let at = match &input.at {
            Some(at) => problems.absorb(read_instant("at", at)),
            None => Some(now),
        };
        if let Some(at) = at {
            problems.absorb(not_future("at", at, now));
        }
        let reason = problems.absorb(reason_text("reason", &input.reason));
        problems.finish()?;
        let (Some(prescription), Some(at), Some(reason)) = (prescription, at, reason) else {
            return Err(ClinicError::Internal("a checked field was missing".to_owned()));
        };
        let mut tx = self.begin().await?;
        let pump = load_pump(tx.conn(), pump_id).await?;
        if !pump.implanted {
            return Err(ClinicError::Conflict(format!("pump {pump_id} is explanted: it takes no prescription")));
        }
        let latest =
            sqlx::query("SELECT MAX(at_ms) AS at_ms, MAX(version) AS version FROM prescriptions WHERE pump_id = $1")
                .bind(pump_id)
                .fetch_one(tx.conn())
                .await?;
        if int_opt(&latest, "at_ms")?.is_some_and(|last| at.as_millisecond() < last) {
            return Err(invalid("at", "this is dated before the prescription in force; give the time it takes effect"));
        }
        let version = int_opt(&latest, "version")?.unwrap_or(0) + 1;
        let settings = load_settings(tx.conn()).await?;
        let checked = review_against_record(tx.conn(), pump_id, &prescription, at).await?;
        let review_value = review_json(&checked);
        let override_reason = match (&input.override_reason, checked.needs_override()) {
            (_, false) => None,
            (Some(reason), true) => {
                Some(OverrideReason::parse(reason).map_err(|e| invalid("override_reason", e.to_string()))?)
            }
            (None, true) => {
                let dangers: Vec<String> = checked.dangers().map(|w| w.sentence.clone()).collect();
                return Err(ClinicError::NeedsOverride { dangers: dangers.join(" "), review: review_value });
            }
        };
        let verdict = checked.titration.as_ref().map(|t| t.verdict.as_str());
        let id = insert_prescription(
            &mut tx,
            pump_id,
            version,
            &prescription,
            at,
            actor.id,
            &reason,
            &review_value,
            verdict,
            override_reason.as_ref().map(OverrideReason::as_str),
        )
        .await?;
        // The record's reservoir moves to `at` under the old prescription before the new one runs.
        move_reference_to(tx.conn(), &pump, at).await?;
        sqlx::query("UPDATE pumps SET prescription_id = $1, pump_prescription_differs = 0 WHERE id = $2")
            .bind(id)
            .bind(pump_id)
            .execute(tx.conn())
            .await?;
        recompute_due(tx.conn(), pump_id, &settings.policy()).await?;
        tx.audit(
            now,
            &actor.username,
            "prescription.authorised",
            &format!("pump/{pump_id}"),
            &json!({
                "version": version, "prescription": prescription_json(&prescription), "reason": reason,
                "verdict": verdict, "override_reason": override_reason.as_ref().map(OverrideReason::as_str),
                "warnings": review_value["warnings"],
            }),
        )
        .await?;
        tx.commit().await?;
        let row = sqlx::query("SELECT prescriptions.*, users.username AS authorised_by_username FROM prescriptions JOIN users ON users.id = prescriptions.authorised_by WHERE prescriptions.id = $1").bind(id).fetch_one(self.pool()).await?;
        prescription_view(&row)
    }

    /// A pump's prescriptions, newest first.
    pub async fn prescriptions(&self, pump_id: i64, limit: i64, offset: i64) -> Result<Listed<Value>, ClinicError> {
        self.pump_patient(pump_id).await?;
        let rows =
            sqlx::query("SELECT prescriptions.*, users.username AS authorised_by_username FROM prescriptions JOIN users ON users.id = prescriptions.authorised_by WHERE prescriptions.pump_id = $1 ORDER BY prescriptions.version DESC LIMIT $2 OFFSET $3")
                .bind(pump_id)
                .bind(limit)
                .bind(offset)
                .fetch_all(self.pool())
                .await?;
        let total = sqlx::query("SELECT COUNT(*) AS n FROM prescriptions WHERE pump_id = $1")
            .bind(pump_id)
            .fetch_one(self.pool())
            .await?;
        Ok(Listed {
            items: rows.iter().map(prescription_view).collect::<Result<_, _>>()?,
            total: int(&total, "n")?,
            limit,
            offset,
        })
    }

    /// Records a therapy the clinic programmed on the pump: the review the pump's programmer
    /// showed is the one kept.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_programmed_therapy(
        &self,
        actor: &User,
        pump_id: i64,
        prescription: &Prescription,
        at: Timestamp,
        reason: &str,
        review_value: &Value,
        verdict: Option<&str>,
        override_reason: Option<&str>,
    ) -> Result<Value, ClinicError> {
        let mut tx = self.begin().await?;
        let pump = load_pump(tx.conn(), pump_id).await?;
        let latest = sqlx::query("SELECT MAX(version) AS version FROM prescriptions WHERE pump_id = $1")
            .bind(pump_id)
            .fetch_one(tx.conn())
            .await?;
        let version = int_opt(&latest, "version")?.unwrap_or(0) + 1;
        let id = insert_prescription(
            &mut tx,
            pump_id,
            version,
            prescription,
            at,
            actor.id,
            reason,
            review_value,
            verdict,
            override_reason,
        )
        .await?;
        move_reference_to(tx.conn(), &pump, at).await?;
        sqlx::query("UPDATE pumps SET prescription_id = $1, pump_prescription_differs = 0 WHERE id = $2")
            .bind(id)
            .bind(pump_id)
            .execute(tx.conn())
            .await?;
        let settings = load_settings(tx.conn()).await?;
        recompute_due(tx.conn(), pump_id, &settings.policy()).await?;
        tx.audit(
            at,
            &actor.username,
            "prescription.programmed",
            &format!("pump/{pump_id}"),
            &json!({
                "version": version, "prescription": prescription_json(prescription), "reason": reason,
                "verdict": verdict, "override_reason": override_reason, "warnings": review_value["warnings"],
            }),
        )
        .await?;
        tx.commit().await?;
        let row = sqlx::query("SELECT prescriptions.*, users.username AS authorised_by_username FROM prescriptions JOIN users ON users.id = prescriptions.authorised_by WHERE prescriptions.id = $1").bind(id).fetch_one(self.pool()).await?;
        prescription_view(&row)
    }

    /// Records a programming: the review shown, its hash, and the pump's answer.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_programming(
        &self,
        actor: &User,
        pump_id: i64,
        kind: &str,
        review_value: &Value,
        hash: &str,
        answer: &Value,
        outcome: &str,
        now: Timestamp,
    ) -> Result<i64, ClinicError> {
        let mut tx = self.begin().await?;
        let row = sqlx::query("INSERT INTO programmings (pump_id, at_ms, kind, review, hash, answer, outcome, by_user) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id")
            .bind(pump_id).bind(now.as_millisecond()).bind(kind).bind(review_value.to_string()).bind(hash).bind(answer.to_string()).bind(outcome).bind(actor.id)
            .fetch_one(tx.conn()).await?;
        let id = int(&row, "id")?;
        tx.audit(
            now,
            &actor.username,
            "pump.programmed",
            &format!("pump/{pump_id}"),
            &json!({"programming_id": id, "kind": kind, "hash": hash, "outcome": outcome}),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// A pump's programmings, newest first.
    pub async fn programmings(&self, pump_id: i64, limit: i64, offset: i64) -> Result<Listed<Value>, ClinicError> {
        self.pump_patient(pump_id).await?;
        let rows = sqlx::query("SELECT programmings.*, users.username AS username FROM programmings JOIN users ON users.id = programmings.by_user WHERE pump_id = $1 ORDER BY programmings.id DESC LIMIT $2 OFFSET $3")
            .bind(pump_id).bind(limit).bind(offset).fetch_all(self.pool()).await?;
        let total = sqlx::query("SELECT COUNT(*) AS n FROM programmings WHERE pump_id = $1")
            .bind(pump_id)
            .fetch_one(self.pool())
            .await?;
        let items = rows.iter().map(|r| Ok(json!({
            "id": int(r, "id")?, "pump_id": pump_id, "at": instant_ms(int(r, "at_ms")?), "kind": text(r, "kind")?,
            "review": serde_json::from_str::<Value>(&text(r, "review")?).unwrap_or(Value::Null), "hash": text(r, "hash")?,
            "answer": serde_json::from_str::<Value>(&text(r, "answer")?).unwrap_or(Value::Null), "outcome": text(r, "outcome")?,
            "by": text(r, "username")?,
        }))).collect::<Result<_, ClinicError>>()?;
        Ok(Listed { items, total: int(&total, "n")?, limit, offset })
    }

    /// Records a refill: the gap (over the device's threshold: held for review and the pump
    /// flagged), the new drug, the new alarm and refill-due dates, two signers.
    pub async fn record_refill(
        &self,
        actor: &User,
        pump_id: i64,
        input: RefillInput,
        now: Timestamp,
    ) -> Result<Value, ClinicError> {
        self.record_refill_expecting(actor, pump_id, input, None, now).await
    }

    /// Records a refill; `pump_expected` is the pump's own estimate when the clinic withdrew
    /// through the programmer (otherwise the record's).
    pub async fn record_refill_expecting(
        &self,
        actor: &User,
        pump_id: i64,
        input: RefillInput,
        pump_expected: Option<Volume>,
        now: Timestamp,
    ) -> Result<Value, ClinicError> {
        let mut problems = Problems::default();
        let at = problems.absorb(read_instant("at", &input.at));
        if let Some(at) = at {
            problems.absorb(not_future("at", at, now));
        }
        let withdrawn = problems.absorb(read_ml("volume_withdrawn_ml", &input.volume_withdrawn_ml));
        let added = problems.absorb(read_ml("volume_added_ml", &input.volume_added_ml));
        let concentration = problems
            .absorb(read_micrograms_per_ml("concentration_micrograms_per_ml", &input.concentration_micrograms_per_ml));
        let lot = bounded(&mut problems, "lot", &input.lot, 40, true);
        let expires_on = problems.absorb(read_date("expires_on", &input.expires_on));
        let place = problems.absorb(place("place", input.place.as_deref()));
        if input.drug.as_deref().is_some_and(|d| d != "baclofen") {
            problems.add("drug", "only baclofen is given by this service's pumps");
        }
        let nurse = self.user_named(input.nurse.trim()).await?;
        let checker = self.user_named(input.second_checker.trim()).await?;
        if nurse.is_none() {
            problems.add("nurse", format!("there is no user '{}'", short(&input.nurse)));
        }
        if checker.is_none() {
            problems.add("second_checker", format!("there is no user '{}'", short(&input.second_checker)));
        }
        if let Some(n) = &nurse
            && !crate::rules::access::allows(n.role, crate::rules::access::Permission::Refill)
        {
            problems.add("nurse", format!("{} is a {}, who does not refill pumps", n.username, n.role.describe()));
        }
        if let (Some(n), Some(c)) = (&nurse, &checker)
            && actor.id != n.id
            && actor.id != c.id
        {
            problems.add("nurse", "the person recording a refill signs it: as the nurse or as the second checker");
        }
        problems.finish()?;
        let (
            Some(at),
            Some(withdrawn),
            Some(added),
            Some(concentration),
            Some(expires_on),
            Some(place),
            Some(nurse),
            Some(checker),
        ) = (at, withdrawn, added, concentration, expires_on, place, nurse, checker)
        else {
            return Err(ClinicError::Internal("a checked field was missing".to_owned()));
        };
        let mut tx = self.begin().await?;
        let pump = load_pump(tx.conn(), pump_id).await?;
        if !pump.implanted {
            return Err(ClinicError::Conflict(format!("pump {pump_id} is explanted: it cannot be refilled")));
        }
        let last_refill = sqlx::query("SELECT MAX(at_ms) AS at_ms FROM refills WHERE pump_id = $1")
            .bind(pump_id)
            .fetch_one(tx.conn())
            .await?;
        let not_after = int_opt(&last_refill, "at_ms")?
            .unwrap_or(pump.implanted_at.as_millisecond())
            .max(pump.implanted_at.as_millisecond());
        if at.as_millisecond() <= not_after {
            return Err(invalid(
                "at",
                format!(
                    "the refill must be after the last fill ({}); check the date and time",
                    person_time(ts(not_after))
                ),
            ));
        }
        if at < pump.ref_at {
            return Err(invalid(
                "at",
                format!(
                    "a later {} is on record ({}): a refill cannot be dated before it; check the date and time",
                    match pump.ref_kind.as_str() {
                        "interrogation" => "reading of the pump",
                        "refill" => "refill",
                        _ => "change",
                    },
                    person_time(pump.ref_at)
                ),
            ));
        }
        let device = pump.device()?;
        let prescription = load_prescription(tx.conn(), pump.prescription_id).await?;
        let expected = pump_expected.unwrap_or_else(|| expected_now(&pump, prescription.as_ref(), at));
        let mut problems = Problems::default();
        let gap = check_refill(
            &RefillFacts {
                profile: &device,
                on: service_date(at),
                expected,
                withdrawn,
                added,
                concentration,
                expires_on,
                nurse: nurse.id,
                second_checker: checker.id,
                second_checker_clinical: checker.role.is_clinical(),
            },
            &mut problems,
        );
        problems.finish()?;
        let gap = gap.ok_or_else(|| ClinicError::Internal("no gap".to_owned()))?;
        let bridge_plan = if concentration == pump.concentration {
            None
        } else {
            let dose = prescription
                .as_ref()
                .map(|p| DoseRate::ng_per_day(p.daily_totals().max.as_ng()))
                .unwrap_or(DoseRate::ZERO);
            let old = Baclofen::new(pump.concentration).ok();
            let new = Baclofen::new(concentration).ok();
            match (old, new) {
                (Some(old), Some(new)) => {
                    bridge(device.fluid_path.dead_volume(pump.catheter_cm).unwrap_or(Volume::ZERO), old, new, dose)
                        .ok()
                        .map(|plan| {
                            json!({
                                "volume_ml": ml(plan.volume),
                                "rate_ml_per_day": ml(Volume::nl(plan.rate.as_nl_per_day())),
                                "duration": itb_dose::text::duration(plan.duration),
                                "duration_minutes": plan.duration.as_ms() / 60_000,
                                "rate_after_ml_per_day": ml(Volume::nl(plan.rate_after.as_nl_per_day())),
                            })
                        })
                }
                _ => None,
            }
        };
        sqlx::query("UPDATE pumps SET ref_kind = 'refill', ref_at_ms = $1, ref_reservoir_nl = $2, ref_expected_nl = $2, concentration_ng_per_ml = $3, filled_at_ms = $1, ref_alarm_at_ms = NULL WHERE id = $4")
            .bind(at.as_millisecond())
            .bind(signed(added.as_nl())?)
            .bind(signed(concentration.as_ng_per_ml())?)
            .bind(pump_id)
            .execute(tx.conn())
            .await?;
        let settings = load_settings(tx.conn()).await?;
        recompute_due(tx.conn(), pump_id, &settings.policy()).await?;
        let due = sqlx::query("SELECT due_by_ms, due_on, alarm_at_ms, limited_by FROM pumps WHERE id = $1")
            .bind(pump_id)
            .fetch_one(tx.conn())
            .await?;
        let needs_review = gap.stops_the_refill();
        if needs_review {
            sqlx::query("UPDATE pumps SET gap_review_pending = 1 WHERE id = $1")
                .bind(pump_id)
                .execute(tx.conn())
                .await?;
        }
        let row = sqlx::query(
            "INSERT INTO refills (pump_id, at_ms, expected_nl, withdrawn_nl, gap_nl, gap_direction, gap_limit_nl, gap_needs_review, drug, concentration_ng_per_ml, lot, expires_on, added_nl, bridge, alarm_at_ms, due_by_ms, due_on, limited_by, nurse_id, second_checker_id, place, recorded_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'baclofen', $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21) RETURNING id",
        )
        .bind(pump_id)
        .bind(at.as_millisecond())
        .bind(signed(expected.as_nl())?)
        .bind(signed(withdrawn.as_nl())?)
        .bind(signed(gap.gap.as_nl())?)
        .bind(gap.direction.map(|d| d.as_str()))
        .bind(signed(gap.limit.as_nl())?)
        .bind(i64::from(needs_review))
        .bind(signed(concentration.as_ng_per_ml())?)
        .bind(&lot)
        .bind(expires_on.to_string())
        .bind(signed(added.as_nl())?)
        .bind(bridge_plan.as_ref().map(Value::to_string))
        .bind(int_opt(&due, "alarm_at_ms")?)
        .bind(int_opt(&due, "due_by_ms")?)
        .bind(text_opt(&due, "due_on")?)
        .bind(text_opt(&due, "limited_by")?)
        .bind(nurse.id)
        .bind(checker.id)
        .bind(place)
        .bind(now.as_millisecond())
        .fetch_one(tx.conn())
        .await?;
        let id = int(&row, "id")?;
        // The booked refill this one fulfils.
        let open = sqlx::query("SELECT id FROM appointments WHERE pump_id = $1 AND kind = 'refill' AND state IN ('requested', 'scheduled', 'arrived') AND (on_date IS NULL OR on_date <= $2)")
            .bind(pump_id)
            .bind(service_date(at).to_string())
            .fetch_all(tx.conn())
            .await?;
        for appointment in open {
            let aid = int(&appointment, "id")?;
            sqlx::query("UPDATE appointments SET state = 'completed' WHERE id = $1")
                .bind(aid)
                .execute(tx.conn())
                .await?;
            sqlx::query("INSERT INTO appointment_events (appointment_id, state, on_date, at_ms, by_user, reason) VALUES ($1, 'completed', NULL, $2, $3, $4)")
                .bind(aid).bind(now.as_millisecond()).bind(actor.id).bind(format!("refill {id} recorded")).execute(tx.conn()).await?;
        }
        tx.audit(now, &actor.username, "refill.recorded", &format!("pump/{pump_id}"), &json!({
            "refill_id": id, "at": instant(at), "volume_expected_ml": ml(expected), "volume_withdrawn_ml": ml(withdrawn),
            "gap_ml": ml(gap.gap), "gap_needs_review": needs_review, "volume_added_ml": ml(added),
            "concentration_micrograms_per_ml": micrograms_per_ml(concentration), "lot": lot, "expires_on": expires_on.to_string(),
            "nurse": nurse.username, "second_checker": checker.username, "place": place,
            "refill_due_on": text_opt(&due, "due_on")?,
        })).await?;
        tx.commit().await?;
        self.refill(id).await
    }

    /// A refill.
    pub async fn refill(&self, id: i64) -> Result<Value, ClinicError> {
        let row = sqlx::query("SELECT refills.*, n.username AS nurse, c.username AS checker, r.username AS reviewer FROM refills JOIN users n ON n.id = refills.nurse_id JOIN users c ON c.id = refills.second_checker_id LEFT JOIN users r ON r.id = refills.reviewed_by WHERE refills.id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| ClinicError::NotFound(format!("there is no refill {id}")))?;
        refill_view(&row)
    }

    /// A pump's refills, newest first.
    pub async fn refills(&self, pump_id: i64, limit: i64, offset: i64) -> Result<Listed<Value>, ClinicError> {
        self.pump_patient(pump_id).await?;
        let rows = sqlx::query("SELECT refills.*, n.username AS nurse, c.username AS checker, r.username AS reviewer FROM refills JOIN users n ON n.id = refills.nurse_id JOIN users c ON c.id = refills.second_checker_id LEFT JOIN users r ON r.id = refills.reviewed_by WHERE refills.pump_id = $1 ORDER BY refills.at_ms DESC LIMIT $2 OFFSET $3")
            .bind(pump_id).bind(limit).bind(offset).fetch_all(self.pool()).await?;
        let total = sqlx::query("SELECT COUNT(*) AS n FROM refills WHERE pump_id = $1")
            .bind(pump_id)
            .fetch_one(self.pool())
            .await?;
        Ok(Listed {
            items: rows.iter().map(refill_view).collect::<Result<_, _>>()?,
            total: int(&total, "n")?,
            limit,
            offset,
        })
    }

    /// Records a clinician's review of a refill gap; the pump's flag clears when none is left.
    pub async fn review_refill_gap(
        &self,
        actor: &User,
        refill_id: i64,
        note: &str,
        now: Timestamp,
    ) -> Result<Value, ClinicError> {
        let note = reason_text("note", note)?;
        let mut tx = self.begin().await?;
        let row = sqlx::query("SELECT pump_id, gap_needs_review, reviewed_at_ms FROM refills WHERE id = $1")
            .bind(refill_id)
            .fetch_optional(tx.conn())
            .await?
            .ok_or_else(|| ClinicError::NotFound(format!("there is no refill {refill_id}")))?;
        if int(&row, "gap_needs_review")? == 0 {
            return Err(ClinicError::Conflict(format!("refill {refill_id} has no gap that needs review")));
        }
        if int_opt(&row, "reviewed_at_ms")?.is_some() {
            return Err(ClinicError::Conflict(format!("the gap of refill {refill_id} has already been reviewed")));
        }
        let pump_id = int(&row, "pump_id")?;
        sqlx::query("UPDATE refills SET reviewed_by = $1, reviewed_at_ms = $2, review_note = $3 WHERE id = $4")
            .bind(actor.id)
            .bind(now.as_millisecond())
            .bind(&note)
            .bind(refill_id)
            .execute(tx.conn())
            .await?;
        let left = sqlx::query(
            "SELECT COUNT(*) AS n FROM refills WHERE pump_id = $1 AND gap_needs_review = 1 AND reviewed_at_ms IS NULL",
        )
        .bind(pump_id)
        .fetch_one(tx.conn())
        .await?;
        sqlx::query("UPDATE pumps SET gap_review_pending = $1 WHERE id = $2")
            .bind(i64::from(int(&left, "n")? > 0))
            .bind(pump_id)
            .execute(tx.conn())
            .await?;
        tx.audit(
            now,
            &actor.username,
            "refill.gap_reviewed",
            &format!("pump/{pump_id}"),
            &json!({"refill_id": refill_id, "note": note}),
        )
        .await?;
        tx.commit().await?;
        self.refill(refill_id).await
    }

    /// Records an interrogation, stored as received; when it is the latest reading it becomes
    /// the record's reference for the reservoir (and its alarm threshold and battery are kept).
    pub async fn record_interrogation(
        &self,
        actor: &User,
        pump_id: i64,
        input: InterrogationInput,
        now: Timestamp,
    ) -> Result<Value, ClinicError> {
        let at = read_instant("at", &input.at)?;
        not_future("at", at, now)?;
        let raw = input.reported.to_string();
        if raw.len() > 64 * 1024 {
            return Err(invalid("reported", "an interrogation is at most 64 KiB of JSON"));
        }
        let reading = Reading::from_reported(&input.reported)?;
        let reading_prescription = match input.reported.get("prescription").filter(|v| !v.is_null()) {
            Some(value) => Some(read_prescription("reported.prescription", value)?),
            None => None,
        };
        let mut tx = self.begin().await?;
        let pump = load_pump(tx.conn(), pump_id).await?;
        if !pump.implanted {
            return Err(ClinicError::Conflict(format!("pump {pump_id} is explanted")));
        }
        if at < pump.implanted_at {
            return Err(invalid("at", "this interrogation is before the implant"));
        }
        let row = sqlx::query("INSERT INTO interrogations (pump_id, at_ms, reported, recorded_by, recorded_at_ms) VALUES ($1, $2, $3, $4, $5) RETURNING id")
            .bind(pump_id).bind(at.as_millisecond()).bind(&raw).bind(actor.id).bind(now.as_millisecond()).fetch_one(tx.conn()).await?;
        let id = int(&row, "id")?;
        // Strictly later than the reference: a reading at a fill's own instant is not newer.
        let latest = at > pump.ref_at;
        let in_force = load_prescription(tx.conn(), pump.prescription_id).await?;
        let differs =
            matches!((&reading_prescription, &in_force), (Some(reported), Some(recorded)) if reported != recorded);
        if latest {
            sqlx::query("UPDATE pumps SET ref_kind = 'interrogation', ref_at_ms = $1, ref_reservoir_nl = $2, ref_expected_nl = $2, concentration_ng_per_ml = $3, filled_at_ms = $4, alarm_threshold_nl = $5, ref_alarm_at_ms = $6, pump_prescription_differs = $7 WHERE id = $8")
                .bind(at.as_millisecond())
                .bind(signed(reading.reservoir.as_nl())?)
                .bind(signed(reading.concentration.unwrap_or(pump.concentration).as_ng_per_ml())?)
                .bind(reading.filled_at.unwrap_or(pump.filled_at).as_millisecond())
                .bind(signed(reading.alarm_threshold.unwrap_or(pump.alarm_threshold).as_nl())?)
                .bind(reading.low_reservoir_since.map(|t| t.as_millisecond()))
                .bind(i64::from(differs))
                .bind(pump_id)
                .execute(tx.conn())
                .await?;
            let settings = load_settings(tx.conn()).await?;
            recompute_due(tx.conn(), pump_id, &settings.policy()).await?;
            if reading.eri.is_some() || reading.battery_remaining.is_some() {
                let eos = reading.battery_remaining.and_then(|r| at.checked_add(r.to_signed()).ok()).map(service_date);
                insert_battery(
                    &mut tx,
                    pump_id,
                    at,
                    reading.battery_remaining,
                    reading.eri.unwrap_or(false),
                    eos,
                    "interrogation",
                )
                .await?;
            }
        }
        tx.audit(now, &actor.username, "pump.interrogated", &format!("pump/{pump_id}"), &json!({"interrogation_id": id, "at": instant(at), "latest": latest, "reservoir_ml": ml(reading.reservoir)})).await?;
        tx.commit().await?;
        Ok(
            json!({"id": id, "pump_id": pump_id, "at": instant(at), "reported": input.reported, "latest": latest, "pump": self.pump(pump_id, now).await?}),
        )
    }

    /// A pump's interrogations, newest first.
    pub async fn interrogations(&self, pump_id: i64, limit: i64, offset: i64) -> Result<Listed<Value>, ClinicError> {
        self.pump_patient(pump_id).await?;
        let rows = sqlx::query(
            "SELECT * FROM interrogations WHERE pump_id = $1 ORDER BY at_ms DESC, id DESC LIMIT $2 OFFSET $3",
        )
        .bind(pump_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(self.pool())
        .await?;
        let total = sqlx::query("SELECT COUNT(*) AS n FROM interrogations WHERE pump_id = $1")
            .bind(pump_id)
            .fetch_one(self.pool())
            .await?;
        let items = rows
            .iter()
            .map(|r| Ok(json!({"id": int(r, "id")?, "pump_id": pump_id, "at": instant_ms(int(r, "at_ms")?), "reported": serde_json::from_str::<Value>(&text(r, "reported")?).unwrap_or(Value::Null), "recorded_at": instant_ms(int(r, "recorded_at_ms")?)})))
            .collect::<Result<_, ClinicError>>()?;
        Ok(Listed { items, total: int(&total, "n")?, limit, offset })
    }

    /// Books an appointment.
    pub async fn book_appointment(
        &self,
        actor: &User,
        input: AppointmentInput,
        now: Timestamp,
    ) -> Result<Value, ClinicError> {
        let mut problems = Problems::default();
        let kind = problems.take("kind", Kind::parse(&input.kind));
        let on = match &input.on {
            Some(on) => problems.absorb(read_date("on", on)),
            None => None,
        };
        let state = match &input.state {
            Some(s) => problems.take("state", State::parse(s)),
            None => Some(if on.is_some() { State::Scheduled } else { State::Requested }),
        };
        if let Some(state) = state
            && !matches!(state, State::Requested | State::Scheduled)
        {
            problems.add("state", "a new appointment is requested or scheduled");
        }
        if state == Some(State::Scheduled) && on.is_none() {
            problems.add("on", "a scheduled appointment needs its date");
        }
        let place = problems.absorb(place("place", input.place.as_deref()));
        let note = bounded(&mut problems, "note", input.note.as_deref().unwrap_or(""), 500, false);
        problems.finish()?;
        let (Some(kind), Some(state), Some(place)) = (kind, state, place) else {
            return Err(ClinicError::Internal("a checked field was missing".to_owned()));
        };
        let mut tx = self.begin().await?;
        if sqlx::query("SELECT id FROM patients WHERE id = $1")
            .bind(input.patient_id)
            .fetch_optional(tx.conn())
            .await?
            .is_none()
        {
            return Err(invalid("patient_id", format!("there is no patient {}", input.patient_id)));
        }
        if let Some(pump_id) = input.pump_id {
            let pump = load_pump(tx.conn(), pump_id)
                .await
                .map_err(|_| invalid("pump_id", format!("there is no pump {pump_id}")))?;
            if pump.patient_id != input.patient_id {
                return Err(invalid("pump_id", format!("pump {pump_id} is not this patient's")));
            }
        } else if kind == Kind::Refill {
            return Err(invalid("pump_id", "a refill appointment names the pump"));
        }
        let id =
            insert_appointment(&mut tx, input.patient_id, input.pump_id, kind, state, on, place, &note, actor.id, now)
                .await?;
        tx.audit(now, &actor.username, "appointment.booked", &format!("patient/{}", input.patient_id), &json!({"appointment_id": id, "kind": kind.as_str(), "state": state.as_str(), "on": on.map(|d| d.to_string())})).await?;
        tx.commit().await?;
        self.appointment(id).await
    }

    /// Moves an appointment to another state (and date), with who and why.
    pub async fn change_appointment(
        &self,
        actor: &User,
        id: i64,
        change: AppointmentChange,
        now: Timestamp,
    ) -> Result<Value, ClinicError> {
        let to = State::parse(&change.state).map_err(|e| invalid("state", e))?;
        let on = change.on.as_deref().map(|on| read_date("on", on)).transpose()?;
        let reason = reason_text("reason", &change.reason)?;
        let mut tx = self.begin().await?;
        let row = sqlx::query("SELECT * FROM appointments WHERE id = $1")
            .bind(id)
            .fetch_optional(tx.conn())
            .await?
            .ok_or_else(|| ClinicError::NotFound(format!("there is no appointment {id}")))?;
        let from = State::parse(&text(&row, "state")?).map_err(ClinicError::Internal)?;
        let date = on.map(|d| d.to_string()).or(text_opt(&row, "on_date")?);
        appointments::transition(from, to, date.is_some()).map_err(|e| invalid("state", e))?;
        sqlx::query("UPDATE appointments SET state = $1, on_date = $2 WHERE id = $3")
            .bind(to.as_str())
            .bind(&date)
            .bind(id)
            .execute(tx.conn())
            .await?;
        sqlx::query("INSERT INTO appointment_events (appointment_id, state, on_date, at_ms, by_user, reason) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(id).bind(to.as_str()).bind(&date).bind(now.as_millisecond()).bind(actor.id).bind(&reason).execute(tx.conn()).await?;
        tx.audit(
            now,
            &actor.username,
            "appointment.changed",
            &format!("patient/{}", int(&row, "patient_id")?),
            &json!({"appointment_id": id, "from": from.as_str(), "to": to.as_str(), "on": date, "reason": reason}),
        )
        .await?;
        tx.commit().await?;
        self.appointment(id).await
    }

    /// An appointment with its history.
    pub async fn appointment(&self, id: i64) -> Result<Value, ClinicError> {
        let row = sqlx::query("SELECT * FROM appointments WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| ClinicError::NotFound(format!("there is no appointment {id}")))?;
        let events = sqlx::query("SELECT appointment_events.*, users.username AS username FROM appointment_events JOIN users ON users.id = appointment_events.by_user WHERE appointment_id = $1 ORDER BY appointment_events.id")
            .bind(id).fetch_all(self.pool()).await?;
        let mut view = appointment_view(&row)?;
        view["history"] = Value::Array(
            events
                .iter()
                .map(|e| Ok(json!({"state": text(e, "state")?, "on": text_opt(e, "on_date")?, "at": instant_ms(int(e, "at_ms")?), "by": text(e, "username")?, "reason": text(e, "reason")?})))
                .collect::<Result<_, ClinicError>>()?,
        );
        Ok(view)
    }

    /// Appointments on a day, or of a patient, by date.
    pub async fn appointments(
        &self,
        on: Option<Date>,
        patient_id: Option<i64>,
        limit: i64,
        offset: i64,
    ) -> Result<Listed<Value>, ClinicError> {
        let (rows, total) = match (on, patient_id) {
            (_, Some(p)) => (
                sqlx::query("SELECT * FROM appointments WHERE patient_id = $1 ORDER BY on_date IS NULL, on_date, id LIMIT $2 OFFSET $3").bind(p).bind(limit).bind(offset).fetch_all(self.pool()).await?,
                sqlx::query("SELECT COUNT(*) AS n FROM appointments WHERE patient_id = $1").bind(p).fetch_one(self.pool()).await?,
            ),
            (Some(day), None) => (
                sqlx::query("SELECT * FROM appointments WHERE on_date = $1 ORDER BY id LIMIT $2 OFFSET $3").bind(day.to_string()).bind(limit).bind(offset).fetch_all(self.pool()).await?,
                sqlx::query("SELECT COUNT(*) AS n FROM appointments WHERE on_date = $1").bind(day.to_string()).fetch_one(self.pool()).await?,
            ),
            (None, None) => (
                sqlx::query("SELECT * FROM appointments WHERE state IN ('requested', 'scheduled', 'arrived') ORDER BY on_date IS NULL, on_date, id LIMIT $1 OFFSET $2").bind(limit).bind(offset).fetch_all(self.pool()).await?,
                sqlx::query("SELECT COUNT(*) AS n FROM appointments WHERE state IN ('requested', 'scheduled', 'arrived')").fetch_one(self.pool()).await?,
            ),
        };
        Ok(Listed {
            items: rows.iter().map(appointment_view).collect::<Result<_, _>>()?,
            total: int(&total, "n")?,
            limit,
            offset,
        })
    }
}

/// A pump's view, read on one connection.
async fn pump_view(
    conn: &mut AnyConnection,
    row: &sqlx::any::AnyRow,
    settings: &Settings,
    now: Timestamp,
) -> Result<Value, ClinicError> {
    let pump = pump_row(row)?;
    let id = pump.id;
    let prescription = match pump.prescription_id {
        Some(pid) => {
            Some(sqlx::query("SELECT prescriptions.*, users.username AS authorised_by_username FROM prescriptions JOIN users ON users.id = prescriptions.authorised_by WHERE prescriptions.id = $1").bind(pid).fetch_one(&mut *conn).await?)
        }
        None => None,
    };
    let keys =
        sqlx::query("SELECT * FROM pump_keys WHERE pump_id = $1 ORDER BY id").bind(id).fetch_all(&mut *conn).await?;
    let battery =
        sqlx::query("SELECT * FROM battery_estimates WHERE pump_id = $1 ORDER BY at_ms DESC, id DESC LIMIT 20")
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
    let eri = int(row, "eri")? == 1;
    let eos_on = text_opt(row, "eos_on")?;
    let today = service_date(now);
    let replacement =
        crate::rules::replacement::replacement_due(eri, eos_on.as_deref().and_then(|d| d.parse().ok()), today);
    Ok(json!({
        "id": pump.id,
        "patient_id": pump.patient_id,
        "profile": pump.profile,
        "serial": pump.serial,
        "implanted_at": instant(pump.implanted_at),
        "catheter_cm": pump.catheter_cm,
        "catheter_tip_level": text_opt(row, "catheter_tip_level")?,
        "alarm_threshold_ml": ml(pump.alarm_threshold),
        "state": if pump.implanted { "implanted" } else { "explanted" },
        "explanted_at": int_opt(row, "explanted_at_ms")?.map(instant_ms),
        "explant_reason": text_opt(row, "explant_reason")?,
        "replaces_pump_id": int_opt(row, "replaces_pump_id")?,
        "high_risk": int(row, "high_risk")? == 1,
        "reservoir": {
            "source": pump.ref_kind,
            "at": instant(pump.ref_at),
            "volume_ml": ml(pump.ref_reservoir),
        },
        "concentration_micrograms_per_ml": micrograms_per_ml(pump.concentration),
        "filled_at": instant(pump.filled_at),
        "prescription": match &prescription { Some(p) => prescription_view(p)?, None => Value::Null },
        "refill": {
            "refill_due_by": int_opt(row, "due_by_ms")?.map(instant_ms),
            "refill_due_on": text_opt(row, "due_on")?,
            "low_reservoir_alarm_at": int_opt(row, "alarm_at_ms")?.map(instant_ms),
            "drug_expires_at": int_opt(row, "expires_at_ms")?.map(instant_ms),
            "limited_by": text_opt(row, "limited_by")?,
            "unknown_reason": text_opt(row, "unknown_reason")?,
            "margin_days": settings.margin_days,
        },
        "gap_review_pending": int(row, "gap_review_pending")? == 1,
        "keys": keys.iter().map(|k| Ok(json!({"id": int(k, "id")?, "role": text(k, "role")?, "public_key": text(k, "public_key")?, "paired_at": instant_ms(int(k, "paired_at_ms")?)}))).collect::<Result<Vec<_>, ClinicError>>()?,
        "battery": battery.iter().map(battery_view).collect::<Result<Vec<_>, ClinicError>>()?,
        "elective_replacement": eri,
        "end_of_service_on": eos_on,
        "replacement_due": replacement,
    }))
}

/// What an interrogation's report says, read from the fields the clinic needs.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    /// The pump's estimate of the reservoir.
    pub reservoir: Volume,
    /// The drug.
    pub concentration: Option<Concentration>,
    /// When it went in.
    pub filled_at: Option<Timestamp>,
    /// The alarm threshold.
    pub alarm_threshold: Option<Volume>,
    /// Battery life left.
    pub battery_remaining: Option<Duration>,
    /// The Elective Replacement Indicator.
    pub eri: Option<bool>,
    /// When the low-reservoir alarm sounded, if it is on (`alarms`: kind `low_reservoir`).
    pub low_reservoir_since: Option<Timestamp>,
}

impl Reading {
    /// Reads `reservoir_ml` (required), `concentration_micrograms_per_ml`, `filled_at`,
    /// `alarm_threshold_ml`, `battery_remaining_days` and `elective_replacement`.
    pub fn from_reported(reported: &Value) -> Result<Self, ClinicError> {
        if !reported.is_object() {
            return Err(invalid("reported", "give what the pump reported as an object with at least reservoir_ml"));
        }
        let field = |name: &str| reported.get(name).filter(|v| !v.is_null());
        let reservoir = read_ml(
            "reported.reservoir_ml",
            field("reservoir_ml")
                .ok_or_else(|| invalid("reported.reservoir_ml", "the pump's reservoir estimate is required"))?,
        )?;
        let concentration = field("concentration_micrograms_per_ml")
            .map(|v| read_micrograms_per_ml("reported.concentration_micrograms_per_ml", v))
            .transpose()?;
        let filled_at = field("filled_at")
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| invalid("reported.filled_at", "give an RFC 3339 instant"))
                    .and_then(|s| read_instant("reported.filled_at", s))
            })
            .transpose()?;
        let alarm_threshold =
            field("alarm_threshold_ml").map(|v| read_ml("reported.alarm_threshold_ml", v)).transpose()?;
        let battery_remaining = field("battery_remaining_days")
            .map(|v| {
                v.as_u64()
                    .filter(|d| *d <= 20_000)
                    .map(Duration::days)
                    .ok_or_else(|| invalid("reported.battery_remaining_days", "give whole days"))
            })
            .transpose()?;
        let eri = field("elective_replacement")
            .map(|v| v.as_bool().ok_or_else(|| invalid("reported.elective_replacement", "give true or false")))
            .transpose()?;
        let low_reservoir_since = match field("alarms") {
            None => None,
            Some(Value::Array(alarms)) => alarms
                .iter()
                .filter(|a| a.get("kind").and_then(Value::as_str) == Some("low_reservoir"))
                .filter_map(|a| a.get("raised_at").and_then(Value::as_str))
                .map(|t| read_instant("reported.alarms.raised_at", t).map(whole_second))
                .next()
                .transpose()?,
            Some(_) => return Err(invalid("reported.alarms", "give the alarms as a list of {kind, raised_at}")),
        };
        Ok(Self { reservoir, concentration, filled_at, alarm_threshold, battery_remaining, eri, low_reservoir_since })
    }
}

fn since_reference(pump: &PumpRow, at: Timestamp) -> Duration {
    let elapsed = at.as_millisecond().saturating_sub(pump.ref_at.as_millisecond());
    Duration::ms(u64::try_from(elapsed).unwrap_or(0))
}

/// The reservoir the record expects at `at` (the mean day): what a refill's withdrawal is
/// compared with.
pub fn expected_now(pump: &PumpRow, prescription: Option<&Prescription>, at: Timestamp) -> Volume {
    match (prescription, Baclofen::new(pump.concentration)) {
        (Some(p), Ok(drug)) => expected_reservoir(
            pump.ref_expected,
            drug,
            DoseRate::ng_per_day(p.daily_totals().mean.as_ng()),
            since_reference(pump, at),
        ),
        _ => pump.ref_expected,
    }
}

/// The least the reservoir can hold at `at` (every allowed PTM bolus taken on the largest
/// day): what the refill date is computed from.
pub fn worst_case_now(pump: &PumpRow, prescription: Option<&Prescription>, at: Timestamp) -> Volume {
    match (prescription, Baclofen::new(pump.concentration)) {
        (Some(p), Ok(drug)) => {
            expected_reservoir(pump.ref_reservoir, drug, p.worst_case_rate(), since_reference(pump, at))
        }
        _ => pump.ref_reservoir,
    }
}

/// An instant rounded down to the whole second, as refill dates are.
pub fn whole_second(at: Timestamp) -> Timestamp {
    Timestamp::from_second(at.as_second()).unwrap_or(at)
}

/// An instant for a person: `Wed 25 Nov 2026 10:00` in the service's zone.
pub fn person_time(at: Timestamp) -> String {
    itb_dose::text::date_time(at, &itb_dose::text::service_zone())
}

async fn close_open_appointments(
    tx: &mut WriteTx,
    pump_id: i64,
    by: i64,
    now: Timestamp,
    reason: &str,
) -> Result<(), ClinicError> {
    let open = sqlx::query(
        "SELECT id FROM appointments WHERE pump_id = $1 AND state IN ('requested', 'scheduled', 'arrived')",
    )
    .bind(pump_id)
    .fetch_all(tx.conn())
    .await?;
    for row in open {
        let id = int(&row, "id")?;
        sqlx::query("UPDATE appointments SET state = 'cancelled' WHERE id = $1").bind(id).execute(tx.conn()).await?;
        sqlx::query("INSERT INTO appointment_events (appointment_id, state, on_date, at_ms, by_user, reason) VALUES ($1, 'cancelled', NULL, $2, $3, $4)")
            .bind(id)
            .bind(now.as_millisecond())
            .bind(by)
            .bind(reason)
            .execute(tx.conn())
            .await?;
    }
    Ok(())
}

async fn move_reference_to(conn: &mut AnyConnection, pump: &PumpRow, at: Timestamp) -> Result<(), ClinicError> {
    if at <= pump.ref_at {
        return Ok(());
    }
    let prescription = load_prescription(conn, pump.prescription_id).await?;
    let worst = worst_case_now(pump, prescription.as_ref(), at);
    let expected = expected_now(pump, prescription.as_ref(), at);
    sqlx::query("UPDATE pumps SET ref_at_ms = $1, ref_reservoir_nl = $2, ref_expected_nl = $3 WHERE id = $4")
        .bind(at.as_millisecond())
        .bind(signed(worst.as_nl())?)
        .bind(signed(expected.as_nl())?)
        .bind(pump.id)
        .execute(conn)
        .await?;
    Ok(())
}

fn patient_facts(patient: &sqlx::any::AnyRow, at: Timestamp) -> Result<Patient, ClinicError> {
    Ok(Patient {
        origin: origin_of(&text(patient, "origin")?),
        age_years: age_years(&text(patient, "date_of_birth")?, service_date(at)),
    })
}

async fn review_against_record(
    conn: &mut AnyConnection,
    pump_id: i64,
    prescription: &Prescription,
    at: Timestamp,
) -> Result<itb_dose::review::Review, ClinicError> {
    let pump = load_pump(conn, pump_id).await?;
    let patient =
        sqlx::query("SELECT * FROM patients WHERE id = $1").bind(pump.patient_id).fetch_one(&mut *conn).await?;
    let current = load_prescription(conn, pump.prescription_id).await?;
    let history_rows = sqlx::query("SELECT prescription, at_ms FROM prescriptions WHERE pump_id = $1 ORDER BY version")
        .bind(pump_id)
        .fetch_all(&mut *conn)
        .await?;
    let mut events = vec![DoseHistoryEvent::Implanted { at_pump_ms: pump.implanted_at.as_millisecond() }];
    let mut before: Option<Prescription> = None;
    for row in &history_rows {
        let p = stored_prescription(&text(row, "prescription")?)?;
        let at_ms = int(row, "at_ms")?;
        if let Some(prev) = &before {
            let from = DoseRate::ng_per_day(prev.daily_totals().max.as_ng());
            let to = DoseRate::ng_per_day(p.daily_totals().max.as_ng());
            events.push(DoseHistoryEvent::Programmed { at_pump_ms: at_ms, from, to, raised: p.raises(Some(prev)) });
        }
        before = Some(p);
    }
    let settings = load_settings(conn).await?;
    let device = pump.device()?;
    let reservoir = expected_now(&pump, current.as_ref(), at);
    let old = PumpSide {
        delivering: current.as_ref().is_some_and(|p| p.therapy().mode() != itb_dose::Mode::Stopped),
        prescription: current,
        concentration: pump.concentration,
        reservoir,
        alarm_threshold: pump.alarm_threshold,
        filled_at: Some(pump.filled_at),
    };
    let new = PumpSide {
        delivering: prescription.therapy().mode() != itb_dose::Mode::Stopped,
        prescription: Some(prescription.clone()),
        ..old.clone()
    };
    Ok(review(&ReviewInputs {
        change: ChangeKind::Therapy,
        old,
        new,
        at,
        policy: settings.policy(),
        dead_volume: device.fluid_path.dead_volume(pump.catheter_cm).unwrap_or(Volume::ZERO),
        patient: patient_facts(&patient, at)?,
        last_increase: last_increase(&events, true, at.as_millisecond()),
        off: delivery_off(&events, at.as_millisecond()),
        gap: None,
    }))
}

#[allow(clippy::too_many_arguments)]
async fn insert_prescription(
    tx: &mut WriteTx,
    pump_id: i64,
    version: i64,
    prescription: &Prescription,
    at: Timestamp,
    by: i64,
    reason: &str,
    review: &Value,
    verdict: Option<&str>,
    override_reason: Option<&str>,
) -> Result<i64, ClinicError> {
    let row = sqlx::query("INSERT INTO prescriptions (pump_id, version, prescription, worst_case_ng_per_day, at_ms, authorised_by, reason, review, verdict, override_reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id")
        .bind(pump_id)
        .bind(version)
        .bind(itb_dose::toml::to_toml(prescription))
        .bind(signed(prescription.worst_case_rate().as_ng_per_day())?)
        .bind(at.as_millisecond())
        .bind(by)
        .bind(reason)
        .bind(review.to_string())
        .bind(verdict)
        .bind(override_reason)
        .fetch_one(tx.conn())
        .await?;
    int(&row, "id")
}

async fn insert_battery(
    tx: &mut WriteTx,
    pump_id: i64,
    at: Timestamp,
    remaining: Option<Duration>,
    eri: bool,
    eos_on: Option<Date>,
    source: &str,
) -> Result<(), ClinicError> {
    let remaining_days = remaining.map(|r| i64::try_from(r.as_ms() / 86_400_000).unwrap_or(i64::MAX));
    sqlx::query("INSERT INTO battery_estimates (pump_id, at_ms, remaining_days, eri, eos_on, source) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(pump_id)
        .bind(at.as_millisecond())
        .bind(remaining_days)
        .bind(i64::from(eri))
        .bind(eos_on.map(|d| d.to_string()))
        .bind(source)
        .execute(tx.conn())
        .await?;
    // The pump's summary follows the latest estimate.
    let latest = sqlx::query(
        "SELECT eri, eos_on FROM battery_estimates WHERE pump_id = $1 ORDER BY at_ms DESC, id DESC LIMIT 1",
    )
    .bind(pump_id)
    .fetch_one(tx.conn())
    .await?;
    sqlx::query("UPDATE pumps SET eri = $1, eos_on = $2 WHERE id = $3")
        .bind(int(&latest, "eri")?)
        .bind(text_opt(&latest, "eos_on")?)
        .bind(pump_id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn insert_appointment(
    tx: &mut WriteTx,
    patient_id: i64,
    pump_id: Option<i64>,
    kind: Kind,
    state: State,
    on: Option<Date>,
    place: &str,
    note: &str,
    by: i64,
    now: Timestamp,
) -> Result<i64, ClinicError> {
    let row = sqlx::query("INSERT INTO appointments (patient_id, pump_id, kind, state, on_date, place, note, created_by, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id")
        .bind(patient_id)
        .bind(pump_id)
        .bind(kind.as_str())
        .bind(state.as_str())
        .bind(on.map(|d| d.to_string()))
        .bind(place)
        .bind(note)
        .bind(by)
        .bind(now.as_millisecond())
        .fetch_one(tx.conn())
        .await?;
    let id = int(&row, "id")?;
    sqlx::query("INSERT INTO appointment_events (appointment_id, state, on_date, at_ms, by_user, reason) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(id)
        .bind(state.as_str())
        .bind(on.map(|d| d.to_string()))
        .bind(now.as_millisecond())
        .bind(by)
        .bind(if note.is_empty() { "booked" } else { note })
        .execute(tx.conn())
        .await?;
    Ok(id)
}

fn patient_json(row: &sqlx::any::AnyRow) -> Result<Value, ClinicError> {
    let digits = text(row, "nhs_number")?;
    let display = digits.parse::<NhsNumber>().map(|n| n.to_string()).unwrap_or_else(|_| digits.clone());
    Ok(json!({
        "id": int(row, "id")?,
        "nhs_number": digits,
        "nhs_number_display": display,
        "given_name": text(row, "given_name")?,
        "family_name": text(row, "family_name")?,
        "date_of_birth": text(row, "date_of_birth")?,
        "origin": text(row, "origin")?,
        "injury_level": text_opt(row, "injury_level")?,
        "high_risk": int(row, "high_risk")? == 1,
        "high_risk_reason": text_opt(row, "high_risk_reason")?,
        "weight_kg": int_opt(row, "weight_g")?.map(|g| micrograms(u64::try_from(g).unwrap_or(0))),
        "gp_practice": text(row, "gp_practice")?,
        "contacts": serde_json::from_str::<Value>(&text(row, "contacts")?).unwrap_or(Value::Array(vec![])),
        "communication_needs": text(row, "communication_needs")?,
        "stage": text(row, "stage")?,
        "created_at": instant_ms(int(row, "created_at_ms")?),
    }))
}

fn prescription_view(row: &sqlx::any::AnyRow) -> Result<Value, ClinicError> {
    let prescription = stored_prescription(&text(row, "prescription")?)?;
    let totals = prescription.daily_totals();
    Ok(json!({
        "id": int(row, "id")?,
        "pump_id": int(row, "pump_id")?,
        "version": int(row, "version")?,
        "prescription": prescription_json(&prescription),
        "mode": prescription.therapy().mode().as_str(),
        "largest_day_micrograms": micrograms(totals.max.as_ng()),
        "worst_case_day_micrograms": micrograms(totals.max_with_ptm.as_ng()),
        "at": instant_ms(int(row, "at_ms")?),
        "authorised_by": text(row, "authorised_by_username")?,
        "authorised_by_user_id": int(row, "authorised_by")?,
        "reason": text(row, "reason")?,
        "review": serde_json::from_str::<Value>(&text(row, "review")?).unwrap_or(Value::Null),
        "verdict": text_opt(row, "verdict")?,
        "override_reason": text_opt(row, "override_reason")?,
    }))
}

fn refill_view(row: &sqlx::any::AnyRow) -> Result<Value, ClinicError> {
    let vol = |c: &str| -> Result<Value, ClinicError> { Ok(ml(Volume::nl(unsigned(row, c)?))) };
    Ok(json!({
        "id": int(row, "id")?,
        "pump_id": int(row, "pump_id")?,
        "at": instant_ms(int(row, "at_ms")?),
        "volume_expected_ml": vol("expected_nl")?,
        "volume_withdrawn_ml": vol("withdrawn_nl")?,
        "gap_ml": vol("gap_nl")?,
        "gap_direction": text_opt(row, "gap_direction")?,
        "gap_limit_ml": vol("gap_limit_nl")?,
        "gap_needs_review": int(row, "gap_needs_review")? == 1,
        "gap_reviewed": int_opt(row, "reviewed_at_ms")?.is_some(),
        "gap_review": match int_opt(row, "reviewed_at_ms")? {
            Some(at) => json!({"at": instant_ms(at), "by": text_opt(row, "reviewer")?, "note": text_opt(row, "review_note")?}),
            None => Value::Null,
        },
        "drug": text(row, "drug")?,
        "concentration_micrograms_per_ml": micrograms_per_ml(Concentration::ng_per_ml(unsigned(row, "concentration_ng_per_ml")?)),
        "lot": text(row, "lot")?,
        "expires_on": text(row, "expires_on")?,
        "volume_added_ml": vol("added_nl")?,
        "bridge_bolus": text_opt(row, "bridge")?.and_then(|b| serde_json::from_str::<Value>(&b).ok()),
        "low_reservoir_alarm_at": int_opt(row, "alarm_at_ms")?.map(instant_ms),
        "refill_due_by": int_opt(row, "due_by_ms")?.map(instant_ms),
        "refill_due_on": text_opt(row, "due_on")?,
        "limited_by": text_opt(row, "limited_by")?,
        "nurse": text(row, "nurse")?,
        "second_checker": text(row, "checker")?,
        "place": text(row, "place")?,
        "recorded_at": instant_ms(int(row, "recorded_at_ms")?),
    }))
}

fn battery_view(row: &sqlx::any::AnyRow) -> Result<Value, ClinicError> {
    Ok(json!({
        "at": instant_ms(int(row, "at_ms")?),
        "remaining_days": int_opt(row, "remaining_days")?,
        "elective_replacement": int(row, "eri")? == 1,
        "end_of_service_on": text_opt(row, "eos_on")?,
        "source": text(row, "source")?,
    }))
}

fn appointment_view(row: &sqlx::any::AnyRow) -> Result<Value, ClinicError> {
    Ok(json!({
        "id": int(row, "id")?,
        "patient_id": int(row, "patient_id")?,
        "pump_id": int_opt(row, "pump_id")?,
        "kind": text(row, "kind")?,
        "state": text(row, "state")?,
        "on": text_opt(row, "on_date")?,
        "place": text(row, "place")?,
        "note": text(row, "note")?,
        "created_at": instant_ms(int(row, "created_at_ms")?),
    }))
}
