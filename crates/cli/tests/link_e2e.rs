//! End to end over real loopback TCP: provision a pump, run it as its own process, program it,
//! refill it, take PTM boluses; and the attacks: replay, tamper, unknown key, a patient key
//! trying to program, a retried bolus, and the device killed during a commit.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use itb_link::message::{self, Request, RequestBody, Response, ResponseBody};
use itb_link::{InitiatorConfig, KeyPair, PublicKey};

fn itb() -> Command {
    Command::new(env!("CARGO_BIN_EXE_itb"))
}

fn examples() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples"))
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("itb-e2e-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn provision(dir: &Path) {
    let output = itb()
        .args(["pump", "provision", "--state"])
        .arg(dir)
        .arg("--prescription")
        .arg(examples().join("prescriptions/simple-continuous-ptm.toml"))
        .output()
        .expect("provision runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

struct Device {
    child: Child,
    address: String,
}

impl Device {
    fn start(dir: &Path, crash: Option<&str>) -> Self {
        Self::start_with(dir, crash, &[])
    }

    fn start_with(dir: &Path, crash: Option<&str>, extra: &[&str]) -> Self {
        let mut command = itb();
        command
            .args(["pump", "run", "--listen", "127.0.0.1:0", "--state"])
            .arg(dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(point) = crash {
            command.env("ITB_DEVICE_CRASH", point);
        }
        let mut child = command.spawn().expect("device starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().expect("a first line").expect("readable");
        let address = first.split_whitespace().nth(4).expect("an address").to_owned();
        // Keep reading the console so that the device never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self { child, address }
    }

    fn wait_for_exit(&mut self) -> bool {
        for _ in 0..200 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        false
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn program(device: &Device, dir: &Path, args: &[&str]) -> Output {
    itb()
        .args(["program", "--pump", &device.address, "--key"])
        .arg(dir.join("programmer.key"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("programmer runs")
}

fn ptm(device: &Device, dir: &Path, what: &str) -> Output {
    itb()
        .args(["ptm", "--pump", &device.address, "--key"])
        .arg(dir.join("ptm.key"))
        .arg(what)
        .output()
        .expect("ptm runs")
}

fn status(device: &Device, dir: &Path) -> serde_json::Value {
    let output = program(device, dir, &["--json", "interrogate"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("json status")
}

fn key_config(dir: &Path, file: &str) -> InitiatorConfig {
    let text = std::fs::read_to_string(dir.join(file)).expect("key file");
    let value: toml::Table = toml::from_str(&text).expect("toml");
    let keys = KeyPair::from_private_hex(value["private_key"].as_str().expect("hex")).expect("key");
    let pump: PublicKey = value["pump_public_key"].as_str().expect("hex").parse().expect("pump key");
    InitiatorConfig::new(keys, pump)
}

/// Sends one request over a fresh session with the library (not the CLI).
fn ask(address: &str, config: InitiatorConfig, id: u64, body: RequestBody) -> Result<ResponseBody, String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async move {
        let mut connection = itb_link::transport::tcp::connect(address, config).await.map_err(|e| e.to_string())?;
        let answer = connection.request(&message::encode(&Request { id, body })).await.map_err(|e| e.to_string())?;
        let response: Response = message::decode(&answer).map_err(|e| e.to_string())?;
        connection.close().await;
        Ok(response.body)
    })
}

const NEW_THERAPY: &str = "mode = \"simple_continuous\"\ndose = \"385 micrograms/day\"\n";

#[test]
fn provision_run_program_refill_and_ptm() {
    let dir = TempDir::new("flow");
    provision(&dir.0);
    // Two days after the implant: no increase is allowed in the first 24 hours.
    let device = Device::start_with(&dir.0, None, &["--advance", "2 day"]);
    let before = status(&device, &dir.0);
    assert_eq!(before["program_number"], 1);
    assert_eq!(before["state"], "therapy");

    let file = dir.0.join("new.toml");
    std::fs::write(&file, NEW_THERAPY).expect("write");
    // Without confirmation nothing is programmed.
    let unconfirmed = program(&device, &dir.0, &["prescribe", file.to_str().expect("path")]);
    assert_eq!(unconfirmed.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&unconfirmed.stdout).contains("NOW"));
    assert_eq!(status(&device, &dir.0)["program_number"], 1);
    let confirmed = program(&device, &dir.0, &["prescribe", file.to_str().expect("path"), "--yes"]);
    let text = String::from_utf8_lossy(&confirmed.stdout);
    assert!(confirmed.status.success(), "{text}");
    assert!(text.contains("385 micrograms") && text.contains("Committed"), "{text}");
    assert_eq!(status(&device, &dir.0)["program_number"], 2);

    // A refill beyond the reservoir is refused before anything is withdrawn.
    let too_much = program(&device, &dir.0, &["refill", "--fill-ml", "25", "--concentration", "2000", "--yes"]);
    assert_eq!(too_much.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&too_much.stdout).contains("Nothing was withdrawn"));
    assert!(status(&device, &dir.0)["reservoir_ml"].as_f64().is_some_and(|ml| ml > 19.0));
    assert_eq!(status(&device, &dir.0)["awaiting_refill"], false);
    let refill = program(&device, &dir.0, &["refill", "--fill-ml", "20", "--concentration", "2000", "--yes"]);
    assert!(refill.status.success(), "{}", String::from_utf8_lossy(&refill.stdout));
    assert!(String::from_utf8_lossy(&refill.stdout).contains("Committed: refilled"));
    assert_eq!(status(&device, &dir.0)["reservoir_ml"], 20.0);

    // The new program has no PTM limits: the PTM is refused with the reason.
    let refused = ptm(&device, &dir.0, "bolus");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stdout).contains("no PTM boluses are prescribed"));
    let with_ptm = examples().join("prescriptions/simple-continuous-ptm.toml");
    // With its PTM back the worst case rises within a day of the last increase: a reason.
    let restored = program(&device, &dir.0, &["prescribe", with_ptm.to_str().expect("path"), "--yes"]);
    assert_eq!(restored.status.code(), Some(4), "{}", String::from_utf8_lossy(&restored.stdout));
    assert!(String::from_utf8_lossy(&restored.stdout).contains("With every PTM bolus taken"));
    let restored = program(
        &device,
        &dir.0,
        &["prescribe", with_ptm.to_str().expect("path"), "--override", "PTM restored as agreed at clinic", "--yes"],
    );
    assert!(restored.status.success(), "{}", String::from_utf8_lossy(&restored.stdout));
    let bolus = ptm(&device, &dir.0, "bolus");
    assert!(bolus.status.success(), "{}", String::from_utf8_lossy(&bolus.stdout));
    let again = ptm(&device, &dir.0, "bolus");
    let again_text = String::from_utf8_lossy(&again.stdout);
    assert!(!again.status.success());
    assert!(again_text.contains("next bolus is allowed"), "{again_text}");
    assert!(String::from_utf8_lossy(&ptm(&device, &dir.0, "status").stdout).contains("1 of 4"));
}

#[test]
fn unknown_keys_and_patient_keys_cannot_program() {
    let dir = TempDir::new("keys");
    provision(&dir.0);
    let device = Device::start(&dir.0, None);
    let stranger =
        InitiatorConfig::new(KeyPair::generate().expect("key"), key_config(&dir.0, "programmer.key").pump_key);
    assert!(ask(&device.address, stranger, 1, RequestBody::Interrogate {}).is_err(), "an unknown key opens no session");
    let patient = key_config(&dir.0, "ptm.key");
    let answer =
        ask(&device.address, patient.clone(), 2, RequestBody::StageTherapy { prescription_toml: NEW_THERAPY.into() })
            .expect("an answer");
    assert!(matches!(answer, ResponseBody::Refused { ref code, .. } if code == "not_permitted"), "{answer:?}");
    let stop = ask(&device.address, patient, 3, RequestBody::Stop { reason: None }).expect("an answer");
    assert!(matches!(stop, ResponseBody::Refused { ref code, .. } if code == "not_permitted"), "{stop:?}");
    assert_eq!(status(&device, &dir.0)["state"], "therapy");
    // The CLI refuses a patient key for programming before it connects.
    let output = itb()
        .args(["program", "--pump", &device.address, "--key"])
        .arg(dir.0.join("ptm.key"))
        .arg("stop")
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&output.stderr).contains("patient key"));
}

#[test]
fn a_retried_bolus_delivers_once() {
    let dir = TempDir::new("retry");
    provision(&dir.0);
    let device = Device::start(&dir.0, None);
    let patient = key_config(&dir.0, "ptm.key");
    let first = ask(&device.address, patient.clone(), 77, RequestBody::PtmBolus {}).expect("answer");
    assert!(matches!(first, ResponseBody::BolusStarted { dose_ng: 25_000, .. }), "{first:?}");
    // The link dropped before the answer arrived: the PTM retries the same request id.
    let retry = ask(&device.address, patient, 77, RequestBody::PtmBolus {}).expect("answer");
    assert_eq!(retry, first);
    assert_eq!(status(&device, &dir.0)["ptm_boluses_last_24h"], 1);
}

#[derive(Clone, Copy)]
enum Meddle {
    Replay,
    Tamper,
}

/// A man in the middle that meddles with the client's `frame`-th frame (counting from 1).
fn proxy(upstream: String, frame: usize, meddle: Meddle) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    std::thread::spawn(move || {
        let Ok((mut client, _)) = listener.accept() else { return };
        let Ok(mut server) = TcpStream::connect(upstream) else { return };
        let (Ok(mut client_back), Ok(mut server_back)) = (client.try_clone(), server.try_clone()) else { return };
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut server_back, &mut client_back);
            // The pump hung up: so does the proxy, at once.
            let _ = client_back.shutdown(std::net::Shutdown::Both);
        });
        let mut count = 0;
        loop {
            let mut length = [0u8; 2];
            if client.read_exact(&mut length).is_err() {
                break;
            }
            let mut body = vec![0u8; usize::from(u16::from_be_bytes(length))];
            if client.read_exact(&mut body).is_err() {
                break;
            }
            count += 1;
            let mut out = length.to_vec();
            if count == frame {
                match meddle {
                    Meddle::Replay => {
                        out.extend_from_slice(&body);
                        out.extend_from_slice(&length);
                    }
                    Meddle::Tamper => {
                        let middle = body.len() / 2;
                        body[middle] ^= 0x01;
                    }
                }
            }
            out.extend_from_slice(&body);
            if server.write_all(&out).is_err() {
                break;
            }
        }
    });
    address
}

