//! The clinic at 100,000 patients: server time of the worklist and of patient and pump reads
//! through the real router, and reads per second from concurrent clients.
//!
//! `cargo bench -p itb-clinic --bench clinic` (the seeded SQLite file is kept under
//! target/bench-clinic/ and reused; ITB_BENCH_PATIENTS changes the size).

use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use itb_clinic::ServiceClock;
use itb_clinic::api::{AppState, router};
use itb_clinic::rules::access::Role;
use tower::ServiceExt;

const NOW: &str = "2026-11-25T10:00:00Z";

struct Fixture {
    runtime: tokio::runtime::Runtime,
    router: Router,
    token: String,
    patients: i64,
}

fn patients() -> u32 {
    std::env::var("ITB_BENCH_PATIENTS").ok().and_then(|n| n.parse().ok()).unwrap_or(100_000)
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let n = patients();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-clinic");
        let (router, token) = runtime.block_on(async {
            let now = NOW.parse().expect("now");
            let (store, seeded) = itb_clinic::store::seed::bench_store(&dir, n, now).await.expect("seeded service");
            if let Some(took) = seeded {
                eprintln!("seeded {n} patients in {:.1} s", took.as_secs_f64());
            }
            if store.user_named("bench.nurse").await.expect("user").is_none() {
                store
                    .add_user("bench", "bench.nurse", Role::NurseSpecialist, "bench-password", None, now)
                    .await
                    .expect("user");
            }
            let (token, _) = store.sign_in("bench.nurse", "bench-password", now).await.expect("sign in");
            (router(AppState::new(store, ServiceClock::manual(now))), token.token)
        });
        Fixture { runtime, router, token, patients: i64::from(n) }
    })
}

async fn get(router: &Router, token: &str, path: &str) -> usize {
    let request =
        Request::get(path).header("authorization", format!("Bearer {token}")).body(Body::empty()).expect("request");
    let response = router.clone().oneshot(request).await.expect("answer");
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response.into_body().collect().await.expect("body").to_bytes().len()
}

fn main() {
    let f = fixture();
    let bytes = f.runtime.block_on(get(&f.router, &f.token, "/api/v1/worklist?on=2026-11-25"));
    eprintln!("worklist page: {bytes} bytes for {} patients", f.patients);
    divan::main();
}

/// The worklist's first page (100 items) with its counts and side lists.
#[divan::bench(sample_count = 50)]
fn worklist_first_page() -> usize {
    let f = fixture();
    f.runtime.block_on(get(&f.router, &f.token, "/api/v1/worklist?on=2026-11-25"))
}

/// A page deep in the worklist.
#[divan::bench(sample_count = 50)]
fn worklist_page_500() -> usize {
    let f = fixture();
    f.runtime.block_on(get(&f.router, &f.token, "/api/v1/worklist?on=2026-11-25&offset=50000&limit=100"))
}

/// One patient's record with their pump.
#[divan::bench(sample_count = 200)]
fn patient_read(bencher: divan::Bencher) {
    let f = fixture();
    let mut id = 0i64;
    bencher.bench_local(|| {
        id = id % f.patients + 1;
        f.runtime.block_on(get(&f.router, &f.token, &format!("/api/v1/patients/{id}")))
    });
}

/// 1,000 patient reads from 8 concurrent clients on the 2 worker threads: reads per second is
/// 1,000 divided by the time of one iteration.
#[divan::bench(sample_count = 10)]
fn patient_reads_1000_concurrent() {
    let f = fixture();
    f.runtime.block_on(async {
        let mut tasks = Vec::new();
        for client in 0..8i64 {
            let router = f.router.clone();
            let token = f.token.clone();
            let patients = f.patients;
            tasks.push(tokio::spawn(async move {
                for k in 0..125i64 {
                    let id = (client * 7_919 + k * 104_729) % patients + 1;
                    get(&router, &token, &format!("/api/v1/patients/{id}")).await;
                }
            }));
        }
        for task in tasks {
            task.await.expect("client");
        }
    });
}
