//! The clinician programmer (`itb program`) and the patient's therapy manager (`itb ptm`).
//!
//! Every change is staged on the pump, shown old beside new with every warning and its reason,
//! confirmed by the person (or `--yes`), then committed by the hash of what was shown. If the
//! session breaks before the commit, the pump keeps its old therapy.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use itb_dose::{Concentration, Duration, Mass, Volume, VolumeRate};
use itb_link::message::{self, Request, RequestBody, Response, ResponseBody, Side, Staged, StatusInfo};
use itb_link::transport::tcp::{Connection, TransportError, connect};
use itb_link::{InitiatorConfig, KeyPair, PublicKey};

use crate::CliError;
use crate::device::DeviceKeyFile;

/// Exit code when a refill stops on a volume gap.
pub const EXIT_GAP: u8 = 3;
/// Exit code when the person did not confirm.
pub const EXIT_NOT_CONFIRMED: u8 = 4;

#[derive(Debug, Args)]
pub struct ProgramArgs {
    /// The pump's address.
    #[arg(long, value_name = "ADDR")]
    pump: String,
    /// The programmer's key file (from `itb pump provision`).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Print JSON for machines (status, log).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: ProgramCommand,
}

#[derive(Debug, Subcommand)]
pub enum ProgramCommand {
    /// Read the pump's full status.
    Interrogate,
    /// Read the pump's event log.
    Log {
        /// From this sequence number.
        #[arg(long, default_value = "1")]
        from: u64,
        /// At most this many entries.
        #[arg(long, default_value = "50")]
        max: u16,
    },
    /// Program a new therapy from a prescription file (TOML).
    Prescribe {
        /// The prescription.
        file: PathBuf,
        /// Origin of the spasticity: checks the change against the titration guideline.
        #[arg(long, value_enum)]
        origin: Option<OriginArg>,
        /// The patient's age in whole years (under 18: the children's band).
        #[arg(long, value_name = "YEARS")]
        age: Option<u32>,
        /// Program although the titration check says the step exceeds the guideline or comes
        /// within 24 hours of the last increase; give the reason for the record.
        #[arg(long, value_name = "REASON")]
        accept_titration: Option<String>,
        /// Commit without asking (after reviewing the summary some other way).
        #[arg(long)]
        yes: bool,
    },
    /// Refill: withdraw the old drug, compare it with what the pump expected, fill, program.
    Refill {
        /// Volume injected, mL.
        #[arg(long, value_name = "ML")]
        fill_ml: String,
        /// Its concentration, micrograms/mL.
        #[arg(long, value_name = "MICROGRAMS_PER_ML")]
        concentration: String,
        /// On a concentration change, do not run a bridge bolus (not recommended).
        #[arg(long)]
        no_bridge: bool,
        /// Go on although the withdrawn volume differs from the expected by more than the
        /// pump's warning level; give the reason for the record.
        #[arg(long, value_name = "REASON")]
        accept_gap: Option<String>,
        /// Commit without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Set the pump's clock to local time.
    SetClock {
        /// The reading (YYYY-MM-DDTHH:MM); default: now in --tz.
        #[arg(long, value_name = "LOCAL")]
        to: Option<String>,
        /// Time zone for the default reading.
        #[arg(long, default_value = "Europe/London")]
        tz: String,
    },
    /// Set the low-reservoir alarm threshold, mL.
    SetAlarmThreshold {
        /// mL.
        ml: String,
    },
    /// Clear (silence) an alarm, e.g. motor_stall.
    ClearAlarm {
        /// The alarm.
        alarm: String,
    },
    /// Stop delivery (never before an MRI scan).
    Stop {
        /// Stop without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Resume the programmed therapy.
    Resume,
    /// After an MRI scan: confirm the motor runs.
    MriCheck,
    /// A clinician's single bolus.
    Bolus {
        /// Dose, micrograms.
        #[arg(long, value_name = "MICROGRAMS")]
        dose: String,
        /// Duration, minutes.
        #[arg(long, value_name = "MINUTES")]
        minutes: u64,
    },
    /// A priming bolus after implant or catheter revision.
    Prime {
        /// Only the catheter is empty (after a revision).
        #[arg(long)]
        catheter_only: bool,
    },
}

/// Origin of the spasticity.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum OriginArg {
    /// Spinal cord injury, multiple sclerosis.
    Spinal,
    /// Cerebral palsy, brain injury.
    Cerebral,
}

#[derive(Debug, Args)]
pub struct PtmArgs {
    /// The pump's address.
    #[arg(long, value_name = "ADDR")]
    pump: String,
    /// The PTM's key file.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    #[command(subcommand)]
    command: PtmCommand,
}

#[derive(Debug, Subcommand)]
pub enum PtmCommand {
    /// Ask the pump for a bolus.
    Bolus,
    /// Boluses taken, when the next is allowed, alarms.
    Status,
}

/// The result of a programmer command: text and the exit code.
pub struct Outcome {
    /// What to print.
    pub text: String,
    /// Zero when all went as asked.
    pub code: u8,
}

fn ok(text: String) -> Outcome {
    Outcome { text, code: 0 }
}

fn read_key(path: &PathBuf, role: &str) -> Result<InitiatorConfig, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::flag("--key", format!("cannot read {}: {e}", path.display())))?;
    let file: DeviceKeyFile =
        toml::from_str(&text).map_err(|e| CliError::flag("--key", format!("{}: {}", path.display(), e.message())))?;
    if file.role != role {
        return Err(CliError::flag(
            "--key",
            format!("{} is a {} key; this command needs a {role} key", path.display(), file.role),
        ));
    }
    let keys = KeyPair::from_private_hex(&file.private_key).map_err(|e| CliError::flag("--key", e))?;
    let pump: PublicKey = file.pump_public_key.parse().map_err(|e| CliError::flag("--key", e))?;
    Ok(InitiatorConfig::new(keys, pump))
}