#[test]
fn replayed_and_tampered_frames_are_refused() {
    let dir = TempDir::new("meddle");
    provision(&dir.0);
    let device = Device::start(&dir.0, None);
    let patient = key_config(&dir.0, "ptm.key");
    // Frames from the client: 1 hello, 2 handshake, 3 key confirmation, 4 the request.
    let replayed = proxy(device.address.clone(), 4, Meddle::Replay);
    let answer = ask(&replayed, patient.clone(), 5, RequestBody::PtmBolus {});
    // The first copy may be answered before the replay closes the session; the bolus is given once.
    if let Ok(body) = &answer {
        assert!(matches!(body, ResponseBody::BolusStarted { .. }), "{body:?}");
    }
    assert_eq!(status(&device, &dir.0)["ptm_boluses_last_24h"], 1, "a replayed frame never delivers twice");
    let tampered = proxy(device.address.clone(), 4, Meddle::Tamper);
    let answer = ask(&tampered, key_config(&dir.0, "programmer.key"), 6, RequestBody::Stop { reason: None });
    assert!(answer.is_err(), "a tampered frame gets no answer: {answer:?}");
    assert_eq!(status(&device, &dir.0)["state"], "therapy", "the tampered stop did nothing");
    let tampered_handshake = proxy(device.address.clone(), 2, Meddle::Tamper);
    assert!(
        ask(&tampered_handshake, key_config(&dir.0, "programmer.key"), 7, RequestBody::Stop { reason: None }).is_err()
    );
}

