//! Every workflow of the record through the real router, on SQLite and (when
//! `ITB_TEST_POSTGRES_URL` is set) PostgreSQL: patients, pumps, prescriptions, refills,
//! interrogations, appointments, the worklist, the audit chain, `Idempotency-Key`, sign-in and a
//! patient's own record. Every expected figure is worked out by hand from the rules of issue 8
//! (and `itb-dose`'s refill and titration rules), with the arithmetic in a comment beside it.
//!
//! The fixtures used throughout (unless a test says otherwise):
//! - a SynchroMed II 20 mL pump: 20 mL reservoir, low-reservoir alarm at 2 mL, a refill gap
//!   over 1 mL held for review;
//! - baclofen 2000 micrograms/mL; 400 micrograms/day is 400 / 2000 = 0.2 mL/day, so a 20 mL
//!   fill reaches the 2 mL alarm after (20 - 2) / 0.2 = 90 days;
//! - drug stability 180 days from the fill, service margin 0 days;
//! - the service's zone is Europe/London: GMT (UTC+0) until 01:00 UTC on the last Sunday of
//!   March (28 Mar 2027), BST (UTC+1) until 01:00 UTC on the last Sunday of October (31 Oct 2027).

mod common;

use axum::http::StatusCode;
use common::{Reply, Service, backends, block, nhs_number};
use itb_clinic::rules::access::Role;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Asserts an RFC 9457 problem: the status, `application/problem+json`, the status in the body,
/// and exactly one field error naming `field`.
fn assert_problem(reply: &Reply, status: StatusCode, field: &str, rule: &str) {
    assert_eq!(reply.status, status, "{rule}: expected {status}, got {} {:?}", reply.status, reply.body);
    assert_eq!(
        reply.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "{rule}: a problem is application/problem+json"
    );
    assert_eq!(reply.body["status"], json!(status.as_u16()), "{rule}: {:?}", reply.body);
    let errors = reply.body["errors"].as_array().unwrap_or_else(|| panic!("{rule}: no errors in {:?}", reply.body));
    let fields: Vec<&str> = errors.iter().filter_map(|e| e["field"].as_str()).collect();
    assert_eq!(fields, vec![field], "{rule}: the problem names the field; body {:?}", reply.body);
}

/// Asserts a problem without field errors (401, 403, 404, 409, 429).
fn assert_plain_problem(reply: &Reply, status: StatusCode, rule: &str) {
    assert_eq!(reply.status, status, "{rule}: expected {status}, got {} {:?}", reply.status, reply.body);
    assert_eq!(
        reply.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "{rule}: a problem is application/problem+json"
    );
    assert_eq!(reply.body["status"], json!(status.as_u16()), "{rule}: {:?}", reply.body);
}

/// Asserts each named field of an object.
fn assert_fields(object: &Value, expected: &[(&str, Value)], context: &str) {
    for (key, value) in expected {
        assert_eq!(&object[*key], value, "{context}: field '{key}' of {object}");
    }
}

fn expect(reply: &Reply, status: StatusCode, context: &str) {
    assert_eq!(reply.status, status, "{context}: {:?}", reply.body);
}

async fn patch(service: &Service, path: &str, token: &str, body: Value) -> Reply {
    service.send("PATCH", path, Some(token), Some(body), &[]).await
}

/// Registers a patient with the given origin, level and date of birth: their id.
async fn register(service: &Service, token: &str, nhs: &str, origin: &str, level: Option<&str>) -> i64 {
    let reply = service
        .post(
            "/api/v1/patients",
            token,
            json!({"nhs_number": nhs, "given_name": "Sam", "family_name": "Hughes", "date_of_birth": "1975-06-02", "origin": origin, "injury_level": level}),
        )
        .await;
    expect(&reply, StatusCode::CREATED, "register");
    reply.body["id"].as_i64().expect("id")
}

/// A refill body.
#[allow(clippy::too_many_arguments)]
fn refill(at: &str, withdrawn: Value, added: Value, expires_on: &str, nurse: &str, checker: &str) -> Value {
    json!({
        "at": at,
        "volume_withdrawn_ml": withdrawn,
        "volume_added_ml": added,
        "concentration_micrograms_per_ml": 2000,
        "lot": "BX2291",
        "expires_on": expires_on,
        "nurse": nurse,
        "second_checker": checker,
    })
}

