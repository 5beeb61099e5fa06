//! The virtual pump device: `itb pump provision` makes its non-volatile state and the paired
//! keys; `itb pump run` runs its firmware in real time (or faster) behind the secure link.
//!
//! State directory:
//! - `pump.cbor`: the pump's non-volatile memory (firmware and simulated world), replaced
//!   atomically (write, fsync, rename, fsync the directory) after every change;
//! - `pump.key`: the pump's private key; `trusted.toml`: the paired devices and their roles;
//! - `programmer.key`, `ptm.key`: the clinician programmer's and the PTM's key files (hand them
//!   to those devices).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use clap::Args;
use itb_dose::{Concentration, DeviceProfile, Volume, text};
use itb_link::device::Device;
use itb_link::{KeyPair, PublicKey, ResponderConfig, Role, TrustedPeers};
use itb_pump::{Implant, Instant, Pump, PumpTime};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::CliError;
use crate::output::{Report, number, prescription_words};

const SNAPSHOT: &str = "pump.cbor";
/// Connections the device holds at once, by phase and role, and the time to authenticate.
const SERVER_LIMITS: itb_link::transport::tcp::ServerLimits = itb_link::transport::tcp::ServerLimits::DEFAULT;
/// Most simulated time per real second.
const SPEED_MAX: u64 = 1_000_000;

/// A key file for a programmer or PTM.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceKeyFile {
    /// `clinician` or `patient`.
    pub role: String,
    /// This device's private key, hex.
    pub private_key: String,
    /// The pump it is paired with, hex.
    pub pump_public_key: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PumpKeyFile {
    private_key: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustedFile {
    peer: Vec<TrustedPeer>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustedPeer {
    role: String,
    public_key: String,
}

#[derive(Debug, Args)]
#[command(after_help = crate::output::EXIT_CODES)]
pub struct ProvisionArgs {
    /// Directory for the pump's state and keys (created; must not hold a pump already).
    #[arg(long, value_name = "DIR")]
    state: PathBuf,
    /// Device profile.
    #[arg(long, value_name = "NAME", default_value = "synchromed-ii-20")]
    profile: String,
    /// Volume filled in theatre, mL (default: the reservoir's capacity).
    #[arg(long, value_name = "ML")]
    fill_ml: Option<String>,
    /// Concentration, micrograms/mL.
    #[arg(long, value_name = "MICROGRAMS_PER_ML", default_value = "2000")]
    concentration: String,
    /// The prescription programmed in recovery (TOML); default 100 micrograms/day continuous.
    #[arg(long, value_name = "FILE")]
    prescription: Option<PathBuf>,
    /// Catheter length, cm.
    #[arg(long, value_name = "CM", default_value = "50")]
    catheter_cm: u32,
    /// Implant instant (RFC 3339); default now.
    #[arg(long, value_name = "INSTANT")]
    start: Option<String>,
    /// The pump's clock is set to local time in this zone at implant.
    #[arg(long, value_name = "ZONE", default_value = "Europe/London")]
    tz: String,
    /// A test pump that delivers this much more (or, negative, less) than it is told, in
    /// percent: over-infusion shows at the next refill as less withdrawn than expected.
    #[arg(long, value_name = "PERCENT", default_value = "0", allow_hyphen_values = true)]
    rate_error_percent: i64,
    /// Print JSON for machines (the implant instant in RFC 3339 UTC, exact figures).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
#[command(after_help = crate::output::EXIT_CODES)]
pub struct RunArgs {
    /// The pump's state directory (from `itb pump provision`).
    #[arg(long, value_name = "DIR")]
    state: PathBuf,
    /// Address to listen on (e.g. 127.0.0.1:7410; port 0 picks one and prints it).
    #[arg(long, value_name = "ADDR")]
    listen: String,
    /// Simulated seconds per real second.
    #[arg(long, value_name = "N", default_value = "1")]
    speed: u64,
    /// Before serving, run the pump forward by this much simulated time (e.g. "60 day"), to
    /// test a programmer against a pump that is due a refill.
    #[arg(long, value_name = "DURATION")]
    advance: Option<String>,
}

fn io_error(path: &Path, error: std::io::Error) -> CliError {
    CliError(format!("{}: {error}", path.display()))
}

/// Writes `bytes` to `dir/name` atomically: a crash leaves the old file or the new, never a mix.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), CliError> {
    let target = dir.join(name);
    let temporary = dir.join(format!("{name}.tmp"));
    let mut file = std::fs::File::create(&temporary).map_err(|e| io_error(&temporary, e))?;
    file.write_all(bytes).map_err(|e| io_error(&temporary, e))?;
    file.sync_all().map_err(|e| io_error(&temporary, e))?;
    drop(file);
    crash_point("before-rename");
    std::fs::rename(&temporary, &target).map_err(|e| io_error(&target, e))?;
    if let Ok(directory) = std::fs::File::open(dir) {
        let _ = directory.sync_all();
    }
    crash_point("after-rename");
    Ok(())
}

/// A fault-injection hook for the crash tests: `ITB_DEVICE_CRASH=<point>` aborts the process at
/// that point of the next state write, as a power cut or SIGKILL would.
fn crash_point(point: &str) {
    if std::env::var("ITB_DEVICE_CRASH").is_ok_and(|wanted| wanted == point) {
        eprintln!("itb: crash injected at {point}");
        std::process::abort();
    }
}

fn save(dir: &Path, pump: &Pump) -> Result<(), CliError> {
    write_atomically(dir, SNAPSHOT, &itb_pump::snapshot::to_snapshot(pump))
}

fn load(dir: &Path) -> Result<Pump, CliError> {
    let path = dir.join(SNAPSHOT);
    let bytes = std::fs::read(&path).map_err(|e| io_error(&path, e))?;
    itb_pump::snapshot::from_snapshot(&bytes).map_err(|e| CliError(format!("{}: {e}", path.display())))
}

/// Creates a file that must not exist yet, readable by its owner only (key files hold private keys).
fn write_new(path: &Path, text: &str) -> Result<(), CliError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| io_error(path, e))?;
    file.write_all(text.as_bytes()).map_err(|e| io_error(path, e))?;
    file.sync_all().map_err(|e| io_error(path, e))
}