#[test]
fn a_device_killed_during_a_commit_restarts_with_the_old_or_the_new_therapy() {
    let dir = TempDir::new("crash");
    provision(&dir.0);
    let file = dir.0.join("new.toml");
    std::fs::write(&file, NEW_THERAPY).expect("write");
    let prescribe = |device: &Device| {
        program(
            device,
            &dir.0,
            &["prescribe", file.to_str().expect("path"), "--override", "crash test of an intended increase", "--yes"],
        )
    };

    // Killed after the new state is written but before it replaces the old: the old therapy.
    let mut device = Device::start(&dir.0, Some("before-rename"));
    let output = prescribe(&device);
    assert!(!output.status.success(), "the programmer sees no answer");
    assert!(device.wait_for_exit(), "the device died at the injected point");
    drop(device);
    let device = Device::start(&dir.0, None);
    let after = status(&device, &dir.0);
    assert_eq!(after["program_number"], 1);
    assert_eq!(after["state"], "therapy", "never stopped");
    drop(device);

    // Killed just after the rename: the new therapy.
    let mut device = Device::start(&dir.0, Some("after-rename"));
    assert!(!prescribe(&device).status.success());
    assert!(device.wait_for_exit());
    drop(device);
    let device = Device::start(&dir.0, None);
    let after = status(&device, &dir.0);
    assert_eq!(after["program_number"], 2);
    assert_eq!(after["state"], "therapy");
    assert_eq!(after["worst_case_daily_dose_micrograms"], 385.0);

    // SIGKILL at an arbitrary moment: the restart reads a whole state (the snapshot is checked
    // for mass balance on load, or the device would refuse to start).
    let mut device = device;
    let _ = device.child.kill();
    let _ = device.child.wait();
    drop(device);
    let device = Device::start(&dir.0, None);
    let after = status(&device, &dir.0);
    assert_eq!(after["state"], "therapy");
    assert!(after["reservoir_ml"].as_f64().is_some_and(|ml| ml > 19.0 && ml <= 20.0));
}