fn item_of(worklist: &Value, pump: i64) -> &Value {
    worklist["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["pump_id"] == json!(pump)))
        .unwrap_or_else(|| panic!("pump {pump} is not on the worklist {worklist}"))
}

fn pump_ids(worklist: &Value) -> Vec<i64> {
    worklist["items"].as_array().expect("items").iter().map(|i| i["pump_id"].as_i64().expect("pump_id")).collect()
}

// ---------------------------------------------------------------------------------------------
// 1. Patients
// ---------------------------------------------------------------------------------------------

#[test]
fn patients_check_digit_duplicates_high_risk_display_and_weight() {
    block(async {
        for service in backends().await {
            let b = service.backend;
            let nurse = service.user("nurse.patients", Role::NurseSpecialist).await;

            // 943 476 5919: 9*10 + 4*9 + 3*8 + 4*7 + 7*6 + 6*5 + 5*4 + 9*3 + 1*2 = 299;
            // 299 mod 11 = 2; 11 - 2 = 9: the check digit is 9, so ...5918 is refused.
            let wrong = service
                .post(
                    "/api/v1/patients",
                    &nurse,
                    json!({"nhs_number": "9434765918", "given_name": "Megan", "family_name": "Evans", "date_of_birth": "1980-03-14", "origin": "spinal", "injury_level": "T6"}),
                )
                .await;
            assert_problem(
                &wrong,
                StatusCode::UNPROCESSABLE_ENTITY,
                "nhs_number",
                &format!("{b}: a wrong check digit is refused"),
            );
            assert_eq!(wrong.body["errors"][0]["field"], json!("nhs_number"));

            // Registered with spaces as on the card; stored as 10 digits, shown 3-3-4.
            let created = service
                .post(
                    "/api/v1/patients",
                    &nurse,
                    json!({"nhs_number": "943 476 5919", "given_name": "Megan", "family_name": "Evans", "date_of_birth": "1980-03-14", "origin": "spinal", "injury_level": "T6", "weight_kg": 70.25}),
                )
                .await;
            expect(&created, StatusCode::CREATED, b);
            let t6 = created.body["id"].as_i64().expect("id");
            assert_eq!(
                created.headers.get("location").and_then(|v| v.to_str().ok()),
                Some(format!("/api/v1/patients/{t6}").as_str())
            );
            assert_fields(
                &created.body,
                &[
                    ("nhs_number", json!("9434765919")),
                    ("nhs_number_display", json!("943 476 5919")),
                    ("origin", json!("spinal")),
                    ("injury_level", json!("T6")),
                    // Withdrawal is more dangerous at T6 and above: T6 is high-risk.
                    ("high_risk", json!(true)),
                    ("weight_kg", json!(70.25)),
                ],
                &format!("{b}: registered T6 patient"),
            );

            // The same NHS number again (unbroken this time): a conflict.
            let duplicate = service
                .post(
                    "/api/v1/patients",
                    &nurse,
                    json!({"nhs_number": "9434765919", "given_name": "M", "family_name": "Evans", "date_of_birth": "1980-03-14", "origin": "cerebral"}),
                )
                .await;
            assert_plain_problem(&duplicate, StatusCode::CONFLICT, &format!("{b}: a duplicate NHS number is 409"));

            // T7 is below T6: not high-risk.
            let t7 = register(&service, &nurse, &nhs_number(2), "spinal", Some("T7")).await;
            let read = service.get(&format!("/api/v1/patients/{t7}"), &nurse).await;
            expect(&read, StatusCode::OK, b);
            assert_fields(
                &read.body,
                &[("injury_level", json!("T7")), ("high_risk", json!(false)), ("high_risk_reason", Value::Null)],
                &format!("{b}: T7 patient"),
            );
            let digits = nhs_number(2);
            let display = format!("{} {} {}", &digits[0..3], &digits[3..6], &digits[6..10]);
            assert_eq!(read.body["nhs_number_display"], json!(display), "{b}: 3-3-4");

            // PATCH the weight: only the weight changes.
            let patched = patch(
                &service,
                &format!("/api/v1/patients/{t7}"),
                &nurse,
                json!({"weight_kg": 82.4, "reason": "weighed in clinic"}),
            )
            .await;
            expect(&patched, StatusCode::OK, b);
            assert_fields(
                &patched.body,
                &[("weight_kg", json!(82.4)), ("injury_level", json!("T7")), ("high_risk", json!(false))],
                &format!("{b}: after PATCH weight"),
            );
            let reread = service.get(&format!("/api/v1/patients/{t7}"), &nurse).await;
            assert_eq!(reread.body["weight_kg"], json!(82.4), "{b}: the weight is kept");

            // A level moved to T5 (above T6) makes the patient high-risk.
            let raised = patch(
                &service,
                &format!("/api/v1/patients/{t7}"),
                &nurse,
                json!({"injury_level": "T5", "reason": "MRI shows a higher level"}),
            )
            .await;
            expect(&raised, StatusCode::OK, b);
            assert_eq!(raised.body["high_risk"], json!(true), "{b}: T5 is high-risk");

            // A level of injury is recorded only where the origin is spinal.
            let cerebral = service
                .post(
                    "/api/v1/patients",
                    &nurse,
                    json!({"nhs_number": nhs_number(3), "given_name": "Ann", "family_name": "Lee", "date_of_birth": "2001-02-03", "origin": "cerebral", "injury_level": "T4"}),
                )
                .await;
            assert_problem(
                &cerebral,
                StatusCode::UNPROCESSABLE_ENTITY,
                "injury_level",
                &format!("{b}: a level of injury only for spinal origin"),
            );

            // The T6 patient reads back as registered.
            let t6_read = service.get(&format!("/api/v1/patients/{t6}"), &nurse).await;
            assert_eq!(t6_read.body["high_risk"], json!(true), "{b}");
            assert_eq!(t6_read.body["pumps"], json!([]), "{b}: no pumps yet");
        }
    });
}

// ---------------------------------------------------------------------------------------------
// 2. Pumps
// ---------------------------------------------------------------------------------------------

#[test]
fn pumps_implant_refill_figures_margin_and_explant() {
    block(async {
        for service in backends().await {
            let b = service.backend;
            let nurse = service.user("nurse.pumps", Role::NurseSpecialist).await;
            let admin = service.user("admin.pumps", Role::Admin).await;
            let _consultant = service.user("dr.pumps", Role::Consultant).await;
            let p1 = service.patient(&nurse, &nhs_number(1), None).await;
            let p2 = service.patient(&nurse, &nhs_number(2), None).await;
            let p3 = service.patient(&nurse, &nhs_number(3), None).await;

            // 400 micrograms/day: 0.2 mL/day; (20 - 2) / 0.2 = 90 days to the alarm:
            // 25 Nov 2026 10:00 + 90 days = 23 Feb 2027 10:00 UTC (Nov 5 + Dec 31 + Jan 31 +
            // Feb 23 = 90). Stability: 25 Nov 2026 + 180 days = 24 May 2027 10:00 UTC (5 + 31 +
            // 31 + 28 + 31 + 30 + 24 = 180). The alarm comes first.
            let pump1 = service.pump(&nurse, p1, "NGV100001", "2026-11-25T10:00:00Z", 400).await;
            let view = service.get(&format!("/api/v1/pumps/{pump1}"), &nurse).await;
            expect(&view, StatusCode::OK, b);
            assert_fields(
                &view.body,
                &[
                    ("patient_id", json!(p1)),
                    ("serial", json!("NGV100001")),
                    ("profile", json!("synchromed-ii-20")),
                    ("state", json!("implanted")),
                    ("implanted_at", json!("2026-11-25T10:00:00Z")),
                    ("alarm_threshold_ml", json!(2)),
                    ("concentration_micrograms_per_ml", json!(2000)),
                    ("gap_review_pending", json!(false)),
                ],
                &format!("{b}: pump 1"),
            );
            assert_eq!(
                view.body["reservoir"],
                json!({"source": "implant", "at": "2026-11-25T10:00:00Z", "volume_ml": 20}),
                "{b}"
            );
            assert_fields(
                &view.body["refill"],
                &[
                    ("low_reservoir_alarm_at", json!("2027-02-23T10:00:00Z")),
                    ("refill_due_by", json!("2027-02-23T10:00:00Z")),
                    ("refill_due_on", json!("2027-02-23")),
                    ("drug_expires_at", json!("2027-05-24T10:00:00Z")),
                    ("limited_by", json!("low_reservoir_alarm")),
                    ("unknown_reason", Value::Null),
                    ("margin_days", json!(0)),
                ],
                &format!("{b}: pump 1 refill figures"),
            );
            assert_eq!(view.body["prescription"]["version"], json!(1), "{b}");
            assert_eq!(
                view.body["prescription"]["prescription"],
                json!({"mode": "simple_continuous", "dose": "400 micrograms/day"}),
                "{b}"
            );

            // The implant calls for a wound check 10 days after (5 Dec 2026) and the
            // neurosurgical follow-up at 6 weeks (25 Nov + 42 days = 6 Jan 2027).
            let follow_ups = service.get(&format!("/api/v1/appointments?patient_id={p1}"), &nurse).await;
            expect(&follow_ups, StatusCode::OK, b);
            let kinds: Vec<(Value, Value, Value)> = follow_ups.body["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|a| (a["kind"].clone(), a["on"].clone(), a["state"].clone()))
                .collect();
            assert_eq!(
                kinds,
                vec![
                    (json!("wound_check"), json!("2026-12-05"), json!("requested")),
                    (json!("neurosurgical_follow_up"), json!("2027-01-06"), json!("requested")),
                ],
                "{b}: follow-ups after surgery"
            );

            // 100 micrograms/day: 0.05 mL/day; 18 / 0.05 = 360 days to the alarm (25 Nov 2026 +
            // 360 days = 20 Nov 2027 10:00 UTC), later than the 180-day stability limit of
            // 24 May 2027 10:00 UTC: the drug's stability sets the date.
            let pump2 = service.pump(&nurse, p2, "NGV100002", "2026-11-25T10:00:00Z", 100).await;
            let view2 = service.get(&format!("/api/v1/pumps/{pump2}"), &nurse).await;
            assert_fields(
                &view2.body["refill"],
                &[
                    ("low_reservoir_alarm_at", json!("2027-11-20T10:00:00Z")),
                    ("drug_expires_at", json!("2027-05-24T10:00:00Z")),
                    ("refill_due_by", json!("2027-05-24T10:00:00Z")),
                    ("refill_due_on", json!("2027-05-24")),
                    ("limited_by", json!("drug_stability")),
                ],
                &format!("{b}: pump 2 limited by stability"),
            );

            // A pump programmed with a 4 mL alarm threshold: (20 - 4) / 0.2 = 80 days: 25 Nov
            // 2026 + 80 days = 13 Feb 2027 (5 + 31 + 31 + 13).
            let p4 = service.patient(&nurse, &nhs_number(4), None).await;
            let own_threshold = service
                .post(
                    &format!("/api/v1/patients/{p4}/pumps"),
                    &nurse,
                    json!({"profile": "synchromed-ii-20", "serial": "NGV100004", "implanted_at": "2026-11-25T10:00:00Z", "catheter_cm": 50, "catheter_tip_level": "T10", "fill_ml": 20, "concentration_micrograms_per_ml": 2000, "prescription": {"mode": "simple_continuous", "dose": "400 micrograms/day"}, "alarm_threshold_ml": 4}),
                )
                .await;
            expect(&own_threshold, StatusCode::CREATED, b);
            assert_fields(
                &own_threshold.body,
                &[("alarm_threshold_ml", json!(4)), ("catheter_tip_level", json!("T10"))],
                b,
            );
            assert_fields(
                &own_threshold.body["refill"],
                &[("low_reservoir_alarm_at", json!("2027-02-13T10:00:00Z")), ("refill_due_on", json!("2027-02-13"))],
                &format!("{b}: the pump's own alarm threshold sets the date"),
            );
            // A second pump for a patient whose pump is still implanted is refused.
            let second = service
                .post(
                    &format!("/api/v1/patients/{p4}/pumps"),
                    &nurse,
                    json!({"profile": "synchromed-ii-20", "serial": "NGV100005", "implanted_at": "2026-11-25T10:00:00Z", "catheter_cm": 50, "fill_ml": 20, "concentration_micrograms_per_ml": 2000, "prescription": {"mode": "simple_continuous", "dose": "400 micrograms/day"}}),
                )
                .await;
            assert_plain_problem(&second, StatusCode::CONFLICT, &format!("{b}: one implanted pump per patient"));
            let explant4 = service
                .post(
                    &format!("/api/v1/pumps/{}/explant", own_threshold.body["id"]),
                    &nurse,
                    json!({"at": "2026-11-25T10:00:00Z", "reason": "revision of the catheter"}),
                )
                .await;
            expect(&explant4, StatusCode::OK, b);

            // The patient's record lists the pump.
            let record = service.get(&format!("/api/v1/patients/{p1}"), &nurse).await;
            assert_eq!(record.body["pumps"][0]["id"], json!(pump1), "{b}");

            // A third pump, explanted at once.
            let pump3 = service.pump(&nurse, p3, "NGV100003", "2026-11-25T10:00:00Z", 400).await;
            let before = service.get("/api/v1/worklist?on=2026-11-25", &nurse).await;
            expect(&before, StatusCode::OK, b);
            assert_eq!(
                before.body["counts"],
                json!({"overdue": 0, "unknown": 0, "due_7": 0, "due_28": 0, "later": 3}),
                "{b}"
            );
            let explanted = service
                .post(
                    &format!("/api/v1/pumps/{pump3}/explant"),
                    &nurse,
                    json!({"at": "2026-11-25T10:00:00Z", "reason": "infection of the pump pocket"}),
                )
                .await;
            expect(&explanted, StatusCode::OK, b);
            assert_fields(
                &explanted.body,
                &[
                    ("state", json!("explanted")),
                    ("explanted_at", json!("2026-11-25T10:00:00Z")),
                    ("explant_reason", json!("infection of the pump pocket")),
                ],
                &format!("{b}: explant"),
            );
            let after = service.get("/api/v1/worklist?on=2026-11-25", &nurse).await;
            assert_eq!(
                after.body["counts"],
                json!({"overdue": 0, "unknown": 0, "due_7": 0, "due_28": 0, "later": 2}),
                "{b}: an explanted pump leaves the worklist"
            );
            // Later bucket by date: pump 1 (23 Feb 2027) then pump 2 (24 May 2027).
            assert_eq!(pump_ids(&after.body), vec![pump1, pump2], "{b}: an explanted pump leaves the worklist");
            // An explanted pump cannot be refilled.
            let refused = service
                .post(
                    &format!("/api/v1/pumps/{pump3}/refills"),
                    &nurse,
                    refill("2026-11-25T10:01:00Z", json!(20), json!(20), "2027-06-30", "nurse.pumps", "dr.pumps"),
                )
                .await;
            assert_plain_problem(&refused, StatusCode::CONFLICT, &format!("{b}: an explanted pump takes no refill"));

            // A margin of 7 days (settings, admin) moves every due date 7 days earlier; the
            // alarm stays: 23 Feb 2027 - 7 days = 16 Feb 2027; 24 May 2027 - 7 = 17 May 2027.
            let settings =
                service.send("PUT", "/api/v1/settings", Some(&admin), Some(json!({"margin_days": 7})), &[]).await;
            expect(&settings, StatusCode::OK, b);
            let view = service.get(&format!("/api/v1/pumps/{pump1}"), &nurse).await;
            assert_fields(
                &view.body["refill"],
                &[
                    ("low_reservoir_alarm_at", json!("2027-02-23T10:00:00Z")),
                    ("refill_due_by", json!("2027-02-16T10:00:00Z")),
                    ("refill_due_on", json!("2027-02-16")),
                    ("margin_days", json!(7)),
                ],
                &format!("{b}: margin of 7 days"),
            );
            let view2 = service.get(&format!("/api/v1/pumps/{pump2}"), &nurse).await;
            assert_fields(
                &view2.body["refill"],
                &[("refill_due_by", json!("2027-05-17T10:00:00Z")), ("refill_due_on", json!("2027-05-17"))],
                &format!("{b}: margin of 7 days, stability-limited"),
            );
        }
    });
}

// ---------------------------------------------------------------------------------------------
// 3. Prescriptions
// ---------------------------------------------------------------------------------------------

#[test]
fn prescriptions_versions_titration_override_and_the_moved_date() {
    block(async {
        for service in backends().await {
            let b = service.backend;
            let mut nurse = service.user("nurse.rx", Role::NurseSpecialist).await;
            service.user("dr.rx", Role::Consultant).await;
            // A spinal adult (born 1980-03-14), not high-risk.
            let patient = service.patient(&nurse, &nhs_number(1), Some("T10")).await;
            let pump = service.pump(&nurse, patient, "NGV200001", "2026-11-25T10:00:00Z", 400).await;
            let rx = |dose: u32| json!({"mode": "simple_continuous", "dose": format!("{dose} micrograms/day")});
            let path = format!("/api/v1/pumps/{pump}/prescriptions");

            // Version 2, 48 h after the implant: 400 -> 480 is +20 %, within the 10-30 % step
            // for adults of spinal origin.
            service.set_now("2026-11-27T10:00:00Z");
            // Tokens last 12 hours: sign in again on the new day.
            nurse = service.sign_in("nurse.rx").await;
            let mut consultant = service.sign_in("dr.rx").await;
            let v2 = service
                .post(
                    &path,
                    &consultant,
                    json!({"prescription": rx(480), "reason": "spasms at night persist", "at": "2026-11-27T10:00:00Z"}),
                )
                .await;
            expect(&v2, StatusCode::CREATED, b);
            assert_fields(
                &v2.body,
                &[
                    ("pump_id", json!(pump)),
                    ("version", json!(2)),
                    ("prescription", rx(480)),
                    ("largest_day_micrograms", json!(480)),
                    ("at", json!("2026-11-27T10:00:00Z")),
                    ("reason", json!("spasms at night persist")),
                    ("verdict", json!("within_guideline")),
                    ("override_reason", Value::Null),
                ],
                &format!("{b}: version 2"),
            );
            // The reservoir at 27 Nov 10:00: 20 - 2 days x 0.2 = 19.6 mL; at 480 micrograms/day
            // (0.24 mL/day) the alarm is (19.6 - 2) / 0.24 = 73 1/3 days later = 73 days 8 h:
            // 27 Nov 2026 10:00 + 73 days = 8 Feb 2027 10:00 (3 + 31 + 31 + 8), + 8 h = 18:00 UTC.
            let view = service.get(&format!("/api/v1/pumps/{pump}"), &nurse).await;
            assert_fields(
                &view.body["refill"],
                &[("low_reservoir_alarm_at", json!("2027-02-08T18:00:00Z")), ("refill_due_on", json!("2027-02-08"))],
                &format!("{b}: the date moves with version 2"),
            );

            // 48 h later: 480 -> 720 is +50 %, more than the 30 % step: a danger that needs a
            // written override reason.
            service.set_now("2026-11-29T10:00:00Z");
            nurse = service.sign_in("nurse.rx").await;
            consultant = service.sign_in("dr.rx").await;
            let body = json!({"prescription": rx(720), "reason": "spasms still severe", "at": "2026-11-29T10:00:00Z"});
            let refused = service.post(&path, &consultant, body.clone()).await;
            assert_problem(
                &refused,
                StatusCode::UNPROCESSABLE_ENTITY,
                "override_reason",
                &format!("{b}: an increase above the guideline needs override_reason"),
            );
            assert_eq!(
                refused.body["review"]["titration"]["verdict"],
                json!("exceeds_guideline"),
                "{b}: {}",
                refused.body
            );
            assert_eq!(refused.body["review"]["titration"]["band_percent"], json!([10, 30]), "{b}");
            assert_eq!(refused.body["review"]["needs_override"], json!(true), "{b}");
            assert_eq!(refused.body["review"]["new"]["largest_day_micrograms"], json!(720), "{b}");
            assert_eq!(refused.body["review"]["old"]["largest_day_micrograms"], json!(480), "{b}");

            // An override reason of a word or two is not a reason.
            let mut short = body.clone();
            short["override_reason"] = json!("ok go");
            let refused_short = service.post(&path, &consultant, short).await;
            assert_problem(
                &refused_short,
                StatusCode::UNPROCESSABLE_ENTITY,
                "override_reason",
                &format!("{b}: an override reason needs at least 10 characters of words"),
            );
            let listed = service.get(&path, &nurse).await;
            assert_eq!(listed.body["total"], json!(2), "{b}: a refused prescription is not recorded");

            let reason = "Severe spasms despite two increases; reviewed in clinic with the patient";
            let mut overridden = body.clone();
            overridden["override_reason"] = json!(reason);
            let v3 = service.post(&path, &consultant, overridden).await;
            expect(&v3, StatusCode::CREATED, b);
            assert_fields(
                &v3.body,
                &[
                    ("version", json!(3)),
                    ("prescription", rx(720)),
                    ("verdict", json!("exceeds_guideline")),
                    ("override_reason", json!(reason)),
                    ("reason", json!("spasms still severe")),
                ],
                &format!("{b}: version 3 with override"),
            );
            assert_eq!(
                v3.body["review"]["titration"]["verdict"],
                json!("exceeds_guideline"),
                "{b}: the review is kept"
            );

            // The reservoir at 29 Nov 10:00: 19.6 - 2 days x 0.24 = 19.12 mL; at 720
            // micrograms/day (0.36 mL/day) the alarm is 17.12 / 0.36 days = 4,108,800,000 ms
            // = 47 days 13 h 20 min: 29 Nov 2026 10:00 + 47 days = 15 Jan 2027 10:00, + 13:20 =
            // 23:20 UTC (GMT: the same date in London).
            let view = service.get(&format!("/api/v1/pumps/{pump}"), &nurse).await;
            assert_fields(
                &view.body["refill"],
                &[
                    ("low_reservoir_alarm_at", json!("2027-01-15T23:20:00Z")),
                    ("refill_due_by", json!("2027-01-15T23:20:00Z")),
                    ("refill_due_on", json!("2027-01-15")),
                    ("drug_expires_at", json!("2027-05-24T10:00:00Z")),
                    ("limited_by", json!("low_reservoir_alarm")),
                ],
                &format!("{b}: the date moves with version 3"),
            );
            assert_eq!(view.body["prescription"]["version"], json!(3), "{b}");

            // Every version, newest first.
            let listed = service.get(&path, &nurse).await;
            expect(&listed, StatusCode::OK, b);
            assert_eq!(listed.body["total"], json!(3), "{b}");
            let summary: Vec<(Value, Value, Value, Value)> = listed.body["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|p| {
                    (p["version"].clone(), p["largest_day_micrograms"].clone(), p["reason"].clone(), p["at"].clone())
                })
                .collect();
            assert_eq!(
                summary,
                vec![
                    (json!(3), json!(720), json!("spasms still severe"), json!("2026-11-29T10:00:00Z")),
                    (json!(2), json!(480), json!("spasms at night persist"), json!("2026-11-27T10:00:00Z")),
                    (json!(1), json!(400), json!("implant"), json!("2026-11-25T10:00:00Z")),
                ],
                "{b}: every version newest first"
            );
            // Pagination of the list.
            let page = service.get(&format!("{path}?limit=1&offset=1"), &nurse).await;
            assert_eq!(page.body["total"], json!(3), "{b}");
            assert_eq!(page.body["items"].as_array().map(Vec::len), Some(1), "{b}");
            assert_eq!(page.body["items"][0]["version"], json!(2), "{b}");
        }
    });
}

// ---------------------------------------------------------------------------------------------
// 4. Refills
// ---------------------------------------------------------------------------------------------

#[test]
fn refills_two_signers_expiry_gap_review_and_worklist() {
    block(async {
        for service in backends().await {
            let b = service.backend;
            let mut nurse = service.user("nurse.refill", Role::NurseSpecialist).await;
            let _pharmacist = service.user("pharm.refill", Role::Pharmacist).await;
            service.user("dr.refill", Role::Consultant).await;
            service.user("physio.refill", Role::Physiotherapist).await;
            let _admin = service.user("admin.refill", Role::Admin).await;
            let pa = service.patient(&nurse, &nhs_number(1), None).await;
            let pb = service.patient(&nurse, &nhs_number(2), None).await;
            let pump_a = service.pump(&nurse, pa, "NGV300001", "2026-11-25T10:00:00Z", 400).await;
            let pump_b = service.pump(&nurse, pb, "NGV300002", "2026-11-25T10:00:00Z", 400).await;
            let path_a = format!("/api/v1/pumps/{pump_a}/refills");

            // 30 days after the implant: expected 20 - 30 x 0.2 = 14 mL.
            service.set_now("2026-12-25T10:00:00Z");
            // Tokens last 12 hours: sign in again on the new day.
            nurse = service.sign_in("nurse.refill").await;
            let consultant = service.sign_in("dr.refill").await;
            let physio = service.sign_in("physio.refill").await;
            let at = "2026-12-25T10:00:00Z";

            let same = service
                .post(&path_a, &nurse, refill(at, json!(14), json!(20), "2027-06-30", "nurse.refill", "nurse.refill"))
                .await;
            assert_problem(
                &same,
                StatusCode::UNPROCESSABLE_ENTITY,
                "second_checker",
                &format!("{b}: two different people sign every refill"),
            );

            let admin_checks = service
                .post(&path_a, &nurse, refill(at, json!(14), json!(20), "2027-06-30", "nurse.refill", "admin.refill"))
                .await;
            assert_problem(
                &admin_checks,
                StatusCode::UNPROCESSABLE_ENTITY,
                "second_checker",
                &format!("{b}: the second checker is a clinician"),
            );

            // Expired the day before the refill.
            let expired = service
                .post(&path_a, &nurse, refill(at, json!(14), json!(20), "2026-12-24", "nurse.refill", "pharm.refill"))
                .await;
            assert_problem(
                &expired,
                StatusCode::UNPROCESSABLE_ENTITY,
                "expires_on",
                &format!("{b}: expired drug is refused"),
            );

            let none = service.get(&path_a, &nurse).await;
            assert_eq!(none.body["total"], json!(0), "{b}: a refused refill is not recorded");

            // Withdrawn 12.5 mL where 14 mL was expected: a gap of 1.5 mL LESS, over the 1 mL a
            // 20 mL pump allows: held for review. The new fill of 20 mL reaches the alarm 90 days
            // later: 25 Dec 2026 10:00 + 90 days = 25 Mar 2027 10:00 UTC (6 + 31 + 28 + 25 = 90;
            // GMT, so the same date in London); stability to 23 Jun 2027.
            let recorded = service
                .post(&path_a, &nurse, refill(at, json!(12.5), json!(20), "2027-06-30", "nurse.refill", "pharm.refill"))
                .await;
            expect(&recorded, StatusCode::CREATED, b);
            let refill_id = recorded.body["id"].as_i64().expect("id");
            assert_fields(
                &recorded.body,
                &[
                    ("pump_id", json!(pump_a)),
                    ("at", json!(at)),
                    ("volume_expected_ml", json!(14)),
                    ("volume_withdrawn_ml", json!(12.5)),
                    ("gap_ml", json!(1.5)),
                    ("gap_direction", json!("less")),
                    ("gap_limit_ml", json!(1)),
                    ("gap_needs_review", json!(true)),
                    ("gap_reviewed", json!(false)),
                    ("volume_added_ml", json!(20)),
                    ("concentration_micrograms_per_ml", json!(2000)),
                    ("lot", json!("BX2291")),
                    ("expires_on", json!("2027-06-30")),
                    ("low_reservoir_alarm_at", json!("2027-03-25T10:00:00Z")),
                    ("refill_due_by", json!("2027-03-25T10:00:00Z")),
                    ("refill_due_on", json!("2027-03-25")),
                    ("limited_by", json!("low_reservoir_alarm")),
                    ("nurse", json!("nurse.refill")),
                    ("second_checker", json!("pharm.refill")),
                    ("place", json!("clinic")),
                ],
                &format!("{b}: refill with a gap"),
            );
            let view = service.get(&format!("/api/v1/pumps/{pump_a}"), &nurse).await;
            assert_eq!(view.body["gap_review_pending"], json!(true), "{b}: the pump is flagged until the review");
            assert_eq!(view.body["reservoir"], json!({"source": "refill", "at": at, "volume_ml": 20}), "{b}");
            assert_fields(
                &view.body["refill"],
                &[
                    ("refill_due_by", json!("2027-03-25T10:00:00Z")),
                    ("refill_due_on", json!("2027-03-25")),
                    // 25 Dec 2026 + 180 days = 23 Jun 2027 (6 + 31 + 28 + 31 + 30 + 31 + 23).
                    ("drug_expires_at", json!("2027-06-23T10:00:00Z")),
                ],
                &format!("{b}: pump after the refill"),
            );

            // Pump B: withdrawn 13 mL of 14 expected, a gap of exactly 1 mL: within the limit.
            let within = service
                .post(
                    &format!("/api/v1/pumps/{pump_b}/refills"),
                    &nurse,
                    refill(at, json!(13), json!(20), "2027-06-30", "nurse.refill", "dr.refill"),
                )
                .await;
            expect(&within, StatusCode::CREATED, b);
            assert_fields(
                &within.body,
                &[("volume_expected_ml", json!(14)), ("gap_ml", json!(1)), ("gap_needs_review", json!(false))],
                &format!("{b}: a gap of exactly 1 mL"),
            );
            let view_b = service.get(&format!("/api/v1/pumps/{pump_b}"), &nurse).await;
            assert_eq!(view_b.body["gap_review_pending"], json!(false), "{b}");

            // The worklist lists the gap to review.
            let worklist = service.get("/api/v1/worklist?on=2026-12-25", &nurse).await;
            expect(&worklist, StatusCode::OK, b);
            assert_eq!(
                worklist.body["gaps_to_review"],
                json!([{"refill_id": refill_id, "pump_id": pump_a, "patient_id": pa, "nhs_number": nhs_number(1), "at": at, "gap_ml": 1.5, "gap_direction": "less"}]),
                "{b}: the gap awaits review"
            );
            assert_eq!(item_of(&worklist.body, pump_a)["gap_review_pending"], json!(true), "{b}");

            // A physiotherapist may not record the review; a note of a word is refused.
            let review_path = format!("/api/v1/refills/{refill_id}/review");
            let physio_review = service.post(&review_path, &physio, json!({"note": "looked at it, all fine"})).await;
            assert_plain_problem(
                &physio_review,
                StatusCode::FORBIDDEN,
                &format!("{b}: a physiotherapist does not review gaps"),
            );
            let short = service.post(&review_path, &consultant, json!({"note": "ok"})).await;
            assert_problem(&short, StatusCode::UNPROCESSABLE_ENTITY, "note", &format!("{b}: the review has a note"));

            service.set_now("2026-12-25T11:00:00Z");
            let note = "Patient took PTM boluses; the pump log accounts for the 1.5 mL";
            let reviewed = service.post(&review_path, &consultant, json!({"note": note})).await;
            expect(&reviewed, StatusCode::OK, b);
            assert_fields(
                &reviewed.body,
                &[
                    ("gap_needs_review", json!(true)),
                    ("gap_reviewed", json!(true)),
                    ("gap_review", json!({"at": "2026-12-25T11:00:00Z", "by": "dr.refill", "note": note})),
                ],
                &format!("{b}: reviewed"),
            );
            let view = service.get(&format!("/api/v1/pumps/{pump_a}"), &nurse).await;
            assert_eq!(view.body["gap_review_pending"], json!(false), "{b}: the review clears the flag");
            let worklist = service.get("/api/v1/worklist?on=2026-12-25", &nurse).await;
            assert_eq!(worklist.body["gaps_to_review"], json!([]), "{b}: no gap left to review");
            assert_eq!(item_of(&worklist.body, pump_a)["gap_review_pending"], json!(false), "{b}");
            let again = service.post(&review_path, &consultant, json!({"note": note})).await;
            assert_plain_problem(&again, StatusCode::CONFLICT, &format!("{b}: a gap is reviewed once"));

            // The refill reads back the same.
            let read = service.get(&format!("/api/v1/refills/{refill_id}"), &nurse).await;
            expect(&read, StatusCode::OK, b);
            assert_eq!(read.body, reviewed.body, "{b}");
            let listed = service.get(&path_a, &nurse).await;
            assert_eq!(listed.body["total"], json!(1), "{b}");
            assert_eq!(listed.body["items"][0]["id"], json!(refill_id), "{b}");
        }
    });
}

// ---------------------------------------------------------------------------------------------
// 5. The refill-due date across the changes to and from British Summer Time
// ---------------------------------------------------------------------------------------------

/// Refills a pump implanted at `implanted` with a new 20 mL fill at `at` (withdrawing exactly
/// `expected` mL) and checks the refill-due figures in the refill, the pump and the worklist.
#[allow(clippy::too_many_arguments)]
async fn refill_across_clock_change(
    service: &Service,
    n: u32,
    at: &str,
    expected: Value,
    alarm: &str,
    due_on: &str,
    rule: &str,
) -> i64 {
    let b = service.backend;
    // Tokens last 12 hours: sign in at each new clock.
    let nurse = &service.sign_in("nurse.bst").await;
    let patient = register(service, nurse, &nhs_number(n), "spinal", None).await;
    let implanted = service.clock.now().to_string();
    let pump = service.pump(nurse, patient, &format!("NGV4{n:05}"), &implanted, 400).await;
    service.set_now(at);
    let nurse = &service.sign_in("nurse.bst").await;
    let recorded = service
        .post(
            &format!("/api/v1/pumps/{pump}/refills"),
            nurse,
            refill(at, expected.clone(), json!(20), "2028-01-31", "nurse.bst", "pharm.bst"),
        )
        .await;
    expect(&recorded, StatusCode::CREATED, &format!("{b}: {rule}"));
    assert_fields(
        &recorded.body,
        &[
            ("volume_expected_ml", expected),
            ("gap_ml", json!(0)),
            ("gap_needs_review", json!(false)),
            ("low_reservoir_alarm_at", json!(alarm)),
            ("refill_due_by", json!(alarm)),
            ("refill_due_on", json!(due_on)),
            ("limited_by", json!("low_reservoir_alarm")),
        ],
        &format!("{b}: {rule}"),
    );
    let view = service.get(&format!("/api/v1/pumps/{pump}"), nurse).await;
    assert_fields(
        &view.body["refill"],
        &[("low_reservoir_alarm_at", json!(alarm)), ("refill_due_by", json!(alarm)), ("refill_due_on", json!(due_on))],
        &format!("{b}: {rule} (pump)"),
    );
    pump
}

#[test]
fn refill_due_dates_across_the_change_to_and_from_british_summer_time() {
    block(async {
        for service in backends().await {
            let b = service.backend;
            service.user("nurse.bst", Role::NurseSpecialist).await;
            let _pharmacist = service.user("pharm.bst", Role::Pharmacist).await;

            // Spring: the clocks go forward at 01:00 UTC on Sunday 28 Mar 2027.
            // (a) Implanted 25 Nov 2026 10:00; refilled 27 Dec 2026 23:30 UTC, 32 days 13.5 h
            //     later: 32.5625 x 0.2 = 6.5125 mL gone, 13.4875 mL expected. The alarm comes
            //     90 days after the refill: 27 Mar 2027 23:30 UTC (4 + 31 + 28 + 27 = 90), still
            //     GMT: due on 27 Mar 2027 in London.
            let spring_gmt = refill_across_clock_change(
                &service,
                31,
                "2026-12-27T23:30:00Z",
                json!(13.4875),
                "2027-03-27T23:30:00Z",
                "2027-03-27",
                "alarm at 23:30 UTC the night before the clocks go forward (GMT)",
            )
            .await;
            // (b) Refilled 28 Dec 2026 23:30 UTC, 33 days 13.5 h after the implant
            //     (25 Nov 10:00 set back on the clock): 33.5625 x 0.2 = 6.7125 mL gone, 13.2875
            //     expected. Alarm 28 Mar 2027 23:30 UTC, after 01:00 UTC: BST, 00:30 on
            //     29 Mar 2027 in London: due on 29 Mar 2027.
            service.set_now(common::START);
            let spring_bst = refill_across_clock_change(
                &service,
                32,
                "2026-12-28T23:30:00Z",
                json!(13.2875),
                "2027-03-28T23:30:00Z",
                "2027-03-29",
                "alarm at 23:30 UTC after the clocks went forward (BST: the next day in London)",
            )
            .await;
            // On 29 Mar 2027 (London) pump (a) is overdue and pump (b) is due that day.
            let nurse = service.sign_in("nurse.bst").await;
            let worklist = service.get("/api/v1/worklist?on=2027-03-29", &nurse).await;
            expect(&worklist, StatusCode::OK, b);
            assert_eq!(item_of(&worklist.body, spring_gmt)["bucket"], json!("overdue"), "{b}: due 27 Mar, seen 29 Mar");
            assert_eq!(
                item_of(&worklist.body, spring_bst)["bucket"],
                json!("due_7"),
                "{b}: due 29 Mar (London), seen 29 Mar"
            );
            assert_eq!(item_of(&worklist.body, spring_bst)["refill_due_on"], json!("2027-03-29"), "{b}");
            assert_eq!(item_of(&worklist.body, spring_bst)["refill_due_by"], json!("2027-03-28T23:30:00Z"), "{b}");
            // Without `on` the worklist is for today in London: at 23:30 UTC on 28 Mar 2027 it
            // is 00:30 BST on 29 Mar.
            service.set_now("2027-03-28T23:30:00Z");
            let nurse = service.sign_in("nurse.bst").await;
            let today = service.get("/api/v1/worklist", &nurse).await;
            assert_eq!(today.body["on"], json!("2027-03-29"), "{b}: today is the London date");
            assert_eq!(item_of(&today.body, spring_bst)["bucket"], json!("due_7"), "{b}");

            // Autumn: the clocks go back at 01:00 UTC on Sunday 31 Oct 2027.
            // (c) Implanted 1 Jul 2027 10:00; refilled 1 Aug 2027 23:30 UTC, 31 days 13.5 h
            //     later: 31.5625 x 0.2 = 6.3125 mL gone, 13.6875 expected. Alarm 90 days later:
            //     30 Oct 2027 23:30 UTC (30 + 30 + 30 = 90: 31 Aug, 30 Sep, 30 Oct), BST: 00:30
            //     on 31 Oct in London: due on 31 Oct 2027.
            service.set_now("2027-07-01T10:00:00Z");
            let autumn_bst = refill_across_clock_change(
                &service,
                33,
                "2027-08-01T23:30:00Z",
                json!(13.6875),
                "2027-10-30T23:30:00Z",
                "2027-10-31",
                "alarm at 23:30 UTC before the clocks go back (BST: the next day in London)",
            )
            .await;
            // (d) Implanted 1 Jul 2027 10:00; refilled 2 Aug 2027 23:30 UTC, 32.5625 days later:
            //     6.5125 mL gone, 13.4875 expected. Alarm 31 Oct 2027 23:30 UTC, after the clocks
            //     went back: GMT, due on 31 Oct 2027 (not 1 Nov).
            service.set_now("2027-07-01T10:00:00Z");
            let autumn_gmt = refill_across_clock_change(
                &service,
                34,
                "2027-08-02T23:30:00Z",
                json!(13.4875),
                "2027-10-31T23:30:00Z",
                "2027-10-31",
                "alarm at 23:30 UTC after the clocks went back (GMT: the same day in London)",
            )
            .await;
            // On 31 Oct 2027 both are due that day; on 1 Nov both are overdue.
            let nurse = service.sign_in("nurse.bst").await;
            let worklist = service.get("/api/v1/worklist?on=2027-10-31", &nurse).await;
            assert_eq!(item_of(&worklist.body, autumn_bst)["refill_due_on"], json!("2027-10-31"), "{b}");
            assert_eq!(item_of(&worklist.body, autumn_gmt)["refill_due_on"], json!("2027-10-31"), "{b}");
            assert_eq!(item_of(&worklist.body, autumn_bst)["bucket"], json!("due_7"), "{b}");
            assert_eq!(item_of(&worklist.body, autumn_gmt)["bucket"], json!("due_7"), "{b}");
            let worklist = service.get("/api/v1/worklist?on=2027-11-01", &nurse).await;
            assert_eq!(item_of(&worklist.body, autumn_bst)["bucket"], json!("overdue"), "{b}");
            assert_eq!(item_of(&worklist.body, autumn_gmt)["bucket"], json!("overdue"), "{b}");
        }
    });
}

// ---------------------------------------------------------------------------------------------
// 6. Interrogations
// ---------------------------------------------------------------------------------------------

#[test]
fn interrogations_are_stored_as_received_and_the_latest_moves_the_date() {
    block(async {
        for service in backends().await {
            let b = service.backend;
            let mut nurse = service.user("nurse.interrogate", Role::NurseSpecialist).await;
            let patient = service.patient(&nurse, &nhs_number(1), None).await;
            let pump = service.pump(&nurse, patient, "NGV500001", "2026-11-25T10:00:00Z", 400).await;
            let path = format!("/api/v1/pumps/{pump}/interrogations");

            // 10 days after the implant the pump reports 16 mL (the record expected 18): the
            // alarm is (16 - 2) / 0.2 = 70 days later: 5 Dec 2026 10:00 + 70 days = 13 Feb 2027
            // 10:00 UTC (26 + 31 + 13 = 70). The drug went in at the implant: stability still to
            // 24 May 2027 10:00 UTC.
            service.set_now("2026-12-05T10:00:00Z");
            nurse = service.sign_in("nurse.interrogate").await;
            let reported = json!({
                "reservoir_ml": 16,
                "model": "8637-20",
                "firmware": "2.3.1",
                "alarms": [],
                "therapy": {"mode": "simple_continuous", "dose": "400 micrograms/day"},
                "note": "read in clinic, room 2",
            });
            let recorded =
                service.post(&path, &nurse, json!({"at": "2026-12-05T10:00:00Z", "reported": reported})).await;
            expect(&recorded, StatusCode::CREATED, b);
            assert_eq!(recorded.body["reported"], reported, "{b}: as received");
            assert_eq!(recorded.body["latest"], json!(true), "{b}");
            let view = service.get(&format!("/api/v1/pumps/{pump}"), &nurse).await;
            assert_eq!(
                view.body["reservoir"],
                json!({"source": "interrogation", "at": "2026-12-05T10:00:00Z", "volume_ml": 16}),
                "{b}"
            );
            assert_fields(
                &view.body["refill"],
                &[
                    ("low_reservoir_alarm_at", json!("2027-02-13T10:00:00Z")),
                    ("refill_due_by", json!("2027-02-13T10:00:00Z")),
                    ("refill_due_on", json!("2027-02-13")),
                    ("drug_expires_at", json!("2027-05-24T10:00:00Z")),
                    ("limited_by", json!("low_reservoir_alarm")),
                ],
                &format!("{b}: the latest interrogation moves the date"),
            );

            // An older reading (1 Dec) is kept but does not move the date.
            let older = json!({"reservoir_ml": 12.345678, "model": "8637-20"});
            let recorded_older =
                service.post(&path, &nurse, json!({"at": "2026-12-01T10:00:00Z", "reported": older})).await;
            expect(&recorded_older, StatusCode::CREATED, b);
            assert_eq!(recorded_older.body["latest"], json!(false), "{b}");
            let view = service.get(&format!("/api/v1/pumps/{pump}"), &nurse).await;
            assert_eq!(
                view.body["refill"]["refill_due_by"],
                json!("2027-02-13T10:00:00Z"),
                "{b}: an older reading moves nothing"
            );

            // A reading without reservoir_ml is refused naming the field.
            let missing = service
                .post(&path, &nurse, json!({"at": "2026-12-05T10:01:00Z", "reported": {"model": "8637-20"}}))
                .await;
            assert_problem(
                &missing,
                StatusCode::UNPROCESSABLE_ENTITY,
                "reported.reservoir_ml",
                &format!("{b}: reservoir_ml is required"),
            );

            let listed = service.get(&path, &nurse).await;
            expect(&listed, StatusCode::OK, b);
            assert_eq!(listed.body["total"], json!(2), "{b}");
            let items = listed.body["items"].as_array().expect("items");
            assert_eq!(items.len(), 2, "{b}");
            assert_eq!(items[0]["at"], json!("2026-12-05T10:00:00Z"), "{b}: newest first");
            assert_eq!(items[0]["reported"], reported, "{b}: stored as received");
            assert_eq!(items[1]["at"], json!("2026-12-01T10:00:00Z"), "{b}");
            assert_eq!(items[1]["reported"], older, "{b}: stored as received");
        }
    });
}

// ---------------------------------------------------------------------------------------------
// 7. Appointments
// ---------------------------------------------------------------------------------------------

#[test]
fn appointments_move_through_their_states_with_who_and_why() {
    block(async {
        for service in backends().await {
            let b = service.backend;
            let mut nurse = service.user("nurse.appt", Role::NurseSpecialist).await;
            service.user("physio.appt", Role::Physiotherapist).await;
            let patient = service.patient(&nurse, &nhs_number(1), None).await;
            // Due 23 Feb 2027 (90 days after the implant).
            let pump = service.pump(&nurse, patient, "NGV600001", "2026-11-25T10:00:00Z", 400).await;

            let booked = service
                .post(
                    "/api/v1/appointments",
                    &nurse,
                    json!({"patient_id": patient, "pump_id": pump, "kind": "refill", "on": "2027-02-20", "note": "refill clinic, room 3"}),
                )
                .await;
            expect(&booked, StatusCode::CREATED, b);
            let id = booked.body["id"].as_i64().expect("id");
            assert_fields(
                &booked.body,
                &[
                    ("patient_id", json!(patient)),
                    ("pump_id", json!(pump)),
                    ("kind", json!("refill")),
                    ("state", json!("scheduled")),
                    ("on", json!("2027-02-20")),
                ],
                &format!("{b}: booked with a date is scheduled"),
            );
            let worklist = service.get("/api/v1/worklist?on=2026-11-25", &nurse).await;
            assert_fields(
                item_of(&worklist.body, pump),
                &[
                    ("refill_due_on", json!("2027-02-23")),
                    ("booked_on", json!("2027-02-20")),
                    ("booking_after_due", json!(false)),
                ],
                &format!("{b}: booked 20 Feb, due 23 Feb"),
            );

            // Moved to 25 Feb: after the 23 Feb due date.
            service.set_now("2026-11-26T09:00:00Z");
            // Tokens last 12 hours: sign in again on the new day.
            nurse = service.sign_in("nurse.appt").await;
            let physio = service.sign_in("physio.appt").await;
            let state = format!("/api/v1/appointments/{id}/state");
            let moved = service
                .post(
                    &state,
                    &physio,
                    json!({"state": "scheduled", "on": "2027-02-25", "reason": "patient away until 24 Feb"}),
                )
                .await;
            expect(&moved, StatusCode::OK, b);
            assert_fields(&moved.body, &[("state", json!("scheduled")), ("on", json!("2027-02-25"))], b);
            let worklist = service.get("/api/v1/worklist?on=2026-11-25", &nurse).await;
            assert_fields(
                item_of(&worklist.body, pump),
                &[("booked_on", json!("2027-02-25")), ("booking_after_due", json!(true))],
                &format!("{b}: a booking after the due date is flagged"),
            );

            // A scheduled appointment cannot jump to completed.
            let jump = service.post(&state, &nurse, json!({"state": "completed", "reason": "done already"})).await;
            assert_problem(
                &jump,
                StatusCode::UNPROCESSABLE_ENTITY,
                "state",
                &format!("{b}: scheduled -> completed is not a move"),
            );

            service.set_now("2027-02-25T09:30:00Z");
            nurse = service.sign_in("nurse.appt").await;
            let arrived =
                service.post(&state, &nurse, json!({"state": "arrived", "reason": "patient in clinic"})).await;
            expect(&arrived, StatusCode::OK, b);
            assert_eq!(arrived.body["state"], json!("arrived"), "{b}");
            service.set_now("2027-02-25T10:15:00Z");
            let completed =
                service.post(&state, &nurse, json!({"state": "completed", "reason": "refill done, no concerns"})).await;
            expect(&completed, StatusCode::OK, b);
            assert_eq!(completed.body["state"], json!("completed"), "{b}");

            // A completed appointment is closed.
            let cancel =
                service.post(&state, &nurse, json!({"state": "cancelled", "reason": "entered in error"})).await;
            assert_problem(
                &cancel,
                StatusCode::UNPROCESSABLE_ENTITY,
                "state",
                &format!("{b}: a completed appointment cannot be cancelled"),
            );

            let read = service.get(&format!("/api/v1/appointments/{id}"), &nurse).await;
            expect(&read, StatusCode::OK, b);
            assert_eq!(read.body["state"], json!("completed"), "{b}: the refused cancel changed nothing");
            assert_eq!(
                read.body["history"],
                json!([
                    {"state": "scheduled", "on": "2027-02-20", "at": "2026-11-25T10:00:00Z", "by": "nurse.appt", "reason": "refill clinic, room 3"},
                    {"state": "scheduled", "on": "2027-02-25", "at": "2026-11-26T09:00:00Z", "by": "physio.appt", "reason": "patient away until 24 Feb"},
                    {"state": "arrived", "on": "2027-02-25", "at": "2027-02-25T09:30:00Z", "by": "nurse.appt", "reason": "patient in clinic"},
                    {"state": "completed", "on": "2027-02-25", "at": "2027-02-25T10:15:00Z", "by": "nurse.appt", "reason": "refill done, no concerns"},
                ]),
                "{b}: every change with who and why"
            );
            // A completed booking is no longer the booked refill.
            let worklist = service.get("/api/v1/worklist?on=2026-11-25", &nurse).await;
            assert_fields(
                item_of(&worklist.body, pump),
                &[("booked_on", Value::Null), ("booking_after_due", json!(false))],
                &format!("{b}: no open booking"),
            );

            // A refill appointment names the pump.
            let no_pump = service
                .post(
                    "/api/v1/appointments",
                    &nurse,
                    json!({"patient_id": patient, "kind": "refill", "on": "2027-03-01"}),
                )
                .await;
            assert_problem(
                &no_pump,
                StatusCode::UNPROCESSABLE_ENTITY,
                "pump_id",
                &format!("{b}: a refill appointment names the pump"),
            );
            // A dose review without a date is requested.
            let requested = service
                .post("/api/v1/appointments", &nurse, json!({"patient_id": patient, "kind": "dose_review"}))
                .await;
            expect(&requested, StatusCode::CREATED, b);
            assert_fields(&requested.body, &[("state", json!("requested")), ("on", Value::Null)], b);
        }
    });
}

// ---------------------------------------------------------------------------------------------
// 8. The worklist
// ---------------------------------------------------------------------------------------------

#[test]
fn worklist_buckets_order_high_risk_first_and_pagination() {
    block(async {
        for service in backends().await {
            let b = service.backend;
            let nurse = service.user("nurse.worklist", Role::NurseSpecialist).await;
            let physio = service.user("physio.worklist", Role::Physiotherapist).await;
            let admin = service.user("admin.worklist", Role::Admin).await;
            // Seen on 10 Dec 2026: overdue before 10 Dec; due_7 from 10 Dec to 17 Dec; due_28
            // from 18 Dec 2026 to 7 Jan 2027 (10 Dec + 29 days excluded); later from 8 Jan 2027.
            // Every pump: 20 mL of 2000 micrograms/mL at 400 micrograms/day: due 90 days after
            // the implant.
            let over_patient = service.patient(&nurse, &nhs_number(11), None).await;
            // 1 Sep 2026 + 90 days = 30 Nov 2026 (29 + 31 + 30); stability to 28 Feb 2027.
            let over = service.pump(&nurse, over_patient, "NGV700011", "2026-09-01T10:00:00Z", 400).await;
            let unknown_patient = service.patient(&nurse, &nhs_number(12), None).await;
            let unknown = service.pump(&nurse, unknown_patient, "NGV700012", "2026-11-25T10:00:00Z", 400).await;
            // The pump reports a drug of 5 micrograms/mL, outside baclofen's 10-2000 range: no
            // date can be computed (interrogate; never shown as fine).
            let odd = service
                .post(
                    &format!("/api/v1/pumps/{unknown}/interrogations"),
                    &nurse,
                    json!({"at": "2026-11-25T10:01:00Z", "reported": {"reservoir_ml": 20, "concentration_micrograms_per_ml": 5}}),
                )
                .await;
            expect(&odd, StatusCode::CREATED, b);
            let due7_patient = service.patient(&nurse, &nhs_number(13), None).await;
            // 13 Sep 2026 + 90 days = 12 Dec 2026 (17 + 31 + 30 + 12); stability to 12 Mar 2027
            // (17 + 31 + 30 + 31 + 31 + 28 + 12 = 180).
            let due7 = service.pump(&nurse, due7_patient, "NGV700013", "2026-09-13T10:00:00Z", 400).await;
            let due28_patient = register(&service, &nurse, &nhs_number(14), "spinal", None).await;
            // 1 Oct 2026 + 90 days = 30 Dec 2026 (30 + 30 + 30).
            let due28 = service.pump(&nurse, due28_patient, "NGV700014", "2026-10-01T10:00:00Z", 400).await;
            let hr_patient = service.patient(&nurse, &nhs_number(15), Some("T6")).await;
            // 7 Oct 2026 + 90 days = 5 Jan 2027 (24 + 30 + 31 + 5): later than due28 but
            // high-risk, so first in its bucket.
            let hr = service.pump(&nurse, hr_patient, "NGV700015", "2026-10-07T10:00:00Z", 400).await;
            let later_patient = service.patient(&nurse, &nhs_number(16), None).await;
            let later = service.pump(&nurse, later_patient, "NGV700016", "2026-11-25T10:00:00Z", 400).await;
            let gone_patient = service.patient(&nurse, &nhs_number(17), None).await;
            let gone = service.pump(&nurse, gone_patient, "NGV700017", "2026-11-25T10:00:00Z", 400).await;
            let explant = service
                .post(
                    &format!("/api/v1/pumps/{gone}/explant"),
                    &nurse,
                    json!({"at": "2026-11-25T10:00:00Z", "reason": "pump removed: infection"}),
                )
                .await;
            expect(&explant, StatusCode::OK, b);

            // Bookings: due7 booked 15 Dec (after its 12 Dec due date); due28 booked 28 Dec
            // (before its 30 Dec due date).
            for (patient, pump, on) in [(due7_patient, due7, "2026-12-15"), (due28_patient, due28, "2026-12-28")] {
                let booked = service
                    .post(
                        "/api/v1/appointments",
                        &nurse,
                        json!({"patient_id": patient, "pump_id": pump, "kind": "refill", "on": on}),
                    )
                    .await;
                expect(&booked, StatusCode::CREATED, b);
            }

            let worklist = service.get("/api/v1/worklist?on=2026-12-10", &physio).await;
            expect(&worklist, StatusCode::OK, b);
            let body = &worklist.body;
            assert_eq!(
                body["counts"],
                json!({"overdue": 1, "unknown": 1, "due_7": 1, "due_28": 2, "later": 1}),
                "{b}: {body}"
            );
            assert_eq!(body["total"], json!(6), "{b}");
            // Overdue first; then unknown; then by date; high-risk first within due_28.
            assert_eq!(pump_ids(body), vec![over, unknown, due7, hr, due28, later], "{b}: worklist order");
            let buckets: Vec<&str> =
                body["items"].as_array().expect("items").iter().map(|i| i["bucket"].as_str().unwrap_or("")).collect();
            assert_eq!(buckets, vec!["overdue", "unknown", "due_7", "due_28", "due_28", "later"], "{b}");
            assert!(!pump_ids(body).contains(&gone), "{b}: an explanted pump is not on the worklist");

            assert_fields(
                item_of(body, over),
                &[
                    ("patient_id", json!(over_patient)),
                    ("nhs_number", json!(nhs_number(11))),
                    ("bucket", json!("overdue")),
                    ("refill_due_by", json!("2026-11-30T10:00:00Z")),
                    ("refill_due_on", json!("2026-11-30")),
                    ("low_reservoir_alarm_at", json!("2026-11-30T10:00:00Z")),
                    // 1 Sep 2026 + 180 days = 28 Feb 2027 (29 + 31 + 30 + 31 + 31 + 28).
                    ("drug_expires_at", json!("2027-02-28T10:00:00Z")),
                    ("limited_by", json!("low_reservoir_alarm")),
                    ("booked_on", Value::Null),
                    ("booking_after_due", json!(false)),
                    ("high_risk", json!(false)),
                ],
                &format!("{b}: overdue item"),
            );
            assert_fields(
                item_of(body, unknown),
                &[
                    ("bucket", json!("unknown")),
                    ("refill_due_by", Value::Null),
                    ("refill_due_on", Value::Null),
                    ("low_reservoir_alarm_at", Value::Null),
                    ("limited_by", Value::Null),
                ],
                &format!("{b}: unknown item"),
            );
            assert_fields(
                item_of(body, due7),
                &[
                    ("bucket", json!("due_7")),
                    ("refill_due_by", json!("2026-12-12T10:00:00Z")),
                    ("refill_due_on", json!("2026-12-12")),
                    ("drug_expires_at", json!("2027-03-12T10:00:00Z")),
                    ("booked_on", json!("2026-12-15")),
                    ("booking_after_due", json!(true)),
                    ("high_risk", json!(false)),
                ],
                &format!("{b}: due_7 item booked after its date"),
            );
            assert_fields(
                item_of(body, due28),
                &[
                    ("refill_due_on", json!("2026-12-30")),
                    ("booked_on", json!("2026-12-28")),
                    ("booking_after_due", json!(false)),
                    ("high_risk", json!(false)),
                ],
                &format!("{b}: due_28 item booked before its date"),
            );
            assert_fields(
                item_of(body, hr),
                &[("refill_due_on", json!("2027-01-05")), ("high_risk", json!(true)), ("bucket", json!("due_28"))],
                &format!("{b}: high-risk item"),
            );
            assert_fields(
                item_of(body, later),
                &[("refill_due_on", json!("2027-02-23")), ("bucket", json!("later"))],
                b,
            );

            // Pages of 2: the same order, the same counts and total on every page.
            for (offset, expected) in
                [(0, vec![over, unknown]), (2, vec![due7, hr]), (4, vec![due28, later]), (6, vec![])]
            {
                let page =
                    service.get(&format!("/api/v1/worklist?on=2026-12-10&limit=2&offset={offset}"), &nurse).await;
                expect(&page, StatusCode::OK, b);
                assert_eq!(pump_ids(&page.body), expected, "{b}: page at offset {offset}");
                assert_eq!(page.body["total"], json!(6), "{b}: offset {offset}");
                assert_eq!(page.body["limit"], json!(2), "{b}");
                assert_eq!(page.body["offset"], json!(offset), "{b}");
                assert_eq!(page.body["counts"], body["counts"], "{b}: counts on every page");
            }
            let bad = service.get("/api/v1/worklist?on=2026-12-10&limit=0", &nurse).await;
            assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY, "limit", &format!("{b}: a limit of 0 is refused"));

            // The due28 patient's level becomes T4: high-risk, so both due_28 pumps are high-risk
            // and they go by date (30 Dec before 5 Jan).
            let raised = patch(
                &service,
                &format!("/api/v1/patients/{due28_patient}"),
                &nurse,
                json!({"injury_level": "T4", "reason": "level confirmed on MRI"}),
            )
            .await;
            expect(&raised, StatusCode::OK, b);
            let worklist = service.get("/api/v1/worklist?on=2026-12-10", &nurse).await;
            assert_eq!(
                pump_ids(&worklist.body),
                vec![over, unknown, due7, due28, hr, later],
                "{b}: by date among high-risk"
            );
            assert_eq!(item_of(&worklist.body, due28)["high_risk"], json!(true), "{b}");

            // Without `on`: today in London (the clock is at 25 Nov 2026 10:00 UTC). Seen on
            // 25 Nov: due_7 is 25 Nov - 2 Dec, due_28 is 3 Dec - 23 Dec, later from 24 Dec. So
            // 30 Nov is due_7; 12 Dec is due_28; 30 Dec, 5 Jan and 23 Feb are later.
            let today = service.get("/api/v1/worklist", &nurse).await;
            assert_eq!(today.body["on"], json!("2026-11-25"), "{b}");
            assert_eq!(
                today.body["counts"],
                json!({"overdue": 0, "unknown": 1, "due_7": 1, "due_28": 1, "later": 3}),
                "{b}"
            );

            // Only clinicians see the worklist.
            let refused = service.get("/api/v1/worklist", &admin).await;
            assert_plain_problem(
                &refused,
                StatusCode::FORBIDDEN,
                &format!("{b}: an administrator does not see the worklist"),
            );
        }
    });
}

