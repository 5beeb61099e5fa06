//! Rules found in review, each written as a test before its fix, on both backends.

mod common;

use axum::http::StatusCode;
use common::{backends, block, nhs_number};
use itb_clinic::rules::access::Role;
use serde_json::json;

fn ptm_prescription() -> serde_json::Value {
    // 400 micrograms/day and up to 4 PTM boluses of 50 micrograms: 600 micrograms/day at worst.
    json!({"mode": "simple_continuous", "dose": "400 micrograms/day", "ptm": {"bolus_dose": "50 micrograms", "bolus_duration": "10 min", "lockout": "2 h", "max_boluses_per_day": 4}})
}

#[test]
fn a_prescription_change_keeps_the_worst_case_refill_date_and_the_gap_keeps_the_mean() {
    block(async {
        for service in backends().await {
            let nurse = service.user("nurse.jones", Role::NurseSpecialist).await;
            service.user("nurse.patel", Role::NurseSpecialist).await;
            let patient = service.patient(&nurse, &nhs_number(21), None).await;
            let implant = json!({"profile": "synchromed-ii-20", "serial": "NGV400001", "implanted_at": "2026-11-25T10:00:00Z", "catheter_cm": 50, "fill_ml": 20, "concentration_micrograms_per_ml": 2000, "prescription": ptm_prescription()});
            let pump = service.post(&format!("/api/v1/patients/{patient}/pumps"), &nurse, implant).await;
            assert_eq!(pump.status, StatusCode::CREATED, "{:?}", pump.body);
            let id = pump.body["id"].as_i64().expect("id");
            // 600 micrograms/day at 2000 micrograms/mL: 0.3 mL a day; 18 mL above the alarm: 60 days.
            assert_eq!(pump.body["refill"]["refill_due_by"], json!("2027-01-24T10:00:00Z"));
            // Day 40: the same prescription again. At worst 12 mL have gone (8 mL left): 20 more days.
            service.set_now("2027-01-04T10:00:00Z");
            let nurse = service.sign_in("nurse.jones").await;
            let again = service
                .post(&format!("/api/v1/pumps/{id}/prescriptions"), &nurse, json!({"prescription": ptm_prescription(), "reason": "reviewed in clinic, unchanged", "at": "2027-01-04T10:00:00Z"}))
                .await;
            assert_eq!(again.status, StatusCode::CREATED, "{:?}", again.body);
            let read = service.get(&format!("/api/v1/pumps/{id}"), &nurse).await;
            assert_eq!(
                read.body["refill"]["refill_due_by"],
                json!("2027-01-24T10:00:00Z"),
                "a prescription change must not move the date later: {:?}",
                read.body["refill"]
            );
            // Day 50: the record expects the mean day used (400 micrograms: 0.2 mL a day): 10 mL left.
            service.set_now("2027-01-14T10:00:00Z");
            let nurse = service.sign_in("nurse.jones").await;
            let refill = service
                .post(&format!("/api/v1/pumps/{id}/refills"), &nurse, json!({"at": "2027-01-14T10:00:00Z", "volume_withdrawn_ml": 10, "volume_added_ml": 20, "concentration_micrograms_per_ml": 2000, "lot": "BX9", "expires_on": "2027-09-01", "nurse": "nurse.jones", "second_checker": "nurse.patel"}))
                .await;
            assert_eq!(refill.status, StatusCode::CREATED, "{:?}", refill.body);
            assert_eq!(refill.body["volume_expected_ml"], json!(10));
            assert_eq!(refill.body["gap_ml"], json!(0));
        }
    });
}