#[test]
fn a_second_increase_within_a_day_stops_unless_a_reason_is_written() {
    let dir = TempDir::new("titration");
    provision(&dir.0);
    let device = Device::start_with(&dir.0, None, &["--advance", "2 day"]);
    let first = dir.0.join("385.toml");
    std::fs::write(&first, NEW_THERAPY).expect("write");
    let second = dir.0.join("420.toml");
    std::fs::write(&second, "mode = \"simple_continuous\"\ndose = \"420 micrograms/day\"\n").expect("write");
    let path = |p: &PathBuf| p.to_str().expect("path").to_owned();
    // 350 -> 385 micrograms/day: +10 %, within the spinal step.
    let output = program(&device, &dir.0, &["prescribe", &path(&first), "--origin", "spinal", "--age", "45", "--yes"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("An increase from 350 micrograms/day to 385 micrograms/day (10%) is within the 10-30% step of the guideline for adults with spasticity of spinal origin."),
        "{text}"
    );
    // 385 -> 420 minutes later: too soon, and "yes" is not enough.
    let output = program(&device, &dir.0, &["prescribe", &path(&second), "--origin", "spinal", "--age", "45", "--yes"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(4), "{text}");
    assert!(
        text.contains("DANGER") && text.contains("at least 24 hours apart") && text.contains("--override"),
        "{text}"
    );
    assert_eq!(status(&device, &dir.0)["program_number"], 2);
    // A bare "yes" is not a reason.
    let output = program(&device, &dir.0, &["prescribe", &path(&second), "--override", "yes", "--yes"]);
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stdout));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--override"));
    assert_eq!(status(&device, &dir.0)["program_number"], 2);
    // The older flag name still works, and the reason is kept in the pump's log.
    let output = program(
        &device,
        &dir.0,
        &[
            "prescribe",
            &path(&second),
            "--origin",
            "spinal",
            "--accept-titration",
            "consultant review after spasms",
            "--yes",
        ],
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("Written reason, kept in the pump's log: consultant review after spasms"), "{text}");
    assert_eq!(status(&device, &dir.0)["program_number"], 3);
    let log = program(&device, &dir.0, &["log"]);
    assert!(String::from_utf8_lossy(&log.stdout).contains("consultant review after spasms"));
}

