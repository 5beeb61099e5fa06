//! Patients found by the start of the family name, or the whole NHS number, on both backends:
//! byte-wise prefixes whatever the database's collation (`Diaz`, `O'Brien`), in name order.

mod common;

use axum::http::StatusCode;
use common::{backends, block, nhs_number};
use itb_clinic::rules::access::Role;
use serde_json::json;

#[test]
fn patients_are_found_by_the_start_of_the_family_name_or_the_nhs_number() {
    block(async {
        for service in backends().await {
            let nurse = service.user("nurse.jones", Role::NurseSpecialist).await;
            let names = ["Diaz", "Diaz-Smith", "Diazo", "O'Brien", "Obrien", "Roberts", "Robertson", "roberts", "Dias"];
            for (i, family) in names.iter().enumerate() {
                let reply = service
                    .post(
                        "/api/v1/patients",
                        &nurse,
                        json!({"nhs_number": nhs_number(200 + u32::try_from(i).expect("small")), "given_name": "Sam", "family_name": family, "date_of_birth": "1980-03-14", "origin": "spinal"}),
                    )
                    .await;
                assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
            }
            let found = |q: &'static str| {
                let store = service.store.clone();
                async move {
                    let listed = store.find_patients(q, 50, 0).await.expect("finds");
                    let names: Vec<String> =
                        listed.items.iter().map(|p| p["family_name"].as_str().unwrap_or("").to_owned()).collect();
                    assert_eq!(listed.total, i64::try_from(names.len()).expect("small"), "{q}");
                    names
                }
            };
            assert_eq!(found("Diaz").await, vec!["Diaz", "Diaz-Smith", "Diazo"], "{}", service.backend);
            assert_eq!(found("diaz").await, vec!["Diaz", "Diaz-Smith", "Diazo"], "{}", service.backend);
            assert_eq!(found("O'B").await, vec!["O'Brien"], "{}", service.backend);
            assert_eq!(found("rob").await, vec!["Roberts", "Robertson", "roberts"], "{}", service.backend);
            assert_eq!(found("Roberts").await, vec!["Roberts", "Robertson"], "{}", service.backend);
            assert!(found("zzz").await.is_empty());
            let digits = nhs_number(200);
            let spaced = format!("{} {} {}", &digits[..3], &digits[3..6], &digits[6..]);
            let by_number = service.store.find_patients(&spaced, 50, 0).await.expect("finds");
            assert_eq!(by_number.items.len(), 1);
            assert_eq!(by_number.items[0]["family_name"], json!("Diaz"));
        }
    });
}