fn toml_text<T: Serialize>(value: &T) -> String {
    toml::to_string(value).unwrap_or_default()
}

/// `itb pump provision`.
pub fn provision(args: &ProvisionArgs) -> Result<String, CliError> {
    let profile = DeviceProfile::built_in(&args.profile).map_err(|e| CliError::flag("--profile", e))?;
    let zone = jiff::tz::TimeZone::get(&args.tz)
        .map_err(|_| CliError::flag("--tz", format!("'{}' is not a known time zone", args.tz)))?;
    let start = match &args.start {
        Some(text) => text
            .parse::<jiff::Timestamp>()
            .map_err(|_| CliError::flag("--start", format!("'{text}' is not an RFC 3339 instant")))?,
        None => jiff::Timestamp::now(),
    };
    let fill = match &args.fill_ml {
        Some(text) => Volume::parse_implied(text).map_err(|e| CliError::flag("--fill-ml", e))?,
        None => profile.reservoir.capacity.value,
    };
    let concentration =
        Concentration::parse_implied(&args.concentration).map_err(|e| CliError::flag("--concentration", e))?;
    let prescription = match &args.prescription {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::flag("--prescription", format!("{}: {e}", path.display())))?;
            itb_dose::toml::from_toml(&text)
                .map_err(|e| CliError::flag("--prescription", format!("{}: {e}", path.display())))?
        }
        None => itb_dose::toml::from_toml("mode = \"simple_continuous\"\ndose = \"100 micrograms/day\"\n")
            .map_err(|e| CliError(e.to_string()))?,
    };
    if args.state.join(SNAPSHOT).exists() {
        return Err(CliError::flag(
            "--state",
            format!("{} already holds a pump; choose an empty directory", args.state.display()),
        ));
    }
    let at = Instant::from_timestamp(start);
    let clock = zone.to_datetime(start);
    let programmed = prescription.clone();
    let profile_name = profile.name.clone();
    let pump = Pump::implant(Implant {
        profile,
        at,
        clock: PumpTime::from_civil(clock),
        catheter_cm: args.catheter_cm,
        rate_error_ppm: args.rate_error_percent.clamp(-100, 1_000) * 10_000,
        fill,
        concentration,
        prescription,
    })
    .map_err(|refusal| CliError(format!("the pump refused its implant settings: {}", refusal.message)))?;
    std::fs::create_dir_all(&args.state).map_err(|e| io_error(&args.state, e))?;
    let key_error = |e: itb_link::KeyError| CliError(format!("cannot make a key: {e}"));
    let pump_keys = KeyPair::generate().map_err(key_error)?;
    let programmer = KeyPair::generate().map_err(key_error)?;
    let ptm = KeyPair::generate().map_err(key_error)?;
    let pump_public = pump_keys.public().to_hex();
    write_new(&args.state.join("pump.key"), &toml_text(&PumpKeyFile { private_key: pump_keys.private_hex() }))?;
    let trusted = TrustedFile {
        peer: vec![
            TrustedPeer { role: "clinician".into(), public_key: programmer.public().to_hex() },
            TrustedPeer { role: "patient".into(), public_key: ptm.public().to_hex() },
        ],
    };
    write_new(&args.state.join("trusted.toml"), &toml_text(&trusted))?;
    for (name, role, keys) in [("programmer.key", "clinician", &programmer), ("ptm.key", "patient", &ptm)] {
        let file =
            DeviceKeyFile { role: role.into(), private_key: keys.private_hex(), pump_public_key: pump_public.clone() };
        write_new(&args.state.join(name), &toml_text(&file))?;
    }
    save(&args.state, &pump)?;
    let state_dir = args.state.display().to_string();
    let programmer_key = args.state.join("programmer.key").display().to_string();
    let ptm_key = args.state.join("ptm.key").display().to_string();
    let mut report = Report::new(format!("Provisioned a {profile_name} pump in {state_dir}"));
    report
        .json("state_dir", Value::String(state_dir))
        .json("profile", Value::String(profile_name))
        .json("implanted_at", Value::String(at.to_timestamp().to_string()))
        .json("time_zone", Value::String(zone.iana_name().unwrap_or("UTC").to_owned()))
        .json("catheter_cm", Value::from(args.catheter_cm))
        .json("fill_ml", number(fill.number()))
        .json("concentration_micrograms_per_ml", number(concentration.number()))
        .json("prescription_toml", Value::String(itb_dose::toml::to_toml(&programmed)))
        .json("pump_public_key", Value::String(pump_public.clone()))
        .json("programmer_key", Value::String(programmer_key.clone()))
        .json("ptm_key", Value::String(ptm_key.clone()));
    let zone_name = zone.iana_name().unwrap_or("UTC");
    report
        .line("Implanted", text::date_time(at.to_timestamp(), &zone))
        .line("Pump clock", format!("{} (local time in {zone_name})", text::civil_date_time(clock)))
        .line("Filled", format!("{fill} of {concentration}"))
        .line("Programmed", prescription_words(&programmed))
        .line("Pump public key", pump_public)
        .line("Programmer key", format!("{programmer_key} (for the clinician programmer)"))
        .line("PTM key", format!("{ptm_key} (for the patient's therapy manager)"));
    Ok(report.render(args.json))
}