#[test]
fn a_refill_stops_when_less_comes_out_than_the_pump_expected() {
    let dir = TempDir::new("gap");
    let output = itb()
        .args(["pump", "provision", "--rate-error-percent", "50", "--state"])
        .arg(&dir.0)
        .output()
        .expect("provision runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    // 60 days at 100 micrograms/day of 2000: the pump counts 3 mL used; 4.5 mL really left it.
    let device = Device::start_with(&dir.0, None, &["--advance", "60 day"]);
    let stopped = program(&device, &dir.0, &["refill", "--fill-ml", "20", "--concentration", "2000", "--yes"]);
    let text = String::from_utf8_lossy(&stopped.stdout);
    assert_eq!(stopped.status.code(), Some(3), "{text}");
    assert!(
        text.contains("Withdrawn 15.5 mL; the pump expected 17 mL: 1.5 mL LESS than expected, above the 1 mL"),
        "{text}"
    );
    assert!(text.contains("over-infusion"), "{text}");
    // What physically happened is said, and the pump knows it: the reservoir is empty.
    assert!(text.contains("THE RESERVOIR IS EMPTY: 15.5 mL was withdrawn"), "{text}");
    let after = status(&device, &dir.0);
    assert_eq!(after["reservoir_ml"], 0.0);
    assert_eq!(after["awaiting_refill"], true);
    assert!(after["alarms"].as_array().expect("alarms").iter().any(|a| a == "empty_reservoir"), "{after}");
    let log = String::from_utf8_lossy(&program(&device, &dir.0, &["log"]).stdout).into_owned();
    assert!(log.contains("15.5 mL withdrawn") && log.contains("expected 17 mL"), "{log}");
    // Once explained, the refill goes on from the recorded withdrawal.
    let accepted = program(
        &device,
        &dir.0,
        &["refill", "--fill-ml", "20", "--concentration", "2000", "--accept-gap", "pump sent for analysis", "--yes"],
    );
    let text = String::from_utf8_lossy(&accepted.stdout);
    assert!(accepted.status.success(), "{text}");
    assert!(text.contains("Gap accepted by the clinician: pump sent for analysis"), "{text}");
    assert!(text.contains("already withdrawn"), "{text}");
    let after = status(&device, &dir.0);
    assert_eq!(after["reservoir_ml"], 20.0);
    assert_eq!(after["awaiting_refill"], false);
}

#[test]
fn sigkill_at_arbitrary_moments_of_a_commit_leaves_a_running_therapy() {
    let dir = TempDir::new("sigkill");
    provision(&dir.0);
    let file = dir.0.join("new.toml");
    let mut expected_program = 1;
    for (round, delay_ms) in [0u64, 3, 8, 15, 30, 60].into_iter().enumerate() {
        // Alternate the dose so that every round is a real change.
        let dose = if round % 2 == 0 { 385 } else { 350 };
        std::fs::write(&file, format!("mode = \"simple_continuous\"\ndose = \"{dose} micrograms/day\"\n"))
            .expect("write");
        let mut device = Device::start(&dir.0, None);
        let programmer = itb()
            .args(["program", "--pump", &device.address, "--key"])
            .arg(dir.0.join("programmer.key"))
            .args([
                "prescribe",
                file.to_str().expect("path"),
                "--override",
                "crash test of an intended change",
                "--yes",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("programmer runs");
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = device.child.kill();
        let _ = device.child.wait();
        let mut programmer = programmer;
        let _ = programmer.wait();
        drop(device);
        let device = Device::start(&dir.0, None);
        let after = status(&device, &dir.0);
        assert_eq!(after["state"], "therapy", "round {round}: never stopped");
        let program = after["program_number"].as_u64().expect("number");
        assert!(program == expected_program || program == expected_program + 1, "round {round}: {program}");
        expected_program = program;
    }
}

#[cfg(unix)]
#[test]
fn key_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("perms");
    provision(&dir.0);
    for name in ["pump.key", "programmer.key", "ptm.key", "trusted.toml"] {
        let mode = std::fs::metadata(dir.0.join(name)).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}");
    }
}

/// With `--json` nobody answers a prompt: nothing is committed without `--yes`, a dangerous
/// change still needs `--override`, and every outcome is JSON with the review's warnings.
#[test]
fn json_for_machines_never_confirms_by_itself() {
    let dir = TempDir::new("json");
    provision(&dir.0);
    let device = Device::start_with(&dir.0, None, &["--advance", "2 day"]);
    let file = dir.0.join("385.toml");
    std::fs::write(&file, NEW_THERAPY).expect("write");
    let path = file.to_str().expect("path");
    let json = |output: &Output| -> serde_json::Value {
        serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)))
    };
    let unconfirmed = program(&device, &dir.0, &["--json", "prescribe", path]);
    assert_eq!(unconfirmed.status.code(), Some(4));
    let value = json(&unconfirmed);
    assert_eq!(value["outcome"], "not_confirmed");
    assert_eq!(value["review"]["old"]["max_daily_dose_micrograms"], 350);
    assert_eq!(value["review"]["new"]["max_daily_dose_micrograms"], 385);
    assert!(value["review"]["warnings"].as_array().expect("warnings").iter().any(|w| w["code"] == "dose_increase"));
    assert_eq!(status(&device, &dir.0)["program_number"], 1);
    let committed = program(&device, &dir.0, &["--json", "prescribe", path, "--yes"]);
    assert_eq!(committed.status.code(), Some(0), "{}", String::from_utf8_lossy(&committed.stdout));
    let value = json(&committed);
    assert_eq!(value["outcome"], "committed");
    assert_eq!(value["committed"]["after"]["program_number"], 2);
    // A second increase within the day: "yes" is not enough, in JSON too.
    std::fs::write(&file, "mode = \"simple_continuous\"\ndose = \"420 micrograms/day\"\n").expect("write");
    let dangerous = program(&device, &dir.0, &["--json", "prescribe", path, "--yes"]);
    assert_eq!(dangerous.status.code(), Some(4));
    let value = json(&dangerous);
    assert_eq!(value["outcome"], "needs_override");
    assert_eq!(value["review"]["needs_override"], true);
    assert_eq!(value["review"]["warnings"][0]["code"], "increase_too_soon");
    assert_eq!(value["review"]["warnings"][0]["severity"], "danger");
    // Stopping needs a reason and a yes.
    let stop = program(&device, &dir.0, &["--json", "stop", "--reason", "patient going to theatre"]);
    assert_eq!(stop.status.code(), Some(4));
    assert_eq!(json(&stop)["outcome"], "not_confirmed");
    assert_eq!(status(&device, &dir.0)["state"], "therapy");
    let log = program(&device, &dir.0, &["--json", "log"]);
    let entries = json(&log)["entries"].as_array().cloned().expect("entries");
    let programmed = entries.iter().filter(|e| e["event"].get("therapy_programmed").is_some()).count();
    assert_eq!(programmed, 2, "implant and one change");
}

