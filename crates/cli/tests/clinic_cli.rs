//! The clinic's commands through the real binary: `itb user add`, `itb db migrate`, `backup`,
//! `restore`, `copy` (SQLite to SQLite, and to PostgreSQL when ITB_TEST_POSTGRES_URL is set),
//! `itb audit verify` on a whole and a tampered chain, and `itb serve`'s flags.

mod common_http;

use common_http::{Server, TempDir, add_user, itb_with_input};
use serde_json::json;

fn itb(args: &[&str]) -> std::process::Output {
    itb_with_input(args, "")
}

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A record with a patient, a pump and a refill, written through the API.
fn seed(db: &str) {
    add_user(db, "nurse.a", "nurse_specialist");
    add_user(db, "nurse.b", "nurse_specialist");
    let server = Server::start(&["--database", db, "--clock-start", "2026-11-25T10:00:00Z"]);
    let token = server.sign_in("nurse.a");
    let (status, patient) = server
        .request("POST", "/api/v1/patients", Some(&token), Some(&json!({"nhs_number": "943 476 5919", "given_name": "Megan", "family_name": "Evans", "date_of_birth": "1980-03-14", "origin": "spinal", "injury_level": "T4"})), &[])
        .expect("patient");
    assert_eq!(status, 201, "{patient}");
    let (status, pump) = server
        .request("POST", &format!("/api/v1/patients/{}/pumps", patient["id"]), Some(&token), Some(&json!({"profile": "synchromed-ii-20", "serial": "NGV100001", "implanted_at": "2026-08-27T10:00:00Z", "catheter_cm": 50, "fill_ml": 20, "concentration_micrograms_per_ml": 2000, "prescription": {"mode": "simple_continuous", "dose": "400 micrograms/day"}})), &[])
        .expect("pump");
    assert_eq!(status, 201, "{pump}");
    // 90 days at 0.2 mL a day: 2 mL expected; 2 mL withdrawn, no gap.
    let (status, refill) = server
        .request("POST", &format!("/api/v1/pumps/{}/refills", pump["id"]), Some(&token), Some(&json!({"at": "2026-11-25T10:00:00Z", "volume_withdrawn_ml": 2, "volume_added_ml": 20, "concentration_micrograms_per_ml": 2000, "lot": "BX1", "expires_on": "2027-06-01", "nurse": "nurse.a", "second_checker": "nurse.b"})), &[])
        .expect("refill");
    assert_eq!(status, 201, "{refill}");
    assert_eq!(refill["volume_expected_ml"], json!(2));
    assert_eq!(refill["gap_needs_review"], json!(false));
}

