//! A clinic service for tests: the real router over a fresh SQLite file, and over PostgreSQL
//! (a schema of its own) when `ITB_TEST_POSTGRES_URL` is set.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use itb_clinic::api::{AppState, router};
use itb_clinic::rules::access::Role;
use itb_clinic::{ServiceClock, Store};
use jiff::Timestamp;
use serde_json::{Value, json};
use tower::ServiceExt;

/// The test's start: 25 Nov 2026 10:00 UTC.
pub const START: &str = "2026-11-25T10:00:00Z";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name no other test in any process uses.
pub fn unique(prefix: &str) -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}_{}_{}_{nanos}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst))
}

/// A service under test.
pub struct Service {
    pub router: Router,
    pub store: Store,
    pub clock: ServiceClock,
    pub backend: &'static str,
    cleanup: Cleanup,
}

enum Cleanup {
    File(std::path::PathBuf),
    Schema(String, String),
}

impl Drop for Service {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::File(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Schema(url, schema) => {
                let (url, schema) = (url.clone(), schema.clone());
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                    rt.block_on(itb_clinic::store::postgres::drop_schema(&url, &schema))
                })
                .join();
            }
        }
    }
}

fn state(store: Store, clock: ServiceClock) -> Router {
    router(AppState::new(store, clock))
}

/// A service on a fresh SQLite file.
pub async fn sqlite() -> Service {
    let dir = std::env::temp_dir().join(unique("itb_clinic_test"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}", dir.join("itb.sqlite").display());
    let store = Store::open(&url).await.expect("open sqlite");
    let clock = ServiceClock::manual(START.parse().expect("start"));
    Service {
        router: state(store.clone(), clock.clone()),
        store,
        clock,
        backend: "sqlite",
        cleanup: Cleanup::File(dir),
    }
}

/// A service on PostgreSQL in a schema of its own, when `ITB_TEST_POSTGRES_URL` is set.
pub async fn postgres() -> Option<Service> {
    let url = std::env::var("ITB_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty())?;
    let schema = unique("itb_test").to_lowercase();
    let store = Store::open_in_schema(&url, &schema).await.expect("open postgres");
    let clock = ServiceClock::manual(START.parse().expect("start"));
    Some(Service {
        router: state(store.clone(), clock.clone()),
        store,
        clock,
        backend: "postgres",
        cleanup: Cleanup::Schema(url, schema),
    })
}

/// SQLite always; PostgreSQL too when it is there.
pub async fn backends() -> Vec<Service> {
    let mut all = vec![sqlite().await];
    all.extend(postgres().await);
    all
}

/// Runs a future on a runtime of its own.
pub fn block<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

/// A response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub headers: axum::http::HeaderMap,
}

impl Service {
    /// Gives the service virtual pumps (each pump implanted from now on gets one): the fleet.
    pub fn with_fleet(&mut self) -> std::sync::Arc<itb_clinic::fleet::Fleet> {
        let fleet = std::sync::Arc::new(itb_clinic::fleet::Fleet::new(self.clock.clone()));
        self.router =
            router(AppState::new(self.store.clone(), self.clock.clone()).with_fleet(std::sync::Arc::clone(&fleet)));
        fleet
    }

    /// Moves the service's clock.
    pub fn set_now(&self, at: &str) {
        self.clock.set(at.parse::<Timestamp>().expect("instant"));
    }

    /// Sends a request through the real router.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = match body {
            Some(body) => request.header("content-type", "application/json").body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .expect("request");
        let response = self.router.clone().oneshot(request).await.expect("router answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply { status, body, headers }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.send("GET", path, Some(token), None, &[]).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send("POST", path, Some(token), Some(body), &[]).await
    }

    /// Adds a user directly in the store and signs them in: their token.
    pub async fn user(&self, username: &str, role: Role) -> String {
        self.store
            .add_user("test", username, role, &format!("{username}-password"), None, self.clock.now())
            .await
            .expect("user added");
        self.sign_in(username).await
    }

    /// Signs a user in (password `<username>-password`).
    pub async fn sign_in(&self, username: &str) -> String {
        let reply = self
            .send(
                "POST",
                "/api/v1/auth/token",
                None,
                Some(json!({"username": username, "password": format!("{username}-password")})),
                &[],
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        reply.body["token"].as_str().expect("token").to_owned()
    }

    /// A patient registered by `token`: their id.
    pub async fn patient(&self, token: &str, nhs_number: &str, injury_level: Option<&str>) -> i64 {
        let reply = self
            .post(
                "/api/v1/patients",
                token,
                json!({"nhs_number": nhs_number, "given_name": "Megan", "family_name": "Evans", "date_of_birth": "1980-03-14", "origin": "spinal", "injury_level": injury_level}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        reply.body["id"].as_i64().expect("id")
    }

    /// A 20 mL pump implanted at `at` with 20 mL of 2000 micrograms/mL and `dose` micrograms/day: its id.
    pub async fn pump(&self, token: &str, patient: i64, serial: &str, at: &str, dose: u32) -> i64 {
        let reply = self
            .post(
                &format!("/api/v1/patients/{patient}/pumps"),
                token,
                json!({"profile": "synchromed-ii-20", "serial": serial, "implanted_at": at, "catheter_cm": 50, "fill_ml": 20, "concentration_micrograms_per_ml": 2000, "prescription": {"mode": "simple_continuous", "dose": format!("{dose} micrograms/day")}}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        reply.body["id"].as_i64().expect("id")
    }
}

/// Valid NHS numbers for tests (modulus 11).
pub fn nhs_number(n: u32) -> String {
    let mut seed = 100_000_000u64 + u64::from(n) * 7_919;
    loop {
        let digits: Vec<u8> = format!("{:09}", seed % 1_000_000_000).bytes().map(|b| b - b'0').collect();
        let sum: u32 = digits.iter().zip((2..=10).rev()).map(|(d, w)| u32::from(*d) * w).sum();
        let check = 11 - (sum % 11);
        if check != 10 {
            let check = if check == 11 { 0 } else { check };
            return format!("{}{}", digits.iter().map(|d| char::from(b'0' + d)).collect::<String>(), check);
        }
        seed += 1;
    }
}
