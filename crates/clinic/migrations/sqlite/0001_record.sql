-- The ITB service's record. Quantities are exact integers: nanolitres (_nl), nanograms per mL
-- (_ng_per_ml), nanograms per day (_ng_per_day), grams (_g); instants are milliseconds since
-- 1970 UTC (_ms); dates are text YYYY-MM-DD. The PostgreSQL schema holds the same data.
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE patients (
    id INTEGER PRIMARY KEY,
    nhs_number TEXT NOT NULL UNIQUE,
    given_name TEXT NOT NULL,
    family_name TEXT NOT NULL,
    date_of_birth TEXT NOT NULL,
    origin TEXT NOT NULL,
    injury_level TEXT,
    high_risk INTEGER NOT NULL,
    high_risk_reason TEXT,
    weight_g INTEGER,
    gp_practice TEXT NOT NULL,
    contacts TEXT NOT NULL,
    communication_needs TEXT NOT NULL,
    stage TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    patient_id INTEGER REFERENCES patients(id),
    failed_count INTEGER NOT NULL DEFAULT 0,
    retry_after_ms INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL
);
CREATE TABLE tokens (
    hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    expires_at_ms INTEGER NOT NULL
);
CREATE TABLE prescriptions (
    id INTEGER PRIMARY KEY,
    pump_id INTEGER NOT NULL,
    version INTEGER NOT NULL,
    prescription TEXT NOT NULL,
    worst_case_ng_per_day INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    authorised_by INTEGER NOT NULL REFERENCES users(id),
    reason TEXT NOT NULL,
    review TEXT NOT NULL,
    verdict TEXT,
    override_reason TEXT,
    UNIQUE (pump_id, version)
);
CREATE TABLE pumps (
    id INTEGER PRIMARY KEY,
    patient_id INTEGER NOT NULL REFERENCES patients(id),
    profile TEXT NOT NULL,
    serial TEXT NOT NULL UNIQUE,
    implanted_at_ms INTEGER NOT NULL,
    catheter_cm INTEGER NOT NULL,
    catheter_tip_level TEXT,
    alarm_threshold_nl INTEGER NOT NULL,
    implanted INTEGER NOT NULL,
    explanted_at_ms INTEGER,
    explant_reason TEXT,
    replaces_pump_id INTEGER REFERENCES pumps(id),
    ref_kind TEXT NOT NULL,
    ref_at_ms INTEGER NOT NULL,
    ref_reservoir_nl INTEGER NOT NULL,
    ref_expected_nl INTEGER NOT NULL,
    concentration_ng_per_ml INTEGER NOT NULL,
    filled_at_ms INTEGER NOT NULL,
    ref_alarm_at_ms INTEGER,
    prescription_id INTEGER REFERENCES prescriptions(id),
    high_risk INTEGER NOT NULL,
    due_by_ms INTEGER,
    due_on TEXT,
    alarm_at_ms INTEGER,
    expires_at_ms INTEGER,
    limited_by TEXT,
    unknown_reason TEXT,
    gap_review_pending INTEGER NOT NULL DEFAULT 0,
    pump_prescription_differs INTEGER NOT NULL DEFAULT 0,
    eri INTEGER NOT NULL DEFAULT 0,
    eos_on TEXT
);
CREATE INDEX pumps_worklist ON pumps (implanted, high_risk, due_on, due_by_ms, id);
CREATE INDEX pumps_patient ON pumps (patient_id);
CREATE INDEX pumps_eri ON pumps (implanted, eri);
CREATE INDEX pumps_eos ON pumps (implanted, eos_on);
CREATE INDEX pumps_gap ON pumps (gap_review_pending);
CREATE TABLE pump_keys (
    id INTEGER PRIMARY KEY,
    pump_id INTEGER NOT NULL REFERENCES pumps(id),
    role TEXT NOT NULL,
    public_key TEXT NOT NULL,
    paired_at_ms INTEGER NOT NULL,
    paired_by INTEGER REFERENCES users(id)
);
CREATE TABLE battery_estimates (
    id INTEGER PRIMARY KEY,
    pump_id INTEGER NOT NULL REFERENCES pumps(id),
    at_ms INTEGER NOT NULL,
    remaining_days INTEGER,
    eri INTEGER NOT NULL,
    eos_on TEXT,
    source TEXT NOT NULL
);
CREATE INDEX battery_pump ON battery_estimates (pump_id, at_ms);
CREATE TABLE refills (
    id INTEGER PRIMARY KEY,
    pump_id INTEGER NOT NULL REFERENCES pumps(id),
    at_ms INTEGER NOT NULL,
    expected_nl INTEGER NOT NULL,
    withdrawn_nl INTEGER NOT NULL,
    gap_nl INTEGER NOT NULL,
    gap_direction TEXT,
    gap_limit_nl INTEGER NOT NULL,
    gap_needs_review INTEGER NOT NULL,
    drug TEXT NOT NULL,
    concentration_ng_per_ml INTEGER NOT NULL,
    lot TEXT NOT NULL,
    expires_on TEXT NOT NULL,
    added_nl INTEGER NOT NULL,
    bridge TEXT,
    alarm_at_ms INTEGER,
    due_by_ms INTEGER,
    due_on TEXT,
    limited_by TEXT,
    nurse_id INTEGER NOT NULL REFERENCES users(id),
    second_checker_id INTEGER NOT NULL REFERENCES users(id),
    place TEXT NOT NULL,
    reviewed_by INTEGER REFERENCES users(id),
    reviewed_at_ms INTEGER,
    review_note TEXT,
    recorded_at_ms INTEGER NOT NULL
);
CREATE INDEX refills_pump ON refills (pump_id, at_ms);
CREATE INDEX refills_review ON refills (gap_needs_review, reviewed_at_ms);
CREATE TABLE interrogations (
    id INTEGER PRIMARY KEY,
    pump_id INTEGER NOT NULL REFERENCES pumps(id),
    at_ms INTEGER NOT NULL,
    reported TEXT NOT NULL,
    recorded_by INTEGER NOT NULL REFERENCES users(id),
    recorded_at_ms INTEGER NOT NULL
);
CREATE INDEX interrogations_pump ON interrogations (pump_id, at_ms);
CREATE TABLE appointments (
    id INTEGER PRIMARY KEY,
    patient_id INTEGER NOT NULL REFERENCES patients(id),
    pump_id INTEGER REFERENCES pumps(id),
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    on_date TEXT,
    place TEXT NOT NULL,
    note TEXT NOT NULL,
    created_by INTEGER NOT NULL REFERENCES users(id),
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX appointments_day ON appointments (on_date);
CREATE INDEX appointments_open ON appointments (pump_id, kind, state);
CREATE INDEX appointments_patient ON appointments (patient_id);
CREATE INDEX appointments_kind ON appointments (kind, state);
CREATE TABLE appointment_events (
    id INTEGER PRIMARY KEY,
    appointment_id INTEGER NOT NULL REFERENCES appointments(id),
    state TEXT NOT NULL,
    on_date TEXT,
    at_ms INTEGER NOT NULL,
    by_user INTEGER NOT NULL REFERENCES users(id),
    reason TEXT NOT NULL
);
CREATE TABLE programmings (
    id INTEGER PRIMARY KEY,
    pump_id INTEGER NOT NULL REFERENCES pumps(id),
    at_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    review TEXT NOT NULL,
    hash TEXT NOT NULL,
    answer TEXT NOT NULL,
    outcome TEXT NOT NULL,
    by_user INTEGER NOT NULL REFERENCES users(id)
);
CREATE INDEX programmings_pump ON programmings (pump_id, at_ms);
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE idempotency (
    user_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    state TEXT NOT NULL,
    status INTEGER,
    location TEXT,
    body TEXT,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX appointment_events_appointment ON appointment_events (appointment_id);
CREATE INDEX pump_keys_pump ON pump_keys (pump_id);
CREATE INDEX audit_subject ON audit (subject, seq);
CREATE INDEX patients_name ON patients (family_name, given_name, id);