#[test]
fn a_replacement_naming_an_old_explanted_pump_cannot_leave_two_pumps_implanted() {
    block(async {
        for service in backends().await {
            let surgeon = service.user("mr.hughes", Role::Neurosurgeon).await;
            let patient = service.patient(&surgeon, &nhs_number(22), None).await;
            let a = service.pump(&surgeon, patient, "NGV400011", "2026-01-05T10:00:00Z", 400).await;
            let out = service
                .post(
                    &format!("/api/v1/pumps/{a}/explant"),
                    &surgeon,
                    json!({"at": "2026-03-01T10:00:00Z", "reason": "pocket infection"}),
                )
                .await;
            assert_eq!(out.status, StatusCode::OK, "{:?}", out.body);
            let b = service.pump(&surgeon, patient, "NGV400012", "2026-05-01T10:00:00Z", 400).await;
            let c = service
                .post(&format!("/api/v1/patients/{patient}/pumps"), &surgeon, json!({"profile": "synchromed-ii-20", "serial": "NGV400013", "implanted_at": "2026-11-20T10:00:00Z", "catheter_cm": 50, "fill_ml": 20, "concentration_micrograms_per_ml": 2000, "prescription": {"mode": "simple_continuous", "dose": "400 micrograms/day"}, "replaces_pump_id": a}))
                .await;
            assert_eq!(c.status, StatusCode::CONFLICT, "{:?}", c.body);
            let worklist = service.get("/api/v1/worklist?on=2026-11-25", &surgeon).await;
            let pumps: Vec<i64> = worklist.body["items"]
                .as_array()
                .expect("items")
                .iter()
                .filter_map(|i| i["pump_id"].as_i64())
                .collect();
            assert_eq!(pumps, vec![b]);
        }
    });
}

#[test]
fn a_refill_dated_before_a_later_reading_is_refused_and_an_explant_closes_open_appointments() {
    block(async {
        for service in backends().await {
            let nurse = service.user("nurse.jones", Role::NurseSpecialist).await;
            service.user("nurse.patel", Role::NurseSpecialist).await;
            let patient = service.patient(&nurse, &nhs_number(23), None).await;
            let pump = service.pump(&nurse, patient, "NGV400021", "2026-08-27T10:00:00Z", 400).await;
            let read = service
                .post(
                    &format!("/api/v1/pumps/{pump}/interrogations"),
                    &nurse,
                    json!({"at": "2026-11-25T09:00:00Z", "reported": {"reservoir_ml": 2.2}}),
                )
                .await;
            assert_eq!(read.status, StatusCode::CREATED, "{:?}", read.body);
            let early = service
                .post(&format!("/api/v1/pumps/{pump}/refills"), &nurse, json!({"at": "2026-11-25T08:30:00Z", "volume_withdrawn_ml": 2.2, "volume_added_ml": 20, "concentration_micrograms_per_ml": 2000, "lot": "BX1", "expires_on": "2027-06-01", "nurse": "nurse.jones", "second_checker": "nurse.patel"}))
                .await;
            assert_eq!(early.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", early.body);
            assert_eq!(early.body["errors"][0]["field"], json!("at"));
            let surgeon = service.user("mr.hughes", Role::Neurosurgeon).await;
            let out = service
                .post(
                    &format!("/api/v1/pumps/{pump}/explant"),
                    &surgeon,
                    json!({"at": "2026-11-25T09:30:00Z", "reason": "pump removed: infection"}),
                )
                .await;
            assert_eq!(out.status, StatusCode::OK, "{:?}", out.body);
            let listed = service.get(&format!("/api/v1/appointments?patient_id={patient}"), &nurse).await;
            for appointment in listed.body["items"].as_array().expect("items") {
                assert!(
                    !["requested", "scheduled", "arrived"].contains(&appointment["state"].as_str().unwrap_or("")),
                    "an explanted pump's appointment stays open: {appointment}"
                );
            }
        }
    });
}

#[test]
fn an_interrogation_showing_another_prescription_puts_the_pump_in_unknown() {
    block(async {
        for service in backends().await {
            let nurse = service.user("nurse.jones", Role::NurseSpecialist).await;
            let patient = service.patient(&nurse, &nhs_number(24), None).await;
            let pump = service.pump(&nurse, patient, "NGV400031", "2026-11-01T10:00:00Z", 400).await;
            let read = service
                .post(&format!("/api/v1/pumps/{pump}/interrogations"), &nurse, json!({"at": "2026-11-25T09:00:00Z", "reported": {"reservoir_ml": 15.2, "prescription": {"mode": "simple_continuous", "dose": "600 micrograms/day"}}}))
                .await;
            assert_eq!(read.status, StatusCode::CREATED, "{:?}", read.body);
            let worklist = service.get("/api/v1/worklist?on=2026-11-25", &nurse).await;
            assert_eq!(worklist.body["items"][0]["bucket"], json!("unknown"), "{:?}", worklist.body["items"][0]);
            let reason = worklist.body["items"][0]["unknown_reason"].as_str().unwrap_or("").to_owned();
            assert!(reason.contains("the pump runs a different prescription"), "{reason}");
        }
    });
}
