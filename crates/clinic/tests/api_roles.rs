//! The role matrix: docs/ROLES.md holds the role-permission table, and every endpoint of the API
//! is sent by every role (and by no one) on both backends, its answer checked against the table.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};

use axum::http::StatusCode;
use common::{Reply, Service, backends, block, nhs_number};
use itb_clinic::api::endpoints::{Access, ENDPOINTS, Endpoint};
use itb_clinic::rules::access::{Role, allows, table_markdown};
use serde_json::{Value, json};

const ROLES_MD: &str = include_str!("../../../docs/ROLES.md");

/// The cell of docs/ROLES.md's endpoint table that says who may call an endpoint.
fn who(endpoint: &Endpoint) -> String {
    match endpoint.access {
        Access::Public => "public".to_owned(),
        Access::SignedIn => "any signed-in user".to_owned(),
        Access::Needs(p) => format!("`{}`", p.as_str()),
    }
}

#[test]
fn roles_md_holds_the_table_and_every_endpoint() {
    assert!(
        ROLES_MD.contains(&table_markdown()),
        "docs/ROLES.md must hold table_markdown() verbatim; it is:\n{}",
        table_markdown()
    );
    for endpoint in ENDPOINTS {
        let row = format!("| {} | `{}` | {} |", endpoint.method, endpoint.path, who(endpoint));
        assert!(ROLES_MD.contains(endpoint.path), "docs/ROLES.md does not list {}", endpoint.path);
        assert!(ROLES_MD.contains(&row), "docs/ROLES.md has no row starting {row}");
    }
}

/// What the service under test holds: the users (one per role) and the resources whose ids go
/// into the paths. Every id is the patient user's own record.
struct World {
    usernames: Vec<(Role, String)>,
    tokens: Vec<(Role, String)>,
    patient: i64,
    pump: i64,
    refill: i64,
    appointment: i64,
    other_patient: i64,
    other_pump: i64,
}

impl World {
    fn username(&self, role: Role) -> &str {
        &self.usernames.iter().find(|(r, _)| *r == role).expect("a user of every role").1
    }
    fn token(&self, role: Role) -> &str {
        &self.tokens.iter().find(|(r, _)| *r == role).expect("a token for every role").1
    }
}

const IMPLANTED_AT: &str = "2026-10-01T10:00:00Z";
const PRESCRIPTION: &str = "400 micrograms/day";

async fn world(service: &Service) -> World {
    let mut usernames = Vec::new();
    let mut tokens = Vec::new();
    for role in Role::ALL {
        if role == Role::Patient {
            continue;
        }
        let username = role.as_str().to_owned();
        tokens.push((role, service.user(&username, role).await));
        usernames.push((role, username));
    }
    let nurse = tokens[0].1.clone();
    assert_eq!(tokens[0].0, Role::NurseSpecialist);

    let patient = service.patient(&nurse, &nhs_number(1), Some("T4")).await;
    let pump = service.pump(&nurse, patient, "NGV100001", IMPLANTED_AT, 400).await;
    let other_patient = service.patient(&nurse, &nhs_number(2), Some("L1")).await;
    let other_pump = service.pump(&nurse, other_patient, "NGV100002", IMPLANTED_AT, 400).await;

    // 55 days at 0.2 mL a day from 20 mL: 9 mL expected; 5 mL withdrawn is a gap to review.
    let nurse_name = usernames[0].1.clone();
    let pharmacist = usernames.iter().find(|(r, _)| *r == Role::Pharmacist).expect("pharmacist").1.clone();
    let refill = service
        .post(
            &format!("/api/v1/pumps/{pump}/refills"),
            &nurse,
            json!({"at": "2026-11-25T09:30:00Z", "volume_withdrawn_ml": 5, "volume_added_ml": 20,
                   "concentration_micrograms_per_ml": 2000, "lot": "LOT0001", "expires_on": "2027-06-30",
                   "nurse": nurse_name, "second_checker": pharmacist}),
        )
        .await;
    assert_eq!(refill.status, StatusCode::CREATED, "{}: {:?}", service.backend, refill.body);
    assert_eq!(refill.body["gap_needs_review"], json!(true), "{}: {:?}", service.backend, refill.body);
    let refill = refill.body["id"].as_i64().expect("refill id");

    let appointment = service
        .post(
            "/api/v1/appointments",
            &nurse,
            json!({"patient_id": patient, "pump_id": pump, "kind": "refill", "state": "scheduled", "on": "2026-12-02"}),
        )
        .await;
    assert_eq!(appointment.status, StatusCode::CREATED, "{}: {:?}", service.backend, appointment.body);
    let appointment = appointment.body["id"].as_i64().expect("appointment id");

    let patient_username = "patient.megan".to_owned();
    service
        .store
        .add_user(
            "test",
            &patient_username,
            Role::Patient,
            &format!("{patient_username}-password"),
            Some(patient),
            service.clock.now(),
        )
        .await
        .expect("patient user added");
    tokens.push((Role::Patient, service.sign_in(&patient_username).await));
    usernames.push((Role::Patient, patient_username));

    World { usernames, tokens, patient, pump, refill, appointment, other_patient, other_pump }
}

