//! The clinician programmer (`itb program`) and the patient's therapy manager (`itb ptm`): thin
//! renderers over `itb-programmer`. Every change is staged on the pump, reviewed old beside new
//! with every warning, confirmed, and committed by the hash the pump gave; a change with a
//! dangerous warning needs `--override "reason"` (kept in the pump's log), never just `--yes`.

mod render;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use itb_dose::calc::titrate::Origin;
use itb_dose::review::{OverrideReason, Patient, RefillPolicy, Severity, WarningCode};
use itb_dose::{Concentration, Duration, Mass, Stability, Volume};
use itb_link::{InitiatorConfig, KeyPair, PublicKey};
use itb_programmer::ptm::Ptm;
use itb_programmer::{Action, Confirmation, Done, PendingChange, Programmer, ProgrammerError, TcpLink, Withdrawal};
use serde_json::{Value, json};

use crate::CliError;
use crate::device::DeviceKeyFile;
use render::People;

/// Exit code when the pump refused, could not be reached, or the input could not be used.
pub const EXIT_FAILED: u8 = 1;
/// Exit code when a refill stops on a volume gap.
pub const EXIT_GAP: u8 = 3;
/// Exit code when the person did not confirm, or a dangerous warning had no written reason.
pub const EXIT_NOT_CONFIRMED: u8 = 4;
/// Exit code when the link dropped during a commit and the outcome is not known.
pub const EXIT_UNCERTAIN: u8 = 5;
/// Exit code when the old drug was withdrawn and the refill was not completed.
pub const EXIT_WITHDRAWN: u8 = 6;

/// What `itb program` and `itb ptm` exit with, for `--help` and the README.
pub const EXIT_CODES: &str = "Exit codes:
  0  done as asked
  1  refused by the pump, the pump could not be reached, or bad input (nothing was changed)
  2  the command line is wrong (a flag or value; see the message)
  3  refill stopped: the volume withdrawn differs from the expected by more than the pump allows
  4  not confirmed, or a dangerous warning needs a written reason: --override \"reason\" (--reason for stop, resume, bolus, prime and settings); nothing was changed
  5  the link dropped during a commit: interrogate the pump to see which settings run
  6  the old drug was withdrawn but the refill was not completed: the reservoir is EMPTY; refill before the patient leaves";