/// A danger known before the withdrawal stops the refill with the reservoir still full; a
/// refill declined after the withdrawal says the reservoir is empty and exits 6.
#[test]
fn refill_dangers_are_settled_before_the_withdrawal_and_a_declined_refill_says_so() {
    let dir = TempDir::new("refill-order");
    provision(&dir.0);
    let device = Device::start_with(&dir.0, None, &["--advance", "10 day"]);
    let no_bridge =
        program(&device, &dir.0, &["refill", "--fill-ml", "20", "--concentration", "500", "--no-bridge", "--yes"]);
    let text = String::from_utf8_lossy(&no_bridge.stdout);
    assert_eq!(no_bridge.status.code(), Some(4), "{text}");
    assert!(text.contains("WITHOUT a bridge bolus") && text.contains("Nothing was withdrawn"), "{text}");
    let after = status(&device, &dir.0);
    assert_eq!(after["awaiting_refill"], false);
    assert!(after["reservoir_ml"].as_f64().is_some_and(|ml| ml > 17.0), "{after}");
    // Two reasons that fit alone but not together in the pump's log: refused before anything.
    let long = "the gap was explained by the pump analysis report from the manufacturer, reviewed today";
    let both = program(
        &device,
        &dir.0,
        &["refill", "--fill-ml", "20", "--concentration", "2000", "--accept-gap", long, "--override", long, "--yes"],
    );
    assert_eq!(both.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&both.stderr).contains("--override and --accept-gap together"));
    assert_eq!(status(&device, &dir.0)["awaiting_refill"], false, "nothing was withdrawn");
    // Withdrawn, then not confirmed (no --yes, no terminal): the reservoir is empty, exit 6.
    let declined = program(&device, &dir.0, &["refill", "--fill-ml", "20", "--concentration", "2000"]);
    let text = String::from_utf8_lossy(&declined.stdout);
    assert_eq!(declined.status.code(), Some(6), "{text}");
    assert!(text.contains("THE RESERVOIR IS EMPTY") && text.contains("NO baclofen"), "{text}");
    let after = status(&device, &dir.0);
    assert_eq!((after["awaiting_refill"].clone(), after["reservoir_ml"].clone()), (true.into(), 0.into()));
    // In JSON too.
    let json = program(&device, &dir.0, &["--json", "refill", "--fill-ml", "20", "--concentration", "2000"]);
    assert_eq!(json.status.code(), Some(6));
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(value["after_withdrawal"]["reservoir_empty"], true);
    assert_eq!(value["outcome"], "not_confirmed");
    // The refill goes on from the withdrawal the pump recorded.
    let done = program(&device, &dir.0, &["refill", "--fill-ml", "20", "--concentration", "2000", "--yes"]);
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stdout));
    assert_eq!(status(&device, &dir.0)["reservoir_ml"], 20.0);
}