/// The endpoint's path with the world's ids in it.
fn path_of(endpoint: &Endpoint, w: &World) -> String {
    let path = endpoint.path;
    let id = if path.starts_with("/api/v1/patients/") {
        w.patient
    } else if path.starts_with("/api/v1/pumps/") {
        w.pump
    } else if path.starts_with("/api/v1/refills/") {
        w.refill
    } else if path.starts_with("/api/v1/appointments/") {
        w.appointment
    } else {
        0
    };
    let path = path.replace("{id}", &id.to_string());
    match endpoint.operation {
        "worklist" => format!("{path}?on=2026-11-25"),
        "listAppointments" => format!("{path}?patient_id={}", w.patient),
        _ => path,
    }
}

static SERIAL: AtomicU32 = AtomicU32::new(0);

/// A plausible body for the endpoint sent by `role`.
fn body_of(endpoint: &Endpoint, role: Role, w: &World) -> Option<Value> {
    let n = SERIAL.fetch_add(1, Ordering::SeqCst);
    let prescription = json!({"mode": "simple_continuous", "dose": PRESCRIPTION});
    let checker = if role == Role::Pharmacist { Role::NurseSpecialist } else { Role::Pharmacist };
    let body = match endpoint.operation {
        "signIn" => {
            json!({"username": w.username(role), "password": format!("{}-password", w.username(role))})
        }
        "registerPatient" => json!({"nhs_number": nhs_number(1000 + n), "given_name": "Alun", "family_name": "Price",
                                    "date_of_birth": "1975-06-01", "origin": "cerebral"}),
        "updatePatient" => json!({"gp_practice": "Riverside Surgery", "reason": "moved to a new practice"}),
        "implantPump" => json!({"profile": "synchromed-ii-20", "serial": format!("NGV2{n:05}"),
                                "implanted_at": common::START, "catheter_cm": 50, "fill_ml": 20,
                                "concentration_micrograms_per_ml": 2000, "prescription": prescription}),
        "explantPump" => json!({"at": common::START, "reason": "pump pocket infection"}),
        "addBatteryEstimate" => json!({"at": common::START, "remaining_days": 2000, "elective_replacement": false}),
        "pairKey" => json!({"role": "clinician", "public_key": "ab".repeat(32)}),
        "prescribe" | "reviewPrescription" => {
            json!({"prescription": prescription, "reason": "the same dose, confirmed at review"})
        }
        // Each after the one before (a refill must follow the last fill), all before the clock.
        "recordRefill" => {
            json!({"at": format!("2026-11-25T09:{:02}:00Z", 40 + role as u8), "volume_withdrawn_ml": 20, "volume_added_ml": 20,
                                 "concentration_micrograms_per_ml": 2000, "lot": "LOT0002", "expires_on": "2027-06-30",
                                 "nurse": w.username(role), "second_checker": w.username(checker)})
        }
        "reviewRefillGap" => json!({"note": "reviewed: volumes rechecked, catheter intact on X-ray"}),
        "recordInterrogation" => json!({"at": common::START, "reported": {"reservoir_ml": 19.5}}),
        "stageTherapy" => json!({"prescription": prescription, "reason": "the same dose, confirmed at review"}),
        "stageRefill" => json!({"volume_added_ml": 20, "concentration_micrograms_per_ml": 2000, "lot": "LOT0003",
                                "expires_on": "2027-06-30", "second_checker": w.username(checker)}),
        "commitProgramming" => json!({"hash": "0".repeat(64)}),
        "bookAppointment" => json!({"patient_id": w.patient, "pump_id": w.pump, "kind": "dose_review",
                                    "state": "requested"}),
        "changeAppointment" => {
            json!({"state": "scheduled", "on": "2026-12-09", "reason": "moved at the patient's request"})
        }
        "setSettings" => json!({"margin_days": 0}),
        "addUser" => {
            json!({"username": format!("extra.{n}"), "role": "physiotherapist", "password": "a-long-password"})
        }
        _ if endpoint.body.is_some() => json!({}),
        _ => return None,
    };
    Some(body)
}