/// A request id unique to this intended action: time and process.
fn fresh_id() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 40)
}

fn link_error(error: TransportError) -> CliError {
    CliError(format!(
        "the pump did not answer ({error}); nothing was changed unless a later interrogation shows it: interrogate again"
    ))
}

struct Client {
    connection: Connection,
}

impl Client {
    async fn ask(&mut self, id: u64, body: RequestBody) -> Result<ResponseBody, CliError> {
        let answer = self.connection.request(&message::encode(&Request { id, body })).await.map_err(link_error)?;
        let response: Response = message::decode(&answer).map_err(|e| CliError(format!("the pump's answer: {e}")))?;
        Ok(response.body)
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| CliError(e.to_string()))
}

fn refused_text(code: &str, message: &str, retry_at_ms: Option<i64>) -> String {
    let mut text = format!("REFUSED ({code}): {message}");
    if let Some(at) = retry_at_ms {
        text.push_str(&format!(" Next allowed at {}.", instant_text(at)));
    }
    text
}

fn instant_text(ms: i64) -> String {
    let zone = jiff::tz::TimeZone::get("Europe/London").unwrap_or(jiff::tz::TimeZone::UTC);
    jiff::Timestamp::from_millisecond(ms)
        .map_or_else(|_| ms.to_string(), |t| zone.to_datetime(t).strftime("%a %-d %b %Y %H:%M").to_string())
}

fn ml(nl: u64) -> String {
    Volume::nl(nl).to_string()
}

fn micrograms(ng: u64) -> String {
    Mass::ng(ng).to_string()
}

