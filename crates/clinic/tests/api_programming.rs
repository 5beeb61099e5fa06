//! Programming from the clinic through the real router, on virtual pumps: interrogate (the
//! pump's alarm instant is the worklist's), stage a therapy, review it, commit it by hash (a
//! wrong hash, a missing override and another person's staging are refused), read it back by
//! interrogation; a refill through the programmer with its gap; and the audit chain under
//! concurrent writers on both backends.

mod common;

use axum::http::StatusCode;
use common::{backends, block, nhs_number};
use itb_clinic::rules::access::Role;
use serde_json::{Value, json};

#[test]
fn interrogate_stage_review_commit_and_read_back_on_a_virtual_pump() {
    block(async {
        for mut service in backends().await {
            let fleet = service.with_fleet();
            let nurse = service.user("nurse.jones", Role::NurseSpecialist).await;
            service.user("dr.okafor", Role::Consultant).await;
            let patient = service.patient(&nurse, &nhs_number(11), None).await;
            // Implanted at 10:00 with 20 mL of 2000 micrograms/mL at 400 micrograms/day.
            let pump = service.pump(&nurse, patient, "NGV200001", "2026-11-25T10:00:00Z", 400).await;
            assert_eq!(fleet.len(), 1, "{}", service.backend);
            // Ten days on: 2 mL delivered, 18 mL left; alarm when 2 mL are left, 80 days later.
            service.set_now("2026-12-05T10:00:00Z");
            // Tokens last 12 hours: sign in again on the new day.
            let (nurse, consultant) = (service.sign_in("nurse.jones").await, service.sign_in("dr.okafor").await);
            let read = service.post(&format!("/api/v1/pumps/{pump}/interrogate"), &nurse, json!({})).await;
            assert_eq!(read.status, StatusCode::CREATED, "{:?}", read.body);
            assert_eq!(read.body["reported"]["reservoir_ml"], json!(18), "{:?}", read.body["reported"]);
            assert_eq!(read.body["reported"]["low_reservoir_alarm_at"], json!("2027-02-23T10:00:00Z"));
            assert_eq!(read.body["latest"], json!(true));
            let worklist = service.get("/api/v1/worklist?on=2026-12-05", &nurse).await;
            assert_eq!(
                worklist.body["items"][0]["low_reservoir_alarm_at"], read.body["reported"]["low_reservoir_alarm_at"],
                "the worklist and the pump agree"
            );
            assert_eq!(worklist.body["items"][0]["refill_due_on"], json!("2027-02-23"));

            // A 10 % increase: within the guideline for a spinal adult.
            let staged = service
                .post(&format!("/api/v1/pumps/{pump}/program/therapy"), &consultant, json!({"prescription": {"mode": "simple_continuous", "dose": "440 micrograms/day"}, "reason": "spasms at night"}))
                .await;
            assert_eq!(staged.status, StatusCode::OK, "{:?}", staged.body);
            assert_eq!(staged.body["review"]["old"]["largest_day_micrograms"], json!(400));
            assert_eq!(staged.body["review"]["new"]["largest_day_micrograms"], json!(440));
            assert_eq!(staged.body["review"]["titration"]["verdict"], json!("within_guideline"));
            let hash = staged.body["hash"].as_str().expect("hash").to_owned();
            let wrong =
                service.post(&format!("/api/v1/pumps/{pump}/program/commit"), &consultant, json!({"hash": "00"})).await;
            assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(wrong.body["errors"][0]["field"], json!("hash"));
            let other =
                service.post(&format!("/api/v1/pumps/{pump}/program/commit"), &nurse, json!({"hash": hash})).await;
            assert_eq!(
                other.status,
                StatusCode::CONFLICT,
                "only the person who staged it commits it: {:?}",
                other.body
            );
            let done =
                service.post(&format!("/api/v1/pumps/{pump}/program/commit"), &consultant, json!({"hash": hash})).await;
            assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
            assert_eq!(done.body["outcome"], json!("committed"));
            assert_eq!(done.body["recorded"]["version"], json!(2));
            assert_eq!(done.body["recorded"]["authorised_by"], json!("dr.okafor"));
            assert_eq!(
                done.body["pump"]["prescription"]["prescription"],
                json!({"mode": "simple_continuous", "dose": "440 micrograms/day"})
            );
            // Read back from the pump.
            let again = service.post(&format!("/api/v1/pumps/{pump}/interrogate"), &nurse, json!({})).await;
            assert_eq!(
                again.body["reported"]["prescription"],
                json!({"mode": "simple_continuous", "dose": "440 micrograms/day"})
            );
            let log = service.get(&format!("/api/v1/pumps/{pump}/programmings"), &nurse).await;
            assert_eq!(log.body["total"], json!(1));
            assert_eq!(log.body["items"][0]["hash"], json!(hash));
            assert_eq!(log.body["items"][0]["review"]["titration"]["verdict"], json!("within_guideline"));

            // The next day: a doubling needs a written reason; "yes" is not one.
            service.set_now("2026-12-06T10:00:00Z");
            let (nurse, consultant) = (service.sign_in("nurse.jones").await, service.sign_in("dr.okafor").await);
            let big = service
                .post(
                    &format!("/api/v1/pumps/{pump}/program/therapy"),
                    &consultant,
                    json!({"prescription": {"mode": "simple_continuous", "dose": "880 micrograms/day"}}),
                )
                .await;
            assert_eq!(big.status, StatusCode::OK, "{:?}", big.body);
            assert_eq!(big.body["review"]["needs_override"], json!(true));
            let hash = big.body["hash"].as_str().expect("hash").to_owned();
            let refused =
                service.post(&format!("/api/v1/pumps/{pump}/program/commit"), &consultant, json!({"hash": hash})).await;
            assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(refused.body["errors"][0]["field"], json!("override_reason"));
            assert!(refused.body["review"]["warnings"].as_array().is_some_and(|w| !w.is_empty()));
            let yes = service
                .post(
                    &format!("/api/v1/pumps/{pump}/program/commit"),
                    &consultant,
                    json!({"hash": hash, "override_reason": "yes"}),
                )
                .await;
            assert_eq!(yes.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", yes.body);
            let still = service.post(&format!("/api/v1/pumps/{pump}/interrogate"), &nurse, json!({})).await;
            assert_eq!(
                still.body["reported"]["prescription"]["dose"],
                json!("440 micrograms/day"),
                "the old therapy runs"
            );
            // After the alarm has sounded, the pump's alarm instant stays the one it reported.
            let alarm_at = still.body["reported"]["low_reservoir_alarm_at"].clone();
            service.set_now("2027-03-10T10:00:00Z");
            let late_nurse = service.sign_in("nurse.jones").await;
            let late = service.post(&format!("/api/v1/pumps/{pump}/interrogate"), &late_nurse, json!({})).await;
            assert_eq!(late.status, StatusCode::CREATED, "{:?}", late.body);
            let raised = late.body["reported"]["alarms"]
                .as_array()
                .expect("alarms")
                .iter()
                .find(|a| a["kind"] == json!("low_reservoir"))
                .map(|a| a["raised_at"].clone());
            // The pump raised it within the second the schedule gave (the pump counts milliseconds).
            let second = alarm_at.as_str().expect("instant").trim_end_matches('Z').to_owned();
            assert!(
                raised.as_ref().and_then(|r| r.as_str()).is_some_and(|r| r.starts_with(&second)),
                "{raised:?} {second}"
            );
            assert_eq!(late.body["reported"]["low_reservoir_alarm_at"], alarm_at.clone());
            let overdue = service.get("/api/v1/worklist?on=2027-03-10", &late_nurse).await;
            assert_eq!(overdue.body["items"][0]["bucket"], json!("overdue"));
            assert_eq!(overdue.body["items"][0]["low_reservoir_alarm_at"], alarm_at.clone());
        }
    });
}

#[test]
fn a_refill_through_the_programmer_records_the_pumps_own_gap() {
    block(async {
        for mut service in backends().await {
            service.with_fleet();
            let nurse = service.user("nurse.jones", Role::NurseSpecialist).await;
            service.user("nurse.patel", Role::NurseSpecialist).await;
            let patient = service.patient(&nurse, &nhs_number(12), None).await;
            let pump = service.pump(&nurse, patient, "NGV200002", "2026-11-25T10:00:00Z", 400).await;
            // 60 days: 12 mL delivered, 8 mL left.
            service.set_now("2027-01-24T10:00:00Z");
            let nurse = service.sign_in("nurse.jones").await;
            let staged = service
                .post(&format!("/api/v1/pumps/{pump}/program/refill"), &nurse, json!({"volume_added_ml": 20, "concentration_micrograms_per_ml": 2000, "lot": "BX77", "expires_on": "2027-09-01", "second_checker": "nurse.patel"}))
                .await;
            assert_eq!(staged.status, StatusCode::OK, "{:?}", staged.body);
            assert_eq!(staged.body["withdrawal"]["volume_expected_ml"], json!(8));
            assert_eq!(staged.body["withdrawal"]["volume_withdrawn_ml"], json!(8));
            assert_eq!(staged.body["withdrawal"]["gap_needs_review"], json!(false));
            let hash = staged.body["hash"].as_str().expect("hash").to_owned();
            // The second checker confirms with their own password: the nurse's is refused, at
            // the field, and nothing is committed.
            let wrong = service
                .post(
                    &format!("/api/v1/pumps/{pump}/program/commit"),
                    &nurse,
                    json!({"hash": hash, "second_checker_password": "nurse.jones-password"}),
                )
                .await;
            assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", wrong.body);
            assert_eq!(wrong.body["errors"][0]["field"], json!("second_checker_password"), "{:?}", wrong.body);
            let done = service
                .post(
                    &format!("/api/v1/pumps/{pump}/program/commit"),
                    &nurse,
                    json!({"hash": hash, "second_checker_password": "nurse.patel-password"}),
                )
                .await;
            assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
            assert_eq!(done.body["answer"]["second_checker_signed_in"], json!(true));
            let programmings = service.get(&format!("/api/v1/pumps/{pump}/programmings"), &nurse).await;
            assert_eq!(programmings.body["items"][0]["answer"]["second_checker_signed_in"], json!(true));
            assert_eq!(done.body["recorded"]["volume_expected_ml"], json!(8));
            assert_eq!(done.body["recorded"]["second_checker"], json!("nurse.patel"));
            // 20 mL again from 24 Jan 2027 10:00: the alarm 90 days on, 24 Apr 2027 10:00 UTC (11:00 BST).
            assert_eq!(done.body["recorded"]["low_reservoir_alarm_at"], json!("2027-04-24T10:00:00Z"));
            assert_eq!(done.body["pump"]["refill"]["refill_due_on"], json!("2027-04-24"));
        }
    });
}

#[test]
fn concurrent_writers_never_fork_the_audit_chain() {
    block(async {
        for service in backends().await {
            let nurse = service.user("nurse.jones", Role::NurseSpecialist).await;
            let admin = service.user("admin", Role::Admin).await;
            let patient = service.patient(&nurse, &nhs_number(13), None).await;
            let before = service.get("/api/v1/audit/verify", &admin).await.body["entries"].as_i64().expect("entries");
            let mut tasks = Vec::new();
            for i in 0..24 {
                let router = service.router.clone();
                let token = nurse.clone();
                tasks.push(tokio::spawn(async move {
                    use tower::ServiceExt;
                    let body =
                        json!({"patient_id": patient, "kind": "dose_review", "on": format!("2026-12-{:02}", 1 + i)});
                    let request = axum::http::Request::post("/api/v1/appointments")
                        .header("authorization", format!("Bearer {token}"))
                        .header("content-type", "application/json")
                        .body(axum::body::Body::from(body.to_string()))
                        .expect("request");
                    router.oneshot(request).await.expect("answer").status()
                }));
            }
            for task in tasks {
                assert_eq!(task.await.expect("task"), StatusCode::CREATED);
            }
            let verified = service.get("/api/v1/audit/verify", &admin).await;
            assert_eq!(verified.body["valid"], json!(true), "{}: {:?}", service.backend, verified.body);
            assert_eq!(verified.body["entries"], json!(before + 24));
            assert_eq!(verified.body["first_broken"], Value::Null);
        }
    });
}