/// Endpoints that reach a pump through the clinic's programmer: without a fleet of virtual
/// pumps an allowed role is told the pump cannot be reached (502).
fn needs_a_pump(endpoint: &Endpoint) -> bool {
    matches!(endpoint.operation, "interrogate" | "stageTherapy" | "stageRefill")
}

fn allowed(endpoint: &Endpoint, role: Role) -> bool {
    match endpoint.access {
        Access::Public | Access::SignedIn => true,
        Access::Needs(p) => allows(role, p),
    }
}

/// Why `reply` is not an RFC 9457 problem with `status`, if it is not.
fn not_a_problem(reply: &Reply, status: StatusCode) -> Option<String> {
    let content_type = reply.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    let body = &reply.body;
    let fine = reply.status == status
        && content_type.starts_with("application/problem+json")
        && body["type"].as_str().is_some_and(|t| !t.is_empty())
        && body["title"].as_str().is_some_and(|t| !t.is_empty())
        && body["status"].as_u64() == Some(u64::from(status.as_u16()))
        && body["detail"].as_str().is_some_and(|t| !t.is_empty());
    (!fine).then(|| format!("expected a {status} problem, got {} ({content_type}) {}", reply.status, reply.body))
}

/// The table's order, with the explant last so that the pump is implanted for every other call.
fn in_order() -> Vec<&'static Endpoint> {
    let mut all: Vec<&Endpoint> = ENDPOINTS.iter().collect();
    all.sort_by_key(|e| e.operation == "explantPump");
    all
}

#[test]
fn every_endpoint_as_every_role_agrees_with_the_table() {
    block(async {
        let mut wrong = Vec::new();
        for service in backends().await {
            let w = world(&service).await;
            let mut seen = Vec::new();
            for endpoint in in_order() {
                for role in Role::ALL {
                    let path = path_of(endpoint, &w);
                    let body = body_of(endpoint, role, &w);
                    let reply = service.send(endpoint.method, &path, Some(w.token(role)), body, &[]).await;
                    let status = reply.status;
                    let call = format!("{} {} {} as {role}", service.backend, endpoint.method, path);
                    seen.push(format!(
                        "{call}: {status} {}",
                        if status.is_success() { String::new() } else { reply.body.to_string() }
                    ));
                    if allowed(endpoint, role) {
                        let refused = matches!(status.as_u16(), 401 | 403 | 405);
                        let broken =
                            status.is_server_error() && !(needs_a_pump(endpoint) && status == StatusCode::BAD_GATEWAY);
                        let missing = status == StatusCode::NOT_FOUND;
                        let read_failed = endpoint.method == "GET" && status != StatusCode::OK;
                        if refused || broken || missing || read_failed {
                            wrong.push(format!("{call}: the table allows it, got {status} {}", reply.body));
                        }
                    } else if let Some(why) = not_a_problem(&reply, StatusCode::FORBIDDEN) {
                        wrong.push(format!("{call}: the table refuses it: {why}"));
                    }
                }
            }
            eprintln!("{}", seen.join("\n"));
        }
        assert!(wrong.is_empty(), "{} disagreement(s) with the table:\n{}", wrong.len(), wrong.join("\n"));
    });
}