fn status_text(s: &StatusInfo) -> String {
    let mut out = String::from("Pump status\n");
    let line = |out: &mut String, label: &str, value: String| out.push_str(&format!("  {label:<26} {value}\n"));
    line(&mut out, "Pump clock", itb_pump::PumpTime::from_ms(s.pump_time_ms).to_string());
    line(&mut out, "State", s.state.clone());
    line(
        &mut out,
        "Therapy",
        s.prescription_toml
            .as_deref()
            .and_then(|t| itb_dose::toml::from_toml(t).ok())
            .map_or("none".into(), |p| p.to_string()),
    );
    line(&mut out, "Largest day with PTM", micrograms(s.worst_case_daily_dose_ng));
    line(&mut out, "Rate now", VolumeRate::nl_per_day(s.rate_nl_per_day).to_string());
    line(
        &mut out,
        "Reservoir (estimate)",
        format!(
            "{} of {} ({} reservoir)",
            ml(s.reservoir_nl),
            Concentration::ng_per_ml(s.concentration_ng_per_ml),
            ml(s.capacity_nl)
        ),
    );
    line(
        &mut out,
        "Low-reservoir alarm",
        format!(
            "at {} ({})",
            ml(s.alarm_threshold_nl),
            s.low_reservoir_alarm_at_ms.map_or("not expected".into(), instant_text)
        ),
    );
    line(
        &mut out,
        "Battery",
        format!(
            "about {} days left{}",
            s.battery_remaining_ms / 86_400_000,
            if s.elective_replacement { ", ELECTIVE REPLACEMENT INDICATOR" } else { "" }
        ),
    );
    line(&mut out, "Replace the pump by", instant_text(s.replace_by_ms));
    line(&mut out, "Motor", if s.motor_stalled { "STALLED".into() } else { "running".into() });
    line(
        &mut out,
        "PTM boluses, last 24 h",
        format!(
            "{}{}",
            s.ptm_boluses_last_24h,
            s.ptm_next_allowed_at_ms.map_or(String::new(), |at| format!(", next allowed {}", instant_text(at)))
        ),
    );
    if s.alarms.is_empty() {
        line(&mut out, "Alarms", "none".into());
    }
    for alarm in &s.alarms {
        let severity = if alarm.critical { "CRITICAL" } else { "non-critical" };
        line(
            &mut out,
            "Alarm",
            format!("{} ({severity}) since {}: {}", alarm.alarm, instant_text(alarm.raised_at_ms), alarm.meaning),
        );
    }
    out
}

fn side_rows(old: &Side, new: &Side) -> Vec<(&'static str, String, String)> {
    let alarm = |s: &Side| s.low_reservoir_alarm_at_ms.map_or("not expected".to_owned(), instant_text);
    vec![
        ("Therapy", old.therapy.clone(), new.therapy.clone()),
        ("Largest daily dose", micrograms(old.max_day_ng), micrograms(new.max_day_ng)),
        ("With every PTM bolus", micrograms(old.worst_case_day_ng), micrograms(new.worst_case_day_ng)),
        ("Reservoir", ml(old.reservoir_nl), ml(new.reservoir_nl)),
        (
            "Concentration",
            Concentration::ng_per_ml(old.concentration_ng_per_ml).to_string(),
            Concentration::ng_per_ml(new.concentration_ng_per_ml).to_string(),
        ),
        ("Daily volume", ml(old.daily_volume_nl), ml(new.daily_volume_nl)),
        ("Low-reservoir alarm", alarm(old), alarm(new)),
    ]
}

/// Old beside new, the warnings, and the hash.
pub fn staged_text(staged: &Staged) -> String {
    let rows = side_rows(&staged.old, &staged.new);
    let width = rows.iter().map(|(_, old, _)| old.chars().count()).max().unwrap_or(0).max(12);
    let mut out =
        format!("Review the {} change: every line must be checked before the pump is updated\n\n", staged.change);
    out.push_str(&format!("  {:<22} {:<width$}   {}\n", "", "NOW", "AFTER"));
    for (label, old, new) in rows {
        let mark = if old == new { " " } else { "*" };
        out.push_str(&format!("{mark} {label:<22} {old:<width$}   {new}\n"));
    }
    if staged.warnings.is_empty() {
        out.push_str("\nNo warnings.\n");
    } else {
        out.push_str("\nWarnings:\n");
        for warning in &staged.warnings {
            out.push_str(&format!("  ! {warning}\n"));
        }
    }
    let hash: String = staged.hash.iter().map(|b| format!("{b:02x}")).collect();
    out.push_str(&format!("\nSummary hash {hash}; expires {}\n", instant_text(staged.expires_at_ms)));
    out
}

