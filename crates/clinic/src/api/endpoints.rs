//! Every endpoint of the API: its method, path, the permission it needs, and what it is. The
//! router, the OpenAPI document, docs/ROLES.md and the role-matrix test all read this table.

use axum::Router;
use axum::routing::{get, post};

use super::AppState;
use super::handlers as h;
use crate::rules::access::Permission;

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// Anyone signed in.
    SignedIn,
    /// A role with this permission.
    Needs(Permission),
}

/// One endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    /// `GET`, `POST`, `PATCH`, `PUT`.
    pub method: &'static str,
    /// The path, with `{id}` parameters.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// Its operation id.
    pub operation: &'static str,
    /// What it does.
    pub summary: &'static str,
    /// The request body's schema, if it takes one.
    pub body: Option<&'static str>,
    /// Query parameters.
    pub query: &'static [&'static str],
    /// The success status.
    pub success: u16,
}

const PAGE: &[&str] = &["limit", "offset"];

macro_rules! endpoints {
    ($($method:literal $path:literal $access:expr, $op:literal, $summary:literal, $body:expr, $query:expr, $success:literal;)*) => {
        /// The table.
        pub const ENDPOINTS: &[Endpoint] = &[
            $(Endpoint { method: $method, path: $path, access: $access, operation: $op, summary: $summary, body: $body, query: $query, success: $success },)*
        ];
    };
}

use Access::{Needs, Public, SignedIn};
use Permission as P;

endpoints! {
    "POST" "/api/v1/auth/token" Public, "signIn", "Sign in: a bearer token for the API", Some("SignIn"), &[], 200;
    "GET" "/api/v1/me" SignedIn, "me", "Who is signed in", None, &[], 200;
    "GET" "/api/v1/openapi.json" Public, "openapi", "This document", None, &[], 200;
    "GET" "/api/v1/patients" Needs(P::ReadRecord), "listPatients", "Patients by family name (a patient: their own record)", None, &["q", "limit", "offset"], 200;
    "POST" "/api/v1/patients" Needs(P::RegisterPatient), "registerPatient", "Register a patient", Some("PatientInput"), &[], 201;
    "GET" "/api/v1/patients/{id}" Needs(P::ReadRecord), "getPatient", "A patient's record with their pumps", None, &[], 200;
    "PATCH" "/api/v1/patients/{id}" Needs(P::RegisterPatient), "updatePatient", "Change a patient's details", Some("PatientUpdate"), &[], 200;
    "POST" "/api/v1/patients/{id}/pumps" Needs(P::ManagePumps), "implantPump", "Record an implant with its fill and first prescription", Some("PumpInput"), &[], 201;
    "GET" "/api/v1/pumps/{id}" Needs(P::ReadRecord), "getPump", "A pump: drug, prescription, refill-due figures, keys, battery", None, &[], 200;
    "POST" "/api/v1/pumps/{id}/explant" Needs(P::ManagePumps), "explantPump", "Record an explant", Some("Explant"), &[], 200;
    "POST" "/api/v1/pumps/{id}/battery" Needs(P::ManagePumps), "addBatteryEstimate", "Record a battery estimate", Some("BatteryEstimate"), &[], 200;
    "POST" "/api/v1/pumps/{id}/keys" Needs(P::ManagePumps), "pairKey", "Record a key paired with the pump", Some("PairedKey"), &[], 200;
    "GET" "/api/v1/pumps/{id}/prescriptions" Needs(P::ReadRecord), "listPrescriptions", "Every version of the pump's prescription", None, PAGE, 200;
    "POST" "/api/v1/pumps/{id}/prescriptions" Needs(P::Prescribe), "prescribe", "Authorise a prescription (reviewed; a danger needs override_reason)", Some("PrescriptionInput"), &[], 201;
    "POST" "/api/v1/pumps/{id}/prescriptions/review" Needs(P::Prescribe), "reviewPrescription", "Review a prescription old beside new without recording it", Some("PrescriptionInput"), &[], 200;
    "GET" "/api/v1/pumps/{id}/refills" Needs(P::ReadRecord), "listRefills", "The pump's refills", None, PAGE, 200;
    "POST" "/api/v1/pumps/{id}/refills" Needs(P::Refill), "recordRefill", "Record a refill, signed by the nurse and a second checker", Some("RefillInput"), &[], 201;
    "GET" "/api/v1/refills/{id}" Needs(P::ReadRecord), "getRefill", "A refill", None, &[], 200;
    "POST" "/api/v1/refills/{id}/review" Needs(P::ReviewGap), "reviewRefillGap", "Record the review of a refill gap", Some("GapReview"), &[], 200;
    "GET" "/api/v1/pumps/{id}/interrogations" Needs(P::ReadRecord), "listInterrogations", "What the pump reported, as received", None, PAGE, 200;
    "POST" "/api/v1/pumps/{id}/interrogations" Needs(P::Interrogate), "recordInterrogation", "Record what a pump reported", Some("InterrogationInput"), &[], 201;
    "POST" "/api/v1/pumps/{id}/interrogate" Needs(P::Interrogate), "interrogate", "Interrogate the pump through the clinic's programmer and record it", None, &[], 201;
    "POST" "/api/v1/pumps/{id}/program/therapy" Needs(P::Prescribe), "stageTherapy", "Stage a therapy on the pump and review it old beside new", Some("ProgramTherapy"), &[], 200;
    "POST" "/api/v1/pumps/{id}/program/refill" Needs(P::Refill), "stageRefill", "Withdraw, then stage a refill on the pump and review it", Some("ProgramRefill"), &[], 200;
    "POST" "/api/v1/pumps/{id}/program/commit" Needs(P::Prescribe), "commitProgramming", "Commit the staged change by its hash", Some("ProgramCommit"), &[], 200;
    "GET" "/api/v1/pumps/{id}/programmings" Needs(P::ReadRecord), "listProgrammings", "Programmings: the review shown, its hash and the pump's answer", None, PAGE, 200;
    "GET" "/api/v1/appointments" Needs(P::ReadRecord), "listAppointments", "Appointments on a day, or of a patient, or all open", None, &["on", "patient_id", "limit", "offset"], 200;
    "POST" "/api/v1/appointments" Needs(P::ManageAppointments), "bookAppointment", "Book an appointment", Some("AppointmentInput"), &[], 201;
    "GET" "/api/v1/appointments/{id}" Needs(P::ReadRecord), "getAppointment", "An appointment with its history", None, &[], 200;
    "POST" "/api/v1/appointments/{id}/state" Needs(P::ManageAppointments), "changeAppointment", "Move an appointment to another state, with why", Some("AppointmentChange"), &[], 200;
    "GET" "/api/v1/worklist" Needs(P::Worklist), "worklist", "The refill worklist on a day", None, &["on", "limit", "offset"], 200;
    "GET" "/api/v1/settings" SignedIn, "getSettings", "The service's refill settings", None, &[], 200;
    "PUT" "/api/v1/settings" Needs(P::ManageSettings), "setSettings", "Change the refill settings (every date is recomputed)", Some("Settings"), &[], 200;
    "GET" "/api/v1/audit" Needs(P::Audit), "listAudit", "The audit log, newest first", None, &["subject", "limit", "offset"], 200;
    "GET" "/api/v1/audit/verify" Needs(P::Audit), "verifyAudit", "Verify the audit chain", None, &[], 200;
    "GET" "/api/v1/users" Needs(P::ManageUsers), "listUsers", "Users", None, PAGE, 200;
    "POST" "/api/v1/users" Needs(P::ManageUsers), "addUser", "Add a user", Some("UserInput"), &[], 201;
}

