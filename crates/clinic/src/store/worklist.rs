//! The refill worklist: every implanted pump once, in its bucket, high-risk patients first
//! within each bucket, then by refill-due instant. Each bucket is an indexed range of
//! `pumps_worklist (implanted, high_risk, due_on, due_by_ms, id)`, so a page is a few index
//! reads at any size.

use jiff::civil::Date;
use serde_json::{Value, json};

use super::{Store, int, int_opt, text, text_opt};
use crate::error::ClinicError;
use crate::model::instant_ms;
use crate::rules::nhs::NhsNumber;
use crate::rules::replacement::EOS_WITHIN_MONTHS;
use crate::rules::worklist::{Bucket, booking_after_due};

/// Items in each list beside the buckets, at most.
pub const SIDE_LIST_MAX: i64 = 200;

fn range_sql(bucket: Bucket, on: Date) -> (String, Vec<String>) {
    match bucket.dates(on) {
        None => ("due_on IS NULL".to_owned(), vec![]),
        Some((from, before)) => {
            let mut clauses = vec!["due_on IS NOT NULL".to_owned()];
            let mut binds = vec![];
            if let Some(from) = from {
                binds.push(from.to_string());
                clauses.push(format!("due_on >= ${}", binds.len() + 1));
            }
            if let Some(before) = before {
                binds.push(before.to_string());
                clauses.push(format!("due_on < ${}", binds.len() + 1));
            }
            (clauses.join(" AND "), binds)
        }
    }
}

impl Store {
    /// The worklist on `on`: counts per bucket, a page of items, and the lists beside it.
    pub async fn worklist(&self, on: Date, limit: i64, offset: i64) -> Result<Value, ClinicError> {
        self.worklist_of(on, None, limit, offset).await
    }

