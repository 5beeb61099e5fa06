//! The server killed (SIGKILL) during a stream of refill writes, and restarted, three times:
//! no partial refill, every acknowledged write present, the audit chain verifies.

mod common_http;

use common_http::{Server, TempDir, add_user, itb_with_input, request};
use serde_json::{Value, json};

#[test]
fn sigkill_during_refill_writes_loses_nothing_acknowledged_and_leaves_no_partial_refill() {
    let dir = TempDir::new("itb_crash");
    let db = dir.sqlite("itb.sqlite");
    add_user(&db, "nurse.a", "nurse_specialist");
    add_user(&db, "nurse.b", "nurse_specialist");
    let clock = ["--database", db.as_str(), "--clock-start", "2026-11-25T10:00:00Z"];
    let server = Server::start(&clock);
    let token = server.sign_in("nurse.a");
    let (status, patient) = server
        .request("POST", "/api/v1/patients", Some(&token), Some(&json!({"nhs_number": "9434765919", "given_name": "Megan", "family_name": "Evans", "date_of_birth": "1980-03-14", "origin": "spinal"})), &[])
        .expect("patient");
    assert_eq!(status, 201, "{patient}");
    let (status, pump) = server
        .request("POST", &format!("/api/v1/patients/{}/pumps", patient["id"]), Some(&token), Some(&json!({"profile": "synchromed-ii-20", "serial": "NGV900001", "implanted_at": "2026-11-25T08:00:00Z", "catheter_cm": 50, "fill_ml": 20, "concentration_micrograms_per_ml": 2000, "prescription": {"mode": "simple_continuous", "dose": "400 micrograms/day"}})), &[])
        .expect("pump");
    assert_eq!(status, 201, "{pump}");
    let pump_id = pump["id"].as_i64().expect("id");
    let mut acknowledged: Vec<(i64, String)> = Vec::new();
    let mut second = 0u32;
    let mut server = Some(server);
    for round in 0..3 {
        let running = server.take().unwrap_or_else(|| Server::start(&clock));
        let token = running.sign_in("nurse.a");
        let addr = running.addr.clone();
        // A writer on its own thread; the test kills the server under it.
        let (sender, receiver) = std::sync::mpsc::channel::<(i64, String)>();
        let start_second = second;
        let writer = std::thread::spawn(move || {
            let mut n = start_second;
            loop {
                n += 1;
                let at = format!("2026-11-25T08:{:02}:{:02}Z", 1 + n / 60, n % 60);
                let body = json!({"at": at, "volume_withdrawn_ml": 20, "volume_added_ml": 20, "concentration_micrograms_per_ml": 2000, "lot": format!("L{n}"), "expires_on": "2027-06-01", "nurse": "nurse.a", "second_checker": "nurse.b"});
                let key = format!("refill-{n}");
                match request(
                    &addr,
                    "POST",
                    &format!("/api/v1/pumps/{pump_id}/refills"),
                    Some(&token),
                    Some(&body),
                    &[("Idempotency-Key", &key)],
                ) {
                    Ok((201, reply)) => {
                        if sender.send((reply["id"].as_i64().expect("id"), at)).is_err() {
                            return n;
                        }
                    }
                    Ok((status, reply)) => panic!("round {round}: refill {n} answered {status}: {reply}"),
                    Err(_) => return n,
                }
            }
        });
        // Let some writes land, then kill the server mid-stream.
        let mut this_round = 0;
        while this_round < 15 {
            match receiver.recv_timeout(std::time::Duration::from_secs(60)) {
                Ok(ack) => {
                    acknowledged.push(ack);
                    this_round += 1;
                }
                Err(e) => panic!("round {round}: no acknowledged refill: {e}"),
            }
        }
        running.kill();
        second = writer.join().expect("writer");
        acknowledged.extend(receiver.try_iter());
    }
    // Restarted: every acknowledged refill is there, whole, with its audit entry.
    let server = Server::start(&clock);
    let token = server.sign_in("nurse.b");
    let (status, listed) = server
        .request("GET", &format!("/api/v1/pumps/{pump_id}/refills?limit=500"), Some(&token), None, &[])
        .expect("list");
    assert_eq!(status, 200, "{listed}");
    let items = listed["items"].as_array().expect("items");
    for (id, at) in &acknowledged {
        let found = items
            .iter()
            .find(|r| r["id"].as_i64() == Some(*id))
            .unwrap_or_else(|| panic!("acknowledged refill {id} at {at} is missing"));
        assert_eq!(found["at"], json!(at));
    }
    // At most one unacknowledged write per kill may have committed (its answer was lost).
    assert!(
        items.len() >= acknowledged.len() && items.len() <= acknowledged.len() + 3,
        "{} refills for {} acknowledged",
        items.len(),
        acknowledged.len()
    );
    for refill in items {
        for field in [
            "volume_expected_ml",
            "volume_withdrawn_ml",
            "gap_ml",
            "volume_added_ml",
            "refill_due_by",
            "low_reservoir_alarm_at",
            "nurse",
            "second_checker",
            "lot",
        ] {
            assert!(!refill[field].is_null(), "refill {} has no {field}: a partial refill", refill["id"]);
        }
    }
    // The pump's record follows its latest refill.
    let (_, pump) = server.request("GET", &format!("/api/v1/pumps/{pump_id}"), Some(&token), None, &[]).expect("pump");
    let latest = items.iter().map(|r| r["at"].as_str().unwrap_or("").to_owned()).max().expect("a refill");
    assert_eq!(pump["reservoir"]["at"], Value::String(latest));
    drop(server);
    let verify = itb_with_input(&["audit", "verify", "--database", &db], "");
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
    let text = String::from_utf8_lossy(&verify.stdout);
    assert!(text.contains("the audit chain is whole"), "{text}");
}