fn confirm(prompt: &str, yes: bool) -> bool {
    if yes {
        return true;
    }
    print!("{prompt} Type yes to confirm: ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).is_ok() && line.trim().eq_ignore_ascii_case("yes")
}

/// What the titration guideline says of a staged therapy change, when the origin is known.
struct Titration {
    origin: itb_dose::calc::titrate::Origin,
    age: Option<u32>,
    accepted: Option<String>,
}

/// The pump-clock time of the last increase of the largest daily dose, from the pump's log.
async fn last_increase(client: &mut Client) -> Result<Option<i64>, CliError> {
    let next = match client.ask(fresh_id(), RequestBody::Interrogate).await? {
        ResponseBody::Status(status) => status.log_next_seq,
        _ => return Ok(None),
    };
    let from = next.saturating_sub(u64::from(message::LOG_READ_MAX)).max(1);
    let entries =
        match client.ask(fresh_id(), RequestBody::ReadLog { from_seq: from, max: message::LOG_READ_MAX }).await? {
            ResponseBody::Log { entries, .. } => entries,
            _ => return Ok(None),
        };
    let mut previous: Option<u64> = None;
    let mut last = None;
    for entry in entries.iter().filter(|e| e.kind == "therapy_programmed") {
        // The detail reads "therapy N programmed: up to X micrograms a day".
        let dose = entry
            .detail
            .split("up to ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| Mass::parse_implied(n).ok());
        if let (Some(dose), Some(before)) = (dose, previous)
            && dose.as_ng() > before
        {
            last = Some(entry.pump_time_ms);
        }
        previous = dose.map(Mass::as_ng).or(previous);
    }
    Ok(last)
}

/// Checks the staged change against the guideline; `Err` text stops the programming.
fn titration_text(
    staged: &Staged,
    titration: &Titration,
    pump_now_ms: i64,
    last_increase_ms: Option<i64>,
) -> Result<String, String> {
    use itb_dose::calc::titrate::{TitrationInputs, Verdict, check, percent_text};
    let stamp = |ms: i64| jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let inputs = TitrationInputs {
        current: itb_dose::DoseRate::ng_per_day(staged.old.max_day_ng),
        proposed: itb_dose::DoseRate::ng_per_day(staged.new.max_day_ng),
        origin: titration.origin,
        age_years: titration.age,
        last_increase_at: last_increase_ms.map(stamp),
        at: stamp(pump_now_ms),
    };
    let result = match check(&inputs) {
        Ok(result) => result,
        Err(error) => return Ok(format!("\nTitration check not possible: {error}\n")),
    };
    let (low, high) = result.band_percent;
    let mut text = format!(
        "\nTitration check ({} origin): {}% against the {low}-{high}% step: {}\n",
        titration.origin,
        percent_text(result.change_micro_percent),
        result.verdict.as_str().replace('_', " ").to_uppercase()
    );
    for reason in &result.reasons {
        text.push_str(&format!("  - {reason}\n"));
    }
    if matches!(result.verdict, Verdict::ExceedsGuideline | Verdict::TooSoon) {
        match &titration.accepted {
            Some(reason) => text.push_str(&format!("  Accepted outside the guideline by the clinician: {reason}\n")),
            None => {
                text.push_str("  Not programmed: re-run with --accept-titration \"reason\" if this is intended.\n");
                return Err(text);
            }
        }
    }
    Ok(text)
}

async fn stage_and_commit(
    client: &mut Client,
    stage: RequestBody,
    yes: bool,
    out: String,
) -> Result<Outcome, CliError> {
    stage_check_commit(client, stage, yes, out, None).await
}

async fn stage_check_commit(
    client: &mut Client,
    stage: RequestBody,
    yes: bool,
    mut out: String,
    titration: Option<Titration>,
) -> Result<Outcome, CliError> {
    let last = match &titration {
        Some(_) => last_increase(client).await?,
        None => None,
    };
    let staged = match client.ask(fresh_id(), stage).await? {
        ResponseBody::Staged(staged) => staged,
        ResponseBody::Refused { code, message, retry_at_ms } => {
            out.push_str(&refused_text(&code, &message, retry_at_ms));
            out.push_str("\nNothing was changed: the pump keeps its current therapy.\n");
            return Ok(Outcome { text: out, code: 1 });
        }
        other => return Err(CliError(format!("unexpected answer: {other:?}"))),
    };
    out.push_str(&staged_text(&staged));
    if let Some(titration) = &titration {
        let pump_now = match client.ask(fresh_id(), RequestBody::Interrogate).await? {
            ResponseBody::Status(status) => status.pump_time_ms,
            _ => 0,
        };
        match titration_text(&staged, titration, pump_now, last) {
            Ok(text) => out.push_str(&text),
            Err(text) => {
                out.push_str(&text);
                let _ = client.ask(fresh_id(), RequestBody::Discard).await;
                return Ok(Outcome { text: out, code: EXIT_NOT_CONFIRMED });
            }
        }
    }
    print!("{out}");
    let _ = std::io::stdout().flush();
    out.clear();
    if !confirm("\nProgram the pump with the settings AFTER?", yes) {
        let _ = client.ask(fresh_id(), RequestBody::Discard).await;
        return Ok(Outcome {
            text: "Not committed: the pump keeps its current therapy.\n".into(),
            code: EXIT_NOT_CONFIRMED,
        });
    }
    let commit_id = fresh_id();
    let mut retried = false;
    let answer = match client.ask(commit_id, RequestBody::Commit { hash: staged.hash.clone() }).await {
        Ok(answer) => answer,
        // A dropped link: retry the same commit once; the pump answers a retry with its first answer.
        Err(_) => {
            retried = true;
            client.ask(commit_id, RequestBody::Commit { hash: staged.hash }).await?
        }
    };
    let after_refusal = if retried {
        "The link dropped during the commit: interrogate the pump to see which therapy runs."
    } else {
        "The pump keeps its current therapy."
    };
    Ok(match answer {
        ResponseBody::Done { message } => ok(format!("Committed: {message}.\n")),
        ResponseBody::Refused { code, message, retry_at_ms } => {
            Outcome { text: format!("{}\n{after_refusal}\n", refused_text(&code, &message, retry_at_ms)), code: 1 }
        }
        other => ok(format!("{other:?}\n")),
    })
}

fn simple(answer: ResponseBody) -> Outcome {
    match answer {
        ResponseBody::Done { message } => ok(format!("{message}\n")),
        ResponseBody::BolusStarted { dose_ng, ends_at_ms } => {
            ok(format!("Bolus of {} started; it ends {}.\n", micrograms(dose_ng), instant_text(ends_at_ms)))
        }
        ResponseBody::Refused { code, message, retry_at_ms } => {
            Outcome { text: format!("{}\n", refused_text(&code, &message, retry_at_ms)), code: 1 }
        }
        ResponseBody::MriCheck { motor_stalled, stalls_detected, recoveries, state, advice } => ok(format!(
            "Post-MRI check\n  Motor            {}\n  State            {state}\n  Stalls detected  {stalls_detected}, recoveries {recoveries}\n  {advice}\n",
            if motor_stalled { "STALLED" } else { "running" }
        )),
        other => ok(format!("{other:?}\n")),
    }
}

/// `itb program`.
pub fn program(args: ProgramArgs) -> Result<Outcome, CliError> {
    let config = read_key(&args.key, "clinician")?;
    runtime()?.block_on(async move {
        let connection = connect(args.pump.as_str(), config).await.map_err(link_error)?;
        let mut client = Client { connection };
        let outcome = match args.command {
            ProgramCommand::Interrogate => match client.ask(fresh_id(), RequestBody::Interrogate).await? {
                ResponseBody::Status(status) if args.json => ok(status_json(&status)),
                ResponseBody::Status(status) => ok(status_text(&status)),
                other => simple(other),
            },
            ProgramCommand::Log { from, max } => {
                match client.ask(fresh_id(), RequestBody::ReadLog { from_seq: from, max }).await? {
                    ResponseBody::Log { entries, next_seq } => {
                        let mut text = String::new();
                        for entry in entries {
                            text.push_str(&format!(
                                "{:>6}  {}  {:<22} {}\n",
                                entry.seq,
                                itb_pump::PumpTime::from_ms(entry.pump_time_ms),
                                entry.kind,
                                entry.detail
                            ));
                        }
                        text.push_str(&format!("(next sequence number {next_seq})\n"));
                        ok(text)
                    }
                    other => simple(other),
                }
            }
            ProgramCommand::Prescribe { file, origin, age, accept_titration, yes } => {
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| CliError(format!("cannot read {}: {e}", file.display())))?;
                let prescription =
                    itb_dose::toml::from_toml(&text).map_err(|e| CliError(format!("{}: {e}", file.display())))?;
                let body = RequestBody::StageTherapy { prescription_toml: itb_dose::toml::to_toml(&prescription) };
                let titration = origin.map(|origin| Titration {
                    origin: match origin {
                        OriginArg::Spinal => itb_dose::calc::titrate::Origin::Spinal,
                        OriginArg::Cerebral => itb_dose::calc::titrate::Origin::Cerebral,
                    },
                    age,
                    accepted: accept_titration,
                });
                stage_check_commit(&mut client, body, yes, String::new(), titration).await?
            }
            ProgramCommand::Refill { fill_ml, concentration, no_bridge, accept_gap, yes } => {
                let fill = Volume::parse_implied(&fill_ml).map_err(|e| CliError::flag("--fill-ml", e))?;
                let concentration =
                    Concentration::parse_implied(&concentration).map_err(|e| CliError::flag("--concentration", e))?;
                refill(&mut client, fill, concentration, !no_bridge, accept_gap, yes).await?
            }
            ProgramCommand::SetClock { to, tz } => {
                let zone = jiff::tz::TimeZone::get(&tz)
                    .map_err(|_| CliError::flag("--tz", format!("'{tz}' is not a known time zone")))?;
                let reading = match to {
                    Some(text) => text
                        .parse::<jiff::civil::DateTime>()
                        .map_err(|_| CliError::flag("--to", format!("'{text}' is not YYYY-MM-DDTHH:MM")))?,
                    None => zone.to_datetime(jiff::Timestamp::now()),
                };
                let pump_time_ms = itb_pump::PumpTime::from_civil(reading).as_ms();
                simple(client.ask(fresh_id(), RequestBody::SetClock { pump_time_ms }).await?)
            }
            ProgramCommand::SetAlarmThreshold { ml } => {
                let threshold = Volume::parse_implied(&ml).map_err(|e| CliError(format!("threshold: {e}")))?;
                simple(
                    client.ask(fresh_id(), RequestBody::SetAlarmThreshold { threshold_nl: threshold.as_nl() }).await?,
                )
            }
            ProgramCommand::ClearAlarm { alarm } => {
                simple(client.ask(fresh_id(), RequestBody::ClearAlarm { alarm }).await?)
            }
            ProgramCommand::Stop { yes } => {
                if confirm("Stopping delivers NO drug: withdrawal can follow. Never stop before an MRI scan.", yes) {
                    simple(client.ask(fresh_id(), RequestBody::Stop).await?)
                } else {
                    Outcome { text: "Not stopped.\n".into(), code: EXIT_NOT_CONFIRMED }
                }
            }
            ProgramCommand::Resume => simple(client.ask(fresh_id(), RequestBody::Resume).await?),
            ProgramCommand::MriCheck => simple(client.ask(fresh_id(), RequestBody::PostMriCheck).await?),
            ProgramCommand::Bolus { dose, minutes } => {
                let dose = Mass::parse_implied(&dose).map_err(|e| CliError::flag("--dose", e))?;
                let body = RequestBody::SingleBolus {
                    dose_ng: dose.as_ng(),
                    duration_ms: Duration::minutes(minutes).as_ms(),
                    then_stop: false,
                };
                simple(client.ask(fresh_id(), body).await?)
            }
            ProgramCommand::Prime { catheter_only } => {
                simple(client.ask(fresh_id(), RequestBody::PrimingBolus { catheter_only }).await?)
            }
        };
        client.connection.close().await;
        Ok(outcome)
    })
}

fn status_json(status: &StatusInfo) -> String {
    let value = serde_json::json!({
        "pump_time": itb_pump::PumpTime::from_ms(status.pump_time_ms).to_string(),
        "state": status.state,
        "program_number": status.program_number,
        "prescription_toml": status.prescription_toml,
        "reservoir_ml": status.reservoir_nl as f64 / 1e6,
        "concentration_micrograms_per_ml": status.concentration_ng_per_ml as f64 / 1e3,
        "rate_ml_per_day": status.rate_nl_per_day as f64 / 1e6,
        "worst_case_daily_dose_micrograms": status.worst_case_daily_dose_ng as f64 / 1e3,
        "low_reservoir_alarm_at": status.low_reservoir_alarm_at_ms.and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok()).map(|t| t.to_string()),
        "alarms": status.alarms.iter().map(|a| a.alarm.clone()).collect::<Vec<_>>(),
        "motor_stalled": status.motor_stalled,
        "battery_remaining_days": status.battery_remaining_ms / 86_400_000,
        "replace_by": jiff::Timestamp::from_millisecond(status.replace_by_ms).ok().map(|t| t.to_string()),
        "elective_replacement": status.elective_replacement,
        "ptm_boluses_last_24h": status.ptm_boluses_last_24h,
        "log_next_seq": status.log_next_seq,
    });
    format!("{}\n", serde_json::to_string_pretty(&value).unwrap_or_default())
}

