//! A demo service: about 40 patients across the whole pathway (assessment and screening,
//! titration, maintenance, refills due and overdue, one booked after its due date, a pump at
//! its Elective Replacement Indicator, a post-MRI check pending, a refill gap under review,
//! high-risk patients), built through the record's own workflows so that every rule and audit
//! entry holds; then each implanted pump gets a virtual pump whose state agrees with the record.

use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use crate::error::ClinicError;
use crate::fleet::Fleet;
use crate::model::instant;
use crate::rules::access::Role;
use crate::store::Store;
use crate::store::record::{
    AppointmentChange, AppointmentInput, PatientInput, PrescriptionInput, PumpInput, RefillInput, service_date,
};
use crate::store::users::User;

/// How fast the demo's drifting pump runs, in parts per million.
pub const DRIFT_PPM: i64 = 100_000;

/// A sign-in of the demo.
#[derive(Debug, Clone)]
pub struct SignIn {
    /// Username.
    pub username: &'static str,
    /// Password.
    pub password: &'static str,
    /// Role.
    pub role: Role,
}

/// The demo's sign-ins.
pub const SIGN_INS: [SignIn; 8] = [
    SignIn { username: "nurse.jones", password: "demo-nurse-jones", role: Role::NurseSpecialist },
    SignIn { username: "nurse.patel", password: "demo-nurse-patel", role: Role::NurseSpecialist },
    SignIn { username: "dr.okafor", password: "demo-consultant-okafor", role: Role::Consultant },
    SignIn { username: "mr.hughes", password: "demo-neurosurgeon-hughes", role: Role::Neurosurgeon },
    SignIn { username: "physio.lee", password: "demo-physio-lee", role: Role::Physiotherapist },
    SignIn { username: "pharm.shah", password: "demo-pharmacist-shah", role: Role::Pharmacist },
    SignIn { username: "admin", password: "demo-administrator", role: Role::Admin },
    SignIn { username: "megan.evans", password: "demo-patient", role: Role::Patient },
];

const GIVEN: [&str; 20] = [
    "Megan", "David", "Aisha", "Tom", "Sian", "Rhys", "Priya", "Gareth", "Nia", "Oliver", "Grace", "Mohammed", "Ffion",
    "Jack", "Amelia", "Dylan", "Chloe", "Owen", "Zara", "Huw",
];
const FAMILY: [&str; 20] = [
    "Evans", "Williams", "Khan", "Roberts", "Davies", "Thomas", "Sharma", "Jones", "Morgan", "Hughes", "Lewis", "Ali",
    "Price", "Walker", "Edwards", "Phillips", "Clarke", "Jenkins", "Begum", "Powell",
];

/// A valid NHS number for demo patient `n` (modulus 11), in the 999 range used for tests.
pub fn nhs_number(n: u64) -> String {
    let mut seed = 999_000_000 + n * 37;
    loop {
        let digits: Vec<u8> = format!("{seed:09}").bytes().map(|b| b - b'0').collect();
        let mut nine = [0u8; 9];
        nine.copy_from_slice(&digits[..9]);
        if let Some(check) = crate::rules::nhs::NhsNumber::check_digit(&nine) {
            return format!("{seed:09}{check}");
        }
        seed += 1;
    }
}

fn days(n: i64) -> SignedDuration {
    SignedDuration::from_hours(24 * n)
}

/// What the demo built.
#[derive(Debug, Clone)]
pub struct Built {
    /// Patients registered.
    pub patients: usize,
    /// Pumps implanted now.
    pub pumps: usize,
}

struct Staff {
    nurse: User,
    nurse2: User,
    consultant: User,
    surgeon: User,
}

fn ago(now: Timestamp, n: i64) -> Timestamp {
    now.checked_sub(days(n)).unwrap_or(now)
}

/// How a demo patient's story goes.
#[derive(Clone, Copy)]
struct Story {
    /// Days since the last refill (or implant).
    last_fill_days: i64,
    /// Daily dose in micrograms.
    dose: u32,
    /// Spinal level, if any.
    level: Option<&'static str>,
    /// Stage.
    stage: &'static str,
}

