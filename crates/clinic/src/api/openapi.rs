//! The OpenAPI 3.1 document, built from the endpoint table and the request schemas.

use serde_json::{Map, Value, json};

use super::endpoints::{Access, ENDPOINTS};

fn string(description: &str) -> Value {
    json!({"type": "string", "description": description})
}
fn number(description: &str) -> Value {
    json!({"type": "number", "minimum": 0, "description": description})
}
fn integer(description: &str) -> Value {
    json!({"type": "integer", "description": description})
}
fn object(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "required": required, "properties": properties, "additionalProperties": false})
}

fn prescription() -> Value {
    json!({"type": "object", "description": "A prescription with the same fields as a TOML prescription file: mode (stopped, simple_continuous, flex, periodic_bolus), dose, steps, boluses and ptm limits, quantities as text with their units (\"400 micrograms/day\").", "required": ["mode"], "properties": {"mode": {"type": "string", "enum": ["stopped", "simple_continuous", "flex", "periodic_bolus"]}}})
}

fn schemas() -> Value {
    json!({
        "Token": {"type": "object", "required": ["token", "expires_at"], "properties": {
            "token": string("The bearer token: send 'Authorization: Bearer <token>'"),
            "expires_at": {"type": "string", "format": "date-time"},
            "user": {"type": "object"}}},
        "AuditVerification": {"type": "object", "required": ["entries", "valid", "first_broken"], "properties": {
            "entries": integer("Entries that verify"), "valid": {"type": "boolean"},
            "first_broken": {"type": ["integer", "null"], "description": "The first broken or missing entry"},
            "problem": {"type": ["string", "null"]}}},
        "Refill": {"type": "object", "required": ["id", "pump_id", "at", "volume_expected_ml", "volume_withdrawn_ml", "gap_ml", "gap_needs_review", "volume_added_ml", "concentration_micrograms_per_ml", "lot", "expires_on", "nurse", "second_checker", "low_reservoir_alarm_at", "refill_due_by"], "properties": {
            "id": integer("Refill"), "pump_id": integer("Pump"), "at": {"type": "string", "format": "date-time"},
            "volume_expected_ml": number("What the pump (or the record) expected in the reservoir"),
            "volume_withdrawn_ml": number("Withdrawn"), "gap_ml": number("The difference, either way"),
            "gap_direction": {"type": ["string", "null"], "enum": ["less", "more", null]},
            "gap_limit_ml": number("The device's threshold"),
            "gap_needs_review": {"type": "boolean", "description": "Over the threshold: held for a clinician's review"},
            "volume_added_ml": number("Added"), "concentration_micrograms_per_ml": number("Drug added"),
            "lot": string("Batch"), "expires_on": {"type": "string", "format": "date"},
            "bridge_bolus": {"type": ["object", "null"]},
            "low_reservoir_alarm_at": {"type": ["string", "null"], "format": "date-time"},
            "refill_due_by": {"type": ["string", "null"], "format": "date-time"},
            "refill_due_on": {"type": ["string", "null"], "format": "date"},
            "limited_by": {"type": ["string", "null"], "enum": ["low_reservoir_alarm", "drug_stability", null]},
            "nurse": string("Username"), "second_checker": string("Username"), "place": {"type": "string", "enum": ["clinic", "home"]}}},
        "WorklistItem": {"type": "object", "required": ["pump_id", "patient_id", "nhs_number", "bucket", "refill_due_by", "refill_due_on", "low_reservoir_alarm_at", "drug_expires_at", "limited_by", "booked_on", "booking_after_due", "high_risk"], "properties": {
            "pump_id": integer("Pump"), "patient_id": integer("Patient"), "nhs_number": string("10 digits"),
            "nhs_number_display": string("3-3-4"), "patient_name": string("Given and family name"),
            "bucket": {"type": "string", "enum": ["overdue", "unknown", "due_7", "due_28", "later"]},
            "refill_due_by": {"type": ["string", "null"], "format": "date-time"},
            "refill_due_on": {"type": ["string", "null"], "format": "date"},
            "low_reservoir_alarm_at": {"type": ["string", "null"], "format": "date-time"},
            "drug_expires_at": {"type": ["string", "null"], "format": "date-time"},
            "limited_by": {"type": ["string", "null"]}, "unknown_reason": {"type": ["string", "null"]},
            "booked_on": {"type": ["string", "null"], "format": "date"}, "booking_after_due": {"type": "boolean"},
            "high_risk": {"type": "boolean"}, "gap_review_pending": {"type": "boolean"}}},
        "Worklist": {"type": "object", "required": ["on", "counts", "items", "total", "limit", "offset"], "properties": {
            "on": {"type": "string", "format": "date"},
            "counts": {"type": "object", "required": ["overdue", "unknown", "due_7", "due_28", "later"], "additionalProperties": {"type": "integer"}},
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/WorklistItem"}},
            "total": integer("Implanted pumps"), "limit": integer("Page size"), "offset": integer("Skipped"),
            "replacements_due": {"type": "array", "items": {"type": "object"}},
            "post_mri_checks": {"type": "array", "items": {"type": "object"}},
            "gaps_to_review": {"type": "array", "items": {"type": "object"}}}},
        "Problem": {"type": "object", "description": "RFC 9457 problem details", "required": ["type", "title", "status", "detail"], "properties": {
            "type": string("urn:itb:problem:<kind>"), "title": string("What kind of problem"), "status": integer("HTTP status"),
            "detail": string("What is wrong and what to do"),
            "errors": {"type": "array", "items": {"type": "object", "required": ["field", "detail"], "properties": {"field": string("The field"), "detail": string("What is wrong with it")}}},
            "review": {"type": "object", "description": "The review, when a change needs an override"}}},
        "SignIn": object(&["username", "password"], json!({"username": string("Username"), "password": string("Password")})),
        "PatientInput": object(&["nhs_number", "given_name", "family_name", "date_of_birth", "origin"], json!({
            "nhs_number": string("10 digits with a valid modulus 11 check digit (spaces allowed)"),
            "given_name": string("Given name"), "family_name": string("Family name"),
            "date_of_birth": {"type": "string", "format": "date"},
            "origin": {"type": "string", "enum": ["spinal", "cerebral"]},
            "injury_level": string("Where spinal: C1-C8, T1-T12, L1-L5, S1-S5 (T6 and above: high-risk)"),
            "weight_kg": number("Weight in kg, to the gram"), "gp_practice": string("GP practice"),
            "contacts": {"type": "array", "items": object(&["name"], json!({"name": string("Name"), "relationship": string("Relationship"), "phone": string("Telephone")}))},
            "communication_needs": string("Communication needs"),
            "stage": {"type": "string", "enum": crate::store::record::STAGES}})),
        "PatientUpdate": object(&[], json!({
            "injury_level": string("Level of injury"), "weight_kg": number("Weight in kg"), "gp_practice": string("GP practice"),
            "contacts": {"type": "array", "items": {"type": "object"}}, "communication_needs": string("Communication needs"),
            "stage": {"type": "string", "enum": crate::store::record::STAGES}, "reason": string("Why")})),
        "PumpInput": object(&["profile", "serial", "implanted_at", "catheter_cm", "fill_ml", "concentration_micrograms_per_ml", "prescription"], json!({
            "profile": {"type": "string", "enum": ["synchromed-ii-20", "synchromed-ii-40"]}, "serial": string("Serial number"),
            "implanted_at": {"type": "string", "format": "date-time"}, "catheter_cm": integer("Catheter length, cm"),
            "catheter_tip_level": string("Catheter tip level"), "fill_ml": number("Fill at implant, mL"),
            "concentration_micrograms_per_ml": number("Drug concentration"), "prescription": prescription(),
            "alarm_threshold_ml": number("Low-reservoir alarm threshold, mL (default the profile's)"),
            "replaces_pump_id": integer("The pump this one replaces")})),
        "Explant": object(&["at", "reason"], json!({"at": {"type": "string", "format": "date-time"}, "reason": string("Why")})),
        "BatteryEstimate": object(&["at", "elective_replacement"], json!({"at": {"type": "string", "format": "date-time"}, "remaining_days": integer("Days of battery left"), "elective_replacement": {"type": "boolean"}, "end_of_service_on": {"type": "string", "format": "date"}})),
        "PairedKey": object(&["role", "public_key"], json!({"role": {"type": "string", "enum": ["clinician", "patient"]}, "public_key": string("64 hexadecimal characters")})),
        "PrescriptionInput": object(&["prescription", "reason"], json!({"prescription": prescription(), "reason": string("Why it changes"), "at": {"type": "string", "format": "date-time"}, "override_reason": string("Where the review has a dangerous warning: the written reason")})),
        "RefillInput": object(&["at", "volume_withdrawn_ml", "volume_added_ml", "concentration_micrograms_per_ml", "lot", "expires_on", "nurse", "second_checker"], json!({
            "at": {"type": "string", "format": "date-time"}, "volume_withdrawn_ml": number("Withdrawn, mL"), "volume_added_ml": number("Added, mL"),
            "concentration_micrograms_per_ml": number("Drug added"), "lot": string("Batch"), "expires_on": {"type": "string", "format": "date"},
            "nurse": string("The nurse's username"), "second_checker": string("The second checker's username (a different person)"),
            "place": {"type": "string", "enum": ["clinic", "home"]}, "drug": {"type": "string", "enum": ["baclofen"]}})),
        "GapReview": object(&["note"], json!({"note": string("The review of the gap: what was found and done")})),
        "InterrogationInput": object(&["at", "reported"], json!({"at": {"type": "string", "format": "date-time"}, "reported": {"type": "object", "required": ["reservoir_ml"], "description": "What the pump reported, stored as received", "properties": {"reservoir_ml": number("Reservoir estimate"), "concentration_micrograms_per_ml": number("Drug"), "filled_at": {"type": "string", "format": "date-time"}, "alarm_threshold_ml": number("Alarm threshold"), "battery_remaining_days": integer("Battery days left"), "elective_replacement": {"type": "boolean"}}}})),
        "ProgramTherapy": object(&["prescription"], json!({"prescription": prescription(), "reason": string("Why")})),
        "ProgramRefill": object(&["volume_withdrawn_ml", "volume_added_ml", "concentration_micrograms_per_ml", "lot", "expires_on", "second_checker"], json!({
            "volume_withdrawn_ml": number("Withdrawn, mL"), "volume_added_ml": number("Added, mL"), "concentration_micrograms_per_ml": number("Drug added"),
            "lot": string("Batch"), "expires_on": {"type": "string", "format": "date"}, "second_checker": string("Second checker's username"),
            "bridge": {"type": "boolean"}, "place": {"type": "string", "enum": ["clinic", "home"]}})),
        "ProgramCommit": object(&["hash"], json!({"hash": string("The staged change's hash, as the review showed it"), "override_reason": string("The written reason, where a warning needs one"), "second_checker_password": string("A refill: the second checker's own password, confirming the refill in person (recorded with the programming)"), "reason": string("Why")})),
        "AppointmentInput": object(&["patient_id", "kind"], json!({"patient_id": integer("Patient"), "pump_id": integer("Pump"), "kind": {"type": "string", "enum": crate::rules::appointments::Kind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>()}, "state": {"type": "string", "enum": ["requested", "scheduled"]}, "on": {"type": "string", "format": "date"}, "place": {"type": "string", "enum": ["clinic", "home"]}, "note": string("Note")})),
        "AppointmentChange": object(&["state", "reason"], json!({"state": {"type": "string", "enum": crate::rules::appointments::State::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>()}, "on": {"type": "string", "format": "date"}, "reason": string("Why")})),
        "Settings": object(&["margin_days"], json!({"margin_days": integer("Days before the earlier limit (0-60)"), "stability_days": integer("Days drug may stay in the reservoir (1-180)")})),
        "UserInput": object(&["username", "role", "password"], json!({"username": string("3-40 of a-z 0-9 . _ -"), "role": {"type": "string", "enum": crate::rules::access::Role::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>()}, "password": string("At least 8 characters"), "patient_id": integer("For a patient: their record")})),
    })
}

