//! Black-box tests of `itb pump` through the real binary.

mod common;

use common::itb;

#[test]
fn simulate_prints_a_timeline_and_summary_and_draws_svg() {
    let svg = std::env::temp_dir().join(format!("itb-test-{}.svg", std::process::id()));
    let svg_arg = svg.display().to_string();
    let output = itb(&["pump", "simulate", "--scenario", "examples/scenarios/missed-refill.toml", "--svg", &svg_arg]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("  Sun 21 Feb 2027 21:06  Alarm                  ALARM low reservoir"), "{text}");
    assert!(text.contains("Empty reservoir (critical)"), "{text}");
    assert!(text.contains("Mass balance held after every step           yes"), "{text}");
    // Nothing reaches the CSF from the empty reservoir to the emergency refill.
    assert!(text.contains("Time with no drug reaching the CSF           2 days 12 h"), "{text}");
    assert!(text.contains("Without drug from Wed 3 Mar 2027 21:06 to Sat 6 Mar 2027 10:00"), "{text}");
    let drawing = std::fs::read_to_string(&svg).expect("svg written");
    assert!(drawing.starts_with("<svg") && drawing.contains("Empty reservoir") && drawing.contains("<polyline"));
    let _ = std::fs::remove_file(&svg);
}

#[test]
fn simulate_json_has_the_summary_and_timeline() {
    let output = itb(&["pump", "simulate", "--scenario", "examples/scenarios/pocket-fill.toml", "--json"]);
    assert!(output.status.success());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(json["summary"]["to_tissue_micrograms"], 40000.0);
    assert_eq!(json["summary"]["refills"][1]["warning"], true);
    assert!(json["timeline"].as_array().is_some_and(|t| t.iter().any(|e| e["kind"] == "pocket_fill")));
    assert_eq!(json["summary"]["time_without_drug_hours"], 336.0);
    assert_eq!(json["summary"]["days_below_prescribed"], 15);
    assert_eq!(json["summary"]["days_above_prescribed"], 0);
}

/// Nanograms from a JSON figure in micrograms (at most 3 decimals), nanolitres from mL (6).
fn exact(value: &serde_json::Value, scale: f64) -> i64 {
    (value.as_f64().expect("a number") * scale).round() as i64
}

#[test]
fn simulate_json_mass_balance_adds_up_and_names_the_causes() {
    // A catheter leak from day 5, then a 5 mL pocket fill of 2000 micrograms/mL at day 10.
    let text = format!(
        "{HEAD}[[actions]]\nat = \"5 day\"\naction = \"catheter\"\nstate = \"leaking\"\nleak_percent = \"25\"\n\n\
         [[actions]]\nat = \"10 day\"\naction = \"refill\"\nvolume = \"5 mL\"\nconcentration = \"2000 micrograms/mL\"\npocket_fill = true\n"
    );
    let (dir, path) = scenario_file("balance", &text);
    let output = itb(&["pump", "simulate", "--scenario", &path, "--json"]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let b = &json["summary"]["mass_balance"];
    assert_eq!(b["to_tissue_by_cause"]["pocket_fill_micrograms"], 10000.0);
    assert_eq!(b["to_tissue_by_cause"]["pocket_fill_ml"], 5.0);
    assert_eq!(b["injected_elsewhere_micrograms"], 10000.0);
    assert!(b["to_tissue_by_cause"]["catheter_leak_micrograms"].as_f64().is_some_and(|m| m > 0.0));
    assert_eq!(b["balances"], true);
    for (unit, scale) in [("micrograms", 1_000.0), ("ml", 1_000_000.0)] {
        let get = |name: &str| exact(&b[format!("{name}_{unit}")], scale);
        let inflow = get("injected_into_reservoir") + get("injected_elsewhere");
        let out =
            get("in_reservoir") + get("in_tubing_and_catheter") + get("to_csf") + get("to_tissue") + get("withdrawn");
        assert_eq!(inflow, out, "{unit}");
        let causes: i64 = ["pocket_fill", "overfill", "catheter_leak", "disconnected_catheter", "replaced_catheter"]
            .iter()
            .map(|cause| exact(&b["to_tissue_by_cause"][format!("{cause}_{unit}")], scale))
            .sum();
        assert_eq!(causes, get("to_tissue"), "{unit}");
    }
    // From the leak on (30 November), 75 % of the prescribed 400 micrograms a day.
    let days = json["csf_per_day"].as_array().expect("days");
    let day = days.iter().find(|d| d["date"] == "2026-12-02").expect("2 December");
    assert_eq!(day["to_csf_micrograms"], 300.0);
    assert_eq!(day["prescribed_micrograms"], 400.0);
    assert_eq!(day["against_prescribed"], "below");
}

#[test]
fn simulate_shows_a_skipped_bridge_day_by_day() {
    let output = itb(&["pump", "simulate", "--scenario", "examples/scenarios/concentration-change-no-bridge.toml"]);
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("Days below the prescribed dose               2"), "{text}");
    assert!(
        text.contains("15 Dec 2026: 225 micrograms reached the CSF, 56 % of the 400 micrograms prescribed: below"),
        "{text}"
    );
    assert!(
        text.contains("16 Dec 2026: 110 micrograms reached the CSF, 27 % of the 400 micrograms prescribed: below"),
        "{text}"
    );
}