/// Builds the demo into an empty store at `now`; with a fleet, each implanted pump gets its
/// virtual pump.
pub async fn build(store: &Store, now: Timestamp, fleet: Option<&Fleet>) -> Result<Built, ClinicError> {
    let mut users = Vec::new();
    for sign_in in SIGN_INS.iter().filter(|s| s.role != Role::Patient) {
        users.push(store.add_user("demo", sign_in.username, sign_in.role, sign_in.password, None, now).await?);
    }
    let find = |name: &str| {
        users
            .iter()
            .find(|u| u.username == name)
            .cloned()
            .ok_or_else(|| ClinicError::Internal(format!("no demo user {name}")))
    };
    let staff = Staff {
        nurse: find("nurse.jones")?,
        nurse2: find("nurse.patel")?,
        consultant: find("dr.okafor")?,
        surgeon: find("mr.hughes")?,
    };
    // 400 micrograms/day of 2000 micrograms/mL: 0.2 mL a day, 18 mL above the 2 mL alarm is
    // 90 days; so `last_fill_days` of 92 is 2 days overdue and 85 is due in 5 days.
    let mut stories = Vec::new();
    for d in [93, 91] {
        stories.push(Story { last_fill_days: d, dose: 400, level: None, stage: "maintenance" });
    }
    for d in [89, 87, 86, 85, 83] {
        stories.push(Story { last_fill_days: d, dose: 400, level: None, stage: "maintenance" });
    }
    for d in [81, 78, 75, 72, 70, 68, 66, 64, 63] {
        stories.push(Story { last_fill_days: d, dose: 400, level: None, stage: "maintenance" });
    }
    for (i, d) in [58, 55, 50, 47, 44, 40, 36, 33, 30, 27, 24, 20, 17, 14, 11, 8, 5, 3].into_iter().enumerate() {
        let dose = [300, 350, 400, 450, 500][i % 5];
        stories.push(Story { last_fill_days: d, dose, level: None, stage: "maintenance" });
    }
    // High-risk patients (spinal injury at or above T6), one in each early bucket.
    stories[1].level = Some("C6");
    stories[3].level = Some("T4");
    stories[10].level = Some("T6");
    stories[20].level = Some("T10");
    // Two in titration: implanted 10 days ago.
    stories[30].stage = "titration";
    stories[31].stage = "titration";
    let mut built = Built { patients: 0, pumps: 0 };
    // One pump (index 9, due in about 15 days) runs 10 % fast since its last refill: the record
    // does not know, and the next withdrawal finds about 1.5 mL less than expected.
    let mut drifting = None;
    // Six before the pump: assessment and screening.
    for i in 0..6u64 {
        let n = 100 + i;
        store
            .create_patient(&staff.nurse, patient_input(n, if i < 3 { "assessment" } else { "screening" }, None), now)
            .await?;
        built.patients += 1;
    }
    for (index, story) in stories.iter().enumerate() {
        let n = u64::try_from(index).unwrap_or(0);
        let patient = store.create_patient(&staff.nurse, patient_input(n, story.stage, story.level), now).await?;
        built.patients += 1;
        let patient_id = patient["id"].as_i64().unwrap_or(0);
        if index == 0 {
            store.add_user("demo", "megan.evans", Role::Patient, "demo-patient", Some(patient_id), now).await?;
        }
        let titrating = story.stage == "titration";
        let implanted_days = if titrating { 10 } else { story.last_fill_days + 85 * (1 + (index as i64 % 3)) };
        let implanted_at = ago(now, implanted_days);
        let pump = store
            .implant_pump(
                &staff.surgeon,
                patient_id,
                PumpInput {
                    profile: "synchromed-ii-20".to_owned(),
                    serial: format!("NGV{:06}", 120_000 + index),
                    implanted_at: instant(implanted_at),
                    catheter_cm: 45 + u32::try_from(index % 10).unwrap_or(0),
                    catheter_tip_level: Some("T10".to_owned()),
                    fill_ml: json!(20),
                    concentration_micrograms_per_ml: json!(2000),
                    prescription: json!({"mode": "simple_continuous", "dose": format!("{} micrograms/day", if titrating { 100 } else { story.dose })}),
                    alarm_threshold_ml: None,
                    replaces_pump_id: None,
                },
                now,
            )
            .await?;
        let pump_id = pump["id"].as_i64().unwrap_or(0);
        built.pumps += 1;
        if index == 9 {
            drifting = Some(pump_id);
        }
        settle_surgery_follow_ups(store, &staff, patient_id, now, implanted_days).await?;
        if titrating {
            // 100 -> 110 -> 120 micrograms/day, a day or more apart.
            for (step, dose) in [(7, 110), (4, 120)] {
                store
                    .prescribe(&staff.consultant, pump_id, PrescriptionInput {
                        prescription: json!({"mode": "simple_continuous", "dose": format!("{dose} micrograms/day")}),
                        reason: "titration after implant: spasticity still limits transfers".to_owned(),
                        at: Some(instant(ago(now, step))),
                        override_reason: None,
                    }, now)
                    .await?;
            }
            continue;
        }
        // Refills every 85 days up to the last one.
        let mut fill_days = implanted_days - 85;
        while fill_days >= story.last_fill_days {
            let gap = index == 12 && fill_days == story.last_fill_days;
            let at = ago(now, fill_days);
            let (pump_row, prescription) = store.pump_state(pump_id).await?;
            let expected = crate::store::record::expected_now(&pump_row, prescription.as_ref(), at);
            // The refill gap under review: 2 mL less came out than expected on a 20 mL pump.
            let withdrawn = if gap { expected.saturating_sub(itb_dose::Volume::ml(2)) } else { expected };
            store
                .record_refill(
                    &staff.nurse,
                    pump_id,
                    RefillInput {
                        at: instant(at),
                        volume_withdrawn_ml: crate::model::ml(withdrawn),
                        volume_added_ml: json!(20),
                        concentration_micrograms_per_ml: json!(2000),
                        lot: format!("BX{}", 4000 + index * 3 + usize::try_from(fill_days).unwrap_or(0) % 7),
                        expires_on: service_date(at.checked_add(days(400)).unwrap_or(at)).to_string(),
                        nurse: staff.nurse.username.clone(),
                        second_checker: staff.nurse2.username.clone(),
                        place: Some(if index % 4 == 0 { "home" } else { "clinic" }.to_owned()),
                        drug: None,
                    },
                    now,
                )
                .await?;
            fill_days -= 85;
        }
        // Book the next refill two days before its due date; one (index 4) after it.
        let pump = store.pump(pump_id, now).await?;
        if let Some(due_on) = pump["refill"]["refill_due_on"].as_str().and_then(|d| d.parse::<jiff::civil::Date>().ok())
        {
            let offset = if index == 4 { 3 } else { -2 };
            let on = due_on.checked_add(jiff::Span::new().days(offset)).unwrap_or(due_on);
            if on >= service_date(now) && index % 3 != 2 {
                store
                    .book_appointment(
                        &staff.nurse,
                        AppointmentInput {
                            patient_id,
                            pump_id: Some(pump_id),
                            kind: "refill".to_owned(),
                            state: None,
                            on: Some(on.to_string()),
                            place: None,
                            note: None,
                        },
                        now,
                    )
                    .await?;
            }
        }
        if index == 6 {
            // The Elective Replacement Indicator is on: plan the replacement.
            store
                .add_battery_estimate(
                    &staff.nurse,
                    pump_id,
                    ago(now, 2),
                    Some(itb_dose::Duration::days(80)),
                    true,
                    Some(service_date(now.checked_add(days(80)).unwrap_or(now))),
                    now,
                )
                .await?;
        }
        if index == 8 {
            store
                .book_appointment(
                    &staff.nurse,
                    AppointmentInput {
                        patient_id,
                        pump_id: Some(pump_id),
                        kind: "post_mri_check".to_owned(),
                        state: Some("requested".to_owned()),
                        on: Some(service_date(now).to_string()),
                        place: None,
                        note: Some("MRI of the brain this morning: check the pump is running".to_owned()),
                    },
                    now,
                )
                .await?;
        }
    }
    if let Some(fleet) = fleet {
        let ids: Vec<i64> = {
            use sqlx::Row;
            sqlx::query("SELECT id FROM pumps WHERE implanted = 1 ORDER BY id")
                .fetch_all(store.pool())
                .await?
                .iter()
                .map(|r| r.try_get::<i64, _>("id"))
                .collect::<Result<_, _>>()?
        };
        for id in ids {
            fleet.implanted_with_error(store, id, if drifting == Some(id) { DRIFT_PPM } else { 0 }).await?;
        }
    }
    Ok(built)
}