#[test]
fn user_add_reads_the_password_from_stdin_and_refuses_bad_roles_and_duplicates() {
    let dir = TempDir::new("itb_cli_user");
    let db = dir.sqlite("itb.sqlite");
    let out = itb_with_input(
        &["user", "add", "--username", "nurse.jones", "--role", "nurse_specialist", "--database", &db],
        "a-long-password\n",
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("nurse.jones added as nurse specialist"), "{}", text(&out));
    let again = itb_with_input(
        &["user", "add", "--username", "nurse.jones", "--role", "nurse_specialist", "--database", &db],
        "a-long-password\n",
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again).contains("the username 'nurse.jones' is taken"), "{}", text(&again));
    let bad_role = itb_with_input(
        &["user", "add", "--username", "x.y", "--role", "nurse", "--database", &db],
        "a-long-password\n",
    );
    assert_eq!(bad_role.status.code(), Some(1));
    assert!(
        text(&bad_role).contains("--role: 'nurse' is not a role; use one of nurse_specialist"),
        "{}",
        text(&bad_role)
    );
    let no_password = itb_with_input(&["user", "add", "--username", "x.z", "--role", "admin", "--database", &db], "");
    assert_eq!(no_password.status.code(), Some(1));
    assert!(text(&no_password).contains("give the password on standard input"), "{}", text(&no_password));
    let server = Server::start(&["--database", &db]);
    let (status, body) = server
        .request(
            "POST",
            "/api/v1/auth/token",
            None,
            Some(&json!({"username": "nurse.jones", "password": "a-long-password"})),
            &[],
        )
        .expect("sign in");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn backup_restore_and_copy_move_every_row_and_the_audit_chain() {
    let dir = TempDir::new("itb_cli_db");
    let db = dir.sqlite("itb.sqlite");
    let migrate = itb(&["db", "migrate", "--database", &db]);
    assert!(migrate.status.success(), "{}", text(&migrate));
    seed(&db);
    let backup_file = dir.0.join("backup.sqlite").display().to_string();
    let backup = itb(&["db", "backup", &backup_file, "--database", &db]);
    assert!(backup.status.success(), "{}", text(&backup));
    assert!(text(&backup).contains("audit entries copied to"), "{}", text(&backup));
    let twice = itb(&["db", "backup", &backup_file, "--database", &db]);
    assert_eq!(twice.status.code(), Some(1));
    assert!(text(&twice).contains("exists: give a new file name"), "{}", text(&twice));
    let restored = dir.sqlite("restored.sqlite");
    let restore = itb(&["db", "restore", &backup_file, "--database", &restored]);
    assert!(restore.status.success(), "{}", text(&restore));
    let into_full = itb(&["db", "restore", &backup_file, "--database", &restored]);
    assert_eq!(into_full.status.code(), Some(1));
    assert!(text(&into_full).contains("copy into an empty database"), "{}", text(&into_full));
    let verify = itb(&["audit", "verify", "--database", &restored]);
    assert!(verify.status.success(), "{}", text(&verify));
    // The restored record serves the same worklist.
    let server = Server::start(&["--database", &restored, "--clock-start", "2026-11-25T10:00:00Z"]);
    let token = server.sign_in("nurse.b");
    let (_, worklist) =
        server.request("GET", "/api/v1/worklist?on=2026-11-25", Some(&token), None, &[]).expect("worklist");
    assert_eq!(worklist["counts"]["later"], json!(1), "{worklist}");
    assert_eq!(worklist["items"][0]["refill_due_on"], json!("2027-02-23"), "{worklist}");
    assert_eq!(worklist["items"][0]["high_risk"], json!(true));
    drop(server);
    let copied = dir.sqlite("copied.sqlite");
    let copy = itb(&["db", "copy", "--from", &db, "--to", &copied]);
    assert!(copy.status.success(), "{}", text(&copy));
    assert!(text(&copy).contains("refills              1 rows, all arrived"), "{}", text(&copy));
    if let Ok(pg) = std::env::var("ITB_TEST_POSTGRES_URL")
        && !pg.is_empty()
    {
        let schema = format!("itb_cli_copy_{}", std::process::id());
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            use sqlx::Connection;
            sqlx::any::install_default_drivers();
            let mut conn = sqlx::AnyConnection::connect(&pg).await.expect("postgres");
            sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"))
                .execute(&mut conn)
                .await
                .expect("schema");
        });
        let separator = if pg.contains('?') { '&' } else { '?' };
        let target = format!("{pg}{separator}options=-c%20search_path%3D{schema}");
        let copy = itb(&["db", "copy", "--from", &db, "--to", &target]);
        assert!(copy.status.success(), "{}", text(&copy));
        assert!(text(&copy).contains("audit chain:"), "{}", text(&copy));
        let verify = itb(&["audit", "verify", "--database", &target]);
        assert!(verify.status.success(), "{}", text(&verify));
        rt.block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::AnyConnection::connect(&pg).await.expect("postgres");
            sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).execute(&mut conn).await.expect("drop");
        });
    }
}

#[test]
fn audit_verify_names_the_first_changed_entry() {
    let dir = TempDir::new("itb_cli_audit");
    let db = dir.sqlite("itb.sqlite");
    seed(&db);
    let whole = itb(&["audit", "verify", "--database", &db]);
    assert!(whole.status.success(), "{}", text(&whole));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&db).await.expect("sqlite");
        sqlx::query("UPDATE audit SET detail = '{\"volume_withdrawn_ml\": 0}' WHERE seq = 4")
            .execute(&mut conn)
            .await
            .expect("tamper");
    });
    let broken = itb(&["audit", "verify", "--database", &db]);
    assert_eq!(broken.status.code(), Some(3), "{}", text(&broken));
    assert!(text(&broken).contains("BROKEN at entry 4: entry 4 was changed after it was written"), "{}", text(&broken));
}

