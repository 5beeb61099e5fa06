//! A large service for benchmarks: `n` patients, each with an implanted pump, its first
//! prescription and refill-due figures computed by the worklist's own rule, written in bulk
//! (one transaction, no audit entries: this is a measurement fixture, not a record).

use itb_dose::{Concentration, DoseRate, Prescription, Volume};
use jiff::{SignedDuration, Timestamp};

use super::Store;
use super::record::Settings;
use crate::error::ClinicError;
use crate::rules::worklist::{Reference, refill_due};

/// The service of `n` patients the benchmarks share, in a SQLite file under `dir` named for the
/// schema it was seeded with (a changed migration seeds anew): opened, and seeded first when the
/// file is new, with the time the seeding took.
pub async fn bench_store(
    dir: &std::path::Path,
    n: u32,
    now: Timestamp,
) -> Result<(Store, Option<std::time::Duration>), ClinicError> {
    std::fs::create_dir_all(dir).map_err(|e| ClinicError::Internal(format!("{}: {e}", dir.display())))?;
    let file = bench_file(dir, n);
    let fresh = !file.exists();
    let store = Store::open(&format!("sqlite://{}", file.display())).await?;
    if !fresh {
        return Ok((store, None));
    }
    let started = std::time::Instant::now();
    bulk(&store, n, now).await?;
    Ok((store, Some(started.elapsed())))
}

fn bench_file(dir: &std::path::Path, n: u32) -> std::path::PathBuf {
    let schema = super::sqlite::MIGRATIONS
        .iter()
        .flat_map(|(_, _, sql)| sql.bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    dir.join(format!("clinic-{n}-{schema:016x}.sqlite"))
}

/// Seeds `n` patients with pumps, filled on days spread over the last 120 days before `now`.
pub async fn bulk(store: &Store, n: u32, now: Timestamp) -> Result<(), ClinicError> {
    let policy = Settings::default().policy();
    let mut tx = store.begin().await?;
    let user = sqlx::query("INSERT INTO users (username, role, password_hash, created_at_ms) VALUES ('seed', 'admin', '-', $1) RETURNING id")
        .bind(now.as_millisecond())
        .fetch_one(tx.conn())
        .await?;
    let user_id = super::int(&user, "id")?;
    for i in 0..n {
        let nhs = crate::demo::nhs_number(u64::from(i) + 1_000);
        let high_risk = i64::from(i % 17 == 0);
        let patient = sqlx::query("INSERT INTO patients (nhs_number, given_name, family_name, date_of_birth, origin, injury_level, high_risk, high_risk_reason, weight_g, gp_practice, contacts, communication_needs, stage, created_at_ms) VALUES ($1, 'Test', $2, '1970-01-01', 'spinal', NULL, $3, NULL, 70000, '', '[]', '', 'maintenance', $4) RETURNING id")
            .bind(nhs)
            .bind(format!("Patient{i:06}"))
            .bind(high_risk)
            .bind(now.as_millisecond())
            .fetch_one(tx.conn())
            .await?;
        let patient_id = super::int(&patient, "id")?;
        let dose = 200 + (i % 7) * 50;
        let prescription = Prescription::simple_continuous(DoseRate::micrograms_per_day(u64::from(dose)))
            .map_err(|e| ClinicError::Internal(e.to_string()))?;
        let filled = now.checked_sub(SignedDuration::from_hours(24 * i64::from(i % 120))).unwrap_or(now);
        let reference = Reference {
            at: filled,
            reservoir: Volume::ml(20),
            concentration: Concentration::micrograms_per_ml(2000),
            filled_at: filled,
            alarm_threshold: Volume::ml(2),
            prescription: Some(prescription.clone()),
            alarm_sounded_at: None,
        };
        let due = refill_due(&reference, &policy).map_err(ClinicError::Internal)?;
        let pump = sqlx::query("INSERT INTO pumps (patient_id, profile, serial, implanted_at_ms, catheter_cm, alarm_threshold_nl, implanted, ref_kind, ref_at_ms, ref_reservoir_nl, ref_expected_nl, concentration_ng_per_ml, filled_at_ms, high_risk, due_by_ms, due_on, alarm_at_ms, expires_at_ms, limited_by) VALUES ($1, 'synchromed-ii-20', $2, $3, 50, 2000000, 1, 'refill', $3, 20000000, 20000000, 2000000, $3, $4, $5, $6, $7, $8, $9) RETURNING id")
            .bind(patient_id)
            .bind(format!("BENCH{i:07}"))
            .bind(filled.as_millisecond())
            .bind(high_risk)
            .bind(due.due_by.as_millisecond())
            .bind(due.due_on.to_string())
            .bind(due.alarm_at.map(|t| t.as_millisecond()))
            .bind(due.expires_at.as_millisecond())
            .bind(due.limited_by)
            .fetch_one(tx.conn())
            .await?;
        let pump_id = super::int(&pump, "id")?;
        let rx = sqlx::query("INSERT INTO prescriptions (pump_id, version, prescription, worst_case_ng_per_day, at_ms, authorised_by, reason, review, verdict, override_reason) VALUES ($1, 1, $2, $3, $4, $5, 'implant', '{}', NULL, NULL) RETURNING id")
            .bind(pump_id)
            .bind(itb_dose::toml::to_toml(&prescription))
            .bind(i64::from(dose) * 1000)
            .bind(filled.as_millisecond())
            .bind(user_id)
            .fetch_one(tx.conn())
            .await?;
        sqlx::query("UPDATE pumps SET prescription_id = $1 WHERE id = $2")
            .bind(super::int(&rx, "id")?)
            .bind(pump_id)
            .execute(tx.conn())
            .await?;
        if i % 5 == 0 {
            let on = crate::store::record::service_date(due.due_by).to_string();
            sqlx::query("INSERT INTO appointments (patient_id, pump_id, kind, state, on_date, place, note, created_by, created_at_ms) VALUES ($1, $2, 'refill', 'scheduled', $3, 'clinic', '', $4, $5)")
                .bind(patient_id).bind(pump_id).bind(on).bind(user_id).bind(now.as_millisecond()).execute(tx.conn()).await?;
        }
    }
    tx.commit().await
}