fn query_parameter(name: &str) -> Value {
    let (schema, description) = match name {
        "limit" => (
            json!({"type": "integer", "minimum": 1, "maximum": crate::model::PAGE_MAX}),
            "Items per page (default 100)",
        ),
        "offset" => (json!({"type": "integer", "minimum": 0}), "Items to skip"),
        "on" => (json!({"type": "string", "format": "date"}), "The day (YYYY-MM-DD; default today in Europe/London)"),
        "patient_id" => (json!({"type": "integer"}), "A patient"),
        "q" => (json!({"type": "string"}), "Part of an NHS number or a name"),
        _ => (json!({"type": "string"}), "A filter"),
    };
    json!({"name": name, "in": "query", "required": false, "schema": schema, "description": description})
}

fn problem_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}})
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for endpoint in ENDPOINTS {
        let mut parameters: Vec<Value> = Vec::new();
        if endpoint.path.contains("{id}") {
            parameters.push(json!({"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}));
        }
        parameters.extend(endpoint.query.iter().map(|q| query_parameter(q)));
        if endpoint.method == "POST" {
            parameters.push(json!({"name": "Idempotency-Key", "in": "header", "required": false, "schema": {"type": "string", "maxLength": super::idempotency::KEY_MAX}, "description": "A retry with the same key and request gets the first answer"}));
        }
        let mut responses = Map::new();
        let schema = match endpoint.operation {
            "signIn" => json!({"$ref": "#/components/schemas/Token"}),
            "recordRefill" | "getRefill" => json!({"$ref": "#/components/schemas/Refill"}),
            "worklist" => json!({"$ref": "#/components/schemas/Worklist"}),
            "verifyAudit" => json!({"$ref": "#/components/schemas/AuditVerification"}),
            _ => json!({"type": "object"}),
        };
        responses.insert(
            endpoint.success.to_string(),
            json!({"description": "Done", "content": {"application/json": {"schema": schema}}}),
        );
        if endpoint.operation == "signIn" {
            responses.insert("429".to_owned(), problem_response("Too many failed sign-ins: wait (Retry-After)"));
        }
        if matches!(endpoint.operation, "interrogate" | "stageTherapy" | "stageRefill" | "commitProgramming") {
            responses.insert("502".to_owned(), problem_response("The pump could not be reached or refused"));
        }
        responses.insert("401".to_owned(), problem_response("Not signed in"));
        responses.insert("403".to_owned(), problem_response("The role does not allow this"));
        responses.insert("404".to_owned(), problem_response("Not found"));
        responses.insert("409".to_owned(), problem_response("The record does not allow this now"));
        responses.insert("422".to_owned(), problem_response("The request has a problem; each field is named"));
        let mut operation = json!({
            "operationId": endpoint.operation,
            "summary": endpoint.summary,
            "parameters": parameters,
            "responses": responses,
        });
        match endpoint.access {
            Access::Public => operation["security"] = json!([]),
            Access::SignedIn => operation["description"] = json!("Any signed-in user."),
            Access::Needs(permission) => {
                let roles: Vec<&str> = crate::rules::access::Role::ALL
                    .iter()
                    .filter(|r| crate::rules::access::allows(**r, permission))
                    .map(|r| r.as_str())
                    .collect();
                operation["description"] = json!(format!("Permission {}: {}.", permission.as_str(), roles.join(", ")));
            }
        }
        if let Some(body) = endpoint.body {
            operation["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{body}")}}}});
        }
        let entry = paths.entry(endpoint.path.to_owned()).or_insert_with(|| json!({}));
        entry[endpoint.method.to_lowercase()] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "itb clinic API", "version": env!("CARGO_PKG_VERSION"), "description": "The ITB service's system of record. Quantities are JSON numbers in the unit their name ends with; instants RFC 3339 UTC; dates YYYY-MM-DD; errors RFC 9457 problem details."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {"schemas": schemas(), "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    })
}