async fn refill(
    client: &mut Client,
    fill: Volume,
    concentration: Concentration,
    bridge: bool,
    accept_gap: Option<String>,
    yes: bool,
) -> Result<Outcome, CliError> {
    let body = RequestBody::StageRefill {
        fill_nl: fill.as_nl(),
        concentration_ng_per_ml: concentration.as_ng_per_ml(),
        bridge,
    };
    // Check the refill against the pump's limits before anything is withdrawn.
    match client.ask(fresh_id(), body.clone()).await? {
        ResponseBody::Refused { code, .. } if code == "not_withdrawn" => {}
        ResponseBody::Refused { code, message, retry_at_ms } => {
            let text = format!(
                "{}\nNothing was withdrawn or changed: correct the refill and try again.\n",
                refused_text(&code, &message, retry_at_ms)
            );
            return Ok(Outcome { text, code: 1 });
        }
        // A staged change left from before: discard it; this refill stages its own after the withdrawal.
        _ => {
            let _ = client.ask(fresh_id(), RequestBody::Discard).await;
        }
    }
    let (withdrawn, expected, warning_above) = match client.ask(fresh_id(), RequestBody::WithdrawReservoir).await? {
        ResponseBody::Withdrawn { withdrawn_nl, expected_nl, warning_above_nl } => {
            (withdrawn_nl, expected_nl, warning_above_nl)
        }
        other => return Ok(simple(other)),
    };
    let gap = expected.abs_diff(withdrawn);
    let mut out = format!("Withdrawn {} (the pump expected {}; gap {}).\n", ml(withdrawn), ml(expected), ml(gap));
    if gap > warning_above {
        let direction = if withdrawn < expected { "LESS" } else { "MORE" };
        out.push_str(&format!(
            "\nSTOP: {} {direction} than expected, above the {} the pump's size allows. Suspect {}. Do not refill until this is explained; check the patient for {}.\n",
            ml(gap),
            ml(warning_above),
            if withdrawn < expected { "over-infusion, a leak at the pump, or a previous pocket fill" } else { "an occluded catheter or a stalled motor (under-delivery)" },
            if withdrawn < expected { "overdose (drowsiness, weakness, slow breathing)" } else { "withdrawal (returning spasms, itching, fever)" },
        ));
        match accept_gap {
            None => {
                out.push_str(
                    "The old drug is out of the reservoir: until the pump is refilled the patient receives NO drug (risk of withdrawal).\n",
                );
                out.push_str("Re-run with --accept-gap \"reason\" once the gap is explained.\n");
                return Ok(Outcome { text: out, code: EXIT_GAP });
            }
            Some(reason) => out.push_str(&format!("Gap accepted by the clinician: {reason}\n")),
        }
    }
    let body = RequestBody::StageRefill {
        fill_nl: fill.as_nl(),
        concentration_ng_per_ml: concentration.as_ng_per_ml(),
        bridge,
    };
    stage_and_commit(client, body, yes, out).await
}