#[test]
fn serve_explains_bad_flags() {
    let out = itb(&["serve", "--listen", "nowhere"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("--listen: 'nowhere' is not an address"), "{}", text(&out));
    let out = itb(&["serve", "--clock-start", "yesterday"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("--clock-start: 'yesterday' is not an instant"), "{}", text(&out));
}

/// The worklist's refill-due figures are `itb calc refill`'s for the same inputs, for every
/// example prescription (every mode, PTM limits taken in full) and across the change to and
/// from British Summer Time.
#[test]
fn the_clinic_and_itb_calc_refill_give_the_same_figures() {
    let dir = TempDir::new("itb_cli_calc");
    let db = dir.sqlite("itb.sqlite");
    add_user(&db, "nurse.a", "nurse_specialist");
    let server = Server::start(&["--database", &db, "--clock-start", "2027-12-31T10:00:00Z"]);
    let token = server.sign_in("nurse.a");
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/prescriptions");
    let cases = [
        ("simple-continuous.toml", "2027-01-20T09:30:00Z", "20", "2000"),
        ("simple-continuous-ptm.toml", "2027-08-20T23:30:00Z", "20", "2000"),
        ("flex-nightly.toml", "2026-12-30T15:00:00Z", "18.5", "1500"),
        ("flex-weekly.toml", "2027-03-01T00:30:00Z", "20", "500"),
        ("periodic-bolus.toml", "2027-07-15T12:00:00Z", "19.25", "1000"),
        ("stopped.toml", "2027-05-05T08:00:00Z", "20", "2000"),
    ];
    for (n, (file, start, fill, concentration)) in cases.into_iter().enumerate() {
        let path = format!("{examples}/{file}");
        let text = std::fs::read_to_string(&path).expect("example");
        let prescription: serde_json::Value =
            serde_json::to_value(toml::from_str::<toml::Value>(&text).expect("toml")).expect("json");
        let nhs = format!("{}", 9_000_000_000u64 + 11 * u64::try_from(n).expect("n"));
        let nhs = valid_nhs(&nhs);
        let (status, patient) = server
            .request("POST", "/api/v1/patients", Some(&token), Some(&json!({"nhs_number": nhs, "given_name": "A", "family_name": "B", "date_of_birth": "1970-01-01", "origin": "spinal"})), &[])
            .expect("patient");
        assert_eq!(status, 201, "{patient}");
        let body = json!({"profile": "synchromed-ii-20", "serial": format!("NGV3000{n}"), "implanted_at": start, "catheter_cm": 50,
            "fill_ml": fill.parse::<f64>().expect("fill"), "concentration_micrograms_per_ml": concentration.parse::<u64>().expect("c"), "prescription": prescription});
        let (status, pump) = server
            .request("POST", &format!("/api/v1/patients/{}/pumps", patient["id"]), Some(&token), Some(&body), &[])
            .expect("pump");
        assert_eq!(status, 201, "{file}: {pump}");
        let out = itb(&[
            "calc",
            "refill",
            "--prescription",
            &path,
            "--fill-ml",
            fill,
            "--concentration",
            concentration,
            "--start",
            start,
            "--alarm-ml",
            "2",
            "--margin-days",
            "0",
            "--json",
        ]);
        assert!(out.status.success(), "{file}: {}", text_of(&out));
        let calc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        for field in ["low_reservoir_alarm_at", "drug_expires_at", "refill_due_by", "refill_due_on", "limited_by"] {
            assert_eq!(pump["refill"][field], calc[field], "{file}: {field}");
        }
    }
}

fn text_of(out: &std::process::Output) -> String {
    text(out)
}

fn valid_nhs(seed: &str) -> String {
    let mut n: u64 = seed[..9].parse().expect("digits");
    loop {
        let digits: Vec<u32> = format!("{n:09}").chars().map(|c| c.to_digit(10).expect("digit")).collect();
        let sum: u32 = digits.iter().zip((2..=10).rev()).map(|(d, w)| d * w).sum();
        match 11 - sum % 11 {
            10 => n += 1,
            11 => return format!("{n:09}0"),
            check => return format!("{n:09}{check}"),
        }
    }
}