#[test]
fn simulate_text_has_no_code_names_debug_text_or_machine_dates() {
    for name in ["catheter-leak", "mri-delayed-recovery", "flex-nightly-ptm", "missed-refill", "pocket-fill"] {
        let output = itb(&["pump", "simulate", "--scenario", &format!("examples/scenarios/{name}.toml")]);
        assert!(output.status.success());
        let text = String::from_utf8_lossy(&output.stdout);
        for forbidden in ["_", "{", "ppm", "mcg", "µg", "T10:00", ":00Z", "2026-", "2027-"] {
            assert!(!text.contains(forbidden), "{name}: '{forbidden}' in\n{text}");
        }
        // Volumes to 0.01 mL and doses to 0.01 micrograms: never six decimals.
        assert!(
            !text
                .split(|c: char| !(c.is_ascii_digit() || c == '.'))
                .any(|n| n.split('.').nth(1).is_some_and(|f| f.len() > 3)),
            "{name}: {text}"
        );
    }
}

#[test]
fn simulate_refuses_a_bad_scenario_with_one_sentence() {
    let dir = std::env::temp_dir().join(format!("itb-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("bad.toml");
    std::fs::write(&file, "name = \"x\"\nprofile = \"synchromed-iii\"\n").expect("write");
    let output = itb(&["pump", "simulate", "--scenario", &file.display().to_string()]);
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--scenario"), "{stderr}");
    let missing = itb(&["pump", "simulate", "--scenario", "no-such.toml"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read no-such.toml"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A scenario file in a fresh directory; the directory is removed by the caller.
fn scenario_file(tag: &str, text: &str) -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("itb-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("scenario.toml");
    std::fs::write(&file, text).expect("write");
    let path = file.display().to_string();
    (dir, path)
}

const HEAD: &str = "name = \"x\"\nprofile = \"synchromed-ii-20\"\nstart = \"2026-11-25T10:00:00Z\"\nuntil = \"30 day\"\n\
                    [implant]\ncatheter_cm = 50\nfill = \"20 mL\"\nconcentration = \"2000 micrograms/mL\"\n\
                    prescription = { mode = \"simple_continuous\", dose = \"400 micrograms/day\" }\n";

#[test]
fn simulate_refuses_actions_out_of_order_and_overfills_naming_the_line() {
    let refill = |at: &str, volume: &str| {
        format!(
            "[[actions]]\nat = \"{at}\"\naction = \"refill\"\nvolume = \"{volume}\"\nconcentration = \"2000 micrograms/mL\"\n"
        )
    };
    // HEAD is 9 lines: the first action starts on line 10, the second on line 15.
    let cases = [
        (
            "order",
            format!("{HEAD}{}{}", refill("20 day", "20 mL"), refill("10 day", "20 mL")),
            "line 16: actions[2].at",
        ),
        ("overfill", format!("{HEAD}{}", refill("20 day", "40 mL")), "line 13: actions[1].volume"),
    ];
    for (tag, text, expected) in cases {
        let (dir, path) = scenario_file(tag, &text);
        let output = itb(&["pump", "simulate", "--scenario", &path]);
        let _ = std::fs::remove_dir_all(&dir);
        assert!(!output.status.success(), "{tag}");
        assert!(output.stdout.is_empty(), "{tag}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains("--scenario") && stderr.contains(expected), "{stderr}");
    }
}

#[test]
fn battery_curve_spans_five_to_seven_years() {
    let output = itb(&["pump", "battery", "--json"]);
    assert!(output.status.success());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let curve = json["curve"].as_array().expect("curve");
    let years: Vec<f64> = curve.iter().filter_map(|p| p["years"].as_f64()).collect();
    assert_eq!(years.first(), Some(&7.0));
    assert!(years.windows(2).all(|w| w[1] <= w[0]), "{years:?}");
    let at_two_ml = curve.iter().find(|p| p["daily_volume_ml"] == 2.0).expect("2 mL/day");
    assert_eq!(at_two_ml["years"], 5.0);
}

/// A fresh temporary directory path (not created), removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let path = std::env::temp_dir().join(format!("itb-pump-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        Self(path)
    }
    fn path(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const PTM_PRESCRIPTION: &str = "examples/prescriptions/simple-continuous-ptm.toml";

#[test]
fn provision_json_names_the_pump_and_its_keys() {
    let dir = TempDir::new("provision-json");
    let state = dir.path();
    let output = itb(&[
        "pump",
        "provision",
        "--state",
        &state,
        "--prescription",
        PTM_PRESCRIPTION,
        "--fill-ml",
        "18.5",
        "--start",
        "2026-11-25T10:00:00Z",
        "--json",
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(json["state_dir"], state);
    assert_eq!(json["profile"], "synchromed-ii-20");
    assert_eq!(json["implanted_at"], "2026-11-25T10:00:00Z");
    assert_eq!(json["fill_ml"], 18.5);
    assert_eq!(json["concentration_micrograms_per_ml"], 2000);
    let written = json["prescription_toml"].as_str().expect("prescription text");
    let file =
        std::fs::read_to_string(format!("{}/../../{PTM_PRESCRIPTION}", env!("CARGO_MANIFEST_DIR"))).expect("example");
    assert_eq!(
        itb_dose::toml::from_toml(written).expect("valid TOML"),
        itb_dose::toml::from_toml(&file).expect("valid example")
    );
    let programmer_key = json["programmer_key"].as_str().expect("path");
    assert_eq!(programmer_key, dir.0.join("programmer.key").display().to_string());
    assert_eq!(json["ptm_key"], dir.0.join("ptm.key").display().to_string());
    let key_file: toml::Table = toml::from_str(&std::fs::read_to_string(programmer_key).expect("key")).expect("toml");
    assert_eq!(json["pump_public_key"].as_str(), key_file["pump_public_key"].as_str());
    assert_eq!(json["pump_public_key"].as_str().map(str::len), Some(64));
}

#[test]
fn provision_text_dates_the_implant_for_people() {
    let dir = TempDir::new("provision-text");
    let state = dir.path();
    let args = ["pump", "provision", "--state", &state, "--prescription", PTM_PRESCRIPTION, "--start"];
    let output = itb(&[&args[..], &["2026-11-25T10:00:00.123456789Z"]].concat());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.starts_with(&format!("Provisioned a synchromed-ii-20 pump in {state}\n")), "{text}");
    assert!(text.contains("  Implanted        Wed 25 Nov 2026 10:00\n"), "{text}");
    assert!(text.contains("  Filled           20 mL of 2000 micrograms/mL\n"), "{text}");
    assert!(
        text.contains(
            "  Programmed       simple continuous 350 micrograms/day; PTM 25 micrograms over 10 min, at least 3 h apart, at most 4 in 24 hours\n"
        ),
        "{text}"
    );
    for forbidden in ["2026-11-25", ":00Z", ".123"] {
        assert!(!text.contains(forbidden), "'{forbidden}' in\n{text}");
    }
    // Another zone is named; a second pump in the same directory is refused, nothing on stdout.
    let other = TempDir::new("provision-zone");
    let zoned = itb(&["pump", "provision", "--state", &other.path(), "--tz", "UTC", "--start", "2026-11-25T10:00:00Z"]);
    assert!(String::from_utf8_lossy(&zoned.stdout).contains("  Implanted        Wed 25 Nov 2026 10:00 UTC\n"));
    let again = itb(&["pump", "provision", "--state", &other.path(), "--json"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(again.stdout.is_empty());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--state"));
}

#[test]
fn battery_text_gives_the_service_life_in_words_and_json_in_days() {
    let output = itb(&["pump", "battery"]);
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("\n  mL/day   years\n    0.05    7.00  #"), "{text}");
    assert!(text.contains("\n       3    4.25  #"), "{text}");
    assert!(
        text.contains(
            "The pump stops after 2556 days 18 h (7 years) of service whatever the charge; \
             the Elective Replacement Indicator (ERI) comes 90 days before End of Service."
        ),
        "{text}"
    );
    assert!(!text.contains("61362") && !text.contains("90 day "), "{text}");
    let json = itb(&["pump", "battery", "--json", "--profile", "synchromed-ii-40"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(json["profile"], "synchromed-ii-40");
    assert_eq!(json["service_life_days"], 2556.75);
    assert_eq!(json["eri_before_eos_days"], 90);
    assert_eq!(json["curve"].as_array().map(Vec::len), Some(10));
}

/// Runs a provisioned device and returns its console lines as they come; the device is killed
/// when the returned guard drops.
struct Console {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Console {
    fn start(state: &str, speed: &str) -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_itb"))
            .args(["pump", "run", "--listen", "127.0.0.1:0", "--speed", speed, "--state", state])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the device starts");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    fn next_line(&self) -> String {
        self.lines.recv_timeout(std::time::Duration::from_secs(30)).expect("a console line within 30 s")
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn device_console_dates_each_entry_for_people_when_it_happened() {
    // 0.05 mL above the 2 mL alarm at 350 micrograms/day of 2000 micrograms/mL (0.175 mL/day):
    // the low-reservoir alarm 6 h 51 min 25 s after the implant, long before the first tick of a
    // device running 100 000 times faster than real time (27 h 46 min 40 s a second).
    let dir = TempDir::new("console");
    let state = dir.path();
    let provisioned = itb(&[
        "pump",
        "provision",
        "--state",
        &state,
        "--prescription",
        PTM_PRESCRIPTION,
        "--fill-ml",
        "2.05",
        "--start",
        "2026-11-25T10:00:00Z",
    ]);
    assert!(provisioned.status.success(), "{}", String::from_utf8_lossy(&provisioned.stderr));
    let console = Console::start(&state, "100000");
    let first = console.next_line();
    assert!(first.starts_with("itb pump listening on 127.0.0.1:") && first.ends_with(" (speed 100000x)"), "{first}");
    assert_eq!(
        console.next_line(),
        "Wed 25 Nov 2026 16:51 [pump clock Wed 25 Nov 2026 16:51] ALARM low reservoir: the pump needs a refill soon"
    );
}