/// The routes of the table.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/token", post(h::sign_in))
        .route("/api/v1/me", get(h::me))
        .route("/api/v1/openapi.json", get(h::openapi))
        .route("/api/v1/patients", get(h::list_patients).post(h::register_patient))
        .route("/api/v1/patients/{id}", get(h::get_patient).patch(h::update_patient))
        .route("/api/v1/patients/{id}/pumps", post(h::implant_pump))
        .route("/api/v1/pumps/{id}", get(h::get_pump))
        .route("/api/v1/pumps/{id}/explant", post(h::explant_pump))
        .route("/api/v1/pumps/{id}/battery", post(h::add_battery))
        .route("/api/v1/pumps/{id}/keys", post(h::pair_key))
        .route("/api/v1/pumps/{id}/prescriptions", get(h::list_prescriptions).post(h::prescribe))
        .route("/api/v1/pumps/{id}/prescriptions/review", post(h::review_prescription))
        .route("/api/v1/pumps/{id}/refills", get(h::list_refills).post(h::record_refill))
        .route("/api/v1/refills/{id}", get(h::get_refill))
        .route("/api/v1/refills/{id}/review", post(h::review_gap))
        .route("/api/v1/pumps/{id}/interrogations", get(h::list_interrogations).post(h::record_interrogation))
        .route("/api/v1/pumps/{id}/interrogate", post(crate::programming::interrogate))
        .route("/api/v1/pumps/{id}/program/therapy", post(crate::programming::stage_therapy))
        .route("/api/v1/pumps/{id}/program/refill", post(crate::programming::stage_refill))
        .route("/api/v1/pumps/{id}/program/commit", post(crate::programming::commit))
        .route("/api/v1/pumps/{id}/programmings", get(crate::programming::list))
        .route("/api/v1/appointments", get(h::list_appointments).post(h::book_appointment))
        .route("/api/v1/appointments/{id}", get(h::get_appointment))
        .route("/api/v1/appointments/{id}/state", post(h::change_appointment))
        .route("/api/v1/worklist", get(h::worklist))
        .route("/api/v1/settings", get(h::get_settings).put(h::set_settings))
        .route("/api/v1/audit", get(h::list_audit))
        .route("/api/v1/audit/verify", get(h::verify_audit))
        .route("/api/v1/users", get(h::list_users).post(h::add_user))
}