fn responder_config(dir: &Path) -> Result<ResponderConfig, CliError> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(|e| io_error(&path, e))
    };
    let pump_key: PumpKeyFile =
        toml::from_str(&read("pump.key")?).map_err(|e| CliError(format!("pump.key: {}", e.message())))?;
    let keys = KeyPair::from_private_hex(&pump_key.private_key).map_err(|e| CliError(format!("pump.key: {e}")))?;
    let trusted_file: TrustedFile =
        toml::from_str(&read("trusted.toml")?).map_err(|e| CliError(format!("trusted.toml: {}", e.message())))?;
    let mut trusted = TrustedPeers::new();
    for peer in trusted_file.peer {
        let role = match peer.role.as_str() {
            "clinician" => Role::Clinician,
            "patient" => Role::Patient,
            other => return Err(CliError(format!("trusted.toml: '{other}' is not a role (clinician or patient)"))),
        };
        let key: PublicKey = peer.public_key.parse().map_err(|e| CliError(format!("trusted.toml: {e}")))?;
        trusted.add(key, role).map_err(|e| CliError(format!("trusted.toml: {e}")))?;
    }
    Ok(ResponderConfig::new(keys, trusted))
}

/// Maps real time to the pump's simulated time.
#[derive(Debug, Clone, Copy)]
struct SimClock {
    real_start: std::time::Instant,
    sim_start: Instant,
    speed: u64,
}