#[test]
fn without_a_token_only_the_public_endpoints_answer() {
    block(async {
        let mut wrong = Vec::new();
        for service in backends().await {
            let w = world(&service).await;
            for endpoint in in_order() {
                let path = path_of(endpoint, &w);
                for token in [None, Some("not-a-token")] {
                    let body = body_of(endpoint, Role::NurseSpecialist, &w);
                    let reply = service.send(endpoint.method, &path, token, body, &[]).await;
                    let call = format!("{} {} {} with token {token:?}", service.backend, endpoint.method, path);
                    if endpoint.access == Access::Public {
                        if reply.status != StatusCode::OK {
                            wrong.push(format!("{call}: public, got {} {}", reply.status, reply.body));
                        }
                    } else if let Some(why) = not_a_problem(&reply, StatusCode::UNAUTHORIZED) {
                        wrong.push(format!("{call}: {why}"));
                    }
                }
            }
        }
        assert!(wrong.is_empty(), "{} endpoint(s) answer without a sign-in:\n{}", wrong.len(), wrong.join("\n"));
    });
}

#[test]
fn a_refused_role_is_refused_before_its_body_is_read() {
    block(async {
        let mut wrong = Vec::new();
        for service in backends().await {
            let w = world(&service).await;
            for endpoint in in_order().into_iter().filter(|e| e.body.is_some()) {
                for role in Role::ALL.into_iter().filter(|r| !allowed(endpoint, *r)) {
                    let path = path_of(endpoint, &w);
                    let reply = service.send(endpoint.method, &path, Some(w.token(role)), Some(json!({})), &[]).await;
                    if let Some(why) = not_a_problem(&reply, StatusCode::FORBIDDEN) {
                        wrong.push(format!(
                            "{} {} {path} as {role} with body {{}}: {why}",
                            service.backend, endpoint.method
                        ));
                    }
                }
            }
        }
        assert!(wrong.is_empty(), "{} refusal(s) depend on the body:\n{}", wrong.len(), wrong.join("\n"));
    });
}

#[test]
fn a_patient_sees_their_own_record_only() {
    block(async {
        for service in backends().await {
            let w = world(&service).await;
            let patient = w.token(Role::Patient);
            let own = service.get(&format!("/api/v1/patients/{}", w.patient), patient).await;
            assert_eq!(own.status, StatusCode::OK, "{}: {:?}", service.backend, own.body);
            for path in [
                format!("/api/v1/patients/{}", w.other_patient),
                format!("/api/v1/pumps/{}", w.other_pump),
                format!("/api/v1/pumps/{}/refills", w.other_pump),
                format!("/api/v1/appointments?patient_id={}", w.other_patient),
            ] {
                let reply = service.get(&path, patient).await;
                assert!(
                    not_a_problem(&reply, StatusCode::NOT_FOUND).is_none(),
                    "{} GET {path} as patient: another patient's record must look absent, got {} {}",
                    service.backend,
                    reply.status,
                    reply.body
                );
            }
            let list = service.get("/api/v1/patients", patient).await;
            assert_eq!(list.status, StatusCode::OK, "{}: {:?}", service.backend, list.body);
            let ids: Vec<i64> =
                list.body["items"].as_array().expect("items").iter().map(|p| p["id"].as_i64().expect("id")).collect();
            assert_eq!(ids, vec![w.patient], "{}: a patient's list holds their own record only", service.backend);
        }
    });
}