/// `itb ptm`.
pub fn ptm(args: PtmArgs) -> Result<Outcome, CliError> {
    let config = read_key(&args.key, "patient")?;
    runtime()?.block_on(async move {
        let body = match args.command {
            PtmCommand::Bolus => RequestBody::PtmBolus,
            PtmCommand::Status => RequestBody::PtmStatus,
        };
        // One id for this press: if the link drops, the retry cannot deliver twice.
        let id = fresh_id();
        let mut last_error = None;
        for _attempt in 0..3 {
            let connection = match connect(args.pump.as_str(), config.clone()).await {
                Ok(connection) => connection,
                Err(error) => {
                    last_error = Some(error);
                    continue;
                }
            };
            let mut client = Client { connection };
            match client.ask(id, body.clone()).await {
                Ok(answer) => {
                    client.connection.close().await;
                    return Ok(ptm_text(answer));
                }
                Err(error) => last_error = Some(TransportError::Io(std::io::Error::other(error.0))),
            }
        }
        Err(last_error.map_or_else(|| CliError("the pump did not answer".into()), link_error))
    })
}

fn ptm_text(answer: ResponseBody) -> Outcome {
    match answer {
        ResponseBody::BolusStarted { dose_ng, ends_at_ms } => {
            ok(format!("Bolus of {} started; it ends {}.\n", micrograms(dose_ng), instant_text(ends_at_ms)))
        }
        ResponseBody::PtmStatus { boluses_last_24h, allowed_per_24h, next_allowed_at_ms, alarms } => {
            let next = next_allowed_at_ms.map_or("now".to_owned(), instant_text);
            let mut text = format!(
                "Boluses in the last 24 hours: {boluses_last_24h} of {allowed_per_24h}\nNext bolus allowed: {next}\n"
            );
            if !alarms.is_empty() {
                text.push_str(&format!("The pump is alarming ({}): contact the ITB team.\n", alarms.join(", ")));
            }
            ok(text)
        }
        ResponseBody::Refused { code, message, retry_at_ms } => {
            let mut text = format!("No bolus: {message}.");
            if let Some(at) = retry_at_ms {
                text.push_str(&format!(" The next bolus is allowed {}.", instant_text(at)));
            }
            text.push_str(&format!(" ({code})\n"));
            Outcome { text, code: 1 }
        }
        other => ok(format!("{other:?}\n")),
    }
}