async fn settle_surgery_follow_ups(
    store: &Store,
    staff: &Staff,
    patient_id: i64,
    now: Timestamp,
    implanted_days: i64,
) -> Result<(), ClinicError> {
    let listed = store.appointments(None, Some(patient_id), 50, 0).await?;
    for appointment in listed.items {
        let id = appointment["id"].as_i64().unwrap_or(0);
        let on = appointment["on"].as_str().and_then(|d| d.parse::<jiff::civil::Date>().ok());
        let past = on.is_some_and(|d| d < service_date(now));
        let mv = |state: &str, reason: &str| AppointmentChange {
            state: state.to_owned(),
            on: None,
            reason: reason.to_owned(),
        };
        if past || implanted_days > 60 {
            store.change_appointment(&staff.nurse, id, mv("scheduled", "booked after surgery"), now).await?;
            store.change_appointment(&staff.nurse, id, mv("arrived", "arrived at clinic"), now).await?;
            store.change_appointment(&staff.surgeon, id, mv("completed", "wound healed; pump site fine"), now).await?;
        } else {
            store.change_appointment(&staff.nurse, id, mv("scheduled", "booked after surgery"), now).await?;
        }
    }
    Ok(())
}

fn patient_input(n: u64, stage: &str, level: Option<&str>) -> PatientInput {
    let i = usize::try_from(n).unwrap_or(0);
    let origin = if level.is_some() || i % 3 != 1 { "spinal" } else { "cerebral" };
    PatientInput {
        nhs_number: nhs_number(n),
        given_name: GIVEN[i % GIVEN.len()].to_owned(),
        family_name: FAMILY[(i * 7 + i / 20) % FAMILY.len()].to_owned(),
        date_of_birth: format!("{}-{:02}-{:02}", 1950 + (i * 3) % 50, 1 + i % 12, 1 + (i * 5) % 28),
        origin: origin.to_owned(),
        injury_level: level.map(str::to_owned),
        weight_kg: Some(json!(55 + (i * 3) % 40)),
        gp_practice: Some(
            ["Taff Riverside Surgery", "Heath Medical Centre", "Llandaff North Practice"][i % 3].to_owned(),
        ),
        contacts: None,
        communication_needs: Some(if i % 9 == 0 { "Welsh speaker; prefers letters in Welsh" } else { "" }.to_owned()),
        stage: Some(stage.to_owned()),
    }
}