/// Boluses are confirmed; a priming bolus always needs a written reason.
#[test]
fn prime_needs_a_reason_and_a_bolus_a_confirmation() {
    let dir = TempDir::new("boluses");
    provision(&dir.0);
    let device = Device::start_with(&dir.0, None, &["--advance", "2 day"]);
    let prime = program(&device, &dir.0, &["prime", "--yes"]);
    let text = String::from_utf8_lossy(&prime.stdout);
    assert_eq!(prime.status.code(), Some(4), "{text}");
    assert!(text.contains("EMPTY catheter") && text.contains("--reason"), "{text}");
    assert_eq!(status(&device, &dir.0)["state"], "therapy", "no priming started");
    let bolus = program(&device, &dir.0, &["bolus", "--dose", "50", "--minutes", "10"]);
    assert_eq!(bolus.status.code(), Some(4), "not confirmed without --yes");
    assert_eq!(status(&device, &dir.0)["state"], "therapy");
    let bolus = program(&device, &dir.0, &["bolus", "--dose", "50", "--minutes", "10", "--yes"]);
    assert!(bolus.status.success(), "{}", String::from_utf8_lossy(&bolus.stdout));
    assert_eq!(status(&device, &dir.0)["state"], "single_bolus");
}

/// Settings that move the refill dates or the schedule are confirmed; a threshold that leaves
/// hours before empty needs a reason; a bolus longer than a day is refused on the command line.
#[test]
fn settings_are_confirmed_and_absurd_values_refused() {
    let dir = TempDir::new("settings");
    provision(&dir.0);
    let device = Device::start_with(&dir.0, None, &["--advance", "2 day"]);
    let short = program(&device, &dir.0, &["set-alarm-threshold", "0.001", "--yes"]);
    let text = String::from_utf8_lossy(&short.stdout);
    assert_eq!(short.status.code(), Some(4), "{text}");
    assert!(text.contains("at 0.001 mL (it sounds at 2 mL now)") && text.contains("--reason"), "{text}");
    assert_eq!(status(&device, &dir.0)["alarm_threshold_ml"], 2.0);
    let fine = program(&device, &dir.0, &["set-alarm-threshold", "3", "--yes"]);
    assert!(fine.status.success(), "{}", String::from_utf8_lossy(&fine.stdout));
    assert_eq!(status(&device, &dir.0)["alarm_threshold_ml"], 3.0);
    let endless = program(&device, &dir.0, &["bolus", "--dose", "60", "--minutes", "307445734561825861", "--yes"]);
    assert_eq!(endless.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&endless.stderr).contains("--minutes"));
    let resume = program(&device, &dir.0, &["resume", "--yes"]);
    assert_eq!(resume.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&resume.stdout).contains("not stopped"),
        "{}",
        String::from_utf8_lossy(&resume.stdout)
    );
}