/// How a programmer or PTM reaches its pump, and how it shows what it reads.
#[derive(Debug, Args)]
pub struct LinkArgs {
    /// The pump's address (host:port).
    #[arg(long, value_name = "ADDR")]
    pump: String,
    /// This programmer's or PTM's key file (from `itb pump provision`: programmer.key, ptm.key).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Print JSON for machines (RFC 3339 UTC instants, exact figures).
    #[arg(long, global = true)]
    json: bool,
    /// Time zone for the dates shown (and for `set-clock`'s default reading).
    #[arg(long, global = true, default_value = "Europe/London", value_name = "ZONE")]
    tz: String,
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct ProgramArgs {
    #[command(flatten)]
    link: LinkArgs,
    /// Days before the low-reservoir alarm (or the drug's expiry) that the service refills:
    /// the refill-due date shown.
    #[arg(long, global = true, default_value = "3", value_name = "DAYS")]
    margin_days: u16,
    #[command(subcommand)]
    command: ProgramCommand,
}

#[derive(Debug, Subcommand)]
pub enum ProgramCommand {
    /// Read the pump's full status, with its low-reservoir alarm and refill-due dates.
    Interrogate,
    /// Read the pump's event log.
    Log {
        /// From this sequence number.
        #[arg(long, default_value = "1", value_name = "SEQ")]
        from: u64,
        /// At most this many entries (at most 256).
        #[arg(long, default_value = "50", value_name = "N")]
        max: u16,
    },
    /// Program a new therapy from a prescription file (TOML): staged, reviewed old beside new,
    /// confirmed, committed.
    Prescribe {
        /// The prescription.
        file: PathBuf,
        /// Origin of the spasticity: checks the change against the patient's guideline band
        /// (without it, against the largest step of any band, 30%).
        #[arg(long, value_enum)]
        origin: Option<OriginArg>,
        /// The patient's age in whole years (under 18: the children's band).
        #[arg(long, value_name = "YEARS")]
        age: Option<u32>,
        /// Go ahead despite dangerous warnings (above the guideline, within 24 hours of the last
        /// increase, a rate that looks entered per hour, a check that cannot run, stopping): the
        /// reason, in words, kept in the pump's log.
        #[arg(long = "override", alias = "accept-titration", value_name = "REASON")]
        override_reason: Option<String>,
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
        /// On a concentration change, do not run a bridge bolus (dangerous: needs --override).
        #[arg(long)]
        no_bridge: bool,
        /// Go on although the withdrawn volume differs from the expected by more than the
        /// pump's limit: the reason, in words, kept in the pump's log.
        #[arg(long, value_name = "REASON")]
        accept_gap: Option<String>,
        /// Go ahead despite other dangerous warnings: the reason, kept in the pump's log.
        #[arg(long = "override", value_name = "REASON")]
        override_reason: Option<String>,
        /// Commit without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Set the pump's clock to local time (confirmed: flex steps and periodic boluses move with
    /// it; more than 2 hours needs --reason).
    SetClock {
        /// The reading (YYYY-MM-DDTHH:MM); default: now in --tz.
        #[arg(long, value_name = "LOCAL")]
        to: Option<String>,
        /// Why, in words, kept in the pump's log.
        #[arg(long, value_name = "REASON")]
        reason: Option<String>,
        /// Set it without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Set the low-reservoir alarm threshold, mL (confirmed: the alarm and refill dates move;
    /// lowering it below 3 days' volume needs --reason).
    SetAlarmThreshold {
        /// mL.
        ml: String,
        /// Why, in words, kept in the pump's log.
        #[arg(long, value_name = "REASON")]
        reason: Option<String>,
        /// Set it without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Clear (silence) an alarm whose cause has gone.
    ClearAlarm {
        /// The alarm: low_reservoir, empty_reservoir, elective_replacement_indicator,
        /// end_of_service, motor_stall, critical_memory_error, memory_error, low_battery_reset.
        alarm: String,
    },
    /// Stop delivery (dangerous: withdrawal can follow; never before an MRI scan).
    Stop {
        /// Why, in words, kept in the pump's log.
        #[arg(long, value_name = "REASON")]
        reason: Option<String>,
        /// Stop without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Resume the programmed therapy of a stopped pump (reviewed: after a day or more off it
    /// needs --reason).
    Resume {
        /// Why, in words, kept in the pump's log (needed after a day or more off).
        #[arg(long, value_name = "REASON")]
        reason: Option<String>,
        /// Resume without asking.
        #[arg(long)]
        yes: bool,
    },
    /// After an MRI scan: confirm the motor runs.
    MriCheck,
    /// A clinician's single bolus (confirmed; above the largest screening dose or half the
    /// daily dose it needs --reason).
    Bolus {
        /// Dose, micrograms.
        #[arg(long, value_name = "MICROGRAMS")]
        dose: String,
        /// Duration, minutes.
        #[arg(long, value_name = "MINUTES")]
        minutes: u64,
        /// Why, in words, kept in the pump's log.
        #[arg(long, value_name = "REASON")]
        reason: Option<String>,
        /// Give it without asking.
        #[arg(long)]
        yes: bool,
    },
    /// A priming bolus to fill an EMPTY catheter, after implant or a catheter revision (always
    /// needs --reason: on a full catheter all of it reaches the spinal fluid).
    Prime {
        /// Only the catheter is empty (after a revision).
        #[arg(long)]
        catheter_only: bool,
        /// Why, in words, kept in the pump's log (e.g. "implant today, catheter empty").
        #[arg(long, value_name = "REASON")]
        reason: Option<String>,
        /// Give it without asking.
        #[arg(long)]
        yes: bool,
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
#[command(after_help = EXIT_CODES)]
pub struct PtmArgs {
    #[command(flatten)]
    link: LinkArgs,
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

/// A first request id no earlier session used: random, so that two programmers never share one.
fn first_id() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        nanos ^ (u64::from(std::process::id()) << 40)
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| CliError(e.to_string()))
}

fn zone(name: &str) -> Result<jiff::tz::TimeZone, CliError> {
    jiff::tz::TimeZone::get(name).map_err(|_| CliError::flag("--tz", format!("'{name}' is not a known time zone")))
}

fn reason(flag: &str, text: Option<&String>) -> Result<Option<OverrideReason>, CliError> {
    text.map(|t| OverrideReason::parse(t).map_err(|e| CliError::flag(flag, e))).transpose()
}

/// What a machine is told after a withdrawal that was not followed by a refill.
fn after_withdrawal_json(withdrawal: &Withdrawal) -> Value {
    json!({
        "reservoir_empty": true,
        "withdrawn_ml": crate::output::number(withdrawal.withdrawn.number()),
        "withdrawn_at": withdrawal.at.to_string(),
        "advice": itb_dose::review::EMPTY_RESERVOIR_ADVICE,
    })
}

/// The one reason a refill keeps in the pump's log when both flags are given.
fn combined_reason(other: &OverrideReason, gap: &OverrideReason) -> String {
    format!("{other}; gap: {gap}")
}

/// An error of a workflow, for the person: what happened and what to do, with its exit code.
fn failure(people: &People, error: &ProgrammerError, json: bool) -> Outcome {
    let code = match error {
        ProgrammerError::CommitUncertain(_) => EXIT_UNCERTAIN,
        ProgrammerError::NeedsOverride(_) => EXIT_NOT_CONFIRMED,
        _ => EXIT_FAILED,
    };
    if json {
        let value = match error {
            ProgrammerError::Refused(r) => json!({
                "outcome": "refused", "code": r.code, "message": r.message,
                "retry_at": r.retry_at.map(|t| t.to_string()),
            }),
            ProgrammerError::CommitUncertain(why) => json!({"outcome": "uncertain", "message": why}),
            other => json!({"outcome": "failed", "message": other.to_string()}),
        };
        return Outcome { text: pretty(&value), code };
    }
    let text = match error {
        ProgrammerError::Refused(r) => {
            let mut text = format!("REFUSED by the pump: {}", r.message);
            if let Some(at) = r.retry_at {
                text.push_str(&format!(" Next allowed {}.", people.at(at)));
            }
            text.push('\n');
            text
        }
        other => format!("{}\n", itb_dose::text::capitalised(&other.to_string())),
    };
    Outcome { text, code }
}

fn pretty(value: &Value) -> String {
    format!("{}\n", serde_json::to_string_pretty(value).unwrap_or_default())
}

/// Asks the person at the keyboard; `--yes` answers for them.
fn confirm(prompt: &str, yes: bool) -> bool {
    if yes {
        return true;
    }
    print!("{prompt} Type yes to confirm: ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).is_ok() && line.trim().eq_ignore_ascii_case("yes")
}

/// For a change with dangerous warnings and no reason on the command line: at a terminal, asks
/// for the reason in words; otherwise none.
fn ask_reason() -> Option<OverrideReason> {
    if !std::io::stdin().is_terminal() {
        return None;
    }
    print!("Write the reason for going ahead despite the dangers above (Enter alone stops): ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).ok()?;
    match OverrideReason::parse(&line) {
        Ok(reason) => Some(reason),
        Err(error) => {
            if !line.trim().is_empty() {
                println!("{error}");
            }
            None
        }
    }
}

/// Where a change's review, confirmation and commit leave the text and the exit code.
struct Flow<'a> {
    people: &'a People,
    json: bool,
    text: String,
    value: Value,
}

impl Flow<'_> {
    fn finish(mut self, outcome: &str, code: u8) -> Outcome {
        if self.json {
            self.value["outcome"] = Value::String(outcome.to_owned());
            return Outcome { text: pretty(&self.value), code };
        }
        Outcome { text: self.text, code }
    }
}

/// Reviews, confirms and commits a staged change. `reason` is the written reason given for its
/// dangers (or `None`); `covered` are dangers already accounted for by another flag.
async fn review_and_commit(
    programmer: &mut Programmer<TcpLink>,
    change: &PendingChange,
    reason: Option<OverrideReason>,
    covered: &[WarningCode],
    yes: bool,
    flow: &mut Flow<'_>,
) -> Result<(&'static str, u8), CliError> {
    let people = flow.people;
    flow.value["review"] = render::review_json(change);
    if !flow.json {
        print!("{}", people.review(change));
        let _ = std::io::stdout().flush();
    }
    let uncovered = change.review().dangers().filter(|w| !covered.contains(&w.code)).count();
    let reason = match reason {
        Some(reason) => Some(reason),
        None if uncovered > 0 && !flow.json && !yes => ask_reason(),
        None => None,
    };
    if uncovered > 0 && reason.is_none() {
        let _ = programmer.discard().await;
        flow.text.push_str(&format!(
            "\nNot programmed: {uncovered} dangerous warning{} above need{} a written reason. If the change is intended, re-run with --override \"reason\" (the reason is kept in the pump's log). The pump keeps its current therapy.\n",
            if uncovered == 1 { "" } else { "s" },
            if uncovered == 1 { "s" } else { "" },
        ));
        return Ok(("needs_override", EXIT_NOT_CONFIRMED));
    }
    // With --json nobody can answer a prompt: only --yes confirms.
    let prompt = if flow.json { yes } else { confirm("\nProgram the pump with the settings AFTER?", yes) };
    if !prompt {
        let _ = programmer.discard().await;
        flow.text.push_str("Not committed: the pump keeps its current therapy.\n");
        return Ok(("not_confirmed", EXIT_NOT_CONFIRMED));
    }
    let confirmation = match reason {
        Some(reason) => Confirmation::Override(reason),
        None => Confirmation::Reviewed,
    };
    match programmer.commit(change, confirmation).await {
        Ok(committed) => {
            flow.text.push_str(&people.committed(&committed));
            flow.value["committed"] = render::committed_json(&committed);
            Ok(("committed", 0))
        }
        Err(error) => {
            let failed = failure(people, &error, false);
            flow.text.push_str(&failed.text);
            if !matches!(error, ProgrammerError::CommitUncertain(_)) {
                flow.text.push_str("The pump keeps its current therapy.\n");
            }
            flow.value["error"] = Value::String(error.to_string());
            let outcome = if failed.code == EXIT_UNCERTAIN { "uncertain" } else { "refused" };
            Ok((outcome, failed.code))
        }
    }
}

/// `itb program`.
pub fn program(args: ProgramArgs) -> Result<Outcome, CliError> {
    let config = read_key(&args.link.key, "clinician")?;
    let people = People { zone: zone(&args.link.tz)? };
    if args.margin_days > 30 {
        return Err(CliError::flag(
            "--margin-days",
            format!(
                "{} days is not a refill margin; give 0 to 30 (clinics refill 3-5 days before the alarm)",
                args.margin_days
            ),
        ));
    }
    let policy =
        RefillPolicy { zone: people.zone.clone(), stability: Stability::default(), margin_days: args.margin_days };
    let json = args.link.json;
    // Flags are read before the pump is reached: bad input changes nothing.
    let command = Parsed::from(args.command, &people)?;
    runtime()?.block_on(async move {
        let mut link = TcpLink::new(args.link.pump.as_str(), config);
        if let Err(error) = link.connect().await {
            return Ok(failure(&people, &ProgrammerError::Link(error.to_string()), json));
        }
        let mut programmer = Programmer::new(link, first_id(), policy);
        let outcome = run(&mut programmer, command, &people, json).await;
        itb_programmer::PumpLink::close(programmer.link_mut()).await;
        outcome
    })
}

/// A refill as asked, its values read and checked.
struct RefillRequest {
    fill: Volume,
    concentration: Concentration,
    bridge: bool,
    accept_gap: Option<OverrideReason>,
    reason: Option<OverrideReason>,
    yes: bool,
}

/// A command with its values read and checked.
enum Parsed {
    Interrogate,
    Log { from: u64, max: u16 },
    Prescribe { prescription: itb_dose::Prescription, patient: Patient, reason: Option<OverrideReason>, yes: bool },
    Refill(RefillRequest),
    ClearAlarm(itb_pump::AlarmKind),
    Stop { reason: Option<OverrideReason>, yes: bool },
    Act { action: Action, reason: Option<OverrideReason>, yes: bool },
    MriCheck,
}

impl Parsed {
    fn from(command: ProgramCommand, people: &People) -> Result<Self, CliError> {
        Ok(match command {
            ProgramCommand::Interrogate => Parsed::Interrogate,
            ProgramCommand::Log { from, max } => Parsed::Log { from, max },
            ProgramCommand::Prescribe { file, origin, age, override_reason, yes } => {
                let text = std::fs::read_to_string(&file).map_err(|e| {
                    CliError(format!("cannot read {}: {e}; give the prescription file's path", file.display()))
                })?;
                let prescription =
                    itb_dose::toml::from_toml(&text).map_err(|e| CliError(format!("{}: {e}", file.display())))?;
                if let Some(age) = age
                    && age > 130
                {
                    return Err(CliError::flag("--age", format!("{age} is not an age in years; give 0 to 130")));
                }
                let origin = origin.map(|o| match o {
                    OriginArg::Spinal => Origin::Spinal,
                    OriginArg::Cerebral => Origin::Cerebral,
                });
                Parsed::Prescribe {
                    prescription,
                    patient: Patient { origin, age_years: age },
                    reason: reason("--override", override_reason.as_ref())?,
                    yes,
                }
            }
            ProgramCommand::Refill { fill_ml, concentration, no_bridge, accept_gap, override_reason, yes } => {
                let accept_gap = reason("--accept-gap", accept_gap.as_ref())?;
                let reason = reason("--override", override_reason.as_ref())?;
                // Both go to the pump's log as one reason: check it fits before anything is done.
                if let (Some(gap), Some(other)) = (&accept_gap, &reason) {
                    OverrideReason::parse(&combined_reason(other, gap))
                        .map_err(|e| CliError(format!("--override and --accept-gap together: {e}; shorten them")))?;
                }
                Parsed::Refill(RefillRequest {
                    fill: Volume::parse_implied(&fill_ml).map_err(|e| CliError::flag("--fill-ml", e))?,
                    concentration: Concentration::parse_implied(&concentration)
                        .map_err(|e| CliError::flag("--concentration", e))?,
                    bridge: !no_bridge,
                    accept_gap,
                    reason,
                    yes,
                })
            }
            ProgramCommand::SetClock { to, reason: text, yes } => Parsed::Act {
                action: Action::SetClock {
                    reading: match to {
                        Some(text) => text.parse::<jiff::civil::DateTime>().map_err(|_| {
                            CliError::flag("--to", format!("'{text}' is not a local date-time YYYY-MM-DDTHH:MM"))
                        })?,
                        None => people.zone.to_datetime(jiff::Timestamp::now()),
                    },
                },
                reason: reason("--reason", text.as_ref())?,
                yes,
            },
            ProgramCommand::SetAlarmThreshold { ml, reason: text, yes } => Parsed::Act {
                action: Action::SetAlarmThreshold {
                    threshold: Volume::parse_implied(&ml).map_err(|e| CliError(format!("the threshold: {e}")))?,
                },
                reason: reason("--reason", text.as_ref())?,
                yes,
            },
            ProgramCommand::ClearAlarm { alarm } => {
                let kind = itb_pump::AlarmKind::parse(&alarm).ok_or_else(|| {
                    let known: Vec<&str> = itb_pump::AlarmKind::ALL.iter().map(|k| k.as_str()).collect();
                    CliError(format!("'{alarm}' is not an alarm; use one of: {}", known.join(", ")))
                })?;
                Parsed::ClearAlarm(kind)
            }
            ProgramCommand::Stop { reason: text, yes } => {
                Parsed::Stop { reason: reason("--reason", text.as_ref())?, yes }
            }
            ProgramCommand::Resume { reason: text, yes } => {
                Parsed::Act { action: Action::Resume, reason: reason("--reason", text.as_ref())?, yes }
            }
            ProgramCommand::MriCheck => Parsed::MriCheck,
            ProgramCommand::Bolus { dose, minutes, reason: text, yes } => Parsed::Act {
                action: Action::SingleBolus {
                    dose: Mass::parse_implied(&dose).map_err(|e| CliError::flag("--dose", e))?,
                    over: if (1..=1_440).contains(&minutes) {
                        Duration::minutes(minutes)
                    } else {
                        return Err(CliError::flag(
                            "--minutes",
                            format!("{minutes} is not a bolus duration; give 1 to 1440 minutes (a day)"),
                        ));
                    },
                },
                reason: reason("--reason", text.as_ref())?,
                yes,
            },
            ProgramCommand::Prime { catheter_only, reason: text, yes } => {
                Parsed::Act { action: Action::Prime { catheter_only }, reason: reason("--reason", text.as_ref())?, yes }
            }
        })
    }
}

async fn run(
    programmer: &mut Programmer<TcpLink>,
    command: Parsed,
    people: &People,
    json: bool,
) -> Result<Outcome, CliError> {
    let simple = |result: Result<String, ProgrammerError>| match result {
        Ok(message) if json => ok(pretty(&json!({"outcome": "done", "message": message}))),
        Ok(message) => ok(format!("{}.\n", itb_dose::text::capitalised(&message))),
        Err(error) => failure(people, &error, json),
    };
    Ok(match command {
        Parsed::Interrogate => match programmer.interrogate().await {
            Ok(status) if json => ok(pretty(&render::status_json(&status))),
            Ok(status) => ok(people.status(&status)),
            Err(error) => failure(people, &error, json),
        },
        Parsed::Log { from, max } => match programmer.read_log(from, max).await {
            Ok(page) if json => ok(pretty(&json!({
                "first_seq": page.first_seq,
                "next_seq": page.next_seq,
                "entries": page.entries.iter().map(|e| json!({
                    "seq": e.seq,
                    "pump_time": e.pump_clock.strftime("%Y-%m-%dT%H:%M:%S").to_string(),
                    "event": serde_json::to_value(e.event).unwrap_or(Value::Null),
                    "text": e.text,
                })).collect::<Vec<_>>(),
            }))),
            Ok(page) => ok(people.log(&page.entries, page.next_seq)),
            Err(error) => failure(people, &error, json),
        },
        Parsed::Prescribe { prescription, patient, reason, yes } => {
            let mut flow = Flow { people, json, text: String::new(), value: json!({}) };
            match programmer.stage_therapy(&prescription, patient).await {
                Err(error) => {
                    let mut failed = failure(people, &error, json);
                    if !json {
                        failed.text.push_str("Nothing was changed: the pump keeps its current therapy.\n");
                    }
                    failed
                }
                Ok(change) => {
                    let (outcome, code) = review_and_commit(programmer, &change, reason, &[], yes, &mut flow).await?;
                    flow.finish(outcome, code)
                }
            }
        }
        Parsed::Refill(request) => refill(programmer, people, json, request).await?,
        Parsed::ClearAlarm(kind) => simple(programmer.clear_alarm(kind).await),
        Parsed::Stop { reason, yes } => {
            let Some(reason) = reason else {
                let text = "Not stopped: stopping delivers NO drug and withdrawal can follow, so it needs a written reason: re-run with --reason \"why\" (kept in the pump's log). Never stop the pump for an MRI scan.\n";
                return Ok(if json {
                    Outcome {
                        text: pretty(&json!({"outcome": "needs_override", "message": text.trim()})),
                        code: EXIT_NOT_CONFIRMED,
                    }
                } else {
                    Outcome { text: text.to_owned(), code: EXIT_NOT_CONFIRMED }
                });
            };
            let confirmed = if json {
                yes
            } else {
                confirm("Stopping delivers NO drug: withdrawal can follow. Never stop before an MRI scan.", yes)
            };
            if confirmed {
                simple(programmer.stop(&reason).await)
            } else if json {
                let value = json!({"outcome": "not_confirmed", "message": "not stopped: give --yes to confirm"});
                Outcome { text: pretty(&value), code: EXIT_NOT_CONFIRMED }
            } else {
                Outcome { text: "Not stopped.\n".into(), code: EXIT_NOT_CONFIRMED }
            }
        }
        Parsed::MriCheck => match programmer.post_mri_check().await {
            Ok(check) if json => ok(pretty(&json!({
                "motor_stalled": check.motor_stalled,
                "stalls_detected": check.stalls_detected,
                "recoveries": check.recoveries,
                "stall_alarm": check.stall_alarm,
                "state": check.state.as_str(),
                "advice": check.advice.as_str(),
                "advice_text": check.advice.sentence(),
            }))),
            Ok(check) => ok(people.mri(&check)),
            Err(error) => failure(people, &error, json),
        },
        Parsed::Act { action, reason, yes } => act(programmer, people, json, action, reason, yes).await,
    })
}

/// A bolus or a resume: planned and judged, its warning shown, confirmed (a danger with a
/// written reason), carried out.
async fn act(
    programmer: &mut Programmer<TcpLink>,
    people: &People,
    json: bool,
    action: Action,
    reason: Option<OverrideReason>,
    yes: bool,
) -> Outcome {
    let planned = match programmer.plan(action).await {
        Ok(planned) => planned,
        Err(error) => return failure(people, &error, json),
    };
    let warnings = [planned.warning().clone()];
    let mut value = json!({"warnings": render::warnings_json(&warnings)});
    let mut text = people.warnings(&warnings);
    if !json {
        print!("{text}");
        let _ = std::io::stdout().flush();
        text.clear();
    }
    let reason = match reason {
        Some(reason) => Some(reason),
        None if planned.warning().needs_override() && !json && !yes => ask_reason(),
        None => None,
    };
    let finish = |mut value: Value, text: String, outcome: &str, code: u8| {
        if json {
            value["outcome"] = Value::String(outcome.to_owned());
            Outcome { text: pretty(&value), code }
        } else {
            Outcome { text, code }
        }
    };
    if planned.warning().needs_override() && reason.is_none() {
        text.push_str(
            "\nNot done: this needs a written reason: re-run with --reason \"why\" (kept in the pump's log).\n",
        );
        return finish(value, text, "needs_override", EXIT_NOT_CONFIRMED);
    }
    let confirmed = if json { yes } else { confirm("\nGo ahead?", yes) };
    if !confirmed {
        text.push_str("Not done.\n");
        return finish(value, text, "not_confirmed", EXIT_NOT_CONFIRMED);
    }
    let confirmation = reason.map_or(Confirmation::Reviewed, Confirmation::Override);
    match programmer.carry_out(&planned, confirmation).await {
        Ok(Done::Bolus(b)) => {
            value["dose_micrograms"] = crate::output::number(b.dose.number());
            value["ends_at"] = Value::String(b.ends_at.to_string());
            text.push_str(&format!(
                "Bolus of {} started; it ends {}.\n",
                itb_dose::text::mass(b.dose),
                people.at(b.ends_at)
            ));
            finish(value, text, "bolus_started", 0)
        }
        Ok(Done::Message(message)) => {
            value["message"] = Value::String(message.clone());
            text.push_str(&format!("{}.\n", itb_dose::text::capitalised(&message)));
            finish(value, text, "done", 0)
        }
        Err(ProgrammerError::Changed(now)) => {
            value["changed"] = render::warnings_json(std::slice::from_ref(now.warning()));
            text.push_str("\nNot done: the pump changed since you read the warning; it now reads:\n");
            text.push_str(&people.warnings(std::slice::from_ref(now.warning())));
            text.push_str("Run the command again to decide on it.\n");
            finish(value, text, "changed", EXIT_NOT_CONFIRMED)
        }
        Err(error) => {
            let failed = failure(people, &error, json);
            if json {
                return failed;
            }
            text.push_str(&failed.text);
            Outcome { text, code: failed.code }
        }
    }
}

async fn refill(
    programmer: &mut Programmer<TcpLink>,
    people: &People,
    json: bool,
    request: RefillRequest,
) -> Result<Outcome, CliError> {
    let RefillRequest { fill, concentration, bridge, accept_gap, reason, yes } = request;
    let mut flow = Flow { people, json, text: String::new(), value: json!({}) };
    let status = match programmer.interrogate().await {
        Ok(status) => status,
        Err(error) => return Ok(failure(people, &error, json)),
    };
    // The pump's limits first: bad input never leaves an emptied reservoir.
    if let Err(error) = programmer.check_refill(fill, concentration, bridge).await {
        let mut failed = failure(people, &error, json);
        if !json {
            failed.text.push_str("Nothing was withdrawn or changed: correct the refill and try again.\n");
        }
        return Ok(failed);
    }
    // What the refill will be, before anything is withdrawn: a danger known now (a change of
    // concentration without its bridge, say) is settled now, with the reservoir still full.
    if !status.awaiting_refill {
        let preview = programmer.preview_refill(&status, fill, concentration, bridge);
        let dangers = preview.dangers().count();
        if dangers > 0 && reason.is_none() {
            flow.value["preview"] = json!({"warnings": render::warnings_json(&preview.warnings)});
            flow.text.push_str(&people.warnings(&preview.warnings));
            flow.text.push_str(&format!(
                "\nNothing was withdrawn: this refill has {dangers} dangerous warning{} above. If it is intended, re-run with --override \"reason\" (kept in the pump's log).\n",
                if dangers == 1 { "" } else { "s" }
            ));
            return Ok(flow.finish("needs_override", EXIT_NOT_CONFIRMED));
        }
    }
    let withdrawal: Withdrawal = match status.withdrawal {
        Some(withdrawal) => {
            flow.text.push_str(&format!(
                "The old drug was already withdrawn at {}: the refill goes on from there.\n",
                people.at(withdrawal.at)
            ));
            withdrawal
        }
        None => match programmer.withdraw(status.refill_gap_limit).await {
            Ok(withdrawal) => withdrawal,
            Err(error) => {
                let mut failed = failure(people, &error, json);
                if !json {
                    failed.text.push_str(
                        "Interrogate the pump: if it shows the reservoir withdrawn and awaiting its refill, the old drug is out and the refill must go on.\n",
                    );
                }
                return Ok(failed);
            }
        },
    };
    flow.value["withdrawal"] = render::withdrawal_json(&withdrawal);
    flow.text.push_str(&format!("{}\n", withdrawal.gap.sentence()));
    if withdrawal.gap.stops_the_refill() && accept_gap.is_none() {
        flow.text.push_str("STOP. Re-run with --accept-gap \"reason\" once the gap is explained.\n");
        flow.text.push_str(&people.after_withdrawal(&withdrawal));
        flow.value["after_withdrawal"] = after_withdrawal_json(&withdrawal);
        return Ok(flow.finish("gap_stop", EXIT_GAP));
    }
    if let (true, Some(accepted)) = (withdrawal.gap.stops_the_refill(), &accept_gap) {
        flow.text.push_str(&format!("Gap accepted by the clinician: {accepted}\n"));
    }
    if !json {
        println!("{}", std::mem::take(&mut flow.text));
    }
    let change = match programmer.stage_refill(fill, concentration, bridge).await {
        Ok(change) => change,
        Err(error) => {
            let failed = failure(people, &error, false);
            flow.text.push_str(&failed.text);
            flow.text.push_str(&people.after_withdrawal(&withdrawal));
            flow.value["after_withdrawal"] = after_withdrawal_json(&withdrawal);
            return Ok(flow.finish("refused", EXIT_WITHDRAWN));
        }
    };
    // One reason goes to the pump's log: the gap's and the override's together (checked to fit
    // when the flags were read).
    let combined = match (&accept_gap, &reason) {
        (Some(gap), Some(other)) => OverrideReason::parse(&combined_reason(other, gap)).ok(),
        (Some(gap), None) => Some(gap.clone()),
        (None, other) => other.clone(),
    };
    let covered: &[WarningCode] = if accept_gap.is_some() { &[WarningCode::RefillGapAboveLimit] } else { &[] };
    let uncovered_danger =
        change.review().warnings.iter().any(|w| w.severity == Severity::Danger && !covered.contains(&w.code));
    // Dangers beyond the gap need --override; without it, the review asks (or stops).
    let reason_for_commit = if uncovered_danger && reason.is_none() { None } else { combined };
    let (outcome, code) = review_and_commit(programmer, &change, reason_for_commit, covered, yes, &mut flow).await?;
    if outcome != "committed" && outcome != "uncertain" {
        flow.text.push_str(&people.after_withdrawal(&withdrawal));
        flow.value["after_withdrawal"] = after_withdrawal_json(&withdrawal);
        return Ok(flow.finish(outcome, EXIT_WITHDRAWN));
    }
    Ok(flow.finish(outcome, code))
}

/// `itb ptm`.
pub fn ptm(args: PtmArgs) -> Result<Outcome, CliError> {
    let config = read_key(&args.link.key, "patient")?;
    let people = People { zone: zone(&args.link.tz)? };
    let json = args.link.json;
    runtime()?.block_on(async move {
        let mut ptm = Ptm::new(TcpLink::new(args.link.pump.as_str(), config), first_id());
        let outcome = match args.command {
            PtmCommand::Bolus => match ptm.bolus().await {
                Ok(b) if json => ok(pretty(&json!({
                    "outcome": "bolus_started",
                    "dose_micrograms": crate::output::number(b.dose.number()),
                    "ends_at": b.ends_at.to_string(),
                }))),
                Ok(b) => ok(format!("Bolus of {} started; it ends {}.\n", itb_dose::text::mass(b.dose), people.at(b.ends_at))),
                Err(ProgrammerError::Refused(r)) if json => Outcome {
                    text: pretty(&json!({"outcome": "refused", "code": r.code, "message": r.message, "retry_at": r.retry_at.map(|t| t.to_string())})),
                    code: EXIT_FAILED,
                },
                Err(ProgrammerError::Refused(r)) => {
                    let mut text = format!("No bolus: {}.", r.message);
                    if let Some(at) = r.retry_at {
                        text.push_str(&format!(" The next bolus is allowed {}.", people.at(at)));
                    }
                    text.push('\n');
                    Outcome { text, code: EXIT_FAILED }
                }
                Err(error) => failure(&people, &error, json),
            },
            PtmCommand::Status => match ptm.status().await {
                Ok(s) if json => ok(pretty(&json!({
                    "boluses_last_24h": s.boluses_last_24h,
                    "allowed_per_24h": s.allowed_per_24h,
                    "next_allowed_at": s.next_allowed_at.map(|t| t.to_string()),
                    "alarms": s.alarms.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
                }))),
                Ok(s) => {
                    let next = s.next_allowed_at.map_or("now".to_owned(), |at| people.at(at));
                    let mut text = format!(
                        "Boluses in the last 24 hours: {} of {}\nNext bolus allowed: {next}\n",
                        s.boluses_last_24h, s.allowed_per_24h
                    );
                    if !s.alarms.is_empty() {
                        let words: Vec<String> = s.alarms.iter().map(|a| a.describe().to_owned()).collect();
                        text.push_str(&format!("The pump is alarming ({}): contact the ITB team.\n", words.join("; ")));
                    }
                    ok(text)
                }
                Err(error) => failure(&people, &error, json),
            },
        };
        itb_programmer::PumpLink::close(ptm.link_mut()).await;
        Ok(outcome)
    })
}