impl SimClock {
    fn now(&self) -> Instant {
        let elapsed = u64::try_from(self.real_start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.sim_start.plus(itb_dose::Duration::ms(elapsed.saturating_mul(self.speed)))
    }
}

/// Most pump events stepped through one by one in one advance of the device; past it, the rest
/// are crossed at once (and printed with the time the device reached).
const STEPS_MAX: usize = 100_000;

struct Running {
    device: Device,
    clock: SimClock,
    dir: PathBuf,
    log_printed: u64,
    /// The zone of the console's true times: the service's.
    zone: jiff::tz::TimeZone,
}

impl Running {
    /// Runs the pump to `to` event by event, printing each new log entry at the instant it was
    /// written rather than at the next tick (which at high speed can be days later).
    fn advance_to(&mut self, to: Instant) {
        for _ in 0..STEPS_MAX {
            let now = self.device.pump().now();
            match self.device.pump().next_event_at() {
                Some(next) if next > now && next <= to => {
                    self.device.advance_to(next);
                    self.print_new_log();
                }
                _ => break,
            }
        }
        self.device.advance_to(to);
        self.print_new_log();
    }

    /// Prints new log entries, as the device's console: the true time in the service's zone,
    /// the pump's own clock, and the entry in words.
    fn print_new_log(&mut self) {
        let entries = self.device.pump().log().read_from(self.log_printed + 1, 256);
        let now = text::date_time(self.device.pump().now().to_timestamp(), &self.zone);
        for entry in entries {
            self.log_printed = entry.seq;
            println!("{now} [pump clock {}] {}", itb_sim::words::pump_time(entry.at), entry.event.describe());
        }
        let _ = std::io::stdout().flush();
    }
}

/// `itb pump run`.
pub fn run(args: &RunArgs) -> Result<String, CliError> {
    if args.speed == 0 || args.speed > SPEED_MAX {
        return Err(CliError::flag("--speed", format!("{} is not a speed; give 1 to {SPEED_MAX}", args.speed)));
    }
    let config = responder_config(&args.state)?;
    let mut pump = load(&args.state)?;
    // Restart where the pump was: its own time continues from the snapshot.
    if let Some(text) = &args.advance {
        let span: itb_dose::Duration = text.parse().map_err(|e| CliError::flag("--advance", e))?;
        pump.advance_to(pump.now().plus(span));
        save(&args.state, &pump)?;
    }
    let sim_start = pump.now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|e| CliError::flag("--listen", format!("cannot listen on {}: {e}", args.listen)))?;
        let address = listener.local_addr().map_err(|e| CliError(e.to_string()))?;
        let log_printed = pump.log().next_seq().saturating_sub(1);
        let state = Arc::new(Mutex::new(Running {
            device: Device::new(pump),
            clock: SimClock { real_start: std::time::Instant::now(), sim_start, speed: args.speed },
            dir: args.state.clone(),
            log_printed,
            zone: text::service_zone(),
        }));
        println!("itb pump listening on {address} (speed {}x)", args.speed);
        let _ = std::io::stdout().flush();
        let ticker_state = Arc::clone(&state);
        tokio::spawn(async move {
            let mut ticks: u64 = 0;
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                ticks += 1;
                let Ok(mut running) = ticker_state.lock() else { return };
                let now = running.clock.now();
                running.advance_to(now);
                if ticks.is_multiple_of(60)
                    && let Err(error) = save(&running.dir, running.device.pump())
                {
                    eprintln!("itb: cannot save the pump's state: {}", error.0);
                    std::process::exit(1);
                }
            }
        });
        let handler_state = Arc::clone(&state);
        itb_link::transport::tcp::serve(listener, config, SERVER_LIMITS, move |role, payload| {
            let Ok(mut running) = handler_state.lock() else {
                std::process::exit(1);
            };
            let now = running.clock.now();
            // What happened since the last tick is printed when it happened, before the request.
            running.advance_to(now);
            let outcome = running.device.handle(role, now, &payload);
            if outcome.changed
                && let Err(error) = save(&running.dir, running.device.pump())
            {
                // Fail-stop: the last saved state is what a restart runs; the caller gets no answer.
                eprintln!("itb: cannot save the pump's state, stopping: {}", error.0);
                std::process::exit(1);
            }
            running.print_new_log();
            outcome.response
        })
        .await
        .map_err(|e| CliError(format!("the listener failed: {e}")))?;
        Ok(String::new())
    })
}
