//! The pages at 100,000 patients: server time of each page through the real router (template,
//! reads and all), and the weight of the worklist page.
//!
//! `cargo bench -p itb-web --bench pages` (the seeded SQLite file is the clinic benchmark's,
//! kept under target/bench-clinic/ and reused; ITB_BENCH_PATIENTS changes the size).

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use http_body_util::BodyExt;
use itb_clinic::api::{AppState, Caller};
use itb_clinic::fleet::Fleet;
use itb_clinic::rules::access::Role;
use itb_clinic::{ServiceClock, Store};
use tower::ServiceExt;

const NOW: &str = "2026-11-25T10:00:00Z";

struct Fixture {
    runtime: tokio::runtime::Runtime,
    router: Router,
    nurse: String,
    admin: String,
    patient: String,
    patients: i64,
}

fn patients() -> u32 {
    std::env::var("ITB_BENCH_PATIENTS").ok().and_then(|n| n.parse().ok()).unwrap_or(100_000)
}

async fn session(store: &Store, username: &str, role: Role, patient: Option<i64>, now: jiff::Timestamp) -> String {
    if store.user_named(username).await.expect("user").is_none() {
        store.add_user("bench", username, role, "bench-password", patient, now).await.expect("user added");
    }
    let (token, _) = store.sign_in(username, "bench-password", now).await.expect("sign in");
    format!("{}={}", itb_web::COOKIE, token.token)
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let n = patients();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-clinic");
        let (router, nurse, admin, patient) = runtime.block_on(async {
            let now: jiff::Timestamp = NOW.parse().expect("now");
            let (store, seeded) = itb_clinic::store::seed::bench_store(&dir, n, now).await.expect("seeded service");
            if let Some(took) = seeded {
                eprintln!("seeded {n} patients in {:.1} s", took.as_secs_f64());
            }
            let nurse = session(&store, "bench.nurse", Role::NurseSpecialist, None, now).await;
            let admin = session(&store, "bench.admin", Role::Admin, None, now).await;
            let patient = session(&store, "bench.patient", Role::Patient, Some(1), now).await;
            let clock = ServiceClock::manual(now);
            // Pump 1 gets a virtual pump and a staged change, for the review page.
            let fleet = Arc::new(Fleet::new(clock.clone()));
            fleet.implanted(&store, 1).await.expect("virtual pump");
            let state = AppState::new(store.clone(), clock).with_fleet(fleet);
            let nurse_user = store.user_named("bench.nurse").await.expect("user").expect("nurse");
            let input = itb_clinic::programming::TherapyInput {
                prescription: serde_json::json!({"mode": "simple_continuous", "dose": "210 micrograms/day"}),
                reason: Some("benchmark".to_owned()),
            };
            itb_clinic::programming::stage_therapy_on(&state, &Caller(nurse_user), 1, input).await.expect("staged");
            (itb_web::router(state), nurse, admin, patient)
        });
        Fixture { runtime, router, nurse, admin, patient, patients: i64::from(n) }
    })
}

async fn get(router: &Router, cookie: &str, path: &str) -> usize {
    let request = Request::get(path).header(header::COOKIE, cookie).body(Body::empty()).expect("request");
    let response = router.clone().oneshot(request).await.expect("answer");
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response.into_body().collect().await.expect("body").to_bytes().len()
}

fn main() {
    let f = fixture();
    let bytes = f.runtime.block_on(get(&f.router, &f.nurse, "/worklist"));
    eprintln!("worklist page: {bytes} bytes for {} patients", f.patients);
    divan::main();
}

fn page(path: &str) -> usize {
    let f = fixture();
    f.runtime.block_on(get(&f.router, &f.nurse, path))
}

/// The worklist's first page: counts, 100 pumps, the side lists and today's appointments.
#[divan::bench(sample_count = 30)]
fn worklist() -> usize {
    page("/worklist")
}

/// A page deep in one bucket of the worklist, sorted by name.
#[divan::bench(sample_count = 30)]
fn worklist_bucket_page_300() -> usize {
    page("/worklist?bucket=later&sort=name&page=300")
}

/// A patient's record: summary, charts and timeline.
#[divan::bench(sample_count = 100)]
fn patient_record(bencher: divan::Bencher) {
    let f = fixture();
    let mut id = 0i64;
    bencher.bench_local(|| {
        id = id % f.patients + 1;
        f.runtime.block_on(get(&f.router, &f.nurse, &format!("/patients/{id}")))
    });
}

/// Patients by family name.
#[divan::bench(sample_count = 30)]
fn patient_search() -> usize {
    page("/patients?q=Patient05")
}

/// The prescription editor.
#[divan::bench(sample_count = 50)]
fn prescribe_editor() -> usize {
    page("/pumps/2/prescribe")
}

/// The review of a staged change, old beside new.
#[divan::bench(sample_count = 50)]
fn review() -> usize {
    page("/pumps/1/review")
}

/// The refill's form.
#[divan::bench(sample_count = 50)]
fn refill_form() -> usize {
    page("/pumps/2/refill")
}

/// The pump's status page.
#[divan::bench(sample_count = 50)]
fn pump_status() -> usize {
    page("/pumps/2/status")
}

/// Today's appointments.
#[divan::bench(sample_count = 30)]
fn appointments_day() -> usize {
    page("/appointments?on=2026-12-20")
}

/// A week of appointments.
#[divan::bench(sample_count = 30)]
fn appointments_week() -> usize {
    page("/appointments/week?start=2026-12-14")
}

/// The booking form.
#[divan::bench(sample_count = 50)]
fn appointment_book_form() -> usize {
    page("/appointments/new?patient=2&pump=2")
}

/// The letter to the GP.
#[divan::bench(sample_count = 50)]
fn gp_letter() -> usize {
    page("/patients/2/letter")
}

/// The patient's own view with a travel check.
#[divan::bench(sample_count = 50)]
fn patient_view() -> usize {
    let f = fixture();
    f.runtime.block_on(get(&f.router, &f.patient, "/me?back=2026-12-20"))
}

/// The patient's card.
#[divan::bench(sample_count = 50)]
fn patient_card() -> usize {
    let f = fixture();
    f.runtime.block_on(get(&f.router, &f.patient, "/me/card"))
}

/// The audit log's first page (without the chain's verification, which reads every entry and
/// is measured by `itb audit verify`).
#[divan::bench(sample_count = 30)]
fn audit_log() -> usize {
    let f = fixture();
    f.runtime.block_on(get(&f.router, &f.admin, "/admin/audit"))
}

/// Users.
#[divan::bench(sample_count = 30)]
fn users() -> usize {
    let f = fixture();
    f.runtime.block_on(get(&f.router, &f.admin, "/admin/users"))
}
