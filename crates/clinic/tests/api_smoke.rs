//! The first walk through the API on both backends: sign in, register, implant, the worklist.

mod common;

use axum::http::StatusCode;
use common::{backends, block, nhs_number};
use itb_clinic::rules::access::Role;
use serde_json::json;

#[test]
fn register_implant_and_see_the_pump_on_the_worklist() {
    block(async {
        for service in backends().await {
            let nurse = service.user("nurse.jones", Role::NurseSpecialist).await;
            let patient = service.patient(&nurse, &nhs_number(1), Some("T4")).await;
            let read = service.get(&format!("/api/v1/patients/{patient}"), &nurse).await;
            assert_eq!(read.status, StatusCode::OK);
            assert_eq!(read.body["high_risk"], json!(true), "{}", service.backend);
            let pump = service.pump(&nurse, patient, "NGV000001", "2026-11-25T10:00:00Z", 400).await;
            let pump_view = service.get(&format!("/api/v1/pumps/{pump}"), &nurse).await;
            assert_eq!(
                pump_view.body["refill"]["low_reservoir_alarm_at"],
                json!("2027-02-23T10:00:00Z"),
                "{:?}",
                pump_view.body
            );
            let worklist = service.get("/api/v1/worklist?on=2026-11-25", &nurse).await;
            assert_eq!(worklist.status, StatusCode::OK, "{:?}", worklist.body);
            assert_eq!(
                worklist.body["counts"],
                json!({"overdue": 0, "unknown": 0, "due_7": 0, "due_28": 0, "later": 1})
            );
            assert_eq!(worklist.body["items"][0]["refill_due_on"], json!("2027-02-23"));
            let late = service.get("/api/v1/worklist?on=2027-02-24", &nurse).await;
            assert_eq!(late.body["items"][0]["bucket"], json!("overdue"));
        }
    });
}

#[test]
fn the_openapi_document_names_the_fields_the_worklist_and_a_refill_really_have() {
    block(async {
        let service = common::sqlite().await;
        let nurse = service.user("nurse.jones", Role::NurseSpecialist).await;
        service.user("nurse.patel", Role::NurseSpecialist).await;
        let patient = service.patient(&nurse, &nhs_number(2), None).await;
        let pump = service.pump(&nurse, patient, "NGV000002", "2026-08-27T10:00:00Z", 400).await;
        let refill = service
            .post(&format!("/api/v1/pumps/{pump}/refills"), &nurse, json!({"at": "2026-11-25T10:00:00Z", "volume_withdrawn_ml": 2, "volume_added_ml": 20, "concentration_micrograms_per_ml": 2000, "lot": "BX1", "expires_on": "2027-06-01", "nurse": "nurse.jones", "second_checker": "nurse.patel"}))
            .await;
        assert_eq!(refill.status, StatusCode::CREATED, "{:?}", refill.body);
        let worklist = service.get("/api/v1/worklist?on=2026-11-25", &nurse).await;
        let document = service.send("GET", "/api/v1/openapi.json", None, None, &[]).await.body;
        let schemas = &document["components"]["schemas"];
        for (schema, value) in
            [("Refill", &refill.body), ("Worklist", &worklist.body), ("WorklistItem", &worklist.body["items"][0])]
        {
            for field in schemas[schema]["required"].as_array().expect("required") {
                let name = field.as_str().expect("name");
                assert!(value.get(name).is_some(), "{schema}.{name} is in the document but not in the answer: {value}");
            }
        }
    });
}