    /// As [`Store::worklist`], with the page's items from one bucket only (`only`); the counts
    /// and the lists beside it are the whole service's.
    pub async fn worklist_of(
        &self,
        on: Date,
        only: Option<Bucket>,
        limit: i64,
        offset: i64,
    ) -> Result<Value, ClinicError> {
        // One snapshot for every count and page: a change committed meanwhile cannot show a
        // pump twice or not at all.
        let mut snapshot = self.read_snapshot().await?;
        let mut counts = serde_json::Map::new();
        let mut items = Vec::new();
        let mut skip = offset;
        let mut total = 0i64;
        for bucket in Bucket::ALL {
            let mut bucket_count = 0i64;
            for high_risk in [1i64, 0] {
                let (range, binds) = range_sql(bucket, on);
                let count_sql =
                    format!("SELECT COUNT(*) AS n FROM pumps WHERE implanted = 1 AND high_risk = $1 AND {range}");
                let mut count = sqlx::query(&count_sql).bind(high_risk);
                for b in &binds {
                    count = count.bind(b);
                }
                let n = int(&count.fetch_one(&mut *snapshot).await?, "n")?;
                bucket_count += n;
                total += n;
                let want = limit - i64::try_from(items.len()).unwrap_or(limit);
                if want <= 0 || n == 0 || only.is_some_and(|b| b != bucket) {
                    continue;
                }
                if skip >= n {
                    skip -= n;
                    continue;
                }
                // The page's ids come from the covering index alone (a deep offset skips index
                // entries, not joined rows); then the page's rows are joined.
                let page_sql = format!(
                    "SELECT pumps.id, pumps.patient_id, pumps.high_risk, pumps.due_by_ms, pumps.due_on, pumps.alarm_at_ms, pumps.expires_at_ms, pumps.limited_by, pumps.unknown_reason, pumps.gap_review_pending, patients.nhs_number, patients.given_name, patients.family_name FROM (SELECT id FROM pumps WHERE implanted = 1 AND high_risk = $1 AND {range} ORDER BY due_on, due_by_ms, id LIMIT {want} OFFSET {skip}) AS page JOIN pumps ON pumps.id = page.id JOIN patients ON patients.id = pumps.patient_id ORDER BY pumps.due_on, pumps.due_by_ms, pumps.id"
                );
                skip = 0;
                let mut page = sqlx::query(&page_sql).bind(high_risk);
                for b in &binds {
                    page = page.bind(b);
                }
                for row in page.fetch_all(&mut *snapshot).await? {
                    items.push((bucket, row));
                }
            }
            counts.insert(bucket.as_str().to_owned(), json!(bucket_count));
        }
        if let Some(b) = only {
            total = counts.get(b.as_str()).and_then(Value::as_i64).unwrap_or(0);
        }
        // The booked refill of each pump on the page: the earliest open refill appointment,
        // in one indexed query for the page.
        let mut booked: std::collections::HashMap<i64, String> = std::collections::HashMap::new();
        if !items.is_empty() {
            let ids: Vec<String> =
                items.iter().map(|(_, row)| int(row, "id").map(|id| id.to_string())).collect::<Result<_, _>>()?;
            let sql = format!(
                "SELECT pump_id, MIN(on_date) AS on_date FROM appointments WHERE pump_id IN ({}) AND kind = 'refill' AND state IN ('requested', 'scheduled', 'arrived') AND on_date IS NOT NULL GROUP BY pump_id",
                ids.join(", ")
            );
            for row in sqlx::query(&sql).fetch_all(&mut *snapshot).await? {
                if let Some(on) = text_opt(&row, "on_date")? {
                    booked.insert(int(&row, "pump_id")?, on);
                }
            }
        }
        let mut out = Vec::with_capacity(items.len());
        for (bucket, row) in &items {
            let pump_id = int(row, "id")?;
            let booked_on = booked.get(&pump_id).cloned();
            let due_on = text_opt(row, "due_on")?;
            let digits = text(row, "nhs_number")?;
            out.push(json!({
                "pump_id": pump_id,
                "patient_id": int(row, "patient_id")?,
                "nhs_number": digits,
                "nhs_number_display": digits.parse::<NhsNumber>().map(|n| n.to_string()).unwrap_or_else(|_| digits.clone()),
                "patient_name": format!("{} {}", text(row, "given_name")?, text(row, "family_name")?),
                "bucket": bucket.as_str(),
                "refill_due_by": int_opt(row, "due_by_ms")?.map(instant_ms),
                "refill_due_on": due_on,
                "low_reservoir_alarm_at": int_opt(row, "alarm_at_ms")?.map(instant_ms),
                "drug_expires_at": int_opt(row, "expires_at_ms")?.map(instant_ms),
                "limited_by": text_opt(row, "limited_by")?,
                "unknown_reason": text_opt(row, "unknown_reason")?,
                "booked_on": booked_on,
                "booking_after_due": booking_after_due(booked_on.as_deref().and_then(|d| d.parse().ok()), due_on.as_deref().and_then(|d| d.parse().ok())),
                "high_risk": int(row, "high_risk")? == 1,
                "gap_review_pending": int(row, "gap_review_pending")? == 1,
            }));
        }
        let horizon = on.checked_add(jiff::Span::new().months(EOS_WITHIN_MONTHS)).unwrap_or(on).to_string();
        // Two indexed ranges (pumps_eri, pumps_eos) rather than an OR that scans every pump.
        let mut replacements = sqlx::query("SELECT pumps.id, pumps.patient_id, pumps.eri, pumps.eos_on, patients.nhs_number FROM pumps JOIN patients ON patients.id = pumps.patient_id WHERE pumps.implanted = 1 AND pumps.eri = 1 ORDER BY pumps.id LIMIT $1")
            .bind(SIDE_LIST_MAX).fetch_all(&mut *snapshot).await?;
        replacements.extend(
            sqlx::query("SELECT pumps.id, pumps.patient_id, pumps.eri, pumps.eos_on, patients.nhs_number FROM pumps JOIN patients ON patients.id = pumps.patient_id WHERE pumps.implanted = 1 AND pumps.eos_on <= $1 AND pumps.eri = 0 ORDER BY pumps.eos_on, pumps.id LIMIT $2")
                .bind(&horizon).bind(SIDE_LIST_MAX).fetch_all(&mut *snapshot).await?,
        );
        let mri = sqlx::query("SELECT appointments.id, appointments.patient_id, appointments.pump_id, appointments.state, appointments.on_date, patients.nhs_number FROM appointments JOIN patients ON patients.id = appointments.patient_id WHERE appointments.kind = 'post_mri_check' AND appointments.state IN ('requested', 'scheduled', 'arrived') ORDER BY appointments.on_date IS NULL, appointments.on_date, appointments.id LIMIT $1")
            .bind(SIDE_LIST_MAX).fetch_all(&mut *snapshot).await?;
        let gaps = sqlx::query("SELECT refills.id, refills.pump_id, refills.at_ms, refills.gap_nl, refills.gap_direction, pumps.patient_id, patients.nhs_number FROM refills JOIN pumps ON pumps.id = refills.pump_id JOIN patients ON patients.id = pumps.patient_id WHERE refills.gap_needs_review = 1 AND refills.reviewed_at_ms IS NULL ORDER BY refills.at_ms, refills.id LIMIT $1")
            .bind(SIDE_LIST_MAX).fetch_all(&mut *snapshot).await?;
        snapshot.commit().await?;
        Ok(json!({
            "on": on.to_string(),
            "counts": counts,
            "total": total,
            "limit": limit,
            "offset": offset,
            "items": out,
            "replacements_due": replacements.iter().map(|r| Ok(json!({
                "pump_id": int(r, "id")?, "patient_id": int(r, "patient_id")?, "nhs_number": text(r, "nhs_number")?,
                "elective_replacement": int(r, "eri")? == 1, "end_of_service_on": text_opt(r, "eos_on")?,
            }))).collect::<Result<Vec<_>, ClinicError>>()?,
            "post_mri_checks": mri.iter().map(|r| Ok(json!({
                "appointment_id": int(r, "id")?, "patient_id": int(r, "patient_id")?, "pump_id": int_opt(r, "pump_id")?,
                "nhs_number": text(r, "nhs_number")?, "state": text(r, "state")?, "on": text_opt(r, "on_date")?,
            }))).collect::<Result<Vec<_>, ClinicError>>()?,
            "gaps_to_review": gaps.iter().map(|r| Ok(json!({
                "refill_id": int(r, "id")?, "pump_id": int(r, "pump_id")?, "patient_id": int(r, "patient_id")?,
                "nhs_number": text(r, "nhs_number")?, "at": instant_ms(int(r, "at_ms")?),
                "gap_ml": crate::model::ml(itb_dose::Volume::nl(super::unsigned(r, "gap_nl")?)), "gap_direction": text_opt(r, "gap_direction")?,
            }))).collect::<Result<Vec<_>, ClinicError>>()?,
        }))
    }
}