// ---------------------------------------------------------------------------------------------
// 9. Audit
// ---------------------------------------------------------------------------------------------

#[test]
fn audit_chain_verifies_and_names_the_first_tampered_entry() {
    block(async {
        for service in backends().await {
            let b = service.backend;
            // Entries: 1 admin added, 2 admin signed in, 3 nurse added, 4 nurse signed in, 5 patient
            // registered, 6 pump implanted.
            let admin = service.user("admin.audit", Role::Admin).await;
            let nurse = service.user("nurse.audit", Role::NurseSpecialist).await;
            let patient = service.patient(&nurse, &nhs_number(1), None).await;
            service.pump(&nurse, patient, "NGV800001", "2026-11-25T10:00:00Z", 400).await;

            let verified = service.get("/api/v1/audit/verify", &admin).await;
            expect(&verified, StatusCode::OK, b);
            assert_fields(
                &verified.body,
                &[("entries", json!(6)), ("valid", json!(true)), ("first_broken", Value::Null)],
                &format!("{b}: a whole chain"),
            );
            let log = service.get("/api/v1/audit", &admin).await;
            expect(&log, StatusCode::OK, b);
            assert_eq!(log.body["total"], json!(6), "{b}");
            let actions: Vec<&str> = log.body["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|e| e["action"].as_str().unwrap_or(""))
                .collect();
            assert_eq!(
                actions,
                vec!["pump.implanted", "patient.registered", "sign_in", "user.added", "sign_in", "user.added"],
                "{b}: newest first"
            );

            // Six registrations at once: the chain does not fork (entries 7-12).
            let register_one = |n: u32| {
                let (service, nurse) = (&service, &nurse);
                async move {
                    service
                        .post(
                            "/api/v1/patients",
                            nurse,
                            json!({"nhs_number": nhs_number(100 + n), "given_name": "Concurrent", "family_name": format!("Writer{n}"), "date_of_birth": "1990-01-01", "origin": "cerebral"}),
                        )
                        .await
                        .status
                }
            };
            let statuses = tokio::join!(
                register_one(1),
                register_one(2),
                register_one(3),
                register_one(4),
                register_one(5),
                register_one(6)
            );
            assert_eq!(
                statuses,
                (
                    StatusCode::CREATED,
                    StatusCode::CREATED,
                    StatusCode::CREATED,
                    StatusCode::CREATED,
                    StatusCode::CREATED,
                    StatusCode::CREATED
                ),
                "{b}"
            );
            let verified = service.get("/api/v1/audit/verify", &admin).await;
            assert_fields(
                &verified.body,
                &[("entries", json!(12)), ("valid", json!(true)), ("first_broken", Value::Null)],
                &format!("{b}: concurrent writers never fork the chain"),
            );

            let nurse_verify = service.get("/api/v1/audit/verify", &nurse).await;
            assert_plain_problem(
                &nurse_verify,
                StatusCode::FORBIDDEN,
                &format!("{b}: the audit is the administrator's"),
            );

            // Tamper with entry 3 behind the service's back.
            sqlx::query("UPDATE audit SET detail = $1 WHERE seq = 3")
                .bind(r#"{"nhs_number":"0000000000","high_risk":false}"#)
                .execute(service.store.pool())
                .await
                .expect("tamper");
            let broken = service.get("/api/v1/audit/verify", &admin).await;
            expect(&broken, StatusCode::OK, b);
            assert_fields(
                &broken.body,
                &[("valid", json!(false)), ("first_broken", json!(3)), ("entries", json!(2))],
                &format!("{b}: the first broken entry is 3 (2 entries before it verify)"),
            );
        }
    });
}

// ---------------------------------------------------------------------------------------------
// 10. Idempotency-Key
// ---------------------------------------------------------------------------------------------

#[test]
fn idempotency_key_replays_once_and_refuses_a_different_request() {
    block(async {
        for service in backends().await {
            let b = service.backend;
            let mut nurse = service.user("nurse.idem", Role::NurseSpecialist).await;
            let _pharmacist = service.user("pharm.idem", Role::Pharmacist).await;
            let body = json!({"nhs_number": nhs_number(1), "given_name": "Megan", "family_name": "Evans", "date_of_birth": "1980-03-14", "origin": "spinal"});
            let key = [("idempotency-key", "register-0001")];
            let first = service.send("POST", "/api/v1/patients", Some(&nurse), Some(body.clone()), &key).await;
            expect(&first, StatusCode::CREATED, b);
            let second = service.send("POST", "/api/v1/patients", Some(&nurse), Some(body.clone()), &key).await;
            assert_eq!(
                second.status,
                StatusCode::CREATED,
                "{b}: a retry gets the same answer, not a 409: {:?}",
                second.body
            );
            assert_eq!(second.body, first.body, "{b}: the same body");
            assert_eq!(second.headers.get("location"), first.headers.get("location"), "{b}");
            let listed = service.get("/api/v1/patients", &nurse).await;
            assert_eq!(listed.body["total"], json!(1), "{b}: one patient recorded");

            let other = json!({"nhs_number": nhs_number(2), "given_name": "Tom", "family_name": "Price", "date_of_birth": "1970-01-01", "origin": "cerebral"});
            let reused = service.send("POST", "/api/v1/patients", Some(&nurse), Some(other), &key).await;
            assert_problem(
                &reused,
                StatusCode::UNPROCESSABLE_ENTITY,
                "Idempotency-Key",
                &format!("{b}: the same key with a different body is refused"),
            );
            let listed = service.get("/api/v1/patients", &nurse).await;
            assert_eq!(listed.body["total"], json!(1), "{b}: nothing more recorded");

            // A refill sent twice with the same key is recorded once.
            let patient = first.body["id"].as_i64().expect("id");
            let pump = service.pump(&nurse, patient, "NGV900001", "2026-11-25T10:00:00Z", 400).await;
            service.set_now("2026-12-25T10:00:00Z");
            nurse = service.sign_in("nurse.idem").await;
            let path = format!("/api/v1/pumps/{pump}/refills");
            let body = refill("2026-12-25T10:00:00Z", json!(14), json!(20), "2027-06-30", "nurse.idem", "pharm.idem");
            let key = [("idempotency-key", "refill-7f3a")];
            let one = service.send("POST", &path, Some(&nurse), Some(body.clone()), &key).await;
            expect(&one, StatusCode::CREATED, b);
            let two = service.send("POST", &path, Some(&nurse), Some(body), &key).await;
            expect(&two, StatusCode::CREATED, b);
            assert_eq!(two.body, one.body, "{b}: the same refill");
            let listed = service.get(&path, &nurse).await;
            assert_eq!(listed.body["total"], json!(1), "{b}: one refill recorded");
            // Without a key, a second identical refill is a new request: refused because it is
            // not after the last fill.
            let again = service
                .post(
                    &path,
                    &nurse,
                    refill("2026-12-25T10:00:00Z", json!(14), json!(20), "2027-06-30", "nurse.idem", "pharm.idem"),
                )
                .await;
            assert_problem(
                &again,
                StatusCode::UNPROCESSABLE_ENTITY,
                "at",
                &format!("{b}: a refill is after the last fill"),
            );
        }
    });
}

// ---------------------------------------------------------------------------------------------
// 11. Sign-in
// ---------------------------------------------------------------------------------------------

#[test]
fn sign_in_wrong_password_then_slowed_with_retry_after() {
    block(async {
        for service in backends().await {
            let b = service.backend;
            let token = service.user("nurse.signin", Role::NurseSpecialist).await;
            let me = service.get("/api/v1/me", &token).await;
            expect(&me, StatusCode::OK, b);
            assert_fields(&me.body, &[("username", json!("nurse.signin")), ("role", json!("nurse_specialist"))], b);

            let attempt = |password: &'static str| {
                let service = &service;
                async move {
                    service
                        .send(
                            "POST",
                            "/api/v1/auth/token",
                            None,
                            Some(json!({"username": "nurse.signin", "password": password})),
                            &[],
                        )
                        .await
                }
            };
            let unknown = service
                .send(
                    "POST",
                    "/api/v1/auth/token",
                    None,
                    Some(json!({"username": "nobody.here", "password": "whatever-1"})),
                    &[],
                )
                .await;
            assert_plain_problem(&unknown, StatusCode::UNAUTHORIZED, &format!("{b}: an unknown user is 401"));
            // Three failures are free; the fourth makes the next attempt wait 2 seconds
            // (each further failure doubles the wait).
            for n in 1..=4 {
                let wrong = attempt("not-the-password").await;
                assert_plain_problem(&wrong, StatusCode::UNAUTHORIZED, &format!("{b}: wrong password, attempt {n}"));
            }
            // Now even the right password must wait.
            let slowed = attempt("nurse.signin-password").await;
            assert_plain_problem(
                &slowed,
                StatusCode::TOO_MANY_REQUESTS,
                &format!("{b}: after 4 failures sign-in is slowed"),
            );
            assert_eq!(
                slowed.headers.get("retry-after").and_then(|v| v.to_str().ok()),
                Some("2"),
                "{b}: Retry-After says how long to wait"
            );
            let no_token = service.send("GET", "/api/v1/me", None, None, &[]).await;
            assert_plain_problem(&no_token, StatusCode::UNAUTHORIZED, &format!("{b}: no token"));

            // After the wait, the right password works.
            service.set_now("2026-11-25T10:00:02Z");
            let ok = attempt("nurse.signin-password").await;
            expect(&ok, StatusCode::OK, b);
            // 12 hours from 10:00:02.
            assert_eq!(ok.body["expires_at"], json!("2026-11-25T22:00:02Z"), "{b}: a token lasts 12 hours");
        }
    });
}

// ---------------------------------------------------------------------------------------------
// 12. A patient sees their own record only
// ---------------------------------------------------------------------------------------------

#[test]
fn a_patient_sees_their_own_record_and_not_another() {
    block(async {
        for service in backends().await {
            let b = service.backend;
            let nurse = service.user("nurse.own", Role::NurseSpecialist).await;
            let own = service.patient(&nurse, &nhs_number(1), None).await;
            let other = service.patient(&nurse, &nhs_number(2), None).await;
            let own_pump = service.pump(&nurse, own, "NGV990001", "2026-11-25T10:00:00Z", 400).await;
            let other_pump = service.pump(&nurse, other, "NGV990002", "2026-11-25T10:00:00Z", 400).await;
            service
                .store
                .add_user("test", "patient.own", Role::Patient, "patient.own-password", Some(own), service.clock.now())
                .await
                .expect("patient user");
            let token = service.sign_in("patient.own").await;

            let mine = service.get(&format!("/api/v1/patients/{own}"), &token).await;
            expect(&mine, StatusCode::OK, b);
            assert_eq!(mine.body["id"], json!(own), "{b}");
            assert_eq!(mine.body["pumps"][0]["id"], json!(own_pump), "{b}");
            let my_pump = service.get(&format!("/api/v1/pumps/{own_pump}"), &token).await;
            expect(&my_pump, StatusCode::OK, b);
            assert_eq!(my_pump.body["refill"]["refill_due_on"], json!("2027-02-23"), "{b}");

            let theirs = service.get(&format!("/api/v1/patients/{other}"), &token).await;
            assert_plain_problem(
                &theirs,
                StatusCode::NOT_FOUND,
                &format!("{b}: another patient's record looks absent"),
            );
            let their_pump = service.get(&format!("/api/v1/pumps/{other_pump}"), &token).await;
            assert_plain_problem(
                &their_pump,
                StatusCode::NOT_FOUND,
                &format!("{b}: another patient's pump looks absent"),
            );
            let their_rx = service.get(&format!("/api/v1/pumps/{other_pump}/prescriptions"), &token).await;
            assert_plain_problem(
                &their_rx,
                StatusCode::NOT_FOUND,
                &format!("{b}: another patient's prescriptions look absent"),
            );

            let their_refills = service.get(&format!("/api/v1/pumps/{other_pump}/refills"), &token).await;
            assert_plain_problem(
                &their_refills,
                StatusCode::NOT_FOUND,
                &format!("{b}: another patient's refills look absent"),
            );
            let their_appointments = service.get(&format!("/api/v1/appointments?patient_id={other}"), &token).await;
            assert_plain_problem(
                &their_appointments,
                StatusCode::NOT_FOUND,
                &format!("{b}: another patient's appointments look absent"),
            );
            // Their own appointments: the wound check and the neurosurgical follow-up.
            let my_appointments = service.get("/api/v1/appointments", &token).await;
            expect(&my_appointments, StatusCode::OK, b);
            assert_eq!(my_appointments.body["total"], json!(2), "{b}: their own two follow-ups");

            let listed = service.get("/api/v1/patients", &token).await;
            expect(&listed, StatusCode::OK, b);
            assert_eq!(listed.body["total"], json!(1), "{b}: only their own");
            assert_eq!(listed.body["items"][0]["id"], json!(own), "{b}");

            let worklist = service.get("/api/v1/worklist", &token).await;
            assert_plain_problem(
                &worklist,
                StatusCode::FORBIDDEN,
                &format!("{b}: a patient does not see the worklist"),
            );
            let write = service
                .post("/api/v1/patients", &token, json!({"nhs_number": nhs_number(3), "given_name": "A", "family_name": "B", "date_of_birth": "1990-01-01", "origin": "spinal"}))
                .await;
            assert_plain_problem(&write, StatusCode::FORBIDDEN, &format!("{b}: a patient registers no one"));
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Beside the buckets: replacements due and post-MRI checks
// ---------------------------------------------------------------------------------------------

#[test]
fn worklist_lists_replacements_due_and_post_mri_checks() {
    block(async {
        let mut orders: Vec<(&'static str, Vec<i64>)> = Vec::new();
        for service in backends().await {
            let b = service.backend;
            let nurse = service.user("nurse.battery", Role::NurseSpecialist).await;
            let p1 = service.patient(&nurse, &nhs_number(41), None).await;
            let p2 = service.patient(&nurse, &nhs_number(42), None).await;
            let p3 = service.patient(&nurse, &nhs_number(43), None).await;
            let r1 = service.pump(&nurse, p1, "NGVB00001", "2026-11-25T10:00:00Z", 400).await;
            let r2 = service.pump(&nurse, p2, "NGVB00002", "2026-11-25T10:00:00Z", 400).await;
            let r3 = service.pump(&nurse, p3, "NGVB00003", "2026-11-25T10:00:00Z", 400).await;

            // Seen on 25 Nov 2026 the horizon is 6 months: 25 May 2027 (inclusive).
            for (pump, eos) in [(r1, "2027-05-25"), (r2, "2027-09-01")] {
                let estimate = service
                    .post(
                        &format!("/api/v1/pumps/{pump}/battery"),
                        &nurse,
                        json!({"at": "2026-11-25T10:01:00Z", "elective_replacement": false, "end_of_service_on": eos}),
                    )
                    .await;
                expect(&estimate, StatusCode::OK, b);
                assert_fields(
                    &estimate.body,
                    &[("end_of_service_on", json!(eos)), ("elective_replacement", json!(false))],
                    b,
                );
            }
            // Pump 3 reports its Elective Replacement Indicator.
            let eri = service
                .post(
                    &format!("/api/v1/pumps/{r3}/interrogations"),
                    &nurse,
                    json!({"at": "2026-11-25T10:01:00Z", "reported": {"reservoir_ml": 20, "elective_replacement": true}}),
                )
                .await;
            expect(&eri, StatusCode::CREATED, b);
            assert_eq!(eri.body["pump"]["elective_replacement"], json!(true), "{b}");

            let worklist = service.get("/api/v1/worklist?on=2026-11-25", &nurse).await;
            expect(&worklist, StatusCode::OK, b);
            let mut due = worklist.body["replacements_due"].as_array().expect("replacements_due").clone();
            orders.push((b, due.iter().map(|r| r["pump_id"].as_i64().unwrap_or(0)).collect()));
            due.sort_by_key(|r| r["pump_id"].as_i64());
            assert_eq!(
                due,
                vec![
                    json!({"pump_id": r1, "patient_id": p1, "nhs_number": nhs_number(41), "elective_replacement": false, "end_of_service_on": "2027-05-25"}),
                    json!({"pump_id": r3, "patient_id": p3, "nhs_number": nhs_number(43), "elective_replacement": true, "end_of_service_on": null}),
                ],
                "{b}: ERI on, or end of service within 6 months (25 May 2027 is within; 1 Sep 2027 is not)"
            );
            // Seen on 1 Jun 2027 the horizon is 1 Dec 2027: pump 2 (1 Sep 2027) is due too.
            let later = service.get("/api/v1/worklist?on=2027-06-01", &nurse).await;
            let mut ids: Vec<i64> = later.body["replacements_due"]
                .as_array()
                .expect("list")
                .iter()
                .map(|r| r["pump_id"].as_i64().unwrap_or(0))
                .collect();
            ids.sort_unstable();
            assert_eq!(ids, vec![r1, r2, r3], "{b}: on 1 Jun 2027");

            // The pump's own view, on the service's clock (25 Nov 2026).
            let v1 = service.get(&format!("/api/v1/pumps/{r1}"), &nurse).await;
            assert_eq!(
                v1.body["replacement_due"],
                json!("the battery's end of service is expected on 25 May 2027, within 6 months: plan the replacement"),
                "{b}"
            );
            let v3 = service.get(&format!("/api/v1/pumps/{r3}"), &nurse).await;
            assert_eq!(
                v3.body["replacement_due"],
                json!("the Elective Replacement Indicator is on: plan the replacement now"),
                "{b}"
            );
            let v2 = service.get(&format!("/api/v1/pumps/{r2}"), &nurse).await;
            assert_eq!(v2.body["replacement_due"], Value::Null, "{b}: 1 Sep 2027 is beyond 25 May 2027");
            // A post-MRI check outstanding, until it is closed.
            let mri = service
                .post("/api/v1/appointments", &nurse, json!({"patient_id": p1, "pump_id": r1, "kind": "post_mri_check", "on": "2026-12-01", "note": "MRI brain on 30 Nov"}))
                .await;
            expect(&mri, StatusCode::CREATED, b);
            let mri_id = mri.body["id"].as_i64().expect("id");
            let worklist = service.get("/api/v1/worklist?on=2026-11-25", &nurse).await;
            assert_eq!(
                worklist.body["post_mri_checks"],
                json!([{"appointment_id": mri_id, "patient_id": p1, "pump_id": r1, "nhs_number": nhs_number(41), "state": "scheduled", "on": "2026-12-01"}]),
                "{b}: the post-MRI check is outstanding"
            );
            let cancelled = service
                .post(
                    &format!("/api/v1/appointments/{mri_id}/state"),
                    &nurse,
                    json!({"state": "cancelled", "reason": "MRI postponed"}),
                )
                .await;
            expect(&cancelled, StatusCode::OK, b);
            let worklist = service.get("/api/v1/worklist?on=2026-11-25", &nurse).await;
            assert_eq!(worklist.body["post_mri_checks"], json!([]), "{b}: a closed check is not outstanding");
        }
        if let [(first, a), (second, b)] = orders.as_slice() {
            assert_eq!(
                a, b,
                "replacements_due must come in the same order on {first} and {second} (the same service on either database); the pump with ERI on and no end-of-service date sorts differently (NULL first on SQLite, last on PostgreSQL)"
            );
        }
    });
}

#[test]
fn a_pumps_replacement_due_is_judged_on_the_service_clock() {
    block(async {
        for service in backends().await {
            let b = service.backend;
            let nurse = service.user("nurse.eos", Role::NurseSpecialist).await;
            let patient = service.patient(&nurse, &nhs_number(51), None).await;
            let pump = service.pump(&nurse, patient, "NGVE00001", "2026-11-25T10:00:00Z", 400).await;
            let estimate = service
                .post(
                    &format!("/api/v1/pumps/{pump}/battery"),
                    &nurse,
                    json!({"at": "2026-11-25T10:01:00Z", "elective_replacement": false, "end_of_service_on": "2027-09-01"}),
                )
                .await;
            expect(&estimate, StatusCode::OK, b);
            // On 25 Nov 2026 the horizon is 25 May 2027: 1 Sep 2027 is beyond it.
            assert_eq!(estimate.body["replacement_due"], Value::Null, "{b}");
            // The service's clock moves to 1 Jun 2027 (as `itb serve --clock-start` runs it): the
            // horizon is 1 Dec 2027 and 1 Sep 2027 is within it. The worklist for that day says
            // so; the pump's own view must agree with it.
            service.set_now("2027-06-01T10:00:00Z");
            let nurse = service.sign_in("nurse.eos").await;
            let worklist = service.get("/api/v1/worklist", &nurse).await;
            assert_eq!(worklist.body["on"], json!("2027-06-01"), "{b}");
            assert_eq!(
                worklist.body["replacements_due"][0]["pump_id"],
                json!(pump),
                "{b}: the worklist of 1 Jun 2027 lists it"
            );
            let view = service.get(&format!("/api/v1/pumps/{pump}"), &nurse).await;
            assert_eq!(
                view.body["replacement_due"],
                json!("the battery's end of service is expected on 1 Sep 2027, within 6 months: plan the replacement"),
                "{b}: a pump's replacement_due is judged on the service's clock (1 Jun 2027), not the machine's wall clock"
            );
        }
    });
}
