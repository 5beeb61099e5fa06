//! The pages through the real router over the demo service on a fresh SQLite file: sign-in and
//! sessions, CSRF and origin checks, every page against the role table, the editor without
//! JavaScript, and a page's weight. (The browser walks are in tests/browser/, run by .ci/run.)

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use itb_clinic::api::AppState;
use itb_clinic::fleet::Fleet;
use itb_clinic::rules::access::{Permission, Role, allows};
use itb_clinic::{ServiceClock, Store};
use tower::ServiceExt;

struct Demo {
    router: Router,
    dir: std::path::PathBuf,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn demo() -> Demo {
    let dir = std::env::temp_dir().join(format!("itb-web-test-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}/itb.sqlite", dir.display());
    let store = Store::open(&url).await.expect("store opens");
    let now: jiff::Timestamp = "2026-11-25T10:00:00Z".parse().expect("instant");
    let clock = ServiceClock::manual(now);
    let fleet = Arc::new(Fleet::new(clock.clone()));
    itb_clinic::demo::build(&store, now, Some(&fleet)).await.expect("demo builds");
    let state = AppState::new(store, clock).with_fleet(fleet);
    Demo { router: itb_web::router(state), dir }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn send(router: &Router, request: Request<Body>) -> Answer {
    let response = router.clone().oneshot(request).await.expect("answers");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    Answer { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
}

async fn get(router: &Router, path: &str, cookie: Option<&str>) -> Answer {
    let mut request = Request::get(path);
    if let Some(c) = cookie {
        request = request.header(header::COOKIE, c);
    }
    send(router, request.body(Body::empty()).expect("request")).await
}

async fn post(router: &Router, path: &str, cookie: Option<&str>, form: &str) -> Answer {
    let mut request = Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        request = request.header(header::COOKIE, c);
    }
    send(router, request.body(Body::from(form.to_owned())).expect("request")).await
}

/// Signs in through the page: the session cookie (`itb_session=...`) and its CSRF token.
async fn sign_in(router: &Router, username: &str, password: &str) -> (String, String) {
    let answer = post(router, "/sign-in", None, &format!("username={username}&password={password}")).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{username} signs in: {}", answer.body);
    let cookie = answer.headers.get(header::SET_COOKIE).and_then(|v| v.to_str().ok()).expect("a session cookie");
    for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "the session cookie is {flag}: {cookie}");
    }
    let pair = cookie.split(';').next().expect("name=value").to_owned();
    let token = pair.trim_start_matches("itb_session=");
    (pair.clone(), itb_web::csrf_token(token))
}

const PASSWORDS: [(&str, &str, Role); 8] = [
    ("nurse.jones", "demo-nurse-jones", Role::NurseSpecialist),
    ("dr.okafor", "demo-consultant-okafor", Role::Consultant),
    ("mr.hughes", "demo-neurosurgeon-hughes", Role::Neurosurgeon),
    ("physio.lee", "demo-physio-lee", Role::Physiotherapist),
    ("pharm.shah", "demo-pharmacist-shah", Role::Pharmacist),
    ("admin", "demo-administrator", Role::Admin),
    ("megan.evans", "demo-patient", Role::Patient),
    ("nurse.patel", "demo-nurse-patel", Role::NurseSpecialist),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_keeps_to_the_role_table_and_sessions_hold() {
    let demo = demo().await;
    let r = &demo.router;

    // Signed out: every page sends the person to sign in, remembering where they were going.
    let answer = get(r, "/worklist", None).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()), Some("/sign-in?next=/worklist"));
    let answer = get(r, "/sign-in?next=//evil.example/", None).await;
    assert!(answer.body.contains(r#"name="next" value="""#), "a next address elsewhere is dropped");

    // A wrong password: the error summary, linked to the field, and the message at the field.
    let answer = post(r, "/sign-in", None, "username=nurse.jones&password=wrong-password").await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer.body.contains("There is a problem"));
    assert!(answer.body.contains(r##"<a href="#username">The username or password is wrong"##), "{}", answer.body);
    assert!(answer.body.contains(r#"value="nurse.jones""#), "the username typed is kept");

    // Each role lands on its own start page and each page answers as the role table says.
    let mut sessions = Vec::new();
    for (username, password, role) in PASSWORDS {
        let answer = post(r, "/sign-in", None, &format!("username={username}&password={password}")).await;
        let start = answer.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let expected = match role {
            Role::Admin => "/admin/audit",
            Role::Patient => "/me",
            _ => "/worklist",
        };
        assert_eq!(start, expected, "{username}'s start page");
        sessions.push((role, sign_in(r, username, password).await));
    }
    // Patient 7 is Megan Evans (the patient's own record), with pump 1; patient 8 is another.
    let pages: [(&str, Option<Permission>, bool); 13] = [
        ("/worklist", Some(Permission::Worklist), false),
        ("/appointments", Some(Permission::Worklist), false),
        ("/appointments/week", Some(Permission::Worklist), false),
        ("/patients/7", Some(Permission::ReadRecord), false),
        ("/patients/8", Some(Permission::ReadRecord), true),
        ("/pumps/2/status", Some(Permission::ReadRecord), true),
        ("/pumps/2/prescribe", Some(Permission::Prescribe), true),
        ("/pumps/2/refill", Some(Permission::Refill), true),
        ("/appointments/new?patient=8&pump=2", Some(Permission::ManageAppointments), true),
        ("/patients/8/letter", Some(Permission::Worklist), true),
        ("/admin/audit", Some(Permission::Audit), false),
        ("/admin/users", Some(Permission::ManageUsers), false),
        ("/me", None, false),
    ];
    for (role, (cookie, _)) in &sessions {
        for (path, permission, others_record) in pages {
            let answer = get(r, path, Some(cookie)).await;
            let allowed = match permission {
                Some(p) => allows(*role, p),
                None => *role == Role::Patient,
            };
            let expected = if !allowed {
                StatusCode::FORBIDDEN
            } else if *role == Role::Patient && others_record {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::OK
            };
            assert_eq!(
                answer.status,
                expected,
                "{} at {path}: {}",
                role.as_str(),
                &answer.body[..answer.body.len().min(600)]
            );
            assert!(!answer.body.contains("mcg") && !answer.body.contains("&quot;"), "no abbreviations, no raw data");
        }
    }

    let (nurse, csrf) = sessions[0].1.clone();
    // Every page carries the headers that keep it to our own scripts and styles.
    let answer = get(r, "/worklist", Some(&nurse)).await;
    let csp = answer.headers.get(header::CONTENT_SECURITY_POLICY).and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(answer.headers.get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok()), Some("no-store"));
    assert!(answer.body.len() < 100 * 1024, "the worklist page is {} bytes", answer.body.len());
    let overdue = answer.body.find("tag-red\">Overdue").expect("an overdue pump");
    let later = answer.body.find("tag-green\">Fine").expect("a pump due later");
    assert!(overdue < later, "overdue pumps come first");

    // A filter shows one bucket, its pumps only; a filter the page does not know is refused.
    let answer = get(r, "/worklist?bucket=due_7&sort=name", Some(&nurse)).await;
    assert_eq!(answer.body.matches("tag-orange\">Due within 7 days").count(), 5, "the 5 pumps due within 7 days");
    assert!(!answer.body.contains("tag-red\">Overdue"));
    assert_eq!(get(r, "/worklist?bucket=soon", Some(&nurse)).await.status, StatusCode::BAD_REQUEST);

    // Patients by the start of the family name in any case, or by the NHS number.
    for q in ["rob", "Roberts", "9990003335", "999+000+3335"] {
        let answer = get(r, &format!("/patients?q={q}"), Some(&nurse)).await;
        assert!(answer.body.contains("ROBERTS, Oliver"), "{q} finds Oliver Roberts");
    }
    assert!(!get(r, "/patients?q=berts", Some(&nurse)).await.body.contains("ROBERTS, Oliver"), "the start of the name");

    // A form without the session's CSRF token, or from another origin, is refused and changes
    // nothing.
    let answer = post(r, "/pumps/2/interrogate", Some(&nurse), "").await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    let answer = post(r, "/pumps/2/interrogate", Some(&nurse), "csrf=0123456789abcdef0123456789abcdef").await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    let request = Request::post("/pumps/2/interrogate")
        .header(header::COOKIE, &nurse)
        .header(header::HOST, "clinic.example")
        .header(header::ORIGIN, "https://evil.example")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("csrf={csrf}")))
        .expect("request");
    assert_eq!(send(r, request).await.status, StatusCode::FORBIDDEN);
    let answer = get(r, "/pumps/2/status", Some(&nurse)).await;
    assert!(answer.body.contains("has not been interrogated"), "nothing was interrogated");
    let answer = post(r, "/pumps/2/interrogate", Some(&nurse), &format!("csrf={csrf}")).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    let answer = get(r, "/pumps/2/status", Some(&nurse)).await;
    assert!(answer.body.contains("Read from the pump"), "{}", answer.body);
    assert!(answer.body.contains("simple continuous 400 micrograms/day"));

    // The editor without JavaScript: steps added and removed by the server, the total
    // recomputed, every problem linked to its field.
    let form = format!("csrf={csrf}&mode=flex&step_start=00%3A00&step_rate=400&reason=&action=add_step");
    let answer = post(r, "/pumps/2/prescribe", Some(&nurse), &form).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body.matches(r#"class="flex-step""#).count(), 2);
    assert!(
        answer.body.contains("<strong id=\"daily-total\" aria-live=\"polite\">not yet known"),
        "an empty step has no total yet"
    );
    let form = format!(
        "csrf={csrf}&mode=flex&step_start=00%3A00&step_rate=400&step_start=08%3A00&step_rate=4x0&reason=more+by+day&action=review"
    );
    let answer = post(r, "/pumps/2/prescribe", Some(&nurse), &form).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        answer.body.contains(r##"<a href="#flex.steps[2].rate">Enter step 2&#39;s rate as a number"##),
        "{}",
        answer.body
    );
    assert!(answer.body.contains(r#"value="4x0""#), "what was typed is kept");
    let form = format!(
        "csrf={csrf}&mode=flex&step_start=00%3A00&step_rate=400&step_start=08%3A00&step_rate=380&step_start=20%3A00&step_rate=400&reason=&action=remove_3"
    );
    let answer = post(r, "/pumps/2/prescribe", Some(&nurse), &form).await;
    assert_eq!(answer.body.matches(r#"class="flex-step""#).count(), 2);
    assert!(answer.body.contains("386.67 micrograms a day"), "400 for 8 hours then 380 for 16 hours is 386.67 a day");
    let form = format!("csrf={csrf}&mode=flex&step_start=06%3A00&step_rate=400&reason=x&action=review");
    let answer = post(r, "/pumps/2/prescribe", Some(&nurse), &form).await;
    assert!(answer.body.contains(r##"href="#flex.steps[1].start""##), "the first step must start at midnight");

    // A refused change keeps what was typed and shows the problem at its field.
    let day = get(r, "/appointments", Some(&nurse)).await.body;
    let id: String = day
        .split("action=\"/appointments/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("an appointment today")
        .to_owned();
    let answer =
        post(r, &format!("/appointments/{id}/state"), Some(&nurse), &format!("csrf={csrf}&state=missed&reason=")).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", answer.body);
    assert!(
        answer.body.contains(&format!("<a href=\"#reason-{id}\">Write why the appointment was missed or cancelled"))
    );
    let answer = post(r, "/refills/25/review", Some(&nurse), &format!("csrf={csrf}&note=")).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", answer.body);
    assert!(
        answer.body.contains("<a href=\"#note-25\">Write what the review of the refill gap found"),
        "{}",
        answer.body
    );

    // All the flex steps typed come back, however many, with the real count.
    let mut form = format!("csrf={csrf}&mode=flex&reason=more+steps&action=review");
    for h in 0..20 {
        form.push_str(&format!("&step_start={h:02}%3A00&step_rate=400"));
    }
    let answer = post(r, "/pumps/2/prescribe", Some(&nurse), &form).await;
    assert_eq!(answer.body.matches(r#"class="flex-step""#).count(), 20);
    assert!(answer.body.contains("There are 20 flex steps; a day has 1 to 13"), "{}", answer.body);

    // A change waiting on a pump is named to anyone else who opens it.
    let form = format!("csrf={csrf}&mode=simple_continuous&dose=390&reason=less+drowsy+by+day&action=review");
    let answer = post(r, "/pumps/3/prescribe", Some(&nurse), &form).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    let (consultant, _) = sessions[1].1.clone();
    let answer = get(r, "/pumps/3/prescribe", Some(&consultant)).await;
    assert!(
        answer.body.contains("nurse.jones has a prescription change waiting to be sent to this pump"),
        "{}",
        answer.body
    );
    let answer = post(r, "/pumps/3/discard", Some(&nurse), &format!("csrf={csrf}")).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);

    // An earlier refill gap nobody has reviewed is shown on the refill's first page.
    let answer = get(r, "/pumps/13/refill", Some(&nurse)).await;
    assert!(answer.body.contains(r#"id="gap-pending""#), "{}", answer.body);
    assert!(!get(r, "/pumps/2/refill", Some(&nurse)).await.body.contains(r#"id="gap-pending""#));

    // A refill booked after its due date needs a reason written in words; the same booking
    // sent twice is booked once.
    let late = format!("csrf={csrf}&patient_id=8&pump_id=2&kind=refill&on=2027-03-01&place=clinic&note=&late_reason=x");
    let answer = post(r, "/appointments", Some(&nurse), &late).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer.body.contains(r##"<a href="#late_reason">A reason must say why in words"##), "{}", answer.body);
    // (Pump 2 is overdue: any date is after its due date, so a real reason is given.)
    let booking = format!(
        "csrf={csrf}&patient_id=8&pump_id=2&kind=refill&on=2026-11-26&place=clinic&note=&late_reason=first+clinic+with+a+free+slot"
    );
    let answer = post(r, "/appointments", Some(&nurse), &booking).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    let again = post(r, "/appointments", Some(&nurse), &booking).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.body.contains("already booked for 26 Nov 2026"), "{}", again.body);

    // Signing out ends the session at once.
    let answer = post(r, "/sign-out", Some(&nurse), &format!("csrf={csrf}")).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    let cleared = answer.headers.get(header::SET_COOKIE).and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(get(r, "/worklist", Some(&nurse)).await.status, StatusCode::SEE_OTHER);

    // The API beside the pages still answers as JSON, and unknown pages are pages.
    let answer = get(r, "/api/v1/nothing", None).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert!(answer.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").contains("json"));
    let answer = get(r, "/nothing", None).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert!(answer.body.contains("<h1>Page not found</h1>"));
}
